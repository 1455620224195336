"""A trained model is a folder: ``config.json``, ``weights.pt``, ``meta.json``.

* ``config.json`` — :class:`ModelConfig`: architecture, PSF spec, noise, patch sizes and
  training settings; small, frozen, validated; unknown keys are an error.
* ``weights.pt`` — the network's ``state_dict`` (``torch.save``; loaded with
  ``weights_only=True``).
* ``meta.json`` — provenance: training images and their sha256, held-out images,
  epochs run, best validation loss, package version, timings.

Files are written to a temporary name in the folder and renamed into place.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError

__all__ = ["CONFIG_FILE", "META_FILE", "WEIGHTS_FILE", "ModelConfig", "load_model", "read_config", "save_model"]

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.pt"
META_FILE = "meta.json"
OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("constant", "cosine")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild a trained network and to know what it was trained for.

    Attributes
    ----------
    arch : str
        Registered architecture (:func:`astrodeconv.nn.list_models`).
    margin : int
        Pixels lost per side by ``arch`` (checked against the registry).
    psf : str
        PSF spec the network was trained for (:func:`astrodeconv.psf.parse_spec`).
    sigma : float
        Gaussian noise standard deviation of the training observations, normalised units.
    patch_size : int
        Side of the training input windows, pixels (32 in the paper).
    target_size : int
        Side of the training targets, ``patch_size - 2 margin`` (14 in the paper).
    optimizer : {"sgd", "adam"}
        Optimiser; ``momentum`` and ``nesterov`` apply to SGD only.
    lr, momentum : float
        Learning rate and SGD momentum (0.01 and 0.9 in the paper).
    schedule : {"constant", "cosine"}
        Learning rate per epoch: constant (the paper) or ``lr (1 + cos(pi e / epochs)) / 2``
        for epoch ``e = 0, 1, ...``.
    nesterov : bool
        Nesterov momentum for SGD (True in the paper).
    batch : int
        Minibatch size (50 in the paper).
    epochs : int
        Maximum number of epochs (30 in the paper).
    samples, val_samples : int
        Training and validation pairs (100,000 and 50,000 in the paper).
    patience : int
        Epochs without a new best validation loss before stopping (0: stop at the first
        epoch that does not improve, as in the paper).
    seed : int
        Seed of the simulation, the patch positions, the initial weights and the shuffling.
    loss : str
        Training loss; only ``"mse"``.

    Examples
    --------
    >>> cfg = ModelConfig.from_dict({"arch": "cnn3", "sigma": 0.01})
    >>> cfg.target_size, cfg.lr
    (14, 0.01)
    >>> ModelConfig.from_dict({"arch": "cnn3", "colour": 1})
    Traceback (most recent call last):
    ...
    astrodeconv.errors.InputError: model config has unknown key(s) ['colour']; allowed: arch, margin, psf, sigma, patch_size, target_size, optimizer, lr, schedule, momentum, nesterov, batch, epochs, samples, val_samples, patience, seed, loss, model_kwargs
    """

    arch: str = "cnn3"
    margin: int = 9
    psf: str = "airy-paper"
    sigma: float = 0.01
    patch_size: int = 32
    target_size: int = 14
    optimizer: str = "sgd"
    lr: float = 0.01
    schedule: str = "constant"
    momentum: float = 0.9
    nesterov: bool = True
    batch: int = 50
    epochs: int = 30
    samples: int = 100_000
    val_samples: int = 50_000
    patience: int = 0
    seed: int = 0
    loss: str = "mse"
    model_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        from .models import model_info

        info = model_info(self.arch)
        if not isinstance(self.model_kwargs, dict):
            raise InputError(f"config model_kwargs must be a mapping of constructor arguments, got {self.model_kwargs!r}")
        if not isinstance(self.margin, int) or (self.margin != info.margin and not self.model_kwargs):
            raise InputError(f"config margin {self.margin!r} does not match architecture {self.arch!r} (margin {info.margin})")
        if not isinstance(self.psf, str) or not self.psf:
            raise InputError(f"config psf must be a non-empty PSF spec string, got {self.psf!r}")
        _check_number(self.sigma, "sigma", minimum=0.0)
        for name in ("patch_size", "target_size", "batch", "epochs", "samples", "val_samples"):
            _check_int(getattr(self, name), name, minimum=1)
        for name in ("patience", "seed"):
            _check_int(getattr(self, name), name, minimum=0)
        if self.target_size != self.patch_size - 2 * self.margin:
            raise InputError(
                f"target_size {self.target_size} must equal patch_size - 2 * margin = {self.patch_size - 2 * self.margin}"
            )
        if self.optimizer not in OPTIMIZERS:
            raise InputError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        _check_number(self.lr, "lr", minimum=0.0, strict=True)
        if self.schedule not in SCHEDULES:
            raise InputError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        _check_number(self.momentum, "momentum", minimum=0.0)
        if not isinstance(self.nesterov, bool):
            raise InputError(f"nesterov must be true or false, got {self.nesterov!r}")
        if self.loss != "mse":
            raise InputError(f"loss must be 'mse', got {self.loss!r}")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ModelConfig":
        """Build from a mapping; unknown keys are an :class:`InputError`.

        Missing ``margin`` and ``target_size`` are derived from ``arch`` and ``patch_size``.
        """
        if not isinstance(data, dict):
            raise InputError(f"model config must be a JSON object, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise InputError(f"model config has unknown key(s) {unknown}; allowed: {', '.join(names)}")
        data = dict(data)
        if "margin" not in data:
            from .models import model_info

            data["margin"] = model_info(data.get("arch", cls.arch)).margin
        if "target_size" not in data:
            data["target_size"] = data.get("patch_size", cls.patch_size) - 2 * data["margin"]
        return cls(**data)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able mapping (the inverse of :meth:`from_dict`)."""
        return dataclasses.asdict(self)


def _check_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"config {name} must be an integer >= {minimum}, got {value!r}")


def _check_number(value: Any, name: str, minimum: float, strict: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)
    if not ok:
        raise InputError(f"config {name} must be a finite number {'>' if strict else '>='} {minimum}, got {value!r}")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder and ``os.replace``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=False) + "\n").encode())


def atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then ``os.replace``."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def _first_line(exc: BaseException) -> str:
    """The telling line of a (torch) exception message, without ANSI codes, at most 200 characters."""
    lines = [line.strip() for line in str(exc).replace("\x1b[1m", "").replace("\x1b[0m", "").splitlines() if line.strip()]
    telling = [line for line in lines if "Unsupported global" in line or "WeightsUnpickler" in line]
    return ((telling or lines or [type(exc).__name__])[0])[:200]


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a training checkpoint with ``torch.load(..., weights_only=True)``: tensors and plain values only.

    A file whose pickle would build any other object (and so could run code) is refused, as
    is a corrupt one, with an :class:`InputError`.
    """
    import torch

    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt or unsafe file
        raise InputError(f"cannot read checkpoint {path} ({_first_line(exc)}); a checkpoint holds tensors and plain "
                         "values only: delete it to start afresh") from None
    if not isinstance(ckpt, dict):
        raise InputError(f"checkpoint {path} does not hold a dict (got {type(ckpt).__name__}); delete it to start afresh")
    return ckpt


def save_model(model: Any, folder: str | Path, config: ModelConfig, meta: dict[str, Any] | None = None) -> Path:
    """Write a model folder.

    Parameters
    ----------
    model : torch.nn.Module
        Network built from ``config.arch``; its ``state_dict`` is saved (moved to CPU).
    folder : str or Path
        Created if missing.
    config : ModelConfig
    meta : dict, optional
        JSON-able provenance (``astrodeconv_version`` is added).

    Returns
    -------
    folder : Path
    """
    from .. import __version__

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    atomic_torch_save(state, folder / WEIGHTS_FILE)
    atomic_write_json(folder / CONFIG_FILE, config.to_dict())
    atomic_write_json(folder / META_FILE, {"astrodeconv_version": __version__, **(meta or {})})
    return folder


def read_config(folder: str | Path) -> ModelConfig:
    """Read and validate ``folder/config.json``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"model folder not found: {folder} (expected a folder with {CONFIG_FILE} and {WEIGHTS_FILE})")
    path = folder / CONFIG_FILE
    if not path.is_file():
        raise InputError(f"{folder} is not a model folder: {CONFIG_FILE} is missing")
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read {path} as JSON: {exc}") from None
    try:
        return ModelConfig.from_dict(data)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    except TypeError as exc:
        raise InputError(f"{path}: invalid config: {exc}") from None


def load_model(folder: str | Path, device: str = "cpu") -> tuple[Any, ModelConfig, dict[str, Any]]:
    """Load a model folder written by :func:`save_model`.

    Parameters
    ----------
    folder : str or Path
    device : str
        Torch device to put the network on.

    Returns
    -------
    model : torch.nn.Module
        In eval mode, gradients disabled.
    config : ModelConfig
    meta : dict
        Contents of ``meta.json`` (empty if that file is missing).

    Raises
    ------
    InputError
        Missing folder or files, invalid config, unreadable weights, or weights that do
        not fit the configured architecture.
    """
    import torch

    from .models import create_model

    folder = Path(folder)
    config = read_config(folder)
    wpath = folder / WEIGHTS_FILE
    if not wpath.is_file():
        raise InputError(f"{folder} is not a complete model folder: {WEIGHTS_FILE} is missing")
    try:
        state = torch.load(wpath, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a corrupt file
        raise InputError(f"cannot read weights {wpath} (corrupt or not a torch state_dict): {_first_line(exc)}") from None
    if not isinstance(state, dict):
        raise InputError(f"{wpath} does not hold a state_dict (got {type(state).__name__})")
    model = create_model(config.arch, **config.model_kwargs)
    if getattr(model, "margin", config.margin) != config.margin:
        raise InputError(f"{folder / CONFIG_FILE}: margin {config.margin} does not match the architecture built from "
                         f"model_kwargs {config.model_kwargs} (margin {model.margin})")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise InputError(
            f"weights in {wpath} do not fit architecture {config.arch!r} of {folder / CONFIG_FILE}: "
            + " ".join(line.strip() for line in first[:4])
        ) from None
    meta: dict[str, Any] = {}
    mpath = folder / META_FILE
    if mpath.is_file():
        try:
            meta = json.loads(mpath.read_text())
        except ValueError as exc:
            raise InputError(f"cannot read {mpath} as JSON: {exc}") from None
    model.eval().requires_grad_(False)
    return model.to(device), config, meta
