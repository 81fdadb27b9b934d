"""``quickdraw_strokes``: QuickDraw sketches as a TFDS dataset (array_record, no TensorFlow).

Sources (``QuickdrawConfig.source``), one file per category:

* ``"simplified"`` — simplified ndjson (0-255 integer pixels, RDP-simplified);
* ``"raw"`` — raw ndjson (screen pixels, with timestamps kept in ``time``);
* ``"npz"`` — sketch-rnn stroke-3 ``.npz`` (its own ``train/valid/test`` splits are kept).

Files are read from a manual directory (``DownloadConfig(manual_dir=...)``), else from the data
root's ``quickdraw/simplified`` / ``quickdraw/raw`` / ``sketchrnn_npz``; categories missing
there are downloaded from Google's public bucket with the TFDS download manager (names are
checked against :data:`QUICKDRAW_CATEGORIES` first, and ``prepare(..., download=False)`` or
``$SKETCHJAX_OFFLINE`` turn downloads off: missing files then fail at once, naming them).

Splits of the ndjson sources are assigned by a hash of ``key_id`` (:func:`split_of`), so a
drawing keeps its split when categories are added, removed or reordered, on every machine.
Files are streamed line by line; each split's pass parses only its own lines in full (the
``key_id`` is found with a byte search first), so a 100k-line file is parsed once per build.

Build::

    builder = QuickdrawStrokes.prepare(quickdraw_config(categories=["cat", "dog"]), "/tmp/tfds")
    train = tfds.data_source(f"quickdraw_strokes/{builder.builder_config.name}",
                             split="train", data_dir="/tmp/tfds")
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import pathlib
import socket
import urllib.parse
import warnings
import zipfile
from typing import Iterator, Optional, Sequence

import numpy as np
import tensorflow_datasets as tfds

from sketchjax._checks import check_int
from sketchjax.data.builder import (ArrayRecordBuilder, CompactReprConfig, config_digest, encode_sketch, input_folder,
                                    optional_text, some_examples, sketch_features)
from sketchjax.data.splits import SPLIT_NAMES, check_fractions, split_of
from sketchjax.formats import from_stroke3, load_npz, ndjson_files, record_to_sketch
from sketchjax.formats._io import open_lines
from sketchjax.formats.ndjson import NDJSON_SUFFIXES, json_line
from sketchjax.formats.strokes import SINGLE_POINT_POLICIES
from sketchjax.paths import DATA_ENV_VAR, OFFLINE_ENV_VAR, data_root, downloads_allowed
from sketchjax.sketch import SketchError

__all__ = [
    "QUICKDRAW_SOURCES",
    "QUICKDRAW_URLS",
    "QUICKDRAW_CATEGORIES",
    "QuickdrawConfig",
    "label_order",
    "QuickdrawStrokes",
    "quickdraw_config",
    "quickdraw_url",
    "local_quickdraw_dir",
    "list_categories",
]

QUICKDRAW_SOURCES = ("simplified", "raw", "npz")

#: Google's public locations of the full per-category files (``{}`` = category name).
QUICKDRAW_URLS = {
    "simplified": "https://storage.googleapis.com/quickdraw_dataset/full/simplified/{}.ndjson",
    "raw": "https://storage.googleapis.com/quickdraw_dataset/full/raw/{}.ndjson",
    "npz": "https://storage.googleapis.com/quickdraw_dataset/sketchrnn/{}.npz",
}

#: The 345 categories of the public QuickDraw dataset (its ``categories.txt``; the names of the
#: per-category files in every source), sorted as :func:`label_order` sorts.
QUICKDRAW_CATEGORIES = (
    "The Eiffel Tower", "The Great Wall of China", "The Mona Lisa", "aircraft carrier", "airplane",
    "alarm clock", "ambulance", "angel", "animal migration", "ant", "anvil", "apple", "arm",
    "asparagus", "axe", "backpack", "banana", "bandage", "barn", "baseball", "baseball bat",
    "basket", "basketball", "bat", "bathtub", "beach", "bear", "beard", "bed", "bee", "belt",
    "bench", "bicycle", "binoculars", "bird", "birthday cake", "blackberry", "blueberry", "book",
    "boomerang", "bottlecap", "bowtie", "bracelet", "brain", "bread", "bridge", "broccoli", "broom",
    "bucket", "bulldozer", "bus", "bush", "butterfly", "cactus", "cake", "calculator", "calendar",
    "camel", "camera", "camouflage", "campfire", "candle", "cannon", "canoe", "car", "carrot",
    "castle", "cat", "ceiling fan", "cell phone", "cello", "chair", "chandelier", "church",
    "circle", "clarinet", "clock", "cloud", "coffee cup", "compass", "computer", "cookie", "cooler",
    "couch", "cow", "crab", "crayon", "crocodile", "crown", "cruise ship", "cup", "diamond",
    "dishwasher", "diving board", "dog", "dolphin", "donut", "door", "dragon", "dresser", "drill",
    "drums", "duck", "dumbbell", "ear", "elbow", "elephant", "envelope", "eraser", "eye",
    "eyeglasses", "face", "fan", "feather", "fence", "finger", "fire hydrant", "fireplace",
    "firetruck", "fish", "flamingo", "flashlight", "flip flops", "floor lamp", "flower",
    "flying saucer", "foot", "fork", "frog", "frying pan", "garden", "garden hose", "giraffe",
    "goatee", "golf club", "grapes", "grass", "guitar", "hamburger", "hammer", "hand", "harp",
    "hat", "headphones", "hedgehog", "helicopter", "helmet", "hexagon", "hockey puck",
    "hockey stick", "horse", "hospital", "hot air balloon", "hot dog", "hot tub", "hourglass",
    "house", "house plant", "hurricane", "ice cream", "jacket", "jail", "kangaroo", "key",
    "keyboard", "knee", "knife", "ladder", "lantern", "laptop", "leaf", "leg", "light bulb",
    "lighter", "lighthouse", "lightning", "line", "lion", "lipstick", "lobster", "lollipop",
    "mailbox", "map", "marker", "matches", "megaphone", "mermaid", "microphone", "microwave",
    "monkey", "moon", "mosquito", "motorbike", "mountain", "mouse", "moustache", "mouth", "mug",
    "mushroom", "nail", "necklace", "nose", "ocean", "octagon", "octopus", "onion", "oven", "owl",
    "paint can", "paintbrush", "palm tree", "panda", "pants", "paper clip", "parachute", "parrot",
    "passport", "peanut", "pear", "peas", "pencil", "penguin", "piano", "pickup truck",
    "picture frame", "pig", "pillow", "pineapple", "pizza", "pliers", "police car", "pond", "pool",
    "popsicle", "postcard", "potato", "power outlet", "purse", "rabbit", "raccoon", "radio", "rain",
    "rainbow", "rake", "remote control", "rhinoceros", "rifle", "river", "roller coaster",
    "rollerskates", "sailboat", "sandwich", "saw", "saxophone", "school bus", "scissors",
    "scorpion", "screwdriver", "sea turtle", "see saw", "shark", "sheep", "shoe", "shorts",
    "shovel", "sink", "skateboard", "skull", "skyscraper", "sleeping bag", "smiley face", "snail",
    "snake", "snorkel", "snowflake", "snowman", "soccer ball", "sock", "speedboat", "spider",
    "spoon", "spreadsheet", "square", "squiggle", "squirrel", "stairs", "star", "steak", "stereo",
    "stethoscope", "stitches", "stop sign", "stove", "strawberry", "streetlight", "string bean",
    "submarine", "suitcase", "sun", "swan", "sweater", "swing set", "sword", "syringe", "t-shirt",
    "table", "teapot", "teddy-bear", "telephone", "television", "tennis racquet", "tent", "tiger",
    "toaster", "toe", "toilet", "tooth", "toothbrush", "toothpaste", "tornado", "tractor",
    "traffic light", "train", "tree", "triangle", "trombone", "truck", "trumpet", "umbrella",
    "underwear", "van", "vase", "violin", "washing machine", "watermelon", "waterslide", "whale",
    "wheel", "windmill", "wine bottle", "wine glass", "wristwatch", "yoga", "zebra", "zigzag",
)

# A category's file: the first of these names found (ndjson may be gzipped).
_SUFFIXES = {"simplified": NDJSON_SUFFIXES, "raw": NDJSON_SUFFIXES, "npz": (".npz",)}
# Where each source lives under the data root (see /work/shared/data/README.md).
_LOCAL_DIR = {"simplified": ("quickdraw", "simplified"), "raw": ("quickdraw", "raw"), "npz": ("sketchrnn_npz",)}
_KEY_MARK = b'"key_id":"'


def quickdraw_url(source: str, category: str) -> str:
    """Public URL of one category's file, e.g. ``.../full/simplified/The%20Eiffel%20Tower.ndjson``."""
    return QUICKDRAW_URLS[source].format(urllib.parse.quote(category))


