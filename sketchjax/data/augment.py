"""The batching iterator's transforms: random augmentation of a padded batch (pure
``jax.numpy``, one jitted call per batch) and host-side length fitting of one sketch (NumPy).

:func:`augment_batch` draws every example's randomness from its own key, which the iterator
derives from ``(seed, epoch, example index)``, so an example is augmented the same way
whatever batch it lands in, and a resumed run reproduces every batch.

:func:`fit_length` splits strokes with plain NumPy instead of
:func:`sketchjax.formats.to_strokes` on purpose: it runs per example per epoch, and the formats'
validation (``check_sketch``) would cost more than the transform.  Stored sketches were
validated when the dataset was built.
"""
from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from sketchjax._checks import check_key, is_number
from sketchjax.normalize import bounding_box, rdp, resample
from sketchjax.sketch import Sketch, compact, stroke_ids

__all__ = ["Augment", "augment_batch", "fit_length", "FIT_METHODS", "split_strokes", "join_strokes"]

#: How :func:`fit_length` shortens a sketch longer than ``max_len``.
FIT_METHODS = ("truncate", "rdp", "resample")


@dataclasses.dataclass(frozen=True)
class Augment:
    """Random augmentation of one sketch (all off by default).

    Attributes:
      scale: ``(lo, hi)`` range of a uniform scale factor about the bounding-box centre
        (no effect on unit coordinates, which are rescaled).
      aspect: half-width of the range of a log aspect change ``a ~ U[-aspect, aspect]``:
        x is multiplied by ``exp(a / 2)`` and y by ``exp(-a / 2)``.
      jitter: standard deviation of Gaussian noise added to every point, as a fraction of
        the (augmented) sketch's longer bounding-box side.
      stroke_dropout: probability of removing each stroke; one random stroke is kept when
        all would be removed, so a sketch never becomes empty.
    """

    scale: tuple[float, float] = (1.0, 1.0)
    aspect: float = 0.0
    jitter: float = 0.0
    stroke_dropout: float = 0.0

    def __post_init__(self):
        for field in ("aspect", "jitter", "stroke_dropout"):  # None or text: a TypeError naming nothing
            if not is_number(getattr(self, field)):
                raise ValueError(f"Augment.{field} must be a number, got {getattr(self, field)!r}")
        if (isinstance(self.scale, (str, bytes)) or not hasattr(self.scale, "__len__") or len(self.scale) != 2
                or not all(is_number(v) for v in self.scale)):
            raise ValueError(f"Augment.scale must be (lo, hi) numbers, got {self.scale!r}")
        lo, hi = (float(v) for v in self.scale)
        if not 0.0 < lo <= hi or not np.isfinite(hi):
            raise ValueError(f"Augment.scale must be 0 < lo <= hi < inf, got {self.scale}")
        if not 0.0 <= self.aspect < 10.0:
            raise ValueError(f"Augment.aspect must be in [0, 10), got {self.aspect}")
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError(f"Augment.jitter must be in [0, 1), got {self.jitter}")
        if not 0.0 <= self.stroke_dropout < 1.0:
            raise ValueError(f"Augment.stroke_dropout must be in [0, 1), got {self.stroke_dropout}")
        object.__setattr__(self, "scale", (lo, hi))

    @property
    def active(self) -> bool:
        """True when any augmentation is switched on."""
        return self.scale != (1.0, 1.0) or self.aspect > 0 or self.jitter > 0 or self.stroke_dropout > 0


def split_strokes(points: np.ndarray, pen: np.ndarray) -> list[np.ndarray]:
    """The strokes (``[n_i, 2]`` views) of an unpadded sketch: a stroke ends where ``pen <= 0.5``."""
    ends = np.flatnonzero(pen[:-1] <= 0.5) + 1
    return np.split(points, ends)


def join_strokes(strokes: list) -> tuple[np.ndarray, np.ndarray]:
    """Inverse of :func:`split_strokes`: ``(points [n, 2], pen [n])`` with pen 0 on stroke ends."""
    points = np.concatenate(strokes, axis=0)
    pen = np.ones(len(points), np.float32)
    pen[np.cumsum([len(s) for s in strokes]) - 1] = 0.0
    return points, pen


def fit_length(points: np.ndarray, pen: np.ndarray, max_len: int, method: str = "truncate"):
    """Shorten a sketch to at most ``max_len`` points (unchanged when it already fits).

    ``"truncate"`` returns the sketch as is (the packer keeps the first ``max_len`` points);
    ``"rdp"`` simplifies every stroke with Ramer-Douglas-Peucker, doubling epsilon from
    1/512 of the longer bounding-box side until the sketch fits; ``"resample"`` resamples
    every stroke at a uniform arc-length spacing, doubling it until the sketch fits.  Both
    keep stroke end points; after 12 doublings (or when there are too many strokes to fit)
    the packer truncates what is left.
    """
    if method not in FIT_METHODS:
        raise ValueError(f"unknown fit method {method!r}; use one of {FIT_METHODS}")
    if len(points) <= max_len or method == "truncate":
        return points, pen
    strokes = split_strokes(points.astype(np.float64), pen)
    longest = float(np.max(points.max(axis=0) - points.min(axis=0)))
    if longest <= 0:
        return points, pen
    if method == "rdp":
        step = longest / 512.0
    else:
        arc = sum(float(np.hypot(*np.diff(s, axis=0).T).sum()) for s in strokes if len(s) > 1)
        step = max(arc / max(max_len - 2 * len(strokes), 1), longest / 512.0)
    best = strokes
    for _ in range(12):
        out = rdp(strokes, step) if method == "rdp" else resample(strokes, step)
        if sum(len(s) for s in out) < sum(len(s) for s in best):
            best = out
        if sum(len(s) for s in best) <= max_len:
            break
        step *= 2.0
    new_points, new_pen = join_strokes(best)
    return new_points.astype(np.float32), new_pen


