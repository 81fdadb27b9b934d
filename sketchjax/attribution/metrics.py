"""Faithfulness and agreement metrics for stroke attributions (SPEC §3, §7).

* :func:`deletion_curve` — the score as strokes are removed (or, ``insertion=True``, added to
  an empty canvas) in decreasing order of attribution; :func:`curve_auc` its area on a
  ``[0, 1]`` fraction-of-strokes axis (deletion: lower = more faithful; insertion: higher).
* :func:`rank_correlation` — Spearman (ties averaged) or Kendall tau-b between two score
  vectors over a mask, per row (agreement with exact occlusion).
* :func:`drawing_order_correlation` — correlation of attribution with human drawing order
  (E §5.1: early strokes high).
* :func:`mean_ci` — mean over sketches with a bootstrap confidence interval (host side).

All but :func:`mean_ci` are pure ``jax.numpy`` over a batch ``[B, K]`` (pairwise forms, no
Python loops), jit/vmap-able.
"""
from __future__ import annotations

from typing import Any, Optional

import jax
import jax.numpy as jnp
import numpy as np

from sketchjax._numerics import to_rank
from sketchjax.attribution.core import Finish, ScoreFn, _check_strokes, _stack_scores, present_strokes
from sketchjax.render.compose import clamp_unit

__all__ = [
    "stroke_order",
    "deletion_curve",
    "curve_auc",
    "rank_correlation",
    "drawing_order_correlation",
    "mean_ci",
]


def stroke_order(scores: jax.Array, present: jax.Array) -> jax.Array:
    """``int32[B, K]``: stroke indices by decreasing score, present strokes first.

    Ties keep stroke order — i.e. drawing order — (a stable sort), absent strokes come last
    in index order, whatever their scores (a present stroke scored ``-inf`` or NaN still
    comes before them: NaN after every number).
    """
    by_score = jnp.argsort(jnp.where(present, -scores, 0.0), axis=-1, stable=True)
    absent = jnp.take_along_axis(~jnp.asarray(present, bool), by_score, axis=-1)
    return jnp.take_along_axis(by_score, jnp.argsort(absent, axis=-1, stable=True), axis=-1).astype(jnp.int32)


def _check_scores_finite(name: str, scores, present) -> None:
    """Concrete scores of present strokes are finite (a NaN has no place in a ranking)."""
    if any(isinstance(x, jax.core.Tracer) for x in (scores, present)):
        return
    bad = np.asarray(present, bool) & ~np.isfinite(np.asarray(scores, np.float64))
    if bad.any():
        b, k = (int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}: the score of drawn stroke {k} of sketch {b} is not finite "
                         f"({np.asarray(scores)[b, k]}): no order to remove strokes in")


def deletion_curve(
    score_fn: ScoreFn,
    stroke_images: jax.Array,
    scores: jax.Array,
    aux: Any = None,
    *,
    finish: Finish = None,
    insertion: bool = False,
) -> jax.Array:
    """Scores after removing (adding) the ``i`` highest-attributed strokes, ``i = 0..K``.

    Args:
      score_fn: the score to track (e.g. the explained class's probability).
      stroke_images: ``float32[B, K, H, W]`` per-stroke canvas rasters.
      scores: ``float32[B, K]`` stroke attributions defining the order (high first).
      aux: per-row argument of ``score_fn``.
      finish: canvas raster → model input.
      insertion: start from the empty canvas and add strokes instead.

    Returns:
      ``float32[B, K + 1]``; entries past the sketch's number of present strokes ``n`` repeat
      entry ``n`` (every drawing stroke removed / added).  Images are exact rasters of the
      partial sketches (cumulative sums in stroke order, clamped).  ``B (K + 1)`` forwards.
      Ties in ``scores`` are broken by stroke (drawing) order.  A non-finite score of a
      drawn stroke is a ``ValueError`` when ``scores`` is concrete; under ``jit`` that row's
      curve is NaN.
    """
    _check_strokes(stroke_images, "deletion_curve")
    if np.shape(scores) != np.shape(stroke_images)[:2]:
        raise ValueError(f"deletion_curve: scores must be [B, K] = {np.shape(stroke_images)[:2]} (one per stroke "
                         f"image), got {np.shape(scores)}")
    present = present_strokes(stroke_images)
    _check_scores_finite("deletion_curve", scores, present)
    order = stroke_order(scores, present)
    ordered = jnp.take_along_axis(stroke_images, order[:, :, None, None], axis=1)
    partial = jnp.cumsum(ordered, axis=1)
    partial = jnp.concatenate([jnp.zeros_like(partial[:, :1]), partial], axis=1)  # [B, K+1, H, W]
    images = partial if insertion else partial[:, -1:] - partial
    curve = _stack_scores(score_fn, clamp_unit(images), aux, finish, "deletion_curve")
    unordered = jnp.any(present & ~jnp.isfinite(scores), axis=-1)
    return jnp.where(unordered[:, None], jnp.nan, curve)


