"""No NaN reaches the parameters, whatever the dtype (regressions and property-based checks).

The first sections reproduce, one test each, settings that passed the float64 checks but
under/overflowed in float32 and put NaN/inf into the particles or parameters while the step
returned a finite loss (every one of them failed on the code before the fix; the comment above each
test says what it did). The last section states the contract as properties (``hypothesis``, the
derandomized profile of ``tests/conftest.py``): for any finite costs and any ``eps``/``lam``/radius a
float holds, the transport functions, the step and the radius resolution return finite outputs and
plans whose rows sum to ``a`` -- or raise a ``ValueError``/``FloatingPointError`` with a message
that names the step and the offending quantity.

Design under test (see ``polystep/transport.py`` and ``polystep/functional.py``): plans are computed
in float64 whatever ``C``'s dtype and returned in it; the resolved radii must be non-zero and finite
in the particles' dtype (``ValueError`` before any cost is evaluated); probes, move and new particles
are checked in the particles' dtype (``NonFiniteStepError``, before anything is returned).
"""

from __future__ import annotations

import copy
import math
import re
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as torch_F
from hypothesis import assume, event, given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from polystep import functional as psf
from polystep import transport
from polystep.evaluation import population_closure
from polystep.functional import NonFiniteLossError, NonFiniteStepError, PolyStepConfig
from polystep.optim import PolyStep
from polystep.polytopes import VERTEX_KINDS, num_vertices
from polystep.schedules import Constant, Cosine, InverseSqrt, Linear
from polystep.transport import ConvergenceWarning

F32_MAX = torch.finfo(torch.float32).max  # 3.4028235e38


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _quadratic(p: torch.Tensor) -> torch.Tensor:
    return (p**2).sum(-1)


def _x32(n: int = 4, d: int = 3) -> torch.Tensor:
    return torch.randn(n, d, generator=_gen(1), dtype=torch.float64).float()


def _rand_costs(P: int, V: int, seed: int, dtype=torch.float32) -> torch.Tensor:
    """U[0, 1) costs: almost surely no ties, so the eps -> 0 limit is one-hot."""
    return torch.rand(P, V, generator=_gen(seed), dtype=torch.float64).to(dtype)


