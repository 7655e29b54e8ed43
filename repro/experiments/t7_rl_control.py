r"""Table T7 / Figure F6: RL policy search on CartPole-v1 and Acrobot-v1 with float, int8 and binary
policies -- PolyStep, OpenAI-ES, PPO and DQN (stable-baselines3), and a random policy.

The paper (PolyStep §5.x "classical control", paper/polystep_reconstruction.md §4 "T7/F6", §5.2-5.5)
trains ``obs -> 16 -> actions`` policies (CartPole 114 parameters, Acrobot 163) with a tanh, an int8
activation-quantised or a sign hidden layer and a greedy argmax action, and reports the final return
(mean over 3 evaluation seeds) of 3 training seeds: PolyStep 500 on CartPole with all three
activations and -76 .. -84 on Acrobot; OpenAI-ES 153.5 (best 500) / 500 / 236.1 and -89.7 / -106.5
/ -112.0; PPO and DQN, trained by backpropagation, collapse under int8 and binary activations (CartPole
<= 39.8, Acrobot -500).

Policies and simulators: :mod:`repro.tasks.rl_policies` (the activations; quantised ones pass *no*
gradient through the rounding, plain autograd -- the reading consistent with the paper's collapse)
and :mod:`repro.tasks.rl_envs` (both environments in torch over a batch, float64, checked step for
step against gymnasium's own in ``tests/repro/test_rl_envs.py``).  Each PolyStep / OpenAI-ES
population is evaluated in one batched rollout: every candidate on the same ``R`` initial states
(fresh for every step), loss = minus the mean return, episodes capped at ``horizon``.

Methods (one cell per (env, activation, method, seed); random: one per (env, seed)):

* **PolyStep** (:class:`polystep.optim.PolyStep`, which carries the paper's hybrid subspace; the
  ask/tell front end has none): rank 4 capped at 24 coordinates -- the bias coordinates (18 / 19)
  kept, the projected blocks shrunk proportionally, 23 coordinates in all here (the paper's table
  says 24) -- ``d_p = 8``, orthoplex (``V = 16``), softmax, ``K = 1``: 3 particles, 48 candidates
  per OT step, as in the paper; ``eps`` cosine 2.0 -> 0.3 over the OT
  steps, ``r_s = 0.1 eps``, ``r_p = 1.5 eps`` (Acrobot ``2.0 eps``), 16 rollouts per candidate,
  200 optimizer calls with **amortised OT** 3 (Acrobot 1): a full OT step on calls ``c`` with
  ``c mod A = 0``, otherwise a coasting move ``theta <- theta + (1 - (c mod A)/A) d`` without any
  evaluation, ``d <- 0.7 d + 0.3 (theta_after - theta_before)`` after each OT step (first: ``d``
  = that displacement; paper/polystep_reconstruction.md §2.9).  ``polystep.optim.PolyStep`` has no
  amortisation: it is done here, around it (a coasting move is a change made outside the optimizer,
  which rebases ``theta_0 <- theta``, ``z <- 0`` on the same subspace: the same point as moving
  ``z``).  Paper budget: 67 OT steps x 48 = 3,216 candidate evaluations on CartPole, 9,600 on
  Acrobot (the paper's counts).
* **OpenAI-ES** (:class:`polystep.baselines.OpenAIES`): antithetic population 32, centred ranks,
  ``sigma`` linear 0.1 -> 0.02 over the generations, lr 0.05 (constant), no weight decay (the paper
  states none for RL), 200 generations, the same rollouts per candidate as PolyStep and the same
  initial policy.
* **PPO, DQN** (stable-baselines3 defaults, ``net_arch = [16]``, ``activation_fn`` the policy's
  activation module; the training environment is gymnasium's own, seeded by the cell): paper budget
  1e6 (CartPole) / 5e5 (Acrobot) timesteps.
* **random**: uniform random actions.

Protocol: the *final return* is the greedy policy's mean return over 3 evaluation seeds (the
training seed + 20,000 / 30,000 / 40,000, as the paper's offsets), ``eval_episodes`` episodes each at
the environment's own 500-step limit, drawn from streams disjoint from every training stream; all
methods of an (env, seed) see the same evaluation episodes.  Every method's **env steps** are
counted (PolyStep / OpenAI-ES: the steps of every training episode; PPO / DQN: ``num_timesteps``).
A learning curve -- the greedy return on ``curve_episodes`` fixed episodes against env steps
consumed -- is recorded at checkpoints, so that methods are also compared **at matched env steps**
(each method's curve read at the smaller of the two budgets).  The paper's normalised score is
``(R - R_rand) / (R_ref - R_rand)`` with CartPole (22, 500) and Acrobot (-500, -80).

Device: every cell runs on the CPU whatever ``--device`` says (stable-baselines3 with
``device="cpu"``; the rollouts are loops of small batched operations, bound by per-call overhead,
which a GPU does not remove).  The simulators' torch path (other devices) is checked against
gymnasium all the same.

Scales: ``paper`` -- the paper's budgets above (3 seeds; estimated from the same timings at ~5-6
CPU-hours, nearly all of it PPO's and DQN's 1e6 / 5e5 timesteps); ``ci`` -- a few iterations of each cell,
seconds; ``cpu`` -- the same methods and settings at reduced budgets (the reconstruction's §7 recipe:
4 rollouts, training horizon 200, 100 optimizer calls; OpenAI-ES 100 generations, the paper's 1:1
ratio of generations to PolyStep's calls; PPO 2e4 / DQN 2e4 timesteps on CartPole, 1e4 on Acrobot
instead of 1e6 / 5e5; curves at 8 log- and 8 evenly spaced checkpoints; 3 seeds).  It was sized from
timings of a few iterations of each method on a shared 2-core machine (one thread, noisy; not from any
return): a full-horizon population evaluation (48 x 4 episodes x 200 steps) costs ~0.04 s on
CartPole and ~0.13 s on Acrobot, one greedy 500-step evaluation of 8-10 episodes ~0.07 / ~0.2 s,
stable-baselines3 ~1,700 (PPO) / ~2,100 (DQN) timesteps per second on CartPole and ~1,100 / ~1,400 on
Acrobot -- at most ~4 / 19 s per PolyStep cell (CartPole / Acrobot, every episode at full horizon),
~6 / 17 s per OpenAI-ES cell, ~13 / 12 s per PPO / DQN CartPole cell and ~14 / 12 s on Acrobot,
~850 s of cells in all: ~7-8 minutes with ``--jobs 2``.  Below paper scale the paper's claims are
indicative; the ``t7_cpu_*`` claims, registered before any cpu return existed, state the paper's
comparisons at cpu scale.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from polystep.baselines import OpenAIES
from polystep.optim import PolyStep
from polystep.schedules import Cosine
from repro.cells import Cell
from repro.claims import claim, claims_of, get_claim
from repro.context import RunContext
from repro.tasks.rl_envs import ENV_IDS, BatchEnv, env_spec, make_batch_env, rollout
from repro.tasks.rl_policies import (ACTIVATIONS, activation_module, build_policy, flatten_module, module_returns,
                                     policy_spec, population_returns)

ID = "t7_rl_control"
TITLE = "Table T7 / Figure F6: RL policy search with float, int8 and binary policies (CartPole-v1, Acrobot-v1)"
CLAIMS = claims_of(ID)
VERSION = 1

TRAINED = ("PolyStep", "OpenAI-ES", "PPO", "DQN")
METHODS = TRAINED + ("random",)
GRADIENT_METHODS = ("PPO", "DQN")
QUANTIZED = ("int8", "binary")
SHORT = {"CartPole-v1": "cartpole", "Acrobot-v1": "acrobot"}


@dataclass(frozen=True)
class Config:
    envs: tuple[str, ...] = ENV_IDS
    activations: tuple[str, ...] = ACTIVATIONS
    methods: tuple[str, ...] = METHODS
    seeds: tuple[int, ...] = (0, 1, 2)
    # PolyStep (paper/polystep_reconstruction.md §5.3, rows CartPole / Acrobot)
    polystep_calls: int = 200
    amortize: dict = field(default_factory=lambda: {"CartPole-v1": 3, "Acrobot-v1": 1})
    rank: int = 4
    max_subspace_dim: int = 24
    eps: tuple[float, float] = (2.0, 0.3)
    step_radius: float = 0.1
    probe_radius: dict = field(default_factory=lambda: {"CartPole-v1": 1.5, "Acrobot-v1": 2.0})
    chunk_size: int = 256
    # both evolution methods
    rollouts: int = 16
    horizon: int = 500
    # OpenAI-ES (§5.4, "RL")
    es_generations: int = 200
    es_population: int = 32
    es_sigma: tuple[float, float] = (0.1, 0.02)
    es_lr: float = 0.05
    # PPO / DQN (§5.4, "RL")
    sb3_timesteps: dict = field(default_factory=lambda: {"CartPole-v1": 1_000_000, "Acrobot-v1": 500_000})
    sb3_options: dict = field(default_factory=dict)  # per method, over SB3's defaults (ci: smaller rollouts)
    # protocol (§5.5)
    eval_offsets: tuple[int, ...] = (20_000, 30_000, 40_000)
    eval_episodes: int = 10
    eval_horizon: int | None = None  # evaluation / curve episodes' limit (None: the environment's own 500)
    curve_points: int = 12
    curve_episodes: int = 8


CONFIGS = {
    "ci": Config(seeds=(0, 1), polystep_calls=4, amortize={"CartPole-v1": 2, "Acrobot-v1": 1}, rollouts=2,
                 horizon=40, es_generations=4, es_population=8, sb3_timesteps={"CartPole-v1": 256, "Acrobot-v1": 256},
                 sb3_options={"PPO": {"n_steps": 128, "batch_size": 64, "n_epochs": 2}, "DQN": {"learning_starts": 64}},
                 eval_offsets=(20_000, 30_000), eval_episodes=2, eval_horizon=40, curve_points=3, curve_episodes=2),
    # sized from timings of a few iterations (not from any return): see the module docstring's "cpu" note
    "cpu": Config(polystep_calls=100, rollouts=4, horizon=200, es_generations=100,
                  sb3_timesteps={"CartPole-v1": 20_000, "Acrobot-v1": 10_000}, curve_points=8),
    "paper": Config(),
}


def normalized_score(env_id: str, ret: float) -> float:
    """``(R - R_rand) / (R_ref - R_rand)`` (paper/polystep_reconstruction.md §5.1)."""
    s = env_spec(env_id)
    return (ret - s.random_return) / (s.reference_return - s.random_return)


# ------------------------------------------------------------------------------------------ protocol

def _generator(ctx: RunContext, *key) -> torch.Generator:
    return torch.Generator().manual_seed(ctx.child_seed(*key) % 2**63)


def eval_states(env: BatchEnv, cfg: Config, seed: int, ctx: RunContext) -> list[torch.Tensor]:
    """The evaluation episodes' initial states, one ``[eval_episodes, state_dim]`` per evaluation seed
    ``seed + offset`` (the same for every method and activation of ``(env, seed)``)."""
    return [env.initial_states(cfg.eval_episodes, _generator(ctx, "eval", env.spec.env_id, seed + o))
            for o in cfg.eval_offsets]


def curve_states(env: BatchEnv, cfg: Config, seed: int, ctx: RunContext) -> torch.Tensor:
    """The learning curve's fixed episodes (own stream, shared by every method of ``(env, seed)``)."""
    return env.initial_states(cfg.curve_episodes, _generator(ctx, "curve", env.spec.env_id, seed))


