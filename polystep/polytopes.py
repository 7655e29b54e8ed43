"""Polytope vertex templates and Haar-random rotations (paper/polystep_reconstruction.md §2.3 and §2.4).

PolyStep moves every particle ``x_i`` in ``R^d`` towards a barycentre of the vertices of a randomly
rotated, unit-radius polytope centred at ``x_i``:

    y_{i,v} = x_i + r_s R_i u_v,        R_i ~ Haar(SO(d)),  v = 1..V,

where ``{u_v}`` is one of three templates (all vertices unit norm, sum of vertices = 0):

=============  ============  ===============================================================
kind           V             template ``u_v``
=============  ============  ===============================================================
``simplex``    ``d + 1``     regular simplex, ``<u_v, u_w> = -1/d`` for ``v != w``
``orthoplex``  ``2 d``       ``+e_1, -e_1, +e_2, -e_2, ..., +e_d, -e_d`` (cross-polytope)
``cube``       ``2 ** d``    ``(+-1, ..., +-1) / sqrt(d)``
=============  ============  ===============================================================

Because every template is centred, uniform weights give a zero displacement (the
``eps -> inf`` limit, paper/polystep_reconstruction.md §2.14), and because every vertex has unit norm the
barycentric update moves a particle by at most ``r_s`` (paper/polystep_reconstruction.md §2.8).

The rotations are Haar-distributed on ``SO(d)`` (Mezzadri 2007, "How to generate random matrices
from the classical compact groups"): ``Z ~ N(0, 1)^{d x d}``, ``Z = Q R`` (QR), ``Q <- Q diag(sign
diag R)`` (with ``sign 0 := +1``) gives Haar on ``O(d)``; flipping the first column of the
orientation-reversing half maps it onto ``SO(d)`` while preserving left-invariance, hence Haar
on ``SO(d)``.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import torch
from torch import Tensor

from ._validation import check_choice, check_int

__all__ = ["VERTEX_KINDS", "num_vertices", "vertices", "random_rotations"]

#: Valid polytope kinds, in the order used throughout the package.
VERTEX_KINDS: tuple[str, ...] = ("simplex", "orthoplex", "cube")

#: Above this dimension ``vertices("cube", dim)`` emits a ``UserWarning`` (``2**dim`` vertices).
CUBE_WARN_DIM = 8
#: Above this dimension ``vertices("cube", dim)`` raises (``2**16 = 65536`` vertices at most).
CUBE_MAX_DIM = 16


def _check_float_dtype(dtype: Any) -> torch.dtype:
    """Return ``dtype`` if it is a floating-point ``torch.dtype``, else raise ``ValueError``."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return dtype


def num_vertices(kind: str, dim: int) -> int:
    """Number of vertices ``V`` of the ``kind`` polytope in ``R^dim`` (paper/polystep_reconstruction.md §2.3).

    ``simplex``: ``dim + 1``; ``orthoplex``: ``2 * dim``; ``cube``: ``2 ** dim``.

    Args:
        kind: One of :data:`VERTEX_KINDS`.
        dim: Ambient (particle) dimension ``d_p >= 1``.

    Returns:
        The vertex count ``V``.

    Raises:
        ValueError: If ``kind`` is unknown or ``dim < 1``.
    """
    kind = check_choice("kind", kind, VERTEX_KINDS)
    dim = check_int("dim", dim, 1)
    if kind == "simplex":
        return dim + 1
    if kind == "orthoplex":
        return 2 * dim
    return 2**dim


