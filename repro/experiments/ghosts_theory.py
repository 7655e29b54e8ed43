"""Ghosts of softmax: every theorem-level claim recomputed (exact radii, zeros, bounds, errata).

The numbers come from :func:`theory.ghosts_claims.measure_theory_claims` (float64 + mpmath; the
same functions the tests in ``tests/theory`` assert).  The experiment is pure mathematics, so the
three scales are identical.  The table lists every claim with its recomputed value and verdict;
the paper's errors (Eq. 13 sign, the top-2 value for n > 2, Proposition A1.1, the KL direction and
constant, the Hessian-mismatch factor) appear as refuted or corrected claims.
"""

from __future__ import annotations

from dataclasses import dataclass

from repro.claims import load_claims
from repro.context import RunContext

ID = "ghosts_theory"
TITLE = "Ghosts of softmax: theorems, exact radii and the paper's errata, recomputed"
CLAIMS = tuple(c.id for c in load_claims().values() if c.experiment == ID)


@dataclass(frozen=True)
class Config:
    """No knobs: every check runs at its exact size (a few seconds)."""

    exact: bool = True


CONFIGS = {"ci": Config(), "cpu": Config(), "paper": Config()}


def run(cfg: Config, ctx: RunContext) -> dict:
    from theory.ghosts_claims import measure_theory_claims

    return {"claims": measure_theory_claims()}


def measure(results: dict) -> dict:
    return {cid: m for cid, m in results["claims"].items() if cid in CLAIMS}


def table(results: dict) -> str:
    claims = load_claims()
    lines = ["| claim | source | recomputed | verdict | how |", "|---|---|---|---|---|"]
    for cid, m in results["claims"].items():
        value = m["value"]
        shown = f"{value:.6g}" if isinstance(value, float) else str(value)
        lines.append(f"| `{cid}` | {claims[cid].source if cid in claims else '?'} | {shown} "
                     f"| {m['verdict']} | {m.get('detail', '')} |")
    return "\n".join(lines)


def summary_lines(results: dict) -> list[str]:
    from collections import Counter

    counts = Counter(m["verdict"] for m in results["claims"].values())
    return ["  " + ", ".join(f"{v}: {n}" for v, n in sorted(counts.items()))]
