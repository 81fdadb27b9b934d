"""File helpers shared by the format modules: atomic writes, line reading of plain or gzipped
text, and a NumPy-only unpickler."""
from __future__ import annotations

import contextlib
import gzip
import importlib
import io
import os
import pathlib
import pickle
import socket
import tempfile
import zlib
from typing import IO, Iterator, Union

import numpy as np

from sketchjax.sketch import SketchError

PathLike = Union[str, os.PathLike]


def _process_umask() -> int:
    """The process umask, read without changing it where the kernel reports it (Linux >= 4.7);
    elsewhere set and restored once, at import, before any thread of ours writes files."""
    with contextlib.suppress(OSError, ValueError):
        for line in pathlib.Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _process_umask()


_GZIP_MAGIC = b"\x1f\x8b"


@contextlib.contextmanager
def open_lines(path: PathLike) -> Iterator[Iterator[tuple[int, bytes]]]:
    """``(line number, bytes)`` of a text file's lines, counted from 1; a gzipped file (told by
    its first bytes, so ``cat.ndjson.gz`` and a gzipped ``cat.ndjson`` both read) is
    decompressed as it streams.  The file is opened once and its first bytes peeked, so a pipe
    (``<(zcat ...)``, a FIFO) reads too.  A corrupt or truncated gzip stream raises
    :class:`SketchError` (a ``ValueError``) naming the file and the last line read in full
    (gzip's own EOFError / BadGzipFile / zlib.error name neither).
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        if f.peek(2)[:2] != _GZIP_MAGIC:
            yield enumerate(f, start=1)
            return

        def lines(g):
            lineno = 0
            try:
                for lineno, raw in enumerate(g, start=1):
                    yield lineno, raw
            except (EOFError, OSError, zlib.error) as e:  # BadGzipFile is an OSError
                where = f"after line {lineno}" if lineno else "before its first line"
                raise SketchError(f"{path}: gzip data corrupt or truncated {where} ({e}); fetch the file again") from None

        with gzip.GzipFile(fileobj=f, mode="rb") as g:
            yield lines(g)


def _fsync_dir(path: pathlib.Path) -> None:
    """Makes a rename inside ``path`` durable (a no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _writer_host() -> str:
    """This host's name as it appears in temporary file names (no path separator of any OS)."""
    return socket.gethostname().replace("/", "_").replace(os.sep, "_") or "localhost"


def _writer_token() -> str:
    """``host-pid`` of this process, in the name of its temporary files (:func:`atomic_write`)."""
    return f"{_writer_host()}-{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists (another user's: EPERM), or cannot tell: keep its file
    return True


def remove_stale_temporaries(path: PathLike) -> list[pathlib.Path]:
    """Removes the temporary files that :func:`atomic_write` calls for ``path`` left behind
    when their process was killed (SIGKILL, power loss: no ``except`` ran) — only those written
    on this host by a process that no longer exists; a live writer's file, and one from another
    host sharing the folder, are kept.  Returns the files removed."""
    path = pathlib.Path(path)
    parent = path.parent if str(path.parent) else pathlib.Path(".")
    host = _writer_host()
    prefix = f".{path.name}."
    removed = []
    try:
        candidates = [p for p in parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp")]
    except OSError:  # no folder yet, or not listable: nothing to clean
        return removed
    for p in candidates:
        # .NAME.HOST-PID.RANDOM.tmp
        token = p.name[len(prefix):-len(".tmp")].rsplit(".", 1)[0]
        owner, _, pid = token.rpartition("-")
        if owner != host or not pid.isdigit() or _pid_alive(int(pid)):
            continue
        with contextlib.suppress(FileNotFoundError):
            p.unlink()
            removed.append(p)
    return removed


@contextlib.contextmanager
def atomic_write(path: PathLike, mode: str = "w") -> Iterator[IO]:
    """Open a temporary file next to ``path``; on success move it over ``path`` atomically.

    The folder is created if missing.  Readers never see a half-written file, and a failed write leaves any old file intact
    (the temporary file is removed).  The file gets the usual ``0o666 & ~umask`` permissions
    (``mkstemp`` alone would leave it readable by its owner only; the umask is read once, at
    import, so that no other thread ever runs under a changed umask); the rename is synced to
    the directory.  The temporary file is ``.NAME.HOST-PID.RANDOM.tmp``: a later write of the
    same ``path`` removes those a killed process left (:func:`remove_stale_temporaries`).
    """
    path = pathlib.Path(path)
    encoding = None if "b" in mode else "utf-8"
    parent = path.parent if str(path.parent) else pathlib.Path(".")
    parent.mkdir(parents=True, exist_ok=True)  # output_path checked it and made nothing
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.{_writer_token()}.", suffix=".tmp", dir=parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        with os.fdopen(fd, mode, encoding=encoding) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(parent)


def output_path(path: PathLike, *, directory: bool = False, suffix: str | None = None) -> pathlib.Path:
    """Checks, before any work, that a program can write its output at ``path``: refuses a
    folder where a file is wanted, a file where a folder is (``path`` itself when
    ``directory``, else its parent, or a folder above it), or a folder it may not write into
    or create.  Creates nothing — a run that then fails on its inputs leaves no empty folders;
    the writers (:func:`atomic_write`, :func:`save_figure`) make the folder when they write.
    With ``suffix`` (e.g. ``".json"``) the file name must end in it: programs derive their
    other outputs from it (``out.with_suffix(".png")`` would be ``out`` itself for a ``.png``).

    Raises:
      ValueError: naming ``path`` and the problem.
    """
    p = pathlib.Path(path)
    folder = p if directory else (p.parent if str(p.parent) else pathlib.Path("."))
    if not directory and p.is_dir():
        raise ValueError(f"{path}: is a directory; give a file name")
    if suffix is not None and p.suffix.lower() != suffix:
        raise ValueError(f"{path}: give a file name ending in {suffix} (the program writes its other outputs beside it)")
    existing = folder.absolute()
    while not existing.exists() and existing != existing.parent:  # the nearest folder that is there
        existing = existing.parent
    if not existing.is_dir():
        raise ValueError(f"{path}: {existing if existing != folder.absolute() else folder} (or a folder above it) "
                         "is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        what = "write into" if existing == folder.absolute() else "create the folder"
        raise ValueError(f"{path}: cannot {what} {folder} (permission denied on {existing})")
    return p


def argparse_output(directory: bool = False, suffix: str | None = None):
    """An ``argparse`` ``type=`` for an output path checked with :func:`output_path` when the
    arguments are parsed (also the default, when it is a string)."""
    import argparse

    def parse(text: str) -> str:
        try:
            return str(output_path(text, directory=directory, suffix=suffix))
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def argparse_existing_file(text: str) -> str:
    """An ``argparse`` ``type=`` for an input file that must exist (a config, say): named in the
    usage error when it does not, instead of a traceback after other work."""
    import argparse

    path = pathlib.Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text}: is a directory, not a file")
    if not path.is_file():
        raise argparse.ArgumentTypeError(f"{text}: no such file")
    return text


def save_figure(fig, path: PathLike, **savefig_kwargs) -> pathlib.Path:
    """Writes a matplotlib figure atomically (format from the suffix, e.g. ``.png``, ``.svg``),
    creating the folder, and closes the figure.  Returns the path."""
    import matplotlib.pyplot as plt

    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_write(path, "wb") as f:
            fig.savefig(f, format=path.suffix.lstrip(".").lower() or "png", **savefig_kwargs)
    finally:
        plt.close(fig)
    return path


# Globals a pickle of NumPy arrays needs (protocols 2-5, NumPy 1.x and 2.x module names).
# Anything else (os.system, builtins.eval, ...) is refused, so a malicious file cannot run code.
_ALLOWED_GLOBALS = frozenset(
    [
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # protocol-5 pickles of arrays
        ("numpy._core.numeric", "_frombuffer"),
        ("collections", "OrderedDict"),
        ("_codecs", "encode"),  # protocol-2 pickles written by Python 3 encode bytes with it
    ]
)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(
                f"refusing to unpickle {module}.{name}: only NumPy arrays and plain containers are allowed"
            )
        if module in ("collections", "_codecs"):
            return getattr(importlib.import_module(module), name)
        if module == "numpy":
            return getattr(np, name)
        # Pickles name numpy.core (NumPy 1.x) or numpy._core (2.x); use whichever is installed.
        submodule = module.split(".")[-1]
        core = "numpy._core" if hasattr(np, "_core") else "numpy.core"
        return getattr(importlib.import_module(f"{core}.{submodule}"), name)


class _NumpyOnePickler(pickle._Pickler):  # the Python pickler: its save_global can be extended
    """Pickles NumPy arrays under NumPy 1.x's module names (``numpy.core.*``).

    NumPy 2 pickles name ``numpy._core.multiarray._reconstruct``, which NumPy before 1.26 cannot
    import (``ModuleNotFoundError: numpy._core``): a file written here would not open in an
    older environment such as the original sketch-rnn's.  ``numpy.core.*`` loads everywhere
    (NumPy 2 keeps it as an alias)."""

    def save_global(self, obj, name=None):
        module = getattr(obj, "__module__", None) or ""
        if self.proto < 4 and (module == "numpy._core" or module.startswith("numpy._core.")):
            qualname = name or obj.__qualname__
            legacy = "numpy.core" + module[len("numpy._core"):]
            self.write(pickle.GLOBAL + f"{legacy}\n{qualname}\n".encode("ascii"))
            self.memoize(obj)
            return
        super().save_global(obj, name)


def write_npy_portable(f: IO[bytes], array: np.ndarray) -> None:
    """Writes ``array`` as a ``.npy`` file readable by NumPy 1.x and 2.x alike (what
    ``np.save`` writes, except that an object array's pickle names ``numpy.core``, see
    :class:`_NumpyOnePickler`)."""
    if not array.dtype.hasobject:
        np.lib.format.write_array(f, array, allow_pickle=False)
        return
    np.lib.format.write_array_header_1_0(f, np.lib.format.header_data_from_array_1_0(array))
    _NumpyOnePickler(f, protocol=3).dump(array)


def safe_unpickle(f: IO[bytes], *, encoding: str = "ASCII"):
    """``pickle.load`` that only reconstructs NumPy arrays, dtypes, dicts and lists.

    ``encoding='latin1'`` reads Python 2 pickles of NumPy arrays (sketch-rnn npz files).
    Raises ``pickle.UnpicklingError`` for any other global.
    """
    return _NumpyOnlyUnpickler(f, encoding=encoding).load()


def safe_unpickle_bytes(data: bytes, *, encoding: str = "ASCII"):
    """:func:`safe_unpickle` of an in-memory pickle."""
    return safe_unpickle(io.BytesIO(data), encoding=encoding)