def local_quickdraw_dir(source: str) -> Optional[pathlib.Path]:
    """The data root's folder for ``source`` (None when there is no data root or folder)."""
    try:
        path = data_root().joinpath(*_LOCAL_DIR[source])
    except FileNotFoundError:
        return None
    return path if path.is_dir() else None


def list_categories(directory: os.PathLike, source: str = "simplified") -> list[str]:
    """Sorted category names of the ``*.ndjson`` / ``*.ndjson.gz`` (or ``*.npz``) files in
    ``directory``."""
    if _SUFFIXES[source] == NDJSON_SUFFIXES:
        return [category for category, _ in ndjson_files(directory)]
    names = set()
    for p in pathlib.Path(directory).iterdir():
        names.update(p.name[: -len(suffix)] for suffix in _SUFFIXES[source] if p.name.endswith(suffix))
    return sorted(names)


@dataclasses.dataclass(eq=False, repr=False)  # CompactReprConfig's repr
class QuickdrawConfig(CompactReprConfig, tfds.core.BuilderConfig):
    """What to build; make one with :func:`quickdraw_config` (it fills in a unique ``name``).

    Attributes:
      source: ``"simplified"``, ``"raw"`` or ``"npz"``.
      categories: category names; labels are their indices in this (sorted) tuple.
      fractions: ``(train, valid, test)`` of the key_id hash split (ndjson sources; npz
        files keep their own splits).  A zero fraction omits that split.
      split_salt: mixed into the hash; change it to draw a different (still stable) split.
      single_point: policy for one-point strokes (raw files have taps); ``"keep"`` is lossless.
      max_per_category: read only the first this-many drawings of each file (npz: of each
        of its splits); None = all.
      bad_records: ``"error"`` (default): a record that cannot be read (corrupt JSON, no
        key_id, NaN or out-of-range coordinates, a repeated key_id) stops the build, naming it;
        ``"skip"``: such records are left out, counted, and named in a warning at the end of
        each split — for the full-size originals, where one bad line in millions should not
        stop an hour-long build.
      category_dir: the folder of input files given to :func:`quickdraw_config` (a build reads
        its files from there unless ``prepare(manual_dir=...)`` names the same folder); None =
        the data root's folder for ``source``. Not part of the name: the input files' digest is.
    """

    source: str = "simplified"
    categories: tuple[str, ...] = ()
    fractions: tuple[float, float, float] = (0.9, 0.05, 0.05)
    split_salt: str = "quickdraw"
    single_point: str = "keep"
    max_per_category: Optional[int] = None
    bad_records: str = "error"
    category_dir: Optional[str] = None


