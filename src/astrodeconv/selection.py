"""Choosing the regularisation parameter of the classical methods.

Two modes, named plainly:

``"oracle"`` (:func:`select_oracle`)
    The paper's protocol: a grid search maximising the PSNR against the clean image.
    It needs the ground truth, so it is an upper bound for a method, not something a
    user of real data can run.
``"auto"`` (:func:`select_auto`)
    No ground truth: Morozov's discrepancy principle -- the parameter whose residual
    ``||h * x_hat - y||^2 / npix`` matches ``tau * sigma^2`` for the noise level
    ``sigma`` (given, or estimated from the image by :func:`estimate_sigma`).

The parameter grids (:data:`WIENER_BALANCES`, :data:`RL_MAX_ITER`, :data:`TV_MUS`) are
module constants so that a benchmark can report them. Methods without a table here
(the networks, and any method whose registered defaults are empty) have no parameter
to select: both modes return ``{}`` for them, i.e. "run with the registered defaults".
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import fft

from . import classical
from .errors import InputError
from .methods import check_image, get
from .metrics import psnr

#: Wiener balances searched by both modes (the paper's grid).
WIENER_BALANCES = np.logspace(-3, 5, 100)
#: Richardson-Lucy iterations searched: 1, ..., RL_MAX_ITER.
RL_MAX_ITER = 100
#: TV weights of the oracle's coarse grid (a factor sqrt(10) apart); the best is then refined.
TV_MUS = np.logspace(-4.5, -1.5, 7)
#: Iterations of each TV solve during selection (the paper's limit).
TV_NUM_ITER = 100
#: Discrepancy factors: the target residual per pixel is ``TAU[method] * sigma^2``.
TAU = {"wiener": 0.98, "rl": 1.0, "tv": 1.0}
#: Richardson-Lucy's residual levels off above ``sigma^2``; ``auto`` stops within this many
#: ``sigma^2`` of the lowest level reached in ``RL_MAX_ITER`` iterations (see :func:`select_auto`).
RL_FLOOR_MARGIN = 0.03
#: Methods whose parameter this module selects, and the parameter's name.
SELECTED = {"wiener": "balance", "rl": "num_iter", "tv": "mu"}
MODES = ("oracle", "auto")


def _table_or_none(method: str) -> str | None:
    """The method's name if this module selects it; None for other registered methods."""
    found = get(method)  # InputError listing the choices for an unknown name
    if found.name in SELECTED:
        return found.name
    return None


def _check_truth(truth: Any, observed: np.ndarray) -> np.ndarray:
    truth = np.asarray(truth, dtype=np.float64)
    if truth.shape != observed.shape:
        raise InputError(f"truth and observed differ in shape: {truth.shape} vs {observed.shape}")
    if not np.all(np.isfinite(truth)):
        raise InputError("truth has NaN or infinite pixels; the oracle needs a finite clean image")
    return truth


# --------------------------------------------------------------------------- oracle


