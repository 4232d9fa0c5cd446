"""The vocabularies an item definition may use, with zh-CN labels.

The closed ones (roles, holders, modes, outcomes) are data and live here. The open ones — guards,
jobs, video steps — are declared where they are implemented and handed to the checker as a
``Vocabulary`` (built by ``engine.extensions.vocabulary``), so ``tongban items check`` refuses a
name that has no implementation.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

# Counter roles built into every item: where the applicant stood, and the competent region.
BUILTIN_HOLDERS = {"intake": "收件地窗口", "competent": "办理地窗口"}

ACTOR_ROLES = {
    "clerk": "窗口收件人员",
    "reviewer": "审核人员",
    "approver": "审批签发人员",
    "inspector": "踏勘人员",
    "supervisor": "督查管理人员",
    "designer": "流程设计人员",
    "system": "系统",
    # The applicant acts only on the progress page (with the case's query code): 撤回.
    "applicant": "申请人",
}

MODES = ("全程网办", "异地代收代办", "多地联办")
CASE_TYPES = {"即办件": 1, "承诺件": 2}
# 事项类型 (GB/T 39046 appendix A) is a two-digit code 01…20; labels for the ones we ship.
ITEM_TYPE_LABELS = {"01": "行政许可", "07": "行政确认", "20": "公共服务"}
# Final outcomes and the exchange status code (办件状态代码) they map to.
OUTCOMES = {"approved": 11, "rejected": 13, "not_accepted": 5, "withdrawn": 14}


@dataclass(frozen=True)
class Vocabulary:
    """The open vocabularies, name → zh-CN label, as the registries hold them."""

    guards: Mapping[str, str]
    jobs: Mapping[str, str]
    # Triggers a finished job fires for the system actor (the first one open wins).
    follow_ups: Mapping[str, tuple[str, ...]]
    video_kinds: Mapping[str, str]
    # Video steps whose room carries the state's checklist (a state may only declare one there).
    checklist_kinds: frozenset[str]
