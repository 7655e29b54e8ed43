"""f1_method_overview at ci scale: the barycentric step stays within r_s and has the figure's three
temperature limits; the same facts recomputed here by hand on a small example (closed-form softmax
weights and the orthoplex), independently of the experiment's reductions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polystep import functional as F
from repro import claims as C
from repro.experiments import f1_method_overview as exp
from tests.experiments.ci import measured_at_ci, registry_claim_ids, run_at_ci

CLAIM_IDS = ("polystep.f1_barycentric_within_radius", "polystep.f1_temperature_limits")


@pytest.fixture(scope="module")
def stored():
    return run_at_ci(exp.ID, force=True)


@pytest.fixture(scope="module")
def measured(stored):
    return measured_at_ci(exp.ID, stored["results"])


def test_claims_are_the_registry_entries() -> None:
    assert set(exp.CLAIMS) == registry_claim_ids(exp.ID) == set(CLAIM_IDS)
    for cid in CLAIM_IDS:
        assert C.measuring_function(cid).__module__ == exp.__name__


def _hand_step(x, costs, eps, r_s, directions):
    """Eq. 7 by hand: w = softmax(-C/eps) (shifted by the row minimum), x' = x + r_s sum_v w_v d_v."""
    z = -(costs - costs.min(dim=1, keepdim=True).values) / eps
    w = torch.exp(z) / torch.exp(z).sum(dim=1, keepdim=True)
    return x + r_s * torch.einsum("pv,pvd->pd", w, directions)


def test_step_is_eq7_by_hand() -> None:
    # d = 3: orthoplex of 6 unit vertices, rotated per particle; the step equals the closed form
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(5, 3, generator=gen, dtype=torch.float64)
    conf = F.PolyStepConfig(eps=0.3, step_radius=0.7, probe_radius=0.2, radius_mode="absolute")
    prop = F.propose(x, F.init(), conf, gen)
    assert prop.directions.shape == (5, 6, 3)
    np.testing.assert_allclose(prop.directions.norm(dim=-1).numpy(), 1.0, rtol=1e-14)  # unit vertices
    costs = (prop.probes ** 2).sum(-1)
    new, _, info = F.update(x, prop, costs, F.init(), conf)
    torch.testing.assert_close(new, _hand_step(x, costs, 0.3, 0.7, prop.directions), rtol=1e-13, atol=1e-13)
    assert float(info.displacement.max()) <= 0.7 * (1 + 1e-12)  # convex combination of unit vectors


def test_orthoplex_central_difference_identity() -> None:
    # sum_v (g.u_v) u_v = 2 g for the orthoplex {+-e_j}: the factor behind -(r_s r_p)/(2 d eps) grad L
    d = 4
    u = torch.cat([torch.eye(d), -torch.eye(d)]).double()
    g = torch.tensor([0.3, -1.2, 2.0, 0.5], dtype=torch.float64)
    torch.testing.assert_close((u @ g) @ u, 2 * g)


def test_within_radius(measured, stored) -> None:
    m = measured["polystep.f1_barycentric_within_radius"]
    assert m["value"] <= 1 + 1e-12 and m["evidence"]["min_ratio"] >= 0
    # eps -> 0 lands on a vertex: the maximum ratio is (within rounding) exactly 1
    assert m["value"] >= 1 - 1e-12
    cfg = exp.CONFIGS["ci"]
    assert m["evidence"]["n_steps"] == cfg.problems * len(cfg.dims) * len(cfg.sweep_eps) * 2 * 2


def test_temperature_limits(measured) -> None:
    m = measured["polystep.f1_temperature_limits"]
    ev = m["evidence"]
    assert ev["greedy_max_error"] <= 1e-12 and ev["hot_max_move"] <= 1e-6
    assert ev["gradient_min_cosine"] >= 0.9999
    rel = ev["gradient_rel_error_per_eps"]
    assert rel[0] > rel[1] > rel[2] == m["value"]  # the error shrinks as eps grows (first order in 1/eps)
    assert 0.5 < np.log10(rel[0] / rel[2]) / 2 < 1.5  # slope ~ -1 per decade (two decades of eps)


def test_verdicts(measured) -> None:
    for cid, m in measured.items():
        assert C.judge(C.get_claim(cid), m, "ci").verdict == "reproduced", (cid, m["detail"])


def test_plot(stored) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig = exp.plot(stored["results"])
    assert len(fig.axes) == 2
    plt.close(fig)
