"""Pseudo-label GACL (G §6; SPEC §6): quality scores without class labels either.

Labels come from clustering instead of annotation, DeepCluster style: k-means on the inputs
gives the first pseudo-labels; a GACL classifier is trained on them, and every
``reassign_every`` epochs each sample is re-labelled with its nearest class centre (the
class weight with the largest cosine, the classifier's own prediction).  The quality variable
``q`` then measures how typical a sample is of its pseudo-class.

The demo data are 2-D mixtures of 9 isotropic Gaussians on a circle or a 3 x 3 grid
(:func:`gaussian_mixture`), optionally with uniform background points that belong to no
component.  The mixture is known, so ``q`` can be checked against ground truth: G §6 reads
``q`` as "how far from the decision boundary" — Spearman of ``q`` with the distance to the
mixture's Bayes boundary (:func:`boundary_distance`) — and, for background points, the AUC of
``q`` for "drawn from a component" vs "background"; the log-density is also available.

Everything is pure JAX: :func:`kmeans` runs its k-means++ start and Lloyd iterations as
``lax.scan`` loops (jit it with ``k`` and ``iters`` static), the train step is jitted; the
epoch loop is a Python loop over jitted steps (no per-sample Python).
"""
from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from sketchjax._checks import check_int, check_key, check_positive_int
from sketchjax._numerics import compute_dtype
from sketchjax.gacl.core import GACLConfig, gacl_loss, quality_scores
from sketchjax.gacl.head import GACLClassifier
from sketchjax.models.layers import ReluMLP

__all__ = ["gaussian_mixture", "mixture_log_density", "boundary_distance", "kmeans", "PseudoLabelConfig", "train_pseudo_label_gacl"]


def _centres(layout: str, k: int, spread: float) -> np.ndarray:
    if layout == "circle":
        angles = 2 * np.pi * np.arange(k) / k
        return spread * np.stack([np.cos(angles), np.sin(angles)], -1)
    if layout == "grid":
        side = int(round(math.sqrt(k)))
        if side * side != k:
            raise ValueError(f"grid layout needs a square number of components, got {k}")
        g = (np.arange(side) - (side - 1) / 2) * spread
        return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    raise ValueError(f"unknown layout {layout!r}; use 'circle' or 'grid'")


def gaussian_mixture(key: jax.Array, n_per: int, layout: str = "circle", k: int = 9, spread: float = 1.0,
                     std: float = 0.1, background: float = 0.0):
    """Samples of a mixture of ``k`` equal isotropic Gaussians (std ``std``).

    Args:
      n_per: samples per component.
      layout: ``"circle"`` (centres on a circle of radius ``spread``) or ``"grid"``
        (a square grid with spacing ``spread``; ``k`` a square number).
      background: extra points, as a fraction of ``k * n_per``, uniform over the centres'
        bounding box grown by ``3 std``; their component is ``-1``.

    Returns:
      ``(x float32[N, 2], component int32[N], centres float32[k, 2])``.
    """
    check_key("gaussian_mixture", key)
    centres = jnp.asarray(_centres(layout, k, spread), jnp.float32)
    k_comp, k_bg = jax.random.split(key)
    comp = jnp.repeat(jnp.arange(k, dtype=jnp.int32), n_per)
    x = centres[comp] + std * jax.random.normal(k_comp, (k * n_per, 2))
    if not 0.0 <= float(background) < float("inf"):  # also NaN
        raise ValueError(f"gaussian_mixture: background must be a finite fraction >= 0, got {background}")
    n_bg = int(round(background * k * n_per))
    if n_bg:
        lo, hi = centres.min(0) - 3 * std, centres.max(0) + 3 * std
        bg = lo[None, :] + (hi - lo)[None, :] * jax.random.uniform(k_bg, (n_bg, 2))
        x = jnp.concatenate([x, bg])
        comp = jnp.concatenate([comp, -jnp.ones(n_bg, jnp.int32)])
    return x, comp, centres


def _check_points_centres(name: str, x, centres) -> None:
    if np.ndim(x) != 2 or np.ndim(centres) != 2 or np.shape(x)[1] != np.shape(centres)[1] or np.shape(centres)[0] < 1:
        raise ValueError(f"{name}: need x [N, D] and centres [k, D] (k >= 1) of one D; got {np.shape(x)}, {np.shape(centres)}")


