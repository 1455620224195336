"""The realistic protocol: GalSim frames as instruments write them, and what an astronomer counts on them."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("galsim")
pytest.importorskip("photutils")

from astrodeconv.experiments import instrument, photometry  # noqa: E402
from astrodeconv.experiments.protocols import load_protocol  # noqa: E402


@pytest.fixture(scope="module")
def frame():
    return instrument.frame("stars", "ground", n=160, seed=3)


def test_a_frame_is_written_as_an_instrument_writes_it(frame):
    d = frame.detector
    assert frame.adu.dtype == np.float32 and frame.adu.max() <= d.saturate
    assert np.median(frame.adu) == pytest.approx(d.bias + d.sky / d.gain, rel=0.02)  # pedestal + sky, in ADU
    assert np.any(frame.adu == d.saturate)  # some stars saturate
    assert frame.truth.sum() == pytest.approx(frame.sources[:, 2].sum(), rel=1e-3)  # the catalogue is the truth
    from astrodeconv.noise import estimate_sigma

    sky_noise = estimate_sigma(frame.electrons(frame.adu))  # the finest details: the sky's noise
    assert sky_noise == pytest.approx(np.sqrt(d.sky + d.read_noise**2), rel=0.25)  # Poisson on the sky + read noise
    assert abs(frame.psf.sum() - 1) < 1e-9 and frame.psf.shape == (instrument.PSF_SIDE,) * 2


def test_the_metrics_of_the_truth_and_the_observation(frame):
    from astrodeconv.noise import estimate_sigma
    from astrodeconv.psf import fwhm

    width, noise = fwhm(frame.psf), estimate_sigma(frame.electrons(frame.adu))
    perfect = photometry.score(frame.truth, frame, noise, width, border=8)
    assert perfect["aperture_2fwhm"] == 0 and perfect["flux_ratio"] == pytest.approx(1.0)
    observed = photometry.score(frame.electrons(frame.adu), frame, noise, width, border=8)
    assert observed["background_rms_ratio"] == pytest.approx(1.0)
    assert observed["ring_depth"] < 0.01  # a blurred star has no dark ring
    assert observed["spurious_per_1000"] < 100
    assert observed["psnr_db"] < perfect["psnr_db"]


def test_the_background_tail_is_that_of_gaussian_noise_smoothed_or_not():
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(0)
    noise = rng.standard_normal((400, 400))
    quiet = np.ones(noise.shape, bool)
    assert photometry.background_tail(noise, quiet) < 1e-4
    assert photometry.background_tail(gaussian_filter(noise, 2.0), quiet) < 1e-4  # smoothing keeps it Gaussian
    peaks = noise.copy()
    peaks.flat[rng.choice(noise.size, 200, replace=False)] += 20.0  # invented sources
    assert photometry.background_tail(peaks, quiet) == pytest.approx(200 / noise.size, rel=0.1)


def test_a_wider_psf_reach_gives_the_stars_light_beyond_the_stamp_and_the_same_stamp():
    from astrodeconv.errors import InputError

    cut = instrument.frame("stars", "space", n=160, seed=3)
    whole = instrument.frame("stars", "space", n=160, seed=3, psf_reach=127)
    assert np.allclose(cut.psf, whole.psf)  # the PSF given is its central 63 px either way
    d = cut.detector
    star = cut.sources[np.argmax(cut.sources[:, 2])]
    yy, xx = np.indices(cut.adu.shape)
    r = np.hypot(xx - star[0], yy - star[1])
    ring = (r > 40) & (r < 60)  # beyond the stamp's 31 px (and its corners' 44), within the 127 px PSF
    light = [np.median(f.electrons(f.adu)[ring]) for f in (cut, whole)]
    assert light[1] - light[0] > 10.0  # e- per px: the brightest star's wings beyond the stamp
    with pytest.raises(InputError, match="psf_reach"):
        instrument.frame("stars", "space", n=64, psf_reach=64)


def test_a_galaxy_galsim_cannot_truncate_at_its_half_light_radius_is_drawn_all_the_same():
    # seed 303 draws a Sersic whose truncated half-light radius GalSim finds no root for ("Root is not bracketed")
    frame = instrument.frame("galaxies", "space", n=320, seed=303)
    assert np.isfinite(frame.truth).all() and frame.truth.sum() > 0


def test_ring_depth_finds_a_dark_ring():
    yy, xx = np.indices((101, 101))
    r = np.hypot(yy - 50, xx - 50)
    star = np.exp(-0.5 * (r / 2.0) ** 2) - 0.1 * np.exp(-0.5 * ((r - 8) / 1.5) ** 2)
    assert photometry.ring_depth(star, np.array([50.0, 50.0]), fwhm=4.7) == pytest.approx(0.1, rel=0.15)
    assert photometry.ring_depth(np.exp(-0.5 * (r / 2.0) ** 2), np.array([50.0, 50.0]), fwhm=4.7) == 0
    # in noise units the ring is the same whatever the peak: a saturated star's clipped one or its restored point
    clipped, point = np.minimum(star, 0.2), star + 100.0 * (r == 0)
    depths = [photometry.ring_depth(image, np.array([50.0, 50.0]), fwhm=4.7, noise=0.01) for image in (clipped, point)]
    assert depths == pytest.approx([10.0, 10.0], rel=0.15)
    assert photometry.ring_depth(point, np.array([50.0, 50.0]), fwhm=4.7) < 0.002  # which a fraction of the peak hides


def test_the_quick_protocol_runs_every_method_and_says_which_refuse(tmp_path, shared_dir):
    from astrodeconv.experiments import run_benchmark

    report = run_benchmark("realistic", quick=True, output=tmp_path)
    assert {p.name for p in report.paths} == {"realistic.csv", "realistic.md", "realistic.png"}
    from astrodeconv.experiments.realistic import read_rows

    rows = {r["method"]: r for r in read_rows(tmp_path / "realistic.csv")}
    protocol = load_protocol("realistic").quick_version()
    assert set(rows) == {"observed", "skimage-rl-30", *protocol.methods}
    assert rows["cnn3"]["status"].startswith("refused") and np.isnan(rows["cnn3"]["psnr_db"])
    assert rows["rl"]["status"] == "ok" and rows["rl"]["psnr_db"] > rows["observed"]["psnr_db"]
    assert "| cnn3 | refused |" in (tmp_path / "realistic.md").read_text()


def test_the_report_has_a_metrics_table_for_every_way_the_psf_is_given():
    from astrodeconv.experiments.realistic import METRICS, render_table

    protocol = load_protocol("realistic")

    def row(scene, given, method, psnr, status="ok"):
        values = {m: (psnr if m == "psnr_db" else 1.0) for m in METRICS}
        if status != "ok":
            values = {m: float("nan") for m in METRICS}
        return {"scene": scene, "psf": "ground", "psf_given": given, "method": method, "status": status, **values}

    rows = [row(s, g, m, p) for s in ("stars", "deep") for g in ("exact", "wide")
            for m, p in (("observed", 30.0), ("wiener", 34.0 if s == "stars" else 36.0))]
    rows += [row("stars", "stars", "observed", 30.0), row("stars", "stars", "wiener", 33.0),
             row("deep", "stars", "observed", 0.0, "no PSF: too few stars"), row("deep", "stars", "wiener", 0.0, "no PSF: too few stars")]
    text = render_table(rows, protocol)
    tables = text.split("PSF given: ")[1:]
    assert [t.split(";")[0] for t in tables] == list(protocol.psf_cases)
    assert "| wiener | 2 / 0 | 35.00 |" in tables[0]  # exact: the mean over both frames
    assert "| wiener | 1 / 1 | 33.00 |" in tables[1]  # stars: the frame without an estimate left out of the mean
    assert "| wiener |" not in tables[2]  # moffat: no rows, no line
