"""Lossless conversions: strokes, stroke-3/5, ndjson, npz, Chair-V2, SVG (synthetic and real data)."""
from __future__ import annotations

import io
import json
import os
import pickle
import re
import zipfile

import numpy as np
import pytest

from sketchjax.formats import (
    QuickDrawRecord,
    chairv2_photo_stem,
    chairv2_to_sketch,
    from_stroke3,
    from_stroke5,
    from_strokes,
    iter_ndjson,
    load_chairv2,
    load_npz,
    ndjson_files,
    read_ndjson,
    read_svg,
    record_to_sketch,
    save_npz,
    sketch_to_chairv2,
    sketch_to_drawing,
    to_stroke3,
    to_stroke5,
    to_strokes,
    write_ndjson,
    write_svg,
)
from sketchjax.sketch import Sketch, SketchError, num_strokes


@pytest.fixture
def rng():
    return np.random.default_rng(0)


def assert_same_sketch(a: Sketch, b: Sketch, *, time: bool = True) -> None:
    np.testing.assert_array_equal(np.asarray(a.xy), np.asarray(b.xy))
    np.testing.assert_array_equal(np.asarray(a.pen), np.asarray(b.pen))
    np.testing.assert_array_equal(np.asarray(a.valid), np.asarray(b.valid))
    if time:
        assert (a.time is None) == (b.time is None)
        if a.time is not None:
            np.testing.assert_array_equal(np.asarray(a.time), np.asarray(b.time))


def random_strokes(rng, n_strokes=4, integer=True):
    strokes = []
    for _ in range(n_strokes):
        pts = rng.uniform(-300, 300, size=(int(rng.integers(2, 20)), 2))
        strokes.append(np.round(pts) if integer else pts.astype(np.float32))
    return strokes


# --- strokes hub ------------------------------------------------------------------------------


def test_from_strokes_layout(three_strokes):
    s = three_strokes
    assert s.xy.dtype == np.float32 and s.pen.dtype == np.float32 and s.valid.dtype == bool
    assert s.xy.shape == (9, 2) and s.time is None
    np.testing.assert_array_equal(s.pen, [1, 1, 0, 1, 0, 1, 1, 1, 0])
    assert s.valid.all()
    assert int(num_strokes(s.pen, s.valid)) == 3


def test_strokes_round_trip_with_time():
    strokes = [np.array([[0, 0, 0], [1, 1, 16], [2, 5, 33]]), np.array([[4, 4, 100], [5, 5, 120]])]
    s = from_strokes(strokes)
    np.testing.assert_array_equal(s.time, [0, 16, 33, 100, 120])
    back = to_strokes(s, with_time=True)
    assert len(back) == 2 and all(np.array_equal(a, b) for a, b in zip(back, strokes))
    # The same via the separate time argument.
    s2 = from_strokes([a[:, :2] for a in strokes], time=[a[:, 2] for a in strokes])
    assert_same_sketch(s, s2)


@pytest.mark.parametrize(
    "policy, expected_strokes",
    [("keep", [[[1, 1]], [[0, 0], [2, 2]]]), ("drop", [[[0, 0], [2, 2]]]), ("dot", [[[1, 1], [1, 1]], [[0, 0], [2, 2]]])],
)
def test_single_point_policies(policy, expected_strokes):
    s = from_strokes([[[1, 1]], [[0, 0], [2, 2]]], single_point=policy)
    assert [t.tolist() for t in to_strokes(s)] == expected_strokes


def test_keep_single_point_draws_nothing():
    s = from_strokes([[[0, 0], [2, 2]], [[5, 5]], [[7, 7], [8, 8]]], single_point="keep")
    np.testing.assert_array_equal(s.pen, [1, 0, 0, 1, 0])  # the lone point has pen 0 on both sides
    assert int(num_strokes(s.pen, s.valid)) == 3


def test_to_strokes_ignores_padding(three_strokes):
    from sketchjax.batching import pad_sketch

    padded = pad_sketch(three_strokes, 20)
    assert [a.tolist() for a in to_strokes(padded)] == [a.tolist() for a in to_strokes(three_strokes)]


# --- stroke-3 / stroke-5 ----------------------------------------------------------------------


def test_stroke3_convention():
    # First row is an offset from the origin; lift = 1 ends a stroke after that point.
    s3 = np.array([[5, 5, 0], [1, 0, 1], [10, 10, 0], [0, 1, 0], [0, 1, 1]])
    s = from_stroke3(s3)
    assert [a.tolist() for a in to_strokes(s)] == [[[5, 5], [6, 5]], [[16, 15], [16, 16], [16, 17]]]
    np.testing.assert_array_equal(to_stroke3(s), s3)


def test_stroke3_round_trip_integer_and_float(rng):
    for integer in (True, False):
        s = from_strokes(random_strokes(rng, integer=integer))
        assert_same_sketch(from_stroke3(to_stroke3(s)), s)
    s = from_strokes(random_strokes(rng))
    s3 = to_stroke3(s)
    np.testing.assert_array_equal(s3, np.round(s3))  # integer data gives integer offsets
    assert s3[-1, 2] == 1


