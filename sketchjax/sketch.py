"""The canonical sketch representation (SPEC §1) and pure functions over it.

A sketch is a fixed-length, padded sequence of absolute points:

* ``xy: float32[..., T, 2]`` — absolute ``(x, y)`` in canvas pixels (x = column, y = row);
* ``pen: float32[..., T]`` — ``pen[t] = 1`` means the segment ``xy[t] -> xy[t+1]`` is drawn
  (pen touching); ``0`` means the pen is lifted after point ``t``;
* ``valid: bool[..., T]`` — padding mask, ``True`` on the first ``n`` points only;
* ``time: float32[..., T]`` or ``None`` — optional timestamps (ms) of raw recordings.

This is the explainability paper's five-element point ``(x, y, q1, q2, q3)`` (E §4.1) with
``q1 = pen``, ``q2 = 1 - pen`` on valid points and ``q3`` marking the first padding point.
A *stroke* is a maximal run of points joined by drawn segments; ``stroke_ids`` derives it.

Everything here is a pure ``jax.numpy`` function of arrays with static shapes, usable under
``jit``/``vmap``/``grad``; leading batch dimensions are allowed everywhere.  Host-side
validation (:func:`check_sketch`) raises :class:`SketchError` with the sketch's name.
"""
from __future__ import annotations

from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sketchjax._numerics import to_rank

__all__ = [
    "Sketch",
    "SketchError",
    "stroke_ids",
    "stroke_starts",
    "stroke_point_counts",
    "stroke_one_hot",
    "compact",
    "num_strokes",
    "num_points",
    "segment_mask",
    "check_sketch",
    "check_points",
    "check_mask",
    "MAX_ABS_COORD",
]

#: Largest absolute coordinate (in output pixels) the renderers accept.  Bresenham runs in
#: int32 arithmetic and needs ``2 * |dx| * |dy| + |dx|`` (at most 2^29) to fit in it; the
#: renderers refuse larger values on their canvas.  Loaders and :func:`check_sketch` keep a
#: file's own units (any finite float32: a drawing is fitted to a canvas before it is drawn;
#: a 12000-unit tablet or SVG export was refused as "out of range").
MAX_ABS_COORD = 8192.0

#: ``max_abs`` of :func:`check_points` for coordinates in any units (fitted to a canvas later):
#: every finite float32.
ANY_FINITE = float(np.finfo(np.float32).max)


class SketchError(ValueError):
    """Bad sketch input: the message names the item (file, line, key) and the problem."""


@struct.dataclass
class Sketch:
    """A padded vector sketch, or a batch of them (leading dims), as a JAX pytree.

    Attributes:
      xy: ``float32[..., T, 2]`` absolute coordinates in canvas pixels.
      pen: ``float32[..., T]``; 1 = segment from this point to the next is drawn.
      valid: ``bool[..., T]``; True for real points, False for padding (a prefix mask).
      time: optional ``float32[..., T]`` timestamps in milliseconds (raw QuickDraw).
    """

    xy: jax.Array
    pen: jax.Array
    valid: jax.Array
    time: Optional[jax.Array] = None

    @property
    def shape(self) -> tuple[int, ...]:
        """Leading (batch) shape plus ``T``: ``pen.shape``."""
        return tuple(self.pen.shape)

    @property
    def max_len(self) -> int:
        return int(self.pen.shape[-1])

    def __getitem__(self, idx) -> "Sketch":
        """Index the batch dimensions (``batch[3]``, ``batch[:8]``)."""
        return jax.tree_util.tree_map(lambda a: a[idx], self)

    def numpy(self) -> "Sketch":
        """The same sketch with NumPy leaves (for host-side code)."""
        return jax.tree_util.tree_map(np.asarray, self)


def _same_shape(name: str, **arrays) -> None:
    """Static shape check (works under jit): broadcasting ``valid [1, T]`` against ``pen [B, T]``
    silently gave every row the first row's mask."""
    shapes = {k: tuple(np.shape(v)) for k, v in arrays.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"{name}: {' and '.join(shapes)} must have one shape [..., T], got "
                         + ", ".join(f"{k} {s}" for k, s in shapes.items()))


