"""`faceedge train quality --data DIR --out DIR`: the GAN-graded quality model, resumable."""

from __future__ import annotations

import json
import shutil
from dataclasses import fields
from pathlib import Path

from faceedge.edge.errors import FaceEdgeError

from .grading import RULES

HELP = {
    "seed": "seed for every random draw",
    "holdout_fraction": "fraction of identities held out for evaluation (stable hash of the folder name)",
    "gan_size": "generated image side H=W (the generator's linear map is 2H x 2W)",
    "gan_iterations": "DCGAN training iterations",
    "gan_checkpoints": "how many evenly spaced iterations save a generated set",
    "gan_samples": "generated faces saved per checkpoint",
    "gan_batch": "DCGAN batch size",
    "degraded_per_face": "degraded copies of each training face",
    "heldout_degraded_per_face": "degraded copies of each held-out face (evaluation only)",
    "epochs": "classifier epochs",
    "batch": "classifier batch size",
    "lr": "classifier initial learning rate (cosine decay per epoch)",
    "threads": "torch / onnxruntime threads",
}


def add_arguments(parser) -> None:
    from .train import TrainConfig

    parser.add_argument("--data", required=True, help="folder of identity subfolders of face photos")
    parser.add_argument("--out", required=True, help="output folder (checkpoints, report, quality.onnx); rerun to resume")
    parser.add_argument("--grading", choices=RULES, default="iteration",
                        help="rule that grades the generated faces for training (all three are recorded)")
    parser.add_argument("--sources", default="gan,degraded",
                        help="comma-separated training sources besides the real faces: gan, degraded")
    for field in fields(TrainConfig):
        if field.name in ("data", "out", "grading", "sources"):
            continue
        parser.add_argument(f"--{field.name.replace('_', '-')}", type=type(field.default), default=field.default,
                            help=HELP[field.name])
    parser.add_argument("--install", action="store_true",
                        help="copy the exported model to edge/weights/quality.onnx")


def run(args) -> int:
    from .train import TrainConfig, train

    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    try:
        report = train(config)
    except (ValueError, FileNotFoundError) as exc:
        raise FaceEdgeError(f"train quality: {exc}") from exc
    print(json.dumps(report, indent=2))
    if args.install:
        from faceedge.edge.model_files import WEIGHTS_DIR

        WEIGHTS_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(Path(config.out) / "quality.onnx", WEIGHTS_DIR / "quality.onnx")
        print(f"installed {WEIGHTS_DIR / 'quality.onnx'}")
    return 0
