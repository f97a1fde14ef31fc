"""Blendshapes mode: mediapipe's real face_landmarker.task (test/data, float16 v1) run on
LiteRT, on matplotlib's grace_hopper.jpg (eyes open, mouth closed), a synthetic smile made
from it by lifting the mouth corners, mirrored and no-face images, and broken task files."""
from pathlib import Path
import zipfile

import cv2
import matplotlib.cbook
import numpy as np
import pytest

from face_capture.face_expressions import ExpressionEstimator, face_features
from face_capture.face_landmarker_task import (
    BLENDSHAPE_INPUT_LANDMARKS,
    BLENDSHAPES,
    MODEL_OUTPUT_NAMES,
    TaskFaceTracker,
    TaskFileError,
    read_task,
)
from face_capture.face_tracking import FaceTracker, default_model_dir
from face_common.arkit import BLENDSHAPE_NAMES, channel_index

TASK = Path(__file__).parent / 'data' / 'face_landmarker.task'
MOUTH_RIGHT, MOUTH_LEFT = 61, 291        # mouth corners, the subject's right and left


@pytest.fixture(scope='module')
def photo():
    image = cv2.imread(str(matplotlib.cbook.get_sample_data('grace_hopper.jpg',
                                                            asfileobj=False)))
    assert image is not None
    return image


@pytest.fixture(scope='module')
def tracker():
    return TaskFaceTracker(TASK)


def track(tracker, image):
    tracker.reset()
    return tracker.track(np.ascontiguousarray(image))


def weight(face, name):
    return float(face.blendshapes[channel_index(name)])


def lift(image, centre, pixels, radius=25.0):
    """The image with the skin around centre pushed up by pixels (a Gaussian warp)."""
    height, width = image.shape[:2]
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    falloff = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * radius ** 2))
    return cv2.remap(image, xs, ys + pixels * falloff.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT)


def test_the_bundle_is_the_real_face_landmarker():
    assert TASK.stat().st_size == 3758596
    models = read_task(TASK)
    assert all(len(data) > 100_000 for data in models.values())
    assert len(BLENDSHAPE_INPUT_LANDMARKS) == len(set(BLENDSHAPE_INPUT_LANDMARKS)) == 146
    # every ARKit shape but TongueOut comes from the blendshape model, each once
    named = {name.lower() for name in MODEL_OUTPUT_NAMES[1:]}
    assert named == {name.lower() for name in BLENDSHAPE_NAMES} - {'tongueout'}


def test_the_portrait_reads_eyes_open_mouth_closed_and_no_smile(tracker, photo):
    face = track(tracker, photo)
    assert face is not None and face.detected and face.presence > 0.9
    assert face.landmarks.shape == (468, 3) and face.irises.shape == (2, 5, 3)
    assert face.blendshapes.shape == (52,) and np.isfinite(face.blendshapes).all()
    assert ((face.blendshapes >= 0) & (face.blendshapes <= 1)).all()
    for name in ('EyeBlinkLeft', 'EyeBlinkRight', 'JawOpen', 'MouthSmileLeft',
                 'MouthSmileRight', 'TongueOut', 'CheekPuff', 'MouthFunnel'):
        assert weight(face, name) < 0.2, name
    # the same mesh as the geometric mode's: the two landmark models agree within pixels
    geometric = FaceTracker().track(photo)
    assert np.abs(geometric.landmarks[:, :2] - face.landmarks[:, :2]).mean() < 4.0
    assert np.abs(geometric.irises[:, 0, :2] - face.irises[:, 0, :2]).max() < 4.0
    # and the geometric estimator reads the same face the same way on these channels
    estimated = ExpressionEstimator().channels(face_features(geometric.landmarks,
                                                             geometric.irises))
    for name in ('EyeBlinkLeft', 'EyeBlinkRight', 'JawOpen', 'MouthSmileLeft'):
        assert abs(estimated[channel_index(name)] - weight(face, name)) < 0.2, name


def test_a_synthetic_smile_raises_the_smile_channels_on_the_lifted_side(tracker, photo):
    face = track(tracker, photo)
    corners = face.landmarks[[MOUTH_RIGHT, MOUTH_LEFT], :2]
    both = track(tracker, lift(lift(photo, corners[0], 8.0), corners[1], 8.0))
    assert weight(both, 'MouthSmileLeft') > weight(face, 'MouthSmileLeft') + 0.15
    assert weight(both, 'MouthSmileRight') > weight(face, 'MouthSmileRight') + 0.1
    assert weight(both, 'EyeBlinkLeft') < 0.2 and weight(both, 'JawOpen') < 0.2
    # the subject's left corner (the image's right) drives MouthSmileLeft, as in ARKit
    left_only = track(tracker, lift(photo, corners[1], 8.0))
    assert weight(left_only, 'MouthSmileLeft') > weight(left_only, 'MouthSmileRight') + 0.03


def test_a_mirrored_portrait_is_still_a_neutral_face(tracker, photo):
    face = track(tracker, photo[:, ::-1])
    assert face is not None
    for name in ('EyeBlinkLeft', 'EyeBlinkRight', 'JawOpen', 'MouthSmileLeft'):
        assert weight(face, name) < 0.2, name


