"""One registry object per kind of extension (guard, job, video step, …).

An extension is declared once, where it is implemented, with its name and its zh-CN label:

    @JOBS.register("handoff", "跨域移交")
    def handoff(engine, job): ...

so a name cannot exist without an implementation, nor an implementation without a label. What
item definitions may name is read from these registries, never from a second list.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar

T = TypeVar("T")

NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
CJK = re.compile(r"[\u4e00-\u9fff]")


class RegistryError(Exception):
    """A declaration that cannot be accepted; raised at import time, so it never reaches a clerk."""


@dataclass(frozen=True)
class Entry(Generic[T]):
    name: str
    label: str  # zh-CN, shown to designers and clerks
    impl: T
    module: str  # where it is implemented, for error messages and the completeness test
    meta: Mapping[str, Any] = field(default_factory=dict)


def entry_problems(kind: str, entry: Entry[Any]) -> list[str]:
    """What is wrong with one entry: the completeness rules every registry keeps."""
    problems = []
    if not NAME.match(entry.name):
        problems.append(f"{kind} '{entry.name}': 名称须为小写字母开头的标识符")
    if not entry.label.strip() or not CJK.search(entry.label):
        problems.append(f"{kind} '{entry.name}': 缺少中文标签")
    if entry.impl is None or not callable(entry.impl):
        problems.append(f"{kind} '{entry.name}': 没有实现")
    return problems


class Registry(Generic[T]):
    """Name → (label, implementation) for one kind, filled by decorators at import time."""

    def __init__(self, kind: str) -> None:
        self.kind = kind  # zh-CN, as in "未知的自动任务"
        self._entries: dict[str, Entry[T]] = {}

    def register(self, name: str, label: str, **meta: Any) -> Callable[[T], T]:
        def add(impl: T) -> T:
            self.add(name, label, impl, **meta)
            return impl

        return add

    def add(self, name: str, label: str, impl: T, **meta: Any) -> None:
        module = getattr(impl, "__module__", None) or "?"
        entry = Entry(name, label, impl, module, MappingProxyType(dict(meta)))
        problems = entry_problems(self.kind, entry)
        if problems:
            raise RegistryError("; ".join(problems))
        known = self._entries.get(name)
        if known is not None and known.impl is not impl:
            raise RegistryError(f"{self.kind} '{name}' 重复声明: {known.module} 与 {module}")
        self._entries[name] = entry

    def __getitem__(self, name: str) -> Entry[T]:
        return self._entries[name]

    def get(self, name: str) -> Entry[T] | None:
        return self._entries.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry[T]]:
        return iter(self._entries.values())

    def __len__(self) -> int:
        return len(self._entries)

    def labels(self) -> dict[str, str]:
        return {e.name: e.label for e in self._entries.values()}
