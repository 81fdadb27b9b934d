"""Faithfulness and cost of stroke attributions on real QuickDraw sketches (issue 4).

For the pre-trained **DoodleNet** and a **trained ResNet-18** (``train/configs/quickdraw_resnet.py``,
restored from its workdir), each sketch's predicted class is explained with

* ``SLA`` — stroke weights through the composition (one forward + backward pass; computed by
  :func:`~sketchjax.attribution.sla_sketch`, equal to :func:`~sketchjax.attribution.sla` on
  the stroke rasters without rendering them);
* ``P-SLA`` — point gradients through the distance-field raster, stroke = sum of ``||dF/dxy||``
  (one forward + backward pass); ``P-SLA pen`` — the same pass, stroke = sum of ``dF/dpen``;
* ``IG`` — integrated gradients over stroke weights (``--ig-steps`` passes);
* ``SmoothGrad`` — P-SLA averaged over point jitter (``--sg-samples`` passes, sigma 2%);
* ``occlusion`` — exact leave-one-stroke-out (one forward per stroke; ``occlusion_sketch``);
* ``random`` — uniform random stroke scores.

The explained score ``F`` is ``--score`` (default the logit of the predicted class; the
log-probability gave SLA a lower agreement with occlusion on the same sketches — see
``eval/results/attribution_log_prob.json``).  P-SLA differentiates with respect to canvas
coordinates (the fit to the canvas held fixed, :class:`sketchjax.render.RasterRecipe`).

Measured per method: deletion and insertion AUC of the predicted class's **probability**
(strokes removed from / added to the exact raster in decreasing attribution; fraction-of-
strokes axis), the paired margin ``AUC(random) - AUC(method)`` with a 95% bootstrap interval,
Spearman (and Kendall) agreement of the stroke ranking with exact occlusion (sketches with
>= 2 drawing strokes), correlation with human drawing order (E §5.1), and the cost per
sketch (the method's own rendering included; timed on one chunk after compilation).

Sketches: a seeded sample of the held-out 20% test split (by key_id hash) of the
``quickdraw_strokes`` dataset the ResNet was trained on (never seen by it; DoodleNet was
trained on the full QuickDraw and may have seen them), length-fitted as in training
(RDP to <= 100 points).  Both models use 28x28 inputs drawn on a canvas and area-averaged:
DoodleNet at 128 px with a 7 px line (68.6% top-1 on all 8,600 sketches), the ResNet at
112 px with a 7 px line (its training recipe); P-SLA renders the same line with the
distance field at the same canvas.

Usage (the ResNet comes from ``python train/run.py --config train/configs/quickdraw_resnet.py
--workdir runs/quickdraw_resnet``, ~12 min on the 2-core CPU; ``--models doodlenet`` skips it)::

    python eval/attribution.py [--n 512] [--models doodlenet,resnet]
                               [--resnet-workdir runs/quickdraw_resnet] [--chunk 16]
                               [--out eval/results/attribution.json]

Writes the JSON (atomically) with the command, machine and date, and the figures
``<stem>_examples.png``, ``<stem>_deletion.png`` and ``<stem>_example.svg`` next to it
(``attribution_*`` by default).
"""
from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))  # train.* (the ResNet's experiment builder)

from benchmarks.common import atomic_write_json, run_program, timeit  # noqa: E402  (the project's timer and strict JSON writer)
from sketchjax.attribution import (  # noqa: E402
    class_score,
    curve_auc,
    deletion_curve,
    drawing_order_correlation,
    integrated_gradients,
    mean_ci,
    occlusion_sketch,
    point_to_stroke,
    present_strokes,
    psla,
    random_attribution,
    rank_correlation,
    sla_sketch,
    smoothgrad,
)
from sketchjax.formats._io import argparse_output, save_figure  # noqa: E402
from sketchjax.models.doodlenet import doodlenet_class_name, doodlenet_recipe, load_doodlenet  # noqa: E402
from sketchjax.paths import data_root  # noqa: E402
from sketchjax.provenance import run_record  # noqa: E402
from sketchjax.render import RasterRecipe  # noqa: E402
from sketchjax.sketch import Sketch, num_strokes  # noqa: E402

