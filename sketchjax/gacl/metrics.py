"""Metrics for quality scores over a whole evaluation set (``O(N log N)``, tie-aware, jit-able).

* :func:`ranks` — 1-based ranks with ties averaged (sort-based, so 10^5 scores are cheap);
* :func:`spearman` (SROCC) and :func:`plcc` — rank and linear correlation;
* :func:`roc_auc` — area under the ROC curve of a score for a binary label (the
  Mann–Whitney statistic; ties count one half);
* :func:`stratified_auc` — the AUC over the (positive, negative) pairs that share a stratum
  (e.g. sketches of similar length): what a score knows beyond the stratifying variable;
* :func:`pair_agreement` — fraction of pairs ``(a_i, b_i)`` with ``a_i > b_i`` (ties one half):
  how often a score orders a clean sketch above its own degraded copy.

All take 1-D arrays of one length ``N`` (anything else is a ValueError, also under ``jit``:
broadcasting would silently pair the wrong entries) with an optional boolean ``mask`` of the
entries to use and return a ``float32[]`` (NaN when undefined: fewer than two entries, a
constant side, one class only, or a NaN value among the entries used — or an infinite one,
except for the AUCs, which only rank the scores and order ±inf like any value; entries off
the mask may hold anything).  Values are compared in float32: subtract a large common offset
first (1.7e9 + small differences collapse into ties).
"""
from __future__ import annotations

import functools
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from sketchjax._checks import check_binary, check_int, check_same_1d
from sketchjax._numerics import safe_sqrt

__all__ = ["ranks", "spearman", "plcc", "roc_auc", "stratified_auc", "pair_agreement"]


def _mask(name, x, mask):
    check_binary(name, mask, "mask")  # 0.5, 2 or NaN were taken as True
    return jnp.ones(jnp.shape(x), bool) if mask is None else jnp.asarray(mask, bool)


def ranks(x: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
    """``float32[N]``: 1-based ranks of ``x`` among the masked entries, ties averaged; 0 off-mask.

    Masked entries are sorted by value with every off-mask entry after them (``+inf`` is a
    value like any other); NaN among the masked entries gives NaN ranks.
    """
    check_same_1d("ranks", x=x, mask=mask)
    x = jnp.asarray(x, jnp.float32)
    mask = _mask("ranks", x, mask)
    n = x.shape[0]
    if n == 0:
        return x
    order = jnp.lexsort((jnp.where(mask, x, 0.0), ~mask))  # masked first, by value
    xs, ms = x[order], mask[order]
    new_group = jnp.concatenate([jnp.ones((1,), bool), (xs[1:] != xs[:-1]) | (ms[1:] != ms[:-1])])
    group = jnp.cumsum(new_group) - 1
    pos = jnp.arange(n, dtype=jnp.float32)
    first = jax.ops.segment_min(pos, group, num_segments=n)
    last = jax.ops.segment_max(pos, group, num_segments=n)
    avg_sorted = (first[group] + last[group]) / 2.0 + 1.0
    out = jnp.zeros(n, jnp.float32).at[order].set(avg_sorted)
    bad = jnp.any(jnp.isnan(x) & mask)
    return jnp.where(mask, jnp.where(bad, jnp.nan, out), 0.0)


def _finite(*arrays, mask):
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(a) | ~mask) for a in arrays]))


def _max_abs(x: jax.Array) -> jax.Array:
    return jnp.max(jnp.abs(x), initial=0.0, where=jnp.isfinite(x))


def _centred(x: jax.Array, mask: jax.Array, n: jax.Array) -> jax.Array:
    """``x - mean`` on the mask (0 off it), the mean corrected by a second pass: the float32 mean
    of 1,000 copies of 0.1 is off by a rounding error that the scaling in :func:`plcc` would
    blow up to a correlation of +-1 for a constant side."""
    x0 = jnp.where(mask, x, 0.0)
    mean = jnp.sum(x0) / n
    mean = mean + jnp.sum(jnp.where(mask, x0 - mean, 0.0)) / n
    return jnp.where(mask, x0 - mean, 0.0)


def _constant(x: jax.Array, mask: jax.Array) -> jax.Array:
    return jnp.max(jnp.where(mask, x, -jnp.inf), initial=-jnp.inf) <= jnp.min(jnp.where(mask, x, jnp.inf), initial=jnp.inf)


