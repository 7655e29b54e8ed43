"""PolyStep: gradient-free training with polytope probes and a one-sided optimal-transport step.

Le, "Training Non-Differentiable Networks via Optimal Transport" (arXiv 2605.01928).  One step moves
every particle ``x_i`` (a block of subspace coordinates) to the softmax-weighted barycentre of the
vertices of a randomly rotated polytope around it::

    x_i' = x_i + r_s R_i sum_v w_iv u_v,    w_iv = softmax_v(-C_iv / eps),
    C_iv = (1/K) sum_k L(x_i + s_k r_p R_i u_v)          (forward passes only)

Modules: :mod:`~polystep.polytopes`, :mod:`~polystep.transport`, :mod:`~polystep.functional`
(the pure step), :mod:`~polystep.schedules`, :mod:`~polystep.subspace`, :mod:`~polystep.optim`
(``PolyStep`` optimizer), :mod:`~polystep.evaluation` (population closures), :mod:`~polystep.ask_tell`,
:mod:`~polystep.fast_eval` (fast population closures for layer stacks),
:mod:`~polystep.nondiff` (the non-differentiable building blocks of the experiments),
:mod:`~polystep.baselines` (OpenAI-ES, SPSA, CMA-ES in the same ask/tell and closure protocols).
"""

from .functional import NonFiniteLossError, NonFiniteStepError, PolyStepConfig, PolyStepState, StepInfo
from .optim import NonFiniteParameterError, PolyStep

__all__ = ["PolyStep", "PolyStepConfig", "PolyStepState", "StepInfo", "NonFiniteLossError",
           "NonFiniteStepError", "NonFiniteParameterError"]
__version__ = "0.1.0"
