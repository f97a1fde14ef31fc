"""Face tracking without an iPhone: a BGR image -> 468 face landmarks + 2 irises (ROS-free).

Runs the Apache-2.0 MediaPipe models that scripts/setup.sh extracts from the pinned
mediapipe 0.10.21 wheel (face_detection_short_range, face_landmark, iris_landmark) on the
LiteRT (TFLite) interpreter from PyPI; mediapipe itself is not installed (it needs numpy<2).
The pre/post-processing here follows MediaPipe's FaceMesh graphs: SSD anchors and box
decoding for the detector, a rotated square crop around the face for the landmark model,
and the landmarks of one frame give the crop of the next (the detector only runs when the
face was lost), which is what makes it real-time on two cores.
"""
from dataclasses import dataclass
import math
import os
from pathlib import Path
import sys

import cv2
import numpy as np

from face_common.jpeg import CorruptJpeg, jpeg_to_bgr8

MODEL_FILES = ('face_detection_short_range.tflite', 'face_landmark.tflite',
               'iris_landmark.tflite')
MODEL_DIR_ENV = 'FACE_TRACKER_MODELS'

DETECTOR_SIZE = 128
LANDMARK_SIZE = 192
IRIS_SIZE = 64
MIN_DETECTION_SCORE = 0.5
MIN_PRESENCE = 0.5
FACE_CROP_SCALE = 1.5        # MediaPipe: the landmark crop is 1.5x the face box
EYE_CROP_SCALE = 2.3         # MediaPipe: the iris crop is 2.3x the eye-corner span
MIN_FACE_PIXELS = 8.0        # a smaller "face" box is noise, not a face
MAX_IMAGE_SIDE = 8192        # larger frames are refused (a camera never sends them)
MAX_COMPRESSED_BYTES = 16 * 1024 * 1024

# Landmarks that orient the crops (MediaPipe's indices; "right" = the subject's right).
RIGHT_EYE_OUTER, RIGHT_EYE_INNER = 33, 133
LEFT_EYE_INNER, LEFT_EYE_OUTER = 362, 263


def default_model_dir() -> Path:
    """$FACE_TRACKER_MODELS, else where scripts/setup.sh puts them: <venv>/share/face_tracker."""
    return Path(os.environ.get(MODEL_DIR_ENV) or Path(sys.prefix) / 'share' / 'face_tracker')


class ModelsMissing(RuntimeError):
    pass


class BadImage(ValueError):
    """The input is not an image the tracker can read (shape, dtype, size)."""


class CorruptImage(BadImage):
    """A compressed frame whose data is damaged (libjpeg's complaint as the message)."""


@dataclass(frozen=True)
class Rect:
    """A rotated rectangle in image pixels: centre, size and rotation (radians, clockwise
    on screen since image y points down)."""
    cx: float
    cy: float
    width: float
    height: float
    angle: float = 0.0

    def axes(self):
        c, s = math.cos(self.angle), math.sin(self.angle)
        return np.array([c, s]), np.array([-s, c])

    def crop_transform(self, size: int) -> np.ndarray:
        """2x3 affine that maps this rectangle onto a size x size image."""
        ux, uy = self.axes()
        centre = np.array([self.cx, self.cy])
        top_left = centre - ux * self.width / 2 - uy * self.height / 2
        src = np.float32([top_left, top_left + ux * self.width, top_left + uy * self.height])
        dst = np.float32([[0, 0], [size, 0], [0, size]])
        return cv2.getAffineTransform(src, dst)

    def to_image(self, points: np.ndarray, size: int) -> np.ndarray:
        """Crop pixel coordinates (N, 3) back into image pixels; z scales like x."""
        ux, uy = self.axes()
        u = points[:, 0:1] / size - 0.5
        v = points[:, 1:2] / size - 0.5
        xy = np.array([self.cx, self.cy]) + u * self.width * ux + v * self.height * uy
        z = points[:, 2:3] * self.width / size
        return np.hstack([xy, z])