BAD_RECORD_POLICIES = ("error", "skip")


def label_order(categories) -> tuple[str, ...]:
    """The class names in label order, as :func:`quickdraw_config` assigns labels: distinct and
    sorted (so a config may list its categories in any order)."""
    if isinstance(categories, str):  # a bare name would be taken letter by letter
        raise ValueError(f"categories must be a list of names, got the string {categories!r}; e.g. [{categories!r}]")
    return tuple(sorted(set(str(c) for c in categories)))


def quickdraw_config(
    source: str = "simplified",
    categories: Optional[Sequence[str]] = None,
    *,
    fractions: Sequence[float] = (0.9, 0.05, 0.05),
    split_salt: str = "quickdraw",
    single_point: str = "keep",
    max_per_category: Optional[int] = None,
    bad_records: str = "error",
    category_dir: Optional[os.PathLike] = None,
    name: Optional[str] = None,
) -> QuickdrawConfig:
    """A validated :class:`QuickdrawConfig` with a name that encodes its settings.

    Args:
      categories: category names (any order, sorted here); None = every file in
        ``category_dir`` (default: the data root's folder for ``source``).
      category_dir: the folder of input files (``<category>.ndjson``, gzipped or not, also as
        ``<category>.ndjson.gz``; or ``<category>.npz``); the build
        reads from it (files missing there are downloaded). Default: the data root's folder.
      name: config name (the dataset's sub-folder); default
        ``"<source>-<n>cat-<digest of all settings>"``, so different settings never share files.

    Raises:
      ValueError: unknown source or policy, bad fractions, no categories found.
    """
    if source not in QUICKDRAW_SOURCES:
        raise ValueError(f"unknown QuickDraw source {source!r}; use one of {QUICKDRAW_SOURCES}")
    if single_point not in SINGLE_POINT_POLICIES:
        raise ValueError(f"unknown single_point policy {single_point!r}; use one of {SINGLE_POINT_POLICIES}")
    if max_per_category is not None:  # 1.5 read 2 lines of an ndjson file, NaN all of them
        max_per_category = check_int("quickdraw_config", "max_per_category", max_per_category, 1, why=" or None")
    if bad_records not in BAD_RECORD_POLICIES:
        raise ValueError(f"unknown bad_records policy {bad_records!r}; use one of {BAD_RECORD_POLICIES}")
    fr = check_fractions(fractions)
    if categories is None:
        directory = pathlib.Path(category_dir) if category_dir is not None else local_quickdraw_dir(source)
        if directory is None or not directory.is_dir():
            if category_dir is not None:
                where = f"category_dir {directory} is not a folder"
            else:
                try:
                    root = data_root()
                    where = f"the data root {root} has no {'/'.join(_LOCAL_DIR[source])} folder"
                except FileNotFoundError as e:  # its message says how to point the library at the data
                    where = str(e)
            raise ValueError(f"categories=None needs a folder of {source} files to list ({where}); "
                             "pass the category names explicitly or point to the files")
        categories = list_categories(directory, source)
    cats = label_order(categories)
    if not cats:
        raise ValueError("no categories given (or none found)")
    # (the default policy adds nothing, so names made before the policy existed still match)
    digest = config_digest(source, cats, fr, split_salt, single_point, max_per_category,
                           *(() if bad_records == "error" else (f"bad_records={bad_records}",)))
    return QuickdrawConfig(
        name=name or f"{source}-{len(cats)}cat-{digest}",
        description=f"QuickDraw {source}, {len(cats)} categories, fractions {fr}",
        source=source,
        categories=cats,
        fractions=fr,
        split_salt=split_salt,
        single_point=single_point,
        max_per_category=max_per_category,
        bad_records=bad_records,
        # absolute: a build in another working directory reads the same folder
        category_dir=None if category_dir is None else os.path.abspath(os.fspath(category_dir)),
    )


