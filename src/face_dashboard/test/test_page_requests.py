"""What a page sends over the websocket: every malformed message is one BadRequest, and a
message nested deep enough to exhaust json's recursion no longer ends the page's session."""
import asyncio
import json
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from face_dashboard.page_requests import BadRequest, parse_page_request
from face_dashboard.server import DashboardServer

WEB = Path(__file__).resolve().parent.parent / 'web'


@pytest.mark.parametrize('text', [
    '[' * 100_000, '{"action": ' * 50_000, b'\xff\xfe', '', 'null', '[1, 2]', '"estop"',
    '{"action": 5}', '{"action": ""}', '{"id": 1}', json.dumps({'action': 'x' * 65}),
    json.dumps({'action': 'estop', 'id': [1]}), json.dumps({'action': 'estop', 'id': True}),
    json.dumps({'action': 'estop', 'id': 'i' * 65}), '{"action": "estop", "id": NaN}',
    '{"action": "estop", "id": ' + '9' * 4000 + '}', ' ' * 5000 + '{}'])
def test_malformed_requests_are_one_bad_request(text):
    with pytest.raises(BadRequest):
        parse_page_request(text)


def test_good_requests_keep_their_fields():
    assert parse_page_request('{"action": "estop", "id": 7}') == {'action': 'estop', 'id': 7}
    assert parse_page_request(b'{"action": "resume", "confirm": "c"}') == {
        'action': 'resume', 'id': None, 'confirm': 'c'}


def test_a_deeply_nested_message_does_not_end_the_session():
    """On main json.loads raised RecursionError, which the session did not catch: the
    connection closed with an internal error and the page lost its dashboard."""
    answered = []

    def on_action(action, reply):
        answered.append(action)
        reply({'ok': True, 'action': action, 'message': 'handled'})

    server = DashboardServer(WEB, dict, dict, on_action, port=0, update_hz=5.0)
    server.start()

    async def session():
        async with connect(f'ws://127.0.0.1:{server.port}/ws', max_size=None) as ws:
            await ws.send('[' * 100_000)
            await ws.send(json.dumps({'action': 'estop', 'id': 7}))
            while True:
                message = json.loads(await asyncio.wait_for(ws.recv(), 10))
                if message.get('id') == 7:
                    return message
    try:
        reply = asyncio.run(session())
    finally:
        server.stop()
    assert reply['type'] in ('result', 'confirm')
    assert server.errors == 1
