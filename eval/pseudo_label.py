"""Pseudo-label GACL on 2-D mixtures of 9 Gaussians (G §6, Fig. 13; issue 5 §4).

No labels at all: k-means pseudo-labels, a four-layer perceptron with a GACL-Cos head,
labels re-assigned to the nearest class centre every few epochs
(:func:`sketchjax.apps.pseudo_label.train_pseudo_label_gacl`).  The mixtures (sigma 0.05, as
in the paper; on a circle of radius 1 and on a 3 x 3 grid of spacing 1) get 10% uniform
background points that belong to no component.  Measured against the known mixture:

* Spearman of ``q`` with the distance to the mixture's Bayes decision boundary (G §6 reads
  GACL's score as "farther from the decision boundary"), over all points and over the
  mixture points only;
* AUC of ``q`` for mixture vs background points;
* Spearman of ``q`` with the log-density;
* the same three for ``cos theta_pred`` (the classifier's own confidence), for reference;
* cluster purity of the final pseudo-labels (mixture points).

Usage::

    python eval/pseudo_label.py [--seeds 0,1,2] [--out eval/results/pseudo_label.json]

Writes the JSON atomically (command, machine, date) and ``<stem>.png`` (points coloured by q).
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

from benchmarks.common import atomic_write_json, run_program  # noqa: E402  (the project's atomic JSON writer)
from sketchjax.formats._io import argparse_output, save_figure  # noqa: E402
from sketchjax.apps.pseudo_label import (  # noqa: E402
    PseudoLabelConfig,
    boundary_distance,
    gaussian_mixture,
    mixture_log_density,
    train_pseudo_label_gacl,
)
from sketchjax.gacl import roc_auc, spearman  # noqa: E402
from sketchjax.provenance import run_record  # noqa: E402

STD = 0.05


def purity(labels: np.ndarray, comp: np.ndarray, k: int) -> float:
    """Fraction of points whose pseudo-label's majority component is their own component."""
    table = np.zeros((k, comp.max() + 1), int)
    np.add.at(table, (labels, comp), 1)
    return float(table.max(axis=1).sum() / len(labels))


def run_one(layout: str, seed: int, cfg: PseudoLabelConfig, n_per: int) -> tuple[dict, dict]:
    x, comp, centres = gaussian_mixture(jax.random.PRNGKey(1000 + seed), n_per, layout, std=STD, background=0.1)
    t0 = time.time()
    out = train_pseudo_label_gacl(jax.random.PRNGKey(seed), x, cfg)
    seconds = time.time() - t0
    bd = boundary_distance(x, centres)
    ld = mixture_log_density(x, centres, STD)
    mixture = np.asarray(comp) >= 0
    row = {"seconds": seconds}
    for name in ("q", "cos_pred"):
        s = out[name]
        row[name] = {
            "spearman_boundary_distance": float(spearman(s, bd)),
            "spearman_boundary_distance_mixture_only": float(spearman(s, bd, mixture)),
            "auc_mixture_vs_background": float(roc_auc(s, mixture)),
            "spearman_log_density": float(spearman(s, ld)),
        }
    labels, c = np.asarray(out["labels"]), np.asarray(comp)
    row["purity"] = purity(labels[mixture], c[mixture], cfg.k)
    # every reassignment, in epoch order, including those that changed no label
    row["relabelled_per_reassignment"] = [h["relabelled"] for h in out["history"] if h["relabelled"] is not None]
    return row, {"x": np.asarray(x), "q": np.asarray(out["q"]), "centres": np.asarray(centres), "mixture": mixture}


def summary(rows: list[dict]) -> dict:
    out = {}
    for name in ("q", "cos_pred"):
        out[name] = {k: {"mean": float(np.mean([r[name][k] for r in rows])),
                         "min": float(np.min([r[name][k] for r in rows])),
                         "max": float(np.max([r[name][k] for r in rows]))} for k in rows[0][name]}
    out["purity"] = float(np.mean([r["purity"] for r in rows]))
    return out


def figure(shown: dict, path: pathlib.Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(shown), figsize=(5 * len(shown), 4.4), squeeze=False)
    for ax, (layout, d) in zip(axes[0], shown.items()):
        m, lim = d["mixture"], (float(d["q"].min()), float(d["q"].max()))
        sc = ax.scatter(d["x"][m, 0], d["x"][m, 1], c=d["q"][m], s=3, cmap="viridis", vmin=lim[0], vmax=lim[1])
        ax.scatter(d["x"][~m, 0], d["x"][~m, 1], c=d["q"][~m], s=14, marker="x", linewidths=0.8, cmap="viridis",
                   vmin=lim[0], vmax=lim[1], label="background (x)")
        ax.scatter(d["centres"][:, 0], d["centres"][:, 1], marker="+", color="black", s=40, label="centres")
        ax.set_aspect("equal")
        ax.set_title(f"{layout}: GACL q (pseudo-labels)", fontsize=9)
        ax.legend(fontsize=7, loc="lower right")
        plt.colorbar(sc, ax=ax, fraction=0.046, pad=0.02)
    fig.tight_layout()
    save_figure(fig, path, dpi=120)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--n-per", type=int, default=500, help="points per Gaussian")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--out", type=argparse_output(suffix=".json"), default=str(REPO_ROOT / "eval/results/pseudo_label.json"),
                        help="default: <repo>/eval/results/pseudo_label.json")
    args = parser.parse_args(argv)
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds {args.seeds!r}: comma-separated whole numbers")
    if len(set(seeds)) < len(seeds):  # a repeated seed was averaged twice
        parser.error(f"--seeds {args.seeds!r}: each seed once")
    for name, v in (("--n-per", args.n_per), ("--epochs", args.epochs)):
        if v < 1:
            parser.error(f"{name} {v}: must be >= 1")
    cfg = PseudoLabelConfig(widths=(64, 64, 64, 32), epochs=args.epochs)
    results, shown = {}, {}
    for layout in ("circle", "grid"):
        rows = []
        for seed in seeds:
            row, data = run_one(layout, seed, cfg, args.n_per)
            rows.append(row)
            shown.setdefault(layout, data)
            print(f"{layout} seed {seed}: Spearman(q, boundary distance) "
                  f"{row['q']['spearman_boundary_distance']:.3f} (cos {row['cos_pred']['spearman_boundary_distance']:.3f}), "
                  f"AUC(mixture vs background) {row['q']['auc_mixture_vs_background']:.3f}, purity {row['purity']:.3f}, "
                  f"{row['seconds']:.1f} s", flush=True)
        results[layout] = {"per_seed": rows, "summary": summary(rows)}
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    png = out.with_suffix(".png")
    figure(shown, png)
    report = {
        **run_record("eval/pseudo_label.py", argv),
        "data": f"synthetic 2-D mixtures of 9 Gaussians (sigma {STD}), {args.n_per} points each + 10% uniform "
                "background; no labels used",
        "config": {"widths": list(cfg.widths), "epochs": cfg.epochs, "reassign_every": cfg.reassign_every,
                   "batch_size": cfg.batch_size, "learning_rate": cfg.learning_rate,
                   "gacl": {"kind": cfg.gacl.kind, "s": cfg.gacl.s, "margin_scale": cfg.gacl.margin_scale,
                            "lambda_g": cfg.gacl.lambda_g}},
        "seeds": seeds,
        "results": results,
        "figure": str(png),
    }
    atomic_write_json(out, report)
    print(f"wrote {out} and {png}")
    return report


if __name__ == "__main__":
    sys.exit(run_program(main, "eval/pseudo_label.py"))
