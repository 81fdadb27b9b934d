"""SLA composition of per-stroke rasters with stroke weights (Eqs. 2-4, SPEC §2.2).

``X(w) = clamp(sum_k w_k S_k, 0, 1)``.  The paper's per-pixel masks ``omega_k`` are 1 exactly
on stroke ``k``'s pixels, so they reduce to one scalar weight per stroke.

Gradient rule: the clamp passes the upstream gradient wherever ``0 <= sum_k w_k S_k <= 1``
*inclusive*, so a pixel inked by exactly one stroke at ``w = 1`` gives that stroke the full
gradient (``jnp.clip`` would give half at the tie with 1).  Where strokes overlap
(``sum > 1`` at ``w = 1``) no gradient passes, as with ``torch.clamp`` in the paper's
footnote: removing one of two overlapping strokes leaves the pixel inked, which is what the
exact leave-one-stroke-out answer (that SLA approximates) sees as well.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["compose", "clamp_unit"]


@jax.custom_jvp
def clamp_unit(x: jax.Array) -> jax.Array:
    """``clip(x, 0, 1)`` whose derivative is 1 on the closed interval ``[0, 1]``, 0 outside."""
    return jnp.clip(x, 0.0, 1.0)


@clamp_unit.defjvp
def _clamp_unit_jvp(primals, tangents):
    (x,), (dx,) = primals, tangents
    inside = (x >= 0.0) & (x <= 1.0)
    return clamp_unit(x), jnp.where(inside, dx, jnp.zeros_like(dx))


def compose(stroke_images: jax.Array, weights: jax.Array) -> jax.Array:
    """Composes per-stroke rasters with stroke weights (Eq. 4 of the explainability paper).

    Args:
      stroke_images: ``float32[..., K, H, W]`` from :func:`sketchjax.render.stroke_rasters`.
      weights: ``float32[..., K]`` stroke weights (1 reproduces the full raster, 0 removes
        a stroke); anything that broadcasts to ``stroke_images.shape[:-2]`` (a scalar, one row
        ``[K]`` for every sketch), but no extra leading dimensions.

    Returns:
      ``float32[..., H, W]`` = ``clamp_unit(sum_k w_k S_k)``; differentiable in ``weights``
      (and in ``stroke_images``) with the gradient rule of the module docstring.
    """
    lead = np.shape(stroke_images)[:-2]
    try:
        fits = len(lead) >= 1 and jnp.broadcast_shapes(np.shape(weights), lead) == lead
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"compose: weights must broadcast to [..., K] = {lead} (one per stroke image), "
                         f"got shape {np.shape(weights)}")
    if not isinstance(weights, jax.core.Tracer) and not np.isfinite(np.asarray(weights)).all():
        raise ValueError("compose: weights must be finite (a NaN weight gives a NaN image)")
    weights = jnp.broadcast_to(jnp.asarray(weights), lead)
    summed = jnp.einsum(
        "...k,...khw->...hw", weights, stroke_images, precision=jax.lax.Precision.HIGHEST
    )
    return clamp_unit(summed)
