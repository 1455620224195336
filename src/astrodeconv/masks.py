"""Bad pixels: which pixels a restoration may not trust, and how they are filled for the computation.

The policy, written once here and used by every path (in memory, streamed, Dask): a
non-finite pixel (NaN, inf) is bad; for the computation it is replaced by a fill value, and
it is NaN again in the result. With the whole image in memory the fill is the Gaussian-weighted
mean of the finite pixels near it (:func:`fill_locally`); by tiles, whose neighbours lie
elsewhere, the median of the finite pixels, computed by the caller over the whole image,
never per tile (:func:`fill_bad`). Pixels far darker than everything around them (dead or
cold pixels, bad rows) are found by :func:`cold_pixels` and made bad by the pipeline.
"""

from __future__ import annotations

import warnings
from typing import NamedTuple, Sequence

import numpy as np

from .errors import InputError

__all__ = ["FittedStar", "centred_window", "check_result", "cold_pixels", "fill_bad", "fill_locally", "finite_median",
           "fit_saturated", "model_trust", "point_image",
           "restore_bad", "saturated_pixels", "saturated_stars", "star_footprints", "star_image", "subtract_saturated",
           "take_out"]


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


#: Gaussian sigma (pixels) of :func:`fill_locally`'s first pass; each further pass doubles it.
FILL_SIGMA, FILL_PASSES = 1.5, 4


