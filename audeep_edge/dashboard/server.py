"""The dashboard web server: static page + Server-Sent Events, fed by :class:`MqttFeed`.

Threads: paho's network thread writes the :class:`FleetState`; one push thread turns it into at most
``PUSH_HZ`` JSON deltas per second (serialised once, shared by every browser); the HTTP server gives
each browser a thread that streams those deltas. A browser that cannot keep up is disconnected and
its ``EventSource`` reconnects to a fresh snapshot, so one slow tab never holds memory or other tabs.

Everything the page needs is served from ``static/`` (no CDN), so it works offline.

Why one module of ~420 lines: the HTTP handler, its connection cap, the push thread and the server share the token,
the state and the subscriber list; the state itself is in ``mqtt_state``/``device_state``, history
queries in ``history``.
"""

from __future__ import annotations

import collections
import hmac
import http.server
import ipaddress
import json
import logging
import queue
import socket
import threading
import time
from http import HTTPStatus
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlsplit

from audeep_edge.dashboard.device_state import HistoryLimits
from audeep_edge.dashboard.feed import MqttFeed
from audeep_edge.dashboard.history import HistoryApi
from audeep_edge.dashboard.mqtt_state import FleetState
from audeep_edge.errors import ConfigError
from audeep_edge.mqtt.settings import MqttSettings
from audeep_edge.recorder import Recorder, Retention, open_store

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
STATIC_FILES = {"index.html": "text/html", "app.js": "text/javascript", "history.js": "text/javascript",
                "style.css": "text/css"}
PUSH_HZ = 10.0
HEARTBEAT_S = 1.0
CLIENT_BACKLOG = 50  # deltas queued for one browser before it is dropped as too slow
REQUEST_TIMEOUT_S = 10.0  # a connection that sends nothing (or blocks a write) this long is closed, token or not
MAX_CONNECTIONS = 64  # open connections (each a thread: live streams and requests); past it a 503 answers
MAX_PER_CLIENT = 16  # open connections from one address: one peer cannot take every slot
TOKEN_COOKIE = "audeep_dashboard_token"
LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Subscriber:
    """One browser's queue of serialised SSE messages."""

    def __init__(self) -> None:
        self.queue: queue.Queue[bytes] = queue.Queue(maxsize=CLIENT_BACKLOG)
        self.closed = threading.Event()


class PushHub:
    """Coalesces state changes into ≤ ``PUSH_HZ`` deltas per second and fans them out to browsers."""

    def __init__(self, state: FleetState) -> None:
        self.state = state
        self._lock = threading.Lock()
        self._subscribers: list[_Subscriber] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="dashboard-push", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        with self._lock:
            for sub in self._subscribers:
                sub.closed.set()
            self._subscribers.clear()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def subscribe(self) -> _Subscriber:
        sub = _Subscriber()
        with self._lock:
            self._subscribers.append(sub)
        return sub

    def unsubscribe(self, sub: _Subscriber) -> None:
        with self._lock:
            if sub in self._subscribers:
                self._subscribers.remove(sub)

    def _run(self) -> None:
        last_sent = 0.0
        while not self._stop.wait(1.0 / PUSH_HZ):
            now = time.time()
            self.state.refresh_maps(now)
            update = self.state.collect_update(now)
            if not update["devices"] and "broker" not in update and now - last_sent < HEARTBEAT_S:
                continue
            last_sent = now
            self._broadcast(sse_message(update))

    def _broadcast(self, message: bytes) -> None:
        with self._lock:
            for sub in list(self._subscribers):
                try:
                    sub.queue.put_nowait(message)
                except queue.Full:
                    log.info("dropping a dashboard client that fell %d updates behind", CLIENT_BACKLOG)
                    sub.closed.set()
                    self._subscribers.remove(sub)


def sse_message(payload: dict) -> bytes:
    """One SSE ``data:`` message (compact JSON on one line)."""
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


