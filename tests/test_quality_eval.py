"""GACL / softmax heads in the classifier experiment, restoring them, and eval/quality.py end to end."""
from __future__ import annotations

import ast
import importlib
import importlib.util
import json
import os
import pathlib

import numpy as np
import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
CATEGORIES = "['apple', 'cat', 'sheep', 'bird', 'car', 'tree', 'fish']"


@pytest.fixture(autouse=True)
def _repo_on_path(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))


def test_head_config_defaults_and_errors():
    from sketchjax.classifier import base_config, gacl_config, head_config

    config = base_config()
    assert head_config(config) == {"type": "softmax"} and gacl_config(config) is None
    config["head"] = {"type": "gacl", "margin_scale": 64.0}
    head = head_config(config)
    assert head["kind"] == "cos" and head["soft_binning"] is True and head["cuts"] == (5, 20, 5)
    cfg = gacl_config(config)
    assert cfg.margin_scale == 64.0 and cfg.lambda_g == pytest.approx(2 * cfg.lambda_g_bound)
    config["head"] = {"type": "gacl", "margin": 1.0}
    with pytest.raises(ValueError, match="unknown GACL head keys"):
        head_config(config)
    config["head"] = {"type": "arcface"}
    with pytest.raises(ValueError, match="unknown head type"):
        head_config(config)
    config["head"] = {"type": "gacl", "lambda_g": 0.01}
    with pytest.raises(ValueError, match="lower bound"):
        gacl_config(config)


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory, data_root):
    """One-epoch GACL and softmax BiLSTMs (8 units) on 7 real categories, sharing one dataset."""
    from sketchjax.training import apply_overrides, train_and_evaluate
    from sketchjax.classifier import build_experiment

    base = tmp_path_factory.mktemp("quality_runs")
    module = importlib.import_module("train.configs.quickdraw_bilstm")
    runs = {}
    for name, head in (("gacl", ["head.type=gacl"]), ("softmax", [])):
        config = apply_overrides(module.get_config(), [
            "model.hidden=8", "model.head=(8,)", "num_epochs=2", "batch_size=16", f"data.data_dir={base / 'tfds'}",
            f"data.categories={CATEGORIES}", "progress_bar=False", *head])
        train_and_evaluate(config, base / name, build_experiment)
        runs[name] = base / name
    return runs


@pytest.mark.data
def test_trained_classifier_scores_own_arrays_as_its_sketches_and_loads_under_x64(tiny_runs, data_root, tmp_path):
    """Found by an audit: every GACL run failed to restore under jax_enable_x64 (the cosine head's
    kernel was made float64), blamed on "settings changed"; score_arrays scored a NaN point as
    NaN and an empty row as a valid-looking sketch, and a last pen state of 1 changed a
    sequence model's score (training lifts it); a run of another experiment failed late."""
    import shutil

    import jax

    from sketchjax.classifier import load_classifier
    from sketchjax.formats.ndjson import read_ndjson

    clf = load_classifier(tiny_runs["gacl"])
    sketches = [r.sketch for r in read_ndjson(data_root / "quickdraw" / "simplified" / "cat.ndjson", limit=5)]
    xy, pen, valid = clf.prepare(sketches)
    base = clf.score_arrays(xy, pen, valid)
    np.testing.assert_allclose(clf.score_sketches(sketches)["q"], base["q"], rtol=1e-6)
    lifted = pen.copy()
    lifted[np.arange(5), valid.sum(1) - 1] = 1.0  # stroke-3 data often ends with the pen "down"
    np.testing.assert_allclose(clf.score_arrays(xy, lifted, valid)["q"], base["q"], rtol=1e-6)
    bad_xy = xy.copy()
    bad_xy[2, 3] = np.nan
    with pytest.raises(ValueError, match=r"sketch 2 of the batch: non-finite point .* at point 3"):
        clf.score_arrays(bad_xy, pen, valid)
    empty = valid.copy()
    empty[1] = False
    with pytest.raises(ValueError, match="sketch 1 of the batch is empty"):
        clf.score_arrays(xy, pen, empty)
    with pytest.raises(ValueError, match="need a batch xy"):
        clf.score_arrays(xy[0], pen[0], valid[0])
    with pytest.raises(ValueError, match=r"sketch 0 of the batch: pen state 2.0 at point \d+ is outside \[0, 1\]"):
        clf.score_arrays(xy, pen * 2, valid)  # an audit: scored as another sketch
    with jax.enable_x64(True):
        wide = load_classifier(tiny_runs["gacl"])
        np.testing.assert_allclose(wide.score_arrays(xy, pen, valid)["q"], base["q"], rtol=1e-5)
    other = tmp_path / "iqa_run"
    shutil.copytree(tiny_runs["gacl"], other)
    config = json.loads((other / "config.json").read_text())
    (other / "config.json").write_text(json.dumps({**config, "experiment": "sketchjax.apps.iqa:build_iqa_experiment"}))
    with pytest.raises(ValueError, match="a run of the experiment 'sketchjax.apps.iqa:build_iqa_experiment', not a sketch"):
        load_classifier(other)
    # runs saved before the classifier moved into the package record its old name: still theirs
    (other / "config.json").write_text(json.dumps({**config, "experiment": "train.sketch_classifier:build_experiment"}))
    np.testing.assert_allclose(load_classifier(other).score_arrays(xy, pen, valid)["q"], base["q"], rtol=1e-6)


@pytest.mark.data
def test_split_label_scores_stream_in_chunks_with_the_same_result(tiny_runs):
    from sketchjax.apps.cleansing import split_label_scores
    from sketchjax.classifier import load_classifier

    clf = load_classifier(tiny_runs["gacl"])
    for split in ("train", "test"):
        whole = split_label_scores(clf, split)
        chunked = split_label_scores(clf, split, chunk_size=7)  # many chunks, a partial last one
        assert len(whole["q"]) > 20 and len(set(whole["key_id"])) == len(whole["key_id"])
        for key in whole:
            if whole[key].dtype.kind == "f":
                np.testing.assert_allclose(chunked[key], whole[key], rtol=1e-6)
            else:
                np.testing.assert_array_equal(chunked[key], whole[key])


