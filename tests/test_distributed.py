"""Training under torchrun: two CPU processes (gloo, loopback) end with the same weights."""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from astrodeconv.nn.distributed import setup, weights_digest  # noqa: E402
from astrodeconv.nn.store import load_model  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    from astrodeconv.nn import train

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:80, :90]
    images = []
    for k in range(2):
        x = np.full((80, 90), 0.05) + 0.4 * np.exp(-((yy - 30 - 10 * k) ** 2 + (xx - 45) ** 2) / 60.0)
        x[rng.integers(0, 80, 30), rng.integers(0, 90, 30)] += rng.uniform(0.2, 1.0, 30)
        images.append(x / x.max())
    train(images, sys.argv[1], arch="cnn1", psf_spec="gaussian:fwhm=3", sigma=0.01, samples=800, val_samples=200,
          epochs=3, batch=20, optimizer="adam", lr=0.002, patience=3, progress=False, threads=1, seed=0)
    """
)


@pytest.mark.slow
def test_two_process_torchrun_training_ends_with_identical_weights(tmp_path):
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    out = tmp_path / "model"
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
           "--master_port", str(_free_port()), str(script), str(out)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    meta = json.loads((out / "meta.json").read_text())
    ddp = meta["ddp"]
    assert ddp["world_size"] == 2 and ddp["backend"] == "gloo"
    assert len(set(ddp["rank_weights_sha256"])) == 1  # identical weights on both ranks
    model, _, _ = load_model(out)
    assert weights_digest(model) == ddp["rank_weights_sha256"][0]  # the saved model is theirs
    with open(out / "history.csv") as fh:
        val = [float(row["val_loss"]) for row in csv.DictReader(fh)]
    assert len(val) == 3 and val[-1] < val[0] and meta["best_val_loss"] < meta["initial_val_loss"]
    assert not (out / "checkpoint.pt").exists()


def test_single_process_is_not_distributed(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    ctx = setup()
    assert (ctx.rank, ctx.world, ctx.main, ctx.active) == (0, 1, True, False)
    net = torch.nn.Linear(2, 1)
    assert ctx.wrap(net) is net and ctx.gather(3) == [3]
    digest = weights_digest(net)
    assert len(digest) == 64
    with torch.no_grad():
        net.weight[0, 0] += 1e-6
    assert weights_digest(net) != digest  # the digest sees the smallest change of a weight
