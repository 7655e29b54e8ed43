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
# # Quickstart: training an MLP with PolyStep, forward passes only
#
# PolyStep (Le, arXiv 2605.01928) splits the parameters of a network, seen through a per-layer
# random subspace $\theta = \theta_0 + P z$, into particles $x_i \in \mathbb{R}^{d_p}$. At every step
# each particle probes the vertices of a randomly rotated orthoplex, the mini-batch losses $C_{iv}$
# become weights $w_{iv} = \mathrm{softmax}_v(-C_{iv}/\varepsilon)$ (the one-sided limit of entropic
# optimal transport, Theorem 4.1), and the particle moves to the barycentre
# $x_i' = x_i + r_s R_i \sum_v w_{iv} u_v$ (Eq. 7). No gradient is ever computed.
#
# Here: scikit-learn's digits (offline), an MLP 64-32-10, model selected on the validation split,
# Adam on the same batches as the reference. The scale comes from `$POLYSTEP_SCALE`
# (`ci` | `cpu` | `paper`; the paper scale is the MNIST sanity check, Table T5, and needs a GPU).

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("quickstart_digits")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("quickstart_digits", measurements)
