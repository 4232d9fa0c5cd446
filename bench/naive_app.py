"""The baseline the issue names: a transition endpoint written the textbook FastAPI + SQLModel way.

Same route, same database, same load generator as Tongban's own API, so the two figures of one
run can be compared on any machine (``bench_transitions.py --parts http`` serves both). What it
does per request is what FastAPI's SQL tutorial teaches: a sync route, a ``Session`` per request
from a ``Depends`` generator, the token, clerk and case read through the ORM, the case changed and
a history row added as ORM objects, commit, refresh, answer ``model_dump()``. It checks the
token, ``If-Match`` and that the trigger leaves the case's state, and nothing else: no roles,
counters, guards, outbox, queues, hash chain or deadlines; it is a floor, not a rival product.

Everything except that one route (intake, reads, ``/healthz``) is Tongban's own app, mounted
below, so the benchmark's set-up and smoke test run unchanged. (No ``from __future__ import
annotations`` here: FastAPI must resolve the route's annotations, which name a local dependency.)
"""

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

import yaml
from fastapi import Depends, FastAPI, Header, HTTPException
from fastapi.responses import JSONResponse
from sqlmodel import Session, create_engine, select

from api.app import create_app as create_tongban_app
from core.settings import ROOT, get_settings
from storage.tables import ApiToken, Case, Clerk, HistoryEvent

ITEM_FILE = ROOT / "catalog" / "items" / "ggcs_weisheng_xuke.yaml"


def _routes() -> dict[tuple[str, str], str]:
    """(trigger, from state) → to state, straight from the item's YAML."""
    out = {}
    for t in yaml.safe_load(ITEM_FILE.read_text(encoding="utf-8"))["transitions"]:
        for source in t["from"] if isinstance(t["from"], list) else [t["from"]]:
            out[(t["trigger"], source)] = t["to"]
    return out


def create_app() -> FastAPI:
    url = get_settings().database_url
    engine = create_engine(url, connect_args={"check_same_thread": False} if url.startswith("sqlite") else {})
    routes = _routes()

    def get_session() -> Iterator[Session]:
        with Session(engine) as session:
            yield session

    app = FastAPI()

    @app.post("/api/v1/cases/{number}/triggers/{trigger}")
    def fire(number: str, trigger: str, session: Annotated[Session, Depends(get_session)],
             authorization: Annotated[str, Header()], if_match: Annotated[str, Header()]) -> Any:
        digest = hashlib.sha256(authorization.removeprefix("Bearer ").encode()).hexdigest()
        token = session.exec(select(ApiToken).where(ApiToken.token_hash == digest)).first()
        clerk = session.get(Clerk, token.clerk_id) if token is not None else None
        if token is None or token.revoked_at is not None or clerk is None:
            raise HTTPException(401, "bad token")
        case = session.exec(select(Case).where(Case.number == number)).first()
        if case is None:
            raise HTTPException(404, "no such case")
        if str(case.version) != if_match.strip('"'):
            raise HTTPException(412, "stale version")
        dest = routes.get((trigger, case.state))
        if dest is None:
            raise HTTPException(409, "trigger not open")
        at = datetime.now(UTC)
        source = case.state
        case.state, case.version, case.updated_at = dest, case.version + 1, at
        session.add(case)
        session.add(HistoryEvent(case_id=case.id, seq=case.version, at=at, actor_id=clerk.id,
                                 actor_name=clerk.name, trigger=trigger,
                                 from_state=source, to_state=dest))
        session.commit()
        session.refresh(case)
        return JSONResponse(case.model_dump(mode="json"), headers={"ETag": f'"{case.version}"'})

    app.mount("/", create_tongban_app())
    return app

