"""What the hidden layers of a ``cnn3`` respond to (the paper's section III-C, Fig. 4).

:func:`feature_maps` returns the activations of layers 1 and 2 aligned with the input
pixels; :func:`component_correlations` measures, for every map, its correlation with the
point-source and the extended part of the clean image, which turns "layer 2 separates stars
from the galaxy" into numbers.

Examples
--------
>>> import numpy as np
>>> from astrodeconv.nn.models import create_model
>>> maps = feature_maps(create_model("cnn3"), np.zeros((40, 40), np.float32))
>>> [(m.shape, offset) for m, offset in maps]
[((64, 31, 31), 4), ((16, 26, 26), 7)]
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import InputError

__all__ = ["feature_maps", "split_components", "component_correlations"]


def feature_maps(model: Any, image: np.ndarray) -> list[tuple[np.ndarray, int]]:
    """Activations (after ReLU) of the first two convolution layers of a ``cnn3``.

    Parameters
    ----------
    model : torch.nn.Module
        A ``cnn3`` (three convolutions, each followed by a ReLU).
    image : ndarray, shape (H, W)
        An observation in the model's units (max ~1).

    Returns
    -------
    list of (maps, offset)
        For layers 1 and 2: ``maps`` of shape ``(channels, H - k + 1, W - k + 1)`` (valid
        convolutions, ``k`` the layer's cumulated window) and ``offset``, the input pixel on
        which map pixel ``(0, 0)`` is centred (rounded down): map pixel ``(i, j)`` describes
        input pixel ``(i + offset, j + offset)``.
    """
    import torch
    from torch import nn

    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    if len(convs) != 3 or convs[0].in_channels != 1:
        raise InputError(f"feature maps need a cnn3 (three convolutions from one channel), got {len(convs)} "
                         f"convolutions from {convs[0].in_channels if convs else 0} channel(s)")
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise InputError(f"image must be 2-D, got shape {image.shape}")
    window = 1 + sum(c.kernel_size[0] - 1 for c in convs[:2])
    if min(image.shape) < window:
        raise InputError(f"image {image.shape} is smaller than the layer-2 window ({window} px)")
    out, maps, reach = torch.as_tensor(np.ascontiguousarray(image))[None, None], [], 0
    with torch.inference_mode():
        for conv in convs[:2]:
            out = torch.relu(conv(out))
            reach += conv.kernel_size[0] - 1
            maps.append((out[0].numpy(), reach // 2))
    return maps


def split_components(truth: np.ndarray, size: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Split a clean image into ``(point, extended)`` parts.

    ``extended`` is the median over ``size x size`` pixels (it keeps galaxies and nebulae,
    removes stars narrower than about ``size / 2``); ``point`` is what sticks out above it,
    ``max(truth - extended, 0)``.
    """
    from scipy.ndimage import median_filter

    truth = np.asarray(truth, dtype=np.float64)
    extended = median_filter(truth, size=size, mode="reflect")
    return np.maximum(truth - extended, 0.0), extended


def component_correlations(
    layers: list[tuple[np.ndarray, int]], truth: np.ndarray, size: int = 9
) -> list[list[dict[str, float]]]:
    """Pearson correlation of every map with the point-source and extended parts of ``truth``.

    Parameters
    ----------
    layers : list of (maps, offset)
        Feature maps ``(C, h, w)`` of each layer and the input pixel of their pixel ``(0, 0)``,
        as returned by :func:`feature_maps`.
    truth : ndarray, shape (H, W)
        The clean image the observation came from (same pixel grid as the model's input).
    size : int
        Median window of :func:`split_components` (computed once for all layers).

    Returns
    -------
    list of list of dict
        Per layer, one dict per map: ``map``, ``variance``, ``point`` and ``extended``
        correlations (NaN for a map that is constant, e.g. a dead ReLU).
    """
    whole = dict(zip(("point", "extended"), split_components(truth, size)))
    scores = []
    for maps, offset in layers:
        h, w = maps.shape[1:]
        if offset + h > truth.shape[0] or offset + w > truth.shape[1]:
            raise InputError(f"maps {maps.shape[1:]} at offset {offset} do not fit in truth {truth.shape}")
        parts = {name: _standardise(part[offset:offset + h, offset:offset + w]) for name, part in whole.items()}
        rows = []
        for index, fmap in enumerate(maps):
            values = fmap.astype(np.float64)
            z = _standardise(values)
            row: dict[str, float] = {"map": index, "variance": float(values.var())}
            for name, part in parts.items():
                row[name] = float(np.mean(z * part)) if z is not None and part is not None else float("nan")
            rows.append(row)
        scores.append(rows)
    return scores


def _standardise(values: np.ndarray) -> np.ndarray | None:
    """``(values - mean) / std`` as float64, or None for a constant array."""
    values = np.asarray(values, dtype=np.float64)
    std = values.std()
    return None if std == 0 else (values - values.mean()) / std
