"""`faceedge eval selection --data DIR --json OUT [--plot OUT.png]`: scorers compared side by side.

On the identities of --split (default `test`: the held-out side of the same hash split as training;
`all`: every identity folder, for people the model never saw) every scorer rates the same probes
(degraded, re-detected, re-aligned views of real photos; probes.py), judged by --recognizer. Like the
runtime, the probes leave out faces whose detected box is below `detect.min_face`. The figures follow
the field's protocol (protocol.py):

- Error-versus-Discard at two decision thresholds, the recogniser's own and the one giving FMR 1e-3 on
  the scored identities' impostor comparisons; partial areas up to 20 % and 30 % discarded (lower is better).
- Best of track: each track is a sequence of views of one photo; the scorer picks one face and
  `best_of_track_rank1` is how often the recogniser's top-1 identity for it is right.
- Every figure with a 95 % interval from a bootstrap over identities.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from faceedge.edge.config import DetectConfig, InferenceConfig
from faceedge.pipelines.selection.cli import add_split_arguments, open_recognizer, split_of
from faceedge.pipelines.selection.protocol import (INTERVAL, PARTIAL_AREAS, TARGET_FMR, error_versus_discard, fmr_threshold,
                                          identity_resamples, impostor_top, interval, partial_area, track_hits)

# Scorers are compared on one CPU thread, the same backend for each.
ONE_CPU_THREAD = InferenceConfig(backend="onnxruntime-cpu", threads=1)

log = logging.getLogger(__name__)
TRACK_SIZE_SPREAD = 1.25  # face size within one track varies by this factor either way
SCORE_BATCH = 256
# The hand-made scorers the learned ones are measured against ("random" is a floor, not a contender).
HAND_MADE = ("heuristic", "detector_score", "face_size", "laplacian_sharpness")
HEADLINE = ("recognizer", "area_30")  # the figure the table sorts by and compares with the best hand-made


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="folder of identity subfolders of photos")
    parser.add_argument("--json", required=True, type=Path, help="where to write the results")
    parser.add_argument("--plot", type=Path, default=None, help="optional PNG of the Error-versus-Discard curves")
    parser.add_argument("--model", default="weights:selection.onnx", help="selection model to evaluate")
    parser.add_argument("--compare", action="append", default=[], metavar="NAME=MODEL",
                        help="another selection model scored on the same probes, reported as NAME with its paired "
                             "difference from --model (repeatable)")
    parser.add_argument("--split", choices=["test", "all"], default="test",
                        help="identities scored: test = held out from training by the hash split (default); "
                             "all = every identity folder (people the model never saw)")
    add_split_arguments(parser)
    parser.add_argument("--probes-per-photo", type=int, default=40)
    parser.add_argument("--tracks-per-photo", type=int, default=6)
    parser.add_argument("--track-length", type=int, default=8)
    parser.add_argument("--bootstrap", type=int, default=1000, help="identity resamples behind each 95 %% interval")
    parser.add_argument("--min-face", type=float, default=float(DetectConfig().min_face),
                        help="leave out faces whose detected box is below this many pixels (default: the config's "
                             "detect.min_face, the floor the pipeline applies; a stream's own min_face may differ)")


def selection_scorer(model: str):
    from faceedge.edge.select import LearnedScorer
    from faceedge.trt_engines.model_registry import MODELS

    return LearnedScorer("selection", model, MODELS["selection"].prepare, ONE_CPU_THREAD)


def compared_models(pairs: list[str]) -> dict:
    """NAME=MODEL arguments -> {NAME: LearnedScorer}."""
    from faceedge.edge.errors import ConfigError

    compared = {}
    for pair in pairs:
        name, _, model = pair.partition("=")
        if not name or not model:
            raise ConfigError(f"--compare {pair!r}: expected NAME=MODEL")
        if name in compared or name == "selection":
            raise ConfigError(f"--compare {pair!r}: the name {name!r} is already taken")
        compared[name] = selection_scorer(model)
    return compared


def scorer_table(selection, seed: int, compared: dict | None = None) -> dict:
    """name -> callable(probes) -> scores, for every scorer compared (`selection`: the model under test)."""
    from faceedge.edge.model_files import WEIGHTS_DIR
    from faceedge.edge.select import Candidate, HeuristicScorer, LearnedScorer, laplacian_variance
    from faceedge.trt_engines.model_registry import MODELS

    def candidates(ps):
        return [Candidate(p.aligned, p.detection, p.frame_shape) for p in ps]

    def in_batches(scorer):
        return lambda ps: np.concatenate([scorer.score(candidates(ps[i:i + SCORE_BATCH])) for i in
                                          tqdm(range(0, len(ps), SCORE_BATCH), desc=scorer.name, unit="batch",
                                               leave=False)] or [np.empty(0)])

    learned = {"selection": selection, **(compared or {})}
    if (WEIGHTS_DIR / "quality.onnx").is_file():
        learned["quality"] = LearnedScorer("quality", "weights:quality.onnx", MODELS["quality"].prepare, ONE_CPU_THREAD)
    heuristic = HeuristicScorer()
    table = {name: in_batches(scorer) for name, scorer in learned.items()}
    table.update({
        "heuristic": lambda ps: heuristic.score(candidates(ps)),
        "detector_score": lambda ps: np.array([p.detection.score for p in ps]),
        "face_size": lambda ps: np.array([p.detection.size for p in ps]),
        "laplacian_sharpness": lambda ps: np.array([laplacian_variance(p.aligned) for p in ps]),
        "random": lambda ps: np.random.default_rng(seed).random(len(ps)),
    })
    return table


def per_face_ms(scorer, faces: list[np.ndarray], repeats: int = 20) -> float:
    """Scorer latency per face in a batch of 32, one thread."""
    from faceedge.edge.select import Candidate

    batch = [Candidate(f, None, (0, 0)) for f in (faces * 32)[:32]]
    scorer.score(batch)
    started = time.perf_counter()
    for _ in range(repeats):
        scorer.score(batch)
    return (time.perf_counter() - started) / repeats / len(batch) * 1000.0


@dataclasses.dataclass
class Resamples:
    """Identity bootstrap: how often each probe and each track is drawn in each resample."""

    probe_weights: object  # callable(b) -> (N,) weights
    track_weights: object
    count: int


def identity_bootstrap(probe_ids, track_ids, count: int, seed: int) -> Resamples:
    names, counts = identity_resamples(list(probe_ids) + list(track_ids), count, seed)
    probe_index = np.searchsorted(names, np.asarray(probe_ids, dtype=object))
    track_index = np.searchsorted(names, np.asarray(track_ids, dtype=object))
    return Resamples(lambda b: counts[b, probe_index], lambda b: counts[b, track_index], count)


def edc_figures(scores: np.ndarray, failures: np.ndarray, resamples: Resamples | None) -> dict:
    """Partial EDC areas with their intervals (None without `resamples`), and the curve."""
    order = np.argsort(scores, kind="stable")
    fractions, rates, _ = error_versus_discard(scores, failures, order=order)
    names = {upto: f"area_{round(upto * 100)}" for upto in PARTIAL_AREAS}
    drawn = {upto: [] for upto in PARTIAL_AREAS}
    for b in range(resamples.count if resamples else 0):
        f, r, _ = error_versus_discard(scores, failures, weights=resamples.probe_weights(b), order=order)
        for upto in PARTIAL_AREAS:
            drawn[upto].append(partial_area(f, r, upto))
    figures = {names[u]: {"value": partial_area(fractions, rates, u),
                          "interval": interval(drawn[u]) if drawn[u] else None}
               for u in PARTIAL_AREAS}
    figures["curve"] = [[round(float(f), 4), float(r)] for f, r in zip(fractions, rates)]
    return figures


def track_figure(hits: np.ndarray, resamples: Resamples) -> dict:
    drawn = []
    for b in range(resamples.count):
        weights = resamples.track_weights(b)
        if weights.sum():
            drawn.append(float((weights * hits).sum() / weights.sum()))
    return {"value": float(hits.mean()), "interval": interval(np.array(drawn))}


def paired_difference(scores_a: np.ndarray, scores_b: np.ndarray, failures: np.ndarray, track_hits_a: np.ndarray,
                      track_hits_b: np.ndarray, resamples: Resamples) -> dict:
    """B minus A on the same probes and tracks, each resample drawing the same identities for both: the partial
    EDC areas (negative: B discards failures sooner) and best-of-track rank-1 (positive: B picks better)."""
    orders = [np.argsort(scores, kind="stable") for scores in (scores_a, scores_b)]

    def areas(weights):
        curves = [error_versus_discard(scores, failures, weights=weights, order=order)[:2]
                  for scores, order in zip((scores_a, scores_b), orders)]
        return {u: partial_area(*curves[1], u) - partial_area(*curves[0], u) for u in PARTIAL_AREAS}

    def rank1(weights):
        return float((weights * (track_hits_b.astype(float) - track_hits_a)).sum() / weights.sum())

    observed = areas(None)
    drawn = [areas(resamples.probe_weights(b)) for b in range(resamples.count)]
    track_draws = [rank1(w) for w in map(resamples.track_weights, range(resamples.count)) if w.sum()]
    result = {f"area_{round(u * 100)}": {"value": observed[u], "interval": interval(np.array([d[u] for d in drawn]))}
              for u in PARTIAL_AREAS}
    result["best_of_track_rank1"] = {"value": rank1(np.ones(len(track_hits_a))), "interval": interval(np.array(track_draws))}
    return result


def run(args) -> int:
    from faceedge.edge.recognizers import describe
    from faceedge.pipelines.dataset import FrontalFilter, build_dataset
    from faceedge.pipelines.selection.samples import (BlockMaker, ProbeBlock, label_blocks, make_blocks,
                                             make_gallery, probe_records)

    identities, _ = split_of(args, args.split)
    recognizer, threshold = open_recognizer(args)
    print(f"scoring the {args.split} split ({'held out from training' if args.split == 'test' else 'every folder'}):"
          f" {len(identities)} identities, judged by {recognizer.name} (threshold {threshold:g})", flush=True)
    block_maker = BlockMaker(args.recognizer, args.min_face)
    records = build_dataset(args.data, block_maker.maker.detector, frontal=FrontalFilter(args.max_yaw, args.max_pitch),
                            identities=identities)
    gallery = make_gallery(records, recognizer)
    sources = probe_records(records)
    # Seeds differ from training's (args.seed) so evaluation never replays training views.
    edc_blocks = make_blocks(sources, range(len(sources)), args.recognizer, args.probes_per_photo, args.seed + 1000,
                             args.workers, min_face=args.min_face, desc="EDC probes")
    edc = label_blocks(edc_blocks, gallery, recognizer, threshold, desc="labelling EDC probes")
    track_blocks = []
    for index, record in enumerate(tqdm(sources, desc="tracks", unit="photo")):
        image = cv2_read(record.path)
        for t in range(args.tracks_per_photo):
            views = _views(image, record, block_maker.maker, args.track_length, [args.seed + 2000, index, t])
            if views:
                track_blocks.append(ProbeBlock(len(track_blocks), views, np.arange(len(views)),
                                               recognizer.embed(np.stack([v.aligned for v in views]))))
    track = label_blocks(track_blocks, gallery, recognizer, threshold, desc="labelling tracks")
    ends = np.cumsum([len(b.probes) for b in track_blocks])
    tracks = [np.arange(end - len(b.probes), end) for b, end in zip(track_blocks, ends)]
    top, impostors = impostor_top(edc.embeddings, [p.identity for p in edc.probes], gallery.embeddings,
                                  gallery.identities, recognizer.similarity, TARGET_FMR)
    thresholds = {"recognizer": float(threshold), f"fmr_{TARGET_FMR:g}": fmr_threshold(top, TARGET_FMR, impostors)}
    failures = {name: edc.genuine_similarity < t for name, t in thresholds.items()}
    resamples = identity_bootstrap([p.identity for p in edc.probes], [track.probes[t[0]].identity for t in tracks],
                                   args.bootstrap, args.seed)
    selection = selection_scorer(args.model)
    compared = compared_models(args.compare)
    results, hits = {}, {}
    for name, score in tqdm(scorer_table(selection, args.seed, compared).items(), desc="scorers and their intervals",
                            unit="scorer"):
        edc_scores, track_scores = score(edc.probes), score(track.probes)
        hits[name] = (edc_scores, track_hits(track_scores, track.top1_correct, tracks))
        results[name] = {
            "edc": {t: edc_figures(edc_scores, failed, resamples) for t, failed in failures.items()},
            "best_of_track_rank1": track_figure(hits[name][1], resamples)}
    report = {
        "data": str(args.data), "split": args.split, "identities": identities,
        "split_rule": {"holdout_fraction": args.holdout_fraction, "salt": args.split_salt},
        "recognizer": describe(recognizer), "thresholds": thresholds, "impostor_comparisons": impostors,
        "min_face": args.min_face, "interval": {"level": INTERVAL, "bootstrap_over": "identities",
                                                "resamples": args.bootstrap},
        "edc_probes": len(edc.probes), "edc_label_balance": edc.stats,
        "fnmr_no_discard": {t: float(failed.mean()) for t, failed in failures.items()},
        "tracks": len(tracks), "track_views": len(track.probes),
        "track_any_view_correct": float(np.mean([track.top1_correct[t].any() for t in tracks])),
        "oracle": {t: {k: v for k, v in edc_figures(-failed.astype(float), failed, None).items() if k != "curve"}
                   for t, failed in failures.items()},
        "selection_trained_for": selection.trained_for,
        "selection_ms_per_face": per_face_ms(selection, [p.aligned for p in edc.probes]),
        "scorers": results,
        "compared": {name: {"model": pair.partition("=")[2], "trained_for": compared[name].trained_for,
                            "minus_selection": {t: paired_difference(hits["selection"][0], hits[name][0], failed,
                                                                     hits["selection"][1], hits[name][1], resamples)
                                                for t, failed in failures.items()}}
                     for name, pair in zip(compared, args.compare)},
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(format_table(report))
    if args.plot is not None:
        plot_edc(report, args.plot)
    return 0


def cv2_read(path):
    import cv2

    return cv2.imread(str(path), cv2.IMREAD_COLOR)


def _views(image, record, maker, count: int, seed: list[int]):
    """One track: `count` view attempts of one photo (`image`, read from `record.path`) from their own seeded stream.

    A track is one person at one distance: its face size is drawn once (over the maker's whole
    range) and its views vary by +-25% around it, so choosing among them is about blur, pose,
    noise and occlusion more than about size.
    """
    rng = np.random.default_rng(seed)
    base = float(np.exp(rng.uniform(*np.log(maker.face_size_range))))
    track_maker = dataclasses.replace(maker, face_size_range=(base / TRACK_SIZE_SPREAD, base * TRACK_SIZE_SPREAD))
    return [p for p in (track_maker(image, record, rng) for _ in range(count)) if p is not None]


def _figure(row: dict, threshold: str, area: str) -> dict:
    return row["edc"][threshold][area]


def format_table(report: dict) -> str:
    threshold_names = list(report["thresholds"])
    head_t, head_a = HEADLINE
    hand = [_figure(report["scorers"][n], head_t, head_a)["value"] for n in HAND_MADE if n in report["scorers"]]
    best_hand = min(hand) if hand else float("nan")
    thresholds = ", ".join(f"{name} {value:.4f}" for name, value in report["thresholds"].items())
    lines = [f"split {report['split']} ({len(report['identities'])} identities): {', '.join(report['identities'])}",
             f"recognizer {report['recognizer']['name']}; decision thresholds {thresholds} "
             f"(FMR from {report['impostor_comparisons']} impostor comparisons); faces below "
             f"{report['min_face']:g} px left out; {report['edc_probes']} EDC probes, FNMR at no discard "
             + ", ".join(f"{k} {v:.4f}" for k, v in report["fnmr_no_discard"].items()),
             f"tracks {report['tracks']} ({report['track_views']} views), any view correct "
             f"{report['track_any_view_correct']:.4f}; 95 % intervals: bootstrap over identities "
             f"({report['interval']['resamples']} resamples); x best hand-made: {head_a} at {head_t}",
             "oracle: " + "; ".join(f"{t} " + ", ".join(f"{a} {v['value']:.5f}" for a, v in row.items())
                                   for t, row in report["oracle"].items())]
    areas = [f"area_{round(u * 100)}" for u in PARTIAL_AREAS]
    columns = [(t, a) for t in threshold_names for a in areas]
    lines.append(f"{'scorer':<20}" + "".join(f"{t + ' ' + a:>30}" for t, a in columns)
                 + f"{'x best hand-made':>18}{'best-of-track rank-1':>28}")
    for name, row in sorted(report["scorers"].items(), key=lambda item: _figure(item[1], head_t, head_a)["value"]):
        cells = "".join(f"{_cell(_figure(row, t, a)):>30}" for t, a in columns)
        lines.append(f"{name:<20}{cells}{_figure(row, head_t, head_a)['value'] / best_hand:>18.3f}"
                     f"{_cell(row['best_of_track_rank1'], 4):>28}")
    for name, entry in report.get("compared", {}).items():
        differences = "; ".join(f"{t} {a} {_cell(d[a])}" for t, d in entry["minus_selection"].items() for a in areas)
        rank1 = _cell(entry["minus_selection"][head_t]["best_of_track_rank1"], 4)
        lines.append(f"{name} minus selection (paired): {differences}; best-of-track rank-1 {rank1}")
    return "\n".join(lines)


def _cell(figure: dict, digits: int = 5) -> str:
    low, high = figure["interval"] if figure["interval"] else (float("nan"), float("nan"))
    return f"{figure['value']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def plot_edc(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(report["thresholds"])
    fig, axes = plt.subplots(1, len(names), figsize=(6 * len(names), 4), squeeze=False)
    for ax, threshold in zip(axes[0], names):
        for name, row in report["scorers"].items():
            curve = np.array(row["edc"][threshold]["curve"])
            ax.plot(curve[:, 0], curve[:, 1], label=f"{name} ({row['edc'][threshold]['area_30']['value']:.4f})")
        ax.set_xlabel("fraction discarded (lowest scores first)")
        ax.set_ylabel(f"FNMR at {threshold} threshold {report['thresholds'][threshold]:.4f}")
        ax.set_title(f"Error versus Discard, {report['split']} split")
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
