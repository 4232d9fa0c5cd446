"""The booth's name-character table (api/static/kiosk-names.json) is what ``tongban kiosk
name-table`` makes from jieba's person names and pypinyin: shipped as generated, every syllable's
characters read so, common surnames ranked as names use them."""

from __future__ import annotations

import json
from pathlib import Path

from cli.kiosk_names import SURNAMES, TABLE, write


def test_the_shipped_table_is_the_generated_one_and_ranks_name_characters_first(tmp_path: Path) -> None:
    made = write(tmp_path / "kiosk-names.json")
    # Byte for byte: regenerate with `tongban kiosk name-table` when jieba or pypinyin change.
    assert made.read_bytes() == TABLE.read_bytes()
    shipped = json.loads(TABLE.read_text(encoding="utf-8"))
    given = {c: i for i, c in enumerate(shipped["given"])}
    assert len(given) == len(shipped["given"]) >= 6763  # GB 2312 at least, each character once
    assert set(shipped["surnames"]) == set(SURNAMES) and shipped["surnames"][:3] == "王李张"

    def offered(syllable: str) -> str:
        return "".join(sorted(shipped["syllables"][syllable], key=given.get))

    assert "张" in shipped["syllables"]["zhang"] and shipped["surnames"].index("张") < shipped["surnames"].index("章")
    assert "伟" in offered("wei")[:3] and offered("ming")[0] == "明"  # common in names, before 未 or 命
    assert "吕" in shipped["syllables"]["lv"] and "曾" in shipped["syllables"]["zeng"]  # ü as v; a surname's reading
    assert all(s.isascii() and s.isalpha() and s.islower() for s in shipped["syllables"])
    assert set().union(*map(set, shipped["syllables"].values())) == set(given)  # every character can be spelt
