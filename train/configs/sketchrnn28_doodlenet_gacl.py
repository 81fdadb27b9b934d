"""GACL-Cos classifier on the pre-trained DoodleNet backbone, 28 sketch-rnn categories, real sketches
plus sketch-rnn samples (issue 5).

Same backbone, data, split, optimiser and steps as ``sketchrnn28_doodlenet.py`` (its softmax
baseline); the head is ``quickdraw_doodlenet_gacl.py``'s (GACL-Cos, norm range ``[8, 22]``).
The first run used the ResNet's ``[10, 30]`` (``--set head.l_a=10.0 --set head.u_a=30.0``:
62.3% / 85.7%, 7.7 min; with ``--set model.pretrained_head=True`` too: 64.9% / 88.3%, softmax
77.3%; RESULTS.md §4.10).

Command:
  python train/run.py --config train/configs/sketchrnn28_doodlenet_gacl.py --workdir runs/sketchrnn28_doodlenet_gacl_a8to22

Expected runtime: 5.6 min wall on the 2-core CPU (jax 0.10.2; 2,270 steps; measured 2026-11-29
  with other jobs sharing the cores).
Expected metric: held-out top-1 74.7%, top-5 89.6% over 28 classes on the 154 real test sketches,
  trained on ``sketchrnn_samples`` 1.1.0 (19 min with three other training jobs on the cores; the
  softmax baseline: 76.0% / 92.9%); its ``q`` is rank-correlated 0.79 with its cosine and reaches
  AUC 0.79 for QuickDraw's ``recognized`` flag (RESULTS.md §4.10; seeds 1 and 2: 76.0% / 90.3% and
  74.0% / 89.6% vs softmax 76.6% and 74.7%, Spearman 0.77 / 0.77, AUC 0.80 / 0.79).  On the 1.0.0 samples: 63.6% /
  84.4% (softmax 71.4% / 92.2%), Spearman 0.73, AUC 0.81; with the backbone at 0.1x
  / frozen (``optimizer.lr_scale``) 59.1% / 60.4% vs the softmax twins' 66.2% / 66.2%, and ``q``
  keeps a weaker quality signal at 0.1x (AUC 0.63), none frozen (0.36; RESULTS.md §4.11).
"""
from __future__ import annotations

from train.configs.quickdraw_doodlenet_gacl import with_doodlenet_gacl_head
from train.configs.sketchrnn28_doodlenet import get_config as sketchrnn28_doodlenet


def get_config() -> dict:
    return with_doodlenet_gacl_head(sketchrnn28_doodlenet())
