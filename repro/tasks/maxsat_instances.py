"""MAX-SAT instances: the paper's random 3-SAT generator and DIMACS CNF read/write.

The instances of the paper's MAX-SAT scaling study (Table T3 / Figure F4, §5.3;
paper/polystep_reconstruction.md §5.1) are random 3-SAT formulas with ``n`` variables and
``m = int(4.27 n)`` clauses; every clause has 3 *distinct* variables drawn uniformly and each
literal is negated with probability 1/2; the instance of a size is fixed by a seed and only the
optimisers' seeds vary.  The authors drew them with Python's ``random.Random(42)``; this module
draws them with its own seeded NumPy code (:func:`random_ksat`), so the clauses are not the
authors' but follow the same distribution; :func:`paper_instance` fixes one instance per size.
DIMACS CNF export/import (:func:`write_dimacs`, :func:`read_dimacs`) lets any SAT/MaxSAT solver
read the same instance.

Storage (:class:`CNF`): clauses padded to a common width ``k`` as two ``[m, k]`` arrays,
``var`` (``int32``, 0-based variable ids) and ``neg`` (``bool``, literal negated).  A clause
shorter than ``k`` is padded by repeating its first literal, which leaves the clause (a
disjunction) unchanged, so every evaluator reads all ``k`` columns without a mask.  Literal
``(j, neg)`` is true under the 0/1 assignment ``x`` iff ``x_j != neg``.

Bad input is an error, never silently repaired: ``n < 1`` is a usage error (``ValueError``);
in a DIMACS file a literal out of ``[-n, n]``, an empty clause, a header that disagrees with the
body (clause count, a variable above the declared one, a missing or repeated ``p cnf`` line) or
an unterminated last clause raises :class:`DimacsError` naming the line.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from typing import IO, Iterable

import numpy as np

__all__ = ["CNF", "DimacsError", "CLAUSE_RATIO", "PAPER_INSTANCE_SEED", "num_clauses", "random_ksat",
           "paper_instance", "instance_seed", "write_dimacs", "read_dimacs", "from_clauses", "dimacs_string"]

#: clause/variable ratio of the paper's instances (near the 3-SAT satisfiability threshold)
CLAUSE_RATIO = 4.27
#: the paper's instance seed (``INSTANCE_SEED = 42``: one fixed instance per size)
PAPER_INSTANCE_SEED = 42


class DimacsError(ValueError):
    """A DIMACS CNF text that is malformed or whose header disagrees with its body."""


def _check_num_vars(n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise ValueError(f"the number of variables must be an integer >= 1, got {n!r}")
    n = int(n)
    if n < 1:
        raise ValueError(f"the number of variables must be >= 1, got {n} (an instance needs a variable)")
    if n >= 2**31 - 1:
        raise ValueError(f"the number of variables must be < 2**31 - 1 (int32 ids), got {n}")
    return n


@dataclass(frozen=True, eq=False)
class CNF:
    """A CNF formula over variables ``0 .. num_vars - 1``.

    Attributes:
        num_vars: ``n >= 1``.
        var: ``[m, k]`` ``int32`` variable ids in ``[0, n)`` (short clauses padded by repeating
            their first literal).
        neg: ``[m, k]`` ``bool``; ``True`` where the literal is negated (``not x_j``).
    """

    num_vars: int
    var: np.ndarray
    neg: np.ndarray

    def __post_init__(self) -> None:
        n = _check_num_vars(self.num_vars)
        var = np.ascontiguousarray(self.var, dtype=np.int32)
        neg = np.ascontiguousarray(self.neg, dtype=bool)
        if var.ndim != 2 or var.shape != neg.shape:
            raise ValueError(f"var and neg must be 2-D arrays of one shape [m, k], got {var.shape} and {neg.shape}")
        if var.shape[1] < 1:
            raise ValueError("clauses must have at least one literal (k >= 1); an empty clause is unsatisfiable")
        if var.size and (int(var.min()) < 0 or int(var.max()) >= n):
            bad = int(np.flatnonzero((var < 0).any(1) | (var >= n).any(1))[0])
            raise ValueError(f"clause {bad} has a variable id outside [0, {n}): {var[bad].tolist()}")
        var.setflags(write=False)
        neg.setflags(write=False)
        object.__setattr__(self, "num_vars", n)
        object.__setattr__(self, "var", var)
        object.__setattr__(self, "neg", neg)

    @property
    def num_clauses(self) -> int:
        """``m``."""
        return int(self.var.shape[0])

    @property
    def width(self) -> int:
        """``k``, the padded clause width."""
        return int(self.var.shape[1])

    def clauses(self) -> list[list[int]]:
        """The clauses as DIMACS literal lists (``+-(j + 1)``), padding removed (a repeated literal
        is dropped only where it repeats the first one in a padding position)."""
        lits = np.where(self.neg, -(self.var.astype(np.int64) + 1), self.var.astype(np.int64) + 1)
        out = []
        for row in lits.tolist():
            first = row[0]
            end = len(row)
            while end > 1 and row[end - 1] == first:  # trailing padding repeats the first literal
                end -= 1
            out.append(row[:end])
        return out

    def equals(self, other: "CNF") -> bool:
        """Same variables and the same padded clause arrays."""
        return (self.num_vars == other.num_vars and self.var.shape == other.var.shape
                and bool(np.array_equal(self.var, other.var)) and bool(np.array_equal(self.neg, other.neg)))


def num_clauses(n: int, ratio: float = CLAUSE_RATIO) -> int:
    """``m = int(ratio * n)`` in float64, as the paper's generator (``int(4.27 * 100) = 426``)."""
    return int(ratio * _check_num_vars(n))


