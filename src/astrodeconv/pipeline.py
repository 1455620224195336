"""One pipeline from a FITS file (or an array) to a restored FITS file, whatever the backend.

:func:`restore_file` is what the command line's ``deconvolve`` calls. It takes the decisions
once, for every backend:

* **units** -- the methods work on images whose maximum is about 1 (the paper's
  normalisation): the image is divided by its finite maximum and the result multiplied back;
  an observation written by :func:`simulate_file` (``ADSCALE`` card) is already in those units;
* **noise level** -- ``sigma`` given, else the ``ADSIGMA`` card, else estimated from the image
  (:mod:`astrodeconv.noise`); methods that take it (``Method.takes_sigma``) get it, and
  ``auto`` selection uses it;
* **bad pixels** -- :mod:`astrodeconv.masks` (filled for the computation, NaN in the result);
* **parameters** -- the tuned parameter (``Method.tuned``) chosen by :mod:`astrodeconv.selection`
  unless given;
* **provenance** -- method, PSF, parameters and selection mode as header cards.

Backends: ``"memory"`` (the whole image), ``"stream"`` (tiles read from and written to disk,
:mod:`astrodeconv.stream`) and ``"dask"`` (:mod:`astrodeconv.parallel`); ``"auto"`` streams
images above :data:`astrodeconv.stream.STREAM_PIXELS`. Only methods with a network
(``Method.tileable``) run by tiles.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import io, methods, psf, selection, stream
from .checks import DEFAULT_CHUNK, DEFAULT_TILE, finite_image, nonnegative_float, positive_float, tile_side
from .errors import InputError
from .forward import normalise, observe
from .masks import (check_result, cold_pixels, fill_bad, fill_locally, model_trust, point_image, restore_bad,
                    saturated_pixels, saturated_stars, star_image, take_out)
from .points import POINT_THRESHOLD, fit_points, matched_psf
from .wings import saturated_wings
from .noise import estimate_sigma, gain_from_image, gain_from_noise_map, noise_statistics, photon_variance

__all__ = ["BACKENDS", "PSF_HELP", "STARS", "Restoration", "psf_from_stars_file", "restore_array", "restore_file",
           "saturation_level", "simulate_file", "star_psf", "write_psf"]

BACKENDS = ("auto", "memory", "stream", "dask")
PSF_HELP = ("PSF: airy-paper, airy:fwhm=6.5, gaussian:fwhm=4, moffat:fwhm=5,beta=3, a FITS file, or stars "
            "(estimated from the image's stars)")
#: Smallest tile or chunk side accepted from the command line, pixels.
MIN_TILE = 16
#: Noise levels accepted, as fractions of the image's maximum.
RELATIVE_SIGMA = (1e-9, 10.0)
#: Side of the central square whose statistics (noise level, signal-to-noise ratio) a tiled run uses.
SAMPLE_SIDE = 2048


@dataclass(frozen=True)
class Restoration:
    """What :func:`restore_file` did: the output, the method, its parameters and how it ran."""

    output: Path
    method: str
    params: dict[str, Any]
    how: str
    seconds: float
    notes: list[str] = field(default_factory=list)


def _method_params(method: methods.Method, params: dict[str, Any] | None, model: Any, tile: int | None,
                   device: str | None) -> dict[str, Any]:
    """``params`` with the network options added where the method takes them; checked against its defaults."""
    params = dict(params or {})
    for key, value in (("model", model), ("tile", tile), ("device", device)):
        if key in method.defaults and value is not None:
            params.setdefault(key, value)
        elif key != "device" and value is not None:
            raise InputError(f"--{key} applies to the networks only, not to method {method.name!r}")
    methods.check_params(method, params)
    return params


def _positive_card(header: Any, key: str) -> float | None:
    """The card ``key`` if it holds a positive number, else None (a card is the header's word: unusable ones are ignored)."""
    value = header.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def _card_gain(header: Any) -> float | None:
    """The ``GAIN`` card, else the ``ADGAIN`` of a simulation with photon noise (electrons per image unit)."""
    gain = _positive_card(header, "GAIN")
    return gain if gain is not None else _positive_card(header, "ADGAIN")


def _header_sigma(header: Any) -> float | None:
    """The ``ADSIGMA`` card if it is a usable noise level (a noiseless simulation has 0: estimate instead)."""
    return _positive_card(header, "ADSIGMA")


#: The PSF spec that asks for the PSF to be estimated from the image's own stars.
STARS = "stars"


def _psf(spec: str | None, header: Any, path: Path, shape: tuple[int, int]) -> tuple[str, np.ndarray]:
    """The PSF spec (given, else the ``ADPSF`` card) and its array, no larger than the image ``shape``.

    A card is a header's word, not the user's: a model spec in it is used, a file it names is not read.
    """
    if spec == STARS:
        raise InputError("--psf stars estimates the PSF from the image itself; it needs the image in memory "
                         "(no --stream or --dask): estimate it first with `astrodeconv psf --from-stars`")
    if spec is None:
        card = header.get("ADPSF")
        if not card:
            raise InputError(f"{path} has no ADPSF card: give the PSF with --psf ({PSF_HELP})")
        if not isinstance(card, str):
            raise InputError(f"{path}: the ADPSF card is {card!r}, not a PSF spec; give the PSF with --psf")
        return card, psf.parse_spec(card, max_side=min(shape), files=False)
    return str(spec), psf.parse_spec(spec, max_side=min(shape))


def _noise_level(sigma: Any) -> float | None:
    """A given noise level: a positive number (in the units it was given in), or None."""
    if sigma is None:
        return None
    return positive_float(sigma, "sigma (the noise's standard deviation)")


def _shown(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if v is not None}


def restore_array(
    observed: np.ndarray,
    kernel: np.ndarray,
    method: str,
    params: dict[str, Any] | None = None,
    *,
    select: str = "auto",
    sigma: float | None = None,
    truth: np.ndarray | None = None,
    fit_sigma: float | None = None,
    gain: float | None = None,
    check: bool = True,
    boundary: str = "mirror",
) -> tuple[np.ndarray, dict[str, Any]]:
    """Restore an array in its own units (already normalised to a maximum of about 1).

    The noise level reaches the methods that take it (estimated when ``sigma`` is None) and
    the tuned parameter is selected (``select``: ``"auto"``, ``"oracle"`` with ``truth``, or
    ``"none"``) unless ``params`` gives it. ``fit_sigma`` is the root-mean-square noise the
    automatic choice's data fit matches (default ``sigma``; larger where photon noise adds to
    the sky's, :func:`_detector_noise`); ``gain`` (electrons per unit of ``observed``) reaches
    the methods with a ``gain`` parameter. ``check=False``: the method's ``admits`` check was
    made by the caller (on the image before its stars were taken out).

    ``boundary``: what the scene is beyond the image's edges. ``"mirror"`` (a frame is a crop
    of a sky that goes on): a method that takes it to be dark or periodic
    (:attr:`astrodeconv.registry.Method.boundary`) restores the image mirrored by the PSF's
    larger side on every side (:func:`mirror_width`; its parameter chosen there too, the
    noise level measured on the image itself), and the result is cropped; on a frame with a
    sky, a dark boundary leaves edge artefacts that spread tens of pixels inwards.
    ``"method"``: the method's own boundary.

    Returns
    -------
    estimate : ndarray, shape (H, W), float64
    params : dict
        Every parameter used, the selected and estimated ones included.
    """
    found = methods.get(method)
    params = dict(params or {})
    sigma = _noise_level(sigma)
    filled, bad = fill_locally(observed)
    psf.check_image(filled, kernel)
    if truth is not None and np.shape(truth) != filled.shape:
        raise InputError(f"the truth has shape {np.shape(truth)}, the image {filled.shape}; they must match")
    if check and found.admits is not None:
        found.admits(params, filled, sigma)
    selecting = select != "none" and found.tuned is not None and found.tuned not in params
    if sigma is None and (found.takes_sigma or selecting):
        sigma = estimate_sigma(filled)  # on the image itself, not on its mirror
    pad = mirror_width(found, kernel, boundary, filled.shape)
    if pad:  # the rest sees the image mirrored beyond its edges (bad pixels filled, then mirrored)
        filled = np.pad(filled, pad, mode="symmetric")
        truth = None if truth is None else np.pad(np.asarray(truth, dtype=np.float64), pad, mode="symmetric")
    if found.takes_sigma and "sigma" not in params:
        params["sigma"] = float(f"{float(sigma):.6g}")
    if gain is not None and "gain" in found.defaults and params.get("gain") is None:
        params["gain"] = float(f"{positive_float(gain, 'gain'):.6g}")
    if selecting:
        chosen = selection.select(method, filled, kernel, select, truth=truth,
                                  sigma=sigma if fit_sigma is None else _noise_level(fit_sigma),
                                  border=ORACLE_BORDER + pad)  # the oracle scores the image, not its mirror
        params = {**chosen, **params}
    estimate = methods.restore(filled, kernel, method, **params)
    return restore_bad(estimate[pad:-pad, pad:-pad] if pad else estimate, bad), params


def mirror_width(found: methods.Method, kernel: np.ndarray, boundary: str = "mirror",
                 shape: tuple[int, ...] | None = None) -> int:
    """Pixels the image is mirrored by on each side before ``found`` restores it (:func:`restore_array`).

    The PSF's larger side (at most the image's larger side, ``shape``) for a method that takes
    the scene beyond the edges to be dark or periodic, when ``boundary`` is ``"mirror"``: a zero
    boundary's artefacts on a frame with a sky, and a periodic one's at the wrap, reach about a
    PSF's width inwards. 0 otherwise.
    """
    if boundary not in EDGES:
        raise InputError(f"boundary must be one of {EDGES}, got {boundary!r}")
    if boundary != "mirror" or found.boundary == "mirror":
        return 0
    return min(max(np.shape(kernel)), max(shape)) if shape is not None else max(np.shape(kernel))


#: What :func:`restore_array` takes the scene beyond an image's edges to be: mirrored, or each method's own.
EDGES = ("mirror", "method")


def restore_file(
    observed: str | Path,
    output: str | Path,
    *,
    psf_spec: str | None = None,
    method: str = "restorer-universal",
    params: dict[str, Any] | None = None,
    select: str = "auto",
    sigma: float | None = None,
    truth: str | Path | None = None,
    model: str | None = None,
    tile: int | None = None,
    device: str = "cpu",
    backend: str = "auto",
    workers: int | None = None,
    scheduler: str | None = None,
    chunk: int = DEFAULT_CHUNK,
    hdu: int | str | None = None,
    overwrite: bool = False,
    saturation: float | None = None,
    mask: str | None = None,
    sigma_relative: float | None = None,
    gain: float | None = None,
    read_noise: float | None = None,
    point_sources: bool = True,
    noise_map: str | None = None,
    match_psf: bool = True,
    cold: bool = True,
) -> Restoration:
    """Restore a FITS image into a new FITS file, keeping its header and adding provenance.

    Parameters
    ----------
    observed, output : str or Path
        Input FITS image; output FITS (never replaced unless ``overwrite``).
    psf_spec : str, optional
        :func:`astrodeconv.psf.parse_spec` string or FITS path; ``"stars"``: estimated from the
        image's isolated, unsaturated stars (written as a ``PSF`` extension); default: the
        ``ADPSF`` card.
    method, params
        A registered method and its parameters.
    select : {"auto", "oracle", "none"}
        How the tuned parameter is chosen when ``params`` lacks it (in memory only).
    sigma : float, optional
        Noise standard deviation in the image's own units (what one reads off the sky, e.g. ADU).
    sigma_relative : float, optional
        The same as a fraction of the image's maximum (the paper's convention); give one or the
        other. Default for both: the ``ADSIGMA`` card (image units), the median of an ``ERR``
        extension, else estimated from the image.
    truth : str or Path, optional
        Clean image for ``select="oracle"``.
    model, tile, device
        Network options (``tile``: output tile side, pixels, of one network pass; also the
        window read from disk per step when streaming).
    backend : {"auto", "memory", "stream", "dask"}
    workers, scheduler, chunk
        Dask: local worker processes or a scheduler address, and the chunk side, pixels.
    hdu : int or str, optional
        Input HDU.
    saturation : float, optional
        Saturation level, image units (default: the ``SATURATE`` card). Saturated cores are
        filled with the PSF fitted to their wings before the restoration (so they do not ring,
        and their flux is kept), flagged in the ``MASK`` extension, and left out of
        ``psf_spec="stars"``.
    mask : str, optional
        Bad pixels: a FITS file or an HDU of the input, non-zero = bad (a ``DQ`` extension is
        used without it). They are NaN in the output; the flags are written as a ``MASK``
        extension. A ``SCI``/``ERR``/``DQ`` file is read as such (image, noise map, mask) and written
        back as ``SCI`` and ``DQ``: ``ERR`` is not, the restored image's noise being no longer the input's.
        (In memory only.)
    gain, read_noise : float, optional
        Electrons per image unit and the read noise in electrons (default: the ``GAIN`` and
        ``RDNOISE`` cards): photon noise over the sky's for the data fit and the restorers'
        local bank; with a gain (given, a card or measured), the sky's noise no lower than the read
        noise (in image units, read noise / gain). Without a gain, a noise map
        or a simulation's ``ADGAIN`` or ``ADSIGMA`` card, the gain is measured on the frame's
        noise where it grows with the light (:func:`astrodeconv.noise.gain_from_image`);
        ``math.inf``: the sky's noise only (over a card or a noise map too).
    point_sources : bool
        Fit the stars above 50 sigma with the PSF, take them out before the restoration and
        put them back as points of their fitted flux (:mod:`astrodeconv.points`).
    noise_map : str, optional
        Per-pixel noise sigma, image units: a FITS file or an HDU of the input (``VAR`` or
        ``VARIANCE``: variances); default: an ``ERR`` extension. Its median is the sky's noise,
        its mean square the data fit's.
    match_psf : bool
        When the image's bright isolated stars fit the PSF best more than 5 % narrower, narrow it
        to them, say so, and write it as the ``PSF`` extension (sources wider than the PSF are
        only reported: :func:`astrodeconv.points.matched_psf`; in memory only); and where the
        saturated stars show its outer profile wrong, measure it on them
        (:func:`astrodeconv.wings.saturated_wings`). False: the PSF as given.
    cold : bool
        Treat as bad the pixels far darker than everything around them (dead or cold pixels,
        bad rows, a detector's ``-1`` flags: :func:`astrodeconv.masks.cold_pixels`), as a mask
        would. In memory only.
    """
    found = methods.get(method)
    if backend not in BACKENDS:
        raise InputError(f"backend must be one of {BACKENDS}, got {backend!r}")
    tile = tile_side(tile, allow_none=True)
    chunk = tile_side(chunk)
    for name, side in (("--tile", tile), ("--chunk", chunk)):
        if side is not None and side < MIN_TILE:
            raise InputError(f"{name} {side} px is below {MIN_TILE} px: each tile also computes the network's margin "
                             "on every side, so smaller tiles multiply the work; give a larger tile")
    if sigma is not None and sigma_relative is not None:
        raise InputError("give the noise level once: --sigma (image units) or --sigma-relative (of the maximum)")
    if params and "sigma" in params:
        raise InputError("give the noise level with --sigma (the image's units) or --sigma-relative (a fraction of "
                         "its maximum), not --param sigma")
    sigma, sigma_relative = _noise_level(sigma), _noise_level(sigma_relative)
    observed, output = Path(observed), Path(output)
    io.check_output(output, overwrite)
    if backend == "auto":
        backend = "dask" if workers is not None or scheduler else "stream" if _larger_than_memory(observed, hdu) else "memory"
    if backend != "memory" and (mask is not None or saturation is not None or noise_map is not None
                                or gain is not None or read_noise is not None):
        raise InputError(f"--mask, --saturate, --noise-map, --gain and --read-noise are applied in memory only, and "
                         f"{observed} is restored by tiles ({backend}): drop --stream/--dask, or restore a crop")
    if backend == "memory":
        return _restore_in_memory(observed, output, found, psf_spec, params, (sigma, sigma_relative), truth, model,
                                  tile, device, hdu, overwrite, saturation, mask, select,
                                  (None if gain is None else math.inf if gain == math.inf
                                   else positive_float(gain, "--gain (electrons per image unit)"),
                                   None if read_noise is None else positive_float(read_noise, "--read-noise (electrons)")),
                                  bool(point_sources), noise_map, bool(match_psf), bool(cold))
    return _restore_by_tiles(observed, output, found, psf_spec, params, (sigma, sigma_relative), model, tile, device,
                             backend, workers, scheduler, chunk, hdu, overwrite)


def _larger_than_memory(path: Path, hdu: int | str | None) -> bool:
    """True when the input holds more than ``stream.STREAM_PIXELS`` pixels (header only)."""
    try:
        height, width = stream.image_shape(path, hdu)
    except InputError:
        return False  # the in-memory reader reports the problem
    return height * width > stream.STREAM_PIXELS


def _relative_sigma(given: tuple[float | None, float | None], header: Any, scale: float) -> float | None:
    """The noise level in units of the maximum ``scale``: given in image units, given relative, or the ADSIGMA card."""
    sigma, relative = given
    if relative is None:
        sigma = sigma if sigma is not None else _header_sigma(header)
        relative = None if sigma is None else sigma / scale
    if relative is not None and not RELATIVE_SIGMA[0] <= relative <= RELATIVE_SIGMA[1]:
        raise InputError(f"a noise sigma of {relative:.3g} times the image's maximum is not a noise level (expected "
                         f"{RELATIVE_SIGMA[0]:g} to {RELATIVE_SIGMA[1]:g}); check --sigma (the image's units) or "
                         "--sigma-relative")
    return relative


def _restore_in_memory(observed: Path, output: Path, found: methods.Method, psf_spec: str | None,
                       params: dict[str, Any] | None, given_sigma: tuple[float | None, float | None],
                       truth: str | Path | None, model: Any, tile: int | None, device: str, hdu: Any, overwrite: bool,
                       saturation: float | None, mask: str | None, select: str,
                       detector: tuple[float | None, float | None] = (None, None),
                       point_sources: bool = True, noise_map: str | None = None,
                       match_psf: bool = True, cold: bool = True) -> Restoration:
    extensions, notes = {}, []
    frame, image, bad = _masked_frame(observed, hdu, mask, cold, notes)
    header = frame.header
    level = saturation_level(header, saturation)
    saturated = saturated_pixels(image, level)
    if psf_spec == STARS:
        found_psf = star_psf(image, header, saturation)
        spec, kernel = STARS, found_psf.psf
        _record_psf(extensions, kernel, ADNSTARS=len(found_psf.stars), ADFWHM=round(found_psf.fwhm, 4),
                    ADLOCSKY=found_psf.local_sky)
        notes.append(found_psf.summary())
    else:
        spec, kernel = _psf(psf_spec, header, observed, image.shape)
    params = _method_params(found, params, model, tile, device)
    # Units where the image's maximum is ~1; an observation written by simulate (ADSCALE) already is.
    scale = 1.0 if "ADSCALE" in header else float(np.max(image[np.isfinite(image)]))
    if not scale > 0:
        raise InputError(f"{observed}: the maximum pixel value is {scale}; expected a positive maximum")
    y = image / scale
    sigma = _relative_sigma(given_sigma, header, scale)
    noise = _noise_map(frame, noise_map, observed)
    error = None if noise is None else noise[~bad & np.isfinite(noise)]
    if sigma is None and error is not None:
        sigma = float(np.median(error)) / scale
        notes.append(f"noise sigma {sigma * scale:.4g} (the median of the "
                     f"{'ERR extension' if noise_map is None else 'noise map'})")
    y_filled = fill_bad(y)[0]
    if sigma is None:
        sigma = estimate_sigma(y_filled)
    sky_noise_only = detector[0] == math.inf  # --gain inf
    detector = _frame_gain(y, scale, kernel, sigma, saturated, header, detector, noise, notes)
    gain, sigma, fit_sigma = _detector_noise(y, sigma, scale, header, detector, error, notes)
    if gain is None and noise is not None and not sky_noise_only:  # a noise map with photon noise says the gain
        fitted = gain_from_noise_map(np.where(bad, np.nan, image), noise)
        if fitted is not None:
            gain = fitted * scale
            notes.append(f"the noise map holds photon noise: gain {fitted:.4g} e-/unit fitted to it (the restorers' "
                         "local noise, the stars' photon noise)")
    if match_psf:  # a PSF wider than the image's own stars is narrowed to them
        kernel, width = matched_psf(y, kernel, sigma, invalid=saturated, notes=notes)
        if width is not None:
            spec = f"{spec} dilated {width.factor:.4f}x to {width.sources} stars"
            _record_psf(extensions, kernel, ADPSFDIL=round(width.factor, 4), ADFWHM=round(psf.fwhm(kernel), 4))
    # the saturated stars measure the PSF's outer profile far better than the stars it was made from
    kernel, wings = saturated_wings(y, saturated, kernel, bad=~np.isfinite(y)) if match_psf else (kernel, None)
    if wings is not None:
        spec = f"{spec}, wings from {wings.stars} saturated stars"
        _record_psf(extensions, kernel, ADWINGS=wings.stars, ADWINGR=round(wings.radius, 2))
        notes.append(wings.summary())
    clean = None
    if select == "oracle" and found.tuned is not None and found.tuned not in params:
        clean = _read_truth(truth, image.shape, _header_scale(header, scale))
    # A clipped star restored as it is rings: each is fitted (the PSF to its wings), taken out of the image,
    # and put back restored, as a point of the fitted flux, after the rest of the image is.
    if found.admits is not None:  # on the image as observed, not on what is left once its stars are out
        found.admits(params, y_filled, sigma)
    filled, stars, unmodelled = saturated_stars(y, saturated, kernel, sigma, bad=~np.isfinite(y))
    # fitted before the saturated stars' photon noise is drawn towards the sky, which would take some of their light
    bright = (fit_points(filled - star_image(y.shape, stars, kernel), kernel, sigma, invalid=saturated, notes=notes,
                         psf_from_stars=psf_spec == STARS) if point_sources else [])
    rest = take_out(filled, [*stars, *bright], kernel, sigma, gain, saturated | ~np.isfinite(y))
    points = point_image(y.shape, [*stars, *bright])
    start = time.perf_counter()
    estimate, params = restore_array(rest, kernel, found.name, params, select=select, sigma=sigma,
                                     fit_sigma=fit_sigma, gain=gain, truth=None if clean is None else clean - points,
                                     check=False)
    # where a star's model errs by more than the noise, its residual is left as observed, not restored
    trust, errors = model_trust(y - unmodelled, [*stars, *bright], kernel, sigma, gain, saturated)
    estimate = trust * estimate + (1 - trust) * rest + points
    seconds = time.perf_counter() - start
    if np.any(trust < 0.5):
        notes.append(f"{int(np.sum(trust < 0.5))} pixels around the stars taken out, where the PSF's model of them "
                     f"errs by more than the noise (by up to {errors.max():.1%} of a star's light within the PSF's "
                     "stamp; or a saturated star's light beyond it), are left as observed (without the stars), "
                     "not restored")
    finite = y[np.isfinite(y)]
    if bright:
        notes.append(f"{len(bright)} point sources above {POINT_THRESHOLD:g} sigma fitted with the PSF, taken out and "
                     "restored as points of their fitted flux (--no-point-sources: restored with the rest)")
    # the fitted stars put back may exceed the observed (clipped) maximum: they set the peak allowed too
    peak = max(float(np.max(np.abs(finite))), float(points.max()))
    check_result(estimate, ~np.isfinite(y), peak, scale, float(finite.min()), float(finite.max()))
    if bad.any() or saturated.any():
        extensions["MASK"] = ((bad * BAD_FLAG | saturated * SATURATED_FLAG).astype(np.uint8),
                              {"ADMASK": "1 = bad pixel (NaN in the image), 2 = saturated (restored from a PSF fit)"})
        notes.append(f"{int(bad.sum())} bad pixels set to NaN; {int(saturated.sum())} saturated pixels "
                     f"({int(_regions(saturated))} stars; {len(stars)} fitted) taken out as the PSF fitted to their wings, "
                     "restored as points of the fitted flux")
    if frame.quality is not None:
        extensions["DQ"] = (frame.quality.astype(np.int32), {})
    shown = _shown(params)
    provenance = {"method": found.name, "psf": spec, "params": shown, "ADSELECT": select}
    edges = mirror_width(found, kernel, shape=image.shape)
    if edges:
        provenance["ADEDGES"] = f"mirrored by {edges} px (method's boundary: {found.boundary})"
    io.write_image(output, estimate * scale, header, provenance, overwrite=overwrite,
                   extensions=extensions, primary_header=frame.primary_header)
    return Restoration(output, found.name, shown, "in memory", seconds, notes)


def _record_psf(extensions: dict[str, Any], kernel: np.ndarray, **cards: Any) -> None:
    """Write ``kernel`` as the ``PSF`` extension, with ``cards`` added to those it had."""
    extensions["PSF"] = (kernel, {**extensions.get("PSF", (None, {}))[1], **cards})


#: Pixels left out at each edge when the oracle scores a restoration against the truth (as the paper).
ORACLE_BORDER = 32

#: Flags of the ``MASK`` extension written beside a restoration.
BAD_FLAG, SATURATED_FLAG = 1, 2


def _frame_gain(y: np.ndarray, scale: float, kernel: np.ndarray, sigma: float, saturated: np.ndarray, header: Any,
                detector: tuple[float | None, float | None], noise: np.ndarray | None,
                notes: list[str]) -> tuple[float | None, float | None]:
    """``detector`` (gain, read noise) with the gain that the frame's own noise shows where nothing else gives one.

    Nothing gives it without ``--gain``, a ``GAIN`` card, a noise map, or the ``ADGAIN`` or
    ``ADSIGMA`` card of a simulation: the noise's growth with the light is then measured
    (:func:`astrodeconv.noise.gain_from_image`; ``y`` is the image divided by ``scale``, ``sigma``
    its sky noise; the gain returned is per unit of the image).
    A frame whose bright parts are restored as if only the sky's noise were on them is
    over-sharpened there into ripples and checkerboards.
    """
    gain, read_noise = detector
    if gain is not None or noise is not None or _card_gain(header) is not None or _header_sigma(header) is not None:
        return detector
    measured = gain_from_image(y, kernel, sigma, invalid=saturated)
    if measured is not None:
        measured /= scale  # y = image / scale: a gain g per unit of the image is g * scale per unit of y
        notes.append(f"no GAIN card: the frame's noise grows with its light as photon noise at a gain of "
                     f"{measured:.3g} e-/unit (measured; --gain sets it, --gain inf: the sky's noise only)")
    return measured, read_noise


def _detector_noise(y: np.ndarray, sigma: float, scale: float, header: Any, detector: tuple[float | None, float | None],
                    error: np.ndarray | None, notes: list[str]) -> tuple[float | None, float, float]:
    """The gain (electrons per unit of ``y``), the sky's noise and the noise of the data fit, from the detector.

    ``y`` is the image divided by ``scale`` and ``sigma`` its sky noise (same units). With a
    gain (``--gain`` or ``GAIN``, electrons per image unit) the noise is photon noise over the
    sky's (:func:`astrodeconv.noise.photon_variance`), and the data fit of the classical
    methods' discrepancy principle matches its mean variance; with an ``ERR`` extension, the
    mean of its squares. The read noise (``--read-noise`` or ``RDNOISE``, electrons) is the
    least the sky's noise can be: a lower estimate is raised to it, with a note.
    """
    gain = detector[0] if detector[0] is not None else _card_gain(header)
    read_noise = detector[1] if detector[1] is not None else _positive_card(header, "RDNOISE")
    gain = None if gain == math.inf else gain  # --gain inf: the sky's noise only
    fit_sigma = sigma
    if read_noise is not None and gain is not None and sigma * scale < read_noise / gain:
        notes.append(f"noise sigma {sigma * scale:.4g} is below the read noise ({read_noise:g} e- = "
                     f"{read_noise / gain:.4g} image units at gain {gain:g}): raised to it")
        sigma = fit_sigma = read_noise / gain / scale
    if error is not None:
        fit_sigma = float(np.sqrt(np.mean(error.astype(np.float64) ** 2))) / scale
    elif gain is not None:
        good = np.isfinite(y)
        fit_sigma = float(np.sqrt(np.mean(photon_variance(y[good], sigma, gain * scale))))
        notes.append(f"photon noise at gain {gain:g} e-/unit over a sky noise of {sigma * scale:.4g}: the data fit "
                     f"matches a mean noise of {fit_sigma * scale:.4g}")
    return (None if gain is None else gain * scale), sigma, fit_sigma


def _regions(mask: np.ndarray, diagonal: bool = False) -> int:
    from scipy import ndimage

    return int(ndimage.label(mask, structure=np.ones((3, 3)) if diagonal else None)[1])


def _noise_map(frame: io.Frame, noise_map: str | None, observed: Path) -> np.ndarray | None:
    """The per-pixel noise sigma (image units): ``noise_map`` (a FITS file or an HDU of ``observed``), else ERR.

    An HDU named ``VAR`` or ``VARIANCE`` holds variances: their square roots are used.
    """
    if noise_map is None:
        return frame.error
    source = Path(noise_map)
    values, header = io.read_image(source) if source.is_file() else io.read_image(observed, parse_hdu(noise_map))
    if values.shape != frame.data.shape:
        raise InputError(f"--noise-map {noise_map} is {values.shape[0]} x {values.shape[1]} px, the image "
                         f"{frame.data.shape[0]} x {frame.data.shape[1]}")
    if str(header.get("EXTNAME", "")).strip().upper() in ("VAR", "VARIANCE"):
        values = np.sqrt(np.where(values >= 0, values, np.nan))
    good = values[np.isfinite(values)]
    if good.size == 0 or not np.all(good > 0):
        raise InputError(f"--noise-map {noise_map}: a noise map must be positive where it is finite")
    return values


def _masked_frame(observed: Path, hdu: int | str | None, mask: str | None, cold: bool,
                  notes: list[str] | None = None) -> tuple[io.Frame, np.ndarray, np.ndarray]:
    """The frame of ``observed``, its image with the bad pixels (:func:`_bad_pixels`) NaN, and those pixels."""
    frame = io.read_frame(observed, hdu=hdu)
    finite_image(frame.data, f"{observed}: the image")
    bad = _bad_pixels(frame, mask, observed, cold, notes)
    return frame, finite_image(np.where(bad, np.nan, frame.data), f"{observed}: the image without its masked pixels"), bad


def _bad_pixels(frame: io.Frame, mask: str | None, observed: Path, cold: bool = True,
                notes: list[str] | None = None) -> np.ndarray:
    """Pixels not to trust: non-finite, flagged by the file's ``DQ`` extension, non-zero in ``mask``, or cold.

    ``mask`` is a FITS file or the name (or index) of an HDU of ``observed``; non-zero means bad.
    ``cold``: also the pixels far darker than everything around them (:func:`cold_pixels`),
    said in ``notes``.
    """
    bad = ~np.isfinite(frame.data)
    if frame.quality is not None:
        bad |= frame.quality != 0
    if mask is not None:
        source = Path(mask)
        flags = io.read_image(source)[0] if source.is_file() else io.read_image(observed, parse_hdu(mask))[0]
        if flags.shape != frame.data.shape:
            raise InputError(f"--mask {mask} is {flags.shape[0]} x {flags.shape[1]} px, the image "
                             f"{frame.data.shape[0]} x {frame.data.shape[1]}")
        bad |= np.nan_to_num(flags, nan=1.0) != 0
    if cold and not bad.all():  # (all bad: the caller says so, naming the file)
        dark = cold_pixels(np.where(bad, np.nan, frame.data)) & ~bad
        if dark.any() and notes is not None:
            notes.append(f"{int(dark.sum())} cold pixels ({_regions(dark, diagonal=True)} groups; rows or columns whole "
                         "where most of one is cold) far darker than everything around them, as dead pixels, bad rows "
                         "and a detector's flags are: treated as bad (NaN in the output, flagged in MASK; --keep-cold "
                         "keeps them)")
        bad |= dark
    return bad


def parse_hdu(value: str | int | None) -> int | str | None:
    """An HDU given as text: an index (``"1"``) or a name (``"SCI"``)."""
    if value is None or isinstance(value, int):
        return value
    return int(value) if str(value).lstrip("-").isdigit() else str(value)


def saturation_level(header: Any, saturation: float | None = None) -> float | None:
    """The saturation level: given, else the ``SATURATE`` card (a positive number), else None."""
    if saturation is not None:
        return positive_float(saturation, "--saturate (the saturation level)")
    return _positive_card(header, "SATURATE")


def star_psf(image: np.ndarray, header: Any, saturation: float | None = None) -> Any:
    """The PSF estimated from the image's stars (:func:`astrodeconv.starpsf.estimate_psf`), saturated ones left out."""
    from .starpsf import estimate_psf

    return estimate_psf(image, saturation=saturation_level(header, saturation))


def psf_from_stars_file(observed: str | Path, output: str | Path, *, saturation: float | None = None,
                        hdu: int | str | None = None, overwrite: bool = False, mask: str | None = None,
                        cold: bool = True) -> Any:
    """Estimate the PSF of a FITS frame from its stars and write it (cards ``ADNSTARS``, ``ADFWHM``, ``ADLOCSKY``:
    each star taken on its own sky). Its bad pixels are left out as ``deconvolve`` leaves them out: non-finite,
    a ``DQ`` extension's, ``mask``'s and, with ``cold``, the cold ones."""
    io.check_output(output, overwrite)
    frame, image, _ = _masked_frame(Path(observed), hdu, mask, cold)
    found = star_psf(image, frame.header, saturation)
    io.write_image(output, found.psf, provenance={"psf": f"stars of {Path(observed).name}"[:60],
                                                  "ADNSTARS": len(found.stars), "ADFWHM": round(found.fwhm, 4),
                                                  "ADLOCSKY": found.local_sky},
                   overwrite=overwrite)
    return found


def _header_scale(header: Any, default: float) -> float:
    """The ``ADSCALE`` card (the factor ``simulate`` divided the clean image by), checked; ``default`` without it."""
    if "ADSCALE" not in header:
        return default
    return positive_float(header["ADSCALE"], "the ADSCALE card", "number")


def _read_truth(truth: str | Path | None, shape: tuple[int, int], scale: float) -> np.ndarray:
    """The clean image for oracle selection, in the observation's units (``simulate`` divided both by ADSCALE)."""
    if truth is None:
        raise InputError("--select oracle needs the clean image: --truth CLEAN.fits")
    clean, _ = io.read_image(truth)
    if clean.shape != shape:
        raise InputError(f"--truth has shape {clean.shape}, the observation {shape}")
    return np.nan_to_num(clean / scale)


def _restore_by_tiles(observed: Path, output: Path, found: methods.Method, psf_spec: str | None,
                      params: dict[str, Any] | None, given_sigma: tuple[float | None, float | None], model: Any,
                      tile: int | None, device: str,
                      backend: str, workers: int | None, scheduler: str | None, chunk: int, hdu: Any,
                      overwrite: bool) -> Restoration:
    """Restore by tiles from disk (``stream``) or on Dask (``dask``): the method's network, statistics from a sample."""
    with stream.open_source(observed, hdu, allow_gzip=True) as src:
        (height, width), header = src.shape, src.header
    if hdu is None and "SCI" in io.hdu_names(observed):
        raise InputError(f"{observed} is a SCI/ERR/DQ file, read as such in memory only; restore its SCI image by "
                         "tiles with --hdu SCI (its DQ and ERR are then not used)")
    if saturation_level(header) is not None:
        warnings.warn(f"{observed}: the SATURATE card is not applied by tiles: saturated stars are restored as "
                      "recorded (they ring); restore a crop in memory to fill them", UserWarning, stacklevel=2)
    if not found.tileable:
        raise InputError(
            f"{observed} is {height} x {width} px ({height * width / 1e6:.0f} Mpx) and {found.name!r} is a global "
            "(FFT) method that needs the whole image in memory, so it cannot run by tiles; use a network method "
            "(--method cnn3) or crop the image"
        )
    spec, kernel = _psf(psf_spec, header, observed, (height, width))
    params = methods.check_params(found, {"model": model, "tile": tile, "device": device, **(params or {})})
    params["tile"] = tile_side(params["tile"], allow_none=True)
    scale = 1.0 if "ADSCALE" in header else None
    stats = None
    if found.takes_sigma or found.admits is not None:  # statistics of a central sample, never of a tile
        sample, scale = _central_sample(observed, hdu, scale)
        sigma = _relative_sigma(given_sigma, header, scale)
        if found.admits is not None:
            found.admits(params, sample, sigma)
        if found.takes_sigma:
            given = _noise_level(params.get("sigma"))
            stats = noise_statistics(sample, given if given is not None else sigma)
    network = found.network(params, kernel, stats)
    tile = params["tile"] or DEFAULT_TILE
    options = dict(hdu=hdu, scale=scale, overwrite=overwrite, device=params["device"],
                   provenance={"method": found.name, "psf": spec, "params": _shown(params), "ADSELECT": "none"})
    start = time.perf_counter()
    if backend == "dask":
        from . import parallel

        with parallel.cluster_client(workers, scheduler) as client:
            parallel.deconvolve_fits_dask(observed, output, network, client, chunk=chunk, tile=tile, **options)
        how = f"on Dask ({scheduler or f'{workers} local workers'}), {chunk}-px chunks"
    else:
        stream.deconvolve_fits(observed, output, network, tile=tile, **options)
        how = f"streamed by {tile}-px tiles"
    return Restoration(output, found.name, _shown(params), how, time.perf_counter() - start)


def _central_sample(path: Path, hdu: Any, scale: float | None) -> tuple[np.ndarray, float]:
    """The central ``SAMPLE_SIDE``-square of the image in units of ``scale`` (default: its maximum), bad pixels filled."""
    with stream.open_source(path, hdu, allow_gzip=True) as src:
        prepared = stream.prepare(src, scale)
        (height, width), side = src.shape, SAMPLE_SIDE
        r0, c0 = max(0, (height - side) // 2), max(0, (width - side) // 2)
        sample = src.read(r0, min(height, r0 + side), c0, min(width, c0 + side)) / prepared.scale
    return fill_bad(sample, prepared.fill)[0], prepared.scale  # the whole image's median, as the tiles get


def simulate_file(
    clean: str | Path,
    output: str | Path,
    *,
    psf_spec: str = "airy-paper",
    sigma: float = 0.01,
    gain: float | None = None,
    boundary: str = "zero",
    seed: int = 0,
    hdu: int | str | None = None,
    overwrite: bool = False,
) -> tuple[int, int]:
    """Normalise a clean FITS image to a maximum of 1, observe it (:func:`astrodeconv.forward.observe`), write it.

    NaN pixels of the clean image are zero for the blur and NaN in the observation. The
    output records ``ADPSF``, ``ADSEED``, ``ADBOUND``, ``ADSCALE`` and the noise (``ADSIGMA``
    without photon noise, else ``ADGAIN``). Returns the image's shape.
    """
    io.check_output(output, overwrite)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    sigma = nonnegative_float(sigma, "--sigma (the noise, a fraction of the maximum)")
    if sigma > RELATIVE_SIGMA[1]:
        raise InputError(f"--sigma {sigma:g} is more than {RELATIVE_SIGMA[1]:g} times the image's maximum")
    image, header = io.read_image(clean, hdu=hdu)
    finite_image(image, f"{clean}: the image")
    kernel = psf.parse_spec(psf_spec, max_side=min(image.shape))
    bad = ~np.isfinite(image)
    x, record = normalise(np.where(bad, np.nan, image))
    x = np.where(bad, 0.0, x)
    y = observe(x, kernel, sigma=sigma, rng=seed, boundary=boundary, gain=gain)
    y[bad] = np.nan
    provenance = {"method": "simulate", "psf": psf_spec, "ADSEED": seed, "ADBOUND": boundary, "ADSCALE": record.scale}
    if gain is None:  # with photon noise too, the total noise is not one sigma: let deconvolve estimate it
        provenance["ADSIGMA"] = sigma
    else:
        provenance["ADGAIN"] = gain
    io.write_image(output, y, header, provenance, overwrite=overwrite)
    return y.shape


def write_psf(model: str, output: str | Path, *, overwrite: bool = False, **options: float) -> tuple[str, np.ndarray, float]:
    """Write the PSF ``model`` (a family name or full spec, plus ``options`` such as ``fwhm=4``) to FITS.

    Returns the full spec, the PSF and its measured FWHM (pixels), recorded as ``ADFWHM``.
    """
    given = {k: v for k, v in options.items() if v is not None}
    spec = model + ((("," if ":" in model else ":") + ",".join(f"{k}={v}" for k, v in given.items())) if given else "")
    io.check_output(output, overwrite)
    kernel = psf.parse_spec(spec)
    width = psf.fwhm(kernel)
    io.write_image(output, kernel, provenance={"psf": spec, "ADFWHM": round(width, 4)}, overwrite=overwrite)
    return spec, kernel, width
