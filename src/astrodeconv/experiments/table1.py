"""Reproduce the paper's comparison (Table I) from a ``table1`` protocol.

The protocol (:class:`~astrodeconv.experiments.protocols.Table1Protocol`) names the images,
the observation model, the crop, the methods and the leave-one-out training settings.
:func:`run` computes tidy rows (one per image x method x selection mode); :func:`write_report`
renders the CSV, the Markdown table beside the paper's published values, and the figures
from them.

Leave-one-out: for test image k, the networks are trained on the other images of the
protocol (full images) and stored in ``<folds>/<arch>-<image>/``; a fold already trained
is reused, and one interrupted mid-way is resumed from its last epoch.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from .folds import Case, fold_dir, fold_is_trained, held_out_model, observe_case
from .protocols import Table1Protocol, record
from .results import replace_rows, write_results

PAPER_MODEL_FILE = "32x32_10x10-64_6x6-16_5x5-1_PSF64_sigma0.010_{}.h5"
#: Names of the paper's Table I columns in ``paper_table1.csv``, by our row label.
PAPER_METHODS = {"none": "none", "wiener": "wiener", "rl": "rl", "tv": "vc_tv", "cnn1": "cnn0", "cnn3": "cnn"}


def train_folds(
    protocol: Table1Protocol,
    data_dir: Path,
    folds: Path,
    archs: list[str] | None = None,
    images: list[str] | None = None,
    retrain: bool = False,
    progress: bool = True,
) -> list[Path]:
    """Train the leave-one-out networks that are missing (all of them with ``retrain``).

    A fold interrupted mid-way is resumed from its last checkpoint. Returns the folders
    trained in this call.
    """
    import shutil

    from ..nn.training import train

    trained = []
    for arch in archs or protocol.networks:
        for k, image in enumerate(protocol.images):
            if images and image not in images:
                continue
            folder = fold_dir(folds, arch, image)
            if fold_is_trained(folder) and not retrain:
                continue
            if retrain and folder.exists():
                shutil.rmtree(folder)
            others = [data_dir / f"{name}.fits.gz" for i, name in enumerate(protocol.images) if i != k]
            meta = {"protocol": protocol.name, "held_out": image}
            if _takes_sigma(arch):
                from ..networks import shipped_model_dir
                from ..nn.restorer_training import train_restorer

                settings = protocol.training_settings(arch)
                init = settings.pop("init", None)
                if init and "/" not in init:  # a shipped model's name, else a model folder
                    init = shipped_model_dir(init)
                others += [data_dir / f"{name}.fits.gz" for name in settings.pop("extra_images", [])]
                train_restorer(others, folder, init=init, progress=progress, extra_meta=meta, **settings)
            else:
                train(others, folder, arch=arch, psf_spec=protocol.psf, sigma=protocol.sigma, resume=True,
                      progress=progress, extra_meta=meta, **dict(protocol.training))
            trained.append(folder)
    return trained


def _takes_sigma(method: str) -> bool:
    """Whether the registered ``method`` takes the noise level (the restorers)."""
    from ..methods import get

    return get(method).takes_sigma


def method_plan(protocol: Table1Protocol, image: str, folds: Path, paper_dir: Path | None) -> list[dict[str, Any]]:
    """The rows to compute for one image: label, method, selection and fixed parameters."""
    plan: list[dict[str, Any]] = [{"label": "none", "method": "none", "selection": "none", "params": {}}]
    for method in protocol.classical:
        for selection in protocol.selections:
            plan.append({"label": method, "method": method, "selection": selection, "params": {}})
    for arch in protocol.networks:
        folder = fold_dir(folds, arch, image)
        if fold_is_trained(folder):
            params: dict[str, Any] = {"model": str(folder)}
            if _takes_sigma(arch):  # told the noise level, as the PSF
                params["sigma"] = protocol.sigma
            plan.append({"label": arch, "method": arch, "selection": "none", "params": params})
    for method in protocol.pretrained:
        plan.append({"label": method, "method": method, "selection": "none",
                     "params": {**held_out_model(folds, method, image), "sigma": protocol.sigma}})
    if paper_dir is not None:
        released = protocol.paper_weights.get(image, protocol.paper_weights.get("default"))
        path = paper_dir / "paper_models" / PAPER_MODEL_FILE.format(released)
        if released and path.is_file():
            plan.append({"label": "cnn3-paper-weights", "method": "cnn3", "selection": "none",
                         "params": {"model": str(path)}})
    return plan


def run(
    protocol: Table1Protocol,
    data_dir: Path,
    folds: Path,
    paper_dir: Path | None = None,
    progress: bool = True,
    keep: str | None = None,
    images: list[str] | None = None,
    methods: list[str] | None = None,
) -> tuple[list[dict[str, Any]], dict[str, np.ndarray]]:
    """Compute every row of the protocol (only those of ``images`` and row labels ``methods`` when given).

    Returns the tidy rows, and for image ``keep`` (default: the protocol's first image) its
    truth, observation and the estimates by row label (for the visual-comparison figure).
    """
    from tqdm.auto import tqdm

    from ..psf import parse_spec
    from .evaluation import run_method

    psf = parse_spec(protocol.psf)
    keep = keep or protocol.images[0]
    rows: list[dict[str, Any]] = []
    kept: dict[str, np.ndarray] = {}
    protocol.check_images(images)
    plans = [(k, entry) for k, image in enumerate(protocol.images) if not images or image in images
             for entry in method_plan(protocol, image, folds, paper_dir)
             if not methods or entry["label"] in methods]
    bar = tqdm(plans, desc="benchmark", disable=not progress, unit="run")
    case = None
    for k, entry in bar:
        if case is None or case.name != protocol.images[k]:
            case = observe_case(protocol, k, data_dir)
            if case.name == keep:
                kept.update(truth=case.truth, observed=case.observed)
        bar.set_postfix_str(f"{case.name} {entry['label']} {entry['selection']}")
        row, estimate = run_method(case.truth, case.observed, psf, entry["method"], entry["selection"],
                                   entry["params"], sigma=protocol.sigma, border=protocol.border, label=entry["label"])
        rows.append({"image": case.name, **row})
        if case.name == keep and entry["selection"] in ("oracle", "none"):
            kept[entry["label"]] = estimate
    return rows, kept


def merge_results(
    previous: list[dict[str, Any]], rows: list[dict[str, Any]], protocol: Table1Protocol, by_method: bool = False
) -> list[dict[str, Any]]:
    """``previous`` rows with those of the images in ``rows`` replaced, in protocol order.

    With ``by_method`` only the (image, method, selection) rows present in ``rows`` are replaced.
    """
    if by_method:
        merged = replace_rows(previous, rows, ("image", "method", "selection"))
    else:
        fresh = {row["image"] for row in rows}
        merged = [row for row in previous if row["image"] not in fresh] + rows
    order = {name: k for k, name in enumerate(protocol.images)}
    return sorted(merged, key=lambda row: order.get(row["image"], len(order)))  # stable: row order kept


def write_feature_correlations(scores: list[list[dict[str, float]]], path: Path) -> Path:
    """CSV of every map's correlation with point sources and extended emission, per layer (1, 2, ...)."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["layer", "map", "variance", "point", "extended"])
        writer.writeheader()
        for layer, rows in enumerate(scores, 1):
            for row in rows:
                writer.writerow({"layer": layer, "map": row["map"], "variance": f"{row['variance']:.3e}",
                                 "point": f"{row['point']:.3f}", "extended": f"{row['extended']:.3f}"})
    return path


def read_paper_table(path: Path) -> dict[tuple[str, str], float]:
    """The paper's published PSNR: ``(paper image, our method label) -> dB``."""
    ours = {v: k for k, v in PAPER_METHODS.items()}
    with open(path, newline="") as handle:
        return {(r["image"], ours[r["method"]]): float(r["psnr_db"]) for r in csv.DictReader(handle)
                if r["method"] in ours}


def render_table(rows: list[dict[str, Any]], protocol: Table1Protocol, paper: dict[tuple[str, str], float] | None) -> str:
    """Markdown in the paper's layout: images x methods (PSNR, dB), then the averages.

    Classical methods appear twice: ``oracle`` (parameters maximising PSNR, as the paper)
    and ``auto`` (no ground truth). Where the paper has a row for the same object, its
    published value follows ours in brackets.
    """
    columns: list[tuple[str, str]] = []
    for row in rows:
        key = (row["method"], row["selection"] if row["method"] in protocol.classical else "-")
        if key not in columns:
            columns.append(key)
    table: dict[tuple[str, tuple[str, str]], dict[str, Any]] = {}
    for row in rows:
        key = (row["method"], row["selection"] if row["method"] in protocol.classical else "-")
        table[(row["image"], key)] = row
    titles = [m if s == "-" else f"{m} ({s})" for m, s in columns]
    lines = ["| image | " + " | ".join(titles) + " |", "|---|" + "---:|" * len(columns)]
    images = [im for im in protocol.images if any((im, c) in table for c in columns)]
    for image in images:
        cells = []
        for column in columns:
            row = table.get((image, column))
            cell = "" if row is None else f"{row['psnr_db']:.2f}"
            published = (paper or {}).get((protocol.paper_rows.get(image, ""), column[0]))
            if published is not None and column[1] in ("-", "oracle"):
                cell += f" [{published:.2f}]"
            cells.append(cell)
        lines.append(f"| {image} | " + " | ".join(cells) + " |")
    for title, key in (("avg PSNR (dB)", "psnr_db"), ("avg SSIM", "ssim"), ("avg time (s)", "time_s")):
        cells = []
        for column in columns:
            values = [table[(im, column)][key] for im in images if (im, column) in table]
            cells.append(f"{np.mean(values):.{4 if key == 'ssim' else 2}f}" if len(values) == len(images) else "")
        lines.append(f"| **{title}** | " + " | ".join(cells) + " |")
    if paper:
        lines.append("")
        lines.append("In brackets: the paper's Table I for the same object (its own 3500 x 3500 scans at about "
                     "1\"/px, so absolute values differ; compare methods within a row).")
    return "\n".join(lines)


def margins(
    rows: list[dict[str, Any]], method: str = "cnn3", against: tuple[tuple[str, str], ...] = (("wiener", "oracle"),)
) -> dict[str, float]:
    """PSNR of ``method`` minus the best of the ``(method, selection)`` rows ``against``, per image (dB).

    Images lacking ``method`` or any of ``against`` are left out.
    """
    by = {(r["image"], r["method"], r["selection"]): r["psnr_db"] for r in rows}
    return {im: by[(im, method, "-")] - max(by[(im, *a)] for a in against) for im, m, s in by
            if m == method and s == "-" and all((im, *a) in by for a in against)}


def write_report(
    rows: list[dict[str, Any]],
    kept: dict[str, np.ndarray],
    protocol: Table1Protocol,
    out_dir: Path,
    data_dir: Path,
    folds: Path,
    paper_dir: Path | None = None,
) -> list[Path]:
    """Write ``results.csv``, ``table1.md`` and the figures into ``out_dir``; return the paths."""
    from ..data import load_sky
    from ..psf import parse_spec
    from . import plots

    out_dir.mkdir(parents=True, exist_ok=True)
    written = [write_results(rows, out_dir / "results.csv")]
    (out_dir / "protocol.json").write_text(json.dumps(record(protocol), indent=1, sort_keys=True) + "\n")
    written.append(out_dir / "protocol.json")
    paper_csv = paper_dir / "paper_table1.csv" if paper_dir else None
    paper = read_paper_table(paper_csv) if paper_csv and paper_csv.is_file() else None
    table = render_table(rows, protocol, paper)
    oracles = tuple((m, "oracle") for m in protocol.classical)
    for title, against, paper_note in (("oracle Wiener", (("wiener", "oracle"),), " (the paper: +1.76 dB)"),
                                       ("the best oracle classical method", oracles, ""),
                                       ("the paper's released weights", (("cnn3-paper-weights", "-"),), "")):
        summary = margins(rows, "cnn3", against)
        if summary:
            table += (f"\n\ncnn3 minus {title}, mean over the images: {np.mean(list(summary.values())):+.2f} dB"
                      f"{paper_note}; per image: " + ", ".join(f"{k} {v:+.2f}" for k, v in summary.items()) + ".")
    for method, title, against in (("restorer", "cnn3", (("cnn3", "-"),)),
                                   ("restorer-universal", "oracle Wiener", (("wiener", "oracle"),)),
                                   ("restorer-universal", "restorer", (("restorer", "-"),))):
        summary = margins(rows, method, against)
        if summary:
            table += (f"\n\n{method} minus {title}, mean over the images: {np.mean(list(summary.values())):+.2f} dB; "
                      "per image: " + ", ".join(f"{k} {v:+.2f}" for k, v in summary.items()) + ".")
    (out_dir / "table1.md").write_text(f"# {protocol.description}\n\n{table}\n")
    written.append(out_dir / "table1.md")
    written.append(plots.dataset_figure({name: load_sky(name, data_dir) for name in protocol.images},
                                        out_dir / "dataset.png"))
    if kept:
        panels = {"truth": kept["truth"], "observed": kept["observed"]}
        panels.update({k: v for k, v in kept.items() if k not in ("truth", "observed", "none")})
        scores = {r["method"]: r["psnr_db"] for r in rows if r["image"] == protocol.images[0]
                  and r["selection"] in ("oracle", "-")}
        titled = {(f"{k} {scores[k]:.2f} dB" if k in scores else k): v for k, v in panels.items()}
        written.append(plots.comparison_figure(titled, out_dir / "comparison.png", psf=parse_spec(protocol.psf),
                                               zoom=min(256, kept["truth"].shape[0])))
    cnn3_fold = fold_dir(folds, "cnn3", protocol.images[0])
    if fold_is_trained(cnn3_fold):
        from ..nn.store import load_model
        from .features import component_correlations, feature_maps

        case = observe_case(protocol, 0, data_dir) if "observed" not in kept else Case("", kept["truth"], kept["observed"])
        layers = feature_maps(load_model(cnn3_fold)[0], case.observed)
        scores = component_correlations(layers, case.truth)
        written.append(plots.feature_maps_figure(layers, case.observed.shape, out_dir / "feature_maps.png", scores))
        written.append(write_feature_correlations(scores, out_dir / "feature_maps.csv"))
    histories = {}
    for arch in protocol.networks:
        for image in protocol.images:
            history = fold_dir(folds, arch, image) / "history.csv"
            if history.is_file():
                with open(history, newline="") as handle:
                    histories[f"{arch} without {image}"] = list(csv.DictReader(handle))
    if histories:
        written.append(plots.training_curves_figure(histories, out_dir / "training_curves.png"))
    return written
