"""Benchmark: the cost of one PolyStep step on an MLP, and how much of it is forward evaluation.

The reference configuration is the paper's SNN/MNIST-sized MLP 784-128-10 (101,770 parameters) at
batch 64 with the per-layer (hybrid) subspace of rank 4: ``D = 4,338`` coordinates, ``P = 543``
particles of ``d_p = 8``, orthoplex ``V = 16``, ``K = 1``, i.e. ``8,688`` forward evaluations per
step (digest section 2.13).  Inputs are random (the step's cost does not depend on the data).

Reported per configuration: subspace set-up time, evaluations per second, seconds per step, the
ratio ``step time / time spent inside the forward evaluations`` (the overhead of the update
itself: populations, transport, barycentre), and the peak memory (process RSS on CPU, allocator
peak on CUDA).  For comparison the issue's measurement of the original code on the same 2-core
machine is quoted: about 138 s and 7.4 GB for one rank-4 step (~63 evaluations/s).
"""

from __future__ import annotations

import resource
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as Fn

from polystep.evaluation import population_closure
from polystep.optim import PolyStep
from repro.context import RunContext
from repro.tasks.models import mlp

ID = "bench_step"
TITLE = "Benchmark: one PolyStep step on the 784-128-10 MLP (evaluations/s, overhead, memory)"
CLAIMS = ("polystep.bench_step_evals_per_step",)

ORIGINAL_STEP_S, ORIGINAL_PEAK_GB = 138.0, 7.4  # issue #3: original code, rank 4, this machine class


@dataclass(frozen=True)
class Config:
    sizes: tuple[int, ...] = (784, 128, 10)
    ranks: tuple[int, ...] = (4,)
    batch_size: int = 64
    particle_dim: int = 8
    warmup_steps: int = 1
    timed_steps: int = 2
    chunk_size: int = 1024
    basis: str = "qr"


CONFIGS = {
    "ci": Config(sizes=(64, 32, 10), ranks=(4,), timed_steps=1),
    "cpu": Config(ranks=(4,), warmup_steps=1, timed_steps=1),
    "paper": Config(ranks=(4, 8), warmup_steps=1, timed_steps=3),
}


def _peak_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _bench(cfg: Config, rank: int, ctx: RunContext) -> dict:
    dev = ctx.device
    model = mlp(cfg.sizes, ctx.torch_generator("model", rank, device="cpu"), device=dev)
    gen = ctx.torch_generator("data", rank)
    x = torch.randn(cfg.batch_size, cfg.sizes[0], generator=gen, device=dev)
    y = torch.randint(0, cfg.sizes[-1], (cfg.batch_size,), generator=gen, device=dev)
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
    _sync(dev)
    t0 = time.perf_counter()
    opt = PolyStep(model.parameters(), rank=rank, particle_dim=cfg.particle_dim, eps=0.5,
                   step_radius=2.0, probe_radius=1.0, chunk_size=cfg.chunk_size, basis=cfg.basis,
                   seed=ctx.child_seed("opt", rank) % 2**31)
    _sync(dev)
    setup_s = time.perf_counter() - t0
    closure = population_closure(model, Fn.cross_entropy, x, y, opt.params)
    forward_s = [0.0]

    def timed_closure(thetas):
        _sync(dev)
        start = time.perf_counter()
        out = closure(thetas)
        _sync(dev)
        forward_s[0] += time.perf_counter() - start
        return out

    for _ in range(cfg.warmup_steps):
        opt.step(timed_closure)
    forward_s[0] = 0.0
    _sync(dev)
    t0 = time.perf_counter()
    for _ in range(cfg.timed_steps):
        opt.step(timed_closure)
    _sync(dev)
    step_s = (time.perf_counter() - t0) / cfg.timed_steps
    fwd = forward_s[0] / cfg.timed_steps
    evals = opt.evals_per_step
    ctx.count_evals(evals * (cfg.warmup_steps + cfg.timed_steps))
    return {"rank": rank, "n_params": sum(p.numel() for p in model.parameters()),
            "subspace_dim": opt.subspace.dim, "particles": opt.num_particles,
            "evals_per_step": evals, "setup_s": setup_s, "step_s": step_s, "forward_s": fwd,
            "evals_per_s": evals / step_s, "overhead_ratio": step_s / fwd,
            "peak_mb": _peak_mb(dev), "device": str(dev), "threads": torch.get_num_threads()}


