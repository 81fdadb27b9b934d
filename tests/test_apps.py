"""GACL applications (sketchjax.apps)."""
from __future__ import annotations

import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from sketchjax.apps import pseudo_label as pl
from sketchjax.gacl import spearman


def test_gaussian_mixture_layouts_and_background():
    x, comp, centres = pl.gaussian_mixture(jax.random.PRNGKey(0), 50, "grid", std=0.05, background=0.2)
    assert x.shape == (9 * 50 + 90, 2) and int((comp == -1).sum()) == 90
    np.testing.assert_allclose(np.sort(np.unique(np.asarray(centres).round(6))), [-1.0, 0.0, 1.0])
    own = np.asarray(comp) >= 0
    d = np.linalg.norm(np.asarray(x)[own] - np.asarray(centres)[np.asarray(comp)[own]], axis=-1)
    assert d.mean() == pytest.approx(0.05 * np.sqrt(np.pi / 2), rel=0.15)  # Rayleigh mean
    _, _, circle = pl.gaussian_mixture(jax.random.PRNGKey(0), 5, "circle")
    np.testing.assert_allclose(np.linalg.norm(np.asarray(circle), axis=-1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="square number"):
        pl.gaussian_mixture(jax.random.PRNGKey(0), 5, "grid", k=8)


def test_boundary_distance_by_hand():
    centres = jnp.array([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0]])
    x = jnp.array([[0.5, 0.0], [1.0, 1.0], [0.0, 1.5], [-3.0, 0.0]])
    # point 0: bisector with c1 at x = 1 (0.5 away), with c2 at y = 2 (2 away)
    # point 1: on the c0/c1 bisector; point 2: 0.5 from y = 2; point 3: 4 from x = 1 but 2 from y = 2
    np.testing.assert_allclose(np.asarray(pl.boundary_distance(x, centres)), [0.5, 0.0, 0.5, 2.0], atol=1e-6)


def test_kmeans_recovers_separated_clusters():
    x, comp, _ = pl.gaussian_mixture(jax.random.PRNGKey(3), 60, "grid", std=0.05)
    labels, centres = pl.kmeans(jax.random.PRNGKey(0), x, 9)
    table = np.zeros((9, 9), int)
    np.add.at(table, (np.asarray(labels), np.asarray(comp)), 1)
    assert (table.max(axis=1) == table.sum(axis=1)).all() and (table > 0).sum() == 9  # a bijection


def test_pseudo_label_gacl_scores_track_the_decision_boundary():
    x, comp, centres = pl.gaussian_mixture(jax.random.PRNGKey(1000), 120, "grid", std=0.05, background=0.1)
    out = pl.train_pseudo_label_gacl(jax.random.PRNGKey(0), x, pl.PseudoLabelConfig(epochs=20, batch_size=128))
    q = np.asarray(out["q"])
    assert np.isfinite(q).all() and q.shape == (x.shape[0],)
    assert len(out["history"]) == 20 and out["history"][-1]["loss"] < out["history"][0]["loss"]
    every = pl.PseudoLabelConfig().reassign_every  # None marks an epoch without a reassignment (0.0 hid both)
    assert [h["epoch"] for h in out["history"] if h["relabelled"] is not None] == list(range(every, 20, every))
    # G §6: q is higher farther from the decision boundary (measured 0.6-0.7 at full size)
    assert float(spearman(out["q"], pl.boundary_distance(x, centres))) > 0.3


# ---- rare-and-hard vs malicious (q_max+) ---------------------------------------------------

def _bad_points_score(xy, pen, valid):
    """A toy quality score: minus the number of points right of x = 100 (the "noise" there)."""
    return -jnp.sum((xy[..., 0] > 100) & valid, axis=-1).astype(jnp.float32)


def _sketch(strokes, t=32):
    from sketchjax.batching import pad_sketch
    from sketchjax.formats import from_strokes

    s = pad_sketch(from_strokes([np.asarray(p, float) for p in strokes]), t)
    return jnp.asarray(s.xy, jnp.float32), jnp.asarray(s.pen, jnp.float32), jnp.asarray(s.valid)


def test_q_max_plus_finds_the_stroke_to_remove():
    from sketchjax.apps.rhs import classify_rhs, q_max_plus, remove_each_stroke

    good = [[0, 0], [10, 0], [10, 10]]
    one_bad = _sketch([good, [[150, 5], [160, 8], [170, 2]], [[20, 20], [30, 30]]])
    two_bad = _sketch([[[120, 0], [130, 0]], good, [[150, 5], [160, 8], [170, 2]]])
    single = _sketch([[[150, 5], [160, 8]]])
    batch = [jnp.stack(a) for a in zip(one_bad, two_bad, single)]
    q, q1, removed1 = q_max_plus(_bad_points_score, *batch, max_strokes=8, rounds=1)
    np.testing.assert_array_equal(np.asarray(q), [-3, -5, -2])
    np.testing.assert_array_equal(np.asarray(q1[:, 0]), [0, -2, -2])  # one removal; the lone stroke stays
    np.testing.assert_array_equal(np.asarray(removed1[:, 0]), [1, 2, -1])
    _, q2, removed2 = jax.jit(lambda *a: q_max_plus(_bad_points_score, *a, max_strokes=8, rounds=2))(*batch)
    np.testing.assert_array_equal(np.asarray(q2), [[0, 0], [-2, 0], [-2, -2]])
    assert int(removed2[1, 1]) == 0  # after the 3-point stroke, the first stroke goes
    np.testing.assert_array_equal(np.asarray(classify_rhs(q, q2[:, -1], q_tau=-1.0, q_max=-0.5)), [1, 1, 2])
    _, _, _, present = remove_each_stroke(*single, 8)
    assert not bool(present.any())