@pytest.mark.data
def test_gacl_run_logs_its_schedule_and_restores_with_scores(tiny_runs):
    import jax.numpy as jnp

    from sketchjax.training import read_metrics
    from sketchjax.classifier import held_out_sketches, load_classifier

    records = read_metrics(tiny_runs["gacl"] / "metrics.jsonl")
    train = [r for r in records if r["split"] == "train"]
    assert train and all(r["n_cuts"] == 5 for r in train)  # 2 epochs: still inside the 5-epoch hold
    last_eval = [r for r in records if r["split"] == "eval"][-1]
    clf = load_classifier(tiny_runs["gacl"])
    assert clf.gacl is not None and clf.gacl.kind == "cos"
    arrays, categories, n = held_out_sketches(clf.config, extra_fields=("recognized",))
    assert len(arrays["label"]) == n == last_eval["count"] and arrays["recognized"].dtype == bool
    out = clf.scores(jnp.asarray(arrays["xy"]), jnp.asarray(arrays["pen"]), jnp.asarray(arrays["valid"]))
    # the restored model scores the split exactly as the training run's own evaluation did
    assert float(np.mean(np.asarray(out["pred"]) == arrays["label"])) == pytest.approx(last_eval["accuracy"])
    assert float(np.mean(out["q"])) == pytest.approx(last_eval["q"], rel=1e-4)
    np.testing.assert_allclose(np.asarray(out["q"]), clf.gacl.l_q + (np.asarray(out["norm"]) - clf.gacl.l_a)
                               * (clf.gacl.u_q - clf.gacl.l_q) / (clf.gacl.u_a - clf.gacl.l_a), rtol=1e-5)
    soft = load_classifier(tiny_runs["softmax"])
    s_out = soft.scores(jnp.asarray(arrays["xy"]), jnp.asarray(arrays["pen"]), jnp.asarray(arrays["valid"]))
    assert "q" not in s_out and bool((np.abs(np.asarray(s_out["cos_pred"])) <= 1.0 + 1e-5).all())
    for o in (out, s_out):  # every class's cosine; the predicted class's is cos_pred (GACL: logits / s)
        cos = np.asarray(o["cos"])
        assert cos.shape == (n, len(categories)) and bool((np.abs(cos) <= 1.0 + 1e-5).all())
        np.testing.assert_allclose(cos[np.arange(n), np.asarray(o["pred"])], o["cos_pred"], atol=1e-5)
    feats = soft.model.apply(soft.variables, soft.inputs(*(jnp.asarray(arrays[k][:4]) for k in ("xy", "pen", "valid"))),
                             return_features=True)[1]
    kernel = np.asarray(soft.variables["params"]["head"]["kernel"])
    by_hand = np.asarray(feats) @ kernel / np.outer(np.linalg.norm(feats, axis=1), np.linalg.norm(kernel, axis=0))
    np.testing.assert_allclose(np.asarray(s_out["cos"])[:4], by_hand, atol=1e-5)
    # the features the scores come from: the model's own, with the score's norm, for either head
    f = {c: c.feature_arrays(arrays["xy"][:4], arrays["pen"][:4], arrays["valid"][:4], batch_size=4) for c in (soft, clf)}
    np.testing.assert_allclose(f[soft], np.asarray(feats), rtol=1e-5, atol=1e-6)
    for c, o in ((soft, s_out), (clf, out)):
        np.testing.assert_allclose(np.linalg.norm(f[c], axis=1), np.asarray(o["norm"])[:4], rtol=1e-5)


@pytest.mark.data
def test_sequence_models_score_over_long_sketches_length_fitted_as_in_training(tiny_runs):
    import jax

    from sketchjax.classifier import held_out_sketches, load_classifier
    from sketchjax.degrade import add_scribbles, room

    clf = load_classifier(tiny_runs["gacl"])
    max_len = clf.config["data"]["max_len"]
    arrays, _, _ = held_out_sketches(clf.config, n=12)
    assert arrays["pen"].shape[1] == max_len
    # already fitted: returned as they are
    for a, b in zip(clf.fit_arrays(arrays["xy"], arrays["pen"], arrays["valid"]),
                    (arrays["xy"], arrays["pen"], arrays["valid"])):
        np.testing.assert_array_equal(a, b)
    t = max_len + room(3)
    pad = ((0, 0), (0, t - max_len))
    xy, pen, valid = np.pad(arrays["xy"], pad + ((0, 0),)), np.pad(arrays["pen"], pad), np.pad(arrays["valid"], pad)
    keys = jax.random.split(jax.random.PRNGKey(0), len(xy))
    grown = [np.asarray(v) for v in jax.vmap(lambda k, a, b, c: add_scribbles(k, a, b, c, 3))(keys, xy, pen, valid)]
    assert (grown[2].sum(1) > max_len).any()  # some sketches now exceed the model's length
    fxy, fpen, fvalid = clf.fit_arrays(*grown)
    assert fxy.shape == (12, max_len, 2) and fpen.shape == fvalid.shape == (12, max_len)
    assert (fvalid.sum(1) <= max_len).all() and (fvalid.sum(1) > arrays["valid"].sum(1) * 0.5).all()
    # the fit is training's own: the same as preparing each grown sketch from its points
    from sketchjax.sketch import Sketch

    ref = clf.prepare([Sketch(xy=x[v], pen=p[v], valid=v[v]) for x, p, v in zip(*grown)])
    for a, b in zip((fxy, fpen, fvalid), ref):
        np.testing.assert_array_equal(a, b)
    # a hole in the valid mask (not a prefix) is closed up, not scored as padding
    holed = arrays["valid"].copy()
    holed[:, 0] = False
    hxy, _, hvalid = clf.fit_arrays(arrays["xy"], arrays["pen"], holed)
    n = arrays["valid"].sum(1)
    np.testing.assert_array_equal(hvalid.sum(1), n - 1)
    np.testing.assert_array_equal(hxy[np.arange(12), n - 2], arrays["xy"][np.arange(12), n - 1])
    np.testing.assert_array_equal(hxy[:, 0], arrays["xy"][:, 1])
    scored = clf.score_arrays(*grown)
    direct = clf.score_arrays(fxy, fpen, fvalid)
    np.testing.assert_allclose(scored["q"], direct["q"], rtol=1e-6)


