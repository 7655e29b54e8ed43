"""repro.tasks.training: accuracy and evaluation, the gradient step, the training loop, precise BN."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as Fn
from torch import nn

from repro.tasks.training import (accuracy, cross_entropy_backward, evaluate, recalibrate_batchnorm,
                                  train_classifier)


def _problem(n: int = 60, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 5, generator=g, dtype=torch.float64)
    y = torch.randint(0, 3, (n,), generator=g)
    model = nn.Linear(5, 3).double()
    with torch.no_grad():
        model.weight.copy_(torch.randn(3, 5, generator=g, dtype=torch.float64))
        model.bias.zero_()
    return model, x, y


def test_accuracy_counts_the_arg_max_hits() -> None:
    model = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        model.weight.copy_(torch.eye(2))  # logits = inputs: the prediction is the larger coordinate
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 1.0], [0.0, 3.0]])
    assert accuracy(model, x, torch.tensor([0, 1, 0, 0])) == 0.75
    assert accuracy(model, x, torch.tensor([1, 0, 1, 0])) == 0.0


def test_accuracy_uses_eval_mode_and_restores_the_flags() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.Linear(6, 3))
    with torch.no_grad():
        model[1].running_mean.fill_(2.0)  # running statistics far from the batch's own
    x = torch.randn(32, 4)
    with torch.no_grad():
        pred_eval = copy.deepcopy(model).eval()(x).argmax(1)
        pred_batch = copy.deepcopy(model).train()(x).argmax(1)
    assert not torch.equal(pred_eval, pred_batch)  # the mode matters for this model
    model.train()
    model[2].eval()  # a module with its own flag
    stats = model[1].running_mean.clone()
    assert accuracy(model, x, pred_eval) == 1.0  # scored on the running statistics
    assert model.training and model[1].training and not model[2].training
    assert torch.equal(model[1].running_mean, stats)  # no statistics updated


def test_evaluate_sums_over_batches() -> None:
    model, x, y = _problem()
    loss, acc = evaluate(model, [(x, y)])
    with torch.no_grad():
        z = model(x)
    assert loss == pytest.approx(float(Fn.cross_entropy(z, y)), rel=1e-12)
    assert acc == int((z.argmax(1) == y).sum()) / len(y)
    loss3, acc3 = evaluate(model, [(x[:7], y[:7]), (x[7:40], y[7:40]), (x[40:], y[40:])])
    assert acc3 == acc and loss3 == pytest.approx(loss, rel=1e-12)  # unequal batches: same numbers
    with pytest.raises(ValueError, match="empty"):
        evaluate(model, [])


@pytest.mark.parametrize("temperature", [1.0, 2.5])
def test_cross_entropy_backward_is_the_gradient_of_the_tempered_loss(temperature) -> None:
    model, x, y = _problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for _ in range(2):  # gradients are zeroed first, not accumulated
        loss = cross_entropy_backward(model, opt, x, y, temperature=temperature)
    w, b = model.weight.detach().clone().requires_grad_(), model.bias.detach().clone().requires_grad_()
    ref = Fn.cross_entropy((x @ w.T + b) / temperature, y)
    ref.backward()
    assert not loss.requires_grad and float(loss) == pytest.approx(ref.item(), rel=1e-12)
    torch.testing.assert_close(model.weight.grad, w.grad)
    torch.testing.assert_close(model.bias.grad, b.grad)
    with pytest.raises(ValueError, match="temperature"):
        cross_entropy_backward(model, opt, x, y, temperature=0.0)


def test_full_batch_training_is_the_plain_gradient_loop() -> None:
    model, x, y = _problem()
    twin, _, _ = _problem()
    hist = train_classifier(model, x, y, optimizer=torch.optim.SGD(model.parameters(), lr=0.5), steps=5,
                            temperature=2.0)
    opt = torch.optim.SGD(twin.parameters(), lr=0.5)
    losses = []
    for _ in range(5):
        opt.zero_grad()
        loss = Fn.cross_entropy(twin(x) / 2.0, y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert hist["loss"].tolist() == losses and hist["forward_evals"] == 5
    assert torch.equal(model.weight, twin.weight) and not model.training
    assert losses[-1] < losses[0]


def test_mini_batches_are_deterministic_and_snapshots_equal_shorter_runs() -> None:
    def run(steps, snapshot_steps=()):
        model, x, y = _problem()
        return train_classifier(model, x, y, optimizer=torch.optim.Adam(model.parameters(), lr=0.05),
                                steps=steps, batch_size=16, generator=torch.Generator().manual_seed(3),
                                snapshot_steps=snapshot_steps), model

    (a, model_a), (b, _) = run(9, snapshot_steps=(4,)), run(9)
    assert a["loss"].tolist() == b["loss"].tolist()
    short, model_short = run(4)
    assert torch.equal(a["snapshots"][4]["weight"], model_short.weight)
    assert not torch.equal(model_a.weight, model_short.weight)
    with pytest.raises(ValueError, match="generator"):
        train_classifier(model_a, torch.zeros(4, 5, dtype=torch.float64), torch.zeros(4, dtype=torch.long),
                         optimizer=torch.optim.SGD(model_a.parameters(), lr=0.1), steps=1, batch_size=2)


def test_validation_selects_the_best_logged_model() -> None:
    model, x, y = _problem(n=80)
    x_val, y_val = x[60:], y[60:]
    hist = train_classifier(model, x[:60], y[:60], optimizer=torch.optim.SGD(model.parameters(), lr=3.0),
                            steps=10, validation=(x_val, y_val), eval_every=4)
    curve = hist["curve"]
    assert curve["step"].tolist() == [4, 8, 10] and curve["forward_evals"].tolist() == [4, 8, 10]
    assert curve["train_loss"].tolist() == [hist["loss"][t - 1] for t in (4, 8, 10)]
    assert hist["best_val_acc"] == curve["val_acc"].max()
    assert hist["selected_step"] == curve["step"][int(curve["val_acc"].argmax())]
    assert accuracy(model, x_val, y_val) == hist["best_val_acc"]  # the selected parameters are back


def test_forward_only_optimizer_steps_on_a_population_closure() -> None:
    from polystep.evaluation import population_closure
    from polystep.optim import PolyStep

    torch.manual_seed(0)
    model, x, y = _problem(n=120)
    opt = PolyStep(model.parameters(), rank=2, particle_dim=4, seed=0)
    before = Fn.cross_entropy(model(x), y).item()
    hist = train_classifier(model, x, y, optimizer=opt, steps=30, closure_factory=population_closure)
    assert hist["forward_evals"] == 30 * opt.evals_per_step
    assert Fn.cross_entropy(model(x), y).item() < before


def test_bad_arguments_are_refused() -> None:
    model, x, y = _problem()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for kw, match in (({"steps": 0}, "steps"), ({"steps": 2, "eval_every": 0}, "eval_every"),
                      ({"steps": 2, "temperature": -1.0}, "temperature")):
        with pytest.raises(ValueError, match=match):
            train_classifier(model, x, y, optimizer=opt, **kw)


def test_recalibrate_batchnorm_uses_exact_batch_statistics() -> None:
    bn = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6))
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    bn.train()
    bn(x * 5 + 3)  # stale statistics from different data
    recalibrate_batchnorm(bn, x)
    with torch.no_grad():
        h = bn[0](x)
    torch.testing.assert_close(bn[1].running_mean, h.mean(0))
    torch.testing.assert_close(bn[1].running_var, h.var(0, unbiased=True))
    assert bn[1].momentum == 0.1 and bn.training
