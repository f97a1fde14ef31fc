"""Dynamixel X-series servos, Protocol 2.0, through ROBOTIS' dynamixel-sdk.

Goal positions for every motor go out in one GroupSyncWrite per tick (one packet on the bus);
present positions come back with one GroupSyncRead. Control-table addresses (X series):
torque enable 64, profile acceleration 108, profile velocity 112, goal position 116, present
position 132.

Power-up: a servo that has just been powered has its torque off and its horn wherever it was
left. connect() reads the present positions while the torque is still off, sets each goal to
that present position, and only then enables the torque, so turning it on moves nothing; the
safety layer then eases the face to neutral from there.
"""
import dynamixel_sdk as dxl
import numpy as np

from face_actuation.drivers import Driver, DriverError, UnencodableValue

TORQUE_ENABLE = 64
PROFILE_ACCELERATION = 108
PROFILE_VELOCITY = 112
GOAL_POSITION = 116
PRESENT_POSITION = 132
GOAL_LIMIT = 1_048_575           # X series goal position range, extended position mode


def _le32(value: int):
    value = int(value) & 0xFFFFFFFF
    return [value & 0xFF, (value >> 8) & 0xFF, (value >> 16) & 0xFF, (value >> 24) & 0xFF]


class DynamixelDriver(Driver):
    name = 'dynamixel'
    unit = 'ticks'

    def __init__(self, profile, config):
        super().__init__(profile, config)
        self.ids = [m.channel for m in profile.motors]
        if any(not 0 <= i <= 252 for i in self.ids) or len(set(self.ids)) != len(self.ids):
            raise DriverError(f'{profile.name}: Dynamixel ids must be unique, 0..252')
        self.port = dxl.PortHandler(config.port)
        self.packet = dxl.PacketHandler(2.0)
        self.baudrate = config.baudrate
        self.profile_velocity = config.profile_velocity
        self.profile_acceleration = config.profile_acceleration
        self._sync_write = dxl.GroupSyncWrite(self.port, self.packet, GOAL_POSITION, 4)
        self._sync_read = dxl.GroupSyncRead(self.port, self.packet, PRESENT_POSITION, 4)
        for dxl_id in self.ids:
            self._sync_read.addParam(dxl_id)
        self._limp = False        # torque turned off by limp(): the next write turns it on

    def _check(self, result, error, what: str) -> None:
        if result != dxl.COMM_SUCCESS:
            self.errors += 1
            raise DriverError(f'{what}: {self.packet.getTxRxResult(result)}')
        if error:
            self.errors += 1
            raise DriverError(f'{what}: {self.packet.getRxPacketError(error)}')

    def connect(self) -> None:
        try:
            opened = self.port.openPort() and self.port.setBaudRate(self.baudrate)
        except Exception as exc:          # the SDK raises serial errors of any kind
            raise DriverError(f'cannot open {self.port.getPortName()}: {exc}') from None
        if not opened:
            raise DriverError(f'cannot open {self.port.getPortName()} at {self.baudrate} baud')
        for dxl_id in self.ids:
            self._check(*self.packet.write4ByteTxRx(self.port, dxl_id, PROFILE_ACCELERATION,
                                                    self.profile_acceleration),
                        f'id {dxl_id} profile acceleration')
            self._check(*self.packet.write4ByteTxRx(self.port, dxl_id, PROFILE_VELOCITY,
                                                    self.profile_velocity),
                        f'id {dxl_id} profile velocity')
        self._send_goals(self._present_ticks())          # torque on will hold, not move
        self._set_torque(1)

    def encode(self, positions) -> list:
        """Goal ticks for normalised positions; UnencodableValue, before anything is sent,
        for a NaN or a goal outside the X series' range."""
        ticks = np.rint(self.profile.to_native(positions))
        bad = ~(np.isfinite(ticks) & (np.abs(ticks) <= GOAL_LIMIT))
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise UnencodableValue(f'{self.profile.motors[index].name}: goal {ticks[index]} '
                                   f'ticks is outside the Dynamixel range +-{GOAL_LIMIT}')
        return ticks.astype(int).tolist()

    def write(self, positions) -> None:
        self._send_goals(self.encode(positions))
        if self._limp:            # after limp(): the goal is set first, so torque on holds
            self._set_torque(1)

    def _set_torque(self, enable: int) -> None:
        for dxl_id in self.ids:
            self._check(*self.packet.write1ByteTxRx(self.port, dxl_id, TORQUE_ENABLE, enable),
                        f'id {dxl_id} torque {"enable" if enable else "disable"}')
        self._limp = not enable

    def _send_goals(self, ticks) -> None:
        self._sync_write.clearParam()
        for dxl_id, value in zip(self.ids, ticks, strict=True):
            self._sync_write.addParam(dxl_id, _le32(value))
        result = self._sync_write.txPacket()
        if result != dxl.COMM_SUCCESS:
            self.errors += 1
            raise DriverError(f'sync write: {self.packet.getTxRxResult(result)}')

    def read_positions(self):
        return self.profile.from_native(self._present_ticks())

    def _present_ticks(self) -> list:
        result = self._sync_read.txRxPacket()
        if result != dxl.COMM_SUCCESS:
            self.errors += 1
            raise DriverError(f'sync read: {self.packet.getTxRxResult(result)}')
        ticks = []
        for dxl_id in self.ids:
            if not self._sync_read.isAvailable(dxl_id, PRESENT_POSITION, 4):
                self.errors += 1
                raise DriverError(f'id {dxl_id}: no present position in the sync read')
            value = self._sync_read.getData(dxl_id, PRESENT_POSITION, 4)
            ticks.append(value - (1 << 32) if value >= 1 << 31 else value)
        return ticks

    def limp(self) -> None:
        self._set_torque(0)

    def disconnect(self) -> None:
        if self.port.is_open:
            self.port.closePort()
        # a transfer cut short by an exception (an unplugged adapter) leaves the SDK's busy
        # flag set, and every later packet would fail with "Port is in use"
        self.port.is_using = False
