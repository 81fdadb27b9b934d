"""Tests of sketchjax.training: data sources, schedules, steps, checkpoints, resumption, sharding.

The tiny task used throughout is a linear softmax classifier on Gaussian blobs, with a mutable
collection (a running input mean) and a per-step random jitter, so restoring every part of the
state (params, optimiser, collections, key, data position) is needed for an exact resume.
Subprocess tests import this file to run the same task (``python -c "import test_training"``).
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
import unittest.mock
import pathlib
import random
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sketchjax import training
from sketchjax.training import ArraySource, Task

TESTS_DIR = pathlib.Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
DIM, CLASSES = 4, 3


# ----------------------------------------------------------------------------- the tiny task


def blobs(num: int, seed: int) -> dict[str, np.ndarray]:
    """``x float32[num, 4]`` around one of three centres, ``y int32[num]`` its centre."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, CLASSES, num)
    centres = np.eye(CLASSES, DIM) * 2.0
    x = centres[y] + rng.standard_normal((num, DIM))
    return {"x": x.astype(np.float32), "y": y.astype(np.int32)}


def linear_task() -> Task:
    def init_fn(rng, batch):
        w = 0.1 * jax.random.normal(rng, (batch["x"].shape[-1], CLASSES))
        return {"params": {"w": w, "b": jnp.zeros(CLASSES)}, "stats": {"mean": jnp.zeros(batch["x"].shape[-1])}}

    def loss_fn(params, collections, batch, rng):
        x = batch["x"] + 0.01 * jax.random.normal(rng, batch["x"].shape)
        logits = x @ params["w"] + params["b"][None, :]
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]).mean()
        accuracy = jnp.mean(jnp.argmax(logits, -1) == batch["y"])
        stats = {"mean": 0.9 * collections["stats"]["mean"] + 0.1 * batch["x"].mean(0)}
        return loss, ({"accuracy": accuracy}, {"stats": stats})

    def eval_fn(params, collections, batch):
        logits = batch["x"] @ params["w"] + params["b"][None, :]
        per_example = {
            "loss": optax.softmax_cross_entropy_with_integer_labels(logits, batch["y"]),
            "accuracy": jnp.argmax(logits, -1) == batch["y"],
        }
        return training.masked_sums(per_example, batch.get("mask"))

    return Task(init_fn, loss_fn, eval_fn)


def run_linear(workdir, *, num_epochs=3, batch_size=16, num_train=256, sleep=0.0, mesh=None,
               checkpoint_every_steps=10, hooks=(), config=None, task=None, **kwargs):
    """Train the linear task; used in-process and by the subprocess tests."""
    train = ArraySource(blobs(num_train, 0), batch_size, seed=1)
    held_out = ArraySource(blobs(100, 1), batch_size, shuffle=False, drop_remainder=False)
    steps_per_epoch = train.steps_per_epoch
    tx, schedule = training.optimizer_from_config(
        {"name": "adam", "learning_rate": 0.05, "schedule": "sgdr", "restart_every": "epoch", "clip_norm": 1.0},
        steps_per_epoch=steps_per_epoch, total_steps=num_epochs * steps_per_epoch,
    )
    hooks = list(hooks) + ([lambda step, state: time.sleep(sleep)] if sleep else [])
    return training.fit(
        linear_task() if task is None else task, tx, train, workdir, num_epochs=num_epochs, seed=3, eval_source=held_out,
        learning_rate_fn=schedule, log_every_steps=4, checkpoint_every_steps=checkpoint_every_steps,
        keep_checkpoints=2, config={"test": "linear", "num_epochs": num_epochs} if config is None else config, mesh=mesh,
        show_progress=False, hooks=hooks, **kwargs,
    )


def state_arrays(state) -> dict[str, np.ndarray]:
    """Every leaf of a TrainState as a NumPy array, keyed by its tree path."""
    leaves = jax.tree_util.tree_leaves_with_path(jax.device_get(state))
    return {jax.tree_util.keystr(path): np.asarray(leaf) for path, leaf in leaves}


def run_python(code: str, *, env_extra=None, timeout=120) -> subprocess.CompletedProcess:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", **(env_extra or {})}
    return subprocess.run([sys.executable, "-c", code], cwd=TESTS_DIR, env=env, capture_output=True,
                          text=True, timeout=timeout)


def subprocess_script(body: str) -> str:
    return f"import sys; sys.path.insert(0, {str(TESTS_DIR)!r})\n" + textwrap.dedent(body)


# ----------------------------------------------------------------------------- data sources


def test_array_source_is_deterministic_and_resumes_mid_epoch():
    arrays = {"x": np.arange(50, dtype=np.float32)[:, None], "y": np.arange(50)}
    source = ArraySource(arrays, 8, seed=7)
    assert isinstance(source, training.DataSource)
    assert source.steps_per_epoch == 6
    epoch2 = list(source.epoch_batches(2))
    again = list(ArraySource(arrays, 8, seed=7).epoch_batches(2))
    assert len(epoch2) == 6
    for a, b in zip(epoch2, again):
        np.testing.assert_array_equal(a["x"], b["x"])
    for a, b in zip(epoch2[4:], source.epoch_batches(2, start=4)):
        np.testing.assert_array_equal(a["y"], b["y"])
    seen = np.concatenate([b["y"] for b in epoch2])
    assert len(set(seen)) == 48  # no repeats within an epoch
    assert not np.array_equal(seen, np.concatenate([b["y"] for b in source.epoch_batches(3)]))
    np.testing.assert_array_equal(epoch2[0]["x"][:, 0], epoch2[0]["y"])  # rows stay aligned


def test_array_source_pads_last_batch_with_mask():
    source = ArraySource({"y": np.arange(10)}, 4, shuffle=False, drop_remainder=False)
    batches = list(source.epoch_batches(0))
    assert source.steps_per_epoch == 3 and len(batches) == 3
    assert all(b["y"].shape == (4,) and b["mask"].shape == (4,) for b in batches)
    np.testing.assert_array_equal(batches[-1]["mask"], [True, True, False, False])
    np.testing.assert_array_equal(batches[-1]["y"], [8, 9, 0, 0])


def test_array_source_process_slices_make_up_the_global_batch():
    arrays = {"y": np.arange(40)}
    whole = list(ArraySource(arrays, 8, seed=2).epoch_batches(1))
    parts = [list(ArraySource(arrays, 8, seed=2, process_index=i, process_count=2).epoch_batches(1)) for i in (0, 1)]
    for b, p0, p1 in zip(whole, *parts):
        np.testing.assert_array_equal(b["y"], np.concatenate([p0["y"], p1["y"]]))
    with pytest.raises(ValueError, match="divisible"):
        ArraySource(arrays, 7, process_count=2)
    with pytest.raises(ValueError, match="common length"):
        ArraySource({"a": np.zeros(3), "b": np.zeros(4)}, 2)


# ----------------------------------------------------------------------------- optimisers, schedules


def test_warm_restart_schedule_matches_formula_and_optax():
    peak, period, low = 1e-3, 10, 1e-5
    schedule = jax.jit(training.warm_restart_schedule(peak, period, min_value=low))
    steps = np.arange(35)
    u = steps % period
    expected = low + (peak - low) * 0.5 * (1 + np.cos(np.pi * u / period))  # PyTorch CosineAnnealingWarmRestarts
    np.testing.assert_allclose(schedule(steps), expected, rtol=1e-5)  # float32
    assert schedule(0) == pytest.approx(peak) and schedule(period) == pytest.approx(peak)  # restarts
    reference = optax.sgdr_schedule(
        [dict(init_value=peak, peak_value=peak, decay_steps=period, warmup_steps=0, end_value=low)] * 4
    )
    np.testing.assert_allclose(schedule(steps), [reference(s) for s in steps], rtol=1e-5)


def test_warmup_then_restarts_counted_after_warmup():
    schedule = training.warm_restart_schedule(1.0, 4, warmup_steps=2)
    np.testing.assert_allclose([schedule(s) for s in range(8)],
                               [0.0, 0.5, 1.0, 0.8535534, 0.5, 0.1464466, 1.0, 0.8535534], atol=1e-6)
    constant = training.make_schedule(2.0, "constant", warmup_steps=4)
    assert float(constant(2)) == pytest.approx(1.0) and float(constant(10)) == pytest.approx(2.0)
    cosine = training.make_schedule(1.0, "cosine", total_steps=10)
    assert float(cosine(0)) == pytest.approx(1.0) and float(cosine(10)) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="restart_every"):
        training.make_schedule(1.0, "sgdr")
    with pytest.raises(ValueError, match="unknown schedule"):
        training.make_schedule(1.0, "linear")


