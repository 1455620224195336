"""Training scenes as instruments see the sky: GalSim PSFs, photon noise on a sky, the PSF known only roughly.

What :func:`simulate_instrument_scene` draws, per scene (all in electrons, then in noise units):

* **PSF** (GalSim): half the scenes from the ground (Kolmogorov seeing convolved with optics),
  half space-like (optics alone); the optics an obscured aperture (obscuration 0 to 0.45) with
  0, 3, 4 or 6 struts at a random angle and small random defocus, astigmatism and coma; a
  Gaussian jitter on a quarter of them. FWHM 2.5 to 9 px (log-uniform).
* **PSF given to the network**: the true one in half the scenes; otherwise, as real estimates
  are, its FWHM 0.85 to 1.15 times the truth's, a Moffat (beta 2.5 to 4.5) of its FWHM, or the
  true PSF with the noise and the smoothing of an estimate from a few stars.
* **Sky**: stars with a steep number count, their peaks up to :data:`MAX_STAR_SNR` times the
  sky's noise (the pipeline fits those above 50 and takes them out before the network,
  :mod:`astrodeconv.points`, but tiles, ``--no-point-sources`` and the arrays API give them to
  it), drawn as points shared bilinearly over four pixels; Sersic
  and bulge + disk galaxies; on a third of the scenes a crop of a real sky image as extended
  emission.
* **Detector**: a sky of 50 to 5,000 e-/px, Poisson noise, read noise 2 to 10 e-.

The observation is put in noise units by its median and its noise level estimated as the
pipeline does (:func:`astrodeconv.noise.estimate_sigma`), and the photon noise in those
units is recorded (:meth:`astrodeconv.nn.restorer.Restorer.set_photon`).

This distribution is not the realistic benchmark's (:mod:`astrodeconv.experiments.instrument`:
two fixed PSFs, one detector): its PSFs, detectors and scenes are drawn from ranges around it.
GalSim is an optional dependency (``pip install "astrodeconv[sim]"``).
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from ..errors import InputError
from ..masks import FittedStar, point_image
from .scenes import Scene

__all__ = ["MAX_STAR_SNR", "import_galsim", "simulate_instrument_scene"]

#: Brightest star peak drawn, in units of the sky's noise.
MAX_STAR_SNR = 3000.0
#: Side of the drawn PSFs, pixels.
PSF_SIDE = 63


def import_galsim(what: str = "instrument-like training scenes"):
    """The ``galsim`` module, or a clear error saying that ``what`` needs it (an optional extra)."""
    try:
        import galsim
    except ImportError:
        raise InputError(f'{what} need GalSim: pip install "astrodeconv[sim]"') from None
    return galsim


def sample_instrument_psf(rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A random GalSim PSF drawn on ``PSF_SIDE`` pixels (unit sum) and its FWHM in pixels."""
    from ..psf import fwhm

    galsim = import_galsim()
    aberrations = {name: float(rng.normal(0.0, scale)) for name, scale in
                   (("defocus", 0.15), ("astig1", 0.08), ("astig2", 0.08), ("coma1", 0.06), ("coma2", 0.06))}
    struts = int(rng.choice([0, 3, 4, 6]))
    optics = galsim.OpticalPSF(lam_over_diam=1.0, obscuration=float(rng.uniform(0.0, 0.45)), nstruts=struts,
                               strut_thick=float(rng.uniform(0.02, 0.07)),
                               strut_angle=float(rng.uniform(0, 90)) * galsim.degrees, **aberrations)
    profile = optics
    if rng.random() < 0.5:  # seeing: Kolmogorov of 1 to 4 times the diffraction width
        profile = galsim.Convolve(galsim.Kolmogorov(fwhm=float(rng.uniform(1.0, 4.0))), optics)
    if rng.random() < 0.25:
        profile = galsim.Convolve(profile, galsim.Gaussian(fwhm=float(rng.uniform(0.3, 1.0))))
    target = float(np.exp(rng.uniform(np.log(2.5), np.log(9.0))))
    fine = 0.1  # the profile's FWHM measured on a fine grid, then the pixel that gives the wanted FWHM
    scale = fwhm(profile.drawImage(nx=255, ny=255, scale=fine, method="no_pixel").array) * fine / target
    kernel = profile.drawImage(nx=PSF_SIDE, ny=PSF_SIDE, scale=scale).array.astype(np.float64)
    kernel = np.clip(kernel, 0.0, None)
    kernel /= kernel.sum()
    return kernel, fwhm(kernel)


