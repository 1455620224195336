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
from .noise import NoiseStatistics, noise_statistics
from .psf import parse_spec
from .registry import register

#: Folder of the shipped model folders (``models/cnn3``, ``models/cnn1``).
MODELS_DIR = Path(__file__).resolve().parent / "models"


def shipped_model_dir(name: str) -> Path:
    """Folder of the model shipped for architecture ``name``."""
    return MODELS_DIR / name


@functools.lru_cache(maxsize=8)
def _load_cached(name: str, source: str, stamp: float, arch: str) -> tuple[Any, str]:
    """Load a network (cached on the resolved path and its modification time)."""
    path = Path(source)
    if path.is_file() and path.suffix.lower() in {".h5", ".hdf5"}:
        if name != "cnn3":
            raise InputError(f"Keras .h5 weights ({path}) are the paper's 3-CNN; use method 'cnn3', not {name!r}")
        from .nn.keras import load_keras_cnn3

        return load_keras_cnn3(path), "airy-paper"
    from .nn.store import load_model

    model, config, _ = load_model(path)
    if config.arch != arch:
        raise InputError(f"model folder {path} holds a {config.arch!r} network; method {name!r} needs a {arch!r} network")
    return model, config.psf


def load_network(name: str, model: str | Path | None = None, arch: str | None = None) -> tuple[Any, str]:
    """Return ``(network, psf_spec)`` for method ``name`` (cached).

    Parameters
    ----------
    name : {"cnn3", "cnn1", "restorer", "restorer-universal"}
    model : str or Path, optional
        Model folder or (``cnn3`` only) Keras ``.h5`` file; ``None`` for the shipped folder.
    arch : str, optional
        Architecture the folder must hold (default: ``name``).
    """
    if model is None:
        path = shipped_model_dir(name)
        if not (path / "weights.pt").is_file():
            raise InputError(
                f"no shipped {name} model in {path}; pass model=<model folder or .h5 file> (--model on the command line)"
            )
    else:
        if not isinstance(model, (str, Path)):
            raise InputError(f"model must be a model folder or .h5 file path, got {type(model).__name__}")
        path = Path(model).expanduser()
        if not path.exists():
            raise InputError(f"model not found: {path} (expected a model folder or a Keras .h5 file)")
    path = path.resolve()
    stamp = max((p.stat().st_mtime for p in ([path] + (list(path.iterdir()) if path.is_dir() else []))), default=0.0)
    return _load_cached(name, str(path), stamp, arch or name)


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
    return NoiseUnits(load_restorer(name, params["model"], psf, stats.snr), *stats)


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
          network=functools.partial(fixed_psf_network, "cnn3"), **_FIXED)
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
          network=functools.partial(fixed_psf_network, "cnn1"), **_FIXED)
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


_RESTORER = {"defaults": {"sigma": None, "model": None, "tile": None, "device": "cpu"}, "takes_sigma": True}


@register("restorer-universal", "Wiener bank from the given PSF + residual CNN, any PSF and noise level (default)",
          network=functools.partial(restorer_network, "restorer-universal"), **_RESTORER)
def restorer_universal(
    observed: np.ndarray,
    psf: np.ndarray,
    sigma: float | None = None,
    model: str | Path | None = None,
    tile: int | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Restore with the shipped universal restorer (:mod:`astrodeconv.nn.restorer`).

    Trained on Airy, Gaussian and Moffat PSFs of FWHM 2.5 to 13 px, Gaussian noise of sigma
    0.002 to 0.07 of the maximum and Poisson-Gaussian noise. The image is put in noise units
    (``(observed - median) / sigma``), restored, and mapped back, so any units and sky level
    work.

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
    tile : int, optional
        Output tile side, pixels (``None``: automatic). Tiled and whole-image outputs agree.
    device : {"cpu", "cuda", "auto"}

    Returns
    -------
    estimate : ndarray, shape (H, W), float64, in the units of ``observed``
    """
    return _predict("restorer-universal", observed, psf, sigma=sigma, model=model, tile=tile, device=device)


@register("restorer", "Wiener bank + residual CNN trained for one PSF and noise level (the paper's by default)",
          network=functools.partial(restorer_network, "restorer"), **_RESTORER)
def restorer(
    observed: np.ndarray,
    psf: np.ndarray,
    sigma: float | None = None,
    model: str | Path | None = None,
    tile: int | None = None,
    device: str = "cpu",
) -> np.ndarray:
    """Restore with a restorer trained for one setting (see :func:`restorer_universal`).

    The shipped model is the paper's setting (``airy-paper``, sigma = 0.01 of the maximum);
    another PSF gives a warning, as for ``cnn3``.
    """
    return _predict("restorer", observed, psf, sigma=sigma, model=model, tile=tile, device=device)
