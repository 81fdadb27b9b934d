"""GACL-Cos for quality assessment (G §5) on sketches of known quality (issue 5 §4).

Ratings: each real QuickDraw sketch is degraded with a random strength ``u ~ U[0, 1]`` (point
jitter up to 6% of its size and ``u x 0.6`` of its strokes deleted, rounded half up) and rated ``1 - u``
(:func:`sketchjax.apps.iqa.degraded_sketch_ratings`) — no IQA benchmark can be downloaded
here; ``--set iqa.source=folder --set iqa.images=DIR --set iqa.mos=FILE`` trains on a real one
(image folder + MOS csv).  The ratings are cut into ``iqa.n_bins`` equal bins (100 here; the
eval also runs 50 and 200) that serve as GACL's classes; the predicted rating is the expected
bin centre.  Model: the small ResNet-18 (16-32-64-128) on 28 x 28 rasters drawn at 112 px with
a 7 px line; GACL ``cos`` with ``margin_scale = s``; Adam 1e-3, SGDR per epoch, 8 epochs.
Train: the 6,874 sketches of the 80% train split (one degraded copy each); test: the 1,726
sketches of the test split (never seen), degraded with other draws.

Command:
  python train/run.py --config train/configs/iqa_sketch_gacl.py --workdir runs/iqa_gacl_100

Expected runtime: 2.5 min wall on the idle 2-core CPU (jax 0.10.2; 856 steps of batch 64 plus
  building and rasterising the degraded sketches, ~20 s; measured 2026-12-02); 8.5 min with the
  cores shared (2026-12-03).
Expected metric: on the 1,726 held-out degraded sketches, expected-rating PLCC 0.341, SROCC 0.341,
  mean absolute error 0.236 on the [0, 1] rating scale (``python eval/iqa.py``, 2026-12-03;
  RESULTS.md §4.8).
"""
from __future__ import annotations

from sketchjax.apps.iqa import iqa_base_config


def get_config() -> dict:
    return iqa_base_config()
