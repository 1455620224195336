"""Point spread functions.

Every PSF is a 2-D ``float64`` array that sums to 1, sampled at pixel centres on a
regular grid of 1-pixel spacing. Unless stated otherwise the grid has odd sides and
the PSF's centre is the central pixel ``(size // 2, size // 2)``. Widths are in pixels.

The convolution convention of :mod:`astrodeconv.forward` puts the origin of a PSF of
side ``s`` at index ``(s - 1) // 2`` (that of ``scipy.signal.fftconvolve(..., mode="same")``):
the central pixel for odd sides.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from scipy import ndimage, special

from .checks import as_integer, finite_image, float_above, odd_int, positive_float, positive_int, real_array
from .errors import InputError

#: Half width at half maximum of ``(2 J1(r) / r)^2`` in units of r.
AIRY_HWHM = 1.616339948310703
#: Fraction of the flux a model PSF grid must hold.
FLUX_FRACTION = 0.995
#: Negative PSF pixels down to this fraction of the peak are clipped to zero (estimated PSFs); deeper ones are refused.
NEGATIVE_TOLERANCE = 0.01
#: Largest side of a PSF grid, pixels (34 MB as float64); a larger one is refused before it is allocated.
MAX_PSF_SIDE = 2049
#: Narrowest FWHM a model PSF may have, pixels: narrower, it is a point on the pixel grid.
MIN_FWHM = 0.01


def _fwhm(value: float) -> float:
    """A model PSF's FWHM, pixels: a finite number of at least :data:`MIN_FWHM`."""
    fwhm = positive_float(value, "fwhm", "number of pixels")
    if fwhm < MIN_FWHM:
        raise InputError(f"fwhm must be a positive number of pixels, at least {MIN_FWHM} (narrower is a point), "
                         f"got {value!r}")
    return fwhm


def _airy_ee_radius() -> float:
    """Radius (in Airy ``r`` units) of the disc holding ``FLUX_FRACTION`` of an Airy pattern's flux.

    The encircled energy is ``1 - J0(r)^2 - J1(r)^2`` (non-decreasing).
    """
    r = np.arange(0.0, 5000.0, 0.05)
    ee = 1.0 - special.j0(r) ** 2 - special.j1(r) ** 2
    return float(r[np.argmax(ee >= FLUX_FRACTION)])


AIRY_EE_RADIUS = _airy_ee_radius()


def airy_paper(size: int = 64, nr: float = 5.0) -> np.ndarray:
    """Airy pattern exactly as in Flamary (2017).

    ``x = linspace(-1, 1, size)``, ``R = hypot(X, Y) * pi * nr``,
    ``PSF = (J1(R) / R)^2``, normalised to sum 1.

    Parameters
    ----------
    size : int
        Side of the square grid, pixels. The paper uses 64.
    nr : float
        Number of Airy radii (first-zero units) across the half grid. The paper uses 5.

    Returns
    -------
    psf : ndarray, shape (size, size)
        Unit-sum PSF. Its FWHM is ``2 * 1.6163 * (size - 1) / (2 * pi * nr)`` pixels
        (6.48 px for the defaults).

    Notes
    -----
    With an even ``size`` the grid does not contain ``x = 0``: the pattern's centre lies
    at ``((size - 1) / 2, (size - 1) / 2)``, between four pixels. Convolved with the
    ``(size - 1) // 2`` origin convention of :func:`astrodeconv.forward.blur`, the
    observation is therefore shifted by half a pixel along each axis relative to the clean
    image.
    Every method that is given the same PSF array models that shift, so the paper's
    comparison is unaffected; a user comparing with another tool should know it.

    Examples
    --------
    >>> h = airy_paper()
    >>> h.shape, round(float(h.sum()), 12)
    ((64, 64), 1.0)
    """
    size = _check_side(positive_int(size, "size"))
    nr = positive_float(nr, "nr", "number of pixels")
    x = np.linspace(-1.0, 1.0, size)
    xx, yy = np.meshgrid(x, x)
    r = np.hypot(xx, yy) * np.pi * nr
    with np.errstate(invalid="ignore", divide="ignore"):
        psf = (special.j1(r) / r) ** 2
    psf[r == 0] = 0.25  # limit of (J1(r)/r)^2 at r = 0 (only reached for odd sizes)
    total = float(psf.sum())
    if not (np.isfinite(total) and total > 0):
        raise InputError(f"airy-paper with nr={nr:g} on a {size} px grid has no light a float can hold (its FWHM "
                         f"would be {1.6163 * (size - 1) / (np.pi * nr):.3g} px); expected nr of a few (the paper: 5)")
    return psf / total


