"""The Geometry-Aware Classification Layer (GACL, G §3; SPEC §5) as pure functions.

A backbone gives a non-negative feature ``f(x)``; GACL reads two things from it:

* the **quality variable** ``q``: the raw norm ``a = ||f(x)||`` mapped linearly from the norm
  range ``[l_a, u_a]`` (reference 10, 100) onto the instantiation's ``[l_q, u_q]`` (G footnote
  2).  The map is not clipped (a clip would stop the gradient outside the range); since
  ``a >= 0``, ``q >= l_q - l_a (u_q - l_q) / (u_a - l_a) > 0`` for every instantiation here,
  and the regulariser ``G`` keeps ``q`` above ``l_q`` at the optimum (for ``theta_y <= pi/2``;
  see :func:`lambda_g_lower_bound`) and pulls it towards ``u_q``: a confidently recognised
  example sits at ``u_q``, and the classification loss can push a badly misclassified one
  (``theta_y`` beyond ~90° for ``scale``, ~145° for ``add`` / ``mul``) above it;
* the **angles** ``theta_j`` between ``f(x)`` and each class weight ``W_j`` (both normalised).

Logits: ``s cos theta_j`` for ``j != y`` and ``A(q, theta_y)`` for the labelled class:

=========  ================================  ==============
kind       ``A(q, theta)``                    ``[l_q, u_q]``
=========  ================================  ==============
``scale``  ``(1 - q) s cos theta``            0.1, 0.3
``mul``    ``s cos(q theta)``                 1.1, 1.25
``add``    ``s cos(theta + q)``               0.45, 0.65
``cos``    ``s cos theta - m q``              0.35, 0.8
=========  ================================  ==============

For ``cos`` the paper writes the margin unscaled (``m = 1``, G-14); its derivation (G-17)
is a margin in cosine units, ``s (cos theta - q)``, i.e. ``m = s``.  Both are available
(:attr:`GACLConfig.margin_scale`); with ``m = 1`` and ``s = 64`` a change of ``q`` over its
whole range moves the target logit by 0.45 against ``s = 64`` for the angle.

Loss (G-5, G-10): ``cross_entropy(logits, y) + lambda_g G(q)`` with ``G(q) = 1/q + q/u_q^2``
(minimum at ``q = u_q``) and ``lambda_g`` above the instantiation's lower bound
(:func:`lambda_g_lower_bound`, G-11..G-14) — enforced when a :class:`GACLConfig` is made.
Angles come from a clipped ``arccos`` (``|cos| <= 1 - eps``): finite gradients at
``cos = ±1``.

Soft binning (G-18): ``n`` cut points equally spaced inside ``(l_q, u_q)`` split it into
``n + 1`` equal bins; ``o = softmax((w q + b) / tau)`` with ``w = [1..n+1]`` and
``b = [0, -beta_1, -beta_1 - beta_2, ...]``, and ``q_hat = o · c`` with ``c`` the bins'
**midpoints** (the paper's ``o · beta`` has one term too few).  As ``tau → 0`` ``q_hat`` is the
midpoint of ``q``'s bin.  The number of active cut points is a traced value (at most
``max_cuts``, padding cut points sit far above the range), so the 5 → 20 schedule
(:func:`cut_points_at`) changes no shapes and compiles once.  Quality scores reported are
always the continuous ``q``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from sketchjax._checks import check_int, check_labels
from sketchjax._numerics import compute_dtype, to_rank

__all__ = [
    "KINDS",
    "QUALITY_RANGES",
    "GACLConfig",
    "lambda_g_lower_bound",
    "quality_from_norm",
    "class_cosines",
    "safe_arccos",
    "target_logit",
    "gacl_logits",
    "regulariser",
    "gacl_loss",
    "soft_bin",
    "cut_points_at",
    "quality_scores",
]

KINDS = ("scale", "mul", "add", "cos")
#: The paper's ``[l_q, u_q]`` per instantiation (G §3.3).
QUALITY_RANGES = {"scale": (0.1, 0.3), "mul": (1.1, 1.25), "add": (0.45, 0.65), "cos": (0.35, 0.8)}
_PAD_CUT = 1e6  # inactive cut points: far above any q, so their bins get no mass


def lambda_g_lower_bound(kind: str, l_q: float, u_q: float, s: float = 64.0, margin_scale: float = 1.0) -> float:
    """The smallest ``lambda_g`` for which ``dL/dq < 0`` at ``q = l_q`` for every ``theta_y <= pi/2`` (G-11..G-14).

    ``lambda_g |G'(l_q)| > c`` with ``G'(q) = -1/q^2 + 1/u_q^2`` and ``c`` the largest
    ``|dA/dq|``-driven push: ``s`` (scale, add), ``s pi / 2`` (mul, for ``theta <= pi/2``),
    ``margin_scale`` (cos).  For ``mul`` the push ``s theta sin(q theta)`` grows past
    ``theta = pi/2``: at ``l_q = 1.1`` its maximum over ``[0, pi]`` is 1.053 x ``s pi / 2``
    (at 106°), so just above this bound a sample at such an angle can still be pushed below
    ``l_q``; the default ``lambda_g`` (twice the bound) covers every angle.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown GACL kind {kind!r}; use one of {KINDS}")
    if not 0 < l_q < u_q < math.inf:
        raise ValueError(f"lambda_g_lower_bound needs 0 < l_q < u_q < inf, got l_q={l_q}, u_q={u_q}")
    for name, value in (("s", s), ("margin_scale", margin_scale)):  # a negative or NaN push gave a bound of that sign
        if not 0 < value < math.inf:
            raise ValueError(f"lambda_g_lower_bound needs a finite {name} > 0, got {value}")
    c = {"scale": s, "add": s, "mul": s * math.pi / 2.0, "cos": margin_scale}[kind]
    return c * l_q**2 * u_q**2 / (u_q**2 - l_q**2)


