"""Bright point sources fitted with the PSF (photutils), taken out before a restoration and put back as points.

A linear deconvolution of a star a thousand times above the noise rings: the restored
point is band-limited, and its rings (about 1 % of its peak for a Wiener filter) stand far
above the noise, where source detection counts them as stars that are not there. The remedy
of Magain, Courbin & Sohy (1998, ApJ 494, 472) is to model point sources apart: each bright
star is fitted with the PSF (photutils' ``PSFPhotometry``), its fitted light is taken out of
the image, the rest is restored, and the star is put back as a point of its fitted flux at
its fitted position (:func:`astrodeconv.masks.point_image`). Its photometry is then the PSF
photometry an astronomer would do, and nothing rings around it.

Only sources that the PSF fits well are taken out (``qfit``, the sum of the absolute
residuals over the flux, below :data:`MAX_QFIT`): a galaxy is left to the restoration. A source
that fits poorly beside a brighter one (its fit takes in the other's wings) is fitted again
once those that fit well are out of the image.
Arrays in, arrays out; photutils is imported here only.
"""

from __future__ import annotations

import warnings
from typing import Any, NamedTuple

import numpy as np

from .masks import FittedStar, star_image
from .psf import MAX_PSF_SIDE, dilate, fwhm as measure_fwhm

__all__ = ["MAX_QFIT", "POINT_THRESHOLD", "WIDTH_FACTORS", "WidthFit", "fit_points", "fit_width", "matched_psf"]

#: Peak above the sky, in units of the sky's noise, from which a point source is fitted.
POINT_THRESHOLD = 50.0
#: Largest photutils ``qfit`` (sum of |residual| in the fit box / flux) of a fit that is a point source.
MAX_QFIT = 0.1


def fit_points(image: np.ndarray, psf: np.ndarray, sigma: float, invalid: np.ndarray | None = None,
               threshold: float = POINT_THRESHOLD, max_qfit: float = MAX_QFIT,
               notes: list[str] | None = None, psf_from_stars: bool = False) -> list[FittedStar]:
    """The point sources of ``image`` brighter than ``threshold * sigma``, fitted with ``psf``.

    Found by photutils' ``DAOStarFinder`` (down to one FWHM from a brighter one) and fitted by
    its ``PSFPhotometry``; those whose fit is poor are fitted once more on ``image`` without the
    stars that fit well (a star on a brighter one's wings fits their slope too).

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Image, sky included (any units; NaN pixels are left out of the fits).
    psf : ndarray, shape (h, w)
        Unit-sum PSF, origin at its central pixel.
    sigma : float
        The sky's noise, image units.
    invalid : ndarray of bool, optional
        Pixels not to fit (saturated, flagged).
    threshold, max_qfit
        Detection level (sky noise units) and the largest ``qfit`` kept.
    notes : list of str, optional
        Where to say that the PSF fits the bright sources poorly: when fewer than half of
        at least five fits are kept, the PSF is likely wrong (a width 15 % off gives every
        star of a GalSim frame a ``qfit`` above 0.1); those that fit well are still taken out.
    psf_from_stars : bool
        ``psf`` was estimated from the image's own stars: the note does not suggest it.

    Returns
    -------
    points : list of FittedStar
        ``y, x`` (pixels), ``flux`` (image units, the PSF's unit sum times the fitted
        amplitude), ``background`` (the local sky of the fit), ``region`` 0.
    """
    width = max(measure_fwhm(psf), 1.0)
    found = _bright_sources(image, width, sigma, invalid, threshold)
    if found is None:
        return []
    data, bad, sky, x, y = found
    fits = _photometry(data, bad, psf, x, y, width)
    keep = fits["fitted"] & (fits["qfit"] < max_qfit)
    if keep.any() and not keep.all():
        # a source on a brighter star's wings fits their slope too, and poorly: refitted once without the stars kept
        light = star_image(data.shape, _stars(fits, keep, sky), psf)
        again = _photometry(data - light, bad, psf, x[~keep], y[~keep], width)
        for name, values in again.items():
            fits[name][~keep] = values
        keep = fits["fitted"] & (fits["qfit"] < max_qfit)
    fitted, qfit = fits["fitted"], fits["qfit"]
    if notes is not None and fitted.sum() >= 5 and keep.sum() < 0.5 * fitted.sum():
        hint = "" if psf_from_stars else " (a wrong width? --psf stars estimates it)"
        notes.append(f"warning: the PSF fits the image's {int(fitted.sum())} bright sources poorly (median qfit "
                     f"{float(np.median(qfit[fitted])):.2f}, {int(keep.sum())} below {max_qfit:g}): they are extended, "
                     f"or the PSF is not the image's{hint}")
    stars = _stars(fits, keep, sky)
    if not stars:
        return []
    # photutils' local sky, a clipped median 3 to 5 widths out, holds the stars' own wings there (a star of millions
    # of electrons: one to three sky sigmas, which take_out spread as a disc about it): measured again on the frame
    # without every star kept
    rest = data - star_image(data.shape, stars, psf)
    local = _local_sky(width)(rest, [star.x for star in stars], [star.y for star in stars], mask=bad)
    return [star._replace(background=float(level) + sky) for star, level in zip(stars, np.atleast_1d(local))]