def random_ksat(n: int, rng: np.random.Generator, *, k: int = 3, ratio: float = CLAUSE_RATIO,
                m: int | None = None) -> CNF:
    """A uniform random k-SAT formula (paper §5.3; paper/polystep_reconstruction.md §5.1).

    ``m = int(ratio * n)`` clauses (or ``m`` if given); each clause is an ordered triple of distinct
    variables drawn uniformly without replacement and each literal is negated with probability 1/2.
    Distinct variables are drawn exactly (no rejection loop): position ``i`` draws an integer in
    ``[0, n - i)`` and is shifted past the ids already taken, in increasing order.

    Args:
        n: number of variables, ``n >= k``.
        rng: the only source of randomness (same generator state, same formula, on any machine).
        k: literals per clause (3 for the paper).
        ratio: clause/variable ratio (4.27).
        m: explicit number of clauses (overrides ``ratio``).
    """
    n = _check_num_vars(n)
    if not isinstance(rng, np.random.Generator):
        raise ValueError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if n < k:
        raise ValueError(f"a clause needs {k} distinct variables, but n = {n} < k = {k}")
    m = num_clauses(n, ratio) if m is None else int(m)
    if m < 0:
        raise ValueError(f"the number of clauses must be >= 0, got {m}")
    var = np.empty((m, k), dtype=np.int64)
    taken = np.empty((m, 0), dtype=np.int64)  # ids drawn so far, sorted per row
    for i in range(k):
        r = rng.integers(0, n - i, size=m, dtype=np.int64)
        for j in range(i):  # shift past the taken ids in increasing order: uniform over the rest
            r += r >= taken[:, j]
        var[:, i] = r
        taken = np.sort(np.concatenate([taken, r[:, None]], axis=1), axis=1)
    neg = rng.random((m, k)) < 0.5
    return CNF(n, var.astype(np.int32), neg)


def instance_seed(n: int, root: int = PAPER_INSTANCE_SEED) -> np.random.SeedSequence:
    """The seed of the fixed instance of size ``n``: ``SeedSequence((root, n))``."""
    return np.random.SeedSequence((int(root), _check_num_vars(n)))


def paper_instance(n: int, root: int = PAPER_INSTANCE_SEED) -> CNF:
    """The fixed random 3-SAT instance of size ``n`` (ratio 4.27; seed :func:`instance_seed`)."""
    return random_ksat(n, np.random.default_rng(instance_seed(n, root)))


def from_clauses(num_vars: int, clauses: Iterable[Iterable[int]]) -> CNF:
    """Build a :class:`CNF` from DIMACS literal lists (``+-(j + 1)``), validated like a file body."""
    n = _check_num_vars(num_vars)
    rows = [list(map(int, c)) for c in clauses]
    for i, c in enumerate(rows):
        if not c:
            raise DimacsError(f"clause {i} is empty (an empty clause is unsatisfiable; MAX-SAT needs k >= 1)")
        for lit in c:
            if lit == 0 or abs(lit) > n:
                raise DimacsError(f"clause {i}: literal {lit} is out of range [-{n}, -1] U [1, {n}]")
    k = max((len(c) for c in rows), default=1)
    lits = np.array([c + [c[0]] * (k - len(c)) for c in rows], dtype=np.int64).reshape(len(rows), k)
    return CNF(n, (np.abs(lits) - 1).astype(np.int32), lits < 0)


