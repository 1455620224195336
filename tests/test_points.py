"""Bright point sources fitted with the PSF (photutils): stars taken, galaxies left, fluxes right."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("galsim")

from astrodeconv.experiments import instrument  # noqa: E402
from astrodeconv.masks import FittedStar, point_image, star_image, take_out  # noqa: E402
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

    # what is left near the stars (away from the saturated ones, not fitted here) is not their light; robust spreads:
    # whether the star of 427,000 e- at (127, 40) is kept flips with the floating-point state of the run (the whole
    # suite's), and left in, its light alone doubles the residual's standard deviation (0.032 -> 0.058 of the image's)
    near = (light > 10 * sigma) & ~binary_dilation(adu >= frame.detector.saturate, iterations=15)

    def spread(values: np.ndarray) -> float:
        return float(np.median(np.abs(values - np.median(values))))

    assert near.sum() > 100 and spread(rest[near]) < 0.05 * spread(adu[near])
    assert fit_points(adu, frame.psf, sigma, invalid=np.ones(adu.shape, bool)) == []


def test_a_wrong_psf_is_said_to_fit_the_stars_poorly():
    frame = instrument.frame("stars", "ground", n=256, seed=8)
    adu = frame.adu.astype(np.float64)
    sigma = estimate_sigma(adu)
    notes: list[str] = []
    assert fit_points(adu, frame.psf, sigma, invalid=adu >= frame.detector.saturate, notes=notes) and not notes
    assert fit_points(adu, frame.wide_psf, sigma, invalid=adu >= frame.detector.saturate, notes=notes) == []
    assert "fits the image's" in notes[0] and "--psf stars" in notes[0]
    fit_points(adu, frame.wide_psf, sigma, invalid=adu >= frame.detector.saturate, notes=notes, psf_from_stars=True)
    assert "fits the image's" in notes[1] and "--psf stars" not in notes[1]  # not suggested where it was used


def test_an_even_psf_is_fitted_where_astrodeconv_centres_it():
    from astrodeconv.forward import blur
    from astrodeconv.psf import airy_paper

    psf = airy_paper()  # 64 x 64: origin at pixel (31, 31)
    truth = np.zeros((160, 160))
    truth[50, 40] = 5e4
    rng = np.random.default_rng(2)
    image = 100.0 + blur(truth, psf) + rng.standard_normal(truth.shape)
    (point,) = fit_points(image, psf, 1.0)
    assert abs(point.x - 40) < 0.05 and abs(point.y - 50) < 0.05
    rest = take_out(image, [point], psf, 1.0, gain=1e6)
    assert np.std(rest[30:70, 20:60]) < 2.0  # the star is gone, not left as a dipole


def test_cnn3_restores_a_paper_frame_whose_brightest_star_is_taken_out(tmp_path):
    from astropy.io import fits
    from scipy.ndimage import gaussian_filter

    from astrodeconv.forward import observe
    from astrodeconv.pipeline import restore_file
    from astrodeconv.psf import airy_paper

    rng = np.random.default_rng(0)
    clean = gaussian_filter(0.3 * (rng.random((128, 128)) > 0.7), 2.0)
    clean[64, 100] = 40.0  # the star that sets the maximum
    y = observe(clean, airy_paper(), sigma=0.0)
    y = y / y.max() + rng.normal(0.0, 0.01, y.shape)
    fits.writeto(tmp_path / "paper.fits", y.astype(np.float32))
    done = restore_file(tmp_path / "paper.fits", tmp_path / "out.fits", psf_spec="airy-paper", method="cnn3",
                        sigma=0.01)  # the noise check is made on the frame as observed, not on what is left
    assert any("point sources" in note for note in done.notes)


def test_a_psf_of_the_wrong_width_is_dilated_to_the_stars():
    from astrodeconv.points import fit_width, matched_psf
    from astrodeconv.psf import fwhm

    frame = instrument.frame("stars", "ground", n=256, seed=8)
    adu = frame.adu.astype(np.float64)
    sigma = estimate_sigma(adu)
    invalid = adu >= frame.detector.saturate
    fit = fit_width(adu, frame.wide_psf, sigma, invalid)
    assert fit.sources >= 5 and abs(fit.factor * 1.15 - 1) < 0.02 and fit.qfit < 0.5 * fit.qfit_given
    notes: list[str] = []
    kernel, applied = matched_psf(adu, frame.wide_psf, sigma, invalid, notes)
    assert applied == fit and abs(fwhm(kernel) / fwhm(frame.psf) - 1) < 0.03 and np.isclose(kernel.sum(), 1.0)
    assert "13% narrower than the PSF given" in notes[0]
    # the true PSF, and one a few per cent off, are kept as given
    assert abs(fit_width(adu, frame.psf, sigma, invalid).factor - 1) < 0.01
    assert matched_psf(adu, frame.psf, sigma, invalid)[1] is None


def test_the_stars_among_galaxies_measure_the_width():
    from astrodeconv.points import fit_width, matched_psf

    frame = instrument.frame("galaxies", "ground", n=320, seed=0)
    adu = frame.adu.astype(np.float64)
    sigma = estimate_sigma(adu)
    invalid = adu >= frame.detector.saturate
    kernel, applied = matched_psf(adu, frame.psf, sigma, invalid)
    assert applied is None and kernel is frame.psf  # the galaxies do not widen the right PSF
    fit = fit_width(adu, frame.wide_psf, sigma, invalid)  # the few stars among them say the wide one is wide
    assert fit.sources >= 3 and abs(fit.factor * 1.15 - 1) < 0.02 and fit.qfit < 0.1


@pytest.mark.parametrize("kind, seed", [("ground", 102), ("space", 103), ("ground", 20)])
def test_compact_galaxies_fitting_a_wider_psf_do_not_outvote_the_stars(kind, seed):
    """Two or three stars among galaxies that fit the PSF best 1.3 to 1.4 times as wide (and well): the stars set it.

    Seed 20: two stars and two galaxies that fit well 1.32 times as wide, a tie.
    """
    from astrodeconv.points import matched_psf
    from astrodeconv.psf import fwhm

    frame = instrument.frame("galaxies", kind, n=320, seed=seed)
    adu = frame.adu.astype(np.float64)
    sigma = estimate_sigma(adu)
    invalid = adu >= frame.detector.saturate
    kernel, applied = matched_psf(adu, frame.wide_psf, sigma, invalid)
    assert applied is not None and applied.sources >= 2 and abs(fwhm(kernel) / fwhm(frame.psf) - 1) < 0.03
    assert matched_psf(adu, frame.psf, sigma, invalid)[1] is None  # the right PSF is kept


def test_the_point_sources_are_the_largest_group_of_one_width_inside_the_widths_tried():
    from astrodeconv.points import _point_sources

    logs = np.log([0.87, 0.875, 1.33, 1.32, 1.35, 1.34, 1.0])
    good = np.array([0.01, 0.02, 0.08, 0.07, 0.06, 0.05, 0.5])  # the last fits poorly
    inside = np.array([True, True, True, True, False, False, True])  # two not fitted beyond their best
    # with those two the wide group would be the larger: they are not candidates, and 2 stand against 2
    assert _point_sources(good, inside, logs).tolist() == [True, True, False, False, False, False, False]
    # a larger group wins over one nearer the width given
    logs[6], good[6] = np.log(1.325), 0.05
    assert _point_sources(good, inside, logs).tolist() == [False, False, True, True, False, False, True]
    # a tie goes to the group nearer the width given (sharp blemishes 25 % narrower than 2 stars are not stars)
    tie = np.log([0.75, 0.76, 1.0, 1.01])
    assert _point_sources(np.full(4, 0.05), np.ones(4, bool), tie).tolist() == [False, False, True, True]
    # fewer than two candidates: no group
    assert _point_sources(good, np.arange(7) == 0, logs).sum() == 1


def test_a_width_from_every_source_rather_than_from_point_sources_does_not_narrow_the_psf(monkeypatch):
    from astrodeconv import points
    from astrodeconv.psf import gaussian

    psf, image = gaussian(4.0), np.zeros((64, 64))
    for grouped in (True, False):  # the same fit, 13 % narrower and good, from point sources or from a median of all
        monkeypatch.setattr(points, "fit_width", lambda *a, **k: points.WidthFit(0.87, 3, 0.15, 0.03, grouped))
        kernel, applied = points.matched_psf(image, psf, 1.0)
        assert (applied is not None) == grouped and (kernel is psf) != grouped


@pytest.mark.parametrize("model", ["right", "wrong"])
def test_a_star_model_is_trusted_only_where_it_is_right(model):
    from astrodeconv.forward import blur
    from astrodeconv.masks import FittedStar, model_trust
    from astrodeconv.psf import gaussian, moffat

    true = gaussian(4.0, size=41)
    truth = np.zeros((120, 120))
    truth[60, 60] = 1e6
    rng = np.random.default_rng(4)
    light = blur(truth, true)
    image = 100.0 + light + rng.normal(0.0, np.sqrt(25.0 + np.clip(light, 0, None)))  # sky noise 5, gain 1
    psf = true if model == "right" else moffat(4.0, beta=2.5, size=41)
    weight, errors = model_trust(image, [FittedStar(60.0, 60.0, 1e6, 100.0, 0)], psf, 5.0, gain=1.0)
    assert weight.shape == image.shape and weight.max() <= 1.0 and weight.min() > 0.0
    assert np.all(model_trust(image, [], psf, 5.0, gain=1.0)[0] == 1.0)  # no star: the restoration as it is
    if model == "right":
        assert errors[0] < 0.005 and weight.min() > 0.9
    else:  # the Moffat's wings are not the Gaussian's: near the star its error, not the noise, dominates
        assert errors[0] > 0.01 and weight[55:66, 55:66].max() < 0.5


def test_a_spike_the_psf_lacks_is_not_trusted_where_a_saturated_star_s_light_is():
    from astrodeconv.forward import blur
    from astrodeconv.masks import FittedStar, model_trust
    from astrodeconv.psf import gaussian

    given = gaussian(3.0, size=41)  # what an estimate from faint stars holds: the core
    r = np.abs(np.arange(41) - 20).astype(float)
    spikes = np.zeros((41, 41))
    spikes[20, :] = spikes[:, 20] = np.where(r >= 4, 1.0 / np.maximum(r, 1.0), 0.0)  # four struts' spikes to 20 px
    true = 0.9 * given + 0.1 * spikes / spikes.sum()
    truth = np.zeros((120, 120))
    truth[60, 60] = 1e6
    light = blur(truth, true)
    image = 100.0 + light + np.random.default_rng(7).normal(0.0, np.sqrt(25.0 + np.clip(light, 0, None)))
    weight, _ = model_trust(image, [FittedStar(60.0, 60.0, 0.9e6, 100.0, 1)], given, 5.0, gain=1.0)  # saturated
    # 12 px out along a spike the star's light is 34 times the noise and its model has none: left as observed
    assert weight[60, 72] < 0.5 and weight[48, 60] < 0.5
    assert weight[69, 69] > 0.9  # between the spikes the model is right (12.7 px out)


@pytest.mark.parametrize("wider", [1.0, 1.05])
def test_a_galaxy_beside_a_saturated_star_is_trusted_as_the_scene(wider):
    from astrodeconv.forward import blur
    from astrodeconv.masks import FittedStar, model_trust
    from astrodeconv.psf import gaussian

    truth = np.zeros((120, 120))
    truth[60, 60] = 1e6
    yy, xx = np.indices(truth.shape)
    galaxy = 3000.0 * np.exp(-((yy - 60) ** 2 + (xx - 75) ** 2) / (2 * 2.0**2))  # 15 px away, in the star's stamp
    light = blur(truth, gaussian(3.0 * wider, size=41)) + galaxy
    image = 100.0 + light + np.random.default_rng(7).normal(0.0, np.sqrt(25.0 + light))
    weight, _ = model_trust(image, [FittedStar(60.0, 60.0, 1e6, 100.0, 1)], gaussian(3.0, size=41), 5.0, gain=1.0)
    # the galaxy is not point-symmetric about the star: restored, not left as observed (0.38 and 0.001 when the
    # star's light as seen took in all the residual's)
    assert weight[60, 75] > 0.99


def test_the_light_beyond_a_psf_stamp_is_not_trusted():
    from astrodeconv.forward import blur
    from astrodeconv.masks import FittedStar, model_trust
    from astrodeconv.psf import moffat

    wide = moffat(4.0, beta=1.8, size=81)  # wings far beyond a 31 px stamp
    truth = np.zeros((160, 160))
    truth[80, 80] = 1e7
    rng = np.random.default_rng(5)
    light = blur(truth, wide)
    image = 100.0 + light + rng.normal(0.0, np.sqrt(25.0 + light))
    star = FittedStar(80.0, 80.0, 1e7, 100.0, 1)  # saturated (region 1)
    stamp = wide[25:56, 25:56]  # the same PSF, cut to 31 x 31: not renormalised, its values are right
    cut, _ = model_trust(image, [star], stamp, 5.0, gain=1.0)
    whole, _ = model_trust(image, [star], wide, 5.0, gain=1.0)
    assert cut[80, 98] < 0.2 and cut[80, 104] < 0.5  # just beyond the cut stamp, and further
    assert whole[80, 98] > 0.8
    # an unsaturated star is as bright as those a PSF is made from: its stamp is taken to hold its light
    assert model_trust(image, [star._replace(region=0)], stamp, 5.0, gain=1.0)[0][80, 98] == 1.0


def test_the_wings_of_a_star_at_the_edge_with_bad_pixels_are_measured():
    from astrodeconv.forward import blur
    from astrodeconv.masks import FittedStar, model_trust
    from astrodeconv.psf import moffat

    wide = moffat(4.0, beta=1.8, size=81)
    truth = np.zeros((120, 120))
    truth[60, 8] = 1e7  # 8 px from the left edge
    rng = np.random.default_rng(6)
    light = blur(truth, wide)
    image = 100.0 + light + rng.normal(0.0, np.sqrt(25.0 + light))
    image[40:44, 20:30] = np.nan  # bad pixels within its wings
    weight, _ = model_trust(image, [FittedStar(60.0, 8.0, 1e7, 100.0, 1)], wide[25:56, 25:56], 5.0, gain=1.0)
    assert np.all(np.isfinite(weight)) and weight.min() > 0.0 and weight[60, 28] < 0.5


def test_sources_wider_than_the_psf_leave_it_as_given():
    from astrodeconv.points import matched_psf
    from astrodeconv.psf import dilate

    frame = instrument.frame("stars", "ground", n=256, seed=8)
    adu = frame.adu.astype(np.float64)
    sigma = estimate_sigma(adu)
    narrow = dilate(frame.psf, 0.87)  # the stars are 15 % wider than it: a PSF too narrow, or galaxies
    notes: list[str] = []
    kernel, applied = matched_psf(adu, narrow, sigma, adu >= frame.detector.saturate, notes)
    assert applied is None and kernel is narrow
    assert "too narrow, or extended sources" in notes[0] and "used as given" in notes[0]


@pytest.mark.parametrize("case", ["halo", "short stamp", "neighbour"])
def test_a_bright_star_s_sky_is_not_raised_by_its_own_wings(case, halo_psf):
    psf = halo_psf()
    if case == "short stamp":  # 21 px: the sky's annulus (3-5 FWHM, 9-15 px) reaches beyond it
        psf = psf[30:51, 30:51] / psf[30:51, 30:51].sum()
    stars = [FittedStar(60.3, 70.6, 2e6, 0.0, 0), FittedStar(150.7, 140.2, 1e6, 0.0, 0)]
    if case == "neighbour":
        stars[1] = FittedStar(60.3, 82.6, 2e6, 0.0, 0)
    image = 100.0 + star_image((220, 220), stars, psf) + np.random.default_rng(1).normal(0, 3.0, (220, 220))
    fitted = fit_points(image, psf, 3.0)
    assert len(fitted) == 2
    # photutils' median of the 3-5 FWHM annulus holds the stars' wings: 163 and 84 above the sky (54 and 28 sigma)
    # with the halo; taking off each star's own median there left -186 with the short stamp and +80 beside the neighbour
    assert all(abs(star.background - 100.0) < 3.0 for star in fitted)


def test_a_star_on_a_brighter_one_s_wings_is_fitted_once_that_one_is_out(halo_psf):
    psf = halo_psf()
    bright, faint = FittedStar(80.3, 80.6, 5e6, 0.0, 0), FittedStar(80.1, 66.4, 2e4, 0.0, 0)  # 4.7 FWHM apart
    image = 100.0 + star_image((160, 160), [bright, faint], psf) + np.random.default_rng(4).normal(0, 3.0, (160, 160))
    fitted = fit_points(image, psf, 3.0)
    # fitted on the bright one's wing slope, it took that slope in: 29 % too bright, qfit 0.75, left to the restoration
    assert len(fitted) == 2
    star = min(fitted, key=lambda s: s.flux)
    assert abs(star.x - faint.x) < 0.1 and abs(star.y - faint.y) < 0.1 and abs(star.flux / faint.flux - 1) < 0.03


def test_a_star_within_a_few_fwhm_of_a_brighter_one_is_found(halo_psf):
    psf = halo_psf()
    bright, neighbour = FittedStar(80.3, 80.6, 2e6, 0.0, 0), FittedStar(84.1, 86.2, 2e5, 0.0, 0)  # 2.2 FWHM apart
    noise = np.random.default_rng(6).normal(0, 3.0, (160, 160))
    image = 100.0 + star_image((160, 160), [bright, neighbour], psf) + noise
    fitted = sorted(fit_points(image, psf, 3.0), key=lambda s: -s.flux)
    # photutils' DAOStarFinder drops by default the peaks within 2.5 FWHM of a brighter one: left to the restoration,
    # such a neighbour of a bright star came out in dark rings tens of sigma deep
    assert len(fitted) == 2
    for star, true in zip(fitted, (bright, neighbour)):
        assert abs(star.x - true.x) < 0.1 and abs(star.y - true.y) < 0.1 and abs(star.flux / true.flux - 1) < 0.02
