"""Import (and export) Magenta **sketch-rnn-js** ``.gen.json`` / ``.vae.json`` models.

File layout (a JSON array of three items, as read by sketch-rnn-js ``load_model``):

1. ``info``: ``{"name", "mode", "version", "max_seq_len", "scale_factor", ...}``; ``mode`` is
   ``2`` or ``"gen"`` for an unconditional decoder, ``0``, ``1`` or ``"vae"`` for a VAE;
2. ``dimensions``: the shape of each weight blob (``[rows, cols]`` or ``[n]``);
3. ``blobs``: base64 strings of **little-endian int16** arrays, row-major; weight =
   ``int16 / 32767 * 10``.

Blob order — decoder (``gen``): output ``W [H, 3+6M]``, output ``b``, LSTM ``W_xh [5, 4H]``,
``W_hh [H, 4H]``, ``bias [4H]``.  VAE: encoder forward LSTM ``W_xh, W_hh, bias``, backward LSTM
``W_xh, W_hh, bias``, ``mu`` ``W, b``, ``presig`` ``W, b``, initial-state ``W [Nz, 2H], b``,
output ``W, b``, decoder LSTM ``W_xh [5+Nz, 4H], W_hh, bias``.  LSTM gates are ordered
i, g, f, o with a constant forget bias of 1.0 — exactly :func:`sketchjax.models.sketch_rnn.lstm_step`,
so the blobs are used without reordering.  (sketch-rnn-js applies an extra ``tanh`` to ``z``
before the initial-state layer for VAE files with ``version < 6``; that quirk is not modelled.)

Units: the decoder reads and writes offsets in model units, data units / ``info.scale_factor``
(``config.scale_factor = info.scale_factor``; sketch-rnn-js by default further divides by a
``pixel_factor`` of 2 for screen display, this importer does not).  The Google models' data
units are those of the sketch-rnn QuickDraw datasets they were trained on, **not** the 0-255
frame of QuickDraw's simplified ndjson: sheep samples at temperature 0.25 span a median of
~780-840 units on their long side (100 samples; scratch checks, 2026-12-03), about 3x a
simplified drawing.  Fit samples to a canvas (:func:`sketchjax.normalize.fit_to_canvas`) before
comparing them with ndjson sketches; the sample datasets here do (:mod:`sketchjax.data`).
Scoring 0-255 sketches with a decoder's likelihood is off its training scale (a scratch check
on 16 human sheep found the likelihood highest with the sketches scaled up by about 1.5-2x).
"""
from __future__ import annotations

import base64
import binascii
import datetime
import json
import os
from typing import Any, Mapping, Optional

import numpy as np

from sketchjax.formats._io import PathLike, atomic_write
from sketchjax.models.sketch_rnn import JS_START_TOKEN, SketchRNNConfig

__all__ = ["load_sketch_rnn_js", "save_sketch_rnn_js", "decode_blob", "encode_blob", "MAX_WEIGHT"]

#: Weights are stored as ``round(w / MAX_WEIGHT * 32767)`` in int16.
MAX_WEIGHT = 10.0
_INT16_MAX = 32767.0

_GEN_MODES = (2, "gen")
_VAE_MODES = (0, 1, "vae")

# (path in the params tree) for each blob, in file order.
_DECODER_BLOBS = (
    ("output", "kernel"),
    ("output", "bias"),
    ("decoder", "kernel_x"),
    ("decoder", "kernel_h"),
    ("decoder", "bias"),
)
_VAE_BLOBS = (
    ("encoder", "fw", "kernel_x"),
    ("encoder", "fw", "kernel_h"),
    ("encoder", "fw", "bias"),
    ("encoder", "bw", "kernel_x"),
    ("encoder", "bw", "kernel_h"),
    ("encoder", "bw", "bias"),
    ("encoder", "mu", "kernel"),
    ("encoder", "mu", "bias"),
    ("encoder", "presig", "kernel"),
    ("encoder", "presig", "bias"),
    ("init_state", "kernel"),
    ("init_state", "bias"),
) + _DECODER_BLOBS


