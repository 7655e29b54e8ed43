"""Tests for polystep.schedules: formulas, keyword-only construction, validation, serialisation."""

import json
import math

import numpy as np
import pytest
import torch

from polystep.schedules import (
    Constant,
    Cosine,
    InverseSqrt,
    Linear,
    Schedule,
    as_schedule,
    positional_bug_demo,
    schedule_from_dict,
)

ALL = [
    Constant(value=0.3),
    Linear(start=1.0, end=0.1, steps=10),
    Cosine(start=5.0, end=0.5, steps=8),
    InverseSqrt(start=2.0),
    InverseSqrt(start=2.0, offset=10.0),
]


def test_constant():
    s = Constant(value=0.3)
    assert [s(t) for t in (0, 1, 10**9)] == [0.3, 0.3, 0.3]


def test_linear_values():
    s = Linear(start=1.0, end=0.1, steps=10)
    # exact up to one rounding of the interpolation (|error| <= a few ulps of 1.0)
    np.testing.assert_allclose([s(0), s(5), s(10), s(11), s(1000)], [1.0, 0.55, 0.1, 0.1, 0.1], rtol=0, atol=1e-15)
    assert s(0) == 1.0 and s(10) == 0.1  # endpoints are exact


def test_linear_increasing_ramp():
    s = Linear(start=0.0, end=2.0, steps=4)
    assert [s(t) for t in range(6)] == [0.0, 0.5, 1.0, 1.5, 2.0, 2.0]


def test_cosine_values():
    s = Cosine(start=5.0, end=0.5, steps=8)
    assert s(0) == 5.0
    assert s(8) == 0.5 and s(9) == 0.5 and s(10**6) == 0.5
    # midpoint: cos(pi/2) = 6e-17, so equality up to float rounding
    assert s(4) == pytest.approx(2.75, abs=1e-15)
    # quarter point: end + (start-end)/2 (1 + cos(pi/4))
    assert s(2) == pytest.approx(0.5 + 2.25 * (1 + math.sqrt(0.5)), rel=1e-15)
    vals = [s(t) for t in range(9)]
    assert all(a > b for a, b in zip(vals, vals[1:]))  # strictly decreasing on the ramp


def test_inverse_sqrt_values():
    s = InverseSqrt(start=2.0)
    assert s(0) == 2.0
    assert s(3) == pytest.approx(1.0, rel=1e-15)
    assert s(99) == pytest.approx(0.2, rel=1e-15)
    s2 = InverseSqrt(start=1.0, offset=4.0)
    assert s2(0) == 1.0 and s2(12) == pytest.approx(0.5, rel=1e-15)


def test_inverse_sqrt_sums_give_log_rate():
    # sum_{t<T} a_t ~ 2 a0 sqrt(T), sum a_t^2 ~ a0^2 log T  (paper/polystep_reconstruction.md §3.2 (iii))
    s = InverseSqrt(start=1.0)
    T = 10_000
    a = np.array([s(t) for t in range(T)])
    assert a.sum() / (2 * math.sqrt(T)) == pytest.approx(1.0, rel=0.01)
    assert (a**2).sum() / math.log(T) == pytest.approx(1.0, rel=0.07)  # H_T = log T + 0.577...


@pytest.mark.parametrize("cls, kwargs", [
    (Constant, {"value": 1.0}),
    (Linear, {"start": 1.0, "end": 0.0, "steps": 3}),
    (Cosine, {"start": 1.0, "end": 0.0, "steps": 3}),
    (InverseSqrt, {"start": 1.0, "offset": 1.0}),
])
def test_keyword_only(cls, kwargs):
    with pytest.raises(TypeError):
        cls(*kwargs.values())
    assert cls(**kwargs) == cls(**kwargs)


def test_original_positional_misuse_is_a_type_error():
    with pytest.raises(TypeError):
        Cosine(5.0, 0.5, 100)  # the CosineEpsilon(target, init, ...) trap


def test_frozen():
    s = Cosine(start=1.0, end=0.0, steps=3)
    with pytest.raises(Exception):
        s.start = 2.0  # dataclasses.FrozenInstanceError


