"""Files as instruments write them, end to end through the command line: SATURATE, masks, SCI/ERR/DQ."""

from __future__ import annotations

import json

import numpy as np
import pytest
from astropy.io import fits

pytest.importorskip("galsim")

from astrodeconv.cli import main  # noqa: E402
from astrodeconv.experiments import instrument  # noqa: E402
from astrodeconv.experiments.photometry import ring_depth  # noqa: E402
from astrodeconv.psf import fwhm  # noqa: E402
from astrodeconv.noise import estimate_sigma  # noqa: E402


@pytest.fixture(scope="module")
def frame():
    return instrument.frame("stars", "ground", n=256, seed=7)


def _write(path, frame, cards=True):
    header = fits.Header(frame.header_cards() if cards else {"BUNIT": "adu"})
    header["OBJECT"] = "field"
    fits.writeto(path, frame.adu, header)
    return path


def _saturated_stars(frame):
    stars = frame.sources[frame.sources[:, 3] == 1]
    level = frame.detector.saturate
    keep = [s for s in stars if frame.adu[int(round(s[1])), int(round(s[0]))] >= level and 20 < s[0] < 236 and 20 < s[1] < 236]
    assert keep, "the frame has saturated stars"
    return np.array(keep)


@pytest.mark.parametrize("how", ["card", "flag"])
def test_saturated_stars_do_not_ring(tmp_path, frame, capsys, how):
    obs = _write(tmp_path / "obs.fits", frame, cards=how == "card")
    fits.writeto(tmp_path / "psf.fits", frame.psf)
    common = ["--psf", str(tmp_path / "psf.fits"), "--method", "rl"]
    flag = [] if how == "card" else ["--saturate", str(frame.detector.saturate)]
    assert main(["deconvolve", str(obs), "-o", str(tmp_path / "out.fits"), *common, *flag]) == 0
    assert "saturated pixels" in capsys.readouterr().out
    fits.writeto(tmp_path / "plain.fits", frame.adu)  # the same pixels, no card: restored as they are
    assert main(["deconvolve", str(tmp_path / "plain.fits"), "-o", str(tmp_path / "rings.fits"), *common,
                 "--no-point-sources"]) == 0
    with fits.open(tmp_path / "out.fits") as hdul:
        restored, flags = frame.electrons(hdul[0].data), hdul["MASK"].data
        assert hdul[0].header["OBJECT" if how == "card" else "BUNIT"]
    assert np.count_nonzero(flags == 2) == np.count_nonzero(frame.adu >= frame.detector.saturate)
    ringing = frame.electrons(fits.getdata(tmp_path / "rings.fits"))
    width = fwhm(frame.psf)
    observed = frame.electrons(frame.adu)
    for star in _saturated_stars(frame):
        depth, before = ring_depth(restored, star, width), ring_depth(ringing, star, width)
        assert depth < before and depth <= ring_depth(observed, star, width) + 0.06


def test_a_bad_row_is_masked_not_smeared(tmp_path, frame):
    fits.writeto(tmp_path / "psf.fits", frame.psf)
    clean = _write(tmp_path / "clean.fits", frame)
    broken = frame.adu.copy()
    broken[100] = -1.0  # a dead row, as the KPNO frame has
    fits.writeto(tmp_path / "broken.fits", broken, fits.Header(frame.header_cards()))
    flags = np.zeros(broken.shape, np.uint8)
    flags[100] = 1
    fits.writeto(tmp_path / "mask.fits", flags)
    common = ["--psf", str(tmp_path / "psf.fits"), "--method", "rl"]
    for src, out, extra in ((clean, "a.fits", []), (tmp_path / "broken.fits", "b.fits", ["--keep-cold"]),
                            (tmp_path / "broken.fits", "c.fits", ["--mask", str(tmp_path / "mask.fits")]),
                            (tmp_path / "broken.fits", "d.fits", [])):
        assert main(["deconvolve", str(src), "-o", str(tmp_path / out), *common, *extra]) == 0
    reference, smeared, masked, found = (fits.getdata(tmp_path / n) for n in ("a.fits", "b.fits", "c.fits", "d.fits"))
    near = np.r_[90:100, 101:111]
    assert np.isnan(masked[100]).all() and not np.isnan(masked[near]).any()
    error = lambda image: np.median(np.abs(image[near] - reference[near]))  # noqa: E731
    assert error(masked) < 0.2 * error(smeared)
    assert fits.getdata(tmp_path / "c.fits", "MASK")[100].min() == 1
    # without the mask the dead row is found as cold pixels, and masked as the mask would
    assert np.isnan(found[100]).all() and np.isnan(found).sum() == found.shape[1]
    assert fits.getdata(tmp_path / "d.fits", "MASK")[100].min() == 1
    assert error(found) < 0.2 * error(smeared)