def _max_strokes(name: str, max_strokes) -> int:
    from sketchjax._checks import check_positive_int  # (_checks imports this module)

    return check_positive_int(name, "max_strokes", max_strokes)


def segment_mask(pen: jax.Array, valid: jax.Array) -> jax.Array:
    """``bool[..., T-1]``: segment ``t -> t+1`` is drawn and both ends are real points."""
    _same_shape("segment_mask", pen=pen, valid=valid)
    valid = jnp.asarray(valid, bool)
    return (jnp.asarray(pen)[..., :-1] > 0.5) & valid[..., :-1] & valid[..., 1:]


def stroke_starts(pen: jax.Array, valid: jax.Array) -> jax.Array:
    """``bool[..., T]``: point ``t`` is valid and starts a stroke (``t = 0`` or pen lifted at ``t-1``)."""
    _same_shape("stroke_starts", pen=pen, valid=valid)
    pen = jnp.asarray(pen)
    valid = jnp.asarray(valid, bool)
    lifted_before = jnp.concatenate(
        [jnp.ones_like(pen[..., :1], dtype=bool), pen[..., :-1] <= 0.5], axis=-1
    )
    return lifted_before & valid


def stroke_ids(pen: jax.Array, valid: jax.Array) -> jax.Array:
    """``int32[..., T]``: index of the stroke each point belongs to; ``-1`` on padding.

    Derived from the pen states, never stored: point ``t`` starts a new stroke when the pen
    was lifted after point ``t-1``.
    """
    starts = stroke_starts(pen, valid)
    ids = jnp.cumsum(starts.astype(jnp.int32), axis=-1) - 1
    return jnp.where(jnp.asarray(valid, bool), ids, -1)


def num_strokes(pen: jax.Array, valid: jax.Array) -> jax.Array:
    """``int32[...]``: number of strokes (including single-point ones)."""
    return jnp.sum(stroke_starts(pen, valid), axis=-1, dtype=jnp.int32)


def num_points(valid: jax.Array) -> jax.Array:
    """``int32[...]``: number of valid points."""
    return jnp.sum(jnp.asarray(valid, bool), axis=-1, dtype=jnp.int32)


def stroke_one_hot(pen: jax.Array, valid: jax.Array, max_strokes: int) -> jax.Array:
    """``bool[..., T, max_strokes]``: point ``t`` belongs to stroke ``k`` (padding: no stroke).

    Strokes with index ``>= max_strokes`` have no column.
    """
    max_strokes = _max_strokes("stroke_one_hot", max_strokes)
    ids = stroke_ids(pen, valid)[..., :, None]
    return ids == to_rank(jnp.arange(max_strokes, dtype=jnp.int32), ids.ndim)


def stroke_point_counts(pen: jax.Array, valid: jax.Array, max_strokes: int) -> jax.Array:
    """``int32[..., max_strokes]``: points per stroke (``|S_j|`` of E-12); 0 for absent strokes.

    Strokes with index ``>= max_strokes`` are not counted.
    """
    return jnp.sum(stroke_one_hot(pen, valid, max_strokes), axis=-2, dtype=jnp.int32)


def compact(xy: jax.Array, pen: jax.Array, valid: jax.Array, keep: jax.Array):
    """Keep the points where ``keep`` (and ``valid``), moved to the front in drawing order.

    Args:
      xy, pen, valid: a padded sketch (``[..., T, 2]``, ``[..., T]``, ``[..., T]``).
      keep: ``bool[..., T]`` points to keep.

    Returns:
      ``(xy, pen, valid)`` of the same shapes with ``valid`` a prefix mask, padding zeroed and
      the pen lifted after the last kept point (a cut stroke ends there).  Kept points keep
      their pen states, so removing whole strokes leaves the other strokes as they were —
      except that the pen is lifted after a kept point whose next kept point is in another
      stroke (removing a stroke's last points must not join it to the next stroke).
    """
    _same_shape("compact", pen=pen, valid=valid, keep=keep)
    if tuple(np.shape(xy)) != tuple(np.shape(pen)) + (2,):
        raise ValueError(f"compact: xy must be [..., T, 2] for pen [..., T], got {np.shape(xy)} and {np.shape(pen)}")
    t = pen.shape[-1]
    keep = jnp.asarray(keep, bool) & jnp.asarray(valid, bool)
    order = jnp.argsort(~keep, axis=-1, stable=True)
    sid = jnp.take_along_axis(stroke_ids(pen, valid), order, axis=-1)
    xy = jnp.take_along_axis(xy, order[..., None], axis=-2)
    pen = jnp.take_along_axis(pen, order, axis=-1)
    n = jnp.sum(keep, axis=-1, keepdims=True)
    idx = jnp.arange(t)
    new_valid = idx < n
    same_stroke_next = jnp.concatenate([sid[..., :-1] == sid[..., 1:], jnp.zeros_like(sid[..., :1], bool)], axis=-1)
    pen = jnp.where(new_valid & (idx < n - 1) & same_stroke_next, pen, 0.0)
    return jnp.where(new_valid[..., None], xy, 0.0), pen, new_valid


