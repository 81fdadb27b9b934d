"""Line width and resolution helpers: disk dilation, exact area downsampling, inversion.

These let a 1-px raster feed models that expect thick lines at low resolution, e.g.
DoodleNet's 28x28 input (render at 256 with a ~16 px line, then area-downsample).
All functions are pure, jit/vmap-able, and linear where that matters for gradients
(:func:`area_downsample` is a linear map, so SLA/P-SLA gradients pass through it exactly).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from sketchjax._checks import check_positive_int

__all__ = ["dilate", "area_downsample", "area_weights", "invert"]


def _disk(width: int) -> np.ndarray:
    """Binary disk of diameter ``width`` pixels (odd or even), as a ``width x width`` kernel."""
    c = (width - 1) / 2.0
    yy, xx = np.mgrid[0:width, 0:width]
    return (((yy - c) ** 2 + (xx - c) ** 2) <= (width / 2.0) ** 2).astype(np.float32)


def _window_max(x: jax.Array, n: int) -> jax.Array:
    """``out[..., i] = max(x[..., i:i+n])`` (valid positions only) in ``O(log n)`` array ops.

    Doubling: after step ``j`` each entry holds the max of ``2^j`` consecutive inputs; two
    overlapping windows of the largest power of two ``<= n`` then cover any ``n``.
    """
    m, k = x, 1
    while 2 * k <= n:
        m = jnp.maximum(m[..., :-k], m[..., k:])
        k *= 2
    out = x.shape[-1] - n + 1
    return jnp.maximum(m[..., :out], m[..., n - k : n - k + out])


@partial(jax.jit, static_argnames=("width",))
def dilate(images: jax.Array, width: int) -> jax.Array:
    """Thickens ink by a disk of diameter ``width`` pixels: ``[..., H, W] -> same`` (any dtype).

    For binary images the result is binary; for soft images it is the maximum over the disk
    (a grey-scale dilation), so ink stays in ``[0, 1]``.  ``width <= 1`` is the identity.
    A disk is a union of centred horizontal runs, one per row offset: the image's horizontal
    running max is computed once per distinct run length (``O(log run)`` ops by doubling),
    then each row offset takes a shifted slice of it, so cost is ``O(width)`` image passes.
    """
    check_positive_int("dilate", "width", width)
    if np.ndim(images) < 2:
        raise ValueError(f"dilate: need images [..., H, W], got shape {np.shape(images)}")
    if width <= 1:
        return images
    disk = _disk(width)
    lead = images.shape[:-2]
    h, w = images.shape[-2:]
    x = images.reshape((-1, h, w))
    lo = (width - 1) // 2
    hi = width - 1 - lo
    zero = jnp.zeros((), x.dtype)
    xp = jnp.pad(x, ((0, 0), (lo, hi), (lo, hi)), constant_values=zero)  # ink is >= 0
    runs = {}  # run length -> horizontal running max of the padded image
    out = None
    for r in range(width):  # static: one horizontal run of the disk per row offset
        cols = np.nonzero(disk[r])[0]
        if cols.size == 0:
            continue
        c0, run = int(cols[0]), int(cols.size)
        if run not in runs:
            runs[run] = _window_max(xp, run)  # [N, H + width - 1, W + width - run]
        block = runs[run][:, r : r + h, c0 : c0 + w]
        out = block if out is None else jnp.maximum(out, block)
    return out.reshape(lead + (h, w))


def area_weights(n_in: int, n_out: int) -> np.ndarray:
    """``float32[n_out, n_in]`` overlap matrix of exact area resampling along one axis.

    Output cell ``o`` covers ``[o * s, (o + 1) * s)`` input pixels with ``s = n_in / n_out``;
    the weight of input pixel ``i`` is the length of its overlap with that cell divided by
    ``s``, so rows sum to 1 (as OpenCV's ``INTER_AREA``, also for non-integer factors).
    """
    for name, n in (("n_in", n_in), ("n_out", n_out)):
        check_positive_int("area_weights", name, n)
    s = n_in / n_out
    lo = np.arange(n_out)[:, None] * s
    hi = lo + s
    i = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, i + 1) - np.maximum(lo, i), 0.0, None)
    return (overlap / s).astype(np.float32)


@partial(jax.jit, static_argnames=("out_size",))
def area_downsample(images: jax.Array, out_size: int) -> jax.Array:
    """Exact area-average resize ``[..., H, W] -> float[..., out_size, out_size]``.

    A linear map (``Wr @ X @ Wc^T`` with :func:`area_weights`), so it is differentiable and
    works for non-integer factors (256 -> 28).  Any real input dtype (e.g. ``uint8`` / ``bool``
    rasters from ``raster(..., dtype=...)``); the output is float32 (float64 for float64 input).
    """
    check_positive_int("area_downsample", "out_size", out_size)
    images = jnp.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"area_downsample: images must be [..., H, W], got shape {images.shape}")
    images = images.astype(jnp.promote_types(images.dtype, jnp.float32))
    h, w = images.shape[-2:]
    wr = jnp.asarray(area_weights(h, out_size))
    wc = jnp.asarray(area_weights(w, out_size))
    return jnp.einsum("oh,...hw,pw->...op", wr, images, wc, precision=jax.lax.Precision.HIGHEST)


def invert(images: jax.Array) -> jax.Array:
    """Black-ink-on-white display form: ``1 - images`` (``float[..., H, W]``, same shape)."""
    return 1.0 - images
