"""Point-cloud Transformer sketch encoder (GACL's third backbone family, G §6).

Each valid point is a token (``Dense`` of :func:`~sketchjax.models.layers.point_features`
plus a learned position embedding in drawing order), preceded by a learned CLS token;
pre-LayerNorm encoder blocks with a key-padding mask; the sketch feature is
``CLS + mean(valid point tokens)`` (the sum of the two summaries, same width), followed by
a ReLU MLP head so features are non-negative.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from sketchjax.models.layers import ReluMLP, check_batch_shape, check_settings, point_features
from sketchjax.sketch import Sketch

__all__ = ["TransformerBlock", "PointTransformer"]


class TransformerBlock(nn.Module):
    """Pre-LN block: ``x + MHA(LN(x))`` then ``x + MLP(LN(x))``.

    ``x: float32[B, N, dim] -> float32[B, N, dim]``; ``mask: bool[B, 1, N, N]`` (True = attend).
    """

    dim: int
    heads: int
    mlp_ratio: int = 4
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x: jax.Array, mask: jax.Array, *, train: bool = False) -> jax.Array:
        y = nn.LayerNorm(name="ln_attn")(x)
        y = nn.MultiHeadDotProductAttention(
            num_heads=self.heads, dropout_rate=self.dropout, deterministic=not train, name="attn"
        )(y, y, mask=mask)
        x = x + nn.Dropout(self.dropout, deterministic=not train)(y)
        y = nn.LayerNorm(name="ln_mlp")(x)
        y = nn.Dense(self.mlp_ratio * self.dim, name="mlp_in")(y)
        y = nn.Dense(self.dim, name="mlp_out")(nn.gelu(y))
        return x + nn.Dropout(self.dropout, deterministic=not train)(y)


class PointTransformer(nn.Module):
    """``Sketch[B, T] -> float32[B, head[-1]]`` (non-negative).

    Attributes:
      dim, depth, heads, mlp_ratio: encoder width, number of blocks, attention heads, MLP
        expansion.
      max_len: number of learned position embeddings; a batch padded to more points raises
        ``ValueError`` (the padded length ``T``, whatever the sketches' own lengths).
      head: ReLU MLP widths on ``CLS + mean(point tokens)``.
      head_activation: the head's last activation, ``"relu"`` or ``"softplus"``
        (:class:`~sketchjax.models.layers.ReluMLP`).
      dropout: dropout rate (``train=True`` needs a ``'dropout'`` rng).
    """

    dim: int = 256
    depth: int = 4
    heads: int = 8
    mlp_ratio: int = 4
    max_len: int = 256
    head: Sequence[int] = (512,)
    dropout: float = 0.0
    head_activation: str = "relu"

    @nn.compact
    def __call__(self, sketch: Sketch, *, train: bool = False) -> jax.Array:
        check_settings("PointTransformer", counts={k: getattr(self, k) for k in ("dim", "depth", "heads", "mlp_ratio",
                                                                                 "max_len")},
                       dropout={"dropout": self.dropout})  # the head's widths: ReluMLP checks them
        if self.dim % self.heads:  # Flax's own assertion named neither the model nor the setting
            raise ValueError(f"PointTransformer: dim={self.dim} must be divisible by heads={self.heads}")
        check_batch_shape(sketch, "PointTransformer")
        feats = point_features(sketch)
        b, t, _ = feats.shape
        if t > self.max_len:  # the padded length: under jit the sketches' own lengths are not known
            raise ValueError(f"PointTransformer: the batch is padded to {t} points, more than max_len={self.max_len} "
                             "position embeddings (pad to at most max_len; shorten longer sketches first)")
        pos = self.param("pos_embed", nn.initializers.normal(0.02), (self.max_len, self.dim))
        cls = self.param("cls", nn.initializers.normal(0.02), (1, 1, self.dim))
        x = nn.Dense(self.dim, name="embed")(feats) + pos[None, :t]
        x = jnp.concatenate([jnp.broadcast_to(cls, (b, 1, self.dim)), x], axis=1)
        valid = jnp.concatenate([jnp.ones((b, 1), bool), jnp.asarray(sketch.valid, bool)], axis=1)
        mask = nn.make_attention_mask(valid, valid)
        for i in range(self.depth):
            x = TransformerBlock(self.dim, self.heads, self.mlp_ratio, self.dropout, name=f"block_{i}")(
                x, mask, train=train
            )
        x = nn.LayerNorm(name="ln_out")(x)
        w = valid[:, 1:, None].astype(x.dtype)
        mean = jnp.sum(x[:, 1:] * w, axis=1) / jnp.maximum(jnp.sum(w, axis=1), 1.0)
        return ReluMLP(tuple(self.head), dropout=self.dropout, activation=self.head_activation, name="head")(
            x[:, 0] + mean, train=train)
