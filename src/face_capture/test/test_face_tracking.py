"""The face tracker on a real photograph (matplotlib's grace_hopper.jpg: eyes open, mouth
closed) and synthetic variants of it, plus the ROS-free pieces on their own."""
import math

import cv2
import matplotlib.cbook
import numpy as np
import pytest

from face_capture.face_expressions import (
    ESTIMATED,
    FEATURES,
    NEUTRAL_DEFAULTS,
    NOT_ESTIMATED,
    ExpressionEstimator,
    face_features,
)
from face_capture.face_tracking import (
    BadImage,
    FaceTracker,
    check_image,
    compressed_size,
    decode_best_detection,
    decode_compressed,
    ssd_anchors,
)
from face_common.arkit import CHANNEL_NAMES, NUM_BLENDSHAPES, channel_index

F = {name: i for i, name in enumerate(FEATURES)}


@pytest.fixture(scope='module')
def photo():
    path = matplotlib.cbook.get_sample_data('grace_hopper.jpg', asfileobj=False)
    image = cv2.imread(str(path))
    assert image is not None
    return image


@pytest.fixture(scope='module')
def tracker():
    return FaceTracker()


def track(tracker, image):
    tracker.reset()
    return tracker.track(np.ascontiguousarray(image))


def channels_of(face):
    return ExpressionEstimator().channels(face_features(face.landmarks, face.irises))


def value(channels, name):
    return float(channels[channel_index(name)])


def test_the_photograph_is_a_face_with_open_eyes_and_a_closed_mouth(tracker, photo):
    face = track(tracker, photo)
    assert face is not None and face.detected and face.presence > 0.9
    assert face.landmarks.shape == (468, 3) and face.irises.shape == (2, 5, 3)
    height, width = photo.shape[:2]
    assert (face.landmarks[:, 0] > 0).all() and (face.landmarks[:, 0] < width).all()
    assert (face.landmarks[:, 1] > 0).all() and (face.landmarks[:, 1] < height).all()
    channels = channels_of(face)
    for name in ('EyeBlinkLeft', 'EyeBlinkRight', 'JawOpen', 'MouthFunnel', 'MouthPucker'):
        assert value(channels, name) < 0.3, name
    # each iris lies between the corners of its own eye
    for iris, (a, b) in zip(face.irises, ((33, 133), (362, 263)), strict=True):
        left, right = sorted((face.landmarks[a, 0], face.landmarks[b, 0]))
        assert left < iris[0, 0] < right


def test_the_next_frame_is_tracked_from_the_last_landmarks(tracker, photo):
    tracker.reset()
    first = tracker.track(photo)
    second = tracker.track(photo)
    assert first.detected and not second.detected
    assert np.abs(first.landmarks[:, :2] - second.landmarks[:, :2]).max() < 6.0


def test_a_mirrored_photo_swaps_left_and_right(tracker, photo):
    face = track(tracker, photo)
    mirrored = track(tracker, photo[:, ::-1])
    assert mirrored is not None
    width = photo.shape[1]
    # the subject's right eye corner in the mirror is the left one in the original
    for right, left in ((33, 263), (133, 362), (61, 291)):
        assert abs(mirrored.landmarks[right, 0] - (width - face.landmarks[left, 0])) < 6.0
    original, flipped = (face_features(f.landmarks, f.irises) for f in (face, mirrored))
    assert flipped[F['eye_open_left']] == pytest.approx(original[F['eye_open_right']], rel=0.2)
    assert flipped[F['eye_open_right']] == pytest.approx(original[F['eye_open_left']], rel=0.2)
    assert flipped[F['head_roll']] == pytest.approx(-original[F['head_roll']], abs=0.05)
    assert flipped[F['head_yaw']] == pytest.approx(-original[F['head_yaw']], abs=0.05)


