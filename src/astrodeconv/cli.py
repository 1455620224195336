"""Command line: ``astrodeconv {psf,simulate,deconvolve,train,demo} ...``.

Thin: every subcommand parses its arguments, calls the library and reports. Bad input
(an :class:`~astrodeconv.errors.InputError`) prints one line on stderr and exits with
code 2; nothing is written unless the command succeeds.
"""

from __future__ import annotations

import argparse
import ast
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from . import __version__
from .errors import InputError

PSF_HELP = "PSF: airy-paper, airy:fwhm=6.5, gaussian:fwhm=4, moffat:fwhm=5,beta=3, or a FITS file"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code (0 success, 2 bad input)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits on --help (0) and on usage errors (2)
        return int(exc.code or 0)
    try:
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"astrodeconv: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("astrodeconv: interrupted; no output was written under the final name", file=sys.stderr)
        return 130


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="astrodeconv", description="Restore astronomical images: deconvolution with CNNs and classical methods."
    )
    parser.add_argument("--version", action="version", version=f"astrodeconv {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("psf", help="write a model PSF to FITS and print its FWHM")
    p.add_argument("model", help="airy-paper, airy, gaussian, moffat (or a full spec such as airy:fwhm=6.5)")
    p.add_argument("--fwhm", type=float, help="full width at half maximum, pixels")
    p.add_argument("--beta", type=float, help="Moffat power")
    p.add_argument("--size", type=int, help="side of the grid, pixels")
    p.add_argument("--nr", type=float, help="airy-paper: Airy radii across the half grid")
    p.add_argument("-o", "--output", required=True, type=Path)
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_psf)

    p = sub.add_parser("simulate", help="normalise a clean image, blur it and add noise")
    p.add_argument("clean", type=Path)
    p.add_argument("-o", "--output", required=True, type=Path)
    p.add_argument("--psf", default="airy-paper", help=PSF_HELP + " (default airy-paper)")
    p.add_argument("--sigma", type=float, default=0.01, help="Gaussian noise sigma relative to the max (0.01)")
    p.add_argument("--gain", type=float, help="add Poisson noise with this many photons per unit of the normalised image")
    p.add_argument("--boundary", default="zero", choices=("zero", "reflect", "periodic"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--hdu", help="HDU index or name (default: first with image data)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_simulate)

    p = sub.add_parser("deconvolve", help="restore an observation")
    p.add_argument("observed", type=Path)
    p.add_argument("-o", "--output", required=True, type=Path)
    p.add_argument("--method", default="restorer-universal",
                   help="restoration method: restorer-universal (default: any PSF and noise level, no training), "
                   "restorer, wiener, rl, tv, cnn3, cnn1")
    p.add_argument("--psf", help=PSF_HELP + " (default: the ADPSF card written by `simulate`)")
    p.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="method parameter (repeatable)")
    p.add_argument(
        "--select",
        choices=("auto", "none", "oracle"),
        default="auto",
        help="choose parameters not given by --param: auto (discrepancy principle; default), "
        "none (method defaults), oracle (needs --truth)",
    )
    p.add_argument("--sigma", type=float, help="noise sigma in units of the image's maximum, for the restorers and "
                   "--select auto (default: the ADSIGMA card, else estimated from the image's finest wavelet details)")
    p.add_argument("--truth", type=Path, help="clean image for --select oracle")
    p.add_argument("--model", help="network: model folder or paper .h5 file (default: the shipped model)")
    p.add_argument("--tile", type=int, help="network: predict by tiles of this side, pixels")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--stream", action="store_true", help="network: read and write the FITS by tiles from disk "
                   "(automatic above 4096^2 pixels); memory is set by --tile, not by the image")
    p.add_argument("--dask", type=int, metavar="N", help="network: run on a local Dask cluster of N worker processes")
    p.add_argument("--scheduler", metavar="ADDRESS", help="network: run on an existing Dask cluster (tcp://host:8786)")
    p.add_argument("--hdu", help="HDU index or name (default: first with image data)")
    p.add_argument("--overwrite", action="store_true")
    p.set_defaults(func=_cmd_deconvolve)

    p = sub.add_parser("train", help="train a network on clean images")
    p.add_argument("--images", nargs="+", required=True, type=Path, help="clean FITS images to draw patches from")
    p.add_argument("--model", default="cnn3", help="architecture (cnn3, cnn1)")
    p.add_argument("-o", "--output", required=True, type=Path, help="model folder to create")
    p.add_argument("--psf", default="airy-paper", help=PSF_HELP)
    p.add_argument("--sigma", type=float, default=0.01)
    p.add_argument("--samples", type=int, default=100_000)
    p.add_argument("--val-samples", type=int, default=50_000)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch", type=int, default=50)
    p.add_argument("--optimizer", default="sgd", choices=("sgd", "adam"))
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--patience", type=int, default=0, help="epochs of rising validation loss tolerated (0 = paper)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--resume", action="store_true", help="continue an interrupted run in the same folder")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("train-restorer", help="train a restorer (Wiener bank + CNN) on fresh random scenes; resumable")
    p.add_argument("--images", nargs="+", required=True, type=Path, help="clean FITS images to simulate scenes from")
    p.add_argument("-o", "--output", required=True, type=Path,
                   help="model folder (an unfinished run there, with its checkpoint.pt, is continued)")
    p.add_argument("--setting", default="universal", choices=("universal", "paper"),
                   help="scene distribution: universal (Airy/Gaussian/Moffat FWHM 3-12, sigma 0.003-0.05, Poisson) "
                   "or paper (airy-paper, sigma 0.01)")
    p.add_argument("--epochs", type=int, default=70)
    p.add_argument("--scenes", type=int, default=64, help="new 256 x 256 scenes per epoch")
    p.add_argument("--patches", type=int, default=16, help="windows drawn per scene")
    p.add_argument("--val-scenes", type=int, default=32, help="fixed validation scenes")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3, help="initial Adam learning rate (cosine decay to 0)")
    p.add_argument("--init", type=Path, help="restorer model folder to start from (fine-tuning)")
    p.add_argument("--reference-snr", type=float,
                   help="scale the Wiener bank to each image's signal-to-noise ratio, with this reference "
                        "(default: 60 for --setting universal, fixed balances for paper)")
    p.add_argument("--fixed-bank", action="store_true",
                   help="keep the bank's balances fixed whatever the image's signal-to-noise ratio "
                        "(how benchmarks/folds/restorer-universal-pretrained was trained)")
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
    p.add_argument("--max-seconds", type=float, default=120.0,
                   help="a method stops growing once one run takes longer than this (default 120)")
    p.add_argument("-o", "--output", type=Path, default=Path("docs/results"))
    p.set_defaults(func=_cmd_scaling)

    p = sub.add_parser("demo", help="simulate the paper's observation of the embedded image and compare methods")
    p.add_argument("-o", "--output", type=Path, default=Path("astrodeconv-demo"), help="folder for the PNG and CSV")
    p.add_argument("--size", type=int, default=512, help="side of the centred crop, pixels (512)")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)
    return parser


