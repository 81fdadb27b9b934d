"""The classifier experiment's training data: the categories a run found, injected label noise,
and sketch-rnn samples added to the training split (apart from tests/test_quality_eval.py so the
two files run in parallel workers)."""
from __future__ import annotations

import importlib
import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
CATEGORIES = "['apple', 'cat', 'sheep', 'bird', 'car', 'tree', 'fish']"


@pytest.fixture(autouse=True)
def _repo_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


@pytest.mark.data
def test_run_keeps_the_categories_it_found_in_the_data_folder(tmp_path, data_root, monkeypatch):
    """A ``categories = None`` run records the classes it found; loading it later uses those,
    not the folder's files at load time (a file added since must not relabel the classes)."""
    import jax

    from sketchjax.classifier import build_experiment, load_classifier
    from sketchjax.training import apply_overrides, read_run_info, train_and_evaluate

    folder = tmp_path / "data" / "quickdraw" / "simplified"
    folder.mkdir(parents=True)
    for name in ("cat", "dog", "owl", "ant"):
        (folder / f"{name}.ndjson").symlink_to(data_root / "quickdraw" / "simplified" / f"{name}.ndjson")
    (folder / "ant.ndjson").rename(tmp_path / "ant.ndjson")  # not there while training
    monkeypatch.setenv("SKETCHJAX_DATA", str(tmp_path / "data"))
    config = apply_overrides(importlib.import_module("train.configs.quickdraw_bilstm").get_config(), [
        "model.hidden=4", "model.head=(4,)", "num_epochs=1", "batch_size=16", f"data.data_dir={tmp_path / 'tfds'}",
        "progress_bar=False"])
    assert config["data"]["categories"] is None
    train_and_evaluate(config, tmp_path / "run", build_experiment)
    assert read_run_info(tmp_path / "run")["categories"] == ["cat", "dog", "owl"]
    # resuming after a class file was replaced keeps the record the checkpoint was trained with
    (folder / "dog.ndjson").rename(tmp_path / "dog.ndjson")
    (tmp_path / "ant.ndjson").rename(folder / "ant.ndjson")
    train_and_evaluate(config, tmp_path / "run", build_experiment)
    assert read_run_info(tmp_path / "run")["categories"] == ["cat", "dog", "owl"]
    (tmp_path / "dog.ndjson").rename(folder / "dog.ndjson")  # now "ant" is a class added since: ignored
    clf = load_classifier(tmp_path / "run")
    assert clf.categories == ("cat", "dog", "owl")
    # the run restores without its data: scoring a user's sketches needs only the run's folder
    (tmp_path / "data").rename(tmp_path / "gone")
    moved = load_classifier(tmp_path / "run")
    assert moved.categories == clf.categories
    for a, b in zip(jax.tree.leaves(moved.variables), jax.tree.leaves(clf.variables)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.data
def test_label_noise_reaches_the_training_batches_only(tmp_path, data_root):
    from sketchjax.training import apply_overrides
    from sketchjax.classifier import Relabelled, build_experiment, comparable_config, noisy_train_labels

    module = importlib.import_module("train.configs.quickdraw_bilstm")
    config = apply_overrides(module.get_config(), [
        "model.hidden=8", "batch_size=16", f"data.data_dir={tmp_path / 'tfds'}", f"data.categories={CATEGORIES}",
        "data.label_noise=0.4"])
    noisy, flipped = noisy_train_labels(config)
    assert flipped.mean() == pytest.approx(0.4, abs=0.01)
    experiment = build_experiment(config)
    for step in range(3):
        idx, _ = experiment.train_source.batch_indices(0, step)
        np.testing.assert_array_equal(experiment.train_source.batch(0, step)["label"], noisy[idx])
    assert not isinstance(experiment.eval_source.source, Relabelled)  # the test split keeps its labels
    assert experiment.normalise_config is comparable_config  # resuming compares configs through it
    with pytest.raises(ValueError, match="labels for a source"):
        Relabelled([{"label": 0}], [1, 2])


@pytest.mark.data
def test_extra_train_adds_sketchrnn_samples_to_training_only_and_label_noise_follows_its_scope(tmp_path, data_root):
    import jax

    from sketchjax.apps.cleansing import inject_label_noise
    from sketchjax.classifier import (Concatenated, build_experiment, extra_training_split, noisy_train_labels,
                                      source_arrays, training_source)
    from sketchjax.training import apply_overrides

    module = importlib.import_module("train.configs.quickdraw_bilstm")
    config = apply_overrides(module.get_config(), [
        "model.hidden=8", "batch_size=8", f"data.data_dir={tmp_path / 'tfds'}",
        "data.categories=['apple', 'sheep', 'cat', 'palm tree']"])
    config["data"]["extra_train"] = {"source": "sketchrnn_samples", "temperatures": [0.5],
                                     "samples_per_temperature": 3, "sample_batch": 4, "max_len": 40}
    experiment = build_experiment(config)
    source = experiment.train_source.source
    assert isinstance(source, Concatenated)
    real, samples = source.sources
    assert len(samples) <= 6 and len(source) == len(real) + len(samples)
    names = ["apple", "cat", "palm tree", "sheep"]  # the dataset's (sorted) categories
    got = {names[r["label"]] for r in samples.__getitems__(list(range(len(samples))))}
    assert got == {"palm tree", "sheep"}  # only categories with a decoder; labels in the dataset's indexing
    mixed = source.__getitems__([0, len(real), len(source) - 1])
    assert mixed[0]["label"] == real[0]["label"] and len(mixed) == 3
    assert not isinstance(experiment.eval_source.source, Concatenated)
    # label noise: scope "real" changes the human drawings' labels only, "all" the samples' too
    clean = np.asarray([r["label"] for r in source.__getitems__(list(range(len(source))))])
    for scope, pool in (("real", len(real)), ("all", len(source))):
        noisy_config = apply_overrides(config, ["data.label_noise=0.5", f"data.label_noise_scope={scope}"])
        src, flipped, generated = training_source(noisy_config, ("points", "pen", "label", "key_id"))
        np.testing.assert_array_equal(generated, np.arange(len(source)) >= len(real))
        labels, flipped_again = noisy_train_labels(noisy_config)
        np.testing.assert_array_equal(flipped_again, flipped)
        np.testing.assert_array_equal(labels != clean, flipped)
        assert flipped.sum() == round(0.5 * pool)
        if scope == "real":  # the real sketches get exactly the labels runs saved before scopes existed got
            before, changed_before = inject_label_noise(jax.random.PRNGKey(0), clean[:len(real)], 0.5, 4)
            np.testing.assert_array_equal(labels[:len(real)], before)
            np.testing.assert_array_equal(flipped[:len(real)], changed_before)
            assert not flipped[generated].any()
        else:
            assert flipped[generated].any() and flipped[~generated].any()
        arrays = source_arrays(src, noisy_config["data"], extra_fields=("key_id",))
        np.testing.assert_array_equal(arrays["label"], labels)
        assert arrays["xy"].shape == (len(source), noisy_config["data"]["max_len"], 2)
        assert all(str(k).startswith(("b'palm tree/", "b'sheep/", "palm tree/", "sheep/"))
                   for k in arrays["key_id"][generated])
    with pytest.raises(ValueError, match="label_noise_scope"):
        training_source(apply_overrides(config, ["data.label_noise_scope=everything"]))
    config["data"]["categories"] = ["apple", "cat"]
    with pytest.raises(ValueError, match="none of the sketch-rnn decoders"):
        extra_training_split(config["data"], ["apple", "cat"])