def checkpoints(total: int, points: int) -> list[int]:
    """Iterations ``1 .. total`` at which the curve is recorded: ``points`` log-spaced and ``points``
    evenly spaced ones (the end included), deduplicated -- fine early, where budgets are matched."""
    if total < 1:
        return []
    log = np.unique(np.round(np.geomspace(1, total, points)).astype(int))
    lin = np.unique(np.round(np.linspace(total / points, total, points)).astype(int))
    return sorted({int(x) for x in np.concatenate([log, lin]) if 1 <= x <= total} | {total})


class _Curve:
    """Greedy return of the current policy on the curve episodes, against env steps consumed."""

    def __init__(self, env: BatchEnv, states: torch.Tensor):
        self.env, self.states = env, states
        self.env_steps: list[int] = []
        self.returns: list[float] = []

    def record(self, env_steps: int, value: float) -> None:
        self.env_steps.append(int(env_steps))
        self.returns.append(float(value))

    def as_dict(self) -> dict:
        return {"env_steps": list(self.env_steps), "return": list(self.returns)}


def _final(env: BatchEnv, states: list[torch.Tensor], evaluate) -> dict:
    """``evaluate(states) -> returns [n]`` on every evaluation seed's episodes."""
    per_seed = [float(evaluate(s).mean()) for s in states]
    return {"final_return": float(np.mean(per_seed)), "eval_seed_returns": per_seed}


