"""The PSF from the image's own stars, on GalSim frames written as an instrument writes them."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

pytest.importorskip("photutils")
pytest.importorskip("galsim")

from astrodeconv import psf  # noqa: E402
from astrodeconv.cli import main  # noqa: E402
from astrodeconv.errors import InputError  # noqa: E402
from astrodeconv.masks import cold_pixels  # noqa: E402
from astrodeconv.starpsf import estimate_psf  # noqa: E402


@pytest.fixture(scope="module", params=["ground", "space"])
def observed(request, tmp_path_factory):
    """A GalSim star field (:mod:`astrodeconv.experiments.instrument`) in ADU, with the cards an instrument writes."""
    from astrodeconv.experiments import instrument

    frame = instrument.frame("stars", request.param, n=384, seed=1)
    path = tmp_path_factory.mktemp(request.param) / "obs.fits"
    fits.writeto(path, frame.adu, fits.Header({**frame.header_cards(), "OBJECT": "simulated field"}))
    return path, frame.psf


def test_psf_from_stars_has_the_true_width(observed, tmp_path, capsys):
    path, true_psf = observed
    out = tmp_path / "psf.fits"
    assert main(["psf", "--from-stars", str(path), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "stars" in printed and "left out" in printed and "saturated" in printed
    kernel, header = fits.getdata(out), fits.getheader(out)
    assert abs(header["ADFWHM"] - psf.fwhm(true_psf)) < 0.1 * psf.fwhm(true_psf)
    assert header["ADNSTARS"] >= 5 and header["ADLOCSKY"] is False  # a flat sky: the frame's one sky
    assert kernel.shape[0] % 2 == 1 and np.unravel_index(np.argmax(kernel), kernel.shape) == (kernel.shape[0] // 2,) * 2
    assert kernel.min() >= 0 and abs(kernel.sum() - 1) < 1e-5


def test_psf_from_stars_leaves_out_bad_pixels_as_deconvolve_does(observed, tmp_path):
    path, true_psf = observed
    data, header = fits.getdata(path), fits.getheader(path)
    flags = np.zeros(data.shape, np.uint8)
    flags[:, : data.shape[1] // 2] = 1  # half the frame flagged: its stars are not used
    fits.writeto(tmp_path / "mask.fits", flags)
    dq = tmp_path / "sci.fits"  # the same flags as an instrument's DQ extension
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(data, header, name="SCI"),
                  fits.ImageHDU(flags.astype(np.int32), name="DQ")]).writeto(dq)
    used = {}
    for name, args in (("all", [str(path)]), ("mask", [str(path), "--mask", str(tmp_path / "mask.fits")]),
                       ("dq", [str(dq)])):
        assert main(["psf", "--from-stars", *args, "-o", str(tmp_path / f"psf-{name}.fits")]) == 0
        used[name] = fits.getheader(tmp_path / f"psf-{name}.fits")["ADNSTARS"]
    assert used["mask"] == used["dq"] < used["all"]
    broken = data.astype(np.float64)
    broken[8::16] = 0.0  # dead rows through the field, found as cold
    assert cold_pixels(broken)[8::16].all()
    fits.writeto(tmp_path / "rows.fits", broken, header)
    codes = {name: main(["psf", "--from-stars", str(tmp_path / "rows.fits"), *extra, "-o", str(tmp_path / f"psf-{name}.fits")])
             for name, extra in (("found", []), ("kept", ["--keep-cold"]))}
    assert codes["found"] == 0
    found = fits.getheader(tmp_path / "psf-found.fits")
    assert abs(found["ADFWHM"] - psf.fwhm(true_psf)) < 0.1 * psf.fwhm(true_psf)
    # kept as data, the dead rows cross the stars' cutouts: the estimate is refused or another
    assert codes["kept"] != 0 or fits.getheader(tmp_path / "psf-kept.fits")["ADFWHM"] != found["ADFWHM"]


def test_deconvolve_with_psf_stars_records_the_psf(observed, tmp_path, capsys):
    path, true_psf = observed
    out = tmp_path / "out.fits"
    assert main(["deconvolve", str(path), "-o", str(out), "--psf", "stars", "--method", "rl"]) == 0
    with fits.open(out) as hdul:
        assert hdul[0].header["ADPSF"].startswith("stars") and hdul[0].header["OBJECT"] == "simulated field"
        assert hdul["PSF"].header["ADNSTARS"] >= 5 and hdul["PSF"].header["ADLOCSKY"] is False
        assert abs(hdul["PSF"].header["ADFWHM"] - psf.fwhm(true_psf)) < 0.1 * psf.fwhm(true_psf)
        assert np.isfinite(hdul[0].data).all()


def test_saturated_stars_are_left_out(observed):
    path, _ = observed
    adu = fits.getdata(path).astype(np.float64)
    with_level = estimate_psf(adu, saturation=65535)
    assert not with_level.local_sky  # a flat sky: the frame's one sky is every star's
    assert with_level.rejected["saturated or bad pixels"] > 0
    for x, y in with_level.stars:
        r, c = int(round(y)), int(round(x))
        assert adu[r - 3 : r + 4, c - 3 : c + 4].max() < 0.8 * 65535


def test_an_estimated_psf_with_small_negative_lobes_is_accepted(observed, tmp_path, capsys):
    path, _ = observed
    kernel = estimate_psf(fits.getdata(path).astype(np.float64), saturation=65535).psf.copy()
    kernel[0, 0] = kernel[-1, -1] = -0.004 * kernel.max()  # as photutils' ePSF has
    fits.writeto(tmp_path / "epsf.fits", kernel)
    out = tmp_path / "out.fits"
    assert main(["deconvolve", str(path), "-o", str(out), "--psf", str(tmp_path / "epsf.fits"), "--method", "wiener"]) == 0
    assert "negative pixels" in capsys.readouterr().err
    kernel[0, 0] = -0.05 * kernel.max()
    fits.writeto(tmp_path / "deep.fits", kernel)
    assert main(["deconvolve", str(path), "-o", str(tmp_path / "o2.fits"), "--psf", str(tmp_path / "deep.fits")]) == 2
    assert "non-negative up to 1%" in capsys.readouterr().err


def test_too_few_stars_is_a_clear_error(tmp_path, capsys):
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:128, :128]
    galaxy = 1000 + 500 * np.exp(-((yy - 64) ** 2 + (xx - 64) ** 2) / 300.0) + rng.normal(0, 10, (128, 128))
    with pytest.raises(InputError, match="at least 5"):
        estimate_psf(galaxy)
    fits.writeto(tmp_path / "g.fits", galaxy.astype(np.float32))
    assert main(["psf", "--from-stars", str(tmp_path / "g.fits"), "-o", str(tmp_path / "p.fits")]) == 2
    assert "give the PSF with --psf" in capsys.readouterr().err
    assert not (tmp_path / "p.fits").exists()


def test_psf_stars_needs_the_image_in_memory(observed, tmp_path, capsys):
    path, _ = observed
    assert main(["deconvolve", str(path), "-o", str(tmp_path / "o.fits"), "--psf", "stars", "--method", "cnn3",
                 "--stream"]) == 2
    assert "psf --from-stars" in capsys.readouterr().err


def test_networks_trained_on_normalised_images_refuse_raw_adu(observed, tmp_path, capsys):
    """cnn3 learned one noise level relative to the maximum (0.01); a raw ADU frame has far less: refused."""
    path, _ = observed
    for extra in ([], ["--stream"]):
        out = tmp_path / "out.fits"
        assert main(["deconvolve", str(path), "-o", str(out), "--psf", "gaussian:fwhm=5", "--method", "cnn3", *extra]) == 2
        err = capsys.readouterr().err
        assert "trained for noise sigma 0.01" in err and "restorer-universal" in err
        assert not out.exists()


def test_stars_on_a_galaxy_give_a_psf_without_a_pedestal():
    """Stars sitting on a galaxy's light: each cutout less its own sky, the PSF holds their light only."""
    from astrodeconv.forward import blur

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:320, :320]
    scene = 1000.0 * np.exp(-np.hypot(yy - 160.0, xx - 160.0) / 80.0)  # a disk filling the frame, over a sky of 0
    stars = rng.uniform(30, 290, size=(40, 2))
    fluxes = rng.uniform(1e5, 5e5, size=40)
    for (x, y), flux in zip(stars, fluxes):
        scene[int(y), int(x)] += flux
    true_psf = psf.moffat(fwhm=3.0, beta=3.0, size=31)
    frame = blur(scene, true_psf) + 100.0
    frame = rng.poisson(frame).astype(np.float64)
    found = estimate_psf(frame)
    assert found.local_sky and "each on its own sky" in found.summary()
    kernel = found.psf
    r = np.hypot(*np.ogrid[-(kernel.shape[0] // 2): kernel.shape[0] // 2 + 1, -(kernel.shape[1] // 2): kernel.shape[1] // 2 + 1])
    truth = psf.moffat(fwhm=3.0, beta=3.0, size=kernel.shape[0])
    outer = r > kernel.shape[0] // 2 - 3
    # the light beyond 3 FWHM: the true PSF's, not a pedestal of the disk's light (with one: several times more)
    assert kernel[r > 9].sum() < truth[r > 9].sum() / truth.sum() + 0.03
    assert abs(kernel[outer].mean()) < 5 * truth[outer].mean() / truth.sum()


def test_a_pedestal_is_a_flat_floor_not_a_falling_wing():
    from astrodeconv.starpsf import _has_pedestal

    side = 25  # 2 ceil(4 FWHM) + 1 for a FWHM of 3 px, as estimate_psf cuts it
    wings = [psf.moffat(fwhm=3.0, beta=beta, size=side) for beta in (1.5, 2.5, 4.765)]
    wings += [psf.gaussian(3.0, size=side), psf.airy(fwhm=3.0, size=side)]
    for k, kernel in enumerate(wings):
        kernel = kernel / kernel.sum()
        assert not _has_pedestal(kernel)
        floored = kernel + 0.35 / kernel.size  # a third of the light spread flat, as stars on a galaxy can leave it
        # (a Moffat of beta 1.5 still falls 2.7 times to the stamp's edge, even over such a floor)
        assert _has_pedestal(floored / floored.sum()) == (k > 0)
    noisy = wings[3] + np.random.default_rng(0).normal(0.0, 1e-4 * wings[3].max(), (side, side))
    assert not _has_pedestal(noisy)  # noise about a Gaussian's empty edge is no floor


def test_real_frames_psf_from_their_stars():
    """m51_kpno_b (CCD, stars on M51's disk): each star on its own sky, no floor; m51_dss1red (a crowded plate):
    the frame's one sky, since its stars' own skies would dig the PSF's lobes beyond what is accepted."""
    from astrodeconv.data import load_sky

    kpno = estimate_psf(load_sky("m51_kpno_b", None))
    r = np.hypot(*np.ogrid[-(kpno.psf.shape[0] // 2): kpno.psf.shape[0] // 2 + 1,
                           -(kpno.psf.shape[1] // 2): kpno.psf.shape[1] // 2 + 1])
    assert kpno.local_sky and kpno.psf[r > 3 * kpno.fwhm].sum() < 0.06  # 0.15 with the frame's one sky
    plate = estimate_psf(load_sky("m51_dss1red", None))
    assert not plate.local_sky and 2.0 < plate.fwhm < 3.0
