"""Tests for theory.objectives: gradients vs autograd, minima, Clarke generators, staircases."""

import math

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

from theory.objectives import (
    l1_regression,
    log_cosh_quadratic,
    quadratic,
    random_quadratic,
    random_spd,
    relu_selection_example,
    rosenbrock,
    staircase_radial,
    staircase_separable,
)


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def autograd_grad(f, x):
    x = x.detach().clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x).sum(), x)
    return g


def smooth_objectives():
    g = gen(1)
    A = random_spd(6, 50.0, g)
    return [
        random_quadratic(6, 100.0, gen(2)),
        quadratic(A, torch.randn(6, generator=g, dtype=torch.float64)),
        rosenbrock(),
        log_cosh_quadratic(A),
    ]


@pytest.mark.parametrize("f", smooth_objectives(), ids=lambda f: f.name)
def test_smooth_grad_matches_autograd(f):
    x = 2.0 * torch.randn(4, 3, 6, generator=gen(3), dtype=torch.float64)
    # both sides are the same float64 expression up to reassociation: 1e-10 (relative to |g| ~ 1e3
    # for Rosenbrock) leaves room for ~1e-13 rounding differences
    torch.testing.assert_close(f.grad(x), autograd_grad(f, x), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("f", smooth_objectives(), ids=lambda f: f.name)
def test_batch_shapes_and_dtype(f):
    for shape in [(6,), (5, 6), (2, 3, 6)]:
        for dtype in (torch.float32, torch.float64):
            x = torch.randn(*shape, generator=gen(4), dtype=dtype)
            y = f(x)
            assert y.shape == shape[:-1] and y.dtype == dtype
            assert f.grad(x).shape == shape and f.grad(x).dtype == dtype
    # batched evaluation equals the per-point evaluation
    x = torch.randn(7, 6, generator=gen(5), dtype=torch.float64)
    torch.testing.assert_close(f(x), torch.stack([f(xi) for xi in x]), rtol=1e-14, atol=1e-14)


def test_random_spd_condition_number_and_determinism():
    A = random_spd(8, 1e3, gen(0))
    torch.testing.assert_close(A, A.T, rtol=0, atol=0)
    eig = torch.linalg.eigvalsh(A)
    # eigenvalues are 1 .. cond exactly in exact arithmetic; float64 rounding ~1e-13 * cond
    torch.testing.assert_close(eig[[0, -1]], torch.tensor([1.0, 1e3], dtype=torch.float64), rtol=1e-10, atol=0)
    torch.testing.assert_close(A, random_spd(8, 1e3, gen(0)), rtol=0, atol=0)
    assert not torch.equal(A, random_spd(8, 1e3, gen(1)))


def test_quadratic_minimum():
    f = random_quadratic(5, 10.0, gen(6))
    assert f.condition_number == pytest.approx(10.0, rel=1e-10)
    assert float(f(f.minimizer)) == pytest.approx(f.minimum, rel=1e-12)
    torch.testing.assert_close(f.grad(f.minimizer), torch.zeros(5, dtype=torch.float64), rtol=0, atol=1e-12)
    x = torch.randn(100, 5, generator=gen(7), dtype=torch.float64)
    assert bool((f(x) >= f.minimum).all())


def test_quadratic_validation():
    with pytest.raises(ValueError, match="A must be square"):
        quadratic(torch.ones(2, 3))
    with pytest.raises(ValueError, match="A must be symmetric"):
        quadratic(torch.tensor([[1.0, 0.5], [0.0, 1.0]]))
    with pytest.raises(ValueError, match="A must be positive definite"):
        quadratic(torch.tensor([[1.0, 0.0], [0.0, -1.0]]))
    with pytest.raises(ValueError, match="b must have shape"):
        quadratic(torch.eye(2), torch.ones(3))
    with pytest.raises(ValueError, match="cond"):
        random_spd(3, 0.5, gen())
    with pytest.raises(ValueError, match="last dimension 2"):
        quadratic(torch.eye(2))(torch.ones(3))
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        quadratic(torch.eye(2))([1.0, 2.0])


def test_known_minima():
    ones = torch.ones(3, 7, dtype=torch.float64)
    assert torch.equal(rosenbrock()(ones), torch.zeros(3, dtype=torch.float64))
    assert torch.equal(rosenbrock().grad(ones), torch.zeros_like(ones))
    with pytest.raises(ValueError, match=">= 2"):
        rosenbrock()(torch.ones(1))
    f = log_cosh_quadratic(torch.eye(4))
    assert float(f(torch.zeros(4))) == 0.0 == f.minimum
    # large inputs do not overflow: log cosh(1000) = 1000 - log 2
    assert float(log_cosh_quadratic(torch.zeros(1, 1))(torch.tensor([1000.0], dtype=torch.float64))) == pytest.approx(
        1000 - math.log(2), rel=1e-15)


# ---------------------------------------------------------------------------------------------
# piecewise smooth
# ---------------------------------------------------------------------------------------------
def make_l1(mu=0.1, m=12, d=5, seed=8):
    g = gen(seed)
    B = torch.randn(m, d, generator=g, dtype=torch.float64)
    c = torch.randn(m, generator=g, dtype=torch.float64)
    return l1_regression(B, c, mu)


def test_l1_grad_matches_autograd_off_kinks():
    f = make_l1()
    x = torch.randn(10, 5, generator=gen(9), dtype=torch.float64)  # generic points: no kink a.s.
    torch.testing.assert_close(f.grad(x), autograd_grad(f, x), rtol=1e-12, atol=1e-12)
    assert f(x).shape == (10,)


def test_l1_clarke_at_kink_contains_both_one_sided_gradients():
    # 1-D: f(x) = |x - 1| + |2x + 1| + 0.1 x^2; kinks at x = 1 and x = -0.5
    f = l1_regression(torch.tensor([[1.0], [2.0]]), torch.tensor([1.0, -1.0]), 0.1)
    x0 = torch.tensor([1.0], dtype=torch.float64)
    gens = f.clarke_subgradients(x0)
    assert gens.shape == (2, 1)
    h = 1e-7
    left = (f(x0) - f(x0 - h)) / h
    right = (f(x0 + h) - f(x0)) / h
    # one-sided slopes: 2 + 0.2 -/+ 1 (+ O(h) from the quadratic term)
    got = sorted(gens.flatten().tolist())
    assert got == pytest.approx([1.2, 3.2], abs=1e-12)
    assert got == pytest.approx(sorted([float(left), float(right)]), abs=1e-6)
    # a differentiable point has a single generator equal to the gradient
    x1 = torch.tensor([0.3], dtype=torch.float64)
    torch.testing.assert_close(f.clarke_subgradients(x1), f.grad(x1)[None])


def test_l1_clarke_generators_in_higher_dimension():
    f = make_l1(d=5)
    # put x on two kinks: solve B_S x = c_S for the first two rows (least-norm solution)
    S = f.B[:2]
    x = torch.linalg.pinv(S) @ f.c[:2]
    null_proj = torch.eye(5, dtype=torch.float64) - torch.linalg.pinv(S) @ S
    x = x + null_proj @ torch.randn(5, generator=gen(10), dtype=torch.float64)
    assert int(f.active_set(x).sum()) == 2
    gens = f.clarke_subgradients(x)
    assert gens.shape == (4, 5)
    # every generator is the gradient of an adjacent piece: compare with gradients just off the kinks
    g = gen(11)
    hits = set()
    for _ in range(40):
        u = torch.randn(5, generator=g, dtype=torch.float64)
        grad_near = f.grad(x + 1e-8 * u)  # 1e-8 step: other residuals keep their sign
        match = torch.isclose(gens, grad_near, rtol=0, atol=1e-6).all(dim=1)
        assert int(match.sum()) == 1
        hits.add(int(match.nonzero()))
    assert hits == {0, 1, 2, 3}  # all four adjacent pieces are reached


def test_l1_minimum():
    for mu in (0.1, 0.0):
        f = make_l1(mu=mu)
        # certified by weak duality (gap) and checked against random points and the minimiser
        assert f.minimum_gap < 1e-9
        assert float(f(f.minimizer)) == pytest.approx(f.minimum, abs=1e-12)
        x = f.minimizer + 0.1 * torch.randn(200, 5, generator=gen(12), dtype=torch.float64)
        assert bool((f(x) >= f.minimum - 1e-12).all())
        # Fermat: 0 is in conv(clarke generators) at the minimiser. Min-norm point of the hull by
        # NNLS on [G^T; w 1^T] lam = [0; w] (w large enforces sum(lam) = 1).
        gens = f.clarke_subgradients(f.minimizer, tol=1e-9).numpy()
        assert gens.shape[0] >= 2  # this instance's minimiser lies on at least one kink
        w = 1e3
        lhs = np.vstack([gens.T, w * np.ones((1, gens.shape[0]))])
        lam, _ = nnls(lhs, np.concatenate([np.zeros(gens.shape[1]), [w]]))
        assert np.linalg.norm(gens.T @ lam) < 1e-8 and abs(lam.sum() - 1) < 1e-8


def test_relu_selection_example():
    f = relu_selection_example(3, mu=0.5)
    assert f.minimum == pytest.approx(-1.5)  # D * min_x (x + x^2 / 2) = 3 * (-1/2)
    xstar = torch.full((3,), -1.0, dtype=torch.float64)
    assert float(f(xstar)) == pytest.approx(f.minimum, rel=1e-15)
    zero = torch.zeros(3, dtype=torch.float64)
    # autodiff through ReLU(x) - ReLU(-x) reports a spurious stationary point at 0 ...
    torch.testing.assert_close(autograd_grad(f, zero), torch.zeros(3, dtype=torch.float64))
    torch.testing.assert_close(f.autodiff_selection_grad(zero), autograd_grad(f, zero))
    # ... which is not Clarke-stationary (true derivative 1) but is conservative-stationary
    torch.testing.assert_close(f.clarke_subgradients(zero), torch.ones(1, 3, dtype=torch.float64))
    lo, hi = f.conservative_field_bounds(zero)
    assert bool((lo <= 0).all() and (hi >= 0).all())
    # off zero, autodiff and the true gradient agree
    x = torch.randn(4, 3, generator=gen(13), dtype=torch.float64)
    torch.testing.assert_close(f.grad(x), autograd_grad(f, x), rtol=1e-14, atol=1e-14)
    assert relu_selection_example(2, mu=0.0).minimum == float("-inf")


# ---------------------------------------------------------------------------------------------
# piecewise constant
# ---------------------------------------------------------------------------------------------
def test_staircase_radial_values():
    f = staircase_radial(0.5)
    x = torch.tensor([[0.0, 0.0], [0.3, 0.4], [0.6, 0.8], [3.0, 4.0], [0.29, 0.4]], dtype=torch.float64)
    # norms 0, 0.5, 1.0, 5.0, 0.4937 -> levels 0, 1, 2, 10, 0 (shells are closed below)
    assert f(x).tolist() == [0.0, 1.0, 2.0, 10.0, 0.0]
    assert f.minimum == 0.0
    assert torch.equal(f.grad(x), torch.zeros_like(x))
    assert f(torch.zeros(2, 3, 4, 7)).shape == (2, 3, 4)


def test_staircase_separable_values():
    f = staircase_separable(1.0)
    x = torch.tensor([[0.5, -0.5, 0.99], [1.0, -2.5, 3.2], [-0.999, 7.0, 0.0]], dtype=torch.float64)
    assert f(x).tolist() == [0.0, 1.0 + 2.0 + 3.0, 7.0]
    assert staircase_separable(0.25)(torch.tensor([0.3, -0.6])).item() == 1.0 + 2.0
    assert f(torch.zeros(5, 3, dtype=torch.float32)).dtype == torch.float32
    with pytest.raises(ValueError, match="w must be"):
        staircase_separable(0.0)
    with pytest.raises(ValueError, match="w must be"):
        staircase_radial(-1.0)
