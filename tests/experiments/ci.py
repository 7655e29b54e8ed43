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
