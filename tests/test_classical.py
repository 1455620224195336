"""Classical baselines: equal to scikit-image's, exact adjoints, TV lowers its objective."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import signal
from skimage import restoration

from astrodeconv import classical, methods
from astrodeconv.errors import InputError
from astrodeconv.forward import blur, observe, pad_to_odd
from astrodeconv.psf import airy_paper, gaussian

# (image shape, PSF): odd PSF, even non-square PSF, the paper's even Airy on a non-square image.
CASES = [
    ((37, 31), gaussian(2.0)),
    ((37, 31), np.arange(1.0, 25.0).reshape(4, 6) / 300.0),
    ((64, 70), airy_paper(size=16)),
]
IDS = ["odd-7x7", "even-4x6", "airy16-64x70"]


def _case(rng, shape, psf):
    psf = psf / psf.sum()
    x = rng.random(shape)
    return observe(x, psf, sigma=0.01, rng=rng), psf


@pytest.mark.parametrize("shape, psf", CASES, ids=IDS)
def test_wiener_equals_skimage(rng, shape, psf):
    y, psf = _case(rng, shape, psf)
    for balance in (1e-3, 0.1, 10.0):
        ours = classical.wiener(y, psf, balance)
        # scikit-image's origin is s // 2; pad_to_odd moves ours, (s - 1) // 2, there.
        ref = restoration.wiener(y, pad_to_odd(psf), balance, clip=False)
        np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-6)
        assert np.max(np.abs(ours - ref)) < 1e-12


def test_wiener_restores_a_periodic_blur(rng):
    x = rng.random((32, 30))
    y = blur(x, gaussian(1.5), "periodic")
    np.testing.assert_allclose(classical.wiener(y, gaussian(1.5), balance=1e-9), x, atol=1e-4)


@pytest.mark.parametrize("shape, psf", CASES, ids=IDS)
def test_rl_equals_skimage_unclipped(rng, shape, psf):
    y, psf = _case(rng, shape, psf)
    y = y + 0.05  # keep it positive, as RL expects (negative pixels are tested below)
    ours = classical.rl(y, psf, num_iter=25)
    ref = restoration.richardson_lucy(y, psf, num_iter=25, clip=False)
    assert ours.max() > 1  # the unclipped result does exceed 1
    # Default single precision: within 1e-5 of the peak (these unclipped results reach ~20).
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    exact = classical.rl(y, psf, num_iter=25, precision="double")
    assert np.max(np.abs(exact - ref)) < 1e-10


def test_rl_with_negative_pixels_equals_skimage(rng):
    # A faint sky (0.04) under sigma = 0.01 noise: a negative pixel or so, as in DSS data.
    # (On an empty background RL divides by ~0 and amplifies rounding; see rl's docstring.)
    x = np.full((40, 36), 0.04)
    x[20, 18] = 1.0
    y = observe(x, airy_paper(size=16), sigma=0.01, rng=rng)
    assert y.min() < 0
    ref = restoration.richardson_lucy(y, airy_paper(size=16), num_iter=10, clip=False)
    np.testing.assert_allclose(classical.rl(y, airy_paper(size=16), 10), ref, rtol=0, atol=1e-5)


def test_rl_iterates_are_the_runs_of_each_length(rng):
    y, psf = _case(rng, (37, 31), gaussian(2.0))
    y = y + 0.05
    iterates = list(classical.rl_iterates(y, psf, 6, precision="double"))
    assert len(iterates) == 6
    for k in (1, 3, 6):
        estimate, blurred = iterates[k - 1]
        np.testing.assert_allclose(estimate, classical.rl(y, psf, k, precision="double"), rtol=0, atol=1e-13)
        np.testing.assert_allclose(blurred, blur(estimate, psf), rtol=0, atol=1e-13)


@pytest.mark.parametrize("psf", [gaussian(2.0), np.arange(1.0, 25.0).reshape(4, 6), airy_paper(size=16)])
def test_blur_operator_is_fftconvolve_with_exact_adjoint(rng, psf):
    psf = psf / psf.sum()
    op = classical.blur_operator(psf, (37, 31))
    x, y = rng.standard_normal((37, 31)), rng.standard_normal((37, 31))
    np.testing.assert_allclose(op.forward(x), signal.fftconvolve(x, psf, "same"), rtol=0, atol=1e-12)
    lhs, rhs = np.vdot(op.forward(x), y), np.vdot(x, op.adjoint(y))
    assert abs(lhs - rhs) <= 1e-10 * max(1.0, abs(lhs))
    # The adjoint is correlation: convolution with the mirrored PSF, origin shifted for even sides.
    assert abs(np.vdot(op.adjoint(y), x) - np.vdot(y, blur(x, psf))) < 1e-10
    assert op.norm2 == pytest.approx(1.0, abs=1e-12)  # non-negative unit-sum PSF: |OTF(0)| = 1


def test_gradient_adjoint_and_norm(rng):
    x, g = rng.standard_normal((37, 31)), rng.standard_normal((2, 37, 31))
    assert np.vdot(classical.gradient(x), g) == pytest.approx(np.vdot(x, classical.gradient_adjoint(g)), abs=1e-10)
    # Power iteration: ||D||^2 approaches but does not exceed 8.
    v = rng.standard_normal((37, 31))
    for _ in range(300):
        v = classical.gradient_adjoint(classical.gradient(v))
        v /= np.linalg.norm(v)
    norm2 = np.vdot(v, classical.gradient_adjoint(classical.gradient(v)))
    assert 7.5 < norm2 <= classical.GRADIENT_NORM2


def _tv_problem(rng):
    x = np.zeros((48, 40))
    x[10:30, 8:25] = 0.6
    x[35, 30] = 1.0
    x += 0.05
    return x, observe(x, airy_paper(size=16), sigma=0.01, rng=rng)


@pytest.mark.parametrize("mu", [5e-4, 5e-3])
def test_tv_lowers_its_objective(rng, mu):
    x, y = _tv_problem(rng)
    history: list[float] = []
    x_hat = classical.tv(y, airy_paper(size=16), mu=mu, num_iter=150, history=history)
    history = np.array(history)
    assert len(history) == 151
    assert x_hat.min() >= 0
    # The recorded values are the objective of the iterates, the last one of the result.
    assert history[-1] == pytest.approx(classical.tv_objective(x_hat, y, airy_paper(size=16), mu), rel=1e-10)
    assert history[-1] < 0.5 * history[0]
    steps = np.diff(history[5:])
    assert np.all(steps <= 1e-9 * history[-1]), f"objective rose by {steps.max():.3g}"
    # Converging: the last 50 iterations change the objective by well under 1 %.
    assert history[100] - history[-1] < 0.01 * history[-1]
    # And the restoration is closer to the truth than the observation.
    assert np.mean((x_hat - x) ** 2) < np.mean((y - x) ** 2)


def test_tv_objective_matches_definition(rng):
    x, y = _tv_problem(rng)
    psf = airy_paper(size=16)
    residual = blur(x, psf) - y
    tv = np.sum(np.hypot(np.diff(x, axis=0, append=x[-1:]), np.diff(x, axis=1, append=x[:, -1:])))
    assert classical.tv_objective(x, y, psf, 0.01) == pytest.approx(0.5 * np.sum(residual**2) + 0.01 * tv, rel=1e-12)
    assert classical.tv_objective(x - 1, y, psf, 0.01) == float("inf")


def test_tv_tol_stops_early(rng):
    _, y = _tv_problem(rng)
    full, early = [], []
    classical.tv(y, airy_paper(size=16), mu=5e-3, num_iter=200, history=full)
    classical.tv(y, airy_paper(size=16), mu=5e-3, num_iter=200, tol=1e-3, history=early)
    assert len(full) == 201
    assert 2 < len(early) < 100


def test_tv_with_mu_zero_is_projected_landweber(rng):
    _, y = _tv_problem(rng)
    psf = airy_paper(size=16)
    x = np.maximum(y, 0)
    for _ in range(5):
        x = np.maximum(x - classical.blur_operator(psf, y.shape).adjoint(blur(x, psf) - y), 0)
    np.testing.assert_allclose(classical.tv(y, psf, mu=0.0, num_iter=5), x, atol=1e-12)


def test_registered_and_called_through_restore(rng):
    y, psf = _case(rng, (37, 31), gaussian(2.0))
    y = y + 0.05
    assert {"wiener", "rl", "tv"} <= set(methods.available())
    assert methods.get("rl").defaults == {"num_iter": 30, "precision": "single"}
    assert set(methods.get("tv").defaults) == {"mu", "num_iter", "tol"}
    np.testing.assert_array_equal(methods.restore(y, psf, "rl", num_iter=5), classical.rl(y, psf, 5))
    np.testing.assert_array_equal(methods.restore(y, psf, "wiener", balance=0.5), classical.wiener(y, psf, 0.5))
    assert methods.restore(y, 3 * psf, "tv", mu=1e-3, num_iter=5).shape == (37, 31)
    with pytest.raises(InputError, match="no parameter.*iterations"):
        methods.restore(y, psf, "rl", iterations=5)


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda y, h: classical.rl(y, h, num_iter=0), "num_iter must be a positive integer, got 0"),
        (lambda y, h: classical.rl(y, h, num_iter=2.5), "num_iter must be a positive integer, got 2.5"),
        (lambda y, h: classical.wiener(y, h, balance=-1.0), "balance must be a finite number > 0, got -1.0"),
        (lambda y, h: classical.tv(y, h, mu=float("nan")), "mu must be a finite number >= 0"),
        (lambda y, h: classical.tv(y, h, tol=0), "tol must be a finite number > 0"),
        (lambda y, h: classical.wiener(y[:3, :3], h), "PSF of shape"),
        (lambda y, h: classical.rl(np.where(y > 0.5, np.nan, y), h), "NaN or infinite pixels"),
    ],
)
def test_bad_input_names_the_value(rng, call, message):
    y, psf = _case(rng, (37, 31), gaussian(2.0))
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(".", r"\.").replace("+", r"\+")):
        call(y, psf)


def test_the_wiener_noise_gain_is_the_restored_noise_over_the_input():
    from astrodeconv.classical import wiener, wiener_noise_gain
    from astrodeconv.psf import gaussian

    h = gaussian(4.0)
    noise = np.random.default_rng(0).normal(0.0, 1.0, (256, 255))
    balances = [3e-3, 0.1]
    gains = wiener_noise_gain(noise.shape, h, balances)
    measured = [np.std(wiener(noise, h, b)) for b in balances]
    np.testing.assert_allclose(gains, measured, rtol=0.03)
    assert gains[0] > 1.0 > gains[1]


def test_wiener_auto_is_never_noisier_than_the_observation():
    from astrodeconv.classical import wiener, wiener_auto, wiener_noise_gain
    from astrodeconv.forward import blur
    from astrodeconv.psf import gaussian

    h = gaussian(6.0)
    rng = np.random.default_rng(1)
    y = blur(rng.random((96, 97)), h) + rng.normal(0.0, 0.01, (96, 97))
    with pytest.warns(UserWarning, match="noisier than the observation"):
        balance = wiener_auto(y, h, sigma=0.002)["balance"]  # a noise level far too low drives the principle down
    assert wiener_noise_gain(y.shape, h, [balance])[0] <= 1.0 + 1e-6
    noise = rng.normal(0.0, 1.0, y.shape)
    assert np.std(wiener(noise, h, balance)) <= 1.05


def test_the_rl_noise_gain_is_that_of_a_flat_sky_restored():
    from astrodeconv.classical import rl_iterates, rl_noise_gain

    h = gaussian(4.0)
    rng = np.random.default_rng(2)
    sky = 1.0 + 0.01 * rng.standard_normal((160, 160))
    pad = 3 * max(h.shape)  # far from the zero boundary's edge artefacts
    inside = (slice(pad, -pad), slice(pad, -pad))
    estimates = {k: x for k, (x, _) in enumerate(rl_iterates(sky, h, 40), start=1) if k in (10, 40)}
    measured = [np.std(estimates[k][inside]) / np.std(sky[inside]) for k in (10, 40)]
    np.testing.assert_allclose(rl_noise_gain(sky.shape, h, [10, 40]), measured, rtol=0.1)


def test_rl_auto_stops_before_its_output_is_noisier_than_the_observation():
    from astrodeconv.classical import RL_MAX_ITER, rl_auto, rl_noise_gain

    h = gaussian(3.0)
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:64, :66]
    x = 0.2 + sum(np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 4.0) for cy, cx in rng.uniform(8, 56, (12, 2)))
    y = blur(x, h) + 0.01 * rng.standard_normal(x.shape)
    with pytest.warns(UserWarning, match="noisier than the observation"):
        num_iter = rl_auto(y, h, sigma=1e-4)["num_iter"]  # a noise level far too low asks for every iteration
    gain = rl_noise_gain(y.shape, h, [num_iter, num_iter + 1])
    assert num_iter < RL_MAX_ITER and gain[0] <= 1.0 < gain[1]


def test_a_narrow_psf_is_never_restored_blurrier_than_observed():
    """A narrow PSF's inverse filter amplifies noise a little: the bounds keep the restoration at least as sharp."""
    from astrodeconv.classical import _least_balance, _most_iterations, rl_auto
    from astrodeconv.metrics import psnr

    h = gaussian(1.0)
    rng = np.random.default_rng(4)
    x = np.full((96, 96), 0.3)  # stars on a sky
    x[rng.integers(8, 88, 40), rng.integers(8, 88, 40)] += rng.uniform(0.2, 1.0, 40)
    y = blur(x, h) + 0.01 * rng.standard_normal(x.shape)
    assert _most_iterations(y.shape, h) >= 2  # the first iterate is the observation blurred once more
    num_iter = rl_auto(y, h, sigma=0.01)["num_iter"]
    assert psnr(classical.rl(y, h, num_iter=num_iter), x, 1.0, border=8) > psnr(y, x, 1.0, border=8)
    balance = _least_balance(y.shape, h)
    point = np.zeros((33, 33))
    point[16, 16] = 1.0
    assert classical.wiener(blur(point, h, "periodic"), h, balance).max() >= h.max() - 1e-6
