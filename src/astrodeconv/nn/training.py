"""Train a restoration network on patches of simulated observations (resumable).

The defaults are the paper's (Flamary 2017, Sect. II-C): squared error, SGD with learning
rate 0.01, momentum 0.9 and Nesterov acceleration, minibatches of 50, at most 30 epochs,
100,000 training and 50,000 validation pairs (32 x 32 observed -> centred 14 x 14 clean),
stopping as soon as the validation loss stops improving, and keeping the best weights.

During training ``out_dir`` holds ``checkpoint.pt`` (model, optimiser, epoch, best
weights, early-stopping state, shuffling RNG state; rewritten atomically after every
epoch) and ``history.csv`` (one row per epoch). A run killed at any moment is continued
with ``resume=True`` from its last complete epoch and ends exactly as an uninterrupted
run would (the pairs are regenerated from the seed and checked against a fingerprint).
When training ends the folder becomes a model folder (see :mod:`astrodeconv.nn.store`)
and the checkpoint is removed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import InputError
from .store import (
    CONFIG_FILE,
    META_FILE,
    WEIGHTS_FILE,
    ModelConfig,
    atomic_torch_save,
    atomic_write_bytes,
    load_checkpoint,
    save_model,
)

__all__ = ["CHECKPOINT_FILE", "HISTORY_FILE", "load_images", "train"]

CHECKPOINT_FILE = "checkpoint.pt"
HISTORY_FILE = "history.csv"
HISTORY_FIELDS = ("epoch", "loss", "val_loss", "best", "seconds")


def available_threads() -> int:
    """CPU cores this process may run on (``os.sched_getaffinity`` where available)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


@contextmanager
def torch_threads(n: int | None) -> Iterator[int]:
    """Temporarily set ``torch.set_num_threads`` (``None``: the available cores)."""
    import torch

    old = torch.get_num_threads()
    n = available_threads() if n is None else int(n)
    if n < 1:
        raise InputError(f"threads must be a positive integer, got {n}")
    torch.set_num_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(old)


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _sha256_array(x: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(x, dtype=np.float64).tobytes()).hexdigest()


def load_images(
    images: Sequence[np.ndarray | str | os.PathLike], image_names: Sequence[str] | None = None
) -> tuple[list[np.ndarray], list[dict[str, Any]]]:
    """Turn training images (arrays or FITS paths) into normalised arrays plus provenance.

    FITS files are read with :func:`astrodeconv.io.read_image`, non-finite pixels set to 0
    and normalised as the paper does, ``max(0, I / max I)``. Arrays are used as given
    (they must already be clean images in normalised units) after a finiteness check.

    Returns
    -------
    arrays : list of ndarray, each (H, W), float64
    records : list of dict
        One per image: ``name``, ``shape``, ``sha256`` (of the float64 pixels used) and,
        for files, ``path`` and ``file_sha256``.
    """
    from ..forward import normalise

    if isinstance(images, (str, os.PathLike, np.ndarray)) or len(images) == 0:
        raise InputError("images must be a non-empty list of 2-D arrays or FITS paths")
    if image_names is not None and len(image_names) != len(images):
        raise InputError(f"image_names has {len(image_names)} names for {len(images)} images")
    arrays, records = [], []
    for k, item in enumerate(images):
        record: dict[str, Any] = {}
        if isinstance(item, (str, os.PathLike)):
            from ..io import read_image

            path = Path(item)
            data, _ = read_image(path)
            data = np.where(np.isfinite(data), data, 0.0)
            x = normalise(data)[0]
            name = path.name
            for suffix in (".gz", ".fits", ".fit", ".fts"):
                name = name[: -len(suffix)] if name.endswith(suffix) else name
            record.update(name=name, path=str(path), file_sha256=_sha256_file(path))
        else:
            x = np.asarray(item, dtype=np.float64)
            if x.ndim != 2:
                raise InputError(f"training image {k} must be 2-D, got shape {x.shape}")
            if not np.all(np.isfinite(x)):
                raise InputError(f"training image {k} has non-finite pixels; replace them (e.g. by 0) first")
            record["name"] = f"array{k}"
        if x.size == 0 or x.max() == x.min():
            raise InputError(f"training image {record.get('path', k)} is constant or empty: nothing to learn from")
        if image_names is not None:
            record["name"] = str(image_names[k])
        record.update(shape=list(x.shape), sha256=_sha256_array(x))
        arrays.append(x)
        records.append(record)
    return arrays, records


