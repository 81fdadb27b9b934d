"""Applications of GACL quality scores (G §3.6, §4.4, §5, §6; SPEC §6).

* :mod:`sketchjax.apps.pseudo_label` — GACL on cluster pseudo-labels (2-D Gaussian mixtures).
"""
