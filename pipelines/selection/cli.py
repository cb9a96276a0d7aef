"""`faceedge train selection --data DIR --out DIR`: labelled probes, training, ONNX export.

Writes into --out: samples.npz (the labelled probes, reused by a rerun), checkpoint.pt (after
every epoch; a rerun resumes), selection.onnx and report.json (split, label balance, losses).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from edge.errors import ConfigError
from pipelines.dataset import HOLDOUT_FRACTION
from pipelines.selection.train import TrainSettings

log = logging.getLogger(__name__)


def add_split_arguments(parser) -> None:
    parser.add_argument("--holdout-fraction", type=float, default=HOLDOUT_FRACTION,
                        help="identities held out for evaluation (hash split of folder names)")
    parser.add_argument("--split-salt", default="faceedge", help="salt of the identity hash split")
    parser.add_argument("--threshold", type=float, default=0.363, help="SFace cosine threshold for a confident match")
    parser.add_argument("--max-yaw", type=float, default=30.0, help="frontal filter: max |yaw| in degrees")
    parser.add_argument("--max-pitch", type=float, default=25.0, help="frontal filter: max |pitch| in degrees")
    parser.add_argument("--seed", type=int, default=0)


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="folder of identity subfolders of photos")
    parser.add_argument("--out", required=True, type=Path, help="output folder (resumes if it holds a checkpoint)")
    add_split_arguments(parser)
    parser.add_argument("--per-photo", type=int, default=150, help="degraded probes attempted per photo")
    parser.add_argument("--epochs", type=int, default=TrainSettings.epochs)
    parser.add_argument("--batch-size", type=int, default=TrainSettings.batch_size)
    parser.add_argument("--lr", type=float, default=TrainSettings.lr)
    parser.add_argument("--alpha", type=float, default=TrainSettings.alpha,
                        help="weight of cross-entropy in the SCE loss")
    parser.add_argument("--beta", type=float, default=TrainSettings.beta,
                        help="weight of reverse cross-entropy in the SCE loss")
    parser.add_argument("--similarity-weight", type=float, default=TrainSettings.similarity_weight,
                        help="weight of the pull of the logit towards SFace's genuine similarity (0: SCE alone)")
    parser.add_argument("--similarity-scale", type=float, default=TrainSettings.similarity_scale,
                        help="logit per unit of cosine similarity in that pull")


def split_of(args, side: str) -> tuple[list[str], list[str]]:
    """(identities on `side` ("train" or "test"), all identities) of --data."""
    from pipelines.dataset import identity_folders, split_identities

    try:
        names = [folder.name for folder in identity_folders(args.data)]
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from exc
    train, held = split_identities(names, args.holdout_fraction, args.split_salt)
    chosen = train if side == "train" else held
    if not chosen:
        raise ConfigError(f"--data {args.data}: the {side} split is empty ({len(names)} identities, "
                          f"--holdout-fraction {args.holdout_fraction})")
    return chosen, names


def run(args) -> int:
    from edge.detect import YuNetDetector
    from edge.recognize import SFaceRecognizer
    from pipelines.dataset import FrontalFilter
    from pipelines.selection.probes import MIN_FACE
    from pipelines.selection.train import (FACE_INPUT, build_samples, export_onnx, load_samples, save_samples,
                                           train_model)

    identities, names = split_of(args, "train")
    args.out.mkdir(parents=True, exist_ok=True)
    samples_path = args.out / "samples.npz"
    recipe = {"data": str(args.data), "identities": identities, "per_photo": args.per_photo, "seed": args.seed,
              "threshold": args.threshold, "max_yaw": args.max_yaw, "max_pitch": args.max_pitch, "min_face": MIN_FACE}
    started = time.perf_counter()
    if not samples_path.is_file():
        labelled = build_samples(args.data, identities, args.per_photo, args.seed, args.threshold,
                                 FrontalFilter(args.max_yaw, args.max_pitch), YuNetDetector(threads=1),
                                 SFaceRecognizer(threads=1))
        if len(labelled.probes) == 0 or labelled.labels.min() == labelled.labels.max():
            raise ConfigError(f"--data {args.data}: the probes have a single label ({labelled.stats}); "
                              "need identities with several photos")
        labelled.stats["recipe"] = recipe
        save_samples(samples_path, labelled)
    samples = load_samples(samples_path)
    stats = samples.stats
    if stats.get("recipe") != recipe:
        raise ConfigError(f"{samples_path} was made with {stats.get('recipe')}, not {recipe}; "
                          "use a new --out or delete it")
    log.info("samples: %d, positive fraction %.3f, cases %s", len(samples.labels), samples.labels.mean(),
             stats["cases"])
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, alpha=args.alpha,
                             beta=args.beta, similarity_weight=args.similarity_weight,
                             similarity_scale=args.similarity_scale, seed=args.seed)
    net, history = train_model(samples, settings, checkpoint=args.out / "checkpoint.pt")
    parity_pick = np.random.default_rng(args.seed).choice(len(samples.aligned), 7, replace=False)
    parity = export_onnx(net, args.out / "selection.onnx", FACE_INPUT(samples.aligned[parity_pick]))
    report = {
        "data": str(args.data), "train_identities": identities,
        "held_out_identities": sorted(set(names) - set(identities)),
        "split": {"holdout_fraction": args.holdout_fraction, "salt": args.split_salt},
        "samples": stats, "settings": asdict(settings), "epoch_losses": history,
        "onnx_parity_max_abs_diff": parity, "seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    log.info("trained: loss %s -> %s; ONNX parity %.2e; wrote %s", f"{history[0]:.4f}", f"{history[-1]:.4f}",
             parity, args.out / "selection.onnx")
    return 0
