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
# # Figures 4 and 5: why no ghost can enter the strip $|\mathrm{Im}\,t| < \pi/\Delta_a$
#
# Along a step $t$, the linearized softmax partition function is
# $F(t) = \sum_k V_k(t)$ with $V_k(t) = w_k e^{a_k t}$, $w_k = e^{z_k} > 0$. For $t = u + iy$
# each $V_k$ has argument $a_k y$, so all arguments lie in an interval of length
# $\Delta_a |y|$, $\Delta_a = \max_k a_k - \min_k a_k$.
#
# * **Figure 4 (Lemma 4.5).** If $\Delta_a|y| < \pi$ the vectors lie in an open half-plane and a
#   positive combination of them cannot vanish; in fact
#   $|F| \ge \cos(\Delta_a|y|/2)\sum_k |V_k|$. Panels (a, b) draw the vectors of one random
#   5-class instance inside the strip and at its nearest zero (where the head-to-tail chain closes);
#   panel (c) checks the bound at 40,000 random points of 200 random instances.
# * **Figure 5 (Theorem 4.6).** Hence the whole strip $|\mathrm{Im}\,t| < \pi/\Delta_a$ is
#   zero-free and $\rho^* \ge \rho_a = \pi/\Delta_a$. The plane is drawn in the scale-free variable
#   $s = \Delta_a t$ with the *computed* nearest zeros of 200 random instances (2 to 11 classes) and
#   every zero (in a window) of 8 integer-slope instances; binary instances sit exactly on the edge.
#
# Pure mathematics: the `ci`, `cpu` and `paper` scales are identical.

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ghosts_fig4_fig5")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ghosts_fig4_fig5", measurements)
