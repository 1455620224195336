"""Benchmark protocols: what to observe, restore and score, read from TOML files.

A protocol file (``astrodeconv/experiments/protocols/<name>.toml``) names its ``kind``, the
test images, the observation model (PSF, boundary, noise, seed), the crop, the border left
out of the scores and the methods. Each kind has its own frozen dataclass:

* ``table1`` (:class:`Table1Protocol`): the paper's leave-one-out comparison, with the
  networks trained per held-out image;
* ``grid`` (:class:`GridProtocol`): every image observed with every PSF of ``grid_psfs`` and
  every noise level of ``grid_sigmas``;
* ``psf-mismatch`` (:class:`MismatchProtocol`): observed with ``psf``, restored with every
  PSF of ``psf_given``;
* ``realistic`` (:class:`RealisticProtocol`): GalSim frames as instruments write them.

Unknown, missing and other-kind keys are errors.

Examples
--------
>>> protocol = load_protocol("table1")
>>> protocol.kind, protocol.psf, protocol.crop
('table1', 'airy-paper', 1024)
>>> protocol.quick_version().crop
192
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path
from typing import Any, ClassVar

from ..errors import InputError
from .instrument import PSF_SIDE

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["GridProtocol", "KINDS", "MismatchProtocol", "PROTOCOLS_DIR", "Protocol", "RealisticProtocol", "Table1Protocol",
           "check_kind", "load_protocol", "record", "record_differences"]

PROTOCOLS_DIR = Path(__file__).resolve().parent / "protocols"

#: Fields that say which rows to compute or how to train, not what a row's number means.
NOT_IDENTITY = ("training", "quick", "restorer_training", "restorer_universal_training", "networks", "pretrained",
                "classical", "selections", "description")


@dataclass(frozen=True, kw_only=True)
class Protocol:
    """The fields every kind of protocol has; see ``protocols/table1.toml`` for their meaning.

    Attributes
    ----------
    kind : str
        Class attribute: the ``kind`` key of the files of this class.
    name, description : str
        Short name, and the title of the rendered tables.
    images : list of str
        Sky images (``<name>.fits.gz`` in the data folder), normalised to a maximum of 1.
    psf : str
        PSF spec of the observations (:func:`astrodeconv.psf.parse_spec`).
    boundary : str
        Boundary of the blur (:func:`astrodeconv.forward.observe`).
    sigma : float
        Gaussian noise sigma, in units of the clean image's maximum.
    seed : int
        Image ``i`` is observed with ``numpy.random.default_rng(seed + i)``.
    crop : int
        Side of the centred square scored, pixels (taken after observing the full image).
    border : int
        Pixels per side left out of PSNR and SSIM.
    classical : list of str
        Classical methods, each run with every selection of ``selections``.
    selections : list of str
        Parameter selection modes (``oracle``, ``auto``).
    pretrained : list of str
        Networks given the PSF and sigma, restoring each image with their leave-one-out fold
        when one is trained (else the shipped model).
    quick : dict
        Field values of the reduced version (:meth:`quick_version`).
    """

    kind: ClassVar[str] = ""

    name: str
    description: str
    images: list[str]
    psf: str
    boundary: str
    sigma: float
    seed: int
    crop: int
    border: int
    classical: list[str]
    selections: list[str]
    pretrained: list[str] = field(default_factory=list)
    quick: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_types(self)
        if not self.images:
            raise InputError(f"protocol {self.name!r} has no images; expected a list of sky image names")
        if not (self.sigma >= 0 and 0 <= 2 * self.border < self.crop):
            raise InputError(f"protocol {self.name!r} has sigma {self.sigma}, crop {self.crop} and border "
                             f"{self.border}; expected sigma >= 0 and 0 <= 2 * border < crop")
        changeable = set(_field_names(type(self))) - {"quick"}
        unknown = sorted(set(self.quick) - changeable)
        if unknown:
            raise InputError(f"protocol {self.name!r}: [quick] keys {unknown} are not fields of a {self.kind} "
                             f"protocol; expected some of {sorted(changeable)}")

    def quick_version(self) -> "Protocol":
        """The reduced protocol (smaller crops, same images and models), its changes appended to the description."""
        changes = ", ".join(f"{k} {v}" for k, v in self.quick.items())
        description = f"{self.description} (quick: {changes})" if changes else self.description
        return dataclasses.replace(self, **{**self.quick, "quick": {}, "description": description})

    def check_images(self, images: list[str] | None) -> None:
        """Raise :class:`InputError` unless every name of ``images`` is one of the protocol's."""
        unknown = sorted(set(images or ()) - set(self.images))
        if unknown:
            raise InputError(f"images {unknown} are not in protocol {self.name!r}; expected some of {self.images}")


