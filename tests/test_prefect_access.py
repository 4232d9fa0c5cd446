"""Tongban's own calls to the Prefect server (deployments, pools, the dispatcher) carry Prefect's
client settings: the basic-auth string a server started with PREFECT_SERVER_API_AUTH_STRING asks for."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from prefect.settings import PREFECT_API_AUTH_STRING, temporary_settings

from flows.deploy import ensure_pool, prefect_http

SECRET = "tongban:s3cret"


@pytest.fixture
def guarded() -> Iterator[tuple[str, list[int]]]:
    """A stand-in Prefect API that answers 401 as the real one does without the right credentials."""
    statuses: list[int] = []
    want = "Basic " + base64.b64encode(SECRET.encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            ok = self.headers.get("Authorization") == want
            statuses.append(201 if ok else 401)
            body = json.dumps({} if ok else {"exception_message": "Unauthorized"}).encode()
            self.send_response(201 if ok else 401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", statuses
    finally:
        server.shutdown()


def test_pool_and_deployment_calls_send_the_auth_string(guarded: tuple[str, list[int]]) -> None:
    api, statuses = guarded
    with pytest.raises(Exception, match="401"):
        ensure_pool(api, "counter-370211")
    with temporary_settings(updates={PREFECT_API_AUTH_STRING: SECRET}):
        ensure_pool(api, "counter-370211")
        assert prefect_http(api).headers["authorization"].startswith("Basic ")
    assert statuses == [401, 201]
