"""Deterministic, resumable batches of padded sketches (and rasters) for training.

The protocol a training loop consumes::

    it.steps_per_epoch                       # int
    it.epoch_batches(epoch, start=0)         # Iterator[dict[str, np.ndarray]]

Batch ``k`` of epoch ``e`` is a pure function of ``(seed, e, k)`` and the source: the example
order is a permutation drawn from NumPy's Philox seeded by ``SeedSequence(seed,
spawn_key=(e,))``, and every example's augmentation uses the JAX key
``fold_in(fold_in(key(seed), e), index)`` (:func:`example_keys`).  (Bitwise equality holds on
one machine and JAX version; float rounding of the augmentation may differ on other CPUs.)  A run resumed at
``epoch_batches(e, start=k)`` therefore sees exactly ``list(epoch_batches(e))[k:]``, and an
example is augmented the same way whatever the batch size or number of processes.

Keys of a batch (``B`` = local batch size, ``T`` = ``max_len``):

* ``xy: float32[B, T, 2]`` — unit coordinates (:func:`sketchjax.normalize.to_unit`: longer
  side spans ``[0, 1]``) or, with ``coords="pixels"``, the stored pixels after augmentation;
* ``pen: float32[B, T]``, ``valid: bool[B, T]`` — as in :class:`sketchjax.Sketch`;
* ``length: int32[B]`` — valid points; ``label: int32[B]``; ``index: int32[B]`` — the
  example's position in the source;
* ``mask: float32[B]`` — 1 for real examples; 0 for the padding rows that fill a final
  partial batch (``drop_remainder=False``; they repeat examples from the epoch's start);
* ``raster: float32[B, S, S]`` (with ``raster_size=S``) — Bresenham raster of the sketch
  fitted to the canvas with ``raster_padding``, ink 1 on 0, ``line_width`` pixels wide at
  ``render_size`` and area-downsampled to ``S``.
"""
from __future__ import annotations

import dataclasses
import functools
import queue
import threading
from typing import Iterator, Mapping, Optional, Sequence

import jax
import numpy as np

from sketchjax._checks import check_int, check_positive_int, check_uint32
from sketchjax.data.augment import FIT_METHODS, Augment, augment_batch, fit_length
from sketchjax.normalize import to_unit
from sketchjax.render import RasterRecipe
from sketchjax.sketch import Sketch

__all__ = ["SketchBatchIterator", "example_keys", "COORDS"]

COORDS = ("unit", "pixels")


def example_keys(seed, epoch, indices) -> jax.Array:
    """``[B]`` PRNG keys: example ``i`` of ``epoch`` gets ``fold_in(fold_in(key(seed), epoch), i)``."""
    base = jax.random.fold_in(jax.random.key(seed), epoch)
    return jax.vmap(lambda i: jax.random.fold_in(base, i))(indices)


def _epoch_order(seed: int, epoch: int, n: int, shuffle: bool) -> np.ndarray:
    if not shuffle:
        return np.arange(n, dtype=np.int64)
    rng = np.random.Generator(np.random.Philox(np.random.SeedSequence(seed, spawn_key=(epoch,))))
    return rng.permutation(n)


@dataclasses.dataclass(frozen=True)
class _Finish:
    """The jitted per-batch step (static settings): augmentation, unit coordinates, raster."""

    augment: Optional[Augment]
    coords: str
    raster_size: Optional[int]
    render_size: Optional[int]
    line_width: int
    raster_padding: float

    def __call__(self, seed, epoch, indices, xy, pen, valid):
        if self.augment is not None:
            keys = example_keys(seed, epoch, indices)
            xy, pen, valid = augment_batch(keys, xy, pen, valid, self.augment)
        sketch = Sketch(xy=xy, pen=pen, valid=valid)
        out = {"xy": to_unit(sketch).xy if self.coords == "unit" else xy, "pen": pen, "valid": valid}
        if self.raster_size:
            recipe = RasterRecipe(self.raster_size, self.render_size, self.line_width, self.raster_padding)
            out["raster"] = recipe.raster(xy, pen, valid)
        return out


@functools.lru_cache(maxsize=32)
def _jitted(finish: _Finish):
    # One jitted function per distinct setting (the dataclass compares by value), so that
    # iterators with equal settings share compilations.
    return jax.jit(finish)