@dataclass(frozen=True, kw_only=True)
class Table1Protocol(Protocol):
    """The paper's leave-one-out comparison (Table I).

    Attributes
    ----------
    networks : list of str
        Networks trained per held-out image (``<folds>/<arch>-<image>``) and scored on it.
    training : dict
        Keyword arguments of :func:`astrodeconv.nn.training.train` for ``cnn1`` and ``cnn3``.
    restorer_training, restorer_universal_training : dict
        Keyword arguments of :func:`astrodeconv.nn.restorer_training.train_restorer` for the
        ``restorer`` and ``restorer-universal`` folds (``init``: a model folder or a shipped
        model's name; ``extra_images``: more training images).
    paper_weights : dict
        Image -> the authors' released model that held it out (``default`` for the others).
    paper_rows : dict
        Image -> the row of the paper's Table I on the same object.
    """

    kind: ClassVar[str] = "table1"

    networks: list[str]
    training: dict[str, Any] = field(default_factory=dict)
    restorer_training: dict[str, Any] = field(default_factory=dict)
    restorer_universal_training: dict[str, Any] = field(default_factory=dict)
    paper_weights: dict[str, str] = field(default_factory=dict)
    paper_rows: dict[str, str] = field(default_factory=dict)

    def training_settings(self, arch: str) -> dict[str, Any]:
        """A copy of the keyword arguments that train the restorer ``arch``'s folds."""
        settings = {"restorer": self.restorer_training, "restorer-universal": self.restorer_universal_training}
        if arch not in settings:
            raise InputError(f"protocol {self.name!r} has no training settings for {arch!r}; expected one of "
                             f"{list(settings)}")
        return dict(settings[arch])


@dataclass(frozen=True, kw_only=True)
class GridProtocol(Protocol):
    """Methods over a grid of PSFs and noise levels; ``psf`` and ``sigma`` are replaced in every cell.

    Attributes
    ----------
    grid_psfs : dict
        Label -> PSF spec of the observation, also given to the methods.
    grid_sigmas : list of float
        Noise levels, in units of the clean image's maximum.
    """

    kind: ClassVar[str] = "grid"

    grid_psfs: dict[str, str]
    grid_sigmas: list[float]

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.grid_psfs or not self.grid_sigmas:
            raise InputError(f"grid protocol {self.name!r} has grid_psfs {self.grid_psfs} and grid_sigmas "
                             f"{self.grid_sigmas}; expected at least one PSF and one sigma")


@dataclass(frozen=True, kw_only=True)
class MismatchProtocol(Protocol):
    """Observations made with ``psf``, restored with each PSF of ``psf_given``.

    Attributes
    ----------
    psf_given : dict
        Label -> PSF spec given to the methods; the first entry is the reference.
    """

    kind: ClassVar[str] = "psf-mismatch"

    psf_given: dict[str, str]

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.psf_given:
            raise InputError(f"psf-mismatch protocol {self.name!r} has an empty psf_given table; expected "
                             "label = PSF spec entries")


