"""Whole-image and tiled prediction, boundary modes, devices, and the registered methods."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import astrodeconv.networks as networks  # noqa: E402
from astrodeconv.errors import InputError  # noqa: E402
from astrodeconv.methods import METHODS  # noqa: E402
from astrodeconv.nn.models import create_model, list_models  # noqa: E402
from astrodeconv.nn.predict import BOUNDARIES, deconvolve, resolve_device, tile_origins  # noqa: E402
from astrodeconv.nn.store import ModelConfig, save_model  # noqa: E402
from astrodeconv.psf import airy_paper  # noqa: E402

PAPER_H5 = "reference/paper_models/32x32_10x10-64_6x6-16_5x5-1_PSF64_sigma0.010_{}.h5"


def _net(name: str) -> torch.nn.Module:
    """A randomly initialised network whose ReLUs are mostly active (non-trivial output)."""
    from astrodeconv.psf import gaussian

    torch.manual_seed(3)
    net = create_model(name, **({"psf": gaussian(3.0)} if name == "restorer" else {}))
    with torch.no_grad():
        for conv in [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]:
            conv.bias.fill_(0.05)
    return net.eval()


@pytest.mark.parametrize("name", list_models())
@pytest.mark.parametrize("tile", [8, 13, 16, 100])
def test_tiled_equals_whole_image(name, tile, small_image):
    net = _net(name)
    whole = deconvolve(small_image, net, tile=max(small_image.shape))
    tiled = deconvolve(small_image, net, tile=tile, batch_tiles=3)
    assert whole.shape == small_image.shape == (37, 31)
    assert whole.std() > 1e-3  # not a dead network
    np.testing.assert_allclose(tiled, whole, atol=1e-5, rtol=0)


def test_auto_tiling_equals_whole_image_on_a_large_image(rng, monkeypatch):
    import astrodeconv.nn.predict as predict

    monkeypatch.setattr(predict, "DEFAULT_TILE", 128)  # 300 x 270 -> 3 x 3 tiles of 128, 1 pass
    net = _net("cnn1")
    image = rng.random((300, 270))
    np.testing.assert_allclose(deconvolve(image, net), deconvolve(image, net, tile=300), atol=1e-5, rtol=0)


def test_batch_tiles_does_not_change_the_result(small_image):
    net = _net("cnn3")
    ref = deconvolve(small_image, net, tile=8, batch_tiles=1)
    for b in (2, 7, 100):
        np.testing.assert_allclose(deconvolve(small_image, net, tile=8, batch_tiles=b), ref, atol=1e-6, rtol=0)


def test_tile_origins_cover_every_pixel():
    for length in (1, 7, 37, 64):
        for tile in (1, 5, 8, 13, 64, 100):
            covered = np.zeros(length, bool)
            for s in tile_origins(length, min(tile, length)):
                assert 0 <= s and s + min(tile, length) <= length
                covered[s : s + tile] = True
            assert covered.all()


def test_whole_image_equals_a_direct_valid_convolution(small_image):
    """The padding is by exactly the margin and the output grid is centred on the input grid."""
    net = _net("cnn1")
    conv = net[0]
    out = deconvolve(small_image, net, boundary="zero")
    padded = np.pad(small_image, 9)
    w = conv.weight.detach().numpy()[0, 0].astype(np.float64)
    r, c = 20, 11
    expected = float((padded[r : r + 19, c : c + 19] * w).sum() + conv.bias.item())
    assert out[r, c] == pytest.approx(expected, abs=1e-5)


@pytest.mark.parametrize("boundary", sorted(BOUNDARIES))
def test_each_boundary_mode(boundary, small_image):
    """Interiors agree; a constant image stays constant under every mode but 'zero'."""
    net = _net("cnn1")
    out = deconvolve(small_image, net, boundary=boundary)
    ref = deconvolve(small_image, net, boundary="symmetric")
    np.testing.assert_allclose(out[9:-9, 9:-9], ref[9:-9, 9:-9], atol=1e-6)
    flat = deconvolve(np.full((37, 31), 0.5), net, boundary=boundary)
    centre = flat[18, 15]
    if boundary == "zero":
        assert abs(flat[0, 0] - centre) > 1e-3
    else:
        np.testing.assert_allclose(flat, centre, atol=1e-5)


@pytest.mark.parametrize("boundary", sorted(BOUNDARIES))
def test_each_boundary_mode_is_its_numpy_padding(boundary, small_image):
    """Each mode equals the network run on the image padded by np.pad in that mode, and differs at the border."""
    net = _net("cnn3")
    padded = np.pad(small_image.astype(np.float32), net.margin, mode=BOUNDARIES[boundary])
    with torch.no_grad():
        direct = net(torch.from_numpy(padded)[None, None]).numpy()[0, 0]
    out = deconvolve(small_image, net, boundary=boundary, tile=8)
    np.testing.assert_allclose(out, direct, atol=1e-5)
    others = [deconvolve(small_image, net, boundary=b) for b in BOUNDARIES if b != boundary]
    assert all(np.abs(out[:3] - o[:3]).max() > 1e-4 for o in others)
    assert all(np.allclose(out[15:20, 12:18], o[15:20, 12:18], atol=1e-5) for o in others)  # the interior agrees


def test_bfloat16_is_close_to_float32(small_image):
    net = _net("cnn3")
    a = deconvolve(small_image, net)
    b = deconvolve(small_image, net, precision="bfloat16")
    assert np.abs(a - b).max() < 0.02 * np.abs(a).max()


def test_devices():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="CUDA is not available"):
            resolve_device("cuda")
    with pytest.raises(InputError, match="device must be"):
        resolve_device("tpu")


@pytest.mark.parametrize("cuda", [False, True])
def test_auto_device_follows_cuda_availability(cuda, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert resolve_device("auto").type == ("cuda" if cuda else "cpu")
    assert resolve_device("cpu").type == "cpu"


def test_auto_device_runs_on_the_cpu_without_cuda(small_image, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    net = _net("cnn1")
    out = deconvolve(small_image, net, device="auto")
    assert next(net.parameters()).device.type == "cpu"
    np.testing.assert_allclose(out, deconvolve(small_image, net, device="cpu"), atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(small_image):
    net = _net("cnn1")
    cpu = deconvolve(small_image, net, device="cpu")
    np.testing.assert_allclose(deconvolve(small_image, net, device="cuda"), cpu, atol=1e-4)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(tile=0), "tile must be a positive integer"),
        (dict(tile=2.5), "tile must be a positive integer"),
        (dict(batch_tiles=0), "batch_tiles must be a positive integer or None"),
        (dict(boundary="wrap"), "boundary must be one of"),
        (dict(precision="float16"), "precision must be one of"),
    ],
)
def test_bad_arguments_are_named(kwargs, match, small_image):
    with pytest.raises(InputError, match=match):
        deconvolve(small_image, _net("cnn1"), **kwargs)


def test_bad_images_and_models(small_image):
    net = _net("cnn1")
    with pytest.raises(InputError, match="2-D"):
        deconvolve(np.zeros((2, 3, 4)), net)
    bad = small_image.copy()
    bad[3, 4] = np.nan
    with pytest.raises(InputError, match="1 non-finite"):
        deconvolve(bad, net)
    with pytest.raises(InputError, match="margin"):
        deconvolve(small_image, torch.nn.Conv2d(1, 1, 3))


# --- the registered methods -----------------------------------------------------------


def test_methods_are_registered():
    assert {"cnn3", "cnn1"} <= set(METHODS)
    assert METHODS["cnn3"].defaults == {"model": None, "tile": None, "device": "cpu"}
    assert METHODS["cnn1"].func is networks.cnn1


def test_missing_shipped_model_says_pass_model(tmp_path, monkeypatch, small_image):
    monkeypatch.setattr(networks, "MODELS_DIR", tmp_path)
    with pytest.raises(InputError, match="--model"):
        networks.cnn3(small_image, airy_paper())


def test_model_folder_of_another_architecture_is_refused(tmp_path, small_image):
    folder = save_model(_net("cnn1"), tmp_path / "m", ModelConfig(arch="cnn1"))
    with pytest.raises(InputError, match="holds a 'cnn1' network"):
        networks.cnn3(small_image, airy_paper(), model=folder)
    out = networks.cnn1(small_image, airy_paper(), model=str(folder))
    np.testing.assert_allclose(out, deconvolve(small_image, _net("cnn1")), atol=1e-5)
    with pytest.raises(InputError, match="model not found"):
        networks.cnn1(small_image, airy_paper(), model=tmp_path / "nowhere")


def test_other_psf_gives_a_warning(tmp_path, small_image):
    folder = save_model(_net("cnn1"), tmp_path / "m", ModelConfig(arch="cnn1"))
    with pytest.warns(UserWarning, match="trained for PSF 'airy-paper'"):
        networks.cnn1(small_image, np.ones((5, 5)) / 25, model=folder)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        networks.cnn1(small_image, airy_paper(), model=folder)


@pytest.mark.parametrize("name", ["cnn3", "cnn1"])
def test_shipped_network_beats_its_input_on_a_real_image(name, sky):
    """The shipped model on a held-out real crop (M101) restores better than the observation."""
    from astrodeconv.forward import observe
    from astrodeconv.metrics import psnr

    if not (networks.shipped_model_dir(name) / "weights.pt").is_file():
        pytest.skip(f"no shipped {name} model yet")
    x = sky("m101_dss1")[150:406, 150:406]
    y = observe(x, airy_paper(), sigma=0.01, rng=np.random.default_rng(0))
    est = networks.__dict__[name](y, airy_paper())
    assert psnr(est, x, 1.0, border=32) > psnr(y, x, 1.0, border=32) + 1.0


def test_keras_weights_through_the_method(shared_dir, small_image):
    path = shared_dir / PAPER_H5.format("M101")
    out = networks.cnn3(small_image, airy_paper(), model=path, tile=16)
    assert out.shape == small_image.shape and out.min() >= 0
    with pytest.raises(InputError, match="use method 'cnn3'"):
        networks.cnn1(small_image, airy_paper(), model=path)
