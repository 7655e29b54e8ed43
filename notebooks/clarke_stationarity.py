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
# # The Clarke upgrade, and why it says nothing on piecewise-constant models
#
# **What is checked, and from what.** The abstract of PolyStep (A. T. Le, arXiv 2605.01928) says the
# conservative-stationarity guarantee of §4 is "upgraded to Clarke-stationary on the headline
# architectures"; the mechanism and the list of architectures were not readable. The statement checked
# is a **reconstruction** (`paper/polystep_reconstruction.md §3.3`, written out in the module docstring
# of `repro/experiments/clarke_stationarity.py`): with $r_s = r_p = r_0/\sqrt{t+1}$ and probe jitter
# $\eta_{max} > 0$, every limit point $\bar x$ of PolyStep is Clarke-stationary,
#
# $$0 \in \partial_C f(\bar x), \qquad \text{measured by}\quad
#   G_\delta(x) = \mathrm{dist}\big(0, \mathrm{conv}\{\nabla f(y) : y \in B(x, \delta)\}\big) \to 0
#   \ \text{as}\ \delta \to 0,$$
#
# the Goldstein $\delta$-stationarity of `theory.stationarity` (sampled gradients, an exact min-norm QP),
# next to exact Clarke measures from the active pieces. Two checks:
#
# 1. **Upgrade.** A genuinely nonsmooth ReLU program,
#    $f(x) = \sum_i 2\,\mathrm{ReLU}(y_i) - \mathrm{ReLU}(-y_i) + 3\,\mathrm{ReLU}(-y_i - 1)$ with
#    $y = Qx$ ($Q$ a random rotation, $D = 4$): as a function $\sum_i \max(y_i, 2y_i, -2y_i - 3)$,
#    convex and piecewise linear with kinks at $y_i = 0$ and $y_i = -1$, minimum $-D$ at the kink
#    $x^\star = -Q^\top \mathbf 1$. Backpropagation with $\mathrm{ReLU}'(0) = 0$ returns exactly $0$ at
#    $x = 0$ -- a conservative-stationary point -- although $\partial_C f(0) = Q^\top[1, 2]^D$ lies at
#    distance $\sqrt D = 2$ from $0$: not Clarke-stationary (`theory.stationarity.SpuriousKinkProgram`).
#    Gradient descent fed by autodiff never leaves $0$; PolyStep, started there, only sees function
#    values. At a finite horizon the iterate sits $O(r_T)$ from the kink, so $G_\delta(x_T)$ is small
#    only for $\delta$ above that distance.
# 2. **Vacuity.** On piecewise-constant losses (a staircase, a linear classifier with rounded weights)
#    every iterate is locally constant, hence Clarke-stationary, while the loss still decreases
#    (`paper/polystep_reconstruction.md §6 item 4`).

# %% [markdown]
# ## The spurious point
#
# Notice: autodiff returns exactly 0 at $x = 0$, the program's conservative field there contains 0,
# yet the exact Clarke measure and the Goldstein estimates at every $\delta$ are $2 = \sqrt D$; gradient
# descent fed by autodiff does not move.

# %%
import numpy as np
import torch

from polystep import functional
from polystep.schedules import InverseSqrt
from theory import objectives
from theory import stationarity as st

program = st.SpuriousKinkProgram(4, st.haar_orthogonal(4, torch.Generator().manual_seed(0)))
origin = torch.zeros(4, dtype=torch.float64)
lo, hi = program.conservative_field_box(origin)
print("autodiff gradient at 0:      ", program.autodiff_grad(origin[None])[0].numpy())
print(f"conservative field at 0:      Q^T prod_i [{lo[0]:.0f}, {hi[0]:.0f}]  (contains 0)")
print(f"exact Clarke measure at 0:    {st.clarke_measure(program, origin).norm:.4f}")
gen = torch.Generator().manual_seed(0)
for delta in (1e-1, 1e-2, 1e-3):
    estimate = st.goldstein_measure(program.grad, origin, delta, gen, num_samples=256).norm
    print(f"Goldstein G_delta(0), delta = {delta:.0e}: {estimate:.4f}")
path = st.subgradient_descent(program.autodiff_grad, origin[None], steps=100, eta0=0.1)
print(f"gradient descent on autodiff, 100 steps: max |x_t| = {np.abs(path).max()}")

