"""Flax models, each used as a pure ``model.apply(variables, inputs)``.

* :mod:`sketchjax.models.doodlenet` — DoodleNet (28×28 raster, 345 QuickDraw classes), its
  input recipes (Bresenham and differentiable) and the TF.js weight importer
  (:mod:`sketchjax.models.tfjs`);
* :mod:`sketchjax.models.cnn` — raster encoders trained here (Sketch-A-Net style, ResNet-18);
* :mod:`sketchjax.models.bilstm` — the length-aware BiLSTM stroke encoder of GACL;
* :mod:`sketchjax.models.transformer` — point-cloud Transformer encoder;
* :mod:`sketchjax.models.layers` — point features, the ReLU head, :class:`Classifier`;
* :mod:`sketchjax.models.sketch_rnn` — SketchRNN VAE, losses, temperature and relaxed
  (Gumbel straight-through) sampling; :mod:`sketchjax.models.sketch_rnn_js` imports
  Magenta sketch-rnn-js ``.gen.json`` decoders.

Encoders return features ``float32[B, D]`` (GACL reads quality from their norm), non-negative
except :class:`~sketchjax.models.doodlenet.DoodleNetEncoder`'s (tanh units, pre-trained).
"""
from sketchjax.models.bilstm import BiLSTMEncoder
from sketchjax.models.cnn import ResNet18, SketchANet
from sketchjax.models.doodlenet import DoodleNet, DoodleNetEncoder, doodlenet_input, doodlenet_input_differentiable, load_doodlenet
from sketchjax.models.layers import Classifier, point_features
from sketchjax.models.sketch_rnn import SketchRNN, SketchRNNConfig
from sketchjax.models.sketch_rnn_js import load_sketch_rnn_js
from sketchjax.models.transformer import PointTransformer

__all__ = [
    "BiLSTMEncoder",
    "PointTransformer",
    "SketchANet",
    "ResNet18",
    "Classifier",
    "point_features",
    "DoodleNet",
    "DoodleNetEncoder",
    "load_doodlenet",
    "doodlenet_input",
    "doodlenet_input_differentiable",
    "SketchRNN",
    "SketchRNNConfig",
    "load_sketch_rnn_js",
]
