"""Network prediction with Dask: chunked arrays, threads or a ``dask.distributed`` cluster.

Prediction is local (each output pixel sees a ``2 m + 1`` window, ``m`` the network's
margin), so :func:`deconvolve_dask` is one ``map_overlap`` with ``depth = m``. The overlap uses
``boundary="none"``; every chunk (with its overlap) is restored by
:func:`astrodeconv.nn.predict.deconvolve`, which pads the chunk's own sides with the
requested ``boundary`` mode. Overlapped sides carry real neighbours and are trimmed away;
sides on the image's edge are padded exactly as whole-image prediction pads the image, so the
result equals whole-image prediction (float32 rounding, 1e-5). (Dask's own
``boundary="reflect"`` is NumPy's ``"symmetric"``, but padding inside the chunk function keeps
every boundary mode of ``deconvolve`` available.)

The network is one ``dask.delayed`` node of the graph that every chunk task depends on: it
is serialised once with the graph and sent to each worker once, not once per chunk.

Dask is an optional dependency (``pip install "astrodeconv[dask]"``), imported here only.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from .checks import DEFAULT_CHUNK, network_margin, tile_side
from .errors import InputError
from .masks import check_result, fill_bad, restore_bad
from .stream import create_output, open_source, prepare

__all__ = ["cluster_client", "deconvolve_dask", "deconvolve_fits_dask"]

#: How long to wait for a Dask scheduler given by address.
CONNECT_TIMEOUT = "10s"


def _import_dask() -> Any:
    try:
        import dask.array as da
    except ImportError:
        raise InputError('Dask is not installed; pip install "astrodeconv[dask]" (dask[array,distributed])') from None
    return da


def _restore_block(block: np.ndarray, model: Any, tile: int | None, pad: str, device: str, fill: float | None,
                   check: tuple[float, float] | None = None) -> np.ndarray:
    """Restore one chunk (with its overlap); ``check = (peak, scale)`` refuses a non-restoration (:func:`check_result`)."""
    from .nn.predict import deconvolve

    if fill is None:  # the array must be finite (deconvolve says so otherwise): never a per-chunk median
        y, bad = np.asarray(block, dtype=np.float64), np.zeros(np.shape(block), dtype=bool)
    else:
        y, bad = fill_bad(block, fill)
    out = deconvolve(y, model, tile=tile, device=device, boundary=pad)
    if check is not None:
        check_result(out, bad, *check)
    return restore_bad(out, bad).astype(np.float32)


def _merge_small_edges(chunks: tuple[tuple[int, ...], ...], minimum: int) -> tuple[tuple[int, ...], ...]:
    """Merge a last chunk smaller than ``minimum`` into its neighbour; refuse small inner ones."""
    fixed = []
    for axis, sizes in enumerate(chunks):
        sizes = list(sizes)
        if len(sizes) > 1 and sizes[-1] < minimum:
            sizes[-2:] = [sizes[-2] + sizes[-1]]
        if len(sizes) > 1 and min(sizes) < minimum:
            raise InputError(
                f"chunks along axis {axis} are {tuple(sizes)}; every chunk must have at least {minimum} pixels "
                f"(the network's margin + 1): rechunk, e.g. array.rechunk({max(minimum, 256)})"
            )
        fixed.append(tuple(sizes))
    return tuple(fixed)


def deconvolve_dask(
    array: Any,
    model: Any,
    tile: int | None = None,
    *,
    boundary: str = "symmetric",
    fill: float | None = None,
    device: str = "cpu",
    check: tuple[float, float] | None = None,
) -> Any:
    """Restore a (possibly larger than memory) 2-D Dask array with a network, lazily.

    Parameters
    ----------
    array : dask.array.Array or ndarray, shape (H, W)
        Observation in the network's units. Every chunk needs at least ``margin + 1``
        pixels per side (a smaller last chunk is merged into its neighbour).
    model : torch.nn.Module
        Network with an integer ``margin``; becomes one ``dask.delayed`` node, sent to each
        worker once.
    tile : int, optional
        Tile side used inside each chunk (see :func:`astrodeconv.nn.predict.deconvolve`).
    boundary : {"symmetric", "reflect", "edge", "zero"}
        Padding at the image's edges, as for whole-image prediction.
    fill : float, optional
        Value replacing non-finite pixels for the computation (they are NaN in the result),
        e.g. the median of the finite pixels; ``None``: the array must be finite.
    device : {"cpu", "cuda", "auto"}
        Where each chunk is computed.
    check : (peak, scale), optional
        Refuse chunks that are not restorations (:func:`astrodeconv.masks.check_result`).

    Returns
    -------
    restored : dask.array.Array, shape (H, W), float32
        Lazy; ``.compute()`` with the threaded scheduler or a ``distributed.Client``, or
        ``dask.array.store`` it.

    Examples
    --------
    >>> import dask.array as da
    >>> from astrodeconv.nn import create_model, deconvolve
    >>> net = create_model("cnn1")
    >>> y = np.random.default_rng(0).random((50, 45))
    >>> out = deconvolve_dask(da.from_array(y, chunks=16), net).compute(scheduler="threads")
    >>> bool(np.allclose(out, deconvolve(y, net), atol=1e-5))
    True
    """
    da = _import_dask()
    import dask

    margin = network_margin(model)
    tile = tile_side(tile, allow_none=True)
    if fill is not None and not np.isfinite(fill):
        raise InputError(f"fill must be a finite number or None, got {fill!r}")
    array = da.asarray(array)
    if array.ndim != 2 or array.size == 0:
        raise InputError(f"array must be a non-empty 2-D array, got shape {array.shape}")
    chunks = _merge_small_edges(array.chunks, margin + 1)
    if chunks != array.chunks:
        array = array.rechunk(chunks)
    # Put the network in the state deconvolve() puts it in (device, eval, channels-last on CPU)
    # now: threads of one process share it, and converting it in place while another thread
    # runs it would corrupt their outputs.
    from .nn.predict import resolve_device

    dev = resolve_device(device)
    model = model.to(dev).eval()
    if dev.type == "cpu":
        import torch

        model = model.to(memory_format=torch.channels_last)
    shared = dask.delayed(model, pure=False, traverse=False)
    return da.map_overlap(
        _restore_block,
        array,
        depth=margin,
        boundary="none",
        trim=True,
        dtype=np.float32,
        meta=np.empty((0, 0), dtype=np.float32),
        model=shared,
        tile=tile,
        pad=boundary,
        device=device,
        fill=fill,
        check=check,
    )


def _read_block(path: str, index: int, scale: float, block_info: Any = None) -> np.ndarray:
    """Read one chunk of a FITS image (in a worker), in units of ``scale``."""
    from .stream import open_source

    (r0, r1), (c0, c1) = block_info[None]["array-location"]
    with open_source(path, index) as src:
        return src.read(r0, r1, c0, c1) / scale


def deconvolve_fits_dask(
    input_path: str | Path,
    output_path: str | Path,
    model: Any,
    client: Any = None,
    chunk: int = DEFAULT_CHUNK,
    *,
    tile: int | None = None,
    hdu: int | str | None = None,
    scale: float | None = None,
    provenance: dict[str, Any] | None = None,
    overwrite: bool = False,
    boundary: str = "symmetric",
    device: str = "cpu",
    progress: bool = True,
) -> Path:
    """Restore a FITS image with a network on Dask: chunks read, restored and written by workers.

    The statistics (maximum, exact median for non-finite pixels) are computed here by
    streaming the file (see :func:`astrodeconv.stream.prepare`); the output FITS is created
    up front beside ``output_path`` (:func:`astrodeconv.stream.create_output`) and every
    worker writes its chunks into it, so workers must see the input and output folders
    (the same machine, or a shared file system). Arguments as for
    :func:`astrodeconv.stream.deconvolve_fits`, plus

    Parameters
    ----------
    client : distributed.Client, optional
        Cluster to run on; ``None``: Dask's threaded scheduler in this process.
    chunk : int
        Chunk side, pixels (at least the network's margin + 1).
    """
    da = _import_dask()
    import dask

    chunk = tile_side(chunk)
    with open_source(input_path, hdu) as src:
        prep = prepare(src, scale)
        path, index, shape, header = str(src.path.resolve()), src.index, src.shape, src.header
    chunks = da.core.normalize_chunks((chunk, chunk), shape)
    observed = da.map_blocks(_read_block, path, index, prep.scale, chunks=chunks, dtype=np.float64,
                             meta=np.empty((0, 0), dtype=np.float64))
    restored = deconvolve_dask(observed, model, tile, boundary=boundary, fill=prep.fill, device=device,
                               check=(prep.peak, prep.scale))
    restored = (restored * np.float32(prep.scale)).astype(np.float32)
    cards = {**(provenance or {}), "ADNORM": prep.scale}
    with create_output(output_path, shape, header, cards, overwrite) as out:
        job = da.store(restored, out.region, lock=False, compute=False)
        if client is None:
            from dask.diagnostics import ProgressBar

            with ProgressBar(minimum=1.0) if progress else _nothing():
                dask.compute(job, scheduler="threads")
        else:
            future = client.compute(job)
            if progress:
                from distributed import progress as show

                show(future)
            future.result()
    return Path(output_path)


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextmanager
def cluster_client(workers: int | None = None, address: str | None = None) -> Iterator[Any]:
    """A ``distributed.Client``: on a new local cluster of ``workers`` processes, or at ``address``.

    Local workers get one thread each (Dask sets ``OMP_NUM_THREADS=1`` in them, so torch runs
    one thread per worker); the cluster is closed on exit.
    """
    _import_dask()
    from distributed import Client, LocalCluster

    if (workers is None) == (address is None):
        raise InputError("give either a number of local workers (--dask N) or a scheduler address (--scheduler), not both")
    if address is not None:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            raise InputError(f"cannot reach the Dask scheduler at {address!r} within {CONNECT_TIMEOUT}: "
                             f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        with client:
            yield client
        return
    most = 4 * (os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or not 1 <= workers <= most:
        raise InputError(f"--dask needs 1 to {most} workers (4 per core here), got {workers!r}")
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        yield client
