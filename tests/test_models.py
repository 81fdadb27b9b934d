"""Shape, masking and reference tests of the encoders in sketchjax.models (BiLSTM, Transformer, CNNs)."""
from __future__ import annotations

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from sketchjax.models.bilstm import (
    BiLSTMEncoder,
    BiLSTMLayer,
    packed_layout,
    packed_rows,
    padded_layout,
    reverse_within_length,
)
from sketchjax.models.cnn import ResNet18, SketchANet
from sketchjax.models.layers import Classifier, ReluMLP, check_batch_shape, point_features
from sketchjax.models.transformer import PointTransformer
from sketchjax.sketch import Sketch


def random_sketches(rng, b, t, lengths):
    xy = rng.uniform(0, 1, (b, t, 2)).astype(np.float32)
    pen = (rng.uniform(size=(b, t)) < 0.8).astype(np.float32)
    valid = np.arange(t)[None, :] < np.asarray(lengths)[:, None]
    return Sketch(xy=jnp.asarray(xy), pen=jnp.asarray(pen), valid=jnp.asarray(valid))


def trim(sk: Sketch, i: int, n: int) -> Sketch:
    return Sketch(xy=sk.xy[i : i + 1, :n], pen=sk.pen[i : i + 1, :n], valid=sk.valid[i : i + 1, :n])


def numpy_lstm(x, wi, wh, b):
    """Independent single-direction LSTM (gates i, f, g, o) over ``x [T, F]``."""
    sig = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    h = np.zeros(wh.shape[0])
    c = np.zeros(wh.shape[0])
    out = []
    for xt in x:
        z = xt @ wi + h @ wh + b
        i, f, g, o = np.split(z, 4)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        out.append(h)
    return np.stack(out)


def test_reverse_within_length_is_per_example_and_an_involution():
    x = jnp.arange(12.0).reshape(2, 6)
    r = reverse_within_length(x, jnp.array([4, 6]))
    np.testing.assert_array_equal(r, [[3, 2, 1, 0, 4, 5], [11, 10, 9, 8, 7, 6]])
    np.testing.assert_array_equal(reverse_within_length(r, jnp.array([4, 6])), x)


def test_bilstm_layer_matches_numpy_both_directions_with_lengths():
    rng = np.random.default_rng(0)
    b, t, f, h = 3, 7, 4, 5
    x = rng.normal(size=(b, t, f)).astype(np.float32)
    lengths = np.array([7, 4, 1])
    layer = BiLSTMLayer(h)
    params = layer.init(jax.random.PRNGKey(0), jnp.asarray(x), jnp.asarray(lengths))
    p = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params["params"])
    out = np.asarray(layer.apply(params, jnp.asarray(x), jnp.asarray(lengths)))
    assert out.shape == (b, t, 2 * h)
    for i, n in enumerate(lengths):
        fwd = numpy_lstm(x[i, :n], p["wi"][0], p["wh"][0], p["b"][0])
        bwd = numpy_lstm(x[i, :n][::-1], p["wi"][1], p["wh"][1], p["b"][1])[::-1]
        np.testing.assert_allclose(out[i, :n, :h], fwd, atol=1e-5)
        np.testing.assert_allclose(out[i, :n, h:], bwd, atol=1e-5)
        assert np.all(out[i, n:] == 0)
    # non-finite values in the padding reach neither the valid rows nor the (zero) padding rows
    bad = x.copy()
    bad[1, 4:] = np.nan
    bad[2, 1:] = np.inf
    np.testing.assert_array_equal(np.asarray(layer.apply(params, jnp.asarray(bad), jnp.asarray(lengths))), out)
    # a length beyond T means all T steps and reads no other example's points (it did)
    longer = np.asarray(layer.apply(params, jnp.asarray(x), jnp.asarray([9, 4, 1])))
    np.testing.assert_array_equal(longer, out)
    # forget-gate bias starts at 1, the other gates at 0
    np.testing.assert_array_equal(p["b"][:, h : 2 * h], 1.0)
    np.testing.assert_array_equal(p["b"][:, :h], 0.0)


