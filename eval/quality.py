"""Quality scores of GACL and softmax classifiers on held-out real QuickDraw sketches (issue 5 §3).

Each run (``NAME=WORKDIR`` in ``--runs``; trained with ``train/run.py`` and a config of
``train/configs/``) is restored from its workdir and scored on the **whole held-out split**
of the real sketches it was trained on (never seen in training).  The *quality score* is GACL's
``q`` (:func:`sketchjax.gacl.quality_scores`); a softmax run has no quality variable, so its
feature norm ``||f(x)||`` stands in (the quantity G Fig. 7 contrasts with GACL's ``q``).  Every
measurement is also made with ``cos theta_pred`` (the cosine to the predicted class — the
classifier's own confidence) as a reference score, so that what ``q`` adds is visible.

Measured per run:

* recognition top-1 / top-5 (G Table 1 layout);
* Spearman(score, cos theta_pred) with a bootstrap 95% interval (the "L shape", G Fig. 7),
  and the scatter figure;
* agreement with known degradations (:mod:`sketchjax.degrade`: point jitter, deleted strokes,
  added scribbles, truncation; four severities each): the fraction of sketches whose clean
  version scores higher than the degraded one (ties one half; pairs the degradation left
  unchanged are excluded and counted), and the fraction ordered correctly between
  consecutive severities (pairs where both severities gave the same copy excluded and
  counted: deletion rounds to whole strokes) — the stand-in for G's human study (whose 78%
  human agreement measures preferences between different sketches: not the same quantity).
  Summarised at the two moderate severities of each ladder, as the mean over all four
  degradations with a bootstrap interval over sketches, and over SPEC §7's three (without
  truncation); next to it the same for a content-blind score, the number of points (0.625 and
  0.5 by construction: two of the four degradations remove ink, one adds it);
* AUC of the score for QuickDraw's own ``recognized`` flag (the game's classifier, which no
  one here trained), overall and *length-matched* (only pairs of sketches in the same quintile
  of point count: the game stops a drawing once it is recognised, so the flag alone favours
  short drawings — the report gives the AUC of "fewer points" / "fewer strokes" as the
  content-blind reference);
* Spearman of the score with the pre-trained DoodleNet's probability of the true class;
* all of the above for the pre-trained DoodleNet itself (a reference row, unless
  ``--no-doodlenet``; :class:`sketchjax.classifier.DoodleNetReference`: restricted to the runs'
  categories, score = the probability of its predicted class): what a classifier trained on
  the full QuickDraw reaches under the same protocol (it may have seen the test sketches);
* the lowest- and highest-``q`` test sketches of the most frequent categories (G Fig. 5 style);
* how the encoder's feature units are used on the clean sketches
  (:func:`sketchjax.classifier.feature_unit_stats`: units never active, units active per
  sketch, mean pairwise cosine) — a cosine head that kills ReLU units shows here.

A soft-binning ablation is one more run in ``--runs`` (``head.soft_binning=False``).
``--sketches FILE[,FILE...]`` measures the same on other real sketches (QuickDraw simplified
ndjson of the runs' categories, e.g. the 1,000 monkeys of ``quickdraw/monkey_1000`` under the
data root) instead of the held-out split; sketches whose ``key_id`` the runs trained on are
dropped and counted.

Usage::

    python eval/quality.py --runs "GACL=runs/quickdraw_resnet_gacl,softmax=runs/quickdraw_resnet" \\
        [--out eval/results/quality.json] [--seed 0] [--batch 256] [--n N] [--no-doodlenet]
        [--sketches quickdraw/monkey_1000/monkey.ndjson]
    python eval/quality.py --references-only --config train/configs/quickdraw_resnet.py [--sketches ...]

Writes the JSON atomically with the command, machine and date, and ``<stem>_scatter.png``,
``<stem>_degradation.png`` and ``<stem>_extremes.png`` next to it.
"""
from __future__ import annotations

import argparse
import functools
import json
import pathlib
import sys
import time
import zlib

import jax
import jax.numpy as jnp
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # train.* (the classifiers' experiment builder)

