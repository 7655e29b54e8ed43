"""ghosts_table3_fig12 at ci scale (digits twin): the controller sets r = r_target, large fixed
eta runs at r >> 1, and the CIFAR numbers are never claimed from the twin.  The batch-statistics
radius it uses (``ghosts.radius_models.batch_rho_a``, BatchNorm's running statistics untouched) is
tested with the library, in ``tests/ghosts/test_batch_radius.py``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from repro import claims
from repro.experiments import ghosts_table3_fig12 as exp
from tests.experiments._cells import Capture
from tests.experiments.ci import run_at_ci


@pytest.fixture(scope="module")
def stored():
    return run_at_ci("ghosts_table3_fig12")


def test_grid_and_controller_sets_r_to_target(stored) -> None:
    res, cfg = stored["results"], exp.CONFIGS["ci"]
    fixed = [c for c in res["configs"] if c["kind"] == "fixed"]
    ctrl = [c for c in res["configs"] if c["kind"] == "ctrl"]
    assert [c["value"] for c in fixed] == pytest.approx([e * cfg.eta_scale for e in cfg.etas])
    assert [c["value"] for c in ctrl] == pytest.approx(list(cfg.r_targets))
    logs = cfg.epochs * res["batches_per_epoch"] // cfg.log_every
    for c in ctrl:
        for run in c["runs"]:
            assert len(run["r"]) == logs and not run["stopped"]
            np.testing.assert_allclose(run["r"], c["value"], rtol=1e-6)  # r_target is applied
            assert np.all(run["eff_lr"] > 0) and np.ptp(np.log(run["eff_lr"])) > 0.1
    for c in fixed:
        for run in c["runs"]:
            assert len(run["test_acc"]) == cfg.epochs
            assert np.allclose(run["eff_lr"], c["value"])


def test_large_fixed_eta_runs_far_beyond_the_radius(stored) -> None:
    rows = {(r["kind"], r["key"]): r for r in exp.summarize(stored["results"])}
    small, large = rows[("fixed", 0.005)], rows[("fixed", 0.5)]
    assert large["max_r"] > 10 * small["max_r"]
    assert large["n_gt1"] == large["n_logs"]          # every log above r = 1
    assert rows[("ctrl", 0.5)]["n_gt1"] == 0 and rows[("ctrl", 1.0)]["n_gt1"] == 0
    assert rows[("ctrl", 2.0)]["n_gt1"] == rows[("ctrl", 2.0)]["n_logs"]


def test_twin_resnet_radius_is_the_batch_statistics_radius() -> None:
    """On the twin's ResNet the JVP radius with batch statistics and the released code's FD radius
    agree, and neither touches the running statistics."""
    from ghosts.radius_models import batch_rho_a, batch_rho_a_fd
    from repro.tasks.resnet import tiny_resnet

    model = tiny_resnet(torch.Generator().manual_seed(0)).double()
    x = torch.randn(16, 64, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    v = {k: torch.randn(p.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
         for k, p in model.named_parameters()}
    buffers = {k: b.clone() for k, b in model.named_buffers()}
    rho = batch_rho_a(model, x, v)
    assert 0 < rho < math.inf
    assert batch_rho_a_fd(model, x, v, eps=1e-7) == pytest.approx(rho, rel=1e-4)
    for k, b in model.named_buffers():
        assert torch.equal(b, buffers[k]), k


def test_resnet18_cifar_needs_no_torchvision() -> None:
    from repro.tasks.resnet import resnet18_cifar

    model = resnet18_cifar(torch.Generator().manual_seed(0))
    assert sum(p.numel() for p in model.parameters()) == 11_173_962  # torchvision's CIFAR variant
    assert model.stem[0].kernel_size == (3, 3) and model.stem[0].stride == (1, 1)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_paper_scale_without_torchvision_fails_clearly() -> None:
    pytest.importorskip("sklearn")
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="torchvision"):
            exp._data(exp.CONFIGS["paper"], torch.device("cpu"))
    else:
        pytest.skip("torchvision is installed")


def test_costs(stored) -> None:
    t = stored["results"]["timing"]
    assert all(v > 0 for v in t["ms"].values())
    assert t["jvp_over_forward"] == pytest.approx(t["ms"]["jvp"] / t["ms"]["forward"])
    # a JVP carries the primal and the tangent (W h, then W h' + V h): 3x the matmul/conv FLOPs
    assert t["flop_ratio_resnet18"] == pytest.approx(3.0, abs=0.05)
    assert t["flop_ratio_model"] == pytest.approx(3.0, abs=0.05)


# the twin does not measure CIFAR-10 numbers nor the GPU timings of Section 8.6
NOT_ON_THE_TWIN = set(exp.ROW_CLAIMS.values()) | {"ghosts.sec86_overhead_timings"}


def test_claims_measured_on_the_twin(stored) -> None:
    res = stored["results"]
    m = claims.measure(exp.ID, res)
    assert set(exp.CLAIMS) == set(claims.claims_of(exp.ID))
    assert set(m) == set(claims.claims_of(exp.ID)) - NOT_ON_THE_TWIN
    for cid, x in m.items():
        claims.verdict(claims.get_claim(cid), x)  # the registered rule evaluates on the measurement
    rows = {(r["kind"], r["key"]): r for r in exp.summarize(res)}
    jvp = m["ghosts.sec45_jvp_cost"]
    assert jvp["value"] == pytest.approx(res["timing"]["jvp_over_forward"])
    assert jvp["evidence"]["flop_ratio_resnet18"] == res["timing"]["flop_ratio_resnet18"]
    best = m["ghosts.abstract_resnet_controller_best"]
    assert best["value"] == pytest.approx(100 * rows[("ctrl", 1.0)]["acc"])
    assert best["evidence"]["best_fixed_acc"] == pytest.approx(100 * max(r["acc"] for r in rows.values()
                                                                          if r["kind"] == "fixed"))
    big = m["ghosts.fig12_eta05_max_r"]
    assert big["evidence"]["eta"] == pytest.approx(max(exp.CONFIGS["ci"].etas) * exp.CONFIGS["ci"].eta_scale)
    assert big["value"] == big["evidence"]["epoch_max_r"][0] > 1  # the largest fixed eta runs at r > 1 early
    div = m["ghosts.table3_divergence_needs_sustained_r"]["evidence"]
    assert div["n_failed"] == len(div["failed_longest_streak"])
    assert div["n_failed"] + len(div["survivor_longest_streak"]) == sum(len(c["runs"]) for c in res["configs"])
    # the controller at r = 2 sits at r = 2 in every log: its streak is the whole run
    assert rows[("ctrl", 2.0)]["run_sustained"].tolist() == [rows[("ctrl", 2.0)]["n_logs"]]
    assert not math.isnan(exp.summarize(res)[0]["acc"])


def test_paper_table_comes_from_the_registry(stored) -> None:
    paper = exp._paper_table3()
    assert set(paper) == set(exp.ROW_CLAIMS)
    for key, cid in exp.ROW_CLAIMS.items():
        c = claims.get_claim(cid)
        assert paper[key][3] == c.paper_value and str(paper[key][0]) in c.statement
    table = exp.table(stored["results"])
    for key, row in paper.items():
        assert f"({row[3]}%)" in table


def test_cifar_claims_measured_at_paper_protocol(stored) -> None:
    """The same runs labelled as the paper protocol: every claim is measured and its rule evaluates
    (exercises the CIFAR-only measuring functions without CIFAR-10)."""
    res = {**stored["results"], "paper_protocol": True}
    m = claims.measure(exp.ID, res)
    assert set(m) == set(claims.claims_of(exp.ID))
    for cid, x in m.items():
        claims.verdict(claims.get_claim(cid), x)
    rows = {(r["kind"], r["key"]): r for r in exp.summarize(res)}
    for key, cid in exp.ROW_CLAIMS.items():
        assert m[cid]["value"] == pytest.approx(100 * rows[key]["acc"])
        assert m[cid]["evidence"]["logs_r_gt_1"] == rows[key]["n_gt1"]
    t = res["timing"]
    assert m["ghosts.sec86_overhead_timings"]["evidence"]["jvp_over_plain"] == t["jvp_over_plain"]


def test_one_cell_per_configuration_and_seed_then_the_timing_cell_alone() -> None:
    import pickle

    cfg = exp.CONFIGS["cpu"]
    ctx = Capture(stop=False)
    res = exp.run(cfg, ctx)
    runs, timing = ctx.calls
    grid = [f"fixed-{e * cfg.eta_scale:g}" for e in cfg.etas] + [f"ctrl-{r:g}" for r in cfg.r_targets]
    assert [c.key for c in runs] == [f"{g}-seed{s}" for g in grid for s in cfg.seeds]
    assert all(c.fn is exp._train for c in runs)
    assert [(c.key, c.fn) for c in timing] == [("timing", exp._timings)]
    assert [len(c["runs"]) for c in res["configs"]] == [len(cfg.seeds)] * len(grid)
    for c in runs + timing:
        pickle.loads(pickle.dumps(c))  # a process pool or a Dask worker receives it pickled
