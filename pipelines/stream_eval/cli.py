"""`faceedge eval stream`: what the real pipeline publishes, judged against who is in the video.

    faceedge eval stream --data DIR [--video CLIP [--gallery DIR]]... --json OUT [--sheet OUT.png]

Synthetic clips with box and identity truth are made from --data's held-out identities (or all
with --split all); each --video is a real clip whose people come from the --gallery after it, or
from clustering the clip's own faces. Every configuration runs the real `edge.pipeline.Pipeline`
over all clips at once (one stream per clip) and is judged on what its ZeroMQ socket delivered.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from tqdm import tqdm

from faceedge.edge.align import align_face
from faceedge.edge.config import load_config
from faceedge.edge.errors import ConfigError
from faceedge.edge.pipeline import make_detector, stream_id_for
from faceedge.edge.recognize import SFaceRecognizer

from .clips import Clip
from .judge import Published, judge
from .people import Reference, cluster_people, gallery_people
from .runner import run_pipeline
from .synth import choose_identities, load_people, make_clips
from .truth import scan_clip

log = logging.getLogger(__name__)

# Configurations run through the pipeline: --set overrides on top of the user's.
PIPELINE_CONFIGS = {
    "faceedge": [],
    "heuristic": ["select.scorer=heuristic"],
    "detector": ["select.scorer=detector"],
    "selection": ["select.scorer=selection"],
    "quality": ["select.scorer=quality"],
}
REPORT_KEYS = ("people", "people_recovered", "identity_switches", "median_efficiency")


class VideoAction(argparse.Action):
    """--video appends a [clip, gallery] pair; --gallery fills the gallery of the --video before it."""

    def __call__(self, parser, namespace, value, option_string=None):
        pairs = getattr(namespace, "videos", None) or []
        if option_string == "--video":
            pairs.append([Path(value), None])
        elif not pairs or pairs[-1][1] is not None:
            parser.error("--gallery must follow the --video it belongs to")
        else:
            pairs[-1][1] = Path(value)
        namespace.videos = pairs


def add_arguments(parser) -> None:
    from faceedge.edge.identity_split import HOLDOUT_FRACTION

    parser.add_argument("--data", type=Path, default=None, help="identity folders for the synthetic clips")
    parser.add_argument("--split", choices=["test", "all"], default="test",
                        help="test: the held-out side of the trainers' identity split (never trained on); all: every folder")
    parser.add_argument("--holdout-fraction", type=float, default=HOLDOUT_FRACTION)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--people", type=int, default=20, help="synthetic people (each needs >= 2 photos)")
    parser.add_argument("--clips", type=int, default=6, help="synthetic clips")
    parser.add_argument("--seconds", type=float, default=8.0, help="length of each synthetic clip")
    parser.add_argument("--video", action=VideoAction, dest="videos", default=[], help="a real clip (repeatable)")
    parser.add_argument("--gallery", action=VideoAction, dest="videos",
                        help="folder of photo folders, one per person, for the --video before it")
    parser.add_argument("--config", type=Path, default=None, help="pipeline config YAML (default: built-in defaults)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override a pipeline config key for every configuration run")
    parser.add_argument("--configs", default=",".join([*PIPELINE_CONFIGS, "naive", "oracle"]),
                        help="comma-separated configurations to run (faceedge is always run)")
    parser.add_argument("--threshold", type=float, default=SFaceRecognizer.cosine_threshold)
    parser.add_argument("--min-cluster-frames", type=int, default=5,
                        help="a face cluster is a person when seen in at least this many frames ...")
    parser.add_argument("--min-cluster-share", type=float, default=0.1,
                        help="... and in at least this share of the frames with any face")
    parser.add_argument("--work", type=Path, default=None, help="keep the synthetic clips and truth here")
    parser.add_argument("--json", type=Path, required=True, help="where to write the report")
    parser.add_argument("--sheet", type=Path, default=None, help="PNG: per person gallery, oracle and published face")


def run(args) -> int:
    started = time.monotonic()
    if args.data is None and not args.videos:
        raise ConfigError("eval stream: give --data (synthetic clips) and/or --video")
    base = load_config(args.config, args.set)
    chosen = ["faceedge"] + [c.strip() for c in args.configs.split(",") if c.strip() and c.strip() != "faceedge"]
    unknown = [c for c in chosen if c not in PIPELINE_CONFIGS and c not in ("naive", "oracle")]
    if unknown:
        raise ConfigError(f"eval stream: unknown configuration(s) {', '.join(unknown)}")
    for video, gallery in args.videos:
        if not video.is_file():
            raise ConfigError(f"eval stream: video not found: {video}")
        if gallery is not None and not gallery.is_dir():
            raise ConfigError(f"eval stream: gallery folder not found: {gallery}")
    detector = make_detector(base)
    recognizer = SFaceRecognizer(threads=1)
    work = args.work or Path(tempfile.mkdtemp(prefix="faceedge_eval_stream_"))
    report: dict = {"command": "faceedge eval stream", "seed": args.seed, "threshold": args.threshold,
                    "machine": f"{platform.node()} {platform.machine()} {_cores()} cores", "commit": _commit(),
                    "overrides": args.set, "latency_clock": (
                        "stream time: the stream's last detected frame when the message arrived (detected frames x "
                        "detection stride), as that frame's timestamp, minus the person's first visible frame's (synthetic: visibility >= 0.5 at "
                        ">= detect.min_face px; real: first face attributed at the threshold); files run at decode "
                        "speed")}
    clips: list[Clip] = []
    if args.data is not None:
        clips += synthetic_clips(args, base, detector, recognizer, work, report)
    for video, gallery in args.videos:
        clips.append(real_clip(args, base, detector, recognizer, video, gallery))
    for clip in clips:
        clip.settle_people(args.threshold, base.detect.min_face)

    streams = [{"id": clip.stream, "url": clip.path} for clip in clips]
    runs: dict[str, dict[str, list[Published]]] = {}
    offers: dict[str, list] = {}
    timings: dict[str, float] = {}
    for name in chosen:
        if name not in PIPELINE_CONFIGS:
            continue
        overrides = PIPELINE_CONFIGS[name]
        if name != "faceedge" and overrides and overrides[0] == f"select.scorer={base.select.scorer}":
            runs[name], offers[name], timings[name] = runs["faceedge"], offers["faceedge"], 0.0
            continue
        print(f"pipeline run: {name} ({', '.join([*args.set, *overrides]) or 'defaults'}) over {len(streams)} streams",
              flush=True)
        t0 = time.monotonic()
        result = run_pipeline(streams, args.config, [*args.set, *overrides])
        timings[name] = round(time.monotonic() - t0, 1)
        if len(result.messages) != result.sent:
            log.warning("%s: the pipeline sent %d faces, the subscriber received %d", name, result.sent,
                        len(result.messages))
        runs[name] = attribute_messages(clips, result.messages, recognizer, name)
        offers[name] = result.offers
    if "naive" in chosen:
        runs["naive"] = {clip.stream: clip.naive() for clip in clips}
    if "oracle" in chosen:
        runs["oracle"] = {clip.stream: clip.oracle() for clip in clips}

    sections = {name: judge_config(clips, runs[name], offers.get(name), args.threshold) for name in runs}
    head = sections["faceedge"]
    report.update(synthetic=head["synthetic"], clips=head["clips"], real_pooled=head["real_pooled"],
                  baselines={name: sections[name] for name in sections if name != "faceedge"},
                  pipeline_seconds=timings,
                  people_found={clip.name: clip.found for clip in clips if not clip.synthetic})
    report["same_run_as_faceedge"] = [n for n in runs if n != "faceedge" and runs[n] is runs["faceedge"]]
    report["seconds"] = round(time.monotonic() - started, 1)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=1, default=_plain))
    print(format_table(report))
    if args.sheet is not None:
        from .sheet import write_sheet

        write_sheet(args.sheet, clips, runs["faceedge"])
        print(f"sheet: {args.sheet}")
    print(f"report: {args.json} ({report['seconds']} s)")
    return 0


def synthetic_clips(args, base, detector, recognizer, work: Path, report: dict) -> list[Clip]:
    identities = choose_identities(args.data, args.split, args.holdout_fraction)
    people = load_people(args.data, identities, args.people, detector, args.seed)
    if not people:
        raise ConfigError(f"eval stream: no identity in {args.data} ({args.split}) has 2 photos with a face")
    split = "held-out (test) side of split_identities" if args.split == "test" else "all folders"
    print(f"synthetic: {len(people)} people from {len(identities)} identities of {args.data} ({split}, "
          f"holdout_fraction {args.holdout_fraction}), {args.clips} clips of {args.seconds:g} s in {work}", flush=True)
    report["split"] = {"data": str(args.data), "side": args.split, "holdout_fraction": args.holdout_fraction,
                       "identities_on_side": len(identities), "people_used": len(people),
                       "people": [p.identity for p in people]}
    by_name = {p.identity: p for p in people}
    truths = make_clips(people, work, args.seed, args.clips, args.seconds)
    clips = []
    for truth in truths:
        refs = {}
        for name in truth.people:
            photo = by_name[name].gallery
            image = cv2.imread(photo.path, cv2.IMREAD_COLOR)
            det = max(detector.detect(image), key=lambda d: d.size)
            face = align_face(image, det.landmarks)
            refs[name] = Reference(name, recognizer.embed([face]), face)
        scan = scan_clip(truth.path, detector, recognizer, base.detect.input_size, base.detect.min_face,
                         desc=Path(truth.path).name)
        clips.append(Clip(Path(truth.path).name, Path(truth.path).stem, truth.path, scan, refs,
                          "synthetic ground truth (gallery photo kept out of the clip)", truth))
    return clips


def real_clip(args, base, detector, recognizer, video: Path, gallery: Path | None) -> Clip:
    scan = scan_clip(str(video), detector, recognizer, base.detect.input_size, base.detect.min_face, desc=video.name)
    if gallery is not None:
        found = gallery_people(gallery, detector, recognizer)
    else:
        embeddings = np.array([f.embedding for f in scan.faces]).reshape(-1, 128)
        frames = np.array([f.frame_index for f in scan.faces], dtype=int)
        found = cluster_people(embeddings, frames, scan.aligned, args.threshold, args.min_cluster_frames,
                               args.min_cluster_share)
    print(f"{video.name}: {len(scan.frame_pts)} frames, {len(scan.faces)} faces; {len(found.references)} people "
          f"from {found.rule}", flush=True)
    stream = stream_id_for(str(video))
    return Clip(video.name, stream, str(video), scan, {r.name: r for r in found.references}, found.rule)


def attribute_messages(clips: list[Clip], messages, recognizer, name: str) -> dict[str, list[Published]]:
    by_stream = {clip.stream: clip for clip in clips}
    out: dict[str, list[Published]] = {clip.stream: [] for clip in clips}
    faces = [_decode(m.face) for m in messages]
    originals = [_decode(m.original) if m.original else None for m in messages]
    embedded = recognizer.embed(faces) if faces else []
    with_original = [i for i, face in enumerate(originals) if face is not None]
    original_emb = dict(zip(with_original, recognizer.embed([originals[i] for i in with_original]))) \
        if with_original else {}
    for index, message in enumerate(tqdm(messages, desc=f"judging {name}", leave=False)):
        meta = message.meta
        clip = by_stream.get(meta["stream"])
        if clip is None:
            continue
        who, sim = clip.attribute(meta["frame_index"], meta["bbox"], embedded[index])
        sr = None
        if index in original_emb and who is not None:
            sr = (sim, clip.references[who].similarity(original_emb[index]))
        out[clip.stream].append(Published(who, sim, clip.scan.frame_time(message.stream_frame), sr,
                                          faces[index]))
    return out


def judge_config(clips: list[Clip], published: dict[str, list[Published]], offers, threshold: float) -> dict:
    per_clip, synth_people, synth_pub, synth_tracks, real_people, real_pub = {}, [], [], [], [], []
    offered: dict[str, float] = {}  # person (real clips: "<clip>/<person>") -> best offered similarity
    for clip in clips:
        tracks = clip.tracks(offers) if clip.synthetic and offers is not None else None
        ceiling = clip.offered_best(offers) if offers is not None else None
        result = judge(clip.people, published[clip.stream], threshold, tracks, ceiling)
        result["people_found"] = clip.found
        per_clip[clip.name] = result
        for name, sim in (ceiling or {}).items():
            key = name if clip.synthetic else f"{clip.name}/{name}"
            offered[key] = max(sim, offered.get(key, -2.0))
        if clip.synthetic:
            synth_people += clip.people
            synth_pub += published[clip.stream]
            synth_tracks += tracks or []
        else:
            # Cluster names repeat between clips: pool them under the clip's name.
            real_people += [type(p)(f"{clip.name}/{p.name}", p.first_seen_s, p.oracle_similarity) for p in clip.people]
            real_pub += [Published(f"{clip.name}/{m.person}" if m.person else None, m.similarity, m.published_s, m.sr)
                         for m in published[clip.stream]]
    pooled_offered = offered if offers is not None else None
    synthetic = judge(synth_people, synth_pub, threshold, synth_tracks if offers is not None else None, pooled_offered)
    synthetic["clips"] = {name: r for name, r in per_clip.items() if name in {c.name for c in clips if c.synthetic}}
    return {"synthetic": synthetic, "clips": {n: r for n, r in per_clip.items() if n not in synthetic["clips"]},
            "real_pooled": judge(real_people, real_pub, threshold, None, pooled_offered)}


def format_table(report: dict) -> str:
    configs = {"faceedge": {"synthetic": report["synthetic"], "clips": report["clips"],
                            "real_pooled": report["real_pooled"]}, **report["baselines"]}
    header = (f"{'config':<11}{'people':>7}{'recovered':>10}{'oracle':>7}{'med.eff':>8}{'switch':>7}{'purity':>7}"
              f"{'choice':>7}{'msg/pers':>9}{'lat.s':>7}{'SR n':>5}{'SR gain':>8}")
    lines = []

    def block(title: str, pick) -> None:
        lines.extend(["", title, header])
        for name, sections in configs.items():
            r = pick(sections)
            if r is None:
                continue
            lines.append(f"{name:<11}{r['people']:>7}{r['people_recovered']:>10}{r['oracle_recoverable']:>7}"
                         f"{_f(r['median_efficiency']):>8}{_f(r['identity_switches'], 0):>7}{_f(r['track_purity']):>7}"
                         f"{_f(r['median_choice_efficiency']):>7}"
                         f"{_f(r['messages_per_person'], 2):>9}{_f(r['median_latency_s'], 2):>7}"
                         f"{r['sr']['touched']:>5}{_f(r['sr']['mean_gain']):>8}")

    if report["synthetic"]["people"]:
        split = report.get("split", {})
        block(f"synthetic, pooled ({split.get('side')}: {split.get('people_used')} people of "
              f"{split.get('identities_on_side')} identities)", lambda s: s["synthetic"])
    for clip in report["clips"]:
        block(f"{clip}: {report['clips'][clip]['people_found']}", lambda s, c=clip: s["clips"].get(c))
    if report["clips"]:
        block("real clips, pooled", lambda s: s["real_pooled"])
    return "\n".join(lines)


def _f(value, digits: int = 3) -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if digits else str(int(value))


def _decode(jpeg: bytes) -> np.ndarray:
    face = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    return face if face.shape[:2] == (112, 112) else cv2.resize(face, (112, 112), interpolation=cv2.INTER_AREA)


def _plain(value):
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON: {type(value)}")


def _cores() -> int:
    import os

    return os.cpu_count() or 0


def _commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=Path(__file__).parent, timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
