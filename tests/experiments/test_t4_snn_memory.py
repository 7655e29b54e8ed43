"""t4_snn_memory at ci scale: peak memory of a (tiny) spiking VGG-11, forward-only vs BPTT, T in {4, 8, 16}.

Memory is measured in fresh processes from the resident set, so two runs agree only to a few pages:
the tests check shapes (growth, flatness, the ratio's rise) and the exact bookkeeping, not bitwise
equality of serial and parallel runs.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from polystep.nondiff import LIF
from repro.claims import get_claim
from repro.experiments import t4_snn_memory
from repro.tasks.snn_vgg import LIFStep, MemorySpec, SNNVGG11Small, rate_coded_input
from tests.experiments._cells import first_cells
from tests.experiments.ci import measured_at_ci, run_at_ci

ID = "t4_snn_memory"
TINY = (4, 8, 16, 16, 32, 32, 32, 32)


@pytest.fixture(scope="module")
def stored():
    return run_at_ci(ID)


@pytest.fixture(scope="module")
def measured(stored):
    return measured_at_ci(ID, stored["results"])  # every claim, every rule evaluates


@pytest.fixture(scope="module")
def summary(stored):
    return t4_snn_memory.summarize(stored["results"])


def test_one_cell_per_method_and_time_step() -> None:
    cfg = t4_snn_memory.CONFIGS["ci"]
    keys = [c.key for c in first_cells(t4_snn_memory, cfg)]
    assert keys == [f"{m}-T{T}" for m in ("forward_only", "bptt") for T in cfg.timesteps]
    assert t4_snn_memory.CONFIGS["cpu"].timesteps == (25, 50, 100, 200, 400)
    assert t4_snn_memory.CONFIGS["cpu"].batch == 4


def test_every_claim_measured_and_every_rule_evaluates(measured) -> None:
    assert set(measured) == set(t4_snn_memory.CLAIMS)


def test_lif_step_is_polystep_lif_over_a_sequence() -> None:
    """Stepping :class:`LIFStep` over t gives polystep.nondiff.LIF's spikes bitwise, hard and with
    the surrogate gradient, and the same input gradient."""
    gen = torch.Generator().manual_seed(0)
    seq = (2.0 * torch.rand(3, 20, 5, generator=gen)).requires_grad_(True)  # [B, T, F]
    for surrogate in (None, 5.0):
        ref = LIF(0.95, 1.0, steps=None, surrogate=surrogate)(seq)
        step, mem, spikes = LIFStep(0.95, 1.0, surrogate), torch.zeros(3, 5), []
        for t in range(seq.shape[1]):
            s, mem = step(seq[:, t], mem)
            spikes.append(s)
        ours = torch.stack(spikes, dim=1)
        assert torch.equal(ours, ref) and 0 < ref.sum() < ref.numel()
        if surrogate is not None:
            g_ref, = torch.autograd.grad(ref.sum(), seq)
            g_ours, = torch.autograd.grad(ours.sum(), seq)
            assert torch.equal(g_ours, g_ref) and g_ref.abs().sum() > 0


def test_surrogate_net_has_the_hard_nets_forward_pass() -> None:
    """BPTT's network (fast-sigmoid surrogate) computes the forward-only network's logits bitwise
    from the same parameters, and its backward pass reaches the first convolution."""
    x = rate_coded_input(12, 2, torch.Generator().manual_seed(1))
    hard = SNNVGG11Small(TINY, generator=torch.Generator().manual_seed(0))
    soft = SNNVGG11Small(TINY, surrogate=5.0, generator=torch.Generator().manual_seed(0))
    assert x.shape == (12, 2, 3, 32, 32) and set(x.unique().tolist()) <= {0.0, 1.0}
    with torch.no_grad():
        out_hard = hard(x)
    out_soft = soft(x)
    assert out_hard.shape == (2, 10) and torch.equal(out_hard, out_soft)
    torch.nn.functional.cross_entropy(out_soft, torch.tensor([0, 1])).backward()
    assert soft.head.weight.grad.abs().sum() > 0 and torch.isfinite(soft.convs[0].weight.grad).all()


def test_bad_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="8 positive conv widths"):
        SNNVGG11Small((4, 8))
    with pytest.raises(ValueError, match="multiple of 32"):
        SNNVGG11Small(TINY, image_size=16)
    with pytest.raises(ValueError, match="method must be one of"):
        MemorySpec("adam", 4)
    with pytest.raises(ValueError, match="sequence"):
        SNNVGG11Small(TINY)(torch.zeros(2, 3, 32, 32))


def test_peak_is_parameters_input_and_working_memory(stored) -> None:
    """On the CPU the peak is the parameter and input bytes plus the measured working memory; the
    input sequence is T x B x 3 x 32 x 32 float32."""
    results = stored["results"]
    n_params = {u["n_parameters"] for units in results["runs"].values() for u in units}
    assert len(n_params) == 1
    n_param = n_params.pop()
    for units in results["runs"].values():
        for T, u in zip(results["timesteps"], units):
            assert u["peak_kind"].startswith("VmHWM") and u["steps"] == T
            assert u["input_mb"] == pytest.approx(T * results["batch"] * 3 * 32 * 32 * 4 / 2**20)
            assert u["resident_mb"] == pytest.approx(u["input_mb"] + 4 * n_param / 2**20)
            assert u["peak_mb"] == pytest.approx(u["resident_mb"] + u["work_mb"])
            assert u["work_mb"] > 0 and u["work_mb"] == pytest.approx(float(np.median(u["work_mb_all"])))


def test_forward_only_is_flatter_than_bptt(summary, measured) -> None:
    """Forward-only working memory hardly grows with T (at most the registered factor over 4x in T)
    while BPTT's grows several-fold."""
    fwd, bptt = summary["forward_only"], summary["bptt"]
    max_growth = get_claim("polystep.t4_cpu_forward_only_flat").extra["max_growth"]
    assert fwd["work_growth"] <= max_growth
    assert bptt["work_growth"] > 2 * fwd["work_growth"]
    assert max(fwd["work_mb"]) < min(bptt["work_mb"])
    assert measured["polystep.t4_cpu_forward_only_flat"]["value"] == pytest.approx(fwd["work_growth"])


