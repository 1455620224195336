"""Dask prediction of a large FITS image with 1 and 2 local workers: wall time and speed-up.

Builds the same tiled sky image as ``bench_stream.py`` (SIZE x SIZE float32, in a temporary
folder, deleted at the end) and runs ``astrodeconv deconvolve BIG.fits -o OUT.fits --method M
--dask N --tile CHUNK`` for each N; each worker is one process with one torch thread.

    python benchmarks/bench_dask.py                           # cnn3, 16384^2, 1 and 2 workers
    python benchmarks/bench_dask.py --method cnn1 --size 8192
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_stream import build_image, run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--method", default="cnn3")
    parser.add_argument("--size", type=int, default=16384)
    parser.add_argument("--chunk", type=int, default=2048)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    exe = [sys.executable, "-m", "astrodeconv.cli", "deconvolve"]
    mpx = args.size**2 / 1e6
    with tempfile.TemporaryDirectory(dir="/tmp") as tmp:
        big = Path(tmp) / "big.fits"
        build_image(big, args.size)
        times = {}
        for n in args.workers:
            out = Path(tmp) / f"out{n}.fits"
            wall, t, rss = run(exe + [str(big), "-o", str(out), "--method", args.method, "--dask", str(n),
                                      "--tile", str(args.chunk)])
            times[n] = t
            print(f"dask {n} worker(s), {args.method} {args.size}^2, chunks {args.chunk}: {t:.1f} s ({wall:.1f} s wall), "
                  f"{mpx / t:.3f} Mpx/s, client peak RSS {rss:.2f} GB")
            out.unlink()
        first = min(times)
        for n, t in times.items():
            print(f"speed-up {n} vs {first} worker(s): {times[first] / t:.2f}")


if __name__ == "__main__":
    main()
