"""Robot profiles: one YAML file per robot head, validated on load.

A profile names every motor (or control) with its native range, neutral, limits and bus
address, the left/right pairs, the driver to use and the digital twin's parameters. Inside the
pipeline positions are normalised 0..1 per motor (0 = calibrated min, 1 = calibrated max);
drivers convert to native units at the edge with to_native()/from_native().

Per-robot calibration overrides (min/max/neutral measured on the real head) live in a separate
file written by `face-calibrate` and are applied on load, so they survive restarts and profile
updates.
"""
from dataclasses import asdict, dataclass, field, fields, replace
import hashlib
import json
import math
from pathlib import Path
import re

import numpy as np
import yaml

from face_common.arkit import CHANNEL_INDEX
from face_common.atomic import write_atomic
from face_common.paths import share_path, user_data_dir

UNITS = ('us', 'ticks', 'control', 'deg')
KINDS = ('cable', 'linkage', 'servo_rig')
ESTOP_MODES = ('hold', 'limp')
# A robot's name becomes a file name (its calibration file): letters, digits, '_' and '-'
# only, so no name can point outside its folder ('../../escaped', 'a/b', '.hidden').
ROBOT_NAME = re.compile(r'[A-Za-z0-9][A-Za-z0-9_-]{0,63}')


class ProfileError(ValueError):
    """A profile or calibration file that is invalid; the message names the field."""


@dataclass(frozen=True)
class Motor:
    name: str
    group: str
    unit: str
    min: float
    max: float
    neutral: float
    max_velocity: float          # normalised range per second
    max_acceleration: float      # normalised range per second^2
    invert: bool = False
    channel: int = -1            # Maestro channel / Dynamixel id / control index; -1 = none

    @property
    def neutral_normalised(self) -> float:
        return (self.neutral - self.min) / (self.max - self.min)


@dataclass(frozen=True)
class HoldRule:
    """A motor held beyond `threshold` (normalised; above it, or below it for motors whose
    extreme is at 0) for more than `max_hold_s` ramps back to `threshold` over `ramp_s`
    (protects motors and skin: the Sophia 'jaw' rule)."""

    motor: str
    threshold: float
    max_hold_s: float
    ramp_s: float
    rest_s: float = 2.0          # time back inside the threshold before the budget resets
    direction: str = 'above'     # 'above' or 'below'


@dataclass(frozen=True)
class SafetyConfig:
    watchdog_timeout_s: float = 0.5
    return_to_neutral_s: float = 1.5
    power_up_s: float = 2.0
    estop_mode: str = 'hold'
    symmetry: bool = False
    hold_rules: tuple = ()


