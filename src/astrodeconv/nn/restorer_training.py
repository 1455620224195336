"""Train the restorer on fresh random scenes every epoch (resumable).

Each epoch simulates ``scenes`` new observations (:func:`astrodeconv.nn.scenes.simulate_scene`)
from the training images, passes each through the network's Wiener bank for its own PSF,
and draws ``patches`` windows per scene; the CNN then takes Adam steps on minibatches of
those windows (squared error in noise units). The data of epoch ``e`` come from the seed
``(seed, e)``, so a run killed at any time and resumed ends as an uninterrupted one would.
Validation uses fixed scenes drawn once from ``(seed, "validation")``.

After every epoch ``out_dir`` is a usable model folder (:mod:`astrodeconv.nn.store`:
``weights.pt`` of the best epoch so far, ``config.json``, ``meta.json``, ``history.csv``)
plus ``checkpoint.pt`` to resume from; ``finished`` in ``meta.json`` says whether all
epochs ran.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..checks import positive_float, positive_int
from ..errors import InputError
from .restorer import restorer_config, signal_to_noise
from .scenes import SETTINGS, simulate_scene
from .store import ModelConfig, atomic_torch_save, load_checkpoint, save_model
from .training import CHECKPOINT_FILE, HISTORY_FILE, write_history, load_images, torch_threads

__all__ = ["UNIVERSAL_REFERENCE_SNR", "scene_batch", "train_restorer"]

SCENE_SIZE = 256
#: ``reference_snr`` of the universal restorer: the bank's balances apply as given to an image
#: whose 99.9th percentile is 60 sigma (the paper's sigma = 0.01 of the maximum on a typical
#: sky image), and scale as ``(60 / snr) ** 2`` otherwise.
UNIVERSAL_REFERENCE_SNR = 60.0


def scene_batch(
    model: Any, scenes: list[Any], patches: int, out_size: int, rng: np.random.Generator
) -> tuple[Any, Any, Any]:
    """Bank features, targets and weights of ``patches`` random windows per scene.

    A window's weight is one over the mean squared error of the best of the network's input
    channels (the bank's Wiener filters and the observation) on its scene, so the loss is a
    squared error relative to the best linear filter of the bank: every scene counts alike
    whatever its noise level and dynamic range (a plain squared error in noise units would be
    ruled by the bright stars of the least noisy scenes).

    Returns
    -------
    features : torch.Tensor, shape (N, C + 1, out_size + 2 depth, out_size + 2 depth)
    targets : torch.Tensor, shape (N, 1, out_size, out_size)
    weights : torch.Tensor, shape (N,)
    """
    import torch

    h, d = model.feature_margin, model.depth
    side = out_size + 2 * d
    feats, targets, weights = [], [], []
    with torch.no_grad():
        for scene in scenes:
            model.set_photon(scene.photon).set_psf(scene.psf, signal_to_noise(scene.observed))
            f = model.features(torch.from_numpy(scene.observed)[None, None])[0]
            t = torch.from_numpy(scene.truth[h:-h, h:-h])
            weight = 1.0 / max(float(torch.mean((f - t) ** 2, dim=(1, 2)).min()), 1e-6)
            if f.shape[-1] < side:
                raise InputError(f"scene of side {scene.observed.shape[0]} is too small for windows of {side} px")
            rows = rng.integers(0, f.shape[1] - side + 1, size=patches)
            cols = rng.integers(0, f.shape[2] - side + 1, size=patches)
            for r, c in zip(rows, cols):
                feats.append(f[:, r : r + side, c : c + side])
                targets.append(t[r + d : r + d + out_size, c + d : c + d + out_size])
                weights.append(weight)
    return torch.stack(feats), torch.stack(targets)[:, None], torch.tensor(weights, dtype=torch.float32)


def _draw_scenes(images: list[np.ndarray], setting: Any, n: int, rng: np.random.Generator) -> list[Any]:
    picks = rng.integers(len(images), size=n)
    scenes = []
    for k in picks:
        if setting.instrument_fraction and rng.random() < setting.instrument_fraction:
            from .instrument_scenes import simulate_instrument_scene

            scenes.append(simulate_instrument_scene(images[k], rng, SCENE_SIZE))
        else:
            scenes.append(simulate_scene(images[k], setting, rng, SCENE_SIZE))
    return scenes


def reference_snr_for(setting: str, reference_snr: float | None = None, fixed_bank: bool = False) -> float | None:
    """The bank's reference signal-to-noise ratio of a new run: given, ``None`` for a fixed bank, else the setting's.

    ``universal`` scenes span many noise levels, so their bank follows each scene's
    signal-to-noise ratio (:data:`UNIVERSAL_REFERENCE_SNR`); ``paper`` scenes have one level.
    """
    if fixed_bank and reference_snr is not None:
        raise InputError("--fixed-bank and --reference-snr exclude each other; give one")
    if reference_snr is None and setting in ("universal", "realistic") and not fixed_bank:
        return UNIVERSAL_REFERENCE_SNR
    return reference_snr


def train_restorer(
    images: Sequence[np.ndarray | str | os.PathLike],
    out_dir: str | os.PathLike,
    setting: str = "paper",
    epochs: int = 70,
    scenes: int = 64,
    patches: int = 16,
    out_size: int = 48,
    batch: int = 32,
    lr: float = 1e-3,
    val_scenes: int = 32,
    seed: int = 0,
    init: str | os.PathLike | None = None,
    model_kwargs: dict[str, Any] | None = None,
    reference_snr: float | None = None,
    snr_window: int | None = None,
    instrument_fraction: float | None = None,
    psf_error_fraction: float | None = None,
    threads: int | None = None,
    progress: bool = True,
    extra_meta: dict[str, Any] | None = None,
    stop_after: int | None = None,
) -> Path:
    """Train (or resume training) a :class:`~astrodeconv.nn.restorer.Restorer`.

    Parameters
    ----------
    images : list of (H, W) arrays or FITS paths
        Clean training images (files are normalised to ``max(0, I / max I)``).
    out_dir : str or Path
        Model folder; an existing ``checkpoint.pt`` there is resumed.
    setting : {"paper", "universal"}
        Scene distribution (:data:`astrodeconv.nn.scenes.SETTINGS`).
    epochs : int
        Epochs; the learning rate follows a cosine from ``lr`` to 0 over them.
    scenes, patches : int
        New scenes per epoch and windows drawn from each.
    out_size : int
        Side of the output windows, pixels.
    batch : int
        Windows per Adam step.
    lr : float
        Initial Adam learning rate.
    val_scenes : int
        Fixed validation scenes (``patches`` windows each).
    seed : int
    init : str or Path, optional
        Model folder of a restorer whose weights start the training (fine-tuning).
    model_kwargs : dict, optional
        :class:`Restorer` constructor arguments (ignored with ``init``).
    reference_snr : float, optional
        Scale the bank to each scene's signal-to-noise ratio with this reference
        (:class:`~astrodeconv.nn.restorer.Restorer`); also applied to an ``init`` model that
        had fixed balances, keeping its weights. ``None``: as the model (or ``init``) has it.
    snr_window : int, optional
        Give the model a local bank (:class:`~astrodeconv.nn.restorer.Restorer`
        ``snr_window``): each pixel's balances follow the signal-to-noise ratio within this
        many pixels, not the image's; also applied to an ``init`` model, keeping its weights.
    instrument_fraction : float, optional
        Share of the scenes drawn as instruments see the sky (0 to 1; needs GalSim when above
        0), in place of the setting's (``realistic``: 0.3).
    psf_error_fraction : float, optional
        Share of the other scenes whose network is handed a wrong PSF
        (:func:`astrodeconv.nn.scenes.wrong_psf`), in place of the setting's (0).
    threads : int, optional
        Torch threads (``None``: the cores this process may use).
    stop_after : int, optional
        Stop (resumably) after this many epochs of this call, e.g. to share a machine.

    Returns
    -------
    out_dir : Path
    """
    import torch

    from .models import create_model
    from .store import load_model

    if setting not in SETTINGS:
        raise InputError(f"setting must be one of {sorted(SETTINGS)}, got {setting!r}")
    for name, value in (("epochs", epochs), ("scenes", scenes), ("patches", patches), ("val_scenes", val_scenes),
                        ("batch", batch), ("out_size", out_size)):
        positive_int(value, name)
    positive_float(lr, "lr", "learning rate")
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out} exists and is not a folder; give a new folder name for the model")
    if (out / "weights.pt").exists() and not (out / CHECKPOINT_FILE).exists():
        raise InputError(f"{out} already holds a finished model; choose another folder")
    if out.is_dir() and any(out.iterdir()) and not (out / CHECKPOINT_FILE).exists():
        raise InputError(f"{out} is not empty and holds no unfinished run to continue; choose a new folder")
    scene_setting = SETTINGS[setting]
    fractions = {name: float(value) for name, value in (("instrument_fraction", instrument_fraction),
                                                        ("psf_error_fraction", psf_error_fraction)) if value is not None}
    for name, value in fractions.items():
        if not 0.0 <= value <= 1.0:
            raise InputError(f"{name} must be within 0 to 1, got {value}")
        if setting == "paper" and value > 0:
            raise InputError(f"the paper setting has one PSF and noise level: {name} must be 0 with it, got {value}")
    scene_setting = replace(scene_setting, **fractions)
    arrays, records = load_images(images)
    out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / CHECKPOINT_FILE
    torch.manual_seed(seed)
    if init is not None:
        model, _, _ = load_model(init)
        model.requires_grad_(True)
    else:
        model = create_model("restorer", **(model_kwargs or {}))
    changes = {} if reference_snr is None or model.reference_snr == float(reference_snr) else \
        {"reference_snr": float(reference_snr)}
    if snr_window is not None and model.snr_window != int(snr_window):
        changes["snr_window"] = int(snr_window)
    if changes:
        rebuilt = create_model("restorer", **{**restorer_config(model), **changes})
        rebuilt.load_state_dict(model.state_dict())
        model = rebuilt
    model.train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    history: list[dict[str, Any]] = []
    best_val, best_state, start = float("inf"), None, 0
    settings = {"images": records, "setting": setting, "epochs": int(epochs), "scenes": int(scenes),
                "patches": int(patches), "out_size": int(out_size), "batch": int(batch), "lr": float(lr),
                "val_scenes": int(val_scenes), "seed": int(seed), "init": str(init) if init else None,
                "model_kwargs": dict(model_kwargs or {}), "reference_snr": reference_snr,
                **({} if snr_window is None else {"snr_window": int(snr_window)}),
                **fractions}
    if ckpt_path.is_file():
        ckpt = load_checkpoint(ckpt_path)
        if ckpt.get("settings") != json.loads(json.dumps(settings, default=str)):
            saved, wanted = ckpt.get("settings") or {}, json.loads(json.dumps(settings, default=str))
            differ = sorted(k for k in {*saved, *wanted} if saved.get(k) != wanted.get(k))
            raise InputError(f"{out} holds an unfinished run with other settings ({', '.join(differ)} differ); "
                             "resume it with the same arguments, or choose another folder")
        model.load_state_dict(ckpt["model"])
        optimiser.load_state_dict(ckpt["optimiser"])
        history, best_val, best_state, start = ckpt["history"], ckpt["best_val"], ckpt["best_state"], ckpt["epoch"]
    val_rng = np.random.default_rng([seed, 1 << 30])
    with torch_threads(threads):
        val_f, val_t, val_w = scene_batch(model, _draw_scenes(arrays, scene_setting, val_scenes, val_rng), patches, out_size, val_rng)
        config = ModelConfig(arch="restorer", margin=model.margin, psf="airy-paper" if setting == "paper" else "any",
                             sigma=0.01 if setting == "paper" else 0.0, patch_size=out_size + 2 * model.margin,
                             target_size=out_size, optimizer="adam", lr=lr, schedule="cosine", batch=batch,
                             epochs=epochs, samples=scenes * patches, val_samples=val_scenes * patches, seed=seed,
                             model_kwargs=restorer_config(model) if model_kwargs or init or reference_snr or snr_window
                             else {})
        meta = {"training_images": records, "setting": setting,
                "instrument_fraction": scene_setting.instrument_fraction,
                "psf_error_fraction": scene_setting.psf_error_fraction, "scenes_per_epoch": scenes,
                "patches_per_scene": patches, "init": str(init) if init else None, **(extra_meta or {})}
        for epoch in range(start, epochs):
            t0 = time.perf_counter()
            rng = np.random.default_rng([seed, epoch])
            feats, targets, weights = scene_batch(model, _draw_scenes(arrays, scene_setting, scenes, rng), patches, out_size, rng)
            for group in optimiser.param_groups:
                group["lr"] = float(lr * 0.5 * (1.0 + np.cos(np.pi * epoch / epochs)))
            model.train()
            order = torch.from_numpy(rng.permutation(feats.shape[0]))
            total = 0.0
            for s in range(0, len(order), batch):
                idx = order[s : s + batch]
                optimiser.zero_grad(set_to_none=True)
                loss = _weighted_mse(model.head(feats[idx]), targets[idx], weights[idx])
                loss.backward()
                optimiser.step()
                total += float(loss.detach()) * len(idx)
            model.eval()
            with torch.no_grad():
                val = float(sum(_weighted_mse(model.head(val_f[s : s + 64]), val_t[s : s + 64], val_w[s : s + 64])
                                * len(val_w[s : s + 64]) for s in range(0, val_f.shape[0], 64)) / len(val_w))
            if not (np.isfinite(val) and np.isfinite(total)):
                raise InputError(f"training diverged: the loss became {val} at epoch {epoch + 1}; lower the learning "
                                 f"rate (lr={lr}); the last good weights stay in {out}")
            improved = val < best_val
            if improved:
                best_val = val
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            history.append({"epoch": epoch + 1, "loss": total / len(order), "val_loss": val, "best": improved,
                            "seconds": round(time.perf_counter() - t0, 2)})
            atomic_torch_save({"model": model.state_dict(), "optimiser": optimiser.state_dict(), "epoch": epoch + 1,
                               "history": history, "best_val": best_val, "best_state": best_state,
                               "settings": json.loads(json.dumps(settings, default=str))}, ckpt_path)
            _save_best(model, best_state, out, config, {**meta, "finished": epoch + 1 == epochs,
                                                        "epochs_run": epoch + 1, "best_val_loss": best_val})
            write_history(out / HISTORY_FILE, history)
            if progress:
                print(f"epoch {epoch + 1}/{epochs} loss {total / len(order):.4f} val {val:.4f}"
                      f"{' *' if improved else ''} ({history[-1]['seconds']:.0f} s)", flush=True)
            if stop_after is not None and epoch + 1 - start >= stop_after and epoch + 1 < epochs:
                return out
    ckpt_path.unlink(missing_ok=True)
    return out


def _weighted_mse(out: Any, target: Any, weights: Any) -> Any:
    """Mean over windows of ``weight * mean squared error of the window``."""
    return (weights * ((out - target) ** 2).mean(dim=(1, 2, 3))).mean()


def _save_best(model: Any, best_state: dict[str, Any], out: Path, config: ModelConfig, meta: dict[str, Any]) -> None:
    import copy

    import torch

    best = copy.deepcopy(model)
    best.load_state_dict(best_state)
    if not all(bool(torch.isfinite(p).all()) for p in best.state_dict().values() if p.is_floating_point()):
        raise InputError(f"training left non-finite weights; no model was written to {out}: lower the learning rate")
    save_model(best, out, config, meta)
