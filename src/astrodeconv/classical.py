"""Classical deconvolution baselines: Wiener, Richardson-Lucy and total variation.

Three methods are registered with :mod:`astrodeconv.methods`:

``"wiener"`` (:func:`wiener`)
    Laplacian-regularised Wiener(-Hunt) filter, periodic boundary, one pair of FFTs.
``"rl"`` (:func:`rl`)
    Richardson-Lucy, unclipped, equal to ``skimage.restoration.richardson_lucy(...,
    clip=False)`` but with the PSF's transforms computed once.
``"tv"`` (:func:`tv`)
    Non-negative total-variation deconvolution solved by the Condat-Vu primal-dual
    algorithm (Condat 2014, the paper's "Prox. TV").

Every function takes ``(observed, psf, **params)`` on float64 ``(H, W)`` arrays and returns
an ``(H, W)`` float64 estimate in the units of ``observed``. The PSF is normalised to sum
1 here (as :func:`astrodeconv.methods.restore` also does).

Convolution convention
----------------------
As in :func:`astrodeconv.forward.blur`: the PSF of side ``s`` has its origin (the pixel
mapping a point source onto itself) at ``(s - 1) // 2`` along each axis -- the centre
for odd sides, the pixel before the centre for even sides such as
:func:`astrodeconv.psf.airy_paper`'s 64 x 64. :func:`rl` and :func:`tv` model the blur
with zero boundary, ``scipy.signal.fftconvolve(x, psf, "same")``; :func:`wiener` is
periodic, as scikit-image's (a Wiener filter is diagonal in the Fourier basis only for
circular convolution).

Linear convolutions are done by FFT on a zero-padded grid of side
``next_fast_len(N + s // 2)``, the smallest on which circular convolution does not wrap
into the ``N`` kept pixels; the PSF's transfer function is computed once per call.
``workers`` is passed to :mod:`scipy.fft` (``-1``: all CPU cores).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from scipy import fft

from .checks import nonnegative_float, positive_int
from .errors import InputError
from .operators import (  # noqa: F401  (re-exported: the operators' former home)
    GRADIENT_NORM2,
    ZeroBoundaryBlur,
    blur_operator,
    gradient,
    gradient_adjoint,
    laplacian_kernel,
    padded_shape,
    psf_otf,
    total_variation,
    wiener_parts,
)
from .psf import check_image, validate
from .registry import register

#: Default Wiener balance for images normalised to max 1 with noise sigma ~ 0.01 (see :func:`wiener`).
WIENER_BALANCE = 0.03
#: Default total-variation weight for images normalised to max 1 with noise sigma ~ 0.01 (see :func:`tv`).
TV_MU = 5e-4
#: Small number added to the blurred estimate in Richardson-Lucy's division (scikit-image's).
RL_EPS = 1e-12
_PRECISIONS = {"single": np.float32, "double": np.float64}
#: Most iterations of RL and TV accepted (each costs a few FFTs of the image; more is a mistake, not a setting).
MAX_ITERATIONS = 10_000

#: Wiener balances searched by both selection modes (the paper's grid).
WIENER_BALANCES = np.logspace(-3, 5, 100)
#: Richardson-Lucy iterations searched: 1, ..., RL_MAX_ITER.
RL_MAX_ITER = 100
#: TV weights of the oracle's coarse grid (a factor sqrt(10) apart); the best is then refined.
TV_MUS = np.logspace(-4.5, -1.5, 7)
#: Iterations of each TV solve during selection (the paper's limit).
TV_NUM_ITER = 100
#: Discrepancy factors: the target residual per pixel of ``auto`` selection is ``TAU * sigma^2``.
WIENER_TAU, RL_TAU, TV_TAU = 0.98, 1.0, 1.0
#: Richardson-Lucy's residual levels off above ``sigma^2``; ``auto`` stops within this many
#: ``sigma^2`` of the lowest level reached in ``RL_MAX_ITER`` iterations (see :func:`rl_auto`).
RL_FLOOR_MARGIN = 0.03

Score = Callable[[np.ndarray], float]


# --------------------------------------------------------------------------- helpers


def _check_inputs(observed: Any, psf: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate as :func:`astrodeconv.psf.check_image` and require finite pixels."""
    observed, psf = check_image(observed, psf)
    if not np.all(np.isfinite(observed)):
        raise InputError(
            f"image has {int(np.sum(~np.isfinite(observed)))} NaN or infinite pixels; "
            "use astrodeconv.methods.restore, which masks them"
        )
    return observed, psf


def _iterations(num_iter: Any) -> int:
    num_iter = positive_int(num_iter, "num_iter")
    if num_iter > MAX_ITERATIONS:
        raise InputError(f"num_iter must be at most {MAX_ITERATIONS}, got {num_iter}")
    return num_iter


# --------------------------------------------------------------------------- Wiener


