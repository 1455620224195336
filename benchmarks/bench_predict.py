"""Prediction speed of ``cnn3`` on this CPU (run by hand; prints figures).

* peak: float32 matmul GFLOP/s (``n x n @ n x n``) measured in the same run (and bfloat16 for
  reference);
* seconds per 1024 x 1024 image: plain ``nn.Sequential`` (NCHW, ``torch.no_grad``) against
  our path (:func:`astrodeconv.nn.predict.deconvolve`: channels-last, ``inference_mode``,
  tiles) and variants (whole image vs tile sizes, TorchScript freeze, bfloat16);
* fraction of peak: useful work ``87,328 FLOP x H x W`` (91.6 GFLOP per megapixel: the three
  convolutions per output pixel) divided by the time, over the matmul peak;
* scaling over 256^2 .. 4096^2 with the fitted log-log slope (1 = linear in pixels).

Run::

    python benchmarks/bench_predict.py [--threads 2] [--repeat 3] [--max-size 4096]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

FLOP_PER_PIXEL = 2 * (64 * 1 * 10 * 10 + 16 * 64 * 6 * 6 + 1 * 16 * 5 * 5)  # 87,328


def best_time(func, repeat: int) -> float:
    func()  # warm-up
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return min(times)


def matmul_peak(torch, dtype, n: int = 2048, repeat: int = 5) -> float:
    a = torch.randn(n, n).to(dtype)
    b = torch.randn(n, n).to(dtype)
    return 2 * n**3 / best_time(lambda: a @ b, repeat) / 1e9


def main(argv: list[str] | None = None) -> int:
    import torch

    from astrodeconv.nn.models import create_model
    from astrodeconv.nn.predict import DEFAULT_TILE, deconvolve

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--max-size", type=int, default=4096)
    parser.add_argument("--skip-variants", action="store_true")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, default tile {DEFAULT_TILE}")
    torch.manual_seed(0)
    net = create_model("cnn3").eval().requires_grad_(False)
    rng = np.random.default_rng(0)
    size = 1024
    image = rng.random((size, size)).astype(np.float32)
    useful = FLOP_PER_PIXEL * size * size / 1e9
    peak = matmul_peak(torch, torch.float32)
    peak_bf16 = matmul_peak(torch, torch.bfloat16)
    print(f"peak: float32 matmul {peak:.1f} GFLOP/s, bfloat16 matmul {peak_bf16:.1f} GFLOP/s")
    print(f"useful work per 1024^2 image: {useful:.1f} GFLOP -> float32 limit {useful / peak:.3f} s")

    padded = torch.from_numpy(np.pad(image, 9, mode="symmetric"))[None, None]

    def plain():
        with torch.no_grad():
            return net(padded)

    results: dict[str, float] = {"plain nn.Sequential (NCHW, no_grad, whole)": best_time(plain, args.repeat)}
    ours = best_time(lambda: deconvolve(image, net), args.repeat)
    results["ours: deconvolve() default"] = ours
    ref = deconvolve(image, net, tile=size)
    if not args.skip_variants:
        for tile, batch in [(size, 1), (512, 1), (256, 1), (256, 4), (128, 4), (128, 16), (64, 16)]:
            results[f"deconvolve tile={tile} batch_tiles={batch}"] = best_time(
                lambda: deconvolve(image, net, tile=tile, batch_tiles=batch), args.repeat
            )
        cl = create_model("cnn3").eval().requires_grad_(False)
        cl.load_state_dict(net.state_dict())
        cl = cl.to(memory_format=torch.channels_last)
        xc = padded.contiguous(memory_format=torch.channels_last)
        frozen = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.trace(cl, xc)))

        def jit():
            with torch.no_grad():
                return frozen(xc)

        results["TorchScript freeze+optimize_for_inference (whole)"] = best_time(jit, args.repeat)
        bf = deconvolve(image, net, precision="bfloat16")
        results["deconvolve precision=bfloat16"] = best_time(
            lambda: deconvolve(image, net, precision="bfloat16"), args.repeat
        )
        print(f"bfloat16 max |difference| from float32 (random weights, random image): {np.abs(bf - ref).max():.2e}")
    print(f"\n{'variant':55s} {'s/1024^2':>9s} {'GFLOP/s':>8s} {'of peak':>8s} {'vs plain':>8s}")
    base = results["plain nn.Sequential (NCHW, no_grad, whole)"]
    for name, sec in results.items():
        print(f"{name:55s} {sec:9.3f} {useful / sec:8.1f} {useful / sec / peak:8.1%} {base / sec:7.2f}x")

    sizes = [s for s in (256, 512, 1024, 2048, 4096) if s <= args.max_size]
    secs = []
    print("\nscaling (deconvolve default):")
    for s in sizes:
        im = rng.random((s, s)).astype(np.float32)
        sec = best_time(lambda: deconvolve(im, net), max(1, args.repeat if s <= 1024 else 1))
        secs.append(sec)
        print(f"  {s:5d}^2: {sec:8.3f} s  {FLOP_PER_PIXEL * s * s / sec / 1e9:6.1f} GFLOP/s")
    slope = np.polyfit(np.log(np.square(sizes)), np.log(secs), 1)[0]
    print(f"log-log slope of time vs pixels: {slope:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
