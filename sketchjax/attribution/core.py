"""Stroke- and point-level attribution (SPEC §3): SLA, P-SLA and the baselines.

Every method explains a **score function** ``score_fn(images, aux) -> float32[N]``: a batch
of model inputs ``[N, H, W]`` (and ``aux``, any pytree with leading dimension ``N``, e.g.
the class to explain) to one scalar per row — a class logit, a log-probability, a cosine
similarity to a photo embedding, a quality score.  It must treat rows independently (no
batch statistics), so that the gradient of the batch sum is every row's own gradient: one
backward pass explains a whole batch.  :func:`class_score` builds one from a classifier,
:func:`cosine_score` from an encoder and target embeddings (a function of a latent).

Stroke methods take per-stroke canvas rasters ``S: float32[B, K, H, W]``
(:func:`sketchjax.render.stroke_rasters`, :meth:`sketchjax.render.RasterRecipe.stroke_rasters`)
and a ``finish`` map from composed canvas rasters to model inputs (e.g. the recipe's
area-downsampling); point methods take the sketch arrays and a differentiable ``render_fn``
(:meth:`sketchjax.render.RasterRecipe.distance`).

* :func:`sla` — ``A_k = dF/dw_k`` at ``w = 1`` through :func:`sketchjax.render.compose`
  (Eqs. 2-4): one forward + one backward pass; :func:`sla_sketch` — the same numbers from
  the sketch and its :class:`~sketchjax.render.RasterRecipe` without ``K`` stroke rasters.
* :func:`psla` — ``dF/dxy_t`` and ``dF/dpen_t`` through the distance-field raster (Eq. 6):
  one forward + one backward pass; point importance ``||dF/dxy_t||`` and stroke sums.
* :func:`occlusion` — exact leave-one-stroke-out ``F(all) - F(all but k)``: ``K`` forwards
  (:func:`occlusion_sketch`: from the sketch and its recipe).
* :func:`integrated_gradients` — over stroke weights from 0 to 1: ``steps`` passes.
* :func:`smoothgrad` — P-SLA gradients averaged over Gaussian point jitter.
* :func:`random_attribution` — the chance baseline.

Strokes that draw no pixel (single-point strokes, padding slots beyond the sketch) get
attribution 0 from every stroke method; :func:`present_strokes` tells them apart.

Input checks (SPEC §1: a clear ``ValueError`` naming the function, the batch index and the
problem): shapes are always checked, and every ``aux`` leaf must have leading dimension
``B``.  Values are checked only when the inputs are concrete arrays — called eagerly, not
under ``jit``/``vmap``/``grad``, where they are tracers and the check is skipped (the
functions stay jit-compatible; validate data before tracing, e.g. with
:func:`sketchjax.sketch.check_sketch`): ``xy`` and ``pen`` on valid points must be finite
and ``|xy| <= MAX_ABS_COORD`` (:class:`~sketchjax.sketch.SketchError`), ``stroke_images``
must be finite.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np

from sketchjax.render.compose import clamp_unit, compose
from sketchjax.render.recipe import RasterRecipe
from sketchjax._checks import check_key, check_labels, check_positive_int
from sketchjax._numerics import safe_norm
from sketchjax.sketch import check_points, segment_mask, stroke_one_hot

__all__ = [
    "ScoreFn",
    "StrokeAttribution",
    "PointAttribution",
    "class_score",
    "cosine_score",
    "present_strokes",
    "drawing_strokes",
    "sla",
    "occlusion",
    "sla_sketch",
    "occlusion_sketch",
    "integrated_gradients",
    "random_attribution",
    "psla",
    "smoothgrad",
    "point_to_stroke",
]

ScoreFn = Callable[[jax.Array, Any], jax.Array]
Finish = Optional[Callable[[jax.Array], jax.Array]]


class StrokeAttribution(NamedTuple):
    """``score``: ``float32[B]`` the score of the sketch the stroke images compose (its first
    ``K`` strokes: a sketch with more strokes than ``max_strokes`` is scored without the rest);
    ``strokes``: ``float32[B, K]``."""

    score: jax.Array
    strokes: jax.Array


class PointAttribution(NamedTuple):
    """Point-level attribution of a batch of sketches.

    Attributes:
      score: ``float32[B]`` the score of the sketch as rendered.
      xy: ``float32[B, T, 2]`` ``dF/dxy`` (0 on padding).
      pen: ``float32[B, T]`` ``dF/dpen`` (0 on padding).  Through the pen-up penalty
        ``(1 - pen) * 1e6`` of Eq. 5 (``PEN_UP_PENALTY``), so typically 1e4-1e6 times larger
        than ``xy``'s; a finite-difference check needs steps of ~1e-9 or less.
      points: ``float32[B, T]`` scalar point importance (``||dF/dxy_t||_2`` by default).
      strokes: ``float32[B, K]`` point importances aggregated per stroke.

    (float32, or float64 for float64 coordinates; integer, bfloat16 and float16 coordinates are
    explained in float32.)
    """

    score: jax.Array
    xy: jax.Array
    pen: jax.Array
    points: jax.Array
    strokes: jax.Array


def class_score(apply_fn: Callable[[jax.Array], jax.Array], kind: str = "logit") -> ScoreFn:
    """A :data:`ScoreFn` explaining class ``aux[i]`` of a classifier for row ``i``.

    Args:
      apply_fn: ``images [N, H, W] -> logits [N, C]`` (e.g. ``partial(model.apply, variables)``).
      kind: ``"logit"``, ``"log_prob"`` (log-softmax) or ``"prob"`` (softmax).
    """
    if kind not in ("logit", "log_prob", "prob"):
        raise ValueError(f"unknown score kind {kind!r}; use 'logit', 'log_prob' or 'prob'")

    def score_fn(images: jax.Array, labels: jax.Array) -> jax.Array:
        logits = apply_fn(images)
        if jnp.ndim(logits) < 1 or jnp.shape(labels) != jnp.shape(logits)[:-1]:
            raise ValueError(f"class_score: the classes to explain (aux) must be one integer per row, shape "
                             f"{jnp.shape(logits)[:-1]} for logits of shape {jnp.shape(logits)}, got shape "
                             f"{jnp.shape(labels)}")
        check_labels("class_score", labels, logits.shape[-1], "the classes to explain (aux)")
        if kind == "log_prob":
            logits = jax.nn.log_softmax(logits, axis=-1)
        elif kind == "prob":
            logits = jax.nn.softmax(logits, axis=-1)
        return jnp.take_along_axis(logits, jnp.asarray(labels, jnp.int32)[:, None], axis=-1)[:, 0]

    return score_fn


def cosine_score(encode_fn: Callable[[jax.Array], jax.Array], eps: float = 1e-8) -> ScoreFn:
    """A :data:`ScoreFn` of a latent: cosine similarity of ``encode_fn(images)`` with ``aux``.

    ``encode_fn: images [N, H, W] -> latents [N, D]``; ``aux``: target embeddings ``[N, D]``
    (e.g. the photo a sketch should match in retrieval, E §5.1-5.2).
    """

    def score_fn(images: jax.Array, targets: jax.Array) -> jax.Array:
        z = encode_fn(images)
        t = jnp.asarray(targets, z.dtype)
        num = jnp.sum(z * t, axis=-1)
        return num / jnp.maximum(safe_norm(z) * safe_norm(t), eps)

    return score_fn


def present_strokes(stroke_images: jax.Array) -> jax.Array:
    """``bool[B, K]``: stroke ``k`` draws at least one pixel."""
    return jnp.any(stroke_images > 0, axis=(-2, -1))


def drawing_strokes(pen: jax.Array, valid: jax.Array, max_strokes: int) -> jax.Array:
    """``bool[B, max_strokes]``: stroke ``k`` has a drawn segment (from the sketch, no raster).

    The same as :func:`present_strokes` of the stroke rasters when the drawing lies on the
    canvas (a fitted recipe with padding > 0), since every drawn segment then inks at least one
    pixel; with padding 0 a stroke along the right or bottom edge lies on ``x = canvas`` and
    draws nothing in the Bresenham forms (:class:`~sketchjax.render.RasterRecipe`).
    """
    # a segment belongs to the stroke of its start point
    return jnp.any(segment_mask(pen, valid)[..., None] & stroke_one_hot(pen, valid, max_strokes)[..., :-1, :], axis=-2)


def _traced(*xs) -> bool:
    """Any of ``xs`` is a tracer (inside ``jit``/``vmap``/``grad``): its values are unknown."""
    return any(isinstance(x, jax.core.Tracer) for x in xs)


def _first_non_finite(x: jax.Array) -> Optional[tuple[int, int]]:
    """``(b, k)`` of the first ``[B, K, ...]`` entry holding a NaN/inf, None if all are finite or
    ``x`` is traced (values unknown under ``jit``/``vmap``/``grad``)."""
    if _traced(x):
        return None
    # Reduced on x's device (only [B, K] comes back); a concrete x closed over inside an outer
    # jit is evaluated now, not staged into that trace.
    with jax.ensure_compile_time_eval():
        finite = np.asarray(jnp.all(jnp.isfinite(jnp.asarray(x)), axis=tuple(range(2, jnp.ndim(x)))))  # [B, K]
    return None if finite.all() else tuple(int(i) for i in np.argwhere(~finite)[0])


def _check_strokes(stroke_images: jax.Array, name: str) -> jax.Array:
    """Shape ``[B, K, H, W]``; when concrete, finite (the first bad batch index is named).
    Returns the images as a floating array (integer / bool images as float32: gradients need a
    floating type)."""
    if jnp.ndim(stroke_images) != 4:
        raise ValueError(f"{name}: stroke_images must be [B, K, H, W], got shape {jnp.shape(stroke_images)}")
    bad = _first_non_finite(stroke_images)
    if bad is not None:
        raise ValueError(f"{name}: stroke_images at batch index {bad[0]}: non-finite value (NaN/inf) in stroke {bad[1]}")
    return _floating(stroke_images)


def _floating(x) -> jax.Array:
    """``x`` as a JAX array of a floating type (integers and bools become float32)."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(jnp.float32)


