"""numpy <-> sensor_msgs/Image and CompressedImage, the project's own (cv_bridge is not on
PyPI), with cv_bridge's encodings and field layout so ROS tools read our images unchanged:
data row-major, step = width * channels * element size (padding allowed when reading),
is_bigendian = this machine's byte order (honoured when reading), channel order as the
encoding names it. Compressed frames follow image_transport's compressed plugin: format
'<encoding>; jpeg compressed bgr8' (or png), which rqt_image_view and Foxglove read.
"""
import re
import sys

import cv2
import numpy as np
from sensor_msgs.msg import CompressedImage, Image

_DEPTHS = {'8U': np.uint8, '8S': np.int8, '16U': np.uint16, '16S': np.int16,
           '32S': np.int32, '32F': np.float32, '64F': np.float64}
_NAMED = {'mono8': (np.uint8, 1), 'mono16': (np.uint16, 1),
          'bgr8': (np.uint8, 3), 'rgb8': (np.uint8, 3), 'bgra8': (np.uint8, 4),
          'rgba8': (np.uint8, 4), 'bgr16': (np.uint16, 3), 'rgb16': (np.uint16, 3),
          'bgra16': (np.uint16, 4), 'rgba16': (np.uint16, 4)}
_GENERIC = re.compile(r'^(8U|8S|16U|16S|32S|32F|64F)C([1-4])$')
_NATIVE_BIG_ENDIAN = sys.byteorder == 'big'
COMPRESSED_FORMATS = {'jpeg': '.jpg', 'png': '.png'}


def encoding_layout(encoding: str):
    """(numpy dtype, channels) of an encoding; ValueError for one this module does not know."""
    if encoding in _NAMED:
        dtype, channels = _NAMED[encoding]
        return np.dtype(dtype), channels
    match = _GENERIC.match(encoding)
    if not match:
        raise ValueError(f'unsupported image encoding {encoding!r} (supported: '
                         f'{", ".join(SUPPORTED_ENCODINGS)})')
    return np.dtype(_DEPTHS[match.group(1)]), int(match.group(2))


SUPPORTED_ENCODINGS = tuple(_NAMED) + tuple(
    f'{depth}C{channels}' for depth in _DEPTHS for channels in range(1, 5))


def passthrough_encoding(array: np.ndarray) -> str:
    """The generic encoding of an array, as cv_bridge's 'passthrough' names it ('8UC3')."""
    channels = 1 if array.ndim == 2 else array.shape[2]
    for depth, dtype in _DEPTHS.items():
        if array.dtype == dtype:
            return f'{depth}C{channels}'
    raise ValueError(f'no image encoding for dtype {array.dtype}')


