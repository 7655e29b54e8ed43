"""RadiusController (Prop. 5.2 clip, the released gradient-direction controller, rho-set).

Checks: the realized step obeys ||step|| <= r_target * rho_a(step direction) (C7 through
the controller), the inner optimizer's state stays what a plain optimizer would hold,
state_dict round trips, a step where no cap fires is bit-identical to a plain step, and
the three modes behave as Prop. 5.2 and the authors' released controllers do
(paper/ghosts_notes.md §2.8, §4.4, §4.5, §4.8, §4.9); the radius function is an argument
(``radius_fn``): a custom one is honoured, its further radii are recorded, and bad ones fail
clearly.
"""

from __future__ import annotations

import copy
import functools
import io
import math

import pytest
import torch
from torch import nn

from ghosts.radius_controller import RadiusController
from ghosts.radius_models import model_rho_a

OPTIMIZERS = {
    "adam": lambda params, lr=1e-2: torch.optim.Adam(params, lr=lr),
    "sgd_momentum": lambda params, lr=1e-1: torch.optim.SGD(params, lr=lr, momentum=0.9),
    "adamw": lambda params, lr=1e-2: torch.optim.AdamW(params, lr=lr, weight_decay=1e-2),
}
BIG_LR = {"adam": 0.5, "sgd_momentum": 100.0, "adamw": 0.5}  # large enough that the cap fires


def make_problem(seed=0, bn=False):
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    layers = [nn.Linear(16, 32)]
    if bn:
        layers.append(nn.BatchNorm1d(32))
    layers += [nn.GELU(), nn.Linear(32, 5)]
    model = nn.Sequential(*layers).double()
    x = torch.randn(64, 16, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 5, (64,), generator=gen)
    return model, x, y


def closure_for(model, opt, x, y):
    def closure():
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    return closure


def flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def assert_state_equal(s1, s2):
    assert s1["param_groups"] == s2["param_groups"]
    assert s1["state"].keys() == s2["state"].keys()
    for k in s1["state"]:
        for name, v in s1["state"][k].items():
            torch.testing.assert_close(v, s2["state"][k][name], rtol=0, atol=0)


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_uncapped_controller_is_the_plain_optimizer(opt_name):
    model, x, y = make_problem()
    twin = copy.deepcopy(model)
    ctrl = RadiusController(OPTIMIZERS[opt_name](model.parameters()), model, r_target=1e12, rho_inputs=x)
    plain = OPTIMIZERS[opt_name](twin.parameters())
    for _ in range(5):
        ctrl.step(closure_for(model, ctrl.inner, x, y))
        plain.step(closure_for(twin, plain, x, y))
        torch.testing.assert_close(flat(model), flat(twin), rtol=0, atol=0)  # bit-identical
    assert not any(h["capped"] for h in ctrl.history)
    assert_state_equal(ctrl.inner.state_dict(), plain.state_dict())


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_capped_step_has_length_r_target_rho_a_along_the_proposal(opt_name):
    """Prop 5.2 (ghosts.prop52_radius_clip) through the controller, r_target = 0.5."""
    model, x, y = make_problem(1)
    twin = copy.deepcopy(model)
    r_target = 0.5
    lr = BIG_LR[opt_name]
    ctrl = RadiusController(OPTIMIZERS[opt_name](model.parameters(), lr=lr), model, r_target, rho_inputs=x)
    plain = OPTIMIZERS[opt_name](twin.parameters(), lr=lr)
    theta0, model0 = flat(model), copy.deepcopy(model)
    ctrl.step(closure_for(model, ctrl.inner, x, y))
    plain.step(closure_for(twin, plain, x, y))
    p = flat(twin) - theta0  # the plain proposal
    step = flat(model) - theta0
    rho = model_rho_a(model0, x, p / p.norm())  # rho_a along p/||p|| at theta_0, independently
    h = ctrl.history[-1]
    assert h["capped"] and h["rho_a"] == pytest.approx(rho, rel=1e-12)
    assert float(step.norm()) == pytest.approx(r_target * rho, rel=1e-12)  # ||s p|| = r rho_a
    cos = float(step @ p / (step.norm() * p.norm()))
    assert cos == pytest.approx(1.0, abs=1e-12)  # same direction as the proposal
    assert h["r"] == pytest.approx(r_target, rel=1e-12) and h["scale"] < 1
    assert h["step_norm"] == pytest.approx(float(p.norm()), rel=1e-12)


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_capping_keeps_the_inner_state(opt_name):
    """Moments / momentum buffers are exactly a plain optimizer's for the same gradients."""
    model, x, _ = make_problem(2)
    twin = copy.deepcopy(model)
    ctrl = RadiusController(OPTIMIZERS[opt_name](model.parameters(), lr=1.0), model, 0.1, rho_inputs=x)
    plain = OPTIMIZERS[opt_name](twin.parameters(), lr=1.0)
    gen = torch.Generator().manual_seed(5)
    for _ in range(4):  # fixed gradient sequence, independent of the parameters
        grads = [torch.randn(p.shape, generator=gen, dtype=p.dtype) for p in model.parameters()]
        for p, q, g in zip(model.parameters(), twin.parameters(), grads):
            p.grad, q.grad = g.clone(), g.clone()
        ctrl.step()
        plain.step()
    assert all(h["capped"] for h in ctrl.history)
    s_ctrl, s_plain = ctrl.inner.state_dict(), plain.state_dict()
    for k in s_plain["state"]:
        for name, v in s_plain["state"][k].items():
            torch.testing.assert_close(s_ctrl["state"][k][name], v, rtol=0, atol=0)
    assert not torch.equal(flat(model), flat(twin))  # only the parameters differ


