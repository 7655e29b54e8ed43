"""``polystep-repro``: list, run, plot and report the experiments of the reproduction package.

Examples::

    polystep-repro list
    polystep-repro run quickstart_digits --scale ci
    polystep-repro run bench_step --scale cpu --device cpu
    polystep-repro plot quickstart_digits
    polystep-repro all --scale cpu --jobs 2 # every experiment (cells on 2 processes), then the report
    polystep-repro run ghosts_fig9 --executor dask:127.0.0.1:8786   # cells on a Dask cluster
    polystep-repro status --scale cpu       # result current / stale / missing; cells done / missing / failed
    polystep-repro report
    polystep-repro claim polystep.thm41_figure_kl_bound   # rule, code, test, value, verdict
    polystep-repro data fetch all           # MNIST, Fashion-MNIST, ETTh1 into the data cache
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import registry, report, runner
from .context import OverallProgress
from .device import DEVICE_CHOICES
from .scale import DEFAULT_SCALE, SCALES


def _add_run_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--scale", choices=SCALES, default=DEFAULT_SCALE,
                   help="ci: seconds; cpu: minutes on 2 cores (default); paper: the paper's sizes (GPU)")
    p.add_argument("--device", default="auto", help=f"one of {DEVICE_CHOICES} (default auto)")
    p.add_argument("--seed", type=int, default=0, help="root seed; every stream derives from it")
    p.add_argument("--force", action="store_true", help="recompute even if a cached result exists")
    p.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                   help="compute the experiments' cells in N local worker processes (default 1: in "
                        "this process)")
    p.add_argument("--executor", default="local", metavar="SPEC",
                   help="'local' (default; with --jobs) or 'dask:HOST:PORT', the address of a running "
                        "Dask distributed scheduler whose workers compute the cells")


def _jobs(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--jobs must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--jobs must be an integer >= 1, got {value}")
    return value


def _executor(args: argparse.Namespace):
    from .cells import make_executor

    return make_executor(jobs=args.jobs, executor=args.executor)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="polystep-repro", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the experiments and their claims")
    p_run = sub.add_parser("run", help="run one experiment (cached; resumes after interruption)")
    p_run.add_argument("id", help="experiment id (see `list`)")
    _add_run_args(p_run)
    p_plot = sub.add_parser("plot", help="redraw the figures of a cached result")
    p_plot.add_argument("id")
    p_plot.add_argument("--scale", choices=SCALES, default=DEFAULT_SCALE)
    p_plot.add_argument("--device", default="auto")
    p_plot.add_argument("--seed", type=int, default=0)
    p_all = sub.add_parser("all", help="run every experiment at one scale, then write the report")
    _add_run_args(p_all)
    p_all.add_argument("--skip", nargs="*", default=[], help="experiment ids to leave out")
    p_status = sub.add_parser("status", help="per experiment: result current / stale / missing, cells "
                                             "done / missing / failed (with the error's last line), "
                                             "compute time spent")
    p_status.add_argument("--scale", choices=SCALES, default=DEFAULT_SCALE)
    p_status.add_argument("--device", default="auto")
    p_status.add_argument("--seed", type=int, default=0)
    p_rep = sub.add_parser("report", help="write paper/REPORT.md (REPORT-seed<N>.md for --seed N) "
                                          "from the cpu/paper figure sidecars")
    p_rep.add_argument("--seed", type=int, default=0)
    p_claim = sub.add_parser("claim", help="everything about one claim: rule (and revisions), "
                                           "measuring function, test, notebook, figures, value, verdict")
    p_claim.add_argument("id", help="claim id, e.g. polystep.thm41_figure_kl_bound")
    p_claim.add_argument("--seed", type=int, default=0)
    _add_data_parser(sub)
    return parser


def _add_data_parser(sub) -> None:
    """``data fetch NAME... | all``, ``data list``, ``data where`` (an unknown NAME: exit 2)."""
    from .data import DATASETS

    p_data = sub.add_parser("data", help="the real data sets: fetch (verified, cached), list, where")
    data_sub = p_data.add_subparsers(dest="data_command", required=True)
    p_fetch = data_sub.add_parser("fetch", help="fetch data sets into the cache ($POLYSTEP_DATA or "
                                                "~/.cache/polystep-repro) and say where each came from")
    p_fetch.add_argument("names", nargs="+", choices=[*DATASETS, "all"], metavar="NAME",
                         help=f"{' | '.join(DATASETS)} | all")
    data_sub.add_parser("list", help="the data sets, their licences and whether they are cached")
    data_sub.add_parser("where", help="the cache folder")


def _data_command(args: argparse.Namespace) -> int:
    """Run a ``data`` subcommand; fetch prints where each data set came from."""
    from .data import DATASETS, cache_root, data_path, fetch, read_manifest

    if args.data_command == "where":
        print(cache_root())
    elif args.data_command == "list":
        for name, spec in DATASETS.items():
            manifest = read_manifest(spec)
            state = f"cached ({manifest.get('source')})" if manifest and data_path(spec).exists() else "not cached"
            print(f"{name:14s} {state}; licence {spec.licence}")
    else:
        names = list(DATASETS) if "all" in args.names else list(dict.fromkeys(args.names))
        for name in names:
            print(fetch(name))
    return 0


def cell_status(partial: Path) -> dict:
    """What an experiment's partial-results folder says about its cells (:mod:`repro.context`):
    ``declared`` (the keys of its ``map`` manifests; ``None`` when it has none), ``done`` (stored
    cells), ``failed`` (``{key: error's last line}``, cells that raised and are not stored since),
    ``missing`` (declared, neither done nor failed) and ``spent_s`` (the compute time of the done
    cells).  A folder that disappears while it is read (the run finishing) reads as empty."""
    import json

    from . import storage
    from .context import FAILED_SUFFIX, MANIFEST_SUFFIX

    partial = Path(partial)
    declared: list[str] | None = None
    for path in sorted(partial.glob(f"*{MANIFEST_SUFFIX}")):
        try:
            keys = json.loads(path.read_text())["keys"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        declared = list(dict.fromkeys((declared or []) + list(keys)))
    done, spent = [], 0.0
    for path in sorted(partial.glob("*.json")):
        try:
            spent += float(storage.load(path).get("compute_s", 0.0))
        except (storage.CorruptResultError, OSError):
            continue
        done.append(path.stem)
    failed = {}
    for path in sorted(partial.glob(f"*{FAILED_SUFFIX}")):
        if path.stem in done:
            continue
        try:
            text = path.read_text()
        except OSError:
            continue
        try:
            failed[path.stem] = json.loads(text)["error"]
        except (ValueError, KeyError, TypeError):  # an older record: the bare traceback
            lines = [line for line in text.strip().splitlines() if line.strip()]
            failed[path.stem] = lines[-1].strip() if lines else "?"
    missing = None if declared is None else [k for k in declared if k not in done and k not in failed]
    return {"declared": declared, "done": done, "failed": failed, "missing": missing, "spent_s": spent}


def _cells_text(cells: dict) -> str:
    """``N done, M missing, F failed (T s)`` for :func:`cell_status`'s answer."""
    missing = "?" if cells["missing"] is None else len(cells["missing"])
    return (f"{len(cells['done'])} done, {missing} missing, {len(cells['failed'])} failed "
            f"({cells['spent_s']:.1f}s spent)")


def _run_all(args: argparse.Namespace, overall) -> tuple[dict[str, float], str]:
    """Run every experiment not in ``--skip`` for ``all``: first those that share the executor,
    then the benchmarks that need a quiet machine (``NEEDS_QUIET_MACHINE``) alone, in this process.
    Returns the wall time of each and which executor ran the cells, with how many workers."""
    ids = [eid for eid in registry.experiment_ids() if eid not in args.skip]
    quiet = [eid for eid in ids if getattr(registry.get(eid), "NEEDS_QUIET_MACHINE", False)]
    walls: dict[str, float] = {}
    executor = _executor(args)
    try:
        for eid in [e for e in ids if e not in quiet]:
            walls[eid] = _run_one(args, eid, overall, executor)
        used = f"executor {getattr(executor, 'name', 'in-process')}, {executor.workers} worker(s)"
    finally:
        executor.close()
    for eid in quiet:
        walls[eid] = _run_one(args, eid, overall, None)
    return walls, used


def _run_one(args: argparse.Namespace, eid: str, overall, executor) -> float:
    """Run one experiment of ``all``, print its summary; returns its wall time (s)."""
    t0 = time.perf_counter()
    stored = runner.run_experiment(eid, scale=args.scale, device=args.device, seed=args.seed,
                                   force=args.force, executor=executor, overall=overall)
    wall = time.perf_counter() - t0
    _print_summary(eid, stored)
    return wall


def _hitting_time_cells(c) -> tuple[int, ...]:
    """hitting_time: one cell per grid cell, the stall cell, one per trajectory cell, the baselines."""
    grid = len(c.radial_dims) * len(c.radial_kinds) * len(c.radii) + len(c.separable_dims) * len(c.separable_radii)
    return (grid + 1 + len(c.traj_cells) + 1,)


def _thm41_cells(c) -> tuple[int, ...]:
    """thm41_one_sided_limit: the uniform and non-uniform random problems, the counterexample, one
    cell per row of its (eps, lam) grid and one per V of the barycentre-gap study."""
    uniform = len(c.P_values) * len(c.V_values) * len(c.eps_values) * c.draws
    return (uniform + len(c.nonuniform) + 1 + len(c.ce_grid_eps) + len(c.gap_V),)


#: the cells each experiment's ``run(cfg, ctx)`` declares, per ``ctx.map`` call, as a function of
#: its configuration (read from the experiments' ``run``; tests/repro/test_cells.py checks the first
#: call against the cells the experiments really declare at ci and cpu scale).  Experiments not
#: listed declare no cells: they run in one piece.
CELLS_PER_MAP_CALL = {
    "ablation_kronecker_basis": lambda c: (len(c.variants) * len(c.training.seeds),),
    "clarke_stationarity": lambda c: (4,),
    "ghosts_fig1_fig7": lambda c: (len(c.recipes) * len(c.seeds),),
    "ghosts_fig6": lambda c: (len(c.eta0s) * 2 * len(c.seeds),),  # plain, controller
    "ghosts_fig8": lambda c: (len(c.seeds) * (1 + len(c.lr_sweep)),),
    "ghosts_fig9": lambda c: (len(c.temperatures) * len(c.seeds),),
    "ghosts_table1_fig10": lambda c: (len(c.archs) * len(c.methods) * len(c.seeds),),
    "ghosts_table2_fig11": lambda c: (4 * len(c.seeds),),  # four modes
    "ghosts_table3_fig12": lambda c: ((len(c.etas) + len(c.r_targets)) * len(c.seeds), 1),  # + timing
    "hitting_time": _hitting_time_cells,
    "quickstart_digits": lambda c: (2 * len(c.seeds),),  # PolyStep, Adam
    "thm41_one_sided_limit": _thm41_cells,
    "thm42_rates": lambda c: (3,),
    "t1_nondiff_benchmarks": lambda c: (len(registry.get("t1_nondiff_benchmarks")._cells(c)),),  # its own list
    "t4_snn_memory": lambda c: (2 * len(c.timesteps),),  # forward-only, BPTT
    "t5_mnist_baselines": lambda c: (len(registry.get("t5_mnist_baselines")._cells(c)),),  # its own list
    "t6_etth1": lambda c: (len(c.methods) * len(c.seeds) + 1,),  # (method, seed) + the population benchmark
    "t7_rl_control": lambda c: (len(registry.get("t7_rl_control")._cells(c)),),  # its own list
    "apph_ablations": lambda c: (len(registry.get("apph_ablations")._cells(c)),),  # its own list
    "zo_lower_bound": lambda c: (len(c.methods) * len(c.dims),),  # (method, D)
    "t3_maxsat_scaling": lambda c: (len(registry.get("t3_maxsat_scaling")._cells(c)),),  # its own list
}


def cell_counts(scale: str = "paper") -> dict[str, tuple[int, ...]]:
    """The cells each experiment declares at ``scale``, per ``ctx.map`` call (:data:`CELLS_PER_MAP_CALL`
    applied to its configuration at that scale; ``()`` for an experiment without cells)."""
    return {eid: CELLS_PER_MAP_CALL[eid](registry.config(eid, scale)) if eid in CELLS_PER_MAP_CALL else ()
            for eid in registry.experiment_ids()}


def paper_cell_counts() -> dict[str, int]:
    """The number of cells of each experiment at paper scale (what a cluster run schedules; the
    table of README.md's "Paper scale on a SLURM cluster")."""
    return {eid: sum(calls) for eid, calls in cell_counts("paper").items()}


def status_lines(scale: str, seed: int = 0, device: str = "auto") -> list[str]:
    """The text of ``polystep-repro status``: for each experiment at ``scale``, whether its result
    is current (configuration and code unchanged), stale or missing, with its compute time and
    cell count; and for an unfinished run of the current configuration and code, its cells done,
    missing (declared but not stored) and failed (each with its error's last line), with the
    compute time spent on them so far."""
    from . import storage
    from .device import resolve_device
    from .fingerprint import code_fingerprint

    dev = resolve_device(device)
    lines = [f"{'experiment':28s} {'result':9s} {'compute':>9s}  cells"]
    for eid in registry.experiment_ids():
        module = registry.get(eid)
        chash = runner.config_hash(registry.config(eid, scale), getattr(module, "VERSION", 1))
        fingerprint = code_fingerprint(eid)
        path = runner.result_path(eid, scale, seed, dev)
        state, compute, cells = "missing", "", ""
        if path.exists():
            try:
                meta = storage.load(path)["meta"]
                current = meta.get("config_hash") == chash and meta.get("code_fingerprint") == fingerprint
                state = "current" if current else "stale"
                compute = f"{meta.get('compute_time_s', 0.0):8.1f}s"
                if current and "cells" in meta:
                    cells = f"{meta['cells']} done, 0 missing, 0 failed"
            except storage.CorruptResultError:
                state = "corrupt"
        partial = path.with_suffix(f".{runner.cache_key(chash, fingerprint)}.partial")
        failed: dict = {}
        if partial.is_dir():
            found = cell_status(partial)
            cells, failed = f"unfinished run: {_cells_text(found)}", found["failed"]
        lines.append(f"{eid:28s} {state:9s} {compute:>9s}  {cells}".rstrip())
        lines += [f"{'':28s}   failed {key}: {error}" for key, error in failed.items()]
    return lines


def _print_summary(experiment_id: str, stored: dict) -> None:
    meta = stored["meta"]
    print(f"{experiment_id}: scale={meta['scale']} device={meta['device']} seed={meta['seed']} "
          f"wall={meta['wall_time_s']:.1f}s forward_evals={meta['forward_evals']:,}")
    for claim_id, m in runner.measurements(experiment_id, stored["results"]).items():
        detail = f" ({m['detail']})" if m.get("detail") else ""
        print(f"  {claim_id}: {m.get('value')!r}{detail}" + (f" -> {m['verdict']}" if m.get("verdict") else ""))
    module = registry.get(experiment_id)
    if hasattr(module, "summary_lines"):
        for line in module.summary_lines(stored["results"]):
            print(line)


def describe_claim(claim_id: str, seed: int = 0) -> str:
    """The text of ``polystep-repro claim ID``."""
    from .claims import get_claim, load_claims, source_location

    c = get_claim(claim_id)
    implemented = c.experiment in registry.experiment_ids()
    out = [f"{c.id}  ({c.paper}, {c.source})", f"  statement:   {c.statement}",
           f"  paper value: {c.paper_value!r}", f"  scale:       {c.scale} (a verdict needs a run at "
           f"this scale or above; below it the number is indicative)"]
    if c.rule_text:
        out.append(f"  rule:        {c.rule_text}")
    if c.criterion:
        out.append(f"  criterion:   {c.criterion}")
    if c.fail_rule:
        out.append(f"  fail rule:   {c.fail_rule}  (then: {c.fail_verdict})")
    out.append(f"  verdicts:    rule holds -> {c.pass_verdict}; fails -> {c.fail_verdict}"
               + (" if the fail rule holds, else not reproduced" if c.fail_rule else ""))
    out.append(f"  registered:  {c.registered}" + (f" (corrects {c.corrects})" if c.corrects else ""))
    corrections = [o.id for o in load_claims().values() if o.corrects == c.id]
    if corrections:
        out.append(f"  corrected by: {', '.join(corrections)}")
    for rev in c.revision:
        change = ", ".join(x for x in (f"rule {rev.old_rule!r} -> {rev.new_rule!r}" if rev.old_rule or rev.new_rule else "",
                                       f"scale {rev.old_scale} -> {rev.new_scale}" if rev.old_scale or rev.new_scale else "") if x)
        out.append(f"  revision:    {rev.date}: {change}: {rev.reason}")
    out.append(f"  experiment:  {c.experiment}" + ("" if implemented else "  (not implemented yet)"))
    if implemented:
        out.append(f"  measured by: {source_location(c.id) or '(no @claim function: a defect)'}")
    out.append(f"  test:        {c.test or '(none registered)'}")
    nb = c.notebook or (f"notebooks/{c.experiment}.py" if (runner.REPO_ROOT / "notebooks" / f"{c.experiment}.py").exists() else "")
    out.append(f"  notebook:    {nb or '(none)'}")
    if implemented:
        figs = sorted(p.relative_to(runner.REPO_ROOT).as_posix()
                      for scale in report.REPORT_SCALES
                      for p in runner.figure_dir(scale, seed).glob(f"{c.experiment}*.png"))
        out.append(f"  figures:     {', '.join(figs) or '(none committed)'}")
        found = report.find_result(c.experiment, seed)
        row = report.claim_row(c, found, True, seed)
        value = row.get("value")
        out.append(f"  committed:   value {value!r}" + (f" ({row['detail']})" if row.get("detail") else "")
                   + f"; verdict: {row['verdict']}"
                   + (f" [rule at that scale: {row['rule_verdict']}]" if row.get("rule_verdict") else "")
                   + (f"; scale {row['scale']}" if found else ""))
        out.append(f"  command:     {row['command']}")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "list":
            for eid in registry.experiment_ids():
                module = registry.get(eid)
                print(f"{eid:28s} {module.TITLE}")
                print(f"{'':28s} claims: {', '.join(module.CLAIMS)}")
        elif args.command == "run":
            registry.get(args.id)  # an unknown id says so before an executor starts
            executor = _executor(args)
            try:
                stored = runner.run_experiment(args.id, scale=args.scale, device=args.device,
                                               seed=args.seed, force=args.force, executor=executor)
            finally:
                executor.close()
            _print_summary(args.id, stored)
        elif args.command == "plot":
            from . import storage
            from .device import resolve_device

            registry.get(args.id)  # an unknown id says so, before looking for files
            path = runner.result_path(args.id, args.scale, args.seed, resolve_device(args.device))
            if not path.exists():
                print(f"no cached result at {path}; run `polystep-repro run {args.id} --scale "
                      f"{args.scale} --seed {args.seed}` first", file=sys.stderr)
                return 1
            for written in runner.write_outputs(args.id, storage.load(path)):
                print(written)
        elif args.command == "all":
            started = time.perf_counter()
            with OverallProgress() as overall:  # one bar over every experiment's cells
                walls, used = _run_all(args, overall)
            print("wall time per experiment (s, this invocation; a cached result loads in ~0):")
            for eid, wall in walls.items():
                print(f"  {eid:28s} {wall:8.1f}")
            print(f"all experiments done in {time.perf_counter() - started:.0f}s ({used})")
            if args.scale not in report.REPORT_SCALES:
                print(f"(a {args.scale}-scale run does not make the report: it is built from the "
                      f"{' and '.join(report.REPORT_SCALES)} sidecars)")
            print(report.write_report(seed=args.seed))
            print(report.write_figures_index(seed=args.seed))
        elif args.command == "status":
            print("\n".join(status_lines(args.scale, seed=args.seed, device=args.device)))
        elif args.command == "claim":
            print(describe_claim(args.id, seed=args.seed))
        elif args.command == "report":
            print(report.write_report(seed=args.seed))
            print(report.write_figures_index(seed=args.seed))
        elif args.command == "data":
            return _data_command(args)
    except (KeyError, ValueError, RuntimeError) as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"polystep-repro: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
