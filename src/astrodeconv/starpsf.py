"""The PSF of an image, estimated from its own stars with photutils.

:func:`estimate_psf` finds point sources (``DAOStarFinder``), keeps those an astronomer would
trust for a PSF -- isolated, unsaturated, away from the edges and from bad pixels -- and
builds their effective PSF with ``EPSFBuilder`` (Anderson & King 2000), at the image's own
sampling. Every rejected candidate is reported with its reason.

An estimated PSF has small negative lobes (the background's noise and its subtraction):
those within :data:`astrodeconv.psf.NEGATIVE_TOLERANCE` of the peak are clipped to zero by
:func:`astrodeconv.psf.validate` (with a warning); deeper ones are an error.

Arrays in, arrays out; photutils is imported here only.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .checks import finite_image, int_between, positive_float
from .errors import InputError
from .psf import MAX_PSF_SIDE, NEGATIVE_TOLERANCE
from .psf import fwhm as measure_fwhm
from .psf import validate

__all__ = ["MIN_STARS", "StarPSF", "estimate_psf"]

#: Fewest stars an estimate is built from.
MIN_STARS = 5
#: Detection threshold, in units of the background's standard deviation (peak above the sky).
THRESHOLD = 20.0
#: A star whose peak reaches this fraction of the saturation level is left out.
SATURATION_MARGIN = 0.8


@dataclass(frozen=True)
class StarPSF:
    """An estimated PSF and how it was made.

    Attributes
    ----------
    psf : ndarray, shape (s, s), float64
        Unit-sum, odd side, centred on the central pixel.
    fwhm : float
        Its FWHM, pixels (:func:`astrodeconv.psf.fwhm`).
    stars : list of (x, y)
        Positions (0-based pixel coordinates) of the stars used.
    rejected : dict of str to int
        Candidates left out, counted by reason.
    local_sky : bool
        Each star was taken on its own sky (the frame's one sky left a flat floor under the PSF).
    """

    psf: np.ndarray
    fwhm: float
    stars: list[tuple[float, float]]
    rejected: dict[str, int] = field(default_factory=dict)
    local_sky: bool = False

    def summary(self) -> str:
        """One line: how many stars, the FWHM, and why the others were left out."""
        why = ", ".join(f"{n} {reason}" for reason, n in self.rejected.items() if n) or "none rejected"
        sky = ", each on its own sky (one sky for the frame left a flat floor under the PSF)" if self.local_sky else ""
        return (f"PSF from {len(self.stars)} stars{sky}, {self.psf.shape[0]} x {self.psf.shape[1]} px, "
                f"FWHM {self.fwhm:.2f} px; left out: {why}")


def _background(data: np.ndarray, bad: np.ndarray) -> tuple[float, float]:
    from astropy.stats import sigma_clipped_stats

    _, median, std = sigma_clipped_stats(data[~bad], sigma=3.0, maxiters=10)
    if not (np.isfinite(std) and std > 0):
        raise InputError("the image's background has no noise (constant sky): cannot detect stars")
    return float(median), float(std)


def _detect(sub: np.ndarray, bad: np.ndarray, std: float, fwhm: float, threshold: float) -> np.ndarray:
    """``(N, 3)`` rows ``x, y, peak`` of the point sources above ``threshold * std``, brightest first."""
    from photutils.detection import DAOStarFinder

    finder = DAOStarFinder(threshold=threshold * std, fwhm=fwhm, exclude_border=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils warns when nothing is found
        table = finder(sub, mask=bad)
    if table is None or len(table) == 0:
        return np.empty((0, 3))
    rows = np.column_stack([np.asarray(table["x_centroid" if "x_centroid" in table.colnames else "xcentroid"]),
                            np.asarray(table["y_centroid" if "y_centroid" in table.colnames else "ycentroid"]),
                            np.asarray(table["peak"])])
    return rows[np.argsort(-rows[:, 2])]


def _first_fwhm(sub: np.ndarray, bad: np.ndarray, std: float, saturated: np.ndarray) -> float:
    """A first FWHM from the brightest unsaturated detections (photutils' ``fit_fwhm``), pixels."""
    from photutils.psf import fit_fwhm

    found = _detect(sub, bad, std, 3.0, THRESHOLD)
    keep = [r for r in found if not saturated[int(round(r[1])), int(round(r[0]))]][:30]
    if len(keep) < MIN_STARS:
        raise InputError(f"found {len(keep)} unsaturated point sources above {THRESHOLD:g} sigma; a PSF needs at "
                         f"least {MIN_STARS}: give the PSF with --psf")
    xy = np.array(keep)[:, :2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        widths = np.asarray(fit_fwhm(np.where(bad, 0.0, sub), xypos=xy, fit_shape=7), dtype=np.float64)
    widths = widths[np.isfinite(widths) & (widths > 0.5)]
    if widths.size == 0:
        raise InputError("could not measure the width of any star; give the PSF with --psf")
    return float(np.median(widths))


#: :func:`_on_local_sky`: the annulus just beyond a star's cutout whose clipped median is its sky, px.
LOCAL_SKY_WIDTH = 6


def _on_local_sky(stars: Any, sub: np.ndarray, bad: np.ndarray, half: int) -> Any:
    """The cutouts ``stars`` (photutils ``EPSFStars``), each less its own sky.

    Each star's sky is the sigma-clipped median of ``sub`` (the frame less its global sky) in
    the annulus from ``half + 1`` to ``half + 1 +`` :data:`LOCAL_SKY_WIDTH` px (its good pixels;
    none: the star is kept as it is).
    """
    from astropy.stats import SigmaClip
    from photutils.aperture import ApertureStats, CircularAnnulus
    from photutils.psf import EPSFStar, EPSFStars

    cutouts = list(stars.all_stars)
    centres = np.array([star.center for star in cutouts], dtype=np.float64)  # x, y in the frame
    annulus = CircularAnnulus(centres, r_in=half + 1, r_out=half + 1 + LOCAL_SKY_WIDTH)
    skies = np.atleast_1d(np.asarray(ApertureStats(sub, annulus, mask=bad, sigma_clip=SigmaClip(sigma=3.0)).median,
                                     dtype=np.float64))
    return EPSFStars([EPSFStar(star.data - (sky if np.isfinite(sky) else 0.0), weights=star.weights,
                               cutout_center=star.cutout_center, origin=star.origin)
                      for star, sky in zip(cutouts, skies)])


#: :func:`_has_pedestal`: a PSF whose light falls less than this much from the middle to the outer quarter of its
#: stamp's half side is flat there ...
FALL = 1.5
#: ... and a floor is a pedestal when it holds at least this share of the PSF's sum (noise alone does not).
FLOOR_SHARE = 0.02


def _has_pedestal(kernel: np.ndarray) -> bool:
    """Whether ``kernel`` ends in a flat floor (a pedestal) rather than a falling wing.

    A PSF's light falls with the distance out to its stamp's edge: from the middle (1/2 to 3/4 of
    the half side) to the outer quarter, a Moffat's by 2.7 to 7 times (beta 1.5 to 3), an Airy's by
    2.7, an obscured aperture's with struts by 2.3. The sky of stars on a galaxy, left in their
    cutouts, is flat. A pedestal: the outer quarter's median, over the whole stamp, holds at least
    :data:`FLOOR_SHARE` of its sum, and the middle's mean is less than :data:`FALL` times the outer's.
    Under a broad wing a floor shows only when large (a Moffat of beta 2.5: from 0.3 of the sum).
    """
    half = min(kernel.shape) // 2
    if half < 4:
        return False
    r = np.hypot(*np.ogrid[-(kernel.shape[0] // 2): kernel.shape[0] - kernel.shape[0] // 2,
                           -(kernel.shape[1] // 2): kernel.shape[1] - kernel.shape[1] // 2])
    middle = kernel[(r >= half / 2) & (r < 3 * half / 4)]
    outer = kernel[(r >= 3 * half / 4) & (r <= half)]
    floor = float(np.median(outer)) * kernel.size
    return floor >= FLOOR_SHARE * float(kernel.sum()) and float(middle.mean()) < FALL * float(outer.mean())


def _lobe(kernel: np.ndarray) -> float:
    """The depth of ``kernel``'s deepest negative pixel, a fraction of its peak (0: none)."""
    return max(0.0, -float(np.min(kernel)) / float(np.max(kernel)))


def estimate_psf(
    image: np.ndarray,
    *,
    mask: np.ndarray | None = None,
    saturation: float | None = None,
    size: int | None = None,
    max_stars: int = 200,
) -> StarPSF:
    """Estimate the PSF of ``image`` from its isolated, unsaturated stars.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The frame in any units, sky included (NaN pixels are bad).
    mask : ndarray of bool, shape (H, W), optional
        Bad pixels (True), left out of the background and of every star's cutout.
    saturation : float, optional
        Saturation level in the image's units; stars reaching ``SATURATION_MARGIN`` of it are
        left out, as are those touching a masked pixel.
    size : int, optional
        Odd side of the PSF, pixels; default ``2 * ceil(4 FWHM) + 1`` (at least 15).
    max_stars : int
        Brightest accepted stars used.

    Returns
    -------
    StarPSF

    Raises
    ------
    InputError
        Fewer than :data:`MIN_STARS` usable stars, or a PSF with deep negative lobes.
    """
    from astropy.nddata import NDData
    from astropy.table import Table
    from photutils.psf import EPSFBuilder, extract_stars

    data = finite_image(image)
    if mask is not None and np.shape(mask) != data.shape:
        raise InputError(f"mask has shape {np.shape(mask)}, the image {data.shape}")
    bad = ~np.isfinite(data) if mask is None else (~np.isfinite(data) | np.asarray(mask, dtype=bool))
    saturated = bad.copy()
    if saturation is not None:
        saturated |= data >= SATURATION_MARGIN * positive_float(saturation, "saturation level", "number")
    median, std = _background(data, bad)
    sub = np.where(bad, 0.0, data - median)
    width = _first_fwhm(sub, bad, std, saturated)
    if size is None:
        size = max(15, 2 * int(np.ceil(4 * width)) + 1)
    size = int_between(size, "PSF size", 5, MAX_PSF_SIDE) | 1
    half = size // 2
    found = _detect(sub, bad, std, width, THRESHOLD)
    faint = _detect(sub, bad, std, width, 5.0)  # neighbours that spoil a cutout
    rejected = {"near the edge": 0, "saturated or bad pixels": 0, "not isolated": 0}
    kept: list[tuple[float, float]] = []
    rows, cols = data.shape
    for x, y, peak in found:
        r, c = int(round(y)), int(round(x))
        if r - half < 0 or c - half < 0 or r + half >= rows or c + half >= cols:
            rejected["near the edge"] += 1
            continue
        cutout = (slice(r - half, r + half + 1), slice(c - half, c + half + 1))
        near_core = np.hypot(*np.ogrid[-half : half + 1, -half : half + 1]) <= max(width, 1.5)
        # a bad pixel in the wings is masked in the cutout; one at the core, or many near it, spoil the star
        if (saturation is not None and np.nan_to_num(data[cutout]).max() >= SATURATION_MARGIN * saturation) or \
                bad[r, c] or bad[cutout][near_core].mean() > 0.1:
            rejected["saturated or bad pixels"] += 1
            continue
        near = np.hypot(faint[:, 0] - x, faint[:, 1] - y)
        if np.any((near > 1.0) & (near < half * np.sqrt(2)) & (faint[:, 2] > 0.01 * peak)):
            rejected["not isolated"] += 1
            continue
        kept.append((float(x), float(y)))
    if len(kept) > max_stars:
        rejected["beyond the brightest"] = len(kept) - max_stars
        kept = kept[:max_stars]
    if len(kept) < MIN_STARS:
        why = ", ".join(f"{n} {reason}" for reason, n in rejected.items() if n)
        raise InputError(f"only {len(kept)} isolated, unsaturated stars found ({why}); a PSF needs at least "
                         f"{MIN_STARS}: give the PSF with --psf")
    table = Table({"x": [p[0] for p in kept], "y": [p[1] for p in kept]})
    nddata = NDData(sub, mask=bad)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        stars = extract_stars(nddata, table, size=(size, size))

        def build(cutouts: Any) -> np.ndarray:
            try:
                epsf = EPSFBuilder(oversampling=1, maxiters=10, progress_bar=False)(cutouts)[0]
            except (TypeError, ValueError, IndexError) as exc:  # photutils fails on stars it cannot fit
                raise InputError(f"photutils' EPSFBuilder could not build a PSF from the {len(kept)} stars found "
                                 f"({type(exc).__name__}: {exc}); give the PSF with --psf") from None
            return np.asarray(epsf.data, dtype=np.float64)

        kernel = build(stars)
        # stars on a galaxy's light leave it under the PSF as a flat floor: then each is taken on its own sky,
        # kept only where its lobes stay within what is accepted (crowded annuli hold neighbours' light)
        local_sky = False
        if _has_pedestal(kernel):
            local = build(_on_local_sky(stars, sub, bad, half))
            local_sky = _lobe(local) <= max(_lobe(kernel), NEGATIVE_TOLERANCE)
            kernel = local if local_sky else kernel
    if kernel.shape[0] % 2 == 0 or kernel.shape[1] % 2 == 0:
        kernel = kernel[: kernel.shape[0] - 1 + kernel.shape[0] % 2, : kernel.shape[1] - 1 + kernel.shape[1] % 2]
    kernel = validate(kernel, name="the PSF estimated from the stars")
    return StarPSF(kernel, measure_fwhm(kernel), kept, rejected, local_sky)
