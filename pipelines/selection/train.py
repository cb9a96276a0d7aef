"""Build labelled probes from identity folders and train the selection CNN on them.

Samples: for every photo of the training identities that has another photo of its identity,
`per_photo` probes (see probes.py), labelled by SFace against the clean faces of all the
other photos (labels.py). Training: SelectionNet with symmetric cross-entropy plus a pull of the
logit towards SFace's genuine similarity (model.similarity_regression), one thread,
a checkpoint after every epoch (a rerun with the same --out resumes), then ONNX export whose
outputs are checked against torch.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from edge.errors import ConfigError
from edge.face_input import LOGIT_OUTPUT, SCORER_INPUTS
from pipelines.dataset import FrontalFilter, build_dataset
from pipelines.selection.labels import case_counts, four_case_labels, has_genuine_mate, match_gallery
from pipelines.selection.probes import Probe, ProbeMaker

log = logging.getLogger(__name__)
FACE_INPUT = SCORER_INPUTS["selection"]
PARITY_TOLERANCE = 1e-4


@dataclass
class LabelledProbes:
    probes: list[Probe]
    labels: np.ndarray
    cases: np.ndarray
    genuine_similarity: np.ndarray
    top1_correct: np.ndarray
    stats: dict = field(default_factory=dict)


def make_probes(records, maker: ProbeMaker, per_photo: int, seed: int, desc: str = "probes") -> list[Probe]:
    """`per_photo` attempts per record, each from its own seeded stream (order-independent, reproducible)."""
    probes = []
    for index, record in enumerate(tqdm(records, desc=desc, unit="photo")):
        image = cv2.imread(str(record.path), cv2.IMREAD_COLOR)
        rng = np.random.default_rng([seed, index])
        for _ in range(per_photo):
            probe = maker(image, record, rng)
            if probe is not None:
                probes.append(probe)
    return probes


def embed_all(recognizer, faces: list[np.ndarray], batch: int = 64) -> np.ndarray:
    return np.concatenate([recognizer.embed(np.stack(faces[i:i + batch])) for i in range(0, len(faces), batch)])


def label_probes(probes: list[Probe], records, recognizer, threshold: float) -> LabelledProbes:
    gallery = embed_all(recognizer, [r.aligned for r in records])
    embeddings = embed_all(recognizer, [p.aligned for p in probes])
    matches = match_gallery(embeddings, [p.identity for p in probes], [p.source for p in probes],
                            gallery, [r.identity for r in records], [str(r.path) for r in records])
    labels, cases = four_case_labels(matches.top1_correct, matches.top1_similarity, threshold)
    stats = {"probes": len(probes), "positive_fraction": float(labels.mean()) if len(labels) else 0.0,
             "cases": case_counts(cases), "threshold": threshold}
    return LabelledProbes(probes, labels, cases, matches.genuine_similarity, matches.top1_correct, stats)


def probe_records(records):
    """Records whose identity has another photo (a probe of a lone photo can never be right)."""
    ids, sources = [r.identity for r in records], [str(r.path) for r in records]
    mates = has_genuine_mate(ids, sources, ids, sources)
    return [r for r, ok in zip(records, mates) if ok]


def build_samples(data: Path, identities: list[str], per_photo: int, seed: int, threshold: float,
                  frontal: FrontalFilter, detector, recognizer) -> LabelledProbes:
    records = build_dataset(data, detector, frontal=frontal, identities=identities)
    sources = probe_records(records)
    probes = make_probes(sources, ProbeMaker(detector), per_photo, seed, desc="training probes")
    labelled = label_probes(probes, records, recognizer, threshold)
    labelled.stats.update(photos=len(records), probe_photos=len(sources),
                          attempts=len(sources) * per_photo, identities=sorted({r.identity for r in records}))
    return labelled


def save_samples(path: Path, labelled: LabelledProbes) -> None:
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, aligned=np.stack([p.aligned for p in labelled.probes]), labels=labelled.labels,
             cases=labelled.cases, identities=np.array([p.identity for p in labelled.probes]),
             genuine_similarity=labelled.genuine_similarity, stats=json.dumps(labelled.stats))
    os.replace(tmp, path)


@dataclass
class Samples:
    aligned: np.ndarray  # (N, 112, 112, 3) BGR
    labels: np.ndarray  # (N,) 0/1, seed 002's rule
    genuine_similarity: np.ndarray  # (N,) SFace similarity to the probe's own identity
    stats: dict


def load_samples(path: Path) -> Samples:
    with np.load(path) as data:
        if "genuine_similarity" not in data.files:
            raise ConfigError(f"{path} was made by an older version (no genuine similarities); "
                              "use a new --out or delete it")
        return Samples(data["aligned"], data["labels"], data["genuine_similarity"],
                       json.loads(str(data["stats"])))


@dataclass
class TrainSettings:
    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    alpha: float = 1.0
    beta: float = 1.0
    similarity_weight: float = 0.1  # 0 trains on seed 002's SCE alone
    similarity_scale: float = 40.0  # logit per unit of cosine similarity
    seed: int = 0
    width: int = 16


def train_model(samples: Samples, settings: TrainSettings, checkpoint: Path | None = None, progress: bool = True):
    """Train from scratch or resume from `checkpoint`; returns (net, per-epoch mean losses)."""
    import torch

    from pipelines.selection.model import SelectionNet, similarity_regression, symmetric_cross_entropy

    torch.set_num_threads(1)
    torch.manual_seed(settings.seed)
    inputs = torch.from_numpy(FACE_INPUT(samples.aligned))
    targets = torch.from_numpy(samples.labels.astype(np.int64))
    genuine = torch.from_numpy(samples.genuine_similarity.astype(np.float32))
    threshold = samples.stats["threshold"]
    net = SelectionNet(settings.width)
    optimizer = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    history, start = [], 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, start = state["history"], state["epoch"]
        log.info("resumed from %s at epoch %d", checkpoint, start)
    for epoch in range(start, settings.epochs):
        net.train()
        rng = np.random.default_rng([settings.seed, epoch])
        order = rng.permutation(len(inputs))
        flips = rng.random(len(inputs)) < 0.5  # a mirrored face is as recognisable
        losses = []
        bar = tqdm(range(0, len(order), settings.batch_size), desc=f"epoch {epoch + 1}/{settings.epochs}",
                   unit="batch", disable=not progress)
        for begin in bar:
            index = order[begin:begin + settings.batch_size]
            batch = inputs[index]
            flip = torch.from_numpy(flips[index])
            batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
            logits = net(batch)
            loss = symmetric_cross_entropy(logits, targets[index], settings.alpha, settings.beta)
            if settings.similarity_weight:
                loss = loss + settings.similarity_weight * similarity_regression(
                    logits, genuine[index], threshold, settings.similarity_scale)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses):.4f}")
        scheduler.step()
        history.append(float(np.mean(losses)))
        if checkpoint is not None:
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "history": history, "epoch": epoch + 1,
                        "settings": vars(settings)}, tmp)
            os.replace(tmp, checkpoint)
    net.eval()
    return net, history


def export_onnx(net, path: Path, parity_batch: np.ndarray) -> float:
    """Write the logit model with a dynamic batch axis; return max |onnx - torch| on `parity_batch`.

    The graph ends at the logit, not at a sigmoid: a float32 sigmoid is exactly 1.0 from logit ~17 and
    a float16 one (TensorRT, torch FP16) from ~8.3, so a track's best faces would tie there and the
    first seen would win. The scorer takes the sigmoid in float64 (`edge.select.LearnedScorer`).
    """
    import onnxruntime as ort
    import torch

    net = net.eval()
    example = torch.zeros(1, 3, FACE_INPUT.size, FACE_INPUT.size)
    torch.onnx.export(net, (example,), str(path), input_names=["face"], output_names=[LOGIT_OUTPUT],
                      dynamic_axes={"face": {0: "batch"}, LOGIT_OUTPUT: {0: "batch"}}, opset_version=17,
                      dynamo=False)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = net(torch.from_numpy(parity_batch)).numpy()
    got = session.run(None, {"face": parity_batch})[0]
    diff = float(np.abs(got - expected).max())
    if got.shape != expected.shape or diff > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX export differs from torch: shape {got.shape} vs {expected.shape}, max diff {diff}")
    return diff
