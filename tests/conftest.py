"""Shared fixtures: seeded randomness, small images, and the real sky images when present."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from astrodeconv.data import shared_dir as _shared_dir


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``shared`` folder beside the repository (real sky images, paper weights); skip if absent."""
    path = _shared_dir()
    if path is None:
        pytest.skip("../shared (real sky images) is not present")
    return path


@pytest.fixture(scope="session")
def sky(shared_dir):
    """Return a loader ``sky(name) -> normalised (H, W) float64 image`` for ``../shared/data/sky``."""
    from astrodeconv.data import load_sky

    def load(name: str) -> np.ndarray:
        return load_sky(name, shared_dir / "data" / "sky")

    return load


@pytest.fixture
def small_image(rng) -> np.ndarray:
    """Odd, non-square 37 x 31 image in [0, 1]: smooth background, a blob and three stars."""
    yy, xx = np.mgrid[:37, :31]
    x = 0.1 + 0.3 * np.exp(-((yy - 18) ** 2 + (xx - 14) ** 2) / 40.0)
    for r, c, a in [(5, 6, 1.0), (30, 25, 0.6), (12, 27, 0.8)]:
        x[r, c] += a
    return x / x.max()


os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def halo_psf():
    """A PSF of ``side`` px (default 81), unit sum: a Gaussian core (FWHM 3 px) and a fifth of the light in a Moffat
    halo (beta 1.5), as of a star seen through the air: ``halo_psf(side=81)``."""

    def make(side: int = 81) -> np.ndarray:
        yy, xx = np.indices((side, side)) - side // 2
        r2 = yy**2 + xx**2
        core = np.exp(-r2 / (2 * 1.27**2))
        halo = (1 + r2 / 6.0**2) ** -1.5
        psf = 0.8 * core / core.sum() + 0.2 * halo / halo.sum()
        return psf / psf.sum()

    return make
