"""sketch-rnn ``.npz`` datasets: one object array of stroke-3 drawings per split.

A sketch-rnn file (e.g. ``cat.npz``, ``omniglot.npz``) holds ``train`` / ``valid`` / ``test``,
each a 1-D object array of ``[n_i, 3]`` ``(dx, dy, lift)`` arrays (int16 in Google's files),
pickled by Python 2 — hence ``encoding='latin1'``.  Convert each drawing with
:func:`~sketchjax.formats.strokes.from_stroke3`.

Object arrays are pickles, and unpickling an untrusted file can run arbitrary code.  This
loader therefore uses an unpickler that only reconstructs NumPy arrays (equivalent to
``np.load(path, allow_pickle=True, encoding='latin1')`` on legitimate files, refusing anything
else); still, only open files you trust.
"""
from __future__ import annotations

import os
import warnings
import zipfile
from typing import Mapping, Optional, Sequence

import numpy as np

from sketchjax.formats._io import PathLike, atomic_write, safe_unpickle, write_npy_portable
from sketchjax.sketch import SketchError

__all__ = ["load_npz", "save_npz"]


def _read_member(zf: zipfile.ZipFile, member: str) -> np.ndarray:
    """One ``.npy`` member; object arrays through the NumPy-only unpickler."""
    with zf.open(member) as f:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            _, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            _, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise ValueError(f"unsupported .npy format version {version}")
        if dtype.hasobject:
            array = safe_unpickle(f, encoding="latin1")
            if not isinstance(array, np.ndarray):
                raise ValueError(f"pickle holds a {type(array).__name__}, not an array")
            return array
    with zf.open(member) as f:  # plain numeric array: let NumPy read it, no pickle involved
        return np.lib.format.read_array(f, allow_pickle=False)


def _stroke3_list(array: np.ndarray, where: str) -> list[np.ndarray]:
    """Validate a split: a sequence of non-empty numeric ``[n, 3]`` arrays."""
    if array.dtype.kind in "iuf" and array.ndim == 3:  # equal-length drawings stored densely
        array = list(array)
    elif array.ndim != 1:
        raise SketchError(f"{where}: expected a 1-D array of [n, 3] drawings, got shape {array.shape}")
    drawings = []
    for i, drawing in enumerate(array):
        drawing = np.asarray(drawing)
        if drawing.dtype.kind not in "iuf":
            raise SketchError(f"{where}[{i}]: non-numeric stroke-3 data (dtype {drawing.dtype})")
        if drawing.ndim != 2 or drawing.shape[1] != 3:
            raise SketchError(f"{where}[{i}]: wrong shape {drawing.shape}, expected stroke-3 [n, 3]")
        if len(drawing) == 0:
            raise SketchError(f"{where}[{i}]: empty drawing (no points)")
        drawings.append(drawing)
    return drawings


#: sketch-rnn's split names (a file with any of them may hold other, non-drawing arrays)
_SKETCH_RNN_SPLITS = ("train", "valid", "test")


def load_npz(path: PathLike, splits: Optional[Sequence[str]] = None) -> dict[str, list[np.ndarray]]:
    """Read a sketch-rnn ``.npz``: ``{split: [stroke-3 int/float [n_i, 3] arrays]}``.

    Splits are the file's members (usually ``train``, ``valid``, ``test``), in file order;
    with ``splits``, only those of them the file has (the others are not unpickled: a full-size
    category file holds 70,000 training drawings).  Without ``splits``, in a file that has any
    of ``train`` / ``valid`` / ``test``, another member that is not a list of stroke-3
    drawings (a ``scale`` or ``labels`` array saved beside them) is left out with a warning
    naming it; in a file without those names every member must be drawings.

    Raises:
      SketchError: naming the file (and split, and drawing index) — not a zip, truncated or
        corrupt member, a pickle that holds anything but arrays, wrong shapes or dtypes.
    """
    path = os.fspath(path)
    if isinstance(splits, str):
        splits = (splits,)
    try:
        zf = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as e:
        raise SketchError(f"{path}: not a readable .npz file ({e}); corrupt or truncated?") from None
    out = {}
    with zf:
        members = zf.namelist()
        names = [m[:-4] if m.endswith(".npy") else m for m in members]
        standard = splits is None and bool(set(names) & set(_SKETCH_RNN_SPLITS))
        for member, split in zip(members, names):
            if splits is not None and split not in splits:
                continue
            where = f"{path}[{split!r}]"
            try:
                try:
                    array = _read_member(zf, member)
                except Exception as e:  # noqa: BLE001 — a corrupt zip/npy/pickle can raise almost anything
                    raise SketchError(f"{where}: corrupt or truncated array ({type(e).__name__}: {e})") from None
                out[split] = _stroke3_list(array, where)
            except SketchError as e:
                if not standard or split in _SKETCH_RNN_SPLITS:
                    raise
                warnings.warn(f"{path}: left out the member {split!r}, which is not a list of drawings ({e})",
                              stacklevel=2)
    if not members:
        raise SketchError(f"{path}: empty .npz file (no arrays)")
    return out


def save_npz(path: PathLike, splits: Mapping[str, Sequence[np.ndarray]]) -> None:
    """Write ``{split: [stroke-3 [n_i, 3] arrays]}`` as a sketch-rnn ``.npz`` (atomically).

    Each split becomes a 1-D object array, as in sketch-rnn's files, so :func:`load_npz` (or
    ``np.load(..., allow_pickle=True)``) returns the same arrays with the same dtypes; the
    pickles name NumPy 1.x's modules, so NumPy 1.x (e.g. the original sketch-rnn's
    environment) reads the file as well as NumPy 2.  The file is written exactly at ``path``
    (no ``.npz`` suffix is added).
    """
    arrays = {}
    for split, drawings in splits.items():
        where = f"{os.fspath(path)}[{split!r}]"
        checked = _stroke3_list(_object_array(drawings), where)
        for i, drawing in enumerate(checked):  # written as is, the file would fail its readers later
            bad = np.argwhere(~np.isfinite(drawing))
            if len(bad):
                raise SketchError(f"{where}[{i}]: non-finite value (NaN/inf) at row {bad[0][0]}; not written")
        arrays[split] = _object_array(checked)
    with atomic_write(path, "wb") as f, zipfile.ZipFile(f, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        for split, array in arrays.items():  # np.savez's layout: one `<split>.npy` member each
            with zf.open(f"{split}.npy", "w", force_zip64=True) as member:
                write_npy_portable(member, array)


def _object_array(items: Sequence) -> np.ndarray:
    # Element-wise assignment: np.array(list_of_arrays) would build a 3-D array when all
    # drawings happen to have the same length.
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out
