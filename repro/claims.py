"""The claims registry ``paper/claims.toml`` and the verdict rules of the report.

One ``[[claim]]`` table per claim of either paper::

    id             "polystep.<name>" | "ghosts.<name>"
    paper          "polystep" | "ghosts"
    source         "Theorem 4.1", "Table 1", "abstract", ...
    statement      one sentence
    paper_value    number or string (what the paper reports)
    tolerance      number (optional; absent for qualitative claims; per element for list values)
    comparison     "abs" | "rel" | "at_least" | "at_most" | "qualitative"
                   (default: "abs" for a numeric paper_value with a tolerance, else "qualitative",
                   where the experiment's measurement states the verdict)
    experiment     the experiment id whose ``measure()`` reports this claim
    scale          "ci" | "cpu" | "paper": the smallest scale at which the claim is meaningful
    expected_verdict, note, test   optional: the digest's finding, an explanation, the pytest node
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .scale import SCALES

CLAIMS_FILE = Path(__file__).resolve().parent.parent / "paper" / "claims.toml"
PAPERS = ("polystep", "ghosts")
COMPARISONS = ("abs", "rel", "at_least", "at_most", "qualitative")
VERDICTS = ("reproduced", "reproduced qualitatively", "not reproduced", "refuted", "corrected",
            "not run at this scale", "not implemented yet")


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    source: str
    statement: str
    experiment: str
    scale: str
    paper_value: Any = None
    tolerance: float | None = None
    comparison: str = "qualitative"
    expected_verdict: str | None = None
    note: str = ""
    test: str = ""
    extra: dict = field(default_factory=dict)


def _parse(entry: dict, where: str) -> Claim:
    known = {f for f in Claim.__dataclass_fields__ if f != "extra"}
    missing = [k for k in ("id", "paper", "source", "statement", "experiment", "scale") if k not in entry]
    if missing:
        raise ValueError(f"{where}: claim {entry.get('id', '?')} lacks {missing}")
    args = {k: v for k, v in entry.items() if k in known}
    args["extra"] = {k: v for k, v in entry.items() if k not in known}
    if "comparison" not in args:  # numeric value + tolerance: compared; anything else: the
        # experiment states the verdict (e.g. list-valued claims, whose tolerance is per element)
        numeric = isinstance(args.get("paper_value"), (int, float)) and not isinstance(args.get("paper_value"), bool)
        args["comparison"] = "abs" if numeric and args.get("tolerance") is not None else "qualitative"
    claim = Claim(**args)
    if claim.paper not in PAPERS:
        raise ValueError(f"{where}: claim {claim.id}: paper must be one of {PAPERS}")
    if not claim.id.startswith(claim.paper + "."):
        raise ValueError(f"{where}: claim id {claim.id} must start with '{claim.paper}.'")
    if claim.scale not in SCALES:
        raise ValueError(f"{where}: claim {claim.id}: scale must be one of {SCALES}")
    if claim.comparison not in COMPARISONS:
        raise ValueError(f"{where}: claim {claim.id}: comparison must be one of {COMPARISONS}")
    if claim.comparison != "qualitative" and (claim.tolerance is None or
                                             not isinstance(claim.paper_value, (int, float))):
        raise ValueError(f"{where}: claim {claim.id}: a numeric comparison needs a numeric "
                         "paper_value and a tolerance")
    if claim.expected_verdict is not None and claim.expected_verdict not in VERDICTS:
        raise ValueError(f"{where}: claim {claim.id}: expected_verdict must be one of {VERDICTS}")
    return claim


def load_claims(path: Path = CLAIMS_FILE) -> dict[str, Claim]:
    """All claims of ``path`` by id (ids must be unique)."""
    data = tomllib.loads(Path(path).read_text())
    claims: dict[str, Claim] = {}
    for i, entry in enumerate(data.get("claim", [])):
        claim = _parse(entry, f"{path}[claim {i}]")
        if claim.id in claims:
            raise ValueError(f"{path}: duplicate claim id {claim.id}")
        claims[claim.id] = claim
    return claims


def verdict(claim: Claim, measurement: dict | None) -> str:
    """The verdict of ``claim`` given the experiment's measurement.

    An explicit ``measurement["verdict"]`` wins (refuted / corrected / qualitative claims); otherwise
    the numeric value is compared with the paper value by ``claim.comparison`` and ``claim.tolerance``.
    """
    if measurement is None:
        return "not run at this scale"
    if measurement.get("verdict"):
        if measurement["verdict"] not in VERDICTS:
            raise ValueError(f"claim {claim.id}: unknown verdict {measurement['verdict']!r}")
        return measurement["verdict"]
    value = measurement.get("value")
    if claim.comparison == "qualitative" or not isinstance(value, (int, float)) or \
            (isinstance(value, float) and math.isnan(value)):
        raise ValueError(f"claim {claim.id}: qualitative claims need an explicit verdict")
    pv, tol = float(claim.paper_value), float(claim.tolerance)
    ok = {
        "abs": abs(value - pv) <= tol,
        "rel": abs(value - pv) <= tol * abs(pv),
        "at_least": value >= pv - tol,
        "at_most": value <= pv + tol,
    }[claim.comparison]
    return "reproduced" if ok else "not reproduced"


def reachable(measurements: dict, scale: str, only: tuple[str, ...] | None = None) -> dict:
    """The measurements of claims whose registered scale a run at ``scale`` reaches (claims absent
    from the registry are kept), optionally restricted to the ids in ``only``."""
    from .scale import scale_rank

    claims = load_claims()
    rank = scale_rank(scale)
    return {cid: m for cid, m in measurements.items()
            if (only is None or cid in only)
            and (cid not in claims or scale_rank(claims[cid].scale) <= rank)}
