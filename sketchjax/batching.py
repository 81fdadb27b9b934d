"""Padding, stacking and length bucketing (host side, NumPy).

Models compile once per input shape, so sketches of different lengths are padded to a fixed
``max_len`` (``valid = False``, ``xy = pen = time = 0`` on padding) and stacked into a batch.
:func:`bucket_by_length` groups sketches into a few length buckets so a training loop compiles
once per bucket instead of once per batch, without padding everything to the longest sketch.
"""
from __future__ import annotations

import dataclasses
import numbers
from typing import Optional, Sequence

import numpy as np

from sketchjax._checks import check_positive_int
from sketchjax.sketch import Sketch, SketchError, check_sketch

__all__ = ["pad_sketch", "stack_sketches", "bucket_by_length", "LengthBucket"]


def pad_sketch(sketch: Sketch, max_len: int, *, truncate: bool = True, name: str = "sketch") -> Sketch:
    """Pad (or truncate) one unbatched sketch to exactly ``max_len`` points.

    Args:
      sketch: unbatched sketch (padded or not); only its valid points are used.
      max_len: output length ``T``.
      truncate: if the sketch has more than ``max_len`` points, keep the first ``max_len`` and
        lift the pen after the last kept one (``pen = 0``); if False, raise instead.
        Truncation can leave a lone final point (a one-point stroke that draws nothing).
      name: names the sketch in errors.

    Returns:
      Sketch with NumPy leaves: ``xy float32[max_len, 2]``, ``pen float32[max_len]``,
      ``valid bool[max_len]`` (True on the first ``min(n, max_len)``), ``time`` likewise or None.
    """
    if np.ndim(sketch.pen) != 1:
        raise SketchError(f"{name}: pad_sketch expects one unbatched sketch, got shape {np.shape(sketch.pen)}")
    check_positive_int(name, "max_len", max_len, SketchError)
    check_sketch(sketch, name)
    n = int(np.sum(np.asarray(sketch.valid)))
    if n > max_len and not truncate:
        raise SketchError(f"{name}: {n} points exceed max_len={max_len} (pass truncate=True to cut)")
    kept = min(n, max_len)

    def fit(values, dtype) -> np.ndarray:
        values = np.asarray(values, dtype)[:kept]
        out = np.zeros((max_len,) + values.shape[1:], dtype)
        out[:kept] = values
        return out

    pen = fit(sketch.pen, np.float32)
    pen[kept - 1] = 0.0  # the last point never draws a segment (matters after truncation)
    return Sketch(
        xy=fit(sketch.xy, np.float32),
        pen=pen,
        valid=np.arange(max_len) < kept,
        time=None if sketch.time is None else fit(sketch.time, np.float32),
    )


def _check_all_sketches(sketches: Sequence, name: str) -> None:
    """SketchError naming the first item that is not a :class:`Sketch`."""
    not_sketch = next((i for i, s in enumerate(sketches) if not isinstance(s, Sketch)), None)
    if not_sketch is not None:
        raise SketchError(f"{name}[{not_sketch}]: expected a Sketch, got {type(sketches[not_sketch]).__name__} "
                          "(build one with sketchjax.formats.from_strokes)")


def stack_sketches(
    sketches: Sequence[Sketch], max_len: Optional[int] = None, *, truncate: bool = True, name: str = "sketches"
) -> Sketch:
    """Pad each sketch to ``max_len`` and stack them into a batch ``[B, max_len]``.

    Args:
      sketches: unbatched sketches; either all or none have ``time``.
      max_len: common length; None = the largest number of valid points.
      truncate: passed to :func:`pad_sketch`.
      name: names the list in errors (items are ``name[i]``).

    Returns:
      Batched sketch with NumPy leaves: ``xy [B, max_len, 2]``, ``pen``/``valid``/``time`` ``[B, max_len]``.
    """
    if len(sketches) == 0:
        raise SketchError(f"{name}: cannot stack an empty list of sketches")
    _check_all_sketches(sketches, name)
    if max_len is None:
        max_len = max(int(np.sum(np.asarray(s.valid))) for s in sketches)
    labels = [f"{name}[{i}]" for i in range(len(sketches))]
    return _pad_and_stack(sketches, labels, max_len, truncate)


