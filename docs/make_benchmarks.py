"""Writes docs/benchmarks.md: `python docs/make_benchmarks.py`.

The prose is docs/benchmarks.template.md. Each of its lines `<!-- table: NAME -->` becomes the current table of
area NAME, rendered from the JSON its command wrote and headed by that command, the machine and the commit. Machine
and commit come from the JSON where it records them; otherwise the machine is the host every such run was made on
and the commit is the last one that changed the JSON. Standard library only, so it runs from any Python.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
TEMPLATE = DOCS / "benchmarks.template.md"
OUTPUT = DOCS / "benchmarks.md"
MARKER = re.compile(r"^<!-- table: ([a-z_]+) -->$")
# The host of every run whose JSON does not name its machine.
DEFAULT_MACHINE = "the project's 2-core x86_64 CPU host, no GPU"
# Scorers with no learned part: the EDC ratio is taken against the best of these.
HAND_MADE = ("detector_score", "face_size", "heuristic", "laplacian_sharpness")


def num(value, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def last_commit(path: Path) -> str:
    """The commit that last changed `path`, as 7 hex digits (fixed, unlike %h, whatever the clone's size)."""
    out = subprocess.run(["git", "log", "-1", "--format=%H", "--", str(path.relative_to(ROOT))], cwd=ROOT,
                         capture_output=True, text=True, check=True).stdout.strip()
    if not out:
        raise SystemExit(f"{path.relative_to(ROOT)} is not committed: commit the JSON, then regenerate")
    return out[:7]


def describe_machine(machine) -> str:
    if isinstance(machine, str):
        return machine
    if isinstance(machine, dict):  # `bench models`: the CPU, ONNX Runtime and which backends were usable
        usable = [name for name, (ok, _detail) in machine.get("backends", {}).items() if ok]
        return (f"{machine['cpu']} CPU, onnxruntime {machine['onnxruntime']} with {machine['threads']} intra-op "
                f"thread; backends usable there: {', '.join(usable)}")
    return DEFAULT_MACHINE


# --- faceedge bench ---------------------------------------------------------------------------------------------

def render_pipeline(data: dict) -> list[str]:
    rounds = data["rounds"]
    lines = [f"`{data['input']}`, {data['frames']} pipeline frames timed in {data['repeats']} rounds that alternate "
             f"the two modes; detector input {data['detector_input_size']}, "
             f"{count(data['decoder_threads'], 'decoder thread')} per stream in both modes.", ""]
    rows = [
        ["decode-only frames/s", num(data["decode_only_fps"], 1), ", ".join(num(r["decode_only_fps"], 1) for r in rounds)],
        ["full pipeline frames/s", num(data["pipeline_fps"], 1), ", ".join(num(r["pipeline_fps"], 1) for r in rounds)],
        ["**ratio**", f"**{num(data['ratio'])}**", ", ".join(num(r["ratio"]) for r in rounds)],
    ]
    if "against" in data:
        change = " ".join(f"`{item}`" for item in data["against"])
        rows += [[f"pipeline with {change}, frames/s", num(data["against_fps"], 1),
                  ", ".join(num(r["against_fps"], 1) for r in rounds)],
                 [f"**with {change} / without**", f"**{num(data['against_ratio'])}**" + (
                     " (95 % interval {}-{})".format(*map(num, data["against_ratio_interval95"]))
                     if "against_ratio_interval95" in data else ""),
                  ", ".join(num(r["against_ratio"]) for r in rounds)]]
    lines += table(["", "median", "rounds"], rows)
    lines += ["", "Stage wall time per frame of the pipeline without the change, every thread sharing the cores (so "
              "they add up to more than the frame period):", ""]
    lines += table(["stage", "mean ms", "p95 ms", "count"], [
        [stage, num(row["mean_ms"], 2), num(row["p95_ms"], 2), str(row["count"])]
        for stage, row in data["stages"].items()])
    return lines


def _latency(row: dict) -> str:
    return "-" if row["p50_ms"] is None else f"{row['p50_ms']:.0f} / {row['p95_ms']:.0f}"


def _span(values) -> str:
    values = list(values)
    low, high = min(values), max(values)
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def render_density(data: dict) -> list[str]:
    trials = data["trials"]
    best, streams = data["max_realtime_streams"], data["per_stream"]
    lines = [f"`{data['input']}` ({data['clip_fps']:g} frames/s) as every camera, {data['seconds']:g} s per trial, "
             f"N searched from 1: **{best} cameras keep real time** (no frame dropped, every decoder up with its "
             f"clock). Decode-only ceiling: {data['decode_only_streams']} decoders flat out, "
             f"{count(data['decoder_threads'], 'thread')} each, decode {num(data['decode_only_fps'], 1)} frames/s = "
             f"{data['decode_only_max_streams']} cameras.", ""]
    lines += table(["N", "real time", "decoded", "skipped", "dropped", "detected frames/s",
                    "frame latency p50 / p95 ms", "publish latency p50 / p95 ms"], [
        [str(t["streams"]), "yes" if t["realtime"] else "**no**", str(t["total"]["decoded"]),
         str(t["total"]["skipped"]), str(t["total"]["dropped"]), num(t["total"]["detected_fps"], 1),
         _latency(t["total"]["frame_latency"]), _latency(t["total"]["publish_latency"])] for t in trials])
    lines += ["", f"At N = {best}, per stream: detection interval {_span(s['interval_end'] for s in streams)} at "
              f"the end (widened {_span(s['interval_widened'] for s in streams)} times, narrowed "
              f"{_span(s['interval_narrowed'] for s in streams)}), "
              f"{_span(s['detected_share'] for s in streams)} of the clock's frames detected. Frame latency runs "
              "from a frame's decoding to the end of its tracking and scoring; publish latency from a published "
              "face's frame to its arrival at a subscriber, which for a `best` face includes the rest of its track."]
    return lines


def render_density_early(data: dict) -> list[str]:
    total = data["total"]
    events = ", ".join(f"`{event}` {_latency(row)}" for event, row in total["publish_latency_by_event"].items())
    return [f"N = {data['decode_only_streams']}: {'real time' if data['max_realtime_streams'] else '**behind**'}, "
            f"{total['dropped']} frames dropped. Publish latency p50 / p95 ms: every message {_latency(total['publish_latency'])}; "
            f"by event {events}; each track's first message {_latency(total['first_publish_latency'])} "
            f"({total['first_publish_latency']['count']} tracks). A `best` is as old as the rest of its track: that is "
            "what the every-message figure holds."]


def render_stream_intervals(runs: dict) -> list[str]:
    rows = []
    for name, data in runs.items():
        synthetic, real = data["synthetic"], data["real_pooled"]
        naive = data["baselines"]["naive"]["real_pooled"]
        rows.append([f"`{' '.join(data['overrides'])}`", f"{synthetic['people_recovered']} / {synthetic['people']}",
                     str(synthetic["identity_switches"]), num(synthetic["median_efficiency"]),
                     f"{real['people_recovered']} / {real['people']}", num(real["median_efficiency"]),
                     f"{naive['people_recovered']} / {naive['people']}"])
    return table(["detection", "synthetic recovered", "identity switches", "synthetic median efficiency",
                  "real clips recovered", "real median efficiency", "naive loop, real clips"], rows)


# --- faceedge bench models --------------------------------------------------------------------------------------

def _agreement(report: dict) -> str:
    parts = []
    if "recall_of_fp32" in report:
        parts.append(f"recall of FP32's faces {num(report['recall_of_fp32'])}, precision "
                     f"{num(report['precision_vs_fp32'])} ({report['fp32_detections']} faces, {report['frames']} frames)")
    if "mean_cosine" in report:
        parts.append(f"mean cosine {num(report['mean_cosine'])} (min {num(report['min_cosine'])})")
    if "rank_correlation" in report:
        parts.append(f"rank correlation {num(report['rank_correlation'], 5)}")
    if report.get("best_face") is not None:
        low, high = report["best_face_interval95"]
        parts.append(f"best face {report['best_face_kept']} of {report['tracks']} tracks "
                     f"({num(report['best_face'])}, 95 % {num(low)}-{num(high)})")
        if "flip_fp32_gap_median" in report:
            parts.append(f"a flip costs FP32 {num(report['flip_fp32_gap_median'])} of score at the median "
                         f"(max {num(report['flip_fp32_gap_max'])}; FP32's median best-over-second margin "
                         f"{num(report['fp32_margin_median'])})")
    if "psnr_db" in report:
        parts.append(f"PSNR {num(report['psnr_db'], 2)} dB")
    return "; ".join(parts)


def render_models(data: dict) -> list[str]:
    backends = data["machine"]["backends"]
    batches = ("b1", "b8", "b32")
    speed_rows, int8_rows = [], []
    for model, entry in data["models"].items():
        for backend in (name for name in entry if name in backends):
            for precision, timings in entry[backend].items():
                row = [model, backend, precision]
                for batch in batches:
                    cell = timings[batch]
                    row += [f"{cell['items_per_s']:.0f}", f"{cell['p50_ms']:.2f} / {cell['p95_ms']:.2f}"]
                speed_rows.append(row)
        report = entry["int8_agreement"]
        int8_rows.append([model, f"{entry['int8_speedup_cpu']:.2f}x",
                          f"{report['method']}, {count(report['leading_float_layers'], 'leading float layer')}, "
                          f"{report['fit_items']} fit items",
                          _agreement(report), _agreement(report["tensorrt_form"])])
    header = ["model", "backend", "precision"]
    for batch in batches:
        header += [f"{batch} items/s", f"{batch} p50 / p95 ms"]
    lines = table(header, speed_rows)
    lines += ["", "INT8 against FP32 on the report split (identities and video segments the calibration never saw; "
              "a track is one face in 8 views):", ""]
    lines += table(["model", "INT8/FP32 at b32, calls alternating", "calibration chosen on the choose split",
                    "agreement (ONNX Runtime's uint8 file)", "its TensorRT form (symmetric int8), run on CPU"],
                   int8_rows)
    return lines


# --- faceedge eval selection ------------------------------------------------------------------------------------

def render_selection(data: dict) -> list[str]:
    scorers, thresholds = data["scorers"], list(data["thresholds"])
    rule = data["split_rule"]

    def area(row: dict, threshold: str, upto: int) -> dict:
        return row["edc"][threshold][f"area_{upto}"]

    def cell(figure: dict, digits: int = 5) -> str:
        low, high = figure["interval"]
        return f"{num(figure['value'], digits)} [{num(low, digits)}, {num(high, digits)}]"

    def gap_closed(threshold: str) -> str:
        """Share of the gap between the best hand-made scorer and the perfect ranking that selection closes."""
        best = min(area(scorers[n], threshold, 30)["value"] for n in HAND_MADE if n in scorers)
        perfect = data["oracle"][threshold]["area_30"]["value"]
        return num((best - area(scorers["selection"], threshold, 30)["value"]) / (best - perfect), 2)

    named = ", ".join(f"{name} (cosine {num(value, 4)})" for name, value in data["thresholds"].items())
    lines = [f"{len(data['identities'])} held-out identities ({rule['holdout_fraction']:g} of `{data['data']}` by a "
             f"hash of the folder name, never trained on), judged by {data['recognizer']['name']}: "
             f"{data['edc_probes']} EDC probes (faces below {data['min_face']:g} px left out, as at run time) and "
             f"{data['tracks']} tracks of {data['track_views']} views. Decision thresholds: {named}, the second from "
             f"{data['impostor_comparisons']} impostor comparisons. Intervals: 95 %, {data['interval']['resamples']} "
             f"bootstrap resamples of the identities. Selection closes {gap_closed(thresholds[0])} of the gap between "
             f"the best hand-made scorer and the perfect ranking (EDC area 0-30 %) at {thresholds[0]}, "
             f"{gap_closed(thresholds[1])} at {thresholds[1]}. The selection model takes "
             f"{num(data['selection_ms_per_face'], 2)} ms per face.", ""]
    rows = [["perfect ranking", *(num(data["oracle"][t][f"area_{u}"]["value"], 5) for t in thresholds
                                   for u in (20, 30)), "-"]]
    for name, row in sorted(scorers.items(), key=lambda item: area(item[1], thresholds[0], 30)["value"]):
        rows.append([name, *(cell(area(row, t, u)) for t in thresholds for u in (20, 30)),
                     cell(row["best_of_track_rank1"], 4)])
    return lines + table(["scorer", *(f"EDC {t}, 0-{u} %" for t in thresholds for u in (20, 30)),
                          "best-of-track rank-1"], rows)


# --- faceedge eval stream ---------------------------------------------------------------------------------------

def _sr(result: dict) -> str:
    sr = result["sr"]
    return "-" if not sr["touched"] else f"{sr['touched']} ({sr['lowered']} lowered, {sr['mean_gain']:+.3f})"


def render_stream_synthetic(data: dict) -> list[str]:
    split = data["split"]
    configs = [("faceedge", data["synthetic"])] + [(name, b["synthetic"]) for name, b in data["baselines"].items()]
    lines = [f"{split['people_used']} people drawn (seed {data['seed']}) from the {split['identities_on_side']} "
             f"held-out identities of `{split['data']}`, in {len(data['synthetic']['clips'])} clips.", ""]
    rows = []
    for name, r in configs:
        low, high = r["recovered_interval95"]
        rows.append([name, str(r["people"]), f"{r['people_recovered']} ({num(low, 2)}-{num(high, 2)})",
                     str(r["oracle_recoverable"]), num(r["median_efficiency"]),
                     "-" if r["identity_switches"] is None else str(r["identity_switches"]),
                     num(r["track_purity"]), num(r["messages_per_person"], 2), num(r["median_latency_s"], 2),
                     _sr(r)])
    return lines + table(["config", "people", "recovered (95 %)", "oracle", "median efficiency", "identity switches",
                          "track purity", "messages per person", "median latency s", "SR faces (lowered, gain)"],
                         rows)


def render_stream_real(data: dict) -> list[str]:
    names = ["faceedge"] + list(data["baselines"])
    per_config = [data["clips"]] + [b["clips"] for b in data["baselines"].values()]
    pooled = [data["real_pooled"]] + [b["real_pooled"] for b in data["baselines"].values()]
    rows = []
    for clip in list(data["clips"]) + ["pooled"]:
        results = pooled if clip == "pooled" else [clips[clip] for clips in per_config]
        first = results[0]
        rows.append([f"**{clip}**" if clip == "pooled" else f"`{clip}`", str(first["people"]),
                     str(first["oracle_recoverable"]),
                     " / ".join(str(r["people_recovered"]) for r in results),
                     " / ".join(num(r["median_efficiency"]) for r in results),
                     " / ".join(num(r["messages_per_person"], 2) for r in results), _sr(first)])
    versus = " / ".join(names)
    return table(["clip", "people", "oracle", f"recovered ({versus})", f"median efficiency ({versus})",
                  f"messages per person ({versus})", "SR faces (lowered, gain)"], rows)


@dataclass(frozen=True)
class Area:
    json_name: str  # or a glob: one run per file, rendered together (`render` gets {file stem: JSON})
    command: str  # the command that wrote the JSON, run from the repository root
    render: Callable[[dict], list[str]]


AREAS = {
    "pipeline": Area(
        "bench_pipeline.json",
        "faceedge bench --input ../shared/data/video/people_1080p.mp4 --frames 525 --repeats 5 "
        "--against track.identity_check=false --json docs/bench_pipeline.json",
        render_pipeline),
    "density": Area(
        "bench_density.json",
        "faceedge bench density --input ../shared/data/video/people_1080p.mp4 --json docs/bench_density.json",
        render_density),
    "density_early": Area(
        "bench_density_early.json",
        "faceedge bench density --input ../shared/data/video/people_1080p.mp4 --streams 5 "
        "--set publish.early_score=0.5 --set publish.early_within_s=0.3 --json docs/bench_density_early.json",
        render_density_early),
    "stream_intervals": Area(
        "eval_stream_interval_*.json",
        "faceedge eval stream --data ../shared/data/identities_large $(for f in ../shared/data/video/*; do echo "
        "--video $f; done) --configs naive,oracle --set detect.interval=N --json docs/eval_stream_interval_N.json",
        render_stream_intervals),
    "models": Area(
        "bench_models.json",
        "faceedge bench models --seconds 2 --json docs/bench_models.json --set inference.threads=1 "
        "--set inference.calibration.max_fit_items=64 --set inference.calibration.identities=held_out "
        "--set inference.calibration.report_fraction=0.5 --set inference.calibration.frames_per_source=2000 "
        "--calibration-source ../shared/data/identities_large --calibration-source ../shared/data/video/people_1080p.mp4",
        render_models),
    "selection": Area(
        "eval_selection_large.json",
        "faceedge eval selection --data ../shared/data/identities_large --probes-per-photo 6 --tracks-per-photo 1 "
        "--workers 2 --json docs/eval_selection_large.json --plot docs/selection_edc_large.png",
        render_selection),
    "stream_synthetic": Area(
        "eval_stream_synthetic.json",
        "faceedge eval stream --data ../shared/data/identities_large --configs naive,heuristic,detector "
        "--json docs/eval_stream_synthetic.json --sheet docs/eval_stream_synthetic.png",
        render_stream_synthetic),
    "stream_real": Area(
        "eval_stream_real.json",
        "faceedge eval stream $(for f in ../shared/data/video/*; do echo --video $f; done) --configs naive "
        "--json docs/eval_stream_real.json",
        render_stream_real),
}


def render_area(area: Area) -> list[str]:
    if "*" in area.json_name:
        paths = sorted(DOCS.glob(area.json_name), key=lambda p: [int(s) if s.isdigit() else s
                                                                  for s in re.split(r"(\d+)", p.stem)])
        runs = {p.stem: json.loads(p.read_text()) for p in paths}
        first = next(iter(runs.values()))
        commits = sorted({run.get("commit") or last_commit(p) for p, run in zip(paths, runs.values())})
        head = [f"Command: `{area.command}`  ", f"Machine: {describe_machine(first.get('machine'))}; commit "
                f"{', '.join(f'`{c}`' for c in commits)}; every number: "
                + ", ".join(f"[{p.name}]({p.name})" for p in paths) + ".", ""]
        return head + area.render(runs)
    path = DOCS / area.json_name
    data = json.loads(path.read_text())
    if data.get("commit"):
        commit = f"`{data['commit']}` (recorded in the JSON)"
    else:
        commit = f"`{last_commit(path)}` (the last change of the JSON)"
    machine = describe_machine(data.get("machine"))
    overrides = data.get("overrides") or []
    settings = f" with `--set {' --set '.join(overrides)}`" if overrides else ""
    head = [f"Command: `{area.command}`{settings}  ", f"Machine: {machine}; commit {commit}; every number: "
            f"[{area.json_name}]({area.json_name}).", ""]
    return head + area.render(data)


def render() -> str:
    lines = ["<!-- Generated by `python docs/make_benchmarks.py` from docs/benchmarks.template.md and the JSON files "
             "it names: edit those, not this file. -->", ""]
    for line in TEMPLATE.read_text().splitlines():
        marker = MARKER.match(line)
        lines += render_area(AREAS[marker.group(1)]) if marker else [line]
    return "\n".join(lines) + "\n"


def main() -> int:
    OUTPUT.write_text(render())
    print(f"wrote {OUTPUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
