"""Semantic checks that the schema alone cannot express, each reported at its source line."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping

from states.certs import approving_triggers, issuing_triggers
from states.compiler import situation_paths
from states.defaults import BACK_PREFIX
from states.graph import StateRef, state_table, transition_edges
from states.patterns import PatternError, compile_pattern
from states.phases import decided
from states.problems import Problem
from states.schema import ItemDefinition, Transition
from states.vocabulary import ACTOR_ROLES, BUILTIN_HOLDERS, Vocabulary
from states.yamlpos import Located

Report = Callable[[tuple[str | int, ...], str], None]


def check_semantics(d: ItemDefinition, located: Located, file: str, vocabulary: Vocabulary,
                    strict: bool = True) -> list[Problem]:
    """Every problem of a definition. ``strict`` adds the rules a stored version need not meet to
    keep running (it passed the rules of its day): automatic steps racing people."""
    problems: list[Problem] = []

    def report(path: tuple[str | int, ...], message: str) -> None:
        pos = located.at(path)
        problems.append(Problem(file, pos.line, pos.col, message))

    _check_unique(d, report)
    table = state_table(d)
    holders = set(BUILTIN_HOLDERS) | set(d.roles)

    for ref in table.values():
        if ref.state.holder not in holders:
            report((*ref.path, "holder"), f"未知的窗口角色 '{ref.state.holder}' (可用: {', '.join(sorted(holders))})")
        _check_extensions(d, ref, vocabulary, report)
    for i, s in enumerate(d.states):
        for j, b in enumerate(s.parallel or []):
            if b.holder not in holders:
                report(("states", i, "parallel", j, "holder"), f"未知的窗口角色 '{b.holder}'")
            if not any(sub.final for sub in b.states):
                report(("states", i, "parallel", j), f"并联分支 '{b.id}' 没有终态")
    if d.states[0].parallel:
        report(("states", 0), "初始状态不能是并联状态")
    if not any(s.final for s in d.states):
        report(("states",), "没有终态: 至少一个状态须标记 final: true")
    if d.case_type == "承诺件" and d.limits.legal_days == 0:
        report(("limits", "legal_days"), "承诺件须有大于 0 的法定办结时限")

    outgoing: dict[str, list[int]] = {name: [] for name in table}
    seen_triggers: dict[tuple[str, str], int] = {}
    for t_index, t in enumerate(d.transitions):
        tp = ("transitions", t_index)
        known_sources = []
        for k, src in enumerate(t.source):
            if src not in table:
                report((*tp, "from", k), f"未知的状态 '{src}'")
                continue
            known_sources.append(src)
            first = seen_triggers.setdefault((t.trigger, src), t_index)
            if first != t_index:
                report((*tp, "trigger"),
                       f"触发器 '{t.trigger}' 在状态 '{src}' 上重复定义 (第 {first + 1} 条转换已定义)")
            outgoing[src].append(t_index)
        if t.dest not in table:
            report((*tp, "to"), f"未知的状态 '{t.dest}'")
        else:
            dest = table[t.dest]
            if strict and dest.state.final and dest.state.outcome in ("rejected", "not_accepted") \
                    and "comment_given" not in t.guards:
                what = "不予受理" if dest.state.outcome == "not_accepted" else "不予许可"
                report((*tp, "guards"), f"{what}须说明理由: 转换 '{t.trigger}' 须有守卫条件 comment_given")
            for src in known_sources:
                s = table[src]
                if dest.branch and (s.parallel, s.branch) != (dest.parallel, dest.branch):
                    report((*tp, "to"), f"不能从分支外进入并联分支内部状态 '{t.dest}'")
        for k, role in enumerate(t.roles):
            if role not in ACTOR_ROLES:
                report((*tp, "roles", k), f"未知的人员角色 '{role}' (可用: {', '.join(ACTOR_ROLES)})")
        for k, guard in enumerate(t.guards):
            if guard not in vocabulary.guards:
                report((*tp, "guards", k), _unknown("守卫条件", guard, vocabulary.guards))
            elif guard == "all_branches_done" and not any(
                src in table and table[src].state.parallel for src in t.source
            ):
                report((*tp, "guards", k), "all_branches_done 只能用于离开并联状态的转换")
        for k, job in enumerate(t.jobs):
            if job not in vocabulary.jobs:
                report((*tp, "jobs", k), _unknown("自动任务", job, vocabulary.jobs))
            else:
                _check_follow_up(d, job, vocabulary, (*tp, "jobs", k), report)

    if d.withdraw is not None:
        done = decided(d, table)
        for k, name in enumerate(d.withdraw.source):
            if name not in table:
                report(("withdraw", "from", k), f"未知的状态 '{name}'")
            elif table[name].state.final or name in done:
                report(("withdraw", "from", k), f"状态 '{name}' 已作出决定或已办结, 不能再撤回")
    _check_reachability(d, table, report)
    _check_auto_review(d, report)
    _check_documents(d, report)
    _check_certificates(d, holders, report)
    _check_situations(d, report)
    _check_situation_paths(d, table, report)
    if strict:
        _check_races(d, table, vocabulary, report)
        _check_patterns(d, report)

    for name, ref in table.items():
        own = outgoing[name]
        if ref.state.final and own:
            report((*ref.path, "final"), f"终态 '{name}' 不能有出口转换")
        if ref.state.final or own:
            continue
        report(ref.path, f"状态 '{name}' 不是终态, 却没有任何出口转换")
    return problems


def _unknown(kind: str, name: str, known: Mapping[str, str]) -> str:
    listed = ", ".join(f"{n}({label})" for n, label in known.items())
    return f"未知的{kind} '{name}' (可用: {listed})"


def _check_follow_up(d: ItemDefinition, job: str, vocabulary: Vocabulary, path: tuple[str | int, ...],
                     report: Report) -> None:
    """A job that fires a follow-up when done needs that trigger here, open to the system."""
    wanted = vocabulary.follow_ups.get(job, ())
    if wanted and not any(t.trigger in wanted and "system" in t.roles for t in d.transitions):
        report(path, f"自动任务 '{job}'({vocabulary.jobs[job]}) 完成后触发 {' / '.join(wanted)}, "
                     "本事项须定义其中之一且允许角色 system, 否则办件将停在原状态")


def _check_extensions(d: ItemDefinition, ref: StateRef, vocabulary: Vocabulary, report: Report) -> None:
    s = ref.state
    if s.job and s.job not in vocabulary.jobs:
        report((*ref.path, "job"), _unknown("自动任务", s.job, vocabulary.jobs))
    elif s.job:
        _check_follow_up(d, s.job, vocabulary, (*ref.path, "job"), report)
    if s.video and s.video not in vocabulary.video_kinds:
        report((*ref.path, "video"), _unknown("视频环节", s.video, vocabulary.video_kinds))
    if s.checklist and s.video not in vocabulary.checklist_kinds:
        kinds = "、".join(vocabulary.video_kinds[k] for k in sorted(vocabulary.checklist_kinds))
        report((*ref.path, "checklist"), f"只有带清单的视频环节({kinds})的状态可以声明 checklist")


def _check_races(d: ItemDefinition, table: dict[str, StateRef], vocabulary: Vocabulary, report: Report) -> None:
    """An automatic step must not leave a state that a person can leave elsewhere: the job fires
    seconds after the state is entered, so the person would lose every time."""
    automatic: dict[str, tuple[tuple[str | int, ...], set[str]]] = {}  # trigger → where declared, its label
    if d.auto_review is not None and d.auto_review.when is None:
        for key in ("approve", "manual"):
            trigger = getattr(d.auto_review, key)
            if trigger:
                automatic[trigger] = (("auto_review", key), {"网络自动审批"})
    used = {j for t in d.transitions for j in t.jobs} | {s.job for s in d.states if s.job}
    for job, follow in vocabulary.follow_ups.items():
        if job not in used:
            continue
        for trigger in follow:
            if any(t.trigger == trigger and "system" in t.roles for t in d.transitions):
                automatic.setdefault(trigger, (("transitions",), set()))[1].add(vocabulary.jobs[job])
    for trigger, (where, by) in automatic.items():
        for t in (t for t in d.transitions if t.trigger == trigger):
            for src in t.source:
                # (撤回 is the applicant's right, not a decision a job could take away.)
                rivals = [h for h in d.transitions if src in h.source and h.trigger not in automatic
                          and h.dest != t.dest and set(h.roles) - {"system"} and not h.auto
                          and h.dest in table and table[h.dest].state.outcome != "withdrawn"]
                for h in rivals:
                    report(where, f"自动任务({'、'.join(sorted(by))})触发的 '{trigger}' 与人工操作 '{h.trigger}' "
                                  f"同时离开状态 '{src}' 去往不同状态, 人工操作将总是落后; 请让自动任务在只有系统"
                                  "可离开的状态中运行" + (", 或声明 auto_review.when" if "网络自动审批" in by else ""))


def _check_auto_review(d: ItemDefinition, report: Report) -> None:
    """网络自动审批: its triggers must exist and be firable by the system, its materials known."""
    ar = d.auto_review
    if ar is None:
        return
    for key in ("approve", "manual"):
        trigger = getattr(ar, key)
        if trigger is None:
            continue
        ts = [t for t in d.transitions if t.trigger == trigger]
        if not ts:
            report(("auto_review", key), f"自动审批引用了未定义的触发器 '{trigger}'")
        elif not any("system" in t.roles for t in ts):
            report(("auto_review", key), f"触发器 '{trigger}' 须允许角色 system, 自动审批才能执行")
    uses_job = any("auto_review" in t.jobs for t in d.transitions) or any(
        s.job == "auto_review" for s in d.states)
    if not uses_job:
        report(("auto_review",), "声明了自动审批规则, 但没有任何转换或状态启动 auto_review 任务")
    known = {m.id for m in d.materials}
    seen: set[str] = set()
    for part in ("rules", "when"):
        for i, rule in enumerate(getattr(ar, part) or []):
            if rule.id in seen:
                report(("auto_review", part, i, "id"), f"重复的规则编号 '{rule.id}'")
            seen.add(rule.id)
            for k, mid in enumerate(rule.materials or []):
                if mid not in known:
                    report(("auto_review", part, i, "materials", k), f"规则引用了未知的材料 '{mid}'")


def _check_documents(d: ItemDefinition, report: Report) -> None:
    """A notice the item issues at named triggers: each must be one of its own."""
    triggers = {t.trigger for t in d.transitions}
    for kind, rule in d.documents.items():
        for k, trigger in enumerate(rule.at or []):
            if trigger not in triggers:
                report(("documents", kind, "at", k), f"文书 '{kind}' 引用了未定义的触发器 '{trigger}'")


def _check_certificates(d: ItemDefinition, holders: set[str], report: Report) -> None:
    """Declared certificates: their issuing role, approving triggers and fields refer to what exists."""
    if d.certificate is None or isinstance(d.certificate, str):
        return
    bundle = isinstance(d.certificate, list)
    root: tuple[str | int, ...] = ("certificate",)
    by_trigger = {t.trigger: t for t in d.transitions}
    if not issuing_triggers(d):
        report(root, "声明了证照, 但没有任何转换或状态启动 issue_certificate 任务")
    seen_ids: set[str] = set()
    for i, spec in enumerate(d.certificates):
        base = (*root, i) if bundle else root
        if spec.id in seen_ids:
            report((*base, "id"), f"重复的证照编号 '{spec.id}': 合办的每个证照须声明不同的 id")
        seen_ids.add(spec.id)
        if spec.issuer not in holders:
            report((*base, "issuer"), f"未知的窗口角色 '{spec.issuer}' (可用: {', '.join(sorted(holders))})")
        for k, trigger in enumerate(spec.approved_by):
            if trigger not in by_trigger:
                report((*base, "approved_by", k), f"未定义的触发器 '{trigger}'")
        fields = {f.id: f for f in spec.fields}
        seen_fields: set[str] = set()
        for k, f in enumerate(spec.fields):
            if f.id in seen_fields:
                report((*base, "fields", k, "id"), f"重复的证照字段 '{f.id}'")
            seen_fields.add(f.id)
        approval = [k for k, f in enumerate(spec.fields) if f.source == "approval"]
        if approval:
            people = [t for t in approving_triggers(d, spec)
                      if t in by_trigger and not by_trigger[t].auto and set(by_trigger[t].roles) - {"system"}]
            if not people:
                report((*base, "fields", approval[0], "source"),
                       "审批填写的字段须由审批人员在作出决定时填写: 请在 approved_by 中列出由人员触发的审批转换")
        for key in ("holder", "holder_code"):
            ref = getattr(spec, key)
            if ref is not None and ref not in fields:
                report((*base, key), f"未知的证照字段 '{ref}'")
        if spec.validity is not None and spec.validity.until is not None:
            until = fields.get(spec.validity.until)
            if until is None:
                report((*base, "validity", "until"), f"未知的证照字段 '{spec.validity.until}'")
            elif until.validation != "date":
                report((*base, "validity", "until"), f"有效期截止字段 '{until.id}' 须声明 validation: date")


def _check_situations(d: ItemDefinition, report: Report) -> None:
    """事项情形: unique questions and answers, each answer's materials declared by the item."""
    known = {m.id for m in d.materials}
    seen: set[str] = set()
    for i, q in enumerate(d.situations):
        if q.id in seen:
            report(("situations", i, "id"), f"重复的情形编号 '{q.id}'")
        seen.add(q.id)
        answers: set[str] = set()
        for j, o in enumerate(q.options):
            if o.id in answers:
                report(("situations", i, "options", j, "id"), f"情形 '{q.id}' 的选项 '{o.id}' 重复")
            answers.add(o.id)
            for k, mid in enumerate(o.materials):
                if mid not in known:
                    report(("situations", i, "options", j, "materials", k),
                           f"情形 '{q.id}' 的选项 '{o.id}' 引用了未知的材料 '{mid}'")


