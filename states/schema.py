"""The typed schema of an item definition (事项定义), one YAML file per item version."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
# A blank form or sample kept beside the item (forms/<CODE>/<name>, states.loader): a plain file
# name of a kind an applicant can open, never a path.
FormFile = Annotated[str, Field(pattern=r"^[^./\\\x00-\x1f][^/\\\x00-\x1f]{0,99}\.(pdf|docx?|xlsx?|jpe?g|png)$")]


# 通办模式: the cross-region ways an item can be handled (also the API's ``Mode``).
ModeName = Literal["全程网办", "异地代收代办", "多地联办"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Material(_Strict):
    id: Identifier
    name: str = Field(min_length=1)
    required: bool = True
    form: Literal["paper", "electronic", "both"] = "both"
    copies: int = Field(default=1, ge=1, le=99)
    # 容缺受理: the case may be accepted without it under a written promise.
    deferrable: bool = False
    blank_form: FormFile | None = None  # 空白表格
    sample: FormFile | None = None  # 示例样表
    # 免提交: taken at intake from the certificate library (电子证照库) — a valid certificate of
    # this 证照类型 held under the applicant's code — instead of a new scan.
    library: str | None = Field(default=None, min_length=1, max_length=64)


class SituationOption(_Strict):
    """One answer to a 情形 question, the materials that answer adds to the list, and the path of
    the flow it selects: a transition (by trigger) that some option lists is open only on a case
    whose answers chose that option; every other transition as usual."""

    id: Identifier
    label: str = Field(min_length=1, max_length=64)
    materials: list[Identifier] = []
    path: list[Identifier] = Field(default=[], max_length=20)


class Situation(_Strict):
    """事项情形: a question whose answer decides what an applicant must bring (一次性告知).
    A material that some option lists is needed only when that option is chosen; the others always."""

    id: Identifier
    question: str = Field(min_length=1, max_length=100)
    options: list[SituationOption] = Field(min_length=2, max_length=20)


class ChecklistEntry(_Strict):
    id: Identifier
    label: str = Field(min_length=1)


class State(_Strict):
    id: Identifier
    label: str = Field(min_length=1)
    holder: Identifier = "competent"
    # Whether the deadline clock runs here; 补正 and 特别程序 pause it.
    clock: Literal["run", "pause"] = "run"
    video: Identifier | None = None  # a registered video step (远程会商, 远程踏勘 …)
    job: Identifier | None = None
    final: bool = False
    outcome: Literal["approved", "rejected", "not_accepted", "withdrawn"] | None = None
    # Exchange status code (1 已接件 … 15 撤销) when the default derivation does not fit.
    status: int | None = Field(default=None, ge=1, le=15)
    checklist: list[ChecklistEntry] = []
    parallel: list[Branch] | None = None

    @model_validator(mode="after")
    def _final_has_outcome(self) -> State:
        if self.final and self.parallel:
            raise ValueError("并联状态不能是终态")
        if self.outcome and not self.final:
            raise ValueError("只有终态可以声明 outcome")
        return self


class Branch(_Strict):
    """One department's lane inside a parallel state (并联审批)."""

    id: Identifier
    label: str = Field(min_length=1)
    holder: Identifier
    states: list[State] = Field(min_length=2)

    @field_validator("states")
    @classmethod
    def _no_nesting(cls, states: list[State]) -> list[State]:
        for s in states:
            if s.parallel:
                raise ValueError("并联分支内不能再嵌套并联状态")
        return states


class Transition(_Strict):
    trigger: Identifier
    label: str = Field(min_length=1)
    source: list[str] = Field(alias="from", min_length=1)
    dest: str = Field(alias="to")
    roles: list[Identifier] = Field(min_length=1)
    guards: list[Identifier] = []
    jobs: list[Identifier] = []
    # Fired by the engine itself as soon as its guards pass after entering the source.
    auto: bool = False

    @field_validator("source", mode="before")
    @classmethod
    def _one_or_many(cls, v: object) -> object:
        return [v] if isinstance(v, str) else v


class ReviewRule(_Strict):
    """One rule of 网络自动审批: a material check or a comparison on the case's data."""

    id: Identifier
    label: str = Field(min_length=1)
    # Every listed material received in full (a 容缺 deferral does not pass).
    materials: list[Identifier] | None = None
    # A dotted path into the case: applicant.kind, applicant.id_number, mode, commitment.signer …
    field: str | None = Field(default=None, pattern=r"^(applicant|mode|commitment|item_code)(\.[a-z_]+)*$")
    op: Literal["eq", "ne", "in", "present", "matches", "lte", "gte"] | None = None
    value: str | int | float | bool | list[str] | None = None

    @model_validator(mode="after")
    def _one_check(self) -> ReviewRule:
        if (self.materials is None) == (self.field is None):
            raise ValueError("规则须且只能声明 materials 或 field 之一")
        if self.field is not None and self.op is None:
            raise ValueError("field 规则须声明 op")
        if self.op not in (None, "present") and self.value is None:
            raise ValueError(f"op '{self.op}' 须声明 value")
        return self


