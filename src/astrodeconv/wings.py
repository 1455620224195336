"""The PSF's outer profile and far wings, measured on the image's own saturated stars.

A PSF estimated from a frame's isolated, unsaturated stars (or a stand-in, a Moffat of their
FWHM, a model of the wrong width) is known well in its core and poorly in its wings: faint stars
say little about the light a few per cent of the flux spreads over hundreds of pixels, and a
stamp ends where a star's light does not. A saturated star is thousands of times brighter: its
wings, divided by its flux, *are* the PSF's, far above the noise. Taken out with a PSF whose wings
are wrong, such a star leaves rings, spikes and false sources hundreds of times the sky's noise.

:func:`saturated_wings` measures the PSF ring by ring on those wings (the median of the stars,
each centred to a fraction of a pixel and divided by its fitted flux, the other saturated stars
taken out; with one or two stars, by the PSF's point symmetry), and where the PSF given differs
from it by more than its own scatter, replaces it there and beyond its stamp (there also the
spikes of struts, whose light is in a few of a ring's pixels): the core stays the given one.
Arrays in, arrays out.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np

from .masks import centred_window, fit_saturated, star_footprints, star_image

__all__ = ["MIN_RING_RADIUS", "MIN_STARS", "MISMATCH", "MISMATCH_FEW", "Wings", "saturated_wings"]

#: Fewest saturated stars whose median rejects what lies behind each one (a galaxy, extended
#: light, another star). With fewer, each star's window is first the lower of itself and itself
#: turned by 180 degrees: a PSF is point-symmetric (an obscured aperture with struts, seeing),
#: the scene behind a star rarely is.
MIN_STARS = 3

#: Rings are measured from this many FWHM of the given PSF outwards (inside, the saturated
#: cores and their fits set the profile, not their wings).
MIN_RING_RADIUS = 3.0
#: A ring is replaced by the stars' profile when the given PSF's mean squared difference from
#: it exceeds this many times the profile's own variance (the scatter of the stars about it).
MISMATCH = 2.0
#: The same with fewer than :data:`MIN_STARS` stars, whose variance is a ring's noise, not each pixel's scatter:
#: the photon noise of a star's own light, the error of its fitted flux and the scene symmetric about it add to
#: the difference of a right PSF.
MISMATCH_FEW = 10.0
#: The wings are measured out to this many FWHM of the given PSF (and at most half the
#: image's smaller side).
MAX_RADIUS = 12.0
#: Beyond the given stamp, a ring whose summed light exceeds :data:`LIGHT_SIGMA` times its noise
#: holds the star's light in those of its pixels more than :data:`SPIKE_SIGMA` times their noise
#: above zero (the spikes of struts, a few of a ring's pixels, which its mean does not show).
LIGHT_SIGMA, SPIKE_SIGMA = 3.0, 3.0
#: With fewer than :data:`MIN_STARS` stars, a ring is compared only where this share of its pixels is
#: measured (a lone star near the image's edge leaves part of it out): replaced in part, the PSF would be
#: lopsided. (Three or more stars near the edges can leave a far ring so, too; there, requiring it cost
#: the spikes' ends 60 px out on the space-like star field, measured by the stars that reach them.)
COVERED = 0.8
#: Width of a ring, pixels.
RING = 2


class Wings(NamedTuple):
    """How :func:`saturated_wings` changed the PSF: stars used, rings replaced, old and new side (px)."""

    stars: int
    rings: int
    radius: float
    side_given: int
    side: int
    light: float  # fraction of the new PSF's light beyond the given one's stamp

    def summary(self) -> str:
        return (f"the PSF's profile from {self.radius:.1f} px outwards measured on {self.stars} saturated "
                f"star{'s' if self.stars > 1 else ''} "
                f"({self.rings} rings of {RING} px replaced; stamp {self.side_given} -> {self.side} px, "
                f"{self.light:.1%} of the light beyond the stamp given)")


def _padded(psf: np.ndarray, half: int) -> np.ndarray:
    side = 2 * half + 1
    out = np.zeros((side, side))
    oy, ox = (psf.shape[0] - 1) // 2, (psf.shape[1] - 1) // 2
    rows = slice(max(0, half - oy), min(side, half - oy + psf.shape[0]))
    cols = slice(max(0, half - ox), min(side, half - ox + psf.shape[1]))
    out[rows, cols] = psf[rows.start - half + oy : rows.stop - half + oy, cols.start - half + ox : cols.stop - half + ox]
    return out


def _symmetric_profile(samples: np.ndarray, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The PSF's profile from fewer than :data:`MIN_STARS` stars' windows ``samples`` (N, s, s), by its point symmetry.

    Each pixel takes the lowest of its 2 N values (each star's, and each star's at the opposite
    side of its centre): what lies behind one side of a star is not the PSF's. The lowest is
    biased low (by 0.56 times the noise for one star), on the safe side: light of the scene
    taken for the PSF's would be taken out of every source of the frame. The noise is the
    robust spread of the stars' antisymmetric part over each ring of :data:`RING` px at radii
    ``r``. Returns the profile (NaN where no star has both values) and its variance.
    """
    from astropy.stats import mad_std

    turned = samples[:, ::-1, ::-1]
    noise = np.full(r.shape, np.nan)
    for inner in np.arange(0, r.max() + RING, RING):
        ring = (r >= inner) & (r < inner + RING)
        difference = (samples - turned)[:, ring]
        if np.isfinite(difference).any():
            noise[ring] = mad_std(difference, ignore_nan=True) / np.sqrt(2)
    # each star's pixel and its opposite both measured, else that star is left out there (one cut by the edge)
    profile = np.fmin.reduce(np.minimum(samples, turned), axis=0)
    return profile, noise**2 * np.pi / 2 / len(samples)


