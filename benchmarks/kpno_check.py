"""The real KPNO CCD frame ``m51_kpno_b``: its cold pixels and bad rows, and what they do to the restoration.

The frame (IRAF's test image; no ``GAIN`` card, no mask) has a row read at about half its
level across the whole frame, a charge trap's segment and a few dead pixels. ``deconvolve``
now finds them (:func:`astrodeconv.masks.cold_pixels`), treats them as bad (NaN in the output,
filled from their neighbours for the computation: :func:`astrodeconv.masks.fill_locally`);
``--keep-cold`` restores them as data. The frame is restored both ways (``--psf stars``, each
method given), and for each this prints: the stripe the cold pixels leave in the rows beside
them (restored minus observed, mean over the pixels just above and below each cold one, in
sky sigmas: a dark stripe is negative), the total flux against the observation's, and the 4
FWHM aperture flux of the sources above 30 sigma against the observation's. ``-o DIR`` writes
``kpno_check.md`` and ``kpno_check.png`` (around the trap and the dimmed row: observed, kept,
masked; NaN in red). About 10 s per method::

    python benchmarks/kpno_check.py -o docs/results
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

FWHM = 2.75  # px, the PSF from its stars
#: Crops shown in the figure: (first row, last row, first column, last column), and what each holds.
CROPS = {"the charge trap (row 298)": (284, 313, 352, 396), "the dimmed row (109)": (95, 124, 40, 84)}


def _stars(observed: np.ndarray, sky: float, sigma: float) -> np.ndarray:
    from photutils.detection import DAOStarFinder

    found = DAOStarFinder(fwhm=FWHM, threshold=30 * sigma)(np.nan_to_num(observed - sky))
    xy = np.column_stack([found["xcentroid"], found["ycentroid"]])
    inside = (xy > 20).all(axis=1) & (xy < np.array(observed.shape[::-1]) - 20).all(axis=1)
    return xy[inside]


def _aperture_ratio(restored: np.ndarray, observed: np.ndarray, sky: float, xy: np.ndarray) -> tuple[float, float, float]:
    """Median (16th, 84th percentiles) of restored / observed 4 FWHM aperture flux, apertures free of NaN."""
    from photutils.aperture import CircularAperture, aperture_photometry

    aperture = CircularAperture(xy, r=4 * FWHM)
    restored_sum, observed_sum = (np.asarray(aperture_photometry(image - sky, aperture)["aperture_sum"])
                                  for image in (restored, observed))
    ratio = (restored_sum / observed_sum)[np.isfinite(restored_sum) & np.isfinite(observed_sum)]
    return float(np.median(ratio)), float(np.percentile(ratio, 16)), float(np.percentile(ratio, 84))


def _stripe(restored: np.ndarray, observed: np.ndarray, cold: np.ndarray, sigma: float) -> float:
    """Mean of restored - observed over the good pixels just above and below cold ones, in ``sigma``."""
    beside = (np.roll(cold, 1, axis=0) | np.roll(cold, -1, axis=0)) & ~cold
    beside[0], beside[-1] = False, False
    return float(np.nanmean((restored - observed)[beside]) / sigma)


def main(argv: list[str] | None = None) -> int:
    from astropy.io import fits

    from astrodeconv.data import sky_dir
    from astrodeconv.masks import cold_pixels
    from astrodeconv.noise import estimate_sigma, sky_level
    from astrodeconv.pipeline import restore_file

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", nargs="+", default=["restorer-universal", "wiener"])
    parser.add_argument("-o", "--output", type=Path, help="folder for kpno_check.md and kpno_check.png")
    args = parser.parse_args(argv)
    path = sky_dir() / "m51_kpno_b.fits.gz"
    observed = fits.getdata(path).astype(np.float64)
    cold = cold_pixels(observed)
    sky, sigma = sky_level(observed), estimate_sigma(np.where(cold, np.median(observed), observed))
    xy = _stars(np.where(cold, np.nan, observed), sky, sigma)
    whole_rows = [int(r) for r in np.flatnonzero(cold.all(axis=1))]
    lines = [f"`m51_kpno_b`: {int(cold.sum())} cold pixels found (rows whole: {whole_rows}); sky {sky:.1f} ADU, "
             f"noise sigma {sigma:.2f} ADU; {len(xy)} sources above 30 sigma, 20 px or more from the edges.", "",
             "| method | cold pixels | stripe beside them (sigma) | total flux / observed | 4 FWHM aperture flux / "
             "observed, median (16-84 %) |", "|---|---|---:|---:|---:|"]
    shown = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in args.method:
            for label, keep in (("kept as data (--keep-cold)", True), ("found, masked (default)", False)):
                out = Path(tmp) / "out.fits"
                restore_file(path, out, psf_spec="stars", method=method, overwrite=True, cold=not keep)
                restored = fits.getdata(out).astype(np.float64)
                both = np.isfinite(restored) & ~cold
                inner = np.zeros_like(both)
                inner[16:-16, 16:-16] = True
                total = np.sum((restored - sky)[both & inner]) / np.sum((observed - sky)[both & inner])
                median, low, high = _aperture_ratio(restored, np.where(cold, np.nan, observed), sky, xy)
                lines.append(f"| {method} | {label} | {_stripe(restored, observed, cold, sigma):+.1f} | {total:.4f} | "
                             f"{median:.4f} ({low:.3f}-{high:.3f}) |")
                print(lines[-1], flush=True)
                if method == args.method[0]:
                    shown[label] = restored
    text = "\n".join(lines) + "\n"
    print(text)
    if args.output:
        args.output.mkdir(parents=True, exist_ok=True)
        (args.output / "kpno_check.md").write_text("# The KPNO frame's cold pixels\n\n" + text)
        _figure(observed, shown, args.output / "kpno_check.png", args.method[0])
        print(f"wrote {args.output / 'kpno_check.md'}, {args.output / 'kpno_check.png'}")
    return 0


def _figure(observed: np.ndarray, shown: dict[str, np.ndarray], path: Path, method: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = {"observed": observed, **{f"{method}, cold pixels {label}": image for label, image in shown.items()}}
    colours = plt.get_cmap("gray").copy()
    colours.set_bad("tab:red")  # NaN: the pixels masked
    fig, axes = plt.subplots(len(CROPS), len(panels), figsize=(3.4 * len(panels), 3.0 * len(CROPS)), squeeze=False)
    for row, (where, (r0, r1, c0, c1)) in enumerate(CROPS.items()):
        crop = observed[r0:r1, c0:c1]
        low, high = np.percentile(crop, [5, 99.5])
        for col, (title, image) in enumerate(panels.items()):
            ax = axes[row, col]
            ax.imshow(image[r0:r1, c0:c1], origin="lower", cmap=colours, vmin=low, vmax=high,
                      extent=(c0 - 0.5, c1 - 0.5, r0 - 0.5, r1 - 0.5))
            ax.set_title(f"{title}\n{where}" if row == 0 else where, fontsize=8)
            ax.tick_params(labelsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
