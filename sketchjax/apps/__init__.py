"""Applications of GACL quality scores (G §3.6, §4.4, §5, §6; SPEC §6).

* :mod:`sketchjax.apps.cleansing` — label cleansing: inject label noise, flag samples drawn
  well but far from their labelled class (or very poor), precision/recall curves.
* :mod:`sketchjax.apps.rhs` — rare-and-hard vs malicious sketches: ``q_max+`` (best ``q``
  after removing strokes, all one-stroke removals scored in one batch).
* :mod:`sketchjax.apps.pseudo_label` — GACL on cluster pseudo-labels (2-D Gaussian mixtures).
* :mod:`sketchjax.apps.iqa` — GACL for image-quality assessment: rating bins, expected
  rating, the image-folder + MOS-file loader, sketches of known quality, the training experiment.
"""
