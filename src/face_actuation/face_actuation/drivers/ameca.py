"""Engineered Arts Ameca through ZeroMQ, in the VividFace wire format.

External software does not set Ameca's motors: an on-robot Tritium script (see
face_actuation/tritium/ameca_follower.py) subscribes and applies the demands. Each write
publishes one multipart message on a PUB socket: one part per X2C control (the 30 controls in
alphabetical order, the vector order of the X2C dataset), each the value in the control's
native units as a UTF-8 decimal string. With `parts: 32` the two extra controls follow.
"""
import zmq

from face_actuation.drivers import Driver, DriverError


class AmecaZmqDriver(Driver):
    name = 'ameca_zmq'

    def __init__(self, profile, options):
        super().__init__(profile, options)
        self.endpoint = options.get('endpoint', 'tcp://*:6666')
        self.parts = int(options.get('parts', options.get('x2c_controls', 30)))
        if not 1 <= self.parts <= profile.num_motors:
            raise DriverError(f'parts must be 1..{profile.num_motors}')
        self.context = None
        self.socket = None
        self.sending = False

    def connect(self) -> None:
        self.context = zmq.Context.instance()
        self.socket = self.context.socket(zmq.PUB)
        self.socket.setsockopt(zmq.SNDHWM, 2)        # stale demands are dropped, not queued
        self.socket.setsockopt(zmq.LINGER, 0)
        try:
            self.socket.bind(self.endpoint)
        except zmq.ZMQError as exc:
            raise DriverError(f'cannot bind {self.endpoint}: {exc}') from None
        self.sending = True

    @staticmethod
    def format_value(value: float) -> bytes:
        return f'{value:.4f}'.encode()

    def write(self, positions) -> None:
        native = self.profile.to_native(positions)[:self.parts]
        self.sending = True
        try:
            self.socket.send_multipart([self.format_value(v) for v in native], zmq.NOBLOCK)
        except zmq.Again:
            self.errors += 1                          # subscriber not keeping up: drop
        except zmq.ZMQError as exc:
            self.errors += 1
            raise DriverError(f'ZeroMQ send failed: {exc}') from None

    def limp(self) -> None:
        """Ameca's motors are not ours to switch off: stop sending, and the on-robot script
        eases the face to neutral after 2 s of silence."""
        self.sending = False

    def disconnect(self) -> None:
        if self.socket is not None:
            self.socket.close(0)
            self.socket = None
