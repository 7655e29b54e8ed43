"""Property-based tests (hypothesis) of the radius functions over the whole float64 range.

Each property states its tolerance and why.  Inputs are drawn over wide ranges (huge,
tiny, subnormal, signed zero); a function may refuse an input only with a ``ValueError``
whose message says why.  References are computed in mpmath from the exact float inputs.
Examples under ``@example`` are bugs these properties found (or the issue reported), kept
as explicit regressions.  Profile: tests/conftest.py (derandomized, 60 examples).
"""

from __future__ import annotations

import contextlib
import math
import time

import mpmath
import numpy as np
import pytest
import torch
from hypothesis import assume, event, example, given
from hypothesis import strategies as st
from torch import nn

from ghosts import softmax_radius as sr
from ghosts.radius_controller import RadiusController
from ghosts.radius_models import model_rho_a

PI = math.pi
MAX = np.finfo(np.float64).max

FINITE = st.floats(allow_nan=False, allow_infinity=False)  # every float64, subnormals and -0.0 included
MODERATE = st.floats(-30, 30, allow_nan=False)
SLOPE = st.one_of(st.just(0.0), st.floats(1e-2, 1e2), st.floats(-1e2, -1e-2))


def wide_vectors(n_min, n_max, elements=FINITE):
    return st.lists(elements, min_size=n_min, max_size=n_max)


def mp_hypot_over(delta, d):
    """sqrt(delta^2 + pi^2)/|d| in mpmath from exact float inputs (differences taken in mpmath)."""
    with mpmath.workdps(40):
        return mpmath.sqrt(mpmath.mpf(delta) ** 2 + mpmath.pi**2) / abs(mpmath.mpf(d))


def check_float_of(value, truth, rel):
    """``value`` is the float64 of the mpmath ``truth``: inf beyond the float64 range, else within
    ``rel``; values within 1e-12 of the overflow threshold may round either way."""
    if truth > mpmath.mpf(MAX) * (1 + 1e-12):
        assert value == math.inf
    elif truth < mpmath.mpf(MAX) * (1 - 1e-12):
        assert math.isfinite(value) and value > 0
        assert abs(value - float(truth)) <= rel * float(truth)


@contextlib.contextmanager
def sample_budget(total):
    """Smaller sample caps (per search and per circle): bound the time of one example
    (~0.15 us x K x total) without changing the code path (the same checks, earlier)."""
    saved = sr._MAX_TOTAL_SAMPLES, sr._MAX_CIRCLE_SAMPLES
    sr._MAX_TOTAL_SAMPLES, sr._MAX_CIRCLE_SAMPLES = total, min(total, saved[1])
    try:
        yield
    finally:
        sr._MAX_TOTAL_SAMPLES, sr._MAX_CIRCLE_SAMPLES = saved


# ----------------------------------------------------------------------------------
# closed forms: binary_radius, rho_a, top2_radius
# ----------------------------------------------------------------------------------


@given(delta=FINITE, d=FINITE)
@example(delta=MAX, d=5e-324)  # overflow: inf (the true value exceeds float64)
@example(delta=0.0, d=MAX)  # smallest radius: pi/1.8e308, a subnormal
def test_binary_radius_is_the_closed_form(delta, d):
    r = sr.binary_radius(delta, d)
    assert r > 0
    if d == 0:
        assert r == math.inf  # F = w (1 + e^delta) has no zeros
    else:
        # hypot and one division: a few ulp; subnormal results keep >= 51 bits here (>= 1.7e-308)
        check_float_of(r, mp_hypot_over(delta, d), rel=1e-15)
    assert sr.binary_radius(-delta, -d) == r  # sign symmetry is exact (negation is exact)


@given(a=wide_vectors(1, 8))
@example(a=[-1e308, 1e308])  # old code: max - min overflowed, pi/inf = 0
def test_rho_a_is_pi_over_the_spread(a):
    r = sr.rho_a(a)
    assert r > 0
    with mpmath.workdps(40):
        spread = mpmath.mpf(max(a)) - mpmath.mpf(min(a))
    if spread == 0:
        assert r == math.inf
    else:
        # pi/spread with the spread rounded once (or halved exactly when it overflows): 2 roundings,
        # plus subnormal rounding of results down to pi/3.6e308 = 8.7e-309 (spacing 5e-324: 6e-16)
        check_float_of(r, mpmath.pi / spread, rel=2e-15)
    assert sr.rho_a(a[::-1]) == r  # order does not matter: max and min are exact
    both = sr.rho_a(np.array([a, a[::-1]]), per_sample=True)
    assert list(both) == [r, r] and sr.rho_a(np.array([a, a[::-1]])) == r


