"""FITS input and output: the only module that reads or writes image files.

An image goes in with its header and comes back out with it (WCS intact), plus
provenance cards. Outputs are written to a temporary file in the destination folder and
renamed into place, so a crash never leaves a half-written file under the final name,
and an existing file is never replaced unless ``overwrite=True``.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from astropy.io import fits

from . import __version__
from .errors import InputError

#: What astropy raises for a damaged or strange file (caught by every reader and turned into one line).
FITS_ERRORS = (OSError, ValueError, TypeError, EOFError, KeyError, AttributeError, IndexError)
#: The largest image :func:`read_image` loads (pixels; 2 GiB as float64); larger ones are restored by tiles.
MAX_IMAGE_PIXELS = 2**28
#: Header keywords written by :func:`write_image` (FITS keywords are at most 8 characters).
PROVENANCE_KEYS = {
    "ADVERS": "astrodeconv version",
    "ADMETHOD": "restoration method",
    "ADPSF": "PSF specification",
    "ADPARAMS": "method parameters (JSON)",
}


def read_image(path: str | Path, hdu: int | str | None = None) -> tuple[np.ndarray, fits.Header]:
    """Read a 2-D image and its header from a FITS file.

    Parameters
    ----------
    path : str or Path
        FITS file (``.fits``, ``.fits.gz`` ...).
    hdu : int or str, optional
        Index or EXTNAME of the HDU. By default the primary HDU, or the first HDU that
        holds image data if the primary one is empty.

    Returns
    -------
    data : ndarray, shape (H, W), float64
        The pixels, with BSCALE/BZERO applied. Non-finite pixels are kept as they are.
    header : astropy.io.fits.Header
        A copy of that HDU's header.

    Raises
    ------
    InputError
        Missing or unreadable file, no image data, unknown HDU, or not 2-D (a cube's
        message names its shape and how to pick a plane).
    """
    path = check_input_file(path)
    try:
        with warnings.catch_warnings(record=True) as caught, fits.open(path, memmap=False) as hdul:
            warnings.simplefilter("always")
            chosen = choose_hdu(hdul, hdu, path)
            if not chosen.is_image:
                raise InputError(f"{path}: HDU {hdu!r} is a {type(chosen).__name__}, not an image")
            npix = int(np.prod([chosen.header.get(f"NAXIS{k}", 0) for k in range(1, chosen.header.get("NAXIS", 0) + 1)]))
            if npix > MAX_IMAGE_PIXELS:
                raise InputError(f"{path}: {npix / 1e6:.0f} Mpx is more than {MAX_IMAGE_PIXELS / 1e6:.0f} Mpx, the largest "
                                 "image read into memory; restore it by tiles (--stream)")
            data = chosen.data
            header = chosen.header.copy()
        truncated = [w for w in caught if "truncated" in str(w.message).lower()]
        if truncated:
            raise InputError(f"cannot read {path} as FITS: {str(truncated[0].message).splitlines()[0]}")
    except InputError:
        raise
    except FITS_ERRORS as exc:
        raise InputError(f"cannot read {path} as FITS: {_first_line(exc)}") from None
    if data is None:
        raise InputError(f"{path}: HDU {hdu if hdu is not None else 0} has no image data")
    data = np.asarray(data)
    if data.dtype.kind not in "iuf":
        raise InputError(f"{path}: image data must be numeric, got dtype {data.dtype}")
    if data.ndim != 2:
        squeezed = np.squeeze(data)
        if squeezed.ndim == 2:
            data = squeezed
        else:
            raise InputError(
                f"{path}: image must be 2-D, got shape {data.shape}; pick one plane first, "
                f"e.g. with astropy: fits.writeto('plane.fits', fits.getdata('{path.name}')[0])"
            )
    return data.astype(np.float64), header


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def hdu_names(path: str | Path) -> list[str]:
    """The names of a FITS file's HDUs, from their headers."""
    path = check_input_file(path)
    try:
        with fits.open(path, memmap=False, lazy_load_hdus=True) as hdul:
            return [h.name for h in hdul]
    except FITS_ERRORS as exc:
        raise InputError(f"cannot read {path} as FITS: {_first_line(exc)}") from None


