"""sketchjax: stroke-level explainability (SLA / P-SLA) and GACL sketch quality in JAX.

Layers, each depending only on those above it:

* :mod:`sketchjax.sketch` — the padded vector sketch (``xy``, ``pen``, ``valid``) and pure helpers;
* :mod:`sketchjax.formats` — lossless conversions to/from stroke-3/5, QuickDraw ndjson, npz,
  Chair-V2, SVG, lists of strokes; :mod:`sketchjax.normalize` — canvas fitting, RDP, resampling;
* :mod:`sketchjax.render` — Bresenham raster, per-stroke rasters + SLA composition, and the
  differentiable distance-field raster of P-SLA.
"""
from sketchjax.sketch import Sketch, SketchError  # noqa: F401

__version__ = "0.1.0"
