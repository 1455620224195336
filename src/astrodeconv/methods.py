"""One interface for every restoration method: ``restore(observed, psf, method, **params)``.

A method is a plain function ``func(observed, psf, **params) -> estimate`` on ``(H, W)``
float64 arrays, registered under a name with its default parameters. Unknown names and
parameters are errors that list what is allowed, so the benchmark and the CLI are loops
over this registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import InputError
from .psf import validate as validate_psf

RestoreFunc = Callable[..., np.ndarray]


@dataclass(frozen=True)
class Method:
    """A registered restoration method.

    ``defaults`` lists every parameter the method accepts with its default value.
    """

    name: str
    func: RestoreFunc
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""


METHODS: dict[str, Method] = {}


def register(name: str, description: str = "", **defaults: Any) -> Callable[[RestoreFunc], RestoreFunc]:
    """Decorator registering ``func(observed, psf, **params)`` under ``name``."""

    def decorator(func: RestoreFunc) -> RestoreFunc:
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered")
        METHODS[name] = Method(name, func, dict(defaults), description or (func.__doc__ or "").strip().split("\n")[0])
        return func

    return decorator


def get(name: str) -> Method:
    """Return the registered method ``name`` (an :class:`InputError` lists the choices)."""
    _load_builtin_methods()
    try:
        return METHODS[name]
    except KeyError:
        raise InputError(f"unknown method {name!r}; available: {', '.join(available())}") from None


def available() -> list[str]:
    """Names of all registered methods."""
    _load_builtin_methods()
    return list(METHODS)


def check_params(method: Method, params: dict[str, Any]) -> dict[str, Any]:
    """Merge ``params`` into the method's defaults; unknown keys are an :class:`InputError`."""
    unknown = set(params) - set(method.defaults)
    if unknown:
        allowed = ", ".join(method.defaults) or "none"
        raise InputError(f"method {method.name!r} has no parameter(s) {sorted(unknown)}; it takes: {allowed}")
    return {**method.defaults, **params}


def check_image(observed: np.ndarray, psf: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate an observation and its PSF for restoration.

    Returns the image as float64 and the PSF normalised to sum 1. The image must be 2-D,
    hold at least one finite pixel, not be constant, and be at least as large as the PSF.
    """
    observed = np.asarray(observed, dtype=np.float64)
    if observed.ndim != 2:
        raise InputError(f"image must be 2-D, got shape {observed.shape}")
    psf = validate_psf(psf)
    finite = np.isfinite(observed)
    if not finite.any():
        raise InputError("image has no finite pixel (all NaN or infinite)")
    values = observed[finite]
    if values.min() == values.max():
        raise InputError(f"image is constant (every finite pixel equals {values.min():g}); nothing to restore")
    if psf.shape[0] > observed.shape[0] or psf.shape[1] > observed.shape[1]:
        raise InputError(
            f"PSF of shape {psf.shape} is larger than the image {observed.shape}; crop the PSF or use a larger image"
        )
    return observed, psf


def restore(observed: np.ndarray, psf: np.ndarray, method: str = "wiener", **params: Any) -> np.ndarray:
    """Restore ``observed`` blurred by ``psf`` with a registered method.

    Non-finite pixels (NaN, inf) are masked: they are filled with the median of the
    finite pixels for the computation and set to NaN in the result.

    Parameters
    ----------
    observed : ndarray, shape (H, W)
        Observation, usually normalised to a maximum of 1.
    psf : ndarray, shape (h, w)
        PSF with ``h <= H`` and ``w <= W``; normalised to sum 1 here.
    method : str
        A name from :func:`available`.
    **params
        The method's parameters (see ``get(method).defaults``).

    Returns
    -------
    estimate : ndarray, shape (H, W), float64

    Examples
    --------
    >>> from astrodeconv.psf import gaussian
    >>> from astrodeconv.forward import observe
    >>> x = np.zeros((33, 31)); x[16, 15] = 1
    >>> y = observe(x, gaussian(2.0), sigma=0.0)
    >>> restore(y, gaussian(2.0), "wiener", balance=1e-3).shape
    (33, 31)
    """
    found = get(method)
    kwargs = check_params(found, params)
    observed, psf = check_image(observed, psf)
    bad = ~np.isfinite(observed)
    if bad.any():
        observed = np.where(bad, np.median(observed[~bad]), observed)
    estimate = np.asarray(found.func(observed, psf, **kwargs), dtype=np.float64)
    if bad.any():
        estimate[bad] = np.nan
    return estimate


def _load_builtin_methods() -> None:
    """Import the modules that register the built-in methods (once)."""
    from . import classical, networks  # noqa: F401  (torch is imported only when a network runs)
