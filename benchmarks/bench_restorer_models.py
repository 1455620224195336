"""Prediction time per megapixel of restorer models, measured in one run (run by hand; prints figures).

Each model restores the same observation (a sky image blurred by a Moffat PSF, noise sigma
0.01 of its maximum) through ``astrodeconv.methods.restore``, alternately, ``--repeat``
times; the best time of each is reported, and the ratio of each to the first::

    python benchmarks/bench_restorer_models.py OLD_MODEL_FOLDER src/astrodeconv/models/restorer-universal \\
        [--size 2048] [--repeat 3] [--threads 2]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch

    from astrodeconv.data import load_sky, sky_dir
    from astrodeconv.forward import observe
    from astrodeconv.methods import restore
    from astrodeconv.psf import moffat

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("models", nargs="+", type=Path, help="restorer model folders")
    parser.add_argument("--size", type=int, default=2048)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image", default="starfield_nsv193_dss1")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    clean = load_sky(args.image, sky_dir())
    clean = np.pad(clean, ((0, max(0, args.size - clean.shape[0])), (0, max(0, args.size - clean.shape[1]))),
                   mode="symmetric")[: args.size, : args.size]
    psf = moffat(4.0, beta=3.0)
    observed = observe(clean, psf, sigma=0.01, rng=np.random.default_rng(0))
    best = {m: float("inf") for m in args.models}
    for _ in range(args.repeat + 1):  # the first round warms up
        for model in args.models:
            start = time.perf_counter()
            restore(observed, psf, "restorer-universal", model=str(model), sigma=0.01)
            best[model] = min(best[model], time.perf_counter() - start)
    megapixels = observed.size / 1e6
    first = best[args.models[0]]
    for model in args.models:
        print(f"{model}: {best[model] / megapixels:.2f} s per megapixel ({args.size}^2, {args.threads} threads), "
              f"{best[model] / first:.2f} x the first")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
