"""The soak report's outage arithmetic, and a tiny real soak (one stream, a server restart)."""

from __future__ import annotations

import json

import pytest

from conftest import VIDEO
from soak import main, outage_times


def samples(states: list[tuple[float, str]]):
    return [(t, 100, {"cam0": state}) for t, state in states]


def test_outage_times():
    timeline = samples([(9.0, "live"), (10.2, "live"), (11.0, "connecting"), (12.0, "retrying"), (16.0, "retrying"),
                        (16.4, "connecting"), (17.5, "live")])
    assert outage_times(timeline, "cam0", down_at=10.0, back_at=15.0) == (1.0, 2.5)
    # Still down at the end of the run: noticed, never live again.
    assert outage_times(timeline[:5], "cam0", down_at=10.0, back_at=15.0) == (1.0, None)
    # Never left 'live': the outage went unnoticed, so there is no recovery to time.
    assert outage_times(samples([(11.0, "live"), (20.0, "live")]), "cam0", 10.0, 15.0) == (None, None)


@pytest.mark.slow
def test_short_soak_with_restart(tmp_path, capsys):
    out = tmp_path / "soak.json"
    assert main(["--streams", "1", "--minutes", "0.35", "--video", str(VIDEO), "--restart-at-s", "6",
                 "--outage-s", "2", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    cam = report["streams"]["cam0"]
    assert cam["frames_processed"] > 0 and cam["faces_published"] > 0
    assert cam["reconnects"] >= 1
    assert cam["live_again_after_s"] is not None and cam["live_again_after_s"] < 15
    assert report["max_rss_mb"] > 50
    assert "live_again_s" in capsys.readouterr().out
