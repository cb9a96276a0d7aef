"""The one typed configuration schema, loaded from YAML and `--set key=value` overrides.

Every section forbids unknown keys, so a typo is refused at start-up with its dotted
path named (exit code 2), never silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from .errors import ConfigError

URL_SCHEMES = ("rtsp", "rtsps", "rtmp", "http", "https", "file", "udp", "tcp", "srt")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class StreamConfig(Section):
    id: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,64}$")
    url: str
    transport: Literal["tcp", "udp"] = "tcp"
    # Decode-side options: real-time pacing for files, loop a file forever (demo/soak).
    realtime: bool = False
    loop: bool = False

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, url: str) -> str:
        scheme = urlsplit(url).scheme.lower()
        if scheme and len(scheme) > 1 and scheme not in URL_SCHEMES:
            raise ValueError(f"unsupported URL scheme {scheme!r} (expected one of {', '.join(URL_SCHEMES)} or a file path)")
        return url


class SourceConfig(Section):
    open_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(10.0, gt=0)
    reconnect_initial_s: float = Field(0.5, gt=0)
    reconnect_max_s: float = Field(30.0, gt=0)
    # Retries after a failure; null retries for ever (cameras come back).
    max_retries: int | None = Field(None, ge=0)
    queue_size: int = Field(8, ge=1)
    # Full queue: drop_oldest (newest frame wins), block (decoder waits), auto: drop_oldest
    # for live URLs, block for files.
    drop_policy: Literal["auto", "drop_oldest", "block"] = "auto"
    decoder_threads: int = Field(0, ge=0)


class DetectConfig(Section):
    model: str = "bundled:yunet"
    kind: Literal["yunet", "scrfd"] = "yunet"
    # Frames are scaled once, straight from the decoder, so their longer side is this.
    input_size: int = Field(640, ge=64, le=4096)
    score_threshold: float = Field(0.6, ge=0, le=1)
    nms_threshold: float = Field(0.3, ge=0, le=1)
    # Shorter side of the face box in source pixels below which a face is ignored.
    min_face: int = Field(16, ge=0)


class TrackConfig(Section):
    distance_threshold: float = Field(0.7, gt=0)
    hit_counter_max: int = Field(10, ge=1)
    initialization_delay: int = Field(2, ge=0)
    point_score_threshold: float = Field(0.0, ge=0, le=1)


class SelectConfig(Section):
    scorer: Literal["heuristic"] = "heuristic"
    # Reject faces whose box comes this close (pixels) to the frame border.
    edge_margin: int = Field(2, ge=0)
    context_margin: float = Field(0.5, ge=0)
    aligned_size: int = Field(112, ge=32, le=512)


class EnhanceConfig(Section):
    # Super-resolve winners whose source face is small (seed 004's gate); others pass through.
    enabled: bool = True
    model: str = "weights:sr.onnx"
    # Inter-ocular distance in source pixels below which a winner is restored. 18 px is about
    # twice the x4 generator's input eye distance (8.8 px at 28x28): smaller faces lose nothing
    # when shrunk to its input, larger ones are better left as they are.
    iod_threshold: float = Field(18.0, gt=0)
    # Blend the restored face into the upscaled context crop (seed 001's fusion).
    fuse_context: bool = True
    threads: int = Field(1, ge=0)


class PublishConfig(Section):
    bind: str = "tcp://0.0.0.0:5556"
    update_interval_s: float | None = Field(None, gt=0)
    jpeg_quality: int = Field(90, ge=1, le=100)
    send_hwm: int = Field(1000, ge=1)
    linger_s: float = Field(2.0, ge=0)


class MetricsConfig(Section):
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = Field(9108, ge=0, le=65535)


class InferenceConfig(Section):
    threads: int = Field(0, ge=0)


class Config(Section):
    streams: list[StreamConfig] = Field(default_factory=list)
    source: SourceConfig = Field(default_factory=SourceConfig)
    detect: DetectConfig = Field(default_factory=DetectConfig)
    track: TrackConfig = Field(default_factory=TrackConfig)
    select: SelectConfig = Field(default_factory=SelectConfig)
    enhance: EnhanceConfig = Field(default_factory=EnhanceConfig)
    publish: PublishConfig = Field(default_factory=PublishConfig)
    metrics: MetricsConfig = Field(default_factory=MetricsConfig)
    inference: InferenceConfig = Field(default_factory=InferenceConfig)
    log_level: Literal["debug", "info", "warning", "error"] = "info"


def _describe(error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(root)"
        if item["type"] == "extra_forbidden":
            lines.append(f"unknown config key '{key}'")
        else:
            lines.append(f"config key '{key}': {item['msg']}")
    return "; ".join(lines)


def _set_dotted(tree: dict, dotted: str, value) -> None:
    parts = dotted.split(".")
    node = tree
    for index, part in enumerate(parts[:-1]):
        if isinstance(node, list):
            node = node[int(part)]
            continue
        child = node.setdefault(part, {})
        if not isinstance(child, (dict, list)):
            raise ConfigError(f"config key '{'.'.join(parts[:index + 1])}' is not a section")
        node = child
    leaf = parts[-1]
    if isinstance(node, list):
        node[int(leaf)] = value
    else:
        node[leaf] = value


def parse_override(text: str) -> tuple[str, object]:
    if "=" not in text:
        raise ConfigError(f"--set expects KEY=VALUE, got {text!r}")
    key, raw = text.split("=", 1)
    # YAML scalars: 24 -> int, true -> bool, null -> None, [a, b] -> list.
    return key.strip(), yaml.safe_load(raw) if raw.strip() else ""


def load_config(path: str | Path | None = None, overrides: list[str] = (), extra: dict | None = None) -> Config:
    """Defaults <- YAML file <- `extra` (CLI flags) <- `--set` overrides, validated once."""
    tree: dict = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        try:
            tree = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from exc
        if not isinstance(tree, dict):
            raise ConfigError(f"config file {path}: top level must be a mapping")
    for key, value in (extra or {}).items():
        _set_dotted(tree, key, value)
    for text in overrides:
        key, value = parse_override(text)
        try:
            _set_dotted(tree, key, value)
        except (ValueError, IndexError) as exc:
            raise ConfigError(f"--set {key}: {exc}") from exc
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
