"""What the sketchjax TFDS builders share: a base class and the stored form of a sketch.

:class:`ArrayRecordBuilder` writes array_record files (read with ``tfds.data_source``, random
access, no TensorFlow).  Every dataset of :mod:`sketchjax.data` stores a sketch as the
unpadded arrays of :class:`~sketchjax.sketch.Sketch` (absolute pixels, exactly as read by :mod:`sketchjax.formats`):

* ``points: float32[N, 2]`` — absolute ``(x, y)`` in the source's pixels;
* ``pen: float32[N]`` — ``pen[t] = 1``: segment ``t -> t+1`` is drawn; ``0`` ends a stroke;
* ``time: float32[N]`` — milliseconds (raw QuickDraw only).

The arrays are stored as raw (native, in practice little-endian) bytes (``encoding='bytes'``), which TFDS decodes
with ``np.frombuffer`` and :class:`~sketchjax.data.source.SketchSource` decodes without TFDS's
generic parser.
"""
from __future__ import annotations

import dataclasses
import errno
import hashlib
import importlib.util
import inspect
import logging
import os
import pathlib
import re
import shutil
import struct
from typing import Iterable, Mapping, Optional

import numpy as np
import tensorflow_datasets as tfds
from etils import epath

from sketchjax._locks import exclusive_lock
from sketchjax.sketch import Sketch, SketchError

__all__ = ["ArrayRecordBuilder", "sketch_features", "encode_sketch", "example_to_sketch", "inputs_digest",
           "input_folder", "some_examples"]

_REPR_ITEMS = 3  # a long tuple field (344 category names) shows its length, first and last items


class CompactReprConfig:
    """Mixin for the builders' ``BuilderConfig`` dataclasses: a ``repr`` that abbreviates long
    tuple fields (TFDS logs the config on every build and load; with 344 categories it printed
    every name, twice, at each step of a run)."""

    def __repr__(self) -> str:
        parts = []
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name in ("description", "release_notes", "supported_versions", "tags") and not v:
                continue
            if isinstance(v, tuple) and len(v) > 2 * _REPR_ITEMS:
                v = ("<{} items: {}, …, {}>".format(len(v), ", ".join(map(repr, v[:_REPR_ITEMS])),
                                                  ", ".join(map(repr, v[-_REPR_ITEMS:]))))
                parts.append(f"{f.name}={v}")
            else:
                parts.append(f"{f.name}={v!r}")
        return f"{type(self).__name__}({', '.join(parts)})"

_FINGERPRINT_BYTES = 1 << 16  # read from each end of an input file
_NOT_GIVEN = object()


def _build_lock(path: pathlib.Path):
    """The lock a build holds (:func:`sketchjax._locks.exclusive_lock`): another process building
    the same dataset is waited for (logged with its pid and host); where no lock can be taken
    the build goes on unlocked, with a warning."""
    return exclusive_lock(path, what=f"building the dataset {path.stem}", wait=True,
                          logger=logging.getLogger(__name__))


def _remove_incomplete_builds(builder) -> None:
    """Deletes what killed builds of this dataset left (TFDS's ``incomplete.*`` folders beside
    the version folder: removed in a ``finally`` that a SIGKILL or an unhandled SIGTERM never
    runs, so each interruption kept up to a whole dataset on disk).  Called under the build lock."""
    final = pathlib.Path(os.fspath(builder.data_path))
    for leftover in final.parent.glob(f"incomplete.*_{builder.version}"):
        if leftover.is_dir():
            logging.getLogger(__name__).warning("removing %s, left by an interrupted build", leftover)
            shutil.rmtree(leftover, ignore_errors=True)


