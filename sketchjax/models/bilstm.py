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

**Packing** (``BiLSTMEncoder(pack=...)``, speed only): real sketches fill about half of a
``T = 100`` pad (QuickDraw: 45 points on average), so most of a padded batch's recurrent work
is spent on padding.  With ``pack = r`` the batch's sketches are laid end to end into
``ceil(r * B)`` rows of ``T`` slots (first-fit decreasing, inside the jitted function), the
LSTM state is reset where a sketch starts, and every layer runs on the packed rows; a batch
that does not fit runs unpacked (one ``lax.cond``), so the features never depend on the
packing (up to float rounding; dropout masks are drawn in the padded shape) — only the cost
does, roughly in proportion to ``r`` (CPU, 2 x 256, B = 64: 0.74x the padded step at
``r = 0.6``, RESULTS.md §2).  Under ``vmap`` the ``lax.cond`` becomes a select and both paths
run: leave ``pack`` unset there.  Both paths are compiled (about twice the compile time), and
with the batch split over several devices the packing gathers points across the split.
:class:`RowLayout` describes where each sketch's points sit; :func:`padded_layout` is the
plain one-sketch-per-row layout and :func:`packed_layout` the packed one.
"""
from __future__ import annotations

import math
from typing import NamedTuple, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from sketchjax.models.layers import ReluMLP, check_batch_shape, check_settings, point_features
from sketchjax.sketch import Sketch, num_points

__all__ = [
    "BiLSTMLayer",
    "BiLSTMEncoder",
    "RowLayout",
    "padded_layout",
    "packed_layout",
    "packed_rows",
    "reverse_within_length",
    "lstm_scan",
]


def reverse_within_length(x: jax.Array, lengths: jax.Array) -> jax.Array:
    """Reverses ``x[b, :lengths[b]]`` along axis 1 per example; padding stays in place.

    ``x: [B, T, ...]``, ``lengths: int[B]``.  An involution: applying it twice is the identity.
    """
    t = jnp.arange(x.shape[1])
    n = jnp.clip(lengths, 0, x.shape[1])[:, None]  # a length beyond T reverses all T steps
    idx = jnp.where(t[None, :] < n, n - 1 - t[None, :], t[None, :])
    idx = idx.reshape(idx.shape + (1,) * (x.ndim - 2))
    return jnp.take_along_axis(x, idx, axis=1)


class RowLayout(NamedTuple):
    """Where the points of ``B`` sketches sit in ``R`` LSTM rows of ``T`` slots.

    Sketch ``b``'s point ``k`` sits in flat slot ``first[b] + k`` (``slot = row * T + t``);
    each sketch's points are consecutive inside one row.

    Attributes:
      source: ``int32[R, T]`` flat index ``b * T + k`` of the point in each slot (0 if empty).
      filled: ``bool[R, T]`` the slot holds a point.
      mirror: ``int32[R, T]`` flat slot of the same sketch's point ``len - 1 - k`` (the
        slot itself when empty): the backward direction's order.
      start: ``bool[R, T]`` a sketch starts here (the LSTM state is reset), or ``None`` when
        every sketch starts at slot 0 of its own row (nothing to reset).
      first, last: ``int32[B]`` flat slots of each sketch's first and last point.
      fits: ``bool[]`` every sketch found room (else the layout must not be used).
    """

    source: jax.Array
    filled: jax.Array
    mirror: jax.Array
    start: Optional[jax.Array]
    first: jax.Array
    last: jax.Array
    fits: jax.Array


def _layout(row, offset, lengths, rows: int, t: int, reset: bool, fits) -> RowLayout:
    """The :class:`RowLayout` of sketch ``b`` placed at ``(row[b], offset[b])``."""
    b = lengths.shape[0]
    k = jnp.arange(t, dtype=jnp.int32)[None, :]
    n = lengths[:, None]
    first = row * t + offset
    on = k < n
    slot = jnp.where(on, first[:, None] + k, rows * t).reshape(-1)  # off: dropped
    source = jnp.zeros((rows * t,), jnp.int32).at[slot].set(
        (jnp.arange(b, dtype=jnp.int32)[:, None] * t + k).reshape(-1), mode="drop")
    mirror = jnp.arange(rows * t, dtype=jnp.int32).at[slot].set((first[:, None] + n - 1 - k).reshape(-1), mode="drop")
    filled = jnp.zeros((rows * t,), bool).at[slot].set(True, mode="drop")
    start = jnp.zeros((rows * t,), bool).at[first].set(True, mode="drop") if reset else None
    shape = (rows, t)
    return RowLayout(
        source.reshape(shape), filled.reshape(shape), mirror.reshape(shape),
        None if start is None else start.reshape(shape), first, first + lengths - 1, fits,
    )


def padded_layout(lengths: jax.Array, t: int) -> RowLayout:
    """One sketch per row (``R = B``), as the batch is padded: ``lengths int[B]`` (each ``>= 1``).

    Lengths are clipped to ``[1, t]``, as :func:`reverse_within_length` does (a length beyond
    ``t`` made the backward direction read the next row's points)."""
    lengths = jnp.clip(jnp.asarray(lengths, jnp.int32), 1, t)
    b = lengths.shape[0]
    return _layout(jnp.arange(b, dtype=jnp.int32), jnp.zeros((b,), jnp.int32), lengths, b, t, False, jnp.array(True))


def packed_layout(lengths: jax.Array, t: int, rows: int) -> RowLayout:
    """Sketches of ``lengths`` (each in ``1..t``) packed end to end into ``rows`` rows of ``t`` slots.

    First-fit decreasing: longest sketch first, each into the first row with room.  ``fits``
    says whether all found room; where one did not, its placement is meaningless.
    """
    lengths = jnp.asarray(lengths, jnp.int32)
    order = jnp.argsort(-lengths, stable=True)

    def place(room, n):
        ok = room >= n
        r = jnp.argmax(ok).astype(jnp.int32)
        return room.at[r].add(-jnp.where(ok[r], n, 0)), (r, t - room[r], ok[r])

    _, (r, off, ok) = jax.lax.scan(place, jnp.full((rows,), t, jnp.int32), lengths[order])
    row = jnp.zeros_like(lengths).at[order].set(r)
    offset = jnp.zeros_like(lengths).at[order].set(off)
    return _layout(row, offset, lengths, rows, t, True, jnp.all(ok))


def packed_rows(pack: Optional[float], batch: int) -> int:
    """Rows of :class:`BiLSTMEncoder` ``(pack=...)`` for a batch of ``batch`` sketches: ``ceil(pack * batch)``
    capped to ``[1, batch]`` (``batch`` — padded — when ``pack`` is None, or when ``batch`` is a
    symbolic dimension of ``jax.export``: the row count must be a known number)."""
    if pack is None or not isinstance(batch, int):
        return batch
    if not pack > 0:
        raise ValueError(f"BiLSTMEncoder.pack must be > 0 or None, got {pack}")
    return min(batch, max(1, math.ceil(pack * batch)))


def _gather_slots(x: jax.Array, index: jax.Array) -> jax.Array:
    """``x [R, T, ...]`` gathered at flat slots ``index [R', T']`` → ``[R', T', ...]``."""
    # clip: a layout whose sketches did not fit may point past the rows; under lax.cond it is never
    # used, but under vmap both branches run and a NaN fill would leak into gradients as 0 * NaN.
    return jnp.take(x.reshape((-1,) + x.shape[2:]), index, axis=0, mode="clip")


def lstm_scan(proj: jax.Array, wh: jax.Array, unroll: int = 1, reset: Optional[jax.Array] = None) -> jax.Array:
    """Runs ``D`` independent LSTMs over time from zero state: ``proj [T, D, B, 4H] -> h [T, D, B, H]``.

    ``proj`` holds the input pre-activations ``x_t W + b`` of every step (gates ``i, f, g,
    o``), ``wh: [D, H, 4H]`` the recurrent weights; one batched matmul per step serves all
    ``D`` directions.  ``reset`` (``bool[T, B]``): the state of row ``b`` is set back to zero
    before step ``t`` (a new sequence starts there; shared by all directions).  Plain
    autodiff: a hand-written VJP (one reverse scan for the gate gradients, ``d wh`` as one
    matmul afterwards) measured no faster on CPU (213 vs 208 ms for T=100, B=64, H=256,
    fwd+bwd), so it was removed.
    """

    def step(carry, inputs):
        h, c = carry
        p, r = inputs
        if r is not None:
            # a select, not a product: 0 x NaN is NaN, so a non-finite sketch packed before
            # this one poisoned its state (features must not depend on the packing)
            keep = jnp.logical_not(r)[None, :, None]
            h, c = jnp.where(keep, h, 0.0), jnp.where(keep, c, 0.0)
        i, f, g, o = jnp.split(p + jnp.einsum("dbh,dhk->dbk", h, wh), 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros(proj.shape[1:-1] + (wh.shape[1],), jnp.result_type(proj, wh))
    return jax.lax.scan(step, (zeros, zeros), (proj, reset), unroll=unroll)[1]


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

    ``layer(x, layout=L)`` runs on rows laid out by a :class:`RowLayout` instead (``x: [R, T,
    F]`` in ``L``'s slots, e.g. packed; output in the same slots, zero where empty);
    ``layer(x, lengths)`` is ``layer(x, layout=padded_layout(lengths, T))``.
    """

    hidden: int
    forget_bias: float = 1.0
    unroll: int = 1

    @nn.compact
    def __call__(self, x: jax.Array, lengths: Optional[jax.Array] = None, *, layout: Optional[RowLayout] = None) -> jax.Array:
        if (lengths is None) == (layout is None):
            raise ValueError("BiLSTMLayer needs exactly one of lengths and layout")
        if layout is None:
            layout = padded_layout(lengths, x.shape[1])
        f = x.shape[-1]
        h = self.hidden
        wi = self.param("wi", _stacked(nn.initializers.xavier_uniform(), 2), (2, f, 4 * h))
        wh = self.param("wh", _stacked(nn.initializers.orthogonal(), 2), (2, h, 4 * h))
        bias = self.param("b", _forget_bias_init(self.forget_bias), (2, 4 * h))
        xs = jnp.stack([x, _gather_slots(x, layout.mirror)])  # [2, R, T, F]: forward, backward order
        proj = jnp.einsum("drtf,dfk->tdrk", xs, wi) + bias[None, :, None, :]
        reset = None if layout.start is None else layout.start.T
        hs = lstm_scan(proj, wh, self.unroll, reset)  # [T, 2, R, H]
        fwd = jnp.swapaxes(hs[:, 0], 0, 1)
        bwd = _gather_slots(jnp.swapaxes(hs[:, 1], 0, 1), layout.mirror)
        return jnp.where(layout.filled[..., None], jnp.concatenate([fwd, bwd], axis=-1), 0.0)


class BiLSTMEncoder(nn.Module):
    """Length-aware stacked BiLSTM + ReLU MLP head: ``Sketch[B, T] -> float32[B, head[-1]]``.

    Attributes:
      hidden: units per direction (paper: 1024).
      num_layers: stacked bidirectional layers (paper: 2).
      head: widths of the ReLU MLP on ``[h_fwd(last), h_bwd(first)]``; features are ``>= 0``.
      head_activation: the head's last activation, ``"relu"`` (default) or ``"softplus"``
        (:class:`~sketchjax.models.layers.ReluMLP`; softplus for a cosine / GACL head).
      dropout: dropout between layers and in the head (active with ``train=True``; needs a
        ``'dropout'`` rng).
      unroll: ``lax.scan`` unroll factor, or True for fully unrolled (speed only).
      pack: run on ``ceil(pack * B)`` rows of packed sketches when the batch fits in them,
        else padded (speed only: the features are the same; see the module docstring).
        ``None`` (default), or any value with ``ceil(pack * B) >= B`` (e.g. ``B = 1``): always
        padded.  Whether a batch ran packed is sown as ``intermediates/packed`` (apply with
        ``mutable=["intermediates"]`` to see it).

    Input coordinates should be in ``[0, 1]`` (the recipe); a sketch with no valid point is
    treated as length 1.
    """

    hidden: int = 1024
    num_layers: int = 2
    head: Sequence[int] = (512,)
    dropout: float = 0.0
    unroll: int = 1
    pack: Optional[float] = None
    head_activation: str = "relu"

    @nn.compact
    def __call__(self, sketch: Sketch, *, train: bool = False) -> jax.Array:
        # unroll: a count, or True (lax.scan's "fully unrolled")
        check_settings("BiLSTMEncoder", counts={"hidden": self.hidden, "num_layers": self.num_layers,
                                                **({} if self.unroll is True else {"unroll": self.unroll})},
                       dropout={"dropout": self.dropout})  # the head's widths: ReluMLP checks them
        check_batch_shape(sketch, "BiLSTMEncoder", prefix=True)
        x = point_features(sketch)
        b, t = x.shape[:2]
        lengths = jnp.maximum(num_points(sketch.valid), 1)
        rows = packed_rows(self.pack, b)
        # Dropout masks between layers are drawn in the padded [B, T, 2H] shape and moved to
        # the rows with the points, so packed and padded runs drop the same units.
        drop = self.dropout > 0 and train
        masks = [nn.Dropout(self.dropout, deterministic=False)(jnp.ones((b, t, 2 * self.hidden), x.dtype)) > 0
                 for _ in range(self.num_layers - 1)] if drop else []

        def encode(mdl, x, masks, layout: RowLayout) -> jax.Array:
            x = jnp.where(layout.filled[..., None], _gather_slots(x, layout.source), 0.0)
            for i in range(mdl.num_layers):
                if i > 0 and drop:  # as nn.Dropout: kept units scaled by 1 / (1 - rate)
                    x = jnp.where(_gather_slots(masks[i - 1], layout.source), x / (1.0 - mdl.dropout), 0.0)
                x = BiLSTMLayer(mdl.hidden, unroll=mdl.unroll, name=f"lstm_{i}")(x, layout=layout)
            ends = jnp.stack([layout.last, layout.first], axis=-1)  # [B, 2] flat slots
            h = _gather_slots(x, ends)
            return jnp.concatenate([h[:, 0, : mdl.hidden], h[:, 1, mdl.hidden :]], axis=-1)

        padded = padded_layout(lengths, t)
        # Initialisation takes the padded path: under nn.cond the parameters would be drawn
        # from other rng splits, and `pack` (speed only) would change the initial weights.
        if rows >= b or self.is_initializing():
            feat = encode(self, x, masks, padded)
        else:
            packed = packed_layout(lengths, t, rows)
            self.sow("intermediates", "packed", packed.fits)  # which path ran (mutable=["intermediates"])
            feat = nn.cond(packed.fits, lambda mdl, x, m: encode(mdl, x, m, packed),
                           lambda mdl, x, m: encode(mdl, x, m, padded), self, x, masks)
        if self.dropout > 0:
            feat = nn.Dropout(self.dropout, deterministic=not train)(feat)
        return ReluMLP(tuple(self.head), dropout=self.dropout, activation=self.head_activation, name="head")(
            feat, train=train)
