"""Choosing the regularisation parameter of a method, from the hooks on its record.

Two modes, named plainly:

``"oracle"`` (:func:`select_oracle`)
    The paper's protocol: a grid search maximising the PSNR against the clean image.
    It needs the ground truth, so it is an upper bound for a method, not something a
    user of real data can run.
``"auto"`` (:func:`select_auto`)
    No ground truth: Morozov's discrepancy principle -- the parameter whose residual
    ``||h * x_hat - y||^2 / npix`` matches ``tau * sigma^2`` for the noise level
    ``sigma`` (given, or estimated from the image by :func:`astrodeconv.noise.estimate_sigma`).

What is searched, and how, is on each method's record (:class:`astrodeconv.registry.Method`:
``tuned``, ``grid``, ``oracle``, ``auto``; the classical methods' hooks are in
:mod:`astrodeconv.classical`). A method with no tuned parameter (the networks) has nothing
to select: both modes return ``{}`` for it, i.e. "run with the registered defaults".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import methods
from .classical import RL_MAX_ITER, TV_MUS, TV_NUM_ITER, WIENER_BALANCES, wiener_residuals  # noqa: F401  (grids)
from .checks import positive_float
from .errors import InputError
from .metrics import psnr
from .noise import estimate_sigma
from .psf import check_image

MODES = ("oracle", "auto")


def _check_truth(truth: Any, observed: np.ndarray) -> np.ndarray:
    truth = np.asarray(truth, dtype=np.float64)
    if truth.shape != observed.shape:
        raise InputError(f"truth and observed differ in shape: {truth.shape} vs {observed.shape}")
    if not np.all(np.isfinite(truth)):
        raise InputError("truth has NaN or infinite pixels; the oracle needs a finite clean image")
    return truth


def select_oracle(
    method: str,
    observed: np.ndarray,
    psf: np.ndarray,
    truth: np.ndarray,
    data_range: float = 1.0,
    border: int = 32,
) -> tuple[dict[str, Any], float]:
    """Grid search for the parameter maximising the PSNR against the clean image.

    Parameters
    ----------
    method : str
        A registered method name; its ``oracle`` hook searches its ``grid``.
    observed : ndarray, shape (H, W)
    psf : ndarray, shape (h, w)
    truth : ndarray, shape (H, W)
        The clean image.
    data_range, border
        Passed to :func:`astrodeconv.metrics.psnr` (1.0 and 32 in the paper).

    Returns
    -------
    params : dict
        The best parameter, e.g. ``{"balance": 0.0123}``; ``{}`` for a method with none.
    score_db : float
        Its PSNR, dB (``nan`` when there is nothing to select).

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
    found = methods.get(method)
    observed, psf = check_image(observed, psf)
    truth = _check_truth(truth, observed)
    if found.oracle is None:
        return {}, float("nan")
    return found.oracle(observed, psf, lambda estimate: psnr(estimate, truth, data_range=data_range, border=border))


def select_auto(method: str, observed: np.ndarray, psf: np.ndarray, sigma: float | None = None) -> dict[str, Any]:
    """Choose the parameter without ground truth, by the discrepancy principle (the method's ``auto`` hook).

    Parameters
    ----------
    method : str
    observed : ndarray, shape (H, W)
        Must be finite.
    psf : ndarray, shape (h, w)
    sigma : float, optional
        Noise standard deviation in image units. None: :func:`astrodeconv.noise.estimate_sigma`
        of the observation.

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
    found = methods.get(method)
    observed, psf = check_image(observed, psf)
    if not np.all(np.isfinite(observed)):
        raise InputError("image has NaN or infinite pixels; auto selection needs a finite image")
    if found.auto is None:
        return {}
    if sigma is None:
        sigma = estimate_sigma(observed)
    return found.auto(observed, psf, positive_float(sigma, "sigma", "noise standard deviation"))


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
