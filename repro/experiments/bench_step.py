"""Benchmark: the cost of one PolyStep step on an MLP, naive vs fast population evaluation.

The reference configuration is the paper's SNN/MNIST-sized MLP 784-128-10 (101,770 parameters) at
batch 64 with the per-layer (hybrid) subspace of rank 4: ``D = 4,338`` coordinates, ``P = 543``
particles of ``d_p = 8``, orthoplex ``V = 16``, ``K = 1``, i.e. ``8,688`` forward evaluations per
step (paper/polystep_reconstruction.md §2.13).  Inputs are random (the step's cost does not depend on the data).

Two evaluators are timed on the same optimizer and batch from the same initial state (issue #3),
stepping alternately -- evaluator A's step, then B's, each restored to its own trajectory's state
(``opt.state`` and the parameters; the subspace is shared, so its set-up is paid once) -- so that
both see the same machine load:

* ``naive`` -- :func:`polystep.evaluation.population_closure`: every candidate's perturbed
  parameters are materialised and the whole network runs per candidate (``vmap`` of
  ``functional_call``);
* ``fast`` -- :func:`polystep.fast_eval.fast_population_closure`: shared prefix activations,
  linear response of the perturbed layer, batched suffix (its ``block_losses`` hook).

Reported per configuration and evaluator: evaluations per second, seconds per step, the ratio
``step time / time spent inside the closure`` (both its ``__call__`` and its ``block_losses``: the
ratio is the overhead of the update itself -- proposals, populations, transport, barycentre,
``theta <- theta_0 + P z``) and the peak memory while stepping; plus the subspace set-up time and
the process's peak memory during set-up, the speed-up of fast over naive measured in the same run,
the process CPU time per step (``cpu_s``, all threads; less sensitive to other processes' load than
the wall time, but it includes the threads' spin-waiting) and ``max |z_fast - z_naive|`` after one
step from the same state (the two evaluators must agree).

Peak memory: on CUDA the allocator's peak (reset before each evaluator).  On CPU the peak resident
set size of this process while the evaluator steps: freed heap is returned to the OS
(``malloc_trim``) and the kernel's high-water mark is reset (``/proc/self/clear_refs``, value 5)
before each step, ``VmHWM`` is read after it, and an evaluator's peak is the largest over its steps.
It therefore includes what is resident for both (the model, the subspace bases, the batch, the
interpreter: ``rss_before_mb``) but not the set-up peak of the projections (``setup_peak_mb``: the
same high-water mark, reset before the optimizer is built and read after).
Where the high-water mark cannot be reset (not Linux) the process-wide ``ru_maxrss`` is reported
instead and ``peak_kind`` says so.

Rows (``Config.rows``: model, rank, basis).  Models: ``"mlp"`` (Linear-ReLU-Linear) and ``"snn"``
(:func:`polystep.nondiff.spiking_mlp`, the hard-LIF spiking network of Table T1 with the same
Linear layers and 15 time steps: every candidate's suffix runs the LIF recurrences, so a forward
evaluation costs ~15x the MLP's; the fast path still shares the prefix) and ``"cnn"`` (the ghosts
zoo's digits CNN, 8x8 inputs, two Conv2d + MaxPool and a 128-64-10 head, eval mode; its input size
does not follow ``Config.sizes``).  Bases: ``"qr"`` is the
paper's dense per-layer
projection (orthonormal rows from a QR of a dense Gaussian: 1.46 GB and tens of seconds of set-up for
the first layer at rank 4); ``"kronecker"`` is the structured opt-in basis
(:class:`polystep.subspace.KroneckerBasis`, rows ``a_i (x) b_j``: same ``D`` and evaluations per
step, a few hundred kilobytes and milliseconds of set-up, and a Linear layer's response costs
``O(N d_in)`` per coordinate instead of ``O(N d_in d_out)``).  It is a different distribution of
subspaces, so its training behaviour is an ablation of its own (``ablation_kronecker_basis``).

For comparison the issue's measurement of the original code on the same 2-core machine is quoted:
about 138 s and 7.4 GB for one rank-4 step (~63 evaluations/s).
"""

from __future__ import annotations

import ctypes
import gc
import resource
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as Fn

