"""Score restoration methods on a simulated observation: one tidy row per method."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import numpy as np

from .. import methods, metrics


def run_method(
    truth: np.ndarray,
    observed: np.ndarray,
    psf: np.ndarray,
    method: str,
    selection: str = "auto",
    params: dict[str, Any] | None = None,
    sigma: float | None = None,
    border: int = 32,
    label: str | None = None,
) -> tuple[dict[str, Any], np.ndarray]:
    """Restore ``observed`` with one method and score it against ``truth``.

    Parameters
    ----------
    truth, observed : ndarray, shape (H, W)
        Clean image (max 1) and its simulated observation.
    psf : ndarray
        PSF given to the method.
    method : str
        Registered method name, or ``"none"`` to score the observation itself.
    selection : {"auto", "oracle", "none"}
        How parameters not in ``params`` are chosen (:func:`astrodeconv.selection.select`).
        The search is not timed; ``time_s`` is one restoration with the chosen values.
    params : dict, optional
        Fixed parameters (e.g. ``model`` for a network).
    sigma : float, optional
        Noise level for ``auto`` selection (estimated from the image if None).
    border : int
        Pixels per side excluded from the scores.
    label : str, optional
        Name of the row (default: ``method``).

    Returns
    -------
    row : dict
        ``method, selection, params, psnr_db, ssim, time_s``.
    estimate : ndarray, shape (H, W)
    """
    from ..selection import select

    chosen = dict(params or {})
    if method == "none":
        start = time.perf_counter()
        estimate = observed
    else:
        if selection != "none":
            chosen = {**select(method, observed, psf, selection, truth=truth, sigma=sigma), **chosen}
        start = time.perf_counter()
        estimate = methods.restore(observed, psf, method, **chosen)
    elapsed = time.perf_counter() - start
    tuned = {k: v for k, v in chosen.items() if k not in (params or {})}
    row = {
        "method": label or method,
        "selection": selection if tuned else "-",
        "params": chosen,
        "psnr_db": metrics.psnr(estimate, truth, data_range=1.0, border=border),
        "ssim": metrics.ssim(estimate, truth, data_range=1.0, border=border),
        "time_s": elapsed,
    }
    return row, estimate


def evaluate(
    truth: np.ndarray,
    observed: np.ndarray,
    psf: np.ndarray,
    method_names: Iterable[str],
    selection: str = "auto",
    sigma: float | None = None,
    border: int = 32,
    progress: bool = False,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Run :func:`run_method` for each name; return the rows and the estimates by name."""
    from tqdm.auto import tqdm

    rows: list[dict[str, Any]] = []
    estimates: dict[str, np.ndarray] = {}
    bar = tqdm(list(method_names), desc="methods", disable=not progress, leave=False)
    for name in bar:
        bar.set_postfix_str(name)
        row, estimates[name] = run_method(truth, observed, psf, name, selection, sigma=sigma, border=border)
        rows.append(row)
    return rows, estimates


def format_table(rows: list[dict[str, Any]]) -> str:
    """Render evaluation rows as a Markdown table."""
    lines = ["| method | selection | parameters | PSNR (dB) | SSIM | time (s) |", "|---|---|---|---:|---:|---:|"]
    for row in rows:
        lines.append(
            f"| {row['method']} | {row['selection']} | {format_params(row['params'])} | {row['psnr_db']:.2f} "
            f"| {row['ssim']:.4f} | {row['time_s']:.2f} |"
        )
    return "\n".join(lines)


def format_params(params: dict[str, Any]) -> str:
    """``key=value`` pairs, floats to 3 significant digits, paths by file name."""
    shown = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, float):
            value = f"{value:.3g}"
        elif key == "model":
            value = str(value).rstrip("/").rsplit("/", 1)[-1]
        shown.append(f"{key}={value}")
    return ", ".join(shown) or "-"
