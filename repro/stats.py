"""Two-sample tests for "method A beats method B" over seeds, with Holm's step-down correction.

* :func:`welch_greater` -- Welch's unequal-variance t-test of ``H1: mean(a) > mean(b)``
  (``scipy.stats.ttest_ind(a, b, equal_var=False, alternative="greater")``).  Degenerate inputs are
  decided, not left as NaN: two constant samples give ``p = 0`` when ``mean(a) > mean(b)`` and
  ``p = 1`` otherwise (no variance: the difference is exact).
* :func:`mann_whitney_greater` -- the rank test of ``H1: a stochastically greater than b``
  (``scipy.stats.mannwhitneyu(a, b, alternative="greater", method="exact")``).  With 3 seeds per
  method its smallest p-value is ``1 / C(6, 3) = 0.05``: it is reported, but it cannot reject at
  ``alpha = 0.05`` after any correction, so verdicts use Welch.
* :func:`holm` -- Holm (1979) adjusted p-values: sort ``p_(1) <= ... <= p_(m)``, ``p~_(i) =
  max_{j <= i} min(1, (m - j + 1) p_(j))``; reject ``H_(i)`` iff ``p~_(i) < alpha``.  Controls the
  family-wise error rate at ``alpha`` under any dependence.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["welch_greater", "mann_whitney_greater", "holm", "compare"]


def _sample(name: str, x: Sequence[float]) -> np.ndarray:
    a = np.asarray(x, dtype=float).reshape(-1)
    if a.size < 2:
        raise ValueError(f"{name} needs at least 2 values (seeds), got {a.size}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name} contains non-finite values: {a.tolist()}")
    return a


def welch_greater(a: Sequence[float], b: Sequence[float]) -> float:
    """One-sided Welch t-test p-value for ``mean(a) > mean(b)`` (module docstring)."""
    a, b = _sample("a", a), _sample("b", b)
    if np.var(a) == 0 and np.var(b) == 0:
        return 0.0 if a.mean() > b.mean() else 1.0
    import warnings

    from scipy.stats import ttest_ind

    with warnings.catch_warnings():  # nearly equal samples: scipy warns of precision loss, p is still defined
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)


def mann_whitney_greater(a: Sequence[float], b: Sequence[float]) -> float:
    """One-sided exact Mann-Whitney U p-value for ``a`` stochastically greater than ``b``."""
    a, b = _sample("a", a), _sample("b", b)
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(a, b, alternative="greater", method="exact").pvalue)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm's step-down adjusted p-values, in the input order (module docstring)."""
    p = np.asarray(pvalues, dtype=float).reshape(-1)
    if p.size == 0:
        return p
    if np.any(~np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError(f"p-values must lie in [0, 1], got {p.tolist()}")
    m = p.size
    order = np.argsort(p, kind="stable")
    adjusted_sorted = np.maximum.accumulate(np.minimum(1.0, (m - np.arange(m)) * p[order]))
    out = np.empty(m)
    out[order] = adjusted_sorted
    return out


def compare(pairs: dict[str, tuple[Sequence[float], Sequence[float]]], *, alpha: float) -> dict[str, dict]:
    """For every named pair ``(a, b)``: the mean difference ``mean(a) - mean(b)``, the one-sided Welch
    and Mann-Whitney p-values, the Holm-adjusted Welch p-value over all pairs, and ``significant``
    (``mean(a) > mean(b)`` and adjusted p < ``alpha``)."""
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    names = list(pairs)
    welch = [welch_greater(*pairs[n]) for n in names]
    adjusted = holm(welch)
    out = {}
    for name, pw, pa in zip(names, welch, adjusted):
        a, b = (np.asarray(v, dtype=float) for v in pairs[name])
        diff = float(a.mean() - b.mean())
        out[name] = {"difference": diff, "p_welch": pw, "p_mann_whitney": mann_whitney_greater(a, b),
                     "p_holm": float(pa), "significant": bool(diff > 0 and pa < alpha)}
    return out