from polystep.evaluation import population_closure
from polystep.fast_eval import fast_population_closure
from polystep.nondiff import spiking_mlp
from polystep.optim import PolyStep
from polystep.polytopes import num_vertices
from repro.claims import claim, claims_of
from repro.context import RunContext
from repro.tasks import zoo
from repro.tasks.models import mlp
from repro.tasks.training import preload_torch_optim

ID = "bench_step"
TITLE = ("Benchmark: one PolyStep step on the 784-128-10 MLP, naive vs fast evaluation "
         "(evaluations/s, overhead, memory)")
CLAIMS = claims_of(ID)
VERSION = 5  # result format: per (rank, basis) rows, per-evaluator (naive and fast), stepped alternately
#: timings need a quiet machine: `all` runs this after the pool of the other experiments, alone
NEEDS_QUIET_MACHINE = True
#: fixed intra-op threads: the committed cpu timings use both cores of the 2-core machine; the ci
#: run (tests, beside other test workers) one
THREADS = {"ci": 1, "cpu": 2, "paper": 2}

ORIGINAL_STEP_S, ORIGINAL_PEAK_GB = 138.0, 7.4  # issue #3: original code, rank 4, this machine class
#: the evaluators by name (``Config.evaluators`` orders them within each round of steps)
EVALUATORS = {"fast": fast_population_closure, "naive": population_closure}


@dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...] = (784, 128, 10)
    batch_size: int = 64
    particle_dim: int = 8
    warmup_steps: int = 1
    timed_steps: int = 2
    chunk_size: int = 1024
    #: (model, rank, basis) per row: "mlp" | "snn" | "cnn", the hybrid rank, "qr" | "kronecker"
    rows: tuple[tuple[str, int, str], ...] = (("mlp", 4, "qr"), ("mlp", 4, "kronecker"))
    snn_steps: int = 15
    evaluators: tuple[str, ...] = ("fast", "naive")  # stepping order in a round; both required


CONFIGS = {
    "ci": Config(sizes=(64, 32, 10), timed_steps=1,
                 rows=(("mlp", 4, "qr"), ("mlp", 4, "kronecker"), ("snn", 4, "kronecker"),
                       ("cnn", 2, "kronecker"))),
    "cpu": Config(warmup_steps=1, timed_steps=2, rows=(
        ("mlp", 4, "qr"), ("mlp", 4, "kronecker"), ("mlp", 8, "qr"), ("mlp", 8, "kronecker"),
        ("snn", 4, "kronecker"), ("cnn", 4, "qr"))),
    "paper": Config(warmup_steps=1, timed_steps=3, rows=(
        ("mlp", 4, "qr"), ("mlp", 4, "kronecker"), ("mlp", 8, "qr"), ("mlp", 8, "kronecker"),
        ("snn", 4, "qr"), ("snn", 4, "kronecker"), ("cnn", 4, "qr"))),
}


# ------------------------------------------------------------------------------------ memory
def _rss_status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1]) / 1024  # kB
    except OSError:
        return None
    return None


def _release_heap() -> None:
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def _reset_peak(device: torch.device) -> tuple[float, str]:
    """Reset the peak counter; returns (resident MB now, kind of peak that will be reported)."""
    _release_heap()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        return torch.cuda.memory_allocated(device) / 2**20, "cuda max_memory_allocated"
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset VmHWM to the current RSS (Linux >= 4.0)
        now = _rss_status_mb("VmRSS")
        if now is not None:
            return now, "VmHWM (reset before every step)"
    except OSError:
        pass
    return _maxrss_mb(), "ru_maxrss (process-wide, set-up included)"


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _peak_mb(device: torch.device, kind: str) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    if kind.startswith("VmHWM"):
        hwm = _rss_status_mb("VmHWM")
        if hwm is not None:
            return hwm
    return _maxrss_mb()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------------------- evaluators
class _Timed:
    """Times the population interface ``closure(thetas)`` (the naive evaluator's only one)."""

    def __init__(self, closure, device: torch.device):
        self.closure, self.device, self.seconds = closure, device, 0.0

    def _timed(self, fn, *args):
        _sync(self.device)
        start = time.perf_counter()
        out = fn(*args)
        _sync(self.device)
        self.seconds += time.perf_counter() - start
        return out

    def __call__(self, thetas):
        return self._timed(self.closure, thetas)


