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
# # Figure 2: a pole you cannot see from the real line stops the Taylor series
#
# $f(x) = 1/(x+2)$ is smooth and positive for every $x > 0$. Its Taylor polynomials at 0,
# $T_n(x) = \sum_{k\le n} (-1)^k x^k / 2^{k+1}$, nevertheless converge only for $|x| < 2$: by
# Cauchy–Hadamard (Theorem 2.1 of the paper) the radius of convergence is the distance from the
# expansion point to the nearest singularity **in the complex plane**, here the pole at $x = -2$.
#
# * (a) the paper's figure: $f$ and $|T_1|, |T_5|, |T_{15}|$ on log-log axes (dashed where
#   $T_n < 0$; every odd-order polynomial vanishes exactly at $x = 2$);
# * (b) the disk of convergence and the pole;
# * (c) the truncation error $|T_n(x) - f(x)|$ against the order: it shrinks like $(x/2)^n$
#   inside the disk and grows like $(x/2)^n$ outside;
# * (d) the radius read off the coefficients alone (root test and envelope fit).
#
# Pure mathematics: the `ci`, `cpu` and `paper` scales are identical.

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ghosts_fig2")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ghosts_fig2", measurements)
