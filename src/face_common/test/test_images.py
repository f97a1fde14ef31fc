"""Image conversion round trips every supported encoding through sensor_msgs/Image, also
through rclpy's serialization (what a subscriber receives), and reads padded rows, the other
byte order and JPEG/PNG CompressedImages; inconsistent messages raise a clear ValueError."""
import cv2
import numpy as np
import pytest
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import CompressedImage, Image

from face_common.images import (
    SUPPORTED_ENCODINGS,
    array_to_image,
    compressed_from_bytes,
    compressed_image,
    compressed_to_array,
    encoding_layout,
    image_msg,
    image_to_array,
    image_to_bgr8,
)
from face_common.jpeg import CorruptJpeg, jpeg_to_bgr8


def random_array(encoding, height=5, width=7, seed=0):
    dtype, channels = encoding_layout(encoding)
    rng = np.random.default_rng(seed)
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype.kind == 'f':
        return rng.standard_normal(shape).astype(dtype) * 1e3
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


@pytest.mark.parametrize('encoding', SUPPORTED_ENCODINGS)
def test_every_encoding_round_trips_through_a_serialized_message(encoding):
    array = random_array(encoding)
    msg = array_to_image(array, encoding, frame_id='camera')
    dtype, channels = encoding_layout(encoding)
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    assert msg.step == 7 * channels * dtype.itemsize        # cv_bridge's layout, no padding
    assert len(msg.data) == msg.height * msg.step
    received = deserialize_message(serialize_message(msg), Image)
    back = image_to_array(received)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_the_named_encodings_cv_bridge_and_rqt_know_are_supported():
    for encoding in ('bgr8', 'rgb8', 'bgra8', 'rgba8', 'mono8', 'mono16', '8UC1', '8UC3',
                     '16UC1', '32FC1'):
        assert encoding in SUPPORTED_ENCODINGS


def test_passthrough_names_the_generic_encoding():
    assert array_to_image(np.zeros((2, 3, 3), np.uint8), 'passthrough').encoding == '8UC3'
    assert array_to_image(np.zeros((2, 3), np.float32), 'passthrough').encoding == '32FC1'
    assert array_to_image(np.zeros((2, 3, 2), np.uint16), 'passthrough').encoding == '16UC2'


def test_padded_rows_are_read_without_the_padding():
    array = random_array('bgr8', 4, 5)
    msg = Image(height=4, width=5, encoding='bgr8', step=5 * 3 + 9)
    padded = np.zeros((4, 5 * 3 + 9), np.uint8)
    padded[:, :15] = array.reshape(4, 15)
    padded[:, 15:] = 0xAB
    msg.data = padded.tobytes()
    np.testing.assert_array_equal(image_to_array(msg), array)


def test_big_endian_data_is_read_in_native_order():
    array = random_array('mono16', 3, 4)
    msg = Image(height=3, width=4, encoding='mono16', step=8, is_bigendian=1)
    msg.data = array.astype('>u2').tobytes()
    back = image_to_array(msg)
    np.testing.assert_array_equal(back, array)
    assert back.dtype == np.uint16
    floats = random_array('32FC1', 2, 3)
    msg = Image(height=2, width=3, encoding='32FC1', step=12, is_bigendian=1,
                data=floats.astype('>f4').tobytes())
    np.testing.assert_array_equal(image_to_array(msg), floats)


def test_image_msg_is_bgr8_with_the_stamp():
    from builtin_interfaces.msg import Time
    msg = image_msg(random_array('bgr8'), Time(sec=3, nanosec=4), 'robot_face')
    assert (msg.encoding, msg.header.stamp.sec, msg.header.frame_id) == ('bgr8', 3, 'robot_face')


@pytest.mark.parametrize('fields, reason', [
    (dict(encoding='yuv422_yuy2'), 'unsupported image encoding'),
    (dict(encoding=''), 'unsupported image encoding'),
    (dict(data=bytes(5 * 21 - 1)), 'data has 104 bytes'),
    (dict(data=bytes(5 * 21 + 1)), 'data has 106 bytes'),
    (dict(step=20), 'shorter than a bgr8 row'),
    (dict(height=6), 'data has 105 bytes'),
])
def test_inconsistent_messages_raise_a_clear_value_error(fields, reason):
    msg = array_to_image(random_array('bgr8', 5, 7))
    for name, value in fields.items():
        setattr(msg, name, value)
    with pytest.raises(ValueError, match=reason):
        image_to_array(msg)


def test_odd_steps_for_wide_elements_are_refused():
    msg = Image(height=1, width=2, encoding='16UC1', step=5, data=bytes(5))
    with pytest.raises(ValueError, match='whole number'):
        image_to_array(msg)


@pytest.mark.parametrize('array, encoding, reason', [
    (np.zeros((2, 2, 3), np.uint8), 'mono8', 'channel'),
    (np.zeros((2, 2), np.uint8), 'bgr8', 'channel'),
    (np.zeros((2, 2, 3), np.float32), 'bgr8', 'needs uint8'),
    (np.zeros(4, np.uint8), 'mono8', 'channel'),
    (np.zeros((2, 2), np.uint8), 'nv12', 'unsupported'),
])
def test_arrays_that_do_not_match_the_encoding_are_refused(array, encoding, reason):
    with pytest.raises(ValueError, match=reason):
        array_to_image(array, encoding)


def gradient(height=48, width=64):
    y, x = np.mgrid[0:height, 0:width]
    return np.dstack([x * 4, y * 5, (x + y) * 2]).astype(np.uint8)