def test_bilstm_encoder_is_length_aware_and_padding_free():
    rng = np.random.default_rng(1)
    sk = random_sketches(rng, 3, 12, [12, 5, 2])
    model = BiLSTMEncoder(hidden=8, num_layers=2, head=(16,))
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), sk)
    apply = jax.jit(model.apply)
    feats = np.asarray(apply(variables, sk))
    assert feats.shape == (3, 16) and np.all(feats >= 0)
    for i, n in enumerate([12, 5, 2]):  # each sketch alone, without any padding
        alone = np.asarray(apply(variables, trim(sk, i, n)))[0]
        np.testing.assert_allclose(feats[i], alone, atol=1e-5)
    # garbage in padding changes nothing
    noisy = sk.replace(xy=jnp.where(sk.valid[..., None], sk.xy, 123.0), pen=jnp.where(sk.valid, sk.pen, 7.0))
    np.testing.assert_allclose(np.asarray(apply(variables, noisy)), feats, atol=1e-6)
    # but the backward direction does read the last valid point: moving it changes the feature
    moved = sk.replace(xy=sk.xy.at[1, 4].add(0.5))
    assert not np.allclose(np.asarray(apply(variables, moved))[1], feats[1])


def test_head_activation_softplus_only_changes_the_last_layer():
    x = jnp.asarray(np.random.default_rng(0).normal(size=(5, 6)), jnp.float32)
    relu, soft = ReluMLP((7, 4)), ReluMLP((7, 4), activation="softplus")
    variables = relu.init(jax.random.PRNGKey(0), x)
    # same parameter tree, so a checkpoint of either restores into the other
    assert jax.tree.structure(variables) == jax.tree.structure(soft.init(jax.random.PRNGKey(0), x))
    p = variables["params"]
    hidden = jax.nn.relu(x @ p["dense_0"]["kernel"] + p["dense_0"]["bias"][None, :])
    pre = hidden @ p["dense_1"]["kernel"] + p["dense_1"]["bias"][None, :]
    np.testing.assert_allclose(relu.apply(variables, x), np.maximum(pre, 0), rtol=1e-5, atol=1e-6)
    out = np.asarray(soft.apply(variables, x))
    np.testing.assert_allclose(out, np.log1p(np.exp(np.asarray(pre))), rtol=1e-5, atol=1e-6)
    assert (out > 0).all()  # no unit is ever exactly 0: none can die
    # the gradient reaches every last-layer unit, also those ReLU zeroes
    g = jax.grad(lambda pp: soft.apply({"params": pp}, x).sum())(p)["dense_1"]["bias"]
    g_relu = jax.grad(lambda pp: relu.apply({"params": pp}, x).sum())(p)["dense_1"]["bias"]
    assert (np.asarray(g) > 0).all() and ((np.asarray(pre) <= 0).all(0) == (np.asarray(g_relu) == 0)).all()
    with pytest.raises(ValueError, match="head activation 'gelu'"):
        ReluMLP((4,), activation="gelu").init(jax.random.PRNGKey(0), x)
    # the sequence encoders pass it through (a bad name fails while tracing: no compilation)
    sk = random_sketches(np.random.default_rng(2), 2, 6, [6, 3])
    enc = BiLSTMEncoder(hidden=4, num_layers=1, head=(8,), head_activation="softplus")
    assert (np.asarray(jax.jit(lambda s: enc.apply(enc.init(jax.random.PRNGKey(1), s), s))(sk)) > 0).all()
    for bad in (BiLSTMEncoder(hidden=4, num_layers=1, head=(8,), head_activation="tanh"),
                PointTransformer(dim=8, depth=1, heads=2, max_len=6, head=(8,), head_activation="tanh")):
        with pytest.raises(ValueError, match="head activation 'tanh'"):
            jax.eval_shape(bad.init, jax.random.PRNGKey(1), sk)


