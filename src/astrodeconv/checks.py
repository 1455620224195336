"""Validators of user-supplied values: the one place that says what a valid number, tile or image is.

Every function returns the value converted to its plain type or raises
:class:`~astrodeconv.errors.InputError` naming the bad value and what was expected. This
module imports nothing of the package but :mod:`astrodeconv.errors`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .errors import InputError

__all__ = ["DEFAULT_CHUNK", "DEFAULT_TILE", "MAX_CHANNELS", "MAX_DEPTH", "MAX_KERNEL", "as_integer", "int_between", "finite_image", "float_above", "network_margin", "parse_value", "real_array", "nonnegative_float", "odd_int",
           "positive_float", "positive_int", "tile_side"]

#: Output tile side, pixels, that a network restores per pass (whole image below it); also the
#: window read from disk per step when streaming.
DEFAULT_TILE = 1024
#: Side of a Dask chunk, pixels (each chunk is restored by tiles of ``tile``).
DEFAULT_CHUNK = 2048


def as_integer(value: Any, name: str) -> int:
    """``value`` as an ``int`` when it is a whole number (``3``, ``3.0``), else an :class:`InputError`.

    Examples
    --------
    >>> as_integer(5.0, "size")
    5
    """
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be an integer, got {value!r}") from None
    if not np.isfinite(number) or number != int(number):
        raise InputError(f"{name} must be an integer, got {value}")
    return int(number)


def positive_int(value: Any, name: str) -> int:
    """A whole number >= 1 (booleans refused).

    Examples
    --------
    >>> positive_int(3, "num_iter")
    3
    """
    if isinstance(value, bool):
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    try:
        as_int = int(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name} must be a positive integer, got {value!r}") from None
    if as_int != value or as_int < 1:
        raise InputError(f"{name} must be a positive integer, got {value!r}")
    return as_int


#: Largest network a model folder may describe: channels per layer, kernel side, layers (a bigger
#: config is refused before its weights are allocated).
MAX_CHANNELS, MAX_KERNEL, MAX_DEPTH = 256, 129, 64
#: Most weights a network may have (80 MB as float32).
MAX_WEIGHTS = 20_000_000


def weights_within(count: int, what: str) -> int:
    """``count`` weights of network ``what``, refused beyond :data:`MAX_WEIGHTS` before anything is allocated."""
    if count > MAX_WEIGHTS:
        raise InputError(f"{what} would have {count:,} weights, more than the limit of {MAX_WEIGHTS:,}; "
                         "a model folder with such a config is refused")
    return count


def int_between(value: Any, name: str, minimum: int, maximum: int) -> int:
    """A whole number in ``[minimum, maximum]``.

    Examples
    --------
    >>> int_between(64, "channels", 1, MAX_CHANNELS)
    64
    """
    number = as_integer(value, name)
    if not minimum <= number <= maximum:
        raise InputError(f"{name} must be between {minimum} and {maximum}, got {number}")
    return number


def odd_int(value: Any, name: str) -> int:
    """A positive odd whole number (a grid centred on a pixel)."""
    value = as_integer(value, name)
    if value < 1:
        raise InputError(f"{name} must be a positive integer, got {value}")
    if value % 2 == 0:
        raise InputError(f"{name} must be odd so the PSF is centred on a pixel, got {value}")
    return value


def float_above(value: Any, name: str, bound: float, expected: str) -> float:
    """A finite number > ``bound``; the error says ``{name} must be {expected}``.

    Examples
    --------
    >>> float_above("3.5", "moffat beta", 1.0, "> 1 for a finite flux")
    3.5
    """
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{name} must be {expected}, got {value!r}") from None
    if not (np.isfinite(number) and number > bound):
        raise InputError(f"{name} must be {expected}, got {number}")
    return number


def positive_float(value: Any, name: str, unit: str = "number") -> float:
    """A finite number > 0; ``unit`` names what it counts in the message ("number of pixels")."""
    return float_above(value, name, 0.0, f"a positive {unit}")


def nonnegative_float(value: Any, name: str, strict: bool = False) -> float:
    """A finite number >= 0 (> 0 with ``strict``)."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    ok = np.isfinite(number) and (number > 0 if strict else number >= 0)
    if not ok:
        raise InputError(f"{name} must be a finite number {'>' if strict else '>='} 0, got {value!r}")
    return number


def tile_side(tile: Any, allow_none: bool = False) -> int | None:
    """A tile (or chunk) side: a positive integer number of pixels, or ``None`` when allowed."""
    if tile is None and allow_none:
        return None
    if isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 1:
        suffix = " or None" if allow_none else ""
        raise InputError(f"tile must be a positive integer number of pixels{suffix}, got {tile!r}")
    return int(tile)


def parse_value(text: str) -> Any:
    """A parameter typed as text: an integer, a float, None, True or False, else the text (outer quotes removed).

    Nothing is evaluated.

    Examples
    --------
    >>> [parse_value(t) for t in ("30", "1e-3", "none", "'single'", "abc")]
    [30, 0.001, None, 'single', 'abc']
    """
    raw = str(text).strip()
    words = {"none": None, "true": True, "false": False}
    if raw.lower() in words:
        return words[raw.lower()]
    for kind in (int, float):
        try:
            return kind(raw)
        except ValueError:
            pass
    return raw[1:-1] if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"" else raw


def network_margin(model: Any) -> int:
    """The integer ``margin`` (pixels lost per side) that a network must carry to be tiled."""
    margin = getattr(model, "margin", None)
    if isinstance(margin, bool) or not isinstance(margin, int) or margin < 0:
        raise InputError(f"model must have a non-negative integer 'margin' attribute, got {margin!r}")
    return margin


def real_array(values: Any, name: str) -> np.ndarray:
    """``values`` as a float64 array; complex, text and object arrays are refused."""
    array = np.asarray(values)
    if array.dtype.kind not in "biuf":
        raise InputError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def finite_image(image: Any, name: str = "image") -> np.ndarray:
    """A 2-D float64 array with at least one finite pixel that is not constant.

    Non-finite pixels are kept (they are masked by :mod:`astrodeconv.masks`).
    """
    image = real_array(image, name)
    if image.ndim != 2:
        raise InputError(f"{name} must be 2-D, got shape {image.shape}")
    finite = np.isfinite(image)
    if not finite.any():
        raise InputError(f"{name} has no finite pixel (all NaN or infinite)")
    values = image[finite]
    if values.min() == values.max():
        raise InputError(f"{name} is constant (every finite pixel equals {values.min():g}); nothing to restore")
    return image