@st.composite
def top2_cases(draw):
    n = draw(st.integers(2, 6))
    return draw(wide_vectors(n, n)), draw(wide_vectors(n, n)), draw(st.integers(0, n - 1))


@given(case=top2_cases())
@example(case=([-1e308, 1e308], [0.0, 1e10], 0))  # old code: refused a "delta" the caller never gave
def test_top2_radius_is_the_binary_formula_of_the_top_pair(case):
    z, a, y = case
    r = sr.top2_radius(z, a, y)
    assert r > 0
    c = max((k for k in range(len(z)) if k != y), key=lambda k: (z[k], -k))  # first argmax, k != y
    with mpmath.workdps(40):
        delta = mpmath.mpf(z[y]) - mpmath.mpf(z[c])
        d = mpmath.mpf(a[y]) - mpmath.mpf(a[c])
        if d == 0:
            assert r == math.inf
        else:
            # rounded delta and D (or their exact halves on overflow), hypot, division: 4 roundings
            check_float_of(r, mpmath.sqrt(delta**2 + mpmath.pi**2) / abs(d), rel=1e-15)


# ----------------------------------------------------------------------------------
# exact_radius / nearest_zeros / count_zeros / radius_lower_bound
# ----------------------------------------------------------------------------------


@given(z1=FINITE, z2=FINITE, a1=FINITE, a2=FINITE)
@example(z1=1e5, z2=0.0, a1=1.0, a2=0.0)  # the issue: 58 s
@example(z1=1e300, z2=0.0, a1=1.0, a2=0.0)  # the issue: minutes, then MemoryError
@example(z1=0.0, z2=0.0, a1=-1e308, a2=1e308)  # old code: MemoryError (spread overflows)
@example(z1=0.0, z2=0.0, a1=1e-310, a2=0.0)  # old code: nan (t = s/Delta_a overflows)
@example(z1=-1e308, z2=1e308, a1=0.0, a2=1e10)  # z gap overflows: 2e298
def test_exact_radius_binary_equals_the_closed_form(z1, z2, a1, a2):
    t0 = time.perf_counter()
    r = sr.exact_radius([z1, z2], [a1, a2])
    assert time.perf_counter() - t0 < 5.0  # sampled only while |s*| <= 1024 (~0.3 s at most)
    if a1 == a2:
        assert r == math.inf
        return
    with mpmath.workdps(40):
        truth = mp_hypot_over(mpmath.mpf(z1) - mpmath.mpf(z2), mpmath.mpf(a1) - mpmath.mpf(a2))
    # closed form: a few ulp; argument principle + 30-digit polish: the C2 tolerance 1e-12
    check_float_of(r, truth, rel=1e-12)


def _check_radius(z, a, r):
    """Shared assertions on an exact_radius result ``r``."""
    spread = float(np.ptp(np.asarray(a, dtype=np.float64) / 2)) * 2  # halves: no overflow
    if spread == 0:
        assert r == math.inf
        return
    lower = sr.radius_lower_bound(z, a)
    assert lower >= sr.rho_a(a) * (1 - 1e-15) and lower > 0  # hypot(L, pi) >= pi
    if r == math.inf:  # only where rho* is beyond float64: t = s/Delta_a with |s| <= 2e4 overflows
        assert lower == math.inf or spread < 1e-290
    else:
        assert r > 0
        # Theorem 4.6 and the certified bound (rounding 1e-12 in L, certification gap 1e-9)
        assert r >= lower * (1 - 1e-9)


@given(z=wide_vectors(3, 5), a=wide_vectors(3, 5))
@example(z=[1e5, 0.0, 0.0], a=[1.0, 0.0, 2.0])  # the gap with three slopes: refused up front
@example(z=[1e300, 0.0, 0.0], a=[1.0, 0.0, 2.0])
@example(z=[-1e308, 1e308, 0.0], a=[0.0, 1e10, 1.0])  # z - max z overflows
@example(z=[0.0, 0.0, 0.0], a=[-1e308, 0.0, 1e308])  # spread overflows
def test_exact_radius_small_k_any_finite_inputs(z, a):
    n = min(len(z), len(a))
    z, a = z[:n], a[:n]
    with sample_budget(2**18):
        try:
            r = sr.exact_radius(z, a)
        except ValueError as exc:  # the only refusal: a search too costly, with the bounds to use
            assert "too far out for the argument principle" in str(exc)
            assert "radius_lower_bound" in str(exc)
            event("refused")
            return
    event("inf" if r == math.inf else "finite")
    _check_radius(z, a, r)


