"""``PolyStep``: the PolyStep update as a ``torch.optim.Optimizer`` for ``nn.Module`` s.

The parameters ``theta`` are written as ``theta = theta_0 + P z`` (a :mod:`polystep.subspace`),
the coordinates ``z in R^D`` are zero-padded to a multiple of ``d_p`` and cut into
``P = ceil(D / d_p)`` particles ``X in R^{P x d_p}``, and every ``step`` applies
:func:`polystep.functional.step` to ``X`` with a block-coordinate cost oracle: probe ``(i, v, k)``
is the loss of ``theta_0 + P z`` with only particle ``i`` moved to ``p_{i,v,k}`` (Algorithm 1 of
arXiv 2605.01928, reconstructed in paper/polystep_reconstruction.md §2.12; costs §2.6).

Usage::

    opt = PolyStep(model.parameters(), rank=4, particle_dim=8, eps=0.5, step_radius=2.0,
                   probe_radius=1.0, seed=0)
    for x, y in batches:
        closure = population_closure(model, torch.nn.functional.cross_entropy, x, y, opt.params)
        opt.step(closure)            # P * V * K forward evaluations, no gradients

The closure receives a population -- one tensor per parameter, of shape ``[B, *param.shape]`` --
and returns ``B`` losses (:func:`polystep.evaluation.population_closure` builds one).  Candidates
are sent in chunks of whole particles, at most ``chunk_size`` candidates when ``chunk_size >= V*K``
(else one particle's ``V*K``), never crossing a block boundary; a candidate differs from the current
parameters only in the tensors its particle touches, the others are stride-0 expansions.  A closure
that also has ``block_losses(block, coord_offset, delta_z)`` (see :mod:`polystep.fast_eval`) gets
the chunks that lie inside one block in that structured form instead.

The ``torch.optim`` contract (frozen parameters, changes made outside the optimizer, checkpoints,
dtypes) is stated in :class:`PolyStep`'s docstring.
"""

from __future__ import annotations

import math
import numbers
import zlib
from collections import defaultdict
from collections.abc import Mapping
from copy import deepcopy
from dataclasses import fields
from typing import Any, Callable, Iterable, Sequence

import torch
from torch import Tensor

from ._validation import check_choice, check_int
from .functional import PolyStepConfig, PolyStepState, StepInfo
from .functional import step as polystep_step
from .schedules import Schedule, schedule_from_dict
from .subspace import SUBSPACE_KINDS, Subspace, make_subspace

__all__ = ["PolyStep", "NonFiniteParameterError"]

Closure = Callable[[Sequence[Tensor]], Tensor]

#: the optimizer-wide entries of ``state[params[0]]``
_HEAD_KEYS = ("step", "forward_evals", "subspace_draw", "z", "rng_state")
#: the hyperparameters of the parameter group (``PolyStep.__init__``'s keywords, ``config`` for the step's)
_GROUP_KEYS = ("subspace", "rank", "subspace_dim", "max_subspace_dim", "basis", "particle_dim", "config",
               "chunk_size", "absorb_every", "redraw_on_absorb", "seed")


class NonFiniteParameterError(FloatingPointError):
    """A step would have written NaN/inf into a parameter (in the parameter's own dtype).

    Raised before anything is changed: the parameters and the optimizer state (``z``, ``theta0``,
    step counter, generator state, forward evaluations) are left as they were before the step."""


def _stream_seed(seed: int, name: str, index: int = 0) -> int:
    return (seed * 1_000_003 + zlib.crc32(f"{name}/{index}".encode())) % (2**63 - 1)


def _check_settings(group: Mapping[str, Any]) -> dict[str, Any]:
    """The constructor's checks of the group hyperparameters (also applied to a loaded state).

    Returns the settings with every integer as a Python ``int`` (a NumPy integer in the parameter
    group would make ``state_dict()`` unloadable with ``weights_only=True``); the subspace's own
    range checks (``rank``, ``subspace_dim``, ``max_subspace_dim``) are :mod:`polystep.subspace`'s.
    """
    out = {"subspace": check_choice("subspace", group["subspace"], SUBSPACE_KINDS)}
    for name, minimum in (("particle_dim", 1), ("chunk_size", 1), ("absorb_every", 0), ("seed", 0)):
        out[name] = check_int(name, group[name], minimum)
    if out["subspace"] == "random" and group["subspace_dim"] is None:
        raise ValueError("subspace_dim must be given for subspace='random'")
    for name in ("rank", "subspace_dim", "max_subspace_dim"):
        value = group[name]
        out[name] = int(value) if isinstance(value, numbers.Integral) and not isinstance(value, bool) else value
    return out


