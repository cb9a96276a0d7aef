"""`faceedge train selection --data DIR --out DIR`: labelled probes, training, ONNX export.

Writes into --out: samples.npz (the labelled probes, reused by a rerun), checkpoint.pt (after
every epoch; a rerun resumes), selection.onnx and report.json (split, label balance, losses).

Past one machine: `--workers N` makes the probes on N processes; `--shard i/n` makes only shard i of n
(samples.shard-i-of-n.npz, for separate machines) and stops; `--merge-shards FILE...` joins them into
samples.npz (exactly the set one process makes) and trains; `--samples-only` stops once samples.npz is
written. Training runs under `torchrun --nproc-per-node K -m faceedge.edge.cli train selection ...` with
DistributedDataParallel once samples.npz exists.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from faceedge.edge.errors import ConfigError
from faceedge.edge.identity_split import HOLDOUT_FRACTION
from faceedge.pipelines.selection.track_samples import TrackRecipe
from faceedge.pipelines.selection.train import TrainSettings

log = logging.getLogger(__name__)


def add_split_arguments(parser) -> None:
    parser.add_argument("--holdout-fraction", type=float, default=HOLDOUT_FRACTION,
                        help="identities held out for evaluation (hash split of folder names)")
    parser.add_argument("--split-salt", default="faceedge", help="salt of the identity hash split")
    parser.add_argument("--recognizer", default="sface",
                        help="the recogniser that labels and judges: sface, dlib or "
                             "onnx:PATH[,input=arcface|rgb255][,threshold=X] (edge/recognizers.py)")
    parser.add_argument("--threshold", type=float, default=None,
                        help="similarity threshold of a confident match (default: the recogniser's own)")
    parser.add_argument("--workers", type=int, default=1, help="processes that make and embed probes")
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
                        help="weight of the pull of the logit towards the recogniser's genuine similarity "
                             "(0: SCE alone)")
    parser.add_argument("--similarity-scale", type=float, default=TrainSettings.similarity_scale,
                        help="logit per unit of the recogniser's similarity in that pull")
    parser.add_argument("--group-size", type=int, default=TrainSettings.group_size,
                        help="faces per track-like group of one person in a batch (1: independent faces)")
    parser.add_argument("--ranking-weight", type=float, default=TrainSettings.ranking_weight,
                        help="weight of the listwise ranking of each group's faces by genuine similarity")
    parser.add_argument("--ranking-temperature", type=float, default=TrainSettings.ranking_temperature,
                        help="cosine units of the target ranking's softmax")
    parser.add_argument("--validation-fraction", type=float, default=0.0,
                        help="training identities kept out of training (a second hash split) to validate "
                             "track choice on: groups of --group-size (at least 8) of one person's probes")
    parser.add_argument("--quantization-aware-epochs", type=int, default=0,
                        help="after training, epochs of quantisation-aware fine-tuning with int8 rounding "
                             "simulated as the INT8 copy has it (pipelines/selection/qat.py); 0 skips it")
    parser.add_argument("--quantization-aware-lr", type=float, default=2e-4,
                        help="initial learning rate of the quantisation-aware epochs (cosine decay)")
    parser.add_argument("--leading-float-layers", type=int, default=None,
                        help="leading layers the INT8 copy keeps in float, left unrounded by the "
                             "quantisation-aware epochs (default: inference.calibration.leading_float_layers)")
    parser.add_argument("--shard", default=None, metavar="I/N",
                        help="make only shard I of N of the samples (samples.shard-I-of-N.npz) and stop")
    parser.add_argument("--merge-shards", nargs="+", type=Path, default=None, metavar="FILE",
                        help="join these shard files into --out/samples.npz, then train")
    parser.add_argument("--samples-only", action="store_true", help="stop once samples.npz is written")
    parser.add_argument("--track-clips", type=int, default=0,
                        help="also train on the faces of this many synthetic clips of training identities, "
                             "made and scanned as `faceedge eval stream` makes them (track_samples.npz; 0: none)")
    parser.add_argument("--track-people", type=int, default=TrackRecipe.people, help="people in those clips")
    parser.add_argument("--track-seconds", type=float, default=TrackRecipe.seconds, help="length of each clip")
    parser.add_argument("--track-seed", type=int, default=TrackRecipe.seed, help="seed of the clips")


def split_of(args, side: str) -> tuple[list[str], list[str]]:
    """(identities on `side` ("train", "test" or "all"), all identities) of --data."""
    from faceedge.pipelines.dataset import identities_on

    return identities_on(args.data, side, args.holdout_fraction, args.split_salt)


def open_recognizer(args):
    """(the recogniser --recognizer names, the threshold in use)."""
    from faceedge.edge.recognizers import open_recognizer as open_named

    recognizer = open_named(args.recognizer)
    return recognizer, recognizer.threshold if args.threshold is None else args.threshold


VALIDATION_GROUP = 8  # faces per validation track, at least


def validation_split(samples, args):
    """(training samples, validation samples or None): --validation-fraction of the training identities, by a
    hash split salted apart from the held-out one, never trained on."""
    from faceedge.edge.identity_split import split_identities
    from faceedge.pipelines.selection.samples import subset

    if not args.validation_fraction:
        return samples, None
    names = sorted(set(samples.identities.tolist()))
    _, kept_out = split_identities(names, args.validation_fraction, f"{args.split_salt}/validation")
    if not kept_out or len(kept_out) == len(names):
        raise ConfigError(f"--validation-fraction {args.validation_fraction}: leaves {len(kept_out)} of "
                          f"{len(names)} identities to validate on; need some on each side")
    held = np.isin(samples.identities, kept_out)
    log.info("validating on %d of %d training identities (%d probes)", len(kept_out), len(names), held.sum())
    return subset(samples, ~held), subset(samples, held)


def validate(net, validation, args, threshold: float) -> dict | None:
    """Track choice of the trained net on the validation identities' track-like groups (protocol.track_choice)."""
    from faceedge.pipelines.selection.protocol import track_choice, track_groups
    from faceedge.pipelines.selection.train import score_faces

    if validation is None:
        return None
    groups = track_groups(validation.identities, max(VALIDATION_GROUP, args.group_size), args.seed)
    figures = track_choice(score_faces(net, validation.aligned), validation.genuine_similarity, groups, threshold)
    figures.update(identities=len(set(validation.identities.tolist())), probes=len(validation.labels))
    log.info("validation: %s", figures)
    return figures