def check_sketch(sketch: Sketch, name: str = "sketch", *, max_abs: float = ANY_FINITE) -> Sketch:
    """Host-side validation of a (possibly batched) sketch; returns it unchanged or raises.

    Checks shapes and dtypes, that ``valid`` is a prefix mask, that every sketch has at
    least one point and no NaN/inf (coordinates, pen states, timestamps) or coordinates beyond
    ``max_abs`` on valid points (default: any finite float32 — the sketch's own units; the
    renderers check :data:`MAX_ABS_COORD` on their canvas).

    Raises:
      SketchError: naming ``name`` (and the batch index) and the problem.
    """
    xy = np.asarray(sketch.xy)
    pen = np.asarray(sketch.pen)
    valid = np.asarray(sketch.valid)
    if xy.ndim < 2 or xy.shape[-1] != 2:
        raise SketchError(f"{name}: xy must have shape [..., T, 2], got {xy.shape}")
    if pen.shape != xy.shape[:-1] or valid.shape != xy.shape[:-1]:
        raise SketchError(
            f"{name}: pen {pen.shape} and valid {valid.shape} must match xy's leading shape {xy.shape[:-1]}"
        )
    if sketch.time is not None and np.shape(sketch.time) != pen.shape:
        raise SketchError(f"{name}: time {np.shape(sketch.time)} must have shape {pen.shape}")
    # jnp.issubdtype: NumPy's says bfloat16 is not floating ("must be floating point, got bfloat16")
    if not jnp.issubdtype(xy.dtype, jnp.floating) or not jnp.issubdtype(pen.dtype, jnp.floating):
        raise SketchError(f"{name}: xy and pen must be floating point, got {xy.dtype} and {pen.dtype}")
    if valid.dtype != np.bool_:
        raise SketchError(f"{name}: valid must be bool, got {valid.dtype}")
    t = xy.shape[-2]
    if t == 0:
        raise SketchError(f"{name}: empty sketch (no points)")
    check_mask(valid, name)
    check_points(xy, pen, valid, name, max_abs=max_abs)
    if sketch.time is not None:
        bad = ~np.isfinite(np.asarray(sketch.time).reshape(-1, t)) & valid.reshape(-1, t)
        if bad.any():
            b, i = (int(k) for k in np.argwhere(bad)[0])
            value = np.asarray(sketch.time).reshape(-1, t)[b, i]
            raise SketchError(f"{name}: {_at_batch_index(b, pen.shape[:-1])}non-finite timestamp at point {i}: {value}")
    return sketch


def check_mask(valid, name: str = "sketch") -> None:
    """Host-side: every sketch of a concrete (possibly batched) ``valid [..., T]`` has a valid
    point and is a prefix mask (padding only at the end); SketchError naming the batch index."""
    valid = np.asarray(valid).astype(bool)
    v = valid.reshape(-1, valid.shape[-1])
    n = v.sum(axis=-1)
    problems = (("empty sketch (no valid points)", n == 0),
                ("valid must be a prefix mask (padding only at the end)",
                 (v != (np.arange(v.shape[-1]) < n[:, None])).any(-1)))
    for problem, bad in problems:
        if bad.any():
            raise SketchError(f"{name}: {_at_batch_index(int(np.argmax(bad)), valid.shape[:-1])}{problem}")


