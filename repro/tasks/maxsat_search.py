"""Stochastic local search for MAX-SAT: probSAT and WalkSAT (SKC), the references a SAT user would
pick (paper §5.3 compares PolyStep with an in-repo Python WalkSAT "SLS" and probSAT SC13;
paper/polystep_reconstruction.md §5.4).

Both methods repeat: pick a clause uniformly among the unsatisfied ones, score each of its
variables by its *break* value (the clauses that flipping it would make unsatisfied), flip one:

* ``probsat`` (Balint & Schoening 2012, polynomial break-only form): flip ``v`` with probability
  proportional to ``(eps + break(v)) ** -cb``; the defaults ``cb = 2.38, eps = 1`` are their
  3-SAT setting.
* ``walksat`` (Selman, Kautz & Cohen 1994, "SKC"): a variable with break 0 if there is one
  (random among them); otherwise with probability ``noise`` a random variable of the clause, else
  one of minimum break (random tie-break); default ``noise = 0.567``.

The search keeps, per clause, its number of true literals; a flip updates the clauses of the
flipped variable (through the variable -> clause index of :mod:`repro.tasks.maxsat_eval`) and the
list of unsatisfied clauses.  It is plain Python over ``memoryview`` s of the index (one flip costs
a few dozen interpreted operations), so expect ``1e4``-``1e5`` flips/s; the result reports the
measured rate.  The best assignment seen is returned; its unsatisfied count is recomputed from
scratch over every clause before returning, and a disagreement with the search's own count is an
error (``RuntimeError``), never a silently wrong number.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field

import numpy as np

from .maxsat_eval import ClauseIndex, clause_true_counts, unsat_count
from .maxsat_instances import CNF

__all__ = ["LocalSearchResult", "local_search", "METHODS"]

METHODS = ("probsat", "walksat")


@dataclass
class LocalSearchResult:
    """Outcome of :func:`local_search`.

    Attributes:
        assignment: best assignment seen, ``bool [n]``.
        unsat: its unsatisfied count (recomputed over every clause).
        num_clauses: ``m``.
        flips: flips performed; ``seconds``: wall time of the search loop; ``flips_per_s``.
        solved: ``unsat == 0`` (a satisfying assignment).
        method, params: the method and its parameters (``seed``, ``max_flips``, ...).
    """

    assignment: np.ndarray
    unsat: int
    num_clauses: int
    flips: int
    seconds: float
    flips_per_s: float
    solved: bool
    method: str
    params: dict = field(default_factory=dict)

    @property
    def sat_fraction(self) -> float:
        """Satisfied-clause fraction of the best assignment."""
        return 1.0 - self.unsat / max(self.num_clauses, 1)


def local_search(cnf: CNF, *, max_flips: int, seed: int, method: str = "probsat", x0=None,
                 cb: float = 2.38, eps: float = 1.0, noise: float = 0.567, index: ClauseIndex | None = None,
                 max_seconds: float | None = None) -> LocalSearchResult:
    """Run probSAT or WalkSAT from ``x0`` (default: uniform random bits from ``seed``).

    Args:
        cnf: the formula.
        max_flips: flip budget (``>= 0``); the search stops early on a satisfying assignment.
        seed: integer seed of the search's random stream (Python ``random.Random``).
        method: ``"probsat"`` or ``"walksat"``.
        x0: optional start assignment ``bool [n]`` (default: uniform bits from
            ``numpy.random.default_rng(seed)``).
        cb, eps: probSAT's polynomial break weights ``(eps + b) ** -cb``.
        noise: WalkSAT's random-walk probability.
        index: a prebuilt :class:`ClauseIndex`.
        max_seconds: optional wall-clock cap (checked every 1,024 flips).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    if isinstance(max_flips, bool) or not isinstance(max_flips, (int, np.integer)) or max_flips < 0:
        raise ValueError(f"max_flips must be an integer >= 0, got {max_flips!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an integer, got {seed!r}")
    if not (cb > 0 and eps > 0 and 0.0 <= noise <= 1.0):
        raise ValueError(f"need cb > 0, eps > 0 and 0 <= noise <= 1, got cb={cb}, eps={eps}, noise={noise}")
    n, m, k = cnf.num_vars, cnf.num_clauses, cnf.width
    rnd = random.Random(int(seed))
    if x0 is None:
        x_np = np.random.default_rng(int(seed) & (2**63 - 1)).random(n) < 0.5
    else:
        x_np = np.array(x0, dtype=bool, copy=True)
        if x_np.shape != (n,):
            raise ValueError(f"x0 must have shape ({n},), got {x_np.shape}")
    idx = ClauseIndex.build(cnf) if index is None else index
    indptr, occ_clause, occ_sign = memoryview(idx.indptr), memoryview(idx.clause), memoryview(idx.sign)
    cvar = memoryview(np.ascontiguousarray(cnf.var.reshape(-1)))
    x = x_np.astype(np.int8).tolist()
    nt_np = clause_true_counts(cnf, x_np)
    unsat = np.flatnonzero(nt_np == 0).tolist()
    nt = nt_np.astype(np.int64).tolist()
    pos_np = np.full(m, -1, dtype=np.int32)
    pos_np[np.asarray(unsat, dtype=np.int64)] = np.arange(len(unsat), dtype=np.int32)
    pos = memoryview(pos_np)
    max_deg = int(idx.degree().max(initial=0))
    weight = [(eps + b) ** -cb for b in range(max_deg + 2)]
    best = len(unsat)
    # invariant: current x = snap with the flips of ``trail`` applied; the best point seen is
    # snap + trail[:best_len] when best_len >= 0, else best_saved (the trail is cut every ~n
    # flips so that its memory stays O(n))
    snap = list(x)
    trail: list[int] = []
    best_len = 0
    best_saved: list[int] | None = None
    probsat = method == "probsat"
    deadline = None if max_seconds is None else time.perf_counter() + max_seconds

    def breaks(v: int) -> int:
        mult = 1 - 2 * x[v]
        b = 0
        for e in range(indptr[v], indptr[v + 1]):
            d = occ_sign[e] * mult
            if d < 0 and nt[occ_clause[e]] + d == 0:
                b += 1
        return b

    def flip(v: int) -> None:
        xv = x[v]
        mult = 1 - 2 * xv
        for e in range(indptr[v], indptr[v + 1]):
            d = occ_sign[e] * mult
            if d == 0:
                continue
            c = occ_clause[e]
            old = nt[c]
            new = old + d
            nt[c] = new
            if old == 0:  # new > 0: c becomes satisfied
                i = pos[c]
                last = unsat.pop()
                if last != c:
                    unsat[i] = last
                    pos[last] = i
                pos[c] = -1
            elif new == 0:
                pos[c] = len(unsat)
                unsat.append(c)
        x[v] = 1 - xv

    flips = 0
    t0 = time.perf_counter()
    while flips < max_flips and unsat:
        c = unsat[int(rnd.random() * len(unsat))]
        base = c * k
        cand = []
        for j in range(k):
            v = cvar[base + j]
            if v not in cand:
                cand.append(v)
        if probsat:
            ws = [weight[breaks(v)] for v in cand]
            r = rnd.random() * sum(ws)
            v = cand[-1]
            for vi, w in zip(cand, ws):
                r -= w
                if r < 0:
                    v = vi
                    break
        else:
            bs = [breaks(v) for v in cand]
            lo = min(bs)
            if lo == 0:
                zero = [vi for vi, b in zip(cand, bs) if b == 0]
                v = zero[int(rnd.random() * len(zero))]
            elif rnd.random() < noise:
                v = cand[int(rnd.random() * len(cand))]
            else:
                arg = [vi for vi, b in zip(cand, bs) if b == lo]
                v = arg[int(rnd.random() * len(arg))]
        flip(v)
        flips += 1
        trail.append(v)
        if len(unsat) < best:
            best = len(unsat)
            best_len = len(trail)
        if len(trail) > n + 1024:
            if best_len >= 0:
                for u in trail[:best_len]:
                    snap[u] = 1 - snap[u]
                best_saved = snap
            snap = list(x)
            trail.clear()
            best_len = -1
        if deadline is not None and (flips & 1023) == 0 and time.perf_counter() > deadline:
            break
    seconds = time.perf_counter() - t0
    if best_len >= 0:
        for u in trail[:best_len]:
            snap[u] = 1 - snap[u]
        best_saved = snap
    out = np.asarray(best_saved, dtype=bool)
    check = unsat_count(cnf, out)
    if check != best:
        raise RuntimeError(f"local search bookkeeping error: tracked best {best} unsatisfied clauses, "
                           f"recount {check}")
    params = {"seed": int(seed), "max_flips": int(max_flips), "cb": cb, "eps": eps, "noise": noise,
              "max_seconds": max_seconds}
    params = {k_: v_ for k_, v_ in params.items() if not (method == "probsat" and k_ == "noise")
              and not (method == "walksat" and k_ in ("cb", "eps"))}
    return LocalSearchResult(out, check, m, flips, seconds, flips / seconds if seconds > 0 else float("inf"),
                             check == 0, method, params)
