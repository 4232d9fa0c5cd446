"""Small local receivers for the notification tests, on 127.0.0.1 only: an SMTP server (the
standard library has none since smtpd left it, and aiosmtpd is not in the environment) and an
HTTP SMS gateway. Each keeps what it received; both can be stopped and started on the same port,
as a server that goes down and comes back."""

from __future__ import annotations

import email
import email.policy
import json
import socket
import socketserver
import threading
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class _SmtpHandler(socketserver.StreamRequestHandler):
    server: _SmtpTcp

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 localhost ESMTP test")
        sender, recipients = "", []
        while line := self.rfile.readline():
            verb = line.decode("utf-8", "replace").strip()
            upper = verb.upper()
            if upper.startswith(("EHLO", "HELO")):
                self.wfile.write(b"250-localhost\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n")
            elif upper.startswith("MAIL FROM:"):
                sender, recipients = verb[10:].split()[0].strip("<>"), []
                self.reply("250 OK")
            elif upper.startswith("RCPT TO:"):
                rcpt = verb[8:].strip().strip("<>")
                if rcpt in self.server.refuse:
                    self.reply("550 no such mailbox")
                else:
                    recipients.append(rcpt)
                    self.reply("250 OK")
            elif upper == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                body = bytearray()
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    body += chunk[1:] if chunk.startswith(b"..") else chunk
                message = email.message_from_bytes(bytes(body), policy=email.policy.default)
                with self.server.lock:
                    self.server.received.append((sender, recipients, message))
                self.reply("250 queued")
            elif upper in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif upper == "QUIT":
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


class _SmtpTcp(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, port: int, received: list[tuple[str, list[str], Message]], refuse: set[str]) -> None:
        self.received, self.refuse, self.lock = received, refuse, threading.Lock()
        super().__init__(("127.0.0.1", port), _SmtpHandler)


class SmtpServer:
    """``start()``/``stop()`` as often as wanted, always on ``port``; ``received`` survives."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.received: list[tuple[str, list[str], Message]] = []
        self.refuse: set[str] = set()
        self._server: _SmtpTcp | None = None

    def start(self) -> SmtpServer:
        self._server = _SmtpTcp(self.port, self.received, self.refuse)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


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
