"""Who can listen to Ameca's demands: the driver binds the profile's robot-LAN address (never
every interface unless asked, and then with a warning), and with CURVE keys from
face-ameca-keys only the authorized robot receives; all over real ZeroMQ sockets on loopback."""
import logging
from pathlib import Path
import socket
import stat
import time

import pytest
import zmq

from conftest import free_port
from face_actuation.drivers import DriverError, make_driver
from face_actuation.drivers.ameca import binds_every_interface
from face_actuation.profile import load_profile
from face_actuation.tritium.ameca_follower import DemandFollower, subscribe
from face_actuation.tritium.ameca_keys import main as keys_main

AMECA = load_profile('ameca', '/nonexistent')


def accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0):
            return True
    except OSError:
        return False


def test_the_shipped_profile_binds_one_lan_address_not_every_interface():
    driver = make_driver(AMECA)
    assert driver.endpoint == f'tcp://{AMECA.driver.bind_address}:6666'
    assert not binds_every_interface(driver.endpoint)
    with pytest.raises(DriverError, match='bind_address'):
        make_driver(AMECA, {'bind_address': ''})


@pytest.mark.parametrize('bind_address, everywhere', [('127.0.0.1', False), ('*', True)])
def test_only_the_bind_address_listens_and_every_interface_warns(bind_address, everywhere,
                                                                 caplog):
    port = free_port(socket.SOCK_STREAM)
    driver = make_driver(AMECA, {'bind_address': bind_address, 'port': port})
    with caplog.at_level(logging.WARNING):
        driver.connect()
    try:
        assert accepts('127.0.0.1', port)
        assert accepts('127.0.0.2', port) is everywhere     # another address of this machine
        warned = [r for r in caplog.records if r.levelno == logging.WARNING and
                  'every network interface' in r.getMessage()]
        assert len(warned) == int(everywhere)
    finally:
        driver.disconnect()


@pytest.fixture
def keys(tmp_path):
    assert zmq.has('curve')
    assert keys_main(['--out', str(tmp_path / 'keys')]) == 0
    assert keys_main(['--out', str(tmp_path / 'other')]) == 0       # a stranger's keys
    assert keys_main(['--out', str(tmp_path / 'keys')]) == 1        # never overwritten
    return tmp_path / 'keys', tmp_path / 'other'


def test_key_files_are_private_and_sorted_by_destination(keys):
    out, _ = keys
    secrets = [out / 'computer' / 'server.key_secret', out / 'robot' / 'robot.key_secret']
    publics = [out / 'computer' / 'authorized_clients' / 'robot.key', out / 'robot' / 'server.key']
    for path in secrets + publics:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    for folder in (out, out / 'computer', out / 'robot'):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
    assert all('secret-key' in p.read_text() for p in secrets)
    assert not any('secret-key' in p.read_text() for p in publics)
    assert sorted(p.name for p in (out / 'robot').iterdir()) == ['robot.key_secret',
                                                                 'server.key']


def curve_driver(out, port):
    return make_driver(AMECA, {
        'bind_address': '127.0.0.1', 'port': port,
        'curve_server_secret_key': str(out / 'computer' / 'server.key_secret')})


def test_with_curve_only_the_authorized_robot_receives(keys):
    out, other = keys
    port = free_port(socket.SOCK_STREAM)
    endpoint = f'tcp://127.0.0.1:{port}'
    driver = curve_driver(out, port)
    driver.connect()
    server_key, robot_key = out / 'robot' / 'server.key', out / 'robot' / 'robot.key_secret'
    listeners = {
        'robot': subscribe(endpoint, server_key, robot_key),
        'no keys': subscribe(endpoint),
        'stranger': subscribe(endpoint, server_key, other / 'robot' / 'robot.key_secret'),
        'wrong server key': subscribe(endpoint, other / 'robot' / 'server.key', robot_key)}
    followers = {name: DemandFollower(sock) for name, sock in listeners.items()}
    try:
        pose = AMECA.neutral.copy()
        pose[AMECA.index('Jaw Pitch')] = 0.25
        started = time.monotonic()
        while (followers['robot'].received < 30 or time.monotonic() - started < 1.0) \
                and time.monotonic() - started < 10:
            driver.write(pose)
            time.sleep(0.01)
            for follower in followers.values():
                follower.poll(time.monotonic())
        assert followers['robot'].received >= 30
        assert followers['robot'].demands(time.monotonic())['Jaw Pitch'] == pytest.approx(0.25)
        assert {n: f.received + f.rejected for n, f in followers.items() if n != 'robot'} == \
            {'no keys': 0, 'stranger': 0, 'wrong server key': 0}
    finally:
        for sock in listeners.values():
            sock.close(0)
        driver.disconnect()


def test_curve_refuses_a_secret_key_others_can_read_an_open_or_missing_robot_list(keys):
    out, _ = keys
    secret = out / 'computer' / 'server.key_secret'
    secret.chmod(0o644)
    with pytest.raises(DriverError, match='chmod 600'):
        curve_driver(out, free_port(socket.SOCK_STREAM)).connect()
    secret.chmod(0o600)
    clients = out / 'computer' / 'authorized_clients'
    for writable in (clients, clients / 'robot.key'):
        mode = writable.stat().st_mode
        writable.chmod(mode | 0o002)
        with pytest.raises(DriverError, match='writable by other users'):
            curve_driver(out, free_port(socket.SOCK_STREAM)).connect()
        writable.chmod(mode)
    (clients / 'robot.key').unlink()
    with pytest.raises(DriverError, match='no authorized robot keys'):
        curve_driver(out, free_port(socket.SOCK_STREAM)).connect()


@pytest.mark.ros
def test_the_actuation_node_serves_the_authorized_robot_from_its_profile(keys, tmp_path,
                                                                       node_process):
    """The profile's bind_address and CURVE fields, through the actuation node, to the
    follower on the robot."""
    import yaml
    out, _ = keys
    port = free_port(socket.SOCK_STREAM)
    data = yaml.safe_load(Path(AMECA.source).read_text())
    data['driver'].update({'bind_address': '127.0.0.1', 'port': port,
                           'curve_server_secret_key': str(out / 'computer/server.key_secret')})
    profile = tmp_path / 'ameca_lab.yaml'
    profile.write_text(yaml.safe_dump(data))
    actuation = node_process('face_actuation', 'actuation', params={
        'robot': str(profile), 'robot_calibration_dir': str(tmp_path), 'render_rate_hz': 0.0})
    robot = DemandFollower(subscribe(f'tcp://127.0.0.1:{port}', out / 'robot/server.key',
                                     out / 'robot/robot.key_secret'))
    stranger = DemandFollower(subscribe(f'tcp://127.0.0.1:{port}'))
    try:
        deadline = time.monotonic() + 20
        while robot.received < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
            robot.poll(time.monotonic())
            stranger.poll(time.monotonic())
        assert robot.received >= 10, actuation.output()
        assert stranger.received + stranger.rejected == 0
        assert not accepts('127.0.0.2', port)
    finally:
        robot.socket.close(0)
        stranger.socket.close(0)