# -- subcommands -------------------------------------------------------------------------


def _cmd_psf(args: argparse.Namespace) -> int:
    from . import io, psf

    options = {k: getattr(args, k) for k in ("fwhm", "beta", "size", "nr") if getattr(args, k) is not None}
    spec = args.model + (("," if ":" in args.model else ":") + ",".join(f"{k}={v}" for k, v in options.items()) if options else "")
    io.check_output(args.output, args.overwrite)
    kernel = psf.parse_spec(spec)
    width = psf.fwhm(kernel)
    io.write_image(args.output, kernel, provenance={"psf": spec, "ADFWHM": round(width, 4)}, overwrite=args.overwrite)
    print(f"{spec}: {kernel.shape[0]} x {kernel.shape[1]} px, sum 1, FWHM {width:.3f} px -> {args.output}")
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from . import forward, io, psf

    io.check_output(args.output, args.overwrite)
    clean, header = io.read_image(args.clean, hdu=_hdu(args.hdu))
    _check_pixels(clean, args.clean)
    kernel = psf.parse_spec(args.psf)
    _check_psf_fits(kernel, clean, args.psf)
    bad = ~np.isfinite(clean)
    x, record = forward.normalise(np.where(bad, np.nan, clean))
    x = np.where(bad, 0.0, x)
    y = forward.observe(x, kernel, sigma=args.sigma, rng=args.seed, boundary=args.boundary, gain=args.gain)
    y[bad] = np.nan
    provenance = {"method": "simulate", "psf": args.psf, "ADSEED": args.seed, "ADBOUND": args.boundary,
                  "ADSCALE": record.scale}
    if args.gain is None:  # with photon noise too, the total noise is not one sigma: let deconvolve estimate it
        provenance["ADSIGMA"] = args.sigma
    if args.gain is not None:
        provenance["ADGAIN"] = args.gain
    io.write_image(args.output, y, header, provenance, overwrite=args.overwrite)
    print(f"simulated {args.output}: {y.shape[0]} x {y.shape[1]} px, PSF {args.psf}, sigma {args.sigma}, seed {args.seed}")
    return 0


