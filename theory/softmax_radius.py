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
            ``d = 0`` means ``F`` has no zeros: the radius is ``inf``.

    Returns:
        float for scalar input, else an ndarray.
    """
    delta_arr = _real_array(delta, "delta", (0, 1, 2, 3))
    d_arr = _real_array(d, "d", (0, 1, 2, 3))
    with np.errstate(divide="ignore"):
        out = np.hypot(delta_arr, PI) / np.abs(d_arr)
    return float(out) if out.ndim == 0 else out


def binary_zeros(delta: Any, d: Any, k: int = 0) -> np.ndarray:
    r"""Zeros of ``F(t) = w_c e^{a_c t} (1 + e^{delta + d t})`` (Theorem 4.3, own derivation).

    ``delta + d t = i pi (2k+1)`` gives ``t = (-delta +- i pi (2k+1))/d``; ``k = 0`` is the
    nearest conjugate pair.  Returns shape ``(..., 2)``, sorted by imaginary part.
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
    """``Delta_a = max_k a_k - min_k a_k`` along the last axis (Theorem 4.6)."""
    a = _real_array(a, "a", (1, 2))
    out = a.max(axis=-1) - a.min(axis=-1)
    return float(out) if out.ndim == 0 else out


def rho_a(a: Any, *, per_sample: bool = False) -> Any:
    r"""Closed-form lower bound ``rho_a = pi/Delta_a`` (Theorem 4.6, Definition 4.7).

    Args:
        a: directional logit derivatives, 1-D ``[classes]`` or 2-D ``[samples, classes]``.
        per_sample: for 2-D input, return the per-sample ``pi/Delta_a(x)`` instead of the
            batch radius ``pi / max_x Delta_a(x)`` (= the min over samples).

    A zero spread (``F`` has no zeros) gives ``inf``.
    """
    spread = np.asarray(logit_spread(a), dtype=np.float64)
    with np.errstate(divide="ignore"):
        per = PI / spread
    if per.ndim == 0:
        return float(per)
    if per_sample:
        return per
    return float(per.min())


# ----------------------------------------------------------------------------------
# multiclass zeros: argument principle + bisection + Newton + mpmath polish
# ----------------------------------------------------------------------------------


