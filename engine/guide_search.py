"""「我要办 X 需要什么」: ranking the catalog's items for a Chinese question, in-process.

Three kinds of term, ranked together by Okapi BM25 over weighted fields (the item's name and its
colloquial aliases count most):

- **character n-grams** of the Chinese runs: bigrams carry the meaning (营业/业执/执照), unigrams
  tolerate a wrong or missing character;
- **words** cut by jieba (search mode: a long word and the words inside it), its dictionary
  extended with the catalog's own names and aliases so that 个体工商户 or 异地就医 stay whole: a
  real word of the question counts beyond the bigrams that straddle two words;
- **Latin tokens**: pinyin initials and abbreviations kept as aliases (``yyzz``), and, derived with
  pypinyin from every name and alias, the full pinyin and the initials of each run of its words
  (异地就医备案 → ``yidijiuyibeian``, ``ydjyba``; 公积金 → ``gongjijin``). A Latin token of the
  question matches such a term exactly, as its prefix (``gongjij``), or — four letters or more —
  within one edit (``gonjijin``), each a little below the one before.

The question words every phrasing shares (我想 … 需要什么材料) are dropped.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import jieba
from pypinyin import Style, lazy_pinyin

MAX_QUERY = 200
_RUN = re.compile(r"[\u3400-\u9fff]+|[a-z0-9]+")
# Characters of the question around the subject, not the subject.
_STOP_CHARS = set("我你他她它们的了吗呢吧啊要想需该请问怎么如何什么哪些个去在到给把被和与及或是有没办理能可以用带")
_STOP_BIGRAMS = {"需要", "什么", "怎么", "如何", "哪些", "材料", "办理", "可以", "我想", "我要", "想要", "应该",
                 "请问", "要带", "手续", "流程", "资料", "准备", "一下", "提交", "申请", "办个", "怎样"}
_STOP_WORDS = _STOP_BIGRAMS | {"怎么办", "怎么样", "什么样", "需要什么", "要什么", "办什么", "哪里", "多久",
                               "多少", "多少钱", "东西", "证件", "需不需要", "要不要", "是不是", "有没有"}
K1, B = 1.4, 0.6
RELATIVE_FLOOR = 0.25
WORD = "w:"  # jieba's words, apart from the bigrams they may equal
PREFIX_FACTOR, TYPO_FACTOR = 0.8, 0.6
MIN_PREFIX, MIN_TYPO = 2, 4
MAX_RUN_WORDS = 6  # pinyin of runs of at most this many words of a name

jieba.setLogLevel(logging.WARNING)


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


@lru_cache(maxsize=1)
def _base() -> jieba.Tokenizer:
    """jieba with its own dictionary, loaded once per process (~0.4 s)."""
    t = jieba.Tokenizer()
    t.initialize()
    return t


def segmenter(words: Iterable[str]) -> jieba.Tokenizer:
    """jieba's dictionary extended with ``words`` (the catalog's names and aliases), in a copy:
    an index built from another catalog never sees these."""
    base = _base()
    t = jieba.Tokenizer()
    t.FREQ, t.total, t.initialized = dict(base.FREQ), base.total, True
    for w in sorted(set(words)):
        t.add_word(w)
    return t


def _ngrams(run: str) -> list[str]:
    out = [c for c in run if c not in _STOP_CHARS]
    out.extend(a + b for a, b in zip(run, run[1:], strict=False) if a + b not in _STOP_BIGRAMS)
    return out


def _words(run: str, cut: jieba.Tokenizer) -> list[str]:
    return [WORD + w for w in cut.lcut_for_search(run, HMM=False)
            if len(w) >= 2 and w not in _STOP_WORDS and not set(w) <= _STOP_CHARS]


def tokens(text: str, cut: jieba.Tokenizer | None = None) -> list[str]:
    out: list[str] = []
    for run in _RUN.findall(normalise(text)):
        if run.isascii():
            out.append(run)
            continue
        out.extend(_ngrams(run))
        if cut is not None:
            out.extend(_words(run, cut))
    return out


def pinyin_terms(name: str) -> set[str]:
    """The full pinyin and the initials of every run of words of ``name`` (cut by jieba's own
    dictionary: 基本/医疗保险/跨省/异地/就医/备案), so that any run is found by its prefix."""
    out: set[str] = set()
    for run in _RUN.findall(normalise(name)):
        if run.isascii():
            continue
        words = _base().lcut(run, HMM=False)
        for i in range(len(words)):
            for j in range(i + 1, min(len(words), i + MAX_RUN_WORDS) + 1):
                chunk = "".join(words[i:j])
                full = "".join(lazy_pinyin(chunk, style=Style.NORMAL, errors="ignore"))
                initials = "".join(lazy_pinyin(chunk, style=Style.FIRST_LETTER, errors="ignore"))
                out.update(t for t in (full, initials) if len(t) >= 2 and t.isascii() and t.isalpha())
    return out


def within_one_edit(a: str, b: str) -> bool:
    """Levenshtein distance of at most 1 (one letter wrong, missing or extra)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) > len(b):
        a, b = b, a
    i = 0
    while i < len(a) and a[i] == b[i]:
        i += 1
    return a[i + 1:] == b[i + 1:] if len(a) == len(b) else a[i:] == b[i + 1:]