def _point_floats(xy) -> jax.Array:
    """Point coordinates in at least float32 (integers, bfloat16 and float16 as float32)."""
    xy = jnp.asarray(xy)
    return xy.astype(_at_least_f32(xy.dtype))


def _at_least_f32(dtype) -> np.dtype:
    """``dtype`` if a float of >= 32 bits, else float32 (integers, bool, bfloat16, float16);
    no implicit promotion (works under ``jax_numpy_dtype_promotion='strict'``)."""
    dtype = np.dtype(dtype)
    return dtype if jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize >= 4 else np.dtype(np.float32)


def _check_aux(aux: Any, n: int, name: str) -> None:
    """Every ``aux`` leaf has leading dimension ``n`` (one row per sketch); shapes only."""
    for path, leaf in jax.tree_util.tree_leaves_with_path(aux):
        shape = np.shape(leaf)
        if len(shape) == 0 or shape[0] != n:
            where = f" (leaf {jax.tree_util.keystr(path)})" if path else ""
            raise ValueError(
                f"{name}: every aux leaf needs leading dimension B = {n} (one row per sketch); "
                f"got shape {tuple(shape)}{where}"
            )


def _scores(score_fn: ScoreFn, images: jax.Array, aux: Any, n: int, name: str) -> jax.Array:
    """``score_fn(images, aux)`` checked to be one finite-typed scalar per row: ``float32[n]``."""
    _check_aux(aux, n, name)
    out = score_fn(images, aux)
    if jnp.shape(out) != (n,):
        raise ValueError(f"{name}: score_fn must return one scalar per image, shape ({n},); got {jnp.shape(out)}")
    return out


