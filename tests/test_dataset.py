"""Dataset builder: landmark pose estimate, frontal filter, identity split, real photos."""

from pathlib import Path

import numpy as np
import pytest

from faceedge.edge.align import ARCFACE_TEMPLATE
from faceedge.edge.face_geometry import estimate_yaw_pitch
from faceedge.edge.identity_split import holdout_identity, split_identities
from faceedge.pipelines.dataset import FrontalFilter, build_dataset

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
# ArcFace 112x112 template: a frontal face by construction.
TEMPLATE = ARCFACE_TEMPLATE


def _rotated(points, degrees):
    theta = np.radians(degrees)
    rotation = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return (points - points.mean(0)) @ rotation.T + 200


def test_template_is_frontal_and_roll_does_not_matter():
    yaw, pitch = estimate_yaw_pitch(TEMPLATE)
    assert abs(yaw) < 1.0 and abs(pitch) < 1.0
    yaw_r, pitch_r = estimate_yaw_pitch(_rotated(TEMPLATE, 35))
    assert yaw_r == pytest.approx(yaw, abs=1e-6) and pitch_r == pytest.approx(pitch, abs=1e-6)


def test_nose_shift_reads_as_yaw_and_pitch_with_sign():
    interocular = TEMPLATE[1, 0] - TEMPLATE[0, 0]
    right = TEMPLATE.copy()
    right[2, 0] += 0.6 * interocular  # nose as far sideways as it is deep: 45 degrees
    assert estimate_yaw_pitch(right)[0] == pytest.approx(45.0, abs=0.5)
    left = TEMPLATE.copy()
    left[2, 0] -= 0.6 * interocular
    assert estimate_yaw_pitch(left)[0] == pytest.approx(-45.0, abs=0.5)
    down = TEMPLATE.copy()
    down[2, 1] += 0.3 * interocular
    assert estimate_yaw_pitch(down)[1] > 20


def test_frontal_filter_thresholds():
    interocular = TEMPLATE[1, 0] - TEMPLATE[0, 0]
    turned = TEMPLATE.copy()
    turned[2, 0] += 0.3 * interocular  # about 26.6 degrees of yaw
    assert FrontalFilter().accepts(TEMPLATE)
    assert FrontalFilter(max_yaw_deg=30).accepts(turned)
    assert not FrontalFilter(max_yaw_deg=20).accepts(turned)
    pitched = TEMPLATE.copy()
    pitched[2, 1] += 0.3 * interocular
    assert not FrontalFilter(max_pitch_deg=20).accepts(pitched)


def test_identity_split_is_deterministic_and_disjoint():
    names = [f"person_{i}" for i in range(200)]
    train, held = split_identities(names, 0.3)
    assert set(train).isdisjoint(held) and sorted(train + held) == sorted(names)
    assert 0.2 < len(held) / len(names) < 0.4
    assert split_identities(names, 0.3) == (train, held)
    assert all(holdout_identity(n, 0.3) for n in held)
    assert split_identities(names, 0.3, salt="other") != (train, held)


@pytest.mark.skipif(not (DATA / "identities").is_dir(), reason="shared data not present")
def test_build_dataset_on_real_identities():
    from faceedge.edge.detect import YuNetDetector

    detector = YuNetDetector(threads=1)
    some = ["obama", "biden"]
    records = build_dataset(DATA / "identities", detector, identities=some)
    assert {r.identity for r in records} == set(some)
    assert all(r.aligned.shape == (112, 112, 3) and r.aligned.dtype == np.uint8 for r in records)
    assert all(abs(r.yaw) <= 30 and abs(r.pitch) <= 25 for r in records)
    strict = build_dataset(DATA / "identities", detector, identities=some, frontal=FrontalFilter(max_yaw_deg=10))
    assert len(strict) < len(records)  # obama1/obama2 are turned (about 26 and -18 degrees)