def test_sci_err_dq_files_are_read_and_written_as_such(tmp_path, frame, capsys):
    dq = np.zeros(frame.adu.shape, np.int32)
    dq[:, 50] = 4  # a hot column
    err = np.full(frame.adu.shape, 17.0, np.float32)
    primary = fits.PrimaryHDU(header=fits.Header({"TELESCOP": "SIM", "INSTRUME": "GALSIM"}))
    sci = fits.ImageHDU(frame.adu, header=fits.Header({**frame.header_cards(), "OBJECT": "field"}), name="SCI")
    fits.HDUList([primary, sci, fits.ImageHDU(err, name="ERR"), fits.ImageHDU(dq, name="DQ")]).writeto(tmp_path / "i.fits")
    fits.writeto(tmp_path / "psf.fits", frame.psf)
    out = tmp_path / "o.fits"
    assert main(["deconvolve", str(tmp_path / "i.fits"), "-o", str(out), "--psf", str(tmp_path / "psf.fits"),
                 "--method", "restorer-universal"]) == 0
    assert "ERR extension" in capsys.readouterr().out
    with fits.open(out) as hdul:
        assert hdul[0].data is None and hdul[0].header["TELESCOP"] == "SIM"
        assert hdul["SCI"].header["OBJECT"] == "field" and hdul["SCI"].header["ADMETHOD"] == "restorer-universal"
        assert np.isnan(hdul["SCI"].data[:, 50]).all() and np.isfinite(hdul["SCI"].data[:, 51]).all()
        assert (hdul["DQ"].data == dq).all() and (hdul["MASK"].data[:, 50] & 1).all()
        assert '"sigma": 0.000259' in hdul["SCI"].header["ADPARAMS"]  # 17 ADU of a 65535 maximum


def test_masks_need_the_image_in_memory(tmp_path, frame, capsys):
    obs = _write(tmp_path / "obs.fits", frame)
    assert main(["deconvolve", str(obs), "-o", str(tmp_path / "o.fits"), "--psf", "gaussian:fwhm=5", "--method", "cnn3",
                 "--stream", "--mask", "DQ"]) == 2
    assert "in memory only" in capsys.readouterr().err


def test_saturated_stars_keep_their_flux(tmp_path, frame):
    obs = _write(tmp_path / "obs.fits", frame)
    fits.writeto(tmp_path / "psf.fits", frame.psf)
    assert main(["deconvolve", str(obs), "-o", str(tmp_path / "out.fits"), "--psf", str(tmp_path / "psf.fits"),
                 "--method", "rl"]) == 0
    restored, observed = frame.electrons(fits.getdata(tmp_path / "out.fits")), frame.electrons(frame.adu)
    noise, width = estimate_sigma(observed), fwhm(frame.psf)
    yy, xx = np.indices(restored.shape)
    for star in _saturated_stars(frame):
        inside = np.hypot(xx - star[0], yy - star[1]) < 3 * width
        assert abs(restored[inside].sum() / frame.truth[inside].sum() - 1) < 0.03
        # rings compared in the observation's noise (the restored peak is a point, the observed one clipped)
        assert ring_depth(restored, star, width, noise) <= ring_depth(observed, star, width, noise) + 0.5