@dataclass(frozen=True, kw_only=True)
class RealisticProtocol:
    """Frames simulated with GalSim as instruments make them (:mod:`astrodeconv.experiments.realistic`).

    Attributes
    ----------
    name, description : str
    images : list of str
        Sky images whose first is the extended emission of the ``sky`` scene.
    scenes : list of str
        Of ``stars``, ``galaxies``, ``deep``, ``sky`` (:mod:`astrodeconv.experiments.instrument`).
    psfs : list of str
        Of ``ground``, ``space``.
    psf_cases : list of str
        Of ``exact``, ``stars``, ``moffat``, ``wide``; the first is the table's reference.
    methods : list of str
        Registered methods, run through the pipeline with its automatic choices.
    size : int
        Side of the frames, pixels.
    seed : int
        Frame ``k`` (scene x PSF, in order) is simulated with seed ``seed + k``.
    border : int
        Pixels per side left out of PSNR, SSIM and the flux ratio.
    detector : dict
        :class:`astrodeconv.experiments.instrument.Detector` fields (sky, gain, read_noise, bias, saturate).
    psf_reach : int
        Side of the PSF the scenes are blurred with, pixels (the frames come with its central
        63 px: :func:`astrodeconv.experiments.instrument.frame`).
    quick : dict
        Field values of the reduced version.
    """

    kind: ClassVar[str] = "realistic"

    name: str
    description: str
    images: list[str]
    scenes: list[str]
    psfs: list[str]
    psf_cases: list[str]
    methods: list[str]
    size: int
    seed: int
    border: int
    detector: dict[str, Any] = field(default_factory=dict)
    psf_reach: int = PSF_SIDE
    quick: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_types(self)
        if self.psf_reach < PSF_SIDE or self.psf_reach % 2 == 0 or self.psf_reach > 1023:
            raise InputError(f"realistic protocol {self.name!r} has psf_reach {self.psf_reach}; expected an odd "
                             f"number of pixels from {PSF_SIDE} to 1023")
        allowed = {"scenes": ("stars", "galaxies", "deep", "sky"), "psfs": ("ground", "space"),
                   "psf_cases": ("exact", "stars", "moffat", "wide")}
        for key, choices in allowed.items():
            values = getattr(self, key)
            if not values or set(values) - set(choices):
                raise InputError(f"realistic protocol {self.name!r}: {key} = {values}; expected some of {list(choices)}")
        if not (64 <= self.size <= 4096 and 0 <= 2 * self.border < self.size):
            raise InputError(f"realistic protocol {self.name!r} has size {self.size} and border {self.border}; "
                             "expected 64 <= size <= 4096 and 0 <= 2 * border < size")

    def quick_version(self) -> "RealisticProtocol":
        changes = ", ".join(f"{k} {v}" for k, v in self.quick.items())
        description = f"{self.description} (quick: {changes})" if changes else self.description
        return dataclasses.replace(self, **{**self.quick, "quick": {}, "description": description})


#: The protocol class of each ``kind``.
KINDS: dict[str, type] = {cls.kind: cls for cls in (Table1Protocol, GridProtocol, MismatchProtocol, RealisticProtocol)}


def load_protocol(name_or_path: str | Path) -> Protocol:
    """Read a protocol by name (``table1``, ``grid``, ``psf-mismatch``) or from a ``.toml`` file.

    Parameters
    ----------
    name_or_path : str or Path
        The name of a shipped protocol, or the path of a TOML file.

    Returns
    -------
    Protocol
        A :class:`Table1Protocol`, :class:`GridProtocol` or :class:`MismatchProtocol`,
        after the file's ``kind``.

    Raises
    ------
    InputError
        For an unknown name, a file that is not TOML, a missing or unknown ``kind``, and
        unknown, missing or other-kind keys.
    """
    path = _protocol_path(name_or_path)
    data = _read_toml(path)
    kind = data.pop("kind", None)
    if kind not in KINDS:
        given = "no 'kind' key" if kind is None else f"kind {kind!r}"
        raise InputError(f"protocol {path} has {given}; expected kind = one of {list(KINDS)}")
    cls = KINDS[kind]
    _check_keys(path, kind, data)
    return cls(**data)


