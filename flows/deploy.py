"""Register prefect.yaml's deployments with a Prefect server over its REST API.

``prefect deploy`` (3.8.8) creates the first deployment and then fails on a follow-up call
(``workers/filter`` answers 422 under the FastAPI pin this project needs), so ``tongban worker``
and the tests register deployments themselves, from the same prefect.yaml.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import yaml

from core.settings import ROOT


def load_deployments(prefect_file: Path = ROOT / "prefect.yaml") -> list[dict[str, Any]]:
    return list(yaml.safe_load(prefect_file.read_text(encoding="utf-8"))["deployments"])


def _schedule(spec: dict[str, Any]) -> dict[str, Any]:
    if "interval" in spec:
        return {"schedule": {"interval": spec["interval"]}, "active": spec.get("active", True)}
    return {"schedule": {"cron": spec["cron"], "timezone": spec.get("timezone", "UTC")},
            "active": spec.get("active", True)}


def deploy(api_url: str, names: list[str] | None = None, root: Path = ROOT,
           pool: str | None = None) -> dict[str, str]:
    """Create or update the named deployments (``<flow>/<deployment>`` or the deployment name),
    on ``pool`` instead of their own work pool when it is given."""
    from flows import drain

    flows = {"drain_outbox": drain.drain_outbox, "deadline_sweep": drain.deadline_sweep}
    out: dict[str, str] = {}
    with httpx.Client(base_url=api_url.rstrip("/") + "/", timeout=30) as http:
        for d in load_deployments(root / "prefect.yaml"):
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


def ensure_pool(api_url: str, name: str) -> None:
    with httpx.Client(base_url=api_url.rstrip("/") + "/", timeout=30) as http:
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
    with httpx.Client(base_url=api_url.rstrip("/") + "/", timeout=30) as http:
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
