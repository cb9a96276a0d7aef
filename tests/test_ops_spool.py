"""The face spool: what goes in comes back out, rotation keeps the size cap, files stay valid."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from faceedge.edge.config import load_config
from faceedge.edge.errors import ConfigError
from faceedge.edge.wire import encode_message
from faceedge.edge.spool import Spool, read_spool, segments


def message(n: int, rng: np.random.Generator, with_original: bool = False) -> tuple[dict, list[bytes], np.ndarray]:
    # Coarse noise, upscaled: JPEGs of a few KB that still compress faithfully.
    face = cv2.resize(rng.integers(0, 255, (28, 28, 3), dtype=np.uint8), (112, 112), interpolation=cv2.INTER_CUBIC)
    meta = {"schema": "faceedge.face/2", "event": "best" if n % 3 else "update", "stream": f"cam{n % 2}",
            "track_id": n, "score": float(n)}
    return meta, encode_message(meta, face, face[:64], face if with_original else None, 90), face


def dir_size(path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def test_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    spool = Spool(tmp_path / "spool", max_bytes=10_000_000, segment_bytes=1_000_000)
    sent = [message(n, rng, with_original=n == 4) for n in range(10)]
    for _, parts, _ in sent:
        assert spool.append(parts)
    stored = list(read_spool(tmp_path / "spool"))
    assert [meta for meta, _ in stored] == [meta for meta, _, _ in sent]
    for (meta, files), (_, parts, face) in zip(stored, sent):
        assert files["face"].read_bytes() == parts[2]
        assert files["context"].read_bytes() == parts[3]
        assert ("original" in files) == (meta["track_id"] == 4)
        decoded = cv2.imread(str(files["face"]))
        assert decoded.shape == face.shape
        assert np.abs(decoded.astype(int) - face).mean() < 15  # unrelated images differ by ~80  # the JPEG of the same pixels


def test_rotation_keeps_the_cap_and_newest_faces(tmp_path):
    rng = np.random.default_rng(1)
    cap, segment = 200_000, 50_000
    spool = Spool(tmp_path, max_bytes=cap, segment_bytes=segment)
    for n in range(120):
        spool.append(message(n, rng)[1])
        assert dir_size(tmp_path) <= cap + segment // 10, f"{dir_size(tmp_path)} bytes after face {n}"
    assert len(segments(tmp_path)) > 1
    stored = list(read_spool(tmp_path))
    ids = [meta["track_id"] for meta, _ in stored]
    assert ids == list(range(ids[0], 120)), "the oldest faces went first, the rest are complete and in order"
    assert ids[0] > 0
    for segment_dir in segments(tmp_path):  # every JSONL line parses and names files that exist and decode
        index = segment_dir / "faces.jsonl"  # absent only in a segment just opened
        for line in (index.read_text().splitlines() if index.exists() else []):
            record = json.loads(line)
            for name in record["files"].values():
                assert cv2.imread(str(segment_dir / name)) is not None

    # A restart continues numbering after the newest segment and counts the old ones against the cap.
    reopened = Spool(tmp_path, max_bytes=cap, segment_bytes=segment)
    for n in range(120, 180):
        reopened.append(message(n, rng)[1])
    assert dir_size(tmp_path) <= cap + segment // 10
    assert [meta["track_id"] for meta, _ in read_spool(tmp_path)][-1] == 179


def test_config_checks(tmp_path):
    with pytest.raises(ConfigError, match="segment_bytes"):
        load_config(None, ["publish.spool.max_bytes=100000", "publish.spool.segment_bytes=60000"])
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match="publish.spool.dir"):
        Spool(blocker / "spool", max_bytes=100_000, segment_bytes=10_000)


def test_disk_errors_do_not_raise(tmp_path):
    rng = np.random.default_rng(2)
    spool = Spool(tmp_path / "s", max_bytes=100_000, segment_bytes=10_000)
    import shutil

    shutil.rmtree(tmp_path / "s")
    (tmp_path / "s").write_text("now a file")  # the spool's folder is gone: writes fail
    assert spool.append(message(0, rng)[1]) is False
