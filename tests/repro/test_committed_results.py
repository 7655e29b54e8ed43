"""Every committed number is what the current code gives: the sidecars in figures/cpu and
figures/paper were made by the code in this tree (same code fingerprint, same configuration), on a
clean checkout, and hold measurements (never verdicts) for the claims of their experiment."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repro import claims, registry, report, runner
from repro.fingerprint import code_fingerprint

ROOT = Path(__file__).resolve().parents[2]
SIDECARS = sorted(p for scale in report.REPORT_SCALES for p in (ROOT / "figures" / scale).glob("*.json")
                  if p.stem in registry.experiment_ids())


def test_there_are_committed_sidecars() -> None:
    assert len(SIDECARS) >= 15


@pytest.mark.parametrize("path", SIDECARS, ids=[f"{p.parent.name}/{p.stem}" for p in SIDECARS])
def test_committed_sidecar_is_current(path: Path) -> None:
    found = json.loads(path.read_text())
    meta, eid = found["meta"], path.stem
    assert meta["experiment"] == eid and meta["scale"] == path.parent.name
    module = registry.get(eid)
    cfg = registry.config(eid, meta["scale"])
    assert meta["config_hash"] == runner.config_hash(cfg, getattr(module, "VERSION", 1)), \
        f"{path}: made with another configuration; rerun `{runner.command_line(eid, meta['scale'], 0)}`"
    assert meta["code_fingerprint"] == code_fingerprint(eid), \
        (f"{path}: made by other code than this tree's (the experiment or what it imports changed); "
         f"rerun `{runner.command_line(eid, meta['scale'], 0)}` on a clean checkout and commit its outputs")
    assert not report.made_from_dirty_tree(meta), f"{path}: made from a dirty working tree"
    for cid, m in found["measurements"].items():
        claims.check_measurement(cid, m)
    assert set(found["measurements"]) <= set(claims.claims_of(eid))