class SketchBatchIterator:
    """Padded sketch batches from a random-access source, deterministic per ``(seed, epoch)``.

    Args:
      source: a Sequence of examples with ``"points"`` (``float32[N, 2]`` pixels), ``"pen"``
        (``float32[N]``) and ``label_key`` — e.g. :class:`sketchjax.data.SketchSource` or
        ``tfds.data_source(...)``; ``__getitems__`` is used when present.
      batch_size: global batch size (all processes together).
      seed: shuffle and augmentation seed.
      max_len: ``T``; longer sketches are shortened by ``fit`` and then truncated.
      fit: ``"truncate"``, ``"rdp"`` or ``"resample"`` (see :func:`~sketchjax.data.augment.fit_length`).
      coords: ``"unit"`` or ``"pixels"``.
      augment: :class:`~sketchjax.data.augment.Augment` or None.
      shuffle: permute the examples every epoch (else source order).
      drop_remainder: drop the final partial batch; else pad it with ``mask = 0`` rows.
      raster_size: also yield ``raster`` ``[B, S, S]`` with ``S = raster_size``.
      render_size: canvas the raster is drawn on before area-downsampling to
        ``raster_size`` (default ``raster_size``); e.g. 28² DoodleNet inputs drawn at 256² with
        ``line_width=13`` (DoodleNet's best width, 69.8% top-1 on the real sketches; see
        :func:`sketchjax.models.doodlenet.doodlenet_input`), or at 128² with ``line_width=7``
        (68.6%, about 8x cheaper to draw).
      line_width: line width in pixels at ``render_size``.
      raster_padding: margin of the fitted drawing, fraction of the canvas side.
      label_key: example field with the integer label (None: all labels 0).
      extra_fields: more example fields to pass through, one array per name in each batch
        (e.g. ``("key_id", "recognized")``), read with the same records (no second read).
      process_index, process_count: this process's share of each global batch
        (``batch_size // process_count`` consecutive rows); use
        :func:`sketchjax.training.shard_batch` to assemble the global array.
      prefetch: batches computed ahead in a background thread (0: compute on demand).
      read_group: batches whose records are read from the source in one call (array_record
        costs ~0.4 ms per call and shard file, so larger reads amortise it; no effect on
        the batches themselves).
      device: JAX device for the unit-coordinate and raster step (default: the first CPU).
      fit_cache: sketches longer than ``max_len`` keep their ``fit`` result (``"rdp"`` /
        ``"resample"``; it depends on the sketch alone) for up to this many source examples
        (0: none; ~1 KB each at T = 100):
        an epoch re-ran RDP on every long sketch, and on the sketch-rnn-sample configs, where
        most sketches are long, the training loop waited on it (112 ms of CPU a batch of 64
        against 15 ms with the cache, next to an 80 ms train step; an audit, 2026-12-05).
    """

    def __init__(
        self,
        source: Sequence[Mapping],
        *,
        batch_size: int,
        seed: int = 0,
        max_len: int = 128,
        fit: str = "truncate",
        coords: str = "unit",
        augment: Optional[Augment] = None,
        shuffle: bool = True,
        drop_remainder: bool = True,
        raster_size: Optional[int] = None,
        render_size: Optional[int] = None,
        line_width: int = 1,
        raster_padding: float = 0.08,
        label_key: Optional[str] = "label",
        extra_fields: Sequence[str] = (),
        process_index: int = 0,
        process_count: int = 1,
        prefetch: int = 2,
        read_group: int = 8,
        device: Optional[jax.Device] = None,
        fit_cache: int = 1 << 17,
    ):
        # integers are checked as such (a bool or 7.9 is refused, not cut to 7); the message names
        # the iterator and the argument
        name = "SketchBatchIterator"
        batch_size = check_positive_int(name, "batch_size", batch_size)
        process_count = check_positive_int(name, "process_count", process_count)
        process_index = check_int(name, "process_index", process_index)
        if batch_size % process_count:
            raise ValueError(f"batch_size {batch_size} must be positive and divisible by process_count {process_count}")
        if not 0 <= process_index < process_count:
            raise ValueError(f"process_index {process_index} not in [0, {process_count})")
        max_len = check_int(name, "max_len", max_len, 2)
        seed = check_uint32(name, "seed", seed)
        prefetch = check_int(name, "prefetch", prefetch, 0)
        read_group = check_positive_int(name, "read_group", read_group)
        self.fit_cache = check_int(name, "fit_cache", fit_cache, 0)
        self._fitted: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # source index -> fitted (points, pen)
        line_width = check_positive_int(name, "line_width", line_width)
        if raster_size is not None:
            raster_size = check_positive_int(name, "raster_size (or None)", raster_size)
            render_size = raster_size if render_size is None else check_positive_int(name, "render_size", render_size)
            # the recipe checks the rest (render_size >= raster_size, padding in [0, 0.5)) now,
            # not at the first batch
            RasterRecipe(raster_size, render_size, line_width, raster_padding)
        elif render_size is not None:
            raise ValueError(f"{name}: render_size={render_size!r} needs raster_size (the size of the model input)")
        if fit not in FIT_METHODS:
            raise ValueError(f"unknown fit {fit!r}; use one of {FIT_METHODS}")
        if coords not in COORDS:
            raise ValueError(f"unknown coords {coords!r}; use one of {COORDS}")
        if len(source) == 0:
            raise ValueError("empty source: no examples to batch")
        self.source = source
        self.num_examples = len(source)
        self.batch_size = int(batch_size)
        self.local_batch_size = self.batch_size // process_count
        self.seed = int(seed)
        self.max_len = int(max_len)
        self.fit = fit
        self.augment = augment if augment is not None and augment.active else None
        self.shuffle = shuffle
        self.drop_remainder = drop_remainder
        self.label_key = label_key
        self.extra_fields = tuple(extra_fields)
        taken = set(self.extra_fields) & {"xy", "pen", "valid", "length", "label", "index", "mask", "raster"}
        if taken:
            raise ValueError(f"extra_fields {sorted(taken)} would replace the batch's own arrays of that name")
        self.process_index = process_index
        self.process_count = process_count
        self.prefetch = int(prefetch)
        self.read_group = int(read_group)
        full, rest = divmod(self.num_examples, self.batch_size)
        #: Batches per epoch (the same on every process).
        self.steps_per_epoch = full + (0 if drop_remainder or rest == 0 else 1)
        if self.steps_per_epoch == 0:
            raise ValueError(
                f"{self.num_examples} examples make no full batch of {batch_size} (drop_remainder=True)"
            )
        self.device = device if device is not None else jax.devices("cpu")[0]
        self._finish_cfg = _Finish(
            augment=self.augment,
            coords=coords,
            raster_size=raster_size,
            render_size=render_size,
            line_width=line_width,
            raster_padding=float(raster_padding),
        )
        needs_jax = self.augment is not None or coords == "unit" or raster_size
        self._finish = _jitted(self._finish_cfg) if needs_jax else None
        self._order_cache: tuple[int, np.ndarray] | None = None

    # --- the protocol --------------------------------------------------------------------

    def epoch_batches(self, epoch: int, start: int = 0) -> Iterator[dict[str, np.ndarray]]:
        """Batches ``start, start + 1, ..., steps_per_epoch - 1`` of ``epoch`` (local rows)."""
        start, epoch = check_int("epoch_batches", "start", start), check_int("epoch_batches", "epoch", epoch)
        if start < 0 or not 0 <= epoch < 2**32:
            raise ValueError(f"need start >= 0 and 0 <= epoch < 2**32, got start={start}, epoch={epoch}")
        steps = range(start, self.steps_per_epoch)
        if self.prefetch <= 0:
            return self._batches(epoch, steps)
        return self._prefetched(epoch, steps)

    # --- pieces ------------------------------------------------------------------------------

    def epoch_order(self, epoch: int) -> np.ndarray:
        """``int64[N]``: the source indices in the order ``epoch`` visits them."""
        cached = self._order_cache
        if cached is None or cached[0] != epoch:
            cached = (epoch, _epoch_order(self.seed, epoch, self.num_examples, self.shuffle))
            self._order_cache = cached
        return cached[1]

    def batch_indices(self, epoch: int, step: int) -> tuple[np.ndarray, np.ndarray]:
        """This process's ``(source indices int64[B], mask float32[B])`` of batch ``step``."""
        order = self.epoch_order(epoch)
        first = step * self.batch_size + self.process_index * self.local_batch_size
        positions = np.arange(first, first + self.local_batch_size)
        mask = (positions < self.num_examples).astype(np.float32)
        return order[positions % self.num_examples], mask

    def batch(self, epoch: int, step: int) -> dict[str, np.ndarray]:
        """Batch ``step`` of ``epoch``, computed now (what ``epoch_batches`` yields)."""
        step = check_int("SketchBatchIterator.batch", "step", step)
        epoch = check_uint32("SketchBatchIterator.batch", "epoch", epoch)
        if not 0 <= step < self.steps_per_epoch:
            raise IndexError(f"step {step} not in [0, {self.steps_per_epoch})")
        return next(self._batches(epoch, range(step, step + 1)))

    def _fetch(self, indices: np.ndarray) -> list:
        getitems = getattr(self.source, "__getitems__", None)
        return getitems(indices.tolist()) if getitems else [self.source[int(i)] for i in indices]

    def _batches(self, epoch: int, steps: range) -> Iterator[dict[str, np.ndarray]]:
        """Batches of ``steps``; the records of ``read_group`` batches are read in one call."""
        for first in range(steps.start, steps.stop, self.read_group):
            group = [self.batch_indices(epoch, k) for k in range(first, min(first + self.read_group, steps.stop))]
            examples = self._fetch(np.concatenate([indices for indices, _ in group]))
            b = self.local_batch_size
            for i, (indices, mask) in enumerate(group):
                yield self._assemble(epoch, indices, mask, examples[i * b : (i + 1) * b])

    def _assemble(self, epoch: int, indices: np.ndarray, mask: np.ndarray, examples: list) -> dict[str, np.ndarray]:
        t = self.max_len
        points, pens, labels = [], [], []
        for i, ex in enumerate(examples):
            p, q = np.asarray(ex["points"], np.float32).reshape(-1, 2), np.asarray(ex["pen"], np.float32)
            if len(p) == 0 or len(q) != len(p):
                raise ValueError(f"SketchBatchIterator: example {int(indices[i])} of the source: "
                                 + ("an empty sketch (no points)" if len(p) == 0 else
                                    f"{len(p)} points but {len(q)} pen states"))
            if len(p) > t:
                fitted = self._fitted.get(int(indices[i]))
                if fitted is None:
                    if not (np.isfinite(p).all() and np.isfinite(q).all()):  # the fit would fail unnamed
                        raise ValueError(f"SketchBatchIterator: example {int(indices[i])} of the source: "
                                         "a NaN or infinite coordinate or pen state")
                    fitted = fit_length(p, q, t, self.fit)
                    if self.fit != "truncate" and len(self._fitted) < self.fit_cache:  # truncate: no work to keep
                        self._fitted[int(indices[i])] = fitted  # read-only below (_pack copies)
                p, q = fitted
            points.append(p[:t])
            pens.append(q[:t])
            if self.label_key is not None:
                if self.label_key not in ex:
                    raise KeyError(f"SketchBatchIterator: example {int(indices[i])} of the source has no "
                                   f"{self.label_key!r} field (label_key; None batches without labels); it has "
                                   f"{sorted(ex)}")
                labels.append(int(ex[self.label_key]))
        xy, pen, valid, length = _pack(points, pens, t)
        finite = np.isfinite(xy).all(axis=(1, 2)) & np.isfinite(pen).all(axis=1)  # padding is 0
        if not finite.all():
            raise ValueError(f"SketchBatchIterator: example {int(indices[np.argmin(finite)])} of the source: "
                             "a NaN or infinite coordinate or pen state")
        if self._finish is not None:
            with jax.default_device(self.device):
                done = self._finish(np.uint32(self.seed), np.uint32(epoch), indices.astype(np.int32), xy, pen, valid)
            done = {k: np.asarray(v) for k, v in done.items()}
            xy, pen, valid = done.pop("xy"), done.pop("pen"), done.pop("valid")
            length = valid.sum(axis=1, dtype=np.int32)
        else:
            done = {}
        label = np.asarray(labels, np.int32) if self.label_key is not None else np.zeros(len(indices), np.int32)
        for name in self.extra_fields:
            lacking = next((i for i, ex in enumerate(examples) if name not in ex), None)
            if lacking is not None:
                raise KeyError(f"SketchBatchIterator: example {int(indices[lacking])} of the source has no {name!r} "
                               f"field (extra_fields); it has {sorted(examples[lacking])}")
        extra = {name: np.asarray([ex[name] for ex in examples]) for name in self.extra_fields}
        return {"xy": xy, "pen": pen, "valid": valid, "length": length, "label": label,
                "index": indices.astype(np.int32), "mask": mask, **done, **extra}

    def _prefetched(self, epoch: int, steps: range) -> Iterator[dict[str, np.ndarray]]:
        """``_batches(epoch, steps)``, computed ahead in a thread."""
        buffer: queue.Queue = queue.Queue(maxsize=self.prefetch)
        stop = threading.Event()

        def put(item) -> bool:
            while not stop.is_set():  # the consumer may have gone: never block for good
                try:
                    buffer.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        def produce():
            try:
                for item in self._batches(epoch, steps):
                    if not put(item):
                        return
            except BaseException as e:  # noqa: BLE001 — re-raised in the consumer
                put(e)
                return
            put(_END)

        thread = threading.Thread(target=produce, name=f"sketch-batches-e{epoch}", daemon=True)
        thread.start()
        try:
            while True:
                item = buffer.get()
                if item is _END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join()


_END = object()


def _pack(points: list, pens: list, max_len: int):
    """Pad unpadded ``[n_i, 2]`` / ``[n_i]`` arrays (``n_i <= max_len``) into a batch with one
    scatter each (a Python loop of slice assignments costs more at batch 256)."""
    b = len(points)
    length = np.fromiter((len(p) for p in points), np.int32, count=b)
    rows = np.repeat(np.arange(b), length)
    cols = np.arange(len(rows)) - np.repeat(np.cumsum(length) - length, length)
    xy = np.zeros((b, max_len, 2), np.float32)
    pen = np.zeros((b, max_len), np.float32)
    valid = np.zeros((b, max_len), bool)
    xy[rows, cols] = np.concatenate(points)
    pen[rows, cols] = np.concatenate(pens)
    valid[rows, cols] = True
    pen[np.arange(b), length - 1] = 0.0  # the last kept point never draws (matters after truncation)
    return xy, pen, valid, length
