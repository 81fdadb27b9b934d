"""Raster CNN sketch encoders trained here: a Sketch-A-Net-style net and a ResNet-18.

Inputs are rasters ``float32[B, H, W]`` or ``[B, H, W, C]`` with ink = 1 on a 0 background
(:func:`sketchjax.render.raster`, optionally thickened and area-downsampled).  Outputs are
non-negative features ``float32[B, D]`` (post-ReLU); wrap in
:class:`~sketchjax.models.layers.Classifier` for logits.  Models with batch norm keep
``batch_stats``: ``apply(variables, x, train=True, mutable=['batch_stats'])`` when training.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from sketchjax.models.layers import check_settings

__all__ = ["SketchANet", "BasicBlock", "ResNet18", "as_nhwc"]


def as_nhwc(images: jax.Array) -> jax.Array:
    """``[B, H, W] -> [B, H, W, 1]``; ``[B, H, W, C]`` unchanged; anything else is an error,
    also a 3-D array whose last axis is 1, 3 or 4 (an unbatched ``[H, W, C]`` image, read as
    ``H`` images ``W`` pixels wide by ``C`` high, gave ``H`` feature rows)."""
    images = jnp.asarray(images, jnp.float32)
    if images.ndim == 3:
        if images.shape[-1] in (1, 3, 4):
            raise ValueError(f"images of shape {images.shape}: an unbatched [H, W, C] image? give [B, H, W, C] "
                             "(image[None]) or [B, H, W]")
        return images[..., None]
    if images.ndim != 4:
        raise ValueError(f"expected images [B, H, W] or [B, H, W, C], got shape {images.shape}")
    return images


class SketchANet(nn.Module):
    """Sketch-A-Net (Yu et al., 2015) layout: ``[B, H, W(, C)] -> float32[B, 512]``.

    L1 conv 15×15 stride 3 (64) → max-pool 3/2 → L2 conv 5×5 (128) → pool → L3–L5 conv 3×3
    (256, same padding) → pool → L6 conv 7×7 (512, valid) → dropout → L7 1×1 (512).  At the
    original 225² input L6 leaves a 1×1 map, exactly the paper's net; at smaller inputs L6's
    kernel shrinks to the map (at most 7) and the remaining map is averaged, so any input
    of at least 46² works (smaller: ``ValueError``).  ``widths`` scales the channel counts; ``batch_norm`` (off in the
    original) adds BN after each conv for faster training from scratch.  Pools round up
    (Caffe), which equals valid pooling at 225².
    """

    widths: Sequence[int] = (64, 128, 256, 512)
    dropout: float = 0.5
    batch_norm: bool = False

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool = False) -> jax.Array:
        x = as_nhwc(images)
        if min(x.shape[1], x.shape[2]) < 46:  # conv1 15/3 -> pool -> conv2 5x5 needs >= 5 px left
            raise ValueError(f"SketchANet needs inputs of at least 46 x 46 pixels, got images of shape {images.shape}")
        check_settings("SketchANet", counts={}, dropout={"dropout": self.dropout}, widths={"widths": self.widths})
        if len(self.widths) != 4:  # unpacking failed with "not enough values to unpack"
            raise ValueError(f"SketchANet: widths must give 4 channel counts (L1, L2, L3-L5, L6-L7), got "
                             f"{tuple(self.widths)}")
        w1, w2, w3, w6 = self.widths

        def conv(x, feats, k, stride=1, padding="VALID", name=None):
            x = nn.Conv(feats, (k, k), strides=stride, padding=padding, use_bias=not self.batch_norm, name=name)(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, name=f"{name}_bn")(x)
            return nn.relu(x)

        def pool(x):  # 3x3/2 max-pool with Caffe's ceil rounding (the original framework)
            pads = []
            for n in x.shape[1:3]:
                out = max(-(-(n - 3) // 2), 0) + 1
                pads.append((0, (out - 1) * 2 + 3 - n))
            return nn.max_pool(x, (3, 3), strides=(2, 2), padding=pads)

        x = pool(conv(x, w1, 15, stride=3, name="conv1"))
        x = pool(conv(x, w2, 5, name="conv2"))
        for i in (3, 4, 5):
            x = conv(x, w3, 3, padding="SAME", name=f"conv{i}")
        x = pool(x)
        k6 = min(7, x.shape[1], x.shape[2])
        x = conv(x, w6, k6, name="conv6")
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
        x = conv(x, w6, 1, name="conv7")
        return jnp.mean(x, axis=(1, 2))


class BasicBlock(nn.Module):
    """ResNet basic block: two 3×3 conv-BN, identity or 1×1 projection shortcut, ReLU.

    ``float32[B, H, W, C] -> float32[B, ceil(H / stride), ceil(W / stride), features]``.
    """

    features: int
    stride: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, *, train: bool = False) -> jax.Array:
        norm = lambda name: nn.BatchNorm(use_running_average=not train, name=name)  # noqa: E731
        y = nn.Conv(self.features, (3, 3), self.stride, padding="SAME", use_bias=False, name="conv1")(x)
        y = nn.relu(norm("bn1")(y))
        y = nn.Conv(self.features, (3, 3), padding="SAME", use_bias=False, name="conv2")(y)
        y = norm("bn2")(y)
        if self.stride != 1 or x.shape[-1] != self.features:
            x = nn.Conv(self.features, (1, 1), self.stride, use_bias=False, name="proj")(x)
            x = norm("proj_bn")(x)
        return nn.relu(x + y)


class ResNet18(nn.Module):
    """ResNet-18: ``[B, H, W(, C)] -> float32[B, widths[-1]]`` (global average of the last stage).

    ``small_input=True`` (default, for 28–128 px sketches) uses a 3×3 stride-1 stem without
    max-pool (the CIFAR variant); ``False`` the ImageNet 7×7/2 stem + 3×3/2 max-pool.
    ``widths`` sets the four stages (two blocks each); ``(64, 128, 256, 512)`` is the
    standard net, smaller widths give the small variants trained on this CPU.
    """

    widths: Sequence[int] = (64, 128, 256, 512)
    small_input: bool = True

    @nn.compact
    def __call__(self, images: jax.Array, *, train: bool = False) -> jax.Array:
        check_settings("ResNet18", counts={}, widths={"widths": self.widths})
        if len(self.widths) != 4:  # (4, 4, 4) built a 3-stage net
            raise ValueError(f"ResNet18: widths must give the 4 stages' widths, got {tuple(self.widths)}")
        x = as_nhwc(images)
        if self.small_input:
            x = nn.Conv(self.widths[0], (3, 3), padding="SAME", use_bias=False, name="stem")(x)
        else:
            x = nn.Conv(self.widths[0], (7, 7), 2, padding=[(3, 3), (3, 3)], use_bias=False, name="stem")(x)
        x = nn.relu(nn.BatchNorm(use_running_average=not train, name="stem_bn")(x))
        if not self.small_input:
            x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=[(1, 1), (1, 1)])
        for s, w in enumerate(self.widths):
            for blk in range(2):
                stride = 2 if (s > 0 and blk == 0) else 1
                x = BasicBlock(w, stride, name=f"stage{s + 1}_block{blk + 1}")(x, train=train)
        return jnp.mean(x, axis=(1, 2))
