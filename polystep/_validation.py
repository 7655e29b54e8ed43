"""Argument checks shared by the package: each returns the value as a plain Python ``int`` /
``float`` or raises ``ValueError`` naming the argument, its bound and the value received.

Returning plain Python numbers (a NumPy ``int64`` or ``float32`` becomes ``int`` / ``float``) keeps
every hyperparameter that ends up in a ``state_dict`` loadable by ``torch.load(...,
weights_only=True)``, which refuses NumPy scalars.
"""

from __future__ import annotations

import math
import numbers
import operator
from typing import Any, Sequence

__all__ = ["check_int", "check_positive", "check_nonnegative", "check_finite", "check_choice"]


def check_int(name: str, value: Any, minimum: int, note: str = "") -> int:
    """``value`` as a Python ``int >= minimum`` (anything with ``__index__`` but ``bool``).

    ``note`` is inserted after the bound, e.g. ``" (pycma treats 0 as 'unseeded')"``.

    Raises:
        ValueError: ``"<name> must be an integer >= <minimum><note>, got <value!r>"``.
    """
    out = None
    if not isinstance(value, bool):
        try:
            out = operator.index(value)
        except TypeError:
            out = None
    if out is None or out < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}{note}, got {value!r}")
    return out


def _real(name: str, value: Any, bound: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return float(value)


def check_positive(name: str, value: Any) -> float:
    """``value`` as a finite Python ``float > 0``.

    Raises:
        ValueError: ``"<name> must be a finite number > 0, got <value!r>"``.
    """
    out = _real(name, value, "> 0")
    if not (math.isfinite(out) and out > 0.0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return out


def check_nonnegative(name: str, value: Any) -> float:
    """``value`` as a finite Python ``float >= 0``.

    Raises:
        ValueError: ``"<name> must be a finite number >= 0, got <value!r>"``.
    """
    out = _real(name, value, ">= 0")
    if not (math.isfinite(out) and out >= 0.0):
        raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    return out


def check_finite(name: str, value: Any) -> float:
    """``value`` as a finite Python ``float`` (any sign).

    Raises:
        ValueError: ``"<name> must be a finite real number, got <value!r>"``.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{name} must be a finite real number, got {value!r}")
    return float(value)


def check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``.

    Raises:
        ValueError: ``"<name> must be one of <tuple(choices)>, got <value!r>"``.
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value
