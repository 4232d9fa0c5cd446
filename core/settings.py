"""All settings in one typed place, read from ``TONGBAN_*`` environment variables."""

from __future__ import annotations

import ipaddress
import json
import socket
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TONGBAN_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default=f"sqlite:///{ROOT / 'var' / 'tongban.db'}",
        description="SQLAlchemy URL; sqlite:///… (embedded) or postgresql+psycopg://…",
    )
    # Group commit (storage.group_commit): the case-changing requests of one process that arrive
    # together are written in one SQLite transaction, a savepoint each. Off: one transaction per
    # request. PostgreSQL stays one per request either way (it did not pay there: bench/README.md).
    group_commit: bool = True
    catalog_dir: Path = ROOT / "catalog" / "items"
    alliance_file: Path = ROOT / "catalog" / "alliance.yaml"
    data_dir: Path = ROOT / "var"
    # The zone every calendar date is taken in (case numbers, deadlines, "today", documents).
    timezone: str = "Asia/Shanghai"
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    # Applicant progress queries per client address per minute.
    progress_rate_per_minute: int = 30
    # Wrong query codes one case number may take per window before its query is locked (for
    # everyone, the right code included: engine.query_guard) and its counter's supervisor told.
    progress_case_failures: int = 10
    progress_case_window_seconds: int = 3600
    progress_lockout_seconds: int = 3600
    # Client addresses (and unknown case numbers) each server process tracks at most.
    rate_limit_max_keys: int = 10_000
    # Proxies whose X-Forwarded-For / X-Forwarded-Proto / Forwarded headers are believed: addresses
    # or CIDRs, comma-separated ("127.0.0.1, 10.0.0.0/8"). Default none: the peer is the client.
    trusted_proxies: Annotated[list[str], NoDecode] = []
    token_days: int = 90
    # Page sessions: a fresh token per login, ending after this many hours (or with the API token).
    session_hours: int = 12
    # HMAC secret of the login form's token (empty: generated once into data_dir/session-secret).
    session_secret: str = ""
    # Working days a deferred (容缺) material may stay missing.
    defer_days: int = 5
    # Holidays for years chinese-calendar does not know yet (ISO dates).
    extra_holidays: list[str] = []
    max_body_bytes: int = 1_000_000
    # Browser apps on other origins allowed to call the API (CORS); empty: none (the default).
    cors_origins: list[str] = []
    # A request with no credentials (no bearer token, session cookie or participant key) may send
    # only this much body, unless its route declares more (api.limits): bodies are read before
    # authentication, so anyone could otherwise make the server hold max_body_bytes per connection.
    max_unauthenticated_body_bytes: int = 8192
    # Object storage (scans, evidence): a local folder (embedded default) or any S3 server.
    object_store: Literal["local", "s3"] = "local"
    object_dir: Path = ROOT / "var" / "objects"
    s3_endpoint: str = "127.0.0.1:9000"  # host:port, as the MinIO SDK takes it
    s3_access_key: str = ""
    s3_secret_key: SecretStr = SecretStr("")
    s3_secure: bool = False
    s3_region: str = "us-east-1"
    bucket_prefix: str = "tongban"
    max_upload_bytes: int = 50 * 1024 * 1024
    max_evidence_bytes: int = 4 * 1024**3  # recordings can be large
    evidence_retention_mode: Literal["GOVERNANCE", "COMPLIANCE"] = "COMPLIANCE"
    evidence_retention_days: int = 3650
    presign_seconds: int = 300
    sweep_grace_seconds: int = 86_400  # orphans younger than this may still get their row
    thumbnail_px: int = 320
    store_retry_after: int = 5  # Retry-After seconds when the object store is down
    # Dashboard: 预警 when a promised deadline is this many working days away or fewer.
    warn_working_days: int = 3
    # Dashboard: a case with no event for this many working days is stuck.
    stuck_working_days: int = 5
    # Prefect UI base URL (e.g. http://127.0.0.1:4200); the case page and the dashboard link each
    # case to its runs there. Empty: no UI is configured (the embedded default runs without one).
    prefect_ui_url: str = ""
    # Video join links: HMAC secret (empty: generated once into data_dir/video-secret).
    video_secret: str = ""
    video_link_minutes: int = 120
    # A room with nobody in it for this long closes by itself.
    video_idle_seconds: int = 600
    # How often open rooms re-check that their case is still in the room's state.
    video_watch_seconds: float = 5.0
    video_max_file_bytes: int = 10 * 1024 * 1024  # files sent in a room (10 MB)
    # Video media path: "aiortc" (embedded, nothing to install) or "janus" (Janus VideoRoom SFU).
    video_backend: str = "aiortc"
    janus_url: str = "http://127.0.0.1:8088/janus"
    janus_admin_key: str = ""  # VideoRoom admin_key (empty: generated once into data_dir/janus-admin-key)
    # The address browsers reach Janus at when Janus sits behind NAT (Janus's nat_1_1_mapping); empty: none.
    janus_public_ip: str = ""
    # Publishers (cameras) a VideoRoom room admits at once.
    janus_publishers: int = 6
    # A Janus participant whose page has not polled the room's events for this long is gone
    # (tab closed, network lost): marked left, so an empty room idle-closes.
    janus_gone_seconds: float = 60.0
    # The outbox queue of the recording job: the ``.mjr`` files are on the disk of the machine
    # Janus runs on, so the job runs there (``tongban serve`` drains it in-process; in distributed
    # mode ``tongban worker --region video`` on that machine), not on a counter's regional pool.
    video_job_queue: str = "video"
    # TURN (coturn, TURN REST credentials): shared secret, URLs put in join links, credential lifetime.
    turn_secret: str = ""  # empty: generated once into data_dir/turn-secret
    turn_urls: str = ""  # comma-separated, e.g. "turn:turn.example.gov.cn:3478?transport=udp"
    turn_ttl_seconds: int = 3600
    # Pages connect through TURN only (iceTransportPolicy "relay"): counters whose network lets
    # nothing but the TURN server through, and no host address of the caller shown to the far end.
    turn_relay_only: bool = False
    # Flows. `tongban serve` drains the outbox in-process when embedded_flows is on.
    embedded_flows: bool = False
    flows_poll_seconds: float = 1.0
    job_batch_size: int = 100
    # A claimed job whose worker died is reclaimed once its lease runs out.
    job_lease_seconds: int = 120
    job_max_attempts: int = 5
    # A failed attempt waits before the next: base × 2^(attempt-1), at most the cap, ±jitter (a
    # fraction) so that jobs failing together (a dependency down) do not come back together.
    job_retry_base_seconds: float = 10.0
    job_retry_max_seconds: float = 600.0
    job_retry_jitter: float = 0.2
    # SIGTERM to a worker: the job in hand gets this long to finish before it is rolled back and
    # handed back (the worker exits within worker_stop_seconds whatever happens).
    # Both well inside 10 s: after the SIGKILL the worker's own exit needs a moment on a loaded host.
    job_stop_grace_seconds: float = 5.0
    worker_stop_seconds: float = 8.0
    # A running `tongban worker` re-checks this often that the deadline sweep's pool has a live
    # worker (and takes the sweep over when not): its first pool may stop long after it started.
    sweep_check_seconds: float = 300.0
    # The long-running drainer (flows.listen): a drain without a notification this often (jobs
    # whose lease ran out), and a fresh flow run after this many hours.
    listen_poll_seconds: float = 5.0
    listen_max_hours: float = 24.0
    # A local object folder (object_store "local") that every node mounts: lets a worker start
    # without S3 (one host, or a shared file system).
    object_dir_shared: bool = False
    # Fault injection for crash-recovery drills: a job sleeps this long before committing.
    job_pause_seconds: float = 0.0
    deadline_sweep_seconds: int = 3600
    # Tag each job's task run with region, item and job (Prefect 3.8: a concurrency-slot round
    # trip each). Unset: only on a Prefect server; the flow run carries the tags either way.
    job_task_tags: bool | None = None
    certificate_valid_years: int = 5
    # 分时服务: the hours a counter takes bookings (local time, working days of the calendar), the
    # length of a slot, the places in each, how far ahead one may book; an applicant (by phone)
    # with this many no-shows within the window books again only after it.
    appointment_hours: str = "09:00-12:00,13:30-17:00"
    appointment_slot_minutes: int = 30
    appointment_capacity: int = 2
    appointment_days_ahead: int = 14
    appointment_no_show_limit: int = 3
    appointment_no_show_days: int = 90
    # A booking not checked in this long after its slot began is a no-show (the sweep marks it).
    appointment_grace_minutes: int = 15
    # 好差评: a 差评's rectification is due this many working days after the rating.
    rectify_working_days: int = 5
    # 要件预审: a pre-review not taken in as a case this many (Beijing) days after its last activity
    # expires; the hourly sweep deletes its drafts and phone (engine.prereview_purge).
    prereview_retention_days: int = 30
    # Notifications that leave the building (engine.notify): applicants by SMS through an HTTP
    # gateway (POST JSON to sms_url with sms_token as bearer; empty URL: no SMS), supervisors by
    # mail over SMTP (empty smtp_host: no mail) to the addresses of their region in
    # notify_supervisor_emails (JSON: {"370211": ["a@b.gov.cn"], "*": [...]}, a region's own
    # first, then the regions above it, then "*"). Each attempt's timeout; attempts before giving
    # up and the wait between them (doubling up to the longest); messages a drain cycle sends at
    # most, and for how long; a message older than notify_max_age_hours when it could first be
    # sent is dropped as expired rather than sent late.
    sms_url: str = ""
    sms_token: SecretStr = SecretStr("")
    sms_signature: str = "【通办】"
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_security: Literal["none", "starttls", "tls"] = "none"
    smtp_user: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_from: str = "tongban@localhost"
    notify_supervisor_emails: dict[str, list[str]] = {}
    notify_timeout_seconds: float = 10.0
    notify_max_attempts: int = 12
    notify_backoff_seconds: float = 30.0
    notify_backoff_max_seconds: float = 3600.0
    notify_batch: int = 50
    notify_round_seconds: float = 10.0
    notify_max_age_hours: int = 72
    notify_lease_seconds: int = 120
    # Base of the links printed on notices and certificates (the QR code, /verify/…). Empty: the
    # address `tongban serve` listens on (host and port), a wildcard host named by this machine's
    # name; set it when a proxy or another name serves the product.
    public_base_url: str = ""
    # Regions keep separate buckets (hand-offs copy objects between them).
    region_buckets: bool = False
    # Carrier callbacks: HMAC-SHA256 secret shared with the carrier (empty: the installation's own,
    # made once in data_dir/carrier-secret; `tongban carrier-secret` prints it) and the clock skew.
    carrier_secret: str = ""
    carrier_skew_seconds: int = 300
    # Idempotency-Key answers are kept this long; an older key counts as new (the sweep purges).
    idempotency_hours: int = 24
    # Seals the query code inside a kept intake answer (AES-GCM; empty: made once in
    # data_dir/idempotency-key). Never stored in the database.
    idempotency_key: str = ""
    # Seals the query code a 收件凭证 prints until its job has drawn it; empty: the installation's own.
    document_key: str = ""
    # Signs the history anchors (Ed25519 seed; empty: made once in data_dir/anchor-key). Every
    # machine that writes anchors needs the same one. A machine that only verifies may instead be
    # given the public key (`tongban audit public-key` prints it).
    anchor_key: str = ""
    anchor_public_key: str = ""
    # Seals the units' signing keys in the database (AES-GCM; empty: made once in data_dir/seal-key).
    # Every machine that signs (the server, each regional Prefect worker) needs the same one;
    # verifying needs none. Self-signed seal certificates are valid this many years.
    seal_key: str = ""
    seal_valid_years: int = 10
    # PDFs one client may have checked on /verify per minute (each is parsed and validated in a worker).
    verify_rate_per_minute: int = 20
    # Heavy work on outside input runs in worker processes (engine.offload), a few at once, each
    # with a deadline. Scans and thumbnails: decodes at once, the memory one decode may take
    # (pixels × bytes per pixel, judged from the header before decoding) and its seconds.
    decode_workers: int = 2
    decode_memory_bytes: int = 96 * 1024 * 1024
    decode_seconds: float = 20.0
    # Item definitions (YAML), 网络自动审批 rules, PDF rendering: processes, and their budgets.
    compute_workers: int = 2
    parse_seconds: float = 10.0
    rule_budget_seconds: float = 2.0  # past it, the case goes to a person (转人工审核)
    render_seconds: float = 30.0
    # Webhooks (engine.webhooks): each request's timeout, events per delivery job and how long one
    # may send (it runs among its region's other jobs, which wait meanwhile), the wait after
    # a failed attempt (doubling from the first to the longest; deliveries never give up), days the
    # delivery log is kept, subscriptions per clerk, the hosts a subscription may name (exact, or
    # ".example.gov.cn" for its subdomains; empty: any), and the key sealing their secrets (empty:
    # made once in data_dir/webhook-key).
    webhook_timeout_seconds: float = 5.0
    webhook_batch: int = 100
    webhook_round_seconds: float = 10.0
    webhook_backoff_seconds: float = 2.0
    webhook_backoff_max_seconds: float = 600.0
    webhook_log_days: int = 30
    webhook_max_per_clerk: int = 20
    webhook_allowed_hosts: Annotated[list[str], NoDecode] = []
    webhook_key: str = ""
    # Logs: "plain" (one line each, with a UTC timestamp and the request id) or "json" (one object
    # per line: ts, level, logger, message, request_id, and the record's fields), and the level.
    log_format: Literal["plain", "json"] = "plain"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # One access log line per HTTP request (tongban.access, INFO), with its request id and latency.
    access_log: bool = True
    # The small HTTP probe of a drainer or dispatcher (/livez, /readyz, /metrics) on this address
    # and port; 0: none. A worker's drainer listens on probe_port, its dispatcher on the same.
    probe_host: str = "127.0.0.1"
    probe_port: int = 0
    # A drainer or dispatcher whose loop has not come round for this long is not alive.
    probe_stale_seconds: float = 30.0
    # /metrics asks for "Authorization: Bearer <this>" when set (empty: open, as Prometheus scrapes
    # usually are; then keep it off the public network at the proxy).
    metrics_token: str = ""
    # The ID-card reader service of each self-service booth (自助服务终端), by the booth's counter id
    # in the alliance directory: the URL its card reader's vendor helper answers on the booth itself
    # (loopback only), e.g. {"pd-zizhu-01": "http://127.0.0.1:19561/card"}. GET answers 200 with
    # {"name", "id_number"} while a card lies on the reader (any other status: none). The page
    # polls it while the identify screen shows, and connects to that origin alone (its CSP); the
    # service must allow the booth page's origin (CORS). A booth without one: on-screen entry.
    kiosk_card_readers: dict[str, str] = {}

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _proxy_list(cls, v: object) -> object:
        if isinstance(v, str):
            v = json.loads(v) if v.strip().startswith("[") else v.replace(",", " ").split()
        if isinstance(v, list):
            for entry in v:
                try:
                    ipaddress.ip_network(str(entry).strip(), strict=False)
                except ValueError:
                    raise ValueError(f"可信代理 '{entry}' 不是 IP 地址或网段 (例如 127.0.0.1 或 10.0.0.0/8)") from None
            return [str(entry).strip() for entry in v]
        return v

    @field_validator("webhook_allowed_hosts", mode="before")
    @classmethod
    def _host_list(cls, v: object) -> object:
        if isinstance(v, str):
            v = json.loads(v) if v.strip().startswith("[") else v.replace(",", " ").split()
        return [str(h).strip().lower() for h in v] if isinstance(v, list) else v

    @field_validator("kiosk_card_readers")
    @classmethod
    def _loopback_readers(cls, v: dict[str, str]) -> dict[str, str]:
        for booth, url in v.items():
            parts = urlsplit(url)
            try:
                loopback = parts.scheme in ("http", "https") and parts.port is not None and (
                    parts.hostname == "localhost" or ipaddress.ip_address(parts.hostname or "").is_loopback)
            except ValueError:
                loopback = False
            if not loopback or parts.username or parts.password or parts.query or parts.fragment:
                raise ValueError(f"终端 {booth} 的读卡服务须是本机地址, 例如 http://127.0.0.1:19561/card: {url}")
        return v

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"未知的时区 '{v}' (例如 Asia/Shanghai)") from None
        return v

    @model_validator(mode="after")
    def _public_base(self) -> Settings:
        # Links must work where the product is served: by default where `tongban serve` listens.
        # Written past pydantic's record of what was configured (``model_fields_set``): a worker's
        # role check (core.roles) must still see that nobody set the public address.
        if not self.public_base_url.strip():
            self.__dict__["public_base_url"] = listening_url(self.host, self.port)
        return self


def listening_url(host: str, port: int) -> str:
    """The URL of what listens on ``host``:``port``, as someone else on the network would type it."""
    if host in ("0.0.0.0", "::", ""):
        host = socket.gethostname()
    elif ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    return f"http://{host}:{port}"


@lru_cache
def get_settings() -> Settings:
    return Settings()
