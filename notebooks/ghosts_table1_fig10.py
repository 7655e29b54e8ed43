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
# # Ghosts of softmax, Figure 10 and Table 1: one learning-rate spike across architectures
#
# The radius clip of Proposition 5.2 (P. Sao, "Ghosts of Softmax", arXiv 2603.13552) bounds a step
# by the radius of the cross-entropy along **that step**: for an optimizer proposal $p$ with
# $\tau_0 = \|p\|$ and $v = p/\|p\|$,
# $$\tilde p = s\,p,\qquad s = \min\bigl(1, \rho_a(v)/\tau_0\bigr),\qquad
# \rho_a(v) = \frac{\pi}{\max_x \Delta_a(x; v)}\ \text{(Theorem 4.6, Definition 4.7)},$$
# so $r = \tau/\rho_a \le 1$. Figure 10 and Table 1 (Section 7) test it against a single large
# spike: full-batch Adam (base LR 0.015, 200 steps) on digits, the learning rate multiplied by 10,
# 100, 1000 or 10000 **for the one step** 50 (the authors' `archgrid`, paper/ghosts_notes.md §4.5),
# for a Transformer, an MLP with LayerNorm and a CNN with BatchNorm. Four methods: plain Adam, Adam
# after `clip_grad_norm_(1)`, the released $\rho_a$ controller and the exact one.
#
# The released controller does not do what Proposition 5.2 says: it computes $\rho_a$ along the
# *gradient* and caps $\eta\|g\|$, which is not Adam's step (paper/ghosts_notes.md §5 item 13). We
# run it as published (`mode="gradient_direction"`) next to the exact controller (the default,
# $\rho_a$ along Adam's actual step, as Section 5.3 describes it).

# %% [markdown]
# ## A toy MLP+LN before the spike
#
# 64-32-10 with LayerNorm and GELU, 50 full-batch Adam steps at 0.015 on the archgrid split (the
# first 360 digits held out, unshuffled).

# %%
import copy

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from ghosts import radius_models as rm
from ghosts.radius_controller import RadiusController

digits = load_digits()
x = torch.tensor(digits.data / 16, dtype=torch.float32)
y = torch.tensor(digits.target)
x_test, y_test, x_train, y_train = x[:360], y[:360], x[360:], y[360:]


def accuracy(model):
    with torch.no_grad():
        return (model(x_test).argmax(1) == y_test).float().mean().item()


torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Linear(64, 32), torch.nn.LayerNorm(32), torch.nn.GELU(), torch.nn.Linear(32, 10)
)
opt = torch.optim.Adam(model.parameters(), lr=0.015)
for _ in range(50):
    opt.zero_grad()
    F.cross_entropy(model(x_train), y_train).backward()
    opt.step()
print(f"before the spike: test accuracy {accuracy(model):.1%}")

# %% [markdown]
# ## One 10000x step, four ways
#
# Each method continues a copy of the same model and Adam state: the spiked step, then 20 steps at
# the base learning rate. `realized_r` measures $r = \tau/\rho_a$ of the step actually taken, with
# $\rho_a$ along it, for every method alike. Notice that clipping the gradient changes nothing (Adam's
# step hardly depends on the gradient's scale), that the released controller lets through a step
# many radii long, and that only the exact controller keeps $r = 1$ and the accuracy.

# %%
def realized_r(model, old):
    """r = tau / rho_a of the step just taken from the parameters ``old``, rho_a along that step."""
    step = {k: p.detach() - old[k] for k, p in model.named_parameters()}
    tau = torch.sqrt(sum((d**2).sum() for d in step.values())).item()
    return tau / rm.model_rho_a(model, x_train, {k: d / tau for k, d in step.items()}, params=old)


def spiked(method, spike=10_000.0, after=20):
    """Continue a copy of (model, opt): one step at ``spike`` x the base LR, then ``after`` steps."""
    m, o = copy.deepcopy((model, opt))
    stepper = o
    if method == "released controller":
        stepper = RadiusController(o, m, mode="gradient_direction", rho_inputs=x_train)
    elif method == "exact controller":
        stepper = RadiusController(o, m, rho_inputs=x_train)
    for i in range(1 + after):
        for group in o.param_groups:
            group["lr"] = 0.015 * (spike if i == 0 else 1.0)
        old = {k: p.detach().clone() for k, p in m.named_parameters()}
        stepper.zero_grad()
        F.cross_entropy(m(x_train), y_train).backward()
        if method == "gradient clipping":
            torch.nn.utils.clip_grad_norm_(m.parameters(), 1.0)
        stepper.step()
        if i == 0:
            r, spiked_acc = realized_r(m, old), accuracy(m)
    return r, spiked_acc, accuracy(m), stepper


print("method                 r of the spiked step   accuracy after it   20 steps later")
steppers = {}
for method in ("plain Adam", "gradient clipping", "released controller", "exact controller"):
    r, spiked_acc, final_acc, steppers[method] = spiked(method)
    print(f"{method:22s} {r:20.3g}   {spiked_acc:17.1%}   {final_acc:14.1%}")

# %% [markdown]
# ## What the controllers record
#
# `RadiusController.history` has one row per step. The exact controller capped the spiked step
# (`capped`, `scale` $= s$) and let the base-LR steps through ($r < 1$ already). The released
# controller records its own $r$, measured against $\rho_a$ along the gradient; notice that it
# differs from the realized $r$ above, measured along the step Adam actually took, and that the
# gradient's smaller radius makes it shrink the base-LR steps after the spike as well.

# %%
for method in ("exact controller", "released controller"):
    for h in steppers[method].history[:3]:
        print(f"{method:20s} step {h['step']}: rho_a {h['rho_a']:.4f}  scale {h['scale']:.2e}  "
              f"tau {h['tau']:.4f}  r {h['r']:.3g}  capped {h['capped']}")
exact = steppers["exact controller"].history
print(f"exact controller: {sum(h['capped'] for h in exact)} of {len(exact)} steps capped, "
      f"largest r {max(h['r'] for h in exact):.6f}")

# %% [markdown]
# ## The paper's figure and table
#
# The first figure shows test accuracy against the step (rows: architectures, columns: spike size;
# median and IQR over seeds), the second the realized $r$ of the spiked update for every method.
# The table is Table 1 (final test accuracy at 10000x, with the "divergent if final loss > 10" rule
# applied explicitly) and the whole grid. Our "Transformer" is a real 8-token TinyTransformer; the
# authors' had sequence length 1, so its attention was a no-op (paper/ghosts_notes.md §5 item 13).
# At `cpu` scale only MLP+LN runs (3 seeds); the Transformer and CNN+BN rows need
# `POLYSTEP_SCALE=paper`.

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

# %% [markdown]
# ## What this shows
#
# In the committed `cpu` run (MLP+LN, 3 seeds) both controllers survive the 10000x spike (96.4%,
# retained 101%; the paper's 93.9% is lower by more than the tolerance) where plain Adam falls to
# 41.2% (paper 44.6%, reproduced) and clipping to 63.8% (paper 51.5%). The paper's statement that
# its controller enforces $r \le 1$ is refuted: the released gradient-direction controller lets
# through a spiked step with $r = 80.1$ and survives anyway, while the exact controller's largest $r$
# over all steps is 1.000000. The Transformer and CNN+BN rows, and the claims across the three
# architectures, are registered at `paper` scale; at `cpu` and in the `ci` run shown here they are
# not run or indicative only.