@given(z=wide_vectors(2, 4, MODERATE), a=wide_vectors(2, 4, SLOPE))
def test_exact_radius_moderate_inputs_is_certified(z, a):
    """No refusal for ordinary inputs; the count is 0 just inside rho* and >= 2 (a conjugate
    pair; F > 0 on the real axis, so zeros are never real) just outside."""
    n = min(len(z), len(a))
    z, a = z[:n], a[:n]
    r = sr.exact_radius(z, a)
    _check_radius(z, a, r)
    if math.isfinite(r):
        # the nearest zero is exact (30-digit polish); a double zero at 1e-6 r is still resolved
        assert sr.count_zeros(z, a, r * (1 - 1e-6)) == 0
        above = sr.count_zeros(z, a, r * (1 + 1e-6))
        assert above >= 2 and above % 2 == 0
        assert sr.count_zeros(z, a, 2 * r) >= above  # monotone in the radius


@given(z=wide_vectors(2, 4, MODERATE), a=wide_vectors(2, 4, SLOPE))
def test_nearest_zeros_are_zeros_in_the_strip(z, a):
    n = min(len(z), len(a))
    z, a = np.array(z[:n]), np.array(a[:n])
    zeros = sr.nearest_zeros(z, a)
    if np.ptp(a) == 0:
        assert zeros.size == 0
        return
    assert zeros.size >= 2 and np.all(np.isfinite(zeros))
    # conjugate-closed (F is real on the real axis), equal moduli (within the documented 1e-8)
    np.testing.assert_allclose(np.sort_complex(zeros), np.sort_complex(zeros.conj()), rtol=1e-12, atol=0)
    mod = np.abs(zeros)
    assert mod.max() <= mod.min() * (1 + 1e-8)
    assert np.all(np.abs(zeros.imag) >= PI / np.ptp(a) * (1 - 1e-12))  # Theorem 4.6 strip
    with mpmath.workdps(40):
        for t0 in zeros:  # |F(t0)| / sum |terms| in 40 digits: complex128 rounding of t0 (~1e-16 |a t0|)
            t = mpmath.mpc(t0)
            terms = [mpmath.exp(mpmath.mpf(zk) + mpmath.mpf(ak) * t) for zk, ak in zip(z, a)]
            assert abs(mpmath.fsum(terms)) <= 1e-12 * mpmath.fsum(abs(x) for x in terms)


@given(z=wide_vectors(2, 4, MODERATE), a=wide_vectors(2, 4, SLOPE), k=st.integers(-900, 900))
def test_exact_radius_scale_covariance(z, a, k):
    """rho(z, c a) = rho(z, a)/|c|: F_{ca}(t) = F_a(c t).  For c = 2^k the whole computation is
    scaled exactly (s = Delta_a t and b are unchanged), so the results are equal to the bit;
    for c = -2^k the zeros are mirrored and polished from mirrored starts: 1e-9 (a near-double
    zero, e.g. 2 cosh t + 2, is determined by float64 inputs only to ~1e-8)."""
    n = min(len(z), len(a))
    z, a = np.array(z[:n]), np.array(a[:n])
    c = math.ldexp(1.0, k)
    r = sr.exact_radius(z, a)
    assert sr.exact_radius(z, c * a) == r / c
    assert sr.exact_radius(z, -c * a) == pytest.approx(r / c, rel=1e-9)


@given(n=st.lists(st.integers(-2**15, 2**15), min_size=2, max_size=4),
       a=wide_vectors(2, 4, SLOPE), shift=st.integers(-2**42, 2**42), perm=st.randoms(use_true_random=False))
def test_exact_radius_shift_and_permutation_invariance(n, a, shift, perm):
    """Adding c to every logit multiplies F by e^c: same zeros.  z = n/1024 and c = m/1024 keep
    z + c exact (< 2^43 in steps of 2^-10), so the results are equal to the bit.  A permutation
    changes summation orders only: 1e-9 (see the scale-covariance property)."""
    k = min(len(n), len(a))
    z, a = np.array(n[:k]) / 1024.0, np.array(a[:k])
    r = sr.exact_radius(z, a)
    assert sr.exact_radius(z + shift / 1024.0, a) == r
    idx = list(range(k))
    perm.shuffle(idx)
    assert sr.exact_radius(z[idx], a[idx]) == pytest.approx(r, rel=1e-9)


