"""SLA / P-SLA, the baselines, the faithfulness metrics and the figures (issue 4, SPEC §3)."""
from __future__ import annotations

import itertools
import math
from functools import partial

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sketchjax.attribution import (
    class_score,
    curve_auc,
    deletion_curve,
    drawing_order_correlation,
    integrated_gradients,
    mean_ci,
    occlusion,
    point_to_stroke,
    present_strokes,
    psla,
    random_attribution,
    rank_correlation,
    sla_sketch,
    sla,
    smoothgrad,
    stroke_order,
)
from sketchjax.batching import stack_sketches
from sketchjax.formats import from_strokes, read_svg, to_strokes
from sketchjax.render import RasterRecipe, compose, raster
from sketchjax.sketch import Sketch, num_strokes, stroke_ids

SIZE = 32
K = 5

# Canvas-pixel sketches (recipes with fit=False): strokes that cross (sketch 0) and strokes
# far apart (sketch 1, no pixel inked twice at width 1).
CROSSING = [[[2, 2], [28, 28]], [[2, 28], [28, 2]], [[16, 3], [16, 10], [22, 10]], [[5, 20]]]
APART = [[[2, 2], [12, 2]], [[2, 8], [2, 20], [10, 20]], [[20, 6], [28, 14]], [[18, 26], [29, 26]]]


def _batch(*sketches):
    return stack_sketches([from_strokes([np.array(s, np.float32) for s in sk], single_point="keep") for sk in sketches], 12)


@pytest.fixture(scope="module")
def batch():
    return _batch(CROSSING, APART)


def _recipe(**kw):
    return RasterRecipe(out_size=SIZE, canvas=SIZE, width=1, fit=False, **kw)


def _linear_score(images, weights):
    return jnp.sum(images * weights, axis=(-2, -1))


class _TinyCNN(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = nn.Conv(4, (5, 5), strides=2)(x[..., None])
        x = jnp.tanh(x)
        x = nn.Conv(4, (3, 3), strides=2)(x)
        x = jnp.tanh(x).reshape(x.shape[0], -1)
        return nn.Dense(3)(x)


@pytest.fixture(scope="module")
def cnn():
    model = _TinyCNN()
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((1, SIZE, SIZE)))
    return partial(model.apply, variables)


def _strokes_of(b):
    return _recipe().stroke_rasters(b.xy, b.pen, b.valid, K)


def test_class_score_selects_each_rows_class():
    logits = jnp.array([[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]])
    labels = jnp.array([1, 2])
    apply = lambda images: logits  # noqa: E731
    np.testing.assert_allclose(class_score(apply)(None, labels), [2.0, 3.0])
    np.testing.assert_allclose(class_score(apply, "log_prob")(None, labels),
                               jax.nn.log_softmax(logits)[jnp.arange(2), labels], rtol=1e-6)
    np.testing.assert_allclose(class_score(apply, "prob")(None, labels), jax.nn.softmax(logits)[jnp.arange(2), labels],
                               rtol=1e-6)
    with pytest.raises(ValueError, match="unknown score kind 'margin'"):
        class_score(apply, "margin")


def test_sla_is_the_pixel_gradient_over_singly_inked_pixels(batch):
    s = _strokes_of(batch)
    w = jax.random.normal(jax.random.PRNGKey(1), (2, SIZE, SIZE))
    out = sla(_linear_score, s, w)
    count = jnp.sum(s, axis=1)
    expected = jnp.einsum("bhw,bkhw->bk", w * (count <= 1), s)
    np.testing.assert_allclose(out.strokes, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out.score, _linear_score(raster(batch.xy, batch.pen, batch.valid, SIZE), w), rtol=1e-5)
    # the crossing sketch has a pixel inked twice, which gives no gradient to either stroke
    assert float(jnp.max(count[0])) == 2.0
    # the single-point stroke (index 3 of sketch 0) and the empty slot 4 draw nothing: exactly 0
    assert not bool(present_strokes(s)[0, 3]) and float(out.strokes[0, 3]) == 0.0 == float(out.strokes[0, 4])


def test_sla_equals_exact_occlusion_for_a_linear_score_without_overlaps(batch):
    s = _strokes_of(batch)[1:]  # the sketch whose strokes do not touch
    w = jax.random.normal(jax.random.PRNGKey(2), (1, SIZE, SIZE))
    np.testing.assert_allclose(sla(_linear_score, s, w).strokes, occlusion(_linear_score, s, w).strokes, atol=1e-4)
    # ... and integrated gradients too: the path never reaches the clamp
    np.testing.assert_allclose(integrated_gradients(_linear_score, s, w, steps=4).strokes,
                               sla(_linear_score, s, w).strokes, atol=1e-4)


def test_occlusion_is_the_score_of_the_sketch_without_each_stroke(batch, cnn):
    recipe = _recipe()
    score = class_score(cnn)
    labels = jnp.array([0, 2])
    out = occlusion(score, _strokes_of(batch), labels, finish=recipe.finish)
    for b, strokes in enumerate([CROSSING, APART]):
        full = float(score(recipe.raster(batch.xy[b:b + 1], batch.pen[b:b + 1], batch.valid[b:b + 1]), labels[b:b + 1])[0])
        np.testing.assert_allclose(out.score[b], full, rtol=1e-5)
        for k in range(len(strokes)):
            rest = [s for j, s in enumerate(strokes) if j != k]
            r = _batch(rest)
            without = float(score(recipe.raster(r.xy, r.pen, r.valid), labels[b:b + 1])[0])
            np.testing.assert_allclose(out.strokes[b, k], full - without, rtol=1e-4, atol=1e-5,
                                       err_msg=f"sketch {b} stroke {k}")


def test_integrated_gradients_is_complete(batch, cnn):
    s = _strokes_of(batch)
    score = class_score(cnn)
    labels = jnp.array([1, 1])
    ig = integrated_gradients(score, s, labels, steps=64)
    empty = score(jnp.zeros((2, SIZE, SIZE)), labels)
    np.testing.assert_allclose(jnp.sum(ig.strokes, -1), ig.score - empty, rtol=2e-3, atol=2e-4)
    # a crude path is measurably less complete: the test can tell the rule from a single gradient
    gap_sla = jnp.abs(jnp.sum(sla(score, s, labels).strokes, -1) - (ig.score - empty))
    assert float(jnp.max(gap_sla)) > 10 * float(jnp.max(jnp.abs(jnp.sum(ig.strokes, -1) - (ig.score - empty))))