def _stars(fits: dict[str, np.ndarray], keep: np.ndarray, sky: float) -> list[FittedStar]:
    """The fits ``keep`` of :func:`_photometry` as stars, ``sky`` their background."""
    return [FittedStar(float(y), float(x), float(f), sky, 0)
            for x, y, f in zip(fits["x"][keep], fits["y"][keep], fits["flux"][keep])]


def _local_sky(width: float) -> Any:
    """photutils' ``LocalBackground`` of the fits: the clipped median of an annulus 3 to 5 ``width`` (px) out."""
    from photutils.background import LocalBackground

    return LocalBackground(3 * width, 5 * width)


#: Dilations of the PSF :func:`fit_width` tries: 2^(k/20), k = -10..10 (0.71 to 1.41, steps of 3.5 %).
WIDTH_FACTORS = 2.0 ** (np.arange(-10, 11) / 20)
#: A width mismatch :func:`matched_psf` corrects: beyond 5 %, and a median ``qfit`` at least 30 % better.
WIDTH_TOLERANCE, QFIT_GAIN = 0.05, 0.7
#: Largest relative difference of a source's best width from that of the source its group of one width is
#: gathered about (:func:`fit_width`'s point sources: two members may differ by twice this).
SAME_WIDTH = 0.05


class WidthFit(NamedTuple):
    """How much wider the image's bright point sources are than a PSF (:func:`fit_width`)."""

    factor: float  # the PSF's widths times this fit them best
    sources: int  # the point sources the factor comes from (every isolated source fitted, when fewer than 2)
    qfit_given: float  # median photutils qfit with the PSF as given
    qfit: float  # ... with the PSF dilated by ``factor``
    points: bool = True  # from point sources of one width; False: the median of every source fitted


def fit_width(image: np.ndarray, psf: np.ndarray, sigma: float, invalid: np.ndarray | None = None,
              threshold: float = POINT_THRESHOLD, most: int = 25) -> WidthFit | None:
    """The dilation of ``psf`` (:func:`astrodeconv.psf.dilate`) that fits the image's bright, isolated sources best.

    The ``most`` brightest sources above ``threshold * sigma`` with no other within 4 FWHM
    and no ``invalid`` pixel within 2 FWHM are fitted (photutils' ``PSFPhotometry``: flux,
    position, local sky) with the PSF dilated by each of :data:`WIDTH_FACTORS`. Each source's
    own best factor is refined by a parabola through its neighbours (in log factor); the point
    sources are the largest group of one width among those that fit well (:func:`_point_sources`),
    and the factor is the median of theirs (of every source's, when fewer than 2 are points:
    ``qfit`` then says how poorly they fit, and ``points`` is False). ``sources``, ``qfit_given`` and ``qfit`` are those
    sources' number and median ``qfit`` as given and at the factor. None when fewer than 3
    sources qualify. Arguments as :func:`fit_points`.
    """
    from scipy import ndimage
    from scipy.spatial import cKDTree

    width = max(measure_fwhm(psf), 1.0)
    found = _bright_sources(image, width, sigma, invalid, threshold)
    if found is None:
        return None
    data, bad, _, x, y = found
    nearest = cKDTree(np.column_stack([x, y])).query(np.column_stack([x, y]), k=2)[0][:, 1] if len(x) > 1 \
        else np.full(len(x), np.inf)
    rows, cols = np.round(y).astype(int), np.round(x).astype(int)
    clear = ndimage.distance_transform_edt(~bad)[rows, cols] > 2 * width if bad.any() else np.ones(len(x), bool)
    chosen = np.flatnonzero((nearest > 4 * width) & clear)
    chosen = chosen[np.argsort(-data[rows[chosen], cols[chosen]])][:most]
    if len(chosen) < 3:
        return None
    qfits = np.full((len(WIDTH_FACTORS), len(chosen)), np.inf)  # factor x source
    for k, factor in enumerate(WIDTH_FACTORS):
        if max(psf.shape) * factor > MAX_PSF_SIDE - 2:  # a PSF that large is not dilated further
            continue
        fits = _photometry(data, bad, dilate(psf, factor), x[chosen], y[chosen], width)
        qfits[k] = np.where(fits["fitted"], fits["qfit"], np.inf)
    # each source's own best width; inside those tried, fitted on both sides (a galaxy's fit improves to the
    # widest), it is refined by a parabola through its neighbours (in log factor)
    best = np.argmin(qfits, axis=0)
    columns = np.arange(len(chosen))
    step = np.log(WIDTH_FACTORS[1] / WIDTH_FACTORS[0])
    logs = np.log(WIDTH_FACTORS[best])
    inside = (best > 0) & (best < len(WIDTH_FACTORS) - 1)
    inside &= np.isfinite(qfits[np.clip(best - 1, 0, None), columns]) & np.isfinite(
        qfits[np.clip(best + 1, None, len(WIDTH_FACTORS) - 1), columns])
    for j in np.flatnonzero(inside):
        low, mid, high = qfits[best[j] - 1 : best[j] + 2, j]
        if low - 2 * mid + high > 0:
            logs[j] += 0.5 * (low - high) / (low - 2 * mid + high) * step
    points = _point_sources(qfits[best, columns], inside, logs)
    grouped = points.sum() >= 2
    if not grouped:
        points = np.isfinite(qfits[best, columns])  # too few: all, for a median that says how poorly they fit
        if points.sum() < 3:
            return None
    factor = float(np.exp(np.median(logs[points])))
    at = int(np.argmin(np.abs(np.log(WIDTH_FACTORS) - np.log(factor))))
    given = int(np.argmin(np.abs(np.log(WIDTH_FACTORS))))
    return WidthFit(factor, int(points.sum()), float(np.median(qfits[given, points])),
                    float(np.median(qfits[at, points])), bool(grouped))