def _repeat(aux: Any, k: int) -> Any:
    """Each row of every ``aux`` leaf repeated ``k`` times (rows ``b*k .. b*k+k-1``)."""
    return jax.tree.map(lambda a: jnp.repeat(jnp.asarray(a), k, axis=0), aux)


def _finished(finish: Finish, images: jax.Array) -> jax.Array:
    return images if finish is None else finish(images)


def _weighted_scores(score_fn: ScoreFn, stroke_images, weights, aux, finish: Finish, name: str):
    """Scores of the compositions ``compose(S_b, weights_b)``: ``float32[B]``."""
    images = _finished(finish, compose(stroke_images, weights))
    return _scores(score_fn, images, aux, stroke_images.shape[0], name)


def sla(
    score_fn: ScoreFn,
    stroke_images: jax.Array,
    aux: Any = None,
    *,
    finish: Finish = None,
    weights: Optional[jax.Array] = None,
) -> StrokeAttribution:
    """Stroke-level attribution (SLA, Eqs. 2-4): ``A_k = dF/dw_k`` at ``w`` (default 1).

    ``F(w) = score_fn(finish(compose(S, w)), aux)``; the composition's clamp passes the full
    gradient to a pixel inked by one stroke and none where strokes overlap (SPEC §2.2), so
    ``A_k = sum_pixels dF/dX * S_k`` over the pixels stroke ``k`` alone inks.  One forward and
    one backward pass for the batch.

    Args:
      score_fn: see the module docstring.
      stroke_images: ``float32[B, K, H, W]`` per-stroke canvas rasters.
      aux: per-row argument of ``score_fn`` (leading dimension ``B``).
      finish: canvas raster ``[B, H, W]`` → model input (default: none).
      weights: ``float32[B, K]`` the point of evaluation (default all ones; integers are
        taken as float32, and the attribution is at least float32).  Where the
        weighted strokes inking a pixel sum to exactly 1 (e.g. two overlapping strokes at
        ``w = 0.5``) the clamp has a kink and the gradient is its left derivative.
    Raises:
      ValueError: bad shapes, an ``aux`` leaf without leading dimension ``B``, or (concrete
        inputs only; skipped under ``jit``) non-finite ``stroke_images`` — naming the batch index.
    """
    stroke_images = _check_strokes(stroke_images, "sla")
    if weights is not None:
        if jnp.shape(weights) != stroke_images.shape[:2]:
            raise ValueError(f"sla: weights must be [B, K] = {stroke_images.shape[:2]}, got {jnp.shape(weights)}")
        bad = _first_non_finite(weights)
        if bad is not None:
            raise ValueError(f"sla: weights at batch index {bad[0]}: non-finite value (NaN/inf) for stroke {bad[1]}")
    # in at least float32 (bfloat16 stroke images gave bfloat16 attributions; integer weights
    # cannot be differentiated)
    w = (jnp.ones(stroke_images.shape[:2], _at_least_f32(stroke_images.dtype)) if weights is None
         else jnp.asarray(weights, _at_least_f32(jnp.result_type(weights))))

    def total(w):
        s = _weighted_scores(score_fn, stroke_images, w, aux, finish, "sla")
        return jnp.sum(s), s

    grads, score = jax.grad(total, has_aux=True)(w)
    return StrokeAttribution(score, jnp.where(present_strokes(stroke_images), grads, 0.0))


