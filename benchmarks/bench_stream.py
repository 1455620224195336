"""Streamed FITS prediction on an image larger than the tile: wall time, Mpx/s, peak RSS.

Builds a SIZE x SIZE float32 FITS (16384^2 = 1 GiB by default) by tiling the real images of
../shared/data/sky (normalised, with the paper's blur and noise) in a temporary folder,
then runs ``astrodeconv deconvolve BIG.fits -o OUT.fits --method M --tile T --stream`` in
a subprocess per tile size and reads its peak resident memory (``RUSAGE_CHILDREN``).
The in-memory speed per megapixel is measured in the same run on a REF x REF crop
(``astrodeconv deconvolve`` without ``--stream``). Everything is deleted at the end.

    python benchmarks/bench_stream.py                       # cnn3, 16384^2, tiles 1024 and 2048
    python benchmarks/bench_stream.py --method cnn1 --size 8192
"""

from __future__ import annotations

import argparse
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from astropy.io import fits

from astrodeconv import data, forward, psf


def build_image(path: Path, size: int, block: int = 1024) -> None:
    """Tile SIZE x SIZE with observed 1024^2 crops of the sky images, written row by row."""
    names = sorted(p.name[: -len(".fits.gz")] for p in data.sky_dir().glob("*.fits.gz"))
    crops = []
    kernel = psf.airy_paper()
    rng = np.random.default_rng(0)
    for name in names:
        x = data.load_sky(name, data.sky_dir())
        if min(x.shape) >= block:
            r0, c0 = (x.shape[0] - block) // 2, (x.shape[1] - block) // 2
            crops.append(forward.observe(x[r0 : r0 + block, c0 : c0 + block], kernel, sigma=0.01, rng=rng).astype(np.float32))
    header = fits.Header({"ADPSF": "airy-paper", "ADSIGMA": 0.01, "ADSCALE": 1.0})
    hdu = fits.PrimaryHDU(np.zeros((1, 1), np.float32), header=header)
    hdu.header["NAXIS1"], hdu.header["NAXIS2"] = size, size
    text = hdu.header.tostring().encode()
    with open(path, "wb") as fh:
        fh.write(text)
        n = size // block
        for i in range(n):
            row = np.concatenate([crops[(i * n + j) % len(crops)] for j in range(n)], axis=1)
            fh.write(row.astype(">f4").tobytes())
        fh.write(b"\0" * (-fh.tell() % 2880))


def run(cmd: list[str]) -> tuple[float, float, float]:
    """Wall seconds, the seconds the command reports (``... in X s``) and peak RSS (GB).

    The command runs under a fresh Python parent, whose ``RUSAGE_CHILDREN`` maximum is that
    command's alone.
    """
    probe = ("import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True);"
             "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)")
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", probe, *cmd], check=True, capture_output=True, text=True)
    reported = float(re.findall(r" in ([0-9.]+) s ->", done.stdout)[-1])
    return time.perf_counter() - start, reported, int(done.stdout.split()[-1]) * 1024 / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="cnn3")
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--tiles", type=int, nargs="+", default=[1024, 2048])
    parser.add_argument("--ref", type=int, default=2048, help="side of the in-memory reference crop")
    args = parser.parse_args()
    exe = [sys.executable, "-m", "astrodeconv.cli", "deconvolve"]
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        big, small = Path(tmp) / "big.fits", Path(tmp) / "ref.fits"
        build_image(big, args.size)
        with fits.open(big, memmap=True) as hdul:
            fits.writeto(small, np.array(hdul[0].section[: args.ref, : args.ref]), hdul[0].header)
        mpx = args.size**2 / 1e6
        _, t_ref, rss_ref = run(exe + [str(small), "-o", str(Path(tmp) / "ref_out.fits"), "--method", args.method,
                                    "--select", "none"])
        ref_speed = args.ref**2 / 1e6 / t_ref
        print(f"in-memory {args.method} {args.ref}^2: {t_ref:.1f} s (restore only), {ref_speed:.3f} Mpx/s, peak RSS {rss_ref:.2f} GB")
        for tile in sorted(args.tiles):
            out = Path(tmp) / f"out{tile}.fits"
            wall, t, rss = run(exe + [str(big), "-o", str(out), "--method", args.method, "--tile", str(tile), "--stream"])
            print(f"streamed {args.method} {args.size}^2 ({mpx:.0f} Mpx), tile {tile}: {t:.1f} s ({wall:.1f} s wall), {mpx / t:.3f} Mpx/s "
                  f"({mpx / t / ref_speed:.2f} x in-memory speed), peak RSS {rss:.2f} GB")
            out.unlink()


if __name__ == "__main__":
    main()
