"""Differentiable distance-field rasterisation (Eq. 5 of the explainability paper, SPEC §2.3).

    X(p) = falloff( min_t [ dist(p, v_{t-1}, v_t) + (1 - pen_{t-1}) * 1e6 ] )

with ``dist`` the Euclidean distance from the pixel centre ``p = (j + 0.5, i + 0.5)`` to the
segment (projection clamped to ``[0, 1]``) and the paper's falloff ``sigmoid(2 - 5 d)``.
Segments touching a padding point never draw.  Differentiable in ``xy`` and ``pen``.

Two implementations share one geometry:

* :func:`distance_raster_dense` — the formula written plainly; it materialises
  ``[..., H, W, T]`` (gigabytes at 256^2) and is kept as the reference.
* :func:`distance_raster` — the library's renderer.  Forward: the canvas is cut into tiles;
  each tile keeps only the segments that can come within the falloff's support radius of
  one of its pixels (radius where falloff and its slope drop below ``tol``, so culling
  changes values by less than ``tol``), compacted into a per-tile list and scanned in
  chunks with a running min/argmin — memory ``O(B·H·W)`` plus one chunk
  (``B·H·W·chunk`` floats).  Backward (``custom_vjp``): only the arg-min segment of each
  pixel receives gradient (the derivative of a min), in closed form — by the envelope
  theorem ``d dist/d v_{t-1} = (1-u) r/|r|``, ``d dist/d v_t = u r/|r|`` with ``r`` the
  vector from the pixel to its closest point and ``u`` the clamped projection — and is
  scattered to points with one ``segment_sum`` onto the segments (pixels with no live
  segment dropped, not piled onto one address) and moved to the points on the small
  ``[B, T]`` array: ``O(B·H·W)`` memory again.

Degenerate geometry, chosen so that ``jax.test_util.check_grads`` (central differences)
passes: a zero-length segment (a dot, or consecutive duplicate points) uses ``u = 1/2``,
splitting its gradient between its two coincident ends, and wins ties against the
non-degenerate segments that share its point; the gradient of ``|r|`` at ``r = 0`` is 0, also
for a pixel centre lying on a segment (``|r|`` within rounding of 0: e.g. integer QuickDraw
coordinates on their own canvas), where central differences of the V-shaped distance give 0
too.  A pixel equally near two segments that share no point gives its whole gradient to
one of them (zero-length segments first, else the lower index): a subgradient of the min,
where central differences would split it.
Forward-mode differentiation of :func:`distance_raster` is not defined (``custom_vjp``);
use reverse mode, or :func:`distance_raster_dense` for ``jvp``.  Reverse over reverse works
(``grad`` of a gradient, e.g. of a P-SLA attribution w.r.t. the points): the search's
minimum has a closed-form tangent (the arg-min segment's distance, ties averaged as the
backward pass averages them), so its loop is never differentiated; away from zero-length
segments (which follow the first-order convention above) it equals the dense formula's
second derivatives (tested in float64).
"""
from __future__ import annotations

import dataclasses
import math
from functools import partial
from typing import Callable, Optional

import jax
import jax.numpy as jnp
import numpy as np

from sketchjax._checks import checked, is_number
from sketchjax._numerics import fits_int32_index, safe_sqrt

__all__ = [
    "SigmoidFalloff",
    "GaussianFalloff",
    "PEN_UP_PENALTY",
    "distance_raster",
    "distance_raster_dense",
    "segment_distance",
]

#: Distance added to pen-up segments (``(1 - pen) * 1e6`` in Eq. 5).
PEN_UP_PENALTY = 1e6
_FAR = 1e30  # distance of a pixel with no candidate segment: falloff(_FAR) == 0 exactly


def _check_falloff(name: str, **params) -> None:
    """Each ``param=(value, positive)`` a finite number (> 0 where ``positive``), or a ValueError."""
    for param, (value, positive) in params.items():
        if not (is_number(value) and math.isfinite(value) and (value > 0 or not positive)):
            raise ValueError(f"{name}: {param} must be a finite number{' > 0' if positive else ''}, got {value!r}")


