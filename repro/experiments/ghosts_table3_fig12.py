r"""Ghosts of softmax, Fig. 12 / Table 3: natural instability of a ResNet and the rho_a controller.

Paper protocol (Fig. 12, Table 3, paper/ghosts_notes.md §4.9; ``paper`` scale here): CIFAR-10 (standard
normalisation, random crop with padding 4 and horizontal flip for training), the CIFAR-style
ResNet-18 (3x3 stride-1 stem, no max-pool; :func:`repro.tasks.resnet.resnet18_cifar`, written
here so that torchvision is needed only for the data), SGD with momentum 0.9 and weight decay
5e-4, batch 128, 10 epochs, 5 seeds.

* **Fixed LR** ``eta in {0.005, 0.01, 0.1, 0.5}``: every ``log_every`` (= 50) batches the
  normalized step ``r = tau / rho_a`` of the step just taken is logged: ``tau = ||theta_new -
  theta_old||`` (``= eta ||buffer||``, the momentum buffer with weight decay) and
  ``rho_a = pi / max_x Delta_a(x; v)`` along ``v = step / tau`` at ``theta_old`` on the current
  batch (the released code's sample set: the batch, <= 256 samples), by one forward-mode JVP.
* **rho_a controller** ``r_target in {0.5, 1, 2, 4}``: at every step the momentum-SGD step is
  proposed, ``rho_a`` is computed along it and the step is *set* to ``r_target * rho_a``
  (``eta_eff = r_target * rho_a / ||buffer||``, the paper's "rho-set" controller;
  :class:`ghosts.radius_controller.RadiusController` in ``rho_set`` mode, whose momentum buffer
  evolves exactly as plain SGD's).  **The released code drops ``r_target``** (it always sets
  ``eta_eff = rho_a/||buffer||``, paper/ghosts_notes.md §4.9 / §5 item 14); here ``r_target`` is applied, as the
  paper describes.
* **Logged:** ``r`` every ``log_every`` batches (80 logs in 10 epochs at paper scale), the max
  ``r`` per epoch, the number of logs with ``r > 1`` (``r > 1 + 1e-6``: the controller at
  ``r_target = 1`` sits at 1 up to rounding, which the paper counts as 0), and the test loss and
  accuracy at the end of every epoch (BatchNorm in eval mode).  A non-finite training loss stops
  a run; the rest of it is scored at chance accuracy and infinite test loss.

**BatchNorm and rho_a.** The JVP runs in train mode with batch statistics but without updating
the running statistics (BatchNorm's ``track_running_stats`` is switched off for that call,
:func:`ghosts.radius_models.batch_stats`): the radius is that of the function the training step
actually moves (the released code's FD passes also use batch statistics, but there they also update
the running statistics).  The controller is ``RadiusController(..., radius_fn=batch_rho_a)`` and the
fixed-eta logs use the same :func:`ghosts.radius_models.batch_rho_a`.

**Failure thresholds** shared by all ghosts experiments
(:mod:`repro.experiments._ghosts_common`): a run *fails* when its final test accuracy is below
``FAILURE_ACC_RETAINED = 0.90`` of the best configuration's median final accuracy or its final
test loss exceeds ``DIVERGED_LOSS = 10`` (or is non-finite).  For every run the longest streak of
consecutive logs with ``r > 1`` is measured; how long a streak counts as "sustained" is part of the
claim's registered rule (``paper/claims.toml``).

**CPU twin (``ci`` / ``cpu`` scale).** CIFAR-10 and a GPU are not available offline, so the reduced
scales run a twin: scikit-learn digits (standardised, :func:`repro.tasks.digits.load_digits_split`,
training = train + validation = 1437 images, test 360, no augmentation), the same ResNet design
at digits size (:func:`repro.tasks.resnet.tiny_resnet`: widths 8-16-32, one BasicBlock per stage,
19.8 k parameters), the same optimiser, momentum and weight decay, batch 64, ``r`` logged every 3
batches (about 8 logs per epoch, as the paper's 50 of 391 batches: 76 logs in 10 epochs), 10
epochs and 5 seeds (``cpu``) or 2 epochs and 1 seed (``ci``).  The controller grid is the
paper's; **the fixed-eta grid is the paper's x 10** (0.05, 0.1, 1, 5): with the paper's own grid
the twin hardly reaches ``r = 1`` (a calibration run at eta = 0.005 gave max ``r`` ~ 0.07), while
x 10 puts the twin's median max ``r`` at about 0.6, 1.3, 7 and 130 (``cpu`` scale; paper: 1.11,
1.23, 5.87, 29.3).  The twin says nothing numerical about CIFAR-10: its runs do not
measure the Table 3 rows nor the Section 8.6 GPU timings ("not run at this scale").  The claims on
the controller's accuracy, the epoch-0 max ``r`` and the JVP cost are measured on the twin too; their
registered scale is ``paper``, so the report shows those numbers as indicative only.  Divergence
needing sustained ``r > 1`` is measured at every scale.

Claims: one ``@claim`` measuring function per claim of ``paper/claims.toml`` returns the measured
numbers (value, detail, evidence); the verdict is the claim's registered rule, applied by
:mod:`repro.claims`.  The paper's Table 3 and Section 8.6 timings are read from the registry.

**Costs (Sections 4.5 and 8.6).** Every scale also times, on its own model, batch size and
device: a no-grad forward, the JVP of the logits, a plain SGD step, a step with the FD ``rho_a``
(the released code's one-sided difference, eps = 1e-4: two forwards on batch statistics,
:func:`ghosts.radius_models.batch_rho_a_fd`) and a
step with the JVP ``rho_a`` (best of ``timing_repeats`` interleaved calls), plus the matmul/conv
FLOP ratio JVP / forward counted by ``torch.utils.flop_counter`` for the twin and for ResNet-18 at
CIFAR shape.  The paper: 12.6 ms plain, 20.9 ms FD (x1.66), 28.7 ms JVP (x2.28) on an RTX 6000 Ada;
"a JVP costs about 1.5 forward passes".  A JVP carries the primal and the tangent (``W h`` plus
``W h' + V h`` per layer): 3x the matmul/conv FLOPs of a forward; the wall-clock ratio is
reported as measured.  The timings are one cell (``"timing"``), mapped alone after the training
cells (one per configuration x seed, :mod:`repro.cells`) so that no other cell of the run loads the
machine while it is timed.

Paper numbers (Table 3, median final accuracy and IQR over 5 seeds): eta 0.005: max r 1.11, 1/80
logs with r > 1, 80.4% (80.0-81.9); 0.01: 1.23, 13, 82.6% (82.6-83.4); 0.1: 5.87, 58, 78.5%
(78.1-81.7); 0.5: 29.34, 70, 57.5% (48.1-64.8); controller r = 0.5: 0.50, 0, 80.4% (80.2-80.5);
r = 1: 1.00, 0, 85.3% (85.1-85.4); r = 2: 2.00, 80, 84.4% (84.3-84.5); r = 4: 4.00, 80, 72.1%
(38.9-74.2).  Fig. 12: max r ~ 30 in epoch 0 at eta = 0.5.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as Fn
from torch import Tensor, nn

from repro.cells import Cell
from repro.claims import claim, claims_of, get_claim
from repro.context import RunContext
from ghosts.radius_controller import RadiusController
from ghosts.radius_models import batch_logit_slopes, batch_rho_a, batch_rho_a_fd, batch_stats

from repro.experiments._ghosts_common import DIVERGED_LOSS, FAILURE_ACC_RETAINED
from repro.tasks.training import cross_entropy_backward, evaluate

ID = "ghosts_table3_fig12"
TITLE = "Ghosts of softmax Fig. 12 / Table 3: ResNet with fixed LRs vs the rho_a controller"
CLAIMS = claims_of(ID)
VERSION = 1

#: the Table 3 row claims by (kind, paper grid value); the paper's rows are in their registry entries
#: (``paper_value`` = median final accuracy, ``paper_row`` = max r, logs with r > 1, IQR)
ROW_CLAIMS = {
    ("fixed", 0.005): "ghosts.table3_eta0005", ("fixed", 0.01): "ghosts.table3_eta001",
    ("fixed", 0.1): "ghosts.table3_eta01", ("fixed", 0.5): "ghosts.table3_eta05",
    ("ctrl", 0.5): "ghosts.table3_ctrl_r05", ("ctrl", 1.0): "ghosts.table3_ctrl_r1",
    ("ctrl", 2.0): "ghosts.table3_ctrl_r2", ("ctrl", 4.0): "ghosts.table3_ctrl_r4",
}
#: r > 1 counts with this rounding slack (the controller at r_target = 1 sits at 1 +- 1e-16)
R_EXCEED_TOL = 1e-6


@dataclass(frozen=True)
class Config:
    dataset: str = "cifar10"         # "cifar10" (torchvision) | "digits" (CPU twin)
    epochs: int = 10
    batch_size: int = 128
    log_every: int = 50
    etas: tuple[float, ...] = (0.005, 0.01, 0.1, 0.5)  # the paper's grid
    eta_scale: float = 1.0  # the runs use eta * eta_scale (twin: 10, see the module docstring)
    r_targets: tuple[float, ...] = (0.5, 1.0, 2.0, 4.0)
    seeds: tuple[int, ...] = (0, 1, 2, 3, 4)
    momentum: float = 0.9
    weight_decay: float = 5e-4
    twin_widths: tuple[int, ...] = (8, 16, 32)
    timing_repeats: int = 30
    data_root: str = "data"
    split_seed: int = 0


CONFIGS = {
    "ci": Config(dataset="digits", epochs=2, batch_size=64, log_every=3, seeds=(0,), eta_scale=10.0,
                 timing_repeats=3),
    "cpu": Config(dataset="digits", epochs=10, batch_size=64, log_every=3, seeds=(0, 1, 2, 3, 4),
                  eta_scale=10.0),
    "paper": Config(),
}


# --------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------
class _TwinData:
    """Digits as 1x8x8 images; one epoch = one pass of a reshuffled :class:`BatchStream`."""

    def __init__(self, cfg: Config, device: torch.device):
        from repro.tasks.digits import load_digits_split

        split = load_digits_split(seed=cfg.split_seed)
        self.x = torch.cat([split.x_train, split.x_val]).to(device)
        self.y = torch.cat([split.y_train, split.y_val]).to(device)
        self.x_test, self.y_test = split.x_test.to(device), split.y_test.to(device)
        self.batch_size, self.cfg = cfg.batch_size, cfg
        self.n_batches = -(-len(self.y) // cfg.batch_size)
        self.name = f"digits twin ({len(self.y)} train / {len(self.y_test)} test images, 8x8)"

    def model(self, generator: torch.Generator, device) -> nn.Module:
        from repro.tasks.resnet import tiny_resnet

        return tiny_resnet(generator, widths=tuple(self.cfg.twin_widths), blocks=(1,) * len(self.cfg.twin_widths),
                           device=device)

    def stream(self, generator: torch.Generator):
        from repro.tasks.batches import BatchStream

        return BatchStream(self.x, self.y, self.batch_size, generator)

    def epoch(self, stream):
        for _ in range(self.n_batches):
            yield next(stream)

    def test_batches(self):
        yield self.x_test, self.y_test


class _CifarData:
    """CIFAR-10 through torchvision (paper scale only; downloads into ``cfg.data_root``)."""

    MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)

    def __init__(self, cfg: Config, device: torch.device):
        try:
            import torchvision
            from torchvision import transforms
        except ImportError as err:
            raise RuntimeError(
                "the paper scale of ghosts_table3_fig12 needs torchvision (CIFAR-10 loading) and the "
                "CIFAR-10 files (downloaded into cfg.data_root); install torchvision or run the "
                "'cpu' scale, the digits twin") from err
        norm = transforms.Normalize(self.MEAN, self.STD)
        train_tf = transforms.Compose([transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
                                       transforms.ToTensor(), norm])
        test_tf = transforms.Compose([transforms.ToTensor(), norm])
        self.train_set = torchvision.datasets.CIFAR10(cfg.data_root, train=True, download=True, transform=train_tf)
        self.test_set = torchvision.datasets.CIFAR10(cfg.data_root, train=False, download=True, transform=test_tf)
        self.batch_size, self.device = cfg.batch_size, device
        self.n_batches = -(-len(self.train_set) // cfg.batch_size)
        self.name = "CIFAR-10 (50000 train / 10000 test, crop + flip)"

    def model(self, generator: torch.Generator, device) -> nn.Module:
        from repro.tasks.resnet import resnet18_cifar

        return resnet18_cifar(generator, device=device)

    def stream(self, generator: torch.Generator):
        from torch.utils.data import DataLoader

        # the loader's generator drives the shuffles; augmentation draws from torch's global RNG,
        # which the caller seeds per run (torch.manual_seed below), so a run is repeatable
        return DataLoader(self.train_set, batch_size=self.batch_size, shuffle=True, generator=generator,
                          num_workers=4, pin_memory=self.device.type == "cuda", drop_last=False)

    def epoch(self, loader):
        for x, y in loader:
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)

    def test_batches(self):
        from torch.utils.data import DataLoader

        for x, y in DataLoader(self.test_set, batch_size=512, shuffle=False, num_workers=4):
            yield x.to(self.device), y.to(self.device)


def _data(cfg: Config, device: torch.device):
    if cfg.dataset == "digits":
        return _TwinData(cfg, device)
    if cfg.dataset == "cifar10":
        return _CifarData(cfg, device)
    raise ValueError(f"dataset must be 'cifar10' or 'digits', got {cfg.dataset!r}")


# --------------------------------------------------------------------------------------------
# one run
# --------------------------------------------------------------------------------------------
def _train(kind: str, value: float, seed: int, cfg: Config, ctx: RunContext) -> dict:
    """One cell: a run with ``kind = "fixed"`` (eta = value) or ``"ctrl"`` (r_target = value) on
    seed ``seed`` (the data are loaded by :func:`_data` in the cell)."""
    data = _data(cfg, ctx.device)
    if cfg.dataset == "cifar10":
        torch.manual_seed(ctx.child_seed("augment", seed) % 2**63)  # torchvision's transforms
    model = data.model(ctx.torch_generator("init", seed, device="cpu"), ctx.device)
    model.train()
    names = [k for k, _ in model.named_parameters()]
    params = [p for _, p in model.named_parameters()]
    opt = torch.optim.SGD(params, lr=value if kind == "fixed" else 1.0, momentum=cfg.momentum,
                          weight_decay=cfg.weight_decay)
    ctrl = (RadiusController(opt, model, value, mode="rho_set", radius_fn=batch_rho_a)
            if kind == "ctrl" else None)
    stream = data.stream(ctx.torch_generator("batches", seed, device="cpu"))
    r_log, r_epoch, test_loss, test_acc, train_loss, eff_lr = [], [], [], [], [], []
    batch_index, stopped = 0, False
    for epoch in range(cfg.epochs):
        losses = []
        for x, y in data.epoch(stream):
            batch_index += 1
            loss = cross_entropy_backward(model, opt, x, y)
            ctx.count_evals(1)
            if not torch.isfinite(loss):
                stopped = True
                break
            losses.append(float(loss))
            logging = batch_index % cfg.log_every == 0
            if ctrl is not None:
                try:
                    ctrl.step(x=x)
                except FloatingPointError:
                    stopped = True
                    break
                ctx.count_evals(1)
                h = ctrl.history[-1]
                r, lr_now = h["r"], h["scale"] * 1.0  # inner lr is 1: eta_eff = scale
            else:
                old = [p.detach().clone() for p in params] if logging else None
                opt.step()
                r, lr_now = math.nan, value
                if logging:
                    with torch.no_grad():
                        disp = [p.detach() - o for p, o in zip(params, old)]
                        tau = math.sqrt(sum(float(d.double().square().sum()) for d in disp))
                        if math.isfinite(tau) and tau > 0:
                            r = tau / batch_rho_a(model, x, {k: d / tau for k, d in zip(names, disp)},
                                                  params=dict(zip(names, old)))
                            ctx.count_evals(1)
                        else:
                            r = math.inf
            if logging:
                r_log.append(r)
                r_epoch.append(epoch)
                eff_lr.append(lr_now)
        if stopped:
            break
        tl, ta = evaluate(model, data.test_batches())
        test_loss.append(tl)
        test_acc.append(ta)
        train_loss.append(float(np.mean(losses)) if losses else math.nan)
    n_classes = 10
    while len(test_acc) < cfg.epochs:  # a stopped run is scored at chance from then on
        test_loss.append(math.inf)
        test_acc.append(1.0 / n_classes)
        train_loss.append(math.inf)
    return {"r": np.asarray(r_log, dtype=float), "r_epoch": np.asarray(r_epoch, dtype=int),
            "eff_lr": np.asarray(eff_lr, dtype=float), "test_loss": np.asarray(test_loss, dtype=float),
            "test_acc": np.asarray(test_acc, dtype=float), "train_loss": np.asarray(train_loss, dtype=float),
            "stopped": stopped, "batches": batch_index}


# --------------------------------------------------------------------------------------------
# costs (Sections 4.5 and 8.6)
# --------------------------------------------------------------------------------------------
def _flop_ratio(model: nn.Module, x: Tensor) -> float:
    """Matmul/convolution FLOPs of the logits' JVP / those of one forward (batch statistics)."""
    from torch.func import functional_call
    from torch.utils.flop_counter import FlopCounterMode

    params = {k: p.detach() for k, p in model.named_parameters()}
    v = {k: torch.ones_like(p) for k, p in params.items()}
    with FlopCounterMode(display=False) as fc, torch.no_grad(), batch_stats(model):
        functional_call(model, params, (x,))
    forward = fc.get_total_flops()
    with FlopCounterMode(display=False) as fc:
        batch_logit_slopes(model, x, v, params=params)
    return fc.get_total_flops() / forward