def wiener(observed: np.ndarray, psf: np.ndarray, balance: float = WIENER_BALANCE, *, workers: int = -1) -> np.ndarray:
    """Laplacian-regularised Wiener(-Hunt) deconvolution.

    ``x_hat = F^-1[ conj(T) Y / (|T|^2 + balance |L|^2) ]`` with ``T`` the PSF's and ``L``
    the 3 x 3 Laplacian's transfer functions on the image grid (periodic boundary). It
    minimises ``||h * x - y||^2 + balance ||l * x||^2`` for circular convolution.

    Equal (to rounding) to ``skimage.restoration.wiener(observed, psf, balance,
    clip=False)`` for odd-sided PSFs; for an even side scikit-image puts the PSF's origin
    at ``s // 2`` instead of this package's ``(s - 1) // 2``, so the equality holds with
    ``astrodeconv.forward.pad_to_odd(psf)`` given to scikit-image.

    Parameters
    ----------
    observed : ndarray, shape (H, W)
        Blurred, noisy image.
    psf : ndarray, shape (h, w)
        PSF with ``h <= H``, ``w <= W``; normalised to sum 1 here.
    balance : float
        Regularisation weight, > 0; larger is smoother. The default 0.03 is a middle
        value for images normalised to a maximum of 1 with Gaussian noise sigma ~ 0.01
        and the paper's Airy PSF (the oracle's choices per image are in
        ``docs/results/results.csv``); select it per image with :mod:`astrodeconv.selection`.
    workers : int
        Threads for :mod:`scipy.fft` (-1: all cores).

    Returns
    -------
    estimate : ndarray, shape (H, W), float64
        Not clipped.

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> from astrodeconv.forward import blur
    >>> x = np.zeros((32, 32)); x[16, 16] = 1
    >>> x_hat = wiener(blur(x, gaussian(2.0), "periodic"), gaussian(2.0), balance=1e-4)
    >>> int(np.argmax(x_hat)) == 16 * 32 + 16, bool(x_hat.max() > 0.5)
    (True, True)
    """
    observed, psf = _check_inputs(observed, psf)
    balance = nonnegative_float(balance, "wiener balance", strict=True)
    spectrum, otf, reg2 = wiener_parts(observed, psf, workers)
    filt = np.conj(otf) / (np.abs(otf) ** 2 + balance * reg2)
    return fft.irfft2(filt * spectrum, s=observed.shape, workers=workers)


