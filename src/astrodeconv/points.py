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
residuals over the flux, below :data:`MAX_QFIT`): a galaxy is left to the restoration.
Arrays in, arrays out; photutils is imported here only.
"""

from __future__ import annotations

import warnings
import numpy as np

from .masks import FittedStar
from .psf import fwhm as measure_fwhm

__all__ = ["MAX_QFIT", "POINT_THRESHOLD", "fit_points"]

#: Peak above the sky, in units of the sky's noise, from which a point source is fitted.
POINT_THRESHOLD = 50.0
#: Largest photutils ``qfit`` (sum of |residual| in the fit box / flux) of a fit that is a point source.
MAX_QFIT = 0.1


def fit_points(image: np.ndarray, psf: np.ndarray, sigma: float, invalid: np.ndarray | None = None,
               threshold: float = POINT_THRESHOLD, max_qfit: float = MAX_QFIT,
               notes: list[str] | None = None) -> list[FittedStar]:
    """The point sources of ``image`` brighter than ``threshold * sigma``, fitted with ``psf``.

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
        star of a GalSim frame a ``qfit`` above 0.1), and nothing is taken out.

    Returns
    -------
    points : list of FittedStar
        ``y, x`` (pixels), ``flux`` (image units, the PSF's unit sum times the fitted
        amplitude), ``background`` (the local sky of the fit), ``region`` 0.
    """
    from astropy.table import Table
    from photutils.background import LocalBackground
    from photutils.detection import DAOStarFinder
    from photutils.psf import ImagePSF, PSFPhotometry, SourceGrouper

    image = np.asarray(image, dtype=np.float64)
    bad = ~np.isfinite(image) if invalid is None else (~np.isfinite(image) | np.asarray(invalid, dtype=bool))
    if bad.all():
        return []
    sky = float(np.median(image[~bad]))
    data = np.where(bad, sky, image) - sky
    width = max(measure_fwhm(psf), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # photutils warns when nothing is found, or a fit did not converge
        found = DAOStarFinder(threshold=threshold * sigma, fwhm=width, exclude_border=True)(data, mask=bad)
        if found is None or len(found) == 0:
            return []
        names = found.colnames
        x = np.asarray(found["x_centroid" if "x_centroid" in names else "xcentroid"], dtype=np.float64)
        y = np.asarray(found["y_centroid" if "y_centroid" in names else "ycentroid"], dtype=np.float64)
        box = int(2 * np.ceil(width)) | 1
        kernel = np.asarray(psf, dtype=np.float64)  # its origin where astrodeconv puts it, also for even sides
        model = ImagePSF(kernel, x_0=0.0, y_0=0.0, flux=1.0,
                         origin=((kernel.shape[1] - 1) // 2, (kernel.shape[0] - 1) // 2))
        photometry = PSFPhotometry(model, (box, box), grouper=SourceGrouper(min_separation=2 * width),
                                   local_bkg_estimator=LocalBackground(3 * width, 5 * width),
                                   aperture_radius=width)
        table = photometry(data, mask=bad, init_params=Table({"x": x, "y": y}))
    fitted = (np.asarray(table["flags"]) == 0) & (np.asarray(table["flux_fit"]) > 0)
    qfit = np.asarray(table["qfit"], dtype=np.float64)
    keep = fitted & (qfit < max_qfit)
    if notes is not None and fitted.sum() >= 5 and keep.sum() < 0.5 * fitted.sum():
        notes.append(f"warning: the PSF fits the image's {int(fitted.sum())} bright sources poorly (median qfit "
                     f"{float(np.median(qfit[fitted])):.2f}, {int(keep.sum())} below {max_qfit:g}): they are extended, "
                     "or the PSF is not the image's (a wrong width? --psf stars estimates it)")
    local = np.asarray(table["local_bkg"], dtype=np.float64) if "local_bkg" in table.colnames else np.zeros(len(table))
    return [FittedStar(float(yy), float(xx), float(f), float(b) + sky, 0)
            for xx, yy, f, b, k in zip(np.asarray(table["x_fit"]), np.asarray(table["y_fit"]),
                                       np.asarray(table["flux_fit"]), local, keep) if k]