def fill_locally(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``image`` with its non-finite pixels replaced by the Gaussian-weighted mean of the finite ones near them.

    A bad row across a galaxy filled with the frame's median (:func:`fill_bad`) is a dark
    line the restoration spreads over the rows beside it; filled from its neighbours it is
    not there. Weights ``exp(-r^2 / 2 s^2)``, ``s = FILL_SIGMA`` px, doubled for the pixels a
    pass cannot reach, each pass computed on the box around the pixels left; holes wider
    than ``FILL_PASSES`` passes reach (about 70 px) are filled with the median of the finite
    pixels. Needs the whole image (not for tiles, whose neighbours are elsewhere).

    Returns
    -------
    filled : ndarray, shape (H, W), float64
    bad : ndarray of bool, shape (H, W)
    """
    from scipy.ndimage import gaussian_filter

    image = np.asarray(image, dtype=np.float64)
    bad = ~np.isfinite(image)
    if not bad.any() or bad.all():
        return fill_bad(image)
    filled, todo = image.copy(), bad.copy()
    for k in range(FILL_PASSES):
        sigma = FILL_SIGMA * 2**k
        rows, cols = np.flatnonzero(todo.any(axis=1)), np.flatnonzero(todo.any(axis=0))
        reach = int(np.ceil(3 * sigma))
        box = (slice(max(0, rows[0] - reach), rows[-1] + reach + 1), slice(max(0, cols[0] - reach), cols[-1] + reach + 1))
        known = (~bad[box]).astype(np.float64)
        weight = gaussian_filter(known, sigma, mode="mirror", truncate=3.0)
        mean = gaussian_filter(np.where(bad[box], 0.0, image[box]), sigma, mode="mirror", truncate=3.0)
        reached = todo[box] & (weight > 1e-3)
        filled[box][reached] = mean[reached] / weight[reached]
        todo[box] &= ~reached
        if not todo.any():
            return filled, bad
    filled[todo] = finite_median(image)
    return filled, bad


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


#: A cold pixel lies this many sigmas below its neighbours and its block's floor (:func:`cold_pixels`), and
#: below two opposite neighbours by this share of the light above the sky around it; the pixels joined to one
#: that lie more than ``COLD_JOINED`` sigmas below its neighbours and the floor are cold too.
COLD_SIGMA, COLD_DROP, COLD_JOINED = 10.0, 0.3, 3.0
#: ... and at least this share of its dip below its 5 x 5 neighbours lies between it and the next pixels, which
#: lie no more than ``COLD_WIDTH`` of that below the pixels beyond them.
COLD_SHARP, COLD_WIDTH = 0.8, 0.3
#: Side (pixels) of the blocks whose 10th percentile is the local floor a cold pixel lies below; the fewest
#: pixels a row or column needs to be found cold as a whole.
COLD_BLOCK = 16


def cold_pixels(image: np.ndarray) -> np.ndarray:
    """Mask of the pixels far darker than everything around them: dead, cold or flagged (``-1``) by the detector.

    No source makes a pixel darker than the sky beside it, and no real structure is sharper
    than the PSF. A pixel is cold when it dips one pixel wide: ``COLD_SIGMA`` sigmas below both
    the median of its 5 x 5 neighbours and the local floor (the 10th percentile of its
    ``COLD_BLOCK``-square block), and below the mean of its two neighbours along a row, a column
    or a diagonal by ``COLD_SIGMA`` sigmas, by ``COLD_SHARP`` of its dip below the 5 x 5 median
    and by ``COLD_DROP`` of that median's height above the sky (the frame's lowest block floor),
    those neighbours lying within ``COLD_WIDTH`` of that dip of the next pixels out. A dust lane,
    as wide as the PSF at least, dips over several pixels however bright its galaxy; a dead
    pixel or row in one. Sigma is the block's pixel-scale spread, the median of
    ``|image - 5 x 5 median|`` (photon noise on a galaxy, a plate's grain), at least the frame's
    (with a trimmed root-mean-square, so that integer data with a noise under one step is not
    taken as noiseless).

    A defect's fainter ends (a charge trap's row recovering) are the pixels joined to one
    (8-connected) that lie ``COLD_JOINED`` sigmas below both, with as sharp a dip. A row
    (column) of ``COLD_BLOCK`` pixels or more, not at the frame's edge (a gradient there is not a
    defect), more than half of whose pixels lie that far below both rows (columns) beside them,
    one pixel wide, and below their 5 x 5 median and floor, is cold as a whole (a bad row is
    often dimmed, not dead: the stars on it still show). Bad (non-finite) pixels are filled from
    their neighbours first (:func:`fill_locally`) and not counted. Noise alone makes none: a
    10-sigma dip has odds of 1e-23.

    About a second per megapixel (the 5 x 5 median); at its peak 17 times the frame's float64 size in memory.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        The frame, any units.

    Returns
    -------
    cold : ndarray of bool, shape (H, W)
    """
    from scipy import ndimage

    image = np.asarray(image, dtype=np.float64)
    filled, bad = fill_locally(image)
    local = ndimage.median_filter(filled, size=5, mode="mirror")
    floor = _block_percentile(filled, 10, COLD_BLOCK)
    spread = np.where(bad, np.nan, np.abs(filled - local))  # pixel scale: noise, photon noise, a plate's grain
    values = spread[~bad]
    trimmed = values[values <= np.percentile(values, 90)]
    top = float(trimmed.max()) if trimmed.size and trimmed.max() > 0 else 1.0  # no overflow on huge values
    frame = max(1.4826 * float(np.median(values)), top * float(np.sqrt(np.mean((trimmed / top) ** 2))))
    sigma = np.maximum(1.4826 * _block_percentile(spread, 50, COLD_BLOCK), frame)
    sky = float(floor.min())  # the darkest block's floor: below the sky, whatever fills the frame
    padded = np.pad(filled, 2, mode="edge")
    rows, cols = filled.shape

    def shifted(dy: int, dx: int) -> np.ndarray:  # the pixel at +(dy, dx) from each
        return padded[2 + dy : 2 + dy + rows, 2 + dx : 2 + dx + cols]

    # how far each pixel lies below its two neighbours along four directions, where those lie as high as the
    # next two out (a dip one pixel wide: a lane as wide as the PSF dips over several)
    sharp, lines = np.zeros(filled.shape), []
    for dy, dx in ((1, 0), (0, 1), (1, 1), (1, -1)):
        near = 0.5 * (shifted(dy, dx) + shifted(-dy, -dx))
        dip = near - filled
        one_wide = 0.5 * (shifted(2 * dy, 2 * dx) + shifted(-2 * dy, -2 * dx)) - near < COLD_WIDTH * dip
        np.maximum(sharp, np.where(one_wide, dip, 0.0), out=sharp)
        if dy == 0 or dx == 0:  # rows and columns are judged whole below: below both sides, one pixel wide
            lines.append((np.minimum(shifted(dy, dx), shifted(-dy, -dx)) - filled, one_wide))
    sharp[[0, -1], :], sharp[:, [0, -1]] = 0.0, 0.0  # an edge pixel has neighbours on one side only
    with np.errstate(invalid="ignore"):
        depth = np.minimum(floor - image, local - image)
        at_pixel_scale = sharp > COLD_SHARP * (local - image)
        seeds = ((depth > COLD_SIGMA * sigma) & (sharp > COLD_SIGMA * sigma) & at_pixel_scale
                 & (sharp > COLD_DROP * np.maximum(local - sky, 0.0)))
        low = (depth > COLD_JOINED * sigma) & (sharp > COLD_JOINED * sigma) & at_pixel_scale
    cold = np.zeros(image.shape, dtype=bool)
    if seeds.any():
        labels, _ = ndimage.label(low, structure=np.ones((3, 3)))
        cold = np.isin(labels, np.unique(labels[seeds]))
    finite = ~bad
    for axis, (beside, one_wide) in zip((1, 0), lines):  # rows (below the rows beside them), then columns
        with np.errstate(invalid="ignore"):  # (a step's dark side lies below one side only; a lane's middle is wide)
            below = (beside > COLD_JOINED * sigma) & (depth > COLD_JOINED * sigma) & one_wide & finite
        counted = finite.sum(axis=axis)
        line = (below.sum(axis=axis) > 0.5 * counted) & (counted >= COLD_BLOCK)
        line[[0, -1]] = False  # an edge has neighbours on one side only (a gradient is not a defect)
        if axis == 1:
            cold[line, :] = True  # a cold row: a star on it may still show
        else:
            cold[:, line] = True
    return cold & finite


def _block_percentile(image: np.ndarray, q: float, block: int) -> np.ndarray:
    """The ``q``-th percentile of the finite pixels of each ``block``-square (edges repeated), interpolated back to
    every pixel."""
    from scipy import ndimage

    rows, cols = image.shape
    padded = np.pad(image, ((0, -rows % block), (0, -cols % block)), mode="edge")
    tiles = padded.reshape(padded.shape[0] // block, block, padded.shape[1] // block, block)
    with warnings.catch_warnings():  # a block of NaN only: NaN, then the nearest block's
        warnings.simplefilter("ignore", RuntimeWarning)
        coarse = np.nanpercentile(tiles, q, axis=(1, 3))
    if np.isnan(coarse).any():
        coarse = fill_locally(coarse)[0]
    # block centres at (k + 1/2) block - 1/2: pixel p sits at (p + 1/2) / block - 1/2 in block units
    grid = [(np.arange(n) + 0.5) / block - 0.5 for n in (rows, cols)]
    return ndimage.map_coordinates(coarse, np.meshgrid(*grid, indexing="ij"), order=1, mode="nearest")


class FittedStar(NamedTuple):
    """A star fitted with the PSF (saturated, on its wings; or bright, :mod:`astrodeconv.points`).

    Centre (pixels), flux and local background (image units; for a saturated star taken out,
    the sky just beyond its light); ``core``: the light about a saturated core that its PSF
    model leaves (:func:`subtract_saturated`), which is the star's too.
    """

    y: float
    x: float
    flux: float
    background: float
    region: int  # label of its (grown) saturated region in :func:`fit_saturated`'s labelling; 0: none
    core: float = 0.0


def _half_width(psf: np.ndarray) -> int:
    """About the PSF's half width at half maximum, pixels (at least 2)."""
    return max(2, int(np.ceil(np.sqrt(np.count_nonzero(psf >= 0.5 * psf.max()) / np.pi))))


