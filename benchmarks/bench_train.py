"""Training speed with the paper's settings (run by hand; prints figures).

Measures samples per second of SGD (lr 0.01, momentum 0.9, Nesterov, batch 50) on
32 x 32 -> 14 x 14 pairs for ``cnn3`` (and ``cnn1``), plus the validation throughput,
and estimates the minutes per fold of the paper (100,000 training + 50,000 validation
pairs per epoch, at most 30 epochs). Also times the 48 x 48 windows used for the shipped
model.

Run::

    python benchmarks/bench_train.py [--threads 2] [--steps 60]
"""

from __future__ import annotations

import argparse
import time


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch

    from astrodeconv.nn.models import create_model
    from astrodeconv.nn.training import _evaluate, available_threads

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=available_threads())
    parser.add_argument("--steps", type=int, default=60)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads")
    rng = np.random.default_rng(0)
    for arch, patch, batch, optname in [("cnn3", 32, 50, "sgd"), ("cnn3", 48, 32, "adam"), ("cnn1", 32, 50, "sgd")]:
        torch.manual_seed(0)
        net = create_model(arch).to(memory_format=torch.channels_last)
        if optname == "sgd":
            opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, nesterov=True)
        else:
            opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        out = patch - 2 * net.margin
        n = batch * args.steps
        x = torch.from_numpy(rng.random((n, 1, patch, patch), dtype=np.float32))
        y = torch.from_numpy(rng.random((n, 1, out, out), dtype=np.float32))
        perm = torch.randperm(n)

        def epoch(steps: int) -> None:
            net.train()
            for s in range(steps):
                idx = perm[s * batch : (s + 1) * batch]
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.mse_loss(net(x[idx]), y[idx])
                loss.backward()
                opt.step()

        epoch(5)
        t0 = time.perf_counter()
        epoch(args.steps)
        train_rate = n / (time.perf_counter() - t0)
        t0 = time.perf_counter()
        _evaluate(net, x, y)
        val_rate = n / (time.perf_counter() - t0)
        epoch_s = 100_000 / train_rate + 50_000 / val_rate
        print(
            f"{arch} {patch}x{patch}->{out}x{out} {optname} batch {batch}: {train_rate:7.0f} samples/s train, "
            f"{val_rate:7.0f} samples/s validation; {train_rate * out * out / 1e6:5.2f} M target px/s; "
            f"paper epoch (100k + 50k val) {epoch_s:6.1f} s; 30-epoch fold {30 * epoch_s / 60:5.1f} min"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
