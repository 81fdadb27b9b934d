"""Lossless conversions between :class:`~sketchjax.sketch.Sketch` and sketch file formats.

All formats go through the hub :func:`from_strokes` / :func:`to_strokes` (lists of per-stroke
``[n_i, 2]`` point arrays), which validates input in one place.  Host-side NumPy code; the
sketches returned are unpadded with NumPy leaves (see :mod:`sketchjax.batching` to pad/stack).

==================  ==================================  =====================================
format              read                                write
==================  ==================================  =====================================
list of strokes     :func:`from_strokes`                :func:`to_strokes`
stroke-3            :func:`from_stroke3`                :func:`to_stroke3`
stroke-5            :func:`from_stroke5`                :func:`to_stroke5`
QuickDraw ndjson    :func:`iter_ndjson`,                :func:`write_ndjson`,
                    :func:`read_ndjson`,                :func:`sketch_to_drawing`
                    :func:`record_to_sketch`,
                    :func:`ndjson_files` (a folder)
sketch-rnn npz      :func:`load_npz` (stroke-3 arrays)  :func:`save_npz`
QMUL Chair-V2       :func:`load_chairv2`,               :func:`sketch_to_chairv2`
                    :func:`chairv2_to_sketch`
SVG                 :func:`read_svg`                    :func:`write_svg`
==================  ==================================  =====================================
"""
from sketchjax.formats.chairv2 import chairv2_photo_stem, chairv2_to_sketch, load_chairv2, sketch_to_chairv2
from sketchjax.formats.ndjson import (
    QuickDrawRecord,
    iter_ndjson,
    ndjson_files,
    read_ndjson,
    record_to_sketch,
    sketch_to_drawing,
    write_ndjson,
)
from sketchjax.formats.npz import load_npz, save_npz
from sketchjax.formats.strokes import (
    SINGLE_POINT_POLICIES,
    from_stroke3,
    from_stroke5,
    from_strokes,
    to_stroke3,
    to_stroke5,
    to_strokes,
)
from sketchjax.formats.svg import read_svg, write_svg

__all__ = [
    "SINGLE_POINT_POLICIES",
    "from_strokes",
    "to_strokes",
    "from_stroke3",
    "to_stroke3",
    "from_stroke5",
    "to_stroke5",
    "QuickDrawRecord",
    "iter_ndjson",
    "ndjson_files",
    "read_ndjson",
    "record_to_sketch",
    "sketch_to_drawing",
    "write_ndjson",
    "load_npz",
    "save_npz",
    "load_chairv2",
    "chairv2_to_sketch",
    "chairv2_photo_stem",
    "sketch_to_chairv2",
    "read_svg",
    "write_svg",
]
