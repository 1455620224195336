"""The command line, run in-process: results, provenance, and a clear exit 2 on bad input."""

import json
import os
import re

import numpy as np
import pytest
from astropy.io import fits

from astrodeconv import metrics, psf
from astrodeconv.cli import main


@pytest.fixture
def clean_fits(tmp_path):
    """A 96 x 90 clean image (smooth galaxy + stars) with a WCS-like header."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[:96, :90]
    image = 500 + 3000 * np.exp(-((yy - 48) ** 2 + (xx - 45) ** 2) / 200.0)
    for r, c in rng.integers(10, 80, size=(12, 2)):
        image[r, c] += rng.uniform(2000, 8000)
    header = fits.Header({"OBJECT": "test field", "CTYPE1": "RA---TAN", "CTYPE2": "DEC--TAN", "CRVAL1": 10.5})
    path = tmp_path / "clean.fits"
    fits.writeto(path, image.astype(np.float32), header)
    return path


def _simulate(clean, tmp_path, *extra):
    obs = tmp_path / "obs.fits"
    assert main(["simulate", str(clean), "-o", str(obs), "--psf", "gaussian:fwhm=3", "--seed", "4", *extra]) == 0
    return obs


def test_psf_command_writes_unit_sum_psf_and_prints_fwhm(tmp_path, capsys):
    out = tmp_path / "psf.fits"
    assert main(["psf", "moffat", "--fwhm", "5", "--beta", "3", "-o", str(out)]) == 0
    assert "FWHM 5.0" in capsys.readouterr().out
    data = fits.getdata(out)
    assert data.sum() == pytest.approx(1.0, rel=1e-5)
    assert fits.getheader(out)["ADPSF"] == "moffat:fwhm=5.0,beta=3.0"


def test_simulate_then_deconvolve_improves_psnr_and_keeps_header(tmp_path, clean_fits):
    obs = _simulate(clean_fits, tmp_path)
    header = fits.getheader(obs)
    assert header["ADPSF"] == "gaussian:fwhm=3" and header["ADSIGMA"] == 0.01 and header["OBJECT"] == "test field"
    truth = fits.getdata(clean_fits).astype(float)
    truth /= truth.max()
    observed = fits.getdata(obs).astype(float)
    for method in ("wiener", "rl", "tv"):
        out = tmp_path / f"{method}.fits"
        assert main(["deconvolve", str(obs), "-o", str(out), "--method", method]) == 0
        restored = fits.getdata(out).astype(float)
        out_header = fits.getheader(out)
        assert out_header["ADMETHOD"] == method and out_header["CRVAL1"] == 10.5
        assert out_header["ADPSF"] == "gaussian:fwhm=3"  # taken from the observation's header
        before = metrics.psnr(observed, truth, data_range=1.0, border=8)
        after = metrics.psnr(restored, truth, data_range=1.0, border=8)
        # Single-pixel stars over a smooth galaxy: even the oracle gains only ~0.6 dB here.
        assert after > before + 0.3, (method, before, after)


def test_a_simulation_with_photon_noise_is_restored_with_its_own_gain(tmp_path, clean_fits, capsys):
    obs = _simulate(clean_fits, tmp_path, "--gain", "5000", "--sigma", "0.002")
    assert fits.getheader(obs)["ADGAIN"] == 5000 and "ADSIGMA" not in fits.getheader(obs)
    out = tmp_path / "out.fits"
    assert main(["deconvolve", str(obs), "-o", str(out), "--method", "restorer-universal"]) == 0
    printed = capsys.readouterr().out
    assert "photon noise at gain 5000 e-/unit" in printed and "measured" not in printed  # ADGAIN, not measured
    assert json.loads(fits.getheader(out)["ADPARAMS"])["gain"] == 5000


def test_explicit_params_are_used_and_recorded(tmp_path, clean_fits):
    obs = _simulate(clean_fits, tmp_path)
    out = tmp_path / "rl.fits"
    assert main(["deconvolve", str(obs), "-o", str(out), "--method", "rl", "--param", "num_iter=7", "--select", "none"]) == 0
    assert '"num_iter": 7' in fits.getheader(out)["ADPARAMS"]


def test_nan_pixels_are_masked_and_stay_nan(tmp_path, clean_fits):
    data = fits.getdata(clean_fits).astype(float)
    data[40:43, 30:33] = np.nan
    data[5, 5] = np.inf
    holed = tmp_path / "holed.fits"
    fits.writeto(holed, data)
    obs = _simulate(holed, tmp_path)
    out = tmp_path / "out.fits"
    assert main(["deconvolve", str(obs), "-o", str(out), "--method", "wiener"]) == 0
    restored = fits.getdata(out)
    assert np.isnan(restored[40:43, 30:33]).all() and np.isnan(restored[5, 5])
    assert np.isfinite(restored).sum() == restored.size - 10


def test_a_mask_over_the_whole_frame_and_stray_star_options_are_refused(tmp_path, capsys, clean_fits):
    obs = _simulate(clean_fits, tmp_path)
    everything = _write(tmp_path / "all.fits", np.ones(fits.getdata(obs).shape, np.uint8))
    for command in (["deconvolve", str(obs), "-o", str(tmp_path / "o.fits")],
                    ["psf", "--from-stars", str(obs), "-o", str(tmp_path / "p.fits")]):
        assert main([*command, "--mask", str(everything)]) == 2
        assert "without its masked pixels has no finite pixel" in capsys.readouterr().err
    for stray in (["--mask", str(everything)], ["--keep-cold"], ["--saturate", "6e4"]):
        assert main(["psf", "gaussian", "--fwhm", "3", "-o", str(tmp_path / "g.fits"), *stray]) == 2
        assert "--from-stars only" in capsys.readouterr().err


def _write(path, data):
    fits.writeto(path, data)
    return path


BAD_INPUTS = {
    "missing file": (lambda d: d / "nope.fits", "file not found"),
    "not FITS": (lambda d: (d / "text.fits").write_text("hello") and d / "text.fits", "cannot read"),
    "no image data": (lambda d: fits.PrimaryHDU().writeto(d / "empty.fits") or d / "empty.fits", "no HDU holds image data"),
    "3-D cube": (lambda d: _write(d / "cube.fits", np.ones((3, 70, 70))), r"\(3, 70, 70\).*pick one plane"),
    "all zero": (lambda d: _write(d / "zero.fits", np.zeros((70, 70))), "constant"),
    "constant": (lambda d: _write(d / "const.fits", np.full((70, 70), 7.0)), "constant"),
    "all NaN": (lambda d: _write(d / "nan.fits", np.full((70, 70), np.nan)), "NaN"),
}


@pytest.mark.parametrize("case", BAD_INPUTS)
@pytest.mark.parametrize("command", ["simulate", "deconvolve"])
def test_bad_input_files_exit_2_with_a_message(tmp_path, capsys, case, command):
    make, message = BAD_INPUTS[case]
    path = make(tmp_path)
    out = tmp_path / "out.fits"
    assert main([command, str(path), "-o", str(out), "--psf", "gaussian:fwhm=3"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("astrodeconv: error:") and err.count("\n") == 1
    assert re.search(message, err), err
    assert not out.exists()


@pytest.mark.parametrize(
    "psf_args, message",
    [
        (["--psf", "gaussian:fwhm=40"], "larger than the image"),
        (["--psf", "NANPSF"], "NaN"),
        (["--psf", "NEGPSF"], "negative"),
        (["--psf", "ZEROPSF"], "positive sum"),
        (["--method", "magic"], "unknown method 'magic'; available: wiener"),
        (["--method", "rl", "--param", "iterations=5"], r"no parameter\(s\) \['iterations'\]; it takes: num_iter, precision"),
        (["--param", "balance"], "KEY=VALUE"),
    ],
)
def test_bad_psf_method_or_parameter_exit_2(tmp_path, capsys, clean_fits, psf_args, message):
    obs = _simulate(clean_fits, tmp_path)
    bad_psfs = {"NANPSF": np.array([[np.nan, 1.0], [1.0, 1.0]]), "NEGPSF": np.array([[-1.0, 1.0], [1.0, 1.0]]),
                "ZEROPSF": np.zeros((3, 3))}
    args = []
    for arg in psf_args:
        if arg in bad_psfs:
            arg = str(_write(tmp_path / f"{arg}.fits", bad_psfs[arg]))
        args.append(arg)
    out = tmp_path / "out.fits"
    assert main(["deconvolve", str(obs), "-o", str(out), *args]) == 2
    err = capsys.readouterr().err
    assert re.search(message, err), err
    assert not out.exists()


def test_existing_output_is_never_overwritten_without_flag(tmp_path, capsys, clean_fits):
    obs = _simulate(clean_fits, tmp_path)
    before = obs.read_bytes()
    assert main(["simulate", str(clean_fits), "-o", str(obs), "--psf", "gaussian:fwhm=3", "--seed", "9"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert obs.read_bytes() == before
    assert main(["simulate", str(clean_fits), "-o", str(obs), "--psf", "gaussian:fwhm=3", "--seed", "9", "--overwrite"]) == 0
    assert obs.read_bytes() != before


def test_missing_output_folder_and_missing_psf_card(tmp_path, capsys, clean_fits):
    assert main(["simulate", str(clean_fits), "-o", str(tmp_path / "no" / "obs.fits")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["deconvolve", str(clean_fits), "-o", str(tmp_path / "out.fits")]) == 2
    assert "--psf" in capsys.readouterr().err


def test_usage_errors_return_2_on_one_line(capsys):
    assert main(["deconvolve"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("astrodeconv: error: ") and "required" in err and "--help" in err


def test_train_then_deconvolve_with_the_trained_model(tmp_path, clean_fits, capsys):
    obs = _simulate(clean_fits, tmp_path)
    model_dir = tmp_path / "model"
    args = ["train", "--images", str(clean_fits), "--model", "cnn1", "-o", str(model_dir), "--psf", "gaussian:fwhm=3",
            "--samples", "400", "--val-samples", "100", "--epochs", "2", "--optimizer", "adam", "--lr", "0.001"]
    assert main(args) == 0
    assert {"config.json", "weights.pt", "meta.json"} <= {p.name for p in model_dir.iterdir()}
    assert main(args) == 2  # the folder is not empty: --resume or another folder
    assert "--resume" in capsys.readouterr().err
    whole, tiled = tmp_path / "whole.fits", tmp_path / "tiled.fits"
    for out, extra in ((whole, []), (tiled, ["--tile", "16"])):
        assert main(["deconvolve", str(obs), "-o", str(out), "--method", "cnn1", "--model", str(model_dir), *extra]) == 0
    np.testing.assert_allclose(fits.getdata(tiled), fits.getdata(whole), atol=1e-5)
    assert fits.getheader(whole)["ADMETHOD"] == "cnn1"
    assert main(["deconvolve", str(obs), "-o", str(tmp_path / "x.fits"), "--method", "wiener", "--tile", "16"]) == 2
    assert "networks only" in capsys.readouterr().err


def test_oracle_selection_uses_the_truth_in_the_observations_units(tmp_path, clean_fits):
    obs = _simulate(clean_fits, tmp_path)
    out = tmp_path / "oracle.fits"
    assert main(["deconvolve", str(obs), "-o", str(out), "--method", "wiener", "--select", "oracle",
                 "--truth", str(clean_fits)]) == 0
    truth = fits.getdata(clean_fits).astype(float)
    truth /= truth.max()
    restored = fits.getdata(out).astype(float)
    best = max(metrics.psnr(methods_restore(fits.getdata(obs).astype(float), b), truth, 1.0, border=32)
               for b in np.logspace(-3, 5, 100))
    assert metrics.psnr(restored, truth, 1.0, border=32) == pytest.approx(best, abs=0.01)


def methods_restore(y, balance):
    """Wiener as ``deconvolve`` runs it on a frame: the image mirrored by half the PSF's side, the result cropped."""
    from astrodeconv import methods

    h = psf.gaussian(3.0)
    pad = max(h.shape) // 2
    return methods.restore(np.pad(y, pad, mode="reflect"), h, "wiener", balance=balance)[pad:-pad, pad:-pad]


