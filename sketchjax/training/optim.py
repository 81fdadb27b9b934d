"""Optimisers and learning-rate schedules (Optax), built from a few plain settings.

The recipe of GACL (G §4) is Adam at 1e-3 with cosine annealing and a warm restart every
epoch: ``make_optimizer("adam", 1e-3, schedule="sgdr", restart_every=steps_per_epoch)``.
"""
from __future__ import annotations

import numbers
from typing import Any, Callable, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import optax

from sketchjax._checks import check_int, is_real

__all__ = ["warm_restart_schedule", "make_schedule", "make_optimizer", "optimizer_from_config", "scale_by_path",
           "clip_trainable_by_global_norm"]

Schedule = Callable[[Any], Any]


def warm_restart_schedule(
    peak_value: float,
    period: int,
    *,
    warmup_steps: int = 0,
    min_value: float = 0.0,
    init_value: float = 0.0,
) -> Schedule:
    """Cosine annealing with warm restarts (SGDR, Loshchilov & Hutter 2017) after a linear warmup.

    ``lr(t) = init + (peak - init) t / W`` for ``t < W`` (warmup), then with ``u = (t - W) mod P``:
    ``lr(t) = min + (peak - min) (1 + cos(pi u / P)) / 2`` — the same as PyTorch's
    ``CosineAnnealingWarmRestarts(T_0=P, T_mult=1, eta_min=min)`` stepped once per optimiser
    step. Cycles are counted from the end of the warmup. Unlike ``optax.sgdr_schedule`` the
    number of restarts is unbounded and evaluating it costs O(1).

    Args:
      peak_value: learning rate at the start of every cycle.
      period: steps per cycle ``P`` (``steps_per_epoch`` restarts every epoch).
      warmup_steps: linear warmup length ``W`` (0: none).
      min_value: learning rate the cosine reaches at the end of a cycle.
      init_value: learning rate at step 0 of the warmup.

    Returns:
      ``schedule(step: int array) -> float32 learning rate``; jit-able.
    """
    if period < 1:
        raise ValueError(f"period must be >= 1, got {period}")
    if warmup_steps < 0:
        raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")

    def schedule(step):
        step = jnp.asarray(step, jnp.float32)
        u = jnp.mod(jnp.maximum(step - warmup_steps, 0.0), period)
        cosine = min_value + (peak_value - min_value) * 0.5 * (1.0 + jnp.cos(jnp.pi * u / period))
        if warmup_steps == 0:
            return cosine
        warm = init_value + (peak_value - init_value) * step / warmup_steps
        return jnp.where(step < warmup_steps, warm, cosine)

    return schedule


def make_schedule(
    learning_rate: float,
    schedule: str = "constant",
    *,
    total_steps: Optional[int] = None,
    restart_every: Optional[int] = None,
    warmup_steps: int = 0,
    min_learning_rate: float = 0.0,
) -> Schedule:
    """Learning-rate schedule by name.

    Args:
      learning_rate: peak learning rate.
      schedule: ``"constant"``; ``"cosine"`` (one cosine decay to ``min_learning_rate`` over
        ``total_steps``); ``"sgdr"`` (cosine with a warm restart every ``restart_every`` steps,
        :func:`warm_restart_schedule`). All start with ``warmup_steps`` of linear warmup from 0.
      total_steps: run length, needed by ``"cosine"``.
      restart_every: cycle length in steps, needed by ``"sgdr"``.
      warmup_steps: linear warmup steps.
      min_learning_rate: floor of the cosine schedules.
    """
    if schedule == "constant":
        if warmup_steps:
            return optax.join_schedules(
                [optax.linear_schedule(0.0, learning_rate, warmup_steps), optax.constant_schedule(learning_rate)],
                [warmup_steps],
            )
        return optax.constant_schedule(learning_rate)
    if schedule == "cosine":
        if not total_steps:
            raise ValueError("schedule='cosine' needs total_steps")
        return optax.warmup_cosine_decay_schedule(
            0.0, learning_rate, warmup_steps, max(total_steps, warmup_steps + 1), end_value=min_learning_rate
        )
    if schedule == "sgdr":
        if not restart_every:
            raise ValueError("schedule='sgdr' needs restart_every (steps per cycle)")
        return warm_restart_schedule(
            learning_rate, restart_every, warmup_steps=warmup_steps, min_value=min_learning_rate
        )
    raise ValueError(f"unknown schedule {schedule!r}; expected 'constant', 'cosine' or 'sgdr'")


