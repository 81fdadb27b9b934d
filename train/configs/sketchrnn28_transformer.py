"""Softmax point Transformer on the 28 sketch-rnn categories, real sketches plus sketch-rnn samples
(issue 5: GACL's softmax baseline on the attention backbone).

Data, split, epochs, input and augmentation as ``sketchrnn28_bilstm.py``.  Model: 4 pre-norm
blocks of width 128 with 4 heads over ``(x, y, pen_down, pen_up)`` tokens plus a CLS token,
learned positions for the 100 points, 256-unit ReLU head on ``CLS + mean(tokens)``, dropout
0.1 (width 128 rather than the module's default 256, to fit the CPU time).
Optimiser: Adam 5e-4 with a 100-step linear warmup, SGDR restarting every epoch, gradients
clipped at norm 1 (attention is less forgiving than the LSTM at 1e-3).
``--set data.extra_train=None --set num_epochs=280`` trains on the real sketches alone for
the same steps (measured: 29.2% / 63.6%, 76 min with 4 jobs on the cores).

Command:
  python train/run.py --config train/configs/sketchrnn28_transformer.py --workdir runs/sketchrnn28_transformer

Expected runtime: 49 min wall on the 2-core CPU (jax 0.10.2; 2,270 steps of batch 64; measured
  2026-12-04 with its GACL twin, tests and CI sharing the cores; 27.3 min on 2026-11-29 with an
  evaluation sharing them part of the time).
Expected metric: held-out top-1 45.5%, top-5 79.2% over 28 classes on the 154 real test sketches,
  trained on ``sketchrnn_samples`` 1.1.0 (33.1% / 68.8% on the 1.0.0 samples).
"""
from __future__ import annotations

from train.configs.sketchrnn28_bilstm import get_config as sketchrnn28_bilstm


def transformer_model(config: dict) -> dict:
    """``config`` with this file's model (4 x 128, 4 heads, 256-unit ReLU head) and optimiser
    settings (Adam 5e-4, 100-step warmup, clipping at norm 1) in place of its own."""
    config["model"] = {"name": "transformer", "dim": 128, "depth": 4, "heads": 4, "mlp_ratio": 4,
                       "max_len": config["data"]["max_len"], "head": (256,), "dropout": 0.1,
                       "head_activation": "relu"}
    config["optimizer"].update(learning_rate=5e-4, warmup_steps=100, clip_norm=1.0)
    return config


def get_config() -> dict:
    return transformer_model(sketchrnn28_bilstm())
