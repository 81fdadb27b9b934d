"""The training loop: resumable, data-parallel, logged; model- and task-agnostic.

:func:`fit` trains a :class:`Task` on a :class:`DataSource` with an Optax optimiser.
:func:`train_and_evaluate` does the same from a config (what ``train/run.py`` calls).

What ``workdir`` holds after a run::

    config.json          the config of the run (written atomically at start-up)
    run_info.json        what the experiment resolved from config and data (when it records
                         anything; e.g. a classifier's categories), written with config.json
    metrics.jsonl        one JSON record per log step: {"split": "train"|"eval", "step", "epoch",
                         "time", "elapsed", <metrics>, "steps_per_s", "examples_per_s"}; a train
                         record's means cover its "window_steps" steps (log_every_steps, fewer
                         for the first record after a resume between two log steps)
    checkpoints/<step>/  orbax checkpoints (state + data position + config), the last K kept

Re-running with the same ``workdir`` resumes from the newest complete checkpoint: the state
(parameters, optimiser, collections, step, key) is restored and the data source restarts at
``(epoch, start) = divmod(step, steps_per_epoch)``, so a run killed at any moment and resumed
ends with the same parameters as an uninterrupted one.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import pathlib
import threading
import time
from typing import Any, Callable, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh
from tqdm.contrib.logging import logging_redirect_tqdm

from sketchjax._checks import check_int, check_positive_int, check_uint32
from sketchjax._locks import LockBusy, exclusive_lock
from sketchjax.formats._io import atomic_write
from sketchjax.training.checkpoint import CheckpointStore, IncompatibleCheckpointError
from sketchjax.training.config import config_to_dict, default_config
from sketchjax.training.data import DataSource
from sketchjax.training.metrics import MetricWriter, RunningMean, Throughput, progress_bar, read_metrics
from sketchjax.training.optim import optimizer_from_config
from sketchjax.training.sharding import data_mesh, shard_batch
from sketchjax.training.steps import (
    Task,
    TrainState,
    abstract_train_state,
    create_train_state,
    evaluate,
    make_eval_step,
    make_train_step,
)

__all__ = ["Experiment", "FitResult", "fit", "train_and_evaluate", "restore_trained", "read_run_info"]

log = logging.getLogger("sketchjax.training")


@dataclasses.dataclass
class Experiment:
    """What a config's experiment builder returns: the task and its data.

    ``optimizer`` / ``learning_rate_fn`` override the config's ``optimizer`` section when given.
    ``normalise_config`` (optional, ``dict -> dict``) fills in the experiment's defaults before a
    resumed run's saved config is compared with the current one (see :func:`config_differences`),
    so that a key added since the run was saved, at the default it was trained with, is not
    reported as a change.  ``run_info`` (optional, JSON-able) records what the builder resolved
    from the config and the data — e.g. the class names a ``categories = None`` config found
    in the data folder — and is written to ``workdir/run_info.json`` when a run starts (a
    resumed run keeps the one it started with, warning if it now resolves differently), so
    that loading the run later does not depend on the data folder staying the same.
    """

    task: Task
    train_source: DataSource
    eval_source: Optional[DataSource] = None
    optimizer: Optional[optax.GradientTransformation] = None
    learning_rate_fn: Optional[Callable[[Any], Any]] = None
    normalise_config: Optional[Callable[[dict], dict]] = None
    run_info: Optional[dict] = None


@dataclasses.dataclass
class FitResult:
    """The final state and the last logged metrics of a :func:`fit` call.

    ``resumed_from`` is the checkpoint step the run started from (None: fresh start).
    """

    state: TrainState
    train_metrics: dict[str, float]
    eval_metrics: dict[str, float]
    resumed_from: Optional[int]


#: Top-level config keys a run may be resumed with changed values without
#: ``allow_config_change``: the loop's bookkeeping, and the run's length — made longer only
#: (the schedules laid over it then span the new length: see :func:`fit`).
RESUMABLE_CHANGES = frozenset({"num_epochs", "log_every_steps", "checkpoint_every_steps", "keep_checkpoints",
                               "eval_every_epochs", "progress_bar"})


_RECORD_FIELDS = ("split", "step", "epoch", "time", "elapsed")  # every record's leading fields
# A record's fields that are not metrics: the leading ones, a train record's window, its rates.
_LOG_BOOKKEEPING = _RECORD_FIELDS + ("window_steps",) + Throughput.RATE_KEYS


def _last_logged(path: pathlib.Path, step: int) -> dict:
    """The metrics of the last training record of ``path`` at or before ``step`` (without the
    log's bookkeeping fields); ``{}`` when there is none."""
    last: dict = {}
    if path.exists():
        for rec in read_metrics(path):
            if rec.get("split") == "train" and rec.get("step", 0) <= step:
                last = {k: v for k, v in rec.items() if k not in _LOG_BOOKKEEPING}
    return last


def _write_json_atomic(path: pathlib.Path, obj: Any) -> None:
    with atomic_write(path) as f:
        f.write(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _jsonable_config(config: Any) -> Optional[dict]:
    if config is None:
        return None
    return json.loads(json.dumps(config_to_dict(config), default=str))


class WorkdirInUseError(RuntimeError):
    """Another process is training in the workdir (see :func:`fit`)."""


class TrainingDivergedError(FloatingPointError):
    """A non-finite loss or training state: the run stopped before checkpointing it (see :func:`fit`)."""


class ResumeRefusedError(ValueError):
    """The workdir's checkpoint cannot be resumed with this config (see :func:`fit`): a changed
    setting, batch size or run length, named in the message."""


_held = threading.local()  # the workdirs this thread holds the lock of (re-entered, not re-taken)


def _prepare_workdir(workdir: pathlib.Path, chief: bool) -> None:
    """Refuses a workdir that cannot hold a run (a file; a checkpoints path that is a file; a
    folder that is not writable) and creates it.  Checked on every host (they see the same
    filesystem), so that none goes on alone into the collective restore."""
    if workdir.exists() and not workdir.is_dir():
        raise NotADirectoryError(f"workdir {workdir} is a file, not a directory")
    checkpoints = workdir / "checkpoints"
    if checkpoints.exists() and not checkpoints.is_dir():  # found at the first save, after the training
        raise NotADirectoryError(f"{checkpoints} is a file, not a directory: the run could not save its checkpoints")
    if chief:
        workdir.mkdir(parents=True, exist_ok=True)
    for folder in (workdir, checkpoints):
        if chief and folder.is_dir() and not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(f"{folder} is not writable: the run could not save its checkpoints")


@contextlib.contextmanager
def _workdir_lock(workdir: pathlib.Path, chief: bool = True):
    """Holds an exclusive advisory lock on ``workdir/.lock`` (:func:`sketchjax._locks.exclusive_lock`,
    taken by the chief process; released when the run ends or its process dies, so a killed run
    never leaves it held; the holder's pid and host recorded in it); :class:`WorkdirInUseError`
    naming them when another process holds it — on every process of a multi-host run (a lone
    chief stopping would leave the others waiting in the collective restore).  Re-entered by
    the thread that holds it (:func:`train_and_evaluate` holds it around building the
    experiment and :func:`fit`).  Where no lock can be taken (no ``fcntl``, a file system
    without locks, a ``.lock`` of another user) the run goes on with a warning; a folder that
    is not writable was refused before."""
    key = os.path.realpath(workdir)
    held = _held.__dict__.setdefault("workdirs", set())
    if key in held:
        yield
        return
    with contextlib.ExitStack() as stack:
        holder = None
        if chief and os.access(workdir, os.W_OK | os.X_OK):
            try:
                stack.enter_context(exclusive_lock(workdir / ".lock", what=f"training in {workdir}", wait=False,
                                                   logger=log))
            except LockBusy as e:
                holder = e.holder
        busy = holder is not None
        if jax.process_count() > 1:
            from jax.experimental import multihost_utils

            busy = bool(multihost_utils.broadcast_one_to_all(np.int32(busy)))
        if busy:
            raise WorkdirInUseError(
                f"workdir {workdir} is in use by another training run ({holder or 'held on the chief host'}); "
                "wait for it to end, stop it, or use another workdir")
        held.add(key)
        try:
            yield
        finally:
            held.discard(key)


def _first_non_finite(tree) -> Optional[str]:
    """The path of the first floating-point leaf of ``tree`` holding a NaN or inf, else None
    (one device transfer of a flag per leaf)."""
    leaves = [(path, x) for path, x in jax.tree_util.tree_leaves_with_path(tree)
              if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    flags = jax.device_get([jnp.all(jnp.isfinite(x)) for _, x in leaves])
    return next((jax.tree_util.keystr(path) for (path, _), ok in zip(leaves, flags) if not ok), None)


def _loop_settings(num_epochs, seed, log_every_steps, checkpoint_every_steps, keep_checkpoints, eval_every_epochs,
                   show_progress) -> tuple[int, ...]:
    """:func:`fit`'s settings checked (``ValueError`` naming the one wrong), the integers returned."""
    if show_progress is not None and not isinstance(show_progress, (bool, np.bool_)):  # "maybe" or 2 would show it
        raise ValueError(f"fit: show_progress (config progress_bar) must be true, false or None (when stderr is a "
                         f"terminal), got {show_progress!r}")
    return (check_positive_int("fit", "num_epochs", num_epochs), check_uint32("fit", "seed", seed),
            check_positive_int("fit", "log_every_steps", log_every_steps),
            check_positive_int("fit", "checkpoint_every_steps", checkpoint_every_steps),
            check_positive_int("fit", "keep_checkpoints", keep_checkpoints),
            check_int("fit", "eval_every_epochs", eval_every_epochs, 0, why=" (0: only at the end)"))


def fit(
    task: Task,
    tx: optax.GradientTransformation,
    train_source: DataSource,
    workdir: str | os.PathLike,
    *,
    num_epochs: int,
    seed: int = 0,
    eval_source: Optional[DataSource] = None,
    learning_rate_fn: Optional[Callable[[Any], Any]] = None,
    log_every_steps: int = 50,
    checkpoint_every_steps: int = 1000,
    keep_checkpoints: int = 3,
    eval_every_epochs: int = 1,
    config: Any = None,
    mesh: Optional[Mesh] = None,
    show_progress: Optional[bool] = None,
    async_checkpointing: bool = False,
    hooks: Sequence[Callable[[int, TrainState], None]] = (),
    normalise_config: Optional[Callable[[dict], dict]] = None,
    run_info: Optional[dict] = None,
    allow_config_change: bool = False,
) -> FitResult:
    """Train ``task`` for ``num_epochs`` epochs of ``train_source``, resuming from ``workdir``.

    Args:
      task: ``init_fn`` / ``loss_fn`` / ``eval_fn`` (:class:`sketchjax.training.Task`).
      tx: Optax optimiser.
      train_source: a :class:`DataSource`; its batches' leading size is the global batch size
        divided by the number of processes and must divide over the local devices.
      workdir: where config, metrics and checkpoints go (created if missing).
      num_epochs: run length; the run ends at step ``num_epochs * steps_per_epoch``.
      seed: initial parameters and per-step keys (shuffling is the source's own seed).
      eval_source: evaluated (``task.eval_fn``) every ``eval_every_epochs`` epochs and at the end.
      learning_rate_fn: the optimiser's schedule; its value at the last step is logged as
        ``learning_rate`` when given.
      log_every_steps: training metrics are averaged over and logged every this many steps.
      checkpoint_every_steps: save every this many steps; always saved at the end.
      keep_checkpoints: number of checkpoints kept.
      eval_every_epochs: 0 evaluates only at the end.
      config: the run's config (dict or dataclass), saved to ``config.json`` and checkpoints.
      mesh: device mesh (default :func:`sketchjax.training.data_mesh` over all devices).
      show_progress: progress bar on/off; None shows it when stderr is a terminal.
      async_checkpointing: see :class:`sketchjax.training.CheckpointStore`.
      hooks: ``hook(step, state)`` called on the host after every step (``step`` counts steps
        done); for tests and custom logging. Must not keep ``state`` (its buffers are donated).
      normalise_config: applied to the checkpoint's config and to ``config`` before they are
        compared on resuming; see :func:`config_differences`.
      run_info: written to ``workdir/run_info.json`` next to ``config.json`` (see :class:`Experiment`).
      allow_config_change: resume a checkpoint trained with another config (other than in
        :data:`RESUMABLE_CHANGES`, e.g. a longer ``num_epochs``, which is always allowed — the
        schedules built over ``num_epochs`` then span the new length; a shorter one is refused
        unless this is True).
        Default: refuse (``ValueError`` naming the differences).  An allowed change is logged and
        the config the checkpoint was trained with is kept as ``config.until-step-<step>.json``.

    A training loss (or, at a save, a parameter) that is NaN or infinite stops the run with
    ``FloatingPointError`` naming the step, before anything non-finite is checkpointed.  One
    run at a time per workdir: a second process started on a busy workdir stops at once with
    :class:`WorkdirInUseError` naming the running one's pid (a lock on ``workdir/.lock``).

    Returns:
      :class:`FitResult` with the final state, the last training log record's means, the
      final evaluation metrics (``{}`` without ``eval_source``) and the resumed-from step.
    """
    num_epochs, seed, log_every_steps, checkpoint_every_steps, keep_checkpoints, eval_every_epochs = _loop_settings(
        num_epochs, seed, log_every_steps, checkpoint_every_steps, keep_checkpoints, eval_every_epochs, show_progress)
    workdir = pathlib.Path(workdir)
    chief = jax.process_index() == 0
    _prepare_workdir(workdir, chief)
    # One run per workdir: a second process would replace metrics.jsonl under the first (its
    # later rows lost) and delete its in-progress checkpoint as leftover tmp.
    with _workdir_lock(workdir, chief):
        mesh = data_mesh() if mesh is None else mesh
        steps_per_epoch = int(train_source.steps_per_epoch)
        if steps_per_epoch < 1:
            raise ValueError(f"train_source.steps_per_epoch must be >= 1, got {steps_per_epoch}")
        total_steps = num_epochs * steps_per_epoch
        config_dict = _jsonable_config(config)

        with _closing(train_source.epoch_batches(0)) as batches:  # stops a prefetching source
            first_batch = next(iter(batches))
        store = CheckpointStore(workdir / "checkpoints", keep=keep_checkpoints, async_save=async_checkpointing)
        try:
            restored = store.restore_latest(abstract_train_state(task, tx, first_batch, mesh))
        except IncompatibleCheckpointError as e:
            try:  # config.json is the config of the newest checkpoint
                saved = read_run_config(workdir) if config_dict is not None else None
            except (OSError, ValueError):
                saved = None
            if saved is None or not _changed_keys(saved, config_dict, normalise_config):
                raise
            raise IncompatibleCheckpointError(
                f"{e}. The settings that differ from config.json's (the newest checkpoint's): "
                f"{_describe_changes(saved, config_dict, normalise_config)}") from e
        changed: list[str] = []
        if restored is not None:
            state, meta = restored
            step = int(jax.device_get(state.step))
            if meta.get("steps_per_epoch") != steps_per_epoch:
                why = ("" if config_dict is None or meta.get("config") is None
                       or not _changed_keys(meta["config"], config_dict, normalise_config)
                       else f" (settings that differ from the checkpoint's: "
                            f"{_describe_changes(meta['config'], config_dict, normalise_config)})")
                raise ResumeRefusedError(
                    f"checkpoint at step {step} in {store.directory} was written with steps_per_epoch="
                    f"{meta.get('steps_per_epoch')}, this data source has {steps_per_epoch}{why}: the data position "
                    "cannot be resumed; use a new workdir"
                )
            if step > total_steps:
                # "already complete" would hand back a model trained for more steps than asked
                raise ResumeRefusedError(f"{workdir}: the checkpoint is at step {step}, beyond this config's run length "
                                 f"({num_epochs} epoch(s) = {total_steps} steps); raise num_epochs or use a new workdir")
            changed = ([] if config_dict is None or meta.get("config") is None
                       else _changed_keys(meta["config"], config_dict, normalise_config))
            if changed:
                detail = _describe_changes(meta["config"], config_dict, normalise_config)
                old_epochs = meta["config"].get("num_epochs") if isinstance(meta["config"], dict) else None
                shortened = "num_epochs" in changed and isinstance(old_epochs, int) and num_epochs < old_epochs
                if not allow_config_change and (shortened or not set(changed) <= RESUMABLE_CHANGES):
                    why = (f"a run of {old_epochs} epochs stopped early is not what a run of {num_epochs} trains "
                           f"(its schedules were laid over {old_epochs})" if set(changed) <= RESUMABLE_CHANGES
                           else "resuming would mix the two settings in one run")
                    raise ResumeRefusedError(
                        f"{workdir}: the checkpoint at step {step} was trained with another config ({detail}); "
                        f"{why}. Use a new workdir, or allow it "
                        "(fit(allow_config_change=True), train/run.py --allow-config-change)")
                stretched = ("; the learning-rate schedule, and any other laid over the run's length (a GACL "
                             "head's soft-binning cut points), now span the new length: unless it does not "
                             "depend on the length (constant, sgdr), the run goes on differently from one "
                             "started with this num_epochs" if "num_epochs" in changed else "")
                log.warning("resuming with a config that differs from the checkpoint's in %s: %s "
                            "(with the first checkpoint under the new config, the old one is kept as "
                            "config.until-step-%d.json)%s", changed, detail, step, stretched)
            elapsed_before = float(meta.get("elapsed", 0.0))
            resumed_from = step
            log.info("resumed from checkpoint step %d (epoch %d, batch %d) in %s",
                     step, *divmod(step, steps_per_epoch), store.directory)
        else:
            state = create_train_state(task, tx, first_batch, seed, mesh)
            step, elapsed_before, resumed_from = 0, 0.0, None
            old_log = workdir / "metrics.jsonl"
            if chief and old_log.exists() and old_log.stat().st_size > 0:
                # no checkpoint to resume (none written, or every one moved aside as corrupt): keep the
                # earlier log instead of truncating it to step 0
                stamp, n = int(time.time()), 0
                kept = old_log.with_name(f"metrics.before-{stamp}.jsonl")
                while kept.exists():  # two fresh starts in one second: keep both earlier logs
                    n += 1
                    kept = old_log.with_name(f"metrics.before-{stamp}-{n}.jsonl")
                os.replace(old_log, kept)
                log.warning("starting %s from step 0 with no checkpoint to resume; the earlier metrics.jsonl "
                            "was kept as %s", workdir, kept.name)
        del first_batch
        # Read before anything is written: a refused resume leaves the workdir as it was.
        recorded = read_run_info(workdir) if chief and run_info is not None and resumed_from is not None else None
        # config.json is the config of the newest checkpoint (load_classifier builds the model from
        # it): a changed config replaces it only with the first checkpoint trained under it
        pending_config = chief and config_dict is not None and resumed_from is not None and bool(changed)
        if chief and config_dict is not None and not pending_config:
            _write_json_atomic(workdir / "config.json", config_dict)
        if chief and run_info is not None:
            if recorded is None:
                _write_json_atomic(workdir / "run_info.json", run_info)
            elif recorded != json.loads(json.dumps(run_info)):
                # e.g. a category file replaced under a categories=None config: the checkpoint was
                # trained with what the run recorded when it started, which is kept
                log.warning("resuming %s: the experiment now resolves %s differently from run_info.json, which "
                            "keeps what the run started with", workdir,
                            sorted(k for k in set(recorded) | set(run_info) if recorded.get(k) != run_info.get(k)))

        writer = MetricWriter(workdir / "metrics.jsonl", keep_until_step=step, enabled=chief)
        train_step = make_train_step(task.loss_fn, tx, mesh)
        eval_step = make_eval_step(task.eval_fn, mesh) if (eval_source is not None and task.eval_fn) else None
        if eval_source is not None and eval_step is None:
            raise ValueError("eval_source given but the task has no eval_fn")

        t_start = time.time()
        last_saved = step if restored is not None else None

        def record(split: str, metrics: dict, **extra) -> dict:
            now = time.time()
            lead = (split, step, step / steps_per_epoch, now, elapsed_before + now - t_start)
            rec = {**dict(zip(_RECORD_FIELDS, lead)), **metrics, **extra}
            writer.write(rec)
            return rec

        def kept() -> str:
            return "no checkpoint was written" if last_saved is None else f"the newest checkpoint, step {last_saved}, is kept"

        def check_finite(metrics: dict, since: int) -> None:
            loss = metrics.get("loss", 0.0)
            if not math.isfinite(loss):
                raise TrainingDivergedError(
                    f"{workdir}: training loss {loss} over steps {since + 1}-{step}; stopped before saving "
                    f"({kept()}). Lower the learning rate or check the data")

        def save() -> None:
            nonlocal last_saved, pending_config
            check_finite(running.peek(), step - len(running))
            bad = _first_non_finite({"params": state.params, "collections": state.collections,
                                     "opt_state": state.opt_state})  # BatchNorm statistics went inf with a finite loss
            if bad is not None:
                raise TrainingDivergedError(f"{workdir}: a parameter, model collection or optimiser-state value is NaN "
                                            f"or infinite after step {step} ({bad}); "
                                         f"stopped before saving ({kept()})")
            epoch, in_epoch = divmod(step, steps_per_epoch)
            writer.sync()
            if pending_config:  # the old config's record first: a kill right after the save would lose it
                _write_json_atomic(workdir / f"config.until-step-{resumed_from}.json", meta["config"])
            store.save(step, state, {
                "step": step, "epoch": epoch, "step_in_epoch": in_epoch, "steps_per_epoch": steps_per_epoch,
                "elapsed": elapsed_before + time.time() - t_start, "seed": seed, "config": config_dict,
            })
            last_saved = step
            if pending_config:  # the first checkpoint of the changed config: committed, then named
                store.wait()
                _write_json_atomic(workdir / "config.json", config_dict)
                pending_config = False

        def run_eval() -> dict:
            metrics = evaluate(eval_step, state, eval_source, mesh)
            record("eval", metrics)
            log.info("step %d eval %s", step, _fmt(metrics))
            return metrics

        # a re-run of a finished run trains no step: its result reports the log's last records
        train_metrics = _last_logged(workdir / "metrics.jsonl", step) if chief and step else {}
        eval_metrics: dict[str, float] = {}
        running, throughput = RunningMean(), Throughput()
        bar = progress_bar(total_steps, step, show_progress)
        cleanup = contextlib.ExitStack()
        if not bar.disable:  # log lines above the bar instead of through it
            cleanup.enter_context(logging_redirect_tqdm())
        try:
            epoch, start = divmod(step, steps_per_epoch)
            while step < total_steps:
                with _closing(train_source.epoch_batches(epoch, start)) as batches:
                    for batch in batches:
                        global_batch = shard_batch(batch, mesh)
                        state, metrics = train_step(state, global_batch)
                        step += 1
                        running.add(metrics)
                        throughput.add(1, next(iter(global_batch.values())).shape[0])
                        bar.update(1)
                        for hook in hooks:
                            hook(step, state)
                        if step % log_every_steps == 0 or step == total_steps:
                            window = len(running)
                            train_metrics = running.result()
                            check_finite(train_metrics, step - window)
                            if learning_rate_fn is not None:  # the rate of the last step, not a mean
                                train_metrics["learning_rate"] = float(learning_rate_fn(step - 1))
                            record("train", train_metrics, window_steps=window, **throughput.rates())
                            bar.set_postfix(loss=f"{train_metrics.get('loss', float('nan')):.4g}")
                            log.info("step %d/%d %s", step, total_steps, _fmt(train_metrics))
                        if step % checkpoint_every_steps == 0 and step % steps_per_epoch and step < total_steps:
                            save()
                if step != (epoch + 1) * steps_per_epoch:
                    raise ValueError(f"train_source yielded {step - epoch * steps_per_epoch} batches in epoch "
                                     f"{epoch}, expected steps_per_epoch={steps_per_epoch}")
                epoch, start = epoch + 1, 0
                # At an epoch's end evaluate before checkpointing, so a resumed run never skips an eval.
                if eval_step is not None and eval_every_epochs and epoch % eval_every_epochs == 0 and step < total_steps:
                    eval_metrics = run_eval()
                if step % checkpoint_every_steps == 0 and step < total_steps:
                    save()
            if resumed_from is not None and resumed_from >= total_steps:
                log.info("the run in %s is already complete (step %d of %d)", workdir, step, total_steps)
                if eval_step is not None:  # report, but do not log the same step twice
                    eval_metrics = evaluate(eval_step, state, eval_source, mesh)
            elif eval_step is not None:
                eval_metrics = run_eval()
            if last_saved != step:
                save()
        finally:
            cleanup.close()
            bar.close()
            writer.close()
            store.close()
        return FitResult(state=state, train_metrics=train_metrics, eval_metrics=eval_metrics, resumed_from=resumed_from)


@contextlib.contextmanager
def _closing(iterator):
    """Close a generator (a source's prefetch thread) when done with it, even on error."""
    try:
        yield iterator
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()


def _fmt(metrics: dict) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())


def _settings(config: Any) -> dict:
    """:func:`default_config` filled in with ``config`` (the optimiser settings merged)."""
    settings = default_config()
    given = config_to_dict(config)
    if not isinstance(given.get("optimizer", {}), Mapping):  # None: "'NoneType' object is not a mapping"
        raise ValueError(f"config: optimizer must be a mapping of optimiser settings (e.g. {{'name': 'adam', "
                         f"'learning_rate': 1e-3}}), got {given['optimizer']!r}")
    optimizer_settings = {**settings["optimizer"], **given.get("optimizer", {})}
    settings.update(given)
    settings["optimizer"] = optimizer_settings
    return settings


def _optimizer(settings: dict, experiment: Experiment):
    """The experiment's own optimiser and schedule, else those of the config's settings."""
    if experiment.optimizer is not None:
        return experiment.optimizer, experiment.learning_rate_fn
    steps_per_epoch = experiment.train_source.steps_per_epoch
    return optimizer_from_config(
        settings["optimizer"], steps_per_epoch=steps_per_epoch, total_steps=settings["num_epochs"] * steps_per_epoch
    )


def train_and_evaluate(
    config: Any,
    workdir: str | os.PathLike,
    build_experiment: Callable[[Any], Experiment],
    **fit_kwargs,
) -> FitResult:
    """Run :func:`fit` with the settings of ``config`` (see :func:`default_config`).

    Args:
      config: dict or dataclass; its generic keys (``seed``, ``num_epochs``, ``optimizer``,
        ``log_every_steps``, ...) fill in :func:`default_config`, the rest is for the builder.
      workdir: output directory (resumed if it holds checkpoints).
      build_experiment: ``build_experiment(config) -> Experiment`` (task and data sources).
      **fit_kwargs: passed on to :func:`fit` (``mesh``, ``hooks``, ...).
    """
    settings = _settings(config)
    _loop_settings(*(settings[k] for k in ("num_epochs", "seed", "log_every_steps", "checkpoint_every_steps",
                                           "keep_checkpoints", "eval_every_epochs", "progress_bar")))
    workdir = pathlib.Path(workdir)
    chief = jax.process_index() == 0
    created = chief and not workdir.exists()
    _prepare_workdir(workdir, chief)
    # the workdir is locked before the experiment is built (preparing a dataset can take
    # minutes): a second run on a busy workdir stops at once; fit re-enters the lock
    with _workdir_lock(workdir, chief):
        try:
            experiment = build_experiment(config)
            tx, schedule = _optimizer(settings, experiment)
            fit_kwargs.setdefault("normalise_config", experiment.normalise_config)
            fit_kwargs.setdefault("run_info", experiment.run_info)
            return fit(
                experiment.task,
                tx,
                experiment.train_source,
                workdir,
                # passed as given: fit refuses 2.5 or True (int() would train 2 or 1 epochs while the
                # schedules above are built for the value itself)
                num_epochs=settings["num_epochs"],
                seed=settings["seed"],
                eval_source=experiment.eval_source,
                learning_rate_fn=schedule,
                log_every_steps=settings["log_every_steps"],
                checkpoint_every_steps=settings["checkpoint_every_steps"],
                keep_checkpoints=settings["keep_checkpoints"],
                eval_every_epochs=settings["eval_every_epochs"],
                config=config,
                show_progress=settings["progress_bar"],
                **fit_kwargs,
            )
        except BaseException:
            if created:  # a run that stops before writing anything (a config that does not build, a
                # model setting refused at initialisation) leaves no empty workdir behind; rmdir
                # removes only empty folders, so anything a run wrote stays
                with contextlib.suppress(OSError):
                    (workdir / ".lock").unlink()
                    (workdir / "checkpoints").rmdir()
                with contextlib.suppress(OSError):
                    workdir.rmdir()
            raise


def config_differences(workdir: str | os.PathLike, config: Any, normalise: Optional[Callable[[dict], dict]] = None
                       ) -> list[str]:
    """Top-level config keys in which ``workdir/config.json`` (an earlier run) differs from
    ``config``; ``[]`` when there is no earlier run.  Programs that train into a reused workdir
    call it to refuse resuming a run that was started with other settings.

    ``normalise`` (optional) is applied to both configs before they are compared — e.g. an
    experiment's defaults filled in (:func:`sketchjax.classifier.comparable_config`), so that a
    key added to the defaults since the earlier run, whose default keeps the old behaviour, does
    not make that run look different."""
    if not (pathlib.Path(workdir) / "config.json").exists():
        return []
    return _changed_keys(read_run_config(workdir), config, normalise)


def read_run_config(workdir: str | os.PathLike) -> dict:
    """``workdir/config.json``: the config a run of :func:`fit` was started with.

    Raises ``FileNotFoundError`` (no such file: not a run's workdir) or ``ValueError`` (corrupt
    JSON, or JSON that is not an object), each naming the file."""
    workdir = pathlib.Path(workdir)
    path = workdir / "config.json"
    if workdir.exists() and not workdir.is_dir():
        raise FileNotFoundError(f"{workdir}: is a file, not a training run's workdir (a folder with config.json)")
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no config.json — is {workdir} a training run's workdir?") from None
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: corrupt config ({e})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: not a run's config (a JSON {type(config).__name__}, not an object)")
    return config



def read_run_info(workdir: str | os.PathLike) -> Optional[dict]:
    """``workdir/run_info.json`` (see :class:`Experiment`), or None for a run without one
    (started before the file existed, or by an experiment that records nothing)."""
    path = pathlib.Path(workdir) / "run_info.json"
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        info = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: corrupt run info ({e})") from None
    if not isinstance(info, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(info).__name__}")
    return info


def _comparable(old: Any, new: Any, normalise: Optional[Callable[[dict], dict]] = None) -> tuple[dict, dict]:
    """Two configs as they are compared: ``normalise``d, saved as JSON, and an ``optimizer``
    section lacking none of the loop's optimiser settings (one saved before a setting existed,
    such as ``lr_scale``, compares with its default, :func:`default_config`)."""
    if normalise is not None:
        old, new = normalise(config_to_dict(old)), normalise(config_to_dict(new))
    old, new = _jsonable_config(old) or {}, _jsonable_config(new) or {}
    loop_optimizer = _jsonable_config(default_config()["optimizer"])
    old, new = ({**c, "optimizer": {**loop_optimizer, **c["optimizer"]}} if isinstance(c.get("optimizer"), dict) else c
                for c in (old, new))
    return old, new


def _changed_keys(old: Any, new: Any, normalise: Optional[Callable[[dict], dict]] = None) -> list[str]:
    """Top-level keys in which two configs differ (compared as :func:`_comparable` makes them)."""
    old, new = _comparable(old, new, normalise)
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))


