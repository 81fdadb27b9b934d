"""The data-source protocol the training loop reads, and an in-memory implementation.

A training run is resumable only if the data it sees after a restart is exactly the data it
would have seen without one. The loop therefore never holds an iterator across epochs: it asks
the source for the batches of ``epoch`` starting at batch ``start``, and the source must
produce the same batches for the same ``(seed, epoch)`` every time.
"""
from __future__ import annotations

from typing import Iterator, Mapping, Protocol, runtime_checkable

import numpy as np

from sketchjax._checks import check_uint32

__all__ = ["DataSource", "ArraySource", "this_process"]

Batch = dict[str, np.ndarray]


@runtime_checkable
class DataSource(Protocol):
    """What :func:`sketchjax.training.fit` needs from a data pipeline.

    Attributes:
      steps_per_epoch: number of batches :meth:`epoch_batches` yields for a whole epoch
        (``start = 0``). Constant over the run: the loop maps a global step to
        ``(epoch, start) = divmod(step, steps_per_epoch)``.

    Contract of ``epoch_batches(epoch, start=0)``:
      * yields ``steps_per_epoch - start`` batches: the batches ``start, start + 1, ...`` of
        epoch ``epoch``;
      * deterministic given the source's seed and ``epoch`` (shuffle with e.g.
        ``np.random.default_rng([seed, epoch])``), so a resumed run sees the same batches;
      * each batch is a ``dict[str, np.ndarray]`` whose arrays share the leading (batch)
        axis; every batch of a source has the same keys, shapes and dtypes, so the jitted
        step compiles once (pad a short last batch and mark real rows with a ``mask`` key,
        ``float32[B]`` 1/0 or ``bool[B]``, rather than yield a smaller batch);
      * in a multi-process run each process yields its own slice of the global batch
        (``B / process_count`` rows); the loop assembles the global array.
    Evaluation sources follow the same protocol; the loop reads ``epoch_batches(0)``.
    """

    steps_per_epoch: int

    def epoch_batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        ...


class ArraySource:
    """In-memory :class:`DataSource` over a dict of equally long NumPy arrays.

    Args:
      arrays: ``{name: array[N, ...]}``; all arrays share the leading length ``N``.
      batch_size: global batch size ``B`` (rows per step over all processes).
      seed: shuffling seed; epoch ``e`` uses the permutation ``default_rng([seed, e])``.
      shuffle: shuffle every epoch (training) or keep the order (evaluation).
      drop_remainder: drop the last ``N mod B`` examples (training). If False, the last batch
        is padded with zero rows to ``B`` and every batch carries ``mask: float32[B]`` (1 on
        real rows, 0 on padding), so metrics over a whole evaluation set are exact.
      process_index, process_count: in a multi-process run each process yields rows
        ``[i * B/P, (i + 1) * B/P)`` of every global batch.
    """

    def __init__(
        self,
        arrays: Mapping[str, np.ndarray],
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        drop_remainder: bool = True,
        *,
        process_index: int = 0,
        process_count: int = 1,
    ):
        self.arrays = {k: np.asarray(v) for k, v in arrays.items()}
        lengths = {k: len(v) for k, v in self.arrays.items()}
        if not lengths or len(set(lengths.values())) != 1:
            raise ValueError(f"ArraySource needs arrays of one common length, got lengths {lengths}")
        if batch_size < 1 or batch_size % process_count:
            raise ValueError(f"batch_size={batch_size} must be positive and divisible by process_count={process_count}")
        if "mask" in self.arrays and not drop_remainder:
            raise ValueError("ArraySource adds the 'mask' key itself when drop_remainder=False")
        self.num_examples = next(iter(lengths.values()))
        self.batch_size = batch_size
        self.seed = check_uint32("ArraySource", "seed", seed)  # 2**32 shuffled as seed 0 would
        self.shuffle = shuffle
        self.drop_remainder = drop_remainder
        self.process_index = process_index
        self.process_count = process_count
        if drop_remainder:
            self.steps_per_epoch = self.num_examples // batch_size
        else:
            self.steps_per_epoch = -(-self.num_examples // batch_size)
        if self.steps_per_epoch == 0:
            raise ValueError(f"{self.num_examples} examples make no full batch of {batch_size} (drop_remainder=True)")

    def epoch_batches(self, epoch: int, start: int = 0) -> Iterator[Batch]:
        if not 0 <= start <= self.steps_per_epoch:
            raise ValueError(f"start={start} outside [0, {self.steps_per_epoch}]")
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(self.num_examples)
        else:
            order = np.arange(self.num_examples)
        local = self.batch_size // self.process_count
        for b in range(start, self.steps_per_epoch):
            rows = order[b * self.batch_size : (b + 1) * self.batch_size]
            rows = rows[self.process_index * local : (self.process_index + 1) * local]
            if self.drop_remainder:
                yield {k: v[rows] for k, v in self.arrays.items()}
                continue
            batch = {}
            for k, v in self.arrays.items():
                padded = np.zeros((local,) + v.shape[1:], v.dtype)
                padded[: len(rows)] = v[rows]
                batch[k] = padded
            batch["mask"] = (np.arange(local) < len(rows)).astype(np.float32)
            yield batch


def this_process() -> dict[str, int]:
    """``{"process_index", "process_count"}`` of this JAX process: pass it to every data source of
    an experiment (:class:`ArraySource`, :class:`sketchjax.data.SketchBatchIterator`) so that in a
    multi-process run each process yields its own rows of the global batch, not all of them."""
    import jax

    return {"process_index": jax.process_index(), "process_count": jax.process_count()}
