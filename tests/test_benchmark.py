"""The Table I benchmark: protocol files, tidy rows, and the rendered table."""

import numpy as np
import pytest

from astrodeconv import benchmark
from astrodeconv.cli import main
from astrodeconv.errors import InputError


def test_table1_protocol_is_the_papers_setting():
    protocol = benchmark.load_protocol("table1")
    assert protocol.images == ["m81_dss1", "m101_dss1", "m51_dss1red", "horsehead_dss", "m67_dss1",
                               "starfield_nsv60_dss1"]
    assert (protocol.psf, protocol.sigma, protocol.crop, protocol.border) == ("airy-paper", 0.01, 1024, 32)
    assert protocol.training["samples"] == 100_000 and protocol.training["optimizer"] == "sgd"
    quick = protocol.quick_version()
    assert quick.crop < protocol.crop and quick.images == protocol.images


def test_protocol_errors(tmp_path):
    with pytest.raises(InputError, match="unknown protocol 'nope'"):
        benchmark.load_protocol("nope")
    bad = tmp_path / "bad.toml"
    bad.write_text('name = "x"\ncolour = "red"\n')
    with pytest.raises(InputError, match=r"unknown keys \['colour'\]"):
        benchmark.load_protocol(bad)


def _rows():
    rows = []
    for image, base in (("m81_dss1", 30.0), ("m101_dss1", 33.0)):
        rows.append({"image": image, "method": "none", "selection": "-", "params": {}, "psnr_db": base, "ssim": 0.8, "time_s": 0.0})
        for sel, gain in (("oracle", 2.0), ("auto", 1.8)):
            rows.append({"image": image, "method": "wiener", "selection": sel, "params": {"balance": 0.01},
                         "psnr_db": base + gain, "ssim": 0.85, "time_s": 0.1})
        rows.append({"image": image, "method": "cnn3", "selection": "-", "params": {"model": "/x/cnn3-m81_dss1"},
                     "psnr_db": base + 3.5, "ssim": 0.9, "time_s": 1.0})
    return rows


def test_results_roundtrip_table_and_margins(tmp_path):
    protocol = benchmark.load_protocol("table1")
    rows = _rows()
    path = benchmark.write_results(rows, tmp_path / "results.csv")
    back = benchmark.read_results(path)
    assert [r["psnr_db"] for r in back] == [r["psnr_db"] for r in rows]
    assert back[-1]["params"] == {"model": "cnn3-m81_dss1"}
    table = benchmark.render_table(back, protocol, {("M81", "cnn3"): 37.26})
    assert "| image | none | wiener (oracle) | wiener (auto) | cnn3 |" in table
    assert "| m81_dss1 | 30.00 | 32.00 | 31.80 | 33.50 [37.26] |" in table
    assert "| **avg PSNR (dB)** | 31.50 | 33.50 | 33.30 | 35.00 |" in table
    assert benchmark.margins(back) == {"m81_dss1": pytest.approx(1.5), "m101_dss1": pytest.approx(1.5)}
    best = benchmark.margins(back, against=(("wiener", "oracle"), ("none", "-")))
    assert best == {"m81_dss1": pytest.approx(1.5), "m101_dss1": pytest.approx(1.5)}
    assert benchmark.margins(back, against=(("none", "-"),))["m81_dss1"] == pytest.approx(3.5)
    assert benchmark.margins(back[:-1], against=(("none", "-"),)) == {"m81_dss1": pytest.approx(3.5)}


