"""``sketchrnn_samples``: sketches *generated* by the pre-trained sketch-rnn decoders (TFDS).

Only ~30 human sketches per category exist in this workplace (the full QuickDraw cannot be
downloaded here); more training volume for the 27 categories with a pre-trained decoder
(``models/sketch_rnn/<category>.gen.json`` under the data root) comes from sampling those
decoders at several temperatures.  **These are model samples, not human drawings**: every
example carries ``generated = True`` and its ``temperature``, so they can be filtered,
weighted or reported separately.

Sampling uses :func:`sketchjax.models.sketch_rnn_js.load_sketch_rnn_js` and
:func:`sketchjax.models.sketch_rnn.sample` (ancestral sampling, the paper's temperature:
``softmax(logits / τ)``, Gaussian variance ``σ² τ``) in chunks of ``sample_batch``; chunk ``c`` of category ``k`` at temperature ``τ``
uses ``fold_in(fold_in(fold_in(PRNGKey(seed), crc32(k)), round(τ·10⁶)), c)``, so a sample
does not depend on the other categories or temperatures of the config.  Offsets are turned
into absolute coordinates in the decoders' data units (model units × the decoder's
``scale_factor``: about 3x the 0-255 frame of simplified ndjson drawings, see
:mod:`sketchjax.models.sketch_rnn_js`; the classifier pipeline fits every sketch to its
canvas, so the scale does not reach a model; the first point is relative to where the pen
started, so coordinates can be negative) by
:func:`~sketchjax.models.sketch_rnn.stroke5_to_sketch`.  Samples of length 0 and samples with
non-finite or out-of-range coordinates are skipped (counted in the build log); samples that
never drew the end-of-sketch state within ``max_len`` steps are kept with
``complete = False``.

Splits: ``train`` only by default; ``fractions`` splits by a hash of the example key (each
split's pass samples the decoders again, so extra splits multiply the build time).
"""
from __future__ import annotations

import dataclasses
import logging
import os
import pathlib
import zlib
from typing import Iterator, Optional, Sequence

import numpy as np
import tensorflow_datasets as tfds

from sketchjax._checks import check_positive_int, check_uint32
from sketchjax.data.builder import (ArrayRecordBuilder, CompactReprConfig, config_digest, input_folder,
                                    sketch_features, some_examples)
from sketchjax.data.splits import SPLIT_NAMES, check_fractions, split_of
from sketchjax.paths import data_root
from sketchjax.sketch import MAX_ABS_COORD

__all__ = [
    "SketchrnnSamples",
    "SketchrnnSamplesConfig",
    "sketchrnn_samples_config",
    "sample_sketches",
    "decoder_categories",
]

_SUFFIX = ".gen.json"
_log = logging.getLogger(__name__)


def _default_dir() -> Optional[pathlib.Path]:
    try:
        path = data_root() / "models" / "sketch_rnn"
    except FileNotFoundError:
        return None
    return path if path.is_dir() else None


def _model_file(category: str) -> str:
    """``"palm tree"`` -> ``"palm_tree.gen.json"`` (the decoders' file names use underscores)."""
    return category.replace(" ", "_") + _SUFFIX


def decoder_categories(directory: os.PathLike) -> list[str]:
    """Sorted QuickDraw category names (spaces, not underscores) of the ``*.gen.json`` files."""
    return sorted(p.name[: -len(_SUFFIX)].replace("_", " ") for p in pathlib.Path(directory).glob(f"*{_SUFFIX}"))