from benchmarks.common import atomic_write_json, run_program  # noqa: E402  (the project's atomic JSON writer)
from sketchjax.formats._io import output_path, save_figure  # noqa: E402
from sketchjax.attribution import mean_ci  # noqa: E402
from sketchjax.classifier import DoodleNetReference, feature_unit_stats  # noqa: E402
from sketchjax.degrade import DEGRADATIONS, degrade, room  # noqa: E402
from sketchjax.gacl import pair_agreement, roc_auc, spearman, stratified_auc  # noqa: E402
from sketchjax.provenance import run_record  # noqa: E402
from sketchjax.sketch import Sketch, num_strokes  # noqa: E402

SCORES = ("score", "cos_pred")  # the quality score (q or ||f||) and the reference
MODERATE = (1, 2)  # indices of the "moderate" severities in each ladder
# SPEC §7's degradations (the issue adds truncation): two of the four remove ink and one adds
# it, so the four-way mean favours a score that counts ink; the report gives both means.
SPEC_KINDS = ("jitter", "delete_strokes", "scribbles")
#: The data settings that fix the held-out set and how its sketches are fitted.
HELD_OUT_KEYS = ("source", "categories", "fractions", "eval_split", "max_len", "fit")


def parse_runs(text: str) -> dict[str, pathlib.Path]:
    runs = {}
    for item in text.split(","):
        name, sep, path = item.rpartition("=")  # a name may hold '=' ("m=1"); a path does not
        if not sep or not name.strip() or not path.strip():
            raise SystemExit(f"--runs: expected NAME=WORKDIR[,NAME=WORKDIR...] (commas separate runs, so a name "
                             f"cannot hold one), got {item!r}")
        if name.strip() in runs:  # a dict would keep only the last: a run left out, silently
            raise SystemExit(f"--runs: the name {name.strip()!r} is given twice; give each run its own name")
        runs[name.strip()] = pathlib.Path(path.strip())
    return runs


def pad_to(arrays: dict, t: int) -> dict:
    """``xy``/``pen``/``valid`` padded with empty points to length ``t``."""
    extra = t - arrays["pen"].shape[1]
    out = dict(arrays)
    out["xy"] = np.pad(arrays["xy"], ((0, 0), (0, extra), (0, 0)))
    out["pen"] = np.pad(arrays["pen"], ((0, 0), (0, extra)))
    out["valid"] = np.pad(arrays["valid"], ((0, 0), (0, extra)))
    return out


REFERENCE = "DoodleNet (pre-trained reference)"  # the name of the reference row


def score_name(clf) -> str:
    """What ``score`` is for this classifier (see :func:`score_batches`)."""
    if isinstance(clf, DoodleNetReference):
        return "max probability"
    return "q" if clf.gacl is not None else "feature norm"


def score_batches(clf, xy, pen, valid, batch: int) -> dict[str, np.ndarray]:
    """``clf.scores`` of every sketch (length-fitted for sequence models: scribbles can push a
    sketch past ``max_len``), plus ``score``: ``q`` (GACL), the feature norm (softmax) or the
    probability of the predicted class (the DoodleNet reference)."""
    res = clf.score_arrays(xy, pen, valid, batch)
    res["score"] = {"q": res.get("q"), "feature norm": res["norm"], "max probability": res.get("prob_pred")}[score_name(clf)]
    for name in SCORES:  # a NaN would silently count as a lost pair or drop out of a rank statistic
        bad = np.flatnonzero(~np.isfinite(np.asarray(res[name])))
        if bad.size:
            raise SystemExit(f"{describe(clf)['model']} model: non-finite {name} "
                             f"({score_name(clf) if name == 'score' else 'cos θ'}) for {bad.size} of {len(res[name])} "
                             f"sketches, first at index {bad[0]}")
    return res


def describe(clf) -> dict:
    """The report's description of a run (or of the DoodleNet reference)."""
    if isinstance(clf, DoodleNetReference):
        return {"workdir": None, "head": "softmax", "gacl": None, "soft_binning": None, "model": "doodlenet",
                "head_activation": "tanh", "step": None, "score_is": score_name(clf),
                "input": f"{clf.canvas} px canvas, {clf.width} px line, 28 px input"}
    g = clf.gacl
    return {
        "head": "gacl" if g is not None else "softmax",
        "gacl": None if g is None else {"kind": g.kind, "s": g.s, "l_q": g.l_q, "u_q": g.u_q,
                                        "lambda_g": g.lambda_g, "margin_scale": g.margin_scale},
        "soft_binning": clf.config.get("head", {}).get("soft_binning") if g is not None else None,
        "model": clf.config["model"]["name"],
        # the feature head's last activation (BiLSTM / Transformer); DoodleNet's features are tanh
        "head_activation": ("tanh" if clf.config["model"]["name"] == "doodlenet"
                            else clf.config["model"].get("head_activation", "relu")),
        "step": clf.step,
        "score_is": score_name(clf),
    }


