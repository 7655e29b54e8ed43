r"""Directional logit derivatives and the radius ``rho_a`` of a torch model.

For a model ``z = f_theta(x)`` and a direction ``v`` in parameter space, the directional
logit derivatives are ``a(x) = J_z(x) v = d/dt f_{theta + t v}(x)|_{t=0}`` (Section 4.5 of
Sao, arXiv:2603.13552).  They are computed for the whole batch by **one** forward-mode
JVP (``torch.func.jvp`` over ``torch.func.functional_call``), with the model in eval mode
(BatchNorm uses running statistics and no running statistic is updated; dropout is off)
and the previous train/eval flags restored afterwards.

``rho_a(v) = pi / max_x (max_k a_k(x) - min_k a_k(x))`` (Theorem 4.6, Definition 4.7,
Eq. 15) is then the batch radius (:func:`rho_from_slopes`); its ``per_sample`` form is
``pi/Delta_a(x)``.  The radius is measured in units of ``t`` in ``theta + t v``: pass a unit
``v`` to get a parameter-space distance.

BatchNorm networks trained on mini-batches move the function *with batch statistics*:
:func:`batch_logit_slopes`, :func:`batch_rho_a` and :func:`batch_rho_a_fd` run the model in
train mode with the running statistics frozen (:func:`batch_stats`), so that the radius is
that of the function the training step moves, and no running statistic changes.

Radius functions
----------------
:func:`model_rho_a`, :func:`batch_rho_a` and :func:`batch_rho_a_fd` share the signature
``radius_fn(model, x, v, *, params=None) -> float`` that
:class:`ghosts.radius_controller.RadiusController` calls (its ``radius_fn`` argument).

Directions ``v`` are either a dict ``name -> tensor`` (names of ``model.named_parameters()``;
missing names mean a zero tangent) or a flat vector in ``model.parameters()`` order.
Device and dtype follow the model's parameters.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping

import numpy as np
import torch
from torch import Tensor, nn
from torch.func import functional_call, jvp

from ghosts import softmax_radius as sr

__all__ = [
    "eval_mode",
    "batch_stats",
    "param_dict",
    "tangent_dict",
    "flatten_tangent",
    "directional_logit_derivatives",
    "directional_logit_derivatives_fd",
    "batch_logit_slopes",
    "batch_logit_slopes_fd",
    "rho_from_slopes",
    "model_rho_a",
    "batch_rho_a",
    "batch_rho_a_fd",
    "model_exact_radius",
]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule in eval mode; restore each module's own flag on exit."""
    flags = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, flag in flags:
            m.training = flag


