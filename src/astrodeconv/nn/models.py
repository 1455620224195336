"""Registry of restoration networks (timm-like: :func:`create_model`, :func:`list_models`).

Every registered network is a fully convolutional ``torch.nn.Module`` working on tensors of
shape ``(B, 1, H, W)`` and returning ``(B, 1, H - 2 m, W - 2 m)`` where ``m`` is its
``margin``: the number of pixels lost on each side by its "valid" convolutions. Output
pixel ``(i, j)`` is computed from the input window ``[i, i + 2 m] x [j, j + 2 m]``, centred
on input pixel ``(i + m, j + m)``; the receptive field is ``2 m + 1`` pixels wide.

Examples
--------
>>> import torch
>>> net = create_model("cnn3")
>>> net.margin, tuple(net(torch.zeros(2, 1, 32, 32)).shape)
(9, (2, 1, 14, 14))
>>> sorted(list_models())
['cnn1', 'cnn3', 'restorer']
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Callable

import torch
from torch import nn

from ..checks import MAX_CHANNELS, MAX_KERNEL, int_between, weights_within
from ..errors import InputError

__all__ = ["CNN1", "CNN3", "create_model", "list_models", "model_info", "register_model"]


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows about a network without building it.

    Attributes
    ----------
    name : str
        Registry name.
    builder : callable
        ``builder(**kwargs) -> nn.Module``.
    margin : int
        Pixels lost per side by the default architecture.
    description : str
        One line.
    """

    name: str
    builder: Callable[..., nn.Module]
    margin: int
    description: str


_REGISTRY: dict[str, ModelInfo] = {}


def register_model(name: str, margin: int, description: str = "") -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model builder under ``name``.

    Parameters
    ----------
    name : str
        Registry name (must be new).
    margin : int
        Pixels lost per side by the built network (checked by the tests with an impulse).
    description : str
        One line shown by :func:`list_models` users.
    """

    def decorator(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        doc = description or (builder.__doc__ or "").strip().split("\n")[0]
        _REGISTRY[name] = ModelInfo(name, builder, int(margin), doc)
        return builder

    return decorator


def list_models() -> list[str]:
    """Names of the registered networks."""
    return list(_REGISTRY)


def model_info(name: str) -> ModelInfo:
    """Registry entry of ``name``; an :class:`~astrodeconv.errors.InputError` lists the choices."""
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise InputError(f"unknown model architecture {name!r}; available: {', '.join(list_models())}") from None


def create_model(name: str, **kwargs: Any) -> nn.Module:
    """Build the registered network ``name`` (fresh random weights, float32, CPU).

    Parameters
    ----------
    name : str
        A name from :func:`list_models`.
    **kwargs
        Passed to the architecture's constructor.

    Returns
    -------
    model : torch.nn.Module
        Has an integer attribute ``margin`` and maps ``(B, 1, H, W)`` to
        ``(B, 1, H - 2 margin, W - 2 margin)``.
    """
    info = model_info(name)
    try:
        model = info.builder(**kwargs)
    except TypeError as exc:
        raise InputError(f"model {name!r} does not accept {sorted(kwargs)}: {exc}") from None
    return model


def _glorot_(module: nn.Module) -> None:
    """Keras 1's default initialisation: Glorot-uniform kernels, zero biases."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def conv_margin(kernel_sizes: list[int]) -> int:
    """Pixels lost per side by a stack of stride-1 "valid" convolutions.

    A stack shrinks the image by ``sum(k - 1)``; that total must be even for the output
    grid to be centred on the input grid.

    Examples
    --------
    >>> conv_margin([10, 6, 5])
    9
    """
    total = sum(int(k) - 1 for k in kernel_sizes)
    if total % 2:
        raise InputError(f"kernel sizes {kernel_sizes} shrink the image by an odd {total} pixels; the output would not be centred")
    return total // 2


class CNN3(nn.Sequential):
    """The paper's 3-layer network (Flamary 2017, Fig. 1).

    ``Conv(1 -> 64, 10 x 10)``, ReLU, ``Conv(64 -> 16, 6 x 6)``, ReLU,
    ``Conv(16 -> 1, 5 x 5)``, ReLU; every convolution "valid" with stride 1. A 32 x 32
    input gives a 14 x 14 output. The receptive field is 19 x 19 (10 + 6 + 5 - 2), so the
    margin is 9 pixels per side (the paper's text says an 18 x 18 window). The final ReLU
    makes the output non-negative, the paper's positivity prior.

    Parameters
    ----------
    channels : tuple of int
        Feature maps of the two hidden layers, (64, 16) in the paper.
    kernels : tuple of int
        Square kernel sides, (10, 6, 5) in the paper.

    Shapes
    ------
    input ``(B, 1, H, W)`` -> output ``(B, 1, H - 18, W - 18)`` with the defaults.
    """

    def __init__(self, channels: tuple[int, int] = (64, 16), kernels: tuple[int, int, int] = (10, 6, 5)) -> None:
        if len(channels) != 2 or len(kernels) != 3:
            raise InputError(f"cnn3 needs 2 channel counts and 3 kernel sides, got {channels!r} and {kernels!r}")
        c1, c2 = (int_between(c, "cnn3 channels", 1, MAX_CHANNELS) for c in channels)
        k1, k2, k3 = (int_between(k, "cnn3 kernels", 1, MAX_KERNEL) for k in kernels)
        weights_within(c1 * k1**2 + c1 * c2 * k2**2 + c2 * k3**2, "cnn3")
        super().__init__(
            nn.Conv2d(1, c1, k1),
            nn.ReLU(inplace=True),
            nn.Conv2d(c1, c2, k2),
            nn.ReLU(inplace=True),
            nn.Conv2d(c2, 1, k3),
            nn.ReLU(inplace=True),
        )
        self.margin = conv_margin([k1, k2, k3])
        _glorot_(self)


