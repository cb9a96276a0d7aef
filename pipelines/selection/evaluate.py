"""`faceedge eval selection --data DIR --json OUT [--plot OUT.png]`: scorers compared side by side.

On the held-out identities of --data (the same hash split as training), every scorer rates the
same probes (degraded, re-detected, re-aligned views of real photos; probes.py). Like the runtime,
the probes leave out faces whose detected box is below `detect.min_face` (the pipeline never scores
them), so the numbers describe the faces the scorer actually ranks:

- Error-versus-Discard: SFace's false non-match rate at the fixed threshold (a probe fails when
  its best similarity to the other photos of its identity is below it) among the probes kept
  after discarding the lowest-scored fraction; `edc_auc` is the area under that curve for
  discard fractions 0..0.3 (lower is better).
- Best of track: each track is a sequence of views of one photo; the scorer picks one face and
  `best_of_track_rank1` is how often SFace's top-1 identity for it is right.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from edge.config import DetectConfig, InferenceConfig
from pipelines.selection.cli import add_split_arguments, split_of

# Scorers are compared on one CPU thread, the same backend for each.
ONE_CPU_THREAD = InferenceConfig(backend="onnxruntime-cpu", threads=1)

log = logging.getLogger(__name__)
MAX_DISCARD = 0.3
DISCARD_STEPS = 31
TRACK_SIZE_SPREAD = 1.25  # face size within one track varies by this factor either way
# The hand-made scorers the learned ones are measured against ("random" is a floor, not a contender).
HAND_MADE = ("heuristic", "detector_score", "face_size", "laplacian_sharpness")


def add_arguments(parser) -> None:
    parser.add_argument("--data", required=True, type=Path, help="folder of identity subfolders of photos")
    parser.add_argument("--json", required=True, type=Path, help="where to write the results")
    parser.add_argument("--plot", type=Path, default=None, help="optional PNG of the Error-versus-Discard curves")
    parser.add_argument("--model", default="weights:selection.onnx", help="selection model to evaluate")
    parser.add_argument("--split", choices=["test", "train"], default="test",
                        help="which side of the identity split to evaluate on (test = held out from training)")
    add_split_arguments(parser)
    parser.add_argument("--probes-per-photo", type=int, default=40)
    parser.add_argument("--tracks-per-photo", type=int, default=6)
    parser.add_argument("--track-length", type=int, default=8)
    parser.add_argument("--min-face", type=float, default=float(DetectConfig().min_face),
                        help="leave out faces whose detected box is below this many pixels (default: the config's "
                             "detect.min_face, the floor the pipeline applies; a stream's own min_face may differ)")


def error_versus_discard(scores: np.ndarray, failures: np.ndarray, max_discard: float = MAX_DISCARD,
                         steps: int = DISCARD_STEPS) -> tuple[np.ndarray, np.ndarray, float]:
    """(discard fractions, failure rate of the kept probes, area under the curve up to max_discard).

    The lowest-scored probes are discarded first; ties are broken by probe order (stable sort).
    """
    order = np.argsort(scores, kind="stable")
    ranked = np.asarray(failures, float)[order]
    fractions = np.linspace(0.0, max_discard, steps)
    rates = np.array([ranked[int(round(f * len(ranked))):].mean() for f in fractions])
    return fractions, rates, float(np.trapezoid(rates, fractions))


def best_of_track(scores: np.ndarray, correct: np.ndarray, tracks: list[np.ndarray]) -> float:
    """Fraction of tracks whose highest-scored view is identified correctly."""
    return float(np.mean([correct[t[np.argmax(scores[t])]] for t in tracks]))


def selection_scorer(model: str):
    from edge.face_input import SCORER_INPUTS
    from edge.select import LearnedScorer

    return LearnedScorer("selection", model, SCORER_INPUTS["selection"], ONE_CPU_THREAD)


def scorer_table(selection, seed: int) -> dict:
    """name -> callable(probes) -> scores, for every scorer compared (`selection`: the model under test)."""
    from edge.face_input import SCORER_INPUTS
    from edge.model_files import WEIGHTS_DIR
    from edge.select import Candidate, HeuristicScorer, LearnedScorer, laplacian_variance

    def candidates(ps):
        return [Candidate(p.aligned, p.detection, p.frame_shape) for p in ps]

    learned = {"selection": selection}
    if (WEIGHTS_DIR / "quality.onnx").is_file():
        learned["quality"] = LearnedScorer("quality", "weights:quality.onnx", SCORER_INPUTS["quality"], ONE_CPU_THREAD)
    heuristic = HeuristicScorer()
    table = {name: (lambda ps, s=scorer: s.score(candidates(ps))) for name, scorer in learned.items()}
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
    from edge.select import Candidate

    batch = [Candidate(f, None, (0, 0)) for f in (faces * 32)[:32]]
    scorer.score(batch)
    started = time.perf_counter()
    for _ in range(repeats):
        scorer.score(batch)
    return (time.perf_counter() - started) / repeats / len(batch) * 1000.0


def run(args) -> int:
    import cv2

    from edge.detect import YuNetDetector
    from edge.recognize import SFaceRecognizer
    from pipelines.dataset import FrontalFilter, build_dataset
    from pipelines.selection.probes import ProbeMaker
    from pipelines.selection.train import label_probes, make_probes, probe_records

    identities, _ = split_of(args, args.split)
    detector, recognizer = YuNetDetector(threads=1), SFaceRecognizer(threads=1)
    records = build_dataset(args.data, detector, frontal=FrontalFilter(args.max_yaw, args.max_pitch),
                            identities=identities)
    sources = probe_records(records)
    maker = ProbeMaker(detector, min_face=args.min_face)
    # Seeds differ from training's (args.seed) so evaluation never replays training views.
    edc = label_probes(make_probes(sources, maker, args.probes_per_photo, args.seed + 1000, desc="EDC probes"),
                       records, recognizer, args.threshold)
    track_probes, tracks = [], []
    for index, record in enumerate(sources):
        image = cv2.imread(str(record.path), cv2.IMREAD_COLOR)
        for t in range(args.tracks_per_photo):
            views = _views(image, record, maker, args.track_length, [args.seed + 2000, index, t])
            if views:
                tracks.append(np.arange(len(track_probes), len(track_probes) + len(views)))
                track_probes.extend(views)
    track = label_probes(track_probes, records, recognizer, args.threshold)
    failures = edc.genuine_similarity < args.threshold
    results = {}
    selection = selection_scorer(args.model)
    for name, score in scorer_table(selection, args.seed).items():
        fractions, rates, auc = error_versus_discard(score(edc.probes), failures)
        results[name] = {"edc_auc": auc, "best_of_track_rank1": best_of_track(score(track.probes), track.top1_correct,
                                                                                 tracks),
                         "edc": [[round(float(f), 4), float(r)] for f, r in zip(fractions, rates)]}
    _, _, oracle_auc = error_versus_discard(-failures.astype(float), failures)
    report = {
        "data": str(args.data), "split": args.split, "identities": identities,
        "split_rule": {"holdout_fraction": args.holdout_fraction, "salt": args.split_salt},
        "threshold": args.threshold, "min_face": maker.min_face,
        "edc_probes": len(edc.probes), "edc_label_balance": edc.stats,
        "fnmr_no_discard": float(failures.mean()), "tracks": len(tracks), "track_views": len(track_probes),
        "track_any_view_correct": float(np.mean([track.top1_correct[t].any() for t in tracks])),
        "oracle_edc_auc": oracle_auc, "selection_ms_per_face": per_face_ms(selection, [p.aligned for p in edc.probes]),
        "scorers": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(format_table(report))
    if args.plot is not None:
        plot_edc(report, args.plot)
    return 0


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


def format_table(report: dict) -> str:
    hand = [report["scorers"][n]["edc_auc"] for n in HAND_MADE if n in report["scorers"]]
    best_hand = min(hand) if hand else float("nan")
    summary = (f"faces below {report.get('min_face', 0):g} px (--min-face) left out; "
               f"EDC probes {report['edc_probes']}, FNMR at no discard {report['fnmr_no_discard']:.4f}, "
               f"oracle EDC area {report['oracle_edc_auc']:.5f} ({report['oracle_edc_auc'] / best_hand:.3f}x the "
               f"best hand-made); tracks {report['tracks']} ({report['track_views']} views), "
               f"any view correct {report['track_any_view_correct']:.4f}")
    rows = [f"identities ({report['split']}): {', '.join(report['identities'])}", summary,
            f"{'scorer':<22}{'EDC area (0-30%)':>18}{'x best hand-made':>18}{'best-of-track rank-1':>22}"]
    for name, row in sorted(report["scorers"].items(), key=lambda item: item[1]["edc_auc"]):
        rows.append(f"{name:<22}{row['edc_auc']:>18.5f}{row['edc_auc'] / best_hand:>18.3f}"
                    f"{row['best_of_track_rank1']:>22.4f}")
    return "\n".join(rows)


def plot_edc(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, row in report["scorers"].items():
        curve = np.array(row["edc"])
        ax.plot(curve[:, 0], curve[:, 1], label=f"{name} ({row['edc_auc']:.4f})")
    ax.set_xlabel("fraction discarded (lowest scores first)")
    ax.set_ylabel(f"FNMR at cosine {report['threshold']}")
    ax.set_title("Error versus Discard, held-out identities")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
