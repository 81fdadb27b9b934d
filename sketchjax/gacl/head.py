"""Flax modules around the GACL functions: a cosine class head and a GACL classifier.

``GACLClassifier(encoder, num_classes)`` is used as ``apply(variables, inputs) -> (cos, norm)``
(class cosines ``[B, C]`` and feature norms ``[B]``); :func:`quality` turns that into
``(q, cos_theta_pred, pred)`` and :func:`sketchjax.gacl.gacl_loss` into the training loss, so
the same module trains with GACL or — with ``cfg.s * cos`` as logits — as the normalised
softmax baseline of the same backbone.
"""
from __future__ import annotations

from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp

from sketchjax._checks import check_positive_int
from sketchjax.gacl.core import GACLConfig, class_cosines, quality_scores

__all__ = ["CosineHead", "GACLClassifier", "quality"]


class CosineHead(nn.Module):
    """Class weights ``W [D, C]``; ``__call__(features) -> (cos [B, C], norm [B])``."""

    num_classes: int

    @nn.compact
    def __call__(self, features: jax.Array) -> tuple[jax.Array, jax.Array]:
        check_positive_int("CosineHead", "num_classes", self.num_classes)  # 0 was a ZeroDivisionError in the init
        # float32 like every Flax layer's parameters (param_dtype), also under jax_enable_x64:
        # a float64 kernel there made every saved GACL run fail to restore
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (features.shape[-1], self.num_classes),
                            jnp.float32)
        return class_cosines(features, kernel)


class GACLClassifier(nn.Module):
    """``encoder`` (features, non-negative in the reference setup) followed by :class:`CosineHead`.

    Attributes:
      encoder: any Flax module ``encoder(inputs, train=...) -> features [B, D]`` (the BiLSTM,
        Transformer and CNN encoders of :mod:`sketchjax.models`).
      num_classes: ``C``.
    """

    encoder: nn.Module
    num_classes: int

    @nn.compact
    def __call__(self, inputs: Any, *, train: bool = False) -> tuple[jax.Array, jax.Array]:
        return CosineHead(self.num_classes, name="head")(self.encoder(inputs, train=train))


def quality(apply_fn: Callable[..., tuple[jax.Array, jax.Array]], variables, inputs, cfg: GACLConfig):
    """``(q, cos_theta_pred, pred)`` of a batch: ``apply_fn(variables, inputs) -> (cos, norm)``."""
    cos, norm = apply_fn(variables, inputs)
    return quality_scores(cos, norm, cfg)
