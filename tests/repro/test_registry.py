"""Meta-tests: every experiment has a notebook, a test, claim ids; claims and experiments agree."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro import registry
from repro.claims import load_claims
from repro.scale import SCALES

ROOT = Path(__file__).resolve().parents[2]
IDS = registry.experiment_ids()


def test_there_are_experiments() -> None:
    assert "quickstart_digits" in IDS and "bench_step" in IDS


@pytest.mark.parametrize("eid", IDS)
def test_experiment_has_notebook_test_configs_and_claims(eid: str) -> None:
    module = registry.get(eid)
    assert (ROOT / "notebooks" / f"{eid}.py").exists(), f"notebooks/{eid}.py missing"
    assert (ROOT / "tests" / "experiments" / f"test_{eid}.py").exists(), f"tests/experiments/test_{eid}.py missing"
    assert set(module.CONFIGS) == set(SCALES), f"{eid} must define configs for {SCALES}"
    assert module.CLAIMS, f"{eid} declares no claim ids"
    claims = load_claims()
    for cid in module.CLAIMS:
        assert cid in claims, f"{eid} cites {cid}, absent from paper/claims.toml"
        assert claims[cid].experiment == eid, f"{cid} names experiment {claims[cid].experiment}, not {eid}"


def test_every_claim_of_an_implemented_experiment_is_declared_by_it() -> None:
    for claim in load_claims().values():
        if claim.experiment in IDS:
            assert claim.id in registry.get(claim.experiment).CLAIMS, \
                f"{claim.id} names {claim.experiment}, which does not list it in CLAIMS"


def test_claims_cover_both_papers() -> None:
    papers = {c.paper for c in load_claims().values()}
    assert papers == {"polystep", "ghosts"}


def test_unknown_experiment_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown experiment 'nope'"):
        registry.get("nope")


def test_every_test_pointer_in_the_registry_resolves() -> None:
    """A claim's ``test`` names pytest nodes (``path::name``, several separated by commas or
    spaces): each file exists and defines the test function."""
    import re

    checked = 0
    for claim in load_claims().values():
        for node in filter(None, re.split(r"[,;\s]+", claim.test.strip())):
            path = ROOT / node.split("::")[0]
            assert path.is_file(), f"{claim.id}: test file {path} does not exist"
            if "::" in node:
                name = node.split("::")[-1].split("[")[0]
                assert re.search(rf"^\s*def {re.escape(name)}\(", path.read_text(), flags=re.M), \
                    f"{claim.id}: {path.name} defines no test {name}"
            checked += 1
    assert checked > 0
