"""Known sketch degradations (sketchjax.degrade) and sketch.compact."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sketchjax import degrade
from sketchjax.batching import pad_sketch
from sketchjax.formats.ndjson import read_ndjson
from sketchjax.sketch import compact, num_strokes, stroke_ids

T = 64


@pytest.fixture
def padded(three_strokes):
    s = pad_sketch(three_strokes, T)
    return jnp.asarray(s.xy, jnp.float32), jnp.asarray(s.pen, jnp.float32), jnp.asarray(s.valid)


def strokes_of(xy, pen, valid):
    """Host-side list of each stroke's points (for comparing sketches stroke by stroke)."""
    xy, sid = np.asarray(xy), np.asarray(stroke_ids(pen, valid))
    return [xy[sid == k].tolist() for k in range(int(sid.max()) + 1)]


def test_compact_keeps_order_prefix_and_ends_the_cut_stroke(padded):
    xy, pen, valid = padded
    keep = jnp.arange(T) % 2 == 0
    out_xy, out_pen, out_valid = compact(xy, pen, valid, keep)
    n = int(out_valid.sum())
    assert n == 5 and bool(out_valid[:n].all()) and not bool(out_valid[n:].any())
    np.testing.assert_array_equal(np.asarray(out_xy[:n]), np.asarray(xy[:9:2]))
    assert float(out_pen[n - 1]) == 0.0 and float(jnp.abs(out_xy[n:]).sum()) == 0.0
    # removing a stroke's last point does not join it to the next stroke (found by an audit:
    # the segment (1, 0) -> (10, 10) was drawn and two strokes became one)
    two = (jnp.array([[0.0, 0], [1, 0], [2, 0], [10, 10], [11, 10]]), jnp.array([1.0, 1, 0, 1, 0]), jnp.ones(5, bool))
    c_xy, c_pen, c_valid = compact(*two, jnp.array([True, True, False, True, True]))
    np.testing.assert_array_equal(np.asarray(c_pen), [1, 0, 1, 0, 0])
    assert int(num_strokes(c_pen, c_valid)) == 2


@pytest.mark.parametrize("fraction, expect_removed", [(0.0, 0), (0.1, 1), (0.34, 1), (0.5, 2), (1.0, 2)])
def test_delete_strokes_removes_whole_strokes(padded, fraction, expect_removed):
    xy, pen, valid = padded
    original = strokes_of(xy, pen, valid)
    for seed in range(5):
        out = degrade.delete_strokes(jax.random.PRNGKey(seed), xy, pen, valid, fraction)
        kept = strokes_of(*out)
        assert len(kept) == 3 - expect_removed  # round(f * 3) half up, >= 1 when f > 0, never all three
        it = iter(original)  # kept strokes are original strokes, in drawing order
        assert all(any(k == o for o in it) for k in kept)


def test_delete_strokes_picks_different_strokes_per_key(padded):
    xy, pen, valid = padded
    picks = {tuple(map(len, strokes_of(*degrade.delete_strokes(jax.random.PRNGKey(s), xy, pen, valid, 0.34))))
             for s in range(20)}
    assert len(picks) == 3  # each of the three strokes gets removed by some key


def test_truncate_keeps_the_first_points(padded):
    xy, pen, valid = padded
    out_xy, out_pen, out_valid = degrade.truncate(xy, pen, valid, 0.5)
    assert int(out_valid.sum()) == 5  # ceil(0.5 * 9)
    np.testing.assert_array_equal(np.asarray(out_xy[:5]), np.asarray(xy[:5]))
    assert float(out_pen[4]) == 0.0
    assert int(degrade.truncate(xy, pen, valid, 1.0)[2].sum()) == 2