def occlusion(score_fn: ScoreFn, stroke_images: jax.Array, aux: Any = None, *, finish: Finish = None) -> StrokeAttribution:
    """Exact leave-one-stroke-out: ``A_k = F(all strokes) - F(all strokes but k)``.

    The sketch without stroke ``k`` is ``clamp(sum_j S_j - S_k)`` — pixel-for-pixel the raster
    of the sketch with stroke ``k`` deleted, drawn in the full sketch's frame (re-fitting the
    shortened sketch to the canvas, as ``RasterRecipe(fit=True)`` would if called on it, moves
    and rescales the remaining strokes: a different, larger change).  Costs ``K + 1`` forward passes per sketch (all
    evaluated as one batch of ``B (K + 1)`` images; memory ``B K H W`` floats).
    Raises: as :func:`sla`.
    """
    stroke_images = _check_strokes(stroke_images, "occlusion")
    total = jnp.sum(stroke_images, axis=1)
    images = jnp.concatenate([total[:, None], total[:, None] - stroke_images], axis=1)  # [B, 1 + K, H, W]
    full, reduced = _leave_one_out_scores(score_fn, clamp_unit(images), aux, finish, "occlusion")
    return StrokeAttribution(full, jnp.where(present_strokes(stroke_images), full[:, None] - reduced, 0.0))


def _stack_scores(score_fn, images, aux, finish, name):
    """Scores ``float32[B, M]`` of a stack of canvas rasters ``[B, M, H, W]`` (row ``b``'s ``aux``
    for all ``M``), evaluated as one batch of ``B M`` images."""
    b, m = images.shape[:2]
    _check_aux(aux, b, name)  # before repeating: a scalar would repeat to a plausible [B M]
    flat = _finished(finish, images.reshape((b * m,) + images.shape[2:]))
    return _scores(score_fn, flat, _repeat(aux, m), b * m, name).reshape(b, m)


def _leave_one_out_scores(score_fn, images, aux, finish, name):
    """Scores of ``images [B, 1 + K, H, W]`` (the full sketch, then without each stroke) as one
    batch, so that a stroke whose removal changes no pixel gets exactly ``full - full = 0``."""
    s = _stack_scores(score_fn, images, aux, finish, name)
    return s[:, 0], s[:, 1:]


