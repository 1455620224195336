import numpy as np
import pytest

from astrodeconv import scaling


def test_fit_slopes_recovers_power_laws():
    rows = []
    for n in (256, 512, 1024, 2048):
        rows.append({"method": "linear", "size": n, "pixels": n * n, "seconds": 1e-6 * n * n, "threads": 2})
        rows.append({"method": "quadratic", "size": n, "pixels": n * n, "seconds": 1e-12 * (n * n) ** 2, "threads": 2})
    slopes = scaling.fit_slopes(rows)
    assert slopes["linear"] == pytest.approx(1.0) and slopes["quadratic"] == pytest.approx(2.0)


def test_measure_and_report_on_small_sizes(tmp_path):
    rows = scaling.measure({"wiener": {"balance": 0.01}, "rl": {"num_iter": 3}}, sizes=(128, 256), progress=False)
    assert [(r["method"], r["size"]) for r in rows] == [("wiener", 128), ("rl", 128), ("wiener", 256), ("rl", 256)]
    assert all(r["seconds"] > 0 for r in rows)
    written = scaling.write_report(rows, tmp_path)
    assert all(p.stat().st_size > 0 for p in written)
    assert "log-log slope" in (tmp_path / "scaling.md").read_text()


def test_scaling_image_is_square_and_observed():
    clean, observed = scaling.scaling_image(1100)
    assert clean.shape == observed.shape == (1100, 1100)
    assert np.abs(observed - clean).std() > 0.005


def test_a_method_stops_growing_past_max_seconds(tmp_path, capsys):
    from astrodeconv.cli import main

    rows = scaling.measure({"wiener": {"balance": 0.01}}, sizes=(64, 128), max_seconds=1e-9, progress=False)
    assert [r["size"] for r in rows] == [64]
    assert main(["scaling", "--sizes", "64", "--methods", "wiener", "--max-seconds", "0", "-o", str(tmp_path)]) == 2
    assert "--max-seconds must be positive, got 0.0" in capsys.readouterr().err
    assert main(["scaling", "--sizes", "64", "--methods", "wiener", "--max-seconds", "nan", "-o", str(tmp_path)]) == 2
