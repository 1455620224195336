"""Command line: ``astrodeconv {psf,simulate,deconvolve,train,train-restorer,benchmark,scaling,demo} ...``.

Thin: every subcommand parses its arguments into plain values, calls one library function
(:mod:`astrodeconv.pipeline`, :mod:`astrodeconv.nn`, :mod:`astrodeconv.experiments`) and
reports. Bad input (an :class:`~astrodeconv.errors.InputError`) prints one line on stderr and
exits with code 2; nothing is written unless the command succeeds.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import warnings
from pathlib import Path
from typing import Any, Sequence

from . import __version__
from .checks import DEFAULT_CHUNK, DEFAULT_TILE, parse_value
from .errors import InputError
from .pipeline import PSF_HELP
from .pipeline import parse_hdu as _hdu


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised as an interruption so that partial outputs are removed on the way out."""


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one-line :class:`InputError` s (``--help`` still exits)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise InputError(f"{self.prog}: {message} (see --help)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 success, 2 bad input, 130/143 interrupted).

    Warnings are printed as one line each after a successful command, and dropped when the
    command fails (its one-line error says what went wrong).
    """
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0)
    except InputError as exc:
        print(f"astrodeconv: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    previous = _on_sigterm()
    try:
        with warnings.catch_warnings(record=True) as caught:
            code = int(args.func(args) or 0)
        for warning in caught:
            print(f"astrodeconv: warning: {_one_line(warning.message)}", file=sys.stderr)
        return code
    except InputError as exc:
        print(f"astrodeconv: error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (OSError, MemoryError, RecursionError) as exc:  # the machine's answer: a full disk, a read-only folder
        print(f"astrodeconv: error: {type(exc).__name__}: {_one_line(exc) or 'no details'}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        print("astrodeconv: interrupted; no output was written under the final name", file=sys.stderr)
        return 143 if isinstance(exc, Terminated) else 130
    finally:
        for signum, handler in (previous or {}).items():
            signal.signal(signum, handler)


def _on_sigterm() -> dict[int, Any] | None:
    """Turn SIGTERM and SIGHUP into :class:`Terminated` (main thread only); return the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum: int, frame: Any) -> None:
        raise Terminated()

    return {signum: signal.signal(signum, handler) for signum in (signal.SIGTERM, signal.SIGHUP)}


