"""DoodleNet: the pre-trained 345-class QuickDraw classifier of ml5.js, in Flax.

The network (checked against the ``model.json`` it is loaded from, see :func:`load_doodlenet`)::

    28x28x1 -> conv3x3(16) -> conv3x3(16) -> maxpool2 -> conv3x3(32) -> conv3x3(32) -> maxpool2
            -> conv3x3(64) -> conv3x3(64) -> maxpool2 -> dropout(0.1) -> flatten(3*3*64 = 576)
            -> dense(512, tanh) -> dense(345)

Convolutions use ``same`` padding, stride 1 and ReLU; pooling is 2x2 / stride 2 ``valid``
(28 -> 14 -> 7 -> 3).  Kernels are stored as in Keras (``HWIO`` convolution kernels applied
as cross-correlation, ``[in, out]`` dense kernels) and the flatten is NHWC row-major as Keras's
``channels_last`` ``Flatten``, so the TF.js weights are used unchanged.  The Keras model ends
in a softmax; :class:`DoodleNet` returns the **logits** before it (use
:func:`doodlenet_classify` for probabilities).

Input recipe (:func:`doodlenet_input`): fit the sketch to a 256 px canvas with an 8% margin,
draw it with a Bresenham line 13 px wide, area-downsample to 28x28; ink = 1 on a 0
background.  :func:`doodlenet_input_differentiable` is the same recipe with the distance-field
raster of P-SLA (a 14 px line at 256 scale, rendered at 56 px), so ``jax.grad`` reaches the
point coordinates.  Top-1 / top-5 over all 8,600 simplified QuickDraw sketches here
(``python eval/doodlenet_accuracy.py``, results in ``eval/results/doodlenet_accuracy.json``):
Bresenham 13 px 69.8% / 89.9%, 14 px 69.1%, 16 px (the data README's recipe) 63.2% / 86.7%,
12 px 66.4%, 10 px 15.7% — the network needs lines about 1.4 output pixels wide;
distance field 14 px at 56 px 69.9% / 90.1%, at 112 px 69.5%.
"""
from __future__ import annotations

import dataclasses
import os
import pathlib
from functools import partial
from typing import Mapping, Optional, Sequence, Union

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sketchjax._checks import check_finite, checked
from sketchjax.models.tfjs import ModelFileError, expect_shapes, read_tfjs_layers_model
from sketchjax.paths import data_path
from sketchjax.render import RasterRecipe

__all__ = [
    "DoodleNet",
    "DoodleNetEncoder",
    "load_doodlenet",
    "doodlenet_encoder_params",
    "doodlenet_head_params",
    "doodlenet_class_rows",
    "doodlenet_input",
    "doodlenet_input_differentiable",
    "doodlenet_recipe",
    "doodlenet_classify",
    "doodlenet_class_name",
    "DOODLENET_SIZE",
    "DOODLENET_CLASSES",
]

#: Input side in pixels.
DOODLENET_SIZE = 28
#: Number of output classes.
DOODLENET_CLASSES = 345
#: Width of the last hidden layer (the features of :class:`DoodleNetEncoder`).
DOODLENET_FEATURES = 512

# Flax module names of the weighted layers, in model order (blockK_convJ as in Keras's VGG).
_CONV_NAMES = ("block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2")
_DENSE_NAMES = ("hidden", "logits")
_CONV_FEATURES = (16, 16, 32, 32, 64, 64)


class DoodleNet(nn.Module):
    """DoodleNet (see the module docstring); ``apply(variables, images) -> logits``.

    Attributes:
      num_classes: output classes (345 for the pre-trained weights).
      dropout_rate: rate of the dropout before the flatten (0.1 in the Keras model); only
        active with ``train=True``, which then needs a ``"dropout"`` PRNG key.
    """

    num_classes: int = DOODLENET_CLASSES
    dropout_rate: float = 0.1

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool = False, return_features: bool = False):
        """Logits of 28x28 sketch rasters.

        Args:
          images: ``float32[..., 28, 28]`` or ``float32[..., 28, 28, 1]``, ink = 1 on a 0
            background (values in ``[0, 1]``), any leading batch shape.
          train: enable dropout.
          return_features: also return the 512 tanh units the logits are a linear function of.

        Returns:
          ``float32[..., num_classes]`` logits (pre-softmax); with ``return_features``
          ``(logits, float32[..., 512] features)``.
        """
        lead, feats = _features(images, self.dropout_rate, train)
        logits = nn.Dense(self.num_classes, name=_DENSE_NAMES[1])(feats).reshape(lead + (self.num_classes,))
        return (logits, feats.reshape(lead + (DOODLENET_FEATURES,))) if return_features else logits


