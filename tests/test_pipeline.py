"""The array-level pipeline: a frame's edges, as a crop of a sky that goes on beyond them."""

from __future__ import annotations

import numpy as np
import pytest

from astrodeconv.errors import InputError
from astrodeconv.forward import blur
from astrodeconv.pipeline import restore_array
from astrodeconv.psf import gaussian


def _frame_with_a_sky(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A sky of 1 to 1.5 with a few sources, blurred as a real frame is (the scene goes on beyond the edges), noisy."""
    yy, xx = np.mgrid[:70, :73]
    truth = 1.0 + 0.5 * xx / 72 + sum(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 3.0) for cy, cx in rng.uniform(15, 55, (8, 2)))
    h = gaussian(4.0)
    return truth, h, blur(truth, h, "reflect") + 0.01 * rng.standard_normal(truth.shape)


@pytest.mark.parametrize("method, params", [("rl", {"num_iter": 30}), ("tv", {"mu": 0.002}),
                                            ("wiener", {"balance": 0.05})])
def test_a_frame_is_restored_as_a_crop_of_a_sky_beyond_its_edges(method, params):
    truth, h, y = _frame_with_a_sky(np.random.default_rng(0))
    mirrored, _ = restore_array(y, h, method, params, select="none")
    own, _ = restore_array(y, h, method, params, select="none", boundary="method")
    assert mirrored.shape == own.shape == y.shape
    edges = np.ones(y.shape, bool)
    edges[12:-12, 12:-12] = False
    error = {name: np.sqrt(np.mean((x - truth)[edges] ** 2)) for name, x in (("mirror", mirrored), ("own", own))}
    assert error["mirror"] < 0.5 * error["own"]  # a dark or periodic boundary leaves edge artefacts on a sky
    inner = (slice(25, -25), slice(25, -25))
    assert np.sqrt(np.mean((mirrored - truth)[inner] ** 2)) < np.sqrt(np.mean((y - truth)[inner] ** 2))


def test_a_network_keeps_its_own_mirror_boundary():
    truth, h, y = _frame_with_a_sky(np.random.default_rng(1))
    a, _ = restore_array(y, h, "restorer-universal", select="none", sigma=0.01)
    b, _ = restore_array(y, h, "restorer-universal", select="none", sigma=0.01, boundary="method")
    np.testing.assert_array_equal(a, b)
    with pytest.raises(InputError, match="boundary"):
        restore_array(y, h, "rl", {"num_iter": 3}, select="none", boundary="zero")


def test_a_method_record_names_a_known_boundary():
    from astrodeconv.registry import Method

    with pytest.raises(ValueError, match="boundary must be one of"):
        Method("x", lambda y, psf: y, boundary="wrap")


def test_the_outer_pixels_are_restored_as_well_as_the_inside():
    """The mirror reaches a PSF's width beyond the edges, where a dark boundary's artefacts would reach."""
    truth, h, y = _frame_with_a_sky(np.random.default_rng(2))
    restored, _ = restore_array(y, h, "rl", {"num_iter": 100}, select="none")
    outer = np.ones(y.shape, bool)
    outer[3:-3, 3:-3] = False
    inner = (slice(20, -20), slice(20, -20))
    assert np.sqrt(np.mean((restored - truth)[outer] ** 2)) < 2 * np.sqrt(np.mean((restored - truth)[inner] ** 2))


def test_the_noise_level_is_measured_on_the_image_not_its_mirror():
    from astrodeconv.noise import estimate_sigma

    rng = np.random.default_rng(3)
    y = 1.0 + 0.01 * rng.standard_normal((1, 64))  # one row: its mirror repeats it, with no noise between
    with pytest.raises(InputError):  # as before the mirror: an image a PSF does not fit in
        restore_array(y, gaussian(2.0), "rl", select="auto")
    _, h, frame = _frame_with_a_sky(rng)
    _, params = restore_array(frame, h, "restorer-universal", select="none")
    _, mirrored = restore_array(frame, h, "wiener", select="auto")
    assert params["sigma"] == pytest.approx(estimate_sigma(frame), rel=1e-5)
    own = restore_array(frame, h, "wiener", select="auto", sigma=estimate_sigma(frame))[1]
    assert mirrored == own  # the automatic choice with the noise measured on the image itself


def test_a_truth_of_another_shape_is_refused_with_the_shapes():
    truth, h, y = _frame_with_a_sky(np.random.default_rng(4))
    with pytest.raises(InputError, match=r"\(69, 73\).*\(70, 73\)"):
        restore_array(y, h, "wiener", select="oracle", truth=truth[1:])


def test_bad_pixels_stay_bad_after_the_mirror():
    truth, h, y = _frame_with_a_sky(np.random.default_rng(5))
    y[3, 4] = y[40, 41] = np.nan
    restored, _ = restore_array(y, h, "rl", {"num_iter": 10}, select="none")
    assert restored.shape == y.shape and np.isnan(restored[3, 4]) and np.isnan(restored[40, 41])
    assert np.isfinite(np.delete(restored.ravel(), [3 * 73 + 4, 40 * 73 + 41])).all()


def test_the_gain_a_noise_map_implies():
    from astrodeconv.noise import gain_from_noise_map

    rng = np.random.default_rng(6)
    image = 200.0 + rng.exponential(300.0, (150, 150))
    err = np.sqrt(9.0 + (image - 200.0) / 1.7) * rng.uniform(0.97, 1.03, image.shape)  # a little scatter
    assert gain_from_noise_map(image, err, background=200.0) == pytest.approx(1.7, rel=0.05)
    assert gain_from_noise_map(image, np.full(image.shape, 3.0)) is None  # the sky's noise alone: no gain
    assert gain_from_noise_map(np.full((20, 20), 200.0), np.full((20, 20), 3.0)) is None  # nothing bright to fit