def degraded_copies(arrays: dict, kind: str, seed: int):
    """Yields ``(severity, xy, pen, valid)``; one key per sketch and kind, shared across
    severities (jitter directions and deletion order are nested across the ladder)."""
    base = jax.random.fold_in(jax.random.PRNGKey(seed), zlib.crc32(kind.encode()) % 2**31)
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(jnp.arange(arrays["pen"].shape[0]))
    for sev in DEGRADATIONS[kind]:
        yield sev, *(np.asarray(v) for v in _degrade_batch(kind, sev, keys, arrays["xy"], arrays["pen"], arrays["valid"]))


@functools.partial(jax.jit, static_argnums=(0, 1))
def _degrade_batch(kind: str, severity, keys, xy, pen, valid):
    """One degradation of every sketch of a batch: compiled once per (kind, severity, shapes)
    and reused across runs (a new jit per call compiled 16 times for every run, ~half the
    evaluation's time)."""
    return jax.vmap(lambda k, a, b, c: degrade(kind, severity, k, a, b, c))(keys, xy, pen, valid)


def differs(xy_a, pen_a, valid_a, xy_b, pen_b, valid_b) -> np.ndarray:
    """``bool[B]``: which sketches of two padded batches differ (a valid point, a pen state on a
    valid point, or the mask); padding slots are ignored.  Decided on the points: a copy that
    differs there but gives the model the same input (a deleted stroke fully covered by another,
    a cut zero-length segment) is a changed pair whose tied scores count one half (measured: at
    most 2 of ~150 pairs, at the mildest severity)."""
    both = valid_a & valid_b
    return (np.any(valid_a != valid_b, axis=1) | np.any((xy_a != xy_b) & both[..., None], axis=(1, 2))
            | np.any((pen_a != pen_b) & both, axis=1))


def bootstrap_spearman(a, b, n_boot: int = 2000, seed: int = 0) -> dict:
    """Spearman of ``a`` and ``b`` with a 95% percentile-bootstrap interval (pairs resampled;
    2,000 resamples as :func:`mean_ci` — the JSONs written before 2026-12-03 used 200, whose
    interval ends move by about +-0.02 with the seed)."""
    a, b = np.asarray(a), np.asarray(b)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, a.size, size=(n_boot, a.size))
    boots = np.asarray(_bootstrap_spearmans(jnp.asarray(a), jnp.asarray(b), jnp.asarray(idx)))
    return {"value": float(spearman(a, b)), "lo": float(np.quantile(boots, 0.025)),
            "hi": float(np.quantile(boots, 0.975)), "n": int(a.size)}


@jax.jit
def _bootstrap_spearmans(a, b, idx):
    """Spearman of each resample ``idx[r]`` of the pairs (one compile per sample size)."""
    return jax.vmap(lambda i: spearman(a[i], b[i]))(idx)