def saturated_wings(image: np.ndarray, saturated: np.ndarray, psf: np.ndarray, bad: np.ndarray | None = None,
                    sky: float | None = None) -> tuple[np.ndarray, Wings | None]:
    """``psf`` with its outer profile measured on the image's saturated stars, and what was changed.

    Each saturated star is fitted with ``psf`` on its wings (:func:`astrodeconv.masks.fit_saturated`);
    its window (out to :data:`MAX_RADIUS` FWHM), less the sky and the other saturated stars'
    fitted light, divided by its flux and centred to a fraction of a pixel, samples the PSF's
    profile relative to the light in the given stamp. The profile is their median; its
    variance, the stars' scatter about it, ``(1.4826 MAD)^2 pi / 2 / N``. Fewer than
    :data:`MIN_STARS` stars cannot tell their wings from the scene behind them by a median: their
    profile is taken by the PSF's point symmetry instead (:func:`_symmetric_profile`), and a ring
    must differ by :data:`MISMATCH_FEW` times its variance.

    In rings of :data:`RING` px from :data:`MIN_RING_RADIUS` FWHM outwards, where the given
    PSF's mean squared difference from the profile exceeds :data:`MISMATCH` times that
    variance, the profile (negatives at zero) replaces it; beyond the given stamp the wings go
    on ring by ring up to the first that agrees with the given PSF (zero there) and holds no
    light: a ring whose summed profile exceeds :data:`LIGHT_SIGMA` times its noise takes the
    profile in its pixels above :data:`SPIKE_SIGMA` times theirs (taken whole and clipped at
    zero, a ring's noise would add light). The result has unit sum. With no saturated star
    fitted, or no ring replaced, ``psf`` is returned as given, with None.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The frame (NaN at bad pixels).
    saturated : ndarray of bool, shape (H, W)
    psf : ndarray, shape (s, s)
        Unit sum, odd side, origin at the centre.
    bad : ndarray of bool, optional
        Other pixels not to use.
    sky : float, optional
        The sky level, image units; default: the sigma-clipped median of the valid pixels beyond
        the wings measured from every saturated star (if a tenth of the image; else of all).

    Returns
    -------
    psf : ndarray, shape (s', s'), s' >= s
    wings : Wings or None
    """
    from astropy.stats import sigma_clipped_stats

    from .psf import fwhm as measure_fwhm

    image = np.asarray(image, dtype=np.float64)
    psf = np.asarray(psf, dtype=np.float64)
    if not saturated.any():
        return psf, None
    invalid = ~np.isfinite(image) | saturated | (np.zeros(image.shape, bool) if bad is None else np.asarray(bad, bool))
    width = measure_fwhm(psf)
    half_given = max(psf.shape) // 2
    half = int(max(half_given, min(MAX_RADIUS * width, (min(image.shape) - 1) // 2)))
    start = MIN_RING_RADIUS * width
    if start >= half:
        return psf, None
    given = _padded(psf, half)
    stars, _ = fit_saturated(image, saturated, given, bad)
    if not stars:
        return psf, None
    if sky is None:  # measured beyond the wings measured, where there are enough such pixels
        from scipy import ndimage

        far = ~invalid & (ndimage.distance_transform_edt(~saturated) > half)
        sky = float(sigma_clipped_stats(image[far if far.sum() >= 0.1 * far.size else ~invalid], sigma=3.0)[1])
    where = star_footprints(image.shape, stars, given)
    rest = image - sky - star_image(image.shape, stars, given, where)
    # each star's window without the other saturated stars, over its flux
    samples = np.array([centred_window(rest + star_image(image.shape, [star], given, [footprint]), star.y, star.x,
                                       half, invalid) / star.flux for star, footprint in zip(stars, where)])
    yy, xx = np.indices(given.shape)
    r = np.hypot(yy - half, xx - half)
    few = len(stars) < MIN_STARS
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: no star reaches them
        if few:
            profile, variance = _symmetric_profile(samples, r)
            measured = np.isfinite(profile)
        else:
            count = np.sum(np.isfinite(samples), axis=0)
            profile = np.nanmedian(samples, axis=0)
            spread = 1.4826 * np.nanmedian(np.abs(samples - profile), axis=0)
            variance = spread**2 * np.pi / 2 / np.maximum(count, 1)
            measured = count >= MIN_STARS
    out, replaced, last = given.copy(), 0, half_given
    for inner in np.arange(start, half, RING):
        whole = (r >= inner) & (r < inner + RING)
        ring = whole & measured
        if np.count_nonzero(ring) < max(8, COVERED * np.count_nonzero(whole) if few else 0):
            continue
        excess = profile[ring] - given[ring]
        if np.mean(excess**2) > (MISMATCH_FEW if few else MISMATCH) * np.mean(variance[ring]):
            taken = ring
        elif inner >= half_given and excess.sum() > LIGHT_SIGMA * np.sqrt(variance[ring].sum()):
            # beyond the stamp, light in a few of a ring's pixels (the spikes of struts): those pixels only
            taken = ring & (profile > SPIKE_SIGMA * np.sqrt(variance))
        elif inner > last:  # beyond the stamp, the wings go on as long as every ring is measured
            break
        else:
            continue
        out[taken] = np.clip(profile[taken], 0.0, None)
        replaced += 1
        last = max(last, int(np.ceil(inner + RING)))
    if not replaced:
        return psf, None
    last = min(half, last)
    trimmed = out[half - last : half + last + 1, half - last : half + last + 1]
    trimmed = trimmed / trimmed.sum()
    beyond = float(trimmed[_padded(np.ones_like(psf), last) == 0].sum())
    return trimmed, Wings(len(stars), replaced, float(start), max(psf.shape), trimmed.shape[0], beyond)