def _cover(recipe, xy, pen, valid, max_strokes):
    """Canvas raster ``[B, H, W]`` and ``(owner, single)``: the stroke inking a pixel alone."""
    lowest, highest = recipe.stroke_cover(xy, pen, valid)
    ink = (highest >= 0).astype(jnp.float32)
    single = (lowest == highest) & (highest >= 0) & (highest < max_strokes)
    return ink, jnp.where(single, highest, -1)


def sla_sketch(
    score_fn: ScoreFn, recipe, xy: jax.Array, pen: jax.Array, valid: jax.Array, aux: Any = None, *, max_strokes: int
) -> StrokeAttribution:
    """:func:`sla` at ``w = 1`` computed from the sketch, without per-stroke rasters.

    ``A_k = sum over the canvas pixels inked by stroke k alone of dF/dX``, from one pixel
    gradient and :meth:`~sketchjax.render.RasterRecipe.stroke_cover` (two rasters whatever
    ``K``): memory and cost of about three forward passes.  When ``max_strokes`` covers every
    stroke this equals ``sla(score_fn, recipe.stroke_rasters(xy, pen, valid, K), aux,
    finish=recipe.finish)``.  Otherwise the two differ on purpose: here strokes with index
    ``>= max_strokes`` stay in the image (the model sees the real sketch) and get no
    attribution, while :func:`sla` on truncated stroke rasters explains a sketch without them.

    Args:
      recipe: a :class:`~sketchjax.render.RasterRecipe` (Bresenham forms).
      max_strokes: ``K``, the width of ``strokes`` (static).
    Raises:
      ValueError: bad shapes or an ``aux`` leaf without leading dimension ``B``;
        :class:`~sketchjax.sketch.SketchError` (concrete inputs only; skipped when traced under
        ``jit``/``vmap``) for a NaN/inf or out-of-range coordinate or pen state on a valid
        point, naming the batch index and the point.
    """
    _check_points(xy, pen, valid, "sla_sketch", max_strokes, renderer=recipe)
    ink, owner = _cover(recipe, xy, pen, valid, max_strokes)
    b = ink.shape[0]

    def total(x):
        s = _scores(score_fn, recipe.finish(x), aux, b, "sla_sketch")
        return jnp.sum(s), s

    g, score = jax.grad(total, has_aux=True)(ink)
    seg = jnp.where(owner >= 0, owner + max_strokes * jnp.arange(b)[:, None, None], b * max_strokes)
    sums = jax.ops.segment_sum(g.reshape(-1), seg.reshape(-1), num_segments=b * max_strokes + 1)
    return StrokeAttribution(score, sums[:-1].reshape(b, max_strokes))


def occlusion_sketch(
    score_fn: ScoreFn, recipe, xy: jax.Array, pen: jax.Array, valid: jax.Array, aux: Any = None, *, max_strokes: int
) -> StrokeAttribution:
    """:func:`occlusion` computed from the sketch: the raster without stroke ``k`` is the raster
    with the pixels stroke ``k`` inks alone erased (no per-stroke Bresenham rasters; the
    ``1 + K`` images are still formed, ``B (1 + K) H W`` floats, for ``1 + K`` forwards).
    Equal to ``occlusion(score_fn, recipe.stroke_rasters(...), aux, finish=recipe.finish)`` when
    ``max_strokes`` covers every stroke; strokes beyond it stay in the image (see :func:`sla_sketch`).
    Raises: as :func:`sla_sketch`.
    """
    _check_points(xy, pen, valid, "occlusion_sketch", max_strokes, renderer=recipe)
    ink, owner = _cover(recipe, xy, pen, valid, max_strokes)
    # slot 0 keeps the full sketch: -2 matches no pixel (owner is a stroke index or -1)
    ks = jnp.concatenate([jnp.array([-2]), jnp.arange(max_strokes)])[None, :, None, None]
    images = jnp.where(owner[:, None] == ks, 0.0, ink[:, None])  # [B, 1 + K, H, W]
    full, reduced = _leave_one_out_scores(score_fn, images, aux, recipe.finish, "occlusion_sketch")
    return StrokeAttribution(full, jnp.where(drawing_strokes(pen, valid, max_strokes), full[:, None] - reduced, 0.0))


