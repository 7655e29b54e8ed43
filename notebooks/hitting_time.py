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
# # Hitting times on piecewise-constant losses
#
# **What is checked, and from what.** The abstract says the analysis "extends to the piecewise-constant
# regime via a hitting-time bound"; the bound was not readable (digest section 3.4, [U]). The version
# checked (`theory/hitting_time.py`): on a staircase (radial $\lfloor\|x\|/w\rfloor$ and separable
# $\sum_i\lfloor|x_i|/w\rfloor$), the number of steps $\tau$ to the first lower level is geometric with
# the one-step hit probability $p$ of the start, $\mathbb{E}[\tau]\,\hat p = 1$; $p$ is bounded below by a
# spherical-cap measure $\mu = \tfrac12 I_{1-\kappa^2}(\tfrac{d-1}{2}, \tfrac12)$ (so
# $\mathbb{E}[\tau] \le 1/p_{lower}$); $\mathbb{E}[\tau]$ grows with $d_p$ and falls with $V$ and
# $r_s/w$; and two-point ES/SPSA estimates with perturbation $0.02w$ are exactly zero.
#
# Setting: start at level 20, $0.4w$ above the lower boundary; probes at the vertices
# ($r_p = 2r_s$, $K = 1$, the package default ratio), no jitter, $\varepsilon = 0.01$. On the radial
# staircase the lower sub-level set is a ball (convex), so a lower vertex implies a lower barycentre.

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("hitting_time")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("hitting_time", measurements)
