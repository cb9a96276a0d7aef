"""A durable local copy of every published face, so faces sent while nobody listened can be recovered.

Layout: `<dir>/<segment>/` where each segment is exactly what `faceedge subscribe --out` writes
(`<stream>_<track>_<event>_<n>.jpg`, `_context.jpg`, `_original.jpg`, and `faces.jsonl` whose
`files` name them), so the same tools read both. Segments are numbered in order; a segment is
closed at `segment_bytes`, and whole oldest segments are deleted while the spool is over
`max_bytes`. Files go through the page cache (no fsync per face): a crash of the process loses
nothing, a power cut may lose the last seconds. Used from the publisher thread only.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

from .errors import ConfigError
from .subscribe import FaceSaver

log = logging.getLogger("faceedge.spool")

SEGMENT_DIGITS = 8


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class Spool:
    def __init__(self, directory: str | Path, max_bytes: int, segment_bytes: int):
        self.dir = Path(directory)
        self.max_bytes, self.segment_bytes = max_bytes, segment_bytes
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            probe = self.dir / ".writable"
            probe.touch()
            probe.unlink()
        except OSError as exc:
            raise ConfigError(f"publish.spool.dir {self.dir}: not writable: {exc}") from exc
        # A restart continues after the newest segment and keeps counting the old ones against the cap.
        self.segments = {path: _size(path) for path in segments(self.dir)}
        self._open_segment()
        self._failing = False

    @classmethod
    def from_config(cls, cfg) -> "Spool | None":
        return cls(cfg.dir, cfg.max_bytes, cfg.segment_bytes) if cfg.enabled else None

    @property
    def total_bytes(self) -> int:
        return sum(self.segments.values())

    def _open_segment(self) -> None:
        number = int(max(self.segments, default=self.dir / "0").name) + 1
        path = self.dir / f"{number:0{SEGMENT_DIGITS}d}"
        self.saver = FaceSaver(path)
        self.segments[path] = 0
        self.current = path

    def append(self, parts: list[bytes]) -> bool:
        """Store one encoded face message; never raises for disk problems (publishing must go on)."""
        try:
            meta = self.saver.save(parts)
            if meta is None:
                return False
            # JPEG parts plus the JSONL line (metadata + file names): close to the bytes on disk.
            self.segments[self.current] += sum(len(p) for p in parts[2:]) + len(parts[1]) + 200
            if self.segments[self.current] >= self.segment_bytes:
                self.segments[self.current] = _size(self.current)
                self._open_segment()
            self._enforce_cap()
            if self._failing:
                log.info("spool %s: writing again", self.dir)
                self._failing = False
            return True
        except OSError as exc:
            if not self._failing:  # one line per outage, not one per face
                log.error("spool %s: cannot store faces: %s", self.dir, exc)
                self._failing = True
            return False

    def _enforce_cap(self) -> None:
        while self.total_bytes > self.max_bytes and len(self.segments) > 1:
            oldest = min(self.segments)
            shutil.rmtree(oldest, ignore_errors=True)
            del self.segments[oldest]
            log.info("spool %s: deleted oldest segment %s to stay under %d bytes", self.dir, oldest.name,
                     self.max_bytes)


def segments(directory: str | Path) -> list[Path]:
    """The spool's segment folders, oldest first."""
    return sorted(p for p in Path(directory).iterdir() if p.is_dir() and p.name.isdigit())


def read_spool(directory: str | Path):
    """Yield (metadata, {part: Path}) for every stored face, oldest first."""
    for segment in segments(directory):
        index = segment / "faces.jsonl"
        if not index.is_file():
            continue
        with open(index) as fh:
            for line in fh:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:  # a line cut short by a power cut
                    continue
                files = record.pop("files")
                yield record, {part: segment / name for part, name in files.items()}