@pytest.mark.parametrize('degrees', [15, 30, -25])
def test_a_rotated_photo_reads_as_head_roll(tracker, photo, degrees):
    height, width = photo.shape[:2]
    turn = cv2.getRotationMatrix2D((width / 2, height / 2), degrees, 1.0)
    rotated = track(tracker, cv2.warpAffine(photo, turn, (width, height)))
    upright = track(tracker, photo)
    assert rotated is not None
    roll = channels_of(rotated)[channel_index('HeadRoll')]
    base = channels_of(upright)[channel_index('HeadRoll')]
    # cv2 turns counter-clockwise for positive angles: the eye line's angle falls
    assert roll - base == pytest.approx(-math.radians(degrees), abs=0.08)
    assert value(channels_of(rotated), 'EyeBlinkLeft') < 0.4


def test_a_small_face_is_still_found_with_open_eyes(tracker, photo):
    height, width = photo.shape[:2]
    small = cv2.resize(photo, (width // 3, height // 3), interpolation=cv2.INTER_AREA)
    face = track(tracker, small)
    assert face is not None
    channels = channels_of(face)
    assert value(channels, 'EyeBlinkLeft') < 0.5 and value(channels, 'EyeBlinkRight') < 0.5


def test_half_an_occluded_face_never_breaks_the_output(tracker, photo):
    occluded = photo.copy()
    occluded[:, photo.shape[1] // 2:] = 0
    face = track(tracker, occluded)
    if face is not None:
        channels = channels_of(face)
        assert np.isfinite(channels).all()
        assert (channels[:NUM_BLENDSHAPES] >= 0).all() and (channels[:NUM_BLENDSHAPES] <= 1).all()


@pytest.mark.parametrize('kind', ['blank', 'white', 'noise', 'tiny'])
def test_no_face_is_not_tracked(tracker, kind):
    rng = np.random.default_rng(1)
    image = {'blank': np.zeros((480, 640, 3), np.uint8),
             'white': np.full((480, 640, 3), 255, np.uint8),
             'noise': rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
             'tiny': rng.integers(0, 256, (2, 3, 3), dtype=np.uint8)}[kind]
    assert track(tracker, image) is None


def test_a_lost_face_is_searched_for_again(tracker, photo):
    tracker.reset()
    assert tracker.track(photo) is not None
    assert tracker.track(np.zeros_like(photo)) is None
    again = tracker.track(photo)
    assert again is not None and again.detected


@pytest.mark.parametrize('image', [
    np.zeros((480, 640), np.uint8), np.zeros((480, 640, 4), np.uint8),
    np.zeros((480, 640, 3), np.float32), np.zeros((1, 640, 3), np.uint8),
    np.zeros((9000, 4, 3), np.uint8), 'not an image'])
def test_bad_images_are_refused_with_a_reason(image):
    with pytest.raises(BadImage):
        check_image(image)


def test_anchors_and_box_decoding_skip_broken_outputs():
    anchors = ssd_anchors()
    assert anchors.shape == (896, 2) and (anchors > 0).all() and (anchors < 1).all()
    regressors = np.zeros((1, 896, 16), np.float32)
    regressors[0, :, 2:4] = 40.0
    scores = np.full((1, 896, 1), -10.0, np.float32)
    assert decode_best_detection(regressors, scores, anchors) is None
    scores[0, 5, 0], scores[0, 7, 0] = 9.0, 5.0
    regressors[0, 5] = np.nan                       # the best box is broken: take the next
    best = decode_best_detection(regressors, scores, anchors)
    assert best is not None and np.allclose(best.box[:2], anchors[7] * 128)
    scores[0, 7, 0] = np.nan
    assert decode_best_detection(regressors, scores, anchors) is None


def test_neutral_features_give_a_neutral_face():
    channels = ExpressionEstimator().channels(NEUTRAL_DEFAULTS.copy())
    assert np.allclose(channels[:NUM_BLENDSHAPES], 0.0)


@pytest.mark.parametrize('feature, scale, channel', [
    ('eye_open_left', 0.2, 'EyeBlinkLeft'), ('eye_open_right', 0.2, 'EyeBlinkRight'),
    ('eye_open_left', 1.5, 'EyeWideLeft'), ('nose_chin', 1.4, 'JawOpen'),
    ('brow_inner_right', 1.6, 'BrowInnerUp'), ('brow_inner_left', 0.7, 'BrowDownLeft'),
    ('brow_outer_right', 1.4, 'BrowOuterUpRight'), ('mouth_width', 0.7, 'MouthPucker')])
def test_each_expression_moves_its_own_channel(feature, scale, channel):
    estimator = ExpressionEstimator()
    features = NEUTRAL_DEFAULTS.copy()
    features[F[feature]] *= scale
    channels = estimator.channels(features)
    assert value(channels, channel) == pytest.approx(1.0)
    others = [i for i in range(NUM_BLENDSHAPES) if CHANNEL_NAMES[i] != channel
              and not (channel == 'BrowInnerUp' and 'BrowDown' in CHANNEL_NAMES[i])]
    assert (channels[others] <= 0.5).all()


def test_smile_gaze_and_a_captured_neutral():
    estimator = ExpressionEstimator()
    features = NEUTRAL_DEFAULTS.copy()
    features[F['corner_lift_left']] += 0.1
    features[F['gaze_x_left']] -= 0.12                  # towards the nose
    channels = estimator.channels(features)
    assert value(channels, 'MouthSmileLeft') == pytest.approx(1.0)
    assert value(channels, 'MouthSmileRight') == 0.0
    assert value(channels, 'EyeLookInLeft') == pytest.approx(1.0)
    estimator.set_neutral(features)                     # this performer's neutral face
    assert np.allclose(estimator.channels(features)[:NUM_BLENDSHAPES], 0.0)
    with pytest.raises(ValueError):
        estimator.set_neutral([np.nan] * len(FEATURES))


def test_every_channel_is_listed_once_as_estimated_or_not():
    assert sorted(ESTIMATED + NOT_ESTIMATED) == sorted(CHANNEL_NAMES)


def test_jpeg_and_png_frames_decode_and_bad_ones_are_refused(photo):
    for extension in ('.jpg', '.png'):
        data = cv2.imencode(extension, photo)[1].tobytes()
        assert compressed_size(data) == (photo.shape[1], photo.shape[0])
        assert decode_compressed(data).shape == photo.shape
    jpeg = cv2.imencode('.jpg', photo)[1].tobytes()
    huge = bytearray(cv2.imencode('.png', photo)[1].tobytes())
    huge[16:24] = (60000).to_bytes(4, 'big') * 2             # claims 60000 x 60000 pixels
    for bad in (b'', b'GIF89a', jpeg[:3], jpeg[:200], bytes(huge), jpeg[:2] + b'\x00' * 50):
        with pytest.raises(BadImage):
            decode_compressed(bad)


def test_degenerate_landmarks_give_finite_channels_or_a_value_error():
    landmarks = np.random.default_rng(3).random((468, 3)) * 100
    landmarks[133] = landmarks[33]                      # one eye's corners coincide
    channels = ExpressionEstimator().channels(face_features(landmarks, np.zeros((2, 5, 3))))
    assert np.isfinite(channels).all()
    landmarks[:] = 5.0                                  # every point in one place
    with pytest.raises(ValueError):
        face_features(landmarks, np.zeros((2, 5, 3)))


def test_a_parameterless_marker_cannot_hide_the_real_frame_size():
    """libjpeg skips standalone markers (TEM, RSTn) before the frame header; a size check
    that reads a length after them jumps over the real header to a decoy one after the end
    of the image, so a small-looking file could still make the decoder allocate the real size."""
    real = cv2.imencode('.jpg', np.zeros((64, 96, 3), np.uint8))[1].tobytes()
    crafted = bytearray(real[:2] + b'\xff\x01' + real[2:])         # SOI, TEM, the rest
    skipped_to = 2 + 2 + int.from_bytes(crafted[4:6], 'big')       # where a length walk lands
    crafted += b'\x00' * (skipped_to - len(crafted))
    crafted += b'\xff\xc0\x00\x11\x08\x00\x10\x00\x10' + b'\x00' * 12  # decoy SOF: 16 x 16
    assert cv2.imdecode(np.frombuffer(bytes(crafted), np.uint8), cv2.IMREAD_COLOR).shape == (
        64, 96, 3)
    assert compressed_size(bytes(crafted)) == (96, 64)
