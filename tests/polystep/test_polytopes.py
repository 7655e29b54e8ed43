"""Tests for polystep.polytopes: vertex templates and Haar rotations
(paper/polystep_reconstruction.md §2.3 and §2.4)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from polystep.polytopes import VERTEX_KINDS, num_vertices, random_rotations, vertices

DIMS = [1, 2, 3, 5, 8]


# ----------------------------------------------------------------------------------------------
# vertex templates
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize(
    ("kind", "expected"),
    [("simplex", lambda d: d + 1), ("orthoplex", lambda d: 2 * d), ("cube", lambda d: 2**d)],
)
def test_vertex_counts(kind, expected, dim):
    assert num_vertices(kind, dim) == expected(dim)
    assert vertices(kind, dim).shape == (expected(dim), dim)


@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("kind", VERTEX_KINDS)
def test_unit_norm_and_centred(kind, dim):
    u = vertices(kind, dim)
    assert u.dtype == torch.float64
    # float64 construction: a few ulps of rounding.
    torch.testing.assert_close(u.norm(dim=1), torch.ones(len(u), dtype=torch.float64), rtol=0, atol=1e-14)
    torch.testing.assert_close(u.sum(dim=0), torch.zeros(dim, dtype=torch.float64), rtol=0, atol=1e-13)


@pytest.mark.parametrize("dim", DIMS + [16])
def test_simplex_gram(dim):
    u = vertices("simplex", dim)
    gram = u @ u.T
    expected = torch.full((dim + 1, dim + 1), -1.0 / dim, dtype=torch.float64)
    expected.fill_diagonal_(1.0)
    torch.testing.assert_close(gram, expected, rtol=0, atol=1e-14)


def test_simplex_dim1_is_plus_minus_one():
    assert vertices("simplex", 1).tolist() == [[1.0], [-1.0]]


def test_orthoplex_ordering():
    u = vertices("orthoplex", 3)
    expected = [[1, 0, 0], [-1, 0, 0], [0, 1, 0], [0, -1, 0], [0, 0, 1], [0, 0, -1]]
    assert u.tolist() == expected


def test_cube_vertices_are_all_sign_patterns():
    dim = 4
    u = vertices("cube", dim) * math.sqrt(dim)
    patterns = {tuple(int(x) for x in row) for row in u.round().tolist()}
    assert len(patterns) == 2**dim
    assert all(set(p) <= {-1, 1} for p in patterns)


@pytest.mark.parametrize("kind", VERTEX_KINDS)
def test_vertices_dtype_device(kind):
    u = vertices(kind, 3, dtype=torch.float32, device="cpu")
    assert u.dtype == torch.float32 and u.device.type == "cpu"


def test_cube_warns_above_8_and_raises_above_16():
    with pytest.warns(UserWarning, match="2\\*\\*9"):
        vertices("cube", 9)
    with pytest.raises(ValueError, match="dim must be <= 16 for kind='cube'"):
        vertices("cube", 17)


@pytest.mark.parametrize("fn", [num_vertices, vertices])
def test_unknown_kind_lists_valid(fn):
    with pytest.raises(ValueError, match=r"kind must be one of \('simplex', 'orthoplex', 'cube'\), got 'hexagon'"):
        fn("hexagon", 3)


@pytest.mark.parametrize("fn", [num_vertices, vertices])
@pytest.mark.parametrize(("dim", "msg"), [(0, "dim must be an integer >= 1, got 0"),
                                          (-2, "dim must be an integer >= 1, got -2"),
                                          (2.5, "dim must be an integer >= 1, got 2.5"),
                                          (True, "dim must be an integer >= 1, got True")])
def test_bad_dim(fn, dim, msg):
    with pytest.raises(ValueError, match=msg):
        fn("orthoplex", dim)


def test_bad_vertex_dtype():
    with pytest.raises(ValueError, match="dtype must be a floating-point"):
        vertices("simplex", 3, dtype=torch.int64)


# ----------------------------------------------------------------------------------------------
# rotations
# ----------------------------------------------------------------------------------------------


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


@pytest.mark.parametrize("dim", [1, 2, 3, 8, 16])
def test_rotations_orthogonal_det_one(dim):
    R = random_rotations(200, dim, _gen(0))
    assert R.shape == (200, dim, dim) and R.dtype == torch.float64
    eye = torch.eye(dim, dtype=torch.float64).expand(200, dim, dim)
    # float64 Householder QR: orthogonality error ~ dim * 1e-16.
    torch.testing.assert_close(R.transpose(1, 2) @ R, eye, rtol=0, atol=1e-12)
    torch.testing.assert_close(torch.linalg.det(R), torch.ones(200, dtype=torch.float64), rtol=0, atol=1e-12)


def test_rotations_float32():
    R = random_rotations(100, 6, _gen(0), dtype=torch.float32)
    assert R.dtype == torch.float32
    eye = torch.eye(6).expand(100, 6, 6)
    # float32: ~10 ulps (1.2e-7 each) of accumulated rounding.
    torch.testing.assert_close(R.transpose(1, 2) @ R, eye, rtol=0, atol=5e-6)
    assert bool((torch.linalg.det(R) > 0).all())


@pytest.mark.parametrize("dim", [2, 3, 8])
def test_rotations_deterministic(dim):
    r1 = random_rotations(10, dim, _gen(123))
    r2 = random_rotations(10, dim, _gen(123))
    r3 = random_rotations(10, dim, _gen(124))
    assert torch.equal(r1, r2)
    assert not torch.allclose(r1, r3)


def test_rotations_batched_equals_stream():
    # Batched draw is a deterministic function of the generator state; n=0 consumes nothing.
    g = _gen(5)
    assert random_rotations(0, 4, g).shape == (0, 4, 4)
    assert torch.equal(random_rotations(3, 4, g), random_rotations(3, 4, _gen(5)))


def test_rotations_dim1_ones():
    assert torch.equal(random_rotations(4, 1, _gen(0)), torch.ones(4, 1, 1, dtype=torch.float64))


@pytest.fixture(scope="module")
def haar_sample():
    return random_rotations(5000, 8, _gen(2024))


def test_haar_entry_means(haar_sample):
    # Each entry has mean 0 and sd 1/sqrt(8) = 0.354; the sd of a 5000-sample mean is 0.005, so
    # 0.05 is a 10-sigma bound even after the max over 64 entries.
    assert haar_sample.mean(dim=0).abs().max().item() < 0.05


def test_haar_second_moment(haar_sample):
    # E[R_11^2] = 1/d; R_11^2 ~ Beta(1/2, 7/2) has sd 0.148, the 5000-sample mean has sd 0.0021
    # = 1.7 % of 1/8, so 10 % is a ~6-sigma bound.
    d = 8
    m = (haar_sample[:, 0, 0] ** 2).mean().item()
    assert abs(m - 1 / d) < 0.1 / d


def test_haar_first_column_marginal_ks(haar_sample):
    # Any column of a Haar rotation is uniform on S^{d-1}, so u_1^2 ~ Beta(1/2, (d-1)/2).
    d = 8
    u1_sq = (haar_sample[:, 0, 0] ** 2).numpy()
    p = stats.kstest(u1_sq, stats.beta(0.5, (d - 1) / 2).cdf).pvalue
    assert p > 0.01
    # Sign symmetry of the first column (the det-flip must not bias it): R_11 itself, via
    # (R_11 + 1)/2 ~ Beta((d-1)/2, (d-1)/2).
    p2 = stats.kstest((haar_sample[:, 0, 0].numpy() + 1) / 2, stats.beta((d - 1) / 2, (d - 1) / 2).cdf).pvalue
    assert p2 > 0.01


def test_haar_dim2_angle_uniform():
    R = random_rotations(5000, 2, _gen(7))
    phi = np.mod(np.arctan2(R[:, 1, 0].numpy(), R[:, 0, 0].numpy()), 2 * np.pi)
    assert stats.kstest(phi, stats.uniform(0, 2 * np.pi).cdf).pvalue > 0.01
    torch.testing.assert_close(R[:, 0, 0], R[:, 1, 1], rtol=0, atol=0)
    torch.testing.assert_close(R[:, 0, 1], -R[:, 1, 0], rtol=0, atol=0)


def test_rotation_errors():
    with pytest.raises(ValueError, match="n must be an integer >= 0, got -1"):
        random_rotations(-1, 3, _gen(0))
    with pytest.raises(ValueError, match="dim must be an integer >= 1, got 0"):
        random_rotations(2, 0, _gen(0))
    with pytest.raises(ValueError, match="generator must be a torch.Generator"):
        random_rotations(2, 3, 0)
    with pytest.raises(ValueError, match="dtype must be a floating-point"):
        random_rotations(2, 3, _gen(0), dtype=torch.int32)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_rotations_on_generator_device():
    gen = torch.Generator(device="cuda").manual_seed(0)
    R = random_rotations(50, 5, gen)
    assert R.device.type == "cuda"
    eye = torch.eye(5, dtype=torch.float64, device="cuda").expand(50, 5, 5)
    torch.testing.assert_close(R.transpose(1, 2) @ R, eye, rtol=0, atol=1e-12)
    assert random_rotations(3, 5, torch.Generator(device="cuda").manual_seed(0), device="cpu").device.type == "cpu"
    for kind in VERTEX_KINDS:
        assert vertices(kind, 3, device="cuda").device.type == "cuda"
