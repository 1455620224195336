"""The paper's experiments, built on the library: Table I, the grid, the PSF mismatch, scaling and the demo.

The core of :mod:`astrodeconv` never imports this package; these modules import the core.
The command line calls the three entry points below with plain values; each returns a
:class:`Report` (what to print, and the files written) and raises
:class:`~astrodeconv.errors.InputError` for bad input.

* :mod:`.protocols` — the protocol files (``protocols/*.toml``), one dataclass per kind;
* :mod:`.table1`, :mod:`.grid`, :mod:`.mismatch` — the rows and reports of each kind;
* :mod:`.folds`, :mod:`.results` — test cases, leave-one-out models, tidy result files;
* :mod:`.evaluation` — one method scored on one observation;
* :mod:`.scaling`, :mod:`.demo`, :mod:`.features`, :mod:`.plots`.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    from .protocols import Protocol, Table1Protocol

__all__ = ["Report", "run_benchmark", "run_demo", "run_scaling"]


@dataclass(frozen=True)
class Report:
    """What an experiment produced.

    Attributes
    ----------
    text : str
        For standard output: the rendered table, then the files written.
    notes : list of str
        Remarks for standard error, one line each, without a prefix.
    paths : list of Path
        The files (and trained model folders) written.
    """

    text: str
    notes: list[str] = field(default_factory=list)
    paths: list[Path] = field(default_factory=list)


def run_benchmark(
    protocol: str | Path = "table1",
    *,
    data_dir: Path | None = None,
    folds: Path = Path("benchmarks/folds"),
    output: Path = Path("docs/results"),
    quick: bool = False,
    train: bool = False,
    retrain: bool = False,
    only_train: bool = False,
    archs: list[str] | None = None,
    images: list[str] | None = None,
    methods: list[str] | None = None,
) -> Report:
    """Run a benchmark protocol and write its report.

    Parameters
    ----------
    protocol : str or Path
        A protocol name (``table1``, ``grid``, ``psf-mismatch``, ``realistic``) or a ``.toml`` file.
    data_dir : Path, optional
        Folder of the sky images (default :func:`astrodeconv.data.sky_dir`).
    folds : Path
        Folder of the leave-one-out models ``<arch>-<image>/``.
    output : Path
        Folder of the report: ``results.csv``, ``protocol.json``, ``table1.md`` and figures
        for ``table1``; ``grid.*`` or ``psf_mismatch.*`` for the other kinds.
    quick : bool
        Run the protocol's reduced version (its ``[quick]`` table).
    train, retrain, only_train : bool
        ``table1`` only: train the missing folds first, train every fold again, or train and stop.
    archs : list of str, optional
        With training: only these architectures.
    images : list of str, optional
        ``table1`` only: only these images (their folds trained, their rows computed again and
        merged into the results already in ``output``).
    methods : list of str, optional
        Only these row labels, merged into the results already in ``output``.

    Returns
    -------
    Report
        ``text``: the Markdown table, then the files written.
    """
    from ..data import sky_dir
    from .protocols import Table1Protocol, load_protocol

    loaded = load_protocol(protocol)
    data_dir = Path(data_dir) if data_dir is not None else sky_dir()
    missing = [name for name in loaded.images if not (data_dir / f"{name}.fits.gz").is_file()]
    if missing:
        raise InputError(f"{data_dir} lacks the protocol's images {missing}; point --data-dir to them")
    if isinstance(loaded, Table1Protocol):
        return _table1(loaded, data_dir, Path(folds), Path(output), quick=quick, train=train, retrain=retrain,
                       only_train=only_train, archs=archs, images=images, methods=methods)
    if train or retrain or only_train or images:
        raise InputError(f"protocol {loaded.name!r} trains no network and runs every image: "
                         "drop --train, --retrain, --only-train and --image")
    return _untrained(loaded.quick_version() if quick else loaded, data_dir, Path(folds), Path(output), methods)


def _table1(protocol: Table1Protocol, data_dir: Path, folds: Path, output: Path, *, quick: bool, train: bool,
            retrain: bool, only_train: bool, archs: list[str] | None, images: list[str] | None,
            methods: list[str] | None) -> Report:
    """Train the missing folds if asked, compute the rows, merge them with earlier ones, write the report."""
    from .. import data
    from . import table1
    from .results import previous_results

    protocol.check_images(images)
    evaluated = protocol.quick_version() if quick else protocol
    partial = images or methods
    previous = [] if only_train or not partial else previous_results(evaluated, output)
    trained: list[Path] = []
    if train or retrain or only_train:
        trained = table1.train_folds(protocol, data_dir, folds, archs=archs, images=images, retrain=retrain)
        if only_train:
            return Report("", paths=trained)
    notes = [f"{output} had no results; the table holds only {partial}"] if partial and not previous else []
    shared = data.shared_dir()
    paper_dir = shared / "reference" if shared and (shared / "reference").is_dir() else None
    rows, kept = table1.run(evaluated, data_dir, folds, paper_dir=paper_dir, images=images, methods=methods)
    rows = table1.merge_results(previous, rows, evaluated, by_method=bool(methods))
    written = table1.write_report(rows, kept, evaluated, output, data_dir, folds, paper_dir)
    return Report(_with_paths((output / "table1.md").read_text(), written), notes, trained + written)


def _untrained(protocol: Any, data_dir: Path, folds: Path, output: Path, methods: list[str] | None) -> Report:
    """A grid or PSF-mismatch protocol: compute the rows, merge earlier ones (with ``methods``), write ``<stem>.*``."""
    from . import grid, mismatch, realistic
    from .results import read_results

    module = {"grid": grid, "psf-mismatch": mismatch, "realistic": realistic}[protocol.kind]
    rows = module.run(protocol, data_dir, methods=methods, folds=folds)
    previous = output / f"{module.STEM}.csv"
    if methods and previous.is_file():
        rows = module.merge((realistic.read_rows if module is realistic else read_results)(previous), rows)
    written = module.write_report(rows, protocol, output)
    return Report(_with_paths((output / f"{module.STEM}.md").read_text(), written), paths=written)


def run_scaling(
    sizes: Sequence[int] = (256, 512, 1024, 2048, 4096),
    methods: Sequence[str] | None = None,
    max_seconds: float = 120.0,
    output: Path = Path("docs/results"),
) -> Report:
    """Time each method against the image size and write ``scaling.csv``, ``scaling.md`` and ``scaling.png``.

    Parameters
    ----------
    sizes : sequence of int
        Sides of the square observations, pixels (at least the PSF's 64).
    methods : sequence of str, optional
        Methods of :data:`astrodeconv.experiments.scaling.SCALING_METHODS` to time (default: all).
    max_seconds : float
        A method stops growing once one run takes longer than this, seconds (positive).
    output : Path
        Folder of the report.

    Returns
    -------
    Report
        ``text``: the table of times and log-log slopes, then the files written.
    """
    from ..psf import airy_paper
    from . import scaling

    chosen = scaling.SCALING_METHODS
    if methods:
        unknown = set(methods) - set(chosen)
        if unknown:
            raise InputError(f"--methods {sorted(unknown)} not timed; choose from {list(chosen)}")
        chosen = {m: chosen[m] for m in methods}
    side = airy_paper().shape[0]
    sizes = _checked_sizes(sizes, side)
    limit = _positive_seconds(max_seconds)
    rows = scaling.measure(chosen, sizes, max_seconds=limit)
    written = scaling.write_report(rows, Path(output), chosen)
    return Report(_with_paths((Path(output) / "scaling.md").read_text(), written), paths=written)


def _checked_sizes(sizes: Sequence[int], side: int) -> tuple[int, ...]:
    """``sizes`` as a tuple of ints, each at least ``side`` pixels (an :class:`InputError` otherwise)."""
    if not sizes:
        raise InputError(f"--sizes is empty; expected image sides of at least {side} pixels, e.g. 256 512 1024")
    try:
        checked = tuple(operator.index(n) for n in sizes)
    except TypeError:
        raise InputError(f"--sizes must be whole numbers of pixels, got {list(sizes)}") from None
    large = [n for n in checked if n > 16384]
    if large:
        raise InputError(f"--sizes {large} are too large: at most 16384 pixels per side (2 GiB per float64 image)")
    small = [n for n in checked if n < side]
    if small:
        raise InputError(f"--sizes {small} are too small: expected image sides of at least {side} pixels "
                         "(the side of the airy-paper PSF)")
    return checked


def _positive_seconds(value: float) -> float:
    """``value`` as a float if it is a finite positive number of seconds (an :class:`InputError` otherwise)."""
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = math.nan
    if not (math.isfinite(seconds) and seconds > 0):
        raise InputError(f"--max-seconds must be positive, got {value}")
    return seconds


def run_demo(output: Path = Path("astrodeconv-demo"), size: int = 512, seed: int = 0) -> Report:
    """Restore the paper's observation of the embedded Hubble Deep Field with every method.

    Parameters
    ----------
    output : Path
        Folder (created if missing) for ``demo.md`` and ``demo.png``; not an existing file.
    size : int
        Side of the centred crop, pixels (at least the PSF's 64).
    seed : int
        Seed of the noise.

    Returns
    -------
    Report
        ``text``: the setting, the table of scores and the figure's path.
    """
    from . import demo

    result = demo.run(Path(output), size=size, seed=seed)
    text = "\n".join([result.heading, result.table, f"figure: {result.figure}"])
    return Report(text, paths=[result.markdown, result.figure])


def _with_paths(table: str, written: list[Path]) -> str:
    """``table`` then the line naming the files written, as printed."""
    return f"{table}\nwrote " + ", ".join(str(p) for p in written)
