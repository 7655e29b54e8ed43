"""The verdict machinery: registered rules, the scale rule, revisions, post-hoc claims, the
``@claim`` measuring functions and ``polystep-repro claim``."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import pytest

from repro import claims, cli, registry
from repro.claims import INDICATIVE, REVISED, Claim, evaluate_rule, judge, load_claims, verdict

ROOT = Path(__file__).resolve().parents[2]
HEAD = 'paper = "ghosts"\nsource = "Thm 1"\nstatement = "s"\nexperiment = "e"\n'


def _claim(**kw) -> Claim:
    base = dict(id="polystep.x", paper="polystep", source="T", statement="s", experiment="e", scale="cpu")
    return Claim(**(base | kw))


def _toml(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "c.toml"
    path.write_text(body)
    return path


def test_rule_expressions_over_value_and_evidence() -> None:
    m = {"value": 0.3, "evidence": {"cells": [0.01, 0.2, 0.05], "found": True, "n": 4}}
    assert evaluate_rule("value <= 0.35", m)
    assert not evaluate_rule("max(evidence.cells) <= 0.1", m)
    assert evaluate_rule("all(e < 0.5 for e in evidence.cells) and evidence.found", m)
    assert evaluate_rule("sum(1 for e in evidence.cells if e <= 0.1) == 2", m)
    assert evaluate_rule("abs(value - paper_value) <= tolerance", m, _claim(paper_value=0.31, tolerance=0.02))
    assert evaluate_rule("isfinite(value) and evidence.n % 2 == 0", m)
    # names are visible inside generator expressions too
    assert evaluate_rule("all(isfinite(e) and abs(e - value) < evidence.n for e in evidence.cells)", m)
    assert evaluate_rule("any(e <= tolerance for e in evidence.cells)", m, _claim(tolerance=0.05))
    with pytest.raises(ValueError, match=r"needs evidence.missing.*gives \['cells', 'found', 'n'\]"):
        evaluate_rule("evidence.missing > 0", m)
    with pytest.raises(ValueError, match="failed on the measurement: TypeError"):
        evaluate_rule("value > 'a'", m)


@pytest.mark.parametrize("expr", ["__import__('os').system('true')", "open('x')", "(lambda: 1)()",
                                  "evidence.__class__", "value.__class__.__mro__", "[x for x in ()]",
                                  "value = 1", "evidence.cells.pop()"])
def test_rules_refuse_anything_but_arithmetic_and_logic(expr: str) -> None:
    with pytest.raises(ValueError):
        evaluate_rule(expr, {"value": 1.0, "evidence": {"cells": [1]}})


def test_pass_fail_and_fail_rule_verdicts() -> None:
    refuted = _claim(rule="evidence.counterexamples == 0", fail_verdict="refuted",
                     fail_rule="evidence.counterexamples > 0 and evidence.checked")
    assert verdict(refuted, {"value": 0, "evidence": {"counterexamples": 0, "checked": True}}) == "reproduced"
    assert verdict(refuted, {"value": 2, "evidence": {"counterexamples": 2, "checked": True}}) == "refuted"
    # the counterexample is not exhibited: a failed rule alone is no refutation
    assert verdict(refuted, {"value": 2, "evidence": {"counterexamples": 2, "checked": False}}) == "not reproduced"
    qualitative = _claim(rule="value > 0", pass_verdict="reproduced qualitatively")
    assert verdict(qualitative, {"value": 1.0}) == "reproduced qualitatively"
    assert verdict(qualitative, {"value": -1.0}) == "not reproduced"


def test_the_scale_rule_gives_indicative_numbers_below_the_registered_scale() -> None:
    c = _claim(paper_value=1.0, tolerance=0.1, comparison="abs", scale="paper")
    low = judge(c, {"value": 1.05}, "cpu")
    assert low.verdict == INDICATIVE and low.rule_verdict == "reproduced" and low.value == 1.05
    assert judge(c, {"value": 1.05}, "paper").verdict == "reproduced"
    assert judge(c, {"value": 2.0}, "paper").verdict == "not reproduced"
    assert judge(c, None, "paper").verdict == "not run at this scale"
    revised = _claim(rule="value > 0", scale="ci", revision=(claims.Revision(date="2026-12-03", reason="r"),))
    assert judge(revised, {"value": 1.0}, "cpu").label == f"reproduced ({REVISED})"


def test_registry_parses_rules_revisions_and_post_hoc_claims(tmp_path: Path) -> None:
    body = ('[[claim]]\nid = "ghosts.a"\n' + HEAD + 'scale = "cpu"\nrule = "value < 1"\n'
            'criterion = "below one"\n\n[[claim.revision]]\ndate = "2026-12-03"\nold_rule = "value < 0.5"\n'
            'new_rule = "value < 1"\nreason = "seen"\n\n'
            '[[claim]]\nid = "ghosts.b"\n' + HEAD + 'scale = "cpu"\nrule = "value < 0.5"\n'
            'registered = "post-hoc"\ncorrects = "ghosts.a"\n')
    loaded = load_claims(_toml(tmp_path, body))
    a, b = loaded["ghosts.a"], loaded["ghosts.b"]
    assert a.revised and a.revision[0].old_rule == "value < 0.5" and a.rule_text == "value < 1"
    assert b.corrects == "ghosts.a" and b.registered == "post-hoc" and not b.revised
    bad = {"corrects unknown claim": body.replace('corrects = "ghosts.a"', 'corrects = "ghosts.zz"'),
           "registered post-hoc": body.replace('registered = "post-hoc"\n', ""),
           "not allowed in a rule": body.replace('rule = "value < 1"', 'rule = "[x for x in evidence.a]"'),
           "pass_verdict must be": body.replace('criterion', 'pass_verdict = "refuted"\ncriterion'),
           "bad \\[\\[claim.revision\\]\\]": body.replace('reason = "seen"', 'why = "seen"')}
    for message, text in bad.items():
        with pytest.raises(ValueError, match=message):
            load_claims(_toml(tmp_path, text))


def test_measurements_carry_no_verdict() -> None:
    with pytest.raises(TypeError, match="carry no verdict"):
        claims.check_measurement("polystep.x", {"value": 1, "verdict": "reproduced"})
    with pytest.raises(TypeError, match="unknown measurement keys"):
        claims.check_measurement("polystep.x", {"value": 1, "note": ""})


def test_every_claim_of_an_implemented_experiment_has_one_measuring_function() -> None:
    for eid in registry.experiment_ids():
        registry.get(eid)
        for cid in claims.claims_of(eid):
            loc = claims.source_location(cid)
            assert loc, f"{cid} has no @claim measuring function"
            path, line = loc.rsplit(":", 1)
            text = (ROOT / path).read_text()
            assert cid in text, f"grepping {cid} does not find its measuring function's file {path}"
    stray = set(claims.MEASURES) - set(load_claims())
    assert not stray, f"@claim functions for unregistered ids: {sorted(stray)}"


def _numbers(node: ast.AST) -> set[float]:
    return {float(n.value) for n in ast.walk(node) if isinstance(n, ast.Constant)
            and isinstance(n.value, (int, float)) and not isinstance(n.value, bool)}


def test_no_experiment_or_test_holds_a_distinctive_paper_value() -> None:
    """Paper values live in paper/claims.toml only. A 'distinctive' value (three or more significant
    digits, e.g. 93.4, 0.624, 4000.5) written as a literal in an experiment or its test is a copy."""
    def distinctive(v: float) -> bool:
        digits = f"{abs(v):.10g}".replace(".", "").lstrip("0").rstrip("0")
        return math.isfinite(v) and len(digits) >= 3

    values = {}
    for c in load_claims().values():
        for v in (c.paper_value if isinstance(c.paper_value, list) else [c.paper_value]):
            if isinstance(v, (int, float)) and not isinstance(v, bool) and distinctive(float(v)):
                values.setdefault(float(v), c.id)
    files = sorted((ROOT / "repro" / "experiments").glob("*.py")) + sorted((ROOT / "tests" / "experiments").glob("*.py"))
    copies = []
    for path in files:
        for v in _numbers(ast.parse(path.read_text())) & set(values):
            copies.append(f"{path.relative_to(ROOT)}: {v} (paper value of {values[v]})")
    assert not copies, "paper values copied into code:\n" + "\n".join(copies)


def test_cli_claim_describes_every_registered_claim(capsys) -> None:
    for cid in load_claims():
        assert cli.main(["claim", cid]) == 0, cid
        out = capsys.readouterr().out
        assert out.startswith(cid) and "statement:" in out and "experiment:" in out, cid
    cid = "polystep.clarke_upgrade"
    assert cli.main(["claim", cid]) == 0
    out = capsys.readouterr().out
    for field in ("statement:", "scale:", "measured by:", "test:", "notebook:", "figures:", "committed:", "command:"):
        assert field in out, field
    assert "clarke_stationarity.py:" in out


def test_cli_claim_unknown_id_names_the_closest(capsys) -> None:
    assert cli.main(["claim", "polystep.clarke_upgrad"]) == 2
    err = capsys.readouterr().err
    assert "unknown claim 'polystep.clarke_upgrad'" in err and "polystep.clarke_upgrade" in err
    assert len(err.split("closest:")[1].split(",")) == 3