METHODS = ("SLA", "P-SLA", "P-SLA pen", "IG", "SmoothGrad", "occlusion", "random")


def load_sketches(config: dict, n: int, seed: int):
    """A seeded sample of the test split as padded pixel-coordinate arrays, with category names."""
    from sketchjax.classifier import held_out_sketches

    return held_out_sketches(config, n, seed)


def resnet_model(workdir: pathlib.Path):
    """(apply, recipe, config, step) of the trained raster classifier restored from ``workdir``
    (the ResNet of ``quickdraw_resnet.py`` by default; any raster run works, a GACL run
    explained through its logits ``s cos theta``).

    Raises:
      SystemExit: a sequence model (no raster to attribute through), named.
    """
    from sketchjax.classifier import load_classifier

    clf = load_classifier(workdir)
    if clf.recipe is None:
        raise SystemExit(f"--resnet-workdir {workdir}: a {clf.config['model']['name']} run reads point sequences, "
                         "not rasters; stroke attribution here needs a raster model (resnet18, cnn, doodlenet)")
    apply = clf.apply
    if clf.gacl is not None:
        s = clf.gacl.s
        apply = lambda inputs: s * clf.apply(inputs)[0]  # noqa: E731 -- GACL's test-time logits
    return apply, clf.recipe, clf.config, clf.step


def build_methods(apply, recipe: RasterRecipe, k: int, score_kind: str, ig_steps: int, sg_samples: int):
    """Jitted ``fn(xy, pen, valid, classes, key) -> float32[B, K]`` per method (rendering included)."""
    score = class_score(apply, score_kind)
    finish = recipe.finish

    def strokes(xy, pen, valid):
        return recipe.stroke_rasters(xy, pen, valid, k)

    fns = {
        "SLA": lambda xy, pen, valid, y, key: sla_sketch(score, recipe, xy, pen, valid, y, max_strokes=k).strokes,
        "P-SLA": lambda xy, pen, valid, y, key: psla(score, recipe.distance, xy, pen, valid, y, max_strokes=k).strokes,
        "P-SLA pen": lambda xy, pen, valid, y, key: point_to_stroke(
            psla(score, recipe.distance, xy, pen, valid, y, max_strokes=k).pen, pen, valid, k),
        "IG": lambda xy, pen, valid, y, key: integrated_gradients(score, strokes(xy, pen, valid), y, steps=ig_steps,
                                                                  finish=finish).strokes,
        "SmoothGrad": lambda xy, pen, valid, y, key: smoothgrad(score, recipe.distance, xy, pen, valid, y, key=key,
                                                                samples=sg_samples, max_strokes=k).strokes,
        "occlusion": lambda xy, pen, valid, y, key: occlusion_sketch(score, recipe, xy, pen, valid, y,
                                                                     max_strokes=k).strokes,
        "random": lambda xy, pen, valid, y, key: random_attribution(key, strokes(xy, pen, valid)),
        "forward": lambda xy, pen, valid, y, key: score(recipe.raster(xy, pen, valid), y),
    }
    passes = {"SLA": "1 fwd + 1 bwd", "P-SLA": "1 fwd + 1 bwd", "P-SLA pen": "1 fwd + 1 bwd (same pass as P-SLA)",
              "IG": f"{ig_steps} fwd + bwd, + 1 fwd", "SmoothGrad": f"{sg_samples} fwd + bwd, + 1 fwd",
              "occlusion": "1 + K fwd (K = strokes)", "random": "0", "forward": "1 fwd (reference)"}
    prob = class_score(apply, "prob")

    def curves(xy, pen, valid, y, scores):
        s = strokes(xy, pen, valid)
        return (deletion_curve(prob, s, scores, y, finish=finish),
                deletion_curve(prob, s, scores, y, finish=finish, insertion=True), present_strokes(s))

    return {m: jax.jit(f) for m, f in fns.items()}, passes, jax.jit(curves)


