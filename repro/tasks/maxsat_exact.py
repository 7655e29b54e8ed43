"""Exact references for MAX-SAT through python-sat: the MaxSAT optimum (RC2) and a satisfying
assignment from a CDCL solver (CaDiCaL), plus brute force for tiny formulas (tests).

The paper's references (§5.3; paper/polystep_reconstruction.md §5.4) include "RC2 exact (60 s
timeout, skipped >= 1M)".  :func:`rc2_optimum` and :func:`cdcl_solve` run the solver in a child
process when ``timeout_s`` is given (a native solver call cannot be interrupted from Python
reliably), and kill it at the deadline: the result then says ``"timeout"`` with the limit, never a
guessed cost.  Every returned assignment is re-scored over all clauses
(:func:`repro.tasks.maxsat_eval.unsat_count`) and must agree with the solver's claim.

python-sat is an optional dependency (pinned in requirements/lock.txt); without it these
functions raise :class:`MissingDependencyError` with the install command.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time
from pathlib import Path
from dataclasses import dataclass

import numpy as np

from .maxsat_eval import unsat_count
from .maxsat_instances import CNF

__all__ = ["MissingDependencyError", "ExactResult", "rc2_optimum", "cdcl_solve", "brute_force_optimum",
           "pysat_available", "PYSAT_REQUIREMENT", "STATUSES"]

PYSAT_REQUIREMENT = "python-sat==1.9.dev24"
#: "optimum" (RC2 finished), "sat" / "unsat" (CDCL finished), "timeout"
STATUSES = ("optimum", "sat", "unsat", "timeout")


class MissingDependencyError(ImportError):
    """python-sat is not installed."""


def pysat_available() -> bool:
    try:
        import pysat  # noqa: F401
    except ImportError:
        return False
    return True


def _require_pysat() -> None:
    if not pysat_available():
        raise MissingDependencyError(
            "python-sat is not installed, so the exact MaxSAT optimum (RC2) and the CaDiCaL reference are "
            f"unavailable; install it with `pip install {PYSAT_REQUIREMENT}` (pinned in requirements/lock.txt)")


@dataclass
class ExactResult:
    """Outcome of an exact solver call.

    Attributes:
        status: one of :data:`STATUSES`.
        unsat: unsatisfied clauses of ``assignment`` (the optimum for ``"optimum"``, 0 for
            ``"sat"``); ``None`` for ``"unsat"`` (CDCL) and ``"timeout"``.
        assignment: ``bool [n]`` or ``None``.
        seconds: wall time including the child process; ``timeout_s``: the limit (``None``: none).
        solver: the solver's name.
    """

    status: str
    unsat: int | None
    assignment: np.ndarray | None
    seconds: float
    timeout_s: float | None
    solver: str


def _dimacs_clauses(var: np.ndarray, neg: np.ndarray) -> list[list[int]]:
    lits = np.where(neg, -(var.astype(np.int64) + 1), var.astype(np.int64) + 1)
    return [sorted(set(row), key=abs) for row in lits.tolist()]


def _model_to_bits(model, n: int) -> np.ndarray:
    x = np.zeros(n, dtype=bool)
    lits = np.asarray([lit for lit in model if 0 < abs(lit) <= n], dtype=np.int64)
    x[np.abs(lits[lits > 0]) - 1] = True
    return x


def _run_rc2(var, neg, n):
    from pysat.examples.rc2 import RC2
    from pysat.formula import WCNF

    w = WCNF()
    for c in _dimacs_clauses(var, neg):
        w.append(c, weight=1)
    with RC2(w) as rc2:
        model = rc2.compute()
        cost = rc2.cost
    return "optimum", int(cost), _model_to_bits(model or [], n)


def _run_cdcl(var, neg, n, name):
    from pysat.solvers import Solver

    with Solver(name=name, bootstrap_with=_dimacs_clauses(var, neg)) as s:
        ok = s.solve()
        if not ok:
            return "unsat", None, None
        return "sat", 0, _model_to_bits(s.get_model(), n)


_WORKERS = {}  # filled below: the functions a child process may run


def _call(fn, args, timeout_s: float | None):
    """``fn(*args)`` in-process (no timeout) or in a child Python process killed after ``timeout_s``.

    The child is ``python -m repro.tasks.maxsat_exact`` fed by a pickle on stdin, so it never
    re-imports the caller's ``__main__`` (a script without a ``__main__`` guard works).
    """
    if timeout_s is None:
        return fn(*args)
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0 or None, got {timeout_s!r}")
    root = str(Path(__file__).resolve().parents[2])  # the folder that holds the repro package
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    proc = subprocess.Popen([sys.executable, "-m", "repro.tasks.maxsat_exact"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        out, err = proc.communicate(pickle.dumps((fn.__name__, args)), timeout=timeout_s)
    except subprocess.TimeoutExpired:  # the limit passed: no guessed cost
        proc.kill()
        proc.communicate()
        return None
    if proc.returncode != 0:
        tail = err.decode(errors="replace")[-2000:]
        raise RuntimeError(f"the solver process failed (exit code {proc.returncode}): {tail}")
    return pickle.loads(out)


def _finish(cnf: CNF, out, t0: float, timeout_s, solver: str) -> ExactResult:
    seconds = time.perf_counter() - t0
    if out is None:
        return ExactResult("timeout", None, None, seconds, timeout_s, solver)
    status, cost, x = out
    if x is not None:
        check = unsat_count(cnf, x)
        if check != cost:
            raise RuntimeError(f"{solver} reported {cost} unsatisfied clauses but its assignment leaves {check}")
    return ExactResult(status, cost, x, seconds, timeout_s, solver)


def rc2_optimum(cnf: CNF, *, timeout_s: float | None = 60.0) -> ExactResult:
    """The MaxSAT optimum (fewest unsatisfied clauses, unit weights) by RC2, or ``"timeout"``."""
    _require_pysat()
    t0 = time.perf_counter()
    out = _call(_run_rc2, (cnf.var, cnf.neg, cnf.num_vars), timeout_s)
    return _finish(cnf, out, t0, timeout_s, "rc2")


def cdcl_solve(cnf: CNF, *, timeout_s: float | None = 60.0, solver: str = "cadical195") -> ExactResult:
    """Satisfiability by a CDCL solver (CaDiCaL 1.9.5 by default): ``"sat"`` with a satisfying
    assignment, ``"unsat"``, or ``"timeout"``."""
    _require_pysat()
    t0 = time.perf_counter()
    out = _call(_run_cdcl, (cnf.var, cnf.neg, cnf.num_vars, solver), timeout_s)
    return _finish(cnf, out, t0, timeout_s, solver)


def brute_force_optimum(cnf: CNF, *, max_vars: int = 20) -> tuple[int, np.ndarray]:
    """``(min unsatisfied count, an optimal assignment)`` by enumerating all ``2^n`` assignments."""
    n = cnf.num_vars
    if n > max_vars:
        raise ValueError(f"brute force enumerates 2^n assignments; n = {n} > max_vars = {max_vars}")
    codes = np.arange(2**n, dtype=np.int64)
    bits = ((codes[:, None] >> np.arange(n)) & 1).astype(bool)
    counts = unsat_count(cnf, bits)
    best = int(np.argmin(counts))
    return int(counts[best]), bits[best]


_WORKERS.update({"_run_rc2": _run_rc2, "_run_cdcl": _run_cdcl})

if __name__ == "__main__":  # the child of _call: pickle (name, args) in, pickle result out
    _name, _args = pickle.load(sys.stdin.buffer)
    pickle.dump(_WORKERS[_name](*_args), sys.stdout.buffer)