def _slots_of(layout, lengths, t):
    """Per sketch, the flat slots its points occupy in ``layout`` (from ``source``), in point order."""
    source, filled = np.asarray(layout.source).reshape(-1), np.asarray(layout.filled).reshape(-1)
    out = []
    for b, n in enumerate(lengths):
        where = {int(source[s]) - b * t: s for s in np.flatnonzero(filled) if source[s] // t == b}
        assert sorted(where) == list(range(n)), f"sketch {b}: points {sorted(where)}"
        out.append(np.array([where[k] for k in range(n)]))
    return out


def test_packed_layout_places_every_point_once_in_one_row():
    lengths, t = np.array([3, 9, 1, 5, 7, 2]), 10
    layout = packed_layout(jnp.asarray(lengths), t, 3)  # 27 points in 3 rows of 10
    assert bool(layout.fits)
    slots = _slots_of(layout, lengths, t)
    assert np.asarray(layout.filled).sum() == lengths.sum()
    mirror, start = np.asarray(layout.mirror).reshape(-1), np.asarray(layout.start).reshape(-1)
    for b, (s, n) in enumerate(zip(slots, lengths)):
        np.testing.assert_array_equal(np.diff(s), 1)  # consecutive ...
        assert s[0] // t == s[-1] // t  # ... inside one row
        assert (layout.first[b], layout.last[b]) == (s[0], s[-1])
        np.testing.assert_array_equal(mirror[s], s[::-1])  # the backward direction's order
        assert start[s[0]] and not start[s[1:]].any()
    np.testing.assert_array_equal(mirror[mirror], np.arange(mirror.size))  # an involution
    # first-fit decreasing: 9 + 1 | 7 + 3 | 5 + 2; no room for 4 more points in one row, nor
    # for a 5 after three 6s although 23 points would fit in 30 slots
    assert bool(packed_layout(jnp.asarray(np.append(lengths, 3)), t, 3).fits)
    assert not bool(packed_layout(jnp.asarray(np.append(lengths, 4)), t, 3).fits)
    assert not bool(packed_layout(jnp.asarray([6, 6, 6, 5]), t, 3).fits)
    # the padded layout is the batch as it is: sketch b in row b from slot 0, nothing to reset
    padded = padded_layout(jnp.asarray(lengths), t)
    assert padded.start is None
    for b, s in enumerate(_slots_of(padded, lengths, t)):
        np.testing.assert_array_equal(s, b * t + np.arange(lengths[b]))
    assert [packed_rows(p, 64) for p in (None, 0.6, 0.001, 2.0)] == [64, 39, 1, 64]
    with pytest.raises(ValueError, match="pack"):
        packed_rows(0.0, 8)


def test_bilstm_encoder_packed_equals_padded_with_and_without_room():
    """Packing is speed only: the same features and gradients, also in training with dropout and
    for a batch too long for the packed rows (which runs padded)."""
    rng = np.random.default_rng(5)
    kwargs = dict(hidden=8, num_layers=2, head=(8,), dropout=0.2)
    padded, packed = BiLSTMEncoder(**kwargs), BiLSTMEncoder(**kwargs, pack=0.5)
    short = random_sketches(rng, 6, 12, [12, 3, 5, 1, 7, 4])  # 32 points: fit 3 rows of 12
    long = random_sketches(rng, 6, 12, [12, 11, 10, 12, 9, 12])  # do not
    variables = jax.jit(padded.init)(jax.random.PRNGKey(0), short)
    rngs = {"dropout": jax.random.PRNGKey(1)}

    @jax.jit
    def run(variables, sk):
        out = {}
        for name, model in (("padded", padded), ("packed", packed)):
            def loss(v, model=model):
                return jnp.sum(model.apply(v, sk, train=True, rngs=rngs) ** 2)

            out[name] = (model.apply(variables, sk), model.apply(variables, sk, train=True, rngs=rngs),
                         jax.grad(loss)(variables))
        ran_packed = packed.apply(variables, sk, mutable=["intermediates"])[1]["intermediates"]["packed"][0]
        return out, ran_packed

    for sk, fits in ((short, True), (long, False)):
        out, ran_packed = run(variables, sk)
        assert bool(ran_packed) == fits  # the packed path did run for the short batch
        for a, b in zip(jax.tree.leaves(out["padded"]), jax.tree.leaves(out["packed"])):
            np.testing.assert_allclose(np.asarray(b), np.asarray(a), rtol=1e-5, atol=1e-6)
        # dropout is active: training features differ from evaluation ones
        assert not np.allclose(np.asarray(out["packed"][0]), np.asarray(out["packed"][1]))


def test_bilstm_encoder_pack_does_not_change_the_initial_weights():
    """`pack` is speed only (a run may resume with another value), so it must not change what
    `init` draws for the same key either (under nn.cond the weights came from other rng splits)."""
    rng = np.random.default_rng(6)
    kwargs = dict(hidden=8, num_layers=2, head=(8,), dropout=0.1)
    for longest in (6, 12):  # a batch that fits in 32 packed rows, and one that does not
        sk = random_sketches(rng, 64, 12, rng.integers(1, longest + 1, 64))
        padded = jax.jit(BiLSTMEncoder(**kwargs).init)(jax.random.PRNGKey(3), sk)
        for pack in (0.5, 0.9):
            packed = jax.jit(BiLSTMEncoder(**kwargs, pack=pack).init)(jax.random.PRNGKey(3), sk)
            chex.assert_trees_all_equal(packed, padded)


@pytest.mark.slow  # ~10 s on 2 cores: jax.export of the BiLSTM; `pytest -m slow`
def test_bilstm_encoder_exports_with_a_symbolic_batch_size():
    """jax.export with a symbolic batch: `pack` needs a known row count, so such an export runs
    padded (same features) instead of failing."""
    from jax import export

    rng = np.random.default_rng(7)
    sk = random_sketches(rng, 3, 12, [12, 4, 1])
    model = BiLSTMEncoder(hidden=8, num_layers=1, head=(8,), pack=0.5)
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), sk)
    b = export.symbolic_shape("b")[0]
    specs = Sketch(jax.ShapeDtypeStruct((b, 12, 2), jnp.float32), jax.ShapeDtypeStruct((b, 12), jnp.float32),
                   jax.ShapeDtypeStruct((b, 12), jnp.bool_))
    exported = export.export(jax.jit(model.apply))(variables, specs)
    np.testing.assert_allclose(np.asarray(exported.call(variables, sk)), np.asarray(model.apply(variables, sk)),
                               rtol=1e-5, atol=1e-6)


