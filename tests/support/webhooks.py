"""A real HTTP server standing in for a group robot: answers by a script, keeps what it was sent."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from govkit.devstack import free_port


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes
    status: int


@dataclass
class Robot:
    """Answers each POST with the next status of `script` (its last one repeating)."""

    script: list[int]
    received: list[Received] = field(default_factory=list)
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/robot/send"

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.received if r.status < 300]


def serve(robot: Robot) -> Iterator[Robot]:
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with lock:
                status = robot.script[min(len(robot.received), len(robot.script) - 1)]
                robot.received.append(Received(dict(self.headers.items()), body, status))
            self.send_response(status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", robot.port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield robot
    finally:
        server.shutdown()
        server.server_close()
