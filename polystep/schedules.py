"""Schedules for the softmax/OT temperature and the step/probe radii.

A schedule is a small frozen dataclass that maps the step counter ``t`` (an integer ``>= 0``)
to a float: ``sched(t) -> float``. Four schedules are provided:

======================  ===================================================================
``Constant(value)``     ``v_t = value``
``Linear(start, end,    ``v_t = start + (end - start) * min(t, steps) / steps``
steps)``
``Cosine(start, end,    ``v_t = end + 1/2 (start - end) (1 + cos(pi * min(t, steps) / steps))``
steps)``
``InverseSqrt(start,    ``v_t = start * sqrt(offset / (t + offset))``
offset=1)``
======================  ===================================================================

Every constructor argument is keyword-only. The original PolyStep code defined
``CosineEpsilon(target, init, decay, ...)``, so the positional call ``CosineEpsilon(5.0, 0.5)``
intended as "decay from 5.0 to 0.5" silently bound ``target=5.0, init=0.5`` and -- through its
``T = max(1, int((init - target) / decay))`` rule -- produced ``0.5`` at ``t = 0`` and the constant
``5.0`` for every ``t >= 1`` (the authors' ``src/polystep/epsilon.py`` and MAX-SAT runner, anindex/polystep
v0.7.0; paper/polystep_reconstruction.md §2.10 and §6 item 9). With keyword-only fields that
mistake is a ``TypeError``; :func:`positional_bug_demo` reproduces the original behaviour for the
report.

Schedules serialise to plain dictionaries (``{"kind": "cosine", "start": ..., ...}``) with
:meth:`Schedule.to_dict` and back with :meth:`Schedule.from_dict` / :func:`schedule_from_dict`, so
that optimizer ``state_dict`` objects can store them.

:class:`InverseSqrt` is the schedule of the ``O(log T / sqrt(T))`` rate (Theorem 4.2;
paper/polystep_reconstruction.md §3.2, hypothesis (iii)): with ``alpha_t = alpha_0 / sqrt(t + 1)`` one has
``sum_{t<T} alpha_t = Theta(sqrt T)`` and ``sum_{t<T} alpha_t^2 = Theta(log T)``.
"""

from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass, fields
from typing import Any, ClassVar, Mapping

from ._validation import check_finite, check_int

__all__ = [
    "Schedule",
    "Constant",
    "Linear",
    "Cosine",
    "InverseSqrt",
    "as_schedule",
    "schedule_from_dict",
    "positional_bug_demo",
]


def _step(t: Any) -> int:
    """Validate the step counter ``t`` (an integer ``>= 0``, e.g. ``int``, numpy or 0-d torch int)."""
    if isinstance(t, bool):
        raise TypeError(f"t must be an integer step counter, got {t!r}")
    try:
        out = operator.index(t)
    except TypeError:
        raise TypeError(f"t must be an integer step counter, got {t!r}") from None
    if out < 0:
        raise ValueError(f"t must be >= 0, got {out}")
    return out


_REGISTRY: dict[str, type["Schedule"]] = {}


@dataclass(frozen=True, kw_only=True)
class Schedule:
    """Base class: a frozen, keyword-only dataclass callable as ``sched(t) -> float``.

    Subclasses set the class attribute ``kind`` (the ``"kind"`` key of :meth:`to_dict`) and
    implement ``_value(t)`` (the formula at a validated step ``t >= 0``).
    """

    kind: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.kind:
            _REGISTRY[cls.kind] = cls

    def __call__(self, t: int) -> float:
        """Value of the schedule at step ``t``.

        Args:
            t: step counter, an integer ``>= 0``.

        Returns:
            The scheduled value as a Python float.

        Raises:
            TypeError: if ``t`` is not an integer.
            ValueError: if ``t < 0``.
        """
        return float(self._value(_step(t)))

    def _value(self, t: int) -> float:  # pragma: no cover - abstract
        """Formula of the schedule at a validated step ``t >= 0``."""
        raise NotImplementedError

    def to_dict(self) -> dict[str, Any]:
        """Serialise to ``{"kind": ..., <field>: <value>, ...}`` (plain JSON types)."""
        return {"kind": self.kind, **{f.name: getattr(self, f.name) for f in fields(self)}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Schedule":
        """Inverse of :meth:`to_dict`.

        Called on :class:`Schedule` it dispatches on ``data["kind"]``; called on a subclass it
        additionally checks that the kind matches.

        Raises:
            ValueError: if ``kind`` is missing, unknown, or does not match ``cls``, or if a field
                is missing, unexpected or invalid.
        """
        if not isinstance(data, Mapping):
            raise ValueError(f"data must be a mapping, got {type(data).__name__}")
        params = dict(data)
        kind = params.pop("kind", None)
        if kind not in _REGISTRY:
            raise ValueError(f"data['kind'] must be one of {sorted(_REGISTRY)}, got {kind!r}")
        target = _REGISTRY[kind]
        if cls is not Schedule and target is not cls:
            raise ValueError(f"data['kind'] is {kind!r} but {cls.__name__}.from_dict expects {cls.kind!r}")
        names = {f.name for f in fields(target)}
        unexpected = sorted(set(params) - names)
        if unexpected:
            raise ValueError(f"unexpected keys for schedule kind {kind!r}: {unexpected}")
        return target(**params)


@dataclass(frozen=True, kw_only=True)
class Constant(Schedule):
    """Constant schedule ``v_t = value``.

    Args:
        value: the constant (finite).
    """

    kind: ClassVar[str] = "constant"
    value: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "value", check_finite("value", self.value))

    def _value(self, t: int) -> float:
        return self.value