def _given_psf(psf: np.ndarray, width: float, rng: np.random.Generator) -> np.ndarray:
    """The PSF a user would hand over: the truth, a wrong width, a Moffat stand-in, or a noisy estimate."""
    from scipy import ndimage

    from ..psf import dilate, moffat
    from .scenes import central

    pick = rng.random()
    if pick < 0.5:
        return psf
    if pick < 0.7:  # width 0.85 to 1.15 times the truth's, on its grid
        out = central(dilate(psf, float(rng.uniform(0.85, 1.15))), psf.shape[0])
    elif pick < 0.85:
        out = moffat(width, beta=float(rng.uniform(2.5, 4.5)))
    else:  # an estimate from a few stars: the truth smoothed a little, with noise in its wings
        out = ndimage.gaussian_filter(psf, float(rng.uniform(0.2, 0.6)))
        out = out + rng.normal(0.0, 2e-4 * out.max(), out.shape)
    out = np.clip(out, 0.0, None)
    return out / out.sum()


def _galaxy(galsim, rng: np.random.Generator, flux: float):
    if rng.random() < 0.5:
        radius = float(rng.uniform(1.0, 8.0))
        profile = galsim.Sersic(n=float(rng.uniform(0.8, 4.0)), half_light_radius=radius, trunc=8.0 * radius)
    else:
        fraction = float(rng.uniform(0.1, 0.6))
        profile = (fraction * galsim.DeVaucouleurs(half_light_radius=float(rng.uniform(0.6, 2.5)), trunc=30.0)
                   + (1 - fraction) * galsim.Exponential(half_light_radius=float(rng.uniform(2.0, 10.0))))
    return profile.shear(e1=float(rng.uniform(-0.5, 0.5)), e2=float(rng.uniform(-0.5, 0.5))).withFlux(flux)


def simulate_instrument_scene(clean: np.ndarray | None, rng: np.random.Generator, size: int = 256) -> Scene:
    """One ``size x size`` scene (see the module docstring); ``clean`` (max 1) is the extended emission, or None."""
    from ..noise import estimate_sigma, sky_level

    galsim = import_galsim()
    psf, width = sample_instrument_psf(rng)
    given = _given_psf(psf, width, rng)
    pad = PSF_SIDE // 2
    window = size + 2 * pad
    sky, read_noise = float(np.exp(rng.uniform(np.log(50.0), np.log(5000.0)))), float(rng.uniform(2.0, 10.0))
    noise = np.sqrt(sky + read_noise**2)
    peak_per_flux = float(psf.max())
    stars = []
    for _ in range(int(rng.integers(5, 80))):  # stars: steep counts, peaks from 1 to MAX_STAR_SNR noise
        snr = float(np.exp(rng.uniform(0.0, 1.0) ** 2.0 * np.log(MAX_STAR_SNR)))  # median 7, one in ten above 650
        x, y = rng.uniform(1, window - 2, 2)
        stars.append(FittedStar(float(y), float(x), snr * noise / peak_per_flux, 0.0, 0))
    truth = point_image((window, window), stars)  # each star's flux shared by the four pixels around it
    galaxies = galsim.ImageD(window, window, scale=1.0)
    for _ in range(int(rng.integers(0, 40))):
        flux = float(np.exp(rng.uniform(np.log(3.0), np.log(2000.0)))) * noise
        x, y = rng.uniform(0, window, 2)
        _galaxy(galsim, rng, flux).drawImage(galaxies, add_to_image=True, method="no_pixel",
                                             offset=(x - (window - 1) / 2, y - (window - 1) / 2))
    truth += galaxies.array
    if clean is not None and rng.random() < 1 / 3:
        if min(clean.shape) < window:
            clean = np.pad(clean, window - min(clean.shape), mode="symmetric")
        r, c = rng.integers(0, clean.shape[0] - window + 1), rng.integers(0, clean.shape[1] - window + 1)
        truth += float(np.exp(rng.uniform(np.log(5.0), np.log(500.0)))) * noise * clean[r : r + window, c : c + window]
    blurred = signal.fftconvolve(truth, psf, mode="same")[pad : pad + size, pad : pad + size]
    electrons = rng.poisson(np.clip(blurred + sky, 0.0, None)).astype(np.float64)
    electrons += rng.normal(0.0, read_noise, electrons.shape)
    target = truth[pad : pad + size, pad : pad + size]
    sigma = estimate_sigma(electrons)
    background = sky_level(electrons)
    observed = ((electrons - background) / sigma).astype(np.float32)
    # the truth in the same units, on the observation's background (the sky is in the median)
    truth_units = ((target + sky - background) / sigma).astype(np.float32)
    return Scene(observed, truth_units, given, "instrument", float(sigma / max(float(target.max()), 1.0)),
                 float(sigma), photon=1.0 / sigma)
