"""Frames as an instrument writes them, simulated with GalSim (an independent simulator).

Stars and Sersic galaxies seen through a ground PSF (Kolmogorov seeing x obscured optics
with four struts and small aberrations) or a space-like one (obscured optics with struts),
Poisson noise on a sky in electrons, read noise, a gain to ADU, a bias pedestal and
saturation at 65535 ADU. Used by the tests; needs ``galsim``.
"""

from __future__ import annotations

import numpy as np

GAIN, READ_NOISE, BIAS, SATURATE, SKY = 2.0, 5.0, 1000.0, 65535.0, 1000.0


def psf_profile(kind: str):
    import galsim

    if kind == "ground":
        optics = galsim.OpticalPSF(lam_over_diam=0.1, obscuration=0.3, nstruts=4, strut_thick=0.05, defocus=0.2,
                                   coma1=0.1, astig1=0.1)
        return galsim.Convolve(galsim.Kolmogorov(fwhm=0.9), optics), 0.2
    return galsim.OpticalPSF(lam_over_diam=0.25, obscuration=0.3, nstruts=4, strut_thick=0.05, coma2=0.05), 0.05


def frame(kind: str = "ground", n: int = 384, stars: int = 40, galaxies: int = 10, seed: int = 1):
    """``(adu, psf)``: a float32 frame in ADU and the true PSF (unit sum, 63 x 63, odd, centred)."""
    import galsim

    rng = np.random.default_rng(seed)
    profile, pixel = psf_profile(kind)
    kernel = profile.drawImage(nx=63, ny=63, scale=pixel).array.astype(np.float64)
    image = galsim.ImageF(n, n, scale=pixel)
    star = galsim.InterpolatedImage(galsim.ImageD(kernel, scale=pixel))  # drawn once, placed many times
    for _ in range(stars):
        x, y = rng.uniform(8, n - 8, 2)
        star.withFlux(10 ** rng.uniform(4.0, 7.0)).drawImage(image, add_to_image=True, method="no_pixel",
                                                            offset=(x - n / 2, y - n / 2))
    for _ in range(galaxies):
        x, y = rng.uniform(8, n - 8, 2)
        galaxy = galsim.Sersic(n=rng.uniform(1, 4), half_light_radius=rng.uniform(1.5, 6) * pixel)
        galaxy = galaxy.shear(e1=rng.uniform(-0.3, 0.3), e2=rng.uniform(-0.3, 0.3)).withFlux(10 ** rng.uniform(4, 5.5))
        galsim.Convolve(galaxy, star).drawImage(image, add_to_image=True, method="no_pixel", offset=(x - n / 2, y - n / 2))
    electrons = rng.poisson(np.clip(image.array + SKY, 0, None)).astype(np.float64)
    electrons += rng.normal(0.0, READ_NOISE, electrons.shape)
    adu = np.minimum(electrons / GAIN + BIAS, SATURATE)
    return adu.astype(np.float32), kernel / kernel.sum()


def write(path, adu: np.ndarray) -> None:
    """Write ``adu`` with the cards an instrument writes (GAIN, RDNOISE, SATURATE, BUNIT)."""
    from astropy.io import fits

    header = fits.Header({"BUNIT": "adu", "GAIN": GAIN, "RDNOISE": READ_NOISE, "SATURATE": SATURATE,
                          "OBJECT": "simulated field"})
    fits.writeto(path, adu, header)
