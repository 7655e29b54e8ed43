"""Ghosts of softmax: the step-size radius of cross-entropy, as a library.

P. Sao, "Ghosts of Softmax: Complex Singularities That Limit Safe Step Sizes in Cross-Entropy"
(arXiv 2603.13552).  Along a direction ``v`` the cross-entropy loss ``L(theta + tau v)`` is analytic
in ``tau`` up to the nearest complex zero of the partition function ``Z(tau) = sum_k exp(z_k(tau))``
(a "ghost"); its distance ``R`` bounds the step for which the Taylor model can be trusted.

Modules (usable without the reproduction machinery in ``repro/``):

* :mod:`ghosts.softmax_radius` -- exact radii and their bounds for a vector of logits and slopes:
  binary radius ``sqrt(delta^2 + pi^2)/|a|`` (Thm 4.3), the multiclass lower bound
  ``rho_a = pi / (a_max - a_min)`` (Thm 4.6), batch minimum (Eq. 15), ghost location (Eq. 13),
  Taylor-coefficient envelopes and the KL-direction bounds of the appendix.
* :mod:`ghosts.radius_models` -- the same quantities for a ``torch.nn.Module`` along a parameter
  direction: the slopes ``a = J_z v`` by forward-mode AD (JVP) or finite differences, in eval mode
  or with BatchNorm on the batch's statistics, and ``rho_from_slopes`` (Definition 4.7, Eq. 15).
  ``model_rho_a``, ``batch_rho_a`` and ``batch_rho_a_fd`` are radius functions
  ``radius_fn(model, x, v, *, params) -> float``.
* :mod:`ghosts.radius_controller` -- ``RadiusController``, the radius-clipped step of Prop. 5.2
  (``tau <= r * rho_a``) wrapped around any ``torch.optim`` optimizer, with the radius function as
  its ``radius_fn`` argument (default ``model_rho_a``).
"""

from . import radius_controller, radius_models, softmax_radius

__all__ = ["softmax_radius", "radius_models", "radius_controller"]
