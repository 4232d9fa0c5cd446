"""The typed schema of an item definition (事项定义), one YAML file per item version."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Identifier = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


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
    blank_form: str | None = None
    sample: str | None = None


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


DocumentKind = Literal["receipt", "acceptance", "refusal", "supplement", "extension", "special_procedure",
                       "rejection", "approval", "service"]


class DocumentRule(_Strict):
    """An item's word on one of its written notices (文书); without it the engine derives when."""

    # Issue it at these triggers instead of the derived ones; ``enabled: false`` issues it never.
    on: list[Identifier] | None = None
    enabled: bool = True
    # 特别程序告知书: the working days the procedure is expected to take (行政许可法 art. 45).
    days: int | None = Field(default=None, ge=1, le=365)


class ItemDefinition(_Strict):
    code: str = Field(min_length=4, max_length=64, pattern=r"^[0-9A-Za-z\-]+$")
    name: str = Field(min_length=1)
    version: int = Field(ge=1, le=2**31 - 1)
    item_type: str = Field(pattern=r"^(0[1-9]|1[0-9]|20)$")
    case_type: Literal["即办件", "承诺件"]
    limits: Limits
    modes: list[Literal["全程网办", "异地代收代办", "多地联办"]] = Field(min_length=1)
    # Counter roles beyond the built-in intake/competent (e.g. a second department).
    roles: dict[Identifier, str] = {}
    materials: list[Material] = []
    states: list[State] = Field(min_length=1)
    transitions: list[Transition] = Field(min_length=1)
    certificate: str | None = None  # name of the result document (结果证照名称)
    auto_review: AutoReview | None = None  # 网络自动审批 rules (flows: auto_review job)
    withdraw: WithdrawPolicy | None = None  # default: every state before the decision
    documents: dict[DocumentKind, DocumentRule] = {}  # per-notice overrides (engine.documents)


State.model_rebuild()