@dataclass(frozen=True, kw_only=True)
class Linear(Schedule):
    """Linear interpolation, then constant.

    ``v_t = start + (end - start) * min(t, steps) / steps``, i.e. ``start`` at ``t = 0``, ``end`` at
    ``t = steps`` and for every later step.

    Args:
        start: value at ``t = 0`` (finite).
        end: value at ``t >= steps`` (finite).
        steps: length of the ramp, an integer ``>= 1``.
    """

    kind: ClassVar[str] = "linear"
    start: float
    end: float
    steps: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", check_finite("start", self.start))
        object.__setattr__(self, "end", check_finite("end", self.end))
        object.__setattr__(self, "steps", check_int("steps", self.steps, 1))

    def _value(self, t: int) -> float:
        if t >= self.steps:
            return self.end
        return self.start + (self.end - self.start) * (t / self.steps)


@dataclass(frozen=True, kw_only=True)
class Cosine(Schedule):
    """Half-cosine annealing, then constant.

    ``v_t = end + 1/2 (start - end) (1 + cos(pi * min(t, steps) / steps))``: ``start`` at ``t = 0``,
    the midpoint ``(start + end) / 2`` at ``t = steps / 2``, ``end`` at ``t >= steps``. This is the
    intended reading of the original ``CosineEpsilon(target=end, init=start, decay)`` with
    ``T = steps`` (paper/polystep_reconstruction.md §2.10).

    Args:
        start: value at ``t = 0`` (finite).
        end: value at ``t >= steps`` (finite).
        steps: length of the half cosine, an integer ``>= 1``.
    """

    kind: ClassVar[str] = "cosine"
    start: float
    end: float
    steps: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", check_finite("start", self.start))
        object.__setattr__(self, "end", check_finite("end", self.end))
        object.__setattr__(self, "steps", check_int("steps", self.steps, 1))

    def _value(self, t: int) -> float:
        if t >= self.steps:
            return self.end
        return self.end + 0.5 * (self.start - self.end) * (1.0 + math.cos(math.pi * t / self.steps))


@dataclass(frozen=True, kw_only=True)
class InverseSqrt(Schedule):
    """Inverse-square-root decay ``v_t = start * sqrt(offset / (t + offset))``.

    ``v_0 = start``; with ``offset = 1`` this is ``start / sqrt(t + 1)``, the radius schedule under
    which ``sum_t v_t`` diverges like ``sqrt(T)`` while ``sum_t v_t^2`` grows like ``log T``, giving
    the ``O(log T / sqrt(T))`` stationarity rate (Theorem 4.2; paper/polystep_reconstruction.md §3.2,
    hypothesis (iii)).

    Args:
        start: value at ``t = 0`` (finite).
        offset: positive shift (finite, ``> 0``); larger offsets delay the decay.
    """

    kind: ClassVar[str] = "inverse_sqrt"
    start: float
    offset: float = 1.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", check_finite("start", self.start))
        offset = check_finite("offset", self.offset)
        if offset <= 0.0:
            raise ValueError(f"offset must be > 0, got {offset!r}")
        object.__setattr__(self, "offset", offset)

    def _value(self, t: int) -> float:
        return self.start * math.sqrt(self.offset / (t + self.offset))


