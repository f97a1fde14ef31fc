"""Robot drivers: the last step between normalised positions and a real (or simulated) head.

A driver follows LeRobot's small robot interface: connect(), read_positions(), write(),
limp(), disconnect(). Positions cross it normalised 0..1 in the profile's motor order; each
driver converts to its native units (Maestro quarter-microseconds, Dynamixel ticks, Ameca
control units) with the profile. The safety layer always sits in front of write(). Each takes
its typed section of the profile (profile.py: MaestroConfig, ...), checked when read.
"""
from face_actuation.profile import DriverConfig, RobotProfile, driver_with


class DriverError(RuntimeError):
    """The hardware could not be reached or answered with an error."""


class UnencodableValue(DriverError):
    """A value the protocol cannot carry (NaN, or outside the wire format's range). Raised
    while encoding, before any byte is written: the link itself is fine."""


class Driver:
    """Base class; subclasses talk to one kind of hardware."""

    name = 'driver'
    unit = ''                    # the motor unit the hardware speaks ('' = any)

    def __init__(self, profile: RobotProfile, config: DriverConfig):
        if self.unit and any(m.unit != self.unit for m in profile.motors):
            raise DriverError(f'{profile.name}: the {self.name} driver needs every motor in '
                              f'{self.unit} (the profile\'s unit)')
        self.profile = profile
        self.config = config
        self.errors = 0

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


def make_driver(profile: RobotProfile, overrides: dict | None = None) -> Driver:
    """The driver named in the profile, with overrides of its options (overrides['type']:
    another driver, from its defaults); a bad option is a ProfileError that names it."""
    config = driver_with(profile.driver, overrides, f'{profile.name}: driver') \
        if overrides else profile.driver
    if config.type == 'sim':
        from face_actuation.drivers.sim import SimDriver
        return SimDriver(profile, config)
    if config.type == 'maestro':
        from face_actuation.drivers.maestro import MaestroDriver
        return MaestroDriver(profile, config)
    if config.type == 'dynamixel':
        from face_actuation.drivers.dynamixel import DynamixelDriver
        return DynamixelDriver(profile, config)
    from face_actuation.drivers.ameca import AmecaZmqDriver
    return AmecaZmqDriver(profile, config)
