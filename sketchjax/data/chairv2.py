"""``qmul_chairv2``: QMUL Chair-V2 sketch/photo pairs as a TFDS dataset (array_record, no TF).

Input (manual directory, default the data root's ``qmul_chairv2``): the coordinate pickle
(``'/<split>/<photo-stem>_<n>'`` -> ``[N, 3]``, read with :func:`sketchjax.formats.load_chairv2`)
and ``photo/<photo-stem>.png``.  The pickle is the first of :data:`CHAIRV2_PICKLES` present:
``ChairV2_Coordinate`` (the public original: ``/train/`` and ``/test/`` keys) or
``ChairV2_Coordinate_train.pkl`` (the training sketches only, as in this workplace's data).  The dataset
has no public direct download; get it from the SketchX project page.

Each example is one sketch with its photo: ``points``/``pen`` (256-pixel canvas), ``photo``
(the PNG, stored as is when it is an 8-bit RGB PNG, else converted to one — and decoded to
``uint8[H, W, 3]``), ``photo_id`` (the stem), ``label`` (index of the photo among the config's
sorted photo ids — an instance label for fine-grained retrieval) and ``key``.  Splits: a pickle
whose keys name more than one split (the public original's ``/train/`` and ``/test/``) is built
with those official splits (``test_fraction`` must then be 0).  A training-only pickle puts all sketches in ``train`` by
default; with ``test_fraction > 0`` whole photos (with all their sketches) go to ``test`` by a
hash of the photo id, so no test photo is seen in training.
"""
from __future__ import annotations

import dataclasses
import io
import os
import pathlib
from typing import Iterator, Optional

import tensorflow_datasets as tfds

from sketchjax.data.builder import (ArrayRecordBuilder, CompactReprConfig, config_digest, encode_sketch, input_folder,
                                    sketch_features)
from sketchjax.data.splits import split_of
from sketchjax.formats import chairv2_photo_stem, load_chairv2
from sketchjax.formats.strokes import SINGLE_POINT_POLICIES
from sketchjax.paths import data_root
from sketchjax.sketch import SketchError

__all__ = ["Chairv2Config", "QmulChairv2", "chairv2_config", "chairv2_key_split", "CHAIRV2_PICKLE", "CHAIRV2_PICKLES"]

# The coordinate pickle, in order of preference: the public original (both official splits),
# the training-only file.
CHAIRV2_PICKLES = ("ChairV2_Coordinate", "ChairV2_Coordinate_train.pkl")
CHAIRV2_PICKLE = CHAIRV2_PICKLES[1]


def _pickle_in(directory: Optional[pathlib.Path]) -> Optional[pathlib.Path]:
    """The first of :data:`CHAIRV2_PICKLES` in ``directory``, or None."""
    if directory is None:
        return None
    return next((directory / n for n in CHAIRV2_PICKLES if (directory / n).is_file()), None)


def chairv2_key_split(key: str) -> str:
    """The official split a pickle key names: ``'/test/00140128_v1_3'`` -> ``'test'``
    (``'train'`` for a key without a split folder)."""
    parts = key.strip("/").split("/")
    return parts[-2] if len(parts) > 1 else "train"


def _default_dir() -> Optional[pathlib.Path]:
    try:
        path = data_root() / "qmul_chairv2"
    except FileNotFoundError:
        return None
    return path if path.is_dir() else None


@dataclasses.dataclass(eq=False, repr=False)  # CompactReprConfig's repr
class Chairv2Config(CompactReprConfig, tfds.core.BuilderConfig):
    """Attributes: ``photo_ids`` (sorted stems; labels index them), ``test_fraction``,
    ``split_salt``, ``single_point`` (policy for one-point strokes), ``source_dir`` (the folder
    the photo ids were listed from, absolute; None: the data root's)."""

    photo_ids: tuple[str, ...] = ()
    test_fraction: float = 0.0
    split_salt: str = "chairv2"
    single_point: str = "keep"
    source_dir: Optional[str] = None  # the folder given to chairv2_config; the build reads it


