"""Reusable training infrastructure: a resumable, data-parallel Optax loop for any task.

* :mod:`~sketchjax.training.data` — the :class:`DataSource` protocol the loop reads
  (deterministic ``epoch_batches(epoch, start)``) and :class:`ArraySource` (in memory);
* :mod:`~sketchjax.training.steps` — :class:`TrainState`, :class:`Task` (``init_fn``,
  ``loss_fn``, ``eval_fn``), jitted ``train_step`` / ``eval_step``, :func:`masked_sums`;
* :mod:`~sketchjax.training.optim` — Adam / AdamW / SGD, warmup, cosine with warm restarts;
* :mod:`~sketchjax.training.sharding` — a 1-D ``"data"`` mesh, replicated state, sharded batches;
* :mod:`~sketchjax.training.checkpoint` — orbax-checkpoint save / resume of state + data position;
* :mod:`~sketchjax.training.metrics` — running means, throughput, ``metrics.jsonl``, progress bar;
* :mod:`~sketchjax.training.config` — ``get_config()`` files and ``key=value`` overrides;
* :mod:`~sketchjax.training.loop` — :func:`fit`, :func:`train_and_evaluate` and :func:`restore_trained`.
"""
from sketchjax.training.checkpoint import CheckpointStore, IncompatibleCheckpointError
from sketchjax.training.config import apply_overrides, config_to_dict, default_config, load_config, resolve_object
from sketchjax.training.data import ArraySource, DataSource, this_process
from sketchjax.training.loop import (
    RESUMABLE_CHANGES,
    Experiment,
    FitResult,
    ResumeRefusedError,
    TrainingDivergedError,
    WorkdirInUseError,
    config_differences,
    fit,
    read_run_config,
    read_run_info,
    restore_trained,
    train_and_evaluate,
    train_unless_done,
)
from sketchjax.training.metrics import MetricWriter, RunningMean, Throughput, read_metrics
from sketchjax.training.optim import make_optimizer, make_schedule, optimizer_from_config, scale_by_path, warm_restart_schedule
from sketchjax.training.sharding import batch_sharding, data_mesh, replicate, replicated, shard_batch
from sketchjax.training.steps import (
    Task,
    TrainState,
    abstract_train_state,
    create_train_state,
    evaluate,
    make_eval_step,
    make_train_step,
    masked_sums,
)

__all__ = [
    "RESUMABLE_CHANGES", "ArraySource", "CheckpointStore", "IncompatibleCheckpointError", "DataSource", "Experiment", "FitResult", "MetricWriter", "ResumeRefusedError", "TrainingDivergedError", "WorkdirInUseError", "RunningMean",
    "Task", "Throughput", "TrainState", "abstract_train_state", "apply_overrides", "batch_sharding",
    "config_to_dict", "create_train_state", "data_mesh", "default_config", "evaluate", "fit", "load_config",
    "make_eval_step", "make_optimizer", "make_schedule", "make_train_step", "masked_sums",
    "optimizer_from_config", "scale_by_path", "read_metrics", "read_run_config", "read_run_info", "replicate", "replicated", "resolve_object", "restore_trained", "config_differences", "train_unless_done", "shard_batch",
    "train_and_evaluate", "warm_restart_schedule", "this_process",
]
