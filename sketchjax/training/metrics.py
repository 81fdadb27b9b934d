"""Metric bookkeeping for the loop: running means, throughput, JSON-lines logs, progress bar."""
from __future__ import annotations

import json
import math
import os
import pathlib
import sys
import time
from typing import Any, Mapping, Optional

import jax
import numpy as np

__all__ = ["MetricWriter", "RunningMean", "Throughput", "progress_bar", "read_metrics"]


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.generic, np.ndarray, jax.Array)):
        value = np.asarray(value).tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)  # JSON has no NaN/inf; keep it visible as "nan" / "inf"
    return value


class MetricWriter:
    """Append one JSON object per line to ``path`` (``workdir/metrics.jsonl``).

    Each record is written with a single ``write`` to a file opened for appending, so a killed
    run leaves at most one partial last line. On opening, lines that do not parse and records
    whose ``step`` is beyond ``keep_until_step`` (steps a resumed run will redo) are dropped;
    the cleaned file replaces the old one atomically.

    Args:
      path: the log file.
      keep_until_step: keep records with ``step <= keep_until_step``; None keeps all.
      enabled: False (non-zero processes of a multi-host run) makes every call a no-op.
    """

    def __init__(self, path: str | os.PathLike, *, keep_until_step: Optional[int] = None, enabled: bool = True):
        self.path = pathlib.Path(path)
        self.enabled = enabled
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            kept = [r for r in read_metrics(self.path) if keep_until_step is None or r.get("step", 0) <= keep_until_step]
            from sketchjax.formats._io import atomic_write  # synced: survives a power loss too

            with atomic_write(self.path) as f:
                f.write("".join(json.dumps(r) + "\n" for r in kept))
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: Mapping[str, Any]) -> None:
        if not self.enabled:
            return
        data = (json.dumps({k: _jsonable(v) for k, v in record.items()}) + "\n").encode()
        while data:  # os.write may write less (a full disk, a signal): a torn line would swallow the next
            data = data[os.write(self._fd, data):]

    def sync(self) -> None:
        """Flush the records to disk (called before each checkpoint: a checkpoint that survives
        a power loss has its records)."""
        if self.enabled and self._fd is not None:
            os.fsync(self._fd)

    def close(self) -> None:
        if self.enabled and self._fd is not None:
            os.close(self._fd)
            self._fd = None


def read_metrics(path: str | os.PathLike) -> list[dict]:
    """Records of a JSON-lines metric file, skipping lines that do not parse (a torn last line)."""
    records = []
    for line in pathlib.Path(path).read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict):
            records.append(record)
    return records


class RunningMean:
    """Mean of scalar metric dicts over the steps since the last :meth:`result`.

    The device arrays are kept as they are and fetched together at :meth:`result`, so adding a
    step does not wait for it to finish (the host keeps dispatching ahead of the device).
    """

    def __init__(self):
        self._pending: list[Mapping[str, Any]] = []

    def add(self, metrics: Mapping[str, Any]) -> None:
        self._pending.append(metrics)

    def __len__(self) -> int:
        return len(self._pending)

    def peek(self) -> dict[str, float]:
        """Means since the last :meth:`result` (empty dict if nothing was added); no reset."""
        pending = jax.device_get(self._pending)
        if not pending:
            return {}
        return {k: float(np.mean([m[k] for m in pending])) for k in pending[0]}

    def result(self) -> dict[str, float]:
        """Means since the last call (empty dict if nothing was added); resets."""
        out = self.peek()
        self._pending = []
        return out


class Throughput:
    """Steps and examples per second of wall time between calls to :meth:`rates`."""

    RATE_KEYS = ("steps_per_s", "examples_per_s")  # the keys of :meth:`rates`

    def __init__(self):
        self._time = time.perf_counter()
        self._steps = 0
        self._examples = 0

    def add(self, steps: int, examples: int) -> None:
        self._steps += steps
        self._examples += examples

    def rates(self) -> dict[str, float]:
        now = time.perf_counter()
        dt = max(now - self._time, 1e-9)
        out = dict(zip(self.RATE_KEYS, (self._steps / dt, self._examples / dt)))
        self._time, self._steps, self._examples = now, 0, 0
        return out


def progress_bar(total: int, initial: int = 0, enabled: Optional[bool] = None):
    """A tqdm bar over optimiser steps, shown only when stderr is a terminal (not in logs/CI)."""
    from tqdm.auto import tqdm

    if enabled is None:
        enabled = sys.stderr.isatty()
    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True, leave=False)
