"""Model input recipes: how a vector sketch becomes the raster a model was trained on.

A :class:`RasterRecipe` fits the drawing to a ``canvas`` px square with a margin, draws it
with a line ``width`` px wide and area-averages to the model's ``out_size``.  The same recipe
gives the three forms attribution needs, all pixel-for-pixel consistent:

* :meth:`RasterRecipe.raster` — the Bresenham input (non-differentiable);
* :meth:`RasterRecipe.stroke_rasters` + :meth:`RasterRecipe.compose` — the per-stroke
  rasters ``S_k`` at the canvas and their SLA composition with stroke weights, finished to
  ``out_size`` (``compose(stroke_rasters(...), 1) == raster(...)`` exactly);
  :meth:`RasterRecipe.stroke_cover` — which strokes ink each canvas pixel, without ``K``
  rasters (what SLA at ``w = 1`` and exact occlusion need);
* :meth:`RasterRecipe.distance` — the differentiable distance-field raster of P-SLA with a
  sigmoid falloff of the same width.

Recipes are frozen dataclasses (hashable), so they are static arguments of ``jit``.
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Optional

import jax
import jax.numpy as jnp

from sketchjax._checks import check_positive_int
from sketchjax.normalize import apply_canvas_fit, canvas_fit
from sketchjax.render.bresenham import raster, stroke_cover, stroke_rasters
from sketchjax.render.compose import compose
from sketchjax.render.distance import SigmoidFalloff, distance_raster
from sketchjax.render.resize import area_downsample
from sketchjax.sketch import Sketch, check_points

__all__ = ["RasterRecipe"]


@dataclasses.dataclass(frozen=True)
class RasterRecipe:
    """Fit → draw at ``canvas`` with a ``width`` px line → area-average to ``out_size``.

    Attributes:
      out_size: side of the model input in pixels.
      canvas: side of the canvas the drawing is fitted to and drawn on (``>= out_size``).
      width: line width in canvas pixels; an integer for the Bresenham forms.
      padding: margin on each side as a fraction of the canvas side.  With 0 the bounding
        box's right and bottom edges land exactly on ``x = canvas`` / ``y = canvas``, outside
        the last pixel (pixels cover ``[j, j + 1)``): the Bresenham forms do not draw a stroke
        lying along them (the distance form does), so use a padding > 0.
      distance_width: line width (canvas pixels) of :meth:`distance`; default ``width``.
      slope: edge steepness per canvas pixel of :meth:`distance`'s sigmoid falloff (the
        paper's 5: the edge is about ``4 / slope`` px wide).
      fit: fit the drawing to the canvas (else coordinates are already canvas pixels).
      differentiate_fit: let gradients with respect to ``xy`` flow through the fit's bounding
        box (see :meth:`fitted`); default False: gradients of canvas coordinates, which is
        what P-SLA attributes.
    """

    out_size: int
    canvas: int
    width: float = 1
    padding: float = 0.08
    distance_width: Optional[float] = None
    slope: float = 5.0
    fit: bool = True
    differentiate_fit: bool = False

    def __post_init__(self):
        for name in ("out_size", "canvas"):
            check_positive_int("RasterRecipe", name, getattr(self, name))
        for name in ("width", "slope") + (("distance_width",) if self.distance_width is not None else ()):
            value = getattr(self, name)
            if not (isinstance(value, numbers.Real) and math.isfinite(value) and value > 0):
                raise ValueError(f"RasterRecipe: {name} must be a finite number > 0, got {value!r}")
        if self.out_size < 1 or self.canvas < self.out_size:
            raise ValueError(f"RasterRecipe needs 1 <= out_size <= canvas, got out_size={self.out_size}, canvas={self.canvas}")
        if not self.width > 0 or not 0 <= self.padding < 0.5:
            raise ValueError(f"RasterRecipe needs width > 0 and 0 <= padding < 0.5, got {self.width}, {self.padding}")

    @property
    def line_width(self) -> int:
        """``width`` as the integer the Bresenham forms need."""
        if float(self.width) != int(self.width):
            raise ValueError(f"the Bresenham forms need an integer line width, recipe has {self.width}")
        return int(self.width)

    def fitted(self, xy: jax.Array, pen: jax.Array, valid: jax.Array) -> jax.Array:
        """Canvas coordinates ``float32[..., T, 2]``.

        Differentiable in ``xy``: with ``differentiate_fit=False`` (default) the fit's scale
        and origin are held fixed, so gradients are those with respect to canvas coordinates
        (Eq. 6) expressed in the input's units; with ``True`` they also flow through the
        bounding box (moving an extreme point rescales and shifts the whole drawing).
        """
        if not self.fit:
            return xy
        # checked before fitting, so that a bad point is named where the caller put it (the
        # renderer's own check would see the fitted points: a NaN spreads to every one of them)
        check_points(xy, pen, valid, "RasterRecipe", any_units=True)  # before fitting any finite unit is fine
        sketch = Sketch(xy=xy, pen=pen, valid=valid)
        origin, scale, centre = canvas_fit(sketch, self.canvas, self.padding)
        if not self.differentiate_fit:
            origin, scale = jax.lax.stop_gradient(origin), jax.lax.stop_gradient(scale)
        return apply_canvas_fit(sketch, origin, scale, centre).xy

    def finish(self, images: jax.Array) -> jax.Array:
        """Canvas rasters ``[..., canvas, canvas]`` → model inputs ``float32[..., out_size, out_size]``
        (float64 for float64 rasters, with or without resizing, as :func:`area_downsample`)."""
        if self.canvas == self.out_size:
            images = jnp.asarray(images)
            return images.astype(jnp.promote_types(images.dtype, jnp.float32))
        return area_downsample(images, self.out_size)

    def raster(self, xy: jax.Array, pen: jax.Array, valid: jax.Array) -> jax.Array:
        """The Bresenham model input ``float32[..., out_size, out_size]`` (ink = 1 on 0)."""
        img = raster(self.fitted(xy, pen, valid), pen, valid, self.canvas, width=self.line_width)
        return self.finish(img)

    def stroke_rasters(self, xy: jax.Array, pen: jax.Array, valid: jax.Array, max_strokes: int) -> jax.Array:
        """Per-stroke canvas rasters ``float32[..., max_strokes, canvas, canvas]`` (``S_k``).

        Strokes with index ``>= max_strokes`` are dropped; give ``max_strokes`` at least the
        batch's largest :func:`sketchjax.sketch.num_strokes` for an exact decomposition.
        """
        return stroke_rasters(self.fitted(xy, pen, valid), pen, valid, self.canvas, max_strokes, width=self.line_width)

    def stroke_cover(self, xy: jax.Array, pen: jax.Array, valid: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Lowest / highest stroke index inking each canvas pixel (:func:`sketchjax.render.stroke_cover`)."""
        return stroke_cover(self.fitted(xy, pen, valid), pen, valid, self.canvas, width=self.line_width)

    def compose(self, stroke_images: jax.Array, weights: jax.Array) -> jax.Array:
        """SLA composition (:func:`sketchjax.render.compose`) at the canvas, then :meth:`finish`."""
        return self.finish(compose(stroke_images, weights))

    def distance(self, xy: jax.Array, pen: jax.Array, valid: jax.Array) -> jax.Array:
        """Differentiable model input ``float32[..., out_size, out_size]`` (Eq. 5 raster at the canvas).

        Reverse-mode differentiable in ``xy`` and ``pen``.  With ``differentiate_fit=False``
        (the default) the fit's scale and origin are held fixed, so the ``xy`` gradient is
        that of the canvas coordinates (what P-SLA attributes), in the input's units; only with
        ``differentiate_fit=True`` does it also flow through the fit (see :meth:`fitted`).
        """
        w = self.width if self.distance_width is None else self.distance_width
        falloff = SigmoidFalloff.for_width(float(w), slope=self.slope)
        img = distance_raster(self.fitted(xy, pen, valid), pen, valid, self.canvas, falloff)
        return self.finish(img)