def sample_sketches(
    model_path: os.PathLike,
    *,
    category: str,
    temperature: float,
    num: int,
    seed: int = 0,
    max_len: Optional[int] = None,
    sample_batch: int = 256,
) -> list[Optional[tuple[np.ndarray, np.ndarray, bool]]]:
    """``num`` samples of one decoder at one temperature, as the builder stores them.

    Args:
      model_path: a sketch-rnn-js ``.gen.json`` decoder.
      category: names the category in the RNG derivation (see module docstring).
      temperature: sampling temperature ``τ >= 0``.
      num: number of samples.
      seed: base seed.
      max_len: sampling steps (default: the model's ``max_seq_len``).
      sample_batch: samples per jitted ``sample`` call (part of the RNG derivation).

    Returns:
      One entry per sample index: ``(points float32[n, 2] pixels, pen float32[n], complete)``,
      or None for a skipped sample (length 0, non-finite or beyond ``MAX_ABS_COORD``).
    """
    check_uint32("sample_sketches", "seed", seed)  # PRNGKey wraps larger ones
    import jax  # noqa: PLC0415 — only building this dataset needs JAX sampling

    from sketchjax.models.sketch_rnn import sample, stroke5_to_sketch  # noqa: PLC0415
    from sketchjax.models.sketch_rnn_js import load_sketch_rnn_js  # noqa: PLC0415

    config, params = load_sketch_rnn_js(model_path)
    steps = int(max_len or config.max_len)
    key = jax.random.fold_in(jax.random.PRNGKey(seed), zlib.crc32(category.encode("utf-8")))
    key = jax.random.fold_in(key, int(round(temperature * 1e6)))
    out: list = []
    for chunk, first in enumerate(range(0, num, sample_batch)):
        count = min(sample_batch, num - first)
        strokes, lengths = sample(
            params, config, jax.random.fold_in(key, chunk), num=sample_batch, temperature=temperature, max_len=steps
        )
        sketch = stroke5_to_sketch(strokes, lengths, config.scale_factor)
        xy, pen, lengths = np.asarray(sketch.xy), np.asarray(sketch.pen), np.asarray(lengths)
        for i in range(count):
            n = int(lengths[i])
            points = xy[i, :n].astype(np.float32)
            if n == 0 or not np.isfinite(points).all() or np.abs(points).max() > MAX_ABS_COORD:
                out.append(None)
                continue
            out.append((points, pen[i, :n].astype(np.float32), n < steps))
    return out


@dataclasses.dataclass(eq=False, repr=False)  # CompactReprConfig's repr
class SketchrnnSamplesConfig(CompactReprConfig, tfds.core.BuilderConfig):
    """Attributes: ``categories`` (sorted; labels index them), ``temperatures``,
    ``samples_per_temperature`` (per category), ``max_len`` (None: each model's own),
    ``seed``, ``sample_batch``, ``fractions`` (train, valid, test), ``split_salt``, ``model_dir``
    (the decoders' folder given to :func:`sketchrnn_samples_config`, absolute; None: the data
    root's)."""

    categories: tuple[str, ...] = ()
    temperatures: tuple[float, ...] = (0.1, 0.25, 0.5, 0.75, 1.0)
    samples_per_temperature: int = 100
    max_len: Optional[int] = None
    seed: int = 0
    sample_batch: int = 256
    fractions: tuple[float, float, float] = (1.0, 0.0, 0.0)
    split_salt: str = "sketchrnn_samples"
    model_dir: Optional[str] = None  # the folder given to sketchrnn_samples_config; the build reads it


