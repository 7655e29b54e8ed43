"""Write ``paper/REPORT.md``: paper value beside reproduced value, verdict and command, per claim."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from . import registry, runner, storage
from .claims import INDICATIVE, REVISED, Claim, judge, load_claims, verdict

REPORT_FILE = runner.REPO_ROOT / "paper" / "REPORT.md"
PAPER_TITLES = {
    "polystep": "PolyStep: Training Non-Differentiable Networks via Optimal Transport (arXiv 2605.01928)",
    "ghosts": "Ghosts of Softmax: Complex Singularities That Limit Safe Step Sizes (arXiv 2603.13552)",
}


def _fmt(value) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value).replace("|", "\\|").replace("\n", " ")


#: scales whose artefacts are committed and make the report; a ``ci`` run (tests, notebooks) never does
REPORT_SCALES = ("cpu", "paper")


def read_sidecar(path: Path) -> dict:
    """A figure sidecar (json), with an error that names the file if it cannot be read."""
    try:
        found = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise storage.StorageError(f"{path}: unreadable sidecar ({err})") from err
    if not isinstance(found, dict) or "meta" not in found or "measurements" not in found:
        raise storage.StorageError(f"{path}: not a sidecar (no 'meta' / 'measurements')")
    return found


def find_result(experiment_id: str, seed: int = 0) -> dict | None:
    """The sidecar of ``experiment_id``'s largest-scale committed run (cpu or paper) with root seed
    ``seed``, else ``None``.

    The report is built from the sidecars alone -- the files a clone has -- so ``polystep-repro
    report`` on a fresh clone reproduces the committed report byte for byte, and a local results
    cache or a ``ci`` run cannot change it.
    """
    registry.get(experiment_id)  # unknown ids fail loudly
    for scale in reversed(REPORT_SCALES):
        path = runner.figure_dir(scale, seed) / f"{experiment_id}.json"
        if path.exists():
            found = read_sidecar(path)
            meta = found["meta"]
            if meta.get("scale") != scale or int(meta.get("seed", 0)) != seed:
                raise storage.StorageError(f"{path}: holds a scale={meta.get('scale')} "
                                           f"seed={meta.get('seed')} result in the {scale} "
                                           f"folder for seed {seed}")
            return found
    return None


def made_from_dirty_tree(meta: dict) -> bool:
    """Whether a run's metadata says it ran on a working tree with uncommitted changes (its git
    sha ends in ``-dirty``): the exact code that made it cannot be checked out again."""
    return str(meta.get("git_sha", "")).endswith("-dirty")


def claim_row(claim: Claim, found: dict | None, implemented: bool, seed: int = 0) -> dict:
    """One report row: the verdict of ``claim`` from the sidecar ``found`` (scale rule included,
    :func:`repro.claims.judge`), its value, detail, scale and the command that made it."""
    if not implemented:
        return {"verdict": "not implemented yet", "value": None, "scale": "–", "command": "–"}
    if found is None:  # the command that would make the report's row: a cpu run at least
        scale = claim.scale if claim.scale in REPORT_SCALES else REPORT_SCALES[0]
        return {"verdict": "not run at this scale", "value": None, "scale": "–",
                "command": runner.command_line(claim.experiment, scale, seed)}
    meta = found["meta"]
    m = found["measurements"].get(claim.id)
    j = judge(claim, m, meta["scale"])
    return {"verdict": j.label, "value": j.value, "detail": j.detail,
            "rule_verdict": j.rule_verdict if j.verdict == INDICATIVE else "",
            "scale": meta["scale"] + (" (dirty tree)" if made_from_dirty_tree(meta) else ""),
            "command": meta.get("command", "")}


LEGEND = (
    "Verdicts come from each claim's rule registered in `paper/claims.toml` (shown in the *rule* "
    "column: a comparison with the paper value, or an expression over the measured `value` and "
    "`evidence`), applied by `repro.claims` to the measurement in the sidecar: *reproduced* (the "
    "rule holds), *reproduced qualitatively* (the rule, registered as qualitative, holds: the effect "
    "is there, the number is not comparable), *not reproduced*, *refuted* (a counterexample is "
    "exhibited), *corrected* (the paper's statement fails and the registered correction holds), "
    f"*{INDICATIVE}* (the run is below the claim's registered scale: its number is shown, no verdict "
    "is given; the rule's outcome at that scale is in brackets), *not run at this scale*, *not "
    f"implemented yet*. *({REVISED})*: the claim's rule was changed after a measurement was seen "
    "(see *Rule revisions*); *post-hoc*: a claim registered after its measurement was seen (a "
    "correction of the claim it names). A scale marked *(dirty tree)* comes from a run on a "
    "working tree with uncommitted changes (its sidecar's git sha ends in `-dirty`). "
    "`polystep-repro claim ID` prints everything about one claim.")


RUNS_LEGEND = (
    "The run behind each experiment's rows, from its sidecar: its wall time, the compute time of "
    "its cells summed over the workers that computed them (so above the wall time when cells ran "
    "in parallel; cells loaded from an earlier, interrupted run are not counted), where the cells "
    "were computed (`in-process`, `process-pool` or `dask`, with the number of workers), the fixed "
    "intra-op thread count, and the commit.")


def _cells_compute(meta: dict) -> str:
    value = meta.get("cells_compute_s")
    return "–" if not value else f"{float(value):.1f}"  # older sidecars, or no cells


def run_row(experiment_id: str, meta: dict) -> str:
    """One row of the report's *Runs* table."""
    executor = meta.get("executor", "in-process")
    workers = int(meta.get("workers", 1))
    where = executor if workers == 1 else f"{executor} ({workers})"
    return (f"| `{experiment_id}` | {meta['scale']} | {float(meta['wall_time_s']):.1f} | "
            f"{_cells_compute(meta)} | {where} | "
            f"{meta.get('torch_threads', '?')} | `{str(meta.get('git_sha', 'unknown'))[:12]}` |")