def test_optimizer_factory_clips_and_decays():
    params = {"w": jnp.ones(3)}
    grads = {"w": jnp.full(3, 100.0)}
    tx = training.make_optimizer("sgd", 1.0, momentum=0.0, clip_norm=1.0)
    updates, _ = tx.update(grads, tx.init(params), params)
    assert float(optax.tree.norm(updates)) == pytest.approx(1.0, rel=1e-5)
    tx = training.make_optimizer("adamw", 0.1, weight_decay=0.5)
    updates, _ = tx.update({"w": jnp.zeros(3)}, tx.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.1 * 0.5 * np.ones(3), rtol=1e-6)  # decoupled decay only
    with pytest.raises(ValueError, match="unknown optimizer"):
        training.make_optimizer("lamb", 0.1)
    with pytest.raises(ValueError, match="adamw"):
        training.make_optimizer("adam", 0.1, weight_decay=0.1)
    # a clip norm of 0 stopped training and a negative one flipped every update; a negative
    # learning rate ascends
    for kwargs in ({"clip_norm": 0.0}, {"clip_norm": -1.0}, {"clip_norm": float("nan")}, {"weight_decay": -0.1}):
        with pytest.raises(ValueError, match="clip_norm|weight_decay"):
            training.make_optimizer("sgd", 1.0, **kwargs)
    # a NaN or negative momentum (or Adam decay / eps) trained NaN, blamed on the learning rate
    for name, kwargs in (("sgd", {"momentum": float("nan")}), ("sgd", {"momentum": -3.0}), ("adam", {"b1": 1.0}),
                         ("adam", {"b2": 2.0}), ("adamw", {"eps": -1.0}), ("adam", {"eps": float("inf")}),
                         ("sgd", {"momentum": "0.5"})):
        with pytest.raises(ValueError, match=rf"{next(iter(kwargs))} must be"):
            training.make_optimizer(name, 1.0, **kwargs)
    training.make_optimizer("sgd", 1.0, momentum=None)  # no momentum, as optax.sgd takes it
    with pytest.raises(ValueError, match="momentum must be a number in"):
        training.optimizer_from_config({"name": "sgd", "learning_rate": 0.1, "schedule": "constant", "momentum": "fast"},
                                       steps_per_epoch=1, total_steps=1)
    for lr in (-1e-3, 0.0, float("inf"), "fast"):
        with pytest.raises(ValueError, match="learning_rate"):
            training.optimizer_from_config({"name": "adam", "learning_rate": lr, "schedule": "constant"},
                                           steps_per_epoch=1, total_steps=1)
    # a typo in a config file's optimizer section trained with the default; a negative floor
    # ended a cosine in gradient ascent; a negative warmup was taken as none
    for bad, problem in (({"lerning_rate": 0.5}, r"unknown key\(s\) \['lerning_rate'\]"),
                         ({"schedule": "cosine", "min_learning_rate": -1e-3}, "min_learning_rate must be in"),
                         ({"min_learning_rate": 0.1}, "min_learning_rate must be in"),  # above the peak
                         ({"schedule": "cosine", "warmup_steps": -5}, "warmup_steps must be an integer >= 0"),
                         ({"warmup_steps": 2.5}, "warmup_steps must be an integer >= 0"),
                         # `--set optimizer.restart_every=1e3` stays a string (the default "epoch" is one):
                         # a bad one failed inside int() naming neither the key nor the value
                         ({"schedule": "sgdr", "restart_every": "ten"}, r"restart_every must be 'epoch' or .* got 'ten'"),
                         ({"schedule": "sgdr", "restart_every": 2.5}, "restart_every must be 'epoch' or"),
                         ({"schedule": "sgdr", "restart_every": -4}, "restart_every must be 'epoch' or"),
                         ({"schedule": "sgdr", "restart_every": True}, "restart_every must be 'epoch' or")):
        with pytest.raises(ValueError, match=problem):
            training.optimizer_from_config({"name": "adam", "learning_rate": 1e-3, **bad}, steps_per_epoch=2,
                                           total_steps=10)
    rates = {}
    for every in ("1e1", 10, 10.0, "10"):  # one schedule, however the number is spelled
        _, schedule = training.optimizer_from_config(
            {"name": "adam", "learning_rate": 1e-3, "schedule": "sgdr", "restart_every": every}, steps_per_epoch=2,
            total_steps=30)
        rates[every] = [float(schedule(t)) for t in (0, 5, 10, 15)]
    assert len({tuple(r) for r in rates.values()}) == 1 and rates["10"][0] == rates["10"][2]  # restarts at 10
    for none in ("0", 0, None):  # no restarts: fine for a schedule that has none
        training.optimizer_from_config({"name": "adam", "learning_rate": 1e-3, "schedule": "cosine",
                                        "restart_every": none}, steps_per_epoch=2, total_steps=30)


def test_frozen_parameters_stay_out_of_the_clipping_norm():
    """With lr_scale 0 on the encoder and clip_norm set, the head trains as if the encoder had
    no gradient (the encoder's large gradient shrank the head's update ~170x), and the
    optimiser state has make_optimizer's layout (checkpoints of such runs restore)."""
    params = {"encoder": jnp.zeros(3), "head": jnp.zeros(2)}
    cfg = {"name": "sgd", "momentum": 0.0, "learning_rate": 1.0, "schedule": "constant", "clip_norm": 1.0}
    tx, _ = training.optimizer_from_config({**cfg, "lr_scale": {"encoder": 0.0}}, steps_per_epoch=1, total_steps=1)
    state = tx.init(params)
    for enc in (0.0, 100.0):
        upd, _ = tx.update({"encoder": jnp.full(3, enc), "head": jnp.array([0.3, 0.4])}, state, params)
        np.testing.assert_allclose(upd["head"], [-0.3, -0.4], rtol=1e-6)
        np.testing.assert_array_equal(upd["encoder"], 0.0)
    upd, _ = tx.update({"encoder": jnp.full(3, 100.0), "head": jnp.array([3.0, 4.0])}, state, params)
    np.testing.assert_allclose(upd["head"], [-0.6, -0.8], rtol=1e-6)  # still clipped, over the head alone
    # a non-zero multiplier is a learning-rate multiplier: its gradients stay in the norm
    tx, _ = training.optimizer_from_config({**cfg, "lr_scale": {"encoder": 0.5}}, steps_per_epoch=1, total_steps=1)
    assert jax.tree_util.tree_structure(tx.init(params)) == jax.tree_util.tree_structure(state)
    upd, _ = tx.update({"encoder": jnp.array([0.0, 0.0, 4.0]), "head": jnp.array([3.0, 0.0])}, tx.init(params), params)
    np.testing.assert_allclose(upd["head"], [-0.6, 0.0], rtol=1e-6)


