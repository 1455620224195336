"""Bright point sources fitted with the PSF (photutils): stars taken, galaxies left, fluxes right."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("galsim")

from astrodeconv.experiments import instrument  # noqa: E402
from astrodeconv.masks import point_image, star_image, take_out  # noqa: E402
from astrodeconv.noise import estimate_sigma  # noqa: E402
from astrodeconv.points import fit_points  # noqa: E402


@pytest.mark.parametrize("scene", ["stars", "galaxies"])
def test_fitted_points_are_the_bright_stars(scene):
    frame = instrument.frame(scene, "ground", n=200, seed=3)
    adu = frame.adu.astype(np.float64)
    sigma = estimate_sigma(adu)
    points = fit_points(adu, frame.psf, sigma, invalid=adu >= frame.detector.saturate)
    sources = frame.sources
    assert points
    for p in points:
        distance = np.hypot(sources[:, 0] - p.x, sources[:, 1] - p.y)
        nearest = sources[distance.argmin()]
        assert distance.min() < 0.5 and nearest[3] == 1  # a star, where it is: never a galaxy
        assert abs(p.flux * frame.detector.gain / nearest[2] - 1) < 0.03


def test_taken_out_and_put_back_keeps_the_flux():
    frame = instrument.frame("stars", "space", n=160, seed=5)
    adu = frame.adu.astype(np.float64)
    sigma = estimate_sigma(adu)
    points = fit_points(adu, frame.psf, sigma, invalid=adu >= frame.detector.saturate)
    rest = take_out(adu, points, frame.psf, sigma, gain=frame.detector.gain)
    light = star_image(adu.shape, points, frame.psf)
    assert np.isclose(point_image(adu.shape, points).sum(), sum(p.flux for p in points))
    from scipy.ndimage import binary_dilation

    # what is left near the stars (away from the saturated ones, not fitted here) is not their light
    near = (light > 10 * sigma) & ~binary_dilation(adu >= frame.detector.saturate, iterations=15)
    assert near.sum() > 100 and np.std(rest[near]) < 0.05 * np.std(adu[near])
    assert fit_points(adu, frame.psf, sigma, invalid=np.ones(adu.shape, bool)) == []


def test_a_wrong_psf_is_said_to_fit_the_stars_poorly():
    frame = instrument.frame("stars", "ground", n=256, seed=8)
    adu = frame.adu.astype(np.float64)
    sigma = estimate_sigma(adu)
    notes: list[str] = []
    assert fit_points(adu, frame.psf, sigma, invalid=adu >= frame.detector.saturate, notes=notes) and not notes
    assert fit_points(adu, frame.wide_psf, sigma, invalid=adu >= frame.detector.saturate, notes=notes) == []
    assert "fits the image's" in notes[0] and "--psf stars" in notes[0]
