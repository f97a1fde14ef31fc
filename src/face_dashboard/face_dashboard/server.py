"""The dashboard's web server, ROS-free: one asyncio thread serving the page's local assets
over HTTP and pushing state to every open page over a websocket.

Why websockets alone (no web framework): three static files and one socket; the library
serves plain HTTP responses from its handshake hook. Nothing is fetched from a CDN.

Who may press the buttons: the page drives a robot next to a person's face, and any web page
the user visits can open a websocket to 127.0.0.1. So every request's Host must name this
server (a DNS-rebinding page sends its own name), a browser's websocket must come from the
served origin, actions need the per-run token carried in the page's URL (without it a page
is read-only), the pages open at once are limited, and the actions in `confirm` (resume)
need a second, confirming request the server itself checks.
"""
import asyncio
import hmac
from http import HTTPStatus
import ipaddress
import json
from pathlib import Path
import re
import secrets
import threading
import time
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

from face_dashboard.page_requests import BadRequest, parse_page_request

CONTENT_TYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
                 '.css': 'text/css; charset=utf-8'}
WILDCARD_HOSTS = ('0.0.0.0', '::', '')
HOST_HEADER = re.compile(r'[A-Za-z0-9.-]+(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?')
MIN_TOKEN_LENGTH = 16
# The per-run token, handed from whoever starts the dashboard (face-demo) to its node.
TOKEN_ENV = 'FACE_DASHBOARD_TOKEN'
CONFIRM_WINDOW_S = 30.0
REFUSALS = ('origins', 'hosts', 'tokens', 'connections', 'confirmations')
TOO_MANY_PAGES = 1013            # websocket close code "try again later"


