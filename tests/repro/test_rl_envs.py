"""The batched CartPole-v1 / Acrobot-v1 simulators against gymnasium's own environments.

gymnasium's environments are the oracle: from the same state and action, one step of ours gives the
same next state (float64), observation (float32), reward and termination; whole episodes driven by
the same actions give the same returns, terminations and ``TimeLimit`` truncations at 500 steps.
Both of our code paths are checked: NumPy (CPU tensors, what the experiment runs) and torch (other
devices; forced here on CPU tensors).
"""

from __future__ import annotations

import math

import gymnasium as gym  # pinned in requirements/lock.txt: the oracle is not optional
import numpy as np
import pytest
import torch

from repro.tasks import rl_envs
from repro.tasks.rl_envs import ENV_IDS, make_batch_env, rollout
from repro.tasks.rl_policies import (build_policy, flatten_module, int8_quantize, module_returns, policy_spec,
                                     population_returns, unflatten)

# the next state's tolerance: the same float64 formulas in the same order; NumPy/torch and
# gymnasium's scalar NumPy may differ in the last ulp of cos/sin, amplified by at most a few
# operations of order-one constants (dt = 0.2, tau = 0.02)
STATE_RTOL, STATE_ATOL = 1e-12, 1e-12


def _gym(env_id: str):
    env = gym.make(env_id)
    env.reset(seed=0)
    return env


def _set_state(env, state: np.ndarray) -> None:
    env.unwrapped.state = np.array(state, dtype=np.float64)
    if hasattr(env.unwrapped, "steps_beyond_terminated"):
        env.unwrapped.steps_beyond_terminated = None


def _wide_states(env_id: str, n: int, gen: torch.Generator) -> torch.Tensor:
    """States across the whole state space (not only near the reset distribution): CartPole past
    its thresholds, Acrobot at every angle and near its velocity limits."""
    u = torch.rand(n, 4, generator=gen, dtype=torch.float64) * 2 - 1
    if env_id == "CartPole-v1":
        return u * torch.tensor([3.0, 3.0, 0.3, 3.0], dtype=torch.float64)
    return u * torch.tensor([math.pi, math.pi, 4 * math.pi, 9 * math.pi], dtype=torch.float64)


