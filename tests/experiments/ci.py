"""Shared helpers of the experiment tests: run an experiment at ci scale, the registry's claim ids."""

from __future__ import annotations

from repro import runner
from repro.claims import load_claims


def run_at_ci(experiment_id: str, *, force: bool = False) -> dict:
    """``runner.run_experiment`` at ci scale on the CPU with seed 0 (results go to the test suite's
    temporary folder, tests/conftest.py)."""
    return runner.run_experiment(experiment_id, scale="ci", device="cpu", seed=0, force=force)


def registry_claim_ids(experiment_id: str) -> set[str]:
    """The ids of ``paper/claims.toml`` whose ``experiment`` is ``experiment_id``."""
    return {cid for cid, c in load_claims().items() if c.experiment == experiment_id}


def measured_at_ci(experiment_id: str, results: dict, expect: set[str] | None = None) -> dict:
    """The experiment's measurements of a ci run, checked: they cover ``expect`` (default every
    registered claim of the experiment), carry no verdict, and every claim's registered rule
    evaluates on them (the evidence it names exists); ci is below every registered scale of these
    claims or equal to it, and :func:`repro.claims.judge` says so."""
    from repro import claims

    measured = claims.measure(experiment_id, results)
    assert set(measured) == (set(claims.claims_of(experiment_id)) if expect is None else expect)
    for cid, m in measured.items():
        c = claims.get_claim(cid)
        said = claims.verdict(c, m)
        assert said in (c.pass_verdict, c.fail_verdict, "not reproduced"), (cid, said)
        j = claims.judge(c, m, "ci")
        assert j.verdict == (said if c.scale == "ci" else claims.INDICATIVE) and j.rule_verdict == said
    return measured
