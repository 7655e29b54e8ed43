r"""Radius controller: cap (or set) an optimizer's step at ``r_target * rho_a`` (Prop. 5.2).

Sao, arXiv:2603.13552, Section 5: for a proposal ``p`` with ``tau_0 = ||p||`` and
``v = p/||p||``, the clipped step ``p~ = s p`` with ``s = min(1, rho_a(v)/tau_0)`` has
``||p~|| = min(tau_0, rho_a(v)) <= rho_a(v)``, i.e. a normalized step ``r <= 1``
(Proposition 5.2).  ``rho_a = pi / max_x (max_k a_k(x) - min_k a_k(x))`` (Theorem 4.6,
Definition 4.7, Eq. 15) comes by default from one JVP along the *actual* optimizer direction
(:func:`ghosts.radius_models.model_rho_a`), at the point where the step starts.

The radius function
-------------------
``rho_a`` is whatever ``radius_fn`` returns, called as
``radius_fn(model, x, v, params=theta_old)`` with the sample set ``x``, the unit direction
``v`` and the start point ``theta_old`` as dicts ``name -> tensor`` (the names, in
``model.named_parameters()``, of the optimizer's parameters; a parameter the optimizer does
not hold is absent: zero tangent, current value).  It returns the radius, a float ``> 0``
(``inf``: no limit), or a pair ``(radius, {name: value})`` whose mapping of further radii is
recorded in ``history`` as ``"radii"`` (e.g. the output, attention and FFN radii of a
transformer whose minimum is the radius).  The tensors it receives are the controller's
buffers: copy them to keep them.  Library radius functions (:mod:`ghosts.radius_models`):

* :func:`~ghosts.radius_models.model_rho_a` (default): one JVP in eval mode, Definition 4.7;
  ``functools.partial(model_rho_a, method="fd")`` for central differences,
  ``functools.partial(model_rho_a, chunk_size=n)`` to bound memory;
* :func:`~ghosts.radius_models.batch_rho_a`: one JVP with BatchNorm on the batch's
  statistics (pass the batch as ``step(x=xb)``);
* :func:`~ghosts.radius_models.batch_rho_a_fd`: the released ResNet code's one-sided
  difference on batch statistics.

A radius that is not a number, NaN, zero or negative raises ``ValueError``.

Modes
-----
``"actual_step"`` (Prop. 5.2, default)
    ``inner.step()`` proposes ``p = theta_new - theta_old``; ``rho_a`` is computed along
    ``p/||p||`` at ``theta_old``; if ``||p|| > r_target * rho_a`` the parameters are set to
    ``theta_old + s p`` with ``s = r_target * rho_a / ||p||``.  The realized step obeys
    ``||step|| <= r_target * rho_a(step direction)``.
``"gradient_direction"`` (the authors' released ``archgrid`` controller, Fig. 10/Table 1)
    ``rho_a`` along the gradient ``g/||g||`` at ``theta_old``; ``tau_raw = ||(lr_group *
    g_group)||``; every group's learning rate is multiplied by ``s = min(1, r_target *
    rho_a / tau_raw)`` for this one step (then restored).  This does *not* bound the
    realized step of Adam-type optimizers (their step is not ``lr * g``); the realized
    displacement is recorded so that this can be seen.
``"rho_set"`` (the ResNet / tiny-transformer variant, Table 3 and Fig. 11)
    ``eta_eff = r_target * rho_a / ||u||`` for the unit-LR proposal ``u``: the realized
    step is set to exactly ``r_target * rho_a`` (scaled up *or* down), i.e.
    ``s = r_target * rho_a / ||p||`` always (``s = 1`` if ``r_target * rho_a`` is ``inf``).

Failures
--------
The parameters are restored to ``theta_old`` (the inner optimizer's state is not) and the
error propagates when the proposal is non-finite (``FloatingPointError``), when
``rho_a`` cannot be computed (``ValueError`` from the radius function, e.g. NaN/inf
directional derivatives in :func:`~ghosts.radius_models.model_rho_a`, or a radius that
is NaN or not positive), or when
a ``rho_set`` step scaled *up* overflows the parameters' dtype (``FloatingPointError``).
A step scaled down (``0 <= s < 1``) is a convex combination of two finite points and
cannot overflow.

State of the inner optimizer
----------------------------
The inner optimizer runs its ordinary ``step()``: its state (Adam's ``exp_avg``,
``exp_avg_sq``, ``step``; SGD's ``momentum_buffer``) is updated exactly as without the
controller and **is kept** when the step is capped.  Only the parameter displacement is
rescaled, which for Adam/AdamW/SGD(+momentum, weight decay) is the same as having taken
this one step with learning rate ``s * lr`` (their state does not depend on ``lr``).
Hence ``inner.state_dict()`` round-trips, and a step on which no cap fires is identical
to a plain ``inner.step()`` from the same state.  LR schedulers attach to ``inner``.

API
---
::

    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ctrl = RadiusController(opt, model, r_target=1.0, rho_inputs=x_train)
    for xb, yb in loader:
        ctrl.zero_grad()
        loss = loss_fn(model(xb), yb); loss.backward()
        ctrl.step()                      # or ctrl.step(closure) / ctrl.step(x=xb)
    ctrl.history[-1]  # {'step', 'mode', 'rho_a', 'radii', 'step_norm', 'scale', 'tau', 'r', 'capped'}

    # BatchNorm network on mini-batches: the radius with batch statistics, per batch
    ctrl = RadiusController(opt, model, r_target=1.0, mode="rho_set", radius_fn=batch_rho_a)
    ctrl.step(x=xb)

``step(closure=None, x=None)``: ``x`` is the sample set for ``rho_a`` (default: the
``rho_inputs`` given at construction, e.g. the full training split as in the paper).
Returns the closure's loss (or ``None``).
"""

