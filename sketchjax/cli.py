"""Command-line entry point: ``sketchjax <command> ...``.

Commands:
  explain  Classify sketches with the pre-trained DoodleNet and explain each prediction
           stroke by stroke (SLA), point by point (P-SLA) and by exact stroke occlusion;
           print a table and write a figure (and attribution-coloured SVGs with --svg-dir).
  render   Render sketches with all three renderers (Bresenham raster, per-stroke SLA
           composition, P-SLA distance field) and a 28x28 DoodleNet-style input drawn with
           the data README's line (size / 16 px; the library's DoodleNet recipe,
           ``doodlenet_recipe``, uses 13 px per 256, which explain draws); write a figure.
  quality  Score sketches with a trained GACL classifier (``--checkpoint`` a training run's
           workdir): quality q, predicted class, cosine; print a table sorted by q and write
           a figure.
  cleanse  Flag suspicious labels of the examples a run trained on (by default its training
           split): with a GACL run, samples drawn well (large q) but far from their labelled
           class (large angle), or very poor (very low q); with any run (softmax too),
           ``--rule small-loss``: a low probability of the label; writes a CSV.

Without FILES they take real QuickDraw sketches from the data root (``SKETCHJAX_DATA``,
default ``../shared/data``); FILES may be ``.ndjson`` (or ``.ndjson.gz``), ``.npz`` or ``.svg``.  ``--n`` sketches
are read (default 6; ``quality`` reads every sketch of FILES), and files left unread are named.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import pathlib
import re
import sys
import warnings
from typing import Sequence

import numpy as np

__all__ = ["main", "load_sketch_file"]

DEFAULT_CATEGORIES = ("cat", "The Eiffel Tower", "bicycle", "sheep", "house", "owl")
DEFAULT_N = 6  # sketches drawn by render / explain (and taken from the data root without FILES)
SKETCH_SUFFIXES = (".ndjson", ".ndjson.gz", ".npz", ".svg")
_SUPPORTED = ".ndjson (or .ndjson.gz), .npz or .svg"
FIGURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".svg", ".pdf")
_SVG_NAME = re.compile(r"[0-9]{3}_.*\.svg")  # explain's per-sketch SVGs: 000_<label>.svg
DOODLENET_INPUT = 28  # sketchjax.models.doodlenet.DOODLENET_SIZE (not imported here: the CLI starts without jax)
QUALITY_FIGURE_MAX = 36  # quality's figure: the highest and lowest q when there are more


def load_sketch_file(path: str, *, limit: int | None, single_point: str = "keep", name: str | None = None):
    """Sketches from a ``.ndjson`` (QuickDraw; also gzipped, ``.ndjson.gz``), ``.npz`` (sketch-rnn,
    all splits), ``.svg`` file.

    One-point strokes (taps) are kept by default, as the training data builders keep them: they
    draw nothing, and stroke ``k`` of a table or figure is stroke ``k`` of the file.

    Returns a list of ``(label, Sketch)`` (at most ``limit``; None: all), each label naming the
    sketch and where it is: ``"cat (cat.ndjson:17)"``, ``"owl.npz:test[3]"``, ``"1.svg"`` — with
    ``name`` (default the file's base name) in place of the file name.
    """
    from sketchjax import formats

    suffix = sketch_suffix(path)
    name = pathlib.Path(path).name if name is None else name
    if pathlib.Path(path).is_dir():  # also a folder named like a sketch file
        raise ValueError(f"{path}: is a directory; give sketch files ({_SUPPORTED})")
    if suffix in (".ndjson", ".ndjson.gz"):  # "cat (cat.ndjson:17)": the word and where the sketch is; else "cat.ndjson:17"
        return [
            (f"{rec.word} ({name}:{rec.source.rsplit(':', 1)[-1]})" if rec.word
             else f"{name}:{rec.source.rsplit(':', 1)[-1]}", rec.sketch)
            for rec in formats.iter_ndjson(path, single_point=single_point, limit=limit)
        ]
    if suffix == ".npz":
        out = []
        for split, arrays in formats.load_npz(path).items():
            for i, s3 in enumerate(arrays if limit is None else arrays[: max(0, limit - len(out))]):
                out.append((f"{name}:{split}[{i}]", formats.from_stroke3(s3, name=f"{path}:{split}[{i}]", single_point=single_point)))
        return out
    if suffix == ".svg":
        return [(name, formats.read_svg(pathlib.Path(path), single_point=single_point))]  # a path: never SVG text
    raise ValueError(f"{path}: unsupported file type {suffix!r} (use {_SUPPORTED})")


def sketch_suffix(path) -> str:
    """The file type of ``path`` as its lower-case suffix: ``".ndjson.gz"`` for a gzipped
    ndjson file so named, else the last suffix (``""`` without one)."""
    name = pathlib.Path(path).name.lower()
    return ".ndjson.gz" if name.endswith(".ndjson.gz") else pathlib.Path(name).suffix


def _tex_safe(text) -> str:
    """``text`` shown as written in a matplotlib title or label (a ``$`` pair is read as maths:
    a word like ``price $^$`` failed only when the figure was saved, after all the work)."""
    return str(text).replace("$", r"\$")


def _fit(label, width: int) -> str:
    """``label`` in at most ``width`` characters, cut in the middle: the start (the word) and the
    end (file and line, which tell sketches apart) both stay."""
    label = str(label)
    if len(label) <= width:
        return label
    head = (width - 1) // 2
    return label[:head] + "…" + label[len(label) - (width - 1 - head):]


def _default_sketches(data: str | None, n: int):
    from sketchjax import formats
    from sketchjax.paths import data_root

    root = data_root(data) / "quickdraw" / "simplified"
    per_category = -(-n // len(DEFAULT_CATEGORIES))  # more than six: later sketches of the same categories
    columns = []
    for cat in DEFAULT_CATEGORIES[:n]:
        path = root / f"{cat}.ndjson"
        if not path.exists() and path.with_name(f"{cat}.ndjson.gz").exists():  # a data root of gzipped files
            path = path.with_name(f"{cat}.ndjson.gz")
        recs = list(formats.iter_ndjson(path, single_point="keep", limit=per_category))
        if not recs:
            raise ValueError(f"{path}: no sketches in the file")
        # the word and the line: more than six sketches repeat the words
        columns.append([(f"{rec.word} ({path.name}:{rec.source.rsplit(':', 1)[-1]})" if n > len(DEFAULT_CATEGORIES)
                         else rec.word, rec.sketch) for rec in recs])
    rows = [col[i] for i in range(per_category) for col in columns if i < len(col)]
    if len(rows) < n:
        print(f"note: --n {n}, but the data root's {', '.join(DEFAULT_CATEGORIES)} files hold {len(rows)} sketches; "
              f"drawing {len(rows)}", file=sys.stderr)
    return rows[:n]


def render_figure(sketches, out: str, *, size: int = 256, max_len: int | None = None) -> str:
    """Renders ``(label, Sketch)`` pairs with every renderer into one PNG figure at ``out``
    (whole sketches: ``max_len`` None pads to the longest; a number truncates to it)."""
    import jax.numpy as jnp
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sketchjax import render
    from sketchjax.batching import stack_sketches
    from sketchjax.normalize import fit_to_canvas
    from sketchjax.sketch import num_strokes

    if max_len is None:  # the longest sketch, rounded up to limit recompilation
        max_len = -(-max(int(s.pen.shape[-1]) for _, s in sketches) // 32) * 32
    batch = fit_to_canvas(stack_sketches([s for _, s in sketches], max_len=max_len), size, padding=0.08)
    xy, pen, valid = batch.xy, batch.pen, batch.valid
    k = int(np.max(np.asarray(num_strokes(pen, valid))))
    bres = render.raster(xy, pen, valid, size)
    per = render.stroke_rasters(xy, pen, valid, size, k)
    sla = render.compose(per, jnp.ones(per.shape[:2]))
    dist = render.distance_raster(xy, pen, valid, size)
    small = render.area_downsample(render.raster(xy, pen, valid, size, width=max(1, size // 16)), 28)
    colours = plt.get_cmap("tab20")(np.arange(k) % 20)[:, :3]
    stroke_rgb = 1.0 - np.einsum("bkhw,kc->bhwc", np.asarray(per), 1.0 - colours).clip(0, 1)

    columns = [
        ("Bresenham raster (Alg. 1)", lambda b: 1 - np.asarray(bres[b]), "gray"),
        ("per-stroke rasters S_k", lambda b: stroke_rgb[b], None),
        ("SLA: clamp(sum w_k S_k), w=1", lambda b: 1 - np.asarray(sla[b]), "gray"),
        ("P-SLA distance raster (Eq. 5)", lambda b: 1 - np.asarray(dist[b]), "gray"),
        (f"28x28 area-downsampled, {max(1, size // 16)}px line", lambda b: 1 - np.asarray(small[b]), "gray"),
    ]
    fig, axes = plt.subplots(len(sketches), len(columns), figsize=(2.4 * len(columns), 2.4 * len(sketches)), squeeze=False)
    for b, (label, _) in enumerate(sketches):
        for c, (title, image, cmap) in enumerate(columns):
            ax = axes[b, c]
            # Area-average the 1-px lines when the panel is smaller than the image (no aliasing).
            ax.imshow(image(b), cmap=cmap, vmin=0, vmax=1, interpolation="antialiased" if c < 4 else "nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if b == 0:
                ax.set_title(title, fontsize=8)
            if c == 0:
                ax.set_ylabel(_tex_safe(label), fontsize=8)
    fig.tight_layout()
    _save_figure(fig, out)
    return out


def _save_figure(fig, out: str) -> None:
    """Writes ``fig`` to the PNG ``out`` atomically (a temporary file, then a rename) and closes it."""
    from sketchjax.formats._io import save_figure

    save_figure(fig, out, dpi=100)


def _cmd_render(args) -> int:
    _check_out(args.out, FIGURE_SUFFIXES, args.files)
    sketches = _gather(args)
    out = render_figure(sketches, args.out, size=args.size)
    print(f"wrote {out} ({len(sketches)} sketches, {args.size}x{args.size})")
    return 0


def _gather(args, default_n: int | None = DEFAULT_N):
    """The command's ``(label, Sketch)`` pairs: ``--n`` of them (default ``default_n``; None: every
    sketch in FILES); FILES are all checked first, and any left unread are named."""
    from sketchjax.sketch import Sketch

    n = args.n if args.n is not None else default_n
    if not args.files:
        return _default_sketches(args.data, n or DEFAULT_N)
    for f in args.files:
        path = pathlib.Path(f)
        if not path.exists():
            raise FileNotFoundError(f"{f}: no such file")
        if not path.is_dir() and sketch_suffix(path) not in SKETCH_SUFFIXES:
            raise ValueError(f"{f}: unsupported file type {sketch_suffix(path) or '(none)'!r} (use {_SUPPORTED})")
    seen = {}
    for i, f in enumerate(args.files):  # read twice, it was scored / drawn twice under one label
        first = seen.setdefault(pathlib.Path(f).resolve(), i)
        if first != i:
            raise ValueError(f"{f}: given twice (also as {args.files[first]})")
    # labels name a file by its base name, or by the path as given where two base names agree
    # (a/cat.ndjson and b/cat.ndjson would look alike in the table and figure)
    bases = [pathlib.Path(f).name for f in args.files]
    shown = [str(f) if bases.count(b) > 1 else b for f, b in zip(args.files, bases)]
    sketches = []
    for i, f in enumerate(args.files):
        room = None if n is None else n - len(sketches)
        try:
            got = load_sketch_file(f, limit=None if room is None else room + 1, name=shown[i])  # one more: any left?
        except ValueError:
            if room is None:
                raise
            # a bad record just past the limit is not one the command reads: read up to the
            # limit (raising if the problem is among those) and note that more follow
            got = load_sketch_file(f, limit=room, name=shown[i]) + [None]
        if not got:
            raise ValueError(f"{f}: no sketches in the file")
        for label, s in got[:room]:
            if not np.any(np.asarray(s.pen)[:-1] > 0):
                raise ValueError(f"{label}: nothing to draw (every stroke has a single point)")
            points = np.asarray(s.xy)[np.asarray(s.valid, bool)]
            if np.all(points == points[:1]):  # fitted to the canvas it would be one dot at the centre
                raise ValueError(f"{label}: nothing to draw (every point is at the same place, {points[0].tolist()})")
        # Timestamps (raw ndjson) play no part in drawing or scoring, and a batch cannot mix
        # sketches with and without them: a raw file beside any other was refused.
        sketches.extend((label, Sketch(s.xy, s.pen, s.valid)) for label, s in got[:room])
        rest = args.files[i + 1:]
        if room is not None and len(got) >= room and (len(got) > room or rest):
            unread = ([f"the rest of {f}"] if len(got) > room else []) + (
                [f"{len(rest)} more file(s) ({', '.join(map(str, rest[:3]))}{', ...' if len(rest) > 3 else ''})"]
                if rest else [])
            given = f"--n {n}" if args.n is not None else f"--n defaults to {n}"
            print(f"note: read the first {n} sketches ({given}); {' and '.join(unread)} not read", file=sys.stderr)
            break
    return sketches


def explain_sketches(sketches, *, data: str | None = None, canvas: int = 128, out: str | None = None,
                     svg_dir: str | None = None) -> list:
    """DoodleNet's prediction for each ``(label, Sketch)`` and its SLA / P-SLA / occlusion attributions.

    Returns one dict per sketch (label, prediction, probability, per-stroke scores, the
    Spearman agreement of SLA and P-SLA with occlusion); writes the figure to ``out`` and one
    SLA-coloured SVG per sketch to ``svg_dir`` when given.
    """
    from functools import partial

    import jax
    import jax.numpy as jnp

    from sketchjax.attribution import (
        class_score,
        drawing_strokes,
        occlusion_sketch,
        psla,
        rank_correlation,
        sla_sketch,
    )
    from sketchjax.attribution.plot import attribution_svg, plot_methods
    from sketchjax.batching import stack_sketches
    from sketchjax.models.doodlenet import doodlenet_recipe, load_doodlenet
    from sketchjax.paths import data_root
    from sketchjax.sketch import Sketch, num_strokes

    model, variables, names = load_doodlenet(data_root(data))
    longest = max(int(np.sum(np.asarray(s.valid))) for _, s in sketches)
    batch = stack_sketches([s for _, s in sketches], max_len=-(-longest // 32) * 32)
    xy, pen, valid = batch.xy, batch.pen, batch.valid
    k = int(np.max(np.asarray(num_strokes(pen, valid))))
    recipe = doodlenet_recipe(canvas=canvas)
    apply = partial(model.apply, variables)
    probs = jax.nn.softmax(apply(recipe.raster(xy, pen, valid)), axis=-1)
    pred = jnp.argmax(probs, -1)
    score = class_score(apply)

    @jax.jit
    def attribute(xy, pen, valid, pred):
        return (sla_sketch(score, recipe, xy, pen, valid, pred, max_strokes=k),
                psla(score, recipe.distance, xy, pen, valid, pred, max_strokes=k),
                occlusion_sketch(score, recipe, xy, pen, valid, pred, max_strokes=k))

    a_sla, a_p, a_occ = attribute(xy, pen, valid, pred)
    n = np.asarray(num_strokes(pen, valid))
    present = drawing_strokes(pen, valid, k)  # single-point strokes draw nothing: not ranked
    rho_sla = np.asarray(rank_correlation(a_sla.strokes, a_occ.strokes, present))
    rho_p = np.asarray(rank_correlation(a_p.strokes, a_occ.strokes, present))
    # on the host first: slicing device arrays sketch by sketch compiled a slice per stroke count
    pred, probs, present, s_sla, s_p, s_occ = jax.device_get((pred, probs, present, a_sla.strokes, a_p.strokes,
                                                                a_occ.strokes))
    rows = []
    for i, (label, _) in enumerate(sketches):
        p = int(pred[i])
        rows.append({"label": label, "prediction": names[p], "probability": float(probs[i, p]),
                     "strokes": int(n[i]), "drawing": np.asarray(present[i, : n[i]]).tolist(),
                     "sla": s_sla[i, : n[i]].tolist(), "psla": s_p[i, : n[i]].tolist(),
                     "occlusion": s_occ[i, : n[i]].tolist(),
                     "spearman_sla_occlusion": float(rho_sla[i]), "spearman_psla_occlusion": float(rho_p[i])})
    unbatched = [Sketch(xy=xy[i], pen=pen[i], valid=valid[i]) for i in range(len(sketches))]
    if out is not None:
        import matplotlib

        matplotlib.use("Agg")
        fig = plot_methods(unbatched, {"SLA": np.asarray(a_sla.strokes), "P-SLA (points)": np.asarray(a_p.points),
                                       "occlusion": np.asarray(a_occ.strokes)}, point_methods=("P-SLA (points)",),
                           row_titles=[_tex_safe(f"{_fit(r['label'], 30)}\n→ {r['prediction']} ({r['probability']:.2f})")
                                       for r in rows])
        _save_figure(fig, out)
    if svg_dir is not None:
        os.makedirs(svg_dir, exist_ok=True)
        written = set()
        for i, r in enumerate(rows):
            safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in str(r["label"]))[:40]
            name = f"{i:03d}_{safe}.svg"
            # the drawing's own bounds (its coordinates are written as read: TU-Berlin's
            # run to ~800, stroke-3 data lies around the origin)
            attribution_svg(unbatched[i], r["sla"], os.path.join(svg_dir, name))
            written.add(name)
        # SVGs named like ours but not written now are an earlier run's: said, not deleted
        stale = sorted(p.name for p in pathlib.Path(svg_dir).glob("[0-9][0-9][0-9]_*.svg") if p.name not in written)
        if stale:
            print(f"note: {len(stale)} SVG(s) in {svg_dir} are not from this run ({', '.join(stale[:3])}"
                  f"{', ...' if len(stale) > 3 else ''})", file=sys.stderr)
    return rows


def _cmd_explain(args) -> int:
    _check_out(args.out, FIGURE_SUFFIXES, args.files)
    if args.svg_dir is not None:  # checked before the work, as --out is
        from sketchjax.formats._io import output_path

        svg_dir = pathlib.Path(args.svg_dir).resolve()
        for other, what in [(args.out, "--out")] + [(f, "an input file") for f in args.files]:
            if pathlib.Path(other).resolve() == svg_dir:
                raise ValueError(f"--svg-dir {args.svg_dir}: is {what} ({other}); give a folder of its own")
        out = pathlib.Path(args.out).resolve()
        if out.parent == svg_dir and _SVG_NAME.fullmatch(out.name):  # the SVGs, written after it, replaced it
            raise ValueError(f"--out {args.out}: is named like the per-sketch SVGs written into --svg-dir "
                             f"{args.svg_dir} ({_SVG_NAME.pattern}); name the figure otherwise")
        try:
            output_path(args.svg_dir, directory=True)
        except ValueError as e:
            raise ValueError(f"--svg-dir {e}") from None
    rows = explain_sketches(_gather(args), data=args.data, canvas=args.canvas, out=args.out, svg_dir=args.svg_dir)
    width = max(28, min(48, max(len(str(r["label"])) for r in rows)))
    print(f"{'sketch':{width}s} {'DoodleNet prediction':24s} {'p':>5s} {'strokes':>7s}  top stroke SLA / occlusion"
          "  Spearman(SLA, occ)  Spearman(P-SLA, occ)")
    for r in rows:
        # the top drawn stroke (a single-point stroke draws nothing: its score 0 never wins)
        top = lambda v, d=r["drawing"]: int(np.argmax(np.where(d, v, -np.inf))) if any(d) else -1  # noqa: E731
        print(f"{_fit(r['label'], width):{width}s} {r['prediction'][:24]:24s} {r['probability']:5.2f} {r['strokes']:7d}  "
              f"{top(r['sla']):10d} / {top(r['occlusion']):<9d}  {r['spearman_sla_occlusion']:18.2f}"
              f"  {r['spearman_psla_occlusion']:20.2f}")
    print(f"wrote {args.out}" + (f" and SVGs in {args.svg_dir}" if args.svg_dir else ""))
    return 0


@contextlib.contextmanager
def _data_root(data: str | None):
    """``$SKETCHJAX_DATA`` set to ``data`` for the whole command (the run's dataset is found
    through the data root, as in training, also when it is built after loading); restored after."""
    from sketchjax.paths import DATA_ENV_VAR, data_root

    previous = os.environ.get(DATA_ENV_VAR)
    if data is not None:
        os.environ[DATA_ENV_VAR] = str(data_root(data).absolute())
    try:
        yield
    finally:  # in-process callers keep their environment
        if previous is None:
            os.environ.pop(DATA_ENV_VAR, None)
        else:
            os.environ[DATA_ENV_VAR] = previous


def _check_out(out: str, suffixes: tuple[str, ...], inputs: Sequence[str] = ()) -> None:
    """Refuse an output path the command could only fail to write after all its work (its
    folder is made now: :func:`sketchjax.formats._io.output_path`), or one of its ``inputs``
    (the output would replace the sketch file it was made from)."""
    from sketchjax.formats._io import output_path

    target = pathlib.Path(out).resolve()
    for f in inputs:
        if pathlib.Path(f).resolve() == target:
            raise ValueError(f"--out {out}: is one of the input files; writing it would replace {f}")

    suffix = pathlib.Path(out).suffix.lower()
    if suffix not in suffixes and not pathlib.Path(out).is_dir():
        raise ValueError(f"--out {out}: unsupported output type {suffix or '(none)'!r}; use {', '.join(suffixes)}")
    try:
        output_path(out)
    except ValueError as e:
        raise ValueError(f"--out {e}") from None


def _load_gacl(checkpoint: str):
    from sketchjax.classifier import load_classifier

    clf = load_classifier(checkpoint)
    if clf.gacl is None:
        raise ValueError(f"{checkpoint}: a softmax classifier has no quality score; give a GACL run "
                         "(a config with head.type = 'gacl')")
    return clf


def _cmd_quality(args) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sketchjax.attribution.plot import plot_sketch
    from sketchjax.sketch import Sketch

    _check_out(args.out, FIGURE_SUFFIXES, args.files)
    with _data_root(args.data):
        sketches = _gather(args, default_n=None)  # every sketch of FILES unless --n; a bad file fails before
        clf = _load_gacl(args.checkpoint)          # the checkpoint is restored
    if not sketches:
        raise ValueError("no sketches to score")
    out = clf.score_sketches([s for _, s in sketches])
    order = np.argsort(-out["q"], kind="stable")
    width = max(28, min(48, max(len(str(label)) for label, _ in sketches)))
    print(f"{'rank':>4s}  {'sketch':{width}s} {'q':>6s}  {'predicted':24s} {'cos':>5s}")
    for rank, i in enumerate(order):
        print(f"{rank + 1:4d}  {_fit(sketches[i][0], width):{width}s} {out['q'][i]:6.3f}  "
              f"{clf.categories[out['pred'][i]][:24]:24s} {out['cos_pred'][i]:5.2f}")
    shown = "highest first"
    if len(order) > QUALITY_FIGURE_MAX:  # the figure keeps the two ends of the ranking
        half = QUALITY_FIGURE_MAX // 2
        order = np.concatenate([order[:half], order[-half:]])
        shown = f"the {half} highest and {half} lowest of {len(sketches)}"
    cols = min(len(order), 6)
    rows = -(-len(order) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(2.2 * cols, 2.4 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, i in zip(axes.ravel(), order):
        ax.axis("on")
        s = sketches[i][1]
        plot_sketch(ax, Sketch(xy=np.asarray(s.xy), pen=np.asarray(s.pen), valid=np.asarray(s.valid)),
                    title=_tex_safe(f"{_fit(sketches[i][0], 22)}\nq={out['q'][i]:.3f} → {clf.categories[out['pred'][i]][:12]}"))
    fig.suptitle(f"GACL quality ({clf.gacl.kind}), {shown}; q in [{clf.gacl.l_q}, {clf.gacl.u_q}] at the "
                 "norm range", fontsize=9)
    fig.tight_layout()
    _save_figure(fig, args.out)
    print(f"wrote {args.out}")
    return 0


CLEANSE_RULES = ("gacl", "small-loss")


def cleanse_split(clf, split: str = "train", *, rule: str = "gacl", q_high_quantile: float = 0.5,
                  theta_high_deg: float = 75.0, q_low_quantile: float = 0.02, p_label_max: float = 0.05) -> list[dict]:
    """One row per sample of ``split`` of the run's dataset (for ``"train"``: every example the run
    trained on, ``data.extra_train`` samples included, with the labels it trained on, label noise
    included): label, prediction, ``q``, ``theta_y`` (degrees), ``p_label`` (the run's softmax
    probability of the label; for a GACL run that of ``s cos theta``), ``flagged`` and why, whether
    the label was changed by injected noise and whether the example is a generated sample.

    ``rule="gacl"`` (G §6; a GACL run): flagged when ``q`` is at or above its ``q_high_quantile``
    and the angle to the label at or above ``theta_high_deg`` ("far from label"), or ``q`` at or
    below its ``q_low_quantile`` ("very low q").  ``rule="small-loss"`` (any run; ``q`` is None
    for a softmax run): flagged when ``p_label <= p_label_max`` ("improbable label") — the rule
    that reached the cleansing target in RESULTS.md §4.6, where the GACL rule did not."""
    from sketchjax.apps.cleansing import split_label_scores

    if rule not in CLEANSE_RULES:
        raise ValueError(f"cleanse: rule must be one of {CLEANSE_RULES}, got {rule!r}")
    for name, v in (("q_high_quantile", q_high_quantile), ("q_low_quantile", q_low_quantile),
                    ("p_label_max", p_label_max)):
        if not 0.0 <= v <= 1.0:
            raise ValueError(f"cleanse: {name} must be {'a probability' if name == 'p_label_max' else 'a quantile'} "
                             f"in [0, 1], got {v}")
    if not 0.0 <= theta_high_deg <= 180.0:  # also NaN: an angle beyond 180 would switch the rule off
        raise ValueError(f"cleanse: theta_high_deg must be an angle in [0, 180] degrees, got {theta_high_deg}")
    if rule == "gacl" and clf.gacl is None:
        raise ValueError("cleanse: a softmax classifier has no quality score for the GACL rule; give a GACL run "
                         "(a config with head.type = 'gacl') or use the small-loss rule")
    sc = split_label_scores(clf, split)
    q, theta, p_label = sc["q"], sc["theta_deg"], sc["p_label"]
    if len(q) == 0:
        raise ValueError(f"cleanse: split {split!r} of the run's dataset holds no samples")
    if rule == "gacl":
        q_high = np.quantile(q, q_high_quantile)
        q_low = np.quantile(q, q_low_quantile) if q_low_quantile > 0 else -np.inf  # 0: the low-q rule is off
        far = (q >= q_high) & (theta >= theta_high_deg)
        poor = q <= q_low
        reasons = np.where(far, "far from label", np.where(poor, "very low q", ""))
    else:
        reasons = np.where(p_label <= p_label_max, "improbable label", "")
    rows = []
    for i in range(len(q)):
        rows.append({"index": i, "key_id": sc["key_id"][i], "label": clf.categories[sc["label"][i]],
                     "predicted": clf.categories[sc["pred"][i]], "q": float(q[i]) if clf.gacl is not None else None,
                     "theta_deg": float(theta[i]), "p_label": float(p_label[i]), "flagged": bool(reasons[i]),
                     "reason": str(reasons[i]), "injected_noise": bool(sc["flipped"][i]),
                     "generated": bool(sc["generated"][i])})
    return rows


def _cmd_cleanse(args) -> int:
    import csv
    import io

    from sketchjax.classifier import load_classifier
    from sketchjax.formats._io import atomic_write

    _check_out(args.out, (".csv",))
    with _data_root(args.data):  # the dataset is built after the run is loaded
        clf = load_classifier(args.checkpoint)  # cleanse_split refuses a softmax run for the GACL rule
        rows = cleanse_split(clf, args.split, rule=args.rule, q_high_quantile=args.q_high_quantile,
                             theta_high_deg=args.theta_high, q_low_quantile=args.q_low_quantile,
                             p_label_max=args.p_label_max)
    flagged = [r for r in rows if r["flagged"]]
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with atomic_write(args.out) as f:
        f.write(buf.getvalue())
    if args.rule == "gacl":
        why = (f"{sum(r['reason'] == 'far from label' for r in flagged)} far from their label, "
               f"{sum(r['reason'] == 'very low q' for r in flagged)} with very low q")
    else:
        why = f"label probability <= {args.p_label_max:g}"
    print(f"{len(flagged)} of {len(rows)} '{args.split}' samples flagged ({args.rule} rule: {why})")
    injected = [r for r in rows if r["injected_noise"]]
    if injected:
        tp = sum(r["flagged"] and r["injected_noise"] for r in rows)
        print(f"against the run's injected label noise: precision {tp / max(len(flagged), 1):.3f}, "
              f"recall {tp / len(injected):.3f}")
    for r in flagged[: args.show]:
        q = "" if r["q"] is None else f"q {r['q']:.3f} "
        print(f"  {r['index']:6d} {r['key_id']:>18s}  label {r['label'][:20]:20s} predicted {r['predicted'][:20]:20s} "
              f"{q}angle {r['theta_deg']:5.1f} p(label) {r['p_label']:.3f}  {r['reason']}")
    print(f"wrote {args.out}")
    return 0


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    return parse


def _int_between(low: int, high: int):
    at_least = _int_at_least(low)

    def parse(text: str) -> int:
        value = at_least(text)
        if value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {value}")
        return value

    return parse


_positive_int = _int_at_least(1)


def _path(text: str) -> str:
    """A path argument: not empty (``--svg-dir "$UNSET"`` became '.' for one check and '' for
    the write, which failed after all the work)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path")
    return text