def _pad_and_stack(sketches: Sequence[Sketch], labels: Sequence[str], max_len: int, truncate: bool) -> Sketch:
    timed = [s.time is not None for s in sketches]
    if any(timed) and not all(timed):
        odd = timed.index(not timed[0])
        raise SketchError(f"{labels[odd]}: mixes sketches with and without time in one batch; drop time first")
    padded = [pad_sketch(s, max_len, truncate=truncate, name=label) for s, label in zip(sketches, labels)]
    return Sketch(
        xy=np.stack([s.xy for s in padded]),
        pen=np.stack([s.pen for s in padded]),
        valid=np.stack([s.valid for s in padded]),
        time=np.stack([s.time for s in padded]) if all(timed) else None,
    )


@dataclasses.dataclass(frozen=True)
class LengthBucket:
    """A batch of sketches padded to one bucket length.

    Attributes:
      max_len: the bucket's padded length ``T`` (one of the boundaries).
      indices: ``int64[B]`` positions of the batch's sketches in the input list.
      batch: the stacked sketches, ``[B, max_len]``.
    """

    max_len: int
    indices: np.ndarray
    batch: Sketch


def bucket_by_length(
    sketches: Sequence[Sketch],
    boundaries: Sequence[int],
    *,
    batch_size: Optional[int] = None,
    drop_remainder: bool = False,
    truncate: bool = True,
    name: str = "sketches",
) -> list[LengthBucket]:
    """Group sketches by number of points into padded buckets.

    A sketch with ``n`` points goes to the first bucket with ``n <= boundary``; longer than the
    last boundary goes to the last bucket, truncated (or raises if ``truncate=False``).

    Args:
      sketches: unbatched sketches.
      boundaries: strictly increasing bucket lengths, e.g. ``(32, 64, 128)``.
      batch_size: split each bucket into batches of this many sketches (in input order);
        None = one batch per bucket.
      drop_remainder: drop each bucket's last, smaller batch, so that every batch has shape
        ``[batch_size, max_len]`` (one compilation per bucket).

    Returns:
      Non-empty :class:`LengthBucket` batches, ordered by bucket length, then input order.
    """
    boundaries = list(boundaries)  # a generator was used up by the first check ("got []")
    if not all(isinstance(b, numbers.Integral) and not isinstance(b, bool) for b in boundaries):  # 4.9 was cut to 4
        raise SketchError(f"{name}: boundaries must be integers (padded lengths), got {list(boundaries)}")
    bounds = [int(b) for b in boundaries]
    if not bounds or any(b < 1 for b in bounds) or any(a >= b for a, b in zip(bounds, bounds[1:])):
        raise SketchError(f"{name}: boundaries must be positive and strictly increasing, got {list(boundaries)}")
    if batch_size is not None:
        check_positive_int(name, "batch_size", batch_size, SketchError)
    _check_all_sketches(sketches, name)  # a dict was "AttributeError: 'dict' object has no attribute 'valid'"
    lengths = np.array([int(np.sum(np.asarray(s.valid))) for s in sketches], dtype=np.int64)
    if not truncate and len(lengths) and lengths.max() > bounds[-1]:
        i = int(np.argmax(lengths))
        raise SketchError(f"{name}[{i}]: {lengths[i]} points exceed the largest bucket {bounds[-1]} (truncate=False)")
    bucket_of = np.minimum(np.searchsorted(bounds, lengths, side="left"), len(bounds) - 1)
    out = []
    for b, max_len in enumerate(bounds):
        members = np.flatnonzero(bucket_of == b)
        step = batch_size or max(len(members), 1)
        for start in range(0, len(members), step):
            indices = members[start : start + step]
            if drop_remainder and batch_size is not None and len(indices) < batch_size:
                continue
            batch = _pad_and_stack(
                [sketches[i] for i in indices], [f"{name}[{i}]" for i in indices], max_len, truncate
            )
            out.append(LengthBucket(max_len=max_len, indices=indices, batch=batch))
    return out