@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_state_dict_round_trip_and_uncapped_step_after_caps(opt_name):
    model, x, y = make_problem(3)
    lr = BIG_LR[opt_name]
    ctrl = RadiusController(OPTIMIZERS[opt_name](model.parameters(), lr=lr), model, 0.2, rho_inputs=x)
    for _ in range(3):
        ctrl.step(closure_for(model, ctrl.inner, x, y))
    assert any(h["capped"] for h in ctrl.history)
    # round trip (serialized, as a checkpoint) into a fresh model / optimizer / controller;
    # like torch's, state_dict() holds references to the live state tensors
    buf = io.BytesIO()
    torch.save(ctrl.state_dict(), buf)
    buf.seek(0)
    model2 = copy.deepcopy(model)
    ctrl2 = RadiusController(OPTIMIZERS[opt_name](model2.parameters(), lr=lr), model2, 1.0, rho_inputs=x)
    ctrl2.load_state_dict(torch.load(buf))
    assert ctrl2.r_target == 0.2 and ctrl2.history == ctrl.history
    assert_state_equal(ctrl2.inner.state_dict(), ctrl.inner.state_dict())
    for _ in range(3):
        ctrl.step(closure_for(model, ctrl.inner, x, y))
        ctrl2.step(closure_for(model2, ctrl2.inner, x, y))
        torch.testing.assert_close(flat(model), flat(model2), rtol=0, atol=0)
    # after capped steps, an uncapped controller step == a plain inner step from the same state
    plain_model = copy.deepcopy(model)
    plain = OPTIMIZERS[opt_name](plain_model.parameters(), lr=lr)
    plain.load_state_dict(copy.deepcopy(ctrl.inner.state_dict()))
    ctrl.r_target = 1e12
    ctrl.step(closure_for(model, ctrl.inner, x, y))
    plain.step(closure_for(plain_model, plain, x, y))
    assert not ctrl.history[-1]["capped"]
    torch.testing.assert_close(flat(model), flat(plain_model), rtol=0, atol=0)
    assert_state_equal(ctrl.inner.state_dict(), plain.state_dict())


