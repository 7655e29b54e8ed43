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
# # Table T6: forecasting ETTh1 with an LSTM, and what "best epoch" hides
#
# The PolyStep paper (A. T. Le, arXiv 2605.01928, §5.6, Table T6) trains a 23,392-parameter forecaster
# -- an LSTM reading 96 hours of the transformer's oil temperature, a linear head predicting the next
# 96 -- without gradients, and reports a normalised test MSE of **0.121**, ahead of Adam's 0.187. The
# number is the minimum over epochs of the *test* MSE. Reloading the state selected by the run gives
# 0.262, the last epoch 0.488 (`paper/polystep_reconstruction.md §6 item 6`): under an honest protocol
# PolyStep does not beat Adam. This notebook measures all four protocols side by side:
#
# $$\text{selected} = \mathrm{MSE}_\text{test}\big(\arg\min_e \mathrm{MSE}_\text{val}(e)\big),\qquad
#   \text{best test epoch} = \min_e \mathrm{MSE}_\text{test}(e) \;\le\; \text{selected}.$$
#
# The inequality holds by construction: selecting on the test set can only flatter a method, and it
# flatters a noisy one most.

# %% [markdown]
# ## The data: 96 hours in, 96 hours out
#
# The Informer split (12 / 4 / 4 months), z-scored with the training rows only, windows of stride 1.
# Here on the offline stand-in with ETTh1's shape and columns; notice the window counts and that the
# validation inputs reach back 96 hours into the training block while their targets do not.

# %%
from repro.tasks.etth1 import forecasting_windows, synthetic_ett

series = synthetic_ett()
data = forecasting_windows(series, column="OT", seq_len=96, pred_len=96)
print("rows x columns:", series.values.shape, series.columns)
print("windows train / val / test:", data.x_train.shape[0], data.x_val.shape[0], data.x_test.shape[0])
print(f"train statistics of OT: mean {data.mean:.3f}, std {data.std:.3f}")

# %% [markdown]
# ## The model, and a population of it in one pass
#
# `LSTM(1 -> 64)` + `Linear(64 -> 96)`. PolyStep evaluates thousands of candidate parameter vectors
# per step, each differing from the current one in a few coordinates. The population closure detects
# which tensors the candidates share (stride-0 expansions): when only the head moves, the recurrence
# runs once; otherwise every candidate's recurrence runs. Notice that the batched pass and separate
# `torch.nn.LSTM` runs agree to float rounding.

# %%
import torch

from repro.tasks.lstm_population import build_forecaster, lstm_population_closure, naive_population_losses

model = build_forecaster(torch.Generator().manual_seed(0))
print("parameters:", sum(p.numel() for p in model.parameters()))
x, y = data.x_train[:32], data.y_train[:32]
gen = torch.Generator().manual_seed(1)
thetas = [p.detach()[None] + 0.01 * torch.randn(8, *p.shape, generator=gen) for p in model.parameters()]
for mode in ("batched", "loop"):
    diff = (lstm_population_closure(model, x, y, mode=mode)(thetas) - naive_population_losses(model, thetas, x, y))
    print(f"{mode:8s}: max |loss - separate nn.LSTM loss| = {float(diff.abs().max()):.2e}")

# %% [markdown]
# How fast? A population of 32 candidates on a batch of 64 windows, three ways (the cpu configuration
# evaluates 128 per OT step).
# On a CPU PyTorch's own LSTM kernel is hard to beat candidate by candidate; the batched recurrence
# is the GPU path. Sharing the recurrence is what pays when only the head moves. (Wall-clock numbers
# of whatever machine runs this notebook.)

# %%
from repro.experiments.t6_etth1 import bench_population

for block in ("all", "head"):
    r = bench_population(32, block=block)
    print(f"candidates move {block:4s}: naive {r['naive_s']:.3f} s, loop {r['loop_s']:.3f} s, "
          f"batched {r['batched_s']:.3f} s")

# %% [markdown]
# ## PolyStep with the paper's amortization and momentum
#
# The paper's ETTh1 run makes an OT step on every third batch, coasts along an average of past moves
# in between, and adds momentum $v \leftarrow \beta_t v + (x' - x)$ with $\beta$ from 0.5 to 0.95
# (`paper/polystep_reconstruction.md §2.9`). `PaperPolyStep` adds both around `polystep.optim.PolyStep`,
# in parameter space. Notice the coasting calls: no evaluations.

# %%
from polystep.optim import PolyStep
from repro.tasks.t6_train import PaperPolyStep

opt = PolyStep(model.parameters(), subspace="random", subspace_dim=32, eps=1.0, step_radius=0.5,
               probe_radius=1.0, radius_mode="absolute", seed=0)
loop = PaperPolyStep(opt, amortize=3, momentum=(0.5, 0.95))
for call in range(6):
    loss = loop.step(lambda: lstm_population_closure(model, x, y, opt.params, mode="loop"))
    print(f"call {call}: {'OT step, mean probe loss %.4f' % loss if loss is not None else 'coasting':32s} "
          f"evaluations {loop.last_evals}")

# %% [markdown]
# ## The experiment
#
# Every (method, seed) is one cell: PolyStep, Adam (5/3 of PolyStep's calls, the paper's 50 against 30
# epochs), OpenAI-ES, SPSA and sep-CMA-ES at the paper's generation ratios. The left panel is the test
# MSE at the checkpoints against forward evaluations; the right one the validation MSE that selects.

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("t6_etth1")

# %% [markdown]
# The verdicts: the six paper claims are registered at `paper` scale (indicative below it; their value
# is measured under the protocol the paper quotes), the five `t6_cpu_*` claims -- the protocol gap,
# last epoch above final, PolyStep against Adam under each protocol, PolyStep against the gradient-free
# baselines -- at `cpu` scale, registered before any cpu number existed.

# %%
verdict_table("t6_etth1", measurements)

# %% [markdown]
# ## What this shows
#
# Read the table column by column: the best-test-epoch column is the paper's protocol and is always the
# smallest; the selected and final columns are what a user would get. The gap between them is the
# paper's headline-versus-final gap (0.121 against 0.262), and whether PolyStep stays ahead of Adam
# once the selection uses the validation split is the question the headline hides. At `ci` scale (a
# synthetic series, an 8-unit LSTM, nine calls) every number is indicative only. At `cpu` scale the
# data and the model are the paper's but PolyStep searches a 64-dimensional random subspace for 600
# calls instead of the 4,705-dimensional hybrid subspace for 3,990, so its verdicts speak about a
# small budget; the paper-scale claims wait for a GPU run.
