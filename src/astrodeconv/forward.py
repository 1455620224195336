"""Forward model of an observation: ``y = noise(blur(x, psf))``.

Each piece is a plain function on ``(H, W)`` arrays; randomness comes in as a
``numpy.random.Generator``.

PSF origin convention: the pixel of a PSF of side ``s`` that maps a point source onto
itself is ``(s - 1) // 2`` along each axis -- the centre for odd sides, the pixel just
before the centre for even ones. This is what ``scipy.signal.fftconvolve(..., "same")``
does (the paper's blur). Tools that assume the origin at ``s // 2`` (scikit-image's
Wiener filter, ``scipy.ndimage``) agree once the PSF goes through :func:`pad_to_odd`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import fft, signal

from .errors import InputError
from .operators import psf_otf  # noqa: F401  (re-exported: its former home)
from .psf import validate as validate_psf

BOUNDARIES = ("zero", "reflect", "periodic")


def blur(x: np.ndarray, psf: np.ndarray, boundary: str = "zero") -> np.ndarray:
    """Convolve an image with a PSF, keeping the image's shape.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        Image.
    psf : ndarray, shape (h, w)
        Kernel (not renormalised here), origin at ``((h - 1) // 2, (w - 1) // 2)``.
    boundary : {"zero", "reflect", "periodic"}
        What lies outside the image: zeros (the paper's ``fftconvolve(x, psf, "same")``),
        the image mirrored about its edges (half-sample symmetric, NumPy's
        ``"symmetric"``), or the image repeated (circular convolution; needs
        ``h <= H`` and ``w <= W``).

    Returns
    -------
    y : ndarray, shape (H, W), float64

    Examples
    --------
    >>> x = np.zeros((5, 5)); x[2, 2] = 1
    >>> bool(np.allclose(blur(x, np.ones((3, 3)) / 9)[1:4, 1:4], 1 / 9))
    True
    """
    x = np.asarray(x, dtype=np.float64)
    psf = np.asarray(psf, dtype=np.float64)
    if x.ndim != 2 or psf.ndim != 2:
        raise InputError(f"blur needs 2-D image and PSF, got shapes {x.shape} and {psf.shape}")
    if boundary == "zero":
        return signal.fftconvolve(x, psf, mode="same")
    if boundary == "reflect":
        ph, pw = psf.shape
        padded = np.pad(x, ((ph, ph), (pw, pw)), mode="symmetric")
        return signal.fftconvolve(padded, psf, mode="same")[ph:-ph, pw:-pw]
    if boundary == "periodic":
        return fft.irfft2(fft.rfft2(x) * psf_otf(psf, x.shape), s=x.shape)
    raise InputError(f"boundary must be one of {BOUNDARIES}, got {boundary!r}")


def pad_to_odd(psf: np.ndarray) -> np.ndarray:
    """Return ``psf`` with odd sides and its origin on the central pixel.

    An even side gets one row (column) of zeros at its start, which moves the origin
    ``(s - 1) // 2`` to the centre ``s // 2`` of the new, odd side ``s + 1``. Convolution
    results are unchanged; odd sides are returned as they are.

    Examples
    --------
    >>> pad_to_odd(np.ones((4, 3))).shape
    (5, 3)
    """
    psf = np.asarray(psf)
    return np.pad(psf, ((1 - psf.shape[0] % 2, 0), (1 - psf.shape[1] % 2, 0)))


def add_gaussian_noise(x: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Return ``x + sigma * n`` with ``n`` standard normal, one draw per pixel.

    Examples
    --------
    >>> y = add_gaussian_noise(np.zeros((200, 200)), 0.01, np.random.default_rng(0))
    >>> round(float(y.std()), 3)
    0.01
    """
    sigma = float(sigma)
    if not (np.isfinite(sigma) and sigma >= 0):
        raise InputError(f"noise sigma must be a finite number >= 0, got {sigma}")
    x = np.asarray(x, dtype=np.float64)
    return x + sigma * rng.standard_normal(x.shape)


def add_poisson_noise(x: np.ndarray, gain: float, rng: np.random.Generator) -> np.ndarray:
    """Photon noise: ``Poisson(gain * x) / gain``.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        Expected signal, >= 0 (negative values are an error, not clipped).
    gain : float
        Photons per unit of ``x``; larger means less noise (variance ``x / gain``).
    """
    gain = float(gain)
    if not (np.isfinite(gain) and gain > 0):
        raise InputError(f"Poisson gain must be a positive number of photons per unit, got {gain}")
    x = np.asarray(x, dtype=np.float64)
    if np.any(x < 0):
        raise InputError(f"Poisson noise needs a non-negative signal, got minimum {x.min():.3g}")
    return rng.poisson(x * gain) / gain


def observe(
    x: np.ndarray,
    psf: np.ndarray,
    sigma: float = 0.01,
    rng: np.random.Generator | int | None = None,
    boundary: str = "zero",
    gain: float | None = None,
) -> np.ndarray:
    """Simulate an observation: blur, then optional Poisson noise, then Gaussian noise.

    Parameters
    ----------
    x : ndarray, shape (H, W)
        Clean image, usually normalised with :func:`normalise`.
    psf : ndarray
        PSF (validated and normalised to sum 1 here).
    sigma : float
        Standard deviation of the additive Gaussian noise, image units (0.01 in the paper).
    rng : Generator or int or None
        Source of randomness or a seed.
    boundary : str
        Boundary of the blur, see :func:`blur`.
    gain : float, optional
        If given, photon noise of this gain is applied to the blurred image first.

    Returns
    -------
    y : ndarray, shape (H, W)

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> y = observe(np.ones((32, 32)), gaussian(2.0), sigma=0.0, boundary="periodic")
    >>> bool(np.allclose(y, 1.0))
    True
    """
    rng = np.random.default_rng(rng)
    y = blur(x, validate_psf(psf), boundary)
    if gain is not None:
        y = add_poisson_noise(np.maximum(y, 0.0), gain, rng)
    return add_gaussian_noise(y, sigma, rng)


@dataclass(frozen=True)
class Normalisation:
    """Record of :func:`normalise`: ``normalised = max(0, image / scale)``."""

    scale: float

    def undo(self, x: np.ndarray) -> np.ndarray:
        """Return ``x * scale`` (negative values clipped by :func:`normalise` are not restored)."""
        return np.asarray(x) * self.scale


def normalise(image: np.ndarray) -> tuple[np.ndarray, Normalisation]:
    """Normalise as the paper does: ``max(0, image / max(image))``.

    NaN pixels are ignored when finding the maximum and stay NaN.

    Returns
    -------
    normalised : ndarray, shape (H, W), float64, values in [0, 1]
    record : Normalisation
        ``record.undo(normalised)`` returns the image in its original units.

    Examples
    --------
    >>> xn, rec = normalise(np.array([[2.0, -1.0], [4.0, 0.0]]))
    >>> xn.tolist(), rec.scale
    ([[0.5, 0.0], [1.0, 0.0]], 4.0)
    """
    image = np.asarray(image, dtype=np.float64)
    scale = float(np.nanmax(image)) if image.size else float("nan")
    if not (np.isfinite(scale) and scale > 0):
        raise InputError(f"cannot normalise an image whose maximum is {scale}; it needs a positive maximum")
    with np.errstate(invalid="ignore"):
        normalised = np.where(np.isnan(image), np.nan, np.maximum(image / scale, 0.0))
    return normalised, Normalisation(scale)
