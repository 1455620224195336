"""Frames as real instruments make them, simulated with GalSim (an independent simulator).

A scene (stars with a steep flux distribution, Sersic and bulge + disk galaxies, or a crop of
a real sky image as extended emission) is drawn in electrons, seen through a ground PSF
(Kolmogorov seeing x obscured optics with four struts and small aberrations) or a space-like
one (obscured optics with struts), given Poisson noise on a sky level, read noise, a gain to
ADU, a bias pedestal and saturation. The truth is the same scene without the PSF, pixelised;
the catalogue lists every source's position and flux.

GalSim is an optional dependency (``pip install "astrodeconv[sim]"``), imported here only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InputError

#: Side of the PSF a frame comes with (``Frame.psf``), pixels (odd, centred).
PSF_SIDE = 63
SCENES = ("stars", "galaxies", "deep", "sky")
PSFS = ("ground", "space")


@dataclass(frozen=True)
class Detector:
    """The detector: sky (e-/px), gain (e-/ADU), read noise (e-), bias (ADU), saturation (ADU)."""

    sky: float = 1000.0
    gain: float = 2.0
    read_noise: float = 5.0
    bias: float = 1000.0
    saturate: float = 65535.0


@dataclass
class Frame:
    """One simulated frame.

    Attributes
    ----------
    adu : ndarray, shape (n, n), float32
        The observation as the instrument writes it.
    truth : ndarray, shape (n, n), float64
        The scene without the PSF, electrons per pixel, no sky.
    psf : ndarray, shape (PSF_SIDE, PSF_SIDE)
        The true PSF's central ``PSF_SIDE`` px, unit sum (the scene is blurred with it drawn on
        ``psf_reach`` px, :func:`frame`).
    wide_psf : ndarray
        The true PSF widened by 15 % (a PSF estimate with the wrong width).
    sources : ndarray, shape (N, 4)
        ``x, y, flux (e-), is_star`` of every source (0-based pixel coordinates).
    detector : Detector
    """

    adu: np.ndarray
    truth: np.ndarray
    psf: np.ndarray
    wide_psf: np.ndarray
    sources: np.ndarray
    detector: Detector

    def electrons(self, adu: np.ndarray) -> np.ndarray:
        """``adu`` in electrons above the sky (the truth's units)."""
        return (np.asarray(adu, dtype=np.float64) - self.detector.bias) * self.detector.gain - self.detector.sky

    def header_cards(self) -> dict[str, object]:
        """The cards an instrument writes: ``BUNIT``, ``GAIN``, ``RDNOISE``, ``SATURATE``."""
        d = self.detector
        return {"BUNIT": "adu", "GAIN": d.gain, "RDNOISE": d.read_noise, "SATURATE": d.saturate}


def _galsim():
    from ..nn.instrument_scenes import import_galsim

    return import_galsim("the realistic protocol and its frames")


def psf_profile(kind: str):
    """The GalSim PSF of ``kind`` and the pixel scale (arcsec) it is drawn at (FWHM about 5 px for both)."""
    galsim = _galsim()
    if kind == "ground":
        optics = galsim.OpticalPSF(lam_over_diam=0.1, obscuration=0.3, nstruts=4, strut_thick=0.05, defocus=0.2,
                                   coma1=0.1, astig1=0.1)
        return galsim.Convolve(galsim.Kolmogorov(fwhm=0.9), optics), 0.2
    if kind == "space":
        return galsim.OpticalPSF(lam_over_diam=0.25, obscuration=0.3, nstruts=4, strut_thick=0.05, coma2=0.05), 0.05
    raise InputError(f"PSF kind must be one of {PSFS}, got {kind!r}")


def _place(image, profile, x: float, y: float, n: int, method: str = "auto") -> None:
    profile.drawImage(image, add_to_image=True, offset=(x - (n - 1) / 2, y - (n - 1) / 2), method=method)


def _galaxy(galsim, rng: np.random.Generator, pixel: float, flux: float):
    if rng.random() < 0.5:
        index, radius = rng.uniform(1.0, 4.0), rng.uniform(1.5, 6.0) * pixel
        try:
            profile = galsim.Sersic(n=index, half_light_radius=radius, trunc=40 * pixel)
        except galsim.GalSimError:  # GalSim finds no truncated profile of that half-light radius: the untruncated one's
            profile = galsim.Sersic(n=index, half_light_radius=radius, trunc=40 * pixel, flux_untruncated=True)
    else:  # bulge + disk
        bulge = galsim.DeVaucouleurs(half_light_radius=rng.uniform(0.8, 2.0) * pixel, trunc=30 * pixel)
        disk = galsim.Exponential(half_light_radius=rng.uniform(3.0, 8.0) * pixel)
        fraction = rng.uniform(0.1, 0.5)
        profile = fraction * bulge + (1 - fraction) * disk
    return profile.shear(e1=rng.uniform(-0.4, 0.4), e2=rng.uniform(-0.4, 0.4)).withFlux(flux)


def frame(scene: str, psf_kind: str, n: int = 256, seed: int = 0, detector: Detector = Detector(),
          sky_image: np.ndarray | None = None, psf_reach: int = PSF_SIDE) -> Frame:
    """Simulate one frame of ``scene`` (one of :data:`SCENES`) seen with the ``psf_kind`` PSF.

    ``sky_image`` (normalised to a maximum of 1, at least ``n`` px per side) is the extended
    emission of the ``sky`` scene, scaled to a peak of 30,000 e-. The scene is blurred with the
    PSF drawn on ``psf_reach`` px (odd, at least :data:`PSF_SIDE`), unit sum; the frame comes
    with its central :data:`PSF_SIDE` px. At :data:`PSF_SIDE` that is the whole truth, and the
    brightest stars end in a square edge; wider, their light goes on as far as it does (the
    space-like PSF holds 7 % of its light beyond 31 px), as a PSF model given with a frame never
    does.
    """
    if psf_reach < PSF_SIDE or psf_reach % 2 == 0:
        raise InputError(f"psf_reach must be odd and at least {PSF_SIDE} px, got {psf_reach}")
    galsim = _galsim()
    if scene not in SCENES:
        raise InputError(f"scene must be one of {SCENES}, got {scene!r}")
    rng = np.random.default_rng(seed)
    profile, pixel = psf_profile(psf_kind)
    light = profile.drawImage(nx=psf_reach, ny=psf_reach, scale=pixel).array.astype(np.float64)
    centre, half = psf_reach // 2, PSF_SIDE // 2
    kernel = light[centre - half : centre + half + 1, centre - half : centre + half + 1]  # the PSF as given
    wide = profile.dilate(1.15).drawImage(nx=PSF_SIDE, ny=PSF_SIDE, scale=pixel).array.astype(np.float64)
    psf = galsim.InterpolatedImage(galsim.ImageD(light, scale=pixel))  # pixel response included: drawn once
    observed, truth, extended = (galsim.ImageD(n, n, scale=pixel) for _ in range(3))
    counts = {"stars": (60, 6), "galaxies": (15, 40), "deep": (6, 80), "sky": (25, 0)}[scene]
    sources = []
    for k in range(sum(counts)):
        star = k < counts[0]
        x, y = rng.uniform(6, n - 7, 2)
        if star:  # a steep number count: most stars faint, a few saturated
            flux = 10 ** (3.3 + 3.7 * rng.random() ** 2.5)
            _place(observed, psf.withFlux(flux), x, y, n, "no_pixel")
            r, c = int(round(y)), int(round(x))
            truth.array[r, c] += flux
        else:  # drawn without the PSF (real space), then blurred with the whole extended light below
            flux = 10 ** rng.uniform(3.0, 5.0 if scene == "deep" else 5.5)
            _place(extended, _galaxy(galsim, rng, pixel, flux), x, y, n, "no_pixel")
        sources.append((x, y, flux, float(star)))
    if scene == "sky":
        if sky_image is None or min(sky_image.shape) < n:
            raise InputError(f"the sky scene needs a sky image of at least {n} px per side")
        r0, c0 = (np.array(sky_image.shape) - n) // 2
        extended.array[:] += 30000.0 * np.asarray(sky_image[r0 : r0 + n, c0 : c0 + n], dtype=np.float64)
    from scipy.signal import fftconvolve

    pad = psf_reach // 2  # the light beyond the frame's edge: its mirror image
    blurred = fftconvolve(np.pad(extended.array, pad, mode="reflect"), light / light.sum(), mode="same")
    observed.array[:] += blurred[pad:-pad, pad:-pad]
    truth.array[:] += extended.array
    electrons = rng.poisson(np.clip(observed.array + detector.sky, 0, None)).astype(np.float64)
    electrons += rng.normal(0.0, detector.read_noise, electrons.shape)
    adu = np.minimum(electrons / detector.gain + detector.bias, detector.saturate)
    return Frame(adu.astype(np.float32), truth.array.copy(), kernel / kernel.sum(), wide / wide.sum(),
                 np.array(sources, dtype=np.float64).reshape(-1, 4), detector)
