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
# # What one PolyStep step costs
#
# A step evaluates $P \cdot V \cdot K$ mini-batch losses: 8,688 for the 784-128-10 MLP at batch 64
# with the rank-4 per-layer subspace ($P = 543$ particles of $d_p = 8$, orthoplex $V = 16$, $K = 1$).
# This notebook times one step, the share of it spent inside the forward evaluations, and the
# peak memory. At `ci` scale a small MLP stands in for the reference model.

# %%
from repro.notebook import run_and_show, verdict_table
from repro.experiments import bench_step

results, measurements = run_and_show("bench_step")
print("\n".join(bench_step.summary_lines(results)))

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("bench_step", measurements)
