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
# # Theorem 4.1: PolyStep's softmax is the one-sided limit of entropic optimal transport
#
# **What is checked, and from what.** The body of the paper (arXiv 2605.01928**v1**, sections 2-7 and
# the appendices) was not readable; only the abstract ("This update corresponds to the one-sided limit
# of a regularized optimal-transport problem") and the author's method figure (panel "Solver continuum
# (Thm 4.1)") were. The statement below is the reconstruction of the digest (section 3.1), implemented
# in `theory/one_sided_limit.py`; it is *this version* that is checked, not the paper's own wording.
#
# For a cost matrix $C \in \mathbb{R}^{P \times V}$ (particles $\times$ vertices), marginals
# $a \in \Delta_P$, $b \in \Delta_V$, $\varepsilon > 0$ and $\lambda \in [0, \infty]$:
#
# $$P_\lambda = \arg\min_{P \ge 0,\; P\mathbf{1} = a} \langle C, P\rangle
#   + \varepsilon \sum_{ij} P_{ij}(\log P_{ij} - 1) + \lambda\, \mathrm{KL}(P^\top \mathbf{1} \,\|\, b).$$
#
# 1. $P_0 = \mathrm{diag}(a)\,\mathrm{softmax}_{\text{row}}(-C/\varepsilon)$: PolyStep's weights (only the
#    source marginal is constrained, "one-sided");
# 2. $P_\lambda \to P_\infty$, the entropic OT (Sinkhorn) plan, as $\lambda \to \infty$;
# 3. $P_\lambda \mathbf{1} = a$ for every $\lambda$, and $\mathrm{KL}(q_\lambda \| b)$ with
#    $q_\lambda = P_\lambda^\top \mathbf{1}$ is non-increasing in $\lambda$ and tends to 0; near
#    $\lambda = 0$ the plan leaves the softmax linearly;
# 4. the figure's bound $\mathrm{KL}(q_\lambda \| b) \le (\varepsilon/\lambda)\log(PV)$ is **false in
#    general** (a deterministic counterexample); a valid replacement, from comparing $P_\lambda$ with
#    the feasible plan $a \otimes b$, is $\mathrm{KL}(q_\lambda\|b) \le \mathrm{osc}(C)/\lambda$ for
#    uniform $b$ ($\mathrm{osc} = \max C - \min C$).
#
# The figure also notes "P/V small $\Rightarrow$ softmax = OT"; the last figure measures the
# barycentre gap between the softmax step and the OT step as $P$ grows. Whether the paper regularises
# with $-H(P)$ or $\mathrm{KL}(P \| a \otimes b)$ is unknown (same plans for uniform $b$).
#
# Pure mathematics on small matrices: the `cpu` and `paper` scales are the same (a denser $\lambda$
# grid and more random problems than `ci`).

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("thm41_one_sided_limit")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("thm41_one_sided_limit", measurements)
