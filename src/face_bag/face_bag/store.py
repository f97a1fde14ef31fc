"""rosbag2 bags (MCAP storage) of the face topics, written and read with `rosbags`.

Why not rosbag2_py: it is not on PyPI, and the bags must be made on machines without a ROS
install; `rosbags` writes the same format (metadata.yaml + <name>.mcap, version 9), which
`ros2 bag info` / `ros2 bag play` open on a ROS 2 install.

Crash safety: rosbags writes metadata.yaml and the MCAP footer only on close, and keeps the
current chunk in memory until it reaches 1 MiB. BagWriter closes the chunk and fsyncs every
`flush_period_s`, so a SIGKILL loses at most that much; `recover()` rebuilds a readable bag
from the complete chunks of an unclosed one (what `ros2 bag reindex` does on a ROS install).
"""
from contextlib import contextmanager
from dataclasses import dataclass, field
import errno
import functools
import os
from pathlib import Path
import shutil
import time

from rosbags.rosbag2 import Reader, StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from face_common import topics
from face_common.paths import share_path

FACE_MSGS = ('Blendshapes', 'ControlValues', 'StageTiming', 'LatencyTrace', 'LatencyStage',
             'LatencySummary')

# The topics of a session bag and their types (what `ros2 bag record` would discover), under
# their names in the bag (relative to the recorder's namespace, see face_common.topics).
FACE_TOPICS = {topic.bag_name: topic.msgtype for topic in topics.RECORDED}


class BagError(Exception):
    """A bag cannot be written, read or recovered; the message says which and why."""


def _face_msgs_dir() -> Path:
    """The installed face_msgs .msg files (the source tree when run from a checkout)."""
    return share_path('face_msgs', 'msg', Path(__file__).resolve().parents[2] / 'face_msgs' /
                      'msg')


@functools.lru_cache(maxsize=1)
def typestore():
    """ROS 2 Jazzy's standard types plus face_msgs, registered from the .msg definitions."""
    store = get_typestore(Stores.ROS2_JAZZY)
    directory = _face_msgs_dir()
    types = {}
    for name in FACE_MSGS:
        text = (directory / f'{name}.msg').read_text()
        types.update(get_types_from_msg(text, f'face_msgs/msg/{name}'))
    store.register(types)
    return store


def serialize(msg, msgtype: str) -> bytes:
    """CDR bytes of a rosbags message object (the same bytes rclpy sends)."""
    return bytes(typestore().serialize_cdr(msg, msgtype))


def deserialize(data: bytes, msgtype: str):
    return typestore().deserialize_cdr(data, msgtype)


def message_class(msgtype: str):
    return typestore().types[msgtype]


class BagWriter:
    """Writes serialized messages to a new MCAP bag, flushing complete chunks to disk
    every flush_period_s so a crash keeps everything but the last period.

    A write error (disk full, removed medium) raises BagError once; the chunks already on
    disk stay readable through recover().
    """

    def __init__(self, path, flush_period_s: float = 1.0):
        self.path = Path(path)
        if self.path.exists():
            raise BagError(f'{self.path} exists; a bag is never overwritten')
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.flush_period_s = flush_period_s
        self._writer = Writer(self.path, version=9, storage_plugin=StoragePlugin.MCAP)
        self._writer.open()
        self._connections = {}
        self._last_flush = time.monotonic()
        self.failed: str | None = None
        self.messages = 0
        self.bytes = 0

    def add_topic(self, topic: str, msgtype: str):
        key = (topic, msgtype)
        if key not in self._connections:
            if msgtype not in typestore().types:
                raise BagError(f'unknown message type {msgtype} for {topic}')
            self._connections[key] = self._writer.add_connection(
                topic, msgtype, typestore=typestore())
        return self._connections[key]

    def write(self, topic: str, msgtype: str, timestamp_ns: int, data: bytes) -> None:
        if self.failed:
            raise BagError(self.failed)
        connection = self.add_topic(topic, msgtype)
        try:
            self._writer.write(connection, int(timestamp_ns), data)
            self.messages += 1
            self.bytes += len(data)
            if time.monotonic() - self._last_flush >= self.flush_period_s:
                self.flush()
        except OSError as exc:
            self._fail(exc)

    def write_message(self, topic: str, msgtype: str, timestamp_ns: int, msg) -> None:
        self.write(topic, msgtype, timestamp_ns, serialize(msg, msgtype))

    def flush(self) -> None:
        """Close the in-memory chunk and put it on disk (rosbags' McapWriter keeps it in a
        BytesIO until 1 MiB; its close_chunk() is the one place that writes it)."""
        if self.failed:
            return
        storage = self._writer.storage
        try:
            if storage.chunk.bio.tell():
                storage.close_chunk()
            storage.bio.flush()
            os.fsync(storage.bio.fileno())
        except OSError as exc:
            self._fail(exc)
        self._last_flush = time.monotonic()

    def _fail(self, exc: OSError) -> None:
        self.failed = (f'writing {self.path} failed: {exc.strerror or exc}; recording stopped '
                       f'after {self.messages} messages. What was flushed before the failure '
                       f'is on disk: {_remedy(exc)}, then run face-bag-recover {self.path} '
                       'to make it readable')
        raise BagError(self.failed) from exc

    def close(self) -> None:
        """Finish the bag (MCAP footer + metadata.yaml). After a write failure the file is
        left as it is on disk, for recover()."""
        if self.failed:
            try:
                self._writer.storage.bio.close()
            except OSError:
                pass
            return
        try:
            self._writer.close()
        except OSError as exc:
            self._fail(exc)


