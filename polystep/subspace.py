"""Linear parameter subspaces: ``theta = theta_0 + P z`` (digest section 2.2).

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

``absorb`` (``theta_0 <- theta_0 + P z``, ``z <- 0``) lives in the optimizer; a subspace can be
redrawn with :meth:`Subspace.redraw` (the original code "regenerated" its projections with the
step-0 seed, i.e. identically -- digest section 6 item 13; here a redraw really draws new ones).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

import torch
from torch import Tensor

__all__ = ["Block", "Subspace", "identity_subspace", "random_subspace", "hybrid_subspace",
           "SUBSPACE_KINDS", "make_subspace", "BASIS_KINDS"]

SUBSPACE_KINDS = ("identity", "random", "hybrid")
BASIS_KINDS = ("qr", "gaussian")


@dataclass(frozen=True)
class Target:
    """A parameter tensor written by a block: ``name``, ``shape`` and its offset in the block's output."""

    name: str
    shape: tuple[int, ...]
    offset: int

    @property
    def numel(self) -> int:
        return math.prod(self.shape)


@dataclass(frozen=True)
class Block:
    """Coordinates ``z[start:stop]`` -> ``z[start:stop] @ basis`` (``basis``: ``[stop - start, m]``,
    rows are the projection's columns ``P_W^T``), or the identity when ``basis is None``."""

    start: int
    stop: int
    targets: tuple[Target, ...]
    basis: Tensor | None = None

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
            flat = zb if b.basis is None else zb @ b.basis.to(zb.dtype)
            for t in b.targets:
                out[t.name] = flat[..., t.offset:t.offset + t.numel].reshape(*lead, *t.shape)
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
    if not isinstance(dim, int) or dim < 1:
        raise ValueError(f"dim must be an integer >= 1, got {dim!r}")
    targets, offset = [], 0
    for name, shape in shapes.items():
        targets.append(Target(name, shape, offset))
        offset += math.prod(shape)
    if dim > offset:
        raise ValueError(f"dim must be <= the number of parameters N={offset}, got {dim}")
    if basis not in BASIS_KINDS:
        raise ValueError(f"basis must be one of {BASIS_KINDS}, got {basis!r}")
    b = _orthonormal_rows(dim, offset, generator, dtype, device, basis)
    return Subspace([Block(0, dim, tuple(targets), b)], "random", {"dim": dim, "basis": basis})


def hybrid_subspace(named: Mapping[str, Tensor | tuple[int, ...]], *, rank: int,
                    generator: torch.Generator, max_dim: int | None = None, dtype=torch.float32,
                    device=None, basis: str = "qr") -> Subspace:
    """The paper's per-layer projection (digest section 2.2); see the module docstring."""
    shapes = _shapes(named)
    if not isinstance(rank, int) or isinstance(rank, bool) or rank < 1:
        raise ValueError(f"rank must be an integer >= 1, got {rank!r}")
    if basis not in BASIS_KINDS:
        raise ValueError(f"basis must be one of {BASIS_KINDS}, got {basis!r}")
    sizes = {}
    for name, shape in shapes.items():
        if len(shape) >= 2:
            d_out, d_in = shape[0], math.prod(shape[1:])
            sizes[name] = min(rank, d_out, d_in) * (d_out + d_in)
        else:
            sizes[name] = math.prod(shape)
    if max_dim is not None:
        if not isinstance(max_dim, int) or max_dim < 1:
            raise ValueError(f"max_dim must be an integer >= 1, got {max_dim!r}")
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
            rows = _orthonormal_rows(n, math.prod(shape), generator, dtype, device, basis)
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
    if kind not in SUBSPACE_KINDS:
        raise ValueError(f"subspace must be one of {SUBSPACE_KINDS}, got {kind!r}")
    if generator is None:
        raise ValueError(f"a {kind} subspace needs a torch.Generator")
    build = random_subspace if kind == "random" else hybrid_subspace
    return build(named, generator=generator, dtype=dtype, device=device, **settings)
