"""GACL for image quality assessment (G §5; SPEC §6).

Continuous quality ratings (MOS) are discretised into ``N`` equal bins over the rating range
(:func:`rating_bins`); a GACL classifier is trained on the bin indices as class labels; the
predicted rating is the expectation of the bin centres under the classifier's softmax over
``s cos theta_j`` (:func:`expected_rating`).  GACL's own ``q`` of the image is reported too.
Metrics: PLCC and SROCC against the true ratings (:mod:`sketchjax.gacl.metrics`).

Data:

* :func:`load_iqa_folder` reads the standard IQA layout — a folder of images and a MOS file:
  a CSV (``,``, ``;`` or tab separated) with a header naming the image column (``image_name``,
  ``image``, ``dist_img``, ``filename``, ``name``, ``file``) and the rating column (``MOS``,
  ``dmos``, ``score``, ``MOS_zscore``, ``rating``), optionally a reference-image column
  (``ref_img``, ``reference``, ``ref_image``, ``ref``) — case and surrounding spaces ignored;
  KonIQ-10k's ``koniq10k_scores.csv`` and KADID-10k's ``dmos.csv`` are of this form — or a
  whitespace-separated text file of ``<score> <image name>`` lines (TID2013's
  ``mos_with_names.txt``).  Each image may be rated once.  Where the MOS file names reference
  images (KADID's ``ref_img``), the train/test split of :func:`iqa_dataset` keeps all the
  versions of one reference on one side (G §5: no content overlap between training and test);
  a file without a reference column (KonIQ, TID2013's text file, although TID's names encode
  their reference) is split image by image.
* No IQA benchmark can be downloaded here, so :func:`degraded_sketch_ratings` makes a
  dataset whose quality is known by construction: real sketches degraded with a random
  strength ``u`` (point jitter and deleted strokes together), rating ``1 - u``.

Rating semantics: higher is better.  For ratings that fall as quality rises (LIVE's DMOS,
differential scores) pass ``higher_is_better=False`` and they are negated on loading; check the
dataset's convention rather than the column's name — KADID-10k's ``dmos`` rises with quality
(degradation-category ratings, 5 = imperceptible), so it keeps the default.
"""
from __future__ import annotations

import csv
import functools
import io
import os
import pathlib
import posixpath
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np

from sketchjax._checks import check_finite, check_int, check_key, check_positive_int, check_uint32, is_number
from sketchjax._numerics import compute_dtype
from sketchjax.degrade import delete_strokes, jitter
from sketchjax.sketch import check_mask, check_points

__all__ = ["rating_bins", "bin_centres", "expected_rating", "load_iqa_folder", "split_by_reference",
           "degraded_sketch_ratings", "IQAFileError", "NAME_COLUMNS", "SCORE_COLUMNS", "REFERENCE_COLUMNS"]

NAME_COLUMNS = ("image_name", "image", "dist_img", "filename", "name", "file")
SCORE_COLUMNS = ("MOS", "dmos", "score", "MOS_zscore", "rating")  # matched ignoring case
REFERENCE_COLUMNS = ("ref_img", "reference", "ref_image", "ref")


class IQAFileError(ValueError):
    """A bad IQA folder or MOS file: the message names the file (and row) and the problem."""


#: A rating this close below a bin edge (in bin widths) is taken as on it: float32 arithmetic
#: put 19 of the 101 two-decimal ratings on the edges of 100 bins over [1, 5] one bin low
#: (1.04 -> bin 0); float32 errors are ~1e-5 bins, a rating's own precision far coarser.
EDGE_TOLERANCE = 1e-3


def rating_bins(ratings, n_bins: int, lo: float, hi: float) -> jax.Array:
    """``int32[N]``: the bin of each rating among ``n_bins`` equal bins over ``[lo, hi]``
    (ratings outside are clipped into the end bins; a rating on an edge goes to the bin above
    it, within :data:`EDGE_TOLERANCE` of a bin width)."""
    check_positive_int("rating_bins", "n_bins", n_bins)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):  # an infinite range put every rating in bin 0
        raise ValueError(f"rating_bins: need a finite rating range lo < hi, got lo={lo}, hi={hi}")
    check_finite("rating_bins", "a NaN would land in bin 0", ratings=ratings)
    r = (jnp.asarray(ratings, jnp.float32) - lo) / (hi - lo)
    return jnp.clip(jnp.floor(r * n_bins + EDGE_TOLERANCE), 0, n_bins - 1).astype(jnp.int32)


