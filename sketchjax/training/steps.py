"""Train state, the task interface, and the jitted train / eval steps.

A *task* is three pure functions; the loop knows nothing else about the model:

* ``init_fn(rng, batch) -> variables`` — ``{"params": ..., <other collections>}``, e.g. a Flax
  ``model.init``; collections other than ``"params"`` (``"batch_stats"``, ...) are carried in
  :attr:`TrainState.collections` and not differentiated.
* ``loss_fn(params, collections, batch, rng) -> (loss, (metrics, new_collections))`` — scalar
  loss averaged over the batch, a dict of scalar batch metrics, and the updated collections
  (``None`` keeps them). ``rng`` differs at every step (dropout, augmentation). A loss_fn that
  declares a ``step`` parameter also gets the optimiser step count (``int32[]``, traced: a
  schedule inside the loss, e.g. GACL's soft-binning cut points, compiles once).
* ``eval_fn(params, collections, batch) -> sums`` (optional) — a dict of metric **sums** over
  the real rows of the batch plus ``"count"``, the number of real rows (use
  :func:`masked_sums`), so averages over a padded evaluation set are exact.
"""
from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Mapping, Optional

import flax
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from sketchjax.training.sharding import batch_sharding, replicated, shard_batch
from sketchjax.training.data import DataSource

__all__ = [
    "TrainState",
    "Task",
    "create_train_state",
    "abstract_train_state",
    "make_train_step",
    "make_eval_step",
    "evaluate",
    "masked_sums",
]

PyTree = Any
Batch = Mapping[str, jax.Array]


@flax.struct.dataclass
class TrainState:
    """Everything that changes during training, as one pytree (checkpointed as a whole).

    Attributes:
      step: ``int32[]``, number of optimiser steps taken.
      params: the differentiated parameters.
      opt_state: the Optax optimiser state.
      collections: ``{name: pytree}`` of non-differentiated model state (``batch_stats``); ``{}``.
      rng: ``uint32[2]`` base key; step ``t`` uses ``fold_in(rng, t)``, so a resumed run draws
        the same random numbers as an uninterrupted one.
    """

    step: jax.Array
    params: PyTree
    opt_state: PyTree
    collections: PyTree
    rng: jax.Array


@dataclasses.dataclass(frozen=True)
class Task:
    """The model-specific functions of a training run (see the module docstring)."""

    init_fn: Callable[[jax.Array, Batch], Mapping[str, PyTree]]
    loss_fn: Callable[[PyTree, PyTree, Batch, jax.Array], tuple[jax.Array, tuple[dict, Optional[PyTree]]]]
    eval_fn: Optional[Callable[[PyTree, PyTree, Batch], dict]] = None


def _init_state(task: Task, tx: optax.GradientTransformation, rng: jax.Array, batch: Batch) -> TrainState:
    init_rng, state_rng = jax.random.split(rng)
    variables = dict(task.init_fn(init_rng, batch))
    params = variables.pop("params")
    return TrainState(
        step=jnp.zeros((), jnp.int32),
        params=params,
        opt_state=tx.init(params),
        collections=variables,
        rng=state_rng,
    )


def create_train_state(
    task: Task, tx: optax.GradientTransformation, batch: Mapping[str, np.ndarray], seed: int, mesh: Mesh
) -> TrainState:
    """Initialise a :class:`TrainState` replicated over ``mesh``.

    Args:
      task: supplies ``init_fn``.
      tx: the optimiser.
      batch: a host batch (this process's rows) with the shapes training will use.
      seed: the run's seed; the same seed gives the same initial parameters and step keys.
      mesh: a :func:`sketchjax.training.data_mesh`.
    """
    init = jax.jit(lambda rng, b: _init_state(task, tx, rng, b), out_shardings=replicated(mesh))
    return init(jax.random.PRNGKey(seed), shard_batch(batch, mesh))


def abstract_train_state(
    task: Task, tx: optax.GradientTransformation, batch: Mapping[str, np.ndarray], mesh: Mesh
) -> TrainState:
    """Shapes, dtypes and (replicated) shardings of the state, without computing it; the
    restore target for checkpoints."""
    global_batch = {
        k: jax.ShapeDtypeStruct((np.shape(v)[0] * jax.process_count(),) + np.shape(v)[1:], np.asarray(v).dtype)
        for k, v in batch.items()
    }
    shapes = jax.eval_shape(lambda rng, b: _init_state(task, tx, rng, b), jax.random.PRNGKey(0), global_batch)
    sharding = replicated(mesh)
    return jax.tree.map(lambda s: jax.ShapeDtypeStruct(s.shape, s.dtype, sharding=sharding), shapes)


