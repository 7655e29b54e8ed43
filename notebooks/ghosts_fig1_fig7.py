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
# # Ghosts of softmax, Figs 1 and 7 (reconstruction): how far can one step go?
#
# Six small digits classifiers (Linear, MLP, CNN, MLP+LN, CNN+BN, TinyTransformer) are trained to
# convergence with Adam. Along the descent direction $v = -g/\|g\|$ of the training loss, the radius
# $\rho_a = \pi / \max_x (\max_k a_k - \min_k a_k)$ comes from one forward-mode JVP
# ($a = J_z v$, Definition 4.7). One step of size $\tau = r\,\rho_a$ is taken, without training, for
# $r$ from $10^{-2}$ to $10^{2}$; panel (A) shows the test accuracy retained, panel (B) the
# training-loss inflation $L(\theta+\tau v)/L(\theta)$, median and IQR over seeds, with the safe
# zone $r < 1$ shaded and $r = 1$ dashed.
#
# The generator of the paper's Figs 1 and 7 was never released, and the two figures are different
# computations (they rank the linear model oppositely); this reconstruction follows Fig 7's JVP
# definition of $\rho_a$. A step *fails* when it keeps less than 90% of the accuracy or at least
# doubles the loss (the thresholds shared by every ghosts experiment). The table lists the 50%
# points per architecture and the spread of $\Delta_a$ over mini-batches (Appendix 1.2.2).
#
# Reference: P. Sao, "Ghosts of Softmax", arXiv 2603.13552, Figures 1 and 7, Definition 4.7 and
# Theorem 4.6 ($\rho^* \ge \rho_a$). The reconstructed protocol (data, training recipe, direction,
# failure thresholds) is written out in paper/ghosts_notes.md §4.3 and in the docstring of
# `repro/experiments/ghosts_fig1_fig7.py`; why the two figures differ, in §5 item 9.
# The library: `ghosts.radius_models` (the JVP) and `ghosts.softmax_radius`.

# %% [markdown]
# ## A toy classifier trained to convergence
#
# Four overlapping Gaussian blobs in 10 dimensions and a linear classifier, trained with
# full-batch Adam until the gradient is tiny. Notice the accuracy is not 100%: the blobs overlap,
# so the weights stop growing and the model sits at a real minimum.

# %%
import numpy as np
import torch
import torch.nn.functional as F
from torch.func import functional_call

from ghosts import radius_models as rm
from ghosts import softmax_radius as sr

torch.manual_seed(0)
centres = 0.8 * torch.randn(4, 10)
y = torch.arange(4).repeat_interleave(64)
x = centres[y] + torch.randn(256, 10)
model = torch.nn.Linear(10, 4)
opt = torch.optim.Adam(model.parameters(), lr=0.1)
for _ in range(150):
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()
with torch.no_grad():
    print(f"training loss {F.cross_entropy(model(x), y):.4f}, accuracy {(model(x).argmax(1) == y).float().mean():.1%}")

# %% [markdown]
# ## $\rho_a$ along the descent direction, from one JVP
#
# $v = -g/\|g\|$; `directional_logit_derivatives` returns $a = J_z v$ for every sample (and the
# logits $z$), `model_rho_a` reduces it to $\pi / \max_x \Delta_a(x)$. The same number comes from
# `softmax_radius.rho_a` on the array, and the exact radius of the bottleneck sample (the one with
# the largest spread) is larger, as Theorem 4.6 says. For a linear model the logits are affine in
# the parameters, so $z(\theta + t v) = z + t a$ holds exactly (last number: float32 rounding).

# %%
names = [n for n, _ in model.named_parameters()]
theta = {n: p.detach().clone() for n, p in model.named_parameters()}
grads = torch.autograd.grad(F.cross_entropy(model(x), y), list(model.parameters()))
gnorm = torch.sqrt(sum((g**2).sum() for g in grads))
v = {n: -g / gnorm for n, g in zip(names, grads)}

