"""Known degradations of a sketch, of controlled severity (ground truth for quality scores).

No human quality ratings can be collected here, so the quality scores of issue 5 are checked
against degradations whose direction is known: a sketch with more point jitter, more strokes
deleted, more random scribbles or a larger part cut off should not score *higher* than the
same sketch with less.  The same generators give the "noise strokes" of the filtering and
rare-and-hard experiments and the "strokes of no category" of the malicious-sketch set.

Every function takes and returns one padded sketch ``(xy [T, 2], pen [T], valid [T])`` in any
coordinate frame (amounts are relative to the sketch's bounding box, so pixels and unit
coordinates behave alike), is pure and ``jit``-able with static ``T``; ``jax.vmap`` it over a
batch (with one key per sketch).  ``valid`` stays a prefix mask and padding stays zero.

=================  =====================================================================
``jitter``         Gaussian noise of std ``sigma`` x the bounding box's longest side on every point
``delete_strokes`` ``round(fraction x n_strokes)`` random strokes removed (>= 1; at least one kept)
``truncate``       the last ``fraction`` of the points (in drawing order) cut off (>= 2 kept)
``add_scribbles``  ``n`` random-walk strokes of ``points`` points each, inside the bounding box,
                   appended after the last point (they need free padding: see ``room``)
``scribble_sketch`` a sketch made only of such strokes, in a given box
=================  =====================================================================
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sketchjax.normalize import bounding_box
from sketchjax.sketch import Sketch, compact, num_strokes, stroke_ids

__all__ = ["jitter", "delete_strokes", "truncate", "add_scribbles", "scribble_sketch", "scribble_strokes", "room",
           "DEGRADATIONS", "degrade"]


def _check_one(name: str, xy, pen, valid, **severities) -> None:
    """One sketch ``xy [T, 2]``, ``pen``/``valid`` ``[T]`` (vmap over a batch), and concrete
    severities finite and >= 0; shapes are checked under ``jit``/``vmap`` too."""
    if np.ndim(xy) != 2 or np.shape(xy)[-1] != 2 or np.shape(pen) != np.shape(xy)[:1] or np.shape(valid) != np.shape(pen):
        raise ValueError(f"{name}: degrades one sketch, xy [T, 2] and pen/valid [T] (vmap it over a batch); got "
                         f"{np.shape(xy)}, {np.shape(pen)}, {np.shape(valid)}")
    for key, value in severities.items():
        if not isinstance(value, jax.core.Tracer) and not np.all(np.asarray(value) >= 0):  # also NaN
            raise ValueError(f"{name}: {key} must be a number >= 0, got {value}")


def _box(xy, valid):
    box = bounding_box(Sketch(xy=xy, pen=jnp.zeros(valid.shape), valid=valid))
    lo, hi = box[:2], box[2:]
    return lo, hi, jnp.maximum(jnp.max(hi - lo), 1e-6)


def jitter(key: jax.Array, xy, pen, valid, sigma: float):
    """Every valid point moved by ``N(0, (sigma * longest side)^2)`` per coordinate."""
    _check_one("jitter", xy, pen, valid, sigma=sigma)
    _, _, longest = _box(xy, valid)
    noise = jax.random.normal(key, xy.shape, xy.dtype) * (sigma * longest)
    return jnp.where(valid[:, None], xy + noise, 0.0), pen, valid


def delete_strokes(key: jax.Array, xy, pen, valid, fraction: float):
    """``round(fraction * n_strokes)`` strokes (at least one when ``fraction > 0``) chosen
    uniformly at random removed; at least one stroke always stays, so a one-stroke sketch is
    returned unchanged.  The other strokes keep their points and order."""
    _check_one("delete_strokes", xy, pen, valid, fraction=fraction)
    t = pen.shape[-1]
    sid = stroke_ids(pen, valid)
    n = num_strokes(pen, valid)
    n_del = jnp.floor(fraction * n + 0.5).astype(jnp.int32)  # half up (jnp.round is half to even)
    n_del = jnp.minimum(jnp.where(fraction > 0, jnp.maximum(n_del, 1), 0), n - 1)
    u = jax.random.uniform(key, (t,))
    u = jnp.where(jnp.arange(t) < n, u, 2.0)  # absent stroke slots rank last
    rank = jnp.argsort(jnp.argsort(u))  # a random permutation of the present strokes
    drop_stroke = rank < n_del
    return compact(xy, pen, valid, ~drop_stroke[jnp.maximum(sid, 0)])


def truncate(xy, pen, valid, fraction: float):
    """The last ``fraction`` of the valid points cut off (at least 2 points kept)."""
    _check_one("truncate", xy, pen, valid, fraction=fraction)
    n = jnp.sum(valid)
    keep_n = jnp.maximum(jnp.ceil((1.0 - fraction) * n), jnp.minimum(n, 2))
    return compact(xy, pen, valid, jnp.arange(pen.shape[-1]) < keep_n)


def scribble_strokes(key: jax.Array, lo, hi, n: int, points: int = 8, step: float = 0.15, turn: float = 0.8):
    """``float32[n, points, 2]``: ``n`` smooth random walks inside the box ``[lo, hi]``.

    Each starts uniformly in the box with a random heading; every step turns by
    ``N(0, turn^2)`` radians and advances ``step`` x the box's longest side; points are
    clipped to the box.
    """
    k_start, k_head, k_turn = jax.random.split(key, 3)
    size = jnp.maximum(hi - lo, 1e-6)
    longest = jnp.max(size)
    start = lo + jax.random.uniform(k_start, (n, 2)) * size
    heading = jax.random.uniform(k_head, (n, 1), minval=0.0, maxval=2 * jnp.pi)
    headings = heading + jnp.cumsum(turn * jax.random.normal(k_turn, (n, points - 1)), axis=-1)
    steps = step * longest * jnp.stack([jnp.cos(headings), jnp.sin(headings)], axis=-1)
    walk = jnp.concatenate([start[:, None, :], start[:, None, :] + jnp.cumsum(steps, axis=1)], axis=1)
    return jnp.clip(walk, lo, hi)


def _walk_pen(n: int, points: int) -> jax.Array:
    return jnp.tile(jnp.concatenate([jnp.ones(points - 1), jnp.zeros(1)]), n)


def add_scribbles(key: jax.Array, xy, pen, valid, n: int, points: int = 8, step: float = 0.15):
    """``n`` random scribble strokes (:func:`scribble_strokes`) inside the sketch's bounding box,
    drawn after its last point.  Slots past ``T`` are dropped: pad the sketch to at least
    ``n_points + n * points`` (see :func:`room`) to keep them whole.  ``n = 0`` returns the
    sketch unchanged; ``points`` must be >= 2 (a stroke)."""
    _check_one("add_scribbles", xy, pen, valid, step=step)
    if n < 0 or points < 2:
        raise ValueError(f"add_scribbles: need n >= 0 and points >= 2, got n={n}, points={points}")
    if n == 0:
        return xy, pen, valid
    t = pen.shape[-1]
    lo, hi, _ = _box(xy, valid)
    walks = scribble_strokes(key, lo, hi, n, points, step).reshape(n * points, 2)
    walk_pen = _walk_pen(n, points)
    m = jnp.sum(valid)
    slot = jnp.arange(t) - m  # position inside the appended strokes
    new = (slot >= 0) & (slot < n * points)
    idx = jnp.clip(slot, 0, n * points - 1)
    last = jnp.arange(t) == m - 1
    pen = jnp.where(last, 0.0, pen)  # the sketch's last stroke ends before the scribbles
    xy = jnp.where(new[:, None], walks[idx], xy)
    pen = jnp.where(new, walk_pen[idx], pen)
    # A scribble cut at T ends there: its last kept point lifts the pen, as every sketch's does.
    pen = jnp.where(new & (jnp.arange(t) == t - 1), 0.0, pen)
    return xy, pen, valid | new


def room(n: int, points: int = 8) -> int:
    """Padding :func:`add_scribbles` needs beyond the sketch's own points."""
    return n * points