def _spline(psf: np.ndarray) -> np.ndarray:
    """Cubic spline coefficients of ``psf`` padded by one pixel of zeros, as :func:`_shifted_psf` interpolates it."""
    from scipy import ndimage

    return ndimage.spline_filter(np.pad(np.asarray(psf, dtype=np.float64), 1), order=3, mode="grid-constant")


def _shifted_psf(psf: np.ndarray, y: float, x: float, shape: tuple[int, int]) -> tuple[tuple[slice, slice], np.ndarray]:
    """The PSF moved so that its origin lies on ``(y, x)``: the frame's slices it covers and its values there."""
    from scipy import ndimage

    # one pixel of zeros about the stamp, interpolated into (a plain "constant" shift sets every pixel it moves from
    # beyond the stamp's edge to 0, and with it the edge row and column: 0.2 % of a space PSF's light, a line along
    # its spikes hundreds of sigma high beside a saturated star)
    padded = np.pad(np.asarray(psf, dtype=np.float64), 1)
    oy, ox = (padded.shape[0] - 1) // 2, (padded.shape[1] - 1) // 2
    iy, ix = int(np.floor(y)), int(np.floor(x))
    moved = np.clip(ndimage.shift(padded, (y - iy, x - ix), order=3, mode="grid-constant"), 0.0, None)  # no overshoot
    moved *= padded.sum() / moved.sum() if moved.sum() > 0 else 1.0  # whose clipping adds light (2 % on a 5 px stamp)
    r0, c0 = iy - oy, ix - ox
    rows = slice(max(0, r0), min(shape[0], r0 + padded.shape[0]))
    cols = slice(max(0, c0), min(shape[1], c0 + padded.shape[1]))
    if rows.start >= rows.stop or cols.start >= cols.stop:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0))
    return (rows, cols), moved[rows.start - r0 : rows.stop - r0, cols.start - c0 : cols.stop - c0]


#: Passes of :func:`fit_saturated` over the saturated stars, each fitted with the others' models of the last taken out.
FIT_PASSES = 2
#: How far (px) :func:`fit_saturated` may move a star's centre from its saturated region's centroid, at least.
FIT_SHIFT = 1.5


def fit_saturated(image: np.ndarray, saturated: np.ndarray, psf: np.ndarray,
                  bad: np.ndarray | None = None) -> tuple[list[FittedStar], np.ndarray]:
    """Fit ``flux * psf(centred on (y, x)) + background`` to the wings of each saturated region.

    Each connected saturated region (grown by one pixel) is one star; ``flux`` and
    ``background`` are the least-squares fit to the valid pixels from 1 to ``1 + 2 h`` pixels
    beyond the region, ``h`` the PSF's half width at half maximum (``bad`` and non-finite
    pixels left out), and the centre the one (within the saturated pixels' extent, or
    ``FIT_SHIFT`` px of the region's centroid where that is farther: a star's centre lies in its
    clipped core, which a bleeding column lengthens one way) whose fit leaves the least squared
    residual there: a clipped core's centroid
    is a few tenths of a pixel off, and the PSF's steep wings, times millions of electrons,
    turn that into a one-sided residual tens of sigma high, which restored is a crescent and
    false sources beside the star. Over ``FIT_PASSES`` passes each star is fitted with the
    other saturated stars' models taken out (a neighbour's wings in the fitted annulus bias
    its flux, centre and background). Regions too small a fit or with a non-positive flux
    are left out.

    Returns
    -------
    stars : list of FittedStar
    labels : ndarray of int, shape (H, W)
        The grown regions (``FittedStar.region`` is the label of each star's).
    """
    from scipy import ndimage

    image = np.asarray(image, dtype=np.float64)
    psf = np.asarray(psf, dtype=np.float64)
    invalid = ~np.isfinite(image) | (np.zeros(image.shape, bool) if bad is None else np.asarray(bad, dtype=bool))
    labels, _ = ndimage.label(ndimage.binary_dilation(saturated, iterations=1))
    reach = 1 + 2 * _half_width(psf)
    annuli = []  # per region: the box around it, the wing pixels fitted there, the centroid
    for index, region in enumerate(ndimage.find_objects(labels), start=1):
        box = tuple(slice(max(0, s.start - reach), min(n, s.stop + reach)) for s, n in zip(region, image.shape))
        inside = labels[box] == index
        distance = ndimage.distance_transform_edt(~inside)
        fit = (distance >= 1) & (distance <= reach) & ~invalid[box] & ~saturated[box]
        if np.count_nonzero(fit) < 4:  # too few wing pixels for a centre, a flux and a background
            continue
        centre = np.add(ndimage.center_of_mass(inside), (box[0].start, box[1].start))
        # the grown region's rows (columns) start .. stop - 1: its saturated pixels, start + 1 .. stop - 2
        bounds = [(min(c - FIT_SHIFT, s.start + 0.5), max(c + FIT_SHIFT, s.stop - 1.5)) for c, s in zip(centre, region)]
        annuli.append((index, box, fit, centre, bounds))
    fitted: dict[int, FittedStar] = {}
    side, coefficients = max(psf.shape), _spline(psf)
    for _ in range(FIT_PASSES):
        for index, box, fit, centre, bounds in annuli:
            # the other stars whose stamps reach the box, drawn in the box's own coordinates
            others = [star._replace(y=star.y - box[0].start, x=star.x - box[1].start) for label, star in fitted.items()
                      if label != index and box[0].start - side < star.y < box[0].stop + side
                      and box[1].start - side < star.x < box[1].stop + side]
            data = image[box] - (star_image(fit.shape, others, psf) if others else 0.0)
            star = _fit_centred(data[fit], fit, box, psf, coefficients, centre, bounds, index)
            if star is not None:
                fitted[index] = star
            else:
                fitted.pop(index, None)
    return [fitted[index] for index in sorted(fitted)], labels