def make_optimizer(
    name: str,
    learning_rate: float | Schedule,
    *,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    nesterov: bool = False,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
    clip_norm: Optional[float] = None,
) -> optax.GradientTransformation:
    """Optax optimiser by name: ``"adam"``, ``"adamw"`` (decoupled ``weight_decay``) or ``"sgd"``
    (``momentum``, ``nesterov``), preceded by gradient clipping to global norm ``clip_norm``
    when given. ``learning_rate`` is a float or a schedule of the step.

    Raises ``ValueError`` for a learning rate that is not finite and > 0 (a negative one
    ascends), a negative or non-finite ``weight_decay``, a ``clip_norm`` that is not None or
    finite and > 0 (0 stops training; a negative norm flips every update), a ``momentum``,
    ``b1`` or ``b2`` outside ``[0, 1)`` and an ``eps`` that is not finite and >= 0."""
    _check_positive("learning_rate", learning_rate)
    if not (0.0 <= float(weight_decay) < float("inf")):
        raise ValueError(f"weight_decay must be finite and >= 0, got {weight_decay}")
    if clip_norm is not None:
        _check_positive("clip_norm", clip_norm)
    # the moment decays in [0, 1) (NaN or -3 trained NaN, and the error blamed the learning rate)
    for param, value in (("momentum", 0.0 if momentum is None else momentum), ("b1", b1), ("b2", b2)):  # None: none
        if not is_real(value) or not 0.0 <= float(value) < 1.0:
            raise ValueError(f"{param} must be a number in [0, 1), got {value!r}")
    if not is_real(eps) or not 0.0 <= float(eps) < float("inf"):
        raise ValueError(f"eps must be finite and >= 0, got {eps!r}")
    if name == "adam":
        if weight_decay:
            raise ValueError("adam has no weight_decay here; use 'adamw' (decoupled) instead")
        tx = optax.adam(learning_rate, b1=b1, b2=b2, eps=eps)
    elif name == "adamw":
        tx = optax.adamw(learning_rate, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay)
    elif name == "sgd":
        tx = optax.sgd(learning_rate, momentum=momentum or None, nesterov=nesterov)
        if weight_decay:
            tx = optax.chain(optax.add_decayed_weights(weight_decay), tx)
    else:
        raise ValueError(f"unknown optimizer {name!r}; expected 'adam', 'adamw' or 'sgd'")
    if clip_norm is not None:
        tx = optax.chain(optax.clip_by_global_norm(clip_norm), tx)
    return tx


def _check_positive(name: str, value) -> None:
    """``value`` (a schedule: not checked) is a finite number > 0, or ``ValueError``."""
    if callable(value):
        return
    try:
        ok = 0.0 < float(value) < float("inf")
    except (TypeError, ValueError):
        ok = False
    if isinstance(value, bool) or not ok:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")


def clip_trainable_by_global_norm(max_norm: float, frozen: Sequence[str]) -> optax.GradientTransformation:
    """``optax.clip_by_global_norm(max_norm)`` over the parameters outside the ``frozen`` path
    prefixes, whose gradients are set to zero first — so a frozen backbone's gradients neither
    count in the norm nor shrink the trained parameters' updates.  Same (empty) state as optax's."""
    zero = scale_by_path({prefix: 0.0 for prefix in frozen})
    clip = optax.clip_by_global_norm(max_norm)

    def init_fn(params):
        zero.init(params)  # checks every prefix names a parameter
        return clip.init(params)

    def update_fn(updates, state, params=None):
        updates, _ = zero.update(updates, optax.EmptyState())
        return clip.update(updates, state, params)

    return optax.GradientTransformation(init_fn, update_fn)


def _path_names(path) -> tuple[str, ...]:
    """The keys of a pytree path as strings (dict keys, attribute names, sequence indices)."""
    names = []
    for entry in path:
        for attr in ("key", "name", "idx"):
            if hasattr(entry, attr):
                names.append(str(getattr(entry, attr)))
                break
        else:
            names.append(str(entry))
    return tuple(names)


def scale_by_path(factors: Mapping[str, float]) -> optax.GradientTransformation:
    """Multiplies the update of each parameter by the factor of the longest prefix of its path.

    ``factors`` maps ``"/"``-joined parameter paths (``"encoder"``, ``"encoder/conv_0"``) to
    multipliers; a prefix matches whole path components only.  Chained after an optimiser
    this is a per-layer learning-rate multiplier (exact for Adam, SGD and AdamW, whose updates
    are proportional to the learning rate); ``0`` freezes the parameters.  Parameters no
    prefix matches keep their update.  The factors are Python constants, so the paths are
    resolved once at trace time; raises ``ValueError`` at ``init`` for a prefix that matches
    no parameter (a typo would otherwise train everything at full rate), and at construction
    for a negative or non-finite factor or two prefixes naming the same path.  A frozen
    parameter's update is exactly zero, even where the optimiser's is not finite."""
    table = {}
    for prefix, factor in dict(factors).items():
        parts = tuple(p for p in str(prefix).split("/") if p)
        factor = float(factor)
        if not parts:
            raise ValueError(f"lr_scale: empty parameter path {prefix!r}")
        if not (factor >= 0.0 and factor < float("inf")):
            raise ValueError(f"lr_scale[{prefix!r}] = {factor}: a multiplier must be finite and >= 0")
        if parts in table:
            raise ValueError(f"lr_scale: {prefix!r} names the parameter path {'/'.join(parts)!r} twice")
        table[parts] = factor

    def factor_of(path) -> float:
        names = _path_names(path)
        best = max((p for p in table if names[:len(p)] == p), key=len, default=None)
        return 1.0 if best is None else table[best]

    def init_fn(params):
        paths = [_path_names(p) for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]]
        unused = sorted("/".join(p) for p in table if not any(n[:len(p)] == p for n in paths))
        if unused:
            tops = sorted({n[0] for n in paths if n})
            raise ValueError(f"lr_scale: no parameter under {unused}; the parameters start with {tops}")
        return optax.EmptyState()

    def update_fn(updates, state, params=None):
        del params

        def scale(path, u):
            f = factor_of(path)
            if f == 0.0:
                return jnp.zeros_like(u)  # frozen, even where the optimiser's update is NaN / inf
            return u if f == 1.0 else (u * jnp.asarray(f, u.dtype))

        return jax.tree_util.tree_map_with_path(scale, updates), state

    return optax.GradientTransformation(init_fn, update_fn)


