"""What an astronomer counts on a restored frame: fluxes, positions, false sources, rings, background.

All on images in electrons above the sky (:meth:`astrodeconv.experiments.instrument.Frame.electrons`),
with the true catalogue of the simulation; photutils does the apertures, centroids and
source detection.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

#: Detection threshold of the false-source count, in units of the observation's noise.
DETECTION_SIGMA = 5.0
#: Pixels a detection may lie from a true source to be matched to it (at least).
MATCH_RADIUS = 2.0
#: Signal-to-noise ratio (in an aperture of radius 2 FWHM) of the stars whose photometry is scored.
MIN_SNR = 20.0


def _interior(sources: np.ndarray, shape: tuple[int, int], margin: float) -> np.ndarray:
    x, y = sources[:, 0], sources[:, 1]
    return (x > margin) & (y > margin) & (x < shape[1] - 1 - margin) & (y < shape[0] - 1 - margin)


def aperture_errors(image: np.ndarray, truth: np.ndarray, stars: np.ndarray, radius: float) -> float:
    """Median relative error of the aperture fluxes of ``stars`` (``(N, 2)`` x, y), radius in pixels.

    Both images' apertures are measured at the true positions: the error is the restoration's,
    not the catalogue's (a galaxy's light in an aperture is in both).
    """
    from photutils.aperture import CircularAperture, aperture_photometry

    if len(stars) == 0:
        return float("nan")
    apertures = CircularAperture(stars, r=radius)
    restored = np.asarray(aperture_photometry(image, apertures)["aperture_sum"], dtype=np.float64)
    true = np.asarray(aperture_photometry(truth, apertures)["aperture_sum"], dtype=np.float64)
    return float(np.median(restored / true - 1.0))


def centroid_error(image: np.ndarray, stars: np.ndarray, box: int) -> float:
    """Median distance (pixels) between the true positions and the centroids measured on ``image``."""
    from photutils.centroids import centroid_com, centroid_sources

    if len(stars) == 0:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        x, y = centroid_sources(image, stars[:, 0], stars[:, 1], box_size=box | 1, centroid_func=centroid_com)
    return float(np.nanmedian(np.hypot(x - stars[:, 0], y - stars[:, 1])))


def detections(image: np.ndarray, noise: float, fwhm: float) -> np.ndarray:
    """``(M, 2)`` centroids of the sources above ``DETECTION_SIGMA * noise`` (5 connected pixels)."""
    from photutils.segmentation import SourceCatalog, detect_sources

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        segments = detect_sources(image, DETECTION_SIGMA * noise, npixels=5)
        if segments is None:
            return np.empty((0, 2))
        catalog = SourceCatalog(image, segments)
        return np.column_stack([np.asarray(catalog.xcentroid), np.asarray(catalog.ycentroid)])


def spurious(found: np.ndarray, sources: np.ndarray, fwhm: float) -> np.ndarray:
    """The detections farther than ``max(MATCH_RADIUS, FWHM)`` from every true source (and every other true one)."""
    if len(found) == 0:
        return found
    if len(sources) == 0:
        return found
    distance = np.hypot(found[:, None, 0] - sources[None, :, 0], found[:, None, 1] - sources[None, :, 1])
    return found[distance.min(axis=1) > max(MATCH_RADIUS, fwhm)]


def ring_depth(image: np.ndarray, star: np.ndarray, fwhm: float, noise: float | None = None) -> float:
    """Depth of the darkest ring around ``star`` (x, y), as a fraction of its peak (0: no dark ring).

    The azimuthal mean between 1 and 6 FWHM, minus the median of the annulus 8-10 FWHM (the
    local background), at its lowest, relative to the star's central pixel; with ``noise``
    (image units), in units of it instead. A saturated star's observed peak is clipped and its
    restored one a point: only the second compares their rings.
    """
    yy, xx = np.indices(image.shape)
    r = np.hypot(xx - star[0], yy - star[1])
    peak = float(image[int(round(star[1])), int(round(star[0]))]) if noise is None else float(noise)
    background = image[(r > 8 * fwhm) & (r < 10 * fwhm)]
    if not peak > 0 or background.size == 0:
        return float("nan")
    level = float(np.median(background))
    edges = np.arange(fwhm, 6 * fwhm + 1e-9, 0.5)
    means = [image[(r >= a) & (r < a + 0.5)].mean() for a in edges if np.any((r >= a) & (r < a + 0.5))]
    return float(max(0.0, -(min(means) - level) / peak)) if means else float("nan")


def psnr_without_stars(restored: np.ndarray, truth: np.ndarray, stars: np.ndarray, fwhm: float, border: int) -> float:
    """PSNR (dB) over the pixels farther than 2 FWHM from every star (``(N, 2)`` x, y), peak: the truth's there.

    A star field's PSNR is set by its brightest stars' few pixels; this one scores the rest of
    the scene (galaxies, extended light, the background), which the photometry does not.
    """
    from scipy.ndimage import distance_transform_edt

    marked = np.ones(truth.shape, bool)
    for x, y in stars:
        r, c = int(round(y)), int(round(x))
        if 0 <= r < truth.shape[0] and 0 <= c < truth.shape[1]:
            marked[r, c] = False
    away = distance_transform_edt(marked) > 2 * fwhm if not marked.all() else marked
    away[:border], away[-border:], away[:, :border], away[:, -border:] = False, False, False, False
    if not away.any():
        return float("nan")
    error = float(np.mean((restored[away] - truth[away]) ** 2))
    peak = float(truth[away].max())
    return float(10 * np.log10(peak**2 / error)) if error > 0 and peak > 0 else float("nan")


def background_rms(image: np.ndarray, quiet: np.ndarray) -> float:
    """RMS of ``image`` over the source-free pixels ``quiet`` (about its median)."""
    values = image[quiet]
    return float(np.sqrt(np.mean((values - np.median(values)) ** 2))) if values.size else float("nan")


#: :func:`background_tail`: how far from the background's median a pixel is in its tail, in robust
#: standard deviations (Gaussian noise, smoothed by any linear filter, has 5.7e-7 of its pixels there).
TAIL_SIGMA = 5.0


def background_tail(image: np.ndarray, quiet: np.ndarray) -> float:
    """Fraction of the source-free pixels ``quiet`` beyond :data:`TAIL_SIGMA` robust deviations of their median.

    The deviation is ``1.4826`` times their median absolute deviation. Gaussian noise, after
    any linear smoothing, stays Gaussian: 5.7e-7. A restoration that makes structure of the
    noise (sharp peaks, ripples around what it cannot fit) has a heavier tail, and invents
    sources there.
    """
    values = image[quiet]
    if values.size == 0:
        return float("nan")
    centre = np.median(values)
    spread = 1.4826 * np.median(np.abs(values - centre))
    return float(np.mean(np.abs(values - centre) > TAIL_SIGMA * spread)) if spread > 0 else float("nan")


def score(restored: np.ndarray, frame: Any, observed_noise: float, fwhm: float, border: int) -> dict[str, float]:
    """Every metric of one restored frame (electrons above sky), against the frame's truth and catalogue.

    ``observed_noise`` is the observation's noise (electrons), the unit of the detection
    threshold; ``fwhm`` the true PSF's, pixels.
    """
    from ..metrics import psnr, ssim

    truth = frame.truth
    sources = frame.sources
    saturated_level = (frame.detector.saturate - frame.detector.bias) * frame.detector.gain - frame.detector.sky
    observed_e = frame.electrons(frame.adu)
    inside = _interior(sources, truth.shape, 6 * fwhm)
    stars = sources[(sources[:, 3] == 1) & inside]
    peaks = np.array([observed_e[int(round(y)), int(round(x))] for x, y in stars[:, :2]]) if len(stars) else np.array([])
    # photometry and centroids on the stars an astronomer would measure: unsaturated, signal-to-noise above 20
    snr = stars[:, 2] / (observed_noise * np.sqrt(np.pi) * 2 * fwhm) if len(stars) else np.array([])
    unsaturated = stars[(peaks < 0.8 * saturated_level) & (snr > MIN_SNR)] if len(stars) else stars
    saturated = stars[peaks >= 0.8 * saturated_level] if len(stars) else stars
    bright = unsaturated[np.argsort(-unsaturated[:, 2])[:5]] if len(unsaturated) else unsaturated
    quiet = np.ones(truth.shape, bool)
    from scipy.ndimage import binary_dilation, gaussian_filter

    quiet &= ~binary_dilation(gaussian_filter(truth, fwhm / 2.355) > 0.2 * observed_noise, iterations=int(2 * fwhm))
    if border:  # left out, as by every metric
        quiet[:border], quiet[-border:], quiet[:, :border], quiet[:, -border:] = False, False, False, False
    found = detections(restored, observed_noise, fwhm)
    false = spurious(found, sources, fwhm)
    near_saturated = [np.sum(np.hypot(false[:, 0] - s[0], false[:, 1] - s[1]) < 10 * fwhm) for s in saturated]
    crop = (slice(border, -border), slice(border, -border))
    return {
        "psnr_db": psnr(restored, truth, data_range=float(truth.max()), border=border),
        "ssim": ssim(restored, truth, data_range=float(truth.max()), border=border),
        "psnr_no_stars_db": psnr_without_stars(restored, truth, sources[sources[:, 3] == 1, :2], fwhm, border),
        "flux_ratio": float(restored[crop].sum() / truth[crop].sum()),
        "aperture_2fwhm": aperture_errors(restored, truth, unsaturated[:, :2], 2 * fwhm),
        "aperture_4fwhm": aperture_errors(restored, truth, unsaturated[:, :2], 4 * fwhm),
        "centroid_px": centroid_error(restored, unsaturated[:, :2], int(2 * fwhm)),
        "spurious_per_1000": 1000.0 * len(false) / max(len(sources), 1),
        "spurious_near_saturated": float(np.sum(near_saturated)) if saturated.size else float("nan"),
        "ring_depth": float(np.nanmedian([ring_depth(restored, s, fwhm) for s in bright])) if len(bright) else float("nan"),
        "ring_saturated_sigma": float(np.nanmax([ring_depth(restored, s, fwhm, observed_noise) for s in saturated]))
        if len(saturated) else float("nan"),
        "background_rms_ratio": background_rms(restored, quiet) / background_rms(observed_e, quiet),
        "background_tail": background_tail(restored, quiet),
    }