def _protocol_path(name_or_path: str | Path) -> Path:
    """The TOML file of a protocol name or path (an :class:`InputError` for other files)."""
    path = Path(name_or_path)
    known = sorted(p.stem for p in PROTOCOLS_DIR.glob("*.toml"))
    if path.suffix and path.suffix != ".toml":
        raise InputError(f"protocol {str(name_or_path)!r} is a {''.join(path.suffixes)} file; expected a protocol "
                         f"name ({', '.join(known)}) or a .toml file")
    if not path.suffix:
        path = PROTOCOLS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        raise InputError(f"unknown protocol {str(name_or_path)!r}: expected one of {known} or a .toml file")
    return path


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text())
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InputError(f"protocol {path} is not a valid TOML file ({exc}); expected key = value lines") from None


def _check_keys(path: Path, kind: str, data: dict[str, Any]) -> None:
    """Raise :class:`InputError` for keys that are unknown, of another kind, or missing."""
    allowed = set(_field_names(KINDS[kind]))
    other_kinds = {key: k for k, cls in KINDS.items() if k != kind for key in set(_field_names(cls)) - allowed}
    wrong = sorted(set(data) & set(other_kinds))
    if wrong:
        owners = ", ".join(f"{key!r} ({other_kinds[key]})" for key in wrong)
        raise InputError(f"protocol {path} is of kind {kind!r}, but has keys of other kinds: {owners}; "
                         "remove them or change the kind")
    required = {f.name for f in fields(KINDS[kind]) if f.default is MISSING and f.default_factory is MISSING}
    unknown, missing = set(data) - allowed, required - set(data)
    if unknown or missing:
        raise InputError(f"protocol {path}: unknown keys {sorted(unknown)}, missing keys {sorted(missing)}")


def _check_types(protocol: Protocol) -> None:
    """Raise :class:`InputError` for a field whose value is not of its annotated type (a number for a float)."""
    hints = typing.get_type_hints(type(protocol))
    wrong = []
    for f in fields(protocol):
        expected = typing.get_origin(hints[f.name]) or hints[f.name]
        value = getattr(protocol, f.name)
        allowed = (int, float) if expected is float else expected
        if isinstance(value, bool) or not isinstance(value, allowed):
            wrong.append(f"{f.name} = {value!r} (expected {expected.__name__})")
    if wrong:
        raise InputError(f"protocol {protocol.name!r} has values of the wrong type: {'; '.join(wrong)}")


def _field_names(cls: type[Protocol]) -> list[str]:
    return [f.name for f in fields(cls)]


def check_kind(protocol: Protocol, cls: type[Protocol]) -> None:
    """Raise :class:`InputError` unless ``protocol`` is a ``cls`` (e.g. a :class:`GridProtocol`)."""
    if not isinstance(protocol, cls):
        raise InputError(f"protocol {protocol.name!r} is of kind {protocol.kind!r}; expected a {cls.kind!r} protocol")


def record(protocol: Protocol) -> dict[str, Any]:
    """What identifies a protocol's results: the data, observation and scoring (not the rows or training).

    Written as ``protocol.json`` beside the results; compared by :func:`record_differences`.
    """
    return {k: v for k, v in dataclasses.asdict(protocol).items() if k not in NOT_IDENTITY}


def record_differences(protocol: Protocol, recorded: dict[str, Any]) -> list[str]:
    """The identifying fields in which ``recorded`` (a ``protocol.json``) differs from ``protocol``.

    A field of the protocol that ``recorded`` lacks reads as its default (it was added after the
    results were written); a recorded key that the protocol's kind has no field for counts
    only when its value is not empty (records of all kinds once shared one set of fields).
    """
    names = set(_field_names(type(protocol)))
    theirs = {k: v for k, v in recorded.items()
              if k not in NOT_IDENTITY and (k in names or v not in ({}, [], "", None))}
    ours = record(protocol)
    defaults = {f.name: f.default_factory() for f in fields(protocol) if f.default_factory is not MISSING}
    return sorted(k for k in set(theirs) | set(ours) if theirs.get(k, defaults.get(k)) != ours.get(k, defaults.get(k)))