@dataclass(frozen=True)
class RobotProfile:
    name: str
    description: str
    kind: str
    motors: tuple
    pairs: tuple                                  # (left name, right name)
    driver: 'DriverConfig'
    twin: 'TwinConfig'
    safety: SafetyConfig
    control_rate_hz: float = 60.0
    source: str = ''
    calibrated: bool = False
    _index: dict = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, '_index', {m.name: i for i, m in enumerate(self.motors)})

    @property
    def motor_names(self):
        return [m.name for m in self.motors]

    @property
    def num_motors(self) -> int:
        return len(self.motors)

    def index(self, name: str) -> int:
        try:
            return self._index[name]
        except KeyError:
            raise ProfileError(f'{self.name}: no motor named {name!r}') from None

    def array(self, attribute: str) -> np.ndarray:
        return np.array([getattr(m, attribute) for m in self.motors], dtype=np.float64)

    @property
    def neutral(self) -> np.ndarray:
        """Neutral pose, normalised."""
        return np.array([m.neutral_normalised for m in self.motors])

    def pair_indices(self) -> np.ndarray:
        return np.array([(self.index(a), self.index(b)) for a, b in self.pairs],
                        dtype=int).reshape(-1, 2)

    def to_native(self, normalised) -> np.ndarray:
        """Normalised 0..1 -> native units (us, ticks, control units), honouring invert."""
        x = np.asarray(normalised, dtype=np.float64)
        lo, hi = self.array('min'), self.array('max')
        invert = np.array([m.invert for m in self.motors])
        x = np.where(invert, 1.0 - x, x)
        return lo + x * (hi - lo)

    def from_native(self, native) -> np.ndarray:
        lo, hi = self.array('min'), self.array('max')
        x = (np.asarray(native, dtype=np.float64) - lo) / (hi - lo)
        invert = np.array([m.invert for m in self.motors])
        return np.where(invert, 1.0 - x, x)

    def digest(self) -> str:
        """Hash of everything that changes what a normalised command means (saved with model
        weights, so a checkpoint is never used on a different head)."""
        payload = json.dumps({'name': self.name, 'motors': [m.__dict__ for m in self.motors]},
                             sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def check_robot_name(name, where: str = 'robot name') -> str:
    """The name itself, if it is a safe file name (see ROBOT_NAME); else a ProfileError."""
    if not isinstance(name, str) or not ROBOT_NAME.fullmatch(name):
        raise ProfileError(f'{where}: {name!r} is not a valid robot name (1-64 letters, '
                           f'digits, "_" or "-", starting with a letter or digit)')
    return name


def _mapping(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ProfileError(f'{where}: expected a mapping, got {type(value).__name__}')
    return value


def _unknown(data: dict, known, where: str) -> None:
    unknown = set(data) - set(known)
    if unknown:
        raise ProfileError(f'{where}: unknown field(s) {sorted(map(str, unknown))}; known: '
                           f'{", ".join(sorted(known))}')


def _require(data: dict, key: str, where: str, kind=None):
    if key not in data:
        raise ProfileError(f'{where}: missing field "{key}"')
    value = data[key]
    if kind is not None and not isinstance(value, kind):
        raise ProfileError(f'{where}.{key}: expected {getattr(kind, "__name__", kind)}, '
                           f'got {type(value).__name__}')
    return value


def _number(data: dict, key: str, where: str, default=None) -> float:
    if key not in data and default is not None:
        return float(default)
    return _finite(_require(data, key, where), f'{where}.{key}')


def _finite(value, where: str) -> float:
    try:
        number = float(value) if isinstance(value, int | float) else math.nan
    except OverflowError:                               # an integer beyond a float's range
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise ProfileError(f'{where}: expected a finite number, got {str(value)[:40]}')
    return number


def _motor(data, where: str) -> Motor:
    _mapping(data, where)
    name = _require(data, 'name', where, str)
    where = f'{where} ({name})'
    unit = _require(data, 'unit', where, str)
    if unit not in UNITS:
        raise ProfileError(f'{where}.unit: {unit!r} is not one of {UNITS}')
    lo, hi = _number(data, 'min', where), _number(data, 'max', where)
    neutral = _number(data, 'neutral', where)
    if not lo < hi:
        raise ProfileError(f'{where}: min ({lo}) must be below max ({hi})')
    if not lo <= neutral <= hi:
        raise ProfileError(f'{where}.neutral: {neutral} is outside [{lo}, {hi}]')
    velocity = _number(data, 'max_velocity', where)
    acceleration = _number(data, 'max_acceleration', where)
    if velocity <= 0 or acceleration <= 0:
        raise ProfileError(f'{where}: max_velocity and max_acceleration must be positive')
    invert = data.get('invert', False)
    if not isinstance(invert, bool):
        raise ProfileError(f'{where}.invert: expected true or false')
    channel = data.get('channel', -1)
    if isinstance(channel, bool) or not isinstance(channel, int):
        raise ProfileError(f'{where}.channel: expected an integer')
    group = data.get('group', '')
    if not isinstance(group, str):
        raise ProfileError(f'{where}.group: expected a string')
    _unknown(data, {'name', 'group', 'unit', 'min', 'max', 'neutral', 'max_velocity',
                    'max_acceleration', 'invert', 'channel'}, where)
    return Motor(name, group, unit, lo, hi, neutral, velocity, acceleration, invert, channel)


def _safety(data, motors: dict, where: str) -> SafetyConfig:
    data = _mapping(data if data is not None else {}, where)
    _unknown(data, [f.name for f in fields(SafetyConfig)], where)
    mode = data.get('estop_mode', 'hold')
    if not isinstance(mode, str) or mode not in ESTOP_MODES:
        raise ProfileError(f'{where}.estop_mode: {mode!r} is not one of {ESTOP_MODES}')
    symmetry = data.get('symmetry', False)
    if not isinstance(symmetry, bool):
        raise ProfileError(f'{where}.symmetry: expected true or false')
    raw_rules = data.get('hold_rules') or []
    if not isinstance(raw_rules, list):
        raise ProfileError(f'{where}.hold_rules: expected a list')
    rules = []
    for i, rule in enumerate(raw_rules):
        rwhere = f'{where}.hold_rules[{i}]'
        motor = _require(_mapping(rule, rwhere), 'motor', rwhere, str)
        _unknown(rule, [f.name for f in fields(HoldRule)], rwhere)
        if motor not in motors:
            raise ProfileError(f'{rwhere}.motor: no motor named {motor!r}')
        threshold = _number(rule, 'threshold', rwhere)
        if not 0 < threshold < 1:
            raise ProfileError(f'{rwhere}.threshold: must be inside (0, 1)')
        direction = rule.get('direction', 'above')
        if not isinstance(direction, str) or direction not in ('above', 'below'):
            raise ProfileError(f'{rwhere}.direction: {direction!r} is not above or below')
        rules.append(HoldRule(motor, threshold, _number(rule, 'max_hold_s', rwhere),
                              _number(rule, 'ramp_s', rwhere),
                              _number(rule, 'rest_s', rwhere, 2.0), direction))
    config = SafetyConfig(
        watchdog_timeout_s=_number(data, 'watchdog_timeout_s', where, 0.5),
        return_to_neutral_s=_number(data, 'return_to_neutral_s', where, 1.5),
        power_up_s=_number(data, 'power_up_s', where, 2.0),
        estop_mode=mode, symmetry=symmetry, hold_rules=tuple(rules))
    if config.watchdog_timeout_s <= 0 or config.return_to_neutral_s <= 0:
        raise ProfileError(f'{where}: watchdog_timeout_s and return_to_neutral_s must be > 0')
    return config


def parse_profile(data: dict, source: str = '<memory>') -> RobotProfile:
    where = Path(source).name
    if not isinstance(data, dict):
        raise ProfileError(f'{where}: top level must be a mapping')
    name = check_robot_name(_require(data, 'name', where), f'{where}.name')
    kind = _require(data, 'kind', where, str)
    if kind not in KINDS:
        raise ProfileError(f'{where}.kind: {kind!r} is not one of {KINDS}')
    raw_motors = _require(data, 'motors', where, list)
    motors = tuple(_motor(m, f'{where}.motors[{i}]') for i, m in enumerate(raw_motors))
    names = [m.name for m in motors]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ProfileError(f'{where}.motors: duplicate names {duplicates}')
    by_name = {m.name: m for m in motors}
    raw_pairs = data.get('pairs') or []
    if not isinstance(raw_pairs, list):
        raise ProfileError(f'{where}.pairs: expected a list of [left, right] motor names')
    pairs = []
    for i, pair in enumerate(raw_pairs):
        if not (isinstance(pair, list) and len(pair) == 2
                and all(isinstance(p, str) and p in by_name for p in pair)):
            raise ProfileError(f'{where}.pairs[{i}]: expected [left, right] motor names, '
                               f'got {pair!r}')
        pairs.append(tuple(pair))
    driver = parse_driver(data.get('driver') or {'type': 'sim'}, f'{where}.driver')
    rate = _number(data, 'control_rate_hz', where, 60.0)
    if not 1 <= rate <= 200:
        raise ProfileError(f'{where}.control_rate_hz: {rate} is outside 1..200')
    description = data.get('description', '')
    if not isinstance(description, str):
        raise ProfileError(f'{where}.description: expected a string')
    return RobotProfile(name=name, description=description, kind=kind,
                        motors=motors, pairs=tuple(pairs), driver=driver,
                        twin=parse_twin(data.get('twin'), by_name, f'{where}.twin'),
                        safety=_safety(data.get('safety'), by_name, f'{where}.safety'),
                        control_rate_hz=rate, source=str(source))


# ---- typed sections: every option spelled once, with its default and its check ----------
SEED_LIMIT = 2 ** 32 - 1


def _option(default, check):
    """A section field: its default and the check that turns a YAML value into it (None
    stays None where the default is None: the option is unset)."""
    return field(default=default, metadata={'check': check})


def _section(cls, data, where: str):
    """A typed section from its mapping: an unknown key names the file and the field."""
    data = _mapping(data if data is not None else {}, where)
    _unknown(data, [f.name for f in fields(cls)], where)
    values = {}
    for option in fields(cls):
        if option.name in data:
            value = data[option.name]
            if value is not None or option.default is not None:
                value = option.metadata['check'](value, f'{where}.{option.name}')
            values[option.name] = value
    return cls(**values)


def _integer(lo: int, hi: int):
    def check(value, where: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ProfileError(f'{where}: expected an integer in {lo}..{hi}, got '
                               f'{repr(value)[:40]}')
        return value
    return check


def _integers(lo: int, hi: int):
    def check(value, where: str) -> tuple:
        if not (isinstance(value, list | tuple) and value
                and all(type(v) is int and lo <= v <= hi for v in value)):
            raise ProfileError(f'{where}: expected a list of integers {lo}..{hi}, got '
                               f'{repr(value)[:40]}')
        return tuple(value)
    return check


def _text(empty: bool = False):
    def check(value, where: str) -> str:
        if not isinstance(value, str) or not (value or empty):
            raise ProfileError(f'{where}: expected a {"" if empty else "non-empty "}string, '
                               f'got {repr(value)[:40]}')
        return value
    return check


def _choice(options):
    def check(value, where: str) -> str:
        if not isinstance(value, str) or value not in options:
            raise ProfileError(f'{where}: {repr(value)[:40]} is not one of {options}')
        return value
    return check


@dataclass(frozen=True)
class SimDriverConfig:
    """The digital twin stands in for the hardware."""

    type: str = _option('sim', _choice(('sim',)))
    seed: int | None = _option(None, _integer(0, SEED_LIMIT))    # None: the twin's own seed


@dataclass(frozen=True)
class MaestroConfig:
    """Pololu Maestro servo controllers on one serial line (drivers/maestro.py)."""

    type: str = _option('maestro', _choice(('maestro',)))
    port: str = _option('/dev/ttyACM0', _text())
    baudrate: int = _option(115200, _integer(1, 10_000_000))
    # '' = pololu for several controllers, compact for one
    protocol: str = _option('', _choice(('pololu', 'compact')))
    device_numbers: tuple = _option((12,), _integers(0, 127))
    channels_per_controller: int = _option(24, _integer(1, 24))
    speed: int = _option(0, _integer(0, (1 << 14) - 1))         # Maestro units, 0 = unlimited
    acceleration: int = _option(0, _integer(0, 255))


@dataclass(frozen=True)
class DynamixelConfig:
    """Dynamixel X-series servos, Protocol 2.0 (drivers/dynamixel.py)."""

    type: str = _option('dynamixel', _choice(('dynamixel',)))
    port: str = _option('/dev/ttyUSB0', _text())
    baudrate: int = _option(1_000_000, _integer(1, 10_500_000))
    profile_velocity: int = _option(0, _integer(0, 32767))
    profile_acceleration: int = _option(0, _integer(0, 32767))


@dataclass(frozen=True)
class AmecaConfig:
    """Engineered Arts Ameca through ZeroMQ (drivers/ameca.py)."""

    type: str = _option('ameca_zmq', _choice(('ameca_zmq',)))
    bind_address: str = _option('', _text(empty=True))      # this computer on the robot LAN
    port: int = _option(6666, _integer(1, 65535))
    endpoint: str = _option('', _text(empty=True))          # tcp://ADDRESS:PORT, over both
    x2c_controls: int = _option(30, _integer(1, 1024))      # controls per message
    curve_server_secret_key: str = _option('', _text(empty=True))
    curve_authorized_clients: str = _option('', _text(empty=True))


DRIVER_CONFIGS = {'sim': SimDriverConfig, 'maestro': MaestroConfig,
                  'dynamixel': DynamixelConfig, 'ameca_zmq': AmecaConfig}
DRIVERS = tuple(DRIVER_CONFIGS)
DriverConfig = SimDriverConfig | MaestroConfig | DynamixelConfig | AmecaConfig


def parse_driver(data, where: str) -> DriverConfig:
    """The driver section, typed by its `type`."""
    data = _mapping(data, where)
    kind = data.get('type')
    if not isinstance(kind, str) or kind not in DRIVER_CONFIGS:
        raise ProfileError(f'{where}.type: {repr(kind)[:40]} is not one of {DRIVERS}')
    return _section(DRIVER_CONFIGS[kind], data, where)


def driver_with(config: DriverConfig, overrides: dict, where: str) -> DriverConfig:
    """The driver section with overrides (node parameters, CLI flags) applied and checked
    like the profile's; another `type` starts from that driver's defaults."""
    kind = overrides.get('type') or config.type
    base = asdict(config) if kind == config.type else {}
    return parse_driver({**base, **overrides, 'type': kind}, where)


def _effects(value, where: str) -> dict:
    """twin.effects: motor -> up/down -> {ARKit channel: gain}, both directions filled."""
    effects = {}
    for motor, entry in _mapping(value if value is not None else {}, where).items():
        ewhere = f'{where}.{motor}'
        _unknown(_mapping(entry, ewhere), ('up', 'down'), ewhere)
        effects[motor] = {direction: _channels(entry.get(direction) or {},
                                               f'{ewhere}.{direction}')
                          for direction in ('up', 'down')}
    return effects


def _channels(value, where: str) -> dict:
    """{ARKit channel name: number}, names checked (any case, as exports vary)."""
    values = {}
    for channel, number in _mapping(value if value is not None else {}, where).items():
        if not isinstance(channel, str) or channel.lower() not in CHANNEL_INDEX:
            raise ProfileError(f'{where}: {repr(channel)[:40]} is not an ARKit channel')
        values[channel] = _finite(number, f'{where}.{channel}')
    return values


def _bounded(lo: float, hi: float):
    def check(value, where: str) -> float:
        number = _finite(value, where)
        if not lo <= number <= hi:
            raise ProfileError(f'{where}: {number:g} is outside its range {lo:g}..{hi:g}')
        return number
    return check


# The documented range of every physics parameter of the twin (twin.py says what each does);
# the family sampler draws from these. New physics is off at the low end (or, for
# damping_ratio and squint_threshold, unused while its switch is off).
PHYSICS_RANGES = {
    'time_constant_s': (0.02, 0.15),        # first-order actuators
    'noise_std': (0.0, 0.02),               # tracker noise, blendshape units
    'asymmetry': (0.0, 0.15),               # left/right gain difference
    'slack': (0.0, 0.2),                    # cable: dead zone, fraction of travel
    'hysteresis': (0.0, 0.05),              # cable: backlash, normalised position
    'saturation': (0.3, 1.0),               # skin ceiling (1: none)
    'coupling': (0.0, 0.3),                 # cable: drag on the neighbouring cable
    'linkage_angle': (0.0, 1.5),            # linkage: crank angle, rad (0: straight)
    'jaw_coupling': (0.0, 0.7),             # linkage: corner reach lost at full jaw
    'gamma': (0.7, 1.6),                    # servo rig: power-law response
    'natural_frequency_hz': (0.0, 15.0),    # second-order actuators, 2..15 (0: first order)
    'damping_ratio': (0.3, 1.5),            # below 1: overshoot (0.4: 25 %)
    'skin_time_constant_s': (0.0, 0.2),     # viscoelastic skin lag behind the motors
    'skin_engagement': (1.0, 4.0),          # S-shaped skin response per motor (1: none)
    'skin_mixing': (0.0, 1.0),              # motors pulling one skin unit saturate it
    'brow_masking': (0.0, 1.0),             # raised and lowered brows suppress each other
    'jaw_masking': (0.0, 0.8),              # smile and stretch lost at full jaw opening
    'squint_threshold': (0.0, 1.0),         # smile level where the cheek squint starts
    'squint_gain': (0.0, 1.5),              # cheek/eye squint per smile beyond it
    'skin_friction': (0.0, 0.05),           # dead band on each blendshape
    'noise_correlation': (0.0, 0.9),        # share of the noise common to all channels
    'tracker_latency_frames': (0, 3),       # the tracker reports the face this many steps late
}


def _physics(name: str):
    lo, hi = PHYSICS_RANGES[name]
    return _bounded(lo, hi)


def _presets(value, where: str) -> dict:
    """twin.presets: name -> physics overrides (checked like the twin's own parameters, and
    every one within its documented range)."""
    presets = {}
    for name, overrides in _mapping(value if value is not None else {}, where).items():
        if not isinstance(name, str):
            raise ProfileError(f'{where}: preset names are text, got {name!r}')
        pwhere = f'{where}.{name}'
        _unknown(_mapping(overrides, pwhere), PHYSICS_RANGES, pwhere)
        presets[name] = {}
        for key, number in overrides.items():
            value = _section_field(key)(number, f'{pwhere}.{key}')
            _physics(key)(value, f'{pwhere}.{key}')          # within the documented range
            presets[name][key] = value
    return presets


def _section_field(name: str):
    return {f.name: f for f in fields(TwinConfig)}[name].metadata['check']


@dataclass(frozen=True)
class TwinConfig:
    """The digital twin's parameters (see twin.py for what each does, PHYSICS_RANGES for
    their ranges)."""

    seed: int = _option(0, _integer(0, SEED_LIMIT))
    time_constant_s: float = _option(0.05, _physics('time_constant_s'))
    noise_std: float = _option(0.005, _physics('noise_std'))
    asymmetry: float = _option(0.05, _physics('asymmetry'))
    slack: float = _option(0.0, _physics('slack'))
    hysteresis: float = _option(0.0, _physics('hysteresis'))
    saturation: float = _option(1.0, _physics('saturation'))
    coupling: float = _option(0.0, _physics('coupling'))
    linkage_angle: float = _option(0.0, _physics('linkage_angle'))
    jaw_coupling: float = _option(0.0, _physics('jaw_coupling'))
    gamma: float = _option(1.0, _physics('gamma'))
    natural_frequency_hz: float = _option(0.0, _physics('natural_frequency_hz'))
    damping_ratio: float = _option(1.0, _physics('damping_ratio'))
    skin_time_constant_s: float = _option(0.0, _physics('skin_time_constant_s'))
    skin_engagement: float = _option(1.0, _physics('skin_engagement'))
    skin_mixing: float = _option(0.0, _physics('skin_mixing'))
    brow_masking: float = _option(0.0, _physics('brow_masking'))
    jaw_masking: float = _option(0.0, _physics('jaw_masking'))
    squint_threshold: float = _option(1.0, _physics('squint_threshold'))
    squint_gain: float = _option(0.0, _physics('squint_gain'))
    skin_friction: float = _option(0.0, _physics('skin_friction'))
    noise_correlation: float = _option(0.0, _physics('noise_correlation'))
    tracker_latency_frames: int = _option(0, _integer(*PHYSICS_RANGES['tracker_latency_frames']))
    # motor -> up/down -> {ARKit channel: gain}; and {ARKit channel: value} at neutral
    effects: dict = field(default_factory=dict, metadata={'check': _effects})
    rest: dict = field(default_factory=dict, metadata={'check': _channels})
    # name -> physics overrides, e.g. `simple` (with_physics applies one)
    presets: dict = field(default_factory=dict, metadata={'check': _presets})


def parse_twin(data, motors: dict, where: str) -> TwinConfig:
    twin = _section(TwinConfig, data, where)
    for name in twin.effects:
        if name not in motors:
            raise ProfileError(f'{where}.effects.{name}: no motor named {name!r}')
    return twin


def with_physics(profile: RobotProfile, preset: str) -> RobotProfile:
    """The profile with one of its twin's physics presets applied ('' or 'shipped': as is)."""
    if preset in ('', 'shipped'):
        return profile
    if preset not in profile.twin.presets:
        raise ProfileError(f'{profile.name}: no twin physics preset {preset!r}; presets: '
                           f'shipped, {", ".join(sorted(profile.twin.presets)) or "(none)"}')
    return replace(profile, twin=replace(profile.twin, **profile.twin.presets[preset]))


def profiles_dir() -> Path:
    """The bundled profiles (the source tree, or the installed share dir)."""
    return share_path('face_actuation', 'profiles',
                      Path(__file__).resolve().parent.parent / 'profiles')


def bundled_robots():
    return sorted(p.stem for p in profiles_dir().glob('*.yaml'))


def default_calibration_dir() -> Path:
    """$FACE_CALIBRATION_DIR, else ~/.local/share/face_shadowing/robots."""
    return user_data_dir('FACE_CALIBRATION_DIR', 'robots')


def load_profile(name_or_path, calibration_dir=None) -> RobotProfile:
    """Load a bundled robot by name ('micheal', 'hobbs', 'ameca') or a YAML path, with its
    calibration overrides applied when a calibration file exists."""
    path = Path(name_or_path)
    if path.suffix.lower() not in ('.yaml', '.yml'):
        path = profiles_dir() / f'{check_robot_name(name_or_path)}.yaml'
        if not path.is_file():
            raise ProfileError(f'no robot profile named {name_or_path!r}; bundled: '
                               f'{", ".join(bundled_robots())}')
    profile = parse_profile(_read_yaml(path, 'profile'), str(path))
    calibration = Path(calibration_dir or default_calibration_dir()) / f'{profile.name}.yaml'
    if calibration.is_file():
        profile = apply_calibration(profile, calibration)
    return profile


def _read_yaml(path, what: str):
    try:
        return yaml.safe_load(Path(path).read_text())
    except (OSError, UnicodeDecodeError, RecursionError, yaml.YAMLError) as exc:
        reason = ' '.join(str(exc).split())            # the YAML error's lines, on one line
        raise ProfileError(f'cannot read {what} {path}: {reason}') from None


def read_calibration(path) -> dict:
    """The overrides in a calibration file: {motor name: {min/max/neutral: number}}, its
    shape checked (values are checked against the profile by apply_calibration)."""
    data = _read_yaml(path, 'calibration')
    data = _mapping(data if data is not None else {}, str(path))
    _unknown(data, ('robot', 'motors'), str(path))
    return _overrides(data.get('motors') or {}, path)


def _overrides(overrides, path) -> dict:
    _mapping(overrides, f'{path}: "motors" (motor name -> overrides)')
    overrides = {name: {} if change is None else change        # `jaw_open:` alone: no change
                 for name, change in overrides.items()}
    for name, change in overrides.items():
        where = f'{Path(path).name}.motors.{name}'
        _unknown(_mapping(change, where), ('min', 'max', 'neutral'), where)
        for key in change:
            _number(change, key, where)
    return overrides


def apply_calibration(profile: RobotProfile, path) -> RobotProfile:
    """Override min/max/neutral per motor from a calibration file (validated like the
    profile: a bad value names the motor and field)."""
    return apply_overrides(profile, read_calibration(path), path)


def apply_overrides(profile: RobotProfile, overrides: dict, path) -> RobotProfile:
    """The profile with min/max/neutral overrides applied. The profile's min/max are hard
    limits: an override may narrow a motor's range, never widen it."""
    missing = set(overrides) - {m.name for m in profile.motors}
    if missing:
        raise ProfileError(f'{path}: calibration names unknown motor(s) '
                           f'{sorted(map(str, missing))}')
    motors = []
    for motor in profile.motors:
        change = overrides.get(motor.name, {})
        for key in ('min', 'max'):
            value = change.get(key)
            if value is not None and not motor.min <= value <= motor.max:
                side, limit = ('min', motor.min) if value < motor.min else ('max', motor.max)
                raise ProfileError(
                    f'{path}: motor {motor.name}: {key} {value:g} is outside the hard limit '
                    f'{side} {limit:g} {motor.unit} of profile {profile.name} (a calibration '
                    f'may only narrow the range {motor.min:g}..{motor.max:g})')
        merged = {**motor.__dict__, **change}
        motors.append(_motor(merged, f'{Path(path).name}.motors.{motor.name}'))
    return replace(profile, motors=tuple(motors), calibrated=True)


def save_calibration(profile: RobotProfile, overrides: dict, calibration_dir=None) -> Path:
    """Write min/max/neutral overrides for a robot atomically; validated before writing."""
    directory = Path(calibration_dir or default_calibration_dir())
    target = directory / f'{check_robot_name(profile.name)}.yaml'
    apply_overrides(profile, _overrides(overrides, target), target)
    text = yaml.safe_dump({'robot': profile.name, 'motors': overrides}, sort_keys=True)
    try:
        write_atomic(target, text)
    except OSError as exc:                         # read-only or full disk, no permission
        raise ProfileError(f'cannot write calibration {target}: {exc}') from None
    return target
