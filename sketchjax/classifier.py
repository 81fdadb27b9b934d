"""Sketch classifiers on QuickDraw (softmax or GACL head): the experiment builder shared by the configs.

``build_experiment(config)`` builds (once, cached under ``config["data"]["data_dir"]``) the
``quickdraw_strokes`` TFDS dataset for the configured categories and split fractions, makes
:class:`~sketchjax.data.SketchBatchIterator` sources for the train and evaluation splits
(sequence batches for ``bilstm`` / ``transformer``, raster batches for ``sketchanet`` /
``resnet18``) and puts a head on the encoder:

* ``head.type = "softmax"``: :class:`~sketchjax.models.layers.Classifier` (linear logits,
  cross-entropy);
* ``head.type = "gacl"``: :class:`~sketchjax.gacl.GACLClassifier` (class cosines and feature
  norm) trained with :func:`~sketchjax.gacl.gacl_loss` — the instantiation, ``s``, norm range,
  ``lambda_g`` and ``margin_scale`` from the ``head`` section, soft binning on with the
  paper's cut-point schedule (:func:`~sketchjax.gacl.cut_points_at` of the fractional epoch,
  computed inside the loss from the step count) unless ``head.soft_binning`` is False.  It
  predicts with ``argmax cos theta`` and is evaluated with the cross-entropy of ``s cos theta``.

Evaluation reports loss, top-1 and top-5 accuracy over the whole evaluation split (GACL also
the mean quality ``q`` and the mean cosine to the predicted class).

Config keys used (besides the loop's, see :func:`sketchjax.training.default_config`)::

    model = {"name": "bilstm" | "transformer" | "sketchanet" | "resnet18" | "doodlenet", **encoder kwargs,
             "pretrained" (optional: start from the encoder's pre-trained weights; doodlenet only),
             "pretrained_head" (optional, with pretrained: the head too, cut to the categories)}
    head  = {"type": "softmax"} | {"type": "gacl", "kind", "s", "l_q", "u_q", "l_a", "u_a",
             "lambda_g", "margin_scale", "soft_binning", "tau", "tau_width" (temperature as a
             fraction of the bin width; overrides tau), "cuts": (start, end, hold_epochs),
             "margin_warmup" (epochs over which GACL's margin and regulariser ramp in from
             the plain normalised softmax; 0 = none)}
    data  = {"source", "categories" (None: every category file), "fractions",
             "eval_split", "data_dir", "max_len", "fit", "raster_size", "render_size",
             "line_width", "augment": {scale, aspect, jitter, stroke_dropout},
             "label_noise" (fraction of *training* labels replaced by another class, uniformly;
             :func:`sketchjax.apps.cleansing.inject_label_noise`), "label_noise_seed",
             "label_noise_scope" ("real": the dataset's training sketches only; "all": the
             ``extra_train`` samples too; :func:`training_source`),
             "extra_train": None | {"source": "sketchrnn_samples", "temperatures",
             "samples_per_temperature", "seed"} — sketch-rnn samples of the dataset's categories
             added to the *training* split only (evaluation stays on real sketches)}
"""
from __future__ import annotations

__all__ = [
    "ENCODERS", "RASTER_MODELS", "DEFAULT_DATA_DIR", "GACL_HEAD_DEFAULTS", "base_config",
    "head_config", "gacl_config", "comparable_config", "SPEED_ONLY_MODEL_KEYS", "MODEL_KEY_DEFAULTS",
    "make_gacl_objective", "make_model", "model_inputs", "prepare_dataset", "held_out_sketches",
    "fit_sketches", "source_arrays", "source_chunks", "Relabelled", "noisy_train_labels", "training_source", "Concatenated",
    "extra_training_split", "build_experiment", "score_in_batches", "feature_unit_stats", "TrainedClassifier",
    "load_classifier", "linear_head_scores", "DoodleNetReference", "PRETRAINED", "PRETRAINED_HEADS", "pretrained_params",
]

import dataclasses
import functools
import os
import pathlib
import warnings
from functools import cached_property
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from sketchjax._checks import check_int, check_positive_int, is_number
from sketchjax._numerics import safe_norm
from sketchjax.data import Augment, QuickdrawStrokes, SketchBatchIterator, open_split, quickdraw_config
from sketchjax.data.builder import names_local_inputs
from sketchjax.data.quickdraw import label_order
from sketchjax.gacl import GACLClassifier, GACLConfig, cut_points_at, gacl_loss, quality_scores
from sketchjax.models.bilstm import BiLSTMEncoder
from sketchjax.models.cnn import ResNet18, SketchANet
from sketchjax.models.doodlenet import DoodleNetEncoder, doodlenet_encoder_params, doodlenet_head_params
from sketchjax.models.layers import Classifier
from sketchjax.models.transformer import PointTransformer
from sketchjax.normalize import to_unit
from sketchjax.render import RasterRecipe
from sketchjax.sketch import PEN_SLACK, Sketch
from sketchjax.training import (
    ArraySource, Experiment, Task, default_config, masked_sums, read_run_config, read_run_info, restore_trained,
    this_process,
)

ENCODERS = {"bilstm": BiLSTMEncoder, "transformer": PointTransformer, "sketchanet": SketchANet, "resnet18": ResNet18,
            "doodlenet": DoodleNetEncoder}
RASTER_MODELS = ("sketchanet", "resnet18", "doodlenet")
#: Encoders with pre-trained weights (``model.pretrained = True``): ``name -> () -> params``.
PRETRAINED = {"doodlenet": doodlenet_encoder_params}
#: ... and with a pre-trained classifier layer (``model.pretrained_head = True``):
#: ``name -> (categories) -> {"kernel": [D, C], "bias": [C]}``.
PRETRAINED_HEADS = {"doodlenet": doodlenet_head_params}
DEFAULT_DATA_DIR = "~/.cache/sketchjax/tfds"


#: ``config["experiment"]`` of the classifier runs (what :func:`load_classifier` restores).
CLASSIFIER_EXPERIMENT = "sketchjax.classifier:build_experiment"
#: The same experiment under the name runs saved before it moved here record (train/sketch_classifier.py).
_LEGACY_CLASSIFIER_EXPERIMENTS = ("train.sketch_classifier:build_experiment",)


def base_config() -> dict:
    """Loop defaults plus the data section every classifier config starts from."""
    config = default_config()
    config.update(
        seed=0,
        num_epochs=20,
        batch_size=64,
        log_every_steps=25,
        checkpoint_every_steps=500,
        keep_checkpoints=2,
        experiment=CLASSIFIER_EXPERIMENT,
        head={"type": "softmax"},
        data={
            "source": "simplified",
            "categories": None,
            "fractions": (0.8, 0.0, 0.2),
            "eval_split": "test",
            "data_dir": DEFAULT_DATA_DIR,
            "max_len": 100,
            "fit": "rdp",
            "raster_size": None,
            "render_size": None,
            "line_width": 1,
            "augment": {"scale": (1.0, 1.0), "aspect": 0.0, "jitter": 0.0, "stroke_dropout": 0.0},
            "label_noise": 0.0,
            "label_noise_seed": 0,
            "label_noise_scope": "real",
            "extra_train": None,
        },
    )
    return config


