"""Reader for TensorFlow.js *layers-model* directories, with NumPy only (no TensorFlow).

A layers model (``tensorflowjs_converter --input_format keras``) is a directory holding

* ``model.json`` — ``{"format": "layers-model", "modelTopology": <Keras model JSON>,
  "weightsManifest": [{"paths": [shard files], "weights": [{"name", "shape", "dtype",
  "quantization"?}, ...]}, ...]}``;
* the shard files (``group1-shard1of1.bin`` ...): each manifest group's weights are stored
  back to back, little-endian, in manifest order, across the concatenation of the group's
  shards (a weight may straddle two shards).

Stored dtypes: ``float32``, ``int32`` and ``bool`` (one byte) as is; a weight with a
``quantization`` entry is stored in the quantised dtype instead — ``uint8``/``uint16`` with
``{"scale", "min"}`` (value = ``q * scale + min``, rounded for ``int32`` weights) or
``float16`` (cast back) — and returned in its declared ``dtype``.

Every problem raises :class:`ModelFileError` naming the file and what is wrong: missing or
unreadable files, bad JSON, a missing shard, shards shorter or longer than the manifest
says, malformed shapes, duplicate names, unknown dtypes or quantisations.
"""
from __future__ import annotations

import collections
import dataclasses
import json
import math
import os
import pathlib
from typing import Any, Mapping, Sequence, Union

import numpy as np

__all__ = [
    "ModelFileError",
    "TfjsLayersModel",
    "read_tfjs_layers_model",
    "read_weights",
    "layer_configs",
    "expect_shapes",
]

PathLike = Union[str, os.PathLike]

#: Storage dtype (little-endian) of each declared TF.js dtype when not quantised.
_STORED = {"float32": np.dtype("<f4"), "int32": np.dtype("<i4"), "bool": np.dtype("u1")}
#: Returned dtype of each declared TF.js dtype.
_RETURNED = {"float32": np.dtype(np.float32), "int32": np.dtype(np.int32), "bool": np.dtype(bool)}
#: Storage dtype of each quantisation; the affine ones need ``scale`` and ``min``.
_QUANTISED = {"uint8": np.dtype("u1"), "uint16": np.dtype("<u2"), "float16": np.dtype("<f2")}
_AFFINE = ("uint8", "uint16")