def _check_situation_paths(d: ItemDefinition, table: dict[str, StateRef], report: Report) -> None:
    """The transitions 情形 answers select: each one of the item's own, outside parallel branches
    unless automatic, the only one from its source to its destination (the guard knows the step by its two ends), and
    no answer may leave a case without a way to a final state."""
    by_trigger: dict[str, list[Transition]] = {}
    for t in d.transitions:
        by_trigger.setdefault(t.trigger, []).append(t)
    ends: dict[tuple[str, str], int] = {}
    for t in d.transitions:
        for src in t.source:
            ends[(src, t.dest)] = ends.get((src, t.dest), 0) + 1
    gated = situation_paths(d)
    for i, q in enumerate(d.situations):
        for j, o in enumerate(q.options):
            for k, trigger in enumerate(o.path):
                where = ("situations", i, "options", j, "path", k)
                ts = by_trigger.get(trigger)
                if not ts:
                    report(where, f"情形 '{q.id}' 的选项 '{o.id}' 引用了未定义的触发器 '{trigger}'")
                    continue
                for t in ts:
                    # In a parallel branch only an automatic step: a branch the answers make
                    # unnecessary completes by itself (开办餐饮店: no 消防 check for a small shop).
                    if not t.auto and any(src in table and table[src].parallel for src in t.source):
                        report(where, f"触发器 '{trigger}' 在并联分支内, 情形在并联分支内只能选择自动步骤 (auto)")
                    elif any(ends.get((src, t.dest), 0) > 1 for src in t.source):
                        report(where, f"触发器 '{trigger}' 与另一条转换起止状态相同, 情形选择的路径须是"
                                      "其起止状态之间唯一的转换")
            closed = {tr for tr, chosen in gated.items()
                      if any(qid == q.id for qid, _ in chosen) and (q.id, o.id) not in chosen}
            for name in _stuck(d, table, closed):
                report(("situations", i, "options", j, "id"),
                       f"选择情形 '{q.id}' 的选项 '{o.id}' 后, 办件到达状态 '{name}' 将没有可走的出口")