@dataclass
class Document:
    key: str
    fields: Sequence[tuple[str, float]]  # (text, weight)
    names: Sequence[str] = ()  # name and aliases: their pinyin is indexed, and jieba learns them
    pinyin_weight: float = 1.0  # below an alias written out (yyzz): derived terms are shared more
    terms: Counter[str] = field(default_factory=Counter)
    length: float = 0.0


class Index:
    def __init__(self, docs: Iterable[Document]) -> None:
        self.docs = list(docs)
        self.cut = segmenter(w for d in self.docs for name in d.names for w in _RUN.findall(normalise(name))
                             if not w.isascii() and len(w) >= 2)
        df: Counter[str] = Counter()
        for d in self.docs:
            for text, weight in d.fields:
                for t in tokens(text, self.cut):
                    d.terms[t] += weight  # type: ignore[assignment]
            d.length = sum(d.terms.values())  # the derived pinyin below does not lengthen an item
            derived: set[str] = set()
            for name in d.names:
                derived |= pinyin_terms(name)
            for t in derived:
                d.terms[t] += d.pinyin_weight  # type: ignore[assignment]
            df.update(d.terms.keys())
        n = len(self.docs) or 1
        self.avg = sum(d.length for d in self.docs) / n or 1.0
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}
        self.latin = sorted(t for t in self.idf if t.isascii() and t.isalpha())

    def expand(self, token: str) -> list[tuple[str, float]]:
        """The indexed terms a token of the question stands for, each with its factor: itself; for
        a Latin token also the terms it begins (pinyin typed so far) and those one edit away."""
        if not (token.isascii() and token.isalpha()):
            return [(token, 1.0)] if token in self.idf else []
        out = [(token, 1.0)] if token in self.idf else []
        for t in self.latin:
            if t == token:
                continue
            if len(token) >= MIN_PREFIX and t.startswith(token):
                out.append((t, PREFIX_FACTOR))
            elif len(token) >= MIN_TYPO and within_one_edit(token, t):
                out.append((t, TYPO_FACTOR))
        return out

    def _bm25(self, d: Document, term: str) -> float:
        tf = d.terms.get(term)
        if not tf:
            return 0.0
        return self.idf[term] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * d.length / self.avg))

    def search(self, query: str, limit: int = 5) -> list[tuple[str, float]]:
        q = Counter(tokens(query[:MAX_QUERY], self.cut))
        expanded = [(qf, self.expand(t)) for t, qf in q.items()]
        scored = []
        for d in self.docs:
            s = 0.0
            for qf, terms in expanded:
                # A token counts once per item, by the best of the terms it stands for.
                s += qf * max((f * self._bm25(d, t) for t, f in terms), default=0.0)
            if s > 0:
                scored.append((d.key, round(s, 4)))
        scored.sort(key=lambda x: (-x[1], x[0]))
        # Items sharing a stray character with the question are not answers: a tail far below
        # the best is left off.
        best = scored[0][1] if scored else 0.0
        return [x for x in scored if x[1] >= RELATIVE_FLOOR * best][:limit]