def as_schedule(x: Any) -> Schedule:
    """Turn a real number into :class:`Constant` and pass schedules through unchanged.

    Args:
        x: a :class:`Schedule` or a finite real number (``int``/``float``/numpy scalar; not ``bool``).

    Returns:
        ``x`` itself if it is a schedule, else ``Constant(value=float(x))``.

    Raises:
        TypeError: if ``x`` is neither a schedule nor a real number.
        ValueError: if ``x`` is a non-finite number.
    """
    if isinstance(x, Schedule):
        return x
    if isinstance(x, bool) or not isinstance(x, numbers.Real):
        raise TypeError(f"expected a Schedule or a real number, got {type(x).__name__}: {x!r}")
    return Constant(value=x)


def schedule_from_dict(data: Mapping[str, Any]) -> Schedule:
    """Rebuild any schedule from :meth:`Schedule.to_dict` output (dispatch on ``"kind"``)."""
    return Schedule.from_dict(data)


def _original_cosine_epsilon(target: float, init: float, decay: float, t: int, total_steps: int = 0) -> float:
    """The original code's ``CosineEpsilon(target, init, decay, total_steps)`` value at step ``t``.

    Re-implemented from the authors' ``src/polystep/epsilon.py`` (anindex/polystep v0.7.0, as described in
    paper/polystep_reconstruction.md §2.10; restarts omitted):
    ``T = total_steps if total_steps > 0 else max(1, int((init - target) / decay))`` and
    ``eps_t = target + 1/2 (init - target) (1 + cos(pi * min(t, T) / T))``.
    """
    period = total_steps if total_steps > 0 else max(1, int((init - target) / decay))
    return target + 0.5 * (init - target) * (1.0 + math.cos(math.pi * min(t, period) / period))


def positional_bug_demo(
    *, intended_start: float = 5.0, intended_end: float = 0.5, decay: float = 0.01, num_steps: int = 10
) -> dict[str, Any]:
    """Values of the original ``CosineEpsilon(start, end)`` positional misuse vs the intended cosine.

    The MAX-SAT runner (and examples/04, the GPT-2 runner) called
    ``CosineEpsilon(cfg["epsilon_init"], cfg["epsilon_target"])`` whose fields are
    ``(target, init, decay=0.01, total_steps=0)``. The call therefore binds
    ``target = intended_start`` and ``init = intended_end``; the period becomes
    ``T = max(1, int((intended_end - intended_start) / decay)) = 1`` for a decreasing schedule, so

    * ``eps_0 = init = intended_end`` (the *target* argument of the call), and
    * ``eps_t = target = intended_start`` (the *init* argument) for every ``t >= 1``.

    With the defaults ``(5.0, 0.5)`` the temperature is ``0.5`` at ``t = 0`` and then constantly
    ``5.0`` (paper/polystep_reconstruction.md §6 item 9), instead of decaying from 5.0 to 0.5. The
    intended schedule is ``Cosine(start=intended_start, end=intended_end, steps=num_steps)``, i.e. what the runner's
    ``decay = (init - target) / total_steps`` was meant to produce.

    Args:
        intended_start: the value the caller meant as the initial value (first positional arg).
        intended_end: the value the caller meant as the final value (second positional arg).
        decay: the original ``decay`` field (default ``0.01`` as in the original class).
        num_steps: number of steps to tabulate; also the period of the intended cosine (``>= 1``).

    Returns:
        A dict with ``"t"`` (list of ints ``0..num_steps``), ``"buggy"`` (original positional
        misuse values), ``"intended"`` (values of the intended :class:`Cosine`), and
        ``"buggy_period"`` (the period ``T`` the original code derived).

    Raises:
        ValueError: on non-finite values, ``decay <= 0`` or ``num_steps < 1``.
    """
    start = check_finite("intended_start", intended_start)
    end = check_finite("intended_end", intended_end)
    decay = check_finite("decay", decay)
    if decay <= 0.0:
        raise ValueError(f"decay must be > 0, got {decay!r}")
    num_steps = check_int("num_steps", num_steps, 1)
    # Positional binding of the original signature CosineEpsilon(target, init, decay):
    target_field, init_field = start, end
    intended = Cosine(start=start, end=end, steps=num_steps)
    ts = list(range(num_steps + 1))
    return {
        "t": ts,
        "buggy": [_original_cosine_epsilon(target_field, init_field, decay, t) for t in ts],
        "intended": [intended(t) for t in ts],
        "buggy_period": max(1, int((init_field - target_field) / decay)),
    }