def test_integer_and_narrow_inputs_are_attributed_in_a_floating_type(batch, cnn):
    """Found by an audit: uint8 / bool stroke images crashed sla and IG inside jax.grad / the
    scan (bfloat16 too: its carry met float32 gradients), int32 points crashed psla; and a pen
    state outside [0, 1] was accepted (a pen of 2 made the distance renderer ink everything)."""
    s = _strokes_of(batch)
    score = class_score(cnn)
    labels = jnp.array([1, 0])
    ref_sla = sla(score, s, labels).strokes
    ref_ig = integrated_gradients(score, s, labels, steps=4).strokes
    for images in (s.astype(jnp.uint8), s > 0):
        np.testing.assert_allclose(sla(score, images, labels).strokes, ref_sla, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(integrated_gradients(score, images, labels, steps=4).strokes, ref_ig, rtol=1e-5, atol=1e-6)
    ig16 = integrated_gradients(score, s.astype(jnp.bfloat16), labels, steps=4).strokes
    np.testing.assert_allclose(ig16, ref_ig, rtol=0.05, atol=0.05)
    recipe = _recipe()
    whole = batch.replace(xy=np.round(batch.xy))
    ref = psla(score, recipe.distance, whole.xy, whole.pen, whole.valid, labels, max_strokes=K)
    out = psla(score, recipe.distance, whole.xy.astype(jnp.int32), whole.pen, whole.valid, labels, max_strokes=K)
    np.testing.assert_allclose(out.strokes, ref.strokes, rtol=1e-5, atol=1e-6)
    # bfloat16 points: psla / smoothgrad returned bfloat16 attributions (and smoothgrad drew and
    # summed its noise in bfloat16); now those of the same coordinates in float32
    narrow = batch.xy.astype(jnp.bfloat16)
    wide = narrow.astype(jnp.float32)
    ref = psla(score, recipe.distance, wide, batch.pen, batch.valid, labels, max_strokes=K)
    out = psla(score, recipe.distance, narrow, batch.pen, batch.valid, labels, max_strokes=K)
    key = jax.random.PRNGKey(0)
    sg = [smoothgrad(score, recipe.distance, xy, batch.pen, batch.valid, labels, key=key, samples=2, max_strokes=K)
          for xy in (wide, narrow)]
    for got, want in ((out, ref), (sg[1], sg[0])):
        assert all(a.dtype == jnp.float32 for a in got)
        chex.assert_trees_all_close(got, want, rtol=1e-5, atol=1e-6)
    for bad in (2.0, -1.0):
        with pytest.raises(ValueError, match=r"psla: sketch at batch index 1: pen state outside \[0, 1\] at point 3"):
            psla(score, recipe.distance, batch.xy, jnp.asarray(batch.pen).at[1, 3].set(bad), batch.valid, labels, max_strokes=K)


def test_stroke_methods_batch_like_single_sketches_and_compile_once(batch, cnn):
    s = _strokes_of(batch)
    score = class_score(cnn)
    labels = jnp.array([2, 0])
    f = jax.jit(lambda s, y: (sla(score, s, y).strokes, occlusion(score, s, y).strokes))
    a_sla, a_occ = f(s, labels)
    for b in range(2):
        one = f(s[b:b + 1], labels[b:b + 1])
        np.testing.assert_allclose(one[0][0], a_sla[b], rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(one[1][0], a_occ[b], rtol=1e-4, atol=1e-6)
    f(s[::-1], labels[::-1])
    assert f._cache_size() == 2  # batch 2 and batch 1: one compilation per shape


def test_random_attribution_is_keyed_and_zero_on_absent_strokes(batch):
    s = _strokes_of(batch)
    a = random_attribution(jax.random.PRNGKey(0), s)
    present = present_strokes(s)
    assert bool(jnp.all(jnp.where(present, (a >= 0) & (a < 1), a == 0)))
    chex.assert_trees_all_equal(a, random_attribution(jax.random.PRNGKey(0), s))
    assert not np.allclose(a, random_attribution(jax.random.PRNGKey(1), s))


def _jittered(b):
    # points off the integer grid: no exact ties between segments in the distance field
    noise = jax.random.uniform(jax.random.PRNGKey(3), b.xy.shape, minval=-0.2, maxval=0.2)
    return b.replace(xy=jnp.where(b.valid[..., None], b.xy + noise, 0.0))


def test_psla_is_the_gradient_through_the_distance_raster(batch, cnn):
    b = _jittered(batch)
    recipe = _recipe(distance_width=1.5)
    score = class_score(cnn)
    labels = jnp.array([0, 1])
    out = psla(score, recipe.distance, b.xy, b.pen, b.valid, labels, max_strokes=K)
    f = lambda xy, pen: jnp.sum(score(recipe.distance(xy, pen, b.valid), labels))  # noqa: E731
    gx, gp = jax.grad(f, argnums=(0, 1))(b.xy, b.pen)
    v = b.valid[..., None]
    np.testing.assert_allclose(out.xy, jnp.where(v, gx, 0.0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out.pen, jnp.where(b.valid, gp, 0.0), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(out.points, jnp.linalg.norm(out.xy, axis=-1), rtol=1e-6)
    assert float(jnp.sum(jnp.abs(out.points[~b.valid]))) == 0.0
    # finite differences of one coordinate that matters
    bi, t = 0, 1
    h = 1e-2
    e = jnp.zeros_like(b.xy).at[bi, t, 0].set(h)
    fd = (f(b.xy + e, b.pen) - f(b.xy - e, b.pen)) / (2 * h)
    np.testing.assert_allclose(out.xy[bi, t, 0], fd, rtol=2e-2, atol=1e-4)
    # stroke sums by hand
    ids = np.asarray(stroke_ids(b.pen, b.valid))
    for bi in range(2):
        for k in range(K):
            np.testing.assert_allclose(out.strokes[bi, k], np.sum(np.asarray(out.points[bi])[ids[bi] == k]), rtol=1e-5)


def test_attributions_of_closed_over_arrays_under_an_outer_jit(batch):
    """Arrays captured by a jitted function (constants, not arguments) are concrete: the input
    checks run on them without staging into the outer trace (they raised
    TracerArrayConversionError), and a bad one is still named."""
    strokes = _strokes_of(batch)
    key = jax.random.PRNGKey(0)
    pixel_weights = jnp.linspace(-1.0, 2.0, SIZE * SIZE).reshape(1, SIZE, SIZE)
    score = lambda im, a: jnp.sum(jnp.tanh(im * pixel_weights), axis=(-2, -1))  # noqa: E731
    eager = {
        "sla": sla(score, strokes).strokes,
        "occlusion": occlusion(score, strokes).strokes,
        "ig": integrated_gradients(score, strokes, steps=4).strokes,
        "random": random_attribution(key, strokes),
    }
    eager["deletion"] = deletion_curve(score, strokes, eager["sla"])
    jitted = jax.jit(lambda: {
        "sla": sla(score, strokes).strokes,
        "occlusion": occlusion(score, strokes).strokes,
        "ig": integrated_gradients(score, strokes, steps=4).strokes,
        "random": random_attribution(key, strokes),
        "deletion": deletion_curve(score, strokes, eager["sla"]),
    })()
    for name, value in eager.items():
        np.testing.assert_allclose(jitted[name], value, rtol=1e-6, err_msg=name)
    # a parameter gradient of an attribution, the images closed over
    g = jax.jit(jax.grad(lambda c: sla(lambda im, a: c * score(im, a), strokes).strokes.sum()))(2.0)
    np.testing.assert_allclose(g, float(eager["sla"].sum()), rtol=1e-6)
    bad = strokes.at[1, 2, 0, 0].set(jnp.nan)
    with pytest.raises(ValueError, match=r"sla: stroke_images at batch index 1: non-finite"):
        jax.jit(lambda: sla(score, bad).strokes)()


def test_gradient_of_psla_is_finite_where_a_point_has_no_attribution():
    """The l2 point norm at a zero gradient (a point the score ignores): its derivative is 0,
    not inf x 0 = NaN, so grad of a P-SLA attribution w.r.t. model parameters is finite and
    matches finite differences."""
    sk = _batch([[[2, 2], [6, 10], [10, 3]], [[25, 25], [28, 20]]])
    recipe = _recipe()

    left = (jnp.arange(SIZE) < 16).astype(jnp.float32)[None, None, :]  # weight 0 on the right half

    def score(c):  # blind to the right half: the right stroke's points get exactly 0
        return lambda im, a: jnp.sum(jnp.tanh(c * im * left), axis=(-2, -1))

    for norm in ("l2", "l1"):
        f = lambda c: psla(score(c), recipe.distance, sk.xy, sk.pen, sk.valid, max_strokes=3, norm=norm).strokes.sum()  # noqa: E731
        out = psla(score(1.5), recipe.distance, sk.xy, sk.pen, sk.valid, max_strokes=3, norm=norm)
        assert float(out.strokes[0, 1]) == 0.0  # the ignored stroke
        g = jax.grad(f)(1.5)
        fd = (f(1.5 + 1e-2) - f(1.5 - 1e-2)) / 2e-2
        assert np.isfinite(g), norm
        np.testing.assert_allclose(g, fd, rtol=1e-3, err_msg=norm)


def test_point_to_stroke_sum_and_mean(three_strokes):
    sk = stack_sketches([three_strokes], 12)
    values = jnp.arange(12, dtype=jnp.float32)[None]
    np.testing.assert_allclose(point_to_stroke(values, sk.pen, sk.valid, 4), [[0 + 1 + 2, 3 + 4, 5 + 6 + 7 + 8, 0]])
    np.testing.assert_allclose(point_to_stroke(values, sk.pen, sk.valid, 4, "mean"), [[1.0, 3.5, 6.5, 0]])
    with pytest.raises(ValueError, match="unknown reduce 'max'"):
        point_to_stroke(values, sk.pen, sk.valid, 4, "max")


def test_smoothgrad_without_noise_is_psla_and_with_noise_is_keyed(batch, cnn):
    b = _jittered(batch)
    recipe = _recipe(distance_width=1.5)
    score = class_score(cnn)
    labels = jnp.array([0, 1])
    ref = psla(score, recipe.distance, b.xy, b.pen, b.valid, labels, max_strokes=K)
    run = partial(smoothgrad, score, recipe.distance, b.xy, b.pen, b.valid, labels, max_strokes=K, samples=4)
    np.testing.assert_allclose(run(key=jax.random.PRNGKey(0), sigma=0.0).xy, ref.xy, rtol=1e-5, atol=1e-8)
    noisy = run(key=jax.random.PRNGKey(0), sigma=0.05)
    chex.assert_trees_all_close(noisy, run(key=jax.random.PRNGKey(0), sigma=0.05))
    assert not np.allclose(noisy.xy, ref.xy, atol=1e-6)
    np.testing.assert_allclose(noisy.score, ref.score, rtol=1e-6)


def test_integrated_gradients_and_smoothgrad_compile_once_when_called_eagerly(batch, cnn):
    """Both scan over a closure; called eagerly they compiled on every call (seconds each)."""
    from sketchjax.attribution import core

    b = _jittered(batch)
    recipe = _recipe(distance_width=1.5)
    score = class_score(cnn)
    labels = jnp.array([0, 1])
    strokes = recipe.stroke_rasters(b.xy, b.pen, b.valid, K)
    sizes = []
    for i in range(3):
        ig = integrated_gradients(score, strokes, labels, steps=3)
        sg = smoothgrad(score, recipe.distance, b.xy, b.pen, b.valid, labels, key=jax.random.PRNGKey(i),
                        samples=2, sigma=0.01 * (i + 1), max_strokes=K)
        sizes.append(core._integrated_gradients_jit._cache_size() + core._smoothgrad_jit._cache_size())
    assert sizes[0] >= 2 and sizes == sizes[:1] * 3  # nothing new after the first call
    assert sg.xy.shape == b.xy.shape and bool(jnp.isfinite(sg.xy).all())
    # NumPy integers for the static sizes are fine (they are shapes inside the compiled body)
    again = smoothgrad(score, recipe.distance, b.xy, b.pen, b.valid, labels, key=jax.random.PRNGKey(2),
                       samples=np.int64(2), sigma=0.03, max_strokes=np.int32(K))
    np.testing.assert_array_equal(again.xy, sg.xy)
    # the compiled bodies are the plain ones
    with jax.disable_jit():
        np.testing.assert_allclose(integrated_gradients(score, strokes, labels, steps=3).strokes, ig.strokes, rtol=1e-4, atol=1e-6)


def test_smoothgrad_is_the_mean_of_psla_over_the_documented_jitter(batch, cnn):
    b = _jittered(batch)
    # bounding boxes of different sizes and shapes: sketch 0 is wider (26 x 13), sketch 1 taller
    # (about 11 x 22), so the noise scale is per sketch and from the longer side
    stretch, shift = jnp.array([[[1.0, 0.5]], [[0.4, 0.9]]]), jnp.array([[[0.0, 4.0]], [[6.0, 1.0]]])
    xy = jnp.where(b.valid[..., None], b.xy * stretch + shift, 0.0)
    recipe = _recipe(distance_width=1.5)
    score = class_score(cnn)
    labels = jnp.array([0, 1])
    key, samples, sigma = jax.random.PRNGKey(7), 4, 0.05
    out = smoothgrad(score, recipe.distance, xy, b.pen, b.valid, labels, key=key, samples=samples, sigma=sigma,
                     max_strokes=K)
    # by hand: s = sigma * the longer side of each sketch's bounding box (valid points only),
    # one N(0, s^2) draw per coordinate from each of split(key, samples), padding left alone
    v = np.asarray(b.valid)
    side = np.array([np.ptp(np.asarray(xy)[i][v[i]], axis=0).max() for i in range(2)])
    assert side[0] == pytest.approx(26.0, abs=0.5) and side[1] == pytest.approx(21.6, abs=0.5)
    gx, gp = 0.0, 0.0
    for k in jax.random.split(key, samples):
        noise = jax.random.normal(k, xy.shape, xy.dtype) * jnp.asarray(sigma * side, xy.dtype)[:, None, None]
        p = psla(score, recipe.distance, jnp.where(b.valid[..., None], xy + noise, xy), b.pen, b.valid, labels,
                 max_strokes=K)
        gx, gp = gx + p.xy, gp + p.pen
    gx, gp = gx / samples, gp / samples
    np.testing.assert_allclose(out.xy, gx, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(out.pen, gp, rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(out.points, jnp.linalg.norm(gx, axis=-1), rtol=1e-4, atol=1e-7)
    np.testing.assert_allclose(out.strokes, point_to_stroke(out.points, b.pen, b.valid, K), rtol=1e-5)
    plain = psla(score, recipe.distance, xy, b.pen, b.valid, labels, max_strokes=K)
    np.testing.assert_allclose(out.score, plain.score, rtol=1e-6)
    assert not np.allclose(out.xy, plain.xy, rtol=1e-2, atol=1e-4)  # the jitter matters at this sigma


def test_stroke_order_puts_absent_strokes_last():
    scores = jnp.array([[0.1, 0.5, 9.0, 0.5]])
    present = jnp.array([[True, True, False, True]])
    np.testing.assert_array_equal(stroke_order(scores, present), [[1, 3, 0, 2]])


def test_deletion_and_insertion_curves_are_exact_partial_sketches(batch, cnn):
    s = _strokes_of(batch)
    score = class_score(cnn, "prob")
    labels = jnp.array([1, 0])
    scores = jnp.array([[0.2, 0.9, -0.5, 0.0, 0.0], [0.0, 3.0, 1.0, 2.0, 0.0]])
    dele = deletion_curve(score, s, scores, labels)
    ins = deletion_curve(score, s, scores, labels, insertion=True)
    assert dele.shape == ins.shape == (2, K + 1)
    order = np.asarray(stroke_order(scores, present_strokes(s)))
    for b in range(2):
        for i in range(K + 1):
            removed = np.isin(np.arange(K), order[b, :i])
            img_del = compose(s[b:b + 1], jnp.asarray(~removed, jnp.float32)[None])
            img_ins = compose(s[b:b + 1], jnp.asarray(removed, jnp.float32)[None])
            np.testing.assert_allclose(dele[b, i], score(img_del, labels[b:b + 1])[0], rtol=1e-5)
            np.testing.assert_allclose(ins[b, i], score(img_ins, labels[b:b + 1])[0], rtol=1e-5)
    # sketch 0 has 3 drawing strokes: the curve is flat from entry 3 on; ends swap between the two
    np.testing.assert_allclose(dele[0, 3:], dele[0, 3], rtol=1e-6)
    np.testing.assert_allclose(dele[:, 0], ins[:, -1], rtol=1e-5)
    np.testing.assert_allclose(dele[:, -1], ins[:, 0], rtol=1e-5)


def test_curve_auc_trapezoid_by_hand():
    curve = jnp.array([[1.0, 0.5, 0.0, 7.0], [1.0, 1.0, 1.0, 1.0], [0.3, 0.3, 0.3, 0.3]])
    auc = curve_auc(curve, jnp.array([2, 3, 0]))
    np.testing.assert_allclose(auc[:2], [0.5, 1.0], rtol=1e-6)  # entries past n (7.0) are ignored
    assert math.isnan(float(auc[2]))


def _np_average_ranks(x):
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and x[order[j + 1]] == x[order[i]]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def _np_kendall_tau_b(a, b):
    conc = disc = tie_a = tie_b = 0
    for i, j in itertools.combinations(range(len(a)), 2):
        da, db = np.sign(a[i] - a[j]), np.sign(b[i] - b[j])
        if da == 0 and db == 0:
            continue
        if da == 0:
            tie_a += 1
        elif db == 0:
            tie_b += 1
        elif da == db:
            conc += 1
        else:
            disc += 1
    return (conc - disc) / math.sqrt((conc + disc + tie_a) * (conc + disc + tie_b))


def test_rank_correlations_match_textbook_definitions_with_ties_and_masks():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(20, 9)).astype(np.float32)  # many ties
    b = (a + rng.integers(0, 3, size=a.shape)).astype(np.float32)
    mask = rng.random(a.shape) < 0.8
    rho = rank_correlation(a, b, mask)
    tau = rank_correlation(a, b, mask, "kendall")
    for i in range(len(a)):
        x, y = a[i][mask[i]], b[i][mask[i]]
        ra, rb = _np_average_ranks(x), _np_average_ranks(y)
        ref = np.corrcoef(ra, rb)[0, 1] if len(x) > 1 and ra.std() > 0 and rb.std() > 0 else np.nan
        np.testing.assert_allclose(rho[i], ref, rtol=1e-5, atol=1e-6)
        ref_tau = _np_kendall_tau_b(x, y) if len(x) > 1 and ra.std() > 0 and rb.std() > 0 else np.nan
        np.testing.assert_allclose(tau[i], ref_tau, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(rank_correlation(jnp.array([[1.0, 2, 3, 4]]), jnp.array([[1.0, 3, 2, 4]]), method="kendall"),
                               [4 / 6], rtol=1e-6)
    assert math.isnan(float(rank_correlation(jnp.array([[1.0, 2.0]]), jnp.array([[3.0, 3.0]]))[0]))
    with pytest.raises(ValueError, match="unknown rank correlation 'pearson'"):
        rank_correlation(a, b, method="pearson")


def test_drawing_order_correlation_signs():
    present = jnp.array([[True, True, True, False]] * 2)
    scores = jnp.array([[3.0, 2.0, 1.0, 99.0], [1.0, 2.0, 3.0, -5.0]])
    np.testing.assert_allclose(drawing_order_correlation(scores, present), [1.0, -1.0], rtol=1e-6)
    np.testing.assert_allclose(drawing_order_correlation(scores, present, "kendall"), [1.0, -1.0], rtol=1e-6)


def test_mean_ci_brackets_the_mean_and_skips_nan():
    v = np.r_[np.linspace(0, 1, 101), np.nan]
    ci = mean_ci(v, seed=1)
    assert ci["n"] == 101 and ci["mean"] == pytest.approx(0.5) and ci["lo"] < ci["mean"] < ci["hi"]
    assert ci["hi"] - ci["lo"] == pytest.approx(2 * 1.96 * np.std(v[:-1]) / math.sqrt(101), rel=0.2)
    assert math.isnan(mean_ci([np.nan])["mean"])
    # the median's interval: on a coarse grid (Spearman over 3 strokes: -1, -0.5, 0.5, 1) with
    # half the values at 0.5 and half at 1, resampled medians land on both, so the interval spans them
    grid = np.r_[np.full(50, 0.5), np.full(50, 1.0)]
    ci = mean_ci(grid, seed=0)
    assert ci["median_lo"] == 0.5 and ci["median_hi"] == 1.0
    ci = mean_ci(np.r_[np.full(80, 0.5), np.full(20, 1.0)], seed=0)  # a clear majority: no doubt
    assert ci["median"] == ci["median_lo"] == ci["median_hi"] == 0.5
    assert math.isnan(mean_ci([])["median_lo"])


def test_bad_inputs_name_the_function_and_the_problem(batch, cnn):
    s = _strokes_of(batch)
    with pytest.raises(ValueError, match=r"sla: stroke_images must be \[B, K, H, W\]"):
        sla(class_score(cnn), s[0], jnp.array([0]))
    with pytest.raises(ValueError, match=r"occlusion: score_fn must return one scalar per image"):
        occlusion(lambda images, aux: cnn(images), s)
    with pytest.raises(ValueError, match=r"psla: need xy \[B, T, 2\]"):
        psla(class_score(cnn), _recipe().distance, batch.xy[0], batch.pen[0], batch.valid[0], 0, max_strokes=K)
    labels = jnp.array([0, 1])
    with pytest.raises(ValueError, match=r"sla: weights at batch index 1: non-finite"):
        sla(class_score(cnn), s, labels, weights=jnp.ones(s.shape[:2]).at[1, 0].set(jnp.nan))
    with pytest.raises(ValueError, match=r"sla: weights must be \[B, K\]"):
        sla(class_score(cnn), s, labels, weights=jnp.ones(s.shape[1]))
    for bad in (-0.1, float("nan")):
        with pytest.raises(ValueError, match="smoothgrad: sigma must be a finite number >= 0"):
            smoothgrad(class_score(cnn), _recipe().distance, batch.xy, batch.pen, batch.valid, labels,
                       key=jax.random.PRNGKey(0), sigma=bad, max_strokes=K)


def test_non_finite_or_out_of_range_points_name_the_function_and_the_batch_index(batch, cnn):
    from sketchjax.attribution import occlusion_sketch, sla_sketch
    from sketchjax.sketch import SketchError

    recipe = _recipe(distance_width=1.5)
    score = class_score(cnn)
    labels = jnp.array([0, 1])
    methods = {
        "sla_sketch": lambda xy, pen: sla_sketch(score, recipe, xy, pen, batch.valid, labels, max_strokes=K),
        "occlusion_sketch": lambda xy, pen: occlusion_sketch(score, recipe, xy, pen, batch.valid, labels, max_strokes=K),
        "psla": lambda xy, pen: psla(score, recipe.distance, xy, pen, batch.valid, labels, max_strokes=K),
        "smoothgrad": lambda xy, pen: smoothgrad(score, recipe.distance, xy, pen, batch.valid, labels,
                                                 key=jax.random.PRNGKey(0), samples=2, max_strokes=K),
    }
    xy, pen = jnp.asarray(batch.xy), jnp.asarray(batch.pen)
    cases = [
        (xy.at[1, 2, 0].set(jnp.nan), pen, r"batch index 1: non-finite coordinate \(NaN/inf\) at point 2"),
        (xy.at[1, 4, 1].set(-jnp.inf), pen, r"batch index 1: non-finite coordinate \(NaN/inf\) at point 4"),
        (xy, pen.at[1, 0].set(jnp.nan), r"batch index 1: non-finite pen state at point 0"),
        # the first bad sketch is named, whatever its problem
        (xy.at[1, 0, 0].set(jnp.nan), pen.at[0, 5].set(jnp.inf), r"batch index 0: non-finite pen state at point 5"),
    ]
    assert not bool(batch.valid[:, -1].any())  # the last point is padding in both sketches
    for name, run in methods.items():
        for bad_xy, bad_pen, problem in cases:
            with pytest.raises(SketchError, match=rf"^{name}: sketch at {problem}"):
                run(bad_xy, bad_pen)
        # NaN on padding is no error (padding never draws)
        run(xy.at[:, -1].set(jnp.nan), pen.at[:, -1].set(jnp.nan))
    clean = psla(score, recipe.distance, xy, pen, batch.valid, labels, max_strokes=K)
    padded = psla(score, recipe.distance, xy.at[:, -1].set(jnp.nan), pen, batch.valid, labels, max_strokes=K)
    chex.assert_trees_all_close(padded, clean)
    # traced inputs (jit) cannot be inspected: the check is skipped, the function still compiles
    jitted = jax.jit(lambda xy, pen: psla(score, recipe.distance, xy, pen, batch.valid, labels, max_strokes=K))
    jitted(xy.at[1, 2, 0].set(jnp.nan), pen)
    chex.assert_trees_all_close(jitted(xy, pen), clean, rtol=1e-5, atol=1e-7)
    # coordinates in any units where a recipe fits them, eagerly as under jit (an audit found the
    # eager call refusing |x| > 8192, which jit accepted); a recipe that does not fit passes them
    # to the renderer, which refuses them
    fitting = RasterRecipe(out_size=SIZE, canvas=SIZE, width=1, distance_width=1.5)
    big = xy * 1000.0  # up to ~29,000
    assert float(jnp.max(jnp.abs(jnp.where(batch.valid[..., None], big, 0.0)))) > 8192
    chex.assert_trees_all_close(sla_sketch(score, fitting, big, pen, batch.valid, labels, max_strokes=K).strokes,
                                sla_sketch(score, fitting, xy, pen, batch.valid, labels, max_strokes=K).strokes,
                                rtol=1e-4, atol=1e-5)
    # (P-SLA's values are not compared: at these hand-placed strokes the gradient is not smooth --
    # the eager and jitted fits differ by ~2e-6 px and the gradients by ~10%, also at scale 1)
    for render_fn in (fitting.distance, jax.jit(fitting.distance)):  # jitted: was refused as a bare renderer
        assert all(bool(jnp.isfinite(leaf).all())
                   for leaf in jax.tree.leaves(psla(score, render_fn, big, pen, batch.valid, labels, max_strokes=K)))
    with pytest.raises(SketchError, match="coordinate beyond the supported range"):
        methods["sla_sketch"](big, pen)


def test_non_finite_stroke_images_name_the_function_and_the_batch_index(batch, cnn):
    score = class_score(cnn)
    labels = jnp.array([0, 1])
    s = _strokes_of(batch)
    methods = {"sla": sla, "occlusion": occlusion, "integrated_gradients": partial(integrated_gradients, steps=2)}
    for name, method in methods.items():
        for bad in (s.at[1, 2, 5, 7].set(jnp.nan), s.at[1, 2, 0, 0].set(jnp.inf)):
            with pytest.raises(ValueError, match=rf"^{name}: stroke_images at batch index 1: non-finite .* in stroke 2"):
                method(score, bad, labels)
        method(score, s, labels)  # finite: fine
    # traced: skipped (jit-compatible)
    jax.jit(lambda s: sla(score, s, labels))(s.at[1, 2, 5, 7].set(jnp.nan))


def test_aux_needs_one_row_per_sketch(batch, cnn):
    score = class_score(cnn)
    s = _strokes_of(batch)
    methods = {"sla": sla, "occlusion": occlusion, "integrated_gradients": partial(integrated_gradients, steps=2)}
    for name, method in methods.items():
        for aux, shape in ((0, r"\(\)"), (jnp.array(1), r"\(\)"), (jnp.array([0, 1, 2]), r"\(3,\)")):
            with pytest.raises(ValueError, match=rf"^{name}: every aux leaf needs leading dimension B = 2 .*got shape {shape}"):
                method(score, s, aux)
    # a pytree: the bad leaf is named
    two = lambda images, aux: score(images, aux["label"]) + jnp.sum(aux["target"], -1)  # noqa: E731
    good = {"label": jnp.array([0, 1]), "target": jnp.zeros((2, 3))}
    sla(two, s, good)
    with pytest.raises(ValueError, match=r"^sla: .*B = 2 .*got shape \(1, 3\) \(leaf \['target'\]\)"):
        sla(two, s, dict(good, target=jnp.zeros((1, 3))))
    recipe = _recipe()
    with pytest.raises(ValueError, match=r"^psla: every aux leaf needs leading dimension B = 2 .*got shape \(\)"):
        psla(score, recipe.distance, batch.xy, batch.pen, batch.valid, 0, max_strokes=K)
    from sketchjax.attribution import occlusion_sketch

    with pytest.raises(ValueError, match=r"^occlusion_sketch: every aux leaf .*B = 2 .*got shape \(4,\)"):
        occlusion_sketch(score, recipe, batch.xy, batch.pen, batch.valid, jnp.arange(4), max_strokes=K)


def test_recipe_forms_agree(batch):
    recipe = RasterRecipe(out_size=16, canvas=48, width=3)
    s = recipe.stroke_rasters(batch.xy, batch.pen, batch.valid, K)
    img = recipe.raster(batch.xy, batch.pen, batch.valid)
    assert img.shape == (2, 16, 16)
    np.testing.assert_array_equal(recipe.compose(s, jnp.ones((2, K))), img)
    d = recipe.distance(batch.xy, batch.pen, batch.valid)
    assert d.shape == (2, 16, 16) and float(jnp.min(d)) >= 0 and float(jnp.max(d)) <= 1
    # the same line, drawn two ways: most ink agrees
    assert float(jnp.sum(jnp.abs(d - img))) < 0.25 * float(jnp.sum(img))
    with pytest.raises(ValueError, match="integer line width"):
        RasterRecipe(out_size=16, canvas=48, width=2.5).raster(batch.xy, batch.pen, batch.valid)
    with pytest.raises(ValueError, match="out_size <= canvas"):
        RasterRecipe(out_size=64, canvas=32)


def test_plot_attribution_colours_strokes_and_points(batch):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sketchjax.attribution.plot import plot_attribution, plot_deletion_curves, plot_methods

    sk = Sketch(xy=batch.xy[0], pen=batch.pen[0], valid=batch.valid[0])
    fig, ax = plt.subplots()
    lc = plot_attribution(ax, sk, stroke_scores=np.array([1.0, -2.0, 0.5, 0.0, 0.0]))
    segs = lc.get_segments()
    assert len(segs) == 1 + 1 + 2  # drawn segments per stroke; the single point draws none
    np.testing.assert_allclose(lc.get_array(), [1.0, -2.0, 0.5, 0.5])
    assert lc.norm.vmin == -2.0 and lc.norm.vmax == 2.0 and lc.norm(0.0) == 0.5  # centred at 0
    fig2, ax2 = plt.subplots()
    lc2 = plot_attribution(ax2, sk, point_scores=np.arange(12.0))
    np.testing.assert_allclose(lc2.get_array(), [0.5, 2.5, 4.5, 5.5])
    with pytest.raises(ValueError, match="exactly one of"):
        plot_attribution(ax2, sk)
    with pytest.raises(ValueError, match="2 stroke scores for a sketch with 3 drawn strokes"):
        plot_attribution(ax2, sk, stroke_scores=np.ones(2))
    sketches = [Sketch(xy=batch.xy[i], pen=batch.pen[i], valid=batch.valid[i]) for i in range(2)]
    fig3 = plot_methods(sketches, {"SLA": np.ones((2, K)), "P-SLA": np.ones((2, 12))}, point_methods=("P-SLA",))
    assert len(fig3.axes) >= 4
    fig4, ax4 = plt.subplots()
    plot_deletion_curves(ax4, {"SLA": np.array([[1.0, 0.5, 0.0, 0.0], [1.0, 0.0, 0.0, 0.0]])}, np.array([2, 1]))
    # resampled on the fraction axis: at 0.24 of the strokes sketch 0 is at 0.76, sketch 1 at 0.76
    np.testing.assert_allclose(ax4.lines[0].get_ydata()[[0, 12, 25, 50]], [1.0, 0.76, 0.5, 0.0])
    plt.close("all")


def test_attribution_svg_round_trips_geometry_with_colours(tmp_path, three_strokes):
    from sketchjax.attribution.plot import attribution_svg, stroke_colors

    path = tmp_path / "attr.svg"
    text = attribution_svg(three_strokes, [1.0, 0.0, -1.0], path, size=40)
    assert path.read_text() == text
    cols = stroke_colors([1.0, 0.0, -1.0])
    assert all(f'stroke="{c}"' in text for c in cols) and cols[0] != cols[2]
    back = read_svg(path)
    for a, b in zip(to_strokes(back), to_strokes(three_strokes)):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="2 stroke scores for 3 strokes"):
        attribution_svg(three_strokes, [1.0, 2.0])


@pytest.mark.slow  # ~30 s; SLA / occlusion / P-SLA identities are pinned on small models in this file
@pytest.mark.data
def test_doodlenet_attributions_on_real_sketches(data_root):
    from sketchjax.formats import iter_ndjson
    from sketchjax.models.doodlenet import doodlenet_class_name, doodlenet_input, doodlenet_recipe, load_doodlenet

    model, variables, names = load_doodlenet(data_root)
    index = {n: i for i, n in enumerate(names)}
    sketches, labels = [], []
    for path in sorted((data_root / "quickdraw" / "simplified").glob("*.ndjson"))[:: 43][:8]:
        for rec in iter_ndjson(path, limit=2):
            sketches.append(rec.sketch)
            labels.append(index[doodlenet_class_name(path.stem)])
    b = stack_sketches(sketches, 128)
    labels = jnp.asarray(labels)
    k = int(jnp.max(num_strokes(b.pen, b.valid)))
    recipe = doodlenet_recipe(canvas=128, width=7)
    apply = partial(model.apply, variables)
    s = recipe.stroke_rasters(b.xy, b.pen, b.valid, k)
    # the recipe is doodlenet_input's, and the composition at w = 1 reproduces it exactly
    np.testing.assert_array_equal(recipe.compose(s, jnp.ones(s.shape[:2])),
                                  doodlenet_input(b.xy, b.pen, b.valid, canvas=128, width=7))
    score = class_score(apply, "log_prob")
    a_sla = sla(score, s, labels, finish=recipe.finish)
    a_occ = occlusion(score, s, labels, finish=recipe.finish)
    a_p = psla(score, recipe.distance, b.xy, b.pen, b.valid, labels, max_strokes=k)
    for a in (a_sla.strokes, a_occ.strokes, a_p.strokes, a_p.xy):
        assert bool(jnp.all(jnp.isfinite(a)))
    np.testing.assert_allclose(a_sla.score, a_occ.score, rtol=1e-5, atol=1e-5)
    present = present_strokes(s)
    assert bool(jnp.all(jnp.where(present, True, (a_sla.strokes == 0) & (a_occ.strokes == 0))))
    # deleting strokes in occlusion order lowers the class probability faster than in random order
    prob = class_score(apply, "prob")
    n = jnp.sum(present, -1)
    auc_occ = curve_auc(deletion_curve(prob, s, a_occ.strokes, labels, finish=recipe.finish), n)
    auc_rand = curve_auc(deletion_curve(prob, s, random_attribution(jax.random.PRNGKey(0), s), labels,
                                        finish=recipe.finish), n)
    assert float(jnp.nanmean(auc_occ)) < float(jnp.nanmean(auc_rand))


def test_stroke_cover_matches_the_per_stroke_rasters(batch):
    from sketchjax.render import stroke_cover, stroke_rasters

    for width in (1, 3):
        s = np.asarray(stroke_rasters(batch.xy, batch.pen, batch.valid, SIZE, K, width=width)) > 0
        lowest, highest = stroke_cover(batch.xy, batch.pen, batch.valid, SIZE, width=width)
        ks = np.arange(K)[None, :, None, None]
        np.testing.assert_array_equal(highest, np.max(np.where(s, ks, -1), axis=1))
        np.testing.assert_array_equal(lowest, np.where(s.any(1), np.min(np.where(s, ks, K), axis=1), -1))
        np.testing.assert_array_equal(highest >= 0, raster(batch.xy, batch.pen, batch.valid, SIZE, width=width) > 0)
    assert int(jnp.sum(lowest != highest)) > 0  # the crossing sketch has shared pixels


def test_sketch_forms_of_sla_and_occlusion_equal_the_stroke_raster_forms(batch, cnn):
    from sketchjax.attribution import drawing_strokes, occlusion_sketch, sla_sketch

    recipe = RasterRecipe(out_size=16, canvas=SIZE, width=3)  # thick lines: many shared pixels
    score = class_score(lambda x: cnn(jax.image.resize(x, (x.shape[0], SIZE, SIZE), "linear")))
    labels = jnp.array([2, 1])
    s = recipe.stroke_rasters(batch.xy, batch.pen, batch.valid, K)
    ref = sla(score, s, labels, finish=recipe.finish)
    fast = sla_sketch(score, recipe, batch.xy, batch.pen, batch.valid, labels, max_strokes=K)
    np.testing.assert_allclose(fast.score, ref.score, rtol=1e-6)
    np.testing.assert_allclose(fast.strokes, ref.strokes, rtol=1e-4, atol=1e-6)
    ref_o = occlusion(score, s, labels, finish=recipe.finish)
    fast_o = occlusion_sketch(score, recipe, batch.xy, batch.pen, batch.valid, labels, max_strokes=K)
    np.testing.assert_allclose(fast_o.strokes, ref_o.strokes, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fast_o.score, ref.score, rtol=1e-6)
    np.testing.assert_array_equal(drawing_strokes(batch.pen, batch.valid, K), present_strokes(s))
    # fewer stroke slots than strokes: the sketch forms still explain the real sketch (all strokes
    # in the image), the kept strokes' attributions only count pixels nobody else inks
    few = sla_sketch(score, recipe, batch.xy, batch.pen, batch.valid, labels, max_strokes=1)
    np.testing.assert_allclose(few.score, ref.score, rtol=1e-6)
    lowest, highest = recipe.stroke_cover(batch.xy, batch.pen, batch.valid)
    g = jax.grad(lambda x: jnp.sum(score(recipe.finish(x), labels)))((highest >= 0).astype(jnp.float32))
    np.testing.assert_allclose(few.strokes[:, 0], jnp.sum(jnp.where((lowest == 0) & (highest == 0), g, 0.0), (-2, -1)),
                               rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(few.strokes[:, 0], ref.strokes[:, 0], rtol=1e-4, atol=1e-6)  # same pixels, same image
    # ... whereas sla on truncated stroke rasters explains another image (the sketch without strokes >= 1)
    truncated = sla(score, recipe.stroke_rasters(batch.xy, batch.pen, batch.valid, 1), labels, finish=recipe.finish)
    assert not np.allclose(truncated.score, ref.score)


def test_stroke_cover_per_segment_layout_and_off_canvas_strokes_agree(batch):
    from sketchjax.render import stroke_cover, stroke_rasters

    shifted = batch.xy + jnp.array([[[20.0, -6.0]]])  # parts of strokes leave the canvas
    for max_pixels in (-1, None):  # packed layout and the per-segment fallback
        lowest, highest = stroke_cover(shifted, batch.pen, batch.valid, SIZE, width=3, max_pixels=max_pixels)
        s = np.asarray(stroke_rasters(shifted, batch.pen, batch.valid, SIZE, K, width=3, max_pixels=max_pixels)) > 0
        ks = np.arange(K)[None, :, None, None]
        np.testing.assert_array_equal(highest, np.max(np.where(s, ks, -1), axis=1))
        np.testing.assert_array_equal(lowest, np.where(s.any(1), np.min(np.where(s, ks, K), axis=1), -1))


def test_psla_gradients_are_canvas_gradients_unless_the_fit_is_differentiated(batch, cnn):
    import dataclasses

    b = _jittered(batch)
    recipe = RasterRecipe(out_size=SIZE, canvas=SIZE, width=2, distance_width=2.0)  # fitted to the canvas
    score = class_score(cnn)
    labels = jnp.array([0, 1])
    out = psla(score, recipe.distance, b.xy, b.pen, b.valid, labels, max_strokes=K)
    # the chain rule with the fit's scale held fixed: dF/dxy = scale * dF/d(canvas xy)
    from sketchjax.normalize import canvas_fit

    _, scale, _ = canvas_fit(Sketch(xy=b.xy, pen=b.pen, valid=b.valid), SIZE, recipe.padding)
    fitted = recipe.fitted(b.xy, b.pen, b.valid)
    no_fit = dataclasses.replace(recipe, fit=False)
    g_canvas = jax.grad(lambda c: jnp.sum(score(no_fit.distance(c, b.pen, b.valid), labels)))(fitted)
    np.testing.assert_allclose(out.xy, jnp.where(b.valid[..., None], g_canvas * scale[:, None, :], 0.0),
                               rtol=1e-4, atol=1e-6)
    # through the fit, a translation of the whole drawing changes nothing: the gradients sum to 0
    through = psla(score, dataclasses.replace(recipe, differentiate_fit=True).distance, b.xy, b.pen, b.valid, labels,
                   max_strokes=K)
    np.testing.assert_allclose(jnp.sum(through.xy, axis=1), 0.0, atol=1e-4)
    assert float(jnp.max(jnp.abs(jnp.sum(out.xy, axis=1)))) > 1e-3


def test_cosine_score_explains_a_latent(batch, cnn):
    from sketchjax.attribution import cosine_score

    s = _strokes_of(batch)
    targets = jnp.array([[1.0, 0.0, 0.0], [0.3, -1.0, 2.0]])
    score = cosine_score(cnn)  # the tiny CNN's 3 outputs as a latent
    z = cnn(raster(batch.xy, batch.pen, batch.valid, SIZE))
    expected = jnp.sum(z * targets, -1) / (jnp.linalg.norm(z, axis=-1) * jnp.linalg.norm(targets, axis=-1))
    out = sla(score, s, targets)
    np.testing.assert_allclose(out.score, expected, rtol=1e-5)
    # the gradient is the latent's: equal to the chain rule through the encoder
    ref = jax.grad(lambda w: jnp.sum(score(compose(s, w), targets)))(jnp.ones((2, K)))
    np.testing.assert_allclose(out.strokes, jnp.where(present_strokes(s), ref, 0.0), rtol=1e-5, atol=1e-7)
    assert float(jnp.max(jnp.abs(out.strokes))) > 0


def test_attribution_parameters_and_metric_shapes_are_checked():
    """Counts must be integers >= 1 (steps=-2 gave zeros, 2.5 a wrong midpoint rule), metric
    inputs of one shape (a [1, K] score row was broadcast to every sketch), a class to explain
    inside [0, C) (C gave NaN, -1 wrapped), and a NaN attribution makes its correlation NaN."""
    rng = np.random.default_rng(0)
    images = jnp.asarray(rng.uniform(0, 1, (2, 3, 8, 8)) > 0.7, jnp.float32)
    score = lambda x, aux: x.sum((-2, -1))  # noqa: E731
    for steps in (0, -2, 2.5):
        with pytest.raises(ValueError, match="integrated_gradients: steps must be an integer >= 1"):
            integrated_gradients(score, images, steps=steps)
    with pytest.raises(ValueError, match=r"deletion_curve: scores must be \[B, K\]"):
        deletion_curve(score, images, jnp.ones((1, 3)))
    with pytest.raises(ValueError, match="curve_auc: need curve"):
        curve_auc(jnp.ones((2, 4)), jnp.array([3.0, 2.0]))
    with pytest.raises(ValueError, match="rank_correlation: a, b"):
        rank_correlation(jnp.ones((2, 3)), jnp.ones((2, 2)))
    a = jnp.array([[0.3, 1.0, 2.0], [0.1, 0.5, 0.2]])
    got = np.asarray(rank_correlation(a.at[0, 0].set(jnp.nan), jnp.array([[1.0, 2.0, 3.0]] * 2)))
    assert np.isnan(got[0]) and np.isfinite(got[1])
    logits_fn = class_score(lambda x: jnp.stack([x.sum((-2, -1)), -x.sum((-2, -1))], -1))
    for labels in (np.array([0, 2]), np.array([0, -1]), np.array([0.0, 1.0])):
        with pytest.raises(ValueError, match=r"class_score: the classes to explain \(aux\) must be integers in \[0, 2\)"):
            logits_fn(images[:, 0], labels)
    for labels in (np.array([[0], [1]]), np.array([0, 1, 1]), np.array(1)):  # [B, 1] failed inside take_along_axis
        with pytest.raises(ValueError, match=r"class_score: the classes to explain \(aux\) must be one integer per "
                                             r"row, shape \(2,\) for logits of shape \(2, 2\), got shape"):
            logits_fn(images[:, 0], labels)
    xy, pen, valid = jnp.zeros((2, 4, 2)), jnp.ones((2, 4)), jnp.ones((2, 4), bool)
    recipe = RasterRecipe(out_size=16, canvas=16, fit=False)
    for max_strokes in (0, -1):
        with pytest.raises(ValueError, match="sla_sketch: max_strokes must be an integer >= 1"):
            sla_sketch(score, recipe, xy, pen, valid, max_strokes=max_strokes)
    with pytest.raises(ValueError, match="mean_ci: need 0 < level < 1"):
        mean_ci([1.0, 2.0], level=-0.5)


def test_stroke_colors_draw_a_nan_score_grey():
    from sketchjax.attribution.plot import NAN_COLOR, stroke_colors

    got = stroke_colors([1.0, float("nan"), -1.0])
    assert got[1] == NAN_COLOR and got[0] != got[2] and NAN_COLOR not in (got[0], got[2])


def test_metrics_and_plots_handle_non_finite_scores_padding_slots_and_bad_shapes(tmp_path):
    """Found by an audit: a NaN (or -inf) score on a drawn stroke sorted it behind the empty
    slots (a finite, wrong deletion AUC); curve_auc took n > K; the figure drew NaN / inf strokes
    transparent and let a padding slot's score set the colour scale; bad shapes gave bare errors."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sketchjax.attribution.plot import NAN_COLOR, plot_attribution, plot_deletion_curves, plot_methods, stroke_colors

    imgs = np.zeros((1, 4, 8, 8), np.float32)
    imgs[0, 0, 1, :6] = 1.0  # strokes 0 and 1 draw 6 px each; slots 2 and 3 are empty
    imgs[0, 1, 5, :6] = 1.0
    ink = lambda img, aux=None: jnp.sum(img, axis=(-2, -1))  # noqa: E731
    present = present_strokes(jnp.asarray(imgs))
    # -inf and NaN on a drawn stroke: ranked last among the drawn strokes, never behind the empty
    # slots (with an empty slot 0 -- a tap -- the old sort key put it before the -inf stroke)
    tap_first = jnp.array([[False, True, True, False]])
    np.testing.assert_array_equal(stroke_order(jnp.array([[5.0, -jnp.inf, 1.0, 2.0]]), tap_first), [[2, 1, 0, 3]])
    np.testing.assert_array_equal(stroke_order(jnp.array([[jnp.nan, 1.0, 5.0, 5.0]]), present), [[1, 0, 2, 3]])
    with pytest.raises(ValueError, match="score of drawn stroke 0 of sketch 0 is not finite"):
        deletion_curve(ink, jnp.asarray(imgs), jnp.array([[jnp.nan, 1.0, 0.0, 0.0]]))
    curve = jax.jit(lambda s: deletion_curve(ink, jnp.asarray(imgs), s))(jnp.array([[jnp.nan, 1.0, 0.0, 0.0]]))
    assert np.isnan(np.asarray(curve)).all()  # under jit: the row is NaN, not a wrong number
    good = deletion_curve(ink, jnp.asarray(imgs), jnp.array([[2.0, 1.0, 9.0, 9.0]]))  # empty slots' scores ignored
    np.testing.assert_allclose(good, [[12, 6, 0, 0, 0]])
    # curve_auc: n within [0, K]; any leading shape (so it vmaps over rows)
    for bad_n in ([5], [-1]):
        with pytest.raises(ValueError, match=r"n must count strokes in \[0, K=4\]"):
            curve_auc(good, jnp.array(bad_n))
    np.testing.assert_allclose(jax.vmap(curve_auc)(good, jnp.array([2])), curve_auc(good, jnp.array([2])))
    np.testing.assert_allclose(curve_auc(good, jnp.array([2])), [(12 / 2 + 6 + 0 / 2) / 2])
    with pytest.raises(ValueError, match="scores and present need one shape"):
        drawing_order_correlation(np.ones((1, 4)), np.ones((1, 3), bool))
    np.testing.assert_allclose(drawing_order_correlation([[3.0, 2.0, 1.0]], [[True, True, True]]), [1.0])

    # figures: NaN grey, inf at the end colour, the scale from the drawn strokes only
    sk = from_strokes([[[0, 0], [10, 0]], [[0, 5], [10, 5]], [[0, 9], [10, 9]]])
    fig, ax = plt.subplots()
    lc = plot_attribution(ax, sk, stroke_scores=[np.nan, np.inf, 1.0, 100.0])  # slot 3: no such stroke
    lc.update_scalarmappable()  # the colours a draw would use
    rgba = lc.get_edgecolor()
    np.testing.assert_allclose(rgba[0], matplotlib.colors.to_rgba(NAN_COLOR))
    np.testing.assert_allclose(rgba[1], plt.get_cmap("RdBu_r")(1.0))
    assert lc.norm.vmax == 1.0  # not 100, the padding slot's score
    assert stroke_colors([np.nan, np.inf, 1.0])[:2] == [NAN_COLOR, matplotlib.colors.to_hex(plt.get_cmap("RdBu_r")(1.0))]
    for call, match in ((lambda: plot_attribution(ax, sk, stroke_scores=np.ones((3, 3))), "stroke_scores must be one vector"),
                        (lambda: plot_attribution(ax, sk, stroke_scores=[1.0, 2, 3], vmax=0.0), "vmax must be a finite number > 0"),
                        (lambda: stroke_colors(np.ones((2, 2))), "stroke_colors: scores must be one vector"),
                        (lambda: plot_methods([sk, sk], {"SLA": np.ones((1, 3))}), "method 'SLA' has scores for 1 sketches"),
                        (lambda: plot_methods([sk], {"SLA": np.ones((1, 3))}, row_titles=[]), "0 row titles for 1"),
                        (lambda: plot_deletion_curves(ax, {"SLA": np.ones((2, 3))}, [1]), "need curves \\[N, K \\+ 1\\] with N = 1"),
                        (lambda: plot_deletion_curves(ax, {"SLA": np.ones((1, 3))}, [5]), "n_strokes must be in"),
                        # a bare "slice indices must be integers" TypeError before
                        (lambda: plot_deletion_curves(ax, {"SLA": np.ones((2, 3))}, np.array([2.5, 2.0])),
                         r"n_strokes must be integers \[N\].*got float64 of shape \(2,\)")):
        with pytest.raises(ValueError, match=match):
            call()
    # a NaN curve is skipped (as mean_ci skips its AUC), not a NaN mean that hides the method's line
    line = plot_deletion_curves(ax, {"SLA": np.array([[1.0, 0.5, 0.0], [np.nan, 1.0, 1.0]])}, [2, 2]).lines[-1]
    np.testing.assert_allclose(line.get_ydata()[[0, -1]], [1.0, 0.0])
    plt.close("all")


def test_sla_attributes_in_at_least_float32():
    """bfloat16 stroke images gave bfloat16 attributions (documented float32), integer weights a
    TypeError from jax.grad (found by an API audit)."""
    s = jnp.zeros((1, 2, 4, 4)).at[0, 0, 1, 1].set(1.0).at[0, 1, 2, 2].set(1.0)
    score = lambda images, aux: jnp.sum(images * jnp.arange(16.0).reshape(1, 4, 4), axis=(-2, -1))  # noqa: E731
    ref = sla(score, s).strokes
    np.testing.assert_allclose(ref, [[5.0, 10.0]])
    low = sla(lambda im, aux: score(im.astype(jnp.float32), aux), s.astype(jnp.bfloat16)).strokes
    assert low.dtype == jnp.float32
    np.testing.assert_allclose(low, ref)
    np.testing.assert_allclose(sla(score, s, weights=jnp.ones((1, 2), jnp.int32)).strokes, ref)


def test_audit_kendall_of_tied_infinities_strict_promotion_svg_limits_float64_pen_and_shapes(tmp_path):
    """Found by an audit: Kendall's tau of two equal infinite scores was NaN (sign(inf - inf));
    the metrics failed under strict dtype promotion; the SVG's colour limits counted a tap (a
    one-point stroke, drawn in neither the figure nor the SVG): the strokes came out near
    white; P-SLA's dF/dpen was float32 for float64 pen states; point_to_stroke named no
    function for mismatched shapes."""
    from sketchjax.attribution.plot import attribution_svg, stroke_colors
    from sketchjax.render import distance_raster

    a, b = jnp.array([jnp.inf, jnp.inf, 1.0, 2.0]), jnp.array([1.0, 2.0, 3.0, 4.0])
    np.testing.assert_allclose(float(rank_correlation(a, b, method="kendall")), -0.5477226, rtol=1e-6)  # SciPy's tau-b
    x, y = jnp.array([[3.0, 1.0, 2.0, 0.0]]), jnp.array([[1.0, 2.0, 3.0, 4.0]])
    want = [float(rank_correlation(x, y)[0]), float(rank_correlation(x, y, method="kendall")[0]),
            float(drawing_order_correlation(x, jnp.ones((1, 4), bool))[0]),
            float(curve_auc(jnp.array([[1.0, 0.5, 0.2, 0.0]]), jnp.array([3]))[0])]
    with jax.numpy_dtype_promotion("strict"):
        got = [float(rank_correlation(x, y)[0]), float(rank_correlation(x, y, method="kendall")[0]),
               float(drawing_order_correlation(x, jnp.ones((1, 4), bool))[0]),
               float(curve_auc(jnp.array([[1.0, 0.5, 0.2, 0.0]]), jnp.array([3]))[0])]
    assert got == want and want[:2] == [pytest.approx(-0.8), pytest.approx(-2 / 3)]
    sketch = from_strokes([np.array([[0.0, 0.0], [10.0, 0.0]]), np.array([[5.0, 5.0]]), np.array([[0.0, 10.0], [10.0, 10.0]])],
                          single_point="keep")
    text = attribution_svg(sketch, [1.0, 10.0, -1.0], tmp_path / "a.svg")
    full = stroke_colors([1.0, -1.0])  # limits +-1: the two drawn strokes at the map's ends
    assert f'stroke="{full[0]}"' in text and f'stroke="{full[1]}"' in text
    assert f'stroke="{stroke_colors([1.0, 10.0, -1.0])[0]}"' not in text  # the tap's 10 no longer sets them
    with jax.enable_x64(True):
        xy = jnp.array([[[1.0, 1.0], [6.0, 2.0], [3.0, 7.0]]], jnp.float64)
        pen, valid = jnp.array([[1.0, 1.0, 0.0]], jnp.float64), jnp.ones((1, 3), bool)
        out = psla(lambda img, _: jnp.sum(img, axis=(-2, -1)), lambda p, q, v: distance_raster(p, q, v, 8), xy, pen,
                   valid, max_strokes=2)
        assert out.xy.dtype == jnp.float64 and out.pen.dtype == jnp.float64
    with pytest.raises(ValueError, match=r"point_to_stroke: need point_values, pen and valid of one shape"):
        point_to_stroke(jnp.ones((2, 7)), jnp.ones((2, 6)), jnp.ones((2, 6), bool), 3)
