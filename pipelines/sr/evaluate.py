"""`faceedge eval sr --data DIR --json OUT [--grid OUT.png]`: SR against bicubic on held-out identities.

For each high-quality face of the evaluated identities, an x4 (or --scale) low-resolution
probe is made with the restoration generator's degradation recipe (deterministic per probe) or, with
--clean, by area downsampling only. Each method restores it to 112x112; we report PSNR and
SSIM to the high-resolution face, SFace identity cosine to it, and rank-1 identification of
the restored probe against a gallery of every other photo in DIR (all identities, so the
training identities act as distractors). The generator's CPU latency is measured in the
same run (onnxruntime, 1 thread).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import cv2
import numpy as np

from faceedge.edge.identity_split import HOLDOUT_FRACTION

log = logging.getLogger(__name__)


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, help="folder of identity subfolders of photos")
    parser.add_argument("--json", required=True, help="where to write the metrics")
    parser.add_argument("--grid", default=None, help="PNG of probe | bicubic | generator(s) | reference")
    parser.add_argument("--model", default="weights:sr.onnx", help="the shipped generator (ONNX)")
    parser.add_argument("--teacher", default=None, help="unpruned teacher (.onnx or .pt) to compare as well")
    parser.add_argument("--split", choices=("test", "all"), default="test",
                        help="identities scored: test = held out from training by the hash split (default); "
                             "all = every identity folder (people the model never saw)")
    parser.add_argument("--holdout-fraction", type=float, default=HOLDOUT_FRACTION,
                        help="identities held out from training (hash split of folder names)")
    parser.add_argument("--clean", action="store_true", help="probes by area downsampling only (no recipe)")
    parser.add_argument("--seed", type=int, default=0)


def _torch_restorer(path: str):
    import torch

    from .data import to_images, to_tensor
    from .train import load_generator

    torch.set_num_threads(1)
    gen = load_generator(Path(path))

    def restore(lows: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return to_images(gen(to_tensor(lows)))

    return restore


def _metrics(restored: np.ndarray, references: np.ndarray, ref_embeddings: np.ndarray, recognizer,
             probe_ids: list[str], gallery: np.ndarray, gallery_ids: list[str], gallery_keys: list,
             probe_keys: list, desc: str, pixel: bool = True) -> dict:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    from faceedge.pipelines.selection.labels import has_genuine_mate, match_gallery
    from faceedge.pipelines.selection.samples import embed_with_progress

    psnr = ssim = None
    if pixel:
        psnr = float(np.mean([peak_signal_noise_ratio(r, o, data_range=255) for r, o in zip(references, restored)]))
        ssim = float(np.mean([structural_similarity(r, o, channel_axis=2, data_range=255)
                              for r, o in zip(references, restored)]))
    embeddings = embed_with_progress(recognizer, restored, desc)
    cosines = (embeddings * ref_embeddings).sum(axis=1)
    # Only probes whose identity has another photo in the gallery can be identified.
    ranked = has_genuine_mate(probe_ids, probe_keys, gallery_ids, gallery_keys)
    correct = match_gallery(embeddings, probe_ids, probe_keys, gallery, gallery_ids, gallery_keys).top1_correct
    return {"psnr": psnr, "ssim": ssim, "id_cosine": float(np.mean(cosines)),
            "rank1": float(correct[ranked].mean()) if ranked.any() else None, "probes_ranked": int(ranked.sum())}


def run(args) -> int:
    from faceedge.edge.align import align_face
    from faceedge.edge.detect import YuNetDetector
    from faceedge.edge.enhance import SuperResolver
    from faceedge.edge.errors import ConfigError
    from faceedge.edge.recognize import SFaceRecognizer
    from faceedge.pipelines.dataset import identities_on
    from faceedge.pipelines.degrade import Degradation
    from faceedge.pipelines.selection.samples import embed_with_progress

    from .data import HR_SIZE, SR_STEPS, load_sources
    from .export import cpu_latency_ms

    evaluated, _ = identities_on(args.data, args.split, args.holdout_fraction)
    print(f"scoring the {args.split} split ({'held out from training' if args.split == 'test' else 'every folder'}):"
          f" {len(evaluated)} identities", flush=True)
    sources = load_sources(args.data, YuNetDetector())
    faces = np.stack([align_face(s.image, s.landmarks, HR_SIZE) for s in sources])
    identities = [s.identity for s in sources]
    probes = [i for i, name in enumerate(identities) if name in evaluated]
    if not probes:
        raise ConfigError(f"no evaluable faces for identities {evaluated} in {args.data}")

    resolver = SuperResolver(args.model, _cpu_inference())
    scale = resolver.scale
    recipe = Degradation(probabilities=dict(SR_STEPS))
    lows = []
    for index in probes:
        if args.clean:
            lows.append(resolver.lowres(faces[index]))
        else:
            lows.append(recipe.low_res(faces[index], scale, np.random.default_rng([args.seed, index])).image)
    lows = np.stack(lows)

    methods = {"bicubic": lambda x: np.stack([cv2.resize(lo, (HR_SIZE, HR_SIZE), interpolation=cv2.INTER_CUBIC)
                                              for lo in x]),
               "generator": resolver.restore}
    if args.teacher:
        if args.teacher.endswith(".pt"):
            methods["teacher"] = _torch_restorer(args.teacher)
        else:
            methods["teacher"] = SuperResolver(args.teacher, _cpu_inference()).restore

    recognizer = SFaceRecognizer(threads=1)
    gallery = embed_with_progress(recognizer, faces, "gallery")
    references = faces[probes]
    ref_embeddings = gallery[probes]
    common = dict(probe_ids=[identities[i] for i in probes], gallery=gallery, gallery_ids=identities,
                  gallery_keys=list(range(len(faces))), probe_keys=probes)
    outputs, results = {}, {}
    for name, restore in methods.items():
        outputs[name] = restore(lows)
        results[name] = _metrics(outputs[name], references, ref_embeddings, recognizer, **common, desc=name)
    # The high-resolution faces themselves: the rank-1 ceiling (PSNR/SSIM to themselves mean nothing).
    results["reference"] = _metrics(references, references, ref_embeddings, recognizer, **common, desc="reference",
                                    pixel=False)
    report = {
        "data": str(args.data), "split": args.split, "holdout_fraction": args.holdout_fraction,
        "identities": evaluated, "probes": len(probes), "scale": scale,
        "probe_kind": "area-downsample" if args.clean else "seed-003 recipe", "model": resolver.name,
        "generator_cpu_ms_per_face_1thread": cpu_latency_ms(_model_path(args.model), resolver.lr_size),
        "load_average_1min": os.getloadavg()[0],
        "methods": results,
    }
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps(report, indent=1))
    print(f"{'method':<10} {'PSNR':>7} {'SSIM':>6} {'id cos':>7} {'rank-1':>7}")
    for name, m in results.items():
        cells = [("-" if m[key] is None else f"{m[key]:.{digits}f}").rjust(width)
                 for key, digits, width in (("psnr", 2, 7), ("ssim", 3, 6), ("id_cosine", 3, 7), ("rank1", 3, 7))]
        print(f"{name:<10} " + " ".join(cells))
    print(f"generator CPU latency: {report['generator_cpu_ms_per_face_1thread']:.2f} ms/face "
          f"(onnxruntime, 1 thread, median; load average {report['load_average_1min']:.1f} on {os.cpu_count()} CPUs)")
    if args.grid:
        _save_grid(args.grid, lows, outputs, references)
    return 0


def _cpu_inference():
    """Restore on onnxruntime's CPU provider, 1 thread: the numbers do not depend on the machine's GPU."""
    from faceedge.edge.config import InferenceConfig

    return InferenceConfig(backend="onnxruntime-cpu", threads=1)


def _model_path(ref: str) -> Path:
    from faceedge.edge.model_files import resolve_model

    return resolve_model(ref)


def _save_grid(path: str, lows: np.ndarray, outputs: dict, references: np.ndarray, rows: int = 8) -> None:
    size = references.shape[1]
    columns = [np.stack([cv2.resize(lo, (size, size), interpolation=cv2.INTER_NEAREST) for lo in lows])]
    columns += list(outputs.values()) + [references]
    grid = np.concatenate([np.concatenate([column[i] for column in columns], axis=1)
                           for i in range(min(rows, len(lows)))], axis=0)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), grid)
