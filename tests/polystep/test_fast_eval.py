"""Tests for polystep.fast_eval: the structured ``block_losses`` path equals the naive per-candidate
evaluation (population path) for every supported layer type and subspace, and the whole PolyStep
trajectory does not change when the fast closure replaces ``population_closure``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as TF
from torch import nn
from torch.func import functional_call

from polystep.evaluation import parameter_names, population_closure
from polystep.fast_eval import FastPopulationClosure, fast_population_closure
from polystep.optim import PolyStep
from polystep.subspace import KroneckerBasis


# ------------------------------------------------------------------------------------- models
def _seq_mlp():
    return nn.Sequential(nn.Linear(6, 7), nn.ReLU(), nn.Linear(7, 3)), (6,)


def _seq_layernorm():
    return nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5), nn.Tanh(), nn.Linear(5, 3)), (6,)


def _seq_layernorm_plain():  # LayerNorm without affine parameters: a row-wise module
    return nn.Sequential(nn.Linear(6, 5), nn.LayerNorm(5, elementwise_affine=False), nn.Sigmoid(),
                         nn.Linear(5, 3)), (6,)


def _seq_layernorm_weight_only():
    return nn.Sequential(nn.Linear(6, 5), nn.GELU(), nn.LayerNorm(5, bias=False),
                         nn.Linear(5, 3)), (6,)


def _seq_flatten_nested():  # Flatten of [B, 2, 3], nested Sequential, Identity, eval-mode Dropout
    return nn.Sequential(nn.Flatten(), nn.Sequential(nn.Linear(6, 5), nn.SiLU(), nn.Identity()),
                         nn.Dropout(0.5), nn.Linear(5, 3)).eval(), (2, 3)


def _seq_tokens():  # Linear and LayerNorm on [B, T, F] (leading dims), then Flatten
    return nn.Sequential(nn.Linear(4, 3), nn.LayerNorm(3), nn.LeakyReLU(0.1), nn.Flatten(),
                         nn.Linear(6, 3)), (2, 4)


def _seq_softmax_head():  # row-wise softmax as the last layer
    return nn.Sequential(nn.Linear(6, 4), nn.ELU(), nn.Linear(4, 3), nn.LogSoftmax(dim=-1)), (6,)


def _seq_layernorm_2d():  # a 2-D LayerNorm weight: a projected block (dense or Kronecker rows)
    return nn.Sequential(nn.Linear(5, 24), nn.Unflatten(1, (4, 6)), nn.LayerNorm((4, 6)),
                         nn.Flatten(), nn.Linear(24, 3)), (5,)


def _seq_conv2d():  # Conv2d (weight and bias responses), pooling, Flatten, Linear head
    return nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(3, 4, 2), nn.MaxPool2d(2, ceil_mode=True), nn.Flatten(),
                         nn.Linear(16, 3)), (16,)


def _seq_conv1d_bn():  # Conv1d, eval-mode BatchNorm without affine parameters, adaptive pooling
    return nn.Sequential(nn.Unflatten(1, (2, 6)), nn.Conv1d(2, 4, 3, padding=1, padding_mode="reflect"),
                         nn.BatchNorm1d(4, affine=False), nn.Tanh(), nn.Conv1d(4, 4, 3),
                         nn.AdaptiveAvgPool1d(2), nn.Flatten(), nn.Linear(8, 3)).eval(), (12,)


MODELS = {"mlp": _seq_mlp, "layernorm_2d": _seq_layernorm_2d, "conv2d": _seq_conv2d,
          "conv1d_bn": _seq_conv1d_bn, "layernorm": _seq_layernorm, "layernorm_plain": _seq_layernorm_plain,
          "layernorm_weight_only": _seq_layernorm_weight_only, "flatten_nested": _seq_flatten_nested,
          "tokens": _seq_tokens, "logsoftmax": _seq_softmax_head}


def _build(kind: str, dtype, seed: int = 0):
    torch.manual_seed(seed)  # test-side initialisation only
    model, in_shape = MODELS[kind]()
    model = model.to(dtype)
    with torch.no_grad():  # non-trivial LayerNorm parameters and BatchNorm statistics
        for m in model.modules():
            if isinstance(m, nn.BatchNorm1d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.5, 2.0)
            if isinstance(m, nn.LayerNorm) and m.weight is not None:
                m.weight.add_(0.3 * torch.randn_like(m.weight))
                if m.bias is not None:
                    m.bias.add_(0.3 * torch.randn_like(m.bias))
    g = torch.Generator().manual_seed(seed + 100)
    x = torch.randn(9, *in_shape, generator=g, dtype=dtype)
    y = torch.randint(0, 3, (9,), generator=g)
    return model, x, y


def _loss_for(kind: str):
    return TF.nll_loss if kind == "logsoftmax" else TF.cross_entropy


def _opt(model, subspace: str, dtype, **kw) -> PolyStep:
    """``subspace="kronecker"``: the hybrid subspace with the structured Kronecker basis."""
    n = sum(p.numel() for p in model.parameters())
    extra = {"subspace_dim": min(20, n)} if subspace == "random" else {}
    if subspace == "kronecker":
        subspace, extra = "hybrid", {"basis": "kronecker"}
    base = dict(subspace=subspace, rank=2, particle_dim=4, eps=0.5, step_radius=1.0,
                probe_radius=1.0, chunk_size=48, seed=3)
    base.update(extra, **kw)
    return PolyStep(model.parameters(), **base)


def _random_probes(opt: PolyStep, m: int = 8, scale: float = 0.5):
    X = opt.particles()
    g = torch.Generator().manual_seed(7)
    noise = torch.randn(X.shape[0], m, X.shape[1], generator=g, dtype=torch.float64)
    return X, X[:, None, :] + scale * noise.to(X.dtype)


def _costs(opt, closure, X, probes):
    return opt._cost_oracle(closure, X)(probes)


def _fast_equals_naive(model, x, y, subspace: str, *, rtol: float, atol: float):
    """Assert that the fast closure's costs of random probes equal the population closure's
    (float64 models, cross-entropy); returns ``(optimizer, fast closure)`` for further checks."""
    opt = _opt(model, subspace, torch.float64)
    fast = fast_population_closure(model, TF.cross_entropy, x, y, opt.params)
    naive = population_closure(model, TF.cross_entropy, x, y, opt.params)
    X, probes = _random_probes(opt)
    torch.testing.assert_close(_costs(opt, fast, X, probes), _costs(opt, naive, X, probes),
                               rtol=rtol, atol=atol)
    return opt, fast


# ------------------------------------------------------------------ the hook equals the naive path
@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("subspace", ["hybrid", "identity", "kronecker"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_block_losses_equal_population_path(kind, subspace, dtype) -> None:
    model, x, y = _build(kind, dtype)
    opt = _opt(model, subspace, dtype)
    if subspace == "kronecker":  # overcomplete small layers keep dense rows; the others do not
        assert any(isinstance(b.basis, KroneckerBasis) for b in opt.subspace.blocks)
    loss = _loss_for(kind)
    fast = fast_population_closure(model, loss, x, y, opt.params)
    naive = population_closure(model, loss, x, y, opt.params)
    X, probes = _random_probes(opt)
    got, want = _costs(opt, fast, X, probes), _costs(opt, naive, X, probes)
    if dtype == torch.float64:
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    else:
        assert float(((got - want).abs() / want.abs().clamp_min(1e-6)).max()) < 1e-5
    assert fast.unsupported is None and not fast.declined
    assert fast.stats["fast_candidates"] > 0 and fast.stats["declined_calls"] == 0
    # every candidate was evaluated exactly once, by one of the two paths
    n_eval = fast.stats["fast_candidates"] + fast.stats["population_candidates"]
    assert n_eval == probes.shape[0] * probes.shape[1]


def _reference_block_losses(model, loss_fn, x, y, params, block, coord_offset, delta_z):
    """Candidate by candidate: theta + delta_z[i, j] @ rows_i, full forward, loss."""
    names = parameter_names(model, params)
    p, m, d_p = delta_z.shape
    out = []
    for i in range(p):
        coords = torch.arange(coord_offset + i * d_p, coord_offset + (i + 1) * d_p)
        if block.basis is None:
            rows = torch.nn.functional.one_hot(coords, block.size).to(delta_z.dtype)
        elif isinstance(block.basis, KroneckerBasis):  # from the factors, not basis[...]
            rows = torch.stack([torch.kron(block.basis.left[block.basis.left_index[c]],
                                           block.basis.right[block.basis.right_index[c]])
                                for c in coords.tolist()])
        else:
            rows = block.basis[coords]
        for j in range(m):
            flat = delta_z[i, j] @ rows
            theta = {n: q.detach() for n, q in zip(names, params)}
            for t in block.targets:
                k = int(t.name)
                theta[names[k]] = theta[names[k]] + flat[t.offset:t.offset + t.numel].reshape(t.shape)
            out.append(loss_fn(functional_call(model, theta, (x,)), y))
    return torch.stack(out)


@pytest.mark.parametrize("subspace", ["hybrid", "identity", "kronecker"])
@pytest.mark.parametrize("kind", ["layernorm", "layernorm_2d"])
def test_block_losses_contract_against_per_candidate_loop(subspace, kind) -> None:
    """The hook's contract, checked without the optimizer: a chunk starting inside a block."""
    model, x, y = _build(kind, torch.float64)
    opt = _opt(model, subspace, torch.float64)
    fast = fast_population_closure(model, TF.cross_entropy, x, y, opt.params)
    g = torch.Generator().manual_seed(11)
    for block in opt.subspace.blocks:
        d_p = 2
        p = block.size // d_p - 1
        if p < 1:
            continue
        delta_z = torch.randn(p, 3, d_p, generator=g, dtype=torch.float64)
        got = fast.block_losses(block, 1, delta_z)  # coordinates 1 .. 1 + p * d_p of the block
        want = _reference_block_losses(model, TF.cross_entropy, x, y, opt.params, block, 1, delta_z)
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    assert fast.stats["declined_calls"] == 0 and fast.stats["fast_calls"] > 0