class _TimedBlocks(_Timed):
    """... and the structured ``block_losses`` hook (present only where the closure has it: the
    optimizer takes the fast path iff the closure has the attribute)."""

    def block_losses(self, block, coord_offset, delta_z):
        return self._timed(self.closure.block_losses, block, coord_offset, delta_z)


def _snapshot(opt: PolyStep) -> tuple[list[dict], list[torch.Tensor]]:
    """The optimizer's per-parameter state and the parameters (to time both evaluators from the
    same state without rebuilding the subspace, which costs the set-up time again)."""
    def copy(v):
        return v.detach().clone() if isinstance(v, torch.Tensor) else v
    return ([{k: copy(v) for k, v in opt.state[p].items()} for p in opt.params],
            [p.detach().clone() for p in opt.params])


def _restore(opt: PolyStep, snap: tuple[list[dict], list[torch.Tensor]]) -> None:
    states, values = snap
    with torch.no_grad():
        for p, st, v in zip(opt.params, states, values):
            opt.state[p].clear()
            opt.state[p].update({k: (x.clone() if isinstance(x, torch.Tensor) else x) for k, x in st.items()})
            p.copy_(v)


class _Evaluator:
    """One evaluator's closure, its own optimizer state (stepped alternately with the other's)
    and its accumulated times and memory peak."""

    def __init__(self, name: str, opt: PolyStep, model, x, y, dev: torch.device, state):
        self.name, self.dev, self.state = name, dev, state
        self.closure = EVALUATORS[name](model, Fn.cross_entropy, x, y, opt.params)
        self.timed = (_TimedBlocks if hasattr(self.closure, "block_losses") else _Timed)(self.closure, dev)
        self.step_s = self.cpu_s = 0.0
        self.peak_mb, self.rss_before_mb, self.peak_kind = 0.0, None, ""
        self.z_first: torch.Tensor | None = None

    def step(self, opt: PolyStep, timed: bool) -> None:
        _restore(opt, self.state)
        rss, self.peak_kind = _reset_peak(self.dev)
        if self.rss_before_mb is None:
            self.rss_before_mb = rss
        forward_before = self.timed.seconds
        _sync(self.dev)
        t0, c0 = time.perf_counter(), time.process_time()
        opt.step(self.timed)
        _sync(self.dev)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        self.peak_mb = max(self.peak_mb, _peak_mb(self.dev, self.peak_kind))
        if timed:
            self.step_s += wall
            self.cpu_s += cpu
        else:
            self.timed.seconds = forward_before  # warm-up steps do not count
        if self.z_first is None:
            self.z_first = opt.state[opt.params[0]]["z"].detach().clone()
        self.state = _snapshot(opt)

    def row(self, cfg: Config, evals: int) -> dict:
        step_s, fwd = self.step_s / cfg.timed_steps, self.timed.seconds / cfg.timed_steps
        row = {"step_s": step_s, "forward_s": fwd, "evals_per_s": evals / step_s,
               "overhead_ratio": step_s / fwd, "cpu_s": self.cpu_s / cfg.timed_steps,
               "peak_mb": self.peak_mb, "rss_before_mb": self.rss_before_mb,
               "peak_kind": self.peak_kind}
        stats = getattr(self.closure, "stats", None)
        if stats is not None:
            row["fast_path_share"] = stats["fast_candidates"] / max(1, sum(
                stats[k] for k in ("fast_candidates", "declined_candidates", "population_candidates")))
        return row


def _model(cfg: Config, kind: str, gen: torch.Generator, dev: torch.device):
    """``(model, input features, classes)``."""
    if kind == "mlp":
        return mlp(cfg.sizes, gen, device=dev), cfg.sizes[0], cfg.sizes[-1]
    if kind == "snn":
        return spiking_mlp(cfg.sizes, steps=cfg.snn_steps, generator=gen).to(dev), cfg.sizes[0], cfg.sizes[-1]
    if kind == "cnn":  # the ghosts zoo's digits CNN (8x8 images), eval mode
        return zoo.build("cnn", gen).to(dev).eval(), 64, 10
    raise ValueError(f"model must be 'mlp', 'snn' or 'cnn', got {kind!r}")