def test_lr_scale_multiplies_each_parameter_paths_updates():
    params = {"encoder": {"conv": {"kernel": jnp.ones(2)}, "dense": {"kernel": jnp.ones(2)}},
              "head": {"kernel": jnp.ones(3)}, "encoder_extra": jnp.ones(1)}
    grads = jax.tree_util.tree_map(lambda p: jnp.arange(1.0, p.size + 1.0), params)
    plain = training.make_optimizer("adam", 0.1)
    scaled = optax.chain(plain, training.scale_by_path({"encoder": 0.1, "encoder/dense": 0.0}))
    ref, _ = plain.update(grads, plain.init(params), params)
    out, _ = scaled.update(grads, scaled.init(params), params)
    np.testing.assert_allclose(out["encoder"]["conv"]["kernel"], 0.1 * ref["encoder"]["conv"]["kernel"], rtol=1e-6)
    np.testing.assert_array_equal(out["encoder"]["dense"]["kernel"], 0.0)  # the longest prefix wins: frozen
    np.testing.assert_array_equal(out["head"]["kernel"], ref["head"]["kernel"])
    np.testing.assert_array_equal(out["encoder_extra"], ref["encoder_extra"])  # whole path components only
    # through the config: the same chain, and a typo or a bad factor is an error at init
    tx, _ = training.optimizer_from_config({"name": "adam", "learning_rate": 0.1, "schedule": "constant",
                                            "lr_scale": {"encoder": 0.1, "encoder/dense": 0}},
                                           steps_per_epoch=1, total_steps=1)
    cfg_out, _ = jax.jit(tx.update)(grads, tx.init(params), params)
    jax.tree_util.tree_map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6), cfg_out, out)
    with pytest.raises(ValueError, match=r"no parameter under \['encodr'\].*'encoder', 'encoder_extra', 'head'"):
        training.scale_by_path({"encodr": 0.1}).init(params)
    # frozen means a zero update, even where the optimiser's is not finite
    nan_grads = jax.tree_util.tree_map(lambda g: jnp.full_like(g, jnp.nan), grads)
    frozen, _ = scaled.update(nan_grads, scaled.init(params), params)
    np.testing.assert_array_equal(frozen["encoder"]["dense"]["kernel"], 0.0)
    for bad in ({"head": -1.0}, {"head": float("nan")}, {"": 0.5}, {"encoder": 0.1, "encoder/": 0.2}):
        with pytest.raises(ValueError, match="lr_scale"):
            training.scale_by_path(bad)
    # a bare number (`--set optimizer.lr_scale=0.0` meant as "frozen") is refused, not ignored
    with pytest.raises(ValueError, match=r"lr_scale must be None or .* got 0.0"):
        training.optimizer_from_config({"name": "adam", "learning_rate": 0.1, "schedule": "constant", "lr_scale": 0.0},
                                       steps_per_epoch=1, total_steps=1)
    # a run saved before lr_scale existed resumes without a config difference
    from sketchjax.training.loop import _changed_keys

    now = {"optimizer": training.default_config()["optimizer"], "a": 1}
    saved_before = {"optimizer": {k: v for k, v in now["optimizer"].items() if k != "lr_scale"}, "a": 1}
    assert _changed_keys(saved_before, now) == []
    assert _changed_keys(saved_before, {**now, "optimizer": {**now["optimizer"], "lr_scale": {"encoder": 0.1}}}) == ["optimizer"]


# ----------------------------------------------------------------------------- steps


def test_train_and_eval_steps_compile_once_and_donate():
    mesh = training.data_mesh()
    task = linear_task()
    source = ArraySource(blobs(37, 0), 8, seed=0, drop_remainder=False)
    batches = list(source.epoch_batches(0))
    assert batches[-1]["mask"].sum() == 5  # a padded last batch: same shape, no new compilation
    tx = optax.adam(0.1)
    state = training.create_train_state(task, tx, batches[0], 0, mesh)
    train_step = training.make_train_step(task.loss_fn, tx, mesh)
    eval_step = training.make_eval_step(task.eval_fn, mesh)
    for batch in batches:
        old = state
        state, metrics = train_step(state, training.shard_batch(batch, mesh))
        assert old.params["w"].is_deleted()  # donated
        eval_step(state, training.shard_batch(batch, mesh))
    assert set(metrics) == {"loss", "accuracy", "grad_norm"}
    assert int(state.step) == len(batches)
    assert train_step._cache_size() == 1
    assert eval_step._cache_size() == 1


def test_loss_fn_declaring_step_receives_the_step_count():
    mesh = training.data_mesh()
    task = linear_task()

    def loss_fn(params, collections, batch, rng, step):
        loss, (metrics, new) = task.loss_fn(params, collections, batch, rng)
        return loss * (1.0 + 0.0 * step), ({**metrics, "step_seen": step}, new)

    source = ArraySource(blobs(32, 0), 8, seed=0)
    tx = optax.sgd(0.1)
    batches = list(source.epoch_batches(0))
    state = training.create_train_state(task, tx, batches[0], 0, mesh)
    train_step = training.make_train_step(loss_fn, tx, mesh)
    seen = []
    for batch in batches:
        state, metrics = train_step(state, training.shard_batch(batch, mesh))
        seen.append(int(metrics["step_seen"]))
    assert seen == list(range(len(batches))) and train_step._cache_size() == 1


def test_evaluate_is_exact_over_a_padded_last_batch():
    mesh = training.data_mesh()
    task = linear_task()
    data = blobs(21, 5)
    state = training.create_train_state(task, optax.sgd(0.1), {k: v[:4] for k, v in data.items()}, 0, mesh)
    metrics = training.evaluate(training.make_eval_step(task.eval_fn, mesh), state,
                                ArraySource(data, 4, shuffle=False, drop_remainder=False), mesh)
    logits = data["x"] @ np.asarray(state.params["w"]) + np.asarray(state.params["b"])
    assert metrics["count"] == 21
    assert metrics["accuracy"] == pytest.approx(np.mean(logits.argmax(-1) == data["y"]))
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, data["y"])
    assert metrics["loss"] == pytest.approx(float(np.mean(loss)), rel=1e-5)


def test_masked_sums_weights_and_counts():
    sums = training.masked_sums({"a": jnp.array([1.0, 2.0, 3.0])}, jnp.array([True, False, True]))
    assert float(sums["a"]) == 4.0 and float(sums["count"]) == 2.0
    assert float(training.masked_sums({"a": jnp.ones(5)})["count"]) == 5.0


def test_batch_size_must_divide_over_devices():
    with pytest.raises(ValueError, match="leading batch axis"):
        training.shard_batch({"x": np.zeros((4, 2)), "y": np.zeros(3)}, training.data_mesh())


# ----------------------------------------------------------------------------- the loop


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """Three epochs (48 steps) of the linear task, with the number of XLA compilations seen
    after each step; shared by the tests that only read it (training compiles dominate)."""
    workdir = tmp_path_factory.mktemp("reference")
    compiles, marks = [], {}

    def listener(event, duration, **kwargs):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        result = run_linear(workdir, num_epochs=3, hooks=[lambda step, state: marks.__setitem__(step, len(compiles))])
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    return workdir, result, marks


def test_fit_learns_logs_and_checkpoints(reference_run):
    tmp_path, result, _ = reference_run
    assert result.resumed_from is None
    assert result.eval_metrics["count"] == 100
    assert result.eval_metrics["accuracy"] > 0.8
    records = training.read_metrics(tmp_path / "metrics.jsonl")
    train_records = [r for r in records if r["split"] == "train"]
    assert [r["step"] for r in train_records] == list(range(4, 49, 4))
    assert train_records[-1]["loss"] < train_records[0]["loss"]
    assert {"step", "epoch", "time", "elapsed", "loss", "accuracy", "grad_norm", "learning_rate",
            "steps_per_s", "examples_per_s", "window_steps"} <= set(train_records[0])
    assert {r["window_steps"] for r in train_records} == {4}  # log_every_steps
    assert [r["step"] for r in records if r["split"] == "eval"] == [16, 32, 48]
    assert json.loads((tmp_path / "config.json").read_text()) == {"test": "linear", "num_epochs": 3}
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [40, 48]  # keep 2, final
    again = run_linear(tmp_path, num_epochs=3)  # complete: restores, trains nothing
    assert again.resumed_from == 48
    assert again.eval_metrics == pytest.approx(result.eval_metrics)


def test_fit_compiles_nothing_after_the_first_epoch(reference_run):
    _, _, marks = reference_run
    assert marks[1] >= 1  # the train step compiled on the first step ...
    # ... and after step 17 (past epoch 1's evaluation of padded batches and the save at 10),
    # nothing compiles in two more epochs of steps, evaluations and saves.
    assert marks[48] == marks[17]


def test_resume_after_an_exception_matches_uninterrupted(reference_run, tmp_path):
    reference = state_arrays(reference_run[1].state)

    def crash(step, state):
        if step == 23:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_linear(tmp_path / "run", num_epochs=3, hooks=[crash])
    resumed = run_linear(tmp_path / "run", num_epochs=3)
    assert resumed.resumed_from == 20  # checkpoints every 10 steps: mid-epoch 1
    for key, value in state_arrays(resumed.state).items():
        np.testing.assert_array_equal(value, reference[key], err_msg=key)
    train_records = [r for r in training.read_metrics(tmp_path / "run" / "metrics.jsonl") if r["split"] == "train"]
    steps = [r["step"] for r in train_records]
    assert steps == sorted(set(steps))  # records of the redone steps were dropped, not duplicated
    assert sum(r["window_steps"] for r in train_records) == 48  # the kept windows tile the run once


