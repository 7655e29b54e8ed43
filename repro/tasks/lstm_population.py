"""The ETTh1 forecaster of Table T6 and the evaluation of a *population* of them in one batched pass.

Model (paper/polystep_reconstruction.md §5.2, "ETTh1: VmapSafeLSTM(1->64) + Linear 64->96", 23,392
parameters): a one-layer LSTM reads the ``seq_len`` normalised inputs, its last hidden state ``h_L``
goes through ``Linear(hidden, pred_len)``.  :class:`LSTMForecaster` holds a ``torch.nn.LSTM`` (so Adam
backpropagates through PyTorch's own kernel) and a ``torch.nn.Linear``; its parameters, in order, are
``W_ih [4H, 1]``, ``W_hh [4H, H]``, ``b_ih [4H]``, ``b_hh [4H]``, ``W [P, H]``, ``b [P]``
(``4 H (1 + H) + 8 H + P H + P = 23,392`` at ``H = 64``, ``P = 96``).

Population evaluation (:func:`population_lstm`): every parameter carries a leading population
dimension ``B``, and the recurrence of PyTorch's LSTM (gate order ``i, f, g, o``)::

    g_t = W_ih x_t + b_ih + W_hh h_{t-1} + b_hh
    c_t = sigma(f_t) * c_{t-1} + sigma(i_t) * tanh(g_t),   h_t = sigma(o_t) * tanh(c_t)

runs once on a ``[B, N, 4H]`` state: ``W_hh h`` is one ``baddbmm`` over the population
(``[B, N, H] x [B, H, 4H]``), or one ``[B N, H] x [H, 4H]`` GEMM when ``W_hh`` is shared by the whole
population.  A tensor is *shared* when it is a stride-0 expansion along the population dimension --
exactly how :class:`polystep.optim.PolyStep` and :class:`polystep.baselines.PopulationOptimizer` hand
over the parameters a candidate does not move.  Prefix / suffix (the idea of
:mod:`polystep.fast_eval`): when all four LSTM tensors are shared (PolyStep's blocks of the head),
the recurrence runs once on the ``N`` windows and only the head is batched (``[B, N, H] x [B, H, P]``);
the population's MSEs are the per-candidate means over ``N x P``.

Two modes compute the candidates whose LSTM tensors moved: ``"batched"`` (the recurrence above, all
candidates at once) and ``"loop"`` (PyTorch's own kernel, ``torch.lstm`` -- oneDNN on CPU -- once per
candidate); both share the prefix and the suffix.  Which is faster depends on the machine and the
size: on the 2-core CPU of this package, at the paper's size (``H = 64``, 96 steps, batch 64) the
loop is ~2.5x faster than the batched recurrence (eager elementwise kernels against a fused one),
at ci size (``H = 8``, 24 steps, batch 16) the batched recurrence is ~6x faster than the loop and
~10x faster than the naive per-candidate call
(:func:`repro.experiments.t6_etth1.bench_population` measures it).

:func:`lstm_population_closure` wraps it in the closure protocol both optimizers call
(``closure(thetas) -> losses [B]``, one ``[B, *shape]`` tensor per parameter, see
:mod:`polystep.evaluation`).  :func:`naive_population_losses` is the reference it is tested and
benchmarked against: one ``torch.func.functional_call`` of the model -- i.e. ``torch.nn.LSTM`` --
per candidate.
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.func import functional_call

from polystep.evaluation import parameter_names

__all__ = ["LSTMForecaster", "build_forecaster", "population_lstm", "population_mse",
           "lstm_population_closure", "naive_population_losses", "LSTM_PARAMETER_NAMES", "MODES"]

#: the forecaster's parameter names, in ``parameters()`` order
LSTM_PARAMETER_NAMES = ("lstm.weight_ih_l0", "lstm.weight_hh_l0", "lstm.bias_ih_l0", "lstm.bias_hh_l0",
                        "head.weight", "head.bias")


class LSTMForecaster(nn.Module):
    """``LSTM(1 -> hidden)`` over the ``seq_len`` inputs, ``Linear(hidden -> pred_len)`` on the last
    hidden state.  ``forward(x [N, seq_len]) -> [N, pred_len]``."""

    def __init__(self, hidden: int = 64, pred_len: int = 96):
        super().__init__()
        if hidden < 1 or pred_len < 1:
            raise ValueError(f"hidden and pred_len must be >= 1, got {hidden}, {pred_len}")
        self.hidden, self.pred_len = int(hidden), int(pred_len)
        self.lstm = nn.LSTM(1, self.hidden, batch_first=True)
        self.head = nn.Linear(self.hidden, self.pred_len)

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 2:
            raise ValueError(f"expected windows [N, seq_len], got shape {tuple(x.shape)}")
        out, _ = self.lstm(x.unsqueeze(-1))
        return self.head(out[:, -1])


def build_forecaster(generator: torch.Generator, *, hidden: int = 64, pred_len: int = 96, device=None,
                     dtype: torch.dtype = torch.float32) -> LSTMForecaster:
    """:class:`LSTMForecaster` with PyTorch's default initialisation drawn from ``generator``: every
    LSTM tensor and the head's weight and bias ``U(-1/sqrt(H), 1/sqrt(H))`` (``nn.LSTM``'s rule, and
    ``nn.Linear``'s with ``fan_in = H``), in ``parameters()`` order."""
    model = LSTMForecaster(hidden, pred_len)
    bound = 1.0 / model.hidden ** 0.5
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.empty(p.shape, dtype=torch.float64).uniform_(-bound, bound, generator=generator))
    return model.to(device=device, dtype=dtype)