class _Partition:
    """``F`` rescaled to ``s = Delta_a t`` with slopes ``b_k`` in ``[-1/2, 1/2]``.

    ``F(t) = exp(max z + c t) * G(Delta_a t)``, ``G(s) = sum_k exp(lw_k + b_k s)``,
    ``lw = z - max z``, ``c = (max a + min a)/2``.  ``G`` has the zeros of ``F`` scaled by
    ``Delta_a`` and is zero-free in the strip ``|Im s| < pi``.
    """

    def __init__(self, z: np.ndarray, a: np.ndarray):
        self.z = z
        self.a = a
        self.scale = float(a.max() - a.min())
        centre = 0.5 * (a.max() + a.min())
        self.lw = z - z.max()
        self.b = (a - centre) / self.scale if self.scale > 0 else np.zeros_like(a)

    def eval(self, s: np.ndarray, derivative: bool = False):
        """``G(s) e^{-m(s)}`` (and ``G'(s) e^{-m(s)}``) plus ``m(s)``, overflow-free."""
        s = np.asarray(s, dtype=np.complex128)
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
    """
    m0 = int(2 ** math.ceil(math.log2(max(256.0, 8.0 * radius))))
    theta = np.linspace(0.0, 2 * PI, m0, endpoint=False)
    g, m = part.eval(radius * np.exp(1j * theta))
    for _ in range(max_refine):
        if np.any(g == 0):
            raise _OnContour()
        dphi = np.angle(np.roll(g, -1) / g)
        bad = np.flatnonzero(np.abs(dphi) > PI / 4)
        if bad.size == 0:
            return theta, g, m, dphi
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
    with mpmath.workdps(dps + 10):
        lw = [mpmath.mpf(float(x)) for x in part.lw]
        aa = [mpmath.mpf(float(x)) for x in part.a]
        t = mpmath.mpc(t0)
        tol = mpmath.mpf(10) ** (-dps)
        for _ in range(100):
            e = [mpmath.exp(l + ak * t) for l, ak in zip(lw, aa)]
            f0 = mpmath.fsum(e)
            if f0 == 0:
                break
            f1 = mpmath.fsum(ak * ek for ak, ek in zip(aa, e))
            f2 = mpmath.fsum(ak * ak * ek for ak, ek in zip(aa, e))
            den = f1 * f1 - f0 * f2
            if den == 0:
                break
            step = f0 * f1 / den
            t -= step
            if abs(step) <= tol * max(1, abs(t)):
                break
        return complex(t)


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


def _nearest_normalized(part: _Partition, polish: bool, dps: int) -> np.ndarray:
    """Certified nearest zeros of ``F`` (original units), sorted by imaginary part."""
    r_lo = PI * (1 - 1e-9)
    if _winding(part, r_lo) != 0:  # would contradict Theorem 4.6
        raise RuntimeError("zero found inside |Im s| < pi: Theorem 4.6 check failed numerically")
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
                t = np.array([s / part.scale for s in near], dtype=np.complex128)
                if polish:
                    t = np.array([_mp_polish(part, complex(x), dps) for x in t])
                return t[np.argsort(t.imag)]
            r_hi = smin * (1 - 1e-9)
        rel /= 100
    raise RuntimeError("nearest zero of F could not be certified")


def count_zeros(z: Any, a: Any, radius: float) -> int:
    """Number of zeros (with multiplicity) of ``F(t) = sum_k e^{z_k + a_k t}`` in ``|t| < radius``.

    Argument principle: winding number of ``F`` along the circle, sampled adaptively so
    every phase increment is below pi/4 (Check C4).
    """
    z, a = _za_pair(z, a)
    radius = _positive_finite(radius, "radius")
    part = _Partition(z, a)
    if part.scale == 0:
        return 0
    return _winding(part, radius * part.scale)


def nearest_zeros(z: Any, a: Any, *, polish: bool = True, dps: int = 30) -> np.ndarray:
    r"""Zeros of ``F(t) = sum_k exp(z_k + a_k t)`` of smallest modulus (Proposition 4.2).

    Method (Check C4): rescale ``s = Delta_a t`` (Theorem 4.6 makes ``|Im s| < pi``
    zero-free), count zeros in ``|s| < R`` by the argument principle starting at
    ``R = pi(1 - 1e-9)`` (count must be 0), grow ``R`` by 1.5x until a zero is enclosed,
    bisect the annulus, start Newton from the local minima of ``|F|`` on the outer circle,
    and *certify* the result: the count on ``|s| = |s*|(1 - 1e-9)`` must be 0.  The zeros
    are finally polished with mpmath Newton at ``dps`` digits (``polish=True``).

    Returns:
        complex ndarray of the distinct zeros whose modulus is within 1e-8 (relative) of
        the minimum (a conjugate pair in general; 4 zeros for the symmetric family
        ``2 cosh t + w``), sorted by imaginary part; empty if ``Delta_a = 0``.  The minimal
        modulus is certified; zeros of equal modulus are collected from every local minimum
        of ``|F|`` on the enclosing circle.

    Cost: ~5 ms per instance (n <= 11) in numpy + mpmath.
    """
    z, a = _za_pair(z, a)
    part = _Partition(z, a)
    if part.scale == 0:
        return np.zeros(0, dtype=np.complex128)
    return _nearest_normalized(part, polish, int(dps))


def exact_radius(z: Any, a: Any, *, method: str = "argument_principle",
                 per_sample: bool = False, polish: bool = True) -> Any:
    r"""Exact linearized radius ``rho* = min{|t| : F(t) = 0}`` (Proposition 4.2).

    Args:
        z: logits, 1-D ``[classes]`` or 2-D ``[samples, classes]``.
        a: directional logit derivatives, same shape.
        method: ``"argument_principle"`` (general, :func:`nearest_zeros`) or
            ``"polynomial"`` (commensurate slopes only, :func:`polynomial_zeros`).
        per_sample: for 2-D input return per-sample radii instead of the batch radius
            ``min_x rho*(x)`` (= radius of the mean loss, Section 4.4).
        polish: mpmath polish of the zeros.

    Returns ``inf`` when ``Delta_a = 0``.
    """
    if method not in ("argument_principle", "polynomial"):
        raise ValueError(f"method must be 'argument_principle' or 'polynomial', got {method!r}")
    z, a = _za_pair(z, a, (1, 2))
    if z.ndim == 2:
        per = np.array([exact_radius(zi, ai, method=method, polish=polish) for zi, ai in zip(z, a)])
        return per if per_sample else float(per.min())
    if method == "polynomial":
        zeros = polynomial_zeros(z, a, polish=polish)
    else:
        zeros = nearest_zeros(z, a, polish=polish)
    return float(np.min(np.abs(zeros))) if zeros.size else math.inf


# ----------------------------------------------------------------------------------
# commensurate slopes: exact polynomial method (Check C5)
# ----------------------------------------------------------------------------------


def commensurate_step(a: Any, *, max_degree: int = 64, tol: float = 1e-9) -> tuple[float, np.ndarray]:
    """Find ``g > 0`` and integers ``m_k >= 0`` with ``a_k - min(a) = m_k g``.

    Tries denominators ``q = 1..max_degree`` for the ratios ``(a_k - min a)/Delta_a`` and
    returns the first (smallest-degree) fit, ``g = Delta_a/q``.

    Raises:
        ValueError: if ``a`` has zero spread or no fit of degree <= ``max_degree`` exists.
    """
    a = _real_array(a, "a")
    spread = float(a.max() - a.min())
    if spread == 0:
        raise ValueError("a has zero spread: F has no zeros")
    ratio = (a - a.min()) / spread
    for q in range(1, int(max_degree) + 1):
        mk = np.rint(q * ratio)
        if np.all(np.abs(q * ratio - mk) <= tol * q):
            return spread / q, mk.astype(np.int64)
    raise ValueError(f"a is not commensurate with degree <= {max_degree} (tol {tol})")


def polynomial_zeros(z: Any, a: Any, *, g: float | None = None, max_degree: int = 64,
                     polish: bool = True, dps: int = 30) -> np.ndarray:
    r"""Nearest zeros of ``F`` for commensurate slopes via a polynomial (Section 2.5 of the digest).

    With ``a_k = min(a) + m_k g`` (integers ``m_k >= 0``), ``F(t) = e^{min(a) t} P(e^{g t})``,
    ``P(u) = sum_k w_k u^{m_k}``.  Each root ``u_j`` gives the zeros
    ``t = (Log u_j + 2 pi i k)/g``; the nearest to 0 is the principal branch ``k = 0``.
    Roots come from ``numpy.roots`` and are polished in mpmath (``polish=True``).

    Returns the zeros of minimal modulus (within 1e-8), sorted by imaginary part.
    """
    z, a = _za_pair(z, a)
    if g is None:
        g, mk = commensurate_step(a, max_degree=max_degree)
    else:
        g = _positive_finite(g, "g")
        mk_f = (a - a.min()) / g
        mk = np.rint(mk_f).astype(np.int64)
        if np.any(np.abs(mk_f - mk) > 1e-9 * np.maximum(1.0, np.abs(mk_f))):
            raise ValueError(f"a is not an integer multiple of g={g!r} above min(a)")
    deg = int(mk.max())
    if deg == 0:
        return np.zeros(0, dtype=np.complex128)
    coeffs = np.zeros(deg + 1)
    np.add.at(coeffs, deg - mk, np.exp(z - z.max()))
    u = np.roots(coeffs)
    logu = np.log(u.astype(np.complex128))
    # branches k = -1, 0, 1: the principal one is nearest, except for ties when arg u = pi
    t_all = np.concatenate([(logu + 2j * PI * k) / g for k in (-1, 0, 1)])
    mod = np.abs(t_all)
    cand = t_all[mod <= mod.min() * (1 + 1e-3)]
    if polish:
        part = _Partition(z, a)
        cand = np.array([_mp_polish(part, complex(t), dps) for t in cand])
    mod = np.abs(cand)
    near = cand[mod <= mod.min() * (1 + 1e-8)]
    uniq: list[complex] = []
    for t in near:
        if all(abs(t - u) > 1e-9 * abs(t) for u in uniq):
            uniq.append(complex(t))
    near = np.array(uniq)
    return near[np.argsort(near.imag)]


# ----------------------------------------------------------------------------------
# Eq. 13: per-sample top-2 reduction
# ----------------------------------------------------------------------------------


def _top2_parts(z: np.ndarray, a: np.ndarray, y: Any):
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
    delta = take(z, y_arr) - take(z, c)
    d = take(a, y_arr) - take(a, c)
    return delta, d


def top2_ghost(z: Any, a: Any, y: int, *, paper_sign: bool = False) -> complex:
    r"""Per-sample "ghost" of the top-2 reduction, Eq. 13.

    ``c = argmax_{k != y} z_k``, ``delta = z_y - z_c``, ``D = a_y - a_c``.  The binary zero
    with positive imaginary part is ``(-delta + i pi)/D`` when ``D > 0``; we return the one
    with ``Im > 0``: ``(-delta + i pi sign(D))/D``.  ``paper_sign=True`` returns Eq. 13 as
    printed, ``(delta + i pi)/D`` (wrong real part; the modulus agrees).
    """
    z, a = _za_pair(z, a)
    delta, d = _top2_parts(z, a, y)
    if d == 0:
        raise ValueError("a_y - a_c = 0: the top-2 pair has no ghost")
    if paper_sign:
        return complex((delta + 1j * PI) / d)
    return complex((-delta + 1j * PI * np.sign(d)) / d)


def top2_radius(z: Any, a: Any, y: Any) -> Any:
    """Eq. 13 modulus ``sqrt(delta^2 + pi^2)/|a_y - a_c|``; 1-D or 2-D (per sample)."""
    z, a = _za_pair(z, a, (1, 2))
    delta, d = _top2_parts(z, a, y)
    return binary_radius(delta, d)


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