def decode_blob(text: str, shape, where: str = "blob") -> np.ndarray:
    """base64 → little-endian int16 → ``float32`` weights ``int16 / 32767 * 10`` of ``shape``.

    Raises:
      ValueError: naming ``where``, for invalid base64 or a byte count that does not match ``shape``.
    """
    if not isinstance(text, str):
        raise ValueError(f"{where}: expected a base64 string, got {type(text).__name__}")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise ValueError(f"{where}: invalid base64 ({e})") from None
    count = int(np.prod(shape))
    if len(raw) != 2 * count:
        raise ValueError(f"{where}: {len(raw)} bytes, expected {2 * count} for int16 shape {list(shape)}")
    q = np.frombuffer(raw, dtype="<i2").astype(np.float64)
    # Same order of operations as sketch-rnn-js: divide by 32767, then multiply by 10.
    return (q / _INT16_MAX * MAX_WEIGHT).astype(np.float32).reshape(shape)


def encode_blob(weights: np.ndarray) -> str:
    """Inverse of :func:`decode_blob`: ``round(w / 10 * 32767)`` (clipped to int16) as base64."""
    q = np.clip(np.round(np.asarray(weights, np.float64) / MAX_WEIGHT * _INT16_MAX), -32768, 32767)
    return base64.b64encode(q.astype("<i2").tobytes()).decode("ascii")


def _expected_shapes(config: SketchRNNConfig) -> list:
    h4, hd = 4 * config.dec_hidden, config.dec_hidden
    shapes = [
        [hd, config.output_size],
        [config.output_size],
        [config.decoder_input_size, h4],
        [hd, h4],
        [h4],
    ]
    if not config.conditional:
        return shapes
    he, z = config.enc_hidden, config.z_size
    enc = [[5, 4 * he], [he, 4 * he], [4 * he]]
    return enc + enc + [[2 * he, z], [z], [2 * he, z], [z], [z, 2 * hd], [2 * hd]] + shapes


def _config_from_file(info: Mapping[str, Any], dims: list, where: str) -> SketchRNNConfig:
    mode = info.get("mode")
    if mode in _GEN_MODES:
        conditional, n_blobs = False, len(_DECODER_BLOBS)
    elif mode in _VAE_MODES:
        conditional, n_blobs = True, len(_VAE_BLOBS)
    else:
        raise ValueError(
            f"{where}: unknown sketch-rnn-js model type mode={mode!r} (expected 2/'gen' for a decoder, "
            "0/1/'vae' for a VAE)"
        )
    if len(dims) != n_blobs:
        kind = "VAE" if conditional else "decoder"
        raise ValueError(f"{where}: a {kind} (mode={mode!r}) has {n_blobs} weight blobs, the file lists {len(dims)}")
    for i, d in enumerate(dims):
        if not (isinstance(d, list) and 1 <= len(d) <= 2 and all(isinstance(n, int) and n > 0 for n in d)):
            raise ValueError(f"{where}: blob {i} has an invalid shape {d!r}")
    out_w = dims[-5]
    if len(out_w) != 2 or (out_w[1] - 3) % 6 or out_w[1] <= 3:
        raise ValueError(f"{where}: output weight shape {out_w} is not [H, 3 + 6M]")
    enc_hidden = z_size = 0
    if conditional:
        enc_hidden = dims[1][0]
        z_size = dims[6][1] if len(dims[6]) == 2 else 0
    try:
        scale_factor = float(info["scale_factor"])
        max_len = info["max_seq_len"]
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{where}: info needs numeric 'scale_factor' and 'max_seq_len' ({e!r})") from None
    if isinstance(max_len, bool) or not isinstance(max_len, (int, float)) or not float(max_len).is_integer():
        raise ValueError(f"{where}: info's 'max_seq_len' must be a whole number, got {max_len!r}")
    max_len = int(max_len)
    try:
        config = SketchRNNConfig(
            enc_hidden=enc_hidden,
            dec_hidden=out_w[0],
            num_mixtures=(out_w[1] - 3) // 6,
            z_size=z_size,
            max_len=max_len,
            conditional=conditional,
            scale_factor=scale_factor,
            forget_bias=1.0,
            # sketch-rnn-js's zero_input(), which the published models were trained with; a file
            # written by save_sketch_rnn_js names its model's own
            start_token=_start_token(info.get("start_token", JS_START_TOKEN), where),
            name=str(info.get("name", "")),
        )
    except ValueError as e:
        raise ValueError(f"{where}: {e}") from None
    expected = _expected_shapes(config)
    for i, (d, e) in enumerate(zip(dims, expected)):
        if list(d) != e:
            raise ValueError(f"{where}: blob {i} has shape {d}, expected {e} for {config}")
    return config