def sketchrnn_samples_config(
    categories: Optional[Sequence[str]] = None,
    *,
    temperatures: Sequence[float] = (0.1, 0.25, 0.5, 0.75, 1.0),
    samples_per_temperature: int = 100,
    max_len: Optional[int] = None,
    seed: int = 0,
    sample_batch: int = 256,
    fractions: Sequence[float] = (1.0, 0.0, 0.0),
    split_salt: str = "sketchrnn_samples",
    model_dir: Optional[os.PathLike] = None,
    name: Optional[str] = None,
) -> SketchrnnSamplesConfig:
    """A validated config; ``categories=None`` = every decoder in ``model_dir`` (default: the
    data root's ``models/sketch_rnn``).  Category names use spaces (``"palm tree"``)."""
    if isinstance(categories, str):  # a bare name would be taken letter by letter
        raise ValueError(f"categories must be a list of names (or None), got the string {categories!r}; "
                         f"e.g. [{categories!r}]")
    temps = tuple(float(t) for t in temperatures)
    # temperature 0 is greedy decoding: every sample of a category would be the same sketch,
    # under distinct keys that hash into different splits
    if not temps or any(not (0.0 < t <= 10.0) for t in temps) or len(set(temps)) != len(temps):
        raise ValueError(f"temperatures must be distinct numbers in (0, 10] (0 is greedy: every sample the "
                         f"same sketch), got {temperatures}")
    # Sample keys name a temperature by f"{t:g}" and its random stream by round(t * 1e6): two
    # temperatures must differ in both, or their samples would collide.
    if len({f"{t:g}" for t in temps}) != len(temps) or len({round(t * 1e6) for t in temps}) != len(temps):
        raise ValueError(f"temperatures must differ within 6 significant digits and by >= 1e-6, got {temperatures}")
    # whole numbers (10.7 samples were cut to 10, a max_len of 2.5 sampled 2 steps)
    check_positive_int("sketchrnn_samples_config", "samples_per_temperature", samples_per_temperature)
    check_positive_int("sketchrnn_samples_config", "sample_batch", sample_batch)
    if max_len is not None:
        check_positive_int("sketchrnn_samples_config", "max_len (or None)", max_len)
    check_uint32("sketchrnn_samples_config", "seed", seed)
    fr = check_fractions(fractions)
    if categories is None:
        directory = pathlib.Path(model_dir) if model_dir is not None else _default_dir()
        if directory is None or not directory.is_dir():
            raise ValueError(f"categories=None needs a folder of *.gen.json decoders (none at {directory})")
        categories = decoder_categories(directory)
    cats = tuple(sorted(set(str(c).replace("_", " ") for c in categories)))
    if not cats:
        raise ValueError("no categories given (or no decoders found)")
    digest = config_digest(cats, temps, samples_per_temperature, max_len, seed, sample_batch, fr, split_salt)
    return SketchrnnSamplesConfig(
        name=name or f"{len(cats)}cat-{len(temps)}temp-{samples_per_temperature}-{digest}",
        description=f"sketch-rnn samples: {len(cats)} categories, temperatures {temps}",
        categories=cats,
        temperatures=temps,
        samples_per_temperature=int(samples_per_temperature),
        max_len=max_len,
        seed=int(seed),
        sample_batch=int(sample_batch),
        fractions=fr,
        split_salt=split_salt,
        # absolute: a build in another working directory reads the same folder (it was read
        # from the data root whatever the folder given here)
        model_dir=None if model_dir is None else os.path.abspath(os.fspath(model_dir)),
    )


def _decoder_folder(cfg, manual_dir: Optional[os.PathLike]) -> Optional[pathlib.Path]:
    """``prepare``'s ``manual_dir``, else the config's ``model_dir``, else the data root's folder."""
    return input_folder(cfg.model_dir, manual_dir, _default_dir(), "model_dir")


def _decoder_files(cfg, directory: Optional[pathlib.Path]) -> dict[str, pathlib.Path]:
    """``{category: .gen.json decoder}`` of the config's categories found in ``directory``."""
    if directory is None:
        return {}
    return {c: p for c in cfg.categories if (p := directory / _model_file(c)).is_file()}


