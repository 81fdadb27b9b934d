"""GACL-Cos BiLSTM on the real QuickDraw sketches, all 344 categories (issue 5).

Same data, split, model size (length-aware 2 x 256 BiLSTM, 512-unit head, packed rows),
augmentation, optimiser and steps as ``quickdraw_bilstm.py`` (its softmax baseline); the head is
GACL's with the settings of ``quickdraw_resnet_gacl.py`` except the margin: ``A = s cos - m q``
with ``m = 1`` (G-14 as written) instead of ``m = s``.  The feature head's last activation is
softplus (``quickdraw_bilstm_softplus.py``'s model): with ReLU, 43% of its units die under the
cosine head and GACL reaches only 10% training accuracy (held-out 8.7% / 22.9%;
``--set model.head_activation=relu``); with ``m = s`` and ReLU training accuracy stayed at
chance to step 400.  The softmax baseline keeps its ReLU head — softplus stalls it.

Command:
  python train/run.py --config train/configs/quickdraw_bilstm_gacl.py --workdir runs/quickdraw_bilstm_gacl

Expected runtime: 46 min wall on the 2-core CPU (jax 0.10.2; 2,140 steps; measured 2026-11-29 side
  by side with another training run, so expect about half alone).
Expected metric: held-out top-1 17.4%, top-5 38.6% over 344 classes (1,726 test sketches; softmax
  baseline 17.9% / 40.9%); training accuracy 43% at the last logged step (softmax 44%).  With
  ``--set head.margin_scale=64.0`` (``m = s``): 17.8% / 39.0% (RESULTS.md §4.4, end).
"""
from __future__ import annotations

from train.configs.quickdraw_bilstm_softplus import get_config as softplus_config
from train.configs.quickdraw_resnet_gacl import with_gacl_head


def get_config() -> dict:
    config = with_gacl_head(softplus_config())
    config["head"]["margin_scale"] = 1.0
    return config
