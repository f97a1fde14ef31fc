"""The dashboard server without ROS: local assets over HTTP, state over a real websocket at
the configured rate, actions answered to the page that asked; and who may act: the served
origin and host only, the run's token, a connection limit, resume confirmed server-side."""
import asyncio
import http.client
import json
from pathlib import Path
import time
import urllib.error
import urllib.request

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from conftest import wait_until
from face_dashboard.server import DashboardServer

WEB = Path(__file__).resolve().parent.parent / 'web'
TOKEN = 'a-test-token-of-enough-length'


@pytest.fixture
def server():
    asked, refusals = [], []

    def on_action(action, reply):
        asked.append(action)
        reply({'ok': action == 'estop', 'action': action, 'message': 'handled'})

    state = {'n': 0}

    def snapshot():
        state['n'] += 1
        return {'counter': state['n']}

    srv = DashboardServer(WEB, snapshot, lambda: {'robot': 'hobbs'}, on_action, port=0,
                          update_hz=25.0, token=TOKEN, max_connections=2,
                          confirm={'resume': 'Resume?'},
                          on_refusal=lambda kind, message: refusals.append(kind))
    srv.start()
    srv.asked, srv.refusals = asked, refusals
    yield srv
    srv.stop()


def ws_url(server, token=TOKEN):
    return f'ws://127.0.0.1:{server.port}/ws' + (f'?token={token}' if token else '')


async def next_of(ws, kind):
    while True:
        message = json.loads(await ws.recv())
        if message['type'] == kind:
            return message


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
        async with connect(ws_url(server), origin=f'http://127.0.0.1:{server.port}') as ws:
            hello = json.loads(await ws.recv())
            assert hello == {'type': 'hello', 'read_only': '', 'robot': 'hobbs'}
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
            return states, await next_of(ws, 'result')
    states, result = asyncio.run(session())
    assert len(states) >= 20                      # >= 20 updates per second
    assert states == sorted(states)
    assert result == {'type': 'result', 'id': 7, 'ok': True, 'action': 'estop',
                      'message': 'handled'}
    assert server.asked == ['estop'] and server.errors == 1


def test_the_url_carries_a_per_run_random_token(server):
    assert server.page_url == f'{server.url}?token={TOKEN}'
    assert TOKEN not in server.url                          # what /diagnostics shows
    tokens = {DashboardServer(WEB, dict, dict, print).token for _ in range(3)}
    assert len(tokens) == 3 and min(len(t) for t in tokens) >= 32
    with pytest.raises(ValueError, match='at least'):
        DashboardServer(WEB, dict, dict, print, token='short')


def test_a_websocket_from_another_origin_is_refused_even_with_the_token(server):
    async def attempt(origin):
        try:
            async with connect(ws_url(server), origin=origin) as ws:
                await ws.send(json.dumps({'action': 'estop', 'id': 1}))
                return (await next_of(ws, 'result'))['ok']
        except InvalidStatus as exc:
            return exc.response.status_code
    port = server.port
    assert asyncio.run(attempt('http://127.0.0.1:9')) == 403          # another local page
    assert asyncio.run(attempt('http://evil.example')) == 403
    assert asyncio.run(attempt(f'http://localhost:{port}')) == 403   # Host is 127.0.0.1
    assert server.asked == [] and server.refused['origins'] == 3
    assert asyncio.run(attempt(f'http://127.0.0.1:{port}')) is True  # the page itself
    assert server.asked == ['estop'] and server.refusals == ['origins'] * 3


def raw_request(server, path, host, upgrade=False):
    conn = http.client.HTTPConnection('127.0.0.1', server.port, timeout=5)
    headers = {'Host': host}
    if upgrade:
        headers.update({'Upgrade': 'websocket', 'Connection': 'Upgrade',
                        'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
                        'Sec-WebSocket-Version': '13', 'Origin': f'http://{host}'})
    conn.putrequest('GET', path, skip_host=True)
    for key, value in headers.items():
        conn.putheader(key, value)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


def test_dns_rebinding_host_names_are_refused(server):
    port = server.port
    for host in (f'evil.example:{port}', f'127.0.0.1:{port + 1}', f'evil@127.0.0.1:{port}',
                 f'0.0.0.0:{port}'):
        assert raw_request(server, '/', host) == 403, host
        assert raw_request(server, f'/ws?token={TOKEN}', host, upgrade=True) == 403, host
    assert server.refused['hosts'] == 8 and server.asked == []
    assert raw_request(server, '/', f'localhost:{port}') == 200            # loopback names
    assert raw_request(server, f'/ws?token={TOKEN}', f'127.0.0.1:{port}', upgrade=True) == 101


