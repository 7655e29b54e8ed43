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
# # Figure 13: the Hessian's step scale vs the Taylor radius, against the margin
#
# For the logistic loss $f(x) = \log(1 + e^{-x})$ at margin $\delta$, the curvature is
# $f''(\delta) = \sigma(\delta)(1-\sigma(\delta))$, so a Hessian-based step scale is
# $1/f''(\delta) = 2 + 2\cosh\delta \sim e^\delta$. The loss's complex singularities sit at
# $x = i\pi(2k+1)$, so its Taylor radius about $\delta$ is only $R(\delta) = \sqrt{\delta^2+\pi^2}
# \sim \delta$. Confident samples (large $\delta$) make curvature promise exponentially more room
# than the series can deliver.
#
# At $\delta = 10$: $1/f'' = 22{,}028$ vs $R = 10.48$, a factor **2,102** by the figure's own
# numbers, **4,203** with the $\tau_H = 2/\kappa$ convention (the caption's "> 4000x"; see the
# `ghosts_theory` claim `ghosts.fig13_hessian_mismatch_factor`). The two curves never cross (the
# ratio is at least $4/\pi$); the line at $\delta = \pi$ marks where the overestimate turns from
# an O(1) factor into an exponential one.
#
# Pure mathematics: the `ci`, `cpu` and `paper` scales are identical.

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ghosts_fig13")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ghosts_fig13", measurements)
