"""GACL-Cos classifier on the pre-trained DoodleNet backbone, 28 sketch-rnn categories, real sketches
plus sketch-rnn samples (issue 5).

Same backbone, data, split, optimiser and steps as ``sketchrnn28_doodlenet.py`` (its softmax
baseline); the head is GACL's (the settings of ``quickdraw_resnet_gacl.py``).

Command:
  python train/run.py --config train/configs/sketchrnn28_doodlenet_gacl.py --workdir runs/sketchrnn28_doodlenet_gacl

Expected runtime: 0 min wall (to be measured).
Expected metric: 0 (to be measured).
"""
from __future__ import annotations

from train.configs.quickdraw_resnet_gacl import with_gacl_head
from train.configs.sketchrnn28_doodlenet import get_config as sketchrnn28_doodlenet


def get_config() -> dict:
    return with_gacl_head(sketchrnn28_doodlenet())
