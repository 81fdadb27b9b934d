"""Where the real sketch data lives.

The data (QuickDraw, Chair-V2, TU-Berlin, sketch-rnn npz, pre-trained models) is never part of
the repository.  It is found, in order, from an explicit path, the environment variable
``SKETCHJAX_DATA``, or ``../shared/data`` next to the repository root (a development
checkout's layout).
"""
from __future__ import annotations

import os
import pathlib
from typing import Optional, Union

__all__ = ["DATA_ENV_VAR", "OFFLINE_ENV_VAR", "data_root", "data_path", "downloads_allowed"]

#: Environment variable naming the data directory.
DATA_ENV_VAR = "SKETCHJAX_DATA"

#: Environment variable that turns downloads off: set to anything but ``""`` or ``"0"``, a
#: dataset build whose input files are not local fails at once, naming them, instead of
#: fetching them (or, on a machine without internet, retrying for minutes).
OFFLINE_ENV_VAR = "SKETCHJAX_OFFLINE"

# sketchjax/paths.py -> repository root is two levels up (only meaningful for a checkout).
_REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
_DEFAULT_DATA = _REPO_ROOT.parent / "shared" / "data"


def data_root(path: Optional[Union[str, os.PathLike]] = None) -> pathlib.Path:
    """The data directory: ``path`` if given, else ``$SKETCHJAX_DATA``, else ``<repo>/../shared/data``.

    Raises:
      FileNotFoundError: the chosen directory does not exist, or none was configured and the
        default is absent; the message says how to point the library at the data.
    """
    if path is not None:
        root, origin = pathlib.Path(path), "the path argument"
    elif os.environ.get(DATA_ENV_VAR):
        root, origin = pathlib.Path(os.environ[DATA_ENV_VAR]), f"${DATA_ENV_VAR}"
    elif _DEFAULT_DATA.is_dir():
        return _DEFAULT_DATA
    else:
        raise FileNotFoundError(
            f"no sketch data directory: set ${DATA_ENV_VAR} or pass a path "
            f"(the default {_DEFAULT_DATA} does not exist)"
        )
    if not root.is_dir():
        raise FileNotFoundError(f"sketch data directory {root} (from {origin}) "
                                + ("is a file, not a directory" if root.exists() else "does not exist"))
    return root


def data_path(*parts: Union[str, os.PathLike]) -> pathlib.Path:
    """``data_root() / parts...``, e.g. ``data_path("quickdraw", "simplified", "cat.ndjson")``.

    The returned path is not checked for existence (only the root is).
    """
    return data_root().joinpath(*parts)


def downloads_allowed(download: Optional[bool] = None) -> bool:
    """Whether a dataset build may download missing inputs: ``download`` when given, else not
    when ``$SKETCHJAX_OFFLINE`` is set (to anything but ``""`` or ``"0"``)."""
    if download is not None:
        return bool(download)
    return os.environ.get(OFFLINE_ENV_VAR, "") in ("", "0")
