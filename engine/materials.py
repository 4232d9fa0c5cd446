"""The material checklist (材料清单) of a case, including 容缺受理 deferrals."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from core import clock
from core.settings import get_settings
from engine.errors import InvalidInput
from engine.workdays import WorkCalendar
from states.compiler import CompiledItem
from storage.rows import MaterialRowUpdate

MATERIAL_STATUSES = ("missing", "received", "deferred")


def defer_material(item: CompiledItem, entry: Any, field: str, at: datetime, cal: WorkCalendar) -> MaterialRowUpdate:
    """Validate one 容缺 entry {material, promise}; return the material row update."""
    if not isinstance(entry, dict):
        raise InvalidInput(field, "须为 {material, promise}")
    mid = entry.get("material")
    material = next((m for m in item.definition.materials if m.id == mid), None)
    if material is None:
        raise InvalidInput(f"{field}.material", f"事项没有材料 '{mid}'")
    if not material.deferrable:
        raise InvalidInput(f"{field}.material", f"材料「{material.name}」不允许容缺受理")
    promise = (entry.get("promise") or "").strip()
    if not promise:
        raise InvalidInput(f"{field}.promise", "容缺受理须记录申请人的补交承诺")
    due = cal.add(clock.local_date(at), get_settings().defer_days)
    return {"material_id": mid, "status": "deferred", "promise": promise,
            "deferred_due": due, "updated_at": at}
