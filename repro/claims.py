"""The claims registry ``paper/claims.toml``: every claim, its pre-registered rule, and its verdict.

This module is the only place where a measurement becomes a verdict. Experiments return
*measurements* -- ``{"value": ..., "detail": str, "evidence": {name: number | bool | list}}``, never a
verdict -- from one measuring function per claim (:func:`claim`); :func:`judge` applies the claim's
registered rule to it, and the scale rule: a verdict only comes from a run at or above the claim's
registered scale; a lower-scale number is shown as *indicative*, without a verdict.

One ``[[claim]]`` table per claim of either paper::

    id             "polystep.<name>" | "ghosts.<name>"
    paper          "polystep" | "ghosts"
    source         "Theorem 4.1", "Table 1", "abstract", ...
    statement      one sentence
    experiment     the experiment id whose ``@claim`` function measures it
    scale          "ci" | "cpu" | "paper": the smallest scale whose run may give a verdict
    paper_value    number or string (what the paper reports)

  the pre-registered rule, one of
    comparison + tolerance   "abs" | "rel" | "at_least" | "at_most" on a numeric ``value``:
                             |value - paper_value| <= tol, <= tol |paper_value|,
                             value >= paper_value - tol, value <= paper_value + tol
    rule                     a boolean expression over ``value``, ``evidence.<name>`` and
                             ``params.<key>`` (another key of the claim's entry) (see
                             :func:`evaluate_rule`), e.g. ``"value <= -0.35"``,
                             ``"evidence.counterexamples > 0"``; ``criterion`` says it in words

  what the rule's outcome means (defaults: "reproduced" / "not reproduced")
    pass_verdict   the verdict when the rule holds ("reproduced" or "reproduced qualitatively")
    fail_verdict   the verdict when it does not ("not reproduced", "refuted" or "corrected")
    fail_rule      optional: ``fail_verdict`` applies only when this holds too (the counterexample
                   is exhibited, the corrected statement checked), else "not reproduced"

  bookkeeping
    registered     "pre" (default: the rule was written before the measurement) | "post-hoc"
    corrects       for a post-hoc correction: the id of the original claim (which keeps its own
                   verdict under its own rule)
    [[claim.revision]]   a rule changed after a measurement was seen: date, old_rule, new_rule,
                   reason (and optionally old_scale/new_scale); the report marks the verdict
                   "rule revised after measurement"
    expected_verdict, note, test, notebook   the verdict expected when the claim was registered
                   (paper/polystep_reconstruction.md, paper/ghosts_notes.md), an explanation,
                   the pytest node
"""

from __future__ import annotations

import ast
import difflib
import inspect
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .scale import SCALES, scale_rank

CLAIMS_FILE = Path(__file__).resolve().parent.parent / "paper" / "claims.toml"
PAPERS = ("polystep", "ghosts")
COMPARISONS = ("abs", "rel", "at_least", "at_most", "qualitative")
INDICATIVE = "indicative (below registered scale)"
VERDICTS = ("reproduced", "reproduced qualitatively", "not reproduced", "refuted", "corrected",
            INDICATIVE, "not run at this scale", "not implemented yet")
PASS_VERDICTS = ("reproduced", "reproduced qualitatively")
FAIL_VERDICTS = ("not reproduced", "refuted", "corrected")
REVISED = "rule revised after measurement"


@dataclass(frozen=True)
class Revision:
    """A rule changed after a measurement was seen (``[[claim.revision]]``)."""

    date: str
    reason: str
    old_rule: str = ""
    new_rule: str = ""
    old_scale: str = ""
    new_scale: str = ""


@dataclass(frozen=True)
class Claim:
    id: str
    paper: str
    source: str
    statement: str
    experiment: str
    scale: str
    paper_value: Any = None
    tolerance: float | None = None
    comparison: str = "qualitative"
    rule: str = ""
    criterion: str = ""
    pass_verdict: str = "reproduced"
    fail_verdict: str = "not reproduced"
    fail_rule: str = ""
    registered: str = "pre"
    corrects: str = ""
    revision: tuple[Revision, ...] = ()
    expected_verdict: str | None = None
    note: str = ""
    test: str = ""
    notebook: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def rule_text(self) -> str:
        """The rule as one readable expression (a numeric comparison spelled out)."""
        if self.rule:
            return self.rule
        if self.comparison == "qualitative":
            return ""
        pv, tol = self.paper_value, self.tolerance
        return {"abs": f"abs(value - {pv}) <= {tol}",
                "rel": f"abs(value - {pv}) <= {tol} * abs({pv})",
                "at_least": f"value >= {pv} - {tol}",
                "at_most": f"value <= {pv} + {tol}"}[self.comparison]

    @property
    def revised(self) -> bool:
        return bool(self.revision)


