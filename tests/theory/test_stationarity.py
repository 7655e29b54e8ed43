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

from polystep import objectives as O
from theory.stationarity import (
    QuantizedLinearClassifier,
    clarke_measure,
    goldstein_measure,
    goldstein_measures,
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