def test_bptt_memory_grows_linearly_with_t(summary, measured) -> None:
    """BPTT stores every step's activations: its working memory rises strictly with T, at least half
    as fast as proportionally, on a straight line in T."""
    bptt = summary["bptt"]
    assert np.all(np.diff(bptt["work_mb"]) > 0)
    t_range = summary["t_max"] / summary["t_min"]
    assert bptt["work_growth"] >= 0.5 * t_range
    assert bptt["work_fit"]["r2"] >= 0.99 and bptt["work_fit"]["slope"] > 0
    ev = measured["polystep.t4_cpu_bptt_linear_in_t"]["evidence"]
    assert ev["linear_r2"] == pytest.approx(bptt["work_fit"]["r2"]) and ev["t_max"] == 16


def test_the_ratio_rises_with_t(summary, measured) -> None:
    ratio = np.asarray(summary["ratio"])
    assert summary["ratio_increasing"] and np.all(np.diff(ratio) > 0) and ratio[0] > 1
    assert measured["polystep.t4_memory_ratio_t400"]["value"] == pytest.approx(ratio[-1])  # largest T at ci
    assert measured["polystep.t4_memory_ratio_t25"]["value"] == pytest.approx(ratio[0])  # smallest T at ci
    assert measured["polystep.t4_cpu_ratio_grows"]["evidence"]["ratio_increasing"] is True


def test_table_and_plot(stored) -> None:
    import matplotlib.pyplot as plt

    text = t4_snn_memory.table(stored["results"])
    assert text.count("\n| ") == len(stored["results"]["timesteps"])  # one row per T
    assert str(get_claim("polystep.t4_memory_ratio_t400").paper_value) in text
    fig = t4_snn_memory.plot(stored["results"])
    assert len(fig.axes) == 2
    plt.close(fig)