def _shared(t: Tensor) -> bool:
    """A population tensor whose members are all the same view (stride 0 along dim 0, or B = 1)."""
    return t.shape[0] == 1 or t.stride(0) == 0


def _gate_scale(hidden: int, like: Tensor) -> Tensor:
    """``[1, 1, 2, 1]`` per gate block (``i, f, g, o``): the cell gate's pre-activation doubled, so
    that one sigmoid serves all four gates (``tanh(a) = 2 sigma(2a) - 1``)."""
    s = like.new_ones(4 * hidden)
    s[2 * hidden:3 * hidden] = 2.0
    return s


def _recurrence(w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, x: Tensor) -> Tensor:
    """Last hidden state ``[B, N, H]`` of the population LSTM (module docstring); ``w_ih [B, 4H, 1]``,
    ``w_hh [B, 4H, H]``, biases ``[B, 4H]``, ``x [N, L]``.

    ``tanh(a)`` is computed as ``2 sigma(2a) - 1`` (one vectorised sigmoid over the four gates; on
    CPU ``torch.tanh`` is ~20x slower per element than ``torch.sigmoid``); the two agree to rounding.
    """
    B, four_h, hidden = w_hh.shape
    N, L = x.shape
    s = _gate_scale(hidden, x)
    shared_hh = _shared(w_hh)
    w_in = w_ih[:, :, 0] * s                              # [B, 4H]
    bias = (b_ih + b_hh) * s                              # [B, 4H]
    if _shared(w_ih) and _shared(b_ih) and _shared(b_hh):  # input part shared: one [N, L, 4H] tensor
        gx = torch.addcmul(bias[:1, None, :], x[:, :, None], w_in[:1, None, :])   # [N, L, 4H]
        gx_t = lambda t: gx[None, :, t]                   # noqa: E731  [1, N, 4H], broadcast over B
    else:
        w_in, bias = w_in[:, None, :], bias[:, None, :]   # [B, 1, 4H]
        gx_t = lambda t: torch.addcmul(bias, x[None, :, t, None], w_in)  # noqa: E731  [B, N, 4H]
    if shared_hh:
        w_hh_t = (w_hh[0] * s[:, None]).t()               # [H, 4H]
    else:
        w_hh_t = (w_hh * s[None, :, None]).transpose(1, 2)  # [B, H, 4H]
    h = x.new_zeros(B, N, hidden)
    c = x.new_zeros(B, N, hidden)
    i_, f_, g_, o_ = (slice(k * hidden, (k + 1) * hidden) for k in range(4))
    for t in range(L):
        if shared_hh:
            gates = torch.matmul(h.reshape(B * N, hidden), w_hh_t).view(B, N, four_h)
        else:
            gates = torch.bmm(h, w_hh_t)
        gates += gx_t(t)
        sig = torch.sigmoid_(gates)
        g = sig[..., g_].mul(2.0).sub_(1.0)               # tanh of the cell gate
        c = torch.addcmul(sig[..., f_] * c, sig[..., i_], g)
        h = torch.sigmoid(c * 2.0).mul_(2.0).sub_(1.0).mul_(sig[..., o_])
    return h


def _recurrence_loop(w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor, x: Tensor) -> Tensor:
    """:func:`_recurrence` candidate by candidate through PyTorch's own LSTM kernel
    (``torch.lstm``; oneDNN on CPU): ``[B, N, H]``."""
    B, _, hidden = w_hh.shape
    N = x.shape[0]
    xs = x[:, :, None]
    h0 = x.new_zeros(1, N, hidden)
    out = x.new_empty(B, N, hidden)
    for b in range(B):
        _, h_n, _ = torch.lstm(xs, (h0, h0), [w_ih[b], w_hh[b], b_ih[b], b_hh[b]], True, 1, 0.0, False, False, True)
        out[b] = h_n[0]
    return out


MODES = ("batched", "loop")


