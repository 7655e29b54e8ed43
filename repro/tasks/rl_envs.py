r"""CartPole-v1 and Acrobot-v1 written in torch over a batch of environments (Table T7 / Figure F6).

The PolyStep paper's RL policy search (§5.x, "classical control"; paper/polystep_reconstruction.md
§4 "T7/F6", §5.1) evaluates every candidate policy on several episodes of gymnasium's CartPole-v1
and Acrobot-v1.  A PolyStep step has ``P V K`` candidates (48 at the paper's settings) times 16
rollouts: one Python ``gymnasium`` environment per rollout would cost ~768 interpreter-level
``step`` calls per time step, so the dynamics are written here once more, as array operations over
a batch ``[n]`` of environments, **in float64**, and checked step for step against gymnasium's own
environments (``tests/repro/test_rl_envs.py``: from the same states and actions, the same next
states -- bitwise, in practice -- observations, rewards, terminations and truncations).  The API is
torch tensors; on the CPU the dynamics run on NumPy views of them (zero-copy: a NumPy ufunc on a few
hundred numbers costs ~1 us against ~5 us for a torch call, and these loops are call-bound, so
Acrobot's RK4 step runs ~2x faster), on other devices in torch -- the same code, written once over
either array library, both paths checked against gymnasium.

Each environment is the pure functions of gymnasium 1.4.0's ``classic_control`` code:

* **CartPole-v1** (``cartpole.py``; Barto, Sutton & Anderson 1983): state
  ``s = (x, x', theta, theta')``, force ``F = +-10``, explicit Euler with ``tau = 0.02``::

      a_tmp   = (F + m_p l theta'^2 sin theta) / (m_c + m_p)
      theta'' = (g sin theta - cos theta a_tmp) / (l (4/3 - m_p cos^2 theta / (m_c + m_p)))
      x''     = a_tmp - m_p l theta'' cos theta / (m_c + m_p)
      x <- x + tau x',  x' <- x' + tau x'',  theta <- theta + tau theta',  theta' <- theta' + tau theta''

  (``g = 9.8``, ``m_c = 1``, ``m_p = 0.1``, ``l = 0.5``); terminated when ``|x| > 2.4`` or
  ``|theta| > 12 deg``; reward 1 for every step, the terminating one included; reset
  ``s ~ U(-0.05, 0.05)^4``; observation ``float32(s)``.
* **Acrobot-v1** (``acrobot.py``; Sutton & Barto's "book" dynamics): state
  ``(theta_1, theta_2, theta_1', theta_2')``, torque ``{-1, 0, +1}``, one RK4 step of ``dt = 0.2``
  of the two-link equations (the module's ``_dsdt``), then ``theta_i`` wrapped to ``[-pi, pi]`` and
  the velocities clipped to ``4 pi`` and ``9 pi``; terminated when
  ``-cos theta_1 - cos(theta_1 + theta_2) > 1``; reward ``-1`` per step, ``0`` on the terminating
  one; reset ``U(-0.1, 0.1)^4`` rounded to float32 (gymnasium draws it as float32); observation
  ``float32(cos theta_1, sin theta_1, cos theta_2, sin theta_2, theta_1', theta_2')``.

Both are registered with ``max_episode_steps = 500`` (``TimeLimit``: truncated when the episode's
step count reaches 500).  :func:`rollout` runs a batch of episodes to termination or a horizon and
returns their returns and lengths (the env steps consumed); an episode that terminated stops
collecting reward, as gymnasium's episode would end.

Initial states are drawn here from a ``torch.Generator`` (not gymnasium's ``np_random``): the
simulator is checked against gymnasium *from the same states*, and the experiment's training and
evaluation episodes come from disjoint named random streams.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Callable

import numpy as np
import torch
from torch import Tensor

__all__ = ["ENV_IDS", "EnvSpec", "BatchEnv", "CartPoleBatch", "AcrobotBatch", "make_batch_env", "env_spec",
           "rollout", "RolloutResult"]

ENV_IDS = ("CartPole-v1", "Acrobot-v1")
DTYPE = torch.float64

#: the array operations the dynamics use, for NumPy arrays (CPU: a NumPy ufunc on a few hundred
#: numbers costs ~1 us against ~5 us for a torch call, and these loops are call-bound) and for torch
#: tensors (other devices); the dynamics are written once, on either
_NUMPY = SimpleNamespace(cos=np.cos, sin=np.sin, where=np.where, clip=np.clip, stack=lambda xs: np.stack(xs, 1))
_TORCH = SimpleNamespace(cos=torch.cos, sin=torch.sin, where=torch.where, clip=torch.clamp,
                         stack=lambda xs: torch.stack(xs, 1))


@dataclass(frozen=True)
class EnvSpec:
    """What a policy needs to know of an environment."""

    env_id: str
    obs_dim: int
    n_actions: int
    state_dim: int
    max_episode_steps: int
    random_return: float      # the paper's normalisation's R_rand (paper/polystep_reconstruction.md §5.1)
    reference_return: float   # its R_ref


class BatchEnv:
    """A batch of one environment's episodes: pure tensor functions of the state ``[n, state_dim]``
    (float64).  Subclasses define :meth:`initial_states`, :meth:`next_states`, :meth:`terminal`,
    :meth:`observe` and :meth:`reward`."""

    spec: EnvSpec

    def initial_states(self, n: int, generator: torch.Generator, device=None) -> Tensor:
        raise NotImplementedError

    def _next(self, s, a, xp):
        """The dynamics on an array ``s [n, state_dim]`` (float64) and actions ``a [n]`` (integers),
        with the operations ``xp`` (:data:`_NUMPY` or :data:`_TORCH`)."""
        raise NotImplementedError

    def _terminal(self, s, xp):
        raise NotImplementedError

    def next_states(self, states: Tensor, actions: Tensor) -> Tensor:
        """The states after one step: NumPy on the CPU (zero-copy views), torch elsewhere."""
        if states.device.type == "cpu":
            return torch.from_numpy(self._next(states.numpy(), actions.numpy(), _NUMPY))
        return self._next(states, actions, _TORCH)

    def terminal(self, states: Tensor) -> Tensor:
        if states.device.type == "cpu":
            return torch.from_numpy(np.asarray(self._terminal(states.numpy(), _NUMPY)))
        return self._terminal(states, _TORCH)

    def observe(self, states: Tensor) -> Tensor:
        raise NotImplementedError

    def reward(self, terminated: Tensor) -> Tensor:
        raise NotImplementedError

    def check_actions(self, actions: Tensor, n: int) -> Tensor:
        """``actions`` as a long tensor ``[n]`` with values in ``[0, n_actions)``, else ``ValueError``."""
        if not isinstance(actions, Tensor) or actions.shape != (n,):
            shape = tuple(actions.shape) if isinstance(actions, Tensor) else type(actions).__name__
            raise ValueError(f"{self.spec.env_id}: actions must be a tensor of shape ({n},), one per "
                             f"environment, got {shape}")
        if actions.is_floating_point() or actions.is_complex() or actions.dtype == torch.bool:
            raise ValueError(f"{self.spec.env_id}: actions must be integers, got dtype {actions.dtype}")
        if actions.numel() and (int(actions.min()) < 0 or int(actions.max()) >= self.spec.n_actions):
            raise ValueError(f"{self.spec.env_id}: actions must lie in [0, {self.spec.n_actions}), got values in "
                             f"[{int(actions.min())}, {int(actions.max())}]")
        return actions.long()

    def step(self, states: Tensor, actions: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One step of every environment: ``(next_states, observations, rewards, terminated)``."""
        if states.ndim != 2 or states.shape[1] != self.spec.state_dim:
            raise ValueError(f"{self.spec.env_id}: states must have shape [n, {self.spec.state_dim}], got "
                             f"{tuple(states.shape)}")
        actions = self.check_actions(actions, states.shape[0])
        nxt = self.next_states(states, actions)
        done = self.terminal(nxt)
        return nxt, self.observe(nxt), self.reward(done), done


