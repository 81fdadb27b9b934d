"""Every config in train/configs states command, runtime and metric; the classifier configs run end to end."""
from __future__ import annotations

import importlib
import math
import pathlib
import re

import chex
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
    for field in ("Expected runtime:", "Expected metric:"):  # a measured number, not a pointer
        assert re.search(rf"{field}[^\n]*\d", doc), f"train/configs/{name}.py: {field!r} states no number"
    assert "Command:" in doc
    assert f"train/configs/{name}.py" in doc
    assert isinstance(module.get_config(), dict)


@pytest.mark.data
# (quickdraw_bilstm is trained end to end, both heads, by tests/test_quality_eval.py::tiny_runs)
@pytest.mark.parametrize("config_name, overrides", [
    pytest.param("quickdraw_resnet", ["model.widths=(4, 4, 8, 8)", "data.render_size=28", "data.line_width=1"],
                 marks=pytest.mark.slow),  # ~16 s; the GACL twin below runs the same backbone and data
    ("quickdraw_resnet_gacl", ["model.widths=(4, 4, 8, 8)", "data.render_size=28", "data.line_width=1"]),
    pytest.param("sketchrnn28_transformer_gacl", ["model.dim=8", "model.heads=2", "model.depth=1", "model.head=(8,)",
                                                  "data.extra_train=None"],
                 marks=pytest.mark.slow),  # ~20 s; the Transformer is pinned by tests/test_models.py
    pytest.param("quickdraw_doodlenet_gacl", [],  # the pre-trained backbone (tiny: as configured)
                 marks=pytest.mark.slow),  # ~26 s; its input recipe by test_pretrained_doodlenet_backbone_sees_its_own_input_recipe
])
def test_classifier_config_trains_one_epoch_on_real_sketches(config_name, overrides, data_root, tmp_path, monkeypatch):
    from sketchjax.training import apply_overrides, read_metrics, train_and_evaluate

    module = importlib.import_module(f"train.configs.{config_name}")
    config = apply_overrides(module.get_config(), overrides + [
        "num_epochs=1", "batch_size=16", f"data.data_dir={tmp_path / 'tfds'}",
        "data.categories=['apple', 'cat', 'sheep', 'bird', 'car', 'tree', 'fish']",
    ])
    build = importlib.import_module("sketchjax.classifier").build_experiment
    config["progress_bar"] = False
    result = train_and_evaluate(config, tmp_path / "run", build)
    assert np.isfinite(result.train_metrics["loss"])
    evals = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["split"] == "eval"]
    last = evals[-1]
    # the whole test split is evaluated once (no padding rows counted): 20% of 7 x 25 sketches by hash
    from sketchjax.data import open_split
    from sketchjax.classifier import prepare_dataset

    builder, _ = prepare_dataset(config["data"])
    assert last["count"] == len(open_split(builder, "test")) > 0
    assert last["accuracy"] <= last["top5"] <= 1.0
    if config["head"]["type"] == "gacl":
        # the evaluation loss is the cross-entropy of s cos(theta) with s = 64: large while the angles
        # are still close; what must hold is a finite loss and a quality score in a sane range
        assert np.isfinite(last["loss"]) and 0.0 < last["q"] < 1.0 and -1.0 <= last["cos_pred"] <= 1.0
    else:
        assert last["loss"] < math.log(7) + 1.0  # one epoch cannot diverge far from chance

    # restore_trained rebuilds the run from its workdir alone (config.json: tuples became lists)
    from sketchjax.training import restore_trained

    _, state, meta = restore_trained(tmp_path / "run", build)
    assert int(state.step) == int(result.state.step) == meta["step"]
    chex.assert_trees_all_equal(state.params, result.state.params)
    chex.assert_trees_all_equal(state.collections, result.state.collections)
    if config["model"].get("pretrained"):
        # ... and a run started from pre-trained weights restores without the weight files
        import sketchjax.classifier as classifier

        def missing():
            raise AssertionError("restoring read the pre-trained weights")

        monkeypatch.setitem(classifier.PRETRAINED, config["model"]["name"], missing)
        with pytest.raises(AssertionError, match="read the pre-trained"):
            restore_trained(tmp_path / "run", build)  # the plain rebuild does read them
        restored = classifier.load_classifier(tmp_path / "run")
        chex.assert_trees_all_equal(restored.variables["params"], result.state.params)
        assert restored.config["model"]["pretrained"]  # the run's own config, not the one it was rebuilt with