def _local_files(cfg, directory: Optional[pathlib.Path]) -> dict[str, pathlib.Path]:
    """``{category: file}`` of the config's categories found in ``directory``."""
    files = {}
    if directory is not None:
        for cat in cfg.categories:
            for suffix in _SUFFIXES[cfg.source]:
                path = directory / f"{cat}{suffix}"
                if path.is_file():
                    files[cat] = path
                    break
    return files


def _input_folder(cfg, manual_dir: Optional[os.PathLike]) -> Optional[pathlib.Path]:
    """The folder a build reads (:func:`sketchjax.data.builder.input_folder`): ``prepare``'s
    ``manual_dir``, else the config's own ``category_dir``, else the data root's folder."""
    return input_folder(cfg.category_dir, manual_dir, local_quickdraw_dir(cfg.source), "category_dir")


def _named(categories: Sequence[str], shown: int = 5) -> str:
    """``categories 'a', 'b' and 3 more`` (``category 'a'`` for one)."""
    names = ", ".join(repr(c) for c in categories[:shown])
    more = f" and {len(categories) - shown} more" if len(categories) > shown else ""
    return f"categor{'y' if len(categories) == 1 else 'ies'} {names}{more}"


def _fetch_hint(source: str, directory: Optional[pathlib.Path]) -> str:
    where = f"into {directory}" if directory is not None else "into a folder passed as manual_dir"
    return (f"Put the files ({QUICKDRAW_URLS[source].format('<category>')}) {where}, "
            f"or point ${DATA_ENV_VAR} / manual_dir at a folder that has them.")