def _flat_returns(theta: torch.Tensor, env: BatchEnv, spec, states: torch.Tensor, cfg: Config) -> torch.Tensor:
    """Returns of the flat policies ``theta [P, n]`` at the evaluation step limit (the environment's own
    500 but at ci scale)."""
    return population_returns(theta, env, spec, states, cfg.eval_horizon).returns


# ------------------------------------------------------------------------------------------ cells

def _start(env_id: str, activation: str, seed: int, ctx: RunContext):
    env = make_batch_env(env_id)
    spec = policy_spec(env, activation)
    policy = build_policy(spec, _generator(ctx, "init", env_id, activation, seed))  # PolyStep's = OpenAI-ES's
    return env, spec, policy


def train_polystep(env_id: str, activation: str, seed: int, cfg: Config, ctx: RunContext) -> dict:
    """PolyStep on one policy (module docstring): curve, final return, env steps, evaluations."""
    env, spec, policy = _start(env_id, activation, seed, ctx)
    A = cfg.amortize[env_id]
    ot_steps = math.ceil(cfg.polystep_calls / A)
    eps = Cosine(start=cfg.eps[0], end=cfg.eps[1], steps=ot_steps)
    opt = PolyStep(policy.parameters(), subspace="hybrid", rank=cfg.rank, max_subspace_dim=cfg.max_subspace_dim,
                   basis="qr", particle_dim=8, polytope="orthoplex", eps=eps, step_radius=cfg.step_radius,
                   probe_radius=cfg.probe_radius[env_id], radius_mode="times_eps", solver="softmax",
                   chunk_size=cfg.chunk_size, seed=ctx.child_seed("polystep", env_id, activation, seed) % 2**31)
    train = _generator(ctx, "train", env_id, activation, "PolyStep", seed)
    curve = _Curve(env, curve_states(env, cfg, seed, ctx))
    when = set(checkpoints(cfg.polystep_calls, cfg.curve_points))
    counter = {"env_steps": 0}
    evals, direction, t0 = 0, None, time.perf_counter()
    params = list(policy.parameters())

    def current() -> torch.Tensor:
        return flatten_module(policy).unsqueeze(0)

    curve.record(0, float(_flat_returns(current(), env, spec, curve.states, cfg)[0]))
    for c in range(cfg.polystep_calls):
        if c % A == 0:
            states = env.initial_states(cfg.rollouts, train)

            def closure(thetas, states=states):
                r = population_returns(list(thetas), env, spec, states, cfg.horizon)
                counter["env_steps"] += r.env_steps
                return -r.returns.to(thetas[0].dtype)

            before = current()[0]
            opt.step(closure)
            evals += opt.last_info.forward_evals
            moved = current()[0] - before
            direction = moved if direction is None else 0.7 * direction + 0.3 * moved
        else:  # amortised OT: coast along the averaged displacement, no evaluation
            move = (1.0 - (c % A) / A) * direction
            with torch.no_grad():
                i = 0
                for p in params:
                    p.add_(move[i:i + p.numel()].reshape(p.shape))
                    i += p.numel()
        if c + 1 in when:
            curve.record(counter["env_steps"], float(_flat_returns(current(), env, spec, curve.states, cfg)[0]))
    wall = time.perf_counter() - t0
    theta = current()
    out = _final(env, eval_states(env, cfg, seed, ctx), lambda s: _flat_returns(theta, env, spec, s, cfg))
    return out | {"env_steps": counter["env_steps"], "evaluations": evals, "ot_steps": ot_steps,
                  "curve": curve.as_dict(), "best_curve_return": max(curve.returns), "wall_s": wall,
                  "subspace_dim": opt.subspace.dim, "evals_per_ot_step": opt.evals_per_step}


