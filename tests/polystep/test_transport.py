"""Tests for polystep.transport (paper/polystep_reconstruction.md §2.7, §2.8 and §3.1).

Reference implementations: POT 0.9.7 (``ot.sinkhorn`` with ``method="sinkhorn_log"`` for the
balanced problem; ``ot.unbalanced.sinkhorn_unbalanced`` for the semi-relaxed problem).

POT's unbalanced solver minimises
    <C,T> + reg * Omega(T) + reg_m1 KL(T 1 || a) + reg_m2 KL(T^T 1 || b)      (generalised KL)
with ``Omega(T) = sum T (log T - 1)`` for ``reg_type="entropy"`` and ``Omega(T) = KL(T || a b^T)``
for ``reg_type="kl"`` (the default since 0.9.5). Our objective
    <C,T> + eps sum T (log T - 1) + lam KL(T^T 1 || b),  T 1 = a
is therefore exactly POT's ``reg=eps, reg_m=(inf, lam), reg_type="entropy"`` (``reg_m1 = inf``
turns the row penalty into the hard constraint; with ``sum T = 1`` the generalised and ordinary
KL agree). With ``reg_type="kl"`` the regulariser expands (on ``T 1 = a``) to
``sum T (log T - 1) - sum_j q_j log b_j + const``, i.e. POT "kl" on ``C`` solves our problem with
cost ``C - eps log b_j``; equivalently ours(C) = POT-kl(C + eps log b). The two conventions agree
only for uniform ``b`` -- see ``test_kl_relaxed_pot_kl_convention``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import ot
import pytest
import torch

from polystep.transport import (
    SOLVERS,
    ConvergenceWarning,
    argmin_plan,
    barycentric,
    kl_relaxed_plan,
    sinkhorn_plan,
    softmax_plan,
    transport_plan,
)

SHAPES = [(3, 4), (20, 16), (100, 16)]
EPSILONS = [0.05, 0.1, 1.0]
# Tight settings so that our solver error (residual 1e-12) is negligible against the 1e-6
# agreement tolerance required with POT.
TIGHT = {"max_iter": 100_000, "tol": 1e-12}


def _problem(P: int, V: int, seed: int, uniform: bool = False):
    """Random costs in [0, 1) and random strictly positive marginals (float64 NumPy)."""
    rng = np.random.default_rng(seed)
    C = rng.random((P, V))
    if uniform:
        return C, np.full(P, 1.0 / P), np.full(V, 1.0 / V)
    a = rng.random(P) + 0.1
    b = rng.random(V) + 0.1
    return C, a / a.sum(), b / b.sum()


def _t(x):
    return torch.tensor(x, dtype=torch.float64)


def _pot_semi_relaxed(lam: float, reg_type: str) -> dict:
    """POT arguments for our problem: hard row constraint (reg_m1 = inf), column penalty lam.

    The translation-invariant variant (Sejourne et al. 2022) removes the constant dual mode whose
    slow contraction (rate lam/(lam+eps)) makes POT's default method need ~4e4 iterations at
    lam = 100, eps = 0.05; it solves the same problem (measured agreement ~1e-13 with both).
    """
    return dict(
        reg_m=(float("inf"), lam),
        reg_type=reg_type,
        method="sinkhorn_translation_invariant",
        numItermax=100_000,
        stopThr=1e-12,
    )


def _call(solver, C, eps, a=None, b=None, lam=None):
    kw = {} if solver in ("softmax", "argmin") else dict(TIGHT)
    return transport_plan(solver, C, eps, lam=lam, a=a, b=b, **kw)


# ----------------------------------------------------------------------------------------------
# marginals and limits
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize(
    ("solver", "lam"), [("softmax", None), ("argmin", None), ("sinkhorn", None), ("kl_relaxed", 0.5)]
)
def test_rows_equal_a(solver, lam, shape):
    C, a, b = _problem(*shape, seed=1)
    plan = _call(solver, _t(C), 0.1, _t(a), _t(b), lam)
    assert plan.shape == shape and plan.dtype == torch.float64
    assert bool((plan >= 0).all())
    # Every solver ends with the row (f) update, so rows hold to rounding (~1e-16 per entry).
    torch.testing.assert_close(plan.sum(dim=1), _t(a), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
def test_sinkhorn_columns_equal_b(shape):
    C, a, b = _problem(*shape, seed=2)
    plan, info = sinkhorn_plan(_t(C), 0.1, _t(a), _t(b), log=True, **TIGHT)
    assert info["converged"] and info["err"] < 1e-12
    torch.testing.assert_close(plan.sum(dim=0), _t(b), rtol=0, atol=1e-12)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("eps", EPSILONS)
def test_softmax_equals_kl_relaxed_lam0_exactly(shape, eps):
    C, a, b = _problem(*shape, seed=3)
    assert torch.equal(softmax_plan(_t(C), eps, _t(a)), kl_relaxed_plan(_t(C), eps, 0.0, _t(a), _t(b)))


def test_softmax_closed_form():
    C, a, _ = _problem(7, 5, seed=4)
    w = np.exp(-C / 0.3)
    expected = a[:, None] * w / w.sum(axis=1, keepdims=True)
    # Direct float64 evaluation vs. shifted softmax: relative rounding ~1e-15.
    np.testing.assert_allclose(softmax_plan(_t(C), 0.3, _t(a)).numpy(), expected, rtol=1e-13, atol=0)


def test_kl_relaxed_lam_inf_is_sinkhorn():
    C, a, b = _problem(20, 16, seed=5)
    assert torch.equal(
        kl_relaxed_plan(_t(C), 0.1, math.inf, _t(a), _t(b), **TIGHT), sinkhorn_plan(_t(C), 0.1, _t(a), _t(b), **TIGHT)
    )


@pytest.mark.parametrize("shape", SHAPES)
def test_large_lam_approaches_sinkhorn(shape):
    C, a, b = _problem(*shape, seed=6)
    ref = sinkhorn_plan(_t(C), 0.1, _t(a), _t(b), **TIGHT)
    d3 = (kl_relaxed_plan(_t(C), 0.1, 1e3, _t(a), _t(b), **TIGHT) - ref).abs().max().item()
    d6 = (kl_relaxed_plan(_t(C), 0.1, 1e6, _t(a), _t(b), **TIGHT) - ref).abs().max().item()
    # ||P_lam - P_inf|| = O(1/lam): measured ~1e-5 at 1e3 and ~1e-8 at 1e6.
    assert d6 < 1e-6
    assert d6 < d3


def test_softmax_eps_to_zero_is_argmin():
    C, a, _ = _problem(20, 16, seed=7)
    # Cost gaps of a U[0,1) 20x16 matrix are > 1e-4, so at eps = 1e-6 the runner-up weight is
    # exp(-100) ~ 4e-44.
    torch.testing.assert_close(softmax_plan(_t(C), 1e-6, _t(a)), argmin_plan(_t(C), _t(a)), rtol=0, atol=1e-30)


def test_softmax_eps_to_inf_is_uniform():
    C, a, _ = _problem(20, 16, seed=8)
    plan = softmax_plan(_t(C), 1e9, _t(a))
    # T_iv = a_i / V (1 + O(osc(C)/eps)) with osc(C) < 1.
    torch.testing.assert_close(plan, _t(a)[:, None].expand(20, 16) / 16, rtol=1e-8, atol=0)


def test_argmin_plan_one_hot_and_ties():
    C = _t([[0.3, 0.1, 0.1], [2.0, 1.0, 0.5]])
    plan = argmin_plan(C)
    assert plan.tolist() == [[0.0, 0.5, 0.0], [0.0, 0.0, 0.5]]


# ----------------------------------------------------------------------------------------------
# agreement with POT
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("eps", EPSILONS)
def test_sinkhorn_matches_pot(shape, eps):
    C, a, b = _problem(*shape, seed=10)
    ours, info = sinkhorn_plan(_t(C), eps, _t(a), _t(b), log=True, **TIGHT)
    assert info["converged"]
    ref = ot.sinkhorn(a, b, C, eps, method="sinkhorn_log", numItermax=100_000, stopThr=1e-13)
    # Both solvers converged to ~1e-12 marginal residual; measured agreement ~1e-13.
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("eps", EPSILONS)
@pytest.mark.parametrize("lam", [1e-2, 1.0, 100.0])
def test_kl_relaxed_matches_pot_unbalanced(shape, eps, lam):
    C, a, b = _problem(*shape, seed=11)
    ours, info = kl_relaxed_plan(_t(C), eps, lam, _t(a), _t(b), log=True, **TIGHT)
    assert info["converged"]
    with warnings.catch_warnings():
        # POT warns that reg_type="entropy" overrides its reference measure c with ones -- intended.
        warnings.simplefilter("ignore", UserWarning)
        ref = ot.unbalanced.sinkhorn_unbalanced(a, b, C, eps, **_pot_semi_relaxed(lam, "entropy"))
    # Same objective (see module docstring); POT's plain-domain scaling is accurate here because
    # exp(-C/eps) >= e^-20 for C in [0, 1), eps >= 0.05. Measured agreement <= 3e-13.
    np.testing.assert_allclose(ours.numpy(), ref, rtol=0, atol=1e-6)


def test_kl_relaxed_matches_pot_plain_scaling():
    # Cross-check with POT's plain generalized Sinkhorn ("sinkhorn" method, Chizat et al. 2018),
    # whose stopping rule also watches the slowly contracting constant mode of (log u, log v);
    # lam = 1 keeps it fast (~500 iterations).
    C, a, b = _problem(20, 16, seed=11)
    ours = kl_relaxed_plan(_t(C), 0.1, 1.0, _t(a), _t(b), **TIGHT).numpy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ref = ot.unbalanced.sinkhorn_unbalanced(
            a, b, C, 0.1, reg_m=(float("inf"), 1.0), reg_type="entropy", numItermax=100_000, stopThr=1e-12
        )
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize("lam", [1e-2, 1.0, 100.0])
def test_kl_relaxed_pot_kl_convention(lam):
    C, a, b = _problem(20, 16, seed=12)
    eps = 0.1
    ours = kl_relaxed_plan(_t(C), eps, lam, _t(a), _t(b), **TIGHT).numpy()
    kw = _pot_semi_relaxed(lam, "kl")
    pot_kl_shifted = ot.unbalanced.sinkhorn_unbalanced(a, b, C + eps * np.log(b)[None, :], eps, **kw)
    np.testing.assert_allclose(ours, pot_kl_shifted, rtol=0, atol=1e-6)
    # Without the shift, reg_type="kl" is a different problem for non-uniform b (measured
    # differences 1e-5 .. 1e-2, largest for small lam).
    pot_kl = ot.unbalanced.sinkhorn_unbalanced(a, b, C, eps, **kw)
    assert np.abs(ours - pot_kl).max() > 1e-6
    # ... and the same problem for uniform b.
    Cu, au, bu = _problem(20, 16, seed=12, uniform=True)
    ours_u = kl_relaxed_plan(_t(Cu), eps, lam, **TIGHT).numpy()
    np.testing.assert_allclose(ours_u, ot.unbalanced.sinkhorn_unbalanced(au, bu, Cu, eps, **kw), rtol=0, atol=1e-6)


def test_kl_relaxed_duals_satisfy_fixed_point():
    C, a, b = _problem(20, 16, seed=13)
    eps, lam = 0.1, 2.0
    plan, info = kl_relaxed_plan(_t(C), eps, lam, _t(a), _t(b), log=True, **TIGHT)
    f, g = info["f"], info["g"]
    torch.testing.assert_close(plan, torch.exp((f[:, None] + g[None, :] - _t(C)) / eps), rtol=1e-10, atol=0)
    # Stationarity in the column marginal: g_j = -lam log(q_j / b_j).
    q = plan.sum(dim=0)
    torch.testing.assert_close(g, -lam * torch.log(q / _t(b)), rtol=0, atol=1e-9)


# ----------------------------------------------------------------------------------------------
# barycentric projection
# ----------------------------------------------------------------------------------------------


def test_barycentric_one_hot_picks_vertex():
    gen = torch.Generator().manual_seed(0)
    targets = torch.randn(4, 6, 3, generator=gen, dtype=torch.float64)
    C = torch.rand(4, 6, generator=gen, dtype=torch.float64)
    plan = argmin_plan(C)
    expected = targets[torch.arange(4), C.argmin(dim=1)]
    torch.testing.assert_close(barycentric(plan, targets), expected, rtol=0, atol=0)


def test_barycentric_formula_and_uniform_weights():
    targets = _t([[[0.0, 0.0], [2.0, 0.0]], [[1.0, 1.0], [1.0, 3.0]]])
    plan = _t([[0.25, 0.25], [0.125, 0.375]])
    # x'_i = sum_v T_iv y_iv / sum_v T_iv (Eq. 7): row 2 -> (0.125*[1,1] + 0.375*[1,3]) / 0.5.
    assert barycentric(plan, targets).tolist() == [[1.0, 0.0], [1.0, 2.5]]


def test_barycentric_shape_errors():
    with pytest.raises(ValueError, match="plan must be a 2-D tensor"):
        barycentric(torch.ones(3), torch.ones(3, 2, 1))
    with pytest.raises(ValueError, match="targets must be a 3-D tensor"):
        barycentric(torch.ones(3, 2), torch.ones(3, 2))
    with pytest.raises(ValueError, match=r"targets must have shape \[P, V, d\] = \[3, 2, d\]"):
        barycentric(torch.ones(3, 2), torch.ones(3, 4, 1))


def test_barycentric_value_errors():
    targets = torch.ones(2, 2, 1)
    with pytest.raises(ValueError, match="plan contains non-finite entries"):
        barycentric(torch.tensor([[0.5, math.nan], [0.5, 0.0]]), targets)
    with pytest.raises(ValueError, match="targets contain non-finite entries"):
        barycentric(torch.full((2, 2), 0.25), torch.tensor([[[1.0], [math.inf]], [[0.0], [0.0]]]))
    with pytest.raises(ValueError, match=r"plan must be non-negative, got min\(plan\) = -0.25"):
        barycentric(torch.tensor([[0.75, -0.25], [0.5, 0.0]]), targets)
    with pytest.raises(ValueError, match=r"row\(s\) \[0\] of plan have zero mass"):
        barycentric(torch.tensor([[0.0, 0.0], [0.5, 0.5]]), targets)


# ----------------------------------------------------------------------------------------------
# dtypes and numerical stability
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("solver", "lam"), [("softmax", None), ("sinkhorn", None), ("kl_relaxed", 1.0), ("argmin", None)])
def test_float32(solver, lam):
    C, a, b = _problem(20, 16, seed=14)
    C32 = torch.tensor(C, dtype=torch.float32)
    kw = {} if solver in ("softmax", "argmin") else {"max_iter": 5000}
    plan = transport_plan(solver, C32, 0.1, lam=lam, a=torch.tensor(a, dtype=torch.float32), b=b, **kw)
    assert plan.dtype == torch.float32 and plan.device == C32.device
    ref = _call(solver, _t(C), 0.1, _t(a), _t(b), lam)
    # float32 log-domain iterations: errors of a few ulps relative to entries ~1/(PV) = 3e-3.
    torch.testing.assert_close(plan.double(), ref, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("solver", "lam"), [("softmax", None), ("sinkhorn", None), ("kl_relaxed", 1.0), ("argmin", None)])
def test_float32_plan_is_the_float64_plan_rounded(solver, lam):
    # Plans are computed in float64 whatever C's dtype (module docstring) and rounded to C's dtype;
    # tol = 1e-3 is above both dtypes' floors, so both runs take the same iterations.
    C32 = torch.tensor(_problem(20, 16, seed=20)[0], dtype=torch.float32)
    kw = {} if solver in ("softmax", "argmin") else {"tol": 1e-3}
    plan32 = transport_plan(solver, C32, 0.1, lam=lam, **kw)
    assert plan32.dtype == torch.float32
    assert torch.equal(plan32, transport_plan(solver, C32.double(), 0.1, lam=lam, **kw).float())


@pytest.mark.parametrize(("solver", "lam"), [("softmax", None), ("sinkhorn", None), ("kl_relaxed", 1.0), ("argmin", None)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tiny_eps_no_nan(solver, lam, dtype):
    C, a, _ = _problem(20, 16, seed=15)
    C_t = torch.tensor(C, dtype=dtype)
    kw = {} if solver in ("softmax", "argmin") else {"max_iter": 50}
    with warnings.catch_warnings():
        # At eps = 1e-6 Sinkhorn needs far more than 50 sweeps; only finiteness is checked here.
        warnings.simplefilter("ignore", ConvergenceWarning)
        plan = transport_plan(solver, C_t, 1e-6, lam=lam, **kw)
    assert bool(torch.isfinite(plan).all())
    torch.testing.assert_close(plan.sum(dim=1), torch.full((20,), 1 / 20, dtype=dtype), rtol=1e-5, atol=0)


def test_large_costs_no_overflow():
    C = _t([[1e300, 0.0], [-1e300, 1e300]])
    plan = softmax_plan(C, 1e-3)
    assert plan.tolist() == [[0.0, 0.5], [0.5, 0.0]]


def test_nonconvergence_warns():
    C, a, b = _problem(20, 16, seed=16)
    with pytest.warns(ConvergenceWarning, match="sinkhorn_plan did not converge"):
        _, info = sinkhorn_plan(_t(C), 0.01, _t(a), _t(b), max_iter=3, log=True)
    assert info["converged"] is False and info["n_iter"] == 3


def test_log_dict_contents():
    C, a, b = _problem(5, 4, seed=17)
    _, info = sinkhorn_plan(_t(C), 0.5, _t(a), _t(b), log=True)
    assert set(info) >= {"n_iter", "err", "converged", "f", "g"}
    assert info["f"].shape == (5,) and info["g"].shape == (4,)
    _, info0 = kl_relaxed_plan(_t(C), 0.5, 0.0, log=True)
    assert info0["converged"] and info0["n_iter"] == 1


def test_sinkhorn_uniform_float32_default_marginals():
    # Uniform float32 marginals do not sum exactly to 1; b is rescaled to a's mass so the
    # balanced problem stays feasible and converges.
    C = torch.rand(100, 16, generator=torch.Generator().manual_seed(0))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        plan = sinkhorn_plan(C, 0.1)
    torch.testing.assert_close(plan.sum(dim=0), torch.full((16,), 1 / 16), rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# error messages
# ----------------------------------------------------------------------------------------------


ALL_FUNCS = [
    lambda C, eps, **kw: softmax_plan(C, eps, **kw),
    lambda C, eps, **kw: sinkhorn_plan(C, eps, **kw),
    lambda C, eps, **kw: kl_relaxed_plan(C, eps, 1.0, **kw),
]


@pytest.mark.parametrize("fn", ALL_FUNCS)
@pytest.mark.parametrize("eps", [0.0, -1.0, math.inf, math.nan, "0.1", None])
def test_bad_eps(fn, eps):
    with pytest.raises(ValueError, match="eps must be > 0"):
        fn(torch.ones(2, 3, dtype=torch.float64), eps)


@pytest.mark.parametrize("fn", ALL_FUNCS)
@pytest.mark.parametrize(
    ("C", "msg"),
    [
        (torch.ones(3, dtype=torch.float64), "C must be 2-D"),
        (torch.ones(2, 3, 4, dtype=torch.float64), "C must be 2-D"),
        (torch.ones(0, 3, dtype=torch.float64), "C must have P >= 1 rows"),
        (torch.ones(2, 3, dtype=torch.int64), "C must have a floating-point dtype"),
        (torch.tensor([[0.0, math.inf]]), "C contains non-finite entries"),
        (torch.tensor([[0.0, math.nan]]), "C contains non-finite entries"),
        (np.ones((2, 3)), "C must be a torch.Tensor"),
    ],
)
def test_bad_cost(fn, C, msg):
    with pytest.raises(ValueError, match=msg):
        fn(C, 0.1)


@pytest.mark.parametrize("fn", ALL_FUNCS)
@pytest.mark.parametrize(
    ("a", "msg"),
    [
        (torch.full((3,), 1 / 3), r"a must have shape \(2,\) to match C of shape \(2, 3\), got \(3,\)"),
        (torch.tensor([1.5, -0.5]), "a must be non-negative"),
        (torch.tensor([0.5, 0.6]), "a must sum to 1"),
        (torch.tensor([math.nan, 0.5]), "a contains non-finite entries"),
    ],
)
def test_bad_a(fn, a, msg):
    with pytest.raises(ValueError, match=msg):
        fn(torch.ones(2, 3), 0.1, a=a)


@pytest.mark.parametrize("fn", ALL_FUNCS[1:])
@pytest.mark.parametrize(
    ("b", "msg"),
    [
        (torch.full((2,), 0.5), r"b must have shape \(3,\) to match C of shape \(2, 3\), got \(2,\)"),
        (torch.tensor([1.0, 0.5, -0.5]), "b must be non-negative"),
        (torch.tensor([0.2, 0.2, 0.2]), "b must sum to 1"),
    ],
)
def test_bad_b(fn, b, msg):
    with pytest.raises(ValueError, match=msg):
        fn(torch.ones(2, 3), 0.1, b=b)


@pytest.mark.parametrize("lam", [-1.0, -1e-12, math.nan, "1", None])
def test_bad_lam(lam):
    with pytest.raises(ValueError, match="lam must be >= 0"):
        kl_relaxed_plan(torch.ones(2, 3), 0.1, lam)


@pytest.mark.parametrize(
    ("kw", "msg"),
    [({"max_iter": 0}, "max_iter must be an integer >= 1, got 0"), ({"tol": 0.0}, "tol must be a finite number > 0"),
     ({"check_every": 0}, "check_every must be an integer >= 1, got 0")],
)
def test_bad_solver_options(kw, msg):
    with pytest.raises(ValueError, match=msg):
        sinkhorn_plan(torch.ones(2, 3), 0.1, **kw)
    with pytest.raises(ValueError, match=msg):
        kl_relaxed_plan(torch.ones(2, 3), 0.1, 1.0, **kw)


def test_transport_plan_dispatch_errors():
    C = torch.ones(2, 3)
    with pytest.raises(ValueError,
                       match=r"solver must be one of \('softmax', 'sinkhorn', 'kl_relaxed', 'argmin'\), got 'emd'"):
        transport_plan("emd", C, 0.1)
    with pytest.raises(ValueError, match="lam must be given for solver 'kl_relaxed'"):
        transport_plan("kl_relaxed", C, 0.1)
    with pytest.raises(ValueError, match="lam is only used by solver 'kl_relaxed'"):
        transport_plan("sinkhorn", C, 0.1, lam=1.0)
    with pytest.raises(ValueError, match="solver 'softmax' is closed-form and takes no options"):
        transport_plan("softmax", C, 0.1, max_iter=10)
    with pytest.raises(ValueError, match="b must have shape"):
        transport_plan("argmin", C, 0.1, b=torch.ones(2) / 2)
    with pytest.raises(ValueError, match="eps must be > 0"):
        transport_plan("argmin", C, 0.0)


def test_solvers_tuple():
    assert SOLVERS == ("softmax", "sinkhorn", "kl_relaxed", "argmin")


@pytest.mark.parametrize(("solver", "lam"), [("softmax", None), ("sinkhorn", None), ("kl_relaxed", 1.0)])
def test_zero_mass_marginal_entries(solver, lam):
    C, _, _ = _problem(5, 4, seed=18)
    a = _t([0.0, 0.25, 0.25, 0.25, 0.25])
    b = _t([0.0, 0.5, 0.25, 0.25])
    plan = _call(solver, _t(C), 0.1, a, b, lam)
    assert bool(torch.isfinite(plan).all())
    assert plan[0].abs().max().item() == 0.0  # a zero-mass particle ships nothing
    torch.testing.assert_close(plan.sum(dim=1), a, rtol=0, atol=1e-12)
    if solver != "softmax":
        assert plan[:, 0].abs().max().item() == 0.0  # log b_0 = -inf forces an empty column


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("solver", "lam"), [("softmax", None), ("sinkhorn", None), ("kl_relaxed", 1.0), ("argmin", None)])
def test_cuda_matches_cpu(solver, lam):
    C, a, b = _problem(20, 16, seed=19)
    cpu = _call(solver, _t(C), 0.1, _t(a), _t(b), lam)
    gpu = _call(solver, _t(C).cuda(), 0.1, _t(a), _t(b), lam)  # marginals follow C's device
    assert gpu.device.type == "cuda" and gpu.dtype == torch.float64
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-12)
