"""On-robot side of the Ameca driver: subscribe to demands over ZeroMQ, apply them, and ease
the face to neutral after 2 s without input (as Engineered Arts' own mocap script does).

Standalone on purpose (Python standard library + pyzmq): copy this file to the robot and run it
from a Tritium script. The only robot-specific call is the `apply` callback given to run():
bind it to Tritium's control-demand API for the named control. It was not run on a real Ameca
here; everything else (receive, validate, hold, ease) is tested against a real PUB socket.

With CURVE on the computer (face-ameca-keys), copy the key folder's robot/ files to the robot
(server.key: the computer's public key; robot.key_secret: this robot's key pair, chmod 600)
and pass them to run(server_public_key=..., client_secret_key=...).
"""
import math
import time

import zmq
import zmq.auth

# X2C controls in vector order (alphabetical): name, native min, native max, neutral.
X2C_CONTROLS = (
    ('Brow Inner L', 0, 1, 0.6), ('Brow Inner R', 0, 1, 0.6),
    ('Brow Outer L', 0, 1, 0.55), ('Brow Outer R', 0, 1, 0.55),
    ('Eyelid Lower L', -1, 2, 1.0), ('Eyelid Lower R', -1, 2, 1.0),
    ('Eyelid Upper L', -1, 2, 1.0), ('Eyelid Upper R', -1, 2, 1.0),
    ('Gaze Target Phi', -130, 130, 0.0), ('Gaze Target Theta', -60, 60, 0.0),
    ('Head Pitch', -30, 20, 0.0), ('Head Roll', -20, 20, 0.0), ('Head Yaw', -30, 30, 0.0),
    ('Jaw Pitch', 0, 1, 1.0), ('Jaw Yaw', 0, 1, 0.5),
    ('Lip Bottom Curl', 0, 1, 0.0), ('Lip Bottom Depress L', 0, 1, 0.0),
    ('Lip Bottom Depress Middle', 0, 1, 0.0), ('Lip Bottom Depress R', 0, 1, 0.0),
    ('Lip Corner Raise L', 0, 1, 0.0), ('Lip Corner Raise R', 0, 1, 0.0),
    ('Lip Corner Stretch L', 0, 1, 0.0), ('Lip Corner Stretch R', 0, 1, 0.0),
    ('Lip Top Curl', 0, 1, 0.0), ('Lip Top Raise L', 0, 1, 0.0),
    ('Lip Top Raise Middle', 0, 1, 0.0), ('Lip Top Raise R', 0, 1, 0.0),
    ('Neck Pitch', -20, 30, 0.0), ('Neck Roll', -24, 24, 0.0), ('Nose Wrinkle', 0, 1, 0.0),
)
EXTRA_CONTROLS = (('Lip Corner Depress L', 0, 1, 0.0), ('Lip Pucker', 0, 1, 0.0))


class DemandFollower:
    """Latest valid demands, or an ease back to neutral after `silence_s` without any."""

    def __init__(self, socket, silence_s: float = 2.0, ease_s: float = 1.0):
        self.socket = socket
        self.silence_s = silence_s
        self.ease_s = ease_s
        self.controls = X2C_CONTROLS + EXTRA_CONTROLS
        self.neutral = {name: neutral for name, _, _, neutral in self.controls}
        self.latest = dict(self.neutral)
        self.last_time = None
        self.received = 0
        self.rejected = 0

    def parse(self, parts):
        """A message -> {control: value}, or None if it is malformed (wrong part count,
        not a number, non-finite). Values are clamped to each control's range."""
        if len(parts) not in (len(X2C_CONTROLS), len(self.controls)):
            return None
        demands = {}
        for (name, lo, hi, _), raw in zip(self.controls, parts, strict=False):
            try:
                value = float(raw.decode('utf-8'))
            except (UnicodeDecodeError, ValueError):
                return None
            if not math.isfinite(value):
                return None
            demands[name] = min(hi, max(lo, value))
        return demands

    def poll(self, now: float) -> None:
        """Take every message waiting on the socket; keep the newest valid one."""
        while True:
            try:
                parts = self.socket.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            demands = self.parse(parts)
            if demands is None:
                self.rejected += 1
                continue
            self.received += 1
            self.latest.update(demands)
            self.last_time = now

    def demands(self, now: float) -> dict:
        """What to apply now."""
        if self.last_time is None:
            return dict(self.neutral)
        silent = now - self.last_time - self.silence_s
        if silent <= 0:
            return dict(self.latest)
        progress = min(1.0, silent / self.ease_s)
        blend = 0.5 - 0.5 * math.cos(math.pi * progress)
        return {name: value + (self.neutral[name] - value) * blend
                for name, value in self.latest.items()}


def subscribe(endpoint: str, server_public_key=None, client_secret_key=None, context=None):
    """A SUB socket connected to the demands. With key files (CURVE): server_public_key is
    the computer's server.key, client_secret_key this robot's robot.key_secret; the traffic is
    encrypted and the computer only talks to robots whose public key it holds."""
    context = context or zmq.Context.instance()
    socket = context.socket(zmq.SUB)
    socket.setsockopt(zmq.LINGER, 0)
    if server_public_key or client_secret_key:
        if not (server_public_key and client_secret_key):
            raise ValueError('CURVE needs both the server public key and the robot secret key')
        public, secret = zmq.auth.load_certificate(client_secret_key)
        if secret is None:
            raise ValueError(f'{client_secret_key} holds no secret key')
        socket.curve_publickey = public
        socket.curve_secretkey = secret
        socket.curve_serverkey = zmq.auth.load_certificate(server_public_key)[0]
    socket.setsockopt(zmq.SUBSCRIBE, b'')
    socket.setsockopt(zmq.RCVHWM, 4)
    socket.connect(endpoint)
    return socket


def run(apply, endpoint: str = 'tcp://127.0.0.1:6666', rate_hz: float = 100.0,
        duration_s: float = 0.0, server_public_key=None,
        client_secret_key=None) -> DemandFollower:
    """Subscribe to `endpoint` and call apply(name, value) for every control at rate_hz."""
    socket = subscribe(endpoint, server_public_key, client_secret_key)
    follower = DemandFollower(socket)
    start = time.monotonic()
    try:
        while not duration_s or time.monotonic() - start < duration_s:
            now = time.monotonic()
            follower.poll(now)
            for name, value in follower.demands(now).items():
                apply(name, value)
            time.sleep(max(0.0, 1.0 / rate_hz - (time.monotonic() - now)))
    finally:
        socket.close(0)
    return follower


if __name__ == '__main__':
    import argparse
    parser = argparse.ArgumentParser(description='Dry run off the robot: print the jaw demand '
                                     'instead of applying the demands.')
    parser.add_argument('endpoint', nargs='?', default='tcp://127.0.0.1:6666',
                        help='the computer\'s bind address, e.g. tcp://192.168.1.10:6666')
    parser.add_argument('--server-key', help='server.key (CURVE: the computer\'s public key)')
    parser.add_argument('--client-key', help='robot.key_secret (CURVE: this robot\'s keys)')
    cli = parser.parse_args()
    run(lambda name, value: None if name != 'Jaw Pitch' else print(f'{name}: {value:.3f}'),
        cli.endpoint, server_public_key=cli.server_key, client_secret_key=cli.client_key)
