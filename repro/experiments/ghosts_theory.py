"""Ghosts of softmax: every theorem-level claim recomputed (exact radii, zeros, bounds, errata).

The numbers come from :func:`repro.experiments._ghosts_theory_claims.measure_theory_claims` (float64 + mpmath; the
same functions the tests in ``tests/theory`` assert), computed once in :func:`run`.  Each claim's
measuring function lives in :mod:`repro.experiments._ghosts_theory_claims` (``@_claim("<id>")``); it is registered here
with :func:`repro.claims.claim` as the origin of a reader of the run's results, so
``repro.claims.source_location(id)`` points at it.  The verdicts come from the rules in
paper/claims.toml: the paper's errors (Eq. 13 sign, the top-2 value for n > 2, Proposition A1.1,
the KL direction and constant, the Cauchy estimate, the +129% arithmetic) come out refuted or
corrected there.  The experiment is pure mathematics, so the three scales are identical.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from repro.claims import claim, claims_of, get_claim
from repro.context import RunContext
from repro.experiments._ghosts_theory_claims import THEORY_MEASURES, measure_theory_claims

ID = "ghosts_theory"
TITLE = "Ghosts of softmax: theorems, exact radii and the paper's errata, recomputed"
CLAIMS = claims_of(ID)


@dataclass(frozen=True)
class Config:
    """No knobs: every check runs at its exact size (a few seconds)."""

    exact: bool = True


CONFIGS = {"ci": Config(), "cpu": Config(), "paper": Config()}


def run(cfg: Config, ctx: RunContext) -> dict:
    return {"claims": measure_theory_claims()}


def reader_for(cid: str) -> Callable[[dict], dict | None]:
    """The measuring function of ``cid``: its measurement from :func:`run`'s results."""

    def read(results: dict) -> dict | None:
        m = results["claims"].get(cid)
        return None if m is None else dict(m)

    read.__qualname__ = read.__name__ = f"read_{cid.replace('.', '_')}"
    return read


for _cid, _fn in THEORY_MEASURES.items():
    claim(_cid, origin=_fn)(reader_for(_cid))


def _shown(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(v) for v in value) + "]"
    return str(value)


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def table(results: dict) -> str:
    """Every claim with its recomputed value and how it was computed (the verdicts, from the
    registry's rules, are in paper/REPORT.md and ``polystep-repro claim ID``)."""
    lines = ["| claim | source | recomputed | how |", "|---|---|---|---|"]
    for cid, m in results["claims"].items():
        lines.append(f"| `{cid}` | {get_claim(cid).source} | {_shown(m['value'])} "
                     f"| {_cell(m.get('detail', ''))} |")
    return "\n".join(lines)


def summary_lines(results: dict) -> list[str]:
    return [f"  {len(results['claims'])} theory claims recomputed; verdicts: polystep-repro claim <id>"]