# ---- label cleansing -----------------------------------------------------------------------

def test_inject_label_noise_changes_exactly_the_rate_to_other_classes():
    from sketchjax.apps.cleansing import inject_label_noise

    labels = jnp.arange(1000) % 7
    noisy, flipped = inject_label_noise(jax.random.PRNGKey(0), labels, 0.4, 7)
    assert int(flipped.sum()) == 400
    assert bool((noisy[flipped] != labels[flipped]).all()) and bool((noisy[~flipped] == labels[~flipped]).all())
    assert set(np.unique(np.asarray(noisy[flipped]))) == set(range(7))  # spread over the classes
    same, none = inject_label_noise(jax.random.PRNGKey(0), labels, 0.0, 7)
    assert not bool(none.any()) and bool((same == labels).all())
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        inject_label_noise(jax.random.PRNGKey(0), labels, 1.5, 7)
    for bad in (7.5, True):  # 3.5 classes gave noisy labels of class 3
        with pytest.raises(ValueError, match="inject_label_noise: num_classes must be an integer >= 1"):
            inject_label_noise(jax.random.PRNGKey(0), labels, 0.4, bad)


def test_flag_rule_and_precision_recall_curve():
    from sketchjax.apps.cleansing import flag_suspicious, label_angles, precision_recall, suspicion_curve

    cos = jnp.array([[1.0, 0.0], [0.0, 1.0], [0.5, 0.5]])
    np.testing.assert_allclose(np.asarray(label_angles(cos, jnp.array([0, 0, 1]))),
                               [0.0, np.pi / 2, np.pi / 3], atol=2e-3)
    q = jnp.array([0.8, 0.8, 0.3, 0.5])
    theta = jnp.array([0.1, 1.5, 0.1, 1.5])
    np.testing.assert_array_equal(np.asarray(flag_suspicious(q, theta, 0.7, 1.0, 0.35)), [False, True, True, False])
    assert precision_recall([True, True, False], [True, False, True]) == (0.5, 0.5)
    rng = np.random.default_rng(0)
    positive = rng.random(500) < 0.3
    theta = np.where(positive, rng.normal(1.4, 0.1, 500), rng.normal(0.8, 0.1, 500))  # separable angles
    curve = suspicion_curve(rng.random(500), theta, positive)
    assert curve["best_f1"] > 0.95 and curve["recall_at_p90"] > 0.95
    assert curve["recall"][0] <= curve["recall"][-1] == 1.0  # thresholds from strict to lenient


def test_suspicion_curve_best_f1_and_recall_at_p90_are_exact():
    """Every threshold the rule can use, not a quantile grid: here the largest angle is clean
    and the next 59 hold 57 noisy labels — the 101-point grid jumped from 1 flag to 69 and
    reported recall 0 at precision 0.9 (exact: 57 / 687)."""
    from sketchjax.apps.cleansing import flag_suspicious, precision_recall, suspicion_curve

    rng = np.random.default_rng(3)
    n, n_pos = 6874, 687
    positive = np.zeros(n, bool)
    positive[1:58] = True
    positive[rng.choice(np.arange(60, n), n_pos - 57, replace=False)] = True
    theta = np.empty(n)
    theta[:60] = np.linspace(3.0, 2.0, 60)  # sample 0 (clean) has the largest angle
    theta[60:] = rng.uniform(0.0, 1.9, n - 60)
    theta[100:110] = theta[99]  # a tie group
    q = rng.random(n)
    curve = suspicion_curve(q, theta, positive)
    assert curve["recall_at_p90"] == pytest.approx(57 / n_pos)
    # brute force over every threshold, also with the q conditions of the rule
    for qh, ql in ((0.0, 0.0), (0.5, 0.02)):
        q_high = np.quantile(q, qh) if qh else -np.inf
        q_low = np.quantile(q, ql) if ql else -np.inf
        # the rule written out in NumPy (flag_suspicious per threshold took ~15 s of eager calls)
        stats = [precision_recall(((q >= q_high) & (theta >= t)) | (q <= q_low), positive)
                 for t in np.r_[np.inf, np.unique(theta)]]
        f1 = [2 * p * r / (p + r) if p + r > 0 else 0.0 for p, r in stats]
        p90 = [r for p, r in stats if p >= 0.9]
        curve = suspicion_curve(q, theta, positive, q_high_quantile=qh, q_low_quantile=ql)
        assert curve["best_f1"] == pytest.approx(max(f1))
        assert curve["recall_at_p90"] == pytest.approx(max(p90, default=0.0))
        flags = np.asarray(flag_suspicious(q, theta, q_high, curve["best_f1_theta"], q_low))
        p, r = precision_recall(flags, positive)
        assert 2 * p * r / (p + r) == pytest.approx(curve["best_f1"])


# ---- IQA -----------------------------------------------------------------------------------