def _at_batch_index(b: int, lead: tuple) -> str:
    """``"sketch at batch index 3: "`` for row ``b`` of a batch of leading shape ``lead`` ('' unbatched)."""
    if not lead:
        return ""
    index = tuple(int(j) for j in np.unravel_index(b, lead))
    return f"sketch at batch index {index[0] if len(index) == 1 else index}: "


#: How far past [0, 1] :func:`check_points` lets a pen state go (finite-difference steps, a few
#: float32 rounding steps).  Small: the distance renderer's pen-up penalty ``(1 - pen) * 1e6`` is
#: linear, so a pen of 1.001 moves every drawn segment 1000 px closer (0.01 inked the whole canvas).
PEN_SLACK = 1e-6


def check_points(xy, pen, valid, name: str, *, max_abs: float = MAX_ABS_COORD, any_units: bool = False) -> None:
    """Input check of the array functions (renderers, attribution): shapes always; values when
    concrete.

    Shapes: ``xy [..., T, 2]`` with ``T >= 1``, ``pen`` and ``valid`` ``[..., T]`` (same leading
    shape).  Values, skipped for tracers (under ``jit``/``vmap``/``grad`` they are unknown):
    finite ``xy``, ``pen`` in ``[0, 1]`` up to :data:`PEN_SLACK` (fractional states are allowed:
    the distance renderer differentiates them, and finite differences step slightly past the
    ends) and ``|x|, |y| <= max_abs`` on valid points (a pen of 2 made the distance renderer ink
    the whole canvas); ``any_units=True`` (for functions that fit the sketch to their canvas
    first) allows any finite coordinates (``max_abs`` = :data:`ANY_FINITE`).  Looser than
    :func:`check_sketch` (an all-padding row is allowed: it draws nothing).

    Raises:
      SketchError: naming ``name``, the batch index and point of the first bad value, or the shapes.
    """
    shapes = tuple(np.shape(a) for a in (xy, pen, valid))
    if len(shapes[0]) < 2 or shapes[0][-1] != 2 or shapes[0][-2] < 1 or shapes[1] != shapes[0][:-1] or shapes[2] != shapes[1]:
        raise SketchError(f"{name}: need xy [..., T, 2] (T >= 1) with pen and valid [..., T]; got shapes "
                          f"{shapes[0]}, {shapes[1]}, {shapes[2]}")
    if any(isinstance(a, jax.core.Tracer) for a in (xy, pen, valid)):
        return
    if any_units:
        max_abs = ANY_FINITE
    t = shapes[1][-1]
    pts = np.asarray(xy).reshape(-1, t, 2)
    if pts.dtype.itemsize < 4:  # float16 / bfloat16: the bounds (3.4e38) would overflow their type
        pts = pts.astype(np.float32)
    pn = np.asarray(pen).reshape(-1, t)
    with np.errstate(invalid="ignore"):  # fast path: every value fine, padding included
        if (np.abs(pts).max(initial=0.0) <= max_abs and np.isfinite(pn).all()
                and (pn >= -PEN_SLACK).all() and (pn <= 1 + PEN_SLACK).all()):
            return
    v = np.asarray(valid).astype(bool).reshape(-1, t)
    problems = (
        ("non-finite coordinate (NaN/inf)", ~np.isfinite(pts).all(axis=-1) & v),
        ("non-finite pen state", ~np.isfinite(pn) & v),
        ("pen state outside [0, 1]", np.isfinite(pn) & ((pn < -PEN_SLACK) | (pn > 1 + PEN_SLACK)) & v),
        (f"coordinate beyond the supported range |x|, |y| <= {max_abs:g}",
         (np.abs(np.where(np.isfinite(pts), pts, 0.0)) > max_abs).any(axis=-1) & v),
    )
    rows = np.flatnonzero(np.any([bad.any(axis=-1) for _, bad in problems], axis=0))
    if rows.size:
        b = int(rows[0])  # the first bad sketch, and its first problem
        problem, bad = next((p, m) for p, m in problems if m[b].any())
        i = int(np.flatnonzero(bad[b])[0])
        value = float(pn[b, i]) if "pen" in problem else pts[b, i].tolist()
        raise SketchError(f"{name}: {_at_batch_index(b, shapes[1][:-1])}{problem} at point {i}: {value}")
