"""Shared fixtures: the real-data directory (skips when absent) and small synthetic sketches."""
from __future__ import annotations

import atexit
import os
import pathlib
import shutil
import tempfile

# Tests run small models on tiny inputs, so XLA's compile time dominates their run time: LLVM
# optimisation level 1 compiles e.g. a ResNet-18's initialiser in 3 s instead of 11 s (level 2,
# the default) and runs code ~1.2x slower, which only benchmarks would notice (never run under
# pytest); level 0 compiles a little faster still but runs ~2x slower.  Appended before JAX
# starts a backend (XLA's GPU compiler reads the flag too), unless the user's XLA_FLAGS name a
# level (a level set only inside a --flagfile is not noticed); subprocesses inherit it.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_backend_optimization_level=1").strip()

# The library promises to work for users of JAX's strict rank promotion (implicit broadcasting
# of a lower-rank operand is an error): the whole suite runs under it.  Set before JAX is
# imported (JAX reads it then) so subprocesses the tests start inherit it; a value the user set
# (e.g. "warn" or "allow" while debugging) is kept, here and below.
os.environ.setdefault("JAX_NUMPY_RANK_PROMOTION", "raise")

# One XLA compilation cache for the whole test session (and the programs it starts as
# subprocesses): many tests build the same small models and steps, and a compiled program
# found on disk is reused instead of compiled again.  pytest-xdist's workers inherit the
# variable from the controlling process (which loads this file first), so they share it; JAX
# reads JAX_COMPILATION_CACHE_DIR and JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS at import.
# Set before JAX compiles anything; a user's own JAX_COMPILATION_CACHE_DIR is left alone.
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _XLA_CACHE = tempfile.mkdtemp(prefix="sketchjax-tests-xla-cache-")
    atexit.register(shutil.rmtree, _XLA_CACHE, ignore_errors=True)
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _XLA_CACHE
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    import jax

    jax.config.update("jax_compilation_cache_dir", _XLA_CACHE)
    jax.config.update("jax_persistent_cache_min_compile_time_secs",
                      float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))

import jax
import numpy as np
import pytest

# ... and in this process also if something imported JAX before this file was loaded.
jax.config.update("jax_numpy_rank_promotion", os.environ["JAX_NUMPY_RANK_PROMOTION"])

from sketchjax.formats import from_strokes
from sketchjax.paths import DATA_ENV_VAR, data_root as find_data_root


@pytest.fixture(scope="session")
def data_root() -> pathlib.Path:
    """The real-data directory ($SKETCHJAX_DATA or ../shared/data); skips the test if absent."""
    try:
        return find_data_root()
    except FileNotFoundError as e:
        pytest.skip(f"real sketch data not available (set ${DATA_ENV_VAR}): {e}")


@pytest.fixture(scope="session")
def data_file(data_root):
    """``data_file("quickdraw", "raw")`` -> path under the data root; skips if it is missing."""

    def find(*parts: str) -> pathlib.Path:
        path = data_root.joinpath(*parts)
        if not path.exists():
            pytest.skip(f"{path} not present in the data directory")
        return path

    return find


@pytest.fixture
def three_strokes():
    """An unpadded sketch: strokes of 3, 2 and 4 integer points."""
    return from_strokes(
        [
            np.array([[0, 0], [10, 0], [10, 10]]),
            np.array([[20, 5], [25, 30]]),
            np.array([[1, 2], [3, 4], [5, 6], [7, 9]]),
        ],
        name="three_strokes",
    )
