"""face-ameca-keys: the ZeroMQ CURVE keys for the Ameca driver, sorted by where they go.

    face-ameca-keys --out ~/.config/face_shadowing/ameca_keys

writes (secret files 0600, folders 0700):
    computer/server.key_secret              the computer running the actuation node: the
                                            profile's driver.curve_server_secret_key
    computer/authorized_clients/robot.key   the robots it will talk to (public keys only):
                                            driver.curve_authorized_clients
    robot/server.key                        copy to the robot: the follower's
                                            server_public_key (the computer's public key)
    robot/robot.key_secret                  copy to the robot, chmod 600: the follower's
                                            client_secret_key
Only the robot/ files leave this computer; the server secret never does.
"""
import argparse
from pathlib import Path
import re
import sys

import zmq
import zmq.auth


def write_keys(out: Path, robot_name: str = 'robot', force: bool = False) -> dict:
    """Generate the server and robot key pairs into out/computer and out/robot."""
    computer, robot = out / 'computer', out / 'robot'
    clients = computer / 'authorized_clients'
    files = {'server_secret': computer / 'server.key_secret',
             'authorized_robot': clients / f'{robot_name}.key',
             'server_public': robot / 'server.key',
             'robot_secret': robot / f'{robot_name}.key_secret'}
    existing = [str(f) for f in files.values() if f.exists()]
    if existing and not force:
        raise FileExistsError(f'keys exist already ({", ".join(existing)}); --force replaces')
    for folder in (out, computer, clients, robot):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        folder.chmod(0o700)           # the folders hide the files while they are written
    # Each pair is written beside its secret; the public halves then move to where they go.
    Path(zmq.auth.create_certificates(computer, 'server')[0]).replace(files['server_public'])
    Path(zmq.auth.create_certificates(robot, robot_name)[0]).replace(files['authorized_robot'])
    for path in files.values():
        path.chmod(0o600)
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog='face-ameca-keys', description=__doc__.split('\n')[0],
        epilog='Where each file goes: see the module docstring or the README (Ameca).')
    parser.add_argument('--out', required=True, type=Path, help='folder for the keys')
    parser.add_argument('--robot-name', default='robot', help='name of the robot key pair')
    parser.add_argument('--force', action='store_true', help='replace existing keys')
    args = parser.parse_args(argv)
    if not zmq.has('curve'):
        print('face-ameca-keys: this libzmq has no CURVE support', file=sys.stderr)
        return 1
    if not re.fullmatch(r'[A-Za-z0-9_-]{1,64}', args.robot_name):
        print('face-ameca-keys: --robot-name: 1-64 of A-Z a-z 0-9 _ -', file=sys.stderr)
        return 2
    try:
        files = write_keys(args.out.expanduser(), args.robot_name, args.force)
    except OSError as exc:
        print(f'face-ameca-keys: {exc}', file=sys.stderr)
        return 1
    print(f'on this computer (profile driver section):\n'
          f'  curve_server_secret_key: {files["server_secret"]}\n'
          f'  curve_authorized_clients: {files["authorized_robot"].parent}\n'
          f'copy to the robot (chmod 600), for the follower:\n'
          f'  server_public_key: {files["server_public"]}\n'
          f'  client_secret_key: {files["robot_secret"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