def train_openai_es(env_id: str, activation: str, seed: int, cfg: Config, ctx: RunContext) -> dict:
    """OpenAI-ES on one policy (module docstring)."""
    env, spec, policy = _start(env_id, activation, seed, ctx)
    G = cfg.es_generations
    es = OpenAIES(flatten_module(policy), generator=_generator(ctx, "openai-es", env_id, activation, seed),
                  population=cfg.es_population, sigma=cfg.es_sigma[0], lr=cfg.es_lr, lr_end=cfg.es_lr,
                  total_steps=G, weight_decay=0.0)
    train = _generator(ctx, "train", env_id, activation, "OpenAI-ES", seed)
    curve = _Curve(env, curve_states(env, cfg, seed, ctx))
    when = set(checkpoints(G, cfg.curve_points))
    env_steps, evals, t0 = 0, 0, time.perf_counter()
    curve.record(0, float(_flat_returns(es.x.unsqueeze(0), env, spec, curve.states, cfg)[0]))
    for g in range(G):
        es.sigma = cfg.es_sigma[0] + (cfg.es_sigma[1] - cfg.es_sigma[0]) * g / max(G - 1, 1)
        states = env.initial_states(cfg.rollouts, train)
        cand = es.ask()
        r = population_returns(cand, env, spec, states, cfg.horizon)
        env_steps += r.env_steps
        evals += cand.shape[0]
        es.tell(-r.returns.to(cand.dtype))
        if g + 1 in when:
            curve.record(env_steps, float(_flat_returns(es.x.unsqueeze(0), env, spec, curve.states, cfg)[0]))
    wall = time.perf_counter() - t0
    theta = es.x.unsqueeze(0)
    out = _final(env, eval_states(env, cfg, seed, ctx), lambda s: _flat_returns(theta, env, spec, s, cfg))
    return out | {"env_steps": env_steps, "evaluations": evals, "curve": curve.as_dict(),
                  "best_curve_return": max(curve.returns), "wall_s": wall}


def _sb3_scores(model, method: str):
    """The greedy action scores of a stable-baselines3 model as ``obs [n, obs_dim] -> [n, actions]``:
    PPO's action logits, DQN's Q-values."""
    policy = model.policy

    def scores(obs: torch.Tensor) -> torch.Tensor:
        if method == "PPO":
            features = policy.extract_features(obs, policy.pi_features_extractor)
            return policy.action_net(policy.mlp_extractor.forward_actor(features))
        return policy.q_net(obs)

    return scores


