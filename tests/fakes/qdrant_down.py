"""A Qdrant that is there but failing: real HTTP on 127.0.0.1 answering every REST call with the
503 a Qdrant server (or the proxy in front of it) gives while it is overloaded or recovering, in
Qdrant's own error body. ``close`` then leaves the port with nothing listening (connection refused).
Used by the context tests and by ``bench.faults`` (the qdrant-down case)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FailingQdrant:
    def __init__(self, port: int = 0, status: int = 503) -> None:
        self.status, self.requests = status, 0
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: Any) -> None:
                pass

            def _any(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                fake.requests += 1
                body = json.dumps({"status": {"error": "Service Unavailable: the server is recovering"},
                                   "time": 0.0}).encode()
                self.send_response(fake.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FailingQdrant:
        return self

    def __exit__(self, *_: Any) -> None:
        self.close()
