"""Convolutional restoration networks (needs torch; imported lazily by :mod:`astrodeconv.networks`).

* :mod:`.models` — registry of architectures (``cnn3``, ``cnn1``), each with its ``margin``;
* :mod:`.patches` — training pairs (observed 32 x 32 -> clean centred 14 x 14);
* :mod:`.training` — :func:`train`, resumable, writes a model folder;
* :mod:`.store` — the model folder (``config.json``, ``weights.pt``, ``meta.json``);
* :mod:`.predict` — :func:`deconvolve`, whole-image or tiled;
* :mod:`.keras` — the paper's released Keras/Theano HDF5 weights.
"""

from .models import create_model, list_models, model_info, register_model
from .predict import deconvolve
from .store import ModelConfig, load_model, save_model
from .training import train

__all__ = [
    "ModelConfig",
    "create_model",
    "deconvolve",
    "list_models",
    "load_model",
    "model_info",
    "register_model",
    "save_model",
    "train",
]
