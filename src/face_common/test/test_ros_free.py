"""The ROS-free core imports without ROS: each module below is imported in a fresh Python in
which every ROS package (rclpy, the message packages, rosidl, ament_index) is refused, as on
a machine with no ROS install. A module that imports ROS fails there, and the last test
shows that it does, so this test cannot pass by accident."""
import json
from pathlib import Path
import subprocess
import sys

import pytest

# The modules that need no ROS: offline tools, cores under the nodes, bag encoding and
# reports. Listed by hand, so a new module joins the list on purpose.
PURE_MODULES = (
    'face_common.arkit', 'face_common.atomic', 'face_common.frames', 'face_common.latency',
    'face_common.metrics', 'face_common.pacing', 'face_common.paths', 'face_common.realtime',
    'face_common.render', 'face_common.stats', 'face_common.topics', 'face_common.cli_options',
    'face_common.launch_runner', 'face_common.jpeg',
    'face_capture.bundled', 'face_capture.calibration', 'face_capture.livelink',
    'face_capture.send_take', 'face_capture.sender_gate', 'face_capture.sequence',
    'face_capture.takes', 'face_capture.capture_neutral', 'face_capture.camera',
    'face_capture.http_stream', 'face_capture.latest', 'face_capture.tcp_protocol',
    'face_capture.face_tracking', 'face_capture.face_expressions',
    'face_actuation.calibrate', 'face_actuation.drivers', 'face_actuation.drivers.ameca',
    'face_actuation.drivers.dynamixel', 'face_actuation.drivers.maestro',
    'face_actuation.drivers.sim', 'face_actuation.emulators', 'face_actuation.estop_store',
    'face_actuation.profile', 'face_actuation.safety', 'face_actuation.simulate',
    'face_actuation.tritium.ameca_follower', 'face_actuation.tritium.ameca_keys',
    'face_actuation.twin',
    'face_bag.cli', 'face_bag.export', 'face_bag.messages', 'face_bag.play',
    'face_bag.session', 'face_bag.store',
    'face_retarget.models', 'face_retarget.network', 'face_retarget.exface',
    'face_retarget.baselines', 'face_retarget.data', 'face_retarget.recipe',
    'face_retarget.training', 'face_retarget.evaluate', 'face_retarget.bootstrap',
    'face_retarget.cli', 'face_retarget.oracle',
    'face_dashboard.state', 'face_dashboard.page_requests', 'face_dashboard.server',
    'face_dashboard.demo',
)

# Runs in the child: refuse ROS at import time, import each module, report what failed.
CHILD = r'''
import importlib, importlib.abc, json, sys

def is_ros(name):
    top = name.split('.')[0]
    return (top in ('rclpy', 'rpyutils', 'ament_index_python', 'face_msgs')
            or top.startswith(('rosidl_', 'rcl_'))
            or top.endswith(('_msgs', '_srvs', '_interfaces')))

class RefuseRos(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if is_ros(name):
            raise ModuleNotFoundError(f'No module named {name!r} (ROS is hidden)', name=name)
        return None

preloaded = sorted(m for m in sys.modules if is_ros(m))
sys.meta_path.insert(0, RefuseRos())
failures = {}
for module in sys.argv[1:]:
    try:
        importlib.import_module(module)
    except Exception as exc:
        failures[module] = f'{type(exc).__name__}: {exc}'
print(json.dumps({'preloaded': preloaded, 'failures': failures,
                  'ros_loaded': sorted(m for m in sys.modules if is_ros(m))}))
'''


def import_without_ros(modules) -> dict:
    result = subprocess.run([sys.executable, '-c', CHILD, *modules], capture_output=True,
                            text=True, timeout=240, cwd=Path(__file__).resolve().parent)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_every_pure_module_imports_with_ros_hidden():
    report = import_without_ros(PURE_MODULES)
    assert report['preloaded'] == [], 'the child started with ROS already imported'
    assert report['failures'] == {}
    assert report['ros_loaded'] == []


@pytest.mark.parametrize('module', ['face_common.messages', 'face_common.node',
                                    'face_common.qos'])
def test_a_module_that_imports_ros_fails_there(module):
    report = import_without_ros([module])
    assert 'ModuleNotFoundError' in report['failures'][module]
    assert 'ROS is hidden' in report['failures'][module]