def _params(path):
    import json

    return json.loads(fits.getheader(path)["ADPARAMS"])


def test_gain_adds_photon_noise_to_the_data_fit(tmp_path, frame, capsys):
    import re

    fits.writeto(tmp_path / "psf.fits", frame.psf)
    cards = {k: v for k, v in frame.header_cards().items() if k != "GAIN"}
    fits.writeto(tmp_path / "plain.fits", frame.adu, fits.Header(cards))
    fits.writeto(tmp_path / "gain.fits", frame.adu, fits.Header({**cards, "GAIN": frame.detector.gain}))
    common = ["--psf", str(tmp_path / "psf.fits"), "--method", "wiener", "--sigma", "16"]
    runs = {"plain": ["plain.fits", "--gain", "inf"], "card": ["gain.fits"],
            "flag": ["plain.fits", "--gain", str(frame.detector.gain)]}
    adu = frame.adu.astype(np.float64)
    expected = np.sqrt(16.0**2 + np.mean(np.maximum(adu - np.median(adu), 0)) / frame.detector.gain)
    for name, (src, *extra) in runs.items():
        assert main(["deconvolve", str(tmp_path / src), "-o", str(tmp_path / f"{name}.out.fits"), *common, *extra]) == 0
        found = re.search(r"photon noise at gain 2 e-/unit over a sky noise of 16: the data fit matches a mean noise "
                          r"of ([0-9.]+)", capsys.readouterr().out)
        assert (found is None) == (name == "plain")
        if found:  # the stars' photon noise, over the sky's, is what the data fit matches
            assert abs(float(found.group(1)) / expected - 1) < 1e-3 and expected > 16.5


def test_without_a_gain_card_the_gain_is_measured_on_the_frame(tmp_path, frame, capsys):
    """No GAIN card: the frame's photon noise gives the gain (the restorer's local noise); --gain inf: none."""
    import re

    fits.writeto(tmp_path / "psf.fits", frame.psf)
    cards = {k: v for k, v in frame.header_cards().items() if k not in ("GAIN", "RDNOISE")}
    fits.writeto(tmp_path / "bare.fits", frame.adu, fits.Header(cards))
    _write(tmp_path / "full.fits", frame)
    common = ["--psf", str(tmp_path / "psf.fits"), "--method", "restorer-universal"]
    assert main(["deconvolve", str(tmp_path / "bare.fits"), "-o", str(tmp_path / "measured.fits"), *common]) == 0
    found = re.search(r"no GAIN card: .* at a gain of ([0-9.]+) e-/unit \(measured", capsys.readouterr().out)
    assert found and 0.5 < float(found.group(1)) / frame.detector.gain < 2.0
    assert main(["deconvolve", str(tmp_path / "full.fits"), "-o", str(tmp_path / "card.fits"), *common]) == 0
    assert "measured" not in capsys.readouterr().out  # a card is the detector's word
    ratio = _params(tmp_path / "measured.fits")["gain"] / _params(tmp_path / "card.fits")["gain"]
    assert ratio == pytest.approx(float(found.group(1)) / frame.detector.gain, rel=5e-3)  # the note has 3 digits
    assert main(["deconvolve", str(tmp_path / "bare.fits"), "-o", str(tmp_path / "none.fits"), *common,
                 "--gain", "inf"]) == 0
    assert "gain" not in _params(tmp_path / "none.fits") and "no GAIN card" not in capsys.readouterr().out
    assert main(["deconvolve", str(tmp_path / "full.fits"), "-o", str(tmp_path / "none2.fits"), *common,
                 "--gain", "inf"]) == 0  # over the card too
    assert "gain" not in _params(tmp_path / "none2.fits")