def scribble_sketch(key: jax.Array, t: int, n: int, lo=(0.0, 0.0), hi=(255.0, 255.0), points: int = 8,
                    step: float = 0.15):
    """A sketch of ``n`` scribble strokes in the box ``[lo, hi]`` padded to ``T = t``
    (``n * points <= t``): a drawing of no category."""
    if n * points > t:
        raise ValueError(f"scribble_sketch: {n} strokes x {points} points do not fit in T = {t}")
    walks = scribble_strokes(key, jnp.asarray(lo, jnp.float32), jnp.asarray(hi, jnp.float32), n, points, step)
    k = n * points
    xy = jnp.zeros((t, 2), jnp.float32).at[:k].set(walks.reshape(k, 2))
    pen = jnp.zeros((t,), jnp.float32).at[:k].set(_walk_pen(n, points))
    return xy, pen, jnp.arange(t) < k


#: The degradations checked against quality scores and their severity ladders (mild → severe).
DEGRADATIONS = {
    "jitter": (0.01, 0.02, 0.04, 0.08),
    "delete_strokes": (0.1, 0.25, 0.5, 0.75),
    "scribbles": (1, 2, 4, 8),
    "truncate": (0.1, 0.25, 0.5, 0.75),
}


def degrade(kind: str, severity, key: jax.Array, xy, pen, valid):
    """Dispatch on ``kind`` (a key of :data:`DEGRADATIONS`) with ``severity`` its parameter."""
    if kind == "jitter":
        return jitter(key, xy, pen, valid, severity)
    if kind == "delete_strokes":
        return delete_strokes(key, xy, pen, valid, severity)
    if kind == "scribbles":
        return add_scribbles(key, xy, pen, valid, int(severity))
    if kind == "truncate":
        return truncate(xy, pen, valid, severity)
    raise ValueError(f"unknown degradation {kind!r}; use one of {sorted(DEGRADATIONS)}")
