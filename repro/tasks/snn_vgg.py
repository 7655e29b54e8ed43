r"""A spiking VGG-11 ("SNNVGG11Small", reconstructed) and the peak-memory measurement of Table T4 / Fig F5.

PolyStep paper §5.4 / App O (paper/polystep_reconstruction.md §4, "F5/T4"): peak memory of a
spiking VGG (``SNNVGG11Small``, batch 4) for forward-only evaluation -- all PolyStep needs -- and
for BPTT training, over T time steps.  The authors' runner (``deep_snn_memory.py``) and model are
not shipped, so the architecture here is **reconstructed**:

* VGG-11 layout (configuration "A": ``64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M``) on
  CIFAR-sized ``3 x 32 x 32`` inputs, every width divided by a factor (``widths``; the default,
  ``VGG11_WIDTHS // 4``, is the "small" net; a test passes a tiny one), no batch norm;
* each block ``Conv2d(3x3, padding 1) -> LIF`` (then ``MaxPool2d(2)`` where the layout has ``M``),
  the LIF of :class:`polystep.nondiff.LIF` (``m <- beta m + I_t``, ``s_t = 1[m >= threshold]``,
  ``m <- m (1 - s_t)``, ``beta = 0.95``, ``threshold = 1``) stepped one time step at a time
  (:class:`LIFStep`; over a sequence it equals ``LIF(steps=None)`` bitwise);
* readout: ``Linear(widths[-1], n_classes)`` of the last (``1 x 1``) feature map at every step,
  averaged over the ``T`` steps (mean-membrane readout of a non-spiking output layer);
* input: a rate-coded spike sequence ``x[t, b] ~ Bernoulli(p_b)`` (``[T, B, 3, 32, 32]``, float32,
  materialised: the only O(T) tensor of the forward-only path; its 0.047 MB per step at batch 4 is
  about the paper's forward-only growth, (51.6 - 31.8) / 375 = 0.053 MB per step).

The network runs *time-step-major*: at step ``t`` every layer advances once, so a forward pass keeps
only the membrane states and one step's activations (O(1) in T).  Hard spikes
(``surrogate=None``) for the forward-only path; ``surrogate=k`` for BPTT: the same spikes, bitwise,
with the fast-sigmoid derivative ``1 / (1 + k |m - threshold|)^2`` backward
(:class:`polystep.nondiff.FastSigmoidSpike`, reset detached as in ``polystep.nondiff.LIF``).
Autograd then stores every step's activations for the backward pass: O(T).

Memory measurement (:func:`measure_peak`, one (method, T) in a fresh process by
:func:`measure_in_subprocess`, ``python -m repro.tasks.snn_vgg SPEC``):

* build model and input, run a warm-up pass of the same method at ``warmup_steps`` (lazy
  initialisation of kernels and thread pools is not counted), drop gradients;
* CPU: return freed heap to the OS (``gc.collect``, ``malloc_trim(0)``; large blocks are ``mmap``-ed
  and unmapped on free, ``MALLOC_MMAP_THRESHOLD_`` fixed at 64 KiB in the child, so the resident set
  follows the live tensors), reset the kernel's high-water mark (write ``5`` to
  ``/proc/self/clear_refs``), read ``VmRSS`` (the baseline), run the measured region, read ``VmHWM``:
  ``work_mb = VmHWM - baseline`` (the method as :mod:`repro.experiments.bench_step` measures a step);
  ``peak_mb = parameter bytes + input bytes + work_mb``, what CUDA's allocator would count;
* CUDA: ``torch.cuda.reset_peak_memory_stats``; ``peak_mb = max_memory_allocated`` (model and input
  included, as the paper's "peak GPU memory"), ``work_mb = peak_mb - memory_allocated`` before;
* measured region: forward-only ``with torch.no_grad(): model(x)``; BPTT ``CE(model(x), y).backward()``;
  ``repeats`` measurements (median reported, all kept).

Where the high-water mark cannot be reset (not Linux), :func:`measure_peak` raises: a process-wide
maximum would include the set-up.
"""

from __future__ import annotations

import ctypes
import gc
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from polystep.nondiff import FastSigmoidSpike

__all__ = ["VGG11_LAYOUT", "VGG11_WIDTHS", "SMALL_WIDTHS", "METHODS", "LIFStep", "SNNVGG11Small",
           "rate_coded_input", "n_parameters", "MemorySpec", "measure_peak", "measure_in_subprocess"]

