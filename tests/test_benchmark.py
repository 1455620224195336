"""The Table I benchmark: tidy rows, the rendered table, leave-one-out folds, and the entry points."""

import pytest

from astrodeconv.errors import InputError
from astrodeconv.experiments import run_benchmark, run_demo, table1
from astrodeconv.experiments.folds import fold_dir, fold_is_trained
from astrodeconv.experiments.protocols import Table1Protocol, load_protocol
from astrodeconv.experiments.results import read_results, write_results

TINY = (
    'kind = "table1"\nname = "tiny"\ndescription = "tiny"\nimages = ["m101_dss1", "m51_dss1red"]\npsf = "airy-paper"\n'
    'boundary = "zero"\nsigma = 0.01\nseed = 1\ncrop = 128\nborder = 16\nclassical = ["wiener", "rl"]\n'
    'selections = ["oracle", "auto"]\nnetworks = ["cnn1"]\n'
    "[training]\nsamples = 2000\nval_samples = 500\nepochs = 2\nbatch = 50\noptimizer = \"adam\"\nlr = 0.001\n"
    "[quick]\ncrop = 96\n"
)


def test_table1_protocol_is_the_papers_setting():
    protocol = load_protocol("table1")
    assert isinstance(protocol, Table1Protocol)
    assert protocol.images == ["m81_dss1", "m101_dss1", "m51_dss1red", "horsehead_dss", "m67_dss1",
                               "starfield_nsv60_dss1"]
    assert (protocol.psf, protocol.sigma, protocol.crop, protocol.border) == ("airy-paper", 0.01, 1024, 32)
    assert protocol.training["samples"] == 100_000 and protocol.training["optimizer"] == "sgd"
    quick = protocol.quick_version()
    assert quick.crop < protocol.crop and quick.images == protocol.images
    assert protocol.training_settings("restorer")["setting"] == "paper"
    with pytest.raises(InputError, match="no training settings for 'cnn3'"):
        protocol.training_settings("cnn3")


def test_the_restorer_folds_are_told_the_noise_level(tmp_path):
    """A method that takes sigma (the registry's record) gets the protocol's; the other networks do not."""
    protocol = load_protocol("table1")
    image = protocol.images[0]
    for arch in protocol.networks:
        fold_dir(tmp_path, arch, image).mkdir()
        (fold_dir(tmp_path, arch, image) / "weights.pt").write_bytes(b"")
    assert fold_is_trained(fold_dir(tmp_path, "cnn3", image))
    plan = {e["label"]: e["params"] for e in table1.method_plan(protocol, image, tmp_path, None)}
    assert plan["restorer"] == {"model": str(fold_dir(tmp_path, "restorer", image)), "sigma": 0.01}
    assert plan["restorer-universal"]["sigma"] == 0.01
    assert plan["cnn3"] == {"model": str(fold_dir(tmp_path, "cnn3", image))} and "sigma" not in plan["cnn1"]
    assert [e["label"] for e in table1.method_plan(protocol, protocol.images[1], tmp_path, None)] == [
        "none", "wiener", "wiener", "rl", "rl", "tv", "tv"]  # no fold trained without that image


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
    protocol = load_protocol("table1")
    rows = _rows()
    path = write_results(rows, tmp_path / "results.csv")
    back = read_results(path)
    assert [r["psnr_db"] for r in back] == [r["psnr_db"] for r in rows]
    assert back[-1]["params"] == {"model": "cnn3-m81_dss1"}
    table = table1.render_table(back, protocol, {("M81", "cnn3"): 37.26})
    assert "| image | none | wiener (oracle) | wiener (auto) | cnn3 |" in table
    assert "| m81_dss1 | 30.00 | 32.00 | 31.80 | 33.50 [37.26] |" in table
    assert "| **avg PSNR (dB)** | 31.50 | 33.50 | 33.30 | 35.00 |" in table
    assert table1.margins(back) == {"m81_dss1": pytest.approx(1.5), "m101_dss1": pytest.approx(1.5)}
    best = table1.margins(back, against=(("wiener", "oracle"), ("none", "-")))
    assert best == {"m81_dss1": pytest.approx(1.5), "m101_dss1": pytest.approx(1.5)}
    assert table1.margins(back, against=(("none", "-"),))["m81_dss1"] == pytest.approx(3.5)
    assert table1.margins(back[:-1], against=(("none", "-"),)) == {"m81_dss1": pytest.approx(3.5)}