def _cmd_deconvolve(args: argparse.Namespace) -> int:
    from . import io, methods, psf, selection

    method = methods.get(args.method)
    io.check_output(args.output, args.overwrite)
    if args.stream or args.dask is not None or args.scheduler or _larger_than_memory(args):
        return _deconvolve_streamed(args, method)
    observed, header = io.read_image(args.observed, hdu=_hdu(args.hdu))
    _check_pixels(observed, args.observed)
    spec = args.psf or header.get("ADPSF")
    if not spec:
        raise InputError(f"{args.observed} has no ADPSF card: give the PSF with --psf ({PSF_HELP})")
    kernel = psf.parse_spec(spec)
    _check_psf_fits(kernel, observed, spec)
    params = _parse_params(args.param)
    network_options = {"model": args.model, "tile": args.tile, "device": args.device}
    for key, value in network_options.items():
        if key in method.defaults and value is not None:
            params.setdefault(key, value)
        elif key != "device" and value is not None:
            raise InputError(f"--{key} applies to the networks only, not to method {args.method!r}")
    methods.check_params(method, params)

    # Work in units where the image's maximum is ~1, as the methods and networks expect; undo
    # after. An observation written by `simulate` (ADSCALE card) already is in those units.
    scale = 1.0 if "ADSCALE" in header else float(np.max(observed[np.isfinite(observed)]))  # finite maximum
    if not scale > 0:
        raise InputError(f"{args.observed}: the maximum pixel value is {scale}; expected a positive maximum")
    y = observed / scale
    sigma = args.sigma if args.sigma is not None else header.get("ADSIGMA")
    if args.sigma is None and not (isinstance(sigma, (int, float)) and sigma > 0):
        sigma = None  # no usable card (e.g. a noiseless simulation): estimate it from the image
    if "sigma" in method.defaults and "sigma" not in params:  # the restorers take the noise level
        if sigma is None:  # estimated here, as the method would, so that ADPARAMS records it
            sigma = selection.estimate_sigma(np.where(np.isfinite(y), y, np.nanmedian(y)))
        params["sigma"] = float(f"{float(sigma):.6g}")
    tuned = selection.SELECTED.get(args.method)
    if args.select != "none" and tuned is not None and tuned not in params:
        truth = None
        if args.select == "oracle":
            if args.truth is None:
                raise InputError("--select oracle needs the clean image: --truth CLEAN.fits")
            truth_raw, _ = io.read_image(args.truth)
            if truth_raw.shape != observed.shape:
                raise InputError(f"--truth has shape {truth_raw.shape}, the observation {observed.shape}")
            # The truth in the observation's units: simulate divided both by ADSCALE.
            truth = np.nan_to_num(truth_raw / float(header.get("ADSCALE", scale)))
        filled = np.where(np.isfinite(y), y, np.nanmedian(y))
        chosen = selection.select(args.method, filled, kernel, args.select, truth=truth, sigma=sigma)
        params = {**chosen, **params}
    start = time.perf_counter()
    estimate = methods.restore(y, kernel, args.method, **params)
    elapsed = time.perf_counter() - start
    shown = {k: v for k, v in params.items() if v is not None}
    io.write_image(
        args.output,
        estimate * scale,
        header,
        {"method": args.method, "psf": spec, "params": shown, "ADSELECT": args.select},
        overwrite=args.overwrite,
    )
    print(f"{args.method} ({_format_params(shown)}) in {elapsed:.2f} s -> {args.output}")
    return 0


