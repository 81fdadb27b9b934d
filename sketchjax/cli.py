"""Command-line entry point: ``sketchjax <command> ...``.

Commands:
  render   Render sketches with all three renderers (Bresenham raster, per-stroke SLA
           composition, P-SLA distance field) and the DoodleNet-style 28x28 input; write a
           figure.  Without FILES it takes real QuickDraw sketches from the data root
           (``SKETCHJAX_DATA``, default ``../shared/data``).
"""
from __future__ import annotations

import argparse
import os
import pathlib
import sys
from typing import Sequence

import numpy as np

__all__ = ["main", "load_sketch_file"]

DEFAULT_CATEGORIES = ("cat", "The Eiffel Tower", "bicycle", "sheep", "house", "owl")


def load_sketch_file(path: str, *, limit: int, single_point: str = "drop"):
    """Sketches from a ``.ndjson`` (QuickDraw), ``.npz`` (sketch-rnn, all splits), ``.svg`` file.

    Returns a list of ``(label, Sketch)``.
    """
    from sketchjax import formats

    suffix = pathlib.Path(path).suffix.lower()
    if suffix == ".ndjson":
        return [
            (rec.word or rec.source, rec.sketch)
            for rec in formats.iter_ndjson(path, single_point=single_point, limit=limit)
        ]
    if suffix == ".npz":
        out = []
        for split, arrays in formats.load_npz(path).items():
            for i, s3 in enumerate(arrays[: max(0, limit - len(out))]):
                out.append((f"{split}[{i}]", formats.from_stroke3(s3, name=f"{path}:{split}[{i}]", single_point=single_point)))
        return out
    if suffix == ".svg":
        return [(pathlib.Path(path).stem, formats.read_svg(path))]
    raise SystemExit(f"sketchjax: {path}: unsupported file type {suffix!r} (use .ndjson, .npz or .svg)")


def _default_sketches(data: str | None, n: int):
    from sketchjax import formats
    from sketchjax.paths import data_root

    root = data_root(data) / "quickdraw" / "simplified"
    out = []
    for cat in DEFAULT_CATEGORIES[:n]:
        rec = next(formats.iter_ndjson(root / f"{cat}.ndjson", single_point="drop", limit=1))
        out.append((rec.word, rec.sketch))
    return out


def render_figure(sketches, out: str, *, size: int = 256, max_len: int = 256) -> str:
    """Renders ``(label, Sketch)`` pairs with every renderer into one PNG figure at ``out``."""
    import jax.numpy as jnp
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sketchjax import render
    from sketchjax.batching import stack_sketches
    from sketchjax.normalize import fit_to_canvas
    from sketchjax.sketch import num_strokes

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
        ("28x28 area-downsampled, 16px line", lambda b: 1 - np.asarray(small[b]), "gray"),
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
                ax.set_ylabel(label, fontsize=8)
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    tmp = f"{out}.tmp.png"
    fig.savefig(tmp, dpi=100)
    plt.close(fig)
    os.replace(tmp, out)
    return out


def _cmd_render(args) -> int:
    if args.files:
        sketches = []
        for f in args.files:
            sketches.extend(load_sketch_file(f, limit=args.n - len(sketches)))
            if len(sketches) >= args.n:
                break
    else:
        sketches = _default_sketches(args.data, args.n)
    out = render_figure(sketches, args.out, size=args.size)
    print(f"wrote {out} ({len(sketches)} sketches, {args.size}x{args.size})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sketchjax", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("render", help="render sketches with every renderer into a figure")
    p.add_argument("files", nargs="*", help=".ndjson / .npz / .svg files (default: real QuickDraw sketches)")
    p.add_argument("--data", default=None, help="data root (default: $SKETCHJAX_DATA or ../shared/data)")
    p.add_argument("--n", type=int, default=6, help="number of sketches")
    p.add_argument("--size", type=int, default=256, help="canvas side in pixels")
    p.add_argument("--out", default="out/renderers.png", help="output PNG")
    p.set_defaults(func=_cmd_render)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ValueError as e:  # bad input: a clear message, no traceback
        print(f"sketchjax: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