def test_transformer_masks_padding_and_is_non_negative():
    rng = np.random.default_rng(2)
    sk = random_sketches(rng, 3, 10, [10, 6, 1])
    model = PointTransformer(dim=16, depth=2, heads=2, max_len=32, head=(8,))
    variables = jax.jit(model.init)(jax.random.PRNGKey(0), sk)  # one compilation, not one per eager op
    apply = jax.jit(model.apply)
    feats = np.asarray(apply(variables, sk))
    assert feats.shape == (3, 8) and np.all(feats >= 0)
    for i, n in enumerate([10, 6, 1]):
        alone = np.asarray(apply(variables, trim(sk, i, n)))[0]
        np.testing.assert_allclose(feats[i], alone, atol=1e-5)
    # NaN / inf left in the padding leak nowhere (features and gradients stay finite and equal)
    for junk in (np.nan, np.inf):
        noisy = sk.replace(xy=jnp.where(sk.valid[..., None], sk.xy, junk))
        np.testing.assert_allclose(np.asarray(apply(variables, noisy)), feats, atol=1e-6)
        grads = jax.grad(lambda v: apply(v, noisy).sum())(variables)
        assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))
    with pytest.raises(ValueError, match="max_len"):
        model.apply(variables, random_sketches(rng, 1, 40, [40]))


@pytest.mark.parametrize("model", [BiLSTMEncoder(hidden=4, num_layers=1, head=(4,)),
                                   PointTransformer(dim=8, depth=1, heads=2, max_len=8, head=(4,))])