def test_jitter_scales_with_the_sketch(padded):
    xy, pen, valid = padded
    assert np.array_equal(np.asarray(degrade.jitter(jax.random.PRNGKey(0), xy, pen, valid, 0.0)[0]), np.asarray(xy))
    big = jnp.where(valid[:, None], xy * 10.0, 0.0)
    keys = jax.random.split(jax.random.PRNGKey(1), 400)
    d_small = jax.vmap(lambda k: degrade.jitter(k, xy, pen, valid, 0.05)[0] - xy)(keys)
    d_big = jax.vmap(lambda k: degrade.jitter(k, big, pen, valid, 0.05)[0] - big)(keys)
    longest = 30.0  # the box is 25 x 30
    np.testing.assert_allclose(float(jnp.std(d_small[:, :9])), 0.05 * longest, rtol=0.05)
    np.testing.assert_allclose(float(jnp.std(d_big[:, :9])), 0.5 * longest, rtol=0.05)
    assert float(jnp.abs(d_small[:, 9:]).max()) == 0.0  # padding untouched
    # the points keep their dtype, also under a traced float32 sigma (was: bfloat16 -> float32)
    half = xy.astype(jnp.bfloat16)
    for f in (lambda s: degrade.jitter(jax.random.PRNGKey(2), half, pen, valid, s)[0],
              jax.jit(lambda s: degrade.jitter(jax.random.PRNGKey(2), half, pen, valid, s)[0])):
        assert f(jnp.float32(0.05)).dtype == jnp.bfloat16


def test_add_scribbles_appends_strokes_inside_the_box(padded):
    xy, pen, valid = padded
    out_xy, out_pen, out_valid = degrade.add_scribbles(jax.random.PRNGKey(0), xy, pen, valid, 3, points=5)
    assert int(out_valid.sum()) == 9 + 15 and int(num_strokes(out_pen, out_valid)) == 6
    np.testing.assert_array_equal(np.asarray(out_xy[:9]), np.asarray(xy[:9]))
    new = np.asarray(out_xy[9:24])
    assert (new >= [0, 0]).all() and (new <= [25, 30]).all()
    assert len(np.unique(new, axis=0)) > 10  # a walk, not one point
    # no room: the scribbles are cut at T, the sketch stays valid
    short = [a[:12] for a in padded]
    cut = degrade.add_scribbles(jax.random.PRNGKey(0), *short, 3, points=5)
    assert bool(cut[2].all()) and int(num_strokes(cut[1], cut[2])) == 4
    assert float(cut[1][-1]) == 0.0  # the cut scribble ends with the pen lifted, like any sketch


def test_scribble_sketch():
    xy, pen, valid = degrade.scribble_sketch(jax.random.PRNGKey(0), 40, 4, points=8)
    assert int(valid.sum()) == 32 and int(num_strokes(pen, valid)) == 4
    assert float(xy.min()) >= 0.0 and float(xy.max()) <= 255.0
    with pytest.raises(ValueError, match="do not fit"):
        degrade.scribble_sketch(jax.random.PRNGKey(0), 20, 4, points=8)


@pytest.mark.parametrize("kind", sorted(degrade.DEGRADATIONS))
def test_every_degradation_jits_and_vmaps_on_real_sketches(kind, data_file):
    records = read_ndjson(data_file("quickdraw", "simplified", "cat.ndjson"), limit=8)
    batch = [pad_sketch(r.sketch, 128) for r in records]
    xy = jnp.stack([jnp.asarray(s.xy, jnp.float32) for s in batch])
    pen = jnp.stack([jnp.asarray(s.pen, jnp.float32) for s in batch])
    valid = jnp.stack([jnp.asarray(s.valid) for s in batch])
    keys = jax.random.split(jax.random.PRNGKey(0), len(batch))
    for severity in degrade.DEGRADATIONS[kind]:
        fn = jax.jit(jax.vmap(lambda k, a, b, c: degrade.degrade(kind, severity, k, a, b, c)))
        out_xy, out_pen, out_valid = fn(keys, xy, pen, valid)
        assert bool(jnp.isfinite(out_xy).all())
        n_in, n_out = valid.sum(-1), out_valid.sum(-1)
        assert bool((out_valid == (jnp.arange(128)[None, :] < n_out[:, None])).all())  # prefix mask
        if kind == "scribbles":
            assert bool((num_strokes(out_pen, out_valid) >= num_strokes(pen, valid)).all())
        elif kind != "jitter":
            assert bool((n_out <= n_in).all()) and bool((n_out < n_in).any())
    with pytest.raises(ValueError, match="unknown degradation"):
        degrade.degrade("blur", 1.0, keys[0], xy[0], pen[0], valid[0])


