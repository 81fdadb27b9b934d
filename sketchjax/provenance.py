"""Provenance of a measured result: when, on what machine and software, from which commit.

Every number in ``RESULTS.md`` comes with its command, data, machine and date; evaluation
programs put :func:`run_record` into the JSON they write so that the file says all of it.
"""
from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from typing import Optional, Sequence

__all__ = ["machine_info", "run_record"]


#: Where the programs write their results: changes there are outputs, not the code that made them.
RESULT_DIRS = ("eval/results", "benchmarks/results")


def _git_commit(root: Optional[str] = None) -> Optional[str]:
    """``HEAD``'s short hash, with `` (dirty)`` when tracked files other than results differ from it.

    Changes under :data:`RESULT_DIRS` do not count: a program re-run at a clean commit rewrites
    its own committed output (and figures) before it records the commit."""
    root = root or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        out = subprocess.run(["git", "rev-parse", "--short=10", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                *(f":(exclude){d}" for d in RESULT_DIRS)], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() + (" (dirty)" if dirty else "")) if out.returncode == 0 else None


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


def run_record(script: str, argv: Optional[Sequence[str]] = None) -> dict:
    """``{"command", "date" (UTC ISO), "machine", "commit"}`` for a program run as ``python <script> <argv>``."""
    args = list(sys.argv[1:] if argv is None else argv)
    return {
        "command": " ".join(["python", script] + args),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "commit": _git_commit(),
    }