def test_the_next_frame_is_tracked_without_the_detector(tracker, photo):
    """The crop from the last landmarks differs a little from the detector's, and the
    gaze channels notice (EyeLookUpLeft 0.30 -> 0.10 here); tracking settles in frames."""
    first = track(tracker, photo)
    tracked = [tracker.track(photo) for _ in range(4)]
    assert first.detected and not any(face.detected for face in tracked)
    assert np.abs(first.blendshapes - tracked[0].blendshapes).max() < 0.3
    assert np.abs(tracked[-1].blendshapes - tracked[-2].blendshapes).max() < 0.05


@pytest.mark.parametrize('image', [
    np.zeros((480, 640, 3), np.uint8), np.full((480, 640, 3), 255, np.uint8),
    np.random.default_rng(3).integers(0, 256, (480, 640, 3), dtype=np.uint8)])
def test_no_face_is_none(tracker, image):
    assert track(tracker, image) is None


def test_a_missing_file_is_refused_with_its_path(tmp_path):
    with pytest.raises(TaskFileError, match='no such file'):
        TaskFaceTracker(tmp_path / 'face_landmarker.task')


def test_a_file_that_is_no_zip_is_refused(tmp_path):
    path = tmp_path / 'face_landmarker.task'
    path.write_bytes(TASK.read_bytes()[:1000])          # a truncated download
    with pytest.raises(TaskFileError, match='unreadable'):
        TaskFaceTracker(path)


def rebundle(path, replace):
    """A copy of the real bundle with members replaced (bytes) or left out (None)."""
    with zipfile.ZipFile(TASK) as source, zipfile.ZipFile(path, 'w') as bundle:
        for name in source.namelist():
            data = replace[name] if name in replace else source.read(name)
            if data is not None:
                bundle.writestr(name, data)
    return path


def damage_member(path, name, damage):
    """The bundle at path rewritten by damage(data, local header offset, offset of the
    member's stored bytes, central directory entry offset) of member `name`."""
    with zipfile.ZipFile(path) as bundle:
        local = bundle.getinfo(name).header_offset
    data = bytearray(path.read_bytes())
    name_length = int.from_bytes(data[local + 26:local + 28], 'little')
    extra_length = int.from_bytes(data[local + 28:local + 30], 'little')
    start = local + 30 + name_length + extra_length
    central = data.index(b'PK\x01\x02')
    while data[central + 46:central + 46 + len(name)] != name.encode():
        central = data.index(b'PK\x01\x02', central + 4)
    path.write_bytes(damage(data, local, start, central))
    return path


def _scramble_data(data, local, start, central):
    data[start + 4:start + 64] = bytes(b ^ 0xFF for b in data[start + 4:start + 64])
    return bytes(data)


def _flag_encrypted(data, local, start, central):
    data[local + 6] |= 1
    data[central + 8] |= 1
    return bytes(data)


def _unknown_method(data, local, start, central):
    data[local + 8:local + 10] = data[central + 10:central + 12] = (99).to_bytes(2, 'little')
    return bytes(data)


@pytest.mark.parametrize('damage', [_scramble_data, _flag_encrypted, _unknown_method],
                         ids=['damaged deflate stream', 'encrypted member',
                              'unknown compression method'])
def test_a_bundle_whose_member_cannot_be_extracted_is_refused(tmp_path, damage):
    """zipfile's errors for these are zlib.error, RuntimeError and NotImplementedError: each
    must become the one-line TaskFileError the node reports, not a traceback."""
    path = tmp_path / 'damaged.task'
    with zipfile.ZipFile(TASK) as source, \
            zipfile.ZipFile(path, 'w', zipfile.ZIP_DEFLATED) as bundle:
        for name in source.namelist():
            bundle.writestr(name, source.read(name))
    damage_member(path, BLENDSHAPES, damage)
    with pytest.raises(TaskFileError, match='unreadable'):
        read_task(path)


def test_a_bundle_without_the_blendshape_model_is_refused(tmp_path):
    path = rebundle(tmp_path / 'other.task', {BLENDSHAPES: None})
    with pytest.raises(TaskFileError, match=r'missing face_blendshapes\.tflite'):
        TaskFaceTracker(path)


def test_a_bundle_with_a_corrupt_model_is_refused(tmp_path):
    path = rebundle(tmp_path / 'corrupt.task',
                    {BLENDSHAPES: read_task(TASK)[BLENDSHAPES][:300000]})
    with pytest.raises(TaskFileError, match=r'face_blendshapes\.tflite does not load'):
        TaskFaceTracker(path)


def test_a_bundle_with_another_model_in_its_place_is_refused(tmp_path):
    """The geometric mode's 192-pixel landmark model under the task's landmark name."""
    legacy = (default_model_dir() / 'face_landmark.tflite').read_bytes()
    path = rebundle(tmp_path / 'swapped.task', {'face_landmarks_detector.tflite': legacy})
    with pytest.raises(TaskFileError, match='expected'):
        TaskFaceTracker(path)
