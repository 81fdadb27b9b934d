"""GACL-Cos classifier on the pre-trained DoodleNet backbone, 28 sketch-rnn categories, real sketches
plus sketch-rnn samples (issue 5).

Same backbone, data, split, optimiser and steps as ``sketchrnn28_doodlenet.py`` (its softmax
baseline); the head is GACL's (the settings of ``quickdraw_resnet_gacl.py``).

Command:
  python train/run.py --config train/configs/sketchrnn28_doodlenet_gacl.py --workdir runs/sketchrnn28_doodlenet_gacl

Expected runtime: 7.7 min wall on the 2-core CPU (jax 0.10.2; 2,270 steps; measured 2026-11-29
  with other jobs sharing the cores).
Expected metric: held-out top-1 62.3%, top-5 85.7% over 28 classes on the 154 real test sketches
  (the softmax baseline: 71.4% / 92.2%); its ``q`` is rank-correlated 0.69 with its cosine and
  reaches AUC 0.72 for QuickDraw's ``recognized`` flag (RESULTS.md §4.10).
"""
from __future__ import annotations

from train.configs.quickdraw_resnet_gacl import with_gacl_head
from train.configs.sketchrnn28_doodlenet import get_config as sketchrnn28_doodlenet


def get_config() -> dict:
    return with_gacl_head(sketchrnn28_doodlenet())
