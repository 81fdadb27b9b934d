"""Known degradations of a sketch, of controlled severity (ground truth for quality scores).

No human quality ratings can be collected here, so the quality scores of issue 5 are checked
against degradations whose direction is known: a sketch with more point jitter, more strokes
deleted, more random scribbles or a larger part cut off should not score *higher* than the
same sketch with less.  The same generators give the "noise strokes" of the filtering and
rare-and-hard experiments and the "strokes of no category" of the malicious-sketch set.

Every function takes and returns one padded sketch ``(xy [T, 2], pen [T], valid [T])`` in any
coordinate frame (amounts are relative to the sketch's bounding box, so pixels and unit
coordinates behave alike), is pure and ``jit``-able with static ``T``; ``jax.vmap`` it over a
batch (with one key per sketch).  ``valid`` stays a prefix mask; the padding the function
writes is zero (``add_scribbles`` leaves the slots it does not fill as they were).  Called on
concrete arrays, each checks its sketch (finite, non-empty, a prefix mask) and severities
(fractions in ``[0, 1]``, counts whole numbers); under ``jit``/``vmap`` only the shapes.

=================  =====================================================================
``jitter``         Gaussian noise of std ``sigma`` x the bounding box's longest side on every point
``delete_strokes`` ``fraction x n_strokes`` random strokes removed, rounded half up (>= 1; at least
                   one kept) — so the fraction removed is not ``fraction``: 10% and 25% of a 2-5
                   stroke sketch are both one stroke
``truncate``       the last ``floor(fraction x n_points)`` points (in drawing order) cut off (>= 2 kept)
``add_scribbles``  ``n`` random-walk strokes of ``points`` points each, inside the bounding box,
                   appended after the last point (they need free padding: see ``room``)
``scribble_sketch`` a sketch made only of such strokes, in a given box
=================  =====================================================================
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sketchjax._checks import check_key, is_number_dtype
from sketchjax._numerics import to_rank
from sketchjax.normalize import bounding_box
from sketchjax.sketch import Sketch, check_mask, check_points, compact, num_strokes, stroke_ids

__all__ = ["jitter", "delete_strokes", "truncate", "add_scribbles", "scribble_sketch", "scribble_strokes", "room",
           "DEGRADATIONS", "degrade"]


def _concrete(*arrays) -> bool:
    """No tracer among ``arrays`` or inside them (a tuple of traced bounds, say)."""
    return not any(isinstance(a, jax.core.Tracer) for a in jax.tree_util.tree_leaves(arrays))


def _check_one(name: str, xy, pen, valid, fractions: dict | None = None, **amounts) -> None:
    """One sketch ``xy [T, 2]`` (``T >= 1``), ``pen``/``valid`` ``[T]`` (vmap over a batch) —
    shapes always, under ``jit``/``vmap`` too.  When concrete: finite points on a prefix mask
    with at least one valid point, ``amounts`` finite and >= 0, ``fractions`` in ``[0, 1]``."""
    if np.ndim(xy) != 2 or np.shape(xy)[-1] != 2 or np.shape(pen) != np.shape(xy)[:1] or np.shape(valid) != np.shape(pen):
        raise ValueError(f"{name}: degrades one sketch, xy [T, 2] and pen/valid [T] (vmap it over a batch); got "
                         f"{np.shape(xy)}, {np.shape(pen)}, {np.shape(valid)}")
    check_points(xy, pen, valid, name, any_units=True)  # T >= 1; finite values when concrete (any frame)
    if _concrete(valid):
        check_mask(valid, name)
    for key, value in amounts.items():
        _check_amount(name, key, value)
    for key, value in (fractions or {}).items():  # NaN fails both comparisons
        if _concrete(value) and not (_numeric(value) and np.all((np.asarray(value) >= 0) & (np.asarray(value) <= 1))):
            raise ValueError(f"{name}: {key} must be a fraction in [0, 1], got {value!r}")


def _check_amount(name: str, key: str, value) -> None:
    """``value`` (when concrete) a finite number >= 0, or a ValueError naming ``name`` and ``key``."""
    if _concrete(value) and not (_numeric(value) and np.all(np.isfinite(np.asarray(value, float))
                                                            & (np.asarray(value) >= 0))):
        raise ValueError(f"{name}: {key} must be a finite number >= 0, got {value!r}")


def _numeric(value) -> bool:
    """Numbers (also arrays of them, bfloat16 included), not text, None or bools — as
    :func:`sketchjax._checks.is_number`: '0.05' or None from a config was a NumPy ufunc error
    naming no parameter."""
    return is_number_dtype(np.asarray(value).dtype)


def _check_count(name: str, key: str, value, low: int) -> int:
    """A static whole number >= ``low`` (it sets array shapes)."""
    if isinstance(value, jax.core.Tracer):
        raise ValueError(f"{name}: {key} sets a shape and must be a static integer, not a traced value")
    if isinstance(value, bool) or np.ndim(value) != 0 or not np.isfinite(value) or value != int(value) or value < low:
        raise ValueError(f"{name}: {key} must be a whole number >= {low}, got {value!r}")
    return int(value)


def _box(xy, valid):
    box = bounding_box(Sketch(xy=xy, pen=jnp.zeros(valid.shape), valid=valid))
    lo, hi = box[:2], box[2:]
    return lo, hi, jnp.maximum(jnp.max(hi - lo), 1e-6)


def jitter(key: jax.Array, xy, pen, valid, sigma: float):
    """Every valid point moved by ``N(0, (sigma * longest side)^2)`` per coordinate."""
    _check_one("jitter", xy, pen, valid, sigma=sigma)
    check_key("jitter", key)
    xy = jnp.asarray(xy)
    if not jnp.issubdtype(xy.dtype, jnp.floating):  # integer pixel coordinates: jittered in float32
        xy = xy.astype(jnp.float32)
    _, _, longest = _box(xy, valid)
    noise = jax.random.normal(key, xy.shape, xy.dtype) * (sigma * longest)
    return jnp.where(valid[:, None], xy + noise, 0.0).astype(xy.dtype), pen, valid  # a traced float32 sigma: same dtype


def delete_strokes(key: jax.Array, xy, pen, valid, fraction: float, at_least_one: bool = True):
    """``fraction * n_strokes`` strokes, rounded half up (at least one when ``fraction > 0`` and
    ``at_least_one``), chosen uniformly at random removed; at least one stroke always stays, so
    a one-stroke sketch is returned unchanged.  The other strokes keep their points and order.

    ``at_least_one=False`` removes none while ``fraction * n_strokes < 0.5``: the number removed
    then never falls as ``fraction`` rises from 0 (with the floor, any ``fraction > 0`` removes
    a stroke, so a tiny fraction and 25% can be the same degradation)."""
    _check_one("delete_strokes", xy, pen, valid, fractions=dict(fraction=fraction))
    check_key("delete_strokes", key)
    t = pen.shape[-1]
    sid = stroke_ids(pen, valid)
    n = num_strokes(pen, valid)
    n_del = jnp.floor(fraction * n + 0.5).astype(jnp.int32)  # half up (jnp.round is half to even)
    if at_least_one:
        n_del = jnp.where(fraction > 0, jnp.maximum(n_del, 1), 0)
    n_del = jnp.minimum(n_del, n - 1)
    u = jax.random.uniform(key, (t,))
    u = jnp.where(jnp.arange(t) < n, u, 2.0)  # absent stroke slots rank last
    rank = jnp.argsort(jnp.argsort(u))  # a random permutation of the present strokes
    drop_stroke = rank < n_del
    return compact(xy, pen, valid, ~drop_stroke[jnp.maximum(sid, 0)])


def truncate(xy, pen, valid, fraction: float):
    """The last ``floor(fraction * n)`` of the ``n`` valid points cut off (at least 2 points kept)."""
    _check_one("truncate", xy, pen, valid, fractions=dict(fraction=fraction))
    n = jnp.sum(valid)
    # floor with a relative margin for float32 rounding (0.7 * 100 is 69.999996 in float32;
    # ceil((1 - 0.4) * 25) was 16: 0.6 * 25 = 15.000001); 0.1999 * 10 still cuts 1
    cut = jnp.floor(fraction * n * (1.0 + 1e-5))
    keep_n = jnp.maximum(n - cut, jnp.minimum(n, 2))
    return compact(xy, pen, valid, jnp.arange(pen.shape[-1]) < keep_n)


def scribble_strokes(key: jax.Array, lo, hi, n: int, points: int = 8, step: float = 0.15, turn: float = 0.8):
    """``float32[n, points, 2]``: ``n`` smooth random walks inside the box ``[lo, hi]``.

    Each starts uniformly in the box with a random heading; every step turns by
    ``N(0, turn^2)`` radians and advances ``step`` x the box's longest side; points are
    clipped to the box.
    """
    check_key("scribble_strokes", key)
    k_start, k_head, k_turn = jax.random.split(key, 3)
    size = jnp.maximum(hi - lo, 1e-6)
    longest = jnp.max(size)
    start = to_rank(lo, 2) + jax.random.uniform(k_start, (n, 2)) * to_rank(size, 2)
    heading = jax.random.uniform(k_head, (n, 1), minval=0.0, maxval=2 * jnp.pi)
    headings = heading + jnp.cumsum(turn * jax.random.normal(k_turn, (n, points - 1)), axis=-1)
    steps = step * longest * jnp.stack([jnp.cos(headings), jnp.sin(headings)], axis=-1)
    walk = jnp.concatenate([start[:, None, :], start[:, None, :] + jnp.cumsum(steps, axis=1)], axis=1)
    return jnp.clip(walk, to_rank(lo, 3), to_rank(hi, 3))


def _walk_pen(n: int, points: int) -> jax.Array:
    return jnp.tile(jnp.concatenate([jnp.ones(points - 1), jnp.zeros(1)]), n)


def add_scribbles(key: jax.Array, xy, pen, valid, n: int, points: int = 8, step: float = 0.15):
    """``n`` random scribble strokes (:func:`scribble_strokes`) inside the sketch's bounding box,
    drawn after its last point.  Slots past ``T`` are dropped: pad the sketch to at least
    ``n_points + n * points`` (see :func:`room`) to keep them whole.  ``n = 0`` returns the
    sketch unchanged; ``points`` must be >= 2 (a stroke)."""
    _check_one("add_scribbles", xy, pen, valid, step=step)
    n, points = _check_count("add_scribbles", "n", n, 0), _check_count("add_scribbles", "points", points, 2)
    check_key("add_scribbles", key)
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
    n, points = _check_count("scribble_sketch", "n", n, 1), _check_count("scribble_sketch", "points", points, 2)
    t = _check_count("scribble_sketch", "t", t, 1)
    check_key("scribble_sketch", key)
    if _concrete(lo, hi) and not (np.all(np.isfinite(lo)) and np.all(np.isfinite(hi))
                                  and np.all(np.asarray(lo) < np.asarray(hi))):
        raise ValueError(f"scribble_sketch: need a finite box with lo < hi, got lo={lo}, hi={hi}")
    if n * points > t:
        raise ValueError(f"scribble_sketch: {n} strokes x {points} points do not fit in T = {t}")
    _check_amount("scribble_sketch", "step", step)  # NaN gave NaN points
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
    """Dispatch on ``kind`` (a key of :data:`DEGRADATIONS`) with ``severity`` its parameter.

    Errors of the function it calls are re-raised (same type) prefixed with
    ``degrade('<kind>', <severity>)``, the call the user wrote."""
    if kind not in DEGRADATIONS:
        raise ValueError(f"unknown degradation {kind!r}; use one of {sorted(DEGRADATIONS)}")
    try:
        if kind == "jitter":
            return jitter(key, xy, pen, valid, severity)
        if kind == "delete_strokes":
            return delete_strokes(key, xy, pen, valid, severity)
        if kind == "scribbles":
            return add_scribbles(key, xy, pen, valid, _check_count("add_scribbles", "n (the scribbles severity, a count)", severity, 0))
        return truncate(xy, pen, valid, severity)
    except ValueError as e:  # SketchError too
        raise type(e)(f"degrade({kind!r}, {severity!r}): {e}") from None
