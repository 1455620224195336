"""Parameter selection: oracle grid search and discrepancy-principle auto mode."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from astrodeconv import classical, methods, selection
from astrodeconv.errors import InputError
from astrodeconv.forward import blur, observe
from astrodeconv.metrics import psnr
from astrodeconv.psf import airy_paper, gaussian


@pytest.fixture
def synthetic(rng):
    """A 64 x 70 scene (background, a disc, stars) observed through airy_paper(16), sigma 0.01."""
    yy, xx = np.mgrid[:64, :70]
    x = 0.05 + 0.4 * (((yy - 30) ** 2 + (xx - 36) ** 2) < 150)
    for r, c in [(10, 10), (50, 60), (15, 55)]:
        x[r, c] = 1.0
    psf = airy_paper(size=16)
    return x, observe(x, psf, sigma=0.01, rng=rng), psf


@pytest.fixture(scope="module")
def m101(sky):
    """The paper's setting on M101 (530 x 530): clean, observed (sigma 0.01, seed 0), PSF."""
    x = sky("m101_dss1")
    psf = airy_paper()
    return x, observe(x, psf, sigma=0.01, rng=np.random.default_rng(0)), psf


def test_wiener_path_equals_wiener(synthetic):
    _, y, psf = synthetic
    balances = [1e-3, 0.05, 3.0, 1e4]
    path = list(classical.wiener_path(y, psf, balances, batch=3))
    assert [b for b, _ in path] == balances
    for b, estimate in path:
        np.testing.assert_allclose(estimate, classical.wiener(y, psf, b), rtol=0, atol=1e-12)


def test_oracle_wiener_is_the_grid_maximum(synthetic):
    x, y, psf = synthetic
    params, score = selection.select_oracle("wiener", y, psf, x, border=8)
    scores = [psnr(classical.wiener(y, psf, b), x, 1.0, border=8) for b in selection.WIENER_BALANCES]
    assert params["balance"] == pytest.approx(selection.WIENER_BALANCES[int(np.argmax(scores))])
    assert score == pytest.approx(max(scores), abs=1e-9)
    assert score > psnr(y, x, 1.0, border=8)


def test_oracle_rl_scores_every_iteration_in_one_run(synthetic):
    x, y, psf = synthetic
    params, score = selection.select_oracle("rl", y, psf, x, border=8)
    k = params["num_iter"]
    assert 1 <= k <= selection.RL_MAX_ITER
    assert score == pytest.approx(psnr(classical.rl(y, psf, k), x, 1.0, border=8), abs=1e-9)
    for other in {1, max(k - 7, 1), min(k + 7, 100)} - {k}:
        assert psnr(classical.rl(y, psf, other), x, 1.0, border=8) <= score


def test_wiener_residuals_are_the_periodic_residual_and_increase(synthetic):
    _, y, psf = synthetic
    balances = np.logspace(-3, 5, 9)
    residuals = selection.wiener_residuals(y, psf, balances, border=0)
    interior = selection.wiener_residuals(y, psf, balances, border=5)
    for b, r, r5 in zip(balances[::4], residuals[::4], interior[::4]):
        direct = (blur(classical.wiener(y, psf, b), psf, "periodic") - y) ** 2
        assert r == pytest.approx(direct.mean(), rel=1e-9)
        assert r5 == pytest.approx(direct[5:-5, 5:-5].mean(), rel=1e-9)
    assert np.all(np.diff(residuals) > 0)


def test_estimate_sigma_on_a_blurred_scene(synthetic, rng):
    x, _, psf = synthetic
    for sigma in (0.003, 0.01, 0.05):
        y = observe(np.tile(x, (3, 3)), psf, sigma=sigma, rng=rng)
        assert selection.estimate_sigma(y) == pytest.approx(sigma, rel=0.1)


def test_auto_hits_the_discrepancy_target(synthetic):
    _, y, psf = synthetic
    balance = selection.select_auto("wiener", y, psf, sigma=0.01)["balance"]
    assert selection.wiener_residuals(y, psf, [balance])[0] == pytest.approx(classical.WIENER_TAU * 1e-4, rel=1e-6)
    # A larger sigma asks for a larger residual, hence more regularisation.
    assert selection.select_auto("wiener", y, psf, sigma=0.02)["balance"] > balance
    # RL: the chosen iteration is the first whose residual meets the rule.
    k = selection.select_auto("rl", y, psf, sigma=0.01)["num_iter"]
    residuals = [np.mean((b - y) ** 2) for _, b in classical.rl_iterates(y, psf, selection.RL_MAX_ITER)]
    threshold = max(1e-4, min(residuals) + classical.RL_FLOOR_MARGIN * 1e-4)
    assert residuals[k - 1] <= threshold and (k == 1 or residuals[k - 2] > threshold)


def test_auto_tv_residual_is_near_sigma2(synthetic):
    _, y, psf = synthetic
    mu = selection.select_auto("tv", y, psf, sigma=0.01)["mu"]
    assert selection.TV_MUS[0] <= mu <= selection.TV_MUS[-1]
    x_hat = classical.tv(y, psf, mu=mu, num_iter=selection.TV_NUM_ITER)
    assert np.mean((blur(x_hat, psf) - y) ** 2) == pytest.approx(1e-4, rel=0.2)


