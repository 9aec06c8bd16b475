"""A fake workspace provider that speaks the HTTP provisioning API of DESIGN.md.

It is a real HTTP server (``http.server.ThreadingHTTPServer`` on 127.0.0.1, an
ephemeral port, a daemon thread), so the code under test talks to it over a real
socket, with real timeouts, and nothing is monkeypatched::

    with FakeProvider() as provider:
        settings.PROVISIONING_URL = provider.url
        provider.fail_times(2)              # the next two requests get 503
        ...
        assert provider.created_count == 1

The API (see "HTTP provisioning provider" in DESIGN.md)::

    POST /workspaces
    Idempotency-Key: <stable per account>
    {"account_id": "...", "company": "...", "owner_email": "..."}

    DELETE /workspaces/<id>
    Idempotency-Key: <stable per removal>

Each request is decided in this order:

1. a path other than ``/workspaces`` or ``/workspaces/<id>`` -> 404; a method other
   than POST (on ``/workspaces``) or DELETE (on ``/workspaces/<id>``) -> 405;
2. no ``Idempotency-Key`` header, or a POST body that is not a JSON object -> 400;
3. the optional rate limit (``rate_limit_per_second``) -> 429, ``Retry-After: 1``;
4. failures queued by :meth:`FakeProvider.fail_times` -> that status;
5. the current :attr:`FakeProvider.mode`:

   ``"ok"``            201 ``{"id": "ws_<hex>"}``; a repeat of a known key -> 200,
                       same id
   ``"hang"``          like ``"ok"``, but sleeps ``hang_seconds`` before answering;
                       the workspace is recorded *before* the sleep (the work is
                       done, only the answer is late), so a retry with the same key
                       gets the same id
   ``"error"``         503 ``{"error": "unavailable"}``
   ``"reject"``        422 ``{"error": "invalid company"}``
   ``"conflict"``      409 ``{"id": <the key's id, created now if new>}``
   ``"rate_limited"``  429 with ``Retry-After: <retry_after>``

   A DELETE in ``"ok"``, ``"hang"`` or ``"conflict"`` removes the workspace: 204, or
   404 if no workspace has that id (already removed, or never created); ``"hang"``
   removes it before the sleep. The other modes answer a DELETE as they do a POST.

Steps 1-2 consume nothing; a request refused at step 3 does not consume a queued
failure. Every request is recorded in :attr:`FakeProvider.requests`.

Thread safety: one lock guards all state. A request's decision (including the clock
reading, the rate-limit check and the record) is taken atomically under it; the
configuration may be changed from any thread while requests are in flight.
"""

from __future__ import annotations

import json
import math
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Self, TypedDict, get_args
from urllib.parse import urlsplit

__all__ = ["MODES", "FakeProvider", "Mode", "RequestRecord"]

Mode = Literal["ok", "error", "hang", "reject", "conflict", "rate_limited"]
MODES: frozenset[str] = frozenset(get_args(Mode))

WORKSPACES_PATH = "/workspaces"
MINT = object()  # FakeProvider.workspace_id: mint a fresh "ws_<hex>" per key


class RequestRecord(TypedDict):
    """One request as the fake saw it (an entry of :attr:`FakeProvider.requests`)."""

    time: float  # the provider's clock (time.monotonic by default) on arrival
    method: str
    path: str
    idempotency_key: str | None
    json: dict[str, Any] | None  # None when the body was missing or not a JSON object
    status: int  # the status answered (for "hang": decided before the sleep)


