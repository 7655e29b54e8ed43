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
# **What is checked, and from what.** The abstract says PolyStep's conservative-stationarity guarantee
# is "upgraded to Clarke-stationary on the headline architectures"; the mechanism and the list of
# architectures were not readable (digest section 3.3, [U]). Two checks, with the measures of
# `theory/stationarity.py` (Goldstein $\delta$-stationarity from sampled gradients with an exact
# min-norm QP; exact Clarke measures from the active pieces):
#
# 1. **Upgrade.** Bolte & Pauwels' program $f(x) = \sum_i \mathrm{ReLU}(x_i) - \mathrm{ReLU}(-x_i) +
#    0.5\|x\|^2$ is smooth as a function, but autodiff returns $0$ at $x = 0$: a conservative-stationary
#    point that is not Clarke-stationary ($\mathrm{dist}(0, \partial_C f(0)) = 2$ in $D = 4$). PolyStep,
#    started there, only sees function values; its limit points are checked with the exact Clarke
#    measure and the Goldstein estimate for $\delta \to 0$. A first-order method fed by the autodiff
#    selection is the contrast. An $\ell_1$ regression, nonsmooth at its minimiser, is shown with one
#    particle and with two block particles (the optimizer's block-coordinate mode).
# 2. **Vacuity.** On piecewise-constant losses (a staircase, a linear classifier with rounded weights)
#    every iterate is locally constant, hence Clarke-stationary, while the loss still decreases.

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