def test_resume_with_a_changed_config_is_refused_unless_allowed(tmp_path, caplog):
    run_linear(tmp_path, num_epochs=1)  # saved config: {"test": "linear", "num_epochs": 1}
    with_default = lambda config: {"width": 8, **config}  # noqa: E731  a key added since, at its default
    later = {"test": "linear", "num_epochs": 1, "width": 8}
    caplog.set_level(logging.WARNING, logger="sketchjax.training")

    def warnings():
        found = [r.getMessage() for r in caplog.records if "differs from the checkpoint" in r.getMessage()]
        caplog.clear()
        return found

    config_json = (tmp_path / "config.json").read_text()
    with pytest.raises(ValueError, match=r"checkpoint at step 16 was trained with another config \(width: \(unset\) -> 8\)"):
        run_linear(tmp_path, num_epochs=1, config=later)
    assert (tmp_path / "config.json").read_text() == config_json  # a refused resume writes nothing
    assert run_linear(tmp_path, num_epochs=1, config=later, allow_config_change=True).resumed_from == 16
    assert warnings() == ["resuming with a config that differs from the checkpoint's in ['width']: width: (unset) -> 8 "
                          "(with the first checkpoint under the new config, the old one is kept as "
                          "config.until-step-16.json)"]
    # the run was complete: nothing trained with the new config, config.json still the checkpoint's
    assert (tmp_path / "config.json").read_text() == config_json
    assert not (tmp_path / "config.until-step-16.json").exists()
    run_linear(tmp_path, num_epochs=1, config=later, normalise_config=with_default)
    assert warnings() == []
    with pytest.raises(ValueError, match=r"width: 8 -> 9"):
        run_linear(tmp_path, num_epochs=1, config={**later, "width": 9}, normalise_config=with_default)
    run_linear(tmp_path, num_epochs=1)  # the very config it was saved with
    assert warnings() == []
    # a longer run (and the loop's bookkeeping) may change without allow_config_change
    longer = run_linear(tmp_path, num_epochs=2, config={"test": "linear", "num_epochs": 2})
    assert longer.resumed_from == 16 and warnings() == [
        "resuming with a config that differs from the checkpoint's in ['num_epochs']: num_epochs: 1 -> 2 "
        "(with the first checkpoint under the new config, the old one is kept as config.until-step-16.json); "
        "the learning-rate schedule, and any other laid over the run's length (a GACL head's soft-binning cut "
        "points), now span the new length: unless it does not depend on the length (constant, sgdr), the run "
        "goes on differently from one started with this num_epochs"]
    assert json.loads((tmp_path / "config.until-step-16.json").read_text()) == {"test": "linear", "num_epochs": 1}
    assert json.loads((tmp_path / "config.json").read_text()) == {"test": "linear", "num_epochs": 2}
    with pytest.raises(ValueError, match=r"checkpoint is at step 32, beyond this config's run length \(1 epoch\(s\) = 16"):
        run_linear(tmp_path, num_epochs=1)  # would have handed back the 2-epoch model as "complete"

    # train_and_evaluate hands the experiment's normaliser, and allow_config_change, to fit
    def build(config):
        return training.Experiment(task=linear_task(), train_source=ArraySource(blobs(64, 0), 16, seed=1),
                                   normalise_config=with_default)

    saved = {"test": "linear", "num_epochs": 1, "progress_bar": False}
    training.train_and_evaluate(saved, tmp_path / "tae", build)
    training.train_and_evaluate({**saved, "width": 8}, tmp_path / "tae", build)
    assert warnings() == []
    with pytest.raises(ValueError, match="width: 8 -> 9"):
        training.train_and_evaluate({**saved, "width": 9}, tmp_path / "tae", build)
    training.train_and_evaluate({**saved, "width": 9}, tmp_path / "tae", build, allow_config_change=True)
    assert [w.split(":")[0] for w in warnings()] == ["resuming with a config that differs from the checkpoint's in ['width']"]


def test_a_changed_config_replaces_config_json_only_with_its_first_checkpoint(tmp_path):
    """Killed before its first save, a resume with another config left config.json describing
    a checkpoint it did not train (load_classifier builds the model from config.json)."""
    run_linear(tmp_path, num_epochs=1)  # checkpoint at step 16
    before = (tmp_path / "config.json").read_text()
    changed = {"test": "linear", "num_epochs": 3, "lr": 0.5}

    def crash(step, state):
        if step == 18:  # before the save at step 20
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_linear(tmp_path, num_epochs=3, config=changed, allow_config_change=True, hooks=[crash])
    assert (tmp_path / "config.json").read_text() == before
    assert not (tmp_path / "config.until-step-16.json").exists()
    assert run_linear(tmp_path, num_epochs=3, config=changed, allow_config_change=True).resumed_from == 16
    assert json.loads((tmp_path / "config.json").read_text()) == changed
    assert (tmp_path / "config.until-step-16.json").read_text() == before
    # killed right after the first save under a changed config (found by an audit: the old
    # config's record was written after the save, so the rerun, which finds nothing pending,
    # never wrote it)
    later = {**changed, "num_epochs": 4, "lr": 0.25}
    real_save = training.CheckpointStore.save

    def killed_after_the_save(self, *args, **kwargs):
        real_save(self, *args, **kwargs)
        self.wait()
        raise KeyboardInterrupt

    with unittest.mock.patch.object(training.CheckpointStore, "save", killed_after_the_save):
        with pytest.raises(KeyboardInterrupt):
            run_linear(tmp_path, num_epochs=4, config=later, allow_config_change=True)
    assert json.loads((tmp_path / "config.until-step-48.json").read_text()) == changed
    assert run_linear(tmp_path, num_epochs=4, config=later, allow_config_change=True).resumed_from > 48
    assert json.loads((tmp_path / "config.json").read_text()) == later