def doodlenet_truth_prob(arrays: dict, ref: DoodleNetReference, batch: int) -> np.ndarray:
    """The pre-trained DoodleNet's probability (over all its 345 classes) of each sketch's true
    class; ``ref`` supplies the loaded network, its input recipe and the runs' class rows."""
    from sketchjax.classifier import score_in_batches
    from sketchjax.models.doodlenet import doodlenet_classify

    fn = jax.jit(lambda xy, pen, valid: {"p": doodlenet_classify(ref.variables, ref.recipe.raster(xy, pen, valid))})
    probs = score_in_batches(fn, arrays["xy"], arrays["pen"], arrays["valid"], batch)["p"]
    return probs[np.arange(len(probs)), ref.class_index[arrays["label"]]]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def file_sketches(config: dict, paths: list[str], n: int | None, seed: int):
    """Real sketches from QuickDraw (simplified) ndjson ``paths`` as held-out arrays for runs of ``config``.

    Each record's ``word`` must be one of the runs' categories (its label); records whose
    ``key_id`` is in a split the runs trained on (every split but ``data.eval_split``) are
    dropped, so only sketches the models never saw remain.  Sketches are length-fitted as in
    training (:func:`sketchjax.classifier.fit_sketches`).

    Returns:
      ``(arrays, categories, dropped)``: arrays as :func:`sketchjax.classifier.held_out_sketches`
      gives them (with ``recognized`` and ``key_id``), the runs' categories, and the number of
      records dropped as seen in training.
    """
    from sketchjax import formats
    from sketchjax.classifier import fit_sketches, prepare_dataset
    from sketchjax.data import open_split

    data = config["data"]
    builder, categories = prepare_dataset(data)
    index = {c: i for i, c in enumerate(categories)}
    seen = set()
    for split in builder.info.splits:
        if split != data["eval_split"]:
            seen.update(_text(r["key_id"]) for r in open_split(builder, split, fields=("key_id",)))
    records, dropped = [], 0
    for path in paths:
        for rec in formats.iter_ndjson(path, single_point="drop"):  # rec.source: "path:line"
            if rec.word not in index:
                raise SystemExit(f"--sketches: {rec.source}: category {rec.word!r} is not one of the runs' "
                                 f"{len(categories)} categories")
            if str(rec.key_id) in seen:
                dropped += 1
            elif not isinstance(rec.recognized, bool):  # missing (the reader refuses a non-bool value)
                raise SystemExit(f"--sketches: {rec.source}: 'recognized' must be true/false (QuickDraw's flag; "
                                 f"the evaluation measures the AUC of each score for it), got {rec.recognized!r}")
            else:
                records.append(rec)
    if not records:
        raise SystemExit(f"--sketches: no unseen sketch in {', '.join(paths)} ({dropped} were in the training data)")
    if n is not None:
        records = [records[i] for i in np.sort(np.random.default_rng(seed).permutation(len(records))[:n])]
    xy, pen, valid = fit_sketches(data, [r.sketch for r in records])
    arrays = {"xy": xy, "pen": pen, "valid": valid, "label": np.array([index[r.word] for r in records]),
              "recognized": np.array([bool(r.recognized) for r in records]),
              "key_id": np.array([str(r.key_id) for r in records])}
    return arrays, list(categories), dropped


LENGTH_STRATA = 5  # quantile bins of the point count for the length-matched AUC


def length_strata(arrays: dict, n: int = LENGTH_STRATA) -> np.ndarray:
    """``int[N]``: each sketch's quantile bin (of ``n``) of its point count after length fitting."""
    counts = np.asarray(arrays["valid"], bool).sum(axis=1)
    edges = np.quantile(counts, np.linspace(0.0, 1.0, n + 1)[1:-1])
    return np.searchsorted(edges, counts, side="right")


def recognized_aucs(score, arrays: dict, strata: np.ndarray) -> dict[str, float]:
    """AUC of ``score`` for ``recognized``, overall and length-matched (pairs in one stratum)."""
    rec = np.asarray(arrays["recognized"], bool)
    return {"all": float(roc_auc(score, rec)),
            "length_matched": float(stratified_auc(score, rec, strata, LENGTH_STRATA))}


def ink_reference_auc(arrays: dict, strata: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """AUC for ``recognized`` of two scores that know nothing of the drawing's content: fewer
    points and fewer strokes (after length fitting) — the game stops a drawing once it is
    recognised, so unrecognised drawings tend to carry more ink."""
    strata = length_strata(arrays) if strata is None else strata
    valid = np.asarray(arrays["valid"], bool)
    strokes = np.asarray(num_strokes(jnp.asarray(arrays["pen"]), jnp.asarray(valid)))
    return {"fewer_points": recognized_aucs(-valid.sum(axis=1).astype(np.float32), arrays, strata),
            "fewer_strokes": recognized_aucs(-strokes.astype(np.float32), arrays, strata)}


def moderate_agreement(cells: dict, kinds, seed: int, n_boot: int = 2000) -> dict:
    """The moderate-severity agreement of one score: the mean over ``kinds`` x :data:`MODERATE`
    of each cell's vs-clean agreement (``cells[(kind, i)] = (wins[B], changed[B])``, a cell's
    agreement the mean of ``wins`` over its changed pairs), with a 95% percentile-bootstrap
    interval from resampling the sketches (the same resample in every cell: a sketch's copies
    are not independent)."""
    wins = np.stack([np.asarray(cells[(k, i)][0], np.float64) for k in kinds for i in MODERATE])
    changed = np.stack([np.asarray(cells[(k, i)][1], np.float64) for k in kinds for i in MODERATE])

    def aggregate(weights):  # weights [n_boot, B] (resample counts) -> mean of cell means [n_boot]
        num, den = (wins * changed) @ weights.T, changed @ weights.T
        return np.mean(np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan), axis=0)

    n = wins.shape[1]
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, 2**22 // max(n, 1)))  # resample counts [chunk, n]: bounded memory for large n
    boots = []
    for start in range(0, n_boot, chunk):
        m = min(chunk, n_boot - start)
        counts = np.zeros((m, n))
        np.add.at(counts, (np.repeat(np.arange(m), n), rng.integers(0, n, size=m * n)), 1.0)
        boots.append(aggregate(counts))
    boots = np.concatenate(boots)
    boots = boots[np.isfinite(boots)]  # resamples that left a cell without a changed pair
    lo, hi = (np.quantile(boots, (0.025, 0.975)) if boots.size else (np.nan, np.nan))
    return {"mean": float(aggregate(np.ones((1, n)))[0]), "lo": float(lo), "hi": float(hi), "n": int(n),
            "kinds": list(kinds)}


