"""Which backend and precision each model runs on: logged at start-up, exported as a metric.

`faceedge_model_info{model,backend,precision} 1` is an info-style gauge: the pipeline's
metrics module calls `register_model_info(registry)` once, and every `open_backend`
records its choice here.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_models: dict[str, tuple[str, str]] = {}
_gauges: list = []


def record(model: str, backend: str, precision: str) -> None:
    with _lock:
        previous = _models.get(model)
        _models[model] = (backend, precision)
        for gauge in _gauges:
            if previous and previous != (backend, precision):
                gauge.remove(model, *previous)
            gauge.labels(model, backend, precision).set(1)


def model_info() -> list[tuple[str, str, str]]:
    """(model, backend, precision) for every model opened so far."""
    with _lock:
        return [(model, *choice) for model, choice in sorted(_models.items())]


def register_model_info(registry=None):
    """Create the `faceedge_model_info` gauge on `registry` (default: the global one) and fill it."""
    from prometheus_client import REGISTRY, Gauge

    gauge = Gauge("faceedge_model_info", "Inference backend and precision each model runs on (value 1)",
                  ["model", "backend", "precision"], registry=registry or REGISTRY)
    with _lock:
        _gauges.append(gauge)
        for model, (backend, precision) in _models.items():
            gauge.labels(model, backend, precision).set(1)
    return gauge