def test_rating_bins_centres_and_expected_rating():
    from sketchjax.apps.iqa import bin_centres, expected_rating, rating_bins

    np.testing.assert_array_equal(np.asarray(rating_bins([0.0, 0.249, 0.25, 0.999, 1.0, 7.0, -1.0], 4, 0.0, 1.0)),
                                  [0, 0, 1, 3, 3, 3, 0])
    np.testing.assert_allclose(np.asarray(bin_centres(4, 1.0, 5.0)), [1.5, 2.5, 3.5, 4.5])
    cos = jnp.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.5, 0.5]])
    np.testing.assert_allclose(np.asarray(expected_rating(cos, 64.0, bin_centres(4, 1.0, 5.0))), [1.5, 4.0], atol=1e-4)
    for lo, hi in ((1.0, 1.0), (0.0, np.inf), (np.nan, 1.0)):  # an infinite range put every rating in bin 0
        with pytest.raises(ValueError, match="rating_bins: need a finite rating range lo < hi"):
            rating_bins([0.5], 4, lo, hi)
    with pytest.raises(ValueError, match=r"expected_rating: need cos \[..., N\] and N bin centres, got shapes \(2, 4\)"):
        expected_rating(cos, 64.0, bin_centres(3, 1.0, 5.0))
    for bad in (0, 2.5):
        with pytest.raises(ValueError, match="n_bins must be an integer >= 1"):
            rating_bins([0.5], bad, 0.0, 1.0)
    # an audit: float32 arithmetic put 19 of the 101 two-decimal ratings that sit on the edges
    # of 100 bins over [1, 5] (KADID-style DMOS) one bin low (1.04 -> 0); also float32 input
    edges = np.round(1.0 + 0.04 * np.arange(101), 2)
    for dtype in (np.float64, np.float32):
        np.testing.assert_array_equal(np.asarray(rating_bins(edges.astype(dtype), 100, 1.0, 5.0)),
                                      np.minimum(np.arange(101), 99))
    # just below an edge (more than the tolerance) stays in the bin below
    assert int(rating_bins([1.04 - 0.04 * 0.01], 100, 1.0, 5.0)[0]) == 0


def test_cleansing_flags_and_labels_must_be_boolean():
    """An audit: a score passed as flags counted every nonzero entry as flagged."""
    from sketchjax.apps.cleansing import precision_recall, suspicion_curve, threshold_sweep

    with pytest.raises(ValueError, match=r"precision_recall: flagged must be boolean \(or 0/1\), got values such as \[0.2, 0.7\]"):
        precision_recall(np.array([0.2, 0.7, 0.0]), np.array([1, 0, 0]))
    with pytest.raises(ValueError, match="precision_recall: positive must be boolean"):
        precision_recall(np.array([True, False]), np.array([2, 0]))
    with pytest.raises(ValueError, match="threshold_sweep: positive must be boolean"):
        threshold_sweep(np.array([0.1, 0.2]), np.array([0.5, 1.0]))
    with pytest.raises(ValueError, match="threshold_sweep: always must be boolean"):
        threshold_sweep(np.array([0.1, 0.2]), np.array([True, False]), always=np.array([0.0, 3.0]))
    with pytest.raises(ValueError, match="suspicion_curve: positive must be boolean"):
        suspicion_curve(np.array([0.5, 0.6]), np.array([10.0, 20.0]), np.array([0.3, 1.0]))
    assert precision_recall(np.array([1, 0, 1]), np.array([1, 1, 0])) == (0.5, 0.5)  # 0/1 integers are flags