def curve_auc(curve: jax.Array, n: jax.Array) -> jax.Array:
    """Trapezoid area under ``curve[..., :n+1]`` on the axis ``i / n`` (``[0, 1]``): ``float32[...]``.

    ``curve``: ``[..., K + 1]`` (e.g. ``[B, K + 1]``; one ``[K + 1]`` row under ``vmap``);
    ``n``: ``int[...]`` number of strokes that draw something (``0 <= n <= K``, checked when
    concrete); NaN where ``n = 0``.
    """
    n = jnp.asarray(n)
    if np.ndim(curve) < 1 or n.shape != np.shape(curve)[:-1] or not jnp.issubdtype(n.dtype, jnp.integer):
        raise ValueError(f"curve_auc: need curve [..., K + 1] and integer n [...] (one per curve), got "
                         f"{np.shape(curve)} and {n.shape} {n.dtype}")
    k = np.shape(curve)[-1] - 1
    if not isinstance(n, jax.core.Tracer) and not np.all((np.asarray(n) >= 0) & (np.asarray(n) <= k)):
        raise ValueError(f"curve_auc: n must count strokes in [0, K={k}] (the curve has K + 1 entries), got "
                         f"{np.asarray(n).ravel()[:8].tolist()}")
    i = to_rank(jnp.arange(np.shape(curve)[-1]), np.ndim(curve))
    inside = i <= n[..., None]
    total = jnp.sum(jnp.where(inside, curve, 0.0), axis=-1)
    ends = curve[..., 0] + jnp.take_along_axis(curve, jnp.clip(n, 0, k)[..., None], axis=-1)[..., 0]
    auc = (total - 0.5 * ends) / jnp.maximum(n, 1).astype(total.dtype)  # explicit: strict dtype promotion
    return jnp.where(n > 0, auc, jnp.nan)


def _average_ranks(x: jax.Array, mask: jax.Array) -> jax.Array:
    """1-based ranks of ``x`` among the masked entries of each row, ties averaged (0 off-mask)."""
    m = mask.astype(x.dtype)
    less = jnp.sum((x[..., None, :] < x[..., :, None]).astype(x.dtype) * m[..., None, :], axis=-1)
    equal = jnp.sum((x[..., None, :] == x[..., :, None]).astype(x.dtype) * m[..., None, :], axis=-1)
    return jnp.where(mask, less + 0.5 * (equal - 1.0) + 1.0, 0.0)


def _pearson(a: jax.Array, b: jax.Array, mask: jax.Array) -> jax.Array:
    m = mask.astype(a.dtype)
    n = jnp.sum(m, axis=-1, keepdims=True)
    da = (a - jnp.sum(a * m, -1, keepdims=True) / jnp.maximum(n, 1)) * m
    db = (b - jnp.sum(b * m, -1, keepdims=True) / jnp.maximum(n, 1)) * m
    den = jnp.sqrt(jnp.sum(da * da, -1) * jnp.sum(db * db, -1))
    return jnp.where(den > 0, jnp.sum(da * db, -1) / jnp.where(den > 0, den, 1.0), jnp.nan)


def _compare(x: jax.Array, y: jax.Array) -> jax.Array:
    """``sign(x - y)`` without the subtraction: 1, -1 or 0 (ties, equal infinities too)."""
    return (x > y).astype(x.dtype) - (x < y).astype(x.dtype)


