"""Tests for polystep.subspace: theta = theta_0 + P z (paper/polystep_reconstruction.md §2.2)."""

from __future__ import annotations

import math

import pytest
import torch

from polystep.subspace import (
    Block,
    Subspace,
    hybrid_subspace,
    identity_subspace,
    make_subspace,
    random_subspace,
)

# a tiny "network": conv (4-D), linear, biases and a norm-like 1-D tensor
SHAPES = {
    "conv.weight": (6, 3, 3, 3),
    "conv.bias": (6,),
    "fc1.weight": (7, 5),
    "fc1.bias": (7,),
    "fc2.weight": (3, 7),
    "norm": (3,),
}
N = sum(math.prod(s) for s in SHAPES.values())


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _hybrid(rank=2, seed=0, **kw):
    return hybrid_subspace(SHAPES, rank=rank, generator=_gen(seed), **kw)


def _rand_z(D, seed, lead=(), dtype=torch.float32):
    return torch.randn(*lead, D, generator=_gen(seed), dtype=dtype)


# ----------------------------------------------------------------------------------------------
# identity
# ----------------------------------------------------------------------------------------------


def test_identity_is_reshape():
    sub = identity_subspace(SHAPES)
    assert sub.dim == N and sub.kind == "identity" and sub.names == tuple(SHAPES)
    z = torch.arange(N, dtype=torch.float64)
    delta = sub.delta(z)
    assert list(delta) == list(SHAPES)
    assert all(tuple(delta[n].shape) == s for n, s in SHAPES.items())
    assert torch.equal(torch.cat([delta[n].flatten() for n in SHAPES]), z)
    # batched: [B, D] -> [B, *shape]
    zb = torch.stack([z, -z])
    db = sub.delta(zb)
    assert torch.equal(db["conv.weight"][1], -delta["conv.weight"])


def test_identity_accepts_tensors():
    params = {"w": torch.zeros(2, 3), "b": torch.zeros(2)}
    sub = identity_subspace(params)
    assert sub.dim == 8 and all(b.basis is None for b in sub.blocks)


# ----------------------------------------------------------------------------------------------
# hybrid
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [1, 2, 4])
def test_hybrid_coordinate_counts(rank):
    sub = _hybrid(rank)
    expected = {}
    for name, shape in SHAPES.items():
        if len(shape) >= 2:
            d_out, d_in = shape[0], math.prod(shape[1:])
            expected[name] = min(rank, d_out, d_in) * (d_out + d_in)
        else:
            expected[name] = math.prod(shape)
    sizes = {sub.blocks[i].targets[0].name: sub.blocks[i].size for i in range(len(sub.blocks))}
    assert sizes == expected
    assert sub.dim == sum(expected.values())
    # conv: d_out = 6, d_in = 3*3*3 = 27 -> min(r, 6, 27) * 33
    assert sizes["conv.weight"] == min(rank, 6) * 33
    for b in sub.blocks:
        shape = b.targets[0].shape
        assert (b.basis is None) == (len(shape) < 2)


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_hybrid_orthonormal_rows(dtype, atol):
    sub = _hybrid(2, dtype=dtype)
    checked = 0
    for b in sub.blocks:
        if b.basis is None:
            continue
        assert b.basis.dtype == dtype and b.size <= b.out_numel
        eye = torch.eye(b.size, dtype=dtype)
        # Householder QR: orthonormality to ~ sqrt(numel) ulps; 1e-5 (float32) is the brief's bound.
        torch.testing.assert_close(b.basis @ b.basis.T, eye, rtol=0, atol=atol)
        checked += 1
    assert checked == 3


def test_hybrid_identity_for_1d():
    sub = _hybrid(2)
    z = _rand_z(sub.dim, 0)
    delta = sub.delta(z)
    for name in ("conv.bias", "fc1.bias", "norm"):
        b = sub.block_of(name)
        assert b.basis is None
        assert torch.equal(delta[name], z[b.start:b.stop])


def test_hybrid_delta_is_basis_projection():
    sub = _hybrid(2, dtype=torch.float64)
    z = _rand_z(sub.dim, 1, dtype=torch.float64)
    delta = sub.delta(z)
    b = sub.block_of("conv.weight")
    expected = (z[b.start:b.stop] @ b.basis).reshape(6, 3, 3, 3)
    assert torch.equal(delta["conv.weight"], expected)
    # orthonormal rows: the projection is an isometry on the block, ||P_W z_W|| = ||z_W||
    torch.testing.assert_close(delta["conv.weight"].norm(), z[b.start:b.stop].norm(), rtol=1e-12, atol=0)