def train_sb3(env_id: str, activation: str, method: str, seed: int, cfg: Config, ctx: RunContext) -> dict:
    """PPO or DQN (stable-baselines3 defaults, ``net_arch = [16]``, the policy's activation) on
    gymnasium's ``env_id``; curve checkpoints from a callback, evaluated on this package's simulator."""
    import gymnasium as gym
    from stable_baselines3 import DQN, PPO
    from stable_baselines3.common.callbacks import BaseCallback

    env = make_batch_env(env_id)
    total = cfg.sb3_timesteps[env_id]
    algo = {"PPO": PPO, "DQN": DQN}[method]
    sb3_seed = ctx.child_seed("sb3", env_id, activation, method, seed) % 2**31
    model = algo("MlpPolicy", gym.make(env_id), seed=sb3_seed, device="cpu", verbose=0,
                 policy_kwargs={"net_arch": [16], "activation_fn": activation_module(activation)},
                 **cfg.sb3_options.get(method, {}))
    scores = _sb3_scores(model, method)
    curve = _Curve(env, curve_states(env, cfg, seed, ctx))
    marks = [int(round(k * total / 100)) for k in checkpoints(100, cfg.curve_points)]

    def greedy_return(states: torch.Tensor) -> torch.Tensor:
        model.policy.set_training_mode(False)
        return module_returns(scores, env, states, cfg.eval_horizon).returns

    curve.record(0, float(greedy_return(curve.states).mean()))

    class _Checkpoint(BaseCallback):
        def _on_step(self) -> bool:
            while marks and self.num_timesteps >= marks[0]:
                marks.pop(0)
                curve.record(self.num_timesteps, float(greedy_return(curve.states).mean()))
            return True

    t0 = time.perf_counter()
    model.learn(total_timesteps=total, callback=_Checkpoint())
    wall = time.perf_counter() - t0
    if not curve.env_steps or curve.env_steps[-1] != model.num_timesteps:
        curve.record(model.num_timesteps, float(greedy_return(curve.states).mean()))
    out = _final(env, eval_states(env, cfg, seed, ctx), greedy_return)
    return out | {"env_steps": int(model.num_timesteps), "evaluations": 0, "curve": curve.as_dict(),
                  "best_curve_return": max(curve.returns), "wall_s": wall,
                  "gradient": "none through int8 / sign (autograd)"}


def eval_random(env_id: str, seed: int, cfg: Config, ctx: RunContext) -> dict:
    """Uniform random actions on the evaluation episodes."""
    env = make_batch_env(env_id)
    gen = _generator(ctx, "random-actions", env_id, seed)

    def act(obs: torch.Tensor) -> torch.Tensor:
        return torch.randint(0, env.spec.n_actions, (obs.shape[0],), generator=gen)

    out = _final(env, eval_states(env, cfg, seed, ctx), lambda s: rollout(env, act, s, cfg.eval_horizon).returns)
    return out | {"env_steps": 0, "evaluations": 0, "curve": {"env_steps": [0], "return": [out["final_return"]]},
                  "best_curve_return": out["final_return"], "wall_s": 0.0}


def _cells(cfg: Config) -> list[Cell]:
    cells = []
    for env_id in cfg.envs:
        e = SHORT[env_id]
        for act in cfg.activations:
            for m in cfg.methods:
                for s in cfg.seeds:
                    key = f"{e}-{act}-{m}-seed{s}"
                    if m == "PolyStep":
                        cells.append(Cell(key, train_polystep, (env_id, act, s, cfg)))
                    elif m == "OpenAI-ES":
                        cells.append(Cell(key, train_openai_es, (env_id, act, s, cfg)))
                    elif m in GRADIENT_METHODS:
                        cells.append(Cell(key, train_sb3, (env_id, act, m, s, cfg)))
        if "random" in cfg.methods:
            cells.extend(Cell(f"{e}-random-seed{s}", eval_random, (env_id, s, cfg)) for s in cfg.seeds)
    return cells


def run(cfg: Config, ctx: RunContext) -> dict:
    """Every cell, then ``runs[env][activation][method]`` = the per-seed results (random under every
    activation: it has none)."""
    for env_id in cfg.envs:
        make_batch_env(env_id)  # an unknown id fails before any cell
    cells = _cells(cfg)
    values = ctx.map(cells, desc="env x activation x method x seed")
    runs: dict = {env_id: {a: {} for a in cfg.activations} for env_id in cfg.envs}
    inv = {v: k for k, v in SHORT.items()}
    for c, v in zip(cells, values):
        parts = c.key.rsplit("-seed", 1)[0].split("-")
        env_id = inv[parts[0]]
        if parts[1] == "random":
            for a in cfg.activations:
                runs[env_id][a].setdefault("random", []).append(v)
        else:
            runs[env_id][parts[1]].setdefault("-".join(parts[2:]), []).append(v)
    return {"envs": list(cfg.envs), "activations": list(cfg.activations), "methods": list(cfg.methods),
            "seeds": list(cfg.seeds), "runs": runs, "horizon": cfg.horizon, "rollouts": cfg.rollouts,
            "polystep_calls": cfg.polystep_calls, "amortize": dict(cfg.amortize),
            "es_generations": cfg.es_generations, "sb3_timesteps": dict(cfg.sb3_timesteps),
            "eval_offsets": list(cfg.eval_offsets), "eval_episodes": cfg.eval_episodes,
            "eval_horizon": cfg.eval_horizon or 500}


