"""自助服务终端 (政务直办间 / 百姓e站): an applicant identifies, finds an item through the guide,
answers its 情形, captures each material with the booth's document camera and submits.

A booth is a counter of the self-service kind in the alliance directory, supervised by a staffed
counter (``supervised_by``). The booth signs in as its own clerk account; the case it submits is
taken in at the supervising counter — whose clerks accept it (受理), as nobody staffs the booth —
with the booth named as who took it in, and no companion clerk yet (the supervising counter's
first clerk to act takes the case on). The booth's captures are the case's first scans, and its
收件凭证 is drawn at once, with them, for the booth to print.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import sqlalchemy as sa
from sqlmodel import Session

from core.clock import now
from core.settings import get_settings
from engine import catalog, directory, document_drawing, documents_read, guide, intake, scans, situations
from engine.actors import Actor
from engine.advance import load_case
from engine.directory_manage import counter_kind, supervising_counter
from engine.errors import Forbidden, InvalidInput, NotFound
from engine.guards import load_materials
from storage.rows import CaseRow
from storage.tables import T_CASE

# How long the booth's result page (number, query code, receipt) stays open after submission:
# the next person at the booth must not find the last one's.
RESULT_SECONDS = 180
MAX_PAGES = 10  # captures per material
MAX_CAPTURE_BYTES = 4 * 1024 * 1024
MAX_BODY_BYTES = 40 * 1024 * 1024


@dataclass(frozen=True)
class Booth:
    id: str
    name: str
    region_code: str
    supervisor_id: str
    supervisor_name: str
    items: frozenset[str]
    card_reader: str | None = None  # the booth's ID-card reader service (settings.kiosk_card_readers)

    @property
    def card_reader_origin(self) -> str | None:
        """The reader service's origin, the one place besides this server the booth page connects to."""
        if self.card_reader is None:
            return None
        parts = urlsplit(self.card_reader)
        return f"{parts.scheme}://{parts.netloc}"


def booth(session: Session, actor: Actor) -> Booth:
    """The booth this account signs in for; Forbidden for any other account."""
    if "clerk" not in actor.roles or actor.counter_id is None \
            or counter_kind(session, actor.counter_id) != "self_service":
        raise Forbidden("此页面只在自助服务终端上使用", missing=["counter_kind:self_service"])
    boss = supervising_counter(session, actor.counter_id)
    here, there = directory.counter(session, actor.counter_id), directory.counter(session, boss) if boss else None
    if here is None or there is None:
        raise Forbidden("本终端尚未配置值守窗口 (联盟目录 supervised_by)", missing=["supervised_by"])
    return Booth(here.id, here.name, there.region_code, there.id, there.name,
                 frozenset(directory.counter_item_codes(session, here.id, ("intake",))),
                 get_settings().kiosk_card_readers.get(here.id))


def items(session: Session, b: Booth) -> list[dict[str, Any]]:
    """The guide entries of the items this booth takes in."""
    return [g for g in guide.catalog_guide(session) if g["code"] in b.items]


def _on_behalf(b: Booth, actor: Actor) -> Actor:
    """The booth acting at its supervising counter's intake (收件), under its own account id."""
    return Actor(actor.id, f"自助终端 {b.name}", b.supervisor_id, b.region_code, frozenset({"clerk"}),
                 counter_name=b.supervisor_name)


def submit(session: Session, actor: Actor, item_code: str, applicant: dict[str, Any], answers: dict[str, str],
           captures: dict[str, list[tuple[str, bytes]]]) -> tuple[CaseRow, str]:
    """Take the application in; every material the 情形 needs must have been captured (a 免提交
    certificate from the library, or a material that is not required, may be left out)."""
    b = booth(session, actor)
    if item_code not in b.items:
        raise InvalidInput("item_code", "本终端不受理该事项, 请到窗口办理")
    if not applicant.get("phone"):
        raise InvalidInput("applicant.phone", "须填写手机号码")
    if not applicant.get("id_number"):
        raise InvalidInput("applicant.id_number", "须读取或输入身份证号码")
    d = guide.definition(session, item_code)
    needed = situations.selected_materials(d, situations.check_answers(d, answers))
    for m in needed:
        if m.required and m.library is None and not captures.get(m.id):
            raise InvalidInput(f"captures.{m.id}", f"请拍摄「{m.name}」")
    for mid, pages in captures.items():
        if len(pages) > MAX_PAGES:
            raise InvalidInput(f"captures.{mid}", f"每份材料最多 {MAX_PAGES} 页")
    proxy = _on_behalf(b, actor)
    case, code = intake.create_case(session, proxy, item_code, applicant, dict.fromkeys(captures, "received"),
                                    situation=answers)
    for mid, pages in captures.items():
        for name, data in pages:
            scans.add_page(session, case["number"], mid, io.BytesIO(data), name, proxy, field=f"captures.{mid}")
    # Nobody at the booth follows the case: the supervising counter's clerk who acts first does.
    session.execute(sa.update(T_CASE).where(T_CASE.c.id == case["id"]).values(companion_id=None))
    document_drawing.request_drawing(session, case["number"], proxy, "receipt")
    return case, code


def fresh(at: str | None) -> bool:
    """Whether a result recorded at ``at`` (ISO) may still be shown at the booth."""
    if not at:
        return False
    return now() - datetime.fromisoformat(at) <= timedelta(seconds=RESULT_SECONDS)


def receipt(session: Session, actor: Actor, number: str) -> int | None:
    """The evidence id of the case's drawn 收件凭证, or None while it is being drawn."""
    b = booth(session, actor)
    found = [d for d in documents_read.with_evidence(session, number, _on_behalf(b, actor)) if d["kind"] == "receipt"]
    if not found:
        raise NotFound("该办件尚无收件凭证")
    return found[-1]["evidence_id"]


def receipt_download(session: Session, actor: Actor, number: str, evidence_id: int) -> scans.Download:
    return scans.evidence_download(session, number, evidence_id, _on_behalf(booth(session, actor), actor))


def result_view(session: Session, actor: Actor, number: str) -> dict[str, Any]:
    """What the booth's result page shows: the case, the supervising counter, each material's pages."""
    b = booth(session, actor)
    proxy = _on_behalf(b, actor)
    case = load_case(session, number)
    d = catalog.compiled(session, case["item_version_id"]).definition
    pages: dict[str, int] = {}
    for p in scans.list_pages(session, number, proxy):
        pages[p["material_id"]] = pages.get(p["material_id"], 0) + 1
    statuses = {m["material_id"]: m["status"] for m in load_materials(session, case["id"]).values()}
    receipts = [r for r in documents_read.with_evidence(session, number, proxy) if r["kind"] == "receipt"]
    return {"number": number, "item_name": d.name, "booth": b.name, "counter": b.supervisor_name,
            "at": case["created_at"], "receipt_number": receipts[-1]["number"] if receipts else None,
            "materials": [{"name": m.name, "pages": pages.get(m.id, 0), "received": statuses[m.id] == "received"}
                          for m in d.materials if m.id in statuses]}