def test_generic_loss_functions() -> None:
    """loss_fn semantics are kept (vmap over candidates): MSE on float targets, a summed loss."""
    model, x, _ = _build("mlp", torch.float64)
    target = torch.randn(x.shape[0], 3, dtype=torch.float64)
    opt = _opt(model, "hybrid", torch.float64)
    X, probes = _random_probes(opt)
    for loss in (TF.mse_loss, lambda out, t: (out - t).abs().sum() + out.pow(2).mean()):
        fast = fast_population_closure(model, loss, x, target, opt.params)
        naive = population_closure(model, loss, x, target, opt.params)
        torch.testing.assert_close(_costs(opt, fast, X, probes), _costs(opt, naive, X, probes),
                                   rtol=1e-10, atol=1e-12)
        assert fast.stats["fast_calls"] > 0


def test_sub_chunks_do_not_change_the_losses() -> None:
    model, x, y = _build("tokens", torch.float64)
    opt = _opt(model, "hybrid", torch.float64)
    X, probes = _random_probes(opt)
    whole = fast_population_closure(model, TF.cross_entropy, x, y, opt.params, sub_chunk_bytes=None)
    tiny = fast_population_closure(model, TF.cross_entropy, x, y, opt.params, sub_chunk_bytes=1)
    torch.testing.assert_close(_costs(opt, tiny, X, probes), _costs(opt, whole, X, probes),
                               rtol=1e-12, atol=1e-13)
    with pytest.raises(ValueError, match="sub_chunk_bytes"):
        fast_population_closure(model, TF.cross_entropy, x, y, opt.params, sub_chunk_bytes=0)


