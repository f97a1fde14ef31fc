"""The dashboard in a real headless browser (Debian's Chromium driven by Playwright) against
the live pipeline: recorded human take -> retarget -> actuation with the twin -> dashboard.

The page loads from the node, live values change at >= 20 updates/s, the e-stop button
reaches the actuation node (the robot holds, per the profile), resume makes it follow again,
neutral capture reaches the capture node, and a screenshot is kept as a test artifact."""
from pathlib import Path
import socket
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest

from conftest import free_port, wait_until
from face_common import qos
from face_msgs.msg import ControlValues

CHROMIUM = Path('/usr/bin/chromium')
# Flags for a sandboxed machine without a network (see the project's test set-up).
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update',
                 '--disable-sync']

pytestmark = pytest.mark.ros


def actuation_mode(diagnostics):
    for array in reversed(diagnostics.snapshot()):
        for status in array.status:
            if status.name == 'face_actuation: actuation':
                return {kv.key: kv.value for kv in status.values}.get('mode')
    return None


@pytest.fixture
def pipeline(node_process, tmp_path):
    port = free_port(socket.SOCK_STREAM)
    node_process('face_capture', 'take_player', params={'loop': True,
                                                        'calibration_dir': str(tmp_path)})
    node_process('face_retarget', 'retarget', params={'robot': 'hobbs', 'model': 'linear'})
    node_process('face_actuation', 'actuation', params={
        'robot': 'hobbs', 'driver': 'sim', 'calibration_dir': str(tmp_path),
        'diagnostics_period_s': 0.2})
    node_process('face_dashboard', 'latency_monitor')
    dashboard = node_process('face_dashboard', 'dashboard', params={'robot': 'hobbs',
                                                                     'port': port})
    url = f'http://127.0.0.1:{port}/'
    assert wait_until(lambda: _reachable(port), 20), dashboard.output()
    return url


def _reachable(port) -> bool:
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=0.2):
            return True
    except OSError:
        return False


def test_dashboard_in_a_real_browser(pipeline, ros_node, artifacts_dir):
    from playwright.sync_api import sync_playwright
    assert CHROMIUM.exists(), 'no /usr/bin/chromium: scripts/setup_browser.sh installs it'
    applied = ros_node.subscribe(ControlValues, '/face/robot/applied')
    diagnostics = ros_node.subscribe(DiagnosticArray, '/diagnostics', qos.DIAGNOSTICS)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        dialogs = []
        page.on('dialog', lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
        page.goto(pipeline)
        page.wait_for_function("document.getElementById('connection').textContent === 'live'",
                               timeout=15_000)
        # Live values: robot frames arrive and the human bars move between two looks.
        page.wait_for_function("Number(document.getElementById('rate-robot').textContent) > 0",
                               timeout=20_000)
        bars = "[...document.querySelectorAll('.fill.human')].map(e => e.style.transform)"
        first = page.evaluate(bars)
        time.sleep(1.0)
        assert page.evaluate(bars) != first
        page.wait_for_function(
            "Number(document.getElementById('update-rate').textContent) >= 20", timeout=10_000)
        page.wait_for_function(
            "[...document.querySelectorAll('#latency-table td')]"
            ".some(td => td.textContent === 'end-to-end')", timeout=15_000)
        page.wait_for_function(     # each node reports about once a second
            "['face_actuation: actuation', 'face_retarget: retarget'].every("
            "n => document.getElementById('health').innerText.includes(n))", timeout=10_000)

        # Neutral capture from the page: the take player records the performer's neutral.
        page.click('#capture-neutral')
        page.wait_for_function(
            "document.getElementById('message').textContent.startsWith('capture_neutral: done')",
            timeout=15_000)
        assert 'neutral' in dialogs[-1]

        # E-stop from the page: confirmed, reaches the actuation node, the robot holds.
        page.click('#estop')
        page.wait_for_function(
            "document.getElementById('message').textContent.startsWith('estop: done')",
            timeout=10_000)
        assert dialogs and 'Stop the robot' in dialogs[-1]
        assert wait_until(lambda: actuation_mode(diagnostics) == 'estop', 5)
        time.sleep(0.3)
        applied.clear()
        time.sleep(0.6)
        held = np.array([m.values for m in applied.snapshot()])
        assert len(held) > 10 and np.ptp(held, axis=0).max() < 1e-6     # holding still
        page.screenshot(path=str(artifacts_dir / 'dashboard_estop.png'))

        page.click('#resume')
        page.wait_for_function(
            "document.getElementById('message').textContent.startsWith('resume: done')",
            timeout=10_000)
        assert wait_until(lambda: actuation_mode(diagnostics) not in (None, 'estop'), 5)
        applied.clear()
        time.sleep(1.5)
        moving = np.array([m.values for m in applied.snapshot()])
        assert np.ptp(moving, axis=0).max() > 1e-3                       # following again
        page.screenshot(path=str(artifacts_dir / 'dashboard.png'))
        browser.close()