def test_degradations_check_one_sketch_and_their_severity(padded):
    xy, pen, valid = padded
    batch = [a[None] for a in padded]
    key = jax.random.PRNGKey(0)
    for name, call in (("jitter", lambda *s: degrade.jitter(key, *s, 0.02)),
                       ("delete_strokes", lambda *s: degrade.delete_strokes(key, *s, 0.5)),
                       ("truncate", lambda *s: degrade.truncate(*s, 0.5))):
        with pytest.raises(ValueError, match=f"{name}: degrades one sketch"):
            call(*batch)  # a batch without vmap counted points across sketches
        jax.vmap(call)(*batch)  # vmapped: fine
    with pytest.raises(ValueError, match=r"truncate: fraction must be a fraction in \[0, 1\]"):
        degrade.truncate(xy, pen, valid, float("nan"))
    with pytest.raises(ValueError, match="jitter: sigma must be a finite number >= 0"):
        degrade.jitter(key, xy, pen, valid, -0.1)
    same = degrade.add_scribbles(key, xy, pen, valid, 0)
    assert all((np.asarray(a) == np.asarray(b)).all() for a, b in zip(same, padded))
    with pytest.raises(ValueError, match="add_scribbles: points must be a whole number >= 2"):
        degrade.add_scribbles(key, xy, pen, valid, 2, points=1)


def test_degradations_refuse_bad_sketches_and_severities_found_by_an_audit(padded):
    """Each was accepted with a wrong result or a bare JAX error: a gap in `valid` (scribbles
    wrote over a real point), one NaN point (jitter made every point NaN), fractions above 1,
    an infinite sigma, fractional or traced scribble counts, an empty sketch, integer points."""
    xy, pen, valid = padded
    key = jax.random.PRNGKey(0)
    n = int(valid.sum())
    gap = valid.at[2].set(False)
    nan = xy.at[1, 0].set(jnp.nan)
    empty = jnp.zeros_like(valid)
    for name, call in (("jitter", lambda a, b, c: degrade.jitter(key, a, b, c, 0.02)),
                       ("delete_strokes", lambda a, b, c: degrade.delete_strokes(key, a, b, c, 0.5)),
                       ("truncate", lambda a, b, c: degrade.truncate(a, b, c, 0.5)),
                       ("add_scribbles", lambda a, b, c: degrade.add_scribbles(key, a, b, c, 2))):
        with pytest.raises(ValueError, match=f"{name}: valid must be a prefix mask"):
            call(xy, pen, gap)
        with pytest.raises(ValueError, match=f"{name}: non-finite coordinate .* at point 1"):
            call(nan, pen, valid)
        with pytest.raises(ValueError, match=f"{name}: empty sketch"):
            call(xy, pen, empty)
    jax.jit(lambda a, b, c: degrade.truncate(a, b, c, 0.5))(nan, pen, valid)  # under jit only shapes are checked
    for call, match in ((lambda: degrade.truncate(xy, pen, valid, 1.5), r"fraction must be a fraction in \[0, 1\]"),
                        (lambda: degrade.delete_strokes(key, xy, pen, valid, 3.0), r"fraction must be a fraction"),
                        (lambda: degrade.jitter(key, xy, pen, valid, float("inf")), "sigma must be a finite number"),
                        (lambda: degrade.add_scribbles(key, xy, pen, valid, 2.5), "n must be a whole number >= 0"),
                        (lambda: degrade.add_scribbles(key, xy, pen, valid, float("nan")), "n must be a whole number"),
                        (lambda: degrade.degrade("scribbles", 2.7, key, xy, pen, valid), r"^degrade\(.scribbles., 2\.7\): add_scribbles: n \(the scribbles severity, a count\) must be"),
                        (lambda: degrade.degrade("jitter", -0.1, key, xy, pen, valid),
                         r"^degrade\('jitter', -0\.1\): jitter: sigma must be"),  # names the user's call
                        (lambda: degrade.degrade("truncate", 0.5, key, nan, pen, valid),
                         r"^degrade\('truncate', 0\.5\): truncate: non-finite coordinate"),
                        (lambda: jax.jit(lambda k: degrade.add_scribbles(key, xy, pen, valid, k))(2), "static integer"),
                        (lambda: degrade.scribble_sketch(key, 32, 0), "scribble_sketch: n must be a whole number >= 1"),
                        (lambda: degrade.scribble_sketch(key, 32, 2, points=1), "points must be a whole number >= 2"),
                        (lambda: degrade.scribble_sketch(key, 32, 2, lo=(5.0, 5.0), hi=(1.0, 9.0)), "lo < hi")):
        with pytest.raises(ValueError, match=match):
            call()
    # traced bounds, also inside a tuple, are the caller's (no host-side check)
    box = jax.jit(lambda a: degrade.scribble_sketch(key, 32, 2, lo=(a, a), hi=(a + 9.0, a + 9.0))[0])(1.0)
    assert float(box.max()) <= 10.0
    # any coordinate frame: far beyond the renderers' +-8192 pixels is still a sketch to degrade
    far = degrade.jitter(key, xy * 1000.0, pen, valid, 0.02)[0]
    assert np.isfinite(np.asarray(far)).all()
    # integer pixel coordinates are jittered in float32 (jax.random.normal refused the int dtype)
    moved, _, _ = degrade.jitter(key, jnp.round(xy).astype(jnp.int32), pen, valid, 0.02)
    assert moved.dtype == jnp.float32 and not np.array_equal(np.asarray(moved)[:n], np.round(np.asarray(xy))[:n])
    # truncate cuts floor(fraction * n) points: ceil((1 - 0.4) * 25) in float32 kept 16 of 25
    for t_n, fraction in ((25, 0.4), (100, 0.7), (10, 0.25), (10, 0.1999), (100, 0.01999)):
        pts = jnp.zeros((t_n + 4, 2)).at[:t_n, 0].set(jnp.arange(t_n, dtype=jnp.float32))
        pn = jnp.zeros(t_n + 4).at[: t_n - 1].set(1.0)
        _, _, kept = degrade.truncate(pts, pn, jnp.arange(t_n + 4) < t_n, fraction)
        assert int(kept.sum()) == t_n - int(np.floor(fraction * t_n + 1e-9)), (t_n, fraction)