def test_quick_benchmark_on_real_images(tmp_path, shared_dir):
    """Two images, tiny crops, one fold model: every output is written and cnn rows present."""
    data_dir = shared_dir / "data" / "sky"
    protocol_path = tmp_path / "tiny.toml"
    protocol_path.write_text(TINY)
    protocol = load_protocol(protocol_path)
    folds = tmp_path / "folds"
    table1.train_folds(protocol, data_dir, folds, images=["m101_dss1"], progress=False)
    assert fold_is_trained(fold_dir(folds, "cnn1", "m101_dss1"))
    out = tmp_path / "results"

    def bench(**options):
        return run_benchmark(protocol_path, data_dir=data_dir, folds=folds, output=options.pop("output", out),
                             **options)

    report = bench()
    assert report.text.startswith((out / "table1.md").read_text())
    assert report.text.endswith("\nwrote " + ", ".join(str(p) for p in report.paths)) and report.notes == []
    assert out / "results.csv" in report.paths and out / "protocol.json" in report.paths
    rows = read_results(out / "results.csv")
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
    table1.train_folds(protocol, data_dir, folds, images=["m51_dss1red"], progress=False)
    bench(images=["m51_dss1red"])
    merged = read_results(out / "results.csv")
    assert [r for r in merged if r["image"] == "m101_dss1"] == [r for r in rows if r["image"] == "m101_dss1"]
    assert ("m51_dss1red", "cnn1", "-") in {(r["image"], r["method"], r["selection"]) for r in merged}
    assert [r["image"] for r in merged] == sorted((r["image"] for r in merged), key=protocol.images.index)
    assert "| m51_dss1red |" in (out / "table1.md").read_text() and "| m101_dss1 |" in (out / "table1.md").read_text()
    with pytest.raises(InputError, match=r"images \['m1'\] are not in protocol 'tiny'"):
        bench(images=["m1"], output=tmp_path / "other")
    # --method recomputes only those rows and keeps the others.
    bench(methods=["none"])
    again = read_results(out / "results.csv")
    assert sorted((r["image"], r["method"], r["selection"]) for r in again) == sorted(
        (r["image"], r["method"], r["selection"]) for r in merged)
    assert [r for r in again if r["method"] == "rl"] == [r for r in merged if r["method"] == "rl"]
    with pytest.raises(InputError, match=r"differing in \['crop'\]"):
        bench(images=["m51_dss1red"], quick=True)
    with pytest.raises(InputError, match=r"images \['m5'\] are not in protocol"):
        bench(images=["m5"], only_train=True)
    (out / "protocol.json").unlink()
    with pytest.raises(InputError, match="has no protocol.json beside it"):
        bench(images=["m51_dss1red"])
    assert len(read_results(out / "results.csv")) == len(merged)
    # rows of one method into an empty folder: a note says the table is partial
    fresh = bench(methods=["none"], output=tmp_path / "fresh")
    assert fresh.notes == [f"{tmp_path / 'fresh'} had no results; the table holds only ['none']"]
    assert {r["method"] for r in read_results(tmp_path / "fresh" / "results.csv")} == {"none"}


def test_benchmark_input_errors(tmp_path, shared_dir):
    with pytest.raises(InputError, match=r"lacks the protocol's images \['m81_dss1'"):
        run_benchmark("table1", data_dir=tmp_path, output=tmp_path / "out")
    with pytest.raises(InputError, match="drop --train, --retrain, --only-train and --image"):
        run_benchmark("grid", data_dir=shared_dir / "data" / "sky", train=True, output=tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_demo_writes_the_table_and_figure(tmp_path):
    report = run_demo(tmp_path / "demo", size=96, seed=1)
    table = (tmp_path / "demo" / "demo.md").read_text()
    assert report.paths == [tmp_path / "demo" / "demo.md", tmp_path / "demo" / "demo.png"]
    assert report.text.startswith("Hubble Deep Field, centred 96 x 96 crop; PSF airy-paper (FWHM 6.51 px)")
    assert table.strip() in report.text and report.text.endswith(f"figure: {tmp_path / 'demo' / 'demo.png'}")
    scores = {line.split(" | ")[0].strip("| "): float(line.split(" | ")[3]) for line in table.splitlines()[2:]}
    assert scores["wiener"] > scores["none"]
    assert (tmp_path / "demo" / "demo.png").stat().st_size > 0
    with pytest.raises(InputError, match="--size must be at least 64 pixels"):
        run_demo(tmp_path / "small", size=32)
    taken = tmp_path / "taken.png"
    taken.write_bytes(b"")
    with pytest.raises(InputError, match="is a file; expected a folder"):
        run_demo(taken)
    assert not (tmp_path / "small").exists()