def ink_reference_degradation(arrays: dict, seed: int) -> dict:
    """The degradation agreement of a score that knows nothing of the drawing's content: its
    number of points (more points, "better").  Deleting strokes and truncating always lose
    points, scribbles always add them, jitter keeps them (ties): per severity 1, 1, 0 and 0.5
    wherever the copy changed, so 0.625 on the four-way moderate mean and 0.5 on SPEC §7's
    three — the level a quality score must beat to show it sees more than ink."""
    points = arrays["valid"].sum(axis=1)
    rows, cells = {}, {}
    for kind in DEGRADATIONS:
        rows[kind] = []
        for i, (sev, xy, pen, valid) in enumerate(degraded_copies(arrays, kind, seed)):
            changed = differs(arrays["xy"], arrays["pen"], arrays["valid"], xy, pen, valid)
            wins = (points > valid.sum(axis=1)) + 0.5 * (points == valid.sum(axis=1))
            cells[(kind, i)] = (wins, changed)
            rows[kind].append({"severity": sev, "vs_clean": float(np.mean(wins[changed])) if changed.any() else None})
    return {"score_is": "number of points", "degradation": rows,
            "moderate_agreement": moderate_agreement(cells, list(DEGRADATIONS), seed),
            "moderate_agreement_spec_kinds": moderate_agreement(cells, SPEC_KINDS, seed)}


def evaluate_run(clf, workdir: pathlib.Path, arrays: dict, args, dn_prob) -> dict:
    t0 = time.time()
    clean = score_batches(clf, arrays["xy"], arrays["pen"], arrays["valid"], args.batch)
    labels = arrays["label"]
    top5 = np.argsort(-clean["logits"], axis=-1)[:, :5]
    result = {
        "workdir": None if workdir is None else str(workdir),
        **describe(clf),
        "top1": float(np.mean(clean["pred"] == labels)),
        "top5": float(np.mean(np.any(top5 == labels[:, None], axis=-1))),
        "score_range": [float(np.min(clean["score"])), float(np.median(clean["score"])), float(np.max(clean["score"]))],
        "spearman_score_cos": bootstrap_spearman(clean["score"], clean["cos_pred"], seed=args.seed),
        "feature_units": feature_unit_stats(clf.feature_arrays(arrays["xy"], arrays["pen"], arrays["valid"], args.batch)),
    }
    aucs = {s: recognized_aucs(clean[s], arrays, arrays["length_stratum"]) for s in SCORES}
    result["recognized_auc"] = {s: aucs[s]["all"] for s in SCORES}
    result["recognized_auc_length_matched"] = {s: aucs[s]["length_matched"] for s in SCORES}
    result["recognized_fraction"] = float(np.mean(arrays["recognized"]))
    if dn_prob is not None:
        result["doodlenet_spearman"] = {s: float(spearman(clean[s], dn_prob)) for s in SCORES}
    deg, cells = {}, {s: {} for s in SCORES}
    for kind in DEGRADATIONS:
        rows, prev, prev_copy = [], clean, (arrays["xy"], arrays["pen"], arrays["valid"])
        for i, (sev, xy, pen, valid) in enumerate(degraded_copies(arrays, kind, args.seed)):
            out = score_batches(clf, xy, pen, valid, args.batch)
            # pairs the degradation left as they were (e.g. deleting strokes of a one-stroke
            # sketch) say nothing about a score: excluded, and counted -- against the clean
            # sketch and, for the consecutive-severity agreement, against the previous copy
            # (deletion rounds to whole strokes: two severities often delete the same ones)
            changed = differs(arrays["xy"], arrays["pen"], arrays["valid"], xy, pen, valid)
            moved_on = changed & differs(*prev_copy, xy, pen, valid)
            row = {"severity": sev, "top1": float(np.mean(out["pred"] == labels)),
                   "unchanged_fraction": float(1.0 - changed.mean()),
                   "same_as_previous_fraction": float(1.0 - moved_on.mean())}
            for s in SCORES:
                wins = (clean[s] > out[s]) + 0.5 * (clean[s] == out[s])
                row[f"vs_clean_{s}"] = mean_ci(wins[changed], seed=args.seed)
                cells[s][(kind, i)] = (wins, changed)
                row[f"vs_previous_{s}"] = float(pair_agreement(prev[s], out[s], jnp.asarray(moved_on)))
            rows.append(row)
            prev, prev_copy = out, (xy, pen, valid)
        deg[kind] = rows
    result["degradation"] = deg
    for s in SCORES:
        result[f"moderate_agreement_{s}"] = float(np.mean(
            [deg[k][i][f"vs_clean_{s}"]["mean"] for k in deg for i in MODERATE]))
        result[f"moderate_agreement_ci_{s}"] = moderate_agreement(cells[s], list(DEGRADATIONS), args.seed)
        result[f"moderate_agreement_spec_kinds_{s}"] = moderate_agreement(cells[s], SPEC_KINDS, args.seed)
    result["seconds"] = time.time() - t0
    result["_clean"] = clean  # for the figures; dropped before writing
    return result