def mixture_log_density(x: jax.Array, centres: jax.Array, std: float) -> jax.Array:
    """``log p(x)`` of the equal-weight isotropic mixture (the background not included)."""
    _check_points_centres("mixture_log_density", x, centres)
    if not std > 0:
        raise ValueError(f"mixture_log_density: std must be > 0, got {std}")
    d2 = jnp.sum((x[:, None, :] - centres[None]) ** 2, -1)
    k, d = centres.shape
    return jax.nn.logsumexp(-d2 / (2 * std**2), axis=-1) - jnp.log(k) - 0.5 * d * jnp.log(2 * jnp.pi * std**2)


def boundary_distance(x: jax.Array, centres: jax.Array) -> jax.Array:
    """Distance of each point to the boundary of its nearest centre's Voronoi cell (the Bayes
    decision boundary of an equal-weight isotropic mixture): the smallest distance to a
    bisector ``(|x - c_j|^2 - |x - c_i|^2) / (2 |c_j - c_i|)`` over ``j != i``."""
    _check_points_centres("boundary_distance", x, centres)
    d2 = jnp.sum((x[:, None, :] - centres[None]) ** 2, -1)  # [N, k]
    i = jnp.argmin(d2, axis=1)
    gap = jnp.linalg.norm(centres[:, None] - centres[None], axis=-1)  # [k, k]
    num = d2 - jnp.take_along_axis(d2, i[:, None], 1)
    dist = num / (2.0 * jnp.maximum(gap[i], 1e-12))
    return jnp.min(jnp.where(jnp.arange(centres.shape[0])[None] == i[:, None], jnp.inf, dist), axis=1)


def kmeans(key: jax.Array, x: jax.Array, k: int, iters: int = 50) -> tuple[jax.Array, jax.Array]:
    """``(labels int32[N], centres [k, D])``: Lloyd's algorithm from a k-means++ start."""
    k, iters = check_positive_int("kmeans", "k", k), check_int("kmeans", "iters", iters, 0)
    if np.ndim(x) != 2 or not 1 <= k <= np.shape(x)[0]:
        raise ValueError(f"kmeans: need x [N, D] and 1 <= k <= N, iters >= 0; got x {np.shape(x)}, k={k}, iters={iters}")
    if not isinstance(x, jax.core.Tracer) and not np.isfinite(np.asarray(x)).all():
        raise ValueError("kmeans: x holds NaN/inf")
    check_key("kmeans", key)
    x = jnp.asarray(x)  # NumPy input failed inside the scan (a traced index into a NumPy array)
    return _kmeans(key, x.astype(compute_dtype(x)), k, iters)  # integer points: float centres


def _kmeans(key: jax.Array, x: jax.Array, k: int, iters: int) -> tuple[jax.Array, jax.Array]:
    n = x.shape[0]

    def pick(carry, key_i):
        chosen, count = carry
        d2 = jnp.min(jnp.where(jnp.arange(k)[None, :] < count,
                               jnp.sum((x[:, None] - chosen[None]) ** 2, -1), jnp.inf), axis=1)
        # uniform for the first centre, and once every point sits on a chosen centre (fewer
        # distinct points than k: d2 all 0 gave 0/0 probabilities)
        p = jnp.where((count == 0) | (jnp.sum(d2) <= 0), jnp.ones(n), d2)
        idx = jax.random.choice(key_i, n, p=p / jnp.sum(p))
        return (chosen.at[count].set(x[idx]), count + 1), None

    (centres, _), _ = jax.lax.scan(pick, (jnp.zeros((k, x.shape[1]), x.dtype), 0), jax.random.split(key, k))

    def lloyd(centres, _):
        labels = jnp.argmin(jnp.sum((x[:, None] - centres[None]) ** 2, -1), axis=1)
        onehot = jax.nn.one_hot(labels, k, dtype=x.dtype)
        counts = onehot.sum(0)
        new = (onehot.T @ x) / jnp.maximum(counts, 1.0)[:, None]
        return jnp.where(counts[:, None] > 0, new, centres), None

    centres, _ = jax.lax.scan(lloyd, centres, None, length=iters)
    labels = jnp.argmin(jnp.sum((x[:, None] - centres[None]) ** 2, -1), axis=1).astype(jnp.int32)
    return labels, centres