def test_unknown_model_name_is_a_clear_error():
    from sketchjax.classifier import make_model

    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        make_model({"name": "vgg"}, 3)


@pytest.mark.data
def test_pretrained_doodlenet_backbone_sees_its_own_input_recipe(data_root, tmp_path):
    """The doodlenet configs start from the pre-trained weights, and the data pipeline draws
    what DoodleNet was made for: with ``model.pretrained_head`` the classifier starts as
    DoodleNet restricted to the dataset's categories and recognises the held-out sketches."""
    import jax

    from sketchjax.classifier import build_experiment, make_model, prepare_dataset, pretrained_params
    from sketchjax.models.doodlenet import doodlenet_class_name, load_doodlenet
    from sketchjax.training import apply_overrides

    categories = ["apple", "cat", "sheep", "bird", "car", "tree", "fish"]
    module = importlib.import_module("train.configs.quickdraw_doodlenet")
    config = apply_overrides(module.get_config(), [f"data.data_dir={tmp_path / 'tfds'}", f"data.categories={categories}",
                                                   "model.pretrained_head=True"])
    experiment = build_experiment(config)
    batches = list(experiment.eval_source.epoch_batches(0))
    params = experiment.task.init_fn(jax.random.PRNGKey(0), batches[0])["params"]
    _, dn, names = load_doodlenet()
    _, label_names = prepare_dataset(config["data"])  # the labels' order
    rows = np.array([names.index(doodlenet_class_name(c)) for c in label_names])
    chex.assert_trees_all_equal(params["encoder"], {k: v for k, v in dn["params"].items() if k != "logits"})
    chex.assert_trees_all_equal(params["head"], {"kernel": dn["params"]["logits"]["kernel"][:, rows],
                                                 "bias": dn["params"]["logits"]["bias"][rows]})
    # the pipeline's rasters are DoodleNet's own recipe (128 px canvas, 7 px line, 8% padding) drawn
    from sketchjax.classifier import held_out_sketches
    from sketchjax.models.doodlenet import doodlenet_recipe

    held, _, _ = held_out_sketches(config, None)
    n = int(np.sum(batches[0]["mask"]))  # the real rows (a padded last batch)
    np.testing.assert_array_equal(batches[0]["label"][:n], held["label"][:n])
    np.testing.assert_allclose(batches[0]["raster"][:n], doodlenet_recipe(canvas=128, width=7).raster(
        held["xy"][:n], held["pen"][:n], held["valid"][:n]), atol=1e-6)
    model = make_model(config["model"], len(categories))
    right = total = 0
    for batch in batches:
        pred = np.argmax(np.asarray(model.apply({"params": params}, batch["raster"])), axis=-1)
        right += int(np.sum((pred == batch["label"]) * batch["mask"]))
        total += int(np.sum(batch["mask"]))
    assert total > 20 and right / total >= 0.7, (right, total)  # a random head: 1/7
    # the GACL twin's cosine head takes the kernel's columns (it has no bias)
    gacl = importlib.import_module("train.configs.quickdraw_doodlenet_gacl").get_config()
    gacl_model = make_model({**config["model"]}, len(categories), "gacl")
    fresh = gacl_model.init(jax.random.PRNGKey(1), batches[0]["raster"])["params"]
    grafted = pretrained_params(config["model"], fresh, label_names)
    assert gacl["head"]["type"] == "gacl" and set(grafted["head"]) == {"kernel"}
    np.testing.assert_array_equal(grafted["head"]["kernel"], params["head"]["kernel"])
    # without pretrained_head the head stays as initialised; a random encoder is nowhere near DoodleNet
    kept = pretrained_params({"name": "doodlenet", "pretrained": True}, fresh)
    chex.assert_trees_all_equal(kept["head"], fresh["head"])
    assert not np.allclose(fresh["encoder"]["hidden"]["kernel"], dn["params"]["hidden"]["kernel"])
    assert pretrained_params({"name": "doodlenet"}, fresh) is fresh
    with pytest.raises(ValueError, match="'resnet18' has no pre-trained weights"):
        pretrained_params({"name": "resnet18", "pretrained": True}, fresh)
    with pytest.raises(ValueError, match="pretrained_head needs model.pretrained"):
        pretrained_params({"name": "doodlenet", "pretrained_head": True}, fresh)
    with pytest.raises(ValueError, match=r"no class for \['mokey'\]"):
        pretrained_params({"name": "doodlenet", "pretrained": True, "pretrained_head": True}, fresh, ["cat", "mokey"])