# ------------------------------------------------------------------------------------------ reduction

def finals(results: dict, env_id: str, activation: str, method: str) -> np.ndarray:
    """Per-seed final returns."""
    return np.asarray([r["final_return"] for r in results["runs"][env_id][activation][method]], dtype=float)


def mean_final(results: dict, env_id: str, activation: str, method: str) -> float:
    return float(finals(results, env_id, activation, method).mean())


def env_steps(results: dict, env_id: str, activation: str, method: str) -> float:
    return float(np.mean([r["env_steps"] for r in results["runs"][env_id][activation][method]]))


def curve_at(run: dict, budget: float) -> float:
    """A run's curve return at the last checkpoint whose env steps do not exceed ``budget``."""
    steps, ret = run["curve"]["env_steps"], run["curve"]["return"]
    ok = [i for i, s in enumerate(steps) if s <= budget]
    return float(ret[ok[-1]]) if ok else float(ret[0])


def matched(results: dict, env_id: str, activation: str, method: str, other: str = "PolyStep") -> dict:
    """``method`` against ``other`` at matched env steps, per seed: the budget is the smaller of the
    two runs' env steps, each run's curve read there; means over seeds."""
    a_runs = results["runs"][env_id][activation][other]
    b_runs = results["runs"][env_id][activation][method]
    budgets = [min(a["env_steps"], b["env_steps"]) for a, b in zip(a_runs, b_runs)]
    a = [curve_at(r, B) for r, B in zip(a_runs, budgets)]
    b = [curve_at(r, B) for r, B in zip(b_runs, budgets)]
    return {"budget": float(np.mean(budgets)), other: float(np.mean(a)), method: float(np.mean(b)),
            "difference": float(np.mean(a) - np.mean(b))}


def _cell_value(results: dict, env_id: str, activation: str, method: str) -> dict:
    f = finals(results, env_id, activation, method)
    runs = results["runs"][env_id][activation][method]
    best = float(np.mean([r["best_curve_return"] for r in runs]))
    return {"value": float(f.mean()),
            "detail": (f"{env_id} {activation}, {method}: final return {f.mean():.1f} +- "
                       f"{f.std(ddof=1) if len(f) > 1 else 0.0:.1f} over {len(f)} seeds (best on its curve "
                       f"{best:.1f}), {env_steps(results, env_id, activation, method):.3g} env steps"),
            "evidence": {"final_return_per_seed": f.tolist(), "best_curve_return": best,
                         "env_steps": env_steps(results, env_id, activation, method), "seeds": len(f)}}


#: the per-cell claims of Table T7: claim id -> (env, activation, method)
T7_CELL_CLAIMS = {
    "polystep.t7_cartpole_float_polystep": ("CartPole-v1", "tanh", "PolyStep"),
    "polystep.t7_cartpole_int8_polystep": ("CartPole-v1", "int8", "PolyStep"),
    "polystep.t7_cartpole_binary_polystep": ("CartPole-v1", "binary", "PolyStep"),
    "polystep.t7_acrobot_float_polystep": ("Acrobot-v1", "tanh", "PolyStep"),
    "polystep.t7_acrobot_int8_polystep": ("Acrobot-v1", "int8", "PolyStep"),
    "polystep.t7_acrobot_binary_polystep": ("Acrobot-v1", "binary", "PolyStep"),
    "polystep.t7_cartpole_float_openai_es": ("CartPole-v1", "tanh", "OpenAI-ES"),
    "polystep.t7_cartpole_binary_openai_es": ("CartPole-v1", "binary", "OpenAI-ES"),
    "polystep.t7_acrobot_float_openai_es": ("Acrobot-v1", "tanh", "OpenAI-ES"),
    "polystep.t7_cartpole_float_ppo": ("CartPole-v1", "tanh", "PPO"),
}


def _register_cell_claims() -> None:
    for cid, (env_id, act, method) in T7_CELL_CLAIMS.items():
        def fn(results: dict, env_id: str = env_id, act: str = act, method: str = method) -> dict:
            return _cell_value(results, env_id, act, method)
        fn.__name__ = "_" + cid.split(".", 1)[1]
        claim(cid)(fn)


_register_cell_claims()


def _collapse(results: dict, env_id: str) -> dict:
    pairs = [(a, m) for a in QUANTIZED for m in GRADIENT_METHODS]
    vals = {f"{m} {a}": mean_final(results, env_id, a, m) for a, m in pairs}
    top = max(vals, key=vals.get)
    return {"value": vals[top],
            "detail": f"{env_id}: largest gradient-trained quantised return {top} {vals[top]:.1f}; "
                      + ", ".join(f"{k} {v:.1f}" for k, v in vals.items())
                      + f" (float: PPO {mean_final(results, env_id, 'tanh', 'PPO'):.1f}, "
                        f"DQN {mean_final(results, env_id, 'tanh', 'DQN'):.1f})",
            "evidence": {"returns": list(vals.values()), "pairs": list(vals)}}