class SketchrnnSamples(ArrayRecordBuilder):
    """Sketches sampled from the pre-trained sketch-rnn decoders (``generated = True``)."""

    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {
        "1.0.0": "Initial release: unconditional sketch-rnn-js decoders, several temperatures.",
        "1.1.0": "Decoders started from sketch-rnn-js's all-zero first input, which they were trained with "
                 "(1.0.0 fed Magenta's (0, 0, 1, 0, 0): several categories' samples were rarely recognisable).",
    }
    MANUAL_DOWNLOAD_INSTRUCTIONS = """\
    Put the sketch-rnn-js decoders `<category>.gen.json` (Magenta's sketch-rnn-js models) in the
    manual directory (default: the data root's models/sketch_rnn folder).
    """

    def _info(self) -> tfds.core.DatasetInfo:
        feats = sketch_features()
        feats.update(
            label=tfds.features.ClassLabel(names=list(self.builder_config.categories)),
            temperature=tfds.features.Scalar(dtype=np.float32, doc="sampling temperature"),
            generated=tfds.features.Scalar(dtype=np.bool_, doc="always True: a model sample, not a human drawing"),
            complete=tfds.features.Scalar(dtype=np.bool_, doc="the decoder ended the sketch within max_len"),
            key_id=tfds.features.Text(doc="'<category>/<temperature>/<index>'"),
        )
        return tfds.core.DatasetInfo(
            builder=self,
            description="Sketches sampled from Magenta's pre-trained sketch-rnn decoders (generated data).",
            features=tfds.features.FeaturesDict(feats),
            homepage="https://github.com/magenta/magenta-demos/tree/main/sketch-rnn-js",
            citation="Ha & Eck, A Neural Representation of Sketch Drawings, ICLR 2018.",
        )

    @classmethod
    def local_inputs(cls, config, manual_dir):
        return list(_decoder_files(config, _decoder_folder(config, manual_dir)).values())

    def _split_generators(self, dl_manager):
        cfg = self.builder_config
        directory = _decoder_folder(cfg, self.input_dir(dl_manager, None))
        paths = _decoder_files(cfg, directory)
        missing = [c for c in cfg.categories if c not in paths]
        if missing:
            raise FileNotFoundError(f"no sketch-rnn decoder for {missing} in {directory}")
        # the splits some sample key hashes to (TFDS refuses an empty split, unnamed)
        keys = (f"{cat}/{temp:g}/{i}" for cat in cfg.categories for temp in cfg.temperatures
                for i in range(cfg.samples_per_temperature))
        filled = {split_of(key, cfg.fractions, cfg.split_salt) for key in keys}
        empty = [s for s, frac in zip(SPLIT_NAMES, cfg.fractions) if frac > 0 and s not in filled]
        if empty:
            raise ValueError(f"sketch-rnn samples: no sample key hashes to the {empty[0]!r} split (fractions "
                             f"{cfg.fractions}, split_salt {cfg.split_salt!r}, {cfg.samples_per_temperature} "
                             "sample(s) per temperature); take more samples or other fractions / split_salt")
        return {
            split: some_examples(self._generate_examples(paths, split), "sketch-rnn samples", split,
                                 "every sample of it was empty or invalid, see the warnings")
            for split, frac in zip(SPLIT_NAMES, cfg.fractions)
            if frac > 0
        }

    def _generate_examples(self, paths: dict, split: str) -> Iterator[tuple[str, dict]]:
        cfg = self.builder_config
        for label, cat in enumerate(cfg.categories):
            for temp in cfg.temperatures:
                samples = sample_sketches(
                    paths[cat], category=cat, temperature=temp, num=cfg.samples_per_temperature,
                    seed=cfg.seed, max_len=cfg.max_len, sample_batch=cfg.sample_batch,
                )
                skipped = 0
                for i, item in enumerate(samples):
                    key = f"{cat}/{temp:g}/{i}"
                    if split_of(key, cfg.fractions, cfg.split_salt) != split:
                        continue
                    if item is None:
                        skipped += 1
                        continue
                    points, pen, complete = item
                    yield key, {
                        "points": points, "pen": pen, "label": label, "temperature": np.float32(temp),
                        "generated": True, "complete": complete, "key_id": key,
                    }
                if skipped:
                    _log.warning("sketchrnn_samples: %s at temperature %g: %d empty/invalid samples skipped",
                                 cat, temp, skipped)
