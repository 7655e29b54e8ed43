"""Module-level cell functions for tests/repro/test_cells.py (a cell is sent to worker processes by
reference, so it must live in an importable module)."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def train_tiny(width: int, seed: int, ctx) -> dict:
    """A small least-squares fit by Adam: enough float reductions (matmuls) that a different
    summation order would show in the last bits, deterministic given the derived seed."""
    gen = ctx.torch_generator("tiny", width, seed, device="cpu")
    x = torch.randn(256, 32, generator=gen)
    w_true = torch.randn(32, width, generator=gen)
    y = torch.tanh(x @ w_true)
    model = torch.nn.Sequential(torch.nn.Linear(32, width), torch.nn.Tanh(), torch.nn.Linear(width, width))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.1)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(30):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
    ctx.count_evals(30)
    return {"loss": float(loss.detach()), "weight": model[0].weight.detach().clone(),
            "threads": torch.get_num_threads()}


def fail_if(key: str, bad: bool, ctx) -> dict:
    """Raises for ``bad`` cells, so a run has some cells that fail and some that land."""
    if bad:
        raise ArithmeticError(f"cell {key} failed on purpose")
    return {"key": key, "seed": ctx.child_seed("fail_if", key)}


def die_once(marker: str, value: int, ctx) -> dict:
    """Kills its worker process the first time it runs (the marker file says it has run)."""
    path = Path(marker)
    if not path.exists():
        path.write_text("died once")
        os._exit(17)
    return {"value": value}


#: call logs of :func:`fake_unit`, by name (in-process executors only): which units really ran
CALL_LOGS: dict[str, list] = {}


def fake_unit(log: str, u: int, n: int, ctx) -> dict:
    """The unit of the fake experiments of the infrastructure tests: logs that it ran, counts 10
    forward evaluations and draws from its own derived stream."""
    CALL_LOGS[log].append(u)
    ctx.count_evals(10)
    return {"x": ctx.numpy_rng("unit", u).normal(size=n)}
