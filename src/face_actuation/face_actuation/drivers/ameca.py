"""Engineered Arts Ameca through ZeroMQ, in the VividFace wire format.

External software does not set Ameca's motors: an on-robot Tritium script (see
face_actuation/tritium/ameca_follower.py) subscribes and applies the demands. Each write
publishes one multipart message on a PUB socket: one part per X2C control (the 30 controls in
alphabetical order, the vector order of the X2C dataset), each the value in the control's
native units as a UTF-8 decimal string. With `x2c_controls: 32` the two extra controls
follow.

Who may listen: the socket binds to one address, this computer's address on the robot LAN
(`bind_address` in the profile's driver section, never every interface unless asked), and
with `curve_server_secret_key` set it speaks ZeroMQ CURVE: traffic is encrypted and only the
robots whose public keys are in `curve_authorized_clients` complete the handshake
(`face-ameca-keys` writes the keys; see tritium/ameca_keys.py for where each file goes).
"""
import logging
from pathlib import Path
import stat

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

from face_actuation.drivers import Driver, DriverError

WILDCARD_HOSTS = ('*', '0.0.0.0', '::', '[::]')
log = logging.getLogger(__name__)


def bind_endpoint(config) -> str:
    """The endpoint to bind: `endpoint` as given, else tcp://bind_address:port."""
    if config.endpoint:
        return config.endpoint
    address = config.bind_address.strip()
    if not address:
        raise DriverError('ameca_zmq: no bind_address: set the driver\'s bind_address in the '
                          'profile to this computer\'s address on the robot LAN '
                          '(or port:=tcp://ADDRESS:6666)')
    return f'tcp://{address}:{config.port}'


def binds_every_interface(endpoint: str) -> bool:
    if not endpoint.startswith('tcp://'):
        return False
    return endpoint[len('tcp://'):].rsplit(':', 1)[0] in WILDCARD_HOSTS


def load_secret_key(path) -> tuple:
    """(public, secret) from a CURVE secret-key file that only its owner can read."""
    path = Path(path).expanduser()
    try:
        mode = path.stat().st_mode
        public, secret = zmq.auth.load_certificate(path)
    except (OSError, ValueError) as exc:
        raise DriverError(f'ameca_zmq: cannot read the CURVE secret key {path}: {exc}') from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise DriverError(f'ameca_zmq: {path} is readable by other users; chmod 600 it')
    if secret is None:
        raise DriverError(f'ameca_zmq: {path} holds no secret key (a .key_secret file is '
                          'needed)')
    return public, secret


def check_not_writable_by_others(folder: Path) -> None:
    """The robot allowlist: a key another user could drop in would admit their subscriber."""
    for path in (folder, *folder.glob('*.key')):
        if path.stat().st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise DriverError(f'ameca_zmq: {path} is writable by other users (anyone could '
                              f'add a robot key); chmod go-w it')


class AmecaZmqDriver(Driver):
    name = 'ameca_zmq'

    def __init__(self, profile, config):
        super().__init__(profile, config)
        self.endpoint = bind_endpoint(config)
        self.parts = config.x2c_controls
        if not 1 <= self.parts <= profile.num_motors:
            raise DriverError(f'{profile.name}: driver.x2c_controls must be '
                              f'1..{profile.num_motors} (its motors)')
        self.server_key = config.curve_server_secret_key
        clients = config.curve_authorized_clients or (
            Path(self.server_key).expanduser().parent / 'authorized_clients'
            if self.server_key else '')
        self.authorized_clients = Path(clients).expanduser() if clients else None
        self.context = None
        self.authenticator = None
        self.socket = None

    def connect(self) -> None:
        if binds_every_interface(self.endpoint):
            log.warning('ameca_zmq: %s listens on every network interface: anyone who can '
                        'reach this computer can read the demands%s', self.endpoint,
                        '' if self.server_key else ' (no CURVE authentication)')
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, 2)        # stale demands are dropped, not queued
        self.socket.setsockopt(zmq.LINGER, 0)
        if self.server_key:
            self._enable_curve()
        try:
            self.socket.bind(self.endpoint)
        except zmq.ZMQError as exc:
            self.disconnect()
            raise DriverError(f'cannot bind {self.endpoint}: {exc} (bind_address must be an '
                              'address of this computer)') from None

    def _enable_curve(self) -> None:
        """CURVE server with a ZAP handler that admits only the authorized robots' keys."""
        if not zmq.has('curve'):
            self.disconnect()
            raise DriverError('ameca_zmq: this libzmq has no CURVE support')
        try:
            public, secret = load_secret_key(self.server_key)
            if self.authorized_clients is None or not any(
                    self.authorized_clients.glob('*.key')):
                raise DriverError(f'ameca_zmq: no authorized robot keys (*.key) in '
                                  f'{self.authorized_clients}')
            check_not_writable_by_others(self.authorized_clients)
        except DriverError:
            self.disconnect()
            raise
        self.authenticator = ThreadAuthenticator(self.context)
        self.authenticator.start()
        self.authenticator.configure_curve(domain='*', location=str(self.authorized_clients))
        self.socket.curve_secretkey = secret
        self.socket.curve_publickey = public
        self.socket.curve_server = True

    @staticmethod
    def format_value(value: float) -> bytes:
        return f'{value:.4f}'.encode()

    def write(self, positions) -> None:
        native = self.profile.to_native(positions)[:self.parts]
        try:
            self.socket.send_multipart([self.format_value(v) for v in native], zmq.NOBLOCK)
        except zmq.Again:
            self.errors += 1                          # subscriber not keeping up: drop
        except zmq.ZMQError as exc:
            self.errors += 1
            raise DriverError(f'ZeroMQ send failed: {exc}') from None

    def limp(self) -> None:
        """Ameca's motors are not ours to switch off: stop sending, and the on-robot script
        eases the face to neutral after 2 s of silence (the node stops calling write())."""

    def disconnect(self) -> None:
        if self.socket is not None:
            self.socket.close(0)
            self.socket = None
        if self.authenticator is not None:
            self.authenticator.stop()
            self.authenticator = None
        if self.context is not None:
            self.context.term()
            self.context = None
