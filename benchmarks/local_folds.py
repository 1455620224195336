"""Give the ``restorer-universal`` Table I folds the local bank, instrument-like scenes and wrong PSFs (second stage).

The committed folds ``benchmarks/folds/restorer-universal-<image>`` are made in two stages:
first as ``experiments/protocols/table1.toml`` says (the pretrained universal model
fine-tuned 60 epochs on the five other Table I images, image-wide bank; those folds are in
commit ``e1edf66``), then by this script from them: each fold fine-tuned again, on the same
five images, with a local bank (balances follow the signal-to-noise ratio within 49 px,
``Restorer(snr_window=49)``), the ``realistic`` scene setting with 10 % of the scenes as
instruments see the sky (GalSim PSFs, photon noise, PSF estimates;
:mod:`astrodeconv.nn.instrument_scenes`) and 30 % of the others handed a wrong PSF
(:func:`astrodeconv.nn.scenes.wrong_psf`). Resumable; one fold per process::

    python benchmarks/local_folds.py m81_dss1 --init FIRST_STAGE_FOLDS --instrument-fraction 0.1 \
        --psf-error-fraction 0.3 --out runs/local-folds     # ~6 min per fold on one core
    cp runs/local-folds/restorer-universal-m81_dss1/{config.json,weights.pt,meta.json,history.csv} \
        benchmarks/folds/restorer-universal-m81_dss1/

``FIRST_STAGE_FOLDS`` holds the first-stage folds (docs/restorer.md, *Second stage*, extracts them from
the history); ``--init`` defaults to the committed, second-stage folds, from which a run continues.
"""

from __future__ import annotations

import argparse
from pathlib import Path

FOLDS = Path(__file__).resolve().parent / "folds"
SETTINGS = dict(setting="realistic", reference_snr=60.0, snr_window=49, epochs=12, scenes=64, patches=16, lr=3e-4,
                seed=0)


def main(argv: list[str] | None = None) -> int:
    from astrodeconv.data import sky_dir
    from astrodeconv.experiments.protocols import load_protocol
    from astrodeconv.nn.restorer_training import train_restorer

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("images", nargs="+", help="held-out images of the folds to fine-tune")
    parser.add_argument("--out", type=Path, required=True, help="folder for the new fold folders")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--setting", default=SETTINGS["setting"], choices=("realistic", "universal"),
                        help="scene setting (default realistic: the committed folds' second stage)")
    parser.add_argument("--epochs", type=int, default=SETTINGS["epochs"])
    parser.add_argument("--seed", type=int, default=SETTINGS["seed"])
    parser.add_argument("--instrument-fraction", type=float, help="share of instrument-like scenes (default: the "
                        "setting's, realistic 0.3)")
    parser.add_argument("--psf-error-fraction", type=float, help="share of the other scenes handed a wrong PSF "
                        "(default 0)")
    parser.add_argument("--snr-window", type=int, default=SETTINGS["snr_window"],
                        help="odd side (px) of the local bank's signal-to-noise window (default 49)")
    parser.add_argument("--init", type=Path, default=FOLDS,
                        help="folder holding the folds to start from (default: the committed ones)")
    args = parser.parse_args(argv)
    settings = {**SETTINGS, "setting": args.setting, "epochs": args.epochs, "seed": args.seed, "snr_window": args.snr_window,
                "instrument_fraction": args.instrument_fraction, "psf_error_fraction": args.psf_error_fraction}
    table = load_protocol("table1").images
    for image in args.images:
        if image not in table:
            parser.error(f"{image} is not a Table I image ({', '.join(table)})")
        others = [sky_dir() / f"{name}.fits.gz" for name in table if name != image]
        init = args.init / f"restorer-universal-{image}"
        shares = "".join(f" {flag} {value}" for flag, value in (("--instrument-fraction", args.instrument_fraction),
                                                                  ("--psf-error-fraction", args.psf_error_fraction))
                         if value is not None)
        command = (f"python benchmarks/local_folds.py {image} --setting {args.setting} --epochs {args.epochs} "
                   f"--seed {args.seed} --snr-window {args.snr_window}{shares} --out OUT (from {init})")
        train_restorer(others, args.out / f"restorer-universal-{image}", init=init, threads=args.threads,
                       extra_meta={"protocol": "table1", "held_out": image, "command": command,
                                   "stage": f"local bank + {args.setting} scenes"}, **settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
