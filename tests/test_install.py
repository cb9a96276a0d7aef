"""The wheel alone, with its `cpu` extra, is a working faceedge."""

import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import REPO

pytestmark = pytest.mark.slow

# Not part of a source checkout's tracked tree; a stale setuptools build/ folder would put deleted modules
# in the wheel.
UNTRACKED = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                   "out", "runs")


def run(*command, **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run([str(c) for c in command], capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} exited {result.returncode}:\n{result.stderr[-4000:]}"
    return result


def test_wheel_in_a_fresh_venv_runs_doctor_demo_and_run(tmp_path):
    """Installed without -e into a fresh venv (no system site-packages), from outside the checkout: the package's
    metadata and package data hold everything `faceedge doctor`, `demo` and `run` need. Needs a package index."""
    source = tmp_path / "source"
    shutil.copytree(REPO, source, ignore=UNTRACKED)
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", source, "-w", tmp_path / "wheels", timeout=300)
    wheel = next((tmp_path / "wheels").glob("faceedge-*.whl"))
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", venv)
    python, faceedge = venv / "bin" / "python", venv / "bin" / "faceedge"
    run(python, "-m", "pip", "install", "-q", f"{wheel}[cpu]", timeout=900)

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["FACEEDGE_CACHE"] = str(tmp_path / "cache")
    located = run(python, "-c", "import faceedge.edge; print(faceedge.edge.__file__)", cwd=elsewhere, env=env)
    assert located.stdout.startswith(str(venv))
    assert "install ok" in run(faceedge, "doctor", "--check-install", cwd=elsewhere, env=env).stdout
    assert "backend onnxruntime-cpu: available" in run(faceedge, "doctor", cwd=elsewhere, env=env).stdout
    demo = run(faceedge, "demo", "--out", "demo", "--seconds", "3", cwd=elsewhere, env=env, timeout=600)
    summary = json.loads(demo.stdout)
    assert summary["status"] == 0 and len(summary["tracks"]) >= 4
    assert (elsewhere / "demo" / "contact_sheet.png").stat().st_size > 0
    ran = run(faceedge, "run", "--input", summary["clip"], "--set", "metrics.enabled=false",
              "--set", "publish.bind=tcp://127.0.0.1:0", cwd=elsewhere, env=env, timeout=300)
    assert "faces published" in ran.stderr