def _kendall_tau_b(a: jax.Array, b: jax.Array, mask: jax.Array) -> jax.Array:
    pair = jnp.triu(mask[..., :, None] & mask[..., None, :], k=1)  # each pair i < j once
    # signs by comparison: sign(inf - inf) was NaN for two tied infinite scores
    sa = _compare(a[..., :, None], a[..., None, :])
    sb = _compare(b[..., :, None], b[..., None, :])
    s = jnp.sum(jnp.where(pair, sa * sb, 0.0), axis=(-2, -1))
    n_a = jnp.sum(jnp.where(pair, sa != 0, False), axis=(-2, -1))  # pairs not tied in a
    n_b = jnp.sum(jnp.where(pair, sb != 0, False), axis=(-2, -1))
    den = jnp.sqrt(n_a.astype(jnp.float32) * n_b.astype(jnp.float32))
    return jnp.where(den > 0, s / jnp.where(den > 0, den, 1.0), jnp.nan)


def rank_correlation(a: jax.Array, b: jax.Array, mask: Optional[jax.Array] = None, method: str = "spearman") -> jax.Array:
    """Per-row rank correlation of ``a`` and ``b`` (``[..., K]``) over ``mask``: ``float32[...]``.

    ``method``: ``"spearman"`` (Pearson correlation of tie-averaged ranks) or ``"kendall"``
    (tau-b).  NaN where fewer than two entries are masked in, either side is constant, or a
    masked-in entry is NaN.  ``a``, ``b`` (and ``mask``) must have one shape (no broadcasting).
    """
    shapes = [np.shape(x) for x in (a, b, mask) if x is not None]
    if len(shapes[0]) < 1 or len(set(shapes)) > 1:
        raise ValueError(f"rank_correlation: a, b (and mask) need one shape [..., K], got {shapes}")
    if method not in ("spearman", "kendall"):
        raise ValueError(f"unknown rank correlation {method!r}; use 'spearman' or 'kendall'")
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    mask = jnp.ones(a.shape, bool) if mask is None else jnp.asarray(mask, bool)
    undefined = jnp.any((jnp.isnan(a) | jnp.isnan(b)) & mask, axis=-1)
    if method == "spearman":
        out = _pearson(_average_ranks(a, mask), _average_ranks(b, mask), mask)
    else:
        out = _kendall_tau_b(a, b, mask)
    return jnp.where(undefined, jnp.nan, out)


def drawing_order_correlation(scores: jax.Array, present: jax.Array, method: str = "spearman") -> jax.Array:
    """Correlation of stroke attribution with human drawing order (E §5.1), per sketch.

    +1 when attribution decreases with drawing order (the first stroke drawn is the most
    important), -1 when it increases; over the present strokes only.
    """
    if np.shape(scores) != np.shape(present) or np.ndim(scores) < 1:
        raise ValueError(f"drawing_order_correlation: scores and present need one shape [..., K], got "
                         f"{np.shape(scores)} and {np.shape(present)}")
    scores = jnp.asarray(scores)
    order = -jnp.arange(scores.shape[-1], dtype=jnp.float32)
    return rank_correlation(scores, jnp.broadcast_to(order, scores.shape), jnp.asarray(present), method)


def mean_ci(values, level: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    """Mean and median of the finite ``values``, each with a percentile-bootstrap confidence
    interval from the same resamples (host side).

    Returns ``{"mean", "lo", "hi", "n", "median", "median_lo", "median_hi"}`` as Python floats
    (NaN if none is finite).  The median's interval matters for values on a coarse grid (e.g.
    Spearman over a few strokes), where the median can jump a whole step under resampling.
    """
    if not 0.0 < level < 1.0 or n_boot < 1:
        raise ValueError(f"mean_ci: need 0 < level < 1 and n_boot >= 1, got level={level}, n_boot={n_boot}")
    v = np.asarray(values, np.float64).ravel()
    v = v[np.isfinite(v)]
    if v.size == 0:
        nan = float("nan")
        return {"mean": nan, "lo": nan, "hi": nan, "n": 0, "median": nan, "median_lo": nan, "median_hi": nan}
    rng = np.random.default_rng(seed)
    resamples = v[rng.integers(0, v.size, size=(n_boot, v.size))]
    means, medians = resamples.mean(axis=1), np.median(resamples, axis=1)
    alpha = (1.0 - level) / 2.0
    return {"mean": float(v.mean()), "lo": float(np.quantile(means, alpha)), "hi": float(np.quantile(means, 1 - alpha)),
            "n": int(v.size), "median": float(np.median(v)),
            "median_lo": float(np.quantile(medians, alpha)), "median_hi": float(np.quantile(medians, 1 - alpha))}