def _timings(cfg: Config, ctx: RunContext) -> dict:
    """One cell: best-of-N wall-clock milliseconds of a forward, a JVP, and of plain /
    FD-controlled / JVP-controlled SGD steps on one training batch (interleaved, so that load on a
    shared machine hits all of them alike), plus FLOP ratios."""
    from torch.func import functional_call

    dev = ctx.device
    data = _data(cfg, dev)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    model = data.model(ctx.torch_generator("timing-init", device="cpu"), dev)
    x, y = next(data.epoch(data.stream(ctx.torch_generator("timing-batches", device="cpu"))))
    params = [p for p in model.parameters()]
    names = [k for k, _ in model.named_parameters()]
    opt = torch.optim.SGD(params, lr=1e-3, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    jvp_ctrl = RadiusController(opt, model, 1.0, mode="rho_set", radius_fn=batch_rho_a)
    # the released code's one-sided FD rho_a (eps = 1e-4, two forwards on batch statistics)
    fd_ctrl = RadiusController(opt, model, 1.0, mode="rho_set", radius_fn=batch_rho_a_fd)

    def direction():
        v = {k: torch.randn(p.shape, generator=gen, device="cpu").to(dev) for k, p in zip(names, params)}
        norm = math.sqrt(sum(float(t.square().sum()) for t in v.values()))
        return {k: t / norm for k, t in v.items()}

    gen = torch.Generator().manual_seed(0)
    v = direction()

    def forward():
        with torch.no_grad(), batch_stats(model):
            functional_call(model, {k: p.detach() for k, p in zip(names, params)}, (x,))

    def jvp():
        batch_logit_slopes(model, x, v, params={k: p.detach() for k, p in zip(names, params)})

    def step(ctrl=None):
        def run():
            opt.zero_grad(set_to_none=True)
            Fn.cross_entropy(model(x), y).backward()
            (ctrl.step(x=x) if ctrl is not None else opt.step())
        return run

    calls = {"forward": forward, "jvp": jvp, "plain": step(), "fd": step(fd_ctrl), "jvp_step": step(jvp_ctrl)}
    times = {k: [] for k in calls}
    for rep in range(cfg.timing_repeats + 2):
        for k, fn in calls.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            if rep >= 2:  # two warm-up rounds
                times[k].append(1e3 * (time.perf_counter() - t0))
    ms = {k: float(np.min(t)) for k, t in times.items()}  # best of N: the least disturbed by load
    out = {"ms": ms, "batch": int(len(y)), "device": str(dev), "threads": torch.get_num_threads(),
           "repeats": cfg.timing_repeats,
           "jvp_over_forward": ms["jvp"] / ms["forward"],
           "fd_over_plain": ms["fd"] / ms["plain"], "jvp_over_plain": ms["jvp_step"] / ms["plain"],
           "flop_ratio_model": _flop_ratio(model, x)}
    from repro.tasks.resnet import resnet18_cifar

    r18 = resnet18_cifar(ctx.torch_generator("timing-r18", device="cpu"), device=dev)
    out["flop_ratio_resnet18"] = _flop_ratio(r18, torch.randn(2, 3, 32, 32, generator=gen).to(dev))
    return out


# --------------------------------------------------------------------------------------------
# the experiment
# --------------------------------------------------------------------------------------------
def _label(kind: str, value: float, scale: float = 1.0) -> str:
    if kind == "fixed":
        return f"fixed eta = {value * scale:g}" + (f" (paper {value:g} x {scale:g})" if scale != 1.0 else "")
    return f"rho_a ctrl r = {value:g}"


def run(cfg: Config, ctx: RunContext) -> dict:
    """One cell per configuration and seed (``"{kind}-{value:g}-seed{s}"``: :func:`_train`), then
    the cell ``"timing"`` (:func:`_timings`), mapped on its own after the runs so that no other cell
    of this run competes with it for the machine while it is timed."""
    data = _data(cfg, torch.device("cpu"))  # name and batches per epoch; CIFAR-10 downloaded once, here
    grid = [(kind, key, scale) for kind, keys, scale in (("fixed", cfg.etas, cfg.eta_scale),
                                                        ("ctrl", cfg.r_targets, 1.0)) for key in keys]
    cells = [Cell(f"{kind}-{key * scale:g}-seed{s}", _train, (kind, key * scale, s, cfg))
             for kind, key, scale in grid for s in cfg.seeds]
    values = iter(ctx.map(cells, desc="configuration x seed"))
    configs = [{"kind": kind, "key": float(key), "value": float(key * scale), "label": _label(kind, key, scale),
                "seeds": list(cfg.seeds), "runs": [next(values) for _ in cfg.seeds]}
               for kind, key, scale in grid]
    (timing,) = ctx.map([Cell("timing", _timings, (cfg,))], desc="timing")
    return {"configs": configs, "timing": timing, "dataset": cfg.dataset, "data_name": data.name,
            "epochs": cfg.epochs, "log_every": cfg.log_every, "batches_per_epoch": data.n_batches,
            "batch_size": cfg.batch_size, "paper_protocol": cfg.dataset == "cifar10"}


def _longest_run(mask: np.ndarray) -> int:
    best = cur = 0
    for m in mask:
        cur = cur + 1 if m else 0
        best = max(best, cur)
    return best


def summarize(results: dict) -> list[dict]:
    """Per configuration: median over seeds of the per-run max r, of the number of logs with
    r > 1 and of the final accuracy (IQR too), per-epoch max r, and per-run failure facts."""
    rows = []
    for c in results["configs"]:
        runs = c["runs"]
        max_r = np.array([np.nanmax(r["r"]) if np.isfinite(r["r"]).any() else np.nan for r in runs])
        n_gt1 = np.array([int(np.sum(r["r"] > 1 + R_EXCEED_TOL)) for r in runs])
        n_logs = np.array([len(r["r"]) for r in runs])
        acc = np.array([r["test_acc"][-1] for r in runs])
        loss = np.array([r["test_loss"][-1] for r in runs])
        epochs = results["epochs"]
        r_epoch = np.full((len(runs), epochs), np.nan)
        for i, r in enumerate(runs):
            for e in range(epochs):
                sel = r["r"][r["r_epoch"] == e]
                if sel.size and np.isfinite(sel).any():
                    r_epoch[i, e] = np.nanmax(sel)
        rows.append({
            "kind": c["kind"], "key": c["key"], "value": c["value"], "label": c["label"],
            "max_r": float(np.nanmedian(max_r)), "n_gt1": float(np.median(n_gt1)),
            "n_logs": int(np.median(n_logs)),
            "acc": float(np.median(acc)), "acc_iqr": (float(np.percentile(acc, 25)), float(np.percentile(acc, 75))),
            "loss": float(np.median(loss)),
            "run_acc": acc, "run_loss": loss, "run_max_r": max_r, "run_n_gt1": n_gt1,
            "run_sustained": np.array([_longest_run(r["r"] > 1 + R_EXCEED_TOL) for r in runs]),
            "r_epoch": r_epoch,
        })
    return rows


def _row(rows: list[dict], kind: str, key: float) -> dict | None:
    """The row of ``kind`` whose paper grid value is ``key``."""
    for r in rows:
        if r["kind"] == kind and math.isclose(r["key"], key):
            return r
    return None


def _row_text(r: dict) -> str:
    lo, hi = r["acc_iqr"]
    return (f"max r {r['max_r']:.3g}, {r['n_gt1']:g}/{r['n_logs']} logs with r > 1, median final acc "
            f"{100 * r['acc']:.1f}% (IQR {100 * lo:.1f}-{100 * hi:.1f})")


def _paper_table3() -> dict:
    """Table 3 of the paper from the registry: ``(kind, key) -> (max r, logs with r > 1 of
    logs, median final accuracy %, IQR)`` (``paper_row`` and ``paper_value`` of each row claim)."""
    out = {}
    for key, cid in ROW_CLAIMS.items():
        c = get_claim(cid)
        row = c.extra["paper_row"]
        out[key] = (row["max_r"], row["logs_r_gt_1"], row["logs"], c.paper_value, tuple(row["acc_iqr"]))
    return out


def _where(results: dict) -> str:
    n_seeds = len(results["configs"][0]["runs"])
    return f"{results['data_name']}, {results['epochs']} epochs, {n_seeds} seed(s)"


def _twin(results: dict) -> str:
    return ("" if results["paper_protocol"] else
            " This is the digits twin: its numbers are not comparable with the CIFAR-10 numbers of the paper.")


# --------------------------------------------------------------------------------------------
# claims: one measuring function per claim (the verdict is the rule registered in claims.toml)
# --------------------------------------------------------------------------------------------
def _table3_row(results: dict, cid: str) -> dict | None:
    """A Table 3 row: the median final test accuracy (%) on CIFAR-10.  The digits twin does not
    measure a CIFAR-10 number: no measurement there."""
    key = next(k for k, c in ROW_CLAIMS.items() if c == cid)
    r = _row(summarize(results), *key)
    if r is None or not results["paper_protocol"]:
        return None
    max_r, n_gt1, logs, acc, iqr = _paper_table3()[key]
    return {"value": 100 * r["acc"],
            "detail": f"{_row_text(r)} (paper: max r {max_r}, {n_gt1}/{logs}, {acc}% (IQR {iqr[0]}-{iqr[1]})). "
                      f"{_where(results)}.",
            "evidence": {"max_r": r["max_r"], "logs_r_gt_1": r["n_gt1"], "logs": r["n_logs"],
                         "acc_iqr": [100 * q for q in r["acc_iqr"]]}}


@claim("ghosts.table3_eta0005")
def _table3_eta0005(results: dict) -> dict | None:
    return _table3_row(results, "ghosts.table3_eta0005")


@claim("ghosts.table3_eta001")
def _table3_eta001(results: dict) -> dict | None:
    return _table3_row(results, "ghosts.table3_eta001")


@claim("ghosts.table3_eta01")
def _table3_eta01(results: dict) -> dict | None:
    return _table3_row(results, "ghosts.table3_eta01")


@claim("ghosts.table3_eta05")
def _table3_eta05(results: dict) -> dict | None:
    return _table3_row(results, "ghosts.table3_eta05")


@claim("ghosts.table3_ctrl_r05")
def _table3_ctrl_r05(results: dict) -> dict | None:
    return _table3_row(results, "ghosts.table3_ctrl_r05")


@claim("ghosts.table3_ctrl_r1")
def _table3_ctrl_r1(results: dict) -> dict | None:
    return _table3_row(results, "ghosts.table3_ctrl_r1")


@claim("ghosts.table3_ctrl_r2")
def _table3_ctrl_r2(results: dict) -> dict | None:
    return _table3_row(results, "ghosts.table3_ctrl_r2")


@claim("ghosts.table3_ctrl_r4")
def _table3_ctrl_r4(results: dict) -> dict | None:
    return _table3_row(results, "ghosts.table3_ctrl_r4")


@claim("ghosts.abstract_resnet_controller_best")
def _abstract_resnet_controller_best(results: dict) -> dict | None:
    rows = summarize(results)
    ctrl1 = _row(rows, "ctrl", 1.0)
    fixed = [r for r in rows if r["kind"] == "fixed"]
    if ctrl1 is None or not fixed:
        return None
    best_fixed = max(fixed, key=lambda r: r["acc"])
    return {"value": 100 * ctrl1["acc"],
            "detail": f"median final test accuracy, controller r = 1: {100 * ctrl1['acc']:.1f}% vs best fixed "
                      f"({best_fixed['label']}): {100 * best_fixed['acc']:.1f}%. {_where(results)}.{_twin(results)}",
            "evidence": {"best_fixed_acc": 100 * best_fixed["acc"], "best_fixed_eta": best_fixed["value"],
                         "ctrl_minus_best_fixed": 100 * (ctrl1["acc"] - best_fixed["acc"]),
                         "dataset": results["dataset"]}}


@claim("ghosts.fig12_eta05_max_r")
def _fig12_eta05_max_r(results: dict) -> dict | None:
    fixed = [r for r in summarize(results) if r["kind"] == "fixed"]
    if not fixed:
        return None
    top = max(fixed, key=lambda r: r["value"])
    epoch_max = np.nanmedian(top["r_epoch"], axis=0)
    r0 = float(epoch_max[0])
    return {"value": r0,
            "detail": f"median over seeds of the epoch-0 max r at the largest fixed eta ({top['label']}); "
                      f"per-epoch medians {np.round(epoch_max, 2).tolist()}. {_where(results)}.{_twin(results)}",
            "evidence": {"eta": top["value"], "eta_paper_grid": top["key"],
                         "epoch_max_r": [float(x) for x in epoch_max],
                         "epoch0_is_largest": bool(r0 >= np.nanmax(epoch_max) - 1e-12),
                         "dataset": results["dataset"]}}


def _failures(rows: list[dict]) -> tuple[float, list[tuple[str, int, int]]]:
    """Failed runs (the shared ghosts thresholds): final test accuracy < FAILURE_ACC_RETAINED x the
    best configuration's median, or final test loss > DIVERGED_LOSS / non-finite.  Returns
    (accuracy bar, [(label, seed index, longest streak of consecutive logs with r > 1)])."""
    best = max(r["acc"] for r in rows)
    bar = FAILURE_ACC_RETAINED * best
    failed = []
    for r in rows:
        for i, (acc, loss) in enumerate(zip(r["run_acc"], r["run_loss"])):
            if acc < bar or not loss <= DIVERGED_LOSS:
                failed.append((r["label"], i, int(r["run_sustained"][i])))
    return bar, failed


@claim("ghosts.table3_divergence_needs_sustained_r")
def _table3_divergence_needs_sustained_r(results: dict) -> dict:
    rows = summarize(results)
    bar, failed = _failures(rows)
    failed_ids = {(f[0], f[1]) for f in failed}
    survivors = [(r["label"], int(r["run_sustained"][i])) for r in rows for i in range(len(r["run_acc"]))
                 if (r["label"], i) not in failed_ids]
    longest_survivor = max(survivors, key=lambda x: x[1], default=("none", 0))
    streaks = [f[2] for f in failed]
    value = (f"{len(failed)} failed run(s) ({', '.join(sorted({f[0] for f in failed}))}); longest streaks of "
             f"consecutive logs at r > 1 in them: {sorted(streaks)}" if failed else "no run failed")
    return {
        "value": value,
        "detail": f"failure = final test accuracy < {FAILURE_ACC_RETAINED:g} x the best median "
                  f"({100 * bar:.1f}%) or final test loss > {DIVERGED_LOSS:g}; streak = consecutive logs "
                  f"with r > 1. {len(failed)} of {sum(len(r['run_acc']) for r in rows)} runs failed; the "
                  f"longest streak of a run that did not fail: {longest_survivor[1]} logs ({longest_survivor[0]})"
                  + (", as long as a failed run's: a long streak is not sufficient for failure"
                     if streaks and longest_survivor[1] >= min(streaks) else "") + f". {_where(results)}.",
        "evidence": {"n_failed": len(failed), "failed_longest_streak": streaks,
                     "failed_runs": [f"{f[0]} / seed index {f[1]}" for f in failed],
                     "survivor_longest_streak": [s for _, s in survivors],
                     "n_logs": int(max(r["n_logs"] for r in rows))}}


def _timing_text(t: dict) -> str:
    ms = t["ms"]
    return (f"{t['device']}, batch {t['batch']}, {t['threads']} thread(s): plain step {ms['plain']:.2f} ms, "
            f"FD-rho step {ms['fd']:.2f} ms (x{t['fd_over_plain']:.2f}), JVP-rho step "
            f"{ms['jvp_step']:.2f} ms (x{t['jvp_over_plain']:.2f})")


def _paper_timings() -> dict:
    """Section 8.6's step times in ms (plain, fd, jvp), from the registry."""
    return dict(get_claim("ghosts.sec86_overhead_timings").extra["paper_timings_ms"])


@claim("ghosts.sec86_overhead_timings")
def _sec86_overhead_timings(results: dict) -> dict | None:
    """ResNet-18 at batch 128 on a GPU: the digits twin on its own model and device does not
    measure it (its timings are in the table and in ``ghosts.sec45_jvp_cost``)."""
    if not results["paper_protocol"]:
        return None
    t, p = results["timing"], _paper_timings()
    return {"value": _timing_text(t),
            "detail": f"paper (RTX 6000 Ada, batch 128): x{p['fd'] / p['plain']:.2f} (FD) / "
                      f"x{p['jvp'] / p['plain']:.2f} (JVP) of the plain step; a different GPU can only agree "
                      f"qualitatively.",
            "evidence": {"fd_over_plain": t["fd_over_plain"], "jvp_over_plain": t["jvp_over_plain"],
                         "ms_plain": t["ms"]["plain"], "ms_fd": t["ms"]["fd"], "ms_jvp_step": t["ms"]["jvp_step"],
                         "device": t["device"], "batch": t["batch"]}}


@claim("ghosts.sec45_jvp_cost")
def _sec45_jvp_cost(results: dict) -> dict:
    t, p = results["timing"], _paper_timings()
    jv = t["jvp_over_forward"]
    paper = bool(results["paper_protocol"])
    return {
        "value": jv,
        "detail": f"measured wall-clock JVP / forward on {'ResNet-18' if paper else 'the twin'} ({t['device']}, "
                  f"batch {t['batch']}, best of {t['repeats']}): {jv:.2f} forward passes (paper "
                  f"{get_claim('ghosts.sec45_jvp_cost').paper_value}); matmul/conv FLOP ratio JVP / forward: "
                  f"{t['flop_ratio_model']:.2f} for this model and {t['flop_ratio_resnet18']:.2f} for ResNet-18 at "
                  f"CIFAR shape (the tangent needs W h' + V h besides W h). The paper's own Section 8.6 timings "
                  f"put the JVP's overhead ({p['jvp'] - p['plain']:.1f} ms) at "
                  f"{(p['jvp'] - p['plain']) / (p['fd'] - p['plain']):.1f}x the FD overhead "
                  f"({p['fd'] - p['plain']:.1f} ms, about two forwards), i.e. about "
                  f"{2 * (p['jvp'] - p['plain']) / (p['fd'] - p['plain']):.0f} forwards.",
        "evidence": {"flop_ratio_resnet18": t["flop_ratio_resnet18"], "flop_ratio_model": t["flop_ratio_model"],
                     "ms_forward": t["ms"]["forward"], "ms_jvp": t["ms"]["jvp"], "device": t["device"],
                     "model": "ResNet-18" if paper else "digits twin"}}


def table(results: dict) -> str:
    rows = summarize(results)
    paper = bool(results["paper_protocol"])
    n_seeds = len(results["configs"][0]["runs"])
    head = (f"Table 3 ({results['data_name']}, {results['epochs']} epochs, batch {results['batch_size']}, "
            f"r logged every {results['log_every']} batches, medians over {n_seeds} seed(s))."
            + ("" if paper else " **Digits twin: not comparable with the paper's CIFAR-10 numbers "
                                "(in brackets, for orientation only).**"))
    lines = [head, "", "| configuration | max r | logs with r > 1 | final test accuracy (IQR) | final test loss |",
             "|---|---|---|---|---|"]
    paper_rows = _paper_table3()
    for r in rows:
        ref = paper_rows.get((r["kind"], r["key"]))
        lo, hi = r["acc_iqr"]
        ref_text = [f" ({ref[0]})", f" ({ref[1]}/{ref[2]})", f" ({ref[3]}%)"] if ref else ["", "", ""]
        lines.append(f"| {r['label']} | {r['max_r']:.3g}{ref_text[0]} | {r['n_gt1']:g}/{r['n_logs']}{ref_text[1]} | "
                     f"{100 * r['acc']:.1f}% ({100 * lo:.1f}-{100 * hi:.1f}){ref_text[2]} | {r['loss']:.3g} |")
    t = results["timing"]
    ms, p = t["ms"], _paper_timings()
    lines += ["", f"Costs ({t['device']}, batch {t['batch']}, {t['threads']} thread(s), best of {t['repeats']}): "
              f"forward {ms['forward']:.2f} ms, JVP {ms['jvp']:.2f} ms ({t['jvp_over_forward']:.2f} forwards; "
              f"FLOP ratio {t['flop_ratio_model']:.2f}, ResNet-18 {t['flop_ratio_resnet18']:.2f}); "
              f"SGD step plain {ms['plain']:.2f} ms, with FD rho_a {ms['fd']:.2f} ms (x{t['fd_over_plain']:.2f}), "
              f"with JVP rho_a {ms['jvp_step']:.2f} ms (x{t['jvp_over_plain']:.2f}). Paper (RTX 6000 Ada, "
              f"ResNet-18, batch 128): {p['plain']:g} / {p['fd']:g} (x{p['fd'] / p['plain']:.2f}) / "
              f"{p['jvp']:g} ms (x{p['jvp'] / p['plain']:.2f})."]
    return "\n".join(lines)


def _colors(rows: list[dict]) -> dict[str, str]:
    import matplotlib.pyplot as plt

    warm, cool = plt.get_cmap("YlOrRd"), plt.get_cmap("PuBuGn")
    fixed = sorted((r for r in rows if r["kind"] == "fixed"), key=lambda r: r["value"])
    ctrl = sorted((r for r in rows if r["kind"] == "ctrl"), key=lambda r: r["value"])
    out = {}
    for i, r in enumerate(fixed):
        out[r["label"]] = warm(0.35 + 0.6 * i / max(len(fixed) - 1, 1))
    for i, r in enumerate(ctrl):
        out[r["label"]] = cool(0.4 + 0.55 * i / max(len(ctrl) - 1, 1))
    return out


def plot(results: dict):
    import warnings

    import matplotlib.pyplot as plt

    rows = summarize(results)
    colors = _colors(rows)
    n_seeds = len(results["configs"][0]["runs"])
    epochs = np.arange(1, results["epochs"] + 1)
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for c, r in zip(results["configs"], rows):
            ls = "-" if c["kind"] == "ctrl" else "--"
            for ax, key, scale in ((axes[0], "test_loss", 1.0), (axes[1], "test_acc", 100.0)):
                vals = scale * np.stack([run[key] for run in c["runs"]])
                vals = np.where(np.isfinite(vals), vals, np.nan)
                med = np.nanmedian(vals, axis=0)
                ax.plot(epochs, med, ls=ls, marker="o", ms=3, color=colors[c["label"]], label=c["label"])
                if n_seeds > 1:
                    ax.fill_between(epochs, np.nanpercentile(vals, 25, axis=0), np.nanpercentile(vals, 75, axis=0),
                                    color=colors[c["label"]], alpha=0.15, lw=0)
            med = np.nanmedian(r["r_epoch"], axis=0)
            axes[2].plot(epochs, med, ls=ls, marker="o", ms=3, color=colors[c["label"]], label=c["label"])
            if n_seeds > 1:
                axes[2].fill_between(epochs, np.nanpercentile(r["r_epoch"], 25, axis=0),
                                     np.nanpercentile(r["r_epoch"], 75, axis=0), color=colors[c["label"]],
                                     alpha=0.15, lw=0)
    axes[0].set(yscale="log", xlabel="epoch", ylabel="test loss (nats)", title="test loss")
    axes[1].set(xlabel="epoch", ylabel="test accuracy (%)", title="test accuracy")
    axes[2].axhline(1.0, color="k", ls="--", lw=1)
    axes[2].text(epochs[0], 1.08, "r = 1", fontsize=8)
    axes[2].set(yscale="log", xlabel="epoch", ylabel="max r = tau / rho_a in the epoch",
                title=f"largest normalized step (logged every {results['log_every']} batches)")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles, labels = axes[1].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center right", fontsize=8, frameon=False)
    band = f"median + IQR over {n_seeds} seeds" if n_seeds > 1 else "one seed"
    what = "ResNet-18 on CIFAR-10" if results["paper_protocol"] else "digits twin: tiny ResNet on 8x8 digits"
    fig.suptitle(f"{what}, SGD momentum 0.9: fixed eta (dashed) vs rho_a controller (solid) ({band})",
                 fontsize=11)
    fig.tight_layout(rect=(0, 0, 0.845, 1))
    return fig


def summary_lines(results: dict) -> list[str]:
    lines = [f"  {r['label']}: {_row_text(r)}" for r in summarize(results)]
    t = results["timing"]
    lines.append(f"  costs: JVP = {t['jvp_over_forward']:.2f} forwards; steps x{t['fd_over_plain']:.2f} (FD), "
                 f"x{t['jvp_over_plain']:.2f} (JVP) of plain")
    return lines
