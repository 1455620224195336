"""Streamed FITS prediction equals in-memory prediction; outputs appear whole or not at all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from astropy.io import fits

torch = pytest.importorskip("torch")

from astrodeconv import stream  # noqa: E402
from astrodeconv.cli import main  # noqa: E402
from astrodeconv.errors import InputError  # noqa: E402
from astrodeconv.nn import create_model, deconvolve  # noqa: E402


@pytest.fixture(scope="module")
def net():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        return create_model("cnn3")


def _image(shape=(150, 130), seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    x = 200 + 800 * np.exp(-((yy - 60) ** 2 + (xx - 70) ** 2) / 900.0) + rng.normal(0, 10, shape)
    x[rng.integers(0, shape[0], 20), rng.integers(0, shape[1], 20)] += 3000
    return x.astype(np.float32)


def _in_memory(data: np.ndarray, net) -> np.ndarray:
    """The tiles' rule: divide by the max, fill NaN by the whole image's median, mask after (in memory a NaN
    is filled from its neighbours instead, :func:`astrodeconv.masks.fill_locally`)."""
    bad = ~np.isfinite(data)
    scale = float(data[~bad].max())
    y = np.where(bad, 0.0, data) / scale
    restored = deconvolve(np.where(bad, np.median(y[~bad]), y), net) * scale
    restored[bad] = np.nan
    return restored.astype(np.float32)


@pytest.mark.parametrize("tile", [32, 48, 1000])
def test_streamed_output_equals_in_memory_prediction(tmp_path, net, tile):
    data = _image()
    header = fits.Header({"OBJECT": "field", "CTYPE1": "RA---TAN", "CRVAL1": 10.5})
    fits.writeto(tmp_path / "in.fits", data, header)
    out = stream.deconvolve_fits(tmp_path / "in.fits", tmp_path / "out.fits", net, tile=tile,
                                 provenance={"method": "cnn3"}, progress=False)
    with fits.open(out) as hdul:
        assert hdul[0].header["CRVAL1"] == 10.5 and hdul[0].header["ADMETHOD"] == "cnn3"
        assert hdul[0].header["ADNORM"] == pytest.approx(float(data.max()))
        np.testing.assert_allclose(hdul[0].data, _in_memory(data, net), atol=1e-5 * float(data.max()), rtol=0)


def test_nan_pixels_use_the_exact_median_and_stay_nan(tmp_path, net):
    data = _image((97, 83), seed=1)
    data[40:44, 10:13] = np.nan
    data[0, 0] = np.inf
    fits.writeto(tmp_path / "in.fits", data)
    out = stream.deconvolve_fits(tmp_path / "in.fits", tmp_path / "out.fits", net, tile=32, progress=False)
    restored = fits.getdata(out)
    expected = _in_memory(data, net)
    assert np.array_equal(np.isnan(restored), ~np.isfinite(data))
    np.testing.assert_allclose(restored, expected, atol=1e-5 * float(data[np.isfinite(data)].max()), rtol=0)


def test_scaled_integer_input_is_read_by_sections(tmp_path, net):
    data = (_image((60, 70)) / 4).astype(np.int16)
    hdu = fits.PrimaryHDU(data)
    hdu.header["BSCALE"], hdu.header["BZERO"] = 2.0, 100.0
    hdu.writeto(tmp_path / "in.fits")
    physical = fits.getdata(tmp_path / "in.fits").astype(np.float32)
    out = stream.deconvolve_fits(tmp_path / "in.fits", tmp_path / "out.fits", net, tile=40, progress=False)
    np.testing.assert_allclose(fits.getdata(out), _in_memory(physical, net), atol=1e-5 * physical.max(), rtol=0)


def test_exact_order_statistic_matches_numpy(rng):
    for x in (rng.normal(size=1001), rng.integers(-3, 3, 500).astype(float), np.array([2.0, -0.0, 0.0, np.nan, 7.0])):
        finite = x[np.isfinite(x)]
        n = finite.size
        a, b = stream.exact_order_statistic(lambda: iter(np.array_split(x, 4)), [(n - 1) // 2, n // 2])
        assert (a + b) / 2 == np.median(finite)


def test_bad_inputs_give_clear_errors(tmp_path, net):
    fits.writeto(tmp_path / "const.fits", np.ones((40, 40), np.float32))
    with pytest.raises(InputError, match="constant"):
        stream.deconvolve_fits(tmp_path / "const.fits", tmp_path / "o.fits", net, progress=False)
    fits.writeto(tmp_path / "in.fits.gz", _image((40, 40)))
    with pytest.raises(InputError, match="gzip-compressed.*gunzip"):
        stream.deconvolve_fits(tmp_path / "in.fits.gz", tmp_path / "o.fits", net, progress=False)
    fits.writeto(tmp_path / "in.fits", _image((40, 40)))
    with pytest.raises(InputError, match="does not exist"):
        stream.deconvolve_fits(tmp_path / "in.fits", tmp_path / "no" / "o.fits", net, progress=False)
    with pytest.raises(InputError, match="tile must be"):
        stream.deconvolve_fits(tmp_path / "in.fits", tmp_path / "o.fits", net, tile=0, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["const.fits", "in.fits", "in.fits.gz"]


def test_full_disk_and_interrupt_leave_nothing(tmp_path, net, monkeypatch):
    fits.writeto(tmp_path / "in.fits", _image((64, 64)))

    def full(fd, offset, length):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as m:
        m.setattr(stream.os, "posix_fallocate", full)
        with pytest.raises(InputError, match="No space left"):
            stream.deconvolve_fits(tmp_path / "in.fits", tmp_path / "out.fits", net, tile=32, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fits"]

    calls = []

    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return deconvolve(*args, **kwargs)

    monkeypatch.setattr("astrodeconv.nn.predict.deconvolve", interrupted)
    with pytest.raises(KeyboardInterrupt):
        stream.deconvolve_fits(tmp_path / "in.fits", tmp_path / "out.fits", net, tile=32, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.fits"]


def test_cli_streams_with_flag_and_equals_in_memory_run(tmp_path, capsys):
    data = _image((90, 100), seed=2)
    fits.writeto(tmp_path / "obs.fits", data, fits.Header({"ADPSF": "airy-paper"}))
    common = ["--method", "cnn1", "--select", "none", "--sigma-relative", "0.01"]  # the noise cnn1 was trained for
    assert main(["deconvolve", str(tmp_path / "obs.fits"), "-o", str(tmp_path / "mem.fits"), *common]) == 0
    assert main(["deconvolve", str(tmp_path / "obs.fits"), "-o", str(tmp_path / "st.fits"), *common, "--stream",
                 "--tile", "40"]) == 0
    np.testing.assert_allclose(fits.getdata(tmp_path / "st.fits"), fits.getdata(tmp_path / "mem.fits"),
                               atol=1e-5 * float(data.max()), rtol=0)
    assert fits.getheader(tmp_path / "st.fits")["ADMETHOD"] == "cnn1"
    capsys.readouterr()
    assert main(["deconvolve", str(tmp_path / "obs.fits"), "-o", str(tmp_path / "w.fits"), "--method", "wiener",
                 "--stream"]) == 2
    err = capsys.readouterr().err
    assert "90 x 100" in err and "network method" in err and not (tmp_path / "w.fits").exists()


def test_killed_run_never_leaves_a_file_under_the_final_name(tmp_path, net):
    fits.writeto(tmp_path / "in.fits", _image((400, 400)))
    script = (
        "import sys, torch; from astrodeconv import stream; from astrodeconv.nn import create_model;"
        "import astrodeconv.nn.predict as p; import time; orig = p.deconvolve\n"
        "def slow(*a, **k):\n    time.sleep(0.2); return orig(*a, **k)\n"
        "p.deconvolve = slow\n"
        f"stream.deconvolve_fits({str(tmp_path / 'in.fits')!r}, {str(tmp_path / 'out.fits')!r}, create_model('cnn1'),"
        " tile=32, progress=False)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 60
    while not any(p.name.endswith(".tmp") for p in tmp_path.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (tmp_path / "out.fits").exists()