class CNN1(nn.Sequential):
    """One linear convolution filter, no activation (the paper's "1-CNN").

    A single ``Conv(1 -> 1, 19 x 19)`` "valid" filter with a bias. The paper's text says an
    18 x 18 filter and its released code used 17 x 17; we use 19 x 19, the true window of
    :class:`CNN3`, which keeps the margin symmetric (9 pixels per side) so both networks share
    the same patches and tiling. It is a learned Wiener-like filter.

    Parameters
    ----------
    kernel : int
        Odd side of the filter, 19 by default.

    Shapes
    ------
    input ``(B, 1, H, W)`` -> output ``(B, 1, H - kernel + 1, W - kernel + 1)``.
    """

    def __init__(self, kernel: int = 19) -> None:
        kernel = int_between(kernel, "cnn1 kernel", 1, MAX_KERNEL)
        if kernel % 2 == 0:
            raise InputError(f"cnn1 kernel must be a positive odd number of pixels, got {kernel}")
        super().__init__(nn.Conv2d(1, 1, kernel))
        self.margin = kernel // 2
        _glorot_(self)


@register_model("cnn3", margin=9, description="paper's 3-layer CNN: 64@10x10, 16@6x6, 1@5x5, ReLU, margin 9")
def cnn3(**kwargs: Any) -> CNN3:
    """Paper's 3-layer CNN (see :class:`CNN3`)."""
    return CNN3(**kwargs)


@register_model("cnn1", margin=9, description="one linear 19x19 filter (paper's 1-CNN), margin 9")
def cnn1(**kwargs: Any) -> CNN1:
    """Single linear 19 x 19 filter (see :class:`CNN1`)."""
    return CNN1(**kwargs)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable scalars in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def receptive_field_margin(model: nn.Module, size: int = 41) -> int:
    """Measure a model's margin with a one-pixel impulse.

    A float64 copy of the model gets positive weights and biases (so that every ReLU is
    active and no change is hidden by a zero activation), then the outputs for a constant
    image and for the same image with its centre pixel raised by 1 are compared. Output
    ``(i, j)`` changes when its window ``[i, i + 2 m] x [j, j + 2 m]`` holds the impulse, so
    the changed outputs form a square of side ``2 m + 1``.

    Parameters
    ----------
    model : nn.Module
        Maps ``(1, 1, size, size)`` to ``(1, 1, size - 2 m, size - 2 m)``; not modified.
    size : int
        Side of the probe image; must exceed ``4 m + 1``.

    Returns
    -------
    margin : int
        ``(side of the changed square - 1) / 2``.

    Examples
    --------
    >>> receptive_field_margin(create_model("cnn3"))
    9
    """
    probe_model = copy.deepcopy(model).double()
    with torch.no_grad():
        for p in probe_model.parameters():
            p.copy_(p.abs() + 1e-3)
        base = torch.ones(1, 1, size, size, dtype=torch.float64)
        impulse = base.clone()
        impulse[0, 0, size // 2, size // 2] += 1.0
        changed = (probe_model(impulse) - probe_model(base)).abs()[0, 0] > 0
    rows = changed.any(dim=1).nonzero().flatten()
    cols = changed.any(dim=0).nonzero().flatten()
    side_r = int(rows.max() - rows.min()) + 1
    side_c = int(cols.max() - cols.min()) + 1
    if side_r != side_c:
        raise ValueError(f"receptive field is not square: {side_r} x {side_c}")
    return (side_r - 1) // 2


@register_model("restorer", margin=34, description="Wiener bank (5 x 49x49, from the PSF) + residual CNN of ten 3x3 convolutions, margin 34")
def restorer(**kwargs: Any) -> nn.Module:
    """Wiener bank + residual CNN (see :class:`astrodeconv.nn.restorer.Restorer`)."""
    from .restorer import Restorer

    return Restorer(**kwargs)
