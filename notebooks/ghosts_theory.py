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
# # Ghosts of softmax: the theorems, recomputed exactly
#
# Along a direction $v$ the logits move as $z_k(t) = z_k + t\,a_k$, and the cross-entropy loss is
# analytic in $t$ except where the partition function $F(t) = \sum_k e^{z_k + t a_k}$ vanishes. Its
# nearest complex zero sets the radius of convergence $\rho^*$ of the loss's Taylor series. For two
# classes $\rho^* = \sqrt{\delta^2 + \pi^2}/|a_1 - a_2|$ (Theorem 4.3); in general
# $\rho^* \ge \rho_a = \pi / (\max_k a_k - \min_k a_k)$ (Theorem 4.6).
#
# Every claim below is recomputed in float64 / mpmath; the paper's errors are listed as refuted or
# corrected claims, each with the counterexample that a test in `tests/theory` exhibits.

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ghosts_theory")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ghosts_theory", measurements)