@pytest.fixture(params=["numpy", "torch"])
def backend(request, monkeypatch):
    """Run a test on the NumPy path (CPU) and, forced, on the torch path (other devices)."""
    if request.param == "torch":
        def next_states(self, states, actions):
            return self._next(states, actions, rl_envs._TORCH)

        def terminal(self, states):
            return self._terminal(states, rl_envs._TORCH)

        monkeypatch.setattr(rl_envs.BatchEnv, "next_states", next_states)
        monkeypatch.setattr(rl_envs.BatchEnv, "terminal", terminal)
    return request.param


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_one_step_equals_gymnasium_from_the_same_states(env_id: str, backend: str) -> None:
    env, genv = make_batch_env(env_id), _gym(env_id)
    gen = torch.Generator().manual_seed(1)
    states = _wide_states(env_id, 300, gen)
    actions = torch.randint(0, env.spec.n_actions, (300,), generator=gen)
    nxt, obs, reward, done = env.step(states, actions)
    assert nxt.dtype == torch.float64 and obs.dtype == torch.float32 and reward.dtype == torch.float64
    ref_state, ref_obs, ref_reward, ref_done = [], [], [], []
    for s, a in zip(states.numpy(), actions.tolist()):
        _set_state(genv, s)
        o, r, term, trunc, _ = genv.step(a)
        assert not trunc
        ref_state.append(np.asarray(genv.unwrapped.state, dtype=np.float64))
        ref_obs.append(o)
        ref_reward.append(r)
        ref_done.append(term)
    np.testing.assert_allclose(nxt.numpy(), np.stack(ref_state), rtol=STATE_RTOL, atol=STATE_ATOL)
    # float32 observations of (nearly) equal float64 values: equal, or one float32 ulp apart
    np.testing.assert_allclose(obs.numpy(), np.stack(ref_obs), rtol=2 ** -23, atol=1e-7)
    np.testing.assert_array_equal(reward.numpy(), np.asarray(ref_reward))
    np.testing.assert_array_equal(done.numpy(), np.asarray(ref_done))
    # the sample exercises both outcomes (a check that cannot pass vacuously)
    assert 0 < int(done.sum()) < len(done)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_episodes_equal_gymnasium_with_truncation_at_500(env_id: str, backend: str) -> None:
    """Whole episodes from the same initial states and the same action sequence: ours (batched) and
    gymnasium's (TimeLimit wrapper) give the same per-step rewards, terminations and truncations.
    The states are re-synchronised every step (Acrobot is chaotic: ulp differences would grow)."""
    env = make_batch_env(env_id)
    gen = torch.Generator().manual_seed(2)
    n = 6
    start = env.initial_states(n, gen)
    if env_id == "CartPole-v1":
        # a linear controller that balances (so episodes reach the 500-step truncation) for half
        # of the episodes, random actions (early termination) for the other half
        def choose(obs, i, t):
            if i < n // 2:
                return int(obs[2] + 0.5 * obs[3] + 0.01 * obs[0] + 0.1 * obs[1] > 0)
            return int(torch.randint(0, 2, (1,), generator=gen))
    else:
        # pumping energy (torque along the second joint's velocity) reaches the goal; 'do nothing'
        # keeps every episode running to the truncation
        def choose(obs, i, t):
            if i < n // 2:
                return 2 if obs[5] > 0 else 0
            return 1
    outcomes = {"terminated": 0, "truncated": 0}
    for i in range(n):
        genv = gym.make(env_id)
        genv.reset(seed=i)
        _set_state(genv, start[i].numpy())
        state = start[i:i + 1].clone()
        obs = env.observe(state)[0]
        total_ours, total_gym = 0.0, 0.0
        for t in range(1, 600):
            a = choose(obs, i, t)
            state, obs_b, r, d = env.step(state, torch.tensor([a]))
            o, rg, term, trunc, _ = genv.step(a)
            np.testing.assert_allclose(state[0].numpy(), genv.unwrapped.state, rtol=STATE_RTOL, atol=STATE_ATOL)
            np.testing.assert_allclose(obs_b[0].numpy(), o, rtol=2 ** -23, atol=1e-7)
            assert float(r[0]) == rg and bool(d[0]) == term, (env_id, i, t)
            ours_trunc = (t >= env.spec.max_episode_steps)
            assert ours_trunc == trunc, (env_id, i, t)
            total_ours += float(r[0])
            total_gym += rg
            state = torch.from_numpy(np.array(genv.unwrapped.state, dtype=np.float64)).unsqueeze(0)
            obs = obs_b[0]
            if term or trunc:
                outcomes["terminated" if term else "truncated"] += 1
                break
        assert total_ours == total_gym
    assert outcomes["terminated"] > 0 and outcomes["truncated"] > 0, outcomes


def test_rollout_returns_equal_gymnasium_episodes() -> None:
    """:func:`rollout` (batched, masks finished episodes) against gymnasium episode returns and
    lengths for a fixed policy, from the same initial states, without re-synchronisation (CartPole:
    our Euler steps are bitwise gymnasium's; Acrobot is chaotic, so it is compared step by step,
    re-synchronised, in the test above)."""
    env_id = "CartPole-v1"
    env = make_batch_env(env_id)
    gen = torch.Generator().manual_seed(3)
    start = env.initial_states(8, gen)
    policy = build_policy(policy_spec(env, "tanh"), torch.Generator().manual_seed(4))
    res = module_returns(policy, env, start)
    for i in range(8):
        genv = gym.make(env_id)
        genv.reset(seed=i)
        _set_state(genv, start[i].numpy())
        obs, total, steps = env.observe(start[i:i + 1])[0], 0.0, 0
        while True:
            with torch.no_grad():
                a = int(policy(torch.as_tensor(obs).unsqueeze(0)).argmax())
            obs, r, term, trunc, _ = genv.step(a)
            total, steps = total + r, steps + 1
            if term or trunc:
                break
        assert float(res.returns[i]) == total and int(res.lengths[i]) == steps and bool(res.terminated[i]) == term
    assert res.env_steps == int(res.lengths.sum())