def chairv2_config(
    *,
    test_fraction: float = 0.0,
    split_salt: str = "chairv2",
    single_point: str = "keep",
    source_dir: Optional[os.PathLike] = None,
    name: Optional[str] = None,
) -> Chairv2Config:
    """A :class:`Chairv2Config` whose photo ids are those in ``source_dir/photo``.

    Raises:
      ValueError: no photo folder (pass ``source_dir``), bad fraction or policy.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in [0, 1), got {test_fraction}")
    if single_point not in SINGLE_POINT_POLICIES:
        raise ValueError(f"unknown single_point policy {single_point!r}; use one of {SINGLE_POINT_POLICIES}")
    directory = pathlib.Path(source_dir) if source_dir is not None else _default_dir()
    if directory is None or not (directory / "photo").is_dir():
        raise ValueError(f"no Chair-V2 photo folder at {directory and directory / 'photo'}; pass source_dir")
    photo_ids = tuple(sorted(p.stem for p in (directory / "photo").glob("*.png")))
    if not photo_ids:
        raise ValueError(f"{directory / 'photo'}: no PNG photos")
    digest = config_digest(photo_ids, test_fraction, split_salt, single_point)
    return Chairv2Config(
        name=name or f"{len(photo_ids)}photos-{digest}",
        description=f"Chair-V2 coordinate pickle, {len(photo_ids)} photos, test fraction {test_fraction}",
        photo_ids=photo_ids,
        test_fraction=float(test_fraction),
        split_salt=split_salt,
        single_point=single_point,
        # the build reads this folder (it read the data root's whatever the folder given here)
        source_dir=None if source_dir is None else os.path.abspath(os.fspath(source_dir)),
    )


def _source_folder(cfg, manual_dir: Optional[os.PathLike]) -> Optional[pathlib.Path]:
    """``prepare``'s ``manual_dir``, else the config's ``source_dir``, else the data root's folder."""
    return input_folder(cfg.source_dir, manual_dir, _default_dir(), "source_dir")