def _sketch_arguments(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The input arguments every command shares: FILES, --data, --n."""
    p.add_argument("files", nargs="*", type=_path, help=".ndjson / .npz / .svg files (default: real QuickDraw sketches)")
    p.add_argument("--data", type=_path, default=None, help="data root (default: $SKETCHJAX_DATA or ../shared/data)")
    p.add_argument("--n", type=_positive_int, default=None,
                   help=f"number of sketches (default {DEFAULT_N}; quality: every sketch of FILES)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sketchjax", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = _sketch_arguments(sub.add_parser("render", help="render sketches with every renderer into a figure"))
    p.add_argument("--size", type=_int_between(DOODLENET_INPUT, 2048), default=256,
                   help=f"canvas side in pixels ({DOODLENET_INPUT}-2048: the last column area-downsamples it to {DOODLENET_INPUT})")
    p.add_argument("--out", type=_path, default="out/renderers.png", help="output figure (.png, .svg, .pdf, .jpg)")
    p.set_defaults(func=_cmd_render)
    e = _sketch_arguments(sub.add_parser("explain", help="DoodleNet's predictions explained by SLA, P-SLA and occlusion"))
    e.add_argument("--canvas", type=_int_between(DOODLENET_INPUT, 2048), default=128,
                   help=f"drawing canvas of the 28x28 input ({DOODLENET_INPUT}-2048; line 13/256 of it)")
    e.add_argument("--out", type=_path, default="out/explain.png", help="output figure (.png, .svg, .pdf, .jpg)")
    e.add_argument("--svg-dir", type=_path, default=None, help="also write one SLA-coloured SVG per sketch here")
    e.set_defaults(func=_cmd_explain)
    q = _sketch_arguments(sub.add_parser("quality", help="GACL quality scores of sketches, with a table and figure"))
    q.add_argument("--checkpoint", type=_path, required=True, help="workdir of a GACL training run (train/run.py)")
    q.add_argument("--out", type=_path, default="out/quality.png", help="output figure (.png, .svg, .pdf, .jpg)")
    q.set_defaults(func=_cmd_quality)
    c = sub.add_parser("cleanse", help="flag suspicious labels in a trained run's dataset")
    c.add_argument("--checkpoint", type=_path, required=True,
                   help="workdir of a training run (train/run.py): a GACL run for --rule gacl, any run for small-loss")
    c.add_argument("--rule", choices=CLEANSE_RULES, default="gacl",
                   help="gacl: high q and far from the label, or very low q (G §6); small-loss: the run's probability "
                        "of the label at most --p-label-max (what reached the target in RESULTS.md §4.6)")
    c.add_argument("--data", type=_path, default=None, help="data root (default: $SKETCHJAX_DATA or ../shared/data)")
    c.add_argument("--split", default="train",
                   help="dataset split to check (default: every example the run trained on, sketch-rnn samples included)")
    c.add_argument("--q-high-quantile", type=float, default=0.5, help="'well drawn': q at or above this quantile")
    c.add_argument("--theta-high", type=float, default=75.0, help="'far from its label': angle in degrees (0-180)")
    c.add_argument("--q-low-quantile", type=float, default=0.02,
                   help="'very poor': q at or below this quantile (0: off)")
    c.add_argument("--p-label-max", type=float, default=0.05,
                   help="small-loss rule: flag labels of probability at or below this (default 0.05)")
    c.add_argument("--show", type=_int_at_least(0), default=10, help="flagged samples to print")
    c.add_argument("--out", type=_path, default="out/cleanse.csv", help="output CSV (one row per sample)")
    c.set_defaults(func=_cmd_cleanse)
    args = parser.parse_args(argv)
    with warnings.catch_warnings():  # one line each, as the errors (not the source line that warned)
        warnings.showwarning = _show_warning
        try:
            return args.func(args)
        except (ValueError, OSError) as e:  # bad input, missing file or run: a clear message, no traceback
            print(f"sketchjax: error: {e}", file=sys.stderr)
            return 2


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"sketchjax: warning: {message}", file=sys.stderr if file is None else file)


if __name__ == "__main__":
    sys.exit(main())
