"""Shared pieces of the "ghosts of softmax" digits experiments (Sao, arXiv 2603.13552).

Failure thresholds
------------------
The paper never defines "failure"/"collapse" (paper/ghosts_notes.md §1 and §5 item 11).  Every ghosts
experiment uses these three, fixed before any run:

* ``FAILURE_ACC_RETAINED = 0.90``: a step *fails* when the accuracy after it is below 90% of the
  accuracy before it (accuracy retained < 90%);
* ``FAILURE_LOSS_RATIO = 2.0``: a step *fails* when it at least doubles the loss (loss ratio >= 2;
  the released ``randomdirs``/``tempfingerprint`` summaries use the same 2);
* ``DIVERGED_LOSS = 10.0``: a training run *diverges* when its final loss exceeds 10 (Table 1).

Helpers
-------
Small functions used by the one-step sweeps (Figs 1, 7, 8, 9) and the training experiments:
:func:`loss_gradient` / :func:`gradient_direction` / :func:`random_direction` (unit flat
directions), :func:`curvature_along` (``v^T H v`` by double backprop), :func:`one_step_sweep`
(loss ratio / accuracy retained / flip fraction along ``theta + tau v``), :func:`median_iqr`,
:func:`first_crossing`, :func:`plot_median_iqr` and ``ARCH_COLORS`` (one colour per zoo architecture).  Directions are flat vectors in
``model.parameters()`` order (the convention of :mod:`ghosts.radius_models`).  Every loss, gradient
and sweep is evaluated with the model in eval mode (BatchNorm uses running statistics, as the
JVP radius does); the caller's train/eval flags are restored.

Data and training come from :mod:`repro.tasks`: the released code's ``X/16`` digits split is
:func:`repro.tasks.digits.load_digits_split` with ``standardise=False, val_fraction=0``; models are
trained by :func:`repro.tasks.training.train_classifier` and scored by
:func:`repro.tasks.training.accuracy`.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import Tensor, nn
from torch.func import functional_call

from ghosts.radius_models import eval_mode, tangent_dict

__all__ = [
    "FAILURE_ACC_RETAINED", "FAILURE_LOSS_RATIO", "DIVERGED_LOSS", "ARCH_COLORS",
    "loss_gradient", "gradient_direction", "random_direction", "curvature_along",
    "one_step_sweep", "median_iqr", "first_crossing", "plot_median_iqr",
]

#: accuracy retained (post-step / pre-step) below this is a failed step
FAILURE_ACC_RETAINED = 0.90
#: loss ratio (post-step / pre-step) at or above this is a failed step
FAILURE_LOSS_RATIO = 2.0
#: a training run whose final loss exceeds this has diverged (Table 1's definition)
DIVERGED_LOSS = 10.0

#: one colour per architecture of :mod:`repro.tasks.zoo` (Okabe-Ito, colour-blind safe)
ARCH_COLORS = {"linear": "#000000", "mlp": "#0072B2", "cnn": "#009E73", "mlp_ln": "#E69F00",
               "cnn_bn": "#D55E00", "transformer": "#CC79A7"}


def _params(model: nn.Module) -> dict[str, Tensor]:
    return {k: p.detach() for k, p in model.named_parameters()}


def loss_gradient(model: nn.Module, x: Tensor, y: Tensor, *, temperature: float = 1.0) -> Tensor:
    """Flat gradient (``parameters()`` order) of the mean CE of ``model(x)/temperature``, eval mode."""
    with eval_mode(model):
        params = [p for p in model.parameters()]
        loss = Fn.cross_entropy(model(x) / temperature, y)
        grads = torch.autograd.grad(loss, params)
    return torch.cat([g.reshape(-1) for g in grads]).detach()


def gradient_direction(model: nn.Module, x: Tensor, y: Tensor, *, sign: int = -1,
                       temperature: float = 1.0) -> Tensor:
    """Unit flat direction ``sign * g/||g||``: ``sign=-1`` descent (Figs 1/7/9), ``+1`` ascent (the
    released ``randomdirs`` code behind Fig 8, paper/ghosts_notes.md §4.2)."""
    if sign not in (-1, 1):
        raise ValueError(f"sign must be -1 or +1, got {sign!r}")
    g = loss_gradient(model, x, y, temperature=temperature)
    return sign * g / g.norm()


def random_direction(model: nn.Module, generator: torch.Generator) -> Tensor:
    """I.i.d. standard normal per parameter, normalised to unit global norm (paper/ghosts_notes.md §4.2)."""
    p0 = next(model.parameters())
    n = sum(p.numel() for p in model.parameters())
    v = torch.randn(n, generator=generator, dtype=torch.float64).to(device=p0.device, dtype=p0.dtype)
    return v / v.norm()


def curvature_along(model: nn.Module, v: Tensor, x: Tensor, y: Tensor, *,
                    temperature: float = 1.0) -> float:
    """``kappa = v^T H v`` of the mean CE at the current parameters (Hessian-vector product by double
    backprop, eval mode).  The Hessian step scale is ``tau_H = 2/kappa`` (``inf`` if ``kappa <= 0``)."""
    with eval_mode(model):
        params = [p for p in model.parameters()]
        loss = Fn.cross_entropy(model(x) / temperature, y)
        grads = torch.autograd.grad(loss, params, create_graph=True)
        flat = torch.cat([g.reshape(-1) for g in grads])
        hv = torch.autograd.grad(flat @ v.to(flat.dtype), params)
    return float(torch.cat([h.reshape(-1) for h in hv]) @ v.to(flat.dtype))


@torch.no_grad()
def one_step_sweep(model: nn.Module, v: Tensor, taus, x: Tensor, y: Tensor, *,
                   temperature: float = 1.0) -> dict:
    """Evaluate ``theta + tau v`` for every ``tau`` (no training) on ``(x, y)``, eval mode.

    Returns numpy arrays over ``taus``: ``loss`` (mean CE of ``logits/temperature``), ``loss_ratio``
    = loss / loss at ``tau = 0``, ``acc``, ``acc_retained`` = acc / acc at ``tau = 0``, and
    ``flip_fraction`` = fraction of samples whose argmax differs from the one at ``tau = 0``; plus the
    scalars ``loss0`` and ``acc0``.  Non-finite losses are kept as ``inf``/``nan``.
    """
    base = _params(model)
    tangent = tangent_dict(model, v)
    taus = np.asarray(taus, dtype=np.float64)
    out = {k: np.empty(len(taus)) for k in ("loss", "acc", "flip_fraction")}
    with eval_mode(model):
        z0 = functional_call(model, base, (x,))
        pred0 = z0.argmax(-1)
        loss0 = float(Fn.cross_entropy(z0 / temperature, y))
        acc0 = float((pred0 == y).float().mean())
        for i, tau in enumerate(taus):
            p = {k: base[k] + float(tau) * tangent[k] for k in base}
            z = functional_call(model, p, (x,))
            pred = z.argmax(-1)
            out["loss"][i] = float(Fn.cross_entropy(z / temperature, y))
            out["acc"][i] = float((pred == y).float().mean())
            out["flip_fraction"][i] = float((pred != pred0).float().mean())
    out["loss_ratio"] = out["loss"] / loss0
    out["acc_retained"] = out["acc"] / acc0 if acc0 > 0 else np.full(len(taus), np.nan)
    out["loss0"], out["acc0"] = loss0, acc0
    return out


def median_iqr(a, axis: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(median, 25th percentile, 75th percentile)`` along ``axis``, ignoring NaNs (the paper's
    band: median + IQR over seeds)."""
    import warnings

    a = np.asarray(a, dtype=np.float64)
    with warnings.catch_warnings():  # all-NaN columns (e.g. outside a run's grid) give NaN quietly
        warnings.simplefilter("ignore", RuntimeWarning)
        q25, med, q75 = np.nanpercentile(a, [25, 50, 75], axis=axis)
    return med, q25, q75


