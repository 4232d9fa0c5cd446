"""The alliance directory (云牵手联盟): regions, member units, counters, and who does what for which item."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from sqlmodel import Session

from engine import idcodes
from engine.errors import Forbidden, InvalidInput
from states.schema import ItemDefinition
from storage.tables import Clerk, Counter, CounterItem, Region, Unit

DEFAULT_FORMAT = "{abbr}{word}〔{year}〕{seq:05d}号"


@dataclass(frozen=True)
class Parties:
    intake: Counter
    competent: Counter
    by_role: dict[str, str]  # every counter role of the item → counter id


def load_alliance(session: Session, path: Path) -> dict[str, Any]:
    """Insert regions, counters and their item roles from a YAML file; existing rows are kept."""
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    for r in doc.get("regions", []):
        session.merge(Region(code=str(r["code"]), name=r["name"]))
    session.flush()
    scheme = doc.get("document_numbers") or {}
    by_id: dict[str, Unit] = {}
    for i, u in enumerate(doc.get("units", [])):
        # The code is printed on every notice the unit issues: a wrong one is refused at load.
        if problem := idcodes.credit_code_problem(str(u["code"])):
            raise InvalidInput(f"units[{i}].code", f"成员单位「{u['name']}」: {problem}")
        words = {**(scheme.get("words") or {}), **(u.get("words") or {})}
        by_id[u["id"]] = session.merge(Unit(
            id=u["id"], name=u["name"], code=str(u["code"]), region_code=str(u["region"]), doc_abbr=u["abbr"],
            doc_format=u.get("format") or scheme.get("format") or DEFAULT_FORMAT, doc_words=words))
    session.flush()
    for c in doc.get("counters", []):
        # A counter names its unit by id; a bare name (a directory without units) still works.
        ref = c.get("unit", "")
        unit = (by_id.get(ref) or session.get(Unit, ref)) if ref else None
        session.merge(Counter(id=c["id"], name=c["name"], unit=unit.name if unit else ref,
                              unit_id=unit.id if unit else None, region_code=str(c["region"])))
        session.flush()
        for code, roles in (c.get("items") or {}).items():
            for role in roles:
                session.merge(CounterItem(counter_id=c["id"], item_code=code, role=role))
    session.flush()
    return doc


def counter_roles(session: Session, counter_id: str, item_code: str) -> set[str]:
    return set(session.execute(
        sa.select(CounterItem.role).where(
            CounterItem.counter_id == counter_id, CounterItem.item_code == item_code)
    ).scalars())


def resolve_parties(
    session: Session, d: ItemDefinition, intake_counter_id: str, competent_region: str | None
) -> Parties:
    """Route a new case (业务精准推送): the competent counter and each department, by region."""
    intake = session.get(Counter, intake_counter_id)
    if intake is None:
        raise Forbidden("当前账号未绑定窗口, 不能收件", missing=["counter"])
    roles = counter_roles(session, intake.id, d.code)
    if not roles & {"intake", "competent"}:
        reason = ("本窗口对该事项仅提供远程指导(云指导), 不能收件" if "guide" in roles
                  else "本窗口不受理该事项")
        raise Forbidden(reason, missing=["item_role:intake"])
    region = competent_region or intake.region_code
    if session.get(Region, region) is None:
        raise InvalidInput("competent_region", f"未知的行政区划 {region}")

    def find(role: str) -> Counter:
        row = session.execute(
            sa.select(Counter).join(CounterItem, CounterItem.counter_id == Counter.id)
            .where(Counter.region_code == region, CounterItem.item_code == d.code,
                   CounterItem.role == role).order_by(Counter.id).limit(1)
        ).scalar_one_or_none()
        if row is None:
            raise InvalidInput("competent_region", f"{region} 没有承担 '{role}' 职责的 {d.name} 办理窗口")
        return row

    competent = intake if region == intake.region_code and "competent" in roles else find("competent")
    by_role = {"intake": intake.id, "competent": competent.id}
    for role in d.roles:
        by_role[role] = find(role).id
    return Parties(intake, competent, by_role)


def counter_names(session: Session, ids: Iterable[str]) -> dict[str, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    return dict(session.execute(sa.select(Counter.id, Counter.name).where(Counter.id.in_(wanted))).all())


def clerk_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    return dict(session.execute(sa.select(Clerk.id, Clerk.name).where(Clerk.id.in_(wanted))).all())


def regions(session: Session, codes: Iterable[str] | None = None) -> list[tuple[str, str]]:
    """(code, name) of every region, or of those named, by code."""
    q = sa.select(Region.code, Region.name).order_by(Region.code)
    if codes is not None:
        q = q.where(Region.code.in_(set(codes)))
    return [(code, name) for code, name in session.execute(q).all()]


def counter_item_codes(session: Session, counter_id: str, roles: Iterable[str] = ("intake", "competent")) -> set[str]:
    """The items this counter handles in one of these roles (收件 or 办理)."""
    return set(session.execute(sa.select(CounterItem.item_code).where(
        CounterItem.counter_id == counter_id, CounterItem.role.in_(list(roles)))).scalars())


def counter(session: Session, counter_id: str) -> Counter | None:
    return session.get(Counter, counter_id)


def unit(session: Session, unit_id: str) -> Unit | None:
    return session.get(Unit, unit_id)


def unit_of_counter(session: Session, counter_id: str | None) -> Unit | None:
    """The member unit a counter belongs to (the authority its notices are issued in the name of)."""
    c = session.get(Counter, counter_id) if counter_id else None
    return session.get(Unit, c.unit_id) if c is not None and c.unit_id else None


def units(session: Session) -> list[Unit]:
    return list(session.execute(sa.select(Unit).order_by(Unit.id)).scalars())