def test_a_shorter_run_length_is_refused_unless_allowed(tmp_path):
    """Found by an audit: a run of 8 epochs killed at step 128 and re-run with num_epochs=2 was
    reported "already complete", its cosine rate never annealed (the schedule is laid over 8)."""
    def crash(step, state):
        if step == 12:  # after the save at step 10
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_linear(tmp_path, num_epochs=3, hooks=[crash])
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(training.ResumeRefusedError, match=r"num_epochs: 3 -> 1\); a run of 3 epochs stopped early "
                                                          r"is not what a run of 1 trains"):
        run_linear(tmp_path, num_epochs=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert run_linear(tmp_path, num_epochs=1, allow_config_change=True).resumed_from == 10


def test_a_checkpoint_of_another_model_names_the_changed_settings(tmp_path):
    """The refusal listed array shapes only; the config change that made them is named too."""
    def task_with_extra():
        base = linear_task()

        def init_fn(rng, batch):
            variables = base.init_fn(rng, batch)
            return {**variables, "params": {**variables["params"], "extra": jnp.zeros(2)}}

        return Task(init_fn, base.loss_fn, base.eval_fn)

    run_linear(tmp_path, num_epochs=1)
    with pytest.raises(training.IncompatibleCheckpointError, match=r"expected only: \[.*'params/extra .*The settings "
                                                                    r"that differ from config.json's .*: extra: \(unset\) -> 2"):
        run_linear(tmp_path, num_epochs=1, config={"test": "linear", "num_epochs": 1, "extra": 2}, task=task_with_extra())


def test_train_and_evaluate_refuses_fractional_settings(tmp_path):
    """int() turned num_epochs 2.5 into 2 (while the schedules were built for 2.5) and True into 1."""
    def build(config):
        return training.Experiment(task=linear_task(), train_source=ArraySource(blobs(64, 0), 16, seed=1))

    for key, value in (("num_epochs", 2.5), ("num_epochs", True), ("seed", 1.5), ("log_every_steps", 2.0)):
        with pytest.raises(ValueError, match=f"{key} must be an integer"):
            training.train_and_evaluate({"num_epochs": 1, key: value, "progress_bar": False}, tmp_path / key, build)
        assert not (tmp_path / key).exists()
    with pytest.raises(ValueError, match=r"show_progress \(config progress_bar\) must be true, false or None .*got 'maybe'"):
        training.train_and_evaluate({"num_epochs": 1, "progress_bar": "maybe"}, tmp_path / "bar", build)
    assert not (tmp_path / "bar").exists()

    def broken(config):
        raise ValueError("data.categories: no such category 'catt'")

    with pytest.raises(ValueError, match="no such category"):  # the workdir is locked before the build ...
        training.train_and_evaluate({"num_epochs": 1, "progress_bar": False}, tmp_path / "broken", broken)
    assert not (tmp_path / "broken").exists()  # ... and not left behind, empty, when it fails


def test_config_differences_are_described_as_they_are_compared():
    from sketchjax.training.loop import _changed_keys, _describe_changes

    old = {"seed": 0, "optimizer": {"learning_rate": 0.1}}
    new = {"seed": 1, "optimizer": {"learning_rate": 0.1, "lr_scale": None}}  # lr_scale at its default
    assert _changed_keys(old, new) == ["seed"]
    assert _describe_changes(old, new) == "seed: 0 -> 1"
    assert _describe_changes(old, {**new, "optimizer": {"learning_rate": 0.3}}) == (
        "optimizer.learning_rate: 0.1 -> 0.3; seed: 0 -> 1")


def test_a_run_refused_at_model_initialisation_leaves_no_workdir(tmp_path):
    """Found by an audit: a model setting refused when the model is first initialised (say
    ``dim=30`` with 4 heads) left the new workdir behind with a lock and a checkpoints folder;
    only a config that failed to build was cleaned up.  A workdir that existed is kept."""
    def init_fn(rng, batch):
        raise ValueError("PointTransformer: dim=30 must be divisible by heads=4")

    task = Task(init_fn=init_fn, loss_fn=linear_task().loss_fn)

    def build(config):
        return training.Experiment(task=task, train_source=ArraySource(blobs(64, 0), 16, seed=1))

    workdir = tmp_path / "new"
    with pytest.raises(ValueError, match="dim=30"):
        training.train_and_evaluate({"num_epochs": 1, "progress_bar": False}, workdir, build)
    assert not workdir.exists()
    kept = tmp_path / "kept"
    kept.mkdir()
    with pytest.raises(ValueError, match="dim=30"):
        training.train_and_evaluate({"num_epochs": 1, "progress_bar": False}, kept, build)
    assert kept.is_dir()


def test_loop_settings_are_checked_before_anything_is_written(tmp_path):
    for setting, value in (("keep_checkpoints", 0), ("checkpoint_every_steps", -5), ("log_every_steps", 0),
                           ("eval_every_epochs", -1), ("num_epochs", 0)):
        workdir = tmp_path / setting
        with pytest.raises(ValueError, match=rf"fit: {setting} must be an integer >= [01]"):
            training.fit(linear_task(), optax.sgd(0.1), ArraySource(blobs(64, 0), 16, seed=1), workdir,
                         **{"num_epochs": 1, setting: value})
        assert not workdir.exists()
    (tmp_path / "a_file").write_text("")
    with pytest.raises(NotADirectoryError, match="a_file is a file, not a directory"):
        run_linear(tmp_path / "a_file", num_epochs=1)
    # a checkpoints path that is a file was found at the first save, after up to 1000 steps
    (tmp_path / "w").mkdir()
    (tmp_path / "w" / "checkpoints").write_text("x")
    with pytest.raises(NotADirectoryError, match=r"w/checkpoints is a file, not a directory: the run could not save"):
        run_linear(tmp_path / "w", num_epochs=1)
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == ["checkpoints"]


def test_a_diverging_run_stops_before_checkpointing_nan(tmp_path):
    """Updates turn NaN from step 13: the save at step 15 is refused (FloatingPointError naming
    the steps), the checkpoints before it stay finite, and nothing NaN is saved."""

    def nan_from(count_at):
        def update(updates, state, params=None):
            scale = jnp.where(state >= count_at, jnp.nan, 1.0)
            return jax.tree.map(lambda u: u * scale, updates), state + 1

        return optax.GradientTransformation(lambda params: jnp.zeros((), jnp.int32), update)

    tx = optax.chain(optax.sgd(0.1), nan_from(12))
    with pytest.raises(FloatingPointError, match=r"training loss nan over steps 13-15; stopped before saving "
                                                 r"\(the newest checkpoint, step 10, is kept\)"):
        training.fit(linear_task(), tx, ArraySource(blobs(256, 0), 16, seed=1), tmp_path, num_epochs=2,
                     log_every_steps=4, checkpoint_every_steps=5, keep_checkpoints=2)
    assert sorted(int(p.name) for p in (tmp_path / "checkpoints").iterdir()) == [5, 10]
    resumed = training.fit(linear_task(), optax.chain(optax.sgd(0.1), nan_from(10**6)),
                           ArraySource(blobs(256, 0), 16, seed=1), tmp_path, num_epochs=2,
                           log_every_steps=4, checkpoint_every_steps=5, keep_checkpoints=2)
    assert resumed.resumed_from == 10  # from a finite checkpoint, to a finite end
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(resumed.state.params))


def test_leftover_tmp_and_corrupt_checkpoints_are_ignored(tmp_path):
    run_linear(tmp_path, num_epochs=1)  # checkpoints at 10 and 16
    ckpts = tmp_path / "checkpoints"
    (ckpts / "17.orbax-checkpoint-tmp-1234" / "state").mkdir(parents=True)  # killed mid-save
    (ckpts / "17.orbax-checkpoint-tmp-1234" / "state" / "junk").write_text("partial")
    (ckpts / "30" / "state").mkdir(parents=True)  # looks final but holds garbage
    (ckpts / "30" / "state" / "manifest.ocdbt").write_text("garbage")
    with pytest.warns(UserWarning, match="does not restore|unreadable metadata"):
        result = run_linear(tmp_path, num_epochs=2)
    assert result.resumed_from == 16
    assert int(result.state.step) == 32
    assert not (ckpts / "17.orbax-checkpoint-tmp-1234").exists()
    assert [p.name.split("-")[0] for p in (tmp_path / "checkpoints_corrupt").iterdir()] == ["30"]
    assert sorted(int(p.name) for p in ckpts.iterdir()) == [30, 32]


def _flip_one_bit(step_dir: pathlib.Path) -> pathlib.Path:
    """Flip one bit in the middle of the step's largest array data file (a silent disk error)."""
    data = max((f for f in (step_dir / "state").rglob("*") if f.is_file() and "/d/" in f.as_posix()),
               key=lambda f: f.stat().st_size)
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0x10
    data.write_bytes(bytes(raw))
    return data


def test_a_flipped_bit_in_a_checkpoint_is_caught_by_its_checksum(tmp_path):
    """orbax restores a flipped bit silently as a wrong parameter; the checksums written after
    each save catch it, and the run resumes from the older, intact step."""
    from sketchjax.training.checkpoint import CHECKSUM_FILE, CheckpointStore, checksum_problem

    run_linear(tmp_path, num_epochs=1)  # checkpoints at 10 and 16
    ckpts = tmp_path / "checkpoints"
    for step in (10, 16):
        assert checksum_problem(ckpts / str(step)) is None
        recorded = json.loads((ckpts / str(step) / CHECKSUM_FILE).read_text())["files"]
        assert any(name.startswith("state/") for name in recorded) and "meta/metadata" in recorded
    data = _flip_one_bit(ckpts / "16")
    assert checksum_problem(ckpts / "16") == f"fails its checksum: {data.relative_to(ckpts / '16').as_posix()} changed since it was saved"
    with pytest.warns(UserWarning, match=r"checkpoints/16 fails its checksum: state/.* changed since it was saved"):
        result = run_linear(tmp_path, num_epochs=2)
    assert result.resumed_from == 10
    assert [p.name.split("-")[0] for p in (tmp_path / "checkpoints_corrupt").iterdir()] == ["16"]
    # an async save gets its checksums once committed; a lost file is named too
    store = CheckpointStore(tmp_path / "async", async_save=True)
    store.save(1, {"w": jnp.arange(4.0)}, {"step": 1})
    store.wait()
    assert (tmp_path / "async" / "1" / CHECKSUM_FILE).is_file()
    store.close()
    (tmp_path / "async" / "1" / "meta" / "metadata").unlink()
    assert checksum_problem(tmp_path / "async" / "1") == "lost the file meta/metadata since it was saved"
    # a save killed while writing its checksums left the temporary file in the step's folder for
    # good (found by an audit); the next restore removes it (a dead writer's only)
    from sketchjax.formats._io import _writer_host

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = ckpts / "32" / f".{CHECKSUM_FILE}.{_writer_host()}-{dead.pid}.x1y2.tmp"
    live = ckpts / "32" / f".{CHECKSUM_FILE}.{_writer_host()}-{os.getpid()}.x3y4.tmp"
    stale.write_text("{")
    live.write_text("{")
    assert run_linear(tmp_path, num_epochs=2).resumed_from == 32
    assert not stale.exists() and live.exists()