@pytest.mark.data
def test_quality_eval_reads_unseen_sketches_from_files_like_the_held_out_split(tiny_runs, data_root, tmp_path):
    from sketchjax.classifier import held_out_sketches, load_classifier, prepare_dataset
    from sketchjax.data import open_split

    program = _program("quality")
    clf = load_classifier(tiny_runs["gacl"])
    builder, categories = prepare_dataset(clf.config["data"])
    trained = {program._text(r["key_id"]) for r in open_split(builder, "train", fields=("key_id",))}
    lines = (data_root / "quickdraw" / "simplified" / "cat.ndjson").read_text().splitlines()
    in_train = sum(json.loads(line)["key_id"] in trained for line in lines)
    assert 0 < in_train < len(lines)
    path = tmp_path / "cats.ndjson"
    path.write_text("\n".join(lines) + "\n")
    arrays, cats, dropped = program.file_sketches(clf.config, [str(path)], None, 0)
    assert cats == list(categories) and dropped == in_train and len(arrays["label"]) == len(lines) - in_train
    assert (arrays["label"] == categories.index("cat")).all() and arrays["recognized"].dtype == bool
    # the unseen cats of the held-out split come out exactly as held_out_sketches fits them
    held, _, _ = held_out_sketches(clf.config, extra_fields=("key_id",))
    matched = 0
    for i, key in enumerate(held["key_id"]):
        j = np.nonzero(arrays["key_id"] == program._text(key))[0]
        if j.size:
            matched += 1
            for name in ("xy", "pen", "valid"):
                np.testing.assert_array_equal(arrays[name][j[0]], held[name][i])
    assert matched == len(lines) - in_train
    # a category the runs do not know is named with its line
    other = json.loads(lines[0])
    other["word"] = "monkey"
    path.write_text(lines[0] + "\n" + json.dumps(other) + "\n")
    with pytest.raises(SystemExit, match=r"cats.ndjson:2: category 'monkey' is not one of the runs' 7"):
        program.file_sketches(clf.config, [str(path)], None, 0)
    # an unseen sketch without QuickDraw's `recognized` flag is named (it was taken as False)
    unseen = next(json.loads(line) for line in lines if json.loads(line)["key_id"] not in trained)
    del unseen["recognized"]
    path.write_text(json.dumps(unseen) + "\n")
    path.write_text("\n" + json.dumps(unseen) + "\n")  # after a blank line: named by its file line
    with pytest.raises(SystemExit, match=r"cats.ndjson:2: 'recognized' must be true/false .*got None"):
        program.file_sketches(clf.config, [str(path)], None, 0)
    unseen["recognized"] = "false"  # a string would count as True (refused by the reader itself)
    path.write_text(json.dumps(unseen) + "\n")
    with pytest.raises(ValueError, match=r"cats.ndjson:1: 'recognized' must be true/false, got 'false'"):
        program.file_sketches(clf.config, [str(path)], None, 0)


@pytest.mark.data
def test_the_held_out_split_is_read_from_the_files_the_run_was_trained_on(tiny_runs):
    """eval/quality.py and eval/rhs.py evaluate on the run's held-out split: other files under
    the data root would give other sketches (found by an audit of cleanse; the same check here)."""
    from sketchjax.classifier import held_out_sketches, load_classifier

    clf = load_classifier(tiny_runs["gacl"])
    assert clf.dataset.startswith("quickdraw_strokes/") and "-in" in clf.dataset
    arrays, _, _ = held_out_sketches(clf.config, 4, expect_dataset=clf.dataset)
    assert len(arrays["label"]) == 4
    other = clf.dataset.rsplit("-in", 1)[0] + "-in00000000"
    with pytest.raises(ValueError, match=r"the run was trained on the dataset .*-in00000000, but the data found now builds"):
        held_out_sketches(clf.config, 4, expect_dataset=other)
    held_out_sketches(clf.config, 4, expect_dataset=clf.dataset.rsplit("-in", 1)[0])  # downloaded: not checked


def test_quality_eval_run_names_may_hold_equals_signs():
    program = _program("quality")
    runs = program.parse_runs("softmax=runs/a, GACL m=1 = runs/b")
    assert runs == {"softmax": pathlib.Path("runs/a"), "GACL m=1": pathlib.Path("runs/b")}
    with pytest.raises(SystemExit, match="expected NAME=WORKDIR"):
        program.parse_runs("runs/a")
    with pytest.raises(SystemExit, match=r"a name cannot hold one\), got 'GACL \[8'"):
        program.parse_runs("GACL [8, 22]=runs/b")


def test_ink_reference_auc_counts_points_and_strokes():
    program = _program("quality")
    # pen[t] = 1 draws segment t -> t+1 (SPEC §1): 3 points in 1 stroke, 5 points in 1 stroke,
    # 4 points in 2 strokes (2 drawn segments each for the first and the last sketch, so a
    # count of drawn segments would rank them as equals)
    valid = np.array([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1], [1, 1, 1, 1, 0]], bool)
    pen = np.array([[1, 1, 0, 0, 0], [1, 1, 1, 1, 0], [1, 0, 1, 0, 0]], np.float32)
    arrays = {"valid": valid, "pen": pen, "recognized": np.array([True, False, True])}
    np.testing.assert_array_equal(program.length_strata(arrays, 3), [0, 2, 1])
    auc = program.ink_reference_auc(arrays)
    assert auc["fewer_points"]["all"] == 1.0
    # fewer strokes: the 1-stroke negative ties the 1-stroke positive (1/2) and beats the
    # 2-stroke one (0): (0.5 + 0) / 2
    assert auc["fewer_strokes"]["all"] == 0.25
    arrays["recognized"] = np.array([False, True, True])
    auc = program.ink_reference_auc(arrays, strata=np.zeros(3, int))  # one stratum: the plain AUC
    assert auc["fewer_points"] == {"all": 0.0, "length_matched": 0.0}
    assert auc["fewer_strokes"]["all"] == 0.25


