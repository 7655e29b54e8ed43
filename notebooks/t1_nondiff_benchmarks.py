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
# # Table T1: training networks that have no useful gradient
#
# PolyStep's reason to exist (A. T. Le, arXiv 2605.01928, §5.2, Table T1) is a network whose loss is
# piecewise constant in its parameters: spikes $s_t = \mathbf{1}[m_t \ge \theta]$, int8 weights
# $\mathrm{clamp}(\mathrm{round}(w/s))\,s$, an argmax over attention slots, a staircase activation
# $\lfloor 5\sigma(x)\rfloor / 5$, a top-1 expert gate. Backpropagation sees a zero derivative almost
# everywhere; PolyStep only evaluates mini-batch losses at polytope probes and moves every particle to
# the softmax barycentre
#
# $$x_i' = x_i + r_s R_i \sum_v \mathrm{softmax}_v(-C_{iv}/\varepsilon_t)\, u_v .$$
#
# Table T1 compares it with three other forward-only methods -- CMA-ES, OpenAI-ES, SPSA -- and with
# Adam trained on a *smooth twin* of each network (sigmoid spikes, float weights, softmax attention,
# sigmoid steps). The abstract adds a 97.8 % "surrogate-gradient ceiling" for the spiking network:
# backpropagation through time with the hard spike in the forward pass and a smooth derivative
# $\partial s/\partial m = 1/(1 + k|m - \theta|)^2$ in the backward pass.
#
# Two things the paper does not do, and this package does: it selects every model on a validation
# split (the paper's "best" is the maximum of per-epoch *test* accuracies,
# `paper/polystep_reconstruction.md §6 item 6`), and it compares the methods at **matched forward
# evaluations** as well as at the paper's budgets, which give PolyStep 60 to 10,000 times more
# evaluations (§6 item 8).

# %% [markdown]
# ## The hard operations have no gradient; their twins do
#
# A 784-16-10 staircase network and its smooth twin, built from the same generator: the same
# parameters, different outputs, and the hard one passes back exactly zero.

# %%
import torch

from repro.tasks.t1_models import build_t1_model, n_parameters

x = torch.randn(256, 784, generator=torch.Generator().manual_seed(0))
hard = build_t1_model("staircase", torch.Generator().manual_seed(1), hidden=16)
smooth = build_t1_model("staircase", torch.Generator().manual_seed(1), hidden=16, hard=False)
for name, net in (("hard", hard), ("smooth", smooth)):
    net.zero_grad()
    net(x).pow(2).mean().backward()
    g = net[0].weight.grad
    print(f"{name:6s}: output[0, :3] = {net(x)[0, :3].detach().numpy().round(3)}, "
          f"|d loss / d W1| = {float(g.abs().sum()):.3g}")
print("parameters at the paper's width 128:",
      {t: n_parameters(build_t1_model(t, torch.Generator().manual_seed(0)))
       for t in ("snn", "int8", "argmax", "staircase", "moe")})

# %% [markdown]
# ## A surrogate gradient: the hard spikes forward, a smooth derivative backward
#
# `polystep.nondiff.LIF(surrogate=k)` fires exactly the hard spikes (the same forward pass, checked
# bit for bit against snntorch in `tests/polystep/test_lif_snntorch.py`), but lets a fast-sigmoid
# derivative through. Notice the identical spike counts and the non-zero gradient.

# %%
snn_hard = build_t1_model("snn", torch.Generator().manual_seed(2), hidden=32, timesteps=8)
snn_bptt = build_t1_model("snn", torch.Generator().manual_seed(2), hidden=32, timesteps=8, surrogate=2.0)
counts_hard, counts_bptt = snn_hard(x), snn_bptt(x)
print("same spike counts:", torch.equal(counts_hard, counts_bptt), "| counts of sample 0:", counts_hard[0].tolist())
counts_bptt.float().mean().backward()
print(f"surrogate gradient on fc1: {float(snn_bptt[0].weight.grad.abs().sum()):.3g} "
      f"(the hard network has none: requires_grad = {counts_hard.requires_grad})")

# %% [markdown]
# ## PolyStep on the hard network: forward passes only
#
# Ten PolyStep steps on the staircase network with the fast population closure. Each step evaluates
# $P \cdot V \cdot K$ candidates on the same mini-batch; notice the mini-batch loss moving while no
# gradient exists.