@given(z=wide_vectors(2, 5), a=wide_vectors(2, 5), radius=st.floats(1e-300, 1e300))
@example(z=[0.0, 1.0], a=[0.0, 1.0], radius=1e12)  # the issue: 64 TiB
@example(z=[0.0, 1.0, 2.0], a=[0.0, 1.0, 3.0], radius=1e12)  # three slopes: refused up front
def test_count_zeros_any_finite_inputs(z, a, radius):
    n = min(len(z), len(a))
    z, a = z[:n], a[:n]
    try:
        with sample_budget(2**16):
            count = sr.count_zeros(z, a, radius)
    except ValueError as exc:  # the only refusal: a circle too large to sample
        assert "count_zeros" in str(exc) and "above the limit" in str(exc)
        event("refused")
        return
    event("zero" if count == 0 else "counted")
    assert isinstance(count, int) and count >= 0 and count % 2 == 0  # conjugate pairs
    lower = sr.radius_lower_bound(z, a)
    if radius <= lower * (1 - 1e-9):  # certified zero-free disk
        assert count == 0


@given(m=st.lists(st.integers(0, 12), min_size=2, max_size=5), g=st.floats(0.05, 5.0),
       z=wide_vectors(2, 5, st.one_of(MODERATE, st.floats(-1e5, 1e5), FINITE)), offset=MODERATE)
@example(m=[1, 0], g=1.0, z=[1e5, 0.0], offset=0.0)  # old code: inf (weights underflowed), true 1e5
@example(m=[0, 0, 3, 2], g=1.0, z=[0.0, 0.0, 0.0, 37.0], offset=0.0)  # old code: nan (root u = 0), true 18.22
@example(m=[0, 3], g=1.0, z=[0.0, 4.316491811818342e16], offset=1.0)  # found: polish diverged from a float start
@example(m=[0, 1, 3], g=1.0, z=[0.0, 0.0, 1.526483967671755e19], offset=0.0)  # found: edge scaling rounded away
@example(m=[0, 2, 1], g=1.0, z=[0.0, 0.0, 8.98846567431158e307], offset=0.0)  # found: hull cross product overflowed
@example(m=[0, 1, 2], g=0.05, z=[0.0, 0.0, -8.98846567431158e306], offset=0.0)  # found: a far root's overflow -> inf
def test_polynomial_method_agrees_or_refuses(m, g, z, offset):
    n = min(len(m), len(z))
    a = offset + g * np.array(m[:n], dtype=np.float64)
    z = np.array(z[:n])
    assume(np.ptp(a) > 0)
    with sample_budget(2**18):
        try:
            ref = sr.exact_radius(z, a)
        except ValueError:
            ref = None  # too far out for the argument principle
    try:
        r = sr.exact_radius(z, a, method="polynomial")
    except ValueError as exc:  # logit gaps beyond float64, or no commensurate fit found
        assert "float64 range" in str(exc) or "not commensurate" in str(exc)
        event("refused")
        return
    assert r > 0
    event("compared" if ref is not None else "argument principle refused")
    if ref is not None:
        # both polished at 30 digits; 1e-9 covers near-double zeros (see scale covariance)
        assert r == pytest.approx(ref, rel=1e-9)
    else:
        assert r >= sr.radius_lower_bound(z, a) * (1 - 1e-9)


@given(value=st.sampled_from([math.nan, math.inf, -math.inf]), pos=st.integers(0, 2))
def test_non_finite_inputs_are_refused_with_a_message(value, pos):
    z, a = [0.5, -1.0, 2.0], [1.0, 0.0, -0.5]
    bad = list(z)
    bad[pos] = value
    for call in (lambda: sr.exact_radius(bad, a), lambda: sr.count_zeros(bad, a, 1.0),
                 lambda: sr.top2_radius(bad, a, 0), lambda: sr.radius_lower_bound(bad, a)):
        with pytest.raises(ValueError, match="z must be finite"):
            call()
    for call in (lambda: sr.rho_a(bad), lambda: sr.exact_radius(z, bad), lambda: sr.nearest_zeros(z, bad)):
        with pytest.raises(ValueError, match="a must be finite"):
            call()
    with pytest.raises(ValueError, match="delta must be finite"):
        sr.binary_radius(value, 1.0)
    with pytest.raises(ValueError, match="radius must be finite and > 0"):
        sr.count_zeros(z, a, value)
    with pytest.raises(ValueError, match="radius must be finite and > 0"):
        sr.count_zeros(z, a, -abs(pos) - 0.0)


# ----------------------------------------------------------------------------------
# radius_models.model_rho_a and the RadiusController
# ----------------------------------------------------------------------------------


@given(w=st.lists(st.integers(-1000, 1000), min_size=6, max_size=6),
       v=st.lists(st.integers(-1000, 1000), min_size=8, max_size=8),
       x=st.lists(st.integers(-1000, 1000), min_size=4, max_size=4), k=st.integers(-900, 900))
