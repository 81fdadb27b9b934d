"""Softmax BiLSTM on the real QuickDraw sketches, 344 categories, softplus feature head (issue 5).

``quickdraw_bilstm.py`` with the head's last activation softplus instead of ReLU
(``model.head_activation``): the same-backbone softmax twin of ``quickdraw_bilstm_gacl.py``, whose
cosine head needs features whose units cannot die.  Same data, split, model size, packing,
augmentation, optimiser and steps.

Command:
  python train/run.py --config train/configs/quickdraw_bilstm_softplus.py --workdir runs/quickdraw_bilstm_softplus

Expected runtime: ~50 min wall for the 2,140 steps side by side with another run (1,070 steps took
  23 min, 2026-11-29); about half alone.
Expected metric: it does not train: held-out top-1 1.0%, top-5 3.8% at step 1,070 of 2,140, when the
  run was stopped (training accuracy 0.9% at step 1,000, where the ReLU head of
  ``quickdraw_bilstm.py`` is at 15%).  Softplus suits the cosine head (GACL 17.4% top-1), not
  the linear softmax head — so the softmax baseline reported for the GACL twin is the ReLU one
  (RESULTS.md §4.4, end).
"""
from __future__ import annotations

from train.configs.quickdraw_bilstm import get_config as relu_config


def get_config() -> dict:
    config = relu_config()
    config["model"]["head_activation"] = "softplus"
    return config
