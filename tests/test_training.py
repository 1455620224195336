"""Training pairs, the model folder, training, and resuming a killed run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from astrodeconv.errors import InputError  # noqa: E402
from astrodeconv.nn.patches import extract_pairs, make_dataset  # noqa: E402
from astrodeconv.nn.predict import deconvolve  # noqa: E402
from astrodeconv.nn.store import ModelConfig, load_model, read_config, save_model  # noqa: E402
from astrodeconv.nn.training import early_stopping, load_images, train  # noqa: E402
from astrodeconv.psf import gaussian  # noqa: E402


def _sky(seed: int, shape=(90, 80)) -> np.ndarray:
    """Synthetic sky: faint background, a few Gaussian blobs and stars, max 1."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    x = np.full(shape, 0.05)
    for _ in range(6):
        r, c, s, a = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(2, 8), rng.uniform(0.1, 0.5)
        x += a * np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / (2 * s**2))
    for _ in range(25):
        x[rng.integers(shape[0]), rng.integers(shape[1])] += rng.uniform(0.2, 1.0)
    return x / x.max()


IMAGES = [_sky(1), _sky(2, (70, 100))]
SMALL = dict(psf_spec="gaussian:fwhm=3", sigma=0.01, samples=600, val_samples=200, batch=20, progress=False, threads=1)


# --- patches ---------------------------------------------------------------------------


def test_pairs_are_aligned_by_the_margin(rng):
    clean = [rng.random((50, 45)), rng.random((40, 60))]
    inputs, targets = extract_pairs(clean, clean, 300, rng, in_size=32, margin=9)
    assert inputs.shape == (300, 1, 32, 32) and targets.shape == (300, 1, 14, 14)
    assert inputs.dtype == targets.dtype == np.float32
    np.testing.assert_array_equal(inputs[:, :, 9:23, 9:23], targets)


def test_pairs_come_from_every_image_and_are_seeded():
    clean = [np.zeros((40, 40)), np.ones((40, 40))]
    _, t = extract_pairs(clean, clean, 101, np.random.default_rng(0))
    assert abs(int((t[:, 0, 0, 0] == 1).sum()) - 50) <= 1
    a = extract_pairs(IMAGES, IMAGES, 50, np.random.default_rng(7))
    b = extract_pairs(IMAGES, IMAGES, 50, np.random.default_rng(7))
    c = extract_pairs(IMAGES, IMAGES, 50, np.random.default_rng(8))
    np.testing.assert_array_equal(a[0], b[0])
    assert not np.array_equal(a[0], c[0])


def test_dataset_inputs_are_observed_and_targets_clean():
    (xi, yt), (vi, vt) = make_dataset(IMAGES, gaussian(3.0), 0.01, 200, 80, np.random.default_rng(0))
    assert xi.shape == (200, 1, 32, 32) and vt.shape == (80, 1, 14, 14)
    # inputs are blurred + noisy: their centre differs from the clean target by about the noise or more
    resid = xi[:, :, 9:23, 9:23] - yt
    assert 0.01 < float(resid.std()) < 0.2


def test_pair_errors():
    rng = np.random.default_rng(0)
    with pytest.raises(InputError, match="smaller than the 32 x 32 patch"):
        extract_pairs([np.zeros((20, 40))], [np.zeros((20, 40))], 5, rng)
    with pytest.raises(InputError, match="same 2-D shape"):
        extract_pairs([np.zeros((40, 40))], [np.zeros((40, 41))], 5, rng)
    with pytest.raises(InputError, match="leaves no output"):
        extract_pairs([np.zeros((40, 40))], [np.zeros((40, 40))], 5, rng, in_size=18, margin=9)


# --- config and model folder -----------------------------------------------------------