MAX_CUTS = 20  # soft_bin's static cut-point vector (sketchjax.gacl.soft_bin max_cuts)
GACL_HEAD_DEFAULTS = {
    "type": "gacl", "kind": "cos", "s": 64.0, "l_q": None, "u_q": None, "l_a": 10.0, "u_a": 100.0,
    "lambda_g": None, "margin_scale": 1.0, "soft_binning": True, "tau": 0.1 / 64, "tau_width": None, "cuts": (5, 20, 5),
    "margin_warmup": 0.0,
}


def head_config(config: dict) -> dict:
    """The ``head`` section with defaults filled in (configs written before it existed: softmax)."""
    head = dict(config.get("head") or {"type": "softmax"})
    kind = head.get("type", "softmax")
    if kind == "softmax":
        return {"type": "softmax"}
    if kind != "gacl":
        raise ValueError(f"unknown head type {kind!r}; use 'softmax' or 'gacl'")
    unknown = set(head) - set(GACL_HEAD_DEFAULTS)
    if unknown:
        raise ValueError(f"unknown GACL head keys {sorted(unknown)}; known: {sorted(GACL_HEAD_DEFAULTS)}")
    head = {**GACL_HEAD_DEFAULTS, **head}
    cuts = head["cuts"]
    if isinstance(cuts, (str, bytes)) or not isinstance(cuts, Sequence) or len(cuts) != 3:
        raise ValueError(f"head.cuts must be (start, end, hold_epochs), got {cuts!r}")
    # whole numbers: (5.5, 20, 2.7) was cut to (5, 20, 2) by the schedule
    start, end, hold = (check_int("head.cuts", name, v) for name, v in zip(("start", "end", "hold_epochs"), cuts))
    warmup = head["margin_warmup"]
    if warmup is not None and not (is_number(warmup) and 0.0 <= warmup < float("inf")):  # -1 turned the warm-up off
        raise ValueError(f"head.margin_warmup must be a number of epochs >= 0 (0 or None: no warm-up), got {warmup!r}")
    if not 1 <= start <= MAX_CUTS or not 1 <= end <= MAX_CUTS or hold < 0:
        raise ValueError(f"head.cuts = {tuple(head['cuts'])}: cut points must be in [1, {MAX_CUTS}] "
                         "(start, end) with hold_epochs >= 0")
    return head


#: Encoder settings that change how fast a model runs, not what it computes (e.g.
#: :class:`~sketchjax.models.bilstm.BiLSTMEncoder`'s ``unroll`` and ``pack``).
SPEED_ONLY_MODEL_KEYS = ("unroll", "pack")
#: Encoder settings added after runs were saved, with the default that reproduces those runs.
MODEL_KEY_DEFAULTS = {"head_activation": "relu", "pretrained_head": False}


def comparable_config(config: dict) -> dict:
    """``config`` with this module's defaults filled in (top level, ``data`` and ``optimizer``
    from :func:`base_config`, ``head`` by :func:`head_config`): two configs of the same experiment
    compare equal after it even if one was saved before a key with a behaviour-preserving
    default (``data.label_noise_scope``, ``head.margin_warmup``, ``optimizer.lr_scale``, ...) existed.  The
    ``normalise`` of :func:`sketchjax.training.train_unless_done` for classifier runs, and the
    ``normalise_config`` of their :class:`~sketchjax.training.Experiment` (the resume check).  This
    relies on defaults never changing value: a new setting gets a default that reproduces the
    old behaviour, or old runs would compare equal to runs trained differently.  Speed-only
    encoder settings (:data:`SPEED_ONLY_MODEL_KEYS`) are left out of ``model``, and so are
    encoder settings at the default older runs were trained with (:data:`MODEL_KEY_DEFAULTS`)."""
    defaults = base_config()
    out = {**defaults, **config, "data": {**defaults["data"], **(config.get("data") or {})},
           "optimizer": {**defaults["optimizer"], **(config.get("optimizer") or {})}, "head": head_config(config)}
    if isinstance(config.get("model"), dict):  # settings that change the speed, never the numbers
        out["model"] = {k: v for k, v in config["model"].items()
                        if k not in SPEED_ONLY_MODEL_KEYS and not (k in MODEL_KEY_DEFAULTS and MODEL_KEY_DEFAULTS[k] == v)}
    return out


def gacl_config(config: dict) -> GACLConfig | None:
    """The :class:`~sketchjax.gacl.GACLConfig` of a GACL run's config (None for softmax)."""
    head = head_config(config)
    if head["type"] != "gacl":
        return None
    return GACLConfig(kind=head["kind"], s=float(head["s"]), l_q=head["l_q"], u_q=head["u_q"],
                      l_a=float(head["l_a"]), u_a=float(head["u_a"]), lambda_g=head["lambda_g"],
                      margin_scale=float(head["margin_scale"]))


