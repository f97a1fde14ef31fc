"""Pololu Maestro servo controllers over a serial port (pyserial).

Targets are sent in quarter-microseconds, 14 bits split low 7 then high 7; all motors of a
controller go out in Set Multiple Targets commands (one per run of consecutive channels),
which moves 24 servos in 4.6 ms instead of 12.5 ms of single commands. Several Maestros on
one line are addressed with the Pololu protocol (0xAA, device number, command & 0x7F, data);
one Maestro can use the compact protocol. Target 0 stops the pulses (servo limp).

Power-up: an idle Maestro sends no pulses and reports position 0 for such a servo, so a 0
reading means "unknown" (NaN), never a position; until the safety layer has eased the face to
neutral, every channel's speed and acceleration are set to the profile's motor limits (in
Maestro units), never 0 = unlimited; finish_power_up() restores the driver's own settings.
"""
import math

import numpy as np
import serial

from face_actuation.drivers import Driver, DriverError, UnencodableValue

SET_TARGET = 0x84
SET_SPEED = 0x87
SET_ACCELERATION = 0x89
GET_POSITION = 0x90
GET_ERRORS = 0xA1
SET_MULTIPLE_TARGETS = 0x9F
POLOLU_START = 0xAA
TARGET_LIMIT = 1 << 14           # targets are 14-bit quarter-microseconds
MAX_ACCELERATION = 255           # the Maestro's largest acceleration setting


def speed_units(us_per_s: float) -> int:
    """A speed limit in Maestro units, (0.25 us)/(10 ms), rounded down so the controller is
    never faster than the limit, and at least 1 (0 would mean unlimited)."""
    return int(min(max(math.floor(us_per_s * 4 * 0.01), 1), TARGET_LIMIT - 1))


def acceleration_units(us_per_s2: float) -> int:
    """An acceleration limit in Maestro units, (0.25 us)/(10 ms)/(80 ms), 1..255."""
    return int(min(max(math.floor(us_per_s2 * 4 * 0.01 * 0.08), 1), MAX_ACCELERATION))


def split14(value: int) -> bytes:
    """A 14-bit value as two 7-bit data bytes, low first (1500 us -> 6000 -> 0x70 0x2E)."""
    value = int(value)
    if not 0 <= value < 1 << 14:
        raise ValueError(f'{value} does not fit in 14 bits')
    return bytes([value & 0x7F, (value >> 7) & 0x7F])


def frame(command: int, data: bytes, device: int | None = None) -> bytes:
    """One command in the compact protocol (device None) or the Pololu protocol."""
    if device is None:
        return bytes([command]) + data
    return bytes([POLOLU_START, device & 0x7F, command & 0x7F]) + data


def set_target(channel: int, quarter_us: int, device=None) -> bytes:
    return frame(SET_TARGET, bytes([channel]) + split14(quarter_us), device)


def set_multiple_targets(first_channel: int, quarter_us, device=None) -> bytes:
    data = bytes([len(quarter_us), first_channel])
    for value in quarter_us:
        data += split14(value)
    return frame(SET_MULTIPLE_TARGETS, data, device)


def set_speed(channel: int, speed: int, device=None) -> bytes:
    return frame(SET_SPEED, bytes([channel]) + split14(speed), device)


def set_acceleration(channel: int, acceleration: int, device=None) -> bytes:
    return frame(SET_ACCELERATION, bytes([channel]) + split14(acceleration), device)


