"""Tests for the structured Kronecker basis of the hybrid subspace (polystep.subspace.KroneckerBasis):
orthonormal rows a_i (x) b_j, the lazy matrix interface equals its dense matrix, the same D as the
paper's dense QR basis, kilobytes instead of gigabytes, and the optimizer runs with it."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as TF
from torch import nn

from polystep.evaluation import population_closure
from polystep.optim import PolyStep
from polystep.subspace import KroneckerBasis, hybrid_subspace, kronecker_shape, random_subspace


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _basis(n=26, d_out=7, d_in=9, seed=0, dtype=torch.float64) -> KroneckerBasis:
    sub = hybrid_subspace({"w": (d_out, d_in)}, rank=min(d_out, d_in), max_dim=n, generator=_gen(seed),
                          dtype=dtype, basis="kronecker")
    (block,) = sub.blocks
    assert isinstance(block.basis, KroneckerBasis) and block.size == n
    return block.basis


# ------------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("d_out,d_in", [(1, 1), (1, 9), (9, 1), (7, 9), (128, 784), (10, 128), (64, 27)])
def test_kronecker_shape_covers_n_within_the_dimensions(d_out, d_in) -> None:
    for n in sorted({1, 2, 3, d_out, d_in, (d_out * d_in) // 3, d_out * d_in - 1, d_out * d_in}):
        if not 1 <= n <= d_out * d_in:
            continue
        p, q = kronecker_shape(n, d_out, d_in)
        assert p * q >= n and 1 <= p <= d_out and 1 <= q <= d_in
        assert (p - 1) * q < n  # no more left factors than needed
    assert kronecker_shape(d_out * d_in + 1, d_out, d_in) is None


def test_kronecker_shape_is_balanced_for_the_reference_layers() -> None:
    # 784-128-10 MLP, rank 4: n_W = 4 (128 + 784) = 3648 and 4 (10 + 128) = 552
    assert kronecker_shape(3648, 128, 784) == (24, 152)  # 24/128 = 0.19 ~ 152/784 = 0.19
    assert kronecker_shape(552, 10, 128) == (7, 79)


def test_coordinate_to_pair_map_is_injective_and_diagonal() -> None:
    b = _basis(n=63, d_out=7, d_in=9)  # p q = 63: every pair used once
    p, q = b.left.shape[0], b.right.shape[0]
    assert p * q == 63
    assert b.flat_index.unique().numel() == 63 and int(b.flat_index.max()) < p * q
    # consecutive coordinates (one particle) move both factors
    assert bool((b.left_index[1:8] != b.left_index[:7]).all())
    assert bool((b.right_index[1:8] != b.right_index[:7]).all())


# ----------------------------------------------------------------------------- the matrix
@pytest.mark.parametrize("n,d_out,d_in", [(26, 7, 9), (63, 7, 9), (5, 2, 40), (40, 40, 2)])
def test_rows_are_orthonormal_kronecker_products(n, d_out, d_in) -> None:
    b = _basis(n, d_out, d_in)
    dense = b.dense()
    assert dense.shape == (n, d_out * d_in) == b.shape
    torch.testing.assert_close(dense @ dense.T, torch.eye(n, dtype=torch.float64), rtol=0, atol=1e-13)
    for c in (0, n // 2, n - 1):
        a, r = b.left[b.left_index[c]], b.right[b.right_index[c]]
        torch.testing.assert_close(dense[c], torch.kron(a, r), rtol=0, atol=0)
        torch.testing.assert_close(dense[c].reshape(d_out, d_in), torch.outer(a, r), rtol=0, atol=0)


def test_lazy_indexing_equals_the_dense_matrix() -> None:
    b = _basis()
    dense = b.dense()
    idx = torch.tensor([[3, 0, 7], [25, 1, 2]])
    assert torch.equal(b[idx], dense[idx])
    assert torch.equal(b[4:11], dense[4:11])
    assert torch.equal(b[2:5, 10:30], dense[2:5, 10:30])
    with pytest.raises(IndexError):
        b[1, 2, 3]


def test_projection_equals_the_dense_product() -> None:
    b = _basis()
    z = torch.randn(2, 3, b.size, generator=_gen(1), dtype=torch.float64)
    torch.testing.assert_close(z @ b, z @ b.dense(), rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match="last dimension 26"):
        torch.randn(4, dtype=torch.float64) @ b


def test_to_changes_dtype_and_keeps_the_rows() -> None:
    b = _basis()
    b32 = b.to(dtype=torch.float32)
    assert b32.dtype == torch.float32 and b32.shape == b.shape
    torch.testing.assert_close(b32.dense().double(), b.dense(), rtol=0, atol=1e-6)


def test_bad_constructions() -> None:
    left, right = torch.eye(2), torch.eye(3)
    with pytest.raises(ValueError, match="size must be an integer in \\[1, 6\\]"):
        KroneckerBasis(left, right, 7)
    with pytest.raises(ValueError, match="share dtype"):
        KroneckerBasis(left, right.double(), 2)
    with pytest.raises(ValueError, match="matrices"):
        KroneckerBasis(torch.ones(2), right, 2)


# -------------------------------------------------------------------------- the subspace
SHAPES = {"fc1.weight": (128, 784), "fc1.bias": (128,), "fc2.weight": (10, 128), "fc2.bias": (10,),
          "conv.weight": (6, 3, 3, 3), "tiny.weight": (2, 3)}


def test_same_dimensions_as_the_dense_basis_and_kilobytes_of_storage() -> None:
    kron = hybrid_subspace(SHAPES, rank=4, generator=_gen(0), basis="kronecker")
    qr = hybrid_subspace({k: v for k, v in SHAPES.items() if k != "fc1.weight"}, rank=4,
                         generator=_gen(0), basis="qr")  # the 1.46 GB block is not built here
    assert kron.dim == sum(min(4, s[0], math.prod(s[1:])) * (s[0] + math.prod(s[1:]))
                           if len(s) > 1 else s[0] for s in SHAPES.values())
    sizes = {b.targets[0].name: b.size for b in kron.blocks}
    assert sizes == {**{b.targets[0].name: b.size for b in qr.blocks}, "fc1.weight": 3648}
    fc1 = kron.block_of("fc1.weight").basis
    assert isinstance(fc1, KroneckerBasis)
    assert fc1.numel_stored() == 24 * 128 + 152 * 784  # 122,240 numbers (0.49 MB) ...
    assert fc1.numel_stored() < 0.0004 * 3648 * 128 * 784  # ... against 365,764,608 (1.46 GB)
    assert isinstance(kron.block_of("conv.weight").basis, KroneckerBasis)  # [6, 27]: 2 * 33 <= 162
    # overcomplete tiny layer (n_W = 2 * 5 = 10 > 6): the dense construction's Gaussian rows
    tiny = kron.block_of("tiny.weight").basis
    assert isinstance(tiny, torch.Tensor) and tiny.shape == (10, 6)


def test_delta_matches_dense_rows_and_is_seeded() -> None:
    shapes = {k: v for k, v in SHAPES.items() if k != "fc1.weight"}
    a = hybrid_subspace(shapes, rank=2, generator=_gen(3), basis="kronecker", dtype=torch.float64)
    b = hybrid_subspace(shapes, rank=2, generator=_gen(3), basis="kronecker", dtype=torch.float64)
    c = a.redraw(_gen(4))
    z = torch.randn(a.dim, generator=_gen(5), dtype=torch.float64)
    delta = a.delta(z)
    for block in a.blocks:
        if isinstance(block.basis, KroneckerBasis):
            want = (z[block.start:block.stop] @ block.basis.dense()).reshape(block.targets[0].shape)
            torch.testing.assert_close(delta[block.targets[0].name], want, rtol=0, atol=1e-13)
    for ba, bb, bc in zip(a.blocks, b.blocks, c.blocks):
        if isinstance(ba.basis, KroneckerBasis):
            assert torch.equal(ba.basis.dense(), bb.basis.dense())
            assert not torch.equal(ba.basis.dense(), bc.basis.dense())
    assert c.settings["basis"] == "kronecker"


def test_random_subspace_rejects_the_kronecker_basis() -> None:
    with pytest.raises(ValueError, match="'qr' or 'gaussian' for the random subspace"):
        random_subspace({"w": (4, 5)}, dim=3, generator=_gen(0), basis="kronecker")


def test_optimizer_with_kronecker_basis_trains_and_round_trips() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    g = _gen(1)
    x = torch.randn(32, 8, generator=g, dtype=torch.float64)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0).long()
    opt = PolyStep(model.parameters(), rank=2, basis="kronecker", particle_dim=4, eps=0.02,
                   radius_mode="absolute", step_radius=0.5, probe_radius=0.5, absorb_every=5, redraw_on_absorb=True, seed=0)
    closure = population_closure(model, TF.cross_entropy, x, y, opt.params)
    with torch.no_grad():
        before = float(TF.cross_entropy(model(x), y))
    for _ in range(12):
        opt.step(closure)
    with torch.no_grad():
        after = float(TF.cross_entropy(model(x), y))
    assert after < 0.6 * before  # it trains (1.19 -> 0.49 measured)
    assert opt.state[opt.params[0]]["subspace_draw"] == 2  # two absorb-and-redraws
    saved = opt.state_dict()
    clone = nn.Sequential(nn.Linear(8, 16), nn.Tanh(), nn.Linear(16, 3)).double()
    clone.load_state_dict(model.state_dict())
    opt2 = PolyStep(clone.parameters(), rank=2, basis="kronecker", particle_dim=4, eps=0.02,
                    radius_mode="absolute", step_radius=0.5, probe_radius=0.5, absorb_every=5, redraw_on_absorb=True, seed=0)
    opt2.load_state_dict(saved)
    for a, b in zip(opt.subspace.blocks, opt2.subspace.blocks):
        if isinstance(a.basis, KroneckerBasis):
            assert torch.equal(a.basis.dense(), b.basis.dense())
    opt.step(closure)
    opt2.step(population_closure(clone, TF.cross_entropy, x, y, opt2.params))
    assert torch.equal(opt.state[opt.params[0]]["z"], opt2.state[opt2.params[0]]["z"])
