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
# # Ghosts of softmax, Figure 10 and Table 1: one LR spike across architectures
#
# Full-batch Adam (base LR 0.015, 200 steps) on digits; at step 50 the learning rate is multiplied by
# 10, 100, 1000 or 10000 **for that one step** (the authors' `archgrid`). Four methods: plain Adam,
# Adam after `clip_grad_norm_(1)`, the authors' released $\rho_a$ controller (it caps `lr * ||g||`
# along the *gradient* direction, which does not bound Adam's realized step), and the exact
# controller of Proposition 5.2 (it caps Adam's *actual* step at $\rho_a$ along that step, $r \le 1$).
#
# The first figure shows test accuracy against the step (rows: architectures, columns: spike size;
# median and IQR over seeds). The second shows the realized $r = \tau/\rho_a$ of the spiked update
# for every method. The table is the paper's Table 1 (final test accuracy at 10000x, with the
# "divergent if final loss > 10" rule applied explicitly) and the whole grid.
#
# Our "Transformer" is a real 8-token TinyTransformer; the authors' archgrid Transformer had
# sequence length 1, so its attention was a no-op. At `cpu` scale only MLP+LN runs (3 seeds); the
# Transformer and CNN+BN rows need `POLYSTEP_SCALE=paper` (about 1.5-2 hours on one CPU core).

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ghosts_table1_fig10")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ghosts_table1_fig10", measurements)