@dataclasses.dataclass(frozen=True)
class SigmoidFalloff:
    """``sigmoid(offset - slope * d)``; the paper's Eq. 5 uses ``offset=2, slope=5``.

    ``offset / slope`` is roughly the line's half-width in pixels (0.4 px by default).
    """

    offset: float = 2.0
    slope: float = 5.0

    def __post_init__(self):
        # slope 0 divided by zero in support_radius; a negative one inked away from the line
        # (and culled wrongly: the tiled image was not the dense one)
        _check_falloff("SigmoidFalloff", offset=(self.offset, False), slope=(self.slope, True))

    def __call__(self, d: jax.Array) -> jax.Array:
        return jax.nn.sigmoid(self.offset - self.slope * d)

    @classmethod
    def for_width(cls, width: float, slope: float = 5.0) -> "SigmoidFalloff":
        """A line ``width`` pixels wide (intensity 0.5 at distance ``width / 2``), same edge."""
        return cls(offset=slope * width / 2.0, slope=slope)

    def support_radius(self, tol: float) -> float:
        """Distance beyond which the value and the slope (per pixel) are both below ``tol``."""
        # For z = offset - slope*d < 0: sigmoid(z) < e^z and |d/dd| < slope * e^z.
        return (self.offset - math.log(tol / max(self.slope, 1.0))) / self.slope


@dataclasses.dataclass(frozen=True)
class GaussianFalloff:
    """``exp(-d^2 / (2 sigma^2))``, a smooth alternative to the paper's sigmoid."""

    sigma: float = 0.5

    def __post_init__(self):
        # sigma 0 divided by zero; a negative one gave a negative culling radius (every segment culled)
        _check_falloff("GaussianFalloff", sigma=(self.sigma, True))

    def __call__(self, d: jax.Array) -> jax.Array:
        return jnp.exp(-0.5 * jnp.square(d / self.sigma))

    def support_radius(self, tol: float) -> float:
        """Distance beyond which the value and the slope are both below ``tol``."""
        r = self.sigma * math.sqrt(2.0 * math.log(1.0 / tol))
        for _ in range(8):  # slope = (r / sigma^2) * value: fixed point for the extra factor
            r = self.sigma * math.sqrt(2.0 * math.log(max(1.0, r / self.sigma**2) / tol))
        return r


def _closest_point(px, py, ax, ay, bx, by):
    """Clamped projection ``u`` and the vector ``r = closest - p`` (components), broadcasting.

    ``u = 1/2`` on zero-length segments.  ``r`` is built from the pixel-relative end point
    nearer along the segment (``a - p + u (b - a)`` or ``b - p - (1 - u)(b - a)``): on a
    canvas the differences ``a - p`` and ``b - a`` are exact in float32, so the rounding
    error of ``|r|`` is about ``eps * L / 2`` for a segment of length ``L`` instead of
    ``eps * |coordinates|``, and ``r`` is exactly an end point's offset when ``u`` is 0 or 1
    (ties between neighbouring segments stay exact).
    """
    abx, aby = bx - ax, by - ay
    apx, apy = ax - px, ay - py
    len2 = abx * abx + aby * aby
    degenerate = len2 == 0
    t = -(apx * abx + apy * aby) / jnp.where(degenerate, 1.0, len2)
    u = jnp.where(degenerate, 0.5, jnp.clip(t, 0.0, 1.0))
    from_a = u <= 0.5
    w = jnp.where(from_a, u, u - 1.0)
    rx = jnp.where(from_a, apx, bx - px) + w * abx
    ry = jnp.where(from_a, apy, by - py) + w * aby
    return u, rx, ry


def _safe_norm(rx, ry):
    return safe_sqrt(rx * rx + ry * ry)


def segment_distance(p: jax.Array, a: jax.Array, b: jax.Array) -> jax.Array:
    """Euclidean distance from points ``p[..., 2]`` to segments ``a -> b`` (``[..., 2]``), broadcasting."""
    _, rx, ry = _closest_point(p[..., 0], p[..., 1], a[..., 0], a[..., 1], b[..., 0], b[..., 1])
    return _safe_norm(rx, ry)