def test_select_dispatch_and_errors(synthetic, monkeypatch):
    x, y, psf = synthetic
    assert selection.select("rl", y, psf, "oracle", truth=x, border=8) == selection.select_oracle(
        "rl", y, psf, x, border=8
    )[0]
    assert selection.select("wiener", y, psf, "auto", truth=x, sigma=0.01) == selection.select_auto(
        "wiener", y, psf, sigma=0.01
    )
    with pytest.raises(InputError, match="oracle selection needs the clean image"):
        selection.select("wiener", y, psf, "oracle")
    with pytest.raises(InputError, match=r"mode must be one of \('oracle', 'auto'\), got 'best'"):
        selection.select("wiener", y, psf, "best", truth=x)
    with pytest.raises(InputError, match="unknown method 'wiener2'"):
        selection.select("wiener2", y, psf, "auto")
    with pytest.raises(InputError, match="differ in shape"):
        selection.select_oracle("rl", y, psf, x[:-1], border=8)
    with pytest.raises(InputError, match="sigma must be a positive"):
        selection.select_auto("rl", y, psf, sigma=-0.01)
    # A method without a table here (a network, say) has nothing to select.
    net = methods.Method("toy-net", lambda observed, psf: observed, {})
    monkeypatch.setitem(methods.METHODS, "toy-net", net)
    assert selection.select("toy-net", y, psf, "auto") == {}
    params, score = selection.select_oracle("toy-net", y, psf, x, border=8)
    assert params == {} and np.isnan(score)


# --------------------------------------------------------------------------- real image


@pytest.mark.slow
def test_oracle_methods_beat_the_observation_on_m101(m101):
    x, y, psf = m101
    observed = psnr(y, x, 1.0)
    for method in ("wiener", "rl"):
        params, score = selection.select_oracle(method, y, psf, x)
        assert score > observed + 2.0, (method, params, score, observed)
        restored = methods.restore(y, psf, method, **params)
        assert psnr(restored, x, 1.0) == pytest.approx(score, abs=1e-9)


@pytest.mark.slow
def test_oracle_tv_beats_the_observation_on_an_m101_crop(m101):
    x, y, psf = m101
    c = (x.shape[0] - 256) // 2
    x, y = x[c : c + 256, c : c + 256], y[c : c + 256, c : c + 256]
    params, score = selection.select_oracle("tv", y, psf, x)
    assert score > psnr(y, x, 1.0) + 1.5
    assert selection.TV_MUS[0] / 2 < params["mu"] < selection.TV_MUS[-1] * 2


@pytest.mark.slow
def test_auto_wiener_within_half_a_db_of_oracle_on_m101(m101):
    x, y, psf = m101
    _, oracle = selection.select_oracle("wiener", y, psf, x)
    for sigma in (None, 0.01):  # estimated from the image, and known
        params = selection.select_auto("wiener", y, psf, sigma=sigma)
        auto = psnr(classical.wiener(y, psf, **params), x, 1.0)
        assert auto > oracle - 0.5, (sigma, params, auto, oracle)


@pytest.mark.slow
def test_auto_rl_close_to_oracle_on_m101(m101):
    x, y, psf = m101
    _, oracle = selection.select_oracle("rl", y, psf, x)
    params = selection.select_auto("rl", y, psf)
    assert psnr(classical.rl(y, psf, **params), x, 1.0) > oracle - 0.5


def test_auto_says_when_the_wiener_target_lies_beyond_its_grid(synthetic):
    """A noise level far above the frame's: the grid's end is chosen, and a warning says so."""
    x, y, psf = synthetic
    with pytest.warns(UserWarning, match="end of its search"):
        balance = selection.select_auto("wiener", y, psf, sigma=100.0)["balance"]
    assert balance == pytest.approx(selection.WIENER_BALANCES[-1])


def test_auto_wiener_stops_where_its_output_would_be_noisier_than_the_input(synthetic):
    """A frame whose noise is tiny: the principle asks for less regularisation than keeps the noise down."""
    x, y, psf = synthetic
    clean = blur(x, psf, "periodic")
    quiet = clean + 1e-5 * np.random.default_rng(1).standard_normal(clean.shape)
    with pytest.warns(UserWarning, match="noisier than the observation"):
        balance = selection.select_auto("wiener", quiet, psf, sigma=1e-5)["balance"]
    gain = classical.wiener_noise_gain(quiet.shape, psf, [balance, 0.9 * balance])
    assert balance > selection.WIENER_BALANCES[0] and gain[0] <= 1.0 + 1e-6 < gain[1]


def test_auto_tv_is_not_noise_dominated_on_a_frame_with_a_sky(rng):
    """A sky blurred as a real frame is (the scene goes on beyond its edges) is not what TV's zero boundary
    predicts: the residual at the edges, which no mu removes, is left out of the discrepancy."""
    yy, xx = np.mgrid[:96, :96]
    x = 1.0 + 0.5 * np.exp(-((yy - 48) ** 2 + (xx - 40) ** 2) / 50.0)
    psf = gaussian(3.0)
    y = blur(x, psf, boundary="reflect") + rng.normal(0.0, 0.01, x.shape)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # not at the end of the search
        mu = selection.select_auto("tv", y, psf, sigma=0.01)["mu"]
    x_hat = classical.tv(y, psf, mu=mu, num_iter=selection.TV_NUM_ITER)
    inside = (slice(20, 76), slice(20, 76))
    assert np.std((x_hat - x)[inside]) < 0.01  # below the input's noise