#: VGG-11 (configuration "A"): conv widths, "M" a 2x2 max-pool
VGG11_LAYOUT: tuple = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG11_WIDTHS: tuple[int, ...] = tuple(w for w in VGG11_LAYOUT if w != "M")
#: the reconstructed "Small" net: VGG-11 widths / 4
SMALL_WIDTHS: tuple[int, ...] = tuple(w // 4 for w in VGG11_WIDTHS)
#: the two measured methods: forward-only evaluation (PolyStep) and BPTT training
METHODS: tuple[str, ...] = ("forward_only", "bptt")


class LIFStep(nn.Module):
    """One time step of :class:`polystep.nondiff.LIF` for a layer's current ``I_t`` and state ``m``::

        m <- beta m + I_t,   s_t = 1[m >= threshold],   m <- m (1 - s_t)

    returns ``(s_t, m)``.  ``surrogate=k``: ``s_t = FastSigmoidSpike(m, threshold, k)`` (hard forward,
    ``1 / (1 + k |m - threshold|)^2`` backward) and the reset uses ``sg(s_t)``, as ``LIF(surrogate=k)``.
    Iterated over ``t`` it equals ``LIF(beta, threshold, steps=None)`` on the sequence, bitwise."""

    def __init__(self, beta: float = 0.95, threshold: float = 1.0, surrogate: float | None = None):
        super().__init__()
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"beta must be in [0, 1], got {beta!r}")
        if surrogate is not None and not surrogate > 0:
            raise ValueError(f"surrogate must be a positive slope or None, got {surrogate!r}")
        self.beta, self.threshold, self.surrogate = float(beta), float(threshold), surrogate

    def forward(self, current: Tensor, mem: Tensor) -> tuple[Tensor, Tensor]:
        mem = self.beta * mem + current
        if self.surrogate is not None:
            s = FastSigmoidSpike.apply(mem, self.threshold, self.surrogate)
            return s, mem * (1.0 - s.detach())
        s = (mem >= self.threshold).to(mem.dtype)
        return s, mem * (1.0 - s)

    def extra_repr(self) -> str:
        return f"beta={self.beta}, threshold={self.threshold}, surrogate={self.surrogate}"


def _check_widths(widths) -> tuple[int, ...]:
    widths = tuple(int(w) for w in widths)
    if len(widths) != len(VGG11_WIDTHS) or min(widths) < 1:
        raise ValueError(f"widths must be {len(VGG11_WIDTHS)} positive conv widths (VGG-11), got {widths!r}")
    return widths