def test_stroke5_round_trip_and_padding(rng):
    s = from_strokes(random_strokes(rng))
    n = s.xy.shape[0]
    s5 = to_stroke5(s, max_len=n + 7)
    assert s5.shape == (n + 7, 5)
    np.testing.assert_array_equal(s5[n:], np.tile([0, 0, 0, 0, 1], (7, 1)))
    np.testing.assert_array_equal(s5[:n, 2] + s5[:n, 3], 1)
    np.testing.assert_array_equal(s5[:n, 3], to_stroke3(s)[:, 2])
    assert_same_sketch(from_stroke5(s5), s)
    assert to_stroke5(s).shape == (n, 5)
    assert_same_sketch(from_stroke5(to_stroke5(s)), s)
    for bad in (n + 0.7, 0, True):  # n + 0.7 was cut to n
        with pytest.raises(SketchError, match="cat: max_len must be an integer >= 1"):
            to_stroke5(s, max_len=bad, name="cat")


# --- ndjson -----------------------------------------------------------------------------------


def test_ndjson_files_lists_one_file_per_category_plain_before_gzipped(tmp_path):
    import gzip

    (tmp_path / "cat.ndjson").write_text(_simplified_line() + "\n")
    with gzip.open(tmp_path / "cat.ndjson.gz", "wt") as f:  # the same category twice: plain wins
        f.write(_simplified_line(key="2") + "\n")
    with gzip.open(tmp_path / "The Eiffel Tower.ndjson.gz", "wt") as f:
        f.write(_simplified_line(key="3", word="The Eiffel Tower") + "\n")
    for other in ("notes.txt", "dog.npz", ".ndjson"):
        (tmp_path / other).write_text("x")
    (tmp_path / "folder.ndjson").mkdir()
    files = ndjson_files(tmp_path)
    assert [(c, os.path.basename(p)) for c, p in files] == [
        ("The Eiffel Tower", "The Eiffel Tower.ndjson.gz"), ("cat", "cat.ndjson")]
    assert [r.key_id for c, p in files for r in iter_ndjson(p)] == ["3", "1"]
    with pytest.raises(FileNotFoundError, match="not a folder"):
        ndjson_files(tmp_path / "cat.ndjson")


def _simplified_line(key="1", word="cat"):
    return json.dumps(
        {"word": word, "countrycode": "US", "timestamp": "2017-01-01 00:00:00.0 UTC", "recognized": True,
         "key_id": key, "drawing": [[[0, 10, 255], [5, 0, 20]], [[3, 4], [7, 7]]]},
        separators=(",", ":"),
    )


def test_ndjson_simplified_round_trip(tmp_path):
    src = tmp_path / "cat.ndjson"
    src.write_text(_simplified_line("1") + "\n\n" + _simplified_line("2") + "\n")
    records = read_ndjson(src)
    assert [r.key_id for r in records] == ["1", "2"]
    r = records[0]
    assert (r.word, r.countrycode, r.recognized, r.is_raw) == ("cat", "US", True, False)
    assert r.source == f"{src}:1" and records[1].source == f"{src}:3"
    assert sketch_to_drawing(r.sketch) == [[[0, 10, 255], [5, 0, 20]], [[3, 4], [7, 7]]]
    out = tmp_path / "out.ndjson"
    assert write_ndjson(records, out) == 2
    assert out.read_text() == _simplified_line("1") + "\n" + _simplified_line("2") + "\n"
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # atomic write cleaned up
    # a file saved with a UTF-8 byte-order mark (some Windows editors) reads the same (was "invalid JSON")
    bom = tmp_path / "bom.ndjson"
    bom.write_bytes(b"\xef\xbb\xbf" + src.read_bytes())
    assert [sketch_to_drawing(r.sketch) for r in read_ndjson(bom)] == [sketch_to_drawing(r.sketch) for r in records]


@pytest.mark.parametrize("field, value, want", [("recognized", "false", "true/false"), ("recognized", 1, "true/false"),
                                               ("word", 5, "text"), ("countrycode", ["US"], "text"),
                                               ("timestamp", 17.5, "text"), ("key_id", True, "text or a whole number"),
                                               ("key_id", 1.5, "text or a whole number")])
def test_ndjson_metadata_of_the_wrong_type_is_named(tmp_path, field, value, want):
    # were read as given: "recognized": "false" counted as recognised, a numeric word as a category
    obj = json.loads(_simplified_line("7"))
    obj[field] = value
    src = tmp_path / "cat.ndjson"
    src.write_text(_simplified_line("1") + "\n" + json.dumps(obj) + "\n")
    with pytest.raises(SketchError, match=rf"cat\.ndjson:2: '{field}' must be {want}, got"):
        read_ndjson(src)
    obj[field] = None  # null: absent
    obj["key_id"] = 12  # a numeric key_id is kept as written
    src.write_text(json.dumps(obj) + "\n")
    assert read_ndjson(src)[0].key_id == 12


