"""How deep a "ring" the realistic protocol's ring measure reads where there is no star: its noise floor.

``ring_saturated_sigma`` (:func:`astrodeconv.experiments.photometry.ring_depth` in the
observation's noise) is the deepest azimuthal mean between 1 and 6 FWHM about a saturated star
below the median 8-10 FWHM out. About an empty spot of the sky there is no ring, and what the
measure reads there is its floor: the noise (and the faint scene) of the image it is applied
to. For each frame of the realistic protocol, restored through ``deconvolve``'s pipeline with
the exact PSF (``restorer-universal`` by default), this prints the measure about the frame's
saturated stars and its median and 90th percentile about 40 spots at least 4 FWHM from any
source, on the restored frame and on the observation. ``-o DIR`` also writes ``ring_noise.md``.
About a minute::

    python benchmarks/ring_noise.py -o docs/results
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np

#: Spots per frame, their distance from any source (FWHM) and from the frame's edge (px).
SPOTS, CLEAR, EDGE = 40, 4, 60


def empty_spots(frame, noise: float, width: float, rng: np.random.Generator) -> np.ndarray:
    """``(SPOTS, 2)`` x, y at least :data:`CLEAR` FWHM from where the blurred truth exceeds 0.2 of the noise."""
    from scipy.ndimage import binary_dilation, gaussian_filter

    lit = gaussian_filter(frame.truth, width / 2.355) > 0.2 * noise
    empty = ~binary_dilation(lit, iterations=int(CLEAR * width))
    empty[:EDGE], empty[-EDGE:], empty[:, :EDGE], empty[:, -EDGE:] = False, False, False, False
    ys, xs = np.nonzero(empty)
    if len(ys) == 0:
        return np.empty((0, 2))
    pick = rng.choice(len(ys), size=min(SPOTS, len(ys)), replace=False)
    return np.column_stack([xs[pick], ys[pick]]).astype(float)


def rows(method: str) -> list[str]:
    from astropy.io import fits

    from astrodeconv.data import load_sky
    from astrodeconv.experiments import instrument, realistic
    from astrodeconv.experiments.photometry import ring_depth, score
    from astrodeconv.experiments.protocols import load_protocol
    from astrodeconv.noise import estimate_sigma
    from astrodeconv.pipeline import restore_file
    from astrodeconv.psf import fwhm

    protocol = load_protocol("realistic")
    detector = instrument.Detector(**protocol.detector)
    sky = load_sky(protocol.images[0], None)
    cells = [(scene, kind) for scene in protocol.scenes for kind in protocol.psfs]
    lines = [f"| scene | PSF | {method}: about saturated stars | {method}: about empty spots, median / 90 % | "
             "observation: about empty spots, median / 90 % |", "|---|---|---:|---:|---:|"]
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for k, (scene, kind) in enumerate(cells):
            frame = instrument.frame(scene, kind, n=protocol.size, seed=protocol.seed + k, detector=detector,
                                     sky_image=sky, psf_reach=protocol.psf_reach)
            observed = realistic.write_fits(folder / "obs.fits", frame.adu, frame.header_cards())
            psf_path = realistic.write_fits(folder / "psf.fits", frame.psf)
            restore_file(observed, folder / "out.fits", psf_spec=str(psf_path), method=method, overwrite=True)
            restored, seen = frame.electrons(fits.getdata(folder / "out.fits")), frame.electrons(frame.adu)
            noise, width = estimate_sigma(seen), fwhm(frame.psf)
            spots = empty_spots(frame, noise, width, rng)
            saturated = score(restored, frame, noise, width, protocol.border)["ring_saturated_sigma"]
            floors = []
            for image in (restored, seen):
                depths = [ring_depth(image, spot, width, noise) for spot in spots]
                floors.append(f"{np.median(depths):.2f} / {np.percentile(depths, 90):.2f}" if depths else "no spot")
            lines.append(f"| {scene} | {kind} | {saturated:.2f} | {floors[0]} | {floors[1]} |")
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="restorer-universal")
    parser.add_argument("-o", "--output", type=Path, help="folder to write ring_noise.md to")
    args = parser.parse_args()
    lines = rows(args.method)
    if args.output is not None:
        args.output.mkdir(parents=True, exist_ok=True)
        text = ("# The ring measure's floor: about saturated stars and about empty spots of the sky\n\n"
                "Realistic protocol, exact PSF; in the observation's noise (`python benchmarks/ring_noise.py`). "
                "`nan`: no saturated star in the frame.\n\n" + "\n".join(lines) + "\n")
        (args.output / "ring_noise.md").write_text(text)
        print(f"wrote {args.output / 'ring_noise.md'}")


if __name__ == "__main__":
    main()