class CartPoleBatch(BatchEnv):
    """gymnasium's CartPole-v1 over a batch (module docstring)."""

    spec = EnvSpec("CartPole-v1", obs_dim=4, n_actions=2, state_dim=4, max_episode_steps=500,
                   random_return=22.0, reference_return=500.0)
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass = masspole + masscart
    polemass_length = masspole * length
    theta_threshold_radians = 12 * 2 * math.pi / 360
    x_threshold = 2.4

    def initial_states(self, n: int, generator: torch.Generator, device=None) -> Tensor:
        u = torch.rand(n, 4, generator=generator, dtype=DTYPE, device=device)
        return -0.05 + 0.1 * u

    def _next(self, s, a, xp):
        x, x_dot, theta, theta_dot = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
        force = xp.where(a == 1, self.force_mag, -self.force_mag)
        costheta, sintheta = xp.cos(theta), xp.sin(theta)
        temp = (force + self.polemass_length * theta_dot * theta_dot * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * (costheta * costheta) / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        return xp.stack([x + self.tau * x_dot, x_dot + self.tau * xacc, theta + self.tau * theta_dot,
                         theta_dot + self.tau * thetaacc])

    def _terminal(self, s, xp):
        x, theta = s[:, 0], s[:, 2]
        return (x < -self.x_threshold) | (x > self.x_threshold) | (theta < -self.theta_threshold_radians) | \
            (theta > self.theta_threshold_radians)

    def observe(self, states: Tensor) -> Tensor:
        return states.to(torch.float32)

    def reward(self, terminated: Tensor) -> Tensor:
        return torch.ones(terminated.shape, dtype=DTYPE, device=terminated.device)


class AcrobotBatch(BatchEnv):
    """gymnasium's Acrobot-v1 ("book" dynamics, no torque noise) over a batch (module docstring)."""

    spec = EnvSpec("Acrobot-v1", obs_dim=6, n_actions=3, state_dim=4, max_episode_steps=500,
                   random_return=-500.0, reference_return=-80.0)
    dt = 0.2
    m1 = m2 = 1.0
    l1 = 1.0
    lc1 = lc2 = 0.5
    I1 = I2 = 1.0
    g = 9.8
    max_vel_1, max_vel_2 = 4 * math.pi, 9 * math.pi

    def initial_states(self, n: int, generator: torch.Generator, device=None) -> Tensor:
        u = torch.rand(n, 4, generator=generator, dtype=DTYPE, device=device)
        return (-0.1 + 0.2 * u).to(torch.float32).to(DTYPE)  # gymnasium's reset state is float32

    def _dsdt(self, s, a, xp):
        """gymnasium's ``AcrobotEnv._dsdt`` (``book_or_nips = "book"``) on ``s [n, 4]``, torque ``a [n]``."""
        m1, m2, l1, lc1, lc2, I1, I2, g = self.m1, self.m2, self.l1, self.lc1, self.lc2, self.I1, self.I2, self.g
        theta1, theta2, dtheta1, dtheta2 = s[:, 0], s[:, 1], s[:, 2], s[:, 3]
        cos2, sin2 = xp.cos(theta2), xp.sin(theta2)  # gymnasium evaluates them 2 and 3 times: same values
        d1 = m1 * lc1**2 + m2 * (l1**2 + lc2**2 + 2 * l1 * lc2 * cos2) + I1 + I2
        d2 = m2 * (lc2**2 + l1 * lc2 * cos2) + I2
        phi2 = m2 * lc2 * g * xp.cos(theta1 + theta2 - math.pi / 2.0)
        phi1 = (-m2 * l1 * lc2 * dtheta2**2 * sin2
                - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin2
                + (m1 * lc1 + m2 * l1) * g * xp.cos(theta1 - math.pi / 2) + phi2)
        ddtheta2 = (a + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1**2 * sin2 - phi2) / (
            m2 * lc2**2 + I2 - d2**2 / d1)
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return xp.stack([dtheta1, dtheta2, ddtheta1, ddtheta2])

    @staticmethod
    def _wrap(x, m: float, M: float, xp):
        """gymnasium's ``wrap``: subtract / add ``M - m`` until ``m <= x <= M``."""
        diff = M - m
        while bool((x > M).any()):
            x = xp.where(x > M, x - diff, x)
        while bool((x < m).any()):
            x = xp.where(x < m, x + diff, x)
        return x

    def _next(self, s, a, xp):
        torque = a * 1.0 - 1.0  # AVAIL_TORQUE = [-1, 0, +1]
        dt = self.dt
        dt2 = dt / 2.0
        k1 = self._dsdt(s, torque, xp)
        k2 = self._dsdt(s + dt2 * k1, torque, xp)
        k3 = self._dsdt(s + dt2 * k2, torque, xp)
        k4 = self._dsdt(s + dt * k3, torque, xp)
        ns = s + dt / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        return xp.stack([self._wrap(ns[:, 0], -math.pi, math.pi, xp), self._wrap(ns[:, 1], -math.pi, math.pi, xp),
                         xp.clip(ns[:, 2], -self.max_vel_1, self.max_vel_1),
                         xp.clip(ns[:, 3], -self.max_vel_2, self.max_vel_2)])

    def _terminal(self, s, xp):
        return -xp.cos(s[:, 0]) - xp.cos(s[:, 1] + s[:, 0]) > 1.0

    def observe(self, states: Tensor) -> Tensor:
        on_cpu = states.device.type == "cpu"
        xp, s = (_NUMPY, states.numpy()) if on_cpu else (_TORCH, states)
        t1, t2 = s[:, 0], s[:, 1]
        obs = xp.stack([xp.cos(t1), xp.sin(t1), xp.cos(t2), xp.sin(t2), s[:, 2], s[:, 3]])
        return torch.from_numpy(obs.astype(np.float32)) if on_cpu else obs.to(torch.float32)

    def reward(self, terminated: Tensor) -> Tensor:
        return torch.where(terminated, 0.0, -1.0).to(DTYPE)


_ENVS: dict[str, type[BatchEnv]] = {"CartPole-v1": CartPoleBatch, "Acrobot-v1": AcrobotBatch}


def make_batch_env(env_id: str) -> BatchEnv:
    """The batched simulator of ``env_id`` (one of :data:`ENV_IDS`); an unknown id raises ``ValueError``."""
    if env_id not in _ENVS:
        raise ValueError(f"unknown environment id {env_id!r}: the batched simulators are {', '.join(ENV_IDS)}")
    return _ENVS[env_id]()


def env_spec(env_id: str) -> EnvSpec:
    """The :class:`EnvSpec` of ``env_id`` (``ValueError`` for an unknown id)."""
    return make_batch_env(env_id).spec


@dataclass(frozen=True)
class RolloutResult:
    """Episodes run by :func:`rollout`: ``returns [n]`` (float64), ``lengths [n]`` (steps taken;
    their sum is the env steps consumed) and ``terminated [n]`` (ended by the environment, not by
    the horizon)."""

    returns: Tensor
    lengths: Tensor
    terminated: Tensor

    @property
    def env_steps(self) -> int:
        return int(self.lengths.sum())


def rollout(env: BatchEnv, act: Callable[[Tensor], Tensor], states: Tensor, horizon: int | None = None) -> RolloutResult:
    """Run the episodes that start at ``states [n, state_dim]`` until they terminate or reach
    ``horizon`` steps (default: the environment's ``max_episode_steps``), choosing actions with
    ``act(observations [n, obs_dim] float32) -> actions [n]``.

    Every environment is stepped at every time step (one batched call); an episode that has ended
    stops accumulating reward and length, and the loop stops once every episode has ended.
    """
    horizon = env.spec.max_episode_steps if horizon is None else int(horizon)
    if horizon < 1:
        raise ValueError(f"horizon must be a positive integer, got {horizon!r}")
    if states.ndim != 2 or states.shape[1] != env.spec.state_dim:
        raise ValueError(f"{env.spec.env_id}: states must have shape [n, {env.spec.state_dim}], got "
                         f"{tuple(states.shape)}")
    n = states.shape[0]
    returns = torch.zeros(n, dtype=DTYPE, device=states.device)
    lengths = torch.zeros(n, dtype=torch.long, device=states.device)
    alive = torch.ones(n, dtype=torch.bool, device=states.device)
    obs = env.observe(states)
    for _ in range(horizon):
        actions = act(obs)
        states, obs, reward, done = env.step(states, actions)
        returns += torch.where(alive, reward, 0.0)
        lengths += alive.long()
        alive &= ~done
        if not bool(alive.any()):
            break
    return RolloutResult(returns, lengths, ~alive)
