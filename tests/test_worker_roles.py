"""Workers that are hard to misconfigure: required settings, unknown regions, failed jobs.

A worker (and the dispatcher) refuses to start without an explicit shared case database, public
base URL and shared object store, naming each missing setting, and refuses an unknown region
before it talks to the Prefect server at all. A stopping worker hands its claimed jobs back
uncounted; a job that gave up is listed, notified to supervisors and re-run on request.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import psycopg.conninfo
import pytest
import sqlalchemy as sa
from conftest import ALL_GGCS, Demo
from typer.testing import CliRunner

from cli.main import app as cli_app
from core.roles import problems
from core.settings import Settings, get_settings
from flows import drain, failed_jobs, jobs, outbox, stopping
from flows.outbox import claim, mark_failed, release
from flows.probe import Probe
from storage.db import get_engine
from storage.flow_tables import T_LEASE, T_NOTE
from storage.tables import T_OUT

FULL = {"PREFECT_API_URL": "http://127.0.0.1:9/api",
        "TONGBAN_DATABASE_URL": "postgresql+psycopg://tb@db.example/tongban",
        "TONGBAN_PUBLIC_BASE_URL": "https://tongban.example.gov.cn",
        "TONGBAN_OBJECT_STORE": "s3", "TONGBAN_S3_ENDPOINT": "s3.example:9000",
        "TONGBAN_S3_ACCESS_KEY": "tongban", "TONGBAN_S3_SECRET_KEY": "secret"}
NAMES = ("TONGBAN_DATABASE_URL", "TONGBAN_PUBLIC_BASE_URL", "TONGBAN_OBJECT_STORE")


def _settings(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> Settings:
    for k in (*FULL, "TONGBAN_OBJECT_DIR_SHARED"):
        monkeypatch.delenv(k, raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return Settings(_env_file=None)  # type: ignore[call-arg]


def test_a_worker_needs_every_shared_setting_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert problems("worker", _settings(monkeypatch, FULL), FULL) == []
    bare = problems("worker", _settings(monkeypatch, {}), {})
    assert [p.split(":")[0] for p in bare] == ["PREFECT_API_URL", *NAMES]
    assert all("未设" in p for p in bare)
    sqlite = {**FULL, "TONGBAN_DATABASE_URL": "sqlite:///var/tongban.db"}
    assert [p.split(":")[0] for p in problems("worker", _settings(monkeypatch, sqlite), sqlite)] == [
        "TONGBAN_DATABASE_URL"]
    half_s3 = {k: v for k, v in FULL.items() if k != "TONGBAN_S3_SECRET_KEY"}
    assert [p.split(":")[0] for p in problems("worker", _settings(monkeypatch, half_s3), half_s3)] == [
        "TONGBAN_S3_SECRET_KEY"]
    shared = {k: v for k, v in FULL.items() if not k.startswith(("TONGBAN_S3", "TONGBAN_OBJECT"))}
    shared["TONGBAN_OBJECT_DIR_SHARED"] = "true"
    assert problems("worker", _settings(monkeypatch, shared), shared) == []
    # The dispatcher writes no certificate and no object: the case database is what it needs.
    assert [p.split(":")[0] for p in problems("dispatcher", _settings(monkeypatch, {}), {})] == [
        "PREFECT_API_URL", "TONGBAN_DATABASE_URL"]


@pytest.fixture
def prefect_api() -> Iterator[tuple[str, list[str]]]:
    """A stand-in for the Prefect server that records every request it gets."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(f"GET {self.path}")
            self.send_response(500)
            self.end_headers()

        do_POST = do_GET  # noqa: N815

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api", seen
    finally:
        server.shutdown()