def test_overcomplete_layer_is_scaled_gaussian():
    """numel < n_W (no orthonormal rows possible): entries N(0, 1/n_W)."""
    shapes = {"w": (8, 10)}
    sub = hybrid_subspace(shapes, rank=8, generator=_gen(0), dtype=torch.float64)
    b = sub.blocks[0]
    n_w = 8 * (8 + 10)
    assert b.size == n_w == 144 and b.out_numel == 80 and n_w > 80
    std = float(b.basis.std() * math.sqrt(n_w))
    # 11520 Gaussian entries: the sample std has relative s.e. 1/sqrt(2 * 11520) = 0.7 %; 5 % ~ 7 s.e.
    assert std == pytest.approx(1.0, rel=0.05)
    assert abs(float(b.basis.mean())) < 5 / math.sqrt(11520) / math.sqrt(n_w)
    # not orthonormalised: Gram matrix of the rows is far from identity (rank <= 80 < 144)
    assert torch.linalg.matrix_rank(b.basis).item() == 80


def test_gaussian_basis_option():
    sub = hybrid_subspace({"w": (20, 30)}, rank=2, generator=_gen(0), basis="gaussian", dtype=torch.float64)
    b = sub.blocks[0]
    assert b.size == 100
    # entries N(0, 1/numel) -> rows of norm ~ 1; 60000 entries, s.e. 0.3 %.
    assert float(b.basis.std() * math.sqrt(600)) == pytest.approx(1.0, rel=0.03)


def test_max_dim_cap():
    full = _hybrid(4)
    fixed = 6 + 7 + 3
    projected = full.dim - fixed
    cap = 100
    sub = _hybrid(4, max_dim=cap)
    assert sub.dim <= cap
    budget = cap - fixed
    for b_full, b in zip(full.blocks, sub.blocks):
        if b.basis is None:
            assert b.size == b_full.size  # 1-D tensors keep every coordinate
        else:
            # proportional shrink, floored to an integer
            assert b.size == max(1, int(b_full.size * budget / projected))
    # a cap above D changes nothing
    assert _hybrid(4, max_dim=full.dim).dim == full.dim
    assert _hybrid(4, max_dim=10**6).dim == full.dim


@pytest.mark.parametrize("cap", [3, 4, 5, 17, 100])  # cap 2 < 3 layers: the error below
def test_max_dim_is_never_exceeded(cap):
    """Tiny layers floored at one coordinate must not push D over the cap (n_W: 800, 3, 3)."""
    shapes = {"a": (100, 100), "b": (1, 2), "c": (1, 2), "bias": (2,)}
    sub = hybrid_subspace(shapes, rank=4, generator=_gen(0), max_dim=cap + 2)
    assert sub.dim <= cap + 2
    assert all(b.size >= 1 for b in sub.blocks) and sub.block_of("bias").size == 2


def test_same_seed_same_basis_different_seed_differs():
    a, b, c = _hybrid(2, seed=3), _hybrid(2, seed=3), _hybrid(2, seed=4)
    for ba, bb, bc in zip(a.blocks, b.blocks, c.blocks):
        if ba.basis is not None:
            assert torch.equal(ba.basis, bb.basis)
            assert not torch.equal(ba.basis, bc.basis)
    r1 = random_subspace(SHAPES, dim=20, generator=_gen(1))
    r2 = random_subspace(SHAPES, dim=20, generator=_gen(1))
    assert torch.equal(r1.blocks[0].basis, r2.blocks[0].basis)