def array_to_image(array: np.ndarray, encoding: str = 'bgr8', stamp=None,
                   frame_id: str = '') -> Image:
    """sensor_msgs/Image from an H x W (x C) array whose dtype and channels match `encoding`
    ('passthrough': the array's own generic encoding). No conversion, as in cv_bridge."""
    array = np.asarray(array)
    if encoding == 'passthrough':
        encoding = passthrough_encoding(array)
    dtype, channels = encoding_layout(encoding)
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] != channels) or (
            array.ndim == 2 and channels != 1):
        raise ValueError(f'{encoding} needs {channels} channel(s), got an array of shape '
                         f'{array.shape}')
    if array.dtype != dtype:
        raise ValueError(f'{encoding} needs {dtype}, got {array.dtype}')
    msg = Image()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(array.shape[0]), int(array.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(_NATIVE_BIG_ENDIAN)
    msg.step = msg.width * channels * dtype.itemsize
    msg.data = np.ascontiguousarray(array).tobytes()
    return msg


def image_to_array(msg: Image) -> np.ndarray:
    """The message's pixels as an H x W (x C) array in native byte order (read-only view when
    no copy is needed); ValueError when the fields do not describe the data."""
    dtype, channels = encoding_layout(msg.encoding)
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise ValueError(f'step {step} is shorter than a {msg.encoding} row of width {width} '
                         f'({row_bytes} bytes)')
    if step % dtype.itemsize:
        raise ValueError(f'step {step} is not a whole number of {dtype} elements')
    data = msg.data
    if len(data) != height * step:
        raise ValueError(f'data has {len(data)} bytes; height {height} x step {step} needs '
                         f'{height * step}')
    wire = dtype.newbyteorder('>' if msg.is_bigendian else '<')
    rows = np.frombuffer(data, wire, count=height * step // dtype.itemsize).reshape(
        height, step // dtype.itemsize)
    array = rows[:, :width * channels].reshape(
        (height, width) if channels == 1 else (height, width, channels))
    if wire != dtype:
        array = array.astype(dtype)            # the sender's byte order is not ours
    return array


_TO_BGR = {'bgr8': None, '8UC3': None, 'rgb8': cv2.COLOR_RGB2BGR, 'bgra8': cv2.COLOR_BGRA2BGR,
           'rgba8': cv2.COLOR_RGBA2BGR, 'mono8': cv2.COLOR_GRAY2BGR, '8UC1': cv2.COLOR_GRAY2BGR}


def image_to_bgr8(msg: Image) -> np.ndarray:
    """The pixels as H x W x 3 BGR uint8 (what OpenCV-based consumers such as the face tracker
    take), from any 8-bit colour or mono encoding; ValueError for the others."""
    if msg.encoding not in _TO_BGR:
        raise ValueError(f'cannot read a {msg.encoding!r} image as bgr8 (8-bit colour or mono '
                         f'only: {", ".join(_TO_BGR)})')
    array = image_to_array(msg)
    if array.size == 0:
        raise ValueError(f'empty {msg.encoding} image ({msg.height} x {msg.width})')
    code = _TO_BGR[msg.encoding]
    return array if code is None else cv2.cvtColor(np.ascontiguousarray(array), code)


def image_msg(bgr: np.ndarray, stamp, frame_id: str = '') -> Image:
    """A bgr8 Image from an OpenCV image (the renderers' and the camera's frames); ValueError
    for anything but H x W x 3 uint8 (no silent cast)."""
    return array_to_image(bgr, 'bgr8', stamp, frame_id)


def compressed_image(array: np.ndarray, stamp=None, frame_id: str = '', *,
                     image_format: str = 'jpeg', quality: int = 90,
                     encoding: str = 'bgr8') -> CompressedImage:
    """sensor_msgs/CompressedImage (JPEG or PNG) of an 8-bit BGR/mono image (16-bit mono:
    PNG only)."""
    if image_format not in COMPRESSED_FORMATS:
        raise ValueError(f'compressed format is one of {", ".join(COMPRESSED_FORMATS)}, '
                         f'not {image_format!r}')
    params = ([cv2.IMWRITE_JPEG_QUALITY, int(quality)] if image_format == 'jpeg'
              else [cv2.IMWRITE_PNG_COMPRESSION, 1])
    ok, encoded = cv2.imencode(COMPRESSED_FORMATS[image_format], array, params)
    if not ok:
        raise ValueError(f'OpenCV could not encode a {array.dtype} {array.shape} image as '
                         f'{image_format}')
    return compressed_from_bytes(encoded.tobytes(), stamp, frame_id, image_format=image_format,
                                 encoding=encoding)


def compressed_from_bytes(data: bytes, stamp=None, frame_id: str = '', *,
                          image_format: str = 'jpeg', encoding: str = 'bgr8') -> CompressedImage:
    """A CompressedImage around bytes already encoded (the HTTP stream's JPEGs, unchanged)."""
    msg = CompressedImage()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    msg.format = f'{encoding}; {image_format} compressed {encoding}'
    msg.data = data
    return msg


def compressed_to_array(msg: CompressedImage, flags: int = cv2.IMREAD_UNCHANGED) -> np.ndarray:
    """Decoded pixels of a CompressedImage (BGR for colour); ValueError if they do not decode."""
    data = np.frombuffer(bytes(msg.data), np.uint8)
    array = cv2.imdecode(data, flags) if data.size else None
    if array is None:
        raise ValueError(f'compressed image ({msg.format!r}, {data.size} bytes) does not decode')
    return array