@claim("polystep.t7_cartpole_quantized_gradient_collapse")
def _t7_cartpole_quantized_gradient_collapse(results: dict) -> dict:
    return _collapse(results, "CartPole-v1")


@claim("polystep.t7_acrobot_quantized_gradient_collapse")
def _t7_acrobot_quantized_gradient_collapse(results: dict) -> dict:
    return _collapse(results, "Acrobot-v1")


def _score(results: dict, env_id: str, act: str, method: str) -> float:
    return normalized_score(env_id, mean_final(results, env_id, act, method))


def _match_openai_es(results: dict) -> dict:
    d = {e: _score(results, e, "tanh", "PolyStep") - _score(results, e, "tanh", "OpenAI-ES") for e in results["envs"]}
    return {"value": min(d.values()),
            "detail": "float policies, PolyStep minus OpenAI-ES normalised score: "
                      + ", ".join(f"{e} {v:+.3f} (returns {mean_final(results, e, 'tanh', 'PolyStep'):.1f} vs "
                                  f"{mean_final(results, e, 'tanh', 'OpenAI-ES'):.1f})" for e, v in d.items()),
            "evidence": {"envs": len(d), "polystep_minus_openai_es_score": list(d.values()), "env_ids": list(d)}}


@claim("polystep.abstract_rl_match_openai_es")
def _abstract_rl_match_openai_es(results: dict) -> dict:
    return _match_openai_es(results)


@claim("polystep.t7_cpu_float_matches_openai_es")
def _t7_cpu_float_matches_openai_es(results: dict) -> dict:
    return _match_openai_es(results)


def _retained(results: dict) -> dict:
    return {f"{e} {a}": _score(results, e, a, "PolyStep") - _score(results, e, "tanh", "PolyStep")
            for e in results["envs"] for a in QUANTIZED}


@claim("polystep.abstract_rl_quantized_retain")
def _abstract_rl_quantized_retain(results: dict) -> dict:
    kept = _retained(results)
    grad = {f"{e} {m} {a}": _score(results, e, a, m) for e in results["envs"] for a in QUANTIZED
            for m in GRADIENT_METHODS}
    return {"value": min(kept.values()),
            "detail": "PolyStep quantised minus float normalised score: " + ", ".join(f"{k} {v:+.3f}" for k, v in kept.items())
                      + "; PPO / DQN quantised scores: " + ", ".join(f"{k} {v:.3f}" for k, v in grad.items()),
            "evidence": {"envs": len(results["envs"]), "polystep_quantized_minus_float_score": list(kept.values()),
                         "gradient_quantized_score": list(grad.values()), "pairs": list(kept), "gradient_pairs": list(grad)}}


@claim("polystep.t7_cpu_polystep_retains_quantized")
def _t7_cpu_polystep_retains_quantized(results: dict) -> dict:
    kept = _retained(results)
    return {"value": min(kept.values()),
            "detail": "PolyStep quantised minus float normalised score: " + ", ".join(f"{k} {v:+.3f}" for k, v in kept.items()),
            "evidence": {"differences": list(kept.values()), "pairs": list(kept)}}


def _above_gradient(results: dict, env_id: str) -> dict:
    diffs = {f"{a} vs {m}": mean_final(results, env_id, a, "PolyStep") - mean_final(results, env_id, a, m)
             for a in QUANTIZED for m in GRADIENT_METHODS}
    return {"value": min(diffs.values()),
            "detail": f"{env_id}, PolyStep minus baseline final return: " + ", ".join(f"{k} {v:+.1f}" for k, v in diffs.items())
                      + "; env steps: " + ", ".join(f"{m} {env_steps(results, env_id, 'int8', m):.3g}"
                                                    for m in ("PolyStep",) + GRADIENT_METHODS),
            "evidence": {"differences": list(diffs.values()), "pairs": list(diffs)}}


@claim("polystep.t7_cpu_cartpole_quantized_above_gradient")
def _t7_cpu_cartpole_quantized_above_gradient(results: dict) -> dict:
    return _above_gradient(results, "CartPole-v1")


@claim("polystep.t7_cpu_acrobot_quantized_above_gradient")
def _t7_cpu_acrobot_quantized_above_gradient(results: dict) -> dict:
    return _above_gradient(results, "Acrobot-v1")


@claim("polystep.t7_cpu_matched_env_steps_cartpole_quantized")
def _t7_cpu_matched_env_steps_cartpole_quantized(results: dict) -> dict:
    m = {f"{a} vs {b}": matched(results, "CartPole-v1", a, b) for a in QUANTIZED for b in GRADIENT_METHODS}
    return {"value": min(v["difference"] for v in m.values()),
            "detail": "CartPole at matched env steps (PolyStep's curve at the baseline's budget): "
                      + ", ".join(f"{k}: {v['PolyStep']:.1f} vs {v[k.split(' vs ')[1]]:.1f} at {v['budget']:.3g} steps"
                                  for k, v in m.items()),
            "evidence": {"differences": [v["difference"] for v in m.values()], "pairs": list(m),
                         "budgets": [v["budget"] for v in m.values()]}}


