"""Every restoration method, one interface: ``restore(observed, psf, method, **params)``.

The collector at the top of the method layer: it imports the modules that register the
built-in methods (:mod:`astrodeconv.classical`, :mod:`astrodeconv.networks`; torch is
imported only when a network runs) and re-exports the registry (:mod:`astrodeconv.registry`),
so ``methods.get``, ``methods.available`` and ``methods.METHODS`` see them all. Unknown names
and parameters are errors that list what is allowed, so the benchmark and the command line
are loops over this registry.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import classical, networks  # noqa: F401  (they register the built-in methods)
from .masks import check_result, fill_locally, restore_bad
from .psf import check_image
from .registry import METHODS, Method, available, check_params, get, register

__all__ = ["METHODS", "Method", "available", "check_image", "check_params", "get", "register", "restore"]


def restore(observed: np.ndarray, psf: np.ndarray, method: str = "wiener", **params: Any) -> np.ndarray:
    """Restore ``observed`` blurred by ``psf`` with a registered method.

    Non-finite pixels (NaN, inf) are masked (:mod:`astrodeconv.masks`): they are filled
    from the finite pixels near them for the computation (:func:`~astrodeconv.masks.fill_locally`)
    and set to NaN in the result.
    A result that is not a restoration (non-finite pixels, or values far beyond the input's:
    :func:`astrodeconv.masks.check_result`) is an :class:`~astrodeconv.errors.InputError`.

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
    filled, bad = fill_locally(observed)
    estimate = np.asarray(found.func(filled, psf, **kwargs), dtype=np.float64)
    check_result(estimate, bad, float(np.max(np.abs(filled))))
    return restore_bad(estimate, bad)