def _point_sources(qfit: np.ndarray, inside: np.ndarray, logs: np.ndarray) -> np.ndarray:
    """Which sources of :func:`fit_width` are point sources: the largest group of one width among those that fit well.

    ``qfit``, ``inside`` and ``logs`` are each source's best ``qfit``, whether its best width lies
    inside :data:`WIDTH_FACTORS` (a galaxy's fit goes on improving up to the widest PSF tried),
    and the log of that width. A source is a candidate when its best ``qfit`` is below
    :data:`MAX_QFIT` and its best width is inside. The point sources all have the PSF's width:
    they are the most candidates within :data:`SAME_WIDTH` of one of them (ties: the group
    nearer the width given, the smaller change). Galaxies that fit a wider PSF well are then not
    taken for stars, which a median over all candidates did (three stars and three compact
    galaxies: 8 % wider, not 13 % narrower).
    """
    candidates = (qfit < MAX_QFIT) & inside
    if candidates.sum() < 2:
        return candidates
    groups = [candidates & (np.abs(logs - logs[j]) <= np.log1p(SAME_WIDTH)) for j in np.flatnonzero(candidates)]
    sizes = [int(group.sum()) for group in groups]
    largest = max(sizes)
    return min((group for group, size in zip(groups, sizes) if size == largest),
               key=lambda group: abs(float(np.median(logs[group]))))


