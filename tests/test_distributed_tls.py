"""TLS between the distributed roles, as docs/operations-security.md says to set it up.

A CA made here signs one server certificate (127.0.0.1 and localhost). The Prefect server
(``flows.prefect_server server start --ssl-certfile … --ssl-keyfile …``) speaks only https; the
worker (``tongban worker``, with Prefect's worker and flow runs under it), the dispatcher and this
test check it with ``PREFECT_API_SSL_CERT_FILE``. A PostgreSQL cluster of its own (the shared one
on 5432 has no TLS and stays as it is) takes TLS connections only; the case database URL says
``sslmode=verify-full&sslrootcert=…`` and Prefect's database uses Prefect's
``PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_*``. A client with another CA is refused by
both. One hand-off then goes from Jinan to Qingdao through the worker over both.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, CATALOG, Demo, free_port
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from fastapi.testclient import TestClient
from prefect.settings import PREFECT_API_AUTH_STRING, PREFECT_API_SSL_CERT_FILE, temporary_settings

from api.app import create_app
from core.settings import ROOT
from engine.demo import seed
from flows.dispatch import Dispatcher
from flows.supervise import descendants
from storage import migrate
from storage.db import make_engine, session_scope

pytestmark = pytest.mark.postgres
A, B = "370100", "370211"
AUTH = "tongban:tls-test"
PG_BIN = Path("/usr/local/bin")
APPLICANT = {"name": "青岛某某酒店管理有限公司", "kind": "person", "phone": "13700137000",
             "address": "山东省青岛市黄岛区滨海大道 88 号"}


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "通办测试"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(cn: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def make_server_cert(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
                     ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


class Pki:
    """The CA clients trust (in a folder with a space in its name, as on some hosts), another CA
    nobody should trust, and the server's certificate and key."""

    def __init__(self, where: Path) -> None:
        (where / "gov ca").mkdir()
        ca_key, ca = make_ca("通办测试根证书")
        key, cert = make_server_cert(ca_key, ca)
        self.ca = where / "gov ca" / "root.pem"
        self.ca.write_bytes(_pem(ca))
        self.wrong_ca = where / "wrong-ca.pem"
        self.wrong_ca.write_bytes(_pem(make_ca("别家根证书")[1]))
        self.cert, self.key = where / "server.crt", where / "server.key"
        self.cert.write_bytes(_pem(cert))
        self.key.write_bytes(_key_pem(key))
        self.key.chmod(0o600)


def _as_postgres(*cmd: str) -> None:
    """initdb and pg_ctl refuse root: run them as the ``postgres`` user."""
    r = subprocess.run(["runuser", "-u", "postgres", "--", *cmd], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, f"{' '.join(cmd)}: {r.stdout[-2000:]} {r.stderr[-2000:]}"


@contextlib.contextmanager
def tls_postgres(pki: Pki) -> Iterator[int]:
    """A short-lived PostgreSQL cluster on a free port of 127.0.0.1 that takes TCP connections over
    TLS only (``hostssl``; no ``host`` line), with the test CA's server certificate."""
    home = Path(tempfile.mkdtemp(prefix="tongban-pg-tls-"))  # not under pytest's root-only tmp
    data = home / "data"
    try:
        for name in ("server.crt", "server.key"):
            shutil.copy(pki.cert if name.endswith("crt") else pki.key, home / name)
        shutil.chown(home, "postgres")
        for f in home.iterdir():
            shutil.chown(f, "postgres")
        _as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust",
                     "-E", "UTF8", "--locale=C.UTF-8", "--no-sync")
        (data / "pg_hba.conf").write_text("local all all trust\nhostssl all all 127.0.0.1/32 trust\n")
        port = free_port()
        with (data / "postgresql.conf").open("a") as conf:
            conf.write(f"port = {port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{home}'\n"
                       f"ssl = on\nssl_cert_file = '{home / 'server.crt'}'\nssl_key_file = '{home / 'server.key'}'\n"
                       "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n")
        _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(home / "log"), "-w", "-t", "60", "start")
        try:
            yield port
        finally:
            _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _kill_tree(proc: subprocess.Popen[bytes]) -> None:
    for pid in [proc.pid, *descendants(proc.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, 9)
    proc.wait(10)


def _wait_healthy(url: str, verify: ssl.SSLContext, seconds: float, log: Path) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=2, verify=verify).status_code == 200:
                return
        time.sleep(0.5)
    raise AssertionError(log.read_text(errors="replace")[-3000:])


