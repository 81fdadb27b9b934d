"""Label cleansing with GACL (G §6, Fig. 11; SPEC §6).

A GACL classifier trained on noisy labels still learns what each class looks like; a sample
whose label is wrong then tends to be *well drawn* (large ``q``) yet *far from its labelled
class* (large angle ``theta_y`` to the class weight of its label) — or so poor that nothing
can be said (very low ``q``).  :func:`flag_suspicious` applies that rule with thresholds given
as quantiles or values; :func:`suspicion_curve` sweeps the angle threshold to trace the
precision/recall curve against known (injected) noise.

:func:`inject_label_noise` makes the noisy labels: a fraction ``rate`` of the samples, chosen
at random, gets a label drawn uniformly from the *other* classes (symmetric noise).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sketchjax.gacl.core import safe_arccos
from sketchjax._checks import check_binary, check_finite, check_int, check_key, check_labels, check_same_1d, check_thresholds

__all__ = ["inject_label_noise", "label_angles", "flag_suspicious", "precision_recall", "suspicion_curve",
           "threshold_sweep", "split_label_scores"]


def inject_label_noise(key: jax.Array, labels, rate: float, num_classes: int):
    """``(noisy_labels int32[N], flipped bool[N])``: exactly ``round(rate * N)`` labels changed,
    each to a class drawn uniformly from the other ``num_classes - 1``."""
    check_key("inject_label_noise", key)
    num_classes = check_int("inject_label_noise", "num_classes", num_classes, 1)  # 3.5 gave labels of class 3
    check_same_1d("inject_label_noise", labels=labels)
    check_labels("inject_label_noise", labels, num_classes)
    labels = jnp.asarray(labels, jnp.int32)
    n = labels.shape[0]
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"label noise rate must be in [0, 1], got {rate}")
    if num_classes < 2 and rate > 0:
        raise ValueError("label noise needs at least two classes")
    k_pick, k_class = jax.random.split(key)
    flipped = jnp.zeros(n, bool).at[jax.random.permutation(k_pick, n)[: int(round(rate * n))]].set(True)
    shift = jax.random.randint(k_class, (n,), 1, max(num_classes, 2))
    noisy = jnp.where(flipped, (labels + shift) % num_classes, labels)
    return noisy.astype(jnp.int32), flipped


def label_angles(cos, labels) -> jax.Array:
    """``theta_y``: angle (radians) between each feature and its *labelled* class weight."""
    if np.ndim(cos) != 2 or np.shape(labels) != np.shape(cos)[:1]:
        raise ValueError(f"label_angles: need cos [N, C] and labels [N], got {np.shape(cos)} and {np.shape(labels)}")
    check_labels("label_angles", labels, np.shape(cos)[1])
    cos_y = jnp.take_along_axis(jnp.asarray(cos), jnp.asarray(labels, jnp.int32)[:, None], axis=1)[:, 0]
    return safe_arccos(cos_y)


def flag_suspicious(q, theta_y, q_high: float, theta_high: float, q_low: float) -> jax.Array:
    """``bool[N]``: ``(q >= q_high and theta_y >= theta_high) or q <= q_low``."""
    check_same_1d("flag_suspicious", q=q, theta_y=theta_y)
    check_finite("flag_suspicious", "a NaN is never flagged", q=q)
    check_finite("flag_suspicious", "a NaN is never flagged", theta_y=theta_y)
    check_thresholds("flag_suspicious", q_high=q_high, theta_high=theta_high, q_low=q_low)
    q = jnp.asarray(q)
    theta_y = jnp.asarray(theta_y)
    return ((q >= q_high) & (theta_y >= theta_high)) | (q <= q_low)


def precision_recall(flagged, positive) -> tuple[float, float]:
    """``(precision, recall)`` of the flags for the true positives (NaN precision if none flagged)."""
    check_same_1d("precision_recall", flagged=flagged, positive=positive)
    check_binary("precision_recall", flagged, "flagged")
    check_binary("precision_recall", positive)
    flagged = np.asarray(flagged, bool)
    positive = np.asarray(positive, bool)
    tp = float(np.sum(flagged & positive))
    precision = tp / flagged.sum() if flagged.sum() else float("nan")
    recall = tp / positive.sum() if positive.sum() else float("nan")
    return precision, recall


def suspicion_curve(q, theta_y, positive, q_high_quantile: float = 0.0, q_low_quantile: float = 0.0,
                    n_thresholds: int = 101) -> dict:
    """Precision/recall of :func:`flag_suspicious` as ``theta_high`` sweeps the angles.

    ``q_high`` and ``q_low`` are the given quantiles of ``q`` (0 and 0: the rule reduces to
    "``theta_y`` large", every ``q``).  Returns ``{"theta", "precision", "recall"}`` at
    ``n_thresholds`` quantiles of ``theta_y`` from the largest angle down (for plots), and,
    from an exact sweep over *every* distinct angle (every set of flags the rule can make):
    ``"best_f1"``, the threshold reaching it (``"best_f1_theta"``, flags ``theta_y >= t``), and
    the largest recall at precision >= 0.9 (``"recall_at_p90"``, 0 if never).  (Before
    2026-12-03 these two came from the quantile grid, whose second point already flags ~1% of
    the samples: both understated, the recall most.)
    """
    check_same_1d("suspicion_curve", q=q, theta_y=theta_y, positive=positive)
    check_binary("suspicion_curve", positive)
    check_finite("suspicion_curve", "a NaN would never be flagged", q=q, theta_y=theta_y)
    for name, v in (("q_high_quantile", q_high_quantile), ("q_low_quantile", q_low_quantile)):
        if not 0.0 <= v <= 1.0:  # also NaN
            raise ValueError(f"suspicion_curve: {name} must be a quantile in [0, 1], got {v}")
    check_int("suspicion_curve", "n_thresholds", n_thresholds, 2)
    if np.size(q) == 0:
        raise ValueError("suspicion_curve: no samples (q is empty)")
    q = np.asarray(q, np.float64)
    theta_y = np.asarray(theta_y, np.float64)
    positive = np.asarray(positive, bool)
    q_high = np.quantile(q, q_high_quantile) if q_high_quantile > 0 else -np.inf
    q_low = np.quantile(q, q_low_quantile) if q_low_quantile > 0 else -np.inf
    thetas = np.quantile(theta_y, np.linspace(1.0, 0.0, int(n_thresholds)))
    prec, rec = [], []
    for t in thetas:
        p, r = precision_recall(np.asarray(flag_suspicious(q, theta_y, q_high, t, q_low)), positive)
        prec.append(p)
        rec.append(r)
    return {"theta": thetas, "precision": np.asarray(prec), "recall": np.asarray(rec),
            **threshold_sweep(theta_y, positive, always=q <= q_low, candidate=q >= q_high)}


def threshold_sweep(score, positive, *, always=None, candidate=None) -> dict:
    """Best F1 (and its threshold) and recall at precision >= 0.9 of the flags ``always |
    (candidate & score >= t)`` over *every* threshold ``t``: each distinct candidate score, and
    +inf (flag only ``always``).  Cumulative counts over the candidates sorted by score, cut
    after each tie group — exact, in O(N log N), where a grid of thresholds understates both.

    Args:
      score: ``[N]`` scores, larger = more suspicious (for "flag when ``s <= t``" pass ``-s``
        and negate the returned threshold).
      positive: ``bool[N]``, the true positives.
      always: ``bool[N]`` flagged whatever ``t`` (default none); candidate: ``bool[N]`` that
        ``t`` may flag (default all).

    Returns:
      ``{"best_f1", "best_f1_theta"`` (of the thresholds reaching it, the largest: fewest
      flags), ``"recall_at_p90"}`` (0 if no threshold reaches 0.9).
    """
    check_binary("threshold_sweep", positive)
    check_binary("threshold_sweep", always, "always")
    check_binary("threshold_sweep", candidate, "candidate")
    score = np.asarray(score)
    positive = np.asarray(positive, bool)
    always = np.zeros(score.shape, bool) if always is None else np.asarray(always, bool)
    candidate = np.ones(score.shape, bool) if candidate is None else np.asarray(candidate, bool)
    check_same_1d("threshold_sweep", score=score, positive=positive, always=always, candidate=candidate)
    check_finite("threshold_sweep", "a NaN would never be flagged", score=score)
    theta_y = score
    n_pos = int(positive.sum())
    cand = candidate & ~always
    order = np.argsort(-theta_y[cand], kind="stable")
    angles, pos = theta_y[cand][order], positive[cand][order]
    ends = np.flatnonzero(np.r_[angles[1:] != angles[:-1], True]) if angles.size else np.array([], int)
    flagged = np.r_[0, ends + 1] + int(always.sum())
    tp = np.r_[0, np.cumsum(pos)[ends]] + int((always & positive).sum())
    thresholds = np.r_[np.inf, angles[ends]]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(flagged > 0, tp / np.maximum(flagged, 1), np.nan)
        recall = tp / n_pos if n_pos else np.full(tp.shape, np.nan)
        f1 = np.where(tp > 0, 2 * tp / (flagged + n_pos), 0.0)
    best = int(np.argmax(f1))
    ok = np.nan_to_num(precision, nan=0.0) >= 0.9
    return {"best_f1": float(f1[best]), "best_f1_theta": float(thresholds[best]),
            "recall_at_p90": float(np.nanmax(recall[ok])) if ok.any() and n_pos else 0.0}


def split_label_scores(clf, split: str = "train", batch_size: int = 256, config: dict | None = None,
                       chunk_size: int = 8192) -> dict[str, np.ndarray]:
    """Scores of every sample of a split of a trained run's dataset, against the labels the run
    was trained on (for the training split: every example the run trained on, its
    ``data.extra_train`` samples and injected label noise included —
    :func:`sketchjax.classifier.training_source`).

    Args:
      clf: a :class:`sketchjax.classifier.TrainedClassifier`.  With a softmax head, ``q`` is
        the feature norm (the softmax stand-in used throughout ``eval/quality.py``) and the
        angle is between the feature and the labelled class's weight column.
      split: ``"train"`` (what label cleansing checks) or another split of the dataset.
      config: the run whose examples and labels are scored (default ``clf.config``); e.g. a
        noisy run's config with a :class:`sketchjax.classifier.DoodleNetReference` as ``clf``
        scores that run's training examples and noisy labels with a classifier that never saw them.
      chunk_size: records read, fitted and scored at a time (memory is bounded by one chunk
        plus the per-sample results, whatever the size of the split).

    Returns:
      ``{"key_id", "label", "flipped" (label noise injected), "generated" (an ``extra_train``
      sample, not a human drawing), "q", "theta_deg" (angle to the labelled class), "p_label"
      (softmax probability of the labelled class: the "small loss" criterion), "pred"}`` as
      NumPy arrays in source order.
    """
    from sketchjax.classifier import prepare_dataset, source_chunks, training_source
    from sketchjax.data import open_split

    own = config is None or config is getattr(clf, "config", None)  # a DoodleNetReference has none
    config = clf.config if config is None else config
    expected = getattr(clf, "dataset", None) if own else None  # the run's own examples: the files it trained on
    fields = ("points", "pen", "label", "key_id")
    if split == "train":
        source, flipped, generated = training_source(config, fields, expect_dataset=expected)
    else:
        builder, _ = prepare_dataset(config["data"], expected)
        source = open_split(builder, split, fields=fields)
        flipped, generated = np.zeros(len(source), bool), np.zeros(len(source), bool)
    if len(source) == 0:
        raise ValueError(f"split {split!r} of the run's dataset holds no samples")
    parts = [_score_chunk(clf, arrays, batch_size)
             for arrays in source_chunks(source, config["data"], chunk_size, extra_fields=("key_id",))]
    out = {k: np.concatenate([part[k] for part in parts]) for k in parts[0]}
    return {**out, "flipped": np.asarray(flipped, bool), "generated": np.asarray(generated, bool)}


def _score_chunk(clf, arrays: dict, batch_size: int) -> dict:
    """The per-sample scores of one chunk (the per-class cosines are reduced here, not kept)."""
    labels = jnp.asarray(arrays["label"], jnp.int32)
    out = clf.score_arrays(arrays["xy"], arrays["pen"], arrays["valid"], batch_size)
    theta = np.degrees(np.asarray(label_angles(jnp.asarray(out["cos"]), labels)))
    p_label = jnp.take_along_axis(jax.nn.softmax(jnp.asarray(out["logits"]), -1), labels[:, None], axis=1)[:, 0]
    keys = [k.decode() if isinstance(k, bytes) else str(k) for k in arrays["key_id"]]
    return {"key_id": np.asarray(keys), "label": np.asarray(labels), "q": out["q"] if "q" in out else out["norm"],
            "theta_deg": theta, "p_label": np.asarray(p_label), "pred": out["pred"]}
