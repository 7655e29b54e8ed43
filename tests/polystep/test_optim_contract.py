"""PolyStep keeps torch.optim's contract: frozen parameters, changes made outside the optimizer,
transactional steps (no NaN/inf ever reaches a parameter), validated checkpoints that
``torch.load`` reads with ``weights_only=True``, and 16-bit, 0-d and meta parameters."""

from __future__ import annotations

import copy
import io
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF
from torch import nn

from polystep.evaluation import population_closure
from polystep.fast_eval import fast_population_closure
from polystep.functional import NonFiniteLossError
from polystep.optim import NonFiniteParameterError, PolyStep
from polystep.schedules import Cosine

CLOSURES = {"population": population_closure, "fast": fast_population_closure}


def _mlp(seed: int = 0, dtype=torch.float64) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(5, 7), nn.Tanh(), nn.Linear(7, 3)).to(dtype)


def _batch(dtype=torch.float64, seed: int = 123):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 5, generator=g, dtype=dtype), torch.randint(0, 3, (16,), generator=g)


def _opt(model, **kw) -> PolyStep:
    base = dict(rank=2, particle_dim=4, eps=0.5, step_radius=1.0, probe_radius=1.0, seed=1)
    base.update(kw)
    return PolyStep(model.parameters(), **base)


def _closure(model, opt, make=population_closure, seed: int = 123):
    x, y = _batch(next(model.parameters()).dtype, seed)
    return make(model, TF.cross_entropy, x, y, opt.params)


def _values(model):
    return [p.detach().clone() for p in model.parameters()]


