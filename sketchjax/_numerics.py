"""Small numerical helpers shared by the differentiable code."""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["safe_sqrt", "safe_norm"]


def safe_sqrt(sq: jax.Array) -> jax.Array:
    """``sqrt(sq)`` for ``sq >= 0`` whose gradient at 0 is 0 instead of inf: ``grad`` through a
    norm of a zero vector (a point with no attribution, a blank feature) stays finite, also
    when differentiated again."""
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def safe_norm(x: jax.Array, axis: int = -1) -> jax.Array:
    """Euclidean norm over ``axis`` with :func:`safe_sqrt`'s zero gradient at the origin."""
    return safe_sqrt(jnp.sum(jnp.square(x), axis=axis))