class MaestroDriver(Driver):
    name = 'maestro'
    unit = 'us'

    def __init__(self, profile, config):
        super().__init__(profile, config)
        self.port_name = config.port
        self.baudrate = config.baudrate
        per = config.channels_per_controller
        devices = config.device_numbers
        protocol = config.protocol or ('pololu' if len(devices) > 1 else 'compact')
        if protocol == 'compact' and len(devices) > 1:
            raise DriverError('several Maestros on one line need the Pololu protocol')
        self.speed = config.speed
        self.acceleration = config.acceleration
        spans = [m.max - m.min for m in profile.motors]
        self.power_up_speeds = [speed_units(m.max_velocity * span)
                                for m, span in zip(profile.motors, spans, strict=True)]
        self.power_up_accelerations = [acceleration_units(m.max_acceleration * span)
                                       for m, span in zip(profile.motors, spans, strict=True)]
        # motor index -> (device, local channel); runs of consecutive channels per device
        self.addresses = []
        for motor in profile.motors:
            controller, local = divmod(motor.channel, per)
            if motor.channel < 0 or controller >= len(devices):
                raise DriverError(f'{motor.name}: channel {motor.channel} has no controller')
            device = devices[controller] if protocol == 'pololu' else None
            self.addresses.append((device, local))
        self._runs = self._plan_runs()
        self.serial = None

    def _plan_runs(self):
        by_device = {}
        for index, (device, local) in enumerate(self.addresses):
            by_device.setdefault(device, []).append((local, index))
        runs = []
        for device, channels in by_device.items():
            channels.sort()
            current = [channels[0]]
            for item in channels[1:]:
                if item[0] == current[-1][0] + 1:
                    current.append(item)
                else:
                    runs.append((device, current))
                    current = [item]
            runs.append((device, current))
        return runs

    def connect(self) -> None:
        try:
            self.serial = serial.Serial(self.port_name, self.baudrate, timeout=0.05,
                                        write_timeout=0.1)
        except serial.SerialException as exc:
            raise DriverError(f'cannot open Maestro port {self.port_name}: {exc}') from None
        self._set_motion_limits(self.power_up_speeds, self.power_up_accelerations)

    def finish_power_up(self) -> None:
        count = len(self.addresses)
        self._set_motion_limits([self.speed] * count, [self.acceleration] * count)

    def _set_motion_limits(self, speeds, accelerations) -> None:
        self._send(b''.join(set_speed(local, speed, device)
                            + set_acceleration(local, acceleration, device)
                            for (device, local), speed, acceleration
                            in zip(self.addresses, speeds, accelerations, strict=True)))

    def _send(self, data: bytes) -> None:
        try:
            self.serial.write(data)
        except (serial.SerialException, OSError) as exc:
            self.errors += 1
            raise DriverError(f'Maestro write failed: {exc}') from None

    def encode(self, positions) -> bytes:
        """The bytes one write() sends for normalised positions; UnencodableValue, before
        anything is sent, for a target that does not fit 14 bits (or is NaN)."""
        quarter = np.rint(self.profile.to_native(positions) * 4)
        bad = ~(np.isfinite(quarter) & (quarter >= 0) & (quarter < TARGET_LIMIT))
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise UnencodableValue(
                f'{self.profile.motors[index].name}: target {quarter[index] / 4} us does not '
                f'fit the Maestro\'s 14-bit quarter-microseconds (0..{(TARGET_LIMIT - 1) / 4} us)')
        quarter = quarter.astype(int).tolist()
        return b''.join(set_multiple_targets(run[0][0], [quarter[i] for _, i in run], device)
                        for device, run in self._runs)

    def write(self, positions) -> None:
        self._send(self.encode(positions))

    def limp(self) -> None:
        self._send(b''.join(set_target(local, 0, device) for device, local in self.addresses))

    def _query(self, request: bytes, size: int) -> bytes:
        self.serial.reset_input_buffer()
        self._send(request)
        reply = self.serial.read(size)
        if len(reply) != size:
            self.errors += 1
            raise DriverError(f'Maestro did not answer ({len(reply)}/{size} bytes)')
        return reply

    def read_positions(self):
        """Normalised positions; NaN for a servo that reports 0 (no pulses: unknown)."""
        native = []
        for device, local in self.addresses:
            lo, hi = self._query(frame(GET_POSITION, bytes([local]), device), 2)
            quarter = lo | hi << 8
            native.append(quarter / 4.0 if quarter else np.nan)
        return self.profile.from_native(native)

    def read_errors(self) -> dict:
        """Maestro error bits per device (0 = fine); reading clears them."""
        result = {}
        for device in sorted({d for d, _ in self.addresses}, key=lambda d: -1 if d is None else d):
            lo, hi = self._query(frame(GET_ERRORS, b'', device), 2)
            result[device] = lo | hi << 8
        if any(result.values()):
            self.errors += 1
        return result

    def poll_errors(self) -> str:
        bits = {device: value for device, value in self.read_errors().items() if value}
        return ', '.join(f'Maestro {device if device is not None else ""} error bits '
                         f'{value:#06x}' for device, value in bits.items())

    def disconnect(self) -> None:
        if self.serial is not None:
            self.serial.close()
            self.serial = None
