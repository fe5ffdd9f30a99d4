"""A network fault injector in front of the real Elasticsearch: an HTTP forwarder that passes
every request through to the node, except those a rule answers itself.

Rules (each can be changed while it runs):
  throttle_bulk  answer this many _bulk requests 429 (es_rejected_execution_exception), then
                 let them through again
  max_body       answer 413 to any request whose body is larger than this many bytes
  latency        seconds added before each request is forwarded
  rewrite        (old, new) bytes: replaced in each _bulk body before it is forwarded, so the
                 real node judges a value the loader never sent (as after a template change)

Every request that is not answered by a rule goes to the real node and its answer comes back
unchanged, so every successful write is a real write. Not a mock: it is the kind of proxy a
load balancer or an overloaded node puts between the loader and Elasticsearch.
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
}


@dataclass
class Counters:
    forwarded: int = 0
    throttled: int = 0
    too_large: int = 0
    bulk_bodies: list[int] = field(default_factory=list)  # sizes of forwarded _bulk bodies


class FaultProxy:
    def __init__(self, upstream: str):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "localhost", parts.port or 9200)
        self.throttle_bulk = 0
        self.max_body: int | None = None
        self.latency = 0.0
        self.rewrite: tuple[bytes, bytes] | None = None
        self.counters = Counters()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _verdict(self, path: str, size: int) -> int | None:
        """The status a rule answers with, or None to forward."""
        with self._lock:
            if self.max_body is not None and size > self.max_body:
                self.counters.too_large += 1
                return 413
            if self.throttle_bulk > 0 and urlsplit(path).path.endswith("/_bulk"):
                self.throttle_bulk -= 1
                self.counters.throttled += 1
                return 429
            if urlsplit(path).path.endswith("/_bulk"):
                self.counters.bulk_bodies.append(size)
            self.counters.forwarded += 1
        return None

    def _handler(self):
        proxy = self
        local = threading.local()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the client expects of Elasticsearch

            def log_message(self, *args) -> None:  # quiet
                pass

            def _connection(self) -> http.client.HTTPConnection:
                if getattr(local, "conn", None) is None:
                    local.conn = http.client.HTTPConnection(*proxy.upstream, timeout=120)
                return local.conn

            def _answer(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
                self.send_response(status)
                for name, value in headers:
                    if name.lower() not in HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _refuse(self, status: int) -> None:
                kind = {429: "es_rejected_execution_exception", 413: "request_too_large"}
                error = {"type": kind[status], "reason": f"injected by the test proxy ({status})"}
                body = json.dumps({"error": error, "status": status}).encode()
                self._answer(
                    status,
                    body,
                    [("Content-Type", "application/json"), ("X-Elastic-Product", "Elasticsearch")],
                )

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if proxy.latency:
                    time.sleep(proxy.latency)
                status = proxy._verdict(self.path, length)
                if status is not None:
                    self._refuse(status)
                    return
                if proxy.rewrite and body and "_bulk" in self.path:
                    body = body.replace(*proxy.rewrite)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                for attempt in (1, 2):  # a kept-alive upstream connection may have closed
                    conn = self._connection()
                    try:
                        conn.request(self.command, self.path, body=body, headers=headers)
                        answer = conn.getresponse()
                        data = answer.read()
                        break
                    except (http.client.HTTPException, OSError):
                        conn.close()
                        local.conn = None
                        if attempt == 2:
                            raise
                self._answer(answer.status, data, answer.getheaders())

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

        return Handler
