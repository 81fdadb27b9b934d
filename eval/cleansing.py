"""Label cleansing with GACL under injected label noise (G §6, Fig. 11; issue 5 §4).

For each noise rate, a GACL run is trained on the config's training examples with that
fraction of their labels replaced by another class (``data.label_noise``; the config of
``--config`` with the rate set, into ``<runs-dir>/<name>_noise<rate>``; resumed or skipped if
complete), then every training example is scored against the label it was trained with.  With
``data.extra_train`` (sketch-rnn samples), ``--set data.label_noise_scope=all`` puts the noise
on the samples too (default ``real``: the human drawings only), and every measure is repeated
on the human drawings alone (``real_sketches_only``).  The
flag rule (:func:`sketchjax.apps.cleansing.flag_suspicious`): ``q`` at or above its
``--q-high-quantile`` and angle to the labelled class above a threshold, or ``q`` at or below
its ``--q-low-quantile``.  Sweeping the angle threshold traces precision/recall against the
injected noise; reported: best F1, recall at 90% precision, the same for the angle alone
(every ``q``), for each ``q`` threshold quantile 0-0.9 chosen in hindsight, for the softmax
probability of the label alone (the usual "small loss" criterion), and the plain "prediction
disagrees with the label" rule, for reference.  ``--softmax-baseline`` also trains the same
config with a plain softmax head on the same noisy data (``<name>_softmax_noise<rate>``; the
repository's ``*_gacl.py`` configs are their softmax baselines plus the head) and reports its
angle, small-loss and disagreement rules: what cleansing gets without GACL.  Unless
``--no-doodlenet``, the pre-trained DoodleNet as it is (restricted to the run's categories;
:class:`sketchjax.classifier.DoodleNetReference`) scores the same examples against the same
noisy labels (``doodlenet``: its angle, small-loss and disagreement rules) — a classifier
trained at scale on clean labels, which never saw the injected noise (but may have seen the
sketches): what the cleansing target asks of a score.

Usage::

    python eval/cleansing.py [--rates 0.1,0.2,0.4] [--config train/configs/quickdraw_resnet_gacl.py]
                             [--softmax-baseline] [--no-doodlenet]
                             [--runs-dir runs] [--set KEY=VALUE ...] [--out eval/results/cleansing.json]

Writes the JSON atomically, ``<stem>.png`` (precision/recall curves) and ``<stem>_scores.npz``:
every scored example's ``q``, angle, ``p_label``, label, prediction, injected-noise and
generated flags per rate and model (``"<rate>/<gacl|softmax|doodlenet>/<field>"``), so every
measure can be recomputed without the runs (:func:`summarise` on them).  Best F1 and recall
at 90% precision sweep every distinct angle (:func:`sketchjax.apps.cleansing.suspicion_curve`;
JSONs written before 2026-12-03 used a 101-quantile grid, which understated both).
"""
from __future__ import annotations

import argparse
import importlib.util
import pathlib
import sys

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import atomic_write_json, run_program  # noqa: E402  (the project's atomic JSON writer)
from sketchjax.formats._io import argparse_existing_file as existing_file  # noqa: E402
from sketchjax.formats._io import argparse_output, atomic_write, save_figure  # noqa: E402
from sketchjax.apps.cleansing import precision_recall, split_label_scores, suspicion_curve  # noqa: E402
from sketchjax.classifier import (  # noqa: E402
    DoodleNetReference, build_experiment, comparable_config, head_config, load_classifier, prepare_dataset)
from sketchjax.provenance import run_record  # noqa: E402
from sketchjax.training import apply_overrides, train_unless_done  # noqa: E402


