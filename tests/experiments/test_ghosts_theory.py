"""ghosts_theory: every theory claim is measured, with the verdicts the digest's checks predict."""

from __future__ import annotations

from repro.claims import load_claims
from repro.experiments import ghosts_theory
from tests.experiments.ci import run_at_ci


def test_every_theory_claim_is_measured_with_its_expected_verdict() -> None:
    stored = run_at_ci("ghosts_theory")
    measured = ghosts_theory.measure(stored["results"])
    claims = load_claims()
    assert set(measured) == set(ghosts_theory.CLAIMS) and len(measured) >= 30
    for cid, m in measured.items():
        expected = claims[cid].expected_verdict or "reproduced"
        assert m["verdict"] == expected, (cid, m)
    assert "| `ghosts.thm43_binary_exact_radius` |" in ghosts_theory.table(stored["results"])
