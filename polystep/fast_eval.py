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
  with the population closure (with a shared prefix where it can: "populations with a shared
  prefix" below): a block whose targets lie in several layers (the ``random``
  subspace: one global block spanning all tensors; the output is then not linear in the block's
  coordinates; a ``random`` block whose targets are all in one layer is handled by the fast path),
  a block of a row-wise or opaque layer (except a hard MoE's expert Linear layers, below), a block
  followed by an opaque layer, a parameter used by two layers (tied weights).

Piecewise-constant layers (thresholds, ``floor``, ``round``, ``argmax``) after a perturbed layer see
the same pre-activations as in the naive evaluation up to floating-point rounding (the fast path sums
``base + sum_k delta_k U_k`` instead of forming ``W + Delta W``): a pre-activation within a few ulps of
a jump can land on the other side, in either evaluation.

Kernels for the non-differentiable blocks of :mod:`polystep.nondiff` (the Table T1 networks,
paper/polystep_reconstruction.md §5.2; exact; every one checks that it applies and otherwise runs
the module):

* **hard LIF, constant current** (``LIF(steps=T)``, the SNN's first spiking layer) -- with a
  constant current ``I`` and reset to zero the spike train is periodic *in floating point*: after a
  spike the membrane is ``+-0`` and retraces bit for bit the sequence from ``m_0 = 0``.  A neuron
  spikes at steps ``n, 2n, ...`` with ``n = min{t: I >= c_t}``, where ``c_t`` is the smallest float
  whose reset-free membrane ``m_t = beta m_{t-1} + I`` (rounded as the module rounds it) reaches the
  threshold -- found once per ``(beta, threshold, T, dtype)`` by bisection over the ordered floats
  (``m_t`` is monotone in ``I``).  So ``n - 1 = #{t: I < c_t}`` (``T`` compares instead of the
  ``T``-step loop), the train is a table lookup, and a following ``nn.Linear`` is one GEMM
  ``W S + b`` on the looked-up train ``S [F, R T]``.  When few currents differ from the base's (an
  identity block of the previous layer's bias moves one neuron per coordinate) only the moved
  neurons are updated (on CPU): ``out = out_0 + sum_{k != k_0} W[:, f] (train[k] - train[k_0])^T``.
  Non-finite currents and ``|I| > max / (4 T)`` (``inf * 0`` is NaN, not a reset) run the module;
* **hard LIF on a sequence** (``steps=None``, the output layer) -- the module's arithmetic step by
  step (``m <- beta m + I_t``, ``s = 1[m >= theta]``, ``m <- m (1 - s)``) in place on preallocated
  buffers;
* **hard MoE after the perturbed layer** -- each expert only on the rows the gate routes to it
  (``E`` times fewer expert FLOPs).  The module's ``sum_e onehot_e expert_e(x)`` is
  ``expert_{e*}(x)`` as long as every expert's output is finite (else ``0 * inf`` = NaN), which the
  bound ``||W x + b|| <= ||W||_F ||x|| + ||b||`` (ReLU: ``|relu(v)| <= |v|``) on ``max_r ||x_r||``
  guarantees, else the module runs;
* **blocks of a hard MoE's expert Linear** (``HardMoE.experts[e]``: ``Linear -> ReLU -> Linear``)
  -- the gate is not moved, so the routing is the base's and only the ``B_e`` rows routed to ``e``
  change: their expert Linear output is ``base + sum_k delta_k U_k`` (responses on the routed rows),
  the rest of the expert and the layers after the MoE run on ``p m B_e`` rows, every other row keeps
  the base output.  The moved expert must stay finite on the rows routed elsewhere: the same bound
  with ``||Delta theta||_F <= ||delta||_1 max_c ||B_c||`` is checked per chunk (generic path if
  not).  The gate's blocks are declined;
* **populations with a shared prefix** -- a declined block, or a population handed to
  ``closure(thetas)`` (PolyStep's particles straddling two blocks), whose moved tensors belong to
  layers ``>= l`` (the others are the current parameters, passed as stride-0 views): ``a_l`` is
  shared, each moved layer runs per candidate (``vmap`` of ``functional_call``, as
  :func:`population_closure` does for the whole model) and the others on the folded candidates with
  the kernels above.

``closure.stats`` counts the calls and candidates of each path (``moe_expert_*``,
``lif_constant_calls``, ``lif_sparse_calls``, ``lif_sequence_calls``, ``moe_routed_calls``,
``population_suffix_calls``; ``moe_guard_fallbacks``: expert chunks sent to the generic path by
the bound), ``closure.declined`` lists the declined blocks with the reason.  Device and dtype
follow ``x`` and the model; the computation is deterministic (no atomics, no randomness).  On CPU a chunk is processed in sub-chunks whose
perturbed activations take about 8 MiB (``sub_chunk_bytes``): cache-resident buffers, no page
faults of fresh large allocations; this changes speed only.
"""

from __future__ import annotations

import functools
import math
import weakref
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as Fn
from torch import Tensor, nn
from torch.func import functional_call

from ._validation import check_int
from .evaluation import parameter_names, population_closure
from .nondiff import LIF, HardMoE
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


# ------------------------------------------------------------------- hard-LIF and hard-MoE kernels
#: dtypes of the LIF kernels (the thresholds below are computed in the input's own arithmetic)
_KERNEL_DTYPES = (torch.float32, torch.float64)


def _is_hard_lif(layer: nn.Module) -> bool:
    return type(layer) is LIF and layer.hard and not _has_hooks(layer)


def _float_from_keys(keys: Tensor, dtype: torch.dtype) -> Tensor:
    """The floats of ``dtype`` with the given order-preserving integer keys (``key = bits`` for
    ``+x``, ``-(bits of |x|)`` for ``-x``; ``int64`` keys)."""
    width = torch.finfo(dtype).bits
    bits = torch.where(keys >= 0, keys, -keys - 2 ** (width - 1))
    return bits.to(torch.int32).view(dtype) if width == 32 else bits.view(dtype)


@functools.lru_cache(maxsize=64)
def _lif_first_spike_thresholds(beta: float, threshold: float, steps: int,
                                dtype: torch.dtype) -> tuple[float, ...] | None:
    """``c_1 >= ... >= c_T``: ``c_t`` is the smallest ``I`` of ``dtype`` whose reset-free membrane
    ``m_0 = 0, m_s = beta m_{s-1} + I`` (rounded in ``dtype`` exactly as :class:`LIF` rounds it)
    has ``m_t >= threshold`` (``+inf`` when no finite ``I`` reaches it).  ``m_t`` is nondecreasing
    in ``I`` (``beta >= 0`` and rounding is monotone), so ``m_t(I) >= threshold <=> I >= c_t``,
    found by bisection over the ordered floats.  ``None`` if the ``c_t`` are not nonincreasing."""
    int_type = torch.int32 if dtype == torch.float32 else torch.int64
    kmax = int(torch.tensor(torch.finfo(dtype).max, dtype=dtype).view(int_type))
    lo = torch.full((steps,), -kmax, dtype=torch.int64)
    hi = torch.full((steps,), kmax, dtype=torch.int64)
    diag = torch.arange(steps)

    def reaches(keys: Tensor) -> Tensor:  # [T] bool: m_t(I_t) >= threshold for I_t = keys[t]
        current = _float_from_keys(keys, dtype)
        mem, hit = torch.zeros_like(current), torch.zeros(steps, dtype=torch.bool)
        for t in range(steps):
            mem = beta * mem + current
            hit[t] = (mem >= threshold)[t]
        return hit

    never = ~reaches(hi)
    while bool((lo < hi).any()):
        mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # floor((lo + hi) / 2) without overflow
        ok = reaches(mid)
        hi, lo = torch.where(ok, mid, hi), torch.where(ok, lo, torch.minimum(mid + 1, hi))
    c = torch.where(never, torch.inf, _float_from_keys(hi, dtype)[diag].to(torch.float64))
    if not bool((c[1:] <= c[:-1]).all()):
        return None
    return tuple(c.tolist())


@functools.lru_cache(maxsize=64)
def _lif_tables(steps: int, dtype: torch.dtype, device: torch.device) -> tuple[Tensor, Tensor]:
    """Spike train and spike count of a neuron whose first spike is at step ``k + 1`` (row ``k``;
    row ``T``: no spike): ``train[k, t] = 1[(t + 1) mod (k + 1) = 0]``, ``count[k] = floor(T / (k + 1))``."""
    train = torch.zeros(steps + 1, steps, dtype=dtype)
    for k in range(steps):
        train[k, k::k + 1] = 1.0
    return train.to(device), train.sum(dim=1, keepdim=True).to(device)


def _lif_first_spike(layer: nn.Module, current: Tensor) -> Tensor | None:
    """``k = n - 1`` per neuron (``int64``, ``T``: no spike in ``T`` steps) for a hard LIF with the
    constant input ``current``, or ``None`` where the kernel does not apply (dtype, non-finite or
    huge currents, non-monotone thresholds).

    With a constant current and reset to zero the spike train is periodic *in floating point*:
    the membrane after a spike is ``+-0``, and from there it retraces, bit for bit, the sequence
    from ``m_0 = 0`` (``beta * (+-0) + I = I``).  So a neuron spikes at steps ``n, 2n, ...``, ``n =
    min{t: I >= c_t}`` (:func:`_lif_first_spike_thresholds`), ``n - 1 = #{t: I < c_t}``.  Currents
    with ``|I| > max / (4 T)`` (the membrane could overflow: ``inf * 0`` is NaN, not a reset) and
    non-finite ones take the module's own loop."""
    if current.dtype not in _KERNEL_DTYPES or current.numel() == 0:
        return None
    c = _lif_first_spike_thresholds(layer.beta, layer.threshold, layer.steps, current.dtype)
    if c is None or not bool(current.abs().amax() <= torch.finfo(current.dtype).max / (4 * layer.steps)):
        return None
    below = torch.empty(current.shape, dtype=torch.bool, device=current.device)
    never = sum(1 for c_t in c if c_t == math.inf)  # the first steps no finite current reaches
    k = torch.full(current.shape, never, device=current.device,
                   dtype=torch.uint8 if layer.steps <= 255 else torch.int64)
    for c_t in c[never:]:
        below = torch.lt(current, c_t, out=below)
        k += below.view(torch.uint8) if k.dtype == torch.uint8 else below
    return k.long()


def _lif_constant(layer: nn.Module, current: Tensor, linear: nn.Module | None) -> Tensor | None:
    """A hard LIF with ``steps`` (constant current ``[R, ...]``) from the first-spike steps: the
    spike train ``[R, T, ...]`` or count ``[R, ...]``, or -- ``linear`` given, ``current`` ``[R, F]``
    -- ``linear`` applied to the train, ``[R, T, O]``: ``Y = W S + b`` with ``S [F, R T]`` the train
    gathered from the table in the layout of one GEMM (no ``[R, T, F]`` copy).  ``None``: the
    kernel does not apply (the caller runs the module)."""
    k = _lif_first_spike(layer, current)
    if k is None:
        return None
    train, count = _lif_tables(layer.steps, current.dtype, current.device)
    if layer.count:
        return Fn.embedding(k, count).squeeze(-1)
    if linear is None:
        return Fn.embedding(k, train).movedim(-1, 1)
    n_rows, feats = k.shape
    spikes = Fn.embedding(k.T.contiguous(), train).reshape(feats, n_rows * layer.steps)
    weight = linear.weight
    out = weight @ spikes if linear.bias is None else torch.addmm(linear.bias[:, None], weight, spikes)
    return out.reshape(-1, n_rows, layer.steps).permute(1, 2, 0)


def _lif_sequence(layer: nn.Module, seq: Tensor) -> Tensor | None:
    """A hard LIF on a sequence ``[R, T, ...]`` (``steps=None``), in place on preallocated
    buffers, the same arithmetic as :class:`LIF` step by step: ``m <- beta m + I_t`` (two roundings),
    ``s_t = 1[m >= theta]``, ``m <- m * 1[m < theta]`` -- the module's ``m (1 - s_t)``: the same
    factor ``1.0`` or ``0.0`` except at ``m = NaN``, where both products are NaN; the count
    ``sum_t s_t`` is exact."""
    if seq.dtype not in _KERNEL_DTYPES or seq.ndim < 3:
        return None
    seq = seq.contiguous()
    shape = (seq.shape[0],) + tuple(seq.shape[2:])
    mem = torch.zeros(shape, dtype=seq.dtype, device=seq.device)
    spike, keep = torch.empty_like(mem), torch.empty_like(mem)
    out = torch.zeros_like(mem) if layer.count else torch.empty_like(seq)
    for t in range(seq.shape[1]):
        mem.mul_(layer.beta).add_(seq[:, t])
        if layer.count:
            out.add_(torch.ge(mem, layer.threshold, out=spike))
        else:
            torch.ge(mem, layer.threshold, out=out[:, t])
        mem.mul_(torch.lt(mem, layer.threshold, out=keep))
    return out


def _expert_chain(moe: nn.Module) -> list[list[nn.Module]] | None:
    """The layers of each expert of a hard :class:`HardMoE` whose experts are chains of exact
    ``nn.Linear`` / ``nn.ReLU`` (the kernels below need both: the Linear responses and the bound of
    :func:`_chain_bound`), or ``None``."""
    if type(moe) is not HardMoE or not moe.hard or _has_hooks(moe) or type(moe.gate) is not nn.Linear \
            or _has_hooks(moe.gate) or _has_hooks(moe.experts):
        return None
    chains = []
    for expert in moe.experts:
        chain = _flatten_layers(expert)
        if any(type(m) not in (nn.Linear, nn.ReLU) or _has_hooks(m) for m in chain) \
                or not any(type(m) is nn.Linear for m in chain):
            return None
        chains.append(chain)
    return chains


def _chain_bound(chain: Sequence[nn.Module], in_norm: float, extra: dict[int, float] | None = None) -> float:
    """An upper bound of ``||expert(x)||_2`` over inputs with ``||x||_2 <= in_norm``:
    ``||W x + b|| <= ||W||_F ||x|| + ||b||`` per Linear, ``|relu(v)| <= |v|``; ``extra[i]`` is added
    to the norm of the perturbed tensor ``i`` (``2 j`` weight, ``2 j + 1`` bias of layer ``j``)."""
    extra = extra or {}
    bound = in_norm
    for j, m in enumerate(chain):
        if type(m) is nn.Linear:
            w = float(torch.linalg.vector_norm(m.weight.detach(), dtype=torch.float64))
            b = 0.0 if m.bias is None else float(torch.linalg.vector_norm(m.bias.detach(), dtype=torch.float64))
            bound = (w + extra.get(2 * j, 0.0)) * bound + b + extra.get(2 * j + 1, 0.0)
    return bound


def _bound_is_safe(bound: float, dtype: torch.dtype) -> bool:
    """No value (and no partial sum) below ``bound`` overflows ``dtype``."""
    return math.isfinite(bound) and bound < torch.finfo(dtype).max / 16


def _moe_routed(moe: nn.Module, x: Tensor) -> Tensor | None:
    """A hard MoE evaluating each expert on the rows routed to it only (``E`` times fewer expert
    FLOPs).  The module's ``sum_e onehot_e expert_e(x)`` equals ``expert_{e*}(x)`` when every
    expert's output is finite (else ``0 * inf`` makes the row NaN): guaranteed by
    :func:`_chain_bound` on ``max_r ||x_r||``; otherwise (and for inputs that are not ``[R, dim]``)
    ``None`` and the caller runs the module."""
    chains = _expert_chain(moe)
    if chains is None or x.ndim != 2 or x.dtype not in _KERNEL_DTYPES or x.shape[0] == 0:
        return None
    in_norm = float(torch.linalg.vector_norm(x, dim=1, dtype=torch.float64).amax())
    if not all(_bound_is_safe(_chain_bound(chain, in_norm), x.dtype) for chain in chains):
        return None
    route = moe.gate(x).argmax(dim=-1)
    out = None
    for e, expert in enumerate(moe.experts):
        rows = (route == e).nonzero().flatten()
        if rows.numel():
            y = expert(x.index_select(0, rows))
            if out is None:
                out = y.new_empty(x.shape[0], *y.shape[1:])
            out.index_copy_(0, rows, y)
    return out


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
    #: ``(expert, sub-layer)`` for a block of a hard MoE's expert Linear (``layer``: the MoE)
    expert: tuple[int, int] | None = None


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
        self._kernel_cache: dict = {}  # per base forward: MoE routing, base first-spike steps
        self._row_norms: dict[tuple, tuple[weakref.ref, float]] = {}
        self.stats = {"fast_calls": 0, "fast_candidates": 0, "declined_calls": 0,
                      "declined_candidates": 0, "population_calls": 0, "population_candidates": 0,
                      "moe_expert_calls": 0, "moe_expert_candidates": 0, "moe_guard_fallbacks": 0,
                      "lif_constant_calls": 0, "lif_sequence_calls": 0, "moe_routed_calls": 0,
                      "population_suffix_calls": 0, "lif_sparse_calls": 0}

    # ------------------------------------------------------------------------------ interfaces
    def __call__(self, thetas: Sequence[Tensor]) -> Tensor:
        self.stats["population_calls"] += 1
        self.stats["population_candidates"] += int(thetas[0].shape[0]) if len(thetas) else 0
        if len(thetas) == len(self.params) and len(thetas):
            with torch.no_grad():
                losses = self._population_suffix(thetas)
            if losses is not None:
                self.stats["population_suffix_calls"] += 1
                return losses
        return self._population(thetas)

    @staticmethod
    def _is_current(theta: Tensor, q: Tensor) -> bool:
        """``theta`` is ``q`` broadcast over the candidates (a stride-0 view of ``q`` itself, as
        :meth:`polystep.optim.PolyStep._population` passes the tensors a chunk does not move)."""
        return (theta.ndim == q.ndim + 1 and theta.dtype == q.dtype and theta.shape[1:] == q.shape
                and theta.stride(0) == 0 and theta.stride()[1:] == q.stride()
                and theta.data_ptr() == q.data_ptr())

    def _population_suffix(self, thetas: Sequence[Tensor]) -> Tensor | None:
        """A population in which only the tensors of layers ``>= first`` differ from the current
        parameters (e.g. a particle straddling two blocks): the prefix activation ``a_first`` is
        shared, a layer with moved tensors runs per candidate (``vmap`` of ``functional_call``, as
        :func:`population_closure` runs the whole model), the others on the candidates folded into
        the batch (with the kernels of :meth:`_run_suffix`).  ``None``: not applicable."""
        acts = self._activations()
        if acts is None:
            return None
        moved: dict[int, dict[str, Tensor]] = {}
        for theta, q in zip(thetas, self.params):
            if not self._is_current(theta, q):
                li = self._owner.get(id(q), -1)
                if li < 0:
                    return None
                moved.setdefault(li, {})[id(q)] = theta
        n = int(thetas[0].shape[0]) if thetas[0].ndim else 0
        if n == 0:
            return None
        if not moved:
            return self._loss_batched(acts[-1].expand(n, *acts[-1].shape))
        first = min(moved)
        if any(self._kinds[li] == "opaque" for li in range(first, len(self.layers))):
            return None
        batch = acts[first].shape[0]
        h, i = acts[first], first
        while i < len(self.layers):
            if i in moved:
                layer = self.layers[i]
                names = {id(q): name for name, q in layer.named_parameters()}
                params = {names[key]: theta for key, theta in moved[i].items()}
                shared = i == first  # the same input for every candidate
                h = h if shared else h.reshape(n, batch, *h.shape[1:])
                run = torch.vmap(lambda ps, a, layer=layer: functional_call(layer, ps, (a,), strict=False),
                                 in_dims=(0, None if shared else 0))
                h = run(params, h)
                h, i = h.reshape(n * batch, *h.shape[2:]), i + 1
            else:
                h, i = self._run_layers(i, h, moved)
        return self._loss_batched(h.reshape(n, batch, *h.shape[1:]))

    @torch.no_grad()
    def block_losses(self, block, coord_offset: int, delta_z: Tensor) -> Tensor:
        """Losses ``[p * m]`` of the candidates ``theta + delta_z[i, j] @ rows_i`` of ``block``."""
        p, m, d_p = delta_z.shape
        if coord_offset < 0 or coord_offset + p * d_p > block.size:
            raise ValueError(f"particles [{coord_offset}, {coord_offset + p * d_p}) do not lie in "
                             f"the block's {block.size} coordinates")
        acts = self._activations()  # first: the base forward's checks may demote layers
        plan = self._plan(block) if acts is not None else None
        if plan is not None and plan.expert is not None:
            losses = self._moe_expert_losses(block, plan, coord_offset, delta_z, acts)
            if losses is not None:
                self.stats["moe_expert_calls"] += 1
                self.stats["moe_expert_candidates"] += p * m
                return losses
            self.stats["moe_guard_fallbacks"] += 1
        elif plan is not None:
            self.stats["fast_calls"] += 1
            self.stats["fast_candidates"] += p * m
            return self._fast(block, plan, coord_offset, delta_z, acts)
        self.stats["declined_calls"] += 1
        self.stats["declined_candidates"] += p * m
        population = self._block_population(block, coord_offset, delta_z)
        losses = self._population_suffix(population)
        if losses is not None:
            self.stats["population_suffix_calls"] += 1
            return losses
        return self._population(population)

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
            self._kernel_cache.clear()
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
        parts, layers, experts = [], set(), set()
        for t in block.targets:
            ti = self._target_index(t.name)
            q = self.params[ti]
            li = self._owner.get(id(q), -1)
            if li < 0:
                return None, f"parameter {self.parameter_names[ti]!r} is shared by several layers"
            layer = self.layers[li]
            role = "weight" if q is getattr(layer, "weight", None) else \
                "bias" if q is getattr(layer, "bias", None) else None
            where = self._expert_location(li, q) if self._kinds[li] == "rowwise" else None
            if where is not None:
                experts.add(where[:2])
                role = where[2]
            elif role is None or self._kinds[li] != "affine":
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
        if len(experts) > 1:
            return None, f"the block spans {len(experts)} expert layers of layer {li}"
        return _Plan(li, tuple(parts), experts.pop() if experts else None), ""

    def _expert_location(self, li: int, q: Tensor) -> tuple[int, int, str] | None:
        """``(expert, sub-layer, role)`` of ``q`` when it is the weight or bias of an ``nn.Linear``
        inside an expert of a hard :class:`~polystep.nondiff.HardMoE` (layer ``li``) that
        :func:`_expert_chain` accepts; ``None`` otherwise (e.g. the gate)."""
        chains = _expert_chain(self.layers[li])
        for e, chain in enumerate(chains or ()):
            for j, sub in enumerate(chain):
                if type(sub) is nn.Linear and (q is sub.weight or q is sub.bias):
                    return e, j, "weight" if q is sub.weight else "bias"
        return None

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
        u = self._block_responses(block, plan.parts, layer, a_in, base_out, n_rows, n_out, coord_offset, k)
        # out[i, j] = base_out + sum_k delta_z[i, j, k] U[i, k]     -> [p, m, N * n_out]
        u = u.reshape(p, d_p, n_rows * n_out)
        out = torch.baddbmm(base_out.reshape(1, 1, -1), delta_z.to(base_out.dtype), u)
        h, start = out.reshape(p * m * batch, *base_out.shape[1:]), plan.layer + 1
        sparse = self._lif_linear_sparse(start, h, acts, p * m)
        if sparse is not None:
            h, start = sparse, start + 2
        h = self._run_suffix(start, h)
        return self._loss_batched(h.reshape(p * m, batch, *h.shape[1:]))

    def _lif_linear_sparse(self, i: int, current: Tensor, acts: list[Tensor], c: int) -> Tensor | None:
        """``Linear(LIF(current))`` (layers ``i``, ``i + 1``; a hard constant-current LIF) for ``c``
        candidates when few currents differ from the base (e.g. an identity block of the previous
        layer's bias moves one neuron per coordinate): with first-spike steps ``k`` and the base's
        ``k_0``, ``out = out_0 + sum_{(r, f): k != k_0} W[:, f] (train[k_rf] - train[k0_rf])^T``, only the
        neurons whose first spike moved.  ``None`` when it does not apply or more than 1/8 of the
        currents moved (the dense kernel is then cheaper), and on GPUs."""
        if i + 1 >= len(self.layers) or current.ndim != 2 or current.device.type != "cpu":
            return None  # (index_add_ is atomic, i.e. not deterministic, on CUDA)
        lif, linear = self.layers[i], self.layers[i + 1]
        if not (_is_hard_lif(lif) and lif.steps is not None and not lif.count and type(linear) is nn.Linear
                and self._kinds[i + 1] == "affine" and current.shape[1] == linear.in_features):
            return None
        base_current, base_out = acts[i], acts[i + 2]
        if ("lif", i) not in self._kernel_cache:
            self._kernel_cache[("lif", i)] = _lif_first_spike(lif, base_current)
        base_k = self._kernel_cache[("lif", i)]
        batch, feats = base_current.shape
        if base_k is None or current.shape[0] != c * batch:
            return None
        moved = (current.view(c, batch, feats) != base_current).view(-1).nonzero().flatten()
        if moved.numel() * 8 > current.numel():
            return None
        k = _lif_first_spike(lif, current.view(-1)[moved])
        if k is None:
            return None
        row, f = moved // feats, moved % feats
        k0 = base_k.view(-1)[(row % batch) * feats + f]
        keep = (k != k0).nonzero().flatten()
        row, f, k, k0 = row[keep], f[keep], k[keep], k0[keep]
        train, _ = _lif_tables(lif.steps, current.dtype, current.device)
        change = train[k] - train[k0]  # [E, T] in {-1, 0, 1}
        columns = linear.weight.T.index_select(0, f)  # [E, O]
        n_out = linear.out_features
        delta = current.new_zeros(c * batch, lif.steps * n_out)
        delta.index_add_(0, row, (change[:, :, None] * columns[:, None, :]).reshape(-1, lif.steps * n_out))
        self.stats["lif_sparse_calls"] += 1
        return (delta.view(c, batch, -1) + base_out.reshape(1, batch, -1)).view(c * batch, lif.steps, n_out)

    def _block_responses(self, block, parts: Sequence[_Part], layer: nn.Module, a_in: Tensor,
                         base_out: Tensor, n_rows: int, n_out: int, coord_offset: int, k: int) -> Tensor:
        """``U [K, n_rows, n_out]`` of the block's coordinates ``coord_offset .. + k`` (summed over
        its targets in ``layer``)."""
        u = None
        for part in parts:
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
        return u

    def _run_suffix(self, start: int, h: Tensor) -> Tensor:
        """``layers[start:]`` on the candidates folded into the batch, with the exact kernels for
        hard LIF layers (a constant-current LIF and the Linear after it fused) and hard MoEs."""
        i = start
        while i < len(self.layers):
            h, i = self._run_layers(i, h)
        return h

    def _run_layers(self, i: int, h: Tensor, moved: dict | None = None) -> tuple[Tensor, int]:
        """Layer ``i`` (and ``i + 1`` when fused) on the folded candidates: ``(output, next i)``.
        ``moved``: layers whose tensors differ per candidate (never fused into)."""
        layer = self.layers[i]
        nxt = self.layers[i + 1] if i + 1 < len(self.layers) and i + 1 not in (moved or {}) else None
        out, used = None, 1
        if _is_hard_lif(layer) and layer.steps is not None:
            fuse = type(nxt) is nn.Linear and self._kinds[i + 1] == "affine" and not layer.count \
                and h.ndim == 2 and h.shape[1] == nxt.in_features
            out = _lif_constant(layer, h, nxt if fuse else None)
            used = 2 if fuse else 1
            self.stats["lif_constant_calls"] += out is not None
        elif _is_hard_lif(layer):
            out = _lif_sequence(layer, h)
            self.stats["lif_sequence_calls"] += out is not None
        elif type(layer) is HardMoE and self._kinds[i] == "rowwise":
            out = _moe_routed(layer, h)
            self.stats["moe_routed_calls"] += out is not None
        if out is None:
            out, used = layer(h), 1
        return out, i + used

    # -------------------------------------------------------------------------- hard-MoE experts
    def _moe_state(self, li: int, acts: list[Tensor]) -> dict | None:
        """Per base forward: the MoE input ``a``, each row's expert, each expert's routed rows and
        the activations of its layers on them, ``max_r ||a_r||``; ``None`` when an expert's base
        output is not finite somewhere (then ``0 * out`` is not zero: the generic path)."""
        if li not in self._kernel_cache:
            moe, a = self.layers[li], acts[li]
            state = None
            if a.ndim == 2 and a.dtype in _KERNEL_DTYPES and a.shape[0] > 0 \
                    and all(bool(torch.isfinite(e(a)).all()) for e in moe.experts):
                route = moe.gate(a).argmax(dim=-1)
                state = {"rows": [], "acts": [],
                         "in_norm": float(torch.linalg.vector_norm(a, dim=1, dtype=torch.float64).amax())}
                for e, chain in enumerate(_expert_chain(moe)):
                    rows = (route == e).nonzero().flatten()
                    h = [a.index_select(0, rows)]
                    for sub in chain:
                        h.append(sub(h[-1]))
                    state["rows"].append(rows)
                    state["acts"].append(h)
            self._kernel_cache[li] = state
        return self._kernel_cache[li]

    def _max_row_norm(self, block, coord_offset: int, k: int) -> float:
        """``max ||B_c||_2`` over the chunk's basis rows (1 for an identity block)."""
        if block.basis is None:
            return 1.0
        if isinstance(block.basis, KroneckerBasis):
            left, right = block.basis.factors(slice(coord_offset, coord_offset + k))
            return float((torch.linalg.vector_norm(left, dim=1, dtype=torch.float64)
                          * torch.linalg.vector_norm(right, dim=1, dtype=torch.float64)).amax())
        key = (id(block.basis), coord_offset, k)
        ref, value = self._row_norms.get(key, (None, 0.0))
        if ref is None or ref() is not block.basis:  # first use, or another basis at the same id
            rows = block.basis[coord_offset:coord_offset + k]
            value = float(torch.linalg.vector_norm(rows, dim=1, dtype=torch.float64).amax())
            self._row_norms = {kk: v for kk, v in self._row_norms.items() if v[0]() is not None}
            self._row_norms[key] = (weakref.ref(block.basis), value)
        return value

    def _moe_expert_losses(self, block, plan: _Plan, coord_offset: int, delta_z: Tensor,
                           acts: list[Tensor]) -> Tensor | None:
        """Candidates moving one Linear of expert ``e`` of a hard MoE (the gate is not moved, so the
        routing is the base's): only the ``B_e`` rows routed to ``e`` change.  On them the expert's
        Linear output is ``base + sum_k delta_k U_k`` (responses on the routed rows' activations),
        then the rest of the expert and the layers after the MoE run on ``C B_e`` rows; every other
        row keeps the base output.  Exact when the moved expert stays finite on the rows routed
        elsewhere (the module multiplies its output there by 0): checked with :func:`_chain_bound`
        and ``||Delta theta||_F <= ||delta||_1 max_c ||B_c||``; ``None`` (generic path) if not."""
        state = self._moe_state(plan.layer, acts)
        if state is None:
            return None
        p, m, d_p = delta_z.shape
        k, c = p * d_p, p * m
        e, j = plan.expert
        chain = _expert_chain(self.layers[plan.layer])[e]
        dtype = acts[-1].dtype
        step = float(delta_z.abs().sum(dim=-1, dtype=torch.float64).amax()) \
            * self._max_row_norm(block, coord_offset, k)
        extra = {2 * j + (part.role == "bias"): step for part in plan.parts}
        if not _bound_is_safe(_chain_bound(chain, state["in_norm"], extra), dtype):
            return None
        rows, sub_acts = state["rows"][e], state["acts"][e]
        logits = acts[-1].expand(c, *acts[-1].shape)
        if rows.numel():
            layer, a_in, base_out = chain[j], sub_acts[j], sub_acts[j + 1]
            n_rows, n_out = rows.numel(), layer.out_features
            u = self._block_responses(block, plan.parts, layer, a_in, base_out, n_rows, n_out,
                                      coord_offset, k).reshape(p, d_p, n_rows * n_out)
            h = torch.baddbmm(base_out.reshape(1, 1, -1), delta_z.to(dtype), u).reshape(c * n_rows, n_out)
            for sub in chain[j + 1:]:
                h = sub(h)
            h = self._run_suffix(plan.layer + 1, h)
            logits = logits.clone()
            logits[:, rows] = h.reshape(c, n_rows, *h.shape[1:])
        return self._loss_batched(logits)

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
