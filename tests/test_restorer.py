"""The restorer: Wiener bank, noise units, tiling, scenes, training, methods."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from astrodeconv.errors import InputError
from astrodeconv.forward import blur, observe
from astrodeconv.metrics import psnr
from astrodeconv.nn import create_model
from astrodeconv.nn.predict import deconvolve
from astrodeconv.nn.restorer import Restorer, normalise_noise, wiener_bank
from astrodeconv.psf import airy_paper, gaussian, moffat


def tiny(psf=None, **kwargs) -> Restorer:
    torch.manual_seed(0)
    return Restorer(**{"features": 4, "depth": 3, "kernel": 15, **kwargs}, psf=gaussian(3.0) if psf is None else psf)


def test_bank_kernels_restore_a_periodic_blur_like_the_fft_wiener_filter(rng):
    from astrodeconv.classical import wiener

    x = rng.random((96, 96))
    psf = gaussian(3.0)
    y = blur(x, psf, "periodic")
    bank = wiener_bank(psf, balances=(1e-2,), kernel=41, taper=False)[0]
    # Valid correlation with the flipped kernel == the FFT Wiener filter away from the borders.
    from scipy.signal import correlate

    spatial = correlate(np.pad(y, 20, mode="wrap"), bank.astype(np.float64), mode="valid")
    fft = wiener(y, psf, balance=1e-2)
    assert np.max(np.abs(spatial - fft)) < 2e-3 * np.ptp(fft)


def test_tapered_bank_keeps_the_mean_level_of_a_wide_psf(sky):
    """A plain cut of a wide Airy's inverse changes the image's level; the Hann taper does not."""
    from scipy.signal import correlate

    from astrodeconv.classical import wiener
    from astrodeconv.psf import airy

    x = sky("m101_dss1")[100:356, 100:356]
    psf = airy(12.0, size=129)
    y = blur(x, psf, "periodic")
    scores = {}
    for taper in (False, True):
        kernel = wiener_bank(psf, balances=(0.1,), kernel=49, taper=taper)[0].astype(np.float64)
        restored = correlate(np.pad(y, 24, mode="wrap"), kernel, mode="valid")
        scores[taper] = psnr(restored, x, 1.0, border=32)
    full = psnr(wiener(y, psf, balance=0.1), x, 1.0, border=32)
    assert scores[True] > scores[False] + 10.0
    assert scores[True] > full - 1.5


def test_bank_rejects_bad_kernel_and_balances():
    with pytest.raises(InputError, match="odd"):
        wiener_bank(gaussian(3.0), kernel=10)
    with pytest.raises(InputError, match="positive"):
        wiener_bank(gaussian(3.0), balances=(0.0,))


def test_registered_margin_matches_an_impulse():
    net = create_model("restorer", psf=airy_paper())
    assert net.margin == 34
    small = tiny().double()
    with torch.no_grad():  # positive weights: every ReLU active, no hidden dependency
        for p in small.parameters():
            p.copy_(p.abs() + 1e-3)
        size = 4 * small.margin + 3
        base = torch.ones(1, 1, size, size, dtype=torch.float64)
        impulse = base.clone()
        impulse[0, 0, size // 2, size // 2] += 1.0
        changed = (small(impulse) - small(base)).abs()[0, 0] > 1e-9  # the FFT bank's rounding is ~1e-15
    rows, cols = changed.any(dim=1).nonzero().flatten(), changed.any(dim=0).nonzero().flatten()
    assert int(rows.max() - rows.min()) == int(cols.max() - cols.min()) == 2 * small.margin


def test_shapes_and_every_parameter_gets_a_gradient(rng):
    net = create_model("restorer", psf=airy_paper())
    x = torch.from_numpy(rng.standard_normal((2, 1, 90, 80), dtype=np.float32))
    out = net(x)
    assert tuple(out.shape) == (2, 1, 90 - 68, 80 - 68) and torch.isfinite(out).all()
    torch.mean(out**2).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and float(p.grad.abs().sum()) > 0, name
    assert not net.bank.requires_grad  # the Wiener bank is computed from the PSF, not learned


def test_fft_bank_equals_direct_correlation(rng):
    from torch.nn import functional as F

    net = create_model("restorer", psf=airy_paper())
    y = torch.from_numpy(rng.standard_normal((2, 1, 70, 83), dtype=np.float32)) * 50
    direct = F.conv2d(y, net.bank)
    torch.testing.assert_close(net.features(y)[:, : direct.shape[1]], direct, atol=1e-3, rtol=1e-5)
    with pytest.raises(InputError, match="smaller than its 49-px"):
        net.features(torch.zeros(1, 1, 40, 60))


def test_tiled_prediction_equals_whole_image(rng):
    net = tiny()
    y = rng.standard_normal((61, 53)).astype(np.float32)
    whole = deconvolve(y, net)
    for tile in (8, 17, 40):
        np.testing.assert_allclose(deconvolve(y, net, tile=tile), whole, atol=1e-4)


def test_normalise_noise_uses_median_and_sigma(rng):
    from astrodeconv.noise import estimate_sigma, sky_level

    y = 5.0 + 0.2 * rng.standard_normal((128, 128))
    stars = y.copy()
    stars[::9, ::9] += 50.0 * rng.random(stars[::9, ::9].shape)  # sources in 1 % of the pixels
    # the sky's level and noise barely move with them (a plain median and the all-block estimate do)
    assert abs(sky_level(stars) - sky_level(y)) < 0.01 * 0.2 and abs(estimate_sigma(stars) / estimate_sigma(y) - 1) < 0.02
    z, background, sigma = normalise_noise(y)
    assert abs(background - 5.0) < 0.01 and abs(sigma - 0.2) < 0.01
    assert abs(np.std(z) - 1.0) < 0.02
    z2, _, sigma2 = normalise_noise(y, sigma=0.5)
    assert sigma2 == 0.5 and np.allclose(z2, (y - background) / 0.5, atol=1e-5)
    with pytest.raises(InputError, match="sigma must be a positive"):
        normalise_noise(y, sigma=-1.0)
    with pytest.raises(InputError, match="estimates to 0"):
        normalise_noise(np.ones((16, 16)))


@pytest.mark.parametrize("reference_snr", [None, 60.0])
def test_restoration_is_equivariant_to_units_and_offsets(small_image, tmp_path, reference_snr):
    from astrodeconv.methods import restore
    from astrodeconv.nn.restorer import restorer_config
    from astrodeconv.nn.store import ModelConfig, save_model

    net = tiny(reference_snr=reference_snr)
    save_model(net, tmp_path / "m", ModelConfig(arch="restorer", margin=net.margin, psf="any", sigma=0.0,
                                                patch_size=2 * net.margin + 8, target_size=8,
                                                model_kwargs=restorer_config(net)))
    y = observe(small_image, gaussian(3.0), sigma=0.01, rng=0)
    a = restore(y, gaussian(3.0), "restorer-universal", model=tmp_path / "m", sigma=0.01)
    b = restore(1000.0 * y + 37.0, gaussian(3.0), "restorer-universal", model=tmp_path / "m", sigma=10.0)
    np.testing.assert_allclose(b, 1000.0 * a + 37.0, rtol=1e-5, atol=1e-3)


def test_bank_follows_the_signal_to_noise_ratio():
    """With a reference_snr, halving the image's SNR multiplies every balance by 4."""
    from astrodeconv.nn.restorer import NoiseUnits

    net = tiny(reference_snr=60.0, balances=(1e-3, 1e-2))
    np.testing.assert_allclose(net.bank[:, 0].numpy(), wiener_bank(gaussian(3.0), (1e-3, 1e-2), 15), atol=1e-7)
    NoiseUnits(net, 0.0, 1.0, snr=30.0)
    assert net.bank_balances() == pytest.approx((4e-3, 4e-2))
    np.testing.assert_allclose(net.bank[:, 0].numpy(), wiener_bank(gaussian(3.0), (4e-3, 4e-2), 15), atol=1e-7)
    with pytest.raises(InputError, match="pass snr"):
        NoiseUnits(net, 0.0, 1.0)
    fixed = tiny(balances=(1e-3, 1e-2))
    NoiseUnits(fixed, 0.0, 1.0, snr=30.0)
    assert fixed.bank_balances() == (1e-3, 1e-2)