def _simplex(dim: int, dtype: torch.dtype, device: Any) -> Tensor:
    """Regular simplex with ``dim + 1`` unit vertices in ``R^dim`` and Gram off-diagonal ``-1/dim``.

    The centred standard basis ``e_i - 1/(dim+1) 1`` of ``R^{dim+1}`` lies in the hyperplane
    ``1^perp``; its coordinates in the orthonormal Helmert basis ``h_k = (1, ..., 1, -k, 0, ...,
    0) / sqrt(k (k+1))`` (``k`` ones, ``k = 1..dim``) are ``H[i, k] = h_k[i]`` because
    ``<h_k, 1> = 0``. Those rows have squared norm ``dim/(dim+1)`` and pairwise inner products
    ``-1/(dim+1)``, so scaling by ``sqrt((dim+1)/dim)`` gives unit vertices with
    ``<u_i, u_j> = -1/dim``. For ``dim = 1`` this yields ``[+1], [-1]``.
    """
    n = dim + 1
    # Build in float64 for accuracy, cast at the end.
    i = torch.arange(n, dtype=torch.float64).unsqueeze(1)  # vertex index 0..dim
    k = torch.arange(1, n, dtype=torch.float64).unsqueeze(0)  # Helmert index 1..dim
    helmert = torch.where(i < k, 1.0, torch.where(i == k, -k, 0.0))
    helmert = helmert / torch.sqrt(k * (k + 1.0))
    u = helmert * math.sqrt(n / dim)
    return u.to(dtype=dtype, device=device)


def _orthoplex(dim: int, dtype: torch.dtype, device: Any) -> Tensor:
    """Cross-polytope ``+e_1, -e_1, +e_2, -e_2, ...`` (row ``2k`` is ``+e_{k+1}``, row ``2k+1`` is ``-e_{k+1}``)."""
    eye = torch.eye(dim, dtype=dtype, device=device)
    neg = torch.zeros_like(eye) - eye  # avoids signed zeros from unary minus
    return torch.stack((eye, neg), dim=1).reshape(2 * dim, dim)


def _cube(dim: int, dtype: torch.dtype, device: Any) -> Tensor:
    """Hypercube ``(+-1, ..., +-1)/sqrt(dim)``; vertex ``v`` has coordinate ``k`` negative iff bit ``k`` of ``v`` is set."""
    v = torch.arange(2**dim, device=device).unsqueeze(1)
    bits = (v >> torch.arange(dim, device=device).unsqueeze(0)) & 1
    signs = 1.0 - 2.0 * bits.to(dtype)
    return signs / math.sqrt(dim)


def vertices(kind: str, dim: int, *, dtype: torch.dtype = torch.float64, device: Any = None) -> Tensor:
    """Unit-norm, centred vertex template ``{u_v}`` of a polytope in ``R^dim``
    (paper/polystep_reconstruction.md §2.3).

    All templates satisfy ``||u_v|| = 1`` and ``sum_v u_v = 0``.

    * ``simplex``: ``dim + 1`` vertices with ``<u_v, u_w> = -1/dim`` (``v != w``), built from the
      centred standard basis of ``R^{dim+1}`` expressed in the orthonormal Helmert basis of
      ``1^perp`` (see :func:`_simplex`); ``dim = 1`` gives ``[+1], [-1]``.
    * ``orthoplex``: ``2 dim`` vertices ordered ``+e_1, -e_1, +e_2, -e_2, ..., +e_dim, -e_dim``.
    * ``cube``: ``2 ** dim`` vertices ``(+-1, ..., +-1) / sqrt(dim)``; vertex ``v`` has a negative
      coordinate ``k`` iff bit ``k`` of ``v`` is set. Emits a ``UserWarning`` for ``dim > 8``.

    Args:
        kind: One of :data:`VERTEX_KINDS`.
        dim: Ambient dimension ``>= 1`` (``<= 16`` for ``cube``).
        dtype: Floating-point dtype of the result.
        device: Device of the result (default: the default device).

    Returns:
        Tensor of shape ``[V, dim]`` with ``V = num_vertices(kind, dim)``.

    Raises:
        ValueError: If ``kind`` is unknown, ``dim < 1``, ``dim > 16`` for ``cube``, or ``dtype``
            is not a floating-point dtype.
    """
    kind = check_choice("kind", kind, VERTEX_KINDS)
    dim = check_int("dim", dim, 1)
    dtype = _check_float_dtype(dtype)
    if kind == "simplex":
        return _simplex(dim, dtype, device)
    if kind == "orthoplex":
        return _orthoplex(dim, dtype, device)
    if dim > CUBE_MAX_DIM:
        raise ValueError(
            f"dim must be <= {CUBE_MAX_DIM} for kind='cube' (2**dim vertices), got {dim}"
        )
    if dim > CUBE_WARN_DIM:
        warnings.warn(
            f"vertices('cube', dim={dim}) has 2**{dim} = {2**dim} vertices; every PolyStep step "
            "evaluates the loss once per vertex and probe",
            UserWarning,
            stacklevel=2,
        )
    return _cube(dim, dtype, device)


