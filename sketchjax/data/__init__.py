"""The data pipeline: TFDS datasets (array_record, no TensorFlow) and deterministic batches.

* Builders — :class:`QuickdrawStrokes` (``quickdraw_strokes``: simplified / raw ndjson or
  sketch-rnn npz), :class:`QmulChairv2` (``qmul_chairv2``: sketch + photo pairs) and
  :class:`SketchrnnSamples` (``sketchrnn_samples``: sketches sampled from the pre-trained
  sketch-rnn decoders, ``generated=True``).  Build with ``Builder.prepare(config, data_dir)``;
  QuickDraw categories not found locally are downloaded (not with ``download=False`` or
  ``$SKETCHJAX_OFFLINE``).
* Reading — ``tfds.data_source(...)`` works as is; :func:`open_split` /
  :class:`SketchSource` give the same examples with a faster decoder for the sketch fields.
* Batching — :class:`SketchBatchIterator` (``steps_per_epoch``, ``epoch_batches(epoch,
  start)``), :class:`Augment`, and :func:`shard_batch` to place a batch on a mesh.

Splits of QuickDraw / Chair-V2 are assigned by a hash of the example id
(:func:`split_of`), stable across runs, machines and category lists.
"""
from sketchjax.data.augment import FIT_METHODS, Augment, augment_batch, fit_length
from sketchjax.data.builder import ArrayRecordBuilder, encode_sketch, example_to_sketch, sketch_features
from sketchjax.data.chairv2 import Chairv2Config, QmulChairv2, chairv2_config
from sketchjax.data.iterator import SketchBatchIterator, example_keys
from sketchjax.data.quickdraw import (
    QUICKDRAW_CATEGORIES,
    QUICKDRAW_SOURCES,
    QuickdrawConfig,
    QuickdrawStrokes,
    list_categories,
    quickdraw_config,
    quickdraw_url,
)
from sketchjax.data.sketchrnn_samples import SketchrnnSamples, SketchrnnSamplesConfig, sketchrnn_samples_config
from sketchjax.data.source import SketchSource, open_split
from sketchjax.data.splits import SPLIT_NAMES, split_fraction, split_of
from sketchjax.training.sharding import shard_batch  # one implementation, shared with the loop

__all__ = [
    "ArrayRecordBuilder",
    "QuickdrawStrokes",
    "QuickdrawConfig",
    "quickdraw_config",
    "quickdraw_url",
    "list_categories",
    "QUICKDRAW_SOURCES",
    "QUICKDRAW_CATEGORIES",
    "QmulChairv2",
    "Chairv2Config",
    "chairv2_config",
    "SketchrnnSamples",
    "SketchrnnSamplesConfig",
    "sketchrnn_samples_config",
    "sketch_features",
    "encode_sketch",
    "example_to_sketch",
    "SketchSource",
    "open_split",
    "SPLIT_NAMES",
    "split_of",
    "split_fraction",
    "SketchBatchIterator",
    "shard_batch",
    "example_keys",
    "Augment",
    "augment_batch",
    "fit_length",
    "FIT_METHODS",
]