def figures(results: dict, arrays: dict, categories: list, stem: pathlib.Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sketchjax.attribution.plot import plot_sketch

    written = []
    names = list(results)
    fig, axes = plt.subplots(1, len(names), figsize=(4 * len(names), 3.6), squeeze=False)
    for ax, name in zip(axes[0], names):
        r, c = results[name], results[name]["_clean"]
        correct = c["pred"] == arrays["label"]
        ax.scatter(c["cos_pred"][~correct], c["score"][~correct], s=4, alpha=0.4, label="wrong", color="tab:red")
        ax.scatter(c["cos_pred"][correct], c["score"][correct], s=4, alpha=0.4, label="right", color="tab:blue")
        rho = r["spearman_score_cos"]["value"]
        ax.set_title(f"{name}: Spearman {rho:.2f}", fontsize=9)
        ax.set_xlabel(r"cos $\theta_{pred}$")
        ax.set_ylabel(r["score_is"])
        ax.legend(fontsize=7, markerscale=3)
    fig.tight_layout()
    path = stem.with_name(stem.name + "_scatter.png")
    save_figure(fig, path, dpi=120)
    written.append(str(path))

    kinds = list(DEGRADATIONS)
    fig, axes = plt.subplots(1, len(kinds), figsize=(3.4 * len(kinds), 3.2), squeeze=False)
    for ax, kind in zip(axes[0], kinds):
        for name in names:
            rows = results[name]["degradation"][kind]
            x = np.arange(len(rows))
            ax.plot(x, [row["vs_clean_score"]["mean"] for row in rows], "o-", label=f"{name} ({results[name]['score_is']})")
            ax.plot(x, [row["vs_clean_cos_pred"]["mean"] for row in rows], "x:", label=f"{name} (cos)")
        ax.set_xticks(np.arange(len(DEGRADATIONS[kind])), [str(s) for s in DEGRADATIONS[kind]])
        ax.axhline(0.5, color="grey", lw=0.5)
        ax.set_ylim(0.0, 1.0)
        ax.set_title(kind, fontsize=9)
        ax.set_xlabel("severity")
    axes[0][0].set_ylabel("P(clean scores higher)")
    axes[0][-1].legend(fontsize=6)
    fig.tight_layout()
    path = stem.with_name(stem.name + "_degradation.png")
    save_figure(fig, path, dpi=120)
    written.append(str(path))

    gacl_names = [n for n in names if results[n]["head"] == "gacl"]
    if gacl_names:
        c = results[gacl_names[0]]["_clean"]
        counts = np.bincount(arrays["label"], minlength=len(categories))
        present = np.nonzero(counts)[0]
        cats = present[np.argsort(-counts[present], kind="stable")][:6]
        rows = []  # (row label, sketch indices): 3 lowest + 3 highest per category
        for cat in cats:
            idx = np.nonzero(arrays["label"] == cat)[0]
            order = idx[np.argsort(c["score"][idx], kind="stable")]
            rows.append((categories[cat], list(order[:3]) + list(order[-3:])))
        if len(cats) == 1:  # one category (e.g. --sketches): its 6 lowest and 6 highest
            rows = [(f"{categories[cats[0]]}\nlowest", list(order[:6])), (f"{categories[cats[0]]}\nhighest", list(order[-6:]))]
        fig, axes = plt.subplots(len(rows), 6, figsize=(9, 1.6 * len(rows)), squeeze=False)
        for row, (label, picks) in zip(axes, rows):
            for ax, i in zip(row, picks):
                sk = Sketch(xy=arrays["xy"][i], pen=arrays["pen"][i], valid=arrays["valid"][i])
                plot_sketch(ax, sk, title=f"q={c['score'][i]:.3f}", linewidth=1.0)
            row[0].set_ylabel(label, fontsize=8)
        title = "lowest (top) and highest (bottom) q" if len(cats) == 1 else "lowest (left) and highest (right) q per category"
        fig.suptitle(f"{gacl_names[0]}: {title}", fontsize=9)
        fig.tight_layout()
        path = stem.with_name(stem.name + "_extremes.png")
        save_figure(fig, path, dpi=110)
        written.append(str(path))
    return written


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", default=None, help="NAME=WORKDIR[,NAME=WORKDIR...] trained classifier runs")
    parser.add_argument("--out", default=None, help="default <repo>/eval/results/quality.json "
                        "(<repo>/eval/results/quality_references.json with --references-only)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--n", type=int, default=None, help="evaluate a seeded sample of n test sketches")
    parser.add_argument("--no-doodlenet", action="store_true",
                        help="skip the DoodleNet correlation and the DoodleNet reference row")
    parser.add_argument("--sketches", default=None, metavar="FILE[,FILE...]",
                        help="evaluate on these QuickDraw ndjson files (e.g. quickdraw/monkey_1000/monkey.ndjson "
                             "under the data root) instead of the held-out split; sketches the runs trained on are dropped")
    parser.add_argument("--references-only", action="store_true",
                        help="only the content-blind references (AUC of fewer points / fewer strokes for "
                             "`recognized`) of the evaluation sketches; needs no trained run with --config")
    parser.add_argument("--config", default=None, metavar="CONFIG.py",
                        help="with --references-only: the training config (train/configs/...) whose evaluation "
                             "sketches to use, instead of the first run's")
    args = parser.parse_args(argv)
    from sketchjax.classifier import held_out_sketches, load_classifier

    if args.config is not None and not args.references_only:
        parser.error("--config is only used with --references-only (runs carry their own config)")
    if args.runs is None and args.config is None:
        parser.error("--runs is required (or --references-only --config CONFIG.py)")
    if args.n is not None and args.n < 2:  # the feature statistics and rank measures need two
        parser.error(f"--n must be >= 2 (or left out: every test sketch), got {args.n}")
    if args.batch < 1:
        parser.error(f"--batch must be >= 1, got {args.batch}")
    if args.out is None:
        args.out = str(REPO_ROOT / "eval" / "results" / (
            "quality_references.json" if args.references_only else "quality.json"))
    try:
        output_path(args.out, suffix=".json")  # checked before any work
    except ValueError as e:
        parser.error(f"argument --out: {e}")
    runs, clfs = {}, {}
    if args.config is not None:
        from sketchjax.training.config import config_to_dict, load_config

        config = config_to_dict(load_config(args.config)[0])
    else:
        runs = parse_runs(args.runs)
        clfs = {name: load_classifier(workdir) for name, workdir in runs.items()}
        # categories as each run resolved them (a categories=None config records its list in run_info.json)
        held_out = {name: {**{k: c.config["data"].get(k) for k in HELD_OUT_KEYS}, "categories": list(c.categories)}
                    for name, c in clfs.items()}
        if len({json.dumps(v, sort_keys=True) for v in held_out.values()}) != 1:
            raise SystemExit(f"--runs: the runs were trained on different datasets or splits ({held_out}); "
                             "compare runs of one dataset at a time")
        config = next(iter(clfs.values())).config
    if args.sketches:
        from sketchjax.paths import data_root

        paths = [str(p if p.exists() else data_root() / p) for p in map(pathlib.Path, args.sketches.split(","))]
        arrays, categories, dropped = file_sketches(config, paths, args.n, args.seed)
        if len(arrays["label"]) < 2:
            raise SystemExit(f"--sketches {args.sketches}: {len(arrays['label'])} sketch(es) never seen in training "
                             f"({dropped} dropped as training sketches); the measures need at least 2")
        data_text = (f"real QuickDraw sketches from {', '.join(paths)}: {len(arrays['label'])} never seen in training "
                     f"({dropped} dropped as training sketches)")
    else:
        expect = next(iter(clfs.values())).dataset if clfs else None  # the files the runs were trained on
        arrays, categories, split_size = held_out_sketches(config, args.n, args.seed, extra_fields=("recognized",),
                                                           expect_dataset=expect)
        data_text = (f"real QuickDraw sketches: held-out '{config['data']['eval_split']}' split, "
                     f"{len(arrays['label'])} of {split_size} sketches, {len(categories)} categories")
    arrays["length_stratum"] = length_strata(arrays)
    ink_auc = ink_reference_auc(arrays, arrays["length_stratum"])
    if args.references_only:
        report = {**run_record("eval/quality.py", argv), "data": data_text,
                  "recognized_fraction": float(np.mean(arrays["recognized"])),
                  "ink_reference_recognized_auc": ink_auc}
        for name, v in ink_auc.items():
            print(f"{name}: AUC(recognized) {v['all']:.3f} (length-matched {v['length_matched']:.3f})")
        atomic_write_json(pathlib.Path(args.out), report)
        print(f"wrote {args.out} ({data_text})")
        return report
    arrays = pad_to(arrays, arrays["pen"].shape[1] + room(max(DEGRADATIONS["scribbles"])))
    ink_deg = ink_reference_degradation(arrays, args.seed)
    print(f"number of points (content-blind reference): moderate agreement {ink_deg['moderate_agreement']['mean']:.3f} "
          f"(SPEC's three kinds {ink_deg['moderate_agreement_spec_kinds']['mean']:.3f})", flush=True)
    reference = None if args.no_doodlenet else DoodleNetReference(categories)
    dn_prob = None if reference is None else doodlenet_truth_prob(arrays, reference, args.batch)
    if reference is not None:
        clfs[REFERENCE], runs[REFERENCE] = reference, None
    results = {}
    for name, clf in clfs.items():
        print(f"[{name}] scoring {len(arrays['label'])} held-out sketches and their degraded copies ...", flush=True)
        results[name] = evaluate_run(clf, runs[name], arrays, args, dn_prob)
        r = results[name]
        ci, spec = r["moderate_agreement_ci_score"], r["moderate_agreement_spec_kinds_score"]
        print(f"[{name}] top1 {r['top1']:.3f}  Spearman(score, cos) {r['spearman_score_cos']['value']:.3f}  "
              f"moderate agreement {r['moderate_agreement_score']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}] "
              f"(cos {r['moderate_agreement_cos_pred']:.3f}; SPEC's three kinds {spec['mean']:.3f})  "
              f"AUC(recognized) {r['recognized_auc']['score']:.3f} (length-matched "
              f"{r['recognized_auc_length_matched']['score']:.3f})  dead feature units "
              f"{r['feature_units']['dead_units']:.2f}  ({r['seconds']:.0f} s)", flush=True)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    stem = out.with_suffix("")
    written = figures(results, arrays, categories, stem)
    for r in results.values():
        r.pop("_clean")
    report = {
        **run_record("eval/quality.py", argv),
        "data": data_text,
        "recognized_fraction": float(np.mean(arrays["recognized"])),
        "ink_reference_recognized_auc": ink_auc,
        "degradations": {k: list(v) for k, v in DEGRADATIONS.items()},
        "moderate_severities": [[DEGRADATIONS[k][i] for i in MODERATE] for k in DEGRADATIONS],
        "spec_kinds": list(SPEC_KINDS),
        "ink_reference_degradation": ink_deg,
        "doodlenet": None if dn_prob is None else "pre-trained DoodleNet, 128 px canvas, 7 px line",
        "runs": results,
        "figures": written,
    }
    atomic_write_json(out, report)
    print(f"wrote {out} and {', '.join(written)}")
    return report


if __name__ == "__main__":
    sys.exit(run_program(main, "eval/quality.py"))