def track_samples(args, identities, recognizer, threshold: float, distributed: bool = False):
    """The track samples of --track-clips clips (made once, kept in --out)."""
    from faceedge.edge.recognizers import describe
    from faceedge.pipelines.selection.track_samples import load_track_samples, make_track_samples, save_track_samples

    recipe = TrackRecipe(args.track_people, args.track_clips, args.track_seconds, args.track_seed)
    wanted = {**asdict(recipe), "identities": identities, "recognizer": describe(recognizer), "threshold": threshold}
    path = args.out / "track_samples.npz"
    if not path.is_file():
        if distributed:
            raise ConfigError(f"{path} not found: under torchrun make the track samples first (--samples-only)")
        log.info("making track samples: %d clips of %g s, up to %d of %d training identities", recipe.clips,
                 recipe.seconds, recipe.people, len(identities))
        tracks = make_track_samples(args.data, identities, recipe, recognizer, threshold, args.out / "track_clips",
                                    args.workers)
        tracks.stats["recipe"] = wanted
        save_track_samples(path, tracks)
    tracks = load_track_samples(path)
    if tracks.stats.get("recipe") != wanted:
        raise ConfigError(f"{path} was made with {tracks.stats.get('recipe')}, not {wanted}; "
                          "use a new --out or delete it")
    log.info("track samples: %d faces, positive fraction %.3f, cases %s", len(tracks.labels),
             tracks.stats["positive_fraction"], tracks.stats["cases"])
    return tracks


def quantization_aware_fine_tune(net, samples, settings, args):
    """(the fine-tuned float net, what the report says of it)."""
    from faceedge.edge.config import CalibrationConfig
    from faceedge.pipelines.selection.qat import fine_tune

    leading = args.leading_float_layers
    if leading is None:
        leading = CalibrationConfig().leading_float_layers.get("selection", 1)
    net, history = fine_tune(net, samples, settings, args.quantization_aware_epochs, args.quantization_aware_lr,
                             leading, checkpoint=args.out / "quantization_aware.pt")
    return net, {"epochs": args.quantization_aware_epochs, "lr": args.quantization_aware_lr,
                 "leading_float_layers": leading, "epoch_losses": history}


