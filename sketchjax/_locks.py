"""The library's one advisory file lock: a dataset build waits for another process building the
same dataset (:mod:`sketchjax.data.builder`); a training run refuses a workdir that another run
holds (:mod:`sketchjax.training.loop`)."""
from __future__ import annotations

import contextlib
import logging
import os
import pathlib
import socket
import time
from typing import Iterator

#: seconds between the "still waiting" reminders of a waiting lock
REMIND_EVERY_S = 60.0
_POLL_S = 0.2


class LockBusy(Exception):
    """Another process holds the lock; ``holder`` is what it recorded (``pid N on HOST``)."""

    def __init__(self, holder: str):
        super().__init__(holder)
        self.holder = holder


def _holder_line() -> str:
    return f"pid {os.getpid()} on {socket.gethostname() or 'localhost'}"


def _read_holder(fd: int) -> str:
    with contextlib.suppress(OSError):
        holder = os.pread(fd, 256, 0).decode(errors="replace").strip()
        return f"pid {holder}" if holder.isdigit() else holder or "unknown process"  # a bare pid: older records
    return "unknown process"


@contextlib.contextmanager
def exclusive_lock(path: os.PathLike, *, what: str, wait: bool, logger: logging.Logger,
                   remind_every: float = REMIND_EVERY_S) -> Iterator[bool]:
    """Holds an exclusive ``fcntl.flock`` on ``path`` while the block runs, with this process
    recorded in it (``pid N on HOST``: a pid alone means nothing on a folder that several hosts
    share).  Released when the block ends or the process dies, so a killed process never leaves
    it held (the file stays; its content is only a record).

    Another holder: with ``wait``, blocks until it is released, logging at INFO who holds it
    and for what (``what``, e.g. "building quickdraw/…"), again every ``remind_every`` seconds;
    without, raises :class:`LockBusy` naming the holder.  Where no lock can be taken (no
    ``fcntl``, a file system without locks such as NFS without a lock daemon (``ENOLCK``), a
    lock file that cannot be created) the block runs unlocked after a WARNING that names
    ``what``.  Yields whether the lock is held."""
    path = pathlib.Path(path)
    fd = None
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        waited_since = last_note = None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _read_holder(fd)
                if not wait:
                    raise LockBusy(holder) from None
                now = time.monotonic()
                if waited_since is None:
                    waited_since = last_note = now
                    logger.info("waiting for another process %s (%s holds %s)", what, holder, path)
                elif now - last_note >= remind_every:
                    last_note = now
                    logger.info("still waiting for another process %s (%s holds %s; %.0f s so far)",
                                what, holder, path, now - waited_since)
                time.sleep(_POLL_S)
    except (ImportError, OSError) as e:
        logger.warning("could not lock %s (%s): %s goes on unlocked; make sure no other process is %s at the "
                       "same time", path, e, what, what)
        if fd is not None:
            os.close(fd)
            fd = None
    except BaseException:  # LockBusy, or an interrupted wait: the lock file is not left open
        if fd is not None:
            os.close(fd)
        raise
    if fd is not None:
        with contextlib.suppress(OSError):  # the record only; the lock is held either way
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{_holder_line()}\n".encode(), 0)
    try:
        yield fd is not None
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock
