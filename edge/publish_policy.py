"""When a track's faces are published, decided per track from its `BestFace`.

- `best`: the track ended (or the pipeline stopped); never for a best below `select.min_score`.
- `update` every `publish.update_interval_s` (off by default) since the track's last message:
  its best so far.
- With `publish.early_score` set (off by default), for access control that needs a face at once:
  `early` for the first face of a confirmed track that reaches it (and `select.min_score`, and does
  not touch the frame border); then `update` as soon as a face scores at least
  `publish.early_update_margin` above the last one sent. With `publish.early_within_s` also set, a
  track whose faces have not reached `early_score` that long after its first sighting sends its best
  so far as `early` anyway (still at least `select.min_score`, still not a border face), so no
  confirmed track waits longer than that for its first face. No face is sent twice for a track: the
  periodic update and the final `best` are skipped while the best is the face already sent.
  Messages per track are then bounded: one `early`, at most (1 - early_score) / margin margin
  updates, the periodic updates, one `best`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .select import BestFace


@dataclass(frozen=True)
class PublishPolicy:
    min_score: float = 0.0
    update_interval_s: float | None = None
    early_score: float | None = None
    early_update_margin: float = 0.1
    early_within_s: float | None = None

    @classmethod
    def from_config(cls, config) -> "PublishPolicy":
        cfg = config.publish
        return cls(config.select.min_score, cfg.update_interval_s, cfg.early_score, cfg.early_update_margin,
                   cfg.early_within_s)

    def live_event(self, best: BestFace, wall: float) -> str | None:
        """The event to publish now for a live confirmed track, or None."""
        if best.candidate is None or best.score < self.min_score:
            return None
        if self.early_score is not None:
            if best.candidate is best.sent:
                return None
            if not best.early_sent:
                overdue = self.early_within_s is not None and wall - best.first_wall >= self.early_within_s
                if not best.rejected and (best.score >= self.early_score or overdue):
                    return "early"
            elif best.score >= best.sent_score + self.early_update_margin:
                return "update"
        if self.update_interval_s:
            since = best.first_wall if best.last_published_wall is None else best.last_published_wall
            if wall - since >= self.update_interval_s:
                return "update"
        return None

    def end_event(self, best: BestFace) -> str | None:
        """The event to publish when the track ends (its best reached `min_score`), or None."""
        if self.early_score is not None and best.candidate is best.sent:
            return None
        return "best"