@dataclasses.dataclass(frozen=True)
class GACLConfig:
    """Settings of one GACL instantiation (hashable: a static argument of ``jit``).

    Attributes:
      kind: ``"scale"``, ``"mul"``, ``"add"`` or ``"cos"``.
      s: logit scale (64 in the paper).
      l_q, u_q: quality range; default the paper's for ``kind``.
      l_a, u_a: feature-norm range mapped onto ``[l_q, u_q]`` (10, 100).
      lambda_g: regulariser weight; default twice :func:`lambda_g_lower_bound`.  A value at
        or below the bound raises ``ValueError``.
      margin_scale: ``m`` in ``A = s cos theta - m q`` (``kind="cos"`` only): 1 as written
        in G-14, ``s`` for the margin in cosine units of G-17.
      eps: ``|cos| <= 1 - eps`` before ``arccos``.

    Changing settings: :meth:`replace` (also ``copy.replace`` on Python >= 3.13, and ``--set``
    overrides) derives the defaulted ``l_q``, ``u_q``, ``lambda_g`` anew for the new settings and
    keeps the ones the caller set (here or in an earlier ``replace``).  ``dataclasses.replace``
    copies every field as it stands, derived values included: ``dataclasses.replace(
    GACLConfig("scale"), kind="cos")`` keeps ``scale``'s range (or is refused by the bound).
    A config rebuilt from its fields (e.g. from JSON) has every value set.
    """

    kind: str = "cos"
    s: float = 64.0
    l_q: Optional[float] = None
    u_q: Optional[float] = None
    l_a: float = 10.0
    u_a: float = 100.0
    lambda_g: Optional[float] = None
    margin_scale: float = 1.0
    eps: float = 1e-6
    # names of the fields filled with their defaults, which replace() derives anew (not part
    # of eq / hash; carried as they are by dataclasses.replace)
    _defaulted: tuple = dataclasses.field(default=(), repr=False, compare=False)

    def replace(self, **changes) -> "GACLConfig":
        """A copy with ``changes``; the defaulted ``l_q``, ``u_q``, ``lambda_g`` not among them
        are derived anew (for a new ``kind``, ``s``, ``margin_scale`` or range)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if not f.name.startswith("_")}
        unknown = sorted(set(changes) - set(fields))
        if unknown:
            raise TypeError(f"GACLConfig.replace: unknown field(s) {unknown}")
        fields.update({name: None for name in self._defaulted})
        fields.update(changes)
        return GACLConfig(**fields)

    __replace__ = replace  # copy.replace (Python >= 3.13)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown GACL kind {self.kind!r}; use one of {KINDS}")
        defaulted = [name for name in ("l_q", "u_q", "lambda_g") if getattr(self, name) is None]
        # plain Python floats: a NumPy / JAX scalar (e.g. jnp.float32(0.5)) would make the
        # config unhashable as a static argument of jit, and a traced one cannot configure a head
        for name in ("s", "l_q", "u_q", "l_a", "u_a", "lambda_g", "margin_scale", "eps"):
            v = getattr(self, name)
            if v is None and name in ("l_q", "u_q", "lambda_g"):
                continue
            try:
                if isinstance(v, (str, bytes, bool, np.bool_)):  # True was taken as 1.0
                    raise TypeError
                object.__setattr__(self, name, float(v))
            except (TypeError, ValueError, jax.errors.ConcretizationTypeError):
                raise ValueError(f"GACL {self.kind}: {name} must be a number, got {v!r}") from None
        for name in ("s", "margin_scale", "eps"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v > 0):
                raise ValueError(f"GACL {self.kind}: {name} must be a finite number > 0, got {v}")
        if not self.eps < 1:
            raise ValueError(f"GACL {self.kind}: eps must be < 1, got {self.eps}")
        lo, hi = QUALITY_RANGES[self.kind]
        object.__setattr__(self, "l_q", lo if self.l_q is None else self.l_q)
        object.__setattr__(self, "u_q", hi if self.u_q is None else self.u_q)
        if not 0 < self.l_q < self.u_q < math.inf:
            raise ValueError(f"GACL {self.kind}: need 0 < l_q < u_q, got {self.l_q}, {self.u_q}")
        if not (0 <= self.l_a < self.u_a and math.isfinite(self.u_a)):
            raise ValueError(f"GACL {self.kind}: need 0 <= l_a < u_a, got {self.l_a}, {self.u_a}")
        if self.q_floor <= 0:
            raise ValueError(f"GACL {self.kind}: the norm map reaches q <= 0 at norm 0 ({self.q_floor:.3g}); "
                             "lower l_a or raise l_q")
        bound = self.lambda_g_bound
        if self.lambda_g is None:
            object.__setattr__(self, "lambda_g", 2.0 * bound)
        if not (self.lambda_g > bound and math.isfinite(self.lambda_g)):
            raise ValueError(f"GACL {self.kind}: lambda_g = {self.lambda_g} must exceed the lower bound {bound:.4g} "
                             f"(G-11..G-14, l_q={self.l_q}, u_q={self.u_q}, s={self.s}) and be finite")
        object.__setattr__(self, "_defaulted", tuple(sorted(set(self._defaulted) | set(defaulted))))

    @property
    def lambda_g_bound(self) -> float:
        return lambda_g_lower_bound(self.kind, self.l_q, self.u_q, self.s, self.margin_scale)

    @property
    def q_floor(self) -> float:
        """``q`` at feature norm 0 (the smallest reachable)."""
        return self.l_q - self.l_a * (self.u_q - self.l_q) / (self.u_a - self.l_a)


def _wide(x) -> jax.Array:
    """``x`` in :func:`~sketchjax._numerics.compute_dtype` (bfloat16 / float16 stay too coarse for
    ``q``: a bfloat16 norm near 30 steps by 0.125, i.e. ~0.6% of ``cos``'s quality range per step)."""
    return jnp.asarray(x).astype(compute_dtype(x))


def quality_from_norm(norm: jax.Array, cfg: GACLConfig) -> jax.Array:
    """``q = l_q + (a - l_a) (u_q - l_q) / (u_a - l_a)`` (not clipped; see the module docstring),
    in at least float32."""
    return cfg.l_q + (_wide(norm) - cfg.l_a) * ((cfg.u_q - cfg.l_q) / (cfg.u_a - cfg.l_a))


def _smoothed_norm(x: jax.Array, axis: int, eps: float = 1e-12) -> jax.Array:
    # sqrt(sum x^2 + tiny): a finite gradient at x = 0 (a zero feature: ReLU features can be 0) and,
    # unlike sketchjax._numerics.safe_norm (0 at 0), never 0 -- it divides the cosines below.
    # Scaled by c = max(max|x|, 1) (a constant to autodiff): the same function, exactly so for
    # |x| <= 1, whose squares cannot overflow (float32 x^2 does from |x| ~ 1.8e19).  Its rounding
    # differs from the plain sqrt(sum x^2 + eps)'s, and so do GACL training runs from the first
    # step: runs trained before this guard (2026-12-04) reproduce statistically, not to the digit
    # (RESULTS.md §4; a power-of-two c, exact by itself, changed a training run's rounding too).
    c = jax.lax.stop_gradient(jnp.maximum(jnp.max(jnp.abs(x), axis=axis), 1.0))
    return c * jnp.sqrt(jnp.sum(jnp.square(x / jnp.expand_dims(c, axis)), axis=axis) + eps / jnp.square(c))


def class_cosines(features: jax.Array, class_weights: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(cos float32[B, C], norm float32[B])``: cosines between features ``[B, D]`` and the
    columns of ``class_weights [D, C]``, and the raw feature norms ``||f(x)||``.

    Computed in at least float32 (the head of a bfloat16 / float16 backbone too: the loss and
    ``q`` need the precision), float64 when the inputs are."""
    if np.ndim(class_weights) != 2 or np.ndim(features) < 1 or np.shape(features)[-1] != np.shape(class_weights)[0]:
        raise ValueError(f"class_cosines: need features [..., D] and class_weights [D, C], got "
                         f"{np.shape(features)} and {np.shape(class_weights)}")
    features, class_weights = _wide(features), _wide(class_weights)
    norm = _smoothed_norm(features, -1)
    w = class_weights / _smoothed_norm(class_weights, 0)[None, :]
    cos = (features @ w) / norm[..., None]  # [..., D] features: also one unbatched example (vmap)
    return cos, norm


def safe_arccos(cos: jax.Array, eps: float = 1e-6) -> jax.Array:
    """``arccos(clip(cos, -1 + eps, 1 - eps))``: finite values and gradients at ``cos = ±1``.

    Computed in at least float32 (in bfloat16 / float16 ``1 - 1e-6`` rounds to 1, where the
    gradient is infinite) and returned in the input's floating type."""
    cos = jnp.asarray(cos)
    dtype = cos.dtype if jnp.issubdtype(cos.dtype, jnp.floating) else jnp.float32
    return jnp.arccos(jnp.clip(_wide(cos), -1.0 + eps, 1.0 - eps)).astype(dtype)


def target_logit(q: jax.Array, cos_y: jax.Array, cfg: GACLConfig) -> jax.Array:
    """``A(q, theta_y)`` of :attr:`GACLConfig.kind` (table in the module docstring)."""
    s = cfg.s
    if cfg.kind == "scale":
        return (1.0 - q) * s * cos_y
    if cfg.kind == "cos":
        return s * cos_y - cfg.margin_scale * q
    theta = safe_arccos(cos_y, cfg.eps)
    if cfg.kind == "mul":
        return s * jnp.cos(q * theta)
    return s * jnp.cos(theta + q)  # add


def _check_batch(name: str, cos, labels=None, **per_example) -> None:
    """``cos [B, C]``; ``labels`` and every other array (None skipped) ``[B]`` — shapes always
    (broadcasting would pair the wrong rows); concrete labels integers in ``[0, C)``."""
    shape = np.shape(cos)
    if len(shape) != 2:
        raise ValueError(f"{name}: cos must be [B, C], got shape {shape}")
    for key, value in dict(labels=labels, **per_example).items():
        if value is not None and np.shape(value) != shape[:1]:
            raise ValueError(f"{name}: {key} must have shape ({shape[0]},) (one per row of cos), got {np.shape(value)}")
    check_labels(name, labels, shape[1])


def gacl_logits(cos: jax.Array, q: jax.Array, labels: jax.Array, cfg: GACLConfig,
                margin_weight: Optional[jax.Array] = None) -> jax.Array:
    """Training logits ``float32[B, C]``: ``s cos theta_j``, with ``A(q, theta_y)`` at the label.

    ``margin_weight`` ``r`` in ``[0, 1]`` (may be traced; None = 1) blends the target logit
    ``r A(q, theta_y) + (1 - r) s cos theta_y``: 0 gives the plain normalised softmax's logits,
    1 GACL's — a warm-up ramps ``r`` from 0 to 1 (:func:`gacl_loss` weights the regulariser
    with the same ``r``).
    """
    _check_batch("gacl_logits", cos, labels, q=q)
    labels = jnp.asarray(labels, jnp.int32)
    cos_y = jnp.take_along_axis(cos, labels[:, None], axis=-1)[:, 0]
    target = target_logit(q, cos_y, cfg)
    if margin_weight is not None:
        if np.ndim(margin_weight) not in (0, 1) or (np.ndim(margin_weight) == 1 and np.shape(margin_weight) != np.shape(cos)[:1]):
            raise ValueError(f"gacl_logits: margin_weight must be a scalar or one per row ({np.shape(cos)[0]},), got "
                             f"shape {np.shape(margin_weight)}")
        if not isinstance(margin_weight, jax.core.Tracer) and not np.all((np.asarray(margin_weight) >= 0)
                                                                           & (np.asarray(margin_weight) <= 1)):
            raise ValueError(f"gacl_logits: margin_weight must lie in [0, 1], got {margin_weight}")
        target = margin_weight * target + (1.0 - margin_weight) * (cfg.s * cos_y)
    onehot = jax.nn.one_hot(labels, cos.shape[-1], dtype=bool)
    return jnp.where(onehot, target[:, None], cfg.s * cos)


def regulariser(q: jax.Array, u_q: float) -> jax.Array:
    """``G(q) = 1/q + q/u_q^2`` (G-10); minimum ``2/u_q`` at ``q = u_q``."""
    return 1.0 / q + q / (u_q * u_q)


def soft_bin(q: jax.Array, n_cuts: jax.Array, l_q: float, u_q: float, tau: float = 0.1 / 64,
             max_cuts: int = 20, tau_width: Optional[float] = None) -> jax.Array:
    """Soft binning of ``q`` (G-18) with ``n_cuts`` equally spaced cut points in ``(l_q, u_q)``.

    Args:
      q: ``float32[...]`` quality values.
      n_cuts: active cut points, an integer ``1 <= n_cuts <= max_cuts`` (may be traced: then
        clipped into that range; a concrete value outside it, or not whole, raises ``ValueError``).
      tau: temperature; ``q_hat`` approaches the midpoint of ``q``'s bin as ``tau → 0``.
        The default makes the transition between two bins about 1% of the range of ``cos``'s
        ``[l_q, u_q]`` wide — a staircase: ``q_hat`` is flat inside each bin (see
        ``tau_width``).  May be traced (e.g. annealed inside a jitted step); a concrete value
        must be > 0.
      max_cuts: static size of the cut-point vector.
      tau_width: if given, the temperature is ``tau_width`` x the current bin width (``tau``
        ignored), so the staircase keeps its shape as the cut points multiply.  The slope of
        ``q_hat`` is about ``exp(-1 / (2 tau_width)) / tau_width`` per neighbouring cut point
        at a bin's middle (twice that in an inner bin, once in the two outer ones) and
        ``1 / (4 tau_width)`` at a cut point: with 1/8, 0.3 and 2 — gradients damped inside a
        bin, not zero.  An absolute ``tau`` far below the bin width (the default 0.1/64
        against widths 0.02-0.08 for ``cos``) leaves ``q_hat`` flat inside every bin, so the
        classification loss gives ``q`` no gradient at all while binning is on.

    Returns:
      ``q_hat`` with the shape of ``q`` (differentiable in ``q``).
    """
    if not any(isinstance(v, jax.core.Tracer) for v in (l_q, u_q)) and not (
            np.all(np.asarray(l_q) < np.asarray(u_q)) and np.all(np.isfinite(np.asarray([l_q, u_q], np.float64)))):
        raise ValueError(f"soft_bin needs finite l_q < u_q, got l_q={l_q}, u_q={u_q}")
    temperature = tau if tau_width is None else tau_width
    if not isinstance(temperature, jax.core.Tracer) and not np.all((np.asarray(temperature) > 0)  # also NaN
                                                                    & np.isfinite(np.asarray(temperature))):
        # inf gave the padding bins mass: q_hat far outside [l_q, u_q]
        raise ValueError(f"soft_bin: the temperature must be finite and > 0, got tau={tau}, tau_width={tau_width}")
    # a concrete count out of range is an error; a traced one is clipped into range
    if not isinstance(n_cuts, jax.core.Tracer):
        c = np.asarray(n_cuts)
        if np.any(c < 1) or np.any(c > max_cuts) or np.any(c != np.round(c)):
            raise ValueError(f"soft_bin: n_cuts must be a whole number in [1, max_cuts={max_cuts}], got {n_cuts}")
    n = jnp.clip(jnp.asarray(n_cuts, jnp.float32), 1.0, float(max_cuts))
    i = jnp.arange(1, max_cuts + 1, dtype=jnp.float32)
    width = (u_q - l_q) / (n + 1.0)
    if tau_width is not None:
        tau = tau_width * width
    beta = jnp.where(i <= n, l_q + i * width, _PAD_CUT)  # [max_cuts]
    # q of a diverging run near _PAD_CUT gave the padding bins mass (q_hat 1.3 for q = 1e6 with
    # [l_q, u_q] = [0.35, 0.8]); held 100x below it, the top active bin keeps that mass (every
    # q below the cap, i.e. every trained run's, computes as before)
    q = jnp.minimum(q, _PAD_CUT / 100)
    w = jnp.arange(1, max_cuts + 2, dtype=jnp.float32)  # [max_cuts + 1]
    b = jnp.concatenate([jnp.zeros((1,), beta.dtype), -jnp.cumsum(beta)])
    centres = l_q + (jnp.arange(max_cuts + 1, dtype=jnp.float32) + 0.5) * width  # bin k: [l_q + k w, l_q + (k+1) w]
    q = q[..., None]  # [..., 1] against the [max_cuts + 1] bins
    w, b, centres = (to_rank(v, q.ndim) for v in (w, b, centres))
    logits = (q * w + b) / tau
    o = jax.nn.softmax(logits, axis=-1)
    return jnp.sum(o * centres, axis=-1)


def cut_points_at(epoch, num_epochs: int, start: int = 5, end: int = 20, hold_epochs: int = 5) -> jax.Array:
    """The paper's schedule (G §4): ``start`` cut points for the first ``hold_epochs`` epochs,
    then linearly in the (fractional, possibly traced) epoch from ``start`` at ``hold_epochs`` to
    ``end`` at ``num_epochs - 1`` — the start of the last epoch, held through it — rounded.  The
    ramp lasts at least one epoch: a run of ``hold_epochs + 1`` epochs ramps within its last epoch
    (6 epochs: 5 cut points at 5.0, 12 at 5.5, 19 at 5.9), and a run of at most ``hold_epochs``
    epochs stays at ``start``."""
    for name, v, low in (("num_epochs", num_epochs, 1), ("start", start, 1), ("end", end, 1), ("hold_epochs", hold_epochs, 0)):
        check_int("cut_points_at", name, v, low)
    if not isinstance(epoch, jax.core.Tracer) and not np.all(np.asarray(epoch, np.float64) >= 0):  # also NaN
        # NaN gave 0 cut points (soft_bin refuses 0), a negative epoch `start` quietly
        raise ValueError(f"cut_points_at: epoch must be a number >= 0, got {epoch}")
    e = jnp.asarray(epoch, jnp.float32)
    span = max(num_epochs - 1 - hold_epochs, 1)
    frac = jnp.clip((e - hold_epochs) / span, 0.0, 1.0)
    return jnp.where(e < hold_epochs, start, jnp.round(start + frac * (end - start))).astype(jnp.int32)


def gacl_loss(
    cos: jax.Array,
    norm: jax.Array,
    labels: jax.Array,
    cfg: GACLConfig,
    *,
    n_cuts: Optional[jax.Array] = None,
    tau: float = 0.1 / 64,
    weights: Optional[jax.Array] = None,
    tau_width: Optional[float] = None,
    margin_weight: Optional[jax.Array] = None,
    max_cuts: int = 20,
) -> tuple[jax.Array, dict]:
    """GACL loss of a batch and its per-example parts.

    Args:
      cos, norm: :func:`class_cosines` of the batch's features (``[B, C]``, ``[B]``).
      labels: ``int[B]`` in ``[0, C)`` — checked when concrete; under ``jit`` an index out of
        range is not detected (-1 would pick the last class).
      cfg: the instantiation.
      n_cuts: soft-binning cut points (traced ok); None: no binning (``q`` used as is).
      max_cuts: :func:`soft_bin`'s static bound (a traced ``n_cuts`` above it is clipped to it,
        a concrete one refused).
      tau: soft-binning temperature.
      tau_width: temperature relative to the bin width instead (see :func:`soft_bin`).
      weights: ``float32[B]`` example weights (e.g. a padding mask); default all 1.  The loss
        is ``sum(w l) / sum(w)`` (0 when every weight is 0).  A weight of 0 does not mask a
        non-finite row (``0 x NaN`` is NaN, in the loss and in its gradient): padding rows
        need finite features (e.g. those of a blank input), which every batch here has.
      margin_weight: ``r`` in ``[0, 1]`` for a warm-up (may be traced; None = 1): the target
        logit is blended (:func:`gacl_logits`) and the regulariser weighted ``r lambda_g``, so
        at every ``r`` the loss is GACL at strength ``r`` — ``lambda_g``'s lower bound is
        linear in the margin's push, so ``r lambda_g`` stays above the bound of the blended
        margin.  0: the plain normalised softmax, ``q`` free.

    Returns:
      ``(loss, parts)``: the weighted mean of ``cross_entropy + lambda_g G(q)`` and a dict of
      per-example ``ce``, ``reg``, ``q`` (continuous), ``q_used`` (binned or not), ``cos_y``
      and the training ``logits``.  ``G`` is applied to the continuous ``q``.
    """
    _check_batch("gacl_loss", cos, labels, norm=norm, weights=weights)
    if weights is not None and not isinstance(weights, jax.core.Tracer) and not np.all(
            (np.asarray(weights, np.float64) >= 0) & np.isfinite(np.asarray(weights, np.float64))):
        # also NaN and inf (a NaN loss); weights summing to 0 with a negative one gave a difference of losses
        w = np.asarray(weights, np.float64).ravel()
        raise ValueError(f"gacl_loss: weights must be >= 0 and finite (example weights or a padding mask), got "
                         f"{w[np.flatnonzero(~((w >= 0) & np.isfinite(w)))[0]]} among them")
    q = quality_from_norm(norm, cfg)
    q_used = q if n_cuts is None else soft_bin(q, n_cuts, cfg.l_q, cfg.u_q, tau, max_cuts=max_cuts, tau_width=tau_width)
    labels = jnp.asarray(labels, jnp.int32)
    logits = gacl_logits(cos, q_used, labels, cfg, margin_weight)
    ce = -jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), labels[:, None], axis=-1)[:, 0]
    reg = regulariser(q, cfg.u_q)
    lam = cfg.lambda_g if margin_weight is None else cfg.lambda_g * margin_weight
    per_example = ce + lam * reg
    wts = jnp.ones_like(per_example) if weights is None else jnp.asarray(weights, per_example.dtype)
    total = jnp.sum(wts)
    loss = jnp.sum(per_example * wts) / jnp.where(total > 0, total, 1.0)
    cos_y = jnp.take_along_axis(cos, labels[:, None], axis=-1)[:, 0]
    return loss, {"ce": ce, "reg": reg, "q": q, "q_used": q_used, "cos_y": cos_y, "logits": logits}


def quality_scores(cos: jax.Array, norm: jax.Array, cfg: GACLConfig) -> tuple[jax.Array, jax.Array, jax.Array]:
    """``(q, cos_theta_pred, pred)`` from :func:`class_cosines`: the continuous quality score,
    the cosine to the predicted class and the predicted class (argmax of ``cos theta_j``, how
    a GACL classifier predicts at test time).  A row with a NaN cosine (only from NaN weights or
    features) gets a NaN ``cos_theta_pred`` and the index of its first NaN as ``pred`` (argmax's
    rule; integer outputs have no NaN), so test ``cos_theta_pred`` for NaN, not ``pred``."""
    if np.ndim(cos) < 1 or np.shape(norm) != np.shape(cos)[:-1] or np.shape(cos)[-1] < 1:
        raise ValueError(f"quality_scores: need cos [..., C] with C >= 1 classes and norm [...] (one per row), got "
                         f"{np.shape(cos)}, {np.shape(norm)}")
    return quality_from_norm(norm, cfg), jnp.max(cos, axis=-1), jnp.argmax(cos, axis=-1)