def _cached(dl_manager, url: str) -> bool:
    """Whether TFDS's download manager holds ``url`` from an earlier download (then it needs no
    network).  Asks the manager's own cache lookup (a TFDS internal, probed defensively: when it
    is missing or fails, the file counts as not cached)."""
    probe = getattr(dl_manager, "_get_url_dl_result", None)
    if probe is None:
        return False
    try:
        from tensorflow_datasets.core.download import resource as resource_lib

        res = resource_lib.Resource(url=url)
        return bool(probe(res) or probe(res, legacy_mode=True))
    except Exception:  # noqa: BLE001 — any surprise: treat as not cached (the checks then apply)
        return False


_PROXY_VARS = ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")


def _download_urls(source: str, missing: Sequence[str], directory: Optional[pathlib.Path], allowed: bool,
                   dl_manager=None) -> dict:
    """``{category: url}`` of the categories to download, after the checks that can fail fast.
    Files already in the download manager's cache pass without network checks.

    Raises:
      ValueError: a name that is not a public QuickDraw category (a typo: nothing to download).
      FileNotFoundError: downloads are off (``download=False`` / ``$SKETCHJAX_OFFLINE``).
      ConnectionError: Google's bucket cannot be resolved (no internet: TFDS would retry for
        minutes); not checked behind an HTTPS proxy (``$HTTPS_PROXY`` / ``$ALL_PROXY``), where
        the proxy resolves names.
    """
    looked = f"not found in {directory}" if directory is not None else "no local folder of them"
    unknown = [c for c in missing if c not in QUICKDRAW_CATEGORIES]
    if unknown:
        close = {c: difflib.get_close_matches(c, QUICKDRAW_CATEGORIES, n=1) for c in unknown}
        hints = "; ".join(f"{c!r}: did you mean {m[0]!r}?" for c, m in close.items() if m)
        raise ValueError(
            f"{_named(unknown)} {looked} and not among the {len(QUICKDRAW_CATEGORIES)} public QuickDraw "
            f"categories, so there is nothing to download" + (f" ({hints})" if hints else "")
        )
    urls = {cat: quickdraw_url(source, cat) for cat in missing}
    fetch = [cat for cat in missing if not (dl_manager is not None and _cached(dl_manager, urls[cat]))]
    if fetch and not allowed:
        raise FileNotFoundError(
            f"{_named(fetch)} of source {source!r}: {looked}, and downloads are off "
            f"(download=False or ${OFFLINE_ENV_VAR}). {_fetch_hint(source, directory)}"
        )
    host = urllib.parse.urlsplit(QUICKDRAW_URLS[source]).hostname
    try:
        if fetch and not any(os.environ.get(v) for v in _PROXY_VARS):
            socket.getaddrinfo(host, 443)
    except OSError as e:
        raise ConnectionError(
            f"{_named(fetch)} of source {source!r}: {looked}, and {host}, where they would be "
            f"downloaded from, cannot be reached ({e}). {_fetch_hint(source, directory)}"
        ) from e
    return urls