class ModelFileError(ValueError):
    """A model file is missing or malformed; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class TfjsLayersModel:
    """The contents of a TF.js layers-model directory.

    Attributes:
      weights: ``name -> np.ndarray`` in manifest order (e.g. ``"conv2d/kernel"`` ->
        ``float32[3, 3, 1, 16]``), in the declared dtype and shape.
      layers: the Keras layer list, each ``{"class_name": "Conv2D", "config": {...}}``, in
        model order.
      topology: the raw ``modelTopology`` object.
      path: the ``model.json`` file read.
    """

    weights: "collections.OrderedDict[str, np.ndarray]"
    layers: list
    topology: dict
    path: pathlib.Path


def _model_json_path(path: PathLike) -> pathlib.Path:
    path = pathlib.Path(path)
    return path / "model.json" if path.is_dir() else path


def read_tfjs_layers_model(path: PathLike) -> TfjsLayersModel:
    """Read a TF.js layers model: its layer configs and all its weights.

    Args:
      path: the model directory, or its ``model.json`` (shards are looked up next to it).

    Returns:
      :class:`TfjsLayersModel`.

    Raises:
      ModelFileError: see the module docstring.
    """
    json_path = _model_json_path(path)
    try:
        text = json_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ModelFileError(f"{json_path}: model file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{json_path}: cannot read the model file ({e})") from None
    try:
        model = json.loads(text)
    except json.JSONDecodeError as e:
        raise ModelFileError(
            f"{json_path}: invalid JSON ({e.msg} at line {e.lineno} column {e.colno}); truncated or corrupt?"
        ) from None
    if not isinstance(model, Mapping):
        raise ModelFileError(f"{json_path}: expected a JSON object, got {type(model).__name__}")
    fmt = model.get("format", "layers-model")  # converters before 1.0 wrote no "format"
    if fmt != "layers-model":
        raise ModelFileError(f"{json_path}: format {fmt!r} is not a TF.js layers-model")
    for key in ("modelTopology", "weightsManifest"):
        if key not in model:
            raise ModelFileError(f"{json_path}: missing {key!r} (keys: {sorted(model)})")
    topology = model["modelTopology"]
    layers = layer_configs(topology, source=str(json_path))
    weights = read_weights(model["weightsManifest"], json_path.parent, source=str(json_path))
    return TfjsLayersModel(weights=weights, layers=layers, topology=topology, path=json_path)


def layer_configs(topology: Any, *, source: str = "modelTopology") -> list:
    """The layer list of a Keras model JSON (``modelTopology``).

    Accepts ``{"model_config": {...}}`` (Keras ``model.to_json()`` plus versions) or the
    model config itself, for Sequential (``config.layers`` or, in old Keras, a bare list)
    and functional models (``config.layers``).

    Returns:
      ``[{"class_name": str, "config": dict}, ...]`` (the JSON objects themselves).
    """
    config = topology.get("model_config", topology) if isinstance(topology, Mapping) else None
    if not isinstance(config, Mapping) or "config" not in config:
        raise ModelFileError(f"{source}: modelTopology holds no Keras model config")
    inner = config["config"]
    layers = inner.get("layers") if isinstance(inner, Mapping) else inner
    if not isinstance(layers, list):
        raise ModelFileError(f"{source}: model config of class {config.get('class_name')!r} has no layer list")
    for i, layer in enumerate(layers):
        if not (isinstance(layer, Mapping) and isinstance(layer.get("class_name"), str)
                and isinstance(layer.get("config"), Mapping)):
            raise ModelFileError(f"{source}: layer {i} is not a {{'class_name', 'config'}} object")
    return layers


def _weight_spec(spec: Any, where: str):
    """Validated ``(name, shape, returned dtype, stored dtype, quantization)`` of one entry."""
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise ModelFileError(f"{where}: a weight entry needs a string 'name', got {json.dumps(spec)[:80]}")
    name = spec["name"]
    where = f"{where}: weight {name!r}"
    shape = spec.get("shape")
    if not (isinstance(shape, list) and all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape)):
        raise ModelFileError(f"{where}: shape must be a list of non-negative integers, got {shape!r}")
    dtype = spec.get("dtype")
    if dtype not in _STORED:
        raise ModelFileError(f"{where}: unknown dtype {dtype!r} (supported: {sorted(_STORED)})")
    quant = spec.get("quantization")
    stored = _STORED[dtype]
    if quant is not None:
        qdtype = quant.get("dtype") if isinstance(quant, Mapping) else None
        if qdtype not in _QUANTISED:
            raise ModelFileError(f"{where}: unknown quantization {quant!r} (dtypes: {sorted(_QUANTISED)})")
        if qdtype in _AFFINE and not all(isinstance(quant.get(k), (int, float)) for k in ("scale", "min")):
            raise ModelFileError(f"{where}: {qdtype} quantization needs numeric 'scale' and 'min', got {quant!r}")
        stored = _QUANTISED[qdtype]
    return name, tuple(shape), _RETURNED[dtype], stored, quant


def _decode(raw: bytes, shape, dtype: np.dtype, stored: np.dtype, quant) -> np.ndarray:
    values = np.frombuffer(raw, dtype=stored).reshape(shape)
    if quant is not None:
        values = values.astype(np.float64)
        if quant["dtype"] in _AFFINE:
            values = values * quant["scale"] + quant["min"]
        if dtype.kind in "iu":
            values = np.round(values)  # as TF.js does for quantised int32 weights
    return values.astype(dtype)  # also a writable, native-endian copy


def read_weights(
    manifest: Any, directory: PathLike, *, source: str = "weightsManifest"
) -> "collections.OrderedDict[str, np.ndarray]":
    """Read every weight of a TF.js ``weightsManifest`` from its shards in ``directory``.

    Args:
      manifest: the decoded ``weightsManifest`` list of groups.
      directory: where the shard paths are relative to (the ``model.json`` directory).
      source: names the manifest in errors.

    Returns:
      Ordered ``name -> np.ndarray`` over all groups, in manifest order.
    """
    directory = pathlib.Path(directory)
    if not isinstance(manifest, list):
        raise ModelFileError(f"{source}: weightsManifest must be a list of groups")
    weights: collections.OrderedDict[str, np.ndarray] = collections.OrderedDict()
    for g, group in enumerate(manifest):
        where = f"{source}: weightsManifest group {g}"
        if not (isinstance(group, Mapping) and isinstance(group.get("paths"), list)
                and isinstance(group.get("weights"), list)):
            raise ModelFileError(f"{where}: needs 'paths' and 'weights' lists")
        if not all(isinstance(p, str) and p for p in group["paths"]):
            raise ModelFileError(f"{where}: 'paths' must be non-empty file names, got {group['paths']!r}")
        shard_paths = [directory / p for p in group["paths"]]
        chunks = []
        for p in shard_paths:
            try:
                chunks.append(p.read_bytes())
            except FileNotFoundError:
                raise ModelFileError(f"{p}: weight shard listed in {source} not found") from None
            except OSError as e:
                raise ModelFileError(f"{p}: cannot read the weight shard ({e})") from None
        data = b"".join(chunks)
        shards = ", ".join(str(p) for p in shard_paths)
        offset = 0
        for spec in group["weights"]:
            name, shape, dtype, stored, quant = _weight_spec(spec, where)
            if name in weights:
                raise ModelFileError(f"{where}: weight {name!r} appears twice")
            nbytes = math.prod(shape) * stored.itemsize
            if offset + nbytes > len(data):
                raise ModelFileError(
                    f"{shards}: too short ({len(data)} bytes) for the manifest in {source}: weight "
                    f"{name!r} {list(shape)} needs bytes {offset}..{offset + nbytes}; truncated file?"
                )
            weights[name] = _decode(data[offset : offset + nbytes], shape, dtype, stored, quant)
            if weights[name].dtype.kind == "f" and not np.isfinite(weights[name]).all():
                bad = int(np.size(weights[name]) - np.isfinite(weights[name]).sum())
                raise ModelFileError(
                    f"{shards}: weight {name!r} has {bad} non-finite value(s) (NaN or inf); corrupt shard?"
                )
            offset += nbytes
        if offset != len(data):
            raise ModelFileError(
                f"{shards}: {len(data) - offset} bytes more than the {offset} the manifest in {source} "
                "describes (wrong shard, or manifest shapes/dtypes do not match the weights)"
            )
    return weights


def expect_shapes(weights: Mapping[str, np.ndarray], shapes: Mapping[str, Sequence[int]], *, source: str) -> None:
    """Check that ``weights`` has exactly the names in ``shapes``, each with that shape.

    Raises:
      ModelFileError: listing missing, unused and mis-shaped weights.
    """
    missing = [n for n in shapes if n not in weights]
    unused = [n for n in weights if n not in shapes]
    wrong = [f"{n} {list(weights[n].shape)} (expected {list(shapes[n])})"
             for n in shapes if n in weights and tuple(weights[n].shape) != tuple(shapes[n])]
    problems = []
    if missing:
        problems.append(f"missing weights {missing}")
    if unused:
        problems.append(f"unused weights {unused}")
    if wrong:
        problems.append(f"wrong shapes: {', '.join(wrong)}")
    if problems:
        raise ModelFileError(f"{source}: " + "; ".join(problems))
