# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Ghosts of softmax, Figure 8 and Appendix 5.4: the gradient against random directions
#
# The radius bound of P. Sao, "Ghosts of Softmax" (arXiv 2603.13552) depends on the direction:
# $$\rho_a(v) = \frac{\pi}{\max_x \Delta_a(x; v)},\qquad \Delta_a = \max_k a_k - \min_k a_k,\quad a = J_z v$$
# (Theorem 4.6, Definition 4.7). Measured in its own units, $r = \tau/\rho_a(v)$, a step should be
# safe below $r = 1$ along **any** direction, not only the gradient's. Figure 8 sweeps $r$ along
# the gradient and 20 random unit directions at three stages of training and plots the training-loss
# ratio and the fraction of training predictions that flip. Appendix 5.4 compares $\rho_a$ with the
# step scale of the quadratic model, $\tau_H = 2/\kappa$, $\kappa = v^\top H v$, and states that
# $\rho_a < 2/\kappa$ in every case, by a factor growing from ~10x early in training to ~460x late.
#
# Protocol (the authors' `randomdirs`, paper/ghosts_notes.md §4.7): a linear classifier
# `nn.Linear(64, 10)` on digits (the paper does not name the model, §5 item 12), SGD lr 0.1,
# batch 64, checkpoints after 30 (early), 180 (mid) and 700 (late) steps. The "gradient" is the
# **ascent** direction $+g/\|g\|$, as in the released code. For a linear model the logits are affine
# in the parameters, so $\rho_a$ from one JVP is exact, not a linearization.

# %% [markdown]
# ## The mid checkpoint and 21 directions
#
# 180 SGD steps on 500 digits; then the unit ascent direction and 20 random unit directions, and
# $\rho_a$ of each by one JVP over the 500 samples (`model_rho_a`). Notice that the gradient's radius
# is the smallest: the gradient is the direction that moves the logits' spread fastest.

# %%
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from ghosts import radius_models as rm

digits = load_digits()
x = torch.tensor(digits.data[:500] / 16, dtype=torch.float32)
y = torch.tensor(digits.target[:500])

torch.manual_seed(0)
gen = torch.Generator().manual_seed(0)
model = torch.nn.Linear(64, 10)
opt = torch.optim.SGD(model.parameters(), lr=0.1)
for _ in range(180):
    idx = torch.randint(0, len(x), (64,), generator=gen)
    opt.zero_grad()
    F.cross_entropy(model(x[idx]), y[idx]).backward()
    opt.step()

params = list(model.parameters())
theta = torch.nn.utils.parameters_to_vector(params).detach()
loss0 = F.cross_entropy(model(x), y)
grad = torch.cat([g.reshape(-1) for g in torch.autograd.grad(loss0, params)])
directions = [grad / grad.norm()]  # the ascent direction +g/||g||, then 20 random ones
for _ in range(20):
    u = torch.randn(theta.numel(), generator=gen)
    directions.append(u / u.norm())
rho = np.array([rm.model_rho_a(model, x, v) for v in directions])
with torch.no_grad():
    z0 = model(x)
print(f"training accuracy {(z0.argmax(1) == y).float().mean():.1%}")
print(f"rho_a: gradient {rho[0]:.3f}   random median {np.median(rho[1:]):.3f} "
      f"(range {rho[1:].min():.3f}-{rho[1:].max():.3f})")

# %% [markdown]
# ## Sweeping $r = \tau/\rho_a(v)$
#
# One step of length $r\rho_a(v)$ along each direction: the training-loss ratio and the fraction of
# predictions that change. Notice that in units of $r$ all directions behave alike: the loss ratio
# stays below 2 up to $r = 1$ and grows quickly beyond, the ascent direction (the steepest increase)
# ahead of the random ones. The predictions, though, already change at $r = 1$, where the loss has
# not yet doubled: the paper's "no failure below $r = 1$" is about the loss, not about prediction
# churn (paper/ghosts_notes.md §5 item 11).

# %%
def after_step(v, tau):
    """Logits at theta + tau v (the parameters are restored)."""
    torch.nn.utils.vector_to_parameters(theta + tau * v, params)
    z = model(x)
    torch.nn.utils.vector_to_parameters(theta, params)
    return z


print("   r   loss ratio: gradient / median random   flips: gradient / median random")
with torch.no_grad():
    for r in (0.1, 0.5, 1, 2, 4):
        zs = [after_step(v, r * p) for v, p in zip(directions, rho)]
        ratio = [F.cross_entropy(z, y).item() / loss0.item() for z in zs]
        flips = [(z.argmax(1) != z0.argmax(1)).float().mean().item() for z in zs]
        print(f"{r:4g}   {ratio[0]:18.2f} / {np.median(ratio[1:]):5.2f}   "
              f"{flips[0]:15.0%} / {np.median(flips[1:]):.0%}")

# %% [markdown]
# ## The Hessian step scale (Appendix 5.4)
#
# $\kappa = v^\top H v$ by a Hessian-vector product (double backpropagation) and $\tau_H = 2/\kappa$.
# Notice that $\tau_H$ exceeds $\rho_a$ along every direction, many times over: the quadratic model
# promises a safe step far beyond the radius where its own Taylor series stops converging.

# %%
def curvature(v):
    """kappa = v^T H v of the training loss at theta, by double backpropagation."""
    loss = F.cross_entropy(model(x), y)
    g = torch.cat([t.reshape(-1) for t in torch.autograd.grad(loss, params, create_graph=True)])
    hv = torch.cat([t.reshape(-1) for t in torch.autograd.grad(g @ v, params)])
    return (hv @ v).item()


excess = np.array([2 / curvature(v) for v in directions]) / rho  # (2/kappa) / rho_a
print(f"(2/kappa)/rho_a: gradient {excess[0]:.1f}x, random median {np.median(excess[1:]):.1f}x, "
      f"smallest {excess.min():.1f}x; rho_a < 2/kappa along all 21 directions: {bool((excess > 1).all())}")

# %% [markdown]
# ## The paper's figures
#
# The first figure sweeps the three checkpoints (top row: loss ratio, bottom row: flip fraction;
# median of the random directions with their 10-90% band). The second compares $\tau_H$ with
# $\rho_a$ per direction, and our reading of Appendix 5.4's "crossover margin vs learning rate"
# claim, which the paper states without data or definition (paper/ghosts_notes.md §5 item 18).

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ghosts_fig8")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ghosts_fig8", measurements)

# %% [markdown]
# ## What this shows
#
# The shape of Figure 8 is reproduced qualitatively in the committed `cpu` run (5 seeds): at $r = 1$
# the loss ratio is 1.52/1.09, 1.65/1.15, 1.69/1.21 (gradient / median random; paper 1.50/1.08,
# 1.48/1.14, 1.59/1.20), and $\rho_a < 2/\kappa$ holds in all 300 random cases. The numbers that
# depend on one seed are not: the early checkpoint's accuracy varies from 71% to 82% across seeds
# (paper 73%, ours 78.9%), the Hessian overestimate grows from 23.6x to 60.2x rather than ~10x to
# ~460x, and the crossover fit gives $R^2 = 0.878$ under our reading of an undefined quantity; early
# in training 68% of the predictions already flip at $r = 1$ along random directions. The `ci` run
# shown here is below the registered `cpu` scale, so its numbers are indicative only.
