"""Noise statistics of an image: the noise level, the background, and the image in noise units.

NumPy (and astropy's sigma clipping); imported by the selection of the classical methods, by the networks (which work
in noise units) and by the pipeline, never importing them.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .checks import positive_float
from .errors import InputError

__all__ = ["NoiseStatistics", "estimate_sigma", "gain_from_image", "gain_from_noise_map", "noise_statistics",
           "normalise_noise", "photon_variance", "signal_to_noise", "sky_level"]


def estimate_sigma(image: np.ndarray) -> float:
    """Standard deviation of white Gaussian noise in an image, from its finest wavelet details.

    Donoho's robust estimator, as ``skimage.restoration.estimate_sigma`` computes it but
    with the Haar wavelet (scikit-image's needs PyWavelets, which is not a dependency):
    the diagonal detail coefficients ``(a - b - c + d) / 2`` of the non-overlapping 2 x 2
    blocks have variance ``sigma^2`` for i.i.d. noise and almost no energy from a
    blurred sky, so ``sigma = median(|detail|) / 0.6745``. Bright sources do leave energy
    there (a tenth of the blocks on a crowded star field raise the estimate by 12 %), so the
    median is taken over the blocks whose mean lies at most ``3 sigma0 / 2`` above the median
    block mean (``sigma0``: the estimate over all blocks). For Gaussian noise a block's mean
    and its diagonal detail are independent, so the selection does not bias the estimate;
    what it leaves out are the sources.

    Parameters
    ----------
    image : ndarray, shape (H, W), H and W >= 2

    Returns
    -------
    sigma : float, image units

    Examples
    --------
    >>> noise = 0.01 * np.random.default_rng(0).standard_normal((256, 256))
    >>> round(estimate_sigma(noise), 3)
    0.01
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or min(image.shape) < 2:
        raise InputError(f"estimate_sigma needs a 2-D image of at least 2 x 2 pixels, got shape {image.shape}")
    h, w = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    a = image[0:h:2, 0:w:2]
    b = image[0:h:2, 1:w:2]
    c = image[1:h:2, 0:w:2]
    d = image[1:h:2, 1:w:2]
    detail = (a - b - c + d) / 2.0
    mean = (a + b + c + d) / 4.0
    finite = np.isfinite(detail)
    detail, mean = detail[finite], mean[finite]
    if detail.size == 0:
        raise InputError("estimate_sigma: the image has no finite 2 x 2 block")
    first = float(np.median(np.abs(detail)) / MAD_TO_SIGMA)
    quiet = mean <= np.median(mean) + 1.5 * first
    return float(np.median(np.abs(detail[quiet])) / MAD_TO_SIGMA)


#: ``median(|x|) / sigma`` for Gaussian ``x``.
MAD_TO_SIGMA = 0.6744897501960817


def sky_level(image: np.ndarray) -> float:
    """The sky's level: the median of the pixels after 3-sigma clipping (``astropy.stats.sigma_clipped_stats``).

    Plain medians move with the sources: sixty bright stars in a third of a field raise it by
    0.15 sigma, the clipped one by 0.02.
    """
    from astropy.stats import sigma_clipped_stats

    values = np.asarray(image, dtype=np.float64)
    values = values[np.isfinite(values)]
    _, median, _ = sigma_clipped_stats(values, sigma=3.0, maxiters=10)
    return float(median)


class NoiseStatistics(NamedTuple):
    """What puts an image in noise units: ``(image - background) / sigma``, and its signal-to-noise ratio."""

    background: float  # the sky's level (sigma-clipped median, sky_level), image units
    sigma: float  # noise standard deviation, image units
    snr: float  # 99.9th percentile of the image in noise units (>= 1), see signal_to_noise


def signal_to_noise(normalised: np.ndarray) -> float:
    """Signal-to-noise ratio of an image already in noise units: its 99.9th percentile, at least 1.

    A percentile rather than the maximum, so one hot pixel or cosmic ray does not set it.
    """
    level = float(np.percentile(np.asarray(normalised, dtype=np.float64), 99.9))
    return max(level, 1.0) if np.isfinite(level) else 1.0


def noise_statistics(image: np.ndarray, sigma: float | None = None) -> NoiseStatistics:
    """Background, noise level and signal-to-noise ratio of an image (for :class:`NoiseUnits`).

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Observation in any units; must be finite.
    sigma : float, optional
        Standard deviation of its noise, image units. ``None``: estimated from the finest
        wavelet details (:func:`estimate_sigma`, Donoho's robust
        estimator, the one ``skimage.restoration.estimate_sigma`` uses).

    Returns
    -------
    NoiseStatistics
        ``background`` (median, image units), ``sigma`` (image units) and ``snr``
        (:func:`signal_to_noise` of ``(image - background) / sigma``).
    """
    image = np.asarray(image, dtype=np.float64)
    if sigma is None:
        sigma = estimate_sigma(image)
        if not sigma > 0:
            raise InputError("the image's noise level estimates to 0 (no noise, or a flat or quantised image); pass sigma")
    else:
        sigma = positive_float(sigma, "sigma", "number (the noise's standard deviation, image units)")
    background = sky_level(image)
    return NoiseStatistics(background, sigma, signal_to_noise((image - background) / sigma))


def normalise_noise(image: np.ndarray, sigma: float | None = None) -> tuple[np.ndarray, float, float]:
    """``(image - background) / sigma`` as float32, with :func:`noise_statistics`' background and sigma."""
    background, sigma, _ = noise_statistics(image, sigma)
    return ((np.asarray(image, dtype=np.float64) - background) / sigma).astype(np.float32), background, sigma


def photon_variance(image: np.ndarray, sigma: float, gain: float, background: float | None = None) -> np.ndarray:
    """Per-pixel noise variance of a frame with photon noise, image units squared.

    ``sigma ** 2 + max(image - background, 0) / gain``: the sky's noise (``sigma``, image
    units, read noise included) plus the Poisson variance of the light above the sky, which
    in image units is the signal divided by ``gain`` (electrons per image unit; for ADU, the
    ``GAIN`` card).

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Observation, image units (the bias may be in it: only ``image - background`` counts).
    sigma : float
        Standard deviation of the sky's noise, image units.
    gain : float
        Electrons per image unit.
    background : float, optional
        The sky's level, image units; default: the median of the finite pixels.

    Examples
    --------
    >>> photon_variance(np.array([[100.0, 100.0, 300.0]]), sigma=2.0, gain=0.5).tolist()
    [[4.0, 4.0, 404.0]]
    """
    image = np.asarray(image, dtype=np.float64)
    sigma = positive_float(sigma, "sigma", "number (the sky's noise, image units)")
    gain = positive_float(gain, "gain", "number (electrons per image unit)")
    if background is None:
        background = float(np.median(image[np.isfinite(image)]))
    with np.errstate(invalid="ignore"):
        return sigma**2 + np.maximum(image - background, 0.0) / gain


#: :func:`gain_from_noise_map`: the fit uses the pixels whose signal above the sky is at least
#: this many times the sky's noise (below, the sky's own scatter dominates the variance).
GAIN_FIT_SIGNAL = 3.0


def gain_from_noise_map(image: np.ndarray, noise: np.ndarray, background: float | None = None) -> float | None:
    """The gain (electrons per image unit) a per-pixel noise map implies, or None if it shows no photon noise.

    An instrument's ``ERR`` map is mostly ``sqrt(s^2 + (image - sky) / gain)``: the sky's noise
    and the photon noise of the light above it. The variance ``noise^2`` is fitted as
    ``a + b (image - sky)`` (least squares on the medians of ten bins of the signal, over the
    pixels at least :data:`GAIN_FIT_SIGNAL` times the sky's noise above it); the gain is
    ``1 / b``. None where fewer than 100 such pixels exist or the slope is not positive: the
    map is then the sky's noise alone.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> image = 100.0 + rng.exponential(500.0, (200, 200))
    >>> err = np.sqrt(4.0 + (image - 100.0) / 2.5)
    >>> round(gain_from_noise_map(image, err, background=100.0), 3)
    2.5
    """
    image = np.asarray(image, dtype=np.float64)
    variance = np.asarray(noise, dtype=np.float64) ** 2
    good = np.isfinite(image) & np.isfinite(variance)
    if background is None:
        background = sky_level(image[good])
    signal, variance = image[good] - background, variance[good]
    bright = signal > GAIN_FIT_SIGNAL * float(np.sqrt(np.median(variance)))
    if np.count_nonzero(bright) < 100:
        return None
    signal, variance = signal[bright], variance[bright]
    edges = np.quantile(signal, np.linspace(0.0, 1.0, 11))
    levels, variances = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        inside = (signal >= lo) & (signal <= hi)
        if inside.any():
            levels.append(float(np.median(signal[inside])))
            variances.append(float(np.median(variance[inside])))
    if len(levels) < 3:
        return None
    slope = float(np.polyfit(levels, variances, 1)[0])
    return 1.0 / slope if slope > 0 else None


#: :func:`gain_from_image`: the share of spatial frequencies, those the PSF passes least, where the noise is measured.
NOISE_BAND = 0.6
#: ... refused (None) where the PSF's transfer there exceeds this: too narrow a PSF leaves the sources' light in the band.
NOISE_BAND_TRANSFER = 0.05
#: ... photon noise is taken as shown when, at the brightest level fitted, its variance is this share of the sky's.
PHOTON_SHARE = 0.25


def gain_from_image(image: np.ndarray, psf: np.ndarray, sigma: float, invalid: np.ndarray | None = None,
                    window: int = 4, bins: int = 12) -> float | None:
    """The gain (electrons per image unit) that a frame's own noise shows, or None if it shows no photon noise.

    Photon noise grows with the light: a frame's variance is ``sigma^2 + (image - sky) / gain``.
    Measured on the frame itself, where the blur leaves only noise: the :data:`NOISE_BAND` share
    of the spatial frequencies that the PSF passes least (its transfer there below
    :data:`NOISE_BAND_TRANSFER`, else None: too narrow a PSF). The frame filtered to that band
    is noise alone; its mean square over ``window`` x ``window`` px, divided by what the band
    keeps of white noise, is each window's variance. Over the windows at least 3 sigma above
    the sky (the sigma-clipped median), up to the 95th percentile of their levels ``L``, the
    medians of ``bins`` bins of level are fitted (non-negative least squares, relative errors)
    as ``a + b L + c L^2``: ``a`` the sky's variance with whatever the band holds everywhere,
    ``c L^2`` the sources' own light that leaks into it (bright stars clipped at saturation,
    a PSF not quite theirs). The gain is ``1 / b`` where ``b L`` reaches :data:`PHOTON_SHARE` of
    ``sigma^2`` at the brightest bin; else None (Gaussian noise, or too little light above the
    sky to tell, or a range of levels too narrow to tell ``b L`` from ``c L^2``). On GalSim frames
    and Poisson-noise sky images it comes within a factor of 2 of the true gain where it finds
    one (6 of 8 GalSim frames and 10 of 10 sky-image frames; ``benchmarks/gain_check.py``).

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Frame, any units, sky included. Non-finite pixels take their nearest finite pixel's
        value, and the windows holding one are left out.
    psf : ndarray, shape (h, w)
        Its PSF (unit sum), no larger than the frame.
    sigma : float
        The sky's noise, image units (:func:`estimate_sigma`).
    invalid : ndarray of bool, shape (H, W), optional
        Saturated pixels: the windows within ``2 * window`` px of them are left out (a clipped
        core's edge rings in the band).
    window, bins : int
        Window side, px (1 to a quarter of the image's side), and the number of level bins (>= 2).

    Examples
    --------
    >>> from astrodeconv.forward import blur
    >>> from astrodeconv.psf import gaussian
    >>> rng = np.random.default_rng(0)
    >>> yy, xx = np.mgrid[:256, :256]
    >>> scene = 50.0 + 3000.0 * np.exp(-((yy - 128.0) ** 2 + (xx - 128.0) ** 2) / 2000.0)
    >>> light = blur(scene, gaussian(5.0), boundary="periodic")
    >>> frame = rng.poisson(2.0 * light) / 2.0 + rng.normal(0.0, 2.0, light.shape)   # 2 e- per unit
    >>> round(gain_from_image(frame, gaussian(5.0), estimate_sigma(frame)), 1)
    2.0
    """
    from scipy.ndimage import binary_dilation, distance_transform_edt
    from scipy.optimize import nnls

    image = np.asarray(image, dtype=np.float64)
    sigma = positive_float(sigma, "sigma", "number (the sky's noise, image units)")
    psf = np.asarray(psf, dtype=np.float64)
    if image.ndim != 2:
        raise InputError(f"gain_from_image needs a 2-D image, got shape {image.shape}")
    if psf.ndim != 2 or psf.shape[0] > image.shape[0] or psf.shape[1] > image.shape[1] or not np.isfinite(psf).all() \
            or not psf.sum() > 0:
        raise InputError(f"gain_from_image: the PSF (shape {psf.shape}) must be finite, of positive sum and no larger "
                         f"than the image {image.shape}")
    if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or not 1 <= window <= min(image.shape) // 4:
        raise InputError(f"gain_from_image: window must be 1 to {min(image.shape) // 4} px for an image of shape "
                         f"{image.shape}, got {window!r}")
    if isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 2:
        raise InputError(f"gain_from_image: bins must be an integer of at least 2, got {bins!r}")
    saturated = np.zeros(image.shape, bool) if invalid is None else np.asarray(invalid, dtype=bool)
    if saturated.shape != image.shape:
        raise InputError(f"gain_from_image: invalid has shape {saturated.shape}, the image {image.shape}")
    missing = ~np.isfinite(image)
    if missing.all():
        raise InputError("gain_from_image: the image has no finite pixel")
    if (missing | saturated).all():
        return None
    if missing.any():  # each takes its nearest finite pixel's value: no step for the band to ring on
        image = image[tuple(distance_transform_edt(missing, return_distances=False, return_indices=True))]
    image = image - sky_level(image[~(missing | saturated)])
    transfer = np.abs(np.fft.rfft2(psf / psf.sum(), s=image.shape))  # its modulus: where the PSF sits does not matter
    limit = float(np.quantile(transfer, NOISE_BAND))
    if limit > NOISE_BAND_TRANSFER:
        return None
    band = transfer <= limit
    rows, cols = (image.shape[0] // window) * window, (image.shape[1] // window) * window

    def per_window(values: np.ndarray) -> np.ndarray:
        return values[:rows, :cols].reshape(rows // window, window, cols // window, window)

    def mean_square(values: np.ndarray) -> np.ndarray:
        """Mean square of ``values`` filtered to the band, per window."""
        return (per_window(np.fft.irfft2(np.fft.rfft2(values) * band, s=values.shape)) ** 2).mean(axis=(1, 3))

    # what the band's median window keeps of white noise of unit variance: the unit of the variances below
    unit = float(np.median(mean_square(np.random.default_rng(0).standard_normal(image.shape))))
    variance = (mean_square(image) / unit).ravel()
    level = per_window(image).mean(axis=(1, 3)).ravel()
    # windows with a filled pixel are left out, and those near a saturated star's clipped core (whose edge rings)
    left_out = missing | (binary_dilation(saturated, iterations=2 * window) if saturated.any() else saturated)
    usable = ~per_window(left_out).any(axis=(1, 3)).ravel()
    above = usable & (level > 3 * sigma)
    if np.count_nonzero(above) < 5 * bins:
        return None
    level, variance = level[above], variance[above]
    kept = level <= np.quantile(level, 0.95)
    level, variance = level[kept], variance[kept]
    edges = np.quantile(level, np.linspace(0.0, 1.0, bins + 1))
    index = np.clip(np.searchsorted(edges, level, side="right") - 1, 0, bins - 1)
    levels, variances = np.array([(np.median(level[index == k]), np.median(variance[index == k]))
                                  for k in np.unique(index)]).T
    design = np.column_stack([np.ones_like(levels), levels, levels**2]) / variances[:, None]
    (_, slope, _), _ = nnls(design, np.ones_like(variances))
    return float(1.0 / slope) if slope * levels[-1] >= PHOTON_SHARE * sigma**2 else None

