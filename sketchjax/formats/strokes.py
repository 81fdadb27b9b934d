"""The hub of all conversions: lists of per-stroke point arrays <-> :class:`~sketchjax.sketch.Sketch`.

Every file format is parsed into a list of strokes (``[n_i, 2]`` absolute points, optionally a
third column of timestamps) and goes through :func:`from_strokes`, so validation (empty
drawings, NaN/inf, out-of-range coordinates, single-point strokes) lives in one place.
The sketch-rnn offset formats stroke-3 and stroke-5 are defined here too.

Sketches built here are *unpadded* (``T`` = number of points, all valid) and have NumPy leaves
(cheap to build for 100k-record files; JAX converts them on first use).  Pad or stack them with
:mod:`sketchjax.batching`.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from sketchjax._checks import check_int
from sketchjax.sketch import ANY_FINITE, Sketch, SketchError, check_sketch

__all__ = [
    "SINGLE_POINT_POLICIES",
    "from_strokes",
    "to_strokes",
    "from_stroke3",
    "to_stroke3",
    "from_stroke5",
    "to_stroke5",
]

#: How :func:`from_strokes` treats a stroke made of one point:
#: ``"error"`` raise; ``"keep"`` keep it as a lone point with ``pen = 0`` (lossless, draws
#: nothing); ``"drop"`` remove it; ``"dot"`` duplicate the point so it renders as a zero-length
#: segment (visible as a dot, but the round trip returns a 2-point stroke).
SINGLE_POINT_POLICIES = ("error", "keep", "drop", "dot")


def _numeric_array(data, where: str, shape_ok, expected: str) -> np.ndarray:
    """``data`` as a finite float64 array, or SketchError naming ``where`` and the problem."""
    try:
        arr = np.asarray(data)
    except (ValueError, TypeError):  # ragged or nested lists
        raise SketchError(f"{where}: not a rectangular array of numbers (ragged or nested lists)") from None
    if arr.dtype == object and arr.size and all(type(v) is int for v in arr.flat):  # beyond int64
        raise SketchError(f"{where}: integer values out of range (e.g. {max(arr.flat, key=abs)}); expected coordinates")
    if arr.dtype.kind not in "iuf":
        raise SketchError(f"{where}: non-numeric values (dtype {arr.dtype}); expected numbers")
    if arr.size == 0:
        raise SketchError(f"{where}: empty (no points)")
    if not shape_ok(arr.shape):
        raise SketchError(f"{where}: wrong shape {arr.shape}, expected {expected}")
    arr = arr.astype(np.float64)
    bad = ~np.isfinite(arr)
    if bad.any():
        row = int(np.argwhere(bad)[0, 0])
        raise SketchError(f"{where}: non-finite value (NaN or inf) at point {row}: {arr[row].tolist()}")
    return arr


def _stroke_array(stroke, where: str, widths: Sequence[int]) -> np.ndarray:
    """One stroke as a validated float64 ``[n, 2|3]`` array (coordinates within range)."""
    arr = _numeric_array(
        stroke, where, lambda shape: len(shape) == 2 and shape[1] in widths,
        " or ".join(f"[n, {k}]" for k in widths),
    )
    big = np.abs(arr[:, :2]).max()
    if big > ANY_FINITE:  # the file's own units, any size float32 holds (fitted to a canvas before drawing)
        raise SketchError(
            f"{where}: coordinate {big:g} out of range (beyond float32's {ANY_FINITE:.3g}, the type sketches are "
            "stored in)"
        )
    return arr


def from_strokes(
    strokes: Sequence,
    *,
    name: str = "sketch",
    single_point: str = "error",
    time: Optional[Sequence] = None,
) -> Sketch:
    """Build an unpadded sketch from a list of strokes.

    Args:
      strokes: sequence of per-stroke arrays of absolute points, each ``[n_i, 2]`` (x, y in
        pixels) or ``[n_i, 3]`` (x, y, t with t in milliseconds); all strokes alike.  A 3-D
        array ``[S, n, 2|3]`` is read as ``S`` equal-length strokes.
      name: names the sketch in error messages (e.g. ``"cat.ndjson:12"``).
      single_point: policy for one-point strokes, see :data:`SINGLE_POINT_POLICIES`.
      time: optional per-stroke timestamps ``[n_i]`` (ms), instead of a third column.

    Returns:
      Sketch with NumPy leaves, ``T = sum n_i`` (after the single-point policy): ``xy``
      float32[T, 2], ``pen`` float32[T] (1 inside strokes, 0 on each stroke's last point),
      ``valid`` all True, ``time`` float32[T] or None.

    Raises:
      SketchError: empty drawing or stroke, wrong shape or dtype, NaN/inf, a coordinate beyond
        float32's range (any other size is kept: the renderers check theirs on their canvas), or
        a single-point stroke under ``single_point="error"``.
    """
    if single_point not in SINGLE_POINT_POLICIES:
        raise SketchError(f"{name}: unknown single_point policy {single_point!r}; use one of {SINGLE_POINT_POLICIES}")
    if isinstance(strokes, (str, bytes)) or not hasattr(strokes, "__len__"):
        raise SketchError(f"{name}: expected a list of strokes, got {type(strokes).__name__}")
    if isinstance(strokes, np.ndarray) and strokes.ndim != 3:
        raise SketchError(
            f"{name}: expected a list of [n, 2] strokes, got one array of shape {strokes.shape} "
            "(wrap a single stroke in a list)"
        )
    if len(strokes) == 0:
        raise SketchError(f"{name}: empty drawing (no strokes)")
    if time is not None and len(time) != len(strokes):
        raise SketchError(f"{name}: time has {len(time)} strokes but the drawing has {len(strokes)}")

    widths = (2, 3) if time is None else (2,)
    arrays = [_stroke_array(s, f"{name}: stroke {i}", widths) for i, s in enumerate(strokes)]
    if len({a.shape[1] for a in arrays}) > 1:
        raise SketchError(f"{name}: strokes mix [n, 2] and [n, 3] (with time) arrays")
    if time is not None:
        for i, t in enumerate(time):
            where = f"{name}: time of stroke {i}"
            t = _numeric_array(t, where, lambda shape: len(shape) == 1, "[n]")
            if len(t) != len(arrays[i]):
                raise SketchError(f"{where}: {len(t)} timestamps for {len(arrays[i])} points")
            arrays[i] = np.column_stack([arrays[i], t])

    kept = []
    for i, a in enumerate(arrays):
        if len(a) > 1 or single_point == "keep":
            kept.append(a)
        elif single_point == "error":
            raise SketchError(
                f"{name}: stroke {i} has a single point {a[0, :2].tolist()}; pass single_point='keep' "
                "(lossless, draws nothing), 'dot' (zero-length segment) or 'drop'"
            )
        elif single_point == "dot":
            kept.append(np.repeat(a, 2, axis=0))
        # "drop": skip it
    if not kept:
        raise SketchError(f"{name}: empty drawing (every stroke had a single point and single_point='drop')")

    points = np.concatenate(kept, axis=0)
    pen = np.ones(len(points), np.float32)
    pen[np.cumsum([len(a) for a in kept]) - 1] = 0.0  # pen lifts after each stroke's last point
    time_ms = None
    if points.shape[1] == 3:
        if np.abs(points[:, 2]).max() > np.finfo(np.float32).max:  # would become inf in float32
            raise SketchError(f"{name}: timestamp {np.abs(points[:, 2]).max():g} ms out of float32 range")
        time_ms = points[:, 2].astype(np.float32)
    return Sketch(
        xy=points[:, :2].astype(np.float32),
        pen=pen,
        valid=np.ones(len(points), bool),
        time=time_ms,
    )


def _valid_points(sketch: Sketch, name: str) -> tuple[np.ndarray, np.ndarray, Optional[np.ndarray]]:
    """Host copies of the valid part of an unbatched sketch: ``xy [n,2]``, ``pen [n]``, ``time``."""
    if np.ndim(sketch.pen) != 1:
        raise SketchError(f"{name}: expected one unbatched sketch, got batch shape {np.shape(sketch.pen)[:-1]}")
    check_sketch(sketch, name)
    n = int(np.sum(np.asarray(sketch.valid)))
    time = None if sketch.time is None else np.asarray(sketch.time, np.float32)[:n]
    return np.asarray(sketch.xy, np.float32)[:n], np.asarray(sketch.pen, np.float32)[:n], time


def _stroke_ends(pen: np.ndarray) -> np.ndarray:
    """Indices of the last point of each stroke (the final point always ends one)."""
    ends = np.flatnonzero(pen[:-1] <= 0.5)
    return np.append(ends, len(pen) - 1)


def to_strokes(sketch: Sketch, *, name: str = "sketch", with_time: bool = False) -> list[np.ndarray]:
    """Split an unbatched sketch into its strokes (valid points only).

    Args:
      sketch: one sketch (padded or not) with ``pen.ndim == 1``.
      with_time: append the timestamps as a third column (the sketch must have ``time``).

    Returns:
      List of float32 arrays ``[n_i, 2]`` (or ``[n_i, 3]`` with time), absolute pixels, in
      drawing order; the inverse of :func:`from_strokes` (single-point strokes kept as such).
    """
    xy, pen, time = _valid_points(sketch, name)
    if with_time:
        if time is None:
            raise SketchError(f"{name}: with_time=True but the sketch has no timestamps")
        xy = np.column_stack([xy, time])
    return np.split(xy, _stroke_ends(pen)[:-1] + 1)


# --- sketch-rnn stroke-3 / stroke-5 -----------------------------------------------------------


def from_stroke3(stroke3, *, name: str = "sketch", single_point: str = "error") -> Sketch:
    """Sketch from sketch-rnn **stroke-3** offsets.

    Args:
      stroke3: ``[N, 3]`` rows ``(dx, dy, lift)``; row 0's offset is from the origin, each
        later row's from the previous point; ``lift = 1`` means the pen is lifted after this
        point (the stroke ends).  Points after the last ``lift = 1`` form a final stroke.
      single_point: policy for one-point strokes (:data:`SINGLE_POINT_POLICIES`).

    Returns:
      Unpadded sketch with absolute coordinates (cumulative sums, exact for integer data).
    """
    arr = _rows(stroke3, name, 3, "stroke-3 (dx, dy, lift)")
    lift = arr[:, 2]
    if not np.isin(lift, (0.0, 1.0)).all():
        row = int(np.flatnonzero(~np.isin(lift, (0.0, 1.0)))[0])
        raise SketchError(f"{name}: row {row}: pen-lift value {lift[row]:g} is not 0 or 1")
    return _from_offsets(arr[:, :2], lift, name, single_point)


def to_stroke3(sketch: Sketch, *, name: str = "sketch") -> np.ndarray:
    """sketch-rnn **stroke-3** ``float64[N, 3]`` rows ``(dx, dy, lift)`` of an unbatched sketch.

    ``N`` = number of valid points.  Row 0 is the first point's offset from the origin;
    ``lift = 1`` on the last point of every stroke (so always on the last row).  The offsets
    are float64 so that :func:`from_stroke3` restores float32 coordinates exactly whenever
    consecutive values (per axis) are zero or within a factor ``2**28`` of each other in
    magnitude — every real drawing; a value like ``1e-20`` next to ``100`` comes back rounded
    (its offset is not exact in float64).  Cast to ``int16`` for integer data as sketch-rnn's
    npz files do.
    """
    xy, pen, _ = _valid_points(sketch, name)
    xy = xy.astype(np.float64)
    offsets = np.diff(xy, axis=0, prepend=np.zeros((1, 2)))
    lift = np.zeros(len(xy))
    lift[_stroke_ends(pen)] = 1.0
    return np.column_stack([offsets, lift])


def from_stroke5(stroke5, *, name: str = "sketch", single_point: str = "error") -> Sketch:
    """Sketch from sketch-rnn **stroke-5** rows ``(dx, dy, p1, p2, p3)`` (``to_big_strokes``).

    ``p1 = 1``: pen stays down after this point; ``p2 = 1``: pen lifted after it; ``p3 = 1``:
    end of sketch — that row and everything after it are padding and ignored.  Exactly one of
    ``p1, p2, p3`` must be 1 on each row before the end.  The first row is the first point (as
    :func:`to_stroke5` writes it): strip the start token ``(0, 0, 1, 0, 0)`` that sketch-rnn's
    training batches prepend (``rows[1:]``), or it becomes a point at the origin drawn to the
    sketch's first point.
    """
    arr = _rows(stroke5, name, 5, "stroke-5 (dx, dy, p1, p2, p3)")
    states = arr[:, 2:]
    end = np.flatnonzero(states[:, 2] == 1.0)
    n = int(end[0]) if len(end) else len(arr)
    if n == 0:
        raise SketchError(f"{name}: empty drawing (stroke-5 starts with the end-of-sketch state p3)")
    one_hot = np.isin(states[:n], (0.0, 1.0)).all(axis=1) & (states[:n].sum(axis=1) == 1.0)
    if not one_hot.all():
        row = int(np.flatnonzero(~one_hot)[0])
        raise SketchError(f"{name}: row {row}: pen state {states[row].tolist()} is not one-hot (p1, p2, p3)")
    return _from_offsets(arr[:n, :2], states[:n, 1], name, single_point)


def to_stroke5(sketch: Sketch, max_len: Optional[int] = None, *, name: str = "sketch") -> np.ndarray:
    """sketch-rnn **stroke-5** ``float64[max_len, 5]`` of an unbatched sketch (``to_big_strokes``).

    Rows ``(dx, dy, p1, p2, p3)`` with ``p1 = 1 - lift``, ``p2 = lift`` (see :func:`to_stroke3`)
    on the ``N`` valid points, then ``(0, 0, 0, 0, 1)`` rows up to ``max_len``.  ``max_len=None``
    means ``N`` (no end rows).  No start token ``(0, 0, 1, 0, 0)`` is prepended.

    Raises:
      SketchError: the sketch has more than ``max_len`` points.
    """
    s3 = to_stroke3(sketch, name=name)
    n = len(s3)
    max_len = n if max_len is None else check_int(name, "max_len", max_len, 1, SketchError)  # 6.7 was cut to 6
    if n > max_len:
        raise SketchError(f"{name}: {n} points do not fit in stroke-5 max_len={max_len}")
    out = np.zeros((max_len, 5))
    out[:n, :2] = s3[:, :2]
    out[:n, 2] = 1.0 - s3[:, 2]
    out[:n, 3] = s3[:, 2]
    out[n:, 4] = 1.0
    return out


def _rows(data, name: str, width: int, what: str) -> np.ndarray:
    """``data`` as a finite float64 ``[N, width]`` array with ``N >= 1``."""
    return _numeric_array(data, f"{name} ({what})", lambda shape: len(shape) == 2 and shape[1] == width, f"[N, {width}]")


def _from_offsets(offsets: np.ndarray, lift: np.ndarray, name: str, single_point: str) -> Sketch:
    """Cumulative-sum offsets into absolute points, split strokes after ``lift == 1`` rows."""
    # float64 cumsum: exact for integer offsets and for float32 data written by to_stroke3
    # (within the magnitude condition stated there).
    points = np.cumsum(offsets, axis=0)
    ends = np.flatnonzero(lift == 1.0)
    strokes = [s for s in np.split(points, ends + 1) if len(s)]
    return from_strokes(strokes, name=name, single_point=single_point)
