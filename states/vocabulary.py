"""The closed vocabularies an item definition may use, with zh-CN labels.

Guards are implemented in ``engine.guards`` and jobs in ``flows``; tests keep both in step
with these names so that ``tongban items check`` can reject an unknown one up front.
"""

from __future__ import annotations

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
}

GUARDS = {
    "required_materials": "必要材料齐全(容缺材料已承诺)",
    "commitment_signed": "已签署告知承诺书",
    "all_branches_done": "并联审批各部门均已完成",
    "comment_given": "已填写意见",
}

JOBS = {
    "handoff": "跨域移交",
    "issue_certificate": "制发证照",
    "create_waybill": "生成邮寄运单",
    "notify_applicant": "通知申请人",
    "auto_review": "网络自动审批",
    "process_recording": "处理视频录像",
}

VIDEO_KINDS = {"consultation": "远程会商", "inspection": "远程踏勘", "guidance": "远程指导办件"}

MODES = ("全程网办", "异地代收代办", "多地联办")
CASE_TYPES = {"即办件": 1, "承诺件": 2}
# 事项类型 (GB/T 39046 appendix A) is a two-digit code 01…20; labels for the ones we ship.
ITEM_TYPE_LABELS = {"01": "行政许可", "07": "行政确认", "20": "公共服务"}
# Final outcomes and the exchange status code they map to (DOMAIN.md status list).
OUTCOMES = {"approved": 11, "rejected": 13, "not_accepted": 5, "withdrawn": 14}
