"""GACL-Cos BiLSTM on the 28 sketch-rnn categories, real sketches plus sketch-rnn samples (issue 5).

Same data, split, model, optimiser and steps as ``sketchrnn28_bilstm.py`` (its softmax
baseline); the head is GACL's, with the settings of ``quickdraw_resnet_gacl.py``.
``--set data.extra_train=None`` trains on the real sketches alone.

Command:
  python train/run.py --config train/configs/sketchrnn28_bilstm_gacl.py --workdir runs/sketchrnn28_bilstm_gacl

Expected runtime: 35 min wall on the 2-core CPU (jax 0.10.2; 2,270 steps; measured 2026-12-03 with
  the test suite sharing the cores; 17-25 min on 2026-11-29 with other jobs sharing them).
Expected metric: held-out top-1 37.0%, top-5 64.9% over 28 classes on the 154 real test sketches,
  trained on ``sketchrnn_samples`` 1.1.0 (the softmax baseline: 40.9% / 76.6%; with ``--set seed=1``
  32.5% / 64.3% against 35.1% / 68.8%, ``seed=2`` 35.7% / 68.8% against 37.0% / 71.4%; RESULTS.md §4.4).
  The feature head's last activation is softplus: with ReLU (``--set
  model.head_activation=relu``) the cosine head kills its units (36% never active) and the
  ``m = s`` run stalls at chance for ~400 steps — on the 1.0.0 samples it ended at 24.7% / 50.6%
  (softplus: 36.4% / 60.4%; ReLU with ``--set head.margin_scale=1.0``: 33.8% / 63.0%; with
  ``--set head.margin_warmup=2.0``: 27.3% / 56.5%).  ``q`` is not a good score on this backbone
  (RESULTS.md §4.4).
"""
from __future__ import annotations

from train.configs.quickdraw_resnet_gacl import with_gacl_head
from train.configs.sketchrnn28_bilstm import get_config as sketchrnn28_bilstm


def get_config() -> dict:
    config = with_gacl_head(sketchrnn28_bilstm())
    config["model"]["head_activation"] = "softplus"  # ReLU units die under the cosine head (above)
    return config