def first_crossing(x, y, threshold: float, *, below: bool = False, log_x: bool = True) -> float:
    """First ``x`` at which ``y`` reaches ``threshold`` (``y >= threshold``; ``below=True``:
    ``y < threshold``), interpolated between the two grid points around the crossing (in ``log x``
    when ``log_x``).  ``nan`` if ``y`` never crosses; ``x[0]`` if it starts beyond the threshold."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    y = np.where(np.isnan(y), np.inf if not below else -np.inf, y)
    hit = (y < threshold) if below else (y >= threshold)
    idx = np.flatnonzero(hit)
    if len(idx) == 0:
        return float("nan")
    i = int(idx[0])
    if i == 0:
        return float(x[0])
    y0, y1 = y[i - 1], y[i]
    frac = (threshold - y0) / (y1 - y0) if np.isfinite(y1) and y1 != y0 else 1.0
    frac = float(np.clip(frac, 0.0, 1.0))
    if log_x:
        return float(np.exp(np.log(x[i - 1]) + frac * (np.log(x[i]) - np.log(x[i - 1]))))
    return float(x[i - 1] + frac * (x[i] - x[i - 1]))


def plot_median_iqr(ax, x, ys, *, color=None, label=None, alpha: float = 0.2, **kwargs):
    """Median line of ``ys`` (``[runs, len(x)]``) with its IQR as a shaded band; returns the line."""
    med, q25, q75 = median_iqr(ys, axis=0)
    (line,) = ax.plot(x, med, color=color, label=label, **kwargs)
    ax.fill_between(x, q25, q75, color=line.get_color(), alpha=alpha, lw=0)
    return line
