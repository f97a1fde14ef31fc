"""The dashboard in a real headless browser (Debian's Chromium driven by Playwright) against
the live pipeline: recorded human take -> retarget -> actuation with the twin -> dashboard.

The page loads from the node's logged URL (with the run's token), live values change at >= 20
updates/s, the e-stop button reaches the actuation node (the robot holds, per the profile),
resume (confirmed) makes it follow again, neutral capture reaches the capture node, and a
screenshot is kept as a test artifact. Then the attacks a browser can make: a page of another
origin opens the websocket and sends e-stop (refused, the robot not stopped, counted), a
DNS-rebinding name (refused), and a page without the token (read-only, and it says so)."""
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
import re
import socket
import threading
import time

from diagnostic_msgs.msg import DiagnosticArray
import numpy as np
import pytest

from conftest import free_port, wait_until
from face_common import qos, topics
from face_msgs.msg import ControlValues

CHROMIUM = Path('/usr/bin/chromium')
# Flags for a sandboxed machine without a network (see the project's test set-up).
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                 '--disable-background-networking', '--disable-component-update',
                 '--disable-sync']

pytestmark = pytest.mark.ros
LOGGED_URL = re.compile(r'dashboard at (http://127\.0\.0\.1:\d+/\?token=[A-Za-z0-9_-]+)')


def latest_values(diagnostics, name):
    for array in reversed(diagnostics.snapshot()):
        for status in array.status:
            if status.name == name:
                return {kv.key: kv.value for kv in status.values}
    return {}


def actuation_mode(diagnostics):
    return latest_values(diagnostics, 'face_actuation: actuation').get('mode')


def logged_url(dashboard) -> str:
    """The URL with the token, as the node prints it in the terminal."""
    assert wait_until(lambda: LOGGED_URL.search(dashboard.output()), 20), dashboard.output()
    return LOGGED_URL.search(dashboard.output()).group(1)


def launch_chromium(playwright):
    assert CHROMIUM.exists(), 'no /usr/bin/chromium: scripts/setup_browser.sh installs it'
    # evil.example resolves to this machine, as a DNS-rebinding attacker's name would.
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=[
        *CHROMIUM_ARGS, '--host-resolver-rules=MAP evil.example 127.0.0.1'])


@pytest.fixture
def pipeline(node_process, tmp_path):
    port = free_port(socket.SOCK_STREAM)
    node_process('face_capture', 'take_player', params={'loop': True,
                                                        'performer_calibration_dir': str(tmp_path)})
    node_process('face_retarget', 'retarget', params={'robot': 'hobbs', 'model': 'linear'})
    node_process('face_actuation', 'actuation', params={
        'robot': 'hobbs', 'driver': 'sim', 'robot_calibration_dir': str(tmp_path),
        'diagnostics_period_s': 0.2})
    node_process('face_dashboard', 'latency_monitor')
    dashboard = node_process('face_dashboard', 'dashboard', params={'robot': 'hobbs',
                                                                     'port': port})
    url = logged_url(dashboard)
    assert url.startswith(f'http://127.0.0.1:{port}/?token=')
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
    applied = ros_node.subscribe(ControlValues, topics.ROBOT_APPLIED.name)
    diagnostics = ros_node.subscribe(DiagnosticArray, topics.DIAGNOSTICS.name, qos.DIAGNOSTICS)
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
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

        page.click('#resume')           # the server asks back; the page's dialog answers
        page.wait_for_function(
            "document.getElementById('message').textContent.startsWith('resume: done')",
            timeout=10_000)
        assert 'Resume following' in dialogs[-1]
        assert wait_until(lambda: actuation_mode(diagnostics) not in (None, 'estop'), 5)
        applied.clear()
        time.sleep(1.5)
        moving = np.array([m.values for m in applied.snapshot()])
        assert np.ptp(moving, axis=0).max() > 1e-3                       # following again
        page.screenshot(path=str(artifacts_dir / 'dashboard.png'))
        browser.close()


