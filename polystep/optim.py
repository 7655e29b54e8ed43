"""``PolyStep``: the PolyStep update as a ``torch.optim.Optimizer`` for ``nn.Module`` s.

The parameters ``theta`` are written as ``theta = theta_0 + P z`` (a :mod:`polystep.subspace`),
the coordinates ``z in R^D`` are zero-padded to a multiple of ``d_p`` and cut into
``P = ceil(D / d_p)`` particles ``X in R^{P x d_p}``, and every ``step`` applies
:func:`polystep.functional.step` to ``X`` with a block-coordinate cost oracle: probe ``(i, v, k)``
is the loss of ``theta_0 + P z`` with only particle ``i`` moved to ``p_{i,v,k}`` (digest Algorithm 1).

Usage::

    opt = PolyStep(model.parameters(), rank=4, particle_dim=8, eps=0.5, step_radius=2.0,
                   probe_radius=1.0, seed=0)
    for x, y in batches:
        closure = population_closure(model, F.cross_entropy, x, y, opt.params)
        opt.step(closure)            # P * V * K forward evaluations, no gradients

The closure receives a population -- one tensor per parameter, of shape ``[B, *param.shape]`` --
and returns ``B`` losses (:func:`polystep.evaluation.population_closure` builds one).  Candidates
are sent in chunks of whole particles, at most ``chunk_size`` candidates when ``chunk_size >= V*K``
(else one particle's ``V*K``), never crossing a block boundary; a candidate differs from the current
parameters only in the tensors its particle touches, the others are stride-0 expansions.  A closure
that also has ``block_losses(block, coord_offset, delta_z)`` (see :mod:`polystep.fast_eval`) gets
the chunks that lie inside one block in that structured form instead.
"""

from __future__ import annotations

import math
import zlib
from typing import Callable, Iterable, Sequence

import torch
from torch import Tensor

from . import functional as F
from .functional import PolyStepConfig, PolyStepState, StepInfo
from .subspace import SUBSPACE_KINDS, Subspace, make_subspace

__all__ = ["PolyStep"]

Closure = Callable[[Sequence[Tensor]], Tensor]