def airy(fwhm: float, size: int | None = None) -> np.ndarray:
    """Airy pattern of a circular aperture, ``(2 J1(r) / r)^2``, with a given FWHM.

    Parameters
    ----------
    fwhm : float
        Full width at half maximum, pixels.
    size : int, optional
        Odd side of the grid. By default the smallest odd side whose inscribed disc
        holds at least 99.5 % of the flux (the Airy wings are wide: about 60 x FWHM).

    Returns
    -------
    psf : ndarray, shape (size, size)
        Unit-sum PSF centred on pixel ``(size // 2, size // 2)``.

    Examples
    --------
    >>> h = airy(4.0)
    >>> h.shape[0] % 2, round(float(fwhm(h)), 1)
    (1, 4.0)
    """
    fwhm = _fwhm(fwhm)
    scale = 2 * AIRY_HWHM / fwhm  # r units per pixel
    rr = _radius_grid(_airy_size(fwhm) if size is None else size) * scale
    with np.errstate(invalid="ignore", divide="ignore"):
        psf = (2 * special.j1(rr) / rr) ** 2
    psf[rr == 0] = 1.0
    return psf / psf.sum()


def gaussian(fwhm: float, size: int | None = None) -> np.ndarray:
    """Circular Gaussian PSF with a given FWHM, sampled at pixel centres.

    Parameters
    ----------
    fwhm : float
        Full width at half maximum, pixels (``sigma = fwhm / 2.3548``).
    size : int, optional
        Odd side of the grid; by default the smallest holding >= 99.5 % of the flux.

    Returns
    -------
    psf : ndarray, shape (size, size)
        Unit-sum PSF centred on pixel ``(size // 2, size // 2)``.

    Examples
    --------
    >>> h = gaussian(4.0)
    >>> h.shape, round(float(fwhm(h)), 1)
    ((13, 13), 4.0)
    """
    fwhm = _fwhm(fwhm)
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    rr = _radius_grid(_gaussian_size(fwhm) if size is None else size)
    psf = np.exp(-0.5 * (rr / sigma) ** 2)
    return psf / psf.sum()


def moffat(fwhm: float, beta: float = 3.0, size: int | None = None) -> np.ndarray:
    """Moffat PSF ``(1 + (r / alpha)^2)^(-beta)`` with a given FWHM.

    Parameters
    ----------
    fwhm : float
        Full width at half maximum, pixels; ``alpha = fwhm / (2 sqrt(2^(1/beta) - 1))``.
    beta : float
        Power of the wings; must exceed 1 for the flux to be finite.
    size : int, optional
        Odd side of the grid; by default the smallest holding >= 99.5 % of the flux.

    Returns
    -------
    psf : ndarray, shape (size, size)
        Unit-sum PSF centred on pixel ``(size // 2, size // 2)``.

    Examples
    --------
    >>> h = moffat(5.0, beta=3.0)
    >>> round(float(fwhm(h)), 1)
    5.0
    """
    fwhm = _fwhm(fwhm)
    beta = _moffat_beta(beta)
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    rr = _radius_grid(_moffat_size(fwhm, beta) if size is None else size)
    psf = (1 + (rr / alpha) ** 2) ** (-beta)
    return psf / psf.sum()


