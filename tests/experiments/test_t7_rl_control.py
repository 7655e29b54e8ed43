"""t7_rl_control at ci scale (a few iterations of every cell, 40-step episodes): every (env,
activation, method, seed) cell runs, budgets and env steps are counted as declared, the paper's
PolyStep budget is what its settings give, the reductions (matched env steps, normalised scores)
are right on hand-made inputs, and every claim's rule evaluates on the measurements."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from polystep.optim import PolyStep
from repro.claims import get_claim
from repro.context import RunContext
from repro.experiments import t7_rl_control as exp
from repro.tasks.rl_envs import make_batch_env
from repro.tasks.rl_policies import activate, build_policy, policy_spec
from tests.experiments._cells import first_cells
from tests.experiments.ci import measured_at_ci, run_at_ci

CI = exp.CONFIGS["ci"]


@pytest.fixture(scope="module")
def stored():
    return run_at_ci(exp.ID)


@pytest.fixture(scope="module")
def measured(stored):
    return measured_at_ci(exp.ID, stored["results"])  # every claim, every rule evaluates


def _ctx(seed: int = 0) -> RunContext:
    return RunContext(seed=seed, device=torch.device("cpu"), scale="ci")


def test_every_env_activation_method_and_seed_is_one_cell() -> None:
    keys = [c.key for c in first_cells(exp, CI)]
    trained = len(CI.envs) * len(CI.activations) * len(exp.TRAINED) * len(CI.seeds)
    assert len(keys) == len(set(keys)) == trained + len(CI.envs) * len(CI.seeds)  # + random per (env, seed)
    assert "cartpole-int8-PolyStep-seed0" in keys and "acrobot-binary-OpenAI-ES-seed1" in keys
    assert "cartpole-tanh-PPO-seed1" in keys and "acrobot-int8-DQN-seed0" in keys and "acrobot-random-seed1" in keys
    paper = exp.CONFIGS["paper"]
    assert len(first_cells(exp, paper)) == 2 * 3 * 4 * 3 + 2 * 3


def test_paper_configuration_is_the_papers() -> None:
    """paper/polystep_reconstruction.md §4-5: 200 calls, amortize 3 / 1, 16 rollouts, horizon 500,
    rank 4 capped at 24, eps cosine 2 -> 0.3, r_s 0.1, r_p 1.5 / 2.0 (x eps); OpenAI-ES pop 32, 200
    generations, sigma 0.1 -> 0.02, lr 0.05; PPO / DQN 1e6 / 5e5; 3 seeds, offsets 20k/30k/40k."""
    p = exp.CONFIGS["paper"]
    assert (p.polystep_calls, p.amortize, p.rollouts, p.horizon) == (200, {"CartPole-v1": 3, "Acrobot-v1": 1}, 16, 500)
    assert (p.rank, p.max_subspace_dim, p.eps, p.step_radius, p.probe_radius) == (
        4, 24, (2.0, 0.3), 0.1, {"CartPole-v1": 1.5, "Acrobot-v1": 2.0})
    assert (p.es_population, p.es_generations, p.es_sigma, p.es_lr) == (32, 200, (0.1, 0.02), 0.05)
    assert p.sb3_timesteps == {"CartPole-v1": 1_000_000, "Acrobot-v1": 500_000} and p.sb3_options == {}
    assert len(p.seeds) == 3 and p.eval_offsets == (20_000, 30_000, 40_000) and p.eval_horizon is None


@pytest.mark.parametrize("env_id, paper_evals", [("CartPole-v1", 3_216), ("Acrobot-v1", 9_600)])
def test_polystep_budget_at_paper_settings_is_the_papers(env_id: str, paper_evals: int) -> None:
    """The hybrid subspace of the 114 / 163-parameter policy capped at 24 coordinates gives 3
    particles of d_p = 8, 48 candidates per OT step; with amortisation the paper's candidate
    evaluations follow (3,216 on CartPole, 9,600 on Acrobot; §4 "T7/F6")."""
    p = exp.CONFIGS["paper"]
    env = make_batch_env(env_id)
    policy = build_policy(policy_spec(env), torch.Generator().manual_seed(0))
    assert sum(q.numel() for q in policy.parameters()) == {"CartPole-v1": 114, "Acrobot-v1": 163}[env_id]
    opt = PolyStep(policy.parameters(), subspace="hybrid", rank=p.rank, max_subspace_dim=p.max_subspace_dim,
                   basis="qr", particle_dim=8)
    assert 17 <= opt.subspace.dim <= 24 and opt.num_particles == 3 and opt.evals_per_step == 48
    assert math.ceil(p.polystep_calls / p.amortize[env_id]) * opt.evals_per_step == paper_evals


def test_budgets_and_env_steps_are_counted(stored) -> None:
    res = stored["results"]
    for e in res["envs"]:
        for a in res["activations"]:
            runs = res["runs"][e][a]
            for r in runs["PolyStep"]:
                ot = math.ceil(CI.polystep_calls / CI.amortize[e])
                assert r["ot_steps"] == ot and r["evaluations"] == ot * r["evals_per_ot_step"] == ot * 48
                # each candidate episode lasts 1 .. horizon steps
                assert r["evaluations"] * CI.rollouts <= r["env_steps"] <= r["evaluations"] * CI.rollouts * CI.horizon
            for r in runs["OpenAI-ES"]:
                assert r["evaluations"] == CI.es_generations * CI.es_population
                assert r["evaluations"] * CI.rollouts <= r["env_steps"] <= r["evaluations"] * CI.rollouts * CI.horizon
            for m in ("PPO", "DQN"):
                for r in runs[m]:
                    assert r["env_steps"] >= CI.sb3_timesteps[e] and r["curve"]["env_steps"][-1] == r["env_steps"]
            for m in exp.TRAINED:
                for r in runs[m]:
                    steps = r["curve"]["env_steps"]
                    assert steps[0] == 0 and all(np.diff(steps) >= 0) and len(r["eval_seed_returns"]) == len(CI.eval_offsets)
                    assert r["final_return"] == pytest.approx(np.mean(r["eval_seed_returns"]))
                    assert r["best_curve_return"] == max(r["curve"]["return"])


def test_returns_lie_in_each_environments_range(stored) -> None:
    H = CI.eval_horizon
    for e, lo, hi in (("CartPole-v1", 1.0, H), ("Acrobot-v1", -H, 0.0)):
        for a in CI.activations:
            for m, runs in stored["results"]["runs"][e][a].items():
                for r in runs:
                    assert all(lo <= v <= hi for v in r["eval_seed_returns"]), (e, a, m, r["eval_seed_returns"])


def test_cells_are_bitwise_reproducible() -> None:
    a = exp.train_polystep("CartPole-v1", "int8", 0, CI, _ctx())
    b = exp.train_polystep("CartPole-v1", "int8", 0, CI, _ctx())
    assert {k: v for k, v in a.items() if k != "wall_s"} == {k: v for k, v in b.items() if k != "wall_s"}
    c = exp.train_openai_es("Acrobot-v1", "binary", 1, CI, _ctx())
    d = exp.train_openai_es("Acrobot-v1", "binary", 1, CI, _ctx())
    assert {k: v for k, v in c.items() if k != "wall_s"} == {k: v for k, v in d.items() if k != "wall_s"}
    e = exp.train_sb3("CartPole-v1", "binary", "PPO", 1, CI, _ctx())  # SB3 seeded by the cell, one thread
    f = exp.train_sb3("CartPole-v1", "binary", "PPO", 1, CI, _ctx())
    assert {k: v for k, v in e.items() if k != "wall_s"} == {k: v for k, v in f.items() if k != "wall_s"}
    other = exp.train_polystep("CartPole-v1", "int8", 0, CI, _ctx(seed=5))  # another root seed: other streams
    assert other["curve"] != a["curve"] or other["eval_seed_returns"] != a["eval_seed_returns"]


def test_evaluation_episodes_are_shared_by_methods_and_disjoint_from_training() -> None:
    env = make_batch_env("CartPole-v1")
    ctx = _ctx()
    ev = exp.eval_states(env, CI, 0, ctx)
    assert len(ev) == len(CI.eval_offsets) and all(torch.equal(x, y) for x, y in zip(ev, exp.eval_states(env, CI, 0, _ctx())))
    assert not torch.equal(ev[0], ev[1]) and not torch.equal(ev[0], exp.eval_states(env, CI, 1, ctx)[0])
    train = env.initial_states(64, exp._generator(ctx, "train", "CartPole-v1", "int8", "PolyStep", 0))
    curve = exp.curve_states(env, CI, 0, ctx)
    for x in ev:
        assert not bool((x[:, None, :] == train[None]).all(-1).any())  # no training episode reused
        assert not bool((x[:, None, :] == curve[None]).all(-1).any())


def test_polystep_improves_a_poor_policy() -> None:
    """The optimizer's direction: on a binary CartPole policy that starts poor, 30 PolyStep calls
    raise the greedy return (a flipped loss sign drives it down instead). Deterministic (seeds fixed)."""
    cfg = dataclasses.replace(CI, polystep_calls=30, rollouts=4, horizon=100, eval_horizon=100, curve_points=4,
                              curve_episodes=4, eval_episodes=4)
    r = exp.train_polystep("CartPole-v1", "binary", 7, cfg, _ctx(123))
    start, end = r["curve"]["return"][0], r["curve"]["return"][-1]
    assert start < 30 and end > start + 10 and r["final_return"] > start + 10, r["curve"]


def test_quantized_activations_pass_no_gradient_through_the_rounding() -> None:
    """What PPO / DQN backpropagate through: tanh's derivative; nothing through sign; through int8
    only the scale s = max|h| / 127 (the largest entry); the straight-through option passes ones."""
    h = torch.tensor([[0.3, -1.2, 0.05, 0.7]], requires_grad=True)
    for name, expect_zero in (("binary", True), ("int8", False), ("tanh", False)):
        h.grad = None
        activate(h, name).sum().backward()
        g = h.grad[0]
        if expect_zero:
            assert torch.equal(g, torch.zeros(4))
        elif name == "int8":
            assert torch.count_nonzero(g) == 1 and g[1] != 0  # only the max-|h| entry, via the scale
        else:
            torch.testing.assert_close(g, 1 - torch.tanh(h[0].detach()) ** 2)
    h.grad = None
    activate(h, "binary", "ste").sum().backward()
    assert torch.equal(h.grad[0], torch.ones(4))
    with pytest.raises(ValueError, match="unknown gradient"):
        activate(h, "int8", "surrogate")


def test_sb3_greedy_scores_are_its_deterministic_actions() -> None:
    """The evaluation reads PPO's action logits / DQN's Q-values: their argmax is SB3's own
    deterministic action."""
    import gymnasium as gym
    from stable_baselines3 import DQN, PPO

    from repro.tasks.rl_policies import activation_module

    env = make_batch_env("Acrobot-v1")
    obs = env.observe(env.initial_states(16, torch.Generator().manual_seed(0)) * 20)
    for name, algo in (("PPO", PPO), ("DQN", DQN)):
        model = algo("MlpPolicy", gym.make("Acrobot-v1"), seed=0, device="cpu",
                     policy_kwargs={"net_arch": [16], "activation_fn": activation_module("int8")})
        with torch.no_grad():
            ours = exp._sb3_scores(model, name)(obs).argmax(-1).numpy()
        theirs, _ = model.predict(obs.numpy(), deterministic=True)
        np.testing.assert_array_equal(ours, theirs)


def test_matched_env_steps_reads_each_curve_at_the_smaller_budget() -> None:
    run = {"curve": {"env_steps": [0, 100, 1000, 5000], "return": [10.0, 20.0, 30.0, 40.0]}}
    assert exp.curve_at(run, 99) == 10.0 and exp.curve_at(run, 1000) == 30.0 and exp.curve_at(run, 10**9) == 40.0
    a = {"env_steps": 5000, **run}
    b = {"env_steps": 1200, "curve": {"env_steps": [0, 1200], "return": [5.0, 25.0]}}
    results = {"runs": {"CartPole-v1": {"int8": {"PolyStep": [a], "PPO": [b]}}}}
    m = exp.matched(results, "CartPole-v1", "int8", "PPO")
    assert m == {"budget": 1200.0, "PolyStep": 30.0, "PPO": 25.0, "difference": 5.0}


def test_normalised_score_uses_the_papers_references() -> None:
    assert exp.normalized_score("CartPole-v1", 500.0) == 1.0 and exp.normalized_score("CartPole-v1", 22.0) == 0.0
    assert exp.normalized_score("Acrobot-v1", -80.0) == 1.0 and exp.normalized_score("Acrobot-v1", -500.0) == 0.0


def test_every_claim_measured_and_every_rule_evaluates(measured) -> None:
    assert set(measured) == set(exp.CLAIMS) and len(exp.CLAIMS) == 19
    assert measured["polystep.t7_cartpole_int8_polystep"]["evidence"]["seeds"] == len(CI.seeds)
    collapse = measured["polystep.t7_cartpole_quantized_gradient_collapse"]
    assert collapse["value"] == max(collapse["evidence"]["returns"]) and len(collapse["evidence"]["returns"]) == 4


def test_rules_decide_as_registered() -> None:
    """The cpu rules on hand-made measurements: one failing comparison fails the claim."""
    from repro.claims import verdict

    above = get_claim("polystep.t7_cpu_cartpole_quantized_above_gradient")
    assert verdict(above, {"value": 1.0, "evidence": {"differences": [1.0, 2.0, 3.0, 4.0]}}) == "reproduced"
    assert verdict(above, {"value": -1.0, "evidence": {"differences": [1.0, 2.0, -1.0, 4.0]}}) == "not reproduced"
    keep = get_claim("polystep.t7_cpu_polystep_retains_quantized")
    assert verdict(keep, {"value": -0.05, "evidence": {"differences": [-0.05, 0.0, 0.1, -0.09]}}) == "reproduced"
    assert verdict(keep, {"value": -0.2, "evidence": {"differences": [-0.05, 0.0, 0.1, -0.2]}}) == "not reproduced"
    retain = get_claim("polystep.abstract_rl_quantized_retain")
    ok = {"envs": 2, "polystep_quantized_minus_float_score": [0.0] * 4, "gradient_quantized_score": [0.05] * 8}
    assert verdict(retain, {"value": 0.0, "evidence": ok}) == "reproduced"
    assert verdict(retain, {"value": 0.0, "evidence": ok | {"gradient_quantized_score": [0.05] * 7 + [0.5]}}) == "not reproduced"


def test_unknown_environment_in_a_configuration_fails_before_any_cell() -> None:
    cfg = dataclasses.replace(CI, envs=("Pendulum-v1",))
    with pytest.raises(ValueError, match="unknown environment id 'Pendulum-v1'"):
        exp.run(cfg, _ctx())


def test_table_and_plot(stored) -> None:
    import matplotlib.pyplot as plt

    res = stored["results"]
    text = exp.table(res)
    assert text.count("| CartPole-v1 | int8 |") == len(exp.METHODS) + len(exp.TRAINED) - 1  # rows + matched rows
    pv = get_claim("polystep.t7_cartpole_binary_openai_es").paper_value
    assert f"| CartPole-v1 | binary | OpenAI-ES | {pv:g} |" in text  # the paper's value beside ours
    assert "| CartPole-v1 | binary | PPO | – |" in text  # no registered value: none shown
    fig = exp.plot(res)
    assert len(fig.axes) == len(res["envs"]) * len(res["activations"])
    plt.close(fig)
