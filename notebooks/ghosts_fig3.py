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
# # Figure 3: the sigmoid's Taylor series stops at $x = \pi$
#
# $\sigma(x) = 1/(1 + e^{-x})$ is bounded and smooth on the whole real line, but $1 + e^{-x} = 0$
# at $x = i\pi(2k+1)$: the sigmoid has poles at $\pm i\pi, \pm 3i\pi, \dots$, so its Taylor series
# at 0 converges only for $|x| < \pi$. At $x = \pi$ the sigmoid is already 96% confident
# ($\sigma(\pi) = 0.9586$). A two-class softmax is a sigmoid of the logit margin, so this is the
# simplest "ghost of softmax": a complex singularity, invisible on the real line, that limits how
# far a local (Taylor) model of the loss can be trusted.
#
# * (a) the paper's figure, with Taylor polynomials of orders 5, 15, 45 overlaid;
# * (b) the poles, the disk of convergence, and the pole-free strip $|\mathrm{Im}\,t| < \pi$;
# * (c) truncation error against the order, inside and outside the disk;
# * (d) the radius read off the coefficients.
#
# Pure mathematics: the `ci`, `cpu` and `paper` scales are identical.

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ghosts_fig3")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ghosts_fig3", measurements)