def test_every_keyed_function_names_a_bad_key(padded):
    """A seed, a float array or a batch of keys where one PRNG key belongs gave JAX's TypeError
    about "key data" (or, for a batch of raw keys, a silent misuse); now a ValueError naming the
    function.  Typed (jax.random.key) and raw (PRNGKey) keys both work, also under vmap."""
    from sketchjax.apps.cleansing import inject_label_noise
    from sketchjax.apps.iqa import degraded_sketch_ratings
    from sketchjax.apps.pseudo_label import gaussian_mixture, kmeans
    from sketchjax.apps.pseudo_label import PseudoLabelConfig, train_pseudo_label_gacl
    from sketchjax.attribution import random_attribution, smoothgrad
    from sketchjax.data.augment import Augment, augment_batch
    from sketchjax.models.sketch_rnn import SketchRNNConfig, decode_relaxed, init_sketch_rnn, sample
    from sketchjax.render import distance_raster

    xy, pen, valid = padded
    cfg = SketchRNNConfig(enc_hidden=8, dec_hidden=8, num_mixtures=2, z_size=4, max_len=6, conditional=False)
    params = init_sketch_rnn(cfg, jax.random.key(0))
    images = jnp.ones((1, 2, 8, 8))
    calls = {
        "jitter": lambda k: degrade.jitter(k, xy, pen, valid, 0.02),
        "delete_strokes": lambda k: degrade.delete_strokes(k, xy, pen, valid, 0.5),
        "add_scribbles": lambda k: degrade.add_scribbles(k, xy, pen, valid, 2),
        "scribble_sketch": lambda k: degrade.scribble_sketch(k, 32, 2),
        "scribble_strokes": lambda k: degrade.scribble_strokes(k, jnp.zeros(2), jnp.ones(2), 2),
        "random_attribution": lambda k: random_attribution(k, images),
        "sample": lambda k: sample(params, cfg, k, num=1, max_len=4),
        "degraded_sketch_ratings": lambda k: degraded_sketch_ratings(k, xy[None], pen[None], valid[None]),
        "inject_label_noise": lambda k: inject_label_noise(k, jnp.arange(4) % 2, 0.5, 2),
        "gaussian_mixture": lambda k: gaussian_mixture(k, 3),
        "kmeans": lambda k: kmeans(k, jnp.arange(8.0).reshape(4, 2), 2, iters=2),
        "smoothgrad": lambda k: smoothgrad(lambda im, aux: jnp.sum(im, axis=(-1, -2)),
                                           lambda a, b, c: distance_raster(a, b, c, 16),
                                           xy[None] / 4.0, pen[None], valid[None], key=k, samples=1, max_strokes=4),
        "decode_relaxed": lambda k: decode_relaxed(params, cfg, k, None, num=1, max_len=3),
        "init_sketch_rnn": lambda k: init_sketch_rnn(cfg, k),
        "train_pseudo_label_gacl": lambda k: train_pseudo_label_gacl(k, jnp.ones((4, 2)), PseudoLabelConfig(k=2, epochs=1)),
    }
    bad = (0, jnp.zeros(2, jnp.float32), jnp.arange(3, dtype=jnp.uint32), jax.random.split(jax.random.key(0), 2),
           jax.random.split(jax.random.PRNGKey(0), 2))
    for name, call in calls.items():
        for key in bad:
            with pytest.raises(ValueError, match=rf"{name}: (key|rng) must be one PRNG key"):
                call(key)
    # good keys pass the same check (the functions' own tests run them with keys; eager runs of
    # them all cost ~25 s here, so only cheap ones, with a typed and a raw key)
    for name in ("jitter", "scribble_strokes", "random_attribution", "init_sketch_rnn"):
        for key in (jax.random.key(3), jax.random.PRNGKey(3)):
            calls[name](key)
    # a batch of keys, one per sketch, where the batch is the batch
    batch = (xy[None].repeat(3, 0), pen[None].repeat(3, 0), valid[None].repeat(3, 0))
    for keys in (jax.random.split(jax.random.key(0), 3), jax.random.split(jax.random.PRNGKey(0), 3)):
        augment_batch(keys, *batch, Augment())
    for keys in (jax.random.key(0), jax.random.split(jax.random.key(0), 2), jnp.zeros((3, 2), jnp.float32)):
        with pytest.raises(ValueError, match=r"augment_batch: keys must be 3 PRNG keys \(jax.random.split\(key, 3\)\)"):
            augment_batch(keys, *batch, Augment())
    keys = jax.random.split(jax.random.key(1), 3)
    out = jax.vmap(lambda k: degrade.jitter(k, xy, pen, valid, 0.02)[0])(keys)
    assert out.shape == (3,) + xy.shape


