"""GACL-Cos BiLSTM on the real QuickDraw sketches, all 344 categories (issue 5).

Same data, split, model (length-aware 2 x 256 BiLSTM, ReLU head 512, packed rows), augmentation,
optimiser and steps as ``quickdraw_bilstm.py`` (its softmax baseline); the head is GACL's with
the settings of ``quickdraw_resnet_gacl.py`` except the margin: ``A = s cos - m q`` with
``m = 1`` (G-14 as written) instead of ``m = s``.  Measured on this data's *training* batches
(2026-11-29): with ``m = s`` and the margin and regulariser ramped in over 2 epochs
(``--set head.margin_scale=64.0 --set head.margin_warmup=2.0``) training accuracy stayed at
chance (0.3-0.5%, cross-entropy ~40) from the end of the ramp (step 214) to step 400, when the
run was stopped — the stall the 28-category BiLSTM twin showed for its first ~400 steps
(``sketchrnn28_bilstm_gacl.py``), where ``m = 1`` trained like softmax.

Command:
  python train/run.py --config train/configs/quickdraw_bilstm_gacl.py --workdir runs/quickdraw_bilstm_gacl

Expected runtime: 51 min wall on the 2-core CPU (jax 0.10.2; 2,140 steps; measured 2026-11-29
  side by side with the softmax baseline, so expect about half alone).
Expected metric: held-out top-1 8.7%, top-5 22.9% over 344 classes (1,726 test sketches; the
  softmax baseline re-run alongside: 17.9% / 40.9%); training accuracy ~10% in the last epoch —
  GACL does not train this BiLSTM at ~20 sketches per class (RESULTS.md §4.4, end).
"""
from __future__ import annotations

from train.configs.quickdraw_bilstm import get_config as softmax_config
from train.configs.quickdraw_resnet_gacl import with_gacl_head


def get_config() -> dict:
    config = with_gacl_head(softmax_config())
    config["head"]["margin_scale"] = 1.0
    return config
