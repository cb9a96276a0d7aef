"""ONNX export of the generator, checked against torch, and its CPU latency."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from .models import Generator

INPUT_NAME, OUTPUT_NAME = "lowres", "restored"


def export_onnx(model: Generator, path: Path, metadata: dict[str, str] | None = None) -> Path:
    import onnx

    model = model.eval()
    dummy = torch.rand(1, 3, model.lr_size, model.lr_size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, dummy, str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                      dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, opset_version=17,
                      dynamo=False)
    graph = onnx.load(str(path))
    for key, value in {"scale": str(model.scale), **(metadata or {})}.items():
        entry = graph.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(graph, str(path))
    return path


def parity(model: Generator, path: Path, batch: int = 4, seed: int = 0) -> float:
    """Largest absolute difference between torch and onnxruntime outputs on random faces."""
    import onnxruntime as ort

    inputs = torch.rand(batch, 3, model.lr_size, model.lr_size, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        expected = model.eval()(inputs).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {INPUT_NAME: inputs.numpy()})[0]
    return float(np.abs(got - expected).max())


def cpu_latency_ms(path: Path, lr_size: int, threads: int = 1, runs: int = 50) -> float:
    """Median onnxruntime wall time for one face on `threads` CPU threads."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    face = np.random.default_rng(0).random((1, 3, lr_size, lr_size), dtype=np.float32)
    for _ in range(5):
        session.run(None, {INPUT_NAME: face})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {INPUT_NAME: face})
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)