def _cli(args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    _settings(monkeypatch, env)
    get_settings.cache_clear()
    get_engine.cache_clear()  # one engine per process and URL: the command runs in this one
    try:
        r = CliRunner().invoke(cli_app, args)
    finally:
        get_settings.cache_clear()
        get_engine.cache_clear()
    return r.exit_code, r.output


@pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_unknown_region_and_missing_settings_refused_before_any_request(
        prefect_api: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch, demo: Demo) -> None:
    api, seen = prefect_api
    # The regions a worker may serve are the alliance directory's (here the demo seed's).
    cases = demo.engine.url.render_as_string(hide_password=False)
    code, out = _cli(["worker", "--region", "320500"],
                     {**FULL, "PREFECT_API_URL": api, "TONGBAN_DATABASE_URL": cases}, monkeypatch)
    assert code == 2 and "未知地区 320500" in out and "370211" in out, out
    closed = "postgresql+psycopg://tb:pw@127.0.0.1:9/tongban"  # nothing listens there
    code, out = _cli(["worker", "--region", "370211"],
                     {**FULL, "PREFECT_API_URL": api, "TONGBAN_DATABASE_URL": closed}, monkeypatch)
    assert code == 2 and "读不到联盟目录" in out and "127.0.0.1:9" in out and ":pw@" not in out, out
    code, out = _cli(["worker", "--region", "370211"], {"PREFECT_API_URL": api}, monkeypatch)
    assert code == 2 and "缺少必需的设置" in out, out
    assert all(name in out for name in NAMES), out
    code, out = _cli(["dispatch"], {"PREFECT_API_URL": api}, monkeypatch)
    assert code == 2 and "TONGBAN_DATABASE_URL" in out, out
    assert seen == []  # no pool, no deployment: the server was never asked anything


@pytest.mark.parametrize("db", [pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True)
def test_the_video_queue_is_a_region_a_worker_may_serve(
        prefect_api: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch, demo: Demo) -> None:
    """Janus's recordings are converted where its disk is: ``tongban worker --region video`` on that
    machine serves the video queue (pool counter-video), though no region of the directory is so named."""
    api, seen = prefect_api
    cases = demo.engine.url.render_as_string(hide_password=False)
    code, out = _cli(["worker", "--region", "video"],
                     {**FULL, "PREFECT_API_URL": api, "TONGBAN_DATABASE_URL": cases}, monkeypatch)
    assert "未知地区" not in out, out
    assert seen, out  # it went on to create its pool and deployment (the stand-in answers 500)


def _forwarded_job(demo: Demo) -> tuple[str, str]:
    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region="370211")
    demo.fire("王芳", case["number"], "accept")
    with demo.engine.connect() as conn:
        job = conn.execute(sa.select(T_OUT.c.id).where(T_OUT.c.job == "handoff")).scalar_one()
    return case["number"], job


def _job(demo: Demo, job_id: str) -> tuple[str, int]:
    with demo.engine.connect() as conn:
        row = conn.execute(sa.select(T_OUT.c.status, T_OUT.c.attempts).where(T_OUT.c.id == job_id)).one()
    return row.status, row.attempts


def test_released_jobs_go_back_uncounted_and_only_by_their_owner(demo: Demo) -> None:
    _, job = _forwarded_job(demo)
    assert [j["id"] for j in claim(demo.engine, "370211", 10, owner="w1", job_ids=[job])] == [job]
    assert _job(demo, job) == ("running", 1)
    assert release(demo.engine, [job], owner="w2") == 0  # someone else's lease: left alone
    assert release(demo.engine, [job], owner="w1") == 1
    assert _job(demo, job) == ("pending", 0)
    assert [j["id"] for j in claim(demo.engine, "370211", 10, job_ids=[job])] == [job]


def test_each_job_of_a_batch_gets_a_fresh_lease_and_a_lost_one_is_not_run(demo: Demo) -> None:
    """A batch shares the claim's lease, but its later jobs start when the earlier are done: each
    job's lease starts afresh as it starts, and a job whose lease ran out meanwhile and that another
    drainer claimed is left to it (run twice otherwise: a second attempt, work done twice)."""
    _forwarded_job(demo)
    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region="370211")
    demo.fire("王芳", case["number"], "accept")
    first, second = (j for j in claim(demo.engine, "370211", 10) if j["job"] == "handoff")
    with demo.engine.begin() as conn:
        conn.execute(sa.text("UPDATE job_leases SET lease_until = :t WHERE job_id = :j"),
                     {"t": datetime(2000, 1, 1, tzinfo=UTC), "j": second["id"]})
    assert [j["id"] for j in claim(demo.engine, "370211", 10, owner="w2", job_ids=[second["id"]])] == [second["id"]]
    before = datetime.now(UTC)
    assert outbox.renew(demo.engine, first["id"])
    with demo.engine.connect() as conn:
        until = conn.execute(sa.select(T_LEASE.c.lease_until).where(T_LEASE.c.job_id == first["id"])).scalar_one()
    assert until >= before + timedelta(seconds=get_settings().job_lease_seconds - 1)
    # The drain skips the lost job before any task run: it stays the other drainer's.
    drain.use_engine(demo.engine)
    try:
        assert drain.run_claimed([second]) == {"claimed": 1, "done": 0, "failed": 0, "lost": 1}
    finally:
        drain.use_engine(None)
    assert _job(demo, second["id"]) == ("running", 2)
    with demo.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT owner FROM job_leases WHERE job_id = :j"),
                            {"j": second["id"]}).scalar_one() == "w2"


