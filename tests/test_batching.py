"""Padding, truncation, stacking and length buckets."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sketchjax.batching import bucket_by_length, pad_sketch, stack_sketches
from sketchjax.formats import from_strokes, to_strokes
from sketchjax.sketch import SketchError, check_sketch, num_points


def make(n_points: int, *, time: bool = False):
    """A sketch of ``n_points >= 2`` points in strokes of 4 (the last one 2 to 5 points long)."""
    xy = np.stack([np.arange(n_points), np.arange(n_points) % 7], axis=1).astype(float)
    cuts = list(range(4, n_points - 1, 4))
    strokes = np.split(xy, cuts)
    times = [np.arange(len(s)) * 10.0 for s in strokes] if time else None
    return from_strokes(strokes, time=times)


def test_pad_sketch(three_strokes):
    padded = pad_sketch(three_strokes, 12)
    assert padded.xy.shape == (12, 2) and padded.pen.shape == (12,)
    np.testing.assert_array_equal(padded.valid, [True] * 9 + [False] * 3)
    assert not padded.xy[9:].any() and not padded.pen[9:].any()
    np.testing.assert_array_equal(padded.xy[:9], three_strokes.xy)
    check_sketch(padded)
    # Padding an already padded sketch to another length.
    np.testing.assert_array_equal(pad_sketch(padded, 10).xy[:9], three_strokes.xy)


def test_truncation_lifts_pen_on_last_point(three_strokes):
    cut = pad_sketch(three_strokes, 7)  # cuts the third stroke after its second point
    assert cut.valid.all()
    np.testing.assert_array_equal(cut.pen, [1, 1, 0, 1, 0, 1, 0])
    assert [len(s) for s in to_strokes(cut)] == [3, 2, 2]
    with pytest.raises(SketchError, match="exceed"):
        pad_sketch(three_strokes, 7, truncate=False)


def test_pad_keeps_time():
    s = make(6, time=True)
    padded = pad_sketch(s, 8)
    np.testing.assert_array_equal(padded.time, [0, 10, 20, 30, 0, 10, 0, 0])


def test_stack_sketches():
    sketches = [make(n) for n in (3, 9, 5)]
    batch = stack_sketches(sketches)
    assert batch.xy.shape == (3, 9, 2) and batch.valid.shape == (3, 9) and batch.time is None
    np.testing.assert_array_equal(num_points(batch.valid), [3, 9, 5])
    for i, s in enumerate(sketches):
        assert [a.tolist() for a in to_strokes(batch[i])] == [a.tolist() for a in to_strokes(s)]
    assert stack_sketches(sketches, max_len=4).xy.shape == (3, 4, 2)
    assert stack_sketches([make(3, time=True), make(4, time=True)]).time.shape == (2, 4)


def test_bucket_by_length():
    lengths = [3, 30, 8, 9, 16, 17, 100, 5, 2]
    sketches = [make(n) for n in lengths]
    buckets = bucket_by_length(sketches, boundaries=(8, 16, 64))
    assert [b.max_len for b in buckets] == [8, 16, 64]
    assert [b.indices.tolist() for b in buckets] == [[0, 2, 7, 8], [3, 4], [1, 5, 6]]
    for b in buckets:
        assert b.batch.xy.shape == (len(b.indices), b.max_len, 2)
    # The 100-point sketch is truncated into the last bucket.
    assert int(num_points(buckets[2].batch.valid)[2]) == 64
    with pytest.raises(SketchError, match=r"sketches\[6\]"):
        bucket_by_length(sketches, (8, 16, 64), truncate=False)


def test_bucket_batches_have_static_shapes():
    sketches = [make(n) for n in np.random.default_rng(0).integers(2, 60, size=40)]
    buckets = bucket_by_length(sketches, (16, 32, 64), batch_size=4, drop_remainder=True)
    # 40 lengths drawn from 2..59 fill all three buckets with full batches
    assert {b.batch.xy.shape for b in buckets} == {(4, 16, 2), (4, 32, 2), (4, 64, 2)}
    all_batches = bucket_by_length(sketches, (16, 32, 64), batch_size=4)
    assert sorted(np.concatenate([b.indices for b in all_batches]).tolist()) == list(range(40))

    traces = []

    @jax.jit
    def total_ink(xy, valid):
        traces.append(xy.shape)  # runs only when jit traces a new shape
        return jnp.sum(jnp.where(valid[..., None], xy, 0.0))

    for b in buckets:
        total_ink(b.batch.xy, b.batch.valid)
    assert len(buckets) > 3 and len(traces) == len({b.max_len for b in buckets}) == 3  # one compilation per bucket


def test_lengths_and_batch_sizes_must_be_whole_numbers(three_strokes):
    """Found by an audit: pad_sketch(sk, 4.0) raised a bare slice TypeError, boundaries (4.9, 8)
    were cut to 4 silently, batch_size=2.5 and a plain array in place of a Sketch gave bare errors."""
    for bad in (4.0, 4.7, None, True):
        with pytest.raises(SketchError, match="max_len must be an integer >= 1"):
            pad_sketch(three_strokes, bad)
    with pytest.raises(SketchError, match="boundaries must be integers"):
        bucket_by_length([three_strokes], (4.9, 16))
    with pytest.raises(SketchError, match="batch_size must be an integer >= 1"):
        bucket_by_length([three_strokes], (16,), batch_size=2.5)
    with pytest.raises(SketchError, match=r"sketches\[1\]: expected a Sketch, got ndarray"):
        stack_sketches([three_strokes, np.zeros((3, 2))])
    assert pad_sketch(three_strokes, np.int64(16)).xy.shape == (16, 2)  # NumPy integers are whole numbers