def test_outputs_have_fresh_checksums_and_ordinary_permissions(tmp_path, clean_fits):
    data = fits.getdata(clean_fits)
    summed = tmp_path / "summed.fits"
    fits.writeto(summed, data, fits.getheader(clean_fits), checksum=True)
    obs = tmp_path / "obs.fits"
    assert main(["simulate", str(summed), "-o", str(obs), "--psf", "gaussian:fwhm=3"]) == 0
    header = fits.getheader(obs)
    assert "CHECKSUM" not in header and "DATASUM" not in header
    umask = os.umask(0)
    os.umask(umask)
    assert obs.stat().st_mode & 0o777 == 0o666 & ~umask


def test_noiseless_simulation_then_auto_selection_estimates_sigma(tmp_path, clean_fits):
    import json

    from astrodeconv import selection
    from astrodeconv.noise import estimate_sigma

    obs, out = tmp_path / "obs.fits", tmp_path / "out.fits"
    assert main(["simulate", str(clean_fits), "-o", str(obs), "--psf", "gaussian:fwhm=3", "--sigma", "0"]) == 0
    assert fits.getheader(obs)["ADSIGMA"] == 0  # the card says "no noise": it is not a usable noise level
    assert main(["deconvolve", str(obs), "-o", str(out), "--method", "wiener"]) == 0
    y = fits.getdata(obs).astype(np.float64)
    sigma = estimate_sigma(y)
    assert 0 < sigma < 1e-3  # float32 rounding of a noiseless image, not 0 and not the card's value
    expected = selection.select_auto("wiener", y, psf.gaussian(3.0), sigma=sigma)["balance"]
    chosen = json.loads(fits.getheader(out)["ADPARAMS"])["balance"]
    assert chosen == pytest.approx(expected, rel=1e-9)
    assert chosen < selection.select_auto("wiener", y, psf.gaussian(3.0), sigma=0.01)["balance"]


def test_the_output_says_when_the_frame_was_mirrored_beyond_its_edges(tmp_path, clean_fits):
    obs = _simulate(clean_fits, tmp_path)
    for method, mirrored in (("rl", True), ("restorer-universal", False)):
        out = tmp_path / f"{method}.fits"
        assert main(["deconvolve", str(obs), "-o", str(out), "--method", method, "--psf", "gaussian:fwhm=3"]) == 0
        header = fits.getheader(out)
        assert ("ADEDGES" in header) is mirrored
        if mirrored:
            assert "mirrored by" in header["ADEDGES"] and "zero" in header["ADEDGES"]