def _fit_centred(values: np.ndarray, fit: np.ndarray, box: tuple[slice, slice], psf: np.ndarray,
                 coefficients: np.ndarray, start: np.ndarray, bounds: list[tuple[float, float]],
                 index: int) -> FittedStar | None:
    """The flux, background and centre (searched from ``start``, ``(y, x)``, within ``bounds``) that fit ``values``,
    the pixels ``fit`` of the frame's ``box``, best in least squares; ``None`` for a non-positive flux.

    The search evaluates the PSF's spline (``coefficients``: :func:`_spline` of ``psf``) at the fitted pixels only,
    from a simplex of half-pixel steps; the flux and background are then those of the star's
    model as :func:`star_image` draws it, at the centre found.
    """
    from scipy import ndimage
    from scipy.optimize import minimize

    oy, ox = (coefficients.shape[0] - 1) // 2, (coefficients.shape[1] - 1) // 2
    rows, cols = np.nonzero(fit)
    rows, cols = rows + box[0].start + oy, cols + box[1].start + ox  # the frame's pixels, less the centre: the stamp's
    design = np.ones((values.size, 2))

    def misfit(centre: np.ndarray) -> float:  # as _shifted_psf: the stamp's origin on the centre, no overshoot
        design[:, 0] = np.clip(ndimage.map_coordinates(coefficients, [rows - centre[0], cols - centre[1]], order=3,
                                                       mode="grid-constant", prefilter=False), 0.0, None)
        coef, *_ = np.linalg.lstsq(design, values, rcond=None)
        return float(np.sum((values - design @ coef) ** 2))

    simplex = np.array([start, start + (0.5, 0.0), start + (0.0, 0.5)])  # SciPy's own first step is 5 % of the value
    best = minimize(misfit, start, method="Nelder-Mead", bounds=bounds,
                    options={"xatol": 0.005, "fatol": 1e-9 * float(np.sum(values**2)) + 1e-300,
                             "initial_simplex": simplex})
    centre = best.x  # the best vertex of a simplex that starts at ``start``: never a worse fit than there
    unit = FittedStar(float(centre[0]) - box[0].start, float(centre[1]) - box[1].start, 1.0, 0.0, index)
    design[:, 0] = star_image(fit.shape, [unit], psf)[fit]  # drawn in the box's own coordinates
    (flux, offset), *_ = np.linalg.lstsq(design, values, rcond=None)
    return FittedStar(float(centre[0]), float(centre[1]), float(flux), float(offset), index) if flux > 0 else None


def star_footprints(shape: tuple[int, int], stars: Sequence[FittedStar],
                psf: np.ndarray) -> list[tuple[tuple[slice, slice], np.ndarray]]:
    """:func:`_shifted_psf` of each star: the frame's slices it covers and the unit-flux PSF there."""
    psf = np.asarray(psf, dtype=np.float64)
    return [_shifted_psf(psf, star.y, star.x, shape) for star in stars]


def star_image(shape: tuple[int, int], stars: Sequence[FittedStar], psf: np.ndarray,
               footprints: list[tuple[tuple[slice, slice], np.ndarray]] | None = None) -> np.ndarray:
    """``sum(star.flux * psf centred on the star)``, shape ``shape``: the light of ``stars`` as observed."""
    out = np.zeros(shape)
    for star, (where, values) in zip(stars, footprints or star_footprints(shape, stars, psf)):
        out[where] += star.flux * values
    return out


def point_image(shape: tuple[int, int], stars: Sequence[FittedStar]) -> np.ndarray:
    """The stars restored: each one's flux (its ``core`` light included) shared bilinearly by the four pixels around its centre."""
    out = np.zeros(shape)
    for star in stars:
        iy, ix = int(np.floor(star.y)), int(np.floor(star.x))
        fy, fx = star.y - iy, star.x - ix
        for dy, dx, weight in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)),
                               (1, 1, fy * fx)):
            if 0 <= iy + dy < shape[0] and 0 <= ix + dx < shape[1]:
                out[iy + dy, ix + dx] += (star.flux + star.core) * weight
    return out


