"""The QuickDraw classifier experiment used by the configs in ``train/configs`` (softmax or GACL head).

It lives in :mod:`sketchjax.classifier` (so that installed users and the ``sketchjax quality``
command can restore trained runs); this module keeps the name that configs and saved runs
written before the move refer to (``"experiment": "train.sketch_classifier:build_experiment"``).
"""
from sketchjax.classifier import (  # noqa: F401  (re-exported)
    DEFAULT_DATA_DIR,
    ENCODERS,
    GACL_HEAD_DEFAULTS,
    RASTER_MODELS,
    Relabelled,
    TrainedClassifier,
    base_config,
    build_experiment,
    gacl_config,
    head_config,
    held_out_sketches,
    load_classifier,
    make_model,
    model_inputs,
    noisy_train_labels,
    prepare_dataset,
)