def matched_psf(image: np.ndarray, psf: np.ndarray, sigma: float, invalid: np.ndarray | None = None,
                notes: list[str] | None = None) -> tuple[np.ndarray, WidthFit | None]:
    """``psf``, narrowed to the image's bright point sources when they say it is too wide; and the fit applied.

    A PSF is rarely known to better than a few per cent, and one 15 % too wide makes every
    restoration ring (over-deconvolved) and every bright star's fit leave a ring of
    residuals. When the image's point sources (at least 2 of one width among at least 3
    isolated bright sources, :func:`fit_width`) fit best with the widths more than
    :data:`WIDTH_TOLERANCE` narrower, fit well there (median ``qfit`` below :data:`MAX_QFIT`)
    and at least ``1 / QFIT_GAIN`` times better than as given, the PSF is dilated to them (and a
    note says so); else it is returned as given, with None.

    Only narrowed: nothing in an image is narrower than its point sources, but compact
    galaxies, or stars near saturation, are wider than the PSF, and a PSF widened to them would
    under-restore the frame. Sources wider than the PSF are only said to be so (a too narrow
    PSF under-restores; it does not ring). Neither is done when the best width lies at the
    end of :data:`WIDTH_FACTORS` (the search did not bracket it).
    """
    fit = fit_width(image, psf, sigma, invalid)
    if (fit is None or abs(np.log(fit.factor)) <= np.log1p(WIDTH_TOLERANCE) or not fit.qfit < MAX_QFIT
            or not fit.qfit < QFIT_GAIN * fit.qfit_given):
        return psf, None
    edge = not WIDTH_FACTORS[0] * 1.001 < fit.factor < WIDTH_FACTORS[-1] / 1.001
    if fit.factor > 1 or edge:
        if notes is not None:
            notes.append(f"warning: the image's {fit.sources} brightest isolated sources fit the PSF best "
                         f"{'at the end of the widths tried, ' if edge else ''}{fit.factor:.3f} times as wide "
                         f"(median qfit {fit.qfit_given:.3f} -> {fit.qfit:.3f}): a PSF {'too wide' if fit.factor < 1 else 'too narrow, or extended sources'}? "
                         "It is used as given")
        return psf, None
    if not fit.points:  # a median over galaxies and stars alike measures no star's width
        return psf, None
    if notes is not None:
        notes.append(f"warning: the image's {fit.sources} brightest isolated stars are {1 - fit.factor:.0%} narrower "
                     f"than the PSF given (median qfit {fit.qfit_given:.3f} -> {fit.qfit:.3f}): the PSF is dilated "
                     f"{fit.factor:.3f} times to them (written as the PSF extension; --keep-psf: as given)")
    return dilate(psf, fit.factor), fit


def _bright_sources(image: np.ndarray, width: float, sigma: float, invalid: np.ndarray | None,
                    threshold: float) -> tuple[np.ndarray, np.ndarray, float, np.ndarray, np.ndarray] | None:
    """The sky-subtracted image (bad pixels at 0), its bad pixels, the sky, and the ``x, y`` of the sources
    peaking above ``threshold * sigma`` (photutils' ``DAOStarFinder`` at the PSF's FWHM ``width``, px); None if none."""
    from photutils.detection import DAOStarFinder

    image = np.asarray(image, dtype=np.float64)
    bad = ~np.isfinite(image) if invalid is None else (~np.isfinite(image) | np.asarray(invalid, dtype=bool))
    if bad.all():
        return None
    sky = float(np.median(image[~bad]))
    data = np.where(bad, sky, image) - sky
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils warns when nothing is found
        # down to one FWHM from a brighter source (photutils' default, 2.5 FWHM, leaves its neighbours to be restored)
        found = DAOStarFinder(threshold=threshold * sigma, fwhm=width, exclude_border=True,
                              min_separation=width)(data, mask=bad)
    if found is None or len(found) == 0:
        return None
    names = found.colnames
    x = np.asarray(found["x_centroid" if "x_centroid" in names else "xcentroid"], dtype=np.float64)
    y = np.asarray(found["y_centroid" if "y_centroid" in names else "ycentroid"], dtype=np.float64)
    return data, bad, sky, x, y


def _photometry(data: np.ndarray, bad: np.ndarray, psf: np.ndarray, x: np.ndarray, y: np.ndarray,
                width: float) -> dict[str, np.ndarray]:
    """photutils' ``PSFPhotometry`` of the sources at ``x, y`` with ``psf``; box and groups set by ``width`` (px).

    Returns each source's (in the order given) fitted ``x``, ``y``, ``flux`` and ``qfit``, and
    whether the fit ``fitted`` (converged, no flag, a positive flux).
    """
    from astropy.table import Table
    from photutils.psf import ImagePSF, PSFPhotometry, SourceGrouper

    box = int(2 * np.ceil(width)) | 1
    kernel = np.asarray(psf, dtype=np.float64)  # its origin where astrodeconv puts it, also for even sides
    model = ImagePSF(kernel, x_0=0.0, y_0=0.0, flux=1.0,
                     origin=((kernel.shape[1] - 1) // 2, (kernel.shape[0] - 1) // 2))
    photometry = PSFPhotometry(model, (box, box), grouper=SourceGrouper(min_separation=2 * width),
                               local_bkg_estimator=_local_sky(width), aperture_radius=width)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils warns when a fit did not converge
        table = photometry(data, mask=bad, init_params=Table({"x": x, "y": y}))
    order = np.argsort(np.asarray(table["id"]))
    fits = {name: np.asarray(table[column], dtype=np.float64)[order]
            for name, column in (("x", "x_fit"), ("y", "y_fit"), ("flux", "flux_fit"), ("qfit", "qfit"))}
    fits["fitted"] = (np.asarray(table["flags"])[order] == 0) & (fits["flux"] > 0)
    return fits
