"""Linear parameter subspaces: ``theta = theta_0 + P z`` (paper/polystep_reconstruction.md §2.2).

A subspace maps coordinates ``z in R^D`` to a parameter displacement ``P z`` split into the model's
tensors.  It is a list of :class:`Block` s; block ``b`` owns the coordinates ``z[start:stop]`` and
writes ``z[start:stop] @ basis`` (or ``z[start:stop]`` itself for an identity block) into its target
tensors.  Three constructions:

* :func:`identity_subspace` -- ``P = I`` (full space, ``D = N``).
* :func:`random_subspace` -- one global projection with ``D`` orthonormal columns.
* :func:`hybrid_subspace` -- the paper's per-layer projection ("HybridSubspace"): every tensor ``W``
  with at least two dimensions, shape ``(d_out, d_in)`` (trailing dims flattened), gets
  ``n_W = r_e (d_out + d_in)`` coordinates, ``r_e = min(r, d_out, d_in)``, through
  ``P_W in R^{(d_out d_in) x n_W}`` with orthonormal columns (reduced QR of a Gaussian matrix) when
  ``d_out d_in >= n_W``, else ``Gaussian / sqrt(n_W)``; 1-D tensors (biases, norms) get identity
  coordinates.  ``max_dim`` caps ``D`` by shrinking only the projected blocks, proportionally.

Bases of a projected block (``basis=``): ``"qr"`` (the paper's: orthonormal rows from the reduced QR
of a dense Gaussian, ``n_W x d_out d_in`` numbers; for the 784-128-10 MLP at rank 4 that is 1.46 GB
and ~40 s of QR on 2 cores), ``"gaussian"`` (the same Gaussian without the QR) and the opt-in
structured ``"kronecker"`` (:class:`KroneckerBasis`: rows ``a_i (x) b_j``, i.e. ``B = a_i b_j^T``,
from ``p`` orthonormal ``a_i in R^{d_out}`` and ``q`` orthonormal ``b_j in R^{d_in}``, ``pq >= n_W``;
orthonormal by construction, ``p d_out + q d_in`` numbers -- 0.48 MB for that layer -- and
milliseconds to draw).  The Kronecker basis spans ``{A^T M B}``: a different, structured
distribution of subspaces than the Haar-random ``"qr"`` one (same ``D``), so it is an ablation, not
the paper's method.

``absorb`` (``theta_0 <- theta_0 + P z``, ``z <- 0``) lives in the optimizer; a subspace can be
redrawn with :meth:`Subspace.redraw` (the original code "regenerated" its projections with the
step-0 seed, i.e. identically -- paper/polystep_reconstruction.md §6 item 13; here a redraw really draws new ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import torch
from torch import Tensor

from ._validation import check_choice, check_int

__all__ = ["Block", "Subspace", "KroneckerBasis", "identity_subspace", "random_subspace",
           "hybrid_subspace", "SUBSPACE_KINDS", "make_subspace", "BASIS_KINDS", "kronecker_shape"]

SUBSPACE_KINDS = ("identity", "random", "hybrid")
BASIS_KINDS = ("qr", "gaussian", "kronecker")


@dataclass(frozen=True)
class Target:
    """A parameter tensor written by a block: ``name``, ``shape`` and its offset in the block's output."""

    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