class QuickdrawStrokes(ArrayRecordBuilder):
    """QuickDraw vector sketches (points, pen, optional time) with labels and metadata.

    ``recognized`` is stored False for a record without that field (the feature is a plain
    boolean); QuickDraw's own files always carry it — check your own ndjson files before
    reading it as the game's verdict (``eval/quality.py --sketches`` refuses such records).
    """

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Initial release: simplified/raw ndjson and sketch-rnn npz sources."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Optional. Put per-category files in the manual directory: `<category>.ndjson` (simplified
    or raw QuickDraw ndjson; may be gzipped, also named `<category>.ndjson.gz`) or `<category>.npz` (sketch-rnn). Without one, the data root's
    quickdraw/simplified, quickdraw/raw or sketchrnn_npz folder is used, and categories not
    found there are downloaded from https://storage.googleapis.com/quickdraw_dataset/
    (unless `download=False` or $SKETCHJAX_OFFLINE is set).
    """

    @property
    def _config(self) -> QuickdrawConfig:
        return self.builder_config

    def _info(self) -> tfds.core.DatasetInfo:
        cfg = self._config
        feats = sketch_features(with_time=cfg.source == "raw")
        feats["label"] = tfds.features.ClassLabel(names=list(cfg.categories))
        feats["key_id"] = tfds.features.Text(doc="QuickDraw key_id (npz: '<split>:<index>')")
        if cfg.source != "npz":
            feats["recognized"] = tfds.features.Scalar(dtype=np.bool_, doc="recognised by the game")
            feats["countrycode"] = tfds.features.Text(doc="two-letter country code")
        return tfds.core.DatasetInfo(
            builder=self,
            description="QuickDraw sketches as absolute-coordinate point sequences with pen states.",
            features=tfds.features.FeaturesDict(feats),
            homepage="https://github.com/googlecreativelab/quickdraw-dataset",
            citation="Ha & Eck, A Neural Representation of Sketch Drawings, ICLR 2018.",
            license="CC BY 4.0",
        )

    @classmethod
    def local_inputs(cls, config, manual_dir):
        return list(_local_files(config, _input_folder(config, manual_dir)).values())

    def _source_files(self, dl_manager) -> dict[str, pathlib.Path]:
        cfg = self._config
        directory = _input_folder(cfg, self.input_dir(dl_manager, None))
        files = _local_files(cfg, directory)
        missing = [cat for cat in cfg.categories if cat not in files]
        if missing:
            urls = _download_urls(cfg.source, missing, directory, downloads_allowed(self.allow_download), dl_manager)
            try:  # needs internet; the tests stop before this line
                files.update({cat: pathlib.Path(p) for cat, p in dl_manager.download(urls).items()})
            except OSError as e:
                raise ConnectionError(f"downloading {_named(missing)} failed: {e}. {_fetch_hint(cfg.source, directory)}") from e
        return files

    def _split_generators(self, dl_manager):
        # TFDS refuses to write an empty split, so only splits that will get examples are
        # listed (small category files can leave `valid` or `test` empty).
        files = self._source_files(dl_manager)
        if self._config.source == "npz":  # sketch-rnn's own splits
            splits = _npz_split_names(files.values())
        else:
            for cat, path in files.items():
                _check_has_lines(path, cat)
            splits = _ndjson_split_names(files.values(), self._config)
        self._splits = list(splits)  # the first one counts skipped lines that have no key_id
        why = ("every drawing of it in the npz files was left out as unreadable (bad_records='skip')"
               if self._config.source == "npz" else
               "every line of it was left out as unreadable (bad_records='skip') or repeats an earlier key_id")
        return {split: some_examples(self._generate_examples(files, split), f"QuickDraw {self._config.source}",
                                     split, why)
                for split in splits}

    def _generate_examples(self, files: dict, split: str) -> Iterator[tuple[str, dict]]:
        if self._config.source == "npz":
            return self._npz_examples(files, split)
        return self._ndjson_examples(files, split)

    def _ndjson_examples(self, files: dict, split: str) -> Iterator[tuple[str, dict]]:
        cfg = self._config
        bad = _BadRecords(cfg.bad_records, split)
        for label, cat in enumerate(cfg.categories):
            first_seen = {}  # key_id -> line (a repeated key_id hashes to the same split); a number, not
            # the "path:line" text (38 MiB per 180k drawings of a full-size category)
            for where, key_id, obj in _iter_split_lines(files[cat], split, cfg, bad, self._splits):
                try:
                    line = int(where.rsplit(":", 1)[-1])
                    earlier = first_seen.setdefault(key_id, line)
                    if earlier != line:
                        raise SketchError(f"{where}: key_id {key_id} is also on line {earlier} of "
                                          "this file; a key_id names one drawing (a file appended to itself?)")
                    ex = _stored_example(obj, where, cfg)
                except SketchError as e:
                    bad(e)
                    continue
                ex.update(label=label, key_id=key_id)
                yield f"{cat}/{key_id}", ex
        bad.report()

    def _npz_examples(self, files: dict, split: str) -> Iterator[tuple[str, dict]]:
        cfg = self._config
        bad = _BadRecords(cfg.bad_records, split)
        for label, cat in enumerate(cfg.categories):
            path = files[cat]
            drawings = load_npz(path, splits=(split,)).get(split)  # this split's member only
            if drawings is None:  # another file has the split: this category would be missing from it, unseen
                warnings.warn(f"{path}: has no {split!r} array, so the {split!r} split has no {cat!r} examples",
                              stacklevel=2)
                continue
            for i, stroke3 in enumerate(drawings[: cfg.max_per_category]):
                where = f"{path}[{split!r}][{i}]"
                try:
                    ex = encode_sketch(from_stroke3(stroke3, name=where, single_point=cfg.single_point), name=where)
                except SketchError as e:
                    bad(e)
                    continue
                ex.update(label=label, key_id=f"{split}:{i}")
                yield f"{cat}/{split}/{i}", ex
        bad.report()


class _BadRecords:
    """What one split's pass does with a record that cannot be read: raise its SketchError
    (policy ``"error"``, with a hint at the other policy) or count it and name the first few in
    one warning at the end (``"skip"``)."""

    shown = 3

    def __init__(self, policy: str, split: str):
        self.policy, self.split, self.count, self.first = policy, split, 0, []

    def __call__(self, error: SketchError) -> None:
        if self.policy == "error":
            raise SketchError(f"{error} (quickdraw_config(..., bad_records='skip') leaves such records out)") from None
        self.count += 1
        if len(self.first) < self.shown:
            self.first.append(str(error))

    def report(self) -> None:
        if self.count:
            warnings.warn(f"QuickDraw build, split {self.split!r}: left out {self.count} record(s) that could not be "
                          f"read (bad_records='skip'), first: " + "; ".join(self.first), stacklevel=2)


def _quick_key_id(raw: bytes) -> Optional[str]:
    """The key_id of a compact Google ndjson line by byte search (None if not found, or found
    more than once: a nested field of that name, so the line is parsed)."""
    start = raw.find(_KEY_MARK)
    if start < 0 or raw.find(_KEY_MARK, start + 1) >= 0:
        return None
    start += len(_KEY_MARK)
    quick = raw[start : raw.find(b'"', start)]
    return quick.decode("ascii") if quick.isdigit() else None


def _ndjson_split_names(paths, cfg: QuickdrawConfig) -> list[str]:
    """The splits with at least one line (TFDS refuses an empty split): key_ids found by byte
    search, or by parsing a line without the compact ``"key_id":"..."`` form.  Under
    ``bad_records="skip"`` a line counts for its split only once it reads in full (a split
    whose every line is left out is not listed: TFDS refuses a split that yields nothing), and
    a category file none of whose lines reads is refused: its class would get no examples."""
    wanted = [s for s, f in zip(SPLIT_NAMES, cfg.fractions) if f > 0]
    seen = set()
    for path in paths:
        readable, first_problem = False, None
        with open_lines(path) as lines:
            count = 0
            for lineno, raw in lines:
                if cfg.max_per_category is not None and count >= cfg.max_per_category:
                    break
                if not raw.strip():
                    continue
                count += 1
                key_id = _quick_key_id(raw)
                if key_id is None or cfg.bad_records == "skip":
                    where = f"{os.fspath(path)}:{lineno}"
                    try:
                        obj = _parse_line(raw, where)
                        key_id = _key_id_of(obj, where)
                        if cfg.bad_records == "skip":
                            _stored_example(obj, where, cfg)
                    except SketchError as e:
                        if cfg.bad_records == "error":
                            _BadRecords("error", "")(e)  # raises, with the hint
                        first_problem = first_problem or str(e)
                        continue
                readable = True
                seen.add(split_of(key_id, cfg.fractions, cfg.split_salt))
                if len(seen) == len(wanted):
                    break  # the other files are read only up to their first readable line
        if not readable and first_problem is not None:
            raise SketchError(
                f"{os.fspath(path)}: none of its {count} record(s){_read_limit(cfg)} could be read, so "
                f"bad_records='skip' would leave the class with no examples; first: {first_problem}")
    return [s for s in wanted if s in seen]


def _read_limit(cfg: QuickdrawConfig) -> str:
    return "" if cfg.max_per_category is None else f" (the first {cfg.max_per_category} read, max_per_category)"


def _npz_split_names(paths) -> list[str]:
    """The sketch-rnn splits with at least one drawing in any of the npz files (read from the
    members' ``.npy`` headers, nothing unpickled; an empty member made TFDS stop unnamed); all
    three if a file is unreadable: building then reports the bad file."""
    present = set()
    for path in paths:
        try:
            with zipfile.ZipFile(path) as zf:
                for member in zf.namelist():
                    with zf.open(member) as f:
                        fmt = np.lib.format
                        read = fmt.read_array_header_1_0 if fmt.read_magic(f) == (1, 0) else fmt.read_array_header_2_0
                        shape = read(f)[0]
                    if len(shape) != 1 or shape[0] > 0:  # a malformed member: the build names it
                        present.add(member[:-4] if member.endswith(".npy") else member)
        except (OSError, ValueError, zipfile.BadZipFile):
            return list(SPLIT_NAMES)
    return [s for s in SPLIT_NAMES if s in present]


def _iter_split_lines(path: pathlib.Path, split: str, cfg: QuickdrawConfig, bad: "_BadRecords", generated: list):
    """``(path:line, key_id, json object)`` of the ndjson lines whose key_id hashes to ``split``.

    The key_id is found by a byte search first, so lines of other splits are not parsed; a
    line without exactly one compact ``"key_id":"..."`` is parsed to find it (by every pass).
    Every line is yielded or reported by exactly one split's pass, so corrupt lines are always
    reported (to ``bad``, which raises or counts them) and never twice.  A line that belongs to no generated split — no
    readable key_id, or a split left out because every line of it was bad — is read by the
    pass of the first generated split, so a skipped line is always counted, once.
    """
    path = os.fspath(path)
    count = 0
    with open_lines(path) as lines:
        for lineno, raw in lines:
            if cfg.max_per_category is not None and count >= cfg.max_per_category:
                return
            if not raw.strip():
                continue
            count += 1
            where = f"{path}:{lineno}"
            quick = _quick_key_id(raw)
            if quick is not None:
                home = split_of(quick, cfg.fractions, cfg.split_salt)
                if home != split and (home in generated or split != generated[0]):
                    continue
            try:
                obj = _parse_line(raw, where)
                key_id = _key_id_of(obj, where)
                if quick is not None and key_id != quick and split_of(key_id, cfg.fractions, cfg.split_salt) != split:
                    # placed by the wrong key_id: its own split's pass skipped it
                    raise SketchError(f"{where}: key_id {key_id} is not the '\"key_id\":\"{quick}\"' found in the "
                                      "line (a nested field of that name?); the line cannot be placed in a split")
            except SketchError as e:
                if bad.policy == "skip" and quick is None and split != generated[0]:
                    continue  # no key_id to place it by: counted once, by the first split's pass
                bad(e)
                continue
            home = split_of(key_id, cfg.fractions, cfg.split_salt)
            if home == split:
                yield where, key_id, obj
            elif home not in generated and bad.policy == "skip":
                try:  # its split was left out because no line of it reads: say why this one not
                    _stored_example(obj, where, cfg)
                except SketchError as e:
                    bad(e)


def _stored_example(obj: dict, where: str, cfg: QuickdrawConfig) -> dict:
    """What the build stores of a parsed line (less ``label`` and ``key_id``), or SketchError
    naming ``path:line``.  The split listing (under ``bad_records="skip"``) asks the same, so a
    split it lists gets an example (a split of only unreadable lines made TFDS stop unnamed)."""
    sketch = record_to_sketch(obj, name=where, single_point=cfg.single_point)
    ex = encode_sketch(sketch, with_time=cfg.source == "raw", name=where)
    recognized = obj.get("recognized")
    if recognized is not None and not isinstance(recognized, bool):
        raise SketchError(f"{where}: 'recognized' must be true/false, got {recognized!r}")
    ex.update(recognized=bool(recognized), countrycode=optional_text(obj.get("countrycode")))
    return ex


def _check_has_lines(path: pathlib.Path, category: str) -> None:
    """SketchError for a category file without a single sketch (an interrupted download
    leaves an empty file; building would quietly give the class no examples)."""
    with open_lines(path) as lines:
        if any(raw.strip() for _, raw in lines):
            return
    raise SketchError(f"{os.fspath(path)}: no sketches in the file (category {category!r}); "
                      "an interrupted download? Remove it or fetch it again")


def _key_id_of(obj: dict, where: str) -> str:
    """A parsed line's ``key_id`` as text, or SketchError naming ``path:line``."""
    key_id = obj.get("key_id")
    if key_id is None or isinstance(key_id, (dict, list, bool)) or str(key_id) == "":
        raise SketchError(f"{where}: missing or invalid 'key_id' ({key_id!r}); needed for the split")
    return str(key_id)


def _parse_line(raw: bytes, where: str) -> dict:
    """One ndjson line as a JSON object, or SketchError naming ``path:line``."""
    obj = json_line(raw, where)
    if not isinstance(obj, dict):
        raise SketchError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    return obj