_RANGE_SLACK = 1e-3  # rounding of resampled / area-averaged rasters


def _check_range(images) -> None:
    """Concrete images (skipped for tracers) must be finite and in ``[0, 1]``: the weights were
    trained on ink 1 on a 0 background, and 0-255 images (or standardised ones) give confident
    nonsense rather than an error."""
    if isinstance(images, jax.core.Tracer):
        return
    v = np.asarray(images)  # one host copy for both checks
    check_finite("DoodleNet", "pixel values", images=v)
    if v.size == 0:
        return
    lo, hi = float(v.min()), float(v.max())
    if lo < -_RANGE_SLACK or hi > 1 + _RANGE_SLACK:
        hint = " (0-255 images: divide by 255)" if hi > 1.5 and lo >= 0 else ""
        raise ValueError(f"DoodleNet: images must hold values in [0, 1] (ink 1 on a 0 background); got values "
                         f"in [{lo:g}, {hi:g}]{hint}")


def _features(images, dropout_rate: float, train: bool):
    """DoodleNet's layers up to the 512 tanh units, created in the *calling* module's compact
    ``__call__`` (so :class:`DoodleNet` and :class:`DoodleNetEncoder` share one parameter
    layout).  Returns ``(leading batch shape, float32[N, 512])``."""
    x = jnp.asarray(images, jnp.float32)
    if x.ndim >= 3 and x.shape[-3:] == (DOODLENET_SIZE, DOODLENET_SIZE, 1):
        x = x[..., 0]
    if x.ndim < 2 or x.shape[-2:] != (DOODLENET_SIZE, DOODLENET_SIZE):
        raise ValueError(f"DoodleNet expects images [..., 28, 28] or [..., 28, 28, 1], got shape {x.shape}")
    _check_range(images)
    lead = x.shape[:-2]
    x = x.reshape((-1, DOODLENET_SIZE, DOODLENET_SIZE, 1))
    for i, (name, features) in enumerate(zip(_CONV_NAMES, _CONV_FEATURES)):
        x = nn.relu(nn.Conv(features, (3, 3), padding="SAME", name=name)(x))
        if i % 2 == 1:
            x = nn.max_pool(x, (2, 2), strides=(2, 2), padding="VALID")
    x = nn.Dropout(dropout_rate)(x, deterministic=not train)
    x = x.reshape((x.shape[0], -1))  # NHWC row-major == Keras channels_last Flatten
    return lead, jnp.tanh(nn.Dense(DOODLENET_FEATURES, name=_DENSE_NAMES[0])(x))


class DoodleNetEncoder(nn.Module):
    """DoodleNet without its 345-way layer: ``apply(variables, images) -> float32[B, 512]``
    (the tanh units), an encoder for :class:`~sketchjax.models.layers.Classifier` and
    :class:`~sketchjax.gacl.GACLClassifier` (``model.name = "doodlenet"`` in
    :mod:`sketchjax.classifier`).  Its parameters have the names and shapes of
    :class:`DoodleNet`'s, so the pre-trained weights (:func:`doodlenet_encoder_params`) drop
    in — a backbone trained on the full QuickDraw.  Unlike the other encoders its features
    are signed (tanh) and their norm is at most sqrt(512) = 22.6 (12-18 on 200 real sketches with
    the pre-trained weights, a scratch check of 2026-11-29): a GACL norm range ``[l_a, u_a]`` should end below that.

    Attributes:
      dropout_rate: as :class:`DoodleNet`'s (before the flatten, only with ``train=True``).
    """

    dropout_rate: float = 0.1

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool = False) -> jax.Array:
        lead, feats = _features(images, self.dropout_rate, train)
        return feats.reshape(lead + (DOODLENET_FEATURES,))


# --- loading the TF.js weights ----------------------------------------------------------------


def _conv_spec(filters: int):
    return ("Conv2D", dict(filters=filters, kernel_size=[3, 3], strides=[1, 1], padding="same",
                           dilation_rate=[1, 1], activation="relu", use_bias=True, data_format="channels_last"))


_POOL_SPEC = ("MaxPooling2D", dict(pool_size=[2, 2], strides=[2, 2], padding="valid", data_format="channels_last"))

