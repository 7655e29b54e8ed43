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
# # Ablation: a structured Kronecker basis for the per-layer subspace
#
# The paper's per-layer ("hybrid") subspace (PolyStep, arXiv 2605.01928, §3; reconstructed in
# `paper/polystep_reconstruction.md §2.2`) writes a weight matrix as
#
# $$W = W_0 + \mathrm{reshape}(\mathbf{P}_W z_W), \qquad \mathbf{P}_W \in \mathbb{R}^{d_{out} d_{in} \times n_W},
#   \quad n_W = r(d_{out} + d_{in}),$$
#
# with orthonormal columns from the QR of a dense Gaussian. For the 784-128-10 MLP at rank 4 that
# matrix alone is 1.46 GB and its QR takes ~40 s on two cores. The opt-in `basis="kronecker"` of this
# package (not the paper's method) uses the rows $a_i \otimes b_j$ (i.e. $B = a_i b_j^\top$) of $p$
# orthonormal $a_i \in \mathbb{R}^{d_{out}}$ and $q$ orthonormal $b_j \in \mathbb{R}^{d_{in}}$, $pq \ge n_W$:
# orthonormal by construction, kilobytes and milliseconds. It spans $\{A^\top M B\}$ -- a different
# distribution of subspaces -- so the experiment measures what it costs in accuracy, with and without
# redrawing the subspace.

# %% [markdown]
# ## Drawing the two bases
#
# The first layer of the digits MLP ($32 \times 64$) at rank 4, through the public
# `polystep.subspace.hybrid_subspace`. Notice the same $D$ and orthonormal rows for both, and the
# difference in what is stored and in the time to draw it.

# %%
import time

import torch

from polystep.subspace import hybrid_subspace, kronecker_shape

layer = {"W": (32, 64)}
subspaces = {}
for basis in ("qr", "kronecker"):
    start = time.perf_counter()
    subspaces[basis] = hybrid_subspace(layer, rank=4, generator=torch.Generator().manual_seed(0), basis=basis)
    ms = 1e3 * (time.perf_counter() - start)
    B = subspaces[basis].blocks[0].basis
    stored = B.numel() if basis == "qr" else B.numel_stored()
    rows = B if basis == "qr" else B.dense()
    orth = float((rows @ rows.T - torch.eye(B.shape[0])).abs().max())
    print(f"{basis:9s} D = {subspaces[basis].dim}, basis {tuple(B.shape)}: {stored:>7,} numbers "
          f"({stored * 4 / 1e6:.3f} MB), drawn in {ms:6.1f} ms, max |B B^T - I| = {orth:.0e}")

# %% [markdown]
# The same arithmetic for the 784-128-10 MLP at rank 4 (by the formulas, nothing drawn): the dense
# basis stores $n_W d_{out} d_{in}$ numbers per layer, the Kronecker one $p\,d_{out} + q\,d_{in}$.

# %%
dense_bytes = kron_bytes = 0
for d_out, d_in in ((128, 784), (10, 128)):
    n = 4 * (d_out + d_in)
    p, q = kronecker_shape(n, d_out, d_in)
    dense_bytes += 4 * n * d_out * d_in
    kron_bytes += 4 * (p * d_out + q * d_in)
    print(f"layer {d_out} x {d_in}: n_W = {n:,}; dense {4 * n * d_out * d_in / 1e9:.3f} GB,"
          f" Kronecker p = {p}, q = {q}: {4 * (p * d_out + q * d_in) / 1e6:.2f} MB")
print(f"float32 bases: dense {dense_bytes / 1e9:.2f} GB, Kronecker {kron_bytes / 1e6:.2f} MB")

# %% [markdown]
# ## Which directions a fixed Kronecker subspace can move
#
# Any move $\Delta W = A^\top M B$ of a Kronecker block lies in the span of the $p$ left factors
# $a_i$ (output directions) and of the $q$ right factors $b_j$ (input directions), so its rank is at most
# $\min(p, q)$. Notice: a random move in the dense subspace has full rank 32, one in the Kronecker
# subspace rank 14, and nothing outside $\mathrm{span}(a_i)$ -- 18 of the 32 hidden units' directions
# stay out of reach until the subspace is redrawn.

# %%
kron = subspaces["kronecker"].blocks[0].basis
print(f"Kronecker factors: p = {kron.left.shape[0]} of d_out = 32, q = {kron.right.shape[0]} of d_in = 64")
z = torch.randn(subspaces["qr"].dim, generator=torch.Generator().manual_seed(1))
for basis, sub in subspaces.items():
    print(f"{basis:9s} rank of a random move Delta W: {int(torch.linalg.matrix_rank(sub.delta(z)['W']))}")
move = subspaces["kronecker"].delta(z)["W"]
outside = move - kron.left.T @ (kron.left @ move)  # the part of Delta W outside span(a_i)
print(f"max |Delta W - A^T A Delta W| = {float(outside.abs().max()):.0e}"
      f" (Delta W itself: {float(move.abs().max()):.2f})")

# %% [markdown]
# Absorb-and-redraw (`absorb_every=25, redraw_on_absorb=True` in `PolyStep`) folds $\mathbf{P}z$ into
# $W_0$ and draws new factors (`Subspace.redraw`). Notice how the moves accumulated over successive
# draws reach more and more directions.

# %%
total, sub = torch.zeros(32, 64), subspaces["kronecker"]
for draw in range(1, 4):
    total += sub.delta(z)["W"]
    print(f"after {draw} draw(s): rank of the accumulated move = {int(torch.linalg.matrix_rank(total))}")
    sub = sub.redraw(torch.Generator().manual_seed(draw))

# %% [markdown]
# ## The experiment
#
# `quickstart_digits`'s PolyStep set-up (digits, MLP 64-32-10, rank 4) with each basis, with and without
# redrawing every 25 steps; same seeds, batches and initialisations for every variant.

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ablation_kronecker_basis")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ablation_kronecker_basis", measurements)

# %% [markdown]
# ## What this shows
#
# A fixed Kronecker subspace costs accuracy: in the committed `cpu` run (5 seeds) it reaches 93.72 %
# against the dense basis's 96.00 %, a 2.28 pp gap, above the registered 1.5 pp (not reproduced), as
# the rank bound above predicts. With absorb-and-redraw every 25 steps the gap closes (97.06 % against
# the redrawn dense basis's 96.67 %, reproduced), with a set-up of 1.3 ms instead of 53.5 ms on this
# small MLP. These are digits numbers; the claims are the package's, not the paper's, and a `ci` run (one
# seed, 150 steps) is indicative only.
