"""DoodleNet in Flax: the TF.js reader, layer orientation against NumPy, real accuracy, errors."""
from __future__ import annotations

import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sketchjax.batching import stack_sketches
from sketchjax.formats import iter_ndjson
from sketchjax.models.doodlenet import (
    DoodleNet,
    doodlenet_class_name,
    doodlenet_classify,
    doodlenet_input,
    doodlenet_input_differentiable,
    load_doodlenet,
)
from sketchjax.models.tfjs import ModelFileError, read_tfjs_layers_model

CONVS = ["block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2"]


@pytest.fixture(scope="module")
def random_variables():
    return jax.jit(DoodleNet().init)(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28)))


@pytest.fixture(scope="module")
def doodlenet(data_file):
    return load_doodlenet(data_file("models", "doodlenet"))


@pytest.fixture(scope="module")
def real_subset(data_file, doodlenet):
    """Two simplified sketches per category (688), padded to 256 points, with class indices."""
    _, _, class_names = doodlenet
    index = {name: i for i, name in enumerate(class_names)}
    sketches, labels = [], []
    for path in sorted(data_file("quickdraw", "simplified").glob("*.ndjson")):
        for record in iter_ndjson(path, limit=2):
            sketches.append(record.sketch)
            labels.append(index[doodlenet_class_name(record.word)])
    return stack_sketches(sketches, 256), np.array(labels)