def bin_centres(n_bins: int, lo: float, hi: float) -> jax.Array:
    """``float32[n_bins]``: the rating at the middle of each bin."""
    check_positive_int("bin_centres", "n_bins", n_bins)
    if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
        raise ValueError(f"bin_centres: need a finite rating range lo < hi, got lo={lo}, hi={hi}")
    return lo + (jnp.arange(n_bins, dtype=jnp.float32) + 0.5) * ((hi - lo) / n_bins)


def expected_rating(cos, s: float, centres) -> jax.Array:
    """``sum_j softmax(s cos)_j centre_j``: the predicted rating of each image (``cos [B, N]``)."""
    if np.ndim(cos) < 1 or np.ndim(centres) != 1 or np.shape(cos)[-1] != np.shape(centres)[0]:
        raise ValueError(f"expected_rating: need cos [..., N] and N bin centres, got shapes {np.shape(cos)} and "
                         f"{np.shape(centres)}")
    cos = jnp.asarray(cos)
    cos = cos.astype(compute_dtype(cos))  # bfloat16 / float16 cosines: the softmax in float32 (as in GACL)
    return jax.nn.softmax(s * cos, axis=-1) @ jnp.asarray(centres, cos.dtype)


def _column(fields: list[str], candidates: tuple[str, ...]) -> Optional[int]:
    """Index of the first header field equal to one of ``candidates`` (case and surrounding
    spaces ignored), else None."""
    wanted = [c.lower() for c in candidates]
    folded = [f.strip().lower() for f in fields]
    return next((folded.index(c) for c in wanted if c in folded), None)


