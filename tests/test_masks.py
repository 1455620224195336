"""Cold pixels found without a mask, and bad pixels filled from their neighbours."""

from __future__ import annotations

import numpy as np
import pytest
from astropy.io import fits

from astrodeconv.forward import blur
from astrodeconv.masks import cold_pixels, fill_bad, fill_locally
from astrodeconv.psf import gaussian


def _field(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A CCD-like frame in electrons (sky 1000, a galaxy, stars, a dark lane) and its expected light."""
    rows, cols = np.indices((200, 240))
    galaxy = 8000.0 * np.exp(-np.hypot(rows - 100, cols - 120) / 25.0)
    lane = 1.0 - 0.6 * np.exp(-0.5 * ((rows - 0.3 * cols - 64) / 2.0) ** 2)  # a dust lane 5 px wide, 60 % deep
    stars = np.zeros((200, 240))
    at = np.column_stack([rng.integers(5, 195, 60), rng.integers(5, 235, 60)])
    at = at[np.all(np.abs(at[:, :1] - np.array([[30, 60, 120, 150]])) > 8, axis=1)][:40]  # clear of the defects
    stars[at[:, 0], at[:, 1]] = rng.uniform(1e3, 3e5, len(at))
    light = 1000.0 + blur(galaxy * lane + stars, gaussian(3.0))
    return rng.poisson(light).astype(np.float64), light


def test_cold_pixels_are_defects_not_dark_sky():
    rng = np.random.default_rng(3)
    frame, light = _field(rng)
    assert not cold_pixels(frame).any()  # noise, stars on a galaxy, a dark lane: nothing
    broken = frame.copy()
    broken[60, 30:42] = 10.0  # a charge trap's segment
    broken[150, 200] = -1.0  # a pixel the detector flags
    broken[120] *= 0.5  # a row read at half its level, stars and all
    broken[30, 110:118] = light[30, 110:118] - np.linspace(800, 150, 8)  # its end recovering: 21 down to 4 sigma
    cold = cold_pixels(broken)
    assert cold[60, 30:42].all() and cold[150, 200] and cold[120].all()
    assert cold[30, 110:116].all()  # the recovering end, joined to its seed
    expected = np.zeros_like(cold)
    expected[60, 30:42] = expected[150, 200] = expected[120] = expected[30, 110:118] = True
    assert not (cold & ~expected).any()
    holed = frame.copy()
    holed[:, :90] = np.nan  # a frame's unexposed part beside the galaxy: its edge is not cold
    assert not cold_pixels(holed).any()


def test_a_dust_lane_on_a_bright_galaxy_is_not_cold():
    rng = np.random.default_rng(2)
    rows, cols = np.indices((256, 256))
    galaxy = 1e6 * np.exp(-np.hypot(rows - 128, cols - 128) / 40.0)
    for width in (0.8, 1.5):  # lanes as sharp as the PSF allows, 80 % deep, 1000 sigma above the sky
        lane = 1.0 - 0.8 * np.exp(-0.5 * ((rows - 0.3 * cols - 90) / width) ** 2)
        frame = rng.poisson(100.0 + blur(galaxy * lane, gaussian(2.0))).astype(np.float64)
        assert not cold_pixels(frame).any()
        assert not cold_pixels(100.0 + blur(galaxy * lane, gaussian(2.5))).any()  # nor a noiseless model


def test_lines_are_cold_whole_but_not_edges_and_lanes_along_them():
    rng = np.random.default_rng(6)
    rows, cols = np.indices((200, 240))
    sky = np.full((200, 240), 1000.0)
    sky[rng.integers(3, 197, 60), rng.integers(3, 237, 60)] += rng.uniform(2e3, 5e4, 60)
    frame = rng.poisson(blur(sky, gaussian(3.0))).astype(np.float64)
    frame[70] *= 0.5  # a dimmed row and a dimmed column
    frame[:, 150] *= 0.5
    cold = cold_pixels(frame)
    assert cold[70].all() and cold[:, 150].all() and not (cold & (rows != 70) & (cols != 150)).any()
    for level in (1e4, 1e6):
        step = 100.0 + level * np.where(rows < 100, 1.0, 0.9)  # a sharp step: its dark side is no line
        lane = 100.0 + level * np.where(np.abs(rows - 100) <= 2, 0.2, 1.0)  # a lane 5 rows wide, seen through the PSF
        for scene in (step, blur(lane, gaussian(2.0))):
            assert not cold_pixels(rng.poisson(scene).astype(np.float64)).any()


def test_integer_frames_with_little_noise_are_not_cold():
    rng = np.random.default_rng(4)
    quantised = np.round(1000 + rng.normal(0.0, 0.4, (256, 256))).astype(np.uint16)  # most pixels equal
    assert not cold_pixels(quantised).any()
    quantised[100, 100] = 990  # 25 of its noise sigmas down, ten steps
    assert cold_pixels(quantised)[100, 100]


def test_gaussian_noise_alone_has_no_cold_pixel():
    noise = np.random.default_rng(0).normal(0.0, 0.01, (300, 300))
    assert not cold_pixels(noise).any()


def test_a_bad_row_is_filled_from_its_neighbours():
    rng = np.random.default_rng(5)
    frame, light = _field(rng)
    holed = frame.copy()
    holed[100] = np.nan  # across the galaxy
    holed[20:24, 20:24] = np.nan
    holed[170:200, 200:240] = np.nan  # a hole wider than one pass reaches, at the corner
    local, bad = fill_locally(holed)
    flat, same = fill_bad(holed)
    assert np.array_equal(bad, same) and np.isfinite(local).all()
    assert np.array_equal(local[~bad], frame[~bad])
    error = lambda filled: np.median(np.abs(filled[100] - light[100]))  # noqa: E731
    assert error(local) < 0.1 * error(flat)
    assert error(local) < 3 * np.sqrt(light[100]).mean()


def test_the_kpno_frame_s_bad_rows_are_found(shared_dir):
    data = fits.getdata(shared_dir / "data" / "sky" / "m51_kpno_b.fits.gz").astype(np.float64)
    cold = cold_pixels(data)
    assert cold[109].all()  # a dimmed row across the frame
    assert cold[298, 368:378].all() and cold[3, 76]  # a charge trap's segment; a pixel at -1
    assert not cold[286:296, 246:257].any()  # a dust lane beside the bulge
    assert cold.sum() < 0.003 * cold.size


@pytest.mark.parametrize("name", ["horsehead_dss", "m67_dss1", "starfield_195954_dss1", "sdss_g_frame"])
def test_plates_and_frames_keep_their_sky(shared_dir, name):
    data = fits.getdata(shared_dir / "data" / "sky" / f"{name}.fits.gz").astype(np.float64)
    assert not cold_pixels(data).any()  # a plate's grain is its noise; its flaws are as wide as its stars
