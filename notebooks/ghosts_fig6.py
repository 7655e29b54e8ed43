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
# # Ghosts of softmax, Figure 6: surviving a held 1000x learning-rate spike
#
# Along a unit step direction $v$ the cross-entropy $L(\theta + \tau v)$ is analytic in $\tau$ up to
# the nearest complex zero of the softmax partition function, and that zero is at least
# $$\rho_a(v) = \frac{\pi}{\max_x \Delta_a(x; v)}, \qquad \Delta_a = \max_k a_k - \min_k a_k,\quad a = J_z v$$
# away (Theorem 4.6 for one sample, Definition 4.7 and Eq. 15 for a batch, of P. Sao, "Ghosts of
# Softmax", arXiv 2603.13552). Beyond $\rho_a$ the Taylor model of the loss along the step can no
# longer be trusted. The **radius clip** of Proposition 5.2 uses this on every step: for an
# optimizer proposal $p$ with $\tau_0 = \|p\|$ and $v = p/\|p\|$ it takes
# $$\tilde p = s\,p,\qquad s = \min\bigl(1, \rho_a(v)/\tau_0\bigr),$$
# so the normalized step $r = \tau/\rho_a$ never exceeds 1, whatever the learning rate.
#
# Figure 6 tests this with the authors' `lrspike` protocol (paper/ghosts_notes.md §4.4): digits,
# MLP 64-128-10 ReLU, Adam, batch 64, 200 steps; the learning rate jumps from $\eta_0$ to
# $1000\,\eta_0$ at step 50 and **stays** there, $\eta_0 \in \{10^{-4}, 10^{-3}, 10^{-2}\}$ (rows).
# A run *recovers* when it keeps at least 90% of its pre-spike test accuracy.

# %% [markdown]
# ## A toy network and its radius
#
# A 64-32-10 ReLU MLP, 40 full-batch Adam steps at $\eta_0 = 10^{-2}$ on 500 digits (300 more
# held out). `model_rho_a` takes one JVP for the slopes $a = J_z v$ of every training sample along
# the descent direction and returns $\rho_a$, a distance in parameter space.

# %%
import copy

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from ghosts import radius_models as rm
from ghosts.radius_controller import RadiusController

digits = load_digits()
x = torch.tensor(digits.data / 16, dtype=torch.float32)
y = torch.tensor(digits.target)
x_train, y_train, x_test, y_test = x[:500], y[:500], x[500:800], y[500:800]


def accuracy(model):
    with torch.no_grad():
        return (model(x_test).argmax(1) == y_test).float().mean().item()


torch.manual_seed(0)
model = torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10))
opt = torch.optim.Adam(model.parameters(), lr=1e-2)
for _ in range(40):
    opt.zero_grad()
    F.cross_entropy(model(x_train), y_train).backward()
    opt.step()

opt.zero_grad()
loss0 = F.cross_entropy(model(x_train), y_train)
loss0.backward()
grad = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
v = -grad / grad.norm()  # unit descent direction, flat in model.parameters() order
rho = rm.model_rho_a(model, x_train, v)
print(f"test accuracy {accuracy(model):.1%}   training loss {loss0.item():.3f}   rho_a = {rho:.4f}")

# %% [markdown]
# ## One step of size $r\rho_a$
#
# The loss ratio $L(\theta + r\rho_a v)/L(\theta)$ and the test accuracy after a single step along
# $v$. Notice that up to $r = 1$ the step still lowers the loss, a few radii out it multiplies it,
# and the accuracy falls with it: $\rho_a$ sets the scale at which one step stops being safe.

# %%
theta = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
print("   r   loss ratio   test accuracy")
with torch.no_grad():
    for r in (0.5, 1, 2, 4, 8, 16):
        torch.nn.utils.vector_to_parameters(theta + r * rho * v, model.parameters())
        ratio = F.cross_entropy(model(x_train), y_train).item() / loss0.item()
        print(f"{r:4g}   {ratio:10.3f}   {accuracy(model):13.1%}")
    torch.nn.utils.vector_to_parameters(theta, model.parameters())

# %% [markdown]
# ## The held spike, with and without the radius clip
#
# From this point the learning rate is raised 1000x, to 10, and held for 20 steps (row 3 of the
# figure). `RadiusController` wraps the same Adam: it lets Adam propose its step, computes
# $\rho_a$ along that step (one JVP at its starting point) and shrinks it to $\rho_a$ when it is
# longer (Proposition 5.2). `realized_r` measures $r = \tau/\rho_a$ of the step actually taken, the
# same way for both runs. Notice that plain Adam's steps reach $r \sim 10^4$ and its accuracy falls
# to chance, while the controlled run keeps $r \le 1$ on every step and its accuracy.

# %%
def realized_r(model, old):
    """r = tau / rho_a of the step just taken from the parameters ``old``, rho_a along that step."""
    step = {k: p.detach() - old[k] for k, p in model.named_parameters()}
    tau = torch.sqrt(sum((d**2).sum() for d in step.values())).item()
    return tau / rm.model_rho_a(model, x_train, {k: d / tau for k, d in step.items()}, params=old)


def held_spike(controlled, lr=10.0, steps=20):
    """Continue a copy of (model, opt) for ``steps`` full-batch steps at learning rate ``lr``."""
    m, o = copy.deepcopy((model, opt))
    for group in o.param_groups:
        group["lr"] = lr
    stepper = RadiusController(o, m, r_target=1.0, rho_inputs=x_train) if controlled else o
    rs = []
    for _ in range(steps):
        old = {k: p.detach().clone() for k, p in m.named_parameters()}
        stepper.zero_grad()
        F.cross_entropy(m(x_train), y_train).backward()
        stepper.step()
        rs.append(realized_r(m, old))
    return accuracy(m), rs, stepper


print(f"before the spike: test accuracy {accuracy(model):.1%}")
for controlled in (False, True):
    acc, rs, stepper = held_spike(controlled)
    name = "radius clip" if controlled else "plain Adam"
    print(f"{name:11s}  test accuracy {acc:6.1%}   r of the steps: first {rs[0]:8.3g}, "
          f"median {np.median(rs):6.3g}, max {max(rs):8.3g}")
capped = sum(h["capped"] for h in stepper.history)
print(f"the controller capped {capped} of its {len(stepper.history)} steps")

# %% [markdown]
# ## The paper's figure
#
# Columns: mini-batch training loss, test accuracy, and the step length $\tau$ next to $\rho_a$
# (median and IQR over 5 seeds at `cpu` scale). $\rho_a$ is drawn both for the controller runs
# (what the paper plots) and along plain Adam's own step.

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ghosts_fig6")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ghosts_fig6", measurements)

# %% [markdown]
# ## What this shows
#
# The controller's claim is reproduced: in the committed `cpu` run (5 seeds) it ends at 96.1%,
# 96.4% and 96.1% test accuracy in the three rows, with $r \le 1$ on every step, and plain Adam
# falls to chance (10.0%) at post-spike LR 10. Two statements of the text are corrected by its own
# plot and by our run (paper/ghosts_notes.md §5 item 8): at LR 0.1 plain Adam recovers (96.1%)
# although its median $r$ after the spike is 1.89, so $r < 1$ is sufficient, not necessary; at
# LR 1 it collapses to 14.7% rather than the "~50%" of the text. The `ci` run shown here (fewer
# seeds and steps) is below the registered `cpu` scale, so its numbers are indicative only.