#: the keys of a config's ``optimizer`` section (:func:`sketchjax.training.default_config`)
OPTIMIZER_KEYS = frozenset({"name", "learning_rate", "schedule", "restart_every", "warmup_steps", "min_learning_rate",
                            "weight_decay", "momentum", "nesterov", "clip_norm", "lr_scale"})


def optimizer_from_config(
    config: Mapping[str, Any], *, steps_per_epoch: int, total_steps: int
) -> tuple[optax.GradientTransformation, Schedule]:
    """Optimiser and schedule from the ``optimizer`` section of a training config.

    Keys (see :func:`sketchjax.training.default_config`): ``name``, ``learning_rate``,
    ``schedule``, ``restart_every`` (``"epoch"`` or a number of steps), ``warmup_steps``,
    ``min_learning_rate``, ``weight_decay``, ``momentum``, ``nesterov``, ``clip_norm``,
    ``lr_scale`` (None, or ``{parameter path prefix: multiplier}`` — :func:`scale_by_path`).
    """
    config = dict(config)
    unknown = sorted(set(config) - OPTIMIZER_KEYS)
    if unknown:  # a typo ("lerning_rate") would silently train with the default
        raise ValueError(f"optimizer: unknown key(s) {unknown}; known: {sorted(OPTIMIZER_KEYS)}")
    _check_positive("optimizer.learning_rate", config.get("learning_rate", 1e-3))
    check_int("optimizer", "warmup_steps", config.get("warmup_steps", 0), 0)
    floor = config.get("min_learning_rate", 0.0)
    if isinstance(floor, bool) or not isinstance(floor, numbers.Real) or not 0.0 <= floor <= float(config.get("learning_rate", 1e-3)):
        # a negative floor turns the end of a cosine into gradient ascent
        raise ValueError(f"optimizer.min_learning_rate must be in [0, learning_rate], got {floor!r}")
    restart_every = config.get("restart_every", "epoch")
    if restart_every == "epoch":
        restart_every = steps_per_epoch
    elif restart_every:  # a number; `--set optimizer.restart_every=1e3` keeps a string (the default's type)
        try:
            number = float(restart_every)
        except (TypeError, ValueError):
            number = float("nan")
        if isinstance(restart_every, bool) or not number.is_integer() or number < 0:
            raise ValueError(f"optimizer.restart_every must be 'epoch' or a whole number of steps (0: none), "
                             f"got {restart_every!r}")
        restart_every = int(number) or None
    else:  # None / 0: no restarts (schedule 'sgdr' then asks for them)
        restart_every = None
    schedule = make_schedule(
        float(config.get("learning_rate", 1e-3)),
        config.get("schedule", "constant"),
        total_steps=total_steps,
        restart_every=restart_every,
        warmup_steps=int(config.get("warmup_steps", 0)),
        min_learning_rate=float(config.get("min_learning_rate", 0.0)),
    )
    lr_scale = config.get("lr_scale")
    if lr_scale is not None and not isinstance(lr_scale, Mapping):
        # e.g. `--set optimizer.lr_scale=0.0` meant as "frozen": a bare number would be ignored
        raise ValueError(f"optimizer.lr_scale must be None or {{parameter path prefix: multiplier}}, got "
                         f"{lr_scale!r}; e.g. {{'encoder': 0.0}} freezes the encoder")
    clip_norm = config.get("clip_norm")
    frozen = [prefix for prefix, factor in (lr_scale or {}).items() if float(factor) == 0.0]
    tx = make_optimizer(
        config.get("name", "adam"),
        schedule,
        weight_decay=float(config.get("weight_decay", 0.0)),
        momentum=config.get("momentum", 0.9),  # checked by make_optimizer (float() named neither key nor value)
        nesterov=bool(config.get("nesterov", False)),
        clip_norm=None if frozen else clip_norm,
    )
    if frozen and clip_norm is not None:
        # frozen parameters' gradients left out of the clipping norm (same optimiser state
        # layout as make_optimizer's clip, so checkpoints restore either way)
        _check_positive("clip_norm", clip_norm)
        tx = optax.chain(clip_trainable_by_global_norm(clip_norm, frozen), tx)
    if lr_scale:
        tx = optax.chain(tx, scale_by_path(lr_scale))
    return tx, schedule
