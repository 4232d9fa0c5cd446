"""YAML to plain data, remembering where every value came from (line, column).

We compose the node graph ourselves instead of ``yaml.safe_load`` so that every schema or
semantic problem can point at ``file:line:col``, and so that alias expansion is bounded
("billion laughs" documents are refused instead of eating the machine).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from states.problems import Problem

Path_ = tuple[str | int, ...]

MAX_NODES = 20_000
MAX_DEPTH = 30


@dataclass(frozen=True)
class Position:
    line: int  # 1-based
    col: int  # 1-based


@dataclass
class Located:
    """Plain data plus a map from each value's path to its position in the source."""

    data: Any
    positions: dict[Path_, Position] = field(default_factory=dict)

    def at(self, path: Path_) -> Position:
        """Position of ``path`` or of its nearest located ancestor."""
        for cut in range(len(path), -1, -1):
            pos = self.positions.get(tuple(path[:cut]))
            if pos is not None:
                return pos
        return Position(1, 1)


class YamlError(Exception):
    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.message = message
        self.position = position


class _Lines:
    """Positions as editors count them: PyYAML also breaks lines at NEL, LS, PS and a lone CR,
    which would point a designer at a line their editor does not show."""

    def __init__(self, text: str) -> None:
        self.starts = [0, *(i + 1 for i, ch in enumerate(text) if ch == "\n")]

    def position(self, mark: yaml.Mark) -> Position:
        line = bisect.bisect_right(self.starts, mark.index) - 1
        return Position(line + 1, mark.index - self.starts[line] + 1)


def load_located(text: str, max_nodes: int = MAX_NODES) -> Located:
    """Compose ``text`` and walk it into data with each node's position. ``max_nodes`` bounds the
    walk, aliases expanded (a billion laughs stops there): an item definition's budget by default;
    a larger document (the alliance directory) passes its own."""
    lines = _Lines(text)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = lines.position(mark) if mark else Position(1, 1)
        raise YamlError(f"YAML 语法错误: {exc.problem or exc}", pos) from None
    except yaml.YAMLError as exc:
        raise YamlError(f"YAML 语法错误: {exc}", Position(1, 1)) from None
    except RecursionError:
        raise YamlError(f"嵌套过深: 超过 {MAX_DEPTH} 层", Position(1, 1)) from None
    if node is None:
        raise YamlError("文件为空", Position(1, 1))
    out = Located(data=None)
    budget = [max_nodes]
    constructor = SafeConstructor()

    def pos_of(n: yaml.Node) -> Position:
        return lines.position(n.start_mark)

    def walk(n: yaml.Node, path: Path_, depth: int) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise YamlError(f"文档过大: 超过 {max_nodes} 个节点 (别名展开也计入)", pos_of(n))
        if depth > MAX_DEPTH:
            raise YamlError(f"嵌套过深: 超过 {MAX_DEPTH} 层", pos_of(n))
        out.positions.setdefault(path, pos_of(n))
        if isinstance(n, yaml.MappingNode):
            result: dict[Any, Any] = {}
            for key_node, value_node in n.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise YamlError("映射的键必须是标量", pos_of(key_node))
                key = scalar(key_node)
                if key == "<<":
                    raise YamlError("不支持合并键 '<<'", pos_of(key_node))
                if not isinstance(key, (str, int, float, bool)) and key is not None:
                    raise YamlError("映射的键必须是字符串或数字", pos_of(key_node))
                if key in result:
                    raise YamlError(f"重复的键 '{key}'", pos_of(key_node))
                out.positions.setdefault((*path, key), pos_of(value_node))
                result[key] = walk(value_node, (*path, key), depth + 1)
            return result
        if isinstance(n, yaml.SequenceNode):
            return [walk(v, (*path, i), depth + 1) for i, v in enumerate(n.value)]
        return scalar(n)

    def scalar(n: yaml.Node) -> Any:
        try:
            return constructor.construct_object(n)
        except yaml.YAMLError as exc:
            raise YamlError(f"无法解析的值: {getattr(exc, 'problem', None) or exc}", pos_of(n)) from None

    out.data = walk(node, (), 0)
    return out


def load_mapping(text: str, path: str, *, max_bytes: int, top: str, error: Callable[[list[Problem]], Exception],
                 max_nodes: int = MAX_NODES) -> Located:
    """A catalog or directory file's YAML, bounded by size before parsing and by nodes while
    parsing, that must be a mapping; ``error(problems)`` raised with the located reason otherwise
    (``top``: what the mapping holds, for the message)."""
    if len(text.encode("utf-8")) > max_bytes:
        raise error([Problem(path, 1, 1, f"文件过大: 超过 {max_bytes} 字节")])
    try:
        located = load_located(text, max_nodes)
    except YamlError as exc:
        raise error([Problem(path, exc.position.line, exc.position.col, exc.message)]) from None
    if not isinstance(located.data, dict):
        raise error([Problem(path, 1, 1, f"顶层必须是映射 ({top})")])
    return located
