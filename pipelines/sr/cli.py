"""`faceedge train sr --data DIR --out DIR`: train, prune, distil, export and check the SR generator."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from faceedge.edge.identity_split import HOLDOUT_FRACTION

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="folder of identity subfolders of photos")
    parser.add_argument("--out", required=True, help="output folder (checkpoints, history, sr.onnx)")
    parser.add_argument("--scale", type=int, default=4, choices=[2, 4, 8])
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--blocks", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--steps", type=int, default=50, help="steps per epoch")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--identity-weight", type=float, default=0.1, help="lambda of 1 - cosine (0 disables)")
    parser.add_argument("--identity-batch", type=int, default=4, help="faces per step sent through SFace")
    parser.add_argument("--identity-every", type=int, default=2, help="identity term on every k-th step")
    parser.add_argument("--gan-weight", type=float, default=1e-4)
    parser.add_argument("--no-adaptive", action="store_true", help="fixed degradation severity")
    parser.add_argument("--severity", type=float, default=1.0, help="starting degradation severity (0, 1]")
    parser.add_argument("--clean-fraction", type=float, default=0.25,
                        help="share of training inputs that are plain area downsamples (no recipe)")
    parser.add_argument("--prune-ratio", type=float, default=0.0, help="per-layer channel pruning ratio (0 disables)")
    parser.add_argument("--max-psnr-drop", type=float, default=0.3, help="pruning quality check, dB")
    parser.add_argument("--no-distill", action="store_true", help="fine-tune the pruned student without the teacher")
    parser.add_argument("--student-epochs", type=int, default=4)
    parser.add_argument("--teacher", default=None, help="use this teacher checkpoint (.pt) and skip its training")
    parser.add_argument("--init", default=None, help="train the teacher on from this checkpoint (.pt), e.g. a "
                        "pixel-loss model fine-tuned with the identity term")
    parser.add_argument("--holdout-fraction", type=float, default=HOLDOUT_FRACTION, help="fraction of identities held out")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--version", default="1", help="model version written into the ONNX metadata")
    parser.add_argument("--threads", type=int, default=1)


def run(args) -> int:
    import torch

    from faceedge.edge.detect import YuNetDetector
    from faceedge.pipelines.dataset import split_folders

    from .data import PairSampler, load_sources
    from .export import cpu_latency_ms, export_onnx, parity
    from .losses import LossWeights
    from .models import count_macs, count_parameters
    from .train import TrainConfig, Trainer, load_generator

    torch.set_num_threads(args.threads)
    train_ids, held_out = split_folders(args.data, args.holdout_fraction)
    log.info("training identities %s; held out %s", train_ids, held_out)
    sources = load_sources(args.data, YuNetDetector(), identities=train_ids)
    config = TrainConfig(
        scale=args.scale, channels=args.channels, blocks=args.blocks, epochs=args.epochs,
        steps_per_epoch=args.steps, batch=args.batch, lr=args.lr,
        weights=LossWeights(gan=args.gan_weight, identity=args.identity_weight,
                            distill=0.0 if args.no_distill else 1.0),
        identity_batch=args.identity_batch, identity_every=args.identity_every, adaptive=not args.no_adaptive, severity=args.severity,
        prune_ratio=args.prune_ratio, max_psnr_drop=args.max_psnr_drop,
        student_epochs=args.student_epochs, seed=args.seed)
    recognizer = None
    if args.identity_weight > 0:
        from .sface_torch import SFaceTorch

        recognizer = SFaceTorch()
    out = Path(args.out)
    trainer = Trainer(config, PairSampler(sources, args.scale, args.severity, seed=args.seed,
                                              clean_fraction=args.clean_fraction), recognizer)
    result = trainer.run(out, teacher=load_generator(Path(args.teacher)) if args.teacher else None,
                         init=load_generator(Path(args.init)) if args.init else None)
    final = trainer.final
    onnx_path = export_onnx(final, out / "sr.onnx", {"name": "sr", "version": args.version,
                                                     "inner": json.dumps(final.config["inner"])})
    summary = {
        "parameters": count_parameters(final), "macs": count_macs(final, final.lr_size),
        "onnx_max_abs_diff": parity(final, onnx_path),
        "cpu_ms_per_face_1thread": cpu_latency_ms(onnx_path, final.lr_size),
        "train_identities": train_ids, "held_out": held_out, "train_faces": len(sources),
    }
    if summary["onnx_max_abs_diff"] > 1e-4:
        raise RuntimeError(f"ONNX export differs from torch by {summary['onnx_max_abs_diff']}")
    result["summary"] = summary
    (out / "history.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(summary, indent=1))
    return 0
