"""Small local receivers for the notification tests, on 127.0.0.1 only: an SMTP server (aiosmtpd)
and an HTTP SMS gateway. Each keeps what it received; both can be stopped and started on the same port,
as a server that goes down and comes back."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _Mailbox:
    """aiosmtpd's handler: refuses the listed recipients, keeps every message it accepts."""

    def __init__(self, received: list[tuple[str, list[str], Message]], refuse: set[str]) -> None:
        self.received, self.refuse, self.lock = received, refuse, threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,  # noqa: N802
                          rcpt_options: list[str]) -> str:
        if address in self.refuse:
            return "550 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        with self.lock:
            self.received.append((envelope.mail_from, list(envelope.rcpt_tos), message))
        return "250 queued"


class SmtpServer:
    """aiosmtpd on 127.0.0.1: ``start()``/``stop()`` as often as wanted, always on ``port``;
    ``received`` survives."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[tuple[str, list[str], Message]] = []
        self.refuse: set[str] = set()
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        self._controller = Controller(_Mailbox(self.received, self.refuse), hostname="127.0.0.1",
                                      port=self.port, enable_SMTPUTF8=True)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


class SmsGateway:
    """An HTTP gateway: each request is kept as (status answered, headers, JSON body); ``answers``
    is a list of statuses to give first (then 200 with ``{"id": "gw-<n>"}``)."""

    def __init__(self) -> None:
        self.requests: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        self.answers: list[int] = []
        self.refuse: set[str] = set()  # numbers answered 400
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    status = (gateway.answers.pop(0) if gateway.answers
                              else 400 if body.get("to") in gateway.refuse else 200)
                    gateway.requests.append((status, dict(self.headers), body))
                    answer = json.dumps({"id": f"gw-{len(gateway.requests)}"}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/sms"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
