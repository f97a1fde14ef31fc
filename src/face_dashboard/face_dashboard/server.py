"""The dashboard's web server, ROS-free: one asyncio thread serving the page's local assets
over HTTP and pushing state to every open page over a websocket.

Why websockets alone (no web framework): three static files and one socket; the library
serves plain HTTP responses from its handshake hook. Nothing is fetched from a CDN.
"""
import asyncio
from http import HTTPStatus
import json
from pathlib import Path
import threading

from websockets.asyncio.server import broadcast, serve
from websockets.exceptions import ConnectionClosed

from face_dashboard.page_requests import BadRequest, parse_page_request

CONTENT_TYPES = {'.html': 'text/html; charset=utf-8', '.js': 'text/javascript; charset=utf-8',
                 '.css': 'text/css; charset=utf-8'}


class DashboardServer:
    """Serves `web_dir` on http://host:port/ and the websocket on /ws.

    snapshot(): the state to push (a JSON-able dict), called update_hz times a second while a
    page is open. hello(): sent once to each new page (names, limits). on_action(action,
    reply): a page asked for something (button); reply(dict) answers that page.
    """

    def __init__(self, web_dir, snapshot, hello, on_action, host: str = '127.0.0.1',
                 port: int = 8080, update_hz: float = 25.0):
        self.web_dir = Path(web_dir)
        self.snapshot = snapshot
        self.hello = hello
        self.on_action = on_action
        self.host = host
        self.port = port
        self.update_hz = update_hz
        self.clients = set()
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
        return f'http://{self.host}:{self.port}/'

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

    def _http(self, connection, request):
        """Static files for plain GETs; None lets /ws continue to the websocket."""
        path = request.path.split('?')[0]
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
        self.clients.add(websocket)
        try:
            await websocket.send(json.dumps({'type': 'hello', **self.hello()}))
            async for text in websocket:
                try:
                    request = parse_page_request(text)
                except BadRequest:
                    self.errors += 1
                    continue
                self.on_action(request['action'], self._replier(websocket, request['id']))
        except ConnectionClosed:
            pass
        finally:
            self.clients.discard(websocket)

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