def test_kmeans_with_fewer_distinct_points_than_k_is_well_defined():
    """An audit: once every point sat on a chosen centre the k-means++ probabilities were 0/0,
    and JAX's choice then always returned point 0; now such a pick is uniform over the points."""
    from sketchjax.apps.pseudo_label import kmeans

    x = jnp.array([[0.0, 0.0]] * 3 + [[5.0, 5.0]] * 3)
    later = []
    for seed in range(6):
        labels, centres = kmeans(jax.random.key(seed), x, 4, iters=0)  # iters=0: the k-means++ picks
        assert np.isfinite(np.asarray(centres)).all()
        later += [tuple(c) for c in np.asarray(centres)[2:].tolist()]
        labels = np.asarray(labels)
        assert len(set(labels[:3])) == 1 and len(set(labels[3:])) == 1 and labels[0] != labels[3]
    assert {(0.0, 0.0), (5.0, 5.0)} <= set(later)  # the old code picked only (0, 0) here


def test_degradations_name_a_parameter_that_is_not_a_number():
    """An audit: '0.05' or None read from a config was a NumPy ufunc / comparison TypeError naming
    nothing, and scribble_sketch's step=NaN gave NaN points (add_scribbles checks it)."""
    xy = jnp.array([[0.0, 0.0], [10.0, 5.0], [20.0, 0.0]])
    pen, valid = jnp.array([1.0, 1.0, 0.0]), jnp.ones(3, bool)
    key = jax.random.PRNGKey(0)
    with pytest.raises(ValueError, match="jitter: sigma must be a finite number >= 0, got '0.05'"):
        degrade.jitter(key, xy, pen, valid, "0.05")
    with pytest.raises(ValueError, match="truncate: fraction must be a fraction in \\[0, 1\\], got None"):
        degrade.truncate(xy, pen, valid, None)
    for step in (np.nan, np.inf, -1.0, "0.1"):
        with pytest.raises(ValueError, match="scribble_sketch: step must be a finite number >= 0"):
            degrade.scribble_sketch(key, 16, 2, points=4, step=step)
    out, _, _ = degrade.scribble_sketch(key, 16, 2, points=4, step=0.2)
    assert bool(jnp.isfinite(out).all())
    for half in (jnp.asarray(0.05, jnp.bfloat16), np.float32(0.05)):  # eager as under jit
        degrade.jitter(key, xy, pen, valid, half)
        degrade.truncate(xy, pen, valid, half)
    with pytest.raises(ValueError, match="sigma must be a finite number >= 0, got True"):
        degrade.jitter(key, xy, pen, valid, True)
