"""Hostile input: oversized and chunked request bodies, and clients that go away mid-upload.

Request bodies are bounded while they stream in, whatever their framing (``Content-Length`` or
chunked), before authentication: parallel 400 MB chunked bodies without a token are cut at a few
KB, the server's peak RSS barely moves, each is answered 413 (problem details; a page for page
routes) and its connection closed. A client that goes away mid-upload leaves no traceback in the
server's log and nothing stored.

One ``tongban serve`` process (SQLite, demo seed, no flows) for the module; the attacks are raw
sockets, so the test sees exactly what the server answered and whether it closed the connection.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import ALL_FGS, answers_for, free_port, serving, wait_healthy

from api.limits import BodyLimit
from core.settings import ROOT, get_settings

# A server process of its own (the product's CLI, like the other slow tests) and 400 MB floods.
pytestmark = pytest.mark.slow

MB = 1 << 20
ATTACK_BYTES = 400 * MB
RSS_BOUND_MB = 150
ABORT_MB = 1024  # a server that holds this much has failed already: stop before the machine suffers
CHUNK = os.urandom(64 * 1024)
FRAME = b"%x\r\n" % len(CHUNK) + CHUNK + b"\r\n"
MISSING_LICENSE = {**ALL_FGS, "license": "missing"}
UPLOAD = "/api/v1/cases/{n}/materials/license/pages"


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    port: int
    tmp: Path
    log: Path
    tokens: dict[str, str]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def h(self, who: str = "王芳", **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}", **extra}

    def log_text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def objects(self) -> list[Path]:
        root = self.tmp / "objects"
        return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []

    def new_case(self) -> dict[str, Any]:
        r = httpx.post(self.base + "/api/v1/cases", headers=self.h(), timeout=30, json={
            "item_code": "FGSFZRBG", "competent_region": "370211", "materials": MISSING_LICENSE,
            "situation": answers_for("FGSFZRBG", MISSING_LICENSE),
            "applicant": {"name": "测试申请人", "kind": "company", "phone": "0531-88880000"}})
        assert r.status_code == 201, r.text
        return dict(r.json())


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("bodies")
    port = free_port()
    env = {**os.environ, "TONGBAN_DATABASE_URL": f"sqlite:///{tmp / 'bodies.db'}",
           "TONGBAN_DATA_DIR": str(tmp), "TONGBAN_OBJECT_STORE": "local",
           "TONGBAN_OBJECT_DIR": str(tmp / "objects"), "TONGBAN_EMBEDDED_FLOWS": "false"}
    log = tmp / "server.log"
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "cli", "serve", "--port", str(port), "--no-flows",
                                 "--standalone"],
                                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err,
                                start_new_session=True)
    try:
        assert wait_healthy(f"http://127.0.0.1:{port}/healthz", 60), log.read_text()
        tokens = {t["name"]: t["token"] for t in json.loads((tmp / "demo-tokens.json").read_text())}
        yield Server(proc, port, tmp, log, tokens)
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


# -- a raw HTTP/1.1 client ------------------------------------------------------------------------

@dataclass
class Answer:
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    closed: bool = False  # the server closed the connection after its answer
    sent: int = 0  # body bytes that got out before the server stopped us
    seconds: float = 0.0

    def problem(self) -> dict[str, Any]:
        assert self.headers.get("content-type") == "application/problem+json", (self.status, self.headers)
        return dict(json.loads(self.body))


def _request_head(port: int, method: str, path: str, headers: dict[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}",
             *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_answer(sock: socket.socket, out: Answer, wait: float) -> None:
    """Read one response (status, headers, a Content-Length body), then wait for the close."""
    sock.settimeout(wait)
    buf = b""
    try:
        while b"\r\n\r\n" not in buf:
            part = sock.recv(65536)
            if not part:
                out.closed = True
                return
            buf += part
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        out.status = int(lines[0].split()[1])
        out.headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
        length = int(out.headers.get("content-length", "0"))
        while len(rest) < length:
            part = sock.recv(65536)
            if not part:
                break
            rest += part
        out.body = rest[:length]
        while True:  # anything after the answer, until the server closes (or we give up)
            if not sock.recv(65536):
                out.closed = True
                return
    except (ConnectionResetError, BrokenPipeError):
        out.closed = True
    except (TimeoutError, OSError):
        pass


def send_body(port: int, path: str, headers: dict[str, str], total: int, *, method: str = "POST",
              length: int | None = None, stop: threading.Event | None = None, wait: float = 60,
              sockets: list[socket.socket] | None = None) -> Answer:
    """Send ``total`` bytes of body (chunked, unless ``length`` is declared), generated as it goes,
    from one thread while another reads the answer."""
    out, started = Answer(), time.monotonic()
    framing = {"Content-Length": str(length)} if length is not None else {"Transfer-Encoding": "chunked"}
    sock = socket.create_connection(("127.0.0.1", port), timeout=wait)
    if sockets is not None:
        sockets.append(sock)

    def pump() -> None:
        try:
            sock.sendall(_request_head(port, method, path, {**headers, **framing}))
            while out.sent < total and not (stop and stop.is_set()) and out.status is None:
                if length is None:
                    sock.sendall(FRAME)
                else:
                    sock.sendall(CHUNK[: min(len(CHUNK), total - out.sent)])
                out.sent += len(CHUNK)
            if length is None and out.sent >= total:
                sock.sendall(b"0\r\n\r\n")
        except OSError:
            pass

    sender = threading.Thread(target=pump, daemon=True)
    sender.start()
    try:
        _read_answer(sock, out, wait)
    finally:
        _cut([sock])  # wakes the sender if it is still blocked
        sock.close()
        sender.join(10)
    out.seconds = time.monotonic() - started
    return out


def _cut(sockets: list[socket.socket]) -> None:
    for sock in sockets:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)  # wakes the reader blocked in recv (close would not)


def assert_refused(a: Answer, what: str) -> dict[str, Any]:
    assert a.status == 413, (what, a)
    assert a.headers.get("connection") == "close", (what, a.headers)
    assert a.closed, f"{what}: the server kept the connection open after refusing the body"
    assert a.sent < 64 * MB, f"{what}: {a.sent // MB} MB went out before the refusal"
    return a.problem()


# -- the server's memory --------------------------------------------------------------------------

def _status_kb(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out[key] = int(value.split()[0])
    return out


class PeakRss:
    """The server's peak RSS growth over a block: sampled every few ms, and the kernel's own high
    water mark (VmHWM, reset first through clear_refs). Past ``ABORT_MB`` it sets ``abort``."""

    def __init__(self, pid: int) -> None:
        self.pid, self.abort, self.done = pid, threading.Event(), threading.Event()
        self.baseline = self.peak = 0

    def __enter__(self) -> PeakRss:
        self.baseline = self.peak = _status_kb(self.pid)["VmRSS"]
        try:  # VmHWM := VmRSS; without that (not root) the samples alone count
            Path(f"/proc/{self.pid}/clear_refs").write_text("5")
            self.hwm_reset = True
        except OSError:
            self.hwm_reset = False
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()
        return self

    def _sample(self) -> None:
        while not self.done.wait(0.005):
            self.peak = max(self.peak, _status_kb(self.pid)["VmRSS"])
            if self.growth_mb > ABORT_MB:
                self.abort.set()

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        self.thread.join()
        if self.hwm_reset:
            self.peak = max(self.peak, _status_kb(self.pid)["VmHWM"])

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 1024


# -- the tests ------------------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}


def test_parallel_chunked_floods_are_cut_at_their_budget_and_memory_stays_flat(server: Server) -> None:
    """Attack 1: three parallel 400 MB chunked POSTs to /api/v1/cases without a token, the same at
    the video join, the carrier callback and item publishing, and one with a valid token beyond
    the JSON cap. Each is 413 after its budget, the connection closed; the server's peak RSS grows
    by less than 150 MB; ordinary requests work afterwards."""
    s = get_settings()
    floods = [("/api/v1/cases", JSON, s.max_unauthenticated_body_bytes)] * 3 + [
        ("/api/v1/video/join", JSON, None),
        ("/api/v1/carriers/counter/callback", {**JSON, "X-Tongban-Timestamp": "1", "X-Tongban-Signature": "x"}, None),
        ("/api/v1/items", {"Content-Type": "application/yaml"}, s.max_unauthenticated_body_bytes),
        ("/api/v1/cases", {**JSON, **server.h()}, s.max_body_bytes),
    ]
    for path, headers, _ in floods:  # warm up each route (lazy imports, caches) before measuring
        httpx.post(server.base + path, headers=headers, content=b"{}", timeout=30)
    log_before = len(server.log_text())
    sockets: list[socket.socket] = []
    with PeakRss(server.proc.pid) as rss, ThreadPoolExecutor(len(floods)) as pool:
        threading.Thread(target=lambda: rss.abort.wait() and _cut(sockets), daemon=True).start()
        answers = list(pool.map(lambda f: send_body(server.port, f[0], f[1], ATTACK_BYTES, stop=rss.abort,
                                                    wait=120, sockets=sockets), floods))
    print(f"peak RSS growth {rss.growth_mb:.1f} MB (baseline {rss.baseline / 1024:.0f} MB); "
          + ", ".join(f"{p}: {a.status} after {a.sent / MB:.1f} MB in {a.seconds:.2f} s"
                      for (p, _, _), a in zip(floods, answers, strict=True)))
    assert not rss.abort.is_set(), f"the server grew by {rss.growth_mb:.0f} MB: attack stopped"
    for (path, _, budget), a in zip(floods, answers, strict=True):
        p = assert_refused(a, path)
        assert p["status"] == 413 and p["type"] == "/problems/too-large" and p["title"] == "请求体过大", p
        if budget is not None:
            assert str(budget) in p["detail"], p
    assert rss.growth_mb < RSS_BOUND_MB, f"peak RSS grew by {rss.growth_mb:.0f} MB"
    assert "Traceback" not in server.log_text()[log_before:]
    # The server is fine afterwards: health, and a case opened with a token.
    assert httpx.get(server.base + "/healthz", timeout=10).status_code == 200
    server.new_case()


def test_a_declared_length_beyond_the_budget_is_refused_before_a_byte_is_read(server: Server) -> None:
    a = send_body(server.port, "/api/v1/cases", JSON, 2 * MB, length=ATTACK_BYTES)
    assert_refused(a, "Content-Length without a token")
    a = send_body(server.port, "/api/v1/cases", {**JSON, **server.h()}, 4 * MB, length=ATTACK_BYTES)
    assert_refused(a, "Content-Length with a token")
    # An upload may be larger than the JSON cap, but not larger than the upload cap.
    n = server.new_case()["number"]
    a = send_body(server.port, UPLOAD.format(n=n), {**server.h(), "Content-Type": "image/jpeg"}, 2 * MB,
                  length=get_settings().max_upload_bytes + 10 * MB)
    assert_refused(a, "upload beyond the upload cap")


def test_each_route_class_has_its_budget(server: Server) -> None:
    """Small before authentication, the JSON cap with a token, the upload cap for uploads with a
    token; public routes whose body is their credential declared their own."""
    s = get_settings()
    tiny = s.max_unauthenticated_body_bytes
    n = server.new_case()["number"]
    upload = UPLOAD.format(n=n)
    # Without credentials an upload route gets only the small budget…
    a = send_body(server.port, upload, {"Content-Type": "image/jpeg"}, 4 * MB)
    assert str(tiny) in assert_refused(a, "upload without a token")["detail"]
    # …an invalid token is found out before the upload is read: the small budget, the connection
    # closed with the refusal…
    a = send_body(server.port, upload, {"Authorization": "Bearer nope", "Content-Type": "image/jpeg"},
                  ATTACK_BYTES, wait=30)
    assert a.status == 413 and str(tiny) in a.problem()["detail"] and a.closed and a.sent < 64 * MB, a
    # …a bearer token that is not a valid one is checked before the body is read: it earns only
    # the small budget (a JSON body of the cap's size with "Bearer junk" is refused as too large,
    # chunked too), while a small one reaches the route and is refused as a token…
    r = httpx.post(server.base + "/api/v1/cases", headers={**JSON, "Authorization": "Bearer nope"},
                   content=b" " * (tiny * 4) + b"{}", timeout=30)
    assert r.status_code == 413 and str(tiny) in r.json()["detail"], r.text
    a = send_body(server.port, "/api/v1/cases", {**JSON, "Authorization": "Bearer junk"}, ATTACK_BYTES, wait=30)
    assert str(tiny) in assert_refused(a, "chunked JSON with an invalid token")["detail"]
    assert a.sent < 64 * MB, a
    r = httpx.post(server.base + "/api/v1/cases", headers={**JSON, "Authorization": "Bearer nope"},
                   content=b"{}", timeout=30)
    assert r.status_code == 401, r.text
    # …a valid one, the upload cap on the upload route (here: the body is judged as a file).
    r = httpx.post(server.base + upload, headers={**server.h(), "Content-Type": "image/jpeg"},
                   content=b"\xff\xd8\xff" + b"\0" * (2 * s.max_body_bytes), timeout=60)
    assert r.status_code == 422 and r.json()["code"] == "corrupt_image", r.text
    # Public bodies beyond the small budget, each within what its route declared.
    sdp = "v=0\r\n" + "a=candidate:1 1 udp 2122260223 127.0.0.1 9 typ host\r\n" * 3000  # ~150 KB
    r = httpx.post(server.base + "/api/v1/video/join", json={"token": "x" * 40, "sdp": sdp, "type": "offer"},
                   timeout=30)
    assert r.status_code not in (413, 500) and len(sdp) > tiny * 10, r.text
    reason = "因个人原因撤回申请" * 222  # 1998 characters: the longest reason the forms take
    r = httpx.post(server.base + f"/api/v1/progress/{n}/withdrawal", timeout=30,
                   content=json.dumps({"code": "000000", "reason": reason}), headers=JSON)
    assert r.status_code == 404, r.text  # a wrong code looks like an unknown case, not a big body
    r = httpx.post(server.base + "/progress/withdraw", data={"number": n, "code": "000000", "reason": reason},
                   timeout=30)
    # The page's refusal (the wrong code) is a redirect to the progress page, which shows it once.
    assert r.status_code == 303 and r.headers["location"].startswith("/progress"), r.text[:200]
    # The login form is small: a flood there is refused as a page for a browser.
    a = send_body(server.port, "/ui/login", {"Content-Type": "application/x-www-form-urlencoded",
                                             "Accept": "text/html"}, 4 * MB)
    assert a.status == 413 and a.closed and a.headers["content-type"].startswith("text/html"), a
    assert "请求体过大" in a.body.decode()


def _disconnect_mid_body(port: int, path: str, headers: dict[str, str], head_body: bytes) -> None:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(_request_head(port, "POST", path, headers) + head_body)
    time.sleep(0.3)  # the server is reading the body now
    sock.close()


def test_a_client_that_disconnects_mid_upload_leaves_no_traceback_and_nothing_stored(server: Server) -> None:
    case = server.new_case()
    n, upload = case["number"], UPLOAD.format(n=case["number"])
    before = len(server.log_text())
    objects = server.objects()
    half = CHUNK * 8  # 512 KB of a body that promised more
    boundary = "tongbanboundary"
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.jpg\"\r\n"
            "Content-Type: image/jpeg\r\n\r\n").encode() + b"\xff\xd8\xff" + half
    cuts = [
        (upload, {**server.h(), "Content-Type": "image/jpeg", "Content-Length": str(4 * MB)}, half),
        (upload, {**server.h(), "Content-Type": "image/jpeg", "Transfer-Encoding": "chunked"}, FRAME * 8),
        (upload, {**server.h(), "Content-Type": f"multipart/form-data; boundary={boundary}",
                  "Content-Length": str(4 * MB)}, part),
        (f"/ui/cases/{n}/materials/license/pages", {"Cookie": f"tb_session={server.tokens['王芳']}",
         "Content-Type": f"multipart/form-data; boundary={boundary}", "Content-Length": str(4 * MB)}, part),
        ("/api/v1/cases", {**server.h(), **JSON, "Content-Length": "600000"}, b'{"item_code": "' + b"x" * 300_000),
        ("/api/v1/carriers/counter/callback", {**JSON, "Content-Length": "5000"}, b"{" * 100),
        ("/api/v1/items", {**server.h("孙设计"), "Content-Type": "application/yaml", "Content-Length": "600000"},
         b"code: X\n" * 1000),
    ]
    for path, headers, body in cuts:
        _disconnect_mid_body(server.port, path, headers, body)
    time.sleep(1.0)
    log = server.log_text()[before:]
    assert "Traceback" not in log and "Exception in ASGI application" not in log, log
    r = httpx.get(server.base + f"/api/v1/cases/{n}", headers=server.h(), timeout=10)
    assert r.json()["version"] == case["version"]
    r = httpx.get(server.base + upload, headers=server.h(), timeout=10)
    assert r.json()["items"] == [] and server.objects() == objects
    # The same upload, whole, is stored (the cut ones failed for being cut, nothing else).
    jpeg = _jpeg()
    r = httpx.post(server.base + upload, content=jpeg, timeout=30,
                   headers={**server.h(), "Content-Type": "image/jpeg", "X-File-Name": "a.jpg"})
    assert r.status_code == 201, r.text


def _jpeg() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (64, 64), "white").save(out, "JPEG")
    return out.getvalue()


def test_a_body_past_its_budget_after_the_answer_started_aborts_the_connection(
        caplog: pytest.LogCaptureFixture) -> None:
    """A route that answers while it still reads (a stream): past the budget there is no 413 to
    give any more, so the connection is cut, the answer left visibly incomplete (no last chunk),
    and nothing but a warning is logged."""

    async def echo_while_reading(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"started\n", "more_body": True})
        while (await receive()).get("more_body"):
            await send({"type": "http.response.body", "body": b".", "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    app = BodyLimit(echo_while_reading, max_bytes=MB, unauthenticated_bytes=MB)
    with serving(app) as url:
        port = int(url.rsplit(":", 1)[1])
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        sock.sendall(_request_head(port, "POST", "/", {"Transfer-Encoding": "chunked", "Authorization": "Bearer x"}))
        got, closed = b"", False

        def pump() -> None:
            try:
                for _ in range(ATTACK_BYTES // len(CHUNK)):
                    sock.sendall(FRAME)
            except OSError:
                pass

        threading.Thread(target=pump, daemon=True).start()
        try:
            while part := sock.recv(65536):
                got += part
            closed = True
        except (ConnectionResetError, BrokenPipeError):
            closed = True
        finally:
            sock.close()
    assert got.startswith(b"HTTP/1.1 200") and b"started" in got
    assert closed and not got.endswith(b"0\r\n\r\n"), got[-200:]
    assert not [r for r in caplog.records if r.exc_info], [r.getMessage() for r in caplog.records]
