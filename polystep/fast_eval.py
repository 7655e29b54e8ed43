"""Fast population evaluation for layer stacks: share the prefix, perturb one layer linearly.

Every candidate that :class:`polystep.optim.PolyStep` evaluates differs from the current parameters
in ONE subspace block, and with the per-layer (hybrid) or the identity subspace a block belongs to
one tensor of one layer.  For a stack of layers ``f = f_L o ... o f_1`` this allows

* **a shared prefix** -- the activations ``a_l`` entering every layer are computed once for the
  closure's batch and cached; the cache is keyed on the layers' parameters (identity, storage and
  in-place version counter) and training flags, so it is recomputed when the optimizer writes new
  parameters after a step and a closure can be reused across steps;
* **a linear perturbation** -- ``nn.Linear`` and ``nn.LayerNorm`` are affine in their parameters,
  so with ``Delta theta = sum_k delta_k B_k`` (``B_k``: the particle's basis rows, or unit vectors
  for an identity block) the perturbed layer output is::

      out(delta) = base_out + sum_k delta_k U_k,   U_k = J_theta(layer)(a_l) B_k   ("responses")

  e.g. ``U_k = a_l B_k^T`` for a Linear weight (``B_k`` reshaped ``[d_out, d_in]``: one broadcast
  matmul ``[N, d_in] x [p d_p, d_in, d_out]`` per chunk), ``U_k = B_k`` broadcast over the batch for
  a bias, ``U_k = xhat B_k`` for a LayerNorm weight (``xhat`` the normalised input).  With the
  structured :class:`polystep.subspace.KroneckerBasis` (``B_k = a_i b_j^T``) a Linear weight's
  response is the outer product ``U_k = (a_l b_j) a_i^T``: ``O(N d_in)`` per coordinate instead of
  ``O(N d_in d_out)``, and no dense rows are formed.  The
  ``p * m`` perturbed outputs come from one ``baddbmm`` (``[p, m, d_p] x [p, d_p, N * d_out]``);
* **a batched suffix** -- the layers after the perturbed one run once on ``[p * m * batch, ...]``
  (candidates folded into the batch dimension: every supported layer acts on each row alone);
* **the loss per candidate** -- ``torch.vmap`` of ``loss_fn(out, y)`` over the candidates, i.e.
  exactly ``loss_fn``'s semantics (any reduction it applies over its batch stays inside one
  candidate).

No full parameter vector is copied per probe; the cost of a chunk is ``p * d_p`` layer forwards
(the responses) plus ``p * m`` suffix forwards, against ``p * m`` full forwards (and ``p * m``
materialised weight tensors) for :func:`polystep.evaluation.population_closure`.

Supported models: an ``nn.Sequential`` (nested ones are flattened) -- or a single module -- whose
dimension 0 is the batch at every layer.  Each layer is one of three kinds:

* **affine** -- ``nn.Linear``, ``nn.LayerNorm`` (with or without affine parameters) and
  ``nn.Conv1d/2d/3d`` with ``groups == 1`` (any padding mode), ``nn.BatchNorm1d/2d/3d`` in eval mode
  with running statistics: their blocks take the fast path,
  provided every layer after them is affine or row-wise (a convolution's weight response
  ``conv(a_l, B_k)`` is one convolution with ``K C_out`` output channels -- ``K`` single-channel
  filters ``b_j`` for Kronecker rows -- its bias response ``B_k`` broadcast over positions);
* **row-wise** -- acts on every row of dimension 0 on its own: ``nn.Flatten`` / ``nn.Unflatten``
  (not touching dimension 0), ``nn.Identity``, eval-mode ``nn.Dropout``, the activations in
  :data:`ROWWISE_MODULES`, pooling and padding layers, softmax-like modules along a non-batch
  dimension, the non-differentiable
  blocks of :mod:`polystep.nondiff` (class attribute ``polystep_rowwise = True``; they may have
  parameters) and the types given as ``rowwise=(MyModule, ...)``.  They may follow a perturbed
  layer (the candidates are folded into their batch); their own parameters' blocks are declined;
* **opaque** -- anything else (a ``Linear`` subclass with its own ``forward``, a ``Sequential``
  subclass, grouped convolutions, modules with forward hooks, a row-wise module found
  acting along the batch -- e.g. a BatchNorm using batch statistics): it may only come *before* a
  perturbed layer (the prefix is evaluated once, on the true
  batch, exactly as every candidate would evaluate it); its blocks and those of every layer before
  it are declined.  Opaque layers must be deterministic.

Types are matched exactly (a subclass may override ``forward``).  Block targets are named as
:class:`polystep.optim.PolyStep` names them (``"0"``, ``"1"``, ...: indices into ``params``) or
by their parameter names in the model.

Fallback (exact; as fast as :func:`population_closure`, whose evaluation it uses):

* an unsupported model (no affine layer, a layer that changes the batch dimension, training-mode
  dropout, parameters outside the layer stack) -- every chunk is evaluated by the population closure
  (``block_losses`` builds the chunk's population itself, as ``PolyStep._population`` would);
* a **declined** block -- ``block_losses`` builds that chunk's population itself and evaluates it
  with the population closure: a block whose targets lie in several layers (the ``random``
  subspace: one global block spanning all tensors; the output is then not linear in the block's
  coordinates; a ``random`` block whose targets are all in one layer is handled by the fast path),
  a block of a row-wise or opaque layer, a block followed by an opaque layer, a parameter used by two
  layers (tied weights).

Piecewise-constant layers (thresholds, ``floor``, ``round``, ``argmax``) after a perturbed layer see
the same pre-activations as in the naive evaluation up to floating-point rounding (the fast path sums
``base + sum_k delta_k U_k`` instead of forming ``W + Delta W``): a pre-activation within a few ulps of
a jump can land on the other side, in either evaluation.

``closure.stats`` counts the calls and candidates of each path, ``closure.declined`` lists the
declined blocks with the reason.  Device and dtype follow ``x`` and the model; the computation is
deterministic (no atomics, no randomness).  On CPU a chunk is processed in sub-chunks whose
perturbed activations take about 8 MiB (``sub_chunk_bytes``): cache-resident buffers, no page
faults of fresh large allocations; this changes speed only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as Fn
from torch import Tensor, nn

from ._validation import check_int
from .evaluation import parameter_names, population_closure
from .subspace import KroneckerBasis

__all__ = ["fast_population_closure", "FastPopulationClosure", "ROWWISE_MODULES"]

#: parameter-free modules that map every row (index along dimension 0) on its own
ROWWISE_MODULES: tuple[type[nn.Module], ...] = (
    nn.Identity, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU,
    nn.Mish, nn.Tanh, nn.Sigmoid, nn.Hardtanh, nn.Hardsigmoid, nn.Hardswish, nn.Softplus,
    nn.Softsign, nn.Tanhshrink, nn.Softshrink, nn.Hardshrink, nn.LogSigmoid, nn.Threshold,
)
#: parameter-free pooling and padding: every sample on its own
_POOLING_MODULES: tuple[type[nn.Module], ...] = (
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d, nn.AdaptiveMaxPool1d,
    nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d, nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d,
    nn.ConstantPad1d, nn.ConstantPad2d, nn.ConstantPad3d, nn.ReflectionPad1d, nn.ReflectionPad2d,
    nn.ReplicationPad1d, nn.ReplicationPad2d)
#: row-wise only when their ``dim`` is not the batch dimension
_DIM_MODULES: tuple[type[nn.Module], ...] = (nn.Softmax, nn.LogSoftmax, nn.Softmin, nn.GLU)
#: affine in their weight and bias (``groups == 1``; grouped convolutions are opaque)
_CONV_MODULES: tuple[type[nn.Module], ...] = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: affine in weight and bias in eval mode with running statistics (else batch-mixing: opaque)
_BATCHNORM_MODULES: tuple[type[nn.Module], ...] = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
#: on CPU the perturbed outputs of a chunk are processed in pieces of about this size: buffers that
#: stay in cache and below glibc's mmap threshold (no page faults per call) -- ~20 % faster per step
_CPU_SUB_CHUNK_BYTES = 8 * 2**20


def _flatten_layers(model: nn.Module) -> list[nn.Module]:
    """The leaves of nested ``nn.Sequential`` containers (subclasses that keep its ``forward``)."""
    if isinstance(model, nn.Sequential) and type(model).forward is nn.Sequential.forward \
            and not _has_hooks(model):
        out: list[nn.Module] = []
        for child in model:
            out += _flatten_layers(child)
        return out
    return [model]


def _has_hooks(module: nn.Module) -> bool:
    return bool(module._forward_hooks or module._forward_pre_hooks
                or getattr(module, "_forward_hooks_with_kwargs", None)
                or getattr(module, "_forward_pre_hooks_with_kwargs", None))


@dataclass(frozen=True)
class _Part:
    """One target of a block, located in the layer stack."""

    target_index: int  # index in the optimizer's parameter list
    offset: int        # offset of the target in the block's output
    numel: int
    role: str          # "weight" | "bias"


@dataclass(frozen=True)
class _Plan:
    layer: int
    parts: tuple[_Part, ...]


class FastPopulationClosure:
    """Population closure with the structured ``block_losses`` fast path (see the module docstring).

    ``closure(thetas)`` is the ordinary population interface (``[B, *shape]`` tensors -> ``[B]``
    losses) of :func:`polystep.evaluation.population_closure`; ``closure.block_losses(block,
    coord_offset, delta_z)`` evaluates the ``p * m`` candidates "current parameters + ``delta_z[i,
    j] @ rows_i``" of ``p`` consecutive particles inside ``block`` (``delta_z``: ``[p, m, d_p]``,
    losses ordered ``i * m + j``).
    """

    def __init__(self, model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor], x: Tensor,
                 y: Tensor, params: Sequence[Tensor] | None = None, *,
                 rowwise: Sequence[type[nn.Module]] = (), sub_chunk_bytes: int | None | str = "auto"):
        if sub_chunk_bytes == "auto":
            sub_chunk_bytes = _CPU_SUB_CHUNK_BYTES if x.device.type == "cpu" else None
        if sub_chunk_bytes is not None:
            sub_chunk_bytes = check_int("sub_chunk_bytes", sub_chunk_bytes, 1, ", None or 'auto'")
        self.sub_chunk_bytes = sub_chunk_bytes
        self.model, self.loss_fn, self.x, self.y = model, loss_fn, x, y
        self.params = list(model.parameters()) if params is None else list(params)
        self._population = population_closure(model, loss_fn, x, y, self.params)
        self.parameter_names = parameter_names(model, self.params)
        self._rowwise = tuple(ROWWISE_MODULES) + tuple(rowwise)
        self._by_name = {name: i for i, name in enumerate(self.parameter_names)}
        self.layers = _flatten_layers(model)
        self.unsupported: str | None = self._check_static()
        self._loss_batched = torch.vmap(lambda out: loss_fn(out, y))
        self._key: tuple | None = None
        self._acts: list[Tensor] = []
        self._plans: dict[tuple, _Plan | None] = {}
        self.declined: dict[tuple[int, int], str] = {}
        self.demoted: dict[int, str] = {}  # row-wise layers found acting along the batch
        self.stats = {"fast_calls": 0, "fast_candidates": 0, "declined_calls": 0,
                      "declined_candidates": 0, "population_calls": 0, "population_candidates": 0}

    # ------------------------------------------------------------------------------ interfaces
    def __call__(self, thetas: Sequence[Tensor]) -> Tensor:
        self.stats["population_calls"] += 1
        self.stats["population_candidates"] += int(thetas[0].shape[0]) if len(thetas) else 0
        return self._population(thetas)

    @torch.no_grad()
    def block_losses(self, block, coord_offset: int, delta_z: Tensor) -> Tensor:
        """Losses ``[p * m]`` of the candidates ``theta + delta_z[i, j] @ rows_i`` of ``block``."""
        p, m, d_p = delta_z.shape
        if coord_offset < 0 or coord_offset + p * d_p > block.size:
            raise ValueError(f"particles [{coord_offset}, {coord_offset + p * d_p}) do not lie in "
                             f"the block's {block.size} coordinates")
        acts = self._activations()  # first: the base forward's checks may demote layers
        plan = self._plan(block) if acts is not None else None
        if plan is not None:
            self.stats["fast_calls"] += 1
            self.stats["fast_candidates"] += p * m
            return self._fast(block, plan, coord_offset, delta_z, acts)
        self.stats["declined_calls"] += 1
        self.stats["declined_candidates"] += p * m
        return self._population(self._block_population(block, coord_offset, delta_z))

    # --------------------------------------------------------------------------- model checks
    def _check_static(self) -> str | None:
        """Why the model cannot take the fast path at all (``None``: it can), and each layer's kind:
        ``"affine"`` (Linear, LayerNorm, Conv, BatchNorm: its blocks take the fast path),
        ``"rowwise"`` (may follow a perturbed layer) or ``"opaque"`` (may only precede one; its own
        blocks are declined)."""
        if self.x.ndim < 2:
            return "x has no batch dimension"
        owned: dict[int, int] = {}
        self._kinds = [self._static_kind(layer) for layer in self.layers]
        for li, layer in enumerate(self.layers):
            for q in layer.parameters(recurse=True):
                if id(q) in owned and owned[id(q)] != li:
                    owned[id(q)] = -1  # tied: used by two layers
                else:
                    owned.setdefault(id(q), li)
        n_layer_params = len({id(q) for layer in self.layers for q in layer.parameters()})
        if n_layer_params != len({id(q) for q in self.model.parameters()}):
            return "the model has parameters outside its layer stack"
        if "affine" not in self._kinds:
            return "no affine layer (Linear, LayerNorm, Conv, BatchNorm) in the stack"
        self._owner = owned
        return None

    def _static_kind(self, layer: nn.Module) -> str:
        # exact types: a subclass may override forward (e.g. a quantised Linear)
        kind = type(layer)
        if _has_hooks(layer):
            return "opaque"
        if kind in (nn.Linear, nn.LayerNorm):
            return "affine"
        if kind in _CONV_MODULES:
            return "affine" if layer.groups == 1 else "opaque"
        if kind in (nn.Flatten, nn.Unflatten, nn.Dropout) + ROWWISE_MODULES + _DIM_MODULES + _POOLING_MODULES:
            return "rowwise" if not any(True for _ in layer.parameters()) else "opaque"
        if kind in _BATCHNORM_MODULES:
            return "affine"  # in eval mode with running statistics (checked per forward)
        if kind in self._rowwise or getattr(kind, "polystep_rowwise", False) is True:
            return "rowwise"  # declared: parameters allowed, used as they are
        return "opaque"

    def _check_dynamic(self, acts: list[Tensor]) -> str | None:
        """Checks of the base forward.  Every layer must keep dimension 0 as the batch and nothing may
        be random (else no fast path at all); a row-wise layer that acts along the batch here is
        demoted to ``"opaque"`` (the blocks before it are then declined)."""
        batch = self.x.shape[0]
        for li, (layer, a_in, a_out) in enumerate(zip(self.layers, acts[:-1], acts[1:])):
            name = type(layer).__name__
            if a_out.ndim < 1 or a_out.shape[0] != batch:
                return f"layer {li} ({name}) changes the batch dimension"
            if isinstance(layer, nn.LayerNorm) and a_in.ndim <= len(layer.normalized_shape):
                return f"layer {li} (LayerNorm) normalises over the batch dimension"
            if isinstance(layer, nn.Dropout) and layer.training and layer.p > 0:
                return f"layer {li} (Dropout) is random in training mode"
            mixes = False
            if type(layer) in _BATCHNORM_MODULES:  # batch statistics in training mode
                mixes = layer.training or not layer.track_running_stats
            elif isinstance(layer, nn.Flatten):
                mixes = (layer.start_dim % a_in.ndim if a_in.ndim else 0) == 0
            elif isinstance(layer, nn.Unflatten):
                mixes = (layer.dim % a_in.ndim if isinstance(layer.dim, int) else None) in (0, None)
            elif isinstance(layer, _DIM_MODULES):
                dim = layer.dim
                if dim is None:  # torch's implicit softmax dimension
                    dim = 0 if a_in.ndim in (0, 1, 3) else 1
                mixes = dim % a_in.ndim == 0
            if mixes and self._kinds[li] in ("rowwise", "affine"):
                self._kinds[li] = "opaque"
                self.demoted[li] = f"layer {li} ({name}) acts along the batch dimension"
        return None

    def _activations(self) -> list[Tensor] | None:
        """``[x, a_1, ..., a_L]`` for the current parameters (cached while no parameter changes)."""
        if self.unsupported is not None:
            return None
        key = tuple((id(q), q.data_ptr(), q._version) for layer in self.layers
                    for q in layer.parameters()) + tuple(layer.training for layer in self.layers)
        if key != self._key:
            acts = [self.x]
            with torch.no_grad():
                for layer in self.layers:
                    acts.append(layer(acts[-1]))
            before = list(self._kinds)
            self._kinds = [self._static_kind(layer) for layer in self.layers]
            self.demoted = {}
            reason = self._check_dynamic(acts)
            if self._kinds != before:  # e.g. a BatchNorm switched to eval mode: plan again
                self._plans.clear()
                self.declined.clear()
            if reason is not None:
                self.unsupported = reason
                return None
            self._key, self._acts = key, acts
        return self._acts

    # ------------------------------------------------------------------------------- planning
    def _target_index(self, name: str) -> int:
        """The optimizer's parameter index of a block target (``PolyStep`` names them ``"0"``,
        ``"1"``, ...; a model parameter name is accepted too)."""
        if name.isdigit() and int(name) < len(self.params):
            return int(name)
        if name in self._by_name:
            return self._by_name[name]
        raise ValueError(f"block target {name!r} is neither an index into the {len(self.params)} "
                         "parameters nor the name of one of them")

    def _plan(self, block) -> _Plan | None:
        key = (block.start, block.stop, block.targets, id(block.basis))
        if key not in self._plans:
            plan, reason = self._make_plan(block)
            self._plans[key] = plan
            if plan is None:
                self.declined[(block.start, block.stop)] = reason
        return self._plans[key]

    def _make_plan(self, block) -> tuple[_Plan | None, str]:
        if self.unsupported is not None:
            return None, f"model not supported: {self.unsupported}"
        parts, layers = [], set()
        for t in block.targets:
            ti = self._target_index(t.name)
            q = self.params[ti]
            li = self._owner.get(id(q), -1)
            if li < 0:
                return None, f"parameter {self.parameter_names[ti]!r} is shared by several layers"
            layer = self.layers[li]
            role = "weight" if q is getattr(layer, "weight", None) else \
                "bias" if q is getattr(layer, "bias", None) else None
            if role is None or self._kinds[li] != "affine":
                return None, (f"parameter {self.parameter_names[ti]!r} of layer {li} "
                              f"({type(layer).__name__}) has no linear response")
            layers.add(li)
            parts.append(_Part(ti, t.offset, t.numel, role))
        if len(layers) != 1:
            return None, f"the block spans {len(layers)} layers (output not linear in its coordinates)"
        li = layers.pop()
        for later in range(li + 1, len(self.layers)):
            if self._kinds[later] == "opaque":
                return None, (f"layer {later} ({type(self.layers[later]).__name__}) after the perturbed "
                              f"layer {li} is not known to act on every row alone")
        return _Plan(li, tuple(parts)), ""

    # ------------------------------------------------------------------------------- fast path
    @staticmethod
    def _kronecker_responses(layer: nn.Module, a_in: Tensor, n_rows: int, basis: KroneckerBasis,
                             coords: slice) -> Tensor:
        """``U_k`` for Kronecker rows ``B_k = a_i b_j^T`` of a weight ``[d_out, d_in]``: a Linear
        layer's is ``(x b_j) a_i^T`` (one ``[N, d_in] x [d_in, K]`` matmul and an outer product), a
        convolution's is ``a_i (x) conv(x, b_j)`` (``K`` single-output-channel filters)."""
        left, right = basis.factors(coords)
        left, right = left.to(a_in.dtype), right.to(a_in.dtype)
        if isinstance(layer, nn.Linear):
            xb = a_in.reshape(n_rows, layer.in_features) @ right.T  # [N, K]
            return xb.T[:, :, None] * left[:, None, :]  # [K, N, d_out]
        filters = right.reshape(-1, *layer.weight.shape[1:])  # [K, C_in, *kernel]
        resp = layer._conv_forward(a_in, filters, None).transpose(0, 1)  # [K, N, *spatial]
        return left.reshape(*left.shape, *([1] * (resp.ndim - 2)))[:, None] * resp[:, :, None]

    @staticmethod
    def _conv_responses(layer: nn.Module, part: _Part, a_in: Tensor, rows: Tensor | None,
                        idx: Tensor | None, out_shape: tuple[int, ...]) -> Tensor:
        """``U [K, N, C_out, *spatial]`` of a convolution: ``conv(a, B_k)`` for the weight (all ``K``
        filters in one convolution with ``K C_out`` output channels), ``B_k`` broadcast over the
        positions for the bias; an identity block's coordinates become unit rows."""
        if rows is None:
            rows = Fn.one_hot(idx.clamp_min(0), part.numel).to(a_in.dtype) * (idx >= 0)[:, None]
        k, c_out = rows.shape[0], layer.out_channels
        if part.role == "weight":
            out = layer._conv_forward(a_in, rows.reshape(k * c_out, *layer.weight.shape[1:]), None)
            return out.reshape(out.shape[0], k, c_out, *out.shape[2:]).transpose(0, 1)
        spatial = out_shape[2:]
        return rows.reshape(k, 1, c_out, *([1] * len(spatial))).expand(k, *out_shape)

    @staticmethod
    def _batchnorm_responses(layer: nn.Module, part: _Part, a_in: Tensor, rows: Tensor | None,
                             idx: Tensor | None) -> Tensor:
        """``U [K, N, C, *spatial]`` of an eval-mode BatchNorm ``y = xhat w + b``,
        ``xhat = (x - mu) / sqrt(var + eps)`` (running statistics): ``xhat B_k`` for the weight,
        ``B_k`` for the bias, both per channel."""
        if rows is None:
            rows = Fn.one_hot(idx.clamp_min(0), part.numel).to(a_in.dtype) * (idx >= 0)[:, None]
        k, c = rows.shape
        shape = (1, c) + (1,) * (a_in.ndim - 2)
        per_channel = rows.reshape(k, *shape)  # [K, 1, C, 1, ...]
        if part.role == "bias":
            return per_channel.expand(k, *a_in.shape)
        xhat = (a_in - layer.running_mean.reshape(shape)) * \
            torch.rsqrt(layer.running_var.reshape(shape) + layer.eps)
        return per_channel * xhat[None]

    def _responses(self, layer: nn.Module, part: _Part, a_in: Tensor, n_rows: int,
                   n_out: int, rows: Tensor | None, idx: Tensor | None,
                   out_shape: tuple[int, ...] = ()) -> Tensor:
        """``U [K, N, n_out]``: the layer output's change per unit of each of the ``K`` coordinates,
        given dense basis rows ``rows [K, numel]`` of this target or, for an identity block,
        the target-local coordinate indices ``idx [K]`` (``-1``: not in this target)."""
        if isinstance(layer, _CONV_MODULES):
            return self._conv_responses(layer, part, a_in, rows, idx, out_shape)
        if isinstance(layer, _BATCHNORM_MODULES):
            return self._batchnorm_responses(layer, part, a_in, rows, idx)
        if isinstance(layer, nn.Linear) and part.role == "weight":
            a2 = a_in.reshape(n_rows, layer.in_features)
            if rows is not None:  # U_k = a B_k^T, B_k = rows[k] as [d_out, d_in]
                return torch.matmul(a2, rows.reshape(-1, layer.out_features,
                                                     layer.in_features).transpose(1, 2))
            ks = (idx >= 0).nonzero().flatten()
            local = idx[ks]
            u = a2.new_zeros(idx.numel(), n_rows, n_out)
            u[ks[:, None], torch.arange(n_rows, device=u.device)[None, :],
              (local // layer.in_features)[:, None]] = a2[:, local % layer.in_features].T
            return u
        if isinstance(layer, nn.LayerNorm) and part.role == "weight":
            xhat = Fn.layer_norm(a_in, layer.normalized_shape, None, None, layer.eps)
            xhat = xhat.reshape(n_rows, n_out)
            if rows is not None:
                return xhat[None] * rows[:, None, :]
            ks = (idx >= 0).nonzero().flatten()
            local = idx[ks]
            u = xhat.new_zeros(idx.numel(), n_rows, n_out)
            u[ks[:, None], torch.arange(n_rows, device=u.device)[None, :], local[:, None]] = \
                xhat[:, local].T
            return u
        # bias of a Linear or a LayerNorm: the output moves by the coordinates themselves
        if rows is not None:
            return rows[:, None, :].expand(-1, n_rows, -1)
        ks = (idx >= 0).nonzero().flatten()
        u = a_in.new_zeros(idx.numel(), n_rows, n_out)
        u[ks, :, idx[ks]] = 1.0
        return u

    def _fast(self, block, plan: _Plan, coord_offset: int, delta_z: Tensor,
              acts: list[Tensor]) -> Tensor:
        """Sub-chunks of particles whose perturbed outputs fit in ``sub_chunk_bytes``."""
        p, m, d_p = delta_z.shape
        widest = max(a.numel() * a.element_size() for a in acts[plan.layer + 1:])
        per_particle = m * widest  # bytes of the widest activation after the perturbed layer
        step = p if self.sub_chunk_bytes is None else \
            max(1, min(p, self.sub_chunk_bytes // max(1, per_particle)))
        if step >= p:
            return self._fast_chunk(block, plan, coord_offset, delta_z, acts)
        return torch.cat([self._fast_chunk(block, plan, coord_offset + lo * d_p,
                                           delta_z[lo:lo + step], acts)
                          for lo in range(0, p, step)])

    def _fast_chunk(self, block, plan: _Plan, coord_offset: int, delta_z: Tensor,
                    acts: list[Tensor]) -> Tensor:
        p, m, d_p = delta_z.shape
        k = p * d_p
        layer = self.layers[plan.layer]
        a_in, base_out = acts[plan.layer], acts[plan.layer + 1]
        batch = base_out.shape[0]
        if isinstance(layer, nn.Linear):
            n_out = layer.out_features
        elif isinstance(layer, _CONV_MODULES + _BATCHNORM_MODULES):
            n_out = base_out[0].numel()  # one sample's [C, *spatial]
        else:
            n_out = math.prod(layer.normalized_shape)
        n_rows = base_out.numel() // n_out
        u = None
        for part in plan.parts:
            if isinstance(block.basis, KroneckerBasis) and part.role == "weight" \
                    and part.numel == block.out_numel and isinstance(layer, (nn.Linear,) + _CONV_MODULES):
                r = self._kronecker_responses(layer, a_in, n_rows, block.basis,
                                              slice(coord_offset, coord_offset + k))
                u = r if u is None else u + r
                continue
            if block.basis is not None:
                rows = block.basis[coord_offset:coord_offset + k, part.offset:part.offset + part.numel]
                rows, idx = rows.to(base_out.dtype), None
            else:
                coords = torch.arange(coord_offset, coord_offset + k, device=base_out.device)
                inside = (coords >= part.offset) & (coords < part.offset + part.numel)
                rows, idx = None, torch.where(inside, coords - part.offset, -1)
            r = self._responses(layer, part, a_in, n_rows, n_out, rows, idx, tuple(base_out.shape))
            u = r if u is None else u + r
        # out[i, j] = base_out + sum_k delta_z[i, j, k] U[i, k]     -> [p, m, N * n_out]
        u = u.reshape(p, d_p, n_rows * n_out)
        out = torch.baddbmm(base_out.reshape(1, 1, -1), delta_z.to(base_out.dtype), u)
        h = out.reshape(p * m * batch, *base_out.shape[1:])
        for later in self.layers[plan.layer + 1:]:
            h = later(h)
        return self._loss_batched(h.reshape(p * m, batch, *h.shape[1:]))

    # ------------------------------------------------------------------------------- fallback
    def _block_population(self, block, coord_offset: int, delta_z: Tensor) -> list[Tensor]:
        """The chunk's candidates as a population (as ``PolyStep._population`` builds it)."""
        p, m, d_p = delta_z.shape
        c = p * m
        population = [q.detach()[None].expand(c, *q.shape) for q in self.params]
        index = [self._target_index(t.name) for t in block.targets]
        current = torch.cat([self.params[i].detach().reshape(-1) for i in index])
        if block.basis is not None:
            rows = block.basis[coord_offset:coord_offset + p * d_p].reshape(p, d_p, -1)
            flat = torch.baddbmm(current.expand(p, m, -1), delta_z, rows).reshape(c, -1)
        else:
            flat = current.repeat(c, 1)
            cols = torch.arange(coord_offset, coord_offset + p * d_p, device=flat.device)
            cols = cols.reshape(p, 1, d_p).expand(p, m, d_p).reshape(c, d_p)
            flat.scatter_add_(1, cols, delta_z.reshape(c, d_p).to(flat.dtype))
        for i, t in zip(index, block.targets):
            population[i] = flat[:, t.offset:t.offset + t.numel].reshape(c, *t.shape)
        return population


def fast_population_closure(model: nn.Module, loss_fn: Callable[[Tensor, Tensor], Tensor],
                            x: Tensor, y: Tensor, params: Sequence[Tensor] | None = None, *,
                            rowwise: Sequence[type[nn.Module]] = (),
                            sub_chunk_bytes: int | None | str = "auto") -> FastPopulationClosure:
    """Like :func:`polystep.evaluation.population_closure`, plus the structured ``block_losses``
    fast path for layer stacks (module docstring).

    Args:
        model, loss_fn, x, y, params: as for :func:`polystep.evaluation.population_closure`.
        rowwise: extra module types that act on every row of dimension 0 alone (they may have
            parameters; those parameters' blocks take the generic path).
        sub_chunk_bytes: process a chunk's perturbed layer outputs in pieces of at most this many
            bytes (``None``: the whole chunk at once; ``"auto"``: 8 MiB on CPU, ``None`` elsewhere).
            Changes speed only, not the losses.
    """
    return FastPopulationClosure(model, loss_fn, x, y, params, rowwise=rowwise,
                                 sub_chunk_bytes=sub_chunk_bytes)
