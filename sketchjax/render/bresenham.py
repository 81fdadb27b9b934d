"""Non-differentiable Bresenham rasterisation (Algorithm 1 of the explainability paper).

Pixel ``(i, j)`` (row ``i``, column ``j``) covers ``[j, j+1) x [i, i+1)`` in canvas units, so a
point ``(x, y)`` lies in pixel ``(floor(y), floor(x))``.  Each drawn segment is traced from
its first to its last pixel with the textbook integer Bresenham recurrence, written in closed
form so that every step is independent: on a segment with major extent ``L`` and minor
extent ``m`` the ``k``-th pixel is offset by ``k`` along the major axis and by
``floor((2 k m + L) / (2 L))`` along the minor axis (ties step towards the end point, as the
recurrence ``D >= 0`` does; ``|dx| == |dy|`` counts as y-major, also as the recurrence does).

Static shapes: a segment can cross at most ``size`` columns (or rows) of the canvas along its
major axis, so ``size`` steps starting at the first in-canvas step cover it exactly for any
coordinates in the supported range (``|x| <= MAX_ABS_COORD``) — no length cap, no clipping.
That per-segment layout is the fallback; the fast path packs only the steps a batch draws, in
chunks of :func:`chunk_steps` steps (see :func:`_chunked_pixels`).
"""
from __future__ import annotations

import math
import numbers
from functools import partial

import jax
import jax.numpy as jnp

from sketchjax._checks import checked
from sketchjax._numerics import compute_dtype, fits_int32_index, to_rank
from sketchjax.render.resize import dilate
from sketchjax.sketch import segment_mask, stroke_ids

__all__ = ["raster", "stroke_rasters", "stroke_cover", "segment_pixels"]


def _segment_params(xy, pen, valid, size: int):
    """Per-segment Bresenham parameters, each ``int32[..., T-1]`` (``drawn`` is bool).

    ``k_first``/``n_steps``: the first in-canvas step along the major axis and how many
    steps from there can be drawn (0 for segments that are not drawn or miss the canvas).
    """
    # the floor in the points' own precision (at least float32): float64 3.9999999999 was
    # rounded to float32 4.0 first and inked column 4
    p = jnp.floor(jnp.asarray(xy, compute_dtype(xy))).astype(jnp.int32)
    x0, y0 = p[..., :-1, 0], p[..., :-1, 1]
    dx, dy = p[..., 1:, 0] - x0, p[..., 1:, 1] - y0
    adx, ady = jnp.abs(dx), jnp.abs(dy)
    sx = jnp.where(dx > 0, 1, -1)
    sy = jnp.where(dy > 0, 1, -1)
    x_major = adx > ady
    major_len = jnp.maximum(adx, ady)
    c0 = jnp.where(x_major, x0, y0)  # start along the major axis
    sc = jnp.where(x_major, sx, sy)
    # First step whose major coordinate is inside [0, size), and the last one.
    k_first = jnp.maximum(0, jnp.where(sc > 0, -c0, c0 - (size - 1)))
    k_last = jnp.minimum(major_len, jnp.where(sc > 0, size - 1 - c0, c0))
    drawn = segment_mask(pen, valid)
    n_steps = jnp.where(drawn, jnp.maximum(k_last - k_first + 1, 0), 0)
    return dict(
        x0=x0, y0=y0, sx=sx, sy=sy, x_major=x_major, major_len=major_len,
        minor_len=jnp.minimum(adx, ady), k_first=k_first, n_steps=n_steps,
    )