def test_a_job_running_longer_than_its_lease_keeps_it(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a job runs its lease is renewed: another drainer cannot claim it however long it takes;
    once the job is over nothing renews it."""
    monkeypatch.setenv("TONGBAN_JOB_LEASE_SECONDS", "3")
    get_settings.cache_clear()
    try:
        _, job = _forwarded_job(demo)
        assert [j["id"] for j in claim(demo.engine, "370211", 10, owner="w1", job_ids=[job])] == [job]
        with outbox.kept(demo.engine, job, owner="w1"):
            time.sleep(4.5)  # one and a half leases
            assert claim(demo.engine, "370211", 10, owner="w2", job_ids=[job]) == []
        time.sleep(3.5)  # past the last renewal's lease: a worker that died now is taken over
        assert [j["id"] for j in claim(demo.engine, "370211", 10, owner="w2", job_ids=[job])] == [job]
    finally:
        get_settings.cache_clear()


def test_a_job_interrupted_by_a_stop_goes_back_with_the_rest_of_its_batch(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGTERM, then the grace runs out inside a job: when the job's ``run`` returns, it and the
    batch's jobs after it are pending again, uncounted and unleased — before Prefect reports the
    task run (which on a loaded server can outlast the worker's stop deadline and its SIGKILL)."""
    monkeypatch.setenv("TONGBAN_JOB_PAUSE_SECONDS", "30")
    monkeypatch.setenv("TONGBAN_JOB_STOP_GRACE_SECONDS", "0.3")
    get_settings.cache_clear()
    _forwarded_job(demo)
    case = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region="370211")
    demo.fire("王芳", case["number"], "accept")
    batch = claim(demo.engine, "370211", 10)
    handoffs = [j for j in batch if j["job"] == "handoff"]
    assert len(handoffs) == 2
    ids = [j["id"] for j in batch]
    in_hand = ids.index(handoffs[0]["id"])
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM))
    try:
        with stopping.stop_on_sigterm():
            stopping.queue(ids[in_hand + 1:])
            timer.start()
            with pytest.raises(stopping.Stopping):
                jobs.run(demo.engine, batch[in_hand])
    finally:
        timer.cancel()
        stopping._requested.clear()  # the flag is per process: a worker stops once, this test suite goes on
        get_settings.cache_clear()
    assert all(_job(demo, j) == ("pending", 0) for j in ids[in_hand:])
    with demo.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM job_leases WHERE job_id IN :ids").bindparams(
            sa.bindparam("ids", expanding=True)), {"ids": ids[in_hand:]}).scalar_one() == 0
    assert stopping.take_queued() == []


