"""docs/benchmarks.md is exactly what docs/make_benchmarks.py renders from the template and the recorded JSON."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GENERATOR = REPO / "docs" / "make_benchmarks.py"


def _history_available() -> bool:
    """The generator reads each JSON's last commit, which a copy without git or a shallow clone cannot give."""
    if shutil.which("git") is None:
        return False
    result = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=REPO, capture_output=True, text=True)
    return result.returncode == 0 and result.stdout.strip() == "false"


def _generator():
    if "make_benchmarks" not in sys.modules:  # registered first: its dataclass resolves names through it
        spec = importlib.util.spec_from_file_location("make_benchmarks", GENERATOR)
        sys.modules["make_benchmarks"] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules["make_benchmarks"])
    return sys.modules["make_benchmarks"]


@pytest.mark.skipif(not _history_available(), reason="needs the full git history to name each JSON's commit")
def test_committed_page_is_the_generators_output():
    generator = _generator()
    assert generator.OUTPUT.read_text() == generator.render(), (
        "docs/benchmarks.md is out of date: run `python docs/make_benchmarks.py` and commit the result")


def test_every_template_marker_names_an_area_and_every_area_is_used():
    generator = _generator()
    used = [m.group(1) for line in generator.TEMPLATE.read_text().splitlines()
            if (m := generator.MARKER.match(line))]
    assert sorted(used) == sorted(generator.AREAS)
    for area in generator.AREAS.values():
        assert list(generator.DOCS.glob(area.json_name)), f"no recorded JSON for {area.json_name}"
