"""Frames without a GAIN card: the gain measured on their own noise, and what it does to the restoration.

The realistic protocol's frames (GalSim; gain 2 e-/ADU, sky 1000 e-/px) are written without
their ``GAIN`` and ``RDNOISE`` cards and restored through ``deconvolve``'s pipeline, the exact
PSF given, three ways (``restorer-universal`` and Wiener): with the cards, with the gain measured on the frame
(:func:`astrodeconv.noise.gain_from_image`, what ``deconvolve`` now does without a card) and
with the sky's noise only (``--gain inf``, what it did before). Then the measured gain of
Poisson-noise frames made from the sky images (and of Gaussian-noise ones, where there is none
to find), and of the real KPNO CCD frame ``m51_kpno_b`` (no card; its PSF from its stars).
Prints tables; ``-o DIR`` also writes ``gain_check.md`` there, with ``gain_check.png`` (the KPNO frame's
centre observed, restored with the sky's noise only and with the gain measured). About 5 minutes::

    python benchmarks/gain_check.py -o docs/results
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import numpy as np

#: How each frame is restored: with its cards or without them, and the ``gain`` handed to ``restore_file``.
WAYS = {"GAIN card": (True, None), "measured": (False, None), "sky noise only": (False, math.inf)}


def realistic_rows(method: str) -> list[str]:
    from astropy.io import fits

    from astrodeconv.data import load_sky
    from astrodeconv.experiments import instrument, realistic
    from astrodeconv.experiments.photometry import score
    from astrodeconv.experiments.protocols import load_protocol
    from astrodeconv.noise import estimate_sigma, gain_from_image
    from astrodeconv.pipeline import restore_file
    from astrodeconv.psf import fwhm

    protocol = load_protocol("realistic")
    detector = instrument.Detector(**protocol.detector)
    sky = load_sky(protocol.images[0], None)
    cells = [(scene, kind) for scene in protocol.scenes for kind in protocol.psfs]
    lines = [f"| scene | PSF | gain measured / true | {' | '.join(f'{way}: PSNR without stars (dB) / false per 1000' for way in WAYS)} |",
             "|---|---|---:|" + "---:|" * len(WAYS)]
    totals = {way: [] for way in WAYS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for k, (scene, kind) in enumerate(cells):
            frame = instrument.frame(scene, kind, n=protocol.size, seed=protocol.seed + k, detector=detector,
                                     sky_image=sky, psf_reach=protocol.psf_reach)
            cards = {key: value for key, value in frame.header_cards().items() if key not in ("GAIN", "RDNOISE")}
            bare = realistic.write_fits(folder / "bare.fits", frame.adu, cards)
            full = realistic.write_fits(folder / "full.fits", frame.adu, frame.header_cards())
            psf_path = realistic.write_fits(folder / "psf.fits", frame.psf)
            adu = np.asarray(frame.adu, dtype=np.float64)
            measured = gain_from_image(adu, frame.psf, estimate_sigma(adu), invalid=adu >= detector.saturate)
            noise, width = estimate_sigma(frame.electrons(frame.adu)), fwhm(frame.psf)
            cells_out = []
            for way, (cards_kept, gain) in WAYS.items():
                restore_file(full if cards_kept else bare, folder / "out.fits", psf_spec=str(psf_path),
                             method=method, overwrite=True, gain=gain)
                s = score(frame.electrons(fits.getdata(folder / "out.fits")), frame, noise, width, protocol.border)
                totals[way].append((s["psnr_no_stars_db"], s["spurious_per_1000"]))
                cells_out.append(f"{s['psnr_no_stars_db']:.2f} / {s['spurious_per_1000']:.0f}")
            ratio = "none found" if measured is None else f"{measured / detector.gain:.2f}"
            lines.append(f"| {scene} | {kind} | {ratio} | {' | '.join(cells_out)} |")
            print(lines[-1], flush=True)
    means = [f"{np.mean([p for p, _ in v]):.2f} / {np.mean([f for _, f in v]):.0f}" for v in totals.values()]
    lines.append(f"| **mean** | | | {' | '.join(means)} |")
    return lines


def sky_rows() -> list[str]:
    from astropy.io import fits

    from astrodeconv.data import load_sky, sky_dir
    from astrodeconv.forward import normalise, observe
    from astrodeconv.noise import estimate_sigma, gain_from_image
    from astrodeconv.psf import airy, gaussian
    from astrodeconv.starpsf import estimate_psf

    lines = ["| image (512 px crop) | PSF | Poisson, gain 2000 over a sky of 0.05: measured / true | Gaussian, sigma 0.003 |",
             "|---|---|---:|---|"]
    for name in ("m51_dss1red", "horsehead_dss", "m67_dss1", "starfield_nsv60_dss1", "m81_dss1"):
        clean = normalise(load_sky(name, None))[0][:512, :512]
        for psf, label in ((gaussian(3.0), "Gaussian FWHM 3"), (airy(fwhm=6.5, size=65), "Airy FWHM 6.5")):
            poisson = observe(clean + 0.05, psf, sigma=0.003, gain=2000.0, rng=0, boundary="periodic")
            gaussian_only = observe(clean, psf, sigma=0.003, rng=0, boundary="periodic")
            found = [gain_from_image(y, psf, estimate_sigma(y)) for y in (poisson, gaussian_only)]
            lines.append(f"| {name} | {label} | {'none found' if found[0] is None else f'{found[0] / 2000:.2f}'} | "
                         f"{'none found' if found[1] is None else f'{found[1]:.3g} (false)'} |")
            print(lines[-1], flush=True)
    kpno = fits.getdata(sky_dir() / "m51_kpno_b.fits.gz").astype(np.float64)
    bad = kpno < 0  # its bad rows and columns
    psf = estimate_psf(np.where(bad, np.nan, kpno)).psf
    found = gain_from_image(np.where(bad, np.nan, kpno), psf, estimate_sigma(np.where(bad, np.median(kpno), kpno)))
    lines.append(f"\n`m51_kpno_b` (KPNO CCD, no `GAIN` card; PSF from its stars): gain measured "
                 f"{'none' if found is None else f'{found:.3g} e-/ADU'}.")
    print(lines[-1], flush=True)
    return lines


def kpno_figure(method: str, path: Path) -> Path:
    """``m51_kpno_b``'s centre: observed, restored with the sky's noise only, and with the gain measured."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.io import fits

    from astrodeconv.data import sky_dir
    from astrodeconv.pipeline import restore_file

    source = sky_dir() / "m51_kpno_b.fits.gz"
    observed = fits.getdata(source).astype(np.float64)
    panels = {"observed": observed}
    with tempfile.TemporaryDirectory() as tmp:
        for title, gain in (("sky's noise only (--gain inf)", math.inf), ("gain measured on the frame", None)):
            out = Path(tmp) / "out.fits"
            restore_file(source, out, psf_spec="stars", method=method, gain=gain, overwrite=True)
            panels[f"{method}, {title}"] = fits.getdata(out).astype(np.float64)
    sky, noise = float(np.median(observed)), 1.5  # ADU: the sky's noise there
    crop = (slice(150, 280), slice(150, 280))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.4))
    for ax, (title, image) in zip(axes, panels.items()):
        ax.imshow(np.arcsinh((image[crop] - sky) / (3 * noise)), vmin=-1, vmax=9, cmap="gray", origin="lower")
        ax.set_title(title, fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
    fig.suptitle("m51_kpno_b (KPNO CCD, no GAIN card, PSF from its stars): the bulge, asinh stretch", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--methods", nargs="+", default=["restorer-universal", "wiener"],
                        help="methods restored the three ways (the first also makes the figure)")
    parser.add_argument("-o", "--out", type=Path, help="folder for gain_check.md")
    args = parser.parse_args(argv)
    text = ["# Frames without a GAIN card (the exact PSF given)", ""]
    for method in args.methods:
        text += [f"## {method}", "", *realistic_rows(method), ""]
    text += ["## The gain measured on other frames", "", *sky_rows(), ""]
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        figure = kpno_figure(args.methods[0], args.out / "gain_check.png")
        text += ["", f"![m51_kpno_b]({figure.name})", ""]
        (args.out / "gain_check.md").write_text("\n".join(text) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