def _step_pixel(prm, k, size: int):
    """Pixel (row, col, on) of step ``k`` of segments with (broadcast) parameters ``prm``."""
    major_len = prm["major_len"]
    num = 2 * k * prm["minor_len"] + major_len
    den = 2 * jnp.maximum(major_len, 1)
    # floor(num / den) by a float estimate corrected to the exact integer (integer division
    # vectorises poorly on CPUs); one correction step suffices as the estimate is within 1.
    minor = jnp.floor(num.astype(jnp.float32) / den.astype(jnp.float32)).astype(jnp.int32)
    # (int32 corrections: bool + int fails under jax_numpy_dtype_promotion='strict')
    minor = minor - (minor * den > num).astype(jnp.int32) + ((minor + 1) * den <= num).astype(jnp.int32)
    x_major = prm["x_major"]
    cols = prm["x0"] + jnp.where(x_major, k, minor) * prm["sx"]
    rows = prm["y0"] + jnp.where(x_major, minor, k) * prm["sy"]
    inside = (cols >= 0) & (cols < size) & (rows >= 0) & (rows < size)
    return rows, cols, inside


@checked("size")  # public: its NaN point gave bogus pixels from INT_MIN arithmetic
def segment_pixels(xy: jax.Array, pen: jax.Array, valid: jax.Array, size: int):
    """Bresenham pixels of every drawn segment inside a ``size x size`` canvas.

    Args:
      xy: ``float32[..., T, 2]`` canvas-pixel coordinates.
      pen, valid: ``[..., T]`` pen states and padding mask (see :class:`sketchjax.Sketch`).
      size: canvas side in pixels (static).

    Returns:
      ``(rows, cols, on)`` each of shape ``[..., T-1, size]``: pixel ``s`` of segment ``t``
      (from point ``t`` to ``t+1``) and whether it is drawn and inside the canvas.
    """
    prm = _segment_params(xy, pen, valid, size)
    k_first = prm["k_first"][..., None]
    steps = to_rank(jnp.arange(size, dtype=jnp.int32), k_first.ndim)
    k = k_first + steps
    rows, cols, inside = _step_pixel({n: v[..., None] for n, v in prm.items()}, k, size)
    return rows, cols, inside & (steps < prm["n_steps"][..., None])