def _larger_than_memory(args: argparse.Namespace) -> bool:
    """True when the input holds more than ``stream.STREAM_PIXELS`` pixels (header only)."""
    from . import stream

    try:
        height, width = stream.image_shape(args.observed, _hdu(args.hdu))
    except InputError:
        return False  # the in-memory reader reports the problem
    return height * width > stream.STREAM_PIXELS


def _deconvolve_streamed(args: argparse.Namespace, method: Any) -> int:
    """Restore by tiles from disk (``--stream``, large images) or on Dask (``--dask``, ``--scheduler``)."""
    from . import methods, networks, psf, stream

    with stream.open_source(args.observed, _hdu(args.hdu), allow_gzip=True) as src:
        (height, width), header = src.shape, src.header
    if "model" not in method.defaults:
        raise InputError(
            f"{args.observed} is {height} x {width} px ({height * width / 1e6:.0f} Mpx) and {args.method!r} is a global "
            "(FFT) method that needs the whole image in memory, so it cannot run by tiles; use a network method "
            "(--method cnn3) or crop the image"
        )
    spec = args.psf or header.get("ADPSF")
    if not spec:
        raise InputError(f"{args.observed} has no ADPSF card: give the PSF with --psf ({PSF_HELP})")
    params = {"model": args.model, "tile": args.tile, "device": args.device, **_parse_params(args.param)}
    params = methods.check_params(method, params)
    kernel = psf.parse_spec(spec)
    scale = 1.0 if "ADSCALE" in header else None
    if args.method in networks.RESTORERS:
        network, scale = _restorer_in_noise_units(args, method, params, kernel, header)
    else:
        network, trained_for = networks.load_network(args.method, params["model"])
        networks._check_psf(kernel, trained_for, args.method)
    tile = int(params["tile"] or 1024)
    shown = {k: v for k, v in params.items() if v is not None}
    options = dict(hdu=_hdu(args.hdu), scale=scale, overwrite=args.overwrite,
                   provenance={"method": args.method, "psf": spec, "params": shown, "ADSELECT": "none"},
                   device=params["device"])
    start = time.perf_counter()
    if args.dask is not None or args.scheduler:
        from . import parallel

        with parallel.cluster_client(args.dask, args.scheduler) as client:
            parallel.deconvolve_fits_dask(args.observed, args.output, network, client, chunk=tile, **options)
        how = f"on Dask ({args.scheduler or f'{args.dask} local workers'}), {tile}-px chunks"
    else:
        stream.deconvolve_fits(args.observed, args.output, network, tile=tile, **options)
        how = f"streamed by {tile}-px tiles"
    print(f"{args.method} {how} in {time.perf_counter() - start:.2f} s -> {args.output}")
    return 0