def build_report(seed: int = 0) -> str:
    claims = load_claims()
    known = set(registry.experiment_ids())
    found = {e: find_result(e, seed) for e in sorted({c.experiment for c in claims.values()} & known)}
    lines = ["# Reproduction report" + (f" (root seed {seed})" if seed else ""), "",
             "Generated by `polystep-repro report"  + (f" --seed {seed}" if seed else "") + "` from "
             "the figure sidecars of the cpu- and paper-scale runs (`figures/cpu/`, `figures/paper/`"
             + (f", subfolders `seed{seed}/`" if seed else "") + "). Every number below was "
             "measured by the command in its row; the paper values and rules come from "
             "`paper/claims.toml`.", "", LEGEND, ""]
    rows = {c.id: claim_row(c, found.get(c.experiment), c.experiment in known, seed)
            for c in claims.values()}
    counts = Counter(r["verdict"] for r in rows.values())
    lines += ["| verdict | claims |", "|---|---|"]
    lines += [f"| {v} | {n} |" for v, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    for paper, title in PAPER_TITLES.items():
        lines += ["", f"## {title}", "",
                  "| claim | source | statement | paper | rule | reproduced | verdict | scale | command |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for c in claims.values():
            if c.paper != paper:
                continue
            r = rows[c.id]
            value = _fmt(r["value"]) + (f" ({_fmt(r['detail'])})" if r.get("detail") else "")
            shown = r["verdict"] + (f" [rule: {r['rule_verdict']}]" if r.get("rule_verdict") else "")
            name = f"`{c.id}`" + (f" (post-hoc, corrects `{c.corrects}`)" if c.corrects else
                                  " (post-hoc)" if c.registered == "post-hoc" else "")
            rule = f"`{_fmt(c.rule_text)}`" if c.rule_text else "–"
            lines.append(f"| {name} | {_fmt(c.source)} | {_fmt(c.statement)} | {_fmt(c.paper_value)} "
                         f"| {rule} | {value} | {shown} | {r['scale']} | `{r['command']}` |")
        notes = [c for c in claims.values() if c.paper == paper and c.note]
        if notes:
            lines += ["", "Notes:", ""]
            lines += [f"- `{c.id}`: {c.note.strip()}" for c in notes]
        revised = [c for c in claims.values() if c.paper == paper and c.revision]
        if revised:
            lines += ["", "Rule revisions (changed after a measurement was seen):", ""]
            for c in revised:
                for rev in c.revision:
                    change = "; ".join(x for x in (
                        f"rule `{_fmt(rev.old_rule)}` -> `{_fmt(rev.new_rule)}`" if rev.old_rule or rev.new_rule else "",
                        f"scale {rev.old_scale} -> {rev.new_scale}" if rev.old_scale or rev.new_scale else "") if x)
                    lines.append(f"- `{c.id}` ({rev.date}): {change}. {_fmt(rev.reason.strip())}")
    lines += ["", "## Runs", "", RUNS_LEGEND, "",
              "| experiment | scale | wall s | cells' compute s | executor | threads | commit |", "|---|---|---|---|---|---|---|"]
    lines += [run_row(eid, f["meta"]) for eid, f in sorted(found.items()) if f]
    sections = [f["report_section"].rstrip() for f in found.values() if f and f.get("report_section")]
    if sections:
        lines += ["", "## Measurements", ""] + ["\n\n".join(sections)]
    return "\n".join(lines) + "\n"


def report_path(seed: int = 0) -> Path:
    """``paper/REPORT.md`` for the root seed 0, ``paper/REPORT-seed<N>.md`` for another seed."""
    return REPORT_FILE if seed == 0 else REPORT_FILE.with_name(f"REPORT-seed{seed}.md")


def write_report(path: Path | None = None, seed: int = 0) -> Path:
    """Write the report to ``path`` (default :func:`report_path`, looked up at call time)."""
    path = report_path(seed) if path is None else Path(path)
    storage.atomic_write_text(path, build_report(seed))
    return path


def figures_index_path(seed: int = 0) -> Path:
    return runner.figures_dir() / ("README.md" if seed == 0 else f"README-seed{seed}.md")


def write_figures_index(seed: int = 0) -> Path:
    """Write :func:`figures_index` to ``figures/README.md`` (``README-seed<N>.md`` for seed N)."""
    target = figures_index_path(seed)
    storage.atomic_write_text(target, figures_index(seed))
    return target


def figures_index(seed: int = 0) -> str:
    """The figures index: every experiment with its figures and table per scale, and its command."""
    root = runner.figures_dir()
    lines = ["# Figures" + (f" (root seed {seed})" if seed else ""), "",
             "Regenerated by `make reproduce` (or `polystep-repro run ID --scale S`); one folder per "
             "scale, so a run at one scale never overwrites another's files (`ci/`, what the tests and "
             "notebooks make, is not committed). Each PNG has a PDF twin and a json sidecar with the "
             "metadata (seed, scale, device, versions, git sha, code fingerprint) and the claim "
             "measurements.", "", "| experiment | title | files | command |", "|---|---|---|---|"]
    for eid in registry.experiment_ids():
        module = registry.get(eid)
        links, scale_used = [], "cpu"
        for scale in REPORT_SCALES:
            folder = runner.figure_dir(scale, seed)
            names = sorted(p.name for p in folder.glob(f"{eid}*") if p.suffix in (".png", ".md")
                           and (p.stem == eid or p.stem.startswith(eid + "_")))
            if names:
                scale_used = scale
            rel = folder.relative_to(root).as_posix()
            links += [f"[{rel}/{name}]({rel}/{name})" for name in names]
        lines.append(f"| `{eid}` | {_fmt(module.TITLE)} | {', '.join(links) or '(not generated yet)'} | "
                     f"`{runner.command_line(eid, scale_used, seed)}` |")
    return "\n".join(lines) + "\n"


def measurement_table(measurements: dict) -> list[str]:
    """Markdown rows ``claim | measured | rule | rule's verdict | detail`` for an experiment's
    ``table()``; the verdict is the registered rule's (the report adds the scale rule)."""
    claims = load_claims()
    lines = ["| claim | measured | rule | rule's verdict | detail |", "|---|---|---|---|---|"]
    for cid, m in measurements.items():
        v = m["value"]
        if isinstance(v, float):
            shown = f"{v:.2e}" if v != 0 and abs(v) < 1e-3 else f"{v:.4g}"
        else:
            shown = str(v)
        c = claims.get(cid)
        rule = f"`{_fmt(c.rule_text)}`" if c is not None and c.rule_text else "–"
        lines.append(f"| `{cid}` | {_fmt(shown)} | {rule} | {verdict(c, m) if c is not None else '–'} "
                     f"| {_fmt(m.get('detail', ''))} |")
    return lines
