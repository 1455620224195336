"""The registry of restoration methods: a leaf that every method module imports.

A method is a plain function ``func(observed, psf, **params) -> estimate`` on ``(H, W)``
float64 arrays, registered with a :class:`Method` record that carries what callers need to
know about it: its parameters and defaults, the parameter that selection tunes and the grid
it searches, whether it reads the PSF and the noise level, whether it runs by tiles (a
network, built by its ``network`` hook, with its own ``margin``) and its selection hooks.
No module decides behaviour from a method's name or from its parameter names.

Method modules (:mod:`astrodeconv.classical`, :mod:`astrodeconv.networks`) import this one
and call :func:`register`; :mod:`astrodeconv.methods` imports them all, so the registry is
at the bottom of the package and the collector at the top (as timm's ``_registry``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .errors import InputError

__all__ = ["METHODS", "Method", "available", "check_params", "get", "register"]

RestoreFunc = Callable[..., np.ndarray]
#: What a method may take the scene to be beyond the image's edges (:attr:`Method.boundary`).
BOUNDARIES = ("mirror", "zero", "periodic")
#: ``oracle(observed, psf, score) -> (params, best_score)``: ``score(estimate) -> float`` is maximised.
OracleHook = Callable[[np.ndarray, np.ndarray, Callable[[np.ndarray], float]], tuple[dict[str, Any], float]]
#: ``auto(observed, psf, sigma) -> params``, without ground truth; ``sigma`` in image units.
AutoHook = Callable[[np.ndarray, np.ndarray, float], dict[str, Any]]
#: ``network(params, psf, stats) -> torch module`` with an integer ``margin``; ``stats`` is a
#: :class:`astrodeconv.noise.NoiseStatistics` for methods that take the noise level, else None.
NetworkHook = Callable[[dict[str, Any], np.ndarray, Any], Any]


@dataclass(frozen=True)
class Method:
    """A registered restoration method and what it can do.

    Attributes
    ----------
    name, func, defaults, description
        The method, every parameter it accepts with its default, one line for listings.
    tuned : str or None
        The parameter that :mod:`astrodeconv.selection` chooses (``None``: nothing to select).
    grid : tuple of float
        The values the oracle searches for ``tuned`` (for reports; empty when not a grid).
    reads_psf : bool
        The PSF is an input of the restoration. False for a network trained for one PSF,
        which only compares the given PSF with its own.
    takes_sigma : bool
        The noise level is a parameter (``sigma``, image units; ``None``: estimated).
    network : callable or None
        Builds the method's network; set exactly for methods that run by tiles (locally, with
        the network's ``margin``), in memory, streamed from disk or on Dask.
    oracle, auto : callable or None
        Selection hooks (see ``OracleHook`` and ``AutoHook``).
    admits : callable or None
        ``admits(params, observed, sigma)`` raises an :class:`InputError` for an image the
        method was not made for (a network trained for one noise level); ``None``: any image.
    boundary : {"mirror", "zero", "periodic"}
        What the restoration takes the scene to be beyond the image's edges: mirrored (the
        networks pad so), dark, or the image repeated.
    """

    name: str
    func: RestoreFunc
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    tuned: str | None = None
    grid: tuple[float, ...] = ()
    reads_psf: bool = True
    takes_sigma: bool = False
    network: NetworkHook | None = None
    oracle: OracleHook | None = None
    auto: AutoHook | None = None
    admits: Callable[[dict[str, Any], np.ndarray, float | None], None] | None = None
    boundary: str = "mirror"

    def __post_init__(self) -> None:
        if self.boundary not in BOUNDARIES:
            raise ValueError(f"method {self.name!r}: boundary must be one of {BOUNDARIES}, got {self.boundary!r}")

    @property
    def tileable(self) -> bool:
        """Whether the method runs tile by tile (it is a network with a finite margin)."""
        return self.network is not None


METHODS: dict[str, Method] = {}


def register(name: str, description: str = "", **options: Any) -> Callable[[RestoreFunc], RestoreFunc]:
    """Decorator registering ``func(observed, psf, **params)`` under ``name``.

    ``options`` holds the :class:`Method` fields (``defaults``, ``tuned``, ``grid``, ...).
    """

    def decorator(func: RestoreFunc) -> RestoreFunc:
        if name in METHODS:
            raise ValueError(f"method {name!r} is already registered")
        summary = description or (func.__doc__ or "").strip().split("\n")[0]
        METHODS[name] = Method(name, func, description=summary, **options)
        return func

    return decorator


def get(name: str) -> Method:
    """The registered method ``name`` (an :class:`InputError` lists the choices)."""
    try:
        return METHODS[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown method {name!r}; available: {', '.join(available())}") from None


def available() -> list[str]:
    """Names of the registered methods: the global ones first, then those with a network; each in registration order."""
    return sorted(METHODS, key=lambda name: METHODS[name].tileable)


def check_params(method: Method, params: dict[str, Any]) -> dict[str, Any]:
    """Merge ``params`` into the method's defaults; unknown keys are an :class:`InputError`."""
    unknown = set(params) - set(method.defaults)
    if unknown:
        allowed = ", ".join(method.defaults) or "none"
        raise InputError(f"method {method.name!r} has no parameter(s) {sorted(unknown)}; it takes: {allowed}")
    return {**method.defaults, **params}
