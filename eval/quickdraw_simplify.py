"""How close is ``sketchjax.normalize.quickdraw_simplify`` to Google's own simplification?

QuickDraw's raw files (float screen coordinates + timing) and simplified files (0-255 integers,
RDP-simplified) share ``key_id``s.  This script simplifies every raw drawing that has a
simplified twin and compares the two, for the library's recipe and a few variants:

* ``library`` — :func:`quickdraw_simplify`: align top-left, scale the longest side to 255
  as ``(x - min) / longest * 255``, resample at 1 px, RDP (epsilon 2), round; taps
  (one-point strokes) become two-point strokes;
* ``multiply_scale`` — scale as ``(x - min) * (255 / longest)`` (float rounding differs);
* ``drop_taps`` — drop one-point strokes instead;
* ``round_before_rdp`` — round the resampled points, then RDP;
* ``resample_before_scale`` — resample at 1 px in raw screen coordinates, then align/scale;
* ``no_resample`` — align/scale, RDP, round;
* ``rdp_to_segment`` — RDP measuring the distance to the chord segment, not its line.

Metrics (pooled over all matched drawings; coordinates are Google's 0-255 pixels):

* ``same_strokes`` / ``same_points`` — fraction of drawings with the same number of strokes /
  of points as Google's;
* ``identical`` — fraction of drawings whose strokes are exactly equal;
* ``chamfer_*`` — symmetric chamfer distance between the two point sets,
  ``(mean_a min_b |a-b| + mean_b min_a |a-b|) / 2``, mean / median / 95th percentile, pixels;
* ``exact_points`` — fraction of Google's points that our output contains too (same integer
  x, y; multiset count), over all of Google's points;
* ``differing_with_rdp_tie`` (library only) — among drawings not identical to Google's, the
  fraction whose RDP run meets an exact tie, where float rounding noise picks the point.

Usage::

    python eval/quickdraw_simplify.py [--data DIR] [--limit N] [--out results.json]
"""
from __future__ import annotations

import argparse
import collections
import pathlib
import sys
import time

import numpy as np

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks.common import atomic_write_json, run_program  # noqa: E402  (strict JSON, atomic)
from sketchjax.formats import iter_ndjson, ndjson_files, to_strokes
from sketchjax.normalize import QUICKDRAW_SIZE, quickdraw_simplify, rdp, resample
from sketchjax.paths import data_root
from sketchjax.formats._io import argparse_output  # noqa: E402
from sketchjax.provenance import command_line, run_record


def _drawn(record, taps: str = "dot"):
    """The record's strokes (float64); taps (one-point strokes) doubled like Google, or dropped."""
    strokes = [s.astype(np.float64) for s in to_strokes(record.sketch)]
    if taps == "drop":
        return [s for s in strokes if len(s) > 1]
    return [np.repeat(s, 2, axis=0) if len(s) == 1 else s for s in strokes]


def _align_scale(strokes, multiply: bool = False):
    points = np.concatenate(strokes)
    lo = points.min(axis=0)
    longest = float((points.max(axis=0) - lo).max()) or 1.0
    if multiply:
        return [(s - lo) * (QUICKDRAW_SIZE / longest) for s in strokes]
    return [(s - lo) / longest * QUICKDRAW_SIZE for s in strokes]


def _rdp_to_segment(points: np.ndarray, epsilon: float) -> np.ndarray:
    """RDP variant measuring the distance to the chord *segment* instead of its line."""
    keep = np.zeros(len(points), bool)
    keep[[0, -1]] = True
    pending = [(0, len(points) - 1)]
    while pending:
        first, last = pending.pop()
        if last - first < 2:
            continue
        a, chord, inner = points[first], points[last] - points[first], points[first + 1 : last]
        t = np.clip((inner - a) @ chord / max(chord @ chord, 1e-300), 0.0, 1.0)
        dist = np.hypot(*(inner - a - t[:, None] * chord).T)
        k = int(np.argmax(dist))
        if dist[k] > epsilon:
            keep[first + 1 + k] = True
            pending += [(first, first + 1 + k), (first + 1 + k, last)]
    return points[keep]


def _has_rdp_tie(record, tolerance: float = 1e-9) -> bool:
    """Whether RDP on the library's resampled strokes meets an exact tie: the farthest point
    is not unique (e.g. a straight run parallel to the chord), or its distance equals epsilon.
    Then float rounding noise, not geometry, decides which point is kept."""
    for points in resample(_align_scale(_drawn(record)), 1.0):
        pending = [(0, len(points) - 1)]
        while pending:
            first, last = pending.pop()
            if last - first < 2:
                continue
            a, chord, inner = points[first], points[last] - points[first], points[first + 1 : last]
            length = np.hypot(*chord)
            if length > 0:
                dist = np.abs(chord[0] * (inner[:, 1] - a[1]) - chord[1] * (inner[:, 0] - a[0])) / length
            else:
                dist = np.hypot(*(inner - a).T)
            k = int(np.argmax(dist))
            if abs(dist[k] - 2.0) < tolerance:
                return True
            if dist[k] > 2.0:
                if np.sum(dist >= dist[k] - tolerance) > 1:
                    return True
                pending += [(first, first + 1 + k), (first + 1 + k, last)]
    return False


def _finish(strokes):
    return [np.round(s) for s in rdp(strokes, 2.0)]


