"""ghosts_fig6 at ci scale: the exact controller keeps r <= 1 and survives the spike, plain Adam does not."""

from __future__ import annotations

import numpy as np
import pytest

from repro.experiments import ghosts_fig6
from tests.experiments.ci import run_at_ci


@pytest.fixture(scope="module")
def stored():
    return run_at_ci("ghosts_fig6")


def test_schedule_and_layout(stored) -> None:
    res = stored["results"]
    cfg = ghosts_fig6.CONFIGS["ci"]
    assert [r["eta0"] for r in res["rows"]] == list(cfg.eta0s)
    for row in res["rows"]:
        for m in ghosts_fig6.METHODS:
            lr = row[m]["lr"]
            assert lr.shape == (len(cfg.seeds), cfg.steps)
            assert np.allclose(lr[:, :cfg.spike_step], row["eta0"])
            assert np.allclose(lr[:, cfg.spike_step:], row["eta0"] * cfg.spike_mult)  # held, not one step
            assert np.all(row[m]["stopped_at"] == -1)


def test_controller_caps_every_step_at_rho_a(stored) -> None:
    for row in stored["results"]["rows"]:
        c = row["controller"]
        r = c["tau"] / c["rho_a"]
        assert np.all(np.isfinite(r)) and np.all(r <= 1 + 1e-6), r.max()
        # after the spike the cap binds: the step sits on the radius
        spike = stored["results"]["spike_step"]
        assert np.median(r[:, spike:]) > 0.99


def test_plain_adam_overshoots_and_collapses_at_lr_10(stored) -> None:
    res = stored["results"]
    spike = res["spike_step"]
    row = next(r for r in res["rows"] if r["eta0"] == 1e-2)
    plain, ctrl = row["plain"], row["controller"]
    assert np.all(plain["tau"][:, spike] / plain["rho_a"][:, spike] > 10)  # r >> 1 at the spiked step
    assert np.all(plain["final_test_acc"] < 0.3)          # near chance
    assert np.all(ctrl["final_test_acc"] > 0.8)           # the controller survives
    assert np.all(ctrl["final_test_acc"] > plain["final_test_acc"] + 0.5)


def test_measure_reports_every_claim(stored) -> None:
    m = ghosts_fig6.measure(stored["results"])
    assert set(m) == set(ghosts_fig6.CLAIMS)
    assert all(v["verdict"] == "not run at this scale" for v in m.values())  # ci is a reduced run
    assert "| 0.01 | 10 | plain Adam |" in ghosts_fig6.table(stored["results"])
