"""The paper's released Keras/Theano weights: loading, kernel orientation, and their score."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
h5py = pytest.importorskip("h5py")

from astrodeconv.errors import InputError  # noqa: E402
from astrodeconv.nn.keras import load_keras_cnn3, read_keras_weights  # noqa: E402

MODEL = "reference/paper_models/32x32_10x10-64_6x6-16_5x5-1_PSF64_sigma0.010_{}.h5"


@pytest.fixture(scope="module")
def m81_case(shared_dir):
    """M81 observed with the paper's model (seed 0), centred 1024 crops of observation and truth."""
    from astrodeconv.data import load_sky
    from astrodeconv.forward import observe
    from astrodeconv.psf import airy_paper

    x = load_sky("m81_dss1", shared_dir / "data" / "sky")
    y = observe(x, airy_paper(), sigma=0.01, rng=np.random.default_rng(0))
    r0, c0 = (x.shape[0] - 1024) // 2, (x.shape[1] - 1024) // 2
    return y[r0 : r0 + 1024, c0 : c0 + 1024], x[r0 : r0 + 1024, c0 : c0 + 1024]


def test_reads_the_three_layers_unflipped(shared_dir):
    path = shared_dir / MODEL.format("M51a")
    layers = read_keras_weights(path)
    assert [w.shape for w, _ in layers] == [(64, 1, 10, 10), (16, 64, 6, 6), (1, 16, 5, 5)]
    net = load_keras_cnn3(path)
    w = net[0].weight.numpy()
    np.testing.assert_array_equal(w, layers[0][0][:, :, ::-1, ::-1])
    np.testing.assert_array_equal(load_keras_cnn3(path, flip=False)[0].weight.numpy(), layers[0][0])
    assert net.margin == 9 and not any(p.requires_grad for p in net.parameters())


def test_paper_model_on_m81_scores_as_published(m81_case, shared_dir):
    """M51a-held-out model on M81: ~35.5 dB, against ~33.1 dB for the oracle Wiener filter."""
    from skimage.restoration import wiener

    from astrodeconv.metrics import psnr
    from astrodeconv.nn.predict import deconvolve
    from astrodeconv.psf import airy_paper

    y, x = m81_case
    path = shared_dir / MODEL.format("M51a")
    flipped = psnr(deconvolve(y, load_keras_cnn3(path)), x, data_range=1.0, border=32)
    unflipped = psnr(deconvolve(y, load_keras_cnn3(path, flip=False)), x, data_range=1.0, border=32)
    oracle = max(
        psnr(wiener(y, airy_paper(), b, clip=False), x, data_range=1.0, border=32) for b in (0.03, 0.1, 0.18, 0.3, 1.0)
    )
    assert psnr(y, x, data_range=1.0, border=32) == pytest.approx(31.95, abs=0.1)
    assert flipped == pytest.approx(35.46, abs=0.1)
    assert oracle == pytest.approx(33.11, abs=0.1)
    assert unflipped < flipped - 1.5  # Theano's kernels must be flipped for PyTorch


def test_missing_and_bad_files_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_keras_cnn3(tmp_path / "nope.h5")
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file")
    with pytest.raises(InputError, match="cannot read"):
        load_keras_cnn3(junk)
    empty = tmp_path / "empty.h5"
    with h5py.File(empty, "w") as fh:
        fh.create_dataset("x", data=np.zeros(3))
    with pytest.raises(InputError, match="no 'layer_names'"):
        load_keras_cnn3(empty)


def test_wrong_architecture_is_an_input_error(tmp_path):
    path = tmp_path / "small.h5"
    with h5py.File(path, "w") as fh:
        fh.attrs["layer_names"] = [b"conv"]
        g = fh.create_group("conv")
        g.attrs["weight_names"] = [b"conv_W", b"conv_b"]
        g.create_dataset("conv_W", data=np.zeros((1, 1, 19, 19), np.float32))
        g.create_dataset("conv_b", data=np.zeros(1, np.float32))
    assert [w.shape for w, _ in read_keras_weights(path)] == [(1, 1, 19, 19)]
    with pytest.raises(InputError, match="paper's 3-CNN needs"):
        load_keras_cnn3(path)
