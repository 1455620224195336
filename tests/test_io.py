import os

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from astrodeconv import __version__, io
from astrodeconv.errors import InputError


def _wcs_header():
    w = WCS(naxis=2)
    w.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    w.wcs.crval = [148.9, 69.06]
    w.wcs.crpix = [16.0, 18.0]
    w.wcs.cdelt = [-0.00047, 0.00047]
    header = w.to_header()
    header["OBJECT"] = "M81"
    return header


def test_roundtrip_keeps_header_wcs_and_adds_provenance(tmp_path, small_image):
    src = tmp_path / "in.fits"
    fits.writeto(src, small_image.astype(np.float32), header=_wcs_header())
    data, header = io.read_image(src)
    np.testing.assert_allclose(data, small_image, rtol=1e-6)
    out = io.write_image(tmp_path / "out.fits", data * 2, header, {"method": "wiener", "params": {"balance": 0.1}})
    with fits.open(out) as hdul:
        h = hdul[0].header
        np.testing.assert_allclose(hdul[0].data, 2 * small_image, rtol=1e-6)
        assert h["OBJECT"] == "M81" and h["ADMETHOD"] == "wiener" and h["ADVERS"] == __version__
        assert '"balance": 0.1' in h["ADPARAMS"]
        np.testing.assert_allclose(WCS(h).wcs.crval, [148.9, 69.06])


def test_never_overwrites_without_permission(tmp_path):
    path = tmp_path / "out.fits"
    io.write_image(path, np.ones((4, 4)))
    with pytest.raises(InputError, match="already exists"):
        io.write_image(path, np.zeros((4, 4)))
    assert fits.getdata(path).sum() == 16
    io.write_image(path, np.zeros((4, 4)), overwrite=True)
    assert fits.getdata(path).sum() == 0


def test_failed_write_leaves_nothing_under_the_final_name(tmp_path, monkeypatch):
    def explode(self, *args, **kwargs):
        with open(args[0], "wb") as handle:
            handle.write(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(fits.HDUList, "writeto", explode)
    with pytest.raises(InputError, match="cannot write .* disk full"):
        io.write_image(tmp_path / "out.fits", np.ones((4, 4)))
    assert os.listdir(tmp_path) == []


def test_reads_named_and_numbered_hdus_and_skips_empty_primary(tmp_path):
    path = tmp_path / "multi.fits"
    fits.HDUList([fits.PrimaryHDU(), fits.ImageHDU(np.ones((3, 4)), name="SCI"), fits.ImageHDU(np.zeros((2, 2)))]).writeto(path)
    assert io.read_image(path)[0].shape == (3, 4)
    assert io.read_image(path, hdu="SCI")[0].shape == (3, 4)
    assert io.read_image(path, hdu=2)[0].shape == (2, 2)
    with pytest.raises(InputError, match="no HDU 'DQ'"):
        io.read_image(path, hdu="DQ")


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_text("not a fits file"), "cannot read"),
        (lambda p: fits.PrimaryHDU().writeto(p), "no HDU holds image data"),
        (lambda p: fits.writeto(p, np.ones((3, 5, 6))), r"shape \(3, 5, 6\); pick one plane"),
    ],
)
def test_bad_files_give_clear_errors(tmp_path, make, message):
    path = tmp_path / "bad.fits"
    make(path)
    with pytest.raises(InputError, match=message):
        io.read_image(path)


def test_unwritable_folder_is_refused_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(InputError, match="not writable"):
        io.write_image(tmp_path / "out.fits", np.ones((4, 4)))