class AutoReview(_Strict):
    """网络自动审批: the auto_review job fires ``approve`` when every rule passes, else ``manual``."""

    approve: Identifier
    manual: Identifier | None = None
    rules: list[ReviewRule] = Field(min_length=1)
    # When the automatic review applies at all (every condition must hold); otherwise the case goes
    # to a person (``manual``) without an automatic decision. Declaring it is also the designer's
    # word that the automatic review may leave a state people can leave too: it goes first.
    when: list[ReviewRule] | None = None


class Limits(_Strict):
    legal_days: int = Field(ge=0, le=365)
    promised_days: int = Field(ge=0, le=365)
    extension_days: int = Field(default=0, ge=0, le=60)

    @model_validator(mode="after")
    def _promise_within_law(self) -> Limits:
        if self.promised_days > self.legal_days:
            raise ValueError(
                f"承诺时限 {self.promised_days} 个工作日不能超过法定时限 {self.legal_days} 个工作日"
            )
        return self


class WithdrawPolicy(_Strict):
    """Narrows the catalog-wide 撤回 (``states.defaults``): the states it is open in."""

    source: list[str] = Field(alias="from")


CERTIFICATE_COMPUTED = {
    "holder": "持证主体 (申请人名称)",
    "holder_code": "持证主体代码 (申请人证件号码)",
    "item_name": "事项名称",
    "case_number": "办件编号",
    "issuer": "发证机关 (发证单位名称)",
    "issued_on": "发证日期",
    "valid_from": "有效期起始日期",
    "valid_until": "有效期截止日期 (长期为「长期」)",
    "validity": "有效期限 (起止或「长期」)",
}


class CertificateField(_Strict):
    """One datum a certificate carries, where it comes from, and how it is checked."""

    id: Identifier
    label: str = Field(min_length=1, max_length=32)
    # application: read from the case (``path``); approval: filled in by the approver when
    # firing the approving trigger (``data.certificate.<id>``); computed: by the product.
    source: Literal["application", "approval", "computed"]
    path: str | None = Field(default=None, pattern=r"^applicant\.[a-z_]+$")
    compute: str | None = None
    validation: Literal["text", "credit_code", "id_number", "date"] = "text"
    required: bool = True
    max_length: int = Field(default=200, ge=1, le=2000)
    # Recorded in the library and the case, but not printed (e.g. a person's ID number).
    printed: bool = True

    @model_validator(mode="after")
    def _source_parts(self) -> CertificateField:
        if self.source == "application" and self.path is None:
            raise ValueError("source: application 须声明 path (如 applicant.name)")
        if self.source != "application" and self.path is not None:
            raise ValueError("只有 source: application 的字段可以声明 path")
        if self.source == "computed":
            if self.compute not in CERTIFICATE_COMPUTED:
                raise ValueError(f"source: computed 须声明 compute, 可用: {', '.join(CERTIFICATE_COMPUTED)}")
        elif self.compute is not None:
            raise ValueError("只有 source: computed 的字段可以声明 compute")
        return self


class Validity(_Strict):
    """有效期: a number of years from the issue date, until a date field's value, or 长期."""

    years: int | None = Field(default=None, ge=1, le=100)
    until: Identifier | None = None
    long_term: bool = False

    @model_validator(mode="before")
    @classmethod
    def _words(cls, v: object) -> object:
        return {"long_term": True} if v == "长期" else v

    @model_validator(mode="after")
    def _exactly_one(self) -> Validity:
        if sum((self.years is not None, self.until is not None, self.long_term)) != 1:
            raise ValueError("有效期须且只能声明 years、until 或「长期」之一")
        return self


class CertificateSpec(_Strict):
    """A certificate an item issues (结果证照): its data, validity, layout and issuing authority."""

    id: Identifier = "certificate"
    name: str = Field(min_length=1, max_length=64)
    # 证照类型 under which the library keeps it (and 免提交 finds it); defaults to the name.
    type: str | None = Field(default=None, min_length=1, max_length=64)
    # The counter role whose unit issues, numbers and seals it (颁发机构).
    issuer: Identifier = "competent"
    # Triggers whose approver fills the approval fields; default: the triggers that start the
    # certificate job.
    approved_by: list[Identifier] = []
    # The fields naming 持证主体 and 持证主体代码 (default: the applicant's name and 证件号码).
    holder: Identifier | None = None
    holder_code: Identifier | None = None
    fields: list[CertificateField] = []
    validity: Validity | None = None  # default: the installation's certificate_valid_years
    # A template under catalog/certificates/ (default certificate_<CODE>[_<id>].xml.j2, else the
    # generic certificate.xml.j2).
    layout: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_\-]+\.xml\.j2$")

    @property
    def kind(self) -> str:
        return self.type or self.name


