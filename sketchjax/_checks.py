"""Argument checks shared by the public functions (one definition of each rule).

Shapes and static parameters are checked on every call (also when traced under an outer
``jit``/``vmap``/``grad``); values only when they are concrete (not tracers).  The renderers
are wrapped by :func:`checked`: ``xy``/``pen`` finite and within
:data:`~sketchjax.sketch.MAX_ABS_COORD` on valid points when called eagerly — a pipeline that
``jit``\\ s the renderer pays for the checks once, at tracing.
"""
from __future__ import annotations

import functools
import inspect
import numbers

import jax
import numpy as np

from sketchjax.sketch import check_points


def is_real(value) -> bool:
    """A real number (int, float, NumPy scalar) — not a bool, text or array."""
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_))


def is_number(value) -> bool:
    """A real number given any way — Python, NumPy or a concrete 0-d JAX array — not a bool,
    text, None or a larger array."""
    if is_real(value):
        return True
    if isinstance(value, (bool, np.bool_, str, bytes)) or value is None or np.ndim(value) != 0:
        return False
    return is_number_dtype(np.asarray(value).dtype)


def is_number_dtype(dtype) -> bool:
    """An integer or floating dtype, bfloat16 and the other ml_dtypes floats included (NumPy's
    ``kind`` calls them ``'V'``); not bool."""
    import jax.numpy as jnp

    return bool(jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating))


def check_int(name: str, param: str, value, low: int | None = None, error: type = ValueError, why: str = "") -> int:
    """``value`` as an ``int`` (``>= low`` when given), or ``error`` (a ValueError subclass)
    naming ``name`` and ``param`` — a bool or a float (2.5 cut to 2) is refused, not rounded;
    ``why`` (e.g. ``" (0: only at the end)"``) is appended to the rule in the message."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (low is not None and value < low):
        rule = "an integer" if low is None else f"an integer >= {low}"
        raise error(f"{name}: {param} must be {rule}{why}, got {value!r}")
    return int(value)


def check_uint32(name: str, param: str, value) -> int:
    """``value`` as an ``int`` in ``[0, 2**32)`` — a seed or an epoch a PRNG key is folded from
    (``PRNGKey`` / ``fold_in`` wrap larger ones: seed 2**32 drew seed 0's numbers) — or a
    ValueError naming ``name`` and ``param``."""
    if check_int(name, param, value, 0) >= 2**32:
        raise ValueError(f"{name}: {param} must be in [0, 2**32), got {value}")
    return int(value)


def check_positive_int(name: str, param: str, value, error: type = ValueError) -> int:
    """``value`` as an ``int >= 1``, or ``error`` (a ValueError subclass) naming ``name`` and ``param``."""
    return check_int(name, param, value, 1, error)


def check_key(name: str, key, param: str = "key", batch: int | None = None) -> None:
    """``key`` is one PRNG key (or, with ``batch``, ``batch`` of them stacked): a typed key array
    of shape ``()`` / ``(batch,)`` (``jax.random.key``) or a raw ``uint32`` key
    (``jax.random.PRNGKey``: trailing ``(2,)``, ``(4,)`` for the ``rbg`` implementations);
    otherwise a ValueError naming ``name`` (JAX's own error is a TypeError about "key data",
    or a batch of keys is silently taken as one).  Static: also under tracing."""
    lead = () if batch is None else (batch,)
    dtype = getattr(key, "dtype", None)
    if dtype is not None:
        shape = np.shape(key)
        if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
            if shape == lead:
                return
        elif dtype == np.uint32 and shape[:-1] == lead and shape[-1:] in ((2,), (4,)):
            return
        got = f"{dtype}{list(shape)}"
    else:
        got = repr(key)
    what = "one PRNG key" if batch is None else f"{batch} PRNG keys (jax.random.split(key, {batch}))"
    raise ValueError(f"{name}: {param} must be {what} (keys from jax.random.key(seed) or "
                     f"jax.random.PRNGKey(seed)), got {got}")


def check_same_1d(name: str, **arrays) -> None:
    """Every array (None skipped) 1-D, all of one length; ValueError naming them otherwise
    (broadcasting would silently pair the wrong entries)."""
    shapes = {k: np.shape(v) for k, v in arrays.items() if v is not None}
    if any(len(s) != 1 for s in shapes.values()) or len(set(shapes.values())) > 1:
        raise ValueError(f"{name}: needs 1-D arrays of one length N, got shapes "
                         + ", ".join(f"{k} {s}" for k, s in shapes.items()))


def check_binary(name: str, positive, what: str = "positive") -> None:
    """Concrete labels / flags must be boolean or 0/1 (skipped for tracers): a score passed as
    flags would count every nonzero entry as True."""
    if positive is None or isinstance(positive, jax.core.Tracer):
        return
    p = np.asarray(positive)
    if p.dtype != np.bool_ and not np.isin(p, (0, 1)).all():
        raise ValueError(f"{name}: {what} must be boolean (or 0/1), got values such as "
                         f"{p[~np.isin(p, (0, 1))][:3].tolist()}")


def check_finite(name: str, why: str, **arrays) -> None:
    """Concrete arrays (None and tracers skipped) hold only finite values; otherwise a
    ValueError naming the function, the arrays, why it matters and the first bad entry."""
    for key, value in arrays.items():
        if value is None or isinstance(value, jax.core.Tracer):
            continue
        bad = np.flatnonzero(~np.isfinite(np.asarray(value, np.float64)))
        if bad.size:
            raise ValueError(f"{name}: {' and '.join(arrays)} must be finite ({why}); {key} is not at index {bad[0]}")


def check_thresholds(name: str, **values) -> None:
    """Concrete thresholds (tracers skipped) are numbers, not NaN (a NaN comparison is false
    everywhere: the rule it sets is silently switched off); +-inf allowed."""
    for key, value in values.items():
        if value is None or isinstance(value, jax.core.Tracer):
            continue
        v = np.asarray(value, np.float64)
        if v.ndim or np.isnan(v):
            raise ValueError(f"{name}: threshold {key} must be a number (not NaN), got {value!r}")


def check_labels(name: str, labels, num_classes: int, what: str = "labels") -> None:
    """Concrete ``labels`` are integers (or bools) in ``[0, num_classes)`` — an index out of
    range would give NaN or wrap to the last class; skipped for tracers."""
    if labels is None or isinstance(labels, jax.core.Tracer):
        return
    lab = np.asarray(labels)
    if lab.size and (lab.dtype.kind not in "iub" or lab.min() < 0 or lab.max() >= num_classes):
        raise ValueError(f"{name}: {what} must be integers in [0, {num_classes}), got dtype {lab.dtype}, "
                         f"values in [{lab.min()}, {lab.max()}]")


def checked(*int_params: str, fits: bool = False):
    """Decorator of a jitted renderer ``fn(xy, pen, valid, ...)``: checks the points
    (:func:`~sketchjax.sketch.check_points`; with ``fits``, a function that fits the sketch to its
    canvas first, finite coordinates in any units) and that each of ``int_params`` is an integer
    >= 1, then calls ``fn`` (the jitted function stays available as ``.jitted``)."""

    def decorate(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = bound.arguments
            for param in int_params:
                check_positive_int(fn.__name__, param, values[param])
            check_points(values["xy"], values["pen"], values["valid"], fn.__name__, any_units=fits)
            return fn(*args, **kwargs)

        wrapper.jitted = fn
        return wrapper

    return decorate
