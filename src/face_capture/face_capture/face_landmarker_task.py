"""All 52 ARKit blendshapes from a user-supplied mediapipe face_landmarker.task (ROS-free).

A .task file is a zip of TFLite models: face_detector.tflite (the short-range BlazeFace the
geometric mode also uses), face_landmarks_detector.tflite (256x256 in, 478 landmarks with
the irises, a presence logit and a tongue-out score) and face_blendshapes.tflite (146 of the
landmarks in image pixels in, 52 scores out: mediapipe's "_neutral" and 51 ARKit shapes).
mediapipe's Tasks API cannot be installed beside numpy 2, so the models run on the same
LiteRT runtime as the geometric mode, with the pre/post-processing of mediapipe's
face_landmarker graphs (crops as FaceTracker; blendshape input as face_blendshapes_graph).
TongueOut, which the blendshape model does not give, is the landmark model's tongue-out score.
"""
from pathlib import Path
import zipfile
import zlib

import numpy as np

from face_capture.face_tracking import FaceResult, FaceTracker, load_interpreter, ssd_anchors
from face_common.arkit import CHANNEL_INDEX, NUM_BLENDSHAPES

DETECTOR, LANDMARKS, BLENDSHAPES = (
    'face_detector.tflite', 'face_landmarks_detector.tflite', 'face_blendshapes.tflite')
MAX_TASK_BYTES = 64 * 1024 * 1024          # the real file is 3.7 MB; refuse zip bombs
TASK_LANDMARK_SIZE = 256
MESH_POINTS, IRIS_START = 478, 468         # 468..472 subject's right iris, 473..477 left

# The landmarks face_blendshapes.tflite reads, in its order (mediapipe's
# face_blendshapes_graph.cc, kLandmarksSubsetIdxs).
BLENDSHAPE_INPUT_LANDMARKS = np.array([
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63,
    65, 66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132,
    133, 136, 144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162,
    163, 168, 172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269,
    270, 276, 282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314,
    317, 318, 321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378,
    379, 380, 381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415,
    454, 466, 468, 469, 470, 471, 472, 473, 474, 475, 476, 477])

# The blendshape model's 52 outputs (face_blendshapes_graph.cc, kBlendshapeNames); the first,
# "_neutral", is no ARKit channel.
MODEL_OUTPUT_NAMES = (
    '_neutral', 'browDownLeft', 'browDownRight', 'browInnerUp', 'browOuterUpLeft',
    'browOuterUpRight', 'cheekPuff', 'cheekSquintLeft', 'cheekSquintRight', 'eyeBlinkLeft',
    'eyeBlinkRight', 'eyeLookDownLeft', 'eyeLookDownRight', 'eyeLookInLeft', 'eyeLookInRight',
    'eyeLookOutLeft', 'eyeLookOutRight', 'eyeLookUpLeft', 'eyeLookUpRight', 'eyeSquintLeft',
    'eyeSquintRight', 'eyeWideLeft', 'eyeWideRight', 'jawForward', 'jawLeft', 'jawOpen',
    'jawRight', 'mouthClose', 'mouthDimpleLeft', 'mouthDimpleRight', 'mouthFrownLeft',
    'mouthFrownRight', 'mouthFunnel', 'mouthLeft', 'mouthLowerDownLeft', 'mouthLowerDownRight',
    'mouthPressLeft', 'mouthPressRight', 'mouthPucker', 'mouthRight', 'mouthRollLower',
    'mouthRollUpper', 'mouthShrugLower', 'mouthShrugUpper', 'mouthSmileLeft',
    'mouthSmileRight', 'mouthStretchLeft', 'mouthStretchRight', 'mouthUpperUpLeft',
    'mouthUpperUpRight', 'noseSneerLeft', 'noseSneerRight')
_MODEL_OUTPUTS = np.arange(1, len(MODEL_OUTPUT_NAMES))
_ARKIT_TARGETS = np.array([CHANNEL_INDEX[name.lower()] for name in MODEL_OUTPUT_NAMES[1:]])
TONGUE_OUT = CHANNEL_INDEX['tongueout']

