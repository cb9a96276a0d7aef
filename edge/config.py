"""The one typed configuration schema, loaded from YAML and `--set key=value` overrides.

Every section forbids unknown keys, so a typo is refused at start-up with its dotted
path named (exit code 2), never silently ignored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from faceedge.trt_engines.backends import default_order, settings_models

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
    # Per-stream overrides of detect.input_size and detect.min_face (null: use detect's).
    input_size: int | None = Field(None, ge=64, le=4096)
    min_face: int | None = Field(None, ge=0)
    # Per-stream override of detect.interval (null: detect's).
    interval: int | None = Field(None, ge=0)

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
    # Capped so that a camera is back within a few seconds of returning, even after a long outage.
    reconnect_max_s: float = Field(4.0, gt=0)
    # Retries after a failure; null retries for ever (cameras come back).
    max_retries: int | None = Field(None, ge=0)
    queue_size: int = Field(8, ge=1)
    # Full queue: drop_oldest (newest frame wins), block (decoder waits), auto: drop_oldest
    # for live URLs, block for files.
    drop_policy: Literal["auto", "drop_oldest", "block"] = "auto"
    # FFmpeg decoder threads per stream: auto (half the cores, shared among the streams, at least 1),
    # 0 (FFmpeg picks: a frame thread per core, plus one), or a number.
    decoder_threads: Literal["auto"] | Annotated[int, Field(ge=0)] = "auto"
    # From this detection interval on, the decoder skips frames no other frame refers to (FFmpeg
    # skip_frame=NONREF: the non-reference B-frames, about half of the test clip's frames, which doubled its
    # decode speed); null: decode every frame. Streams without B-frames (most cameras) decode every frame.
    skip_nonref_from: int | None = Field(3, ge=1)


class DetectConfig(Section):
    model: str = "bundled:yunet"
    kind: Literal["yunet", "scrfd"] = "yunet"
    # Frames are scaled once, straight from the decoder, so their longer side is this.
    input_size: int = Field(640, ge=64, le=4096)
    score_threshold: float = Field(0.6, ge=0, le=1)
    nms_threshold: float = Field(0.3, ge=0, le=1)
    # Shorter side of the face box in source pixels below which a face is ignored.
    min_face: int = Field(16, ge=0)
    # Frames skipped between detections (0: every frame); norfair's motion prediction carries the
    # tracks across them. null: live_interval for streams that drop frames like a camera, 0 for
    # streams that wait (files).
    interval: int | None = Field(None, ge=0)
    live_interval: int = Field(2, ge=0)
    # A camera-like stream whose buffer is full widens its interval by one, up to this, before it
    # drops a frame; after narrow_after_s without a full buffer it narrows by one again.
    max_interval: int = Field(8, ge=0)
    narrow_after_s: float = Field(5.0, gt=0)


class TrackConfig(Section):
    distance_threshold: float = Field(0.7, gt=0)
    hit_counter_max: int = Field(10, ge=1)
    initialization_delay: int = Field(2, ge=0)
    point_score_threshold: float = Field(0.0, ge=0, le=1)
    # A frame whose 32x18 thumbnail's colour channels have, on average, 1 - correlation with the previous one's at
    # or above this is a shot cut and ends every track of its stream (edge/cuts.py; on the shared clips cuts score
    # 0.96-1.03, flicker and motion at most 0.28; decision 007). null: no cut detection.
    cut_threshold: float | None = Field(0.5, gt=0, le=2)
    # Split a track when the recognizer (SFace) says a face is someone else (edge/identity.py). On
    # people_1080p it keeps 0.90 of the pipeline's frames/s on a 2-core CPU (42 rounds of bench --against,
    # decision 008); false trades identity switches for that.
    identity_check: bool = True
    # Cosine to the track's reference below which a face is another person (SFace's same-person
    # threshold is 0.363; lower, so that a turned head of the same person rarely splits its track; on
    # identities_large photos 0.9 % of other-person pairs reach 0.3 and 2.9 % of same-person pairs fall below).
    identity_min_cosine: float = Field(0.3, ge=-1, le=1)
    # Only faces scoring at least this (select's scorer, on its scale) are embedded and compared. For the
    # selection model it is the probability that SFace identifies the face. The heuristic scorer's score
    # shrinks with face size and rarely reaches 0.5 below `full_size_px`: with it, `eval stream` seed 1 kept
    # 3 identity switches, against 0 with the selection model or the detector's score.
    identity_min_score: float = Field(0.5, ge=0, le=1)
    # A check is due when a track's face changes: 1 - correlation of its aligned 8x8 grey thumbnail with each of
    # the track's last 12 faces' at or above this (edge/identity.py). Every identity switch on `faceedge eval stream`'s
    # synthetic seeds 0 and 1 that a check meets this way scored 0.42-0.69 so, and 1.3 % of same-person identifiable
    # faces there reach 0.4 (from 32x32 copies of the offered faces).
    identity_face_change: float = Field(0.4, gt=0, le=2)
    # Also check when a corner of the track's box misses where the track's motion would put it by at least this share
    # of the box's longer side per frame (edge/identity.py): a face that takes the place of one it passes in front of
    # jumps. With it, `eval stream` kept no identity switch on 12 synthetic seeds (3 without), at 0.947 of the
    # frames/s on people_1080p (decision 018, bar 29). null: off.
    identity_box_jump: float | None = Field(0.25, gt=0)
    # Also check every this many frames of a track (null: only on a change of face or box).
    identity_check_interval: int | None = Field(None, ge=1)


class SelectConfig(Section):
    # "selection": recognition-aware selection, learned P(SFace identifies this face); "quality": learned image
    # quality; "heuristic": detector score x size x sharpness; "detector": the detector's score alone.
    scorer: Literal["selection", "quality", "heuristic", "detector"] = "selection"
    selection_model: str = "weights:selection.onnx"
    quality_model: str = "weights:quality.onnx"
    # A track whose best score is below this ends without being published (counted in
    # faceedge_tracks_below_min_score_total). Scores are in [0, 1]; the selection model's is the
    # probability that SFace identifies the face. 0 publishes every confirmed track.
    min_score: float = Field(0.0, ge=0, le=1)
    # A track that ends publishes the most typical of its this many best-scored faces (edge/typical.py). 1, the
    # default: the best-scored face; 8 was no better on eval stream's synthetic clips, better on its real clips but
    # one person of 25 fewer recovered (decision 019).
    typical_of: int = Field(1, ge=1)
    # Reject faces whose box comes this close (pixels) to the frame border.
    edge_margin: int = Field(2, ge=0)
    context_margin: float = Field(0.5, ge=0)
    aligned_size: int = Field(112, ge=32, le=512)


class EnhanceConfig(Section):
    # Super-resolve winners captured at no more than the generator's input resolution; others pass through.
    # Off: on `faceedge eval stream` it lowered the gallery similarity of 2 of the 4 faces it restored, and
    # the bar to switch it on is fewer than 10 % (docs/decisions/013-sr-off-by-default.md).
    enabled: bool = False
    model: str = "weights:sr.onnx"
    # Largest capture size restored: source pixels across the aligned crop (its size / the alignment
    # transform's scale). null: the SR model's input size (28 for the x4 model), which is also the most
    # allowed, so that no face is shrunk below the resolution it was captured at before restoring.
    max_capture_px: float | None = Field(None, gt=0)
    # Blend the restored face into the upscaled context crop (the enhancement refinements' fusion).
    fuse_context: bool = True


class CurveConfig(Section):
    """ZeroMQ CURVE: encrypt every message and accept only subscribers whose public key is allowed."""

    enabled: bool = False
    # The server's secret key file (`faceedge keys` writes NAME.key_secret); subscribers need its public half.
    server_secret_key: str = "/etc/faceedge/keys/server.key_secret"
    # A folder of allowed subscribers' public key files (NAME.key); re-read at start-up only.
    allowed_clients_dir: str = "/etc/faceedge/keys/clients"


class SpoolConfig(Section):
    """A local, size-capped copy of every published face, for recovery when nobody was listening."""

    enabled: bool = False
    dir: str = "/var/lib/faceedge/spool"
    max_bytes: int = Field(1_000_000_000, ge=4096)
    # A segment (one folder of JPEGs + its JSONL) is closed at this size; whole oldest segments are deleted.
    segment_bytes: int = Field(50_000_000, ge=1024)

    @model_validator(mode="after")
    def _segments_fit(self) -> "SpoolConfig":
        if self.segment_bytes * 2 > self.max_bytes:
            raise ValueError("segment_bytes must be at most half of max_bytes, so rotation can keep the cap")
        return self


class PublishConfig(Section):
    bind: str = "tcp://0.0.0.0:5556"
    # Names this box in every message (`instance`), so faces fanned in through a relay stay apart.
    # null: the host name.
    instance: str | None = Field(None, min_length=1, max_length=253)
    update_interval_s: float | None = Field(None, gt=0)
    # Early publish (null: off): a confirmed track's first face scoring at least this (and
    # select.min_score) goes out at once as `early`; a face at least early_update_margin above the
    # last one sent follows as `update`; the track's `best` goes out only if it is a new face.
    early_score: float | None = Field(None, ge=0, le=1)
    early_update_margin: float = Field(0.1, gt=0, le=1)
    # With early_score: a confirmed track still below it this many seconds after its first sighting
    # sends its best so far as `early` (null: wait for early_score).
    early_within_s: float | None = Field(None, ge=0)
    jpeg_quality: int = Field(90, ge=1, le=100)
    send_hwm: int = Field(1000, ge=1)
    linger_s: float = Field(2.0, ge=0)
    curve: CurveConfig = Field(default_factory=CurveConfig)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)


class MetricsConfig(Section):
    enabled: bool = True
    host: str = "0.0.0.0"
    port: int = Field(9108, ge=0, le=65535)


def _registered_backend(name: str, allowed: tuple[str, ...] = ()) -> str:
    known = (*allowed, *default_order())
    if name not in known:
        raise ValueError(f"unknown inference backend {name!r} (known: {', '.join(known)})")
    return name


# Checked against the backend plugins registered when the config is validated.
BackendName = Annotated[str, AfterValidator(_registered_backend)]
BackendChoice = Annotated[str, AfterValidator(lambda name: _registered_backend(name, ("auto",)))]
Precision = Literal["fp32", "fp16", "int8"]
ModelRole = Literal["detector", "recognizer", "selection", "quality", "sr"]


class ModelPrecisions(Section):
    # fp16 where the backend has it (TensorRT, torch CUDA), fp32 otherwise; int8 needs
    # `faceedge build-engines --precision int8` (calibration) first.
    detector: Precision = "fp16"
    recognizer: Precision = "fp16"
    selection: Precision = "fp16"
    quality: Precision = "fp16"
    sr: Precision = "fp16"


class CalibrationConfig(Section):
    # Folders of images (one sub-folder per identity) and/or videos; split by folder/segment.
    sources: list[str] = Field(default_factory=list)
    frames_per_source: int = Field(200, ge=1)
    # "held_out": a folder source keeps only the identity folders on the held-out side of the trainers'
    # identity split (edge.identity_split.split_identities), people the shipped models never trained on.
    # "trained": the training side fits and chooses, the held-out side reports (how shipped ranges are made).
    identities: Literal["all", "held_out", "trained"] = "all"
    # Share of identities (and video segments) that only report agreement; the rest fit and choose, 5:2.
    report_fraction: float = Field(0.3, gt=0, lt=1)
    # Tracks of face views per split. The choose split picks each model's calibration by best-face
    # agreement, so it must tell a point or two apart: 58 of 60 tracks has the 95 % interval 0.89-0.99,
    # 388 of 400 has 0.95-0.98. On the shared data 400 keeps every track (352 choose, 209 report;
    # docs/decisions/011-selection-int8-layout.md).
    max_tracks_per_split: int = Field(400, ge=1)
    # ONNX Runtime keeps every activation of every fit item in memory while calibrating.
    max_fit_items: int = Field(64, ge=1)
    # Per-model overrides of max_fit_items. The selection model's activations are small (about
    # 0.2 MB per item): 480 fit items (60 tracks x 8 views) lower its INT8 logit error on the choose
    # split at every layout measured (docs/decisions/011-selection-int8-layout.md); SFace at 480 items needed >10 GB,
    # and 256 (32 faces x 8 views) makes its shipped ranges (edge/weights/sface.int8-ranges.md).
    max_fit_items_by_model: dict[str, Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: {"selection": 480, "recognizer": 256})
    methods: list[Literal["entropy", "percentile", "minmax"]] = Field(
        default_factory=lambda: ["entropy", "percentile"], min_length=1)
    # Each value is a candidate of the percentile method (the choose split picks among all candidates).
    percentiles: list[Annotated[float, Field(gt=90, le=100)]] = Field(
        default_factory=lambda: [99.999, 99.99], min_length=1)
    # Leading weighted layers kept in float in the INT8 copy, per model (others: 1). The selection
    # model's early activations are its largest source of int8 error; three float layers are the most
    # that keep its INT8 copy at 1.5x FP32 speed or more (docs/decisions/011-selection-int8-layout.md).
    leading_float_layers: dict[str, Annotated[int, Field(ge=0)]] = Field(
        default_factory=lambda: {"selection": 3})


class InferenceConfig(Section, *settings_models()):
    """Backend choice, precisions and batching; each backend plugin adds its own keys (its `settings`:
    `threads` for ONNX Runtime, `engine_cache` for TensorRT)."""

    # "auto" tries `order` and keeps the first backend that works here.
    backend: BackendChoice = "auto"
    # Default: the plugins' own order (TensorRT, ONNX Runtime CUDA, torch CUDA, ONNX Runtime CPU, OpenCV CPU).
    order: list[BackendName] = Field(default_factory=lambda: list(default_order()), min_length=1)
    # Per model, an order that replaces `order` for it. OpenCV runs SFace 1.7-1.9x faster than ONNX
    # Runtime on CPU, the other models slower (docs/decisions/017-recognizer-on-opencv-dnn.md).
    order_by_model: dict[ModelRole, Annotated[list[BackendName], Field(min_length=1)]] = Field(
        default_factory=lambda: {"recognizer": ["tensorrt", "onnxruntime-cuda", "torch-cuda", "opencv-cpu",
                                                "onnxruntime-cpu"]})
    precision: ModelPrecisions = Field(default_factory=ModelPrecisions)
    batch_size: int = Field(32, ge=1, le=1024)
    calibration: CalibrationConfig = Field(default_factory=CalibrationConfig)


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
