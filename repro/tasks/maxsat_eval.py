"""MAX-SAT losses: the full count, the variable -> clause index and the incremental population
evaluator that PolyStep's block-coordinate candidates need at 1M variables.

The paper's MAX-SAT model (§5.3; paper/polystep_reconstruction.md §5.2, ``MaxSATModel``) has scores
``s in R^n``, the assignment ``x = round(sigmoid(s))`` and the loss "unsatisfied-clause fraction"
``L(s) = #{clauses unsatisfied by x} / m``.  Here ``x_j = 1`` iff ``s_j > 0``
(:func:`assignment`): that is ``round(sigmoid(s_j))`` in exact arithmetic, ``round`` taking
``0.5`` to ``0`` as ``torch.round`` (half to even) does at ``s_j = 0``.  (A float32
``sigmoid`` rounds to exactly ``0.5`` for ``0 < s_j < 6e-8`` and then gives 0; that rounding
artefact is not part of the model.)

A PolyStep candidate in full space moves one particle -- two coordinates ``(j1, j2)`` -- so it
flips at most the two variables ``j1, j2``.  With ``T_c`` the number of true literals of clause
``c`` under the current assignment (:class:`IncrementalEvaluator` keeps it) and ``o_jc`` =
(positive minus negative occurrences of ``x_j`` in ``c``), flipping ``j`` changes ``T_c`` by
``d_jc = o_jc (1 - 2 x_j)``, so the change of the unsatisfied count is::

    D_j      = sum_{c ∋ j} [T_c + d_jc = 0] - [T_c = 0]
    D_{j1j2} = D_j1 + D_j2 + sum_{c ∋ j1, j2} ([T_c + d_1c + d_2c = 0] - [T_c + d_1c = 0]
                                                - [T_c + d_2c = 0] + [T_c = 0])

and a candidate's loss is ``(U + D_F) / m`` for its flip set ``F`` (``U`` the current count).
One pass over the variable -> clause index (CSR, :class:`ClauseIndex`) gives ``D_j`` for every
variable: the cost of evaluating the ``P V`` candidates is proportional to the clause
occurrences of the particles' variables (``3m`` in full space), not to ``P V m``.  The
clauses shared by the two variables of a particle are structural and listed once
(:class:`ParticlePairs`).  Counts are integers, so the incremental loss equals a full
recomputation bit for bit (tested).  Memory: the index holds ``nnz = sum_c |vars(c)|`` entries
(int32 clause ids, int32 variable ids, int8 signs: 9 bytes each, 115 MB at 1M variables) and a
step's temporaries are bounded by ``chunk_entries``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .maxsat_instances import CNF

__all__ = ["assignment", "clause_true_counts", "unsat_count", "unsat_fraction", "ClauseIndex",
           "ParticlePairs", "full_space_pairs", "IncrementalEvaluator"]

#: default bound on the index entries processed at once (temporaries ~ 10 bytes per entry)
CHUNK_ENTRIES = 1 << 21


def assignment(scores) -> np.ndarray:
    """``x = round(sigmoid(s))`` as a bool array: ``x_j = (s_j > 0)`` (module docstring).

    ``scores`` may be a NumPy array or a torch tensor (any shape); NaN gives ``False``.
    """
    if hasattr(scores, "detach"):  # torch tensor
        return (scores.detach() > 0).cpu().numpy()
    return np.asarray(scores) > 0


def _as_bits(x, n: int) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype != bool:
        if not np.issubdtype(x.dtype, np.integer) or (x.size and (x.min() < 0 or x.max() > 1)):
            raise ValueError("an assignment must be a bool array or an integer array of 0/1 values; "
                             "use assignment(scores) for real-valued scores")
        x = x.astype(bool)
    if x.shape[-1] != n:
        raise ValueError(f"an assignment must have {n} entries (one per variable), got shape {x.shape}")
    return x


def clause_true_counts(cnf: CNF, x) -> np.ndarray:
    """``T_c``: number of true literals of every clause under the 0/1 assignment ``x`` ``[n]``
    (padding columns included; only ``T_c > 0`` matters), as ``int16`` (``int32`` if ``k >= 2**15``)."""
    x = _as_bits(x, cnf.num_vars)
    if x.ndim != 1:
        raise ValueError(f"x must be 1-D [n], got shape {x.shape}")
    dtype = np.int16 if cnf.width < 2**15 else np.int32
    out = np.empty(cnf.num_clauses, dtype=dtype)
    step = max(1, CHUNK_ENTRIES // max(cnf.width, 1))
    for lo in range(0, cnf.num_clauses, step):
        hi = min(lo + step, cnf.num_clauses)
        lit = x[cnf.var[lo:hi]] != cnf.neg[lo:hi]
        out[lo:hi] = lit.sum(axis=1, dtype=dtype)
    return out


def unsat_count(cnf: CNF, x) -> np.ndarray | int:
    """Number of clauses unsatisfied by ``x`` (``[n]`` -> ``int``; ``[B, n]`` -> ``int64 [B]``),
    recomputed from scratch over every clause (the reference for the incremental evaluator)."""
    x = _as_bits(x, cnf.num_vars)
    single = x.ndim == 1
    xb = x[None, :] if single else x.reshape(-1, cnf.num_vars)
    if xb.shape[0] >= PACKED_MIN_BATCH:
        out = np.concatenate([_unsat_count_packed(cnf, xb[lo:lo + 64]) for lo in range(0, xb.shape[0], 64)])
        return out.reshape(x.shape[:-1])
    out = np.zeros(xb.shape[0], dtype=np.int64)
    m, k = cnf.num_clauses, cnf.width
    step = max(1, CHUNK_ENTRIES // max(k * xb.shape[0], 1))
    for lo in range(0, m, step):
        hi = min(lo + step, m)
        lit = xb[:, cnf.var[lo:hi]] != cnf.neg[lo:hi][None]  # [B, c, k]
        out += (~lit.any(axis=2)).sum(axis=1)
    if single:
        return int(out[0])
    return out.reshape(x.shape[:-1])


#: batches of at least this many assignments are counted bit-parallel (:func:`_unsat_count_packed`)
PACKED_MIN_BATCH = 8
_ALL_ONES = np.uint64(0xFFFFFFFFFFFFFFFF)


def _unsat_count_packed(cnf: CNF, xb: np.ndarray) -> np.ndarray:
    """:func:`unsat_count` of up to 64 assignments ``xb [B, n]`` at once, bit-parallel: bit ``b`` of
    the word ``w_j`` is ``x_{b, j}``; a clause's literal words are ``w_v XOR (all ones if negated)``,
    their OR has bit ``b`` set iff assignment ``b`` satisfies the clause, and the unsatisfied clauses
    of each ``b`` are counted by unpacking the complemented words.  Same integers as the reference
    path (tested); one gather of 8 bytes per literal instead of ``B`` bytes."""
    b, n = xb.shape
    if b > 64:
        raise ValueError(f"at most 64 assignments per packed count, got {b}")
    packed = np.zeros((n, 8), dtype=np.uint8)
    packed[:, : (b + 7) // 8] = np.packbits(xb, axis=0, bitorder="little").T
    w = packed.view("<u8").reshape(n)
    out = np.zeros(64, dtype=np.int64)
    m, k = cnf.num_clauses, cnf.width
    step = max(1, CHUNK_ENTRIES // max(4 * k, 1))
    for lo in range(0, m, step):
        hi = min(lo + step, m)
        lits = w[cnf.var[lo:hi]]                                        # [c, k] uint64
        lits ^= np.where(cnf.neg[lo:hi], _ALL_ONES, np.uint64(0))
        unsat = ~np.bitwise_or.reduce(lits, axis=1)                      # bit b: clause unsatisfied by b
        bits = np.unpackbits(unsat.astype("<u8").view(np.uint8).reshape(-1, 8), axis=1, bitorder="little")
        out += bits.sum(axis=0, dtype=np.int64)
    return out[:b]


def unsat_fraction(cnf: CNF, x) -> np.ndarray | float:
    """The paper's loss: :func:`unsat_count` ``/ m`` (float64; 0 for a formula without clauses)."""
    count = unsat_count(cnf, x)
    m = max(cnf.num_clauses, 1)
    return count / m if isinstance(count, int) else count.astype(np.float64) / m


