"""SketchRNN (Ha & Eck 2017): a VAE over stroke-5 sequences, and its samplers.

Data layout (sketch-rnn's **stroke-5**, the same rows as :func:`sketchjax.formats.to_stroke5`):
``strokes: float32[B, T, 5]`` rows ``(dx, dy, p1, p2, p3)`` in **model units** — pixel offsets
divided by the model's ``scale_factor`` (:func:`stroke5_batch` does the conversion, and
:func:`stroke5_to_sketch` undoes it) — with ``p1 = 1`` pen stays down after the point, ``p2 = 1``
pen lifted after it, ``p3 = 1`` end of sketch; ``lengths: int32[B]`` real rows, rows
``t >= lengths`` are ``(0, 0, 0, 0, 1)``.  No start token is stored: the decoder's input is
the model's ``config.start_token`` followed by ``strokes[:, :-1]`` (teacher forcing), its
target is ``strokes``; the samplers start from it too.  Models built here use Magenta's
``S0 = (0, 0, 1, 0, 0)``; decoders imported from sketch-rnn-js use its ``(0, 0, 0, 0, 0)``,
which they were trained with (before 2026-12-03 they were fed ``S0``: several categories'
samples rarely ended or were recognised — rain, lantern, toothbrush).

Model (:class:`SketchRNN`, Flax linen, used through ``apply``):

* encoder — length-aware bidirectional :class:`LSTM` (the backward direction starts at each
  sequence's last valid row), final hidden states concatenated → ``mu``, ``presig`` (``σ̂``,
  the log-variance) → ``z = mu + exp(presig / 2) * eps``;
* decoder — :class:`LSTM` whose input is ``[x_{t-1}, z]``, initial state
  ``(c, h) = split(tanh(W z + b))`` (conditional model), or ``[x_{t-1}]`` from a zero state
  (unconditional decoders, e.g. the pre-trained sketch-rnn-js ones);
* output head — ``3 + 6 M`` numbers per step: 3 pen logits, then ``M`` each of mixture logits
  ``π``, ``μx``, ``μy``, ``log σx``, ``log σy``, ``ρ`` (before tanh) — Magenta's layout.

The LSTM is sketch-rnn's: ``[i, g, f, o] = x W_x + h W_h + b``,
``c' = c σ(f + forget_bias) + σ(i) tanh(g)``, ``h' = tanh(c') σ(o)`` (gate order i, g, f, o;
``forget_bias = 1.0`` added as a constant, not stored in ``b``), so pre-trained weights load
without reordering (:mod:`sketchjax.models.sketch_rnn_js`).

Losses (pure functions of the model output): :func:`reconstruction_loss` (``L_R = L_s + L_p``
of the paper), :func:`kl_loss` (``L_KL``), :func:`kl_annealing` (``η_step``) and
:func:`sketch_rnn_loss` (``L_R + w_KL η_step max(L_KL, KL_min)``).

Sampling: :func:`sample` (ancestral sampling with temperature, one ``lax.scan``) and
:func:`decode_relaxed` (straight-through Gumbel-softmax + reparameterised Gaussians, so the
output is differentiable w.r.t. ``z`` and the parameters: SPEC §6, quality-guided generation).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
import functools
from typing import Any, Mapping, Optional, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from sketchjax._checks import check_key, check_positive_int
from sketchjax.models.bilstm import reverse_within_length
from sketchjax.formats.strokes import to_stroke5
from sketchjax.sketch import Sketch, SketchError

__all__ = [
    "SketchRNNConfig",
    "SketchRNN",
    "LSTM",
    "SketchRNNEncoder",
    "MixtureParams",
    "START_TOKEN",
    "JS_START_TOKEN",
    "END_TOKEN",
    "lstm_step",
    "lstm_sequence",
    "split_output",
    "decoder_inputs",
    "init_sketch_rnn",
    "gmm_log_likelihood",
    "pen_cross_entropy",
    "reconstruction_loss",
    "kl_loss",
    "kl_annealing",
    "sketch_rnn_loss",
    "decoder_initial_state",
    "sampling_dtype",
    "sample",
    "decode_relaxed",
    "stroke5_lengths",
    "stroke5_to_sketch",
    "stroke5_batch",
    "normalizing_scale_factor",
]

#: Decoder input before the first row: pen down, no offset (Magenta's ``S0``); the default of
#: :attr:`SketchRNNConfig.start_token`.  (sketch-rnn-js starts from all zeros, and so do the
#: decoders imported from it: :data:`JS_START_TOKEN`.)
START_TOKEN = (0.0, 0.0, 1.0, 0.0, 0.0)
#: sketch-rnn-js's first input (``zero_input()``: "initially the input is zero"), which the
#: published ``.gen.json`` decoders were trained with: fed ``START_TOKEN`` instead, several
#: (rain, lantern, toothbrush) give human sketches absurd likelihoods and samples that rarely end.
JS_START_TOKEN = (0.0, 0.0, 0.0, 0.0, 0.0)
#: A row after the end of a sketch.
END_TOKEN = (0.0, 0.0, 0.0, 0.0, 1.0)

# 1 - rho^2 is floored here so that a saturated tanh (|rho| = 1 in float32) gives a finite
# density and finite gradients instead of inf/NaN.
_MIN_ONE_MINUS_RHO2 = 1e-6


@dataclasses.dataclass(frozen=True)
class SketchRNNConfig:
    """Architecture of a SketchRNN (hashable: usable as a static ``jit`` argument).

    Attributes:
      enc_hidden: units of each encoder LSTM direction (unused when not ``conditional``).
      dec_hidden: decoder LSTM units.
      num_mixtures: ``M``, bivariate Gaussians in the offset mixture.
      z_size: latent size (``0`` for unconditional decoders).
      max_len: ``N_max``, the padded sequence length for training and the default number of
        sampling steps.
      conditional: VAE with encoder and ``z``-conditioned decoder; ``False`` is a decoder-only
        language model started from a zero state (the sketch-rnn-js ``gen`` models).
      scale_factor: pixels per model unit (offsets are divided by it before entering the model;
        Magenta uses the standard deviation of the training offsets).
      forget_bias: constant added to the forget-gate pre-activation (1.0 in sketch-rnn).
      start_token: the decoder's input before the first row (teacher forcing and sampling):
        :data:`START_TOKEN` (Magenta's ``S0``, for models trained here) or, for decoders
        imported from sketch-rnn-js, :data:`JS_START_TOKEN` (set by the loader).
      name: free-form label (e.g. the QuickDraw category of an imported decoder).
    """

    enc_hidden: int = 256
    dec_hidden: int = 512
    num_mixtures: int = 20
    z_size: int = 128
    max_len: int = 250
    conditional: bool = True
    scale_factor: float = 1.0
    forget_bias: float = 1.0
    start_token: tuple = START_TOKEN
    name: str = ""

    def __post_init__(self):
        if self.dec_hidden <= 0 or self.num_mixtures <= 0 or self.max_len <= 0:
            raise ValueError(f"SketchRNNConfig: dec_hidden, num_mixtures and max_len must be positive: {self}")
        if self.conditional and (self.enc_hidden <= 0 or self.z_size <= 0):
            raise ValueError(f"SketchRNNConfig: a conditional model needs enc_hidden > 0 and z_size > 0: {self}")
        if not 0 < self.scale_factor < float("inf"):
            raise ValueError(f"SketchRNNConfig: scale_factor must be positive and finite, got {self.scale_factor}")
        token = tuple(self.start_token)
        if len(token) != 5 or not all(isinstance(v, numbers.Real) and math.isfinite(v) for v in token):
            raise ValueError(f"SketchRNNConfig: start_token must be 5 finite numbers (a stroke-5 row), got {self.start_token!r}")
        object.__setattr__(self, "start_token", tuple(float(v) for v in token))  # hashable, one spelling

    @property
    def output_size(self) -> int:
        """Width of the decoder output head: ``3 + 6 M``."""
        return 3 + 6 * self.num_mixtures

    @property
    def decoder_input_size(self) -> int:
        """``5 + z_size`` for a conditional model, else ``5``."""
        return 5 + (self.z_size if self.conditional else 0)


# --- LSTM -------------------------------------------------------------------------------------


def _expand(bias: jax.Array, ndim: int) -> jax.Array:
    """``bias [F]`` reshaped to ``[1, ..., 1, F]`` (rank ``ndim``): no implicit rank promotion."""
    return jnp.reshape(bias, (1,) * (ndim - 1) + (-1,))


def _lstm_update(gates: jax.Array, c: jax.Array, forget_bias: float) -> tuple[jax.Array, jax.Array]:
    """New ``(c, h)`` from pre-activations ``gates [..., 4H]`` in gate order i, g, f, o."""
    i, g, f, o = jnp.split(gates, 4, axis=-1)
    new_c = c * jax.nn.sigmoid(f + forget_bias) + jax.nn.sigmoid(i) * jnp.tanh(g)
    new_h = jnp.tanh(new_c) * jax.nn.sigmoid(o)
    return new_c, new_h


def lstm_step(
    params: Mapping[str, jax.Array], carry: tuple[jax.Array, jax.Array], x: jax.Array, forget_bias: float = 1.0
) -> tuple[jax.Array, jax.Array]:
    """One step of sketch-rnn's LSTM cell.

    Args:
      params: ``kernel_x float32[D, 4H]``, ``kernel_h float32[H, 4H]``, ``bias float32[4H]``,
        gate blocks in the order i, g, f, o.
      carry: ``(c, h)``, each ``float32[..., H]``.
      x: ``float32[..., D]``.
      forget_bias: added to the forget-gate pre-activation.

    Returns:
      ``(c', h')``, each ``float32[..., H]``; ``h'`` is also the cell's output.
    """
    c, h = carry
    gates = x @ params["kernel_x"] + h @ params["kernel_h"] + _expand(params["bias"], x.ndim)
    return _lstm_update(gates, c, forget_bias)


def lstm_sequence(
    params: Mapping[str, jax.Array],
    xs: jax.Array,
    *,
    lengths: Optional[jax.Array] = None,
    initial_carry: Optional[tuple[jax.Array, jax.Array]] = None,
    reverse: bool = False,
    forget_bias: float = 1.0,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """Run :func:`lstm_step` over a padded batch of sequences with one ``lax.scan``.

    The input projection ``xs @ kernel_x + bias`` is one matmul outside the scan; the scan
    only does the recurrent matmul.

    Args:
      params: as in :func:`lstm_step`.
      xs: ``float32[B, T, D]``.
      lengths: ``int32[B]`` valid steps per sequence (``None``: all ``T``).  The carry is
        frozen after a sequence's last valid step and outputs there are 0.
      initial_carry: ``(c, h)`` each ``float32[B, H]``; zeros if ``None``.
      reverse: run each sequence backwards **from its own last valid step** (per-example flip
        of the valid prefix), outputs returned in the original time order.

    Returns:
      ``(outputs float32[B, T, H], (c, h))`` with ``(c, h)`` the state after each sequence's
      last valid step (for ``reverse``: after its first step).
    """
    batch, steps = xs.shape[0], xs.shape[1]
    hidden = params["kernel_h"].shape[0]
    if lengths is None:
        lengths = jnp.full((batch,), steps, jnp.int32)
    lengths = jnp.asarray(lengths, jnp.int32)
    if reverse:
        xs = reverse_within_length(xs, lengths)
    gates_x = xs @ params["kernel_x"] + _expand(params["bias"], 3)  # [B, T, 4H]
    # The state takes the gates' dtype (inputs and weights promoted: bfloat16 strokes with
    # float32 weights run in float32), so the scan's carry keeps one type.
    if initial_carry is None:
        zeros = jnp.zeros((batch, hidden), gates_x.dtype)
        initial_carry = (zeros, zeros)
    initial_carry = tuple(jnp.asarray(c, gates_x.dtype) for c in initial_carry)
    mask = jnp.arange(steps)[:, None] < lengths[None, :]  # [T, B]
    kernel_h = params["kernel_h"]

    def body(carry, inputs):
        gx, m = inputs
        c, h = carry
        new_c, new_h = _lstm_update(gx + h @ kernel_h, c, forget_bias)
        m = m[:, None]
        return (jnp.where(m, new_c, c), jnp.where(m, new_h, h)), jnp.where(m, new_h, 0.0)

    carry, ys = jax.lax.scan(body, initial_carry, (jnp.swapaxes(gates_x, 0, 1), mask))
    ys = jnp.swapaxes(ys, 0, 1)
    if reverse:
        ys = reverse_within_length(ys, lengths)
    return ys, carry


class LSTM(nn.Module):
    """sketch-rnn's LSTM layer over padded sequences (:func:`lstm_sequence` with its own params).

    Parameters: ``kernel_x [D, 4H]`` (Glorot uniform), ``kernel_h [H, 4H]`` (orthogonal),
    ``bias [4H]`` (zeros), gate order i, g, f, o; ``forget_bias`` is a constant.  During
    ``init`` the scan is skipped and the outputs are zeros (only the parameters matter there).
    """

    features: int
    forget_bias: float = 1.0

    @nn.compact
    def __call__(self, xs, *, lengths=None, initial_carry=None, reverse: bool = False):
        """``xs float32[B, T, D]`` → ``(outputs float32[B, T, H], (c, h))``, see :func:`lstm_sequence`."""
        h4 = 4 * self.features
        f32 = jnp.float32  # as flax's own layers: float32 weights also under jax_enable_x64
        params = {
            "kernel_x": self.param("kernel_x", nn.initializers.glorot_uniform(), (xs.shape[-1], h4), f32),
            "kernel_h": self.param("kernel_h", nn.initializers.orthogonal(), (self.features, h4), f32),
            "bias": self.param("bias", nn.initializers.zeros, (h4,), f32),
        }
        if self.is_initializing():
            # init only needs the parameters: skip the scan (slow to compile, output unused).
            zeros = jnp.zeros(xs.shape[:-1] + (self.features,), xs.dtype)
            return zeros, (zeros[:, 0], zeros[:, 0])
        return lstm_sequence(
            params, xs, lengths=lengths, initial_carry=initial_carry, reverse=reverse, forget_bias=self.forget_bias
        )


# --- output head --------------------------------------------------------------------------------


@struct.dataclass
class MixtureParams:
    """The decoder's output distribution at each step (leading dims ``[...]``, e.g. ``[B, T]``).

    Attributes:
      pen_logits: ``float32[..., 3]`` logits of ``(p1, p2, p3)``.
      pi_logits: ``float32[..., M]`` mixture-weight logits.
      mu: ``float32[..., M, 2]`` component means ``(μx, μy)`` in model units.
      log_sigma: ``float32[..., M, 2]`` ``(log σx, log σy)``.
      rho: ``float32[..., M]`` correlations in ``(-1, 1)`` (tanh applied).
    """

    pen_logits: jax.Array
    pi_logits: jax.Array
    mu: jax.Array
    log_sigma: jax.Array
    rho: jax.Array


def split_output(raw: jax.Array, num_mixtures: int) -> MixtureParams:
    """``raw float32[..., 3 + 6M]`` (Magenta layout: pen logits, then M each of π, μx, μy,
    log σx, log σy, ρ-before-tanh) → :class:`MixtureParams`."""
    m = num_mixtures
    if raw.shape[-1] != 3 + 6 * m:
        raise ValueError(f"decoder output has width {raw.shape[-1]}, expected 3 + 6 * {m}")
    pen, pi, mux, muy, lsx, lsy, rho = jnp.split(raw, [3, 3 + m, 3 + 2 * m, 3 + 3 * m, 3 + 4 * m, 3 + 5 * m], axis=-1)
    return MixtureParams(
        pen_logits=pen,
        pi_logits=pi,
        mu=jnp.stack([mux, muy], axis=-1),
        log_sigma=jnp.stack([lsx, lsy], axis=-1),
        rho=jnp.tanh(rho),
    )


def _dense(params: Mapping[str, jax.Array], x: jax.Array) -> jax.Array:
    return x @ params["kernel"] + _expand(params["bias"], x.ndim)


# --- the model --------------------------------------------------------------------------------


def decoder_inputs(strokes: jax.Array, start_token=START_TOKEN) -> jax.Array:
    """Teacher-forcing decoder input ``float32[B, T, 5]``: ``start_token`` (the model's
    :attr:`SketchRNNConfig.start_token`), then ``strokes[:, :-1]``."""
    start = jnp.broadcast_to(jnp.asarray(start_token, strokes.dtype), strokes[:, :1].shape)
    return jnp.concatenate([start, strokes[:, :-1]], axis=1)


class SketchRNN(nn.Module):
    """SketchRNN VAE (``config.conditional``) or decoder-only model.

    Parameters (``variables['params']``): ``encoder/{fw,bw}`` (:class:`LSTM`),
    ``encoder/mu``, ``encoder/presig`` (Dense ``2·enc_hidden → z_size``), ``init_state``
    (Dense ``z_size → 2·dec_hidden``, output split as ``(c, h)``) — conditional only —;
    ``decoder`` (:class:`LSTM`, input ``5 [+ z_size]``) and ``output`` (Dense
    ``dec_hidden → 3 + 6M``).
    """

    config: SketchRNNConfig

    def setup(self):
        cfg = self.config
        if cfg.conditional:
            self.encoder = SketchRNNEncoder(cfg.enc_hidden, cfg.z_size, cfg.forget_bias)
            self.init_state = nn.Dense(2 * cfg.dec_hidden)
        self.decoder = LSTM(cfg.dec_hidden, cfg.forget_bias)
        self.output = nn.Dense(cfg.output_size)

    def encode(self, strokes: jax.Array, lengths: jax.Array, rng: Optional[jax.Array]):
        """``strokes float32[B, T, 5]``, ``lengths int32[B]`` → ``(z, mu, presig)``, each ``float32[B, z_size]``.

        ``z = mu + exp(presig / 2) * eps`` with ``eps ~ N(0, I)`` from ``rng``; ``rng=None``
        returns ``z = mu``.
        """
        _check_strokes(strokes, lengths, "SketchRNN.encode")
        mu, presig = self.encoder(strokes, lengths)
        if rng is None:
            return mu, mu, presig
        eps = jax.random.normal(rng, mu.shape, mu.dtype)
        return mu + jnp.exp(presig / 2.0) * eps, mu, presig

    def decode(self, inputs: jax.Array, z: Optional[jax.Array] = None, initial_carry=None) -> MixtureParams:
        """Teacher-forced decoder: ``inputs float32[B, T, 5]`` (see :func:`decoder_inputs`),
        ``z float32[B, z_size]`` (conditional) → :class:`MixtureParams` with leading ``[B, T]``."""
        cfg = self.config
        if cfg.conditional:
            if z is None:
                raise ValueError("a conditional SketchRNN needs z to decode")
            if initial_carry is None:
                initial_carry = _split_state(self.init_state(z))
            z_steps = jnp.broadcast_to(z[:, None, :], inputs.shape[:2] + z.shape[-1:])
            inputs = jnp.concatenate([inputs, z_steps], axis=-1)
        hs, _ = self.decoder(inputs, initial_carry=initial_carry)
        return split_output(self.output(hs), cfg.num_mixtures)

    def __call__(self, strokes: jax.Array, lengths: jax.Array, rng: Optional[jax.Array] = None):
        """Reconstruct ``strokes`` (teacher forcing).

        Args:
          strokes: ``float32[B, T, 5]`` stroke-5 in model units; ``lengths``: ``int32[B]``.
          rng: PRNGKey for ``z``'s noise (``None``: ``z = mu``; ignored if unconditional).

        Returns:
          ``(mixture, mu, presig)``: :class:`MixtureParams` ``[B, T]`` predicting ``strokes``;
          ``mu``, ``presig`` ``float32[B, z_size]`` (``None`` for an unconditional model).
        """
        _check_strokes(strokes, lengths, "SketchRNN")
        if not self.config.conditional:
            return self.decode(decoder_inputs(strokes, self.config.start_token)), None, None
        z, mu, presig = self.encode(strokes, lengths, rng)
        return self.decode(decoder_inputs(strokes, self.config.start_token), z), mu, presig


def _check_strokes(strokes, lengths, who: str) -> None:
    """A batch of stroke-5 ``[B, T, 5]`` with ``lengths [B]`` in ``[0, T]``: shapes always (they
    are static), the values of concrete lengths (traced ones, under an outer ``jit``, cannot be
    read; :func:`lstm_sequence` then treats a length beyond ``T`` as ``T``)."""
    shape, lshape = jnp.shape(strokes), jnp.shape(lengths)
    if len(shape) != 3 or shape[-1] != 5 or lshape != shape[:1]:
        raise ValueError(f"{who}: expects stroke-5 strokes [B, T, 5] and lengths [B]; got strokes {shape}, "
                         f"lengths {lshape} (add a leading batch axis to a single sketch)")
    if not isinstance(lengths, jax.core.Tracer):
        n = np.asarray(lengths)
        if n.dtype.kind not in "iu" and not (n.dtype.kind == "f" and np.all(n == np.round(n))):
            raise ValueError(f"{who}: lengths must be whole numbers (rows), got {n.dtype} values {n.tolist()[:4]}")
        bad = np.flatnonzero((n < 0) | (n > shape[1]))
        if bad.size:
            raise ValueError(f"{who}: lengths must be in [0, T={shape[1]}]; sketch {int(bad[0])} has length "
                             f"{int(n[bad[0]])}")
        if not isinstance(strokes, jax.core.Tracer):
            _check_stroke5_rows(np.asarray(strokes), n.astype(np.int64), who)


def _check_stroke5_rows(strokes: np.ndarray, lengths: np.ndarray, who: str) -> None:
    """Concrete stroke-5 rows agree with ``lengths``: finite; rows before a sketch's length have
    a one-hot ``(p1, p2)`` pen and ``p3 = 0``; every later row is :data:`END_TOKEN` (the pen loss
    runs over all rows, so zero padding would teach the model never to stop, and a length short
    of the first ``p3`` would mask offsets the pen targets still count)."""
    bad = ~np.isfinite(strokes).all(axis=-1)
    if bad.any():
        b, t = (int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{who}: non-finite stroke-5 row (NaN/inf) in sketch {b} at row {t}: {strokes[b, t].tolist()}")
    steps = strokes.shape[1]
    inside = np.arange(steps)[None, :] < lengths[:, None]
    pen = strokes[..., 2:]
    one_hot = np.isin(pen[..., :2], (0.0, 1.0)).all(-1) & (pen[..., :2].sum(-1) == 1) & (pen[..., 2] == 0)
    is_end = (strokes == np.asarray(END_TOKEN, strokes.dtype)).all(-1)
    for mask, what in ((inside & ~one_hot, "a row inside the sketch needs a one-hot (p1, p2) pen and p3 = 0"),
                       (~inside & ~is_end, "rows from the sketch's length on must be END (0, 0, 0, 0, 1); "
                                           "is lengths right, and is the padding END rows (not zeros)?")):
        if mask.any():
            b, t = (int(k) for k in np.argwhere(mask)[0])
            raise ValueError(f"{who}: sketch {b} (length {int(lengths[b])}), row {t} {strokes[b, t].tolist()}: {what}")


def _split_state(state: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``tanh``-ed ``[..., 2H]`` → ``(c, h)``: c first, as Magenta and sketch-rnn-js."""
    c, h = jnp.split(jnp.tanh(state), 2, axis=-1)
    return c, h


class SketchRNNEncoder(nn.Module):
    """Length-aware bidirectional LSTM → ``(mu, presig)``, each ``float32[B, z_size]``."""

    hidden: int
    z_size: int
    forget_bias: float = 1.0

    @nn.compact
    def __call__(self, strokes: jax.Array, lengths: jax.Array):
        _, (_, h_fw) = LSTM(self.hidden, self.forget_bias, name="fw")(strokes, lengths=lengths)
        _, (_, h_bw) = LSTM(self.hidden, self.forget_bias, name="bw")(strokes, lengths=lengths, reverse=True)
        h = jnp.concatenate([h_fw, h_bw], axis=-1)
        return nn.Dense(self.z_size, name="mu")(h), nn.Dense(self.z_size, name="presig")(h)


@functools.partial(jax.jit, static_argnames="config")
def init_sketch_rnn(config: SketchRNNConfig, rng: jax.Array) -> dict:
    """Fresh variables ``{'params': ...}`` of ``SketchRNN(config)`` (jitted: one compile per config)."""
    check_key("init_sketch_rnn", rng, "rng")
    strokes = jnp.zeros((1, 2, 5), jnp.float32)
    init_rng, z_rng = jax.random.split(rng)
    return SketchRNN(config).init({"params": init_rng}, strokes, jnp.array([2], jnp.int32), z_rng)


# --- losses -------------------------------------------------------------------------------------


def gmm_log_likelihood(mixture: MixtureParams, offsets: jax.Array) -> jax.Array:
    """``log p(dx, dy)`` under the bivariate-Gaussian mixture, ``float32[...]``.

    ``offsets float32[..., 2]`` in model units.  Computed in log space with ``logsumexp``
    (Magenta uses ``-log(p + 1e-6)``, which caps the loss; this does not) and
    ``1 - ρ²`` floored at ``1e-6``.
    """
    d = (offsets[..., None, :] - mixture.mu) * jnp.exp(-mixture.log_sigma)  # [..., M, 2]
    one_minus_rho2 = jnp.maximum(1.0 - jnp.square(mixture.rho), _MIN_ONE_MINUS_RHO2)
    zz = jnp.sum(jnp.square(d), axis=-1) - 2.0 * mixture.rho * d[..., 0] * d[..., 1]
    log_normal = (
        -jnp.log(2.0 * jnp.pi)
        - jnp.sum(mixture.log_sigma, axis=-1)
        - 0.5 * jnp.log(one_minus_rho2)
        - zz / (2.0 * one_minus_rho2)
    )
    return jax.nn.logsumexp(jax.nn.log_softmax(mixture.pi_logits, axis=-1) + log_normal, axis=-1)


def pen_cross_entropy(pen_logits: jax.Array, pen: jax.Array) -> jax.Array:
    """``-Σ_k p_k log q_k`` per step, ``float32[...]`` from logits ``[..., 3]`` and targets ``[..., 3]``."""
    return -jnp.sum(pen * jax.nn.log_softmax(pen_logits, axis=-1), axis=-1)


def reconstruction_loss(mixture: MixtureParams, strokes: jax.Array, lengths: jax.Array) -> tuple[jax.Array, dict]:
    """Reconstruction loss ``L_R = L_s + L_p`` of the paper (Eq. 9), averaged over the batch.

    ``L_s = -1/N_max Σ_{i < length} log p(Δx_i, Δy_i)`` (offsets masked to valid rows) and
    ``L_p = -1/N_max Σ_{i < N_max} Σ_k p_{k,i} log q_{k,i}`` (pen states over *all* rows, so the
    model learns to emit and keep emitting ``p3``), with ``N_max = T``.

    Args:
      mixture: decoder output with leading ``[B, T]``.
      strokes: targets ``float32[B, T, 5]``; ``lengths``: ``int32[B]``.

    Returns:
      ``(L_R, {'offset': L_s, 'pen': L_p})``, scalars.
    """
    _check_strokes(strokes, lengths, "reconstruction_loss")
    if jnp.shape(mixture.pen_logits)[:2] != jnp.shape(strokes)[:2] or strokes.shape[1] < 1:
        raise ValueError(f"reconstruction_loss: the decoder output's leading shape {jnp.shape(mixture.pen_logits)[:2]} "
                         f"must equal the targets' [B, T] {jnp.shape(strokes)[:2]} (T >= 1)")
    steps = strokes.shape[1]
    valid = jnp.arange(steps)[None, :] < jnp.asarray(lengths)[:, None]
    nll = -gmm_log_likelihood(mixture, strokes[..., :2])
    offset = jnp.mean(jnp.sum(jnp.where(valid, nll, 0.0), axis=1)) / steps
    pen = jnp.mean(pen_cross_entropy(mixture.pen_logits, strokes[..., 2:]))
    return offset + pen, {"offset": offset, "pen": pen}


def kl_loss(mu: jax.Array, presig: jax.Array) -> jax.Array:
    """``L_KL = -1/(2 N_z) Σ (1 + σ̂ - μ² - exp σ̂)``, averaged over the batch (Eq. 10); scalar."""
    if jnp.shape(mu) != jnp.shape(presig) or len(jnp.shape(mu)) != 2:
        raise ValueError(f"kl_loss: mu and presig must both be [B, z_size], got {jnp.shape(mu)} and {jnp.shape(presig)}")
    return -0.5 * jnp.mean(1.0 + presig - jnp.square(mu) - jnp.exp(presig))


def kl_annealing(step: jax.Array, eta_min: float = 0.01, decay: float = 0.99995) -> jax.Array:
    """KL annealing weight ``η_step = 1 - (1 - η_min) R^step`` (paper §3.3), float32 scalar."""
    return 1.0 - (1.0 - eta_min) * jnp.power(decay, jnp.asarray(step, jnp.float32))


def sketch_rnn_loss(
    mixture: MixtureParams,
    strokes: jax.Array,
    lengths: jax.Array,
    mu: Optional[jax.Array] = None,
    presig: Optional[jax.Array] = None,
    *,
    kl_weight: float = 0.5,
    kl_min: float = 0.2,
    eta: jax.Array = 1.0,
) -> tuple[jax.Array, dict]:
    """Total loss ``L_R + w_KL · η · max(L_KL, KL_min)`` (paper Eq. 11); ``L_R`` alone when
    ``mu``/``presig`` are ``None`` (unconditional model).

    Returns ``(loss, {'recon', 'offset', 'pen', 'kl'})`` (``kl`` is the unclipped ``L_KL``).
    """
    if (mu is None) != (presig is None):
        raise ValueError("sketch_rnn_loss: give mu and presig together (conditional model) or neither")
    recon, parts = reconstruction_loss(mixture, strokes, lengths)
    aux = {"recon": recon, **parts}
    if mu is None:
        aux["kl"] = jnp.zeros((), recon.dtype)
        return recon, aux
    kl = kl_loss(mu, presig)
    aux["kl"] = kl
    return recon + kl_weight * eta * jnp.maximum(kl, kl_min), aux


# --- sampling ---------------------------------------------------------------------------------


def _unwrap(params: Mapping[str, Any]) -> Mapping[str, Any]:
    """Accept ``{'params': tree}`` (Flax variables) or the tree itself."""
    return params["params"] if "params" in params and "output" not in params else params


def decoder_initial_state(params, config: SketchRNNConfig, z: Optional[jax.Array], batch: int):
    """Decoder ``(c, h)``, each ``[batch, dec_hidden]`` in the sampling dtype (float32 for float32
    parameters): ``tanh(W z + b)`` split (conditional) or zeros (unconditional)."""
    p = _unwrap(params)
    dtype = sampling_dtype(p)
    if config.conditional:
        return tuple(s.astype(dtype) for s in _split_state(_dense(p["init_state"], jnp.asarray(z, dtype))))
    zeros = jnp.zeros((batch, config.dec_hidden), dtype)
    return zeros, zeros


def sampling_dtype(params) -> jnp.dtype:
    """The float type :func:`sample` and :func:`decode_relaxed` compute in: the parameters'
    floating types promoted with float32 (float32 parameters: float32, also under
    ``jax_enable_x64``; float64 parameters: float64)."""
    floats = [jnp.result_type(x) for x in jax.tree.leaves(params) if jnp.issubdtype(jnp.result_type(x), jnp.floating)]
    return jnp.result_type(jnp.float32, *floats)


def _decoder_step(p, config: SketchRNNConfig, carry, prev: jax.Array, z: Optional[jax.Array]):
    """One decoder step: previous row ``[B, 5]`` → (new carry, :class:`MixtureParams` ``[B]``)."""
    x = prev if z is None else jnp.concatenate([prev, z], axis=-1)
    carry = lstm_step(p["decoder"], carry, x, config.forget_bias)
    return carry, split_output(_dense(p["output"], carry[1]), config.num_mixtures)


def _component_offsets(mixture: MixtureParams, eps: jax.Array, scale: jax.Array) -> jax.Array:
    """Reparameterised offset of every component, ``float32[B, M, 2]``.

    ``x = μx + s σx ε0``, ``y = μy + s σy (ρ ε0 + sqrt(1 - ρ²) ε1)`` with ``eps [B, 2]`` shared
    by the components and ``s = scale`` (``sqrt(temperature)``).
    """
    sigma = jnp.exp(mixture.log_sigma) * scale
    e0, e1 = eps[:, None, 0], eps[:, None, 1]
    root = jnp.sqrt(jnp.maximum(1.0 - jnp.square(mixture.rho), _MIN_ONE_MINUS_RHO2))
    x = mixture.mu[..., 0] + sigma[..., 0] * e0
    y = mixture.mu[..., 1] + sigma[..., 1] * (mixture.rho * e0 + root * e1)
    return jnp.stack([x, y], axis=-1)


def _step_noise(key: jax.Array, batch: int, num_mixtures: int, dtype=jnp.float32):
    """Gumbel noise for the component ``[B, M]`` and pen ``[B, 3]`` choices, Gaussian ``[B, 2]``.

    Always drawn in float32 (also under ``jax_enable_x64``) and then cast to ``dtype``, so that
    float64 parameters sample the same sketches as their float32 copy, up to rounding."""
    k_pi, k_pen, k_xy = jax.random.split(key, 3)
    f32 = jnp.float32
    return (
        jax.random.gumbel(k_pi, (batch, num_mixtures), f32).astype(dtype),
        jax.random.gumbel(k_pen, (batch, 3), f32).astype(dtype),
        jax.random.normal(k_xy, (batch, 2), f32).astype(dtype),
    )


def _perturbed_logits(logits: jax.Array, gumbel: jax.Array, softmax_temperature: jax.Array) -> jax.Array:
    """``logits + t · g``: its argmax is a sample of ``softmax(logits / t)`` (Gumbel-max), and the
    greedy choice at ``t = 0`` exactly."""
    return logits + softmax_temperature * gumbel


def _prepare(params, config, rng, z, num, max_len, initial_state):
    p = _unwrap(params)
    dtype = sampling_dtype(p)
    if config.conditional:
        if z is None:
            rng, z_rng = jax.random.split(rng)
            z = jax.random.normal(z_rng, (num, config.z_size), jnp.float32)
        z = jnp.asarray(z, dtype)
        if z.shape != (num, config.z_size):
            raise ValueError(f"z has shape {z.shape}, expected ({num}, {config.z_size})")
    elif z is not None:
        raise ValueError("an unconditional SketchRNN takes no z (use initial_state to steer it)")
    if initial_state is None:
        initial_state = decoder_initial_state(p, config, z, num)
    initial_state = tuple(jnp.asarray(c, dtype) for c in initial_state)
    keys = jax.random.split(rng, max_len)
    prev = jnp.broadcast_to(jnp.asarray(config.start_token, dtype), (num, 5))
    return p, z, initial_state, keys, prev, dtype


@functools.partial(jax.jit, static_argnames=("config", "num", "max_len"))
def _sample(params, config, rng, num, max_len, temperature, softmax_temperature, z, initial_state):
    p, z, carry0, keys, prev, dtype = _prepare(params, config, rng, z, num, max_len, initial_state)
    end = jnp.asarray(END_TOKEN, dtype)
    temperature, softmax_temperature = (jnp.asarray(t, dtype) for t in (temperature, softmax_temperature))
    scale = jnp.sqrt(temperature)

    def step(state, key):
        carry, prev, done = state
        carry, mix = _decoder_step(p, config, carry, prev, z)
        g_pi, g_pen, eps = _step_noise(key, num, config.num_mixtures, dtype)
        comp = jnp.argmax(_perturbed_logits(mix.pi_logits, g_pi, softmax_temperature), axis=-1)
        pen = jnp.argmax(_perturbed_logits(mix.pen_logits, g_pen, softmax_temperature), axis=-1)
        offsets = _component_offsets(mix, eps, scale)  # [B, M, 2]
        xy = jnp.take_along_axis(offsets, comp[:, None, None], axis=1)[:, 0]
        pen = jax.nn.one_hot(pen, 3, dtype=xy.dtype)
        row = jnp.concatenate([xy * (1.0 - pen[:, 2:]), pen], axis=-1)  # the end row has no offset
        row = jnp.where(done[:, None], end[None, :], row)
        return (carry, row, done | (pen[:, 2] > 0.5)), row

    _, rows = jax.lax.scan(step, (carry0, prev, jnp.zeros((num,), bool)), keys)
    strokes = jnp.swapaxes(rows, 0, 1)
    return strokes, stroke5_lengths(strokes)


def _check_sampling(where: str, max_len, num=None, **temperatures) -> None:
    """Refuses a ``max_len`` / ``num`` that is not a whole number >= 1 (they set shapes: 2.7 was
    cut to 2) and concrete temperatures that are not finite scalars >= 0 (traced values, e.g.
    under an outer ``jit``, are not checked)."""
    check_positive_int(where, "max_len", max_len)
    if num is not None:
        check_positive_int(where, "num", num)
    for name, value in temperatures.items():
        if value is None or isinstance(value, jax.core.Tracer):
            continue
        arr = np.asarray(value)
        if arr.ndim != 0:
            raise ValueError(f"{where}: {name} must be a scalar (one temperature for the batch), got shape {arr.shape}")
        if not (np.isfinite(arr) and arr >= 0):  # also NaN
            raise ValueError(f"{where}: {name} must be a finite number >= 0, got {value}")


def _check_initial_state(where: str, initial_state, num: int, hidden: int) -> None:
    if initial_state is None:
        return
    if len(initial_state) != 2 or any(jnp.shape(c) != (num, hidden) for c in initial_state):
        raise ValueError(f"{where}: initial_state must be (c, h), each [num={num}, dec_hidden={hidden}], got "
                         f"{[jnp.shape(c) for c in initial_state] if isinstance(initial_state, (tuple, list)) else initial_state!r}")


def sample(
    params,
    config: SketchRNNConfig,
    rng: jax.Array,
    num: int = 1,
    temperature: float = 0.65,
    max_len: Optional[int] = None,
    z: Optional[jax.Array] = None,
    *,
    softmax_temperature: Optional[float] = None,
    initial_state: Optional[tuple[jax.Array, jax.Array]] = None,
) -> tuple[jax.Array, jax.Array]:
    """Draw ``num`` sketches by ancestral sampling (one jitted ``lax.scan`` over ``max_len`` steps).

    At each step the mixture component and the pen state are drawn from
    ``softmax(logits / softmax_temperature)`` and the offset from the chosen Gaussian with
    ``σ · sqrt(temperature)`` (the sketch-rnn paper's variance ``σ² τ``, as sketch-rnn-js;
    Magenta's Python ``sample`` passes ``sqrt(τ)`` to a helper that squares it, so it scales
    ``σ`` by ``τ`` — variance ``σ² τ²``); the drawn row is the next input.  Once
    ``p3`` (end of sketch) is drawn, that row (its offset zeroed, as in the training data) and
    all later ones are :data:`END_TOKEN`.
    ``temperature = 0`` is the greedy decode (argmax choices, Gaussian means).

    Args:
      params: the model's variables ``{'params': ...}`` (or the inner tree).
      config: the model's :class:`SketchRNNConfig` (static).
      rng: PRNGKey; equal keys give equal samples.
      num: number of sketches (static).
      temperature: ``τ >= 0`` (traced: changing it does not recompile).
      max_len: steps (static); default ``config.max_len``.
      z: ``float32[num, z_size]`` latent of a conditional model; ``None`` draws ``z ~ N(0, I)``.
        Must be ``None`` for unconditional models.
      softmax_temperature: temperature of the π and pen softmaxes; ``None`` = ``temperature``
        (Magenta's Python sampler).  sketch-rnn-js's ``generate`` uses ``0.5 + 0.5 τ``.
      initial_state: decoder ``(c, h)`` overriding the one from ``z`` / zeros.

    Returns:
      ``(strokes float32[num, max_len, 5], lengths int32[num])`` (strokes in
      :func:`sampling_dtype`: float64 for float64 parameters): stroke-5 in model units
      (multiply ``dx, dy`` by ``config.scale_factor`` for pixels, or use
      :func:`stroke5_to_sketch`); ``lengths`` = rows before the first ``p3`` (``max_len`` if the
      sketch never ended).
    """
    max_len = config.max_len if max_len is None else max_len
    _check_sampling("sample", max_len, num, temperature=temperature, softmax_temperature=softmax_temperature)
    check_key("sample", rng, "rng")
    _check_initial_state("sample", initial_state, int(num), config.dec_hidden)
    max_len = int(max_len)
    temperature = jnp.asarray(temperature, jnp.float32)
    soft = temperature if softmax_temperature is None else jnp.asarray(softmax_temperature, jnp.float32)
    return _sample(params, config, rng, int(num), max_len, temperature, soft, z, initial_state)


def decode_relaxed(
    params,
    config: SketchRNNConfig,
    rng: jax.Array,
    z: Optional[jax.Array],
    *,
    num: Optional[int] = None,
    max_len: Optional[int] = None,
    temperature: jax.Array = 1.0,
    softmax_temperature: Optional[jax.Array] = None,
    gumbel_tau: jax.Array = 1.0,
    initial_state: Optional[tuple[jax.Array, jax.Array]] = None,
) -> tuple[jax.Array, jax.Array]:
    """Differentiable sampling (SPEC §6): ``d(strokes)/dz`` and ``d(strokes)/d(params)`` exist.

    The same process as :func:`sample` — with the same ``rng`` the **forward values are equal**
    to :func:`sample`'s — but every discrete choice is a straight-through Gumbel-softmax: the
    forward pass uses the hard one-hot ``argmax(logits + t·g)``, the backward pass the gradient
    of ``softmax((logits + t·g) / (t · gumbel_tau))`` (the Gumbel-softmax of
    ``softmax(logits / t)`` at temperature ``gumbel_tau``).  The offset is the straight-through
    one-hot combination of every component's reparameterised sample
    ``μ + sqrt(temperature) L ε``, so gradients reach ``μ``, ``σ``, ``ρ`` and ``π``.  The pen
    state fed back to the next step is the straight-through one-hot as well.  Rows after the
    end of sketch are :data:`END_TOKEN` (no gradient).

    Args:
      params, config, rng, temperature, softmax_temperature, initial_state: as in :func:`sample`
        (``temperature``/``softmax_temperature`` must be ``> 0`` for useful gradients).
      z: ``float32[B, z_size]`` (conditional models; required here); ``None`` otherwise.
      num: batch size of an unconditional model (ignored when ``z`` is given).
      max_len: steps (default ``config.max_len``).
      gumbel_tau: Gumbel-softmax temperature of the backward pass (> 0).

    Returns:
      ``(strokes float32[B, max_len, 5], lengths int32[B])`` as :func:`sample`; use
      :func:`stroke5_to_sketch` (differentiable) for absolute coordinates.
    """
    if config.conditional:
        if z is None:
            raise ValueError("decode_relaxed of a conditional SketchRNN needs z (it is what gradients flow to)")
        z = jnp.asarray(z)
        if z.ndim != 2 or z.shape[1] != config.z_size:
            raise ValueError(f"decode_relaxed: z must be [B, z_size={config.z_size}], got shape {z.shape}")
        num = z.shape[0]
    elif num is None:
        num = 1 if initial_state is None else jnp.shape(initial_state[0])[0]
    max_len = config.max_len if max_len is None else max_len
    _check_sampling("decode_relaxed", max_len, num, temperature=temperature,
                    softmax_temperature=softmax_temperature, gumbel_tau=gumbel_tau)
    _check_initial_state("decode_relaxed", initial_state, int(num), config.dec_hidden)
    check_key("decode_relaxed", rng, "rng")
    max_len = int(max_len)
    temperature = jnp.asarray(temperature, jnp.float32)
    soft_t = temperature if softmax_temperature is None else jnp.asarray(softmax_temperature, jnp.float32)
    return _decode_relaxed(params, config, rng, int(num), max_len, temperature, soft_t,
                           jnp.asarray(gumbel_tau, jnp.float32), z, initial_state)


# Compiled once per (config, num, max_len) and argument shapes, like _sample: a generation
# loop that calls decode_relaxed (or its gradient) eagerly paid a compilation per call.
@functools.partial(jax.jit, static_argnames=("config", "num", "max_len"))
def _decode_relaxed(params, config, rng, num, max_len, temperature, soft_t, gumbel_tau, z, initial_state):
    p, z, carry0, keys, prev, dtype = _prepare(params, config, rng, z, num, max_len, initial_state)
    end = jnp.asarray(END_TOKEN, dtype)
    temperature, soft_t, gumbel_tau = (jnp.asarray(t, dtype) for t in (temperature, soft_t, gumbel_tau))
    scale = jnp.sqrt(temperature)
    # Softmax temperature of the relaxed choice; floored so that t = 0 stays finite (no gradient then).
    relax = jnp.maximum(soft_t * gumbel_tau, 1e-6)

    def straight_through(perturbed):
        hard = jax.nn.one_hot(jnp.argmax(perturbed, axis=-1), perturbed.shape[-1], dtype=perturbed.dtype)
        soft = jax.nn.softmax(perturbed / relax, axis=-1)
        return hard + (soft - jax.lax.stop_gradient(soft))  # forward value exactly `hard`

    def step(state, key):
        carry, prev, done = state
        carry, mix = _decoder_step(p, config, carry, prev, z)
        g_pi, g_pen, eps = _step_noise(key, num, config.num_mixtures, dtype)
        comp = straight_through(_perturbed_logits(mix.pi_logits, g_pi, soft_t))  # [B, M]
        pen = straight_through(_perturbed_logits(mix.pen_logits, g_pen, soft_t))  # [B, 3]
        xy = jnp.sum(comp[..., None] * _component_offsets(mix, eps, scale), axis=1)
        row = jnp.concatenate([xy * (1.0 - pen[:, 2:]), pen], axis=-1)
        row = jnp.where(done[:, None], end[None, :], row)
        return (carry, row, done | (jnp.argmax(pen, axis=-1) == 2)), row

    _, rows = jax.lax.scan(step, (carry0, prev, jnp.zeros((num,), bool)), keys)
    strokes = jnp.swapaxes(rows, 0, 1)
    return strokes, stroke5_lengths(strokes)


# --- conversions ------------------------------------------------------------------------------


def stroke5_lengths(strokes: jax.Array) -> jax.Array:
    """``int32[...]``: rows before the first ``p3 = 1`` row of ``strokes [..., T, 5]`` (``T`` if none)."""
    is_end = strokes[..., 4] > 0.5
    steps = strokes.shape[-2]
    return jnp.where(jnp.any(is_end, axis=-1), jnp.argmax(is_end, axis=-1), steps).astype(jnp.int32)


def stroke5_to_sketch(strokes: jax.Array, lengths: jax.Array, scale_factor: float) -> Sketch:
    """Model-unit stroke-5 → :class:`~sketchjax.sketch.Sketch` (pure, jit/vmap/grad-able).

    Args:
      strokes: ``float32[..., T, 5]`` (e.g. from :func:`sample` or :func:`decode_relaxed`).
      lengths: ``int32[...]`` real rows.
      scale_factor: pixels per model unit (``config.scale_factor``).

    Returns:
      Sketch with ``T`` points: ``xy = scale_factor · cumsum(dx, dy)`` (absolute, first point
      offset from the origin), ``pen = p1`` (0 on the last valid point), ``valid = t < length``.
      Points after ``lengths`` keep their coordinates but are invalid; a sketch of length 0 has
      no valid point.
    """
    lengths = jnp.asarray(lengths)[..., None]
    t = jnp.arange(strokes.shape[-2]).reshape((1,) * (lengths.ndim - 1) + (-1,))
    valid = t < lengths
    xy = jnp.cumsum(strokes[..., :2], axis=-2) * scale_factor
    pen = jnp.where(t + 1 < lengths, strokes[..., 2], 0.0)
    return Sketch(xy=xy, pen=pen, valid=valid)


def _at_origin(sketch: Sketch) -> Sketch:
    """``sketch`` moved so that its first point is at ``(0, 0)`` (host-side)."""
    xy = np.asarray(sketch.xy, np.float64)
    valid = np.asarray(sketch.valid, bool)
    if not valid.any():
        return sketch
    return sketch.replace(xy=np.where(valid[..., None], xy - xy[np.argmax(valid)], 0.0).astype(np.asarray(sketch.xy).dtype))


def normalizing_scale_factor(sketches: Sequence[Sketch], *, from_origin: bool = True) -> float:
    """Magenta's ``calculate_normalizing_scale_factor``: the standard deviation of all ``dx`` and
    ``dy`` stroke-3 offsets (pixels) of ``sketches`` (host-side, NumPy), each sketch started at
    the origin as :func:`stroke5_batch` starts it (``from_origin``)."""
    offsets = [to_stroke5(_at_origin(s) if from_origin else s, name=f"sketch {i}")[:, :2]
               for i, s in enumerate(sketches)]
    if not offsets:
        raise SketchError("normalizing_scale_factor: no sketches")
    return float(np.std(np.concatenate(offsets)))


def stroke5_batch(
    sketches: Sequence[Sketch], max_len: int, scale_factor: float, *, names: Optional[Sequence[str]] = None,
    from_origin: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Host-side batch of model inputs from sketches (pixels).

    Each sketch starts at the origin (``from_origin``, default): row 0 is ``(0, 0, p1, p2, 0)``,
    as in sketch-rnn's datasets, whose drawings carry no position on a canvas.  With
    ``from_origin=False`` row 0 is the first point's offset from ``(0, 0)`` — for QuickDraw's
    0-255 frame, where on the canvas the drawing started (tens of pixels, which a pre-trained
    decoder scores as an unlikely first stroke: sheep decoder, 16 human sheep, row-0 NLL 8.0
    against 1.8 from the origin; a scratch check, 2026-12-03, with the decoder's own start row).

    Returns:
      ``(strokes float32[B, max_len, 5], lengths int32[B])``: :func:`~sketchjax.formats.to_stroke5`
      with ``dx, dy`` divided by ``scale_factor``, end rows ``(0, 0, 0, 0, 1)`` after each sketch.

    Raises:
      SketchError: a sketch has more than ``max_len`` points (named by ``names[i]`` or its index).
      ValueError: ``scale_factor`` not a finite number > 0, or ``names`` not one per sketch.
    """
    if not (np.ndim(scale_factor) == 0 and np.isfinite(scale_factor) and scale_factor > 0):
        raise ValueError(f"stroke5_batch: scale_factor must be a finite number > 0, got {scale_factor!r}")
    if names is not None and len(names) != len(sketches):
        raise ValueError(f"stroke5_batch: {len(names)} names for {len(sketches)} sketches (need one each)")
    rows, lengths = [], []
    for i, s in enumerate(sketches):
        name = names[i] if names is not None else f"sketch {i}"
        s5 = to_stroke5(_at_origin(s) if from_origin else s, max_len, name=name)
        s5[:, :2] /= scale_factor
        rows.append(s5.astype(np.float32))
        lengths.append(int(np.sum(np.asarray(s.valid))))
    if not rows:
        raise SketchError("stroke5_batch: no sketches")
    return np.stack(rows), np.asarray(lengths, np.int32)