def _restorer_in_noise_units(args: argparse.Namespace, method: Any, params: dict[str, Any], kernel: np.ndarray,
                             header: Any) -> tuple[Any, float]:
    """A restorer wrapped to work in noise units, with statistics from a central sample of at most 2048^2 px."""
    from . import networks, stream
    from .nn.restorer import NoiseUnits, noise_statistics

    with stream.open_source(args.observed, _hdu(args.hdu), allow_gzip=True) as src:
        scale = stream.prepare(src, 1.0 if "ADSCALE" in header else None).scale
        (height, width), side = src.shape, 2048
        r0, c0 = max(0, (height - side) // 2), max(0, (width - side) // 2)
        sample = src.read(r0, min(height, r0 + side), c0, min(width, c0 + side)) / scale
    sample = np.where(np.isfinite(sample), sample, np.nanmedian(sample))
    sigma = params.get("sigma") or args.sigma or header.get("ADSIGMA") or None
    stats = noise_statistics(sample, sigma)
    network = networks.load_restorer(args.method, params["model"], kernel, stats.snr)
    return NoiseUnits(network, *stats), scale


def _cmd_train(args: argparse.Namespace) -> int:
    from .nn.training import train

    if args.output.exists() and any(args.output.iterdir()) and not args.resume:
        raise InputError(f"{args.output} exists and is not empty; pass --resume to continue it or choose another folder")
    out = train(
        images=list(args.images),
        out_dir=args.output,
        arch=args.model,
        psf_spec=args.psf,
        sigma=args.sigma,
        samples=args.samples,
        val_samples=args.val_samples,
        epochs=args.epochs,
        batch=args.batch,
        seed=args.seed,
        resume=args.resume,
        optimizer=args.optimizer,
        lr=args.lr,
        patience=args.patience,
        progress=True,
    )
    print(f"model written to {out}")
    return 0


def _cmd_train_restorer(args: argparse.Namespace) -> int:
    from .nn.restorer_training import UNIVERSAL_REFERENCE_SNR, train_restorer

    if args.fixed_bank and args.reference_snr is not None:
        raise InputError("--fixed-bank and --reference-snr exclude each other; give one")
    if args.output.exists() and (args.output / "weights.pt").exists() and not (args.output / "checkpoint.pt").exists():
        raise InputError(f"{args.output} already holds a finished model; choose another folder")
    reference_snr = args.reference_snr
    if reference_snr is None and args.setting == "universal" and not args.fixed_bank:
        reference_snr = UNIVERSAL_REFERENCE_SNR
    out = train_restorer(list(args.images), args.output, setting=args.setting, epochs=args.epochs, scenes=args.scenes,
                         patches=args.patches, val_scenes=args.val_scenes, batch=args.batch, lr=args.lr,
                         init=args.init, seed=args.seed, threads=args.threads, reference_snr=reference_snr)
    print(f"model written to {out}")
    return 0


def _cmd_benchmark(args: argparse.Namespace) -> int:
    from . import benchmark, data

    protocol = benchmark.load_protocol(args.protocol)
    data_dir = args.data_dir or data.sky_dir()
    missing = [name for name in protocol.images if not (data_dir / f"{name}.fits.gz").is_file()]
    if missing:
        raise InputError(f"{data_dir} lacks the protocol's images {missing}; point --data-dir to them")
    if protocol.psf_given:
        return _psf_mismatch(protocol, data_dir, args)
    if protocol.grid_psfs:
        return _grid(protocol, data_dir, args)
    protocol.check_images(args.image)
    evaluated = protocol.quick_version() if args.quick else protocol
    partial = args.image or args.method
    previous = [] if args.only_train or not partial else benchmark.previous_results(evaluated, args.output)
    if args.train or args.retrain or args.only_train:
        benchmark.train_folds(protocol, data_dir, args.folds, archs=args.arch, images=args.image, retrain=args.retrain)
        if args.only_train:
            return 0
    protocol = evaluated
    if partial and not previous:
        print(f"note: {args.output} had no results; the table holds only {args.image or args.method}", file=sys.stderr)
    shared = data.shared_dir()
    paper_dir = shared / "reference" if shared and (shared / "reference").is_dir() else None
    rows, kept = benchmark.run(protocol, data_dir, args.folds, paper_dir=paper_dir, images=args.image,
                               methods=args.method)
    rows = benchmark.merge_results(previous, rows, protocol, by_method=bool(args.method))
    written = benchmark.write_report(rows, kept, protocol, args.output, data_dir, args.folds, paper_dir)
    print((args.output / "table1.md").read_text())
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _psf_mismatch(protocol, data_dir: Path, args: argparse.Namespace) -> int:
    from . import mismatch

    return _report(protocol, data_dir, args, mismatch, "psf_mismatch")


def _grid(protocol, data_dir: Path, args: argparse.Namespace) -> int:
    from . import grid

    return _report(protocol, data_dir, args, grid, "grid")


def _report(protocol, data_dir: Path, args: argparse.Namespace, module: Any, stem: str) -> int:
    """Run a protocol without training (``module.run``), merge ``--method`` rows, write ``<stem>.*``."""
    from . import benchmark

    if args.train or args.retrain or args.only_train or args.image:
        raise InputError(f"protocol {protocol.name!r} trains no network and runs every image: "
                         "drop --train, --retrain, --only-train and --image")
    if args.quick:
        protocol = protocol.quick_version()
    rows = module.run(protocol, data_dir, methods=args.method, folds=args.folds)
    previous = args.output / f"{stem}.csv"
    if args.method and previous.is_file():
        rows = module.merge(benchmark.read_results(previous), rows)
    written = module.write_report(rows, protocol, args.output)
    print((args.output / f"{stem}.md").read_text())
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _cmd_scaling(args: argparse.Namespace) -> int:
    from . import scaling

    chosen = scaling.SCALING_METHODS
    if args.methods:
        unknown = set(args.methods) - set(chosen)
        if unknown:
            raise InputError(f"--methods {sorted(unknown)} not timed; choose from {list(chosen)}")
        chosen = {m: chosen[m] for m in args.methods}
    if not np.isfinite(args.max_seconds) or args.max_seconds <= 0:
        raise InputError(f"--max-seconds must be positive, got {args.max_seconds}")
    rows = scaling.measure(chosen, tuple(args.sizes), max_seconds=args.max_seconds)
    written = scaling.write_report(rows, args.output)
    print((args.output / "scaling.md").read_text())
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


def _cmd_demo(args: argparse.Namespace) -> int:
    from . import data, forward, methods, plots, psf
    from .evaluation import evaluate, format_table

    args.output.mkdir(parents=True, exist_ok=True)
    truth = _centre_crop(data.hubble_deep_field(), args.size)
    kernel = psf.airy_paper()
    observed = forward.observe(truth, kernel, sigma=0.01, rng=args.seed)
    names = ["none"] + methods.available()
    print(f"Hubble Deep Field, centred {truth.shape[0]} x {truth.shape[1]} crop; PSF airy-paper "
          f"(FWHM {psf.fwhm(kernel):.2f} px); Gaussian noise sigma 0.01; parameters chosen without the truth (auto)")
    rows, estimates = evaluate(truth, observed, kernel, names, selection="auto", sigma=0.01, progress=True)
    table = format_table(rows)
    print(table)
    (args.output / "demo.md").write_text(table + "\n")
    panels = {"truth": truth, f"observed {rows[0]['psnr_db']:.2f} dB": observed}
    for row in rows[1:]:
        panels[f"{row['method']} {row['psnr_db']:.2f} dB"] = estimates[row["method"]]
    png = plots.comparison_figure(panels, args.output / "demo.png", psf=kernel, zoom=256)
    print(f"figure: {png}")
    return 0


# -- helpers -----------------------------------------------------------------------------


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    if size < 64:
        raise InputError(f"--size must be at least 64 pixels (the PSF's side), got {size}")
    r0 = max((image.shape[0] - size) // 2, 0)
    c0 = max((image.shape[1] - size) // 2, 0)
    return image[r0 : r0 + size, c0 : c0 + size]


def _check_pixels(image: np.ndarray, path: Path) -> None:
    finite = np.isfinite(image)
    if not finite.any():
        raise InputError(f"{path}: every pixel is NaN or infinite")
    values = image[finite]
    if values.max() == values.min():
        raise InputError(f"{path}: the image is constant (every pixel is {values.max():g}); nothing to restore")


def _check_psf_fits(kernel: np.ndarray, image: np.ndarray, spec: str) -> None:
    if kernel.shape[0] > image.shape[0] or kernel.shape[1] > image.shape[1]:
        raise InputError(
            f"PSF {spec!r} is {kernel.shape[0]} x {kernel.shape[1]} px, larger than the image "
            f"{image.shape[0]} x {image.shape[1]}; give a smaller PSF (e.g. add size=N to the spec)"
        )


def _hdu(value: str | None) -> int | str | None:
    if value is None:
        return None
    return int(value) if value.lstrip("-").isdigit() else value


def _parse_params(items: list[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise InputError(f"--param expects KEY=VALUE, got {item!r}")
        try:
            params[key] = ast.literal_eval(raw)
        except (ValueError, SyntaxError):
            params[key] = raw
    return params


def _format_params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()) or "defaults"


if __name__ == "__main__":
    sys.exit(main())