def test_initial_states_follow_gymnasiums_reset_distribution() -> None:
    gen = torch.Generator().manual_seed(5)
    cp = make_batch_env("CartPole-v1").initial_states(4000, gen)
    ac = make_batch_env("Acrobot-v1").initial_states(4000, gen)
    assert cp.dtype == torch.float64 and float(cp.abs().max()) <= 0.05 and float(cp.abs().max()) > 0.049
    assert float(ac.abs().max()) <= 0.1 and float(ac.abs().max()) > 0.099
    assert torch.equal(ac, ac.to(torch.float32).to(torch.float64))  # gymnasium's Acrobot reset is float32
    assert not make_batch_env("CartPole-v1").terminal(cp).any()


def test_population_returns_equal_one_policy_at_a_time() -> None:
    """A population evaluated in one batched rollout gives each candidate the returns it gets alone."""
    env = make_batch_env("CartPole-v1")
    spec = policy_spec(env, "int8")
    gen = torch.Generator().manual_seed(6)
    theta = torch.stack([flatten_module(build_policy(spec, gen)) for _ in range(5)])
    states = env.initial_states(4, gen)
    pop = population_returns(theta, env, spec, states)
    assert pop.returns.shape == (5,) and pop.episode_returns.shape == (5, 4)
    for p in range(5):
        alone = population_returns(theta[p:p + 1], env, spec, states)
        torch.testing.assert_close(alone.episode_returns[0], pop.episode_returns[p], rtol=0, atol=0)
    assert pop.env_steps == int(pop.episode_returns.sum())  # CartPole: reward 1 per step taken
    assert len({float(r) for r in pop.returns}) > 1  # different policies, different returns


def test_int8_quantization_and_sign() -> None:
    h = torch.tensor([[0.0, 1.0, -2.54, 0.013], [0.0, 0.0, 0.0, 0.0]])
    q = int8_quantize(h)
    s = 2.54 / 127
    torch.testing.assert_close(q[0], torch.round(h[0] / s) * s)
    assert torch.equal(q[1], torch.zeros(4))  # s = 0: zeros, not NaN
    assert q[0].unique().numel() <= 255 and float(q[0, 2]) == pytest.approx(-2.54)


# ------------------------------------------------------------------------------ bad input

def test_unknown_environment_id_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"unknown environment id 'MountainCar-v0'.*CartPole-v1, Acrobot-v1"):
        make_batch_env("MountainCar-v0")


def test_wrong_number_of_actions_is_a_clear_error() -> None:
    env = make_batch_env("CartPole-v1")
    states = env.initial_states(3, torch.Generator().manual_seed(0))
    three = torch.nn.Linear(4, 3)  # an Acrobot-sized head on CartPole
    with pytest.raises(ValueError, match=r"must output \[n, 2\] action scores.*got shape \(3, 3\)"):
        module_returns(three, env, states)
    acro_spec = policy_spec(make_batch_env("Acrobot-v1"))
    theta = torch.zeros(2, acro_spec.n_params)
    with pytest.raises(ValueError, match="does not fit CartPole-v1"):
        population_returns(theta, env, acro_spec, states)
    with pytest.raises(ValueError, match=r"shape \[P, 114\]"):
        unflatten(torch.zeros(2, 115), policy_spec(env))
    with pytest.raises(ValueError, match=r"actions must lie in \[0, 2\)"):
        env.step(states, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"shape \(3,\)"):
        env.step(states, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="must be integers"):
        env.step(states, torch.tensor([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="unknown activation 'relu'"):
        policy_spec(env, "relu")
    with pytest.raises(ValueError, match="horizon must be a positive integer"):
        rollout(env, lambda o: torch.zeros(o.shape[0], dtype=torch.long), states, horizon=0)