def check_input_file(path: str | Path, what: str = "a FITS file") -> Path:
    """Refuse a path that is missing, a folder, or not a regular file (a FIFO or a device such as /dev/zero never ends)."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror}") from None
    if stat.S_ISDIR(mode):
        raise InputError(f"{path} is a folder, expected {what}")
    if not stat.S_ISREG(mode):
        raise InputError(f"{path} is not a regular file (a pipe, socket or device), expected {what}")
    if not os.access(path, os.R_OK):
        raise InputError(f"cannot read {path}: permission denied")
    return path


@dataclass
class Frame:
    """An instrument frame: its image and, when the file has them, its noise map and data-quality flags.

    A file with ``SCI``, ``ERR`` and ``DQ`` image extensions (as HST, JWST and many pipelines
    write them) is read as such: ``data`` from ``SCI``, ``error`` from ``ERR`` (standard
    deviation per pixel, the image's units) and ``quality`` from ``DQ`` (non-zero = bad).
    """

    data: np.ndarray
    header: fits.Header
    primary_header: fits.Header | None = None  # set for a SCI/ERR/DQ file: its primary header
    error: np.ndarray | None = None
    quality: np.ndarray | None = None


def read_frame(path: str | Path, hdu: int | str | None = None) -> Frame:
    """Read an image, or a ``SCI``/``ERR``/``DQ`` triple when the file holds one and ``hdu`` is not given."""
    path = check_input_file(path)
    if hdu is None:
        try:
            with fits.open(path, memmap=False) as hdul:
                names = [h.name for h in hdul]
                primary = hdul[0].header.copy()
        except FITS_ERRORS as exc:
            raise InputError(f"cannot read {path} as FITS: {_first_line(exc)}") from None
        if "SCI" in names:
            data, header = read_image(path, "SCI")
            error = read_image(path, "ERR")[0] if "ERR" in names else None
            quality = read_image(path, "DQ")[0] if "DQ" in names else None
            for name, extra in (("ERR", error), ("DQ", quality)):
                if extra is not None and extra.shape != data.shape:
                    raise InputError(f"{path}: the {name} extension is {extra.shape}, the SCI image {data.shape}")
            return Frame(data, header, primary, error, quality)
    data, header = read_image(path, hdu)
    return Frame(data, header)


def check_axes(header: fits.Header, path: Path) -> None:
    """Refuse a header whose axis lengths are not non-negative integers (astropy can loop on them)."""
    naxis = header.get("NAXIS", 0)
    lengths = [header.get(f"NAXIS{k}") for k in range(1, naxis + 1)] if isinstance(naxis, int) and 0 <= naxis <= 999 \
        else [naxis]
    if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in lengths):
        raise InputError(f"{path}: the header's axis lengths {lengths} (NAXIS {naxis}) are not non-negative integers")


def choose_hdu(hdul: fits.HDUList, hdu: int | str | None, path: Path) -> Any:
    """The HDU ``hdu`` (index or EXTNAME) of an open file, or the first holding image data when ``None``."""
    if hdu is None:
        for candidate in hdul:  # from the headers: no pixel is read before the size is checked
            check_axes(candidate.header, path)
            if candidate.is_image and candidate.header.get("NAXIS", 0) > 0:
                return candidate
        raise InputError(f"{path}: no HDU holds image data")
    try:
        chosen = hdul[hdu]
        check_axes(chosen.header, path)
        return chosen
    except (KeyError, IndexError):
        names = [h.name for h in hdul]
        raise InputError(f"{path}: no HDU {hdu!r}; it has {len(hdul)} HDUs named {names}") from None


def write_image(
    path: str | Path,
    data: np.ndarray,
    header: fits.Header | None = None,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
    extensions: dict[str, tuple[np.ndarray, dict[str, Any]]] | None = None,
    primary_header: fits.Header | None = None,
) -> Path:
    """Write a 2-D image to FITS atomically, keeping ``header`` and adding provenance.

    Parameters
    ----------
    path : str or Path
        Destination. Its folder must exist.
    data : ndarray, shape (H, W)
        Pixels, written as float32.
    header : astropy.io.fits.Header, optional
        Header to keep (e.g. the input's, with its WCS). Structural keywords (BITPIX,
        NAXIS, BSCALE, BZERO ...) are updated to match ``data``.
    provenance : dict, optional
        ``method``, ``psf``, ``params`` and any extra ``KEY: value`` pairs written as
        cards; the package version is always added (``ADVERS``).
    overwrite : bool
        Replace an existing file. If False (default) an existing file is an error.
    extensions : dict, optional
        ``EXTNAME -> (array, cards)``: image extensions written after the image (e.g. the PSF
        used, the mask), each with its cards; integer arrays keep their type.
    primary_header : astropy.io.fits.Header, optional
        Write an instrument's layout: an empty primary HDU with this header, then ``data`` as
        the ``SCI`` extension (with ``header``).

    Returns
    -------
    path : Path
    """
    path = check_output(path, overwrite)
    image = output_hdu(np.asarray(data, dtype=np.float32), header, provenance)
    if primary_header is None:
        hdus = fits.HDUList([image])
    else:
        sci = fits.ImageHDU(image.data, header=image.header, name="SCI")
        hdus = fits.HDUList([fits.PrimaryHDU(header=_clean_header(primary_header)), sci])
    for name, (array, cards) in (extensions or {}).items():
        array = np.asarray(array)
        extension = fits.ImageHDU(array if array.dtype.kind in "iub" else array.astype(np.float32), name=name)
        for key, value in _provenance_cards(cards).items():
            extension.header[key] = value
        hdus.append(extension)
    fd, tmp = temporary_beside(path)
    os.close(fd)
    try:
        try:
            hdus.writeto(tmp, overwrite=True, output_verify="silentfix")  # a ".gz" name is gzip-compressed
        except OSError as exc:
            raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None
        publish(Path(tmp), path, overwrite)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def publish(tmp: Path, path: Path, overwrite: bool) -> None:
    """Give the finished file ``tmp`` its final name ``path`` atomically.

    Without ``overwrite`` a file that appeared under ``path`` while ``tmp`` was written (another
    run) is kept and this is an :class:`InputError`: the name is taken with a hard link, which
    fails when the name exists, instead of a rename, which would replace it.
    """
    if overwrite:
        os.replace(tmp, path)
        return
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise InputError(f"{path} appeared while this run was writing it; it was kept: choose another name "
                         "or pass --overwrite") from None
    except OSError:  # no hard links on this file system: the rename below, after a last check
        if path.exists():
            raise InputError(f"{path} appeared while this run was writing it; it was kept") from None
        os.replace(tmp, path)
        return
    os.unlink(tmp)


def check_output(path: str | Path, overwrite: bool) -> Path:
    """Refuse an output that exists (unless ``overwrite``), that is not a regular file, or whose folder is missing
    or read-only."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not path.is_file() or path.is_symlink():
            raise InputError(f"{path} exists and is not a regular file (a folder, link, pipe or device); "
                             "choose a file name")
        if not overwrite:
            raise InputError(f"{path} already exists; choose another name or pass --overwrite")
    if not path.parent.is_dir():
        raise InputError(f"cannot write {path}: folder {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK):
        raise InputError(f"cannot write {path}: folder {path.parent} is not writable")
    return path


def temporary_beside(path: Path) -> tuple[int, str]:
    """Open a temporary file in ``path``'s folder, with the permissions a plain ``open`` would give.

    Returns the OS-level file descriptor and the temporary name; the caller renames it to
    ``path`` with :func:`os.replace` once complete, or deletes it.
    """
    suffix = ".tmp.gz" if path.name.lower().endswith(".gz") else ".tmp"  # astropy compresses a ".gz" name
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, tmp


def output_hdu(data: np.ndarray, header: fits.Header | None, provenance: dict[str, Any] | None) -> fits.PrimaryHDU:
    """A primary HDU of ``data`` keeping ``header`` (structural cards fixed) with the provenance cards added."""
    hdu = fits.PrimaryHDU(data, header=_clean_header(header))
    for key, value in _provenance_cards(provenance or {}).items():
        hdu.header[key] = value
    return hdu


def _clean_header(header: fits.Header | None) -> fits.Header | None:
    if header is None:
        return None
    header = header.copy()
    # Structural cards follow the new data; checksums of the input's pixels would be wrong.
    for key in ("BSCALE", "BZERO", "BLANK", "XTENSION", "PCOUNT", "GCOUNT", "EXTNAME", "CHECKSUM", "DATASUM"):
        header.remove(key, ignore_missing=True, remove_all=True)
    return header


#: Keywords that describe the file's structure: a provenance card may not set them.
STRUCTURAL_KEYS = ("SIMPLE", "BITPIX", "NAXIS", "EXTEND", "END", "XTENSION", "PCOUNT", "GCOUNT", "BSCALE", "BZERO",
                   "BLANK", "GROUPS", "TFIELDS", "CHECKSUM", "DATASUM", "EXTNAME", "CONTINUE", "COMMENT", "HISTORY")


def _provenance_cards(provenance: dict[str, Any]) -> dict[str, tuple[Any, str]]:
    cards: dict[str, tuple[Any, str]] = {"ADVERS": (__version__, PROVENANCE_KEYS["ADVERS"])}
    for name, value in provenance.items():
        if not isinstance(name, str) or not name:
            raise InputError(f"provenance keys must be non-empty strings, got {name!r}")
        key = {"method": "ADMETHOD", "psf": "ADPSF", "params": "ADPARAMS"}.get(name, name.upper()[:8])
        if key.rstrip("0123456789") in STRUCTURAL_KEYS or not key.replace("-", "_").replace("_", "A").isalnum():
            raise InputError(f"provenance key {name!r} -> FITS keyword {key!r} is structural or not a valid keyword; "
                             "use another name")
        if isinstance(value, (dict, list, tuple)):
            value = json.dumps(value, sort_keys=True, default=str)
        if isinstance(value, (np.integer, np.floating, np.bool_)):
            value = value.item()
        if isinstance(value, float) and not np.isfinite(value):
            value = str(value)
        if not isinstance(value, (str, int, float, bool)):
            value = str(value)
        if isinstance(value, str) and not all(" " <= ch <= "~" for ch in value):
            value = value.encode("ascii", "backslashreplace").decode("ascii")  # e.g. a path with accents: kept, escaped
            value = "".join(ch if " " <= ch <= "~" else f"\\x{ord(ch):02x}" for ch in value)
        comment = PROVENANCE_KEYS.get(key, name)
        if isinstance(value, str) and len(value.replace("'", "''")) + len(comment) > 64:
            comment = ""  # a long value is continued over cards, and a comment beside it would be cut (astropy warns)
        cards[key] = (value, comment)
    return cards
