"""ghosts_fig9 at ci scale: temperature fingerprint, rho_T = pi T / Delta_a."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repro.experiments import ghosts_fig9
from tests.experiments.ci import measured_at_ci, run_at_ci

ID = "ghosts_fig9"


@pytest.fixture(scope="module")
def stored():
    return run_at_ci(ID)


@pytest.fixture(scope="module")
def measured(stored):
    return measured_at_ci(ID, stored["results"])  # every claim, every rule evaluates


def test_six_temperatures_with_consistent_radii(stored) -> None:
    runs = stored["results"]["runs"]
    assert list(runs) == ["0.25", "0.5", "1", "2", "4", "8"]
    for key, units in runs.items():
        for u in units:
            T = float(key)
            assert u["rho_T"] == pytest.approx(math.pi * T / u["delta_a"])
            np.testing.assert_allclose(u["r_T"], u["tau"] * u["delta_a"] / (math.pi * T))
            assert u["onset_r"] == pytest.approx(u["onset_tau"] * u["delta_a"] / (math.pi * T))
            # central finite differences agree with the JVP on the raw logits
            assert u["delta_a"] == pytest.approx(u["delta_a_jvp"], rel=1e-3)


def test_descent_step_dips_then_fails(stored) -> None:
    for units in stored["results"]["runs"].values():
        for u in units:
            assert u["loss_ratio"][0] == pytest.approx(1.0, abs=1e-3)
            assert np.nanmin(u["loss_ratio"]) < 1.0           # small descent steps help
            assert np.isfinite(u["onset_tau"]) and u["onset_tau"] > 0   # large ones double the loss


def test_every_claim_measured_and_every_rule_evaluates(measured) -> None:
    assert set(measured) == set(ghosts_fig9.CLAIMS)


def test_spreads_are_those_of_the_per_temperature_onsets(stored, measured) -> None:
    """The spread metrics are recomputed from the runs: per T the median onset over seeds, then the
    population std (and of log10, and std/mean) across T, raw tau and r_T."""
    runs = stored["results"]["runs"]
    raw = np.array([np.median([u["onset_tau"] for u in runs[k]]) for k in runs])
    norm = np.array([np.median([u["onset_r"] for u in runs[k]]) for k in runs])
    ev = measured["ghosts.fig9_collapse_std_normalized"]["evidence"]
    raw_ev = measured["ghosts.fig9_collapse_std_raw"]["evidence"]
    assert {k: raw_ev[k] for k in ev} == ev  # both claims show the same spread numbers
    for name, o in (("raw", raw), ("normalized", norm)):
        assert ev[f"{name}_std"] == pytest.approx(o.std())
        assert ev[f"{name}_std_log10"] == pytest.approx(np.log10(o).std())
        assert ev[f"{name}_cv"] == pytest.approx(o.std() / o.mean())
    assert ev["shrink_std_log10"] == pytest.approx(np.log10(raw).std() / np.log10(norm).std())
    assert ev["shrink_cv"] == pytest.approx((raw.std() / raw.mean()) / (norm.std() / norm.mean()))
    assert measured["ghosts.fig9_collapse_std_raw"]["value"] == pytest.approx(raw.std())
    assert measured["ghosts.fig9_curves_align_at_r1"]["evidence"]["onset_r"] == pytest.approx(list(norm))


def test_losses_double_only_beyond_the_radius(measured) -> None:
    """In r_T units every temperature's loss doubles only past r_T = 1 (the radius), within a small
    factor of the other temperatures'."""
    ev = measured["ghosts.fig9_curves_align_at_r1"]["evidence"]
    onsets = np.asarray(ev["onset_r"])
    assert len(onsets) == 6 and np.all(np.isfinite(onsets)) and np.all(onsets > 1)
    assert ev["max_over_min"] == pytest.approx(onsets.max() / onsets.min())


def test_raw_delta_a_grows_with_temperature(measured) -> None:
    """Why the raw onsets spread so little: nets trained at high T learn larger raw logit spreads, so
    rho_T = pi T / Delta_a varies much less across temperatures than T does."""
    ev = measured["ghosts.fig9_collapse_std_raw"]["evidence"]
    temps = np.asarray(ghosts_fig9.CONFIGS["ci"].temperatures)
    delta, rho = np.asarray(ev["delta_a"]), np.asarray(ev["rho_T"])
    assert delta[-1] > delta[0] and np.corrcoef(np.log(temps), np.log(delta))[0, 1] > 0
    assert rho.max() / rho.min() < temps.max() / temps.min()