def test_ndjson_raw_keeps_time_and_extra_fields(tmp_path):
    obj = {"word": "cat", "key_id": "9", "my_field": [1, 2],
           "drawing": [[[1.5, 33.507999420166016, 3], [4, 5, 6.25], [0, 16, 40]], [[7], [8], [55]]]}
    src = tmp_path / "raw.ndjson"
    src.write_text(json.dumps(obj) + "\n")
    (r,) = read_ndjson(src)  # the tap (one-point stroke) kept by default, as Google's raw files need
    assert r.is_raw and r.extra == {"my_field": [1, 2]} and r.countrycode is None
    with pytest.raises(SketchError, match=r"raw.ndjson:1: .*stroke 1 has a single point"):
        read_ndjson(src, single_point="error")
    np.testing.assert_array_equal(r.sketch.time, [0, 16, 40, 55])
    out = tmp_path / "out.ndjson"
    write_ndjson([r], out)
    back = json.loads(out.read_text())
    assert back == obj  # 33.507999420166016 is a float32 value: exact
    assert list(back) == ["word", "key_id", "my_field", "drawing"]


def test_iter_ndjson_streams_and_limits(tmp_path):
    src = tmp_path / "big.ndjson"
    src.write_text("\n".join([_simplified_line(str(i)) for i in range(5)] + ["{broken"]) + "\n")
    it = iter_ndjson(src, limit=3)
    assert next(it).key_id == "0"  # a generator: nothing read beyond what is consumed
    assert [r.key_id for r in it] == ["1", "2"]
    assert len(read_ndjson(src, limit=5)) == 5  # the corrupt line 6 is never parsed
    assert read_ndjson(src, limit=0) == []
    for bad in (-1, 1.5, True, "3"):  # -1 (a "no limit" guess) read nothing; 1.5 was taken
        with pytest.raises(ValueError, match=r"big\.ndjson: limit must be an integer >= 0 \(None: every record\)"):
            iter_ndjson(src, limit=bad)  # said when called, not when the first record is asked for


