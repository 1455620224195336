import numpy as np
import pytest
from astropy.io import fits
from scipy import special

from astrodeconv import psf
from astrodeconv.errors import InputError


@pytest.mark.parametrize(
    "kernel, expected_fwhm",
    [
        (psf.airy(6.5), 6.5),
        (psf.airy(3.0), 3.0),
        (psf.gaussian(4.0), 4.0),
        (psf.gaussian(9.0), 9.0),
        (psf.moffat(5.0, beta=3.0), 5.0),
        (psf.moffat(8.0, beta=2.5), 8.0),
    ],
)
def test_models_unit_sum_centred_odd_with_analytic_fwhm(kernel, expected_fwhm):
    assert kernel.ndim == 2 and kernel.shape[0] == kernel.shape[1] and kernel.shape[0] % 2 == 1
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    assert np.unravel_index(kernel.argmax(), kernel.shape) == (kernel.shape[0] // 2,) * 2
    # Centroid on the central pixel and symmetric.
    np.testing.assert_allclose(kernel, kernel[::-1, ::-1], atol=1e-15)
    assert psf.fwhm(kernel) == pytest.approx(expected_fwhm, rel=0.03)


def test_model_grids_hold_995_permille_of_flux():
    # Analytic total flux of the profile on a much larger grid vs on the default grid.
    for make in (lambda s=None: psf.gaussian(4.0, size=s), lambda s=None: psf.moffat(5.0, 3.0, size=s)):
        default = make()
        big = make(8 * default.shape[0] + 1)
        big_unnorm = big / big.max()
        pad = (big.shape[0] - default.shape[0]) // 2
        inner = big_unnorm[pad:-pad, pad:-pad].sum() / big_unnorm.sum()
        assert inner >= 0.995
    # Airy: the disc inscribed in the grid holds >= 99.5 % of the flux (encircled energy formula).
    kernel = psf.airy(6.5)
    radius_r = (kernel.shape[0] // 2) * 2 * psf.AIRY_HWHM / 6.5
    assert 1 - special.j0(radius_r) ** 2 - special.j1(radius_r) ** 2 >= 0.995


def test_airy_paper_matches_formula_and_is_centred_between_pixels():
    kernel = psf.airy_paper()
    assert kernel.shape == (64, 64)
    x = np.linspace(-1, 1, 64)
    r = np.hypot(*np.meshgrid(x, x)) * np.pi * 5
    expected = (special.j1(r) / r) ** 2
    np.testing.assert_allclose(kernel, expected / expected.sum(), rtol=1e-12)
    # Four central pixels share the maximum: the centre is at (31.5, 31.5).
    np.testing.assert_allclose(kernel[31:33, 31:33], kernel.max())
    yy, xx = np.mgrid[:64, :64]
    assert (kernel * yy).sum() == pytest.approx(31.5) and (kernel * xx).sum() == pytest.approx(31.5)
    assert psf.fwhm(kernel) == pytest.approx(2 * psf.AIRY_HWHM * 63 / (2 * np.pi * 5), rel=0.02)


def test_parse_spec_all_models_and_fits(tmp_path):
    assert psf.parse_spec("airy-paper").shape == (64, 64)
    assert psf.parse_spec("airy-paper:size=32,nr=3").shape == (32, 32)
    assert psf.fwhm(psf.parse_spec("airy:fwhm=6.5")) == pytest.approx(6.5, rel=0.03)
    assert psf.fwhm(psf.parse_spec("moffat:fwhm=5,beta=3")) == pytest.approx(5, rel=0.03)
    path = tmp_path / "psf.fits"
    fits.writeto(path, 3 * psf.gaussian(4.0))
    np.testing.assert_allclose(psf.parse_spec(str(path)), psf.gaussian(4.0))


@pytest.mark.parametrize(
    "spec, message",
    [
        ("airy", "needs fwhm"),
        ("gaussian:fwhm=-1", "positive"),
        ("gaussian:width=3", "unknown parameter"),
        ("gaussian:fwhm=abc", "must be a number"),
        ("moffat:fwhm=4,beta=1", "beta must be > 1"),
        ("gaussian:fwhm=4,size=10", "odd"),
        ("lorentz:fwhm=3", "unknown PSF"),
        ("missing.fits", "file not found"),
    ],
)
def test_parse_spec_errors_name_the_problem(spec, message):
    with pytest.raises(InputError, match=message):
        psf.parse_spec(spec)


@pytest.mark.parametrize(
    "bad, message",
    [
        (np.ones((3, 3, 3)), "2-D"),
        (np.array([[1.0, np.nan], [0, 1]]), "NaN"),
        (np.array([[1.0, -0.5], [0, 1]]), "negative"),
        (np.zeros((3, 3)), "positive sum"),
    ],
)
def test_validate_rejects_bad_psfs(bad, message, tmp_path):
    with pytest.raises(InputError, match=message):
        psf.validate(bad)
    path = tmp_path / "bad.fits"
    fits.writeto(path, bad)
    with pytest.raises(InputError, match=message):
        psf.from_fits(path)


@pytest.mark.parametrize("factor", [0.8, 1.3])
def test_dilate_keeps_the_centre_and_the_flux(factor):
    from astrodeconv.psf import dilate

    for kernel in (psf.gaussian(4.0), psf.airy_paper()):  # odd side (centre on a pixel), even side (between two)
        out = dilate(kernel, factor)
        rows, cols = np.indices(out.shape)
        assert out.shape[0] % 2 == kernel.shape[0] % 2 and np.isclose(out.sum(), 1.0) and out.min() >= 0
        assert np.isclose((out * rows).sum(), (out.shape[0] - 1) / 2, atol=0.01)
        assert np.isclose((out * cols).sum(), (out.shape[1] - 1) / 2, atol=0.01)
        assert np.isclose(psf.fwhm(out) / psf.fwhm(kernel), factor, rtol=0.05)
