"""Figures of stroke / point attributions (matplotlib) and attribution-coloured SVG.

* :func:`plot_attribution` — one sketch drawn with its strokes (or segments, from point
  importances) coloured by attribution on a diverging colour map centred at 0, with a
  colour bar;
* :func:`plot_methods` — a grid: sketches in rows, methods in columns;
* :func:`plot_deletion_curves` — mean deletion / insertion curves per method on a
  fraction-of-strokes axis;
* :func:`stroke_colors` / :func:`attribution_svg` — hex colours per stroke and an SVG with
  coloured polylines (:func:`sketchjax.formats.write_svg`).

Host-side (NumPy) helpers for notebooks and reports; matplotlib is imported lazily with the
backend matplotlib chooses (``Agg`` on a headless machine).
"""
from __future__ import annotations

from typing import Mapping, Optional, Sequence

import numpy as np

from sketchjax.formats.strokes import to_strokes
from sketchjax.formats.svg import write_svg
from sketchjax.sketch import Sketch, segment_mask, stroke_ids

__all__ = ["plot_sketch", "plot_attribution", "plot_methods", "plot_deletion_curves", "stroke_colors", "attribution_svg"]

DIVERGING = "RdBu_r"
NAN_COLOR = "#9e9e9e"  # strokes whose score is NaN


def _mpl():
    # Imported lazily: matplotlib picks a non-interactive backend itself on a headless machine
    # and the notebook's inline backend in Jupyter; a library must not force one.
    import matplotlib.pyplot as plt
    from matplotlib import colors
    from matplotlib.collections import LineCollection

    return plt, colors, LineCollection


def _norm(values: np.ndarray, vmax: Optional[float]):
    _, colors, _ = _mpl()
    v = float(np.nanmax(np.abs(values))) if vmax is None and values.size else (vmax or 0.0)
    v = v if v > 0 else 1.0
    return colors.TwoSlopeNorm(vcenter=0.0, vmin=-v, vmax=v)


def _segments(sketch: Sketch, name: str):
    """Drawn segments ``[S, 2, 2]``, their stroke index and start point index (host arrays)."""
    xy = np.asarray(sketch.xy, np.float64)
    pen = np.asarray(sketch.pen)
    valid = np.asarray(sketch.valid, bool)
    if xy.ndim != 2:
        raise ValueError(f"{name}: plot one unbatched sketch at a time, got xy of shape {xy.shape}")
    drawn = np.asarray(segment_mask(pen, valid))
    sid = np.asarray(stroke_ids(pen, valid))
    t = np.nonzero(drawn)[0]
    return np.stack([xy[t], xy[t + 1]], axis=1), sid[t], t


def _frame(ax, lc, segs, title):
    """Adds the segments to ``ax`` and fits the view: equal aspect, y down, no ticks."""
    ax.add_collection(lc)
    if segs.size:
        lo, hi = segs.reshape(-1, 2).min(0), segs.reshape(-1, 2).max(0)
        pad = 0.05 * max(float(np.max(hi - lo)), 1.0)
        ax.set_xlim(lo[0] - pad, hi[0] + pad)
        ax.set_ylim(hi[1] + pad, lo[1] - pad)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)


def plot_sketch(ax, sketch: Sketch, *, color="black", linewidth: float = 1.5, title: Optional[str] = None,
                name: str = "sketch"):
    """Draws one unbatched ``sketch`` on ``ax`` in one colour; returns the ``LineCollection``."""
    _, _, LineCollection = _mpl()
    segs, _, _ = _segments(sketch, name)
    lc = LineCollection(segs, colors=color, linewidths=linewidth, capstyle="round")
    _frame(ax, lc, segs, title)
    return lc


def plot_attribution(
    ax,
    sketch: Sketch,
    *,
    stroke_scores=None,
    point_scores=None,
    cmap: str = DIVERGING,
    vmax: Optional[float] = None,
    linewidth: float = 2.0,
    colorbar: bool = True,
    title: Optional[str] = None,
    name: str = "sketch",
):
    """Draws ``sketch`` on ``ax`` coloured by attribution; returns the ``LineCollection``.

    Exactly one of ``stroke_scores`` (``[K]``, stroke ``k`` in one colour) or
    ``point_scores`` (``[T]``, segment ``t → t+1`` coloured by the mean of its end points)
    is given.  Colours: diverging ``cmap`` centred at 0, symmetric limits ``±vmax`` (default
    the largest magnitude).  Image coordinates: y grows downwards.
    """
    if (stroke_scores is None) == (point_scores is None):
        raise ValueError(f"{name}: give exactly one of stroke_scores and point_scores")
    plt, _, LineCollection = _mpl()
    segs, sid, t = _segments(sketch, name)
    if stroke_scores is not None:
        s = np.asarray(stroke_scores, np.float64)
        if sid.size and sid.max() >= s.shape[-1]:
            raise ValueError(f"{name}: {s.shape[-1]} stroke scores for a sketch with {sid.max() + 1} drawn strokes")
        values, shown = s[sid], s
    else:
        p = np.asarray(point_scores, np.float64)
        if p.shape[-1] != np.shape(sketch.xy)[0]:
            raise ValueError(f"{name}: {p.shape[-1]} point scores for {np.shape(sketch.xy)[0]} points")
        values, shown = 0.5 * (p[t] + p[t + 1]), p
    norm = _norm(np.asarray(shown)[np.isfinite(shown)], vmax)
    lc = LineCollection(segs, cmap=cmap, norm=norm, linewidths=linewidth, capstyle="round")
    lc.set_array(values)
    _frame(ax, lc, segs, title)
    if colorbar:
        plt.colorbar(lc, ax=ax, fraction=0.046, pad=0.02)
    return lc


