r"""Ghosts of softmax: the cross-entropy step-size radius, computed exactly.

Reference: P. Sao, "Ghosts of Softmax: Complex Singularities That Limit Safe Step
Sizes in Cross-Entropy", arXiv:2603.13552 (v1).  Theorem, equation and appendix
numbers below follow the paper (they are identical in v1 and the later build).

Setting
-------
Logits ``z = f_theta(x)`` (``n`` classes), per-sample loss ``L = -z_y + log sum_k exp(z_k)``.
A step ``theta(tau) = theta_0 + tau v`` with a *unit* direction ``v`` and distance
``tau >= 0``; for an optimizer proposal ``p``: ``v = p/||p||``, ``tau = ||p||``.

* Directional logit derivatives (one JVP): ``a_k = dz_k/dtau|_0 = grad z_k . v``.
* Logit linearization ``z_k(t) ~ z_k + a_k t`` gives the line loss
  ``l(t) = -z_y - a_y t + log F(t)`` with the *partition function along the step*

      F(t) = sum_k exp(z_k + a_k t)          (w_k = exp(z_k) > 0).

  ``F > 0`` on the real axis but has complex zeros (the "ghosts"); ``log F`` has a
  logarithmic branch point at each of them.
* ``rho*`` = Taylor radius of ``l`` at 0 = ``min{|t| : F(t) = 0}`` (Proposition 4.2).
  It does not depend on the label ``y``.
* Binary case (Theorem 4.3): with ``delta = z_1 - z_2`` and ``D = a_1 - a_2``
  the zeros are ``t_k = (-delta + i pi (2k+1))/D``; ``rho* = sqrt(delta^2 + pi^2)/|D|``.
* Multiclass lower bound (Lemma 4.5 + Theorem 4.6): with the spread
  ``Delta_a = max_k a_k - min_k a_k`` the whole strip ``|Im t| < pi/Delta_a`` is
  zero-free, hence ``rho* >= rho_a = pi/Delta_a``.
* Batch / data-set aggregation (Definition 4.7, Eq. 15): ``rho_a(v) = pi / max_x
  Delta_a(x; v)`` ``<=`` ``min_x rho*(x; v)``; the radius of the *mean* loss over a set
  equals ``min_x rho*(x)`` (log branch points at distinct points cannot cancel).
* Eq. 13 (per-sample top-2 reduction) as printed: ``tau_ghost = (delta + i pi)/Delta_{y,c}``.
  The real part has the wrong sign; the zero is at ``(-delta +- i pi)/Delta_{y,c}``
  (:func:`top2_ghost`).  For ``n > 2`` the top-2 value is *not* a bound on ``rho*``.

Functions
---------
=============================  ===============================================
:func:`binary_radius`          Theorem 4.3 closed form
:func:`binary_zeros`           Theorem 4.3 zero locations (conjugate pair)
:func:`logit_spread`           ``Delta_a`` (Theorem 4.6)
:func:`rho_a`                  ``pi/Delta_a``; 2-D input -> batch min (Def. 4.7)
:func:`count_zeros`            argument principle: #zeros of F in ``|t| < R``
:func:`nearest_zeros`          nearest zeros of F (Prop. 4.2), certified
:func:`exact_radius`           ``rho*`` (Prop. 4.2); 2-D input -> batch min
:func:`radius_lower_bound`     certified ``hypot(L, pi)/Delta_a <= rho*`` from the logit gaps
:func:`commensurate_step`      detect ``a_k - min a = m_k g`` with integers ``m_k``
:func:`polynomial_zeros`       commensurate-slope polynomial method (cross-check)
:func:`top2_ghost`             Eq. 13 (corrected sign, or the paper's sign)
:func:`top2_radius`            Eq. 13 modulus ``sqrt(delta^2+pi^2)/|Delta_{y,c}|``
:func:`logpartition_taylor`    exact Taylor coefficients of ``log F`` (mpmath)
:func:`line_loss_taylor`       Taylor coefficients of the (mean) CE line loss
:func:`taylor_coefficients`    generic analytic function, ``mpmath.taylor``
:func:`taylor_coefficients_fft`  generic analytic function, Cauchy integral + FFT
:func:`radius_root_test`       Cauchy-Hadamard root test (Thm 2.1)
:func:`radius_root_test_corrected`  root test on ``n c_n`` (log-singularity bias removed)
:func:`radius_envelope_fit`    line fit to the local maxima of ``log|n c_n|``
:func:`kl_forward`, :func:`kl_reverse`, :func:`kl_bregman`   Appendix 4 (Eq. 26)
:func:`linearization_epsilon`  the ``epsilon`` of Proposition A1.1 (flawed, see docs)
:func:`logistic_hessian_scale` Appendix 5: ``1/(sigma(1-sigma))``
=============================  ===============================================

All arithmetic is float64, and mpmath where exactness matters (zero polishing,
Taylor coefficients).  Inputs are validated; invalid arguments raise ``ValueError``
naming the argument.

Cost bounds
-----------
The argument principle samples circles ``|s| = r`` (``s = Delta_a t``) at
``M(r) = 2^ceil(log2(max(256, 8 r)))`` points of all ``K`` terms, and the nearest zero
moves out with the logit gaps (``|s*| ~ logit gap / slope gap``).  Every count and
search is capped at ``2^20`` samples per circle and ``2^22`` per call (terms evaluated in
chunks of ``2^18``): at most ``~0.1-0.2 us x K x 2^22`` of time and ``O(2^20)`` samples
of memory.  Beyond the caps, slopes with two distinct values use the closed form of
Theorem 4.3 (exact at any size); anything else raises ``ValueError`` before sampling
(what is too large, the estimated cost, and the certified lower bounds
:func:`radius_lower_bound` and :func:`rho_a` to use instead).  The polynomial method is
capped by its degree (``max_degree``) and refuses weights that underflow float64.  A
radius beyond the float64 range is ``inf`` (:func:`binary_radius`, :func:`top2_radius`,
:func:`exact_radius`); a spread ``max a - min a`` that overflows is handled by halving
``a`` (``F_a(t) = F_{a/2}(2t)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import mpmath
import numpy as np

__all__ = [
    "PI",
    "binary_radius",
    "binary_zeros",
    "logit_spread",
    "rho_a",
    "count_zeros",
    "nearest_zeros",
    "exact_radius",
    "radius_lower_bound",
    "commensurate_step",
    "polynomial_zeros",
    "top2_ghost",
    "top2_radius",
    "logpartition_taylor",
    "line_loss_taylor",
    "taylor_coefficients",
    "taylor_coefficients_fft",
    "radius_root_test",
    "radius_root_test_corrected",
    "radius_envelope_fit",
    "kl_forward",
    "kl_reverse",
    "kl_bregman",
    "linearization_epsilon",
    "logistic_hessian_scale",
]

PI = math.pi

# ----------------------------------------------------------------------------------
# validation helpers
# ----------------------------------------------------------------------------------


def _to_numpy(x: Any) -> Any:
    if hasattr(x, "detach") and hasattr(x, "cpu"):  # torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return x


def _real_array(x: Any, name: str, ndims: tuple[int, ...] = (1,)) -> np.ndarray:
    x = _to_numpy(x)
    if np.iscomplexobj(x):
        raise ValueError(f"{name} must be real, got a complex array")
    try:
        arr = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be an array of real numbers ({exc})") from None
    if arr.ndim not in ndims:
        want = " or ".join(f"{d}-D" for d in ndims)
        raise ValueError(f"{name} must be {want}, got shape {arr.shape}")
    if arr.size == 0 or (arr.ndim >= 1 and arr.shape[-1] == 0):
        raise ValueError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite (found NaN or inf)")
    return arr


def _za_pair(z: Any, a: Any, ndims: tuple[int, ...] = (1,)) -> tuple[np.ndarray, np.ndarray]:
    z = _real_array(z, "z", ndims)
    a = _real_array(a, "a", ndims)
    if z.shape != a.shape:
        raise ValueError(f"z and a must have the same shape, got {z.shape} and {a.shape}")
    return z, a


def _positive_finite(x: Any, name: str) -> float:
    try:
        x = float(x)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a real number, got {x!r}") from None
    if not (math.isfinite(x) and x > 0):
        raise ValueError(f"{name} must be finite and > 0, got {x!r}")
    return x


def _order(order: Any) -> int:
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order < 1:
        raise ValueError(f"order must be an integer >= 1, got {order!r}")
    return int(order)


# ----------------------------------------------------------------------------------
# closed forms: Theorem 4.3, Theorem 4.6, Definition 4.7
# ----------------------------------------------------------------------------------


def binary_radius(delta: Any, d: Any) -> Any:
    r"""Exact binary radius, Theorem 4.3: ``rho* = sqrt(delta^2 + pi^2)/|d|``.

    Args:
        delta: logit gap ``z_1 - z_2`` (scalar or array).
        d: directional slope difference ``a_1 - a_2`` (broadcast with ``delta``).
            ``d = 0`` means ``F`` has no zeros: the radius is ``inf``.  A radius beyond the
            float64 range (``> 1.8e308``, e.g. a subnormal ``d``) is ``inf`` as well.

    Returns:
        float for scalar input, else an ndarray.
    """
    delta_arr = _real_array(delta, "delta", (0, 1, 2, 3))
    d_arr = _real_array(d, "d", (0, 1, 2, 3))
    with np.errstate(divide="ignore", over="ignore"):
        out = np.hypot(delta_arr, PI) / np.abs(d_arr)
    return float(out) if out.ndim == 0 else out


def binary_zeros(delta: Any, d: Any, k: int = 0) -> np.ndarray:
    r"""Zeros of ``F(t) = w_c e^{a_c t} (1 + e^{delta + d t})`` (Theorem 4.3, own derivation).

    ``delta + d t = i pi (2k+1)`` gives ``t = (-delta +- i pi (2k+1))/d``; ``k = 0`` is the
    nearest conjugate pair.  Returns shape ``(..., 2)``, sorted by imaginary part.
    Components beyond the float64 range (e.g. a subnormal ``d``) are ``inf``.
    """
    delta_arr = _real_array(delta, "delta", (0, 1, 2))
    d_arr = _real_array(d, "d", (0, 1, 2))
    if np.any(d_arr == 0):
        raise ValueError("d must be nonzero (d = 0 means F has no zeros)")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 0:
        raise ValueError(f"k must be an integer >= 0, got {k!r}")
    im = PI * (2 * k + 1) / np.abs(d_arr)
    re = -delta_arr / d_arr
    return np.stack([re - 1j * im, re + 1j * im], axis=-1)


def logit_spread(a: Any) -> Any:
    """``Delta_a = max_k a_k - min_k a_k`` along the last axis (Theorem 4.6).

    ``inf`` where the difference exceeds the float64 range (``> 1.8e308``)."""
    a = _real_array(a, "a", (1, 2))
    with np.errstate(over="ignore"):
        out = a.max(axis=-1) - a.min(axis=-1)
    return float(out) if out.ndim == 0 else out


def rho_a(a: Any, *, per_sample: bool = False) -> Any:
    r"""Closed-form lower bound ``rho_a = pi/Delta_a`` (Theorem 4.6, Definition 4.7).

    Args:
        a: directional logit derivatives, 1-D ``[classes]`` or 2-D ``[samples, classes]``.
        per_sample: for 2-D input, return the per-sample ``pi/Delta_a(x)`` instead of the
            batch radius ``pi / max_x Delta_a(x)`` (= the min over samples).

    A zero spread (``F`` has no zeros) gives ``inf``.  A spread beyond the float64 range
    is evaluated as ``(pi/2) / (max a/2 - min a/2)`` (positive, never 0).
    """
    spread = np.asarray(logit_spread(a), dtype=np.float64)
    with np.errstate(divide="ignore"):
        per = PI / spread
    if np.any(np.isinf(spread)):
        arr = _real_array(a, "a", (1, 2))
        half = arr.max(axis=-1) / 2 - arr.min(axis=-1) / 2
        per = np.where(np.isinf(spread), (PI / 2) / half, per)
    if per.ndim == 0:
        return float(per)
    if per_sample:
        return per
    return float(per.min())


# ----------------------------------------------------------------------------------
# multiclass zeros: argument principle + bisection + Newton + mpmath polish
# ----------------------------------------------------------------------------------


# Cost limits of the argument principle.  A counting circle |s| = r (s = Delta_a t) is
# sampled at M(r) = 2^ceil(log2(max(256, 8 r))) points of all K terms (plus a local
# refinement near zeros), so the work grows linearly with r, and r is set by the logit
# gaps (a zero needs two terms of comparable size: |Re s| ~ gap / slope gap).  Every
# search is bounded by these limits and refuses, with a ValueError, anything larger.
_MAX_CIRCLE_SAMPLES = 2**20   # samples on one circle, refinement included (|s| <= 2^17)
_MAX_TOTAL_SAMPLES = 2**22    # samples in one count or nearest-zero search (~0.1 us/term)
_SEARCH_CIRCLES = 24          # circles of size <= M(1.5 |s*|) in a nearest-zero search
_SKIP_AHEAD_FROM = 1024.0     # start the search at the certified zero-free radius above this
_EVAL_CHUNK = 2**18           # complex terms evaluated at once (a few 4 MiB arrays)
_CLOSED_FORM_FROM = 1024.0    # two-slope problems with |s*| above this use Theorem 4.3
_LOG_TINY = math.log(np.finfo(np.float64).tiny)  # below: exp() is subnormal or 0


class _TooCostly(Exception):
    """The argument principle would exceed ``_MAX_CIRCLE_SAMPLES`` / ``_MAX_TOTAL_SAMPLES``."""

    def __init__(self, radius: float, samples: float, limit: int, what: str):
        super().__init__(what)
        self.radius, self.samples, self.limit, self.what = radius, samples, limit, what


def _circle_size(radius: float) -> float:
    """``M(r) = 2^ceil(log2(max(256, 8 r)))`` samples for the circle ``|s| = r`` (inf if huge)."""
    x = max(256.0, 8.0 * radius)
    if not x <= 2.0**60:  # also inf / nan
        return math.inf
    return float(2 ** math.ceil(math.log2(x)))


def _finite_spread(a: np.ndarray) -> tuple[np.ndarray, float]:
    """``(a', f)`` with ``F_a(t) = F_{a'}(t/f)``: ``a' = a`` (``f = 1``) unless
    ``max a - min a`` overflows, then ``a' = a/2`` (``f = 1/2``; zeros ``t = f t'``)."""
    with np.errstate(over="ignore"):
        spread = a.max() - a.min()
    if np.isfinite(spread):
        return a, 1.0
    return a * 0.5, 0.5


class _Partition:
    """``F`` rescaled to ``s = Delta_a t`` with slopes ``b_k`` in ``[-1/2, 1/2]``.

    ``F(t) = exp(max z + c t) * G(Delta_a t)``, ``G(s) = sum_k exp(lw_k + b_k s)``,
    ``lw = z - max z``, ``c = (max a + min a)/2``.  ``G`` has the zeros of ``F`` scaled by
    ``Delta_a`` and is zero-free in the strip ``|Im s| < pi``.  ``lw`` is clamped at
    ``-max float`` where ``z - max z`` overflows (``e^{lw} = 0`` in float64 either way).
    ``Delta_a`` must be finite (see :func:`_finite_spread`).
    """

    def __init__(self, z: np.ndarray, a: np.ndarray):
        self.z = z
        self.a = a
        self.scale = float(a.max() - a.min())
        with np.errstate(over="ignore"):
            centre = 0.5 * (a.max() + a.min())
        if not np.isfinite(centre):  # max + min overflows (the spread does not)
            centre = 0.5 * a.max() + 0.5 * a.min()
        with np.errstate(over="ignore"):
            self.lw = np.maximum(z - z.max(), -np.finfo(np.float64).max)
        self.b = (a - centre) / self.scale if self.scale > 0 else np.zeros_like(a)
        self.samples_left = _MAX_TOTAL_SAMPLES

    def charge(self, samples: int, radius: float) -> None:
        """Count ``samples`` circle points against the per-search budget."""
        if samples > self.samples_left:
            raise _TooCostly(radius, samples, _MAX_TOTAL_SAMPLES, "samples per search")
        self.samples_left -= samples

    def eval(self, s: np.ndarray, derivative: bool = False):
        """``G(s) e^{-m(s)}`` (and ``G'(s) e^{-m(s)}``) plus ``m(s)``, overflow-free.

        Evaluated in chunks of at most ``_EVAL_CHUNK`` terms (rows are independent, so the
        values do not depend on the chunking)."""
        s = np.asarray(s, dtype=np.complex128)
        rows = max(1, _EVAL_CHUNK // self.lw.size)
        if s.size <= rows:
            return self._eval(s, derivative)
        parts = [self._eval(s[i:i + rows], derivative) for i in range(0, s.size, rows)]
        return tuple(np.concatenate(p) for p in zip(*parts))

    def _eval(self, s: np.ndarray, derivative: bool):
        e = self.lw[None, :] + s[:, None] * self.b[None, :]
        m = e.real.max(axis=1)
        terms = np.exp(e - m[:, None])
        g = terms.sum(axis=1)
        if derivative:
            return g, terms @ self.b, m
        return g, m

    def log_abs(self, s: np.ndarray) -> np.ndarray:
        g, m = self.eval(s)
        with np.errstate(divide="ignore"):
            return np.log(np.abs(g)) + m


def _circle_samples(part: _Partition, radius: float, max_refine: int = 60):
    """Samples of ``G`` on ``|s| = radius`` fine enough that every phase step is < pi/4.

    Base grid: each exponential rotates by at most ``radius/2`` per radian, so
    ``M >= 8 radius`` points keep a single term's phase step below pi/8; segments
    where ``G`` still turns by more than pi/4 (a zero close to the circle) are bisected
    locally.  Returns ``(theta, g, m, dphi)`` with ``dphi[j]`` the phase change from
    sample ``j`` to ``j+1`` (cyclic).

    Raises ``_TooCostly`` before evaluating more than ``_MAX_CIRCLE_SAMPLES`` points on
    this circle or more than the search's remaining ``_MAX_TOTAL_SAMPLES`` budget.
    """
    m0 = _circle_size(radius)
    if m0 > _MAX_CIRCLE_SAMPLES:
        raise _TooCostly(radius, m0, _MAX_CIRCLE_SAMPLES, "samples per circle")
    m0 = int(m0)
    part.charge(m0, radius)
    theta = np.linspace(0.0, 2 * PI, m0, endpoint=False)
    g, m = part.eval(radius * np.exp(1j * theta))
    for _ in range(max_refine):
        if np.any(g == 0):
            raise _OnContour()
        dphi = np.angle(np.roll(g, -1) / g)
        bad = np.flatnonzero(np.abs(dphi) > PI / 4)
        if bad.size == 0:
            return theta, g, m, dphi
        if theta.size + bad.size > _MAX_CIRCLE_SAMPLES:
            raise _TooCostly(radius, theta.size + bad.size, _MAX_CIRCLE_SAMPLES, "samples per circle")
        part.charge(bad.size, radius)
        nxt = np.where(bad + 1 < theta.size, theta[(bad + 1) % theta.size], 2 * PI)
        mid = 0.5 * (theta[bad] + nxt)
        if np.min(nxt - theta[bad]) < 1e-15:
            raise _OnContour()
        gm, mm = part.eval(radius * np.exp(1j * mid))
        theta = np.insert(theta, bad + 1, mid)
        g = np.insert(g, bad + 1, gm)
        m = np.insert(m, bad + 1, mm)
    raise _OnContour()


class _OnContour(Exception):
    """A zero lies (numerically) on the counting circle."""


def _winding(part: _Partition, radius: float) -> int:
    """Number of zeros of ``G`` in ``|s| < radius`` (argument principle)."""
    r = radius
    for _ in range(8):
        try:
            _, _, _, dphi = _circle_samples(part, r)
            return int(round(dphi.sum() / (2 * PI)))
        except _OnContour:
            r *= 1 + 1e-12  # step off a zero sitting on the circle
    raise RuntimeError(f"argument principle failed near radius {radius!r}")


def _newton(part: _Partition, s0: complex, iters: int = 60) -> complex | None:
    s = complex(s0)
    for _ in range(iters):
        g, dg, _ = part.eval(np.array([s]), derivative=True)
        if dg[0] == 0:
            return None
        step = g[0] / dg[0]
        s -= step
        if not np.isfinite(s):
            return None
        if abs(step) <= 1e-15 * max(1.0, abs(s)):
            break
    g, m = part.eval(np.array([s]))
    mag = np.exp(part.lw[None, :] + (s * part.b)[None].real - m).sum()  # sum |terms| (scaled)
    if abs(g[0]) > 1e-9 * mag:
        return None
    return s


def _mp_polish(part: _Partition, t0: complex, dps: int) -> complex:
    """Polish a zero of ``F`` in original units with mpmath at ``dps`` digits.

    Schroeder's modified Newton ``t -= F F' / (F'^2 - F F'')`` converges quadratically for
    simple *and* multiple zeros (e.g. the double zero of ``2 cosh t + 2`` at ``i pi``).
    """
    return _mp_polish_checked(part, t0, dps)[0]


def _mp_polish_checked(part: _Partition, t0: complex, dps: int) -> tuple[complex, bool]:
    """:func:`_mp_polish` plus whether the last step was below ``10^-dps |t|`` (converged).

    Works at ``dps + 10`` digits, plus ``log10(max|a| |t0|) - 10`` more when the exponents
    ``a_k t`` exceed ``1e10`` (their phase must still be resolved to ``10^-dps``)."""
    scale = float(np.max(np.abs(part.a))) * abs(t0)
    extra = max(0, math.ceil(math.log10(scale)) - 10) if math.isfinite(scale) and scale > 1e10 else 0
    converged = False
    with mpmath.workdps(dps + 10 + extra):
        lw = [mpmath.mpf(float(x)) for x in part.lw]
        aa = [mpmath.mpf(float(x)) for x in part.a]
        t = mpmath.mpc(t0)
        tol = mpmath.mpf(10) ** (-dps)
        for _ in range(100):
            e = [mpmath.exp(l + ak * t) for l, ak in zip(lw, aa)]
            f0 = mpmath.fsum(e)
            if f0 == 0:
                converged = True
                break
            f1 = mpmath.fsum(ak * ek for ak, ek in zip(aa, e))
            f2 = mpmath.fsum(ak * ak * ek for ak, ek in zip(aa, e))
            den = f1 * f1 - f0 * f2
            if den == 0:
                break
            step = f0 * f1 / den
            t -= step
            if abs(step) <= tol * max(1, abs(t)):
                converged = True
                break
        return complex(t), converged


def _certify(part: _Partition, smin: float) -> bool:
    """True if ``G`` has no zero in ``|s| < smin (1 - gap)``.

    ``gap = 1e-9`` first; a multiple zero makes ``|G|`` on such a close circle fall
    below rounding (``|G| ~ gap^k``), so the gap is widened to 1e-7 and 1e-5 if the
    phase cannot be resolved.  The returned radius is therefore certified to within
    ``gap`` (relative) while the zero itself is exact.
    """
    for gap in (1e-9, 1e-7, 1e-5):
        try:
            return _winding(part, smin * (1 - gap)) == 0
        except RuntimeError:
            continue
    raise RuntimeError(f"cannot certify the nearest zero at |s| = {smin!r}")


def _nearest_normalized(part: _Partition, polish: bool, dps: int, start: float = PI) -> np.ndarray:
    """Certified nearest zeros of ``F`` (original units), sorted by imaginary part.

    The search starts at ``|s| = start (1 - 1e-9)``, a radius known to be zero-free
    (``pi``: Theorem 4.6; or the certified :func:`_zero_free_radius`), where the count is
    checked to be 0.  Zeros whose ``t = s/Delta_a`` overflows float64 are returned
    unpolished (non-finite).
    """
    r_lo = start * (1 - 1e-9)
    if _winding(part, r_lo) != 0:  # would contradict Theorem 4.6 / the zero-free bound
        raise RuntimeError(f"zero found inside the zero-free disk |s| < {r_lo!r}: Theorem 4.6 check failed numerically")
    r_hi = 1.5 * r_lo
    while _winding(part, r_hi) == 0:
        r_lo, r_hi = r_hi, 1.5 * r_hi
        if r_hi > 1e9:
            raise RuntimeError("no zero of F found within |Delta_a t| < 1e9")
    rel = 1e-3
    for _attempt in range(6):
        while r_hi / r_lo - 1 > rel:
            mid = math.sqrt(r_lo * r_hi)
            if _winding(part, mid) == 0:
                r_lo = mid
            else:
                r_hi = mid
        theta, g, m, _ = _circle_samples(part, r_hi)
        with np.errstate(divide="ignore"):
            la = np.log(np.abs(g)) + m
        is_min = (la <= np.roll(la, 1)) & (la <= np.roll(la, -1))
        starts = np.flatnonzero(is_min)
        starts = starts[np.argsort(la[starts])][:16]
        found: list[complex] = []
        for j in starts:
            s = _newton(part, r_hi * np.exp(1j * theta[j]))
            if s is None or abs(s) > r_hi * (1 + 1e-6) or abs(s) < r_lo * (1 - 1e-6):
                continue
            for cand in (s, s.conjugate()):  # F is real on the real axis
                if all(abs(cand - f) > 1e-9 * r_hi for f in found):
                    found.append(cand)
        if found:
            smin = min(abs(s) for s in found)
            # certificate: no zero strictly inside the circle just below the found modulus
            if _certify(part, smin):
                near = [s for s in found if abs(s) <= smin * (1 + 1e-8)]
                with np.errstate(over="ignore"):  # a tiny Delta_a: |t| beyond float64
                    t = np.array([s / part.scale for s in near], dtype=np.complex128)
                if polish and np.all(np.isfinite(t)):
                    t = np.array([_mp_polish(part, complex(x), dps) for x in t])
                return t[np.argsort(t.imag)]
            r_hi = smin * (1 - 1e-9)
        rel /= 100
    raise RuntimeError("nearest zero of F could not be certified")


def _zero_free_real_part(part: _Partition) -> float:
    r"""``L >= 0`` such that ``G`` has no zero with ``|Re s| < L`` (from the logit gaps).

    Merge equal slopes (``lw_j = log sum_{b_k = b_j} e^{lw_k}``), so the slopes are distinct,
    and let ``phi(x) = max_k L_k(x) - log sum_{k != top} e^{L_k(x)}`` with
    ``L_k(x) = lw_k + b_k x``.  ``phi(x) > 0`` means the largest term beats the sum of the
    others on the whole line ``Re s = x``, so ``|G| > 0`` there.  ``phi`` is continuous (at a
    change of the top term both parts agree) and 1-Lipschitz (the slopes of both parts lie
    in ``[min b, max b]``, an interval of length 1), so ``phi(x) = v > 0`` clears
    ``(x - v, x + v)``: march outwards from 0 in both directions by ``v`` minus a rounding
    slack ``1e-12 (max|lw| + |x| + 1)`` (at most 64 steps; stopping early only weakens ``L``).
    Weights clamped at ``e^{-max float}`` (:class:`_Partition`) are only overestimated,
    which can only lower ``phi``.  Returns ``inf`` if ``G`` has a single distinct slope.
    """
    bu, inv = np.unique(part.b, return_inverse=True)
    if bu.size < 2:
        return math.inf
    lw = np.full(bu.size, -np.inf)
    np.logaddexp.at(lw, inv, part.lw)
    base = float(np.max(np.abs(lw)))

    def phi(x: float) -> float:
        with np.errstate(over="ignore"):  # overflow to -inf / +inf: a negligible / dominant term
            e = lw + bu * x
            j = int(np.argmax(e))
            return float(e[j] - np.logaddexp.reduce(np.delete(e, j)))

    reach = []
    for sign in (1.0, -1.0):
        x = 0.0
        for _ in range(64):
            step = phi(sign * x) - 1e-12 * (base + x + 1.0)
            if not step > 0:
                break
            x += step
            if not math.isfinite(x) or step < 1e-3 * (x + 1.0):
                break
        reach.append(x)
    return min(reach)


def _zero_free_radius(part: _Partition) -> float:
    """``|s*| >= hypot(L, pi)``: every zero has ``|Re s| >= L`` and ``|Im s| >= pi`` (Thm 4.6)."""
    return math.hypot(_zero_free_real_part(part), PI)


def _two_slope(z: np.ndarray, a: np.ndarray):
    r"""Theorem 4.3 when ``a`` takes exactly two distinct values ``a_lo < a_hi``, else ``None``.

    ``F(t) = W_lo e^{a_lo t} (1 + e^{delta + D t})`` with ``W`` the summed weights of each
    slope, ``delta = log W_hi - log W_lo``, ``D = a_hi - a_lo > 0``: zeros
    ``t = (-delta + i pi (2k+1))/D``, ``rho* = sqrt(delta^2 + pi^2)/D``, ``|s*| = D rho*``.
    ``log W_g = m_g + log sum_{k in g} e^{z_k - m_g}`` (``m_g`` = the group's max), so only
    logit differences enter (``delta = m_hi - m_lo`` exactly for one term per slope).
    Returns ``(delta, D, s_star, rho, re, im)`` (nearest pair ``re +- i im``).  If ``delta``
    or ``D`` overflows, the halves ``delta/2, D/2`` are used (same quotients); ``rho``,
    ``re``, ``im`` are ``inf`` only when they exceed the float64 range.
    """
    u, inv = np.unique(a, return_inverse=True)
    if u.size != 2:
        return None
    m = np.array([z[inv == g].max() for g in (0, 1)])
    with np.errstate(over="ignore"):  # differences beyond float64: exp(-inf) = 0, negligible
        ls = np.array([np.log(np.exp(z[inv == g] - m[g]).sum()) for g in (0, 1)])  # in [0, log K]
        delta, d = (m[1] - m[0]) + (ls[1] - ls[0]), u[1] - u[0]
        if np.isfinite(delta) and np.isfinite(d):
            s_star = np.hypot(delta, PI)
            rho, re, im = s_star / d, -delta / d, PI / d  # rho as in binary_radius
        else:
            dh, d2 = (m[1] / 2 - m[0] / 2) + (ls[1] - ls[0]) / 2, u[1] / 2 - u[0] / 2
            s_star = np.hypot(delta, PI)  # inf: beyond any sampling budget
            rho, re, im = np.hypot(dh, PI / 2) / d2, -dh / d2, (PI / 2) / d2
    return float(delta), float(d), float(s_star), float(rho), float(re), float(im)


def _two_slope_count(z: np.ndarray, a: np.ndarray, radius: float) -> int:
    r"""#zeros of ``F`` in ``|t| < radius`` for two distinct slopes (Theorem 4.3), in mpmath.

    ``|t_k| < R  <=>  delta^2 + pi^2 n^2 < R^2 D^2`` for odd ``n = 2k+1`` (``k`` in Z), so with
    ``Y = sqrt(R^2 D^2 - delta^2)/pi`` the count is ``2 max(0, ceil((Y - 1)/2))``.  Evaluated
    from the float64 inputs with ``log2(Y) + 80`` bits, so it is exact unless a zero lies on
    the circle to within ~``2^-80`` (relative).
    """
    u, inv = np.unique(a, return_inverse=True)
    with mpmath.workprec(80):
        mag = mpmath.log(mpmath.mpf(float(radius)) * (mpmath.mpf(float(u[1])) - mpmath.mpf(float(u[0]))) + 2, 2)
    with mpmath.workprec(80 + max(0, int(mag)) + 64):
        lw = []
        for j in (0, 1):
            lw.append(mpmath.log(mpmath.fsum(mpmath.exp(mpmath.mpf(float(x))) for x in z[inv == j])))
        delta = lw[1] - lw[0]
        rd = mpmath.mpf(float(radius)) * (mpmath.mpf(float(u[1])) - mpmath.mpf(float(u[0])))
        x2 = rd * rd - delta * delta
        if x2 <= 0:
            return 0
        y = mpmath.sqrt(x2) / mpmath.pi
        return 2 * max(0, int(mpmath.ceil((y - 1) / 2)))


def _too_far(caller: str, part: _Partition, f: float, lower_s: float, detail: str) -> str:
    """The ValueError message of a refused search: what, the cost, and what to do instead."""
    to_t = f / part.scale  # t = f s / Delta_a'
    with np.errstate(over="ignore"):
        lower_t, rho_a_t = float(np.float64(lower_s) * to_t), float(np.float64(PI) * to_t)
    return (
        f"{caller}: the zeros of F are too far out for the argument principle ({detail}; "
        f"{part.lw.size} terms). Certified instead: no zero has |Delta_a t| < {lower_s:.6g}, i.e. "
        f"rho* >= {lower_t:.6g} (radius_lower_bound(z, a)), and rho_a = pi/Delta_a = {rho_a_t:.6g}. "
        "Use these lower bounds, or reduce the logit gaps (the zeros sit near |Delta_a t| ~ "
        "logit gap / slope gap); slopes a with two distinct values have the exact closed form "
        "of Theorem 4.3 at any size."
    )


def count_zeros(z: Any, a: Any, radius: float) -> int:
    r"""Number of zeros (with multiplicity) of ``F(t) = sum_k e^{z_k + a_k t}`` in ``|t| < radius``.

    Argument principle: winding number of ``F`` along the circle, sampled adaptively so
    every phase increment is below pi/4 (Check C4).  In ``s = Delta_a t`` the circle
    ``|s| = r`` needs ``M(r) = 2^ceil(log2(max(256, 8 r)))`` samples of the ``K`` terms, so
    the cost is ``~ 8 K Delta_a radius``; it is bounded by ``2^20`` samples per circle and
    ``2^22`` per call (memory: chunks of ``2^18`` terms).  Beyond ``|s| = 2^17``:

    * slopes with two distinct values: the closed form of Theorem 4.3,
      ``#{n odd : delta^2 + pi^2 n^2 < R^2 D^2}`` (exact, any radius);
    * a radius inside the certified zero-free disk ``|s| < hypot(L, pi)`` (see
      :func:`radius_lower_bound`): 0;
    * otherwise ``ValueError`` (before any sampling) with the estimated cost.

    ``Delta_a`` overflowing float64 is handled by halving ``a`` (``F_a(t) = F_{a/2}(2t)``).
    """
    z, a = _za_pair(z, a)
    radius = _positive_finite(radius, "radius")
    a, f = _finite_spread(a)
    part = _Partition(z, a)
    if part.scale == 0:
        return 0
    with np.errstate(over="ignore"):
        r = float(np.float64(radius) / f * part.scale)
    m = _circle_size(r)
    if m <= _MAX_CIRCLE_SAMPLES:
        try:
            return _winding(part, r)
        except _TooCostly as exc:  # refinement near a zero on the circle ran out of budget
            detail = (f"the circle |Delta_a t| = {r:.6g} needs {exc.samples:.3g} samples, above the "
                      f"limit of {exc.limit} {exc.what}")
            raise ValueError(_too_far("count_zeros", part, f, _zero_free_radius(part), detail)) from None
    if _two_slope(z, a) is not None:
        return _two_slope_count(z, a, radius / f)
    lower = _zero_free_radius(part)
    if r <= lower:
        return 0
    detail = (f"counting in |t| < {radius:.6g}, i.e. |Delta_a t| < {r:.6g}, needs {m:.3g} samples per "
              f"circle, above the limit of {_MAX_CIRCLE_SAMPLES}; use |t| <= "
              f"{_MAX_CIRCLE_SAMPLES / 8 * f / part.scale:.6g}")
    raise ValueError(_too_far("count_zeros", part, f, lower, detail))


def _nearest(z: np.ndarray, a: np.ndarray, polish: bool, dps: int, caller: str):
    """``(zeros, rho*)`` in ``t`` units; non-finite zeros / ``inf`` when beyond float64."""
    a, f = _finite_spread(a)
    part = _Partition(z, a)
    if part.scale == 0:
        return np.zeros(0, dtype=np.complex128), math.inf
    two = _two_slope(z, a)
    if two is not None and not two[2] <= _CLOSED_FORM_FROM:
        _, _, _, rho, re, im = two
        zeros = np.array([complex(re * f, -im * f), complex(re * f, im * f)], dtype=np.complex128)
        return zeros, rho * f
    lower = _zero_free_radius(part)
    est = _SEARCH_CIRCLES * _circle_size(1.5 * lower)
    if est > _MAX_TOTAL_SAMPLES:
        detail = (f"the nearest zero has |Delta_a t| >= {lower:.6g}, so the search needs about "
                  f"{est:.3g} circle samples, above the limit of {_MAX_TOTAL_SAMPLES}")
        raise ValueError(_too_far(caller, part, f, lower, detail))
    try:
        t = _nearest_normalized(part, polish, dps, lower if lower > _SKIP_AHEAD_FROM else PI)
    except _TooCostly as exc:
        detail = (f"the counting circle |Delta_a t| = {exc.radius:.6g} needs {exc.samples:.3g} more "
                  f"samples, beyond the limit of {exc.limit} {exc.what}")
        raise ValueError(_too_far(caller, part, f, lower, detail)) from None
    if f != 1.0:
        t = t * f
    return t, float(np.min(np.abs(t)))


def nearest_zeros(z: Any, a: Any, *, polish: bool = True, dps: int = 30) -> np.ndarray:
    r"""Zeros of ``F(t) = sum_k exp(z_k + a_k t)`` of smallest modulus (Proposition 4.2).

    Method (Check C4): rescale ``s = Delta_a t`` (Theorem 4.6 makes ``|Im s| < pi``
    zero-free), count zeros in ``|s| < R`` by the argument principle starting at
    ``R = pi(1 - 1e-9)`` (count must be 0), grow ``R`` by 1.5x until a zero is enclosed,
    bisect the annulus, start Newton from the local minima of ``|F|`` on the outer circle,
    and *certify* the result: the count on ``|s| = |s*|(1 - 1e-9)`` must be 0.  The zeros
    are finally polished with mpmath Newton at ``dps`` digits (``polish=True``).

    Bounds (see :func:`count_zeros` for the cost ``M(r)`` of one circle): if ``a`` takes two
    distinct values and ``|s*| = sqrt(delta^2 + pi^2) > 1024``, the closed form of
    Theorem 4.3 is returned (exact, any size).  Otherwise, with ``r_0 = hypot(L, pi)`` the
    certified zero-free radius of :func:`radius_lower_bound` (``L ~ logit gap / slope
    gap``), the search is refused up front (``ValueError``, no sampling) when
    ``24 M(1.5 r_0) > 2^22`` samples (bisection, Newton and certification take up to ~24
    circles near ``|s*|``), i.e. for ``r_0 > 10923``, and in flight when a circle would
    exceed ``2^20`` samples or the search ``2^22``.  Time is therefore bounded by
    ``~0.1-0.2 us x K x 2^22`` and memory by ``O(2^20)`` samples.  Above ``r_0 = 1024`` the
    search starts at ``r_0`` instead of ``pi`` (same result, fewer circles).

    Returns:
        complex ndarray of the distinct zeros whose modulus is within 1e-8 (relative) of
        the minimum (a conjugate pair in general; 4 zeros for the symmetric family
        ``2 cosh t + w``), sorted by imaginary part; empty if ``Delta_a = 0``.  The minimal
        modulus is certified; zeros of equal modulus are collected from every local minimum
        of ``|F|`` on the enclosing circle.

    Raises:
        ValueError: inputs invalid, the search too costly (message: the cost and the
            certified lower bounds to use instead), or the zeros beyond the float64 range
            (``|t| > 1.8e308``; :func:`exact_radius` returns ``inf`` then).

    Cost: ~5 ms per instance (n <= 11) in numpy + mpmath.
    """
    z, a = _za_pair(z, a)
    t, rho = _nearest(z, a, polish, int(dps), "nearest_zeros")
    if t.size and not np.all(np.isfinite(t)):
        raise ValueError(f"nearest_zeros: the nearest zeros lie beyond the float64 range (|t| = {rho!r}); "
                         "exact_radius returns inf for them")
    return t


def exact_radius(z: Any, a: Any, *, method: str = "argument_principle",
                 per_sample: bool = False, polish: bool = True) -> Any:
    r"""Exact linearized radius ``rho* = min{|t| : F(t) = 0}`` (Proposition 4.2).

    Args:
        z: logits, 1-D ``[classes]`` or 2-D ``[samples, classes]``.
        a: directional logit derivatives, same shape.
        method: ``"argument_principle"`` (general, :func:`nearest_zeros`, with its cost
            bounds) or ``"polynomial"`` (commensurate slopes only, :func:`polynomial_zeros`).
        per_sample: for 2-D input return per-sample radii instead of the batch radius
            ``min_x rho*(x)`` (= radius of the mean loss, Section 4.4).
        polish: mpmath polish of the zeros.

    Returns ``inf`` when ``Delta_a = 0`` and when ``rho*`` exceeds the float64 range.
    Raises ``ValueError`` where :func:`nearest_zeros` refuses a search as too costly.
    """
    if method not in ("argument_principle", "polynomial"):
        raise ValueError(f"method must be 'argument_principle' or 'polynomial', got {method!r}")
    z, a = _za_pair(z, a, (1, 2))
    if z.ndim == 2:
        per = np.array([exact_radius(zi, ai, method=method, polish=polish) for zi, ai in zip(z, a)])
        return per if per_sample else float(per.min())
    if method == "polynomial":
        zeros = _poly_zeros(z, a, None, 64, polish, 30)
        return float(np.min(np.abs(zeros))) if zeros.size else math.inf
    return _nearest(z, a, polish, 30, "exact_radius")[1]


def radius_lower_bound(z: Any, a: Any, *, per_sample: bool = False) -> Any:
    r"""Certified lower bound on ``rho*`` from the zero-free strip and the logit gaps.

    In ``s = Delta_a t`` every zero of ``F`` has ``|Im s| >= pi`` (Theorem 4.6) and
    ``|Re s| >= L``, where ``L`` is where the largest term ``e^{z_k + a_k t}`` stops beating
    the sum of the others on the line ``Re s = x`` (see :func:`_zero_free_real_part`), so

        rho* >= hypot(L, pi) / Delta_a  >=  rho_a = pi / Delta_a.

    Cost ``O(K)`` per step, at most 128 steps: usable at any logit gap (e.g. where
    :func:`exact_radius` refuses).  For two slopes it is ``rho*`` to ~1e-12 (relative).
    1-D or 2-D input (2-D: batch minimum, or per sample).  ``inf`` when ``Delta_a = 0``.
    """
    z, a = _za_pair(z, a, (1, 2))
    if z.ndim == 2:
        per = np.array([radius_lower_bound(zi, ai) for zi, ai in zip(z, a)])
        return per if per_sample else float(per.min())
    a, f = _finite_spread(a)
    part = _Partition(z, a)
    if part.scale == 0:
        return math.inf
    with np.errstate(over="ignore"):
        return float(np.float64(_zero_free_radius(part)) / part.scale * f)


# ----------------------------------------------------------------------------------
# commensurate slopes: exact polynomial method (Check C5)
# ----------------------------------------------------------------------------------


def commensurate_step(a: Any, *, max_degree: int = 64, tol: float = 1e-9) -> tuple[float, np.ndarray]:
    """Find ``g > 0`` and integers ``m_k >= 0`` with ``a_k - min(a) = m_k g``.

    Tries denominators ``q = 1..max_degree`` for the ratios ``(a_k - min a)/Delta_a`` and
    returns the first (smallest-degree) fit, ``g = Delta_a/q``.

    Raises:
        ValueError: if ``a`` has zero spread, a spread beyond the float64 range, or no fit
            of degree <= ``max_degree`` exists.
    """
    a = _real_array(a, "a")
    with np.errstate(over="ignore"):
        spread = float(a.max() - a.min())
    if spread == 0:
        raise ValueError("a has zero spread: F has no zeros")
    if not math.isfinite(spread):
        raise ValueError("a has a spread max(a) - min(a) beyond the float64 range; rescale a "
                         "(the zeros scale as 1/c when a is scaled by c)")
    ratio = (a - a.min()) / spread
    for q in range(1, int(max_degree) + 1):
        mk = np.rint(q * ratio)
        if np.all(np.abs(q * ratio - mk) <= tol * q):
            return spread / q, mk.astype(np.int64)
    raise ValueError(f"a is not commensurate with degree <= {max_degree} (tol {tol})")


def _upper_hull(x: np.ndarray, y: np.ndarray) -> list[int]:
    """Indices of the upper convex hull of the points ``(x_i, y_i)`` (``x`` increasing).

    Slopes from halved ordinates (exact halving; no overflow for ``|y| <= max float``)."""
    hull: list[int] = []
    for i in range(x.size):
        while len(hull) >= 2:
            i0, i1 = hull[-2], hull[-1]
            if (y[i1] / 2 - y[i0] / 2) / (x[i1] - x[i0]) <= (y[i] / 2 - y[i0] / 2) / (x[i] - x[i0]):
                hull.pop()  # i1 lies on or below the chord i0 -> i
            else:
                break
        hull.append(i)
    return hull


def _log_roots(lc: np.ndarray) -> np.ndarray:
    r"""``log u`` for the roots of ``P(u) = sum_j e^{lc_j} u^j`` (``lc_j = -inf``: no term).

    Newton-polygon (tropical) scaling: on an edge ``j1 < j2`` of the upper hull of
    ``(j, lc_j)`` the terms ``j1, j2`` balance at ``log|u| = mu = -(lc_j2 - lc_j1)/(j2 - j1)``,
    and ``P`` has ``j2 - j1`` roots of about that modulus.  For each edge the polynomial in
    ``v = u e^{-mu}`` (coefficients ``e^{lc_j + mu j - max}``; those below ``1e-16`` of the
    largest, which move the roots near ``|v| = 1`` by less than rounding but would swamp the
    companion matrix, set to 0) is solved by ``numpy.roots``.  A root is kept if its
    backward error ``|P(u)| / sum_j |c_j u^j| <= 1e-8`` (in log space), so every root comes
    from a solve whose scale resolves it, whatever the dynamic range of the weights (where
    the exponents are too large for float64 to resolve the residual, the root is kept and
    the mpmath polish, at adapted precision, decides).  A single unscaled solve loses the
    roots far from ``|u| = 1``: ``e^-37 u^3 + u^2 + 2 e^-37`` gave the root 0, i.e.
    ``log u = -inf``.  The result may list a root more than once (accurate in several solves).
    """
    js = np.flatnonzero(np.isfinite(lc))
    hull = js[_upper_hull(js.astype(np.float64), lc[js])]
    powers = np.arange(lc.size, dtype=np.float64)
    out = []
    for j1, j2 in zip(hull[:-1], hull[1:]):
        slope = (lc[j2] - lc[j1]) / (j2 - j1)  # lc in [-max float, log K]: finite
        mu = -slope
        # half the log coefficients relative to the edge, from differences: the two ends
        # balance by construction and are set to exactly 0 (with |lc| ~ 1e19, lc + mu j rounds
        # by ~1e3).  Points lie on or below the edge's line, so the halves cannot overflow
        # except to -inf (negligible terms); halving is exact, the values those of lq/2.
        with np.errstate(over="ignore", invalid="ignore"):
            lqh = (lc / 2 - lc[j1] / 2) - (slope / 2) * (powers - j1)
        lqh[~np.isfinite(lc)] = -np.inf
        lqh[[j1, j2]] = 0.0
        with np.errstate(under="ignore", over="ignore"):
            q = np.exp(2 * (lqh - np.max(lqh)))
        q[q < 1e-16] = 0.0
        v = np.roots(q[::-1]).astype(np.complex128)
        v = v[(v != 0) & np.isfinite(v)]
        out.append(np.log(v) + mu)
    logu = np.concatenate(out) if out else np.zeros(0, dtype=np.complex128)
    if logu.size == 0:
        return logu
    # backward error of each root: |sum_j e^{lc_j + j log u}| / sum_j e^{Re(...)}; where the
    # exponents themselves carry rounding above 1e-9 (|lc|, |j log u| > ~1e6) it cannot be
    # resolved in float64, and the root is kept for the (adapted-precision) mpmath polish
    with np.errstate(over="ignore", invalid="ignore", under="ignore"):  # near 1e308: err = inf, kept
        ex = lc[js][None, :] + logu[:, None] * powers[js][None, :]
        top = ex.real.max(axis=1, keepdims=True)
        terms = np.exp(ex - top)
        resid = np.abs(terms.sum(axis=1)) / np.abs(terms).sum(axis=1)
        size = np.abs(lc[js])[None, :] + np.abs(logu[:, None]) * powers[js][None, :]
        exp_err = 4 * np.finfo(np.float64).eps * np.max(size, axis=1)
    return logu[(resid <= 1e-8) | ~(exp_err <= 1e-9)]


def _poly_zeros(z: np.ndarray, a: np.ndarray, g: float | None, max_degree: int,
                polish: bool, dps: int) -> np.ndarray:
    """:func:`polynomial_zeros` on validated input; non-finite zeros where ``|t|`` overflows."""
    a, f = _finite_spread(a)
    if g is None:
        g, mk = commensurate_step(a, max_degree=max_degree)
    else:
        g = _positive_finite(g, "g") * f
        mk_f = (a - a.min()) / g
        if not np.all(mk_f <= max_degree + 0.5):  # also inf: the companion matrix is deg x deg
            raise ValueError(f"(a - min a)/g reaches {float(np.max(mk_f)):.6g}: the polynomial would have "
                             f"degree above max_degree={max_degree}")
        mk = np.rint(mk_f).astype(np.int64)
        if np.any(np.abs(mk_f - mk) > 1e-9 * np.maximum(1.0, np.abs(mk_f))):
            raise ValueError(f"a is not an integer multiple of g={g / f!r} above min(a)")
    deg = int(mk.max())
    if deg == 0:
        return np.zeros(0, dtype=np.complex128)
    with np.errstate(over="ignore"):
        lw = z - z.max()
    if not np.all(np.isfinite(lw)):
        raise ValueError("the logit gaps z - max z exceed the float64 range; the polynomial method "
                         "cannot represent them (method='argument_principle' can)")
    lc = np.full(deg + 1, -np.inf)  # log of the coefficient of u^j: log-sum-exp of its weights
    np.logaddexp.at(lc, mk, lw)
    logu = _log_roots(lc)
    logu = logu[np.isfinite(logu)]
    if logu.size == 0:  # each hull edge balances two nonzero coefficients: cannot happen
        raise RuntimeError("polynomial_zeros: no root of the polynomial passed the backward-error check")
    # branches k = -1, 0, 1: the principal one is nearest, except for ties when arg u = pi
    with np.errstate(over="ignore", invalid="ignore"):
        t_all = np.concatenate([(logu + 2j * PI * k) / g for k in (-1, 0, 1)])
    t_all = t_all[np.isfinite(t_all)]  # zeros beyond float64 (tiny g, huge gaps) are not nearest
    if t_all.size == 0:  # all of them beyond float64: reported as overflow
        return np.array([complex(math.inf, math.inf)])
    with np.errstate(over="ignore"):  # near the float64 maximum the window is everything
        mod = np.abs(t_all)
        cand = t_all[mod <= mod.min() * (1 + 1e-3)]
    if polish:
        part = _Partition(z, a)
        out = []
        for t in cand:
            if abs(t) > 1e12 / part.scale:  # float64 places the relative exponents only to
                out.append(complex(t))      # ~1e-16 Delta_a |t|: keep the (1e-16-relative) root
                continue
            tp, ok = _mp_polish_checked(part, complex(t), dps)
            if ok and np.isfinite(tp):
                out.append(tp)
        if not out:
            raise RuntimeError("polynomial_zeros: the mpmath polish did not converge from the roots")
        cand = np.array(out)
    with np.errstate(over="ignore"):  # moduli near the float64 maximum
        mod = np.abs(cand)
        near = cand[mod <= mod.min() * (1 + 1e-8)]
        uniq: list[complex] = []
        for t in near:
            if all(abs(t - u) > 1e-9 * abs(t) for u in uniq):
                uniq.append(complex(t))
    near = np.array(uniq)
    near = near[np.argsort(near.imag)]
    return near * f if f != 1.0 else near


def polynomial_zeros(z: Any, a: Any, *, g: float | None = None, max_degree: int = 64,
                     polish: bool = True, dps: int = 30) -> np.ndarray:
    r"""Nearest zeros of ``F`` for commensurate slopes via a polynomial (paper/ghosts_notes.md §2.5).

    With ``a_k = min(a) + m_k g`` (integers ``m_k >= 0``), ``F(t) = e^{min(a) t} P(e^{g t})``,
    ``P(u) = sum_k w_k u^{m_k}``.  Each root ``u_j`` gives the zeros
    ``t = (Log u_j + 2 pi i k)/g``; the nearest to 0 is the principal branch ``k = 0``.
    Roots come from ``numpy.roots`` and are polished in mpmath (``polish=True``).

    The roots are found per edge of the Newton polygon of ``log`` of the coefficients
    (:func:`_log_roots`), in log space, so weights spanning any float64 range (logit gaps
    of 1e5 or 1e300) keep every root accurate; ``numpy.roots`` on ``P`` itself loses the
    roots far from ``|u| = 1``.  Bounds: the degree ``max m_k`` is at most ``max_degree``
    (also for an explicit ``g``; ``numpy.roots`` costs ``O(deg^3)`` per polygon edge), else
    ``ValueError``; so is a logit gap ``z_k - max z`` beyond the float64 range.  Zeros with
    ``Delta_a |t| > 1e12`` are returned unpolished: float64 cannot seed the polish inside
    its basin there, and the scaled roots are already accurate to ~``1e-16`` relative.

    Returns the zeros of minimal modulus (within 1e-8), sorted by imaginary part.
    Raises ``ValueError`` if they lie beyond the float64 range (``exact_radius`` gives ``inf``).
    """
    z, a = _za_pair(z, a)
    zeros = _poly_zeros(z, a, g, max_degree, polish, int(dps))
    if not np.all(np.isfinite(zeros)):
        raise ValueError("polynomial_zeros: the nearest zeros lie beyond the float64 range; "
                         "exact_radius returns inf for them")
    return zeros


# ----------------------------------------------------------------------------------
# Eq. 13: per-sample top-2 reduction
# ----------------------------------------------------------------------------------


def _top2_parts(z: np.ndarray, a: np.ndarray, y: Any, half: bool = False):
    """``(delta, D) = (z_y - z_c, a_y - a_c)``, ``c = argmax_{k != y} z_k``; halves if ``half``."""
    n = z.shape[-1]
    if n < 2:
        raise ValueError("z must have at least 2 classes for the top-2 reduction")
    y_arr = np.asarray(y)
    if not np.issubdtype(y_arr.dtype, np.integer) or np.any(y_arr < 0) or np.any(y_arr >= n):
        raise ValueError(f"y must be integer class indices in [0, {n}), got {y!r}")
    if z.ndim == 2:
        y_arr = np.broadcast_to(y_arr, z.shape[:1])
    zz = np.array(z, copy=True)
    np.put_along_axis(zz, y_arr[..., None], -np.inf, axis=-1)
    c = zz.argmax(axis=-1)
    take = lambda arr, idx: np.take_along_axis(arr, np.asarray(idx)[..., None], axis=-1)[..., 0]
    if half:
        return take(z, y_arr) / 2 - take(z, c) / 2, take(a, y_arr) / 2 - take(a, c) / 2
    with np.errstate(over="ignore"):
        delta = take(z, y_arr) - take(z, c)
        d = take(a, y_arr) - take(a, c)
    return delta, d


def top2_ghost(z: Any, a: Any, y: int, *, paper_sign: bool = False) -> complex:
    r"""Per-sample "ghost" of the top-2 reduction, Eq. 13.

    ``c = argmax_{k != y} z_k``, ``delta = z_y - z_c``, ``D = a_y - a_c``.  The binary zero
    with positive imaginary part is ``(-delta + i pi)/D`` when ``D > 0``; we return the one
    with ``Im > 0``: ``(-delta + i pi sign(D))/D``.  ``paper_sign=True`` returns Eq. 13 as
    printed, ``(delta + i pi)/D`` (wrong real part; the modulus agrees).  If ``delta`` or
    ``D`` overflows float64 the halves are used (same quotient); a ghost beyond the float64
    range raises ``ValueError``.
    """
    z, a = _za_pair(z, a)
    delta, d = _top2_parts(z, a, y)
    if d == 0:
        raise ValueError("a_y - a_c = 0: the top-2 pair has no ghost")
    pi = PI
    if not (np.isfinite(delta) and np.isfinite(d)):
        (delta, d), pi = _top2_parts(z, a, y, half=True), PI / 2
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        re, im = (delta / d, pi / d) if paper_sign else (-delta / d, pi / abs(d))
    if not (np.isfinite(re) and np.isfinite(im)):
        raise ValueError(f"the top-2 ghost lies beyond the float64 range (delta={delta!r}, D={d!r})")
    if paper_sign:
        return complex((delta + 1j * pi) / d)
    return complex((-delta + 1j * pi * np.sign(d)) / d)


def top2_radius(z: Any, a: Any, y: Any) -> Any:
    """Eq. 13 modulus ``sqrt(delta^2 + pi^2)/|a_y - a_c|``; 1-D or 2-D (per sample).

    As :func:`binary_radius`: ``inf`` for ``D = 0`` or beyond the float64 range.  Where
    ``delta`` or ``D`` overflows, ``sqrt((delta/2)^2 + (pi/2)^2)/|D/2|`` (same value)."""
    z, a = _za_pair(z, a, (1, 2))
    delta, d = _top2_parts(z, a, y)
    if np.all(np.isfinite(delta)) and np.all(np.isfinite(d)):
        return binary_radius(delta, d)
    dh, d2 = _top2_parts(z, a, y, half=True)
    with np.errstate(divide="ignore", over="ignore"):
        out = np.where(np.isfinite(delta) & np.isfinite(d), np.hypot(delta, PI) / np.abs(d),
                       np.hypot(dh, PI / 2) / np.abs(d2))
    return float(out) if out.ndim == 0 else out


# ----------------------------------------------------------------------------------
# Taylor coefficients and radius estimators (Theorem 2.1, Checks C1, C3)
# ----------------------------------------------------------------------------------


def logpartition_taylor(z: Any, a: Any, order: int, *, dps: int = 60) -> list:
    r"""Exact Taylor coefficients ``c_0..c_order`` of ``log F(t)``, ``F = sum_k e^{z_k + a_k t}``.

    ``F_n = sum_k w_k b_k^n / n!`` (centred slopes ``b = a - abar``) and ``G = log F`` from
    ``F' = G' F``:  ``n G_n F_0 = n F_n - sum_{j=1}^{n-1} j G_j F_{n-j}``.  The recursion is
    stable (an error injected at order j is propagated by ``1/F``, which grows like the
    coefficients themselves), so ``dps`` digits give ~``dps - 5`` correct digits.
    Returns a list of ``mpmath.mpf``.
    """
    z, a = _za_pair(z, a)
    order = _order(order)
    with mpmath.workdps(int(dps)):
        zmax = mpmath.mpf(float(z.max()))
        abar = mpmath.mpf(float(0.5 * (a.max() + a.min())))
        b = [mpmath.mpf(float(x)) - abar for x in a]
        pw = [mpmath.exp(mpmath.mpf(float(x)) - zmax) for x in z]
        fco = [mpmath.fsum(pw)]
        for n in range(1, order + 1):
            pw = [p * bk / n for p, bk in zip(pw, b)]
            fco.append(mpmath.fsum(pw))
        f0 = fco[0]
        gco = [mpmath.log(f0) + zmax]
        for n in range(1, order + 1):
            acc = mpmath.fsum(j * gco[j] * fco[n - j] for j in range(1, n))
            gco.append((fco[n] - acc / n) / f0)
        gco[1] += abar
        return [+c for c in gco]


def line_loss_taylor(z: Any, a: Any, order: int, *, y: Any = None, dps: int = 60) -> list:
    r"""Taylor coefficients of the linearized cross-entropy line loss (Prop. 4.2).

    ``l(t) = -(z_y + a_y t) + log F(t)`` for 1-D input; for 2-D ``[samples, classes]`` the
    mean over samples (the batch / data-set loss).  ``y=None`` drops the entire linear term
    ``-(z_y + a_y t)``, which changes ``c_0, c_1`` only (never the radius).
    """
    z, a = _za_pair(z, a, (1, 2))
    order = _order(order)
    zz, aa = np.atleast_2d(z), np.atleast_2d(a)
    if y is not None:
        y_arr = np.broadcast_to(np.asarray(y), zz.shape[:1])
        if not np.issubdtype(y_arr.dtype, np.integer) or np.any(y_arr < 0) or np.any(y_arr >= zz.shape[1]):
            raise ValueError(f"y must be integer class indices in [0, {zz.shape[1]}), got {y!r}")
    with mpmath.workdps(int(dps)):
        total = [mpmath.mpf(0)] * (order + 1)
        for i in range(zz.shape[0]):
            ci = logpartition_taylor(zz[i], aa[i], order, dps=dps)
            total = [s + c for s, c in zip(total, ci)]
            if y is not None:
                total[0] -= mpmath.mpf(float(zz[i, y_arr[i]]))
                total[1] -= mpmath.mpf(float(aa[i, y_arr[i]]))
        return [c / zz.shape[0] for c in total]


def taylor_coefficients(f: Callable, order: int, *, x0: Any = 0, dps: int = 50) -> list:
    """Taylor coefficients of an mpmath-evaluable analytic ``f`` at ``x0`` (``mpmath.taylor``)."""
    order = _order(order)
    with mpmath.workdps(int(dps)):
        return [+c for c in mpmath.taylor(f, x0, order)]


def taylor_coefficients_fft(f: Callable, radius: float, order: int, *,
                            n_points: int | None = None) -> np.ndarray:
    r"""Taylor coefficients from the Cauchy integral on ``|t| = radius`` (trapezoid = FFT).

    ``c_n = (1/M) sum_j f(r e^{2 pi i j/M}) e^{-2 pi i j n/M} / r^n``.  Requires ``f``
    analytic on ``|t| <= radius``; the aliasing error is ``O((radius/R)^M)`` and the
    rounding floor ``~ 1e-16 max|f| / radius^n``.  ``f`` takes a complex ndarray.
    """
    radius = _positive_finite(radius, "radius")
    order = _order(order)
    m = int(n_points) if n_points is not None else 4 * (order + 1)
    if m < order + 1:
        raise ValueError(f"n_points must be >= order + 1, got {n_points!r}")
    t = radius * np.exp(2j * PI * np.arange(m) / m)
    vals = np.asarray(f(t), dtype=np.complex128)
    if vals.shape != t.shape:
        raise ValueError(f"f must map an array of shape {t.shape} to the same shape, got {vals.shape}")
    c = np.fft.fft(vals)[: order + 1] / m
    return c / radius ** np.arange(order + 1)


def _log_abs_coeffs(c: Sequence) -> np.ndarray:
    out = np.empty(len(c))
    for i, ci in enumerate(c):
        if isinstance(ci, (mpmath.mpf, mpmath.mpc)):
            out[i] = float(mpmath.log(abs(ci))) if ci != 0 else -np.inf
        else:
            v = abs(complex(ci))
            out[i] = math.log(v) if v > 0 else -np.inf
    return out


def _n_window(n_total: int, n_min: int | None, frac: float) -> int:
    if n_total < 4:
        raise ValueError(f"c must hold at least 4 coefficients, got {n_total}")
    return int(math.ceil(frac * (n_total - 1))) if n_min is None else int(n_min)


def radius_root_test(c: Sequence, *, n_min: int | None = None) -> float:
    r"""Plain Cauchy-Hadamard root test ``min_{n in [N/2, N]} |c_n|^{-1/n}`` (Check C3a).

    Biased high by ``~ln(n)/n`` for a log singularity (``c_n ~ A n^{-1} R^{-n}``).
    """
    logs = _log_abs_coeffs(c)
    n_max = len(logs) - 1
    lo = max(1, _n_window(len(logs), n_min, 0.5))
    n = np.arange(lo, n_max + 1)
    return float(np.exp(np.min(-logs[lo:] / n)))


def radius_root_test_corrected(c: Sequence, *, n_min: int | None = None) -> float:
    r"""Root test on ``n c_n``: ``min_{n in [N/2, N]} |n c_n|^{-1/n}`` (Check C3b)."""
    logs = _log_abs_coeffs(c)
    n_max = len(logs) - 1
    lo = max(1, _n_window(len(logs), n_min, 0.5))
    n = np.arange(lo, n_max + 1)
    return float(np.exp(np.min(-(logs[lo:] + np.log(n)) / n)))


def radius_envelope_fit(c: Sequence, *, n_min: int | None = None, power: float = 1.0) -> float:
    r"""Envelope fit (Check C3c): least-squares line through the local maxima of
    ``log|n^power c_n|`` over ``n in [N/3, N]``; ``R = exp(-slope)``.

    ``power`` removes the algebraic prefactor of the coefficients: ``c_n ~ A n^{-1} R^{-n}``
    for a logarithmic branch point (the cross-entropy case, default ``power=1``),
    ``c_n ~ A R^{-n}`` for a simple pole (``power=0``).  Local maxima remove the
    ``cos(n theta + phi)`` oscillation of a conjugate pair of singularities; with fewer
    than 3 maxima (a non-oscillating sequence) all finite points of the window are fitted.
    """
    logs = _log_abs_coeffs(c)
    n_max = len(logs) - 1
    lo = max(1, _n_window(len(logs), n_min, 1 / 3))
    n = np.arange(n_max + 1)
    with np.errstate(invalid="ignore"):
        env = logs + float(power) * np.log(np.maximum(n, 1))
    idx = np.arange(lo, n_max)  # interior points (need both neighbours)
    idx = idx[idx >= 1]
    is_max = np.isfinite(env[idx]) & (env[idx] >= env[idx - 1]) & (env[idx] >= env[idx + 1])
    pts = idx[is_max]
    if pts.size < 3:
        pts = np.arange(lo, n_max + 1)
        pts = pts[np.isfinite(env[pts])]
    if pts.size < 2:
        raise ValueError("c has fewer than 2 nonzero coefficients in the fit window")
    slope = np.polyfit(pts.astype(np.float64), env[pts], 1)[0]
    return float(np.exp(-slope))


# ----------------------------------------------------------------------------------
# Appendix 4 (KL), Appendix 1 (Prop. A1.1), Appendix 5 (Hessian)
# ----------------------------------------------------------------------------------


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


def _logsumexp(x: np.ndarray) -> float:
    m = x.max()
    return float(m + np.log(np.exp(x - m).sum()))


def kl_forward(z: Any, a: Any, tau: float) -> float:
    """``KL(p(tau) || p(0))`` with ``p(tau) = softmax(z + tau a)`` (Theorem A4.2 as stated)."""
    z, a = _za_pair(z, a)
    zt = z + float(tau) * a
    p_t = _softmax(zt)
    return float(np.sum(p_t * ((zt - _logsumexp(zt)) - (z - _logsumexp(z)))))


def kl_reverse(z: Any, a: Any, tau: float) -> float:
    """``KL(p(0) || p(tau))``."""
    z, a = _za_pair(z, a)
    zt = z + float(tau) * a
    p0 = _softmax(z)
    return float(np.sum(p0 * ((z - _logsumexp(z)) - (zt - _logsumexp(zt)))))


def kl_bregman(z: Any, a: Any, tau: float) -> float:
    """Eq. 26: ``K(tau) - K(0) - tau K'(0)``, ``K(tau) = log sum e^{z + tau a}``.

    This equals the *reverse* KL ``KL(p(0)||p(tau))`` (the paper calls it the forward KL).
    """
    z, a = _za_pair(z, a)
    tau = float(tau)
    return _logsumexp(z + tau * a) - _logsumexp(z) - tau * float(_softmax(z) @ a)


def linearization_epsilon(z: Any, a: Any, curvature: float) -> float:
    r"""``epsilon = C pi^2 / (2 Delta_a^2 min_i w_i)``, ``w_i = e^{z_i}`` (Proposition A1.1).

    The paper claims ``rho_true >= rho_a (1 - epsilon)`` for ``epsilon << 1``.  This is
    false: ``epsilon`` is not invariant under the logit shift ``z -> z + c`` that leaves
    every zero unchanged (counterexample in the tests, claim ``ghosts.propA11_linearization``).
    """
    z, a = _za_pair(z, a)
    curvature = float(curvature)
    spread = float(a.max() - a.min())
    if spread == 0:
        raise ValueError("a has zero spread")
    return curvature * PI**2 / (2 * spread**2 * float(np.exp(z.min())))


def logistic_hessian_scale(delta: Any) -> Any:
    r"""``1/f''(delta) = 1/(sigma(delta)(1 - sigma(delta)))`` for ``f(x) = log(1+e^{-x})`` (App. 5).

    Computed as ``2 + 2 cosh(delta)`` (exact identity, no cancellation).
    """
    d = _real_array(delta, "delta", (0, 1))
    out = 2.0 + 2.0 * np.cosh(d)
    return float(out) if out.ndim == 0 else out