VARIANTS = {
    # the library: align, scale (divide by the longest side, times 255), resample 1 px, RDP 2, round
    "library": lambda rec: to_strokes(quickdraw_simplify(rec)),
    "multiply_scale": lambda rec: _finish(resample(_align_scale(_drawn(rec), multiply=True), 1.0)),
    "drop_taps": lambda rec: _finish(resample(_align_scale(_drawn(rec, taps="drop")), 1.0)),
    "round_before_rdp": lambda rec: rdp([np.round(s) for s in resample(_align_scale(_drawn(rec)), 1.0)], 2.0),
    "resample_before_scale": lambda rec: _finish(_align_scale(resample(_drawn(rec), 1.0))),
    "no_resample": lambda rec: _finish(_align_scale(_drawn(rec))),
    "rdp_to_segment": lambda rec: [
        np.round(_rdp_to_segment(s, 2.0)) for s in resample(_align_scale(_drawn(rec)), 1.0)
    ],
}


def _chamfer(a: np.ndarray, b: np.ndarray) -> float:
    d = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))
    return 0.5 * (d.min(axis=1).mean() + d.min(axis=0).mean())


def _compare(ours: list, google: list) -> dict:
    a, b = np.concatenate(ours), np.concatenate(google)
    ours_count = collections.Counter(map(tuple, a.astype(int).tolist()))
    google_count = collections.Counter(map(tuple, b.astype(int).tolist()))
    return {
        "same_strokes": len(ours) == len(google),
        "same_points": len(a) == len(b),
        "identical": len(ours) == len(google) and all(np.array_equal(x, y) for x, y in zip(ours, google)),
        "chamfer": _chamfer(a, b),
        "matched_points": sum((ours_count & google_count).values()),
        "google_points": len(b),
    }


def _summary(rows: list) -> dict:
    chamfer = np.array([r["chamfer"] for r in rows])
    summary = {
        "pairs": len(rows),
        "same_strokes": float(np.mean([r["same_strokes"] for r in rows])),
        "same_points": float(np.mean([r["same_points"] for r in rows])),
        "identical": float(np.mean([r["identical"] for r in rows])),
        "chamfer_mean": float(chamfer.mean()),
        "chamfer_median": float(np.median(chamfer)),
        "chamfer_p95": float(np.percentile(chamfer, 95)),
        "exact_points": sum(r["matched_points"] for r in rows) / sum(r["google_points"] for r in rows),
    }
    differing = [r for r in rows if "rdp_tie" in r]
    if differing:  # only computed for the library variant
        summary["differing_with_rdp_tie"] = float(np.mean([r["rdp_tie"] for r in differing]))
    return summary


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="data root (default: $SKETCHJAX_DATA or ../shared/data)")
    parser.add_argument("--limit", type=int, default=None, help="compare at most this many pairs")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of " + ",".join(VARIANTS))
    parser.add_argument("--out", type=argparse_output(suffix=".json"), default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    root = data_root(args.data) / "quickdraw"
    variants = args.variants.split(",")
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}; choose from {list(VARIANTS)}")
    if len(set(variants)) < len(variants):
        parser.error(f"--variants names one twice: {args.variants!r}")
    if args.limit is not None and args.limit < 1:
        parser.error(f"--limit must be >= 1 (or left out: every pair), got {args.limit}")

    google = {}
    for _, path in ndjson_files(root / "simplified"):
        for rec in iter_ndjson(path):
            google[rec.key_id] = to_strokes(rec.sketch)
    rows = {v: [] for v in variants}
    start = time.time()
    for _, path in ndjson_files(root / "raw"):
        # Raw recordings contain taps (one-point strokes): keep them, each variant decides.
        for rec in iter_ndjson(path, single_point="keep"):
            if rec.key_id not in google:
                continue
            for v in variants:
                row = _compare([np.asarray(s, np.float64) for s in VARIANTS[v](rec)], google[rec.key_id])
                if v == "library" and not row["identical"]:
                    row["rdp_tie"] = _has_rdp_tie(rec)
                rows[v].append(row)
            if args.limit and len(rows[variants[0]]) >= args.limit:
                break
        if args.limit and len(rows[variants[0]]) >= args.limit:
            break
    if not rows[variants[0]]:
        raise ValueError(f"{root}: no drawing is in both raw/ and simplified/ (same key_id): nothing to compare")
    results = {
        "command": command_line("eval/quickdraw_simplify.py", argv),
        "seconds": round(time.time() - start, 1),
        "variants": {v: _summary(rows[v]) for v in variants},
    }

    header = "| variant | pairs | same #strokes | same #points | identical | chamfer mean | median | p95 | exact points |"
    print(header)
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for v, s in results["variants"].items():
        print(
            f"| {v} | {s['pairs']} | {s['same_strokes']:.3f} | {s['same_points']:.3f} | {s['identical']:.3f} | "
            f"{s['chamfer_mean']:.3f} | {s['chamfer_median']:.3f} | {s['chamfer_p95']:.3f} | {s['exact_points']:.3f} |"
        )
    library = results["variants"].get("library", {})
    if "differing_with_rdp_tie" in library:
        print(
            f"\nlibrary: {library['differing_with_rdp_tie']:.1%} of the drawings that differ from Google's "
            "meet an exact RDP tie (several farthest points, or distance == epsilon)"
        )
    if args.out:
        atomic_write_json(args.out, {**run_record("eval/quickdraw_simplify.py", argv, args.data), **results})
    return results


if __name__ == "__main__":
    sys.exit(run_program(main, "eval/quickdraw_simplify.py"))