def validate(psf: np.ndarray, name: str = "psf") -> np.ndarray:
    """Check a user PSF and return it as a unit-sum ``float64`` array.

    Raises :class:`~astrodeconv.errors.InputError` unless ``psf`` is 2-D, finite and of
    positive sum. A PSF estimated from stars (photutils' ePSF) has small negative lobes:
    negative pixels no deeper than :data:`NEGATIVE_TOLERANCE` of the peak are set to zero,
    with a warning; deeper ones are an error.

    Examples
    --------
    >>> validate(np.ones((3, 3))).sum()
    np.float64(1.0)
    """
    psf = real_array(psf, name)
    if psf.ndim != 2:
        raise InputError(f"{name} must be a 2-D array, got shape {psf.shape}")
    if psf.size == 0:
        raise InputError(f"{name} is empty (shape {psf.shape})")
    if not np.all(np.isfinite(psf)):
        raise InputError(f"{name} has {int(np.sum(~np.isfinite(psf)))} NaN or infinite values; a PSF must be finite")
    if np.any(psf < 0):
        peak = float(psf.max())
        if not peak > 0 or -float(psf.min()) > NEGATIVE_TOLERANCE * peak:
            raise InputError(f"{name} has negative values down to {psf.min():.3g} ({-psf.min() / max(peak, 1e-300):.1%} "
                             f"of its peak); a PSF must be non-negative up to {NEGATIVE_TOLERANCE:.0%} of its peak")
        warnings.warn(f"{name}: {int(np.sum(psf < 0))} negative pixels (down to {psf.min() / peak:.2%} of the peak) "
                      "set to zero", UserWarning, stacklevel=2)
        psf = np.maximum(psf, 0.0)
    total = psf.sum()
    if not total > 0:
        raise InputError(f"{name} sums to {total}; a PSF must have a positive sum")
    return psf / total