class QmulChairv2(ArrayRecordBuilder):
    """QMUL Chair-V2 vector sketches paired with their photos."""

    VERSION = tfds.core.Version("1.0.1")
    RELEASE_NOTES = {
        "1.0.0": "Initial release (training pickle, PNG photos).",
        "1.0.1": "Photos other than 8-bit RGB PNGs are stored converted to 8-bit RGB (transparent areas on white); "
                 "1.0.0 stored them as is (RGBA read back as [H, W, 4], 16-bit wrapped); corrupt photos named.",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"""\
    Put the coordinate pickle (the public `{CHAIRV2_PICKLES[0]}` or `{CHAIRV2_PICKLES[1]}`) and
    the `photo/` folder of PNGs of QMUL Chair-V2 in the manual directory (default: the data
    root's qmul_chairv2 folder).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        feats = sketch_features()
        feats.update(
            photo=tfds.features.Image(shape=(None, None, 3), encoding_format="png", doc="the chair photo"),
            photo_id=tfds.features.Text(doc="photo stem, e.g. '00140128_v1'"),
            label=tfds.features.ClassLabel(names=list(self.builder_config.photo_ids)),
            key=tfds.features.Text(doc="key in the pickle, '/<split>/<photo-stem>_<n>'"),
        )
        return tfds.core.DatasetInfo(
            builder=self,
            description="QMUL Chair-V2 fine-grained SBIR: vector sketches (256 canvas) with photos.",
            features=tfds.features.FeaturesDict(feats),
            homepage="https://www.eecs.qmul.ac.uk/~qian/Project_CVPR16.html",
            citation="Yu et al., Sketch Me That Shoe, CVPR 2016.",
        )

    @classmethod
    def local_inputs(cls, config, manual_dir):
        directory = _source_folder(config, manual_dir)
        pickle_path = _pickle_in(directory)
        if pickle_path is None:
            return []  # the build names what is missing
        photos = [directory / "photo" / f"{stem}.png" for stem in config.photo_ids]
        return [pickle_path] + [p for p in photos if p.is_file()]

    def _split_generators(self, dl_manager):
        directory = _source_folder(self.builder_config, self.input_dir(dl_manager, None))
        pickle_path = _pickle_in(directory)
        if pickle_path is None:
            raise FileNotFoundError(
                f"no Chair-V2 coordinate pickle ({' or '.join(CHAIRV2_PICKLES)}) in {directory}; pass "
                f"DownloadConfig(manual_dir=...) (instructions: {self.MANUAL_DOWNLOAD_INSTRUCTIONS.strip()})"
            )
        cfg = self.builder_config
        sketches = load_chairv2(pickle_path, single_point=cfg.single_point)
        official = {}
        for key in sketches:
            official.setdefault(chairv2_key_split(key), []).append(key)
        if len(official) > 1:
            if cfg.test_fraction > 0:
                raise ValueError(
                    f"{pickle_path}: the pickle holds the official splits {sorted(official)}; build it "
                    f"with test_fraction=0 (a hash split applies to a training-only pickle)"
                )
            groups = official
        else:
            fractions = (1.0 - cfg.test_fraction, 0.0, cfg.test_fraction)
            groups = {}
            for key in sketches:
                groups.setdefault(split_of(chairv2_photo_stem(key), fractions, cfg.split_salt), []).append(key)
            groups = {name: groups.get(name, []) for name in (("train", "test") if cfg.test_fraction > 0 else ("train",))}
            empty = [name for name, keys in groups.items() if not keys]
            if empty:  # TFDS would stop on it with a bare AssertionError
                photos = len({chairv2_photo_stem(k) for k in sketches})
                raise ValueError(
                    f"{pickle_path}: no photo of the {photos} hashes to the {empty[0]!r} split with "
                    f"test_fraction={cfg.test_fraction} (split_salt={cfg.split_salt!r}); choose another "
                    "test_fraction or split_salt"
                )
        return {
            name: self._generate_examples(pickle_path, {k: sketches[k] for k in keys})
            for name, keys in groups.items()
        }

    def _generate_examples(self, pickle_path: pathlib.Path, sketches: dict) -> Iterator[tuple[str, dict]]:
        known = set(self.builder_config.photo_ids)
        photos: dict = {}  # stem -> what is stored (a photo has several sketches)
        for key, sketch in sketches.items():
            stem = chairv2_photo_stem(key)
            photo = pickle_path.parent / "photo" / f"{stem}.png"
            if stem not in known or not photo.is_file():
                raise FileNotFoundError(f"{pickle_path}[{key!r}]: no photo {photo}")
            if stem not in photos:
                photos[stem] = _stored_photo(photo)
            ex = encode_sketch(sketch, name=key)
            ex.update(photo=photos[stem], photo_id=stem, label=stem, key=key)
            yield key, ex


def _stored_photo(path: pathlib.Path):
    """What the ``photo`` feature stores: the file's path when it is an 8-bit RGB PNG (kept as
    is), else the photo converted to 8-bit RGB — transparent areas on white — and encoded as PNG
    bytes (stored as is, an RGBA or grayscale PNG read back as ``[H, W, 4]`` / ``[H, W, 1]``, and
    a 16-bit one wrapped around in TFDS's cast to uint8; Pillow reads both right).

    Raises:
      SketchError: naming the photo when it cannot be decoded (a truncated PNG built and then
        failed on reading, unnamed).
    """
    from PIL import Image, UnidentifiedImageError  # matplotlib's dependency

    try:
        with open(path, "rb") as f:
            head = f.read(26)  # PNG signature, IHDR: width, height, bit depth (byte 24), colour type (25)
        with Image.open(path) as im:
            im.load()  # decodes every pixel: a truncated file fails here
            if head[:8] == b"\x89PNG\r\n\x1a\n" and head[12:16] == b"IHDR" and head[24:26] == bytes([8, 2]):
                return os.fspath(path)  # 8-bit RGB, no alpha
            if im.mode in ("RGBA", "LA", "PA") or "transparency" in im.info:
                rgba = im.convert("RGBA")
                im = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
            buffer = io.BytesIO()
            im.convert("RGB").save(buffer, format="PNG")
            return buffer.getvalue()
    except (UnidentifiedImageError, OSError, ValueError) as e:
        raise SketchError(f"{path}: cannot read the photo ({type(e).__name__}: {e}); a corrupt or truncated "
                          "PNG? Replace it") from None