def test_read_noise_is_the_least_noise(tmp_path, frame, capsys):
    fits.writeto(tmp_path / "psf.fits", frame.psf)
    fits.writeto(tmp_path / "obs.fits", frame.adu, fits.Header({"GAIN": 2.0, "RDNOISE": 200.0}))
    assert main(["deconvolve", str(tmp_path / "obs.fits"), "-o", str(tmp_path / "o.fits"), "--psf",
                 str(tmp_path / "psf.fits"), "--method", "restorer-universal"]) == 0
    assert "below the read noise" in capsys.readouterr().out
    assert abs(_params(tmp_path / "o.fits")["sigma"] * frame.adu.max() - 100.0) < 0.1  # 200 e- at 2 e-/ADU
    fits.writeto(tmp_path / "low.fits", frame.adu, fits.Header({"GAIN": 2.0}))
    assert main(["deconvolve", str(tmp_path / "low.fits"), "-o", str(tmp_path / "p.fits"), "--psf",
                 str(tmp_path / "psf.fits"), "--method", "restorer-universal", "--read-noise", "200"]) == 0
    assert _params(tmp_path / "p.fits")["sigma"] == _params(tmp_path / "o.fits")["sigma"]
    assert main(["deconvolve", str(tmp_path / "low.fits"), "-o", str(tmp_path / "q.fits"), "--psf",
                 str(tmp_path / "psf.fits"), "--gain", "-1"]) == 2
    assert "--gain" in capsys.readouterr().err


def test_bright_stars_are_fitted_and_do_not_ring(tmp_path, frame, capsys):
    from astrodeconv.experiments.photometry import detections, spurious
    from astrodeconv.noise import estimate_sigma

    obs = _write(tmp_path / "obs.fits", frame)
    fits.writeto(tmp_path / "psf.fits", frame.psf)
    common = ["--psf", str(tmp_path / "psf.fits"), "--method", "wiener"]
    assert main(["deconvolve", str(obs), "-o", str(tmp_path / "points.fits"), *common]) == 0
    assert "point sources above 50 sigma fitted with the PSF" in capsys.readouterr().out
    assert main(["deconvolve", str(obs), "-o", str(tmp_path / "plain.fits"), *common, "--no-point-sources"]) == 0
    observed = frame.electrons(frame.adu)
    noise, width = estimate_sigma(observed), fwhm(frame.psf)
    false = {name: len(spurious(detections(frame.electrons(fits.getdata(tmp_path / f"{name}.fits")), noise, width),
                                frame.sources, width)) for name in ("points", "plain")}
    # a Wiener filter's rings around bright stars are detected as sources (20 here); fitted and put back as points,
    # they are not (0)
    assert false["points"] <= max(2, 0.1 * false["plain"]) and false["plain"] >= 15


def test_a_noise_map_sets_the_noise_from_a_file_or_a_variance_extension(tmp_path, frame, capsys):
    fits.writeto(tmp_path / "psf.fits", frame.psf)
    sigma = np.full(frame.adu.shape, 20.0, np.float32)
    fits.writeto(tmp_path / "noise.fits", sigma)
    fits.HDUList([fits.PrimaryHDU(frame.adu), fits.ImageHDU(sigma**2, name="VAR")]).writeto(tmp_path / "var.fits")
    common = ["--psf", str(tmp_path / "psf.fits"), "--method", "restorer-universal"]
    for name, src, extra in (("file", tmp_path / "var.fits", ["--noise-map", str(tmp_path / "noise.fits")]),
                             ("hdu", tmp_path / "var.fits", ["--noise-map", "VAR"])):
        assert main(["deconvolve", str(src), "-o", str(tmp_path / f"{name}.fits"), *common, *extra]) == 0
        assert "median of the noise map" in capsys.readouterr().out
        assert abs(_params(tmp_path / f"{name}.fits")["sigma"] * frame.adu.max() - 20.0) < 0.01
    fits.writeto(tmp_path / "small.fits", sigma[:10, :10])
    assert main(["deconvolve", str(tmp_path / "var.fits"), "-o", str(tmp_path / "x.fits"), *common,
                 "--noise-map", str(tmp_path / "small.fits")]) == 2
    assert "--noise-map" in capsys.readouterr().err


