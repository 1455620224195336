"""The gain a frame's own noise shows (photon noise growing with the light), and none where there is none."""

from __future__ import annotations

import numpy as np
import pytest

from astrodeconv.data import load_sky
from astrodeconv.errors import InputError
from astrodeconv.forward import normalise, observe
from astrodeconv.noise import estimate_sigma, gain_from_image
from astrodeconv.psf import airy, gaussian


@pytest.fixture(scope="module")
def galaxy():
    """A 256 px crop of a sky image, normalised to max 1, and a sky of 0.05 under it."""
    return normalise(load_sky("m51_dss1red", None))[0][22:278, 22:278] + 0.05


@pytest.mark.parametrize("psf", [gaussian(3.0), airy(fwhm=6.5, size=33)], ids=["gaussian-3", "airy-6.5"])
def test_photon_noise_gives_its_gain(galaxy, psf):
    observed = observe(galaxy, psf, sigma=0.003, gain=2000.0, rng=1, boundary="periodic")
    found = gain_from_image(observed, psf, estimate_sigma(observed))
    assert found is not None and 0.7 < found / 2000.0 < 1.5


@pytest.mark.parametrize("sigma", [0.01, 0.003])
def test_gaussian_noise_shows_no_gain(galaxy, sigma):
    psf = gaussian(3.0)
    observed = observe(galaxy - 0.05, psf, sigma=sigma, rng=1, boundary="periodic")
    assert gain_from_image(observed, psf, estimate_sigma(observed)) is None


def test_bad_pixels_and_a_narrow_psf(galaxy):
    psf = gaussian(3.0)
    observed = observe(galaxy, psf, sigma=0.003, gain=2000.0, rng=1, boundary="periodic")
    holed = observed.copy()
    holed[100:104, :] = np.nan  # a bad band of rows, and a column flagged bad
    flagged = np.zeros(observed.shape, bool)
    flagged[:, 50] = True
    found = gain_from_image(holed, psf, estimate_sigma(observed), invalid=flagged)
    assert found is not None and 0.7 < found / 2000.0 < 1.5
    scattered = observed.copy()  # 1 % of the pixels bad here and there, as cosmic rays and hot pixels
    scattered[np.random.default_rng(2).random(observed.shape) < 0.01] = np.nan
    found = gain_from_image(scattered, psf, estimate_sigma(observed))
    assert found is not None and 0.7 < found / 2000.0 < 1.5
    assert gain_from_image(observed, psf, 0.003, invalid=np.ones(observed.shape, bool)) is None
    for bad, match in [(dict(invalid=np.zeros((10, 10), bool)), "invalid has shape"), (dict(window=0), "window"),
                       (dict(bins=1), "bins")]:
        with pytest.raises(InputError, match=match):
            gain_from_image(observed, psf, 0.003, **bad)
    with pytest.raises(InputError, match="PSF"):
        gain_from_image(observed, np.full((5, 5), np.nan), 0.003)
    # a PSF of FWHM 1 px passes nearly every frequency: no band is noise alone
    assert gain_from_image(observed, gaussian(1.0), estimate_sigma(observed)) is None
    with pytest.raises(InputError, match="no finite pixel"):
        gain_from_image(np.full((64, 64), np.nan), psf, 1.0)
