"""Small numerical helpers shared by the differentiable code."""
from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["safe_sqrt", "safe_norm", "compute_dtype", "to_rank", "fits_int32_index"]

#: the largest flat index the renderers' scatters form in int32 (slot * pixels + pixel)
MAX_FLAT_INDEX = 2**31 - 1


def compute_dtype(x) -> jnp.dtype:
    """The floating type to compute ``x`` in: at least float32 (bfloat16 / float16 are too coarse
    for norms, angles and canvas fits), float64 kept under ``jax_enable_x64``, float32 for
    integers."""
    dtype = jnp.asarray(x).dtype
    return jnp.promote_types(dtype, jnp.float32) if jnp.issubdtype(dtype, jnp.floating) else jnp.dtype(jnp.float32)


def safe_sqrt(sq: jax.Array) -> jax.Array:
    """``sqrt(sq)`` for ``sq >= 0`` whose gradient at 0 is 0 instead of inf: ``grad`` through a
    norm of a zero vector (a point with no attribution, a blank feature) stays finite, also
    when differentiated again."""
    pos = sq > 0
    return jnp.where(pos, jnp.sqrt(jnp.where(pos, sq, 1.0)), 0.0)


def safe_norm(x: jax.Array, axis: int = -1) -> jax.Array:
    """Euclidean norm over ``axis`` with :func:`safe_sqrt`'s zero gradient at the origin."""
    return safe_sqrt(jnp.sum(jnp.square(x), axis=axis))


def to_rank(x: jax.Array, ndim: int) -> jax.Array:
    """``x`` with size-1 axes prepended up to rank ``ndim`` (unchanged if already that long).

    NumPy's implicit rank promotion made explicit: a ``[n]`` constant (an ``arange``, a canvas
    centre) then broadcasts against ``[..., n]`` arrays with any leading batch axes also under
    ``jax_numpy_rank_promotion='raise'``."""
    x = jnp.asarray(x)
    return x.reshape((1,) * (ndim - x.ndim) + x.shape)


def fits_int32_index(n) -> bool:
    """Whether ``n`` elements can be indexed by one int32 (the renderers scatter into flat
    buffers: an output of more than 2**31 pixels overflowed the index while tracing, so above
    that they index two axes apart).  A symbolic size (``jax.export`` with a symbolic batch) is
    not known to fit, so it takes the two-axis scatter, right at any size."""
    try:
        return bool(n <= MAX_FLAT_INDEX)
    except Exception:  # jax.export's InconclusiveDimensionOperation
        return False