# ------------------------------------------------------------------------------------------ outputs

_PAPER_IDS = {v: k for k, v in T7_CELL_CLAIMS.items()}


def paper_value(env_id: str, activation: str, method: str) -> float | None:
    """The paper's Table T7 value of a cell where the registry holds one (a claim of this
    experiment), else ``None`` (the full table: paper/polystep_reconstruction.md §4 "T7/F6")."""
    cid = _PAPER_IDS.get((env_id, activation, method))
    return float(get_claim(cid).paper_value) if cid else None


def table(results: dict) -> str:
    """Final return (mean +- std over seeds) and env steps per (env, activation, method), with the
    paper's value; then every method against PolyStep at matched env steps."""
    lines = ["Paper values: the registry's Table T7 claims (the full table: paper/polystep_reconstruction.md §4).",
             f"{len(results['seeds'])} seeds; final return = mean over {len(results['eval_offsets'])} evaluation "
             f"seeds x {results['eval_episodes']} episodes ({results['eval_horizon']}-step limit); training horizon {results['horizon']}, "
             f"{results['rollouts']} rollouts per candidate.", "",
             "| env | activation | method | paper | ours: final return | best on curve | env steps |",
             "|---|---|---|---|---|---|---|"]
    for e in results["envs"]:
        for a in results["activations"]:
            for m in METHODS:
                if m not in results["runs"][e][a]:
                    continue
                f = finals(results, e, a, m)
                paper = paper_value(e, a, m)
                best = np.mean([r["best_curve_return"] for r in results["runs"][e][a][m]])
                lines.append(f"| {e} | {a} | {m} | {'–' if paper is None else f'{paper:g}'} | {f.mean():.1f} ± "
                             f"{f.std(ddof=1) if len(f) > 1 else 0.0:.1f} | {best:.1f} | "
                             f"{env_steps(results, e, a, m):.3g} |")
    lines += ["", "At matched env steps (each pair's curves read at the smaller budget, curve episodes):", "",
              "| env | activation | method | budget (env steps) | PolyStep | method |", "|---|---|---|---|---|---|"]
    for e in results["envs"]:
        for a in results["activations"]:
            for m in TRAINED[1:]:
                if m in results["runs"][e][a] and "PolyStep" in results["runs"][e][a]:
                    v = matched(results, e, a, m)
                    lines.append(f"| {e} | {a} | {m} | {v['budget']:.3g} | {v['PolyStep']:.1f} | {v[m]:.1f} |")
    return "\n".join(lines)


COLORS = {"PolyStep": "#0072B2", "OpenAI-ES": "#009E73", "PPO": "#D55E00", "DQN": "#E69F00", "random": "0.5"}


def plot(results: dict):
    """Figure F6: learning curves (greedy return on the curve episodes, mean over seeds) against env
    steps, one panel per (env, activation); random as a dotted line, paper's PolyStep value a star."""
    import matplotlib.pyplot as plt

    envs, acts = results["envs"], results["activations"]
    fig, axes = plt.subplots(len(envs), len(acts), figsize=(4.2 * len(acts), 3.4 * len(envs)), squeeze=False)
    for i, e in enumerate(envs):
        for j, a in enumerate(acts):
            ax = axes[i][j]
            runs = results["runs"][e][a]
            for m in TRAINED:
                if m not in runs:
                    continue
                n = min(len(r["curve"]["env_steps"]) for r in runs[m])
                x = np.mean([r["curve"]["env_steps"][:n] for r in runs[m]], axis=0)
                y = np.mean([r["curve"]["return"][:n] for r in runs[m]], axis=0)
                ax.plot(np.maximum(x, 1), y, "o-", ms=3, color=COLORS[m], label=m)
            if "random" in runs:
                ax.axhline(mean_final(results, e, a, "random"), color=COLORS["random"], ls=":", label="random")
            paper = paper_value(e, a, "PolyStep")
            if paper is not None:
                ax.axhline(paper, color=COLORS["PolyStep"], ls="--", lw=0.8, alpha=0.6, label="paper: PolyStep")
            ax.set(xscale="log", title=f"{e}, {a}", xlabel="env steps (0 drawn at 1)", ylabel="return")
            ax.title.set_fontsize(9)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=6, fontsize=8, bbox_to_anchor=(0.5, -0.04))
    fig.suptitle(TITLE, fontsize=10)
    fig.tight_layout()
    return fig


def summary_lines(results: dict) -> list[str]:
    out = []
    for e in results["envs"]:
        for a in results["activations"]:
            out.append(f"  {e} {a}: " + ", ".join(f"{m} {mean_final(results, e, a, m):.1f}"
                                                 for m in METHODS if m in results["runs"][e][a]))
    return out