def subtract_saturated(image: np.ndarray, saturated: np.ndarray, psf: np.ndarray, sigma: float,
                       gain: float | None = None, bad: np.ndarray | None = None
                       ) -> tuple[np.ndarray, list[FittedStar], np.ndarray]:
    """``image`` without its saturated stars (:func:`fit_saturated`), and the stars.

    What is left is the image without the fitted light ``L`` of each star (:func:`star_image`),
    and, where the star's photon noise dominates, drawn towards the star's fitted background
    ``b``: ``b + (r - b) * sigma^2 / (sigma^2 + L / gain)`` (``r`` the image without the star,
    ``sigma`` the sky's noise): the inverse-variance weight of a pixel whose variance is
    ``sigma^2 + L / gain``. Restored as it is, that noise, hundreds of times the sky's, would
    come out as false sources around each star. In a saturated core it is ``b``. The light
    about the core that the model leaves (a PSF that is not the star's) is taken out with the
    star and added to its point (:func:`_core_light`; ``b`` is then the sky measured beyond it).
    Restore what is left, then add :func:`point_image`.

    A clipped star is not a star: restored as it is, its flat top rings. A star cut by the
    image's edge is centred on its visible part, too poorly for it to be taken out: its core
    is filled with its fitted model (exceeding the saturation level, as the star did) and it
    is restored with the rest.

    Parameters
    ----------
    image : ndarray, shape (H, W)
    saturated : ndarray of bool, shape (H, W)
    psf : ndarray, shape (h, w)
        Unit-sum PSF, origin at ``((h - 1) // 2, (w - 1) // 2)``.
    sigma : float
        The sky's noise, image units.
    gain : float, optional
        Electrons per image unit (the photon noise of ``L`` is ``L / gain``); default:
        measured on the wings, as the ratio of the light to the variance of the residual
        beyond the sky's (which also counts the fit's own errors as noise).
    bad : ndarray of bool, optional
        Other pixels not to fit (NaN, data-quality flags).

    Returns
    -------
    rest : ndarray, shape (H, W), float64 (a copy)
    stars : list of FittedStar
        The stars taken out (``core``: the light about each one's core that its model left).
    unmodelled : ndarray, shape (H, W)
        That light, taken out with them (:func:`_core_light`).

    Examples
    --------
    >>> yy, xx = np.mgrid[:41, :41]
    >>> h = np.exp(-((yy - 20) ** 2 + (xx - 20) ** 2) / 8.0); h /= h.sum()
    >>> star = 5000 * np.roll(h, (1, -2), axis=(0, 1)) + 10
    >>> clipped = np.minimum(star, 100.0)
    >>> rest, (fitted,), _ = subtract_saturated(clipped, clipped >= 100, h, sigma=1.0, gain=1e9)
    >>> round(fitted.flux), round(fitted.y, 3), round(fitted.x, 3), bool(np.allclose(rest, 10.0))
    (5000, 21.0, 18.0, True)
    """
    prepared, inside, unmodelled = saturated_stars(image, saturated, psf, sigma, bad)
    invalid = saturated | ~np.isfinite(prepared) | (False if bad is None else np.asarray(bad, dtype=bool))
    return take_out(prepared, inside, psf, sigma, gain, invalid), inside, unmodelled


def saturated_stars(image: np.ndarray, saturated: np.ndarray, psf: np.ndarray, sigma: float,
                    bad: np.ndarray | None = None) -> tuple[np.ndarray, list[FittedStar], np.ndarray]:
    """The saturated stars of ``image`` fitted, before they are taken out (:func:`subtract_saturated`).

    Returns ``image`` with the cores filled by their fitted models (:func:`_fill_cores`) and the
    light about each core that its model leaves taken out (:func:`_core_light`), the stars
    fitted (those the image's edge cuts are filled only), and that light. Taking the stars'
    fitted light out of the first, with :func:`take_out`, leaves what is restored.
    """
    filled = np.array(image, dtype=np.float64)
    if not saturated.any():
        return filled, [], np.zeros(filled.shape)
    stars, labels = fit_saturated(filled, saturated, psf, bad)
    filled = _fill_cores(filled, saturated, psf, stars, labels)
    # a star cut by the image's edge is centred on its visible part: its fit is poor, so it is filled, not taken out
    edges = set(np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))) - {0}
    inside = [star for star in stars if star.region not in edges]
    invalid = saturated | ~np.isfinite(filled) | (False if bad is None else np.asarray(bad, dtype=bool))
    unmodelled, inside = _core_light(filled - star_image(filled.shape, stars, psf), inside, labels, psf, sigma, invalid)
    return filled - unmodelled, inside, unmodelled


#: Width of the ring beyond a saturated star's light whose median is its sky, px.
RING = 2