@pytest.mark.parametrize("make, name", [
    (lambda: Linear(start=1.0, end=0.0, steps=0), "steps"),
    (lambda: Cosine(start=1.0, end=0.0, steps=-2), "steps"),
    (lambda: Cosine(start=1.0, end=0.0, steps=2.5), "steps"),
    (lambda: Linear(start=float("nan"), end=0.0, steps=3), "start"),
    (lambda: Cosine(start=1.0, end=float("inf"), steps=3), "end"),
    (lambda: Constant(value=float("inf")), "value"),
    (lambda: Constant(value="0.1"), "value"),
    (lambda: InverseSqrt(start=1.0, offset=0.0), "offset"),
    (lambda: InverseSqrt(start=float("-inf")), "start"),
])
def test_constructor_validation(make, name):
    with pytest.raises(ValueError, match=name):
        make()


@pytest.mark.parametrize("s", ALL, ids=repr)
def test_step_validation(s):
    with pytest.raises(ValueError, match="t must be >= 0"):
        s(-1)
    with pytest.raises(TypeError, match="t must be an integer"):
        s(1.5)
    # numpy and 0-d torch integer step counters are accepted
    assert s(np.int64(3)) == s(3) == s(torch.tensor(3))


@pytest.mark.parametrize("s", ALL, ids=repr)
def test_dict_round_trip(s):
    d = s.to_dict()
    assert d["kind"] == s.kind
    d2 = json.loads(json.dumps(d))  # plain JSON types
    for rebuilt in (schedule_from_dict(d2), Schedule.from_dict(d2), type(s).from_dict(d2)):
        assert rebuilt == s and type(rebuilt) is type(s)
        assert [rebuilt(t) for t in range(12)] == [s(t) for t in range(12)]


def test_from_dict_errors():
    with pytest.raises(ValueError, match="kind"):
        schedule_from_dict({"kind": "exponential", "start": 1.0})
    with pytest.raises(ValueError, match="kind"):
        schedule_from_dict({"start": 1.0})
    with pytest.raises(ValueError, match="expects 'linear'"):
        Linear.from_dict({"kind": "cosine", "start": 1.0, "end": 0.0, "steps": 2})
    with pytest.raises(ValueError, match="unexpected"):
        schedule_from_dict({"kind": "constant", "value": 1.0, "decay": 0.1})


def test_repr_is_informative():
    assert repr(Cosine(start=5.0, end=0.5, steps=8)) == "Cosine(start=5.0, end=0.5, steps=8)"


def test_as_schedule():
    s = Cosine(start=1.0, end=0.0, steps=3)
    assert as_schedule(s) is s
    assert as_schedule(0.25) == Constant(value=0.25)
    assert as_schedule(2) == Constant(value=2.0)
    assert as_schedule(np.float32(0.5)) == Constant(value=0.5)
    for bad in ("0.1", None, [0.1], True, torch.tensor(0.1)):
        with pytest.raises(TypeError):
            as_schedule(bad)
    with pytest.raises(ValueError):
        as_schedule(float("nan"))


def test_positional_bug_demo_matches_the_original_code():
    # paper/polystep_reconstruction.md §6 item 9: CosineEpsilon(5.0, 0.5) -> T = 1 -> 0.5 at t = 0, then constant 5.0
    demo = positional_bug_demo(intended_start=5.0, intended_end=0.5, num_steps=20)
    assert demo["buggy_period"] == 1
    assert demo["t"] == list(range(21))
    assert demo["buggy"][0] == 0.5
    assert all(v == 5.0 for v in demo["buggy"][1:])
    intended = Cosine(start=5.0, end=0.5, steps=20)
    assert demo["intended"] == [intended(t) for t in range(21)]
    assert demo["intended"][0] == 5.0 and demo["intended"][-1] == 0.5


def test_positional_bug_demo_radii():
    # the same misuse on the MAX-SAT step radius 3000c -> 600c (c = 1): 600 then 3000
    demo = positional_bug_demo(intended_start=3000.0, intended_end=600.0, num_steps=5)
    assert demo["buggy"] == [600.0] + [3000.0] * 5
