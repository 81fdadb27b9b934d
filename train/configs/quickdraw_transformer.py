"""Softmax point Transformer on the real QuickDraw sketches, all 344 categories (issue 5: GACL's
softmax baseline on the attention backbone, real sketches only).

Data, split, epochs, input and augmentation as ``quickdraw_bilstm.py`` (344 categories x 25
sketches, 80% train / 20% test by a hash of key_id, 2,140 steps of batch 64).  Model and
optimiser as ``sketchrnn28_transformer.py``: 4 pre-norm blocks of width 128 with 4 heads over
``(x, y, pen_down, pen_up)`` tokens plus a CLS token, learned positions for the 100 points,
256-unit ReLU head on ``CLS + mean(tokens)``, dropout 0.1; Adam 5e-4 with a 100-step linear
warmup, SGDR restarting every epoch, gradients clipped at norm 1.

Command:
  python train/run.py --config train/configs/quickdraw_transformer.py --workdir runs/quickdraw_transformer

Expected runtime: 63 min wall on the 2-core CPU (jax 0.10.2; 2,140 steps of batch 64; measured
  2026-12-05 side by side with its GACL twin and two cleansing runs, so expect much less alone).
Expected metric: held-out top-1 9.7%, top-5 27.6% over 344 classes (``--set seed=1``: 11.7% / 30.0%; seed 2: 10.1% / 29.3%; seed 3: 11.5% / 30.4%;
  1,726 test sketches; the BiLSTM on the same data: 17.9% / 40.9%; RESULTS.md §4.4).
"""
from __future__ import annotations

from train.configs.quickdraw_bilstm import get_config as quickdraw_bilstm
from train.configs.sketchrnn28_transformer import transformer_model


def get_config() -> dict:
    return transformer_model(quickdraw_bilstm())