def test_rho_set_mode_sets_the_step_length():
    """rho-set variant (paper/ghosts_notes.md §2.8; Table 3 / Fig. 11): ||step|| = r_target rho_a,
    up or down."""
    for lr, expect_up in ((1e-5, True), (1e4, False)):
        model, x, y = make_problem(4)
        ctrl = RadiusController(torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9), model, 2.0,
                                mode="rho_set", rho_inputs=x)
        theta0 = flat(model)
        ctrl.step(closure_for(model, ctrl.inner, x, y))
        h = ctrl.history[-1]
        assert float((flat(model) - theta0).norm()) == pytest.approx(2.0 * h["rho_a"], rel=1e-12)
        assert (h["scale"] > 1) == expect_up
        assert h["r"] == pytest.approx(2.0, rel=1e-12)


def test_gradient_direction_mode_is_the_released_controller():
    """archgrid controller (paper/ghosts_notes.md §4.5, §5 item 13): lr scaled by
    min(1, rho_a(g)/(lr ||g||)).

    With plain SGD the realized step is lr s ||g|| = min(lr ||g||, rho_a): capped.  With Adam the
    realized step is not lr ||g||, so the realized r exceeds 1 although the LR was "capped";
    the actual-step controller keeps r <= 1 on the same problem.
    """
    model, x, y = make_problem(5)
    ctrl = RadiusController(torch.optim.SGD(model.parameters(), lr=50.0), model, 1.0,
                            mode="gradient_direction", rho_inputs=x)
    theta0 = flat(model)
    ctrl.step(closure_for(model, ctrl.inner, x, y))
    h = ctrl.history[-1]
    assert h["capped"] and ctrl.inner.param_groups[0]["lr"] == 50.0  # lr restored
    assert float((flat(model) - theta0).norm()) == pytest.approx(h["rho_a"], rel=1e-12)
    # Adam under a 1000x spike: released controller overshoots, actual-step controller does not
    realized = {}
    for mode in ("gradient_direction", "actual_step"):
        model, x, y = make_problem(5)
        ctrl = RadiusController(torch.optim.Adam(model.parameters(), lr=1.0), model, 1.0, mode=mode, rho_inputs=x)
        for _ in range(3):
            ctrl.step(closure_for(model, ctrl.inner, x, y))
        realized[mode] = max(h["tau"] / h["rho_a"] for h in ctrl.history)
    assert realized["gradient_direction"] > 3.0
    assert realized["actual_step"] <= 1.0 + 1e-12


def test_spike_run_keeps_r_at_most_one():
    """C7 through a training run with a 1000x LR spike (Fig 6-style): r <= 1 at every step."""
    model, x, y = make_problem(6)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    ctrl = RadiusController(opt, model, 1.0, rho_inputs=x)
    for t in range(20):
        opt.param_groups[0]["lr"] = 1e-3 * (1000 if t >= 5 else 1)
        ctrl.step(closure_for(model, opt, x, y), x=x[:32])
    rs = [h["r"] for h in ctrl.history]
    assert max(rs) <= 1 + 1e-12
    assert sum(h["capped"] for h in ctrl.history) >= 10  # the spike is capped
    assert all(h["step"] == i + 1 for i, h in enumerate(ctrl.history))
    with torch.no_grad():
        assert torch.isfinite(nn.functional.cross_entropy(model(x), y))


def test_batchnorm_running_stats_only_change_through_the_closure():
    model, x, y = make_problem(7, bn=True)
    twin = copy.deepcopy(model)
    ctrl = RadiusController(torch.optim.SGD(model.parameters(), lr=1e-3), model, 1e12, rho_inputs=x)
    plain = torch.optim.SGD(twin.parameters(), lr=1e-3)
    model.train()
    twin.train()
    ctrl.step(closure_for(model, ctrl.inner, x, y))
    plain.step(closure_for(twin, plain, x, y))
    assert model.training and model[1].training
    for (k, b), (_, b2) in zip(model.named_buffers(), twin.named_buffers()):
        torch.testing.assert_close(b, b2, rtol=0, atol=0, msg=k)


