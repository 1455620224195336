"""Restore FITS images larger than memory with a network, tile by tile (an I/O module).

The input is read by sections (``ImageHDU.section``, only the rows a tile needs): output tile
``[r, r + t) x [c, c + t)`` is computed from the input window widened by the network's
margin ``m`` on every side and clipped to the image, restored with
:func:`astrodeconv.nn.predict.deconvolve` (which pads the window's sides with the
``boundary`` mode) and cropped back to the tile. Sides of a window that lie inside the image
carry real neighbours, so their padding only touches the cropped ring; sides on the image's
edge are padded exactly as whole-image prediction pads the image. The result therefore
equals whole-image prediction (to float32 rounding, 1e-5), tiles included.

The output FITS is created up front in a temporary file beside the destination (header with
its final ``NAXIS``, data block preallocated with ``posix_fallocate``, so a full disk fails at
once with ``ENOSPC`` instead of a ``SIGBUS`` later), filled tile by tile through a memory map
opened, flushed and closed for each tile, ``fsync``-ed and renamed to the final name. An exception or Ctrl-C removes the
temporary file; a killed process can leave a ``.NAME.*.tmp`` file beside the destination,
never a truncated file under the final name.

Peak memory is set by the tile: the input window (``(t + 2 m)^2`` float32), the network's
activations (``cnn3``: about ``64 (t + 9)^2`` float32) and one output tile. Neither file is
kept mapped (a mapping that stays open keeps every page it touched in the resident set:
a 1 GiB image then "uses" 2 GiB of RSS, page cache that is reclaimable but counted).

Pixels follow the policy of :func:`astrodeconv.methods.restore`: non-finite pixels are filled
with the median of the finite pixels and are NaN again in the output. The median is exact
without loading the image: a radix selection on the IEEE-754 bit patterns of the pixels
(four passes over the file, 16 bits each, histograms of 65,536 bins), run only when the image
has non-finite pixels.

Gzip-compressed inputs (``.fits.gz``) cannot be read by sections without decompressing them
whole and are refused; decompress them first (``gunzip -k BIG.fits.gz``).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
from astropy.io import fits

from .errors import InputError
from .checks import DEFAULT_TILE, network_margin, tile_side
from .io import FITS_ERRORS, check_input_file, check_output, choose_hdu, output_hdu, publish, temporary_beside
from .masks import check_result, fill_bad, restore_bad

__all__ = ["STREAM_PIXELS", "FitsRegion", "ImageSource", "create_output", "deconvolve_fits", "image_shape", "open_source"]

#: Images with more pixels than this are restored by tiles from disk by the command line.
STREAM_PIXELS = 4096 * 4096
#: Rows read per pass when computing the image's statistics (maximum, NaN count, median).
_STAT_ROWS = 256


def image_shape(path: str | Path, hdu: int | str | None = None) -> tuple[int, int]:
    """``(H, W)`` of a FITS image, read from its header only (no pixel is read).

    Examples
    --------
    >>> import tempfile, os
    >>> from astropy.io import fits
    >>> p = os.path.join(tempfile.mkdtemp(), "a.fits")
    >>> fits.writeto(p, np.zeros((5, 7), np.float32))
    >>> image_shape(p)
    (5, 7)
    """
    with open_source(path, hdu, allow_gzip=True) as src:
        return src.shape


@dataclass
class ImageSource:
    """A 2-D FITS image read by sections (``read(r0, r1, c0, c1) -> float64``)."""

    path: Path
    hdu: Any
    index: int
    header: fits.Header
    shape: tuple[int, int]

    def read(self, r0: int, r1: int, c0: int, c1: int) -> np.ndarray:
        """Pixels ``[r0, r1) x [c0, c1)`` as float64, BSCALE/BZERO applied, BLANK as NaN."""
        lead = (0,) * (len(self.hdu.shape) - 2)
        raw = np.asarray(self.hdu.section[lead + (slice(r0, r1), slice(c0, c1))])
        out = raw.astype(np.float64)
        blank = self.header.get("BLANK")
        if blank is not None and raw.dtype.kind in "iu":
            out[raw == blank] = np.nan
        bscale, bzero = float(self.header.get("BSCALE", 1.0)), float(self.header.get("BZERO", 0.0))
        if bscale != 1.0 or bzero != 0.0:
            with np.errstate(over="ignore", invalid="ignore"):  # an absurd BSCALE gives inf: bad pixels, refused later
                out = out * bscale + bzero
        return out


@contextmanager
def open_source(path: str | Path, hdu: int | str | None = None, allow_gzip: bool = False) -> Iterator[ImageSource]:
    """Open a FITS image for reading by sections, without loading its pixels.

    Parameters
    ----------
    path : str or Path
        Uncompressed FITS file (``allow_gzip`` only for reading the header).
    hdu : int or str, optional
        HDU index or EXTNAME; by default the first HDU with image data.

    Raises
    ------
    InputError
        Missing or unreadable file, gzip-compressed file, no image, not 2-D.
    """
    path = check_input_file(path)
    with open(path, "rb") as fh:
        gzipped = fh.read(2) == b"\x1f\x8b"
    if gzipped and not allow_gzip:
        raise InputError(
            f"{path} is gzip-compressed and cannot be read by tiles without decompressing it whole; "
            f"decompress it first (gunzip -k {path.name}) or restore it in memory"
        )
    try:
        hdul = fits.open(path, memmap=False, lazy_load_hdus=True, do_not_scale_image_data=True)
    except FITS_ERRORS as exc:
        raise InputError(f"cannot read {path} as FITS: {exc}") from None
    try:
        try:
            if hdu is None:
                chosen = choose_hdu(hdul, None, path)
                if chosen is None:
                    raise InputError(f"{path}: no HDU holds image data")
            else:
                chosen = choose_hdu(hdul, hdu, path)
            if not chosen.is_image:
                raise InputError(f"{path}: HDU {hdu!r} is a {type(chosen).__name__}, not an image")
            shape = tuple(int(n) for n in chosen.shape)
        except InputError:
            raise
        except FITS_ERRORS as exc:
            raise InputError(f"cannot read {path} as FITS: {exc}") from None
        if len(shape) < 2 or any(n != 1 for n in shape[:-2]):
            raise InputError(f"{path}: image must be 2-D, got shape {shape}; pick one plane first")
        if chosen.header.get("BITPIX", 0) not in (8, 16, 32, 64, -32, -64):
            raise InputError(f"{path}: unsupported BITPIX {chosen.header.get('BITPIX')}")
        for card in ("BSCALE", "BZERO"):
            if not isinstance(chosen.header.get(card, 1.0), (int, float)) or isinstance(chosen.header.get(card), bool):
                raise InputError(f"{path}: the {card} card is {chosen.header.get(card)!r}; expected a number")
        if not gzipped:
            try:
                start = hdul.fileinfo(hdul.index(chosen))["datLoc"]
            except FITS_ERRORS as exc:
                raise InputError(f"cannot read {path} as FITS: {exc}") from None
            end = start + abs(chosen.header["BITPIX"]) // 8 * int(np.prod(shape))
            size = path.stat().st_size
            if end > size:
                raise InputError(f"{path} is truncated: its header declares data up to byte {end}, the file has "
                                 f"{size} bytes")
        yield ImageSource(path, chosen, hdul.index(chosen), chosen.header.copy(), (shape[-2], shape[-1]))
    finally:
        hdul.close()


def _row_blocks(shape: tuple[int, int], rows: int = _STAT_ROWS) -> Iterator[tuple[int, int]]:
    for r0 in range(0, shape[0], rows):
        yield r0, min(r0 + rows, shape[0])


def _ordered_keys(values: np.ndarray) -> np.ndarray:
    """Map float64 values to uint64 keys with the same order (IEEE-754 bit trick)."""
    bits = np.ascontiguousarray(values, dtype=np.float64).view(np.uint64)
    negative = (bits >> np.uint64(63)).astype(bool)
    return np.where(negative, ~bits, bits | np.uint64(1 << 63))


def _key_value(key: int) -> float:
    key = np.uint64(key)
    bits = key & ~np.uint64(1 << 63) if key >> np.uint64(63) else ~key
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])


def exact_order_statistic(blocks: Callable[[], Iterator[np.ndarray]], ranks: list[int]) -> list[float]:
    """Exact order statistics of the finite values yielded by ``blocks()``, in bounded memory.

    A radix selection on the 64-bit keys of the values: four passes over the data, each
    fixing the next 16 bits of the wanted key with a histogram of 65,536 bins.

    Parameters
    ----------
    blocks : callable
        Returns a fresh iterator of arrays (e.g. rows of an image); called once per pass.
    ranks : list of int
        0-based ranks among the finite values.

    Examples
    --------
    >>> x = np.random.default_rng(0).normal(size=1001)
    >>> exact_order_statistic(lambda: iter(np.array_split(x, 7)), [500]) == [np.median(x)]
    True
    """
    prefixes = [0] * len(ranks)
    remaining = list(ranks)  # rank still to find among the values sharing the prefix
    for level in range(4):
        shift = np.uint64(48 - 16 * level)
        hists = {p: np.zeros(1 << 16, dtype=np.int64) for p in prefixes}
        for block in blocks():
            keys = _ordered_keys(block[np.isfinite(block)])
            high = keys >> (shift + np.uint64(16)) if level else np.zeros(keys.shape, np.uint64)
            digit = ((keys >> shift) & np.uint64(0xFFFF)).astype(np.int64)
            for p, hist in hists.items():
                hist += np.bincount(digit[high == np.uint64(p)], minlength=1 << 16)
        for pos in range(len(ranks)):
            cum = np.cumsum(hists[prefixes[pos]])
            d = int(np.searchsorted(cum, remaining[pos], side="right"))
            remaining[pos] -= int(cum[d - 1]) if d else 0
            prefixes[pos] = (prefixes[pos] << 16) | d
    return [_key_value(p) for p in prefixes]


@dataclass(frozen=True)
class Prepared:
    """What a pass over the image tells before restoring it."""

    scale: float
    fill: float | None
    bad: int
    peak: float = 1.0  # largest absolute finite pixel, in units of ``scale``


def prepare(src: ImageSource, scale: float | None = None) -> Prepared:
    """Check the pixels of ``src`` by rows; return the scale and the NaN fill value.

    ``scale`` ``None`` means the maximum finite pixel (the command line's normalisation);
    ``fill`` is the exact median of the finite pixels in those units, ``None`` when every
    pixel is finite. Errors as :func:`astrodeconv.cli` gives them for in-memory images.
    """
    lo, hi, good, bad = np.inf, -np.inf, 0, 0
    for r0, r1 in _row_blocks(src.shape):
        block = src.read(r0, r1, 0, src.shape[1])
        finite = np.isfinite(block)
        n = int(finite.sum())
        good += n
        bad += block.size - n
        if n:
            lo, hi = min(lo, float(block[finite].min())), max(hi, float(block[finite].max()))
    if not good:
        raise InputError(f"{src.path}: every pixel is NaN or infinite")
    if lo == hi:
        raise InputError(f"{src.path}: the image is constant (every pixel is {hi:g}); nothing to restore")
    if scale is None:
        scale = hi
    if not scale > 0:
        raise InputError(f"{src.path}: the maximum pixel value is {scale}; expected a positive maximum")
    fill = None
    if bad:
        rows = lambda: (src.read(r0, r1, 0, src.shape[1]) for r0, r1 in _row_blocks(src.shape))  # noqa: E731
        a, b = exact_order_statistic(rows, [(good - 1) // 2, good // 2])
        fill = float(np.mean([a / scale, b / scale]))
    return Prepared(float(scale), fill, bad, max(abs(lo), abs(hi)) / float(scale))


class FitsRegion:
    """Picklable writer of a region of a FITS image's data block (``target[key] = value``).

    Opens the file's data as a big-endian float32 memory map for each write, so it can be
    sent to other processes (``dask.array.store`` on a distributed cluster, with a file
    system shared by the workers).
    """

    def __init__(self, path: str | Path, offset: int, shape: tuple[int, int]) -> None:
        self.path, self.offset, self.shape = str(path), int(offset), tuple(shape)
        self.dtype, self.ndim = np.dtype(">f4"), 2

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        data = np.memmap(self.path, dtype=self.dtype, mode="r+", offset=self.offset, shape=self.shape)
        data[key] = value
        data.flush()
        del data


@dataclass
class Output:
    """An output FITS being written (temporary name); write pixels through ``region``."""

    tmp: Path
    offset: int
    shape: tuple[int, int]

    @property
    def region(self) -> FitsRegion:
        return FitsRegion(self.tmp, self.offset, self.shape)


@contextmanager
def create_output(
    path: str | Path,
    shape: tuple[int, int],
    header: fits.Header | None = None,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Iterator[Output]:
    """Create a float32 FITS image of ``shape`` up front; rename it to ``path`` on success.

    Keeps ``header`` (structural keywords fixed) and adds the provenance cards of
    :func:`astrodeconv.io.write_image`. The context yields an :class:`Output` whose pixels
    (zeros) the caller writes through ``output.region[rows, cols] = values``; on leaving the
    block without an error the file is ``fsync``-ed and renamed to ``path``; on any exception
    (or Ctrl-C) the temporary file is removed and nothing exists under ``path``.
    """
    path = check_output(path, overwrite)
    if path.name.lower().endswith(".gz"):
        raise InputError(f"{path}: a tiled output is written in place and cannot be gzip-compressed; "
                         "write .fits and compress it afterwards (gzip -k)")
    H, W = (int(n) for n in shape)
    hdu = output_hdu(np.zeros((1, 1), dtype=np.float32), header, provenance)
    hdu.verify("silentfix")
    head = hdu.header
    head["NAXIS1"], head["NAXIS2"] = W, H
    text = head.tostring().encode("ascii")
    nbytes = H * W * 4
    total = len(text) + -(-nbytes // 2880) * 2880
    fd, tmp_name = temporary_beside(path)
    tmp = Path(tmp_name)
    try:
        try:
            if hasattr(os, "posix_fallocate"):
                os.posix_fallocate(fd, 0, total)
            else:  # pragma: no cover - not Linux
                os.ftruncate(fd, total)
            os.pwrite(fd, text, 0)
        except OSError as exc:
            raise InputError(f"cannot create {path} ({total / 2**30:.2f} GiB): {exc}") from None
        finally:
            os.close(fd)
        yield Output(tmp, len(text), (H, W))
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        publish(tmp, path, overwrite)
    finally:
        tmp.unlink(missing_ok=True)


def deconvolve_fits(
    input_path: str | Path,
    output_path: str | Path,
    model: Any,
    tile: int = DEFAULT_TILE,
    *,
    hdu: int | str | None = None,
    scale: float | None = None,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
    boundary: str = "symmetric",
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Restore a FITS image with a network, streaming tiles from and to disk.

    Parameters
    ----------
    input_path : str or Path
        Uncompressed FITS image (read by sections).
    output_path : str or Path
        Destination FITS (float32); its folder must exist.
    model : torch.nn.Module
        Network with an integer ``margin`` (see :func:`astrodeconv.nn.predict.deconvolve`).
    tile : int
        Output tile side, pixels; memory grows with ``tile**2``, not with the image.
    hdu : int or str, optional
        Input HDU (default: the first with image data).
    scale : float, optional
        The network sees ``pixels / scale`` and the output is multiplied back by it;
        ``None``: the maximum finite pixel (the command line's rule).
    provenance : dict, optional
        Extra cards, as for :func:`astrodeconv.io.write_image`; ``ADNORM`` (the divisor the
        network's input was normalised by) is added.
    overwrite : bool
        Replace an existing ``output_path``.
    boundary : str
        Padding at the image's edges (see :func:`astrodeconv.nn.predict.deconvolve`).
    device : {"cpu", "cuda", "auto"}
    progress : bool
        Show a tqdm bar over the tiles.

    Returns
    -------
    output_path : Path

    Examples
    --------
    >>> import tempfile, os
    >>> from astropy.io import fits
    >>> from astrodeconv.nn import create_model, deconvolve
    >>> d = tempfile.mkdtemp(); y = np.random.default_rng(0).random((50, 40)).astype(np.float32)
    >>> fits.writeto(os.path.join(d, "in.fits"), y)
    >>> net = create_model("cnn1")
    >>> out = deconvolve_fits(os.path.join(d, "in.fits"), os.path.join(d, "out.fits"), net, tile=16, progress=False)
    >>> ref = deconvolve(y / y.max(), net) * y.max()
    >>> bool(np.allclose(fits.getdata(out), ref, atol=1e-5))
    True
    """
    from tqdm.auto import tqdm

    from .nn.predict import deconvolve, tile_origins

    tile = tile_side(tile)
    margin = network_margin(model)
    with open_source(input_path, hdu) as src:
        prep = prepare(src, scale)
        H, W = src.shape
        cards = {**(provenance or {}), "ADNORM": prep.scale}
        origins = [(r, c) for r in tile_origins(H, min(tile, H)) for c in tile_origins(W, min(tile, W))]
        with create_output(output_path, src.shape, src.header, cards, overwrite) as out:
            for r, c in tqdm(origins, desc="tiles", unit="tile", disable=not progress):
                th, tw = min(tile, H), min(tile, W)
                window, (i, j) = read_window(src, r, c, th, tw, margin)
                y, bad = normalised(window, prep)
                restored = deconvolve(y, model, tile=max(y.shape), device=device, boundary=boundary)  # one pass
                check_result(restored, bad, prep.peak, prep.scale)
                restore_bad(restored, bad)
                out.region[r : r + th, c : c + tw] = (restored * prep.scale)[i : i + th, j : j + tw]
    return Path(output_path)


def read_window(src: ImageSource, r: int, c: int, th: int, tw: int, margin: int) -> tuple[np.ndarray, tuple[int, int]]:
    """The input window of output tile ``(r, c, th, tw)`` widened by ``margin`` and clipped.

    Returns the window and the tile's offset inside it.
    """
    H, W = src.shape
    r0, c0 = max(r - margin, 0), max(c - margin, 0)
    window = src.read(r0, min(r + th + margin, H), c0, min(c + tw + margin, W))
    return window, (r - r0, c - c0)


def normalised(window: np.ndarray, prep: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """``window / scale`` with non-finite pixels filled; also returns their mask."""
    return fill_bad(window / prep.scale, prep.fill)
