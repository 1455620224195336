"""Tidy result rows on disk: one CSV row per image x method x selection (and per cell of a grid).

Rows are dicts with at least ``method, selection, params, psnr_db, ssim, time_s``; ``params``
is written as JSON, with model paths by folder name.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from .protocols import Protocol, record_differences

__all__ = ["RESULT_FIELDS", "previous_results", "read_results", "replace_rows", "write_results",
           "write_rows_and_table"]

RESULT_FIELDS = ("image", "method", "selection", "params", "psnr_db", "ssim", "time_s")


def write_results(rows: list[dict[str, Any]], path: Path, fieldnames: tuple[str, ...] = RESULT_FIELDS) -> Path:
    """Write tidy rows as CSV: PSNR (dB) to 3 decimals, SSIM to 4, time (s) to 3; return ``path``."""
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        for row in rows:
            params = {k: (Path(v).name if k == "model" else v) for k, v in row["params"].items() if v is not None}
            writer.writerow({**row, "params": json.dumps(params, sort_keys=True),
                             "psnr_db": f"{row['psnr_db']:.3f}", "ssim": f"{row['ssim']:.4f}",
                             "time_s": f"{row['time_s']:.3f}"})
    return path


def read_results(path: Path) -> list[dict[str, Any]]:
    """Read rows written by :func:`write_results` (any columns; the scores as floats)."""
    with open(path, newline="") as handle:
        return [{**r, "params": json.loads(r["params"]), "psnr_db": float(r["psnr_db"]), "ssim": float(r["ssim"]),
                 "time_s": float(r["time_s"])} for r in csv.DictReader(handle)]


def previous_results(protocol: Protocol, out_dir: Path) -> list[dict[str, Any]]:
    """The rows already in ``out_dir/results.csv`` ([] if none), checked to be of ``protocol``.

    The protocol of those rows is the ``protocol.json`` written beside them
    (:func:`astrodeconv.experiments.protocols.record`); rows of another protocol (another
    crop, noise, seed, or the quick version) are an :class:`InputError` rather than merged.
    """
    results, recorded = Path(out_dir) / "results.csv", Path(out_dir) / "protocol.json"
    if not results.is_file():
        return []
    if not recorded.is_file():
        raise InputError(f"{results} has no {recorded.name} beside it, so its protocol is unknown: "
                         "choose another --output, or run every image (no --image)")
    theirs = json.loads(recorded.read_text())
    differ = record_differences(protocol, theirs)
    if differ:
        raise InputError(f"{out_dir} holds results of another protocol ({theirs.get('name')!r}, differing in {differ}); "
                         f"expected {protocol.name!r}: choose another --output, or run every image (no --image)")
    return read_results(results)


def replace_rows(previous: list[dict[str, Any]], rows: list[dict[str, Any]], keys: tuple[str, ...]) -> list[dict[str, Any]]:
    """``previous`` with each row whose ``keys`` match a row of ``rows`` replaced in place, then the new rows.

    Values are compared as text, so rows read back from CSV match freshly computed ones; the
    order of ``previous`` is kept (the tables' columns follow it).
    """
    def key(row: dict[str, Any]) -> tuple[str, ...]:
        return tuple(str(row[k]) for k in keys)

    fresh = {key(r): r for r in rows}
    kept = [fresh.get(key(r), r) for r in previous]
    seen = {key(r) for r in previous}
    return kept + [r for r in rows if key(r) not in seen]


def write_rows_and_table(rows: list[dict[str, Any]], protocol: Protocol, table: str, out_dir: Path, stem: str,
                         fieldnames: tuple[str, ...]) -> list[Path]:
    """Write ``<stem>.csv`` (tidy rows) and ``<stem>.md`` (the protocol's description, then ``table``) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    markdown = out_dir / f"{stem}.md"
    markdown.write_text(f"# {protocol.description}\n\n{table}\n")
    return [write_results(rows, out_dir / f"{stem}.csv", fieldnames), markdown]