def _assert_same_nested(a, b) -> None:
    """Deep equality of (optimizer) state dicts: tensors bitwise, everything else with ==."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for k in a:
            _assert_same_nested(a[k], b[k])
    elif isinstance(a, (list, tuple)):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b):
            _assert_same_nested(x, y)
    else:
        assert a == b


# ----------------------------------------------------------------------------------------------
# transport: float32 inputs are solved in float64
# ----------------------------------------------------------------------------------------------


def test_softmax_plan_float32_eps_below_float32_range_is_argmin_not_nan():
    # Old: eps = 1e-46 became 0 in float32, C/eps = 0/0, and the plan was all NaN although the
    # docstring promised "never NaN".
    C = _rand_costs(5, 4, seed=0)
    plan = transport.softmax_plan(C, 1e-46)
    assert plan.dtype == torch.float32
    # exp(-(C - min C)/1e-46) underflows to exactly 0 off the argmin (gaps of U[0,1) costs >> 1e-46)
    assert torch.equal(plan, transport.argmin_plan(C))


@pytest.mark.filterwarnings("ignore::polystep.transport.ConvergenceWarning")
@pytest.mark.parametrize(("solver", "lam"), [("softmax", None), ("sinkhorn", None), ("kl_relaxed", 1.0)])
def test_every_solver_float32_tiny_eps_finite_rows_equal_a(solver, lam):
    # Old: NaN plans for every solver at eps = 1e-46 in float32.
    C = _rand_costs(6, 5, seed=1)
    kw = {} if solver == "softmax" else {"max_iter": 50}
    plan = transport.transport_plan(solver, C, 1e-46, lam=lam, **kw)
    assert plan.dtype == torch.float32 and bool(torch.isfinite(plan).all())
    # entries of a float64 plan rounded to float32: rows hold to a few float32 ulps of 1/6
    torch.testing.assert_close(plan.sum(dim=1), torch.full((6,), 1 / 6), rtol=1e-6, atol=0)


def test_kl_relaxed_float32_lam_beyond_float32_range_is_sinkhorn():
    # Old: lam = 1e40 became inf in float32 and the gauge step lam * LSE(...) gave inf * 0 = NaN.
    C = _rand_costs(6, 5, seed=2)
    plan = transport.kl_relaxed_plan(C, 0.1, 1e40, max_iter=5000)
    assert bool(torch.isfinite(plan).all())
    # alpha = 1/(1 + eps/lam) = 1 exactly and q* = b to rounding: the Sinkhorn iterations.
    torch.testing.assert_close(plan, transport.sinkhorn_plan(C, 0.1, max_iter=5000), rtol=0, atol=1e-7)


def test_softmax_plan_float32_cost_range_beyond_float32_is_exact():
    # Old: C - min C = 6e38 overflowed float32 to inf and the plan was [1, 0]; the exact plan
    # with eps = 1e38 is softmax([0, -6]).
    C = torch.tensor([[-3e38, 3e38]], dtype=torch.float32)
    expected = torch.softmax(torch.tensor([0.0, -6.0], dtype=torch.float64), 0)
    torch.testing.assert_close(transport.softmax_plan(C, 1e38)[0].double(), expected, rtol=1e-6, atol=0)


@pytest.mark.filterwarnings("ignore::polystep.transport.ConvergenceWarning")
@pytest.mark.parametrize(("C", "eps"), [
    # eps near the float64 maximum: old f = eps * (log a - LSE) overflowed, -inf - (-inf) = NaN
    (torch.tensor([[0.0, 1.0], [1.0, 0.0]], dtype=torch.float64), 1.7e308),
    # cost range beyond float64 (C - min C = inf): old all-(-inf) column met g = +inf, NaN
    (torch.tensor([[-1e308, 1e308], [-1e308, 1e308]], dtype=torch.float64), 1.0),
    # C/eps beyond float64 (eps = 1e-320): the same NaN
    (torch.tensor([[0.0, 1.0], [0.0, 1.0]], dtype=torch.float64), 1e-320),
])
@pytest.mark.parametrize("lam", [math.inf, 1.0])
def test_iterative_solvers_float64_extremes_finite(C, eps, lam):
    plan = transport.kl_relaxed_plan(C, eps, lam, max_iter=50)
    assert bool(torch.isfinite(plan).all())
    torch.testing.assert_close(plan.sum(dim=1), torch.full((2,), 0.5, dtype=torch.float64), rtol=0, atol=1e-15)
    if lam == math.inf and eps != 1.7e308:
        # identical rows (up to the row shift): the only balanced entropic plan is uniform
        torch.testing.assert_close(plan, torch.full((2, 2), 0.25, dtype=torch.float64), rtol=0, atol=1e-15)


def test_barycentric_zero_mass_row_is_an_error_not_nan():
    # Old: 0/0 = NaN for a row without mass.
    plan = torch.tensor([[0.5, 0.0], [0.0, 0.0]])
    with pytest.raises(ValueError, match=r"row\(s\) \[1\] of plan have zero mass"):
        transport.barycentric(plan, torch.ones(2, 2, 3))


def test_barycentric_float32_no_overflow_and_subnormal_mass_exact():
    # Old: sum_v T_iv y_iv = 2 * 3e38 + 2 * 3e38 overflowed float32 -> inf.
    out = transport.barycentric(torch.tensor([[2.0, 2.0]]), torch.full((1, 2, 1), 3e38))
    assert out.item() == pytest.approx(3e38, rel=1e-7)
    # Old: subnormal masses 5e-324, 1e-323 times 0.3 rounded to 0 and 5e-324, giving 1/3 instead
    # of 0.3 (outside the hull of the targets).
    plan = torch.tensor([[5e-324, 1e-323]], dtype=torch.float64)
    assert transport.barycentric(plan, torch.full((1, 2, 1), 0.3, dtype=torch.float64)).item() == 0.3


def test_unrepresentable_eps_in_float32_work_dtype_names_eps_value_and_dtype():
    # The work dtype is float32 only on Apple mps devices (no float64 there); its check is the
    # one every solver runs, exercised here directly.
    with pytest.raises(ValueError, match=r"eps = 1e-46 underflows to 0 in torch\.float32"):
        transport._check_eps(1e-46, torch.float32)
    with pytest.raises(ValueError, match=r"eps = 1e\+39 overflows to inf in torch\.float32"):
        transport._check_eps(1e39, torch.float32)
    assert transport._check_eps(1e-46, torch.float64) == 1e-46
    assert transport._work_dtype(torch.device("cpu")) == torch.float64


# ----------------------------------------------------------------------------------------------
# functional.step on float32 particles
# ----------------------------------------------------------------------------------------------


def test_step_float32_eps_below_float32_range_absolute_is_argmin():
    # Old: NaN weights, NaN particles, finite costs.
    X = _x32()
    cfg = PolyStepConfig(eps=1e-46, radius_mode="absolute")
    new, state, info = psf.step(X, _quadratic, psf.init(), cfg, _gen(0))
    ref, _, _ = psf.step(X, _quadratic, psf.init(), PolyStepConfig(solver="argmin", radius_mode="absolute"), _gen(0))
    assert bool(torch.isfinite(new).all()) and state.t == 1
    assert torch.equal(new, ref)  # one-hot weights: exactly the argmin step


@pytest.mark.parametrize(("kw", "match"), [
    # Old: r_s = 1e-46 -> 0 in float32 and 0 * NaN weights = NaN particles.
    (dict(eps=1e-46), r"^step 0: step_radius 1e-46 \(= step_radius\(t\) \* eps\(t\) = 1\.0 \* 1e-46, "
                      r"radius_mode='times_eps'\) underflows to 0 in torch\.float32"),
    # Old: inf particles.
    (dict(step_radius=1e39, radius_mode="absolute"), r"^step 0: step_radius 1e\+39 overflows torch\.float32"),
    # Old: r_s = r_p = 1e40 -> inf probes and particles.
    (dict(eps=1e20, step_radius=1e20, probe_radius=1e-20),
     r"^step 0: step_radius 1e\+40 \(= step_radius\(t\) \* eps\(t\) = 1e\+20 \* 1e\+20, "
     r"radius_mode='times_eps'\) overflows torch\.float32 \(largest finite value 3\.403e\+38\)"),
    (dict(probe_radius=1e39, radius_mode="absolute"), r"^step 0: probe_radius 1e\+39 overflows torch\.float32"),
])
def test_step_float32_radius_not_representable_raises_before_evaluating(kw, match):
    X = _x32()
    X0 = X.clone()
    calls = []

    def cost(p):
        calls.append(p)
        return _quadratic(p)

    with pytest.raises(ValueError, match=match):
        psf.step(X, cost, psf.init(), PolyStepConfig(**kw), _gen(0))
    assert calls == [] and torch.equal(X, X0)
    # the same settings are fine in float64
    new, _, _ = psf.step(X.double(), _quadratic, psf.init(), PolyStepConfig(**kw), _gen(0))
    assert bool(torch.isfinite(new).all())


@pytest.mark.parametrize(("kw", "match"), [
    # Old: resolve returned r_s = 1e200 * 1e200 = inf (and then inf/NaN particles).
    (dict(eps=1e200, step_radius=1e200), r"^step 3: step_radius inf \(= step_radius\(t\) \* eps\(t\) = 1e\+200 \* "
                                         r"1e\+200, radius_mode='times_eps'\) overflows torch\.float64"),
    # Old: resolve returned r_p = 1e-200 * 1e-200 = 0.0, a radius the config forbids.
    (dict(eps=1e-200, probe_radius=1e-200),
     r"^step 3: probe_radius 0\.0 \(= probe_radius\(t\) \* eps\(t\) = 1e-200 \* 1e-200, "
     r"radius_mode='times_eps'\) underflows to 0 in torch\.float64"),
])
def test_resolve_times_eps_product_out_of_float64_range(kw, match):
    with pytest.raises(ValueError, match=match):
        PolyStepConfig(**kw).resolve(3)


def test_step_float32_kl_relaxed_huge_lam_is_finite():
    # Old: NaN particles (the lam = 1e40 plan was NaN).
    X = _x32()
    new, _, info = psf.step(X, _quadratic, psf.init(), PolyStepConfig(solver="kl_relaxed", lam=1e40,
                                                                   radius_mode="absolute"), _gen(0))
    ref, _, _ = psf.step(X, _quadratic, psf.init(), PolyStepConfig(solver="sinkhorn", radius_mode="absolute"), _gen(0))
    assert bool(torch.isfinite(new).all())
    torch.testing.assert_close(info.weights.sum(1), torch.ones(4), rtol=0, atol=1e-6)
    # lam = 1e40 is numerically lam = inf (module docstring of transport); the two runs differ only
    # in the rounding of q* = b, i.e. in the stopping test.
    torch.testing.assert_close(new, ref, rtol=0, atol=1e-5)


def test_step_move_overflow_raises_nonfinite_step_error():
    # Old: returned the particle x + r_s = 3e38 + 1e38 = inf (with finite costs).
    # d = 1: the vertices are +-1 and R = 1; the cost -x/1e38 puts all weight on +1.
    X = torch.full((1, 1), 3e38)
    cfg = PolyStepConfig(eps=1e-5, step_radius=1e38, probe_radius=1e37, radius_mode="absolute")

    def cost(p):  # finite for every probe (3e38 +- 5e36)
        return -p[..., 0] * 1e-38

    with pytest.raises(NonFiniteStepError, match=r"^step 0: the new particles x_i \+ r_s R_i sum_v w_iv u_v "
                                                  r"overflow torch\.float32 \(max \|x\| = 3e\+38, step_radius "
                                                  r"r_s = 1e\+38\); the particles were not moved$"):
        psf.step(X, cost, psf.init(), cfg, _gen(0))
    assert issubclass(NonFiniteStepError, FloatingPointError)
    # one step less far is fine: x + r_s = 3e38 + 4e37
    new, _, info = psf.step(X, cost, psf.init(), PolyStepConfig(eps=1e-5, step_radius=4e37, probe_radius=1e37,
                                                            radius_mode="absolute"), _gen(0))
    assert info.weights.tolist() == [[1.0, 0.0]] and new.item() == pytest.approx(3.4e38, rel=1e-6)


def test_step_probe_overflow_raises_before_the_cost_oracle_sees_it():
    # Old: the cost oracle was handed inf probes (x = 3e38 plus s_k r_p = 1.5e38).
    X = torch.full((2, 2), 3e38)
    seen = []

    def cost(p):
        seen.append(bool(torch.isfinite(p).all()))
        return p.sum(-1) * 0.0

    with pytest.raises(NonFiniteStepError, match=r"^step 7: the probes x_i \+ s_k r_p R_i u_v overflow "
                                                  r"torch\.float32 \(probe_radius r_p = 3e\+38"):
        psf.step(X, cost, psf.PolyStepState(t=7), PolyStepConfig(probe_radius=3e38, radius_mode="absolute"), _gen(0))
    assert seen == []


def test_update_float32_costs_near_max_are_sanitised_and_averaged_finitely():
    # Old: the fill 2 * 3e38 + 1 for the NaN loss and the float32 mean of two 3e38 losses were
    # inf, so the transport raised "C contains non-finite entries; sanitise the costs before solving".
    X = _x32(2, 2)
    cfg = PolyStepConfig(eps=1.0, num_probes=2, radius_mode="absolute")
    prop = psf.propose(X, psf.init(), cfg, _gen(0))
    raw = torch.full((2, 8), 3e38)
    raw[0, 0] = math.nan
    raw[1, 2:4] = 0.0  # particle 1: vertex 1 is the only cheap one
    new, _, info = psf.update(X, prop, raw, psf.init(), cfg)
    assert bool(torch.isfinite(new).all()) and bool(torch.isfinite(info.costs).all())
    assert info.n_nonfinite == 1
    # C_00 = mean(fill, 3e38) with fill = the float32 maximum; C_01 = mean(3e38, 3e38) = 3e38
    assert info.costs[0, 0].item() == pytest.approx((F32_MAX + 3e38) / 2, rel=1e-7)
    assert info.costs[0, 1].item() == pytest.approx(3e38, rel=1e-7)
    assert info.weights[1].tolist() == [0.0, 1.0, 0.0, 0.0]
    out, n = psf.sanitize_costs(torch.tensor([[3e38, math.inf]]))
    assert n == 1 and out[0, 1].item() == F32_MAX


def test_update_float64_costs_near_max_are_averaged_finitely():
    # Old (found by test_property_step): the float64 mean of K = 2 costs 8.9885e307 summed to inf, so
    # the transport raised "C contains non-finite entries"; the mean is now m * mean(L / m) there.
    X = torch.zeros(1, 1, dtype=torch.float64)
    cfg = PolyStepConfig(polytope="simplex", eps=1.0, step_radius=1.0, probe_radius=1.0, num_probes=2)
    big = math.nextafter(torch.finfo(torch.float64).max / 2, math.inf)  # big + big = inf
    assert math.isinf(torch.tensor([big, big], dtype=torch.float64).mean().item())
    costs = torch.tensor([[big, big, big / 2, big / 2]], dtype=torch.float64)
    new, _, info = psf.step(X, lambda probes: costs, psf.init(), cfg, _gen(0))
    assert bool(torch.isfinite(new).all())
    assert info.costs.tolist() == [[big, big / 2]]  # m * mean(L / m) = big * 1 (exact)
    # and finite costs whose sum does not overflow keep the plain mean bit for bit
    small = torch.tensor([[0.1, 0.7, 0.3, 0.2]], dtype=torch.float64)
    _, _, info = psf.step(X, lambda probes: small, psf.init(), cfg, _gen(0))
    assert torch.equal(info.costs, small.reshape(1, 2, 2).mean(dim=2))


def test_step_float32_displacement_of_a_large_move_is_finite():
    # Old: info.displacement = ||move|| computed in float32 overflowed from 1.8e19 on: inf.
    X = torch.zeros(3, 2)
    cfg = PolyStepConfig(step_radius=1e20, probe_radius=1.0, radius_mode="absolute", solver="argmin")
    new, _, info = psf.step(X, _quadratic, psf.init(), cfg, _gen(0))
    # argmin: all weight on one unit vertex, |dx| = r_s to float32 rounding
    torch.testing.assert_close(info.displacement, torch.full((3,), 1e20), rtol=1e-6, atol=0)
    torch.testing.assert_close(new.double().norm(dim=1), torch.full((3,), 1e20, dtype=torch.float64),
                               rtol=1e-6, atol=0)


# ----------------------------------------------------------------------------------------------
# PolyStep on a float32 nn.Linear: parameters and optimizer state
# ----------------------------------------------------------------------------------------------


def _linear_problem():
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.weight.copy_(torch.randn(2, 3, generator=_gen(3)))
        model.bias.copy_(torch.randn(2, generator=_gen(4)))
    x = torch.randn(8, 3, generator=_gen(5))
    y = torch.randn(8, 2, generator=_gen(6))
    return model, x, y


def _polystep(model, **kw) -> PolyStep:
    return PolyStep(model.parameters(), subspace="identity", particle_dim=4, seed=0, **kw)


def test_polystep_float32_eps_below_float32_range_trains_like_argmin():
    # Old: opt.step returned a finite loss and wrote NaN into the weights.
    out = []
    for kw in (dict(eps=1e-46), dict(solver="argmin")):
        model, x, y = _linear_problem()
        opt = _polystep(model, radius_mode="absolute", **kw)
        for _ in range(2):
            loss = opt.step(population_closure(model, torch_F.mse_loss, x, y, opt.params))
            assert math.isfinite(float(loss))
        out.append([p.detach().clone() for p in model.parameters()])
    assert all(bool(torch.isfinite(p).all()) for p in out[0])
    assert all(torch.equal(p, q) for p, q in zip(*out))


def test_polystep_float32_kl_relaxed_huge_lam_keeps_weights_finite():
    # Old: NaN weights.
    model, x, y = _linear_problem()
    opt = _polystep(model, solver="kl_relaxed", lam=1e40, radius_mode="absolute")
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        loss = opt.step(population_closure(model, torch_F.mse_loss, x, y, opt.params))
    assert math.isfinite(float(loss))
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


@pytest.mark.parametrize(("kw", "match"), [
    (dict(step_radius=1e39, radius_mode="absolute"), r"^step 0: step_radius 1e\+39 overflows torch\.float32"),
    (dict(eps=1e20, step_radius=1e20), r"^step 0: step_radius 1e\+40 .* overflows torch\.float32"),
    (dict(eps=1e-46), r"^step 0: step_radius 1e-46 .* underflows to 0 in torch\.float32"),
])
def test_polystep_unrepresentable_radius_leaves_parameters_and_state_untouched(kw, match):
    # Old: a finite loss and NaN/inf weights.
    model, x, y = _linear_problem()
    opt = _polystep(model, **kw)
    before = [p.detach().clone() for p in model.parameters()]
    state = copy.deepcopy(opt.state_dict())
    closure = population_closure(model, torch_F.mse_loss, x, y, opt.params)
    calls = []

    def counting(thetas):
        calls.append(1)
        return closure(thetas)

    with pytest.raises(ValueError, match=match):
        opt.step(counting)
    assert calls == []  # raised before any forward evaluation
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before))
    _assert_same_nested(opt.state_dict(), state)


def test_polystep_overflowing_move_leaves_parameters_and_state_untouched():
    # One weight w, x = 1, loss -w: every step moves w by +r_s = 2e38 (d = 1, vertices +-1).
    # Step 0 gives w ~ 2e38; step 1 would give 4e38 = inf. Old: inf written into the weight.
    model = torch.nn.Linear(1, 1, bias=False)
    x, y = torch.ones(1, 1), torch.zeros(1, 1)
    opt = PolyStep(model.parameters(), subspace="identity", particle_dim=1, eps=1e-3, step_radius=2e38,
                   probe_radius=2e37, radius_mode="absolute", seed=0)
    closure = population_closure(model, lambda out, target: -out.mean(), x, y, opt.params)
    opt.step(closure)
    assert 1.9e38 < model.weight.item() < 2.1e38
    before = model.weight.detach().clone()
    state = copy.deepcopy(opt.state_dict())
    with pytest.raises(NonFiniteStepError, match=r"^step 1: the new particles .* overflow torch\.float32"):
        opt.step(closure)
    assert torch.equal(model.weight, before)
    _assert_same_nested(opt.state_dict(), state)


# ----------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------

DTYPES = {"float32": (torch.float32, np.float32, 32), "float64": (torch.float64, np.float64, 64)}


def _finite(width: int) -> st.SearchStrategy[float]:
    return st.floats(allow_nan=False, allow_infinity=False, width=width)


def _positive(width: int) -> st.SearchStrategy[float]:
    """Every positive finite float of that width: subnormals, 1, the maximum, ..."""
    return st.floats(min_value=0.0, exclude_min=True, allow_nan=False, allow_infinity=False, width=width)


def _any_positive(width: int) -> st.SearchStrategy[float]:
    """Representable in the dtype (``width``) or, for float32, any float64 (e.g. 1e-46, 1e39)."""
    return _positive(width) if width == 64 else st.one_of(_positive(32), _positive(64))


@st.composite
def cost_problems(draw, max_p: int = 4, max_v: int = 5):
    """``(C, eps, width)``: any finite costs in float32 or float64 (incl. +-3.4e38 / 1.8e308) and
    any positive eps (width 32 or 64 for float32 costs)."""
    name = draw(st.sampled_from(sorted(DTYPES)))
    dtype, np_dtype, width = DTYPES[name]
    P, V = draw(st.integers(1, max_p)), draw(st.integers(1, max_v))
    C = draw(hnp.arrays(np_dtype, (P, V), elements=_finite(width)))
    return torch.from_numpy(C).to(dtype), draw(_any_positive(width)), width


def _assert_plan(plan: torch.Tensor, C: torch.Tensor) -> None:
    """Finite, non-negative, C's shape and dtype, rows equal to a = 1/P.

    Tolerance: the plan is a_i softmax(...) in float64 (row sums within ~V float64 ulps), then each
    entry is rounded to C's dtype (relative error <= eps/2, or an absolute <= tiny*eps/2 below the
    normal range); the float64 sum of the V rounded entries is therefore within
    a_i V eps + V tiny of a_i.
    """
    P, V = C.shape
    assert plan.shape == C.shape and plan.dtype == C.dtype
    assert bool(torch.isfinite(plan).all()) and bool((plan >= 0).all())
    info = torch.finfo(C.dtype)
    rows = plan.double().sum(dim=1)
    assert float((rows - 1.0 / P).abs().max()) <= V * info.eps / P + V * info.tiny, rows


@given(cost_problems())
def test_property_softmax_plan(problem):
    C, eps, _ = problem
    plan = transport.softmax_plan(C, eps)
    _assert_plan(plan, C)
    # the row minimum gets exp(0) = 1, the largest unnormalised weight: it has the row's largest mass
    best = plan.gather(1, C.argmin(dim=1, keepdim=True)).squeeze(1)
    assert torch.equal(best, plan.max(dim=1).values)


@given(cost_problems())
def test_property_argmin_plan(problem):
    C, _, _ = problem
    plan = transport.argmin_plan(C)
    _assert_plan(plan, C)
    assert bool(((plan > 0).sum(dim=1) == 1).all())


@pytest.mark.filterwarnings("ignore::polystep.transport.ConvergenceWarning")
@given(cost_problems(max_p=3, max_v=4))
def test_property_sinkhorn_plan(problem):
    C, eps, _ = problem
    plan, info = transport.sinkhorn_plan(C, eps, max_iter=30, log=True)
    _assert_plan(plan, C)
    assert info["n_iter"] <= 30 and math.isfinite(info["err"])


def _lams(width: int) -> st.SearchStrategy[float]:
    return st.one_of(st.just(0.0), st.just(math.inf), _any_positive(width))


@pytest.mark.filterwarnings("ignore::polystep.transport.ConvergenceWarning")
@given(cost_problems(max_p=3, max_v=4), st.data())
def test_property_kl_relaxed_plan(problem, data):
    C, eps, width = problem
    lam = data.draw(_lams(width), label="lam")
    plan = transport.kl_relaxed_plan(C, eps, lam, max_iter=30)
    _assert_plan(plan, C)


@pytest.mark.filterwarnings("ignore::polystep.transport.ConvergenceWarning")
@given(cost_problems(max_p=3, max_v=4), st.data())
def test_property_transport_plan_dispatch(problem, data):
    C, eps, width = problem
    solver = data.draw(st.sampled_from(transport.SOLVERS), label="solver")
    lam = data.draw(_lams(width), label="lam") if solver == "kl_relaxed" else None
    kw = {"max_iter": 20} if solver in ("sinkhorn", "kl_relaxed") else {}
    _assert_plan(transport.transport_plan(solver, C, eps, lam=lam, **kw), C)


@given(st.data())
def test_property_barycentric(data):
    name = data.draw(st.sampled_from(sorted(DTYPES)), label="dtype")
    dtype, np_dtype, width = DTYPES[name]
    P, V, d = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4)), data.draw(st.integers(1, 3))
    plan = torch.from_numpy(data.draw(hnp.arrays(np_dtype, (P, V), elements=st.floats(
        min_value=0.0, allow_nan=False, allow_infinity=False, width=width)), label="plan"))
    targets = torch.from_numpy(data.draw(hnp.arrays(np_dtype, (P, V, d), elements=_finite(width)),
                                         label="targets"))
    empty = (plan.max(dim=1).values == 0).nonzero().flatten().tolist()
    if empty:
        with pytest.raises(ValueError, match=re.escape(f"row(s) {empty} of plan have zero mass")):
            transport.barycentric(plan, targets)
        return
    out = transport.barycentric(plan, targets)
    assert out.shape == (P, d) and out.dtype == dtype and bool(torch.isfinite(out).all())
    # a convex combination lies in the coordinate-wise hull of its targets (the result is clamped
    # to it, so this holds exactly, not only to rounding)
    assert bool((out >= targets.amin(dim=1)).all()) and bool((out <= targets.amax(dim=1)).all())


_STEP_ERRORS = [
    (ValueError, r"^step \d+: (step|probe)_radius \S+( \(.*\))? (overflows torch\.float(32|64)|underflows to 0 in "
                 r"torch\.float(32|64))"),
    (NonFiniteStepError, r"^step \d+: the (probes|move|new particles) .* overflows? torch\.float(32|64) .*"
                         r"(no cost was evaluated and )?the particles were not moved$"),
    (NonFiniteLossError, r"^every candidate loss of particle\(s\) \[.*\] is non-finite at step \d+"),
]


@st.composite
def step_problems(draw):
    name = draw(st.sampled_from(sorted(DTYPES)))
    dtype, np_dtype, width = DTYPES[name]
    P, d = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    kind = draw(st.sampled_from(VERTEX_KINDS))
    K = draw(st.integers(1, 2))
    solver = draw(st.sampled_from(transport.SOLVERS))
    config = PolyStepConfig(
        polytope=kind, eps=draw(_any_positive(width), label="eps"),
        step_radius=draw(_any_positive(width), label="step_radius"),
        probe_radius=draw(_any_positive(width), label="probe_radius"),
        radius_mode=draw(st.sampled_from(psf.RADIUS_MODES)), num_probes=K,
        probe_jitter=draw(st.sampled_from([0.0, 0.5])), solver=solver,
        lam=draw(_lams(width), label="lam") if solver == "kl_relaxed" else None, sinkhorn_max_iter=20)
    X = torch.from_numpy(draw(hnp.arrays(np_dtype, (P, d), elements=_finite(width)), label="particles"))
    M = num_vertices(kind, d) * K
    if draw(st.booleans(), label="quadratic cost"):
        costs = None
    else:  # any losses: finite (huge ones too) and, now and then, NaN / +-inf
        nonfinite = st.sampled_from([math.nan, math.inf, -math.inf])
        element = st.one_of(_finite(width), _finite(width), _finite(width), nonfinite)  # 1 in 4 non-finite
        costs = torch.from_numpy(draw(hnp.arrays(np_dtype, (P, M), elements=element), label="costs"))
    return X, config, costs


@pytest.mark.filterwarnings("ignore::polystep.transport.ConvergenceWarning")
@given(step_problems(), st.integers(0, 3))
def test_property_step(problem, t):
    X, config, costs = problem
    X0 = X.clone()
    cost_fn = _quadratic if costs is None else (lambda probes: costs)
    state = psf.PolyStepState(t=t)
    try:
        new, new_state, info = psf.step(X, cost_fn, state, config, _gen(0))
    except (ValueError, FloatingPointError) as err:
        event(f"raised {type(err).__name__}")
        assert any(isinstance(err, kind) and re.match(pattern, str(err)) for kind, pattern in _STEP_ERRORS), err
        assert f"step {t}" in str(err)
        assert torch.equal(X, X0)
        return
    event("stepped")
    assert torch.equal(X, X0)
    assert new.dtype == X.dtype and new.shape == X.shape and bool(torch.isfinite(new).all())
    assert new_state.t == t + 1
    assert bool(torch.isfinite(info.weights).all()) and bool(torch.isfinite(info.costs).all())
    assert math.isfinite(info.entropy)
    # w = T / sum T in X's dtype: rows sum to 1 within V ulps
    V = info.weights.shape[1]
    assert float((info.weights.double().sum(1) - 1).abs().max()) <= V * torch.finfo(X.dtype).eps
    # |dx| = r_s |sum_v w_iv R_i u_v| <= r_s, up to the rounding of r_s to X's dtype, of the unit
    # vectors and of the sum (relative (V + 3) eps), plus d subnormal spacings for moves that small.
    assert bool(torch.isfinite(info.displacement).all())
    fi = torch.finfo(X.dtype)
    r_s = torch.tensor(info.step_radius, dtype=torch.float64).to(X.dtype).item()
    bound = r_s * (1 + 4 * V * fi.eps) + 4 * X.shape[1] * fi.tiny * fi.eps
    assert float(info.displacement.double().max()) <= bound


@given(st.data())
def test_property_resolve_radii(data):
    """``resolve(t, dtype)`` returns the formula's radii exactly when the dtype holds them, else a
    ValueError naming the step, the radius and the dtype -- never a 0, inf or NaN radius."""
    name = data.draw(st.sampled_from(sorted(DTYPES)), label="dtype")
    dtype, _, width = DTYPES[name]
    eps, r_s, r_p = (data.draw(_any_positive(width), label=k) for k in ("eps", "step_radius", "probe_radius"))
    mode = data.draw(st.sampled_from(psf.RADIUS_MODES), label="radius_mode")
    t = data.draw(st.integers(0, 10), label="t")
    cfg = PolyStepConfig(eps=eps, step_radius=r_s, probe_radius=r_p, radius_mode=mode)
    factor = eps if mode == "times_eps" else 1.0
    expected = (eps, r_s * factor, r_p * factor)

    def holds(value: float) -> bool:
        rounded = torch.tensor(value, dtype=torch.float64).to(dtype).item()
        return math.isfinite(value) and value > 0 and math.isfinite(rounded) and rounded > 0

    if holds(expected[1]) and holds(expected[2]):
        assert cfg.resolve(t, dtype) == expected
    else:
        with pytest.raises(ValueError, match=rf"^step {t}: (step|probe)_radius .*(overflows|underflows to 0 in) "
                                             rf"torch\.float(32|64)"):
            cfg.resolve(t, dtype)


@given(st.data())
def test_property_radius_schedules(data):
    """Radius/temperature schedules with positive finite parameters give positive finite values
    within the hull of their end points (InverseSqrt: in (0, start])."""
    lo_hi = st.tuples(_positive(64), _positive(64))
    start, end = data.draw(lo_hi, label="start, end")
    steps = data.draw(st.integers(1, 10**6), label="steps")
    t = data.draw(st.integers(0, 2 * 10**6), label="t")
    kind = data.draw(st.sampled_from(["constant", "linear", "cosine", "inverse_sqrt"]), label="kind")
    if kind == "constant":
        sched, lo, hi = Constant(value=start), start, start
    elif kind == "linear":
        sched, lo, hi = Linear(start=start, end=end, steps=steps), min(start, end), max(start, end)
    elif kind == "cosine":
        sched, lo, hi = Cosine(start=start, end=end, steps=steps), min(start, end), max(start, end)
    else:
        offset = data.draw(_positive(64), label="offset")
        assume(math.isfinite(t + offset))
        sched, lo, hi = InverseSqrt(start=start, offset=offset), 0.0, start
    value = sched(t)
    assert math.isfinite(value) and value > 0 or (kind == "inverse_sqrt" and value == 0.0), value
    assert lo <= value <= hi, (lo, value, hi)
