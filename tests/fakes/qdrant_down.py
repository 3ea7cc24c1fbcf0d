"""A Qdrant that is there but failing: real HTTP on 127.0.0.1 answering every REST call with the
503 a Qdrant server (or the proxy in front of it) gives while it is overloaded or recovering, in
Qdrant's own error body, or (``hang=True``) accepting the connection, reading the request and never
answering, as a hung or overloaded server or a network black hole does. ``close`` then leaves the
port with nothing listening (connection refused); a request still hanging then gets its connection
closed without an answer. ``BlackHole`` is a port whose connections are never even accepted.
Used by the context tests and by ``bench.faults`` (the qdrant-down and qdrant-hang cases)."""

from __future__ import annotations

import json
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FailingQdrant:
    def __init__(self, port: int = 0, status: int = 503, *, hang: bool = False) -> None:
        self.status, self.hang, self.requests = status, hang, 0
        self.hanging = 0  # requests waiting for an answer right now
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._hung_threads: list[threading.Thread] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _any(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                with fake._lock:
                    fake.requests += 1
                    hang = fake.hang
                    if hang:
                        fake.hanging += 1
                        fake._hung_threads.append(threading.current_thread())
                if hang:
                    self._hang()
                    return
                body = json.dumps({"status": {"error": "Service Unavailable: the server is recovering"},
                                   "time": 0.0}).encode()
                self.send_response(fake.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _hang(self) -> None:
                """No answer until the client gives up (closes its end) or the fake is closed."""
                self.close_connection = True
                try:
                    while not fake._closed.is_set():
                        readable, _, _ = select.select([self.connection], [], [], 0.05)
                        if readable and not self.connection.recv(65536):
                            return
                except OSError:  # reset by the client
                    return
                finally:
                    with fake._lock:
                        fake.hanging -= 1

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._closed.set()  # hanging requests end: their connections are closed, unanswered
        self.server.shutdown()
        self.server.server_close()
        with self._lock:
            hung = list(self._hung_threads)
        for thread in hung:
            thread.join(5)

    def __enter__(self) -> FailingQdrant:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()


class BlackHole:
    """A port where connecting never completes: a listening socket whose accept queue is kept full, so
    the kernel drops every further SYN (Linux), as a firewall dropping packets or a vanished host does."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = int(self.listener.getsockname()[1])
        self.fillers: list[socket.socket] = []
        for _ in range(3):  # the queue holds backlog + 1; the rest wait in SYN-SENT
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", self.port))
            self.fillers.append(filler)

    def close(self) -> None:
        for filler in self.fillers:
            filler.close()
        self.listener.close()

    def __enter__(self) -> BlackHole:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()
