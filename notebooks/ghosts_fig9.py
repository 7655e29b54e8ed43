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
# # Ghosts of softmax, Fig 9: the temperature fingerprint
#
# Sao (arXiv 2603.13552) bounds the radius of convergence of the cross-entropy along a step
# direction $v$ by $\rho_a = \pi/\Delta_a$ (Theorem 4.6; over a batch $\Delta_a = \max_x$ of the
# per-sample spread, Definition 4.7), with $\Delta_a$ the spread of the directional logit
# derivatives $a = J_z v$. With logits divided by a temperature $T$, the spread of the directional
# logit derivatives becomes $\Delta_a/T$, so the radius is $\rho_T = \pi T/\Delta_a$ ($\Delta_a$ of
# the raw logits): the "temperature fingerprint" of Section 6.4. An MLP 64-128-128-10 is trained
# with $\mathrm{CE}(z/T)$ for $T \in \{0.25, \dots, 8\}$; one descent step of size $\tau$ is taken
# and the tempered loss ratio recorded. Panel (A) plots it against the raw $\tau$, panel (B) against
# $r_T = \tau\Delta_a/(\pi T)$, panel (C) the loss-ratio-2 onsets of each temperature relative to
# their median.
#
# Protocol: the authors' `tempfingerprint` (paper/ghosts_notes.md §4.6). The paper's "collapse std
# 0.992 -> 0.164" is not defined anywhere (§5 item 10 there); the table reports several
# explicit spread metrics of the onsets across temperatures (std in each unit, std of
# $\log_{10}$, coefficient of variation). Only the unit-free ones can be compared between panels.

# %% [markdown]
# ## The fingerprint on a toy classifier
#
# A 64-32-10 GELU MLP, 40 full-batch Adam steps on 300 digits at $T = 1$; $v$ is the unit descent
# direction, and one JVP (`directional_logit_derivatives`) gives every sample's logits $z$ and
# slopes $a = J_z v$. Notice that $\rho_1 = \pi/\Delta_a$ is a parameter-space distance, here a
# fraction of a unit step.

# %%
import math

import matplotlib.pyplot as plt
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from ghosts import radius_models as rm
from ghosts import softmax_radius as sr

digits = load_digits()
x = torch.tensor(digits.data[:300] / 16, dtype=torch.float32)
y = torch.tensor(digits.target[:300])
torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.GELU(), torch.nn.Linear(32, 10))
opt = torch.optim.Adam(model.parameters(), lr=0.01)
for _ in range(40):
    opt.zero_grad()
    F.cross_entropy(model(x), y).backward()
    opt.step()

opt.zero_grad()
F.cross_entropy(model(x), y).backward()
grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
v = -grad / grad.norm()  # flat vector in model.parameters() order
z, a = rm.directional_logit_derivatives(model, x, v, return_logits=True)
z, a = z.double().numpy(), a.double().numpy()
rho_1 = sr.rho_a(a)  # pi / max_x Delta_a(x)
print(f"training loss {F.cross_entropy(model(x), y).item():.3f}, Delta_a = {sr.logit_spread(a).max():.2f}, "
      f"rho_1 = {rho_1:.3f}")

# %% [markdown]
# Tempering divides the logits *and* their slopes by $T$. Notice that the bound $\rho_a$ of the
# tempered slopes is exactly $T\rho_1$, while the exact radius $\rho^*$ of Proposition 4.2 (the
# nearest complex zero of the partition function, `exact_radius`, shown for the sample with the
# largest spread) stays above it and grows like $T$ only at large $T$: at small $T$ it is set by the
# logit gaps, as in the binary closed form of Theorem 4.3, $\rho^* = \sqrt{\delta^2 + \pi^2 T^2}/|D|$
# for logits $z/T$ and slopes $a/T$ ($\delta$, $D$ the raw gap and slope difference).

# %%
i = int(np.argmax(sr.logit_spread(a)))
print("    T   rho_a(a/T)   T rho_1   rho*(z/T, a/T) of sample i   rho*/rho_a")
for T in [0.25, 0.5, 1, 2, 4, 8]:
    exact = sr.exact_radius(z[i] / T, a[i] / T)
    print(f"{T:5g}   {sr.rho_a(a / T):10.4f}   {T * rho_1:7.4f}   {exact:26.4f}   {exact / sr.rho_a(a[i] / T):10.2f}")

# %% [markdown]
# Now the step itself: the tempered loss ratio $L_T(\theta + \tau v)/L_T(\theta)$ along $v$ for
# each $T$ (one network, only the loss is tempered). Notice that against the raw $\tau$ the onsets
# (ratio $\geq 2$) spread with $T$, and against $r_T = \tau/\rho_T$ they gather a few $\rho_T$ out
# for $T \geq 1$; at small $T$ the onset stays at the same raw $\tau$, as $\rho^*$ does above.

# %%
temps = [0.25, 0.5, 1, 2, 4, 8]
taus = np.geomspace(1e-3, 30, 60)
theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach()


def tempered_loss(tau, T):
    torch.nn.utils.vector_to_parameters(theta + tau * v, model.parameters())
    return F.cross_entropy(model(x) / T, y).item()


with torch.no_grad():
    ratio = {T: np.array([tempered_loss(t, T) for t in taus]) / tempered_loss(0.0, T) for T in temps}
    torch.nn.utils.vector_to_parameters(theta, model.parameters())

fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True, layout="constrained")
for T in temps:
    axes[0].loglog(taus, ratio[T], label=f"T = {T:g}")
    axes[1].loglog(taus / (T * rho_1), ratio[T])
axes[0].set(xlabel=r"raw $\tau$", ylabel=r"$L_T(\theta+\tau v)/L_T(\theta)$")
axes[1].set(xlabel=r"$r_T = \tau/\rho_T$", xlim=(1e-2, 1e2))
for ax in axes:
    ax.axhline(2, color="0.5", ls=":")
axes[0].legend(fontsize=7)
plt.show()

onset = {T: taus[np.argmax(ratio[T] >= 2)] for T in temps}  # first tau with loss ratio >= 2
log_raw = np.log10(list(onset.values()))
log_r = np.log10([onset[T] / (T * rho_1) for T in temps])
print("onset (ratio >= 2) r_T: " + ", ".join(f"T={T:g}: {onset[T] / (T * rho_1):.2g}" for T in temps))
print(f"std of log10(onset): raw tau {log_raw.std():.2f}, r_T {log_r.std():.2f}")

# %% [markdown]
# ## The paper's figure
#
# The experiment trains one network per temperature (and seed) with $\mathrm{CE}(z/T)$, so that,
# unlike the toy above, $\Delta_a$ itself changes with $T$.

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ghosts_fig9")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ghosts_fig9", measurements)

# %% [markdown]
# ## What this shows
#
# In the committed `cpu` run (5 seeds) the normalized onsets align, every temperature's $r_T$ onset
# between 2.22 and 2.85 (max/min 1.28), and normalizing shrinks both unit-free spreads about 4x (the
# paper: ~6x): those two claims are reproduced qualitatively. The raw-$\tau$ claim is not: networks
# trained at high $T$ learn larger raw logits ($\Delta_a$ 16.5 at $T = 0.25$, 177 at $T = 8$), so the
# raw onsets vary only ~3x (std of $\log_{10}$ 0.19, below the rule's 0.3), and the paper's "collapse
# std" has no definition to check. The `ci` run shown here (one seed, 40 training steps) is below the
# registered `cpu` scale, so its numbers are indicative only.