@pytest.mark.slow  # ~50 s; the pairing and sign logic is pinned by the fake-classifier test below
@pytest.mark.data
def test_quality_eval_program_runs_and_reports_every_measurement(tiny_runs, tmp_path):
    spec = importlib.util.spec_from_file_location("eval_quality", REPO / "eval" / "quality.py")
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    out = tmp_path / "quality.json"
    report = program.main(["--runs", f"GACL={tiny_runs['gacl']},softmax={tiny_runs['softmax']}", "--out", str(out),
                           "--batch", "64"])
    saved = json.loads(out.read_text())
    assert saved["command"].startswith("python eval/quality.py") and "real QuickDraw" in saved["data"]
    for name in ("GACL", "softmax"):
        r = report["runs"][name]
        assert 0.0 <= r["top1"] <= r["top5"] <= 1.0
        assert -1.0 <= r["spearman_score_cos"]["value"] <= 1.0
        assert r["spearman_score_cos"]["lo"] <= r["spearman_score_cos"]["value"] <= r["spearman_score_cos"]["hi"]
        assert set(r["degradation"]) == {"jitter", "delete_strokes", "scribbles", "truncate"}
        for rows in r["degradation"].values():
            assert len(rows) == 4 and all(0.0 <= row["vs_clean_score"]["mean"] <= 1.0 for row in rows)
        assert 0.0 <= r["recognized_auc"]["score"] <= 1.0 and np.isfinite(r["doodlenet_spearman"]["score"])
        units = r["feature_units"]
        assert 0.0 <= units["dead_units"] < units["active_per_sketch"] + units["dead_units"] <= 1.0
        assert 0.0 <= units["mean_pairwise_cos"] <= 1.0  # non-negative features
    assert report["runs"]["GACL"]["score_is"] == "q" and report["runs"]["softmax"]["score_is"] == "feature norm"
    ref = report["runs"][program.REFERENCE]  # DoodleNet under the same protocol, restricted to the 7 categories
    assert ref["score_is"] == "max probability" and ref["workdir"] is None and ref["model"] == "doodlenet"
    assert ref["top1"] > 0.6 and 1.0 / 7 <= ref["score_range"][0] <= ref["score_range"][2] <= 1.0
    assert len(ref["degradation"]["jitter"]) == 4 and ref["doodlenet_spearman"]["score"] > 0.5
    for suffix in ("_scatter.png", "_degradation.png", "_extremes.png"):
        assert (tmp_path / f"quality{suffix}").stat().st_size > 10_000


