"""GACL-Cos ResNet on the 28 sketch-rnn categories, real sketches plus sketch-rnn samples (issue 5).

Same data, split, model, optimiser and steps as ``sketchrnn28_resnet.py`` (its softmax
baseline); the head is GACL's (see ``quickdraw_resnet_gacl.py`` for the head settings).
``--set data.extra_train=None`` trains on the real sketches alone.

Command:
  python train/run.py --config train/configs/sketchrnn28_resnet_gacl.py --workdir runs/sketchrnn28_resnet_gacl

Expected runtime: 11.9 min wall on the 2-core CPU (jax 0.10.2; 2,270 steps; measured 2026-11-29
  with other jobs sharing the cores; the samples dataset built once before, 2.8 min).
Expected metric: held-out top-1 58.4%, top-5 79.2% over 28 classes on the 154 real test sketches
  (the softmax baseline: 57.8% / 89.0%).
"""
from __future__ import annotations

from train.configs.quickdraw_resnet_gacl import with_gacl_head
from train.configs.sketchrnn28_resnet import get_config as sketchrnn28_resnet


def get_config() -> dict:
    return with_gacl_head(sketchrnn28_resnet())