def select_oracle(
    method: str,
    observed: np.ndarray,
    psf: np.ndarray,
    truth: np.ndarray,
    data_range: float = 1.0,
    border: int = 32,
) -> tuple[dict[str, Any], float]:
    """Grid search for the parameter maximising the PSNR against the clean image.

    ``wiener``
        ``balance`` over :data:`WIENER_BALANCES` (``logspace(-3, 5, 100)``, the paper's
        grid); the image's FFT is shared by all balances (:func:`classical.wiener_path`).
    ``rl``
        ``num_iter`` in ``1 .. RL_MAX_ITER`` (100): one run, every iterate scored.
    ``tv``
        ``mu`` over :data:`TV_MUS` (``logspace(-4.5, -1.5, 7)``, a factor ~3.2 apart), then
        the two geometric midpoints around the best (a factor ~1.8 apart), each solved
        with :data:`TV_NUM_ITER` (100) iterations: 9 solves.
    other registered methods
        ``({}, nan)``: nothing to select.

    Parameters
    ----------
    method : str
        A registered method name.
    observed : ndarray, shape (H, W)
    psf : ndarray, shape (h, w)
    truth : ndarray, shape (H, W)
        The clean image.
    data_range, border
        Passed to :func:`astrodeconv.metrics.psnr` (1.0 and 32 in the paper).

    Returns
    -------
    params : dict
        The best parameter, e.g. ``{"balance": 0.0123}``.
    score_db : float
        Its PSNR, dB.

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> from astrodeconv.forward import observe
    >>> x = np.full((40, 44), 0.1); x[10:30, 12:30] = 1
    >>> y = observe(x, gaussian(2.0), sigma=0.01, rng=0)
    >>> params, score = select_oracle("rl", y, gaussian(2.0), x, border=4)
    >>> sorted(params), bool(score > psnr(y, x, 1.0, border=4))
    (['num_iter'], True)
    """
    name = _table_or_none(method)
    observed, psf = check_image(observed, psf)
    truth = _check_truth(truth, observed)
    if name is None:
        return {}, float("nan")

    def score(estimate: np.ndarray) -> float:
        return psnr(estimate, truth, data_range=data_range, border=border)

    if name == "wiener":
        scores = [(score(est), b) for b, est in classical.wiener_path(observed, psf, WIENER_BALANCES)]
        best, balance = max(scores)
        return {"balance": float(balance)}, best
    if name == "rl":
        scores = [(score(est), k) for k, (est, _) in enumerate(classical.rl_iterates(observed, psf, RL_MAX_ITER), 1)]
        best, num_iter = max(scores, key=lambda s: (s[0], -s[1]))
        return {"num_iter": int(num_iter)}, best
    # tv: coarse grid, then the geometric midpoints around the best value
    tried: dict[float, float] = {}

    def tv_score(mu: float) -> float:
        if mu not in tried:
            tried[mu] = score(classical.tv(observed, psf, mu=mu, num_iter=TV_NUM_ITER))
        return tried[mu]

    coarse = [float(m) for m in TV_MUS]
    for mu in coarse:
        tv_score(mu)
    i = coarse.index(max(coarse, key=tv_score))
    step = np.sqrt(coarse[1] / coarse[0])
    for mu in (coarse[i] / step, coarse[i] * step):
        tv_score(float(mu))
    mu = max(tried, key=tried.get)
    return {"mu": mu}, tried[mu]


# --------------------------------------------------------------------------- auto


