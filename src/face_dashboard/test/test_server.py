"""The dashboard server without ROS: local assets over HTTP, state over a real websocket at
the configured rate, actions answered to the page that asked."""
import asyncio
import json
from pathlib import Path
import time
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect

from face_dashboard.server import DashboardServer

WEB = Path(__file__).resolve().parent.parent / 'web'


@pytest.fixture
def server():
    asked = []

    def on_action(action, reply):
        asked.append(action)
        reply({'ok': action == 'estop', 'action': action, 'message': 'handled'})

    state = {'n': 0}

    def snapshot():
        state['n'] += 1
        return {'counter': state['n']}

    srv = DashboardServer(WEB, snapshot, lambda: {'robot': 'hobbs'}, on_action, port=0,
                          update_hz=25.0)
    srv.start()
    srv.asked = asked
    yield srv
    srv.stop()


def test_assets_are_served_locally(server):
    page = urllib.request.urlopen(server.url, timeout=5)
    html = page.read().decode()
    assert page.headers['Content-Type'].startswith('text/html')
    assert 'src="/dashboard.js"' in html and 'http' not in html.split('<body>')[1]
    for asset, kind in (('dashboard.js', 'text/javascript'), ('face.js', 'text/javascript'),
                        ('dashboard.css', 'text/css')):
        response = urllib.request.urlopen(server.url + asset, timeout=5)
        assert response.headers['Content-Type'].startswith(kind)
    with pytest.raises(urllib.error.HTTPError, match='404'):
        urllib.request.urlopen(server.url + 'missing.js', timeout=5)


def test_websocket_hello_updates_and_actions(server):
    async def session():
        async with connect(f'ws://127.0.0.1:{server.port}/ws') as ws:
            hello = json.loads(await ws.recv())
            assert hello == {'type': 'hello', 'robot': 'hobbs'}
            started = time.monotonic()
            states = []
            while time.monotonic() - started < 1.0:
                message = json.loads(await ws.recv())
                if message['type'] == 'state':
                    states.append(message['counter'])
            # The server reads one connection's messages in order: the malformed one is
            # counted before the estop that follows it is answered.
            await ws.send('not json')
            await ws.send(json.dumps({'action': 'estop', 'id': 7}))
            while True:
                message = json.loads(await ws.recv())
                if message['type'] == 'result':
                    return states, message
    states, result = asyncio.run(session())
    assert len(states) >= 20                      # >= 20 updates per second
    assert states == sorted(states)
    assert result == {'type': 'result', 'id': 7, 'ok': True, 'action': 'estop',
                      'message': 'handled'}
    assert server.asked == ['estop'] and server.errors == 1
