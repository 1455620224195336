"""Linear operators shared by the methods and the networks: transfer functions, blur, gradient, Laplacian.

Arrays in, arrays out, NumPy and SciPy only; this module imports nothing of the package but
:mod:`astrodeconv.errors`, so the forward model, the classical methods and the networks all
build on it (as deepinv's physics never imports its solvers).

Convolution convention: the PSF of side ``s`` has its origin (the pixel mapping a point
source onto itself) at ``(s - 1) // 2`` along each axis, as ``scipy.signal.fftconvolve(...,
"same")``. Linear (zero-boundary) convolutions are done by FFT on a zero-padded grid of side
``next_fast_len(N + s // 2)`` (:func:`padded_shape`), on which circular convolution does not
wrap into the ``N`` kept pixels. ``workers`` is passed to :mod:`scipy.fft` (-1: all cores).
"""

from __future__ import annotations

import numpy as np
from scipy import fft

from .errors import InputError

__all__ = ["GRADIENT_NORM2", "ZeroBoundaryBlur", "blur_operator", "gradient", "gradient_adjoint", "laplacian_kernel",
           "padded_shape", "psf_otf", "total_variation", "wiener_parts"]

#: Upper bound of the squared operator norm of the 2-D forward-difference gradient.
GRADIENT_NORM2 = 8.0