def rect_around(points: np.ndarray, start: int, end: int, scale: float) -> Rect:
    """MediaPipe's landmarks-to-ROI: bounding box of points, rotated so points[start] ->
    points[end] is horizontal, squared on its long side and scaled."""
    (x0, y0), (x1, y1) = points[start, :2], points[end, :2]
    angle = math.atan2(y1 - y0, x1 - x0)
    lo, hi = points[:, :2].min(axis=0), points[:, :2].max(axis=0)
    centre = (lo + hi) / 2
    side = max(float(max(hi - lo)) * scale, 1.0)     # never a degenerate crop transform
    return Rect(float(centre[0]), float(centre[1]), side, side, angle)


def ssd_anchors() -> np.ndarray:
    """(896, 2) anchor centres of the short-range detector, in 0..1 (MediaPipe's options:
    strides 8, 16, 16, 16; two anchors per cell; fixed anchor size)."""
    centres = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = DETECTOR_SIZE // stride
        grid = (np.arange(cells) + 0.5) / cells
        ys, xs = np.meshgrid(grid, grid, indexing='ij')
        cell_centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        centres.append(np.repeat(cell_centres, per_cell, axis=0))
    return np.concatenate(centres).astype(np.float32)


@dataclass
class Detection:
    score: float
    box: np.ndarray          # cx, cy, w, h in detector-input pixels
    keypoints: np.ndarray    # (6, 2): right eye, left eye, nose, mouth, right ear, left ear


def decode_best_detection(regressors: np.ndarray, scores: np.ndarray, anchors: np.ndarray,
                          min_score: float = MIN_DETECTION_SCORE):
    """The most confident face among the detector's outputs, or None. Boxes with non-finite
    or degenerate coordinates are skipped (a broken model output never reaches the crop)."""
    logits = np.clip(scores.reshape(-1).astype(np.float64), -100.0, 100.0)
    probability = 1.0 / (1.0 + np.exp(-logits))
    raw = regressors.reshape(-1, 16).astype(np.float64)
    anchor_px = anchors.astype(np.float64) * DETECTOR_SIZE
    for index in np.argsort(-probability):
        if not probability[index] >= min_score:
            return None
        row = raw[index]
        if not np.isfinite(row).all():
            continue
        box = row[:4].copy()
        box[:2] += anchor_px[index]
        keypoints = row[4:16].reshape(6, 2) + anchor_px[index]
        if box[2] < 1.0 or box[3] < 1.0:
            continue
        return Detection(float(probability[index]), box, keypoints)
    return None


@dataclass
class FaceResult:
    landmarks: np.ndarray            # (468, 3) image pixels (z: relative depth, pixel scale)
    irises: np.ndarray               # (2, 5, 3) subject right, subject left; [k, 0] = centre
    presence: float
    detected: bool                   # this frame ran the detector (not tracked from the last)
    blendshapes: np.ndarray = None   # (52,) in ARKit order, from a face_landmarker.task only


def sigmoid(logit) -> float:
    return 1.0 / (1.0 + math.exp(-float(np.clip(logit, -100.0, 100.0))))


def load_interpreter(threads: int, **source):
    """A LiteRT interpreter with its tensors allocated (source: model_path= or model_content=)."""
    from ai_edge_litert.interpreter import Interpreter
    interpreter = Interpreter(num_threads=threads, **source)
    interpreter.allocate_tensors()
    return interpreter


