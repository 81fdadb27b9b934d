"""Softmax sketch classifiers on QuickDraw: the experiment builder shared by the classifier configs.

``build_experiment(config)`` builds (once, cached under ``config["data"]["data_dir"]``) the
``quickdraw_strokes`` TFDS dataset for the configured categories and split fractions, makes
:class:`~sketchjax.data.SketchBatchIterator` sources for the train and evaluation splits
(sequence batches for ``bilstm`` / ``transformer``, raster batches for ``sketchanet`` /
``resnet18``) and wraps the encoder in :class:`~sketchjax.models.layers.Classifier`.
Evaluation reports loss, top-1 and top-5 accuracy over the whole evaluation split.

Config keys used (besides the loop's, see :func:`sketchjax.training.default_config`)::

    model = {"name": "bilstm" | "transformer" | "sketchanet" | "resnet18", **encoder kwargs}
    data  = {"source", "categories" (None: every category file), "fractions",
             "eval_split", "data_dir", "max_len", "fit", "raster_size", "render_size",
             "line_width", "augment": {scale, aspect, jitter, stroke_dropout}}
"""
from __future__ import annotations

import os
import pathlib
from typing import Any

import jax
import jax.numpy as jnp
import optax

from sketchjax.data import Augment, QuickdrawStrokes, SketchBatchIterator, open_split, quickdraw_config
from sketchjax.models.bilstm import BiLSTMEncoder
from sketchjax.models.cnn import ResNet18, SketchANet
from sketchjax.models.layers import Classifier
from sketchjax.models.transformer import PointTransformer
from sketchjax.sketch import Sketch
from sketchjax.training import Experiment, Task, default_config, masked_sums

ENCODERS = {"bilstm": BiLSTMEncoder, "transformer": PointTransformer, "sketchanet": SketchANet, "resnet18": ResNet18}
RASTER_MODELS = ("sketchanet", "resnet18")
DEFAULT_DATA_DIR = "~/.cache/sketchjax/tfds"


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
        experiment="train.sketch_classifier:build_experiment",
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
        },
    )
    return config


def make_model(model_cfg: dict, num_classes: int) -> Classifier:
    """``Classifier(<encoder>(**kwargs), num_classes)`` from ``{"name": ..., **kwargs}``."""
    kwargs = dict(model_cfg)
    name = kwargs.pop("name")
    if name not in ENCODERS:
        raise ValueError(f"unknown model {name!r}; use one of {sorted(ENCODERS)}")
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    return Classifier(ENCODERS[name](**kwargs), num_classes)


def model_inputs(batch: dict, raster: bool) -> Any:
    """The model input of a batch: its ``raster`` or the padded :class:`Sketch`."""
    if raster:
        return batch["raster"]
    return Sketch(xy=batch["xy"], pen=batch["pen"], valid=batch["valid"])


def prepare_dataset(data: dict):
    """Builds (or reuses) the QuickDraw dataset; returns ``(builder, category names)``."""
    cfg = quickdraw_config(
        data["source"], data["categories"], fractions=tuple(data["fractions"])
    )
    data_dir = pathlib.Path(os.path.expanduser(data["data_dir"]))
    builder = QuickdrawStrokes.prepare(cfg, data_dir)
    return builder, cfg.categories


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
    )
    train = SketchBatchIterator(
        open_split(builder, "train", fields=fields), seed=config["seed"], augment=Augment(**data["augment"]),
        shuffle=True, drop_remainder=True, **common)
    held_out = SketchBatchIterator(
        open_split(builder, data["eval_split"], fields=fields), seed=0, shuffle=False, drop_remainder=False, **common)
    model = make_model(config["model"], len(categories))

    def init_fn(rng, batch):
        return model.init(rng, model_inputs(batch, raster))

    def loss_fn(params, collections, batch, rng):
        mutable = list(collections)
        out = model.apply({"params": params, **collections}, model_inputs(batch, raster), train=True,
                          rngs={"dropout": rng}, mutable=mutable or False)
        logits, updates = out if mutable else (out, None)
        labels = batch["label"]
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, ({"accuracy": jnp.mean(jnp.argmax(logits, -1) == labels)}, updates)

    def eval_fn(params, collections, batch):
        logits = model.apply({"params": params, **collections}, model_inputs(batch, raster))
        labels = batch["label"]
        top5 = jax.lax.top_k(logits, min(5, logits.shape[-1]))[1]
        return masked_sums(
            {
                "loss": optax.softmax_cross_entropy_with_integer_labels(logits, labels),
                "accuracy": jnp.argmax(logits, -1) == labels,
                "top5": jnp.any(top5 == labels[:, None], axis=-1),
            },
            batch["mask"],
        )

    return Experiment(task=Task(init_fn, loss_fn, eval_fn), train_source=train, eval_source=held_out)
