"""Load item definition files: YAML → located data → typed schema → semantic check."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from states import defaults, repair
from states.checker import check_semantics
from states.problems import Problem
from states.schema import ItemDefinition
from states.vocabulary import Vocabulary
from states.yamlpos import Located, load_located, load_mapping

MAX_FILE_BYTES = 512_000
M = TypeVar("M", bound=BaseModel)


@dataclass(frozen=True)
class LoadedItem:
    definition: ItemDefinition
    source: str
    content_hash: str
    path: str


class DefinitionError(Exception):
    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(p.format() for p in problems))
        self.problems = problems

    def __reduce__(self) -> tuple[type[DefinitionError], tuple[list[Problem]]]:
        return DefinitionError, (self.problems,)  # raised in a worker process, re-raised in the caller


def content_hash(source: str) -> str:
    return hashlib.sha256(source.encode("utf-8")).hexdigest()


def _schema_problems(err: ValidationError, located: Located, path: str) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = tuple(part for part in e["loc"] if not (isinstance(part, str) and "[" in part))
        pos = located.at(loc)
        field = ".".join(str(p) for p in loc) or "(根)"
        message = e["msg"].removeprefix("Value error, ")
        if e["type"] == "missing":
            message = "缺少必填字段"
        elif e["type"] == "extra_forbidden":
            message = "未知字段"
        problems.append(Problem(path, pos.line, pos.col, f"{field}: {message}"))
    return problems


def _checked_without_refused(located: Located, err: ValidationError, path: str, vocabulary: Vocabulary,
                             strict: bool) -> list[Problem]:
    """The checker's problems in the same round as the schema's (states.repair)."""
    fixed = repair.repaired(located, err)
    if fixed is None:
        return []
    definition, mapped, cut = fixed
    return [p for p in check_semantics(defaults.expand(definition), mapped, path, vocabulary, strict)
            if not repair.follows_from_cut(p.message, cut)]


def parse_item(source: str, path: str = "<text>", *, vocabulary: Vocabulary, strict: bool = True) -> LoadedItem:
    """Parse and check one definition against what is implemented; raise DefinitionError listing
    every problem."""
    located = load_mapping(source, path, max_bytes=MAX_FILE_BYTES, top="事项定义", error=DefinitionError)
    try:
        definition = ItemDefinition.model_validate(located.data)
    except ValidationError as err:
        raise DefinitionError(_schema_problems(err, located, path)
                              + _checked_without_refused(located, err, path, vocabulary, strict)) from None
    definition = defaults.expand(definition)  # 撤回 and 退回, without each item repeating them
    problems = check_semantics(definition, located, path, vocabulary, strict)
    if problems:
        raise DefinitionError(problems)
    return LoadedItem(definition, source, content_hash(source), path)


def parse_document(source: str, path: str, model: type[M], *, max_bytes: int, what: str) -> tuple[M, Located]:
    """Parse a YAML document of the catalog other than an item definition (a guide text) into
    ``model``, with the positions of its values; DefinitionError listing every problem at its
    line, as for a definition."""
    located = load_mapping(source, path, max_bytes=max_bytes, top=what, error=DefinitionError)
    try:
        return model.model_validate(located.data), located
    except ValidationError as err:
        raise DefinitionError(_schema_problems(err, located, path)) from None


def read_text(path: Path) -> str:
    """A catalog file's text; DefinitionError at its first line if it is no UTF-8 text or unreadable."""
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DefinitionError([Problem(str(path), 1, 1, f"不是 UTF-8 文本: {exc.reason}")]) from None
    except OSError as exc:
        raise DefinitionError([Problem(str(path), 1, 1, f"无法读取: {exc.strerror}")]) from None


def forms_dir(items_dir: Path, code: str) -> Path:
    """Where an item's blank forms and samples are kept: ``forms/<CODE>/`` beside the folder of
    its definitions (catalog/items → catalog/forms/<CODE>/)."""
    return items_dir.parent / "forms" / code


def _missing_forms(item: LoadedItem, path: Path) -> list[Problem]:
    """A blank form or sample a material names must be there to be handed out."""
    d, problems = item.definition, []
    folder = forms_dir(path.parent, d.code)
    located = None
    for i, m in enumerate(d.materials):
        for key in ("blank_form", "sample"):
            name = getattr(m, key)
            if name is None or (folder / name).is_file():
                continue
            located = located or load_located(item.source)
            pos = located.at(("materials", i, key))
            problems.append(Problem(str(path), pos.line, pos.col,
                                    f"材料 '{m.id}' 的{'空白表格' if key == 'blank_form' else '示例样表'}文件不存在: "
                                    f"forms/{d.code}/{name}"))
    return problems


def load_file(path: Path, *, vocabulary: Vocabulary) -> LoadedItem:
    source = read_text(path)
    item = parse_item(source, str(path), vocabulary=vocabulary)
    if problems := _missing_forms(item, path):
        raise DefinitionError(problems)
    return item


def iter_definition_files(paths: Iterable[Path]) -> Iterator[Path]:
    for p in paths:
        if p.is_dir():
            yield from sorted(q for q in p.rglob("*") if q.suffix in {".yaml", ".yml"})
        else:
            yield p


def load_catalog(directory: Path, *, vocabulary: Vocabulary) -> list[LoadedItem]:
    """Load every definition in a folder; any problem anywhere fails the whole catalog."""
    items, problems = [], []
    for f in iter_definition_files([directory]):
        try:
            items.append(load_file(f, vocabulary=vocabulary))
        except DefinitionError as err:
            problems.extend(err.problems)
    if problems:
        raise DefinitionError(problems)
    return items