def _stuck(d: ItemDefinition, table: dict[str, StateRef], closed: set[str]) -> list[str]:
    """The states a case can reach with the ``closed`` triggers shut whose ways forward are all shut
    (撤回 and 退回 do not count: they are no way to a decision)."""
    edges: dict[str, set[str]] = {name: set() for name in table}
    shut: dict[str, int] = {name: 0 for name in table}
    for t in d.transitions:
        if t.trigger.startswith(BACK_PREFIX) or (t.dest in table and table[t.dest].state.outcome == "withdrawn"):
            continue
        for src in t.source:
            if src in edges and t.dest in table:
                if t.trigger in closed:
                    shut[src] += 1
                else:
                    edges[src].add(t.dest)
    seen = _reachable(d, table, edges)
    return [n for n in table if n in seen and shut[n] and not any(
        nxt != n and nxt != table[n].parallel for nxt in edges[n])]


def _check_patterns(d: ItemDefinition, report: Report) -> None:
    """``matches`` rules compile with the linear-time engine, or the item is refused. Strict only:
    a stored version with such a pattern still runs, and its evaluation hands the case to a person."""
    if d.auto_review is None:
        return
    for part in ("rules", "when"):
        for i, rule in enumerate(getattr(d.auto_review, part) or []):
            if rule.op != "matches":
                continue
            if not isinstance(rule.value, str):
                report(("auto_review", part, i, "value"), "op 'matches' 的 value 须为正则表达式字符串")
                continue
            try:
                compile_pattern(rule.value)
            except PatternError as exc:
                report(("auto_review", part, i, "value"), f"规则 '{rule.id}': {exc}")