def _same(a, b) -> bool:
    """Bitwise equality of nested state dicts / lists of tensors."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and a.shape == b.shape and \
            torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


# ----------------------------------------------------------------------------------------------
# requires_grad=False
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", sorted(CLOSURES))
def test_frozen_parameter_is_never_changed(kind):
    """Old code: the frozen bias was in the subspace and moved like every other parameter."""
    model = _mlp()
    frozen = model[2].bias
    frozen.requires_grad_(False)
    before = frozen.detach().clone()
    opt = _opt(model, step_radius=0.5)
    assert opt.subspace.dim == 24 + 7 + 20  # no coordinates for the 3 frozen entries
    assert "3" not in opt.subspace.names and "theta0" not in opt.state[frozen]
    closure = _closure(model, opt, CLOSURES[kind])
    seen = []

    def recording(thetas):  # the closure still gets the frozen tensor, at its fixed value
        seen.append(bool((thetas[3] == before).all()))
        return closure(thetas)

    if kind == "fast":
        recording.block_losses = closure.block_losses
    trained = _values(model)
    for _ in range(4):
        opt.step(recording)
        assert torch.equal(frozen, before)
    assert seen and all(seen)
    if kind == "fast":
        assert closure.stats["fast_calls"] > 0
    for p, p0 in zip(model.parameters(), trained):
        if p is not frozen:
            assert not torch.equal(p, p0)
    # a frozen parameter also survives a checkpoint round trip
    model2 = _mlp(seed=4)
    model2[2].bias.requires_grad_(False)
    opt2 = _opt(model2, step_radius=0.5)
    opt2.load_state_dict(opt.state_dict())
    for name in ("0.weight", "0.bias", "2.weight"):
        assert torch.equal(model2.get_parameter(name), model.get_parameter(name))
    assert not torch.equal(model2[2].bias, before)  # model2's own frozen bias is untouched


def test_requires_grad_toggled_after_construction_is_refused():
    """Old code: a parameter frozen after construction kept being moved."""
    model = _mlp()
    opt = _opt(model)
    closure = _closure(model, opt)
    opt.step(closure)
    model[0].weight.requires_grad_(False)
    before, sd = _values(model), copy.deepcopy(opt.state_dict())
    with pytest.raises(ValueError, match=r"parameter 0 has requires_grad=False but had requires_grad=True "
                                         r"when PolyStep was built: the set of optimized parameters is fixed"):
        opt.step(closure)
    assert _same(_values(model), before) and _same(opt.state_dict(), sd)


def test_every_parameter_frozen_is_refused():
    """Old code: built an optimizer that moved parameters nobody asked to train."""
    model = _mlp().requires_grad_(False)
    with pytest.raises(ValueError, match=r"no parameter to optimize: every parameter has requires_grad=False"):
        _opt(model)


# ----------------------------------------------------------------------------------------------
# changes made outside the optimizer
# ----------------------------------------------------------------------------------------------


def _load_other(model):
    model.load_state_dict(_mlp(seed=7).state_dict())


def _clamp(model):
    with torch.no_grad():
        for p in model.parameters():
            p.clamp_(-0.05, 0.05)


def _project(model):  # rows of each weight onto the unit sphere, through .data (no version bump)
    for layer in (model[0], model[2]):
        w = layer.weight.data
        w.copy_(w / w.norm(dim=1, keepdim=True))


def _replace_data(model):  # new storage
    model[0].bias.data = torch.full_like(model[0].bias, 0.3)


def _failing_closure(thetas):
    raise RuntimeError("boom")


@pytest.mark.parametrize("change", [_load_other, _clamp, _project, _replace_data])
@pytest.mark.parametrize("kind", sorted(CLOSURES))
def test_external_change_is_kept(change, kind):
    """Old code: the next step wrote theta_0 + P z and silently reverted the change."""
    model = _mlp()
    opt = _opt(model, step_radius=0.01, probe_radius=0.01, radius_mode="absolute")
    closure = _closure(model, opt, CLOSURES[kind])  # reused across the change
    for _ in range(3):
        opt.step(closure)
    old = _values(model)
    change(model)
    external = _values(model)
    assert not _same(external, old)
    # a step that fails does not commit the rebase either
    head_before = copy.deepcopy(opt.state_dict())
    with pytest.raises(RuntimeError, match="boom"):
        opt.step(_failing_closure)
    assert _same(opt.state_dict(), head_before) and _same(_values(model), external)
    opt.step(closure)
    new = _values(model)
    move = math.sqrt(sum(float((a - b).square().sum()) for a, b in zip(new, external)))
    revert = math.sqrt(sum(float((a - b).square().sum()) for a, b in zip(new, old)))
    gap = math.sqrt(sum(float((a - b).square().sum()) for a, b in zip(external, old)))
    # one step moves z by at most r_s per particle, P has orthonormal rows: |move| <= sqrt(P) r_s,
    # far less than the external change (the old code landed ~gap away from the external values)
    bound = math.sqrt(opt.num_particles) * 0.01 + 1e-12
    assert 0 < move <= bound < gap / 10
    assert revert > gap / 2
    # the base point followed: theta_0 = the externally set values, theta = theta_0 + P z
    delta = opt.subspace.delta(opt.state[opt.params[0]]["z"])
    for j, (p, e) in enumerate(zip(opt.params, external)):
        assert torch.equal(opt.state[p]["theta0"], e)
        assert torch.equal(p, e + delta[str(j)])


def test_reused_fast_closure_sees_a_change_that_bypassed_the_version_counter():
    """The fast closure caches activations keyed on the parameters' version counters; ``p.data``
    writes do not bump them.  Old code: the step scored its probes with the stale activations."""
    model = _mlp()
    opt = _opt(model)
    closure = _closure(model, opt, fast_population_closure)
    opt.step(closure)
    block = opt.subspace.blocks[0]
    closure.block_losses(block, 0, torch.zeros(1, 2, 4, dtype=torch.float64))  # cache at the current values
    model[0].weight.data.mul_(0.5)
    twin_model = copy.deepcopy(model)
    twin = _opt(twin_model)
    twin.load_state_dict(opt.state_dict())  # writes theta_0 + P z: the values before the change ...
    with torch.no_grad():
        twin_model[0].weight.copy_(model[0].weight)  # ... then the same change
    opt.step(closure)
    twin.step(_closure(twin_model, twin, fast_population_closure))  # a fresh closure
    torch.testing.assert_close(opt.last_info.costs, twin.last_info.costs, rtol=1e-12, atol=1e-12)
    assert _same(_values(model), _values(twin_model))


def test_changed_shape_is_refused():
    """Old code: a parameter resized through ``.data`` broke the step with a shape error from copy_."""
    model = _mlp()
    opt = _opt(model)
    model[0].bias.data = torch.zeros(9, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"parameter 1 changed from shape \(7,\), torch.float64, cpu to shape "
                                         r"\(9,\), torch.float64, cpu since PolyStep was built"):
        opt.step(_closure(model, opt))
    assert opt.state[opt.params[0]]["step"] == 0


# ----------------------------------------------------------------------------------------------
# no NaN/inf ever reaches a parameter
# ----------------------------------------------------------------------------------------------


def _overflow_problem(dtype, start, radius):
    """One scalar parameter at ``start``; the loss falls as it grows, so one step moves it by ~``radius``."""
    theta = nn.Parameter(torch.tensor([start], dtype=dtype))
    opt = PolyStep([theta], subspace="identity", particle_dim=1, eps=1e-3, step_radius=radius,
                   probe_radius=radius, radius_mode="absolute", seed=0)

    def closure(thetas):
        return -thetas[0][:, 0].float().nan_to_num(posinf=3e38) / start

    return theta, opt, closure


@pytest.mark.parametrize("dtype,start,radius,why", [
    (torch.float32, 2e38, 2e38, "NaN/inf"),  # theta_0 + P z overflows float32
    (torch.float16, 6e4, 1e4, "finite in torch.float32 but beyond the range of torch.float16"),
])
def test_non_finite_parameters_are_never_written(dtype, start, radius, why):
    """Old code: wrote inf into the parameter (float32) / could not build the optimizer (float16)."""
    theta, opt, closure = _overflow_problem(dtype, start, radius)
    before, sd, info = theta.detach().clone(), copy.deepcopy(opt.state_dict()), opt.last_info
    with pytest.raises(NonFiniteParameterError, match=rf"step 0 would write non-finite values into parameter 0 "
                                                      rf"\(shape \(1,\), {dtype}\): 1 of 1 entries of theta_0 \+ P z "
                                                      rf"are {why}; the step was not applied"):
        opt.step(closure)
    assert torch.equal(theta, before) and _same(opt.state_dict(), sd) and opt.last_info is info
    assert bool(torch.isfinite(theta).all())


def test_non_finite_loss_step_leaves_everything_untouched():
    """``NonFiniteLossError`` raised inside the step: no partial update."""
    model = _mlp()
    opt = _opt(model, absorb_every=1, redraw_on_absorb=True)
    opt.step(_closure(model, opt))
    before, sd, basis = _values(model), copy.deepcopy(opt.state_dict()), opt.subspace.blocks[0].basis
    with pytest.raises(NonFiniteLossError):
        opt.step(lambda thetas: torch.full((thetas[0].shape[0],), math.nan, dtype=torch.float64))
    assert _same(_values(model), before) and _same(opt.state_dict(), sd)
    assert opt.subspace.blocks[0].basis is basis


# ----------------------------------------------------------------------------------------------
# load_state_dict validates before it mutates
# ----------------------------------------------------------------------------------------------


def _other_model_state():
    torch.manual_seed(0)
    other = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3)).double()
    o = _opt(other)
    o.step(population_closure(other, TF.cross_entropy, *_batch(), o.params))
    return o.state_dict()


def _corrupt(key):
    def nan_z(sd):
        sd["state"][0]["z"][3] = math.nan

    def inf_theta0(sd):
        sd["state"][2]["theta0"][0, 0] = math.inf

    def no_rng(sd):
        del sd["state"][0]["rng_state"]

    def bad_rng(sd):
        sd["state"][0]["rng_state"] = sd["state"][0]["rng_state"][:100]

    def short_z(sd):
        sd["state"][0]["z"] = sd["state"][0]["z"][:-1]

    def bad_particle_dim(sd):
        sd["param_groups"][0]["particle_dim"] = 0

    def bad_eps(sd):
        sd["param_groups"][0]["config"]["eps"] = -1.0

    def subspace_too_big(sd):
        sd["param_groups"][0].update(subspace="random", subspace_dim=10_000)

    def fewer_params(sd):
        sd["param_groups"][0]["params"] = sd["param_groups"][0]["params"][:3]
        del sd["state"][3]

    def frozen_differs(sd):
        del sd["state"][3]["theta0"]

    def another_model(sd):
        sd.clear()
        sd.update(_other_model_state())

    def adam_state(sd):
        m = _mlp()
        adam = torch.optim.Adam(m.parameters())
        TF.cross_entropy(m(_batch()[0]), _batch()[1]).backward()
        adam.step()
        sd.clear()
        sd.update(adam.state_dict())

    cases = {
        "nan_z": (nan_z, r"state_dict has non-finite coordinates z \(1 of 54 entries NaN/inf\)"),
        "inf_theta0": (inf_theta0, r"state_dict has non-finite theta0 for parameter 2"),
        "no_rng": (no_rng, r"state_dict lacks the optimizer state \['rng_state'\]"),
        "bad_rng": (bad_rng, r"state_dict's rng_state is not a valid generator state for device cpu"),
        "short_z": (short_z, r"state_dict has D=53 coordinates, this optimizer has D=54: hyperparameters differ"),
        "bad_particle_dim": (bad_particle_dim, r"state_dict has invalid hyperparameters: particle_dim must be an "
                                               r"integer >= 1, got 0"),
        "bad_eps": (bad_eps, r"state_dict has invalid hyperparameters: eps must be a finite number > 0"),
        "subspace_too_big": (subspace_too_big, r"state_dict's hyperparameters do not fit this optimizer's "
                                               r"parameters: dim must be <= the number of parameters N=66"),
        "fewer_params": (fewer_params, r"state_dict has 3 parameters, this optimizer has 4: it was saved for "
                                       r"another model"),
        "frozen_differs": (frozen_differs, r"state_dict optimizes parameters \[0, 1, 2\], this optimizer "
                                           r"optimizes \[0, 1, 2, 3\]"),
        "another_model": (another_model, r"state_dict's theta0 of parameter 0 has shape \(8, 5\), the parameter "
                                         r"has shape \(7, 5\): it was saved for another model"),
        "adam_state": (adam_state, r"state_dict's parameter group lacks the hyperparameters"),
    }
    return cases[key]


@pytest.mark.parametrize("key", ["nan_z", "inf_theta0", "no_rng", "bad_rng", "short_z", "bad_particle_dim",
                                 "bad_eps", "subspace_too_big", "fewer_params", "frozen_differs",
                                 "another_model", "adam_state"])
def test_refused_load_leaves_optimizer_and_parameters_untouched(key):
    """Old code: torch.optim's load mutated the state first and failed later (or never): NaN
    coordinates were written into the parameters, a bad generator state surfaced at the next step,
    a truncated z raised only after the state had been replaced."""
    corrupt, match = _corrupt(key)
    source_model = _mlp(seed=2)
    source = _opt(source_model, probe_jitter=0.1)
    source.step(_closure(source_model, source))
    bad = copy.deepcopy(source.state_dict())
    corrupt(bad)

    model, twin_model = _mlp(), _mlp()
    opt, twin = _opt(model), _opt(twin_model)
    for o, m in ((opt, model), (twin, twin_model)):
        for _ in range(2):
            o.step(_closure(m, o))
    before_sd, before_params = copy.deepcopy(opt.state_dict()), _values(model)
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(bad)
    assert _same(opt.state_dict(), before_sd)
    assert _same(_values(model), before_params)
    # and it continues exactly like an optimizer that never saw the refused state
    for _ in range(2):
        opt.step(_closure(model, opt))
        twin.step(_closure(twin_model, twin))
    assert _same(_values(model), _values(twin_model)) and _same(opt.state_dict(), twin.state_dict())


# ----------------------------------------------------------------------------------------------
# torch.load(path) with the default weights_only=True
# ----------------------------------------------------------------------------------------------


def _plain(obj) -> bool:
    """Only tensors, Python scalars, strings, None and lists / tuples / dicts of them."""
    if isinstance(obj, dict):
        return all(isinstance(k, (str, int)) and _plain(v) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return all(_plain(v) for v in obj)
    return obj is None or type(obj) in (torch.Tensor, bool, int, float, str)


@pytest.mark.parametrize("kw", [
    {},
    {"eps": Cosine(start=0.5, end=0.1, steps=10), "radius_mode": "absolute",
     "step_radius": Cosine(start=1.0, end=0.2, steps=10), "probe_radius": Cosine(start=1.0, end=0.2, steps=10),
     "solver": "kl_relaxed", "lam": math.inf, "absorb_every": 2, "redraw_on_absorb": True},
    # NumPy scalars as hyperparameters (old code: eps=np.float64 ended up in the state dict, which the
    # weights-only unpickler refuses)
    {"eps": np.float64(0.5), "step_radius": np.float32(1.0), "rank": np.int64(2), "particle_dim": np.int64(4),
     "num_probes": np.int64(2), "chunk_size": np.int64(64), "seed": np.int64(1)},
])
def test_torch_load_weights_only_round_trip(tmp_path, kw):
    """Old code: the state dict held a PolyStepConfig dataclass (and schedules), which
    ``torch.load``'s weights-only unpickler refuses.  Save, load with ``weights_only=True``, load
    into a fresh optimizer of another model: the next steps are bitwise those without the round trip."""
    model = _mlp()
    opt = _opt(model, **kw)
    for _ in range(3):
        opt.step(_closure(model, opt))
    assert _plain(opt.state_dict())
    path = tmp_path / "opt.pt"
    torch.save(opt.state_dict(), path)
    loaded = torch.load(path, weights_only=True)
    model2 = _mlp(seed=5)
    opt2 = _opt(model2)  # other hyperparameters: the checkpoint's replace them
    opt2.load_state_dict(loaded)
    assert opt2.config == opt.config and opt2.param_groups[0]["absorb_every"] == opt.param_groups[0]["absorb_every"]
    assert _same(_values(model2), _values(model))
    for _ in range(3):
        opt.step(_closure(model, opt))
        opt2.step(_closure(model2, opt2))
    assert _same(_values(model2), _values(model)) and _same(opt2.state_dict(), opt.state_dict())


# ----------------------------------------------------------------------------------------------
# dtypes and shapes
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_parameters_step_in_float32_master(dtype):
    """Old code: the subspace was drawn in the parameters' dtype and QR failed ("geqrf_cpu" not
    implemented for Half/BFloat16)."""
    model = _mlp(dtype=dtype)
    opt = _opt(model, step_radius=0.05, probe_radius=0.05, radius_mode="absolute")
    head = opt.state[opt.params[0]]
    assert head["z"].dtype == torch.float32 and opt.state[opt.params[0]]["theta0"].dtype == torch.float32
    x, y = _batch(dtype)
    closure = population_closure(model, TF.cross_entropy, x, y, opt.params)
    dtypes = set()

    def recording(thetas):
        dtypes.update(t.dtype for t in thetas)
        return closure(thetas)

    start = _values(model)
    for _ in range(3):
        opt.step(recording)
    assert dtypes == {dtype}
    for p in opt.params:
        assert p.dtype == dtype and bool(torch.isfinite(p).all())
        assert torch.equal(p, opt.state[p]["theta"].to(dtype))  # the float32 value, rounded
    assert not _same(_values(model), start)
    # the fast closure is accepted and evaluated through its exact generic path
    opt.step(fast_population_closure(model, TF.cross_entropy, x, y, opt.params))
    # moves below the parameters' resolution accumulate in the float32 theta_0 + P z (for bfloat16
    # 1e-3 is an eighth of the ulp of 1.0: adding each move to the parameter would lose it)
    theta = nn.Parameter(torch.ones(1, dtype=dtype))
    small = PolyStep([theta], subspace="identity", particle_dim=1, eps=1e-3, step_radius=1e-3,
                     probe_radius=0.05, radius_mode="absolute", seed=0)
    for _ in range(30):
        small.step(lambda thetas: (thetas[0][:, 0].float() - 2).square())
    assert float(theta.detach()) > 1.02 and abs(float(small.state[theta]["theta"]) - 1.03) < 1e-3


class _Tempered(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(5, 3).double()
        self.temperature = nn.Parameter(torch.tensor(1.0, dtype=torch.float64))  # 0-d

    def forward(self, x):
        return self.lin(x) / self.temperature


@pytest.mark.parametrize("subspace,extra", [("hybrid", {}), ("identity", {}), ("random", {"subspace_dim": 8})])
def test_scalar_parameter(subspace, extra):
    """Old code: ``Subspace.delta`` called ``reshape()`` with no shape for a 0-d parameter (TypeError)."""
    torch.manual_seed(0)
    model = _Tempered()
    opt = PolyStep(model.parameters(), subspace=subspace, rank=1, particle_dim=2, eps=0.5,
                   step_radius=0.5, seed=0, **extra)
    assert opt.state[model.temperature]["theta0"].shape == ()
    x, y = _batch()
    closure = population_closure(model, TF.cross_entropy, x, y, opt.params)
    for _ in range(3):
        opt.step(closure)
    assert model.temperature.shape == () and float(model.temperature.detach()) != 1.0
    model2 = _Tempered()
    opt2 = PolyStep(model2.parameters(), subspace=subspace, rank=1, particle_dim=2, seed=0, **extra)
    buf = io.BytesIO()
    torch.save(opt.state_dict(), buf)
    buf.seek(0)
    opt2.load_state_dict(torch.load(buf))
    assert torch.equal(model2.temperature, model.temperature)


def test_meta_parameters_refused():
    """Old code: a RuntimeError from torch.Generator ("META device type not an accelerator")."""
    with torch.device("meta"):
        model = nn.Linear(3, 2)
    with pytest.raises(ValueError, match=r"parameter 0 \(shape \(2, 3\)\) is a meta tensor: it has no values "
                                         r"to evaluate or update; materialise the model first"):
        PolyStep(model.parameters())