def make_train_step(
    loss_fn: Callable,
    tx: optax.GradientTransformation,
    mesh: Mesh,
    *,
    donate: bool = True,
) -> Callable[[TrainState, Batch], tuple[TrainState, dict]]:
    """Jitted ``train_step(state, batch) -> (state, metrics)``.

    One optimiser step on the global batch (sharded over the mesh's ``"data"`` axis); the
    state stays replicated. ``metrics`` holds ``loss``, the task's metrics, ``grad_norm`` (global
    L2 norm of the gradient before clipping) — all scalars. The input state's buffers are donated (reused for the output) unless
    ``donate=False``; do not use a state after passing it in. Compiles once per batch shape.
    """

    wants_step = "step" in inspect.signature(loss_fn).parameters

    def train_step(state: TrainState, batch: Batch):
        rng = jax.random.fold_in(state.rng, state.step)
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        extra = {"step": state.step} if wants_step else {}
        (loss, (metrics, collections)), grads = grad_fn(state.params, state.collections, batch, rng, **extra)
        updates, opt_state = tx.update(grads, state.opt_state, state.params)
        params = optax.apply_updates(state.params, updates)
        metrics = {"loss": loss, **metrics, "grad_norm": optax.tree.norm(grads)}
        new_state = state.replace(
            step=state.step + 1,
            params=params,
            opt_state=opt_state,
            collections=state.collections if collections is None else collections,
        )
        return new_state, metrics

    rep = replicated(mesh)
    return jax.jit(
        train_step,
        in_shardings=(rep, batch_sharding(mesh)),
        out_shardings=(rep, rep),
        donate_argnums=(0,) if donate else (),
    )


def make_eval_step(eval_fn: Callable, mesh: Mesh) -> Callable[[TrainState, Batch], dict]:
    """Jitted ``eval_step(state, batch) -> sums`` calling ``eval_fn(params, collections, batch)``."""
    rep = replicated(mesh)
    return jax.jit(
        lambda state, batch: eval_fn(state.params, state.collections, batch),
        in_shardings=(rep, batch_sharding(mesh)),
        out_shardings=rep,
    )


def evaluate(eval_step: Callable, state: TrainState, source: DataSource, mesh: Mesh) -> dict[str, float]:
    """Average the sums of ``eval_step`` over one pass of ``source`` (``epoch_batches(0)``).

    Returns ``{name: sum_name / count}`` for every key except ``"count"``, and ``count``.
    Sums are accumulated on the device and fetched once.
    """
    total = None
    for batch in source.epoch_batches(0):
        sums = eval_step(state, shard_batch(batch, mesh))
        total = sums if total is None else jax.tree.map(jnp.add, total, sums)
    if total is None:
        raise ValueError("evaluation source yielded no batches")
    total = jax.device_get(total)
    if "count" not in total:
        raise ValueError(f"eval_fn must return a 'count' entry (number of real examples); got keys {sorted(total)}")
    count = float(total["count"])
    out = {k: float(v) / max(count, 1.0) for k, v in total.items() if k != "count"}
    out["count"] = count
    return out


def masked_sums(per_example: Mapping[str, jax.Array], mask: Optional[jax.Array] = None) -> dict[str, jax.Array]:
    """Sum per-example metrics over the real rows of a batch, for ``eval_fn``.

    Args:
      per_example: ``{name: float[B]}`` per-example values (e.g. loss, correct as 0/1).
      mask: ``bool[B]`` or ``float[B]`` weights of the rows (``batch["mask"]`` of a padded batch);
        None counts every row.

    Returns:
      ``{name: float32[]}`` weighted sums and ``"count"``, the sum of the weights.
    """
    first = next(iter(per_example.values()))
    weight = jnp.ones(jnp.shape(first)[:1], jnp.float32) if mask is None else jnp.asarray(mask, jnp.float32)
    for k, v in per_example.items():  # a [B, 1] metric times a [B] mask would silently broadcast to [B, B]
        if jnp.shape(v) != weight.shape:
            raise ValueError(f"masked_sums: metric {k!r} has shape {jnp.shape(v)}, expected {weight.shape} (one value per row)")
    sums = {k: jnp.sum(jnp.asarray(v, jnp.float32) * weight) for k, v in per_example.items()}
    sums["count"] = jnp.sum(weight)
    return sums