def _check_unique(d: ItemDefinition, report: Report) -> None:
    def dupes(ids: list[str], path: tuple[str | int, ...], what: str) -> None:
        seen: set[str] = set()
        for i, x in enumerate(ids):
            if x in seen:
                report((*path, i, "id"), f"重复的{what} '{x}'")
            seen.add(x)

    dupes([m.id for m in d.materials], ("materials",), "材料编号")
    dupes([s.id for s in d.states], ("states",), "状态")
    for i, s in enumerate(d.states):
        dupes([b.id for b in s.parallel or []], ("states", i, "parallel"), "并联分支")
        for j, b in enumerate(s.parallel or []):
            dupes([x.id for x in b.states], ("states", i, "parallel", j, "states"), "状态")


def _reachable(d: ItemDefinition, table: dict[str, StateRef], edges: dict[str, set[str]]) -> set[str]:
    """The states reachable from the first one over ``edges`` (extended in place: being inside a
    branch means the parallel state itself is active)."""
    for name, ref in table.items():
        if ref.parallel:
            edges[name].add(ref.parallel)
    start = d.states[0].id
    seen, todo = {start}, deque([start])
    while todo:
        for nxt in edges[todo.popleft()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def _check_reachability(d: ItemDefinition, table: dict[str, StateRef], report: Report) -> None:
    seen = _reachable(d, table, transition_edges(d, table))
    for name, ref in table.items():
        if name not in seen:
            report((*ref.path, "id"), f"状态 '{name}' 从初始状态不可达")