def _read_mos(path: pathlib.Path) -> list[tuple[str, float, str, Optional[str]]]:
    """``(image name, score, where, reference)`` rows of a CSV with a header (``reference`` from
    a :data:`REFERENCE_COLUMNS` column, else None), or of a ``score name`` text file.  ``where``
    is ``"path:line"`` (the line in the file, blank lines and quoted line breaks counted)."""
    if path.is_dir():
        raise IQAFileError(f"{path}: is a directory; give the MOS file (.csv or .txt)")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise IQAFileError(f"{path}: MOS file not found") from None
    except UnicodeDecodeError as e:
        raise IQAFileError(f"{path}: not a text file ({e})") from None
    header = next((ln for ln in text.splitlines() if ln.strip()), None)
    if header is None:
        raise IQAFileError(f"{path}: empty MOS file")
    # A CSV when the header splits at ',' or ';' (named columns or not: the error then lists
    # them), or at tabs into named columns; otherwise whitespace-separated '<score> <name>' lines.
    delimiter = next((d for d in (",", ";") if d in header), None)
    if delimiter is None and "\t" in header:
        tab_fields = header.split("\t")
        if _column(tab_fields, NAME_COLUMNS) is not None and _column(tab_fields, SCORE_COLUMNS) is not None:
            delimiter = "\t"
    if delimiter is None and not _is_number(header.split()[0]):
        # Neither a CSV nor '<score> <name>' lines: a header split at tabs or spaces
        fields = header.split()
        missing = [what for what, names in (("image", NAME_COLUMNS), ("rating", SCORE_COLUMNS))
                   if _column(fields, names) is None]
        if missing:
            raise IQAFileError(
                f"{path}: header {fields} names no {' and no '.join(missing)} column (image: one of {NAME_COLUMNS}; "
                f"rating: one of {SCORE_COLUMNS}; case and spaces are ignored); a file without a header has "
                "'<score> <image name>' lines")
        raise IQAFileError(f"{path}: header {fields} is split at spaces; separate its columns by ',', ';' or a tab "
                           "(image names may hold spaces)")
    rows = []
    if delimiter is not None:
        reader = csv.reader(io.StringIO(text), delimiter=delimiter)
        fields = None
        for record in reader:
            if not any(f.strip() for f in record):
                continue  # a blank line
            where = f"{path}:{reader.line_num}"
            if fields is None:
                fields = record
                name_col, score_col = _column(fields, NAME_COLUMNS), _column(fields, SCORE_COLUMNS)
                ref_col = _column(fields, REFERENCE_COLUMNS)
                if name_col is None or score_col is None:
                    raise IQAFileError(
                        f"{where}: header {[f.strip() for f in fields]} (split at {delimiter!r}) names no image "
                        f"column (one of {NAME_COLUMNS}) and rating column (one of {SCORE_COLUMNS}); "
                        "case and spaces are ignored")
                continue
            if len(record) != len(fields):
                raise IQAFileError(f"{where}: {len(record)} fields, the header has {len(fields)}")
            ref = None if ref_col is None else record[ref_col].strip()
            if ref_col is not None and not ref:
                raise IQAFileError(f"{where}: no reference image in column {fields[ref_col].strip()!r}")
            rows.append((record[name_col].strip(), record[score_col].strip(), where, ref))
    else:
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise IQAFileError(f"{path}:{i}: expected '<score> <image name>' (or a CSV header naming the "
                                   f"image and rating columns), got {line!r}")
            rows.append((parts[1], parts[0], f"{path}:{i}", None))
    out, seen = [], {}
    for name, score, where, ref in rows:
        if not name:
            raise IQAFileError(f"{where}: no image name")
        same = posixpath.normpath(name.replace("\\", "/"))  # 'a.png', './a.png', 'sub//a.png': one image
        if same in seen:
            raise IQAFileError(f"{where}: image {name!r} is rated again (first at {seen[same]})")
        seen[same] = where
        try:
            value = float(score)
        except (TypeError, ValueError):
            raise IQAFileError(f"{where}: rating {score!r} of {name!r} is not a number") from None
        if not np.isfinite(value):
            raise IQAFileError(f"{where}: rating of {name!r} is {value}")
        with np.errstate(over="ignore"):
            wide = not np.isfinite(np.float32(value))
        if wide:  # ratings are float32: 1e39 would become inf
            raise IQAFileError(f"{where}: rating {score!r} of {name!r} is beyond float32's range (~3.4e38)")
        out.append((name, value, where, ref))
    return out


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def load_iqa_folder(images: os.PathLike, mos: os.PathLike, *, size: int = 64, grayscale: bool = True,
                    higher_is_better: bool = True, limit: Optional[int] = None, with_references: bool = False):
    """Images and ratings of an IQA dataset in the folder + MOS-file layout.

    Args:
      images: the image folder (names in the MOS file are relative to it).
      mos: the MOS file (see the module docstring for the accepted forms).
      size: images are resized to ``size x size`` (bilinear; aspect not kept).
      grayscale: one channel (``[N, size, size]``) or RGB (``[N, size, size, 3]``).
      higher_is_better: False for ratings that fall as quality rises (e.g. LIVE's DMOS; see the
        module docstring): they are negated.
      limit: read only the first ``limit`` rows.
      with_references: also return each image's reference image (a fourth item: ``list[str]``,
        or None when the MOS file has no reference column).

    Returns:
      ``(images float32[N, size, size(, 3)] in [0, 1], ratings float32[N], names list[str])``.

    Raises:
      IQAFileError: missing or unreadable MOS file or image, unknown columns, a rating that is
        not a finite number, an image name outside the folder (absolute or with ``..``;
        sub-folders are fine) — naming the file, row and image.
    """
    from PIL import Image, UnidentifiedImageError

    check_positive_int("load_iqa_folder", "size", size)
    if limit is not None:
        check_positive_int("load_iqa_folder", "limit (or None)", limit)
    folder = pathlib.Path(images)
    if not folder.is_dir():
        raise IQAFileError(f"{folder}: image folder not found")
    rows = _read_mos(pathlib.Path(mos))[:limit]
    arrays, ratings, names, refs = [], [], [], []
    for name, value, where, ref in rows:
        if pathlib.PurePath(name).is_absolute() or ".." in pathlib.PurePath(name).parts:
            raise IQAFileError(f"{where}: image name {name!r} points outside the image folder {folder}")
        path = folder / name
        try:
            with Image.open(path) as im:
                arrays.append(_image_array(im, grayscale, size, where, path))
        except FileNotFoundError:
            raise IQAFileError(f"{where}: image {path} not found") from None
        except (UnidentifiedImageError, OSError) as e:
            raise IQAFileError(f"{where}: cannot read image {path} ({e})") from None
        ratings.append(value if higher_is_better else -value)
        names.append(name)
        refs.append(ref)
    if not arrays:
        raise IQAFileError(f"{mos}: no rows")
    out = (np.stack(arrays), np.asarray(ratings, np.float32), names)
    if with_references:
        return out + (None if refs[0] is None else refs,)
    return out


