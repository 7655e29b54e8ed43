"""Tests for polystep.functional: the pure PolyStep step (Algorithm 1;
paper/polystep_reconstruction.md §2.1-§2.14).

Order: the step's definition (probes, scales, jitter, costs), then its limits (eps -> 0, eps -> inf,
the large-eps first-order identity of section 2.14), properties (displacement <= r_s, solvers,
determinism, non-finite costs), argument validation, and last a convergence sanity check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from polystep import functional as psf
from theory import objectives
from polystep.functional import NonFiniteLossError, PolyStepConfig, PolyStepState
from polystep.polytopes import VERTEX_KINDS, num_vertices, random_rotations, vertices
from polystep.schedules import InverseSqrt, Linear


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _clone(g: torch.Generator) -> torch.Generator:
    c = torch.Generator()
    c.set_state(g.get_state())
    return c


def _quadratic(dim: int, seed: int = 0, cond: float = 4.0) -> objectives.Quadratic:
    return objectives.random_quadratic(dim, cond, _gen(seed))


def _particles(n: int, d: int, seed: int = 1, dtype=torch.float64) -> torch.Tensor:
    return torch.randn(n, d, generator=_gen(seed), dtype=torch.float64).to(dtype)


def _absolute(**kw) -> PolyStepConfig:
    return PolyStepConfig(radius_mode="absolute", **kw)


# ----------------------------------------------------------------------------------------------
# definition of the step: probes, scales, jitter, cost averaging
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", VERTEX_KINDS)
@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_propose_matches_definition(kind, d):
    """directions = R_i u_v with R_i drawn from the generator; probes = x_i + s_k r_p R_i u_v."""
    X = _particles(4, d)
    cfg = _absolute(polytope=kind, step_radius=0.7, probe_radius=0.3, num_probes=2)
    g = _gen(7)
    rot = random_rotations(4, d, _clone(g), dtype=torch.float64)
    prop = psf.propose(X, psf.init(), cfg, g)
    u = vertices(kind, d, dtype=torch.float64)
    V = num_vertices(kind, d)
    expected_dirs = torch.einsum("pij,vj->pvi", rot, u)
    assert prop.directions.shape == (4, V, d)
    # same formula, possibly different summation order in einsum: a few ulps.
    torch.testing.assert_close(prop.directions, expected_dirs, rtol=0, atol=1e-15)
    # directions are unit vectors (rotations of unit vertices): float64 rounding only.
    torch.testing.assert_close(prop.directions.norm(dim=-1), torch.ones(4, V, dtype=torch.float64),
                               rtol=0, atol=1e-14)
    assert (prop.eps, prop.step_radius, prop.probe_radius) == (0.1, 0.7, 0.3)
    offsets = prop.probes.reshape(4, V, 2, d) - X[:, None, None, :]
    expected = torch.tensor([1 / 3, 2 / 3], dtype=torch.float64)[None, None, :, None] * 0.3 \
        * prop.directions[:, :, None, :]
    # x + o - x recovers o up to one rounding of |x| ~ 3 (ulp 4.4e-16).
    torch.testing.assert_close(offsets, expected, rtol=0, atol=4e-15)


@pytest.mark.parametrize("K", [1, 2, 3, 5])
def test_probe_scales_are_k_over_k_plus_1(K):
    cfg = _absolute(num_probes=K, probe_radius=1.0)
    assert cfg.probe_scales == tuple(k / (K + 1) for k in range(1, K + 1))
    X = torch.zeros(2, 3, dtype=torch.float64)  # probes = offsets exactly
    prop = psf.propose(X, psf.init(), cfg, _gen(0))
    assert prop.probes.shape == (2, 6 * K, 3)
    # X = 0 and r_p = 1: ||p_ivk|| = s_k ||R_i u_v|| = s_k up to the rounding of a unit vector's norm.
    norms = prop.probes.norm(dim=-1).reshape(2, 6, K)
    scales = torch.tensor(cfg.probe_scales, dtype=torch.float64).expand(2, 6, K)
    torch.testing.assert_close(norms, scales, rtol=1e-14, atol=0)


def test_times_eps_multiplies_radii():
    cfg = PolyStepConfig(eps=0.25, step_radius=2.0, probe_radius=3.0)  # default radius_mode
    assert cfg.resolve(0) == (0.25, 0.5, 0.75)
    cfg_abs = _absolute(eps=0.25, step_radius=2.0, probe_radius=3.0)
    assert cfg_abs.resolve(0) == (0.25, 2.0, 3.0)
    # schedules are evaluated at state.t
    cfg_s = _absolute(eps=Linear(start=1.0, end=0.5, steps=10), step_radius=InverseSqrt(start=2.0),
                      probe_radius=1.0)
    prop = psf.propose(torch.zeros(1, 2, dtype=torch.float64), PolyStepState(t=3), cfg_s, _gen(0))
    assert prop.eps == 1.0 - 0.5 * 3 / 10 and prop.step_radius == 2.0 / 2.0


@pytest.mark.parametrize("K", [1, 3])
def test_cost_is_mean_over_probes(K):
    X = _particles(3, 2)
    cfg = _absolute(num_probes=K)
    prop = psf.propose(X, psf.init(), cfg, _gen(0))
    raw = torch.rand(3, 4 * K, generator=_gen(1), dtype=torch.float64)
    _, _, info = psf.update(X, prop, raw, psf.init(), cfg)
    # same reduction as the implementation (mean over the last axis of a [P, V, K] view): exact
    # up to the order of a K-term sum.
    torch.testing.assert_close(info.costs, raw.reshape(3, 4, K).mean(dim=2), rtol=1e-15, atol=0)
    assert info.forward_evals == 3 * 4 * K


def test_jitter_is_uniform():
    """r_p <- r_p (1 + eta), eta ~ U[-eta_max, eta_max] (Theorem 4.2 (iv)); KS test on 2000 draws."""
    eta_max, r_p = 0.3, 2.0
    cfg = _absolute(probe_radius=r_p, probe_jitter=eta_max)
    X = torch.zeros(1, 2, dtype=torch.float64)
    g = _gen(2024)
    etas = []
    for _ in range(2000):
        prop = psf.propose(X, psf.init(), cfg, g)
        etas.append(prop.probe_radius / r_p - 1.0)
        # the probes use the jittered radius (K = 1: scale 1/2)
        np.testing.assert_allclose(prop.probes.norm(dim=-1).numpy(), 0.5 * prop.probe_radius, rtol=1e-14)
    etas = np.array(etas)
    assert etas.min() >= -eta_max and etas.max() <= eta_max
    # coverage of the whole interval: for 2000 uniform draws the extreme gaps are ~ 0.6/2000.
    assert etas.min() < -0.29 and etas.max() > 0.29
    # fixed seed, so deterministic; a non-uniform law (e.g. eta on [0, eta_max]) gives p ~ 0.
    p = stats.kstest(etas, stats.uniform(loc=-eta_max, scale=2 * eta_max).cdf).pvalue
    assert p > 0.01, p


def test_no_jitter_leaves_probe_radius_exact():
    cfg = _absolute(probe_radius=0.37)
    g = _gen(0)
    for t in range(5):
        assert psf.propose(_particles(2, 3), PolyStepState(t=t), cfg, g).probe_radius == 0.37
    cfg_eps = PolyStepConfig(eps=0.3, probe_radius=0.37)
    assert psf.propose(_particles(2, 3), psf.init(), cfg_eps, g).probe_radius == 0.37 * 0.3


# ----------------------------------------------------------------------------------------------
# limits (paper/polystep_reconstruction.md §2.14)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", VERTEX_KINDS)
def test_eps_to_zero_moves_to_best_vertex(kind):
    d = 3
    q = _quadratic(d)
    X = _particles(5, d)
    cfg = _absolute(polytope=kind, eps=1e-8, step_radius=0.4, probe_radius=0.2)
    g = _gen(11)
    prop = psf.propose(X, psf.init(), cfg, _clone(g))
    C = q(prop.probes)
    best = C.argmin(dim=1)
    # precondition: no near-ties, so exp(-(C - C_min)/eps) underflows to exactly 0 off the argmin.
    gap = C.sort(dim=1).values[:, 1] - C.min(dim=1).values
    assert gap.min() > 1e-5
    new, state, info = psf.step(X, q, psf.init(), cfg, g)
    expected = X + 0.4 * prop.directions[torch.arange(5), best]
    # weights are exactly one-hot (0/1), so the move is exactly r_s R_i u_best.
    assert torch.equal(info.weights, torch.nn.functional.one_hot(best, prop.directions.shape[1]).double())
    assert torch.equal(new, expected)
    # the argmin solver is the same limit
    new_argmin, _, _ = psf.step(X, q, psf.init(), _absolute(polytope=kind, solver="argmin", step_radius=0.4,
                                                        probe_radius=0.2), _gen(11))
    assert torch.equal(new_argmin, expected)


@pytest.mark.parametrize("kind", VERTEX_KINDS)
def test_eps_to_inf_particles_stay(kind):
    q = _quadratic(3)
    X = _particles(5, 3)
    r_s = 0.5
    cfg = _absolute(polytope=kind, eps=1e8, step_radius=r_s, probe_radius=0.5)
    new, _, info = psf.step(X, q, psf.init(), cfg, _gen(3))
    # w_iv = 1/V (1 + O(|C| / eps)) with |C| ~ 10 and the templates are centred: |dx| ~ 1e-7 r_s.
    assert float(info.displacement.max()) < 1e-6 * r_s
    torch.testing.assert_close(new, X, rtol=0, atol=1e-6 * r_s)
    V = num_vertices(kind, 3)
    torch.testing.assert_close(info.weights, torch.full((5, V), 1 / V, dtype=torch.float64), rtol=1e-6, atol=0)
    assert info.entropy == pytest.approx(math.log(V), rel=1e-9)


@pytest.mark.parametrize("eps", [10.0, 100.0])
def test_large_eps_first_order_gradient_step(eps):
    """Orthoplex, K = 1: dx = -(r_s r_p)/(2 d eps) grad L (1 + O(r_p^2 |A| / eps)), per step.

    For L = 1/2 x^T A x - b^T x the probes at +-(r_p/2) R e_j give C_{+-j} = L +- (r_p/2) g'_j + c_j
    with g' = R^T grad L and c_j = (r_p^2/8) (R^T A R)_jj exactly (central differences along an
    orthonormal frame are exact for a quadratic).  Softmax then gives
        w_{+j} - w_{-j} = -sinh(delta_j/eps) e^{-c_j/eps} / sum_k cosh(delta_k/eps) e^{-c_k/eps},
    delta_j = (r_p/2) g'_j, i.e. the predicted step times a per-coordinate factor
    1 + O((c_j - c_bar)/eps) + O((delta/eps)^2).  The bound below is that factor's first order,
    computed from the actual rotation; the brief's thresholds (cos > 0.999, 1 %) are asserted too.
    """
    d, r_s, r_p = 4, 0.1, 0.1
    q = _quadratic(d, seed=5, cond=10.0)
    cfg = _absolute(eps=eps, step_radius=r_s, probe_radius=r_p)
    g = _gen(9)
    x = _particles(1, d, seed=2) * 2.0
    state = psf.init()
    A = q.A
    for _ in range(5):  # several steps = several rotations and points
        rot = random_rotations(1, d, _clone(g), dtype=torch.float64)[0]
        grad = q.grad(x[0])
        predicted = -(r_s * r_p) / (2 * d * eps) * grad
        new, state, _ = psf.step(x, q, state, cfg, g)
        dx = new[0] - x[0]
        diag = torch.diagonal(rot.T @ A @ rot)
        c_spread = (r_p**2 / 8) * float((diag - diag.mean()).abs().max())
        delta = (r_p / 2) * float((rot.T @ grad).abs().max())
        bound = 2.0 * (c_spread / eps + (delta / eps) ** 2)  # factor 2: the neglected higher orders
        cos = float(dx @ predicted / (dx.norm() * predicted.norm()))
        ratio = float(dx.norm() / predicted.norm())
        assert cos > 0.999 and abs(ratio - 1) < 0.01
        assert 1 - cos <= bound**2 and abs(ratio - 1) <= bound, (cos, ratio, bound)
        torch.testing.assert_close(dx, predicted, rtol=0, atol=bound * float(predicted.norm()))
        x = new


def test_first_order_error_shrinks_like_one_over_eps():
    """Relative error of the first-order identity is O(1/eps): x10 eps -> ~/10 error (same rotation)."""
    d, r_s, r_p = 4, 0.5, 0.5
    q = _quadratic(d, seed=5, cond=10.0)
    x = _particles(1, d, seed=2)
    errs = []
    for eps in (10.0, 100.0, 1000.0):
        new, _, _ = psf.step(x, q, psf.init(), _absolute(eps=eps, step_radius=r_s, probe_radius=r_p), _gen(9))
        predicted = -(r_s * r_p) / (2 * d * eps) * q.grad(x[0])
        errs.append(float((new[0] - x[0] - predicted).norm() / predicted.norm()))
    # leading term c/eps plus O(1/eps^2): the ratios are 10 within ~ the relative error itself (< 1 %).
    assert errs[0] / errs[1] == pytest.approx(10.0, rel=0.05)
    assert errs[1] / errs[2] == pytest.approx(10.0, rel=0.05)


# ----------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------


# an unconverged Sinkhorn plan (eps = 1e-3 on N(0, 1) costs) is still a non-negative plan, which is
# all the bound needs
@pytest.mark.filterwarnings("ignore::polystep.transport.ConvergenceWarning")
@pytest.mark.parametrize("solver", ["softmax", "argmin", "sinkhorn"])
@pytest.mark.parametrize("kind", VERTEX_KINDS)
@pytest.mark.parametrize("eps", [1e-3, 1.0, 1e3])
def test_displacement_at_most_step_radius(kind, eps, solver):
    r_s = 0.8
    cfg = _absolute(polytope=kind, eps=eps, step_radius=r_s, probe_radius=0.3, solver=solver)
    X = _particles(6, 3)
    cost_gen = _gen(4)

    def random_costs(probes):
        return torch.randn(probes.shape[:2], generator=cost_gen, dtype=torch.float64)

    g, state = _gen(1), psf.init()
    for _ in range(3):
        new, state, info = psf.step(X, random_costs, state, cfg, g)
        disp = (new - X).norm(dim=1)
        torch.testing.assert_close(info.displacement, disp, rtol=1e-12, atol=1e-15)
        # a convex combination of unit vectors times r_s: |dx| <= r_s up to float64 rounding.
        assert float(disp.max()) <= r_s * (1 + 1e-12)
        if solver == "argmin":  # all mass on one unit vertex: |dx| = r_s exactly (to rounding)
            torch.testing.assert_close(disp, torch.full_like(disp, r_s), rtol=1e-14, atol=0)
        X = new


@pytest.mark.filterwarnings("error::polystep.transport.ConvergenceWarning")
@pytest.mark.parametrize("solver,lam", [("softmax", None), ("sinkhorn", None), ("kl_relaxed", 0.0),
                                        ("kl_relaxed", 1.0), ("kl_relaxed", math.inf), ("argmin", None)])
def test_every_solver_runs_through_step(solver, lam):
    q = _quadratic(2)
    cfg = _absolute(eps=0.5, step_radius=0.3, probe_radius=0.3, solver=solver, lam=lam)
    X = _particles(8, 2) + 2.0
    f0 = float(q(X).mean())
    g, state = _gen(0), psf.init()
    for _ in range(10):
        X, state, info = psf.step(X, q, state, cfg, g)
        assert torch.isfinite(X).all()
        # rows of the plan are normalised: sum_v w_iv = 1 (float64 rounding).
        torch.testing.assert_close(info.weights.sum(1), torch.ones(8, dtype=torch.float64), rtol=0, atol=1e-12)
    assert state.t == 10 and state.forward_evals == 10 * 8 * 4
    if solver == "sinkhorn" or (solver == "kl_relaxed" and math.isinf(lam)):
        # balanced plan: column sums of T = w / P equal 1/V to the solver tolerance (1e-6, config default).
        torch.testing.assert_close(info.weights.sum(0) / 8, torch.full((4,), 0.25, dtype=torch.float64),
                                   rtol=0, atol=1e-6)
    else:
        # the one-sided / partially relaxed solvers descend on this easy quadratic
        assert float(q(X).mean()) < f0


def test_sinkhorn_single_particle_cannot_move():
    """P = 1 with both marginals fixed forces w = 1/V: the Sinkhorn step is the eps -> inf limit."""
    cfg = _absolute(eps=0.01, step_radius=1.0, probe_radius=0.5, solver="sinkhorn", sinkhorn_tol=1e-10)
    X = _particles(1, 3)
    new, _, info = psf.step(X, _quadratic(3), psf.init(), cfg, _gen(0))
    # |dx| <= r_s * sum_v |w_v - 1/V| <= r_s V * tol (plus float64 rounding).
    assert float(info.displacement[0]) < 6 * 1e-10 * 10


def test_kl_relaxed_lam0_is_bitwise_softmax():
    q = _quadratic(3)
    X = _particles(5, 3)
    out = []
    for cfg in (_absolute(eps=0.2, solver="softmax"), _absolute(eps=0.2, solver="kl_relaxed", lam=0.0)):
        g, state, x = _gen(5), psf.init(), X
        for _ in range(4):
            x, state, _ = psf.step(x, q, state, cfg, g)
        out.append(x)
    assert torch.equal(out[0], out[1])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dtype_and_bitwise_determinism(dtype):
    q = _quadratic(4)
    cfg = PolyStepConfig(eps=0.5, step_radius=1.0, probe_radius=1.0, probe_jitter=0.1)
    X0 = _particles(6, 4, dtype=dtype)

    def run(seed):
        g, state, x = _gen(seed), psf.init(), X0
        traj = []
        for _ in range(5):
            x, state, info = psf.step(x, q, state, cfg, g)
            assert x.dtype == dtype and info.costs.dtype == dtype and info.weights.dtype == dtype
            traj.append(x)
        return torch.stack(traj)

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.isfinite(a).all()


def test_step_equals_propose_then_update():
    q = _quadratic(3)
    cfg = PolyStepConfig(eps=0.3)
    X = _particles(4, 3)
    new1, s1, _ = psf.step(X, q, psf.init(), cfg, _gen(0))
    g = _gen(0)
    prop = psf.propose(X, psf.init(), cfg, g)
    new2, s2, _ = psf.update(X, prop, q(prop.probes), psf.init(), cfg)
    assert torch.equal(new1, new2) and s1 == s2 == PolyStepState(t=1, forward_evals=4 * 6)


# ----------------------------------------------------------------------------------------------
# non-finite costs
# ----------------------------------------------------------------------------------------------


def test_nonfinite_costs_are_replaced():
    q = _quadratic(2)
    X = _particles(4, 2)
    cfg = _absolute(eps=0.1, step_radius=0.5, probe_radius=0.5)

    def bad(probes):
        C = q(probes).clone()
        C[0, 1] = math.nan
        C[1, 0] = math.inf
        C[2, 3] = -math.inf
        return C

    new, _, info = psf.step(X, bad, psf.init(), cfg, _gen(0))
    assert torch.isfinite(new).all() and torch.isfinite(info.costs).all()
    assert info.n_nonfinite == 3
    finite_max = float(q(psf.propose(X, psf.init(), cfg, _gen(0)).probes).abs().max())
    fill = max(2 * finite_max + 1, 1e6)
    assert float(info.costs[0, 1]) == float(info.costs[1, 0]) == float(info.costs[2, 3]) == fill
    # a vertex costing >= 1e6 gets weight exp(-1e7) = 0 at eps = 0.1
    assert float(info.weights[0, 1]) == float(info.weights[1, 0]) == float(info.weights[2, 3]) == 0.0


def test_sanitize_costs_direct():
    C = torch.tensor([[1.0, -3.0], [2.0, 0.5]], dtype=torch.float64)
    out, n = psf.sanitize_costs(C)
    assert out is C and n == 0
    C2 = torch.tensor([[1.0, math.nan], [2e6, -3.0]], dtype=torch.float64)
    out, n = psf.sanitize_costs(C2)
    assert n == 1 and float(out[0, 1]) == 2 * 2e6 + 1  # above the 1e6 floor


def test_all_nonfinite_row_raises_naming_particle():
    q = _quadratic(2)
    X = _particles(4, 2)

    def dead(probes):
        C = q(probes).clone()
        C[2] = math.nan
        return C

    msg = r"every candidate loss of particle\(s\) \[2\] is non-finite at step 3: the loss oracle " \
          r"returned NaN/inf for all 4 probes"
    with pytest.raises(NonFiniteLossError, match=msg):
        psf.step(X, dead, PolyStepState(t=3), PolyStepConfig(), _gen(0))
    assert issubclass(NonFiniteLossError, FloatingPointError)


# ----------------------------------------------------------------------------------------------
# argument validation
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw,match", [
    (dict(eps=0.0), r"eps must be a finite number > 0, got 0.0"),
    (dict(eps=-1.0), r"eps must be a finite number > 0, got -1.0"),
    (dict(eps=math.nan), r"eps must be a finite number > 0, got nan"),
    (dict(step_radius=0), r"step_radius must be a finite number > 0, got 0"),
    (dict(step_radius=-0.5), r"step_radius must be a finite number > 0"),
    (dict(probe_radius=0.0), r"probe_radius must be a finite number > 0"),
    (dict(probe_radius=math.inf), r"probe_radius must be a finite number > 0, got inf"),
    (dict(polytope="hexagon"), r"polytope must be one of \('simplex', 'orthoplex', 'cube'\), got 'hexagon'"),
    (dict(solver="adam"), r"solver must be one of .*got 'adam'"),
    (dict(radius_mode="relative"), r"radius_mode must be one of \('times_eps', 'absolute'\), got 'relative'"),
    (dict(num_probes=0), r"num_probes must be an integer >= 1, got 0"),
    (dict(num_probes=1.5), r"num_probes must be an integer >= 1, got 1.5"),
    (dict(num_probes=True), r"num_probes must be an integer >= 1, got True"),
    (dict(probe_jitter=-0.1), r"probe_jitter must be in \[0, 1\), got -0.1"),
    (dict(probe_jitter=1.0), r"probe_jitter must be in \[0, 1\), got 1.0"),
    (dict(solver="kl_relaxed"), r"lam must be >= 0 \(or inf\) for solver 'kl_relaxed', got None"),
    (dict(solver="kl_relaxed", lam=-1.0), r"lam must be >= 0 \(or inf\) for solver 'kl_relaxed', got -1.0"),
    (dict(solver="kl_relaxed", lam=math.nan), r"lam must be >= 0"),
    (dict(sinkhorn_max_iter=0), r"sinkhorn_max_iter must be an integer >= 1, got 0"),
    (dict(sinkhorn_tol=0.0), r"sinkhorn_tol must be a finite number > 0"),
])
def test_config_errors(kw, match):
    with pytest.raises(ValueError, match=match):
        PolyStepConfig(**kw)


def test_config_non_schedule_is_type_error():
    with pytest.raises(TypeError, match="expected a Schedule or a real number"):
        PolyStepConfig(eps="0.1")


def test_schedule_reaching_nonpositive_value_raises_at_resolve():
    cfg = PolyStepConfig(eps=Linear(start=1.0, end=-1.0, steps=2))
    psf.propose(_particles(1, 2), PolyStepState(t=0), cfg, _gen(0))
    with pytest.raises(ValueError, match=r"eps\(t\) must be a finite number > 0, got 0.0"):
        psf.propose(_particles(1, 2), PolyStepState(t=1), cfg, _gen(0))


@pytest.mark.parametrize("particles,match", [
    (torch.zeros(3, dtype=torch.float64), r"particles must be a 2-D tensor \[P, d\], got Tensor with shape"),
    (torch.zeros(2, 3, 4, dtype=torch.float64), r"particles must be a 2-D tensor"),
    ([[0.0, 1.0]], r"particles must be a 2-D tensor \[P, d\], got list with shape None"),
    (torch.zeros(0, 3, dtype=torch.float64), r"particles must have P >= 1 rows and d >= 1 columns, got \(0, 3\)"),
    (torch.zeros(2, 0, dtype=torch.float64), r"particles must have P >= 1 rows and d >= 1 columns, got \(2, 0\)"),
    (torch.zeros(2, 3, dtype=torch.int64), r"particles must be floating point, got torch.int64"),
    (torch.tensor([[0.0, math.nan]]), r"particles contain non-finite entries"),
    (torch.tensor([[math.inf, 0.0]]), r"particles contain non-finite entries"),
])
def test_propose_particle_errors(particles, match):
    with pytest.raises(ValueError, match=match):
        psf.propose(particles, psf.init(), PolyStepConfig(), _gen(0))


def test_update_wrong_cost_shape():
    X = _particles(2, 2)
    cfg = PolyStepConfig(num_probes=2)
    prop = psf.propose(X, psf.init(), cfg, _gen(0))
    with pytest.raises(ValueError, match=r"probe_costs must have shape \(2, 8\) = \[P, V\*K\], got \(2, 4\)"):
        psf.update(X, prop, torch.zeros(2, 4, dtype=torch.float64), psf.init(), cfg)
    with pytest.raises(TypeError, match="cost_fn must return a torch.Tensor, got list"):
        psf.step(X, lambda p: [0.0], psf.init(), cfg, _gen(0))


# ----------------------------------------------------------------------------------------------
# convergence sanity check
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(3))
def test_converges_on_2d_quadratic(seed):
    """200 steps, eps = 0.1, r_s = r_p = 2 sqrt(10 / (t + 10)): reaches the minimiser to < 1e-2.

    (Measured: ~1e-11 for these settings; the 1e-2 bound is the brief's requirement, and the
    start is 3.6 away so it is not met trivially.)
    """
    q = _quadratic(2, seed=3)
    sched = InverseSqrt(start=2.0, offset=10.0)
    cfg = _absolute(eps=0.1, step_radius=sched, probe_radius=sched)
    x = torch.tensor([[3.0, -2.0]], dtype=torch.float64)
    assert float((x[0] - q.minimizer).norm()) > 1.0
    g, state = _gen(seed), psf.init()
    for _ in range(200):
        x, state, _ = psf.step(x, q, state, cfg, g)
    assert float((x[0] - q.minimizer).norm()) < 1e-2
    assert float(q(x[0])) - q.minimum < 1e-2