def test_model_rho_a_float64_linear_model_is_exact(w, v, x, k):
    """Linear(2, 3) in float64 with integer weights, direction and inputs: a = V x + u is exact,
    so model_rho_a equals pi/max(spread) to the bit, for the direction scaled by 2^k (exact)."""
    model = nn.Linear(2, 3).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor(w[:6], dtype=torch.float64).reshape(3, 2))
    xb = torch.tensor(x, dtype=torch.float64).reshape(2, 2)
    vw = torch.tensor(v[:6], dtype=torch.float64).reshape(3, 2)
    vb = torch.tensor(v[6:] + [0], dtype=torch.float64)
    c = math.ldexp(1.0, k)
    direction = {"weight": c * vw, "bias": c * vb}
    a = (xb @ (c * vw).T + c * vb).numpy()
    r = model_rho_a(model, xb, direction)
    assert r == sr.rho_a(a)  # both pi / max_x Delta_a(x), exact a
    assert r > 0 and (r == math.inf) == (np.ptp(a, axis=1).max() == 0)
    per = model_rho_a(model, xb, direction, per_sample=True)
    assert float(per.min()) == r
    unscaled = model_rho_a(model, xb, {"weight": vw, "bias": vb})
    assert r == unscaled / c  # scale covariance, exact for c = 2^k
    assert model_rho_a(model, xb, {"weight": -vw, "bias": -vb}) == unscaled  # sign symmetry


@given(k=st.integers(-60, 200), seed=st.integers(0, 2**16))
@example(k=127, seed=0)  # old code: the float32 spread overflowed, rho_a = 0.0
@example(k=200, seed=0)  # old code: a = inf - inf = nan, rho_a = inf ("no limit")
def test_model_rho_a_float32_any_scale(k, seed):
    """float32 model, direction scaled by 2^k: either a clear ValueError (a overflows float32),
    or rho_a(2^k v) = rho_a(v)/2^k: the JVP scales exactly; the spread is rounded once in
    float32 (or taken in float64 when it overflows): 1e-6."""
    torch.manual_seed(seed)
    model = nn.Linear(3, 4)
    x = torch.randn(5, 3)
    v = {name: torch.randn_like(p) for name, p in model.named_parameters()}
    base = model_rho_a(model, x, v)
    c = math.ldexp(1.0, k)
    try:
        r = model_rho_a(model, x, {name: t * c for name, t in v.items()})
    except ValueError as exc:
        assert "NaN/inf" in str(exc)
        event("refused")
        return
    event("finite")
    assert r > 0 and r == pytest.approx(base / c, rel=1e-6)


@given(lr=st.floats(1e-6, 1e4), r_target=st.floats(1e-4, 1e4), mode=st.sampled_from(["actual_step", "rho_set"]),
       opt=st.sampled_from(["sgd", "adam"]), seed=st.integers(0, 2**16))
@example(lr=1e-3, r_target=1e4, mode="rho_set", opt="sgd", seed=0)
def test_controller_step_obeys_r_target_rho_a(lr, r_target, mode, opt, seed):
    """Prop. 5.2 through the controller: the realized step (measured on the parameters) is at
    most r_target * rho_a (actual_step) or exactly that (rho_set).  float64 model: the
    measured norm differs from s ||p|| by rounding of theta + s p, ~1e-16 |theta| per entry."""
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    x = torch.randn(16, 3, dtype=torch.float64)
    y = torch.randint(0, 3, (16,))
    inner = (torch.optim.SGD(model.parameters(), lr=lr) if opt == "sgd"
             else torch.optim.Adam(model.parameters(), lr=lr))
    ctrl = RadiusController(inner, model, r_target, mode=mode, rho_inputs=x)

    def closure():
        inner.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        return loss

    before = torch.cat([p.detach().reshape(-1) for p in model.parameters()]).clone()
    ctrl.step(closure)
    after = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    h = ctrl.history[-1]
    tau = float(torch.linalg.vector_norm(after - before))
    slack = 1e-13 * float(torch.linalg.vector_norm(before) + torch.linalg.vector_norm(after)) + 1e-300
    assert torch.isfinite(after).all() and h["rho_a"] > 0
    assert tau == pytest.approx(h["tau"], rel=1e-9, abs=slack)
    if mode == "actual_step":
        assert tau <= r_target * h["rho_a"] * (1 + 1e-12) + slack
        assert h["r"] <= r_target * (1 + 1e-12)
    else:
        assert tau == pytest.approx(r_target * h["rho_a"], rel=1e-9, abs=slack)