def test_deterministic() -> None:
    model, x, y = _build("layernorm", torch.float32)
    opt = _opt(model, "hybrid", torch.float32)
    X, probes = _random_probes(opt)
    a = _costs(opt, fast_population_closure(model, TF.cross_entropy, x, y, opt.params), X, probes)
    b = _costs(opt, fast_population_closure(model, TF.cross_entropy, x, y, opt.params), X, probes)
    assert torch.equal(a, b)


# ------------------------------------------------------------------------- random subspace, declines
def test_random_subspace_multi_layer_block_is_declined_but_exact() -> None:
    model, x, y = _build("layernorm", torch.float32)
    opt = _opt(model, "random", torch.float32)
    fast = fast_population_closure(model, TF.cross_entropy, x, y, opt.params)
    naive = population_closure(model, TF.cross_entropy, x, y, opt.params)
    X, probes = _random_probes(opt)
    torch.testing.assert_close(_costs(opt, fast, X, probes), _costs(opt, naive, X, probes),
                               rtol=1e-6, atol=1e-6)
    assert fast.stats["fast_calls"] == 0 and fast.stats["declined_calls"] > 0
    assert "spans" in next(iter(fast.declined.values()))


@pytest.mark.parametrize("layer", ["linear", "layernorm"])
@pytest.mark.parametrize("subspace", ["random", "hybrid", "identity"])
def test_single_layer_takes_the_fast_path_for_every_subspace(layer, subspace) -> None:
    """A random block whose targets (weight and bias) are in one layer is linear in its
    coordinates: fast path, with dense basis rows for 1-D tensors too."""
    torch.manual_seed(0)
    model = (nn.Linear(7, 4) if layer == "linear" else nn.Sequential(nn.LayerNorm(7), nn.Tanh())).double()
    if layer == "layernorm":
        with torch.no_grad():
            model[0].weight.add_(0.3 * torch.randn(7, dtype=torch.float64))
    g = torch.Generator().manual_seed(1)
    x = torch.randn(11, 7, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (11,), generator=g)
    opt = _opt(model, subspace, torch.float64)
    fast = fast_population_closure(model, TF.cross_entropy, x, y, opt.params)
    naive = population_closure(model, TF.cross_entropy, x, y, opt.params)
    X, probes = _random_probes(opt)
    torch.testing.assert_close(_costs(opt, fast, X, probes), _costs(opt, naive, X, probes),
                               rtol=1e-10, atol=1e-12)
    assert fast.stats["fast_calls"] > 0 and not fast.declined