def test_jpeg_and_png_compressed_images_round_trip():
    bgr = gradient()
    jpeg = deserialize_message(serialize_message(compressed_image(bgr, quality=95)),
                               CompressedImage)
    assert jpeg.format == 'bgr8; jpeg compressed bgr8'
    assert bytes(jpeg.data[:3]) == b'\xff\xd8\xff'
    decoded = compressed_to_array(jpeg)
    assert decoded.shape == bgr.shape
    assert np.abs(decoded.astype(int) - bgr).mean() < 3.0       # lossy, but close
    png = compressed_image(bgr, image_format='png')
    np.testing.assert_array_equal(compressed_to_array(png), bgr)           # lossless
    depth = random_array('mono16', 8, 9)
    np.testing.assert_array_equal(
        compressed_to_array(compressed_image(depth, image_format='png', encoding='mono16')),
        depth)


def test_jpeg_bytes_pass_through_unchanged():
    _, encoded = cv2.imencode('.jpg', gradient())
    msg = compressed_from_bytes(encoded.tobytes())
    assert bytes(msg.data) == encoded.tobytes()


def test_compressed_errors_are_value_errors():
    with pytest.raises(ValueError, match='does not decode'):
        compressed_to_array(compressed_from_bytes(b'\xff\xd8\xff not really a jpeg'))
    with pytest.raises(ValueError, match='does not decode'):
        compressed_to_array(CompressedImage())
    with pytest.raises(ValueError, match='format'):
        compressed_image(gradient(), image_format='webp')


def test_image_msg_refuses_what_is_not_bgr8_instead_of_casting():
    with pytest.raises(ValueError, match='needs uint8'):
        image_msg(np.zeros((2, 2, 3), np.uint16), None)
    with pytest.raises(ValueError, match='channel'):
        image_msg(np.zeros((2, 2), np.uint8), None)


@pytest.mark.parametrize('encoding, make', [
    ('bgr8', lambda bgr: bgr), ('8UC3', lambda bgr: bgr),
    ('rgb8', lambda bgr: bgr[..., ::-1]),
    ('bgra8', lambda bgr: np.dstack([bgr, np.full(bgr.shape[:2], 7, np.uint8)])),
    ('rgba8', lambda bgr: np.dstack([bgr[..., ::-1], np.full(bgr.shape[:2], 7, np.uint8)])),
])
def test_colour_encodings_are_read_as_bgr8(encoding, make):
    bgr = np.random.default_rng(3).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    msg = array_to_image(np.ascontiguousarray(make(bgr)), encoding)
    np.testing.assert_array_equal(image_to_bgr8(msg), bgr)


def test_mono_is_read_as_grey_bgr8_and_wide_encodings_are_refused():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4)
    bgr = image_to_bgr8(array_to_image(grey, 'mono8'))
    assert bgr.shape == (3, 4, 3) and (bgr == grey[..., None]).all()
    with pytest.raises(ValueError, match='mono16'):
        image_to_bgr8(array_to_image(grey.astype(np.uint16), 'mono16'))


@pytest.mark.parametrize('encoding', ['bgr8', 'rgb8', 'mono8', 'bgra8'])
@pytest.mark.parametrize('height, width', [(0, 4), (4, 0), (0, 0)])
def test_an_empty_image_is_refused_with_a_reason_not_an_opencv_error(encoding, height, width):
    channels = {'mono8': 1, 'bgra8': 4}.get(encoding, 3)
    msg = Image(height=height, width=width, encoding=encoding, step=width * channels, data=b'')
    with pytest.raises(ValueError, match='empty'):
        image_to_bgr8(msg)


def _noise_jpeg() -> bytes:
    image = np.random.default_rng(0).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    return cv2.imencode('.jpg', image)[1].tobytes()


@pytest.mark.parametrize('damage, message', [
    (lambda j: j[:len(j) // 2], 'Premature end of JPEG file'),
    (lambda j: j[:-2] + bytes(16) + j[-2:], 'Corrupt JPEG data: 13 extraneous bytes'),
    (lambda j: j[:3000] + bytes(50) + b'\xff\xd9', 'Corrupt JPEG data: premature end of data'),
    (lambda j: b'\xff\xd8\xff' + bytes(40), 'Could not determine subsampling'),
])
def test_a_corrupt_jpeg_is_an_error_naming_the_damage_and_stderr_stays_quiet(capfd, damage,
                                                                              message):
    """OpenCV's decoder prints libjpeg's warning on the process's stderr (fd 2, past any
    logger) and returns the damaged image; jpeg_to_bgr8 raises it instead."""
    corrupt = damage(_noise_jpeg())
    with pytest.raises(CorruptJpeg, match=message):
        jpeg_to_bgr8(corrupt)
    assert capfd.readouterr().err == ''
    cv2.imdecode(np.frombuffer(corrupt, np.uint8), cv2.IMREAD_COLOR)
    if message.startswith('Corrupt JPEG data'):                     # what it replaces
        assert message in capfd.readouterr().err


def test_a_clean_jpeg_decodes_to_the_same_pixels_as_opencv():
    for image in (np.random.default_rng(1).integers(0, 256, (48, 64, 3), dtype=np.uint8),
                  np.tile(np.arange(64, dtype=np.uint8), (48, 1))):       # colour, grey
        data = cv2.imencode('.jpg', image)[1].tobytes()
        decoded = jpeg_to_bgr8(data)
        assert decoded.shape == (48, 64, 3) and decoded.dtype == np.uint8
        assert np.array_equal(decoded, cv2.imdecode(np.frombuffer(data, np.uint8),
                                                    cv2.IMREAD_COLOR))
