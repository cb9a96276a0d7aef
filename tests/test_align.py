import warnings

import cv2
import numpy as np
import pytest

from faceedge.edge.align import align_face, similarity_to, template_for
from faceedge.edge.detect import YuNetDetector


@pytest.fixture(scope="module")
def faces(data_dir):
    """(image, landmarks) of every face YuNet finds in the multi-face scene."""
    image = cv2.imread(str(data_dir / "scenes" / "multiface.jpg"))
    found = YuNetDetector().detect(image)
    assert len(found) >= 3
    return [(image, d.landmarks) for d in found]


@pytest.mark.parametrize("size", [112, 224, 128])
def test_align_face_matches_insightface_norm_crop(faces, size):
    face_align = pytest.importorskip("insightface.utils.face_align",
                                     reason="insightface, the reference, is in the dev extra")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # scikit-image's estimate() deprecation
        for image, landmarks in faces:
            reference = face_align.norm_crop(image, landmarks, image_size=size)
            ours = align_face(image, landmarks, size)
            matrix = face_align.estimate_norm(landmarks, size)
            np.testing.assert_allclose(similarity_to(landmarks, template_for(size)), matrix, atol=1e-4)
            assert ours.shape == reference.shape == (size, size, 3)
            # Same transform up to float rounding: at most a grey level apart, almost always equal.
            diff = np.abs(ours.astype(int) - reference.astype(int))
            assert diff.max() <= 1 and (diff == 0).mean() > 0.99


def test_similarity_recovers_a_known_transform():
    angle, scale, shift = np.radians(20.0), 1.7, np.array([5.0, -3.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points = np.random.default_rng(0).uniform(0, 100, (5, 2))
    matrix = similarity_to(points, points @ rotation.T + shift)
    np.testing.assert_allclose(matrix, np.hstack([rotation, shift[:, None]]), atol=1e-9)


def test_template_rejects_sizes_insightface_does_not_support():
    with pytest.raises(ValueError, match="multiple of 112 or 128"):
        template_for(100)
