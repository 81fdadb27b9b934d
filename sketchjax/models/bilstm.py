"""The length-aware bidirectional LSTM stroke encoder of GACL (SPEC §5, G §4 training recipe).

Input: a padded :class:`~sketchjax.sketch.Sketch` batch with absolute coordinates in
``[0, 1]`` (:func:`sketchjax.normalize.to_unit`) and pen states; the paper uses up to 100
points, 2 layers of 1024 units.  Output: non-negative features ``float32[B, D]`` from a ReLU
MLP head on ``[h_fwd(last valid point), h_bwd(first point)]``.

**Length-aware**: the backward direction of every layer starts at each sketch's *last valid
point*, not at the end of the padding, so padding never leaks into the features (the
forward direction never sees padding before a valid point).  Both directions run in one
``lax.scan`` over time with a per-direction batched matmul (half the sequential steps of
running them one after the other), and the input projections of all time steps are one
matmul before the scan.
"""
from __future__ import annotations

from functools import partial
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from sketchjax.models.layers import ReluMLP, point_features, sketch_lengths
from sketchjax.sketch import Sketch

__all__ = ["BiLSTMLayer", "BiLSTMEncoder", "reverse_within_length", "lstm_scan"]


def reverse_within_length(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Reverses ``x[b, :lengths[b]]`` along axis 1 per example; padding stays in place.

    ``x: [B, T, ...]``, ``lengths: int[B]``.  An involution: applying it twice is the identity.
    """
    t = jnp.arange(x.shape[1])
    n = lengths[:, None]
    idx = jnp.where(t[None, :] < n, n - 1 - t[None, :], t[None, :])
    idx = idx.reshape(idx.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, idx, axis=1)


@partial(jax.custom_vjp, nondiff_argnums=(2,))
def lstm_scan(proj: jax.Array, wh: jax.Array, unroll: int = 1) -> jax.Array:
    """Runs ``D`` independent LSTMs over time from zero state: ``proj [T, D, B, 4H] -> h [T, D, B, H]``.

    ``proj`` holds the input pre-activations ``x_t W + b`` of every step (gates ``i, f, g,
    o``), ``wh: [D, H, 4H]`` the recurrent weights.  The backward pass (custom VJP) runs one
    reverse scan for the pre-activation gradients only and forms ``d wh`` afterwards as a
    single matmul over all steps, instead of accumulating it step by step.
    """
    return _lstm_forward(proj, wh, unroll)[0]


def _lstm_forward(proj, wh, unroll):
    def step(carry, p):
        h, c = carry
        z = p + jnp.einsum("dbh,dhk->dbk", h, wh)
        i, f, g, o = jnp.split(z, 4, axis=-1)
        i, f, g, o = jax.nn.sigmoid(i), jax.nn.sigmoid(f), jnp.tanh(g), jax.nn.sigmoid(o)
        c = f * c + i * g
        h = o * jnp.tanh(c)
        return (h, c), (h, c, jnp.concatenate([i, f, g, o], axis=-1))

    zeros = jnp.zeros(proj.shape[1:-1] + (wh.shape[1],), proj.dtype)
    _, (hs, cs, acts) = jax.lax.scan(step, (zeros, zeros), proj, unroll=unroll)
    return hs, (hs, cs, acts)


def _lstm_scan_fwd(proj, wh, unroll):
    hs, res = _lstm_forward(proj, wh, unroll)
    return hs, (res, wh)


def _lstm_scan_bwd(unroll, saved, dhs):
    (hs, cs, acts), wh = saved
    c_prev = jnp.concatenate([jnp.zeros_like(cs[:1]), cs[:-1]], axis=0)

    def step(carry, inputs):
        dh_next, dc_next = carry
        dh_out, c, cp, a = inputs
        i, f, g, o = jnp.split(a, 4, axis=-1)
        dh = dh_out + dh_next
        tc = jnp.tanh(c)
        dc = dc_next + dh * o * (1.0 - tc * tc)
        dz = jnp.concatenate(
            [dc * g * i * (1.0 - i), dc * cp * f * (1.0 - f), dc * i * (1.0 - g * g), dh * tc * o * (1.0 - o)],
            axis=-1,
        )
        return (jnp.einsum("dbk,dhk->dbh", dz, wh), dc * f), dz

    zeros = jnp.zeros_like(hs[0])
    _, dz = jax.lax.scan(step, (zeros, zeros), (dhs, cs, c_prev, acts), reverse=True, unroll=unroll)
    h_prev = jnp.concatenate([jnp.zeros_like(hs[:1]), hs[:-1]], axis=0)
    return dz, jnp.einsum("tdbh,tdbk->dhk", h_prev, dz)


lstm_scan.defvjp(_lstm_scan_fwd, _lstm_scan_bwd)


def _forget_bias_init(forget_bias: float):
    def init(key, shape, dtype=jnp.float32):
        del key
        hidden = shape[-1] // 4
        return jnp.zeros(shape, dtype).at[..., hidden : 2 * hidden].set(forget_bias)

    return init


def _stacked(initializer, n: int):
    """An initializer for ``[n, ...]`` parameters drawing each slice independently."""

    def init(key, shape, dtype=jnp.float32):
        return jnp.stack([initializer(k, shape[1:], dtype) for k in jax.random.split(key, n)])

    return init


class BiLSTMLayer(nn.Module):
    """One bidirectional LSTM layer over a padded batch: ``[B, T, F] -> [B, T, 2H]``.

    Output position ``t`` holds ``[h_fwd(t), h_bwd(t)]`` where the backward direction read
    points ``lengths-1, ..., t``; padding positions are zero.  Parameters: ``wi [2, F, 4H]``,
    ``wh [2, H, 4H]``, ``b [2, 4H]`` (direction 0 = forward, gates ``i, f, g, o``).
    """

    hidden: int
    forget_bias: float = 1.0
    unroll: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> jax.Array:
        b, t, f = x.shape
        h = self.hidden
        wi = self.param("wi", _stacked(nn.initializers.xavier_uniform(), 2), (2, f, 4 * h))
        wh = self.param("wh", _stacked(nn.initializers.orthogonal(), 2), (2, h, 4 * h))
        bias = self.param("b", _forget_bias_init(self.forget_bias), (2, 4 * h))
        xs = jnp.stack([x, reverse_within_length(x, lengths)])  # [2, B, T, F]
        proj = jnp.einsum("dbtf,dfk->tdbk", xs, wi) + bias[None, :, None, :]
        hs = lstm_scan(proj, wh, self.unroll)  # [T, 2, B, H]
        fwd = jnp.swapaxes(hs[:, 0], 0, 1)
        bwd = reverse_within_length(jnp.swapaxes(hs[:, 1], 0, 1), lengths)
        mask = (jnp.arange(t)[None, :] < lengths[:, None])[..., None]
        return jnp.concatenate([fwd, bwd], axis=-1) * mask


class BiLSTMEncoder(nn.Module):
    """Length-aware stacked BiLSTM + ReLU MLP head: ``Sketch[B, T] -> float32[B, head[-1]]``.

    Attributes:
      hidden: units per direction (paper: 1024).
      num_layers: stacked bidirectional layers (paper: 2).
      head: widths of the ReLU MLP on ``[h_fwd(last), h_bwd(first)]``; features are ``>= 0``.
      dropout: dropout between layers and in the head (active with ``train=True``; needs a
        ``'dropout'`` rng).
      unroll: ``lax.scan`` unroll factor (speed only).

    Input coordinates should be in ``[0, 1]`` (the recipe); a sketch with no valid point is
    treated as length 1.
    """

    hidden: int = 1024
    num_layers: int = 2
    head: Sequence[int] = (512,)
    dropout: float = 0.0
    unroll: int = 1

    @nn.compact
    def __call__(self, sketch: Sketch, *, train: bool = False) -> jax.Array:
        x = point_features(sketch)
        lengths = jnp.maximum(sketch_lengths(sketch.valid), 1)
        for i in range(self.num_layers):
            if i > 0 and self.dropout > 0:
                x = nn.Dropout(self.dropout, deterministic=not train)(x)
            x = BiLSTMLayer(self.hidden, unroll=self.unroll, name=f"lstm_{i}")(x, lengths)
        last = jnp.take_along_axis(x, (lengths - 1)[:, None, None], axis=1)[:, 0]
        feat = jnp.concatenate([last[:, : self.hidden], x[:, 0, self.hidden :]], axis=-1)
        if self.dropout > 0:
            feat = nn.Dropout(self.dropout, deterministic=not train)(feat)
        return ReluMLP(tuple(self.head), dropout=self.dropout, name="head")(feat, train=train)
