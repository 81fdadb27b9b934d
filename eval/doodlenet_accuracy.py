"""DoodleNet top-1 / top-5 accuracy over all simplified QuickDraw sketches, per input recipe.

Every sketch of ``quickdraw/simplified/`` (8,600 = 344 categories x 25; DoodleNet's 345th
class, ``zigzag``, has none) is classified with the pre-trained weights
(:func:`sketchjax.models.doodlenet.load_doodlenet`) after one of two input recipes:

* ``bresenham`` — :func:`doodlenet_input`: fit to a ``canvas`` px square with ``padding``
  margin, Bresenham line ``width`` px wide, area-downsample to 28x28;
* ``distance`` — :func:`doodlenet_input_differentiable`: the same fit at ``resolution`` px,
  the distance-field raster with a sigmoid falloff ``width * resolution / canvas`` px wide
  (edge steepness ``slope`` per pixel), area-downsample to 28x28.

Sketches are evaluated in fixed-size chunks (one compilation per setting; the last chunk is
padded with copies of its last sketch, whose predictions are dropped).  ``seconds`` per
setting includes that compilation.

Usage::

    python eval/doodlenet_accuracy.py [--data DIR] [--per-category N] [--batch 200]
                                      [--out eval/results/doodlenet_accuracy.json]

Measured (``python eval/doodlenet_accuracy.py``, all 8,600 sketches, 19 settings, 21 min on a
2-core CPU shared with other jobs; per setting 8 s (Bresenham at 128 px) to ~2 min (Bresenham
at 256 px, dominated by the disk dilation); full table in
``eval/results/doodlenet_accuracy.json``), top-1 / top-5:

* Bresenham, 256 px canvas, 8% padding: width 10 px 15.7% / 38.8%, 12 px 66.4% / 88.3%,
  **13 px 69.8% / 89.9%** (best), 14 px 69.1% / 89.5%, 16 px 63.2% / 86.7%, 20 px 49.2% / 78.0%;
  16 px without padding 57.8% / 83.9% (the data README, 8 sketches per category: 50.5% /
  75.3% and 38.7% / 63.4%); 14 px with 4% / 12% padding 68.1% / 67.0%; 128 px canvas with
  a 7 px line 68.6% / 89.4% in 8 s.
* Distance field, 8% padding, slope 5: **14 px at 56 px 69.9% / 90.1%** (best), 13 px at
  112 px 69.8%, 14 px at 112 px 69.5%, 16 px at 112 / 56 / 28 px 65.7% / 67.3% / 65.3%;
  slope 2.5 at 112 px: 14 px 69.4%, 16 px 67.5%.
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import RowJournal, atomic_write_json, run_program  # noqa: E402  (strict JSON, atomic)
from sketchjax.batching import stack_sketches
from sketchjax.formats import iter_ndjson, ndjson_files
from sketchjax.formats._io import argparse_output  # noqa: E402
from sketchjax.models.doodlenet import (
    doodlenet_class_name,
    doodlenet_input,
    doodlenet_input_differentiable,
    load_doodlenet,
)
from sketchjax.paths import data_root
from sketchjax.provenance import run_record

RECIPES = {"bresenham": doodlenet_input, "distance": doodlenet_input_differentiable}

# (recipe, keyword arguments); canvas defaults to 256 and padding to 0.08.
SETTINGS = [
    ("bresenham", dict(width=16, padding=0.08)),  # the data README's recipe
    ("bresenham", dict(width=16, padding=0.0)),  # ... and its "without padding"
    ("bresenham", dict(width=10, padding=0.08)),
    ("bresenham", dict(width=12, padding=0.08)),
    ("bresenham", dict(width=13, padding=0.08)),
    ("bresenham", dict(width=14, padding=0.08)),
    ("bresenham", dict(width=20, padding=0.08)),
    ("bresenham", dict(width=14, padding=0.04)),
    ("bresenham", dict(width=14, padding=0.12)),
    ("bresenham", dict(canvas=128, width=7, padding=0.08)),
    ("distance", dict(width=16.0, padding=0.08, resolution=112, slope=5.0)),
    ("distance", dict(width=16.0, padding=0.08, resolution=112, slope=2.5)),
    ("distance", dict(width=14.0, padding=0.08, resolution=112, slope=5.0)),
    ("distance", dict(width=14.0, padding=0.08, resolution=112, slope=2.5)),
    ("distance", dict(width=13.0, padding=0.08, resolution=112, slope=5.0)),
    ("distance", dict(width=16.0, padding=0.08, resolution=56, slope=5.0)),
    ("distance", dict(width=14.0, padding=0.08, resolution=56, slope=5.0)),
    ("distance", dict(width=13.0, padding=0.08, resolution=56, slope=5.0)),
    ("distance", dict(width=16.0, padding=0.08, resolution=28, slope=5.0)),
]


def load_sketches(root: pathlib.Path, class_names, per_category=None):
    """All simplified sketches (padded batch, NumPy) and their DoodleNet class indices."""
    index = {name: i for i, name in enumerate(class_names)}
    sketches, labels, categories = [], [], []
    for category, path in ndjson_files(root / "quickdraw" / "simplified"):
        name = doodlenet_class_name(category)
        if name not in index:
            raise SystemExit(f"{path}: category {category!r} is not one of DoodleNet's classes")
        categories.append(name)
        for record in iter_ndjson(path, limit=per_category):
            sketches.append(record.sketch)
            labels.append(index[name])
    longest = max(int(np.sum(s.valid)) for s in sketches)
    batch = stack_sketches(sketches, -(-longest // 64) * 64)  # a round length: fewer shapes
    return batch, np.array(labels), categories


def evaluate(model, variables, batch, labels, recipe: str, kwargs: dict, chunk: int) -> dict:
    """Top-1 / top-5 of one setting, in fixed-size chunks (one compilation)."""
    render = RECIPES[recipe]
    predict = jax.jit(lambda v, xy, pen, valid: model.apply(v, render(xy, pen, valid, **kwargs)))
    n = len(labels)
    start = time.time()
    logits = []
    for lo in range(0, n, chunk):
        take = np.minimum(np.arange(lo, lo + chunk), n - 1)  # pad the last chunk with its last sketch
        out = predict(variables, batch.xy[take], batch.pen[take], batch.valid[take])
        logits.append(np.asarray(out)[: min(chunk, n - lo)])
    seconds = time.time() - start
    top5 = np.argsort(-np.concatenate(logits), axis=1)[:, :5]
    return {
        "recipe": recipe,
        **kwargs,
        "top1": float(np.mean(top5[:, 0] == labels)),
        "top5": float(np.mean(np.any(top5 == labels[:, None], axis=1))),
        "sketches": n,
        "seconds": round(seconds, 1),
        "compilations": predict._cache_size(),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="data root (default: $SKETCHJAX_DATA or ../shared/data)")
    parser.add_argument("--per-category", type=int, default=None, help="use at most N sketches per category")
    parser.add_argument("--batch", type=int, default=200, help="sketches per jitted chunk")
    parser.add_argument("--settings", default=None, help="comma-separated indices into SETTINGS (default: all)")
    parser.add_argument(
        "--out", type=argparse_output(suffix=".json"), default=str(pathlib.Path(__file__).parent / "results" / "doodlenet_accuracy.json"),
        help="JSON results file (written atomically)",
    )
    args = parser.parse_args(argv)
    if args.per_category is not None and args.per_category < 1:
        parser.error(f"--per-category must be >= 1, got {args.per_category}")
    if args.batch < 1:
        parser.error(f"--batch must be >= 1, got {args.batch}")
    if args.settings is None:
        settings = SETTINGS
    else:
        picked = args.settings.split(",")
        if not all(i.isdigit() and int(i) < len(SETTINGS) for i in picked) or len(set(map(int, picked))) < len(picked):
            parser.error(f"--settings must be distinct indices 0-{len(SETTINGS) - 1}, got {args.settings!r}")
        settings = [SETTINGS[int(i)] for i in picked]

    start = time.time()
    root = data_root(args.data)
    model, variables, class_names = load_doodlenet(root)
    batch, labels, categories = load_sketches(root, class_names, args.per_category)
    rows = []
    # a killed run resumes: finished settings are kept beside --out until the end
    journal = RowJournal(args.out, {"data": str(root), "per_category": args.per_category, "batch": args.batch})
    resumed = 0
    print("| recipe | canvas | width | padding | resolution | slope | top-1 | top-5 | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for recipe, kwargs in settings:
        row = journal.get([recipe, kwargs])
        if row is None:
            row = evaluate(model, variables, batch, labels, recipe, kwargs, args.batch)
            journal.add([recipe, kwargs], row)
        else:
            resumed += 1
        rows.append(row)
        print(
            f"| {recipe} | {kwargs.get('canvas', 256)} | {kwargs['width']} | {kwargs['padding']} | "
            f"{kwargs.get('resolution', '')} | {kwargs.get('slope', '')} | {row['top1']:.2%} | "
            f"{row['top5']:.2%} | {row['seconds']} |",
            flush=True,
        )
    for recipe in dict.fromkeys(r["recipe"] for r in rows):
        best = max((r for r in rows if r["recipe"] == recipe), key=lambda r: r["top1"])
        print(f"best {recipe}: " + ", ".join(f"{k}={v}" for k, v in best.items() if k not in ("sketches", "compilations")))

    results = {
        **run_record("eval/doodlenet_accuracy.py", argv, args.data),
        "data": {
            "root": str(root),
            "source": "quickdraw/simplified/*.ndjson (Google QuickDraw simplified, CC BY 4.0)",
            "sketches": int(len(labels)),
            "categories": len(categories),
            "per_category": args.per_category,
            "padded_length": int(batch.pen.shape[1]),
            "classes": len(class_names),
            "classes_without_sketches": sorted(set(class_names) - set(categories)),
        },
        "model": "DoodleNet (ml5), TF.js weights models/doodlenet/, logits over 345 classes",
        "batch": args.batch,
        "seconds_total": round(time.time() - start, 1),  # of this call
        "rows_resumed": resumed,
        "results": rows,
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out, results)
    journal.done()
    print(f"wrote {out} ({results['seconds_total']} s)")
    return results


if __name__ == "__main__":
    sys.exit(run_program(main, "eval/doodlenet_accuracy.py"))