@pytest.fixture
def iqa_folder(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    names = [f"img_{i}.png" for i in range(5)]
    for i, name in enumerate(names):
        Image.fromarray((rng.random((20, 30, 3)) * 255 * (i + 1) / 5).astype(np.uint8)).save(tmp_path / name)
    return tmp_path, names


def test_load_iqa_folder_reads_koniq_kadid_and_tid_layouts(iqa_folder):
    from sketchjax.apps.iqa import load_iqa_folder

    folder, names = iqa_folder
    (folder / "koniq.csv").write_text("image_name,c1,MOS,SD\n" + "".join(f"{n},1,{i + 1}.5,0.2\n" for i, n in enumerate(names)))
    images, mos, got = load_iqa_folder(folder, folder / "koniq.csv", size=16)
    assert images.shape == (5, 16, 16) and got == names and 0.0 <= images.min() <= images.max() <= 1.0
    np.testing.assert_allclose(mos, [1.5, 2.5, 3.5, 4.5, 5.5])
    assert images[4].mean() > images[0].mean()  # brighter file, brighter array: the right file per row
    (folder / "dmos.csv").write_text("dist_img,ref_img,dmos,var\n" + "".join(f"{n},r.png,{i},0\n" for i, n in enumerate(names)))
    _, dmos, _ = load_iqa_folder(folder, folder / "dmos.csv", size=8, grayscale=False, higher_is_better=False)
    np.testing.assert_allclose(dmos, [0, -1, -2, -3, -4])
    (folder / "mos_with_names.txt").write_text("".join(f"{i * 0.5} {n}\n" for i, n in enumerate(names)))
    rgb, tid, _ = load_iqa_folder(folder, folder / "mos_with_names.txt", size=8, grayscale=False, limit=3)
    assert rgb.shape == (3, 8, 8, 3) and tid.tolist() == [0.0, 0.5, 1.0]


def test_load_iqa_folder_reads_16_bit_images_by_their_range_and_refuses_float_ones(tmp_path):
    # a 16-bit PNG of 40000 read as 1.0 (convert("L") clips), a float TIFF of 0.5 as 0.0
    from PIL import Image

    from sketchjax.apps.iqa import IQAFileError, load_iqa_folder

    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(tmp_path / "deep.png")
    Image.fromarray(np.full((8, 8), 100, np.uint8)).save(tmp_path / "plain.png")
    (tmp_path / "mos.csv").write_text("image_name,MOS\ndeep.png,3\nplain.png,2\n")
    assert Image.open(tmp_path / "deep.png").mode.startswith("I;16")
    for grayscale, shape in ((True, (2, 4, 4)), (False, (2, 4, 4, 3))):
        images, _, _ = load_iqa_folder(tmp_path, tmp_path / "mos.csv", size=4, grayscale=grayscale)
        assert images.shape == shape and images.dtype == np.float32
        np.testing.assert_allclose(images[0], 40000 / 65535, rtol=1e-5)
        np.testing.assert_allclose(images[1], 100 / 255, rtol=1e-6)
    Image.fromarray(np.full((8, 8), 0.5, np.float32)).save(tmp_path / "float.tiff")
    (tmp_path / "mos.csv").write_text("image_name,MOS\nfloat.tiff,3\n")
    with pytest.raises(IQAFileError, match=r"mos.csv:2: image .*float.tiff has PIL mode 'F'"):
        load_iqa_folder(tmp_path, tmp_path / "mos.csv", size=4)


@pytest.mark.parametrize("content, message", [
    ("image_name,MOS\nimg_0.png,abc\n", "koniq.csv:2: rating 'abc' of 'img_0.png' is not a number"),
    ("image_name,MOS\nmissing.png,3\n", "missing.png not found"),
    ("picture,quality\nimg_0.png,3\n", "names no image column"),
    ("3.0 img_0.png extra\n", "expected '<score> <image name>'"),
    ("image_name,MOS\nimg_0.png,nan\n", "is nan"),
    ("image_name,MOS\nimg_0.png,1e39\n", r"koniq.csv:2: rating '1e39' of 'img_0.png' is beyond float32"),  # was inf
    ("MOS,image_name\n3\n", "koniq.csv:2: 1 fields, the header has 2"),  # a short row
    ("image_name,MOS\nimg_0.png,3,7\n", "koniq.csv:2: 3 fields, the header has 2"),
    ("image_name,MOS\nimg_0.png,3\n ,4\n", "koniq.csv:3: no image name"),
    ("dist_img,ref_img,dmos\nimg_0.png,,3\n", "koniq.csv:2: no reference image in column 'ref_img'"),
    ("\nimage_name,MOS\n\nimg_0.png,3\n\nimg_1.png,x\n", "koniq.csv:6: rating 'x'"),  # blank lines counted
    ('image_name,MOS\n"img_0\n.png",3\nimg_1.png,x\n', "koniq.csv:4: rating 'x'"),  # a quoted line break
    ("image_name,MOS\nimg_0.png,3\nimg_1.png,2\nimg_0.png,4\n", "koniq.csv:4: image 'img_0.png' is rated again "
                                                                  "(first at {folder}/koniq.csv:2)"),
    ("image_name;MOS\nimg_0.png;x\n", "koniq.csv:2: rating 'x'"),  # semicolons: read, not misreported
    # names leaving the image folder were read from wherever they pointed
    ("image_name,MOS\n../img_0.png,3\n", "koniq.csv:2: image name '../img_0.png' points outside the image folder"),
    ("image_name,MOS\n/etc/hostname,3\n", "koniq.csv:2: image name '/etc/hostname' points outside"),
])
def test_load_iqa_folder_names_the_bad_row(iqa_folder, content, message):
    from sketchjax.apps.iqa import IQAFileError, load_iqa_folder

    folder, _ = iqa_folder
    (folder / "koniq.csv").write_text(content)
    message = message.format(folder=folder)
    with pytest.raises(IQAFileError, match=message.replace("(", "\\(").replace(")", "\\)")):
        load_iqa_folder(folder, folder / "koniq.csv")


def test_load_iqa_folder_reads_other_delimiters_and_loose_headers(iqa_folder):
    from sketchjax.apps.iqa import IQAFileError, load_iqa_folder

    folder, names = iqa_folder
    for text in ("IMAGE_NAME, Mos\n" + "".join(f" {n} , {i}\n" for i, n in enumerate(names)),
                 "image_name;MOS\n" + "".join(f"{n};{i}\n" for i, n in enumerate(names)),
                 "image_name\tMOS\n" + "".join(f"{n}\t{i}\n" for i, n in enumerate(names))):
        (folder / "scores.csv").write_text(text)
        _, mos, got = load_iqa_folder(folder, folder / "scores.csv", size=8)
        assert got == names and mos.tolist() == [0, 1, 2, 3, 4]
    (folder / "tid.txt").write_text("".join(f"{i}.5\t{n}\n" for i, n in enumerate(names)))  # no header, tabs
    assert load_iqa_folder(folder, folder / "tid.txt", size=8)[1].tolist() == [0.5, 1.5, 2.5, 3.5, 4.5]
    with pytest.raises(IQAFileError, match="is a directory"):
        load_iqa_folder(folder, folder)


def test_iqa_folder_split_keeps_each_reference_on_one_side(iqa_folder):
    from sketchjax.apps.iqa import iqa_base_config, iqa_dataset, load_iqa_folder, split_by_reference

    folder, names = iqa_folder
    refs = [f"ref_{i // 2}.png" for i in range(10)]  # KADID-like: distorted versions of 5 references
    dist = [f"dist_{i}.png" for i in range(10)]  # each image rated once
    for i, name in enumerate(dist):
        shutil.copy(folder / names[i % 5], folder / name)
    (folder / "dmos.csv").write_text("dist_img,ref_img,dmos,var\n" + "".join(
        f"{dist[i]},{refs[i]},{i},0\n" for i in range(10)))
    *_, got_refs = load_iqa_folder(folder, folder / "dmos.csv", size=8, with_references=True)
    assert got_refs == refs
    assert load_iqa_folder(folder, folder / "dmos.csv", size=8, with_references=False)[2] == dist
    for seed in range(5):
        train, test = split_by_reference(10, refs, 0.4, seed)
        assert sorted(np.r_[train, test].tolist()) == list(range(10))
        assert not {refs[i] for i in train} & {refs[i] for i in test}  # no reference on both sides
        assert len({refs[i] for i in test}) == 2  # 40% of the 5 references
    train, test = split_by_reference(10, None, 0.3, 0)  # no reference column: image by image
    assert len(test) == 3 and sorted(np.r_[train, test].tolist()) == list(range(10))
    for n, fraction, n_test in ((4, 0.1, 1), (4, 0.9, 3), (2, 0.5, 1)):  # never an empty side (4 x 0.1 gave none)
        train, test = split_by_reference(n, None, fraction, 0)
        assert len(test) == n_test and len(train) == n - n_test
    for bad_n in (1, 5.5, True):  # 5.5 was a NumPy AxisError from the permutation
        with pytest.raises(ValueError, match=r"n must be an integer >= 2 \(the number of images"):
            split_by_reference(bad_n, None, 0.5, 0)
    with pytest.raises(ValueError, match="share one reference"):
        split_by_reference(3, ["a", "a", "a"], 0.3, 0)
    config = iqa_base_config()
    config["iqa"].update(source="folder", images=str(folder), mos=str(folder / "dmos.csv"), image_size=8,
                         test_fraction=0.4, higher_is_better=False)
    sets = iqa_dataset(config)
    ratings = {n: set((-sets[n]["rating"]).astype(int).tolist()) for n in sets}  # dmos i of row i
    assert ratings["train"] | ratings["test"] == set(range(10)) and len(ratings["test"]) == 4
    assert not {refs[i] for i in ratings["train"]} & {refs[i] for i in ratings["test"]}


def test_load_iqa_folder_reports_corrupt_images(iqa_folder):
    from sketchjax.apps.iqa import IQAFileError, load_iqa_folder

    folder, _ = iqa_folder
    (folder / "broken.png").write_bytes(b"not a png")
    (folder / "m.csv").write_text("image,score\nbroken.png,1\n")
    with pytest.raises(IQAFileError, match="m.csv:2: cannot read image"):
        load_iqa_folder(folder, folder / "m.csv")


def test_degraded_sketch_ratings_follow_the_strength(three_strokes):
    from sketchjax.apps.iqa import degraded_sketch_ratings
    from sketchjax.batching import pad_sketch

    s = pad_sketch(three_strokes, 16)
    xy = jnp.repeat(jnp.asarray(s.xy, jnp.float32)[None], 200, 0)
    pen = jnp.repeat(jnp.asarray(s.pen, jnp.float32)[None], 200, 0)
    valid = jnp.repeat(jnp.asarray(s.valid)[None], 200, 0)
    from sketchjax.sketch import num_strokes

    # deletion alone: the strokes lost are a non-increasing step function of the rating --
    # round(0.6 (1 - rating) x 3), none above 1 - 0.5 / 1.8 (the old floor removed one whenever
    # the strength was > 0: a sketch rated 0.99 lost as much as one rated 0.6)
    (_, out_pen, out_valid), rating = degraded_sketch_ratings(jax.random.PRNGKey(0), xy, pen, valid, max_jitter=0.0)
    assert float(rating.min()) >= 0.0 and float(rating.max()) <= 1.0
    lost = np.asarray(3 - num_strokes(out_pen, out_valid))
    np.testing.assert_array_equal(lost, np.floor(0.6 * (1.0 - np.asarray(rating)) * 3 + 0.5).astype(int))
    assert lost.max() == 2 and (lost[np.asarray(rating) > 1 - 0.5 / 1.8] == 0).all()
    (_, out_pen, out_valid), _ = degraded_sketch_ratings(jax.random.PRNGKey(0), xy, pen, valid, max_jitter=0.0,
                                                         at_least_one=True)
    assert (np.asarray(3 - num_strokes(out_pen, out_valid)) >= 1).all()  # the earlier recipe, on request
    # jitter alone: lower rating, points moved further
    (out_xy, _, out_valid), rating = degraded_sketch_ratings(jax.random.PRNGKey(1), xy, pen, valid, max_delete=0.0)
    assert bool((out_valid == valid).all())
    moved = jnp.sum(jnp.where(valid[..., None], jnp.abs(out_xy - xy), 0.0), axis=(1, 2))
    assert float(spearman(rating, moved)) < -0.8


def test_cleansing_and_rhs_helpers_refuse_mismatched_or_nan_inputs():
    from sketchjax.apps.cleansing import flag_suspicious, inject_label_noise, label_angles, precision_recall, suspicion_curve
    from sketchjax.apps.rhs import classify_rhs

    q, theta = np.array([0.4, 0.6, 0.5]), np.array([10.0, 80.0, 30.0])
    with pytest.raises(ValueError, match="flag_suspicious: needs 1-D arrays of one length"):
        flag_suspicious(q, theta[:1], 0.5, 70.0, 0.1)
    with pytest.raises(ValueError, match="precision_recall: needs 1-D"):
        precision_recall(np.array([True, False]), np.array([True]))
    with pytest.raises(ValueError, match="label_angles: need cos"):
        label_angles(np.zeros((3, 4)), np.array([0]))
    with pytest.raises(ValueError, match="suspicion_curve: q and theta_y must be finite"):
        suspicion_curve(q, np.array([10.0, np.nan, 30.0]), np.array([False, True, False]))
    pos = np.array([False, True, False])
    for kwargs, problem in ((dict(q_high_quantile=1.5), "q_high_quantile must be a quantile"),
                            (dict(q_low_quantile=float("nan")), "q_low_quantile must be a quantile"),
                            (dict(n_thresholds=1), "n_thresholds must be an integer >= 2"),
                            (dict(n_thresholds=2.5), "n_thresholds must be an integer >= 2")):
        with pytest.raises(ValueError, match=f"suspicion_curve: {problem}"):
            suspicion_curve(q, theta, pos, **kwargs)
    with pytest.raises(ValueError, match="suspicion_curve: no samples"):
        suspicion_curve(q[:0], theta[:0], pos[:0])
    with pytest.raises(ValueError, match=r"inject_label_noise: labels must be integers in \[0, 2\)"):
        inject_label_noise(jax.random.PRNGKey(0), np.array([0, 1, 2]), 0.5, 2)
    with pytest.raises(ValueError, match="classify_rhs: needs 1-D"):
        classify_rhs(q, q[:1], 0.5, 0.6)
    with pytest.raises(ValueError, match="classify_rhs: q and q_plus must be finite"):
        classify_rhs(np.array([0.4, np.nan]), np.array([0.7, 0.8]), 0.5, 0.6)
    # a NaN threshold switched its rule off silently (nothing flagged; everything "fine")
    with pytest.raises(ValueError, match="flag_suspicious: threshold q_high must be a number"):
        flag_suspicious(q, theta, float("nan"), 0.0, -1.0)
    with pytest.raises(ValueError, match="classify_rhs: threshold q_tau must be a number"):
        classify_rhs(np.array([-5.0, 0.1]), np.array([-5.0, 0.1]), float("nan"), 0.5)
    assert np.asarray(flag_suspicious(q, theta, 0.5, 70.0, -np.inf)).tolist() == [False, True, False]


def test_iqa_and_pseudo_label_helpers_refuse_bad_settings(tmp_path):
    from sketchjax.apps.iqa import bin_centres, load_iqa_folder, rating_bins, split_by_reference

    with pytest.raises(ValueError, match="rating_bins: ratings must be finite"):
        rating_bins(np.array([1.0, np.nan]), 5, 0.0, 10.0)
    with pytest.raises(ValueError, match="n_bins must be an integer >= 1"):
        bin_centres(0, 0.0, 1.0)
    for lo, hi in ((1.0, 1.0), (5.0, 1.0), (0.0, float("inf"))):
        with pytest.raises(ValueError, match="bin_centres: need a finite rating range lo < hi"):
            bin_centres(5, lo, hi)
    with pytest.raises(ValueError, match="2 reference names for 5 images"):
        split_by_reference(5, ["a", "b"], 0.2, 0)
    for kwargs, problem in ((dict(size=0), "size must be an integer"), (dict(limit=-1), r"limit \(or None\) must be an integer >= 1"),
                            (dict(limit=1.5), r"limit \(or None\) must be an integer")):
        with pytest.raises(ValueError, match=f"load_iqa_folder: {problem}"):
            load_iqa_folder(tmp_path, tmp_path / "mos.csv", **kwargs)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(20, 2)), jnp.float32)
    with pytest.raises(ValueError, match="kmeans: k must be an integer >= 1"):
        pl.kmeans(jax.random.PRNGKey(0), x, 0)
    with pytest.raises(ValueError, match="kmeans: need x"):
        pl.kmeans(jax.random.PRNGKey(0), x, 21)
    for k, iters in ((1.5, 3), (2, 1.5), (2, -1)):
        with pytest.raises(ValueError, match="kmeans: (k|iters) must be an integer"):
            pl.kmeans(jax.random.PRNGKey(0), x, k, iters)
    with pytest.raises(ValueError, match="rating_bins: n_bins must be an integer >= 1, got True"):
        rating_bins([0.5], True, 0.0, 1.0)
    with pytest.raises(ValueError, match="bin_centres: n_bins must be an integer >= 1, got nan"):
        bin_centres(float("nan"), 0.0, 1.0)
    assert pl.PseudoLabelConfig(k=np.int64(3)).k == 3 and type(pl.PseudoLabelConfig(k=np.int64(3)).k) is int
    with pytest.raises(ValueError, match="kmeans: x holds NaN"):
        pl.kmeans(jax.random.PRNGKey(0), x.at[3, 0].set(jnp.nan), 3)
    with pytest.raises(ValueError, match="boundary_distance: need x"):
        pl.boundary_distance(x, x[:3, :1])
    with pytest.raises(ValueError, match="mixture_log_density: std must be > 0"):
        pl.mixture_log_density(x, x[:3], 0.0)
    with pytest.raises(ValueError, match="PseudoLabelConfig: reassign_every must be an integer >= 1"):
        pl.PseudoLabelConfig(reassign_every=0)
    for bg in (-0.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="gaussian_mixture: background must be a finite fraction"):
            pl.gaussian_mixture(jax.random.PRNGKey(0), 10, "grid", background=bg)


