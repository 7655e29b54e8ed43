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
# # Ghosts of softmax, Fig 8 and Appendix 5.4: the gradient vs random directions
#
# A linear classifier `nn.Linear(64, 10)` on digits (SGD, lr 0.1, batch 64), checkpointed early
# (30 steps), mid (180) and late (700). For the gradient direction (the **ascent** direction
# $+g/\|g\|$, as in the released code) and 20 random unit directions, $\rho_a$ is computed by one JVP
# (exact here: the logits are affine in the parameters) and $\kappa = v^\top H v$ by a
# Hessian-vector product. Each direction is swept in $r = \tau/\rho_a$; the top row shows the
# training-loss ratio, the bottom row the fraction of training predictions that flip.
#
# The second figure compares the Hessian step scale $\tau_H = 2/\kappa$ with $\rho_a$ per direction,
# and our reading of Appendix 5.4's "crossover margin vs learning rate" claim, which the paper
# states without data or definition.

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