def make_model(model_cfg: dict, num_classes: int, head: str = "softmax"):
    """``Classifier`` (softmax) or ``GACLClassifier`` (gacl) around ``<encoder>(**kwargs)``
    (``pretrained`` is not an encoder setting: see :func:`pretrained_params`)."""
    kwargs = dict(model_cfg)
    name = kwargs.pop("name")
    kwargs.pop("pretrained", None)
    kwargs.pop("pretrained_head", None)
    if name not in ENCODERS:
        raise ValueError(f"unknown model {name!r}; use one of {sorted(ENCODERS)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    encoder = ENCODERS[name](**kwargs)
    if head == "gacl":
        return GACLClassifier(encoder, num_classes)
    return Classifier(encoder, num_classes)


def pretrained_params(model_cfg: dict, params: dict, categories=None) -> dict:
    """``params`` of a freshly initialised classifier with pre-trained weights in place:
    the encoder's when ``model_cfg["pretrained"]`` is true, and also the head's — the
    pre-trained classifier layer cut to ``categories`` (the labels' order), for a softmax
    head its kernel and bias, for a GACL cosine head its kernel's columns — when
    ``model_cfg["pretrained_head"]`` is true too.  Unchanged when neither is set.

    Raises ``ValueError`` for an encoder without pre-trained weights, a head asked for without
    the encoder or without ``categories``, or a category the pre-trained classifier does not
    know; :class:`~sketchjax.models.tfjs.ModelFileError` when the weight files are missing or
    corrupt."""
    if not model_cfg.get("pretrained"):
        if model_cfg.get("pretrained_head"):
            raise ValueError("model.pretrained_head needs model.pretrained (the head fits the pre-trained features)")
        return params
    name = model_cfg["name"]
    if name not in PRETRAINED:
        raise ValueError(f"model {name!r} has no pre-trained weights; pretrained=True works for {sorted(PRETRAINED)}")
    loaded = PRETRAINED[name]()
    shapes = jax.tree_util.tree_map(jnp.shape, params["encoder"])
    if jax.tree_util.tree_map(jnp.shape, loaded) != shapes:
        raise ValueError(f"pre-trained {name} weights do not fit the configured encoder ({shapes})")
    out = {**params, "encoder": loaded}
    if model_cfg.get("pretrained_head"):
        if categories is None:
            raise ValueError("model.pretrained_head needs the dataset's categories")
        head = PRETRAINED_HEADS[name](list(categories))
        out["head"] = {k: head[k] for k in params["head"]}  # a cosine head has no bias
    return out


def make_gacl_objective(head: dict, gcfg: GACLConfig, steps_per_epoch: int, num_epochs: int):
    """``fn(cos, norm, labels, step) -> (loss, metrics)``: :func:`~sketchjax.gacl.gacl_loss` with
    the head's soft-binning schedule (cut points from the fractional epoch ``step /
    steps_per_epoch``; none when ``head["soft_binning"]`` is False), its warm-up (the margin
    and the regulariser ramp in linearly over the first ``head["margin_warmup"]`` epochs, from
    the plain normalised softmax ``s cos theta`` to GACL — ``margin_weight`` of
    :func:`~sketchjax.gacl.gacl_loss`; 0: none) and the training metrics (accuracy, mean
    ``ce``, ``reg``, ``q``, the number of cut points, and the margin weight while it ramps)."""
    start, end, hold = (int(v) for v in head.get("cuts", (5, 20, 5)))
    warmup = float(head.get("margin_warmup") or 0.0)

    def objective(cos, norm, labels, step):
        n_cuts = None
        if head["soft_binning"]:
            n_cuts = cut_points_at(step / steps_per_epoch, num_epochs, start, end, hold)
        tau_width = head.get("tau_width")
        ramp = None
        if warmup > 0:
            ramp = jnp.clip(jnp.asarray(step, jnp.float32) / (warmup * steps_per_epoch), 0.0, 1.0)
        loss, parts = gacl_loss(cos, norm, labels, gcfg, n_cuts=n_cuts, tau=float(head["tau"]),
                                tau_width=None if tau_width is None else float(tau_width), margin_weight=ramp)
        metrics = {
            "accuracy": jnp.mean(jnp.argmax(cos, -1) == labels),
            "ce": jnp.mean(parts["ce"]), "reg": jnp.mean(parts["reg"]), "q": jnp.mean(parts["q"]),
            "n_cuts": jnp.asarray(0 if n_cuts is None else n_cuts, jnp.float32),
        }
        if ramp is not None:
            metrics["margin_weight"] = ramp
        return loss, metrics

    return objective


def _classification_sums(logits, labels, mask, extra=None) -> dict:
    top5 = jax.lax.top_k(logits, min(5, logits.shape[-1]))[1]
    values = {
        "loss": optax.softmax_cross_entropy_with_integer_labels(logits, labels),
        "accuracy": jnp.argmax(logits, -1) == labels,
        "top5": jnp.any(top5 == labels[:, None], axis=-1),
        **(extra or {}),
    }
    return masked_sums(values, mask)


def model_inputs(batch: dict, raster: bool) -> Any:
    """The model input of a batch: its ``raster`` or the padded :class:`Sketch`."""
    if raster:
        return batch["raster"]
    return Sketch(xy=batch["xy"], pen=batch["pen"], valid=batch["valid"])


def prepare_dataset(data: dict, expect_dataset: str | None = None):
    """Builds (or reuses) the QuickDraw dataset; returns ``(builder, category names)``.

    ``expect_dataset``: the dataset a run recorded it was trained on (``run_info.json``,
    :attr:`TrainedClassifier.dataset`); a dataset built from other files is refused
    (:func:`check_dataset`) — its splits would hold other sketches."""
    cfg = quickdraw_config(
        data["source"], data["categories"], fractions=tuple(data["fractions"])
    )
    data_dir = pathlib.Path(os.path.expanduser(data["data_dir"]))
    # checked before building, on the name the build gets (input_config: the digest of the local
    # input files): other files (a wrong --data) were built into a dataset, or their missing
    # categories downloaded, and only then refused
    check_dataset(QuickdrawStrokes.name, QuickdrawStrokes.input_config(cfg), expect_dataset, "the run")
    return QuickdrawStrokes.prepare(cfg, data_dir), cfg.categories


def held_out_sketches(config: dict, n: int | None = None, seed: int = 0, extra_fields: tuple = (),
                      expect_dataset: str | None = None):
    """The evaluation split of a classifier config as padded **pixel**-coordinate arrays.

    Sketches are length-fitted exactly as in training (``data.fit`` to ``data.max_len``), not
    augmented.  ``n`` (None: all) picks a seeded sample, kept in split order.
    ``expect_dataset``: see :func:`prepare_dataset`.

    Returns:
      ``(arrays, categories, split_size)``: ``arrays`` has ``xy [N, T, 2]``, ``pen``, ``valid``,
      ``label`` and one NumPy array per name in ``extra_fields`` (e.g. ``"recognized"``,
      ``"key_id"``) read from the split's records.
    """
    data = config["data"]
    builder, categories = prepare_dataset(data, expect_dataset)
    split = open_split(builder, data["eval_split"], fields=("points", "pen", "label") + tuple(extra_fields))
    return source_arrays(split, data, n, seed, extra_fields), list(categories), len(split)


def fit_sketches(data: dict, sketches) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Unbatched :class:`Sketch` es (any pixel frame) length-fitted as a config's ``data``
    section trains on them (``data.fit`` to ``data.max_len``) and stacked: ``(xy, pen, valid)``."""
    from sketchjax.batching import stack_sketches
    from sketchjax.data.augment import fit_length

    fitted = []
    for s in sketches:
        n = int(np.sum(np.asarray(s.valid)))
        pts, pen = fit_length(np.asarray(s.xy)[:n], np.asarray(s.pen)[:n], data["max_len"], data["fit"])
        fitted.append(Sketch(xy=np.asarray(pts, np.float32), pen=np.asarray(pen, np.float32),
                             valid=np.ones(len(pen), bool)))
    batch = stack_sketches(fitted, max_len=data["max_len"])
    return batch.xy, batch.pen, batch.valid


def source_chunks(source, data: dict, chunk_size: int = 8192, extra_fields: tuple = ()):
    """Consecutive chunks of up to ``chunk_size`` records of a random-access source, in order, as
    padded **pixel**-coordinate arrays length-fitted as in training (``data.fit`` to
    ``data.max_len``): ``{"xy", "pen", "valid", "label", *extra_fields}`` per chunk.  One chunk is
    held at a time, so a split of any size streams through."""
    it = SketchBatchIterator(source, batch_size=max(1, min(chunk_size, len(source))), max_len=data["max_len"],
                             fit=data["fit"], coords="pixels", shuffle=False, drop_remainder=False, prefetch=0,
                             read_group=1, extra_fields=extra_fields)
    for batch in it.epoch_batches(0):
        n = int(np.sum(np.asarray(batch["mask"])))
        yield {k: np.asarray(batch[k])[:n] for k in ("xy", "pen", "valid", "label", *extra_fields)}


def source_arrays(source, data: dict, n: int | None = None, seed: int = 0, extra_fields: tuple = ()) -> dict:
    """A random-access source of sketch records as padded **pixel**-coordinate arrays, length-fitted
    as in training (:func:`source_chunks`, concatenated); ``n`` (None: all) picks a seeded sample in
    source order.  ``{"xy", "pen", "valid", "label", *extra_fields}`` (see :func:`held_out_sketches`)."""
    parts = list(source_chunks(source, data, extra_fields=extra_fields))
    arrays = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    if n is None:
        return arrays
    take = np.sort(np.random.default_rng(seed).permutation(len(source))[:n])
    return {k: v[take] for k, v in arrays.items()}


class Relabelled:
    """A random-access source with its ``"label"`` field replaced by ``labels[i]``."""

    def __init__(self, source, labels):
        if len(labels) != len(source):
            raise ValueError(f"{len(labels)} labels for a source of {len(source)} examples")
        self.source, self.labels = source, np.asarray(labels)

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, i):
        return {**self.source[i], "label": int(self.labels[i])}

    def __getitems__(self, indices):
        items = self.source.__getitems__(indices) if hasattr(self.source, "__getitems__") else [
            self.source[i] for i in indices]
        return [{**r, "label": int(self.labels[i])} for r, i in zip(items, indices)]


class Concatenated:
    """Random-access concatenation of sources (``__getitems__`` over both)."""

    def __init__(self, *sources):
        self.sources = sources
        self.offsets = np.cumsum([0] + [len(s) for s in sources])

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def __getitem__(self, i):
        return self.__getitems__([i])[0]

    def __getitems__(self, indices):
        indices = np.asarray(indices, np.int64)
        bad = (indices < -len(self)) | (indices >= len(self))
        if bad.any():
            raise IndexError(f"index {int(indices[bad][0])} out of range for {len(self)} examples")
        indices = indices % max(len(self), 1)  # negative indices count from the end (as SketchSource)
        which = np.searchsorted(self.offsets, indices, side="right") - 1
        out = [None] * len(indices)
        for k, src in enumerate(self.sources):
            pos = np.nonzero(which == k)[0]
            if pos.size:
                local = (indices[pos] - self.offsets[k]).tolist()
                items = src.__getitems__(local) if hasattr(src, "__getitems__") else [src[j] for j in local]
                for p, item in zip(pos, items):
                    out[p] = item
        return out


def extra_training_split(data: dict, categories, fields=("points", "pen", "label")):
    """The ``data.extra_train`` source: sketch-rnn samples of every dataset category that has a
    decoder (the data root's ``models/sketch_rnn`` unless ``extra_train.model_dir``), labels
    mapped onto ``categories``."""
    from sketchjax.data import SketchrnnSamples, sketchrnn_samples_config
    from sketchjax.data.sketchrnn_samples import decoder_categories
    from sketchjax.paths import data_root

    extra = dict(data["extra_train"])
    if extra.pop("source", "sketchrnn_samples") != "sketchrnn_samples":
        raise ValueError(f"unknown extra_train source {data['extra_train'].get('source')!r}; use 'sketchrnn_samples'")
    model_dir = extra.pop("model_dir", None) or data_root() / "models" / "sketch_rnn"
    index = {c: i for i, c in enumerate(categories)}
    have = [c.replace("_", " ") for c in decoder_categories(model_dir)]
    shared = sorted(c for c in have if c in index)
    if not shared:
        raise ValueError(f"extra_train: none of the sketch-rnn decoders in {model_dir} is a category of the dataset")
    cfg = sketchrnn_samples_config(shared, model_dir=model_dir,
                                   **{k: tuple(v) if isinstance(v, list) else v for k, v in extra.items()})
    builder = SketchrnnSamples.prepare(cfg, pathlib.Path(os.path.expanduser(data["data_dir"])))
    split = open_split(builder, "train", fields=fields)
    mapping = np.asarray([index[c] for c in cfg.categories])
    labels = mapping[np.asarray([r["label"] for r in split.__getitems__(list(range(len(split))))])]
    return Relabelled(split, labels)


def training_source(config: dict, fields=("points", "pen", "label"), expect_dataset: str | None = None):
    """The training examples exactly as a run of ``config`` sees them, with what was done to them.

    The dataset's ``train`` split, then the ``data.extra_train`` samples (if any), with
    ``data.label_noise`` applied (seeded by ``data.label_noise_seed``) over
    ``data.label_noise_scope``: ``"real"`` (the default) changes labels of the dataset's own
    training sketches only, ``"all"`` changes labels anywhere in the concatenation (generated
    samples included, as in a web-scale dataset where every source is noisy).

    ``expect_dataset``: see :func:`prepare_dataset`.

    Returns:
      ``(source, flipped, generated)``: a random-access source of records with ``fields`` (its
      ``"label"`` the label trained on), and boolean arrays over its examples: label changed by
      the injected noise; example is an ``extra_train`` sample (not a human drawing).
    """
    from sketchjax.apps.cleansing import inject_label_noise

    data = config["data"]
    scope = data.get("label_noise_scope", "real")
    if scope not in ("real", "all"):
        raise ValueError(f"data.label_noise_scope must be 'real' or 'all', got {scope!r}")
    builder, categories = prepare_dataset(data, expect_dataset)
    source = open_split(builder, "train", fields=fields)
    num_real = len(source)
    if data.get("extra_train"):
        source = Concatenated(source, extra_training_split(data, categories, fields))
    generated = np.arange(len(source)) >= num_real
    flipped = np.zeros(len(source), bool)
    rate = float(data.get("label_noise", 0.0))
    if rate:
        labels = np.asarray([r["label"] for r in _labels_only(data, builder, categories)])
        n = num_real if scope == "real" else len(source)
        noisy, changed = inject_label_noise(jax.random.PRNGKey(int(data.get("label_noise_seed", 0))), labels[:n],
                                            rate, len(categories))
        labels[:n], flipped[:n] = np.asarray(noisy), np.asarray(changed)
        source = Relabelled(source, labels)
    return source, flipped, generated


def _labels_only(data: dict, builder, categories) -> list[dict]:
    """The ``{"label": ...}`` records of :func:`training_source`'s examples, in its order, without
    decoding the sketches."""
    parts = [open_split(builder, "train", fields=("label",))]
    if data.get("extra_train"):
        parts.append(extra_training_split(data, categories, ("label",)))
    return [r for part in parts for r in part.__getitems__(list(range(len(part))))]


def noisy_train_labels(config: dict):
    """``(labels, flipped)`` over :func:`training_source`'s examples: the labels a run of
    ``config`` trained on and which of them the injected ``data.label_noise`` changed."""
    source, flipped, _ = training_source(config, fields=("label",))
    return np.asarray([r["label"] for r in source.__getitems__(list(range(len(source))))]), flipped


def build_experiment(config: dict) -> Experiment:
    data = config["data"]
    raster = config["model"]["name"] in RASTER_MODELS
    if raster and not data["raster_size"]:
        raise ValueError(f"model {config['model']['name']!r} needs data.raster_size")
    builder, categories = prepare_dataset(data)
    fields = ("points", "pen", "label")
    common = dict(
        batch_size=config["batch_size"],
        max_len=data["max_len"],
        fit=data["fit"],
        coords="unit",
        raster_size=data["raster_size"] if raster else None,
        render_size=data["render_size"] if raster else None,
        line_width=data["line_width"],
        **this_process(),
    )
    train_split, _, _ = training_source(config, fields)
    train = SketchBatchIterator(
        train_split, seed=config["seed"], augment=Augment(**data["augment"]),
        shuffle=True, drop_remainder=True, **common)
    held_out = SketchBatchIterator(
        open_split(builder, data["eval_split"], fields=fields), seed=0, shuffle=False, drop_remainder=False, **common)
    head = head_config(config)
    model = make_model(config["model"], len(categories), head["type"])
    gcfg = gacl_config(config)

    def init_fn(rng, batch):
        variables = model.init(rng, model_inputs(batch, raster))
        return {**variables, "params": pretrained_params(config["model"], variables["params"], categories)}

    def forward(params, collections, batch, rng):
        mutable = list(collections)
        out = model.apply({"params": params, **collections}, model_inputs(batch, raster), train=True,
                          rngs={"dropout": rng}, mutable=mutable or False)
        return out if mutable else (out, None)

    def softmax_loss(params, collections, batch, rng):
        logits, updates = forward(params, collections, batch, rng)
        labels = batch["label"]
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, ({"accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}, updates)

    gacl_objective = make_gacl_objective(head, gcfg, train.steps_per_epoch, config["num_epochs"]) if gcfg else None

    def gacl_train_loss(params, collections, batch, rng, step):
        (cos, norm), updates = forward(params, collections, batch, rng)
        loss, metrics = gacl_objective(cos, norm, batch["label"], step)
        return loss, (metrics, updates)

    def eval_fn(params, collections, batch):
        out = model.apply({"params": params, **collections}, model_inputs(batch, raster))
        if gcfg is None:
            return _classification_sums(out, batch["label"], batch["mask"])
        cos, norm = out
        q, cos_pred, _ = quality_scores(cos, norm, gcfg)
        return _classification_sums(gcfg.s * cos, batch["label"], batch["mask"], {"q": q, "cos_pred": cos_pred})

    loss_fn = softmax_loss if gcfg is None else gacl_train_loss
    return Experiment(task=Task(init_fn, loss_fn, eval_fn), train_source=train, eval_source=held_out,
                      normalise_config=comparable_config,
                      run_info={"categories": list(categories), "dataset": f"{builder.name}/{builder.builder_config.name}"})


def score_in_batches(scores_fn, xy, pen, valid, batch_size: int = 256) -> dict[str, np.ndarray]:
    """``scores_fn(xy, pen, valid) -> dict of [B, ...]`` over ``N`` sketches in batches of one
    fixed size (the last one padded with one-point sketches, then cut off), so a jitted
    ``scores_fn`` compiles once; returns NumPy arrays of length ``N``."""
    batch_size = check_positive_int("score_in_batches", "batch_size", batch_size)
    xy, pen, valid = (np.asarray(a) for a in (xy, pen, valid))
    if xy.ndim != 3 or xy.shape[-1] != 2 or pen.shape != xy.shape[:2] or valid.shape != pen.shape:
        # valid[:4] with 5 sketches scored the fifth as empty
        raise ValueError(f"score_in_batches: need xy [N, T, 2], pen and valid [N, T]; got {xy.shape}, {pen.shape}, "
                         f"{valid.shape}")
    n = xy.shape[0]
    if n == 0:
        raise ValueError("score_in_batches: no sketches to score (N = 0)")
    outs = []
    for i in range(0, n, batch_size):
        j = min(i + batch_size, n)
        pad = batch_size - (j - i)
        part = [np.pad(a[i:j], [(0, pad)] + [(0, 0)] * (a.ndim - 1)) for a in (xy, pen, valid)]
        if pad:
            part[2][j - i:, 0] = True  # one point, so the padding rows are valid sketches
        outs.append({k: np.asarray(v)[: j - i] for k, v in scores_fn(*part).items()})
    return {k: np.concatenate([o[k] for o in outs]) for k in outs[0]}


def feature_unit_stats(features) -> dict[str, float]:
    """How a set of encoder features ``[N, D]`` (non-negative) uses its ``D`` units.

    ``dead_units``: fraction of units that are 0 for every one of the ``N`` sketches (a ReLU unit
    that no input activates gets no gradient and stays dead); ``active_per_sketch``: mean
    fraction of units above 0; ``mean_pairwise_cos``: the mean cosine between the features of
    two different sketches (1: every sketch points the same way; an all-zero feature counts as
    cosine 0 with every other).  Signs are not checked: meant for non-negative features.
    """
    f = np.asarray(features, np.float64)
    n = f.shape[0]
    if f.ndim != 2 or n < 2:
        raise ValueError(f"feature_unit_stats needs features [N >= 2, D], got shape {f.shape}")
    unit = f / np.maximum(np.linalg.norm(f, axis=1, keepdims=True), 1e-12)
    total = unit.sum(0)
    return {"dead_units": float(np.mean(~(f > 0).any(0))), "active_per_sketch": float(np.mean(f > 0)),
            "mean_pairwise_cos": float((total @ total - np.sum(unit * unit)) / (n * (n - 1)))}


@dataclasses.dataclass(frozen=True, eq=False)
class TrainedClassifier:
    """A trained classifier of this module, restored for evaluation (:func:`load_classifier`).

    ``scores(xy, pen, valid)`` takes padded sketches in pixels (any frame: they are fitted as
    in training — unit coordinates or the raster recipe) and returns, jitted:

    * ``logits`` ``[B, C]`` (GACL: ``s cos theta``), ``pred`` ``[B]``;
    * ``norm`` ``[B]``: the feature norm ``||f(x)||``;
    * ``cos_pred`` ``[B]``: the cosine between ``f(x)`` and the predicted class's weight
      (softmax: the column of the linear head, bias ignored);
    * ``cos`` ``[B, C]``: the cosine between ``f(x)`` and every class's weight (GACL: ``cos theta``);
    * ``q`` ``[B]`` (GACL only): the quality score.
    """

    model: Any
    variables: Any
    config: dict
    categories: tuple
    gacl: GACLConfig | None
    step: int
    dataset: str | None = None  #: the dataset the run recorded (``run_info.json``), checked by scorers of its splits

    @property
    def raster(self) -> bool:
        return self.config["model"]["name"] in RASTER_MODELS

    @cached_property
    def recipe(self) -> RasterRecipe | None:
        data = self.config["data"]
        if not self.raster:
            return None
        return RasterRecipe(out_size=data["raster_size"], canvas=data["render_size"] or data["raster_size"],
                            width=data["line_width"])

    def inputs(self, xy, pen, valid):
        """Model inputs of pixel-coordinate sketches (what the batch iterator makes in training)."""
        return _model_inputs(self.recipe, xy, pen, valid)

    def prepare(self, sketches) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unbatched :class:`Sketch` es (any pixel frame) length-fitted as in training
        (``data.fit`` to ``data.max_len``) and stacked: ``(xy, pen, valid)``.  A sketch the fit
        cannot bring within ``max_len`` points is cut there, as training cut it."""
        return fit_sketches(self.config["data"], sketches)

    def fit_arrays(self, xy, pen, valid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Padded pixel-coordinate arrays ``[N, T, ...]`` made fit for the model, as NumPy arrays.

        Every sketch must have a valid point and finite coordinates on its valid points
        (``ValueError`` naming the first that has not).

        Raster models: drawn as given — no length fitting, unlike :meth:`prepare` /
        :meth:`score_sketches`, which fit as training did (``data.fit`` to ``data.max_len``), so
        a sketch longer than ``max_len`` can score slightly differently through the two; the
        evaluations score degraded copies (added scribbles) through this one, drawn whole.
        ``T`` is padded up to a multiple of 64 (padding draws nothing), so arrays of nearby
        lengths share one compilation.  Sequence models: every sketch length-fitted as in
        training (:meth:`prepare`) and the arrays padded or cut to ``T = data.max_len`` — so
        sketches that grew after fitting (added scribbles, for example) are seen the way the
        model saw its training data, and a Transformer's position table is never exceeded; the
        last point's pen is lifted, as in training.  ``valid`` need not be a prefix.
        """
        xy, pen, valid = _checked_arrays(xy, pen, valid)
        if self.raster:
            return _pad_time(xy, pen, valid, -(-valid.shape[1] // 64) * 64)
        max_len = int(self.config["data"]["max_len"])
        counts = valid.sum(axis=1)
        if (counts <= max_len).all() and (valid == (np.arange(valid.shape[1]) < counts[:, None])).all():
            pen = pen.copy()
            pen[np.arange(len(counts)), counts - 1] = 0.0  # training lifts the pen after the last point
            return _pad_time(xy[:, :max_len], pen[:, :max_len], valid[:, :max_len], max_len)
        return self.prepare([Sketch(xy=x[v], pen=p[v], valid=np.ones(int(v.sum()), bool))
                             for x, p, v in zip(xy, pen, valid)])

    def score_sketches(self, sketches, batch_size: int = 256) -> dict[str, np.ndarray]:
        """:attr:`scores` of unbatched sketches (see :meth:`prepare`), as NumPy arrays."""
        return self.score_arrays(*self.prepare(sketches), batch_size=batch_size)

    def score_arrays(self, xy, pen, valid, batch_size: int = 256) -> dict[str, np.ndarray]:
        """:attr:`scores` of padded pixel-coordinate arrays ``[N, T, ...]`` (:func:`score_in_batches`),
        fitted first (:meth:`fit_arrays`)."""
        return score_in_batches(self.scores, *self.fit_arrays(xy, pen, valid), batch_size)

    def feature_arrays(self, xy, pen, valid, batch_size: int = 256) -> np.ndarray:
        """:attr:`features` ``[N, D]`` of padded pixel-coordinate arrays, fitted as in
        :meth:`score_arrays`, as a NumPy array."""
        return score_in_batches(lambda *a: {"f": self.features(*a)}, *self.fit_arrays(xy, pen, valid), batch_size)["f"]

    def apply(self, inputs):
        """``model.apply(variables, inputs)`` with the restored variables, so ``apply(inputs)``:
        logits (softmax) or ``(cos, norm)`` (GACL) of model inputs (see :meth:`inputs`)."""
        return self.model.apply(self.variables, inputs)

    @cached_property
    def features(self):
        """Jitted ``(xy, pen, valid) -> float32[B, D]``: the encoder's features ``f(x)`` (pixel
        frame, fitted as in :attr:`scores`)."""
        return functools.partial(_features_program, self.model, self.recipe, self.variables)

    @cached_property
    def scores(self):
        # One program per architecture, head and recipe, with the weights as an argument: a
        # second load of the same kind of run (another seed, a later checkpoint) reuses the
        # compiled program, and the weights are not folded into it as constants.
        return functools.partial(_scores_program, self.model, self.gacl, self.recipe, self.variables)


def _model_inputs(recipe: RasterRecipe | None, xy, pen, valid):
    """:meth:`TrainedClassifier.inputs`: the recipe's raster, or unit coordinates (no recipe)."""
    if recipe is not None:
        return recipe.raster(xy, pen, valid)
    return Sketch(xy=to_unit(Sketch(xy=xy, pen=pen, valid=valid)).xy, pen=pen, valid=valid)


@functools.partial(jax.jit, static_argnums=(0, 1))
def _features_program(model, recipe, variables, xy, pen, valid):
    return model.apply(variables, _model_inputs(recipe, xy, pen, valid), method=lambda m, x: m.encoder(x))


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _scores_program(model, gacl, recipe, variables, xy, pen, valid):
    inputs = _model_inputs(recipe, xy, pen, valid)
    if gacl is not None:
        cos, norm = model.apply(variables, inputs)
        q, cos_pred, pred = quality_scores(cos, norm, gacl)
        return {"logits": gacl.s * cos, "pred": pred, "norm": norm, "cos_pred": cos_pred, "q": q, "cos": cos}
    logits, feats = model.apply(variables, inputs, return_features=True)
    return linear_head_scores(logits, feats, variables["params"]["head"]["kernel"])


def linear_head_scores(logits: jax.Array, feats: jax.Array, kernel: jax.Array) -> dict[str, jax.Array]:
    """:attr:`TrainedClassifier.scores` of a softmax classifier whose ``logits [B, C]`` are
    ``feats [B, D] @ kernel [D, C] + bias``: ``logits``, ``pred``, the feature ``norm``, and
    the cosines between the features and the kernel's class columns (bias ignored) — ``cos``
    ``[B, C]`` and ``cos_pred`` ``[B]`` (the predicted class's)."""
    pred = jnp.argmax(logits, -1)
    norm = safe_norm(feats)  # finite gradients at a zero feature (attribution of the norm)
    cos = (feats @ kernel) / jnp.maximum(norm[:, None] * safe_norm(kernel, axis=0)[None, :], 1e-12)
    cos_pred = jnp.take_along_axis(cos, pred[:, None], axis=-1)[:, 0]
    return {"logits": logits, "pred": pred, "norm": norm, "cos_pred": cos_pred, "cos": cos}


class DoodleNetReference:
    """The pre-trained DoodleNet (:mod:`sketchjax.models.doodlenet`: ml5.js's 345-class
    classifier, trained on the full QuickDraw — far more sketches per class than any run here)
    restricted to ``categories``, with :class:`TrainedClassifier`'s scoring interface
    (``score_sketches``, ``score_arrays``, ``feature_arrays``, ``prepare``, ``fit_arrays``), so that an evaluation of trained
    runs can measure the same things for a classifier trained at scale.

    ``scores`` gives what a softmax run's does (:func:`linear_head_scores`; logits and cosines
    over ``categories`` only, in their order; features: the 512 tanh units before the logits)
    plus ``prob_pred``: the softmax probability of the predicted class among ``categories``.
    Sketches are drawn with :func:`~sketchjax.models.doodlenet.doodlenet_recipe` (``canvas``
    px, ``width`` px line; default 128 / 7: 68.6% top-1 on the 345 classes).

    Raises:
      ValueError: a category DoodleNet does not know (named).
      sketchjax.models.tfjs.ModelFileError: the model files are missing or corrupt.
    """

    gacl = None
    raster = True

    def __init__(self, categories, root=None, canvas: int = 128, width: int = 7):
        from sketchjax.models.doodlenet import doodlenet_class_rows, doodlenet_recipe, load_doodlenet

        _, self.variables, class_names = load_doodlenet(root)
        self.categories = tuple(categories)
        self.class_index = np.array(doodlenet_class_rows(class_names, categories))
        self.recipe = doodlenet_recipe(canvas=canvas, width=width)
        self.canvas, self.width = canvas, width

    def prepare(self, sketches) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Unbatched :class:`Sketch` es stacked (padded to the longest; DoodleNet draws every
        point, no length fitting): ``(xy, pen, valid)``."""
        from sketchjax.batching import stack_sketches

        batch = stack_sketches(list(sketches))
        return np.asarray(batch.xy), np.asarray(batch.pen), np.asarray(batch.valid)

    def fit_arrays(self, xy, pen, valid):
        """Checked and drawn as given (a raster model: the drawing is fitted to the canvas when
        drawn); ``T`` padded up to a multiple of 64, as :meth:`TrainedClassifier.fit_arrays`."""
        xy, pen, valid = _checked_arrays(xy, pen, valid)
        return _pad_time(xy, pen, valid, -(-valid.shape[1] // 64) * 64)

    # As TrainedClassifier's: module-level programs with the weights as arguments, so a second
    # instance (other categories, another evaluation) reuses the compiled program and the
    # weights are not folded into it as constants.
    @cached_property
    def features(self):
        """Jitted ``(xy, pen, valid) -> float32[B, 512]``."""
        return functools.partial(_doodlenet_features_program, self.recipe, self.variables, self.class_index)

    @cached_property
    def scores(self):
        return functools.partial(_doodlenet_scores_program, self.recipe, self.variables, self.class_index)

    score_arrays = TrainedClassifier.score_arrays
    feature_arrays = TrainedClassifier.feature_arrays
    score_sketches = TrainedClassifier.score_sketches


def _doodlenet_forward(recipe, variables, class_index, xy, pen, valid):
    from sketchjax.models.doodlenet import DoodleNet

    logits, feats = DoodleNet().apply(variables, recipe.raster(xy, pen, valid), return_features=True)
    return logits[:, class_index], feats


@functools.partial(jax.jit, static_argnums=(0,))
def _doodlenet_features_program(recipe, variables, class_index, xy, pen, valid):
    return _doodlenet_forward(recipe, variables, class_index, xy, pen, valid)[1]


@functools.partial(jax.jit, static_argnums=(0,))
def _doodlenet_scores_program(recipe, variables, class_index, xy, pen, valid):
    logits, feats = _doodlenet_forward(recipe, variables, class_index, xy, pen, valid)
    out = linear_head_scores(logits, feats, variables["params"]["logits"]["kernel"][:, class_index])
    out["prob_pred"] = jnp.max(jax.nn.softmax(logits, axis=-1), axis=-1)
    return out


def _checked_arrays(xy, pen, valid) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``[N, T, 2]``, ``[N, T]``, ``[N, T]`` as NumPy, each sketch with a valid point and finite
    valid coordinates (a NaN gave a NaN score, an empty row a valid-looking one)."""
    xy, pen, valid = np.asarray(xy), np.asarray(pen), np.asarray(valid, bool)
    if xy.ndim != 3 or xy.shape[-1] != 2 or pen.shape != xy.shape[:2] or valid.shape != pen.shape:
        raise ValueError(f"need a batch xy [N, T, 2], pen and valid [N, T] (stack single sketches, or use "
                         f"score_sketches); got {xy.shape}, {pen.shape}, {valid.shape}")
    empty = np.flatnonzero(~valid.any(axis=1))
    if empty.size:
        raise ValueError(f"sketch {int(empty[0])} of the batch is empty (no valid points)")
    bad = valid & ~(np.isfinite(xy).all(-1) & np.isfinite(pen))
    if bad.any():
        b, t = (int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"sketch {b} of the batch: non-finite point or pen state at point {t}: {xy[b, t].tolist()}")
    bad = valid & ((pen < -PEN_SLACK) | (pen > 1 + PEN_SLACK))  # pen * 2 was scored as another sketch
    if bad.any():
        b, t = (int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"sketch {b} of the batch: pen state {pen[b, t]} at point {t} is outside [0, 1] "
                         "(1: the segment to the next point is drawn)")
    return xy, pen, valid


def _pad_time(xy, pen, valid, t: int):
    """The arrays padded with zeros (padding draws nothing) to length ``t``."""
    pad = max(t - valid.shape[1], 0)
    grow = lambda a: np.pad(a, ((0, 0), (0, pad)) + ((0, 0),) * (a.ndim - 2))  # noqa: E731
    return grow(xy), grow(pen), grow(valid)


def _with_recorded_categories(config: dict, workdir: pathlib.Path) -> dict:
    """A run's config with ``data.categories`` as the run recorded them (``run_info.json``)
    when the config leaves them to the data folder (``None``): the class names of a trained
    model must not follow files added to or removed from the folder since.  A run without the
    record (trained before it existed) keeps the folder's current listing, with a warning."""
    if config["data"].get("categories") is not None:
        return config
    recorded = (read_run_info(workdir) or {}).get("categories")
    if not recorded:
        warnings.warn(f"{workdir}: the run does not record its categories (no run_info.json); taking the "
                      "data folder's current files as its classes — wrong if the folder changed since it trained",
                      stacklevel=3)
        return config
    return {**config, "data": {**config["data"], "categories": list(recorded)}}


def _model_only_experiment(config: dict, categories: tuple) -> Experiment:
    """The run's model and optimiser over two blank examples: the shapes a checkpoint restores
    into, without reading (or building) the run's dataset."""
    data = config["data"]
    raster = config["model"]["name"] in RASTER_MODELS
    rows = 2
    if raster:
        batch = {"raster": np.zeros((rows, data["raster_size"], data["raster_size"]), np.float32)}
    else:
        t = data["max_len"]
        batch = {"xy": np.zeros((rows, t, 2), np.float32), "pen": np.zeros((rows, t), np.float32),
                 "valid": np.ones((rows, t), bool)}
    batch["label"] = np.zeros(rows, np.int32)
    model = make_model(config["model"], len(categories), head_config(config)["type"])

    def init_fn(rng, b):
        return model.init(rng, model_inputs(b, raster))

    def no_loss(*_):
        raise RuntimeError("a model-only experiment restores a checkpoint; it does not train")

    return Experiment(task=Task(init_fn, no_loss), train_source=ArraySource(batch, batch_size=rows, shuffle=False))


def load_classifier(workdir: str | os.PathLike) -> TrainedClassifier:
    """The newest checkpoint of a run of ``train/run.py`` with this module's experiment.

    A run started from pre-trained weights (``model.pretrained``) restores without them: the
    checkpoint holds every parameter, so the weight files need not be present.  A run whose
    categories are known (listed in its config, or recorded in ``run_info.json``) restores
    without its dataset, so scoring your own sketches needs only the run's folder; an older
    run of a ``categories = None`` config builds (or reuses) its dataset to name its classes."""
    workdir = pathlib.Path(workdir)
    config = read_run_config(workdir)
    if config.get("experiment", CLASSIFIER_EXPERIMENT) not in (CLASSIFIER_EXPERIMENT, *_LEGACY_CLASSIFIER_EXPERIMENTS):
        raise ValueError(f"{workdir}: a run of the experiment {config['experiment']!r}, not a sketch classifier "
                         f"({CLASSIFIER_EXPERIMENT}); load_classifier reads classifier runs only")
    missing = [k for k in ("data", "model") if not isinstance(config.get(k), dict)]
    if missing:
        raise ValueError(f"{workdir / 'config.json'}: not a sketch classifier run's config (no {' or '.join(missing)} "
                         "section)")
    if "experiment" not in config and "name" not in config["model"]:
        # a config file with its own build_experiment (train/configs/smoke_mlp.py) records no experiment
        raise ValueError(f"{workdir / 'config.json'}: not a sketch classifier run (no 'experiment' and no model.name: "
                         "a run of another model, e.g. one whose config file defines build_experiment)")
    _check_run_config(config, workdir / "config.json")
    config = _with_recorded_categories(config, workdir)
    restore_config = config
    if isinstance(config.get("model"), dict) and config["model"].get("pretrained"):
        restore_config = {**config, "model": {**config["model"], "pretrained": False, "pretrained_head": False}}
    if config["data"].get("categories") is not None:
        categories = label_order(config["data"]["categories"])
        experiment = _model_only_experiment(restore_config, categories)
        _, state, meta = restore_trained(workdir, lambda _: experiment, restore_config)
    else:
        _, state, meta = restore_trained(workdir, build_experiment, restore_config)
        _, categories = prepare_dataset(config["data"])
    head = head_config(config)
    model = make_model(config["model"], len(categories), head["type"])
    variables = {"params": state.params, **state.collections}
    dataset = (read_run_info(workdir) or {}).get("dataset")
    return TrainedClassifier(model, variables, config, tuple(categories), gacl_config(config), int(meta["step"]),
                             dataset if isinstance(dataset, str) else None)


def _check_run_config(config: dict, path: pathlib.Path) -> None:
    """The settings a restore reads, of the right types (a hand-edited config.json failed deep
    inside the data pipeline or the model initialiser, or after the checkpoint was restored)."""
    data, model, head = config["data"], config["model"], config.get("head")
    problems = []
    cats = data.get("categories")
    if cats is not None and (not isinstance(cats, list) or not cats or not all(isinstance(c, str) for c in cats)):
        problems.append(f"data.categories must be a non-empty list of category names (or null), got {cats!r}"[:200])
    for key in ("max_len", "raster_size", "render_size"):
        v = data.get(key)
        if v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 1):
            problems.append(f"data.{key} must be a whole number >= 1, got {v!r}")
    if not isinstance(model.get("name"), str):
        problems.append(f"model.name must be a model's name, got {model.get('name')!r}")
    if head is not None and not isinstance(head, dict):
        problems.append(f"head must be an object (e.g. {{\"type\": \"gacl\", ...}}), got {head!r}")
    if problems:
        raise ValueError(f"{path}: {'; '.join(problems)}")


def check_dataset(builder_name: str, config, expected: str | None, who: str) -> None:
    """Refuses a dataset other than the one a run recorded it was trained on (``run_info.json``'s
    ``dataset``: the builder's name with the digest of its local input files' names and
    contents, so the same files moved elsewhere match and other files do not; a run that
    downloaded its files recorded no digest and is not checked).  ``config``: the builder
    config as :meth:`~sketchjax.data.builder.ArrayRecordBuilder.input_config` names it (no
    build needed)."""
    built = f"{builder_name}/{config.name}"
    if expected is None or not names_local_inputs(expected):
        return  # not recorded, or built from downloaded files (no digest of local inputs to compare)
    if built != expected:
        raise ValueError(f"{who} was trained on the dataset {expected}, but the data found now builds {built} "
                         "(other files: another download, a subset, other categories — or the same drawings "
                         "renamed or recompressed, e.g. .ndjson.gz for .ndjson, which the digest of the input "
                         "files also tells apart); point SKETCHJAX_DATA (or --data) at the files the run was "
                         "trained on")
