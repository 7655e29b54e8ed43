r"""The policies of Table T7 / Figure F6 and their batched evaluation over a population.

Policy (paper/polystep_reconstruction.md §5.2, "RL policies"): ``obs -> Linear(obs, 16) -> act ->
Linear(16, actions)``, greedy action ``argmax`` of the output (CartPole 114 parameters, Acrobot 163),
with one of three hidden activations (:data:`ACTIVATIONS`):

* ``"tanh"`` -- the float policy;
* ``"int8"`` -- symmetric int8 quantisation of the hidden pre-activation ``h`` in place of tanh::

      q(h) = round(h / s) s,      s = max_j |h_j| / 127       (q = 0 where s = 0)

  with one scale per *tensor*, here the hidden vector of one observation (``max`` over its 16
  units): a policy's action then depends on its own observation only, whatever batch it is
  evaluated in (the paper's runner may have taken the max over its batch of 16 environments; it
  was not shipped);
* ``"binary"`` -- ``sign(h)`` (``sign(0) = 0``).

Gradients (for PPO / DQN, :mod:`repro.experiments.t7_rl_control`): the quantised activations pass
*no* gradient through the rounding -- plain autograd, where ``round`` and ``sign`` have derivative
0 almost everywhere (``int8``'s output keeps a gradient through the scale ``s``, i.e. through the
largest ``|h_j|``).  This is the reading consistent with the paper's "PPO and DQN collapse"
(no surrogate is mentioned); ``gradient="ste"`` gives the straight-through estimator
(``h + (q(h) - h).detach()``) for comparison, unused by the experiment's table.

Population evaluation (:func:`population_returns`): the parameters of ``P`` candidate policies --
one tensor per layer parameter, ``[P, *shape]`` (what :class:`polystep.optim.PolyStep` hands a
closure) or a flat ``[P, n]`` (:func:`unflatten`) -- are run on the same ``R`` initial states each
(common random numbers, like the one mini-batch shared by all probes of a step), ``P R`` episodes
in one batched rollout (:func:`repro.tasks.rl_envs.rollout`); the return of a candidate is the mean
over its ``R`` episodes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from repro.tasks.models import mlp
from repro.tasks.rl_envs import BatchEnv, RolloutResult, rollout

__all__ = ["ACTIVATIONS", "GRADIENTS", "HIDDEN", "int8_quantize", "activate", "Int8Activation", "SignActivation",
           "activation_module", "PolicySpec", "policy_spec", "build_policy", "unflatten", "flatten_module",
           "population_actions", "population_returns", "PopulationReturns", "module_returns"]

ACTIVATIONS = ("tanh", "int8", "binary")
GRADIENTS = ("none", "ste")
HIDDEN = 16


def _check_activation(name: str) -> str:
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}: one of {', '.join(ACTIVATIONS)}")
    return name


def int8_quantize(h: Tensor) -> Tensor:
    """``round(h / s) s`` with ``s = max |h| / 127`` over the last dimension (module docstring)."""
    s = h.abs().amax(dim=-1, keepdim=True) / 127.0
    safe = torch.where(s > 0, s, torch.ones_like(s))
    return torch.where(s > 0, torch.round(h / safe) * safe, torch.zeros_like(h))


def activate(h: Tensor, name: str, gradient: str = "none") -> Tensor:
    """The hidden activation ``name`` of :data:`ACTIVATIONS` applied to ``h``; ``gradient`` (the
    quantised ones): ``"none"`` (autograd as is) or ``"ste"`` (straight-through)."""
    _check_activation(name)
    if gradient not in GRADIENTS:
        raise ValueError(f"unknown gradient {gradient!r}: one of {', '.join(GRADIENTS)}")
    if name == "tanh":
        return torch.tanh(h)
    q = int8_quantize(h) if name == "int8" else torch.sign(h)
    return h + (q - h).detach() if gradient == "ste" else q


class _Activation(nn.Module):
    name = "tanh"
    gradient = "none"

    def forward(self, h: Tensor) -> Tensor:
        return activate(h, self.name, self.gradient)

    def extra_repr(self) -> str:
        return f"gradient={self.gradient}"


class Int8Activation(_Activation):
    """int8 activation quantisation as an ``nn.Module`` (no gradient through the rounding)."""

    name = "int8"


class SignActivation(_Activation):
    """sign activation as an ``nn.Module`` (no gradient: ``d sign / dh = 0``)."""

    name = "binary"


class _Int8STE(Int8Activation):
    gradient = "ste"


class _SignSTE(SignActivation):
    gradient = "ste"


def activation_module(name: str, gradient: str = "none") -> type[nn.Module]:
    """The ``nn.Module`` class of activation ``name`` (what stable-baselines3's ``activation_fn``
    takes: a class built without arguments)."""
    _check_activation(name)
    if gradient not in GRADIENTS:
        raise ValueError(f"unknown gradient {gradient!r}: one of {', '.join(GRADIENTS)}")
    if name == "tanh":
        return nn.Tanh
    return {("int8", "none"): Int8Activation, ("int8", "ste"): _Int8STE,
            ("binary", "none"): SignActivation, ("binary", "ste"): _SignSTE}[(name, gradient)]


@dataclass(frozen=True)
class PolicySpec:
    """An ``obs -> hidden -> actions`` policy: its sizes and activation."""

    obs_dim: int
    n_actions: int
    activation: str = "tanh"
    hidden: int = HIDDEN

    def __post_init__(self) -> None:
        _check_activation(self.activation)
        for name in ("obs_dim", "n_actions", "hidden"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")

    @property
    def shapes(self) -> tuple[tuple[int, ...], ...]:
        """``W1, b1, W2, b2`` in ``nn.Sequential``'s parameter order."""
        return ((self.hidden, self.obs_dim), (self.hidden,), (self.n_actions, self.hidden), (self.n_actions,))

    @property
    def n_params(self) -> int:
        return sum(torch.Size(s).numel() for s in self.shapes)


