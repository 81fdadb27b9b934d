"""Random access to a built split: TFDS's ``data_source`` plus a fast decoder for sketch fields.

``tfds.data_source(...)`` (no TensorFlow, no ``tf.data``) returns a Sequence of decoded
examples; its generic decoder reads ~7-10k QuickDraw examples/s on this project's 2-core CPU
(random batches of 256).  :class:`SketchSource` reads the same array_record records through
that data source's own reader and decodes the fields the builders of :mod:`sketchjax.data`
write (raw-byte tensors, integer scalars, text) straight from the ``tf.train.Example``
protobuf: ~40-50k examples/s, with identical results (checked by the tests); other features
(e.g. images) fall back to TFDS's decoder.

Read in batches (``__getitems__``): array_record's reader costs ~0.4 ms per call however few
records it returns (measured here: 1 record per call ~2.5k records/s, 32 ~40k/s, 256 ~110k/s
from one shard), and a batch is split into one call per shard file, so large batches over
few shards read fastest.  :class:`~sketchjax.data.SketchBatchIterator` therefore reads the
records of several batches at once.
"""
from __future__ import annotations

import collections.abc
import os
import pathlib
from typing import Any, Iterable, Optional, Sequence, Union

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.proto import tf_example_pb2

__all__ = ["SketchSource", "open_split"]


def _field_decoder(feature) -> Optional[tuple]:
    """``(kind, dtype, shape)`` for features decodable here; None = use TFDS's decoder."""
    if isinstance(feature, tfds.features.ClassLabel):
        return ("int", np.dtype(np.int64), ())
    if isinstance(feature, tfds.features.Text):
        return ("text", None, ())
    if type(feature) in (tfds.features.Tensor, tfds.features.Scalar):
        dtype = np.dtype(feature.np_dtype)
        if dtype.kind not in "biuf" or dtype == np.uint64:
            return None  # strings (bytes_list) and uint64 (stored as signed int64): TFDS decodes them
        shape = tuple(-1 if d is None else d for d in feature.shape)
        if shape.count(-1) > 1:
            return None  # stored with an extra shape field
        encoding = getattr(feature, "_encoding", None)
        if encoding == tfds.features.Encoding.BYTES:
            return ("bytes", dtype, shape)
        if encoding == tfds.features.Encoding.NONE:
            if not shape:
                return ("scalar", dtype, ())
            return ("list", dtype, shape)
    return None


class SketchSource(collections.abc.Sequence):
    """A Sequence of examples (dicts of NumPy values) over one split of a built dataset.

    Args:
      data_source: a TFDS array_record data source (``tfds.data_source(...)`` or
        ``builder.as_data_source(split)``).
      fields: feature names to decode (default: all).  The iterator only needs
        ``("points", "pen", "label")``.

    ``source[i]`` equals ``data_source[i]`` restricted to ``fields`` (text as ``bytes``, as
    TFDS returns it).  ``source.__getitems__(indices)`` reads a batch of records at once.
    """

    def __init__(self, data_source, fields: Optional[Sequence[str]] = None):
        features = data_source.dataset_info.features
        names = list(features.keys()) if fields is None else list(fields)
        unknown = [n for n in names if n not in features]
        if unknown:
            raise KeyError(f"{data_source}: no feature(s) {unknown}; the dataset has {sorted(features.keys())}")
        self.data_source = data_source
        self.fields = tuple(names)
        self._reader = data_source.data_source  # the array_record reader under TFDS's wrapper
        self._features = features
        self._fast = {n: _field_decoder(features[n]) for n in names}
        self._slow = [n for n, d in self._fast.items() if d is None]

    @property
    def dataset_info(self):
        return self.data_source.dataset_info

    def __len__(self) -> int:
        return len(self._reader)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.__getitems__(range(len(self))[index])
        n = len(self)
        i = int(index)
        if not -n <= i < n:
            raise IndexError(f"index {index} out of range for {n} examples")
        return self._decode(self._reader[i % n])

    def __getitems__(self, indices: Iterable[int]) -> list[dict]:
        n = len(self)
        indices = [int(i) for i in indices]
        bad = [i for i in indices if not -n <= i < n]
        if bad:
            raise IndexError(f"index {bad[0]} out of range for {n} examples")
        indices = [i % n for i in indices]  # negative indices count from the end, as in __getitem__
        if not indices:
            return []
        records = self._reader.__getitems__(indices)
        if len(records) != len(indices):
            raise IndexError(f"requested {len(indices)} records, got {len(records)}")
        return [self._decode(r) for r in records]

    def _decode(self, record: bytes) -> dict[str, Any]:
        feature_map = tf_example_pb2.Example.FromString(record).features.feature
        out = {}
        for name, spec in self._fast.items():
            if spec is None:
                continue
            kind, dtype, shape = spec
            f = feature_map[name]
            if kind == "bytes":
                out[name] = np.frombuffer(f.bytes_list.value[0], dtype).reshape(shape)
            elif kind == "int":
                out[name] = int(f.int64_list.value[0])
            elif kind == "text":
                out[name] = f.bytes_list.value[0]
            elif kind == "scalar":
                values = f.int64_list.value if dtype.kind in "biu" else f.float_list.value
                out[name] = dtype.type(values[0]).item()  # a Python scalar, as TFDS returns
            else:  # "list"
                values = f.int64_list.value if dtype.kind in "biu" else f.float_list.value
                out[name] = np.array(values, dtype).reshape(shape)
        if self._slow:
            full = self._features.deserialize_example_np(record)
            out.update({n: full[n] for n in self._slow})
        return out

    def __repr__(self) -> str:
        return f"SketchSource({self.data_source!r}, fields={self.fields})"


def open_split(
    dataset: Union[str, os.PathLike, tfds.core.DatasetBuilder],
    split: str,
    *,
    data_dir: Optional[os.PathLike] = None,
    fields: Optional[Sequence[str]] = None,
    fast: bool = True,
):
    """Random-access examples of ``split`` of a built dataset.

    Args:
      dataset: a builder, a prepared dataset directory (``.../<name>/<config>/<version>``,
        read with ``tfds.builder_from_directory``), or a TFDS name
        (``"quickdraw_strokes/<config>"``, read with ``tfds.data_source`` from ``data_dir``).
      split: e.g. ``"train"`` or ``"train[:10%]"``.
      fields: see :class:`SketchSource`.
      fast: False returns TFDS's own data source (all fields, TFDS's decoder).

    Returns:
      :class:`SketchSource` (or the TFDS data source when ``fast=False``).
    """
    if not isinstance(split, str):  # None failed in TFDS with "'NoneType' object has no attribute 'to_absolute'"
        raise ValueError(f"open_split: split must be a split name such as 'train' or 'test[:10%]', got {split!r}")
    if isinstance(dataset, os.PathLike) or (not isinstance(dataset, tfds.core.DatasetBuilder)
                                            and pathlib.Path(str(dataset), "dataset_info.json").is_file()):
        dataset = tfds.builder_from_directory(os.fspath(dataset))
    if isinstance(dataset, tfds.core.DatasetBuilder):
        if dataset.info.splits[split].num_examples == 0:  # TFDS: "Paths sequence can not be of 0 length"
            raise ValueError(f"split {split!r} of {dataset.info.full_name} holds no examples")
        ds = dataset.as_data_source(split)
    else:
        ds = tfds.data_source(
            str(dataset), split=split, data_dir=None if data_dir is None else os.fspath(data_dir), download=False
        )
    return SketchSource(ds, fields) if fast else ds
