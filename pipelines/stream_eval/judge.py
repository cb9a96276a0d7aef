"""Metrics of what a configuration published, against the people truly in the clip.

Inputs are plain: the people (when each was first visible, the oracle's best similarity), the
published faces already attributed to a person (or to nobody) with their similarity to that
person's gallery, and, where boxes are known, each track's offers as a sequence of identities.

- recovered: some published face of the person reaches the recognizer's threshold;
- efficiency: the person's best published similarity (0 when nothing was published, negative
  similarities count as 0) over the oracle's; people the oracle never saw are left out of it;
- identity switches: changes of identity along a track's attributed offers (unattributed
  offers skipped); a track is pure when all its attributed offers are one person;
- messages per person: messages attributed to someone over the number of people;
- latency: a person's first attributed message's stream time minus their first visible frame's;
- choice efficiency: the person's best published similarity over the best among the faces the
  pipeline offered to their tracks (what the scorer chose, apart from what tracking offered);
- SR: for each message that went through super-resolution, the restored face's similarity to
  the person minus the original face's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PersonTruth:
    name: str
    first_seen_s: float | None
    oracle_similarity: float | None


@dataclass
class Published:
    person: str | None
    similarity: float  # to that person's reference; ignored when person is None
    published_s: float | None = None  # stream time when the message arrived
    sr: tuple[float, float] | None = None  # (restored, original) similarity when SR was applied
    face: np.ndarray | None = None  # the published aligned face, for the sheet


def wilson(successes: int, total: int, z: float = 1.96) -> list[float] | None:
    if total == 0:
        return None
    p = successes / total
    centre = (p + z * z / (2 * total)) / (1 + z * z / total)
    half = z * np.sqrt(p * (1 - p) / total + z * z / (4 * total * total)) / (1 + z * z / total)
    return [round(float(centre - half), 4), round(float(centre + half), 4)]


def switches_and_purity(tracks: list[list[str | None]]) -> tuple[int, int, int]:
    """(identity switches, tracks with an attributed offer, impure tracks)."""
    switches = judged = impure = 0
    for offers in tracks:
        named = [who for who in offers if who is not None]
        if not named:
            continue
        judged += 1
        switches += sum(1 for a, b in zip(named, named[1:]) if a != b)
        impure += len(set(named)) > 1
    return switches, judged, impure


def sr_summary(published: list[Published]) -> dict:
    pairs = [m.sr for m in published if m.sr is not None and m.person is not None]
    gains = np.array([restored - original for restored, original in pairs])
    return {"touched": len(pairs), "lowered": int((gains < 0).sum()),
            "mean_gain": round(float(gains.mean()), 4) if len(gains) else None,
            "fraction_lowered": round(float((gains < 0).mean()), 4) if len(gains) else None}


def judge(people: list[PersonTruth], published: list[Published], threshold: float,
          tracks: list[list[str | None]] | None = None, offered: dict[str, float] | None = None) -> dict:
    """`offered`: each person's best similarity among the faces offered to their tracks (None: not known)."""
    rows = []
    for person in people:
        mine = [m for m in published if m.person == person.name]
        best = max((m.similarity for m in mine), default=None)
        times = [m.published_s for m in mine if m.published_s is not None]
        efficiency = None
        if person.oracle_similarity is not None and person.oracle_similarity > 0:
            efficiency = max(0.0, best if best is not None else 0.0) / person.oracle_similarity
        latency = (min(times) - person.first_seen_s) if times and person.first_seen_s is not None else None
        ceiling = offered.get(person.name) if offered is not None else None
        choice = max(0.0, best) / ceiling if best is not None and ceiling is not None and ceiling > 0 else None
        rows.append({"person": person.name, "messages": len(mine), "best_similarity": _round(best),
                     "oracle_similarity": _round(person.oracle_similarity),
                     "recovered": best is not None and best >= threshold, "efficiency": _round(efficiency),
                     "offered_similarity": _round(ceiling), "choice_efficiency": _round(choice),
                     "first_seen_s": _round(person.first_seen_s), "latency_s": _round(latency)})
    recovered = sum(row["recovered"] for row in rows)
    efficiencies = [row["efficiency"] for row in rows if row["efficiency"] is not None]
    choices = [row["choice_efficiency"] for row in rows if row["choice_efficiency"] is not None]
    offered_eff = [row["offered_similarity"] / row["oracle_similarity"] for row in rows
                   if row["offered_similarity"] is not None and row["oracle_similarity"]]
    latencies = [row["latency_s"] for row in rows if row["latency_s"] is not None]
    attributed = sum(row["messages"] for row in rows)
    result = {
        "people": len(rows), "people_recovered": recovered,
        "recovered_fraction": _round(recovered / len(rows) if rows else None),
        "recovered_interval95": wilson(recovered, len(rows)),
        "oracle_recoverable": sum(1 for p in people if p.oracle_similarity is not None
                                  and p.oracle_similarity >= threshold),
        "median_efficiency": _round(float(np.median(efficiencies)) if efficiencies else None),
        "efficiency_people": len(efficiencies),
        "median_choice_efficiency": _round(float(np.median(choices)) if choices else None),
        "median_offered_efficiency": _round(float(np.median(offered_eff)) if offered_eff else None),
        "messages": len(published), "messages_unattributed": len(published) - attributed,
        "messages_per_person": _round(attributed / len(rows) if rows else None),
        "median_latency_s": _round(float(np.median(latencies)) if latencies else None),
        "identity_switches": None, "tracks_judged": None, "impure_tracks": None, "track_purity": None,
        "sr": sr_summary(published), "persons": rows,
    }
    if tracks is not None:
        switches, judged, impure = switches_and_purity(tracks)
        result.update(identity_switches=switches, tracks_judged=judged, impure_tracks=impure,
                      track_purity=_round(1 - impure / judged if judged else None))
    return result


def _round(value, digits: int = 4):
    return None if value is None else round(float(value), digits)