class FaceTracker:
    """One face, frame after frame. track(bgr) -> FaceResult or None (no face).

    Models by role: 'detector', 'landmarks' (outputs: points, presence logit, ...) and what
    _finish needs (here 'iris'); TaskFaceTracker swaps in a face_landmarker.task's models."""

    landmark_size = LANDMARK_SIZE

    def __init__(self, model_dir=None, threads: int = 1):
        model_dir = Path(model_dir) if model_dir else default_model_dir()
        missing = [name for name in MODEL_FILES if not (model_dir / name).is_file()]
        if missing:
            raise ModelsMissing(f'face models missing in {model_dir}: {", ".join(missing)} '
                                '(scripts/setup.sh extracts them; or set $FACE_TRACKER_MODELS)')
        self.model_dir = model_dir
        self._models = {role: load_interpreter(threads, model_path=str(model_dir / name))
                        for role, name in zip(('detector', 'landmarks', 'iris'), MODEL_FILES,
                                              strict=True)}
        self.anchors = ssd_anchors()
        self._roi = None             # crop for the next frame, from this frame's landmarks

    def reset(self) -> None:
        self._roi = None

    def _run(self, role: str, tensor: np.ndarray):
        interpreter = self._models[role]
        interpreter.set_tensor(interpreter.get_input_details()[0]['index'], tensor[None])
        interpreter.invoke()
        return [interpreter.get_tensor(d['index']) for d in interpreter.get_output_details()]

    def detect(self, rgb: np.ndarray):
        """Face rectangle for the landmark model from the detector, or None."""
        height, width = rgb.shape[:2]
        side = float(max(height, width))
        letterbox = Rect(width / 2, height / 2, side, side)       # pad to a square
        crop = cv2.warpAffine(rgb, letterbox.crop_transform(DETECTOR_SIZE),
                              (DETECTOR_SIZE, DETECTOR_SIZE), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        tensor = crop.astype(np.float32) * (2.0 / 255.0) - 1.0
        regressors, scores = self._run('detector', tensor)
        detection = decode_best_detection(regressors, scores, self.anchors)
        if detection is None:
            return None
        scale = side / DETECTOR_SIZE
        to_image = np.array([letterbox.cx - side / 2, letterbox.cy - side / 2])
        cx, cy = detection.box[:2] * scale + to_image
        size = float(max(detection.box[2:4])) * scale
        eyes = detection.keypoints[:2] * scale + to_image
        if size < MIN_FACE_PIXELS or not np.isfinite([cx, cy, size]).all():
            return None
        (x0, y0), (x1, y1) = eyes
        angle = math.atan2(y1 - y0, x1 - x0)
        return Rect(float(cx), float(cy), size * FACE_CROP_SCALE, size * FACE_CROP_SCALE,
                    angle)

    def _landmarks(self, rgb: np.ndarray, roi: Rect):
        """(landmarks in image pixels, presence, the model's other outputs)."""
        size = self.landmark_size
        crop = cv2.warpAffine(rgb, roi.crop_transform(size), (size, size),
                              flags=cv2.INTER_LINEAR)
        points, flag, *extra = self._run('landmarks', crop.astype(np.float32) * (1.0 / 255.0))
        landmarks = roi.to_image(points.reshape(-1, 3).astype(np.float64), size)
        return landmarks, sigmoid(flag.reshape(-1)[0]), extra

    def _iris(self, rgb: np.ndarray, landmarks: np.ndarray, corners, mirrored: bool):
        """Iris (5, 3) of one eye; the model knows one eye, so the other is mirrored."""
        roi = rect_around(landmarks[list(corners)], 0, 1, EYE_CROP_SCALE)
        crop = cv2.warpAffine(rgb, roi.crop_transform(IRIS_SIZE), (IRIS_SIZE, IRIS_SIZE),
                              flags=cv2.INTER_LINEAR)
        if mirrored:
            crop = crop[:, ::-1]
        _, iris = self._run('iris',
                            np.ascontiguousarray(crop, np.float32) * (1.0 / 255.0))
        iris = iris.reshape(5, 3).astype(np.float64)
        if mirrored:
            iris[:, 0] = IRIS_SIZE - iris[:, 0]
        return roi.to_image(iris, IRIS_SIZE)

    def track(self, bgr: np.ndarray):
        rgb = cv2.cvtColor(check_image(bgr), cv2.COLOR_BGR2RGB)
        detected = False
        result = None
        if self._roi is not None:
            result = self._landmarks(rgb, self._roi)
        if result is None or result[1] < MIN_PRESENCE or not np.isfinite(result[0]).all():
            roi = self.detect(rgb)
            self._roi = None
            if roi is None:
                return None
            detected = True
            result = self._landmarks(rgb, roi)
        landmarks, presence, extra = result
        if presence < MIN_PRESENCE or not np.isfinite(landmarks).all():
            self._roi = None
            return None
        self._roi = rect_around(landmarks, RIGHT_EYE_OUTER, LEFT_EYE_OUTER, FACE_CROP_SCALE)
        return self._finish(rgb, landmarks, presence, detected, extra)

    def _finish(self, rgb, landmarks, presence, detected, extra) -> FaceResult:
        """The irises from the iris model, one eye crop each."""
        irises = np.stack([
            self._iris(rgb, landmarks, (RIGHT_EYE_OUTER, RIGHT_EYE_INNER), mirrored=False),
            self._iris(rgb, landmarks, (LEFT_EYE_INNER, LEFT_EYE_OUTER), mirrored=True)])
        return FaceResult(landmarks, irises, presence, detected)


def check_image(image) -> np.ndarray:
    """A (H, W, 3) uint8 BGR array the models can take, or BadImage saying why not."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise BadImage('expected a uint8 numpy array')
    if image.ndim != 3 or image.shape[2] != 3:
        raise BadImage(f'expected H x W x 3 (BGR), got shape {image.shape}')
    if not (2 <= image.shape[0] <= MAX_IMAGE_SIDE and 2 <= image.shape[1] <= MAX_IMAGE_SIDE):
        raise BadImage(f'image size {image.shape[1]}x{image.shape[0]} outside 2..'
                       f'{MAX_IMAGE_SIDE} pixels a side')
    return image


_JPEG_START, _PNG_START = b'\xff\xd8\xff', b'\x89PNG\r\n\x1a\n'
_JPEG_FRAME_MARKERS = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}   # SOFn, not DHT/JPG/DAC
_JPEG_PARAMETERLESS = set(range(0xD0, 0xD9)) | {0x01}   # RSTn, SOI, TEM: no length follows


def compressed_size(data: bytes):
    """(width, height) from a JPEG or PNG header, or BadImage; read before decoding, so a
    small file that claims a huge image is refused without allocating it."""
    if data.startswith(_PNG_START) and len(data) >= 24:
        return int.from_bytes(data[16:20], 'big'), int.from_bytes(data[20:24], 'big')
    if not data.startswith(_JPEG_START):
        raise BadImage('compressed image is neither JPEG nor PNG')
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            raise BadImage('corrupt JPEG header')
        marker = data[at + 1]
        if marker == 0xFF:                      # fill byte
            at += 1
            continue
        if marker in _JPEG_PARAMETERLESS:       # libjpeg skips these; so must the walk
            at += 2
            continue
        if marker in (0xD9, 0xDA):              # end of image or scan data: no header came
            break
        if marker in _JPEG_FRAME_MARKERS:
            return (int.from_bytes(data[at + 7:at + 9], 'big'),
                    int.from_bytes(data[at + 5:at + 7], 'big'))
        at += 2 + int.from_bytes(data[at + 2:at + 4], 'big')
    raise BadImage('JPEG without a frame header')


def decode_compressed(data) -> np.ndarray:
    """A sensor_msgs/CompressedImage payload (JPEG or PNG) -> BGR array, or BadImage."""
    data = bytes(data)
    if not 0 < len(data) <= MAX_COMPRESSED_BYTES:
        raise BadImage(f'compressed image of {len(data)} bytes (1..{MAX_COMPRESSED_BYTES})')
    width, height = compressed_size(data)
    if not (2 <= width <= MAX_IMAGE_SIDE and 2 <= height <= MAX_IMAGE_SIDE):
        raise BadImage(f'compressed image of {width}x{height} pixels')
    if data.startswith(_JPEG_START):
        try:
            return check_image(jpeg_to_bgr8(data))
        except CorruptJpeg as exc:
            raise CorruptImage(f'corrupt JPEG: {exc}') from None
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise BadImage('compressed image could not be decoded')
    return check_image(image)