def _stream_seed(seed: int, name: str, index: int = 0) -> int:
    return (seed * 1_000_003 + zlib.crc32(f"{name}/{index}".encode())) % (2**63 - 1)


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
    """

    def __init__(self, params: Iterable[Tensor], *, subspace: str = "hybrid", rank: int = 4,
                 subspace_dim: int | None = None, max_subspace_dim: int | None = None,
                 basis: str = "qr", particle_dim: int = 8, polytope: str = "orthoplex",
                 eps=0.1, step_radius=1.0, probe_radius=2.0, radius_mode: str = "times_eps",
                 num_probes: int = 1, probe_jitter: float = 0.0, solver: str = "softmax",
                 lam: float | None = None, chunk_size: int = 1024, absorb_every: int = 0,
                 redraw_on_absorb: bool = False, seed: int = 0):
        if subspace not in SUBSPACE_KINDS:
            raise ValueError(f"subspace must be one of {SUBSPACE_KINDS}, got {subspace!r}")
        if not isinstance(particle_dim, int) or isinstance(particle_dim, bool) or particle_dim < 1:
            raise ValueError(f"particle_dim must be an integer >= 1, got {particle_dim!r}")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be an integer >= 1, got {chunk_size!r}")
        if not isinstance(absorb_every, int) or absorb_every < 0:
            raise ValueError(f"absorb_every must be an integer >= 0, got {absorb_every!r}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        if subspace == "random" and subspace_dim is None:
            raise ValueError("subspace_dim must be given for subspace='random'")
        config = PolyStepConfig(polytope=polytope, eps=eps, step_radius=step_radius,
                                probe_radius=probe_radius, radius_mode=radius_mode,
                                num_probes=num_probes, probe_jitter=probe_jitter, solver=solver,
                                lam=lam)
        defaults = dict(subspace=subspace, rank=rank, subspace_dim=subspace_dim,
                        max_subspace_dim=max_subspace_dim, basis=basis, particle_dim=particle_dim,
                        config=config, chunk_size=chunk_size, absorb_every=absorb_every,
                        redraw_on_absorb=redraw_on_absorb, seed=seed)
        super().__init__(params, defaults)
        if len(self.param_groups) != 1:
            raise ValueError("PolyStep takes one parameter group")
        if any(p.is_sparse for p in self.params):
            raise ValueError("sparse parameters are not supported")
        devices = {p.device for p in self.params}
        dtypes = {p.dtype for p in self.params}
        if len(devices) != 1 or len(dtypes) != 1:
            raise ValueError(f"all parameters must share one device and dtype, got {devices}, {dtypes}")
        self._device, self._dtype = devices.pop(), dtypes.pop()
        self._names = [str(i) for i in range(len(self.params))]
        self.subspace = self._build_subspace(draw=0)
        head = self.state[self.params[0]]
        head["step"] = 0
        head["forward_evals"] = 0
        head["subspace_draw"] = 0
        head["z"] = torch.zeros(self.subspace.dim, dtype=self._dtype, device=self._device)
        gen = torch.Generator(device=self._device)
        gen.manual_seed(_stream_seed(seed, "steps"))
        head["rng_state"] = gen.get_state()
        for p in self.params:
            self.state[p]["theta0"] = p.detach().clone()
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

    def _build_subspace(self, draw: int) -> Subspace:
        g = self.param_groups[0]
        named = dict(zip(self._names, self.params))
        gen = torch.Generator(device=self._device)
        gen.manual_seed(_stream_seed(g["seed"], "subspace", draw))
        settings = {"hybrid": {"rank": g["rank"], "max_dim": g["max_subspace_dim"], "basis": g["basis"]},
                    "random": {"dim": g["subspace_dim"], "basis": g["basis"]},
                    "identity": {}}[g["subspace"]]
        return make_subspace(g["subspace"], named, generator=gen, dtype=self._dtype,
                             device=self._device, **settings)

    def particles(self) -> Tensor:
        """``X = reshape(pad(z), [P, d_p])`` (a copy)."""
        d_p = self.param_groups[0]["particle_dim"]
        z = self.state[self.params[0]]["z"]
        padded = torch.zeros(self.num_particles * d_p, dtype=z.dtype, device=z.device)
        padded[: z.numel()] = z
        return padded.reshape(-1, d_p)

    def _write_parameters(self, z: Tensor) -> None:
        """``theta <- theta_0 + P z`` for every parameter."""
        delta = self.subspace.delta(z)
        for name, p in zip(self._names, self.params):
            p.copy_(self.state[p]["theta0"] + delta[name])

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

    def _population(self, idx: Tensor, delta_z: Tensor, name_to_param: dict) -> list[Tensor]:
        """Candidate parameters of particles ``idx`` moved by ``delta_z`` ([p, m, d_p]): one
        ``[p * m, *shape]`` tensor per parameter (untouched ones as stride-0 expansions)."""
        p, m = delta_z.shape[:2]
        population = {name: q.detach()[None].expand(p * m, *q.shape) for name, q in name_to_param.items()}
        for bi, rows, _ in self._block_rows(idx):
            block = self.subspace.blocks[bi]
            current = torch.cat([name_to_param[t.name].detach().reshape(-1) for t in block.targets])
            # theta_candidate = theta + delta_z @ rows, fused: [p, m, block numel]
            flat = torch.baddbmm(current.expand(p, m, -1), delta_z, rows).reshape(p * m, -1)
            for t in block.targets:
                population[t.name] = flat[:, t.offset:t.offset + t.numel].reshape(-1, *t.shape)
        return [population[name] for name in self._names]

    def _cost_oracle(self, closure: Closure, X: Tensor) -> Callable[[Tensor], Tensor]:
        g = self.param_groups[0]
        chunk, d_p = g["chunk_size"], g["particle_dim"]
        name_to_param = dict(zip(self._names, self.params))

        fast = getattr(closure, "block_losses", None)

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
                    losses = closure(self._population(idx, delta_z, name_to_param))
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

        Raises:
            polystep.functional.NonFiniteLossError: if every probe of some particle is NaN/inf.
        """
        if closure is None or not callable(closure):
            raise ValueError("PolyStep.step needs a closure: thetas (one [B, *shape] tensor per "
                             "parameter) -> losses [B]")
        g = self.param_groups[0]
        head = self.state[self.params[0]]
        gen = torch.Generator(device=self._device)
        gen.set_state(head["rng_state"])
        X = self.particles()
        state = PolyStepState(t=head["step"], forward_evals=head["forward_evals"])
        new_X, state, info = F.step(X, self._cost_oracle(closure, X), state, g["config"], gen)
        z = new_X.flatten()[: self.subspace.dim].contiguous()
        head.update(step=state.t, forward_evals=state.forward_evals, rng_state=gen.get_state())
        if g["absorb_every"] and state.t % g["absorb_every"] == 0:
            self._write_parameters(z)
            for p in self.params:
                self.state[p]["theta0"] = p.detach().clone()
            if g["redraw_on_absorb"]:
                head["subspace_draw"] += 1
                self.subspace = self._build_subspace(head["subspace_draw"])
            z = torch.zeros_like(z)
        else:
            self._write_parameters(z)
        head["z"] = z
        self.last_info = info
        return info.costs.mean()

    def load_state_dict(self, state_dict: dict) -> None:
        # torch.optim casts every state tensor to the parameters' dtype: keep the generator state
        # a CPU ByteTensor (``torch.Generator.set_state`` accepts nothing else)
        head_id = state_dict["param_groups"][0]["params"][0]
        rng_state = state_dict["state"][head_id]["rng_state"].detach().to("cpu", torch.uint8).clone()
        super().load_state_dict(state_dict)
        head = self.state[self.params[0]]
        head["rng_state"] = rng_state
        # always rebuild: the current subspace may be a later draw than the checkpoint's
        self.subspace = self._build_subspace(head["subspace_draw"])
        if head["z"].numel() != self.subspace.dim:
            raise ValueError(f"state_dict has D={head['z'].numel()} coordinates, this optimizer "
                             f"has D={self.subspace.dim}: hyperparameters differ")
        with torch.no_grad():
            self._write_parameters(head["z"])
