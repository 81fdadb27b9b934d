"""Softmax classifier on the pre-trained DoodleNet backbone, 28 sketch-rnn categories, real sketches
plus sketch-rnn samples (issue 5).

Backbone, input and optimiser as ``quickdraw_doodlenet.py`` (DoodleNet's layers from the
pre-trained weights, new head, all fine-tuned); data, split and steps as
``sketchrnn28_resnet.py`` (the real 80% train split plus 500 sketch-rnn samples per category;
evaluation on the 154 real test sketches only).  ``--set data.extra_train=None --set
num_epochs=280`` trains on the real sketches alone for the same steps.

Command:
  python train/run.py --config train/configs/sketchrnn28_doodlenet.py --workdir runs/sketchrnn28_doodlenet

Expected runtime: 10.1 min wall on the 2-core CPU (jax 0.10.2; 2,270 steps; measured 2026-11-29
  with other jobs sharing the cores).
Expected metric: held-out top-1 76.0%, top-5 92.9% over 28 classes on the 154 real test sketches,
  trained on ``sketchrnn_samples`` 1.1.0 (18 min with three other training jobs on the cores;
  RESULTS.md §4.10; seeds 1 and 2 (``--set seed=N``): 76.6% / 93.5%, 74.7% / 94.8%; the ResNet from scratch, ``sketchrnn28_resnet.py``: 64.3%; the pre-trained
  DoodleNet itself, restricted to the 28 classes: 79.9%).  On the 1.0.0 samples: 71.4% / 92.2%,
  and with ``--set model.pretrained_head=True`` 77.3% / 92.2%
  (6.0 min); with the backbone at a tenth of the head's rate (``--set "optimizer.lr_scale={'encoder':
  0.1}"``) 66.2%, frozen (``{'encoder': 0.0}``) 66.2% (RESULTS.md §4.11).
"""
from __future__ import annotations

from train.configs.quickdraw_doodlenet import get_config as quickdraw_doodlenet
from train.configs.sketchrnn28_resnet import sketchrnn28_data


def get_config() -> dict:
    return sketchrnn28_data(quickdraw_doodlenet())
