"""What a dashboard page may send over the websocket, parsed without trusting it (ROS-free).

A request is one JSON object: {"action": "<name>", "id": <number or short text>, ...}. Anything
else, however malformed (not UTF-8, not JSON, nested deep enough to exhaust the parser's
recursion, a list, a missing or non-text action, an id the reply could not echo), is one
BadRequest, so a page cannot take down the server's session with what it sends.
"""
import json
import math

MAX_REQUEST_CHARS = 4096       # a real request is under 200 characters
MAX_NAME_CHARS = 64            # action names and text ids


class BadRequest(ValueError):
    """A websocket message that is not a dashboard request."""


def parse_page_request(text) -> dict:
    """The request as a dict whose 'action' is a short string and whose 'id' (None when
    absent) is an integer, a finite number or a short string; else BadRequest."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        try:
            text = bytes(text).decode('utf-8')
        except UnicodeDecodeError:
            raise BadRequest('request is not UTF-8') from None
    if not isinstance(text, str):
        raise BadRequest(f'request is a {type(text).__name__}, not text')
    if len(text) > MAX_REQUEST_CHARS:
        raise BadRequest(f'request of {len(text)} characters (limit {MAX_REQUEST_CHARS})')
    try:
        request = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise BadRequest(f'request is not JSON: {exc}') from None
    if not isinstance(request, dict):
        raise BadRequest('request is not a JSON object')
    action = request.get('action')
    if not isinstance(action, str) or not 0 < len(action) <= MAX_NAME_CHARS:
        raise BadRequest('request needs "action": a name of 1-64 characters')
    request_id = request.get('id')
    if not (request_id is None or _echoable(request_id)):
        raise BadRequest('request "id" must be a number or a text of at most 64 characters')
    return {**request, 'id': request_id}


def _echoable(request_id) -> bool:
    """An id the reply can echo as it came: short text or a finite number (not a bool)."""
    if isinstance(request_id, str):
        return len(request_id) <= MAX_NAME_CHARS
    if isinstance(request_id, bool):
        return False
    if isinstance(request_id, int):
        return abs(request_id) <= 2**53           # what the page's JavaScript numbers hold
    return isinstance(request_id, float) and math.isfinite(request_id)