def test_signal_to_noise_is_a_percentile_of_the_noise_normalised_image(rng):
    from astrodeconv.nn.restorer import noise_statistics, signal_to_noise

    y = 3.0 + 0.1 * rng.standard_normal((200, 200))
    y[:20, :20] += 5.0  # 1 % of the pixels are 50 sigma above the sky
    stats = noise_statistics(y, sigma=0.1)
    assert stats.snr == pytest.approx(51.3, abs=0.5)  # the block's 90th percentile: 50 + 1.28 sigma
    y[100, 100] = 1e6  # one hot pixel does not set it
    assert noise_statistics(y, sigma=0.1).snr == pytest.approx(stats.snr, abs=1.0)
    assert signal_to_noise(np.zeros((8, 8))) == 1.0  # empty sky: at least 1


def test_scenes_are_in_noise_units_and_aligned(rng):
    from astrodeconv.nn.scenes import SETTINGS, simulate_scene

    x = np.zeros((300, 300))
    x[150, 150] = 1.0
    scene = simulate_scene(x, SETTINGS["paper"], np.random.default_rng(1), size=200)
    assert scene.observed.shape == scene.truth.shape == (200, 200)
    assert scene.psf_spec == "airy-paper" and scene.scale == 0.01
    # The truth is the clean crop; the observation is its blur: both peak at the same place (+- half a pixel).
    t = np.unravel_index(np.argmax(scene.truth), scene.truth.shape)
    o = np.unravel_index(np.argmax(blur(scene.truth, gaussian(3.0))), scene.truth.shape)
    assert np.abs(np.subtract(t, o)).max() <= 1
    assert abs(np.std(scene.observed[:50, :50]) - 1.0) < 0.15  # empty sky: unit noise
    universal = [simulate_scene(x, SETTINGS["universal"], np.random.default_rng(s), size=64) for s in range(30)]
    assert {s.psf_spec.split(":")[0] for s in universal} >= {"airy", "gaussian", "moffat"}
    assert all(0.002 <= s.sigma <= 0.07 for s in universal)
    widths = [float(s.psf_spec.split("fwhm=")[1].split(",")[0]) for s in universal if "fwhm=" in s.psf_spec]
    assert all(2.5 <= w <= 13.0 for w in widths)
    assert sum(w < 5.7 for w in widths) >= 0.4 * len(widths)  # log-uniform: half below 5.7 px (uniform: 30 %)