def _parse(entry: dict, where: str) -> Claim:
    known = {f for f in Claim.__dataclass_fields__ if f != "extra"}
    missing = [k for k in ("id", "paper", "source", "statement", "experiment", "scale") if k not in entry]
    if missing:
        raise ValueError(f"{where}: claim {entry.get('id', '?')} lacks {missing}")
    args = {k: v for k, v in entry.items() if k in known}
    args["extra"] = {k: v for k, v in entry.items() if k not in known}
    cid = args["id"]
    revisions = entry.get("revision", [])
    if isinstance(revisions, dict):
        revisions = [revisions]
    try:
        args["revision"] = tuple(Revision(**r) for r in revisions)
    except TypeError as err:
        raise ValueError(f"{where}: claim {cid}: bad [[claim.revision]] ({err}); keys: date, "
                         "reason, old_rule, new_rule, old_scale, new_scale") from err
    if "comparison" not in args and not args.get("rule"):
        numeric = isinstance(args.get("paper_value"), (int, float)) and not isinstance(args.get("paper_value"), bool)
        args["comparison"] = "abs" if numeric and args.get("tolerance") is not None else "qualitative"
    claim = Claim(**args)
    if claim.paper not in PAPERS:
        raise ValueError(f"{where}: claim {cid}: paper must be one of {PAPERS}")
    if not cid.startswith(claim.paper + "."):
        raise ValueError(f"{where}: claim id {cid} must start with '{claim.paper}.'")
    if claim.scale not in SCALES:
        raise ValueError(f"{where}: claim {cid}: scale must be one of {SCALES}")
    if claim.comparison not in COMPARISONS:
        raise ValueError(f"{where}: claim {cid}: comparison must be one of {COMPARISONS}")
    if claim.rule and claim.comparison != "qualitative" and "comparison" in entry:
        raise ValueError(f"{where}: claim {cid}: give either a rule or a comparison, not both")
    if claim.comparison != "qualitative" and (claim.tolerance is None or
                                             not isinstance(claim.paper_value, (int, float))):
        raise ValueError(f"{where}: claim {cid}: a numeric comparison needs a numeric "
                         "paper_value and a tolerance")
    for expr in (claim.rule, claim.fail_rule):
        if expr:
            try:
                _check_expression(expr)
            except ValueError as err:
                raise ValueError(f"{where}: claim {cid}: {err}") from None
    if claim.pass_verdict not in PASS_VERDICTS:
        raise ValueError(f"{where}: claim {cid}: pass_verdict must be one of {PASS_VERDICTS}")
    if claim.fail_verdict not in FAIL_VERDICTS:
        raise ValueError(f"{where}: claim {cid}: fail_verdict must be one of {FAIL_VERDICTS}")
    if claim.registered not in ("pre", "post-hoc"):
        raise ValueError(f"{where}: claim {cid}: registered must be 'pre' or 'post-hoc'")
    if claim.corrects and claim.registered != "post-hoc":
        raise ValueError(f"{where}: claim {cid}: a correction of another claim is registered post-hoc")
    if claim.expected_verdict is not None and claim.expected_verdict not in VERDICTS:
        raise ValueError(f"{where}: claim {cid}: expected_verdict must be one of {VERDICTS}")
    return claim


@lru_cache(maxsize=4)
def _load_cached(path: str, text: str) -> dict[str, Claim]:
    data = tomllib.loads(text)
    claims: dict[str, Claim] = {}
    for i, entry in enumerate(data.get("claim", [])):
        claim = _parse(entry, f"{path}[claim {i}]")
        if claim.id in claims:
            raise ValueError(f"{path}: duplicate claim id {claim.id}")
        claims[claim.id] = claim
    for c in claims.values():
        if c.corrects and c.corrects not in claims:
            raise ValueError(f"{path}: claim {c.id} corrects unknown claim {c.corrects}")
    return claims


def load_claims(path: Path = CLAIMS_FILE) -> dict[str, Claim]:
    """All claims of ``path`` by id (ids must be unique); re-read when the file changes."""
    path = Path(path)
    return dict(_load_cached(str(path), path.read_text()))


def get_claim(claim_id: str) -> Claim:
    """The registered claim ``claim_id``; an unknown id names the three closest ids."""
    claims = load_claims()
    if claim_id not in claims:
        close = difflib.get_close_matches(claim_id, list(claims), n=3, cutoff=0.0)
        raise KeyError(f"unknown claim {claim_id!r}; closest: {', '.join(close)}")
    return claims[claim_id]


def claims_of(experiment_id: str) -> tuple[str, ...]:
    """The ids of the claims ``experiment_id`` measures, in registry order."""
    return tuple(c.id for c in load_claims().values() if c.experiment == experiment_id)


# ------------------------------------------------------------------------------------------------
# rules: a small, safe expression language
# ------------------------------------------------------------------------------------------------

