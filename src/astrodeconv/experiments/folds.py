"""The test cases of a protocol, and the leave-one-out models that restore them.

For test image ``k`` of a protocol, a network is trained on the other images and stored in
``<folds>/<arch>-<image>/``. A fold is trained once its folder holds ``weights.pt`` and no
pending ``checkpoint.pt``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .protocols import Protocol

__all__ = ["Case", "fold_dir", "fold_is_trained", "held_out_model", "observe_case"]


@dataclass
class Case:
    """One test image: its clean and observed centred crops (float64, ``(n, n)``, clean maximum 1)."""

    name: str
    truth: np.ndarray
    observed: np.ndarray


def observe_case(protocol: Protocol, index: int, data_dir: Path) -> Case:
    """Normalise image ``index``, observe the full image, then crop the centred square.

    Parameters
    ----------
    protocol : Protocol
        Gives the image names, ``psf``, ``sigma``, ``boundary``, ``seed`` and ``crop``.
    index : int
        Position of the image in ``protocol.images``; it is observed with the seed
        ``protocol.seed + index``.
    data_dir : Path
        Folder of the ``<name>.fits.gz`` sky images.

    Returns
    -------
    Case
        The centred crops of side ``min(protocol.crop, H, W)`` pixels.
    """
    from ..data import load_sky
    from ..forward import observe
    from ..psf import parse_spec

    name = protocol.images[index]
    clean = load_sky(name, data_dir)
    observed = observe(clean, parse_spec(protocol.psf), protocol.sigma, rng=protocol.seed + index,
                       boundary=protocol.boundary)
    n = min(protocol.crop, *clean.shape)
    r0, c0 = (clean.shape[0] - n) // 2, (clean.shape[1] - n) // 2
    window = (slice(r0, r0 + n), slice(c0, c0 + n))
    return Case(name, clean[window], observed[window])


def fold_dir(folds: Path, arch: str, image: str) -> Path:
    """Folder of the ``arch`` network trained without ``image``."""
    return Path(folds) / f"{arch}-{image}"


def fold_is_trained(folder: Path) -> bool:
    """Whether the model folder holds weights and no pending checkpoint."""
    return (folder / "weights.pt").is_file() and not (folder / "checkpoint.pt").exists()


def held_out_model(folds: Path | None, method: str, image: str) -> dict[str, Any]:
    """``{"model": folder}`` of ``method``'s fold for ``image`` if one is trained, else ``{}`` (the shipped model).

    A pretrained network is so scored on an image it was not trained on whenever it can be.
    """
    if folds is None:
        return {}
    folder = fold_dir(folds, method, image)
    return {"model": str(folder)} if fold_is_trained(folder) else {}
