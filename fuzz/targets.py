"""The fuzz targets: each calls a real public parser or entry point of the project.

Bulk content (the cells of a take, a sequence of control ticks, edits of a profile) comes from
a random.Random seeded by a hypothesis draw (RANDOMS): one draw instead of thousands keeps an
input cheap, and the run stays deterministic; the structure (which kind of input, where to
corrupt it) comes from hypothesis draws."""
import functools
import json
import math
from pathlib import Path
import random
import shutil
import struct

from hypothesis import strategies as st
import numpy as np
import yaml

from fuzz.harness import Target


class SeededRandom(random.Random):
    """A random.Random that shows its seed, so a failing input printed by the harness can be
    rebuilt: check(value) with SeededRandom(seed) in its place."""

    def __init__(self, seed: int):
        super().__init__(seed)
        self.seed_value = seed

    def __repr__(self) -> str:
        return f'SeededRandom({self.seed_value})'


RANDOMS = st.integers(0, 2**64 - 1).map(SeededRandom)

# -- byte mutations of real inputs ------------------------------------------------------------
EXTREME_LENGTHS = (0, 1, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1)
MUTATION_KINDS = ('set', 'insert', 'delete', 'truncate', 'length')


def mutations(rng, most: int = 4, chance: float = 1.0) -> list:
    """With probability `chance`, up to `most` edits: (kind, position, bytes, length)."""
    if rng.random() >= chance:
        return []
    return [(rng.choice(MUTATION_KINDS), rng.randrange(2**20),
             rng.randbytes(rng.randint(1, 8)), rng.choice(EXTREME_LENGTHS))
            for _ in range(rng.randint(0, most))]


def mutate(data: bytes, edits) -> bytes:
    """Overwrite, insert, delete, truncate, or write an extreme 4/8-byte length field."""
    out = bytearray(data)
    for kind, position, chunk, length in edits:
        at = position % (len(out) + 1)
        if kind == 'set':
            out[at:at + len(chunk)] = chunk
        elif kind == 'insert':
            out[at:at] = chunk
        elif kind == 'delete':
            del out[at:at + len(chunk)]
        elif kind == 'truncate':
            del out[at:]
        else:
            size = 4 if length < 2**32 and chunk[0] % 2 else 8
            order = '<' if chunk[-1] % 2 else '>'
            out[at:at + size] = struct.pack(f'{order}{"I" if size == 4 else "Q"}', length)
    return bytes(out)


def _write(workdir: str, name: str, data: bytes) -> Path:
    path = Path(workdir) / name
    path.write_bytes(data)
    return path


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


# -- Live Link packets ---------------------------------------------------------------------------
def _text(rng, most: int) -> str:
    """Any text that encodes to UTF-8 (no lone surrogates): ASCII, accents, CJK, emoji."""
    pools = ((32, 127), (0, 32), (160, 0x2FF), (0x4E00, 0x4F00), (0x1F600, 0x1F650))
    return ''.join(chr(rng.randrange(*rng.choice(pools))) for _ in range(rng.randint(0, most)))


def _livelink_frame(rng):
    values = np.frombuffer(rng.randbytes(244), '>f4').astype(np.float32)
    values = np.where(np.isfinite(values), values, np.float32(0.5))
    sub_frame = float(np.frombuffer(rng.randbytes(4), '>f4')[0])
    return (_text(rng, 40), _text(rng, 20), rng.randint(-2**31, 2**31 - 1),
            sub_frame if math.isfinite(sub_frame) else 0.25, rng.randint(-2**31, 2**31 - 1),
            rng.randint(-2**31, 2**31 - 1), values, rng.random() < 0.8)


def _livelink_base(frame) -> bytes:
    from face_capture.livelink import pack_packet
    device, subject, number, sub, num, den, values, face = frame
    return pack_packet(device, subject, number, values if face else None, sub, num, den)


def check_livelink(value, workdir) -> None:
    from face_capture.livelink import LiveLinkError, pack_frame, parse_packet
    kind, rng = value
    frame = _livelink_frame(rng)
    if kind == 'frame':                                 # parse(pack(x)) == x, field by field
        data = _livelink_base(frame)
        parsed = parse_packet(data)
        device, subject, number, sub, num, den, values, face = frame
        if not face:
            _require(parsed is None, 'a no-face packet parsed as a frame')
            return
        _require((parsed.device_id, parsed.subject, parsed.frame_number, parsed.sub_frame,
                  parsed.rate_numerator, parsed.rate_denominator) ==
                 (device, subject, number, sub, num, den), f'fields changed: {parsed}')
        _require(np.array_equal(parsed.values, values), 'values changed in the round trip')
        return
    if kind == 'mutated':
        data = mutate(_livelink_base(frame), mutations(rng))
    else:
        data = rng.randbytes(rng.randint(0, 400))
    try:
        parsed = parse_packet(data)
    except LiveLinkError:
        return
    if parsed is not None:                              # what is accepted re-packs exactly
        _require(np.isfinite(parsed.values).all(), 'accepted non-finite values')
        _require(pack_frame(parsed) == data, 'an accepted packet does not re-pack to its bytes')


LIVELINK = st.tuples(st.sampled_from(('frame', 'mutated', 'mutated', 'noise')), RANDOMS)


# -- CSV takes ---------------------------------------------------------------------------------
BAD_CELLS = ('', 'nan', 'inf', '-inf', '1e999', 'x', '"', '"a,b"', '0x1', '١', ' 1 ', '9' * 400,
             '1_0', '\x00')


def _row_values(rng, count: int) -> list:
    """Mostly a clean row; some rows carry a few bad cells."""
    cells = [f'{rng.uniform(-1, 1.5):.6f}' for _ in range(count)]
    if rng.random() < 0.3:
        for _ in range(rng.randint(1, 3)):
            cells[rng.randrange(count)] = rng.choice(BAD_CELLS)
    return cells