def check_image(observed: np.ndarray, psf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate an observation and its PSF for restoration.

    Returns the image as float64 and the PSF normalised to sum 1. The image must be 2-D,
    hold at least one finite pixel, not be constant (:func:`astrodeconv.checks.finite_image`),
    and be at least as large as the PSF.

    Examples
    --------
    >>> y, h = check_image(np.eye(5), np.ones((3, 3)))
    >>> y.shape, float(h.sum())
    ((5, 5), 1.0)
    """
    observed = finite_image(observed)
    psf = validate(psf)
    if psf.shape[0] > observed.shape[0] or psf.shape[1] > observed.shape[1]:
        raise InputError(
            f"PSF of shape {psf.shape} is larger than the image {observed.shape}; crop the PSF or use a larger image"
        )
    return observed, psf


def from_fits(path: str | Path, hdu: int | str | None = None) -> np.ndarray:
    """Read a PSF from a FITS file, validate it (see :func:`validate`) and normalise it to sum 1."""
    from .io import read_image

    data, _ = read_image(path, hdu=hdu)
    return validate(data, name=f"PSF in {path}")


def fwhm(psf: np.ndarray) -> float:
    """Full width at half maximum of a PSF measured from the array, pixels.

    The central region is upsampled 8 times by cubic spline, the area ``A`` above half
    the (upsampled) peak is counted, and ``FWHM = 2 sqrt(A / pi)`` (exact for a circular
    PSF, the mean width for an elliptical one).

    Examples
    --------
    >>> round(fwhm(gaussian(6.0)), 2)
    6.0
    """
    psf = np.asarray(psf, dtype=np.float64)
    if psf.ndim != 2 or psf.size == 0:
        raise InputError(f"fwhm needs a 2-D PSF, got shape {psf.shape}")
    if not np.all(np.isfinite(psf)) or not psf.max() > 0:
        raise InputError("fwhm needs a finite PSF with a positive peak")
    factor = 8
    above = psf >= 0.25 * psf.max()
    # Crop to the core (pixels above a quarter of the peak) plus a margin.
    rows, cols = np.nonzero(above)
    r0, r1 = max(rows.min() - 3, 0), min(rows.max() + 4, psf.shape[0])
    c0, c1 = max(cols.min() - 3, 0), min(cols.max() + 4, psf.shape[1])
    core = psf[r0:r1, c0:c1]
    fine = ndimage.zoom(core, factor, order=3, grid_mode=True, mode="grid-constant")
    area = np.count_nonzero(fine >= 0.5 * fine.max()) / factor**2
    return float(2 * np.sqrt(area / np.pi))


def dilate(psf: np.ndarray, factor: float) -> np.ndarray:
    """``psf`` with every width multiplied by ``factor``: ``h'(r) = h(r / factor) / factor^2``, unit sum.

    Resampled by cubic spline about the grid's centre (``(s - 1) / 2`` along a side ``s``: the
    origin pixel of an odd side, between two pixels for an even one, so the PSF does not move);
    widened, the grid grows by the same factor (sides keep their parity), so no wing is cut.
    Spline overshoots below zero are clipped.

    Examples
    --------
    >>> round(fwhm(dilate(gaussian(4.0), 1.5)), 2)
    6.0
    """
    psf = np.clip(real_array(psf, "psf"), 0.0, None)
    if psf.ndim != 2 or not psf.sum() > 0:
        raise InputError(f"dilate needs a 2-D PSF of positive sum, got shape {psf.shape} and sum {psf.sum():.3g}")
    factor = positive_float(factor, "the dilation factor", "a ratio of widths")
    old = np.array(psf.shape)
    new = np.maximum(old, np.ceil(old * factor).astype(int) // 2 * 2 + old % 2)
    if new.max() > MAX_PSF_SIDE:
        raise InputError(f"a PSF of shape {tuple(int(n) for n in old)} dilated {factor:g} times would have shape "
                         f"{tuple(int(n) for n in new)}, beyond the largest side {MAX_PSF_SIDE}")
    origin_old, origin_new = (old - 1) / 2, (new - 1) / 2
    rows, cols = np.mgrid[: new[0], : new[1]].astype(np.float64)
    coords = [(rows - origin_new[0]) / factor + origin_old[0], (cols - origin_new[1]) / factor + origin_old[1]]
    out = np.clip(ndimage.map_coordinates(psf, coords, order=3, mode="constant", cval=0.0), 0.0, None)
    return out / out.sum()


def parse_spec(spec: str, max_side: int | None = None, files: bool = True) -> np.ndarray:
    """Build a PSF from a one-string specification.

    ``airy-paper`` (optionally ``airy-paper:size=64,nr=5``), ``airy:fwhm=6.5``,
    ``gaussian:fwhm=4``, ``moffat:fwhm=5,beta=3`` (each model also takes ``size``), or
    the path of a FITS file holding the PSF (only with ``files``: a spec read from a header
    is not followed to a file).

    The side of a model's grid is computed before anything is allocated and refused when it
    exceeds ``max_side`` (e.g. the image's smaller side) or :data:`MAX_PSF_SIDE`.

    Examples
    --------
    >>> parse_spec("gaussian:fwhm=4").shape
    (13, 13)
    """
    if not isinstance(spec, str) or not spec.strip():
        raise InputError(f"PSF spec must be a non-empty string, got {spec!r}")
    name, _, args = spec.partition(":")
    if name in PSF_MODELS:
        kwargs: dict[str, float] = {}
        for item in filter(None, args.split(",")):
            key, eq, value = item.partition("=")
            if not eq:
                raise InputError(f"PSF spec {spec!r}: expected key=value, got {item!r}")
            try:
                kwargs[key.strip()] = float(value)
            except ValueError:
                raise InputError(f"PSF spec {spec!r}: {key} must be a number, got {value!r}") from None
        if "size" in kwargs:
            kwargs["size"] = as_integer(kwargs["size"], "size")
        func, allowed = PSF_MODELS[name]
        unknown = set(kwargs) - set(allowed)
        if unknown:
            raise InputError(f"PSF spec {spec!r}: unknown parameter(s) {sorted(unknown)}; {name} takes {list(allowed)}")
        missing = [k for k in allowed if k == "fwhm" and k not in kwargs]
        if missing:
            raise InputError(f"PSF spec {spec!r}: {name} needs fwhm, e.g. '{name}:fwhm=4'")
        side = kwargs.get("size") or _default_side(name, kwargs)
        if max_side is not None and side > max_side:
            raise InputError(f"PSF {spec!r} needs a grid of {side} px, larger than the image ({max_side} px); give a "
                             "smaller PSF (e.g. add size=N to the spec) or a larger image")
        return func(**kwargs)
    if not files:
        raise InputError(f"PSF {spec!r} is not a PSF model ({', '.join(sorted(PSF_MODELS))}); a file named by a header "
                         "is not read: give the PSF with --psf")
    path = Path(spec)
    if path.suffix.lower() in {".fits", ".fit", ".fts", ".gz"} or path.exists():
        kernel = from_fits(path)
        if max_side is not None and max(kernel.shape) > max_side:
            raise InputError(f"PSF {spec!r} is {kernel.shape[0]} x {kernel.shape[1]} px, larger than the image "
                             f"({max_side} px); crop the PSF")
        return kernel
    raise InputError(
        f"unknown PSF {spec!r}: expected one of {sorted(PSF_MODELS)} (e.g. 'airy:fwhm=6.5') or a FITS file path"
    )


PSF_MODELS = {
    "airy-paper": (airy_paper, ("size", "nr")),
    "airy": (airy, ("fwhm", "size")),
    "gaussian": (gaussian, ("fwhm", "size")),
    "moffat": (moffat, ("fwhm", "beta", "size")),
}


def _check_side(side: int) -> int:
    if side > MAX_PSF_SIDE:
        raise InputError(f"a PSF grid of {side} px per side is more than the limit of {MAX_PSF_SIDE} px; "
                         "give a smaller size (size=N) or width")
    return side


def _radius_grid(size: int) -> np.ndarray:
    c = np.arange(_check_side(odd_int(size, "size"))) - size // 2
    return np.hypot(*np.meshgrid(c, c))


def _odd_size(radius: float) -> int:
    """Smallest odd side whose inscribed disc has ``radius``; refused beyond :data:`MAX_PSF_SIDE` before allocating."""
    if not np.isfinite(radius) or radius > MAX_PSF_SIDE:
        raise InputError(f"a PSF with these parameters needs a grid wider than the limit of {MAX_PSF_SIDE} px per "
                         "side; give a smaller width, a larger Moffat beta, or size=N")
    return _check_side(2 * int(np.ceil(radius)) + 1)


def _airy_size(fwhm: float) -> int:
    """Default odd side of :func:`airy`: its inscribed disc holds ``FLUX_FRACTION`` of the flux."""
    return _odd_size(AIRY_EE_RADIUS / (2 * AIRY_HWHM / fwhm))


def _gaussian_size(fwhm: float) -> int:
    """Default odd side of :func:`gaussian`: a disc of radius r holds 1 - exp(-r^2 / (2 sigma^2)) of the flux."""
    sigma = fwhm / (2 * np.sqrt(2 * np.log(2)))
    return _odd_size(sigma * np.sqrt(-2 * np.log(1 - FLUX_FRACTION)))


#: Largest Moffat beta accepted: beyond it the profile is a Gaussian to rounding (``2^(1/beta) - 1`` underflows).
MAX_MOFFAT_BETA = 1000.0


def _moffat_beta(beta: float) -> float:
    beta = float_above(beta, "moffat beta", 1.0, "> 1 for a finite flux")
    if beta > MAX_MOFFAT_BETA:
        raise InputError(f"moffat beta must be at most {MAX_MOFFAT_BETA:g} (beyond, a Moffat is a Gaussian: use "
                         f"'gaussian:fwhm=...'), got {beta!r}")
    return beta


def _moffat_size(fwhm: float, beta: float) -> int:
    """Default odd side of :func:`moffat`: a disc of radius r holds 1 - (1 + (r/alpha)^2)^(1 - beta) of the flux."""
    alpha = fwhm / (2 * np.sqrt(2 ** (1 / beta) - 1))
    with np.errstate(over="ignore"):
        return _odd_size(float(alpha * np.sqrt(np.power(np.float64(1 - FLUX_FRACTION), 1 / (1 - beta)) - 1)))


def _default_side(name: str, kwargs: dict[str, float]) -> int:
    """The grid side that model ``name`` would build from ``kwargs`` (checked, nothing allocated)."""
    if name == "airy-paper":
        return _check_side(positive_int(kwargs.get("size", 64), "size"))
    fwhm = _fwhm(kwargs["fwhm"])
    if name == "airy":
        return _airy_size(fwhm)
    if name == "gaussian":
        return _gaussian_size(fwhm)
    return _moffat_size(fwhm, _moffat_beta(kwargs.get("beta", 3.0)))