def chunk_steps(size: int) -> int:
    """Steps per chunk of the packed layout: ``size // 16``, at least 4 (static).

    Real QuickDraw sketches (T = 128) then need about 85 chunks each at every canvas size
    from 64 to 256 px and 52 at 28 px (4.2-5.3 ``size`` pixels of ink in ~39 drawn segments).
    """
    return max(4, size // 16)


def _chunk_counts(n_steps: jax.Array, size: int) -> jax.Array:
    """Chunks each segment needs: ``ceil(n_steps / chunk_steps(size))``."""
    c = chunk_steps(size)
    return (n_steps + (c - 1)) // c


def _chunked_pixels(prm, n_chunks: int, size: int):
    """The drawn pixels of all segments of a batch in ``n_chunks`` chunks of ``C`` steps.

    Each segment's run of ``n_steps`` pixels is cut into ``ceil(n_steps / C)`` chunks
    (``C = chunk_steps(size)``); the chunks of all segments (flattened over the batch) are laid
    end to end by a cumulative sum, and chunk slot ``q`` holds chunk ``q - start[s]`` of the
    segment ``s`` whose run contains it.  The segment lookup (a scan and a gather) is paid
    per chunk, not per pixel; the ``C`` pixels of a chunk are computed by broadcasting.  Work
    is proportional to the batch's ink plus its drawn segments, not to ``T * size`` per
    sketch.  Exact only when the batch needs at most ``n_chunks`` chunks; the caller checks.

    Returns:
      ``(rows, cols, on)``, each ``[n_chunks, C]``, and ``seg`` ``[n_chunks]`` indexing the
      flattened segments.
    """
    c = chunk_steps(size)
    flat = {k: v.reshape(-1) for k, v in prm.items()}
    counts = _chunk_counts(flat["n_steps"], size)
    starts = jnp.cumsum(counts) - counts
    # Slot q lies in the run of the last segment whose run starts at or before q; empty
    # segments start where the next run starts, so counting starts <= q gives that index + 1
    # (at least 1: the first segment starts at 0; at most the number of segments).
    marks = jnp.zeros((n_chunks + 1,), jnp.int32).at[jnp.minimum(starts, n_chunks)].add(1)
    # associative_scan: measured ~2x faster than jnp.cumsum for one long axis on CPU; it
    # needs a known length, so a symbolic batch size (jax.export) takes cumsum.
    marks = marks[:n_chunks]
    seg = (jax.lax.associative_scan(jnp.add, marks) if isinstance(n_chunks, int) else jnp.cumsum(marks)) - 1
    # One gather of a packed row per slot is much cheaper than one gather per parameter.
    names = tuple(flat) + ("start",)
    table = jnp.stack([flat[k].astype(jnp.int32) for k in flat] + [starts], axis=-1)
    g = {k: v[:, None] for k, v in zip(names, jnp.moveaxis(table[seg], -1, 0))}
    g["x_major"] = g["x_major"].astype(bool)
    q = jnp.arange(n_chunks, dtype=jnp.int32)[:, None]
    step = (q - g["start"]) * c + jnp.arange(c, dtype=jnp.int32)[None, :]  # step within the drawable run
    rows, cols, inside = _step_pixel(g, g["k_first"] + step, size)
    # Slots past the batch's last chunk fall in the last segment's run beyond its end: the
    # step test masks them too.
    return rows, cols, inside & (step < g["n_steps"]), seg


def _scatter_ink(slot: jax.Array, rows, cols, on, n_slots: int, size: int, dtype, values=None) -> jax.Array:
    """Sets ``out[slot, row, col] = 1`` for every ``on`` pixel; returns ``dtype[n_slots, size, size]``.

    ``slot`` (and ``values``) broadcast against ``rows`` (one slot per segment or chunk row).
    With ``values`` (``int32``) each pixel instead keeps the maximum
    value drawn into it (0 where nothing is drawn); ``dtype`` is then ignored (``int32``).
    """
    n_pix = size * size
    keep = on & (slot >= 0) & (slot < n_slots)
    if fits_int32_index(n_slots * n_pix):
        # one flat index (measured faster than a two-index scatter on CPU)
        index = (jnp.where(keep, slot * n_pix + rows * size + cols, n_slots * n_pix).reshape(-1),)  # dropped
        shape = (n_slots * n_pix,)
    else:
        # an output of more than 2**31 pixels (a large batch, or many strokes at a large
        # size): the flat int32 index would overflow, so slot and pixel are indexed apart
        slot, pix = jnp.broadcast_arrays(jnp.where(keep, slot, n_slots), rows * size + cols)
        index = (slot.reshape(-1), pix.reshape(-1))
        shape = (n_slots, n_pix)
    if values is not None:
        values = jnp.broadcast_to(values, keep.shape).reshape(-1)
        return jnp.zeros(shape, jnp.int32).at[index].max(values, mode="drop").reshape(n_slots, size, size)
    # Scatter into bytes, then widen: measured ~2x cheaper than scattering into float32.
    out = jnp.zeros(shape, jnp.uint8).at[index].set(1, mode="drop")
    return out.reshape(n_slots, size, size).astype(dtype)


def _ink(xy, pen, valid, size: int, n_chunks, slot_of_segment, n_slots: int, dtype, value_of_segment=None):
    """Rasterises every drawn segment into slot ``slot_of_segment[..., s]`` of the output.

    Uses the chunked layout of ``n_chunks`` chunks for the whole batch when the batch's ink
    fits in it (one ``lax.cond``), else ``size`` steps per segment; results are identical.
    ``value_of_segment`` (``int32[..., T-1]``): draw these values, keeping the per-pixel maximum.
    """
    prm = _segment_params(xy, pen, valid, size)

    def packed(_):
        rows, cols, on, seg = _chunked_pixels(prm, n_chunks, size)
        values = None if value_of_segment is None else value_of_segment.reshape(-1)[seg][:, None]
        return _scatter_ink(slot_of_segment.reshape(-1)[seg][:, None], rows, cols, on, n_slots, size, dtype, values)

    def per_segment(_):
        rows, cols, on = segment_pixels(xy, pen, valid, size)
        values = None if value_of_segment is None else value_of_segment[..., None]
        return _scatter_ink(slot_of_segment[..., None], rows, cols, on, n_slots, size, dtype, values)

    if n_chunks is None or n_chunks * chunk_steps(size) >= slot_of_segment.size * size:
        return per_segment(None)  # the chunked layout would not be smaller
    fits = jnp.sum(_chunk_counts(prm["n_steps"], size)) <= n_chunks
    return jax.lax.cond(fits, packed, per_segment, None)


def _budget(max_pixels, n_sketches: int, n_points: int, size: int):
    """Chunks of the packed layout for a batch: ``max_pixels`` (default ``6 * size``) pixels
    per sketch in chunks of :func:`chunk_steps`, plus one chunk per 4 segment slots for the
    partly filled last chunk of each drawn segment.

    Real QuickDraw sketches (T = 128) average 4.2-5.3 ``size`` pixels of ink in 39 drawn
    segments at 28-256 px: ~85 chunks against a default budget of 127 at 64-256 px (52
    against 73 at 28 px).
    """
    if max_pixels is None:
        return None
    if isinstance(max_pixels, bool) or not isinstance(max_pixels, numbers.Integral) or max_pixels < -1:
        # 1000.0 failed later, as a float shape, and only when the budget was used
        raise ValueError(f"max_pixels must be None, -1 (the default budget) or an integer >= 0, got {max_pixels!r}")
    max_pixels = int(max_pixels)
    pixels = 6 * size if max_pixels == -1 else max_pixels
    per_sketch = -(-pixels // chunk_steps(size)) + (n_points - 1) // 4
    return n_sketches * per_sketch


@checked("size", "width")
@partial(jax.jit, static_argnames=("size", "width", "max_pixels", "dtype"))
def raster(
    xy: jax.Array,
    pen: jax.Array,
    valid: jax.Array,
    size: int,
    width: int = 1,
    max_pixels: int | None = -1,
    dtype=jnp.float32,
) -> jax.Array:
    """Bresenham raster of a (batch of) sketch(es): ink = 1 on a 0 background.

    Args:
      xy: ``float32[..., T, 2]`` coordinates in output pixels (x = column, y = row).
      pen: ``float32[..., T]``; ``pen[t] = 1`` draws segment ``t -> t+1``.
      valid: ``bool[..., T]`` padding mask; padding never draws.
      size: output side in pixels (static).
      width: line width in pixels (static); ``> 1`` dilates the 1-px line with a disk.
      max_pixels: static pixel budget per sketch, on average over the batch, of the fast
        chunked layout (default ``6 * size``, 1.1-1.4x the ink of a QuickDraw sketch; ``None``
        always uses the per-segment layout); the layout adds one chunk per 4 points for the
        partly filled last chunk of each segment (see :func:`chunk_steps`).  A batch that
        needs more falls back to the per-segment layout (``size`` steps per segment): the
        result never changes.
      dtype: output dtype (static).  ``jnp.uint8`` or ``bool`` skip the widening to float32
        and write a quarter of the bytes (what image libraries produce); ink is still 1.

    Returns:
      ``dtype[..., size, size]`` (``float32`` by default).
    """
    lead = jnp.shape(pen)[:-1]
    n = math.prod(lead)  # a symbolic dimension under jax.export stays symbolic
    budget = _budget(max_pixels, n, jnp.shape(pen)[-1], size)
    t_seg = jnp.shape(pen)[-1] - 1
    slot = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32).reshape(lead + (1,)), lead + (t_seg,))
    img = _ink(xy, pen, valid, size, budget, slot, n, jnp.dtype(dtype)).reshape(lead + (size, size))
    return dilate(img, width) if width > 1 else img


