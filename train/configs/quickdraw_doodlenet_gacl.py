"""GACL-Cos classifier on the pre-trained DoodleNet backbone, 344 real QuickDraw categories (issue 5).

Same backbone (pre-trained, fine-tuned), data, split, augmentation, optimiser and steps as
``quickdraw_doodlenet.py`` (its softmax baseline); the head is GACL's with the settings of
``quickdraw_resnet_gacl.py`` (``cos``, ``s = 64``, ``m = s``, norm range ``[10, 30]``: the
pre-trained features' norms lie in 12-18 on real sketches — but 512 tanh units cannot exceed
a norm of sqrt(512) = 22.6, so ``q`` stays below 0.63 with this range; ``--set head.l_a=8.0
--set head.u_a=22.0`` lets it span ``[l_q, u_q]``, RESULTS.md §4.10).

Command:
  python train/run.py --config train/configs/quickdraw_doodlenet_gacl.py --workdir runs/quickdraw_doodlenet_gacl

Expected runtime: 4.8 min wall on the 2-core CPU (jax 0.10.2; 2,140 steps; measured 2026-11-29
  with other jobs sharing the cores).
Expected metric: held-out top-1 50.4%, top-5 77.1% over 344 classes (the softmax baseline:
  52.2% / 77.2%).
"""
from __future__ import annotations

from train.configs.quickdraw_doodlenet import get_config as softmax_config
from train.configs.quickdraw_resnet_gacl import with_gacl_head


def get_config() -> dict:
    return with_gacl_head(softmax_config())