class SNNVGG11Small(nn.Module):
    """The reconstructed spiking VGG-11 (module docstring): input ``[T, B, 3, 32, 32]``, output the
    logits ``(1/T) sum_t W h_t + b`` (``[B, n_classes]``), ``h_t`` the last block's spikes at step t.

    Parameters drawn from ``generator`` layer by layer, weight then bias: ``U(-g/sqrt(fan_in),
    g/sqrt(fan_in))`` with ``g = conv_gain`` (default 3) for the convolutions and ``g = 1`` (PyTorch's
    default law) for the readout.  Without batch norm, PyTorch's default ``g = 1`` leaves the deeper
    layers silent (no spike past the fifth block at T = 25); ``g = 3`` makes every layer fire (about
    7-26 % of the neurons per step at the default widths and T = 25).  The memory does not depend on
    it (every tensor is dense)."""

    def __init__(self, widths=SMALL_WIDTHS, *, in_channels: int = 3, image_size: int = 32, n_classes: int = 10,
                 beta: float = 0.95, threshold: float = 1.0, surrogate: float | None = None,
                 conv_gain: float = 3.0, generator: torch.Generator | None = None, device=None,
                 dtype=torch.float32):
        super().__init__()
        widths = _check_widths(widths)
        pools = sum(1 for w in VGG11_LAYOUT if w == "M")
        if image_size % 2 ** pools:
            raise ValueError(f"image_size must be a multiple of {2 ** pools} (five 2x2 pools), got {image_size}")
        it = iter(widths)
        self.layout = tuple(w if w == "M" else next(it) for w in VGG11_LAYOUT)
        self.convs = nn.ModuleList()
        self.pool_after: list[bool] = []
        c = in_channels
        for i, w in enumerate(self.layout):
            if w == "M":
                continue
            self.convs.append(nn.Conv2d(c, w, 3, padding=1, device=device, dtype=dtype))
            self.pool_after.append(i + 1 < len(self.layout) and self.layout[i + 1] == "M")
            c = w
        side = image_size // 2 ** pools
        self.head = nn.Linear(c * side * side, n_classes, device=device, dtype=dtype)
        self.lif = LIFStep(beta, threshold, surrogate)
        if not conv_gain > 0:
            raise ValueError(f"conv_gain must be positive, got {conv_gain!r}")
        if generator is not None:
            self._init(generator, conv_gain)

    def _init(self, generator: torch.Generator, conv_gain: float) -> None:
        """``U(-g/sqrt(fan_in), g/sqrt(fan_in))`` (class docstring), drawn from ``generator``."""
        with torch.no_grad():
            for layer in [*self.convs, self.head]:
                gain = 1.0 if layer is self.head else conv_gain
                bound = gain / math.sqrt(layer.weight[0].numel())
                for p in (layer.weight, layer.bias):
                    p.copy_(torch.empty(p.shape, dtype=p.dtype).uniform_(-bound, bound, generator=generator))

    def step(self, x_t: Tensor, mems: list) -> Tensor:
        """Advance every layer one time step (``mems`` updated in place); the readout's output."""
        h = x_t
        for i, conv in enumerate(self.convs):
            current = conv(h)
            if mems[i] is None:
                mems[i] = torch.zeros_like(current)
            h, mems[i] = self.lif(current, mems[i])
            if self.pool_after[i]:
                h = F.max_pool2d(h, 2)
        return self.head(h.flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        if x.ndim != 5:
            raise ValueError(f"input must be a sequence [T, B, C, H, W], got shape {tuple(x.shape)}")
        mems: list = [None] * len(self.convs)
        total = None
        for t in range(x.shape[0]):
            out = self.step(x[t], mems)
            total = out if total is None else total + out
        return total / x.shape[0]


def n_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def rate_coded_input(steps: int, batch: int, generator: torch.Generator, *, channels: int = 3,
                     image_size: int = 32, device=None) -> Tensor:
    """``x[t, b, c, i, j] ~ Bernoulli(p[b, c, i, j])``, ``p ~ U(0, 1)`` (random "images" rate-coded
    as spike trains), shape ``[steps, batch, channels, image_size, image_size]``, float32, drawn
    on the CPU from ``generator`` and moved to ``device``."""
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be >= 1, got {steps}, {batch}")
    p = torch.rand(batch, channels, image_size, image_size, generator=generator)
    x = torch.bernoulli(p.expand(steps, *p.shape).contiguous(), generator=generator)
    return x.to(device)


# ---------------------------------------------------------------------------------- memory
@dataclass(frozen=True)
class MemorySpec:
    """One measurement: ``method`` ("forward_only" | "bptt") at ``steps`` time steps, the net of
    ``widths``, a batch of ``batch`` rate-coded sequences; seeds of the parameters and of the input
    and labels; ``surrogate`` the BPTT fast-sigmoid slope."""

    method: str
    steps: int
    widths: tuple[int, ...] = SMALL_WIDTHS
    batch: int = 4
    device: str = "cpu"
    init_seed: int = 0
    data_seed: int = 0
    threads: int = 1
    repeats: int = 1
    surrogate: float = 5.0
    warmup_steps: int = 2
    n_classes: int = 10

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {self.method!r}")
        if self.steps < 1 or self.batch < 1 or self.repeats < 1 or self.warmup_steps < 1:
            raise ValueError("steps, batch, repeats and warmup_steps must be >= 1")
        object.__setattr__(self, "widths", _check_widths(self.widths))


def _status_mb(field: str) -> float:
    """``field`` (``VmRSS``, ``VmHWM``) of ``/proc/self/status`` in MB (2^20 bytes)."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return float(line.split()[1]) / 1024  # kB
    raise OSError(f"/proc/self/status has no {field}")


def _release_heap() -> None:
    """Free unreachable objects and give free heap pages back to the OS (glibc ``malloc_trim``)."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak(device: torch.device) -> float:
    """Reset the peak counter; the memory in use now (MB): CUDA allocated, or the resident set."""
    _release_heap()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current resident set (Linux >= 4.0)
    except OSError as err:
        raise OSError("the resident set's high-water mark cannot be reset here (/proc/self/clear_refs); "
                      "the CPU memory measurement needs Linux") from err
    return _status_mb("VmRSS")


def _peak(device: torch.device) -> float:
    """The peak since :func:`_reset_peak` (MB): CUDA max allocated, or the resident set's VmHWM."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) / 2**20
    return _status_mb("VmHWM")


def _region(model: nn.Module, x: Tensor, y: Tensor, method: str) -> None:
    """The measured region: forward-only evaluation, or BPTT (forward with autograd + backward)."""
    if method == "forward_only":
        with torch.no_grad():
            model(x)
    else:
        F.cross_entropy(model(x), y).backward()


def _build(spec: MemorySpec, device: torch.device) -> tuple[nn.Module, Tensor, Tensor]:
    """Model (hard spikes, or the surrogate for BPTT), input sequence and labels of ``spec``."""
    surrogate = spec.surrogate if spec.method == "bptt" else None
    model = SNNVGG11Small(spec.widths, n_classes=spec.n_classes, surrogate=surrogate,
                          generator=torch.Generator().manual_seed(spec.init_seed), device=device)
    gen = torch.Generator().manual_seed(spec.data_seed)
    x = rate_coded_input(spec.steps, spec.batch, gen, device=device)
    y = torch.randint(0, spec.n_classes, (spec.batch,), generator=gen).to(device)
    return model, x, y


def measure_peak(spec: MemorySpec) -> dict:
    """Peak memory of ``spec`` in this process (module docstring): ``peak_mb`` (model + input +
    working memory), ``work_mb`` (above the baseline), each the median over ``repeats``, with the
    single repetitions, the baseline, the parameter and input bytes, the time of the last region."""
    device = torch.device(spec.device)
    torch.set_num_threads(spec.threads)
    model, x, y = _build(spec, device)
    resident_mb = (sum(p.numel() * p.element_size() for p in model.parameters())
                   + x.numel() * x.element_size()) / 2**20
    warm = rate_coded_input(spec.warmup_steps, spec.batch, torch.Generator().manual_seed(spec.data_seed), device=device)
    _region(model, warm, y, spec.method)
    del warm
    works, peaks, baselines, seconds = [], [], [], 0.0
    for _ in range(spec.repeats):
        model.zero_grad(set_to_none=True)
        baseline = _reset_peak(device)
        started = time.perf_counter()
        _region(model, x, y, spec.method)
        peak = _peak(device)
        seconds = time.perf_counter() - started
        work = peak - baseline
        works.append(work)
        peaks.append(peak if device.type == "cuda" else resident_mb + work)
        baselines.append(baseline)
    kind = "cuda max_memory_allocated" if device.type == "cuda" else "VmHWM above VmRSS (clear_refs reset)"
    return {"method": spec.method, "steps": spec.steps, "peak_mb": statistics.median(peaks),
            "work_mb": statistics.median(works), "peak_mb_all": peaks, "work_mb_all": works,
            "baseline_mb": statistics.median(baselines), "resident_mb": resident_mb,
            "n_parameters": n_parameters(model), "input_mb": x.numel() * x.element_size() / 2**20,
            "region_s": seconds, "peak_kind": kind, "device": str(device)}


def measure_in_subprocess(spec: MemorySpec, *, timeout: float = 1800.0) -> dict:
    """:func:`measure_peak` of ``spec`` in a fresh Python process (``python -m repro.tasks.snn_vgg
    SPEC``), so that no other measurement's heap or allocator state enters it; ``OMP_NUM_THREADS``
    and ``MALLOC_MMAP_THRESHOLD_`` (64 KiB: tensors are mapped and unmapped, not cached in the heap)
    set for the child."""
    env = dict(os.environ, OMP_NUM_THREADS=str(spec.threads), MALLOC_MMAP_THRESHOLD_=str(64 * 1024))
    cmd = [sys.executable, "-m", "repro.tasks.snn_vgg", json.dumps(asdict(spec))]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise RuntimeError(f"memory measurement {spec.method} T={spec.steps} failed "
                           f"(exit {done.returncode}):\n{tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Entry point of the measuring child: one JSON :class:`MemorySpec` in, one JSON line out."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        raise SystemExit("usage: python -m repro.tasks.snn_vgg '<MemorySpec as JSON>'")
    spec = MemorySpec(**json.loads(args[0]))
    print(json.dumps(measure_peak(spec)))


if __name__ == "__main__":
    main()
