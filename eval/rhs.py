"""Rare-and-hard vs malicious sketches: F1 of ``q`` alone vs ``q_max+`` (G §4.4, Fig. 10; issue 5 §4).

A trained GACL run (``--run``) scores two sets built from the held-out real sketches:

* **rare-and-hard** (benign, label 0): real held-out sketches with ``--noise-strokes`` random
  scribble strokes added inside their bounding box (:func:`sketchjax.degrade.add_scribbles`);
* **malicious** (label 1): drawings of no category — half pure scribbles (3-6 random-walk
  strokes, :func:`sketchjax.degrade.scribble_sketch`), half "stroke salad": 3-6 strokes
  taken from different held-out sketches of different categories, overlaid.

Each sketch gets ``q`` and ``q_max+`` (:func:`sketchjax.apps.rhs.q_max_plus`: the best ``q``
after removing up to ``--rounds`` strokes greedily).  A sketch is called malicious when its
score is below a threshold; reported per score: ROC AUC and the best F1 over thresholds (an
oracle threshold for both, so the comparison is fair), plus F1 at the threshold chosen on a
held-out half.  The clean sketches' ``q`` is reported for scale.

Usage::

    python eval/rhs.py --run runs/quickdraw_resnet_gacl [--n 400] [--rounds 1,2] [--out eval/results/rhs.json]
"""
from __future__ import annotations

import argparse
import pathlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import atomic_write_json, run_program  # noqa: E402  (the project's atomic JSON writer)
from sketchjax.formats._io import argparse_output  # noqa: E402
from sketchjax.apps.cleansing import threshold_sweep  # noqa: E402
from sketchjax.apps.rhs import q_max_plus  # noqa: E402
from sketchjax.degrade import add_scribbles, room, scribble_sketch  # noqa: E402
from sketchjax.gacl import roc_auc  # noqa: E402
from sketchjax.provenance import run_record  # noqa: E402
from sketchjax.sketch import num_strokes, stroke_ids  # noqa: E402


def best_f1(scores: np.ndarray, positive: np.ndarray) -> tuple[float, float]:
    """Best F1 of "positive when score <= t" over all thresholds t (each distinct score), and
    that threshold (the smallest reaching it; :func:`f1_at` reads it with ``<=``)."""
    sweep = threshold_sweep(-np.asarray(scores), positive)
    return sweep["best_f1"], -sweep["best_f1_theta"]


def f1_at(scores, positive, threshold) -> float:
    flagged = scores <= threshold
    tp = np.sum(flagged & positive)
    return float(2 * tp / max(flagged.sum() + positive.sum(), 1))