def test_nonfinite_proposal_restores_parameters():
    model, x, _ = make_problem(8)
    ctrl = RadiusController(torch.optim.SGD(model.parameters(), lr=0.1), model, 1.0, rho_inputs=x)
    theta0 = flat(model)
    for p in model.parameters():
        p.grad = torch.full_like(p, float("nan"))
    with pytest.raises(FloatingPointError, match="step 1"):
        ctrl.step()
    torch.testing.assert_close(flat(model), theta0, rtol=0, atol=0)


def test_zero_step_and_validation():
    model, x, _ = make_problem(9)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    ctrl = RadiusController(opt, model, 1.0)
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    ctrl.step(x=x)
    assert ctrl.history[-1]["tau"] == 0.0 and ctrl.history[-1]["scale"] == 1.0
    with pytest.raises(ValueError, match="no sample set"):
        ctrl.step()
    with pytest.raises(ValueError, match="r_target"):
        RadiusController(opt, model, 0.0)
    with pytest.raises(ValueError, match="r_target"):
        RadiusController(opt, model, math.inf)
    with pytest.raises(ValueError, match="mode"):
        RadiusController(opt, model, 1.0, mode="clip")
    with pytest.raises(ValueError, match="not a parameter of model"):
        RadiusController(torch.optim.SGD([nn.Parameter(torch.zeros(2))], lr=0.1), model, 1.0)
    with pytest.raises(ValueError, match="Optimizer"):
        RadiusController(object(), model, 1.0)
    with pytest.raises(ValueError, match="lacks the key"):
        ctrl.load_state_dict({"inner": opt.state_dict()})


def test_fd_radius_fn_agrees_with_the_default_jvp_radius():
    model, x, y = make_problem(10)
    twin = copy.deepcopy(model)
    c1 = RadiusController(torch.optim.Adam(model.parameters(), lr=0.5), model, 1.0, rho_inputs=x)
    c2 = RadiusController(torch.optim.Adam(twin.parameters(), lr=0.5), twin, 1.0, rho_inputs=x,
                          radius_fn=functools.partial(model_rho_a, method="fd"))
    assert c1.radius_fn is model_rho_a  # the JVP radius is the default
    c1.step(closure_for(model, c1.inner, x, y))
    c2.step(closure_for(twin, c2.inner, x, y))
    assert c1.history[-1]["capped"]
    # float64 central differences, h = 6e-6: relative error ~1e-10
    assert c1.history[-1]["rho_a"] == pytest.approx(c2.history[-1]["rho_a"], rel=1e-8)
    torch.testing.assert_close(flat(model), flat(twin), rtol=1e-8, atol=1e-10)


# ----------------------------------------------------------------------------------
# radius_fn: a custom radius function, its arguments, further radii, bad values
# ----------------------------------------------------------------------------------


class RecordingRadius:
    """A radius function returning a fixed radius (and further radii), recording its calls."""

    def __init__(self, rho, radii=None):
        self.rho, self.radii, self.calls = rho, radii, []

    def __call__(self, model, x, v, *, params):
        self.calls.append({"model": model, "x": x, "v": {k: t.clone() for k, t in v.items()},
                           "params": {k: t.clone() for k, t in params.items()}})
        return self.rho if self.radii is None else (self.rho, self.radii)


