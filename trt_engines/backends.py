"""One inference interface for every model, over the backend plugins in `trt_engines/plugins/`.

Discovery is automatic: every module of the `plugins` package that defines `PLUGIN` (a
`base.BackendPlugin`) is registered at import, so adding a backend is one new file there;
`register` adds one from elsewhere. The plugins' names, native precisions, places in the
default order and settings (keys of the `inference` config section) all come from the plugins.

`open_backend` picks the first backend that works on this machine, in the configured
order (default: each plugin's `order`, lowest first: TensorRT, ONNX Runtime with CUDA,
torch on CUDA, ONNX Runtime on CPU, OpenCV on CPU), so callers never know which one runs. A backend that
cannot serve the requested precision natively is passed over in a first round; if none can,
the first working backend runs at the nearest precision it has (fp16 -> fp32), and says so in the log.

INT8 always comes from a QDQ ONNX made by `calibration.quantize` (the same file feeds
ONNX Runtime's INT8 kernels and TensorRT's explicit-quantisation build).
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel

from faceedge.edge.errors import ModelFileError

from . import info, plugins as plugin_package
from .base import Backend, BackendPlugin, BackendRequest, BackendUnavailable

log = logging.getLogger("faceedge.backends")

DOWNGRADE = {"fp16": "fp32"}
_PLUGINS: dict[str, BackendPlugin] = {}


def register(plugin: BackendPlugin) -> None:
    """Add a backend plugin: from then on it is a valid `inference.backend`, in the default order by its `order`.

    Its settings become `inference` config keys only if it is registered before `edge.config` is imported
    (as every module of `plugins/` is); otherwise they are `open_backend` keywords only.
    """
    if plugin.name == "auto":
        raise ValueError("no inference backend may be called 'auto': it names the choice among them")
    if plugin.name in _PLUGINS:
        raise ValueError(f"inference backend {plugin.name!r} is already registered")
    _PLUGINS[plugin.name] = plugin


def _discover() -> None:
    for module_info in pkgutil.iter_modules(plugin_package.__path__):
        module = importlib.import_module(f"{plugin_package.__name__}.{module_info.name}")
        if hasattr(module, "PLUGIN"):
            register(module.PLUGIN)


_discover()


def registered() -> dict[str, BackendPlugin]:
    """Every plugin by name, in the default order."""
    ranked = sorted(_PLUGINS.values(), key=lambda plugin: (plugin.order, plugin.name))
    return {plugin.name: plugin for plugin in ranked}


def default_order() -> tuple[str, ...]:
    return tuple(registered())


def settings_models() -> list[type[BaseModel]]:
    """The plugins' settings models, each once; no key may be declared by two different models."""
    models: list[type[BaseModel]] = []
    owners: dict[str, type[BaseModel]] = {}
    for plugin in registered().values():
        if plugin.settings is None or plugin.settings in models:
            continue
        for key in plugin.settings.model_fields:
            if key in owners:
                raise ValueError(f"backend setting {key!r} is declared by {owners[key].__name__} "
                                 f"and {plugin.settings.__name__}")
            owners[key] = plugin.settings
        models.append(plugin.settings)
    return models


def settings_of(section) -> dict:
    """The plugins' settings as `section` (the `inference` config) holds them, for `open_backend`."""
    return {key: getattr(section, key) for model in settings_models() for key in model.model_fields}


def select_backend(req: BackendRequest, order: tuple[str, ...],
                   plugins: Mapping[str, BackendPlugin] | None = None) -> tuple[Backend, list[str]]:
    """Open the first backend of `order` that works; return it and why the others were passed over."""
    plugins = _PLUGINS if plugins is None else plugins
    unknown = [name for name in order if name not in plugins]
    if unknown:
        raise ModelFileError(f"unknown inference backend(s) {unknown}; known: {list(plugins)}")
    skipped: list[str] = []
    rounds = [(name, req.precision) for name in order if req.precision in plugins[name].precisions]
    fallback = DOWNGRADE.get(req.precision)
    if fallback:
        rounds += [(name, fallback) for name in order
                   if req.precision not in plugins[name].precisions and fallback in plugins[name].precisions]
    tried = set()
    for name, precision in rounds:
        tried.add(name)
        try:
            backend = plugins[name].open(req, precision)
        except (BackendUnavailable, ImportError) as exc:
            skipped.append(f"{name}: {exc}")
            continue
        if precision != req.precision:
            log.info("%s: %s has no %s; running %s", req.model, name, req.precision, precision)
        return backend, skipped
    skipped += [f"{name}: cannot run {req.precision}" for name in order if name not in tried]
    raise ModelFileError(f"no inference backend can run {req.model} at {req.precision}: " + "; ".join(skipped))


def open_backend(path: Path, *, backend: str = "auto", precision: str = "fp32",
                 order: tuple[str, ...] | list[str] | None = None, model: str | None = None,
                 max_batch: int = 32, profile: dict | None = None, torch_module=None, int8_ranges: Path | None = None,
                 **settings) -> Backend:
    """Open `path` (float ONNX) on `backend` ("auto" = first that works in `order`, default: the
    plugins' order) at `precision`; `settings` are the plugins' keys (threads=, engine_cache=, ...);
    `int8_ranges`, shipped activation ranges its INT8 copies may be made from.

    The choice is logged and recorded for the `faceedge_model_info` metric.
    """
    known = {key for settings_model in settings_models() for key in settings_model.model_fields}
    if set(settings) - known:
        raise TypeError(f"open_backend: unknown backend setting(s) {sorted(set(settings) - known)}; "
                        f"known: {sorted(known)}")
    model = model or Path(path).stem
    req = BackendRequest(Path(path), precision, max_batch, profile, torch_module, model, settings, int8_ranges)
    chosen_order = (tuple(order) if order is not None else default_order()) if backend == "auto" else (backend,)
    chosen, skipped = select_backend(req, chosen_order)
    for reason in skipped:
        log.debug("%s: passed over %s", model, reason)
    log.info("model %s runs on %s at %s", model, chosen.name, chosen.precision)
    info.record(model, chosen.name, chosen.precision)
    return chosen


def describe_backends() -> list[tuple[str, bool, str]]:
    """(backend, usable here, detail) for each backend, in the default order, without opening a model."""
    rows = []
    for plugin in registered().values():
        try:
            usable, detail = plugin.describe()
        except (ImportError, RuntimeError) as exc:  # a missing library; BackendUnavailable; a CUDA error
            usable, detail = False, str(exc)
        rows.append((plugin.name, usable, detail))
    return rows