def wiener_path(
    observed: np.ndarray, psf: np.ndarray, balances: np.ndarray, *, batch: int = 8, workers: int = -1
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(balance, wiener(observed, psf, balance))`` for many balances, sharing the FFTs.

    The image's spectrum and the transfer functions are computed once; the inverse
    transforms are done ``batch`` at a time as one stacked ``irfft2``.

    Parameters
    ----------
    observed : ndarray, shape (H, W)
    psf : ndarray, shape (h, w)
    balances : array_like of float, each > 0
    batch : int
        Estimates transformed together (memory ``batch * H * W * 16`` bytes).

    Yields
    ------
    balance : float
    estimate : ndarray, shape (H, W), float64

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> y = np.random.default_rng(0).random((20, 18))
    >>> b, x_hat = next(wiener_path(y, gaussian(2.0), [0.1]))
    >>> bool(np.allclose(x_hat, wiener(y, gaussian(2.0), 0.1)))
    True
    """
    observed, psf = _check_inputs(observed, psf)
    balances = [nonnegative_float(b, "wiener balance", strict=True) for b in np.atleast_1d(balances)]
    batch = positive_int(batch, "batch")
    spectrum, otf, reg2 = wiener_parts(observed, psf, workers)
    numerator = np.conj(otf) * spectrum
    power = np.abs(otf) ** 2
    for start in range(0, len(balances), batch):
        chunk = np.asarray(balances[start : start + batch])
        spectra = numerator / (power + chunk[:, None, None] * reg2)
        estimates = fft.irfft2(spectra, s=observed.shape, workers=workers, overwrite_x=True)
        for balance, estimate in zip(chunk, estimates):
            yield float(balance), estimate


# --------------------------------------------------------------------------- Richardson-Lucy


def rl_iterates(
    observed: np.ndarray, psf: np.ndarray, num_iter: int = 30, *, precision: str = "single", workers: int = -1
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield every Richardson-Lucy iterate with its blurred version.

    scikit-image's algorithm exactly (``richardson_lucy(..., clip=False)``): start from
    0.5 everywhere, then ``x <- x * conv(y / (conv(x, h) + 1e-12), h[::-1, ::-1])`` with
    ``conv(a, k) = scipy.signal.convolve(a, k, "same")`` (zero boundary; the mirrored PSF
    has its own origin ``(s - 1) // 2``, so for even sides it is the adjoint up to a
    one-pixel shift, as in scikit-image). The PSF and its mirror are transformed once, on
    the padded grid of :func:`padded_shape`; an iteration costs two real FFT pairs.

    Parameters
    ----------
    observed : ndarray, shape (H, W)
    psf : ndarray, shape (h, w), normalised to sum 1 here
    num_iter : int
        Number of iterates to yield, >= 1.
    precision : {"single", "double"}
        Floating-point precision of the iterations. ``"single"`` (float32 FFTs) is faster
        and stays within ~1e-5 of the double-precision result on images normalised to a
        maximum of 1 (``tests/test_classical.py`` checks it).
    workers : int
        Threads for :mod:`scipy.fft`.

    Yields
    ------
    estimate : ndarray, shape (H, W)
        ``x_k`` for ``k = 1, ..., num_iter`` (a new array each time).
    blurred : ndarray, shape (H, W)
        ``conv(x_k, h)``, so the residual ``blurred - observed`` costs nothing extra.

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> y = np.random.default_rng(0).random((20, 18))
    >>> [k for k, _ in enumerate(rl_iterates(y, gaussian(2.0), 3), start=1)]
    [1, 2, 3]
    """
    observed, psf = _check_inputs(observed, psf)
    num_iter = _iterations(num_iter)
    dtype = _PRECISIONS.get(precision)
    if dtype is None:
        raise InputError(f"rl precision must be one of {sorted(_PRECISIONS)}, got {precision!r}")
    op = ZeroBoundaryBlur(psf, observed.shape, workers)
    complex_dtype = np.result_type(dtype, np.complex64)
    otf = op.otf.astype(complex_dtype)
    otf_mirror = psf_otf(psf[::-1, ::-1], op.grid, workers).astype(complex_dtype)
    observed = observed.astype(dtype)
    ratio = np.empty(observed.shape, dtype)
    estimate = np.full(observed.shape, 0.5, dtype)
    blurred = op.apply(estimate, otf)
    for _ in range(num_iter):
        np.add(blurred, dtype(RL_EPS), out=ratio)
        np.divide(observed, ratio, out=ratio)
        estimate = estimate * op.apply(ratio, otf_mirror)
        blurred = op.apply(estimate, otf)
        yield estimate.astype(np.float64, copy=False), blurred.astype(np.float64, copy=False)


def rl(
    observed: np.ndarray, psf: np.ndarray, num_iter: int = 30, precision: str = "single", *, workers: int = -1
) -> np.ndarray:
    """Richardson-Lucy deconvolution without clipping.

    Equal to ``skimage.restoration.richardson_lucy(observed, psf, num_iter,
    clip=False)`` -- to ~1e-12 relative with ``precision="double"``, to ~1e-5 with the
    default single precision -- and faster: the PSF's transfer functions are computed once
    on a fast padded grid, and float32 transforms halve the cost of each iteration. See :func:`rl_iterates` for the algorithm and
    for every iterate at the cost of one run.

    Where the blurred estimate comes close to 0 (many negative pixels on an empty
    background) the unclipped iteration divides by near-zero numbers and amplifies
    rounding errors, so two implementations -- scikit-image's own direct and FFT
    convolutions included -- can then differ by far more than rounding.

    Parameters
    ----------
    observed : ndarray, shape (H, W)
        Blurred, noisy image (negative pixels are used as they are, as scikit-image does).
    psf : ndarray, shape (h, w)
        Normalised to sum 1 here.
    num_iter : int
        Number of iterations (30 by default; more sharpens and amplifies noise).
    precision : {"single", "double"}
        Precision of the iterations (see :func:`rl_iterates`).
    workers : int
        Threads for :mod:`scipy.fft`.

    Returns
    -------
    estimate : ndarray, shape (H, W), float64

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> from astrodeconv.forward import blur
    >>> x = np.full((31, 33), 0.1); x[15, 16] = 1
    >>> y = blur(x, gaussian(3.0)) + 0.01
    >>> x_hat = rl(y, gaussian(3.0), num_iter=50)
    >>> bool(x_hat[15, 16] > 1.5 * y[15, 16])
    True
    """
    estimate = None
    for estimate, _ in rl_iterates(observed, psf, num_iter, precision=precision, workers=workers):
        pass
    return estimate


# --------------------------------------------------------------------------- total variation


def tv_objective(x: np.ndarray, observed: np.ndarray, psf: np.ndarray, mu: float) -> float:
    """Objective of :func:`tv`: ``0.5 * ||h * x - y||^2 + mu * TV(x)`` (``+inf`` if ``x`` has a negative pixel).

    ``h * x`` is the zero-boundary convolution of :func:`astrodeconv.forward.blur`
    (``boundary="zero"``), the PSF normalised to sum 1; sums run over all pixels.

    Parameters
    ----------
    x, observed : ndarray, shape (H, W)
    psf : ndarray, shape (h, w)
    mu : float
        Weight of the total variation, >= 0.

    Returns
    -------
    value : float

    Examples
    --------
    >>> y = np.zeros((6, 5)); y[3, 2] = 1
    >>> round(tv_objective(y, y, np.ones((1, 1)), mu=0.5), 6)  # 0.5 * (sqrt(2) + 1 + 1)
    1.707107
    """
    observed, psf = check_image(observed, psf)
    x = np.asarray(x, dtype=np.float64)
    if x.shape != observed.shape:
        raise InputError(f"x and observed differ in shape: {x.shape} vs {observed.shape}")
    mu = nonnegative_float(mu, "tv mu")
    if np.any(x < 0):
        return float("inf")
    residual = blur_operator(psf, x.shape).forward(x) - observed
    return float(0.5 * np.vdot(residual, residual) + mu * total_variation(x))


def tv_steps(lipschitz: float) -> tuple[float, float]:
    """Step sizes ``(tau, sigma)`` of the Condat-Vu iteration for a data term of Lipschitz gradient ``L``.

    Convergence needs ``1 / tau - sigma * ||D||^2 >= L / 2`` (Condat 2014, Thm. 3.1)
    with ``||D||^2 <= 8``. We take ``tau = 1 / L`` -- the plain gradient step of the
    data term -- and then the largest dual step the condition allows,
    ``sigma = (1 / tau - L / 2) / 8 = L / 16``; larger primal steps can oscillate for
    large ``mu`` (the objective's decrease is checked in ``tests/test_classical.py``).

    Examples
    --------
    >>> tv_steps(1.0)
    (1.0, 0.0625)
    """
    lipschitz = nonnegative_float(lipschitz, "Lipschitz constant", strict=True)
    tau = 1.0 / lipschitz
    sigma = (1.0 / tau - lipschitz / 2.0) / GRADIENT_NORM2
    return tau, sigma


def tv(
    observed: np.ndarray,
    psf: np.ndarray,
    mu: float = TV_MU,
    num_iter: int = 100,
    tol: float | None = None,
    *,
    history: list[float] | None = None,
    workers: int = -1,
) -> np.ndarray:
    """Non-negative total-variation deconvolution by the Condat-Vu primal-dual algorithm.

    Minimises ``0.5 * ||h * x - y||^2 + mu * TV(x)`` subject to ``x >= 0``, with ``h * x``
    the zero-boundary convolution of :func:`astrodeconv.forward.blur` (computed by FFT on
    a padded grid, with its exact adjoint) and ``TV`` the isotropic total variation with
    forward differences (:func:`total_variation`). With ``f`` the data term, ``g`` the
    indicator of ``x >= 0`` and ``h = mu ||.||_{2,1}`` applied to ``D x``::

        x_{k+1} = max(x_k - tau (grad f(x_k) + D^T u_k), 0)
        u_{k+1} = proj_{|u_ij| <= mu}(u_k + sigma D (2 x_{k+1} - x_k))

    (Condat 2014, Algorithm 3.1 with relaxation 1). ``L = ||H||^2`` is the largest squared
    modulus of the PSF's transfer function on the padded grid (1 for a non-negative
    unit-sum PSF, but computed, not assumed); ``tau, sigma`` come from :func:`tv_steps`.
    The start is ``x_0 = max(y, 0)``, ``u_0 = 0``.

    Parameters
    ----------
    observed : ndarray, shape (H, W)
    psf : ndarray, shape (h, w)
        Normalised to sum 1 here.
    mu : float
        Weight of the total variation, >= 0, in units of ``observed`` (the data term
        sums squared residuals over pixels). The default 5e-4 is a middle value after 100
        iterations for images normalised to a maximum of 1 with noise sigma ~ 0.01 (the
        oracle's choices are in ``docs/results/results.csv``); select it with
        :mod:`astrodeconv.selection`.
    num_iter : int
        Maximum number of iterations (the paper uses 100).
    tol : float, optional
        Stop early once ``||x_{k+1} - x_k|| / ||x_k|| < tol``. None: always ``num_iter``.
    history : list, optional
        If given, the objective (:func:`tv_objective`) of ``x_0, x_1, ...`` up to the
        returned estimate is appended to it (free: the residual is needed anyway).
    workers : int
        Threads for :mod:`scipy.fft`.

    Returns
    -------
    estimate : ndarray, shape (H, W), float64, >= 0

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> from astrodeconv.forward import observe
    >>> x = np.zeros((33, 31)); x[10:20, 8:22] = 1
    >>> y = observe(x, gaussian(3.0), sigma=0.01, rng=0)
    >>> objective = []
    >>> x_hat = tv(y, gaussian(3.0), mu=0.01, num_iter=50, history=objective)
    >>> len(objective), bool(objective[-1] < objective[0]), bool(x_hat.min() >= 0)
    (51, True, True)
    """
    observed, psf = _check_inputs(observed, psf)
    mu = nonnegative_float(mu, "tv mu")
    num_iter = _iterations(num_iter)
    if tol is not None:
        tol = nonnegative_float(tol, "tol", strict=True)
    op = blur_operator(psf, observed.shape, workers)
    tau, sigma = tv_steps(op.norm2)

    x = np.maximum(observed, 0.0)
    dual = np.zeros((2,) + observed.shape)
    grad_x = gradient(x)
    for _ in range(num_iter):
        residual = op.forward(x) - observed
        if history is not None:
            tv_x = np.sum(np.hypot(grad_x[0], grad_x[1]))
            history.append(float(0.5 * np.vdot(residual, residual) + mu * tv_x))
        step = op.adjoint(residual)
        step += gradient_adjoint(dual)
        step *= -tau
        step += x
        x_new = np.maximum(step, 0.0, out=step)
        grad_new = gradient(x_new)
        if mu > 0:
            # dual + sigma * D(2 x_new - x), then projected on the balls |u_ij| <= mu
            dual += (2.0 * sigma) * grad_new
            dual -= sigma * grad_x
            norm = np.hypot(dual[0], dual[1])
            norm *= 1.0 / mu
            dual /= np.maximum(norm, 1.0, out=norm)
        stop = tol is not None and np.linalg.norm(x_new - x) <= tol * np.linalg.norm(x)
        x, grad_x = x_new, grad_new
        if stop:
            break
    if history is not None:
        residual = op.forward(x) - observed
        tv_x = np.sum(np.hypot(grad_x[0], grad_x[1]))
        history.append(float(0.5 * np.vdot(residual, residual) + mu * tv_x))
    return x



# --------------------------------------------------------------------------- parameter selection hooks
#
# Each method's record carries two hooks (see astrodeconv.registry): ``oracle(observed, psf,
# score)`` maximises ``score(estimate)`` (the PSNR against the clean image) over the method's
# grid; ``auto(observed, psf, sigma)`` applies Morozov's discrepancy principle, choosing the
# parameter whose residual ``||h * x_hat - y||^2 / npix`` matches ``TAU * sigma^2``.
# astrodeconv.selection validates the inputs and calls them.


def wiener_oracle(observed: np.ndarray, psf: np.ndarray, score: Score) -> tuple[dict[str, Any], float]:
    """``balance`` over :data:`WIENER_BALANCES` maximising ``score``; the image's FFT is shared (:func:`wiener_path`)."""
    best, balance = max((score(est), b) for b, est in wiener_path(observed, psf, WIENER_BALANCES))
    return {"balance": float(balance)}, best


def rl_oracle(observed: np.ndarray, psf: np.ndarray, score: Score) -> tuple[dict[str, Any], float]:
    """``num_iter`` in ``1 .. RL_MAX_ITER`` maximising ``score``: one run, every iterate scored (ties: fewest)."""
    scores = [(score(est), k) for k, (est, _) in enumerate(rl_iterates(observed, psf, RL_MAX_ITER), 1)]
    best, num_iter = max(scores, key=lambda s: (s[0], -s[1]))
    return {"num_iter": int(num_iter)}, best


def tv_oracle(observed: np.ndarray, psf: np.ndarray, score: Score) -> tuple[dict[str, Any], float]:
    """``mu`` over :data:`TV_MUS` (a factor ~3.2 apart), then the two geometric midpoints around the best.

    Each solve has :data:`TV_NUM_ITER` iterations: 9 solves.
    """
    tried: dict[float, float] = {}

    def tv_score(mu: float) -> float:
        if mu not in tried:
            tried[mu] = score(tv(observed, psf, mu=mu, num_iter=TV_NUM_ITER))
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


def wiener_residuals(
    observed: np.ndarray, psf: np.ndarray, balances: np.ndarray, border: int | None = None
) -> np.ndarray:
    """Residual per pixel ``||h * x_b - y||^2 / npix`` of :func:`wiener` for each balance.

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
    >>> from astrodeconv.forward import blur
    >>> y = np.random.default_rng(0).random((16, 15))
    >>> r = wiener_residuals(y, gaussian(2.0), [0.01, 1.0], border=0)
    >>> x_hat = wiener(y, gaussian(2.0), 1.0)
    >>> bool(np.isclose(r[1], np.mean((blur(x_hat, gaussian(2.0), "periodic") - y) ** 2)))
    True
    """
    observed, psf = check_image(observed, psf)
    residual = _wiener_residual_function(observed, psf, border)
    return np.asarray([residual(b) for b in np.atleast_1d(np.asarray(balances, dtype=np.float64))])


def _wiener_residual_function(observed: np.ndarray, psf: np.ndarray, border: int | None) -> Callable[[float], float]:
    """``balance -> residual`` of :func:`wiener_residuals` (inputs already checked), with the transforms computed once."""
    border = max(psf.shape) // 2 if border is None else int(border)
    if border < 0 or 2 * border >= min(observed.shape):
        raise InputError(f"border must be >= 0 and leave pixels in an image of shape {observed.shape}, got {border}")
    spectrum, otf, reg2 = wiener_parts(observed, psf)
    power = np.abs(otf) ** 2
    npix = observed.size
    y2 = np.abs(spectrum) ** 2 * _half_spectrum_weight(observed.shape[1])

    def residual(balance: float) -> float:
        ratio = balance * reg2 / (power + balance * reg2)
        if border == 0:
            return float(np.sum(y2 * ratio**2)) / npix**2
        spatial = fft.irfft2(ratio * spectrum, s=observed.shape, workers=-1)
        return float(np.mean(spatial[border:-border, border:-border] ** 2))

    return residual


def wiener_noise_gain(shape: tuple[int, int], psf: np.ndarray, balances: Any) -> np.ndarray:
    """How much :func:`wiener` amplifies white noise: restored noise rms over the input's, per balance.

    ``sqrt(mean |G|^2)`` over the image's frequencies, ``G = conj(T) / (|T|^2 + b |L|^2)``;
    it falls as the balance grows. Above 1 the restoration is noisier than the observation.

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> g = wiener_noise_gain((64, 64), gaussian(3.0), [1e-3, 1.0])
    >>> bool(g[0] > 1.0 > g[1])
    True
    """
    gain, _ = _wiener_curves(shape, validate(psf))
    return np.array([gain(b) for b in np.atleast_1d(np.asarray(balances, dtype=np.float64))])


def _wiener_curves(shape: tuple[int, int], psf: np.ndarray) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """``balance -> noise gain`` (:func:`wiener_noise_gain`) and ``balance -> peak of a point restored``.

    The peak is ``mean(|T|^2 / (|T|^2 + b |L|^2))``, the restored point's transfer averaged over
    the frequencies. The PSF is already checked; the transfer functions are computed once.
    """
    power, reg2, weight = _spectra(shape, psf)

    def gain(balance: float) -> float:
        return float(np.sqrt(np.sum(weight * power / (power + balance * reg2) ** 2)))

    def peak(balance: float) -> float:
        return float(np.sum(weight * power / (power + balance * reg2)))

    return gain, peak


def _spectra(shape: tuple[int, int], psf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``|T|^2`` (at most 1), ``|L|^2`` and the half spectrum's weights over the pixel count (a sum is a mean)."""
    _, otf, reg2 = wiener_parts(np.zeros(shape), psf)
    return np.clip(np.abs(otf) ** 2, 0.0, 1.0), reg2, _half_spectrum_weight(shape[1]) / (shape[0] * shape[1])


def _half_spectrum_weight(width: int) -> np.ndarray:
    """Weights of the columns of a real FFT's half spectrum in a sum over the whole: 2, but 1 for 0 (and W/2)."""
    weight = np.full(width // 2 + 1, 2.0)
    weight[0] = 1.0
    if width % 2 == 0:
        weight[-1] = 1.0
    return weight


def _least_balance(shape: tuple[int, int], psf: np.ndarray) -> float:
    """The smallest balance whose restoration is no noisier than the observation, or as sharp as it if less.

    Bisections in ``log(balance)`` over :data:`WIENER_BALANCES`' range: the noise gain
    (:func:`wiener_noise_gain`) falls as the balance grows, and so does the peak of a point
    source restored (:func:`_wiener_curves`). Where keeping the noise down would leave the
    restoration blurrier than the observation (a narrow PSF, whose inverse filter amplifies the
    noise little), the balance that keeps the observation's sharpness (the PSF's peak) wins: a
    restoration is at least as sharp as its input.
    """
    gain, peak = _wiener_curves(shape, psf)
    quiet = _log_bisect(lambda b: gain(b) <= 1.0)
    sharp = _log_bisect(lambda b: peak(b) < float(psf.max()))
    return min(quiet, sharp)


def _log_bisect(beyond: Callable[[float], bool]) -> float:
    """The smallest balance of :data:`WIENER_BALANCES`' range where ``beyond`` holds (it holds above some value)."""
    lo, hi = np.log(WIENER_BALANCES[0]), np.log(WIENER_BALANCES[-1])
    if beyond(float(np.exp(lo))):
        return float(np.exp(lo))
    if not beyond(float(np.exp(hi))):
        return float(np.exp(hi))
    for _ in range(20):
        mid = 0.5 * (lo + hi)
        if beyond(float(np.exp(mid))):
            hi = mid
        else:
            lo = mid
    return float(np.exp(hi))


def wiener_auto(observed: np.ndarray, psf: np.ndarray, sigma: float) -> dict[str, Any]:
    """The balance whose residual (:func:`wiener_residuals`, half a PSF from the edges) is ``WIENER_TAU sigma^2``.

    The residual increases with ``balance``; bisection in ``log(balance)`` within the
    oracle's range ``[1e-3, 1e5]`` (30 halvings). When the target lies outside it (a frame
    whose noise is tiny or huge relative to its maximum) the choice is the range's end and a
    warning says so. The range is not widened: on Poisson-Gaussian frames the noise estimated
    from the sky is below the noise of the sources, and a smaller balance is noise-dominated
    and rings (``tests/test_instrument_files.py``). The plain
    discrepancy principle (``TAU`` = 1) oversmooths; ``TAU`` = 0.98 comes closer to the
    oracle; lower values meet the residual's floor (the noise beyond the PSF's cut-off
    frequency, which no balance removes) and fail abruptly. The losses against the oracle
    are in ``docs/results`` (``astrodeconv benchmark``).

    The search starts at the smallest balance whose restoration is no noisier than the
    observation (:func:`wiener_noise_gain` at most 1): where the residual is flat (a PSF that
    is not the image's, photon noise above the sky's, a wide PSF) the principle runs on to
    balances whose output is noise, many times the input's.
    """
    target = WIENER_TAU * sigma**2
    residual = _wiener_residual_function(observed, psf, border=None)
    least = _least_balance(observed.shape, psf)
    if target <= residual(least):  # the principle asks for less regularisation than the search allows
        if least > WIENER_BALANCES[0]:
            warnings.warn(f"wiener: the discrepancy principle asks for a balance below {least:.3g}, whose "
                          "restoration would be noisier than the observation; using that balance", UserWarning,
                          stacklevel=3)
        else:
            _at_the_edge("wiener", "balance", least)
        return {"balance": least}
    lo, hi = np.log(least), np.log(WIENER_BALANCES[-1])
    if target >= residual(np.exp(hi)):
        _at_the_edge("wiener", "balance", float(np.exp(hi)))
        return {"balance": float(np.exp(hi))}
    for _ in range(30):  # brackets log(balance) to 18.4 / 2^30
        mid = 0.5 * (lo + hi)
        if residual(np.exp(mid)) < target:
            lo = mid
        else:
            hi = mid
    return {"balance": float(np.exp(0.5 * (lo + hi)))}


def rl_noise_gain(shape: tuple[int, int], psf: np.ndarray, iterations: Any) -> np.ndarray:
    """How much :func:`rl` amplifies the noise of a flat sky after ``k`` iterations: output rms over input rms.

    About a flat sky ``s`` (where the background's noise is measured) a Richardson-Lucy step
    ``x <- x conv(y / conv(x, h), h')`` is, to first order in the noise, a Landweber step
    ``d <- d + h' * (n - h * d)`` whatever ``s``: after ``k`` steps the noise is filtered by
    ``G_k = (1 - (1 - |T|^2)^k) / T``, and the gain is ``sqrt(mean |G_k|^2)``. It grows with
    ``k`` towards the inverse filter's; above 1 the restoration is noisier than the observation.
    (A zero boundary adds artefacts of its own at the edges of a frame with a sky.)

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> g = rl_noise_gain((64, 64), gaussian(3.0), [5, 500])
    >>> bool(g[0] < 1.0 < g[1])
    True
    """
    gain, _ = _rl_curves(shape, validate(psf))
    return np.array([gain(k) for k in np.atleast_1d(np.asarray(iterations, dtype=np.float64))])


def _rl_curves(shape: tuple[int, int], psf: np.ndarray) -> tuple[Callable[[float], float], Callable[[float], float]]:
    """``k -> noise gain`` (:func:`rl_noise_gain`) and ``k -> peak of a point restored``, ``mean(1 - (1 - |T|^2)^k)``.

    The PSF is already checked; the transfer function is computed once.
    """
    power, _, weight = _spectra(shape, psf)
    tiny = power < 1e-12  # there G_k -> k T: k^2 |T|^2
    safe = np.where(tiny, 1.0, power)

    def gain(k: float) -> float:
        squared = np.where(tiny, k**2 * power, (1 - (1 - power) ** k) ** 2 / safe)
        return float(np.sqrt(np.sum(weight * squared)))

    def peak(k: float) -> float:
        return float(np.sum(weight * (1 - (1 - power) ** k)))

    return gain, peak


def _most_iterations(shape: tuple[int, int], psf: np.ndarray) -> int:
    """The most iterations whose restoration is no noisier than the observation, or as sharp as it if more.

    Up to :data:`RL_MAX_ITER`: the noise gain (:func:`rl_noise_gain`) grows with the
    iterations, and so does the peak of a point source restored (:func:`_rl_curves`). Where
    keeping the noise down would stop before the restoration is as sharp as the observation (a
    narrow PSF: the first iterate is the observation blurred once more), the iterations that
    reach the PSF's peak win.
    """
    gain, peak = _rl_curves(shape, psf)
    noisy = _first_iteration(lambda k: gain(k) > 1.0)
    sharp = _first_iteration(lambda k: peak(k) >= float(psf.max()))
    return min(max(noisy - 1, sharp, 1), RL_MAX_ITER)


def _first_iteration(reached: Callable[[int], bool]) -> int:
    """The first of ``1 .. RL_MAX_ITER`` where ``reached`` holds (it holds from some ``k`` on); ``RL_MAX_ITER + 1``: never."""
    lo, hi = 0, RL_MAX_ITER + 1  # reached(lo) is False, reached(hi) taken as True
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if reached(mid):
            hi = mid
        else:
            lo = mid
    return hi


def rl_auto(observed: np.ndarray, psf: np.ndarray, sigma: float) -> dict[str, Any]:
    """The first iteration whose residual is at most ``max(RL_TAU sigma^2, min_k r_k + RL_FLOOR_MARGIN sigma^2)``.

    One run of :data:`RL_MAX_ITER` iterations, residuals ``r_k = ||conv(x_k, h) - y||^2 /
    npix``. RL's residual falls with the iterations but, with Gaussian noise and negative
    pixels it cannot fit, levels off above ``sigma^2``, so the plain discrepancy target is
    rarely reached; the second term stops once the residual is within 3 % of ``sigma^2`` of
    its lowest level. (On a dark image with many negative pixels unclipped RL diverges after
    a few tens of iterations and its residual rises again: the lowest level, not the last,
    is the reference.)

    The choice is at most the number of iterations whose restoration of a flat sky is no
    noisier than the observation (:func:`rl_noise_gain` at most 1), and a warning says when
    that stops it: on a frame with photon noise over a sky, the residual keeps falling long
    after the output has become noise.
    """
    residuals = np.array([np.mean((blurred - observed) ** 2) for _, blurred in rl_iterates(observed, psf, RL_MAX_ITER)])
    threshold = max(RL_TAU * sigma**2, residuals.min() + RL_FLOOR_MARGIN * sigma**2)
    num_iter = int(np.argmax(residuals <= threshold)) + 1
    most = _most_iterations(observed.shape, psf)
    if num_iter > most:
        warnings.warn(f"rl: stopped at {most} iterations (the discrepancy principle asks for {num_iter}): beyond, "
                      "its restoration would be noisier than the observation", UserWarning, stacklevel=3)
        return {"num_iter": most}
    if num_iter == RL_MAX_ITER and residuals[-1] > RL_TAU * sigma**2 and residuals[-1] < residuals[-2]:
        _at_the_edge("rl", "num_iter", RL_MAX_ITER)
    return {"num_iter": num_iter}


def tv_auto(observed: np.ndarray, psf: np.ndarray, sigma: float) -> dict[str, Any]:
    """The ``mu`` whose solution's residual is closest (in log scale) to ``TV_TAU sigma^2``.

    The residual grows with ``mu``: bisection in ``log(mu)`` over ``[TV_MUS[0], TV_MUS[-1]]``
    with 6 solves of :data:`TV_NUM_ITER` iterations. With 100 iterations the PSNR-best ``mu``
    leaves a residual a little below ``sigma^2``, so this rule smooths more than the oracle.
    The residual is measured half a PSF from the edges (as :func:`wiener_auto`'s): a frame
    not blurred periodically, as no real one is, leaves at its edges a residual no ``mu``
    removes (twice ``sigma^2`` on a GalSim frame), and the rule would run to the smallest
    ``mu``, noise-dominated.
    """
    target = TV_TAU * sigma**2
    lo, hi = np.log(TV_MUS[0]), np.log(TV_MUS[-1])
    tried: dict[float, float] = {}
    op = blur_operator(psf, observed.shape)
    border = max(psf.shape) // 2 if 2 * (max(psf.shape) // 2) < min(observed.shape) else 0
    inside = (slice(border, observed.shape[0] - border), slice(border, observed.shape[1] - border))
    for _ in range(6):
        mu = float(np.exp(0.5 * (lo + hi)))
        estimate = tv(observed, psf, mu=mu, num_iter=TV_NUM_ITER)
        residual = float(np.mean((op.forward(estimate) - observed)[inside] ** 2))
        tried[mu] = residual
        if residual < target:
            lo = np.log(mu)
        else:
            hi = np.log(mu)
    mu = min(tried, key=lambda m: abs(np.log(tried[m] / target)))
    low, high = min(tried), max(tried)
    if (mu == low and tried[mu] > target) or (mu == high and tried[mu] < target):
        _at_the_edge("tv", "mu", mu)
    return {"mu": mu}


def _at_the_edge(method: str, name: str, value: float) -> None:
    """Say that automatic selection stopped at the end of its search, where the optimum may lie beyond."""
    warnings.warn(f"{method}: the automatic choice stopped at the end of its search ({name}={value:.3g}); the "
                  f"discrepancy target lies beyond it: check the noise level, or give --param {name}=...",
                  UserWarning, stacklevel=3)


register("wiener", "Laplacian-regularised Wiener filter (periodic)", defaults={"balance": WIENER_BALANCE},
         tuned="balance", grid=tuple(float(b) for b in WIENER_BALANCES), oracle=wiener_oracle, auto=wiener_auto,
         boundary="periodic")(wiener)
register("rl", "Richardson-Lucy, unclipped (as scikit-image)", defaults={"num_iter": 30, "precision": "single"},
         tuned="num_iter", grid=tuple(float(k) for k in range(1, RL_MAX_ITER + 1)), oracle=rl_oracle, auto=rl_auto,
         boundary="zero")(rl)
register("tv", "Non-negative total variation, Condat-Vu primal-dual", defaults={"mu": TV_MU, "num_iter": 100, "tol": None},
         tuned="mu", grid=tuple(float(m) for m in TV_MUS), oracle=tv_oracle, auto=tv_auto, boundary="zero")(tv)