@dataclass
class BagMessage:
    topic: str
    msgtype: str
    timestamp_ns: int          # receive (log) time
    data: bytes
    _decoded: object = field(default=None, init=False, repr=False, compare=False)

    def decode(self):
        """The message object, deserialized once and then kept (a player validates a bag
        on load and restamps the same objects later); BagError when the bytes are bad."""
        if self._decoded is None:
            try:
                self._decoded = deserialize(self.data, self.msgtype)
            except Exception as exc:        # rosbags' SerdeError, struct.error, IndexError...
                raise BagError(f'a {self.topic} message at {self.timestamp_ns} ns does not '
                               f'decode as {self.msgtype}: {exc}') from None
        return self._decoded


@contextmanager
def _corruption_is_a_bag_error(path: Path):
    """rosbags meets a corrupt closed bag with ReaderError, SerdeError, OverflowError,
    UnicodeDecodeError, OSError, or MemoryError for a length that claims gigabytes: each
    becomes one BagError naming the bag."""
    try:
        yield
    except BagError:
        raise
    except Exception as exc:
        raise BagError(f'{path}: the bag is corrupt or unreadable '
                       f'({type(exc).__name__}: {str(exc)[:200]})') from None


def read_messages(path, topics=None):
    """Every message of a closed bag in log-time order, optionally only some topics."""
    path = Path(path)
    if not (path / 'metadata.yaml').is_file():
        raise BagError(f'{path} has no metadata.yaml: not a closed bag '
                       f'(if its recorder crashed: face-bag-recover {path})')
    with _corruption_is_a_bag_error(path), Reader(path) as reader:
        connections = [c for c in reader.connections if topics is None or c.topic in topics]
        for connection, timestamp, data in reader.messages(connections=connections):
            yield BagMessage(connection.topic, connection.msgtype, timestamp, bytes(data))


def bag_info(path) -> dict:
    """What `ros2 bag info` shows: duration, message count, topics with types and counts."""
    path = Path(path)
    with _corruption_is_a_bag_error(path), Reader(path) as reader:
        return {'path': str(path), 'storage': 'mcap', 'duration_s': reader.duration / 1e9,
                'start_ns': reader.start_time, 'end_ns': reader.end_time,
                'messages': reader.message_count,
                'topics': {c.topic: {'type': c.msgtype, 'count': c.msgcount}
                           for c in reader.connections}}


@dataclass
class _Scan:
    """What the readable part of an unclosed bag's .mcap files holds."""

    channels: dict             # channel id -> (topic, message type)
    messages: list             # (log time, channel id, CDR bytes)
    truncated: bool
    size: int                  # bytes of .mcap read


