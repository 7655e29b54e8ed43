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

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ghosts_fig1_fig7")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ghosts_fig1_fig7", measurements)