def test_without_the_token_a_page_is_read_only(server):
    async def session(token):
        async with connect(ws_url(server, token)) as ws:
            hello = await next_of(ws, 'hello')
            await next_of(ws, 'state')                      # it still sees the robot
            await ws.send(json.dumps({'action': 'estop', 'id': 3}))
            return hello['read_only'], await next_of(ws, 'result')
    reason, result = asyncio.run(session(None))
    assert 'read-only' in reason and 'token' in reason
    assert result['ok'] is False and 'without the token' in result['message']
    reason, result = asyncio.run(session(TOKEN[:-1] + 'X'))
    assert "not this run's" in reason and result['ok'] is False
    assert server.asked == [] and server.refused['tokens'] == 2


def test_resume_needs_a_confirmation_the_server_checks(server):
    async def session():
        async with connect(ws_url(server)) as ws:
            await ws.send(json.dumps({'action': 'resume', 'id': 1}))
            first = await next_of(ws, 'confirm')
            assert first['question'] == 'Resume?' and server.asked == []
            await ws.send(json.dumps({'action': 'resume', 'id': 1, 'confirm': 'guessed'}))
            wrong = await next_of(ws, 'result')
            await ws.send(json.dumps({'action': 'resume', 'id': 2, 'confirm': first['challenge']}))
            reused = await next_of(ws, 'result')             # one use: spent by the guess
            await ws.send(json.dumps({'action': 'resume', 'id': 3}))
            second = await next_of(ws, 'confirm')
            await ws.send(json.dumps({'action': 'resume', 'id': 3,
                                      'confirm': second['challenge']}))
            done = await next_of(ws, 'result')
            return wrong, reused, done
    wrong, reused, done = asyncio.run(session())
    assert not wrong['ok'] and 'not confirmed' in wrong['message']
    assert not reused['ok']
    assert done['message'] == 'handled' and server.asked == ['resume']
    assert server.refused['confirmations'] == 2


def test_connections_beyond_the_limit_are_refused_with_a_reason(server):
    async def session():
        async with connect(ws_url(server)) as first, connect(ws_url(server)) as second:
            await next_of(first, 'hello')
            await next_of(second, 'hello')
            async with connect(ws_url(server)) as third:
                with pytest.raises(Exception) as closed:
                    await third.recv()
                refusal = (third.close_code, third.close_reason)
        assert wait_until(lambda: not server.clients, 5)       # the server saw them close
        async with connect(ws_url(server)) as again:           # room again once closed
            return refusal, closed.value, (await next_of(again, 'hello'))['read_only']
    (code, reason), error, access = asyncio.run(session())
    assert code == 1013 and reason == 'too many dashboard pages open (limit 2)'
    assert 'too many' in str(error)
    assert access == '' and server.refused['connections'] == 1


def test_pages_without_the_token_cannot_lock_the_operator_out(server):
    """Before: any client that passes the Host check (a tool on the LAN sends no Origin) could
    hold every connection slot without the token, and the operator's page, the one with the
    e-stop button, was refused. A page with the token now takes the oldest read-only slot."""
    async def session():
        async with connect(ws_url(server, None)) as first, \
                connect(ws_url(server, None)) as second:
            await next_of(first, 'hello')
            await next_of(second, 'hello')
            async with connect(ws_url(server)) as operator:
                hello = await next_of(operator, 'hello')
                with pytest.raises(ConnectionClosed):
                    while True:
                        await first.recv()
                evicted = (first.close_code, first.close_reason)
                async with connect(ws_url(server, None)) as third:
                    with pytest.raises(ConnectionClosed):
                        await third.recv()
                    refused = third.close_code
                await operator.send(json.dumps({'action': 'estop', 'id': 1}))
                return hello['read_only'], evicted, refused, await next_of(operator, 'result')
    access, (code, reason), refused, result = asyncio.run(session())
    assert access == '' and code == 1013 and 'make room' in reason
    assert refused == 1013 and result['ok'] is True
    assert server.refused['connections'] == 2
