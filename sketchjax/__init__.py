"""sketchjax: stroke-level explainability (SLA / P-SLA) and GACL sketch quality in JAX.

Modules, roughly in dependency order (each uses those above it):

* :mod:`sketchjax.sketch` — the padded vector sketch (``xy``, ``pen``, ``valid``) and pure helpers;
* :mod:`sketchjax.formats` — lossless conversions to/from stroke-3/5, QuickDraw ndjson, npz,
  Chair-V2, SVG, lists of strokes; :mod:`sketchjax.normalize` — canvas fitting, RDP, resampling;
* :mod:`sketchjax.render` — Bresenham raster, per-stroke rasters + SLA composition, and the
  differentiable distance-field raster of P-SLA;
* :mod:`sketchjax.attribution` — SLA, P-SLA, occlusion, integrated gradients, SmoothGrad,
  random; deletion / insertion curves, rank agreement, figures;
* :mod:`sketchjax.gacl` — the GACL layer (four instantiations, regulariser, soft binning),
  quality scores and their metrics; :mod:`sketchjax.models` — BiLSTM, CNNs, point
  Transformer, the imported DoodleNet and sketch-rnn decoders;
* :mod:`sketchjax.data` (TFDS builders, batch iterator, augmentation), :mod:`sketchjax.training`
  (Optax loops, orbax checkpoints), :mod:`sketchjax.classifier` (the classifiers of
  ``train/configs`` and :func:`~sketchjax.classifier.load_classifier`),
  :mod:`sketchjax.degrade` (known degradations), :mod:`sketchjax.apps` (label cleansing, RHS
  ``q_max+``, pseudo-labels, IQA) and :mod:`sketchjax.cli` (the ``sketchjax`` command).
"""
from sketchjax.sketch import Sketch, SketchError  # noqa: F401

__version__ = "0.1.0"