def stroke_salad(arrays: dict, n: int, t: int, seed: int):
    """``n`` overlays of 3-6 strokes (at most one per category present: fewer with fewer than six
    categories), each from a different held-out sketch of a different category."""
    rng = np.random.default_rng(seed)
    n_labels = len(np.unique(arrays["label"]))
    if n_labels < 2:
        raise ValueError(f"stroke_salad: mixing strokes of different categories needs at least 2, the run has {n_labels}")
    sid = np.asarray(stroke_ids(arrays["pen"], arrays["valid"]))
    xy_out = np.zeros((n, t, 2), np.float32)
    pen_out = np.zeros((n, t), np.float32)
    valid_out = np.zeros((n, t), bool)
    for i in range(n):
        k = min(int(rng.integers(3, 7)), n_labels)
        used, pos = set(), 0
        while len(used) < k:
            j = int(rng.integers(len(sid)))
            lab = int(arrays["label"][j])
            if lab in used:
                continue
            strokes = sid[j][sid[j] >= 0]
            pick = int(rng.integers(strokes.max() + 1))
            pts = np.nonzero(sid[j] == pick)[0]
            m = min(len(pts), t - pos)
            if m <= 0:
                break
            xy_out[i, pos:pos + m] = arrays["xy"][j][pts[:m]]
            pen_out[i, pos:pos + m - 1] = 1.0
            valid_out[i, pos:pos + m] = True
            pos += m
            used.add(lab)
    return xy_out, pen_out, valid_out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="workdir of a GACL training run")
    parser.add_argument("--n", type=int, default=400,
                        help="sketches per set (rare-and-hard; malicious); at most the run's held-out sketches")
    parser.add_argument("--noise-strokes", type=int, default=1)
    parser.add_argument("--rounds", default="1,2", help="greedy removal rounds to report")
    parser.add_argument("--max-strokes", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8, help="sketches per q_max+ batch (x max-strokes versions)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=argparse_output(suffix=".json"), default=str(REPO_ROOT / "eval/results/rhs.json"),
                        help="default: <repo>/eval/results/rhs.json")
    args = parser.parse_args(argv)
    # every setting checked before the run is loaded and the sets are built
    for name, v, least in (("--n", args.n, 2), ("--batch", args.batch, 1), ("--noise-strokes", args.noise_strokes, 0),
                           ("--max-strokes", args.max_strokes, 1)):
        if v < least:
            parser.error(f"{name} must be >= {least}, got {v}")
    try:
        rounds = [int(r) for r in args.rounds.split(",")]
    except ValueError:
        rounds = []
    if not rounds or min(rounds) < 1:
        parser.error(f"--rounds {args.rounds!r}: comma-separated whole numbers >= 1 (a 0 read the last round's column)")
    from sketchjax.classifier import held_out_sketches, load_classifier

    clf = load_classifier(args.run)
    if clf.gacl is None:
        raise SystemExit(f"{args.run}: not a GACL run")
    arrays, categories, split_size = held_out_sketches(clf.config, expect_dataset=clf.dataset)
    t = arrays["pen"].shape[1] + room(args.noise_strokes)
    pad = ((0, 0), (0, t - arrays["pen"].shape[1]))
    arrays = {**arrays, "xy": np.pad(arrays["xy"], pad + ((0, 0),)), "pen": np.pad(arrays["pen"], pad),
              "valid": np.pad(arrays["valid"], pad)}
    # both sets the same size: at most the held-out sketches there are (a larger --n made the
    # malicious set outnumber the rare-and-hard one, which inflates F1)
    n = min(args.n, len(arrays["label"]))
    if n < args.n:
        print(f"--n {args.n}: the run has {n} held-out sketches; {n} per set")
    rng = np.random.default_rng(args.seed)
    pick = np.sort(rng.permutation(len(arrays["label"]))[:n])
    base = jax.random.PRNGKey(args.seed)
    keys = jax.random.split(jax.random.fold_in(base, 1), len(pick))
    rhs = jax.jit(jax.vmap(lambda k, a, b, c: add_scribbles(k, a, b, c, args.noise_strokes)))(
        keys, arrays["xy"][pick], arrays["pen"][pick], arrays["valid"][pick])
    n_scr = n // 2
    counts = rng.integers(3, 7, size=n_scr)
    scr = [scribble_sketch(jax.random.fold_in(jax.random.fold_in(base, 2), i), t, int(c)) for i, c in enumerate(counts)]
    scribbles = tuple(np.stack([np.asarray(s[j]) for s in scr]) for j in range(3))
    salad = stroke_salad(arrays, n - n_scr, t, args.seed)
    # sequence models see every set length-fitted as in training (scribbles add points)
    sets = {name: clf.fit_arrays(*v) for name, v in
            {"rare_and_hard": rhs, "scribbles": scribbles, "stroke_salad": salad}.items()}
    q_fn = lambda xy, pen, valid: clf.scores(xy, pen, valid)["q"]  # noqa: E731
    t0 = time.time()
    scored, beyond = {}, {}
    fn = jax.jit(lambda a, b, c: q_max_plus(q_fn, a, b, c, args.max_strokes, rounds=max(rounds)))
    for name, (xy, pen, valid) in sets.items():
        # q_max+ tries strokes 0 .. max_strokes - 1 only: count the sketches it cannot fully search
        beyond[name] = int(np.sum(np.asarray(num_strokes(jnp.asarray(pen), jnp.asarray(valid))) > args.max_strokes))
        if beyond[name]:
            print(f"[{name}] {beyond[name]} sketch(es) have more than --max-strokes {args.max_strokes} strokes; "
                  "strokes past it are never tried", flush=True)
        qs, plus = [], []
        for i in range(0, len(xy), args.batch):
            sl = [np.asarray(v[i:i + args.batch]) for v in (xy, pen, valid)]
            m = len(sl[0])
            if m < args.batch:  # pad with copies of the first row: one compiled shape
                sl = [np.concatenate([v, np.repeat(v[:1], args.batch - m, 0)]) for v in sl]
            q, qp, _ = fn(*sl)
            qs.append(np.asarray(q)[:m])
            plus.append(np.asarray(qp)[:m])
        plus = np.concatenate(plus)
        scored[name] = {"q": np.concatenate(qs), **{f"q_max+{r}": plus[:, r - 1] for r in rounds}}
    seconds = time.time() - t0
    clean_q = clf.score_arrays(arrays["xy"][pick], arrays["pen"][pick], arrays["valid"][pick])["q"]
    malicious = np.r_[np.zeros(len(scored["rare_and_hard"]["q"]), bool),
                      np.ones(len(scored["scribbles"]["q"]) + len(scored["stroke_salad"]["q"]), bool)]
    half = np.random.default_rng(args.seed + 1).random(len(malicious)) < 0.5
    results = {}
    for score in ["q"] + [f"q_max+{r}" for r in rounds]:
        s = np.concatenate([scored[n][score] for n in ("rare_and_hard", "scribbles", "stroke_salad")])
        f1, thr = best_f1(s, malicious)
        _, thr_half = best_f1(s[half], malicious[half])
        results[score] = {
            "auc_malicious": float(roc_auc(-s, malicious)),
            "best_f1": f1, "best_threshold": thr,
            "f1_threshold_from_other_half": f1_at(s[~half], malicious[~half], thr_half),
            "median": {n: float(np.median(scored[n][score])) for n in scored},
        }
        print(f"{score:10s} AUC {results[score]['auc_malicious']:.3f}  best F1 {f1:.3f}  "
              f"F1 (threshold from the other half) {results[score]['f1_threshold_from_other_half']:.3f}", flush=True)
    report = {
        **run_record("eval/rhs.py", argv),
        "data": f"rare-and-hard: {len(pick)} real held-out QuickDraw sketches (of {split_size}) + "
                f"{args.noise_strokes} scribble stroke(s) each; malicious: {n_scr} random scribble drawings and "
                f"{n - n_scr} stroke salads from held-out sketches",
        "run": str(args.run), "step": clf.step,
        "gacl": {"kind": clf.gacl.kind, "margin_scale": clf.gacl.margin_scale},
        "clean_q_median": float(np.median(clean_q)),
        "f1_flag_everything": float(2 * malicious.mean() / (1 + malicious.mean())),
        "seconds_scoring": seconds,
        "sketches_with_more_strokes_than_max_strokes": beyond,
        "results": results,
    }
    out = pathlib.Path(args.out)
    atomic_write_json(out, report)  # creates the folder
    print(f"wrote {out}")
    return report


if __name__ == "__main__":
    sys.exit(run_program(main, "eval/rhs.py"))