def load_config(path: str) -> dict:
    spec = importlib.util.spec_from_file_location("cleansing_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def summarise(sc: dict, keep: np.ndarray, args, gacl: bool = True) -> tuple[dict, dict]:
    """The cleansing measures over the examples ``keep`` of :func:`split_label_scores`'s output.

    Every run: the angle to the labelled class alone and the softmax probability of the label
    alone ("small loss") — best F1 and recall at 90% precision —, the "prediction disagrees"
    reference and the medians of the score (``q``, or a softmax run's feature norm) and the
    angle, clean vs noisy.  GACL runs add the GACL rule at ``--q-high-quantile`` and at every
    ``q``-quantile threshold 0, 0.1, ..., 0.9 (the low-``q`` flag kept).  Also returns the
    precision/recall curves by name."""
    q, theta, noisy = sc["q"][keep], sc["theta_deg"][keep], sc["flipped"][keep]
    fields = ("best_f1", "recall_at_p90")
    curves = {"angle_only": suspicion_curve(q, theta, noisy),
              # -p, not 1 - p: in float32 1 - p is exactly 1 for every p below ~3e-8 (a GACL run, s = 64,
              # gives labels down to 1e-29), which tied the most suspicious examples into one group
              "small_loss": suspicion_curve(q, -sc["p_label"][keep], noisy)}
    if gacl:
        curves["gacl_rule"] = suspicion_curve(q, theta, noisy, args.q_high_quantile, args.q_low_quantile)
    disagree_p, disagree_r = precision_recall(sc["pred"][keep] != sc["label"][keep], noisy)
    row = {"samples": int(keep.sum()), "generated": int(sc["generated"][keep].sum()), "injected": int(noisy.sum()),
           **{name: {k: c[k] for k in fields} for name, c in curves.items()},
           "prediction_disagrees": {"precision": disagree_p, "recall": disagree_r}}
    if gacl:  # the rule's q threshold chosen in hindsight (0: every q passes; the low-q flag still applies)
        row["q_high_quantile_sweep"] = {
            f"{qq:g}": {k: suspicion_curve(q, theta, noisy, qq, args.q_low_quantile)[k] for k in fields}
            for qq in np.round(np.arange(0.0, 0.91, 0.1), 1)}
    row["median_q" if gacl else "median_feature_norm"] = {
        "clean": float(np.median(q[~noisy])), "noisy": float(np.median(q[noisy])) if noisy.any() else None}
    row["median_angle_deg"] = {"clean": float(np.median(theta[~noisy])),
                               "noisy": float(np.median(theta[noisy])) if noisy.any() else None}
    return row, curves


#: The per-example fields of split_label_scores kept in ``<stem>_scores.npz``.
SCORE_FIELDS = ("label", "flipped", "generated", "q", "theta_deg", "p_label", "pred")


def scored_summary(clf, config: dict, args, scores: dict | None = None, prefix: str = "") -> tuple[dict, dict]:
    """Score ``config``'s training examples against its (noisy) labels with ``clf``, summarise;
    the per-example scores go into ``scores`` (when given) under ``<prefix>/<field>``."""
    sc = split_label_scores(clf, "train", config=config)
    if scores is not None:
        scores.update({f"{prefix}/{k}": np.asarray(sc[k]) for k in SCORE_FIELDS})
    return summarise_scores(sc, args, clf.gacl is not None)


def summarise_scores(sc: dict, args, gacl: bool) -> tuple[dict, dict]:
    """:func:`summarise` over every example, and over the human drawings alone when there are
    generated samples (``real_sketches_only``)."""
    row, curves = summarise(sc, np.ones(len(sc["q"]), bool), args, gacl)
    if sc["generated"].any():  # the human drawings alone, next to every example trained on
        row["real_sketches_only"], _ = summarise(sc, ~sc["generated"], args, gacl)
    return row, curves


def run_summary(config: dict, workdir: pathlib.Path, args, scores: dict | None = None,
                prefix: str = "") -> tuple[dict, dict, dict]:
    """Train (or resume / skip) one noisy run, score its training examples, summarise; also
    returns the run's own config (what its examples and noisy labels are rebuilt from)."""
    seconds = train_unless_done(config, workdir, build_experiment, normalise=comparable_config)
    clf = load_classifier(workdir)
    row, curves = scored_summary(clf, clf.config, args, scores, prefix)
    return {"workdir": str(workdir), "train_seconds_this_call": seconds, **row}, curves, clf.config


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="0.1,0.2,0.4")
    parser.add_argument("--config", type=existing_file, default=str(REPO_ROOT / "train/configs/quickdraw_resnet_gacl.py"),
                        help="training config (default: the repository's train/configs/quickdraw_resnet_gacl.py)")
    parser.add_argument("--runs-dir", type=argparse_output(directory=True), default=str(REPO_ROOT / "runs"), help="where the noisy runs go (default: <repo>/runs)")
    parser.add_argument("--name", default="resnet_gacl")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--softmax-baseline", action="store_true",
                        help="also train the config with a softmax head on the same noisy data (<name>_softmax_noise<rate>)")
    parser.add_argument("--q-high-quantile", type=float, default=0.5)
    parser.add_argument("--q-low-quantile", type=float, default=0.02)
    parser.add_argument("--no-doodlenet", action="store_true",
                        help="leave out the pre-trained DoodleNet reference (needs models/doodlenet under the data root)")
    parser.add_argument("--out", type=argparse_output(suffix=".json"), default=str(REPO_ROOT / "eval/results/cleansing.json"),
                        help="default: <repo>/eval/results/cleansing.json")
    args = parser.parse_args(argv)
    try:  # every setting checked before any training
        rates = [float(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error(f"--rates {args.rates!r}: comma-separated numbers in [0, 1)")
    if not all(0.0 <= r < 1.0 for r in rates):
        parser.error(f"--rates {args.rates!r}: label-noise rates must be in [0, 1)")
    if len(set(rates)) != len(rates):  # a repeated rate was trained (or resumed) and reported twice
        parser.error(f"--rates {args.rates!r}: each rate once")
    if any(item.split("=", 1)[0].strip() == "data.label_noise" for item in args.set):
        # applied after the rate, it replaced every rate while the runs were named by --rates
        parser.error("--set data.label_noise: the noise rate comes from --rates (each run is named by it)")
    for name, q in (("--q-high-quantile", args.q_high_quantile), ("--q-low-quantile", args.q_low_quantile)):
        if not 0.0 <= q <= 1.0:
            parser.error(f"{name} {q}: a quantile in [0, 1]")
    results, curves, scores = {}, {}, {}
    reference = None  # built before any training, so missing weight files or categories fail fast
    if not args.no_doodlenet:
        base = apply_overrides(load_config(args.config), ["progress_bar=False", *args.set])
        reference = DoodleNetReference(prepare_dataset(base["data"])[1])
    for rate in rates:
        config = apply_overrides(load_config(args.config), [f"data.label_noise={rate}", "progress_bar=False", *args.set])
        if head_config(config)["type"] != "gacl":
            raise ValueError(f"--config {args.config} (with --set) has a softmax head; give a GACL config "
                             "(--softmax-baseline adds its softmax twin)")
        row, curves[f"{rate:g}"], run_config = run_summary(
            config, pathlib.Path(args.runs_dir) / f"{args.name}_noise{rate:g}", args, scores, f"{rate:g}/gacl")
        if args.softmax_baseline:  # the same noisy data, model and steps through a plain softmax head
            soft_dir = pathlib.Path(args.runs_dir) / f"{args.name}_softmax_noise{rate:g}"
            row["softmax"], soft_curves, _ = run_summary({**config, "head": {"type": "softmax"}}, soft_dir, args,
                                                         scores, f"{rate:g}/softmax")
            curves[f"{rate:g}"]["softmax_small_loss"] = soft_curves["small_loss"]
        if reference is not None:  # the run's examples and noisy labels, scored by a classifier trained at scale
            row["doodlenet"], ref_curves = scored_summary(reference, run_config, args, scores, f"{rate:g}/doodlenet")
            curves[f"{rate:g}"]["doodlenet_small_loss"] = ref_curves["small_loss"]
        results[f"{rate:g}"] = row
        line = (f"noise {rate:.0%}: GACL rule best F1 {row['gacl_rule']['best_f1']:.3f}, recall at P>=0.9 "
                f"{row['gacl_rule']['recall_at_p90']:.3f}; angle only {row['angle_only']['best_f1']:.3f}; small loss "
                f"{row['small_loss']['best_f1']:.3f}; prediction != label P {row['prediction_disagrees']['precision']:.3f} "
                f"R {row['prediction_disagrees']['recall']:.3f}")
        for name, label in (("softmax", "softmax run"), ("doodlenet", "DoodleNet as it is")):
            if name in row:
                line += (f"; {label}: angle {row[name]['angle_only']['best_f1']:.3f}, small loss "
                         f"{row[name]['small_loss']['best_f1']:.3f} (recall at P>=0.9 "
                         f"{row[name]['small_loss']['recall_at_p90']:.3f})")
        print(line, flush=True)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    scores_path = out.with_name(out.stem + "_scores.npz")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for rate, c in curves.items():
        line, = ax.plot(c["gacl_rule"]["recall"], c["gacl_rule"]["precision"], label=f"{float(rate):.0%} noise: GACL rule")
        ax.plot(c["angle_only"]["recall"], c["angle_only"]["precision"], ":", color=line.get_color(),
                label=f"{float(rate):.0%}: angle only")
        if "softmax_small_loss" in c:
            ax.plot(c["softmax_small_loss"]["recall"], c["softmax_small_loss"]["precision"], "--", color=line.get_color(),
                    label=f"{float(rate):.0%}: softmax head, small loss")
        if "doodlenet_small_loss" in c:
            ax.plot(c["doodlenet_small_loss"]["recall"], c["doodlenet_small_loss"]["precision"], "-.",
                    color=line.get_color(), label=f"{float(rate):.0%}: DoodleNet as it is, small loss")
    ax.set_xlabel("recall of injected noisy labels")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, png, dpi=120)
    report = {
        **run_record("eval/cleansing.py", argv),
        "data": "the run's training examples (QuickDraw's real training split, 80% by key_id hash, plus any "
                "data.extra_train sketch-rnn samples) with symmetric label noise injected (data.label_noise_scope: "
                "real sketches only, or all); 'real_sketches_only' repeats the measures on the human drawings",
        "rule": {"q_high_quantile": args.q_high_quantile, "q_low_quantile": args.q_low_quantile,
                 "theta_high": "swept over every distinct angle (best F1, recall at P >= 0.9); the figure's "
                               "curves at 101 quantiles of the angle"},
        "scores": str(scores_path),
        "config": args.config, "softmax_baseline": args.softmax_baseline, "overrides": args.set,
        "doodlenet": None if args.no_doodlenet else "pre-trained DoodleNet as it is, restricted to the run's categories, "
                                                    "128 px canvas, 7 px line",
        "results": results, "figure": str(png),
    }
    with atomic_write(scores_path, "wb") as f:
        np.savez_compressed(f, **scores)
    atomic_write_json(out, report)
    print(f"wrote {out}, {png} and {scores_path}")
    return report


if __name__ == "__main__":
    sys.exit(run_program(main, "eval/cleansing.py"))
