import numpy as np
import pytest
from scipy import ndimage, signal

from astrodeconv import forward, psf
from astrodeconv.errors import InputError


def test_zero_boundary_is_the_papers_fftconvolve(small_image):
    kernel = psf.airy_paper(size=16, nr=2)
    np.testing.assert_allclose(
        forward.blur(small_image, kernel, "zero"), signal.fftconvolve(small_image, kernel, "same"), atol=1e-14
    )


@pytest.mark.parametrize("boundary, mode", [("zero", "constant"), ("reflect", "reflect"), ("periodic", "wrap")])
@pytest.mark.parametrize("size", [5, 6])
def test_each_boundary_matches_scipy_ndimage(small_image, boundary, mode, size, rng):
    kernel = rng.random((size, size + 1))
    # ndimage.convolve puts the origin at shape // 2: it agrees once the kernel is made odd.
    expected = ndimage.convolve(small_image, forward.pad_to_odd(kernel), mode=mode, cval=0.0)
    np.testing.assert_allclose(forward.blur(small_image, kernel, boundary), expected, atol=1e-12)


def test_even_psf_origin_is_fftconvolve_same():
    x = np.zeros((15, 15))
    x[7, 7] = 1
    kernel = np.zeros((6, 6))
    kernel[2, 2] = 1  # origin (6 - 1) // 2 = 2: a point source stays in place
    for boundary in forward.BOUNDARIES:
        np.testing.assert_allclose(forward.blur(x, kernel, boundary), x, atol=1e-12)


def test_blur_preserves_flux_periodically_and_constant_reflectively(small_image):
    kernel = psf.gaussian(3.0)
    assert forward.blur(small_image, kernel, "periodic").sum() == pytest.approx(small_image.sum())
    np.testing.assert_allclose(forward.blur(np.full((20, 23), 0.7), kernel, "reflect"), 0.7, atol=1e-12)


def test_blur_rejects_unknown_boundary(small_image):
    with pytest.raises(InputError, match="boundary must be one of"):
        forward.blur(small_image, psf.gaussian(2.0), "mirror")


def test_gaussian_noise_statistics_and_reproducible():
    y1 = forward.add_gaussian_noise(np.full((300, 300), 0.5), 0.01, np.random.default_rng(3))
    y2 = forward.add_gaussian_noise(np.full((300, 300), 0.5), 0.01, np.random.default_rng(3))
    np.testing.assert_array_equal(y1, y2)
    assert y1.mean() == pytest.approx(0.5, abs=2e-4)
    assert y1.std() == pytest.approx(0.01, rel=0.02)


def test_poisson_noise_variance_is_signal_over_gain(rng):
    y = forward.add_poisson_noise(np.full((400, 400), 0.25), gain=1000.0, rng=rng)
    assert y.mean() == pytest.approx(0.25, rel=0.01)
    assert y.var() == pytest.approx(0.25 / 1000, rel=0.03)
    with pytest.raises(InputError, match="non-negative"):
        forward.add_poisson_noise(np.array([[-1.0]]), 10.0, rng)


def test_observe_is_blur_then_noise(small_image):
    kernel = psf.gaussian(2.5)
    y = forward.observe(small_image, kernel, sigma=0.01, rng=7)
    noise = y - forward.blur(small_image, kernel)
    np.testing.assert_allclose(noise, 0.01 * np.random.default_rng(7).standard_normal(small_image.shape))


def test_normalise_is_the_papers_and_reversible_on_positive_pixels():
    image = np.array([[200.0, -5.0], [50.0, np.nan]])
    x, record = forward.normalise(image)
    np.testing.assert_array_equal(x[0], [1.0, 0.0])
    assert np.isnan(x[1, 1])
    np.testing.assert_allclose(record.undo(x)[1, 0], 50.0)
    with pytest.raises(InputError, match="positive maximum"):
        forward.normalise(np.zeros((3, 3)))