@pytest.fixture
def robot_and_dashboard(node_process, tmp_path):
    """Just what the attacks aim at: the actuation node (twin) and the dashboard."""
    node_process('face_actuation', 'actuation', params={
        'robot': 'hobbs', 'driver': 'sim', 'robot_calibration_dir': str(tmp_path),
        'render_rate_hz': 0.0, 'diagnostics_period_s': 0.2})
    dashboard = node_process('face_dashboard', 'dashboard', params={
        'robot': 'hobbs', 'port': free_port(socket.SOCK_STREAM), 'diagnostics_period_s': 0.2})
    return logged_url(dashboard)


ATTACK_PAGE = """<!doctype html><title>a page on another site</title><script>
window.outcome = [];
for (const url of %s) {
  const ws = new WebSocket(url);
  ws.onopen = () => { window.outcome.push('open');
                      ws.send(JSON.stringify({action: 'estop', id: 1})); };
  ws.onmessage = (event) => window.outcome.push(JSON.parse(event.data).type);
  ws.onclose = () => window.outcome.push('closed');
}
</script>"""


def serve_page(html: str) -> ThreadingHTTPServer:
    """A second web server on another port of this machine: another origin."""
    class Page(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header('Content-Type', 'text/html')
            self.end_headers()
            self.wfile.write(html.encode())

        def log_message(self, *args):
            pass
    server = ThreadingHTTPServer(('127.0.0.1', 0), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_other_sites_and_tokenless_pages_cannot_drive_the_robot(robot_and_dashboard, ros_node,
                                                                artifacts_dir):
    from playwright.sync_api import sync_playwright
    url = robot_and_dashboard
    base, token = url.split('?token=')
    port = int(base.rstrip('/').rsplit(':', 1)[1])
    diagnostics = ros_node.subscribe(DiagnosticArray, topics.DIAGNOSTICS.name, qos.DIAGNOSTICS)
    dashboard_counters = lambda: latest_values(diagnostics, 'face_dashboard: dashboard')  # noqa: E731
    assert wait_until(lambda: actuation_mode(diagnostics) not in (None, 'estop'), 20)
    # The attack page even knows the token (it leaked): the origin alone refuses it.
    sockets = [f'ws://127.0.0.1:{port}/ws', f'ws://127.0.0.1:{port}/ws?token={token}']
    attacker = serve_page(ATTACK_PAGE % str(sockets).replace("'", '"'))
    try:
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            page = browser.new_page()
            page.goto(f'http://127.0.0.1:{attacker.server_port}/')
            page.wait_for_function(    # each socket refused, or its e-stop answered
                'window.outcome.filter(x => x === "closed" || x === "result").length === 2',
                timeout=15_000)
            assert page.evaluate('window.outcome') == ['closed', 'closed']   # never opened

            # DNS rebinding: the attacker's name now points here; the Host gives it away.
            rebound = page.goto(f'http://evil.example:{port}/?token={token}')
            assert rebound.status == 403 and 'DNS rebinding' in page.content()

            # The real page without the token: it watches, buttons disabled with the reason.
            page.goto(base)
            page.wait_for_function(
                "document.getElementById('read-only').textContent.startsWith('READ-ONLY')",
                timeout=15_000)
            assert page.is_visible('#read-only')
            for button in ('#estop', '#resume', '#capture-neutral'):
                assert page.is_disabled(button)
                assert 'token' in page.get_attribute(button, 'title')
            page.wait_for_function(     # live state still arrives
                "document.getElementById('connection').textContent === 'live'", timeout=10_000)
            page.screenshot(path=str(artifacts_dir / 'dashboard_read_only.png'))
            # Its own socket, used by hand: refused too.
            page.evaluate("socket.send(JSON.stringify({action: 'estop', id: 9}))")
            page.wait_for_function(
                "document.getElementById('message').textContent.includes('without the token')",
                timeout=10_000)
            browser.close()
        assert wait_until(lambda: int(dashboard_counters().get('refused_origins', 0)) >= 2 and
                          int(dashboard_counters().get('refused_hosts', 0)) >= 1 and
                          int(dashboard_counters().get('refused_tokens', 0)) >= 1, 10), \
            dashboard_counters()
        diagnostics.clear()
        assert wait_until(lambda: actuation_mode(diagnostics), 5)
        assert actuation_mode(diagnostics) != 'estop'          # the robot was never stopped
    finally:
        attacker.shutdown()