@checked("size", "max_strokes", "width")
@partial(jax.jit, static_argnames=("size", "max_strokes", "width", "max_pixels"))
def stroke_rasters(
    xy: jax.Array,
    pen: jax.Array,
    valid: jax.Array,
    size: int,
    max_strokes: int,
    width: int = 1,
    max_pixels: int | None = -1,
) -> jax.Array:
    """One Bresenham raster per stroke (``S_k`` of Eq. 2 of the explainability paper).

    Stroke ``k`` is the ``k``-th maximal run of drawn segments (see
    :func:`sketchjax.sketch.stroke_ids`); strokes with index ``>= max_strokes`` are dropped
    (check ``num_strokes`` on the host if that must not happen).  Single-point strokes
    draw nothing, exactly as in :func:`raster`, so ``raster == clip(sum_k S_k, 0, 1)``.
    ``width`` and ``max_pixels`` are as in :func:`raster`.

    Returns:
      ``float32[..., max_strokes, size, size]``.
    """
    lead = jnp.shape(pen)[:-1]
    n = math.prod(lead)  # a symbolic dimension under jax.export stays symbolic
    budget = _budget(max_pixels, n, jnp.shape(pen)[-1], size)
    sid = stroke_ids(pen, valid)[..., :-1]  # a segment belongs to the stroke of its start point
    batch = jnp.arange(n, dtype=jnp.int32).reshape(lead + (1,))
    slot = jnp.where((sid >= 0) & (sid < max_strokes), batch * max_strokes + sid, -1)
    img = _ink(xy, pen, valid, size, budget, slot, n * max_strokes, jnp.float32)
    img = img.reshape(lead + (max_strokes, size, size))
    return dilate(img, width) if width > 1 else img


