"""Training configs: Python files with ``get_config()``, overridden from the command line.

A config is a plain nested ``dict`` (or a dataclass) — no ml_collections. Its module docstring
states the command, the expected runtime and the expected metric (big_vision style). The
generic keys the loop reads are those of :func:`default_config`; a config adds its own
(``model``, ``data``, ...) for its experiment builder.
"""
from __future__ import annotations

import ast
import copy
import dataclasses
import importlib
import importlib.util
import pathlib
import sys
from types import ModuleType
from typing import Any, Sequence

__all__ = ["default_config", "load_config", "apply_overrides", "config_to_dict", "resolve_object"]


def default_config() -> dict[str, Any]:
    """The loop's settings and their defaults (GACL's recipe, SPEC §5: Adam 1e-3, cosine
    annealing with a warm restart every epoch).

    * ``seed``: initial parameters, shuffling, per-step keys.
    * ``num_epochs``: run length in epochs of the training source.
    * ``batch_size``: global batch size (the experiment builder passes it to its sources).
    * ``optimizer``: ``name`` (adam | adamw | sgd), ``learning_rate``, ``schedule`` (constant |
      cosine | sgdr), ``restart_every`` ("epoch" or steps), ``warmup_steps``,
      ``min_learning_rate``, ``weight_decay``, ``momentum``, ``nesterov``, ``clip_norm``
      (None: no clipping), ``lr_scale`` (None, or ``{"encoder": 0.1, ...}``: per-parameter-path
      learning-rate multipliers, 0 freezes; :func:`sketchjax.training.optim.scale_by_path`).
    * ``log_every_steps``: one ``metrics.jsonl`` record of running means per this many steps.
    * ``checkpoint_every_steps``, ``keep_checkpoints``: checkpoint cadence and retention (a
      checkpoint is always written at the end).
    * ``eval_every_epochs``: evaluate after every this many epochs (and at the end); 0: only
      at the end.
    * ``progress_bar``: True / False, or None for "when stderr is a terminal".
    """
    return {
        "seed": 0,
        "num_epochs": 1,
        "batch_size": 128,
        "optimizer": {
            "name": "adam",
            "learning_rate": 1e-3,
            "schedule": "sgdr",
            "restart_every": "epoch",
            "warmup_steps": 0,
            "min_learning_rate": 0.0,
            "weight_decay": 0.0,
            "momentum": 0.9,
            "nesterov": False,
            "clip_norm": None,
            "lr_scale": None,
        },
        "log_every_steps": 50,
        "checkpoint_every_steps": 1000,
        "keep_checkpoints": 3,
        "eval_every_epochs": 1,
        "progress_bar": None,
    }


def load_config(path: str | pathlib.Path) -> tuple[Any, ModuleType]:
    """Import the config file at ``path`` and return ``(module.get_config(), module)``."""
    path = pathlib.Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"config file {path} is a directory; pass the config's .py file")
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} does not exist")
    name = f"_sketchjax_config_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses defined in the config need their module importable
    spec.loader.exec_module(module)
    if not hasattr(module, "get_config"):
        raise ValueError(f"config file {path} defines no get_config()")
    return module.get_config(), module


