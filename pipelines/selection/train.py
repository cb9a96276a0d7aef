"""Train the selection CNN on labelled probes (samples.py) and export it to ONNX.

SelectionNet with symmetric cross-entropy plus a pull of the logit towards the recogniser's genuine
similarity (model.similarity_regression) and, with group_size > 1, a listwise ranking of each batch's
track-like groups of one person's faces (model.within_track_ranking), a checkpoint after every epoch (a rerun with the same --out
resumes), then ONNX export whose outputs are checked against torch and which records the recogniser.

Under `torchrun` (WORLD_SIZE > 1) it trains with DistributedDataParallel, NCCL on GPUs and gloo on CPUs:
every process draws the same epoch order and takes its share of each global batch of `batch_size`, so
the optimisation follows the single-process run (batch-norm statistics are per share).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceedge.edge.face_input import LOGIT_OUTPUT, SELECTION_INPUT as FACE_INPUT
from faceedge.pipelines.selection.protocol import person_groups
from faceedge.pipelines.selection.samples import Samples

log = logging.getLogger(__name__)
PARITY_TOLERANCE = 1e-4


@dataclass
class TrainSettings:
    epochs: int = 12
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    alpha: float = 1.0
    beta: float = 1.0
    similarity_weight: float = 0.1  # 0 trains on the patent's SCE alone
    similarity_scale: float = 40.0  # logit per unit of cosine similarity
    seed: int = 0
    width: int = 16
    # Faces per track-like group: one person's probes (several photos, sizes and degradations) batched
    # together so the within-track ranking term can order them; 1 batches faces independently.
    group_size: int = 1
    ranking_weight: float = 0.0  # weight of model.within_track_ranking (needs group_size > 1)
    ranking_temperature: float = 0.05  # cosine units: the sharpness of the target order within a group


@dataclass(frozen=True)
class World:
    """This process's place among the training processes."""

    rank: int = 0
    size: int = 1
    device: str = "cpu"
    backend: str | None = None  # torch.distributed's, in a world of several


def join_world() -> World:
    """torchrun's process group (NCCL where there are GPUs, gloo on CPUs), or a world of one (on the GPU if any)."""
    import torch
    import torch.distributed as dist

    cuda = torch.cuda.is_available()
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return World(device="cuda" if cuda else "cpu")
    local = int(os.environ.get("LOCAL_RANK", "0"))
    if cuda:
        torch.cuda.set_device(local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if cuda else "gloo")
    return World(dist.get_rank(), dist.get_world_size(), f"cuda:{local}" if cuda else "cpu", dist.get_backend())


def leave_world(world: World) -> None:
    if world.size > 1:
        import torch.distributed as dist

        dist.destroy_process_group()