def test_config_validation():
    cfg = ModelConfig()
    assert (cfg.arch, cfg.lr, cfg.momentum, cfg.nesterov, cfg.batch, cfg.epochs) == ("cnn3", 0.01, 0.9, True, 50, 30)
    assert (cfg.samples, cfg.val_samples, cfg.patience, cfg.patch_size, cfg.target_size) == (100_000, 50_000, 0, 32, 14)
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(InputError, match=r"unknown key\(s\) \['colour'\]"):
        ModelConfig.from_dict({"colour": 1})
    with pytest.raises(InputError, match="optimizer must be one of"):
        ModelConfig(optimizer="lbfgs")
    with pytest.raises(InputError, match="margin 4 does not match"):
        ModelConfig(margin=4)
    with pytest.raises(InputError, match="target_size 10 must equal"):
        ModelConfig(target_size=10)
    with pytest.raises(InputError, match="lr must be"):
        ModelConfig(lr=-1.0)
    with pytest.raises(Exception):  # frozen
        cfg.lr = 1.0


def test_early_stopping_rule():
    vals, best, bad, stops = [1.0, 0.8, 0.9, 0.7, 0.75, 0.76], float("inf"), 0, []
    for v in vals:
        improved, bad, stop = early_stopping(v, best, bad, patience=1)
        best = min(best, v)
        stops.append(stop)
    assert stops == [False, False, False, False, False, True]
    assert early_stopping(0.9, 0.8, 0, patience=0) == (False, 1, True)


def test_model_folder_round_trip_and_errors(tmp_path, small_image):
    torch.manual_seed(0)
    from astrodeconv.nn.models import create_model

    net = create_model("cnn1")
    folder = save_model(net, tmp_path / "m", ModelConfig(arch="cnn1"), {"note": "x"})
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "meta.json", "weights.pt"]
    loaded, cfg, meta = load_model(folder)
    assert cfg.arch == "cnn1" and meta["note"] == "x" and "astrodeconv_version" in meta
    np.testing.assert_allclose(deconvolve(small_image, loaded), deconvolve(small_image, net), atol=1e-6)
    # config says cnn3 but the weights are cnn1's
    (folder / "config.json").write_text(json.dumps(ModelConfig(arch="cnn3").to_dict()))
    with pytest.raises(InputError, match="do not fit architecture 'cnn3'"):
        load_model(folder)
    (folder / "config.json").write_text(json.dumps({"arch": "cnn1", "size": 3}))
    with pytest.raises(InputError, match=r"unknown key\(s\) \['size'\]"):
        read_config(folder)
    (folder / "config.json").write_text("{not json")
    with pytest.raises(InputError, match="cannot read .* as JSON"):
        load_model(folder)
    (folder / "config.json").write_text(json.dumps(ModelConfig(arch="cnn1").to_dict()))
    (folder / "weights.pt").write_bytes(b"garbage")
    with pytest.raises(InputError, match="corrupt"):
        load_model(folder)
    (folder / "weights.pt").unlink()
    with pytest.raises(InputError, match="weights.pt is missing"):
        load_model(folder)
    with pytest.raises(InputError, match="model folder not found"):
        load_model(tmp_path / "nowhere")


def test_load_images_from_fits(tmp_path):
    from astropy.io import fits

    raw = np.array([[-2.0, 4.0], [8.0, np.nan]]) * np.ones((1, 1))
    path = tmp_path / "a.fits"
    fits.PrimaryHDU(np.tile(raw, (20, 20))).writeto(path)
    arrays, records = load_images([path, IMAGES[0]], image_names=None)
    assert arrays[0].max() == 1.0 and arrays[0].min() == 0.0 and arrays[0][0, 1] == 0.5
    assert records[0]["name"] == "a" and len(records[0]["file_sha256"]) == 64
    assert records[1]["name"] == "array1" and len(records[1]["sha256"]) == 64
    with pytest.raises(InputError, match="2 names for 1 images"):
        load_images([IMAGES[0]], image_names=["a", "b"])


# --- training --------------------------------------------------------------------------