def test_opaque_layers_decline_their_blocks_and_keep_the_linear_head_fast() -> None:
    """A grouped Conv1d (no fast path of its own) before a Linear head: the conv's blocks take the
    exact generic path, the head's the fast one."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 4, 3, groups=2), nn.ReLU(), nn.Flatten(), nn.Linear(16, 3)).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 2, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (5,), generator=g)
    opt, fast = _fast_equals_naive(model, x, y, "hybrid", rtol=1e-12, atol=1e-12)
    assert fast.unsupported is None
    assert fast.stats["fast_calls"] > 0 and fast.stats["declined_calls"] > 0
    conv_blocks = {(b.start, b.stop) for b in opt.subspace.blocks if b.targets[0].name in ("0", "1")}
    assert fast.declined and set(fast.declined) <= conv_blocks
    assert all("Conv1d" in r for r in fast.declined.values())


def test_model_without_affine_layers_is_unsupported() -> None:
    model = nn.Sequential(nn.Conv1d(2, 4, 3, groups=2), nn.Flatten()).double()
    x = torch.randn(4, 2, 6, dtype=torch.float64)
    fast = fast_population_closure(model, TF.mse_loss, x, torch.zeros(4, 16, dtype=torch.float64))
    assert "no affine layer" in fast.unsupported


class _SignLinear(nn.Linear):  # a subclass that overrides forward: not affine in its weight
    def forward(self, x):
        return TF.linear(x, torch.sign(self.weight) * self.weight.abs().mean(), self.bias)


class _Residual(nn.Sequential):  # a Sequential subclass with its own forward
    def forward(self, x):
        return x + super().forward(x)


def _hooked():
    model = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), nn.Linear(6, 3))
    model[1].register_forward_hook(lambda mod, inp, out: out * 2.0)
    return model


@pytest.mark.parametrize("make,reason", [
    (lambda: nn.Sequential(_SignLinear(6, 6), nn.ReLU(), nn.Linear(6, 3)), "_SignLinear"),
    (lambda: nn.Sequential(_Residual(nn.Linear(6, 6), nn.Tanh()), nn.Linear(6, 3)), "_Residual"),
    (_hooked, "Tanh")])
def test_look_alike_layers_are_not_taken_for_supported(make, reason) -> None:
    """Each model's first layer is (or is followed by) a look-alike: its blocks are declined; the
    plain last Linear keeps the fast path."""
    torch.manual_seed(0)
    model = make().double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (5,), generator=g)
    opt, fast = _fast_equals_naive(model, x, y, "hybrid", rtol=1e-12, atol=1e-12)
    assert fast.stats["fast_calls"] > 0 and fast.stats["declined_calls"] > 0
    assert fast.declined and all(reason in r for r in fast.declined.values())


def test_batch_mixing_layers_are_not_taken_for_row_wise() -> None:
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(5, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (5,), generator=g)
    flat0 = nn.Sequential(nn.Linear(4, 3), nn.Flatten(0)).double()  # flattens the batch
    soft0 = nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=0)).double()  # normalises over the batch
    for model, target in ((flat0, torch.randn(15, dtype=torch.float64)), (soft0, y)):
        loss = TF.mse_loss if target.is_floating_point() else TF.cross_entropy
        opt = _opt(model, "identity", torch.float64)
        fast = fast_population_closure(model, loss, x, target, opt.params)
        naive = population_closure(model, loss, x, target, opt.params)
        X, probes = _random_probes(opt)
        torch.testing.assert_close(_costs(opt, fast, X, probes), _costs(opt, naive, X, probes),
                                   rtol=1e-12, atol=1e-12)
        assert fast.stats["fast_calls"] == 0
        if model is flat0:  # the batch dimension itself changes: no fast path at all
            assert "changes the batch dimension" in fast.unsupported
        else:  # the softmax is demoted to opaque: the Linear before it is declined
            assert "batch dimension" in fast.demoted[1]
            assert fast.declined and all("layer 1" in r for r in fast.declined.values())


def test_tied_weights_are_declined() -> None:
    torch.manual_seed(0)
    first, second = nn.Linear(4, 4), nn.Linear(4, 4)
    second.weight = first.weight  # one Parameter in two layers (reusing one *module* twice breaks
    # torch.func.functional_call itself, i.e. population_closure, in torch 2.13)
    model = nn.Sequential(first, nn.Tanh(), second, nn.Linear(4, 3)).double()
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 4, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (6,), generator=g)
    opt, fast = _fast_equals_naive(model, x, y, "hybrid", rtol=1e-12, atol=1e-12)
    assert any("shared" in reason for reason in fast.declined.values())
    assert fast.stats["fast_calls"] > 0  # the last layer is not tied


def test_population_interface_delegates() -> None:
    model, x, y = _build("mlp", torch.float64)
    fast = fast_population_closure(model, TF.cross_entropy, x, y)
    naive = population_closure(model, TF.cross_entropy, x, y)
    g = torch.Generator().manual_seed(2)
    thetas = [q.detach() + 0.1 * torch.randn(4, *q.shape, generator=g, dtype=q.dtype)
              for q in model.parameters()]
    assert torch.equal(fast(thetas), naive(thetas))
    assert isinstance(fast, FastPopulationClosure) and fast.stats["population_calls"] == 1
    assert fast.parameter_names == naive.parameter_names


def test_cache_follows_parameter_changes() -> None:
    """Prefix activations are recomputed when a parameter changes in place (as after a step)."""
    model, x, y = _build("layernorm", torch.float64)
    opt = _opt(model, "hybrid", torch.float64)
    fast = fast_population_closure(model, TF.cross_entropy, x, y, opt.params)
    X, probes = _random_probes(opt)
    _costs(opt, fast, X, probes)
    with torch.no_grad():
        model[0].weight.add_(0.5)  # the first layer: every later block sees new activations
    naive = population_closure(model, TF.cross_entropy, x, y, opt.params)
    torch.testing.assert_close(_costs(opt, fast, X, probes), _costs(opt, naive, X, probes),
                               rtol=1e-10, atol=1e-12)


# ------------------------------------------------------------------------- whole trajectories
def _trajectory(kind, subspace, make, steps, new_batch_each_step, dtype=torch.float32):
    model, x, y = _build(kind, dtype)
    opt = _opt(model, subspace, dtype, chunk_size=64)
    g = torch.Generator().manual_seed(5)
    closure = make(model, _loss_for(kind), x, y, opt.params)
    zs = []
    for _ in range(steps):
        if new_batch_each_step:
            xb = torch.randn(x.shape, generator=g, dtype=dtype)
            yb = torch.randint(0, 3, y.shape, generator=g)
            closure = make(model, _loss_for(kind), xb, yb, opt.params)
        opt.step(closure)
        zs.append(opt.state[opt.params[0]]["z"].clone())
    return torch.stack(zs), closure


@pytest.mark.parametrize("kind,subspace,new_batch", [
    ("mlp", "hybrid", False), ("layernorm", "hybrid", True), ("tokens", "identity", False),
    ("flatten_nested", "random", True), ("layernorm_weight_only", "identity", True),
    ("mlp", "kronecker", True), ("layernorm_2d", "kronecker", False)])
def test_trajectory_equals_population_closure(kind, subspace, new_batch) -> None:
    fast_z, fast = _trajectory(kind, subspace, fast_population_closure, 4, new_batch)
    naive_z, _ = _trajectory(kind, subspace, population_closure, 4, new_batch)
    assert float((fast_z - naive_z).abs().max()) <= 1e-5 * max(1.0, float(naive_z.abs().max()))
    assert float((fast_z[-1] - fast_z[0]).abs().max()) > 1e-3  # the particles did move
    if subspace != "random":
        assert fast.stats["fast_calls"] > 0


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("subspace", ["hybrid", "kronecker"])
def test_cuda_matches_cpu(subspace) -> None:
    model, x, y = _build("layernorm", torch.float32)
    opt = _opt(model, subspace, torch.float32)
    X, probes = _random_probes(opt)
    cpu = _costs(opt, fast_population_closure(model, TF.cross_entropy, x, y, opt.params), X, probes)
    model_c, x_c, y_c = _build("layernorm", torch.float32)
    model_c, x_c, y_c = model_c.cuda(), x_c.cuda(), y_c.cuda()
    opt_c = _opt(model_c, subspace, torch.float32)
    closure = fast_population_closure(model_c, TF.cross_entropy, x_c, y_c, opt_c.params)
    got = _costs(opt_c, closure, X.cuda(), probes.cuda())
    assert got.device.type == "cuda" and closure.stats["fast_calls"] > 0
    naive = population_closure(model_c, TF.cross_entropy, x_c, y_c, opt_c.params)
    torch.testing.assert_close(got, _costs(opt_c, naive, X.cuda(), probes.cuda()), rtol=1e-5, atol=1e-6)
    assert cpu.shape == got.shape


# ------------------------------------------------------------------------------ convolutions, BN
def _bn_net(groups: int = 1):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Unflatten(1, (2, 8)), nn.Conv1d(2, 4, 3, groups=groups), nn.BatchNorm1d(4),
                          nn.ReLU(), nn.Flatten(), nn.Linear(24, 3)).double()
    with torch.no_grad():
        model[2].running_mean.normal_()
        model[2].running_var.uniform_(0.5, 2.0)
        model[2].weight.add_(0.3 * torch.randn(4, dtype=torch.float64))
    g = torch.Generator().manual_seed(1)
    return model, torch.randn(6, 16, generator=g, dtype=torch.float64), torch.randint(0, 3, (6,), generator=g)


@pytest.mark.parametrize("subspace", ["hybrid", "identity"])
def test_batchnorm_in_eval_mode_is_affine(subspace) -> None:
    """Running statistics: y = xhat w + b, linear in w and b; every block is fast and exact."""
    model, x, y = _bn_net()
    model.eval()
    opt, fast = _fast_equals_naive(model, x, y, subspace, rtol=1e-10, atol=1e-12)
    assert not fast.declined and fast.stats["fast_calls"] > 0
    bn_blocks = [b for b in opt.subspace.blocks if b.targets[0].name in ("2", "3")]
    assert bn_blocks and all(fast._plan(b) is not None for b in bn_blocks)
    # 2-D BatchNorm on images, too
    torch.manual_seed(0)
    net = nn.Sequential(nn.Unflatten(1, (1, 4, 4)), nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.ReLU(),
                        nn.Flatten(), nn.Linear(8, 3)).double().eval()
    with torch.no_grad():
        net[2].running_mean.normal_()
        net[2].weight.add_(0.5)
    _, fast2 = _fast_equals_naive(net, torch.randn(5, 16, dtype=torch.float64), y[:5], subspace,
                                  rtol=1e-10, atol=1e-12)
    assert not fast2.declined


def test_batchnorm_with_batch_statistics_is_opaque() -> None:
    """Batch statistics mix the rows: the BatchNorm is demoted, the conv before it declined (exact),
    the head after it fast."""
    model, x, y = _bn_net()
    model[2] = nn.BatchNorm1d(4, track_running_stats=False).double()
    opt, fast = _fast_equals_naive(model, x, y, "hybrid", rtol=1e-10, atol=1e-12)
    assert "batch dimension" in fast.demoted[2]
    assert any("after the perturbed layer 1" in r for r in fast.declined.values())
    assert fast.stats["fast_calls"] > 0  # the Linear head


def test_switching_batchnorm_to_eval_mode_plans_again() -> None:
    # (train mode with running statistics cannot be evaluated by the population path under vmap
    # at all; only the fast closure's classification is checked here)
    model, x, y = _bn_net()
    model.train()
    opt = _opt(model, "hybrid", torch.float64)
    fast = fast_population_closure(model, TF.cross_entropy, x, y, opt.params)
    conv = opt.subspace.blocks[0]
    assert fast._activations() is not None and 2 in fast.demoted
    assert fast._plan(conv) is None
    model.eval()
    assert fast._activations() is not None and not fast.demoted
    assert fast._plan(conv) is not None and not fast.declined


def test_grouped_convolution_is_opaque() -> None:
    model, x, y = _bn_net(groups=2)
    model.eval()
    opt, fast = _fast_equals_naive(model, x, y, "hybrid", rtol=1e-10, atol=1e-12)
    assert any("Conv1d" in r for r in fast.declined.values())