def _one_line(message: Any) -> str:
    return " ".join(line.strip() for line in str(message).splitlines() if line.strip())


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="astrodeconv", description="Restore astronomical images: deconvolution with CNNs and classical methods."
    )
    parser.add_argument("--version", action="version", version=f"astrodeconv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("psf", help="write a model PSF, or one estimated from an image's stars, to FITS")
    p.add_argument("model", nargs="?", help="airy-paper, airy, gaussian, moffat (or a full spec such as airy:fwhm=6.5)")
    p.add_argument("--from-stars", type=Path, metavar="OBS", help="estimate the PSF from the isolated, unsaturated "
                   "stars of this FITS image (photutils' EPSFBuilder)")
    p.add_argument("--saturate", type=float, help="--from-stars: saturation level, image units (default: SATURATE)")
    p.add_argument("--mask", metavar="FILE|HDU", help="--from-stars: bad pixels, non-zero = bad (default: a DQ "
                   "extension)")
    p.add_argument("--keep-cold", dest="cold", action="store_false", help="--from-stars: keep the pixels far darker "
                   "than everything around them (default: left out, as dead pixels and bad rows are)")
    for flag, kind, text in (("--fwhm", float, "full width at half maximum, pixels"), ("--beta", float, "Moffat power"),
                             ("--size", int, "side of the grid, pixels"), ("--nr", float, "airy-paper: Airy radii")):
        p.add_argument(flag, type=kind, help=text)
    _output_args(p)
    p.set_defaults(func=_cmd_psf)

    p = sub.add_parser("simulate", help="normalise a clean image, blur it and add noise")
    p.add_argument("clean", type=Path)
    _output_args(p)
    p.add_argument("--psf", default="airy-paper", help=PSF_HELP + " (default airy-paper)")
    p.add_argument("--sigma", type=float, default=0.01, help="Gaussian noise sigma relative to the max (0.01)")
    p.add_argument("--gain", type=float, help="add Poisson noise with this many photons per unit of the normalised image")
    p.add_argument("--boundary", default="zero", choices=("zero", "reflect", "periodic"))
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("deconvolve", help="restore an observation")
    p.add_argument("observed", type=Path)
    _output_args(p)
    p.add_argument("--method", default="restorer-universal", help="restorer-universal (default: any PSF and noise "
                   "level), restorer, wiener, rl, tv, cnn3, cnn1")
    p.add_argument("--psf", help=PSF_HELP + " (default: the ADPSF card written by `simulate`)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="method parameter (repeatable)")
    p.add_argument("--select", choices=("auto", "none", "oracle"), default="auto", help="choose parameters not "
                   "given by --param: auto (discrepancy principle), none (method defaults), oracle (needs --truth)")
    p.add_argument("--sigma", type=float, help="noise sigma in the image's units (e.g. ADU), for the restorers and "
                   "--select auto (default: ADSIGMA, the median of an ERR extension, else estimated from the image)")
    p.add_argument("--sigma-relative", type=float, metavar="FRACTION", help="the noise sigma as a fraction of the "
                   "image's maximum instead (the paper's convention: 0.01)")
    p.add_argument("--truth", type=Path, help="clean image for --select oracle")
    p.add_argument("--model", help="network: model folder or paper .h5 file (default: the shipped model)")
    p.add_argument("--tile", type=int, help=f"network: output tile side of one pass, pixels ({DEFAULT_TILE}); "
                   "also what --stream reads per step")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--stream", action="store_true", help="network: read and write the FITS by tiles from disk "
                   "(automatic above 4096^2 pixels); memory is set by --tile, not by the image")
    p.add_argument("--dask", type=int, metavar="N", help="network: run on a local Dask cluster of N worker processes")
    p.add_argument("--scheduler", metavar="ADDRESS", help="network: run on an existing Dask cluster (tcp://host:8786)")
    p.add_argument("--chunk", type=int, default=DEFAULT_CHUNK, help=f"Dask: chunk side, pixels ({DEFAULT_CHUNK})")
    p.add_argument("--saturate", type=float, help="saturation level, image units (default: the SATURATE card): "
                   "saturated stars are fitted by the PSF on their wings, restored as points")
    p.add_argument("--gain", type=float, help="electrons per image unit (default: GAIN, else measured on the frame's noise where it "
                   "grows with the light): photon noise over the sky's; inf: the sky's noise only")
    p.add_argument("--read-noise", type=float, metavar="E", help="read noise, electrons (default: RDNOISE): the "
                   "least the sky's noise can be, where a gain is known (--gain, GAIN or measured)")
    p.add_argument("--mask", metavar="FILE|HDU", help="bad pixels, non-zero = bad (default: a DQ extension)")
    p.add_argument("--noise-map", metavar="FILE|HDU", help="per-pixel noise sigma, image units (HDU VAR: "
                   "variances; default: an ERR extension)")
    p.add_argument("--no-point-sources", dest="point_sources", action="store_false", help="restore bright stars "
                   "with the rest (default: fitted with the PSF, taken out, put back as points)")
    p.add_argument("--keep-cold", dest="cold", action="store_false", help="keep the pixels far darker than "
                   "everything around them (default: treated as bad, as dead pixels and bad rows are)")
    p.add_argument("--keep-psf", dest="match_psf", action="store_false", help="use the PSF as given (default: "
                   "narrowed to the image's bright isolated stars when it is more than 5 %% wider than they are; its outer "
                   "profile measured on the saturated stars where they show it wrong)")
    p.set_defaults(func=_cmd_deconvolve)

    p = sub.add_parser("train", help="train a network on clean images")
    p.add_argument("--images", nargs="+", required=True, type=Path, help="clean FITS images to draw patches from")
    p.add_argument("--model", default="cnn3", help="architecture (cnn3, cnn1)")
    p.add_argument("-o", "--output", required=True, type=Path, help="model folder to create")
    p.add_argument("--psf", default="airy-paper", help=PSF_HELP)
    p.add_argument("--sigma", type=float, default=0.01, help="noise sigma, a fraction of the images' maximum (0.01)")
    for flag, default in (("--samples", 100_000), ("--val-samples", 50_000), ("--epochs", 30), ("--batch", 50)):
        p.add_argument(flag, type=int, default=default)
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"))
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--patience", type=int, default=0, help="epochs of rising validation loss tolerated (0 = paper)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in the same folder")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("train-restorer", help="train a restorer (Wiener bank + CNN) on fresh random scenes; resumable")
    p.add_argument("--images", nargs="+", required=True, type=Path, help="clean FITS images to simulate scenes from")
    p.add_argument("-o", "--output", required=True, type=Path, help="model folder (an unfinished run is continued)")
    p.add_argument("--setting", default="universal", choices=("universal", "realistic", "paper"), help="scene "
                   "distribution: universal (Airy/Gaussian/Moffat, many widths and noise levels), realistic (30 % of "
                   "them as instruments see the sky: GalSim PSFs, photon noise, PSF estimates; needs GalSim) or paper "
                   "(airy-paper, sigma 0.01)")
    p.add_argument("--epochs", type=int, default=70)
    p.add_argument("--scenes", type=int, default=64, help="new 256 x 256 scenes per epoch")
    p.add_argument("--patches", type=int, default=16, help="windows drawn per scene")
    p.add_argument("--val-scenes", type=int, default=32, help="fixed validation scenes")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate (cosine decay to 0)")
    p.add_argument("--init", type=Path, help="restorer model folder to start from (fine-tuning)")
    p.add_argument("--reference-snr", type=float, help="scale the Wiener bank to each image's signal-to-noise ratio "
                   "with this reference (default: 60 for --setting universal, fixed balances for paper)")
    p.add_argument("--fixed-bank", action="store_true", help="keep the bank's balances fixed whatever the image's "
                   "signal-to-noise ratio (how benchmarks/folds/restorer-universal-pretrained was trained)")
    p.add_argument("--snr-window", type=int, metavar="PX", help="local bank: balances follow the signal-to-noise "
                   "ratio within this many pixels (odd), not the image's")
    p.add_argument("--instrument-fraction", type=float, metavar="F", help="share of the scenes drawn as instruments "
                   "see the sky (0 to 1), in place of the setting's (realistic: 0.3)")
    p.add_argument("--psf-error-fraction", type=float, metavar="F", help="share of the other scenes whose network is "
                   "handed a wrong PSF (width 0.8-1.25x, or another family of its FWHM), the observation made with "
                   "the true one (default 0)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, help="torch threads (default: all available cores)")
    p.set_defaults(func=_cmd_train_restorer)

    p = sub.add_parser("benchmark", help="reproduce the paper's comparison (Table I) on real images")
    p.add_argument("--protocol", default="table1", help="protocol name or .toml file (table1, psf-mismatch)")
    p.add_argument("--quick", action="store_true", help="reduced version: small crops, committed fold models")
    p.add_argument("--data-dir", type=Path, help="folder of the sky images (default ../shared/data/sky)")
    p.add_argument("--folds", type=Path, default=Path("benchmarks/folds"), help="leave-one-out model folders")
    p.add_argument("--train", action="store_true", help="train the missing fold models first (resumes partial ones)")
    p.add_argument("--retrain", action="store_true", help="train every fold model again")
    p.add_argument("--only-train", action="store_true", help="train the fold models, then stop")
    p.add_argument("--arch", nargs="+", help="with --train: only these architectures")
    p.add_argument("--image", nargs="+", help="only these images: the folds holding them out are trained (with "
                   "--train), and their rows computed again and merged into the existing results.csv")
    p.add_argument("--method", nargs="+", help="only these rows (e.g. restorer restorer-universal), merged into the "
                   "existing results of the output folder")
    p.add_argument("-o", "--output", type=Path, default=Path("docs/results"))
    p.set_defaults(func=_cmd_benchmark)

    p = sub.add_parser("scaling", help="prediction time against image size, with log-log slopes")
    p.add_argument("--sizes", nargs="+", type=int, default=[256, 512, 1024, 2048, 4096])
    p.add_argument("--methods", nargs="+", help="methods to time (default: wiener rl tv cnn1 cnn3)")
    p.add_argument("--max-seconds", type=float, default=120.0, help="a method stops growing once one run takes "
                   "longer than this (120)")
    p.add_argument("-o", "--output", type=Path, default=Path("docs/results"))
    p.set_defaults(func=_cmd_scaling)

    p = sub.add_parser("demo", help="simulate the paper's observation of the embedded image and compare methods")
    p.add_argument("-o", "--output", type=Path, default=Path("astrodeconv-demo"), help="folder for the PNG and CSV")
    p.add_argument("--size", type=int, default=512, help="side of the centred crop, pixels (512)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)
    return parser


def _output_args(p: argparse.ArgumentParser, hdu: bool = True) -> None:
    p.add_argument("-o", "--output", required=True, type=Path)
    p.add_argument("--overwrite", action="store_true", help="replace an existing output file")
    if hdu:
        p.add_argument("--hdu", help="HDU index or name (default: first with image data)")


# -- subcommands -------------------------------------------------------------------------


def _cmd_psf(args: argparse.Namespace) -> int:
    from .pipeline import psf_from_stars_file, write_psf

    if (args.model is None) == (args.from_stars is None):
        raise InputError("give either a PSF model (e.g. `psf gaussian --fwhm 3`) or --from-stars OBS.fits")
    if args.from_stars is None and (args.saturate is not None or args.mask is not None or not args.cold):
        raise InputError("--saturate, --mask and --keep-cold apply to --from-stars only")
    if args.from_stars is not None:
        found = psf_from_stars_file(args.from_stars, args.output, saturation=args.saturate, hdu=_hdu(args.hdu),
                                    overwrite=args.overwrite, mask=args.mask, cold=args.cold)
        print(f"{found.summary()} -> {args.output}")
        return 0
    spec, kernel, width = write_psf(args.model, args.output, overwrite=args.overwrite, fwhm=args.fwhm, beta=args.beta,
                                    size=args.size, nr=args.nr)
    print(f"{spec}: {kernel.shape[0]} x {kernel.shape[1]} px, sum 1, FWHM {width:.3f} px -> {args.output}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .pipeline import simulate_file

    shape = simulate_file(args.clean, args.output, psf_spec=args.psf, sigma=args.sigma, gain=args.gain,
                          boundary=args.boundary, seed=args.seed, hdu=_hdu(args.hdu), overwrite=args.overwrite)
    print(f"simulated {args.output}: {shape[0]} x {shape[1]} px, PSF {args.psf}, sigma {args.sigma}, seed {args.seed}")
    return 0


def _cmd_deconvolve(args: argparse.Namespace) -> int:
    from .pipeline import restore_file

    backend = "dask" if args.dask is not None or args.scheduler else "stream" if args.stream else "auto"
    done = restore_file(args.observed, args.output, psf_spec=args.psf, method=args.method,
                        params=_parse_params(args.param), select=args.select, sigma=args.sigma, truth=args.truth,
                        model=args.model, tile=args.tile, device=args.device, backend=backend, workers=args.dask,
                        scheduler=args.scheduler, chunk=args.chunk, hdu=_hdu(args.hdu), overwrite=args.overwrite,
                        saturation=args.saturate, mask=args.mask, sigma_relative=args.sigma_relative,
                        gain=args.gain, read_noise=args.read_noise, point_sources=args.point_sources,
                        noise_map=args.noise_map, match_psf=args.match_psf, cold=args.cold)
    for note in done.notes:
        print(note)
    what = f"({_format_params(done.params)})" if done.how == "in memory" else done.how
    print(f"{done.method} {what} in {done.seconds:.2f} s -> {done.output}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .nn.training import train

    out = train(images=list(args.images), out_dir=args.output, arch=args.model, psf_spec=args.psf, progress=True,
                **_pick(args, "sigma samples val_samples epochs batch seed resume optimizer lr patience"))
    print(f"model written to {out}")
    return 0


def _cmd_train_restorer(args: argparse.Namespace) -> int:
    from .nn.restorer_training import reference_snr_for, train_restorer

    reference_snr = reference_snr_for(args.setting, args.reference_snr, args.fixed_bank)
    out = train_restorer(list(args.images), args.output, reference_snr=reference_snr,
                         **_pick(args, "setting epochs scenes patches val_scenes batch lr init seed threads snr_window "
                                 "instrument_fraction psf_error_fraction"))
    print(f"model written to {out}")
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from .experiments import run_benchmark

    return _print(run_benchmark(args.protocol, archs=args.arch, images=args.image, methods=args.method,
                                **_pick(args, "data_dir folds output quick train retrain only_train")))


def _cmd_scaling(args: argparse.Namespace) -> int:
    from .experiments import run_scaling

    return _print(run_scaling(args.sizes, args.methods, args.max_seconds, args.output))


def _cmd_demo(args: argparse.Namespace) -> int:
    from .experiments import run_demo

    return _print(run_demo(args.output, args.size, args.seed))


# -- helpers -----------------------------------------------------------------------------


def _print(report: Any) -> int:
    for note in report.notes:
        print(f"note: {note}", file=sys.stderr)
    if report.text:
        print(report.text)
    return 0


def _pick(args: argparse.Namespace, names: str) -> dict[str, Any]:
    return {name: getattr(args, name) for name in names.split()}


def _parse_params(items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as a dict: integers, floats, None, True and False, else the text (quotes removed)."""
    params: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise InputError(f"--param expects KEY=VALUE, got {item!r}")
        params[key] = parse_value(raw)
    return params


def _format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) or "defaults"


if __name__ == "__main__":
    sys.exit(main())
