"""ghosts_fig9 at ci scale: temperature fingerprint, rho_T = pi T / Delta_a."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repro import registry
from repro.claims import VERDICTS
from tests.experiments.ci import run_at_ci


@pytest.fixture(scope="module")
def stored():
    return run_at_ci("ghosts_fig9")


def test_six_temperatures_with_consistent_radii(stored) -> None:
    runs = stored["results"]["runs"]
    assert list(runs) == ["0.25", "0.5", "1", "2", "4", "8"]
    for key, units in runs.items():
        for u in units:
            T = float(key)
            assert u["rho_T"] == pytest.approx(math.pi * T / u["delta_a"])
            np.testing.assert_allclose(u["r_T"], u["tau"] * u["delta_a"] / (math.pi * T))
            # central finite differences agree with the JVP on the raw logits
            assert u["delta_a"] == pytest.approx(u["delta_a_jvp"], rel=1e-3)


def test_descent_step_dips_then_fails(stored) -> None:
    for units in stored["results"]["runs"].values():
        for u in units:
            assert u["loss_ratio"][0] == pytest.approx(1.0, abs=1e-3)
            assert np.nanmin(u["loss_ratio"]) < 1.0           # small descent steps help
            assert np.isfinite(u["onset_tau"]) and u["onset_tau"] > 0   # large ones double the loss


def test_measurements_cover_exactly_the_claims(stored) -> None:
    module = registry.get("ghosts_fig9")
    m = module.measure(stored["results"])
    assert set(m) == set(module.CLAIMS)
    assert all(v["verdict"] in VERDICTS for v in m.values())
    s = module.summarize(stored["results"])
    assert s["raw"]["n"] == 6 and s["normalized"]["std_log10"] >= 0