def _image_array(im, grayscale: bool, size: int, where: str, path) -> np.ndarray:
    """An image as float32 in [0, 1], ``[size, size]`` (grayscale) or ``[size, size, 3]``:
    8-bit modes by PIL's conversion, 16-bit grayscale by its own range (``convert("L")`` clipped
    it: 40000 read as white); 32-bit integer and float images are refused (no fixed range)."""
    from PIL import Image

    if im.mode.startswith("I;16"):
        a = np.asarray(im, np.float32) / 65535.0
        a = np.asarray(Image.fromarray(a, mode="F").resize((size, size), Image.BILINEAR), np.float32)
        return a if grayscale else np.repeat(a[..., None], 3, axis=-1)
    if im.mode in ("I", "F"):
        raise IQAFileError(f"{where}: image {path} has PIL mode {im.mode!r} (32-bit integer or float pixels, no "
                           "fixed range); save it as 8- or 16-bit")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in im.info:
        # Transparency on white (a sketch drawn on a transparent canvas): convert() dropped the
        # alpha and kept the hidden colour, black for such sketches.
        im = Image.alpha_composite(Image.new("RGBA", im.size, (255, 255, 255, 255)), im.convert("RGBA"))
    im = im.convert("L" if grayscale else "RGB").resize((size, size), Image.BILINEAR)
    return np.asarray(im, np.float32) / 255.0


def split_by_reference(n: int, references: Optional[list], test_fraction: float, seed: int):
    """``(train, test)`` index arrays: a seeded split of ``n`` images with about ``test_fraction``
    of them in ``test`` — never none and never all.  With ``references`` (one name per image)
    whole reference groups are assigned, so no reference content is on both sides: in a seeded
    order, each group joins test when it brings the test images closer to ``test_fraction * n``
    (a fraction of the *groups* put 10% or 58% of the images in test for 20% when the groups
    differ in size); without, images are split one by one."""
    n = check_int("split_by_reference", "n", n, 2, why=" (the number of images: at least 2 to split)")
    if not (is_number(test_fraction) and 0.0 < test_fraction < 1.0):
        raise ValueError(f"split_by_reference: test_fraction must be in (0, 1), got {test_fraction!r}")
    seed = check_uint32("split_by_reference", "seed", seed)
    if references is not None and len(references) != n:
        raise ValueError(f"split_by_reference: {len(references)} reference names for {n} images (need one each)")
    rng = np.random.default_rng(seed)
    if references is None:  # both sides non-empty: round(0.2 * 3) = 1 image, but round(0.1 * 4) = 0 was
        order = rng.permutation(n)
        n_test = min(max(int(round(test_fraction * n)), 1), n - 1)
        return np.sort(order[n_test:]), np.sort(order[:n_test])
    groups, group_of = np.unique(np.asarray(references, dtype=object).astype(str), return_inverse=True)
    if len(groups) < 2:
        raise ValueError(f"all {n} images share one reference image ({groups[0]!r}): cannot split by reference")
    sizes, target = np.bincount(group_of, minlength=len(groups)), test_fraction * n
    order, chosen, count = rng.permutation(len(groups)), [], 0
    for g in order:  # a group joins test when it brings the count closer to the target, never all images
        if abs(count + sizes[g] - target) < abs(count - target) and count + sizes[g] < n:
            chosen.append(g)
            count += sizes[g]
    if not chosen:  # every group overshoots by more than the target: the one closest to it
        chosen = [order[np.argmin(np.abs(sizes[order] - target))]]
    in_test = np.isin(group_of, chosen)
    return np.flatnonzero(~in_test), np.flatnonzero(in_test)