def test_audit_mixture_density_in_any_dimension_label_checks_and_nan_candidates():
    """Found by an audit: the mixture's normaliser was the 2-D one for any D; label_angles took
    -1 as the last class and 0.7 as class 0; q_max_plus let one NaN-scored removal hide a
    better one (argmax picked the NaN, and NaN > best is false)."""
    from sketchjax.apps.cleansing import label_angles
    from sketchjax.apps.rhs import q_max_plus

    rng = np.random.default_rng(0)
    for d in (1, 2, 3):
        centres, x, std = rng.normal(size=(3, d)), rng.normal(size=(4, d)), 0.7
        d2 = ((x[:, None] - centres[None]) ** 2).sum(-1)
        want = np.log(np.mean(np.exp(-d2 / (2 * std**2)) / (2 * np.pi * std**2) ** (d / 2), axis=1))
        got = pl.mixture_log_density(jnp.asarray(x, jnp.float32), jnp.asarray(centres, jnp.float32), std)
        np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    cos = jnp.array([[0.9, 0.1, -0.2], [0.2, 0.8, 0.0]])
    for labels in ([0, -1], [0, 3], [0, 0.7]):
        with pytest.raises(ValueError, match="label_angles: labels must be integers in \\[0, 3\\)"):
            label_angles(cos, np.array(labels))
    from sketchjax.apps.cleansing import flag_suspicious

    with pytest.raises(ValueError, match="flag_suspicious: q must be finite .* index 1"):
        flag_suspicious(np.array([0.5, np.nan]), np.array([1.0, 1.0]), 0.4, 0.5, 0.1)
    # three strokes at x = 0, 5, -3; the score is -sum(x) of what is left, NaN once stroke 0 is gone
    xy = jnp.array([[[0, 0], [0, 1], [5, 0], [5, 1], [-3, 0], [-3, 1], [0, 0], [0, 0]]], jnp.float32)
    pen = jnp.array([[1, 0, 1, 0, 1, 0, 0, 0]], jnp.float32)
    valid = jnp.array([[1, 1, 1, 1, 1, 1, 0, 0]], bool)

    def score(xy, pen, valid):
        left = -jnp.sum(jnp.where(valid, xy[..., 0], 0.0), -1)
        return jnp.where(jnp.any(valid & (xy[..., 0] == 0), -1), left, jnp.nan)

    q, best, removed = q_max_plus(score, xy, pen, valid, 4)
    assert float(q[0]) == -4.0 and float(best[0, 0]) == 6.0 and int(removed[0, 0]) == 1