def _drop_strokes(u_strokes, u_rescue, xy, pen, valid, p: float):
    """One sketch (``[T, 2]``, ``[T]``, ``[T]``): remove each stroke with probability ``p``
    (stroke ``j`` goes when ``u_strokes[j] < p``), keeping one random stroke (``u_rescue``) if
    all would go; kept points move to the front, in order."""
    t = pen.shape[-1]
    sid = stroke_ids(pen, valid)  # -1 on padding
    n_strokes = jnp.max(sid) + 1
    ids = jnp.arange(t)
    keep_stroke = u_strokes >= p
    none_kept = ~jnp.any(keep_stroke & (ids < n_strokes))
    rescue = jnp.minimum(jnp.floor(u_rescue * n_strokes), n_strokes - 1)
    keep_stroke = keep_stroke | (none_kept & (ids == rescue))
    return compact(xy, pen, valid, keep_stroke[jnp.maximum(sid, 0)])


def _augment_one(key: jax.Array, xy, pen, valid, augment: "Augment"):
    t = pen.shape[-1]
    # One draw for everything: every separate jax.random call adds ~1 s of XLA compilation
    # on a CPU.  Layout: T per-stroke dropout numbers, rescue, scale, aspect, then 2T for
    # Box-Muller jitter.
    u = jax.random.uniform(key, (3 * t + 3,))
    if augment.stroke_dropout > 0:
        xy, pen, valid = _drop_strokes(u[:t], u[t], xy, pen, valid, augment.stroke_dropout)
    box = bounding_box(Sketch(xy=xy, pen=pen, valid=valid))  # over the kept points
    lo, hi = box[:2], box[2:]
    centre = (lo + hi) / 2.0
    factors = jnp.ones(2, jnp.float32)
    if augment.scale != (1.0, 1.0):
        lo_s, hi_s = augment.scale
        factors = factors * (lo_s + (hi_s - lo_s) * u[t + 1])
    if augment.aspect > 0:
        a = augment.aspect * (2.0 * u[t + 2] - 1.0)
        factors = factors * jnp.exp(jnp.stack([a / 2.0, -a / 2.0]))
    xy = (xy - centre[None, :]) * factors[None, :] + centre[None, :]
    if augment.jitter > 0:
        radius = jnp.sqrt(-2.0 * jnp.log1p(-u[t + 3 : 2 * t + 3]))  # 1 - u in (0, 1]: finite
        angle = 2.0 * jnp.pi * u[2 * t + 3 :]
        normal = jnp.stack([radius * jnp.cos(angle), radius * jnp.sin(angle)], axis=-1)
        longest = jnp.max((hi - lo) * factors)
        xy = xy + augment.jitter * longest * normal
    return jnp.where(valid[:, None], xy, 0.0), jnp.where(valid, pen, 0.0), valid


def augment_batch(keys: jax.Array, xy: jax.Array, pen: jax.Array, valid: jax.Array, augment: Augment):
    """Augment a padded batch: stroke dropout, then scale/aspect about each sketch's
    bounding-box centre, then point jitter (pure, jit-able; ``augment`` is static).

    Args:
      keys: ``[B]`` PRNG keys, one per example (its whole randomness).  The numbers drawn from a
        key depend on the padded length ``T`` too (one draw of ``3T + 3`` uniforms, laid out by
        ``T``): the same sketch and key padded to another ``T`` is augmented differently.  Kept
        so that every run trained so far is reproduced by its config (``T`` is the config's
        ``max_len``); a batch is deterministic given its keys and shapes.
      xy: ``float32[B, T, 2]`` pixels; pen: ``float32[B, T]``; valid: ``bool[B, T]`` prefix mask.
      augment: the settings.

    Returns:
      ``(xy, pen, valid)`` of the same shapes: dropped strokes removed (kept points shifted
      to the front, so ``valid`` stays a prefix mask with at least one point wherever the
      input had one), padding zeroed.  Finite for finite input: a zero-size sketch stays a
      point and its jitter is 0.
    """
    if np.ndim(xy) != 3 or np.shape(xy)[-1] != 2 or np.shape(pen) != np.shape(xy)[:2] or np.shape(valid) != np.shape(pen):
        raise ValueError(f"augment_batch: augments a batch, xy [B, T, 2] and pen/valid [B, T]; got {np.shape(xy)}, "
                         f"{np.shape(pen)}, {np.shape(valid)}")  # one sketch crashed inside vmap
    check_key("augment_batch", keys, "keys", batch=np.shape(pen)[0] if np.ndim(pen) else None)
    return jax.vmap(lambda k, a, b, c: _augment_one(k, a, b, c, augment))(keys, xy, pen, valid)