def plot_methods(
    sketches: Sequence[Sketch],
    methods: Mapping[str, np.ndarray],
    *,
    point_methods: Sequence[str] = (),
    row_titles: Optional[Sequence[str]] = None,
    cell_size: float = 2.2,
):
    """A figure with one row per sketch and one column per method.

    Args:
      sketches: unbatched sketches.
      methods: method name → scores ``[N, K]`` (strokes) or ``[N, T]`` (names in ``point_methods``).
      point_methods: names of ``methods`` holding point scores.
      row_titles: a label per sketch (e.g. category and prediction).
    """
    plt, _, _ = _mpl()
    names = list(methods)
    fig, axes = plt.subplots(len(sketches), len(names), figsize=(cell_size * len(names) * 1.15, cell_size * len(sketches)),
                             squeeze=False)
    for i, sk in enumerate(sketches):
        for j, m in enumerate(names):
            kw = {"point_scores" if m in point_methods else "stroke_scores": np.asarray(methods[m])[i]}
            plot_attribution(axes[i, j], sk, title=m if i == 0 else None, **kw)
        if row_titles is not None:
            axes[i, 0].set_ylabel(row_titles[i], fontsize=8)
    fig.tight_layout()
    return fig


def _on_grid(curve: np.ndarray, n: int, grid: np.ndarray) -> np.ndarray:
    return np.interp(grid, np.arange(n + 1) / max(n, 1), curve[: n + 1])


def plot_deletion_curves(ax, curves: Mapping[str, np.ndarray], n_strokes, *, grid: int = 51, ylabel: str = "score",
                         title: Optional[str] = None):
    """Mean curve per method (each sketch's curve resampled to ``grid`` fractions of its strokes).

    ``curves``: method → ``[N, K + 1]`` from :func:`sketchjax.attribution.deletion_curve`;
    ``n_strokes``: ``[N]`` present strokes per sketch (sketches with none are skipped).
    """
    g = np.linspace(0.0, 1.0, grid)
    n_strokes = np.asarray(n_strokes)
    for m, c in curves.items():
        c = np.asarray(c)
        rows = [_on_grid(c[i], int(n_strokes[i]), g) for i in range(len(c)) if n_strokes[i] > 0]
        ax.plot(g, np.mean(rows, axis=0), label=m)
    ax.set_xlabel("fraction of strokes removed / added")
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return ax


def stroke_colors(scores, cmap: str = DIVERGING, vmax: Optional[float] = None) -> list:
    """Hex colours ``["#rrggbb", ...]`` of stroke scores on a diverging map centred at 0; a
    NaN score (no attribution) is drawn grey (``NAN_COLOR``), not the colour map's black."""
    plt, colors, _ = _mpl()
    s = np.asarray(scores, np.float64)
    rgba = plt.get_cmap(cmap).with_extremes(bad=NAN_COLOR)(_norm(s[np.isfinite(s)], vmax)(s))
    return [colors.to_hex(c) for c in rgba]


def attribution_svg(sketch: Sketch, stroke_scores, path=None, *, cmap: str = DIVERGING, vmax: Optional[float] = None,
                    size=None, stroke_width: float = 2.0, name: str = "sketch") -> str:
    """SVG of ``sketch`` with stroke ``k`` coloured by ``stroke_scores[k]`` (written atomically to ``path``)."""
    n = len(to_strokes(sketch, name=name))
    s = np.asarray(stroke_scores, np.float64)
    if s.shape[-1] < n:
        raise ValueError(f"{name}: {s.shape[-1]} stroke scores for {n} strokes")
    return write_svg(sketch, path, size=size, stroke_width=stroke_width, stroke_colors=stroke_colors(s[:n], cmap, vmax),
                     name=name)