# Tensor shapes the pipeline relies on: a different model is refused at load, not mid-stream.
_EXPECTED_INPUTS = {DETECTOR: (1, 128, 128, 3), LANDMARKS: (1, 256, 256, 3),
                    BLENDSHAPES: (1, len(BLENDSHAPE_INPUT_LANDMARKS), 2)}
_EXPECTED_OUTPUT_SIZES = {DETECTOR: (896 * 16, 896), LANDMARKS: (MESH_POINTS * 3, 1, 1),
                          BLENDSHAPES: (len(MODEL_OUTPUT_NAMES),)}


class TaskFileError(RuntimeError):
    """The face_landmarker.task is missing, unreadable or not mediapipe's face landmarker."""


def read_task(path) -> dict:
    """The three models of a face_landmarker.task, as bytes by member name."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise TaskFileError(f'face_landmarker_task {path}: no such file')
    try:
        with zipfile.ZipFile(path) as bundle:
            members = {info.filename: info for info in bundle.infolist()}
            missing = [name for name in (DETECTOR, LANDMARKS, BLENDSHAPES) if name not in members]
            if missing:
                raise TaskFileError(f'face_landmarker_task {path}: not a face landmarker bundle '
                                    f'(missing {", ".join(missing)})')
            if sum(members[name].file_size for name in _EXPECTED_INPUTS) > MAX_TASK_BYTES:
                raise TaskFileError(f'face_landmarker_task {path}: models larger than '
                                    f'{MAX_TASK_BYTES} bytes')
            return {name: bundle.read(name) for name in _EXPECTED_INPUTS}
    except TaskFileError:
        raise
    # zlib.error: a damaged deflate stream; RuntimeError: an encrypted member, or (as
    # NotImplementedError) a compression method zipfile does not have.
    except (zipfile.BadZipFile, zlib.error, RuntimeError, OSError, EOFError,
            ValueError) as exc:
        raise TaskFileError(f'face_landmarker_task {path}: unreadable ({exc})') from None


class TaskFaceTracker(FaceTracker):
    """FaceTracker on a face_landmarker.task: 478-point mesh (irises included) and the
    blendshape head; FaceResult.blendshapes holds the 52 ARKit values."""

    landmark_size = TASK_LANDMARK_SIZE

    def __init__(self, task_path, threads: int = 1):
        models = read_task(task_path)
        self.model_dir = Path(task_path).expanduser()
        self._models = {}
        for role, name in (('detector', DETECTOR), ('landmarks', LANDMARKS),
                           ('blendshapes', BLENDSHAPES)):
            try:
                interpreter = load_interpreter(threads, model_content=models[name])
            except (ValueError, RuntimeError) as exc:
                raise TaskFileError(f'face_landmarker_task {task_path}: {name} does not '
                                    f'load ({exc})') from None
            shape = tuple(int(n) for n in interpreter.get_input_details()[0]['shape'])
            sizes = tuple(int(np.prod(d['shape'])) for d in interpreter.get_output_details())
            if shape != _EXPECTED_INPUTS[name] or sizes != _EXPECTED_OUTPUT_SIZES[name]:
                raise TaskFileError(
                    f'face_landmarker_task {task_path}: {name} maps {shape} to outputs of '
                    f'{sizes} values, expected {_EXPECTED_INPUTS[name]} to '
                    f'{_EXPECTED_OUTPUT_SIZES[name]}')
            self._models[role] = interpreter
        self.anchors = ssd_anchors()
        self._roi = None

    def _finish(self, rgb, landmarks, presence, detected, extra) -> FaceResult:
        points = landmarks[BLENDSHAPE_INPUT_LANDMARKS, :2].astype(np.float32)
        (scores,) = self._run('blendshapes', points)
        blendshapes = np.zeros(NUM_BLENDSHAPES, np.float32)
        blendshapes[_ARKIT_TARGETS] = scores.reshape(-1)[_MODEL_OUTPUTS]
        blendshapes[TONGUE_OUT] = float(extra[0].reshape(-1)[0])   # its tongue_out score
        blendshapes = np.clip(np.nan_to_num(blendshapes, nan=0.0), 0.0, 1.0)
        irises = landmarks[IRIS_START:].reshape(2, 5, 3)
        return FaceResult(landmarks[:IRIS_START], irises, presence, detected, blendshapes)
