"""The per-person contact sheet: reference face, the oracle's face and faceedge's best published match."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

TILE = 112
LABEL = 18
NAME_W = 260


def _tile(face: np.ndarray | None, label: str) -> np.ndarray:
    tile = np.full((TILE + LABEL, TILE, 3), 255, np.uint8)
    if face is not None:
        tile[:TILE] = cv2.resize(face, (TILE, TILE), interpolation=cv2.INTER_AREA)
    else:
        cv2.putText(tile, "none", (30, TILE // 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (120, 120, 120), 1, cv2.LINE_AA)
    cv2.putText(tile, label, (3, TILE + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    return tile


def write_sheet(path: Path, clips, published: dict) -> None:
    """`published`: stream -> faceedge's attributed messages (`judge.Published` with its face)."""
    rows = []
    for clip in clips:
        for person in clip.people:
            ref = clip.references[person.name]
            oracle = clip.oracle_face.get(person.name)
            mine = [m for m in published[clip.stream] if m.person == person.name and m.face is not None]
            best = max(mine, key=lambda m: m.similarity, default=None)
            name = np.full((TILE + LABEL, NAME_W, 3), 255, np.uint8)
            for i, text in enumerate([clip.name[:34], person.name[:34],
                                      f"eff {best.similarity / person.oracle_similarity:.2f}"
                                      if best is not None and person.oracle_similarity else "eff -"]):
                cv2.putText(name, text, (4, 20 + 20 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)
            rows.append(np.hstack([
                name, _tile(ref.face, "reference"),
                _tile(clip.scan.aligned[oracle] if oracle is not None else None,
                      f"oracle {person.oracle_similarity:.3f}" if person.oracle_similarity is not None else "oracle -"),
                _tile(best.face if best is not None else None,
                      f"faceedge {best.similarity:.3f}" if best is not None else "faceedge -")]))
    sheet = np.vstack(rows) if rows else np.full((TILE, NAME_W + 3 * TILE, 3), 255, np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet)