def test_redraw_changes_basis_keeps_structure():
    sub = _hybrid(2)
    new = sub.redraw(_gen(99))
    assert new.dim == sub.dim and new.kind == "hybrid" and new.settings == sub.settings
    for b0, b1 in zip(sub.blocks, new.blocks):
        assert (b0.start, b0.stop, b0.targets) == (b1.start, b1.stop, b1.targets)
        if b0.basis is not None:
            assert not torch.equal(b0.basis, b1.basis)
            torch.testing.assert_close(b1.basis @ b1.basis.T, torch.eye(b1.size), rtol=0, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# random
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dim", [1, 17, N])
def test_random_subspace_orthonormal(dim):
    sub = random_subspace(SHAPES, dim=dim, generator=_gen(0), dtype=torch.float64)
    assert sub.dim == dim and len(sub.blocks) == 1
    basis = sub.blocks[0].basis
    assert basis.shape == (dim, N)
    # float64 Householder QR
    torch.testing.assert_close(basis @ basis.T, torch.eye(dim, dtype=torch.float64), rtol=0, atol=1e-12)
    z = _rand_z(dim, 2, dtype=torch.float64)
    delta = sub.delta(z)
    flat = torch.cat([delta[n].flatten() for n in SHAPES])
    assert torch.equal(flat, z @ basis)


# ----------------------------------------------------------------------------------------------
# linearity (all kinds)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["identity", "random", "hybrid"])
def test_delta_is_linear(kind):
    settings = {"random": {"dim": 30}, "hybrid": {"rank": 2}, "identity": {}}[kind]
    sub = make_subspace(kind, SHAPES, generator=_gen(0), dtype=torch.float64, **settings)
    z1, z2 = _rand_z(sub.dim, 1, dtype=torch.float64), _rand_z(sub.dim, 2, dtype=torch.float64)
    a, b = 0.7, -2.3
    lhs = sub.delta(a * z1 + b * z2)
    d1, d2 = sub.delta(z1), sub.delta(z2)
    for name in SHAPES:
        # float64 matmul reassociation: a few ulps of |a z1| + |b z2| ~ 10
        torch.testing.assert_close(lhs[name], a * d1[name] + b * d2[name], rtol=0, atol=1e-13)
    # batched delta equals row-by-row delta
    zb = torch.stack([z1, z2])
    db = sub.delta(zb)
    for name in SHAPES:
        torch.testing.assert_close(db[name][0], d1[name], rtol=0, atol=1e-14)
        torch.testing.assert_close(db[name][1], d2[name], rtol=0, atol=1e-14)


def test_to_dtype():
    sub = _hybrid(2).to(dtype=torch.float64)
    assert all(b.basis.dtype == torch.float64 for b in sub.blocks if b.basis is not None)
    z = _rand_z(sub.dim, 0, dtype=torch.float64)
    assert sub.delta(z)["fc1.weight"].dtype == torch.float64


# ----------------------------------------------------------------------------------------------
# errors
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rank", [0, -1, 1.5, True])
def test_bad_rank(rank):
    with pytest.raises(ValueError, match=f"rank must be an integer >= 1, got {rank!r}"):
        hybrid_subspace(SHAPES, rank=rank, generator=_gen(0))


def test_bad_kind_and_missing_generator():
    with pytest.raises(ValueError, match=r"subspace must be one of \('identity', 'random', 'hybrid'\), got 'sparse'"):
        make_subspace("sparse", SHAPES, generator=_gen(0))
    with pytest.raises(ValueError, match="a hybrid subspace needs a torch.Generator"):
        make_subspace("hybrid", SHAPES, rank=2)
    with pytest.raises(ValueError, match=r"basis must be one of \('qr', 'gaussian', 'kronecker'\), got 'svd'"):
        hybrid_subspace(SHAPES, rank=2, generator=_gen(0), basis="svd")
    with pytest.raises(ValueError, match=r"basis must be 'qr' or 'gaussian' for the random subspace"):
        random_subspace(SHAPES, dim=3, generator=_gen(0), basis="svd")


def test_max_dim_errors():
    fixed = 6 + 7 + 3
    with pytest.raises(ValueError, match=rf"max_dim={fixed + 2} leaves no coordinates for the projected "
                                         rf"layers \(the 1-D tensors alone need {fixed}\)"):
        _hybrid(2, max_dim=fixed + 2)  # 3 projected layers need >= 3 coordinates
    assert _hybrid(2, max_dim=fixed + 3).dim == fixed + 3
    with pytest.raises(ValueError, match="max_dim must be an integer >= 1, got 0"):
        _hybrid(2, max_dim=0)


def test_random_dim_errors():
    with pytest.raises(ValueError, match="dim must be an integer >= 1, got 0"):
        random_subspace(SHAPES, dim=0, generator=_gen(0))
    with pytest.raises(ValueError, match=rf"dim must be <= the number of parameters N={N}, got {N + 1}"):
        random_subspace(SHAPES, dim=N + 1, generator=_gen(0))


def test_z_wrong_size():
    sub = _hybrid(2)
    with pytest.raises(ValueError, match=rf"z must have last dimension D={sub.dim}, got \({sub.dim + 1},\)"):
        sub.delta(torch.zeros(sub.dim + 1))
    with pytest.raises(ValueError, match=rf"z must have last dimension D={sub.dim}"):
        sub.delta(torch.zeros(sub.dim, 2))


def test_empty_and_missing_parameters():
    with pytest.raises(ValueError, match="parameter 'w' is empty"):
        identity_subspace({"w": (0, 3)})
    with pytest.raises(ValueError, match="no parameters given"):
        identity_subspace({})
    with pytest.raises(KeyError):
        _hybrid(2).block_of("nope")


def test_blocks_must_tile():
    t = identity_subspace({"w": (2,)}).blocks[0].targets
    with pytest.raises(ValueError, match=r"blocks must tile \[0, D\) in order"):
        Subspace([Block(1, 3, t)], "identity")
    with pytest.raises(ValueError, match="an identity block needs as many coordinates as parameters"):
        Subspace([Block(0, 3, t)], "identity")
    with pytest.raises(ValueError, match=r"basis shape \(3, 3\) != \(3, 2\)"):
        Subspace([Block(0, 3, t, torch.zeros(3, 3))], "random")
