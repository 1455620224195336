"""Image quality metrics. ``data_range`` is always explicit (1.0 for normalised images)."""

from __future__ import annotations

import numpy as np

from .errors import InputError


def crop_border(image: np.ndarray, border: int) -> np.ndarray:
    """Drop ``border`` pixels on each side of an ``(H, W)`` image."""
    border = int(border)
    if border < 0 or 2 * border >= min(image.shape):
        raise InputError(f"border must be >= 0 and leave pixels in an image of shape {image.shape}, got {border}")
    return image[border : image.shape[0] - border, border : image.shape[1] - border] if border else image


def _pair(estimate: np.ndarray, truth: np.ndarray, border: int) -> tuple[np.ndarray, np.ndarray]:
    estimate = np.asarray(estimate, dtype=np.float64)
    truth = np.asarray(truth, dtype=np.float64)
    if estimate.shape != truth.shape:
        raise InputError(f"estimate and truth differ in shape: {estimate.shape} vs {truth.shape}")
    return crop_border(estimate, border), crop_border(truth, border)


def mse(estimate: np.ndarray, truth: np.ndarray, border: int = 0) -> float:
    """Mean squared error over the image without ``border`` pixels per side.

    Examples
    --------
    >>> mse(np.zeros((4, 4)), np.ones((4, 4)))
    1.0
    """
    e, t = _pair(estimate, truth, border)
    return float(np.mean((e - t) ** 2))


def psnr(estimate: np.ndarray, truth: np.ndarray, data_range: float, border: int = 32) -> float:
    """Peak signal-to-noise ratio, dB: ``10 log10(data_range^2 / MSE)``.

    Parameters
    ----------
    estimate, truth : ndarray, shape (H, W)
    data_range : float
        Peak value of the signal (1.0 for images normalised to max 1, as in the paper).
    border : int
        Pixels excluded on each side (the paper crops 32).

    Examples
    --------
    >>> t = np.zeros((8, 8)); e = t + 0.01
    >>> psnr(e, t, data_range=1.0, border=0)
    40.0
    """
    data_range = float(data_range)
    if not data_range > 0:
        raise InputError(f"data_range must be positive, got {data_range}")
    err = mse(estimate, truth, border)
    return float("inf") if err == 0 else float(round(10 * np.log10(data_range**2 / err), 12))


def ssim(estimate: np.ndarray, truth: np.ndarray, data_range: float, border: int = 32) -> float:
    """Structural similarity (scikit-image's, Gaussian-free 7x7 window) without ``border`` pixels per side."""
    from skimage.metrics import structural_similarity

    e, t = _pair(estimate, truth, border)
    return float(structural_similarity(t, e, data_range=float(data_range)))