def run(cfg: Config, ctx: RunContext) -> dict:
    rows = [_bench(cfg, r, ctx) for r in cfg.ranks]
    return {"sizes": list(cfg.sizes), "batch_size": cfg.batch_size, "rows": rows}


def _is_reference(results: dict, row: dict) -> bool:
    """The configuration the original code was timed on (784-128-10, batch 64, rank 4)."""
    return tuple(results["sizes"]) == (784, 128, 10) and results["batch_size"] == 64 and row["rank"] == 4


def _line(results: dict, r: dict) -> str:
    line = (f"rank {r['rank']}: evaluations/s: {r['evals_per_s']:.0f}, step s: {r['step_s']:.2f}, "
            f"peak MB: {r['peak_mb']:.0f}, step/forward: {r['overhead_ratio']:.2f}, "
            f"setup s: {r['setup_s']:.1f}")
    if _is_reference(results, r):
        line += f", speed-up over the original's {ORIGINAL_STEP_S:.0f} s: {ORIGINAL_STEP_S / r['step_s']:.1f}x"
    return line


def summary_lines(results: dict) -> list[str]:
    return ["  " + _line(results, r) for r in results["rows"]]


def measure(results: dict) -> dict:
    r = results["rows"][0]
    ok = _is_reference(results, r)
    return {"polystep.bench_step_evals_per_step": {
        "value": r["evals_per_step"],
        "detail": f"MLP {'-'.join(map(str, results['sizes']))}, rank {r['rank']}",
        **({} if ok else {"verdict": "not run at this scale"})}}


def report_section(results: dict, meta: dict) -> str:
    lines = [f"### bench_step: one PolyStep step, MLP {'-'.join(map(str, results['sizes']))}, "
             f"batch {results['batch_size']} ({meta['device']}, {results['rows'][0]['threads']} threads)",
             "",
             "| rank | D | particles | evals/step | set-up s | step s | evals/s | step / forward | peak MB |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        lines.append(f"| {r['rank']} | {r['subspace_dim']:,} | {r['particles']:,} | {r['evals_per_step']:,} "
                     f"| {r['setup_s']:.1f} | {r['step_s']:.2f} | {r['evals_per_s']:,.0f} "
                     f"| {r['overhead_ratio']:.2f} | {r['peak_mb']:,.0f} |")
    lines += ["", f"Reference (issue #3): the original code needs about {ORIGINAL_STEP_S:.0f} s and "
              f"{ORIGINAL_PEAK_GB} GB for one rank-4 step on a 2-core machine. Command: "
              f"`{meta['command']}`. Peak MB on CPU is the process's peak RSS (set-up included)."]
    return "\n".join(lines)


def plot(results: dict):
    import matplotlib.pyplot as plt

    rows = results["rows"]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    labels = [f"rank {r['rank']}" for r in rows]
    fwd = np.array([r["forward_s"] for r in rows])
    total = np.array([r["step_s"] for r in rows])
    ax.barh(labels, fwd, color="#0072B2", label="forward evaluations")
    ax.barh(labels, total - fwd, left=fwd, color="#E69F00", label="update overhead")
    for i, r in enumerate(rows):
        ax.text(total[i], i, f"  {r['evals_per_s']:,.0f} evals/s", va="center", fontsize=9)
    ax.set(xlabel="seconds per step", title=f"One PolyStep step, MLP {'-'.join(map(str, results['sizes']))}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    return fig