def write_history(path: Path, rows: list[dict[str, Any]]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: row[k] for k in HISTORY_FIELDS})
    atomic_write_bytes(path, buf.getvalue().encode())


def _evaluate(model: Any, inputs: Any, targets: Any, chunk: int = 1000) -> float:
    import torch

    model.eval()
    total = 0.0
    with torch.inference_mode():
        for s in range(0, inputs.shape[0], chunk):
            out = model(inputs[s : s + chunk])
            total += float(torch.sum((out - targets[s : s + chunk]) ** 2))
    return total / (targets.numel() or 1)


def _make_optimizer(model: Any, cfg: ModelConfig) -> Any:
    import torch

    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0)
    return torch.optim.Adam(model.parameters(), lr=cfg.lr)


def _epoch_lr(cfg: ModelConfig, epoch: int) -> float:
    """Learning rate of epoch ``epoch`` (0-based)."""
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + np.cos(np.pi * epoch / cfg.epochs))
    return cfg.lr


def early_stopping(val: float, best: float, bad_epochs: int, patience: int) -> tuple[bool, int, bool]:
    """One epoch of the stopping rule.

    Parameters
    ----------
    val : float
        This epoch's validation loss.
    best : float
        Best validation loss so far (``inf`` before the first epoch).
    bad_epochs : int
        Consecutive epochs without improvement before this one.
    patience : int
        Epochs without improvement tolerated (0: stop at the first, as in the paper).

    Returns
    -------
    improved : bool
    bad_epochs : int
    stop : bool

    Examples
    --------
    >>> early_stopping(0.5, 1.0, 0, 0)
    (True, 0, False)
    >>> early_stopping(1.1, 1.0, 0, 0)
    (False, 1, True)
    >>> early_stopping(1.1, 1.0, 0, 1)
    (False, 1, False)
    """
    if val < best:
        return True, 0, False
    return False, bad_epochs + 1, bad_epochs + 1 > patience


