"""Random simulated observations ("scenes") for training the restorer.

A scene is a square crop of a clean sky image, optionally given another dynamic range
(``x ** gamma``), blurred by a PSF drawn from a family and a width range, and observed
with Gaussian or Poisson-Gaussian noise. Everything is returned in *noise units*
(:func:`astrodeconv.nn.restorer.normalise_noise`): observation and truth minus the
observation's median, divided by the noise level the restorer will be told (the true
sigma, or the estimate from the observation as a user without a sigma would get).

:data:`SETTINGS` holds the training distributions: ``"paper"`` (the paper's Airy PSF,
Gaussian sigma = 0.01 of the maximum, the images as they are) and ``"universal"`` (Airy,
Gaussian and Moffat PSFs of FWHM 2.5 to 13 px, sigma 0.002 to 0.07 of the maximum, both
log-uniform and a little wider than the 3-12 px and 0.003-0.05 the model serves, a third
of the scenes with Poisson noise, dynamic ranges from ``x ** 0.4`` to ``x ** 3``, saturated
cores, and a fifth of the scenes exactly at the paper's setting); ``"realistic"`` draws 30 %
of its scenes as instruments see the sky (:mod:`astrodeconv.nn.instrument_scenes`) and the
others as ``"universal"`` does. In a share of the scenes (``psf_error_fraction``) the network
may be handed a wrong PSF (:func:`wrong_psf`) while the scene is observed with the true one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal


__all__ = ["SETTINGS", "Scene", "SceneSetting", "sample_psf", "simulate_scene", "wrong_psf"]

#: Largest PSF side used to blur training scenes (wider Airy and Moffat wings are cut and
#: the PSF renormalised: the lost flux is under 2 % at FWHM 12).
MAX_PSF_SIDE = 129


@dataclass(frozen=True)
class SceneSetting:
    """Distribution of training scenes.

    Attributes
    ----------
    name : str
    paper_fraction : float
        Probability of a scene exactly at the paper's setting (``airy-paper``, Gaussian
        sigma = 0.01, gamma = 1).
    families : tuple of str
        PSF families drawn otherwise (``airy``, ``gaussian``, ``moffat``).
    fwhm : (float, float)
        Range of the FWHM, pixels (log-uniform, so narrow PSFs, whose restoration is the
        sharpest, are drawn as often per octave as wide ones).
    sigma : (float, float)
        Range of the Gaussian noise sigma relative to the clean maximum (log-uniform).
    poisson_fraction : float
        Probability of adding Poisson noise (peak signal-to-noise 10 to 100).
    gamma : (float, float)
        Range of the exponent applied to the clean image (log-uniform): below 1 brightens faint
        extended emission, above 1 widens the dynamic range.
    saturated_fraction : float
        Probability of multiplying the clean crop by 1 to 3 and clipping it at 1 (saturated
        cores, as on photographic plates).
    estimated_fraction : float
        Probability that a Gaussian scene is normalised by the estimated, not the true, sigma.
    instrument_fraction : float
        Probability of a scene as instruments see the sky instead
        (:func:`astrodeconv.nn.instrument_scenes.simulate_instrument_scene`: GalSim PSFs, photon
        noise on a sky, the PSF given with the errors of an estimate).
    psf_error_fraction : float
        Probability that a (non-paper) scene's network is handed a wrong PSF while the scene
        is observed with the true one (:func:`wrong_psf`: its FWHM 0.8 to 1.25 times the
        truth's, or another family of the same FWHM), as a user's PSF is never exact.
    """

    name: str
    paper_fraction: float = 1.0
    families: tuple[str, ...] = ("airy", "gaussian", "moffat")
    fwhm: tuple[float, float] = (3.0, 12.0)
    sigma: tuple[float, float] = (0.003, 0.05)
    poisson_fraction: float = 0.0
    gamma: tuple[float, float] = (1.0, 1.0)
    saturated_fraction: float = 0.0
    estimated_fraction: float = 0.0
    instrument_fraction: float = 0.0
    psf_error_fraction: float = 0.0


SETTINGS = {
    "paper": SceneSetting("paper"),
    "universal": SceneSetting("universal", paper_fraction=0.2, fwhm=(2.5, 13.0), sigma=(0.002, 0.07),
                              poisson_fraction=0.3, gamma=(0.4, 3.0), saturated_fraction=0.3,
                              estimated_fraction=0.5),
}
SETTINGS["realistic"] = SceneSetting(**{**SETTINGS["universal"].__dict__, "name": "realistic",
                                        "instrument_fraction": 0.3})


@dataclass
class Scene:
    """One simulated observation, in noise units (see the module docstring)."""

    observed: np.ndarray  # (S, S) float32
    truth: np.ndarray  # (S, S) float32
    psf: np.ndarray
    psf_spec: str
    sigma: float  # Gaussian sigma, relative to the clean maximum
    scale: float  # noise level used for normalising, relative to the clean maximum
    photon: float = 0.0  # photon noise in noise units (Restorer.set_photon); 0: not told


def sample_psf(setting: SceneSetting, rng: np.random.Generator) -> tuple[str, np.ndarray]:
    """Draw a PSF (spec string, unit-sum array of side <= MAX_PSF_SIDE) from ``setting``."""
    from ..psf import parse_spec

    family = setting.families[rng.integers(len(setting.families))]
    fwhm = float(np.exp(rng.uniform(*np.log(setting.fwhm))))
    spec = f"{family}:fwhm={fwhm:.3f}"
    if family == "moffat":
        spec += f",beta={rng.uniform(2.5, 4.5):.2f}"
    return spec, central(parse_spec(spec), MAX_PSF_SIDE)


def central(psf: np.ndarray, side: int) -> np.ndarray:
    """The central ``side`` x ``side`` px of a square ``psf`` (the whole of a smaller one), unit sum."""
    cut = max(psf.shape[0] - side, 0) // 2
    psf = psf[cut : psf.shape[0] - cut, cut : psf.shape[1] - cut]
    return psf / psf.sum()


def wrong_psf(psf: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A PSF a user might hand over instead of ``psf``: its FWHM 0.8 to 1.25 times (log-uniform, on
    ``psf``'s own grid), or a Gaussian, Moffat (beta 2.5 to 4.5) or Airy of its FWHM (at most
    ``MAX_PSF_SIDE`` px); unit sum, non-negative."""
    from ..psf import dilate, fwhm, parse_spec

    if rng.random() < 0.5:
        return central(dilate(psf, float(np.exp(rng.uniform(np.log(0.8), np.log(1.25))))), psf.shape[0])
    family = ("gaussian", "moffat", "airy")[int(rng.integers(3))]
    spec = f"{family}:fwhm={fwhm(psf):.3f}" + (f",beta={rng.uniform(2.5, 4.5):.2f}" if family == "moffat" else "")
    return central(parse_spec(spec), MAX_PSF_SIDE)


def simulate_scene(clean: np.ndarray, setting: SceneSetting, rng: np.random.Generator, size: int = 256) -> Scene:
    """Simulate one ``size x size`` scene from a clean image (normalised to max 1).

    The crop is blurred from a larger window ("valid" convolution), so its borders hold
    the true neighbouring sky; images smaller than the window are mirrored at their edges.
    """
    from ..psf import airy_paper
    from ..noise import noise_statistics

    paper = rng.random() < setting.paper_fraction
    if paper:
        spec, psf, sigma, gamma, gain = "airy-paper", airy_paper(), 0.01, 1.0, None
    else:
        spec, psf = sample_psf(setting, rng)
        sigma = float(np.exp(rng.uniform(*np.log(setting.sigma))))
        gamma = float(np.exp(rng.uniform(*np.log(setting.gamma))))
        gain = float(1.0 / np.exp(rng.uniform(np.log(0.01), np.log(0.1))) ** 2) if rng.random() < setting.poisson_fraction else None
    s = psf.shape[0]
    window = size + s - 1
    if min(clean.shape) < window:
        pad = window - min(clean.shape)
        clean = np.pad(clean, pad, mode="symmetric")
    r = int(rng.integers(0, clean.shape[0] - window + 1))
    c = int(rng.integers(0, clean.shape[1] - window + 1))
    x = clean[r : r + window, c : c + window]
    if gamma != 1.0:
        x = np.clip(x, 0.0, None) ** gamma  # clean images are max-1 normalised, so max stays <= 1
    if not paper and rng.random() < setting.saturated_fraction:
        x = np.minimum(x * rng.uniform(1.0, 3.0), 1.0)
    blurred = signal.fftconvolve(x, psf, mode="valid")
    truth = x[s // 2 : s // 2 + size, s // 2 : s // 2 + size]
    observed = blurred.copy()
    if gain is not None:
        observed = rng.poisson(np.clip(blurred, 0.0, None) * gain) / gain
    observed = observed + sigma * rng.standard_normal(observed.shape)
    estimated = gain is not None or rng.random() < setting.estimated_fraction
    background, scale, _ = noise_statistics(observed, None if estimated else sigma)
    if not paper and setting.psf_error_fraction and rng.random() < setting.psf_error_fraction:
        psf, spec = wrong_psf(psf, rng), f"{spec} (handed over wrong)"
    return Scene(((observed - background) / scale).astype(np.float32), ((truth - background) / scale).astype(np.float32),
                 psf, spec, sigma, float(scale))
