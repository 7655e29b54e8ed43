"""ghosts_fig4_fig5 at ci scale: computed zeros of random partition functions avoid the strip."""

from __future__ import annotations

import math

import numpy as np
import pytest

import repro.claims
from repro.claims import claims_of, get_claim, verdict
from repro.experiments import ghosts_fig4_fig5 as exp
from tests.experiments.ci import run_at_ci

PI = math.pi
C5, C4 = "ghosts.fig5_zeros_outside_strip", "ghosts.fig4_half_plane"


@pytest.fixture(scope="module")
def res():
    return run_at_ci("ghosts_fig4_fig5")["results"]


def test_every_zero_lies_outside_the_strip(res) -> None:
    near = res["nearest"]
    im = np.abs(np.concatenate([near["im"], res["lattice"]["im"]])) / PI
    assert im.size >= 400
    assert im.min() >= 1 - 1e-9                                  # Theorem 4.6
    assert res["rho_star_over_rho_a"].min() >= 1 - 1e-9          # rho* >= rho_a
    # binary instances: zeros (-delta +- i pi)/D exactly on the edge Delta_a |Im t| = pi
    binary = np.flatnonzero(res["n_classes"] == 2)
    assert binary.size >= 8
    on_edge = np.isin(near["instance"], binary)
    np.testing.assert_allclose(np.abs(near["im"][on_edge]) / PI, 1.0, atol=1e-12)
    # with n >= 3 classes the bound is generically strict
    assert np.median(res["rho_star_over_rho_a"][res["n_classes"] > 2]) > 1.2


def test_zeros_are_zeros_and_the_two_finders_agree(res) -> None:
    # F(t*) = 0 exactly; float64 roots leave a relative residual at the rounding level
    assert res["zero_residual"].max() < 1e-12
    assert res["lattice"]["residual"].max() < 1e-12
    assert res["lattice"]["nearest_rel_diff"].max() < 1e-8
    assert res["lattice"]["re"].size >= 20  # second-nearest zeros etc. of the integer-slope instances


def test_lemma_45_half_plane_bound(res) -> None:
    st = res["strip"]
    assert np.all(st["u"] < 1)
    assert st["bound_ratio"].min() >= 1 - 1e-12  # |F| >= cos(Delta_a |Im t|/2) sum |V_k|
    assert np.all(st["norm_abs_f"] > 0)
    # beyond the strip F gets closer to 0 than anywhere inside it
    assert res["outside"]["norm_abs_f"].min() < st["norm_abs_f"].min()
    # at every zero the arguments of the V_k fill an arc >= pi (no open half-plane holds them)
    assert res["zero_arc_over_pi"].min() >= 1 - 1e-9


def test_figure4_instance(res) -> None:
    f4 = res["fig4"]
    v_star, v_in = f4["v_star"], f4["v_in"]
    assert len(v_star) == 5
    assert abs(v_star.sum()) / np.abs(v_star).sum() < 1e-10           # F(t*) = 0
    assert abs(f4["s_star_im"]) >= PI * (1 - 1e-12)
    assert f4["s_in_im"] == pytest.approx(exp.IN_STRIP * PI)
    assert np.all(v_in.real > 0)  # common rotation removed: the half-plane is Re > 0
    np.testing.assert_allclose(np.abs(v_in), np.abs(v_star), rtol=1e-12)  # same Re t, same lengths


def test_measurements(res) -> None:
    ms = repro.claims.measure(exp.ID, res)
    assert set(ms) == set(claims_of(exp.ID)) == {C5, C4}
    for cid, m in ms.items():
        verdict(get_claim(cid), m)  # the registered rules evaluate on the evidence given
    m5, m4 = ms[C5], ms[C4]
    im = np.abs(np.concatenate([res["nearest"]["im"], res["lattice"]["im"]])) / PI
    assert m5["value"] == im.min() and m5["evidence"]["n_zeros"] == im.size
    # Theorem 4.6 is tight: the binary instances put the minimum on the edge, not above it
    assert m5["value"] == pytest.approx(1.0, abs=1e-12)
    assert m5["evidence"]["max_residual"] < 1e-12 and m5["evidence"]["max_finder_rel_diff"] < 1e-12
    assert m5["evidence"]["min_rho_star_over_rho_a"] == res["rho_star_over_rho_a"].min() >= 1 - 1e-9
    assert m4["value"] == res["strip"]["bound_ratio"].min() >= 1 - 1e-12
    assert m4["evidence"]["min_zero_arc_over_pi"] == pytest.approx(1.0, abs=1e-9)  # binary: exactly pi
    assert m4["evidence"]["min_norm_abs_f_outside"] < m4["evidence"]["min_norm_abs_f_strip"]
    assert verdict(get_claim(C5), m5) == verdict(get_claim(C4), m4) == "reproduced"


def test_rules_fail_on_a_zero_inside_the_strip_or_a_bad_zero(res) -> None:
    ms = repro.claims.measure(exp.ID, res)
    m5, m4 = ms[C5], ms[C4]
    assert verdict(get_claim(C5), {**m5, "value": 0.9}) == "not reproduced"
    assert verdict(get_claim(C5), {**m5, "evidence": {**m5["evidence"], "max_residual": 1e-3}}) == "not reproduced"
    assert verdict(get_claim(C4), {**m4, "value": 0.9}) == "not reproduced"
    assert verdict(get_claim(C4), {**m4, "evidence": {**m4["evidence"], "min_zero_arc_over_pi": 0.9}}) == "not reproduced"


def test_figures(res) -> None:
    figs = exp.plot(res)
    assert set(figs) == {"fig4", "fig5"}
    assert len(figs["fig4"].axes) == 3
