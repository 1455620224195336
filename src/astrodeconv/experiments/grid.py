"""Methods over a grid of PSF widths and noise levels (the ``grid`` protocol).

Every image of the protocol is observed with every PSF of ``grid_psfs`` and every noise level
of ``grid_sigmas`` (relative to the clean maximum); each classical method (oracle and auto
parameters) and each pretrained network of ``pretrained`` is given the true PSF. Networks get
two rows: told the true sigma, and with sigma estimated from the observation; each image is
restored by the network's leave-one-out fold (``<folds>/<method>-<image>``) when one is trained.

Rows are tidy: ``image, psf, sigma, method, selection, params, psnr_db, ssim, time_s``.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from .folds import held_out_model, observe_case
from .protocols import GridProtocol, check_kind
from .results import replace_rows, write_rows_and_table

STEM = "grid"
GRID_FIELDS = ("image", "psf", "sigma", "method", "selection", "params", "psnr_db", "ssim", "time_s")
ESTIMATED = "sigma estimated"


def plan(protocol: GridProtocol, methods: list[str] | None = None) -> list[tuple[str, str, dict[str, Any], str]]:
    """``(method, selection, params, label)`` for one cell; ``methods`` keeps only those methods."""
    entries = [("none", "none", {}, "none")]
    entries += [(m, sel, {}, m) for m in protocol.classical for sel in protocol.selections]
    entries += [(m, "none", {"sigma": None}, m) for m in protocol.pretrained]  # sigma filled per cell
    entries += [(m, ESTIMATED, {}, m) for m in protocol.pretrained]
    return [e for e in entries if methods is None or e[0] in methods]


def run(protocol: GridProtocol, data_dir: Path, methods: list[str] | None = None, progress: bool = True,
        folds: Path | None = None) -> list[dict[str, Any]]:
    """Every image x PSF x sigma x method of a grid protocol (networks from ``folds`` where trained)."""
    from tqdm.auto import tqdm

    from ..psf import parse_spec
    from .evaluation import run_method

    check_kind(protocol, GridProtocol)
    entries = plan(protocol, methods)
    cells = [(k, label, sigma) for k in range(len(protocol.images)) for label in protocol.grid_psfs
             for sigma in protocol.grid_sigmas]
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(cells) * len(entries), desc="grid", disable=not progress, unit="run")
    for k, label, sigma in cells:
        spec = protocol.grid_psfs[label]
        case = observe_case(dataclasses.replace(protocol, psf=spec, sigma=float(sigma)), k, data_dir)
        psf = parse_spec(spec)
        for method, selection, params, name in entries:
            bar.set_postfix_str(f"{case.name} {label} sigma={sigma} {name} {selection}")
            if method in protocol.pretrained:
                params = {**params, **held_out_model(folds, method, case.name)}
            if "sigma" in params:
                params = {**params, "sigma": float(sigma)}
            row, _ = run_method(case.truth, case.observed, psf, method, "none" if selection == ESTIMATED else selection,
                                params, sigma=float(sigma), border=protocol.border, label=name)
            if selection == ESTIMATED:
                row["selection"] = ESTIMATED
            rows.append({"image": case.name, "psf": label, "sigma": sigma, **row})
            bar.update()
    bar.close()
    return rows


def merge(previous: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``previous`` with the rows of the same (image, psf, sigma, method, selection) replaced by ``rows``."""
    return replace_rows(previous, rows, ("image", "psf", "sigma", "method", "selection"))


def cell_means(rows: list[dict[str, Any]]) -> dict[tuple[str, float], dict[str, float]]:
    """Mean PSNR over the images per (psf, sigma) cell: ``{(psf, sigma): {"method (selection)": dB}}``."""
    acc: dict[tuple[str, float], dict[str, list[float]]] = {}
    for r in rows:
        name = r["method"] if r["selection"] in ("-", "none") else f"{r['method']} ({r['selection']})"
        acc.setdefault((r["psf"], float(r["sigma"])), {}).setdefault(name, []).append(float(r["psnr_db"]))
    return {cell: {name: float(np.mean(v)) for name, v in by.items()} for cell, by in acc.items()}


def wins(rows: list[dict[str, Any]], method: str, against: str) -> tuple[int, int, float]:
    """How many (image, psf, sigma) cases ``method`` beats ``against`` (e.g. ``"wiener (oracle)"``), of how
    many, and the smallest margin (dB)."""
    by_case: dict[tuple, dict[str, float]] = {}
    for r in rows:
        name = r["method"] if r["selection"] in ("-", "none") else f"{r['method']} ({r['selection']})"
        by_case.setdefault((r["image"], r["psf"], float(r["sigma"])), {})[name] = float(r["psnr_db"])
    margins = [v[method] - v[against] for v in by_case.values() if method in v and against in v]
    return sum(m > 0 for m in margins), len(margins), (min(margins) if margins else float("nan"))


def render_table(rows: list[dict[str, Any]], protocol: GridProtocol) -> str:
    """Markdown: one line per (psf, sigma) cell, mean PSNR over the images per method."""
    means = cell_means(rows)
    names = list(dict.fromkeys(n for by in means.values() for n in by))
    lines = [f"Mean PSNR (dB) over {len({r['image'] for r in rows})} images per cell; best in bold.", "",
             "| PSF | sigma | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
    for (label, sigma), by in means.items():
        best = max(by.values())
        cells = [("**{:.2f}**" if by[n] == best else "{:.2f}").format(by[n]) if n in by else "" for n in names]
        lines.append(f"| {label} | {sigma:g} | " + " | ".join(cells) + " |")
    for method in protocol.pretrained:
        for against in ("wiener (oracle)", "rl (oracle)", "tv (oracle)"):
            n_win, n, smallest = wins(rows, method, against)
            if n:
                lines.append(f"\n`{method}` beats `{against}` in {n_win} of {n} (image, PSF, sigma) cases; "
                             f"smallest margin {smallest:+.2f} dB.")
    return "\n".join(lines)


def write_report(rows: list[dict[str, Any]], protocol: GridProtocol, out_dir: Path) -> list[Path]:
    """Write ``grid.csv``, ``grid.md`` and ``grid.png`` into ``out_dir``; return the paths."""
    from .plots import grid_figure

    written = write_rows_and_table(rows, protocol, render_table(rows, protocol), out_dir, STEM, GRID_FIELDS)
    return written + [grid_figure(cell_means(rows), out_dir / f"{STEM}.png")]