@contextlib.contextmanager
def batch_stats(model: nn.Module) -> Iterator[nn.Module]:
    """Train mode with BatchNorm on the batch's statistics and its running statistics frozen.

    Every submodule is put in train mode (dropout is active too, as in a training step) and
    every BatchNorm's ``track_running_stats`` is switched off, so that a forward pass
    normalizes with the statistics of its own batch and updates no running statistic.  Each
    module's own flags are restored on exit.
    """
    flags = [(m, m.training, getattr(m, "track_running_stats", None)) for m in model.modules()]
    model.train()
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.track_running_stats = False
    try:
        yield model
    finally:
        for m, training, track in flags:
            m.training = training
            if track is not None:
                m.track_running_stats = track


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    """torch registers its JVP decompositions with ``torch.jit.script`` on first use."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=DeprecationWarning)
        yield


def param_dict(model: nn.Module) -> dict[str, Tensor]:
    """Detached parameters ``name -> tensor`` (``named_parameters()`` order)."""
    return {k: p.detach() for k, p in model.named_parameters()}


def tangent_dict(model: nn.Module, v: Mapping[str, Tensor] | Tensor) -> dict[str, Tensor]:
    """Normalize a direction to a dict matching ``model.named_parameters()``.

    Args:
        model: the module.
        v: dict ``name -> tensor`` (missing names get a zero tangent; unknown names or
            wrong shapes raise ``ValueError``), or a 1-D tensor with ``sum(p.numel())``
            entries in ``model.parameters()`` order.

    Returns:
        dict of tangents with each parameter's dtype and device.
    """
    named = list(model.named_parameters())
    if not named:
        raise ValueError("model has no parameters")
    if isinstance(v, Mapping):
        known = {k for k, _ in named}
        unknown = sorted(set(v) - known)
        if unknown:
            raise ValueError(f"v has names that are not parameters of the model: {unknown[:5]}")
        out = {}
        for k, p in named:
            if k in v:
                t = torch.as_tensor(v[k])
                if t.shape != p.shape:
                    raise ValueError(f"v[{k!r}] has shape {tuple(t.shape)}, parameter has {tuple(p.shape)}")
                out[k] = t.detach().to(device=p.device, dtype=p.dtype)
            else:
                out[k] = torch.zeros_like(p, memory_format=torch.contiguous_format).detach()
        return out
    if isinstance(v, Tensor):
        total = sum(p.numel() for _, p in named)
        if v.ndim != 1 or v.numel() != total:
            raise ValueError(f"v must be a dict or a flat vector with {total} entries, got shape {tuple(v.shape)}")
        out, i = {}, 0
        for k, p in named:
            n = p.numel()
            out[k] = v[i:i + n].detach().reshape(p.shape).to(device=p.device, dtype=p.dtype)
            i += n
        return out
    raise ValueError(f"v must be a dict name->tensor or a flat tensor, got {type(v).__name__}")


def flatten_tangent(model: nn.Module, v: Mapping[str, Tensor] | Tensor) -> Tensor:
    """Flat vector (``parameters()`` order) of a direction given as dict or vector."""
    return torch.cat([t.reshape(-1) for t in tangent_dict(model, v).values()])


def _check_x(x: Tensor, like: Tensor) -> Tensor:
    """Validate the batch and move it to the parameters' device (floating inputs also to
    their dtype; integer inputs such as token ids keep theirs)."""
    if not isinstance(x, Tensor):
        raise ValueError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim < 1 or x.shape[0] == 0:
        raise ValueError(f"x must be a non-empty batch [samples, ...], got shape {tuple(x.shape)}")
    if x.is_floating_point():
        return x.to(device=like.device, dtype=like.dtype)
    return x.to(like.device)


def _base_params(model: nn.Module, params: Mapping[str, Tensor] | None) -> dict[str, Tensor]:
    base = param_dict(model)
    if params is not None:
        for k, p in params.items():
            if k not in base:
                raise ValueError(f"params has a name that is not a parameter of the model: {k!r}")
            if p.shape != base[k].shape:
                raise ValueError(f"params[{k!r}] has shape {tuple(p.shape)}, parameter has {tuple(base[k].shape)}")
            base[k] = p.detach()
    return base


def _chunks(x: Tensor, chunk_size: int | None) -> list[Tensor]:
    if chunk_size is None:
        return [x]
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size!r}")
    return list(torch.split(x, chunk_size))


def directional_logit_derivatives(
    model: nn.Module,
    x: Tensor,
    v: Mapping[str, Tensor] | Tensor,
    *,
    params: Mapping[str, Tensor] | None = None,
    return_logits: bool = False,
    chunk_size: int | None = None,
) -> Tensor | tuple[Tensor, Tensor]:
    r"""``a = J_z v`` for every sample by one forward-mode JVP (Section 4.5).

    Args:
        model: maps a batch ``x`` to logits ``[samples, ..., classes]``.
        x: input batch (moved to the parameters' device; floating inputs to their dtype).
        v: direction (dict or flat vector, see :func:`tangent_dict`).
        params: base point ``theta_0`` as a dict (default: the model's current parameters).
        return_logits: also return the logits ``z`` at ``theta_0`` (free: the JVP's primal).
        chunk_size: split the batch into chunks of this many samples (memory only; each
            chunk is one batched JVP).  ``None``: one JVP for the whole batch.

    Returns:
        ``a`` (same shape as the logits), or ``(z, a)``.

    Cost: the JVP carries the primal and the tangent; a layer whose input already has a
    tangent needs ``W h' + V h`` besides ``W h``, so the FLOPs are ~2-3x a forward pass for
    multi-layer networks (plus, in torch 2.13, one matmul on the zero tangent of the
    input in the first linear layer).  Measured on 2 CPU cores: 3.3x a no-grad forward
    for a 512-1024-1024-10 MLP at batch 4096, 2.9x for a small CNN, 5-9x for digits-size
    MLPs where dispatch overhead dominates; the finite-difference twin costs ~2x.
    """
    tangents = tangent_dict(model, v)
    base = _base_params(model, params)
    x = _check_x(x, next(iter(base.values())))

    def logits(p: dict[str, Tensor], xb: Tensor) -> Tensor:
        return functional_call(model, p, (xb,))

    zs, as_ = [], []
    with eval_mode(model), torch.no_grad(), _quiet_jit():
        for xb in _chunks(x, chunk_size):
            z, a = jvp(lambda p, xb=xb: logits(p, xb), (base,), (tangents,))
            zs.append(z)
            as_.append(a)
    z = zs[0] if len(zs) == 1 else torch.cat(zs)
    a = as_[0] if len(as_) == 1 else torch.cat(as_)
    return (z, a) if return_logits else a


def directional_logit_derivatives_fd(
    model: nn.Module,
    x: Tensor,
    v: Mapping[str, Tensor] | Tensor,
    h: float | None = None,
    *,
    params: Mapping[str, Tensor] | None = None,
) -> Tensor:
    r"""Central-difference twin: ``a ~ (f_{theta + h v}(x) - f_{theta - h v}(x)) / (2h)``.

    Two batched forward passes in eval mode.  Error ``O(h^2 |z'''|) + O(eps |z| / h)``;
    the default ``h = eps^{1/3}`` of the parameter dtype (4.9e-3 in float32, 6.1e-6 in
    float64) balances the two for ``O(1)`` logits and a unit ``v``.
    """
    tangents = tangent_dict(model, v)
    base = _base_params(model, params)
    p0 = next(iter(base.values()))
    x = _check_x(x, p0)
    if h is None:
        h = float(torch.finfo(p0.dtype).eps) ** (1.0 / 3.0)
    h = float(h)
    if not (math.isfinite(h) and h > 0):
        raise ValueError(f"h must be finite and > 0, got {h!r}")
    plus = {k: base[k] + h * tangents[k] for k in base}
    minus = {k: base[k] - h * tangents[k] for k in base}
    with eval_mode(model), torch.no_grad():
        return (functional_call(model, plus, (x,)) - functional_call(model, minus, (x,))) / (2 * h)


def model_rho_a(
    model: nn.Module,
    x: Tensor,
    v: Mapping[str, Tensor] | Tensor,
    *,
    per_sample: bool = False,
    params: Mapping[str, Tensor] | None = None,
    chunk_size: int | None = None,
    method: str = "jvp",
) -> float | Tensor:
    r"""``rho_a(v) = pi / max_x Delta_a(x; v)`` over the batch ``x`` (Definition 4.7, Eq. 15).

    One batched JVP in eval mode (:func:`directional_logit_derivatives`) and the reduction
    :func:`rho_from_slopes`; ``method="fd"`` uses the central-difference twin instead (two
    forward passes).  Logits of shape ``[samples, ..., classes]`` are treated as
    ``prod(...)`` rows.  The default radius function of
    :class:`~ghosts.radius_controller.RadiusController`.

    Returns:
        the batch radius as a Python float (``inf`` if no logit moves), or with
        ``per_sample=True`` a tensor ``pi/Delta_a(x)`` per row (model dtype/device); see
        :func:`rho_from_slopes` for the float64 quotient and overflowing spreads.

    Raises:
        ValueError: if ``a`` has NaN or inf entries (the model's logits or their JVP
            overflow); ``rho_a`` is then undefined, and ``inf`` ("no limit") would be unsafe.
    """
    if method == "jvp":
        a = directional_logit_derivatives(model, x, v, params=params, chunk_size=chunk_size)
    elif method == "fd":
        a = directional_logit_derivatives_fd(model, x, v, params=params)
    else:
        raise ValueError(f"method must be 'jvp' or 'fd', got {method!r}")
    return rho_from_slopes(a, per_sample=per_sample)


def rho_from_slopes(a: Tensor, *, per_sample: bool = False) -> float | Tensor:
    r"""``rho_a = pi / max_x (max_k a_k(x) - min_k a_k(x))`` from the slopes ``a = J_z v``.

    The multiclass lower bound ``rho* >= pi / Delta_a`` of Theorem 4.6 taken over a batch
    (Definition 4.7, Eq. 15): the loss along ``theta + t v`` is analytic for
    ``|t| < rho_a``.  The torch twin of :func:`ghosts.softmax_radius.rho_a`.

    Args:
        a: directional logit derivatives ``[samples, ..., classes]`` (e.g. from
            :func:`directional_logit_derivatives` or :func:`batch_logit_slopes`); all
            leading axes are treated as ``prod(...)`` rows, each a softmax over the last axis.
        per_sample: return ``pi/Delta_a`` per row instead of the batch minimum.

    Returns:
        the batch radius as a Python float (``inf`` if no logit moves), or with
        ``per_sample=True`` a tensor ``pi/Delta_a(x)`` per row (``a``'s dtype; the quotient
        is taken in float64, so its minimum is the batch radius rounded to the dtype).
        Where ``max a - min a`` overflows ``a``'s dtype it is evaluated as
        ``(pi/2) / (max a/2 - min a/2)`` in float64 (so the radius is never 0).

    Raises:
        ValueError: if ``a`` has NaN or inf entries (the logits or their derivatives
            overflow); ``rho_a`` is then undefined, and ``inf`` ("no limit") would be unsafe.
    """
    if not isinstance(a, Tensor) or a.ndim < 1 or a.numel() == 0:
        raise ValueError(f"a must be a non-empty tensor [..., classes], got {a!r:.80}")
    a = a.reshape(-1, a.shape[-1])
    finite = torch.isfinite(a)
    if not bool(finite.all()):
        bad = int((~finite).sum())
        raise ValueError(f"the directional logit derivatives a = J_z v have {bad} NaN/inf entries of "
                         f"{a.numel()} (the logits or their JVP overflow {a.dtype}): rho_a is undefined")
    spread = a.amax(dim=-1) - a.amin(dim=-1)
    if not bool(torch.isfinite(spread).all()):  # max - min beyond the dtype's range
        half = a.amax(dim=-1).double() / 2 - a.amin(dim=-1).double() / 2
        per = (math.pi / 2) / half
        return per.to(a.dtype) if per_sample else float(per.min())
    if per_sample:  # float64 true division (torch's ``scalar / t`` is ``reciprocal(t) * scalar``)
        pi = torch.full_like(spread, math.pi, dtype=torch.float64)
        return (pi / spread.double()).to(spread.dtype)
    worst = float(spread.max())
    return math.pi / worst if worst > 0 else math.inf


def batch_logit_slopes(
    model: nn.Module,
    x: Tensor,
    v: Mapping[str, Tensor] | Tensor,
    *,
    params: Mapping[str, Tensor] | None = None,
) -> Tensor:
    r"""``a = J_z v`` on the batch ``x`` by one JVP, BatchNorm on the batch's statistics.

    The directional logit derivatives of Section 4.5 for the function a training step
    moves: in :func:`batch_stats` (train mode, running statistics frozen), so BatchNorm's
    mean and variance are those of ``x`` and are differentiated along ``v`` too.  In eval
    mode (no BatchNorm, no dropout) this is :func:`directional_logit_derivatives`.

    Args:
        model: maps a batch ``x`` to logits ``[samples, ..., classes]``.
        x: the batch (its statistics normalize it; moved to the parameters' device).
        v: direction (dict or flat vector, see :func:`tangent_dict`).
        params: base point ``theta_0`` as a dict (default: the model's current parameters).

    Returns:
        ``a``, the same shape as the logits.
    """
    tangents = tangent_dict(model, v)
    base = _base_params(model, params)
    x = _check_x(x, next(iter(base.values())))
    with batch_stats(model), torch.no_grad(), _quiet_jit():
        _, a = jvp(lambda p: functional_call(model, p, (x,)), (base,), (tangents,))
    return a


def batch_logit_slopes_fd(
    model: nn.Module,
    x: Tensor,
    v: Mapping[str, Tensor] | Tensor,
    *,
    params: Mapping[str, Tensor] | None = None,
    eps: float = 1e-4,
) -> Tensor:
    r"""One-sided difference ``a ~ (f_{theta + eps v}(x) - f_theta(x)) / eps``, batch statistics.

    The estimate of the authors' released ResNet code (``eps = 1e-4``, two forward passes
    with BatchNorm on batch statistics; paper/ghosts_notes.md §4.1), here in
    :func:`batch_stats` so that no running statistic is updated.  Error
    ``O(eps |z''|) + O(float_eps |z| / eps)``: about ``1e-4`` relative in float64, worse in
    float32; :func:`batch_logit_slopes` is exact.
    """
    tangents = tangent_dict(model, v)
    base = _base_params(model, params)
    x = _check_x(x, next(iter(base.values())))
    eps = float(eps)
    if not (math.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be finite and > 0, got {eps!r}")
    shifted = {k: b + eps * tangents[k] for k, b in base.items()}
    with batch_stats(model), torch.no_grad():
        return (functional_call(model, shifted, (x,)) - functional_call(model, base, (x,))) / eps


def batch_rho_a(
    model: nn.Module,
    x: Tensor,
    v: Mapping[str, Tensor] | Tensor,
    *,
    params: Mapping[str, Tensor] | None = None,
) -> float:
    r"""``rho_a(v) = pi / max_x Delta_a(x; v)`` with BatchNorm on the batch's statistics.

    :func:`rho_from_slopes` of :func:`batch_logit_slopes` (one JVP): the radius (Theorem 4.6,
    Definition 4.7) of the function a mini-batch training step moves.  A radius function for
    :class:`~ghosts.radius_controller.RadiusController` (``radius_fn=batch_rho_a``), with
    the batch passed as ``step(x=xb)``.
    """
    return rho_from_slopes(batch_logit_slopes(model, x, v, params=params))


def batch_rho_a_fd(
    model: nn.Module,
    x: Tensor,
    v: Mapping[str, Tensor] | Tensor,
    *,
    params: Mapping[str, Tensor] | None = None,
    eps: float = 1e-4,
) -> float:
    r""":func:`batch_rho_a` from the one-sided difference :func:`batch_logit_slopes_fd`.

    The released ResNet code's estimate (two forward passes, ``eps = 1e-4``); it agrees with
    the JVP radius to ``O(eps)`` relative.  A radius function for
    :class:`~ghosts.radius_controller.RadiusController` (``radius_fn=batch_rho_a_fd``).
    """
    return rho_from_slopes(batch_logit_slopes_fd(model, x, v, params=params, eps=eps))


def model_exact_radius(
    model: nn.Module,
    x: Tensor,
    v: Mapping[str, Tensor] | Tensor,
    *,
    per_sample: bool = False,
    params: Mapping[str, Tensor] | None = None,
) -> float | np.ndarray:
    r"""Exact linearized radius ``rho*(x; v)`` (Prop. 4.2) from the JVP's ``(z, a)``.

    Runs :func:`ghosts.softmax_radius.exact_radius` on each sample (float64 numpy/mpmath,
    a few ms per sample).  Returns ``min_x rho*(x)`` (the radius of the linearized mean
    loss) or the per-sample array.  Raises ``ValueError`` for non-finite logits or
    derivatives, and where ``exact_radius`` refuses a sample whose zeros are too far out
    for its sample budget (logit gaps of ~1e4 and more; the message gives lower bounds).
    """
    z, a = directional_logit_derivatives(model, x, v, params=params, return_logits=True)
    n = z.shape[-1]
    z = z.reshape(-1, n).double().cpu().numpy()
    a = a.reshape(-1, n).double().cpu().numpy()
    return sr.exact_radius(z, a, per_sample=per_sample)
