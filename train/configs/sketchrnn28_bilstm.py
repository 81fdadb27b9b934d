"""Softmax BiLSTM on the 28 sketch-rnn categories, real sketches plus sketch-rnn samples (issue 5:
GACL's softmax baseline on the sequence backbone).

Data, split, epochs and evaluation as ``sketchrnn28_resnet.py`` (546 real training sketches +
14,000 sketch-rnn samples; the 154 real test sketches only).  Model: the length-aware BiLSTM of
``quickdraw_bilstm.py`` at 2 x 128 units with a 256-unit ReLU head (half the width of
``quickdraw_bilstm.py``'s 2 x 256 model, whose run on this CPU took ~1.4 s per step, to fit the CPU time); input, augmentation and
optimiser (Adam 1e-3, SGDR restarting every epoch) as ``quickdraw_bilstm.py``.
``--set data.extra_train=None`` trains on the real sketches alone.

Command:
  python train/run.py --config train/configs/sketchrnn28_bilstm.py --workdir runs/sketchrnn28_bilstm

Expected runtime: 45 min wall on the 2-core CPU (jax 0.10.2; 2,270 steps of batch 64 and their
  evaluations; measured 2026-12-03 with tests and evaluations sharing the cores; 16.8 min on
  2026-11-29 with other jobs sharing them; the samples dataset built once, 2.8 min).
Expected metric: held-out top-1 40.9%, top-5 76.6% over 28 classes on the 154 real test sketches,
  trained on ``sketchrnn_samples`` 1.1.0 (35.7% / 61.0% on the 1.0.0 samples).
"""
from __future__ import annotations

from train.configs.quickdraw_bilstm import get_config as quickdraw_bilstm
from train.configs.sketchrnn28_resnet import sketchrnn28_data


def get_config() -> dict:
    config = sketchrnn28_data(quickdraw_bilstm())
    config["model"] = {"name": "bilstm", "hidden": 128, "num_layers": 2, "head": (256,), "dropout": 0.1,
                       "head_activation": "relu"}
    return config
