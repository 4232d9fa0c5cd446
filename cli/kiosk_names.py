"""The booth's name-character table (api/static/kiosk-names.json), generated once by
``tongban kiosk name-table`` and shipped as a static file for the touch pinyin keyboard.

What the page needs: for each pinyin syllable (toneless, ü written v as on a pinyin keyboard)
the characters read so, and two rankings:

- ``surnames``: common surnames (the list below), most frequent in names first;
- ``given``: every character of the table, most frequent in given names first.

Frequencies come from the person names (tag ``nr``) of jieba's dictionary — the names of a large
Chinese corpus — counting the three-character names that start with a common surname: the first
character as a surname, the other two as given-name characters. Characters no counted name uses
follow, ranked by jieba's general character frequency, so any GB 2312 character can be typed. The
readings are pypinyin's, plus the readings a character takes as a surname or in names that differ
from its most common one (曾 zēng, 单 shàn, 长 cháng …).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import jieba
import typer
from pypinyin import lazy_pinyin

from core.settings import ROOT

TABLE = ROOT / "api" / "static" / "kiosk-names.json"
kiosk_app = typer.Typer(help="自助服务终端: 生成屏幕拼音键盘的姓名用字表", no_args_is_help=True)

# Common Chinese surnames (single characters; a compound one, 欧阳 or 司马, is typed character by
# character). Membership only: the ranking is counted from the names.
SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何林高罗郑梁谢宋唐许韩邓冯曹彭曾肖田董潘袁蔡蒋余于杜叶程魏苏吕丁任"
    "卢姚沈钟姜崔谭陆范汪廖石金韦贾夏付傅方邹熊白孟秦邱侯江尹薛闫阎段雷龙黎史陶贺毛郝顾龚邵万覃武钱戴严莫"
    "孔向常汤康易乔赖文施洪辛柯庄兰左牛聂包鲁樊葛章殷焦齐关祝伍岳翟申耿倪单涂邢温俞季庞阮柴詹管裴骆牟"
    "纪邬滕苗甘凌解车梅卞褚符屈房景宁晏奚荣宫边缪商臧时霍毕成饶华苟喻颜谷蓝欧司上诸麦区查朴盖乐仇蒙"
    "全冉米祁艾宗凤卜路舒尚柳戚帅巫练邝揭"
)
# Readings a character takes as a surname or in given names beside pypinyin's first one.
NAME_READINGS = {
    "曾": "zeng", "单": "shan", "解": "xie", "仇": "qiu", "区": "ou", "查": "zha", "朴": "piao", "盖": "ge",
    "乐": "yue", "覃": "qin", "缪": "miao", "翟": "zhai", "尉": "yu", "长": "chang", "行": "xing", "朝": "zhao",
    "重": "chong", "颉": "xie", "召": "shao", "员": "yun", "宿": "su", "种": "chong", "秘": "bi",
}


def _cjk(word: str) -> bool:
    return all("\u4e00" <= c <= "\u9fff" for c in word)


def _gb2312() -> list[str]:
    """The 6,763 characters of GB 2312 (levels 1 and 2: rows 16–87)."""
    chars = []
    for row in range(0xB0, 0xF8):
        for cell in range(0xA1, 0xFF):
            try:
                chars.append(bytes((row, cell)).decode("gb2312"))
            except UnicodeDecodeError:
                continue
    return chars


def build() -> dict[str, object]:
    surnames = set(SURNAMES)
    as_surname: Counter[str] = Counter()
    as_given: Counter[str] = Counter()
    general: Counter[str] = Counter()
    dictionary = Path(jieba.__file__).parent / "dict.txt"
    with dictionary.open(encoding="utf-8") as f:
        for line in f:
            word, freq, tag = line.split()
            if len(word) == 1 and _cjk(word):
                general[word] += int(freq)
            if tag == "nr" and len(word) == 3 and word[0] in surnames and _cjk(word):
                as_surname[word[0]] += 1
                as_given.update(word[1:])
    chars = set(_gb2312()) | set(as_given) | surnames

    def given_key(c: str) -> tuple[int, int, str]:
        return -as_given[c], -general[c], c

    given = sorted(chars, key=given_key)
    ranked_surnames = sorted(surnames, key=lambda c: (-as_surname[c], -general[c], c))
    syllables: dict[str, list[str]] = {}
    for c in given:
        readings = [lazy_pinyin(c, v_to_u=False)[0]]
        if c in NAME_READINGS:
            readings.append(NAME_READINGS[c])
        for r in dict.fromkeys(readings):
            if r.isascii() and r.isalpha():
                syllables.setdefault(r, []).append(c)
    return {
        "about": "通办自助终端姓名拼音表: 由 cli/kiosk_names.py 从 jieba 词典中的人名与 pypinyin 读音生成",
        "surnames": "".join(ranked_surnames),
        "given": "".join(given),
        "syllables": {s: "".join(cs) for s, cs in sorted(syllables.items())},
    }


def write(path: Path = TABLE) -> Path:
    path.write_text(json.dumps(build(), ensure_ascii=False, separators=(",", ":")) + "\n", encoding="utf-8")
    return path


@kiosk_app.command("name-table")
def name_table() -> None:
    """重新生成自助终端的姓名用字表 (api/static/kiosk-names.json)。"""
    path = write()
    typer.echo(f"已写入 {path.relative_to(ROOT)} ({path.stat().st_size} 字节)")