def plcc(a: jax.Array, b: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
    """Pearson linear correlation over the masked entries, in ``[-1, 1]``; NaN when a side is
    constant (or has fewer than two entries) or holds a non-finite value."""
    check_same_1d("plcc", a=a, b=b, mask=mask)
    a = jnp.asarray(a, jnp.float32)
    b = jnp.asarray(b, jnp.float32)
    mask = _mask("plcc", a, mask)
    n = jnp.maximum(jnp.sum(mask.astype(jnp.float32)), 1.0)
    da, db = _centred(a, mask, n), _centred(b, mask, n)
    # Scaled by their largest magnitude before squaring: scores around 1e20 (or 1e-20) overflowed
    # (underflowed) the float32 sums of squares and gave 0 (NaN) for a well-defined correlation.
    da, db = (d / jnp.where(s > 0, s, 1.0) for d, s in ((da, _max_abs(da)), (db, _max_abs(db))))
    # safe_sqrt: a constant side (value NaN) keeps a finite gradient, so a PLCC loss averaged
    # with jnp.nanmean over batches is not poisoned by one batch of equal scores.
    den = safe_sqrt(jnp.sum(da * da)) * safe_sqrt(jnp.sum(db * db))
    ok = (den > 0) & _finite(a, b, mask=mask) & ~_constant(a, mask) & ~_constant(b, mask)
    return jnp.where(ok, jnp.clip(jnp.sum(da * db) / jnp.where(den > 0, den, 1.0), -1.0, 1.0), jnp.nan)


def spearman(a: jax.Array, b: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
    """Spearman rank correlation (SROCC): :func:`plcc` of the tie-averaged :func:`ranks`."""
    check_same_1d("spearman", a=a, b=b, mask=mask)
    a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)  # also lists, as plcc takes them
    mask = _mask("spearman", a, mask)
    ok = _finite(a, b, mask=mask)
    return jnp.where(ok, plcc(ranks(a, mask), ranks(b, mask), mask), jnp.nan)


def roc_auc(scores: jax.Array, positive: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
    """AUC of ``scores`` for the boolean label ``positive`` (probability that a random positive
    scores above a random negative, ties one half).  ``positive`` must be boolean (or 0/1
    integers): a fractional label is an error, not silently counted as positive."""
    check_same_1d("roc_auc", scores=scores, positive=positive, mask=mask)
    check_binary("roc_auc", positive)
    mask = _mask("roc_auc", scores, mask)
    pos = jnp.asarray(positive, bool) & mask
    neg = ~jnp.asarray(positive, bool) & mask
    n_pos = jnp.sum(pos).astype(jnp.float32)
    n_neg = jnp.sum(neg).astype(jnp.float32)
    r = ranks(scores, mask)
    den = n_pos * n_neg
    # the Mann-Whitney count from the smaller class's rank sum: from the larger one (~n^2 / 2,
    # minus as much) float32 kept few digits (AUC off by 4e-4 at 10^6 positives to 100 negatives)
    u_pos = jnp.sum(jnp.where(pos, r, 0.0)) - n_pos * (n_pos + 1.0) / 2.0
    u_neg = jnp.sum(jnp.where(neg, r, 0.0)) - n_neg * (n_neg + 1.0) / 2.0
    u = jnp.where(n_pos <= n_neg, u_pos, den - u_neg)
    ok = (den > 0) & ~jnp.any(jnp.isnan(jnp.asarray(scores, jnp.float32)) & mask)
    return jnp.where(ok, u / jnp.where(den > 0, den, 1.0), jnp.nan)


def stratified_auc(scores: jax.Array, positive: jax.Array, strata: jax.Array, num_strata: int,
                   mask: Optional[jax.Array] = None) -> jax.Array:
    """AUC of ``scores`` for ``positive`` counted only over pairs in the same stratum.

    ``strata`` holds an integer in ``[0, num_strata)`` per entry; the result is
    ``sum_s U_s / sum_s n_pos,s n_neg,s`` (``U_s`` the Mann–Whitney count of stratum ``s``, ties
    one half) — the probability that a positive scores above a negative *of the same stratum*.
    Strata with one class only contribute no pairs.  NaN when no stratum has both classes.
    Concrete ``strata`` outside ``[0, num_strata)`` are an error (they would be left out).
    """
    check_same_1d("stratified_auc", scores=scores, positive=positive, strata=strata, mask=mask)
    check_binary("stratified_auc", positive)
    check_binary("stratified_auc", mask, "mask")  # checked here: the jitted body sees a tracer
    num_strata = check_int("stratified_auc", "num_strata", num_strata, 1)  # 2.5 was accepted
    if not isinstance(strata, jax.core.Tracer):
        s = np.asarray(strata)
        if s.size and (s.min() < 0 or s.max() >= num_strata or not np.all(s == np.round(s))):
            raise ValueError(f"stratified_auc: strata must be integers in [0, {num_strata}), got "
                             f"values in [{s.min()}, {s.max()}]")
    return _stratified_auc(scores, positive, strata, num_strata, mask)


@functools.partial(jax.jit, static_argnames="num_strata")
def _stratified_auc(scores: jax.Array, positive: jax.Array, strata: jax.Array, num_strata: int,
                    mask: Optional[jax.Array] = None) -> jax.Array:
    """The jitted body of :func:`stratified_auc` (inputs checked there)."""
    mask = _mask("stratified_auc", scores, mask)
    pos = jnp.asarray(positive, bool)
    strata = jnp.asarray(strata)

    def one(s):
        m = mask & (strata == s)
        pairs = jnp.sum(pos & m).astype(jnp.float32) * jnp.sum(~pos & m).astype(jnp.float32)
        return jnp.where(pairs > 0, roc_auc(scores, pos, m) * pairs, 0.0), pairs

    u, pairs = jax.vmap(one)(jnp.arange(num_strata))
    total = jnp.sum(pairs)
    ok = (total > 0) & ~jnp.any(jnp.isnan(jnp.asarray(scores, jnp.float32)) & mask)  # as roc_auc
    return jnp.where(ok, jnp.sum(u) / jnp.where(total > 0, total, 1.0), jnp.nan)


def pair_agreement(higher: jax.Array, lower: jax.Array, mask: Optional[jax.Array] = None) -> jax.Array:
    """Fraction of pairs with ``higher_i > lower_i`` (ties count one half), over the mask."""
    check_same_1d("pair_agreement", higher=higher, lower=lower, mask=mask)
    higher = jnp.asarray(higher, jnp.float32)
    lower = jnp.asarray(lower, jnp.float32)
    mask = _mask("pair_agreement", higher, mask)
    m = mask.astype(jnp.float32)
    wins = (higher > lower).astype(jnp.float32) + 0.5 * (higher == lower).astype(jnp.float32)
    n = jnp.sum(m)
    ok = (n > 0) & _finite(higher, lower, mask=mask)
    return jnp.where(ok, jnp.sum(wins * m) / jnp.where(n > 0, n, 1.0), jnp.nan)
