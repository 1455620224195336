"""The ``realistic`` protocol: every method on frames an independent simulator (GalSim) made as instruments do.

For each scene x PSF kind, a frame (:mod:`.instrument`: ADU with a bias pedestal, Poisson
noise on a sky, read noise, saturation, the cards ``GAIN``, ``RDNOISE``, ``SATURATE``) is
written to FITS and restored through :func:`astrodeconv.pipeline.restore_file`, as a user
would (automatic parameter choice), with the PSF given four ways: ``exact``, ``stars``
(estimated from the frame's stars, :mod:`astrodeconv.starpsf`), ``moffat`` (a Moffat of the
stars' measured FWHM) and ``wide`` (the true PSF 15 % wider). Two baselines: the observation
itself, and 30 iterations of scikit-image's ``richardson_lucy`` (``clip=False``) on the frame
with its sky kept (only the bias removed). A method that refuses the frame gets a row saying so.

Rows are tidy: ``scene, psf, psf_given, method, status`` and the metrics of
:func:`astrodeconv.experiments.photometry.score`.
"""

from __future__ import annotations

import csv
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .protocols import RealisticProtocol, check_kind

STEM = "realistic"
METRICS = ("psnr_db", "ssim", "psnr_no_stars_db", "flux_ratio", "aperture_2fwhm", "aperture_4fwhm", "centroid_px", "spurious_per_1000",
           "spurious_near_saturated", "ring_depth", "ring_saturated_sigma", "background_rms_ratio", "background_tail")
FIELDS = ("scene", "psf", "psf_given", "method", "status", *METRICS, "time_s")
OBSERVED, SKIMAGE_RL = "observed", "skimage-rl-30"


def write_fits(path: Path, data: np.ndarray, cards: dict[str, Any] | None = None) -> Path:
    """Write ``data`` as float32 with the header ``cards`` (an instrument's frame, or a PSF); returns ``path``."""
    from astropy.io import fits

    fits.writeto(path, np.asarray(data, dtype=np.float32), fits.Header(cards or {}), overwrite=True)
    return path


def _given_psfs(frame: Any, folder: Path) -> tuple[dict[str, Path], dict[str, str]]:
    """The PSF files of each way of giving the PSF, and the reasons of those that could not be made."""
    from ..psf import moffat
    from ..starpsf import estimate_psf

    given = {"exact": write_fits(folder / "exact.fits", frame.psf), "wide": write_fits(folder / "wide.fits",
                                                                                        frame.wide_psf)}
    failed: dict[str, str] = {}
    try:
        estimated = estimate_psf(frame.adu, saturation=frame.detector.saturate)
    except InputError as exc:
        failed["stars"] = failed["moffat"] = str(exc)
    else:
        given["stars"] = write_fits(folder / "stars.fits", estimated.psf)
        given["moffat"] = write_fits(folder / "moffat.fits", moffat(estimated.fwhm, beta=3.0))
    return given, failed


def _skimage_rl(frame: Any, psf: np.ndarray) -> np.ndarray:
    """30 iterations of scikit-image's Richardson-Lucy on the frame with its sky kept, in ADU."""
    from skimage.restoration import richardson_lucy

    kept_sky = np.asarray(frame.adu, dtype=np.float64) - frame.detector.bias
    return richardson_lucy(kept_sky, psf, num_iter=30, clip=False) + frame.detector.bias


def run(protocol: RealisticProtocol, data_dir: Path, methods: list[str] | None = None, progress: bool = True,
        folds: Path | None = None) -> list[dict[str, Any]]:
    """Every scene x PSF x way of giving the PSF x method of the protocol (``methods``: only those rows)."""
    from astropy.io import fits
    from tqdm.auto import tqdm

    from ..data import load_sky
    from ..noise import estimate_sigma
    from ..pipeline import restore_file
    from ..psf import fwhm as measure_fwhm
    from . import instrument
    from .photometry import score

    check_kind(protocol, RealisticProtocol)
    detector = instrument.Detector(**protocol.detector)
    wanted = [m for m in [OBSERVED, SKIMAGE_RL, *protocol.methods] if methods is None or m in methods]
    cells = [(scene, kind) for scene in protocol.scenes for kind in protocol.psfs]
    rows: list[dict[str, Any]] = []
    bar = tqdm(total=len(cells) * len(protocol.psf_cases) * len(wanted), desc="realistic", disable=not progress,
               unit="run")
    sky = load_sky(protocol.images[0], data_dir) if "sky" in protocol.scenes else None
    if sky is not None and min(sky.shape) < protocol.size:
        raise InputError(f"the sky scene's image {protocol.images[0]} is {sky.shape[0]} x {sky.shape[1]} px, smaller "
                         f"than the frames ({protocol.size} px); choose a larger image or smaller frames")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for k, (scene, kind) in enumerate(cells):
            frame = instrument.frame(scene, kind, n=protocol.size, seed=protocol.seed + k, detector=detector,
                                     sky_image=sky, psf_reach=protocol.psf_reach)
            obs = write_fits(folder / "obs.fits", frame.adu, frame.header_cards())
            given, failed = _given_psfs(frame, folder)
            width = measure_fwhm(frame.psf)
            noise = estimate_sigma(frame.electrons(frame.adu))
            for label in protocol.psf_cases:
                for method in wanted:
                    bar.set_postfix_str(f"{scene} {kind} {label} {method}")
                    row = {"scene": scene, "psf": kind, "psf_given": label, "method": method, "status": "ok"}
                    start = time.perf_counter()
                    if label in failed:
                        row.update({m: float("nan") for m in METRICS}, status=f"no PSF: {failed[label][:80]}",
                                   time_s=0.0)
                        rows.append(row)
                        bar.update(1)
                        continue
                    try:
                        if method == OBSERVED:
                            restored = frame.adu
                        elif method == SKIMAGE_RL:
                            restored = _skimage_rl(frame, fits.getdata(given[label]).astype(np.float64))
                        else:
                            out = folder / "out.fits"
                            restore_file(obs, out, psf_spec=str(given[label]), method=method, overwrite=True)
                            restored = fits.getdata(out)
                        row.update(score(frame.electrons(restored), frame, noise, width, protocol.border))
                    except InputError as exc:
                        row.update({m: float("nan") for m in METRICS}, status=f"refused: {str(exc)[:80]}")
                    row["time_s"] = time.perf_counter() - start
                    rows.append(row)
                    bar.update(1)
    bar.close()
    return rows


