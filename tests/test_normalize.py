"""Canvas fitting / unit coordinates (jit, vmap), RDP, resampling, Google's simplification."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sketchjax.batching import stack_sketches
from sketchjax.formats import from_strokes, iter_ndjson, to_strokes
from sketchjax.normalize import bounding_box, fit_to_canvas, quickdraw_simplify, rdp, resample, to_unit
from sketchjax.sketch import Sketch, stroke_ids


@pytest.fixture
def batch():
    """A padded batch of three sketches of different lengths and aspect ratios."""
    sketches = [
        from_strokes([[[10, 20], [110, 20], [110, 70]]]),  # 100 x 50
        from_strokes([[[0, 0], [0, 30]], [[5, 5], [5, 5]]]),  # 5 x 30
        from_strokes([[[-40, 7], [-20, 7]], [[-30, 9], [-30, 9]], [[-35, 8], [-25, 8]]]),  # 20 x 2
    ]
    return stack_sketches(sketches, max_len=8)


def test_bounding_box_ignores_padding(batch):
    np.testing.assert_array_equal(bounding_box(batch), [[10, 20, 110, 70], [0, 0, 5, 30], [-40, 7, -20, 9]])


def test_fit_to_canvas(batch):
    size, padding = 256, 0.1
    fitted = fit_to_canvas(batch, size, padding)
    box = np.asarray(bounding_box(fitted))
    extent = box[:, 2:] - box[:, :2]
    np.testing.assert_allclose(extent.max(axis=1), size * (1 - 2 * padding), rtol=1e-5)  # longer side fills
    np.testing.assert_allclose((box[:, :2] + box[:, 2:]) / 2, size / 2, atol=1e-4)  # centred
    original = np.asarray(bounding_box(batch))
    ratio = (original[:, 2:] - original[:, :2])
    np.testing.assert_allclose(extent[:, 0] * ratio[:, 1], extent[:, 1] * ratio[:, 0], rtol=1e-4)  # aspect
    assert not np.asarray(fitted.xy)[~np.asarray(batch.valid)].any()  # padding stays 0
    # Non-square canvas: height limits the wide drawing.
    wide = fit_to_canvas(batch[0], (400, 100), padding=0)
    np.testing.assert_allclose(bounding_box(wide), [100, 0, 300, 100], atol=1e-4)


def test_fit_to_canvas_degenerate_sizes():
    dot = from_strokes([[[3, 4], [3, 4]]])
    np.testing.assert_allclose(fit_to_canvas(dot, 100).xy, [[50, 50], [50, 50]])
    vertical = from_strokes([[[3, 0], [3, 10]]])  # zero width: the height decides the scale
    np.testing.assert_allclose(fit_to_canvas(vertical, 100, padding=0).xy, [[50, 0], [50, 100]])
    assert np.isfinite(np.asarray(to_unit(dot).xy)).all()
    # coordinates near float32's limit: the extent overflowed to inf and the drawing became a dot
    pen, valid = np.array([1, 1, 0], np.float32), np.ones(3, bool)
    huge = Sketch(xy=np.array([[-3e38, -3e38], [3e38, 3e38], [3e38, -3e38]], np.float32), pen=pen, valid=valid)
    small = Sketch(xy=np.array([[-3, -3], [3, 3], [3, -3]], np.float32), pen=pen, valid=valid)
    np.testing.assert_allclose(fit_to_canvas(huge, 100).xy, fit_to_canvas(small, 100).xy, rtol=1e-6)
    np.testing.assert_allclose(fit_to_canvas(small, 100).xy, [[8, 8], [92, 92], [92, 8]], rtol=1e-6)


@pytest.mark.parametrize("padding", [0.5, 0.6, -0.1, float("nan")])
def test_fit_to_canvas_refuses_padding_that_collapses_or_mirrors(padding):
    with pytest.raises(ValueError, match="padding must be in"):
        fit_to_canvas(from_strokes([[[0, 0], [10, 0], [10, 5]]]), 100, padding)


def test_fit_to_canvas_padding_may_be_traced():
    sk = from_strokes([[[0, 0], [10, 0], [10, 5]]])
    got = jax.jit(fit_to_canvas, static_argnums=1)(sk, 100, 0.1)
    np.testing.assert_allclose(np.asarray(got.xy), np.asarray(fit_to_canvas(sk, 100, 0.1).xy), atol=1e-5)


def test_to_unit(batch):
    unit = to_unit(batch)
    box = np.asarray(bounding_box(unit))
    np.testing.assert_allclose(box[:, :2], 0, atol=1e-6)
    np.testing.assert_allclose((box[:, 2:] - box[:, :2]).max(axis=1), 1, rtol=1e-6)
    np.testing.assert_allclose(box[0, 2:], [1, 0.5], rtol=1e-6)  # 100 x 50 keeps its aspect


@pytest.mark.parametrize("fill", [np.nan, np.inf, 1e30])
def test_padding_values_never_reach_gradients(batch, fill):
    """Whatever the padding slots hold, the fit's gradient on the valid points is the same
    (a NaN in padding made it NaN everywhere: 0 * NaN in the shared scale's backward pass,
    and P-SLA then reported all-zero importances)."""
    valid = np.asarray(batch.valid)[..., None]
    weights = jnp.asarray(np.random.default_rng(0).normal(size=batch.xy.shape), jnp.float32)

    def grads(xy):
        sk = batch.replace(xy=xy)
        return [jax.grad(lambda a: jnp.sum(f(sk.replace(xy=a)).xy * weights))(xy)
                for f in (to_unit, lambda s: fit_to_canvas(s, 128))]

    clean = grads(jnp.where(valid, batch.xy, 0.0))
    filled = grads(jnp.where(valid, batch.xy, fill))
    for a, b in zip(clean, filled):
        assert np.isfinite(np.asarray(b)).all()
        np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-6, atol=1e-7)


def test_jit_and_vmap_match_eager(batch):
    """The jnp functions work on a padded batch under jit, and vmap over single sketches agrees."""
    for fn in (lambda s: fit_to_canvas(s, 128), to_unit):
        eager = fn(batch).xy
        np.testing.assert_allclose(jax.jit(fn)(batch).xy, eager, rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(jax.vmap(fn)(batch).xy, eager, rtol=1e-6, atol=1e-5)
    ids = jax.jit(jax.vmap(stroke_ids))(batch.pen, batch.valid)
    np.testing.assert_array_equal(ids[2], [0, 0, 1, 1, 2, 2, -1, -1])
    np.testing.assert_array_equal(ids, stroke_ids(batch.pen, batch.valid))
    # Gradients through the fitting are finite (no division by a zero extent on any sketch).
    grad = jax.grad(lambda xy: jnp.sum(to_unit(batch.replace(xy=xy)).xy))(jnp.asarray(batch.xy))
    assert np.isfinite(np.asarray(grad)).all()


# --- RDP / resampling -------------------------------------------------------------------------


def test_rdp_basic():
    line = np.column_stack([np.arange(10.0), np.zeros(10)])
    np.testing.assert_array_equal(rdp(line, 0.5), line[[0, -1]])
    zigzag = np.array([[0, 0], [1, 3], [2, 0], [3, 0.5], [4, 0]], float)
    np.testing.assert_array_equal(rdp(zigzag, 1.0), zigzag[[0, 1, 2, 4]])
    np.testing.assert_array_equal(rdp(zigzag, 0.0), zigzag)
    loop = np.array([[0, 0], [4, 0.1], [8, 0], [4, 4], [0, 0]], float)  # coinciding end points
    np.testing.assert_array_equal(rdp(loop, 1.0), loop[[0, 2, 3, 4]])


def test_rdp_long_stroke_is_iterative():
    t = np.linspace(0, 200 * np.pi, 50_000)  # far deeper than Python's recursion limit
    spiral = np.column_stack([t * np.cos(t), t * np.sin(t)])
    out = rdp(spiral, 0.5)
    assert 2 < len(out) < len(spiral)
    np.testing.assert_array_equal(out[[0, -1]], spiral[[0, -1]])


def test_rdp_and_resample_carry_time_and_sketches():
    s = from_strokes([[[0, 0, 0], [5, 0, 10], [10, 0, 20]], [[0, 5, 30], [0, 9, 40]]])
    simplified = rdp(s, 0.5)
    assert [len(a) for a in to_strokes(simplified)] == [2, 2]
    np.testing.assert_array_equal(simplified.time, [0, 20, 30, 40])
    dense = resample(s, 2.5)
    (first, second) = to_strokes(dense, with_time=True)
    np.testing.assert_allclose(first, [[0, 0, 0], [2.5, 0, 5], [5, 0, 10], [7.5, 0, 15], [10, 0, 20]])
    np.testing.assert_allclose(second[:, :2], [[0, 5], [0, 7.5], [0, 9]])  # end point kept


def test_resample_spacing_and_edge_cases():
    arc = np.column_stack([np.cos(np.linspace(0, np.pi, 50)), np.sin(np.linspace(0, np.pi, 50))]) * 100
    out = resample(arc, 1.0)
    steps = np.hypot(*np.diff(out, axis=0).T)
    np.testing.assert_allclose(steps[:-1], 1.0, atol=2e-3)  # chord of 1 px along a gentle curve
    assert steps[-1] <= 1.0
    np.testing.assert_array_equal(out[[0, -1]], arc[[0, -1]])
    single = np.array([[4.0, 4.0]])
    np.testing.assert_array_equal(resample(single, 1.0), single)
    still = np.array([[2.0, 2.0], [2.0, 2.0], [2.0, 2.0]])
    np.testing.assert_array_equal(resample(still, 1.0), still[:2])
    strokes = resample([arc, single], 10.0)
    assert isinstance(strokes, list) and len(strokes) == 2
    # a length a rounding error above a multiple of the spacing (3 * 0.3 < 0.9 in float64) still
    # ends on the recorded end point (an audit found 1.1e-16 in place of 0)
    for pts, spacing in (([[0.9, 0.0], [0.0, 0.0]], 0.3), ([[0.0, 0.0], [0.7, 0.0], [0.7, 0.3]], 0.1)):
        pts = np.asarray(pts)
        np.testing.assert_array_equal(resample(pts, spacing)[[0, -1]], pts[[0, -1]])
    # a stroke shorter than a billionth of the spacing, or an infinite spacing, kept only the
    # end point (a one-point stroke draws nothing); with time, both ends keep their own
    tiny = np.array([[0.0, 0.0], [1e-10, 0.0]])
    np.testing.assert_array_equal(resample(tiny, 1.0), tiny)
    np.testing.assert_array_equal(resample(arc, np.inf), arc[[0, -1]])
    timed = np.column_stack([arc, np.arange(50.0)])
    np.testing.assert_array_equal(resample(timed, np.inf), timed[[0, -1]])


def test_quickdraw_simplify_synthetic():
    raw = from_strokes([[[100, 300], [150, 300.4], [200, 300], [600, 500]], [[500, 400]]], single_point="keep")
    out = quickdraw_simplify(raw)
    strokes = to_strokes(out)
    assert out.time is None
    np.testing.assert_array_equal(out.xy, np.round(out.xy))
    assert strokes[0].min() == 0 and strokes[0].max() == 255
    # 500 x 200 px -> scale 0.51; (150, 300.4) is 0.2 px off the chord and goes, the corner stays.
    np.testing.assert_array_equal(strokes[0], [[0, 0], [51, 0], [255, 102]])
    np.testing.assert_array_equal(strokes[1], [[204, 51], [204, 51]])  # a tap becomes a 2-point dot


@pytest.mark.data
def test_quickdraw_simplify_matches_google(data_file):
    """Regression guard; the full comparison is eval/quickdraw_simplify.py (94.2% identical)."""
    google = {}
    for path in sorted(data_file("quickdraw", "simplified").glob("*.ndjson"))[::8]:
        for rec in iter_ndjson(path):
            google[rec.key_id] = to_strokes(rec.sketch)
    identical = total = 0
    for path in sorted(data_file("quickdraw", "raw").glob("*.ndjson"))[::8]:
        for rec in iter_ndjson(path, single_point="keep", limit=10):
            if rec.key_id in google:
                ours = to_strokes(quickdraw_simplify(rec))
                theirs = google[rec.key_id]
                identical += len(ours) == len(theirs) and all(np.array_equal(a, b) for a, b in zip(ours, theirs))
                total += 1
    assert total >= 300
    assert identical / total > 0.88


def test_fit_and_unit_refuse_nan_and_bad_sizes_and_keep_float64():
    """Found by an audit: a NaN point made every x NaN (no error, unlike the renderers), a size of
    0, -100 or NaN collapsed or mirrored the drawing, a NaN point was dropped by rdp / turned a
    stroke into a dot in resample, and float64 points were fitted with a float32 box."""
    from sketchjax.sketch import SketchError

    sk = from_strokes([[[0, 0], [5, 0.1], [10, 0]]])
    bad = sk.replace(xy=np.array([[0, 0], [np.nan, 0], [10, 0]], np.float32))
    for fn in (lambda s: to_unit(s), lambda s: fit_to_canvas(s, 100)):
        with pytest.raises(SketchError, match="non-finite coordinate .* at point 1"):
            fn(bad)
    jax.jit(lambda s: to_unit(s))(bad)  # under jit only the shapes are checked
    for size in (0, -100, float("nan"), (100, 50, 3), float("inf")):
        with pytest.raises(ValueError, match="size must be a canvas side > 0"):
            fit_to_canvas(sk, size)
    np.testing.assert_allclose(fit_to_canvas(sk, (100, 50)).xy, fit_to_canvas(sk, np.array([100, 50])).xy)
    for fn in (lambda d: rdp(d, 1.0), lambda d: resample(d, 1.0)):
        with pytest.raises(SketchError, match="stroke 0: non-finite value .* at point 1"):
            fn([np.array([[0, 0], [np.nan, np.nan], [1, 1]])])
        with pytest.raises(SketchError, match="stroke 0: empty"):
            fn([np.zeros((0, 2))])
        with pytest.raises(SketchError, match="expected a Sketch, one stroke"):
            fn(np.zeros(3))
    with jax.enable_x64(True):
        xy64 = jnp.asarray([[1000.1, 2000.3], [1003.7, 2001.9], [1001.0, 2008.8]], jnp.float64)
        s64 = sk.replace(xy=xy64)
        u = np.asarray(to_unit(s64).xy)
        assert bounding_box(s64).dtype == jnp.float64 and u.dtype == np.float64
        assert u.min() == 0.0 and u.max() == 1.0  # exactly (a float32 box gave -5.7e-06 and 0.999994)
        ref = np.asarray(xy64)
        np.testing.assert_allclose(u, (ref - ref.min(0)) / (ref.max(0) - ref.min(0)).max(), rtol=0, atol=1e-12)
        assert fit_to_canvas(s64, 256).xy.dtype == jnp.float64


def test_resample_keeps_a_resting_pen_out_of_the_movement_times():
    """Found by an audit: of repeated points the first was kept, so a pen resting 100 ms before
    it moved spread the rest over the movement (times 0, 50, 100, ... instead of 0, 125, 150, ...)."""
    before = resample(np.array([[0, 0, 0], [0, 0, 100], [4, 0, 200]], float), 1.0)
    np.testing.assert_allclose(before[:, 2], [0, 125, 150, 175, 200])
    after = resample(np.array([[0, 0, 0], [4, 0, 100], [4, 0, 200]], float), 1.0)  # rests at the end
    np.testing.assert_allclose(after[:, 2], [0, 25, 50, 75, 200])
    np.testing.assert_allclose(after[:, :2], before[:, :2])  # positions do not depend on time
    np.testing.assert_allclose(resample(np.array([[0, 0, 0], [2, 0, 20], [2, 0, 50], [4, 0, 70]], float), 1.0)[:, 2],
                               [0, 10, 50, 60, 70])


def test_resample_of_a_sketch_equals_resample_of_its_strokes():
    """An audit: a Sketch's strokes were resampled in float32 (arc lengths accumulated there),
    the same strokes as a list in float64 — up to 0.012 px apart on real raw sketches."""
    rng = np.random.default_rng(0)
    strokes = [np.cumsum(rng.uniform(-40, 40, (400, 2)), axis=0) + 5000.0 for _ in range(3)]
    sketch = from_strokes(strokes)
    from_sketch = to_strokes(resample(sketch, 1.7))
    from_list = resample([s.astype(np.float32).astype(np.float64) for s in strokes], 1.7)
    assert [len(s) for s in from_sketch] == [len(s) for s in from_list]
    for a, b in zip(from_sketch, from_list):
        np.testing.assert_array_equal(a, b.astype(np.float32))


def test_parameters_that_are_not_numbers_are_named():
    """An audit: None or text (a config value) ended in comparison TypeErrors naming nothing."""
    from sketchjax.data import Augment
    from sketchjax.sketch import SketchError

    sketch = from_strokes([np.array([[0.0, 0.0], [10.0, 5.0], [20.0, 0.0]])])
    with pytest.raises(SketchError, match="resample spacing must be a number > 0, got None"):
        resample(sketch, None)
    with pytest.raises(SketchError, match="rdp epsilon must be a number >= 0"):
        rdp(sketch, "2")
    with pytest.raises(ValueError, match="padding must be in"):
        fit_to_canvas(sketch, 64, padding="0.08")
    with pytest.raises(ValueError, match="Augment.aspect must be a number, got None"):
        Augment(aspect=None)
    with pytest.raises(ValueError, match="Augment.scale must be \\(lo, hi\\) numbers"):
        Augment(scale=("0.5", 2.0))
    assert resample(sketch, jnp.float32(2.0)) is not None  # NumPy / JAX scalars are numbers
    assert Augment(jitter=np.float32(0.01)).active
    half = jnp.asarray(2.0, jnp.bfloat16)  # bfloat16 too (NumPy's dtype kind calls it 'V')
    assert rdp(sketch, half) is not None and resample(sketch, half) is not None
    assert fit_to_canvas(sketch, 64, padding=jnp.asarray(0.08, jnp.bfloat16)) is not None
