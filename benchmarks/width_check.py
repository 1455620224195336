"""How often ``matched_psf`` corrects a PSF 15 % too wide, and leaves the right one alone, on GalSim frames.

Each scene of :mod:`astrodeconv.experiments.instrument` (star field, galaxies, deep field,
extended emission of ``m101_dss1``) is drawn with the ground and the space-like PSF, 320 px,
for seeds 0 to 20; :func:`astrodeconv.points.matched_psf` is handed the frame's true PSF and the
same PSF 15 % wider (``Frame.wide_psf``), as ``deconvolve`` hands it the PSF given. A wide PSF
is *corrected* when it is narrowed to within 3 % of 1/1.15, *narrowed* otherwise; the right PSF
must be *kept*. Writes ``width_check.csv`` (one row per frame and PSF) and ``width_check.md``.

    python benchmarks/width_check.py -o docs/results          # ~8 min on one core
"""

from __future__ import annotations

import argparse
import csv
from collections import Counter
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from astrodeconv.data import load_sky, sky_dir
from astrodeconv.experiments import instrument
from astrodeconv.noise import estimate_sigma
from astrodeconv.points import matched_psf

WIDE = 1.15  # Frame.wide_psf's width over the true PSF's
CLOSE = 0.03  # a narrowing within this of 1 / WIDE corrects the PSF
#: The table's columns: (PSF given, outcome).
COLUMNS = (("right", "kept"), ("right", "narrowed"), ("wide", "corrected"), ("wide", "narrowed"), ("wide", "kept"))


def outcome(factor: float | None, given: str) -> str:
    """``kept``, ``corrected`` or ``narrowed`` for the factor ``matched_psf`` applied (None: none)."""
    if factor is None:
        return "kept"
    return "corrected" if given == "wide" and abs(factor * WIDE - 1) < CLOSE else "narrowed"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="folder for width_check.csv and .md")
    parser.add_argument("--seeds", type=int, default=21, help="frames per scene and PSF kind (seeds 0..N-1)")
    args = parser.parse_args(argv)
    sky = load_sky("m101_dss1", sky_dir())
    cases = [(scene, kind, seed) for scene in instrument.SCENES for kind in ("ground", "space")
             for seed in range(args.seeds)]
    rows = []
    for scene, kind, seed in tqdm(cases, desc="width check", unit="frame"):
        frame = instrument.frame(scene, kind, n=320, seed=seed, sky_image=sky if scene == "sky" else None)
        adu = frame.adu.astype(np.float64)
        sigma = estimate_sigma(adu)
        invalid = adu >= frame.detector.saturate
        for given, psf in (("right", frame.psf), ("wide", frame.wide_psf)):
            _, fit = matched_psf(adu, psf, sigma, invalid)
            factor = None if fit is None else fit.factor
            rows.append({"scene": scene, "kind": kind, "seed": seed, "psf_given": given,
                         "factor": "" if factor is None else f"{factor:.4f}",
                         "sources": "" if fit is None else fit.sources, "outcome": outcome(factor, given)})
    args.output.mkdir(parents=True, exist_ok=True)
    with open(args.output / "width_check.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    text = [f"# matched_psf on GalSim frames (320 px, seeds 0-{args.seeds - 1}): the right PSF, and one {WIDE - 1:.0%} too wide",
            "", f"Frames per outcome; `corrected`: narrowed to within {CLOSE:.0%} of 1/{WIDE}.", "",
            "| scene | PSF | right: kept | right: narrowed | wide: corrected | wide: narrowed otherwise | wide: kept |",
            "|---|---|---:|---:|---:|---:|---:|"]
    def line(scene: str, kind: str, chosen: list[dict]) -> str:
        count = Counter((row["psf_given"], row["outcome"]) for row in chosen)
        return f"| {scene} | {kind} | " + " | ".join(str(count[column]) for column in COLUMNS) + " |"

    for scene in instrument.SCENES:
        for kind in ("ground", "space"):
            text.append(line(scene, kind, [row for row in rows if (row["scene"], row["kind"]) == (scene, kind)]))
    text.append(line("**all**", "", rows))
    (args.output / "width_check.md").write_text("\n".join(text) + "\n")
    print("\n".join(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