z, a = rm.directional_logit_derivatives(model, x, v, return_logits=True)
rho = rm.model_rho_a(model, x, v)
i = int((a.amax(1) - a.amin(1)).argmax())
print(f"|g| = {gnorm:.1e}   rho_a = {rho:.4f}   (softmax_radius.rho_a: {sr.rho_a(a.numpy()):.4f})")
print(f"bottleneck sample {i}: rho_a = {sr.rho_a(a[i].numpy()):.4f} <= rho* = {sr.exact_radius(z[i].numpy(), a[i].numpy()):.4f}")
with torch.no_grad():
    z_rho = functional_call(model, {n: theta[n] + rho * v[n] for n in names}, (x,))
print(f"max |z(theta + rho_a v) - (z + rho_a a)| = {(z_rho - (z + rho * a)).abs().max():.1e}")

# %% [markdown]
# ## One step of size $\tau = r\,\rho_a$, no training
#
# The training loss ratio $L(\theta + \tau v)/L(\theta)$, the accuracy retained and the fraction of
# predictions that flip. A step *fails* (the shared thresholds) when it keeps less than 90% of the
# accuracy or doubles the loss. Nothing fails below $r = 1$; on this toy the failures start between
# $r = 3$ and $r = 5$.

# %%
with torch.no_grad():
    loss0, pred0 = F.cross_entropy(z, y), z.argmax(1)
    acc0 = (pred0 == y).float().mean()
    print("     r   loss ratio   acc retained   flipped   fails")
    for r in (0.1, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 100.0):
        zr = functional_call(model, {n: theta[n] + r * rho * v[n] for n in names}, (x,))
        ratio = float(F.cross_entropy(zr, y) / loss0)
        kept = float((zr.argmax(1) == y).float().mean() / acc0)
        print(f"{r:6.1f} {ratio:12.3f} {kept:14.1%} {(zr.argmax(1) != pred0).float().mean():9.1%}"
              f"   {'yes' if kept < 0.9 or ratio >= 2 else 'no'}")

# %% [markdown]
# ## How much does $\Delta_a$ vary across mini-batches? (Appendix 1.2.2)
#
# The radius of a mini-batch is set by its worst sample, $\Delta_a^B = \max_{x \in B}\Delta_a(x)$.
# Along the fixed direction $v$, 20 random batches of 32 give the coefficient of variation
# std/mean below; the paper says "~1%" without a setting. Every batch radius is at least the
# full-set $\rho_a$.

# %%
spread = (a.amax(1) - a.amin(1)).double()
gen = torch.Generator().manual_seed(1)
batch = torch.stack([spread[torch.randperm(len(x), generator=gen)[:32]].max() for _ in range(20)])
print(f"Delta_a^B over 20 batches: mean {batch.mean():.3f}, cv {batch.std() / batch.mean():.1%}; "
      f"smallest batch radius pi/max Delta_a^B = {np.pi / batch.max():.4f} >= rho_a = {rho:.4f}")

# %% [markdown]
# ## The figures: six architectures on digits

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ghosts_fig1_fig7")

# %% [markdown]
# ## What this shows
#
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ghosts_fig1_fig7", measurements)

# %% [markdown]
# In the committed cpu run (5 seeds) the safety statement holds qualitatively: every architecture
# keeps at least 99.4% of its accuracy for $r < 1$, and the training loss starts rising near $r = 1$
# (ratio 1.1 at $r$ = 0.6 to 1.6) and first doubles at $r$ = 1.5 to 2.7. The size of the failure
# region does not match the paper: accuracy drops below 90% at $r$ = 2 to 7.7 (median 5.8, not
# "twice $\rho_a$"), the 50% points differ from Fig 1's (whose radius estimator is unstated) and
# $\Delta_a$ varies by 3.7% across mini-batches, not ~1%. At ci scale (one seed, short training)
# the numbers above are indicative only.
