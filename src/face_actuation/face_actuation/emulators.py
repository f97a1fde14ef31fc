"""Emulated servo controllers on a pseudo-terminal, speaking the real protocols byte for byte.

The driver opens the pty's device path like any serial port; the emulator decodes every byte
it receives with its own, independent protocol code (nothing shared with the drivers), keeps
the device state, answers queries, and logs what it decoded. Used by the tests, and to develop
without a robot: `face-emulate maestro` prints a device path to put in a profile.
"""
import math
import os
from pathlib import Path
import select
import shutil
import tempfile
import threading
import time
import tty
from typing import ClassVar


class PtyDevice:
    """A pseudo-terminal whose far end is served by decode() on a thread.

    `path` is a stable symlink (as /dev/serial/by-id/... is for a real USB adapter) to the
    current pty. unplug() does what pulling the USB cable does: the device node vanishes and
    the driver's open descriptor fails with EIO; replug() brings a fresh pty up behind the
    same path, so a driver that reopens its port finds the device again."""

    def __init__(self):
        self._link_dir = tempfile.mkdtemp(prefix='face-emulator-')
        self.path = str(Path(self._link_dir) / f'usb-{type(self).__name__}-if00')
        self.raw = bytearray()
        self.log = []
        self.errors = []
        self._lock = threading.Lock()
        self.plugged = False
        self.power_on()
        self._plug()

    def power_on(self) -> None:
        """The device state right after power is applied."""

    def _plug(self) -> None:
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        self.tty = os.ttyname(self.slave)
        staging = f'{self.path}.new'
        os.symlink(self.tty, staging)
        os.replace(staging, self.path)
        self._running = True
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        self.plugged = True

    def unplug(self) -> None:
        """Pull the cable: reads and writes on the driver's descriptor fail with EIO, and
        the port cannot be reopened until replug()."""
        if not self.plugged:
            return
        self.plugged = False
        self._running = False
        self._thread.join(timeout=1.0)
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass
        Path(self.path).unlink(missing_ok=True)

    def replug(self, power_cycle: bool = False) -> None:
        """Plug the cable back in (a fresh pty behind the same path); with power_cycle the
        device also lost power, so it comes back in its power-on state."""
        if self.plugged:
            return
        if power_cycle:
            with self._lock:
                self.power_on()
        self._plug()

    def _serve(self) -> None:
        buffer = bytearray()
        while self._running:
            ready, _, _ = select.select([self.master], [], [], 0.05)
            if not ready:
                continue
            try:
                chunk = os.read(self.master, 4096)
            except OSError:
                return
            with self._lock:
                self.raw.extend(chunk)
            buffer.extend(chunk)
            try:
                consumed = self.decode(buffer)
            except Exception as exc:                 # a protocol error is a test failure
                self.errors.append(repr(exc))
                consumed = len(buffer)
            del buffer[:consumed]

    def decode(self, buffer: bytearray) -> int:
        """Handle complete commands at the start of buffer; return bytes consumed."""
        raise NotImplementedError

    def reply(self, data: bytes) -> None:
        os.write(self.master, data)

    def record(self, entry) -> None:
        with self._lock:
            self.log.append(entry)

    def take_raw(self) -> bytes:
        with self._lock:
            data = bytes(self.raw)
            self.raw.clear()
            return data

    def wait_for(self, count: int, timeout: float = 2.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.log) >= count:
                    return True
            time.sleep(0.002)
        return False

    def close(self) -> None:
        self.unplug()
        shutil.rmtree(self._link_dir, ignore_errors=True)


