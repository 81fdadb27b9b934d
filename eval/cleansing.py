"""Label cleansing with GACL under injected label noise (G §6, Fig. 11; issue 5 §4).

For each noise rate, a GACL run is trained on the real QuickDraw training split with that
fraction of its labels replaced by another class (``data.label_noise``; the config of
``--config`` with the rate set, into ``<runs-dir>/<name>_noise<rate>``; resumed or skipped if
complete), then every training sample is scored against the label it was trained with.  The
flag rule (:func:`sketchjax.apps.cleansing.flag_suspicious`): ``q`` at or above its
``--q-high-quantile`` and angle to the labelled class above a threshold, or ``q`` at or below
its ``--q-low-quantile``.  Sweeping the angle threshold traces precision/recall against the
injected noise; reported: best F1, recall at 90% precision, and the same for the angle alone
(every ``q``) and for the plain "prediction disagrees with the label" rule, for reference.

Usage::

    python eval/cleansing.py [--rates 0.1,0.2,0.4] [--config train/configs/quickdraw_resnet_gacl.py]
                             [--runs-dir runs] [--set KEY=VALUE ...] [--out eval/results/cleansing.json]

Writes the JSON atomically and ``<stem>.png`` (precision/recall curves).
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

from benchmarks.common import atomic_write_json  # noqa: E402  (the project's atomic JSON writer)
from sketchjax.apps.cleansing import precision_recall, split_label_scores, suspicion_curve  # noqa: E402
from sketchjax.classifier import build_experiment, load_classifier  # noqa: E402
from sketchjax.provenance import run_record  # noqa: E402
from sketchjax.training import apply_overrides, train_unless_done  # noqa: E402


def load_config(path: str) -> dict:
    spec = importlib.util.spec_from_file_location("cleansing_config", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", default="0.1,0.2,0.4")
    parser.add_argument("--config", default="train/configs/quickdraw_resnet_gacl.py")
    parser.add_argument("--runs-dir", default="runs")
    parser.add_argument("--name", default="resnet_gacl")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--q-high-quantile", type=float, default=0.5)
    parser.add_argument("--q-low-quantile", type=float, default=0.02)
    parser.add_argument("--out", default="eval/results/cleansing.json")
    args = parser.parse_args(argv)
    results, curves = {}, {}
    for rate in [float(r) for r in args.rates.split(",")]:
        config = apply_overrides(load_config(args.config), [f"data.label_noise={rate}", "progress_bar=False", *args.set])
        workdir = pathlib.Path(args.runs_dir) / f"{args.name}_noise{rate:g}"
        seconds = train_unless_done(config, workdir, build_experiment)
        clf = load_classifier(workdir)
        sc = split_label_scores(clf, "train")
        noisy = sc["flipped"]
        gacl = suspicion_curve(sc["q"], sc["theta_deg"], noisy, args.q_high_quantile, args.q_low_quantile)
        angle = suspicion_curve(sc["q"], sc["theta_deg"], noisy)
        disagree_p, disagree_r = precision_recall(sc["pred"] != sc["label"], noisy)
        row = {
            "workdir": str(workdir), "train_seconds_this_call": seconds, "samples": int(len(noisy)),
            "injected": int(noisy.sum()),
            "gacl_rule": {k: gacl[k] for k in ("best_f1", "recall_at_p90")},
            "angle_only": {k: angle[k] for k in ("best_f1", "recall_at_p90")},
            "prediction_disagrees": {"precision": disagree_p, "recall": disagree_r},
            "median_q": {"clean": float(np.median(sc["q"][~noisy])),
                         "noisy": float(np.median(sc["q"][noisy])) if noisy.any() else None},
            "median_angle_deg": {"clean": float(np.median(sc["theta_deg"][~noisy])),
                                 "noisy": float(np.median(sc["theta_deg"][noisy])) if noisy.any() else None},
        }
        results[f"{rate:g}"] = row
        curves[f"{rate:g}"] = (gacl, angle)
        print(f"noise {rate:.0%}: GACL rule best F1 {gacl['best_f1']:.3f}, recall at P>=0.9 {gacl['recall_at_p90']:.3f}; "
              f"angle only {angle['best_f1']:.3f}; prediction != label P {disagree_p:.3f} R {disagree_r:.3f} "
              f"({seconds:.0f} s)", flush=True)
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    for rate, (gacl, angle) in curves.items():
        line, = ax.plot(gacl["recall"], gacl["precision"], label=f"{float(rate):.0%} noise: GACL rule")
        ax.plot(angle["recall"], angle["precision"], ":", color=line.get_color(), label=f"{float(rate):.0%}: angle only")
    ax.set_xlabel("recall of injected noisy labels")
    ax.set_ylabel("precision")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(png, dpi=120)
    plt.close(fig)
    report = {
        **run_record("eval/cleansing.py", argv),
        "data": "real QuickDraw training split (80% by key_id hash) with symmetric label noise injected",
        "rule": {"q_high_quantile": args.q_high_quantile, "q_low_quantile": args.q_low_quantile,
                 "theta_high": "swept over the quantiles of the angle"},
        "config": args.config, "overrides": args.set,
        "results": results, "figure": str(png),
    }
    atomic_write_json(out, report)
    print(f"wrote {out} and {png}")
    return report


if __name__ == "__main__":
    main()
