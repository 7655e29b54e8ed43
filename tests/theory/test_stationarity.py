"""theory.stationarity: exact min-norm hull points, Goldstein and Clarke measures, local constancy.

Reference values are closed forms (segment projection, balls of gradients of 1/2||x||^2, the L1
subdifferential) and an independent QP solve (SLSQP); tolerances are stated next to each assertion.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.optimize import minimize

from theory import objectives as O
from theory.stationarity import (
    QuantizedLinearClassifier,
    SpuriousKinkProgram,
    clarke_measure,
    goldstein_measure,
    goldstein_measures,
    haar_orthogonal,
    locally_constant,
    min_norm_hull,
    sample_ball,
    subgradient_descent,
)


def _slsqp_min_norm(a: np.ndarray) -> float:
    m = a.shape[0]
    res = minimize(lambda w: 0.5 * np.sum((w @ a) ** 2), np.full(m, 1.0 / m), jac=lambda w: a @ (w @ a),
                   bounds=[(0, 1)] * m, constraints=[{"type": "eq", "fun": lambda w: w.sum() - 1}],
                   method="SLSQP", options={"ftol": 1e-15, "maxiter": 2000})
    return float(np.linalg.norm(res.x @ a))


def test_min_norm_matches_independent_qp_and_is_certified() -> None:
    rng = np.random.default_rng(0)
    for _ in range(30):
        m, d = int(rng.integers(2, 30)), int(rng.integers(1, 12))
        a = rng.normal(size=(m, d)) + rng.normal(size=d) * rng.uniform(0, 3)
        r = min_norm_hull(a)
        # NNLS is an exact active-set method: agreement with SLSQP to its own accuracy (~1e-7 on the
        # norm for ftol 1e-15 on the half-squared objective); NNLS must never be worse than SLSQP.
        ref = _slsqp_min_norm(a)
        assert r.norm <= ref + 1e-12
        assert r.norm == pytest.approx(ref, abs=1e-6)
        # certificates: FW gap ~ rounding (scale ~1 here), weights on the simplex, lower <= norm
        assert 0 <= r.gap < 1e-12
        assert np.all(r.weights >= 0) and r.weights.sum() == pytest.approx(1.0, abs=1e-14)
        assert np.allclose(r.weights @ a, r.point, atol=1e-12)
        assert r.lower <= r.norm + 1e-15 and r.norm - r.lower < 1e-9


def test_min_norm_closed_forms() -> None:
    # segment [p, q] not containing the origin's projection endpoint: projection onto the line
    p, q = np.array([1.0, 2.0]), np.array([3.0, -1.0])
    t = -p @ (q - p) / ((q - p) @ (q - p))
    expect = p + t * (q - p)
    assert min_norm_hull(np.stack([p, q])).point == pytest.approx(expect, abs=1e-14)
    # origin inside the hull: exact zero
    r = min_norm_hull(np.array([[1.0, 0.0], [-1.0, 1.0], [-1.0, -1.0]]))
    assert r.norm < 1e-15
    # a single point, all-zero points, scale equivariance
    assert min_norm_hull([3.0, 4.0]).norm == 5.0
    assert min_norm_hull(np.zeros((4, 3))).norm == 0.0
    a = np.random.default_rng(1).normal(size=(7, 4)) + 2.0
    assert min_norm_hull(1e6 * a).norm == pytest.approx(1e6 * min_norm_hull(a).norm, rel=1e-10)


def test_min_norm_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        min_norm_hull(np.array([[np.nan, 1.0]]))
    with pytest.raises(ValueError):
        min_norm_hull(np.zeros((2, 2, 2)))


def test_sample_ball_is_uniform_in_the_ball() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.tensor([1.0, -2.0, 0.5])
    pts = sample_ball(x, 0.3, 20_000, g)
    r = (pts - x).norm(dim=1).numpy()
    assert r.max() <= 0.3 + 1e-15
    # radius law of the uniform ball in d = 3: P(r <= s) = (s/delta)^3; KS distance at n = 2e4 is ~0.01
    from scipy import stats

    assert stats.kstest(r / 0.3, lambda s: np.clip(s, 0, 1) ** 3).pvalue > 0.01
    assert np.abs((pts - x).mean(0).numpy()).max() < 0.01  # centred: SE ~ 0.3/sqrt(5 * 2e4) = 1e-3


def test_goldstein_on_half_squared_norm_matches_closed_form() -> None:
    # f = 1/2||x||^2: grad f(B(x, delta)) = B(x, delta), so G_delta(x) = max(||x|| - delta, 0).
    # The sampled estimate is an upper bound that approaches it: with 4D = 16 points in d = 4 the
    # gap is at most delta (points inside the ball) and shrinks with more samples.
    q = O.quadratic(torch.eye(4, dtype=torch.float64))
    g = torch.Generator().manual_seed(1)
    x = torch.tensor([2.0, 0.0, 0.0, 0.0], dtype=torch.float64)
    for delta in (0.0, 0.1, 0.5):
        exact = max(2.0 - delta, 0.0)
        est = goldstein_measure(q.grad, x, delta, g).norm
        assert exact - 1e-12 <= est <= exact + delta + 1e-12
        many = goldstein_measure(q.grad, x, delta, g, num_samples=4000).norm
        assert exact - 1e-12 <= many <= exact + 0.1 * delta + 1e-12  # 4000 samples: within 10 % of delta
    # the origin is reached once the ball contains a gradient cone around 0
    assert goldstein_measure(q.grad, torch.tensor([0.05, 0.0, 0.0, 0.0], dtype=torch.float64), 1.0, g,
                             num_samples=400).norm < 1e-12


def test_goldstein_batched_equals_per_point_law() -> None:
    # |x| in 1-D: G_delta(x) = 0 iff delta >= |x| (both slopes sampled), else 1
    absf = O.l1_regression(torch.ones(1, 1), torch.zeros(1), 0.0)
    g = torch.Generator().manual_seed(2)
    xs = torch.tensor([[0.5], [0.05], [-0.02], [2.0]], dtype=torch.float64)
    vals = goldstein_measures(absf.grad, xs, 0.1, g, num_samples=64)
    # 64 uniform samples in [x - 0.1, x + 0.1]: P(no sample beyond 0 when |x| = 0.05) = 0.75^64 ~ 1e-8
    assert vals == pytest.approx([1.0, 0.0, 0.0, 1.0], abs=1e-12)


def test_clarke_measure_l1_regression() -> None:
    g = torch.Generator().manual_seed(3)
    b = torch.randn(12, 5, generator=g, dtype=torch.float64)
    c = torch.randn(12, generator=g, dtype=torch.float64)
    f = O.l1_regression(b, c, 0.1)
    # at the minimiser 0 is in the Clarke subdifferential (convex: Clarke = convex subdifferential);
    # x* is solved to ~1e-12, so kinks within 1e-7 count as active
    star = clarke_measure(f, f.minimizer, tol=1e-7)
    assert star.norm < 1e-8 and star.gap < 1e-12
    # at a generic point there is one piece: the measure is the gradient norm
    x = torch.randn(5, generator=g, dtype=torch.float64)
    assert clarke_measure(f, x).norm == pytest.approx(float(f.grad(x).norm()), rel=1e-12)
    with pytest.raises(TypeError):
        clarke_measure(O.rosenbrock(), x)


def test_relu_selection_spurious_point() -> None:
    f = O.relu_selection_example(3, mu=0.5)
    x0 = torch.zeros(3, dtype=torch.float64)
    # Clarke measure at 0 is ||1|| = sqrt(3); the autodiff selection is 0 there, so a first-order
    # method fed by it never moves
    assert clarke_measure(f, x0).norm == pytest.approx(math.sqrt(3), rel=1e-14)
    xs = subgradient_descent(f.autodiff_selection_grad, x0, 50, 0.1)
    assert np.all(xs == 0)
    # ... while the true gradient leads to the minimiser -1/(2 mu) = -1
    xs = subgradient_descent(f.grad, x0, 2000, 0.5)
    assert xs[-1] == pytest.approx(-np.ones(3), abs=1e-6)


def test_locally_constant_detects_flat_and_sloped_points() -> None:
    g = torch.Generator().manual_seed(4)
    stair = O.staircase_radial(1.0)
    xs = torch.tensor([[3.5, 0.0], [2.0 + 1e-9, 0.0], [0.3, 0.4]], dtype=torch.float64)
    # mid-step: constant; 1e-9 from a jump with delta = 1e-7: samples cross it (P(miss) = 2^-16 for the
    # radial coordinate's sign over 8 mirrored pairs)
    assert locally_constant(stair, xs, 1e-7, 8, g).tolist() == [True, False, True]
    quad = O.quadratic(torch.eye(2, dtype=torch.float64))
    # slope 1 * delta 1e-7 >> rtol 1e-12: never "constant"
    assert not locally_constant(quad, torch.tensor([[1.0, 0.0]], dtype=torch.float64), 1e-7, 8, g).any()


def test_quantized_classifier_is_piecewise_constant() -> None:
    g = torch.Generator().manual_seed(5)
    m = QuantizedLinearClassifier(100, 3, g)
    th = torch.randn(6, m.dim, generator=g, dtype=torch.float64)
    vals = m(th)
    assert vals.shape == (6,) and torch.all(vals > 0)
    assert m(th[0]) == pytest.approx(float(vals[0]), rel=1e-14)
    t = th[0].clone().requires_grad_(True)
    m(t).backward()
    assert torch.all(t.grad == 0)  # autodiff through round: zero
    # moving within a quantisation cell leaves the loss unchanged; crossing a cell boundary changes it
    cell = m.quantize(th[0])
    inside = cell + 0.2 * m.q * torch.sign(torch.randn(m.dim, generator=g, dtype=torch.float64))
    assert m(inside) == m(cell)
    assert m(cell + 0.6 * m.q * torch.ones(m.dim, dtype=torch.float64)) != m(cell)


# ------------------------------------------------------------------------------------------------
# the ReLU program with a spurious autodiff-stationary point (clarke_stationarity, issue 9 section 3)
# ------------------------------------------------------------------------------------------------


def _kink_program(dim: int = 4, seed: int = 6) -> SpuriousKinkProgram:
    return SpuriousKinkProgram(dim, haar_orthogonal(dim, torch.Generator().manual_seed(seed)))


def _sampled_clarke(f: SpuriousKinkProgram, x: torch.Tensor, n: int, seed: int) -> np.ndarray:
    """Clarke's theorem, independently of ``clarke_subgradients``: partial_C f(x) is the convex hull
    of the limits of gradients at differentiable points near x -- here torch autograd at n points
    uniform in a ball of radius 1e-9 (differentiable with probability 1)."""
    pts = sample_ball(x, 1e-9, n, torch.Generator().manual_seed(seed))
    return f.autodiff_grad(pts).numpy()


def test_haar_orthogonal_is_orthogonal() -> None:
    q = haar_orthogonal(6, torch.Generator().manual_seed(0))
    assert torch.allclose(q @ q.T, torch.eye(6, dtype=torch.float64), atol=1e-14)
    with pytest.raises(ValueError):
        SpuriousKinkProgram(3, 2.0 * torch.eye(3, dtype=torch.float64))
    with pytest.raises(ValueError):
        SpuriousKinkProgram(3, b=1.0)  # no minimum at y = -1


def test_kink_program_is_the_convex_max_form_and_autograd_is_its_selection() -> None:
    f = _kink_program()
    g = torch.Generator().manual_seed(7)
    xs = 2.0 * torch.randn(500, 4, generator=g, dtype=torch.float64)
    # sum_i [2 ReLU(y) - ReLU(-y) + 3 ReLU(-y - 1)] = sum_i max(y, 2y, -2y - 3) (rounding only)
    assert torch.allclose(f(xs), f.max_form(xs), atol=1e-13, rtol=0)
    # off the kinks torch autograd = the gradient = the closed forms
    assert torch.allclose(f.autodiff_grad(xs), f.grad(xs), atol=1e-14, rtol=0)
    assert torch.allclose(f.autodiff_selection(xs), f.grad(xs), atol=1e-14, rtol=0)
    # on the kinks (Q = I so that y is exact): autograd uses ReLU'(0) = 0
    e = SpuriousKinkProgram(3)
    x = torch.tensor([0.0, -1.0, 0.5], dtype=torch.float64)
    assert e.autodiff_grad(x).tolist() == [0.0, 1.0, 2.0] == e.autodiff_selection(x).tolist()
    assert e.grad(x).tolist() == [2.0, 1.0, 2.0]  # a Clarke selection (right derivatives)
    assert float(f(f.minimizer)) == pytest.approx(f.minimum, abs=1e-14)


def test_spurious_point_autograd_zero_but_not_clarke_stationary() -> None:
    """At x = 0 torch autograd returns exactly 0 (conservative-stationary for the program) while the
    Clarke subdifferential Q^T [1, 2]^D is at distance sqrt(D) from 0, by three computations."""
    dim = 4
    f = _kink_program(dim)
    x0 = f.spurious_point
    # 1. torch autograd through the program: exactly zero
    assert torch.equal(f.autodiff_grad(x0), torch.zeros(dim, dtype=torch.float64))
    lo, hi = f.conservative_field_box(x0)
    assert torch.all(lo <= 0) and torch.all(hi >= 0)              # 0 in the conservative field
    clo, chi = f.clarke_box(x0)
    assert torch.all(clo > 0)                                     # ... not in the Clarke one
    # 2. the exact min-norm point of the generators: the vertex Q^T 1
    exact = clarke_measure(f, x0)
    assert exact.norm == pytest.approx(math.sqrt(dim), rel=1e-14)
    assert exact.point == pytest.approx((torch.ones(dim, dtype=torch.float64) @ f.Q).numpy(), abs=1e-14)
    # 3a. independent: gradient sampling (Clarke's theorem) with autograd, hull by SLSQP
    grads = np.unique(np.round(_sampled_clarke(f, x0, 400, 8), 12), axis=0)
    assert len(grads) == 2 ** dim  # every cell around 0 is met
    gen = np.round(f.clarke_subgradients(x0).numpy(), 12)
    assert {tuple(r) for r in grads} == {tuple(r) for r in gen}
    assert _slsqp_min_norm(grads) == pytest.approx(math.sqrt(dim), abs=1e-6)
    # 3b. independent, from function values only: f is convex, so dist(0, partial f(x)) =
    # -min_{|d| = 1} f'(x; d); f is piecewise linear, so a difference quotient is exact for small h
    h = 1e-6
    d_star = -torch.from_numpy(exact.point) / exact.norm
    fd = lambda d: float((f(x0 + h * d) - f(x0)) / h)  # noqa: E731
    assert fd(d_star) == pytest.approx(-math.sqrt(dim), abs=1e-8)
    dirs = torch.randn(500, dim, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    slopes = ((f(x0 + h * dirs) - f(x0)) / h).numpy()
    assert slopes.min() >= -math.sqrt(dim) - 1e-8  # no direction descends faster than the Clarke bound
    # a first-order method fed by torch autograd never leaves; fed by a Clarke selection it does
    assert np.all(subgradient_descent(f.autodiff_grad, x0, 50, 0.1) == 0)
    xs = subgradient_descent(f.grad, x0, 500, 0.5)
    assert np.linalg.norm(xs[-1] - f.minimizer.numpy()) < 0.1  # steps 0.5/sqrt(500) |g| ~ 0.05


def test_kink_minimizer_is_clarke_stationary_and_sharp() -> None:
    dim = 4
    f = _kink_program(dim)
    xs = f.minimizer
    # exact: Q^T [-2, 1]^D contains 0 (kinks at rounding distance count as active)
    assert clarke_measure(f, xs, tol=1e-12).norm < 1e-12
    # independent: sampled autograd gradients around x*, and every directional derivative > 0
    assert _slsqp_min_norm(np.unique(np.round(_sampled_clarke(f, xs, 400, 10), 12), axis=0)) < 1e-6
    dirs = torch.randn(500, dim, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    dirs = dirs / dirs.norm(dim=1, keepdim=True)
    assert ((f(xs + 1e-6 * dirs) - f(xs)) > 0).all()
    # a generic point near x* lies in one piece: the Clarke measure is a gradient norm >= 1
    x = xs + 1e-3 * dirs[0]
    assert clarke_measure(f, x).norm == pytest.approx(float(f.grad(x).norm()), rel=1e-14)
    assert clarke_measure(f, x).norm >= 1.0


def test_goldstein_on_the_kink_program_closed_forms() -> None:
    dim = 4
    f = _kink_program(dim)
    g = torch.Generator().manual_seed(12)
    # around 0, for delta < 1 the ball meets only the kinks y_i = 0: every sampled gradient is a
    # vertex-or-edge point of Q^T [1, 2]^D, so G_delta(0) = sqrt(D) exactly
    vals = goldstein_measures(f.grad, torch.zeros(3, dim, dtype=torch.float64), [1e-3, 1e-1, 0.9], g, num_samples=256)
    assert vals == pytest.approx([math.sqrt(dim)] * 3, rel=1e-12)
    # every y_i = -0.99: 0.01 from the nearest kink, so for delta < 0.01 the ball is one piece and
    # G_delta = ||grad f|| = ||Q^T 1|| = sqrt(D)
    x = f.minimizer + 0.01 * (torch.ones(dim, dtype=torch.float64) @ f.Q)  # y = -0.99: slope 1 each
    assert float(f.kink_distance(x[None])) == pytest.approx(0.01, rel=1e-9)
    assert goldstein_measures(f.grad, x[None], 0.005, g, num_samples=256)[0] == pytest.approx(math.sqrt(dim), rel=1e-12)
    # ... and ~0 once the ball reaches well past the kinks at x*
    assert goldstein_measures(f.grad, x[None], 0.05, g, num_samples=256)[0] < 1e-12