class MaestroEmulator(PtyDevice):
    """Pololu Maestro: compact and Pololu protocols, targets in quarter-microseconds.

    As on the real controller after power-up, no channel sends pulses and every position
    reads 0 until its first target (kept in first_targets). A first target (or one after
    target 0 = off) is taken at once, because the controller cannot know where the servo
    was; after that the position moves toward the target in 10 ms steps under the
    channel's speed ((0.25 us)/(10 ms)) and acceleration ((0.25 us)/(10 ms)/(80 ms))
    settings, 0 meaning unlimited."""

    LENGTHS: ClassVar[dict] = {0x84: 3, 0x87: 3, 0x89: 3, 0x90: 1, 0xA1: 0, 0xA2: 0}
    STEP_S = 0.01

    def __init__(self, device_numbers=(12,)):
        self.devices = set(device_numbers)
        super().__init__()

    def power_on(self) -> None:
        self.targets = {}           # (device or None, channel) -> quarter-us
        self.positions = {}         # (device or None, channel) -> quarter-us; 0 = no pulses
        self.velocities = {}        # quarter-us per 10 ms step
        self.first_targets = {}
        self.speeds = {}
        self.accelerations = {}
        self.error_bits = 0
        self._clock = time.monotonic()

    def _advance(self) -> None:
        """Move every servo for the whole 10 ms steps elapsed since the last call."""
        steps = int((time.monotonic() - self._clock) / self.STEP_S)
        if steps <= 0:
            return
        self._clock += steps * self.STEP_S
        for key, target in self.targets.items():
            if self.positions.get(key, 0) != target:
                self._move(key, target, steps)

    def _move(self, key, target: int, steps: int) -> None:
        position = self.positions[key]
        velocity = self.velocities.get(key, 0.0)
        speed = self.speeds.get(key, 0) or math.inf
        change = self.accelerations.get(key, 0) / 8          # per 10 ms step
        for _ in range(steps):
            remaining = abs(target - position)
            if remaining == 0:
                velocity = 0.0
                break
            if change:                   # ramp up, cruise, and ramp down to stop on target
                velocity = min(velocity + change, speed,
                               max(change, math.sqrt(2 * change * remaining)))
            else:
                velocity = speed
            position += math.copysign(min(velocity, remaining), target - position)
        self.positions[key], self.velocities[key] = position, velocity

    def _set_target(self, key, value: int) -> None:
        self.targets[key] = value
        if value == 0 or not self.positions.get(key):
            self.positions[key], self.velocities[key] = value, 0.0
        if value and key not in self.first_targets:
            self.first_targets[key] = value

    def position(self, device, channel) -> int:
        """What Get Position would answer now."""
        with self._lock:
            self._advance()
            return round(self.positions.get((device, channel), 0))

    def decode(self, buffer: bytearray) -> int:
        pos = 0
        while pos < len(buffer):
            device, start = None, pos
            if buffer[pos] == 0xAA:
                if len(buffer) - pos < 3:
                    break
                device, command = buffer[pos + 1], buffer[pos + 2] | 0x80
                pos += 3
            else:
                command = buffer[pos]
                if command < 0x80:
                    raise ValueError(f'data byte {command:#x} where a command was expected')
                pos += 1
            if command == 0x9F:
                if len(buffer) - pos < 2:
                    return start
                count = buffer[pos]
                size = 2 + 2 * count
            elif command in self.LENGTHS:
                size = self.LENGTHS[command]
            else:
                raise ValueError(f'unknown Maestro command {command:#x}')
            if len(buffer) - pos < size:
                return start
            data = bytes(buffer[pos:pos + size])
            if any(b & 0x80 for b in data):
                raise ValueError(f'data byte with the top bit set in {data.hex()}')
            pos += size
            self._execute(device, command, data)
        return pos

    @staticmethod
    def _word(low: int, high: int) -> int:
        return low | high << 7

    def _execute(self, device, command, data) -> None:
        if device is not None and device not in self.devices:
            return                                   # another device on the line
        with self._lock:
            self._advance()
        if command == 0x84:
            self._set_target((device, data[0]), self._word(data[1], data[2]))
            self.record(('set_target', device, data[0], self._word(data[1], data[2])))
        elif command == 0x87:
            self.speeds[(device, data[0])] = self._word(data[1], data[2])
            self.record(('set_speed', device, data[0], self._word(data[1], data[2])))
        elif command == 0x89:
            self.accelerations[(device, data[0])] = self._word(data[1], data[2])
            self.record(('set_acceleration', device, data[0], self._word(data[1], data[2])))
        elif command == 0x9F:
            count, first = data[0], data[1]
            values = [self._word(data[2 + 2 * i], data[3 + 2 * i]) for i in range(count)]
            for offset, value in enumerate(values):
                self._set_target((device, first + offset), value)
            self.record(('set_multiple_targets', device, first, values))
        elif command == 0x90:
            value = self.position(device, data[0])
            self.record(('get_position', device, data[0]))
            self.reply(bytes([value & 0xFF, value >> 8]))
        elif command == 0xA1:
            bits, self.error_bits = self.error_bits, 0
            self.record(('get_errors', device))
            self.reply(bytes([bits & 0xFF, bits >> 8]))
        elif command == 0xA2:
            self.record(('go_home', device))


def dynamixel_crc(data: bytes) -> int:
    """CRC-16 of Dynamixel Protocol 2.0 (polynomial 0x8005, initial 0, not reflected)."""
    crc = 0
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x8005) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def _unstuff(payload: bytes) -> bytes:
    return payload.replace(b'\xff\xff\xfd\xfd', b'\xff\xff\xfd')


def _stuff(payload: bytes) -> bytes:
    return payload.replace(b'\xff\xff\xfd', b'\xff\xff\xfd\xfd')