@pytest.mark.parametrize("mode", ["actual_step", "rho_set", "gradient_direction"])
def test_custom_radius_fn_is_honoured(mode):
    """The step is capped (or set) at r_target times the custom radius, and the function gets the
    model, the sample set, a unit direction and the start point theta_old."""
    model, x, y = make_problem(12)
    radius = RecordingRadius(1e-3)
    ctrl = RadiusController(torch.optim.SGD(model.parameters(), lr=1.0), model, 0.5, mode=mode,
                            rho_inputs=x, radius_fn=radius)
    theta0 = {k: p.detach().clone() for k, p in model.named_parameters()}
    ctrl.step(closure_for(model, ctrl.inner, x, y))
    step = flat(model) - torch.cat([t.reshape(-1) for t in theta0.values()])
    assert float(step.norm()) == pytest.approx(0.5 * 1e-3, rel=1e-10)
    h = ctrl.history[-1]
    assert h["rho_a"] == 1e-3 and h["radii"] == {} and h["r"] == pytest.approx(0.5, rel=1e-10)
    (call,) = radius.calls
    assert call["model"] is model and call["x"] is x
    assert list(call["v"]) == [k for k, _ in model.named_parameters()] == list(call["params"])
    unit = torch.cat([t.reshape(-1) for t in call["v"].values()])
    assert float(unit.norm()) == pytest.approx(1.0, rel=1e-12)
    for k, p in call["params"].items():
        torch.testing.assert_close(p, theta0[k], rtol=0, atol=0)  # theta_old, not theta_new
    if mode != "gradient_direction":  # the direction of the proposal p = lr * (-grad) for SGD
        torch.testing.assert_close(unit, step / step.norm(), rtol=0, atol=1e-12)


def test_further_radii_are_recorded_and_round_trip():
    model, x, y = make_problem(13)
    radius = RecordingRadius(2e-3, {"out": 2e-3, "attn": 0.5})
    ctrl = RadiusController(torch.optim.SGD(model.parameters(), lr=1.0), model, 1.0, mode="rho_set",
                            rho_inputs=x, radius_fn=radius)
    ctrl.step(closure_for(model, ctrl.inner, x, y))
    assert ctrl.history[-1]["radii"] == {"out": 2e-3, "attn": 0.5}
    state = ctrl.state_dict()
    state["history"][-1]["radii"]["out"] = -1.0  # the state dict holds a copy of the history
    assert ctrl.history[-1]["radii"]["out"] == 2e-3


def test_infinite_radius_means_no_limit():
    model, x, y = make_problem(14)
    twin = copy.deepcopy(model)
    ctrl = RadiusController(torch.optim.SGD(model.parameters(), lr=0.1), model, 1.0, rho_inputs=x,
                            radius_fn=RecordingRadius(math.inf))
    plain = torch.optim.SGD(twin.parameters(), lr=0.1)
    ctrl.step(closure_for(model, ctrl.inner, x, y))
    plain.step(closure_for(twin, plain, x, y))
    torch.testing.assert_close(flat(model), flat(twin), rtol=0, atol=0)
    assert not ctrl.history[-1]["capped"] and ctrl.history[-1]["r"] == 0.0


def test_non_callable_radius_fn_is_refused():
    model, x, _ = make_problem(15)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(ValueError, match="radius_fn must be callable"):
        RadiusController(opt, model, 1.0, rho_inputs=x, radius_fn=0.5)
    with pytest.raises(ValueError, match="radius_fn must be callable"):
        RadiusController(opt, model, 1.0, rho_inputs=x, radius_fn="jvp")


BAD_RADII = [
    (math.nan, r"returned rho_a = nan; a radius must be > 0"),
    (-0.1, r"returned rho_a = -0.1; a radius must be > 0"),
    (0.0, r"returned rho_a = 0.0; a radius must be > 0"),
    ("0.1", r"must return a number, got str"),
    (None, r"must return a number, got NoneType"),
    (True, r"must return a number, got bool"),
    ((0.1, 0.2, 0.3), r"not a pair \(radius, \{name: value\}\)"),
    ((0.1, [0.2]), r"not a pair \(radius, \{name: value\}\)"),
    ((0.1, {"out": "small"}), r"further radii that are not numbers"),
    ((math.nan, {"out": 0.1}), r"returned rho_a = nan"),
]


