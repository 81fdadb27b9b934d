"""Samples of the pre-trained sketch-rnn-js decoders: length, ending, and DoodleNet recognition.

For each decoder in ``models/sketch_rnn/*.gen.json`` (unconditional, one per QuickDraw
category) and each temperature, draw ``--num`` sketches with
:func:`sketchjax.models.sketch_rnn.sample` (up to the decoder's own ``max_seq_len`` steps) and
report, per category and temperature:

* ``mean_length`` — mean number of points (stroke-5 rows before the end-of-sketch row);
* ``ended`` — fraction of samples that drew ``p3`` (end of sketch) before ``max_seq_len``;
* ``top1`` / ``top5`` — fraction recognised as the decoder's category by DoodleNet (345
  classes; :func:`sketchjax.models.doodlenet.doodlenet_input` recipe: fit to 256 px with 8%
  margin, its default Bresenham line (13 px; recorded in the JSON as ``doodlenet_input``),
  area-downsample to 28x28), when
  :mod:`sketchjax.models.doodlenet` and its weights are available.

Two pen/mixture softmax temperature rules (``--softmax``): ``magenta`` — the same
temperature ``τ`` on the π and pen softmaxes as on the Gaussians (Magenta's Python
``sample``); ``js`` — ``0.5 + 0.5 τ`` on the softmaxes (sketch-rnn-js ``generate``'s default).
Offsets always use ``σ · sqrt(τ)``.  Both rules see the same random keys.

The data README states DoodleNet recognises samples at temperature 0.25 as sheep 94%,
bird 81%, rabbit 62% (sampling rule not stated).

Usage::

    python eval/sketch_rnn_samples.py [--categories sheep bird rabbit] [--num 100]
        [--temperatures 0.1 0.25 0.5 0.8 1.0] [--softmax magenta js] [--seed 0]
        [--data DIR] [--out out/sketch_rnn_samples.json]

Expected cost and result: the default run (all 28 decoders, 100 samples, 5 temperatures, both
rules) took 951 s on 2 CPU cores shared with a training run (2026-12-03; about 3 s per row,
mostly the 256 px DoodleNet raster).  DoodleNet top-1 at temperature 0.25, ``magenta`` / ``js``
rule: sheep 77% / 93%, bird 73% / 80%, rabbit 87% / 88%; mean over the 28 categories 61% / 71%
(100 samples per cell, so about ±5 points of sampling noise per category).  The decoders start
from sketch-rnn-js's all-zero input (before 2026-12-03, from Magenta's ``(0, 0, 1, 0, 0)``:
43% / 52%).
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time
from typing import Optional, Sequence

import jax
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import RowJournal, atomic_write_json, run_program  # noqa: E402  (strict JSON, atomic)
from sketchjax.formats._io import argparse_output  # noqa: E402
from sketchjax.models.sketch_rnn import sample, stroke5_to_sketch
from sketchjax.models.sketch_rnn_js import load_sketch_rnn_js
from sketchjax.paths import data_root
from sketchjax.provenance import run_record

SOFTMAX_RULES = {
    "magenta": lambda t: None,  # None: the softmax temperature is the temperature itself
    "js": lambda t: 0.5 + 0.5 * t,
}


def _doodlenet(root: pathlib.Path):
    """``(classify, class_names)`` or ``None`` when the module or its weights are unavailable."""
    try:
        from sketchjax.models import doodlenet
    except ImportError as e:
        print(f"DoodleNet not available ({e}); reporting lengths only", file=sys.stderr)
        return None
    try:
        _, variables, names = doodlenet.load_doodlenet(root / "models" / "doodlenet")
    except Exception as e:  # missing/corrupt weights: still report sample statistics
        print(f"DoodleNet weights not loadable ({e}); reporting lengths only", file=sys.stderr)
        return None

    def classify(xy, pen, valid):
        images = doodlenet.doodlenet_input(xy, pen, valid)
        return np.asarray(doodlenet.doodlenet_classify(variables, images))

    return classify, list(names)


def _input_recipe() -> dict:
    """The keyword defaults of :func:`sketchjax.models.doodlenet.doodlenet_input` this run used."""
    import inspect

    from sketchjax.models import doodlenet

    return {k: p.default for k, p in inspect.signature(doodlenet.doodlenet_input).parameters.items()
            if p.default is not inspect.Parameter.empty}


def evaluate(
    files: Sequence[pathlib.Path],
    temperatures: Sequence[float],
    rules: Sequence[str],
    num: int,
    seed: int,
    doodlenet=None,
    journal=None,
) -> list[dict]:
    """One row per (category, temperature, rule): see the module docstring for the fields.

    ``journal`` (a ``benchmarks.common.RowJournal``): rows it holds are taken from it, new ones
    added to it (each row's samples come from its own key, so a resumed run draws the same)."""
    rows = []
    for c_index, path in enumerate(files):
        config, variables = load_sketch_rnn_js(path)
        category = config.name or path.name.split(".")[0]
        target = None
        if doodlenet is not None:
            names = doodlenet[1]
            target = names.index(category) if category in names else None
        for t_index, temperature in enumerate(temperatures):
            key = jax.random.fold_in(jax.random.fold_in(jax.random.key(seed), c_index), t_index)
            for rule in rules:
                kept = journal.get([category, temperature, rule]) if journal is not None else None
                if kept is not None:
                    rows.append(kept)
                    continue
                start = time.time()
                strokes, lengths = sample(
                    variables, config, key, num=num, temperature=temperature,
                    softmax_temperature=SOFTMAX_RULES[rule](temperature),
                )
                lengths_np = np.asarray(lengths)
                row = {
                    "category": category,
                    "temperature": temperature,
                    "softmax_rule": rule,
                    "num": num,
                    "max_len": config.max_len,
                    "mean_length": float(lengths_np.mean()),
                    "ended": float(np.mean(lengths_np < config.max_len)),
                    "empty": int(np.sum(lengths_np == 0)),
                }
                if target is not None:
                    sketch = stroke5_to_sketch(strokes, lengths, config.scale_factor)
                    probs = doodlenet[0](sketch.xy, sketch.pen, sketch.valid)
                    top5 = np.argsort(-probs, axis=-1)[:, :5]
                    nonempty = lengths_np > 0  # an empty sample counts as not recognised
                    row["top1"] = float(np.mean((top5[:, 0] == target) & nonempty))
                    row["top5"] = float(np.mean((top5 == target).any(axis=1) & nonempty))
                row["seconds"] = round(time.time() - start, 2)
                rows.append(row)
                if journal is not None:
                    journal.add([category, temperature, rule], row)
                print(
                    f"{category:15s} T={temperature:<5g} {rule:8s} len {row['mean_length']:6.1f} "
                    f"ended {row['ended']:5.0%}"
                    + (f"  top1 {row['top1']:5.0%} top5 {row['top5']:5.0%}" if "top1" in row else "")
                    + f"  ({row['seconds']:.1f}s)",
                    flush=True,
                )
    return rows


def _table(rows: list[dict], temperatures: Sequence[float], rules: Sequence[str]) -> str:
    """Markdown: one line per category and rule; per temperature ``top1 / ended / length``."""
    has_top1 = any("top1" in r for r in rows)
    cell = "top1 / ended / len" if has_top1 else "ended / len"
    lines = [
        "| category | rule | " + " | ".join(f"T={t:g} ({cell})" for t in temperatures) + " |",
        "|---|---|" + "---:|" * len(temperatures),
    ]
    index = {(r["category"], r["softmax_rule"], r["temperature"]): r for r in rows}
    categories = list(dict.fromkeys(r["category"] for r in rows))
    for rule in rules:
        for c in categories + ["**mean**"]:
            cells = []
            for t in temperatures:
                if c == "**mean**":
                    sel = [r for r in rows if r["softmax_rule"] == rule and r["temperature"] == t]
                else:
                    sel = [index[(c, rule, t)]]
                ended = np.mean([r["ended"] for r in sel])
                length = np.mean([r["mean_length"] for r in sel])
                text = f"{ended:.0%} / {length:.0f}"
                if has_top1:
                    text = f"{np.mean([r.get('top1', np.nan) for r in sel]):.0%} / " + text
                cells.append(text)
            lines.append(f"| {c} | {rule} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--categories", nargs="*", default=None, help="decoder names (default: all in the data)")
    parser.add_argument("--num", type=int, default=100, help="samples per category and temperature")
    parser.add_argument("--temperatures", type=float, nargs="+", default=[0.1, 0.25, 0.5, 0.8, 1.0])
    parser.add_argument("--softmax", nargs="+", choices=sorted(SOFTMAX_RULES), default=["magenta", "js"])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data", default=None, help="data root (default: $SKETCHJAX_DATA or ../shared/data)")
    parser.add_argument("--no-doodlenet", action="store_true", help="skip DoodleNet recognition")
    parser.add_argument("--out", type=argparse_output(suffix=".json"), default=str(REPO_ROOT / "out" / "sketch_rnn_samples.json"))
    args = parser.parse_args(argv)
    if args.num < 1:
        parser.error(f"--num must be >= 1, got {args.num}")
    bad = [t for t in args.temperatures if not 0.0 < t < float("inf")]  # checked before hours of sampling
    if bad:
        parser.error(f"--temperatures must be finite and > 0 (0 would be greedy: one sketch), got {bad}")
    # a repeated value was a second row copied from the journal, counted twice in the means
    for name, values in (("--categories", args.categories or []), ("--temperatures", args.temperatures),
                         ("--softmax", args.softmax)):
        if len(set(values)) < len(values):
            parser.error(f"{name}: each value once, got {values}")

    root = data_root(args.data)
    model_dir = root / "models" / "sketch_rnn"
    if args.categories:
        files = [model_dir / f"{c}.gen.json" for c in args.categories]
        missing = [str(f) for f in files if not f.exists()]
        if missing:
            parser.error(f"no decoder file: {', '.join(missing)}")
    else:
        files = sorted(model_dir.glob("*.gen.json"))
    doodlenet = None if args.no_doodlenet else _doodlenet(root)

    start = time.time()
    journal = None
    if args.out:  # a killed run resumes: finished rows are kept beside --out until the end
        journal = RowJournal(args.out, {"files": [str(f) for f in files], "temperatures": args.temperatures,
                                        "softmax": args.softmax, "num": args.num, "seed": args.seed,
                                        "doodlenet": doodlenet is not None})
    resumed = len(journal) if journal is not None else 0
    rows = evaluate(files, args.temperatures, args.softmax, args.num, args.seed, doodlenet, journal)
    seconds = round(time.time() - start, 1)
    table = _table(rows, args.temperatures, args.softmax)
    print()
    print(table)
    print(f"\n{len(files)} decoders x {len(args.temperatures)} temperatures x {len(args.softmax)} rules, "
          f"{args.num} samples each: {seconds:.0f} s")
    results = {
        **run_record("eval/sketch_rnn_samples.py", argv, args.data),
        "seconds": seconds,  # of this call: rows_resumed rows came from a killed earlier call
        "rows_resumed": resumed,
        "doodlenet": doodlenet is not None,
        "doodlenet_input": _input_recipe() if doodlenet is not None else None,
        "note": "samples of Google's pre-trained sketch-rnn-js decoders, scored by the pre-trained DoodleNet; "
        "no human judgement involved",
        "rows": rows,
        "table": table,
    }
    if args.out:
        out = pathlib.Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out, results)
        journal.done()
        print(f"wrote {out}")
    return results


if __name__ == "__main__":
    sys.exit(run_program(main, "eval/sketch_rnn_samples.py"))
