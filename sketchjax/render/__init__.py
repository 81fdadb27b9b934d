"""Rasterisers (SPEC §2): Bresenham raster, per-stroke rasters + SLA composition, and the
differentiable distance-field raster of P-SLA; plus line-width and resolution helpers.

Coordinates are in output pixels; pixel ``(i, j)`` covers ``[j, j+1) x [i, i+1)`` so pixel
centres are at ``+0.5``.  Every function takes ``(xy, pen, valid)`` arrays with optional
leading batch dimensions and is jit/vmap-able (pass a :class:`sketchjax.Sketch` as
``sketch.xy, sketch.pen, sketch.valid``); :class:`RasterRecipe` bundles fitting to the
canvas, line width and downsampling into the exact model input of each form.

Input checks (``ValueError`` naming the function): shapes and integer sizes on every call,
also under an outer ``jit``; NaN/inf or ``|x| > MAX_ABS_COORD`` on valid points only when
called with concrete arrays (a jitted pipeline checks nothing at run time).  The jitted
bodies without any check are ``raster.jitted`` etc.
"""
from sketchjax.render.bresenham import raster, segment_pixels, stroke_cover, stroke_rasters
from sketchjax.render.compose import clamp_unit, compose
from sketchjax.render.distance import (
    PEN_UP_PENALTY,
    GaussianFalloff,
    SigmoidFalloff,
    distance_raster,
    distance_raster_dense,
    segment_distance,
)
from sketchjax.render.resize import area_downsample, area_weights, dilate, invert
from sketchjax.render.recipe import RasterRecipe

__all__ = [
    "raster",
    "segment_pixels",
    "stroke_rasters",
    "stroke_cover",
    "compose",
    "clamp_unit",
    "distance_raster",
    "distance_raster_dense",
    "segment_distance",
    "SigmoidFalloff",
    "GaussianFalloff",
    "PEN_UP_PENALTY",
    "area_downsample",
    "area_weights",
    "dilate",
    "invert",
    "RasterRecipe",
]