def train(
    images: Sequence[np.ndarray | str | os.PathLike],
    out_dir: str | os.PathLike,
    arch: str = "cnn3",
    psf_spec: str = "airy-paper",
    sigma: float = 0.01,
    samples: int = 100_000,
    val_samples: int = 50_000,
    epochs: int = 30,
    batch: int = 50,
    seed: int = 0,
    resume: bool = False,
    optimizer: str = "sgd",
    lr: float = 0.01,
    patience: int = 0,
    progress: bool = True,
    image_names: Sequence[str] | None = None,
    *,
    patch_size: int = 32,
    schedule: str = "constant",
    momentum: float = 0.9,
    nesterov: bool = True,
    threads: int | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> Path:
    """Train a network and write it as a model folder.

    Parameters
    ----------
    images : list of (H, W) arrays or FITS paths
        Clean training images. Files are normalised to ``max(0, I / max I)``; arrays are
        used as given (already normalised).
    out_dir : str or Path
        Model folder to create. It must be empty or absent unless ``resume=True``.
    arch : str
        Registered architecture (``"cnn3"``, ``"cnn1"``).
    psf_spec : str
        PSF of the simulated observations (:func:`astrodeconv.psf.parse_spec`).
    sigma : float
        Gaussian noise standard deviation, normalised units.
    samples, val_samples : int
        Number of training / validation pairs.
    epochs : int
        Maximum number of epochs.
    batch : int
        Minibatch size.
    seed : int
        Seeds the simulation, patch positions, initial weights and shuffling.
    resume : bool
        Continue from ``out_dir/checkpoint.pt`` if present (else start afresh); a finished
        model folder is returned as it is.
    optimizer : {"sgd", "adam"}
        SGD uses ``momentum`` and ``nesterov``.
    lr : float
        Learning rate.
    patience : int
        Epochs without improvement of the validation loss tolerated before stopping
        (0 = the paper: stop at the first one).
    progress : bool
        Show a tqdm bar per epoch with the running loss and the last validation loss.
    image_names : list of str, optional
        Names recorded in ``meta.json`` (default: file names or ``array<k>``).
    patch_size : int
        Side of the input windows (32 in the paper); targets are ``patch_size - 2 margin``.
    schedule : {"constant", "cosine"}
        Learning rate per epoch (constant in the paper; cosine decays it to 0).
    momentum : float
        SGD momentum.
    nesterov : bool
        Nesterov momentum for SGD.
    threads : int, optional
        ``torch.set_num_threads`` during training (default: the cores available).
    extra_meta : dict, optional
        Added to ``meta.json`` (e.g. held-out images).

    Returns
    -------
    out_dir : Path
        The model folder (``config.json``, ``weights.pt``, ``meta.json``, ``history.csv``).
    """
    import torch

    from .. import __version__
    from ..psf import parse_spec
    from .distributed import setup, weights_digest
    from .models import create_model, model_info
    from .patches import make_dataset

    margin = model_info(arch).margin
    cfg = ModelConfig(
        arch=arch,
        margin=margin,
        psf=psf_spec,
        sigma=float(sigma),
        patch_size=int(patch_size),
        target_size=int(patch_size) - 2 * margin,
        optimizer=optimizer,
        lr=float(lr),
        schedule=schedule,
        momentum=float(momentum),
        nesterov=bool(nesterov),
        batch=int(batch),
        epochs=int(epochs),
        samples=int(samples),
        val_samples=int(val_samples),
        patience=int(patience),
        seed=int(seed),
    )
    out = Path(out_dir)
    ckpt_path = out / CHECKPOINT_FILE
    if out.exists() and not out.is_dir():
        raise InputError(f"out_dir {out} exists and is not a folder; give a new folder name for the model")
    if not resume and out.is_dir() and any(out.iterdir()):
        raise InputError(f"out_dir {out} is not empty; choose a new folder, or pass resume=True (--resume) to continue a run there")
    if resume and not ckpt_path.exists() and (out / WEIGHTS_FILE).exists() and (out / META_FILE).exists():
        return out  # already finished
    ctx = setup()  # under torchrun: DDP (see .distributed); rank 0 alone writes files
    ctx.barrier()  # every rank has checked out_dir before rank 0 writes to it
    if ctx.main:
        out.mkdir(parents=True, exist_ok=True)

    arrays, records = load_images(images, image_names)
    psf = parse_spec(psf_spec)
    rng = np.random.default_rng(cfg.seed)
    (xtr, ytr), (xva, yva) = make_dataset(arrays, psf, cfg.sigma, cfg.samples, cfg.val_samples, rng, cfg.patch_size, margin)
    fingerprint = hashlib.sha256(
        b"".join(r["sha256"].encode() for r in records) + xtr[:64].tobytes() + yva[-64:].tobytes()
    ).hexdigest()
    xtr_t, ytr_t = torch.from_numpy(xtr), torch.from_numpy(ytr)
    xva_t, yva_t = torch.from_numpy(xva), torch.from_numpy(yva)

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = create_model(arch)
    model = model.to(memory_format=torch.channels_last)  # about 10 % faster on CPU
    opt = _make_optimizer(model, cfg)
    net = ctx.wrap(model)  # DDP averages the gradients over the ranks
    gen = torch.Generator().manual_seed(cfg.seed)
    start_epoch, best_val, best_epoch, bad_epochs, stopped = 0, float("inf"), 0, 0, False
    best_state = {k: v.clone() for k, v in model.state_dict().items()}
    history: list[dict[str, Any]] = []
    elapsed = 0.0
    initial_val = None
    if resume and ckpt_path.exists():
        ckpt = load_checkpoint(ckpt_path)
        if ckpt.get("config") != cfg.to_dict() or ckpt.get("fingerprint") != fingerprint:
            raise InputError(
                f"checkpoint {ckpt_path} was written for other settings or images; "
                f"resume with the same arguments ({ckpt.get('config')}) or use a new out_dir"
            )
        model.load_state_dict(ckpt["model"])
        opt.load_state_dict(ckpt["optimizer"])
        gen.set_state(ckpt["shuffle_rng"])
        best_state, best_val, best_epoch = ckpt["best_state"], ckpt["best_val"], ckpt["best_epoch"]
        bad_epochs, stopped, history = ckpt["bad_epochs"], ckpt["stopped"], ckpt["history"]
        start_epoch, elapsed = ckpt["epoch"], ckpt.get("seconds", 0.0)
        initial_val = ckpt.get("initial_val")
        if ctx.main:
            write_history(out / HISTORY_FILE, history)  # it may lag the checkpoint by one epoch after a kill
    elif not resume and ckpt_path.exists():  # pragma: no cover - excluded by the emptiness check
        raise InputError(f"{ckpt_path} exists; pass resume=True")

    from tqdm.auto import tqdm

    n = xtr_t.shape[0]
    steps = (n + cfg.batch - 1) // cfg.batch // ctx.world  # per rank; rank r takes batches r, r + world, ...
    with torch_threads(threads):
        if initial_val is None:
            initial_val = _evaluate(model, xva_t, yva_t)
        epoch = start_epoch
        while epoch < cfg.epochs and not stopped:
            t0 = time.perf_counter()
            model.train()
            for group in opt.param_groups:
                group["lr"] = float(_epoch_lr(cfg, epoch))
            perm = torch.randperm(n, generator=gen)
            running, seen = 0.0, 0
            last_val = history[-1]["val_loss"] if history else float("nan")
            bar = tqdm(total=steps, desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not (progress and ctx.main), leave=False)
            for s in range(steps):
                b = s * ctx.world + ctx.rank
                idx = perm[b * cfg.batch : (b + 1) * cfg.batch]
                xb, yb = xtr_t[idx], ytr_t[idx]
                opt.zero_grad(set_to_none=True)
                loss = torch.nn.functional.mse_loss(net(xb), yb)
                loss.backward()
                opt.step()
                running += float(loss.detach()) * idx.numel()
                seen += idx.numel()
                if s % 20 == 0 or s == steps - 1:
                    bar.set_postfix(loss=f"{running / seen:.3e}", val_loss=f"{last_val:.3e}", refresh=False)
                bar.update(1)
            bar.close()
            val = _evaluate(model, xva_t, yva_t)
            epoch += 1
            if not (np.isfinite(val) and np.isfinite(running)):
                raise InputError(f"training diverged: the loss became {val} at epoch {epoch}; lower the learning rate "
                                 f"(lr={cfg.lr}); no model was written")
            improved, bad_epochs, stopped = early_stopping(val, best_val, bad_epochs, cfg.patience)
            if improved:
                best_val, best_epoch = val, epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            elapsed += time.perf_counter() - t0
            history.append(
                {"epoch": epoch, "loss": running / max(seen, 1), "val_loss": val, "best": int(improved), "seconds": round(elapsed, 3)}
            )
            if progress and ctx.main:
                tqdm.write(f"epoch {epoch}: loss {running / max(seen, 1):.4e}  val_loss {val:.4e}{'  *' if improved else ''}")
            state = {
                "config": cfg.to_dict(),
                "fingerprint": fingerprint,
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": opt.state_dict(),
                "shuffle_rng": gen.get_state(),
                "best_state": best_state,
                "best_val": best_val,
                "best_epoch": best_epoch,
                "bad_epochs": bad_epochs,
                "stopped": stopped,
                "history": history,
                "seconds": elapsed,
                "initial_val": initial_val,
            }
            if ctx.main:
                atomic_torch_save(state, ckpt_path)
                write_history(out / HISTORY_FILE, history)

    model.load_state_dict(best_state)
    if not all(bool(torch.isfinite(p).all()) for p in model.state_dict().values() if p.is_floating_point()):
        raise InputError(f"training left non-finite weights (lr={cfg.lr}); no model was written: lower the learning rate")
    digests = ctx.gather(weights_digest(model))
    if len(set(digests)) > 1:
        ctx.close()
        raise RuntimeError(f"distributed training ended with different weights on the ranks: {digests}")
    meta = {
        "astrodeconv_version": __version__,
        "training_images": records,
        "epochs_run": len(history),
        "best_epoch": best_epoch,
        "best_val_loss": best_val,
        "initial_val_loss": initial_val,
        "stopped_early": bool(stopped),
        "train_seconds": round(elapsed, 1),
        "torch_version": torch.__version__,
        "training": cfg.to_dict(),
        **(extra_meta or {}),
    }
    if ctx.active:
        meta["ddp"] = {"world_size": ctx.world, "backend": ctx.backend, "rank_weights_sha256": digests}
    if ctx.main:
        save_model(model, out, cfg, meta)
        ckpt_path.unlink(missing_ok=True)
    ctx.barrier()  # the model folder is complete before any rank returns
    ctx.close()
    return out
