"""Table T1's networks, data, budgets and training cells (repro.tasks.t1_models / t1_train) and the
two-sample statistics (repro.stats), on the offline digits stand-in."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np
import pytest
import torch

from repro.context import RunContext
from repro.stats import compare, holm, mann_whitney_greater, welch_greater
from repro.tasks import t1_train as T
from repro.tasks.t1_models import TASKS, build_t1_model, n_parameters


@dataclass(frozen=True)
class Tiny:
    dataset: str = "digits"
    train_subset: int | None = None
    batch_size: int = 32
    hidden: int = 16
    timesteps: int = 4
    steps: dict = field(default_factory=lambda: {t: 30 for t in TASKS})
    eval_every: int = 10
    max_subspace_dim: dict | None = field(default_factory=lambda: {t: 96 for t in TASKS} | {"moe": 256})
    basis: str = "kronecker"
    chunk_size: int = 1024
    adam_lr: float = 1e-2
    bptt_surrogate_slope: float = 2.0


def ctx() -> RunContext:
    return RunContext(seed=0, progress=False)


# ---------------------------------------------------------------------------------------- models

@pytest.mark.parametrize("task, count", [("snn", 101_770), ("int8", 118_282), ("argmax", 119_306),
                                         ("staircase", 118_282), ("moe", 235_672)])
def test_the_networks_have_the_papers_parameter_counts(task, count) -> None:
    """paper/polystep_reconstruction.md §5.2 lists each network's parameter count."""
    assert n_parameters(build_t1_model(task, torch.Generator().manual_seed(0))) == count