def test_sequence_encoders_name_a_wrong_shape(model):
    sk = random_sketches(np.random.default_rng(4), 1, 5, [5])
    unbatched = sk.replace(xy=sk.xy[0], pen=sk.pen[0], valid=sk.valid[0])
    three_coords = sk.replace(xy=jnp.zeros((1, 5, 3)))
    for bad in (unbatched, three_coords):
        with pytest.raises(ValueError, match=f"{type(model).__name__}: expects a batch of sketches"):
            model.init(jax.random.PRNGKey(0), bad)
    # a gap in valid: the BiLSTM read the length as the count of valid points and dropped the
    # last ones silently; checked on concrete arrays (an eager apply), not under jit
    # (eager runs of the encoders are slow: the check comes first, traced runs only trace)
    two = random_sketches(np.random.default_rng(5), 2, 5, [5, 3])
    holed = two.replace(valid=two.valid.at[1, 1].set(False))
    if isinstance(model, BiLSTMEncoder):  # the Transformer masks attention and pooling: a gap is fine there
        with pytest.raises(ValueError, match="BiLSTMEncoder: sketch at batch index 1: valid must be a prefix mask"):
            model.init(jax.random.PRNGKey(0), holed)
    jax.eval_shape(model.init, jax.random.PRNGKey(0), holed)  # traced: shapes only
    check_batch_shape(two.replace(valid=two.valid.at[1].set(False)), "M")  # all padding: length 1, allowed


def test_point_features_zero_on_padding():
    sk = random_sketches(np.random.default_rng(3), 2, 5, [5, 3])
    f = np.asarray(point_features(sk))
    assert f.shape == (2, 5, 4)
    assert np.all(f[1, 3:] == 0)
    nan_padded = sk.replace(xy=jnp.where(sk.valid[..., None], sk.xy, np.nan))
    np.testing.assert_array_equal(np.asarray(point_features(nan_padded)), f)
    np.testing.assert_array_equal(f[..., 2] + f[..., 3], np.asarray(sk.valid, np.float32))
    assert f.dtype == np.float32 and point_features(sk.replace(xy=sk.xy.astype(jnp.bfloat16))).dtype == jnp.float32
    with jax.enable_x64(True):  # float64 points keep their precision (they were cut to float32)
        xy64 = np.asarray(sk.xy, np.float64) + 1e-12
        f64 = point_features(sk.replace(xy=jnp.asarray(xy64)))
        assert f64.dtype == jnp.float64
        np.testing.assert_array_equal(np.asarray(f64)[..., :2], np.where(np.asarray(sk.valid)[..., None], xy64, 0.0))


@pytest.mark.parametrize("size", [46, 64, 128])
def test_sketchanet_shapes_any_size(size):
    x = jnp.zeros((2, size, size))
    model = SketchANet(widths=(8, 8, 8, 16))
    v = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    out = jax.jit(model.apply)(v, x)
    assert out.shape == (2, 16) and bool(jnp.all(out >= 0))


def test_sketchanet_original_layout_at_225_and_clear_error_when_too_small():
    model = SketchANet(widths=(4, 4, 4, 8))
    x = jnp.zeros((1, 225, 225))
    v = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    _, inter = jax.jit(lambda v, x: model.apply(v, x, capture_intermediates=lambda mdl, _: mdl.name in ("conv1", "conv6")))(v, x)
    assert v["params"]["conv6"]["kernel"].shape[:2] == (7, 7)
    assert inter["intermediates"]["conv1"]["__call__"][0].shape == (1, 71, 71, 4)  # (225 - 15) / 3 + 1
    assert inter["intermediates"]["conv6"]["__call__"][0].shape == (1, 1, 1, 8)  # the paper's 1x1 "fc6"
    with pytest.raises(ValueError, match="at least 46"):
        model.init(jax.random.PRNGKey(0), jnp.zeros((1, 40, 40)))


def test_resnet18_batch_stats_update_in_training_only():
    x = jax.random.uniform(jax.random.PRNGKey(1), (4, 28, 28))
    model = ResNet18(widths=(8, 16, 16, 32))
    v = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    n_blocks = sum(1 for k in v["params"] if k.startswith("stage"))
    assert n_blocks == 8
    out, upd = jax.jit(lambda v, x: model.apply(v, x, train=True, mutable=["batch_stats"]))(v, x)
    assert out.shape == (4, 32) and bool(jnp.all(out >= 0))
    changed = jax.tree_util.tree_map(lambda a, b: bool(jnp.any(a != b)), v["batch_stats"], upd["batch_stats"])
    assert any(jax.tree_util.tree_leaves(changed))
    # eval mode uses the running statistics: a row's output does not depend on the batch
    apply = jax.jit(model.apply)
    other_rows = x.at[1:].set(jax.random.uniform(jax.random.PRNGKey(2), (3, 28, 28)))
    np.testing.assert_allclose(apply(v, other_rows)[0], apply(v, x)[0], atol=1e-6)