class _FileBucket:
    """TFDS's shuffle bucket (``tensorflow_datasets.core.shuffle._Bucket``: ``(key, size, data)``
    records in a temporary file) written with Python's own files.  TFDS keeps a split's examples
    in memory up to ``shuffle.MAX_MEM_BUFFER_SIZE`` (1 GB serialized) and then spills them into
    such buckets through ``tf.io.gfile``: without TensorFlow installed (this project does not
    need it) every build of a split past 1 GB — ~20 full QuickDraw categories — failed there
    with "No module named 'tensorflow'".  Same file format, same order of the examples."""

    def __init__(self, path):
        self._path = os.fspath(path)
        self._fobj = None
        self._length = 0
        self._size = 0

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return self._length

    def add(self, key, data: bytes) -> None:
        from tensorflow_datasets.core import shuffle

        if self._fobj is None:
            os.makedirs(os.path.dirname(self._path), exist_ok=True)
            try:
                self._fobj = open(self._path, "wb")
            except OSError as e:  # 1000 buckets open at once: raise the soft limit as TFDS does
                if e.errno != errno.EMFILE:
                    raise
                shuffle._increase_open_files_limit()
                self._fobj = open(self._path, "wb")
        self._fobj.write(shuffle._hkey_to_bytes(key))
        self._fobj.write(struct.pack("=Q", len(data)))
        self._fobj.write(data)
        self._length += 1
        self._size += len(data)

    def flush(self) -> None:
        if self._fobj is not None:
            self._fobj.close()
            self._fobj = None

    def read_values(self):
        from tensorflow_datasets.core import shuffle

        self.flush()
        if not os.path.exists(self._path):  # a bucket nothing was added to
            return
        with open(self._path, "rb") as f:
            while True:
                head = f.read(shuffle.HKEY_SIZE_BYTES)
                if not head:
                    break
                size = struct.unpack("=Q", f.read(8))[0]
                yield shuffle._read_hkey(head), f.read(size)

    def del_file(self) -> None:
        if os.path.exists(self._path):
            os.remove(self._path)


def use_file_buckets() -> bool:
    """Installs :class:`_FileBucket` as TFDS's shuffle bucket when TensorFlow is not installed
    (with it, TFDS's own ``tf.io.gfile`` buckets stay, remote data dirs included); process-wide
    (any TFDS build in the process spills through it), idempotent.
    Returns whether the file buckets are in use."""
    from tensorflow_datasets.core import shuffle

    if shuffle._Bucket is _FileBucket:
        return True
    if importlib.util.find_spec("tensorflow") is not None or not all(
            hasattr(shuffle, name) for name in ("_Bucket", "_hkey_to_bytes", "_read_hkey", "HKEY_SIZE_BYTES",
                                                "_increase_open_files_limit")):
        return False  # TensorFlow present, or a TFDS whose shuffler this does not know
    shuffle._Bucket = _FileBucket
    return True


_INPUTS_TAG = "-in"  # config name + tag + digest of the local input files (input_config)


def names_local_inputs(name: str) -> bool:
    """Whether a dataset name (``builder/config`` or a config name) ends in the digest of local
    input files that :meth:`ArrayRecordBuilder.input_config` adds (downloaded inputs add none)."""
    return re.search(rf"{_INPUTS_TAG}[0-9a-f]+$", name) is not None


def inputs_digest(paths: Iterable[os.PathLike], length: int = 8) -> str:
    """Short digest of the contents of input files: each file's name, size and its first and last
    64 KiB (so a multi-GB original costs two small reads; an edit that keeps the size and leaves
    both ends alone goes unnoticed).  Independent of paths' folders and of modification times."""
    h = hashlib.blake2b(digest_size=16)
    for path in sorted(pathlib.Path(p) for p in paths):
        size = path.stat().st_size
        h.update(f"{path.name}\0{size}\0".encode())
        with open(path, "rb") as f:
            h.update(f.read(_FINGERPRINT_BYTES))
            if size > _FINGERPRINT_BYTES:
                f.seek(max(size - _FINGERPRINT_BYTES, _FINGERPRINT_BYTES))
                h.update(f.read())
    return h.hexdigest()[:length]


class ArrayRecordBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Base of the sketchjax builders: array_record files by default, a config required.

    Works without TensorFlow (``tfds`` writes and reads array_record through NumPy/protobuf).
    """

    #: May a build download inputs it does not find locally?  None: unless ``$SKETCHJAX_OFFLINE``
    #: is set (:func:`sketchjax.paths.downloads_allowed`); :meth:`prepare` sets it.
    allow_download: Optional[bool] = None

    def __init__(self, *, config=None, file_format: str = "array_record", **kwargs):
        if config is None:
            raise ValueError(f"{type(self).__name__} needs a config (see its module's *_config helper)")
        super().__init__(config=config, file_format=file_format, **kwargs)

    @classmethod
    def prepare(
        cls, config, data_dir: os.PathLike, *, manual_dir: Optional[os.PathLike] = None,
        download: Optional[bool] = None,
    ):
        """Build ``<data_dir>/<name>/<config.name>/<version>`` (once; later calls reuse it).

        Args:
          config: the builder's config (from the module's ``*_config`` helper).
          data_dir: TFDS data directory.
          manual_dir: folder of input files (default: the builder's data-root folder).
          download: whether inputs not found locally may be downloaded (QuickDraw categories
            from Google's bucket); default: yes unless ``$SKETCHJAX_OFFLINE`` is set.  Without
            downloads, missing inputs fail at once, naming them.

        The dataset's config name gets a digest of the local input files appended
        (:meth:`local_inputs`, :func:`inputs_digest`), so the same settings over other files —
        say the full-size originals after a small sample — build a new dataset instead of
        silently reusing the old one (which stays where it was).

        Returns:
          The builder; read it with ``builder.as_data_source(split)``,
          :func:`sketchjax.data.open_split`, or ``tfds.data_source("<name>/<builder.builder_config.name>",
          split=..., data_dir=data_dir)``.
        """
        if manual_dir is not None and not os.path.isdir(manual_dir):
            raise FileNotFoundError(f"manual_dir {os.fspath(manual_dir)} is not a directory")
        config = cls.input_config(config, manual_dir)
        # Two processes preparing the same dataset (say two training runs started together on a
        # fresh cache) would both build it, and the second's final rename fails; so a build holds
        # a lock, and a process that waited for one finds the dataset built.
        with _build_lock(cls.build_lock_path(config, data_dir)):
            builder = cls(config=config, data_dir=os.fspath(data_dir))
            builder.allow_download = download
            builder.given_manual_dir = None if manual_dir is None else pathlib.Path(manual_dir)
            _remove_incomplete_builds(builder)
            use_file_buckets()
            dl_config = tfds.download.DownloadConfig(manual_dir=None if manual_dir is None else os.fspath(manual_dir))
            builder.download_and_prepare(download_config=dl_config)
        return builder

    @classmethod
    def input_config(cls, config, manual_dir: Optional[os.PathLike] = None):
        """``config`` renamed with the digest of the local inputs a build reads (see :meth:`prepare`)."""
        inputs = cls.local_inputs(config, None if manual_dir is None else pathlib.Path(manual_dir))
        # a name that already ends in a digest (the config of a builder prepare() returned, passed
        # back) is re-digested, not extended: "…-in9b2e5d31-in9b2e5d31" rebuilt the whole dataset
        base = re.sub(rf"{_INPUTS_TAG}[0-9a-f]{{8}}$", "", config.name)
        return dataclasses.replace(config, name=f"{base}{_INPUTS_TAG}{inputs_digest(inputs)}") if inputs else config

    @classmethod
    def build_lock_path(cls, config, data_dir: os.PathLike) -> pathlib.Path:
        """The lock file a build of ``config`` (as :meth:`input_config` names it) holds in ``data_dir``."""
        return pathlib.Path(data_dir) / ".locks" / f"{cls.name}-{config.name}.lock"

    @classmethod
    def local_inputs(cls, config, manual_dir: Optional[pathlib.Path]) -> list[pathlib.Path]:
        """The local files a build of ``config`` reads (``manual_dir`` or the data-root default);
        files it would download are not listed (their URLs are fixed).  Builders override it."""
        return []

    given_manual_dir = _NOT_GIVEN  # what prepare() was given (it sets it; None: no manual_dir)

    def input_dir(self, dl_manager, default: Optional[pathlib.Path]) -> Optional[pathlib.Path]:
        """The folder of input files: the user's ``manual_dir`` when set, else ``default``.

        Through :meth:`prepare`, only a ``manual_dir`` passed to it counts: TFDS's own default,
        ``<data_dir>/downloads/manual``, is shared by every dataset under that data_dir and
        holds whatever someone put there."""
        if self.given_manual_dir is not _NOT_GIVEN:
            return default if self.given_manual_dir is None else self.given_manual_dir
        try:
            return pathlib.Path(dl_manager.manual_dir)  # raises when unset or empty
        except (AssertionError, ValueError):
            return default

    # TFDS 4.9.10's DatasetBuilder.code_path touches `importlib_resources`, which it only
    # requires on Python < 3.9, for every builder defined inside a package; without that
    # module download_and_prepare fails.  The answer is this file's path either way.
    @tfds.core.utils.classproperty
    @classmethod
    def code_path(cls) -> epath.Path:
        return epath.Path(inspect.getfile(cls))


def input_folder(own: Optional[str], manual_dir: Optional[os.PathLike], default: Optional[pathlib.Path],
                 param: str) -> Optional[pathlib.Path]:
    """The folder a build reads: ``prepare``'s ``manual_dir``, else the folder the config was
    made from (its ``param`` field, e.g. ``category_dir``), else ``default`` (the data root's).
    A ``manual_dir`` other than the config's own folder is refused: the config's contents
    (categories, photo ids) were listed from one, the files would be read from the other."""
    own_path = None if own is None else pathlib.Path(own)
    if manual_dir is not None:
        manual_dir = pathlib.Path(manual_dir)
        if own_path is not None and own_path.resolve() != manual_dir.resolve():
            raise ValueError(f"the config was made from {param} {own_path} but prepare() was given manual_dir "
                             f"{manual_dir}: give one folder (or the same one to both)")
        return manual_dir
    return own_path if own_path is not None else default


def some_examples(examples: Iterable, dataset: str, split: str, why: str) -> Iterable:
    """``examples`` passed through, with a :class:`SketchError` naming ``dataset``, ``split``
    and ``why`` (the likely cause) if there were none: TFDS stops on an empty split with a bare
    ``AssertionError: ... No examples were yielded`` that names neither file nor cause."""
    count = 0
    for item in examples:
        count += 1
        yield item
    if not count:
        raise SketchError(f"{dataset}: the {split!r} split got no examples ({why})")


def sketch_features(*, with_time: bool = False) -> dict:
    """TFDS features of a stored sketch: ``points``, ``pen`` and (optionally) ``time``."""
    feats = {
        "points": tfds.features.Tensor(
            shape=(None, 2), dtype=np.float32, encoding="bytes",
            doc="absolute (x, y) in source pixels, float32[N, 2]",
        ),
        "pen": tfds.features.Tensor(
            shape=(None,), dtype=np.float32, encoding="bytes",
            doc="1 = segment t -> t+1 drawn, 0 = pen lifted after point t (stroke end)",
        ),
    }
    if with_time:
        feats["time"] = tfds.features.Tensor(
            shape=(None,), dtype=np.float32, encoding="bytes", doc="timestamps in ms, float32[N]"
        )
    return feats


def encode_sketch(sketch: Sketch, *, with_time: bool = False, name: str = "sketch") -> dict:
    """``{"points", "pen"[, "time"]}`` of an unbatched sketch's valid points (for a builder).

    Raises:
      SketchError: ``with_time`` but the sketch has no timestamps.
    """
    n = int(np.sum(np.asarray(sketch.valid)))
    out = {
        "points": np.ascontiguousarray(np.asarray(sketch.xy, np.float32)[:n]),
        "pen": np.ascontiguousarray(np.asarray(sketch.pen, np.float32)[:n]),
    }
    if with_time:
        if sketch.time is None:
            raise SketchError(f"{name}: the dataset stores time but the sketch has none")
        out["time"] = np.ascontiguousarray(np.asarray(sketch.time, np.float32)[:n])
    return out


def example_to_sketch(example: Mapping[str, np.ndarray]) -> Sketch:
    """The unpadded :class:`Sketch` (NumPy leaves) of a decoded example (``time`` if stored)."""
    points = np.asarray(example["points"], np.float32).reshape(-1, 2)
    time = example.get("time")
    return Sketch(
        xy=points,
        pen=np.asarray(example["pen"], np.float32),
        valid=np.ones(len(points), bool),
        time=None if time is None else np.asarray(time, np.float32),
    )


def config_digest(*parts: object, length: int = 8) -> str:
    """Short stable hex digest of ``repr(parts)``, used in generated config names."""
    return hashlib.blake2b(repr(parts).encode("utf-8"), digest_size=16).hexdigest()[:length]


def optional_text(value: Optional[object]) -> str:
    """A metadata value as text for a ``Text`` feature (``""`` when absent)."""
    return "" if value is None else str(value)