def _describe_changes(old: Any, new: Any, normalise: Optional[Callable[[dict], dict]] = None, shown: int = 6) -> str:
    """``"optimizer.learning_rate: 0.003 -> 0.1; seed: 0 -> 3"``: the leaves in which two configs
    differ, compared as :func:`_changed_keys` compares them (:func:`_comparable`)."""
    old, new = _comparable(old, new, normalise)
    missing = object()

    def walk(a, b, prefix):
        if isinstance(a, dict) and isinstance(b, dict):
            for k in sorted(set(a) | set(b)):
                yield from walk(a.get(k, missing), b.get(k, missing), f"{prefix}{k}.")
        elif a != b:
            fmt = lambda v: "(unset)" if v is missing else json.dumps(v)[:40]  # noqa: E731
            yield f"{prefix[:-1]}: {fmt(a)} -> {fmt(b)}"

    diffs = list(walk(old, new, ""))
    return "; ".join(diffs[:shown]) + (f"; and {len(diffs) - shown} more" if len(diffs) > shown else "")


def train_unless_done(config: Any, workdir: str | os.PathLike, build_experiment: Callable[[Any], Experiment],
                      normalise: Optional[Callable[[dict], dict]] = None, allow_config_change: bool = False) -> float:
    """:func:`train_and_evaluate` for programs that reuse a workdir across invocations: a run
    started with the same config is resumed (or left alone when complete); one started with
    other settings is refused (``ValueError`` naming the keys) instead of silently continued.
    ``normalise``: see :func:`config_differences`; ``allow_config_change``: continue such a run
    under the new settings instead (see :func:`fit`).  Returns the seconds spent."""
    stale = config_differences(workdir, config, normalise)
    if stale and not allow_config_change:
        raise ValueError(f"{workdir} holds a run with other settings (differs in {stale}); "
                         "remove it or use another directory")
    start = time.time()
    train_and_evaluate(config, workdir, build_experiment, allow_config_change=allow_config_change)
    return time.time() - start