def test_classifier_trains_and_compiles_once():
    """A few Adam steps on a tiny BiLSTM classifier fit random labels; the step compiles once."""
    rng = np.random.default_rng(4)
    sk = random_sketches(rng, 8, 16, rng.integers(2, 17, 8))
    labels = jnp.asarray(rng.integers(0, 3, 8))
    model = Classifier(BiLSTMEncoder(hidden=16, num_layers=1, head=(16,)), num_classes=3)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), sk)["params"]
    opt = optax.adam(1e-2)
    state = opt.init(params)

    @jax.jit
    def step(params, state, sk, labels):
        def loss_fn(p):
            logits = model.apply({"params": p}, sk)
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, g = jax.value_and_grad(loss_fn)(params)
        upd, state = opt.update(g, state, params)
        return optax.apply_updates(params, upd), state, loss

    losses = []
    for _ in range(60):
        params, state, loss = step(params, state, sk, labels)
        losses.append(float(loss))
    assert np.all(np.isfinite(losses))
    assert losses[-1] < 0.25 * losses[0]
    assert step._cache_size() == 1


def test_lstm_scan_gradients_check():
    from jax.test_util import check_grads

    from sketchjax.models.bilstm import lstm_scan

    rng = np.random.default_rng(5)
    t, d, b, h = 5, 2, 2, 3
    with jax.enable_x64(True):
        proj = jnp.asarray(rng.normal(size=(t, d, b, 4 * h)))
        wh = jnp.asarray(rng.normal(size=(d, h, 4 * h)) * 0.5)
        check_grads(lambda p, u: lstm_scan(p, u, 2), (proj, wh), order=1, modes=["rev"])


def test_score_in_batches_pads_the_last_batch_and_refuses_an_empty_set():
    from sketchjax.classifier import score_in_batches

    sk = random_sketches(np.random.default_rng(5), 5, 6, [6, 3, 1, 4, 2])
    seen = []

    def fn(xy, pen, valid):
        seen.append(xy.shape[0])
        return {"n": valid.sum(-1)}

    out = score_in_batches(fn, sk.xy, sk.pen, sk.valid, batch_size=2)
    assert seen == [2, 2, 2]  # one batch size, so a jitted fn compiles once
    np.testing.assert_array_equal(out["n"], [6, 3, 1, 4, 2])
    with pytest.raises(ValueError, match="no sketches to score"):
        score_in_batches(fn, sk.xy[:0], sk.pen[:0], sk.valid[:0])
    # an audit: batch_size 0 / -1 / 2.5 were range() / index errors; valid for 4 of 5 sketches
    # scored the fifth as empty
    for bad in (0, -1, 2.5):
        with pytest.raises(ValueError, match="score_in_batches: batch_size must be an integer >= 1"):
            score_in_batches(fn, sk.xy, sk.pen, sk.valid, batch_size=bad)
    with pytest.raises(ValueError, match=r"score_in_batches: need xy \[N, T, 2\], pen and valid \[N, T\]"):
        score_in_batches(fn, sk.xy, sk.pen, sk.valid[:4])


def test_audit_a_non_finite_sketch_stays_in_its_own_row_of_a_packed_batch():
    """The packed BiLSTM reset its state at a sketch boundary by multiplying by 0, and 0 x NaN is
    NaN: a NaN point of one sketch made the features of the sketch packed after it NaN."""
    rng = np.random.default_rng(2)
    sk = random_sketches(rng, 4, 20, [5, 20, 6, 8])
    xy = np.array(sk.xy)
    xy[2, 3] = np.nan
    sk = Sketch(jnp.asarray(xy), sk.pen, sk.valid)
    for pack in (None, 0.5):
        model = BiLSTMEncoder(hidden=8, head=(6,), pack=pack)
        variables = model.init(jax.random.PRNGKey(0), sk)
        feats, state = model.apply(variables, sk, mutable=["intermediates"])
        if pack is not None:
            assert bool(state["intermediates"]["packed"][0])  # the packed path ran
        assert np.flatnonzero(~np.isfinite(np.asarray(feats)).all(axis=1)).tolist() == [2]