def _loss_agreement(opt: PolyStep, closures: dict, gen: torch.Generator) -> dict:
    """Both evaluators' losses of the same ``P x V`` random candidates (particles + N(0, 1) per
    coordinate, from the starting state): the fraction within 1e-5 relative and the largest
    relative difference.  Continuous models agree everywhere; a hard threshold (the SNN's spikes)
    may flip where a float32 pre-activation lies within rounding of it -- in either evaluator."""
    X = opt.particles()
    m = num_vertices(opt.config.polytope, X.shape[1])
    noise = torch.randn(X.shape[0], m, X.shape[1], generator=gen, device=X.device, dtype=X.dtype)
    probes = X[:, None, :] + noise
    fast = opt._cost_oracle(closures["fast"], X)(probes)
    naive = opt._cost_oracle(closures["naive"], X)(probes)
    rel = (fast - naive).abs() / naive.abs().clamp_min(1e-12)
    return {"loss_agreement": float((rel <= 1e-5).double().mean()), "loss_max_rel_diff": float(rel.max()),
            "loss_candidates": int(rel.numel())}


def _bench(cfg: Config, kind: str, rank: int, basis: str, ctx: RunContext) -> dict:
    if cfg.warmup_steps < 1 or cfg.timed_steps < 1:
        raise ValueError("warmup_steps and timed_steps must be >= 1 (the first warm-up step is the "
                         "agreement check)")
    if sorted(cfg.evaluators) != sorted(EVALUATORS):
        raise ValueError(f"evaluators must be an ordering of {sorted(EVALUATORS)}, got {cfg.evaluators}")
    dev = ctx.device
    model, n_in, n_classes = _model(cfg, kind, ctx.torch_generator("model", rank, device="cpu"), dev)
    gen = ctx.torch_generator("data", rank)
    x = torch.randn(cfg.batch_size, n_in, generator=gen, device=dev)
    y = torch.randint(0, n_classes, (cfg.batch_size,), generator=gen, device=dev)
    preload_torch_optim()  # the one-time import of torch._dynamo is not set-up time
    _, setup_peak_kind = _reset_peak(dev)  # this row's set-up peak, not an earlier row's
    _sync(dev)
    t0 = time.perf_counter()
    opt = PolyStep(model.parameters(), rank=rank, particle_dim=cfg.particle_dim, eps=0.5,
                   step_radius=2.0, probe_radius=1.0, chunk_size=cfg.chunk_size, basis=basis,
                   seed=ctx.child_seed("opt", rank) % 2**31)
    _sync(dev)
    setup_s = time.perf_counter() - t0
    setup_peak = _peak_mb(dev, setup_peak_kind)
    start = _snapshot(opt)
    runs = [_Evaluator(name, opt, model, x, y, dev, start) for name in cfg.evaluators]
    # step the evaluators alternately, each from its own state: both see the same machine load
    for i in range(cfg.warmup_steps + cfg.timed_steps):
        for ev in runs:
            ev.step(opt, timed=i >= cfg.warmup_steps)
    evals = opt.evals_per_step
    _restore(opt, start)
    agreement = _loss_agreement(opt, {ev.name: ev.closure for ev in runs},
                                ctx.torch_generator("agreement", rank))
    ctx.count_evals(evals * (cfg.warmup_steps + cfg.timed_steps + 1) * len(runs))
    evaluators = {ev.name: ev.row(cfg, evals) for ev in runs}
    z_first = {ev.name: ev.z_first for ev in runs}
    return {"model": kind, "rank": rank, "basis": basis, "n_params": sum(p.numel() for p in model.parameters()),
            "subspace_dim": opt.subspace.dim, "particles": opt.num_particles,
            "evals_per_step": evals, "setup_s": setup_s, "setup_peak_mb": setup_peak,
            "evaluators": evaluators,
            "speedup": evaluators["naive"]["step_s"] / evaluators["fast"]["step_s"],
            "max_abs_dz": float((z_first["fast"] - z_first["naive"]).abs().max()),
            **agreement,
            "device": str(dev), "threads": torch.get_num_threads()}