def test_restoring_a_run_for_evaluation_changes_nothing_in_it(tmp_path, caplog):
    """restore_trained (what evaluation and ``sketchjax quality`` use) opens the checkpoints read-only:
    a damaged newest step is skipped with a warning, not moved aside, and an unfinished save's
    temporary folder (a run still training) is left alone."""
    saved = {"test": "linear", "num_epochs": 1, "progress_bar": False}

    def build(config):
        return training.Experiment(task=linear_task(), train_source=ArraySource(blobs(64, 0), 16, seed=1))

    training.train_and_evaluate({**saved, "checkpoint_every_steps": 2}, tmp_path, build)  # steps 2 and 4
    ckpts = tmp_path / "checkpoints"
    (ckpts / "5.orbax-checkpoint-tmp-99" / "state").mkdir(parents=True)  # a save in progress
    for f in (ckpts / "4" / "state").rglob("*"):
        if f.is_file() and f.stat().st_size > 0:
            f.write_bytes(b"\0" * f.stat().st_size)
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    with pytest.warns(UserWarning, match=r"checkpoints/4 .*skipping it \(read-only: left in place\)"):
        _, state, meta = training.restore_trained(tmp_path, build, {**saved, "checkpoint_every_steps": 2})
    assert meta["step"] == 2 and int(state.step) == 2
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
    # orbax's "Given directory is read only" notice (printed by every evaluation) is dropped
    assert not [r for r in caplog.records if "read only" in r.getMessage()]


def test_checkpoint_of_another_model_is_refused_not_quarantined(tmp_path):
    store = training.CheckpointStore(tmp_path / "checkpoints", keep=2)
    store.save(5, {"w": jnp.zeros(3), "b": jnp.zeros((), jnp.int32)}, {"step": 5})
    store.wait()
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    wider = {"w": jax.ShapeDtypeStruct((4,), jnp.float32), "b": jax.ShapeDtypeStruct((), jnp.int32)}
    with pytest.raises(training.IncompatibleCheckpointError, match=r"\(3,\) float32"):
        store.restore_latest(wider)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before
    # another optimiser: the same shapes plus moments -- named by path, not "e.g. []"
    with_moments = {**wider, "w": jax.ShapeDtypeStruct((3,), jnp.float32), "mu": jax.ShapeDtypeStruct((3,), jnp.float32)}
    with pytest.raises(training.IncompatibleCheckpointError, match=r"saved only: \[\]; expected only: \['mu \(3,\) float32'\]"):
        store.restore_latest(with_moments)
    same = {"w": jax.ShapeDtypeStruct((3,), jnp.float32), "b": jax.ShapeDtypeStruct((), jnp.int32)}
    state, meta = store.restore_latest(same)
    assert meta["step"] == 5 and state["w"].shape == (3,)
    store.close()


def test_checkpoint_with_a_renamed_parameter_is_refused_not_quarantined(tmp_path):
    store = training.CheckpointStore(tmp_path / "checkpoints", keep=2)
    for step in (5, 10):
        store.save(step, {"encoder": {"w": jnp.ones(3)}, "head": {"w": jnp.ones((2, 3))}}, {"step": step})
    store.wait()
    before = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*"))
    renamed = {"encoder": {"w": jax.ShapeDtypeStruct((3,), jnp.float32)},
               "classifier": {"w": jax.ShapeDtypeStruct((2, 3), jnp.float32)}}  # same shapes, new name
    with pytest.raises(training.IncompatibleCheckpointError, match=r"saved only: \['head/w \(2, 3\) float32'\]"):
        store.restore_latest(renamed)
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == before  # nothing moved
    # the same arrays in float64 (jax_enable_x64 on one side only) are named as such
    with jax.enable_x64(True):
        wide = {"encoder": {"w": jax.ShapeDtypeStruct((3,), jnp.float64)},
                "head": {"w": jax.ShapeDtypeStruct((2, 3), jnp.float64)}}
        with pytest.raises(training.IncompatibleCheckpointError, match="another dtype only: was jax_enable_x64"):
            store.restore_latest(wide)
    store.close()


def test_a_fresh_start_keeps_the_earlier_metrics_log(tmp_path):
    run_linear(tmp_path, num_epochs=1)
    first = (tmp_path / "metrics.jsonl").read_text()
    shutil.rmtree(tmp_path / "checkpoints")  # nothing to resume: the run starts over
    result = run_linear(tmp_path, num_epochs=1)
    assert result.resumed_from is None
    kept = list(tmp_path.glob("metrics.before-*.jsonl"))
    assert len(kept) == 1 and kept[0].read_text() == first
    # a second fresh start within the same second kept its earlier log under the same name
    second = (tmp_path / "metrics.jsonl").read_text()
    shutil.rmtree(tmp_path / "checkpoints")
    stamp = kept[0].name[len("metrics.before-"):-len(".jsonl")]
    with unittest.mock.patch("time.time", return_value=float(stamp)):
        run_linear(tmp_path, num_epochs=1)
    assert sorted(p.read_text() for p in tmp_path.glob("metrics.before-*.jsonl")) == sorted([first, second])


def test_metric_writer_finishes_short_writes(tmp_path, monkeypatch):
    """os.write may write part of a line (a full disk, a signal); the rest was dropped, and the
    torn line swallowed the next record when read back."""
    real = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real(fd, data[:5]))  # 5 bytes a call
    writer = training.MetricWriter(tmp_path / "m.jsonl")
    writer.write({"split": "train", "step": 1, "loss": 0.5})
    writer.write({"split": "train", "step": 2, "loss": 0.25})
    writer.close()
    assert [r["step"] for r in training.read_metrics(tmp_path / "m.jsonl")] == [1, 2]


def test_masked_sums_refuses_misshaped_metrics():
    with pytest.raises(ValueError, match="loss"):
        training.masked_sums({"loss": jnp.zeros((4, 1))}, jnp.ones(4))


def test_changed_steps_per_epoch_refuses_to_resume(reference_run):
    workdir = reference_run[0]
    before = sorted(p.name for p in workdir.rglob("*"))
    with pytest.raises(ValueError, match="steps_per_epoch"):
        run_linear(workdir, num_epochs=3, batch_size=32)
    assert sorted(p.name for p in workdir.rglob("*")) == before