def test_audit_models_refuse_an_ambiguous_image_or_an_empty_head():
    """An unbatched [H, W, 1] image was read as H images of W x 1 pixels; head=() returned the
    encoder's signed state as features."""
    model = ResNet18(widths=(4, 4, 4, 4))
    variables = model.init(jax.random.PRNGKey(0), jnp.zeros((2, 32, 32)))
    for image in (jnp.zeros((32, 32, 1)), jnp.zeros((32, 32, 3))):
        with pytest.raises(ValueError, match=r"an unbatched \[H, W, C\] image\?"):
            model.apply(variables, image)
    assert model.apply(variables, jnp.zeros((2, 32, 32))).shape == (2, 4)
    sk = random_sketches(np.random.default_rng(0), 1, 8, [8])
    for encoder in (BiLSTMEncoder(hidden=8, head=()), PointTransformer(dim=8, depth=1, heads=2, max_len=8, head=())):
        with pytest.raises(ValueError, match="widths must name at least one layer"):
            encoder.init(jax.random.PRNGKey(0), sk)


@pytest.mark.parametrize("model, message", [
    # an audit: num_layers=0 trained a dense layer on the last point as a "BiLSTM", without a word
    (BiLSTMEncoder(hidden=8, num_layers=0, head=(4,)), "BiLSTMEncoder: num_layers must be an integer >= 1"),
    (BiLSTMEncoder(hidden=0, head=(4,)), "BiLSTMEncoder: hidden must be an integer >= 1"),
    (BiLSTMEncoder(hidden=8, head=(4,), dropout=1.0), r"BiLSTMEncoder: dropout must be a rate in \[0, 1\)"),
    (BiLSTMEncoder(hidden=8, head=(4, 2.5)), "head: widths entry must be an integer >= 1"),
    (PointTransformer(dim=30, heads=4, depth=1, max_len=8, head=(4,)), "PointTransformer: dim=30 must be divisible by heads=4"),
    (PointTransformer(dim=8, heads=0, depth=1, max_len=8, head=(4,)), "PointTransformer: heads must be an integer >= 1"),
    (PointTransformer(dim=8, heads=2, depth=1, max_len=8, head=(4,), dropout=-0.5), "PointTransformer: dropout must be"),
    (ResNet18(widths=(4, 4, 4)), r"ResNet18: widths must give the 4 stages' widths, got \(4, 4, 4\)"),
    (ResNet18(widths=(4, 4, 0, 4)), "ResNet18: widths entry must be an integer >= 1"),
    (SketchANet(widths=(4, 4, 4)), "SketchANet: widths must give 4 channel counts"),
    (SketchANet(dropout=1.5), "SketchANet: dropout must be a rate"),
])
def test_models_name_a_bad_architecture_setting(model, message):
    sk = random_sketches(np.random.default_rng(0), 1, 8, [8])
    inputs = jnp.zeros((1, 64, 64)) if isinstance(model, (ResNet18, SketchANet)) else sk
    with pytest.raises(ValueError, match=message):
        model.init(jax.random.PRNGKey(0), inputs)


def test_bilstm_unroll_true_is_still_accepted():
    """lax.scan's unroll=True (fully unrolled) is a speed setting the checks must not refuse."""
    sk = random_sketches(np.random.default_rng(0), 1, 6, [6])
    model = BiLSTMEncoder(hidden=4, num_layers=1, head=(4,), unroll=True)
    assert model.apply(model.init(jax.random.PRNGKey(0), sk), sk).shape == (1, 4)
    with pytest.raises(ValueError, match="unroll must be an integer >= 1"):
        BiLSTMEncoder(hidden=4, num_layers=1, head=(4,), unroll=0).init(jax.random.PRNGKey(0), sk)


def test_transformer_max_len_names_the_padded_length():
    """The message said "sketches have 12 points" for a batch of 5- and 3-point sketches padded to 12."""
    model = PointTransformer(dim=8, depth=1, heads=2, max_len=8, head=(4,))
    sk = random_sketches(np.random.default_rng(0), 2, 12, [5, 3])
    with pytest.raises(ValueError, match="the batch is padded to 12 points, more than max_len=8"):
        model.init(jax.random.PRNGKey(0), sk)