class KroneckerBasis:
    """A lazy ``[n, d_out * d_in]`` matrix whose rows are Kronecker products ``a_i (x) b_j``.

    ``left = [a_1; ...; a_p]`` (``[p, d_out]``) and ``right = [b_1; ...; b_q]`` (``[q, d_in]``)
    have orthonormal rows and ``n <= p q``; coordinate ``c`` owns the pair::

        i(c) = c mod p,   j(c) = (i(c) + floor(c / p)) mod q,     row_c = vec(a_i b_j^T)

    (a bijection of ``[0, pq)`` onto the pairs, "diagonal" so that consecutive coordinates -- one
    particle -- differ in both factors).  The rows are orthonormal because ``<a_i (x) b_j,
    a_k (x) b_l> = <a_i, a_k><b_j, b_l> = delta_ik delta_jl``.  ``z @ basis`` is
    ``A^T M B`` with ``M[i(c), j(c)] = z_c`` (``O(p q d_in + p d_out d_in)`` instead of
    ``O(n d_out d_in)``), and a linear layer's response to row ``c`` on input ``x`` is
    ``(x . b_j) a_i`` (used by :mod:`polystep.fast_eval`).

    It behaves like the dense ``[n, m]`` tensor where the optimizer needs one: ``basis[idx]`` (a
    slice or an index tensor of any shape, optionally with a column slice) materialises those rows,
    ``z @ basis`` projects, :meth:`dense` builds the whole matrix (tests, small layers).
    """

    def __init__(self, left: Tensor, right: Tensor, size: int):
        if left.ndim != 2 or right.ndim != 2:
            raise ValueError("left and right must be matrices")
        if left.dtype != right.dtype or left.device != right.device:
            raise ValueError("left and right must share dtype and device")
        p, q = left.shape[0], right.shape[0]
        if not isinstance(size, int) or not 1 <= size <= p * q:
            raise ValueError(f"size must be an integer in [1, {p * q}], got {size!r}")
        self.left, self.right, self.size = left, right, size
        c = torch.arange(size, device=left.device)
        self.left_index = c % p
        self.right_index = (self.left_index + c // p) % q
        self.flat_index = self.left_index * q + self.right_index  # into M.flatten()

    @property
    def shape(self) -> tuple[int, int]:
        return (self.size, self.left.shape[1] * self.right.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self.left.dtype

    @property
    def device(self) -> torch.device:
        return self.left.device

    def numel_stored(self) -> int:
        """Numbers held (the factors), against ``n * d_out * d_in`` for a dense basis."""
        return self.left.numel() + self.right.numel()

    def __repr__(self) -> str:
        return (f"KroneckerBasis(size={self.size}, left={tuple(self.left.shape)}, "
                f"right={tuple(self.right.shape)}, dtype={self.dtype})")

    def to(self, device=None, dtype=None) -> "KroneckerBasis":
        return KroneckerBasis(self.left.to(device=device, dtype=dtype),
                              self.right.to(device=device, dtype=dtype), self.size)

    def factors(self, index) -> tuple[Tensor, Tensor]:
        """``(a_{i(c)}, b_{j(c)})`` for the coordinates ``index`` (slice or tensor):
        ``[..., d_out]`` and ``[..., d_in]``."""
        return self.left[self.left_index[index]], self.right[self.right_index[index]]

    def __getitem__(self, index) -> Tensor:
        cols = slice(None)
        if isinstance(index, tuple):
            if len(index) != 2:
                raise IndexError("a KroneckerBasis takes [rows] or [rows, column slice]")
            index, cols = index
        a, b = self.factors(index)
        rows = (a[..., :, None] * b[..., None, :]).flatten(-2)
        return rows if cols == slice(None) else rows[..., cols]

    def __rmatmul__(self, z: Tensor) -> Tensor:
        """``z @ basis`` for ``z [..., n]``: ``vec(A^T M B)`` with ``M[i(c), j(c)] = z_c``."""
        if not isinstance(z, Tensor):
            return NotImplemented
        if z.shape[-1] != self.size:
            raise ValueError(f"z must have last dimension {self.size}, got {tuple(z.shape)}")
        p, q = self.left.shape[0], self.right.shape[0]
        m = z.new_zeros(*z.shape[:-1], p * q).index_copy_(-1, self.flat_index, z)
        m = m.reshape(*z.shape[:-1], p, q)
        left, right = self.left.to(z.dtype), self.right.to(z.dtype)
        return (left.T @ m @ right).flatten(-2)

    def dense(self) -> Tensor:
        """The whole ``[n, d_out d_in]`` matrix."""
        return self[:]


def kronecker_shape(n: int, d_out: int, d_in: int) -> tuple[int, int] | None:
    """Factor counts ``(p, q)`` of a Kronecker basis with ``n`` rows for a ``[d_out, d_in]`` tensor:
    ``pq >= n``, ``p <= d_out``, ``q <= d_in``, balanced so that ``p / d_out ~ q / d_in``
    (``p ~ sqrt(n d_out / d_in)``); ``None`` when ``n > d_out d_in`` (no orthonormal basis)."""
    if n > d_out * d_in:
        return None
    p = min(d_out, max(1, round(math.sqrt(n * d_out / d_in))))
    q = min(d_in, -(-n // p))
    return -(-n // q), q  # the fewest left factors for this q (<= p, or <= d_out when q = d_in)


BasisLike = Tensor | KroneckerBasis


@dataclass(frozen=True)
class Block:
    """Coordinates ``z[start:stop]`` -> ``z[start:stop] @ basis`` (``basis``: ``[stop - start, m]``,
    rows are the projection's columns ``P_W^T``; a dense tensor or a :class:`KroneckerBasis`), or
    the identity when ``basis is None``."""

    start: int
    stop: int
    targets: tuple[Target, ...]
    basis: BasisLike | None = None

    @property
    def size(self) -> int:
        return self.stop - self.start

    @property
    def out_numel(self) -> int:
        return sum(t.numel for t in self.targets)


class Subspace:
    """A linear map ``z in R^D -> P z``, split into named parameter tensors."""

    def __init__(self, blocks: Iterable[Block], kind: str, settings: Mapping | None = None):
        self.blocks: tuple[Block, ...] = tuple(blocks)
        self.kind = kind
        self.settings = dict(settings or {})
        start = 0
        for b in self.blocks:
            if b.start != start or b.stop < b.start:
                raise ValueError("blocks must tile [0, D) in order")
            if b.basis is None and b.size != b.out_numel:
                raise ValueError("an identity block needs as many coordinates as parameters")
            if b.basis is not None and tuple(b.basis.shape) != (b.size, b.out_numel):
                raise ValueError(f"basis shape {tuple(b.basis.shape)} != {(b.size, b.out_numel)}")
            start = b.stop
        self.dim = start
        self.names = tuple(t.name for b in self.blocks for t in b.targets)

    def __repr__(self) -> str:
        return f"Subspace(kind={self.kind!r}, dim={self.dim}, tensors={len(self.names)})"

    def block_of(self, name: str) -> Block:
        for b in self.blocks:
            if any(t.name == name for t in b.targets):
                return b
        raise KeyError(name)

    def delta(self, z: Tensor) -> dict[str, Tensor]:
        """``P z`` for ``z`` of shape ``[..., D]``, as ``{name: [..., *shape]}``."""
        if z.shape[-1] != self.dim:
            raise ValueError(f"z must have last dimension D={self.dim}, got {tuple(z.shape)}")
        lead = z.shape[:-1]
        out: dict[str, Tensor] = {}
        for b in self.blocks:
            zb = z[..., b.start:b.stop]
            flat = zb if b.basis is None else zb @ b.basis.to(dtype=zb.dtype)
            for t in b.targets:
                out[t.name] = flat[..., t.offset:t.offset + t.numel].reshape((*lead, *t.shape))  # 0-d ok
        return out

    def to(self, device=None, dtype=None) -> "Subspace":
        blocks = [Block(b.start, b.stop, b.targets,
                        None if b.basis is None else b.basis.to(device=device, dtype=dtype))
                  for b in self.blocks]
        return Subspace(blocks, self.kind, self.settings)

    def redraw(self, generator: torch.Generator) -> "Subspace":
        """The same construction with freshly drawn bases (used by absorb-and-redraw)."""
        return make_subspace(self.kind, self._named_shapes(), generator=generator,
                             dtype=self._dtype(), device=self._device(), **self.settings)

    def _named_shapes(self) -> dict[str, tuple[int, ...]]:
        return {t.name: t.shape for b in self.blocks for t in b.targets}

    def _dtype(self) -> torch.dtype:
        return next((b.basis.dtype for b in self.blocks if b.basis is not None), torch.float32)

    def _device(self):
        return next((b.basis.device for b in self.blocks if b.basis is not None), None)


def _shapes(named: Mapping[str, Tensor | tuple[int, ...]]) -> dict[str, tuple[int, ...]]:
    out = {}
    for name, value in named.items():
        shape = tuple(value.shape) if isinstance(value, Tensor) else tuple(value)
        if math.prod(shape) == 0:
            raise ValueError(f"parameter {name!r} is empty")
        out[name] = shape
    if not out:
        raise ValueError("no parameters given")
    return out


def _orthonormal_rows(n: int, m: int, generator: torch.Generator, dtype, device, basis: str) -> Tensor:
    """``[n, m]`` with orthonormal rows (``n <= m``, ``basis="qr"``) or ``N(0, 1/m)`` entries."""
    g = torch.randn(n, m, generator=generator, dtype=dtype, device=device)  # rows = columns of P
    if basis == "qr" and m >= n:
        # QR of the [m, n] Gaussian; g.T is column-major, so LAPACK needs no input copy, and the
        # column-major Q comes back so that Q.T is row-major: peak ~2.5 matrices instead of ~4
        q, r = torch.linalg.qr(g.T)
        del g
        q.mul_(torch.where(torch.diagonal(r) < 0, -1.0, 1.0).to(q.dtype))  # unique QR: diag(R) > 0
        rows = q.T
        return rows if rows.is_contiguous() else rows.contiguous()
    # overcomplete layer (n > m), or the cheap near-orthonormal basis: columns of norm ~ 1
    return g.div_(math.sqrt(max(m, n) if basis == "qr" else m))


def _projection(n: int, shape: tuple[int, ...], generator: torch.Generator, dtype, device,
                basis: str) -> BasisLike:
    """The ``n`` basis rows of a tensor of ``shape`` (``[d_out, d_in]`` after flattening the trailing
    dimensions).  An overcomplete Kronecker request (``n > d_out d_in``) takes the dense ``"qr"``
    construction's Gaussian rows, as ``"qr"`` does."""
    d_out, d_in = shape[0], math.prod(shape[1:])
    if basis == "kronecker":
        pq = kronecker_shape(n, d_out, d_in)
        if pq is not None:
            left = _orthonormal_rows(pq[0], d_out, generator, dtype, device, "qr")
            right = _orthonormal_rows(pq[1], d_in, generator, dtype, device, "qr")
            return KroneckerBasis(left, right, n)
        basis = "qr"
    return _orthonormal_rows(n, d_out * d_in, generator, dtype, device, basis)


def identity_subspace(named: Mapping[str, Tensor | tuple[int, ...]], **_: object) -> Subspace:
    """Full space: ``D = N`` coordinates, ``theta = theta_0 + z`` (tensors in the given order)."""
    blocks, start = [], 0
    for name, shape in _shapes(named).items():
        n = math.prod(shape)
        blocks.append(Block(start, start + n, (Target(name, shape, 0),)))
        start += n
    return Subspace(blocks, "identity")


def random_subspace(named: Mapping[str, Tensor | tuple[int, ...]], *, dim: int,
                    generator: torch.Generator, dtype=torch.float32, device=None,
                    basis: str = "qr") -> Subspace:
    """One global projection ``P in R^{N x D}`` with orthonormal columns (``D <= N``)."""
    shapes = _shapes(named)
    dim = check_int("dim", dim, 1)
    targets, offset = [], 0
    for name, shape in shapes.items():
        targets.append(Target(name, shape, offset))
        offset += math.prod(shape)
    if dim > offset:
        raise ValueError(f"dim must be <= the number of parameters N={offset}, got {dim}")
    if basis not in ("qr", "gaussian"):
        raise ValueError(f"basis must be 'qr' or 'gaussian' for the random subspace (one projection "
                         f"of the whole flattened parameter vector has no matrix to factor), got {basis!r}")
    b = _orthonormal_rows(dim, offset, generator, dtype, device, basis)
    return Subspace([Block(0, dim, tuple(targets), b)], "random", {"dim": dim, "basis": basis})


def hybrid_subspace(named: Mapping[str, Tensor | tuple[int, ...]], *, rank: int,
                    generator: torch.Generator, max_dim: int | None = None, dtype=torch.float32,
                    device=None, basis: str = "qr") -> Subspace:
    """The paper's per-layer projection (paper/polystep_reconstruction.md §2.2); see the module docstring."""
    shapes = _shapes(named)
    rank = check_int("rank", rank, 1)
    check_choice("basis", basis, BASIS_KINDS)
    sizes = {}
    for name, shape in shapes.items():
        if len(shape) >= 2:
            d_out, d_in = shape[0], math.prod(shape[1:])
            sizes[name] = min(rank, d_out, d_in) * (d_out + d_in)
        else:
            sizes[name] = math.prod(shape)
    if max_dim is not None:
        max_dim = check_int("max_dim", max_dim, 1)
        fixed = sum(s for n, s in sizes.items() if len(shapes[n]) < 2)
        projected = sum(s for n, s in sizes.items() if len(shapes[n]) >= 2)
        budget = max_dim - fixed
        if projected and projected + fixed > max_dim:
            if budget < sum(1 for n in sizes if len(shapes[n]) >= 2):
                raise ValueError(f"max_dim={max_dim} leaves no coordinates for the projected "
                                 f"layers (the 1-D tensors alone need {fixed})")
            for n in sizes:
                if len(shapes[n]) >= 2:
                    sizes[n] = max(1, int(sizes[n] * budget / projected))
            proj = [n for n in sizes if len(shapes[n]) >= 2]
            while sum(sizes[n] for n in proj) > budget:  # the max(1, .) floor can overshoot
                sizes[max(proj, key=lambda n: sizes[n])] -= 1
    blocks, start = [], 0
    for name, shape in shapes.items():
        n = sizes[name]
        if len(shape) >= 2:
            rows = _projection(n, shape, generator, dtype, device, basis)
            blocks.append(Block(start, start + n, (Target(name, shape, 0),), rows))
        else:
            blocks.append(Block(start, start + n, (Target(name, shape, 0),)))
        start += n
    return Subspace(blocks, "hybrid", {"rank": rank, "max_dim": max_dim, "basis": basis})


def make_subspace(kind: str, named: Mapping[str, Tensor | tuple[int, ...]], *,
                  generator: torch.Generator | None = None, dtype=torch.float32, device=None,
                  **settings) -> Subspace:
    """Build a subspace by name: ``identity`` | ``random`` (needs ``dim``) | ``hybrid`` (needs ``rank``)."""
    if kind == "identity":
        return identity_subspace(named)
    check_choice("subspace", kind, SUBSPACE_KINDS)
    if generator is None:
        raise ValueError(f"a {kind} subspace needs a torch.Generator")
    build = random_subspace if kind == "random" else hybrid_subspace
    return build(named, generator=generator, dtype=dtype, device=device, **settings)