_FUNCS = {"abs": abs, "min": min, "max": max, "all": all, "any": any, "len": len, "sum": sum,
          "isfinite": math.isfinite}
_NODES = (ast.Expression, ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd,
          ast.BinOp, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Mod, ast.FloorDiv,
          ast.Compare, ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.In, ast.NotIn,
          ast.Constant, ast.Name, ast.Load, ast.Store, ast.Attribute, ast.Subscript, ast.Call,
          ast.List, ast.Tuple, ast.GeneratorExp, ast.comprehension, ast.IfExp)


def _check_expression(expr: str) -> ast.Expression:
    """Parse ``expr`` and refuse anything but arithmetic, comparisons, boolean logic, the names
    ``value``/``evidence``/``params``/``paper_value``/``tolerance``/comprehension variables, public attribute
    access and the functions abs min max all any len sum isfinite."""
    try:
        tree = ast.parse(expr, mode="eval")
    except SyntaxError as err:
        raise ValueError(f"rule {expr!r} is not an expression ({err.msg})") from None
    for node in ast.walk(tree):
        if not isinstance(node, _NODES):
            raise ValueError(f"rule {expr!r}: {type(node).__name__} is not allowed in a rule")
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise ValueError(f"rule {expr!r}: private attribute {node.attr!r}")
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in _FUNCS):
            raise ValueError(f"rule {expr!r}: only {sorted(_FUNCS)} may be called")
    return tree


class _Evidence:
    """``evidence.<name>``: attribute access into a measurement's evidence dict, loud when absent."""

    def __init__(self, data: dict, claim_id: str, kind: str = "evidence"):
        self._data, self._claim_id, self._kind = data, claim_id, kind

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._data:
            where = "measurement" if self._kind == "evidence" else "claim's registry entry"
            raise ValueError(f"claim {self._claim_id}: the rule needs {self._kind}.{name}, which the "
                             f"{where} does not give (it gives {sorted(self._data)})")
        return self._data[name]


def evaluate_rule(expr: str, measurement: dict, claim: Claim | None = None) -> bool:
    """Evaluate the rule ``expr`` on a measurement: names ``value``, ``evidence`` (attribute access
    to ``measurement["evidence"]``), ``paper_value`` and ``tolerance`` (the claim's) and ``params``
    (attribute access to the claim's other registry keys, e.g. ``params.min_accuracy``: a threshold
    that a plot also draws is written once)."""
    tree = _check_expression(expr)
    cid = claim.id if claim else "?"
    env = {"__builtins__": {}, "value": measurement.get("value"), "evidence": _Evidence(measurement.get("evidence") or {}, cid),
           "params": _Evidence(claim.extra if claim else {}, cid, "params"),
           "paper_value": claim.paper_value if claim else None,
           "tolerance": claim.tolerance if claim else None, "True": True, "False": False,
           "nan": math.nan, "inf": math.inf, "pi": math.pi, **_FUNCS}
    try:
        # one namespace as globals, so generator expressions see the names too
        result = eval(compile(tree, f"<rule of {cid}>", "eval"), env)  # noqa: S307
    except ValueError:
        raise
    except Exception as err:  # a rule that cannot be evaluated on this measurement is a defect
        raise ValueError(f"claim {cid}: rule {expr!r} failed on the measurement: "
                         f"{type(err).__name__}: {err}") from err
    return bool(result)


def holds(claim: Claim, measurement: dict) -> bool:
    """Whether the claim's registered rule holds on ``measurement`` (no scale rule)."""
    if claim.rule:
        return evaluate_rule(claim.rule, measurement, claim)
    if claim.comparison == "qualitative":
        raise ValueError(f"claim {claim.id}: no rule registered (give `rule` or comparison + "
                         "tolerance in paper/claims.toml)")
    value = measurement.get("value")
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        raise ValueError(f"claim {claim.id}: the {claim.comparison} comparison needs a numeric "
                         f"value, got {value!r}")
    pv, tol = float(claim.paper_value), float(claim.tolerance)
    return {"abs": abs(value - pv) <= tol, "rel": abs(value - pv) <= tol * abs(pv),
            "at_least": value >= pv - tol, "at_most": value <= pv + tol}[claim.comparison]


def verdict(claim: Claim, measurement: dict | None) -> str:
    """The verdict of ``claim``'s registered rule on ``measurement`` (ignoring the scale rule: see
    :func:`judge`). A measurement that carries its own verdict is refused."""
    if measurement is None:
        return "not run at this scale"
    if "verdict" in measurement:
        raise ValueError(f"claim {claim.id}: a measurement carries no verdict (the registry's rule "
                         f"decides); got verdict={measurement['verdict']!r}")
    if holds(claim, measurement):
        return claim.pass_verdict
    if claim.fail_verdict != "not reproduced" and claim.fail_rule:
        return claim.fail_verdict if evaluate_rule(claim.fail_rule, measurement, claim) else "not reproduced"
    return claim.fail_verdict