def test_a_job_failed_for_good_is_notified_listed_and_retried(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "job_retry_base_seconds", 0.0)  # each attempt claimable at once
    number, job = _forwarded_job(demo)
    for attempt in range(1, get_settings().job_max_attempts + 1):
        assert claim(demo.engine, "370211", 10, job_ids=[job])
        status = mark_failed(demo.engine, job, "OSError: 磁盘已满")
        assert status == ("failed" if attempt == get_settings().job_max_attempts else "pending")
    assert claim(demo.engine, "370211", 10, job_ids=[job]) == []
    listed = failed_jobs.failed(demo.engine)
    assert [(r["id"], r["number"], r["job"], r["attempts"]) for r in listed] == [
        (job, number, "handoff", get_settings().job_max_attempts)]
    assert failed_jobs.failed(demo.engine, region="370100") == []
    with demo.engine.connect() as conn:
        notes = conn.execute(sa.select(T_NOTE.c.audience, T_NOTE.c.kind, T_NOTE.c.message)
                             .where(T_NOTE.c.kind == "job_failed")).all()
    assert len(notes) == 1 and notes[0].audience == "supervisor"
    assert number in notes[0].message and f"tongban jobs retry {job}" in notes[0].message
    assert failed_jobs.retry(demo.engine, [job]) == [job]
    assert _job(demo, job) == ("pending", 0)
    assert failed_jobs.retry(demo.engine, [job]) == []  # pending now: nothing to retry
    assert [j["id"] for j in claim(demo.engine, "370211", 10, job_ids=[job])] == [job]