def degraded_sketch_ratings(key: jax.Array, xy, pen, valid, *, max_jitter: float = 0.06,
                            max_delete: float = 0.6, at_least_one: bool = False
                            ) -> tuple[tuple[jax.Array, jax.Array, jax.Array], jax.Array]:
    """Each sketch of a padded batch degraded with its own strength ``u ~ U[0, 1]``: point jitter
    of ``u * max_jitter`` (of the longest side) and ``u * max_delete`` of the strokes deleted
    (rounded half up — :func:`sketchjax.degrade.delete_strokes`), so the number of strokes
    removed never falls as ``u`` rises.  ``at_least_one=True`` removes a stroke whenever
    ``u > 0`` (the recipe of runs before 2026-12-03: a sketch rated 0.99 lost a stroke of a
    multi-stroke sketch as one rated 0.7 did).

    Returns:
      ``((xy, pen, valid), rating float32[B])`` with ``rating = 1 - u`` (1: no jitter, no deletion).
    """
    name = "degraded_sketch_ratings"
    check_key(name, key)
    if np.ndim(xy) != 3 or np.shape(xy)[0] < 1:
        raise ValueError(f"{name}: needs a batch of sketches, xy [B, T, 2] with B >= 1, got shape {np.shape(xy)}")
    check_points(xy, pen, valid, name, any_units=True)  # shapes; finite points, pen in [0, 1] when concrete
    if not isinstance(valid, jax.core.Tracer):
        check_mask(valid, name)  # the vmapped degradations see tracers: their own checks are skipped
    for param, value, top in (("max_jitter", max_jitter, np.inf), ("max_delete", max_delete, 1.0)):
        if isinstance(value, jax.core.Tracer):  # traced (jit over a strength): its value is unknown
            continue
        if not (is_number(value) and np.isfinite(float(value)) and 0.0 <= float(value) <= top):
            raise ValueError(f"{name}: {param} must be a finite number in [0, {top:g}], got {value!r}")
    b = xy.shape[0]
    k_u, k_j, k_d = jax.random.split(key, 3)
    u = jax.random.uniform(k_u, (b,))

    def one(kj, kd, u_i, a, p, v):
        a, p, v = delete_strokes(kd, a, p, v, u_i * max_delete, at_least_one=at_least_one)
        return jitter(kj, a, p, v, u_i * max_jitter)

    out = jax.vmap(one)(jax.random.split(k_j, b), jax.random.split(k_d, b), u, xy, pen, valid)
    return out, 1.0 - u


# --- the training experiment (train/run.py; train/configs/iqa_sketch_gacl.py) -------------------

def iqa_base_config() -> dict:
    """Loop defaults plus the ``iqa`` section: known-quality sketches (or a folder + MOS file)."""
    from sketchjax.classifier import GACL_HEAD_DEFAULTS, base_config

    config = base_config()
    config.update(
        experiment="sketchjax.apps.iqa:build_iqa_experiment",
        num_epochs=8,
        batch_size=64,
        model={"name": "resnet18", "widths": (16, 32, 64, 128), "small_input": True},
        # tau relative to the bin width (as the QuickDraw GACL configs): the absolute default leaves
        # q_hat flat inside every bin, so q would learn from the regulariser alone (RESULTS §4.2)
        head={**GACL_HEAD_DEFAULTS, "margin_scale": 64.0, "tau_width": 0.125},
        iqa={"n_bins": 100, "rating_range": (0.0, 1.0), "source": "sketches", "copies": 1, "seed": 0,
             "images": None, "mos": None, "image_size": 64, "higher_is_better": True, "test_fraction": 0.2,
             # sketches: no stroke deleted while u * 0.6 * strokes < 0.5 (True: at least one
             # whenever u > 0, the recipe of runs before 2026-12-03; see degraded_sketch_ratings)
             "delete_at_least_one": False},
    )
    config["data"].update(raster_size=28, render_size=112, line_width=7)
    return config


def iqa_dataset(config: dict) -> dict[str, dict[str, np.ndarray]]:
    """``{"train": {"image", "rating"}, "test": {...}}`` of an IQA config.

    ``source = "sketches"``: the real QuickDraw sketches of ``config["data"]`` (train and test
    splits of the classifier dataset, never mixed), each degraded ``copies`` times by
    :func:`degraded_sketch_ratings` and rasterised with the data section's recipe.
    ``source = "folder"``: :func:`load_iqa_folder` of ``iqa.images`` / ``iqa.mos``, split by
    :func:`split_by_reference` (``test_fraction``, ``seed``): by reference image where the MOS
    file names one, else image by image.
    """
    from sketchjax.classifier import held_out_sketches
    from sketchjax.render import RasterRecipe

    iqa = config["iqa"]
    if iqa["source"] == "folder":
        images, ratings, _, refs = load_iqa_folder(iqa["images"], iqa["mos"], size=iqa["image_size"],
                                                   higher_is_better=iqa["higher_is_better"], with_references=True)
        train, test = split_by_reference(len(ratings), refs, iqa["test_fraction"], iqa["seed"])
        return {"train": {"image": images[train], "rating": ratings[train]},
                "test": {"image": images[test], "rating": ratings[test]}}
    if iqa["source"] != "sketches":
        raise ValueError(f"unknown IQA source {iqa['source']!r}; use 'sketches' or 'folder'")
    data = config["data"]
    recipe = RasterRecipe(out_size=data["raster_size"], canvas=data["render_size"], width=data["line_width"])
    out = {}
    for split_name, split in (("train", "train"), ("test", data["eval_split"])):
        arrays, _, _ = held_out_sketches({**config, "data": {**data, "eval_split": split}})
        images, ratings = [], []
        for c in range(int(iqa["copies"]) if split_name == "train" else 1):
            key = jax.random.fold_in(jax.random.PRNGKey(iqa["seed"]), 2 * c + (split_name == "test"))
            for i in range(0, len(arrays["label"]), 512):
                img, r = _degraded_rasters(jax.random.fold_in(key, i), arrays["xy"][i:i + 512],
                                           arrays["pen"][i:i + 512], arrays["valid"][i:i + 512], recipe,
                                           # a config recorded before the key existed: the recipe it trained with
                                           bool(iqa.get("delete_at_least_one", True)))
                images.append(np.asarray(img))
                ratings.append(np.asarray(r))
        out[split_name] = {"image": np.concatenate(images), "rating": np.concatenate(ratings)}
    return out