def run(cfg: Config, ctx: RunContext) -> dict:
    # one run, no checkpoints: every row's timings come from the same process and machine state
    rows = []
    for kind, rank, basis in ctx.bar(cfg.rows, desc="bench_step"):
        rows.append(_bench(cfg, kind, rank, basis, ctx))
        _release_heap()
    return {"sizes": list(cfg.sizes), "batch_size": cfg.batch_size, "snn_steps": cfg.snn_steps,
            "rows": rows}


# ---------------------------------------------------------------------------------- outputs
def _is_reference(results: dict, row: dict) -> bool:
    """The configuration the original code was timed on (784-128-10, batch 64, rank 4)."""
    return (tuple(results["sizes"]) == (784, 128, 10) and results["batch_size"] == 64
            and row["rank"] == 4 and row["model"] == "mlp")


def _lines(results: dict, r: dict) -> list[str]:
    f, n = r["evaluators"]["fast"], r["evaluators"]["naive"]
    what = r["basis"] if r["model"] == "mlp" else f"{r['basis']}, {r['model']}"
    tag = f"rank {r['rank']} ({what})"
    details = (f"{tag} details: step/forward fast {f['overhead_ratio']:.2f}, naive "
               f"{n['overhead_ratio']:.2f}; set-up s: {r['setup_s']:.1f}, set-up peak MB: "
               f"{r['setup_peak_mb']:.0f}; CPU s/step fast {f['cpu_s']:.2f}, naive {n['cpu_s']:.2f}; "
               f"max |z_fast - z_naive| after one step: {r['max_abs_dz']:.1e}; losses within 1e-5 "
               f"relative: {100 * r['loss_agreement']:.2f} % of {r['loss_candidates']:,} (largest "
               f"relative difference {r['loss_max_rel_diff']:.1e})")
    if _is_reference(results, r):
        details += (f"; speed-up over the original's {ORIGINAL_STEP_S:.0f} s: fast "
                    f"{ORIGINAL_STEP_S / f['step_s']:.0f}x, naive {ORIGINAL_STEP_S / n['step_s']:.0f}x")
    return [f"rank {r['rank']}: evaluations/s: {f['evals_per_s']:.0f}, step s: {f['step_s']:.2f}, "
            f"peak MB: {f['peak_mb']:.0f}, speed-up over naive: {r['speedup']:.1f}x "
            f"(basis {r['basis']}, set-up {r['setup_s']:.2f} s"
            + (")" if r["model"] == "mlp" else f", model {r['model']})"),
            f"{tag} naive: evaluations/s: {n['evals_per_s']:.0f}, step s: {n['step_s']:.2f}, "
            f"peak MB: {n['peak_mb']:.0f}",
            details]


def summary_lines(results: dict) -> list[str]:
    return ["  " + line for r in results["rows"] for line in _lines(results, r)]


@claim("polystep.bench_step_evals_per_step")
def _evals_per_step(results: dict) -> dict | None:
    """P·V·K of the claim's configuration (784-128-10 MLP, batch 64, rank 4): the first row that
    has it; None when the run has no such row (ci: a 64-32-10 MLP)."""
    r = next((row for row in results["rows"] if _is_reference(results, row)), None)
    if r is None:
        return None
    f = r["evaluators"]["fast"]
    return {"value": r["evals_per_step"],
            "detail": (f"MLP {'-'.join(map(str, results['sizes']))}, rank {r['rank']}, {r['basis']} "
                       f"basis; fast {f['evals_per_s']:,.0f} evals/s, {r['speedup']:.1f}x naive"),
            "evidence": {"n_params": r["n_params"], "subspace_dim": r["subspace_dim"],
                         "particles": r["particles"],
                         "evals_per_particle": r["evals_per_step"] / r["particles"],
                         "rank": r["rank"], "basis": r["basis"],
                         "fast_evals_per_s": f["evals_per_s"], "speedup_over_naive": r["speedup"]}}


