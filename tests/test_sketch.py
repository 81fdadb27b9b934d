"""The Sketch pytree and its derived quantities (SPEC §1)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sketchjax.sketch import (
    Sketch,
    SketchError,
    check_points,
    check_sketch,
    num_points,
    num_strokes,
    segment_mask,
    stroke_ids,
    stroke_point_counts,
)

# Strokes of 3, 1 (a lone point) and 2 points, then 2 padding points.
PEN = np.array([1, 1, 0, 0, 1, 0, 1, 1], np.float32)
VALID = np.array([1, 1, 1, 1, 1, 1, 0, 0], bool)


def test_stroke_ids_counts_and_segments():
    np.testing.assert_array_equal(np.asarray(stroke_ids(PEN, VALID)), [0, 0, 0, 1, 2, 2, -1, -1])
    np.testing.assert_array_equal(np.asarray(stroke_point_counts(PEN, VALID, 4)), [3, 1, 2, 0])
    assert int(num_strokes(PEN, VALID)) == 3 and int(num_points(VALID)) == 6
    np.testing.assert_array_equal(np.asarray(segment_mask(PEN, VALID)), [1, 1, 0, 0, 1, 0, 0])


def test_derived_quantities_jit_and_vmap_over_batch():
    pen = np.stack([PEN, np.array([1, 0, 1, 1, 0, 0, 0, 0], np.float32)])
    valid = np.stack([VALID, np.array([1, 1, 1, 1, 1, 0, 0, 0], bool)])
    ids = jax.jit(jax.vmap(stroke_ids))(pen, valid)
    np.testing.assert_array_equal(np.asarray(ids[1]), [0, 0, 1, 1, 1, -1, -1, -1])
    np.testing.assert_array_equal(np.asarray(stroke_ids(pen, valid)), np.asarray(ids))


def test_sketch_is_a_pytree_usable_under_jit_and_indexing():
    s = Sketch(xy=jnp.ones((2, 8, 2)), pen=jnp.stack([PEN, PEN]), valid=jnp.stack([VALID, VALID]))
    total = jax.jit(lambda sk: jnp.sum(sk.xy * sk.valid[..., None]))(s)
    assert float(total) == 24.0
    assert s[1].xy.shape == (8, 2) and s.shape == (2, 8) and s.max_len == 8
    leaves = jax.tree_util.tree_leaves(s)
    assert len(leaves) == 3  # time=None adds no leaf


@pytest.mark.parametrize(
    "xy, pen, valid, message",
    [
        (np.full((4, 2), np.nan, np.float32), PEN[:4], VALID[:4], "non-finite"),
        (np.zeros((4, 2), np.float32), PEN[:4], np.zeros(4, bool), "empty"),
        (np.full((4, 2), 1e39, np.float64), PEN[:4], VALID[:4], "beyond the supported range"),  # beyond float32
        (np.zeros((4, 3), np.float32), PEN[:4], VALID[:4], "shape"),
        (np.zeros((4, 2), np.float32), PEN[:3], VALID[:4], "must match"),
        (np.zeros((4, 2), np.int32), PEN[:4], VALID[:4], "floating"),
        (np.zeros((4, 2), np.float32), PEN[:4], VALID[:4].astype(np.float32), "bool"),
        (np.zeros((4, 2), np.float32), PEN[:4], np.array([1, 0, 1, 0], bool), "prefix"),
    ],
)
def test_check_sketch_names_item_and_problem(xy, pen, valid, message):
    with pytest.raises(SketchError, match=rf"my-sketch.*{message}"):
        check_sketch(Sketch(xy=xy, pen=pen, valid=valid), "my-sketch")


def test_stroke_helpers_refuse_mismatched_shapes_instead_of_broadcasting():
    """num_strokes(pen [2, T], valid [1, T]) gave row 1 row 0's mask (found by an audit)."""
    from sketchjax.sketch import compact, num_strokes, stroke_ids, stroke_one_hot, stroke_point_counts

    pen = jnp.array([[1.0, 0.0, 1.0, 0.0], [1.0, 1.0, 0.0, 0.0]])
    valid = jnp.array([[True, True, True, True], [True, True, True, False]])
    np.testing.assert_array_equal(num_strokes(pen, valid), [2, 1])
    for call in (lambda: num_strokes(pen, valid[:1]), lambda: stroke_ids(pen, valid[0]),
                 lambda: jax.jit(num_strokes)(pen, valid[:1])):  # a static check: also under jit
        with pytest.raises(ValueError, match="pen and valid must have one shape"):
            call()
    for k in (0, -1, 2.5):
        with pytest.raises(ValueError, match="max_strokes must be an integer >= 1"):
            stroke_point_counts(pen, valid, k)
        with pytest.raises(ValueError, match="max_strokes must be an integer >= 1"):
            stroke_one_hot(pen, valid, k)
    xy = jnp.zeros((2, 4, 2))
    with pytest.raises(ValueError, match="compact: pen and valid and keep must have one shape"):
        compact(xy, pen, valid, valid[:, :-1])
    with pytest.raises(ValueError, match=r"compact: xy must be \[..., T, 2\]"):
        compact(xy[..., :1], pen, valid, valid)


def test_check_points_canvas_bound_and_any_units():
    from sketchjax.sketch import MAX_ABS_COORD, check_points

    xy = np.array([[[0.0, 0.0], [3.0 * MAX_ABS_COORD, 5.0], [1e9, 1e9]]], np.float32)
    pen = np.array([[1.0, 0.0, 0.0]], np.float32)
    valid = np.array([[True, True, False]])  # the padding point's 1e9 is never checked
    with pytest.raises(SketchError, match=r"mine: sketch at batch index 0: coordinate beyond .* at point 1"):
        check_points(xy, pen, valid, "mine")
    check_points(xy, pen, valid, "mine", any_units=True)  # a fitting function: any finite units
    check_points(xy, pen, valid, "mine", max_abs=4 * MAX_ABS_COORD)
    for bad in (np.inf, np.nan):
        with pytest.raises(SketchError, match="mine: "):
            check_points(np.where(xy == 5.0, bad, xy), pen, valid, "mine", any_units=True)


@pytest.mark.parametrize("dtype", [np.float16, jnp.bfloat16, np.int8])
def test_check_points_narrow_coordinates_without_overflow_warnings(dtype):
    # float16 points made NumPy cast the any-units bound (3.4e38) to float16: an overflow
    # RuntimeWarning on every eager call (an error under -W error)
    import warnings

    pen, valid = np.ones(3, np.float32), np.ones(3, bool)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for any_units in (True, False):
            check_points(np.ones((3, 2), dtype), pen, valid, "narrow", any_units=any_units)
    bad = np.ones((3, 2), np.float16)
    bad[1, 0] = np.inf
    with pytest.raises(ValueError, match="narrow: .*non-finite coordinate.* at point 1"):
        check_points(bad, pen, valid, "narrow", any_units=True)


def test_bfloat16_sketches_are_floating_point():
    """An audit: check_sketch used NumPy's issubdtype, for which bfloat16 is not floating, so the
    writers refused a bfloat16 sketch as "must be floating point, got bfloat16"."""
    from sketchjax.formats import from_strokes, read_svg, to_strokes, write_svg

    sketch = from_strokes([np.array([[0.0, 0.0], [10.0, 5.0], [20.0, 0.0]])])
    half = sketch.replace(xy=jnp.asarray(sketch.xy, jnp.bfloat16))
    np.testing.assert_array_equal(np.asarray(read_svg(write_svg(half)).xy), np.asarray(sketch.xy))
    assert len(to_strokes(half)) == 1