def test_scenes_handed_a_wrong_psf_are_observed_with_the_true_one():
    from dataclasses import replace

    from astrodeconv.nn.scenes import SETTINGS, simulate_scene, wrong_psf
    from astrodeconv.psf import fwhm

    truth = airy_paper()[:63, :63]
    truth = truth / truth.sum()
    widths = [fwhm(wrong_psf(truth, np.random.default_rng(s))) / fwhm(truth) for s in range(40)]
    assert min(widths) > 0.75 and max(widths) < 1.3 and np.mean(np.abs(np.subtract(widths, 1)) > 0.03) > 0.2
    x = np.random.default_rng(0).random((200, 200)) ** 8
    setting = SETTINGS["universal"]
    wrong = replace(setting, paper_fraction=0.0, psf_error_fraction=1.0)
    right = replace(setting, paper_fraction=0.0)
    for seed in range(4):
        a = simulate_scene(x, right, np.random.default_rng(seed), size=64)
        b = simulate_scene(x, wrong, np.random.default_rng(seed), size=64)
        np.testing.assert_array_equal(a.observed, b.observed)  # the same observation and truth ...
        np.testing.assert_array_equal(a.truth, b.truth)
        assert b.psf_spec.endswith("(handed over wrong)")  # ... and another PSF handed to the network
        assert b.psf.shape != a.psf.shape or not np.allclose(a.psf, b.psf)
        assert abs(b.psf.sum() - 1.0) < 1e-9 and b.psf.min() >= 0
    paper = replace(setting, paper_fraction=1.0, psf_error_fraction=1.0)  # the paper's PSF is known exactly
    assert all(simulate_scene(x, paper, np.random.default_rng(s), size=64).psf_spec == "airy-paper" for s in range(3))