# %% [markdown]
# ## PolyStep from the spurious point
#
# `polystep.functional.step` on eight independent particles ($d_p = D = 4$, each one chain), all started
# at $x = 0$: $r_s = r_p = 1/\sqrt{t+1}$, $\varepsilon = 0.1$, $\eta_{max} = 0.05$. Notice the iterates
# reach the minimiser, and the "knee": $G_\delta(x_T)$ drops to rounding once $\delta$ is well above
# $\|x_T - x^\star\|$ and is still $O(1)$ (the gradient of one linear piece) below it, a knee that moves
# to smaller $\delta$ as $T$ grows.

# %%
config = functional.PolyStepConfig(polytope="orthoplex", eps=0.1, step_radius=InverseSqrt(start=1.0),
                                   probe_radius=InverseSqrt(start=1.0), radius_mode="absolute",
                                   probe_jitter=0.05)
particles, state = torch.zeros(8, 4, dtype=torch.float64), functional.init()
print("    T   ||x_T - x*||   f - f*    max over chains of G_delta(x_T), delta = 1e-1, 1e-2, 1e-3")
for t in range(1, 1001):
    particles, state, _ = functional.step(particles, program, state, config, gen)
    if t in (10, 100, 1000):
        g = [st.goldstein_measures(program.grad, particles, d, gen, num_samples=64).max()
             for d in (1e-1, 1e-2, 1e-3)]
        print(f"{t:5d}   {float((particles - program.minimizer).norm(dim=1).mean()):10.4f}   "
              f"{float((program(particles) - program.minimum).mean()):7.4f}    "
              + "   ".join(f"{v:7.1e}" for v in g))

# %% [markdown]
# ## Vacuity on a staircase
#
# $f(x) = \lfloor \|x\| \rfloor$ (`theory.objectives.staircase_radial`), sixteen chains from level 20
# ($r_s = 1$, probes at the vertices, $\varepsilon = 0.01$). `theory.stationarity.locally_constant` certifies that $f$ is constant on a ball
# of radius $10^{-7}$ around an iterate, so the Clarke subdifferential there is $\{0\}$. Notice: every
# iterate is Clarke-stationary, and the loss still falls to 0.

# %%
staircase = objectives.staircase_radial(1.0)
chains = torch.zeros(16, 4, dtype=torch.float64)
chains[:, 0] = 20.4
stair_config = functional.PolyStepConfig(polytope="orthoplex", eps=0.01, step_radius=1.0, probe_radius=2.0,
                                         radius_mode="absolute")
state, stationary = functional.init(), []
for t in range(61):
    stationary.append(st.locally_constant(staircase, chains, 1e-7, 16, gen).mean())
    if t % 15 == 0:
        print(f"step {t:2d}: mean level {float(staircase(chains).mean()):5.2f}")
    if t < 60:
        chains, state, _ = functional.step(chains, staircase, state, stair_config, gen)
print(f"fraction of Clarke-stationary iterates: {np.min(stationary):.2f} (the smallest over the steps)")

# %% [markdown]
# ## The experiment
#
# The experiment runs these checks on 20 seeds up to $T = 5{,}000$ (`cpu`), adds an $\ell_1$ regression
# with one and with two block particles, and a rounded-weight classifier for the vacuity check.

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("clarke_stationarity")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("clarke_stationarity", measurements)

# %% [markdown]
# ## What this shows
#
# PolyStep is not trapped by the spurious zero of autodiff: in the committed `cpu` run (20 seeds,
# $T = 5{,}000$) it leaves $x = 0$, where the Clarke measure is 2, and ends $0.0029$ from the kink
# minimiser with $G_\delta(x_T) \approx 10^{-15}$ at $\delta = 10^{-1}, 10^{-2}$ -- but still 2 at
# $\delta = 10^{-3}$, below the knee (0.0046), so the pre-registered finite-$T$ check is not reproduced.
# With two block particles on the $\ell_1$ loss every block's measure is $\le 5 \cdot 10^{-15}$ while the
# full one stays $\ge 0.0627$ at $\|x_T - x^\star\| = 0.34$: block-coordinate PolyStep stalls at a point that
# is not Clarke-stationary (refuted). On the staircase and the rounded-weight classifier 100 % of the
# iterates are Clarke-stationary while the loss falls (20 → 0, 1.07 → 0.064): the guarantee is vacuous
# there (reproduced). The upgrade and vacuity claims are registered at `ci` scale, so a `ci` run judges
# them too; the block-coordinate claim's `ci` number ($T$ shorter, fewer seeds) is indicative only.