class _Handler(http.server.BaseHTTPRequestHandler):
    server_version = "audeep-edge-dashboard"
    timeout = REQUEST_TIMEOUT_S  # socket timeout: an unfinished request cannot hold its thread for ever
    dashboard: "DashboardServer"  # set on the per-server subclass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if not self._authorised(query):
            return
        if "token" in query and url.path == "/":
            # Swap the token in the address bar for a cookie, so it does not linger in history.
            self._send(HTTPStatus.SEE_OTHER, b"", "text/plain", {
                "Location": "/",
                "Set-Cookie": f"{TOKEN_COOKIE}={quote(self.dashboard.token or '')}; HttpOnly; SameSite=Strict; Path=/",
            })
        elif url.path in ("/", "/index.html"):
            self._send_static("index.html")
        elif url.path.startswith("/static/") and url.path[len("/static/"):] in STATIC_FILES:
            self._send_static(url.path[len("/static/"):])
        elif url.path == "/events":
            self._stream_events()
        elif url.path == "/api/state":
            body = json.dumps(self.dashboard.state.snapshot()).encode()
            self._send(HTTPStatus.OK, body, "application/json", {"Cache-Control": "no-store"})
        elif url.path.startswith("/api/") and (answer := self.dashboard.answer_history(url.path, query, self.headers)):
            self._send(*answer)
        else:
            self._send(HTTPStatus.NOT_FOUND, b"not found\n", "text/plain")

    def _authorised(self, query: dict[str, list[str]]) -> bool:
        token = self.dashboard.token
        if token is None:
            # Without a token the server is bound to loopback; refusing foreign Host headers stops
            # a web page from reaching it through DNS rebinding.
            host = urlsplit(f"//{self.headers.get('Host', '')}").hostname or ""
            if host in LOOPBACK_NAMES or host == self.dashboard.host:
                return True
            self._send(HTTPStatus.FORBIDDEN, b"forbidden: unexpected Host header\n", "text/plain")
            return False
        offered = list(query.get("token", []))
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            offered.append(auth[len("Bearer "):])
        for part in self.headers.get("Cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == TOKEN_COOKIE:
                offered.append(unquote(value))
        if any(hmac.compare_digest(o.encode(), token.encode()) for o in offered):
            return True
        self._send(HTTPStatus.UNAUTHORIZED,
                   b"401: this dashboard needs its token; open the URL that audeep-edge printed (.../?token=...)\n",
                   "text/plain", {"WWW-Authenticate": "Bearer"})
        return False

    def _send_static(self, name: str) -> None:
        self._send(HTTPStatus.OK, self.dashboard.static[name], STATIC_FILES[name] + "; charset=utf-8",
                   {"Cache-Control": "no-cache"})

    def _send(self, status: HTTPStatus, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        for name, value in {**SECURITY_HEADERS, "Content-Type": content_type,
                            "Content-Length": str(len(body)), **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _stream_events(self) -> None:
        hub = self.dashboard.hub
        sub = hub.subscribe()  # before the snapshot: nothing falls between the two (the page drops repeats)
        try:
            self.send_response(HTTPStatus.OK)
            for name, value in {**SECURITY_HEADERS, "Content-Type": "text/event-stream",
                                "Cache-Control": "no-store"}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(b"retry: 2000\n\n" + sse_message(self.dashboard.state.snapshot()))
            self.wfile.flush()
            while not (sub.closed.is_set() or hub.stopping):
                try:
                    message = sub.queue.get(timeout=HEARTBEAT_S)
                except queue.Empty:
                    continue
                self.wfile.write(message)
                self.wfile.flush()
        except OSError:
            pass  # the browser went away
        finally:
            hub.unsubscribe(sub)

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        log.debug("%s %s", self.address_string(), format % args)


class _HTTPServer(http.server.ThreadingHTTPServer):
    """One thread per connection, at most ``MAX_CONNECTIONS`` at once and ``MAX_PER_CLIENT`` from one address: a
    flood of connections gets a 503 each, not a thread each, and one peer cannot lock the others out."""

    daemon_threads = True

    def __init__(self, *args, **kwargs) -> None:
        self._per_client: collections.Counter[str] = collections.Counter()  # open connections per address
        self._count_lock = threading.Lock()
        self.refused = 0
        super().__init__(*args, **kwargs)

    def _take(self, host: str) -> bool:
        with self._count_lock:
            if self._per_client[host] >= MAX_PER_CLIENT or self._per_client.total() >= MAX_CONNECTIONS:
                return False
            self._per_client[host] += 1
            return True

    def _give_back(self, host: str) -> None:
        with self._count_lock:
            self._per_client[host] -= 1
            if not self._per_client[host]:
                del self._per_client[host]

    def process_request(self, request, client_address) -> None:
        if not self._take(client_address[0]):
            self.refused += 1
            if self.refused == 1 or self.refused % 1000 == 0:
                log.warning("dashboard: connection limit reached (%d in all, %d per address); %d refused so far (503)",
                            MAX_CONNECTIONS, MAX_PER_CLIENT, self.refused)
            try:
                request.settimeout(1.0)
                request.sendall(b"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nContent-Length: 0\r\n"
                                b"Connection: close\r\n\r\n")
            except OSError:
                pass
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._give_back(client_address[0])
            raise

    def process_request_thread(self, request, client_address) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._give_back(client_address[0])

    def handle_error(self, request, client_address) -> None:
        # A browser closing a tab mid-response is routine: log it, never print a traceback.
        log.debug("dashboard request from %s failed", client_address, exc_info=True)


class DashboardServer:
    """The live dashboard for every device under ``<topic_prefix>/+/`` on one broker.

    The live view and the recorder each have their own connection (both from the one client factory, with the
    same settings): the recorder's is a persistent session that acknowledges a message only once it is stored,
    so it may hold messages back (a slow or absent database) and receives what was queued while it was away;
    the live view must show what happens now and never wait for the database.

    Parameters
    ----------
    settings : broker URL, protocol, credentials, TLS files and ``topic_prefix`` (the first MQTT topic level(s));
        ``client_id``, when given, names the recorder's persistent session.
    host : address to bind; anything but loopback needs ``token``.
    port : TCP port; 0 picks a free one.
    token : secret every request must carry (``?token=``, a cookie set from it, or ``Authorization: Bearer``).
    limits : per-device bounds of the live view.
    db : history database (path, ``sqlite:///path`` or ``postgresql://...``) behind the ``/api/`` history
        routes (:mod:`audeep_edge.dashboard.history`); None: live view only.
    record : also run a :class:`~audeep_edge.recorder.Recorder` into ``db`` (False when a separate
        ``audeep-edge record`` fills it).
    retention : what the recorder keeps.

    Example
    -------
    >>> server = DashboardServer(MqttSettings(url="mqtt://127.0.0.1:1883"))
    >>> url = server.start()      # serves in background threads
    >>> server.stop()
    """

    def __init__(self, settings: MqttSettings, host: str = "127.0.0.1", port: int = 8080, token: str | None = None,
                 limits: HistoryLimits | None = None, db: str | None = None, record: bool = True,
                 retention: Retention | None = None) -> None:
        self.settings = settings
        self.broker = settings.address
        self.record = record
        if token is not None and not token.strip():
            raise ConfigError("--token is empty; give a secret string or leave the option out")
        if token is None and not is_loopback(host):
            raise ConfigError(f"--host {host} exposes the dashboard to the network; also give --token SECRET "
                              "(or bind to 127.0.0.1)")
        self.host, self.port, self.token = host, port, token
        self.state = FleetState(limits, broker=str(self.broker))
        self.hub = PushHub(self.state)
        self.static = {name: (STATIC_DIR / name).read_bytes() for name in STATIC_FILES}
        self._feed: MqttFeed | None = None
        self._httpd: _HTTPServer | None = None
        self._http_thread: threading.Thread | None = None
        self.db, self.retention = db, retention
        self._history: HistoryApi | None = None
        self._recorder: Recorder | None = None

    def answer_history(self, path: str, query: dict[str, list[str]], headers) -> tuple | None:
        """The history API's response to ``GET path`` (404 without ``db``), or None for another path."""
        if self._history is None:
            return HTTPStatus.NOT_FOUND, b"no history: start the dashboard with --db\n", "text/plain", {}
        return self._history.handle(path, query, headers)

    @property
    def url(self) -> str:
        """Address a person opens (with the token when there is one)."""
        host = socket.gethostname() if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        suffix = f"?token={quote(self.token)}" if self.token else ""
        return f"http://{host}:{self.port}/{suffix}"

    def start(self) -> str:
        """Bind, connect to the broker and serve in background threads; returns :attr:`url`.

        Raises
        ------
        ConfigError
            When the address cannot be bound (port in use, unknown host), ``db`` cannot be opened, or the
            password file or TLS files are unusable.
        """
        feed = MqttFeed(self.settings, self.state)  # checks the credentials and TLS files before anything starts
        handler = type("DashboardHandler", (_Handler,), {"dashboard": self})
        server_class = _HTTPServer
        if ":" in self.host:
            server_class = type("_HTTPServer6", (_HTTPServer,), {"address_family": socket.AF_INET6})
        try:
            self._httpd = server_class((self.host, self.port), handler)
        except OSError as exc:
            raise ConfigError(f"--host {self.host} --port {self.port}: cannot listen there ({exc.strerror or exc}); "
                              "pick another --port or a local address") from None
        self.port = self._httpd.server_address[1]
        if self.db is not None:
            try:
                store = open_store(self.db)
            except ConfigError:
                self._httpd.server_close()
                raise
            self._history = HistoryApi(store)
            if self.record:
                self._recorder = Recorder(self.settings, store, self.retention, role="dashboard")
                self._recorder.start()
        self._feed = feed
        self._feed.start()
        self.hub.start()
        self._http_thread = threading.Thread(target=self._httpd.serve_forever, name="dashboard-http", daemon=True)
        self._http_thread.start()
        log.info("dashboard for %s at %s", self.broker, self.url)
        return self.url

    def stop(self) -> None:
        """Close browser streams, stop serving and disconnect from the broker."""
        self.hub.stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._feed is not None:
            self._feed.stop()
            self._feed = None
        if self._recorder is not None:
            self._recorder.stop()
            self._recorder = None
        if self._history is not None:
            self._history.store.close()
            self._history = None

    def __enter__(self) -> "DashboardServer":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