@dataclass(frozen=True, eq=False)
class ClauseIndex:
    """Variable -> clause index in CSR form (built once per instance, ``int32``).

    Entry ``e`` in ``indptr[j]:indptr[j+1]`` says that variable ``j`` occurs in clause
    ``clause[e]`` with sign sum ``sign[e]`` = (#positive - #negative occurrences, padding
    included); ``var[e] = j``.  Clause ids within a variable are increasing.
    """

    num_vars: int
    num_clauses: int
    indptr: np.ndarray
    clause: np.ndarray
    sign: np.ndarray
    var: np.ndarray

    @classmethod
    def build(cls, cnf: CNF) -> "ClauseIndex":
        n, m, k = cnf.num_vars, cnf.num_clauses, cnf.width
        if m * k >= 2**31 - 1:
            raise ValueError(f"the index needs int32 entry offsets; m * k = {m * k} is too large")
        flat_var = cnf.var.reshape(-1)
        order = np.argsort(flat_var, kind="stable")  # clause-major input: clause ids stay sorted
        v = flat_var[order]
        c = (order // k).astype(np.int32)
        s = np.where(cnf.neg.reshape(-1)[order], np.int8(-1), np.int8(1))
        if k > 1 and m > 0:  # merge repeated (variable, clause) pairs (padding, x or x, x or not x)
            new = np.ones(v.size, dtype=bool)
            new[1:] = (v[1:] != v[:-1]) | (c[1:] != c[:-1])
            if not new.all():
                starts = np.flatnonzero(new)
                s = np.add.reduceat(s.astype(np.int32), starts)
                if np.abs(s).max(initial=0) > 127:
                    raise ValueError("a variable occurs more than 127 times in one clause")
                s = s.astype(np.int8)
                v, c = v[starts], c[starts]
        counts = np.bincount(v, minlength=n)
        indptr = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(counts, out=indptr[1:])
        return cls(n, m, indptr, np.ascontiguousarray(c), np.ascontiguousarray(s), np.ascontiguousarray(v, np.int32))

    @property
    def nnz(self) -> int:
        return int(self.clause.size)

    def degree(self) -> np.ndarray:
        """Number of clauses each variable occurs in."""
        return np.diff(self.indptr)

    def nbytes(self) -> int:
        return sum(a.nbytes for a in (self.indptr, self.clause, self.sign, self.var))


def full_space_pairs(n: int) -> np.ndarray:
    """PolyStep's full-space particles of ``d_p = 2``: particle ``i`` owns coordinates
    ``(2i, 2i + 1)``; for odd ``n`` the last particle's second coordinate is padding (``-1``)
    (paper/polystep_reconstruction.md §2.2, "Full-space mode")."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    p = (n + 1) // 2
    pairs = np.arange(2 * p, dtype=np.int64).reshape(p, 2)
    pairs[pairs >= n] = -1
    return pairs.astype(np.int32)


@dataclass(frozen=True, eq=False)
class ParticlePairs:
    """Disjoint particles of two variables and the clauses each particle's two variables share.

    Attributes:
        pairs: ``[P, 2]`` ``int32`` variable ids; a second id ``-1`` is padding (never flipped).
        particle_of: ``[n]`` ``int32``, the particle of each variable (``-1``: in none).
        shared_particle, shared_clause: the ``S`` (particle, clause) pairs with both variables in
            the clause; ``shared_sign1``, ``shared_sign2``: their sign sums ``o_{j1 c}``, ``o_{j2 c}``.
    """

    pairs: np.ndarray
    particle_of: np.ndarray
    shared_particle: np.ndarray
    shared_clause: np.ndarray
    shared_sign1: np.ndarray
    shared_sign2: np.ndarray

    @classmethod
    def build(cls, cnf: CNF, pairs) -> "ParticlePairs":
        n = cnf.num_vars
        pairs = np.asarray(pairs)
        if pairs.ndim != 2 or pairs.shape[1] != 2 or not np.issubdtype(pairs.dtype, np.integer):
            raise ValueError(f"pairs must be an integer array [P, 2], got {pairs.dtype} {pairs.shape}")
        pairs = pairs.astype(np.int32)
        if pairs.size and (pairs[:, 0].min() < 0 or pairs.max() >= n or pairs[:, 1].min() < -1):
            raise ValueError(f"pair variable ids must be in [0, {n}) (second id may be -1 = padding)")
        if np.any(pairs[:, 0] == pairs[:, 1]):
            raise ValueError("a particle's two variables must differ")
        used = pairs[pairs >= 0]
        if np.unique(used).size != used.size:
            raise ValueError("particles must be disjoint: a variable belongs to at most one particle")
        particle_of = np.full(n, -1, dtype=np.int32)
        ids = np.arange(pairs.shape[0], dtype=np.int32)
        particle_of[pairs[:, 0]] = ids
        second = pairs[:, 1] >= 0
        particle_of[pairs[second, 1]] = ids[second]
        # clauses that hold both variables of a particle: scan the column pairs of every clause
        k = cnf.width
        sp, sc = [], []
        for a in range(k):
            for b in range(a + 1, k):
                va, vb = cnf.var[:, a], cnf.var[:, b]
                pa = particle_of[va]
                hit = np.flatnonzero((pa >= 0) & (pa == particle_of[vb]) & (va != vb))
                sp.append(pa[hit])
                sc.append(hit.astype(np.int32))
        sp_a = np.concatenate(sp) if sp else np.zeros(0, np.int32)
        sc_a = np.concatenate(sc) if sc else np.zeros(0, np.int32)
        if sp_a.size:
            key = np.unique(sp_a.astype(np.int64) * max(cnf.num_clauses, 1) + sc_a)
            sp_a = (key // max(cnf.num_clauses, 1)).astype(np.int32)
            sc_a = (key % max(cnf.num_clauses, 1)).astype(np.int32)
        rows_v = cnf.var[sc_a]
        sgn = np.where(cnf.neg[sc_a], -1, 1)
        s1 = ((rows_v == pairs[sp_a, 0][:, None]) * sgn).sum(1).astype(np.int8)
        s2 = ((rows_v == pairs[sp_a, 1][:, None]) * sgn).sum(1).astype(np.int8)
        return cls(pairs, particle_of, sp_a.astype(np.int32), sc_a, s1, s2)

    @property
    def num_particles(self) -> int:
        return int(self.pairs.shape[0])


class IncrementalEvaluator:
    """Unsatisfied counts of many "flip at most two variables" candidates around one assignment.

    Usage::

        ev = IncrementalEvaluator(cnf)
        ev.set_base(x)                        # current assignment [n] (bool)
        pp = ParticlePairs.build(cnf, full_space_pairs(n))
        counts = ev.evaluate(pp, bits)        # bits [P, M, 2]: each candidate's new values -> [P, M]

    Args:
        cnf: the formula.
        index: a prebuilt :class:`ClauseIndex` (built here if ``None``).
        chunk_entries: index entries processed at once (bounds the temporaries).
    """

    def __init__(self, cnf: CNF, index: ClauseIndex | None = None, *, chunk_entries: int = CHUNK_ENTRIES):
        if chunk_entries < 1:
            raise ValueError(f"chunk_entries must be >= 1, got {chunk_entries}")
        self.cnf = cnf
        self.index = ClauseIndex.build(cnf) if index is None else index
        if self.index.num_vars != cnf.num_vars or self.index.num_clauses != cnf.num_clauses:
            raise ValueError("the index was built for another formula")
        self.chunk_entries = int(chunk_entries)
        self.x: np.ndarray | None = None
        self.true_counts: np.ndarray | None = None
        self.base_unsat: int | None = None
        self._deltas: np.ndarray | None = None

    # --- the current assignment -------------------------------------------------------------
    def set_base(self, x) -> int:
        """Make ``x`` ``[n]`` the current assignment; returns its unsatisfied count ``U``."""
        x = _as_bits(x, self.cnf.num_vars)
        if x.ndim != 1:
            raise ValueError(f"x must be 1-D [n], got shape {x.shape}")
        if self.x is not None and np.array_equal(self.x, x):
            return self.base_unsat  # same assignment: the clause counts are current
        self.x = np.array(x, dtype=bool, copy=True)
        self.true_counts = clause_true_counts(self.cnf, self.x)
        self.base_unsat = int(np.count_nonzero(self.true_counts == 0))
        self._deltas = None
        return self.base_unsat

    def _need_base(self) -> None:
        if self.x is None:
            raise RuntimeError("call set_base(x) first")

    # --- single flips -------------------------------------------------------------------------
    def _entry_terms(self, e_lo: int, e_hi: int) -> np.ndarray:
        """``[T_c + d_jc = 0] - [T_c = 0]`` for the index entries ``e_lo:e_hi`` (int8)."""
        idx = self.index
        t = self.true_counts[idx.clause[e_lo:e_hi]]
        flip = 1 - 2 * self.x[idx.var[e_lo:e_hi]].astype(np.int8)  # +1 if x_j = 0, -1 if 1
        d = idx.sign[e_lo:e_hi] * flip
        return (t + d == 0).view(np.int8) - (t == 0).view(np.int8)

    def flip_deltas(self) -> np.ndarray:
        """``D_j`` (change of the unsatisfied count when ``x_j`` alone flips) for every variable,
        ``int32 [n]``: one chunked pass over the index (cached until the next :meth:`set_base`)."""
        self._need_base()
        if self._deltas is not None:
            return self._deltas
        idx, n = self.index, self.cnf.num_vars
        out = np.zeros(n, dtype=np.int32)
        v = 0
        while v < n:
            # whole variables per chunk, at least one
            e_lo = int(idx.indptr[v])
            v_hi = int(np.searchsorted(idx.indptr, e_lo + self.chunk_entries, side="right")) - 1
            v_hi = min(max(v_hi, v + 1), n)
            e_hi = int(idx.indptr[v_hi])
            terms = self._entry_terms(e_lo, e_hi)
            cs = np.zeros(e_hi - e_lo + 1, dtype=np.int32)
            np.cumsum(terms, dtype=np.int32, out=cs[1:])
            bounds = idx.indptr[v:v_hi + 1] - e_lo
            out[v:v_hi] = cs[bounds[1:]] - cs[bounds[:-1]]
            v = v_hi
        self._deltas = out
        return out

    def flip_deltas_of(self, variables) -> np.ndarray:
        """``D_j`` for the given variables only (cost proportional to their clause occurrences)."""
        self._need_base()
        variables = np.asarray(variables, dtype=np.int64)
        if self._deltas is not None:
            return self._deltas[variables]
        idx = self.index
        lo, hi = idx.indptr[variables].astype(np.int64), idx.indptr[variables + 1].astype(np.int64)
        lengths = hi - lo
        total = int(lengths.sum())
        out = np.zeros(variables.size, dtype=np.int32)
        if total == 0:
            return out
        seg = np.repeat(np.arange(variables.size), lengths)
        starts = np.repeat(lo - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
        entries = starts + np.arange(total)
        t = self.true_counts[idx.clause[entries]]
        flip = 1 - 2 * self.x[idx.var[entries]].astype(np.int8)
        d = idx.sign[entries] * flip
        terms = (t + d == 0).astype(np.int32) - (t == 0)
        np.add.at(out, seg, terms)
        return out

    # --- particles ----------------------------------------------------------------------------
    def particle_deltas(self, pp: ParticlePairs, *, all_variables: bool | None = None) -> np.ndarray:
        """``[P, 4]`` changes of the unsatisfied count for the flip sets
        ``{}, {j1}, {j2}, {j1, j2}`` of every particle (columns indexed by ``f1 + 2 f2``).

        ``all_variables``: compute ``D_j`` by one pass over the whole index (default when the
        particles cover more than a quarter of the variables) or only for the particles' variables.
        """
        self._need_base()
        if pp.particle_of.shape[0] != self.cnf.num_vars:
            raise ValueError("the particles were built for a formula with another number of variables")
        pairs = pp.pairs
        j1, j2 = pairs[:, 0], pairs[:, 1]
        has2 = j2 >= 0
        if all_variables is None:
            all_variables = pairs.size > self.cnf.num_vars // 4
        if all_variables:
            dj = self.flip_deltas()
            d1 = dj[j1]
            d2 = np.where(has2, dj[np.where(has2, j2, 0)], 0).astype(np.int32)
        else:
            d1 = self.flip_deltas_of(j1)
            d2 = np.zeros_like(d1)
            d2[has2] = self.flip_deltas_of(j2[has2])
        d12 = d1 + d2
        if pp.shared_particle.size:
            t = self.true_counts[pp.shared_clause].astype(np.int32)
            p = pp.shared_particle
            a = pp.shared_sign1.astype(np.int32) * (1 - 2 * self.x[j1[p]].astype(np.int32))
            b = pp.shared_sign2.astype(np.int32) * (1 - 2 * self.x[j2[p]].astype(np.int32))
            corr = ((t + a + b == 0).astype(np.int32) - (t + a == 0) - (t + b == 0) + (t == 0))
            np.add.at(d12, p, corr)
        out = np.zeros((pairs.shape[0], 4), dtype=np.int32)
        out[:, 1], out[:, 2], out[:, 3] = d1, d2, d12
        return out

    def evaluate(self, pp: ParticlePairs, bits, *, particles=None) -> np.ndarray:
        """Unsatisfied counts of candidates that set particle ``i``'s variables to ``bits[i, v]``.

        Args:
            pp: the particles.
            bits: ``[P, M, 2]`` bool, candidate ``(i, v)``'s values of ``(j1, j2)`` (the value
                of a padding coordinate is ignored); or ``[len(particles), M, 2]`` with ``particles``.
            particles: optional particle ids the rows of ``bits`` belong to (default: all, in order;
                repeats allowed, so a flat list of candidates is ``bits[C, 1, 2]`` with one id each).

        Returns:
            ``int64 [rows, M]``: ``U + D_F`` for every candidate's flip set ``F``.
        """
        self._need_base()
        bits = np.asarray(bits, dtype=bool)
        rows = np.arange(pp.num_particles) if particles is None else np.asarray(particles, dtype=np.int64)
        if bits.ndim != 3 or rows.ndim != 1 or bits.shape[0] != rows.size or bits.shape[2] != 2:
            raise ValueError(f"bits must have shape [{rows.size}, M, 2], got {bits.shape}")
        if rows.size and (rows.min() < 0 or rows.max() >= pp.num_particles):
            raise ValueError(f"particle ids must be in [0, {pp.num_particles})")
        if particles is None:
            table = self.particle_deltas(pp)
        else:
            uniq, inverse = np.unique(rows, return_inverse=True)
            table = self._subset_table(pp, uniq)[inverse]
        j1, j2 = pp.pairs[rows, 0], pp.pairs[rows, 1]
        f1 = bits[:, :, 0] != self.x[j1][:, None]
        f2 = (bits[:, :, 1] != self.x[np.where(j2 >= 0, j2, 0)][:, None]) & (j2 >= 0)[:, None]
        code = f1.astype(np.int64) + 2 * f2
        return self.base_unsat + np.take_along_axis(table, code, axis=1).astype(np.int64)

    def losses(self, scores, pp: ParticlePairs, coords, *, particles=None, unit: str = "fraction") -> np.ndarray:
        """The paper's loss of every candidate, from real-valued scores.

        Sets the base to ``round(sigmoid(scores))`` and evaluates candidates whose particle
        coordinates are ``coords`` (``[rows, M, 2]``, real): ``unit="fraction"`` gives
        ``count / m`` (float64), ``"count"`` the unsatisfied counts.
        """
        if unit not in ("fraction", "count"):
            raise ValueError(f"unit must be 'fraction' or 'count', got {unit!r}")
        self.set_base(assignment(scores))
        counts = self.evaluate(pp, assignment(coords), particles=particles)
        return counts if unit == "count" else counts.astype(np.float64) / max(self.cnf.num_clauses, 1)

    def _subset_table(self, pp: ParticlePairs, rows: np.ndarray) -> np.ndarray:
        sub = ParticlePairs(pp.pairs[rows], pp.particle_of, *_shared_subset(pp, rows))
        return self.particle_deltas(sub, all_variables=False)


def _shared_subset(pp: ParticlePairs, rows: np.ndarray):
    """The shared-clause lists of the particles ``rows``, renumbered to ``0..len(rows)-1``."""
    where = np.full(pp.num_particles, -1, dtype=np.int64)
    where[rows] = np.arange(rows.size)
    keep = where[pp.shared_particle] >= 0
    return (where[pp.shared_particle[keep]].astype(np.int32), pp.shared_clause[keep],
            pp.shared_sign1[keep], pp.shared_sign2[keep])