@pytest.mark.parametrize("mode", ["actual_step", "rho_set", "gradient_direction"])
@pytest.mark.parametrize("bad, message", BAD_RADII, ids=[repr(b) for b, _ in BAD_RADII])
def test_bad_radius_values_fail_clearly_and_restore_the_parameters(mode, bad, message):
    model, x, y = make_problem(16)
    ctrl = RadiusController(torch.optim.SGD(model.parameters(), lr=1.0), model, 1.0, mode=mode,
                            rho_inputs=x, radius_fn=lambda model, x, v, *, params: bad)
    theta0 = flat(model)
    with pytest.raises(ValueError, match=message):
        ctrl.step(closure_for(model, ctrl.inner, x, y))
    assert "lambda" in str(ctrl.radius_fn.__qualname__)
    torch.testing.assert_close(flat(model), theta0, rtol=0, atol=0)
    assert ctrl.history == []


# ----------------------------------------------------------------------------------
# float range: non-finite directional derivatives, overflowing spreads and steps
# ----------------------------------------------------------------------------------


def overflow_problem():
    """float32 Linear(8, 3) on inputs 3e38: a = J_z v overflows to -inf for v = -grad/||grad||."""
    torch.manual_seed(0)
    model = nn.Linear(8, 3)
    x = torch.full((1, 8), 3e38)
    return model, x


def test_nonfinite_directional_derivatives_raise_and_restore():
    """Old code: NaN spreads gave rho_a = inf ("no limit"), so the controller kept the
    uncapped step; now model_rho_a raises and the controller restores the parameters."""
    model, x = overflow_problem()
    v = {"weight": torch.full((3, 8), -0.2), "bias": torch.full((3,), -0.2)}
    with pytest.raises(ValueError, match=r"3 NaN/inf entries of 3 .* rho_a is undefined"):
        model_rho_a(model, x, v)
    ctrl = RadiusController(torch.optim.SGD(model.parameters(), lr=1.0), model, 1.0, rho_inputs=x)
    theta0 = flat(model)
    for p in model.parameters():
        p.grad = torch.ones_like(p)  # a finite proposal of norm sqrt(27)
    with pytest.raises(ValueError, match="NaN/inf"):
        ctrl.step()
    torch.testing.assert_close(flat(model), theta0, rtol=0, atol=0)


def test_overflowing_spread_gives_a_positive_rho_a():
    """Old code: max a - min a = inf in float32, so rho_a = pi/inf = 0 (a zero step cap)."""
    model = nn.Linear(1, 2, bias=False)
    v = {"weight": torch.tensor([[3e38], [-3e38]])}
    x = torch.ones(1, 1)
    expected = (math.pi / 2) / 3e38  # float64: (pi/2) / (max/2 - min/2); float32(3e38) = 3.0000000054977558e38
    assert model_rho_a(model, x, v) == pytest.approx(expected, rel=1e-7)
    per = model_rho_a(model, x, v, per_sample=True)
    assert per.dtype == torch.float32 and float(per[0]) > 0  # 5.2e-39: a float32 subnormal
    assert float(per[0]) == pytest.approx(expected, rel=1e-4)  # subnormal float32: ~16 bits left


def test_rho_set_step_that_overflows_restores_parameters():
    """Old code: rho_set scaled the step to r_target * rho_a = 1e300 and wrote inf into the
    float32 parameters without a word."""
    model, x, y = make_problem(11)
    model = model.float()
    x = x.float()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    ctrl = RadiusController(opt, model, 1e300, mode="rho_set", rho_inputs=x)
    theta0 = flat(model)
    with pytest.raises(FloatingPointError, match="overflows the parameters' dtype"):
        ctrl.step(closure_for(model, opt, x, y))
    torch.testing.assert_close(flat(model), theta0, rtol=0, atol=0)
    assert torch.isfinite(flat(model)).all()
