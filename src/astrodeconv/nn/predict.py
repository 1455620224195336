"""Apply a restoration network to a whole image, in one pass or by tiles.

The networks lose ``margin`` pixels on each side ("valid" convolutions), so the image is
first padded by ``margin`` pixels per side; the output then has the input's shape. The
padding mode is the ``boundary`` argument:

* ``"symmetric"`` (default) — the image mirrored about its edge, edge pixel repeated
  (NumPy's ``"symmetric"``, the ``"reflect"`` boundary of :func:`astrodeconv.forward.blur`);
  border pixels see a plausible continuation of the sky;
* ``"reflect"`` — mirrored about the edge pixel, not repeated (NumPy's ``"reflect"``);
* ``"edge"`` — the edge pixel repeated;
* ``"zero"`` — zeros (dark sky).

Tiling: output tiles of ``tile x tile`` pixels, each computed from the padded window
``tile + 2 margin`` wide (the margin is the overlap), so tiled and whole-image outputs
agree to float32 rounding. When ``tile`` does not divide the image, the last tile of a
row or column is moved back to end at the image's edge (it overlaps its neighbour), so
every tile has the same shape and tiles can be batched. Memory is bounded by
``batch_tiles`` tiles: the first layer of ``cnn3`` holds ``64 (tile + 9)^2`` floats per tile.

Speed: on CPU the network runs under ``torch.inference_mode`` with channels-last tensors
(oneDNN convolutions); ``precision="bfloat16"`` is opt-in (its outputs differ from float32 by
~1e-3, so tiled and whole-image outputs are no longer equal to 1e-5). The figures, and the
default tile side :data:`astrodeconv.checks.DEFAULT_TILE`, are measured by
``benchmarks/bench_predict.py``.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from ..checks import DEFAULT_TILE, network_margin, tile_side
from ..errors import InputError

__all__ = ["BOUNDARIES", "DEFAULT_TILE", "PIXELS_PER_PASS", "PRECISIONS", "deconvolve", "resolve_device", "tile_origins"]

BOUNDARIES = {"symmetric": "symmetric", "reflect": "reflect", "edge": "edge", "zero": "constant"}
PRECISIONS = ("float32", "bfloat16")
#: Pixels per forward pass aimed at when ``batch_tiles=None``.
PIXELS_PER_PASS = 1024 * 1024


def resolve_device(device: str) -> Any:
    """Turn ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"auto"`` into a ``torch.device``.

    ``"auto"`` picks CUDA when available, else the CPU. Asking for CUDA without one is an
    :class:`InputError`.
    """
    import torch

    if not isinstance(device, str):
        raise InputError(f"device must be 'cpu', 'cuda' or 'auto', got {device!r}")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or device.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise InputError(f"device {device!r} asked for but CUDA is not available; use device='cpu' or 'auto'")
        return torch.device(device)
    raise InputError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")


def tile_origins(length: int, tile: int) -> list[int]:
    """Start offsets of output tiles of side ``tile`` covering ``range(length)``.

    The last tile is moved back to end at ``length`` (so it may overlap the previous one).

    Examples
    --------
    >>> tile_origins(37, 16)
    [0, 16, 21]
    >>> tile_origins(10, 16)
    [0]
    """
    if tile >= length:
        return [0]
    starts = list(range(0, length - tile, tile))
    starts.append(length - tile)
    return starts


def _batches(items: list[tuple[int, int]], size: int) -> Iterator[list[tuple[int, int]]]:
    for s in range(0, len(items), size):
        yield items[s : s + size]


def deconvolve(
    image: np.ndarray,
    model: Any,
    tile: int | None = None,
    device: str = "cpu",
    batch_tiles: int | None = None,
    boundary: str = "symmetric",
    precision: str = "float32",
) -> np.ndarray:
    """Restore an image with a network, returning an image of the same shape.

    Parameters
    ----------
    image : ndarray, shape (H, W)
        Observation in the network's units (normalised as for training: the paper's
        networks expect ``max(0, I / max I)``-like values). Must be finite.
    model : torch.nn.Module
        Fully convolutional network with an integer ``margin`` attribute, mapping
        ``(B, 1, h, w)`` to ``(B, 1, h - 2 margin, w - 2 margin)``.
    tile : int, optional
        Output tile side in pixels. ``None`` (default): the whole image in one pass when
        both sides are at most :data:`DEFAULT_TILE`, else the fewest equal tiles of at most
        that side along each axis. A tile at least as large as the image is one pass over
        the whole image.
    device : {"cpu", "cuda", "auto"}
        Where to compute; the model is moved there (in place, as ``Module.to`` does, and
        to the channels-last memory format on CPU).
    batch_tiles : int, optional
        Tiles per forward pass (memory is proportional to it); ``None``: as many as fit in
        about ``PIXELS_PER_PASS`` (1024^2) input pixels (tiles with their margins), at least one.
    boundary : {"symmetric", "reflect", "edge", "zero"}
        How the image is padded by the margin (see the module docstring).
    precision : {"float32", "bfloat16"}
        Arithmetic of the convolutions. ``"bfloat16"`` (CPU autocast, or CUDA autocast)
        is faster on CPUs with AVX512-BF16 and changes outputs by ~1e-3; float32 is the default.

    Returns
    -------
    restored : ndarray, shape (H, W), float64

    Examples
    --------
    >>> from astrodeconv.nn import create_model
    >>> net = create_model("cnn1")
    >>> y = np.random.default_rng(0).random((37, 31))
    >>> a = deconvolve(y, net)
    >>> b = deconvolve(y, net, tile=8)
    >>> a.shape, bool(np.allclose(a, b, atol=1e-5))
    ((37, 31), True)
    """
    import torch

    image = np.asarray(image)
    if image.ndim != 2 or image.size == 0:
        raise InputError(f"image must be a non-empty 2-D array, got shape {image.shape}")
    if not np.all(np.isfinite(image)):
        raise InputError(
            f"image has {int(np.sum(~np.isfinite(image)))} non-finite pixels; fill them first "
            "(astrodeconv.methods.restore does so and masks them in the result)"
        )
    margin = network_margin(model)
    if boundary not in BOUNDARIES:
        raise InputError(f"boundary must be one of {sorted(BOUNDARIES)}, got {boundary!r}")
    if precision not in PRECISIONS:
        raise InputError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if batch_tiles is not None and (
        isinstance(batch_tiles, bool) or not isinstance(batch_tiles, (int, np.integer)) or batch_tiles < 1
    ):
        raise InputError(f"batch_tiles must be a positive integer or None, got {batch_tiles!r}")
    H, W = image.shape
    if tile is None:
        # Balanced tiles of at most DEFAULT_TILE (1042 px -> two of 521, not 1024 + a 1024 moved back).
        th, tw = (-(-n // -(-n // DEFAULT_TILE)) for n in (H, W))
    else:
        tile = tile_side(tile, allow_none=True)
        th, tw = min(tile, H), min(tile, W)
    if batch_tiles is None:  # bounded by the input windows (tile + margins), which is what the network holds
        batch_tiles = max(1, PIXELS_PER_PASS // ((th + 2 * margin) * (tw + 2 * margin)))
    dev = resolve_device(device)
    mode = BOUNDARIES[boundary]
    if mode == "reflect" and margin >= min(H, W):
        raise InputError(f"boundary 'reflect' needs an image larger than the margin {margin}, got shape {image.shape}")
    padded = np.pad(np.asarray(image, dtype=np.float32), margin, mode=mode)
    src = torch.from_numpy(padded)
    model = model.to(dev).eval()
    channels_last = dev.type == "cpu"
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    out = np.empty((H, W), dtype=np.float32)
    origins = [(r, c) for r in tile_origins(H, th) for c in tile_origins(W, tw)]
    ph, pw = th + 2 * margin, tw + 2 * margin
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16, enabled=precision == "bfloat16")
    with torch.inference_mode(), autocast:
        for group in _batches(origins, int(batch_tiles)):
            batch = torch.stack([src[r : r + ph, c : c + pw] for r, c in group]).unsqueeze(1)
            batch = batch.to(dev, non_blocking=True)
            if channels_last:
                batch = batch.contiguous(memory_format=torch.channels_last)
            pred = model(batch).float().cpu().numpy()
            if pred.shape[-2:] != (th, tw):
                raise InputError(
                    f"model output {pred.shape[-2:]} for input {(ph, pw)} does not match its margin {margin}; "
                    "is 'margin' right?"
                )
            for k, (r, c) in enumerate(group):
                out[r : r + th, c : c + tw] = pred[k, 0]
    return out.astype(np.float64)