def test_a_psf_of_the_wrong_width_is_dilated_and_written(tmp_path, frame, capsys):
    obs = _write(tmp_path / "obs.fits", frame)
    fits.writeto(tmp_path / "wide.fits", frame.wide_psf)
    common = ["--psf", str(tmp_path / "wide.fits"), "--method", "wiener"]
    assert main(["deconvolve", str(obs), "-o", str(tmp_path / "out.fits"), *common]) == 0
    assert "narrower than the PSF given" in capsys.readouterr().out
    with fits.open(tmp_path / "out.fits") as hdul:
        used, cards = hdul["PSF"].data, hdul["PSF"].header
        assert "dilated" in hdul[0].header["ADPSF"]
    assert abs(cards["ADPSFDIL"] * 1.15 - 1) < 0.02 and abs(cards["ADFWHM"] / fwhm(frame.psf) - 1) < 0.03
    assert np.isclose(used.sum(), 1.0) and abs(fwhm(used) / fwhm(frame.psf) - 1) < 0.03
    assert main(["deconvolve", str(obs), "-o", str(tmp_path / "kept.fits"), *common, "--keep-psf"]) == 0
    assert "narrower" not in capsys.readouterr().out
    with fits.open(tmp_path / "kept.fits") as hdul:
        assert "PSF" not in hdul
    # the dilated PSF restores the stars' surroundings as the true one does; the wide one over-deconvolves them
    from astrodeconv.experiments.photometry import psnr_without_stars

    stars = frame.sources[frame.sources[:, 3] == 1, :2]
    score = {name: psnr_without_stars(frame.electrons(fits.getdata(tmp_path / name)), frame.truth, stars,
                                      fwhm(frame.psf), 20) for name in ("out.fits", "kept.fits")}
    assert score["out.fits"] > score["kept.fits"] + 3.0


def test_an_err_map_with_photon_noise_gives_the_restorer_the_gain(tmp_path, frame, capsys):
    """Without a GAIN card, the photon noise in an ERR map is the gain: the same restoration as with the card."""
    d = frame.detector
    variance = np.clip(frame.adu - d.bias, 0, None) / d.gain + (d.read_noise / d.gain) ** 2  # ADU^2
    fits.writeto(tmp_path / "psf.fits", frame.psf)
    for name, cards, err in (("card.fits", frame.header_cards(), None),
                             ("err.fits", {"SATURATE": d.saturate}, np.sqrt(variance).astype(np.float32))):
        hdus = [fits.PrimaryHDU(), fits.ImageHDU(frame.adu, header=fits.Header(cards), name="SCI")]
        if err is not None:
            hdus.append(fits.ImageHDU(err, name="ERR"))
        fits.HDUList(hdus).writeto(tmp_path / name)
        assert main(["deconvolve", str(tmp_path / name), "-o", str(tmp_path / f"out-{name}"), "--psf",
                     str(tmp_path / "psf.fits"), "--sigma", f"{np.sqrt(d.sky / d.gain + (d.read_noise / d.gain) ** 2):.4f}",
                     "--method", "restorer-universal"]) == 0
    assert "fitted to it" in capsys.readouterr().out
    gains = [json.loads(fits.getheader(tmp_path / f"out-{n}", "SCI")["ADPARAMS"])["gain"] for n in ("card.fits", "err.fits")]
    assert gains[1] == pytest.approx(gains[0], rel=0.05)
    a, b = (fits.getdata(tmp_path / f"out-{n}", "SCI") for n in ("card.fits", "err.fits"))
    assert np.nanmax(np.abs(a - b)) < 0.02 * np.nanmax(a)
    assert main(["deconvolve", str(tmp_path / "err.fits"), "-o", str(tmp_path / "out-inf.fits"), "--psf",
                 str(tmp_path / "psf.fits"), "--method", "restorer-universal", "--gain", "inf"]) == 0
    assert "gain" not in json.loads(fits.getheader(tmp_path / "out-inf.fits", "SCI")["ADPARAMS"])  # the sky's only
