"""Malformed input of every kind raises SketchError (a ValueError) naming the item and the problem.

Each case builds its input (files go to ``tmp_path``) and returns ``(call, item)``: calling
``call()`` must raise, and the message must contain ``item`` (sketch name, ``file:line``,
file and key, ...) and match the case's problem pattern.
"""
from __future__ import annotations

import json
import pickle
import re
import zipfile

import jax
import numpy as np
import pytest

from sketchjax.batching import bucket_by_length, pad_sketch, stack_sketches
from sketchjax.formats import (
    from_stroke3,
    from_stroke5,
    from_strokes,
    load_chairv2,
    load_npz,
    read_ndjson,
    read_svg,
    record_to_sketch,
    save_npz,
    to_stroke5,
    to_strokes,
)
from sketchjax.normalize import quickdraw_simplify, rdp, resample
from sketchjax.sketch import Sketch, SketchError

GOOD = [[[0, 0], [5, 5]], [[1, 1], [2, 3], [4, 4]]]
NAME = "my_sketch"


def strokes_case(strokes, **kwargs):
    return lambda tmp: (lambda: from_strokes(strokes, name=NAME, **kwargs), NAME)


def ndjson_case(*lines, raw: bytes = None, line_no=None, **kwargs):
    """A file whose last line is bad; the error must name ``path:line``."""

    def build(tmp):
        path = tmp / "cat.ndjson"
        good = json.dumps({"word": "cat", "key_id": "1", "drawing": [[[0, 5], [0, 5]], [[1, 2, 4], [1, 3, 4]]]})
        if raw is not None:
            path.write_bytes(good.encode() + b"\n" + raw)
        else:
            path.write_text("\n".join([good, *lines]) + "\n")
        return (lambda: read_ndjson(path, **kwargs)), f"{path}:{line_no or 2}"

    return build


def drawing_line(drawing):
    return json.dumps({"word": "cat", "key_id": "2", "drawing": drawing})


def npz_case(write):
    def build(tmp):
        path = tmp / "data.npz"
        write(path)
        return (lambda: load_npz(path)), str(path)

    return build


def object_array(items):
    out = np.empty(len(items), dtype=object)
    for i, item in enumerate(items):
        out[i] = item
    return out


def good_npz(path):
    np.savez(path, train=object_array([np.array([[0, 0, 0], [1, 1, 1]], np.int16)]))


