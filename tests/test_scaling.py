"""Prediction time against image size: the measurement loop, the slopes and the report."""

import csv
import math

import numpy as np
import pytest

from astrodeconv import methods as registry
from astrodeconv.errors import InputError
from astrodeconv.experiments import run_scaling, scaling


def test_fit_slopes_recovers_power_laws():
    rows = []
    for n in (256, 512, 1024, 2048):
        rows.append({"method": "linear", "size": n, "pixels": n * n, "seconds": 1e-6 * n * n, "threads": 2})
        rows.append({"method": "quadratic", "size": n, "pixels": n * n, "seconds": 1e-12 * (n * n) ** 2, "threads": 2})
    slopes = scaling.fit_slopes(rows)
    assert slopes["linear"] == pytest.approx(1.0) and slopes["quadratic"] == pytest.approx(2.0)


def _read_csv(path):
    with open(path, newline="") as handle:
        return [{**r, "size": int(r["size"]), "pixels": int(r["pixels"]), "seconds": float(r["seconds"]),
                 "threads": int(r["threads"])} for r in csv.DictReader(handle)]


def test_report_of_known_rows(tmp_path):
    """Times linear in the pixels (wiener), quadratic (tv), and two small sizes only (rl): slopes 1, 2, 0.5."""
    rows = []
    for k, n in enumerate((256, 512, 1024, 2048)):
        rows.append({"method": "wiener", "size": n, "pixels": n * n, "seconds": 0.0625 * 4**k, "threads": 3})
        rows.append({"method": "tv", "size": n, "pixels": n * n, "seconds": 0.0016 * 16**k, "threads": 3})
    rows += [{"method": "rl", "size": n, "pixels": n * n, "seconds": s, "threads": 3} for n, s in ((256, 1.0), (512, 2.0))]
    written = scaling.write_report(rows, tmp_path)
    assert written[:2] == [tmp_path / "scaling.csv", tmp_path / "scaling.md"] and written[2].stat().st_size > 0
    assert _read_csv(tmp_path / "scaling.csv") == rows
    lines = (tmp_path / "scaling.md").read_text().splitlines()
    assert lines[0] == "| method | 256^2 (s) | 512^2 (s) | 1024^2 (s) | 2048^2 (s) | log-log slope |"
    assert lines[2:5] == ["| wiener | 0.0625 | 0.25 | 1 | 4 | 1.00 |",
                          "| tv | 0.0016 | 0.0256 | 0.41 | 6.55 | 2.00 |",
                          "| rl | 1 | 2 | - | - | 0.50 |"]
    assert lines[-1] == ("Threads: 3. Parameters: wiener: {'balance': 0.01}, rl: {'num_iter': 30}, "
                         "tv: {'mu': 0.004, 'num_iter': 5000, 'tol': 0.0001}.")


def test_measure_times_each_restoration_with_the_clock(monkeypatch):
    """A fake clock advanced by a fake restoration: best of 2 below 1 s, one run above, and the stop past max_seconds."""
    # (method, size, durations of the timed runs) in the order measure runs them; wiener stops after 1.5 s.
    plan = [("wiener", 64, [0.3, 0.2]), ("rl", 64, [0.1, 0.4]), ("wiener", 128, [1.5]), ("rl", 128, [0.5, 0.5]),
            ("rl", 256, [0.7, 0.6])]
    params = {"wiener": {"balance": 0.01}, "rl": {"num_iter": 3}}
    expected = [call for m, n, runs in plan
                for call in [(m, (min(n, 128),) * 2, params[m])] + [(m, (n, n), params[m])] * len(runs)]
    durations = [d for _, _, runs in plan for d in [0.0, *runs]]  # the warm-up takes no time
    now, calls = [0.0], []

    def restore(observed, psf, method, **kwargs):
        calls.append((method, observed.shape, kwargs))
        now[0] += durations[len(calls) - 1]
        return observed

    monkeypatch.setattr(registry, "restore", restore)
    rows = scaling.measure(params, sizes=(64, 128, 256), max_seconds=1.0, progress=False, clock=lambda: now[0])
    assert calls == expected
    assert [(r["method"], r["size"], r["pixels"]) for r in rows] == [(m, n, n * n) for m, n, _ in plan]
    assert [r["seconds"] for r in rows] == pytest.approx([0.2, 0.1, 1.5, 0.5, 0.6])
    assert {r["threads"] for r in rows} == {scaling._threads()}


