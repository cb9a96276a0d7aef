import threading

import numpy as np
import pytest

from faceedge.trt_engines.backends import OnnxRuntimeBackend
from faceedge.trt_engines.batching import Batcher
from faceedge.trt_engines.models import input_spec, model_path
from faceedge.trt_engines.registry import MODELS


@pytest.fixture(scope="module")
def recognizer():
    path = model_path("recognizer")
    return OnnxRuntimeBackend(path, threads=1), input_spec(path)[0]


def test_batched_calls_return_the_same_rows_as_one_by_one(recognizer):
    backend, name = recognizer
    rng = np.random.default_rng(0)
    # Several "streams", each submitting all face crops of a frame (1 to 5 faces).
    requests = [rng.random((int(rng.integers(1, 6)), 3, 112, 112), dtype=np.float32) * 255 for _ in range(12)]
    expected = [backend.run({name: r})[0] for r in requests]
    batcher = Batcher(lambda x: backend.run({name: x}), max_batch=16, max_wait_s=0.05)
    results = [None] * len(requests)

    def stream(indices):
        for i in indices:
            results[i] = batcher(requests[i])[0]

    threads = [threading.Thread(target=stream, args=(range(k, len(requests), 4),)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    batcher.close()
    for got, want in zip(results, expected):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-3)
    assert batcher.batches_run < len(requests)  # requests were actually merged


def test_size_cap_and_errors_reach_every_caller():
    sizes = []

    def infer(x):
        sizes.append(len(x))
        if (x < 0).any():
            raise ValueError("negative input")
        return [x * 2]

    batcher = Batcher(infer, max_batch=4, max_wait_s=0.2)
    futures = [batcher.submit(np.ones((3, 2))) for _ in range(3)]
    assert [f.result()[0].tolist() for f in futures] == [[[2, 2]] * 3] * 3
    assert max(sizes) <= 4
    with pytest.raises(ValueError, match="negative"):
        batcher(np.full((1, 2), -1.0))
    batcher.close()


def test_detector_batches_frames_from_several_streams():
    path = model_path("detector")
    backend = OnnxRuntimeBackend(path, threads=1)
    name, item = input_spec(path, MODELS["detector"].shapes())
    frames = np.random.default_rng(1).random((3, 3, 96, 128), dtype=np.float32) * 255
    together = backend.run({name: frames})
    for i in range(3):
        alone = backend.run({name: frames[i:i + 1]})
        for a, b in zip(alone, together):
            np.testing.assert_allclose(a[0], b[i], rtol=1e-4, atol=1e-4)