def evaluate_model(name, apply, recipe, arrays, classes, args, k):
    n = len(classes)
    fns, passes, curves = build_methods(apply, recipe, k, args.score, args.ig_steps, args.sg_samples)
    c = args.chunk
    out = {m: [] for m in METHODS}
    dele = {m: [] for m in METHODS}
    ins = {m: [] for m in METHODS}
    present = []
    cost = {}
    key = jax.random.PRNGKey(args.seed)
    start = time.time()
    for lo in range(0, n, c):
        take = np.minimum(np.arange(lo, lo + c), n - 1)  # last chunk padded with its last sketch
        keep = min(c, n - lo)
        xs = (arrays["xy"][take], arrays["pen"][take], arrays["valid"][take], classes[take])
        ck = jax.random.fold_in(key, lo)
        if lo == 0:
            for m in METHODS + ("forward",):
                run = (lambda f=fns[m], a=xs + (ck,): jax.block_until_ready(f(*a)))
                cost[m] = 1e3 * timeit(run, repeats=3, warmup=1)["min"] / c  # best of 3 after a warm-up
            print(f"  [{name}] cost ms/sketch: " + ", ".join(f"{m} {v:.2f}" for m, v in cost.items()), flush=True)
        for m in METHODS:
            scores = fns[m](*xs, ck)
            d, i, p = curves(*xs, scores)
            out[m].append(np.asarray(scores)[:keep])
            dele[m].append(np.asarray(d)[:keep])
            ins[m].append(np.asarray(i)[:keep])
        present.append(np.asarray(p)[:keep])
        if (lo // c) % 8 == 0:
            print(f"  [{name}] {lo + keep}/{n} sketches, {time.time() - start:.0f} s", flush=True)
    scores = {m: np.concatenate(v) for m, v in out.items()}
    dele = {m: np.concatenate(v) for m, v in dele.items()}
    ins = {m: np.concatenate(v) for m, v in ins.items()}
    present = np.concatenate(present)
    n_present = present.sum(-1)
    auc_del = {m: np.asarray(curve_auc(jnp.asarray(v), jnp.asarray(n_present))) for m, v in dele.items()}
    auc_ins = {m: np.asarray(curve_auc(jnp.asarray(v), jnp.asarray(n_present))) for m, v in ins.items()}
    multi = n_present >= 2
    rows = {}
    for m in METHODS:
        rho = np.asarray(rank_correlation(scores[m], scores["occlusion"], present))
        tau = np.asarray(rank_correlation(scores[m], scores["occlusion"], present, "kendall"))
        order = np.asarray(drawing_order_correlation(scores[m], present))
        rows[m] = {
            "deletion_auc": mean_ci(auc_del[m]),
            "insertion_auc": mean_ci(auc_ins[m]),
            "deletion_margin_vs_random": mean_ci(auc_del["random"] - auc_del[m]),
            "insertion_margin_vs_random": mean_ci(auc_ins[m] - auc_ins["random"]),
            "spearman_vs_occlusion": mean_ci(rho[multi]),
            "kendall_vs_occlusion": mean_ci(tau[multi]),
            "drawing_order_spearman": mean_ci(order[multi]),
            "cost_ms_per_sketch": round(cost[m], 3),
            "passes": passes[m],
        }
    rows["forward"] = {"cost_ms_per_sketch": round(cost["forward"], 3), "passes": passes["forward"]}
    extras = {"scores": scores, "deletion": dele, "n_present": n_present}
    return rows, extras, time.time() - start


def make_figures(out_dir: pathlib.Path, stem: str, arrays, results, extras, labels_text):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sketchjax.attribution.plot import attribution_svg, plot_deletion_curves, plot_methods

    first = next(iter(extras))
    ex = extras[first]
    n_present = ex["n_present"]
    pick = [i for i in range(len(n_present)) if 3 <= n_present[i] <= 8][:4]
    pick = pick or [i for i in range(len(n_present)) if n_present[i] > 0][:4]
    sketches = [Sketch(xy=arrays["xy"][i], pen=arrays["pen"][i], valid=arrays["valid"][i]) for i in pick]
    shown = {m: ex["scores"][m][pick] for m in ("SLA", "P-SLA", "IG", "occlusion")}
    fig = plot_methods(sketches, shown, row_titles=[labels_text[first][i] for i in pick])
    fig.suptitle(f"{first}: stroke attribution of the predicted class (red supports it)", fontsize=9)
    fig.tight_layout()
    save_figure(fig, out_dir / f"{stem}_examples.png", dpi=110)
    attribution_svg(sketches[0], ex["scores"]["SLA"][pick[0]], out_dir / f"{stem}_example.svg", size=256)
    fig, axes = plt.subplots(1, len(extras), figsize=(5 * len(extras), 3.6), squeeze=False)
    for ax, (model, e) in zip(axes[0], extras.items()):
        plot_deletion_curves(ax, {m: e["deletion"][m] for m in METHODS if m != "P-SLA pen"}, e["n_present"],
                             ylabel="p(predicted class)", title=f"{model}: deletion in attribution order")
    fig.tight_layout()
    save_figure(fig, out_dir / f"{stem}_deletion.png", dpi=110)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="data root (default: $SKETCHJAX_DATA or ../shared/data)")
    parser.add_argument("--n", type=int, default=512, help="sketches sampled from the test split")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tfds-dir", default=None, help="TFDS data_dir of quickdraw_strokes (default: the config's)")
    parser.add_argument("--models", default="doodlenet,resnet")
    parser.add_argument("--resnet-workdir", default=str(REPO_ROOT / "runs" / "quickdraw_resnet"),
                        help="the trained model's workdir: any raster run (softmax or GACL); the sketches come "
                             "from that run's own test split")
    parser.add_argument("--score", default="logit", choices=("logit", "log_prob", "prob"))
    parser.add_argument("--psla-through-fit", action="store_true",
                        help="P-SLA / SmoothGrad gradients also through the fit to the canvas (RasterRecipe.differentiate_fit)")
    parser.add_argument("--ig-steps", type=int, default=32)
    parser.add_argument("--sg-samples", type=int, default=16)
    parser.add_argument("--chunk", type=int, default=16, help="sketches per jitted call")
    parser.add_argument("--doodlenet-canvas", type=int, default=128,
                        help="canvas DoodleNet's 28x28 input is drawn on (line 13/256 of it unless --doodlenet-width)")
    parser.add_argument("--doodlenet-width", type=int, default=None, help="line width in canvas pixels")
    parser.add_argument("--out", type=argparse_output(suffix=".json"), default=str(REPO_ROOT / "eval" / "results" / "attribution.json"))
    args = parser.parse_args(argv)
    start = time.time()
    root = data_root(args.data)
    models = args.models.split(",")
    unknown = sorted(set(models) - {"doodlenet", "resnet"})
    if unknown or not models:
        parser.error(f"--models {args.models!r}: unknown {unknown}; use doodlenet and/or resnet, comma-separated")
    for name in ("n", "ig_steps", "sg_samples", "chunk", "doodlenet_canvas", "doodlenet_width"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")

    workdir = pathlib.Path(args.resnet_workdir)
    resnet = None
    if "resnet" in models:
        resnet = resnet_model(workdir)
        config = resnet[2]
    else:
        from train.configs.quickdraw_resnet import get_config

        config = get_config()
    if args.tfds_dir:
        config = {**config, "data": {**config["data"], "data_dir": args.tfds_dir}}
    arrays, categories, split_size = load_sketches(config, args.n, args.seed)
    k = int(np.max(np.asarray(num_strokes(arrays["pen"], arrays["valid"]))))
    print(f"{len(arrays['label'])} test sketches of {split_size}, up to {k} strokes", flush=True)

    results, extras, labels_text = {}, {}, {}
    if "doodlenet" in models:
        model, variables, class_names = load_doodlenet(root)
        index = {c: i for i, c in enumerate(class_names)}
        truth = np.array([index[doodlenet_class_name(categories[l])] for l in arrays["label"]])
        apply = partial(model.apply, variables)
        recipe = doodlenet_recipe(canvas=args.doodlenet_canvas, width=args.doodlenet_width)
        specs = [("DoodleNet", apply, recipe, truth, lambda i: class_names[i])]
    else:
        specs = []
    if resnet is not None:
        apply, recipe, _, step = resnet
        arch = {"resnet18": "ResNet-18"}.get(config["model"]["name"], config["model"]["name"])
        head = " GACL" if config.get("head", {}).get("type") == "gacl" else ""
        specs.append((f"{arch}{head} (trained, {workdir.name}, step {step})", apply, recipe, arrays["label"],
                       lambda i: categories[i]))
    if args.psla_through_fit:
        specs = [(n, a, dataclasses.replace(r, differentiate_fit=True), t, f) for n, a, r, t, f in specs]
    for name, apply, recipe, truth, namer in specs:
        logits = jax.jit(lambda xy, pen, valid: apply(recipe.raster(xy, pen, valid)))(
            arrays["xy"], arrays["pen"], arrays["valid"])
        pred = np.asarray(jnp.argmax(logits, -1))
        acc = float(np.mean(pred == truth))
        print(f"{name}: top-1 {acc:.3f} on these sketches; explaining the predicted class", flush=True)
        rows, ex, seconds = evaluate_model(name, apply, recipe, arrays, pred, args, k)
        results[name] = {"top1_on_sample": acc, "recipe": str(recipe), "seconds": round(seconds, 1), "methods": rows}
        extras[name] = ex
        labels_text[name] = [f"{namer(int(t))} → {namer(int(p))}" for t, p in zip(truth, pred)]
        for m in METHODS:
            r = rows[m]
            print(f"  {m:11s} del AUC {r['deletion_auc']['mean']:.3f}  ins AUC {r['insertion_auc']['mean']:.3f}  "
                  f"margin {r['deletion_margin_vs_random']['mean']:+.3f} [{r['deletion_margin_vs_random']['lo']:+.3f}, "
                  f"{r['deletion_margin_vs_random']['hi']:+.3f}]  rho(occ) median {r['spearman_vs_occlusion']['median']:.2f} "
                  f"[{r['spearman_vs_occlusion']['median_lo']:.2f}, {r['spearman_vs_occlusion']['median_hi']:.2f}]"
                  f"  order rho {r['drawing_order_spearman']['mean']:+.2f}  {r['cost_ms_per_sketch']:.2f} ms", flush=True)

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    make_figures(out.parent, out.stem, arrays, results, extras, labels_text)
    record = {
        **run_record("eval/attribution.py", argv, args.data),
        "data": {
            "root": str(root),
            "source": "quickdraw_strokes test split (20% by key_id hash) of quickdraw/simplified/*.ndjson, real human sketches",
            "sketches": int(len(arrays["label"])),
            "test_split_size": split_size,
            "max_strokes": k,
            "length_fit": f"{config['data']['fit']} to <= {config['data']['max_len']} points",
        },
        "score": args.score,
        "curves": "probability of the explained (predicted) class; AUC on the fraction-of-strokes axis",
        "psla_through_fit": args.psla_through_fit,
        "ig_steps": args.ig_steps,
        "smoothgrad": {"samples": args.sg_samples, "sigma": "2% of the bounding box"},
        "chunk": args.chunk,
        "seconds_total": round(time.time() - start, 1),
        "results": results,
    }
    atomic_write_json(out, record)
    print(f"wrote {out} and figures ({record['seconds_total']} s)")
    return record


if __name__ == "__main__":
    sys.exit(run_program(main, "eval/attribution.py"))
