"""QMUL Chair-V2 (and Shoe-V2) fine-grained SBIR coordinate pickles.

The file is a pickled dict ``{'/train/<photo-stem>_<n>': float64[N, 3]}``: absolute ``x, y`` on
a 256 canvas, third column 1 on the last point of each stroke (0 elsewhere); ``<photo-stem>``
names the matching photo (``photo/<photo-stem>.png``) and ``<n>`` numbers its sketches.

Pickle is unsafe for untrusted files (unpickling can run arbitrary code).  Only load files you
chose to trust; as a second line of defence the loader uses an unpickler that reconstructs
NumPy arrays and plain containers only and refuses everything else.

Coordinates are stored as float64 in the file and float32 in :class:`Sketch`, so a round trip
is exact to float32 precision (relative error <= 2**-24), not bit-exact in float64.
"""
from __future__ import annotations

import os
import pickle
from typing import Mapping

import numpy as np

from sketchjax.formats._io import PathLike, safe_unpickle
from sketchjax.formats.strokes import from_strokes, to_strokes
from sketchjax.sketch import Sketch, SketchError

__all__ = ["load_chairv2", "chairv2_photo_stem", "chairv2_to_sketch", "sketch_to_chairv2"]


def chairv2_photo_stem(key: str) -> str:
    """The photo a sketch key belongs to: ``'/train/00140128_v1_3'`` -> ``'00140128_v1'``."""
    stem, sep, index = key.rsplit("/", 1)[-1].rpartition("_")
    if not sep or not stem or not index.isdigit():
        raise SketchError(f"key {key!r}: not of the form '/<split>/<photo-stem>_<n>'")
    return stem


def chairv2_to_sketch(points, *, name: str = "sketch", single_point: str = "error") -> Sketch:
    """Sketch from a Chair-V2 array ``[N, 3]``: absolute x, y and 1 on each stroke's last point.

    Points after the last end flag form a final stroke.  ``single_point`` is the policy for
    one-point strokes (see ``SINGLE_POINT_POLICIES``).
    """
    try:
        arr = np.asarray(points)
    except (ValueError, TypeError):
        raise SketchError(f"{name}: not a rectangular [N, 3] array ({type(points).__name__})") from None
    if arr.dtype.kind not in "iuf":
        raise SketchError(f"{name}: non-numeric array (dtype {arr.dtype}), expected [N, 3] floats")
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise SketchError(f"{name}: wrong shape {arr.shape}, expected [N, 3] (x, y, end-of-stroke)")
    if len(arr) == 0:
        raise SketchError(f"{name}: empty drawing (no points)")
    flags = arr[:, 2]
    if not np.isin(flags, (0, 1)).all():
        row = int(np.flatnonzero(~np.isin(flags, (0, 1)))[0])
        raise SketchError(f"{name}: row {row}: end-of-stroke flag {flags[row]:g} is not 0 or 1")
    strokes = [s for s in np.split(arr[:, :2], np.flatnonzero(flags == 1) + 1) if len(s)]
    return from_strokes(strokes, name=name, single_point=single_point)


def sketch_to_chairv2(sketch: Sketch, *, name: str = "sketch") -> np.ndarray:
    """Chair-V2 ``float64[N, 3]`` of an unbatched sketch: x, y, 1 on each stroke's last point."""
    rows = []
    for stroke in to_strokes(sketch, name=name):
        end = np.zeros((len(stroke), 1))
        end[-1] = 1.0
        rows.append(np.hstack([stroke.astype(np.float64), end]))
    return np.concatenate(rows)


def load_chairv2(path: PathLike, *, single_point: str = "error") -> dict[str, Sketch]:
    """Read a Chair-V2 coordinate pickle into ``{key: Sketch}`` (unpadded sketches).

    Keys are kept as in the file (``'/train/<photo-stem>_<n>'``); the photo of a sketch is
    :func:`chairv2_photo_stem` ``(key)``.  Read only files you trust (see module docstring).

    Raises:
      SketchError: naming the file — unreadable, truncated or corrupt pickle, not a dict —
        or the file and key — bad array shape/dtype, NaN, flags other than 0/1, ....
    """
    path = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = safe_unpickle(f, encoding="latin1")
    except OSError as e:
        raise SketchError(f"{path}: cannot read Chair-V2 pickle ({e})") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as e:
        raise SketchError(f"{path}: corrupt or truncated pickle ({type(e).__name__}: {e})") from None
    if not isinstance(data, Mapping):
        raise SketchError(f"{path}: expected a pickled dict of key -> [N, 3] array, got {type(data).__name__}")
    if not data:
        raise SketchError(f"{path}: empty dataset (no sketches)")
    not_text = next((key for key in data if not isinstance(key, str)), None)
    if not_text is not None:  # the builder failed on it with "'int' object has no attribute 'strip'"
        raise SketchError(f"{path}: key {not_text!r} is not text (keys are '/<split>/<photo-stem>_<n>')")
    return {
        key: chairv2_to_sketch(points, name=f"{path}[{key!r}]", single_point=single_point)
        for key, points in data.items()
    }
