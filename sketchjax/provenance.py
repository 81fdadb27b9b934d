"""Provenance of a measured result: when, on what machine and software, from which commit.

Every number in ``RESULTS.md`` comes with its command, data, machine and date; evaluation
programs put :func:`run_record` into the JSON they write so that the file says all of it.
"""
from __future__ import annotations

import datetime
import os
import platform
import shlex
import subprocess
import sys
from typing import Optional, Sequence

__all__ = ["machine_info", "run_record"]


#: Where the programs write their results: changes there are outputs, not the code that made them.
RESULT_DIRS = ("eval/results", "benchmarks/results")


def git_state(root: Optional[str] = None) -> tuple[Optional[str], Optional[bool]]:
    """``(HEAD's full hash, dirty)``; ``(None, None)`` outside a git checkout.

    Dirty: a tracked file differs from ``HEAD`` or an untracked, not ignored file exists (a new
    module or config a run may have used), outside :data:`RESULT_DIRS` — a program re-run at a
    clean commit rewrites (or adds) its own outputs there before it records the commit."""
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        if out.returncode != 0 or not out.stdout.strip():
            return None, None
        dirty = subprocess.run(["git", "status", "--porcelain", "--", ".",
                                *(f":(exclude){d}" for d in RESULT_DIRS)], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None, None
    return out.stdout.strip(), bool(dirty)


def _git_commit(root: Optional[str] = None) -> Optional[str]:
    """``HEAD``'s short hash, with `` (dirty)`` as :func:`git_state` decides."""
    commit, dirty = git_state(root)
    return None if commit is None else commit[:10] + (" (dirty)" if dirty else "")


def code_state(root: Optional[str] = None) -> Optional[str]:
    """What identifies the code a run uses, for resuming it: ``HEAD``'s hash on a clean checkout,
    else the hash and a digest of the uncommitted changes (``git diff HEAD`` and the contents of
    untracked, not ignored files, outside :data:`RESULT_DIRS`) — "(dirty)" alone named any edit,
    so a killed run resumed on other uncommitted code mixed its rows in.  None outside git."""
    import hashlib

    commit, dirty = git_state(root)
    if commit is None or not dirty:
        return commit
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    excluded = [f":(exclude){d}" for d in RESULT_DIRS]
    h = hashlib.blake2b(digest_size=8)
    try:
        h.update(subprocess.run(["git", "diff", "HEAD", "--binary", "--", ".", *excluded], cwd=root,
                                capture_output=True, timeout=60).stdout)
        untracked = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z", "--", ".", *excluded],
                                   cwd=root, capture_output=True, timeout=60).stdout.split(b"\0")
        for name in sorted(n for n in untracked if n):
            h.update(name + b"\0")
            try:
                with open(os.path.join(root, os.fsdecode(name)), "rb") as f:
                    h.update(f.read())
            except OSError:
                h.update(b"<unreadable>")
    except (OSError, subprocess.SubprocessError):
        return f"{commit} (dirty, changes unknown)"
    return f"{commit} (dirty: {h.hexdigest()})"


# The code a program runs is the code at its start: recorded when the program imports this module
# (programs import it at the top), compared with the state when the record is written.
_AT_START = _git_commit()


def machine_info() -> dict:
    """Host, CPU count, Python / JAX versions and JAX devices (``str`` of each)."""
    import jax

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return {
        "node": platform.node(),
        "platform": platform.platform(),
        "processor": cpu,
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "jax": jax.__version__,
        "devices": [str(d) for d in jax.devices()],
    }


def command_line(script: str, argv: Optional[Sequence[str]] = None) -> str:
    """``python <script> <argv>`` quoted for a POSIX shell (``--runs "a b=runs/x"`` stays one
    argument), so a recorded command can be pasted back; ``argv`` defaults to ``sys.argv[1:]``."""
    return shlex.join(["python", script, *(sys.argv[1:] if argv is None else argv)])


def run_record(script: str, argv: Optional[Sequence[str]] = None, data: Optional[str] = None) -> dict:
    """``{"command", "date" (UTC ISO), "machine", "commit", "data_root"}`` for a program run as
    ``python <script> <argv>``.

    ``commit`` is the state when the program started (imported this module); if the checkout
    changed while it ran, that is said: ``"<start> (changed during the run: now <end>)"``.
    ``data_root``: the data directory the program read — its ``--data`` when given (``data``),
    else ``$SKETCHJAX_DATA`` or the default, as resolved (None if there is none); the command
    line does not show the environment, so without it a JSON did not say which data it measured."""
    from sketchjax.paths import data_root  # the standard library only

    now = _git_commit()
    commit = _AT_START if now == _AT_START else f"{_AT_START} (changed during the run: now {now})"
    try:
        root = str(data_root(data).resolve())
    except FileNotFoundError:
        root = None
    return {
        "command": command_line(script, argv),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "commit": commit,
        "data_root": root,
    }