def resolve_object(spec: str) -> Any:
    """``"package.module:attribute"`` -> the attribute."""
    module_name, _, attr = spec.partition(":")
    if not attr:
        raise ValueError(f"expected 'package.module:attribute', got {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as e:  # the named module (or a package above it) itself, not an import inside it
        if e.name is None or not (module_name == e.name or module_name.startswith(e.name + ".")):
            raise
        raise ValueError(f"{spec!r}: no module named {e.name!r}") from None
    if not hasattr(module, attr):
        raise ValueError(f"{spec!r}: module {module_name} has no attribute {attr!r}")
    return getattr(module, attr)


_NONE = {"none", "null"}
_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


def _convert(raw: str, current: Any, key: str) -> Any:
    if raw.strip().lower() in _NONE:
        return None
    try:
        if isinstance(current, bool):
            if raw.strip().lower() in _TRUE | _FALSE:  # spaces allowed, as around numbers and None
                return raw.strip().lower() in _TRUE
            raise ValueError("expected true/false")
        if isinstance(current, int):
            value = float(raw) if any(c in raw for c in ".eE") else int(raw)
            if isinstance(value, float) and not value.is_integer():
                raise ValueError("expected an integer")
            return int(value)
        if isinstance(current, float):
            return float(raw)
        if isinstance(current, str):
            return raw.strip()
        if isinstance(current, (list, tuple, dict)):
            value = ast.literal_eval(raw)
            if isinstance(current, (list, tuple)) and isinstance(value, (list, tuple)):
                return type(current)(value)
            if not isinstance(value, type(current)):
                raise ValueError(f"expected a {type(current).__name__} literal")
            return value
    except (ValueError, SyntaxError) as e:
        raise ValueError(f"--set {key}={raw}: cannot convert to {type(current).__name__} ({e})") from None
    if raw.strip().lower() in (_TRUE | _FALSE) - {"0", "1"}:  # current is None: true/false are bools (1 / 0 numbers)
        return raw.strip().lower() in _TRUE
    try:  # current is None or an unknown type: a Python literal, else the string itself
        return ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return raw


def _with_value(node: Any, keys: list[str], raw: str, full_key: str) -> Any:
    key, rest = keys[0], keys[1:]
    if isinstance(node, dict):
        if key not in node:
            raise KeyError(f"--set {full_key}: no key {key!r}; available: {sorted(node)}")
        current = node[key]
        new = _with_value(current, rest, raw, full_key) if rest else _convert(raw, current, full_key)
        return {**node, key: new}
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        names = [f.name for f in dataclasses.fields(node) if not f.name.startswith("_")]  # private: derived state
        if key not in names:
            raise KeyError(f"--set {full_key}: no field {key!r}; available: {names}")
        current = getattr(node, key)
        new = _with_value(current, rest, raw, full_key) if rest else _convert(raw, current, full_key)
        # a class's own __replace__ (copy.replace's protocol; e.g. GACLConfig derives its
        # defaulted fields anew), else the plain dataclasses.replace
        replace = getattr(node, "__replace__", None)
        return replace(**{key: new}) if replace is not None else dataclasses.replace(node, **{key: new})
    raise KeyError(f"--set {full_key}: {key!r} is inside a {type(node).__name__}, not a dict or dataclass")


def apply_overrides(config: Any, overrides: Sequence[str]) -> Any:
    """Return a copy of ``config`` with ``key.sub=value`` overrides applied.

    The value is converted to the type of the value it replaces (int, float, bool as
    true/false, str, list/tuple/dict as Python literals); ``none``/``null`` sets None; a key
    whose current value is None takes a Python literal, else the raw string. Unknown keys raise
    ``KeyError`` listing the available ones, so a typo never passes silently.
    """
    config = copy.deepcopy(config)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set expects key=value, got {item!r}")
        config = _with_value(config, key.strip().split("."), raw, key.strip())
    return config


def _public_fields(obj: Any) -> Any:
    """``obj`` with every dataclass (also nested in lists / tuples / dicts) a dict of its public
    fields (``_``-prefixed fields are derived state, e.g. ``GACLConfig._defaulted``), as
    ``dataclasses.asdict`` but without those."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: _public_fields(getattr(obj, f.name)) for f in dataclasses.fields(obj) if not f.name.startswith("_")}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple takes its fields as arguments
        return type(obj)(*(_public_fields(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(_public_fields(v) for v in obj)
    if isinstance(obj, dict):
        return {k: _public_fields(v) for k, v in obj.items()}
    return copy.deepcopy(obj)


def config_to_dict(config: Any) -> dict[str, Any]:
    """Plain nested dict of a dict or dataclass config (for JSON)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return _public_fields(config)
    return copy.deepcopy(dict(config))