def _segments(xy, pen, valid):
    """Per-segment start/end coordinates, pen-up penalty and validity: each ``[B, T-1]``."""
    ax, ay = xy[:, :-1, 0], xy[:, :-1, 1]
    bx, by = xy[:, 1:, 0], xy[:, 1:, 1]
    penalty = (1.0 - pen[:, :-1]) * PEN_UP_PENALTY
    ok = valid[:, :-1] & valid[:, 1:]
    return ax, ay, bx, by, penalty, ok


def _float(x):
    """Floating arrays keep their precision (float64 references); others become float32."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def _flatten(xy, pen, valid):
    """Flat ``[B, T]`` arrays; ``xy`` and ``pen`` in one floating type, at least float32 (bf16 or
    float16 points are computed in float32; float64 points, or pen states, make both float64).
    The casts are outside the custom VJP, so gradients come back in the inputs' own dtypes."""
    t = jnp.shape(pen)[-1]
    xy, pen = _float(xy), _float(pen)
    dtype = jnp.promote_types(jnp.promote_types(xy.dtype, pen.dtype), jnp.float32)
    xy = xy.astype(dtype).reshape(-1, t, 2)
    pen = pen.astype(dtype).reshape(-1, t)
    valid = jnp.asarray(valid, bool).reshape(-1, t)
    return xy, pen, valid


@checked("size")
@partial(jax.jit, static_argnames=("size", "falloff"))
def distance_raster_dense(
    xy: jax.Array,
    pen: jax.Array,
    valid: jax.Array,
    size: int,
    falloff: Callable[[jax.Array], jax.Array] = SigmoidFalloff(),
) -> jax.Array:
    """Eq. 5 written plainly (reference): materialises ``float32[..., size, size, T-1]``.

    Same arguments, checks and result as :func:`distance_raster`; supports forward and
    reverse mode.  Use it for small canvases or as a correctness reference only.
    """
    lead = jnp.shape(pen)[:-1]
    xy, pen, valid = _flatten(xy, pen, valid)
    # padding takes no part (its coordinates may be anything, NaN included: through the
    # masked segment it made the last valid point's gradient NaN)
    xy = jnp.where(valid[..., None], xy, 0.0)
    if xy.shape[1] < 2:
        return jnp.zeros(lead + (size, size), xy.dtype)
    ax, ay, bx, by, penalty, ok = _segments(xy, pen, valid)
    c = jnp.arange(size, dtype=xy.dtype) + 0.5
    px, py = c[None, None, :, None], c[None, :, None, None]  # x = column, y = row
    e = lambda v: v[:, None, None, :]  # noqa: E731  [B, S] -> [B, 1, 1, S]
    _, rx, ry = _closest_point(px, py, e(ax), e(ay), e(bx), e(by))
    d = jnp.where(e(ok), _safe_norm(rx, ry) + e(penalty), _FAR)
    return falloff(jnp.min(d, axis=-1)).reshape(lead + (size, size))