def test_training_refuses_a_scene_share_outside_0_to_1(tmp_path, small_image):
    from astrodeconv.nn.restorer_training import train_restorer

    for name in ("instrument_fraction", "psf_error_fraction"):
        with pytest.raises(InputError, match=f"{name} must be within 0 to 1, got 1.5"):
            train_restorer([small_image], tmp_path / name, setting="universal", epochs=1, progress=False,
                           **{name: 1.5})
        with pytest.raises(InputError, match=f"{name} must be 0 with it"):
            train_restorer([small_image], tmp_path / name, setting="paper", epochs=1, progress=False, **{name: 0.5})
    # an unfinished run resumes only with the share it was started with
    image = np.pad(small_image, 150, mode="symmetric")
    kwargs = dict(setting="universal", epochs=2, scenes=2, patches=2, out_size=8, batch=4, val_scenes=2,
                  progress=False, model_kwargs={"features": 4, "depth": 3, "kernel": 15}, threads=1)
    train_restorer([image], tmp_path / "part", stop_after=1, psf_error_fraction=0.5, **kwargs)
    for other in (None, 0.2):
        with pytest.raises(InputError, match=r"other settings \(psf_error_fraction differ\)"):
            train_restorer([image], tmp_path / "part", psf_error_fraction=other, **kwargs)


def test_training_lowers_the_validation_loss_and_resumes(tmp_path, small_image, rng):
    from astrodeconv.nn.restorer_training import train_restorer
    from astrodeconv.nn.store import load_model

    images = [np.pad(small_image, 150, mode="symmetric") for _ in range(2)]
    kwargs = dict(setting="universal", scenes=4, patches=4, out_size=8, batch=8, val_scenes=4, progress=False,
                  model_kwargs={"features": 4, "depth": 3, "kernel": 15}, threads=1)
    out = tmp_path / "model"
    train_restorer(images, out, epochs=3, **kwargs)
    model, config, meta = load_model(out)
    assert config.arch == "restorer" and config.model_kwargs["depth"] == 3
    assert meta["finished"] and meta["epochs_run"] == 3 and not (out / "checkpoint.pt").exists()
    rows = [line.split(",") for line in (out / "history.csv").read_text().splitlines()[1:]]
    val = [float(r[2]) for r in rows]
    assert min(val[1:]) < val[0]  # relative to the bank's middle Wiener filter, the error falls

    # Killed after epoch 1, resumed: the same weights as the uninterrupted run.
    part = tmp_path / "part"
    train_restorer(images, part, epochs=3, stop_after=1, **kwargs)
    assert (part / "checkpoint.pt").exists()
    train_restorer(images, part, epochs=3, **kwargs)
    resumed, _, _ = load_model(part)
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values()):
        torch.testing.assert_close(a, b)

    # Fine-tuning with reference_snr turns the fixed bank into a scaled one and starts from the same weights.
    tuned = tmp_path / "tuned"
    train_restorer(images, tuned, epochs=1, init=out, reference_snr=60.0, **kwargs, lr=1e-12)
    scaled, config, _ = load_model(tuned)
    assert scaled.reference_snr == 60.0 and config.model_kwargs["reference_snr"] == 60.0
    for name, value in model.state_dict().items():
        if name != "bank":
            torch.testing.assert_close(scaled.state_dict()[name], value)


def test_train_restorer_command_writes_a_model_and_refuses_a_finished_folder(tmp_path, shared_dir, capsys):
    from astrodeconv.cli import main
    from astrodeconv.nn.store import load_model

    image = str(shared_dir / "data" / "sky" / "m51_dss1red.fits.gz")
    out = tmp_path / "model"
    args = ["train-restorer", "--images", image, "-o", str(out), "--epochs", "1", "--scenes", "2", "--patches", "2",
            "--val-scenes", "2", "--threads", "1", "--setting", "paper"]
    assert main(args) == 0
    model, config, meta = load_model(out)
    assert config.psf == "airy-paper" and meta["setting"] == "paper" and meta["finished"]
    assert model.reference_snr is None  # the paper's setting has one noise level: fixed balances
    assert main(args) == 2
    assert "already holds a finished model" in capsys.readouterr().err
    universal = args[:args.index("--setting")] + ["--setting", "universal"]
    universal[universal.index("-o") + 1] = str(tmp_path / "universal")
    assert main(universal) == 0
    assert load_model(tmp_path / "universal")[0].reference_snr == 60.0  # the bank follows the image's SNR
    wrong = universal[:universal.index("-o") + 1] + [str(tmp_path / "wrong")] + universal[universal.index("-o") + 2:]
    assert main(wrong + ["--psf-error-fraction", "0.5"]) == 0
    assert load_model(tmp_path / "wrong")[2]["psf_error_fraction"] == 0.5  # recorded with the model
    wrong[wrong.index("-o") + 1] = str(tmp_path / "refused")
    assert main(wrong + ["--psf-error-fraction", "2"]) == 2
    assert "psf_error_fraction must be within 0 to 1, got 2.0" in capsys.readouterr().err
    assert main(universal + ["--fixed-bank", "--reference-snr", "30"]) == 2
    assert "exclude each other" in capsys.readouterr().err


