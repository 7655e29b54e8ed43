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
# # Figure 11 and Table 2: which radius limits a tiny transformer's step?
#
# Every softmax in a network has ghosts. For a softmax over logits $s$ whose slopes along the
# step direction $v$ are $\dot s = J_s v$, Theorem 4.6 of "Ghosts of Softmax" (Sao, arXiv
# 2603.13552) keeps the loss analytic for steps shorter than $\pi / (\max_k \dot s_k - \min_k \dot
# s_k)$; over a sample set (Definition 4.7, Eq. 15) the worst row sets the radius:
#
# $$\rho_{out} = \frac{\pi}{\max_x \Delta_a(x)}, \qquad
#   \rho_{attn} = \frac{\pi}{\max_{\text{layer, sample, head, query}} \Delta_{\dot s}}, \qquad
#   \rho = \min(\rho_{out}, \rho_{attn}, \rho_{ffn}).$$
#
# The output softmax gives $\rho_{out}$, each attention softmax (over keys) gives $\rho_{attn}$, and
# the paper adds an FFN term $\rho_{ffn}$, the 1% quantile of $|h|/|\dot h|$ over the FFN
# pre-activations (a ReLU-kink distance, Appendix 2, Eq. 21). **The FFN here uses exact GELU, which
# has no finite singularity, so $\rho_{ffn}$ is a proxy, not a radius.**
#
# The paper's controllers *set* every AdamW step to exactly $\rho$ ("$\rho$-set":
# $\eta_{eff} = \rho/\|u\|$, $u$ = AdamW's unit-LR step): all-radii uses the minimum of the three,
# output-only $\rho_{out}$; they are compared with fixed learning rates 1x (2e-3) and 16x (0.032) on
# digits (Fig. 11). Table 2 counts which radius is the minimum in the early, middle and late third
# of training (paper: FFN early, output late, attention never).
#
# The library: `ghosts.radius_models.rho_from_slopes` and
# `ghosts.radius_controller.RadiusController(..., radius_fn=...)`, whose radius function may return
# further radii to be logged. $\rho_{out}$ and $\rho_{attn}$ are maxima over samples while
# $\rho_{ffn}$ is a quantile, so which one binds depends on the size of the sample set: the reduced
# scales train on a subset and their Table 2 numbers are indicative only. The scale comes from
# `$POLYSTEP_SCALE`.

# %% [markdown]
# ## Two softmaxes, two radii, one JVP
#
# A one-layer, one-head attention classifier on the 8 pixel rows of 300 digits. One forward-mode JVP
# along the descent direction returns the slopes of the output logits and of the attention scores;
# `rho_from_slopes` reduces each to its radius (for the output it is `model_rho_a`). Notice that the
# attention radius is the larger one here: its softmaxes barely move along this direction.

# %%
import math

import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits
from torch import nn
from torch.func import functional_call, jvp

from ghosts.radius_controller import RadiusController
from ghosts.radius_models import model_rho_a, rho_from_slopes

digits = load_digits()
x = torch.tensor(digits.data[:300] / 16, dtype=torch.float32)
y = torch.tensor(digits.target[:300])


class TinyAttention(nn.Module):
    """8 row tokens -> one single-head softmax attention -> mean pool -> 10 logits."""

    def __init__(self, d=16):
        super().__init__()
        self.embed, self.head = nn.Linear(8, d), nn.Linear(d, 10)
        self.q, self.k, self.v = (nn.Linear(d, d, bias=False) for _ in range(3))

    def forward(self, x, with_attention=False):
        h = self.embed(x.view(-1, 8, 8))
        scores = self.q(h) @ self.k(h).transpose(1, 2) / h.shape[-1] ** 0.5  # [samples, queries, keys]
        logits = self.head((scores.softmax(-1) @ self.v(h)).mean(1))
        return (logits, scores) if with_attention else logits


def slopes(model, x, v, params):
    """Slopes of the output logits and of the attention scores along v, by one JVP."""
    with torch.no_grad():
        _, (dz, dscores) = jvp(lambda p: functional_call(model, p, (x,), {"with_attention": True}),
                               (params,), (v,))
    return dz, dscores


