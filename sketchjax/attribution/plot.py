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
    """Symmetric limits ``±vmax`` (default: the largest finite magnitude of ``values``, 1 when
    there is none); values beyond them take the colour map's end colours."""
    _, colors, _ = _mpl()
    if vmax is not None and not (np.isfinite(vmax) and vmax > 0):
        raise ValueError(f"vmax must be a finite number > 0 (the colour limits are ±vmax), got {vmax}")
    finite = values[np.isfinite(values)]
    v = float(vmax) if vmax is not None else (float(np.max(np.abs(finite))) if finite.size else 0.0)
    v = v if v > 0 else 1.0
    return colors.TwoSlopeNorm(vcenter=0.0, vmin=-v, vmax=v)


def _colormap(cmap: str):
    """``cmap`` with NaN drawn grey (``NAN_COLOR``; matplotlib's default 'bad' colour is transparent)."""
    plt, _, _ = _mpl()
    return plt.get_cmap(cmap).with_extremes(bad=NAN_COLOR)


def _scores_1d(name: str, what: str, scores) -> np.ndarray:
    s = np.asarray(scores, np.float64)
    if s.ndim != 1:
        raise ValueError(f"{name}: {what} must be one vector per sketch ([K] or [T]), got shape {s.shape}")
    return s


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

    Exactly one of ``stroke_scores`` (``[K]``, stroke ``k`` in one colour; entries past the
    sketch's strokes are ignored) or ``point_scores`` (``[T]``, segment ``t → t+1`` coloured by
    the mean of its end points) is given.  Colours: diverging ``cmap`` centred at 0, symmetric
    limits ``±vmax`` (default the largest magnitude among the drawn segments' values); values
    beyond take the end colours, NaN is grey (``NAN_COLOR``).  Image coordinates: y grows
    downwards.
    """
    if (stroke_scores is None) == (point_scores is None):
        raise ValueError(f"{name}: give exactly one of stroke_scores and point_scores")
    plt, _, LineCollection = _mpl()
    segs, sid, t = _segments(sketch, name)
    if stroke_scores is not None:
        s = _scores_1d(name, "stroke_scores", stroke_scores)
        if sid.size and sid.max() >= s.shape[-1]:
            raise ValueError(f"{name}: {s.shape[-1]} stroke scores for a sketch with {sid.max() + 1} drawn strokes")
        values = s[sid]
    else:
        p = _scores_1d(name, "point_scores", point_scores)
        if p.shape[-1] != np.shape(sketch.xy)[0]:
            raise ValueError(f"{name}: {p.shape[-1]} point scores for {np.shape(sketch.xy)[0]} points")
        values = 0.5 * (p[t] + p[t + 1])
    # the limits come from what is drawn: a padding slot's or a tap's score does not set them
    norm = _norm(values, vmax)
    lc = LineCollection(segs, cmap=_colormap(cmap), norm=norm, linewidths=linewidth, capstyle="round")
    lc.set_array(np.clip(values, norm.vmin, norm.vmax))  # +-inf at the end colours (NaN stays NaN: grey)
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
    """A figure with one row per sketch and one column per method (each panel with its own
    symmetric colour scale and colour bar: colours compare strokes within a panel, not across).

    Args:
      sketches: unbatched sketches.
      methods: method name → scores ``[N, K]`` (strokes) or ``[N, T]`` (names in ``point_methods``).
      point_methods: names of ``methods`` holding point scores.
      row_titles: a label per sketch (e.g. category and prediction).
    """
    plt, _, _ = _mpl()
    names = list(methods)
    for m in names:
        if len(np.asarray(methods[m])) < len(sketches):
            raise ValueError(f"plot_methods: method {m!r} has scores for {len(np.asarray(methods[m]))} sketches, "
                             f"{len(sketches)} given")
    if row_titles is not None and len(row_titles) != len(sketches):
        raise ValueError(f"plot_methods: {len(row_titles)} row titles for {len(sketches)} sketches")
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
    ``n_strokes``: ``[N]`` present strokes per sketch (sketches with none, and curves with a
    non-finite value, are skipped — as :func:`~sketchjax.attribution.mean_ci` skips their AUCs).
    """
    g = np.linspace(0.0, 1.0, grid)
    n_strokes = np.asarray(n_strokes)
    if n_strokes.ndim != 1 or not np.issubdtype(n_strokes.dtype, np.integer):
        raise ValueError(f"plot_deletion_curves: n_strokes must be integers [N] (present strokes per sketch), got "
                         f"{n_strokes.dtype} of shape {n_strokes.shape}")
    for m, c in curves.items():
        c = np.asarray(c)
        if c.ndim != 2 or len(c) != len(n_strokes):
            raise ValueError(f"plot_deletion_curves: method {m!r}: need curves [N, K + 1] with N = {len(n_strokes)} "
                             f"(one per n_strokes), got shape {c.shape}")
        if np.any(n_strokes > c.shape[1] - 1) or np.any(n_strokes < 0):
            raise ValueError(f"plot_deletion_curves: method {m!r}: n_strokes must be in [0, K = {c.shape[1] - 1}]")
        rows = [_on_grid(c[i], int(n_strokes[i]), g) for i in range(len(c))
                if n_strokes[i] > 0 and np.isfinite(c[i, : n_strokes[i] + 1]).all()]
        if not rows:
            raise ValueError(f"plot_deletion_curves: method {m!r}: no sketch with a drawn stroke and a finite curve")
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
    _, colors, _ = _mpl()
    s = _scores_1d("stroke_colors", "scores", scores)
    rgba = _colormap(cmap)(_norm(s, vmax)(s))
    return [colors.to_hex(c) for c in rgba]


def attribution_svg(sketch: Sketch, stroke_scores, path=None, *, cmap: str = DIVERGING, vmax: Optional[float] = None,
                    size=None, stroke_width: float = 2.0, name: str = "sketch") -> str:
    """SVG of ``sketch`` with stroke ``k`` coloured by ``stroke_scores[k]`` (written atomically to ``path``)."""
    strokes = to_strokes(sketch, name=name)
    n = len(strokes)
    s = _scores_1d(name, "stroke_scores", stroke_scores)
    if s.shape[-1] < n:
        raise ValueError(f"{name}: {s.shape[-1]} stroke scores for {n} strokes")
    if vmax is None:  # limits from the drawn strokes, as plot_attribution's: a tap (one point) draws no line
        vmax = _norm(s[:n][np.asarray([len(k) > 1 for k in strokes], bool)], None).vmax
    return write_svg(sketch, path, size=size, stroke_width=stroke_width, stroke_colors=stroke_colors(s[:n], cmap, vmax),
                     name=name)