def _config_to_plain(config: PolyStepConfig) -> dict[str, Any]:
    """``config`` as a dict of primitives (schedules as their ``to_dict``): loadable by
    ``torch.load(..., weights_only=True)``."""
    out = {}
    for f in fields(config):
        value = getattr(config, f.name)
        out[f.name] = value.to_dict() if isinstance(value, Schedule) else value
    return out


def _config_from_plain(data: Any) -> PolyStepConfig:
    """Inverse of :func:`_config_to_plain` (a :class:`PolyStepConfig` passes through: checkpoints
    written before the plain form)."""
    if isinstance(data, PolyStepConfig):
        return data
    if not isinstance(data, Mapping):
        raise ValueError(f"config must be a mapping of PolyStepConfig fields, got {type(data).__name__}")
    names = {f.name for f in fields(PolyStepConfig)}
    unexpected = sorted(set(data) - names)
    if unexpected:
        raise ValueError(f"config has unknown fields {unexpected}")
    kw = {k: schedule_from_dict(v) if isinstance(v, Mapping) else v for k, v in data.items()}
    try:
        return PolyStepConfig(**kw)
    except TypeError as e:  # as_schedule's "expected a Schedule or a real number"
        raise ValueError(str(e)) from e


class PolyStep(torch.optim.Optimizer):
    """Gradient-free PolyStep optimizer (softmax one-sided-OT step over polytope probes).

    Args:
        params: the parameters to train (one parameter group).
        subspace: ``"hybrid"`` (per-layer projections, the paper's default), ``"random"`` (one global
            projection of dimension ``subspace_dim``) or ``"identity"`` (full space).
        rank: rank ``r`` of the hybrid subspace (``n_W = min(r, d_out, d_in)(d_out + d_in)``).
        subspace_dim: ``D`` of the random subspace.
        max_subspace_dim: optional cap on ``D`` of the hybrid subspace.
        basis: ``"qr"`` (orthonormal columns, as the paper), ``"gaussian"`` (N(0, 1/N), no QR) or
            ``"kronecker"`` (hybrid only: structured orthonormal rows ``a_i (x) b_j``, set-up in
            milliseconds and kilobytes instead of seconds and gigabytes; a different subspace
            distribution, see :class:`polystep.subspace.KroneckerBasis`).
        particle_dim: ``d_p``.
        polytope, eps, step_radius, probe_radius, radius_mode, num_probes, probe_jitter, solver,
        lam: see :class:`polystep.functional.PolyStepConfig`.
        chunk_size: most candidates per closure call (memory ~ ``chunk_size`` x touched parameters;
            one particle's ``V*K`` candidates are never split).
        absorb_every: every this many steps set ``theta_0 <- theta``, ``z <- 0`` (0: never).
        redraw_on_absorb: draw a new subspace at each absorb (the original code meant to, but
            reused the same seed).
        seed: root seed of the subspace and of the step's randomness.

    Contract (that of ``torch.optim``):

    * **Frozen parameters.**  Parameters with ``requires_grad=False`` when the optimizer is built
      are never changed: they get no subspace coordinates and no ``theta0``.  They stay in
      ``params`` (the closure receives one tensor per entry of ``params``, the frozen ones as
      stride-0 expansions of their fixed values, so a closure built with ``opt.params`` still has
      every tensor the model needs, and the subspace blocks keep naming parameters by their index in
      ``params``).  The optimized set is fixed at construction: toggling ``requires_grad`` later
      makes ``step`` raise ``ValueError`` (build a new optimizer instead).  At least one parameter
      must require grad (PolyStep needs no gradients; there is no need to turn them off).
    * **Changes made outside the optimizer** (``model.load_state_dict``, an in-place clamp, a
      projection, ``p.data = ...``) are respected.  Every step first compares each parameter with
      the value the optimizer last wrote (``torch.equal``; a version counter misses ``.data``
      writes); if any differs, it rebases like an absorb -- ``theta_0 <- the current parameters``,
      ``z <- 0``, same subspace draw -- so the step starts from the parameters as they are.  The
      changed parameters' version counters are bumped, so a reused
      :func:`polystep.fast_eval.fast_population_closure` recomputes its cached activations.  A
      change of a parameter's shape, dtype or device is refused (``ValueError``).
    * **Transactional step.**  ``step`` computes the new coordinates, ``theta_0 + P z`` cast to each
      parameter's dtype, and any absorb / redraw first, checks that the new parameter values are
      finite in the parameters' dtype (else :class:`NonFiniteParameterError`, naming the step), and
      only then writes the parameters and the state.  A step that raises (a closure error,
      :class:`polystep.functional.NonFiniteLossError`, a non-finite move) leaves the parameters
      and the state (``z``, ``theta0``, step counter, ``rng_state``, ``forward_evals``) unchanged.
    * **Checkpoints.**  ``state_dict()`` holds only tensors and primitive containers (the step
      configuration as a dict, schedules as their ``to_dict`` form), so ``torch.load(path)`` with
      the default ``weights_only=True`` reads it.  ``load_state_dict`` validates everything before
      it changes anything -- one group with as many parameters, the same frozen ones, ``theta0`` of
      the parameters' shapes, finite ``z`` and ``theta0``, a valid generator state, valid
      hyperparameters whose subspace has ``D = len(z)``, finite ``theta_0 + P z`` -- and raises
      ``ValueError`` saying what differs, leaving the optimizer and the parameters as they were.
      As in ``torch.optim`` the loaded hyperparameters replace the optimizer's; the parameters are
      then set to ``theta_0 + P z``.
    * **Dtypes.**  All optimized parameters share one device and floating dtype.  float32 and
      float64 parameters are stepped in their own dtype.  float16 / bfloat16 parameters are stepped
      in float32 "master" precision: ``z``, ``theta0``, the subspace and the candidates' arithmetic
      are float32 (``state[p]["theta"]`` keeps the float32 value ``theta_0 + P z``), the parameters
      receive it rounded to their dtype and the closure receives candidates in the parameters'
      dtype; such steps use the closure's generic population path (not ``block_losses``, whose
      cached activations are in the parameters' dtype).  0-d parameters (a scalar temperature)
      get one coordinate.  Meta tensors (no values), sparse and complex parameters are refused at
      construction.

    State: ``state[params[0]]`` holds the optimizer-wide ``step``, ``forward_evals``,
    ``subspace_draw``, ``z`` and ``rng_state``; every optimized parameter ``p`` has
    ``state[p]["theta0"]`` and ``state[p]["theta"]`` (``theta_0 + P z`` as last written, in the
    step's precision; not saved by ``state_dict``, rebuilt on load).
    """

    def __init__(self, params: Iterable[Tensor], *, subspace: str = "hybrid", rank: int = 4,
                 subspace_dim: int | None = None, max_subspace_dim: int | None = None,
                 basis: str = "qr", particle_dim: int = 8, polytope: str = "orthoplex",
                 eps=0.1, step_radius=1.0, probe_radius=2.0, radius_mode: str = "times_eps",
                 num_probes: int = 1, probe_jitter: float = 0.0, solver: str = "softmax",
                 lam: float | None = None, chunk_size: int = 1024, absorb_every: int = 0,
                 redraw_on_absorb: bool = False, seed: int = 0):
        defaults = dict(subspace=subspace, rank=rank, subspace_dim=subspace_dim,
                        max_subspace_dim=max_subspace_dim, basis=basis, particle_dim=particle_dim,
                        config=None, chunk_size=chunk_size, absorb_every=absorb_every,
                        redraw_on_absorb=redraw_on_absorb, seed=seed)
        defaults.update(_check_settings(defaults))
        defaults["config"] = PolyStepConfig(polytope=polytope, eps=eps, step_radius=step_radius,
                                            probe_radius=probe_radius, radius_mode=radius_mode,
                                            num_probes=num_probes, probe_jitter=probe_jitter,
                                            solver=solver, lam=lam)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("PolyStep takes one parameter group")
        for i, p in enumerate(self.params):
            if p.is_meta:
                raise ValueError(
                    f"parameter {i} (shape {tuple(p.shape)}) is a meta tensor: it has no values to "
                    "evaluate or update; materialise the model first (e.g. model.to_empty(device=...) "
                    "and initialise it) and build PolyStep on the real parameters")
        if any(p.is_sparse for p in self.params):
            raise ValueError("sparse parameters are not supported")
        self._trainable = [i for i, p in enumerate(self.params) if p.requires_grad]
        if not self._trainable:
            raise ValueError("no parameter to optimize: every parameter has requires_grad=False (PolyStep, "
                             "like torch.optim, leaves those unchanged; it needs no gradients, so there "
                             "is no need to turn requires_grad off)")
        for i in self._trainable:
            if not self.params[i].is_floating_point():
                raise ValueError(f"parameter {i} has dtype {self.params[i].dtype}: PolyStep optimizes "
                                 "real floating-point parameters")
        trained = [self.params[i] for i in self._trainable]
        devices = {p.device for p in trained}
        dtypes = {p.dtype for p in trained}
        if len(devices) != 1 or len(dtypes) != 1:
            raise ValueError(f"all parameters must share one device and dtype, got {devices}, {dtypes}")
        self._device, self._param_dtype = devices.pop(), dtypes.pop()
        # the step's precision: the parameters' own for float32/64, float32 "master" for 16-bit ones
        self._dtype = torch.promote_types(self._param_dtype, torch.float32)
        self._low_precision = self._dtype != self._param_dtype
        self._spec = [(tuple(p.shape), p.dtype, p.device, bool(p.requires_grad)) for p in self.params]
        self._names = [str(i) for i in range(len(self.params))]
        self.subspace = self._build_subspace(draw=0)
        head = self.state[self.params[0]]
        head["step"] = 0
        head["forward_evals"] = 0
        head["subspace_draw"] = 0
        head["z"] = torch.zeros(self.subspace.dim, dtype=self._dtype, device=self._device)
        gen = torch.Generator(device=self._device)
        gen.manual_seed(_stream_seed(defaults["seed"], "steps"))
        head["rng_state"] = gen.get_state()
        for i in self._trainable:
            p = self.params[i]
            self.state[p]["theta0"] = p.detach().to(self._dtype, copy=True)
            self.state[p]["theta"] = p.detach().to(self._dtype, copy=True)
        self.last_info: StepInfo | None = None

    # ----------------------------------------------------------------------------------- helpers
    @property
    def params(self) -> list[Tensor]:
        return self.param_groups[0]["params"]

    @property
    def config(self) -> PolyStepConfig:
        return self.param_groups[0]["config"]

    @property
    def num_particles(self) -> int:
        return math.ceil(self.subspace.dim / self.param_groups[0]["particle_dim"])

    @property
    def evals_per_step(self) -> int:
        """``P * V * K`` forward evaluations per step."""
        from .polytopes import num_vertices

        g = self.param_groups[0]
        return self.num_particles * num_vertices(self.config.polytope, g["particle_dim"]) * \
            self.config.num_probes

    def _build_subspace(self, draw: int, group: Mapping | None = None) -> Subspace:
        g = self.param_groups[0] if group is None else group
        named = {self._names[i]: self.params[i] for i in self._trainable}
        gen = torch.Generator(device=self._device)
        gen.manual_seed(_stream_seed(g["seed"], "subspace", draw))
        settings = {"hybrid": {"rank": g["rank"], "max_dim": g["max_subspace_dim"], "basis": g["basis"]},
                    "random": {"dim": g["subspace_dim"], "basis": g["basis"]},
                    "identity": {}}[g["subspace"]]
        return make_subspace(g["subspace"], named, generator=gen, dtype=self._dtype,
                             device=self._device, **settings)

    def _pad(self, z: Tensor) -> Tensor:
        d_p = self.param_groups[0]["particle_dim"]
        padded = torch.zeros(self.num_particles * d_p, dtype=z.dtype, device=z.device)
        padded[: z.numel()] = z
        return padded.reshape(-1, d_p)

    def particles(self) -> Tensor:
        """``X = reshape(pad(z), [P, d_p])`` (a copy)."""
        return self._pad(self.state[self.params[0]]["z"])

    def _check_parameters(self) -> None:
        """The optimized set and the optimized tensors' shape, dtype and device are those seen at
        construction (the subspace and ``theta0`` are built for them)."""
        for i, (p, (shape, dtype, device, trainable)) in enumerate(zip(self.params, self._spec)):
            if bool(p.requires_grad) != trainable:
                raise ValueError(
                    f"parameter {i} has requires_grad={bool(p.requires_grad)} but had "
                    f"requires_grad={trainable} when PolyStep was built: the set of optimized parameters "
                    "is fixed at construction (build a new optimizer to change it)")
            if trainable and (tuple(p.shape) != shape or p.dtype != dtype or p.device != device):
                raise ValueError(
                    f"parameter {i} changed from shape {shape}, {dtype}, {device} to shape "
                    f"{tuple(p.shape)}, {p.dtype}, {p.device} since PolyStep was built: its subspace "
                    "is fixed at construction (build a new optimizer after resizing or moving the model)")

    def _base_point(self) -> tuple[dict[str, Tensor], dict[str, Tensor], Tensor]:
        """``(theta0, theta, z)`` to step from: the state's, or -- when a parameter differs from what
        the optimizer last wrote -- rebased onto the parameters as they are (``theta_0 <- theta``,
        ``z <- 0``).  Nothing is stored here: the step commits the rebase with its result."""
        head = self.state[self.params[0]]
        theta0, theta, changed = {}, {}, []
        for i in self._trainable:
            p, name = self.params[i], self._names[i]
            st = self.state[p]
            theta0[name], theta[name] = st["theta0"], st["theta"]
            written = st["theta"] if st["theta"].dtype == p.dtype else st["theta"].to(p.dtype)
            if not torch.equal(p.detach(), written):
                changed.append(i)
        if not changed:
            return theta0, theta, head["z"]
        for i in changed:
            p = self.params[i]
            # the change may have bypassed the version counter (``p.data.clamp_()``): bump it so that
            # caches keyed on it (fast_eval's activations) see the new values
            torch.autograd.graph.increment_version(p)
            theta[self._names[i]] = p.detach().to(self._dtype, copy=True)
        # unchanged parameters keep their value theta (in the step's precision), changed ones are read
        return dict(theta), theta, torch.zeros_like(head["z"])

    def _new_parameters(self, theta0: Mapping[str, Tensor], z: Tensor, subspace: Subspace,
                        t: int) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """``theta = theta_0 + P z`` in the step's precision and cast to each parameter's dtype;
        raises :class:`NonFiniteParameterError` if ``z`` or any new parameter value is not finite."""
        if not bool(torch.isfinite(z).all()):
            n_bad = int((~torch.isfinite(z)).sum())
            raise NonFiniteParameterError(
                f"step {t} would move to non-finite coordinates z ({n_bad} of {z.numel()} entries "
                "NaN/inf): the step was not applied; the parameters and the optimizer state are unchanged")
        delta = subspace.delta(z)
        theta, values = {}, {}
        for i in self._trainable:
            p, name = self.params[i], self._names[i]
            new = theta0[name] + delta[name]
            value = new if new.dtype == p.dtype else new.to(p.dtype)
            finite = torch.isfinite(value)
            if not bool(finite.all()):
                n_bad = int((~finite).sum())
                why = (f"finite in {new.dtype} but beyond the range of {p.dtype}"
                       if bool(torch.isfinite(new).all()) else "NaN/inf")
                raise NonFiniteParameterError(
                    f"step {t} would write non-finite values into parameter {i} (shape "
                    f"{tuple(p.shape)}, {p.dtype}): {n_bad} of {p.numel()} entries of theta_0 + P z are "
                    f"{why}; the step was not applied: the parameters and the optimizer state are "
                    "unchanged (a step or probe radius too large for the parameters' scale?)")
            theta[name], values[name] = new, value
        return theta, values

    def _write_parameters(self, theta: Mapping[str, Tensor], values: Mapping[str, Tensor]) -> None:
        """Commit validated values (from :meth:`_new_parameters`): ``p <- values``, ``theta``
        recorded as what was last written."""
        for i in self._trainable:
            p, name = self.params[i], self._names[i]
            p.copy_(values[name])
            self.state[p]["theta"] = theta[name]

    def _block_rows(self, particle_idx: Tensor) -> list[tuple[int, Tensor, Tensor]]:
        """For particles ``particle_idx`` ([p]): per touched block, ``(block, rows [p, d_p, m], mask)``."""
        d_p = self.param_groups[0]["particle_dim"]
        coords = particle_idx[:, None] * d_p + torch.arange(d_p, device=particle_idx.device)
        lo, hi = int(coords.min()), int(coords.max()) + 1
        out = []
        for bi, b in enumerate(self.subspace.blocks):
            if b.stop <= lo or b.start >= hi:
                continue
            inside = (coords >= b.start) & (coords < b.stop)
            if b.basis is not None and bool(inside.all()) and \
                    bool((particle_idx[1:] - particle_idx[:-1] == 1).all()):
                # consecutive particles inside one block: their rows are a view of the basis
                rows = b.basis[lo - b.start: hi - b.start].view(len(particle_idx), d_p, -1)
                out.append((bi, rows, inside))
                continue
            local = (coords - b.start).clamp(0, b.size - 1)
            if b.basis is None:
                rows = torch.nn.functional.one_hot(local, b.size).to(self._dtype)
            else:
                rows = b.basis[local]  # [p, d_p, m]
            out.append((bi, rows * inside[..., None].to(self._dtype), inside))
        return out

    def _particle_chunks(self, n: int, per_chunk: int) -> list[tuple[int, int, int | None]]:
        """Consecutive particle ranges ``[lo, hi)`` of at most ``per_chunk`` particles that never
        cross a block boundary, each with the index of the block that contains all its coordinates
        (``None`` for a particle straddling two blocks or holding padding)."""
        d_p = self.param_groups[0]["particle_dim"]
        segments = []
        for bi, b in enumerate(self.subspace.blocks):
            first, last = -(-b.start // d_p), b.stop // d_p  # particles wholly inside the block
            if first < last:
                segments.append((first, last, bi))
        out, cursor = [], 0
        for first, last, bi in segments + [(n, n, None)]:
            for i in range(cursor, first):  # straddling / padding particles, one at a time
                out.append((i, i + 1, None))
            for lo in range(first, last, per_chunk):
                out.append((lo, min(last, lo + per_chunk), bi))
            cursor = max(cursor, last)
        return out

    def _population(self, idx: Tensor, delta_z: Tensor, name_to_param: dict,
                    base: Mapping[str, Tensor] | None = None) -> list[Tensor]:
        """Candidate parameters of particles ``idx`` moved by ``delta_z`` ([p, m, d_p]): one
        ``[p * m, *shape]`` tensor per parameter (untouched ones as stride-0 expansions), in the
        parameters' dtypes.  ``base``: the moved tensors' current values in the step's precision
        (default: the parameters themselves)."""
        p, m = delta_z.shape[:2]
        population = {name: q.detach()[None].expand(p * m, *q.shape) for name, q in name_to_param.items()}
        for bi, rows, _ in self._block_rows(idx):
            block = self.subspace.blocks[bi]
            current = torch.cat([(name_to_param[t.name].detach() if base is None else base[t.name]).reshape(-1)
                                 for t in block.targets])
            # theta_candidate = theta + delta_z @ rows, fused: [p, m, block numel]
            flat = torch.baddbmm(current.expand(p, m, -1), delta_z, rows).reshape(p * m, -1)
            for t in block.targets:
                cand = flat[:, t.offset:t.offset + t.numel].reshape(-1, *t.shape)
                dtype = name_to_param[t.name].dtype
                population[t.name] = cand if cand.dtype == dtype else cand.to(dtype)
        return [population[name] for name in self._names]

    def _cost_oracle(self, closure: Closure, X: Tensor,
                     base: Mapping[str, Tensor] | None = None) -> Callable[[Tensor], Tensor]:
        g = self.param_groups[0]
        chunk, d_p = g["chunk_size"], g["particle_dim"]
        name_to_param = dict(zip(self._names, self.params))
        if base is None and self._low_precision:  # the float32 master values, not the rounded parameters
            base = {self._names[i]: self.state[self.params[i]]["theta"] for i in self._trainable}

        # block_losses works on the parameters as they are (its cached activations are in their dtype)
        fast = None if self._low_precision else getattr(closure, "block_losses", None)

        def cost_fn(probes: Tensor) -> Tensor:
            n, m, _ = probes.shape
            costs = torch.empty(n, m, dtype=self._dtype, device=self._device)
            for lo, hi, block_index in self._particle_chunks(n, max(1, chunk // m)):
                idx = torch.arange(lo, hi, device=self._device)
                delta_z = probes[lo:hi] - X[lo:hi, None, :]  # [p, m, d_p]
                if fast is not None and block_index is not None:
                    block = self.subspace.blocks[block_index]
                    losses = fast(block, lo * d_p - block.start, delta_z)
                else:
                    losses = closure(self._population(idx, delta_z, name_to_param, base))
                if not isinstance(losses, Tensor) or losses.shape != ((hi - lo) * m,):
                    raise ValueError(f"closure must return a tensor of {(hi - lo) * m} losses, got "
                                     f"{getattr(losses, 'shape', type(losses).__name__)}")
                costs[lo:hi] = losses.detach().to(self._dtype).reshape(hi - lo, m)
            return costs

        return cost_fn

    # ------------------------------------------------------------------------------------ public
    @torch.no_grad()
    def step(self, closure: Closure) -> Tensor:  # type: ignore[override]
        """One PolyStep step; returns the mean probe loss (a cheap training-loss proxy).

        Everything is computed and checked before anything is written: if this raises, the
        parameters and the optimizer state are as they were.

        Raises:
            polystep.functional.NonFiniteLossError: if every probe of some particle is NaN/inf
                (and any other error of :func:`polystep.functional.step`, e.g. a non-finite move).
            NonFiniteParameterError: if the new parameter values would not be finite in the
                parameters' dtype.
            ValueError: a missing or malformed closure, or parameters whose ``requires_grad``,
                shape, dtype or device changed since construction.
        """
        if closure is None or not callable(closure):
            raise ValueError("PolyStep.step needs a closure: thetas (one [B, *shape] tensor per "
                             "parameter) -> losses [B]")
        self._check_parameters()
        g = self.param_groups[0]
        head = self.state[self.params[0]]
        t = head["step"]
        theta0, theta, z = self._base_point()
        gen = torch.Generator(device=self._device)
        gen.set_state(head["rng_state"])
        X = self._pad(z)
        state = PolyStepState(t=t, forward_evals=head["forward_evals"])
        base = theta if self._low_precision else None
        new_X, state, info = polystep_step(X, self._cost_oracle(closure, X, base), state, g["config"], gen)
        z = new_X.flatten()[: self.subspace.dim].contiguous()
        theta, values = self._new_parameters(theta0, z, self.subspace, t)
        subspace, draw = self.subspace, head["subspace_draw"]
        if g["absorb_every"] and state.t % g["absorb_every"] == 0:
            theta0 = {name: value.clone() for name, value in theta.items()}
            z = torch.zeros_like(z)
            if g["redraw_on_absorb"]:
                draw += 1
                subspace = self._build_subspace(draw)
        # commit: nothing below can fail on valid inputs
        self._write_parameters(theta, values)
        for i in self._trainable:
            self.state[self.params[i]]["theta0"] = theta0[self._names[i]]
        head.update(step=state.t, forward_evals=state.forward_evals, rng_state=gen.get_state(), z=z,
                    subspace_draw=draw)
        self.subspace = subspace
        self.last_info = info
        return info.costs.mean()

    def state_dict(self) -> dict[str, Any]:
        """``torch.optim``'s state dict with the step configuration as a plain dict (loadable with
        ``torch.load(..., weights_only=True)``) and without the derived ``theta`` entries."""
        sd = super().state_dict()
        sd["param_groups"] = [{**group, "config": _config_to_plain(group["config"])}
                              for group in sd["param_groups"]]
        sd["state"] = {k: ({kk: vv for kk, vv in v.items() if kk != "theta"} if "theta" in v else v)
                       for k, v in sd["state"].items()}
        return sd

    def load_state_dict(self, state_dict: dict) -> None:
        """Load a :meth:`state_dict`: validate all of it, then replace the state and the
        hyperparameters and set the parameters to ``theta_0 + P z``.

        Raises:
            ValueError: the state does not fit this optimizer (other model, other frozen parameters,
                wrong shapes, non-finite values, invalid generator state or hyperparameters); nothing
                was changed.
        """
        if not isinstance(state_dict, Mapping):
            raise ValueError(f"state_dict must be a mapping, got {type(state_dict).__name__}")
        state_dict = dict(state_dict)  # shallow copy, as torch.optim
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, state_dict)
            if result is not None:
                state_dict = result
        self._check_parameters()
        group, head, theta0, subspace = self._validate_state_dict(state_dict)
        theta, values = self._validated_parameters(theta0, head["z"], subspace, head["step"])
        # commit
        new_state: defaultdict[Tensor, dict] = defaultdict(dict)
        new_state[self.params[0]].update(head)
        for i in self._trainable:
            new_state[self.params[i]]["theta0"] = theta0[self._names[i]]
        group["params"] = self.params
        old_group = self.param_groups[0]
        if "param_names" in old_group and "param_names" not in group:
            group["param_names"] = old_group["param_names"]
        self.__setstate__({"state": new_state, "param_groups": [group]})
        self.subspace = subspace
        with torch.no_grad():
            self._write_parameters(theta, values)
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    def _validated_parameters(self, theta0, z, subspace, t):
        try:
            return self._new_parameters(theta0, z, subspace, t)
        except NonFiniteParameterError as e:
            raise ValueError(f"state_dict is refused: theta_0 + P z is not finite in the parameters' "
                             f"dtype ({e})") from e

    def _validate_state_dict(self, sd: Mapping) -> tuple[dict, dict, dict[str, Tensor], Subspace]:
        """Every check of :meth:`load_state_dict`, without changing anything.  Returns the new
        parameter group (without ``params``), the head state, ``theta0`` (in the step's precision
        and on the parameters' device, copies) and the subspace of the loaded hyperparameters."""
        if "state" not in sd or "param_groups" not in sd:
            raise ValueError(f"state_dict must have 'state' and 'param_groups', got keys {sorted(map(str, sd))}")
        states, groups = sd["state"], sd["param_groups"]
        if not isinstance(states, Mapping) or not isinstance(groups, (list, tuple)):
            raise ValueError("state_dict['state'] must be a mapping and state_dict['param_groups'] a list")
        if len(groups) != 1 or not isinstance(groups[0], Mapping):
            raise ValueError(f"state_dict has {len(groups)} parameter groups, PolyStep takes one")
        saved = groups[0]
        ids = list(saved.get("params", ()))
        if len(ids) != len(self.params) or len(set(ids)) != len(ids):
            raise ValueError(f"state_dict has {len(ids)} parameters, this optimizer has {len(self.params)}: "
                             "it was saved for another model")
        missing = [k for k in _GROUP_KEYS if k not in saved]
        if missing:
            raise ValueError(f"state_dict's parameter group lacks the hyperparameters {missing}")
        group = {k: deepcopy(v) for k, v in saved.items() if k not in ("params", "config")}
        try:
            group["config"] = _config_from_plain(saved["config"])
            group.update(_check_settings(group))
            if not isinstance(group["redraw_on_absorb"], bool):
                raise ValueError(f"redraw_on_absorb must be a bool, got {group['redraw_on_absorb']!r}")
        except ValueError as e:
            raise ValueError(f"state_dict has invalid hyperparameters: {e}") from e
        position = {sid: i for i, sid in enumerate(ids)}
        unknown = [k for k in states if k not in position]
        if unknown:
            raise ValueError(f"state_dict has state for parameter ids {unknown[:10]} that are not in its "
                             "parameter group")
        entries = [states.get(sid, {}) for sid in ids]
        if not all(isinstance(e, Mapping) for e in entries):
            raise ValueError("state_dict's per-parameter states must be mappings")
        saved_trainable = [i for i, e in enumerate(entries) if "theta0" in e]
        if saved_trainable != self._trainable:
            raise ValueError(f"state_dict optimizes parameters {saved_trainable}, this optimizer optimizes "
                             f"{self._trainable} (parameters with requires_grad=False are not optimized)")
        for i, e in enumerate(entries):
            allowed = {"theta0", "theta"} if i in self._trainable else set()
            allowed |= set(_HEAD_KEYS) if i == 0 else set()
            extra = sorted(map(str, set(e) - allowed))
            if extra:
                raise ValueError(f"state_dict has unexpected state {extra} for parameter {i}")
        raw = entries[0]
        absent = [k for k in _HEAD_KEYS if k not in raw]
        if absent:
            raise ValueError(f"state_dict lacks the optimizer state {absent} (state of parameter 0)")
        head = {what: check_int(f"state_dict's {what}", raw[what], 0)
                for what in ("step", "forward_evals", "subspace_draw")}
        z = raw["z"]
        if not isinstance(z, Tensor) or z.ndim != 1 or not z.is_floating_point():
            raise ValueError(f"state_dict's z must be a 1-D floating tensor, got "
                             f"{getattr(z, 'shape', type(z).__name__)}")
        if not bool(torch.isfinite(z).all()):
            raise ValueError(f"state_dict has non-finite coordinates z ({int((~torch.isfinite(z)).sum())} of "
                             f"{z.numel()} entries NaN/inf)")
        head["z"] = z.detach().to(device=self._device, dtype=self._dtype, copy=True)
        head["rng_state"] = self._validated_rng_state(raw["rng_state"])
        theta0 = {}
        for i in self._trainable:
            t0, shape = entries[i]["theta0"], self._spec[i][0]
            if not isinstance(t0, Tensor) or not t0.is_floating_point() or tuple(t0.shape) != shape:
                raise ValueError(f"state_dict's theta0 of parameter {i} has shape "
                                 f"{tuple(getattr(t0, 'shape', ()))}, the parameter has shape {shape}: "
                                 "it was saved for another model")
            if not bool(torch.isfinite(t0).all()):
                raise ValueError(f"state_dict has non-finite theta0 for parameter {i}")
            theta0[self._names[i]] = t0.detach().to(device=self._device, dtype=self._dtype, copy=True)
        try:
            subspace = self._build_subspace(head["subspace_draw"], group)
        except (ValueError, TypeError) as e:
            raise ValueError(f"state_dict's hyperparameters do not fit this optimizer's parameters: {e}") from e
        if head["z"].numel() != subspace.dim:
            raise ValueError(f"state_dict has D={head['z'].numel()} coordinates, this optimizer "
                             f"has D={subspace.dim}: hyperparameters differ")
        return group, head, theta0, subspace

    def _validated_rng_state(self, rng: Any) -> Tensor:
        """The generator state as the CPU ByteTensor ``torch.Generator.set_state`` takes (a state
        cast to another dtype by an older ``torch.optim`` load is taken back if exact)."""
        if not isinstance(rng, Tensor) or rng.ndim != 1:
            raise ValueError(f"state_dict's rng_state must be a 1-D uint8 tensor, got "
                             f"{getattr(rng, 'shape', type(rng).__name__)}")
        state = rng.detach().to("cpu", torch.uint8, copy=True)
        if rng.dtype != torch.uint8 and not torch.equal(state.to(rng.dtype), rng.detach().cpu()):
            raise ValueError(f"state_dict's rng_state is not a byte tensor (dtype {rng.dtype})")
        try:
            torch.Generator(device=self._device).set_state(state)
        except (RuntimeError, ValueError, TypeError) as e:
            raise ValueError(f"state_dict's rng_state is not a valid generator state for device "
                             f"{self._device}: {e}") from e
        return state