def _one(engine: sa.Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).first()


def test_a_hand_off_runs_over_tls_to_prefect_and_postgresql(tmp_path: Path) -> None:
    pki = Pki(tmp_path)
    procs: list[subprocess.Popen[bytes]] = []
    with tls_postgres(pki) as pg_port, contextlib.ExitStack() as stack:
        stack.callback(lambda: [_kill_tree(p) for p in reversed(procs) if p.poll() is None])
        base = f"postgresql+psycopg://postgres@127.0.0.1:{pg_port}"
        tls = f"sslmode=verify-full&sslrootcert={pki.ca}"  # as given: core.settings keeps it
        # Not TLS, or TLS with a CA that did not sign the server's certificate: refused.
        with pytest.raises(psycopg.OperationalError, match="no encryption"):
            psycopg.connect(f"host=127.0.0.1 port={pg_port} user=postgres dbname=postgres sslmode=disable")
        wrong = make_engine(f"{base}/postgres?sslmode=verify-full&sslrootcert={pki.wrong_ca}")
        with pytest.raises(sa.exc.OperationalError, match="certificate verify failed"):
            wrong.connect()
        wrong.dispose()
        admin = make_engine(f"{base}/postgres?{tls}").execution_options(isolation_level="AUTOCOMMIT")
        stack.callback(admin.dispose)
        with admin.connect() as conn:
            conn.exec_driver_sql("CREATE DATABASE tongban")
            conn.exec_driver_sql("CREATE DATABASE prefect")
        cases_url = f"{base}/tongban?{tls}"
        engine = make_engine(cases_url)
        stack.callback(engine.dispose)
        migrate.upgrade(engine)
        with session_scope(engine) as s:
            tokens = seed(s, CATALOG, ROOT / "catalog" / "alliance.yaml", tmp_path / "tokens.json", 30)

        port = free_port()
        api = f"https://127.0.0.1:{port}/api"
        env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"), "PREFECT_API_URL": api,
               "PREFECT_API_SSL_CERT_FILE": str(pki.ca),
               "PREFECT_SERVER_API_AUTH_STRING": AUTH, "PREFECT_API_AUTH_STRING": AUTH,
               "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_UI_ENABLED": "false",
               "PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_LOGGING_LEVEL": "WARNING",
               "TONGBAN_DATABASE_URL": cases_url, "TONGBAN_OBJECT_DIR": str(tmp_path / "objects"),
               "TONGBAN_OBJECT_DIR_SHARED": "true", "TONGBAN_PUBLIC_BASE_URL": "https://tongban.example.gov.cn",
               "PYTHONPATH": str(ROOT)}
        env.pop("PREFECT_API_TLS_INSECURE_SKIP_VERIFY", None)  # checked, never skipped
        server_log = tmp_path / "server.log"
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "flows.prefect_server", "server", "start", "--host", "127.0.0.1",
             "--port", str(port), "--ssl-certfile", str(pki.cert), "--ssl-keyfile", str(pki.key)],
            cwd=ROOT, stdout=server_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True, env={
                **env, "PREFECT_API_DATABASE_CONNECTION_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{pg_port}/prefect",
                "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_ENABLED": "true",
                "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_CA_FILE": str(pki.ca)}))
        trusted = ssl.create_default_context(cafile=str(pki.ca))
        _wait_healthy(f"{api}/health", trusted, 120, server_log)
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{api}/health", timeout=5)  # the system's store does not know the test CA
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"{api}/health", timeout=5, verify=ssl.create_default_context(cafile=str(pki.wrong_ca)))

        worker_log = tmp_path / "worker.log"
        procs.append(subprocess.Popen([sys.executable, "-m", "cli", "worker", "--region", B], cwd=ROOT, env=env,
                                      stdout=worker_log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True))
        stack.enter_context(temporary_settings(updates={  # this process: the dispatcher's client
            PREFECT_API_AUTH_STRING: AUTH, PREFECT_API_SSL_CERT_FILE: str(pki.ca)}))
        dispatcher = Dispatcher(engine, api)
        deadline = time.monotonic() + 90
        while dispatcher.deployment_id(B) is None:  # registered by `tongban worker` over https
            assert time.monotonic() < deadline and procs[-1].poll() is None, worker_log.read_text()[-3000:]
            time.sleep(0.5)

        with TestClient(create_app(engine)) as client:
            demo = Demo(engine, client, tokens)
            n = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region=B, applicant=APPLICANT)["number"]
            demo.fire("王芳", n, "accept")  # forwarded: the hand-off waits in Qingdao's outbox
        job_sql = ("SELECT o.status FROM outbox o JOIN cases k ON k.id = o.case_id "
                   "WHERE k.number = :n AND o.job = 'handoff'")
        deadline = time.monotonic() + 90
        while _one(engine, job_sql, n=n)[0] != "done":
            assert time.monotonic() < deadline, worker_log.read_text(errors="replace")[-3000:]
            dispatcher.dispatch_once()
            time.sleep(0.5)
        # Its task run, reported by the flow run over https (as events the server records a moment later).
        deadline, states = time.monotonic() + 20, []
        while states != ["COMPLETED"] and time.monotonic() < deadline:
            time.sleep(0.5)
            r = dispatcher.http.post("task_runs/filter", json={"task_runs": {"name": {"like_": f"{n} · handoff"}}})
            states = [t["state_type"] for t in r.raise_for_status().json()]
        assert states == ["COMPLETED"], worker_log.read_text(errors="replace")[-3000:]
        # Every TCP client of the cluster (Prefect's server, the worker's flow runs, this test) came
        # over TLS, to both databases; the worker's listening drainer (flows.listen, its own libpq
        # connection, the CA's path with its space) among them.
        listen_q = f'LISTEN "tongban_outbox_{B}"'  # the region's own channel (flows.listen.channel)
        listening = f"SELECT count(*) FROM pg_stat_activity WHERE query = '{listen_q}'"
        deadline = time.monotonic() + 30
        while not _one(admin, listening)[0]:
            assert time.monotonic() < deadline, worker_log.read_text(errors="replace")[-3000:]
            time.sleep(0.5)
        with admin.connect() as conn:
            rows = conn.execute(sa.text(
                "SELECT a.datname, s.ssl, a.query FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) "
                "WHERE a.client_addr IS NOT NULL")).all()
        assert {r.datname for r in rows} >= {"tongban", "prefect"} and all(r.ssl for r in rows), rows
        assert [r.ssl for r in rows if r.query == listen_q] == [True], rows
        errors = [ln for ln in server_log.read_text(errors="replace").splitlines()
                  if "| ERROR" in ln or "Traceback" in ln or "CRITICAL" in ln]
        assert errors == [], errors


# What the test above sets for TLS, by the names an operator writes: the docs give each one.
TLS_SETTINGS = ("--ssl-certfile", "--ssl-keyfile", "PREFECT_API_SSL_CERT_FILE", "sslmode=verify-full",
                "sslrootcert=", "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_ENABLED=true",
                "PREFECT_SERVER_DATABASE_SQLALCHEMY_CONNECT_ARGS_TLS_CA_FILE")


def test_the_tls_settings_used_above_are_documented() -> None:
    source = Path(__file__).read_text(encoding="utf-8").split("# What the test above sets")[0]
    for doc in ("README.md", "docs/operations-security.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        assert [s for s in TLS_SETTINGS if s not in text] == [], doc
    assert [s for s in TLS_SETTINGS if s.removesuffix("=true") not in source] == []