@dataclass(frozen=True)
class _Reply:
    status: int
    body: dict[str, str]
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class FakeProvider:
    """A fake workspace provider; a context manager that serves while inside ``with``.

    :param mode: initial behaviour, one of :data:`MODES` (see the module docstring).
    :param hang_seconds: how long ``"hang"`` sleeps before answering.
    :param retry_after: the ``Retry-After`` seconds sent by ``"rate_limited"`` and by
        failures queued with status 429; ``None`` sends no ``Retry-After``.
    :param rate_limit_per_second: enforce at most ``max(1, floor(limit))`` accepted
        requests in any sliding one-second window (a sliding-window log, not a fixed
        window or token bucket, so that ``max_requests_in_any_second`` over the
        accepted requests never exceeds the limit); requests beyond it get 429 with
        ``Retry-After: 1`` and do not count against the window. ``None`` = no limit.
    :param clock: the time source for records and the rate limit; inject a fake
        clock to test windows without sleeping.

    ``hang_seconds``, ``retry_after`` and ``rate_limit_per_second`` are plain
    attributes that may be reassigned at any time; ``mode`` validates its value.
    """

    def __init__(
        self,
        mode: Mode = "ok",
        *,
        hang_seconds: float = 5.0,
        retry_after: int | None = 7,
        rate_limit_per_second: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._clock = clock
        self._mode: Mode = "ok"
        self.mode = mode
        self.hang_seconds = hang_seconds
        self.retry_after = retry_after
        self.rate_limit_per_second = rate_limit_per_second
        # The id given to workspaces created from now on; MINT mints "ws_<hex>". A
        # broken provider answers with an id that is too long, empty or not a string.
        self.workspace_id: Any = MINT
        self._requests: list[RequestRecord] = []
        self._workspaces: dict[str, str] = {}
        self._removed: list[str] = []
        self._failures: deque[int] = deque()
        self._accepted_times: deque[float] = deque()

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> Self:
        """Bind an ephemeral port on 127.0.0.1 and serve in a daemon thread."""
        if self._server is not None:
            raise RuntimeError("FakeProvider is already running")
        self._stopping.clear()
        self._server = _Server(self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"FakeProvider:{self._server.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; wakes any request still hanging."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("FakeProvider is not running")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The base URL (``PROVISIONING_URL``), e.g. ``http://127.0.0.1:54321``."""
        return f"http://127.0.0.1:{self.port}"

    # -- behaviour ---------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        return self._mode

    @mode.setter
    def mode(self, value: Mode) -> None:
        if value not in MODES:
            raise ValueError(f"unknown mode {value!r}; expected one of {sorted(MODES)}")
        with self._lock:
            self._mode = value

    def fail_times(self, n: int, status: int = 503) -> None:
        """Make the next ``n`` requests answer ``status``, then behave per ``mode``.

        Replaces any failures still queued. A 429 carries ``Retry-After``.
        """
        if n < 0:
            raise ValueError("n must be >= 0")
        with self._lock:
            self._failures = deque([status] * n)

    def reset(self) -> None:
        """Forget history: requests, workspaces, queued failures, rate-limit window.

        The configuration (``mode``, ``hang_seconds``, ``retry_after``,
        ``rate_limit_per_second``) is kept.
        """
        with self._lock:
            self._requests.clear()
            self._workspaces.clear()
            self._removed.clear()
            self._failures.clear()
            self._accepted_times.clear()

    # -- observation -------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return [RequestRecord(**record) for record in self._requests]

    @property
    def workspaces(self) -> dict[str, str]:
        """A snapshot of the workspaces created: idempotency key -> workspace id."""
        with self._lock:
            return dict(self._workspaces)

    @property
    def removed(self) -> list[str]:
        """The ids of the workspaces removed by DELETE, in order."""
        with self._lock:
            return list(self._removed)

    @property
    def created_count(self) -> int:
        """How many distinct workspaces exist (one per idempotency key)."""
        with self._lock:
            return len(self._workspaces)

    def max_requests_in_any_second(self, statuses: Iterable[int] | None = None) -> int:
        """The most requests whose times fall in any sliding window ``[t, t + 1)``.

        :param statuses: count only requests answered with one of these statuses
            (e.g. ``{200, 201}`` for the accepted ones); ``None`` counts all.
        """
        wanted = None if statuses is None else frozenset(statuses)
        with self._lock:
            times = sorted(
                r["time"]
                for r in self._requests
                if wanted is None or r["status"] in wanted
            )
        best = start = 0
        for end, t in enumerate(times):
            while t - times[start] >= 1.0:
                start += 1
            best = max(best, end - start + 1)
        return best

    # -- request handling (called from the server's threads) ----------------------

    def _handle(
        self, method: str, raw_path: str, key: str | None, raw_body: bytes
    ) -> _Reply:
        path = urlsplit(raw_path).path
        body = _parse_json_object(raw_body)
        with self._lock:
            now = self._clock()
            reply = self._decide(now, method, path, key, body)
            self._requests.append(
                RequestRecord(
                    time=now,
                    method=method,
                    path=path,
                    idempotency_key=key,
                    json=body,
                    status=int(reply.status),
                )
            )
        return reply

    def _decide(
        self,
        now: float,
        method: str,
        path: str,
        key: str | None,
        body: dict[str, Any] | None,
    ) -> _Reply:
        """Choose the answer; the caller holds the lock."""
        if path.startswith(WORKSPACES_PATH + "/") and len(path) > len(WORKSPACES_PATH) + 1:
            return self._decide_delete(now, method, path[len(WORKSPACES_PATH) + 1:], key)
        if path != WORKSPACES_PATH:
            return _Reply(HTTPStatus.NOT_FOUND, {"error": "not found"})
        if method != "POST":
            return _Reply(
                HTTPStatus.METHOD_NOT_ALLOWED,
                {"error": "method not allowed"},
                {"Allow": "POST"},
            )
        if not key:
            return _Reply(HTTPStatus.BAD_REQUEST, {"error": "missing Idempotency-Key"})
        if body is None:
            return _Reply(
                HTTPStatus.BAD_REQUEST, {"error": "body must be a JSON object"}
            )
        if self._over_rate_limit(now):
            return _Reply(
                HTTPStatus.TOO_MANY_REQUESTS,
                {"error": "rate limited"},
                {"Retry-After": "1"},
            )
        if self._failures:
            return self._failure(self._failures.popleft())

        mode = self._mode
        if mode in ("ok", "hang"):
            existed = key in self._workspaces
            workspace_id = self._workspace_for(key)
            status = HTTPStatus.OK if existed else HTTPStatus.CREATED
            delay = self.hang_seconds if mode == "hang" else 0.0
            return _Reply(status, {"id": workspace_id}, delay=delay)
        if mode == "conflict":
            return _Reply(HTTPStatus.CONFLICT, {"id": self._workspace_for(key)})
        if mode == "reject":
            return _Reply(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": "invalid company"})
        if mode == "rate_limited":
            return self._failure(HTTPStatus.TOO_MANY_REQUESTS)
        return _Reply(
            HTTPStatus.SERVICE_UNAVAILABLE, {"error": "unavailable"}
        )  # "error"

    def _decide_delete(self, now: float, method: str, workspace_id: str, key: str | None) -> _Reply:
        if method != "DELETE":
            return _Reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "method not allowed"}, {"Allow": "DELETE"})
        if not key:
            return _Reply(HTTPStatus.BAD_REQUEST, {"error": "missing Idempotency-Key"})
        if self._over_rate_limit(now):
            return _Reply(HTTPStatus.TOO_MANY_REQUESTS, {"error": "rate limited"}, {"Retry-After": "1"})
        if self._failures:
            return self._failure(self._failures.popleft())
        mode = self._mode
        if mode in ("ok", "hang", "conflict"):
            owner = next((k for k, v in self._workspaces.items() if v == workspace_id), None)
            if owner is None:
                return _Reply(HTTPStatus.NOT_FOUND, {"error": "no such workspace"})
            del self._workspaces[owner]
            self._removed.append(workspace_id)
            return _Reply(HTTPStatus.NO_CONTENT, {}, delay=self.hang_seconds if mode == "hang" else 0.0)
        if mode == "reject":
            return _Reply(HTTPStatus.UNPROCESSABLE_ENTITY, {"error": "cannot remove"})
        if mode == "rate_limited":
            return self._failure(HTTPStatus.TOO_MANY_REQUESTS)
        return _Reply(HTTPStatus.SERVICE_UNAVAILABLE, {"error": "unavailable"})  # "error"

    def _failure(self, status: int) -> _Reply:
        if status == HTTPStatus.TOO_MANY_REQUESTS:
            # No Retry-After at all when ``retry_after`` is None.
            after = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
            return _Reply(status, {"error": "rate limited"}, after)
        return _Reply(status, {"error": "unavailable"})

    def _workspace_for(self, key: str) -> str:
        if self.workspace_id is not MINT:
            return self._workspaces.setdefault(key, self.workspace_id)
        return self._workspaces.setdefault(key, f"ws_{secrets.token_hex(8)}")

    def _over_rate_limit(self, now: float) -> bool:
        """Sliding-window log: record ``now`` unless the last second is full."""
        limit = self.rate_limit_per_second
        if limit is None:
            return False
        window = self._accepted_times
        while window and now - window[0] >= 1.0:
            window.popleft()
        if len(window) >= max(1, math.floor(limit)):
            return True
        window.append(now)
        return False


def _parse_json_object(raw: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(raw)
    except ValueError:  # includes JSONDecodeError and UnicodeDecodeError
        return None
    return value if isinstance(value, dict) else None


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a hanging request never blocks shutdown
    request_queue_size = 1024  # listen() backlog: hundreds of concurrent clients

    def __init__(self, provider: FakeProvider) -> None:
        self.provider = provider
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out and went away is expected here; stay quiet.
        pass


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        raw_body = self.rfile.read(length) if length > 0 else b""
        provider = self.server.provider
        reply = provider._handle(
            self.command, self.path, self.headers.get("Idempotency-Key"), raw_body
        )
        if reply.delay > 0:
            provider._stopping.wait(reply.delay)
        data = b"" if reply.status == HTTPStatus.NO_CONTENT else json.dumps(reply.body).encode()
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_POST = do_GET = do_PUT = do_PATCH = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # silence the default stderr log line per request