def _local(**kwargs) -> Restorer:
    return tiny(reference_snr=60.0, snr_window=9, balances=(1e-3, 1e-2), **kwargs)


def test_local_bank_tiles_exactly_and_its_margin_is_what_an_impulse_reaches(rng):
    net = _local()
    assert net.margin == 1 + 4 + 2 + 3 and net.feature_margin == 7  # max(kernel // 2, 1 + 9 // 2 + 5 // 2) + depth
    y = (rng.standard_normal((70, 61)) * 3 + 40 * (rng.random((70, 61)) > 0.995)).astype(np.float32)
    whole = deconvolve(y, net)
    for tile in (8, 23):
        np.testing.assert_allclose(deconvolve(y, net, tile=tile), whole, atol=1e-4)
    with torch.no_grad():  # a bright point changes the output within the margin, and nowhere beyond
        base = torch.from_numpy(rng.standard_normal((1, 1, 81, 81)).astype(np.float32))
        lit = base.clone()
        lit[0, 0, 40, 40] += 500.0
        changed = (net(lit) - net(base)).abs()[0, 0] > 1e-6
    rows = changed.any(dim=1).nonzero().flatten()
    assert int(rows.max() - rows.min()) <= 2 * net.margin


def test_local_bank_smooths_where_the_signal_is_low():
    """Far from any source the local balances are those of a signal-to-noise ratio of 1: the smoothest."""
    net = _local()
    y = torch.zeros(1, 1, 60, 60)
    y[0, 0, 10, 10] = 1000.0
    snr = net.local_snr(y)[0, 0]
    assert float(snr[-1, -1]) == pytest.approx(1.0) and float(snr[0, 0]) > 100
    photon = _local().set_photon(1.0)
    assert float(photon.local_snr(y)[0, 0][0, 0]) < 0.2 * float(snr[0, 0])  # photon noise: a lower ratio
    with pytest.raises(InputError, match="reference_snr"):
        tiny(snr_window=9)
    with pytest.raises(InputError, match=">= 0"):
        net.set_photon(-1.0)


def test_conserving_the_flux_puts_back_what_the_network_lost(rng):
    psf = gaussian(3.0)
    net = tiny(psf=psf, conserve_flux=True)
    plain = tiny(psf=psf)
    assert net.margin == plain.margin + 2 * (15 // 2)
    with torch.no_grad():
        plain.body[-1].weight.zero_()
        plain.body[-1].bias.zero_()
        plain.skip.weight.mul_(0.5)  # a network that loses half the light: half its Wiener channel
        net.load_state_dict(plain.state_dict())
    truth = np.zeros((120, 120))
    truth[rng.integers(40, 80, 12), rng.integers(40, 80, 12)] = 200.0
    y = (blur(truth, psf) + rng.standard_normal(truth.shape)).astype(np.float32)
    lost, kept = deconvolve(y, plain), deconvolve(y, net)
    inside = (slice(30, 90), slice(30, 90))
    assert abs(lost[inside].sum() / truth[inside].sum() - 0.5) < 0.1
    assert abs(kept[inside].sum() / truth[inside].sum() - 1) < 0.03
    np.testing.assert_allclose(deconvolve(y, net, tile=24), kept, atol=1e-4)
    assert kept.min() >= -3.0 - 1e-6  # never below the sky by more than three times the noise