def _core_light(residual: np.ndarray, stars: Sequence[FittedStar], labels: np.ndarray, psf: np.ndarray,
                sigma: float, invalid: np.ndarray) -> tuple[np.ndarray, list[FittedStar]]:
    """The light about each saturated core that its model leaves, and the stars with it added (``core``).

    A PSF that is not the star's (an estimate, a stand-in, a wrong width) fitted to the
    wings 1 to ``1 + 2 h`` px beyond a saturated core leaves a residual tens of sigma deep or
    high there and beyond, which, restored or left as observed, is a ring about the star; a
    stamp estimated from faint stars also carries their noise, times the saturated star's
    flux. What a star's model leaves about its core is its own light. Over the pixels nearer
    this star's core than any other's (valid ones), in shells of 1 px of distance from it:

    - the sky is the median of the residual in the :data:`RING` px beyond the last shell where
      the model's median exceeds ``sigma`` (the star's light); it replaces the background
      fitted with the flux, which a wrong PSF biases;
    - within the wings the flux was fitted to, all of the residual above the sky is the star's;
    - beyond, out to the stamp's side: where the shell's own median fits the shell better than
      the model does (a smaller robust spread), it replaces the model there; else, up to the
      star's light's end and while the shells are not quiet (two in a row below 3 times their
      noise end it), the light the shell's four quadrants share (:func:`_shell_light`): a PSF's
      error is the same all around a star, the scene about it is not.

    Nothing is moved for a star whose flux it would make non-positive.

    Parameters
    ----------
    residual : ndarray, shape (H, W)
        The image less the fitted light of every saturated star.
    stars : list of FittedStar
        The stars to measure (``region`` their label in ``labels``).
    labels : ndarray of int, shape (H, W)
    psf : ndarray, shape (h, w)
    sigma : float
        The sky's noise, image units.
    invalid : ndarray of bool, shape (H, W)

    Returns
    -------
    light : ndarray, shape (H, W)
        The unmodelled light, to take out with the stars (0 elsewhere).
    stars : list of FittedStar
        ``stars``, each with that light's sum as ``core`` and its sky as ``background``.
    """
    from scipy import ndimage

    reach = 1 + 2 * _half_width(psf)
    extent = max(reach + 2 * RING, max(psf.shape))
    boxes = ndimage.find_objects(labels)
    nearest = labels[tuple(ndimage.distance_transform_edt(labels == 0, return_distances=False, return_indices=True))]
    unmodelled, out = np.zeros(residual.shape), []
    for star in stars:
        rows, cols = (slice(max(0, b.start - extent - 1), b.stop + extent + 1) for b in boxes[star.region - 1])
        distance = ndimage.distance_transform_edt(labels[rows, cols] != star.region)
        valid = ~invalid[rows, cols] & (labels[rows, cols] != star.region) & (nearest[rows, cols] == star.region)
        left = residual[rows, cols]
        # the star's fitted light over the window: the star placed in the window's own coordinates
        own = star_image(left.shape, [star._replace(y=star.y - rows.start, x=star.x - cols.start)], psf)
        shells = [valid & (distance > d) & (distance <= d + 1) for d in range(extent)]
        bright = [d for d in range(reach, extent - RING) if shells[d].any() and np.median(own[shells[d]]) >= sigma]
        stop = bright[-1] + 1 if bright else reach
        far = valid & (distance > stop) & (distance <= stop + RING)
        level = float(np.median(left[far])) if np.count_nonzero(far) >= 8 else star.background
        mine = np.zeros(left.shape)
        near = valid & (distance <= reach)
        mine[near] = left[near] - level
        yy, xx = np.indices(left.shape)
        quadrant = 2 * (yy + rows.start >= star.y) + (xx + cols.start >= star.x)
        quiet = 0
        for d in range(reach, extent - RING):
            shell = shells[d]
            if np.count_nonzero(shell) < 8:
                break
            light = left[shell] + own[shell] - level
            kept, replaced = _shell_light(light - own[shell], quadrant[shell]), _shell_light(light, quadrant[shell])
            if replaced[1] < kept[1]:  # the model fits worse than the star's own median all around it
                mine[shell] = float(np.median(light)) - own[shell]
            elif d >= stop or quiet == 2:  # beyond the star's light and its model's errors: the scene's
                break
            else:
                quiet = quiet + 1 if abs(kept[0]) <= 3 * kept[2] else 0
                mine[shell] = 0.0 if quiet else kept[0]
        if star.flux + mine.sum() <= 0:
            out.append(star)
            continue
        unmodelled[rows, cols] += mine
        out.append(star._replace(core=float(mine.sum()), background=level))
    return unmodelled, out


def _shell_light(values: np.ndarray, quadrant: np.ndarray) -> tuple[float, float, float]:
    """The light a shell's four quadrants share, the values' robust spread, and the shared light's noise.

    The shared light is the median of the quadrants' medians when all four have the same
    sign (else 0); the spread is 1.4826 MAD of ``values`` about their median; the noise, that
    of one quadrant's median (a quarter of the values).
    """
    medians = [np.median(values[quadrant == k]) for k in range(4) if np.any(quadrant == k)]
    shared = float(np.median(medians)) if len(medians) == 4 and (min(medians) > 0 or max(medians) < 0) else 0.0
    spread = 1.4826 * float(np.median(np.abs(values - np.median(values))))
    return shared, spread, 1.2533 * spread / np.sqrt(values.size / 4)