def report_section(results: dict, meta: dict) -> str:
    rows = results["rows"]
    lines = [f"### bench_step: one PolyStep step, layers {'-'.join(map(str, results['sizes']))}, "
             f"batch {results['batch_size']} ({meta['device']}, {rows[0]['threads']} threads)",
             "",
             "| model | rank | basis | D | particles | evals/step | set-up s | set-up peak MB | evaluator "
             "| step s | CPU s / step | evals/s | step / forward | peak MB | speed-up |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        for name in ("naive", "fast"):
            e = r["evaluators"][name]
            speed = f"{r['speedup']:.1f}x" if name == "fast" else "1x"
            lines.append(f"| {r['model']} | {r['rank']} | {r['basis']} | {r['subspace_dim']:,} | {r['particles']:,} "
                         f"| {r['evals_per_step']:,} | {r['setup_s']:.2f} | {r['setup_peak_mb']:,.0f} "
                         f"| {name} | {e['step_s']:.2f} | {e['cpu_s']:.2f} | {e['evals_per_s']:,.0f} "
                         f"| {e['overhead_ratio']:.2f} | {e['peak_mb']:,.0f} | {speed} |")
    kind = rows[0]["evaluators"]["fast"]["peak_kind"]
    lines += ["", "naive: `population_closure` (per-candidate parameters, full forward); fast: "
              "`fast_population_closure` (shared prefix, linear response of the perturbed layer, "
              "batched suffix). Both step the same optimizer from the same state, alternately; the largest "
              "difference of the coordinates after one step is "
              + ", ".join(f"{r['max_abs_dz']:.1e} ({r['model']}, rank {r['rank']}, {r['basis']})"
                          for r in rows) + "; on the same random candidates their losses agree to 1e-5 "
              "relative for " + ", ".join(f"{100 * r['loss_agreement']:.2f} % ({r['model']}, rank "
                                          f"{r['rank']}, {r['basis']}; largest difference "
                                          f"{r['loss_max_rel_diff']:.1e})" for r in rows)
              + " of the candidates (a hard threshold -- the SNN's spikes -- can flip where a float32 "
              "pre-activation lies within rounding of it, in either evaluator; float64 agrees "
              "exactly: tests/polystep/test_nondiff.py).",
              "",
              "Bases: `qr` is the paper's dense per-layer projection (QR of a dense Gaussian); "
              "`kronecker` the structured opt-in `KroneckerBasis` (rows a_i (x) b_j, same D; a "
              "different subspace distribution: see `ablation_kronecker_basis` for its training "
              "behaviour).",
              "",
              f"Reference (issue #3): the original code needs about {ORIGINAL_STEP_S:.0f} s and "
              f"{ORIGINAL_PEAK_GB} GB for one rank-4 step on a 2-core machine. Command: "
              f"`{meta['command']}`. Peak MB: {kind} while stepping (model, bases and batch "
              f"included); set-up peak MB: the same high-water mark while the optimizer (its "
              f"subspace) is built. Models: `mlp` Linear-ReLU-Linear; `snn` the hard-LIF spiking "
              f"network of Table T1 (`polystep.nondiff.spiking_mlp`, same Linear layers, "
              f"{results.get('snn_steps', 15)} time steps); `cnn` the digits CNN of "
              f"`repro.tasks.zoo` (8x8 inputs, 13,706 parameters, whatever the layer sizes above)."]
    return "\n".join(lines)


def plot(results: dict):
    import matplotlib.pyplot as plt

    rows = results["rows"]
    fig, ax = plt.subplots(figsize=(6.4, 1.6 + 0.9 * len(rows)))
    labels, fwd, total, notes = [], [], [], []
    for r in rows:
        for name in ("naive", "fast"):
            e = r["evaluators"][name]
            labels.append(f"{r['model']}, rank {r['rank']}, {r['basis']}, {name}")
            fwd.append(e["forward_s"])
            total.append(e["step_s"])
            notes.append(f"  {e['evals_per_s']:,.0f} evals/s"
                         + (f" ({r['speedup']:.1f}x naive)" if name == "fast" else ""))
    fwd, total = np.array(fwd), np.array(total)
    ax.barh(labels, fwd, color="#0072B2", label="forward evaluations (closure)")
    ax.barh(labels, total - fwd, left=fwd, color="#E69F00", label="update overhead")
    for i, note in enumerate(notes):
        ax.text(total[i], i, note, va="center", fontsize=9)
    ax.set_xlim(0, 1.35 * float(total.max()))
    ax.invert_yaxis()
    ax.set(xlabel="seconds per step", title=f"One PolyStep step, layers {'-'.join(map(str, results['sizes']))}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.38), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    return fig
