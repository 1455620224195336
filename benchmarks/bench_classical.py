"""Timing of the classical baselines against scikit-image, run by hand.

    python benchmarks/bench_classical.py [--workers N] [--repeat 3]

On a 1024 x 1024 image (the central crop of ../shared/data/sky/m81_dss1.fits.gz when
present, else scikit-image's Hubble Deep Field tiled to 1024 x 1024), blurred by the paper's
64 x 64 Airy PSF with Gaussian noise sigma 0.01, prints best-of-N wall times (perf_counter):

* our ``rl`` (30 iterations) vs ``skimage.restoration.richardson_lucy(clip=False)``:
  times, ratio and the largest absolute difference;
* our ``wiener`` vs ``skimage.restoration.wiener(clip=False)`` (same PSF origin, see
  :func:`astrodeconv.classical.wiener`): times, ratio, difference;
* ``tv``: seconds per iteration (over 20 iterations).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
from skimage import restoration

from astrodeconv import classical
from astrodeconv.data import hubble_deep_field, shared_dir
from astrodeconv.forward import normalise, observe, pad_to_odd
from astrodeconv.psf import airy_paper

SIZE = 1024


def clean_image() -> tuple[np.ndarray, str]:
    """The 1024 x 1024 clean image, normalised to max 1, and where it came from."""
    folder = shared_dir()
    path = folder / "data" / "sky" / "m81_dss1.fits.gz" if folder is not None else None
    if path is not None and path.is_file():
        from astrodeconv.io import read_image

        image, _ = read_image(path)
        r0, c0 = (image.shape[0] - SIZE) // 2, (image.shape[1] - SIZE) // 2
        if r0 >= 0 and c0 >= 0:
            return normalise(image[r0 : r0 + SIZE, c0 : c0 + SIZE])[0], f"{path.name}, central {SIZE}x{SIZE}"
    image = hubble_deep_field()
    reps = (-(-SIZE // image.shape[0]), -(-SIZE // image.shape[1]))
    return normalise(np.tile(image, reps)[:SIZE, :SIZE])[0], f"Hubble Deep Field tiled to {SIZE}x{SIZE}"


def best_of(func, repeat: int) -> tuple[float, np.ndarray]:
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        times.append(time.perf_counter() - start)
    return min(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", type=int, default=-1, help="scipy.fft threads for ours (-1: all cores)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    args = parser.parse_args(argv)

    clean, source = clean_image()
    psf = airy_paper()
    observed = observe(clean, psf, sigma=0.01, rng=np.random.default_rng(0))
    print(f"image: {source}; PSF airy_paper 64x64; sigma 0.01")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs; ours with workers={args.workers}")

    num_iter = 30
    t_ref, ref = best_of(lambda: restoration.richardson_lucy(observed, psf, num_iter, clip=False), args.repeat)
    t_ours, ours = best_of(lambda: classical.rl(observed, psf, num_iter, workers=args.workers), args.repeat)
    t_one, _ = best_of(lambda: classical.rl(observed, psf, num_iter, workers=1), args.repeat)
    t_double, exact = best_of(
        lambda: classical.rl(observed, psf, num_iter, precision="double", workers=args.workers), args.repeat
    )
    print(
        f"rl {num_iter} it: skimage {t_ref:.3f} s, ours {t_ours:.3f} s (1 thread {t_one:.3f} s), "
        f"ratio {t_ref / t_ours:.2f} (1 thread {t_ref / t_one:.2f}), max |diff| {np.max(np.abs(ours - ref)):.2e}"
    )
    print(
        f"rl {num_iter} it, double precision: ours {t_double:.3f} s, ratio {t_ref / t_double:.2f}, "
        f"max |diff| {np.max(np.abs(exact - ref)):.2e}"
    )

    balance = 0.03
    t_ref, ref = best_of(lambda: restoration.wiener(observed, pad_to_odd(psf), balance, clip=False), args.repeat)
    t_ours, ours = best_of(lambda: classical.wiener(observed, psf, balance, workers=args.workers), args.repeat)
    print(
        f"wiener: skimage {t_ref:.3f} s, ours {t_ours:.3f} s, ratio {t_ref / t_ours:.2f}, "
        f"max |diff| {np.max(np.abs(ours - ref)):.2e}"
    )

    tv_iter = 20
    t_tv, _ = best_of(lambda: classical.tv(observed, psf, mu=5e-4, num_iter=tv_iter, workers=args.workers), args.repeat)
    print(f"tv: {t_tv / tv_iter * 1e3:.1f} ms per iteration ({tv_iter} iterations, {t_tv:.2f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