def take_out(image: np.ndarray, stars: Sequence[FittedStar], psf: np.ndarray, sigma: float,
             gain: float | None = None, invalid: np.ndarray | None = None) -> np.ndarray:
    """``image`` without the fitted light of ``stars``, photon-noise weighted (see :func:`subtract_saturated`).

    Where stars overlap, the variance is their summed light's and the background ``b`` their
    fitted backgrounds weighted by their light (:func:`_background_map`).

    ``invalid`` pixels are left out of the measured gain (when ``gain`` is None).
    """
    image = np.asarray(image, dtype=np.float64)
    if not stars:
        return image.copy()
    footprints = star_footprints(image.shape, stars, psf)
    light = star_image(image.shape, stars, psf, footprints)
    rest = image - light
    background = _background_map(image.shape, stars, footprints)
    if gain is None:
        gain = _wing_gain(rest - background, light, sigma, ~np.isfinite(image) if invalid is None else invalid)
    weight = sigma**2 / (sigma**2 + light / gain)
    return background + (rest - background) * weight


def model_trust(image: np.ndarray, stars: Sequence[FittedStar], psf: np.ndarray, sigma: float,
                gain: float | None = None, invalid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Where the stars' models can be trusted: the weight of the restored residual against the residual as observed.

    A PSF that is not the star's (an estimate, a stand-in, a wrong width) leaves, once the
    star is taken out, a residual proportional to its light ``L``: far above the noise around
    a bright star, and restored, it becomes rings and false sources. Each star's relative
    model error ``e`` is measured on its own footprint, where ``L > 3 sigma`` (valid pixels):
    ``e^2 = max(0, sum((r - b)^2 - v)) / sum(L^2)``, ``r`` the image without every star's light,
    ``b`` its background, ``v = sigma^2 + L / gain`` the noise's variance. The error is ``e``
    times the star's light ``S``: its model's, ``L``, and about a saturated star (``region`` > 0),
    thousands of times brighter than those a PSF is made from, its light as seen: ``S = L + s``,
    ``s`` what the residual holds above ``b`` both at a pixel and at the one opposite about the
    star (:func:`_symmetric_excess`; a PSF is point-symmetric, a galaxy beside the star is not):
    a PSF of the wrong shape (a wrong width, an estimate without a spike) errs where the star's
    light is, beyond its model's (the beads of a space-like PSF's spikes and rings, 15 % too
    wide, 20 px out). The weight is
    the noise's share of the residual's variance, ``v / (v + sum(e^2 S^2) + w)``: 1 where the
    model is right (the restoration unchanged), towards 0 where its error dominates (the
    residual left as observed: neither restored nor invented). ``gain`` None: measured as :func:`take_out`
    does (which counts the model's error as photon noise, and trusts it).

    A stamp is finite and a star's light is not: beyond the stamp (its half side ``R``) of a
    saturated star (``region`` > 0), ``w`` is the light the stamp leaves out, measured in rings
    of 2 px from ``R`` outwards as the variance of the residual's part symmetric about the star
    beyond that of its antisymmetric part (:func:`_unmodelled_wings`), until a ring's falls
    below half the noise's (at most ``4 R``).

    Returns
    -------
    weight : ndarray, shape (H, W), in (0, 1]
    errors : ndarray, shape (N,)
        ``e`` of each star.
    """
    image = np.asarray(image, dtype=np.float64)
    invalid = ~np.isfinite(image) if invalid is None else (np.asarray(invalid, dtype=bool) | ~np.isfinite(image))
    if not stars:
        return np.ones(image.shape), np.zeros(0)
    footprints = star_footprints(image.shape, stars, psf)
    light = star_image(image.shape, stars, psf, footprints)
    residual = np.where(invalid, 0.0, image) - light
    if gain is None:
        gain = _wing_gain(residual - _background_map(image.shape, stars, footprints), light, sigma, invalid)
    variance = sigma**2 + light / gain
    error_variance, errors, half = np.zeros(image.shape), [], min(psf.shape) // 2
    for star, (where, values) in zip(stars, footprints):
        own = star.flux * values
        use = (own > 3 * sigma) & ~invalid[where]
        excess = float(np.sum((residual[where][use] - star.background) ** 2 - variance[where][use]))
        e2 = max(0.0, excess) / float(np.sum(own[use] ** 2)) if use.any() else 0.0
        errors.append(np.sqrt(e2))
        if not star.region:
            error_variance[where] += e2 * own**2
            continue
        # a saturated star, thousands of times brighter than those the PSF was made from: a PSF of the wrong shape
        # errs where its light is, which its model does not show, and its light goes on beyond the stamp
        error_variance[where] += e2 * (own + _symmetric_excess(residual, invalid, star, where)) ** 2
        _unmodelled_wings(residual, invalid, star, half, sigma, error_variance)
    return variance / (variance + error_variance), np.array(errors)


def _symmetric_excess(residual: np.ndarray, invalid: np.ndarray, star: FittedStar,
                      where: tuple[slice, slice]) -> np.ndarray:
    """Over ``star``'s footprint ``where``: the residual above its background at both a pixel and its opposite.

    The opposite of ``(i, j)`` about the star at ``(y, x)`` is the nearest pixel to ``(2 y - i, 2 x - j)``;
    where it lies beyond the image or is ``invalid``, 0.
    """
    rows, cols = np.mgrid[where]
    mirror_rows, mirror_cols = np.rint(2 * star.y - rows).astype(int), np.rint(2 * star.x - cols).astype(int)
    inside = ((mirror_rows >= 0) & (mirror_rows < residual.shape[0]) & (mirror_cols >= 0)
              & (mirror_cols < residual.shape[1]))
    mirror_rows, mirror_cols = np.where(inside, mirror_rows, 0), np.where(inside, mirror_cols, 0)
    opposite = np.where(inside & ~invalid[mirror_rows, mirror_cols], residual[mirror_rows, mirror_cols], -np.inf)
    return np.clip(np.minimum(residual[where], opposite) - star.background, 0.0, None)


def centred_window(image: np.ndarray, y: float, x: float, half: int, invalid: np.ndarray | None = None) -> np.ndarray:
    """The ``(2 half + 1)`` square of ``image`` about ``(y, x)``, centred on it by a bilinear shift.

    Pixels beyond the image and ``invalid`` ones are NaN (a NaN spreads to its neighbours in the shift).
    """
    from scipy import ndimage

    window = np.full((2 * half + 1, 2 * half + 1), np.nan)
    frame, inner = _window_slices(image.shape, y, x, half)
    window[inner] = image[frame] if invalid is None else np.where(invalid[frame], np.nan, image[frame])
    cy, cx = int(round(y)), int(round(x))
    return ndimage.shift(window, (cy - y, cx - x), order=1, mode="nearest", cval=np.nan)


def _window_slices(shape: tuple[int, int], y: float, x: float,
                   half: int) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """The frame's slices of the ``2 half + 1`` square about the pixel nearest ``(y, x)``, and the square's own."""
    cy, cx = int(round(y)), int(round(x))
    r0, r1 = max(0, cy - half), min(shape[0], cy + half + 1)
    c0, c1 = max(0, cx - half), min(shape[1], cx + half + 1)
    r1, c1 = max(r0, r1), max(c0, c1)
    return (slice(r0, r1), slice(c0, c1)), (slice(r0 - cy + half, r1 - cy + half), slice(c0 - cx + half, c1 - cx + half))


def _unmodelled_wings(residual: np.ndarray, invalid: np.ndarray, star: FittedStar, half: int, sigma: float,
                      error_variance: np.ndarray) -> None:
    """Add to ``error_variance`` (in place) the light of ``star`` beyond its stamp, ring by ring (:func:`model_trust`).

    A PSF's wings are symmetric about the star (point-symmetric: an obscured aperture with
    struts, seeing), the scene behind them is not: in each ring, the wings' structure is the
    variance of the residual's symmetric part ``(d(p) + d(-p)) / 2`` less that of its
    antisymmetric part (robust, from median absolute deviations), in which noise and scene
    count alike. Twice that is counted: the ring's level, which a spread does not see and the
    scene behind the star hides, is the wings' light too. The rings stop at the second in a
    row whose excess is below half the noise's variance.
    """
    size = 4 * half
    # centred on the star before it is turned (a star near an edge is measured where p and -p both lie)
    values = centred_window(residual, star.y, star.x, size, invalid)
    turned = values[::-1, ::-1]
    symmetric, antisymmetric = 0.5 * (values + turned), 0.5 * (values - turned)
    rows, cols = np.indices(values.shape)
    r = np.hypot(rows - size, cols - size)
    added, quiet = np.zeros(values.shape), 0
    for start in range(half, size, 2):
        ring = (r >= start) & (r < start + 2)
        valid = ring & np.isfinite(symmetric)
        if valid.sum() < 8:
            break
        excess = _robust_variance(symmetric[valid]) - _robust_variance(antisymmetric[valid])
        quiet = quiet + 1 if excess < 0.5 * sigma**2 else 0
        if quiet == 2:  # two rings in a row at the noise: the wings have ended
            break
        added[ring] += 2 * max(excess, 0.0)
    frame, inner = _window_slices(residual.shape, star.y, star.x, size)
    error_variance[frame] += added[inner]


def _robust_variance(values: np.ndarray) -> float:
    """Variance of ``values`` from their median absolute deviation (that of a Gaussian)."""
    return float((1.4826 * np.median(np.abs(values - np.median(values)))) ** 2)


def _background_map(shape: tuple[int, int], stars: Sequence[FittedStar],
                    footprints: list[tuple[tuple[slice, slice], np.ndarray]]) -> np.ndarray:
    """Each star's fitted background over its footprint, weighted by the stars' light where footprints overlap.

    0 where no star's PSF is positive. Weighted, a bright star's background does not replace
    that of a saturated one over its whole stamp, a square step of sigmas once restored.
    """
    weighted, light = np.zeros(shape), np.zeros(shape)
    for star, (where, values) in zip(stars, footprints):
        own = abs(star.flux) * np.clip(values, 0.0, None)
        weighted[where] += own * star.background
        light[where] += own
    return np.divide(weighted, light, out=np.zeros(shape), where=light > 0)


def _wing_gain(residual: np.ndarray, light: np.ndarray, sigma: float, invalid: np.ndarray) -> float:
    """``sum(L) / sum(r^2 - sigma^2)`` over the wings where the star's light exceeds ten times ``sigma``."""
    wings = (light > 10 * sigma) & ~invalid
    excess = float(np.sum(residual[wings] ** 2 - sigma**2))
    return float(np.sum(light[wings]) / excess) if wings.any() and excess > 0 else float("inf")


def _fill_cores(filled: np.ndarray, saturated: np.ndarray, psf: np.ndarray, stars: Sequence[FittedStar],
                labels: np.ndarray) -> np.ndarray:
    """``filled`` (in place) with each star's saturated core set to its fitted model."""
    for star, ((rows, cols), model) in zip(stars, star_footprints(filled.shape, stars, psf)):
        core = (labels[rows, cols] == star.region) & saturated[rows, cols]
        patch = filled[rows, cols]
        patch[core] = np.maximum(star.flux * model[core] + star.background, patch[core])
    return filled
