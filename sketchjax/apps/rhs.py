"""Rare-and-hard vs malicious sketches: ``q_max+`` (G §4.4; SPEC §6).

A low quality score ``q`` can mean two different things: a *malicious* drawing (random
scribbles, strokes of no category) or a *rare-and-hard* one — a real sketch of the class with
something wrong, e.g. a stray stroke.  ``q_max+`` asks whether the sketch can be repaired by
removing strokes: the highest ``q`` over the sketch itself and its versions with one stroke
removed (all ``K`` of them scored in one batch); with ``rounds > 1`` the best removal is kept
and the search repeats greedily.  A sketch whose ``q_max+`` reaches ``q_max`` is called
rare-and-hard (benign), otherwise malicious.

``score_fn(xy, pen, valid) -> q`` is any batched quality score (e.g. the ``q`` of
:meth:`sketchjax.classifier.TrainedClassifier.scores`); everything here is jit-able.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from sketchjax._checks import check_finite, check_positive_int, check_same_1d, check_thresholds
from sketchjax.sketch import compact, num_strokes, stroke_ids

__all__ = ["remove_each_stroke", "q_max_plus", "classify_rhs"]


def remove_each_stroke(xy, pen, valid, max_strokes: int):
    """``(xy [K, T, 2], pen [K, T], valid [K, T], present bool[K])``: version ``k`` of one sketch
    without stroke ``k`` (``K = max_strokes``; ``present[k]`` False where stroke ``k`` does not
    exist or is the only one — those versions are the sketch itself)."""
    sid = stroke_ids(pen, valid)
    n = num_strokes(pen, valid)
    ks = jnp.arange(max_strokes)
    present = (ks < n) & (n > 1)

    def without(k, ok):
        return compact(xy, pen, valid, (sid != k) | ~ok)

    out_xy, out_pen, out_valid = jax.vmap(without)(ks, present)
    return out_xy, out_pen, out_valid, present


def q_max_plus(score_fn: Callable, xy, pen, valid, max_strokes: int, rounds: int = 1):
    """``(q, q_max_plus, removed)`` for a batch ``[B, T, ...]``.

    ``q``: the score of each sketch; ``q_max_plus``: ``[B, rounds]``, column ``r`` the best score
    reachable by removing up to ``r + 1`` strokes greedily (one at a time, keeping the best
    removal; never below ``q``; the last column is ``q_max+``);
    ``removed``: ``int32[B, rounds]`` stroke index removed at each round, in the indexing of the
    sketch *at that round*, ``-1`` where no removal raised the score.

    Only strokes ``0 .. max_strokes - 1`` are candidates (static shapes): give ``max_strokes`` at
    least the batch's largest :func:`sketchjax.sketch.num_strokes` (``eval/rhs.py`` counts the
    sketches it would cut short), or a noise stroke drawn last may never be tried.
    """
    from sketchjax.sketch import check_points

    check_positive_int("q_max_plus", "max_strokes", max_strokes)
    check_positive_int("q_max_plus", "rounds", rounds)
    if jnp.ndim(xy) != 3:
        raise ValueError(f"q_max_plus: need a batch xy [B, T, 2], got shape {jnp.shape(xy)}")
    check_points(xy, pen, valid, "q_max_plus")
    b = xy.shape[0]

    def scores_of(*sketch):
        out = score_fn(*sketch)
        if jnp.shape(out) != (sketch[0].shape[0],):
            raise ValueError(f"q_max_plus: score_fn must return one score per sketch, shape ({sketch[0].shape[0]},); "
                             f"got {jnp.shape(out)}")
        return out

    q = scores_of(xy, pen, valid)
    best, cur = q, (xy, pen, valid)
    removed, bests = [], []
    for _ in range(rounds):
        vxy, vpen, vvalid, present = jax.vmap(lambda a, p, v: remove_each_stroke(a, p, v, max_strokes))(*cur)
        k, t = vxy.shape[1], vxy.shape[2]
        scores = scores_of(vxy.reshape(b * k, t, 2), vpen.reshape(b * k, t), vvalid.reshape(b * k, t)).reshape(b, k)
        # A NaN score (a removal the scorer cannot judge) is never chosen: argmax would pick
        # it, and `NaN > best` being false, the round would record no removal at all.
        scores = jnp.where(present & ~jnp.isnan(scores), scores, -jnp.inf)
        arg = jnp.argmax(scores, axis=1)
        top = jnp.take_along_axis(scores, arg[:, None], 1)[:, 0]
        better = top > best
        removed.append(jnp.where(better, arg, -1).astype(jnp.int32))
        best = jnp.where(better, top, best)
        bests.append(best)
        pick = jnp.arange(b)
        cur = tuple(jnp.where(better.reshape((b,) + (1,) * (v.ndim - 2)), v[pick, arg], c)
                    for v, c in zip((vxy, vpen, vvalid), cur))
    return q, jnp.stack(bests, axis=1), jnp.stack(removed, axis=1)


def classify_rhs(q, q_plus, q_tau: float, q_max: float):
    """``int32[B]``: 0 = fine (``q >= q_tau``), 1 = rare-and-hard (``q < q_tau`` but
    ``q_max+ >= q_max``), 2 = malicious (neither).  ``q`` and ``q_plus`` are ``[B]`` (one per
    sketch); a concrete NaN is an error (it would be called fine)."""
    check_same_1d("classify_rhs", q=q, q_plus=q_plus)
    check_finite("classify_rhs", "a NaN would be called fine", q=q, q_plus=q_plus)
    check_thresholds("classify_rhs", q_tau=q_tau, q_max=q_max)
    low = q < q_tau
    return jnp.where(~low, 0, jnp.where(q_plus >= q_max, 1, 2)).astype(jnp.int32)
