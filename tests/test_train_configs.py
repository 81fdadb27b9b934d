"""Every config in train/configs states command, runtime and metric; the classifier configs run end to end."""
from __future__ import annotations

import importlib
import pathlib
import sys

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
CONFIGS = sorted(p.stem for p in (REPO / "train" / "configs").glob("*.py") if p.stem != "__init__")


@pytest.fixture(autouse=True)
def _repo_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


@pytest.mark.parametrize("name", CONFIGS)
def test_config_docstring_states_command_runtime_metric(name):
    module = importlib.import_module(f"train.configs.{name}")
    doc = module.__doc__ or ""
    for field in ("Command:", "Expected runtime:", "Expected metric:"):
        assert field in doc, f"train/configs/{name}.py docstring lacks {field!r}"
    assert f"train/configs/{name}.py" in doc
    assert isinstance(module.get_config(), dict)


@pytest.mark.data
@pytest.mark.parametrize("config_name, overrides", [
    ("quickdraw_bilstm", ["model.hidden=8", "model.head=(8,)"]),
    ("quickdraw_resnet", ["model.widths=(4, 4, 8, 8)", "data.render_size=28", "data.line_width=1"]),
])
def test_classifier_config_trains_one_epoch_on_real_sketches(config_name, overrides, data_root, tmp_path):
    from sketchjax.training import apply_overrides, read_metrics, train_and_evaluate

    module = importlib.import_module(f"train.configs.{config_name}")
    config = apply_overrides(module.get_config(), overrides + [
        "num_epochs=1", "batch_size=16", f"data.data_dir={tmp_path / 'tfds'}",
        "data.categories=['apple', 'cat', 'sheep']",
    ])
    build = importlib.import_module("train.sketch_classifier").build_experiment
    config["progress_bar"] = False
    result = train_and_evaluate(config, tmp_path / "run", build)
    assert np.isfinite(result.train_metrics["loss"])
    evals = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["split"] == "eval"]
    assert evals and evals[-1]["count"] > 0 and 0.0 <= evals[-1]["accuracy"] <= 1.0
    assert evals[-1]["top5"] == 1.0  # only 3 classes: the true one is always in the top 5


def test_unknown_model_name_is_a_clear_error():
    sys.path.insert(0, str(REPO))
    from train.sketch_classifier import make_model

    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        make_model({"name": "vgg"}, 3)
