"""The ``restorer`` network: a bank of finite Wiener filters followed by a residual CNN.

The paper's 3-CNN learns the deconvolution and the denoising together from one PSF. The
restorer splits them: the PSF enters through a fixed bank of Laplacian-regularised Wiener
filters (the Tikhonov step of Sureau et al. 2020), computed from the PSF on a finite
``kernel x kernel`` support, and a residual CNN of 3 x 3 convolutions removes what a
linear filter cannot (noise, ringing, negative wings around stars). Giving the network
another PSF is recomputing its bank (:meth:`Restorer.set_psf`); the learned part never
sees the PSF itself, which is what lets one model serve many PSFs.

Units. The network works in *noise units*: its input is ``(y - background) / sigma``, so
the noise has unit standard deviation and the sky sits at zero whatever the image's own
units (:func:`normalise_noise`). Its output is mapped back with the same affine map, which
makes the restoration equivariant to ``a y + b`` (``a > 0``).

Signal-to-noise. The best balance of a Wiener filter is a noise-to-signal ratio: in noise
units it falls as the square of the image's signal-to-noise ratio (``snr``, the 99.9th
percentile of the image in noise units, :func:`signal_to_noise`). A restorer built with a
``reference_snr`` scales its bank's balances by ``(reference_snr / snr) ** 2``, so each
channel is the same degree of smoothing at every noise level and the CNN after it sees
inputs of one kind from sigma = 0.003 to 0.05. Without it the balances are fixed.

Shapes. Every convolution is "valid": an input ``(B, 1, H, W)`` gives ``(B, 1, H - 2 m,
W - 2 m)`` with ``m = kernel // 2 + depth`` (34 pixels for the defaults), so tiles with
an overlap of ``m`` pixels reproduce the whole-image output exactly
(:func:`astrodeconv.nn.predict.deconvolve`).

Cost per output pixel: ``len(balances) kernel^2`` multiply-adds for the bank plus about
``9 features^2 (depth - 2)`` for the CNN (86 k for the defaults; ``cnn3`` needs 44 k).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ..checks import MAX_CHANNELS, MAX_DEPTH, MAX_KERNEL, int_between, weights_within
from ..errors import InputError
from ..noise import NoiseStatistics, noise_statistics, normalise_noise, signal_to_noise
from ..operators import laplacian_kernel, psf_otf
from ..psf import validate

__all__ = ["BANK_BALANCES", "NoiseStatistics", "NoiseUnits", "Restorer", "noise_statistics", "normalise_noise",
           "signal_to_noise", "wiener_bank"]

#: Wiener balances of the bank. A balance is a noise-to-signal ratio, so it does not depend
#: on the image's units: the paper's setting (sigma = 0.01 of the maximum) is best served by
#: about 0.03, sigma from 0.003 to 0.05 by about 0.0003 to 0.8 depending on the PSF.
BANK_BALANCES = (0.0001, 0.001, 0.01, 0.1, 1.0)
#: Signal-to-noise ratios a restorer with a local bank (``snr_window``) tells apart, and the
#: step of its grid of log-balances (a third of a decade).
LOCAL_SNR_RANGE = (1.0, 1e4)
GRID_STEP = np.log(10.0) / 3


#: Lowest restored value, noise units (the sky at 0): below it the noise does not reach.
NEGATIVE_LIMIT = 3.0


def _flux_kernels(psf: np.ndarray, kernel: int) -> torch.Tensor:
    """The PSF cut to ``kernel`` pixels and the Gaussian of :meth:`Restorer._keep_flux`, ``(2, kernel, kernel)``."""
    from ..psf import fwhm

    half = kernel // 2
    padded = np.zeros((max(kernel, psf.shape[0]), max(kernel, psf.shape[1])))
    r0, c0 = (padded.shape[0] - psf.shape[0]) // 2, (padded.shape[1] - psf.shape[1]) // 2
    padded[r0 : r0 + psf.shape[0], c0 : c0 + psf.shape[1]] = psf
    cy, cx = (padded.shape[0] - 1) // 2, (padded.shape[1] - 1) // 2
    cut = padded[cy - half : cy + half + 1, cx - half : cx + half + 1]
    sigma = min(2 * fwhm(psf), half / 3.0) / 2.3548
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    gauss = np.exp(-(yy**2 + xx**2) / (2 * sigma**2))
    return torch.from_numpy(np.stack([cut / cut.sum(), gauss / gauss.sum()]))


def _valid_fft(image: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """The "valid" convolution of ``(B, 1, H, W)`` with a centred, symmetric-sized ``(k, k)`` kernel, by FFT."""
    rows, cols = image.shape[-2:]
    k = kernel.shape[-1]
    spectrum = torch.fft.rfft2(kernel.to(image.device, image.dtype), s=(rows, cols))
    return torch.fft.irfft2(torch.fft.rfft2(image) * spectrum, s=(rows, cols))[..., k - 1 :, k - 1 :]


def _snr_margin(window: int) -> int:
    """Pixels lost per side by :meth:`Restorer.local_snr` for a window of ``window`` pixels."""
    return 1 + window // 2 + ((window // 2) | 1) // 2


def wiener_bank(
    psf: np.ndarray, balances: Sequence[float] = BANK_BALANCES, kernel: int = 49, taper: bool = True
) -> np.ndarray:
    """Spatial kernels of Laplacian-regularised Wiener filters for ``psf``, cut to a square.

    Filter ``k`` is ``conj(T) / (|T|^2 + balances[k] |L|^2)`` (as in
    :func:`astrodeconv.classical.wiener`) on a periodic grid four times the kernel side,
    brought back to space and cut to ``kernel x kernel`` around its origin. With ``taper``
    the cut kernel is multiplied by a 2-D Hann window and rescaled to unit sum (the filter's
    exact response to a constant): a wide PSF's inverse rings far beyond the square, and a
    plain cut then changes the image's mean level (``tests/test_restorer.py`` checks that
    the taper keeps it).

    Parameters
    ----------
    psf : ndarray, shape (h, w)
        PSF (normalised to sum 1 here), origin at ``((h - 1) // 2, (w - 1) // 2)``.
    balances : sequence of float, each > 0
    kernel : int
        Odd side of the kernels, pixels.

    Returns
    -------
    bank : ndarray, shape (len(balances), kernel, kernel), float32
        Cross-correlation kernels (flipped, ready for ``torch.nn.functional.conv2d``): output
        pixel ``(i, j)`` of a "valid" correlation is the filtered image at input pixel
        ``(i + kernel // 2, j + kernel // 2)``.

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> bank = wiener_bank(gaussian(4.0), kernel=25)
    >>> bank.shape, [round(float(k.sum()), 2) for k in bank]
    ((5, 25, 25), [1.0, 1.0, 1.0, 1.0, 1.0])
    """
    psf = validate(psf)
    kernel = int(kernel)
    if kernel < 3 or kernel % 2 == 0:
        raise InputError(f"Wiener bank kernel must be an odd number of pixels >= 3, got {kernel}")
    balances = [float(b) for b in balances]
    if not balances or min(balances) <= 0:
        raise InputError(f"Wiener bank balances must be positive, got {balances}")
    n = max(4 * kernel, 2 * max(psf.shape))
    otf = psf_otf(psf, (n, n))
    reg2 = np.abs(psf_otf(laplacian_kernel(), (n, n))) ** 2
    half = kernel // 2
    window = np.outer(*(2 * [np.hanning(kernel + 2)[1:-1]]))
    out = np.empty((len(balances), kernel, kernel), dtype=np.float32)
    for k, balance in enumerate(balances):
        impulse = np.fft.irfft2(np.conj(otf) / (np.abs(otf) ** 2 + balance * reg2), s=(n, n))
        centred = np.fft.fftshift(impulse)[n // 2 - half : n // 2 + half + 1, n // 2 - half : n // 2 + half + 1]
        if taper:
            centred = centred * window
            centred = centred / centred.sum()
        out[k] = centred[::-1, ::-1]
    return out


class Restorer(nn.Module):
    """Wiener bank + residual CNN on noise-normalised images (see the module docstring).

    ``features(y)``: the bank's ``C`` filtered images and ``y`` itself, all "valid"
    (``kernel // 2`` lost per side), ``C + 1`` channels. ``head(f)``: ``depth`` 3 x 3
    convolutions (ReLU between them) plus a linear 1 x 1 skip from the centred features,
    initialised to pass the middle Wiener filter through.

    Parameters
    ----------
    features : int
        Channels of the hidden convolutions.
    depth : int
        Number of 3 x 3 convolutions (>= 2).
    kernel : int
        Odd side of the Wiener kernels.
    balances : sequence of float
        Balances of the bank.
    psf : ndarray, optional
        PSF whose bank is installed now (else call :meth:`set_psf` before use).
    taper : bool
        Hann-taper and renormalise the bank's kernels (:func:`wiener_bank`).
    reference_snr : float, optional
        Signal-to-noise ratio at which ``balances`` apply as given; at another ratio ``snr``
        (:meth:`set_snr`) the bank uses ``balances * (reference_snr / snr) ** 2``. ``None``:
        the balances are fixed.

    Shapes
    ------
    input ``(B, 1, H, W)`` -> output ``(B, 1, H - 2 margin, W - 2 margin)``,
    ``margin = kernel // 2 + depth``.
    """

    def __init__(
        self,
        features: int = 32,
        depth: int = 10,
        kernel: int = 49,
        balances: Sequence[float] = BANK_BALANCES,
        psf: np.ndarray | None = None,
        taper: bool = True,
        reference_snr: float | None = None,
        snr_window: int | None = None,
        conserve_flux: bool = False,
    ) -> None:
        super().__init__()
        features = int_between(features, "restorer features", 1, MAX_CHANNELS)
        depth = int_between(depth, "restorer depth", 2, MAX_DEPTH)
        kernel = int_between(kernel, "restorer kernel", 3, MAX_KERNEL)
        if isinstance(balances, (str, bytes)) or len(balances) > MAX_CHANNELS:
            raise InputError(f"restorer balances must be a list of at most {MAX_CHANNELS} positive numbers, got {balances!r}")
        try:
            balances = [float(b) for b in balances]
        except (TypeError, ValueError):
            raise InputError(f"restorer balances must be positive numbers, got {balances!r}") from None
        weights_within(9 * features**2 * depth + len(balances) * kernel**2, "restorer")
        if kernel % 2 == 0:
            raise InputError(f"restorer kernel must be an odd number of pixels >= 3, got {kernel}")
        if reference_snr is not None and not (np.isfinite(reference_snr) and reference_snr > 0):
            raise InputError(f"reference_snr must be a positive number or None, got {reference_snr!r}")
        if snr_window is not None:
            snr_window = int_between(snr_window, "restorer snr_window", 3, MAX_KERNEL)
            if snr_window % 2 == 0 or reference_snr is None:
                raise InputError(f"restorer snr_window must be an odd number of pixels and needs a reference_snr, got "
                                 f"{snr_window} with reference_snr={reference_snr!r}")
        self.snr_window = snr_window
        self.balances = tuple(float(b) for b in balances)
        self.taper = bool(taper)
        self.reference_snr = None if reference_snr is None else float(reference_snr)
        self.snr = self.reference_snr
        self.photon = 0.0
        self.psf: np.ndarray | None = None
        self.kernel = kernel
        self.depth = depth
        self.feature_margin = kernel // 2 if snr_window is None else max(kernel // 2, _snr_margin(snr_window))
        self.conserve_flux = bool(conserve_flux)
        self.margin = self.feature_margin + depth + (2 * (kernel // 2) if self.conserve_flux else 0)
        channels = len(self.balances) + 1
        self.register_buffer("bank", torch.zeros(len(self.balances), 1, kernel, kernel))
        self.register_buffer("grid_bank", torch.zeros(0, 1, kernel, kernel), persistent=False)
        layers: list[nn.Module] = [nn.Conv2d(channels, features, 3), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(features, features, 3), nn.ReLU(inplace=True)]
        layers.append(nn.Conv2d(features, 1, 3))
        self.body = nn.Sequential(*layers)
        self.skip = nn.Conv2d(channels, 1, 1)
        for layer in self.body:
            if isinstance(layer, nn.Conv2d):
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
                nn.init.zeros_(layer.bias)
        with torch.no_grad():
            self.body[-1].weight.mul_(0.1)
            self.skip.weight.zero_()
            self.skip.weight[0, len(self.balances) // 2] = 1.0
            self.skip.bias.zero_()
        if psf is not None:
            self.set_psf(psf)

    def set_psf(self, psf: np.ndarray, snr: float | None = None) -> "Restorer":
        """Install the Wiener bank of ``psf`` (in place), scaled to ``snr`` if given; returns the module."""
        self.psf = np.asarray(psf, dtype=np.float64)
        if snr is not None:
            self._store_snr(snr)
        return self._install_bank()

    def set_snr(self, snr: float) -> "Restorer":
        """Scale the bank to an image of signal-to-noise ratio ``snr`` (:func:`signal_to_noise`), in place.

        Does nothing to a restorer without ``reference_snr`` (fixed balances), nor when ``snr``
        is the one the bank already has.
        """
        if self._store_snr(snr) and self.psf is not None:
            self._install_bank()
        return self

    def _store_snr(self, snr: float) -> bool:
        """Record ``snr``; whether the bank's balances change."""
        if self.reference_snr is None:
            return False
        snr = float(snr)
        if not (np.isfinite(snr) and snr > 0):
            raise InputError(f"snr must be a positive number, got {snr!r}")
        changed, self.snr = snr != self.snr, snr
        return changed

    def set_photon(self, photon: float) -> "Restorer":
        """Photon noise of the image in noise units: the variance of a pixel is ``1 + photon * max(z, 0)``.

        ``photon = 1 / (gain * sigma)`` for an image of gain ``gain`` (electrons per image unit)
        and sky noise ``sigma``; 0 (the default) for noise of one level everywhere. Only a local
        bank (``snr_window``) uses it: around a bright star the signal-to-noise ratio is the
        star's own photon-limited one, not its height over the sky's noise.
        """
        photon = float(photon)
        if not (np.isfinite(photon) and photon >= 0):
            raise InputError(f"photon must be a number >= 0, got {photon!r}")
        self.photon = photon
        return self

    def bank_balances(self) -> tuple[float, ...]:
        """The balances the bank uses now (``balances`` scaled to the current ``snr``)."""
        if self.reference_snr is None:
            return self.balances
        return tuple(b * (self.reference_snr / self.snr) ** 2 for b in self.balances)

    def _install_bank(self) -> "Restorer":
        if self.conserve_flux:
            self.flux_kernels = _flux_kernels(self.psf, self.kernel)
        if self.snr_window is not None:  # every balance a pixel may need, on a grid of log-balances
            grid = wiener_bank(self.psf, np.exp(self._log_grid()), self.kernel, self.taper)
            self.grid_bank = torch.from_numpy(grid)[:, None].to(self.bank.device, self.bank.dtype)
            return self
        bank = wiener_bank(self.psf, self.bank_balances(), self.kernel, self.taper)
        with torch.no_grad():
            self.bank.copy_(torch.from_numpy(bank)[:, None].to(self.bank.device, self.bank.dtype))
        return self

    def _log_grid(self) -> np.ndarray:
        """Log-balances of the local bank's grid: from the smallest balance at ``LOCAL_SNR_RANGE[1]`` to the largest at 1."""
        ratio = 2 * np.log(self.reference_snr / np.array(LOCAL_SNR_RANGE))
        lo, hi = np.log(min(self.balances)) + ratio[1], np.log(max(self.balances)) + ratio[0]
        return np.arange(lo, hi + GRID_STEP, GRID_STEP)

    def local_snr(self, y: torch.Tensor) -> torch.Tensor:
        """The signal-to-noise ratio around each pixel of a noise-unit image, ``(B, 1, H, W)`` -> ``(B, 1, h, w)``.

        The largest 3 x 3 mean within ``snr_window`` pixels, over its noise (with photon noise,
        :meth:`set_photon`, ``sqrt(1 + photon * mean)``), clipped to ``LOCAL_SNR_RANGE``,
        its logarithm averaged over a box half as wide, so that the bank's balances change
        smoothly: ``h = H - 2 _snr_margin(snr_window)``. Only the pixels within
        :attr:`margin` of an output pixel set it (no image-wide statistic).
        """
        from torch.nn import functional as F

        w = self.snr_window
        level = F.avg_pool2d(y, 3, stride=1)
        if self.photon > 0:
            level = level / torch.sqrt(1.0 + self.photon * level.clamp(min=0.0))
        level = F.max_pool2d(F.max_pool2d(level, (1, w), stride=1), (w, 1), stride=1)
        level = torch.log(level.clamp(*LOCAL_SNR_RANGE))
        half = (w // 2) | 1
        return torch.exp(F.avg_pool2d(F.avg_pool2d(level, (1, half), stride=1), (half, 1), stride=1))

    def _local_features(self, y: torch.Tensor) -> torch.Tensor:
        """The bank's channels at each pixel's own signal-to-noise ratio: interpolated in log-balance on the grid.

        By float32 FFTs (half the time of float64): tiles and the whole image then agree to
        float32 rounding of the input's range (about 1e-5 of the brightest star's height).
        """
        m, k = self.feature_margin, self.kernel
        rows, cols = y.shape[-2:]
        snr = self.local_snr(y)
        cut = (snr.shape[-1] - (cols - 2 * m)) // 2, (snr.shape[-2] - (rows - 2 * m)) // 2
        snr = snr[..., cut[1] : snr.shape[-2] - cut[1], cut[0] : snr.shape[-1] - cut[0]]
        grid = self._log_grid()
        # grid position of channel c at each pixel: log(balance_c) + 2 log(reference / snr)
        shift = 2 * (np.log(self.reference_snr) - torch.log(snr.float()))
        positions = [(np.log(b) + shift - grid[0]) / GRID_STEP for b in self.balances]
        low = int(np.floor(min(float(p.min()) for p in positions)))
        high = int(np.ceil(max(float(p.max()) for p in positions)))
        low = min(max(0, low), len(grid) - 2)
        high = min(len(grid) - 1, max(high, low + 1))
        kernels = self._grid_spectra(rows, cols)[low : high + 1]
        filtered = torch.fft.irfft2(torch.fft.rfft2(y.float()) * kernels, s=(rows, cols))[..., k - 1 :, k - 1 :]
        trim = m - k // 2
        filtered = filtered[..., trim : filtered.shape[-2] - trim, trim : filtered.shape[-1] - trim]
        channels = []
        for position in positions:
            position = (position - low).clamp(0, high - low)
            below = position.floor().clamp(max=high - low - 1)
            frac = position - below
            index = below.long()
            lower = torch.gather(filtered, 1, index.expand(-1, 1, -1, -1))
            upper = torch.gather(filtered, 1, (index + 1).expand(-1, 1, -1, -1))
            channels.append(lower + frac * (upper - lower))
        return torch.cat([*channels, y[:, :, m : rows - m, m : cols - m].float()], dim=1).to(y.dtype)

    def _grid_spectra(self, rows: int, cols: int) -> torch.Tensor:
        """The grid's kernels transformed for ``rows x cols`` inputs (float32), kept for the last size asked."""
        cached = getattr(self, "_spectra", None)
        if cached is None or cached[0] != (rows, cols) or cached[1] is not self.grid_bank:
            flipped = torch.flip(self.grid_bank[:, 0], dims=(-2, -1)).float()
            cached = ((rows, cols), self.grid_bank, torch.fft.rfft2(flipped, s=(rows, cols)))
            self._spectra = cached
        return cached[2]

    def features(self, y: torch.Tensor) -> torch.Tensor:
        """``(B, 1, H, W)`` -> ``(B, C + 1, H - kernel + 1, W - kernel + 1)``.

        The bank is applied by FFT, in float64: the "valid" part of a circular convolution on
        the input's own grid has no wrap-around, so this equals ``conv2d(y, bank)`` (to 1e-6
        of the input's range) at a third of its cost for 49-px kernels.
        """
        k, (rows, cols) = self.kernel, y.shape[-2:]
        if rows < 2 * self.feature_margin + 1 or cols < 2 * self.feature_margin + 1:
            raise InputError(f"restorer input of {rows} x {cols} px is smaller than its {2 * self.feature_margin + 1}-px "
                             "Wiener kernels and signal-to-noise window")
        if self.snr_window is not None:
            return self._local_features(y)
        kernels = torch.fft.rfft2(torch.flip(self.bank[:, 0], dims=(-2, -1)).double(), s=(rows, cols))
        filtered = torch.fft.irfft2(torch.fft.rfft2(y.double()) * kernels, s=(rows, cols))[..., k - 1 :, k - 1 :]
        h = k // 2
        return torch.cat([filtered.to(y.dtype), y[:, :, h : rows - h, h : cols - h]], dim=1)

    def head(self, f: torch.Tensor) -> torch.Tensor:
        """``(B, C + 1, h, w)`` features -> ``(B, 1, h - 2 depth, w - 2 depth)``."""
        d = self.depth
        return self.skip(f[:, :, d : f.shape[2] - d, d : f.shape[3] - d]) + self.body(f)

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        out = self.head(self.features(y))
        return self._keep_flux(y, out) if self.conserve_flux else out

    def _keep_flux(self, y: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``out + G * (y - h * out)``, then no lower than ``-NEGATIVE_LIMIT`` (noise units), all "valid".

        ``h``: the PSF cut to ``kernel`` pixels; ``G``: a unit-sum Gaussian of twice the PSF's
        FWHM (at most a sixth of ``kernel``), on ``kernel`` pixels. What the restoration lost
        or added at scales above ``G``'s, the observation says, is put back smoothly: the
        flux within a few FWHM of every source is the observation's, and the noise this adds
        is the observation's averaged over ``G`` (a few hundredths of it).
        """
        h = self.kernel // 2
        inner = (y.shape[-2] - out.shape[-2]) // 2
        seen = y[..., inner : y.shape[-2] - inner, inner : y.shape[-1] - inner].double()
        blurred = _valid_fft(out.double(), self.flux_kernels[0])
        residual = seen[..., h : seen.shape[-2] - h, h : seen.shape[-1] - h] - blurred
        kept = out[..., 2 * h : out.shape[-2] - 2 * h, 2 * h : out.shape[-1] - 2 * h].double()
        return (kept + _valid_fft(residual, self.flux_kernels[1])).clamp(min=-NEGATIVE_LIMIT).to(out.dtype)

    def extra_repr(self) -> str:
        return (f"kernel={self.kernel}, taper={self.taper}, depth={self.depth}, balances={self.balances}, "
                f"reference_snr={self.reference_snr}, snr_window={self.snr_window}, "
                f"conserve_flux={self.conserve_flux}, margin={self.margin}")


def restorer_config(model: Any) -> dict[str, Any]:
    """Constructor arguments that rebuild ``model`` (without its PSF)."""
    body_convs = [m for m in model.body if isinstance(m, nn.Conv2d)]
    return {"features": body_convs[0].out_channels, "depth": model.depth, "kernel": model.kernel,
            "balances": list(model.balances), "taper": model.taper, "reference_snr": model.reference_snr,
            **({} if model.snr_window is None else {"snr_window": model.snr_window}),
            **({"conserve_flux": True} if model.conserve_flux else {})}


class NoiseUnits(nn.Module):
    """Run a restorer in noise units: ``net((y - background) / sigma) * sigma + background``.

    The affine maps are pixel-wise, so the wrapped network keeps the restorer's ``margin`` and
    tiles exactly as it does: the statistics (:func:`noise_statistics`) come from the whole
    image, or a sample of it for streamed and Dask prediction, never from each tile. ``snr``
    scales the network's bank (:meth:`Restorer.set_snr`) once, here; ``gain`` (electrons per
    image unit) sets its photon noise (:meth:`Restorer.set_photon`).
    """

    def __init__(self, net: Restorer, background: float, sigma: float, snr: float | None = None,
                 gain: float | None = None) -> None:
        super().__init__()
        if not (np.isfinite(sigma) and sigma > 0):
            raise InputError(f"sigma must be a positive number, got {sigma!r}")
        if gain is not None and not (np.isfinite(gain) and gain > 0):
            raise InputError(f"gain must be a positive number (electrons per image unit) or None, got {gain!r}")
        net.set_photon(0.0 if gain is None else 1.0 / (gain * sigma))
        if net.reference_snr is not None and net.snr_window is None:
            if snr is None:
                raise InputError("this restorer scales its bank to the image's signal-to-noise ratio: pass snr "
                                 "(noise_statistics gives it)")
            net.set_snr(snr)
        self.net = net
        self.background = float(background)
        self.sigma = float(sigma)
        self.margin = net.margin

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return self.net((y - self.background) / self.sigma) * self.sigma + self.background
