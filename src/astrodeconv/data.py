"""Images the package can find without a download.

* :func:`hubble_deep_field` — the embedded default: the Hubble Deep Field image that
  scikit-image ships inside its wheel (NASA/STScI, public domain).
* :func:`load_sky` — the real sky scans of ``../shared/data/sky`` when that folder is
  present (development and CI); nothing here downloads anything.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .errors import InputError
from .forward import normalise

#: Acknowledgement for the Hubble Deep Field image.
HDF_CREDIT = "Hubble Deep Field: R. Williams (STScI) and NASA, public domain; via scikit-image"


def hubble_deep_field() -> np.ndarray:
    """The embedded default image: scikit-image's Hubble Deep Field as a linear-ish grey image.

    The RGB JPEG (872 x 1000, sRGB-encoded 8-bit) is converted to luminance with
    ``skimage.color.rgb2gray`` and then linearised by undoing the sRGB transfer curve
    (``skimage.exposure.adjust_gamma`` would be a power-law approximation; we use the
    exact sRGB formula), and normalised to a maximum of 1. The result is closer to the
    linear intensities of an astronomical image (dark sky, compact bright sources) than
    the display-encoded JPEG; it is not a calibrated flux.

    Returns
    -------
    image : ndarray, shape (872, 1000), float64, max 1

    Examples
    --------
    >>> im = hubble_deep_field()
    >>> im.shape, float(im.max())
    ((872, 1000), 1.0)
    """
    from skimage import color, data

    grey = color.rgb2gray(data.hubble_deep_field())  # sRGB-encoded values in [0, 1]
    linear = np.where(grey <= 0.04045, grey / 12.92, ((grey + 0.055) / 1.055) ** 2.4)
    return normalise(linear)[0]


def shared_dir() -> Path | None:
    """Folder of shared data: ``$ASTRODECONV_SHARED`` or ``../shared`` beside the repository, if present."""
    candidates = [os.environ.get("ASTRODECONV_SHARED")]
    here = Path(__file__).resolve()
    candidates += [str(parent / "shared") for parent in here.parents[2:4]]
    for candidate in candidates:
        if candidate and (Path(candidate) / "data" / "sky").is_dir():
            return Path(candidate)
    return None


def sky_dir() -> Path:
    """The folder of real sky images, or an :class:`InputError` saying how to point to it."""
    found = shared_dir()
    if found is None:
        raise InputError("no folder of sky images found: set ASTRODECONV_SHARED or pass --data-dir")
    return found / "data" / "sky"


def load_sky(name: str, folder: str | Path | None = None) -> np.ndarray:
    """Read ``<folder>/<name>.fits.gz`` and normalise it as the paper does (``max(0, I / max I)``).

    Returns
    -------
    image : ndarray, shape (H, W), float64 in [0, 1]; non-finite pixels (if any) are set to 0
    """
    from .io import read_image

    folder = Path(folder) if folder is not None else sky_dir()
    path = folder / (name if name.endswith((".fits", ".fits.gz")) else f"{name}.fits.gz")
    data, _ = read_image(path)
    data = np.where(np.isfinite(data), data, 0.0)
    return normalise(data)[0]
