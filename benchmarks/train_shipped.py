"""Reproduce the shipped model folders ``src/astrodeconv/models/{cnn3,cnn1,restorer}``.

Trains on every real image of ``../shared/data/sky`` except the held-out ones (the paper's
targets M81, M101, M51 and the dense star field NSV60), for the paper's observation model
(``airy-paper`` PSF, Gaussian noise sigma = 0.01). Run in the background, resumable::

    nohup python benchmarks/train_shipped.py cnn3 --out runs/cnn3 > runs/train_cnn3.log 2>&1 &
    # after an interruption, the same command with --resume
    cp runs/cnn3/{config.json,weights.pt,meta.json,history.csv} src/astrodeconv/models/cnn3/

The settings differ from the paper's (recorded in config.json / meta.json): Adam with
learning rate 1e-3 and a cosine decay, 48 x 48 input windows (30 x 30 targets, 1.8 times
more output pixels per second than 32 x 32 windows on a CPU), a few epochs within a
~35-minute budget on 2 cores.

``restorer`` is the pretrained restorer of the Table I folds (``benchmarks/folds/restorer-pretrained``)
fine-tuned at the paper's setting on the same images, 10 epochs of 64 fresh scenes x 16 windows,
Adam from lr 3e-4 with a cosine decay (the Table I folds: 25 epochs)::

    nohup python benchmarks/train_shipped.py restorer --out src/astrodeconv/models/restorer > runs/restorer.log 2>&1 &

Shipped run (2 shared cores): cnn3 7 epochs in 37.6 min wall (about 215 s per epoch when the
cores were not shared; epoch 2 took 860 s under contention), best validation MSE 2.51e-4 at
the last epoch; cnn1 (``--threads 1``) 6 epochs in about 9 min. Held-out PSNR:
``python benchmarks/eval_heldout.py`` (also recorded in each model's meta.json).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

HELD_OUT = ["m81_dss1", "m101_dss1", "m51_dss1red", "starfield_nsv60_dss1"]
#: The restorer pretrained on universal scenes of the 11 images of no table, as the Table I folds start from.
PRETRAINED_RESTORER = Path(__file__).resolve().parent / "folds" / "restorer-pretrained"

SETTINGS = {
    "cnn3": dict(optimizer="adam", lr=1e-3, schedule="cosine", patch_size=48, batch=32, samples=120_000,
                 val_samples=10_000, epochs=7, patience=7, seed=0),
    "cnn1": dict(optimizer="adam", lr=1e-3, schedule="cosine", patch_size=48, batch=32, samples=60_000,
                 val_samples=10_000, epochs=6, patience=6, seed=0),
    "restorer": dict(setting="paper", epochs=10, scenes=64, patches=16, lr=3e-4, seed=0),
}

DSS_ACK = (
    "The Digitized Sky Surveys were produced at the Space Telescope Science Institute under U.S. Government grant "
    "NAG W-2166. The images of these surveys are based on photographic data obtained using the Oschin Schmidt "
    "Telescope on Palomar Mountain and the UK Schmidt Telescope. The plates were processed into the present "
    "compressed digital form with the permission of these institutions. SuperCOSMOS data (c) ROE/AAO, SuperCOSMOS "
    "Science Archive. SDSS data: Sloan Digital Sky Survey. KPNO frame: IRAF test image."
)


def main(argv: list[str] | None = None) -> int:
    from astrodeconv.data import sky_dir
    from astrodeconv.nn.training import train

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("arch", choices=sorted(SETTINGS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--samples", type=int)
    parser.add_argument("--threads", type=int, help="torch threads (default: the available cores)")
    args = parser.parse_args(argv)
    settings = dict(SETTINGS[args.arch])
    for key in ("epochs", "samples"):
        if getattr(args, key) is not None:
            settings[key] = getattr(args, key)
    folder = sky_dir()
    files = sorted(p for p in folder.glob("*.fits.gz") if p.name[: -len(".fits.gz")] not in HELD_OUT)
    print(f"training {args.arch} on {len(files)} images: {[p.name for p in files]}", flush=True)
    meta = {"held_out_images": HELD_OUT, "data_acknowledgement": DSS_ACK,
            "command": "python benchmarks/train_shipped.py " + " ".join(sys.argv[1:] if argv is None else argv)}
    if args.arch == "restorer":  # resumes by itself from the checkpoint in --out
        from astrodeconv.nn.restorer_training import train_restorer

        out = train_restorer([str(p) for p in files], args.out, init=PRETRAINED_RESTORER,
                             threads=args.threads, extra_meta=meta, **settings)
        print(f"wrote {out}", flush=True)
        return 0
    out = train(
        [str(p) for p in files], args.out, arch=args.arch, psf_spec="airy-paper", sigma=0.01,
        resume=args.resume, progress=True, threads=args.threads,
        extra_meta=meta,
        **settings,
    )
    print(f"wrote {out}", flush=True)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TQDM_MININTERVAL", "60")
    raise SystemExit(main())