def restore_trained(
    workdir: str | os.PathLike,
    build_experiment: Callable[[Any], Experiment],
    config: Any = None,
    *,
    mesh: Optional[Mesh] = None,
) -> tuple[Experiment, TrainState, dict]:
    """The newest complete checkpoint of a run of :func:`train_and_evaluate`, for evaluation.

    Args:
      workdir: the run's directory (``config.json`` and ``checkpoints/``).
      build_experiment: the builder the run was trained with.
      config: the run's config; default ``workdir/config.json``.
      mesh: device mesh the state is placed on (default all local devices).

    Returns:
      ``(experiment, state, meta)``: the rebuilt experiment (task, data sources), the
      restored :class:`TrainState` (``state.params``, ``state.collections``) and the
      checkpoint's metadata (``step``, ``config``, ...).

    Raises:
      FileNotFoundError: no config or no complete checkpoint in ``workdir``.
      IncompatibleCheckpointError: the checkpoint holds a different model or optimiser.
    """
    workdir = pathlib.Path(workdir)
    if config is None:
        config = read_run_config(workdir)
    if not (workdir / "checkpoints").is_dir():
        raise FileNotFoundError(f"{workdir / 'checkpoints'}: no checkpoints directory to restore from")
    settings = _settings(config)
    experiment = build_experiment(config)
    tx, _ = _optimizer(settings, experiment)
    mesh = data_mesh() if mesh is None else mesh
    with _closing(experiment.train_source.epoch_batches(0)) as batches:
        first_batch = next(iter(batches))
    store = CheckpointStore(workdir / "checkpoints", read_only=True)  # the run may still be training
    try:
        restored = store.restore_latest(abstract_train_state(experiment.task, tx, first_batch, mesh))
    finally:
        store.close()
    if restored is None:
        raise FileNotFoundError(f"{workdir / 'checkpoints'}: no complete checkpoint to restore")
    state, meta = restored
    return experiment, state, meta