def integrated_gradients(
    score_fn: ScoreFn, stroke_images: jax.Array, aux: Any = None, *, steps: int = 32, finish: Finish = None
) -> StrokeAttribution:
    """Integrated gradients over stroke weights on the path ``w = alpha * 1``, ``alpha: 0 → 1``.

    ``IG_k = integral_0^1 dF/dw_k(alpha) d alpha`` by the midpoint rule with ``steps`` nodes
    (a scan: memory of one pass, cost ``steps`` forward + backward passes).  Completeness:
    ``sum_k IG_k → F(1) - F(0)`` (the empty canvas) as ``steps`` grows — slowly for models
    whose score is steep next to the blank canvas: for the imported DoodleNet an audit found
    ``dF/dalpha ≈ -2e4`` at ``alpha = 0.002`` and the sum at 16.6 / -63.9 / 9.9 with 64 / 256 /
    1,024 steps against ``F(1) - F(0) = 7.15`` on one sketch; check completeness before trusting
    IG's magnitudes there.

    ``score_fn`` and ``finish`` are static, as ``jax.jit`` treats a function: called eagerly
    with the same (hashable) function object, the program compiled on the first call is reused,
    and values the function *captures* (a closure's variables, ``self.params`` of a bound
    method) are read once, when it is first traced.  When they change — parameters during
    training — pass a new function object (a new lambda / ``functools.partial``) or take the
    values through ``aux``; :func:`sla`, :func:`occlusion` and :func:`psla` are not jitted
    here and always read them afresh.  The same holds for :func:`smoothgrad`.
    Raises: as :func:`sla`.
    """
    stroke_images = _check_strokes(stroke_images, "integrated_gradients")
    steps = check_positive_int("integrated_gradients", "steps", steps)
    return _jitted_unless_unhashable(_integrated_gradients_jit, _integrated_gradients, (score_fn, finish),
                                     score_fn=score_fn, stroke_images=stroke_images, aux=aux, steps=steps,
                                     finish=finish)


def _integrated_gradients(score_fn, stroke_images, aux, steps, finish):
    # weights (and the sum over the path) in at least float32: a bfloat16 carry met float32 gradients
    ones = jnp.ones(stroke_images.shape[:2], jnp.result_type(stroke_images.dtype, jnp.float32))

    def total(w):
        return jnp.sum(_weighted_scores(score_fn, stroke_images, w, aux, finish, "integrated_gradients"))

    grad = jax.grad(total)

    def step(acc, alpha):
        return acc + grad(alpha * ones), None

    alphas = (jnp.arange(steps, dtype=jnp.float32) + 0.5) / steps
    acc, _ = jax.lax.scan(step, jnp.zeros_like(ones), alphas)
    score = _weighted_scores(score_fn, stroke_images, ones, aux, finish, "integrated_gradients")
    return StrokeAttribution(score, jnp.where(present_strokes(stroke_images), acc / steps, 0.0))


_integrated_gradients_jit = jax.jit(_integrated_gradients, static_argnames=("score_fn", "steps", "finish"))


def _jitted_unless_unhashable(jitted, body, callables: tuple, **kwargs):
    """``jitted(**kwargs)``: an eager call of a scan over a fresh closure compiled anew every
    time (seconds per call), so the bodies go through one ``jax.jit`` with the callables and
    sizes static.  Unhashable callables (e.g. a mutable dataclass) run ``body`` directly, as
    before; a new lambda per call still compiles per call."""
    try:
        for fn in callables:
            hash(fn)
    except TypeError:
        return body(**kwargs)
    return jitted(**kwargs)


def random_attribution(key: jax.Array, stroke_images: jax.Array) -> jax.Array:
    """Uniform random stroke scores ``float32[B, K]`` (0 on strokes that draw nothing)."""
    check_key("random_attribution", key)
    stroke_images = _check_strokes(stroke_images, "random_attribution")
    u = jax.random.uniform(key, stroke_images.shape[:2])
    return jnp.where(present_strokes(stroke_images), u, 0.0)


