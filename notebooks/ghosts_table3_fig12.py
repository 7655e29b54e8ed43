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
# # Ghosts of softmax, Figure 12 and Table 3: fixed learning rates vs the $\rho_a$ controller
#
# Sao (arXiv 2603.13552) trains a CIFAR-style ResNet-18 on CIFAR-10 with SGD (momentum 0.9, weight
# decay 5e-4, batch 128) at fixed learning rates $\eta \in \{0.005, 0.01, 0.1, 0.5\}$ and with a
# controller that sets every momentum-SGD step to $r_{target}\,\rho_a$, where
# $\rho_a = \pi / \max_x \Delta_a(x)$ is computed by one JVP along that step on the current batch
# ($r_{target} \in \{0.5, 1, 2, 4\}$; the released code ignores $r_{target}$, here it is applied).
# Every 50 batches the normalized step $r = \tau/\rho_a$ is logged. Panels: test loss, test
# accuracy, and the largest $r$ of each epoch (dashed line: $r = 1$). The table gives max $r$, the
# number of logs with $r > 1$ and the median final accuracy (paper: the controller at $r = 1$ is
# best with 85.3%, the best fixed $\eta$ reaches 82.6%, $\eta = 0.5$ runs at $r \approx 30$ in
# epoch 0), and the measured costs of the JVP (paper: "about 1.5 forward passes") and of a
# controlled step.
#
# The `paper` scale needs torchvision, the CIFAR-10 files and a GPU. The `ci`/`cpu` scales run a
# CPU twin on 8x8 digits (a tiny ResNet of the same design, the fixed-$\eta$ grid x 10 so that its
# $r$ values span the paper's range); it speaks only qualitatively to the paper's claims and is
# never compared with the CIFAR-10 numbers. The scale comes from `$POLYSTEP_SCALE`.

# %%
from repro.notebook import run_and_show, verdict_table

results, measurements = run_and_show("ghosts_table3_fig12")

# %% [markdown]
# The verdicts: each claim's rule, registered in `paper/claims.toml` before the measurement,
# applied by `repro.claims` to what this run measured. Below a claim's registered scale the number
# is *indicative* only (the rule's outcome is shown in brackets); `polystep-repro claim ID` tells
# everything about one claim.

# %%
verdict_table("ghosts_table3_fig12", measurements)