def test_measure_on_small_sizes(tmp_path):
    """Real restorations: one row per (method, size), finite positive times, and the report of those rows."""
    import torch

    rows = scaling.measure({"wiener": {"balance": 0.01}, "rl": {"num_iter": 3}}, sizes=(128, 256), progress=False)
    assert [(r["method"], r["size"], r["pixels"]) for r in rows] == [
        ("wiener", 128, 128**2), ("rl", 128, 128**2), ("wiener", 256, 256**2), ("rl", 256, 256**2)]
    assert all(math.isfinite(r["seconds"]) and r["seconds"] > 0 for r in rows)
    assert {r["threads"] for r in rows} == {torch.get_num_threads()}
    scaling.write_report(rows, tmp_path, {"wiener": {"balance": 0.01}, "rl": {"num_iter": 3}})
    assert _read_csv(tmp_path / "scaling.csv") == [{**r, "seconds": pytest.approx(r["seconds"], abs=5e-5)} for r in rows]
    slopes = scaling.fit_slopes(rows)
    table = (tmp_path / "scaling.md").read_text()
    for name in ("wiener", "rl"):
        times = " | ".join(f"{r['seconds']:.3g}" for r in rows if r["method"] == name)
        assert f"| {name} | {times} | {slopes[name]:.2f} |" in table
    assert "Parameters: wiener: {'balance': 0.01}, rl: {'num_iter': 3}." in table


def test_scaling_image_is_square_and_observed():
    clean, observed = scaling.scaling_image(1100)
    assert clean.shape == observed.shape == (1100, 1100)
    assert clean.max() == pytest.approx(1.0)
    assert np.abs(observed - clean).std() > 0.005
    np.testing.assert_array_equal(clean[:, 1000:], clean[:, 900:1000][:, ::-1])  # mirrored at the 872 x 1000 edge
    np.testing.assert_array_equal(clean[872:972, :1000], clean[772:872, :1000][::-1])


def test_run_scaling_writes_the_report_and_checks_its_input(tmp_path):
    report = run_scaling(sizes=[64, 96], methods=["wiener"], output=tmp_path)
    assert report.paths == [tmp_path / "scaling.csv", tmp_path / "scaling.md", tmp_path / "scaling.png"]
    assert report.text == (tmp_path / "scaling.md").read_text() + "\nwrote " + ", ".join(map(str, report.paths))
    assert [(r["method"], r["size"]) for r in _read_csv(tmp_path / "scaling.csv")] == [("wiener", 64), ("wiener", 96)]
    for options, message in (({"max_seconds": 0.0}, "--max-seconds must be positive, got 0.0"),
                             ({"max_seconds": float("nan")}, "--max-seconds must be positive, got nan"),
                             ({"max_seconds": -1}, "--max-seconds must be positive, got -1"),
                             ({"sizes": [0]}, r"--sizes \[0\] are too small: expected image sides of at least 64"),
                             ({"sizes": [256, -5]}, r"--sizes \[-5\] are too small"),
                             ({"sizes": []}, "--sizes is empty"),
                             ({"sizes": [256.5]}, "--sizes must be whole numbers of pixels"),
                             ({"methods": ["wiener", "fast"]}, r"--methods \['fast'\] not timed; choose from")):
        with pytest.raises(InputError, match=message):
            run_scaling(**{"sizes": [64], "methods": ["wiener"], "output": tmp_path / "bad", **options})
    assert not (tmp_path / "bad").exists()