@pytest.mark.parametrize("task", list(TASKS))
def test_hard_model_and_smooth_twin_share_parameters_and_differ_in_the_hard_op(task) -> None:
    hard = build_t1_model(task, torch.Generator().manual_seed(3), hidden=16, timesteps=4)
    smooth = build_t1_model(task, torch.Generator().manual_seed(3), hidden=16, timesteps=4, hard=False)
    for (k, a), (k2, b) in zip(hard.state_dict().items(), smooth.state_dict().items()):
        assert k == k2 and torch.equal(a, b)
    x = torch.randn(64, 784, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(hard(x), smooth(x))
    # the hard op has no useful gradient: zero almost everywhere for the staircase and the spikes
    if task in ("staircase", "snn"):
        out = hard(x).sum()
        if out.requires_grad:  # the staircase: floor has derivative 0
            out.backward()
        first = next(hard.parameters())
        assert first.grad is None or torch.count_nonzero(first.grad) == 0


def test_a_different_generator_gives_different_parameters_and_the_same_one_the_same() -> None:
    a, b, c = (build_t1_model("int8", torch.Generator().manual_seed(s)) for s in (0, 0, 1))
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not torch.equal(next(a.parameters()), next(c.parameters()))


def test_bad_model_requests_are_refused() -> None:
    g = torch.Generator().manual_seed(0)
    with pytest.raises(ValueError, match="task must be one of"):
        build_t1_model("resnet", g)
    with pytest.raises(ValueError, match="surrogate applies to the spiking network only"):
        build_t1_model("int8", g, surrogate=2.0)
    with pytest.raises(ValueError, match="hidden must be a positive integer"):
        build_t1_model("snn", g, hidden=0)


# ---------------------------------------------------------------------------------------- data

def test_digits_stand_in_has_784_features_and_twenty_classes_for_the_moe() -> None:
    d = T.load_t1_data("snn", "digits", train_subset=None, subset_seed=0)
    assert d.x_train.shape[1] == 784 and d.n_classes == 10 and set(d.y_train.tolist()) == set(range(10))
    m = T.load_t1_data("moe", "digits", train_subset=None, subset_seed=0)
    assert m.n_classes == 20 and set(m.y_train.tolist()) == set(range(20))
    assert m.x_train.shape[0] == 2 * d.x_train.shape[0]
    sub = T.load_t1_data("snn", "digits", train_subset=100, subset_seed=5)
    again = T.load_t1_data("snn", "digits", train_subset=100, subset_seed=5)
    assert sub.x_train.shape[0] == 100 and torch.equal(sub.x_train, again.x_train)
    assert torch.equal(sub.x_test, d.x_test)  # the subset never touches the test split


def test_bad_data_requests_are_refused() -> None:
    with pytest.raises(ValueError, match="task must be one of"):
        T.load_t1_data("cifar", "digits", train_subset=None, subset_seed=0)
    with pytest.raises(ValueError, match="dataset must be 'real' or 'digits'"):
        T.load_t1_data("snn", "imagenet", train_subset=None, subset_seed=0)
    with pytest.raises(ValueError, match="train_subset must be an integer"):
        T.load_t1_data("snn", "digits", train_subset=0, subset_seed=0)


# ---------------------------------------------------------------------------------------- budgets

def test_paper_budgets_are_the_papers_generations_and_matched_budgets_match_evaluations() -> None:
    from repro.experiments.t1_nondiff_benchmarks import CONFIGS

    paper = CONFIGS["paper"]
    assert T.baseline_generations("snn", "OpenAI-ES", "paper", paper) == 10_000
    assert T.baseline_generations("int8", "SPSA", "paper", paper) == 50_000
    assert T.baseline_generations("moe", "CMA-ES", "paper", paper) == 2_000
    assert T.baseline_generations("moe", "SPSA", "paper", paper) == 10_000
    # the SNN at paper scale: 8,688 evaluations per step (paper/polystep_reconstruction.md §2.13)
    assert T.polystep_evals_per_step("snn", paper) == 8_688
    cfg = Tiny()
    e = T.polystep_evals_per_step("int8", cfg) * cfg.steps["int8"]
    assert T.baseline_generations("int8", "OpenAI-ES", "matched", cfg) == e // 50
    assert T.baseline_generations("int8", "SPSA", "matched", cfg) == e // 2
    # the step-matched ratio: 30 steps x 10,000 / 3,540
    assert T.baseline_generations("int8", "CMA-ES", "paper", cfg) == round(30 * 10_000 / 3_540)
    with pytest.raises(ValueError, match="budget must be"):
        T.baseline_generations("int8", "SPSA", "huge", cfg)
    with pytest.raises(ValueError, match="method must be one of"):
        T.baseline_generations("int8", "Nelder-Mead", "paper", cfg)


# ---------------------------------------------------------------------------------------- cells

def _selected_consistently(r: dict, name: str = "hard") -> None:
    c = r["curve"]
    sel = int(np.argmax(c[f"{name}_val_acc"]))
    assert r["test_acc"] == pytest.approx(c[f"{name}_test_acc"][sel])
    assert r["best_test_acc"] == pytest.approx(c[f"{name}_test_acc"].max())
    assert r["final_test_acc"] == pytest.approx(c[f"{name}_test_acc"][-1])
    assert r["best_test_acc"] >= r["test_acc"]


def test_polystep_cell_is_deterministic_counts_its_evaluations_and_selects_on_validation() -> None:
    cfg = replace(Tiny(), steps={t: 6 for t in TASKS}, eval_every=3)
    a, b = T.train_polystep("int8", cfg, 0, ctx()), T.train_polystep("int8", cfg, 0, ctx())
    assert np.array_equal(a["train_loss"], b["train_loss"]) and a["test_acc"] == b["test_acc"]
    assert a["evals"] == 6 * a["evals_per_step"] == 6 * T.polystep_evals_per_step("int8", cfg)
    assert list(a["curve"]["step"]) == [3, 6] and list(a["curve"]["evals"]) == [3 * a["evals_per_step"], a["evals"]]
    _selected_consistently(a)
    c = T.train_polystep("int8", cfg, 1, ctx())
    assert not np.array_equal(a["train_loss"], c["train_loss"])  # the seed matters


@pytest.mark.parametrize("method", list(T.BASELINES))
def test_baseline_cells_spend_their_budget(method) -> None:
    cfg = replace(Tiny(), steps={t: 4 for t in TASKS}, eval_every=2)
    r = T.train_baseline("staircase", method, "paper", cfg, 0, ctx())
    gens = T.baseline_generations("staircase", method, "paper", cfg)
    pop = T.BASELINES[method][1].get("population", 2)
    assert r["generations"] == gens and r["evals"] == gens * pop
    assert r["curve"]["evals"][-1] == r["evals"]
    _selected_consistently(r)


def test_adam_on_the_smooth_twin_learns_and_reports_the_hard_model_too() -> None:
    r = T.train_adam_smooth("int8", Tiny(), 0, ctx())
    loss = r["train_loss"]
    assert loss[-5:].mean() < 0.8 * loss[:5].mean()
    assert r["smooth"]["test_acc"] > 0.3 and r["test_acc"] == r["smooth"]["test_acc"]
    _selected_consistently(r, "smooth")
    assert 0.0 <= r["hard"]["test_acc"] <= 1.0 and "hard_test_acc" in r["curve"]


def test_bptt_with_the_surrogate_gradient_trains_the_hard_spiking_network() -> None:
    """The surrogate gradient flows through the hard spikes (the hard SNN has none), and the
    network learns: training loss down, test accuracy far above chance (10 %)."""
    cfg = replace(Tiny(), hidden=32, timesteps=8, steps={t: 60 for t in TASKS})  # T = 8: logits 0..8
    r = T.train_bptt_snn(cfg, 0, ctx())
    loss = r["train_loss"]
    assert loss[-5:].mean() < 0.8 * loss[:5].mean(), loss
    assert r["test_acc"] > 0.3
    _selected_consistently(r)


# ---------------------------------------------------------------------------------------- stats

def test_holm_matches_a_hand_computed_example() -> None:
    # sorted p: 0.01, 0.02, 0.04, 0.3 -> 4 * 0.01, max(., 3 * 0.02), max(., 2 * 0.04), max(., 0.3)
    assert np.allclose(holm([0.04, 0.01, 0.3, 0.02]), [0.08, 0.04, 0.3, 0.06])
    assert np.allclose(holm([0.5, 0.6]), [1.0, 1.0])
    with pytest.raises(ValueError, match=r"p-values must lie in \[0, 1\]"):
        holm([0.1, 1.5])


def test_welch_and_mann_whitney_are_scipys_one_sided_tests() -> None:
    from scipy.stats import mannwhitneyu, ttest_ind

    a, b = [90.1, 91.3, 89.7], [80.2, 85.0, 79.9]
    assert welch_greater(a, b) == pytest.approx(ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    assert welch_greater(a, b) < 0.05 < 0.95 < welch_greater(b, a)
    assert mann_whitney_greater(a, b) == pytest.approx(mannwhitneyu(a, b, alternative="greater").pvalue)
    assert mann_whitney_greater(a, b) == pytest.approx(0.05)  # 1 / C(6, 3): the floor with 3 seeds
    assert welch_greater([1.0, 1.0], [0.0, 0.0]) == 0.0 and welch_greater([0.0, 0.0], [1.0, 1.0]) == 1.0
    with pytest.raises(ValueError, match="at least 2 values"):
        welch_greater([1.0], [0.0, 1.0])


def test_compare_declares_significance_after_holm_only() -> None:
    clear = ([90.0, 91.0, 92.0], [50.0, 51.0, 52.0])
    marginal = ([60.0, 62.0, 61.0], [59.0, 61.5, 60.0])
    out = compare({"clear": clear, "marginal": marginal, "reverse": clear[::-1]}, alpha=0.05)
    assert out["clear"]["significant"] and not out["marginal"]["significant"] and not out["reverse"]["significant"]
    assert out["clear"]["difference"] == pytest.approx(40.0)
    assert out["clear"]["p_holm"] >= out["clear"]["p_welch"]
    with pytest.raises(ValueError, match="alpha must lie in"):
        compare({"clear": clear}, alpha=0.0)


def test_a_diverging_baseline_stops_and_reports_it(monkeypatch) -> None:
    """SPSA with an absurd gain blows the parameters up; the run must stop at the first non-finite
    loss, keep a checkpoint at its last finite point and say where it diverged -- not crash the cell."""
    name, opts, g4, gm = T.BASELINES["SPSA"]
    monkeypatch.setitem(T.BASELINES, "SPSA", (name, {**opts, "a": 1e30, "c": 1e3}, g4, gm))
    cfg = replace(Tiny(), steps={t: 40 for t in TASKS})
    r = T.train_baseline("int8", "SPSA", "matched", cfg, 0, ctx())
    assert 1 <= r["diverged_at"] <= T.baseline_generations("int8", "SPSA", "matched", cfg)
    assert r["curve"]["step"][-1] == r["diverged_at"] - 1
    assert np.isfinite(r["test_acc"]) and 0.0 <= r["test_acc"] <= 1.0
    # with the paper's gains the same run does not diverge
    monkeypatch.undo()
    assert T.train_baseline("int8", "SPSA", "paper", Tiny(), 0, ctx())["diverged_at"] == 0
