"""Building blocks shared by the sketch encoders: point features, the ReLU head, classifiers.

Every encoder in :mod:`sketchjax.models` maps its input to a **non-negative** feature
``float32[B, D]`` (a final ReLU or softplus, as GACL's quality score is the feature norm, SPEC §5);
:class:`Classifier` puts a linear softmax head on any of them.
"""
from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from sketchjax._checks import check_positive_int, is_number
from sketchjax._numerics import compute_dtype
from sketchjax.sketch import Sketch, SketchError

__all__ = ["check_batch_shape", "point_features", "ReluMLP", "HEAD_ACTIVATIONS", "Classifier", "NUM_POINT_FEATURES"]

#: Width of :func:`point_features`: ``(x, y, pen_down, pen_up)``.
NUM_POINT_FEATURES = 4


def check_batch_shape(sketch: Sketch, who: str, prefix: bool = False) -> None:
    """Raises ``ValueError`` naming ``who`` unless the sketch is a batch: ``xy [B, T, 2]`` with
    ``pen`` and ``valid`` ``[B, T]`` (shapes are static, so this also holds under ``jit``), and,
    with ``prefix`` and a concrete ``valid`` (an eager ``apply``), unless every row of it is a
    prefix mask (padding only at the end: the BiLSTM reads a sketch's length as its number of
    valid points, so a gap would silently drop its last points).  An all-padding row is
    allowed (treated as length 1)."""
    xy, pen, valid = (jnp.shape(a) for a in (sketch.xy, sketch.pen, sketch.valid))
    if len(xy) != 3 or xy[-1] != 2 or pen != xy[:2] or valid != xy[:2]:
        raise ValueError(
            f"{who}: expects a batch of sketches, xy [B, T, 2] and pen/valid [B, T]; got xy {xy}, "
            f"pen {pen}, valid {valid} (add a leading batch axis to a single sketch)"
        )
    if prefix and not isinstance(sketch.valid, jax.core.Tracer):
        v = np.asarray(sketch.valid).astype(bool)
        gap = (v[:, 1:] & ~v[:, :-1]).any(axis=-1)
        if gap.any():
            raise SketchError(f"{who}: sketch at batch index {int(np.argmax(gap))}: valid must be a prefix mask "
                              "(padding only at the end)")


def point_features(sketch: Sketch) -> jax.Array:
    """Per-point input features of the sequence encoders: ``float32[..., T, 4]`` (see below).

    ``(x, y, pen_down, pen_up)`` with ``x, y`` as given (the GACL recipe feeds absolute
    ``[0, 1]`` coordinates, see :func:`sketchjax.normalize.to_unit`), ``pen_down = pen``
    (the segment to the next point is drawn) and ``pen_up = 1 - pen`` on valid points —
    stroke-5's ``q1, q2``.  Padding points are all zeros.  float64 points (under
    ``jax_enable_x64``) stay float64; anything narrower becomes float32.
    """
    dtype = compute_dtype(sketch.xy)
    valid = jnp.asarray(sketch.valid, bool)[..., None]
    pen = jnp.asarray(sketch.pen, dtype)[..., None]
    xy = jnp.asarray(sketch.xy, dtype)
    # where, not a product: NaN/inf left in padding must not leak (0 * NaN is NaN).
    return jnp.where(valid, jnp.concatenate([xy, pen, 1.0 - pen], axis=-1), 0.0)


HEAD_ACTIVATIONS = {"relu": nn.relu, "softplus": jax.nn.softplus}


def check_settings(name: str, *, counts: dict, dropout: dict = None, widths: dict = None) -> None:
    """A model's architecture settings, checked when it is called (initialised or applied):
    ``counts`` (e.g. ``num_layers``) whole numbers >= 1, ``dropout`` rates in ``[0, 1)`` and
    ``widths`` non-empty sequences of whole numbers >= 1 — a ValueError naming ``name`` and the
    setting.  An audit found ``num_layers=0`` training a dense layer on the last point as a
    "BiLSTM", ``dropout=1.0`` training at chance and ``dim=30, heads=4`` failing inside Flax."""
    for param, value in counts.items():
        check_positive_int(name, param, value)
    for param, rate in (dropout or {}).items():
        if not (is_number(rate) and 0.0 <= rate < 1.0):
            raise ValueError(f"{name}: {param} must be a rate in [0, 1), got {rate!r}")
    for param, ws in (widths or {}).items():
        if isinstance(ws, (str, bytes)) or not isinstance(ws, Sequence) or not len(ws):
            raise ValueError(f"{name}: {param} must be a non-empty sequence of layer widths, got {ws!r}")
        for w in ws:
            check_positive_int(name, f"{param} entry", w)


class ReluMLP(nn.Module):
    """Dense → ReLU stack (``widths``), optional dropout between layers.

    ``float32[..., D_in] -> float32[..., widths[-1]]``, every output ``>= 0``.

    ``activation`` of the **last** layer: ``"relu"`` (default) or ``"softplus"`` — also
    non-negative, but in float32 0 (with a zero gradient) only for pre-activations below about
    -88, so a unit cannot die the way a ReLU unit does.  Measured (RESULTS.md §4.4): under a
    cosine (GACL) head the BiLSTM's last ReLU units die (no test sketch activates them) and
    training crawls; with softplus the same runs match softmax.  Under a linear softmax head
    it is the other way round: softplus stalls, ReLU trains.  Hidden layers are always ReLU;
    parameter names do not depend on the choice.
    """

    widths: Sequence[int] = (512,)
    dropout: float = 0.0
    activation: str = "relu"

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        if self.activation not in HEAD_ACTIVATIONS:
            raise ValueError(f"unknown head activation {self.activation!r}; use one of {sorted(HEAD_ACTIVATIONS)}")
        if not len(self.widths):  # the input would come back unchanged: signed features
            raise ValueError(f"{self.name or 'ReluMLP'}: widths must name at least one layer (the features "
                             "must be non-negative, as GACL's norm-based quality needs), got ()")
        check_settings(self.name or "ReluMLP", counts={}, dropout={"dropout": self.dropout},
                       widths={"widths": self.widths})
        last = len(self.widths) - 1
        for i, w in enumerate(self.widths):
            if i > 0 and self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
            act = HEAD_ACTIVATIONS[self.activation] if i == last else nn.relu
            x = act(nn.Dense(w, name=f"dense_{i}")(x))
        return x


class Classifier(nn.Module):
    """A softmax classifier: ``logits = W f(x) + b`` on top of any encoder.

    ``encoder`` is a module called as ``encoder(inputs, train=train)`` returning features
    ``[B, D]``; ``apply(variables, inputs)`` returns logits ``float32[B, num_classes]``.
    With ``return_features=True`` it returns ``(logits, features)``.
    """

    encoder: nn.Module
    num_classes: int
    use_bias: bool = True

    @nn.compact
    def __call__(self, inputs: Any, *, train: bool = False, return_features: bool = False):
        feats = self.encoder(inputs, train=train)
        logits = nn.Dense(self.num_classes, use_bias=self.use_bias, name="head")(feats)
        return (logits, feats) if return_features else logits