class DashboardServer:
    """Serves `web_dir` on http://host:port/ and the websocket on /ws.

    snapshot(): the state to push (a JSON-able dict), called update_hz times a second while a
    page is open. hello(): sent once to each new page (names, limits). on_action(action,
    reply): a page with the token asked for something (button); reply(dict) answers that
    page. token: the per-run secret (random if None). confirm: {action: question} for actions
    that need a confirming second request. allowed_hosts: extra names the page may be
    reached by (the bind address, the address a client reached and localhost on loopback are
    always allowed). on_refusal(kind, message): a request was refused (kind in REFUSALS).
    """

    def __init__(self, web_dir, snapshot, hello, on_action, host: str = '127.0.0.1',
                 port: int = 8080, update_hz: float = 25.0, token: str | None = None,
                 max_connections: int = 4, confirm: dict | None = None,
                 allowed_hosts=(), on_refusal=None):
        self.token = token or secrets.token_urlsafe(24)
        if len(self.token) < MIN_TOKEN_LENGTH:
            raise ValueError(f'the dashboard token must have at least {MIN_TOKEN_LENGTH} '
                             'characters')
        self.max_connections = max_connections
        self.confirm = dict(confirm or {})
        self.allowed_hosts = {h.lower().strip('[]') for h in (host, *allowed_hosts)
                              if h not in WILDCARD_HOSTS}
        self.on_refusal = on_refusal or (lambda kind, message: None)
        self.refused = dict.fromkeys(REFUSALS, 0)
        self.web_dir = Path(web_dir)
        self.snapshot = snapshot
        self.hello = hello
        self.on_action = on_action
        self.host = host
        self.port = port
        self.update_hz = update_hz
        self.clients = set()
        self._read_only_pages = []            # open pages without the token, oldest first
        self.sent = 0
        self.errors = 0
        self._files = {f'/{p.name}': p for p in self.web_dir.iterdir() if p.suffix in
                       CONTENT_TYPES}
        self._loop = None
        self._stop = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name='dashboard-server', daemon=True)
        self.failure = None

    @property
    def url(self) -> str:
        """The address without the token (safe to show in /diagnostics and bags)."""
        host = '127.0.0.1' if self.host in WILDCARD_HOSTS else self.host
        return f'http://{f"[{host}]" if ":" in host else host}:{self.port}/'

    @property
    def page_url(self) -> str:
        """The address to open: with the token, the page may press the buttons."""
        return f'{self.url}?token={self.token}'

    def start(self, timeout: float = 5.0) -> None:
        self._thread.start()
        self._ready.wait(timeout)
        if self.failure:
            raise OSError(self.failure)

    def stop(self) -> None:
        if self._loop and self._stop:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=3.0)

    def _run(self) -> None:
        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self._main())
        except OSError as exc:
            self.failure = f'dashboard cannot listen on {self.host}:{self.port}: {exc}'
            self._ready.set()
        finally:
            self._loop.close()

    async def _main(self) -> None:
        self._stop = asyncio.Event()
        # No per-message compression: updates are small and local; deflate cost CPU.
        async with serve(self._session, self.host, self.port, process_request=self._http,
                         compression=None) as server:
            self.port = server.sockets[0].getsockname()[1]      # port 0: the one chosen
            self._ready.set()
            pusher = asyncio.create_task(self._push())
            await self._stop.wait()
            pusher.cancel()

    # ---- who is asking ----------------------------------------------------------------------
    def _refuse(self, kind: str, message: str) -> str:
        self.refused[kind] += 1
        self.on_refusal(kind, message)
        return message

    def _host_allowed(self, connection, host_header: str) -> bool:
        """Host names this server: its port, and a name it is served by (the bind address,
        the address this client reached, localhost on loopback, or an allowed name)."""
        if not HOST_HEADER.fullmatch(host_header):
            return False
        parsed = urlsplit(f'//{host_header}')
        try:
            port = parsed.port or 80
            name = (parsed.hostname or '').lower()
            reached = str(connection.local_address[0]).lower()
            if port != self.port or not name:
                return False
            if name in self.allowed_hosts or name == reached:
                return True
            return name == 'localhost' and ipaddress.ip_address(reached).is_loopback
        except ValueError:
            return False

    def _check_origin_and_host(self, connection, request) -> str | None:
        """None if the request may proceed, else why not (counted)."""
        host = request.headers.get('Host', '')
        if not self._host_allowed(connection, host):
            return self._refuse('hosts', f'refused a request for host {host!r}: not this '
                                f'dashboard (DNS rebinding?)')
        origin = request.headers.get('Origin')
        # A browser always sends Origin with a websocket; tools may send none (they still
        # need the token to act). A page's own socket has Origin http://<its Host>.
        if origin is not None and origin.lower() != f'http://{host}'.lower():
            return self._refuse('origins', f'refused a websocket from {origin!r}: another '
                                'web site')
        return None

    def _access(self, request) -> str:
        """'' when the request carries the run's token, else why the page is read-only."""
        given = parse_qs(urlsplit(request.path).query).get('token', [''])[0]
        if not given:
            return 'read-only: open the dashboard URL printed in the terminal (with its token)'
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return 'read-only: the token in this URL is not this run\'s'
        return ''

    def _http(self, connection, request):
        """Static files for plain GETs; None lets /ws continue to the websocket."""
        path = request.path.split('?')[0]
        refusal = self._check_origin_and_host(connection, request)
        if refusal:
            return connection.respond(HTTPStatus.FORBIDDEN, refusal + '\n')
        if path == '/ws':
            return None
        file = self._files.get('/index.html' if path == '/' else path)
        if file is None:
            return connection.respond(HTTPStatus.NOT_FOUND, 'not found\n')
        response = connection.respond(HTTPStatus.OK, file.read_text())
        del response.headers['Content-Type']
        response.headers['Content-Type'] = CONTENT_TYPES[file.suffix]
        response.headers['Cache-Control'] = 'no-store'
        return response

    async def _session(self, websocket) -> None:
        read_only = self._access(websocket.request)
        if len(self.clients) >= self.max_connections:
            # a page with the token (the one with the e-stop button) takes the place of the
            # oldest read-only page: pages without the token cannot lock the operator out
            if read_only or not self._read_only_pages:
                await websocket.close(TOO_MANY_PAGES, self._refuse(
                    'connections',
                    f'too many dashboard pages open (limit {self.max_connections})'))
                return
            oldest = self._read_only_pages.pop(0)
            self.clients.discard(oldest)
            await oldest.close(TOO_MANY_PAGES, self._refuse(
                'connections', 'closed a read-only page to make room for one with the token'))
        self.clients.add(websocket)
        if read_only:
            self._read_only_pages.append(websocket)
        pending = {}                          # action -> (challenge, deadline) to confirm
        try:
            await websocket.send(json.dumps({'type': 'hello', 'read_only': read_only,
                                             **self.hello()}))
            async for text in websocket:
                try:
                    request = parse_page_request(text)
                except BadRequest:
                    self.errors += 1
                    continue
                action = request['action']
                answer = self._authorize(websocket, request, action, pending)
                if answer is None:
                    self.on_action(action, self._replier(websocket, request.get('id')))
                else:
                    await _send_quietly(websocket, json.dumps({'id': request.get('id'),
                                                               'action': action, **answer}))
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(websocket)
            if websocket in self._read_only_pages:
                self._read_only_pages.remove(websocket)

    def _authorize(self, websocket, request: dict, action: str, pending: dict) -> dict | None:
        """None if the action may run now, else the answer to send instead: a refusal, or
        the question of an action that needs confirming (answered with its challenge)."""
        refusal = self._check_origin_and_host(websocket, websocket.request) or (
            self._access(websocket.request) and self._refuse(
                'tokens', f'refused {action[:40]!r} from a page without the token'))
        if refusal:
            return {'type': 'result', 'ok': False, 'message': refusal}
        if action not in self.confirm:
            return None
        given = request.get('confirm')
        challenge, deadline = pending.pop(action, ('', 0.0))
        if isinstance(given, str) and challenge and time.monotonic() < deadline and \
                hmac.compare_digest(given.encode(), challenge.encode()):
            return None
        if given is not None:
            return {'type': 'result', 'ok': False, 'message': self._refuse(
                'confirmations', f'{action} not confirmed (expired or wrong confirmation)')}
        challenge = secrets.token_urlsafe(12)
        pending[action] = (challenge, time.monotonic() + CONFIRM_WINDOW_S)
        return {'type': 'confirm', 'question': self.confirm[action], 'challenge': challenge}

    def _replier(self, websocket, request_id):
        """reply(answer) for one request, callable from any thread (service callbacks)."""
        loop = asyncio.get_running_loop()

        def reply(answer: dict) -> None:
            message = json.dumps({'type': 'result', 'id': request_id, **answer})
            loop.call_soon_threadsafe(
                lambda: asyncio.ensure_future(_send_quietly(websocket, message)))
        return reply

    async def _push(self) -> None:
        period = 1.0 / self.update_hz
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        while True:
            next_at += period
            if self.clients:
                try:
                    message = json.dumps({'type': 'state', **self.snapshot()},
                                         separators=(',', ':'))
                    broadcast(self.clients, message)
                    self.sent += 1
                except Exception:        # a bad snapshot must not stop the page updates
                    self.errors += 1
            await asyncio.sleep(max(0.0, next_at - loop.time()))


async def _send_quietly(websocket, message: str) -> None:
    try:
        await websocket.send(message)
    except ConnectionClosed:
        pass