def point_to_stroke(
    point_values: jax.Array, pen: jax.Array, valid: jax.Array, max_strokes: int, reduce: str = "sum"
) -> jax.Array:
    """Aggregate ``float32[..., T]`` point values per stroke: ``float32[..., max_strokes]``.

    ``reduce``: ``"sum"`` (default) or ``"mean"`` over the stroke's points; strokes with
    index ``>= max_strokes`` are dropped, absent strokes get 0.
    """
    if reduce not in ("sum", "mean"):
        raise ValueError(f"unknown reduce {reduce!r}; use 'sum' or 'mean'")
    if not np.shape(point_values) == np.shape(pen) == np.shape(valid) or np.ndim(pen) < 1:
        raise ValueError(f"point_to_stroke: need point_values, pen and valid of one shape [..., T], got "
                         f"{np.shape(point_values)}, {np.shape(pen)}, {np.shape(valid)}")
    one_hot = stroke_one_hot(pen, valid, max_strokes).astype(point_values.dtype)
    sums = jnp.einsum("...t,...tk->...k", point_values, one_hot, precision=jax.lax.Precision.HIGHEST)
    if reduce == "mean":
        sums = sums / jnp.maximum(jnp.sum(one_hot, axis=-2), 1.0)
    return sums


def _point_norm(g: jax.Array, norm: str) -> jax.Array:
    if norm == "l2":
        return safe_norm(g)  # gradient 0 (not NaN) at points with no attribution
    if norm == "l1":
        return jnp.sum(jnp.abs(g), axis=-1)
    raise ValueError(f"unknown point norm {norm!r}; use 'l2' or 'l1'")


def _point_result(score, gx, gp, pen, valid, max_strokes, reduce, norm) -> PointAttribution:
    v = jnp.asarray(valid, bool)
    gx = jnp.where(v[..., None], gx, 0.0)
    gp = jnp.where(v, gp, 0.0)
    points = _point_norm(gx, norm)
    return PointAttribution(score, gx, gp, points, point_to_stroke(points, pen, valid, max_strokes, reduce))


def _render_grads(score_fn, render_fn, xy, pen, valid, aux, name):
    """``(scores, dF/dxy, dF/dpen)`` for a batch, one backward pass."""
    b = xy.shape[0]

    def total(xy, pen):
        s = _scores(score_fn, render_fn(xy, pen, valid), aux, b, name)
        return jnp.sum(s), s

    (gx, gp), score = jax.grad(total, argnums=(0, 1), has_aux=True)(xy, pen)
    return score, gx, gp


def _check_points(xy, pen, valid, name, max_strokes=None, renderer=None):
    """Shapes ``[B, T, 2]`` / ``[B, T]`` and ``max_strokes >= 1``; when concrete, the values of
    :func:`sketchjax.sketch.check_points` (skipped for tracers).  Coordinates: any finite units
    when ``renderer`` is a fitting :class:`~sketchjax.render.RasterRecipe` or one of its methods,
    also jitted (``__wrapped__`` is followed; an audit found eager calls refusing |x| > 8192 that
    ``jit`` accepted); otherwise — a
    recipe with ``fit=False``, a bare renderer — the renderers' ``|x|, |y| <= 8192`` canvas bound,
    checked here because the renderer itself sees them traced (under ``grad``) and cannot."""
    if max_strokes is not None:
        check_positive_int(name, "max_strokes", max_strokes)
    if jnp.ndim(xy) != 3:
        raise ValueError(
            f"{name}: need xy [B, T, 2], pen [B, T], valid [B, T]; got {jnp.shape(xy)}, {jnp.shape(pen)}, {jnp.shape(valid)}"
        )
    inner = inspect.unwrap(renderer) if callable(renderer) else renderer  # jax.jit(recipe.distance): the method
    recipe = getattr(inner, "__self__", inner)  # a bound method: its recipe
    fits = isinstance(recipe, RasterRecipe) and recipe.fit
    check_points(xy, pen, valid, name, any_units=fits)