def _timecode(rng) -> str:
    if rng.random() < 0.9:
        return (f'{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}:'
                f'{rng.uniform(0, 60):06.3f}')
    return rng.choice(('10000:00:00:00.000', '99:99:99:99.999', '-1:00:00:00', '00:00:00',
                       '00:00:00:nan', '00:00:00:inf', 'x:y:z:w', '', '9' * 5000 + ':0:0:0',
                       '23:59:59:59.999', '00:00:00:1e308'))


def _take_text(rng, header_kind: str, rows: int) -> str:
    from face_common.arkit import CHANNEL_NAMES
    names = list(CHANNEL_NAMES)
    if header_kind == 'shuffled':
        rng.shuffle(names)
    elif header_kind == 'lower':
        names = [n.lower() for n in names]
    elif header_kind == 'missing':
        names.pop(rng.randrange(len(names)))
    elif header_kind == 'duplicate':
        names.insert(rng.randrange(len(names)), rng.choice(names))
    header = ['Timecode', rng.choice(('BlendShapeCount', 'BlendshapeCount')), *names]
    if header_kind == 'no-timecode':
        header[0] = 'Time'
    lines = [','.join(header)]
    for _ in range(rows):
        cells = [_timecode(rng), '61', *_row_values(rng, len(names))]
        if rng.random() < 0.1:
            del cells[rng.randrange(len(cells)):]
        lines.append(','.join(cells))
    return '\n'.join(lines) + rng.choice(('\n', '', '\r\n', '\n\n'))


def check_take(value, workdir) -> None:
    import csv

    from face_capture.livelink import pack_packet
    from face_capture.takes import TakeFormatError, read_take
    rng, header_kind, rows, encoding = value
    text = _take_text(rng, header_kind, rows)
    if rng.random() < 0.01:                             # over the csv module's 128 KiB limit
        text += '00:00:00:00.000,61,' + 'x' * (128 * 1024 + 1) + '\n'
    data = mutate(text.encode(encoding, errors='replace'), mutations(rng, chance=0.3))
    path = _write(workdir, 'take.csv', data)
    try:
        take = read_take(path)
    except TakeFormatError:
        return
    with path.open(newline='', encoding='utf-8-sig') as handle:
        records = sum(1 for _ in csv.reader(handle)) - 1
    _require(len(take) + take.skipped_rows == records, 'rows neither kept nor counted')
    _require(take.values.shape == (len(take), 61) and np.isfinite(take.values).all(),
             'non-finite or misshapen values kept')
    _require(take.times[0] == 0 and np.all(np.diff(take.times) >= 0), 'times not sorted')
    for number, values in zip(take.frame_numbers, take.values, strict=True):
        pack_packet('fuzz', 'take', int(number), values)    # face-send-take's packet


TAKES = st.tuples(RANDOMS,
                  st.sampled_from(('canonical', 'canonical', 'shuffled', 'lower', 'missing',
                                   'duplicate', 'no-timecode')),
                  st.integers(0, 12), st.sampled_from(('utf-8', 'utf-8', 'utf-8-sig', 'latin-1',
                                                       'utf-16')))


# -- dashboard messages ------------------------------------------------------------------------
def _json_value(rng, depth: int = 0):
    roll = rng.random()
    if depth < 3 and roll < 0.15:
        return [_json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))]
    if depth < 3 and roll < 0.3:
        return {_text(rng, 6): _json_value(rng, depth + 1) for _ in range(rng.randint(0, 3))}
    return rng.choice((None, True, False, rng.randint(-2**70, 2**70), rng.uniform(-1e9, 1e9),
                       math.nan, math.inf, 10**rng.randint(0, 400), _text(rng, 80),
                       rng.choice(('estop', 'resume', 'enable', 'reset', ''))))


