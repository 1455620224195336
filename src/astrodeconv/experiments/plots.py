"""Figures. matplotlib is imported only when a figure is drawn."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def comparison_figure(
    panels: dict[str, np.ndarray], path: str | Path, psf: np.ndarray | None = None, zoom: int | None = 256
) -> Path:
    """Save the images of ``panels`` side by side, on one shared grey scale, as a PNG.

    Parameters
    ----------
    panels : dict of str to ndarray (H, W)
        Title -> image; all shown with the same ``sqrt`` stretch between the 0.5 and
        99.8 percentiles of the first panel, so brightness is comparable.
    path : str or Path
        Output PNG.
    psf : ndarray, optional
        Shown first, as the square root of its magnitude (as in the paper's Fig. 3).
    zoom : int, optional
        Show only the central ``zoom x zoom`` pixels (details are invisible otherwise).
    """
    plt = _pyplot()
    items = list(panels.items())
    if zoom:
        items = [(title, _centre(img, zoom)) for title, img in items]
    reference = items[0][1]
    lo, hi = np.nanpercentile(reference, [0.5, 99.8])
    count = len(items) + (psf is not None)
    ncols = min(count, 4)
    nrows = int(np.ceil(count / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.4 * nrows), squeeze=False)
    flat = list(axes.ravel())
    if psf is not None:
        ax = flat.pop(0)
        ax.imshow(np.sqrt(np.abs(psf)), cmap="gray")
        ax.set_title("PSF (sqrt)")
    for ax, (title, img) in zip(flat, items):
        shown = np.sqrt(np.clip((img - lo) / (hi - lo), 0, 1))
        ax.imshow(shown, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax.set_title(title, fontsize=9)
    for ax in axes.ravel():
        ax.set_axis_off()
    return _save(fig, path, dpi=110)


def _centre(image: np.ndarray, size: int) -> np.ndarray:
    r0 = max((image.shape[0] - size) // 2, 0)
    c0 = max((image.shape[1] - size) // 2, 0)
    return image[r0 : r0 + size, c0 : c0 + size]


def _save(fig, path: str | Path, dpi: int) -> Path:
    """Lay out, write ``fig`` as PNG and free it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)
    return Path(path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def dataset_figure(images: dict[str, np.ndarray], path: str | Path) -> Path:
    """The test images side by side (the paper's Fig. 2), each with a sqrt stretch."""
    plt = _pyplot()
    ncols = min(len(images), 3)
    nrows = int(np.ceil(len(images) / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.3 * ncols, 3.5 * nrows), squeeze=False)
    for ax, (name, img) in zip(axes.ravel(), images.items()):
        lo, hi = np.nanpercentile(img, [0.5, 99.8])
        ax.imshow(np.sqrt(np.clip((img - lo) / (hi - lo), 0, 1)), cmap="gray", interpolation="nearest")
        ax.set_title(f"{name} ({img.shape[0]} x {img.shape[1]})", fontsize=9)
    for ax in axes.ravel():
        ax.set_axis_off()
    return _save(fig, path, dpi=100)


def feature_maps_figure(
    layers: list[tuple[np.ndarray, int]],
    shape: tuple[int, int],
    path: str | Path,
    scores: list[list[dict]] | None = None,
    count: int = 6,
    size: int = 200,
) -> Path:
    """Feature maps of layers 1 and 2 of a ``cnn3`` (the paper's Fig. 4).

    Parameters
    ----------
    layers : list of (maps, offset)
        As returned by :func:`astrodeconv.experiments.features.feature_maps` for an input of ``shape``.
    shape : (H, W)
        Shape of that input; every panel shows the same central ``size x size`` input pixels.
    scores : list of list of dict, optional
        As returned by :func:`astrodeconv.experiments.features.component_correlations`. With them, the maps
        most correlated with the extended part and with the point sources are shown (half
        each), titled with both correlations; without, the ``count`` maps of largest variance.
    """
    plt = _pyplot()
    rows = []
    top, left = (shape[0] - size) // 2, (shape[1] - size) // 2
    for k, (maps, offset) in enumerate(layers[:2]):
        if scores is None:
            order = np.argsort(maps.reshape(len(maps), -1).var(axis=1))[::-1][:count]
            titles = {int(i): "" for i in order}
        else:
            live = [r for r in scores[k] if np.isfinite(r["point"]) and np.isfinite(r["extended"])]
            chosen = sorted(live, key=lambda r: -r["extended"])[: count - count // 2]
            chosen += sorted((r for r in live if r not in chosen), key=lambda r: -r["point"])[: count // 2]
            titles = {r["map"]: f"\npoint {r['point']:+.2f}, extended {r['extended']:+.2f}" for r in chosen}
        r0, c0 = max(top - offset, 0), max(left - offset, 0)
        rows.append([(i, maps[i, r0:r0 + size, c0:c0 + size], t) for i, t in titles.items()])
    fig, axes = plt.subplots(2, count, figsize=(2.2 * count, 5.2), squeeze=False)
    for r, (layer, row) in enumerate(zip(("layer 1", "layer 2"), rows)):
        for ax, (index, fmap, title) in zip(axes[r], row):
            low, high = np.percentile(fmap, [0.5, 99.8])  # sparse maps stay visible
            ax.imshow(fmap, cmap="gray", interpolation="nearest", vmin=low, vmax=max(high, low + 1e-12))
            ax.set_title(f"{layer} #{index}{title}", fontsize=7)
        for ax in axes[r]:
            ax.set_axis_off()
    return _save(fig, path, dpi=100)


def training_curves_figure(histories: dict[str, list[dict]], path: str | Path) -> Path:
    """Training and validation loss per epoch for each model (``history.csv`` rows).

    Names of the form ``"<arch> without <image>"`` get one panel per architecture and one
    colour per held-out image.
    """
    plt = _pyplot()
    groups: dict[str, dict[str, list[dict]]] = {}
    for name, rows in histories.items():
        arch, sep, image = name.partition(" without ")
        groups.setdefault(arch if sep else "", {})[f"without {image}" if sep else name] = rows
    fig, axes = plt.subplots(1, len(groups), figsize=(5.2 * len(groups), 4.2), squeeze=False, sharey=True)
    colours = {label: f"C{i % 10}" for i, label in enumerate(dict.fromkeys(k for g in groups.values() for k in g))}
    for ax, (arch, curves) in zip(axes[0], groups.items()):
        for label, rows in curves.items():
            epochs = [int(r["epoch"]) for r in rows]
            ax.plot(epochs, [float(r["loss"]) for r in rows], "--", color=colours[label], alpha=0.6)
            ax.plot(epochs, [float(r["val_loss"]) for r in rows], "-o", color=colours[label], ms=3, label=label)
        ax.set_yscale("log")
        ax.set_xlabel("epoch")
        ax.set_title(arch, fontsize=10)
        ax.legend(fontsize=7)
    axes[0][0].set_ylabel("MSE (dashed: training, solid: validation)")
    return _save(fig, path, dpi=100)


def mismatch_figure(summary: dict[str, dict[str, float]], labels: list[str], path: str | Path) -> Path:
    """Mean PSNR of each method (one line) against the PSF it was given (x axis)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for name, by in summary.items():
        x = [i for i, label in enumerate(labels) if label in by]
        ax.plot(x, [by[labels[i]] for i in x], "--" if "(auto)" in name else "-", marker="o", ms=4, label=name)
    ax.set_xticks(range(len(labels)), labels, rotation=20, fontsize=8)
    ax.set_xlabel("PSF given to the method")
    ax.set_ylabel("mean PSNR (dB)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    return _save(fig, path, dpi=100)


def scaling_figure(sizes: dict[str, list[tuple[int, float]]], slopes: dict[str, float], path: str | Path) -> Path:
    """Log-log plot of prediction time against the number of pixels, one line per method."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for name, points in sizes.items():
        pixels = [n * n for n, _ in points]
        ax.loglog(pixels, [t for _, t in points], "-o", ms=4, label=f"{name} (slope {slopes[name]:.2f})")
    ax.set_xlabel("pixels")
    ax.set_ylabel("seconds")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path, dpi=100)


def grid_figure(means: dict[tuple[str, float], dict[str, float]], path: str | Path, reference: str = "wiener (oracle)") -> Path:
    """One panel per PSF: each method's mean PSNR minus ``reference``'s against the noise level (log x).

    ``means`` is :func:`astrodeconv.experiments.grid.cell_means`: ``{(psf label, sigma): {method: dB}}``.
    """
    plt = _pyplot()
    psfs = list(dict.fromkeys(label for label, _ in means))
    names = [n for n in dict.fromkeys(n for by in means.values() for n in by) if n not in (reference, "none")]
    fig, axes = plt.subplots(1, len(psfs), figsize=(4.2 * len(psfs), 3.8), sharey=True, squeeze=False)
    for ax, label in zip(axes[0], psfs):
        sigmas = sorted(s for (p, s) in means if p == label)
        for name in names:
            points = [(s, means[(label, s)][name] - means[(label, s)][reference]) for s in sigmas
                      if name in means[(label, s)] and reference in means[(label, s)]]
            if points:
                style = "--" if "(auto)" in name or "estimated" in name else "-"
                ax.semilogx(*zip(*points), style, marker="o", ms=4, lw=2.5 if name.startswith("restorer") else 1.2,
                            label=name)
        ax.axhline(0.0, color="k", lw=0.8)
        ax.set_xticks(sigmas, [f"{v:g}" for v in sigmas])
        ax.minorticks_off()
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("noise sigma (fraction of the maximum)")
        ax.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel(f"mean PSNR minus {reference} (dB)")
    axes[0][-1].legend(fontsize=7)
    return _save(fig, path, dpi=100)