@pytest.mark.parametrize("role", ["api", "worker", "dispatcher"])
def test_the_shipped_role_files_satisfy_their_role(role: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from dotenv import dotenv_values

    from core.settings import ROOT

    env = {k: v for k, v in dotenv_values(ROOT / "deploy" / f"{role}.env").items() if v is not None}
    assert problems(role, _settings(monkeypatch, env), env) == []
    # And each one of them is needed: drop any, and the role names it.
    for key in env:
        if key.startswith("TONGBAN_S3_SECURE") or key == "TONGBAN_EMBEDDED_FLOWS":  # optional; the mode
            continue
        less = {k: v for k, v in env.items() if k != key}
        assert any(p.startswith(key) or "TONGBAN_OBJECT_STORE" in p
                   for p in problems(role, _settings(monkeypatch, less), less)), key


def test_the_jobs_commands_list_and_retry(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(get_settings(), "job_retry_base_seconds", 0.0)  # each attempt claimable at once
    number, job = _forwarded_job(demo)
    for _ in range(get_settings().job_max_attempts):
        assert claim(demo.engine, "370211", 10, job_ids=[job])
        mark_failed(demo.engine, job, "OSError: 磁盘已满")
    assert _job(demo, job)[0] == "failed"
    env = {"TONGBAN_DATABASE_URL": demo.engine.url.render_as_string(hide_password=False)}
    code, out = _cli(["jobs", "failed", "--region", "370211"], env, monkeypatch)
    assert code == 0 and job in out and number in out and "磁盘已满" in out and "共 1 个失败任务" in out, out
    assert "+08:00" in out  # the time in Beijing time
    code, out = _cli(["jobs", "retry"], env, monkeypatch)
    assert code == 2 and "--all" in out
    code, out = _cli(["jobs", "retry", job, "no-such-job"], env, monkeypatch)
    assert code == 1 and "已重新排入 1 个任务" in out and "未找到失败任务 no-such-job" in out, out
    assert _job(demo, job) == ("pending", 0)
    code, out = _cli(["jobs", "failed"], env, monkeypatch)
    assert code == 0 and "共 0 个失败任务" in out


def test_jobs_failed_prints_the_true_total_beyond_what_it_lists(demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    for _ in range(2):
        case = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region="370211")
        demo.fire("王芳", case["number"], "accept")
    with demo.engine.begin() as conn:
        ids = list(conn.execute(sa.select(T_OUT.c.id).where(T_OUT.c.job == "handoff")).scalars())
        conn.execute(sa.update(T_OUT).where(T_OUT.c.id.in_(ids)).values(status="failed", last_error="OSError"))
    env = {"TONGBAN_DATABASE_URL": demo.engine.url.render_as_string(hide_password=False)}
    code, out = _cli(["jobs", "failed", "--limit", "1"], env, monkeypatch)
    assert code == 0 and sum(i in out for i in ids) == 1, out
    assert "共 2 个失败任务, 以上列出最早的 1 个" in out, out
    code, out = _cli(["jobs", "failed"], env, monkeypatch)
    assert code == 0 and all(i in out for i in ids) and out.rstrip().endswith("共 2 个失败任务"), out


def test_a_batch_longer_than_the_probe_staleness_keeps_the_drainer_alive(
        demo: Demo, monkeypatch: pytest.MonkeyPatch) -> None:
    """The listening drainer's probe beats before each job, and while a job runs (its lease
    thread): a healthy drainer busy with a batch longer than ``probe_stale_seconds`` stays live."""
    s = get_settings()
    monkeypatch.setattr(s, "probe_stale_seconds", 1.0)
    monkeypatch.setattr(s, "job_pause_seconds", 0.5)  # every job holds its transaction this long
    for _ in range(2):
        case = demo.create("王芳", "GGCSWSXK", ALL_GGCS, competent_region="370211")
        demo.fire("王芳", case["number"], "accept")
    drain.use_engine(demo.engine)
    try:  # Prefect's first task run in this process starts its API: not part of what is measured
        assert drain.run_claimed(claim(demo.engine, "370211", 1))["done"] == 1
    finally:
        drain.use_engine(None)
    batch = claim(demo.engine, "370211", 10)
    assert len(batch) >= 3  # at least 1.5 s of work against a 1 s staleness
    probe = Probe("worker", demo.engine)
    seen: list[bool] = []
    running = threading.Event()

    def watch() -> None:
        while running.is_set():
            seen.append(probe.alive()[0])
            time.sleep(0.05)

    drain.use_engine(demo.engine)
    running.set()
    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    began = time.monotonic()
    try:
        result = drain.run_claimed(batch, beat=probe.beat)
    finally:
        running.clear()
        watcher.join(5)
        drain.use_engine(None)
    assert time.monotonic() - began > s.probe_stale_seconds and result["done"] == len(batch), result
    assert seen and all(seen), seen.count(False)


def test_an_api_node_without_flows_checks_its_settings_before_touching_the_database(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``tongban serve --env-file FILE``: a file saying the workers do the automated work (or
    ``--no-flows``) makes it the api role, which refuses a local SQLite file, certificate links
    to 127.0.0.1 and a local object folder, naming each, before anything is migrated or served."""
    local = tmp_path / "tongban.db"
    env_file = tmp_path / "api.env"
    env_file.write_text(f"TONGBAN_EMBEDDED_FLOWS=false\nTONGBAN_DATABASE_URL=sqlite:///{local}\n", encoding="utf-8")
    for key in ("TONGBAN_EMBEDDED_FLOWS", "TONGBAN_OBJECT_STORE", "TONGBAN_OBJECT_DIR_SHARED"):
        monkeypatch.setenv(key, "")  # recorded, so that what the file puts in the environment goes again
        monkeypatch.delenv(key)
    code, out = _cli(["serve", "--env-file", str(env_file)], {}, monkeypatch)
    assert code == 2 and "缺少必需的设置, 接口服务" in out, out
    assert [line.split(":")[0].strip(" -") for line in out.splitlines()[1:] if line.strip()] == [
        "TONGBAN_DATABASE_URL", "TONGBAN_PUBLIC_BASE_URL", "TONGBAN_OBJECT_STORE"], out
    assert not local.exists()  # refused before the database was opened
    code, out = _cli(["serve", "--no-flows"], {}, monkeypatch)
    assert code == 2 and all(name in out for name in NAMES), out


def test_the_worker_file_states_the_defaults_it_shows() -> None:
    """deploy/worker.env's commented settings show the defaults: an operator copying one changes nothing."""
    from core.settings import ROOT

    shown = dict(line[2:].split("=", 1) for line in (ROOT / "deploy" / "worker.env").read_text().splitlines()
                 if line.startswith("# TONGBAN_") and "=" in line)
    defaults = Settings.model_fields
    checked = {k: v for k, v in shown.items() if k.removeprefix("TONGBAN_").lower() in defaults
               and k not in ("TONGBAN_PROBE_PORT", "TONGBAN_PROBE_HOST", "TONGBAN_LOG_FORMAT")}  # examples
    assert {"TONGBAN_JOB_STOP_GRACE_SECONDS", "TONGBAN_WORKER_STOP_SECONDS",
            "TONGBAN_SWEEP_CHECK_SECONDS"} <= set(checked)
    for key, value in checked.items():
        default = defaults[key.removeprefix("TONGBAN_").lower()].default
        assert type(default)(value) == default, (key, value, default)


def test_a_periodic_check_runs_once_per_period_and_survives_its_errors() -> None:
    """What keeps the deadline sweep's placement checked while a worker runs (flows.supervise.Every)."""
    from flows.supervise import Every

    calls: list[float] = []

    def check() -> None:
        calls.append(time.monotonic())
        if len(calls) == 2:
            raise ConnectionError("Prefect 服务器暂不可用")

    every = Every(0.2, check)
    assert not every.tick()  # not at start: the worker has just checked
    end = time.monotonic() + 1.1
    ran = []
    while time.monotonic() < end:
        ran.append(every.tick())
        time.sleep(0.02)
    assert 4 <= len(calls) <= 6 and ran.count(True) == len(calls) - 1  # the failing one logged, not raised
    assert all(b - a >= 0.2 for a, b in zip(calls, calls[1:], strict=False))


def test_serve_prints_the_database_without_its_password() -> None:
    from cli.main import started_line

    line = started_line("127.0.0.1", 8000, "postgresql+psycopg://tongban:s3cret@db.example:5432/tongban")
    assert "s3cret" not in line and "tongban:***@db.example" in line and "http://127.0.0.1:8000" in line


def test_the_database_url_keeps_its_tls_parameters_and_hides_only_the_password() -> None:
    from cli.main import started_line
    from flows.listen import _conninfo
    from storage.db import make_engine

    url = ("postgresql+psycopg://qd_worker:s3cret@db.example:5432/tongban?sslmode=verify-full"
           "&sslrootcert=/etc/ssl/gov%20ca/root.pem")
    s = Settings(database_url=url)
    assert s.database_url == url  # taken as given
    engine = make_engine(s.database_url)
    try:
        assert dict(engine.url.query) == {"sslmode": "verify-full", "sslrootcert": "/etc/ssl/gov ca/root.pem"}
        # The listening drainer's own connection (flows.listen) gets the same parameters, unchanged.
        info = psycopg.conninfo.conninfo_to_dict(_conninfo(engine))
        assert (info["sslmode"], info["sslrootcert"], info["password"]) == (
            "verify-full", "/etc/ssl/gov ca/root.pem", "s3cret")
    finally:
        engine.dispose()
    line = started_line("127.0.0.1", 8000, url)
    assert "s3cret" not in line and "qd_worker:***@db.example" in line and "sslmode=verify-full" in line