def random_rotations(
    n: int,
    dim: int,
    generator: torch.Generator,
    *,
    dtype: torch.dtype = torch.float64,
    device: Any = None,
) -> Tensor:
    """Draw ``n`` independent Haar-distributed rotations ``R ~ Haar(SO(dim))``
    (paper/polystep_reconstruction.md §2.4).

    * ``dim = 1``: ``SO(1) = {1}``; returns ones and consumes no randomness.
    * ``dim = 2``: ``R = [[cos phi, -sin phi], [sin phi, cos phi]]`` with ``phi ~ U[0, 2 pi)``.
    * ``dim >= 3``: ``Z ~ N(0, 1)^{dim x dim}``, ``Z = Q R`` (batched QR), ``Q <- Q diag(s)`` with
      ``s_j = sign(R_jj)`` and ``sign(0) := +1`` (Mezzadri 2007; Haar on ``O(dim)``); where
      ``det Q < 0`` the first column is negated, which maps ``O(dim)`` Haar onto ``SO(dim)`` Haar.

    Random numbers are drawn on ``generator.device`` in ``dtype`` (batched, no loop over ``n``),
    so the output is a deterministic function of the generator state; the result is then moved
    to ``device`` if one is given.

    Args:
        n: Number of rotations ``>= 0``.
        dim: Dimension ``>= 1``.
        generator: Source of randomness (its state is advanced).
        dtype: Floating-point dtype of the sample and the result.
        device: Device of the result (default: ``generator.device``).

    Returns:
        Tensor of shape ``[n, dim, dim]``; each slice is orthogonal with determinant ``+1``.

    Raises:
        ValueError: If ``n < 0``, ``dim < 1``, ``dtype`` is not floating point, or ``generator``
            is not a ``torch.Generator``.
    """
    n = check_int("n", n, 0)
    dim = check_int("dim", dim, 1)
    dtype = _check_float_dtype(dtype)
    if not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    gen_device = generator.device
    out_device = gen_device if device is None else torch.device(device)

    if dim == 1:
        return torch.ones((n, 1, 1), dtype=dtype, device=out_device)

    if dim == 2:
        phi = 2.0 * math.pi * torch.rand((n,), generator=generator, dtype=dtype, device=gen_device)
        c, s = torch.cos(phi), torch.sin(phi)
        rot = torch.stack((torch.stack((c, -s), dim=-1), torch.stack((s, c), dim=-1)), dim=-2)
        return rot.to(out_device)

    z = torch.randn((n, dim, dim), generator=generator, dtype=dtype, device=gen_device)
    q, r = torch.linalg.qr(z)
    diag = torch.diagonal(r, dim1=-2, dim2=-1)
    signs = torch.where(diag < 0, -torch.ones_like(diag), torch.ones_like(diag))
    q = q * signs.unsqueeze(-2)  # scale column j by sign(R_jj)
    if n > 0:
        det = torch.linalg.det(q)
        flip = torch.ones((n, dim), dtype=dtype, device=gen_device)
        flip[:, 0] = torch.where(det < 0, -1.0, 1.0).to(dtype)
        q = q * flip.unsqueeze(-2)
    return q.to(out_device)
