import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio

from astrodeconv import metrics
from astrodeconv.errors import InputError


def test_psnr_matches_skimage_on_the_cropped_region(rng):
    truth = rng.random((100, 90))
    estimate = truth + 0.02 * rng.standard_normal(truth.shape)
    expected = peak_signal_noise_ratio(truth[32:-32, 32:-32], estimate[32:-32, 32:-32], data_range=1.0)
    assert metrics.psnr(estimate, truth, data_range=1.0, border=32) == pytest.approx(expected, abs=1e-9)


def test_border_excludes_edge_errors():
    truth = np.zeros((80, 80))
    estimate = truth.copy()
    estimate[:5] = 1.0
    assert metrics.psnr(estimate, truth, data_range=1.0, border=10) == np.inf
    assert metrics.mse(estimate, truth) == pytest.approx(5 / 80)


def test_ssim_is_one_for_identical_and_lower_with_noise(rng):
    truth = rng.random((80, 80))
    assert metrics.ssim(truth, truth, data_range=1.0, border=8) == pytest.approx(1.0)
    assert metrics.ssim(truth + 0.2 * rng.standard_normal(truth.shape), truth, data_range=1.0, border=8) < 0.9


def test_metric_errors():
    with pytest.raises(InputError, match="differ in shape"):
        metrics.psnr(np.zeros((70, 70)), np.zeros((70, 71)), data_range=1.0)
    with pytest.raises(InputError, match="border"):
        metrics.psnr(np.zeros((40, 40)), np.zeros((40, 40)), data_range=1.0, border=32)
    with pytest.raises(InputError, match="data_range"):
        metrics.psnr(np.zeros((40, 40)), np.ones((40, 40)), data_range=0, border=0)