def _tile_grid(size: int, tile: int):
    """Pixel centres per tile ``[nt, P]`` (x and y), tile centres ``[nt]``, tiles per side."""
    n = -(-size // tile)
    ty, tx, py, px = np.meshgrid(
        np.arange(n), np.arange(n), np.arange(tile), np.arange(tile), indexing="ij"
    )
    cx = (tx * tile + px + 0.5).reshape(n * n, tile * tile).astype(np.float32)
    cy = (ty * tile + py + 0.5).reshape(n * n, tile * tile).astype(np.float32)
    tcx = (np.arange(n * n) % n * tile + tile / 2.0).astype(np.float32)
    tcy = (np.arange(n * n) // n * tile + tile / 2.0).astype(np.float32)
    return cx, cy, tcx, tcy, n


def _untile(v, size: int, tile: int):
    """``[B, nt, P] -> [B, size, size]``."""
    b = v.shape[0]
    n = -(-size // tile)
    v = v.reshape(b, n, n, tile, tile).transpose(0, 1, 3, 2, 4).reshape(b, n * tile, n * tile)
    return v[:, :size, :size]


def _tile(img, size: int, tile: int):
    """``[B, size, size] -> [B, nt, P]`` (inverse of :func:`_untile`, zero padding)."""
    b = img.shape[0]
    n = -(-size // tile)
    img = jnp.pad(img, ((0, 0), (0, n * tile - size), (0, n * tile - size)))
    return img.reshape(b, n, tile, n, tile).transpose(0, 1, 3, 2, 4).reshape(b, n * n, tile * tile)


def _gather_segments(values, idx):
    """``values[b, idx[b, ...]]`` for each ``values: [B, S]``."""
    return [jax.vmap(lambda v, i: v[i])(v, idx) for v in values]


def _nearest_segments(xy, pen, valid, size, tile, chunk, radius):
    """Per pixel (tile layout ``[B, nt, P]``): min effective distance and its segment index.

    The index is ``S = T - 1`` (no segment) where no segment comes within ``radius``.
    """
    bsz, t = pen.shape
    s = t - 1
    ax, ay, bx, by, penalty, ok = _segments(xy, pen, valid)
    zero_len = (ax == bx) & (ay == by)
    cx, cy, tcx, tcy, n = _tile_grid(size, tile)
    nt, n_pix = cx.shape

    if radius is None:
        near = jnp.broadcast_to(ok[:, None, :], (bsz, nt, s))
    else:
        # Lower bound of the effective distance from any pixel centre of the tile.
        _, rx, ry = _closest_point(
            tcx[None, :, None], tcy[None, :, None],
            ax[:, None, :], ay[:, None, :], bx[:, None, :], by[:, None, :],
        )
        half_diag = tile * math.sqrt(0.5)
        lower = _safe_norm(rx, ry) - half_diag + penalty[:, None, :]
        near = ok[:, None, :] & (lower <= radius)

    # Compact each tile's candidates: zero-length segments first (they win ties), then the
    # rest, both in index order.  cumsum + scatter instead of a sort: O(B * nt * S).
    first = near & zero_len[:, None, :]
    rest = near & ~zero_len[:, None, :]
    c_first = jnp.cumsum(first, axis=-1, dtype=jnp.int32)
    c_rest = jnp.cumsum(rest, axis=-1, dtype=jnp.int32)
    n_first = c_first[..., -1:]
    pos = jnp.where(first, c_first - 1, jnp.where(rest, n_first + c_rest - 1, -1))
    count = n_first[..., 0] + c_rest[..., -1]
    s_pad = -(-s // chunk) * chunk
    seg_index = jnp.broadcast_to(jnp.arange(s, dtype=jnp.int32), (bsz, nt, s)).reshape(-1)
    row = jnp.arange(bsz * nt, dtype=jnp.int32).reshape(bsz, nt, 1)
    if fits_int32_index(bsz * nt * s_pad):  # one flat index
        index = (jnp.where(pos >= 0, row * s_pad + pos, bsz * nt * s_pad).reshape(-1),)
        shape = (bsz * nt * s_pad,)
    else:  # more candidate slots than an int32 indexes: row and slot apart
        index = (jnp.where(pos >= 0, row, bsz * nt).reshape(-1), pos.reshape(-1))
        shape = (bsz * nt, s_pad)
    order = jnp.full(shape, s, jnp.int32).at[index].set(seg_index, mode="drop").reshape(bsz, nt, s_pad)
    n_iter = (jnp.max(count) + chunk - 1) // chunk

    pcx, pcy = jnp.asarray(cx)[None, :, None, :], jnp.asarray(cy)[None, :, None, :]

    def scan_chunk(c, carry):
        best, arg = carry
        idx = jax.lax.dynamic_slice_in_dim(order, c * chunk, chunk, axis=2)  # [B, nt, K]
        live = idx < s
        gax, gay, gbx, gby, gpen = _gather_segments(
            (ax, ay, bx, by, penalty), jnp.where(live, idx, 0)
        )
        e = lambda v: v[..., None]  # noqa: E731  [B, nt, K] -> [B, nt, K, 1]
        _, rx, ry = _closest_point(pcx, pcy, e(gax), e(gay), e(gbx), e(gby))
        d = jnp.where(e(live), _safe_norm(rx, ry) + e(gpen), _FAR)  # [B, nt, K, P]
        j = jnp.argmin(d, axis=2)  # first minimum: zero-length candidates come first
        m = jnp.take_along_axis(d, j[:, :, None, :], axis=2)[:, :, 0, :]
        seg = jnp.take_along_axis(idx, j, axis=2)
        better = m < best
        return jnp.where(better, m, best), jnp.where(better, seg, arg)

    init = (
        jnp.full((bsz, nt, n_pix), _FAR, xy.dtype),
        jnp.full((bsz, nt, n_pix), s, jnp.int32),
    )
    return jax.lax.fori_loop(0, n_iter, scan_chunk, init)


def _at_nearest(xy, pen, valid, arg, size, tile):
    """The closed-form geometry of each pixel's nearest segment ``arg`` (tile layout
    ``[B, nt, P]``, from :func:`_nearest_segments`): a plain differentiable function of ``xy``
    and ``pen`` with ``arg`` held fixed — what the backward pass and the tangents use."""
    s = pen.shape[1] - 1
    segments = _segments(xy, pen, valid)  # ax, ay, bx, by, penalty, ok
    cx, cy, _, _, _ = _tile_grid(size, tile)
    pcx, pcy = jnp.asarray(cx)[None], jnp.asarray(cy)[None]
    live = arg < s
    seg = jnp.where(live, arg, 0)
    gax, gay, gbx, gby, gpen = _gather_segments(segments[:5], seg)
    u, rx, ry = _closest_point(pcx, pcy, gax, gay, gbx, gby)
    d = _safe_norm(rx, ry)
    # A pixel centre on the segment: |r| is then a rounding residual (about eps * L, see
    # _closest_point) pointing anywhere, often along the segment, and r / |r| no direction at
    # all -- the distance's gradient there is taken as 0, as at r = 0.
    on_segment = d <= 8.0 * jnp.finfo(d.dtype).eps * jnp.maximum(_safe_norm(gbx - gax, gby - gay), 1.0)
    return dict(segments=segments, pcx=pcx, pcy=pcy, live=live, seg=seg, u=u, rx=rx, ry=ry, d=d, d_eff=d + gpen,
                on_segment=on_segment)


@partial(jax.custom_jvp, nondiff_argnums=(3, 4, 5, 6))
def _nearest(xy, pen, valid, size, tile, chunk, radius):
    """:func:`_nearest_segments` with a tangent rule: the minimum's tangent is the tangent of
    the arg-min segment's distance (the derivative of a min), computed in closed form, so
    the loop of the search is never differentiated.  Only an outer derivative of the
    renderer's backward pass (second order: ``grad`` of a P-SLA attribution w.r.t. the points)
    reaches it; first-order gradients use ``_distance_raster_bwd``."""
    return _nearest_segments(xy, pen, valid, size, tile, chunk, radius)


@_nearest.defjvp
def _nearest_jvp(size, tile, chunk, radius, primals, tangents):
    xy, pen, valid = primals
    xy_dot, pen_dot = tangents[:2]
    best, arg = _nearest_segments(xy, pen, valid, size, tile, chunk, radius)
    geo, geo_dot = jax.jvp(lambda x: _at_nearest(x, pen, valid, arg, size, tile), (xy,), (xy_dot,))
    d_dot = geo_dot["d_eff"]  # w.r.t. xy only: the pen part is the penalty's, below
    # The pen-up penalty's tangent, shared with tied neighbours as the backward pass shares
    # the pen gradient (xy tangents of tied segments coincide at their shared vertex).
    p_dot = _tied_mean(-PEN_UP_PENALTY * pen_dot[:, :-1], geo["seg"], *_ties(geo))
    best_dot = jnp.where(geo["live"], d_dot + p_dot, 0.0)
    return (best, arg), (best_dot, np.zeros(arg.shape, jax.dtypes.float0))


@partial(jax.custom_vjp, nondiff_argnums=(3, 4, 5, 6, 7))
def _distance_raster_flat(xy, pen, valid, size, falloff, tile, chunk, radius):
    best, _ = _nearest(xy, pen, valid, size, tile, chunk, radius)
    return _untile(falloff(best), size, tile)


def _distance_raster_fwd(xy, pen, valid, size, falloff, tile, chunk, radius):
    best, arg = _nearest(xy, pen, valid, size, tile, chunk, radius)
    return _untile(falloff(best), size, tile), (xy, pen, valid, arg)


def _distance_raster_bwd(size, falloff, tile, chunk, radius, residuals, g):
    xy, pen, valid, arg = residuals
    bsz, t = pen.shape
    geo = _at_nearest(xy, pen, valid, arg, size, tile)
    live, seg, u, rx, ry, d = (geo[k] for k in ("live", "seg", "u", "rx", "ry", "d"))
    tie_prev, tie_next = _ties(geo)
    # d_eff (the same value) with the penalty averaged over tied neighbours, so that an outer
    # derivative of this pass w.r.t. pen splits at ties as the gradient does (second order).
    d_eff = d + _tied_mean(geo["segments"][4], seg, tie_prev, tie_next)
    _, slope = jax.jvp(falloff, (d_eff,), (jnp.ones_like(d_eff),))
    ge = jnp.where(live, _tile(g, size, tile) * slope, 0.0)  # dL/d(effective distance)
    off = geo["on_segment"] | (d <= 0)
    inv = jnp.where(off, 0.0, 1.0 / jnp.where(off, 1.0, d))
    gx, gy = ge * rx * inv, ge * ry * inv
    # Pen gradient: a pixel whose nearest point is a vertex shared with a neighbouring
    # segment of equal effective distance (to a few ulps) is a tie of the min; central differences (and
    # jnp.min's gradient) split it equally, so the pen gradient is shared with the tied
    # neighbours.  (Their xy gradients coincide at the shared vertex, so xy needs no split.)
    share = -PEN_UP_PENALTY * ge / (1.0 + tie_prev + tie_next)
    # One scatter of seven per-pixel terms onto each pixel's arg-min segment; pixels with no
    # live segment (most of the canvas) go to an out-of-range bin and are dropped, so they
    # neither cost an atomic add nor pile onto one address (measured on a GPU: the
    # contention dominated the backward pass).  The per-segment sums are then moved to the
    # points on the small [B, T] array: a segment's start, its end (the next point), and the
    # tied neighbours' pen states.
    u = u.reshape(-1)
    terms = jnp.stack([(1.0 - u) * gx.reshape(-1), u * gx.reshape(-1),
                       (1.0 - u) * gy.reshape(-1), u * gy.reshape(-1), share.reshape(-1),
                       (share * tie_prev).reshape(-1), (share * tie_next).reshape(-1)], axis=-1)
    bins = jnp.where(live, jnp.arange(bsz, dtype=jnp.int32)[:, None, None] * t + seg, bsz * t)
    per_seg = jax.ops.segment_sum(terms, bins.reshape(-1), bsz * t).reshape(bsz, t, 7)
    to_next = lambda v: jnp.pad(v[:, :-1], ((0, 0), (1, 0)))  # noqa: E731  segment k -> point k+1
    to_prev = lambda v: jnp.pad(v[:, 1:], ((0, 0), (0, 1)))  # noqa: E731  segment k -> point k-1
    g_x = per_seg[..., 0] + to_next(per_seg[..., 1])
    g_y = per_seg[..., 2] + to_next(per_seg[..., 3])
    g_pen = per_seg[..., 4] + to_prev(per_seg[..., 5]) + to_next(per_seg[..., 6])
    g_xy = jnp.stack([g_x, g_y], axis=-1)
    return g_xy, g_pen.reshape(bsz, t), None


def _ties(geo):
    """``(tie_prev, tie_next)``: 1.0 where the previous / next segment ties with the arg-min
    at a shared vertex (see :func:`_ties_neighbour`); ``geo`` from :func:`_at_nearest`."""
    u, live, seg = geo["u"], geo["live"], geo["seg"]
    rest = (geo["pcx"], geo["pcy"], geo["d_eff"], *geo["segments"])
    return (_ties_neighbour(seg - 1, live & ((u == 0.0) | (u == 0.5)), *rest),
            _ties_neighbour(seg + 1, live & ((u == 1.0) | (u == 0.5)), *rest))


def _tied_mean(per_segment, seg, tie_prev, tie_next):
    """Mean of ``per_segment [B, S]`` over each pixel's arg-min ``seg`` and its tied neighbours."""
    at = lambda k: _gather_segments((per_segment,), jnp.clip(k, 0, per_segment.shape[1] - 1))[0]  # noqa: E731
    return (at(seg) + tie_prev * at(seg - 1) + tie_next * at(seg + 1)) / (1.0 + tie_prev + tie_next)


def _ties_neighbour(nb, candidate, pcx, pcy, d_eff, ax, ay, bx, by, penalty, ok):
    """``1.0`` where neighbouring segment ``nb`` is valid and as near as the arg-min (``d_eff``).

    "As near" allows a few ulps: the two distances to a shared vertex are the same number, but
    the neighbour's projection may land a rounding error inside its segment instead of exactly
    on the vertex, and how it rounds depends on the compiler (measured: XLA's CPU backend at
    optimisation level 0 vs 1-2).  Pixels whose nearest segment is pen-up (``d_eff ~ 1e6``)
    have no gradient, so the wider absolute tolerance there changes nothing."""
    s = ax.shape[1]
    inside = candidate & (nb >= 0) & (nb < s)
    nb = jnp.clip(nb, 0, s - 1)
    nax, nay, nbx, nby, npen, nok = _gather_segments((ax, ay, bx, by, penalty, ok), nb)
    _, rx, ry = _closest_point(pcx, pcy, nax, nay, nbx, nby)
    tol = 4 * jnp.finfo(d_eff.dtype).eps * jnp.maximum(d_eff, 1.0)
    return (inside & nok & (jnp.abs(_safe_norm(rx, ry) + npen - d_eff) <= tol)).astype(d_eff.dtype)


_distance_raster_flat.defvjp(_distance_raster_fwd, _distance_raster_bwd)


@checked("size", "tile", "chunk")
@partial(jax.jit, static_argnames=("size", "falloff", "tile", "chunk", "tol"))
def distance_raster(
    xy: jax.Array,
    pen: jax.Array,
    valid: jax.Array,
    size: int,
    falloff: Callable[[jax.Array], jax.Array] = SigmoidFalloff(),
    *,
    tile: int = 16,
    chunk: int = 4,
    tol: Optional[float] = 1e-8,
) -> jax.Array:
    """Differentiable raster of Eq. 5 with bounded memory (see the module docstring).

    Args:
      xy: ``float32[..., T, 2]`` coordinates in output pixels (x = column, y = row).
      pen: ``float32[..., T]`` pen states (``pen[t]`` draws segment ``t -> t+1``); may be
        fractional — the penalty ``(1 - pen) * 1e6`` is what E-10 optimises.
      valid: ``bool[..., T]`` padding mask; segments touching padding never draw.
      size: output side in pixels (static).
      falloff: intensity as a function of distance (static, hashable); default is the
        paper's ``sigmoid(2 - 5 d)``.  A falloff with ``support_radius(tol)`` enables culling.
      tile: tile side in pixels for culling (static).
      chunk: candidate segments per tile scanned at once (static); the peak extra memory
        is ``B * H * W * chunk`` floats.
      tol: culling tolerance: values (and slopes) dropped are below ``tol``.  ``None``
        disables culling (still memory-bounded).

    Returns:
      ``float32[..., size, size]`` with values in ``[0, 1]``.  Reverse-mode
      differentiable in ``xy`` and ``pen``.
    """
    if tol is not None and not 0.0 < tol < 1.0:  # also refuses NaN
        raise ValueError(f"distance_raster: tol must be None or in (0, 1), got {tol!r}")
    lead = jnp.shape(pen)[:-1]
    xy, pen, valid = _flatten(xy, pen, valid)
    if xy.shape[1] < 2 or xy.shape[0] == 0:  # nothing to draw (an empty batch: no max over no segments)
        return jnp.zeros(lead + (size, size), xy.dtype)
    radius = None
    if tol is not None and hasattr(falloff, "support_radius"):
        radius = float(falloff.support_radius(tol))
    img = _distance_raster_flat(xy, pen, valid, size, falloff, tile, chunk, radius)
    return img.reshape(lead + (size, size))