# The Keras layers DoodleNet implements, with the config values it relies on.
_KERAS_LAYERS = (
    _conv_spec(16), _conv_spec(16), _POOL_SPEC,
    _conv_spec(32), _conv_spec(32), _POOL_SPEC,
    _conv_spec(64), _conv_spec(64), _POOL_SPEC,
    ("Dropout", {}),  # its rate is read (any in [0, 1)): it changes training only
    ("Flatten", dict(data_format="channels_last")),
    ("Dense", dict(units=512, activation="tanh", use_bias=True)),
    ("Dense", dict(units=DOODLENET_CLASSES, activation="softmax", use_bias=True)),
)

# What Keras assumes for a config key that is absent (or null); keys not listed are required.
# A pooling layer's strides default to its pool size (filled in per layer below).
_KERAS_DEFAULTS = {
    "Conv2D": dict(strides=[1, 1], padding="valid", dilation_rate=[1, 1], activation="linear",
                   use_bias=True, data_format="channels_last"),
    "MaxPooling2D": dict(pool_size=[2, 2], padding="valid", data_format="channels_last"),
    "Dense": dict(activation="linear", use_bias=True),
    "Flatten": dict(data_format="channels_last"),
}
_REQUIRED = object()


def _check_architecture(layers: Sequence[dict], source: str) -> list:
    """Keras names of the weighted layers, in order; raises if the layers differ from DoodleNet's."""
    if not (isinstance(layers, (list, tuple)) and all(
            isinstance(layer, Mapping) and isinstance(layer.get("config"), Mapping) for layer in layers)):
        raise ModelFileError(f"{source}: the layer list must hold {{'class_name', 'config'}} objects")
    kinds = [layer.get("class_name") for layer in layers]
    if kinds != [kind for kind, _ in _KERAS_LAYERS]:
        raise ModelFileError(f"{source}: layers {kinds} are not DoodleNet's {[k for k, _ in _KERAS_LAYERS]}")
    first = layers[0]["config"].get("batch_input_shape")
    if first is not None and (not isinstance(first, list) or list(first[1:]) != [DOODLENET_SIZE, DOODLENET_SIZE, 1]):
        raise ModelFileError(f"{source}: input shape {first} is not [None, 28, 28, 1]")
    weighted = []
    for i, (layer, (kind, expected)) in enumerate(zip(layers, _KERAS_LAYERS)):
        config = layer["config"]
        defaults = dict(_KERAS_DEFAULTS.get(kind, {}))
        if kind == "MaxPooling2D":
            defaults["strides"] = config.get("pool_size") or defaults["pool_size"]
        for key, value in expected.items():
            absent = config.get(key) is None
            found = defaults.get(key, _REQUIRED) if absent else config[key]
            if found is _REQUIRED or found != value:
                has = "no " + key if found is _REQUIRED else f"{key}={found!r}" + (" (absent: Keras's default)" if absent else "")
                raise ModelFileError(
                    f"{source}: layer {i} ({config.get('name')}, {kind}) has {has}; DoodleNet expects {value!r}"
                )
        if kind == "Dropout":
            rate = config.get("rate")
            if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
                raise ModelFileError(f"{source}: layer {i} ({config.get('name')}, Dropout) has rate={rate!r}; "
                                     "expected a number in [0, 1)")
        if kind in ("Conv2D", "Dense"):
            if not isinstance(config.get("name"), str):
                raise ModelFileError(f"{source}: layer {i} ({kind}) has no name (its weights are found by name)")
            weighted.append(config["name"])
    return weighted


def _model_dir(root) -> pathlib.Path:
    if root is None:
        return data_path("models", "doodlenet")
    root = pathlib.Path(root)
    return root if (root / "model.json").exists() else root / "models" / "doodlenet"


