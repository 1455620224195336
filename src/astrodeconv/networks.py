"""Networks as restoration methods: the paper's ``cnn3`` and ``cnn1``, and the restorers.

Each is registered (:mod:`astrodeconv.registry`) with a ``network`` hook that builds the
module to run, so the same network serves whole-image, streamed and Dask prediction.
``cnn3`` and ``cnn1`` take the parameters

* ``model`` — ``None`` (the model folder shipped in ``astrodeconv/models/<name>/``), the
  path of a model folder written by :func:`astrodeconv.nn.train`, or, for ``cnn3``, one of
  the paper's released Keras ``.h5`` weight files;
* ``tile`` — output tile side in pixels, ``None`` for automatic (see
  :func:`astrodeconv.nn.predict.deconvolve`);
* ``device`` — ``"cpu"``, ``"cuda"`` or ``"auto"``.

A network restores observations made with the PSF and noise it was trained for (the
shipped ones: the paper's ``airy-paper`` PSF and sigma = 0.01 on images normalised to a
maximum of 1); a different PSF gives a warning. torch is imported only when a network is
used, so ``import astrodeconv`` stays light.

``restorer-universal`` (the command line's default) and ``restorer`` take the PSF and the
noise level as inputs (:mod:`astrodeconv.nn.restorer`): they also accept ``sigma`` (the
noise's standard deviation in the image's units; ``None``: estimated from the image) and
work in any units.

Examples
--------
>>> from astrodeconv.methods import METHODS
>>> sorted(METHODS["cnn3"].defaults), METHODS["cnn3"].tileable, METHODS["restorer"].takes_sigma
(['device', 'model', 'tile'], True, True)
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .errors import InputError
from .noise import NoiseStatistics, estimate_sigma, noise_statistics
from .psf import parse_spec
from .registry import register

#: The paper's noise level (units of the image's maximum), that of its released Keras weights.
PAPER_SIGMA = 0.01
#: A network trained for noise ``s`` restores images whose noise lies in ``[s / 3, 3 s]`` (of their maximum).
NOISE_RANGE = (1 / 3, 3.0)
#: Folder of the shipped model folders (``models/cnn3``, ``models/cnn1``).
MODELS_DIR = Path(__file__).resolve().parent / "models"


def shipped_model_dir(name: str) -> Path:
    """Folder of the model shipped for architecture ``name``."""
    return MODELS_DIR / name


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, source: str, stamp: float, arch: str) -> tuple[Any, str, float]:
    """Load a network (cached on the resolved path and its modification time)."""
    path = Path(source)
    if path.is_file() and path.suffix.lower() in {".h5", ".hdf5"}:
        if name != "cnn3":
            raise InputError(f"Keras .h5 weights ({path}) are the paper's 3-CNN; use method 'cnn3', not {name!r}")
        from .nn.keras import load_keras_cnn3

        return load_keras_cnn3(path), "airy-paper", PAPER_SIGMA
    from .nn.store import load_model

    model, config, _ = load_model(path)
    if config.arch != arch:
        raise InputError(f"model folder {path} holds a {config.arch!r} network; method {name!r} needs a {arch!r} network")
    return model, config.psf, config.sigma


def load_network(name: str, model: str | Path | None = None, arch: str | None = None) -> tuple[Any, str]:
    """Return ``(network, psf_spec)`` for method ``name`` (cached); see :func:`trained_sigma` for its noise.

    Parameters
    ----------
    name : {"cnn3", "cnn1", "restorer", "restorer-universal"}
    model : str or Path, optional
        Model folder or (``cnn3`` only) Keras ``.h5`` file; ``None`` for the shipped folder.
    arch : str, optional
        Architecture the folder must hold (default: ``name``).
    """
    return _load_cached(name, *_resolved(_model_path(name, model)), arch or name)[:2]


def _resolved(path: Path) -> tuple[str, float]:
    path = path.resolve()
    stamp = max((p.stat().st_mtime for p in ([path] + (list(path.iterdir()) if path.is_dir() else []))), default=0.0)
    return str(path), stamp


def _model_path(name: str, model: str | Path | None) -> Path:
    """The model folder (or ``.h5`` file) of method ``name``: ``model``, else the shipped one; checked to exist."""
    if model is None:
        path = shipped_model_dir(name)
        if not (path / "weights.pt").is_file():
            raise InputError(
                f"no shipped {name} model in {path}; pass model=<model folder or .h5 file> (--model on the command line)"
            )
        return path
    if not isinstance(model, (str, Path)):
        raise InputError(f"model must be a model folder or .h5 file path, got {type(model).__name__}")
    path = Path(model).expanduser()
    if not path.exists():
        raise InputError(f"model not found: {path} (expected a model folder or a Keras .h5 file)")
    return path


def trained_sigma(name: str, model: str | Path | None = None) -> float:
    """The noise level (units of the image's maximum) the network of ``name`` was trained for."""
    return _load_cached(name, *_resolved(_model_path(name, model)), name)[2]


def admits_noise(name: str, params: dict[str, Any], observed: np.ndarray, sigma: float | None) -> None:
    """``admits`` hook of ``cnn3``/``cnn1``: refuse an image whose noise is not the one the network was trained for.

    The networks learned one noise level relative to the image's maximum (the paper's 0.01);
    a frame in ADU with a bright star, or a much noisier one, lies outside it and would be
    restored into nonsense. ``sigma`` (units of ``observed``) is estimated when None.
    """
    trained = trained_sigma(name, params.get("model"))
    if not trained > 0:
        return
    peak = float(np.max(np.abs(observed)))
    level = (estimate_sigma(observed) if sigma is None else float(sigma)) / peak
    if not NOISE_RANGE[0] * trained <= level <= NOISE_RANGE[1] * trained:
        raise InputError(f"{name} was trained for noise sigma {trained:g} of the image's maximum; this image's noise is "
                         f"{level:.3g} of its maximum, outside [{NOISE_RANGE[0] * trained:.3g}, "
                         f"{NOISE_RANGE[1] * trained:.3g}]: use restorer-universal (it takes the noise level), or train "
                         "a network for this data (astrodeconv train)")


def check_trained_psf(psf: np.ndarray, spec: str, name: str) -> None:
    """Warn when ``psf`` differs from the PSF ``spec`` that network ``name`` was trained for."""
    try:
        expected = parse_spec(spec)
    except InputError:
        return  # e.g. a FITS PSF that is not available here: nothing to compare
    same = expected.shape == psf.shape and np.allclose(expected, psf, rtol=1e-4, atol=1e-8)
    if not same:
        warnings.warn(
            f"{name}: the network was trained for PSF {spec!r} (shape {expected.shape}) but the given PSF differs "
            f"(shape {psf.shape}); the restoration will be poor. Train a model for this PSF (astrodeconv.nn.train).",
            UserWarning,
            stacklevel=3,
        )


def fixed_psf_network(name: str, params: dict[str, Any], psf: np.ndarray, stats: NoiseStatistics | None) -> Any:
    """``network`` hook of ``cnn3`` and ``cnn1``: the trained network (a warning if ``psf`` is not its own)."""
    network, spec = load_network(name, params["model"])
    check_trained_psf(np.asarray(psf, dtype=np.float64), spec, name)
    return network


def restorer_network(name: str, params: dict[str, Any], psf: np.ndarray, stats: NoiseStatistics | None) -> Any:
    """``network`` hook of the restorers: the network with the bank of ``psf``, wrapped in noise units ``stats``."""
    from .nn.restorer import NoiseUnits

    if stats is None:
        raise InputError(f"{name} works in noise units: pass the image's noise statistics (astrodeconv.noise)")
    return NoiseUnits(load_restorer(name, params["model"], psf, stats.snr), *stats, gain=params.get("gain"))


def _predict(name: str, observed: np.ndarray, psf: np.ndarray, **params: Any) -> np.ndarray:
    """Whole-image prediction of method ``name``: its network, then :func:`astrodeconv.nn.predict.deconvolve`."""
    from .nn.predict import deconvolve
    from .registry import get

    method = get(name)
    stats = noise_statistics(observed, params.get("sigma")) if method.takes_sigma else None
    network = method.network(params, psf, stats)
    return deconvolve(observed, network, tile=params["tile"], device=params["device"])


_FIXED = {"defaults": {"model": None, "tile": None, "device": "cpu"}, "reads_psf": False}


@register("cnn3", "paper's 3-layer CNN (Flamary 2017), shipped or given weights",
          network=functools.partial(fixed_psf_network, "cnn3"), admits=functools.partial(admits_noise, "cnn3"), **_FIXED)
def cnn3(
    observed: np.ndarray, psf: np.ndarray, model: str | Path | None = None, tile: int | None = None, device: str = "cpu"
) -> np.ndarray:
    """Restore with the paper's 3-layer CNN.

    Parameters
    ----------
    observed : ndarray, shape (H, W)
        Observation normalised as the training images (maximum about 1).
    psf : ndarray
        The observation's PSF; only compared with the one the network was trained for.
    model : str or Path, optional
        Model folder or Keras ``.h5`` file; ``None`` for the shipped model.
    tile : int, optional
        Output tile side, pixels (``None``: automatic).
    device : {"cpu", "cuda", "auto"}

    Returns
    -------
    estimate : ndarray, shape (H, W), float64
    """
    return _predict("cnn3", observed, psf, model=model, tile=tile, device=device)


@register("cnn1", "one linear 19x19 filter learned from data (paper's 1-CNN)",
          network=functools.partial(fixed_psf_network, "cnn1"), admits=functools.partial(admits_noise, "cnn1"), **_FIXED)
def cnn1(
    observed: np.ndarray, psf: np.ndarray, model: str | Path | None = None, tile: int | None = None, device: str = "cpu"
) -> np.ndarray:
    """Restore with a single learned linear filter (see :func:`cnn3` for the parameters)."""
    return _predict("cnn1", observed, psf, model=model, tile=tile, device=device)


def load_restorer(name: str, model: str | Path | None, psf: np.ndarray, snr: float | None = None) -> Any:
    """A restorer (``restorer`` or ``restorer-universal``, shipped or ``model``) with the Wiener bank of ``psf``
    (scaled to the image's ``snr`` when given, see :meth:`astrodeconv.nn.restorer.Restorer.set_psf`).

    A model trained for one PSF warns when ``psf`` differs from it, as ``cnn3`` does.
    """
    network, spec = load_network(name, model, arch="restorer")
    psf = np.asarray(psf, dtype=np.float64)
    if spec != "any":
        check_trained_psf(psf, spec, name)
    return network.set_psf(psf, snr)


_RESTORER = {"defaults": {"sigma": None, "gain": None, "model": None, "tile": None, "device": "cpu"},
             "takes_sigma": True}


@register("restorer-universal", "Wiener bank from the given PSF + residual CNN, any PSF and noise level (default)",
          network=functools.partial(restorer_network, "restorer-universal"), **_RESTORER)
def restorer_universal(
    observed: np.ndarray,
    psf: np.ndarray,
    sigma: float | None = None,
    model: str | Path | None = None,
    tile: int | None = None,
    device: str = "cpu",
    gain: float | None = None,
) -> np.ndarray:
    """Restore with the shipped universal restorer (:mod:`astrodeconv.nn.restorer`).

    Trained on Airy, Gaussian and Moffat PSFs of FWHM 2.5 to 13 px, Gaussian noise of sigma
    0.002 to 0.07 of the maximum and Poisson-Gaussian noise, and on scenes as instruments see
    the sky (GalSim PSFs, photon noise, PSF estimates). The image is put in noise units
    (``(observed - sky) / sigma``, the sky a sigma-clipped median), restored with a Wiener bank
    whose balances follow the signal-to-noise ratio within 49 px, and mapped back, so any units
    and sky level work.

    Parameters
    ----------
    observed : ndarray, shape (H, W)
        Observation, any units.
    psf : ndarray
        Its PSF; the network's Wiener bank is computed from it.
    sigma : float, optional
        Standard deviation of the noise, in the units of ``observed``; ``None``: estimated
        from the image (:func:`astrodeconv.noise.estimate_sigma`).
    model : str or Path, optional
        Restorer model folder; ``None`` for the shipped one.
    gain : float, optional
        Electrons per unit of ``observed``: the photon noise of the sources, which sets the
        local bank's signal-to-noise ratio around them; ``None``: noise of one level.
    tile : int, optional
        Output tile side, pixels (``None``: automatic). Tiled and whole-image outputs agree.
    device : {"cpu", "cuda", "auto"}

    Returns
    -------
    estimate : ndarray, shape (H, W), float64, in the units of ``observed``
    """
    return _predict("restorer-universal", observed, psf, sigma=sigma, model=model, tile=tile, device=device, gain=gain)


@register("restorer", "Wiener bank + residual CNN trained for one PSF and noise level (the paper's by default)",
          network=functools.partial(restorer_network, "restorer"), **_RESTORER)
def restorer(
    observed: np.ndarray,
    psf: np.ndarray,
    sigma: float | None = None,
    model: str | Path | None = None,
    tile: int | None = None,
    device: str = "cpu",
    gain: float | None = None,
) -> np.ndarray:
    """Restore with a restorer trained for one setting (see :func:`restorer_universal`).

    The shipped model is the paper's setting (``airy-paper``, sigma = 0.01 of the maximum);
    another PSF gives a warning, as for ``cnn3``.
    """
    return _predict("restorer", observed, psf, sigma=sigma, model=model, tile=tile, device=device, gain=gain)