def _dashboard_text(kind: str, rng):
    if kind == 'request':
        request = {key: _json_value(rng) for key in ('action', 'id', 'confirm', 'x')
                   if rng.random() < 0.7}
        return json.dumps(request)
    if kind == 'text':
        return _text(rng, 300)
    if kind == 'bytes':
        return rng.randbytes(rng.randint(0, 300))
    depth = rng.randint(1, 200_000)
    return '[' * depth + ']' * (depth % 2) + '{"action":' * (depth // 3)


def check_dashboard(value, workdir) -> None:
    from face_dashboard.page_requests import MAX_NAME_CHARS, BadRequest, parse_page_request
    try:
        request = parse_page_request(_dashboard_text(*value))
    except BadRequest:
        return
    action = request['action']
    _require(isinstance(action, str) and 0 < len(action) <= MAX_NAME_CHARS, 'bad action kept')
    json.dumps({'type': 'result', 'id': request['id'], 'action': action},
               allow_nan=False)                         # the reply can always echo the id


DASHBOARD = st.tuples(st.sampled_from(('request', 'request', 'text', 'bytes', 'deep')), RANDOMS)


# -- control values into the safety layer -----------------------------------------------------
@functools.cache
def _profile(name: str):
    from face_actuation.profile import load_profile
    return load_profile(name, '/nonexistent')


def _command_values(rng, n: int):
    roll = rng.random()
    if roll < 0.6:
        return [rng.random() for _ in range(n)]
    if roll < 0.75:
        return [rng.uniform(-1e6, 1e6) for _ in range(n)]
    if roll < 0.9:
        return [rng.choice((math.nan, math.inf, -math.inf, rng.random())) for _ in range(n)]
    return [rng.random() for _ in range(rng.choice((0, 1, n - 1, n + 1)))]


MIN_TICK_S = 1e-4                   # the actuation node's floor on dt


def _tick(rng, period: float) -> float:
    roll = rng.random()
    if roll < 0.85:
        return rng.uniform(period / 4, 3 * period)        # the node's tick spacing
    if roll < 0.95:
        return MIN_TICK_S
    return rng.uniform(0.1, 5.0)                          # a stall


def _stamp(rng, now: float, last):
    roll = rng.random()
    if roll < 0.6:
        return now - rng.uniform(0, 0.05)
    return rng.choice((None, 0.0, now + 1e6, 2147483647.0, now - 10.0, -1.0,
                       last if last is not None else now))


def _beyond_range(positions: np.ndarray) -> np.ndarray:
    """How far each position lies outside [0, 1] (0 inside)."""
    return np.maximum(np.maximum(-positions, positions - 1.0), 0.0)


def check_safety(value, workdir) -> None:
    from face_actuation.safety import SafetyLayer
    rng, robot, ticks = value
    profile = _profile(robot)
    layer = SafetyLayer(profile)
    n, period = profile.num_motors, 1.0 / profile.control_rate_hz
    now = rng.uniform(0, 1e6)
    start = [rng.choice((math.nan, rng.random(), rng.uniform(-2, 3))) for _ in range(n)]
    layer.power_up(start)
    # a motor measured outside its range eases in; none may ever move further out
    outside = _beyond_range(np.nan_to_num(np.asarray(start), nan=0.5))
    stamp = None
    for _ in range(ticks):
        roll = rng.random()
        if roll < 0.7:
            stamp = _stamp(rng, now, stamp)
            layer.command(_command_values(rng, n), now, stamp)
        elif roll < 0.75:
            layer.estop()
        elif roll < 0.8:
            layer.enable()
        dt = _tick(rng, period)
        now += dt
        out = layer.update(dt)
        if out is None:
            _require(layer.limp, 'no positions while not limp')
            continue
        out = np.asarray(out)
        _require(out.shape == (n,), f'{out.shape} positions for {n} motors')
        _require(np.isfinite(out).all(), f'positions not finite: {out}')
        beyond = _beyond_range(out)
        _require((beyond <= outside + 1e-12).all(),
                 f'positions moved further outside [0, 1]: {out}')
        outside = beyond


SAFETY = st.tuples(RANDOMS,
                   st.sampled_from(('micheal', 'hobbs', 'ameca')), st.integers(1, 24))


# -- the Ameca follower ------------------------------------------------------------------------
@functools.cache
def _follower_sockets():
    """A real ZeroMQ pair (inproc): the test sends, the follower polls its own socket."""
    import zmq
    context = zmq.Context.instance()
    receiver = context.socket(zmq.PAIR)
    receiver.bind('inproc://fuzz-ameca')
    sender = context.socket(zmq.PAIR)
    sender.connect('inproc://fuzz-ameca')
    return sender, receiver


def _demand_part(rng) -> bytes:
    roll = rng.random()
    if roll < 0.8:
        return f'{rng.uniform(-200, 200):.4f}'.encode()
    return rng.choice((b'', b'nan', b'inf', b'-1e999', b'\xff\xfe', b'1_000', b' 2 ',
                       b'9' * 5000, b'0x10', '٣'.encode()))


def check_ameca(value, workdir) -> None:
    import time

    from face_actuation.tritium.ameca_follower import X2C_CONTROLS, DemandFollower
    rng, messages, offsets = value
    sender, receiver = _follower_sockets()
    follower = DemandFollower(receiver)
    ranges = {name: (lo, hi) for name, lo, hi, _ in follower.controls}
    for _ in range(messages):
        count = rng.choice((len(X2C_CONTROLS), len(follower.controls), 1, 29, 31, 33, 100))
        sender.send_multipart([_demand_part(rng) for _ in range(count)])
    now = rng.uniform(0, 1e6)
    deadline = time.monotonic() + 2.0
    while follower.received + follower.rejected < messages and time.monotonic() < deadline:
        follower.poll(now)
    _require(follower.received + follower.rejected == messages, 'a message was neither '
             'applied nor rejected')
    for offset in offsets:
        demands = follower.demands(now + offset)
        _require(set(demands) == set(ranges), 'controls missing from the demands')
        for name, demand in demands.items():
            lo, hi = ranges[name]
            _require(math.isfinite(demand) and lo <= demand <= hi,
                     f'{name}: {demand} outside [{lo}, {hi}]')


AMECA = st.tuples(RANDOMS, st.integers(0, 6),
                  st.lists(st.floats(-10, 1e6), min_size=1, max_size=3))


# -- bag recovery --------------------------------------------------------------------------------
@functools.cache
def _unclosed_bag() -> bytes:
    """The .mcap of a small bag whose recorder died: 2 topics, a chunk per message pair."""
    import tempfile

    from face_bag import messages
    from face_bag.store import BagWriter
    from face_common import topics
    with tempfile.TemporaryDirectory() as directory:
        writer = BagWriter(Path(directory) / 'bag', flush_period_s=0.0)
        for i in range(4):
            writer.write_message(topics.HUMAN_BLENDSHAPES.bag_name, messages.BLENDSHAPES,
                                 i * 1000,
                                 messages.blendshapes(np.full(61, 0.5), i, source='f',
                                                      frame_number=i))
            writer.write_message(topics.COMMAND.bag_name, messages.CONTROL_VALUES, i * 1000 + 5,
                                 messages.control_values([0.5, 0.25], ['a', 'b'], i,
                                                         robot='r', source='f'))
        writer._writer.storage.bio.close()             # killed: no footer, no metadata.yaml
        return next((Path(directory) / 'bag').glob('*.mcap')).read_bytes()


def check_bag(value, workdir) -> None:
    from mcap.reader import make_reader

    from face_bag.store import BagError, deserialize, recover
    rng, = value
    folder = Path(workdir) / 'bag'
    for leftover in (folder, Path(workdir) / 'bag.crashed'):
        shutil.rmtree(leftover, ignore_errors=True)
    folder.mkdir()
    _write(str(folder), 'bag_0.mcap', mutate(_unclosed_bag(), mutations(rng)))
    try:
        result = recover(folder)
    except BagError:
        return
    _require((folder / 'metadata.yaml').is_file(), 'a recovered bag without metadata.yaml')
    # Read back through the closed file's index (what a player uses), without rosbags' YAML
    # round trip, which would triple the cost of an input.
    channels, stamps = {}, []
    with next(folder.glob('*.mcap')).open('rb') as stream:
        for schema, channel, message in make_reader(stream).iter_messages():
            deserialize(message.data, schema.name)      # every kept message decodes
            channels[channel.topic] = schema.name
            stamps.append(message.log_time)
    _require(len(stamps) == result['messages'], 'recovered count differs from the bag')
    _require(stamps == sorted(stamps), 'recovered messages out of order')


BAG = st.tuples(RANDOMS)


# -- launch files and arguments ----------------------------------------------------------------
FRAGMENTS = ('$(', ')', '$(var a)', '$(var b)', '$(var take)', '$(var', 'var', ' ', 'a', 'b',
             'x', '$(dirname)', '$(env HOME)', '$(env NO_SUCH x y)', '$(find-pkg-share',
             '$(find-pkg-share face_capture)', '$(find-pkg-share nope)', '$(command ls)',
             '"', "'", 'true', 'false', 'face_capture', 'send_take', '$(var $(var a))', '\\',
             '$(var take)x', '$(env $(var a) $(var b))')
NAMES = ('a', 'b', 'take', 'c')
ENTRY_FIELDS = {
    'arg': ('name', 'default', 'description'), 'let': ('name', 'value'),
    'node': ('pkg', 'exec', 'name', 'args', 'if', 'unless', 'param', 'remap', 'on_exit',
             'namespace', 'output'),
    'include': ('file', 'arg', 'if', 'unless')}


def _launch_text(rng) -> str:
    return ''.join(rng.choice(FRAGMENTS) for _ in range(rng.randint(0, 6)))


def _launch_value(rng, field: str = ''):
    roll = rng.random()
    if field == 'name' and roll < 0.6:
        return rng.choice(NAMES)
    if field == 'pkg' and roll < 0.6:
        return 'face_capture'
    if field == 'exec' and roll < 0.6:
        return 'send_take'
    if field == 'on_exit' and roll < 0.8:
        return 'shutdown'
    if field in ('if', 'unless') and roll < 0.7:
        return rng.choice(('true', 'false', '$(var a)', 'True', '1', 'off'))
    if field == 'file' and roll < 0.6:
        return rng.choice(('$(dirname)/main.launch.yaml', '$(dirname)/child.launch.yaml',
                           'none.yaml'))
    if field in ('param', 'remap', 'arg') and roll < 0.7:
        keys = {'param': ('name', 'value', 'from'), 'remap': ('from', 'to'),
                'arg': ('name', 'value')}[field]
        return [{key: _launch_value(rng, key) for key in keys if rng.random() < 0.8}
                for _ in range(rng.randint(0, 2))]
    if roll < 0.5:
        return _launch_text(rng)
    if roll < 0.97:
        return rng.choice(('a', 'x', 'true', 'false', '$(var a)', 'face_capture', 5, True))
    return rng.choice((None, 2.5, [], ['x'], {'a': 1}, 'shutdown', 'restart', ''))


def _launch_document(rng) -> dict:
    entries = []
    for _ in range(rng.randint(0, 6)):
        tag = rng.choice((*ENTRY_FIELDS, *ENTRY_FIELDS, 'timer'))
        fields = ENTRY_FIELDS.get(tag, ('period',))
        entry = {field: _launch_value(rng, field) for field in fields if rng.random() < 0.5}
        entry.update({field: _launch_value(rng, field) for field in fields[:2]
                      if rng.random() < 0.9})
        entries.append({tag: entry} if rng.random() < 0.98 else _launch_value(rng))
    return {'launch': entries}


def check_launch(value, workdir) -> None:
    from face_common.launch_runner import (
        MAX_VALUE_CHARS,
        LaunchFileError,
        load_launch_file,
        parse_arguments,
    )
    rng, = value
    main = Path(workdir) / 'main.launch.yaml'
    _write(workdir, 'child.launch.yaml', _yaml_text(_launch_document(rng)))
    main.write_bytes(mutate(_yaml_text(_launch_document(rng)), mutations(rng, 1, chance=0.2)))
    argv = [f'{rng.choice(NAMES)}:={_launch_text(rng)}' if rng.random() < 0.95 else
            _launch_text(rng) for _ in range(rng.randint(0, 2))]
    try:
        specs = load_launch_file(main, parse_arguments(argv))
    except LaunchFileError:
        return
    for spec in specs:
        command = spec.command('/bin/true')
        _require(all(isinstance(part, str) and len(part) <= 4 * MAX_VALUE_CHARS
                     for part in command), 'a command part is not bounded text')


LAUNCH = st.tuples(RANDOMS)


# -- robot profiles and calibration files ------------------------------------------------------
PROFILE_MOTORS = 4      # of each bundled robot: the whole file made one input cost 18 ms


@functools.cache
def _profile_document(name: str):
    """A bundled profile cut to its first motors (the hold rules' motors kept): the same
    schema, every section present, small enough to parse quickly."""
    from face_actuation.profile import profiles_dir
    document = yaml.safe_load((profiles_dir() / f'{name}.yaml').read_text())
    held = {rule['motor'] for rule in document['safety'].get('hold_rules', [])}
    motors = [m for i, m in enumerate(document['motors'])
              if i < PROFILE_MOTORS or m['name'] in held]
    names = {m['name'] for m in motors}
    document['motors'] = motors
    document['pairs'] = [p for p in document.get('pairs', []) if set(p) <= names]
    effects = document.get('twin', {}).get('effects', {})
    for name in set(effects) - names:
        del effects[name]
    return document


def _random_scalar(rng):
    return rng.choice((None, True, -1, 0, 1, 0.5, 1e308, -1e308, math.inf, math.nan, '', 'x',
                       'limp', 'hold', 'maestro', 'above', 2**70, [], {}, [1, 2],
                       {'min': 0}, rng.uniform(-5000, 5000), rng.randint(-5000, 5000)))


def _mutate_tree(rng, node, edits: int):
    """Replace, delete or add a field somewhere in a parsed YAML document."""
    for _ in range(edits):
        parent, key = None, None
        current = node
        while isinstance(current, (dict, list)) and current and rng.random() < 0.75:
            parent = current
            key = rng.choice(list(current)) if isinstance(current, dict) else \
                rng.randrange(len(current))
            current = current[key]
        if parent is None:
            continue
        roll = rng.random()
        if roll < 0.6:
            parent[key] = _random_scalar(rng)
        elif roll < 0.85:
            del parent[key]
        elif isinstance(parent, dict):
            parent[rng.choice(('extra', 'min', 'max', 'neutral', 'unit', 'motors'))] = \
                _random_scalar(rng)
        else:
            parent.append(_random_scalar(rng))
    return node


def _yaml_text(document) -> bytes:
    return yaml.dump(document, Dumper=yaml.CSafeDumper, allow_unicode=True).encode()


def _check_valid_profile(profile) -> None:
    for motor in profile.motors:
        numbers = (motor.min, motor.max, motor.neutral, motor.max_velocity,
                   motor.max_acceleration)
        _require(all(math.isfinite(x) for x in numbers), f'{motor.name}: non-finite field')
        _require(motor.min < motor.max and motor.min <= motor.neutral <= motor.max,
                 f'{motor.name}: limits or neutral out of order')
    neutral = profile.neutral
    _require(np.isfinite(neutral).all() and neutral.min() >= 0 and neutral.max() <= 1,
             'normalised neutral outside [0, 1]')
    profile.digest()


def check_profile(value, workdir) -> None:
    import copy

    from face_actuation.profile import ProfileError, load_profile
    rng, robot, edits = value
    document = _mutate_tree(rng, copy.deepcopy(_profile_document(robot)), edits)
    text = mutate(_yaml_text(document), mutations(rng, 2, chance=0.3))
    path = _write(workdir, 'robot.yaml', text)
    try:
        profile = load_profile(path, Path(workdir) / 'no-calibration')
    except ProfileError:
        return
    _check_valid_profile(profile)


PROFILES = st.tuples(RANDOMS,
                     st.sampled_from(('micheal', 'hobbs', 'ameca')), st.integers(0, 4))


def _robot_calibration(rng, profile) -> dict:
    motors = {}
    for motor in rng.sample(profile.motors, k=min(3, len(profile.motors))):
        span = motor.max - motor.min
        motors[motor.name] = {field: rng.uniform(motor.min - span, motor.max + span)
                              for field in ('min', 'max', 'neutral') if rng.random() < 0.6}
    return {'robot': profile.name, 'motors': motors}


def _performer_profile(rng) -> dict:
    from face_common.arkit import CHANNEL_NAMES
    return {'name': 'fuzz', 'frames': 60, 'created': '2026-01-01T00:00:00+00:00',
            'neutral': {name: rng.random() for name in CHANNEL_NAMES}}


def check_calibration(value, workdir) -> None:
    from face_actuation.profile import ProfileError, apply_calibration
    from face_capture.calibration import CalibrationError, ProfileStore
    rng, kind, robot, edits = value
    if kind == 'robot':
        profile = _profile(robot)
        document = _mutate_tree(rng, _robot_calibration(rng, profile), edits)
        text = mutate(_yaml_text(document), mutations(rng, 2, chance=0.3))
        path = _write(workdir, f'{robot}.yaml', text)
        try:
            calibrated = apply_calibration(profile, path)
        except ProfileError:
            return
        _check_valid_profile(calibrated)
        return
    document = _mutate_tree(rng, _performer_profile(rng), edits)
    text = mutate(json.dumps(document).encode(), mutations(rng, 2, chance=0.3))
    _write(workdir, 'fuzz.json', text)
    try:
        loaded = ProfileStore(workdir).load('fuzz')
    except CalibrationError:
        return
    _require(loaded.neutral.shape == (61,) and np.isfinite(loaded.neutral).all(),
             'a loaded neutral is misshapen or not finite')


CALIBRATION = st.tuples(RANDOMS, st.sampled_from(('robot', 'performer')),
                        st.sampled_from(('micheal', 'hobbs', 'ameca')), st.integers(0, 3))

TARGETS = [
    Target('livelink', LIVELINK, check_livelink, 'face_capture.livelink.parse_packet'),
    Target('csv_takes', TAKES, check_take, 'face_capture.takes.read_take'),
    Target('dashboard', DASHBOARD, check_dashboard,
           'face_dashboard.page_requests.parse_page_request'),
    Target('safety', SAFETY, check_safety, 'SafetyLayer.power_up/command/estop/enable/update'),
    Target('ameca_follower', AMECA, check_ameca, 'tritium.ameca_follower.DemandFollower'),
    Target('bag_recovery', BAG, check_bag, 'face_bag.store.recover'),
    Target('launch', LAUNCH, check_launch,
           'face_common.launch_runner.parse_arguments/load_launch_file'),
    Target('robot_profiles', PROFILES, check_profile, 'face_actuation.profile.load_profile'),
    Target('calibration', CALIBRATION, check_calibration,
           'profile.apply_calibration, calibration.ProfileStore.load'),
]


# -- the VividFace HTTP stream endpoint -----------------------------------------------------------
# Whole requests (head and body, sometimes several on one keep-alive connection) go through
# the real request handler on one end of a socket pair. Oracles: the handler never raises,
# every reply is a well-formed HTTP response with an expected status, a frame is handed on
# exactly for each 200 and decodes within the pixel budget, and a well-formed request with a
# valid JPEG is accepted.
HTTP_TOKEN = 'fuzz-token'
HTTP_MAX_BODY = 48 * 1024
HTTP_MAX_PIXELS = 96 * 96
HTTP_STATUSES = {200, 400, 401, 403, 404, 405, 408, 411, 413, 414, 415, 431, 505}
HTTP_KINDS = ('valid', 'headers', 'mutated', 'body', 'chunked', 'pipelined', 'bytes')


@functools.cache
def _http_jpegs() -> tuple:
    import cv2
    rng = np.random.default_rng(7)
    jpegs = []
    for (height, width), flags in ((((24, 32), []), ((48, 64), [cv2.IMWRITE_JPEG_QUALITY, 30]),
                                   ((40, 40), [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
                                   ((96, 96), []))):
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        jpegs.append(cv2.imencode('.jpg', image, flags)[1].tobytes())
    gray = cv2.imencode('.jpg', rng.integers(0, 256, (16, 16), dtype=np.uint8))[1].tobytes()
    return (*jpegs, gray)


def _http_body(rng, kind) -> bytes:
    jpeg = rng.choice(_http_jpegs())
    if kind == 'body':
        return mutate(jpeg, mutations(rng, 6))
    return jpeg


def _chunked(rng, body: bytes) -> bytes:
    out, at = bytearray(), 0
    while at < len(body):
        size = rng.randint(1, 4096)
        out += f'{min(size, len(body) - at):x}'.encode() + b'\r\n' + body[at:at + size] + b'\r\n'
        at += size
    return bytes(out) + b'0\r\n\r\n'


def _http_request(rng, kind) -> bytes:
    body = _http_body(rng, kind)
    path = '/stream'
    headers = [('Host', 'robot:5000'), ('Content-Type', 'application/octet-stream')]
    if rng.random() < 0.5:
        headers.append(('Authorization', f'Bearer {HTTP_TOKEN}'))
    else:
        path += f'?token={HTTP_TOKEN}'
    if kind == 'chunked':
        headers.append(('Transfer-Encoding', 'chunked'))
        body = _chunked(rng, body)
    else:
        headers.append(('Content-Length', str(len(body))))
    if kind == 'headers':
        edits = rng.randint(1, 4)
        for _ in range(edits):
            roll = rng.random()
            if roll < 0.3:
                name = rng.choice(('Content-Length', 'Transfer-Encoding', 'Authorization',
                                   'Connection', 'Expect', _text(rng, 12)))
                value = rng.choice((str(rng.randint(-10, 10**12)), 'chunked', 'close',
                                    '100-continue', f'Bearer {_text(rng, 12)}', _text(rng, 30),
                                    '9' * rng.choice((19, 5000))))
                headers.insert(rng.randint(0, len(headers)), (name, value))
            elif roll < 0.5 and headers:
                headers.pop(rng.randrange(len(headers)))
            elif roll < 0.7:
                path = rng.choice(('/stream', '/', '/stream/', '/stream?token=',
                                   '/stream?' + _text(rng, 40), '*', _text(rng, 20),
                                   'http://[' + _text(rng, 8) + '/stream',
                                   f'/stream?token={HTTP_TOKEN}' + '&a=1' * rng.randint(1, 40)))
            elif roll < 0.85:
                body = body[:rng.randint(0, len(body))]
            else:
                headers.append(('X-Pad', 'a' * rng.choice((10, 1000, 70000))))
    method = 'POST' if kind != 'headers' or rng.random() < 0.8 else rng.choice(
        ('GET', 'HEAD', 'PUT', 'DELETE', 'OPTIONS', 'post', 'BREW', ''))
    version = 'HTTP/1.1' if kind != 'headers' or rng.random() < 0.9 else rng.choice(
        ('HTTP/1.0', 'HTTP/2.0', 'HTTP/0.9', 'HTTP/1.1.1', 'HTTX/1.1', ''))
    head = f'{method} {path} {version}\r\n' + ''.join(f'{n}: {v}\r\n' for n, v in headers)
    request = head.encode('utf-8', 'surrogateescape') + b'\r\n' + body
    if kind == 'mutated':
        request = mutate(request, mutations(rng, 6))
    return request


class _StubServer:
    """What the handler reads from its server: the endpoint (no deadline watchdog here: the
    socket pair ends every read at the end of the input)."""

    def __init__(self, endpoint):
        self.endpoint = endpoint


def _http_responses(data: bytes) -> list:
    """(status, body) of each response in the handler's output, parsed by http.client."""
    import http.client
    import io

    class _Replies:
        def __init__(self, stream):
            self.stream = stream

        def makefile(self, *args, **kwargs):
            return self.stream

    class _Unclosable(io.BytesIO):
        def close(self):                 # each response closes its file once read
            pass

    stream, replies = _Unclosable(data), []
    while stream.tell() < len(data):
        response = http.client.HTTPResponse(_Replies(stream))
        response.begin()
        replies.append((response.status, response.read()))
    return replies


def check_http_stream(value, workdir) -> None:
    import socket
    import threading

    from face_capture.http_stream import Endpoint, StreamConfig, StreamHandler
    from face_capture.sender_gate import parse_allowlist
    kind, rng = value
    if kind == 'bytes':
        request = rng.randbytes(rng.randint(0, 2048))
    elif kind == 'pipelined':
        request = b''.join(_http_request(rng, rng.choice(('valid', 'body', 'headers')))
                           for _ in range(rng.randint(2, 4)))
    else:
        request = _http_request(rng, kind)
    foreign_sender = kind != 'valid' and rng.random() < 0.05
    config = StreamConfig(parse_allowlist('10.0.0.0/8' if foreign_sender else '127.0.0.0/8'),
                          token=HTTP_TOKEN if rng.random() < 0.7 else '',
                          max_body_bytes=HTTP_MAX_BODY, max_pixels=HTTP_MAX_PIXELS,
                          read_timeout_s=5.0, request_timeout_s=5.0)
    frames = []
    endpoint = Endpoint(config, lambda jpeg, image, client: frames.append((jpeg, image)))
    client, server_side = socket.socketpair()

    def send():                          # on its own thread: the request may outgrow a buffer
        try:
            client.sendall(request)
            client.shutdown(socket.SHUT_WR)
        except OSError:                  # the handler closed first (a refusal)
            pass
    sender = threading.Thread(target=send, daemon=True)
    with client, server_side:
        sender.start()
        StreamHandler(server_side, ('127.0.0.1', 40000), _StubServer(endpoint))
        server_side.close()
        output = bytearray()
        while chunk := client.recv(65536):
            output += chunk
        sender.join()
    replies = _http_responses(bytes(output))
    statuses = [status for status, _ in replies]
    _require(set(statuses) <= HTTP_STATUSES, f'unexpected statuses {statuses}')
    _require(statuses.count(200) == len(frames), f'{len(frames)} frames for {statuses}')
    for jpeg, image in frames:
        _require(jpeg[:3] == b'\xff\xd8\xff', 'a body without the JPEG marker passed')
        _require(image.ndim == 3 and image.shape[0] * image.shape[1] <= HTTP_MAX_PIXELS,
                 f'a frame of {image.shape} passed')
    if kind == 'valid':
        _require(statuses == [200], f'a valid request got {statuses}')


HTTP_STREAM = st.tuples(st.sampled_from(HTTP_KINDS), RANDOMS)
TARGETS.append(Target('http_stream', HTTP_STREAM, check_http_stream,
                      'face_capture.http_stream.StreamHandler (requests, bodies, JPEGs)'))

# -- TCP bridge streams (JSON lines, length-framed Live Link Face) -------------------------------
TCP_JUNK_VALUES = (float('nan'), float('inf'), -1e400, 10**400, 2**63, -0.0, 1.5, '0.5', None,
                   True, [], {}, [0.1, 0.2, 0.3], 'JawOpen')


def _tcp_junk_document(rng) -> dict:
    """A frame-like object with wrong names, weights, rotations and keys mixed in."""
    from face_common.arkit import CHANNEL_NAMES
    names = [rng.choice((*CHANNEL_NAMES, 'jawopen', 'Smirk', '', 'EyeBlinkLeft '))
             for _ in range(rng.randint(0, 60))]
    weights = [rng.choice(TCP_JUNK_VALUES) if rng.random() < 0.2 else rng.uniform(-0.5, 1.5)
               for _ in range(len(names) + rng.choice((0, 0, 0, 1, -1)))]
    document = ({'names': names, 'weights': weights} if rng.random() < 0.5
                else {'blendshapes': dict(zip(names, weights, strict=False))})
    for key in ('head_rotation', 'left_eye_rotation', 'right_eye_rotation', 'timestamp',
                'frame_number', 'subject', 'device_id', 'face_tracked', 'extra'):
        if rng.random() < 0.3:
            document[key] = (rng.choice(TCP_JUNK_VALUES) if rng.random() < 0.5 else
                             [rng.uniform(-7, 7) for _ in range(3)])
    return document


def _tcp_stream_events(data: bytes, cuts) -> list:
    """Feed `data` to a StreamDecoder in pieces cut at `cuts`; checks the decoder's invariants
    and returns its events in comparable form."""
    from face_capture.livelink import MAX_PACKET_BYTES
    from face_capture.tcp_protocol import (
        LENGTH_PREFIX,
        MAX_LINE_BYTES,
        MAX_ROTATION_RAD,
        DecodeError,
        StreamDecoder,
        TcpFrame,
    )
    from face_common.arkit import NUM_BLENDSHAPES
    decoder = StreamDecoder()
    events = []
    for start, end in zip((0, *cuts), (*cuts, len(data)), strict=False):
        for event in decoder.feed(data[start:end]):
            if isinstance(event, DecodeError):
                _require(isinstance(event.reply(), bytes), 'unprintable error reply')
                events.append((event.kind, event.fatal))
                continue
            _require(isinstance(event, TcpFrame), f'unexpected event {event!r}')
            if event.values is not None:
                values = event.values
                _require(values.shape == (61,) and np.isfinite(values).all(),
                         'a frame with misshapen or non-finite values')
                _require(np.abs(values[NUM_BLENDSHAPES:]).max() <= MAX_ROTATION_RAD
                         or decoder.framing == 'binary', 'a rotation beyond its bound')
            events.append((event.frame_number, event.subject, event.device_id,
                           None if event.values is None else event.values.tobytes()))
        _require(decoder.pending <= max(MAX_LINE_BYTES, LENGTH_PREFIX.size + MAX_PACKET_BYTES),
                 f'the decoder holds {decoder.pending} bytes')
    return events


def _check_tcp_stream(data: bytes, rng) -> list:
    """The events do not depend on how the stream is cut into reads."""
    whole = _tcp_stream_events(data, ())
    cuts = sorted(rng.sample(range(len(data) + 1), min(len(data) + 1, rng.randint(1, 8))))
    _require(_tcp_stream_events(data, cuts) == whole, f'cutting at {cuts} changed the events')
    return whole


def check_tcp_json(value, workdir) -> None:
    from face_capture.tcp_protocol import encode_json_line
    kind, rng, lines = value
    parts = []
    clean = []
    for _ in range(lines):
        if kind == 'frames':
            values = np.array([rng.random() for _ in range(61)], np.float32)
            values[52:] = [rng.uniform(-3, 3) for _ in range(9)]
            clean.append(values)
            parts.append(encode_json_line(values, rng.randrange(2**31), _text(rng, 10)))
        elif kind == 'junk':
            parts.append((json.dumps(_tcp_junk_document(rng)) + '\n').encode())
        else:
            line = encode_json_line(np.array([rng.random() for _ in range(61)]) * 0.5)
            parts.append(mutate(line, mutations(rng)))
    data = b''.join(parts)
    if kind == 'noise':
        data = rng.choice((b'{', b' ', b'\n', b'')) + rng.randbytes(rng.randint(0, 3000))
    events = _check_tcp_stream(data, rng)
    if kind == 'frames':
        _require(len(events) == len(clean), f'{len(clean)} clean lines gave {events[:3]}')
        for event, values in zip(events, clean, strict=False):
            decoded = np.frombuffer(event[3], np.float32)
            _require(np.allclose(decoded, values, atol=1e-5), 'a clean line changed its values')


def check_tcp_binary(value, workdir) -> None:
    from face_capture.tcp_protocol import encode_binary_frame
    kind, rng, frames = value
    packets = [_livelink_base(_livelink_frame(rng)) for _ in range(frames)]
    if kind == 'frames':
        data = b''.join(encode_binary_frame(p) for p in packets)
        events = _check_tcp_stream(data, rng)
        _require(len(events) == frames, f'{frames} clean frames gave {len(events)} events')
        return
    if kind == 'mutated_bodies':
        data = b''.join(encode_binary_frame(mutate(p, mutations(rng))) for p in packets)
    elif kind == 'mutated_stream':
        data = mutate(b''.join(encode_binary_frame(p) for p in packets), mutations(rng))
    else:
        data = b'\x00' + rng.randbytes(rng.randint(0, 3000))
    _check_tcp_stream(data, rng)


TCP_JSON = st.tuples(st.sampled_from(('frames', 'junk', 'junk', 'mutated', 'mutated', 'noise')),
                     RANDOMS, st.integers(1, 4))
TCP_BINARY = st.tuples(st.sampled_from(('frames', 'mutated_bodies', 'mutated_stream', 'noise')),
                       RANDOMS, st.integers(1, 4))

TARGETS += [
    Target('tcp_json', TCP_JSON, check_tcp_json, 'face_capture.tcp_protocol.StreamDecoder (JSON)'),
    Target('tcp_binary', TCP_BINARY, check_tcp_binary,
           'face_capture.tcp_protocol.StreamDecoder (length-framed Live Link Face)'),
]

# -- face tracker: Image frames of any size, encoding and content; corrupted JPEGs ----------
@functools.lru_cache(maxsize=1)
def _face_tracker():
    from face_capture.face_tracking import FaceTracker
    return FaceTracker()


@functools.lru_cache(maxsize=1)
def _small_portrait():
    import cv2
    import matplotlib.cbook
    photo = cv2.imread(str(matplotlib.cbook.get_sample_data('grace_hopper.jpg',
                                                            asfileobj=False)))
    return cv2.resize(photo, (128, 150))


@functools.lru_cache(maxsize=1)
def _small_portrait_jpeg() -> bytes:
    import cv2
    return cv2.imencode('.jpg', _small_portrait())[1].tobytes()


def _tracker_image(rng, kind):
    """(height, width, step, encoding, data) of a frame as a camera node could publish."""
    encoding = rng.choice(('bgr8', 'bgr8', 'bgr8', 'rgb8', 'mono8', 'rgba16', '', 'b\x00r8'))
    if kind == 'portrait':                     # a real face, then corrupted bytes
        image = _small_portrait()
        height, width = image.shape[:2]
        data = mutate(image.tobytes(), mutations(rng, 3, chance=0.5))
        return height, width, width * 3 + rng.choice((0, 0, 0, 3, -3, 1)), encoding, data
    height, width = rng.randint(0, 200), rng.randint(0, 200)
    step = width * 3 + rng.choice((0, 0, 0, 6, -3, 1))
    size = max(0, height * step + rng.choice((0, 0, 0, -1, 5, -height * step)))
    if kind == 'flat':
        data = bytes([rng.randrange(256)]) * size
    else:
        data = rng.randbytes(size)
    return height, width, max(0, step), encoding, data


def check_face_tracker(value, workdir) -> None:
    from sensor_msgs.msg import Image

    from face_capture.face_expressions import ExpressionEstimator, face_features
    from face_capture.face_tracking import BadImage, decode_compressed
    from face_common.arkit import NUM_BLENDSHAPES
    from face_common.images import image_to_bgr8
    rng, kind = value
    try:
        if kind == 'jpeg':                       # a compressed frame, corrupted
            image = decode_compressed(mutate(_small_portrait_jpeg(), mutations(rng)))
        else:
            height, width, step, encoding, data = _tracker_image(rng, kind)
            image = image_to_bgr8(Image(height=height, width=width, step=step,
                                        encoding=encoding, data=data))
        face = _face_tracker().track(image)
    except (BadImage, ValueError):                 # the node counts these as bad_image
        return
    if face is None:
        return
    _require(np.isfinite(face.landmarks).all() and np.isfinite(face.irises).all(),
             'a tracked face has non-finite landmarks')
    try:
        channels = ExpressionEstimator().channels(face_features(face.landmarks, face.irises))
    except ValueError:
        return
    shapes = channels[:NUM_BLENDSHAPES]
    _require(np.isfinite(channels).all() and (shapes >= 0).all() and (shapes <= 1).all(),
             'channels out of range')


FACE_TRACKER_IMAGES = st.tuples(RANDOMS, st.sampled_from(('portrait', 'noise', 'flat', 'jpeg')))
TARGETS.append(Target('face_tracker', FACE_TRACKER_IMAGES, check_face_tracker,
                      'face_tracking.FaceTracker.track (via image_to_bgr8, decode_compressed)'))