def psla(
    score_fn: ScoreFn,
    render_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    xy: jax.Array,
    pen: jax.Array,
    valid: jax.Array,
    aux: Any = None,
    *,
    max_strokes: int,
    reduce: str = "sum",
    norm: str = "l2",
) -> PointAttribution:
    """Partial stroke-level attribution (P-SLA, Eq. 6): ``dF/dxy_t`` and ``dF/dpen_t``.

    ``F = score_fn(render_fn(xy, pen, valid), aux)`` with a differentiable ``render_fn``
    (batched: ``[B, T, 2], [B, T], [B, T] -> [B, H, W]``, e.g.
    :meth:`sketchjax.render.RasterRecipe.distance`, which fits any finite units to its canvas; a
    bare renderer gets ``xy`` as given, so canvas coordinates within ``±8192`` are required).
    One forward and one backward pass.

    Args:
      max_strokes: strokes kept in ``strokes`` (static).
      reduce: stroke aggregation of point importances, ``"sum"`` or ``"mean"``.
      norm: point importance from ``dF/dxy_t``: ``"l2"`` (default) or ``"l1"``.
    Raises:
      ValueError: bad shapes or an ``aux`` leaf without leading dimension ``B``;
        :class:`~sketchjax.sketch.SketchError` (concrete inputs only; skipped when traced under
        ``jit``/``vmap``) for a NaN/inf or out-of-range coordinate or pen state on a valid
        point, naming the batch index and the point.
    """
    _check_points(xy, pen, valid, "psla", max_strokes, renderer=render_fn)
    # integer pixels: gradients need floats; bfloat16 / float16 ones are explained in float32
    # (as sla does), so the attribution is the float32 one of the same coordinates
    xy, pen = _point_floats(xy), _point_floats(pen)  # float64 pen states: a float64 dF/dpen, as dF/dxy
    score, gx, gp = _render_grads(score_fn, render_fn, xy, pen, valid, aux, "psla")
    return _point_result(score, gx, gp, pen, valid, max_strokes, reduce, norm)


def smoothgrad(
    score_fn: ScoreFn,
    render_fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    xy: jax.Array,
    pen: jax.Array,
    valid: jax.Array,
    aux: Any = None,
    *,
    key: jax.Array,
    samples: int = 16,
    sigma: float = 0.02,
    max_strokes: int,
    reduce: str = "sum",
    norm: str = "l2",
) -> PointAttribution:
    """SmoothGrad over point jitter: P-SLA gradients averaged over ``xy + N(0, s^2)``.

    ``s = sigma * `` the longer side of each sketch's bounding box (so ``sigma`` is relative
    to the drawing); ``samples`` forward + backward passes (a scan: memory of one).  The
    importances are taken from the mean gradient; ``score`` is that of the unjittered sketch.
    ``sigma = 0`` reproduces :func:`psla`.  The jitter is one ``jax.random.normal`` draw of
    shape ``xy.shape`` per sample, so for one ``key`` a sketch's noise depends on its row
    and on the padded length ``T`` (not on the other rows' contents).  ``score_fn`` and
    ``render_fn`` are static: values they capture are read when first traced (see
    :func:`integrated_gradients`).
    Raises: as :func:`psla`.
    """
    _check_points(xy, pen, valid, "smoothgrad", max_strokes, renderer=render_fn)
    check_key("smoothgrad", key)
    if not _traced(sigma) and not (np.isfinite(sigma) and sigma >= 0):
        raise ValueError(f"smoothgrad: sigma must be a finite number >= 0, got {sigma}")
    samples = check_positive_int("smoothgrad", "samples", samples)
    return _jitted_unless_unhashable(_smoothgrad_jit, _smoothgrad, (score_fn, render_fn), score_fn=score_fn,
                                     render_fn=render_fn, xy=_point_floats(xy), pen=pen, valid=valid, aux=aux, key=key,
                                     samples=samples, sigma=sigma, max_strokes=int(max_strokes), reduce=reduce,
                                     norm=norm)


def _smoothgrad(score_fn, render_fn, xy, pen, valid, aux, key, samples, sigma, max_strokes, reduce, norm):
    pen = _point_floats(pen)
    v = jnp.asarray(valid, bool)[..., None]
    lo = jnp.min(jnp.where(v, xy, jnp.inf), axis=1)
    hi = jnp.max(jnp.where(v, xy, -jnp.inf), axis=1)
    scale = sigma * jnp.max(jnp.where(jnp.isfinite(hi - lo), hi - lo, 0.0), axis=-1)  # [B]

    def step(acc, k):
        noise = jax.random.normal(k, xy.shape, xy.dtype) * scale[:, None, None]
        _, gx, gp = _render_grads(score_fn, render_fn, jnp.where(v, xy + noise, xy), pen, valid, aux, "smoothgrad")
        return (acc[0] + gx, acc[1] + gp), None

    (gx, gp), _ = jax.lax.scan(step, (jnp.zeros_like(xy), jnp.zeros_like(pen)), jax.random.split(key, samples))
    score = _scores(score_fn, render_fn(xy, pen, valid), aux, xy.shape[0], "smoothgrad")
    return _point_result(score, gx / samples, gp / samples, pen, valid, max_strokes, reduce, norm)


_smoothgrad_jit = jax.jit(_smoothgrad, static_argnames=("score_fn", "render_fn", "samples", "max_strokes", "reduce", "norm"))
