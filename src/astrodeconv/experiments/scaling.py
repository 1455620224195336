"""Prediction time against image size: is each method linear in the number of pixels?

Every method restores square observations of side 256 ... 4096 (the embedded Hubble Deep
Field mirrored to size, the paper's PSF and noise) in one process; the slope of
``log(time)`` against ``log(pixels)`` is fitted per method (1.0 = linear). Wiener and
Richardson-Lucy run a fixed amount of work per pixel up to the FFT's ``log n``; TV is run
to a fixed tolerance (``tol``) rather than a fixed number of iterations, which is how an
optimisation method is used when accuracy matters. The measured times are in
``docs/results/scaling.md`` (``astrodeconv scaling``).
"""

from __future__ import annotations

import csv
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

#: method -> parameters for the scaling run (TV to a relative-change tolerance).
SCALING_METHODS: dict[str, dict[str, Any]] = {
    "wiener": {"balance": 0.01},
    "rl": {"num_iter": 30},
    "tv": {"mu": 0.004, "num_iter": 5000, "tol": 1e-4},
    "cnn1": {},
    "cnn3": {},
    "restorer": {"sigma": 0.01},
    "restorer-universal": {"sigma": 0.01},
}
SIZES = (256, 512, 1024, 2048, 4096)


def scaling_image(size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Clean and observed ``(size, size)`` images: the Hubble Deep Field mirrored to size.

    The clean image has a maximum of 1; the observation is blurred by the paper's PSF with
    Gaussian noise of sigma 0.01 drawn from ``seed``.
    """
    from ..data import hubble_deep_field
    from ..forward import observe
    from ..psf import airy_paper

    base = hubble_deep_field()
    reps = (int(np.ceil(size / base.shape[0])), int(np.ceil(size / base.shape[1])))
    tiled = np.block([[base[:: (-1) ** i, :: (-1) ** j] for j in range(reps[1])] for i in range(reps[0])])
    clean = tiled[:size, :size]
    return clean, observe(clean, airy_paper(), sigma=0.01, rng=seed)


def measure(
    methods: dict[str, dict[str, Any]] | None = None,
    sizes: tuple[int, ...] = SIZES,
    max_seconds: float = 120.0,
    progress: bool = True,
    clock: Callable[[], float] = time.perf_counter,
) -> list[dict[str, Any]]:
    """Time each method at each size (best of 2 runs below 1 s, else one run).

    Parameters
    ----------
    methods : dict, optional
        Method name -> its parameters (default :data:`SCALING_METHODS`).
    sizes : tuple of int
        Sides of the square observations, pixels (at least the PSF's 64).
    max_seconds : float
        A method stops growing once one run takes longer (the next size would take at
        least 4 times longer).
    progress : bool
        Show a progress bar.
    clock : callable
        Returns the time in seconds; one restoration is timed as the difference of two calls.

    Returns
    -------
    list of dict
        Tidy rows ``method, size, pixels, seconds, threads``, in the order of ``sizes``
        then ``methods``; ``threads`` is torch's number of threads.
    """
    from tqdm.auto import tqdm

    from .. import methods as registry
    from ..psf import airy_paper

    methods = methods or SCALING_METHODS
    psf = airy_paper()
    threads = _threads()
    rows: list[dict[str, Any]] = []
    stopped: set[str] = set()
    bar = tqdm([(n, m) for n in sizes for m in methods], desc="scaling", disable=not progress)
    for size, name in bar:
        if name in stopped:
            continue
        bar.set_postfix_str(f"{name} {size}^2")
        _, observed = scaling_image(size)
        registry.restore(observed[:128, :128], psf, name, **methods[name])  # warm-up (model load, caches)
        best = np.inf
        for _ in range(2):
            start = clock()
            registry.restore(observed, psf, name, **methods[name])
            best = min(best, clock() - start)
            if best > 1.0:
                break
        rows.append({"method": name, "size": size, "pixels": size * size, "seconds": best, "threads": threads})
        if best > max_seconds:
            stopped.add(name)
    return rows


def fit_slopes(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Least-squares slope of log(seconds) on log(pixels) per method (sizes >= 512 when available)."""
    slopes = {}
    for name in dict.fromkeys(r["method"] for r in rows):
        points = [(r["pixels"], r["seconds"]) for r in rows if r["method"] == name]
        large = [p for p in points if p[0] >= 512 * 512]
        points = large if len(large) >= 2 else points
        if len(points) >= 2:
            x, y = np.log([p[0] for p in points]), np.log([p[1] for p in points])
            slopes[name] = float(np.polyfit(x, y, 1)[0])
    return slopes


def write_report(rows: list[dict[str, Any]], out_dir: Path, methods: dict[str, dict[str, Any]] | None = None
                 ) -> list[Path]:
    """Write ``scaling.csv``, ``scaling.md`` (times and slopes) and ``scaling.png`` into ``out_dir``; return the paths.

    Parameters
    ----------
    rows : list of dict
        As returned by :func:`measure`.
    out_dir : Path
        Folder of the report (created if missing).
    methods : dict, optional
        The parameters the rows were measured with, listed under the table (default
        :data:`SCALING_METHODS`); only those of the methods in ``rows`` are listed.
    """
    from .plots import scaling_figure

    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "scaling.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["method", "size", "pixels", "seconds", "threads"])
        writer.writeheader()
        writer.writerows({**r, "seconds": f"{r['seconds']:.4f}"} for r in rows)
    slopes = fit_slopes(rows)
    sizes = sorted({r["size"] for r in rows})
    lines = ["| method | " + " | ".join(f"{n}^2 (s)" for n in sizes) + " | log-log slope |",
             "|---|" + "---:|" * (len(sizes) + 1)]
    for name, slope in slopes.items():
        times = {r["size"]: r["seconds"] for r in rows if r["method"] == name}
        lines.append(f"| {name} | " + " | ".join(f"{times[n]:.3g}" if n in times else "-" for n in sizes)
                     + f" | {slope:.2f} |")
    timed = {r["method"] for r in rows}
    params = ", ".join(f"{k}: {v}" for k, v in (methods or SCALING_METHODS).items() if v and k in timed)
    lines.append(f"\nThreads: {rows[0]['threads']}. Parameters: {params}.")
    (out_dir / "scaling.md").write_text("\n".join(lines) + "\n")
    points = {name: [(r["size"], r["seconds"]) for r in rows if r["method"] == name] for name in slopes}
    png = scaling_figure(points, slopes, out_dir / "scaling.png")
    return [out_dir / "scaling.csv", out_dir / "scaling.md", png]


def _threads() -> int:
    try:
        import torch

        return torch.get_num_threads()
    except ImportError:  # pragma: no cover
        return os.cpu_count() or 1
