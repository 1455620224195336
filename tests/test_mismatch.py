"""The PSF-mismatch report: methods given a wrong PSF lose against the exact one."""

import numpy as np

from astrodeconv import benchmark, mismatch
from astrodeconv.cli import main

TINY = """name = "tiny-mismatch"
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
networks = []

[psf_given]
"exact" = "gaussian:fwhm=4"
"fwhm -20 %" = "gaussian:fwhm=3.2"
"fwhm +20 %" = "gaussian:fwhm=4.8"
"airy" = "airy:fwhm=4,size=33"
"""


def test_psf_mismatch_report(tmp_path, shared_dir, capsys):
    data_dir = shared_dir / "data" / "sky"
    protocol_path = tmp_path / "tiny.toml"
    protocol_path.write_text(TINY)
    protocol = benchmark.load_protocol(protocol_path)
    out = tmp_path / "out"
    assert main(["benchmark", "--protocol", str(protocol_path), "--data-dir", str(data_dir), "-o", str(out)]) == 0
    rows = benchmark.read_results(out / "psf_mismatch.csv")
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

    capsys.readouterr()
    assert main(["benchmark", "--protocol", str(protocol_path), "--data-dir", str(data_dir), "--image", "m101_dss1",
                 "-o", str(out)]) == 2
    assert "drop --train, --retrain, --only-train and --image" in capsys.readouterr().err
    protocol_path.write_text(TINY.replace("networks = []", 'networks = ["cnn3"]'))
    assert main(["benchmark", "--protocol", str(protocol_path), "--data-dir", str(data_dir), "-o", str(out)]) == 2
    assert "networks ['cnn3'] take no PSF input" in capsys.readouterr().err