@dataclass(frozen=True)
class Judgement:
    """A claim's verdict from one run: the rule's verdict, or *indicative* below the claim's scale."""

    verdict: str
    value: Any = None
    detail: str = ""
    scale: str = ""
    rule_verdict: str = ""  # what the rule says even when the scale forbids a verdict
    revised: bool = False

    @property
    def label(self) -> str:
        return self.verdict + (f" ({REVISED})" if self.revised and self.verdict != INDICATIVE else "")


def judge(claim: Claim, measurement: dict | None, scale: str) -> Judgement:
    """The one place the scale rule lives: a run at ``scale`` below ``claim.scale`` gives an
    *indicative* number and no verdict; at or above it, the registered rule decides."""
    if measurement is None:
        return Judgement("not run at this scale", scale=scale)
    rule_says = verdict(claim, measurement)
    below = scale_rank(scale) < scale_rank(claim.scale)
    return Judgement(INDICATIVE if below else rule_says, measurement.get("value"),
                     measurement.get("detail", ""), scale, rule_says, claim.revised)


# ------------------------------------------------------------------------------------------------
# measuring functions: one per claim
# ------------------------------------------------------------------------------------------------

#: claim id -> measuring function ``fn(results) -> measurement`` (filled by :func:`claim`)
MEASURES: dict[str, Callable[[dict], dict]] = {}
#: claim id -> the function that holds the computation, when the registered one only reads it
ORIGINS: dict[str, Callable] = {}


def claim(claim_id: str, *, origin: Callable | None = None):
    """Register the decorated ``fn(results) -> {"value", "detail", "evidence"}`` as the one
    measuring function of ``claim_id`` (grep the id to find it)."""

    def deco(fn):
        previous = MEASURES.get(claim_id)
        if previous is not None and (previous.__module__, previous.__qualname__) != (fn.__module__, fn.__qualname__):
            raise ValueError(f"claim {claim_id} already has a measuring function "
                             f"{previous.__module__}.{previous.__qualname__}")
        MEASURES[claim_id] = fn
        if origin is not None:
            ORIGINS[claim_id] = origin
        return fn

    return deco


def measuring_function(claim_id: str) -> Callable | None:
    """The registered measuring function of ``claim_id`` (its experiment module imported)."""
    c = get_claim(claim_id)
    if claim_id not in MEASURES:
        from . import registry

        if c.experiment in registry.experiment_ids():
            registry.get(c.experiment)
    return MEASURES.get(claim_id)


def source_location(claim_id: str) -> str | None:
    """``file:line`` (relative to the repository) of the code that measures ``claim_id``."""
    fn = measuring_function(claim_id)
    if fn is None:
        return None
    fn = ORIGINS.get(claim_id, fn)
    fn = inspect.unwrap(fn)
    path = Path(inspect.getsourcefile(fn)).resolve()
    line = inspect.getsourcelines(fn)[1]
    try:
        path = path.relative_to(CLAIMS_FILE.parent.parent)
    except ValueError:
        pass
    return f"{path.as_posix()}:{line}"


def check_measurement(claim_id: str, m: Any) -> dict:
    """Validate one measuring function's output: a dict with ``value``, optional ``detail`` (str)
    and ``evidence`` (dict), and no ``verdict``."""
    if not isinstance(m, dict) or "value" not in m:
        raise TypeError(f"claim {claim_id}: a measurement is a dict with a 'value', got {m!r}")
    if "verdict" in m:
        raise TypeError(f"claim {claim_id}: measurements carry no verdict; the rule in "
                        "paper/claims.toml decides")
    unknown = set(m) - {"value", "detail", "evidence"}
    if unknown:
        raise TypeError(f"claim {claim_id}: unknown measurement keys {sorted(unknown)}")
    if not isinstance(m.get("evidence", {}), dict):
        raise TypeError(f"claim {claim_id}: evidence must be a dict")
    return m


def measure(experiment_id: str, results: dict) -> dict[str, dict]:
    """Every claim of ``experiment_id`` measured from its results: ``{claim_id: measurement}``.

    Each registered claim of the experiment needs a measuring function; a function may return
    ``None`` when the run cannot measure the claim (e.g. a larger scale's sweep is absent).
    """
    from . import registry

    registry.get(experiment_id)
    out = {}
    for cid in claims_of(experiment_id):
        fn = MEASURES.get(cid)
        if fn is None:
            raise LookupError(f"claim {cid} of experiment {experiment_id} has no @claim measuring "
                              "function")
        m = fn(results)
        if m is not None:
            out[cid] = check_measurement(cid, m)
    return out
