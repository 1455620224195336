"""The demo: the paper's observation of the embedded Hubble Deep Field, restored by every method.

A centred crop of the Hubble Deep Field (maximum 1) is blurred by the paper's Airy PSF with
Gaussian noise of sigma 0.01; every registered method restores it with parameters chosen
without the truth (``auto``), and the scores and a side-by-side figure are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

__all__ = ["DemoResult", "SIGMA", "centre_crop", "run"]

#: Noise sigma of the demo's observation, in units of the clean image's maximum.
SIGMA = 0.01


@dataclass(frozen=True)
class DemoResult:
    """What :func:`run` wrote: the heading line, the Markdown table, and the two files."""

    heading: str
    table: str
    markdown: Path
    figure: Path


def centre_crop(image: np.ndarray, size: int, min_size: int) -> np.ndarray:
    """The centred ``(size, size)`` window of ``image`` (smaller where the image is).

    Parameters
    ----------
    image : ndarray, shape (H, W)
    size : int
        Side of the window, pixels.
    min_size : int
        Smallest side allowed (the PSF's), pixels.

    Examples
    --------
    >>> centre_crop(np.arange(100.0).reshape(10, 10), 4, 2)[0]
    array([33., 34., 35., 36.])
    """
    if size < min_size:
        raise InputError(f"--size must be at least {min_size} pixels (the PSF's side), got {size}")
    r0 = max((image.shape[0] - size) // 2, 0)
    c0 = max((image.shape[1] - size) // 2, 0)
    return image[r0 : r0 + size, c0 : c0 + size]


def run(output: Path, size: int = 512, seed: int = 0, progress: bool = True) -> DemoResult:
    """Observe a centred ``size`` crop of the Hubble Deep Field and compare every method on it.

    Parameters
    ----------
    output : Path
        Folder (created if missing) for ``demo.md`` (scores) and ``demo.png`` (the truth,
        the observation and each estimate, zoomed to the central 256 pixels).
    size : int
        Side of the crop, pixels (at least the PSF's 64).
    seed : int
        Seed of the noise.
    progress : bool
        Show a progress bar over the methods.
    """
    from .. import data, forward, methods, psf
    from . import plots
    from .evaluation import evaluate, format_table

    output = Path(output)
    if output.exists() and not output.is_dir():
        raise InputError(f"demo output {output} is a file; expected a folder (existing or new) for demo.md and demo.png")
    kernel = psf.airy_paper()
    truth = centre_crop(data.hubble_deep_field(), size, kernel.shape[0])
    observed = forward.observe(truth, kernel, sigma=SIGMA, rng=seed)
    heading = (f"Hubble Deep Field, centred {truth.shape[0]} x {truth.shape[1]} crop; PSF airy-paper "
               f"(FWHM {psf.fwhm(kernel):.2f} px); Gaussian noise sigma {SIGMA}; parameters chosen without the "
               "truth (auto)")
    rows, estimates = evaluate(truth, observed, kernel, ["none"] + methods.available(), selection="auto",
                               sigma=SIGMA, progress=progress)
    table = format_table(rows)
    output.mkdir(parents=True, exist_ok=True)
    markdown = output / "demo.md"
    markdown.write_text(table + "\n")
    panels = {"truth": truth, f"observed {rows[0]['psnr_db']:.2f} dB": observed}
    for row in rows[1:]:
        panels[f"{row['method']} {row['psnr_db']:.2f} dB"] = estimates[row["method"]]
    figure = plots.comparison_figure(panels, output / "demo.png", psf=kernel, zoom=256)
    return DemoResult(heading, table, markdown, figure)