def test_two_epochs_lower_the_validation_loss(tmp_path):
    out = train(IMAGES, tmp_path / "run", arch="cnn3", epochs=2, optimizer="adam", lr=1e-3, patience=2, seed=0, **SMALL)
    meta = json.loads((out / "meta.json").read_text())
    rows = (out / "history.csv").read_text().splitlines()
    assert rows[0] == "epoch,loss,val_loss,best,seconds" and len(rows) == 3
    assert meta["epochs_run"] == 2 and meta["best_val_loss"] < 0.5 * meta["initial_val_loss"]
    assert [r["name"] for r in meta["training_images"]] == ["array0", "array1"]
    assert meta["training"]["optimizer"] == "adam" and meta["astrodeconv_version"]
    assert not (out / "checkpoint.pt").exists()
    cfg = read_config(out)
    assert (cfg.psf, cfg.sigma, cfg.samples) == ("gaussian:fwhm=3", 0.01, 600)
    net, _, _ = load_model(out)
    assert np.isfinite(deconvolve(IMAGES[0], net)).all()
    # a finished folder is not overwritten; resume returns it as it is
    with pytest.raises(InputError, match="is not empty"):
        train(IMAGES, out, epochs=2, **SMALL)
    assert train(IMAGES, out, epochs=2, resume=True, **SMALL) == out


def test_paper_sgd_settings_train_cnn1(tmp_path):
    out = train(IMAGES, tmp_path / "sgd", arch="cnn1", epochs=2, patience=0, seed=1, **SMALL)
    meta = json.loads((out / "meta.json").read_text())
    assert meta["training"]["optimizer"] == "sgd" and meta["training"]["nesterov"] is True
    assert meta["best_val_loss"] < meta["initial_val_loss"]


_CHILD = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from test_training import IMAGES, SMALL
    from astrodeconv.nn.training import train
    train(IMAGES, {out!r}, arch="cnn3", epochs=4, optimizer="adam", lr=1e-3, patience=4, seed=5, **SMALL)
    """
)


def test_resume_after_sigkill_is_exact(tmp_path):
    """Kill -9 a training after its first checkpoint, resume, and match an uninterrupted run."""
    killed = tmp_path / "killed"
    code = _CHILD.format(tests=os.path.dirname(__file__), out=str(killed))
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not (killed / "checkpoint.pt").exists():
            if proc.poll() is not None:
                pytest.fail(f"training subprocess ended early: {proc.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("no checkpoint after 60 s")
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not (killed / "weights.pt").exists()
    done_before = torch.load(killed / "checkpoint.pt", weights_only=False)["epoch"]
    assert 1 <= done_before < 4  # killed during a later epoch
    with pytest.raises(InputError, match="is not empty"):
        train(IMAGES, killed, arch="cnn3", epochs=4, optimizer="adam", lr=1e-3, patience=4, seed=5, **SMALL)
    with pytest.raises(InputError, match="other settings"):
        train(IMAGES, killed, arch="cnn3", epochs=4, optimizer="adam", lr=2e-3, patience=4, seed=5, resume=True, **SMALL)
    train(IMAGES, killed, arch="cnn3", epochs=4, optimizer="adam", lr=1e-3, patience=4, seed=5, resume=True, **SMALL)
    straight = train(IMAGES, tmp_path / "straight", arch="cnn3", epochs=4, optimizer="adam", lr=1e-3, patience=4, seed=5, **SMALL)
    hist_k = np.loadtxt(killed / "history.csv", delimiter=",", skiprows=1)
    hist_s = np.loadtxt(straight / "history.csv", delimiter=",", skiprows=1)
    assert hist_k.shape == hist_s.shape == (4, 5)
    np.testing.assert_array_equal(hist_k[:, :4], hist_s[:, :4])  # identical losses, epoch by epoch
    wk = torch.load(killed / "weights.pt", weights_only=True)
    ws = torch.load(straight / "weights.pt", weights_only=True)
    assert all(torch.equal(wk[k], ws[k]) for k in ws)