@pytest.mark.slow  # ~33 s; the scores it prints are pinned by test_gacl_run_logs_its_schedule_and_restores_with_scores
@pytest.mark.data
def test_quality_command_scores_user_files_and_refuses_softmax_runs(tiny_runs, data_root, tmp_path, capsys):
    from sketchjax.cli import main

    out = tmp_path / "q.png"
    files = [str(data_root / "quickdraw" / "simplified" / "cat.ndjson"), str(next((data_root / "tuberlin_svg").glob("*/*.svg")))]
    assert main(["quality", *files, "--n", "4", "--checkpoint", str(tiny_runs["gacl"]), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    rows = [line for line in captured.out.splitlines() if line[:4].strip().isdigit()]
    assert len(rows) == 4
    qs = [float(line.split()[-3]) for line in rows]  # the q column, highest first
    assert qs == sorted(qs, reverse=True)
    assert out.stat().st_size > 10_000
    assert f"the rest of {files[0]} and 1 more file(s) ({files[1]}) not read" in " ".join(captured.err.split())
    # without --n: every sketch of FILES, each row naming its file and line
    n_cats = len((data_root / "quickdraw" / "simplified" / "cat.ndjson").read_text().splitlines())
    assert main(["quality", *files, "--checkpoint", str(tiny_runs["gacl"]), "--out", str(out)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line[:4].strip().isdigit()]
    assert len(rows) == n_cats + 1
    assert any("cat (cat.ndjson:1)" in r for r in rows) and any(pathlib.Path(files[1]).name in r for r in rows)
    # a missing file or an unwritable output is named before any work
    assert main(["quality", files[0], str(tmp_path / "gone.ndjson"), "--checkpoint", str(tiny_runs["gacl"]),
                 "--out", str(out)]) == 2
    assert "gone.ndjson: no such file" in capsys.readouterr().err
    assert main(["quality", *files, "--checkpoint", str(tiny_runs["gacl"]), "--out", str(tmp_path / "q.txt")]) == 2
    assert "unsupported output type '.txt'" in capsys.readouterr().err
    assert main(["quality", "--checkpoint", str(tiny_runs["softmax"]), "--out", str(out)]) == 2
    assert "softmax classifier has no quality score" in capsys.readouterr().err
    # a bad sketch file is named before the checkpoint is restored (it was read only after)
    bad = tmp_path / "bad.ndjson"
    bad.write_text('{"word": "cat", "drawing": [[[0, 1], [0]]]}\n')
    assert main(["quality", str(bad), "--checkpoint", str(tmp_path / "no_run"), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "bad.ndjson:1" in err and "no_run" not in err


@pytest.mark.data
def test_cleanse_command_writes_one_row_per_training_sample(tiny_runs, data_root, tmp_path, capsys, monkeypatch):
    import csv

    from sketchjax.cli import main

    out = tmp_path / "flags.csv"
    assert main(["cleanse", "--checkpoint", str(tiny_runs["gacl"]), "--out", str(out), "--q-low-quantile", "0.1"]) == 0
    rows = list(csv.DictReader(out.open()))
    assert len(rows) > 100 and {"key_id", "label", "q", "theta_deg", "flagged", "reason", "generated"} <= set(rows[0])
    assert all(r["generated"] == "False" and r["injected_noise"] == "False" for r in rows)  # real sketches, no noise
    q = np.array([float(r["q"]) for r in rows])
    for r in rows:  # every flag follows the rule it names, and every sample the rule catches is flagged
        far = float(r["q"]) >= np.quantile(q, 0.5) and float(r["theta_deg"]) >= 75.0
        poor = float(r["q"]) <= np.quantile(q, 0.1)
        assert (r["flagged"] == "True") == (far or poor)
        assert r["reason"] == ("far from label" if far else "very low q" if poor else "")
    assert "samples flagged (gacl rule" in capsys.readouterr().out
    # the small-loss rule: the run's probability of the label, on a GACL run and on a softmax run
    for run in ("gacl", "softmax"):
        small = tmp_path / f"small_{run}.csv"
        assert main(["cleanse", "--checkpoint", str(tiny_runs[run]), "--rule", "small-loss", "--out", str(small)]) == 0
        p = np.array([float(r["p_label"]) for r in csv.DictReader(small.open())])
        assert "small-loss rule: label probability <= 0.05" in capsys.readouterr().out
        threshold = float(np.median(p))  # the tiny runs are barely trained: a threshold inside their range
        assert main(["cleanse", "--checkpoint", str(tiny_runs[run]), "--rule", "small-loss",
                     "--p-label-max", repr(threshold), "--out", str(small)]) == 0
        srows = list(csv.DictReader(small.open()))
        assert [r["key_id"] for r in srows] == [r["key_id"] for r in rows]  # the same samples, in the same order
        assert ((0.0 <= p) & (p <= 1.0)).all() and 0 < int((p <= threshold).sum()) < len(p)
        assert [r["flagged"] == "True" for r in srows] == list(p <= threshold)
        assert {r["reason"] for r in srows} == {"improbable label", ""}
        assert all((r["q"] == "") == (run == "softmax") for r in srows)  # a softmax run has no q
        capsys.readouterr()
    # the GACL rule needs q: a softmax run is refused; a probability out of [0, 1] is named
    assert main(["cleanse", "--checkpoint", str(tiny_runs["softmax"]), "--out", str(tmp_path / "x.csv")]) == 2
    assert "softmax classifier has no quality score" in capsys.readouterr().err
    assert main(["cleanse", "--checkpoint", str(tiny_runs["gacl"]), "--rule", "small-loss", "--p-label-max", "2",
                 "--out", str(tmp_path / "x.csv")]) == 2
    assert "p_label_max must be a probability in [0, 1], got 2.0" in capsys.readouterr().err
    # a threshold that is not a quantile is named, with no traceback (and nothing written)
    assert main(["cleanse", "--checkpoint", str(tiny_runs["gacl"]), "--out", str(tmp_path / "x.csv"),
                 "--q-high-quantile", "50"]) == 2
    assert "q_high_quantile must be a quantile in [0, 1], got 50.0" in capsys.readouterr().err
    assert not (tmp_path / "x.csv").exists()
    assert main(["cleanse", "--checkpoint", str(tiny_runs["gacl"]), "--out", str(tmp_path / "x.csv"),
                 "--theta-high", "500"]) == 2
    assert "theta_high_deg must be an angle in [0, 180] degrees" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["cleanse", "--checkpoint", str(tiny_runs["gacl"]), "--show", "-1"])
    # a scorer with no config of its own (DoodleNetReference: eval/cleansing.py scores a run's
    # examples with it) is given the run's config (found by a review: AttributeError on .config)
    from sketchjax.apps.cleansing import split_label_scores
    from sketchjax.classifier import load_classifier

    clf = load_classifier(tiny_runs["gacl"])

    class Reference:  # as DoodleNetReference: scores, no config, no dataset
        def score_arrays(self, *args):
            return clf.score_arrays(*args)

    ref = split_label_scores(Reference(), "test", config=clf.config)
    own = split_label_scores(clf, "test")
    assert list(ref["key_id"]) == list(own["key_id"]) and np.allclose(ref["p_label"], own["p_label"])
    # --data holds for the whole command: the run's dataset is built from it after loading
    monkeypatch.setenv("SKETCHJAX_DATA", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("SKETCHJAX_OFFLINE", "1")
    assert main(["cleanse", "--checkpoint", str(tiny_runs["gacl"]), "--data", str(data_root),
                 "--out", str(tmp_path / "y.csv")]) == 0
    assert len(list(csv.DictReader((tmp_path / "y.csv").open()))) == len(rows)
    # other files under --data (here a subset of the same categories) build another dataset:
    # refused, naming both (found by an audit: it scored them as the run's training split)
    subset = tmp_path / "subset" / "quickdraw" / "simplified"
    subset.mkdir(parents=True)
    for cat in ast.literal_eval(CATEGORIES):
        with open(data_root / "quickdraw" / "simplified" / f"{cat}.ndjson") as f:
            (subset / f"{cat}.ndjson").write_text("".join(f.readlines()[::2]))  # every other drawing
    datasets = pathlib.Path(os.path.expanduser(clf.config["data"]["data_dir"])) / "quickdraw_strokes"
    built = set(datasets.iterdir())
    assert main(["cleanse", "--checkpoint", str(tiny_runs["gacl"]), "--data", str(tmp_path / "subset"),
                 "--out", str(tmp_path / "z.csv")]) == 2
    err = capsys.readouterr().err
    assert "the run was trained on the dataset quickdraw_strokes/" in err and "but the data found now builds" in err
    assert not (tmp_path / "z.csv").exists()
    assert set(datasets.iterdir()) == built  # refused before building the other files (an audit: built, then refused)


def _program(name: str):
    spec = importlib.util.spec_from_file_location(f"eval_{name}", REPO / "eval" / f"{name}.py")
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    return program


def test_rhs_best_f1_is_the_best_over_every_threshold():
    """eval/rhs.py's oracle threshold ("malicious when score <= t") against brute force, with
    ties, float32 scores and the threshold read back by f1_at."""
    rhs = _program("rhs")
    rng = np.random.default_rng(7)
    for trial in range(40):
        n = int(rng.integers(2, 200))
        s = np.round(rng.normal(size=n), int(rng.integers(0, 3))).astype(np.float32 if trial % 2 else np.float64)
        positive = rng.random(n) < rng.uniform(0.1, 0.9)
        positive[0] = True
        brute = [2 * np.sum((s <= t) & positive) / ((s <= t).sum() + positive.sum()) for t in np.unique(s)]
        f1, t = rhs.best_f1(s, positive)
        assert f1 == pytest.approx(max(brute)) and rhs.f1_at(s, positive, t) == pytest.approx(f1)
        assert t == min(u for u, b in zip(np.unique(s), brute) if b == pytest.approx(max(brute)))


@pytest.mark.slow  # ~12 s; q_max+ itself is pinned by tests/test_apps.py (run with -m slow)
@pytest.mark.data
def test_rhs_program_reports_f1_of_q_and_q_max_plus(tiny_runs, tmp_path):
    out = tmp_path / "rhs.json"
    report = _program("rhs").main(["--run", str(tiny_runs["gacl"]), "--n", "6", "--max-strokes", "6", "--batch", "6",
                                   "--out", str(out)])
    assert json.loads(out.read_text())["command"].startswith("python eval/rhs.py")
    for score in ("q", "q_max+1", "q_max+2"):
        r = report["results"][score]
        assert 0.0 <= r["auc_malicious"] <= 1.0 and 0.0 < r["best_f1"] <= 1.0
    assert set(report["results"]["q"]["median"]) == {"rare_and_hard", "scribbles", "stroke_salad"}
    assert report["f1_flag_everything"] == pytest.approx(2 * 0.5 / 1.5)  # half the sketches are malicious
    # an --n beyond the held-out sketches keeps the two sets the same size (F1 of flagging all: 2/3)
    big = _program("rhs").main(["--run", str(tiny_runs["gacl"]), "--n", "100000", "--rounds", "1", "--max-strokes", "6",
                                "--batch", "16", "--out", str(out)])
    assert big["f1_flag_everything"] == pytest.approx(2 * 0.5 / 1.5)


@pytest.mark.slow  # ~20 s; the rule and the noise are pinned by test_cleanse_command_writes_one_row_per_training_sample and tests/test_apps.py
@pytest.mark.data
def test_cleansing_program_trains_a_noisy_run_and_traces_precision_recall(data_root, tmp_path):
    out = tmp_path / "cleansing.json"
    report = _program("cleansing").main([
        "--rates", "0.4", "--config", str(REPO / "train" / "configs" / "quickdraw_bilstm.py"), "--runs-dir",
        str(tmp_path / "runs"), "--name", "tiny", "--set", "head.type=gacl", "--set", "model.hidden=8",
        "--set=model.head=(8,)", "--set", "num_epochs=1", "--set", "batch_size=16",
        "--set", f"data.data_dir={tmp_path / 'tfds'}", f"--set=data.categories={CATEGORIES}", "--softmax-baseline",
        "--out", str(out)])
    row = report["results"]["0.4"]
    soft = row["softmax"]  # the same noisy data through a softmax head: no GACL rule, its feature norm instead of q
    assert soft["injected"] == row["injected"] and "gacl_rule" not in soft and "median_feature_norm" in soft
    assert json.loads((tmp_path / "runs" / "tiny_softmax_noise0.4" / "config.json").read_text())["head"] == {"type": "softmax"}
    for r in (row, soft):
        assert 0.0 < r["small_loss"]["best_f1"] <= 1.0 and 0.0 < r["angle_only"]["best_f1"] <= 1.0
    assert row["injected"] == round(0.4 * row["samples"])
    assert 0.0 < row["gacl_rule"]["best_f1"] <= 1.0 and 0.0 <= row["prediction_disagrees"]["recall"] <= 1.0
    sweep = row["q_high_quantile_sweep"]
    assert list(sweep) == ["0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]
    assert sweep["0.5"] == row["gacl_rule"]  # the rule as run (--q-high-quantile 0.5) is one point of the sweep
    assert row["generated"] == 0 and "real_sketches_only" not in row  # no extra_train: nothing to split
    # the pre-trained DoodleNet scores the same examples against the same noisy labels; trained on clean
    # labels at scale it finds the flipped ones (a misaligned label order would leave it near chance)
    ref = report["results"]["0.4"]["doodlenet"]
    assert ref["injected"] == row["injected"] and ref["samples"] == row["samples"] and "gacl_rule" not in ref
    assert ref["small_loss"]["best_f1"] > 0.75, ref["small_loss"]
    from sketchjax.apps.cleansing import split_label_scores
    from sketchjax.classifier import DoodleNetReference, load_classifier

    clf = load_classifier(tmp_path / "runs" / "tiny_noise0.4")
    mine, theirs = split_label_scores(clf), split_label_scores(DoodleNetReference(clf.categories), config=clf.config)
    for key in ("key_id", "label", "flipped"):  # the same examples, in the same order, with the same noisy labels
        np.testing.assert_array_equal(mine[key], theirs[key])
    assert report["doodlenet"].startswith("pre-trained DoodleNet")
    assert (tmp_path / "cleansing.png").stat().st_size > 10_000


@pytest.mark.slow  # ~24 s; the IQA data and GACL parts are unit-tested in tests/test_apps.py (run with -m slow)
@pytest.mark.data
def test_iqa_program_trains_and_reports_plcc_srocc(data_root, tmp_path):
    out = tmp_path / "iqa.json"
    report = _program("iqa").main([
        "--bins", "10", "--runs-dir", str(tmp_path / "runs"), "--set", f"data.data_dir={tmp_path / 'tfds'}",
        f"--set=data.categories={CATEGORIES}", "--set=model.widths=(4, 4, 8, 8)", "--set", "num_epochs=1",
        "--set", "batch_size=16", "--out", str(out)])
    row = report["results"]["10"]
    assert row["test_images"] > 20 and -1.0 <= row["plcc_expected_rating"] <= 1.0 and np.isfinite(row["srocc_q"])
    assert json.loads(out.read_text())["command"].startswith("python eval/iqa.py")


@pytest.mark.slow  # ~12 s; the pseudo-label GACL is pinned by tests/test_apps.py (run with -m slow)
def test_pseudo_label_program_runs(tmp_path):
    out = tmp_path / "pl.json"
    report = _program("pseudo_label").main(["--seeds", "0", "--n-per", "40", "--epochs", "3", "--out", str(out)])
    assert set(report["results"]) == {"circle", "grid"}
    assert (tmp_path / "pl.png").stat().st_size > 10_000


def test_feature_unit_stats_by_hand():
    from sketchjax.classifier import feature_unit_stats

    f = np.array([[3.0, 0.0, 4.0, 0.0], [0.0, 0.0, 2.0, 0.0], [1.0, 0.0, 0.0, 0.0]])
    stats = feature_unit_stats(f)
    assert stats["dead_units"] == 0.5  # units 1 and 3 are 0 for every sketch
    assert stats["active_per_sketch"] == pytest.approx(4 / 12)
    # cosines of the three pairs: (0, 1) 0.8, (0, 2) 0.6, (1, 2) 0
    assert stats["mean_pairwise_cos"] == pytest.approx((0.8 + 0.6 + 0.0) / 3)
    with pytest.raises(ValueError, match="N >= 2"):
        feature_unit_stats(f[:1])


def test_comparable_config_fills_defaults_added_since_a_run_was_saved():
    from sketchjax.classifier import comparable_config

    module = importlib.import_module("train.configs.sketchrnn28_resnet_gacl")
    as_saved = lambda config: json.loads(json.dumps(config))  # noqa: E731  (tuples as lists, as in config.json)
    new = module.get_config()
    old = as_saved(new)  # a run's config.json, saved before two defaults existed
    del old["data"]["label_noise_scope"], old["head"]["margin_warmup"]
    assert old != as_saved(new)
    assert as_saved(comparable_config(old)) == as_saved(comparable_config(new))
    changed = as_saved(old)
    changed["data"]["label_noise"] = 0.4
    assert as_saved(comparable_config(old))["data"] == as_saved(comparable_config(new))["data"]
    # a real difference stays one
    assert as_saved(comparable_config(changed))["data"] != as_saved(comparable_config(new))["data"]
    assert comparable_config({"data": None})["data"]["label_noise_scope"] == "real"
    assert comparable_config({"data": {}})["head"] == {"type": "softmax"}
    # how fast the encoder runs is no difference; its width is
    fast = dict(new, model={**new["model"], "pack": 0.6, "unroll": 2})
    assert comparable_config(fast) == comparable_config(new)
    assert comparable_config(dict(new, model={**new["model"], "width": 3})) != comparable_config(new)
    # an encoder setting added since, at the default old runs had, is none either; another value is
    import dataclasses

    from sketchjax.classifier import MODEL_KEY_DEFAULTS
    from sketchjax.models.bilstm import BiLSTMEncoder
    from sketchjax.models.layers import ReluMLP
    from sketchjax.models.transformer import PointTransformer

    bilstm = importlib.import_module("train.configs.sketchrnn28_bilstm").get_config()
    assert bilstm["model"]["head_activation"] == "relu"
    saved_before = as_saved(bilstm)
    del saved_before["model"]["head_activation"]
    assert as_saved(comparable_config(saved_before)) == as_saved(comparable_config(bilstm))
    bilstm["model"]["head_activation"] = "softplus"
    assert as_saved(comparable_config(saved_before)) != as_saved(comparable_config(bilstm))
    # ... and that default is the encoders' own
    for cls in (BiLSTMEncoder, PointTransformer):
        default = {f.name: f.default for f in dataclasses.fields(cls)}["head_activation"]
        assert default == MODEL_KEY_DEFAULTS["head_activation"] == ReluMLP.activation, cls.__name__
    # a doodlenet run saved before model.pretrained_head existed compares equal to one that spells it False
    doodle = importlib.import_module("train.configs.quickdraw_doodlenet").get_config()
    # ... and one saved before optimizer.lr_scale existed to one that has its default (None); a rate is a difference
    no_scale = dict(doodle, optimizer={k: v for k, v in doodle["optimizer"].items() if k != "lr_scale"})
    assert as_saved(comparable_config(no_scale)) == as_saved(comparable_config(doodle))
    scaled = dict(doodle, optimizer={**doodle["optimizer"], "lr_scale": {"encoder": 0.1}})
    assert as_saved(comparable_config(no_scale)) != as_saved(comparable_config(scaled))
    before = dict(doodle, model={k: v for k, v in doodle["model"].items() if k != "pretrained_head"})
    assert as_saved(comparable_config(before)) == as_saved(comparable_config(doodle))
    with_head = dict(doodle, model={**doodle["model"], "pretrained_head": True})
    assert as_saved(comparable_config(with_head)) != as_saved(comparable_config(doodle))


def test_concatenated_source_and_head_cut_limits():
    from sketchjax.classifier import Concatenated, base_config, head_config

    both = Concatenated([{"i": 0}, {"i": 1}], [{"i": 2}])
    assert [r["i"] for r in both.__getitems__([2, 0, 1])] == [2, 0, 1] and both[2]["i"] == 2
    with pytest.raises(IndexError, match="index 3 out of range for 3"):
        both.__getitems__([0, 3])
    assert [r["i"] for r in both.__getitems__([-1, -3])] == [2, 0] and both[-2]["i"] == 1  # as a list
    with pytest.raises(IndexError, match="index -4 out of range for 3"):
        both[-4]
    config = base_config()
    config["head"] = {"type": "gacl", "cuts": (5, 40, 5)}
    with pytest.raises(ValueError, match="cut points must be in"):
        head_config(config)
    # an audit: fractional cut points were cut by int(), a negative warm-up turned it off
    for head, message in (({"cuts": (5.5, 20, 2.7)}, "head.cuts: start must be an integer"),
                          ({"cuts": (5, 20, True)}, "head.cuts: hold_epochs must be an integer"),
                          ({"cuts": (5, 20)}, r"head.cuts must be \(start, end, hold_epochs\)"),
                          ({"margin_warmup": -1.0}, "head.margin_warmup must be a number of epochs >= 0"),
                          ({"margin_warmup": float("nan")}, "head.margin_warmup must be")):
        config["head"] = {"type": "gacl", **head}
        with pytest.raises(ValueError, match=message):
            head_config(config)
    config["head"] = {"type": "gacl", "cuts": [5, 20, 5], "margin_warmup": None}  # as read back from JSON
    assert head_config(config)["cuts"] == [5, 20, 5]


@pytest.mark.data
def test_quality_eval_pairs_each_sketch_with_its_own_degraded_copy(data_root):
    """A fake classifier whose quality is the number of points: truncation and deletion must
    always lose to the clean sketch, scribbles always win, jitter ties — any mis-pairing or sign
    error in the degradation agreement breaks these exact values."""
    import argparse

    import jax.numpy as jnp

    from sketchjax.batching import stack_sketches
    from sketchjax.formats.ndjson import read_ndjson
    from sketchjax.gacl import GACLConfig

    program = _program("quality")
    records = read_ndjson(data_root / "quickdraw" / "simplified" / "cat.ndjson", limit=20)
    batch = stack_sketches([r.sketch for r in records], max_len=100 + 64)
    arrays = {"xy": np.asarray(batch.xy, np.float32), "pen": np.asarray(batch.pen, np.float32),
              "valid": np.asarray(batch.valid), "label": np.zeros(20, np.int64),
              "recognized": np.array([r.recognized for r in records])}
    arrays["length_stratum"] = program.length_strata(arrays)

    class PointCounter:
        gacl = GACLConfig()
        config = {"model": {"name": "fake"}, "head": {"soft_binning": False}}
        step = 0

        @staticmethod
        def scores(xy, pen, valid):
            n = jnp.sum(valid, axis=-1).astype(jnp.float32)
            return {"logits": jnp.zeros((xy.shape[0], 3)), "pred": jnp.zeros(xy.shape[0], jnp.int32), "norm": n,
                    "cos_pred": n, "q": n}

        def score_arrays(self, xy, pen, valid, batch_size=256):  # a raster model's: no length fitting
            from sketchjax.classifier import score_in_batches

            return score_in_batches(self.scores, xy, pen, valid, batch_size)

        def feature_arrays(self, xy, pen, valid, batch_size=256):  # unit 0: the point count; unit 1 never on
            n = np.sum(np.asarray(valid), axis=-1).astype(np.float32)
            return np.stack([n, np.zeros_like(n)], axis=-1)

    r = program.evaluate_run(PointCounter(), pathlib.Path("fake"), arrays, argparse.Namespace(batch=8, seed=0), None)
    assert r["feature_units"] == {"dead_units": 0.5, "active_per_sketch": 0.5, "mean_pairwise_cos": 1.0}
    # the score counts points: its AUCs mirror the content-blind "fewer points" reference
    ink = program.ink_reference_auc(arrays, arrays["length_stratum"])["fewer_points"]
    assert r["recognized_auc"]["score"] == pytest.approx(1.0 - ink["all"], abs=1e-6)
    assert r["recognized_auc_length_matched"]["score"] == pytest.approx(1.0 - ink["length_matched"], abs=1e-6)
    for kind, expect in (("truncate", 1.0), ("delete_strokes", 1.0), ("scribbles", 0.0), ("jitter", 0.5)):
        assert [row["vs_clean_score"]["mean"] for row in r["degradation"][kind]] == [expect] * 4, kind
    # the moderate means: 0.625 over the four degradations, 0.5 over SPEC §7's three; the
    # content-blind reference of the report is exactly this score
    assert r["moderate_agreement_ci_score"]["mean"] == r["moderate_agreement_score"] == 0.625
    assert r["moderate_agreement_spec_kinds_score"]["mean"] == 0.5
    assert r["moderate_agreement_spec_kinds_score"]["kinds"] == ["jitter", "delete_strokes", "scribbles"]
    ink = program.ink_reference_degradation(arrays, 0)
    assert ink["moderate_agreement"]["mean"] == 0.625 and ink["moderate_agreement_spec_kinds"]["mean"] == 0.5
    for kind, rows in r["degradation"].items():
        assert [row["vs_clean"] for row in ink["degradation"][kind]] == [row["vs_clean_score"]["mean"] for row in rows]
    one_stroke = float(np.mean([len(rec.sketch.pen) and int(np.sum(np.asarray(rec.sketch.pen) < 0.5)) == 1
                                for rec in records]))
    assert r["degradation"]["delete_strokes"][0]["unchanged_fraction"] == pytest.approx(one_stroke)
    # consecutive severities: a copy equal to the previous one (deletion rounds to whole strokes:
    # 10% and 25% of a 2-5 stroke sketch are both one stroke) is excluded, not a tie
    for kind, expect in (("truncate", 1.0), ("delete_strokes", 1.0), ("scribbles", 0.0), ("jitter", 0.5)):
        assert [row["vs_previous_score"] for row in r["degradation"][kind]] == [expect] * 4, kind
    same = [row["same_as_previous_fraction"] for row in r["degradation"]["delete_strokes"]]
    assert same[0] == pytest.approx(one_stroke) and same[1] > same[0]

    class NaNAtThree(PointCounter):  # a broken model: NaN quality for one sketch
        @staticmethod
        def scores(xy, pen, valid):
            out = PointCounter.scores(xy, pen, valid)
            return {**out, "q": jnp.where(jnp.sum(valid, axis=-1) == np.sum(arrays["valid"][3]), jnp.nan, out["q"])}

    with pytest.raises(SystemExit, match=r"non-finite score \(q\) for \d+ of 20 sketches, first at index"):
        program.evaluate_run(NaNAtThree(), pathlib.Path("fake"), arrays, argparse.Namespace(batch=8, seed=0), None)


def test_moderate_agreement_mean_of_cells_and_bootstrap_interval():
    """The moderate summary is the mean of the cells' agreements over their changed pairs, its
    interval a bootstrap over sketches shared by all cells (checked against the normal
    approximation for one repeated cell)."""
    program = _program("quality")
    rng = np.random.default_rng(0)
    n = 600
    wins = (rng.random(n) < 0.7).astype(np.float64)
    every = np.ones(n, bool)
    cells = {(k, i): (wins, every) for k in program.DEGRADATIONS for i in program.MODERATE}
    half = np.arange(n) < n // 2
    cells[("truncate", program.MODERATE[0])] = (np.where(half, 1.0, 0.0), half)  # 1 on its changed half
    got = program.moderate_agreement(cells, list(program.DEGRADATIONS), seed=0)
    assert got["mean"] == pytest.approx((7 * wins.mean() + 1.0) / 8)
    spec = program.moderate_agreement(cells, program.SPEC_KINDS, seed=0)
    assert spec["mean"] == pytest.approx(wins.mean()) and spec["n"] == n
    se = np.sqrt(wins.mean() * (1 - wins.mean()) / n)
    assert spec["lo"] == pytest.approx(wins.mean() - 1.96 * se, abs=0.25 * se)
    assert spec["hi"] == pytest.approx(wins.mean() + 1.96 * se, abs=0.25 * se)
    assert got["lo"] < got["mean"] < got["hi"]
    cells[("jitter", program.MODERATE[1])] = (wins, np.zeros(n, bool))  # a cell no copy changed
    assert np.isnan(program.moderate_agreement(cells, program.SPEC_KINDS, seed=0)["mean"])


def test_attribution_eval_refuses_a_sequence_run_by_name(tiny_runs):
    """eval/attribution.py explains raster models; a BiLSTM workdir is refused, naming why."""
    spec = importlib.util.spec_from_file_location("eval_attribution", REPO / "eval" / "attribution.py")
    program = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(program)
    with pytest.raises(SystemExit, match=r"a bilstm run reads point sequences, not rasters"):
        program.resnet_model(tiny_runs["gacl"])