def run(args) -> int:
    import os

    from faceedge.edge.recognizers import describe
    from faceedge.pipelines.dataset import FrontalFilter
    from faceedge.pipelines.selection.probes import MIN_FACE
    from faceedge.pipelines.selection.samples import (build_samples, load_samples, merge_shards, parse_shard,
                                             save_samples, shard_path)
    from faceedge.pipelines.selection.train import (FACE_INPUT, export_onnx, join_world, leave_world, recognizer_metadata,
                                           train_model)

    identities, names = split_of(args, "train")
    shard = parse_shard(args.shard)
    if args.workers < 1:
        raise ConfigError(f"--workers {args.workers}: need at least 1")
    recognizer, threshold = open_recognizer(args)
    args.out.mkdir(parents=True, exist_ok=True)
    samples_path = args.out / "samples.npz"
    recipe = {"data": str(args.data), "identities": identities, "per_photo": args.per_photo, "seed": args.seed,
              "threshold": threshold, "max_yaw": args.max_yaw, "max_pitch": args.max_pitch, "min_face": MIN_FACE,
              "recognizer": describe(recognizer)}
    started = time.perf_counter()
    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if args.merge_shards:
        if samples_path.is_file():
            raise ConfigError(f"--merge-shards: {samples_path} exists already; use a new --out or delete it")
        stats = merge_shards(args.merge_shards, samples_path)
        log.info("merged %d shards into %s: %d probes", len(args.merge_shards), samples_path, stats["probes"])
    elif distributed and not samples_path.is_file():
        raise ConfigError(f"{samples_path} not found: under torchrun make the samples first "
                          "(the same command without torchrun and with --samples-only, --workers or --shard)")
    elif shard[1] > 1 or not samples_path.is_file():
        target = shard_path(args.out, shard) if shard[1] > 1 else samples_path
        log.info("making samples of %d identities with %s (threshold %g), shard %d/%d, %d workers",
                 len(identities), recognizer.name, threshold, shard[0], shard[1], args.workers)
        labelled = build_samples(args.data, identities, args.per_photo, args.seed, threshold,
                                 FrontalFilter(args.max_yaw, args.max_pitch), recognizer, shard, args.workers)
        labelled.stats["recipe"] = recipe
        if shard[1] == 1 and (len(labelled.probes) == 0 or labelled.labels.min() == labelled.labels.max()):
            raise ConfigError(f"--data {args.data}: the probes have a single label ({labelled.stats}); "
                              "need identities with several photos")
        save_samples(target, labelled)
        if shard[1] > 1:
            log.info("wrote %s (%d probes); merge all shards with --merge-shards", target, len(labelled.probes))
            return 0
    samples = load_samples(samples_path)
    stats = samples.stats
    if stats.get("recipe") != recipe:
        raise ConfigError(f"{samples_path} was made with {stats.get('recipe')}, not {recipe}; "
                          "use a new --out or delete it")
    log.info("samples: %d, positive fraction %.3f, cases %s", len(samples.labels), samples.labels.mean(),
             stats["cases"])
    if args.track_clips > 0:
        from faceedge.pipelines.selection.track_samples import joined

        samples = joined(samples, track_samples(args, identities, recognizer, threshold, distributed))
    if args.samples_only:
        return 0
    settings = TrainSettings(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, alpha=args.alpha,
                             beta=args.beta, similarity_weight=args.similarity_weight,
                             similarity_scale=args.similarity_scale, seed=args.seed, group_size=args.group_size,
                             ranking_weight=args.ranking_weight, ranking_temperature=args.ranking_temperature)
    training, validation = validation_split(samples, args)
    world = join_world()
    net, history = train_model(training, settings, checkpoint=args.out / "checkpoint.pt", world=world)
    leave_world(world)
    if world.rank != 0:
        return 0
    quantization_aware = None
    if args.quantization_aware_epochs > 0:
        net, quantization_aware = quantization_aware_fine_tune(net, training, settings, args)
    parity_pick = np.random.default_rng(args.seed).choice(len(samples.aligned), 7, replace=False)
    parity = export_onnx(net, args.out / "selection.onnx", FACE_INPUT(samples.aligned[parity_pick]),
                         recognizer_metadata(recipe["recognizer"]))
    report = {
        "data": str(args.data), "train_identities": identities,
        "held_out_identities": sorted(set(names) - set(identities)),
        "split": {"holdout_fraction": args.holdout_fraction, "salt": args.split_salt},
        "recognizer": recipe["recognizer"], "samples": samples.stats, "settings": asdict(settings),
        "processes": world.size, "distributed_backend": world.backend, "epoch_losses": history,
        "quantization_aware": quantization_aware, "onnx_parity_max_abs_diff": parity,
        "validation": validate(net, validation, args, threshold),
        "seconds": round(time.perf_counter() - started, 1),
    }
    (args.out / "report.json").write_text(json.dumps(report, indent=2))
    log.info("trained: loss %s -> %s; ONNX parity %.2e; wrote %s", f"{history[0]:.4f}", f"{history[-1]:.4f}",
             parity, args.out / "selection.onnx")
    return 0
