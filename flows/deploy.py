"""Register Tongban's deployments with a Prefect server over its REST API.

The region deployments come from the alliance directory, not from a file: each region the
directory lists gets ``drain-outbox/counter-<region>`` on work pool ``counter-<region>``, drawn from
the template ``definitions.drain`` of prefect.yaml (entrypoint, schedule, tags). So a region added
by ``tongban directory import`` (or the admin API) is deployed by its own ``tongban worker
--region <code>``, or all at once by ``tongban directory deploy``; nobody edits prefect.yaml.
prefect.yaml's ``deployments`` keep what is not per region (the deadline sweep).

``prefect deploy`` (3.8.8) creates the first deployment and then fails on a follow-up call
(``workers/filter`` answers 422 under the FastAPI pin this project needs), so ``tongban worker``
and the tests register deployments themselves.
"""

from __future__ import annotations

import base64
import ssl
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

from core.settings import ROOT

DRAIN = "drain-outbox"


def prefect_http(api_url: str, timeout: float = 30) -> httpx.Client:
    """A client of the Prefect server's REST API with Prefect's own client settings: basic auth
    from ``PREFECT_API_AUTH_STRING`` (the server's ``PREFECT_SERVER_API_AUTH_STRING``), TLS checked
    against ``PREFECT_API_SSL_CERT_FILE`` (or the system's store) unless
    ``PREFECT_API_TLS_INSECURE_SKIP_VERIFY``. The dispatcher and the deployment registration talk
    to the server this way; Prefect's worker and flow runs read the same settings themselves."""
    from prefect.settings import (
        PREFECT_API_AUTH_STRING,
        PREFECT_API_SSL_CERT_FILE,
        PREFECT_API_TLS_INSECURE_SKIP_VERIFY,
    )

    headers = {}
    if auth := PREFECT_API_AUTH_STRING.value():
        secret = auth.get_secret_value() if hasattr(auth, "get_secret_value") else str(auth)
        headers["Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()
    verify: bool | ssl.SSLContext = True
    if PREFECT_API_TLS_INSECURE_SKIP_VERIFY.value():
        verify = False
    elif cert := PREFECT_API_SSL_CERT_FILE.value():
        verify = ssl.create_default_context(cafile=str(cert))
    return httpx.Client(base_url=api_url.rstrip("/") + "/", timeout=timeout, headers=headers, verify=verify)


def _document(prefect_file: Path) -> dict[str, Any]:
    return dict(yaml.safe_load(prefect_file.read_text(encoding="utf-8")))


def load_deployments(prefect_file: Path = ROOT / "prefect.yaml") -> list[dict[str, Any]]:
    """The deployments prefect.yaml names itself (those that are not per region)."""
    return list(_document(prefect_file).get("deployments") or [])


def region_deployment(code: str, name: str | None = None,
                      prefect_file: Path = ROOT / "prefect.yaml") -> dict[str, Any]:
    """The drain deployment of one region, from prefect.yaml's ``definitions.drain`` template."""
    template = dict(_document(prefect_file)["definitions"]["drain"])
    return {**template, "name": f"counter-{code}",
            "description": f"{name or code} ({code}) 的办件自动任务",
            "parameters": {"region": code}, "work_pool": {"name": f"counter-{code}"}}


def _wanted(names: list[str] | None, regions: Mapping[str, str], root: Path) -> list[dict[str, Any]]:
    specs = load_deployments(root / "prefect.yaml")
    have = {d["name"] for d in specs}
    specs += [region_deployment(code, label, root / "prefect.yaml") for code, label in sorted(regions.items())
              if f"counter-{code}" not in have]
    have = {d["name"] for d in specs}
    for n in names or []:  # a region's drain asked for by name: drawn from the template too
        short = n.removeprefix(f"{DRAIN}/")
        if short.startswith("counter-") and short not in have:
            specs.append(region_deployment(short.removeprefix("counter-"), None, root / "prefect.yaml"))
            have.add(short)
    return specs


def _schedule(spec: dict[str, Any]) -> dict[str, Any]:
    if "interval" in spec:
        return {"schedule": {"interval": spec["interval"]}, "active": spec.get("active", True)}
    return {"schedule": {"cron": spec["cron"], "timezone": spec.get("timezone", "UTC")},
            "active": spec.get("active", True)}


def deploy(api_url: str, names: list[str] | None = None, root: Path = ROOT,
           pool: str | None = None, regions: Mapping[str, str] | None = None) -> dict[str, str]:
    """Create or update the named deployments (``<flow>/<deployment>`` or the deployment name;
    all when ``names`` is None), on ``pool`` instead of their own work pool when it is given.
    ``regions`` (code → name, the directory's) adds each region's drain deployment; a region's
    drain named in ``names`` is drawn from the template even without it."""
    from flows import drain

    flows = {"drain_outbox": drain.drain_outbox, "deadline_sweep": drain.deadline_sweep}
    out: dict[str, str] = {}
    with prefect_http(api_url) as http:
        for d in _wanted(names, regions or {}, root):
            fn = flows[d["entrypoint"].rsplit(":", 1)[1]]
            full = f"{fn.name}/{d['name']}"
            if names and full not in names and d["name"] not in names:
                continue
            flow_id = http.post("flows/", json={"name": fn.name}).raise_for_status().json()["id"]
            body = {
                "name": d["name"], "flow_id": flow_id, "description": d.get("description"),
                "work_pool_name": pool or d["work_pool"]["name"], "entrypoint": d["entrypoint"],
                "path": str(root), "parameters": d.get("parameters", {}), "tags": d.get("tags", []),
                "pull_steps": [{"prefect.deployments.steps.set_working_directory":
                                {"directory": str(root)}}],
                "schedules": [_schedule(s) for s in d.get("schedules", [])],
                "parameter_openapi_schema": fn.parameters.model_dump(mode="json"),
                "enforce_parameter_schema": True,
            }
            r = http.post("deployments/", json=body)
            r.raise_for_status()
            out[full] = r.json()["id"]
    return out


def deploy_regions(api_url: str, regions: Mapping[str, str], root: Path = ROOT) -> dict[str, str]:
    """A work pool and a drain deployment for each of ``regions`` (the directory's)."""
    for code in regions:
        ensure_pool(api_url, f"counter-{code}")
    return deploy(api_url, [f"{DRAIN}/counter-{code}" for code in regions], root, regions=regions)


def ensure_pool(api_url: str, name: str) -> None:
    with prefect_http(api_url) as http:
        r = http.post("work_pools/", json={"name": name, "type": "process"})
        if r.status_code not in (201, 409):
            r.raise_for_status()


SWEEP = "deadline-sweep/deadline-sweep"


def ensure_sweep(api_url: str, pool: str) -> str | None:
    """Make sure the hourly deadline sweep has a work pool with a live worker.

    Every ``tongban worker`` calls this: the sweep is registered on the caller's pool unless it
    is already on a pool a worker is polling (status READY), so it runs in any distributed setup
    whatever regions it has, and moves to a running region when its own stopped. Returns the pool
    it was put on, or None when it stayed where it was.
    """
    with prefect_http(api_url) as http:
        r = http.get(f"deployments/name/{SWEEP}")
        if r.status_code == 200:
            current = r.json().get("work_pool_name")
            if current == pool:
                return None
            if current:
                p = http.get(f"work_pools/{current}")
                if p.status_code == 200 and p.json().get("status") == "READY":
                    return None
        elif r.status_code != 404:
            r.raise_for_status()
    deploy(api_url, [SWEEP], pool=pool)
    return pool