def policy_spec(env: BatchEnv, activation: str = "tanh", hidden: int = HIDDEN) -> PolicySpec:
    """The policy of ``env``: its observation size in, its number of actions out."""
    return PolicySpec(env.spec.obs_dim, env.spec.n_actions, activation, hidden)


def build_policy(spec: PolicySpec, generator: torch.Generator) -> nn.Sequential:
    """``Linear - act - Linear`` with PyTorch's default initialisation drawn from ``generator``."""
    return mlp((spec.obs_dim, spec.hidden, spec.n_actions), generator, activation=activation_module(spec.activation))


def flatten_module(module: nn.Module) -> Tensor:
    """The module's parameters as one flat vector (``parameters()`` order)."""
    return torch.cat([p.detach().reshape(-1) for p in module.parameters()])


def unflatten(theta: Tensor, spec: PolicySpec) -> list[Tensor]:
    """``[P, n]`` flat parameters -> ``[W1 [P, h, obs], b1 [P, h], W2 [P, A, h], b2 [P, A]]``."""
    if theta.ndim != 2 or theta.shape[1] != spec.n_params:
        raise ValueError(f"flat policy parameters must have shape [P, {spec.n_params}] for {spec}, got "
                         f"{tuple(theta.shape)}")
    out, i = [], 0
    for shape in spec.shapes:
        n = torch.Size(shape).numel()
        out.append(theta[:, i:i + n].reshape(theta.shape[0], *shape))
        i += n
    return out


def _check_params(params: Sequence[Tensor], spec: PolicySpec) -> int:
    if len(params) != 4:
        raise ValueError(f"a policy has 4 parameter tensors (W1, b1, W2, b2), got {len(params)}")
    P = params[0].shape[0]
    for p, shape, name in zip(params, spec.shapes, ("W1", "b1", "W2", "b2")):
        if tuple(p.shape) != (P, *shape):
            raise ValueError(f"policy parameter {name} must have shape {(P, *shape)} (obs {spec.obs_dim} -> "
                             f"{spec.hidden} -> {spec.n_actions} actions), got {tuple(p.shape)}")
    return P


def population_actions(params: Sequence[Tensor], obs: Tensor, spec: PolicySpec) -> Tensor:
    """Greedy actions ``[P, R]`` of ``P`` policies on their observations ``obs [P, R, obs_dim]``."""
    W1, b1, W2, b2 = params
    h = torch.baddbmm(b1.unsqueeze(1), obs, W1.transpose(1, 2))      # [P, R, hidden]
    a = activate(h, spec.activation)
    logits = torch.baddbmm(b2.unsqueeze(1), a, W2.transpose(1, 2))   # [P, R, actions]
    return logits.argmax(dim=-1)


@dataclass(frozen=True)
class PopulationReturns:
    """Per candidate the mean return over its episodes ``[P]``; the episodes' returns ``[P, R]``;
    env steps consumed in all."""

    returns: Tensor
    episode_returns: Tensor
    env_steps: int


def population_returns(params: Sequence[Tensor] | Tensor, env: BatchEnv, spec: PolicySpec, states: Tensor,
                       horizon: int | None = None) -> PopulationReturns:
    """Run every candidate policy on the episodes starting at ``states [R, state_dim]`` (the same
    ``R`` states for each), ``P R`` episodes in one batched rollout.

    Args:
        params: ``[W1, b1, W2, b2]`` each ``[P, *shape]``, or flat parameters ``[P, n]``.
        env: the batched simulator; ``spec`` must match its observation and action sizes.
        spec: the policy.
        states: initial states ``[R, state_dim]``.
        horizon: episode cap (default: the environment's 500).
    """
    if (spec.obs_dim, spec.n_actions) != (env.spec.obs_dim, env.spec.n_actions):
        raise ValueError(f"policy {spec.obs_dim} -> {spec.n_actions} actions does not fit {env.spec.env_id} "
                         f"({env.spec.obs_dim} observations, {env.spec.n_actions} actions)")
    if isinstance(params, Tensor):
        params = unflatten(params, spec)
    params = [p.detach() for p in params]
    P = _check_params(params, spec)
    R = states.shape[0]
    start = states.repeat(P, 1)  # candidate-major: episode (p, r) at row p R + r

    def act(obs: Tensor) -> Tensor:
        return population_actions(params, obs.to(params[0].dtype).reshape(P, R, -1), spec).reshape(P * R)

    with torch.no_grad():
        res: RolloutResult = rollout(env, act, start, horizon)
    episode = res.returns.reshape(P, R)
    return PopulationReturns(episode.mean(dim=1), episode, res.env_steps)


def module_returns(policy, env: BatchEnv, states: Tensor, horizon: int | None = None) -> RolloutResult:
    """Episodes of one policy given as a callable ``obs [n, obs_dim] -> outputs [n, n_actions]``
    (an ``nn.Module``: the greedy action is the argmax of its outputs).  An output with the wrong
    number of actions raises ``ValueError``."""
    A = env.spec.n_actions

    def act(obs: Tensor) -> Tensor:
        out = policy(obs)
        if out.ndim != 2 or out.shape != (obs.shape[0], A):
            raise ValueError(f"{env.spec.env_id}: the policy must output [n, {A}] action scores for n observations, "
                             f"got shape {tuple(out.shape)} for {obs.shape[0]} observations")
        return out.argmax(dim=-1)

    with torch.no_grad():
        return rollout(env, act, states, horizon)
