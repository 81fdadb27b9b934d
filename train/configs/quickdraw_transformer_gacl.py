"""GACL-Cos point Transformer on the real QuickDraw sketches, all 344 categories (issue 5).

Same data, split, model, optimiser and steps as ``quickdraw_transformer.py`` (its softmax
baseline); the head is GACL's with the settings of ``quickdraw_bilstm_gacl.py`` on the same data:
margin unscaled (``m = 1``) and a softplus feature head.  With the settings of the 28-category
``sketchrnn28_transformer_gacl.py`` instead (``m = s``, ReLU feature head:
``--set head.margin_scale=64.0 --set model.head_activation=relu``) it stalled: training accuracy
0.4-1.2% from step 200 to 550 with the cross-entropy flat at 36 and ``q`` pinned at 0.481 by the
regulariser, held-out 0.6% / 4.4% at step 535 (the softmax twin: 2.5% training accuracy at step
550), when it was stopped (2026-12-05).

Command:
  python train/run.py --config train/configs/quickdraw_transformer_gacl.py --workdir runs/quickdraw_transformer_gacl

Expected runtime: 62 min wall on the 2-core CPU (jax 0.10.2; 2,140 steps; measured 2026-12-05 side by
  side with its softmax twin and two cleansing runs, so expect much less alone).
Expected metric: held-out top-1 11.1%, top-5 29.5% over 344 classes (1,726 test sketches; softmax
  baseline 9.7% / 27.6%); Spearman(q, cos) 0.53; with ``--set seed=1`` 12.3% / 32.7% against
  11.7% / 30.0%, with ``--set seed=2`` 10.3% / 29.1% against 10.1% / 29.3%, with ``--set seed=3``
  9.8% / 29.7% against 11.5% / 30.4% (RESULTS.md §4.4: over the four seeds GACL +0.16 on average).
"""
from __future__ import annotations

from train.configs.quickdraw_resnet_gacl import with_gacl_head
from train.configs.quickdraw_transformer import get_config as quickdraw_transformer


def get_config() -> dict:
    config = with_gacl_head(quickdraw_transformer())
    config["model"]["head_activation"] = "softplus"
    config["head"]["margin_scale"] = 1.0
    return config
