"""Argument checks of the public renderers, run before their jitted implementations.

Shapes and static parameters are checked on every call (also when traced under an outer
``jit``/``vmap``/``grad``); the values of ``xy``/``pen`` (finite, within
:data:`~sketchjax.sketch.MAX_ABS_COORD` on valid points) only when they are concrete, i.e.
when the renderer is called eagerly — a pipeline that ``jit``\\ s the renderer pays for the
checks once, at tracing.
"""
from __future__ import annotations

import functools
import inspect
import numbers

from sketchjax.sketch import check_points


def check_positive_int(name: str, param: str, value) -> int:
    """``value`` as an ``int >= 1``, or ValueError naming ``name`` and ``param``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise ValueError(f"{name}: {param} must be an integer >= 1, got {value!r}")
    return int(value)


def checked(*int_params: str):
    """Decorator of a jitted renderer ``fn(xy, pen, valid, ...)``: checks the points
    (:func:`~sketchjax.sketch.check_points`) and that each of ``int_params`` is an integer >= 1,
    then calls ``fn`` (the jitted function stays available as ``.jitted``)."""

    def decorate(fn):
        signature = inspect.signature(fn)

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            bound = signature.bind(*args, **kwargs)
            bound.apply_defaults()
            values = bound.arguments
            for param in int_params:
                check_positive_int(fn.__name__, param, values[param])
            check_points(values["xy"], values["pen"], values["valid"], fn.__name__)
            return fn(*args, **kwargs)

        wrapper.jitted = fn
        return wrapper

    return decorate
