"""Interpolate the weights of two restorer model folders (WiSE-FT: Wortsman et al., CVPR 2022).

For each model folder ``A/<name>`` that ``B/<name>`` also holds (the same architecture), writes
``OUT/<name>`` with the weights ``(1 - alpha) * A + alpha * B`` and ``B``'s ``config.json`` (so
``B``'s bank: the local one, for the second-stage folds). Used in docs/restorer.md to ask whether
the first-stage folds (image-wide bank) and the second-stage ones (local bank, instrument-like
scenes, wrong PSFs) have a better point between them::

    python benchmarks/interpolate_folds.py FIRST_STAGE_FOLDS benchmarks/folds 0.5 -o runs/wise-0.5
    astrodeconv benchmark --folds runs/wise-0.5 --method restorer-universal -o runs/wise-0.5/table1

(copy ``docs/results/results.csv`` and ``protocol.json`` into the output folder first, so that
the rows of the other methods are kept; likewise for ``--protocol psf-mismatch``).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import torch


def interpolate(first: Path, second: Path, alpha: float, out: Path) -> list[str]:
    """Write every model folder of ``second`` that ``first`` also holds, interpolated; returns their names."""
    done = []
    for folder in sorted(p for p in second.iterdir() if (p / "weights.pt").is_file()):
        other = first / folder.name / "weights.pt"
        if not other.is_file():
            continue
        a = torch.load(other, weights_only=True)
        b = torch.load(folder / "weights.pt", weights_only=True)
        if a.keys() != b.keys() or any(a[k].shape != b[k].shape for k in b):
            raise SystemExit(f"{other} and {folder / 'weights.pt'} are not the same architecture")
        mixed = {k: (1 - alpha) * a[k] + alpha * b[k] if b[k].is_floating_point() else b[k] for k in b}
        target = out / folder.name
        target.mkdir(parents=True, exist_ok=True)
        torch.save(mixed, target / "weights.pt")
        shutil.copy(folder / "config.json", target / "config.json")
        done.append(folder.name)
    return done


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path, help="folder of model folders at alpha 0")
    parser.add_argument("second", type=Path, help="folder of model folders at alpha 1 (its config.json is kept)")
    parser.add_argument("alpha", type=float)
    parser.add_argument("-o", "--out", type=Path, required=True)
    args = parser.parse_args()
    names = interpolate(args.first, args.second, args.alpha, args.out)
    print(f"{len(names)} models written to {args.out}: {', '.join(names)}")


if __name__ == "__main__":
    main()
