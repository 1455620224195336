"""Load the paper's released Keras 1 / Theano weights (HDF5) into :class:`~.models.CNN3`.

The authors of Flamary (2017) released six trained 3-CNNs (one per held-out target) as
Keras 1.0.5 HDF5 files written with the Theano backend in channels-first order: file
attribute ``layer_names`` lists three ``Convolution2D`` groups, each with a kernel ``W`` of
shape ``(out, in, kh, kw)`` and a bias ``b``. Theano's ``conv2d`` is a true convolution
(it flips the kernel) whereas ``torch.nn.Conv2d`` is a cross-correlation, so the kernels
are flipped, ``W[:, :, ::-1, ::-1]``, when loaded. The files are read in place (never copied).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["load_keras_cnn3", "read_keras_weights"]

#: Expected kernel shapes of the paper's 3-CNN (Keras/Theano order = PyTorch order).
CNN3_SHAPES = [((64, 1, 10, 10), (64,)), ((16, 64, 6, 6), (16,)), ((1, 16, 5, 5), (1,))]


def read_keras_weights(path: str | Path) -> list[tuple[np.ndarray, np.ndarray]]:
    """Read the ``(W, b)`` pairs of a Keras 1 HDF5 weight file, in layer order, unflipped.

    Parameters
    ----------
    path : str or Path
        ``.h5`` file saved by Keras 1 ``model.save_weights``.

    Returns
    -------
    layers : list of (W, b)
        ``W`` of shape ``(out, in, kh, kw)``, ``b`` of shape ``(out,)``, float32; layers
        without weights are skipped.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise InputError(f"Keras weight file not found: {path}")
    try:
        with h5py.File(path, "r") as fh:
            group = fh["model_weights"] if "model_weights" in fh else fh
            if "layer_names" not in group.attrs:
                raise InputError(f"{path} is not a Keras weight file: no 'layer_names' attribute")
            layers = []
            for raw in group.attrs["layer_names"]:
                name = raw.decode() if isinstance(raw, bytes) else str(raw)
                names = [n.decode() if isinstance(n, bytes) else str(n) for n in group[name].attrs.get("weight_names", [])]
                if not names:
                    continue
                if len(names) != 2:
                    raise InputError(f"{path}: layer {name} has weights {names}, expected a kernel and a bias")
                w = np.asarray(group[name][names[0]], dtype=np.float32)
                b = np.asarray(group[name][names[1]], dtype=np.float32)
                layers.append((w, b))
    except InputError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise InputError(f"cannot read {path} as a Keras HDF5 weight file: {exc}") from None
    return layers


def load_keras_cnn3(path: str | Path, flip: bool = True) -> "CNN3":  # noqa: F821
    """Build a :class:`~astrodeconv.nn.models.CNN3` holding the paper's released weights.

    Parameters
    ----------
    path : str or Path
        One of the paper's ``32x32_10x10-64_6x6-16_5x5-1_PSF64_sigma0.010_<target>.h5``.
    flip : bool
        Flip the kernels spatially (Theano convolution -> PyTorch correlation). Only the
        tests set it to False, to show that the unflipped orientation restores worse.

    Returns
    -------
    model : CNN3
        float32, CPU, eval mode, gradients disabled; ``margin`` 9.

    Raises
    ------
    InputError
        Missing or unreadable file, or layers whose shapes are not the paper's 3-CNN.
    """
    import torch

    from .models import CNN3

    layers = read_keras_weights(path)
    shapes = [(w.shape, b.shape) for w, b in layers]
    if shapes != CNN3_SHAPES:
        raise InputError(f"{path} holds layers of shapes {shapes}; the paper's 3-CNN needs {CNN3_SHAPES}")
    model = CNN3()
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        for conv, (w, b) in zip(convs, layers):
            if flip:
                w = w[:, :, ::-1, ::-1]
            conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(w)))
            conv.bias.copy_(torch.from_numpy(b))
    return model.eval().requires_grad_(False)