from __future__ import annotations

import copy
import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ghosts.radius_models import model_rho_a

__all__ = ["RadiusController", "RadiusFn"]

_MODES = ("actual_step", "gradient_direction", "rho_set")

#: ``radius_fn(model, x, v, params=theta) -> radius | (radius, {name: value})`` (module doc)
RadiusFn = Callable[..., float | tuple[float, Mapping[str, float]]]


def _fn_name(fn: Any) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)


def _is_number(x: Any) -> bool:
    """A real number (not a bool) or a one-element tensor."""
    if isinstance(x, bool):
        return False
    return isinstance(x, numbers.Real) or (isinstance(x, Tensor) and x.numel() == 1)


def _checked_radius(out: Any, radius_fn: RadiusFn) -> tuple[float, dict[str, float]]:
    """The radius and the further radii of a ``radius_fn`` result; ``ValueError`` if the
    result is not a number > 0 (``inf`` allowed) or a pair ``(number, mapping)``."""
    radii: dict[str, float] = {}
    if isinstance(out, tuple):
        if len(out) != 2 or not isinstance(out[1], Mapping):
            raise ValueError(f"radius_fn {_fn_name(radius_fn)} returned a tuple that is not a pair "
                             f"(radius, {{name: value}}): {out!r:.200}")
        out, extra = out
        if not all(_is_number(val) for val in extra.values()):
            raise ValueError(f"radius_fn {_fn_name(radius_fn)} returned further radii that are not "
                             f"numbers: {extra!r:.200}")
        radii = {str(k): float(val) for k, val in extra.items()}
    if not _is_number(out):
        raise ValueError(f"radius_fn {_fn_name(radius_fn)} must return a number, got "
                         f"{type(out).__name__} {out!r:.100}")
    rho = float(out)
    if not rho > 0:  # NaN, 0 or negative
        raise ValueError(f"radius_fn {_fn_name(radius_fn)} returned rho_a = {rho!r}; a radius must be "
                         "> 0 (inf: no limit)")
    return rho, radii


def _global_norm(tensors: list[Tensor]) -> float:
    sq = 0.0
    for t in tensors:
        sq += float(torch.linalg.vector_norm(t.double()) ** 2)
    return math.sqrt(sq)