def psf_otf(psf: np.ndarray, shape: tuple[int, int], workers: int = 1) -> np.ndarray:
    """Real-FFT transfer function of ``psf`` for circular convolution on ``shape``.

    The PSF is zero-padded to ``shape`` and rolled so that its origin
    ``(psf.shape - 1) // 2`` lands on pixel (0, 0).

    Parameters
    ----------
    psf : ndarray, shape (h, w)
    shape : tuple of int
        Grid ``(H, W)`` with ``h <= H`` and ``w <= W``.
    workers : int
        Threads for :mod:`scipy.fft` (-1: all cores).

    Returns
    -------
    otf : ndarray, shape (H, W // 2 + 1), complex128

    Examples
    --------
    >>> otf = psf_otf(np.full((3, 3), 1 / 9), (8, 8))
    >>> otf.shape, round(float(abs(otf[0, 0])), 12)
    ((8, 5), 1.0)
    """
    psf = np.asarray(psf, dtype=np.float64)
    if psf.shape[0] > shape[0] or psf.shape[1] > shape[1]:
        raise InputError(f"PSF of shape {psf.shape} is larger than the grid {tuple(shape)}; crop the PSF")
    padded = np.zeros(shape)
    padded[: psf.shape[0], : psf.shape[1]] = psf
    padded = np.roll(padded, (-((psf.shape[0] - 1) // 2), -((psf.shape[1] - 1) // 2)), axis=(0, 1))
    return fft.rfft2(padded, workers=workers)


def padded_shape(image_shape: tuple[int, int], psf_shape: tuple[int, int]) -> tuple[int, int]:
    """Smallest fast FFT grid on which circular convolution equals zero-boundary "same" convolution.

    Along each axis ``next_fast_len(N + s // 2)``: the kernel reaches ``s // 2`` pixels
    before its origin, so wrapped values land outside the ``N`` kept pixels.

    Examples
    --------
    >>> padded_shape((1024, 1024), (64, 64))
    (1080, 1080)
    """
    return tuple(fft.next_fast_len(n + s // 2, real=True) for n, s in zip(image_shape, psf_shape))


class ZeroBoundaryBlur:
    """Zero-boundary convolution ``H x = fftconvolve(x, psf, "same")`` and its exact adjoint.

    ``H = E^T C E`` with ``E`` the zero-embedding of the ``(H, W)`` image in the padded
    grid and ``C`` circular convolution there, so ``H^T = E^T C^T E`` (circular
    correlation, the conjugate transfer function) is the exact adjoint.
    """

    def __init__(self, psf: np.ndarray, shape: tuple[int, int], workers: int = -1):
        self.shape = tuple(shape)
        self.grid = padded_shape(self.shape, psf.shape)
        self.workers = workers
        self.otf = psf_otf(psf, self.grid, workers)
        self._otf_conj = np.conj(self.otf)

    def apply(self, x: np.ndarray, otf: np.ndarray) -> np.ndarray:
        """Circular convolution of zero-padded ``x`` with transfer function ``otf``, cropped to ``shape``.

        Pruned transforms: the row FFTs skip the padding rows of the input, and the
        inverse row FFTs run only on the rows that are kept.
        """
        (rows, cols), (grid_rows, grid_cols), workers = self.shape, self.grid, self.workers
        spectrum = fft.rfft(x, n=grid_cols, axis=1, workers=workers)
        spectrum = fft.fft(spectrum, n=grid_rows, axis=0, workers=workers, overwrite_x=True)
        spectrum *= otf
        spectrum = fft.ifft(spectrum, axis=0, workers=workers, overwrite_x=True)[:rows]
        return fft.irfft(spectrum, n=grid_cols, axis=1, workers=workers, overwrite_x=True)[:, :cols]

    def forward(self, x: np.ndarray) -> np.ndarray:
        return self.apply(x, self.otf)

    def adjoint(self, y: np.ndarray) -> np.ndarray:
        return self.apply(y, self._otf_conj)

    @property
    def norm2(self) -> float:
        """Upper bound of ``||H||^2``: the largest squared modulus of the transfer function."""
        return float(np.max(np.abs(self.otf) ** 2))


def blur_operator(psf: np.ndarray, shape: tuple[int, int], workers: int = -1) -> ZeroBoundaryBlur:
    """The zero-boundary blur used by :func:`tv`, with ``forward``, ``adjoint`` and ``norm2``.

    ``forward(x)`` equals ``scipy.signal.fftconvolve(x, psf, "same")`` and ``adjoint`` is
    its exact transpose; both act on ``(H, W) = shape`` arrays.

    Examples
    --------
    >>> op = blur_operator(np.ones((2, 2)) / 4, (5, 4))
    >>> x = np.zeros((5, 4)); x[2, 2] = 1
    >>> op.forward(x)[2:4, 2:4].round(12).tolist()
    [[0.25, 0.25], [0.25, 0.25]]
    """
    return ZeroBoundaryBlur(np.asarray(psf, dtype=np.float64), tuple(shape), workers)


def laplacian_kernel() -> np.ndarray:
    """The 3 x 3 discrete Laplacian of the Wiener regularisation (scikit-image's).

    Examples
    --------
    >>> laplacian_kernel().astype(int).tolist()
    [[0, -1, 0], [-1, 4, -1], [0, -1, 0]]
    """
    return np.array([[0.0, -1.0, 0.0], [-1.0, 4.0, -1.0], [0.0, -1.0, 0.0]])


def wiener_parts(observed: np.ndarray, psf: np.ndarray, workers: int = -1) -> tuple[np.ndarray, ...]:
    """The three spectra of a Laplacian-regularised Wiener filter on the image's own (periodic) grid.

    Returns
    -------
    spectrum : ndarray, shape (H, W // 2 + 1), complex
        ``rfft2(observed)``.
    otf : ndarray, shape (H, W // 2 + 1), complex
        The PSF's transfer function (:func:`psf_otf`).
    reg2 : ndarray, shape (H, W // 2 + 1), float
        ``|L|^2``, the squared response of :func:`laplacian_kernel`.
    """
    rows, cols = observed.shape
    spectrum = fft.rfft2(observed, workers=workers)
    otf = psf_otf(psf, observed.shape, workers)
    # The Laplacian's transfer function is real: 4 - 2 cos(2 pi k / H) - 2 cos(2 pi l / W).
    wy = 2.0 * np.pi * np.arange(rows)[:, None] / rows
    wx = 2.0 * np.pi * np.arange(cols // 2 + 1)[None, :] / cols
    reg2 = (4.0 - 2.0 * np.cos(wy) - 2.0 * np.cos(wx)) ** 2
    return spectrum, otf, reg2


def gradient(x: np.ndarray) -> np.ndarray:
    """Forward differences with Neumann boundary (zero difference past the last row/column).

    Parameters
    ----------
    x : ndarray, shape (H, W)

    Returns
    -------
    g : ndarray, shape (2, H, W)
        ``g[0]`` along rows (axis 0), ``g[1]`` along columns (axis 1).

    Examples
    --------
    >>> gradient(np.array([[0.0, 1.0], [2.0, 4.0]])).tolist()
    [[[2.0, 3.0], [0.0, 0.0]], [[1.0, 0.0], [2.0, 0.0]]]
    """
    g = np.zeros((2,) + x.shape)
    np.subtract(x[1:], x[:-1], out=g[0, :-1])
    np.subtract(x[:, 1:], x[:, :-1], out=g[1, :, :-1])
    return g


def gradient_adjoint(g: np.ndarray) -> np.ndarray:
    """Exact adjoint of :func:`gradient` (minus the discrete divergence).

    Parameters
    ----------
    g : ndarray, shape (2, H, W)

    Returns
    -------
    x : ndarray, shape (H, W)

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x, g = rng.random((5, 4)), rng.random((2, 5, 4))
    >>> bool(np.isclose(np.vdot(gradient(x), g), np.vdot(x, gradient_adjoint(g))))
    True
    """
    out = np.zeros(g.shape[1:])
    out[:-1] -= g[0, :-1]
    out[1:] += g[0, :-1]
    out[:, :-1] -= g[1, :, :-1]
    out[:, 1:] += g[1, :, :-1]
    return out


def total_variation(x: np.ndarray) -> float:
    """Isotropic total variation ``sum_ij sqrt(dx_ij^2 + dy_ij^2)`` with forward differences.

    Examples
    --------
    >>> total_variation(np.array([[0.0, 3.0], [4.0, 0.0]]))  # 5 + 3 + 4 + 0
    12.0
    """
    return float(np.sum(np.sqrt(np.sum(gradient(np.asarray(x, dtype=np.float64)) ** 2, axis=0))))
