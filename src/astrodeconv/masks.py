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
#: Largest magnitude a float32 output can hold.
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_result(estimate: np.ndarray, bad: np.ndarray, peak: float, scale: float | None = None) -> np.ndarray:
    """Refuse a result that is not a restoration, before anything is written or returned.

    Every pixel outside the mask ``bad`` must be finite, within ``RESULT_LIMIT * peak`` in
    magnitude (``peak``: the input's largest absolute value, same units), and, when ``scale``
    is given (the factor to the output file's units), representable as float32.

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
    if scale is not None and largest * abs(scale) > FLOAT32_MAX:
        raise InputError(f"the restored values ({largest * abs(scale):.3g}) exceed what a float32 FITS image holds; "
                         "rescale the input")
    return estimate