@checked("size", "width")
@partial(jax.jit, static_argnames=("size", "width", "max_pixels"))
def stroke_cover(
    xy: jax.Array,
    pen: jax.Array,
    valid: jax.Array,
    size: int,
    width: int = 1,
    max_pixels: int | None = -1,
) -> tuple[jax.Array, jax.Array]:
    """Which strokes ink each pixel, without one raster per stroke.

    Returns ``(lowest, highest)``, each ``int32[..., size, size]``: the smallest and the
    largest stroke index (:func:`sketchjax.sketch.stroke_ids`) among the strokes whose
    ``width`` px Bresenham line covers the pixel, ``-1`` where none does.  So the pixel is
    inked iff ``highest >= 0`` (that is :func:`raster`), and inked by exactly one stroke —
    ``highest`` — iff ``lowest == highest >= 0``.  Equivalent to reducing
    :func:`stroke_rasters` over strokes, at the cost of two :func:`raster` calls whatever the
    number of strokes (dilation by a disk commutes with taking the max over strokes).
    """
    lead = jnp.shape(pen)[:-1]
    n = math.prod(lead)  # a symbolic dimension under jax.export stays symbolic
    budget = _budget(max_pixels, n, jnp.shape(pen)[-1], size)
    t = jnp.shape(pen)[-1]
    sid = stroke_ids(pen, valid)[..., :-1]  # a segment belongs to the stroke of its start point
    slot = jnp.broadcast_to(jnp.arange(n, dtype=jnp.int32).reshape(lead + (1,)), sid.shape)
    # Both as maxima of positive codes (0 = no ink): id + 1, and t - id (largest for the lowest id).
    hi = _ink(xy, pen, valid, size, budget, slot, n, jnp.int32, sid + 1)
    lo = _ink(xy, pen, valid, size, budget, slot, n, jnp.int32, t - sid)
    if width > 1:
        hi, lo = dilate(hi, width), dilate(lo, width)
    highest = (hi - 1).reshape(lead + (size, size))
    lowest = jnp.where(lo > 0, t - lo, -1).reshape(lead + (size, size))
    return lowest, highest
