"""OpenCV capture on its own thread, for the camera node: a device index, a video file or a
network URL, read as fast as the source delivers (a device's driver queue never fills with
stale frames; a file is paced at its own frame rate), each frame handed to `on_frame` as
soon as it is read. A source that cannot be opened, or opens but delivers no frame (a
truncated file, a stream that accepts and then stalls), is reopened with exponential backoff
(the wait grows until a frame arrives); one that worked and stopped is reopened after the
shortest wait; a file at its end starts over (loop) or ends the capture.
ROS-free: the node stamps, publishes and reports.
"""
from dataclasses import dataclass
import threading
import time

import cv2

DEVICE, FILE, URL = 'device', 'file', 'url'
URL_TIMEOUT_MS = 5000            # opening or reading a network stream gives up after this


def source_kind(source) -> str:
    if isinstance(source, int):
        return DEVICE
    return URL if '://' in source else FILE


def parse_source(value):
    """A device index (int) from '0' or 0; anything else is a path or URL (str)."""
    text = str(value).strip()
    if not text:
        raise ValueError('source is empty: give a device index, a video file or a URL')
    return int(text) if text.isdigit() else text


@dataclass
class CaptureCounters:
    frames: int = 0
    open_failures: int = 0       # attempts to (re)open that failed
    reconnects: int = 0          # a source that worked stopped delivering and was reopened
    empty_opens: int = 0         # opened, but failed before delivering a single frame
    loops: int = 0               # a video file started over


class CaptureLoop:
    """Reads `source` on a daemon thread. on_frame(bgr) per frame; on_event(level, text) for
    what the node should log ('info', 'warn', 'error')."""

    def __init__(self, source, on_frame, on_event, *, loop_video=True, rate_hz=0.0,
                 width=0, height=0, backoff_s=(0.5, 5.0)):
        self.source = source
        self.kind = source_kind(source)
        self._on_frame = on_frame
        self._on_event = on_event
        self.loop_video = loop_video
        self.rate_hz = rate_hz
        self.size = (width, height)
        self.backoff_s = backoff_s
        self.counters = CaptureCounters()
        self.state = 'opening'
        self.source_fps = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name='camera_capture', daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 2.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _open(self):
        if self.kind == URL:
            return cv2.VideoCapture(self.source, cv2.CAP_ANY, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, URL_TIMEOUT_MS,
                cv2.CAP_PROP_READ_TIMEOUT_MSEC, URL_TIMEOUT_MS])
        capture = cv2.VideoCapture(self.source)
        if self.kind == DEVICE and capture.isOpened():
            capture.set(cv2.CAP_PROP_BUFFERSIZE, 1)           # the newest frame, not a queue
            width, height = self.size
            if width and height:
                capture.set(cv2.CAP_PROP_FRAME_WIDTH, width)
                capture.set(cv2.CAP_PROP_FRAME_HEIGHT, height)
        return capture

    def _run(self) -> None:
        delay = self.backoff_s[0]
        while not self._stop.is_set():
            capture = self._open()
            if not capture.isOpened():
                capture.release()
                self.counters.open_failures += 1
                self.state = 'reconnecting'
                self._on_event('error', f'cannot open {self.kind} {self.source!r} (attempt '
                                        f'{self.counters.open_failures}); retrying in '
                                        f'{delay:g} s')
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff_s[1])
                continue
            self.state = 'streaming'
            frames_before = self.counters.frames
            ended = self._read_frames(capture)
            capture.release()
            if self._stop.is_set():
                break
            if ended and self.loop_video:
                self.counters.loops += 1
                continue
            if ended:
                self.state = 'finished'
                self._on_event('info', f'video {self.source!r} ended (loop is off)')
                return
            self.state = 'reconnecting'
            delivered = self.counters.frames > frames_before
            if delivered:                           # it worked: the backoff starts over
                delay = self.backoff_s[0]
                self.counters.reconnects += 1
                self._on_event('warn', f'{self.kind} {self.source!r} stopped delivering frames; '
                                       f'reconnecting in {delay:g} s')
            else:
                self.counters.empty_opens += 1
                self._on_event('error', f'{self.kind} {self.source!r} opened but delivered no '
                                        f'frame (attempt {self.counters.empty_opens}); '
                                        f'retrying in {delay:g} s')
            self._stop.wait(delay)
            if not delivered:
                delay = min(delay * 2, self.backoff_s[1])

    def _read_frames(self, capture) -> bool:
        """Frames until the source fails (False) or a file ends (True)."""
        self.source_fps = capture.get(cv2.CAP_PROP_FPS) or 0.0
        rate = self.rate_hz or (self.source_fps if self.kind == FILE else 0.0)
        period = 1.0 / rate if rate > 0 else 0.0
        next_due = time.monotonic()
        read_any = False
        while not self._stop.is_set():
            ok, frame = capture.read()
            if not ok or frame is None:
                return self.kind == FILE and read_any
            read_any = True
            self.counters.frames += 1
            self._on_frame(frame)
            if period:
                next_due += period
                wait = next_due - time.monotonic()
                if wait > 0:
                    self._stop.wait(wait)
                elif wait < -period:              # fell behind (a loaded machine): resync
                    next_due = time.monotonic()
        return False
