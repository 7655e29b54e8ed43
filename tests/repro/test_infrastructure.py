"""The reproduction machinery: storage, seeds, caching/resume, verdicts, report, CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from repro import claims, cli, report, runner, storage
from repro.claims import Claim, verdict
from repro.context import RunContext
from repro.device import resolve_device
from repro.scale import check_scale, scale_rank


def test_storage_round_trip_with_arrays_and_specials(tmp_path: Path) -> None:
    data = {"a": np.arange(6.0).reshape(2, 3), "b": [1, 2.5, "x", None, True],
            "c": {"nested": np.array([1, 2], dtype=np.int64), "inf": math.inf},
            "t": torch.tensor([0.5, 1.5]), "scalar": np.float64(3.0)}
    storage.save(tmp_path / "r.json", data)
    back = storage.load(tmp_path / "r.json")
    np.testing.assert_array_equal(back["a"], data["a"])
    np.testing.assert_array_equal(back["c"]["nested"], [1, 2])
    np.testing.assert_array_equal(back["t"], [0.5, 1.5])
    assert back["b"] == [1, 2.5, "x", None, True] and back["c"]["inf"] == math.inf
    assert back["scalar"] == 3.0
    assert not list(tmp_path.glob(".*tmp"))  # no temporary left behind


def test_storage_rejects_unknown_objects(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="cannot store object of type object at /x"):
        storage.save(tmp_path / "r.json", {"x": object()})


def test_child_seeds_are_stable_and_distinct() -> None:
    a, b = RunContext(seed=3), RunContext(seed=3)
    assert a.child_seed("init", 0) == b.child_seed("init", 0)
    assert a.child_seed("init", 0) != a.child_seed("init", 1) != RunContext(seed=4).child_seed("init", 1)
    assert 0 <= a.child_seed("x") < 2**63
    g1, g2 = a.torch_generator("g"), b.torch_generator("g")
    assert torch.equal(torch.rand(4, generator=g1), torch.rand(4, generator=g2))
    assert "init/0" in a.seeds_used


def test_a_stored_cell_resumes_and_restores_eval_counts(tmp_path: Path) -> None:
    from repro.cells import Cell
    from tests.repro import _cell_toys

    calls = _cell_toys.CALL_LOGS.setdefault("infrastructure", [])
    cell = Cell("u0", _cell_toys.fake_unit, ("infrastructure", 0, 3))
    ctx = RunContext(checkpoint_dir=tmp_path)
    first = ctx.map([cell])[0]
    ctx2 = RunContext(checkpoint_dir=tmp_path)  # a rerun after an interruption
    second = ctx2.map([cell])[0]
    assert calls == [0] and ctx2.forward_evals == 10 and ctx2.resumed_units == 1
    assert ctx2.seeds_used == ctx.seeds_used
    np.testing.assert_array_equal(first["x"], second["x"])


def test_scale_and_device_validation() -> None:
    assert check_scale("ci") == "ci" and scale_rank("paper") == 2
    with pytest.raises(ValueError, match="scale must be one of"):
        check_scale("huge")
    assert resolve_device("cpu").type == "cpu"
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="torch.cuda.is_available"):
            resolve_device("cuda")


def _claim(**kw) -> Claim:
    base = dict(id="polystep.x", paper="polystep", source="T", statement="s", experiment="e", scale="ci")
    return Claim(**(base | kw))


def test_verdict_rules() -> None:
    c = _claim(paper_value=96.0, tolerance=0.5, comparison="abs")
    assert verdict(c, {"value": 96.4}) == "reproduced"
    assert verdict(c, {"value": 95.0}) == "not reproduced"
    assert verdict(c, None) == "not run at this scale"
    with pytest.raises(ValueError, match="carries no verdict"):  # the registry decides, not the code
        verdict(c, {"value": 1.0, "verdict": "refuted"})
    assert verdict(_claim(paper_value=100.0, tolerance=0.1, comparison="rel"), {"value": 109.0}) == "reproduced"
    assert verdict(_claim(paper_value=6300, tolerance=0, comparison="at_least"), {"value": 6299}) == "not reproduced"
    assert verdict(_claim(paper_value=1.2, tolerance=0, comparison="at_most"), {"value": 1.1}) == "reproduced"
    with pytest.raises(ValueError, match="no rule registered"):
        verdict(_claim(), {"value": 1.0})


def test_claims_file_validation(tmp_path: Path) -> None:
    good = tmp_path / "c.toml"
    good.write_text('[[claim]]\nid = "ghosts.a"\npaper = "ghosts"\nsource = "Thm 1"\nstatement = "s"\n'
                    'experiment = "e"\nscale = "cpu"\npaper_value = 1.0\ntolerance = 0.1\nfoo = 3\n')
    loaded = claims.load_claims(good)
    assert loaded["ghosts.a"].comparison == "abs" and loaded["ghosts.a"].extra == {"foo": 3}
    bad = tmp_path / "b.toml"
    bad.write_text(good.read_text().replace('id = "ghosts.a"', 'id = "polystep.a"'))
    with pytest.raises(ValueError, match="must start with 'ghosts.'"):
        claims.load_claims(bad)
    dup = tmp_path / "d.toml"
    dup.write_text(good.read_text() * 2)
    with pytest.raises(ValueError, match="duplicate claim id ghosts.a"):
        claims.load_claims(dup)
    numeric = tmp_path / "n.toml"
    numeric.write_text(good.read_text().replace("paper_value = 1.0", 'paper_value = "one"\ncomparison = "abs"'))
    with pytest.raises(ValueError, match="numeric comparison needs a numeric paper_value"):
        claims.load_claims(numeric)
    listed = tmp_path / "l.toml"  # a list-valued claim: a rule over its evidence decides
    listed.write_text(good.read_text().replace("paper_value = 1.0", "paper_value = [1.0, 2.0]"))
    assert claims.load_claims(listed)["ghosts.a"].comparison == "qualitative"


def test_registry_claims_file_loads() -> None:
    loaded = claims.load_claims()
    assert len(loaded) > 50
    assert all(c.scale in ("ci", "cpu", "paper") for c in loaded.values())


def test_report_from_sidecars(tmp_path: Path, monkeypatch) -> None:
    """The report is built from the cpu/paper sidecars: here the committed bench_step one alone."""
    figures = tmp_path / "figures"
    (figures / "cpu").mkdir(parents=True)
    committed = Path(__file__).resolve().parents[2] / "figures" / "cpu" / "bench_step.json"
    (figures / "cpu" / "bench_step.json").write_bytes(committed.read_bytes())
    monkeypatch.setenv("POLYSTEP_FIGURES_DIR", str(figures))
    text = report.build_report()
    assert "| verdict | claims |" in text
    assert "`polystep.bench_step_evals_per_step`" in text
    assert "not implemented yet" in text  # planned experiments are reported honestly
    assert "### bench_step" in text
    out = report.write_report(tmp_path / "REPORT.md")
    assert out.read_text() == text


def test_cli_list_run_plot_report(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setattr(report, "REPORT_FILE", tmp_path / "REPORT.md")
    assert cli.main(["list"]) == 0
    assert "quickstart_digits" in capsys.readouterr().out
    assert cli.main(["run", "bench_step", "--scale", "ci", "--device", "cpu"]) == 0
    assert "rank 4: evaluations/s:" in capsys.readouterr().out
    assert cli.main(["plot", "bench_step", "--scale", "ci", "--device", "cpu"]) == 0
    written = capsys.readouterr().out.split()
    assert any(w.endswith("bench_step.png") for w in written)
    assert cli.main(["run", "no_such_experiment", "--scale", "ci"]) == 2
    assert "unknown experiment" in capsys.readouterr().err
    assert cli.main(["report", "--seed", "0"]) == 0


def test_figures_are_byte_stable(tmp_path: Path) -> None:
    import matplotlib.pyplot as plt

    from repro.figures import save_figure, style

    paths = []
    for i in range(2):
        with style():
            fig, ax = plt.subplots()
            ax.plot([0, 1], [1, 0])
        paths.append(save_figure(fig, tmp_path / f"f{i}", {"seed": 0}))
        plt.close(fig)
    for a, b in zip(paths[0][:2], paths[1][:2]):
        assert a.read_bytes() == b.read_bytes(), a.suffix
    assert json.loads(paths[0][2].read_text()) == {"seed": 0}