def merge(previous: list[dict[str, Any]], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``previous`` with the rows of the (scene, psf, psf_given, method) of ``rows`` replaced."""
    from .results import replace_rows

    return replace_rows(previous, rows, ("scene", "psf", "psf_given", "method"))


def read_rows(path: Path) -> list[dict[str, Any]]:
    """Rows written by :func:`write_report` (metrics as floats)."""
    with open(path, newline="") as handle:
        return [{**r, **{m: float(r.get(m) or "nan") for m in (*METRICS, "time_s")}} for r in csv.DictReader(handle)]


def _mean(rows: list[dict[str, Any]], metric: str) -> float:
    values = [r[metric] for r in rows if np.isfinite(r[metric])]
    return float(np.mean(values)) if values else float("nan")


def render_table(rows: list[dict[str, Any]], protocol: RealisticProtocol) -> str:
    """Markdown: the metrics of each method (mean over scenes and PSFs) for each way the PSF is given, then PSNR gains."""
    methods = list(dict.fromkeys(r["method"] for r in rows))
    lines: list[str] = []
    for k, label in enumerate(protocol.psf_cases):
        lines += ([""] if k else []) + _metrics_table([r for r in rows if r["psf_given"] == label], label, protocol,
                                                      methods)
    for metric, what in (("psnr_db", "PSNR"), ("psnr_no_stars_db", "PSNR without stars")):
        lines += _gain_table(rows, protocol, methods, metric, what)
    refusals = sorted({f"{r['method']} ({r['status'][len('refused: '):].split(';')[0]})" for r in rows
                       if r["status"].startswith("refused")})
    if refusals:
        lines += ["", "Refused: " + "; ".join(refusals) + "."]
    frames = {(r["scene"], r["psf"]) for r in rows}
    for label in protocol.psf_cases:
        missing = {(r["scene"], r["psf"]) for r in rows if r["psf_given"] == label and r["status"].startswith("no PSF")}
        if missing:
            lines += ["", f"PSF `{label}` not estimated on {len(missing)} of {len(frames)} frames (too few isolated, "
                      f"unsaturated stars): " + ", ".join(f"{s} {p}" for s, p in sorted(missing)) + "."]
    return "\n".join(lines)


def _metrics_table(rows: list[dict[str, Any]], label: str, protocol: RealisticProtocol,
                   methods: list[str]) -> list[str]:
    """Markdown lines: each method's metrics, mean over the frames it restored with the PSF given as ``label``."""
    titles = ("frames", "PSNR (dB)", "SSIM", "PSNR without stars (dB)", "flux ratio", "aperture 2 FWHM", "aperture 4 FWHM", "centroid (px)",
              "false / 1000", "false near saturated", "ring depth", "ring around saturated (noise)", "background rms ratio",
              "background beyond 5 sigma")
    lines = [f"PSF given: {label}; mean over the frames each method restored ({len(protocol.scenes)} scenes x "
             f"{len(protocol.psfs)} PSFs; `frames`: restored / not restored: refused, or no PSF estimated).", "",
             "| method | " + " | ".join(titles) + " |", "|---|" + "---:|" * len(titles)]
    for method in methods:
        mine = [r for r in rows if r["method"] == method]
        if not mine:
            continue
        refused = [r for r in mine if r["status"] != "ok"]
        if len(refused) == len(mine):
            lines.append(f"| {method} | 0 / {len(mine)} | " + " | ".join([""] * (len(titles) - 1)) + " |")
            continue
        cells = [f"{len(mine) - len(refused)} / {len(refused)}"]
        for metric in METRICS:
            value = _mean(mine, metric)  # rows not restored hold NaN, which the mean leaves out
            percent = metric.startswith("aperture")
            cells.append(f"{100 * value:+.1f} %" if percent else f"{value:.1e}" if metric == "background_tail" else
                         f"{value:.3f}" if metric in ("ssim", "flux_ratio", "ring_depth",
                                                      "background_rms_ratio") else f"{value:.2f}")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _gain_table(rows: list[dict[str, Any]], protocol: RealisticProtocol, methods: list[str], metric: str,
                what: str) -> list[str]:
    """Markdown lines: each method's mean gain in ``metric`` over the observation, by the way the PSF is given."""
    lines = ["", f"{what} gain over the observation (dB) by the way the PSF is given, mean over the frames restored "
             "(`stars`, `moffat`: the frames with enough isolated stars for an estimate):", "",
             "| method | " + " | ".join(protocol.psf_cases) + " |", "|---|" + "---:|" * len(protocol.psf_cases)]
    observed = {(r["scene"], r["psf"]): r[metric] for r in rows if r["method"] == OBSERVED}
    for method in methods:
        if method == OBSERVED:
            continue
        cells = []
        for label in protocol.psf_cases:
            gains = [r[metric] - observed[(r["scene"], r["psf"])] for r in rows if r["method"] == method
                     and r["psf_given"] == label and r["status"] == "ok" and (r["scene"], r["psf"]) in observed]
            cells.append(f"{np.mean(gains):+.2f}" if gains else "refused")
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def write_report(rows: list[dict[str, Any]], protocol: RealisticProtocol, out_dir: Path) -> list[Path]:
    """Write ``realistic.csv`` (tidy rows), ``realistic.md`` and ``realistic.png`` (one frame, every method)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = out_dir / f"{STEM}.csv"
    with open(csv_path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: (f"{row[k]:.4g}" if isinstance(row[k], float) else row[k]) for k in FIELDS})
    markdown = out_dir / f"{STEM}.md"
    markdown.write_text(f"# {protocol.description}\n\n{render_table(rows, protocol)}\n")
    return [csv_path, markdown, montage(protocol, out_dir / f"{STEM}.png")]


def montage(protocol: RealisticProtocol, path: Path, size: int = 128) -> Path:
    """The first scene and PSF restored by every method with the exact PSF (asinh stretch, around its brightest star)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from astropy.io import fits

    from ..data import shared_dir
    from ..pipeline import restore_file
    from . import instrument

    sky = None
    if "sky" == protocol.scenes[0]:
        from ..data import load_sky

        sky = load_sky(protocol.images[0], (shared_dir() or Path(".")) / "data" / "sky")
    frame = instrument.frame(protocol.scenes[0], protocol.psfs[0], n=protocol.size, seed=protocol.seed,
                             detector=instrument.Detector(**protocol.detector), sky_image=sky,
                             psf_reach=protocol.psf_reach)
    panels = {"truth (PSF-free)": frame.truth, "observed": frame.electrons(frame.adu)}
    with tempfile.TemporaryDirectory() as tmp:
        obs = write_fits(Path(tmp) / "obs.fits", frame.adu, frame.header_cards())
        psf_path = write_fits(Path(tmp) / "psf.fits", frame.psf)
        panels[SKIMAGE_RL] = frame.electrons(_skimage_rl(frame, frame.psf))
        for method in protocol.methods:
            try:
                restore_file(obs, Path(tmp) / "out.fits", psf_spec=str(psf_path), method=method, overwrite=True)
                panels[method] = frame.electrons(fits.getdata(Path(tmp) / "out.fits"))
            except InputError:
                panels[f"{method} (refused)"] = np.zeros_like(frame.truth)
    stars = frame.sources[frame.sources[:, 3] == 1]
    x, y = stars[np.argmax(stars[:, 2]), :2] if len(stars) else (protocol.size / 2, protocol.size / 2)
    r0 = int(np.clip(round(y) - size // 2, 0, protocol.size - size))
    c0 = int(np.clip(round(x) - size // 2, 0, protocol.size - size))
    scale = 5 * np.std(panels["observed"][frame.truth < np.percentile(frame.truth, 50)])
    top = float(np.arcsinh(np.max(panels["observed"]) / scale))
    columns = (len(panels) + 1) // 2
    fig, axes = plt.subplots(2, columns, figsize=(2.3 * columns, 5.0))
    for ax in np.ravel(axes)[len(panels):]:
        ax.axis("off")
    for ax, (title, image) in zip(np.ravel(axes), panels.items()):
        ax.imshow(np.arcsinh(image[r0 : r0 + size, c0 : c0 + size] / scale), cmap="gray", origin="lower",
                  vmin=-2, vmax=top)
        ax.set_title(title, fontsize=8)
        ax.axis("off")
    fig.suptitle(f"{protocol.scenes[0]} scene, {protocol.psfs[0]} PSF, exact PSF given: around the brightest (saturated) "
                 "star, asinh stretch", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