def _start_linear_run(workdir, out, sleep):
    """Subprocess training the linear task for 3 epochs (48 steps) into ``workdir``; saves its
    final state to ``out`` and prints the step it resumed from."""
    code = subprocess_script(f"""
        import json, numpy as np, test_training as t
        result = t.run_linear({str(workdir)!r}, num_epochs=3, sleep={sleep})
        np.savez({str(out)!r}, **t.state_arrays(result.state))
        print(json.dumps({{"resumed_from": result.resumed_from}}))
    """)
    return subprocess.Popen([sys.executable, "-c", code], cwd=TESTS_DIR, env={**os.environ, "JAX_PLATFORMS": "cpu"},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _kill_when(proc, ckpts: pathlib.Path, condition, timeout=60.0) -> list[str]:
    """SIGKILL ``proc`` as soon as ``condition(names in ckpts)`` holds; return the names after."""
    deadline = time.time() + timeout
    while not (ckpts.exists() and condition([p.name for p in ckpts.iterdir()])):
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.time() < deadline, "condition never met"
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it was killed"
    return sorted(p.name for p in ckpts.iterdir())


def _finish(proc, out: pathlib.Path) -> tuple[int, dict]:
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 0, stderr[-3000:]
    return json.loads(stdout.strip().splitlines()[-1])["resumed_from"], dict(np.load(out))


def test_sigkill_then_resume_is_bit_identical(reference_run, tmp_path):
    """Runs killed with SIGKILL — at a random moment, and in the middle of writing a checkpoint —
    and re-run end with exactly the state of an uninterrupted run with the same seed."""
    expected = state_arrays(reference_run[1].state)
    ckpts_a, ckpts_b = tmp_path / "a" / "checkpoints", tmp_path / "b" / "checkpoints"
    # (a) at a random moment after the first checkpoint; 38 more steps of >= 20 ms: still running.
    delay = random.uniform(0.0, 0.6)
    victim = _start_linear_run(tmp_path / "a", tmp_path / "never.npz", 0.02)
    _kill_when(victim, ckpts_a, lambda names: any(n.isdigit() for n in names) and time.sleep(delay) is None)
    resumed_a = _start_linear_run(tmp_path / "a", tmp_path / "a.npz", 0.0)
    # (b) while a later checkpoint is still in its temporary directory (written, not renamed).
    victim = _start_linear_run(tmp_path / "b", tmp_path / "never.npz", 0.0)
    left = _kill_when(victim, ckpts_b, lambda names: any(n.isdigit() for n in names)
                      and any("checkpoint-tmp" in n for n in names))
    assert any("checkpoint-tmp" in n for n in left), left
    resumed_b = _start_linear_run(tmp_path / "b", tmp_path / "b.npz", 0.0)

    for run, proc, ckpts in (("a", resumed_a, ckpts_a), ("b", resumed_b, ckpts_b)):
        resumed_from, got = _finish(proc, tmp_path / f"{run}.npz")
        assert resumed_from is not None and 0 < resumed_from < 48, (run, resumed_from, delay)
        assert sorted(got) == sorted(expected)
        for key in expected:
            np.testing.assert_array_equal(got[key], expected[key], err_msg=f"run {run}: {key} (delay {delay:.3f} s)")
        assert not any("checkpoint-tmp" in p.name for p in ckpts.iterdir())  # cleaned on start-up
    assert not (tmp_path / "never.npz").exists()


def test_two_devices_match_one_device(tmp_path):
    """Data parallelism on 2 fake CPU devices gives the 1-device parameters (the flag must be
    set before JAX starts, hence the subprocess)."""
    code = subprocess_script(f"""
        import json, jax, numpy as np, test_training as t
        from sketchjax import training
        assert jax.device_count() == 2, jax.devices()
        shardings = []
        hook = lambda step, state: shardings.append(len(state.params["w"].sharding.device_set))
        one = t.run_linear({str(tmp_path / "one")!r}, num_epochs=2, mesh=training.data_mesh(jax.devices()[:1]))
        two = t.run_linear({str(tmp_path / "two")!r}, num_epochs=2, mesh=training.data_mesh(), hooks=[hook])
        a, b = t.state_arrays(one.state), t.state_arrays(two.state)
        diff = max(float(np.max(np.abs(a[k].astype(np.float64) - b[k]))) for k in a)
        batch = training.shard_batch({{"x": np.zeros((4, 2))}}, training.data_mesh())
        try:
            training.shard_batch({{"x": np.zeros((3, 2))}}, training.data_mesh())
            error = None
        except ValueError as e:
            error = str(e)
        print(json.dumps({{"max_abs_diff": diff, "keys": sorted(a) == sorted(b), "state_devices": set(shardings) == {{2}},
                           "batch_shards": len(batch["x"].addressable_shards), "error": error,
                           "eval": [one.eval_metrics, two.eval_metrics]}}))
    """)
    proc = run_python(code, env_extra={"XLA_FLAGS": os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=2"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["keys"] and report["state_devices"] and report["batch_shards"] == 2
    assert report["max_abs_diff"] < 1e-5, report
    assert report["eval"][0] == pytest.approx(report["eval"][1], rel=1e-5)
    assert "not divisible by the 2" in report["error"]


# ----------------------------------------------------------------------------- configs and run.py


def test_overrides_convert_types_and_reject_unknown_keys():
    config = training.default_config()
    config["model"] = {"sizes": (8, 8), "name": "mlp"}
    new = training.apply_overrides(config, [
        "num_epochs=3", "optimizer.learning_rate=3e-4", "optimizer.nesterov=true", "optimizer.clip_norm=1.5",
        "model.sizes=(16, 4)", "model.name=gru", "progress_bar=false", "optimizer.restart_every=100",
    ])
    assert new["num_epochs"] == 3 and new["optimizer"]["learning_rate"] == 3e-4
    assert new["optimizer"]["nesterov"] is True and new["optimizer"]["clip_norm"] == 1.5
    assert new["model"] == {"sizes": (16, 4), "name": "gru"} and new["progress_bar"] is False
    assert config["num_epochs"] == 1  # the input is not modified
    assert training.apply_overrides(config, ["optimizer.clip_norm=none"])["optimizer"]["clip_norm"] is None
    # a key whose default is None: 1 and 0 are numbers ("1" was read as True: clip_norm=1 then
    # failed with "got True"), the words are bools
    for raw, want in (("1", 1), ("0", 0), ("2.5", 2.5), ("true", True), ("off", False)):
        got = training.apply_overrides({"optimizer": {"clip_norm": None}}, [f"optimizer.clip_norm={raw}"])
        assert got["optimizer"]["clip_norm"] == want and type(got["optimizer"]["clip_norm"]) is type(want), raw
    assert training.apply_overrides(config, ["model.name= gru "])["model"]["name"] == "gru"  # spaces dropped
    assert training.apply_overrides(config, ["progress_bar= True "])["progress_bar"] is True  # bools too
    with pytest.raises(KeyError, match="learning_rate"):
        training.apply_overrides(config, ["optimizer.learnig_rate=1"])
    with pytest.raises(ValueError, match="cannot convert"):
        training.apply_overrides(config, ["num_epochs=2.5"])
    with pytest.raises(ValueError, match="key=value"):
        training.apply_overrides(config, ["num_epochs"])

    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Inner:
        width: int = 4

    @dataclasses.dataclass(frozen=True)
    class Config:
        seed: int = 0
        inner: Inner = Inner()

    assert training.apply_overrides(Config(), ["inner.width=9", "seed=2"]) == Config(seed=2, inner=Inner(9))


def test_run_py_trains_the_smoke_config_and_resumes(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("train_run", REPO_ROOT / "train" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    argv = ["--config", str(REPO_ROOT / "train" / "configs" / "smoke_mlp.py"), "--workdir", str(tmp_path),
            "--set", "num_epochs=1", "--set", "data.num_train=512", "--set", "data.num_eval=256",
            "--set", "checkpoint_every_steps=2"]
    assert run.main(argv) == 0
    out = capsys.readouterr().out
    assert str(tmp_path / "metrics.jsonl") in out and str(tmp_path / "checkpoints") in out
    assert "final eval" in out
    assert run.main(argv[:-2] + ["--set", "num_epochs=2"]) == 0  # same workdir, longer: resumes
    out = capsys.readouterr().out
    assert "resumed from step 4" in out
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["num_epochs"] == 2 and saved["data"]["num_train"] == 512
    assert max(r["step"] for r in training.read_metrics(tmp_path / "metrics.jsonl")) == 8
    # the run's own refusals are one line, not a traceback: a busy workdir, a shorter run
    from sketchjax._locks import exclusive_lock

    with exclusive_lock(tmp_path / ".lock", what="training", wait=False, logger=logging.getLogger("test")):
        assert run.main(argv) == 1
    assert capsys.readouterr().err.startswith(f"run.py: error: workdir {tmp_path} is in use by another training run")
    assert run.main(argv) == 1  # num_epochs=1 after 2
    assert "run.py: error: " in capsys.readouterr().err
    with pytest.raises(SystemExit, match=r"run.py: error: --set optimizer.learnig_rate: no key"):
        run.main(argv + ["--set", "optimizer.learnig_rate=1"])
    # a setting the library refuses while building the run: one line naming it (was a traceback)
    other = [a.replace(str(tmp_path), str(tmp_path / "sgd")) for a in argv]
    assert run.main(other + ["--set", "optimizer.name=sgd", "--set", "optimizer.momentum=nan"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("run.py: error: momentum must be a number in [0, 1), got nan") and "Traceback" not in err
    # an audit: a mistyped --config path and optimizer=None were tracebacks
    with pytest.raises(SystemExit, match=r"run.py: error: config file .*nope.py does not exist"):
        run.main(["--config", str(tmp_path / "nope.py"), "--workdir", str(tmp_path / "x")])
    none_opt = [a.replace(str(tmp_path), str(tmp_path / "none_opt")) for a in argv]
    assert run.main(none_opt + ["--set", "optimizer=none"]) == 2
    assert capsys.readouterr().err.startswith("run.py: error: config: optimizer must be a mapping")
    # an audit: a config file without get_config() and a mistyped experiment were tracebacks
    (tmp_path / "nocfg.py").write_text("x = 1\n")
    with pytest.raises(SystemExit, match=r"run.py: error: config file .*nocfg.py defines no get_config"):
        run.main(["--config", str(tmp_path / "nocfg.py"), "--workdir", str(tmp_path / "x")])
    for spec, problem in (("foo", "expected 'package.module:attribute'"), ("nosuch.mod:fn", "no module named 'nosuch'"),
                          ("sketchjax.classifier:nosuch", "module sketchjax.classifier has no attribute 'nosuch'")):
        (tmp_path / "exp.py").write_text(f"def get_config():\n    return {{'experiment': {spec!r}}}\n")
        with pytest.raises(SystemExit, match=rf"run.py: error: config 'experiment' '{spec}': .*{problem}"):
            run.main(["--config", str(tmp_path / "exp.py"), "--workdir", str(tmp_path / "x")])
    assert not (tmp_path / "x").exists()
    (tmp_path / "buggy.py").write_text("def get_config():\n    cfg = {}\n    return cfg.sed\n")
    with pytest.raises(AttributeError, match="sed"):  # a bug inside a config file keeps its traceback
        run.main(["--config", str(tmp_path / "buggy.py"), "--workdir", str(tmp_path / "x")])


def test_train_unless_done_refuses_a_workdir_started_with_other_settings(tmp_path):
    from sketchjax.training import config_differences, train_unless_done

    assert config_differences(tmp_path / "new", {"a": 1}) == []
    (tmp_path / "config.json").write_text(json.dumps({"a": 1, "b": [1, 2], "c": "x"}))
    assert config_differences(tmp_path, {"a": 1, "b": (1, 2), "c": "x"}) == []  # tuples saved as lists
    assert config_differences(tmp_path, {"a": 2, "b": (1, 2)}) == ["a", "c"]
    with pytest.raises(ValueError, match=r"differs in \['a', 'c'\]"):
        train_unless_done({"a": 2, "b": (1, 2)}, tmp_path, lambda config: None)
    # a key added to the defaults since the earlier run: equal once both sides have the defaults
    with_defaults = lambda config: {"d": (0, 0), **config}  # noqa: E731
    assert config_differences(tmp_path, {"a": 1, "b": (1, 2), "c": "x", "d": [0, 0]}) == ["d"]
    assert config_differences(tmp_path, {"a": 1, "b": (1, 2), "c": "x", "d": [0, 0]}, with_defaults) == []
    assert config_differences(tmp_path, {"a": 1, "b": (1, 2), "c": "x", "d": [0, 1]}, with_defaults) == ["d"]
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ValueError, match="corrupt config"):
        config_differences(tmp_path, {"a": 1})
    # the one reader of a run's config.json (also restore_trained's and load_classifier's)
    from sketchjax.training import read_run_config, restore_trained

    with pytest.raises(ValueError, match=r"config.json: corrupt config"):
        read_run_config(tmp_path)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        read_run_config(tmp_path / "new")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        restore_trained(tmp_path / "new", lambda config: None)
    with pytest.raises(FileNotFoundError, match="config.json: is a file, not a training run's workdir"):
        read_run_config(tmp_path / "config.json")  # e.g. --checkpoint given a file (was: NotADirectoryError)
    # JSON that is no config, or a config of no classifier: named, not an AttributeError / KeyError
    from sketchjax.classifier import load_classifier

    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match=r"config.json: not a run's config \(a JSON list"):
        read_run_config(tmp_path)
    (tmp_path / "config.json").write_text('{"seed": 0}')
    with pytest.raises(ValueError, match=r"config.json: not a sketch classifier run's config \(no data or model"):
        load_classifier(tmp_path)
    # hand-edited settings of the wrong type are named (found by an audit: TypeError in the data
    # pipeline, ZeroDivisionError in the initialiser, a TypeError after the restore)
    for data, model, head, said in (
            ({"categories": 5}, {"name": "bilstm"}, None, r"data.categories must be a non-empty list .*got 5"),
            ({"categories": []}, {"name": "bilstm"}, None, r"data.categories must be a non-empty list"),
            ({"categories": ["cat"], "max_len": "abc"}, {"name": "bilstm"}, None, r"data.max_len must be a whole number"),
            ({"categories": ["cat"]}, {"name": 3}, None, r"model.name must be a model's name, got 3"),
            ({"categories": ["cat"]}, {"name": "bilstm"}, "gacl", r"head must be an object .*got 'gacl'")):
        (tmp_path / "config.json").write_text(json.dumps({"data": data, "model": model, "head": head}))
        with pytest.raises(ValueError, match=r"config.json: " + said):
            load_classifier(tmp_path)


def test_a_second_run_in_a_busy_workdir_is_refused(tmp_path):
    """Found by an audit: a second process on the same workdir replaced metrics.jsonl under the
    first (its later rows lost) and deleted its in-progress checkpoint as leftover tmp."""
    from sketchjax._locks import exclusive_lock

    workdir = tmp_path / "run"
    workdir.mkdir()
    other_run = exclusive_lock(workdir / ".lock", what="training", wait=False, logger=logging.getLogger("test"))
    built = []

    def build(config):
        built.append(config)
        return training.Experiment(task=linear_task(), train_source=ArraySource(blobs(64, 0), 16, seed=1))

    with other_run:  # held as another run's would be (flock: per open file)
        busy = rf"workdir .*run is in use by another training run \(pid {os.getpid()} on {socket.gethostname()}\)"
        with pytest.raises(training.WorkdirInUseError, match=busy):
            run_linear(workdir, num_epochs=1)
        assert not (workdir / "metrics.jsonl").exists() and not (workdir / "checkpoints").exists()
        # refused before the experiment is built (preparing its data can take minutes)
        with pytest.raises(training.WorkdirInUseError, match=busy):
            training.train_and_evaluate({"num_epochs": 1, "progress_bar": False}, workdir, build)
        assert built == []
        open_fds = len(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else None
        for _ in range(3):  # a refused lock keeps no file open (found by a review: one fd per refusal)
            with pytest.raises(training.WorkdirInUseError):
                training.train_and_evaluate({"num_epochs": 1, "progress_bar": False}, workdir, build)
        assert open_fds is None or len(os.listdir("/proc/self/fd")) == open_fds
    first = run_linear(workdir, num_epochs=1)  # released: the run goes ahead
    again = run_linear(workdir, num_epochs=1)  # and again, after the first ended: nothing to train
    assert first.resumed_from is None and again.resumed_from == 16
    # the finished run's result reports its last logged training means (was {})
    assert again.train_metrics == pytest.approx(first.train_metrics) and "loss" in again.train_metrics
    # a file system without locks (ENOLCK on NFS without a lock daemon): the run goes on, warned
    import errno
    import fcntl

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    with unittest.mock.patch.object(fcntl, "flock", no_locks):
        assert run_linear(workdir, num_epochs=2).resumed_from == 16


def test_a_resume_with_another_batch_size_names_the_setting(tmp_path):
    """A changed batch size was reported only as a steps_per_epoch mismatch."""
    run_linear(tmp_path, num_epochs=1, batch_size=16, config={"test": "linear", "batch_size": 16})
    with pytest.raises(ValueError, match=r"steps_per_epoch=16, this data source has 8 \(settings that differ from the checkpoint's: "
                                         r"batch_size: 16 -> 32\): the data position cannot be resumed"):
        run_linear(tmp_path, num_epochs=1, batch_size=32, config={"test": "linear", "batch_size": 32})


def test_audit_a_non_finite_optimiser_state_or_collection_is_not_saved_and_seeds_are_bounded(tmp_path):
    """Found by an audit: only the parameters were checked before a save, so BatchNorm
    statistics (or an optimiser state) gone inf with a finite loss were checkpointed; seed 2**32
    trained as seed 0 (PRNGKey wraps it), -1 was NumPy's message and 1e20 an OverflowError."""
    def inf_state():
        def update(updates, state, params=None):
            return updates, state * 1e30  # finite updates, a state that is inf from the second step

        return optax.GradientTransformation(lambda params: jnp.ones((), jnp.float32), update)

    with pytest.raises(training.TrainingDivergedError, match=r"a parameter, model collection or optimiser-state value "
                                                             r"is NaN or infinite after step 5 \(\['opt_state'\]"
                                                 r".*\); stopped before saving \(no checkpoint was written\)"):
        training.fit(linear_task(), optax.chain(optax.sgd(0.1), inf_state()), ArraySource(blobs(256, 0), 16, seed=1),
                     tmp_path / "inf", num_epochs=1, log_every_steps=4, checkpoint_every_steps=5)
    assert not any((tmp_path / "inf" / "checkpoints").glob("[0-9]*"))
    for bad in (2**32, -1, 1e20):
        with pytest.raises(ValueError, match=r"fit: seed must be"):
            training.fit(linear_task(), optax.sgd(0.1), ArraySource(blobs(64, 0), 16, seed=1), tmp_path / "s",
                         num_epochs=1, seed=bad)
        with pytest.raises(ValueError, match=r"ArraySource: seed must be"):
            ArraySource(blobs(64, 0), 16, seed=bad)
    assert not (tmp_path / "s").exists()