DocumentKind = Literal["receipt", "acceptance", "refusal", "supplement", "extension", "special_procedure",
                       "rejection", "approval", "service"]


class DocumentRule(_Strict):
    """An item's word on one of its written notices (文书); without it the engine derives when."""

    # Issue it at these triggers instead of the derived ones; ``enabled: false`` issues it never.
    at: list[Identifier] | None = None
    enabled: bool = True
    # 特别程序告知书: the working days the procedure is expected to take (行政许可法 art. 45).
    days: int | None = Field(default=None, ge=1, le=365)
    # The notice's title (文书名称) for this item, e.g. 准予变更登记通知书; without it the kind's
    # title for the item's kind of decision (``DECISION_TITLES``), else the kind's own.
    title: str | None = Field(default=None, min_length=2, max_length=32, pattern=r"^[\u4e00-\u9fff（）()、]+$")


# What a decision is called depends on what the item decides: a 行政许可 grants or refuses a
# licence (行政许可法 art. 38: 准予/不予行政许可决定书); a 登记 registers or refuses to register
# (市场主体登记管理条例 art. 19, its 实施细则: 准予登记通知书 / 不予登记通知书); a 公共服务 is handled or
# not (办理结果告知书 / 不予办理告知书). An item's ``documents.<kind>.title`` goes before these.
DecisionKind = Literal["licence", "registration", "public_service"]
DECISION_TITLES: dict[str, dict[str, str]] = {
    "licence": {"approval": "准予许可决定书", "rejection": "不予许可决定书"},
    "registration": {"approval": "准予登记通知书", "rejection": "不予登记通知书"},
    "public_service": {"approval": "办理结果告知书", "rejection": "不予办理告知书"},
}


def _certificate_form(v: object) -> str:
    return "[bundle]" if isinstance(v, list) else "[name]" if isinstance(v, str) else "[one]"


# Which form is meant is clear from the YAML node, so a mistake is reported inside that form only
# (the tags carry "[", which located reports leave out of the path).
CertificateDecl = Annotated[
    Annotated[str, Tag("[name]")] | Annotated[CertificateSpec, Tag("[one]")]
    | Annotated[list[CertificateSpec], Tag("[bundle]")],
    Discriminator(_certificate_form)]


class ItemDefinition(_Strict):
    code: str = Field(min_length=4, max_length=64, pattern=r"^[0-9A-Za-z\-]+$")
    name: str = Field(min_length=1)
    version: int = Field(ge=1, le=2**31 - 1)
    item_type: str = Field(pattern=r"^(0[1-9]|1[0-9]|20)$")
    case_type: Literal["即办件", "承诺件"]
    limits: Limits
    modes: list[ModeName] = Field(min_length=1)
    # Counter roles beyond the built-in intake/competent (e.g. a second department).
    roles: dict[Identifier, str] = {}
    materials: list[Material] = []
    # 事项情形: the questions deciding which materials an application needs (engine.situations).
    situations: list[Situation] = Field(default=[], max_length=20)
    states: list[State] = Field(min_length=1)
    transitions: list[Transition] = Field(min_length=1)
    # The result certificate (结果证照): a name (the generic layout), one declared certificate,
    # or a bundle's list, one per issuing authority (证照合办).
    certificate: CertificateDecl | None = None
    auto_review: AutoReview | None = None  # 网络自动审批 rules (flows: auto_review job)
    withdraw: WithdrawPolicy | None = None  # default: every state before the decision
    documents: dict[DocumentKind, DocumentRule] = {}  # per-notice overrides (engine.documents)

    @property
    def decision(self) -> DecisionKind:
        """What the item decides: 事项类型 20 is a 公共服务; an item named 「…登记」 (设立登记, 变更登记 …)
        is a 登记 whatever its type code (market-entity registration is listed as a 行政许可); the rest
        grant or refuse a licence."""
        if self.item_type == "20":
            return "public_service"
        return "registration" if self.name.endswith("登记") else "licence"

    def document_title(self, kind: str, default: str) -> str:
        """The title of the item's ``kind`` notice: its own word, the decision's, else ``default``."""
        rule = self.documents.get(kind)  # type: ignore[call-overload]
        if rule is not None and rule.title:
            return str(rule.title)
        return DECISION_TITLES[self.decision].get(kind, default)

    @property
    def certificate_name(self) -> str | None:
        """结果证照名称: the bundle's names joined."""
        specs = self.certificates
        return "及".join(c.name for c in specs) if specs else None

    @property
    def certificates(self) -> list[CertificateSpec]:
        if self.certificate is None:
            return []
        if isinstance(self.certificate, str):
            return [CertificateSpec(name=self.certificate)]
        if isinstance(self.certificate, CertificateSpec):
            return [self.certificate]
        return list(self.certificate)


State.model_rebuild()