def population_lstm(thetas: Sequence[Tensor], x: Tensor, *, mode: str = "batched") -> Tensor:
    """Forecasts ``[B, N, P]`` of ``B`` candidate forecasters on the windows ``x [N, L]``.

    ``thetas``: ``(W_ih [B, 4H, 1], W_hh [B, 4H, H], b_ih [B, 4H], b_hh [B, 4H], W [B, P, H], b [B, P])``
    (the order of :data:`LSTM_PARAMETER_NAMES`); stride-0 (shared) members are detected and computed
    once (module docstring).  ``mode``: ``"batched"`` -- the recurrence of all candidates at once
    (:func:`_recurrence`); ``"loop"`` -- one ``torch.lstm`` call per candidate whose LSTM tensors
    differ (the same prefix / suffix sharing)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if len(thetas) != 6:
        raise ValueError(f"expected the 6 forecaster tensors (W_ih, W_hh, b_ih, b_hh, W, b), got {len(thetas)}")
    w_ih, w_hh, b_ih, b_hh, w, b = thetas
    B = w_hh.shape[0]
    if any(t.shape[0] != B for t in thetas):
        raise ValueError(f"population sizes differ: {[t.shape[0] for t in thetas]}")
    recurrence = _recurrence if mode == "batched" else _recurrence_loop
    lstm = (w_ih, w_hh, b_ih, b_hh)
    if all(_shared(t) for t in lstm):                     # prefix: the recurrence once, on the N windows
        h = recurrence(*(t[:1] for t in lstm), x)         # [1, N, H]
        if _shared(w) and _shared(b):
            return (torch.addmm(b[0], h[0], w[0].t()))[None].expand(B, -1, -1)
        return torch.baddbmm(b[:, None, :], h.expand(B, -1, -1), w.transpose(1, 2))
    h = recurrence(*lstm, x)                              # [B, N, H]
    if _shared(w) and _shared(b):                         # suffix: one GEMM on the folded population
        n, hidden = h.shape[1], h.shape[2]
        return torch.addmm(b[0], h.reshape(B * n, hidden), w[0].t()).view(B, n, -1)
    return torch.baddbmm(b[:, None, :], h, w.transpose(1, 2))


def population_mse(thetas: Sequence[Tensor], x: Tensor, y: Tensor, *, mode: str = "batched",
                   max_rows: int | None = None) -> Tensor:
    """Mean squared error ``[B]`` of every candidate on ``(x, y)`` (mean over the ``N x P`` targets),
    the population evaluated in chunks of at most ``max(1, max_rows // N)`` candidates.  Default
    ``max_rows``: ``2**12`` on a CPU (the batched recurrence's working set, ``~ 8 x chunk x N x H``
    floats, stays in cache), ``2**20`` on an accelerator (one launch per step for many candidates)."""
    if max_rows is None:
        max_rows = 1 << 12 if x.device.type == "cpu" else 1 << 20
    B = thetas[1].shape[0]
    per = max(1, max_rows // max(1, x.shape[0]))
    out = []
    for lo in range(0, B, per):
        pred = population_lstm([t[lo:lo + per] for t in thetas], x, mode=mode)
        out.append((pred - y).square().mean(dim=(1, 2)))
    return torch.cat(out)


def lstm_population_closure(model: LSTMForecaster, x: Tensor, y: Tensor,
                            params: Sequence[Tensor] | None = None, *, mode: str = "batched",
                            ) -> Callable[[Sequence[Tensor]], Tensor]:
    """The population closure of :mod:`polystep.evaluation`'s protocol for :class:`LSTMForecaster`:
    ``closure(thetas) -> [B]`` MSEs on the mini-batch ``(x, y)``, ``thetas`` aligned with ``params``
    (default ``list(model.parameters())``, e.g. ``opt.params``), evaluated by :func:`population_mse`
    with ``mode``."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    params = list(model.parameters()) if params is None else list(params)
    names = parameter_names(model, params)
    if sorted(names) != sorted(LSTM_PARAMETER_NAMES):
        raise ValueError(f"expected the forecaster's parameters {LSTM_PARAMETER_NAMES}, got {names}")
    order = [names.index(n) for n in LSTM_PARAMETER_NAMES]

    def closure(thetas: Sequence[Tensor]) -> Tensor:
        if len(thetas) != len(names):
            raise ValueError(f"expected {len(names)} parameter tensors, got {len(thetas)}")
        with torch.no_grad():
            return population_mse([thetas[i] for i in order], x, y, mode=mode)

    closure.parameter_names = names  # type: ignore[attr-defined]
    return closure


def naive_population_losses(model: nn.Module, thetas: Sequence[Tensor], x: Tensor, y: Tensor,
                            params: Sequence[Tensor] | None = None) -> Tensor:
    """The reference: candidate by candidate, ``functional_call(model, theta_b, x)`` (PyTorch's
    ``nn.LSTM`` kernel) and its MSE; ``[B]``."""
    params = list(model.parameters()) if params is None else list(params)
    names = parameter_names(model, params)
    B = thetas[0].shape[0]
    with torch.no_grad():
        return torch.stack([torch.nn.functional.mse_loss(
            functional_call(model, {n: t[b] for n, t in zip(names, thetas)}, (x,)), y) for b in range(B)])