def load_doodlenet(root: Optional[Union[str, os.PathLike]] = None):
    """Load the pre-trained DoodleNet from its TF.js files.

    Args:
      root: the model directory (holding ``model.json``, its shard and ``class_names.txt``),
        or a data root holding ``models/doodlenet/``; default ``data_path("models", "doodlenet")``.

    Returns:
      ``(model, variables, class_names)``: a :class:`DoodleNet`, its ``{"params": ...}``
      (float32 ``jax.Array`` leaves) for ``model.apply``, and the 345 underscored class names
      (``"The_Eiffel_Tower"``) in output order.

    Raises:
      ModelFileError: missing or corrupt files, an architecture other than DoodleNet's, any
        weight missing, unused or of the wrong shape, or a class list of the wrong length.
    """
    directory = _model_dir(root)
    tfjs = read_tfjs_layers_model(directory)
    source = str(tfjs.path)
    keras_names = _check_architecture(tfjs.layers, source)
    dropout = [layer["config"]["rate"] for layer in tfjs.layers if layer["class_name"] == "Dropout"][0]
    model = DoodleNet(dropout_rate=float(dropout))
    abstract = jax.eval_shape(model.init, jax.random.PRNGKey(0), jnp.zeros((1, DOODLENET_SIZE, DOODLENET_SIZE)))
    flax_names = _CONV_NAMES + _DENSE_NAMES
    # TF.js name -> (Flax module, parameter); Keras and Flax share kernel layouts (HWIO, [in, out]).
    mapping = {f"{k}/{p}": (f, p) for k, f in zip(keras_names, flax_names) for p in ("kernel", "bias")}
    shapes = {tf: abstract["params"][f][p].shape for tf, (f, p) in mapping.items()}
    expect_shapes(tfjs.weights, shapes, source=source)
    params = {f: {} for f in flax_names}
    for tf_name, (f, p) in mapping.items():
        params[f][p] = jnp.asarray(tfjs.weights[tf_name], jnp.float32)

    names_path = directory / "class_names.txt"
    try:
        class_names = tuple(line.strip() for line in names_path.read_text(encoding="utf-8").splitlines() if line.strip())
    except FileNotFoundError:
        raise ModelFileError(f"{names_path}: class name file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ModelFileError(f"{names_path}: cannot read the class names ({type(e).__name__}: {e})") from None
    if len(class_names) != DOODLENET_CLASSES or len(set(class_names)) != len(class_names):
        raise ModelFileError(
            f"{names_path}: expected {DOODLENET_CLASSES} distinct class names, got {len(class_names)} "
            f"({len(set(class_names))} distinct)"
        )
    return model, {"params": params}, class_names


def doodlenet_encoder_params(root: Optional[Union[str, os.PathLike]] = None) -> dict:
    """The pre-trained ``params`` of :class:`DoodleNetEncoder` (every layer of
    :func:`load_doodlenet`'s but the 345-way ``logits``); ``root`` as there."""
    _, variables, _ = load_doodlenet(root)
    return {k: v for k, v in variables["params"].items() if k != _DENSE_NAMES[1]}


def doodlenet_head_params(categories: Sequence[str], root: Optional[Union[str, os.PathLike]] = None) -> dict:
    """DoodleNet's 345-way layer cut to ``categories`` (QuickDraw words, in the order wanted):
    ``{"kernel": float32[512, C], "bias": float32[C]}`` — a classifier head over
    :class:`DoodleNetEncoder` that starts as the pre-trained network restricted to those
    classes.  Raises ``ValueError`` naming the categories DoodleNet has no class for."""
    _, variables, class_names = load_doodlenet(root)
    rows = jnp.asarray(doodlenet_class_rows(class_names, categories))
    layer = variables["params"][_DENSE_NAMES[1]]
    return {"kernel": layer["kernel"][:, rows], "bias": layer["bias"][rows]}


def doodlenet_class_rows(class_names: Sequence[str], categories: Sequence[str]) -> list[int]:
    """DoodleNet's output index of each QuickDraw word in ``categories`` (``class_names``: as
    :func:`load_doodlenet` returns them).  Raises ``ValueError`` naming the unknown ones."""
    index = {c: i for i, c in enumerate(class_names)}
    unknown = [c for c in categories if doodlenet_class_name(c) not in index]
    if unknown:
        raise ValueError(f"DoodleNet has no class for {unknown} (its classes: the 345 QuickDraw categories)")
    return [index[doodlenet_class_name(c)] for c in categories]


def doodlenet_class_name(word: str) -> str:
    """DoodleNet's name of a QuickDraw category: ``"The Eiffel Tower" -> "The_Eiffel_Tower"``."""
    return word.strip().replace(" ", "_")


def doodlenet_classify(variables, images: jax.Array) -> jax.Array:
    """Class probabilities ``float32[..., 345]`` (softmax of the logits, as the Keras model).

    ``images`` as for :meth:`DoodleNet.__call__` (values checked when concrete); jitted.
    """
    _check_range(images)
    return _classify(variables, images)


@jax.jit
def _classify(variables, images: jax.Array) -> jax.Array:
    return jax.nn.softmax(DoodleNet().apply(variables, images), axis=-1)


# --- input recipes ----------------------------------------------------------------------------


def doodlenet_recipe(
    canvas: int = 256, width: Optional[float] = None, padding: float = 0.08, slope: float = 5.0,
    out_size: int = DOODLENET_SIZE,
) -> RasterRecipe:
    """DoodleNet's input as a :class:`~sketchjax.render.RasterRecipe` (for attribution).

    ``width`` defaults to 13 px per 256 px of canvas, rounded (13 at 256, 7 at 128).  The
    default is :func:`doodlenet_input`'s recipe (69.8% top-1); ``canvas=128`` (7 px) draws
    about 8x faster at 68.6%.  The recipe's :meth:`~RasterRecipe.distance` form uses
    the same width (13 px at 112 px: 69.8%; :func:`doodlenet_input_differentiable` uses 14
    px at 56 px: 69.9%).
    """
    if width is None:
        width = max(1, int(13 * canvas / 256 + 0.5))
    return RasterRecipe(out_size=out_size, canvas=canvas, width=width, padding=padding, slope=slope)


@checked("canvas", "width", "out_size", fits=True)
@partial(jax.jit, static_argnames=("canvas", "width", "padding", "out_size"))
def doodlenet_input(
    xy: jax.Array,
    pen: jax.Array,
    valid: jax.Array,
    *,
    canvas: int = 256,
    width: int = 13,
    padding: float = 0.08,
    out_size: int = DOODLENET_SIZE,
) -> jax.Array:
    """DoodleNet's input raster of a (batch of) sketch(es): Bresenham at ``canvas``, area-downsampled.

    Fits the drawing to a ``canvas`` px square with a ``padding`` margin
    (:func:`sketchjax.normalize.fit_to_canvas`), draws it with a ``width`` px Bresenham line
    (:func:`sketchjax.render.raster`) and area-averages to ``out_size`` (exact, also for
    256 -> 28).  Not differentiable in ``xy``; see :func:`doodlenet_input_differentiable`.

    Args:
      xy: ``float32[..., T, 2]`` coordinates in any units (only their shape matters after fitting).
      pen, valid: ``[..., T]`` pen states and padding mask (see :class:`sketchjax.Sketch`).
      canvas: side of the drawing canvas in pixels (static).
      width: line width in canvas pixels (static).  13 at 256 gave the best accuracy (see the
        module docstring); accuracy drops steeply below 12 and slowly above 14.
      padding: margin on each side as a fraction of the canvas side (static); 0.08 beat
        0.04 and 0.12 by 1-2 points.
      out_size: output side in pixels (static; 28 for DoodleNet).

    Returns:
      ``float32[..., out_size, out_size]`` ink coverage in ``[0, 1]`` (ink = 1 on 0).
    """
    return RasterRecipe(out_size, canvas, width, padding).raster(xy, pen, valid)


@checked("canvas", "resolution", "out_size", fits=True)
@partial(jax.jit, static_argnames=("canvas", "width", "padding", "resolution", "slope", "out_size"))
def doodlenet_input_differentiable(
    xy: jax.Array,
    pen: jax.Array,
    valid: jax.Array,
    *,
    canvas: int = 256,
    width: float = 14.0,
    padding: float = 0.08,
    resolution: int = 56,
    slope: float = 5.0,
    out_size: int = DOODLENET_SIZE,
) -> jax.Array:
    """:func:`doodlenet_input` with the differentiable distance-field raster (Eq. 5, P-SLA).

    The drawing is fitted to a ``resolution`` px canvas with the same ``padding``, drawn with
    :func:`sketchjax.render.distance_raster` and a sigmoid falloff
    (:meth:`SigmoidFalloff.for_width`) whose 0.5 level is ``width * resolution / canvas``
    pixels wide — the same line, relative to the drawing, as ``width`` px at ``canvas`` —
    and area-averaged to ``out_size``.  Reverse-mode differentiable in ``xy`` and ``pen``;
    the gradient includes the fit (moving an extreme point rescales the whole drawing).

    Args:
      xy, pen, valid: as for :func:`doodlenet_input`.
      canvas: the canvas side ``width`` is measured on, in pixels (static).
      width: line width in ``canvas`` pixels (static); 14 at 256 gave the best accuracy.
      padding: margin on each side as a fraction of the canvas side (static).
      resolution: side of the distance-field raster in pixels (static); cost grows with its
        square.  56 and 112 classify equally well (69.9% / 69.5% top-1); 28 loses ~2 points.
      slope: falloff steepness per ``resolution`` pixel (static); the edge is about
        ``4 / slope`` pixels wide.  Softer edges add ink around the line: slope 1 at 112 px
        lost ~25 points on a subset.
      out_size: output side in pixels (static).

    Returns:
      ``float32[..., out_size, out_size]`` in ``[0, 1]`` (ink = 1 on 0).
    """
    recipe = dataclasses.replace(doodlenet_recipe(resolution, width * resolution / canvas, padding, slope, out_size),
                                 differentiate_fit=True)
    return recipe.distance(xy, pen, valid)