def write_dimacs(cnf: CNF, dest: str | os.PathLike | IO[str], *, comments: Iterable[str] = ()) -> None:
    """Write ``cnf`` as DIMACS CNF (``p cnf n m``, one clause per line ending in ``0``).

    Padding is removed (:meth:`CNF.clauses`), so a re-read gives the same formula.
    """
    lines = [f"c {c}" for c in comments]
    lines.append(f"p cnf {cnf.num_vars} {cnf.num_clauses}")
    text = "\n".join(lines) + "\n"
    body = "".join(" ".join(map(str, c)) + " 0\n" for c in cnf.clauses())
    if isinstance(dest, (str, os.PathLike)):
        tmp = f"{os.fspath(dest)}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(text)
            f.write(body)
        os.replace(tmp, dest)
    else:
        dest.write(text)
        dest.write(body)


def read_dimacs(source: str | os.PathLike | IO[str]) -> CNF:
    """Read a DIMACS CNF file (path or text stream) and validate it against its header.

    Accepted: comment lines (``c ...``), one ``p cnf <n> <m>`` header before the first clause,
    clauses spread over any number of lines, each ended by ``0``, and the SATLIB trailer (a line
    ``%`` ends the body).

    Raises:
        DimacsError: no or a second header, a malformed header or token, ``n < 1``, a literal
            out of ``[-n, n]``, an empty clause, a last clause without its ``0``, or a clause
            count that differs from the header's ``m`` (both counts are reported; nothing is
            truncated or padded).
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, encoding="ascii", errors="strict") as f:
            return _parse(f, os.fspath(source))
    return _parse(source, getattr(source, "name", "<stream>"))


def _parse(f: IO[str], name: str) -> CNF:
    header: tuple[int, int] | None = None
    lits: list[int] = []
    ends: list[int] = []  # exclusive end of each clause in lits
    start_line = 0  # line where the open clause started
    for lineno, raw in enumerate(f, 1):
        line = raw.strip()
        if not line or line.startswith("c"):
            continue
        if line.startswith("%"):
            break
        if line.startswith("p"):
            parts = line.split()
            if header is not None:
                raise DimacsError(f"{name}:{lineno}: a second header line {line!r}")
            if ends or lits:
                raise DimacsError(f"{name}:{lineno}: the header {line!r} comes after clauses")
            if len(parts) != 4 or parts[1] != "cnf":
                raise DimacsError(f"{name}:{lineno}: malformed header {line!r} (expected 'p cnf <vars> <clauses>')")
            try:
                n, m = int(parts[2]), int(parts[3])
            except ValueError:
                raise DimacsError(f"{name}:{lineno}: malformed header {line!r} (counts must be integers)") from None
            if n < 1:
                raise DimacsError(f"{name}:{lineno}: the header declares {n} variables; an instance needs n >= 1")
            if m < 0:
                raise DimacsError(f"{name}:{lineno}: the header declares a negative clause count {m}")
            header = (n, m)
            continue
        if header is None:
            raise DimacsError(f"{name}:{lineno}: clause data before the 'p cnf' header")
        n = header[0]
        for tok in line.split():
            try:
                lit = int(tok)
            except ValueError:
                raise DimacsError(f"{name}:{lineno}: {tok!r} is not an integer literal") from None
            if lit == 0:
                if len(lits) == (ends[-1] if ends else 0):
                    raise DimacsError(f"{name}:{lineno}: clause {len(ends) + 1} is empty (an empty clause "
                                      "is unsatisfiable; MAX-SAT needs k >= 1)")
                ends.append(len(lits))
                continue
            if abs(lit) > n:
                raise DimacsError(f"{name}:{lineno}: literal {lit} in clause {len(ends) + 1} is out of range: the "
                                  f"header declares {n} variables")
            if len(lits) == (ends[-1] if ends else 0):
                start_line = lineno
            lits.append(lit)
    if header is None:
        raise DimacsError(f"{name}: no 'p cnf <vars> <clauses>' header")
    if len(lits) != (ends[-1] if ends else 0):
        raise DimacsError(f"{name}:{start_line}: the last clause (clause {len(ends) + 1}) is not terminated by 0")
    n, m = header
    if len(ends) != m:
        raise DimacsError(f"{name}: the header declares {m} clauses but the body has {len(ends)}")
    if m == 0:
        return CNF(n, np.zeros((0, 3), np.int32), np.zeros((0, 3), bool))
    flat = np.asarray(lits, dtype=np.int64)
    stop = np.asarray(ends, dtype=np.int64)
    begin = np.concatenate([[0], stop[:-1]])
    length = stop - begin
    k = int(length.max())
    col = np.arange(k)[None, :]
    # padded positions repeat the clause's first literal
    idx = np.where(col < length[:, None], begin[:, None] + col, begin[:, None])
    padded = flat[idx]
    return CNF(n, (np.abs(padded) - 1).astype(np.int32), padded < 0)


def dimacs_string(cnf: CNF, **kw) -> str:
    """:func:`write_dimacs` into a string."""
    buf = io.StringIO()
    write_dimacs(cnf, buf, **kw)
    return buf.getvalue()
