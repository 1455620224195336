"""The shipped restorer-universal: the default of `deconvolve`, streamed, on every sky image, in the reports."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from astropy.io import fits

from astrodeconv import metrics
from astrodeconv.experiments import folds as fold_tools
from astrodeconv.experiments import grid, table1
from astrodeconv.experiments.protocols import load_protocol
from astrodeconv.cli import main
from astrodeconv.forward import observe
from astrodeconv.methods import restore
from astrodeconv.psf import airy_paper

SKY = ["horsehead_dss", "m101_dss1", "m51_dss1red", "m51_kpno_b", "m67_dss1", "m81_dss1", "sdss_g_frame",
       "starfield_195954_dss1", "starfield_nsv193_dss1", "starfield_nsv60_dss1", "starfield_ukst",
       "supercosmos_2012_sr", "supercosmos_2017_sr", "supercosmos_2018_sr", "supercosmos_2027_sr",
       "supercosmos_2028_sr", "supercosmos_2042_sr", "supercosmos_2051_sr", "supercosmos_2108_sr"]


@pytest.fixture
def sky_fits(tmp_path, sky):
    """A 200 x 180 crop of the KPNO M51 frame in its own units (counts with a sky level), WCS-like header."""
    image = sky("m51_kpno_b")[150:350, 160:340] * 20000.0 + 300.0
    path = tmp_path / "clean.fits"
    fits.writeto(path, image.astype(np.float32), fits.Header({"OBJECT": "M51", "CRVAL1": 202.47}))
    return path


def test_deconvolve_defaults_to_the_universal_restorer(tmp_path, sky_fits):
    obs = tmp_path / "obs.fits"
    assert main(["simulate", str(sky_fits), "-o", str(obs), "--psf", "moffat:fwhm=4", "--sigma", "0.01"]) == 0
    truth = fits.getdata(sky_fits).astype(float)
    truth /= truth.max()
    observed = fits.getdata(obs).astype(float)
    before = metrics.psnr(observed, truth, 1.0, border=8)
    out = tmp_path / "out.fits"
    assert main(["deconvolve", str(obs), "-o", str(out)]) == 0
    header = fits.getheader(out)
    assert header["ADMETHOD"] == "restorer-universal" and header["CRVAL1"] == 202.47
    assert '"sigma": 0.01' in header["ADPARAMS"]  # from the ADSIGMA card written by simulate
    assert metrics.psnr(fits.getdata(out).astype(float), truth, 1.0, border=8) > before + 1.0
    # Without the ADSIGMA card the noise level is estimated from the image: about as good.
    with fits.open(obs) as hdul:
        del hdul[0].header["ADSIGMA"]
        hdul.writeto(tmp_path / "nosigma.fits")
    assert main(["deconvolve", str(tmp_path / "nosigma.fits"), "-o", str(tmp_path / "est.fits")]) == 0
    assert metrics.psnr(fits.getdata(tmp_path / "est.fits").astype(float), truth, 1.0, border=8) > before + 1.0
    estimated = float(fits.getheader(tmp_path / "est.fits")["ADPARAMS"].split('"sigma": ')[1].split("}")[0].split(",")[0])
    assert 0.008 < estimated < 0.012  # the estimate, recorded


def test_streamed_restorer_equals_in_memory(tmp_path, sky_fits):
    obs = tmp_path / "obs.fits"
    assert main(["simulate", str(sky_fits), "-o", str(obs), "--psf", "gaussian:fwhm=3"]) == 0
    whole, streamed = tmp_path / "whole.fits", tmp_path / "streamed.fits"
    assert main(["deconvolve", str(obs), "-o", str(whole), "--sigma", "0.01"]) == 0
    assert main(["deconvolve", str(obs), "-o", str(streamed), "--sigma", "0.01", "--stream", "--tile", "64"]) == 0
    np.testing.assert_allclose(fits.getdata(streamed), fits.getdata(whole), atol=2e-4 * float(fits.getdata(whole).max()))


@pytest.mark.parametrize("name", SKY)
def test_every_sky_image_comes_out_better_than_observed_at_the_paper_setting(sky, name):
    """The acceptance check on a centred 256 crop of each image (the full images: benchmarks/sky_check.py)."""
    clean = sky(name)
    n = 256
    r0, c0 = (clean.shape[0] - n) // 2, (clean.shape[1] - n) // 2
    x = clean[r0 : r0 + n, c0 : c0 + n] / clean[r0 : r0 + n, c0 : c0 + n].max()
    y = observe(x, airy_paper(), sigma=0.01, rng=7)
    estimate = restore(y, airy_paper(), "restorer-universal")  # sigma estimated
    assert metrics.psnr(estimate, x, 1.0, border=32) > metrics.psnr(y, x, 1.0, border=32)


def test_grid_rows_and_table(shared_dir):
    protocol = load_protocol("grid").quick_version()
    # An Airy of the paper's width, where the universal model beats the oracle Wiener filter (it does not
    # at FWHM 3 px with little noise: docs/results/grid.md).
    protocol = dataclasses.replace(protocol, grid_psfs={"airy 6": "airy:fwhm=6,size=65"}, grid_sigmas=[0.003, 0.01])
    rows = grid.run(protocol, shared_dir / "data" / "sky", methods=["none", "wiener", "restorer-universal"],
                    progress=False)
    assert len(rows) == 2 * (1 + 2 + 2)  # per cell: none, wiener oracle/auto, restorer given / estimated sigma
    by = {(r["sigma"], r["method"], r["selection"]): r["psnr_db"] for r in rows}
    for sigma in (0.003, 0.01):
        assert by[(sigma, "restorer-universal", "-")] > by[(sigma, "wiener", "oracle")]
        assert by[(sigma, "restorer-universal", grid.ESTIMATED)] > by[(sigma, "none", "-")]
    table = grid.render_table(rows, protocol)
    assert "beats `wiener (oracle)` in 2 of 2" in table
    merged = grid.merge(rows, [dict(rows[0], psnr_db=0.0)])
    assert len(merged) == len(rows) and merged[0]["psnr_db"] == 0.0  # replaced in place


def test_psf_mismatch_includes_the_universal_restorer(shared_dir):
    from astrodeconv.experiments import mismatch

    protocol = load_protocol("psf-mismatch").quick_version()
    protocol = dataclasses.replace(protocol, images=protocol.images[:1],
                                   psf_given={"exact": protocol.psf, "gaussian": "gaussian:fwhm=6.507"})
    rows = mismatch.run(protocol, shared_dir / "data" / "sky", progress=False, methods=["none", "restorer-universal"])
    assert [(r["psf_given"], r["method"]) for r in rows] == [
        (mismatch.BUILT_IN, "none"), ("exact", "restorer-universal"), ("gaussian", "restorer-universal")]
    assert rows[1]["psnr_db"] > rows[0]["psnr_db"] + 1.0


def test_poisson_gaussian_noise_with_the_estimated_sigma(sky):
    """Photon noise (400 photons per unit of the maximum) on top of sigma 0.005, Moffat PSF, sigma not given."""
    from astrodeconv.psf import moffat
    from astrodeconv.selection import select

    x = sky("m51_kpno_b")[128:384, 128:384]
    x = x / x.max()
    h = moffat(5.0)
    y = observe(x, h, sigma=0.005, rng=3, gain=400.0)
    restored = metrics.psnr(restore(y, h, "restorer-universal"), x, 1.0, border=32)
    wiener = metrics.psnr(restore(y, h, "wiener", **select("wiener", y, h, "auto")), x, 1.0, border=32)
    assert restored > metrics.psnr(y, x, 1.0, border=32) + 5.0  # 38.8 -> 47.6 dB when written
    assert restored > wiener + 5.0  # the automatic Wiener filter assumes white noise: 34.3 dB


def test_universal_folds_train_with_extra_images_and_serve_the_reports(tmp_path, shared_dir):
    """A leave-one-out restorer-universal fold: trained on the other images plus ``extra_images``, then used
    for its held-out image by Table I, the grid and the PSF-mismatch report (the shipped model elsewhere)."""
    from astrodeconv.experiments import mismatch
    from astrodeconv.nn.store import load_model

    data_dir = shared_dir / "data" / "sky"
    path = tmp_path / "tiny.toml"
    path.write_text(
        'kind = "table1"\nname = "tiny"\ndescription = "tiny"\nimages = ["m101_dss1", "m51_dss1red"]\npsf = "airy-paper"\n'
        'boundary = "zero"\nsigma = 0.01\nseed = 1\ncrop = 128\nborder = 16\nclassical = []\nselections = []\n'
        'networks = ["restorer-universal"]\n'
        '[restorer_universal_training]\nsetting = "universal"\nextra_images = ["starfield_ukst"]\nepochs = 1\n'
        'scenes = 2\npatches = 2\nval_scenes = 2\nout_size = 8\nbatch = 4\nthreads = 1\n'
        'model_kwargs = {features = 4, depth = 3, kernel = 15}\n'
    )
    protocol = load_protocol(path)
    folds = tmp_path / "folds"
    table1.train_folds(protocol, data_dir, folds, images=["m51_dss1red"], progress=False)
    fold = fold_tools.fold_dir(folds, "restorer-universal", "m51_dss1red")
    _, config, meta = load_model(fold)
    assert [r["name"] for r in meta["training_images"]] == ["m101_dss1", "starfield_ukst"]
    assert meta["held_out"] == "m51_dss1red" and config.model_kwargs["depth"] == 3

    assert fold_tools.held_out_model(folds, "restorer-universal", "m51_dss1red") == {"model": str(fold)}
    assert fold_tools.held_out_model(folds, "restorer-universal", "m101_dss1") == {}
    plan = {e["label"]: e["params"] for e in table1.method_plan(protocol, "m51_dss1red", folds, None)}
    assert plan["restorer-universal"] == {"model": str(fold), "sigma": 0.01}

    cell = dataclasses.replace(load_protocol("grid").quick_version(), images=protocol.images, crop=96,
                               grid_psfs={"airy 6": "airy:fwhm=6,size=65"}, grid_sigmas=[0.01])
    rows = grid.run(cell, data_dir, methods=["restorer-universal"], progress=False, folds=folds)
    assert {(r["image"], r["params"].get("model")) for r in rows} == {("m51_dss1red", str(fold)), ("m101_dss1", None)}
    wrong = dataclasses.replace(load_protocol("psf-mismatch").quick_version(), images=["m51_dss1red"],
                                crop=96, psf_given={"exact": "airy:fwhm=6.507,size=65"})
    rows = mismatch.run(wrong, data_dir, progress=False, methods=["restorer-universal"], folds=folds)
    assert [r["params"].get("model") for r in rows] == [str(fold)]
