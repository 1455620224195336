"""How much does each method lose when the PSF it is given is wrong?

The observation is simulated with the protocol's PSF (the truth); each classical method is
then given, in turn, every PSF of the protocol's ``psf_given`` table (e.g. the exact PSF, an
Airy 20 % too narrow or too wide, a Gaussian or Moffat of the same FWHM) and scored against
the clean image. All PSFs should share the truth's pixel grid (odd sides, centred on a
pixel): a PSF centred between pixels, such as ``airy-paper``, would add a half-pixel shift to
every wrong-PSF column. Networks without a PSF input (``cnn1``, ``cnn3``) cannot be given a
PSF and are not part of this report; ``restorer-universal`` takes the PSF (and sigma) as inputs and is.

Rows are tidy: ``image, psf_given, method, selection, params, psnr_db, ssim, time_s``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .folds import held_out_model, observe_case
from .protocols import MismatchProtocol, check_kind
from .results import replace_rows, write_rows_and_table

STEM = "psf_mismatch"
MISMATCH_FIELDS = ("image", "psf_given", "method", "selection", "params", "psnr_db", "ssim", "time_s")
BUILT_IN = "built in"


def run(
    protocol: MismatchProtocol, data_dir: Path, progress: bool = True, methods: list[str] | None = None,
    folds: Path | None = None,
) -> list[dict[str, Any]]:
    """Every image x PSF given x method x selection of a mismatch protocol (and ``none``).

    Pretrained networks that take a PSF (``pretrained``, e.g. ``restorer-universal``) are given each PSF
    and the protocol's sigma; each image is restored by the network's leave-one-out fold
    (``<folds>/<method>-<image>``) when one is trained. ``methods`` keeps only those methods.
    """
    from tqdm.auto import tqdm

    from ..psf import parse_spec
    from .evaluation import run_method

    check_kind(protocol, MismatchProtocol)
    given = {label: parse_spec(spec) for label, spec in protocol.psf_given.items()}
    plan = []
    for k in range(len(protocol.images)):
        plan.append((k, BUILT_IN, "none", "none"))
        plan += [(k, label, method, selection) for label in given
                 for method in protocol.classical for selection in protocol.selections]
        plan += [(k, label, method, "none") for label in given for method in protocol.pretrained]
    plan = [entry for entry in plan if methods is None or entry[2] in methods]
    rows: list[dict[str, Any]] = []
    case = None
    bar = tqdm(plan, desc="psf mismatch", disable=not progress, unit="run")
    for k, label, method, selection in bar:
        if case is None or case.name != protocol.images[k]:
            case = observe_case(protocol, k, data_dir)
        bar.set_postfix_str(f"{case.name} {method} {selection} psf={label}")
        psf = given.get(label, given[next(iter(given))])  # the BUILT_IN rows ("none") ignore it
        params = {**held_out_model(folds, method, case.name), "sigma": protocol.sigma} if method in protocol.pretrained else {}
        row, _ = run_method(case.truth, case.observed, psf, method, selection, params, sigma=protocol.sigma,
                            border=protocol.border)
        rows.append({"image": case.name, "psf_given": label, **row})
    return rows


def merge(previous: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``previous`` with the rows of the same (image, psf_given, method, selection) replaced by ``rows``."""
    return replace_rows(previous, rows, ("image", "psf_given", "method", "selection"))


def summarise(rows: list[dict[str, Any]], labels: list[str]) -> dict[str, dict[str, float]]:
    """Mean PSNR over the images: ``"method (selection)" -> {psf label -> dB}``.

    Rows that take no PSF (``none``, label ``built in``) fill every column. A mean is only given when every
    image has a row.
    """
    images = list(dict.fromkeys(r["image"] for r in rows))
    cells: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        name = row["method"] if row["selection"] in ("-", "none") else f"{row['method']} ({row['selection']})"
        for label in (labels if row["psf_given"] == BUILT_IN else [row["psf_given"]]):
            cells.setdefault(name, {}).setdefault(label, []).append(row["psnr_db"])
    return {name: {label: float(np.mean(v)) for label, v in by.items() if len(v) == len(images)}
            for name, by in cells.items()}


def render_table(rows: list[dict[str, Any]], protocol: MismatchProtocol) -> str:
    """Markdown: methods x PSF given, mean PSNR over the images, and the loss against the exact PSF."""
    labels = list(protocol.psf_given)
    exact = labels[0]
    summary = summarise(rows, labels)
    lines = [f"Mean PSNR (dB) over {len({r['image'] for r in rows})} images; in brackets, the change against "
             f"the {exact!r} PSF. `none` takes no PSF (scored once).", "",
             "| method | " + " | ".join(labels) + " |", "|---|" + "---:|" * len(labels)]
    for name, by in summary.items():
        cells = []
        for label in labels:
            if label not in by:
                cells.append("")
            elif label == exact or exact not in by:
                cells.append(f"{by[label]:.2f}")
            else:
                cells.append(f"{by[label]:.2f} ({by[label] - by[exact]:+.2f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "PSFs given: " + "; ".join(f"{k}: `{v}`" for k, v in protocol.psf_given.items())
              + f". Observations made with `{protocol.psf}`."]
    return "\n".join(lines)


def write_report(rows: list[dict[str, Any]], protocol: MismatchProtocol, out_dir: Path) -> list[Path]:
    """Write ``psf_mismatch.csv``, ``psf_mismatch.md`` and ``psf_mismatch.png`` into ``out_dir``; return the paths."""
    from .plots import mismatch_figure

    written = write_rows_and_table(rows, protocol, render_table(rows, protocol), out_dir, STEM, MISMATCH_FIELDS)
    labels = list(protocol.psf_given)
    return written + [mismatch_figure(summarise(rows, labels), labels, out_dir / f"{STEM}.png")]