def estimate_sigma(image: np.ndarray) -> float:
    """Standard deviation of white Gaussian noise in an image, from its finest wavelet details.

    Donoho's robust estimator, as ``skimage.restoration.estimate_sigma`` computes it but
    with the Haar wavelet (scikit-image's needs PyWavelets, which is not a dependency):
    the diagonal detail coefficients ``(a - b - c + d) / 2`` of the non-overlapping 2 x 2
    blocks have variance ``sigma^2`` for i.i.d. noise and almost no energy from a
    blurred sky, so ``sigma = median(|detail|) / 0.6745``.

    Parameters
    ----------
    image : ndarray, shape (H, W), H and W >= 2

    Returns
    -------
    sigma : float, image units

    Examples
    --------
    >>> noise = 0.01 * np.random.default_rng(0).standard_normal((256, 256))
    >>> round(estimate_sigma(noise), 3)
    0.01
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2 or min(image.shape) < 2:
        raise InputError(f"estimate_sigma needs a 2-D image of at least 2 x 2 pixels, got shape {image.shape}")
    h, w = (image.shape[0] // 2) * 2, (image.shape[1] // 2) * 2
    a = image[0:h:2, 0:w:2]
    b = image[0:h:2, 1:w:2]
    c = image[1:h:2, 0:w:2]
    d = image[1:h:2, 1:w:2]
    detail = (a - b - c + d) / 2.0
    detail = detail[np.isfinite(detail)]
    if detail.size == 0:
        raise InputError("estimate_sigma: the image has no finite 2 x 2 block")
    return float(np.median(np.abs(detail)) / 0.6744897501960817)


def wiener_residuals(
    observed: np.ndarray, psf: np.ndarray, balances: np.ndarray, border: int | None = None
) -> np.ndarray:
    """Residual per pixel ``||h * x_b - y||^2 / npix`` of :func:`classical.wiener` for each balance.

    The residual of the periodic model the filter assumes,
    ``R_b = F^-1[ b |L|^2 / (|T|^2 + b |L|^2) Y ]``, averaged over the pixels at least
    ``border`` pixels from the edges. An observed crop of a larger sky is not periodic:
    its wrap-around edges add a residual the filter cannot remove whatever the balance,
    so the default ``border`` (half the PSF's larger side) leaves those bands out. With
    ``border=0`` the mean is over every pixel (then computed by Parseval, without an
    inverse transform). The residual increases with the balance.

    Returns
    -------
    residuals : ndarray, shape (len(balances),)

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> y = np.random.default_rng(0).random((16, 15))
    >>> r = wiener_residuals(y, gaussian(2.0), [0.01, 1.0], border=0)
    >>> x_hat = classical.wiener(y, gaussian(2.0), 1.0)
    >>> from astrodeconv.forward import blur
    >>> bool(np.isclose(r[1], np.mean((blur(x_hat, gaussian(2.0), "periodic") - y) ** 2)))
    True
    """
    residual = _wiener_residual_function(observed, psf, border)
    return np.asarray([residual(b) for b in np.atleast_1d(np.asarray(balances, dtype=np.float64))])


def _wiener_residual_function(observed: np.ndarray, psf: np.ndarray, border: int | None) -> Any:
    """``balance -> residual`` of :func:`wiener_residuals`, with the transforms computed once."""
    observed, psf = check_image(observed, psf)
    border = max(psf.shape) // 2 if border is None else int(border)
    if border < 0 or 2 * border >= min(observed.shape):
        raise InputError(f"border must be >= 0 and leave pixels in an image of shape {observed.shape}, got {border}")
    spectrum, otf, reg2 = classical._wiener_parts(observed, psf)
    power = np.abs(otf) ** 2
    npix = observed.size
    # Weights of the half spectrum: columns other than 0 (and W/2 for even W) stand for two.
    weight = np.full(spectrum.shape[1], 2.0)
    weight[0] = 1.0
    if observed.shape[1] % 2 == 0:
        weight[-1] = 1.0
    y2 = np.abs(spectrum) ** 2 * weight

    def residual(balance: float) -> float:
        ratio = balance * reg2 / (power + balance * reg2)
        if border == 0:
            return float(np.sum(y2 * ratio**2)) / npix**2
        spatial = fft.irfft2(ratio * spectrum, s=observed.shape, workers=-1)
        return float(np.mean(spatial[border:-border, border:-border] ** 2))

    return residual


def select_auto(method: str, observed: np.ndarray, psf: np.ndarray, sigma: float | None = None) -> dict[str, Any]:
    """Choose the parameter without ground truth, by the discrepancy principle.

    The target residual per pixel is ``TAU[method] * sigma^2``: the residual of the true
    image is the noise, of mean square ``sigma^2`` (``TAU`` = 1 for RL and TV, 0.98 for
    Wiener, see below).

    ``wiener``
        The residual (:func:`wiener_residuals`, over the pixels at least half a PSF from
        the edges) increases with ``balance``; bisection in ``log(balance)`` within the
        oracle's range ``[1e-3, 1e5]`` (30 halvings) finds the balance whose residual
        equals the target (clamped to the range ends). The plain discrepancy principle
        (``TAU`` = 1) oversmooths: 0.49 dB below the oracle on average over 8 images of
        ``../shared/data/sky`` x 3 sizes (full, 512 and 192 crops; ``airy_paper``, sigma
        0.01); ``TAU`` = 0.98 loses 0.26 dB on average and at most 0.49 dB. Lower values
        meet the residual's floor (the noise beyond the PSF's cut-off frequency, which no
        balance removes) and fail abruptly (``TAU`` = 0.94: up to 2.7 dB lost).
    ``rl``
        One run of :data:`RL_MAX_ITER` iterations; ``num_iter`` is the first iteration
        whose residual ``r_k = ||conv(x_k, h) - y||^2 / npix`` is at most
        ``max(TAU * sigma^2, min_k r_k + RL_FLOOR_MARGIN * sigma^2)`` (``k <= 100``). RL's
        residual falls with the iterations but, with Gaussian noise and negative pixels it
        cannot fit, levels off 10 - 100 % above ``sigma^2`` on DSS images, so the plain
        discrepancy target is rarely reached; the second term stops once the residual is
        within 3 % of ``sigma^2`` of its lowest level. (On a dark image with many negative
        pixels, such as the Hubble Deep Field, unclipped RL diverges after a few tens of
        iterations and its residual rises again: the lowest level, not the last, is the
        reference.) The margin 0.03 was
        chosen on seven DSS/UKST images of ``../shared/data/sky`` (airy_paper PSF, sigma
        0.01), where it lost 0.0 - 0.25 dB against the oracle's iteration.
    ``tv``
        The residual of the solution grows with ``mu``. Bisection in ``log(mu)`` over
        ``[TV_MUS[0], TV_MUS[-1]]`` with 6 solves of :data:`TV_NUM_ITER` iterations; the
        tried ``mu`` whose residual is closest to the target in log scale is returned.
        With 100 iterations the PSNR-best ``mu`` leaves a residual ~0.95 ``sigma^2``, so
        this rule smooths more than the oracle (about 0.3 - 0.5 dB lower on DSS images).
    other registered methods
        ``{}``.

    Parameters
    ----------
    method : str
    observed : ndarray, shape (H, W)
    psf : ndarray, shape (h, w)
    sigma : float, optional
        Noise standard deviation in image units. None: :func:`estimate_sigma` of the
        observation.

    Returns
    -------
    params : dict

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> from astrodeconv.forward import observe
    >>> x = np.zeros((40, 44)); x[10:30, 12:30] = 1
    >>> y = observe(x, gaussian(2.0), sigma=0.01, rng=0)
    >>> 1 <= select_auto("rl", y, gaussian(2.0), sigma=0.01)["num_iter"] <= 100
    True
    """
    name = _table_or_none(method)
    observed, psf = check_image(observed, psf)
    if not np.all(np.isfinite(observed)):
        raise InputError("image has NaN or infinite pixels; auto selection needs a finite image")
    if name is None:
        return {}
    if sigma is None:
        sigma = estimate_sigma(observed)
    sigma = float(sigma)
    if not (np.isfinite(sigma) and sigma > 0):
        raise InputError(f"sigma must be a positive noise standard deviation, got {sigma}")
    target = TAU[name] * sigma**2

    if name == "wiener":
        residual = _wiener_residual_function(observed, psf, border=None)
        lo, hi = np.log(WIENER_BALANCES[0]), np.log(WIENER_BALANCES[-1])
        if target <= residual(np.exp(lo)):
            return {"balance": float(np.exp(lo))}
        if target >= residual(np.exp(hi)):
            return {"balance": float(np.exp(hi))}
        for _ in range(30):  # brackets log(balance) to 18.4 / 2^30
            mid = 0.5 * (lo + hi)
            if residual(np.exp(mid)) < target:
                lo = mid
            else:
                hi = mid
        return {"balance": float(np.exp(0.5 * (lo + hi)))}
    if name == "rl":
        residuals = np.array(
            [np.mean((blurred - observed) ** 2) for _, blurred in classical.rl_iterates(observed, psf, RL_MAX_ITER)]
        )
        threshold = max(target, residuals.min() + RL_FLOOR_MARGIN * sigma**2)
        return {"num_iter": int(np.argmax(residuals <= threshold)) + 1}
    # tv
    lo, hi = np.log(TV_MUS[0]), np.log(TV_MUS[-1])
    tried: dict[float, float] = {}
    for _ in range(6):
        mu = float(np.exp(0.5 * (lo + hi)))
        estimate = classical.tv(observed, psf, mu=mu, num_iter=TV_NUM_ITER)
        residual = float(np.mean((classical.blur_operator(psf, observed.shape).forward(estimate) - observed) ** 2))
        tried[mu] = residual
        if residual < target:
            lo = np.log(mu)
        else:
            hi = np.log(mu)
    mu = min(tried, key=lambda m: abs(np.log(tried[m] / target)))
    return {"mu": mu}


def select(
    method: str,
    observed: np.ndarray,
    psf: np.ndarray,
    mode: str,
    truth: np.ndarray | None = None,
    sigma: float | None = None,
    data_range: float = 1.0,
    border: int = 32,
) -> dict[str, Any]:
    """Select a method's parameter in ``mode`` ``"oracle"`` (needs ``truth``) or ``"auto"``.

    Returns the parameters only (the oracle's PSNR is dropped; call
    :func:`select_oracle` for it). ``sigma`` is used by ``"auto"`` only and ``truth``
    by ``"oracle"`` only (with ``data_range`` and ``border``, see :func:`select_oracle`),
    so one call can serve both modes in a benchmark loop.

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> y = np.random.default_rng(0).random((20, 18))
    >>> select("wiener", y, gaussian(2.0), "oracle")
    Traceback (most recent call last):
    ...
    astrodeconv.errors.InputError: oracle selection needs the clean image: pass truth=..., or use mode='auto'
    """
    if mode not in MODES:
        raise InputError(f"selection mode must be one of {MODES}, got {mode!r}")
    if mode == "oracle":
        if truth is None:
            raise InputError("oracle selection needs the clean image: pass truth=..., or use mode='auto'")
        return select_oracle(method, observed, psf, truth, data_range=data_range, border=border)[0]
    return select_auto(method, observed, psf, sigma=sigma)
