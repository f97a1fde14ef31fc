"""Pololu Maestro servo controllers over a serial port (pyserial).

Targets are sent in quarter-microseconds, 14 bits split low 7 then high 7; all motors of a
controller go out in Set Multiple Targets commands (one per run of consecutive channels),
which moves 24 servos in 4.6 ms instead of 12.5 ms of single commands. Several Maestros on
one line are addressed with the Pololu protocol (0xAA, device number, command & 0x7F, data);
one Maestro can use the compact protocol. Target 0 stops the pulses (servo limp).
"""
import numpy as np
import serial

from face_actuation.drivers import Driver, DriverError

SET_TARGET = 0x84
SET_SPEED = 0x87
SET_ACCELERATION = 0x89
GET_POSITION = 0x90
GET_ERRORS = 0xA1
GO_HOME = 0xA2
SET_MULTIPLE_TARGETS = 0x9F
POLOLU_START = 0xAA


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

    def __init__(self, profile, options):
        super().__init__(profile, options)
        if any(m.unit != 'us' for m in profile.motors):
            raise DriverError(f'{profile.name}: the Maestro driver needs motors in microseconds')
        self.port_name = options.get('port', '/dev/ttyACM0')
        self.baudrate = int(options.get('baudrate', 115200))
        per = int(options.get('channels_per_controller', 24))
        devices = options.get('device_numbers', [12])
        protocol = options.get('protocol', 'pololu' if len(devices) > 1 else 'compact')
        if protocol == 'compact' and len(devices) > 1:
            raise DriverError('several Maestros on one line need the Pololu protocol')
        self.speed = int(options.get('speed', 0))
        self.acceleration = int(options.get('acceleration', 0))
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
        for device, local in self.addresses:
            self._send(set_speed(local, self.speed, device)
                       + set_acceleration(local, self.acceleration, device))

    def _send(self, data: bytes) -> None:
        try:
            self.serial.write(data)
        except (serial.SerialException, OSError) as exc:
            self.errors += 1
            raise DriverError(f'Maestro write failed: {exc}') from None

    def encode(self, positions) -> bytes:
        """The bytes one write() sends for normalised positions."""
        quarter = np.rint(self.profile.to_native(positions) * 4).astype(int).tolist()
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
        native = []
        for device, local in self.addresses:
            lo, hi = self._query(frame(GET_POSITION, bytes([local]), device), 2)
            native.append((lo | hi << 8) / 4.0)
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
