"""Robot drivers: the last step between normalised positions and a real (or simulated) head.

A driver follows LeRobot's small robot interface: connect(), read_positions(), write(),
limp(), disconnect(). Positions cross it normalised 0..1 in the profile's motor order; each
driver converts to its native units (Maestro quarter-microseconds, Dynamixel ticks, Ameca
control units) with the profile. The safety layer always sits in front of write().
"""
from face_actuation.profile import ProfileError, RobotProfile


class DriverError(RuntimeError):
    """The hardware could not be reached or answered with an error."""


class UnencodableValue(DriverError):
    """A value the protocol cannot carry (NaN, or outside the wire format's range). Raised
    while encoding, before any byte is written: the link itself is fine."""


class Driver:
    """Base class; subclasses talk to one kind of hardware."""

    name = 'driver'

    def __init__(self, profile: RobotProfile, options: dict):
        self.profile = profile
        self.options = options
        self.errors = 0

    def option_int(self, key: str, default: int, lo: int, hi: int) -> int:
        """An integer driver option from the profile, checked: a bad one is a ProfileError
        that names it, not a ValueError from deep inside the driver."""
        value = self.options.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
            raise ProfileError(f'{self.profile.name}: driver.{key}: expected an integer in '
                               f'{lo}..{hi}, got {value!r}')
        return value

    def option_str(self, key: str, default: str) -> str:
        value = self.options.get(key, default)
        if not isinstance(value, str) or not value:
            raise ProfileError(f'{self.profile.name}: driver.{key}: expected a non-empty '
                               f'string, got {value!r}')
        return value

    def connect(self) -> None:
        """Open the link; motors stay where they are until the first write()."""

    def read_positions(self):
        """Measured positions (normalised), or None if this hardware cannot report them."""
        return None

    def write(self, positions) -> None:
        raise NotImplementedError

    def limp(self) -> None:
        """Stop driving the motors (torque off / no pulses) — the e-stop 'limp' mode."""

    def finish_power_up(self) -> None:
        """The safety layer has eased the face to neutral: restore the motion settings the
        profile asks for in normal running (the Maestro lifts its power-up speed limits)."""

    def poll_errors(self) -> str:
        """Ask the hardware for its error state; '' when fine (or when it cannot say)."""
        return ''

    def disconnect(self) -> None:
        """Close the link."""

    def status(self) -> dict:
        return {'driver': self.name, 'driver_errors': self.errors}


def make_driver(profile: RobotProfile, overrides: dict | None = None) -> Driver:
    """The driver named in the profile (or in overrides['type'])."""
    options = {**profile.driver, **(overrides or {})}
    kind = options.get('type', 'sim')
    if kind == 'sim':
        from face_actuation.drivers.sim import SimDriver
        return SimDriver(profile, options)
    if kind == 'maestro':
        from face_actuation.drivers.maestro import MaestroDriver
        return MaestroDriver(profile, options)
    if kind == 'dynamixel':
        from face_actuation.drivers.dynamixel import DynamixelDriver
        return DynamixelDriver(profile, options)
    if kind == 'ameca_zmq':
        from face_actuation.drivers.ameca import AmecaZmqDriver
        return AmecaZmqDriver(profile, options)
    raise ProfileError(f'{profile.name}: unknown driver type {kind!r}')
