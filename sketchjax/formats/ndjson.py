"""QuickDraw ndjson: one JSON object per line, ``{"word", "countrycode", "timestamp",
"recognized", "key_id", "drawing"}``.

Two drawing layouts exist and are detected per record:

* **simplified** — ``drawing = [[xs, ys], ...]``, integer coordinates 0-255 (RDP-simplified);
* **raw** — ``drawing = [[xs, ys, ts], ...]``, float screen coordinates and timestamps in ms
  since the first point; the timestamps go to ``Sketch.time``.

Files are streamed line by line (the public per-category files have 100k+ lines), gzipped
ones too.  Errors name ``path:line``.  Writing is the exact inverse: integer-valued numbers are written as JSON
integers, others as the shortest decimal that reads back to the same double, in Google's key
order with compact separators, so a simplified file is reproduced byte for byte.

Precision note (checked on the public raw files): about 3% of raw coordinates (e.g.
``459.9000015258789``, a multiple of 2**-17) carry more bits than float32 holds; the canonical
float32 sketch rounds them to the nearest float32 (largest change measured over all 7,853 raw
records: 3.8e-5 px).  All timestamps, all simplified data and the other 97% of raw
coordinates round-trip exactly.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gzip
import io
import json
import os
from typing import Any, Iterable, Iterator, Mapping, Optional

import numpy as np

from sketchjax._checks import check_int
from sketchjax.formats._io import PathLike, atomic_write, open_lines
from sketchjax.formats.strokes import from_strokes, to_strokes
from sketchjax.sketch import Sketch, SketchError

__all__ = [
    "QuickDrawRecord",
    "iter_ndjson",
    "ndjson_files",
    "read_ndjson",
    "record_to_sketch",
    "sketch_to_drawing",
    "write_ndjson",
]

#: The file names of a category's ndjson, in order of preference (gzipped as Google serves them
#: for the raw recordings, or as a user saved them).
NDJSON_SUFFIXES = (".ndjson", ".ndjson.gz")

# Google's key order; any other top-level field is kept in ``extra`` and written before "drawing".
_METADATA_KEYS = ("word", "countrycode", "timestamp", "recognized", "key_id")


@dataclasses.dataclass
class QuickDrawRecord:
    """One QuickDraw drawing with its metadata.

    Attributes:
      sketch: unpadded :class:`Sketch` (``time`` set for raw recordings, else None).
      word: category name, e.g. ``"The Eiffel Tower"``.
      key_id: the drawing's unique id (a decimal string in Google's files).
      countrycode: two-letter country code of the player.
      timestamp: when the drawing was made, e.g. ``"2017-03-11 14:47:44.05242 UTC"``.
      recognized: whether the game's classifier recognised the drawing.
      extra: any other top-level JSON fields, written back unchanged.
      source: ``"path:line"`` the record was read from ("" if built in memory); not written.

    Metadata fields are None when absent from the JSON object (and then not written).
    """

    sketch: Sketch
    word: Optional[str] = None
    key_id: Optional[str] = None
    countrycode: Optional[str] = None
    timestamp: Optional[str] = None
    recognized: Optional[bool] = None
    extra: dict = dataclasses.field(default_factory=dict)
    source: str = ""

    @property
    def is_raw(self) -> bool:
        """True for a raw recording (has timestamps)."""
        return self.sketch.time is not None


def _has_bool(values: list) -> bool:
    # NumPy silently turns JSON true/false into 1/0; a drawing must hold numbers only.
    # the types of a row as a set (C loops): a per-value isinstance was 17% of reading a raw file
    return any(bool in set(map(type, row)) for row in values)


def record_to_sketch(obj: Mapping[str, Any], *, name: str = "record", single_point: str = "keep") -> Sketch:
    """The sketch of one decoded ndjson object (its ``"drawing"`` field).

    Args:
      obj: a JSON object (dict) with a ``"drawing"`` field, simplified ``[[xs, ys], ...]`` or
        raw ``[[xs, ys, ts], ...]`` (detected from the first stroke; all must agree).
      name: names the record in errors (``iter_ndjson`` passes ``"path:line"``).
      single_point: policy for one-point strokes (see ``SINGLE_POINT_POLICIES``); the public
        raw files contain some (taps: about half of Google's raw category files have one
        within their first records), the simplified files none.  Default ``"keep"`` (lossless:
        Google's files load as they are; ``"error"`` refuses them, naming the stroke).

    Returns:
      Unpadded sketch; float32 pixels; ``time`` (ms) for raw drawings.
    """
    if not isinstance(obj, Mapping):
        raise SketchError(f"{name}: expected a JSON object, got {type(obj).__name__}")
    if "drawing" not in obj:
        raise SketchError(f"{name}: missing 'drawing' field (keys: {sorted(obj)})")
    drawing = obj["drawing"]
    if not isinstance(drawing, list):
        raise SketchError(f"{name}: 'drawing' must be a list of strokes, got {type(drawing).__name__}")
    if not drawing:
        raise SketchError(f"{name}: empty drawing (no strokes)")
    strokes = []
    for i, stroke in enumerate(drawing):
        where = f"{name}: stroke {i}"
        if not isinstance(stroke, list) or len(stroke) not in (2, 3) or not all(isinstance(r, list) for r in stroke):
            raise SketchError(f"{where}: expected [xs, ys] or [xs, ys, ts] lists, got {json.dumps(stroke)[:80]}")
        if len(stroke) != len(drawing[0]):
            raise SketchError(f"{where}: mixes simplified [xs, ys] and raw [xs, ys, ts] strokes")
        lengths = [len(r) for r in stroke]
        if len(set(lengths)) > 1:
            raise SketchError(f"{where}: xs/ys{'/ts' if len(stroke) == 3 else ''} length mismatch {lengths}")
        if _has_bool(stroke):
            raise SketchError(f"{where}: non-numeric value (true/false) in coordinates")
        try:
            rows = np.asarray(stroke)
        except (ValueError, TypeError):
            raise SketchError(f"{where}: non-numeric or nested values in coordinates") from None
        # Rows -> points; from_strokes checks dtype, emptiness, NaN and range.
        strokes.append(rows.T if rows.ndim == 2 else rows)
    return from_strokes(strokes, name=name, single_point=single_point)


#: the JSON types of the metadata fields (absent or null: None); a wrong one is named when read
_METADATA_TYPES = {"word": (str,), "countrycode": (str,), "timestamp": (str,), "recognized": (bool,),
                   "key_id": (str, int)}


def _check_metadata(obj: dict, name: str) -> None:
    """SketchError naming ``path:line`` for a metadata field of the wrong JSON type (a
    ``"recognized": "false"`` would read as True, a numeric ``word`` as no category)."""
    for key, types in _METADATA_TYPES.items():
        value = obj.get(key)
        if value is not None and (not isinstance(value, types) or (key == "key_id" and isinstance(value, bool))):
            want = "true/false" if key == "recognized" else "text" if types == (str,) else "text or a whole number"
            raise SketchError(f"{name}: {key!r} must be {want}, got {value!r}"[:300])


def _record_from_json(obj: Any, name: str, single_point: str) -> QuickDrawRecord:
    sketch = record_to_sketch(obj, name=name, single_point=single_point)
    _check_metadata(obj, name)
    extra = {k: v for k, v in obj.items() if k not in _METADATA_KEYS and k != "drawing"}
    return QuickDrawRecord(sketch=sketch, extra=extra, source=name, **{k: obj.get(k) for k in _METADATA_KEYS})


def ndjson_files(directory: PathLike) -> list[tuple[str, str]]:
    """``(category, path)`` of the ndjson files in ``directory`` (one per category, sorted by
    name): ``NAME.ndjson`` or ``NAME.ndjson.gz``; where both exist the plain file is taken.

    Raises:
      FileNotFoundError: ``directory`` is not a folder.
    """
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{directory}: not a folder of QuickDraw ndjson files")
    found: dict[str, str] = {}
    for name in sorted(os.listdir(directory)):
        for rank, suffix in enumerate(NDJSON_SUFFIXES):
            category = name[: -len(suffix)]
            if name.endswith(suffix) and category and os.path.isfile(os.path.join(directory, name)):
                if category not in found or rank == 0:
                    found[category] = os.path.join(directory, name)
    return sorted(found.items())


def iter_ndjson(
    path: PathLike, *, single_point: str = "keep", limit: Optional[int] = None
) -> Iterator[QuickDrawRecord]:
    """Stream the records of a QuickDraw ndjson file (simplified or raw, per record).

    Args:
      path: ``.ndjson`` file, UTF-8, one JSON object per line; blank lines are skipped.  A
        gzipped file (``.ndjson.gz``, told by its first bytes) is read as it decompresses.
      single_point: policy for one-point strokes (``"keep"``, the default, as in Google's raw
        files; ``"error"``, ``"drop"``, ``"dot"``) — see :func:`record_to_sketch`.
      limit: stop after this many records (an integer >= 0; None: every record).

    Yields:
      :class:`QuickDrawRecord` with ``source = "path:line"``.

    Raises:
      SketchError: naming ``path:line`` — invalid or truncated JSON, a line that is not an
        object, missing ``drawing``, mismatched xs/ys lengths, non-numeric values, etc.
    """
    path = os.fspath(path)
    if limit is not None:  # checked here, not when the first record is asked for
        check_int(path, "limit", limit, 0, why=" (None: every record)")
    return _iter_ndjson(path, single_point, limit)


def _iter_ndjson(path: str, single_point: str, limit: Optional[int]) -> Iterator[QuickDrawRecord]:
    count = 0
    # Binary lines, decoded one at a time: a decoding error then names its own line.
    with open_lines(path) as lines:
        for lineno, raw in lines:
            if limit is not None and count >= limit:
                return
            name = f"{path}:{lineno}"
            if not raw.strip():
                continue
            yield _record_from_json(json_line(raw, name), name, single_point)
            count += 1


def json_line(raw: bytes, where: str):
    """One ndjson line (bytes) parsed, or SketchError naming ``where`` (``path:line``) and the
    column of the problem within the line."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise SketchError(f"{where}: not UTF-8 text ({e.reason}); corrupt file?") from None
    if line.startswith("\ufeff"):  # a byte-order mark (files saved by some Windows editors)
        line = line[1:]
    try:
        return json.loads(line)
    except RecursionError:
        raise SketchError(f"{where}: JSON nested too deeply to be a sketch (arrays within arrays beyond "
                          "Python's recursion limit); corrupt file?") from None
    except json.JSONDecodeError as e:
        # Not e.colno: it counts from the last newline before the error, and a truncated line's
        # error sits past its own trailing newline ("column 1", of no line at all).
        at = "at the end of the line" if e.pos >= len(line.rstrip()) else f"at column {e.pos + 1}"
        msg = e.msg[: -len(" at")] if e.msg.endswith(" at") else e.msg  # "... starting at" + "at column 9"
        why = ("its lines end in a bare CR (old Mac line endings: the whole file reads as one line); convert "
               "them to LF" if "\r" in line.rstrip("\r\n") else "the file may be truncated or corrupt")
        raise SketchError(f"{where}: invalid JSON ({msg} {at}); {why}") from None


def read_ndjson(path: PathLike, *, single_point: str = "keep", limit: Optional[int] = None) -> list[QuickDrawRecord]:
    """All records of a QuickDraw ndjson file as a list (see :func:`iter_ndjson`)."""
    return list(iter_ndjson(path, single_point=single_point, limit=limit))


def _json_numbers(values: np.ndarray) -> list:
    # Integers as JSON ints (as in Google's files); float32 values widen exactly to doubles.
    return [int(v) if v.is_integer() else v for v in values.astype(np.float64).tolist()]


def sketch_to_drawing(sketch: Sketch, *, name: str = "sketch") -> list:
    """The QuickDraw ``drawing`` field of an unbatched sketch.

    Returns:
      ``[[xs, ys], ...]`` per stroke, or ``[[xs, ys, ts], ...]`` when the sketch has ``time``;
      numbers are Python ints where integer-valued, else floats (exact float32 values).
    """
    with_time = sketch.time is not None
    return [
        [_json_numbers(stroke[:, col]) for col in range(stroke.shape[1])]
        for stroke in to_strokes(sketch, name=name, with_time=with_time)
    ]


def _record_to_json(record: QuickDrawRecord) -> dict:
    name = record.source or record.key_id or "record"
    # NumPy scalars as Python values (np.bool_ was "not JSON serializable"); then the reader's
    # metadata check, so nothing is written that read_ndjson refuses ('word': 5, a text 'recognized')
    obj = {k: v.item() if isinstance(v, np.generic) else v
           for k in _METADATA_KEYS if (v := getattr(record, k)) is not None}
    _check_metadata(obj, f"{name} (writing)")  # a SketchError write_ndjson passes on as it is
    obj.update(record.extra)
    obj["drawing"] = sketch_to_drawing(record.sketch, name=name)
    return obj


def write_ndjson(records: Iterable[QuickDrawRecord], path: PathLike) -> int:
    """Write records as QuickDraw ndjson (atomically: temp file, then ``os.replace``).

    Key order and number formatting follow Google's files, so reading and writing a file
    reproduces it (byte for byte for simplified data).  A path ending in ``.gz`` is written
    gzip-compressed (as Google's ``.ndjson.gz`` downloads).  Returns the number of records written.
    """
    count, gzipped = 0, os.fspath(path).lower().endswith(".gz")
    with contextlib.ExitStack() as stack:
        f = stack.enter_context(atomic_write(path, "wb" if gzipped else "w"))
        if gzipped:  # closed (the gzip trailer written) before atomic_write moves the file in
            f = stack.enter_context(io.TextIOWrapper(gzip.GzipFile(filename="", mode="wb", fileobj=f, mtime=0),
                                                     encoding="utf-8", newline="\n"))
        for record in records:
            obj = _record_to_json(record)
            try:
                line = json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            except (ValueError, TypeError) as e:  # NaN/inf or an object JSON has no spelling for
                raise SketchError(f"{record.source or record.key_id or 'record'}: cannot write as JSON ({e})") from None
            f.write(line)
            f.write("\n")
            count += 1
    return count