def epoch_groups(count: int, identities: np.ndarray | None, group_size: int,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """One epoch's faces in a random order, as groups of `group_size` probes of one person each.

    Each person's probes are shuffled and cut into groups (a last one shorter than `group_size` sits the epoch
    out); the groups are shuffled together. With a group size of 1 it is a permutation of all faces.
    """
    if group_size == 1:
        return [np.array([i]) for i in rng.permutation(count)]
    if identities is None:
        raise ValueError("track-like groups need each probe's identity")
    groups = person_groups(identities, group_size, rng, shortest=group_size)
    return [groups[i] for i in rng.permutation(len(groups))]


def batch_loss(logits, labels, genuine, threshold: float, settings: TrainSettings):
    """The training loss of one batch: SCE, plus the similarity pull and the within-track ranking where weighted."""
    from faceedge.pipelines.selection.model import similarity_regression, symmetric_cross_entropy, within_track_ranking

    loss = symmetric_cross_entropy(logits, labels, settings.alpha, settings.beta)
    if settings.similarity_weight:
        loss = loss + settings.similarity_weight * similarity_regression(logits, genuine, threshold,
                                                                         settings.similarity_scale)
    if settings.ranking_weight:
        loss = loss + settings.ranking_weight * within_track_ranking(
            logits, genuine, settings.group_size, settings.ranking_temperature, settings.similarity_scale)
    return loss


def train_model(samples: Samples, settings: TrainSettings, checkpoint: Path | None = None, progress: bool = True,
                world: World | None = None, initial=None, epoch_stream: int = 0):
    """Train from scratch (or on from the module `initial`), or resume from `checkpoint`; returns (net on the CPU,
    per-epoch mean losses). Epoch e draws its order from the random stream [seed, epoch_stream + e].

    In a world of several processes each takes every size-th face of each global batch; the epoch losses
    are the mean over all processes' faces, and rank 0 writes the checkpoint.
    """
    import torch
    import torch.distributed as dist

    from faceedge.pipelines.selection.model import SelectionNet

    world = world or World()
    torch.set_num_threads(1)
    torch.manual_seed(settings.seed)
    inputs = torch.from_numpy(FACE_INPUT(samples.aligned))
    targets = torch.from_numpy(samples.labels.astype(np.int64))
    genuine = torch.from_numpy(samples.genuine_similarity.astype(np.float32))
    threshold = samples.stats["threshold"]
    net = (initial if initial is not None else SelectionNet(settings.width)).to(world.device)
    optimizer = torch.optim.AdamW(net.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=settings.epochs)
    history, start = [], 0
    if checkpoint is not None and checkpoint.is_file():
        state = torch.load(checkpoint, weights_only=False, map_location=world.device)
        net.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        history, start = state["history"], state["epoch"]
        log.info("resumed from %s at epoch %d", checkpoint, start)
    model = net
    if world.size > 1:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(net, device_ids=[world.device] if world.device != "cpu" else None)
        torch.manual_seed(settings.seed + 1 + world.rank)  # each process's own dropout masks
    if settings.ranking_weight and settings.group_size < 2:
        raise ValueError("the within-track ranking needs group_size >= 2")
    per_batch = max(1, settings.batch_size // settings.group_size)  # groups in one global batch
    started = time.perf_counter()
    for epoch in range(start, settings.epochs):
        model.train()
        rng = np.random.default_rng([settings.seed, epoch_stream + epoch])
        groups = epoch_groups(len(inputs), samples.identities, settings.group_size, rng)
        flips = rng.random(len(inputs)) < 0.5  # a mirrored face is as recognisable
        # A global batch too small to give every process a group is left out (only ever an epoch's last one).
        batches = [b for b in range(0, len(groups), per_batch) if len(groups) - b >= world.size]
        total = torch.zeros(2, dtype=torch.float64, device=world.device)  # summed loss x faces, faces
        bar = tqdm(batches, desc=f"epoch {epoch + 1}/{settings.epochs}", unit="batch",
                   disable=not progress or world.rank != 0)
        for begin in bar:
            index = np.concatenate(groups[begin:begin + per_batch][world.rank::world.size])
            flip = torch.from_numpy(flips[index]).to(world.device)
            batch = inputs[index].to(world.device)
            batch = torch.where(flip[:, None, None, None], batch.flip(3), batch)
            loss = batch_loss(model(batch), targets[index].to(world.device), genuine[index].to(world.device),
                              threshold, settings)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += torch.tensor([loss.item() * len(index), len(index)], dtype=torch.float64, device=world.device)
            bar.set_postfix(loss=f"{float(total[0] / total[1]):.4f}")
        scheduler.step()
        if world.size > 1:
            dist.all_reduce(total)
        history.append(float(total[0] / total[1]))
        if checkpoint is not None and world.rank == 0:
            tmp = checkpoint.with_suffix(".tmp")
            torch.save({"model": net.state_dict(), "optimizer": optimizer.state_dict(),
                        "scheduler": scheduler.state_dict(), "history": history, "epoch": epoch + 1,
                        "settings": vars(settings)}, tmp)
            os.replace(tmp, checkpoint)
        if world.size > 1:
            dist.barrier()
        per_epoch = (time.perf_counter() - started) / (epoch + 1 - start)
        if world.rank == 0:
            log.info("epoch %d/%d: loss %.4f, %.1f s per epoch, about %.1f min left (%d process%s)", epoch + 1,
                     settings.epochs, history[-1], per_epoch, per_epoch * (settings.epochs - epoch - 1) / 60,
                     world.size, "es" if world.size > 1 else "")
    net.eval()
    return net.cpu(), history


def score_faces(net, aligned: np.ndarray, batch: int = 256) -> np.ndarray:
    """The trained net's logit for each aligned face."""
    import torch

    net = net.eval()
    with torch.no_grad():
        return np.concatenate([net(torch.from_numpy(FACE_INPUT(aligned[i:i + batch]))).numpy()
                               for i in range(0, len(aligned), batch)])


def export_onnx(net, path: Path, parity_batch: np.ndarray, metadata: dict[str, str] | None = None) -> float:
    """Write the logit model with a dynamic batch axis; return max |onnx - torch| on `parity_batch`.

    `metadata` goes into the file's metadata_props (the recogniser it was trained for: `recognizer_metadata`).

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
    if metadata:
        import onnx

        model = onnx.load(str(path))
        for key, value in metadata.items():
            model.metadata_props.add(key=key, value=value)
        onnx.save(model, str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = net(torch.from_numpy(parity_batch)).numpy()
    got = session.run(None, {"face": parity_batch})[0]
    diff = float(np.abs(got - expected).max())
    if got.shape != expected.shape or diff > PARITY_TOLERANCE:
        raise RuntimeError(f"ONNX export differs from torch: shape {got.shape} vs {expected.shape}, max diff {diff}")
    return diff


def recognizer_metadata(recognizer: dict) -> dict[str, str]:
    """metadata_props naming the recogniser whose labels a model learned (`edge.select.LearnedScorer.trained_for`)."""
    from faceedge.edge.select import TRAINED_FOR_KEY

    return {TRAINED_FOR_KEY: recognizer["name"], f"{TRAINED_FOR_KEY}.version": recognizer["version"],
            f"{TRAINED_FOR_KEY}.threshold": repr(recognizer["threshold"])}
