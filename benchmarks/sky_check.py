"""Every real sky image at the paper's setting: is the default model's output better than the observation?

Each image of ../shared/data/sky is normalised (``max(0, I / max I)``), observed whole with the
paper's forward model (``airy-paper`` PSF, zero boundary, Gaussian sigma = 0.01, seed 2017 + k)
and restored by the command line's default method, ``restorer-universal``, told the PSF and
either told sigma or estimating it; the Wiener filter with the default balance (no tuning),
the shipped ``cnn3`` and the paper's released 3-CNN (M51a weights) are scored alongside. PSNR
(dB, data range 1) over the whole image minus a 32-px border. Writes ``sky_check.csv`` and
``sky_check.md`` into the output folder.

    python benchmarks/sky_check.py -o docs/results
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from astrodeconv import data
from astrodeconv.forward import observe
from astrodeconv.methods import restore
from astrodeconv.metrics import psnr
from astrodeconv.psf import airy_paper

PAPER_WEIGHTS = "reference/paper_models/32x32_10x10-64_6x6-16_5x5-1_PSF64_sigma0.010_M51a.h5"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/results"))
    args = parser.parse_args()
    sky = data.sky_dir()
    shared = data.shared_dir()
    names = sorted(p.name[: -len(".fits.gz")] for p in sky.glob("*.fits.gz"))
    psf = airy_paper()
    methods = {
        "none": None,
        "wiener (default balance)": ("wiener", {}),
        "cnn3 (shipped)": ("cnn3", {}),
        "cnn3 (paper weights)": ("cnn3", {"model": str(shared / PAPER_WEIGHTS)}),
        "restorer-universal (sigma given)": ("restorer-universal", {"sigma": 0.01}),
        "restorer-universal (sigma estimated)": ("restorer-universal", {}),
    }
    rows = []
    for k, name in enumerate(tqdm(names, desc="sky images")):
        clean = data.load_sky(name, sky)
        observed = observe(clean, psf, sigma=0.01, rng=2017 + k)
        row = {"image": name, "shape": "x".join(map(str, clean.shape))}
        for label, spec in methods.items():
            estimate = observed if spec is None else restore(observed, psf, spec[0], **spec[1])
            row[label] = round(psnr(estimate, clean, 1.0, border=32), 3)
        rows.append(row)
    args.output.mkdir(parents=True, exist_ok=True)
    with open(args.output / "sky_check.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    labels = list(methods)
    lines = ["# Every sky image at the paper's setting (airy-paper, sigma 0.01, whole image), PSNR (dB)", "",
             "| image | shape | " + " | ".join(labels) + " |", "|---|---|" + "---:|" * len(labels)]
    for row in rows:
        lines.append(f"| {row['image']} | {row['shape']} | " + " | ".join(f"{row[m]:.2f}" for m in labels) + " |")
    for label in labels[1:]:
        gains = [row[label] - row["none"] for row in rows]
        lines.append(f"\n`{label}`: better than the observation on {sum(g > 0 for g in gains)} of {len(rows)} "
                     f"images; gain {min(gains):+.2f} to {max(gains):+.2f} dB (mean {np.mean(gains):+.2f}).")
    (args.output / "sky_check.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
