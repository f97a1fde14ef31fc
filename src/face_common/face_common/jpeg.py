"""JPEG bytes to OpenCV pixels, ROS-free (the HTTP stream and the face tracker's core decode
without importing any message type)."""
import numpy as np
import simplejpeg


class CorruptJpeg(ValueError):
    """A JPEG that libjpeg cannot decode cleanly; the message is libjpeg's own."""


def jpeg_to_bgr8(data) -> np.ndarray:
    """JPEG bytes -> (H, W, 3) uint8 BGR, or CorruptJpeg. libjpeg-turbo through simplejpeg in
    strict mode: its warnings (truncated file, extraneous bytes, a damaged data segment) are
    errors here, where OpenCV's decoder prints them on the process's stderr and returns a
    partly grey image. Same pixels as cv2.imdecode on a clean JPEG."""
    try:
        return simplejpeg.decode_jpeg(data, colorspace='BGR', strict=True)
    except ValueError as exc:
        raise CorruptJpeg(str(exc) or 'JPEG does not decode') from None