def test_audit_iqa_loader_transparency_same_image_twice_and_unknown_header(tmp_path):
    """Found by an audit: a sketch on a transparent canvas loaded as solid black (convert()
    kept the hidden colour); 'a.png' and './a.png' rated one image twice (both sides of a
    split); a tab header naming no known column was read as '<score> <name>' lines."""
    from PIL import Image

    from sketchjax.apps.iqa import IQAFileError, load_iqa_folder

    ink = np.zeros((16, 16, 4), np.uint8)
    ink[4:6, :, 3] = 255  # two opaque black rows, the rest black but transparent
    Image.fromarray(ink, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(ink[..., [0, 3]], "LA").save(tmp_path / "la.png")
    pal = Image.fromarray(np.where(ink[..., 3] > 0, 1, 0).astype(np.uint8), "P")
    pal.putpalette([0, 0, 0, 0, 0, 0])  # both entries black, entry 0 transparent
    pal.info["transparency"] = 0
    pal.save(tmp_path / "p.png", transparency=0)
    (tmp_path / "m.csv").write_text("image,mos\nrgba.png,1\nla.png,2\np.png,3\n")
    for grayscale in (True, False):
        images, _, _ = load_iqa_folder(tmp_path, tmp_path / "m.csv", size=16, grayscale=grayscale)
        for im in images:
            np.testing.assert_allclose(im[:4], 1.0)  # white where transparent
            np.testing.assert_allclose(im[4:6], 0.0)  # the ink
    for second in ("./rgba.png", "sub/../rgba.png", "rgba.png"):
        (tmp_path / "twice.csv").write_text(f"image,mos\nrgba.png,1\n{second},2\n")
        with pytest.raises(IQAFileError, match=rf"twice.csv:3: image {second!r} is rated again \(first at .*twice.csv:2\)"):
            load_iqa_folder(tmp_path, tmp_path / "twice.csv", size=8)
    (tmp_path / "tab.tsv").write_text("img\tscore\nrgba.png\t1\n")
    (tmp_path / "space.txt").write_text("MOS image_name\n1 rgba.png\n")
    with pytest.raises(IQAFileError, match=r"header \['img', 'score'\] names no image column .*'<score> <image name>' lines"):
        load_iqa_folder(tmp_path, tmp_path / "tab.tsv", size=8)
    with pytest.raises(IQAFileError, match=r"header \['MOS', 'image_name'\] is split at spaces; separate its columns"):
        load_iqa_folder(tmp_path, tmp_path / "space.txt", size=8)
    (tmp_path / "plain.txt").write_text("1.5\trgba.png\n2 la.png\n")  # no header, tabs or spaces: still read
    assert load_iqa_folder(tmp_path, tmp_path / "plain.txt", size=8)[1].tolist() == [1.5, 2.0]


def test_audit_split_by_reference_counts_images_and_checks_its_seed():
    """Found by an audit: a fraction of the reference *groups* went to test, 10.5% or 58% of
    the images for 0.2 with one large group; seeds -1 / 1.5 were NumPy errors."""
    from sketchjax.apps.iqa import split_by_reference

    refs = ["big"] * 50 + [f"r{i}" for i in range(1, 10) for _ in range(5)]
    for seed in range(8):
        train, test = split_by_reference(95, refs, 0.2, seed)
        assert len(test) == 20 and sorted(np.r_[train, test].tolist()) == list(range(95))
        assert not {refs[i] for i in train} & {refs[i] for i in test}
    for seed in range(4):  # every group larger than twice the target: one group, never all
        train, test = split_by_reference(6, ["a"] * 3 + ["b"] * 3, 0.1, seed)
        assert len(test) == 3 and len(train) == 3
    for bad in (-1, 1.5, 2**32):
        with pytest.raises(ValueError, match="split_by_reference: seed must be"):
            split_by_reference(4, None, 0.5, bad)
    with pytest.raises(ValueError, match="split_by_reference: test_fraction must be in"):
        split_by_reference(4, None, "0.5", 0)


def test_audit_kmeans_numpy_and_integer_points_expected_rating_bfloat16_and_degraded_ratings_checks(three_strokes):
    """Found by an audit: kmeans failed on a NumPy array (a traced index into it) and on
    integer points (scan carry types); expected_rating computed bfloat16 cosines in bfloat16
    (1.93 for 1.98); degraded_sketch_ratings checked nothing (its vmapped helpers see tracers):
    NaN jitter or points gave NaN sketches rated as clean ones."""
    from sketchjax.apps.iqa import bin_centres, degraded_sketch_ratings, expected_rating
    from sketchjax.batching import pad_sketch
    from sketchjax.sketch import SketchError

    x = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32) * 0.3 + np.repeat([[0, 0], [5, 5]], 20, 0)
    want, _ = pl.kmeans(jax.random.PRNGKey(0), jnp.asarray(x), 2)
    got, centres = pl.kmeans(jax.random.PRNGKey(0), x, 2)
    np.testing.assert_array_equal(np.asarray(got), np.asarray(want))
    got, centres = pl.kmeans(jax.random.PRNGKey(0), np.round(x).astype(np.int32), 2)
    assert centres.dtype == jnp.float32 and len(set(np.asarray(got)[:20])) == 1 and got[0] != got[-1]
    cos = jnp.array([[0.999, 0.998, 0.0, 0.0]])
    centres4 = bin_centres(4, 1.0, 5.0)
    np.testing.assert_allclose(float(expected_rating(cos.astype(jnp.bfloat16), 64.0, centres4)[0]),
                               float(expected_rating(cos.astype(jnp.bfloat16).astype(jnp.float32), 64.0, centres4)[0]),
                               rtol=1e-6)
    s = pad_sketch(three_strokes, 16)
    xy, pen, valid = (jnp.asarray(a)[None] for a in (np.asarray(s.xy, np.float32), np.asarray(s.pen, np.float32), s.valid))
    key = jax.random.PRNGKey(0)
    for kwargs, problem in ((dict(max_jitter=float("nan")), "max_jitter must be a finite number in"),
                            (dict(max_jitter=-0.1), "max_jitter must be"), (dict(max_delete=2.0), "max_delete must be"),
                            (dict(max_delete="0.5"), "max_delete must be")):
        with pytest.raises(ValueError, match=f"degraded_sketch_ratings: {problem}"):
            degraded_sketch_ratings(key, xy, pen, valid, **kwargs)
    with pytest.raises(ValueError, match="degraded_sketch_ratings.*finite"):
        degraded_sketch_ratings(key, xy.at[0, 0, 0].set(jnp.nan), pen, valid)
    with pytest.raises(ValueError, match=r"degraded_sketch_ratings: needs a batch of sketches, xy \[B, T, 2\] with B >= 1"):
        degraded_sketch_ratings(key, xy[:0], pen[:0], valid[:0])
    with pytest.raises(SketchError, match="degraded_sketch_ratings: sketch at batch index 0: empty sketch"):
        degraded_sketch_ratings(key, xy, pen, jnp.zeros_like(valid))
    (out, _, _), _ = jax.jit(degraded_sketch_ratings)(key, xy, pen, valid, max_jitter=0.1)  # traced: shapes only
    assert bool(jnp.isfinite(out).all())