def test_gzipped_ndjson_reads_as_plain_and_corruption_is_named(tmp_path):
    import gzip

    text = "".join(_simplified_line(str(i)) + "\n" for i in range(3000))  # > gzip's read buffer
    plain = tmp_path / "cat.ndjson"
    plain.write_text(text)
    packed = gzip.compress(text.encode())
    for name in ("cat.ndjson.gz", "gz_named_plain.ndjson"):  # told by its bytes, not its name
        (tmp_path / name).write_bytes(packed)
        got = read_ndjson(tmp_path / name)
        assert [r.key_id for r in got] == [str(i) for i in range(3000)]
        assert got[3].source == f"{tmp_path / name}:4"
        for a, b in zip(got, read_ndjson(plain)):
            assert_same_sketch(a.sketch, b.sketch)
    # written gzipped to a .gz path (was plain text under a .gz name: zcat, gzip -d, pandas failed)
    written = tmp_path / "out.ndjson.gz"
    assert write_ndjson(read_ndjson(plain), written) == 3000
    assert gzip.decompress(written.read_bytes()).decode() == text
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    cut = tmp_path / "cut.ndjson.gz"
    cut.write_bytes(packed[: len(packed) // 2])  # an interrupted download
    with pytest.raises(SketchError, match=r"cut\.ndjson\.gz: gzip data corrupt or truncated after line [1-9]\d*"):
        read_ndjson(cut)
    assert len(read_ndjson(cut, limit=2)) == 2  # the readable start still streams
    flipped = bytearray(packed)
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "bad.ndjson.gz").write_bytes(bytes(flipped))
    with pytest.raises(SketchError, match=r"bad\.ndjson\.gz(: gzip data corrupt|:\d+: (invalid JSON|not UTF-8))"):
        read_ndjson(tmp_path / "bad.ndjson.gz")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX")
def test_ndjson_reads_from_a_pipe_plain_or_gzipped(tmp_path):
    """A reader that opened the file twice (once to sniff for gzip) lost a pipe's first bytes:
    ``read_ndjson("<(zcat cat.ndjson.gz)")`` hung or returned nothing."""
    import gzip
    import threading

    text = "".join(_simplified_line(str(i)) + "\n" for i in range(3)).encode()
    for name, payload in (("plain", text), ("packed", gzip.compress(text))):
        fifo = tmp_path / name
        os.mkfifo(fifo)
        writer = threading.Thread(target=lambda f=fifo, p=payload: f.write_bytes(p), daemon=True)
        writer.start()
        assert [r.key_id for r in read_ndjson(fifo)] == ["0", "1", "2"], name
        writer.join(timeout=10)


def test_write_records_built_in_memory(tmp_path, three_strokes):
    record = QuickDrawRecord(sketch=three_strokes, word="zigzag", key_id="42")
    assert write_ndjson([record], tmp_path / "mine.ndjson") == 1
    obj = json.loads((tmp_path / "mine.ndjson").read_text())
    assert list(obj) == ["word", "key_id", "drawing"]  # absent metadata is not written
    assert obj["drawing"][1] == [[20, 25], [5, 30]]
    (back,) = read_ndjson(tmp_path / "mine.ndjson")
    assert_same_sketch(back.sketch, three_strokes)


def test_record_to_sketch_from_dict():
    s = record_to_sketch(json.loads(_simplified_line()), name="mine")
    assert s.xy.shape == (5, 2)


# --- npz --------------------------------------------------------------------------------------


def test_npz_round_trip(tmp_path, rng):
    drawings = [to_stroke3(from_strokes(random_strokes(rng))).astype(np.int16) for _ in range(5)]
    same_length = [d[:4] for d in drawings]  # equal lengths must still be stored as an object array
    path = tmp_path / "cats.npz"
    save_npz(path, {"train": drawings, "valid": same_length, "test": []})
    loaded = load_npz(path)
    assert list(loaded) == ["train", "valid", "test"]
    for split, ref in [("train", drawings), ("valid", same_length)]:
        assert len(loaded[split]) == len(ref)
        for a, b in zip(loaded[split], ref):
            assert a.dtype == np.int16 and np.array_equal(a, b)
    # One split alone (the others are not unpickled); a split the file lacks is just absent.
    only = load_npz(path, splits=("valid", "nope"))
    assert list(only) == ["valid"] and all(np.array_equal(a, b) for a, b in zip(only["valid"], same_length))
    assert list(load_npz(path, splits="train")) == ["train"]
    # a NaN drawing was written, failing only whoever read it later; the old file stays
    broken = [d.astype(np.float32) for d in drawings]
    broken[3][2, 1] = np.nan
    with pytest.raises(SketchError, match=r"cats\.npz\['train'\]\[3\]: non-finite value \(NaN/inf\) at row 2"):
        save_npz(path, {"train": broken})
    assert list(load_npz(path)) == ["train", "valid", "test"]
    # an array saved beside the splits (found by an audit: a 'scale' member failed the whole
    # file as a drawing of wrong shape) is left out, named; a bad split itself still fails
    extra = tmp_path / "extra.npz"
    with zipfile.ZipFile(path) as zf, zipfile.ZipFile(extra, "w") as out:
        for member in zf.namelist():
            out.writestr(member, zf.read(member))
        buf = io.BytesIO()
        np.save(buf, np.float32(3.5))
        out.writestr("scale.npy", buf.getvalue())
    with pytest.warns(UserWarning, match=r"extra\.npz: left out the member 'scale', which is not a list of drawings"):
        assert list(load_npz(extra)) == ["train", "valid", "test"]
    # Readable by NumPy the way sketch-rnn reads its files.
    with np.load(path, allow_pickle=True, encoding="latin1") as z:
        assert z["valid"].dtype == object and np.array_equal(z["valid"][0], same_length[0])
    # ... also by NumPy < 1.26 (sketch-rnn's own environment), which cannot import the
    # `numpy._core` that NumPy 2's pickles name (checked by hand with NumPy 1.24.4): the
    # pickles name numpy.core, as NumPy 1.x writes them, for the split and each drawing.
    import pickletools

    with zipfile.ZipFile(path) as zf:
        for split in ("train", "valid", "test"):
            with zf.open(f"{split}.npy") as f:
                assert np.lib.format.read_magic(f) == (1, 0)
                np.lib.format.read_array_header_1_0(f)
                data = f.read()
            globals_ = {arg for op, arg, _ in pickletools.genops(data) if op.name == "GLOBAL"}
            assert "numpy.core.multiarray _reconstruct" in globals_, split
            assert b"numpy._core" not in data, split


# --- Chair-V2 ---------------------------------------------------------------------------------


def test_chairv2_round_trip(tmp_path):
    arr = np.array([[1.25, 2.5, 0], [3.0, 4.0, 1], [5.0, 6.0, 0], [7.0, 8.0, 0], [9.0, 1.0, 1]])
    s = chairv2_to_sketch(arr)
    assert [len(t) for t in to_strokes(s)] == [2, 3]
    np.testing.assert_array_equal(sketch_to_chairv2(s), arr)
    path = tmp_path / "chairs.pkl"
    with open(path, "wb") as f:
        pickle.dump({"/train/abc_v1_1": arr, "/train/abc_v1_2": arr[:2]}, f)
    loaded = load_chairv2(path)
    assert list(loaded) == ["/train/abc_v1_1", "/train/abc_v1_2"]
    assert chairv2_photo_stem("/train/abc_v1_2") == "abc_v1"
    np.testing.assert_array_equal(sketch_to_chairv2(loaded["/train/abc_v1_2"]), arr[:2])


# --- SVG --------------------------------------------------------------------------------------


def _svg(body: str, ns: bool = True) -> str:
    xmlns = ' xmlns="http://www.w3.org/2000/svg"' if ns else ""
    return f"<svg{xmlns} viewBox='0 0 200 200'>{body}</svg>"


ABSOLUTE = "M 10 20 L 30 20 H 50 V 40 C 60 40 70 50 70 60 S 80 80 90 80 Q 100 80 100 90 T 110 100 A 10 10 0 0 1 130 100 Z"
RELATIVE = "m 10 20 l 20 0 h 20 v 20 c 10 0 20 10 20 20 s 10 20 20 20 q 10 0 10 10 t 10 10 a 10 10 0 0 1 20 0 z"


def test_svg_every_path_command():
    s = read_svg(_svg(f'<path d="{ABSOLUTE}"/>'), curve_samples=4)
    (pts,) = to_strokes(s)
    assert len(pts) == 1 + 1 + 1 + 1 + 4 * 5 + 1  # M L H V, four samples per C S Q T A, Z
    np.testing.assert_allclose(pts[:4], [[10, 20], [30, 20], [50, 20], [50, 40]])
    cubic = pts[4:8]
    np.testing.assert_allclose(cubic[1], [63.75, 46.25], atol=1e-4)  # t = 1/2 by de Casteljau
    np.testing.assert_allclose(cubic[3], [70, 60])
    smooth = pts[8:12]  # first control point reflected: (70, 70)
    np.testing.assert_allclose(smooth[1], 0.125 * np.array([70, 60]) + 0.375 * np.array([70, 70])
                               + 0.375 * np.array([80, 80]) + 0.125 * np.array([90, 80]), atol=1e-4)
    quad_t = pts[16:20]  # T reflects Q's control (100, 80) about (100, 90) -> (100, 100)
    np.testing.assert_allclose(quad_t[1], [102.5, 97.5], atol=1e-4)
    arc = pts[20:24]  # half circle about (120, 100), sweep = 1 goes through (120, 90)
    np.testing.assert_allclose(np.hypot(*(arc - [120, 100]).T), 10, atol=1e-4)
    np.testing.assert_allclose(arc[1], [120, 90], atol=1e-4)
    np.testing.assert_allclose(pts[-1], [10, 20])  # Z returns to the subpath start
    relative = read_svg(_svg(f'<path d="{RELATIVE}"/>'), curve_samples=4)
    np.testing.assert_allclose(relative.xy, s.xy, atol=1e-4)


def test_svg_subpaths_and_number_syntax():
    cases = {
        "M0 0 L10 0 M 20 20 L 30 30 z m 5 5 l 1 1": [[[0, 0], [10, 0]], [[20, 20], [30, 30], [20, 20]], [[25, 25], [26, 26]]],
        "M0 0 L10 0 L10 10 Z L 5 5": [[[0, 0], [10, 0], [10, 10], [0, 0]], [[0, 0], [5, 5]]],
        "M0 0 10 0 10 10": [[[0, 0], [10, 0], [10, 10]]],
        "m1 1 10 0 0 10": [[[1, 1], [11, 1], [11, 11]]],
        "M.5.5L1e1-2": [[[0.5, 0.5], [10, -2]]],
        "M0,0 h 5, 5 v-3-3": [[[0, 0], [5, 0], [10, 0], [10, -3], [10, -6]]],
    }
    for d, expected in cases.items():
        got = [a.tolist() for a in to_strokes(read_svg(_svg(f'<path d="{d}"/>')))]
        assert got == expected, d
    # Arc flags written without separators: large-arc 1, sweep 0, end (10, 0) relative.
    (arc,) = to_strokes(read_svg(_svg('<path d="M0 0a5 5 0 1010 0"/>'), curve_samples=8))
    np.testing.assert_allclose(arc[-1], [10, 0])
    np.testing.assert_allclose(np.hypot(*(arc - [5, 0]).T), 5, atol=1e-4)
    assert (arc[1:-1, 1] > 0).all()  # sweep 0 from (0,0) to (10,0) passes below (y > 0)


def test_svg_arc_with_close_but_distinct_end_points_is_a_nearly_full_ellipse():
    # SVG 1.1 F.6.2 omits an arc only when its end points are identical: 0.003 px apart with
    # the large-arc flag is a circle of radius 50 (not a 0.003 px line, as with allclose).
    (arc,) = to_strokes(read_svg(_svg('<path d="M400 400 a 50 50 0 1 0 0.003 0"/>'), curve_samples=64))
    assert len(arc) == 65
    np.testing.assert_allclose(arc[-1], [400.003, 400], atol=1e-4)
    centre = np.array([400.0015, 400.0 + 50.0])  # sweep 0 from left to right passes above: below it
    np.testing.assert_allclose(np.hypot(*(arc - centre).T), 50, atol=1e-3)
    np.testing.assert_allclose(np.ptp(arc, axis=0), [100, 100], atol=0.5)
    # identical end points still omit the arc (the current point is repeated)
    (dot,) = to_strokes(read_svg(_svg('<path d="M400 400 a 50 50 0 1 0 0 0 L 410 400"/>')))
    np.testing.assert_allclose(dot, [[400, 400], [400, 400], [410, 400]])
    # end points too close to resolve (their squared offsets underflow) do not crash
    (tiny,) = to_strokes(read_svg(_svg('<path d="M0 0 a 5 5 0 1 0 1e-200 0 L 3 3"/>')))
    np.testing.assert_allclose(tiny, [[0, 0], [0, 0], [3, 3]])


def test_svg_arc_radii_too_small_are_scaled_up_at_any_magnitude():
    # F.6.6: radii that cannot reach the end point are scaled up keeping their ratio -- 1e-300 as
    # much as 1 (1e-300 used to overflow the scale factor and be refused as out of range)
    def arc(rx, ry, phi=30):
        (pts,) = to_strokes(read_svg(_svg(f'<path d="M0 0 A {rx} {ry} {phi} 0 1 10 4"/>'), curve_samples=16))
        return pts

    reference = arc(1, 2)
    np.testing.assert_allclose(arc(1e-300, 2e-300), reference, atol=1e-9)
    np.testing.assert_allclose(arc(1e-320, 2e-320), reference, atol=1e-6)  # subnormal radii
    circle = arc(1e-300, 1e-300, 0)  # a half circle on the chord: centre at its middle, radius half of it
    np.testing.assert_allclose(np.hypot(*(circle - [5, 2]).T), np.hypot(5, 2), atol=1e-9)
    # a radius ratio below the floating-point range is a flat ellipse: the straight segment
    np.testing.assert_allclose(arc(1e-300, 1e300), [[0, 0], [10, 4]])


def test_svg_shapes_and_nested_transforms():
    body = (
        '<g transform="translate(100,0)"><g transform="scale(2)">'
        '<polyline points="0,0 1,1 2,0" transform="rotate(90)"/></g></g>'
        '<polygon points="0 0, 10 0, 10 10"/>'
        '<line x1="1" y1="2" x2="3" y2="4" transform="matrix(1 0 0 1 5 5)"/>'
        '<path d="M20 10 L 20 20" transform="rotate(90, 10, 10)"/>'
        '<path d="M0 10 L 0 20" transform="skewX(45)"/>'
        '<defs><path d="M0 0 L 1 1"/></defs>'
    )
    for ns in (True, False):
        strokes = [a.tolist() for a in to_strokes(read_svg(_svg(body, ns)))]
        np.testing.assert_allclose(strokes[0], [[100, 0], [98, 2], [100, 4]], atol=1e-5)
        assert strokes[1] == [[0, 0], [10, 0], [10, 10], [0, 0]]  # polygon closed
        assert strokes[2] == [[6, 7], [8, 9]]
        np.testing.assert_allclose(strokes[3], [[10, 20], [0, 20]], atol=1e-5)
        np.testing.assert_allclose(strokes[4], [[10, 10], [20, 20]], atol=1e-5)
        assert len(strokes) == 5  # <defs> content skipped


def test_svg_skips_non_stroke_elements_with_warning():
    with pytest.warns(UserWarning, match="rect"):
        s = read_svg(_svg('<rect width="5" height="5"/><path d="M0 0 L1 1"/>'))
    assert s.xy.shape == (2, 2)


def test_svg_hidden_content_is_not_read():
    """Inkscape keeps hidden layers as display:none groups; hidden content is not drawn, so it
    is no stroke. visibility is inherited and may be set back to visible below."""
    s = read_svg(_svg('<g style="fill:none; display : none"><path d="M0 0 L9 9"/></g>'
                      '<path visibility="hidden" d="M0 9 L9 0"/>'
                      '<g visibility="hidden"><path d="M1 1 L2 2"/><path visibility="visible" d="M3 3 L4 4"/></g>'
                      '<path display="none" d="M5 5 L6 6"/>'
                      '<path style="visibility:collapse" d="M7 7 L8 8"/><path d="M10 10 L20 20"/>'))
    assert [st.tolist() for st in to_strokes(s)] == [[[3, 3], [4, 4]], [[10, 10], [20, 20]]]
    with pytest.raises(ValueError, match="empty drawing"):
        read_svg(_svg('<g style="display:none"><path d="M0 0 L9 9"/></g>'))


def test_svg_canvas_holds_points_left_of_the_origin():
    """Stroke-3 data has negative absolute coordinates; the default canvas cut them off."""
    s = from_strokes([np.array([[-408.0, -276.0], [-1.5, 155.2]]), np.array([[0.0, 0.0], [3.0, 4.0]])])
    text = write_svg(s)
    assert 'width="411" height="432" viewBox="-408 -276 411 432"' in text
    assert_same_sketch(read_svg(text), s)
    assert 'viewBox="0 0 3 5"' in write_svg(from_strokes([np.array([[0.5, 0.0], [3.0, 4.2]])]))


@pytest.mark.parametrize("kw", [{"size": float("nan")}, {"size": (-5, 10)}, {"size": (640, "x")}, {"size": 0},
                                {"size": (1, 2, 3)}, {"size": True}, {"stroke_width": float("nan")},
                                {"stroke_width": -1}, {"stroke_width": "2"}])
def test_svg_write_refuses_lengths_it_cannot_write(kw, tmp_path):
    # were written verbatim: width="nan" viewBox="0 0 nan nan", a negative width, text
    s = from_strokes([np.array([[0.0, 0.0], [3.0, 4.0]])])
    name = next(iter(kw))
    with pytest.raises(ValueError, match=f"cat: {name} must be"):
        write_svg(s, tmp_path / "x.svg", name="cat", **kw)
    assert not (tmp_path / "x.svg").exists()
    assert 'width="2.5"' in write_svg(s, size=np.float32(2.5), stroke_width=np.int64(3))


def test_svg_write_read_exact(tmp_path, rng):
    s = from_strokes(random_strokes(rng, integer=False) + [np.array([[3.5, 4.25]])], single_point="keep")
    path = tmp_path / "s.svg"
    text = write_svg(s, path, size=(640, 480), stroke_width=2)
    assert path.read_text() == text and 'viewBox="0 0 640 480"' in text
    assert text.count("<polyline") == 5
    assert_same_sketch(read_svg(path, single_point="keep"), s)
    assert_same_sketch(read_svg(text, single_point="keep"), s)
    # the document as bytes (was taken as a file name: "No such file or directory: b'<?xml...'")
    assert_same_sketch(read_svg(b"\xef\xbb\xbf  " + text.encode(), single_point="keep"), s)
    assert_same_sketch(read_svg(str(path).encode(), single_point="keep"), s)  # a path as bytes still is one


# --- real data --------------------------------------------------------------------------------


@pytest.mark.data
def test_every_simplified_record_round_trips(data_file, tmp_path):
    files = sorted(data_file("quickdraw", "simplified").glob("*.ndjson"))
    files += sorted(data_file("quickdraw", "monkey_1000").glob("*.ndjson"))
    total = 0
    for src in files:
        records = read_ndjson(src)
        out = tmp_path / "out.ndjson"
        write_ndjson(records, out)
        assert out.read_bytes() == src.read_bytes(), src  # byte for byte
        total += len(records)
    assert total == 9600


@pytest.mark.data
def test_raw_records_round_trip_with_timing(data_file):
    """Raw coordinates: exact where the value is a float32 (97%), else the nearest float32."""
    files = sorted(data_file("quickdraw", "raw").glob("*.ndjson"))[::4]
    checked = exact = values = 0
    for src in files:
        lines = src.read_text().splitlines()[:5]
        for line, record in zip(lines, iter_ndjson(src, single_point="keep", limit=5)):
            original = json.loads(line)["drawing"]
            drawing = sketch_to_drawing(record.sketch)
            assert record.is_raw and len(drawing) == len(original)
            for ours, theirs in zip(drawing, original):
                assert ours[2] == theirs[2]  # timestamps (ms) exact
                for o, t in zip(ours[:2], theirs[:2]):
                    o, t = np.array(o, np.float64), np.array(t, np.float64)
                    np.testing.assert_array_equal(o, t.astype(np.float32))  # nearest float32
                    assert np.abs(o - t).max() < 1e-4
                    exact += int((o == t).sum())
                    values += o.size
            checked += 1
    assert checked >= 400
    assert exact / values > 0.9


@pytest.mark.data
def test_omniglot_npz_round_trip(data_file):
    splits = load_npz(data_file("sketchrnn_npz", "omniglot.npz"))
    assert {k: len(v) for k, v in splits.items()} == {"train": 30000, "valid": 1000, "test": 1000}
    for split, drawings in splits.items():
        for i in range(0, len(drawings), 7):  # every 7th drawing (all 32,000 took ~30 s of the suite)
            s3 = drawings[i]
            back = to_stroke3(from_stroke3(s3, name=f"omniglot[{split}][{i}]"))
            assert np.array_equal(back, s3), (split, i)


@pytest.mark.data
def test_chairv2_real_file(data_file):
    path = data_file("qmul_chairv2", "ChairV2_Coordinate_train.pkl")
    sketches = load_chairv2(path)
    assert len(sketches) == 952
    with open(path, "rb") as f:
        reference = pickle.load(f)  # trusted test file: plain pickle as the reference
    photos = {p.stem for p in data_file("qmul_chairv2", "photo").glob("*.png")}
    for key, sketch in sketches.items():
        back = sketch_to_chairv2(sketch, name=key)
        np.testing.assert_array_equal(back[:, 2], reference[key][:, 2])
        np.testing.assert_array_equal(back[:, :2], reference[key][:, :2].astype(np.float32))
        assert chairv2_photo_stem(key) in photos


@pytest.mark.data
def test_tuberlin_svgs(data_file):
    files = sorted(data_file("tuberlin_svg").glob("*/*.svg"))
    assert len(files) == 15
    number = r"(-?[\d.]+)"
    for path in files:
        text = path.read_text()
        sketch = read_svg(path)
        strokes = to_strokes(sketch)
        # Independent check of the transform order: each file has one
        # <g transform="translate(a,b) scale(k) translate(c,d)"> and paths "M x y C ...",
        # so a stroke starts at (a + k (x + c), b + k (y + d)).
        a, b, k, c, d = map(float, re.search(
            rf"translate\({number},{number}\) scale\({number}\) translate\({number},{number}\)", text).groups())
        starts = np.array([[float(x), float(y)] for x, y in re.findall(rf' d="M{number}[ ,]{number}', text)])
        assert len(strokes) == len(starts) == text.count("<path")
        expected = np.column_stack([a + k * (starts[:, 0] + c), b + k * (starts[:, 1] + d)])
        np.testing.assert_allclose([s[0] for s in strokes], expected, rtol=1e-6, atol=1e-4)
        assert_same_sketch(read_svg(write_svg(sketch)), sketch, time=False)


def test_svg_switch_reads_its_first_rendered_child():
    from sketchjax.formats import read_svg

    text = ('<svg><switch><title>t</title><g systemLanguage="xx"><path d="M0 0 L5 5"/></g>'
            '<path d="M1 1 L2 2"/><path d="M7 7 L8 8"/></switch></svg>')
    np.testing.assert_array_equal(np.asarray(read_svg(text).xy), [[1, 1], [2, 2]])


def test_write_ndjson_names_a_record_with_nan_metadata(tmp_path):
    from sketchjax.formats import read_ndjson, write_ndjson

    path = tmp_path / "cat.ndjson"
    path.write_text('{"word":"cat","key_id":"7","score":NaN,"drawing":[[[0,5],[0,5]]]}\n')
    records = read_ndjson(path)
    with pytest.raises(ValueError, match=r"cat\.ndjson:1: cannot write as JSON"):
        write_ndjson(records, tmp_path / "out.ndjson")
    # an audit: metadata the reader refuses was written ('word': 5), a NumPy bool was a TypeError
    import dataclasses

    (tmp_path / "good.ndjson").write_text('{"word":"cat","key_id":"7","drawing":[[[0,5],[0,5]]]}\n')
    good = read_ndjson(tmp_path / "good.ndjson")[0]
    for field, value, message in (("word", 5, "'word' must be text, got 5"),
                                  ("recognized", "false", "'recognized' must be true/false"),
                                  ("timestamp", 1490000000, "'timestamp' must be text")):
        with pytest.raises(ValueError, match=rf"\(writing\): {message}"):
            write_ndjson([dataclasses.replace(good, **{field: value})], tmp_path / "bad.ndjson")
    assert not (tmp_path / "bad.ndjson").exists()
    write_ndjson([dataclasses.replace(good, recognized=np.bool_(True), key_id=np.int64(7))], tmp_path / "np.ndjson")
    again = read_ndjson(tmp_path / "np.ndjson")[0]
    assert again.recognized is True and again.key_id == 7


def test_audit_a_large_drawing_keeps_its_units_until_fitted(tmp_path):
    """Found by an audit: a 12000-unit SVG (a tablet or high-resolution export) was refused at
    load as 'out of range (|x|, |y| must be <= 8192 pixels)', though every command fits a
    drawing to its canvas first; the renderers still refuse unfitted canvas coordinates."""
    import jax.numpy as jnp

    from sketchjax.batching import stack_sketches
    from sketchjax.normalize import fit_to_canvas
    from sketchjax.render import raster
    from sketchjax.sketch import SketchError

    path = tmp_path / "big.svg"
    path.write_text('<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 12000 12000">'
                    '<path d="M1000 1000 L 11000 11000 L 11000 1000"/></svg>')
    big = read_svg(path)
    (tmp_path / "small.svg").write_text(path.read_text().replace("12000", "12").replace("11000", "11").replace("1000", "1"))
    small = read_svg(tmp_path / "small.svg")
    assert float(np.abs(big.xy).max()) == 11000.0
    batch = stack_sketches([big, small], max_len=8)
    fitted = fit_to_canvas(batch, 64, padding=0.1)
    img = np.asarray(raster(fitted.xy, fitted.pen, fitted.valid, 64))
    np.testing.assert_array_equal(img[0], img[1])  # the same drawing at two scales
    with pytest.raises(SketchError, match="beyond the supported range"):
        raster(jnp.asarray(batch.xy), jnp.asarray(batch.pen), jnp.asarray(batch.valid), 64)  # unfitted