class _PointEncoder(nn.Module):
    widths: Sequence[int]

    @nn.compact
    def __call__(self, x, *, train: bool = False):
        return ReluMLP(tuple(self.widths), name="mlp")(x, train=train)


@dataclasses.dataclass(frozen=True)
class PseudoLabelConfig:
    """Settings of :func:`train_pseudo_label_gacl` (``eval/pseudo_label.py``, RESULTS §4.7, uses these
    with ``widths=(64, 64, 64, 32)`` and its ``--epochs``)."""

    k: int = 9
    widths: tuple = (64, 64, 32)
    epochs: int = 60
    reassign_every: int = 5
    batch_size: int = 256
    learning_rate: float = 3e-3
    gacl: GACLConfig = GACLConfig(kind="cos", margin_scale=64.0)
    soft_binning_cuts: int | None = None  # None: no binning (the demo); an int: that many cut points

    def __post_init__(self):
        for name in ("k", "epochs", "reassign_every", "batch_size"):
            object.__setattr__(self, name, check_positive_int("PseudoLabelConfig", name, getattr(self, name)))
        if not self.learning_rate > 0:
            raise ValueError(f"PseudoLabelConfig: learning_rate must be > 0, got {self.learning_rate}")


def train_pseudo_label_gacl(key: jax.Array, x: jax.Array, cfg: PseudoLabelConfig = PseudoLabelConfig()) -> dict:
    """Trains a GACL classifier on pseudo-labels of the unlabelled points ``x [N, D]``.

    Returns:
      ``{"params", "apply", "labels" (final pseudo-labels), "initial_labels" (k-means),
      "q", "cos_pred", "pred", "history" (per epoch: ``loss`` and ``relabelled``, the fraction of
      labels that epoch's reassignment changed — None in an epoch without one)}``;
      ``apply(params, x) -> (cos, norm)``.
    """
    check_key("train_pseudo_label_gacl", key)
    x = jnp.asarray(x, jnp.float32)
    n = x.shape[0]
    k_km, k_init, k_data = jax.random.split(key, 3)
    labels, _ = kmeans(k_km, x, cfg.k)
    initial = labels
    model = GACLClassifier(_PointEncoder(cfg.widths), cfg.k)
    params = model.init(k_init, x[:2])["params"]
    tx = optax.adam(cfg.learning_rate)
    opt_state = tx.init(params)
    n_cuts = cfg.soft_binning_cuts

    def apply(params, inputs):
        return model.apply({"params": params}, inputs)

    @jax.jit
    def step(params, opt_state, xb, yb):
        def loss_fn(p):
            cos, norm = apply(p, xb)
            return gacl_loss(cos, norm, yb, cfg.gacl, n_cuts=n_cuts)[0]

        loss, grads = jax.value_and_grad(loss_fn)(params)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    predict = jax.jit(lambda p, xs: quality_scores(*apply(p, xs), cfg.gacl))
    steps = max(n // cfg.batch_size, 1)
    history = []
    for epoch in range(cfg.epochs):
        order = jax.random.permutation(jax.random.fold_in(k_data, epoch), n)
        losses = []
        for i in range(steps):
            idx = order[i * cfg.batch_size:(i + 1) * cfg.batch_size]
            params, opt_state, loss = step(params, opt_state, x[idx], labels[idx])
            losses.append(loss)
        changed = None  # no reassignment this epoch (0.0: one that changed no label)
        if (epoch + 1) % cfg.reassign_every == 0 and epoch + 1 < cfg.epochs:
            _, _, pred = predict(params, x)
            changed = float(jnp.mean(pred != labels))
            labels = pred.astype(jnp.int32)
        history.append({"epoch": epoch + 1, "loss": float(jnp.mean(jnp.stack(losses))), "relabelled": changed})
    q, cos_pred, pred = predict(params, x)
    return {"params": params, "apply": apply, "labels": labels, "initial_labels": initial, "q": q,
            "cos_pred": cos_pred, "pred": pred, "history": history}