def truncated_npz(path):
    good_npz(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def corrupt_member_npz(path):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("train.npy", b"\x93NUMPY\x01\x00garbage that is not a header")


EXPLOIT_CALLS = []


def exploit_payload():
    EXPLOIT_CALLS.append(1)


class Exploit:
    """Unpickling this would call ``exploit_payload`` (harmless here); the loaders must refuse it."""

    def __reduce__(self):
        return (exploit_payload, ())


def malicious_npz(path):
    np.savez(path, train=object_array([Exploit()]))


def pickle_case(data=None, raw: bytes = None, key=None):
    def build(tmp):
        path = tmp / "chairs.pkl"
        if raw is not None:
            path.write_bytes(raw)
        else:
            with open(path, "wb") as f:
                pickle.dump(data, f)
        item = f"{path}[{key!r}]" if key else str(path)
        return (lambda: load_chairv2(path)), item

    return build


CHAIR = np.array([[1.0, 2.0, 0], [3.0, 4.0, 1]])


def svg_case(text: str, item_suffix: str = ""):
    def build(tmp):
        path = tmp / "drawing.svg"
        path.write_text(text)
        return (lambda: read_svg(path)), str(path) + item_suffix

    return build


def svg(body: str) -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg">{body}</svg>'


def sketch_case(fn, name=NAME):
    return lambda tmp: (lambda: fn(name), name)


BATCHED = from_strokes(GOOD)
BATCHED = Sketch(xy=BATCHED.xy[None], pen=BATCHED.pen[None], valid=BATCHED.valid[None])
NAN_SKETCH = Sketch(xy=np.array([[0, 0], [np.nan, 1]], np.float32), pen=np.array([1, 0], np.float32),
                    valid=np.array([True, True]))
GAP_SKETCH = Sketch(xy=np.zeros((3, 2), np.float32), pen=np.zeros(3, np.float32), valid=np.array([True, False, True]))
NAN_TIME_SKETCH = Sketch(xy=np.array([[0, 0], [1, 1]], np.float32), pen=np.array([1, 0], np.float32),
                         valid=np.array([True, True]), time=np.array([0, np.nan], np.float32))
EMPTY_SKETCH = Sketch(xy=np.zeros((3, 2), np.float32), pen=np.zeros(3, np.float32), valid=np.zeros(3, bool))


def attribution_case(method, xy_at=None, value=np.nan):
    """``method`` (an attribution function's name) on a batch of two sketches whose sketch 1
    has ``value`` at point/coordinate ``xy_at``; the error must name the function and batch index."""

    def build(tmp):
        from sketchjax import attribution
        from sketchjax.render import RasterRecipe

        batch = stack_sketches([from_strokes(GOOD), from_strokes(GOOD)], 8)
        xy = np.array(batch.xy)
        xy[(1,) + xy_at] = value
        recipe = RasterRecipe(out_size=16, canvas=16, fit=False)
        score = lambda images, aux: images.sum((-2, -1))  # noqa: E731
        fn = getattr(attribution, method)
        args = (recipe.distance if method in ("psla", "smoothgrad") else recipe, xy, batch.pen, batch.valid)
        kwargs = {"key": jax.random.PRNGKey(0)} if method == "smoothgrad" else {}
        return (lambda: fn(score, *args, max_strokes=2, **kwargs)), f"{method}: sketch at batch index 1"

    return build

CASES = {
    # --- lists of strokes ---
    "empty drawing": (strokes_case([]), r"empty drawing"),
    "empty stroke": (strokes_case([[[0, 0], [1, 1]], []]), r"stroke 1: empty"),
    "empty stroke array": (strokes_case([np.zeros((0, 2))]), r"stroke 0: empty"),
    "single-point stroke": (strokes_case([[[0, 0], [1, 1]], [[3, 3]]]), r"stroke 1 has a single point.*'keep'.*'drop'"),
    "all single points dropped": (strokes_case([[[3, 3]]], single_point="drop"), r"empty drawing"),
    "NaN": (strokes_case([[[0, 0], [np.nan, 1]]]), r"NaN"),
    "inf": (strokes_case([[[0, np.inf], [1, 1]]]), r"non-finite"),
    # beyond float32 (the file's own units are kept: a 1e6-unit drawing is fitted to a canvas later)
    "huge coordinate": (strokes_case([[[0, 0], [1e39, 1]]]), r"coordinate 1e\+39 out of range \(beyond float32"),
    "huge negative coordinate": (strokes_case([[[-2e39, 0], [1, 1]]]), r"out of range"),
    "wrong width": (strokes_case([np.zeros((3, 4))]), r"wrong shape"),
    "one array, not a list": (strokes_case(np.zeros((3, 2))), r"list of .*strokes"),
    "string values": (strokes_case([[["a", "b"], ["c", "d"]]]), r"non-numeric"),
    "boolean array": (strokes_case([np.ones((2, 2), bool)]), r"non-numeric"),
    "ragged stroke": (strokes_case([[[0, 0], [1, 1, 1]]]), r"rectangular"),
    "not a list": (strokes_case("M 0 0"), r"list of strokes"),
    "unknown policy": (strokes_case(GOOD, single_point="ignore"), r"policy"),
    "time length mismatch": (strokes_case(GOOD, time=[[0, 1], [0, 1]]), r"timestamps"),
    "time beyond float32": (strokes_case(GOOD, time=[[0, 1], [0, 1, 1e300]]), r"timestamp .* out of float32 range"),
    "NaN time": (strokes_case(GOOD, time=[[0, np.nan], [0, 1, 2]]), r"time of stroke 0: non-finite"),
    # --- stroke-3 / stroke-5 ---
    "stroke-3 bad lift": (lambda tmp: (lambda: from_stroke3([[0, 0, 0], [1, 1, 2]], name=NAME), NAME), r"lift"),
    "stroke-3 wrong width": (lambda tmp: (lambda: from_stroke3(np.zeros((4, 2)), name=NAME), NAME), r"shape"),
    "stroke-3 empty": (lambda tmp: (lambda: from_stroke3(np.zeros((0, 3)), name=NAME), NAME), r"empty"),
    "stroke-5 not one-hot": (
        lambda tmp: (lambda: from_stroke5([[0, 0, 1, 0, 0], [1, 1, 1, 1, 0]], name=NAME), NAME), r"one-hot"),
    "stroke-5 starts at end": (lambda tmp: (lambda: from_stroke5([[0, 0, 0, 0, 1]], name=NAME), NAME), r"empty"),
    "stroke-5 max_len too small": (sketch_case(lambda n: to_stroke5(from_strokes(GOOD), 3, name=n)), r"max_len"),
    # --- Sketch objects ---
    "batched sketch to to_strokes": (sketch_case(lambda n: to_strokes(BATCHED, name=n)), r"unbatched"),
    "NaN in a Sketch": (sketch_case(lambda n: to_strokes(NAN_SKETCH, name=n)), r"non-finite"),
    "valid not a prefix": (sketch_case(lambda n: pad_sketch(GAP_SKETCH, 5, name=n)), r"prefix"),
    "all padding": (sketch_case(lambda n: quickdraw_simplify(EMPTY_SKETCH, name=n)), r"empty"),
    "too long, no truncation": (
        sketch_case(lambda n: pad_sketch(from_strokes(GOOD), 3, truncate=False, name=n)), r"exceed"),
    "stack mixing time": (
        sketch_case(lambda n: stack_sketches([from_strokes(GOOD), from_strokes(GOOD, time=[[0, 1], [0, 1, 2]])], name=n)),
        r"with and without time"),
    "bad bucket boundaries": (sketch_case(lambda n: bucket_by_length([from_strokes(GOOD)], (16, 8), name=n)), r"increasing"),
    # found by an audit: a generator was used up by the first check and reported as "got []"
    "bad bucket boundaries, generator": (
        sketch_case(lambda n: bucket_by_length([from_strokes(GOOD)], (b for b in (16, 8)), name=n)),
        r"increasing, got \[16, 8\]"),
    "bucket a non-Sketch": (  # was AttributeError: 'dict' object has no attribute 'valid'
        sketch_case(lambda n: bucket_by_length([from_strokes(GOOD), {"xy": [[0, 0]]}], (16,), name=n)),
        r"\[1\]: expected a Sketch, got dict"),
    "negative rdp epsilon": (sketch_case(lambda n: rdp(from_strokes(GOOD), -1, name=n)), r"epsilon"),
    "zero resample spacing": (sketch_case(lambda n: resample(from_strokes(GOOD), 0, name=n)), r"spacing"),
    # --- attribution of a batch (concrete arrays) ---
    "psla NaN point": (attribution_case("psla", (2, 0)), r"non-finite coordinate .* at point 2"),
    "smoothgrad inf point": (attribution_case("smoothgrad", (4, 1), np.inf), r"non-finite coordinate .* at point 4"),
    "sla_sketch NaN point": (attribution_case("sla_sketch", (0, 1)), r"non-finite coordinate .* at point 0"),
    "occlusion_sketch huge coordinate": (
        attribution_case("occlusion_sketch", (3, 0), 1e6), r"beyond the supported range .* at point 3"),
    # --- QuickDraw ndjson ---
    "ndjson truncated line": (ndjson_case('{"word": "cat", "drawing": [[[0, 1], [2'), r"invalid JSON.*truncated"),
    "ndjson garbage line": (ndjson_case("this is not json"), r"invalid JSON"),
    "ndjson unterminated string": (ndjson_case('{"word": "cat", "drawing": "abc'),
                                   r"invalid JSON \(Invalid control character at the end of the line\)"),  # not "at at"
    "ndjson line not an object": (ndjson_case("[1, 2, 3]"), r"expected a JSON object"),
    "ndjson missing drawing": (ndjson_case('{"word": "cat", "key_id": "3"}'), r"missing 'drawing'"),
    "ndjson xs/ys mismatch": (ndjson_case(drawing_line([[[0, 1, 2], [0, 1]]])), r"length mismatch"),
    "ndjson string coordinate": (ndjson_case(drawing_line([[[0, "1"], [0, 1]]])), r"non-numeric"),
    "ndjson null coordinate": (ndjson_case(drawing_line([[[0, None], [0, 1]]])), r"non-numeric"),
    "ndjson huge integer coordinate": (ndjson_case(drawing_line([[[0, 10**30], [0, 1]]])),
                                       r"integer values out of range \(e.g. 10{30}\)"),
    "ndjson boolean coordinate": (ndjson_case(drawing_line([[[0, True], [0, 1]]])), r"non-numeric"),
    "ndjson nested coordinate": (ndjson_case(drawing_line([[[0, [1]], [0, 1]]])), r"non-numeric"),
    "ndjson empty drawing": (ndjson_case(drawing_line([])), r"empty drawing"),
    "ndjson drawing not a list": (ndjson_case(drawing_line("M0 0")), r"must be a list"),
    "ndjson stroke with 4 rows": (ndjson_case(drawing_line([[[0, 1], [0, 1], [0, 1], [0, 1]]])), r"expected \[xs, ys\]"),
    "ndjson mixed raw and simplified": (
        ndjson_case(drawing_line([[[0, 1], [0, 1]], [[0, 1], [0, 1], [0, 5]]])), r"mixes"),
    "ndjson single-point stroke": (ndjson_case(drawing_line([[[0, 1], [0, 1]], [[5], [5]]]), single_point="error"),
                                   r"single point"),
    "ndjson huge coordinate": (ndjson_case(drawing_line([[[0, 1e39], [0, 1]]])), r"out of range"),
    "ndjson not UTF-8": (ndjson_case(raw=b'{"word": "\xff\xfe"}\n'), r"UTF-8"),
    "ndjson CR line endings": (ndjson_case(raw=b'{"word": "cat", "key_id": "2", "drawing": [[[0, 5], [0, 5]]]}\r'
                                               b'{"word": "cat", "key_id": "3", "drawing": [[[0, 5], [0, 5]]]}\r'),
                               r"lines end in a bare CR"),
    "ndjson nested too deeply": (ndjson_case('{"word": "cat", "drawing": ' + "[" * 5000 + "]" * 5000 + "}"),
                                 r"nested too deeply"),  # was a RecursionError traceback
    "record dict without drawing": (
        lambda tmp: (lambda: record_to_sketch({"word": "cat"}, name="rec-7"), "rec-7"), r"missing 'drawing'"),
    # --- sketch-rnn npz ---
    "npz truncated": (npz_case(truncated_npz), r"not a readable .npz"),
    "npz garbage bytes": (npz_case(lambda p: p.write_bytes(b"definitely not a zip file")), r"not a readable .npz"),
    "npz corrupt member": (npz_case(corrupt_member_npz), r"\['train'\]: corrupt"),
    "npz wrong drawing shape": (
        npz_case(lambda p: np.savez(p, train=object_array([np.zeros((3, 2))]))), r"\['train'\]\[0\]: wrong shape"),
    "npz empty drawing": (npz_case(lambda p: np.savez(p, valid=object_array([np.zeros((0, 3))]))), r"\[0\]: empty"),
    "npz non-numeric drawing": (npz_case(lambda p: np.savez(p, test=object_array([np.array([["a"] * 3])]))), r"non-numeric"),
    "npz malicious pickle": (npz_case(malicious_npz), r"refusing to unpickle"),
    "npz save bad drawing": (
        lambda tmp: (lambda: save_npz(tmp / "out.npz", {"train": [np.zeros((2, 5))]}), "out.npz"), r"wrong shape"),
    # --- Chair-V2 pickle ---
    "pickle truncated": (pickle_case(raw=pickle.dumps({"/train/a_1": CHAIR})[:-20]), r"corrupt or truncated"),
    "pickle garbage": (pickle_case(raw=b"\x00\x01garbage"), r"corrupt or truncated"),
    "pickle not a dict": (pickle_case(data=[CHAIR]), r"expected a pickled dict"),
    "pickle bad array shape": (pickle_case(data={"/train/a_1": CHAIR[:, :2]}, key="/train/a_1"), r"wrong shape"),
    "pickle bad end flag": (
        pickle_case(data={"/train/a_1": np.array([[1.0, 2.0, 0], [3.0, 4.0, 2]])}, key="/train/a_1"), r"flag"),
    "pickle NaN": (pickle_case(data={"/train/a_2": np.array([[1.0, np.nan, 0], [3.0, 4.0, 1]])}, key="/train/a_2"), r"NaN"),
    "pickle non-array value": (pickle_case(data={"/train/a_3": "oops"}, key="/train/a_3"), r"non-numeric"),
    "pickle key not text": (  # the builder failed on it with "'int' object has no attribute 'strip'"
        pickle_case(data={"/train/a_1": CHAIR, 7: CHAIR}), r"key 7 is not text"),
    "pickle malicious": (pickle_case(data={"/train/a_1": Exploit()}), r"refusing to unpickle"),
    # --- SVG ---
    "svg truncated": (svg_case(svg('<path d="M0 0 L 1 1"/>')[:-8]), r"malformed XML"),
    "svg not xml": (svg_case("just some text"), r"malformed XML"),
    "svg wrong root": (svg_case("<html><path d='M0 0 L1 1'/></html>"), r"not an SVG"),
    "svg bad path number": (svg_case(svg('<path d="M 0 0 L 5 x"/>')), r"bad path data.*number"),
    "svg bad path letter": (svg_case(svg('<path d="M 0 0 K 5 5"/>')), r"bad path data"),
    "svg path without moveto": (svg_case(svg('<path d="L 5 5 10 10"/>')), r"moveto"),
    "svg bad arc flag": (svg_case(svg('<path d="M0 0 A 5 5 0 2 0 10 10"/>')), r"arc flag"),
    "svg bad transform": (svg_case(svg('<g transform="translate(1,2) wobble(3)"><path d="M0 0 L1 1"/></g>')), r"transform"),
    "svg transform arity": (svg_case(svg('<path transform="matrix(1 2 3)" d="M0 0 L1 1"/>')), r"matrix takes 6"),
    "svg odd polyline": (svg_case(svg('<polyline points="0,0 1,1 2"/>')), r"odd number"),
    "svg no strokes": (svg_case(svg("<rect width='3' height='3'/>")), r"empty drawing"),
    "svg huge coordinate": (svg_case(svg('<path d="M0 0 L 1e39 0"/>')), r"out of range"),
    "svg path number overflow": (svg_case(svg('<path d="M0 0 L 1e400 0"/>')), r"number '1e400' out of range"),
    "svg transform number overflow": (
        svg_case(svg('<path transform="scale(1e400)" d="M0 0 L1 1"/>')), r"scale\(1e400\).*number out of range"),
    "svg transform product overflow": (
        svg_case(svg('<path transform="scale(1e308) scale(1e308)" d="M0 0 L1 1"/>')), r"overflows"),
    "svg only hidden strokes": (
        svg_case(svg('<path style="display:none" d="M0 0 L1 1"/>')), r"no visible path.*1 hidden by display:none"),
    "svg lone moveto": (svg_case(svg('<path d="M 3 3"/>')), r"single point"),
    "svg bad line length": (svg_case(svg('<line x1="10%" y1="0" x2="1" y2="1"/>')), r"x1"),
    "svg missing file": (lambda tmp: (lambda: read_svg(tmp / "nope.svg"), "nope.svg"), r"cannot read"),
    "svg arc radius overflow": (svg_case(svg('<path d="M0 0 A1e200 1e200 0 0 1 10 10"/>')), r"out of the floating"),
    "svg arc radius product overflow": (svg_case(svg('<path d="M0 0 A1e100 1e100 0 0 1 10 10"/>')), r"arc radii"),
    "svg fractional curve samples": (
        lambda tmp: (lambda: read_svg(svg('<path d="M0 0 Q5 10 10 0"/>'), curve_samples=2.5), "<svg text>"),
        r"curve_samples must be an integer"),
    # --- sketches: timestamps, simplification tolerance ---
    "sketch NaN timestamp": (
        sketch_case(lambda name: to_strokes(NAN_TIME_SKETCH, name=name, with_time=True)), r"non-finite timestamp at point 1"),
    "rdp NaN epsilon": (sketch_case(lambda name: rdp(GOOD, float("nan"), name=name)), r"epsilon must be a number >= 0"),
}


@pytest.mark.filterwarnings("ignore:.*skipped elements")
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_bad_input_raises_named_error(case, tmp_path):
    build, problem = CASES[case]
    call, item = build(tmp_path)
    with pytest.raises(ValueError) as info:
        call()
    assert isinstance(info.value, SketchError)
    message = str(info.value)
    assert item in message, f"item {item!r} not named in: {message}"
    assert re.search(problem, message), f"problem {problem!r} not described in: {message}"


def test_enough_distinct_cases():
    assert len(CASES) >= 30


def test_malicious_pickles_never_run(tmp_path):
    """The refused global is not even looked up, let alone called."""
    EXPLOIT_CALLS.clear()
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"/train/a_1": Exploit()}))
    with pytest.raises(SketchError):
        load_chairv2(path)
    malicious_npz(tmp_path / "evil.npz")
    with pytest.raises(SketchError):
        load_npz(tmp_path / "evil.npz")
    assert EXPLOIT_CALLS == []