def _scan(files) -> _Scan:
    from mcap.records import Channel, Message, Schema
    from mcap.stream_reader import StreamReader
    schemas, channels, messages = {}, {}, []
    truncated, size = False, 0
    for file in files:
        length = file.stat().st_size
        size += length
        with file.open('rb') as stream:
            # No record can be longer than its file: a corrupt length is not an allocation.
            reader = StreamReader(stream, skip_magic=False, record_size_limit=length)
            try:
                for record in reader.records:
                    if isinstance(record, Schema):
                        schemas[record.id] = record.name
                    elif isinstance(record, Channel):
                        channels[record.id] = (record.topic, schemas.get(record.schema_id))
                    elif isinstance(record, Message) and record.channel_id in channels:
                        messages.append((record.log_time, record.channel_id, record.data))
            # The mcap reader meets a torn or corrupt tail as McapError, EOFError, struct.error,
            # OverflowError, UnicodeDecodeError or a decompressor's own error: whichever it
            # is, the records before it are kept and the rest of this file is the tail.
            except Exception:
                truncated = True
    return _Scan(channels, messages, truncated, size)


def recover(path) -> dict:
    """Make an unclosed bag (its recorder killed or out of disk) readable again.

    Reads every message of the complete chunks of its .mcap, writes them into a new closed
    bag at the same path, and keeps the original file beside it as <path>.crashed/.
    Returns what was recovered. A bag that is already closed is left alone. Any failure is a
    BagError that says what to do, and leaves the bag as it was.
    """
    path = Path(path)
    if (path / 'metadata.yaml').is_file():
        return {'path': str(path), 'recovered': False, 'messages': bag_info(path)['messages']}
    files = sorted(path.glob('*.mcap'))
    if not files:
        raise BagError(f'{path}: no .mcap file to recover')
    crashed = path.with_name(path.name + '.crashed')
    if crashed.exists():
        raise BagError(f'{crashed} exists from an earlier recovery; move it away first')
    scan = _scan(files)
    free = shutil.disk_usage(path.parent).free
    if free < scan.size:
        raise BagError(_no_space(path, scan.size, f'only {free / 1e6:.1f} MB are free'))
    staging = path.with_name(path.name + '.recovering')
    if staging.exists():
        shutil.rmtree(staging)
    kept, unknown, corrupt = 0, 0, 0
    writer = None
    try:
        writer = BagWriter(staging, flush_period_s=3600)
        for timestamp, channel_id, data in sorted(scan.messages, key=lambda m: m[0]):
            topic, msgtype = scan.channels[channel_id]
            if msgtype not in typestore().types:
                unknown += 1
            elif not _decodes(BagMessage(topic, msgtype, timestamp, data)):
                corrupt += 1            # dropped, so every reader can decode all of the bag
            else:
                writer.write(topic, msgtype, timestamp, data)
                kept += 1
        writer.close()
    except (BagError, OSError) as exc:
        if writer is not None:
            writer.close()                 # after a failure: only releases the file
        shutil.rmtree(staging, ignore_errors=True)
        cause = exc.__cause__ if isinstance(exc.__cause__, OSError) else exc
        why = getattr(cause, 'strerror', None) or str(cause)
        if _out_of_space(cause):
            raise BagError(_no_space(path, scan.size, why)) from None
        raise BagError(f'cannot write the recovered copy of {path} ({why}). The bag is '
                       f'unchanged: {_remedy(cause)}, then run face-bag-recover {path} '
                       'again') from None
    path.rename(crashed)
    staging.rename(path)    # metadata.yaml names its .mcap relative to the folder
    return {'path': str(path), 'recovered': True, 'messages': kept,
            'unknown_type_messages': unknown, 'corrupt_messages': corrupt,
            'truncated_tail': scan.truncated, 'original': str(crashed)}


def _decodes(message: BagMessage) -> bool:
    try:
        message.decode()
    except BagError:
        return False
    return True


def _out_of_space(exc) -> bool:
    """A write refused for room: a full disk, a quota, or a file-size limit."""
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _remedy(exc) -> str:
    """What to do before trying again, for the error that stopped a write."""
    if _out_of_space(exc):
        return 'free some space'
    if isinstance(exc, OSError) and exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return 'make the folder writable'
    return 'fix the cause'


def _no_space(path: Path, needed: int, why: str) -> str:
    return (f'cannot write the recovered copy of {path} ({why}); it needs about '
            f'{needed / 1e6:.1f} MB free in {path.parent}. The bag is unchanged: free some '
            f'space, then run face-bag-recover {path} again')
