"""GACL for IQA on sketches of known quality: PLCC / SROCC for N = 50, 100, 200 bins (G §5; issue 5 §4).

For each ``N`` the config ``train/configs/iqa_sketch_gacl.py`` is trained with
``iqa.n_bins = N`` into ``<runs>/iqa_gacl_<N>`` (resumed if it exists, skipped if complete),
restored, and its predictions on the held-out test images are compared with the true ratings:
PLCC and SROCC of the expected rating (softmax over ``s cos theta`` times the bin centres) and
of GACL's ``q``; also the mean absolute error of the expected rating.  The ratings here are
known by construction (degradation strength of real held-out sketches), not human opinions.

Usage::

    python eval/iqa.py [--bins 50,100,200] [--runs-dir runs] [--set KEY=VALUE ...]
                       [--out eval/results/iqa.json]
"""
from __future__ import annotations

import argparse
import pathlib
import sys

import jax
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import atomic_write_json, run_program  # noqa: E402  (the project's atomic JSON writer)
from sketchjax.formats._io import argparse_output  # noqa: E402
from sketchjax.apps.iqa import bin_centres, build_iqa_experiment, expected_rating, iqa_base_config  # noqa: E402
from sketchjax.classifier import gacl_config, make_model  # noqa: E402
from sketchjax.gacl import plcc, quality_scores, spearman  # noqa: E402
from sketchjax.provenance import run_record  # noqa: E402
from sketchjax.training import apply_overrides, restore_trained, train_unless_done  # noqa: E402


def predict(workdir: pathlib.Path, config: dict) -> dict[str, np.ndarray]:
    experiment, state, _ = restore_trained(workdir, build_iqa_experiment, config)
    gcfg = gacl_config(config)
    n_bins, (lo, hi) = int(config["iqa"]["n_bins"]), config["iqa"]["rating_range"]
    model = make_model(config["model"], n_bins, "gacl")
    variables = {"params": state.params, **state.collections}
    centres = bin_centres(n_bins, lo, hi)

    @jax.jit
    def fn(images):
        cos, norm = model.apply(variables, images)
        q, _, _ = quality_scores(cos, norm, gcfg)
        return expected_rating(cos, gcfg.s, centres), q

    preds, qs, truth = [], [], []
    for batch in experiment.eval_source.epoch_batches(0):
        m = batch["mask"] > 0
        r, q = fn(batch["image"])
        preds.append(np.asarray(r)[m])
        qs.append(np.asarray(q)[m])
        truth.append(batch["rating"][m])
    return {"predicted": np.concatenate(preds), "q": np.concatenate(qs), "rating": np.concatenate(truth)}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bins", default="50,100,200")
    parser.add_argument("--runs-dir", type=argparse_output(directory=True), default=str(REPO_ROOT / "runs"), help="default: <repo>/runs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config overrides")
    parser.add_argument("--out", type=argparse_output(suffix=".json"), default=str(REPO_ROOT / "eval/results/iqa.json"),
                        help="default: <repo>/eval/results/iqa.json")
    args = parser.parse_args(argv)
    try:
        bins = [int(b) for b in args.bins.split(",")]
    except ValueError:
        parser.error(f"--bins must be comma-separated whole numbers, got {args.bins!r}")
    if any(n < 2 for n in bins) or len(set(bins)) < len(bins):
        parser.error(f"--bins must be distinct numbers of rating bins >= 2, got {args.bins!r}")
    if any(item.split("=", 1)[0].strip() == "iqa.n_bins" for item in args.set):
        parser.error("--set iqa.n_bins: the number of bins comes from --bins (each run is named by it)")
    results, config = {}, None
    for n in bins:
        config = apply_overrides(iqa_base_config(), [f"iqa.n_bins={n}", "progress_bar=False", *args.set])
        workdir = pathlib.Path(args.runs_dir) / f"iqa_gacl_{n}"
        train_seconds = train_unless_done(config, workdir, build_iqa_experiment)
        p = predict(workdir, config)
        row = {
            "workdir": str(workdir),
            "train_seconds_this_call": train_seconds,
            "test_images": int(len(p["rating"])),
            "plcc_expected_rating": float(plcc(p["predicted"], p["rating"])),
            "srocc_expected_rating": float(spearman(p["predicted"], p["rating"])),
            "mae_expected_rating": float(np.mean(np.abs(p["predicted"] - p["rating"]))),
            "plcc_q": float(plcc(p["q"], p["rating"])),
            "srocc_q": float(spearman(p["q"], p["rating"])),
            "q_range": [float(p["q"].min()), float(p["q"].max())],
        }
        results[str(n)] = row
        print(f"N={n}: PLCC {row['plcc_expected_rating']:.3f} SROCC {row['srocc_expected_rating']:.3f} "
              f"MAE {row['mae_expected_rating']:.3f} | q: PLCC {row['plcc_q']:.3f} SROCC {row['srocc_q']:.3f} "
              f"(trained {train_seconds:.0f} s)", flush=True)
    iqa, data = config["iqa"], config["data"]
    if iqa.get("source", "sketches") == "folder":
        data_text = f"images of {iqa.get('images')} rated by {iqa.get('mos')} (an IQA folder + MOS file)"
    else:
        data_text = (f"real QuickDraw sketches ({data.get('fractions')} key_id split) degraded with known strength "
                     f"u ~ U[0,1] (jitter <= 6%, <= 60% strokes deleted; at least one stroke deleted whenever u > 0: "
                     f"{bool(iqa.get('delete_at_least_one', False))}), rating 1 - u; rasters "
                     f"{data.get('raster_size')}x{data.get('raster_size')}")
    report = {
        **run_record("eval/iqa.py", argv),
        "data": data_text,
        "config_iqa": config["iqa"], "config_data": config["data"],  # as resolved, overrides included
        "overrides": args.set,
        "results": results,
    }
    out = pathlib.Path(args.out)
    atomic_write_json(out, report)  # creates the folder
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    sys.exit(run_program(main, "eval/iqa.py"))
