"""Bad pixels: which pixels a restoration may not trust, and how they are filled for the computation.

The policy, written once here and used by every path (in memory, streamed, Dask): a
non-finite pixel (NaN, inf) is bad; for the computation it is replaced by a fill value (the
median of the finite pixels, computed by the caller over the whole image, never per tile),
and it is NaN again in the result.
"""

from __future__ import annotations

import numpy as np

from .errors import InputError

__all__ = ["fill_bad", "finite_median", "restore_bad"]


def finite_median(image: np.ndarray) -> float:
    """Median of the finite pixels of ``image``.

    Examples
    --------
    >>> finite_median(np.array([[1.0, np.nan], [3.0, 2.0]]))
    2.0
    """
    values = np.asarray(image, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        raise InputError("image has no finite pixel (all NaN or infinite)")
    return float(np.median(values))


def fill_bad(image: np.ndarray, fill: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``image`` as float64 with its non-finite pixels replaced by ``fill``, and their mask.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    fill : float, optional
        Value for the bad pixels; ``None``: the median of the finite pixels of ``image``.

    Returns
    -------
    filled : ndarray, shape (H, W), float64
        A new array when there are bad pixels, else ``image`` itself (as float64).
    bad : ndarray of bool, shape (H, W)

    Examples
    --------
    >>> y, bad = fill_bad(np.array([[1.0, np.nan], [3.0, 2.0]]))
    >>> y.tolist(), bad.sum()
    ([[1.0, 2.0], [3.0, 2.0]], np.int64(1))
    """
    image = np.asarray(image, dtype=np.float64)
    bad = ~np.isfinite(image)
    if not bad.any():
        return image, bad
    if fill is None:
        fill = finite_median(image)
    elif not np.isfinite(fill):
        raise InputError(f"fill must be a finite number, got {fill!r}")
    return np.where(bad, fill, image), bad


def restore_bad(estimate: np.ndarray, bad: np.ndarray) -> np.ndarray:
    """``estimate`` with the pixels of the mask ``bad`` set to NaN (in place; returned)."""
    if bad.any():
        estimate[bad] = np.nan
    return estimate


#: A restored pixel beyond this many times the input's largest absolute value is not a
#: restoration but a numerical failure (a wrong noise level, a diverged model).
RESULT_LIMIT = 1000.0
#: Largest and smallest normal magnitudes a float32 output can hold.
FLOAT32_MAX, FLOAT32_TINY = float(np.finfo(np.float32).max), float(np.finfo(np.float32).tiny)


def check_result(estimate: np.ndarray, bad: np.ndarray, peak: float, scale: float | None = None,
                 low: float | None = None, high: float | None = None) -> np.ndarray:
    """Refuse a result that is not a restoration, before anything is written or returned.

    Every pixel outside the mask ``bad`` must be finite, within ``RESULT_LIMIT * peak`` in
    magnitude (``peak``: the input's largest absolute value, same units), and, when ``scale``
    is given (the factor to the output file's units), representable as float32. A constant
    result is refused, and so is one whose median lies beyond half the input's range
    ``[low, high]`` from it (a restoration keeps the background where it was).

    Examples
    --------
    >>> check_result(np.array([[1.0, 2.0]]), np.zeros((1, 2), bool), peak=2.0).shape
    (1, 2)
    """
    good = ~bad
    values = estimate[good]
    nonfinite = int(np.count_nonzero(~np.isfinite(values)))
    if nonfinite:
        raise InputError(f"the restoration produced {nonfinite} NaN or infinite pixels where the input was finite "
                         "(a wrong noise level or parameter, or a broken model); nothing was written")
    largest = float(np.max(np.abs(values))) if values.size else 0.0
    if largest > RESULT_LIMIT * peak:
        raise InputError(f"the restoration reached {largest:.3g}, more than {RESULT_LIMIT:g} times the input's largest "
                         f"value {peak:.3g}: a wrong noise level or parameter; nothing was written")
    if values.size > 1 and values.max() == values.min():
        raise InputError(f"the restoration is constant ({values.max():.3g} everywhere): a broken model or an absurd "
                         "parameter; nothing was written")
    if low is not None and high is not None:
        median, reach = float(np.median(values)), 0.5 * (high - low)
        if not low - reach <= median <= high + reach:
            raise InputError(f"the restoration's median {median:.3g} lies far outside the input's range [{low:.3g}, "
                             f"{high:.3g}]: a wrong noise level or parameter; nothing was written")
    if scale is not None and 0 < largest * abs(scale) < FLOAT32_TINY:
        raise InputError(f"the restored values ({largest * abs(scale):.3g}) are below what a float32 FITS image holds; "
                         "rescale the input")
    if scale is not None and largest * abs(scale) > FLOAT32_MAX:
        raise InputError(f"the restored values ({largest * abs(scale):.3g}) exceed what a float32 FITS image holds; "
                         "rescale the input")
    return estimate


def saturated_pixels(image: np.ndarray, level: float | None) -> np.ndarray:
    """Mask of the finite pixels at or above the saturation ``level`` (all False when ``level`` is None)."""
    image = np.asarray(image, dtype=np.float64)
    if level is None:
        return np.zeros(image.shape, dtype=bool)
    with np.errstate(invalid="ignore"):
        return np.isfinite(image) & (image >= level)


def fill_saturated(image: np.ndarray, saturated: np.ndarray, psf: np.ndarray, bad: np.ndarray | None = None) -> np.ndarray:
    """``image`` with each saturated core replaced by the PSF fitted to the unsaturated pixels around it.

    A clipped star is not a star: restored as it is, its flat top rings. Each connected
    saturated region (grown by one pixel) gets the model ``a * psf(centred on the region) + b``,
    ``a`` and ``b`` fitted by least squares to the valid pixels from 1 to ``1 + 2 h`` pixels
    beyond the region, ``h`` the PSF's half width at half maximum (``bad`` pixels left out). The filled values exceed the
    saturation level, as the star did.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    saturated : ndarray of bool, shape (H, W)
    psf : ndarray, shape (h, w)
        Unit-sum PSF, origin at ``((h - 1) // 2, (w - 1) // 2)``.
    bad : ndarray of bool, optional
        Other pixels not to fit (NaN, data-quality flags).

    Returns
    -------
    filled : ndarray, shape (H, W), float64 (a copy)

    Examples
    --------
    >>> yy, xx = np.mgrid[:41, :41]
    >>> h = np.exp(-((yy - 20) ** 2 + (xx - 20) ** 2) / 8.0); h /= h.sum()
    >>> star = 5000 * np.roll(h, (1, -2), axis=(0, 1)) + 10
    >>> clipped = np.minimum(star, 100.0)
    >>> filled = fill_saturated(clipped, clipped >= 100, h)
    >>> bool(np.allclose(filled, star, rtol=1e-6))
    True
    """
    from scipy import ndimage

    filled = np.array(image, dtype=np.float64)
    if not saturated.any():
        return filled
    psf = np.asarray(psf, dtype=np.float64)
    invalid = ~np.isfinite(filled) | (np.zeros(filled.shape, bool) if bad is None else np.asarray(bad, dtype=bool))
    grown = ndimage.binary_dilation(saturated, iterations=1)
    labels, count = ndimage.label(grown)
    half = max(2, int(np.ceil(np.sqrt(np.count_nonzero(psf >= 0.5 * psf.max()) / np.pi))))  # ~ HWHM in pixels
    oy, ox = (psf.shape[0] - 1) // 2, (psf.shape[1] - 1) // 2
    rows, cols = filled.shape
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        inside = labels[region] == index
        cy, cx = ndimage.center_of_mass(inside)
        cy, cx = cy + region[0].start, cx + region[1].start
        reach = int(np.ceil(np.hypot(*inside.shape) / 2)) + 3 * half
        r0, r1 = max(0, int(cy) - reach), min(rows, int(cy) + reach + 1)
        c0, c1 = max(0, int(cx) - reach), min(cols, int(cx) + reach + 1)
        yy, xx = np.mgrid[r0:r1, c0:c1]
        # the PSF moved so that its origin lies on (cy, cx), sampled on the window (zero beyond its support)
        iy, ix = int(np.floor(cy)), int(np.floor(cx))
        shifted = ndimage.shift(psf, (cy - iy, cx - ix), order=3, mode="constant")
        model = np.zeros(yy.shape)
        py, px = yy - iy + oy, xx - ix + ox
        inside_psf = (py >= 0) & (py < psf.shape[0]) & (px >= 0) & (px < psf.shape[1])
        model[inside_psf] = shifted[py[inside_psf], px[inside_psf]]
        window = labels[r0:r1, c0:c1] == index
        distance = ndimage.distance_transform_edt(~window)
        fit = (distance >= 1) & (distance <= 1 + 2 * half) & ~invalid[r0:r1, c0:c1] & ~saturated[r0:r1, c0:c1]
        if np.count_nonzero(fit) < 3:
            continue
        design = np.column_stack([model[fit], np.ones(np.count_nonzero(fit))])
        (amplitude, offset), *_ = np.linalg.lstsq(design, filled[r0:r1, c0:c1][fit], rcond=None)
        if amplitude <= 0:
            continue
        core = window & saturated[r0:r1, c0:c1]
        patch = filled[r0:r1, c0:c1]
        patch[core] = np.maximum(amplitude * model[core] + offset, patch[core])
    return filled