class DynamixelEmulator(PtyDevice):
    """A bus of Dynamixel X-series servos (Protocol 2.0): ping, read, write, sync read/write."""

    HEADER = b'\xff\xff\xfd\x00'

    def __init__(self, ids, model_number=1060, horn=2048):
        """horn: where each servo's horn was left, the present position at power-on (ticks;
        one value for all, or a dict id -> ticks)."""
        self.ids = list(ids)
        self.horn = horn
        self.model_number = model_number
        super().__init__()

    def power_on(self) -> None:
        """Torque off, present position where the horn was left, goal register 0."""
        self.tables = {i: bytearray(256) for i in self.ids}
        for dxl_id, table in self.tables.items():
            ticks = self.horn[dxl_id] if isinstance(self.horn, dict) else self.horn
            table[132:136] = (int(ticks) & 0xFFFFFFFF).to_bytes(4, 'little')

    def decode(self, buffer: bytearray) -> int:
        pos = 0
        while True:
            start = buffer.find(self.HEADER, pos)
            if start < 0:
                return max(pos, len(buffer) - 3)
            if len(buffer) - start < 7:
                return start
            length = buffer[start + 5] | buffer[start + 6] << 8
            end = start + 7 + length
            if len(buffer) < end:
                return start
            packet = bytes(buffer[start:end])
            crc = packet[-2] | packet[-1] << 8
            if dynamixel_crc(packet[:-2]) != crc:
                raise ValueError(f'bad CRC in {packet.hex()}')
            body = _unstuff(packet[7:-2])
            self._execute(packet[4], body[0], body[1:])
            pos = end

    def _status(self, dxl_id: int, params: bytes = b'', error: int = 0) -> None:
        body = _stuff(bytes([0x55, error]) + params)
        head = self.HEADER + bytes([dxl_id, (len(body) + 2) & 0xFF, (len(body) + 2) >> 8])
        packet = head + body
        crc = dynamixel_crc(packet)
        self.reply(packet + bytes([crc & 0xFF, crc >> 8]))

    def _execute(self, dxl_id, instruction, params) -> None:
        # every command is logged before the reply: a driver that got its answer may act on
        # it at once, and a test reading the log must already see the command
        if instruction == 0x01:                                   # ping
            self.record(('ping', dxl_id))
            if dxl_id in self.tables:
                self._status(dxl_id, bytes([self.model_number & 0xFF, self.model_number >> 8,
                                            52]))
        elif instruction == 0x02:                                 # read
            address, size = params[0] | params[1] << 8, params[2] | params[3] << 8
            self.record(('read', dxl_id, address, size))
            if dxl_id in self.tables:
                self._status(dxl_id, bytes(self.tables[dxl_id][address:address + size]))
        elif instruction == 0x03:                                 # write
            address = params[0] | params[1] << 8
            data = params[2:]
            self.record(('write', dxl_id, address, bytes(data)))
            if dxl_id in self.tables:
                self.tables[dxl_id][address:address + len(data)] = data
                self._apply(dxl_id, address)
                self._status(dxl_id)
        elif instruction == 0x83:                                 # sync write
            address, size = params[0] | params[1] << 8, params[2] | params[3] << 8
            entries = {}
            for offset in range(4, len(params), size + 1):
                target = params[offset]
                data = params[offset + 1:offset + 1 + size]
                entries[target] = bytes(data)
                if target in self.tables:
                    self.tables[target][address:address + size] = data
                    self._apply(target, address)
            self.record(('sync_write', address, size, entries))
        elif instruction == 0x82:                                 # sync read
            address, size = params[0] | params[1] << 8, params[2] | params[3] << 8
            self.record(('sync_read', address, size, list(params[4:])))
            for target in params[4:]:
                if target in self.tables:
                    self._status(target, bytes(self.tables[target][address:address + size]))
        else:
            raise ValueError(f'instruction {instruction:#x} not emulated')

    def _apply(self, dxl_id: int, address: int) -> None:
        """With torque off a goal is stored but nothing moves; with torque on the horn
        reaches the goal. Turning the torque on drives the horn to whatever the goal
        register holds (the worst case a driver must be safe against: write the goal
        first)."""
        table = self.tables[dxl_id]
        if address in (64, 116) and table[64]:
            table[132:136] = table[116:120]

    def value(self, dxl_id: int, address: int, size: int) -> int:
        return int.from_bytes(self.tables[dxl_id][address:address + size], 'little')


def main(argv=None):
    """face-emulate maestro|dynamixel [--ids N]: run an emulated controller on a pty."""
    import argparse
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument('kind', choices=('maestro', 'dynamixel'),
                        help='controller to emulate (Pololu Maestro or Dynamixel bus)')
    parser.add_argument('--devices', type=int, nargs='*', default=[12, 13],
                        help='Maestro device numbers')
    parser.add_argument('--ids', type=int, default=32, help='Dynamixel ids 1..N')
    args = parser.parse_args(argv)
    device = (MaestroEmulator(args.devices) if args.kind == 'maestro'
              else DynamixelEmulator(range(1, args.ids + 1)))
    print(f'{args.kind} emulator on {device.path} (Ctrl-C to stop)', flush=True)
    try:
        while True:
            time.sleep(1.0)
            if device.errors:
                print('protocol errors:', device.errors[-3:], flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        device.close()