@functools.partial(jax.jit, static_argnames=("recipe", "at_least_one"))
def _degraded_rasters(key, xy, pen, valid, recipe, at_least_one=False):
    """:func:`degraded_sketch_ratings` then ``recipe.raster``; one module-level jit, so the
    training and restore builds of one config share its compilations."""
    (xy, pen, valid), rating = degraded_sketch_ratings(key, xy, pen, valid, at_least_one=at_least_one)
    return recipe.raster(xy, pen, valid), rating


def build_iqa_experiment(config: dict):
    """GACL on ``n_bins`` rating bins: ``Experiment`` for :func:`sketchjax.training.train_and_evaluate`.

    Evaluation sums: bin accuracy, absolute error of the expected rating (``mae``) and mean ``q``.
    """
    from sketchjax.classifier import gacl_config, head_config, make_gacl_objective, make_model
    from sketchjax.gacl import quality_scores
    from sketchjax.training import ArraySource, Experiment, Task, masked_sums, this_process

    iqa = config["iqa"]
    n_bins, (lo, hi) = int(iqa["n_bins"]), iqa["rating_range"]
    head = head_config(config)
    gcfg = gacl_config(config)
    if gcfg is None:
        raise ValueError("the IQA experiment trains a GACL head: set head.type = 'gacl'")
    sets = iqa_dataset(config)
    for name, split in sets.items():
        r = split["rating"]
        if r.min() < lo or r.max() > hi:  # clipped into the end bins, training would learn nothing
            raise ValueError(f"iqa.rating_range [{lo}, {hi}] does not cover the {name} ratings "
                             f"[{r.min():.4g}, {r.max():.4g}]; set --set 'iqa.rating_range=(lo, hi)' to the "
                             "dataset's scale (e.g. (1, 5) for a 5-point MOS, negated for DMOS)")
        split["label"] = np.asarray(rating_bins(r, n_bins, lo, hi))
    train = ArraySource(sets["train"], config["batch_size"], seed=config["seed"], **this_process())
    test = ArraySource(sets["test"], config["batch_size"], shuffle=False, drop_remainder=False, **this_process())
    model = make_model(config["model"], n_bins, "gacl")
    objective = make_gacl_objective(head, gcfg, train.steps_per_epoch, config["num_epochs"])
    centres = bin_centres(n_bins, lo, hi)

    def init_fn(rng, batch):
        return model.init(rng, batch["image"])

    def loss_fn(params, collections, batch, rng, step):
        mutable = list(collections)
        out = model.apply({"params": params, **collections}, batch["image"], train=True, rngs={"dropout": rng},
                          mutable=mutable or False)
        (cos, norm), updates = out if mutable else (out, None)
        loss, metrics = objective(cos, norm, batch["label"], step)
        return loss, (metrics, updates)

    def eval_fn(params, collections, batch):
        cos, norm = model.apply({"params": params, **collections}, batch["image"])
        q, _, pred = quality_scores(cos, norm, gcfg)
        rating = expected_rating(cos, gcfg.s, centres)
        return masked_sums({"accuracy": pred == batch["label"], "mae": jnp.abs(rating - batch["rating"]), "q": q},
                           batch["mask"])

    return Experiment(task=Task(init_fn, loss_fn, eval_fn), train_source=train, eval_source=test)
