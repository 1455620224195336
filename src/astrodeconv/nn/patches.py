"""Training pairs for the restoration networks.

A pair is an ``in_size x in_size`` window of a simulated observation (blurred + noisy,
:func:`astrodeconv.forward.observe`) and the centred ``(in_size - 2 margin)`` square of the
clean image at the same place: output pixel ``(i, j)`` of a network with that ``margin``
corresponds to input pixel ``(i + margin, j + margin)``. Positions are drawn uniformly
at random in each image (every window lies entirely inside the image), the same number
of samples from each image (the remainder spread at random).

Arrays are float32: inputs ``(N, 1, in_size, in_size)``, targets ``(N, 1, out, out)``.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ..errors import InputError
from ..forward import observe

__all__ = ["extract_pairs", "make_dataset", "simulate_observations"]


def simulate_observations(
    images: list[np.ndarray], psf: np.ndarray, sigma: float, rng: np.random.Generator
) -> list[np.ndarray]:
    """Observe each clean image once: ``observe(x, psf, sigma, rng)`` (zero boundary).

    Parameters
    ----------
    images : list of ndarray, each (H, W)
        Clean images, normalised (the paper: ``max(0, I / max I)``).
    psf : ndarray, shape (h, w)
        Unit-sum PSF.
    sigma : float
        Standard deviation of the Gaussian noise, image units.
    rng : numpy.random.Generator
        Source of the noise (consumed in image order).

    Returns
    -------
    observed : list of ndarray, each (H, W), float32
    """
    return [observe(x, psf, sigma=sigma, rng=rng).astype(np.float32) for x in images]


def _counts(n: int, k: int, rng: np.random.Generator) -> np.ndarray:
    counts = np.full(k, n // k, dtype=np.int64)
    counts[rng.choice(k, size=n % k, replace=False)] += 1
    return counts


def extract_pairs(
    clean: list[np.ndarray],
    observed: list[np.ndarray],
    n: int,
    rng: np.random.Generator,
    in_size: int = 32,
    margin: int = 9,
) -> tuple[np.ndarray, np.ndarray]:
    """Draw ``n`` (observed window, clean centre) pairs at random positions.

    Parameters
    ----------
    clean, observed : list of ndarray, each (H_k, W_k)
        Matching clean and observed images (same shape pairwise).
    n : int
        Number of pairs, split evenly over the images.
    rng : numpy.random.Generator
        Positions and the split of the remainder.
    in_size : int
        Side of the input window, pixels (32 in the paper).
    margin : int
        Pixels lost per side by the network (9 for ``cnn3``); the target side is
        ``in_size - 2 margin`` (14 in the paper).

    Returns
    -------
    inputs : ndarray, shape (n, 1, in_size, in_size), float32
    targets : ndarray, shape (n, 1, in_size - 2 margin, in_size - 2 margin), float32

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.random((40, 50))
    >>> inp, tgt = extract_pairs([x], [x], 5, rng, in_size=12, margin=3)
    >>> inp.shape, tgt.shape, bool(np.allclose(inp[:, :, 3:9, 3:9], tgt))
    ((5, 1, 12, 12), (5, 1, 6, 6), True)
    """
    n = int(n)
    in_size, margin = int(in_size), int(margin)
    out = in_size - 2 * margin
    if n < 0:
        raise InputError(f"number of samples must be >= 0, got {n}")
    if out < 1:
        raise InputError(f"patch side {in_size} leaves no output with margin {margin}; need in_size > {2 * margin}")
    if len(clean) != len(observed) or not clean:
        raise InputError(f"need as many observed as clean images (at least one), got {len(observed)} and {len(clean)}")
    for k, (c, o) in enumerate(zip(clean, observed)):
        if c.shape != o.shape or c.ndim != 2:
            raise InputError(f"image {k}: clean {c.shape} and observed {o.shape} must be the same 2-D shape")
        if min(c.shape) < in_size:
            raise InputError(f"image {k} of shape {c.shape} is smaller than the {in_size} x {in_size} patch")
    inputs = np.empty((n, 1, in_size, in_size), dtype=np.float32)
    targets = np.empty((n, 1, out, out), dtype=np.float32)
    start = 0
    for c, o, count in zip(clean, observed, _counts(n, len(clean), rng)):
        if count == 0:
            continue
        rows = rng.integers(0, c.shape[0] - in_size + 1, size=count)
        cols = rng.integers(0, c.shape[1] - in_size + 1, size=count)
        win_o = sliding_window_view(np.asarray(o, dtype=np.float32), (in_size, in_size))
        win_c = sliding_window_view(np.asarray(c, dtype=np.float32), (out, out))
        inputs[start : start + count, 0] = win_o[rows, cols]
        targets[start : start + count, 0] = win_c[rows + margin, cols + margin]
        start += count
    # Mix images so that a prefix of the arrays is a fair sample too.
    order = rng.permutation(n)
    return inputs[order], targets[order]


def make_dataset(
    images: list[np.ndarray],
    psf: np.ndarray,
    sigma: float,
    samples: int,
    val_samples: int,
    rng: np.random.Generator,
    in_size: int = 32,
    margin: int = 9,
) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """Simulate one observation per image and draw training and validation pairs from it.

    As in the paper, validation pairs come from the same images (other random positions).

    Returns
    -------
    train : (inputs, targets)
        ``(samples, 1, in_size, in_size)`` and ``(samples, 1, out, out)``, float32.
    val : (inputs, targets)
        Same with ``val_samples``.
    """
    images = [np.asarray(x, dtype=np.float64) for x in images]
    observed = simulate_observations(images, psf, sigma, rng)
    clean = [x.astype(np.float32) for x in images]
    train = extract_pairs(clean, observed, samples, rng, in_size, margin)
    val = extract_pairs(clean, observed, val_samples, rng, in_size, margin)
    return train, val