torch.manual_seed(0)
model = TinyAttention()
F.cross_entropy(model(x), y).backward()
g = math.sqrt(sum(float(p.grad.square().sum()) for p in model.parameters()))
v = {k: -p.grad / g for k, p in model.named_parameters()}
rho_out = model_rho_a(model, x, v)
dz, dscores = slopes(model, x, v, {k: p.detach() for k, p in model.named_parameters()})
print(f"output softmax:    rho_out  = {rho_from_slopes(dz):.4f}   (model_rho_a: {rho_out:.4f})")
rows = dscores.shape[0] * dscores.shape[1]
print(f"attention softmax: rho_attn = {rho_from_slopes(dscores):.4f}   ({rows} query rows)")

# %% [markdown]
# ## A radius function with further radii
#
# The controller calls `radius_fn(model, x, v, params=theta_old)`. This one returns
# $\min(\rho_{out}, \rho_{attn})$ *and* both radii, which the controller logs in
# `history[-1]["radii"]`. Sixty full-batch AdamW steps set to exactly $\rho$: notice which radius
# binds, and the effective learning rate $2\cdot10^{-3} \times$ scale moving freely, up as well as
# down.

# %%
def out_and_attention_radii(model, x, v, *, params):
    dz, dscores = slopes(model, x, v, params)
    radii = {"out": rho_from_slopes(dz), "attn": rho_from_slopes(dscores)}
    return min(radii.values()), radii


def train(radius_fn=None, lr=2e-3, steps=60, seed=0):
    torch.manual_seed(seed)
    model = TinyAttention()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    ctrl = (None if radius_fn is None else
            RadiusController(opt, model, 1.0, mode="rho_set", rho_inputs=x, radius_fn=radius_fn))
    for _ in range(steps):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        (opt if ctrl is None else ctrl).step()
    with torch.no_grad():
        loss = float(F.cross_entropy(model(x), y))
    return loss, ([] if ctrl is None else ctrl.history)


loss, history = train(out_and_attention_radii)
binding = [min(h["radii"], key=h["radii"].get) for h in history]
print(f"all-radii rho-set: final training loss {loss:.3g}; the output radius binds in {binding.count('out')} "
      f"and the attention radius in {binding.count('attn')} of {len(binding)} steps")
print("effective LR every 10 steps:", "  ".join(f"{2e-3 * h['scale']:.2g}" for h in history[::10]))

# %% [markdown]
# ## Controllers against fixed learning rates
#
# The same 60 steps with the output radius alone (`model_rho_a`, the default radius function) and
# with the two fixed learning rates. On this toy the $\rho$-set steps are far longer than 2e-3
# allows, so both controllers end far below fixed 1x.

# %%
for name, radius_fn, lr in (("output-only rho-set", model_rho_a, 2e-3), ("fixed 1x (2e-3)", None, 2e-3),
                            ("fixed 16x (0.032)", None, 0.032)):
    print(f"{name:20s} final training loss {train(radius_fn, lr)[0]:.3g}")

# %% [markdown]
# ## The paper's figures and table

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ghosts_table2_fig11")

# %% [markdown]
# ## What this shows
#
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ghosts_table2_fig11", measurements)

# %% [markdown]
# In the committed `cpu` run (2 seeds, 450 full-batch steps on a 400-sample subset) the paper's
# *plot* holds and its caption does not: output-only reaches the lowest final training loss
# (4.1e-6, against 5.1e-3 for all-radii) and fixed 16x converges (loss 1.4e-4) at the lowest test
# accuracy (84.0%, the others 92.7-94.5%) instead of diverging. The effective learning rate of
# output-only spans 2786x, but that of all-radii only 68x, short of the two orders of magnitude
# the rule asks for, so that claim is not reproduced. On the subset the FFN proxy binds in 86 of
# 92 logs and attention in none; Table 2's early-FFN / late-output pattern needs the full
# 1257-sample training set, so these counts are indicative only.
