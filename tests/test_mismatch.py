"""The PSF-mismatch report: methods given a wrong PSF lose against the exact one."""

import numpy as np
import pytest

from astrodeconv.errors import InputError
from astrodeconv.experiments import mismatch, run_benchmark
from astrodeconv.experiments.protocols import load_protocol
from astrodeconv.experiments.results import read_results

TINY = """kind = "psf-mismatch"
name = "tiny-mismatch"
description = "tiny mismatch"
images = ["m101_dss1", "m51_dss1red"]
psf = "gaussian:fwhm=4"
boundary = "zero"
sigma = 0.01
seed = 3
crop = 96
border = 8
classical = ["wiener", "rl"]
selections = ["oracle", "auto"]

[psf_given]
"exact" = "gaussian:fwhm=4"
"fwhm -20 %" = "gaussian:fwhm=3.2"
"fwhm +20 %" = "gaussian:fwhm=4.8"
"airy" = "airy:fwhm=4,size=33"
"""


def test_psf_mismatch_report(tmp_path, shared_dir):
    data_dir = shared_dir / "data" / "sky"
    protocol_path = tmp_path / "tiny.toml"
    protocol_path.write_text(TINY)
    protocol = load_protocol(protocol_path)
    out = tmp_path / "out"
    report = run_benchmark(protocol_path, data_dir=data_dir, output=out)
    assert report.paths == [out / "psf_mismatch.csv", out / "psf_mismatch.md", out / "psf_mismatch.png"]
    assert report.text == (out / "psf_mismatch.md").read_text() + "\nwrote " + ", ".join(map(str, report.paths))
    rows = read_results(out / "psf_mismatch.csv")
    assert len(rows) == 2 * (1 + 4 * 2 * 2)  # per image: none, then 4 PSFs x 2 methods x 2 selections
    by = {(r["image"], r["psf_given"], r["method"], r["selection"]): r["psnr_db"] for r in rows}
    for image in protocol.images:
        exact = by[(image, "exact", "wiener", "oracle")]
        assert exact > by[(image, mismatch.BUILT_IN, "none", "-")]
        # the oracle's best with the right PSF beats its best with a PSF 20 % too wide
        assert exact > by[(image, "fwhm +20 %", "wiener", "oracle")]
    summary = mismatch.summarise(rows, list(protocol.psf_given))
    assert set(summary["none"]) == set(protocol.psf_given)  # scored once, shown under every PSF
    assert np.ptp(list(summary["none"].values())) == 0
    table = (out / "psf_mismatch.md").read_text()
    assert "| method | exact | fwhm -20 % | fwhm +20 % | airy |" in table
    wiener = summary["wiener (oracle)"]
    assert f"{wiener['fwhm +20 %']:.2f} ({wiener['fwhm +20 %'] - wiener['exact']:+.2f})" in table
    assert (out / "psf_mismatch.png").stat().st_size > 0
    assert list(rows[0]) == list(mismatch.MISMATCH_FIELDS)

    # rows of one method are computed again and merged into the others
    run_benchmark(protocol_path, data_dir=data_dir, output=out, methods=["rl"])
    merged = read_results(out / "psf_mismatch.csv")
    assert sorted(by) == sorted((r["image"], r["psf_given"], r["method"], r["selection"]) for r in merged)
    assert [r for r in merged if r["method"] == "wiener"] == [r for r in rows if r["method"] == "wiener"]

    with pytest.raises(InputError, match="drop --train, --retrain, --only-train and --image"):
        run_benchmark(protocol_path, data_dir=data_dir, output=out, images=["m101_dss1"])
    protocol_path.write_text(TINY.replace('selections = ["oracle", "auto"]\n',
                                          'selections = ["oracle", "auto"]\nnetworks = ["cnn3"]\n'))
    with pytest.raises(InputError, match=r"has keys of other kinds: 'networks' \(table1\)"):
        run_benchmark(protocol_path, data_dir=data_dir, output=out)