class RadiusController:
    """Wraps a ``torch.optim.Optimizer`` and caps its step at ``r_target * rho_a``.

    Args:
        inner: the optimizer (Adam, AdamW, SGD with momentum, ...).  All of its
            parameters must belong to ``model``.
        model: the module whose logits define ``rho_a``.
        r_target: normalized step target ``r = tau / rho_a`` (> 0); 1 is Prop. 5.2.
        mode: ``"actual_step"`` | ``"gradient_direction"`` | ``"rho_set"`` (module doc).
        rho_inputs: default sample set for ``rho_a`` (a batch tensor); can be overridden
            per step with ``step(x=...)``.
        radius_fn: ``radius_fn(model, x, v, params=theta) -> rho_a`` or
            ``(rho_a, {name: value})`` (module doc); default
            :func:`~ghosts.radius_models.model_rho_a`, one JVP in eval mode.

    Attributes:
        history: one dict per step with ``step``, ``mode``, ``rho_a``, ``radii`` (the
            further radii the radius function reported, ``{}`` if none), ``step_norm``
            (proposed ``||p||``, or ``tau_raw = ||lr g||`` in gradient mode), ``scale``
            (``s``), ``tau`` (realized ``||theta_new - theta_old||``), ``r`` (``tau/rho_a``)
            and ``capped`` (``s < 1``).
    """

    def __init__(
        self,
        inner: torch.optim.Optimizer,
        model: nn.Module,
        r_target: float = 1.0,
        *,
        mode: str = "actual_step",
        rho_inputs: Tensor | None = None,
        radius_fn: RadiusFn = model_rho_a,
    ):
        if not isinstance(inner, torch.optim.Optimizer):
            raise ValueError(f"inner must be a torch.optim.Optimizer, got {type(inner).__name__}")
        if not isinstance(model, nn.Module):
            raise ValueError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        try:
            r_target = float(r_target)
        except (TypeError, ValueError):
            raise ValueError(f"r_target must be a positive number, got {r_target!r}") from None
        if not (math.isfinite(r_target) and r_target > 0):
            raise ValueError(f"r_target must be finite and > 0, got {r_target!r}")
        if mode not in _MODES:
            raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
        if not callable(radius_fn):
            raise ValueError(f"radius_fn must be callable as radius_fn(model, x, v, params=theta), "
                             f"got {type(radius_fn).__name__} {radius_fn!r:.80}")
        if rho_inputs is not None and not isinstance(rho_inputs, Tensor):
            raise ValueError(f"rho_inputs must be a tensor or None, got {type(rho_inputs).__name__}")
        names = {id(p): k for k, p in model.named_parameters()}
        self._params: list[Tensor] = []
        self._names: list[str] = []
        for g in inner.param_groups:
            for p in g["params"]:
                if id(p) not in names:
                    raise ValueError("inner optimizer holds a parameter that is not a parameter of model")
                self._params.append(p)
                self._names.append(names[id(p)])
        self.inner = inner
        self.model = model
        self.r_target = r_target
        self.mode = mode
        self.rho_inputs = rho_inputs
        self.radius_fn = radius_fn
        self.history: list[dict[str, Any]] = []
        self._step_count = 0

    # -- optimizer-like conveniences ---------------------------------------------------
    @property
    def param_groups(self) -> list[dict[str, Any]]:
        return self.inner.param_groups

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.inner.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict[str, Any]:
        """Inner optimizer state plus the controller's settings, step count and history.

        As with ``torch.optim.Optimizer.state_dict`` the inner state holds references to
        the live tensors: serialize it (``torch.save``) or ``copy.deepcopy`` it before
        loading it into another live controller.
        """
        return {
            "inner": self.inner.state_dict(),
            "r_target": self.r_target,
            "mode": self.mode,
            "step_count": self._step_count,
            "history": copy.deepcopy(self.history),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("inner", "r_target", "mode", "step_count", "history"):
            if key not in state:
                raise ValueError(f"state dict lacks the key {key!r}")
        if state["mode"] not in _MODES:
            raise ValueError(f"state dict has an unknown mode {state['mode']!r}")
        self.inner.load_state_dict(state["inner"])
        self.r_target = float(state["r_target"])
        self.mode = state["mode"]
        self._step_count = int(state["step_count"])
        self.history = copy.deepcopy(state["history"])

    # -- the step ---------------------------------------------------------------------
    def _inputs(self, x: Tensor | None) -> Tensor:
        x = self.rho_inputs if x is None else x
        if x is None:
            raise ValueError("no sample set for rho_a: pass step(x=...) or rho_inputs=... at construction")
        if not isinstance(x, Tensor):
            raise ValueError(f"x must be a tensor, got {type(x).__name__}")
        return x

    def _rho(self, x: Tensor, direction: list[Tensor], base: list[Tensor]) -> tuple[float, dict[str, float]]:
        """``radius_fn`` along the unit ``direction`` at ``base``: ``(rho_a, further radii)``."""
        out = self.radius_fn(self.model, x, dict(zip(self._names, direction)),
                             params=dict(zip(self._names, base)))
        return _checked_radius(out, self.radius_fn)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None, x: Tensor | None = None) -> Any:
        """One controlled step (see the module docstring for the three modes)."""
        xs = self._inputs(x)
        self._step_count += 1
        old = [p.detach().clone() for p in self._params]
        if self.mode == "gradient_direction":
            loss, (rho, radii), tau_raw, scale = self._gradient_direction_step(closure, xs, old)
            disp = [p.detach() - o for p, o in zip(self._params, old)]
            tau = _global_norm(disp)
            self._check_finite(tau, old)
            self._record(rho, radii, tau_raw, scale, tau)
            return loss

        loss = self.inner.step(closure)
        disp = [p.detach() - o for p, o in zip(self._params, old)]
        norm = _global_norm(disp)
        self._check_finite(norm, old)
        if norm == 0.0:
            self._record(math.nan, {}, 0.0, 1.0, 0.0)
            return loss
        try:
            rho, radii = self._rho(xs, [d / norm for d in disp], old)
        except BaseException:  # e.g. ValueError for non-finite a: do not keep the uncapped step
            self._restore(old)
            raise
        target = self.r_target * rho
        if self.mode == "actual_step":
            scale = min(1.0, target / norm)
        else:  # rho_set
            scale = target / norm if math.isfinite(target) else 1.0
        if scale > 1.0:  # rho_set scaling up: theta_old + s p may overflow the dtype
            new = [self._scaled(o, d, scale) for o, d in zip(old, disp)]
            if not all(bool(torch.isfinite(t).all()) for t in new):
                self._restore(old)
                raise FloatingPointError(
                    f"RadiusController step {self._step_count}: the step set to r_target * rho_a = "
                    f"{target!r} overflows the parameters' dtype; parameters were restored "
                    "(optimizer state was not)"
                )
            for p, t in zip(self._params, new):
                p.copy_(t)
        elif scale != 1.0:  # 0 <= s < 1: a convex combination of theta_old and theta_old + p
            for p, o, d in zip(self._params, old, disp):
                p.copy_(o.add_(d, alpha=scale))
        self._record(rho, radii, norm, scale, scale * norm)
        return loss

    def _gradient_direction_step(self, closure, xs, old):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        grads = [torch.zeros_like(p) if p.grad is None else p.grad.detach() for p in self._params]
        gnorm = _global_norm(grads)
        tau_sq = 0.0
        for group in self.inner.param_groups:
            gs = [p.grad for p in group["params"] if p.grad is not None]
            tau_sq += (float(group["lr"]) * _global_norm(gs)) ** 2 if gs else 0.0
        tau_raw = math.sqrt(tau_sq)
        if gnorm == 0.0 or not math.isfinite(gnorm):
            rho, radii, scale = math.nan, {}, 1.0
        else:
            rho, radii = self._rho(xs, [g / gnorm for g in grads], old)
            target = self.r_target * rho
            scale = min(1.0, target / tau_raw) if tau_raw > 0 else 1.0
        lrs = [group["lr"] for group in self.inner.param_groups]
        try:
            if scale != 1.0:
                for group in self.inner.param_groups:
                    group["lr"] = group["lr"] * scale
            self.inner.step()
        finally:
            for group, lr in zip(self.inner.param_groups, lrs):
                group["lr"] = lr
        return loss, (rho, radii), tau_raw, scale

    @staticmethod
    def _scaled(o: Tensor, d: Tensor, scale: float) -> Tensor:
        """``o + scale d``; in float64 when ``scale`` exceeds the parameters' dtype range."""
        try:
            return torch.add(o, d, alpha=scale)
        except RuntimeError:  # "value cannot be converted to type float without overflow"
            return (o.double() + d.double() * scale).to(o.dtype)

    def _restore(self, old: list[Tensor]) -> None:
        for p, o in zip(self._params, old):
            p.copy_(o)

    def _check_finite(self, norm: float, old: list[Tensor]) -> None:
        if not math.isfinite(norm):
            self._restore(old)
            raise FloatingPointError(
                f"RadiusController step {self._step_count}: the inner optimizer proposed a "
                "non-finite step; parameters were restored (optimizer state was not)"
            )

    def _record(self, rho: float, radii: dict[str, float], step_norm: float, scale: float, tau: float) -> None:
        self.history.append({
            "step": self._step_count,
            "mode": self.mode,
            "rho_a": rho,
            "radii": radii,
            "step_norm": step_norm,
            "scale": scale,
            "tau": tau,
            "r": tau / rho if rho > 0 else math.nan,  # nan rho -> nan; inf rho -> 0
            "capped": scale < 1.0,
        })