def test_quick_benchmark_on_real_images(tmp_path, shared_dir, capsys):
    """Two images, tiny crops, one fold model: every output is written and cnn rows present."""
    from astrodeconv.nn.training import train

    data_dir = shared_dir / "data" / "sky"
    protocol_path = tmp_path / "tiny.toml"
    protocol_path.write_text(
        'name = "tiny"\ndescription = "tiny"\nimages = ["m101_dss1", "m51_dss1red"]\npsf = "airy-paper"\n'
        'boundary = "zero"\nsigma = 0.01\nseed = 1\ncrop = 128\nborder = 16\nclassical = ["wiener", "rl"]\n'
        'selections = ["oracle", "auto"]\nnetworks = ["cnn1"]\n'
        "[training]\nsamples = 2000\nval_samples = 500\nepochs = 2\nbatch = 50\noptimizer = \"adam\"\nlr = 0.001\n"
        "[quick]\ncrop = 96\n"
    )
    protocol = benchmark.load_protocol(protocol_path)
    folds = tmp_path / "folds"
    benchmark.train_folds(protocol, data_dir, folds, images=["m101_dss1"], progress=False)
    assert benchmark.fold_is_trained(benchmark.fold_dir(folds, "cnn1", "m101_dss1"))
    out = tmp_path / "results"
    assert main(["benchmark", "--protocol", str(protocol_path), "--data-dir", str(data_dir), "--folds", str(folds),
                 "-o", str(out)]) == 0
    rows = benchmark.read_results(out / "results.csv")
    seen = {(r["image"], r["method"], r["selection"]) for r in rows}
    assert ("m101_dss1", "cnn1", "-") in seen and ("m51_dss1red", "cnn1", "-") not in seen
    assert ("m51_dss1red", "rl", "auto") in seen
    by = {(r["image"], r["method"], r["selection"]): r["psnr_db"] for r in rows}
    for image in protocol.images:
        assert by[(image, "wiener", "oracle")] > by[(image, "none", "-")]
        assert by[(image, "wiener", "oracle")] >= by[(image, "wiener", "auto")] - 1e-9
    for name in ("table1.md", "dataset.png", "comparison.png", "training_curves.png"):
        assert (out / name).stat().st_size > 0

    # a fold trained later: only its image is computed again, the other rows are kept as they were
    benchmark.train_folds(protocol, data_dir, folds, images=["m51_dss1red"], progress=False)
    assert main(["benchmark", "--protocol", str(protocol_path), "--data-dir", str(data_dir), "--folds", str(folds),
                 "--image", "m51_dss1red", "-o", str(out)]) == 0
    merged = benchmark.read_results(out / "results.csv")
    assert [r for r in merged if r["image"] == "m101_dss1"] == [r for r in rows if r["image"] == "m101_dss1"]
    assert ("m51_dss1red", "cnn1", "-") in {(r["image"], r["method"], r["selection"]) for r in merged}
    assert [r["image"] for r in merged] == sorted((r["image"] for r in merged), key=protocol.images.index)
    assert "| m51_dss1red |" in (out / "table1.md").read_text() and "| m101_dss1 |" in (out / "table1.md").read_text()
    capsys.readouterr()
    assert main(["benchmark", "--protocol", str(protocol_path), "--data-dir", str(data_dir), "--folds", str(folds),
                 "--image", "m1", "-o", str(tmp_path / "other")]) == 2
    assert "images ['m1'] are not in protocol 'tiny'" in capsys.readouterr().err
    # --method recomputes only those rows and keeps the others.
    assert main(["benchmark", "--protocol", str(protocol_path), "--data-dir", str(data_dir), "--folds", str(folds),
                 "--method", "none", "-o", str(out)]) == 0
    again = benchmark.read_results(out / "results.csv")
    assert sorted((r["image"], r["method"], r["selection"]) for r in again) == sorted(
        (r["image"], r["method"], r["selection"]) for r in merged)
    assert [r for r in again if r["method"] == "rl"] == [r for r in merged if r["method"] == "rl"]
    for flags, message in ((["--quick"], "differing in ['crop']"),
                           (["--only-train", "--image", "m5"], "images ['m5'] are not in protocol")):
        assert main(["benchmark", "--protocol", str(protocol_path), "--data-dir", str(data_dir), "--folds", str(folds),
                     "--image", "m51_dss1red", *flags, "-o", str(out)]) == 2
        assert message in capsys.readouterr().err
    (out / "protocol.json").unlink()
    assert main(["benchmark", "--protocol", str(protocol_path), "--data-dir", str(data_dir), "--folds", str(folds),
                 "--image", "m51_dss1red", "-o", str(out)]) == 2
    assert "has no protocol.json beside it" in capsys.readouterr().err
    assert len(benchmark.read_results(out / "results.csv")) == len(merged)