def _start_token(value, where: str) -> tuple:
    if not (isinstance(value, (list, tuple)) and len(value) == 5):
        raise ValueError(f"{where}: info's 'start_token' must be a stroke-5 row of 5 numbers, got {value!r}")
    return tuple(value)


def load_sketch_rnn_js(path: PathLike) -> tuple[SketchRNNConfig, dict]:
    """Read a sketch-rnn-js model file into a :class:`SketchRNNConfig` and Flax variables.

    Args:
      path: a ``.gen.json`` (unconditional decoder) or ``.vae.json`` (VAE) file.

    Returns:
      ``(config, variables)`` with ``variables = {'params': {...}}`` usable by
      :class:`~sketchjax.models.sketch_rnn.SketchRNN` and
      :func:`~sketchjax.models.sketch_rnn.sample`; float32 NumPy leaves.

    Raises:
      ValueError: naming the file — unreadable or invalid JSON, wrong top-level structure,
        unknown model type, wrong number or shape of blobs, invalid base64, wrong blob size.
    """
    where = os.fspath(path)
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read())
    except OSError as e:
        raise ValueError(f"{where}: cannot read ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{where}: not a valid sketch-rnn-js JSON file ({e})") from None
    if not (isinstance(data, list) and len(data) == 3 and isinstance(data[0], dict)):
        raise ValueError(f"{where}: expected a JSON array [info, dimensions, blobs]")
    info, dims, blobs = data
    if not isinstance(dims, list) or not isinstance(blobs, list):
        raise ValueError(f"{where}: dimensions and blobs must be arrays")
    config = _config_from_file(info, dims, where)
    if len(blobs) != len(dims):
        raise ValueError(f"{where}: {len(blobs)} weight blobs for {len(dims)} listed shapes")
    layout = _VAE_BLOBS if config.conditional else _DECODER_BLOBS
    params: dict = {}
    for i, (keys, text, shape) in enumerate(zip(layout, blobs, dims)):
        node = params
        for k in keys[:-1]:
            node = node.setdefault(k, {})
        node[keys[-1]] = decode_blob(text, shape, f"{where}: blob {i} ({'/'.join(keys)})")
    return config, {"params": params}


def save_sketch_rnn_js(path: PathLike, config: SketchRNNConfig, variables, info: Optional[Mapping] = None) -> None:
    """Write a model in the sketch-rnn-js format (weights quantised to int16 steps of 10/32767).

    Weights beyond ``±10`` are clipped (the format's range).  ``info`` entries are added to
    ``{name, mode (2 for a decoder, 0 for a VAE), version 6, max_seq_len, scale_factor, exported}``
    and, for a model whose :attr:`~SketchRNNConfig.start_token` is not sketch-rnn-js's zeros
    (one trained here), ``start_token``: :func:`load_sketch_rnn_js` reads it back; the
    sketch-rnn-js library ignores it and starts from zeros.
    """
    p = variables["params"] if "params" in variables else variables
    layout = _VAE_BLOBS if config.conditional else _DECODER_BLOBS
    arrays = []
    for keys in layout:
        node = p
        for k in keys:
            node = node[k]
        arrays.append(np.asarray(node, np.float32))
    header = {
        "mode": 0 if config.conditional else 2,
        "version": 6,
        "max_seq_len": config.max_len,
        "name": config.name,
        "scale_factor": config.scale_factor,
        "exported": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }
    if tuple(config.start_token) != JS_START_TOKEN:
        header["start_token"] = list(config.start_token)
    header.update(info or {})
    doc = [header, [list(a.shape) for a in arrays], [encode_blob(a) for a in arrays]]
    with atomic_write(path) as f:
        json.dump(doc, f)