# %%
import torch.nn.functional as F

from polystep.fast_eval import fast_population_closure
from polystep.optim import PolyStep

y = torch.randint(0, 10, (256,), generator=torch.Generator().manual_seed(3))
opt = PolyStep(hard.parameters(), rank=2, max_subspace_dim=200, eps=0.05, step_radius=1.0, probe_radius=1.0,
               radius_mode="absolute", seed=0)
for t in range(1, 11):
    loss = opt.step(fast_population_closure(hard, F.cross_entropy, x, y, opt.params))
    if t % 5 == 0:
        print(f"step {t:2d}: mean probe loss {float(loss):.4f}, {opt.evals_per_step} evaluations per step")

# %% [markdown]
# ## Budgets: step-matched against evaluation-matched
#
# The paper runs CMA-ES and OpenAI-ES for 10,000 generations and SPSA for 50,000 iterations against
# PolyStep's 3,540 steps (MoE: 2,000 / 2,000 / 10,000 against 7,050). In forward evaluations that is
# a different story: notice the ratios.

# %%
from repro.experiments.t1_nondiff_benchmarks import CONFIGS
from repro.tasks.t1_train import BASELINES, baseline_generations, polystep_evals_per_step

paper = CONFIGS["paper"]
e_snn = polystep_evals_per_step("snn", paper) * paper.steps["snn"]
print(f"PolyStep on the SNN: {e_snn:,} forward evaluations")
for m, (_, opts, _, _) in BASELINES.items():
    g = baseline_generations("snn", m, "paper", paper)
    e = g * opts.get("population", 2)
    print(f"  {m:9s}: {g:6,} generations x {opts.get('population', 2):2d} = {e:9,} evaluations "
          f"(PolyStep uses {e_snn / e:5.0f}x more)")

# %% [markdown]
# ## The experiment
#
# Every (task, method, budget, seed) is one cell: PolyStep, Adam on the smooth twin, BPTT on the SNN,
# and each baseline at the paper's budget ratio and at PolyStep's number of forward evaluations. The
# figure shows test accuracy against forward evaluations; the dots are the baselines at the paper's
# budget ratio.

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("t1_nondiff_benchmarks")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement, applied
# to this run. The 24 cells of Table T1 and the abstract's numbers are registered at `paper` scale:
# below it they are *indicative* (their value is the paper's protocol, the best test checkpoint; the
# validation-selected number is in the evidence). The four `t1_cpu_*` claims state the paper's
# comparisons at `cpu` scale, with Welch tests over seeds and Holm's correction.

# %%
verdict_table("t1_nondiff_benchmarks", measurements)

# %% [markdown]
# ## What this shows
#
# The table puts, for each task, the paper's number beside ours under both protocols and the
# baselines at both budgets. Read the comparisons in this order: (1) at the paper's budget ratio, does
# PolyStep lead the forward-only baselines, as the abstract says? (2) at matched forward evaluations,
# does the lead survive -- the budget-fair question the paper does not ask? (3) how far below Adam on
# the smooth twin, and below BPTT with a surrogate gradient, does it stay? At `ci` scale (the digits
# stand-in, four steps) every number is indicative and says nothing about the paper; at `cpu` scale
# the networks and the data are the paper's but the budgets are far smaller (a 10,000-image subset,
# batch 64, a capped subspace, 100 steps instead of 3,540), so the cpu verdicts speak about
# small budgets, and the paper-scale claims wait for a run at the paper's configuration.
#
# The committed `cpu` run answers all three questions against PolyStep: with the paper's schedules and
# only 100 steps it barely learns (validation-selected test accuracy 10.1 % on the SNN, 29.2 % int8,
# 22.2 % argmax, 15.6 % staircase, 8.3 % MoE), OpenAI-ES beats it on every task at the paper's budget
# ratio, every baseline beats it at matched forward evaluations, and BPTT reaches 87.1 % on the SNN.
# Only the BPTT claim reproduces at this scale. The App. H ablations at the same scale rise with every
# radius and with the temperature: at these budgets the paper's settings move too little per step.
# Whether PolyStep leads at the paper's 3,540 steps is what the paper-scale run has to show.
