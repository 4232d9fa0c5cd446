"""「我要办 X 需要什么」: ranking the catalog's items for a Chinese question, in-process.

No segmenter is installed here, so text is cut into character unigrams and bigrams (CJK) and
words (Latin letters and digits: pinyin initials such as ``yyzz`` kept as aliases in the guides).
Bigrams carry the meaning (营业/业执/执照), unigrams tolerate a wrong or missing character; the
question words every phrasing shares (我想 … 需要什么材料) are dropped. Ranking is Okapi BM25
over weighted fields: the item's name and its colloquial aliases count most.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

MAX_QUERY = 200
_RUN = re.compile(r"[\u3400-\u9fff]+|[a-z0-9]+")
# Characters of the question around the subject, not the subject.
_STOP_CHARS = set("我你他她它们的了吗呢吧啊要想需该请问怎么如何什么哪些个去在到给把被和与及或是有没办理能可以用带")
_STOP_BIGRAMS = {"需要", "什么", "怎么", "如何", "哪些", "材料", "办理", "可以", "我想", "我要", "想要", "应该",
                 "请问", "要带", "手续", "流程", "资料", "准备", "一下", "提交", "申请", "办个", "怎样"}
K1, B = 1.4, 0.6
RELATIVE_FLOOR = 0.25


def normalise(text: str) -> str:
    return unicodedata.normalize("NFKC", text).lower()


def tokens(text: str) -> list[str]:
    out: list[str] = []
    for run in _RUN.findall(normalise(text)):
        if run.isascii():
            out.append(run)
            continue
        out.extend(c for c in run if c not in _STOP_CHARS)
        out.extend(a + b for a, b in zip(run, run[1:], strict=False) if a + b not in _STOP_BIGRAMS)
    return out


@dataclass
class Document:
    key: str
    fields: Sequence[tuple[str, float]]  # (text, weight)
    terms: Counter[str] = field(default_factory=Counter)
    length: float = 0.0


class Index:
    def __init__(self, docs: Iterable[Document]) -> None:
        self.docs = list(docs)
        df: Counter[str] = Counter()
        for d in self.docs:
            for text, weight in d.fields:
                for t in tokens(text):
                    d.terms[t] += weight  # type: ignore[assignment]
            d.length = sum(d.terms.values())
            df.update(d.terms.keys())
        n = len(self.docs) or 1
        self.avg = sum(d.length for d in self.docs) / n or 1.0
        self.idf = {t: math.log(1 + (n - c + 0.5) / (c + 0.5)) for t, c in df.items()}

    def search(self, query: str, limit: int = 5) -> list[tuple[str, float]]:
        q = Counter(tokens(query[:MAX_QUERY]))
        scored = []
        for d in self.docs:
            s = 0.0
            for t, qf in q.items():
                tf = d.terms.get(t)
                if tf:
                    s += qf * self.idf[t] * tf * (K1 + 1) / (tf + K1 * (1 - B + B * d.length / self.avg))
            if s > 0:
                scored.append((d.key, round(s, 4)))
        scored.sort(key=lambda x: (-x[1], x[0]))
        # Items sharing a stray character with the question are not answers: a tail far below
        # the best is left off.
        best = scored[0][1] if scored else 0.0
        return [x for x in scored if x[1] >= RELATIVE_FLOOR * best][:limit]