def random_sketches(rng, batch: int, t: int):
    """Random polylines on a 0-255 canvas with a few pen lifts and some padding."""
    xy = rng.uniform(0, 255, (batch, t, 2)).astype(np.float32)
    pen = (rng.uniform(size=(batch, t)) < 0.85).astype(np.float32)
    n = rng.integers(t // 2, t + 1, batch)
    valid = np.arange(t)[None, :] < n[:, None]
    return xy, pen, valid


# --- an independent NumPy DoodleNet (float64, explicit loops over offsets and positions) -----


def numpy_conv_same(x, kernel, bias):
    """Keras Conv2D (channels_last, 'same', stride 1): out[i, j] = sum_uv x[i+u-1, j+v-1] @ K[u, v]."""
    b, h, w, _ = x.shape
    kh, kw = kernel.shape[:2]
    xp = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    out = np.zeros((b, h, w, kernel.shape[3])) + bias
    for u in range(kh):
        for v in range(kw):
            out += xp[:, u : u + h, v : v + w, :] @ kernel[u, v]
    return out


def numpy_doodlenet(params, images):
    """Logits of ``images [B, 28, 28]`` with Flax-named ``params`` (NumPy, float64)."""
    p = {name: {k: np.asarray(v, np.float64) for k, v in layer.items()} for name, layer in params.items()}
    x = np.asarray(images, np.float64)[..., None]
    for i, name in enumerate(CONVS):
        x = np.maximum(numpy_conv_same(x, p[name]["kernel"], p[name]["bias"]), 0.0)
        if i % 2 == 1:  # 2x2 / stride 2 'valid' max pool
            b, h, w, c = x.shape
            x = x[:, : h // 2 * 2, : w // 2 * 2].reshape(b, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    b, h, w, c = x.shape
    flat = np.zeros((b, h * w * c))
    for r in range(h):  # Keras channels_last Flatten: row, then column, then channel
        for s in range(w):
            flat[:, (r * w + s) * c : (r * w + s + 1) * c] = x[:, r, s, :]
    hidden = np.tanh(flat @ p["hidden"]["kernel"] + p["hidden"]["bias"])
    return hidden @ p["logits"]["kernel"] + p["logits"]["bias"]


# --- the model ---------------------------------------------------------------------------------


def test_shapes_and_channel_forms(random_variables):
    model = DoodleNet()
    x = jax.random.uniform(jax.random.PRNGKey(1), (3, 28, 28))
    logits = model.apply(random_variables, x)
    assert logits.shape == (3, 345) and logits.dtype == jnp.float32
    np.testing.assert_array_equal(logits, model.apply(random_variables, x[..., None]))
    assert model.apply(random_variables, x[0]).shape == (345,)
    assert model.apply(random_variables, x.reshape(3, 1, 28, 28)).shape == (3, 1, 345)
    same, feats = model.apply(random_variables, x.reshape(3, 1, 28, 28), return_features=True)
    assert feats.shape == (3, 1, 512) and float(jnp.max(jnp.abs(feats))) <= 1.0  # tanh units
    np.testing.assert_array_equal(same[:, 0], logits)
    dense = random_variables["params"]["logits"]
    np.testing.assert_allclose(feats[:, 0] @ dense["kernel"] + dense["bias"][None, :], logits, rtol=1e-5, atol=1e-5)
    probs = doodlenet_classify(random_variables, x)
    np.testing.assert_allclose(np.sum(probs, axis=-1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="28, 28"):
        model.apply(random_variables, jnp.zeros((3, 32, 32)))
    # concrete images outside [0, 1] are refused (confident nonsense otherwise); traced ones pass
    with pytest.raises(ValueError, match=r"in \[0, 1\] .*got values in \[0\.\d+, 25\d\.\d+\] \(0-255 images: divide by 255\)"):
        model.apply(random_variables, x * 255.0)
    with pytest.raises(ValueError, match=r"got values in \[-0\.9\d+, 0\.9\d+\]$"):
        doodlenet_classify(random_variables, x * 2.0 - 1.0)
    with pytest.raises(ValueError, match=r"DoodleNet: images must be finite \(pixel values\); images is not at index 843"):
        model.apply(random_variables, x.at[1, 2, 3].set(jnp.nan))
    assert jax.jit(model.apply)(random_variables, x * 2.0 - 1.0).shape == (3, 345)
    shapes = jax.tree_util.tree_map(jnp.shape, random_variables["params"])
    assert shapes["block1_conv1"]["kernel"] == (3, 3, 1, 16) and shapes["hidden"]["kernel"] == (576, 512)


def test_first_conv_is_keras_cross_correlation(random_variables):
    # An asymmetric input (a single bright pixel off centre) exposes a flipped kernel.
    x = np.zeros((2, 28, 28), np.float32)
    x[0, 5, 9] = 1.0
    x[1] = np.random.default_rng(0).uniform(size=(28, 28))
    _, state = DoodleNet().apply(random_variables, x, capture_intermediates=True, mutable=["intermediates"])
    got = np.asarray(state["intermediates"]["block1_conv1"]["__call__"][0])
    layer = random_variables["params"]["block1_conv1"]
    kernel64 = np.asarray(layer["kernel"], np.float64)
    want = numpy_conv_same(x[..., None].astype(np.float64), kernel64, np.asarray(layer["bias"], np.float64))
    np.testing.assert_allclose(got, want, atol=1e-5)
    # The bright pixel at (5, 9) reaches output (5 - u + 1, 9 - v + 1) through kernel tap (u, v).
    kernel = np.asarray(layer["kernel"])[:, :, 0, 0]
    np.testing.assert_allclose(got[0, 4, 8, 0] - layer["bias"][0], kernel[2, 2], atol=1e-6)


def test_forward_matches_numpy_reference(random_variables):
    x = np.random.default_rng(2).uniform(size=(4, 28, 28)).astype(np.float32)
    got = np.asarray(DoodleNet().apply(random_variables, x))
    np.testing.assert_allclose(got, numpy_doodlenet(random_variables["params"], x), rtol=1e-4, atol=1e-4)


def test_input_recipe_jits_once_vmaps_and_differentiates(random_variables):
    rng = np.random.default_rng(3)
    xy, pen, valid = random_sketches(rng, 4, 24)
    img = doodlenet_input(xy, pen, valid)
    assert img.shape == (4, 28, 28) and img.dtype == jnp.float32
    assert 0.0 <= float(img.min()) and float(img.max()) <= 1.0 and float(img.max()) > 0.5
    mapped = jax.vmap(lambda a, b, c: doodlenet_input(a, b, c))(xy, pen, valid)
    np.testing.assert_allclose(np.asarray(mapped), np.asarray(img), atol=1e-6)
    # The two recipes draw the same line: the soft raster is close to the Bresenham one.
    soft = np.asarray(doodlenet_input_differentiable(xy, pen, valid))
    assert soft.shape == (4, 28, 28)
    # bad points are named, as by every renderer (an eager call returned a finite raster)
    bad = np.array(xy, dtype=np.float32)
    bad[2, 1, 0] = np.nan
    for fn in (doodlenet_input, doodlenet_input_differentiable):
        with pytest.raises(ValueError, match=rf"{fn.__name__}: sketch at batch index 2: non-finite coordinate .* at point 1"):
            fn(bad, pen, valid)
    with pytest.raises(ValueError, match="canvas"):
        doodlenet_input(xy, pen, valid, canvas=0)
    assert np.corrcoef(soft.ravel(), np.asarray(img).ravel())[0, 1] > 0.95

    model = DoodleNet()
    step = jax.jit(lambda v, a, b, c: model.apply(v, doodlenet_input(a, b, c)))
    for k in range(3):
        step(random_variables, xy + k, pen, valid).block_until_ready()
    assert step._cache_size() == 1

    def score(points):
        return model.apply(random_variables, doodlenet_input_differentiable(points, pen, valid))[:, 7].sum()

    grad = np.asarray(jax.jit(jax.grad(score))(jnp.asarray(xy)))
    assert np.isfinite(grad).all()
    assert np.abs(grad[valid]).sum() > 0 and np.abs(grad[~valid]).sum() == 0


# --- the pre-trained weights -------------------------------------------------------------------


@pytest.mark.data
def test_pretrained_forward_matches_numpy_on_real_sketches(doodlenet, real_subset, data_root):
    model, variables, class_names = doodlenet
    assert load_doodlenet(data_root)[2] == class_names  # a data root finds models/doodlenet/
    batch, _ = real_subset
    images = np.asarray(doodlenet_input(batch.xy[:6], batch.pen[:6], batch.valid[:6]))
    got = np.asarray(model.apply(variables, images))
    np.testing.assert_allclose(got, numpy_doodlenet(variables["params"], images), rtol=1e-4, atol=1e-4)
    assert len(class_names) == 345 and class_names[0] == "flashlight" and "zigzag" in class_names


@pytest.mark.data
def test_tfjs_weights_equal_keras_h5(data_file):
    h5py = pytest.importorskip("h5py", reason="h5py (test extra) reads the Keras .h5 reference")
    tfjs = read_tfjs_layers_model(data_file("models", "doodlenet"))
    with h5py.File(data_file("models", "doodlenet", "doodleNet-model.h5"), "r") as f:
        group = f["model_weights"]
        h5 = {}
        for layer in group.attrs["layer_names"]:
            for name in group[layer].attrs["weight_names"]:
                name = name.decode() if isinstance(name, bytes) else name
                h5[name.removesuffix(":0")] = group[layer][name][()]
    assert list(h5) == list(tfjs.weights)
    for name, value in h5.items():
        np.testing.assert_array_equal(tfjs.weights[name], value, err_msg=name)


@pytest.mark.slow  # ~17 s; the forward pass is pinned against NumPy by test_pretrained_forward_matches_numpy_on_real_sketches
@pytest.mark.data
def test_accuracy_on_two_sketches_per_category(doodlenet, real_subset):
    model, variables, _ = doodlenet
    batch, labels = real_subset
    predict = jax.jit(lambda a, b, c: model.apply(variables, doodlenet_input(a, b, c)))
    predict_soft = jax.jit(lambda a, b, c: model.apply(variables, doodlenet_input_differentiable(a, b, c)))
    for fn, floor in ((predict, 0.6), (predict_soft, 0.6)):
        logits = np.concatenate(
            [np.asarray(fn(batch.xy[i : i + 172], batch.pen[i : i + 172], batch.valid[i : i + 172]))
             for i in range(0, len(labels), 172)]
        )
        top1 = float(np.mean(np.argmax(logits, axis=1) == labels))
        # Measured 72.2% (Bresenham) and 71.8% (distance field) on these 688 sketches.
        assert top1 >= floor, top1


# --- the TF.js reader --------------------------------------------------------------------------


def write_model(directory, weights, data: bytes, split: int | None = None, topology=None, **extra):
    """A TF.js layers model in ``directory``: ``data`` in one shard, or two split at ``split``."""
    directory.mkdir(parents=True, exist_ok=True)
    chunks = [data] if split is None else [data[:split], data[split:]]
    paths = [f"group1-shard{i + 1}of{len(chunks)}.bin" for i in range(len(chunks))]
    for path, chunk in zip(paths, chunks):
        (directory / path).write_bytes(chunk)
    model = {
        "format": "layers-model",
        "modelTopology": topology or {"model_config": {"class_name": "Sequential", "config": {"layers": []}}},
        "weightsManifest": [{"paths": paths, "weights": weights}],
        **extra,
    }
    (directory / "model.json").write_text(json.dumps(model))
    return directory


def test_reader_decodes_every_dtype_across_shards(tmp_path):
    weights = [
        {"name": "a/kernel", "shape": [2, 3], "dtype": "float32"},
        {"name": "b/index", "shape": [2], "dtype": "int32"},
        {"name": "c/q8", "shape": [3], "dtype": "float32", "quantization": {"dtype": "uint8", "scale": 0.5, "min": -1.0}},
        {"name": "d/q16", "shape": [2], "dtype": "float32", "quantization": {"dtype": "uint16", "scale": 0.01, "min": 2.0}},
        {"name": "e/half", "shape": [2], "dtype": "float32", "quantization": {"dtype": "float16"}},
        {"name": "f/qint", "shape": [3], "dtype": "int32", "quantization": {"dtype": "uint8", "scale": 0.4, "min": 0.0}},
        {"name": "g/mask", "shape": [2], "dtype": "bool"},
        {"name": "h/scalar", "shape": [], "dtype": "float32"},
    ]
    a = np.arange(6, dtype="<f4").reshape(2, 3) - 2.5
    data = b"".join([
        a.tobytes(), np.array([-7, 8], "<i4").tobytes(), np.array([0, 1, 255], "u1").tobytes(),
        np.array([0, 1000], "<u2").tobytes(), np.array([1.5, -2.25], "<f2").tobytes(),
        np.array([1, 2, 3], "u1").tobytes(), bytes([1, 0]), np.array(3.25, "<f4").tobytes(),
    ])
    model = read_tfjs_layers_model(write_model(tmp_path / "m", weights, data, split=10))  # 'a' straddles
    w = model.weights
    assert list(w) == [s["name"] for s in weights] and model.layers == []
    np.testing.assert_array_equal(w["a/kernel"], a)
    assert w["b/index"].dtype == np.int32 and w["b/index"].tolist() == [-7, 8]
    np.testing.assert_allclose(w["c/q8"], [-1.0, -0.5, 126.5])
    np.testing.assert_allclose(w["d/q16"], [2.0, 12.0], rtol=1e-6)
    assert w["e/half"].dtype == np.float32 and w["e/half"].tolist() == [1.5, -2.25]
    assert w["f/qint"].dtype == np.int32 and w["f/qint"].tolist() == [0, 1, 1]
    assert w["g/mask"].tolist() == [True, False] and w["h/scalar"].shape == ()


ONE_WEIGHT = [{"name": "w", "shape": [4], "dtype": "float32"}]


def quantised(spec):
    return [{"name": "w", "shape": [4], "dtype": "float32", "quantization": spec}]


@pytest.mark.parametrize(
    "weights, data, problem",
    [
        (ONE_WEIGHT, bytes(12), r"too short \(12 bytes\).*'w'.*truncated"),
        (ONE_WEIGHT, bytes(20), "4 bytes more than the 16"),
        ([{"name": "w", "shape": [4], "dtype": "complex64"}], bytes(16), "unknown dtype 'complex64'"),
        (quantised({"dtype": "int4"}), bytes(16), "unknown quantization"),
        (quantised({"dtype": "uint8"}), bytes(4), "needs numeric 'scale' and 'min'"),
        ([{"name": "w", "shape": [2, -2], "dtype": "float32"}], bytes(16), "shape must be a list of non-negative"),
        (ONE_WEIGHT * 2, bytes(32), "'w' appears twice"),
    ],
)
def test_reader_rejects_inconsistent_manifests(tmp_path, weights, data, problem):
    write_model(tmp_path, weights, data)
    with pytest.raises(ModelFileError, match=problem):
        read_tfjs_layers_model(tmp_path)


def test_reader_names_missing_and_corrupt_files(tmp_path):
    with pytest.raises(ModelFileError, match=r"model\.json: model file not found"):
        read_tfjs_layers_model(tmp_path)
    write_model(tmp_path, ONE_WEIGHT, bytes(16))
    (tmp_path / "group1-shard1of1.bin").unlink()
    with pytest.raises(ModelFileError, match="group1-shard1of1.bin: weight shard .* not found"):
        read_tfjs_layers_model(tmp_path)
    (tmp_path / "model.json").write_text('{"format": "layers-model", "modelTopology": {')
    with pytest.raises(ModelFileError, match=r"model\.json: invalid JSON"):
        read_tfjs_layers_model(tmp_path / "model.json")
    write_model(tmp_path, ONE_WEIGHT, bytes(16), format="graph-model")
    with pytest.raises(ModelFileError, match="'graph-model' is not a TF.js layers-model"):
        read_tfjs_layers_model(tmp_path)


@pytest.fixture
def model_copy(data_file, tmp_path):
    """A writable copy of the DoodleNet files (in the test's temporary directory)."""
    return shutil.copytree(data_file("models", "doodlenet"), tmp_path / "doodlenet",
                           ignore=shutil.ignore_patterns("*.h5"))


@pytest.mark.data
def test_load_doodlenet_reports_corrupt_files(model_copy):
    model_json = model_copy / "model.json"
    text = model_json.read_text()
    model_json.write_text(text[: len(text) // 2])
    with pytest.raises(ModelFileError, match=r"model\.json: invalid JSON"):
        load_doodlenet(model_copy)
    model_json.write_text(text)

    shard = model_copy / "group1-shard1of1.bin"
    data = shard.read_bytes()
    shard.write_bytes(data[:-1000])
    with pytest.raises(ModelFileError, match=r"group1-shard1of1\.bin: too short .*'dense_1/bias'"):
        load_doodlenet(model_copy)
    shard.write_bytes(data)

    topology = json.loads(text)
    topology["modelTopology"]["model_config"]["config"]["layers"][3]["config"]["padding"] = "valid"
    model_json.write_text(json.dumps(topology))
    with pytest.raises(ModelFileError, match=r"layer 3 \(conv2d_2, Conv2D\) has padding='valid'"):
        load_doodlenet(model_copy)

    # Absent keys mean Keras's defaults ('valid' padding, linear activation): not DoodleNet.
    for key, layer, expect in (("padding", 4, "padding='valid'"), ("activation", 11, "activation='linear'")):
        topology = json.loads(text)
        del topology["modelTopology"]["model_config"]["config"]["layers"][layer]["config"][key]
        model_json.write_text(json.dumps(topology))
        with pytest.raises(ModelFileError, match=rf"layer {layer} \(\w+, \w+\) has {expect} \(absent: Keras's default\)"):
            load_doodlenet(model_copy)
    for edit, problem in (
        (lambda layers: layers[9]["config"].update(rate=1.5), r"layer 9 \(dropout, Dropout\) has rate=1\.5"),
        (lambda layers: layers[3]["config"].pop("name"), r"layer 3 \(Conv2D\) has no name"),
        (lambda layers: layers[0]["config"].update(batch_input_shape=28), r"input shape 28 is not"),
    ):
        topology = json.loads(text)
        edit(topology["modelTopology"]["model_config"]["config"]["layers"])
        model_json.write_text(json.dumps(topology))
        with pytest.raises(ModelFileError, match=problem):
            load_doodlenet(model_copy)
    manifest = json.loads(text)
    manifest["weightsManifest"][0]["paths"] = [None]
    model_json.write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match=r"'paths' must be non-empty file names"):
        load_doodlenet(model_copy)
    model_json.write_text(text)

    shard.write_bytes(data[:-4] + b"\xff\xff\xff\xff")  # the last bias entry becomes NaN
    with pytest.raises(ModelFileError, match=r"weight 'dense_1/bias' has 1 non-finite value"):
        load_doodlenet(model_copy)
    shard.write_bytes(data)

    manifest = json.loads(text)
    manifest["weightsManifest"][0]["weights"][1]["name"] = "conv2d/offset"
    model_json.write_text(json.dumps(manifest))
    with pytest.raises(ModelFileError, match=r"missing weights \['conv2d/bias'\]; unused weights \['conv2d/offset'\]"):
        load_doodlenet(model_copy)

    # A manifest with a consistent byte count but shapes that do not fit the network.
    swapped = json.loads(text)
    swapped["weightsManifest"][0]["weights"][12]["shape"] = [512, 576]
    model_json.write_text(json.dumps(swapped))
    with pytest.raises(ModelFileError, match=r"wrong shapes: dense/kernel \[512, 576\] \(expected \[576, 512\]\)"):
        load_doodlenet(model_copy)
    model_json.write_text(text)

    (model_copy / "class_names.txt").write_text("cat\ndog\n")
    with pytest.raises(ModelFileError, match="expected 345 distinct class names, got 2"):
        load_doodlenet(model_copy)
    (model_copy / "class_names.txt").write_bytes(b"\xff\xfe cat")
    with pytest.raises(ModelFileError, match=r"class_names\.txt: cannot read the class names"):
        load_doodlenet(model_copy)


# --- DoodleNet as a reference scorer (eval/quality.py) -------------------------------------------


def test_linear_head_scores_by_hand():
    from sketchjax.classifier import linear_head_scores

    feats = jnp.array([[3.0, 4.0], [0.0, 2.0]])
    kernel = jnp.array([[1.0, 0.0, 1.0], [0.0, 2.0, 1.0]])  # class columns (1, 0), (0, 2), (1, 1)
    logits = feats @ kernel + jnp.array([[0.0, 0.0, 10.0]])  # the bias decides the prediction ...
    out = linear_head_scores(logits, feats, kernel)
    np.testing.assert_array_equal(out["pred"], [2, 2])
    np.testing.assert_allclose(out["norm"], [5.0, 2.0])
    np.testing.assert_allclose(out["cos"], [[0.6, 0.8, 7 / (5 * 2**0.5)], [0.0, 1.0, 2**-0.5]], rtol=1e-6)
    np.testing.assert_allclose(out["cos_pred"], [7 / (5 * 2**0.5), 2**-0.5], rtol=1e-6)  # ... not the cosines


@pytest.mark.data
def test_doodlenet_reference_scores_over_the_given_categories(doodlenet, data_file):
    from sketchjax.classifier import DoodleNetReference

    _, variables, class_names = doodlenet
    categories = ["cat", "The Eiffel Tower", "dog", "car"]
    ref = DoodleNetReference(categories, root=data_file("models", "doodlenet"))
    np.testing.assert_array_equal([class_names[i] for i in ref.class_index], ["cat", "The_Eiffel_Tower", "dog", "car"])
    cats = [r.sketch for r in iter_ndjson(data_file("quickdraw", "simplified", "cat.ndjson"), limit=12)]
    batch = stack_sketches(cats, 128)
    out = ref.score_arrays(batch.xy, batch.pen, batch.valid, batch_size=8)  # a padded last batch
    full = np.asarray(DoodleNet().apply(variables, ref.recipe.raster(batch.xy, batch.pen, batch.valid)))
    np.testing.assert_allclose(out["logits"], full[:, ref.class_index], rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(out["pred"], np.argmax(out["logits"], axis=1))
    probs = np.exp(out["logits"] - out["logits"].max(1, keepdims=True))
    np.testing.assert_allclose(out["prob_pred"], (probs / probs.sum(1, keepdims=True)).max(1), rtol=1e-5)
    assert np.mean(out["pred"] == 0) >= 0.75  # real cats, mostly recognised among four classes
    # the same interface as a trained run's: sketches in, the same scores as their arrays
    np.testing.assert_allclose(ref.score_sketches(cats, batch_size=8)["logits"], out["logits"], rtol=1e-5, atol=1e-5)
    feats = ref.feature_arrays(batch.xy, batch.pen, batch.valid, batch_size=8)
    assert feats.shape == (12, 512)
    np.testing.assert_allclose(out["norm"], np.linalg.norm(feats, axis=1), rtol=1e-5)
    # the pre-trained features' norms sit inside the DoodleNet GACL configs' [l_a, u_a] = [8, 22]
    assert 8.0 < out["norm"].min() and out["norm"].max() < 22.0, out["norm"]
    # a second reference over other categories of the same size reuses the compiled program
    # (the weights and class rows are its arguments, not constants folded into it)
    from sketchjax import classifier

    compiled = classifier._doodlenet_scores_program._cache_size()
    other = DoodleNetReference(["dog", "car", "cat", "bus"], root=data_file("models", "doodlenet"))
    swapped = other.score_arrays(batch.xy, batch.pen, batch.valid, batch_size=8)
    assert classifier._doodlenet_scores_program._cache_size() == compiled
    np.testing.assert_allclose(swapped["logits"][:, [2, 0, 1]], out["logits"][:, [0, 2, 3]], rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"no class for \['mokey'\]"):
        DoodleNetReference(["cat", "mokey"], root=data_file("models", "doodlenet"))
