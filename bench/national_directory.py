"""A directory document for the whole 云牵手联盟 at its published size: 28 provinces, ~600 counters.

The seeds (shared/seeds, 001) put the alliance at "28个省(自治区、直辖市)的近600家政务服务单位".
This draws such a directory from real 行政区划代码 (GB/T 2260): the 28 provinces below (the 31
of the mainland less 西藏, 青海, 宁夏), in each its prefecture-level cities (districts for the four
municipalities, plus the alliance's founding districts: 青岛西海岸新区, 广州南沙, 深圳南山, 成都青白江),
333 regions in all. Each region has a 行政审批服务局 with a staffed 跨域通办专窗 (two clerks: intake,
and one who reviews and approves); every second region a 政务服务中心 unit too, with a
self-service booth supervised by the 专窗; every third region a guide-only 云指导 counter. That is
555 units, 611 counters, 28 provincial supervisors and about 1,000 clerks. The document is plain
YAML in the shape ``tongban directory import`` takes (docs/operations-directory.md), deterministic
(same output every time) so its content hash does not move between runs.

    python bench/national_directory.py > /tmp/national.yaml && tongban directory check /tmp/national.yaml
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from engine.idcodes import make_credit_code  # noqa: E402

# Province code, name, then "code name" of each region in it (the last four digits of the code).
PROVINCES: tuple[tuple[str, str, str], ...] = (
    ("11", "北京市", "0101 东城区,0102 西城区,0105 朝阳区,0106 丰台区,0107 石景山区,0108 海淀区,"
                   "0109 门头沟区,0111 房山区,0112 通州区,0113 顺义区,0114 昌平区"),
    ("12", "天津市", "0101 和平区,0102 河东区,0103 河西区,0104 南开区,0105 河北区,0106 红桥区,"
                   "0110 东丽区,0111 西青区,0112 津南区,0113 北辰区,0116 滨海新区"),
    ("13", "河北省", "0100 石家庄市,0200 唐山市,0300 秦皇岛市,0400 邯郸市,0500 邢台市,0600 保定市,"
                   "0700 张家口市,0800 承德市,0900 沧州市,1000 廊坊市,1100 衡水市"),
    ("14", "山西省", "0100 太原市,0200 大同市,0300 阳泉市,0400 长治市,0500 晋城市,0600 朔州市,"
                   "0700 晋中市,0800 运城市,0900 忻州市,1000 临汾市,1100 吕梁市"),
    ("15", "内蒙古自治区", "0100 呼和浩特市,0200 包头市,0300 乌海市,0400 赤峰市,0500 通辽市,"
                        "0600 鄂尔多斯市,0700 呼伦贝尔市,0800 巴彦淖尔市,0900 乌兰察布市"),
    ("21", "辽宁省", "0100 沈阳市,0200 大连市,0300 鞍山市,0400 抚顺市,0500 本溪市,0600 丹东市,"
                   "0700 锦州市,0800 营口市,0900 阜新市,1000 辽阳市,1100 盘锦市,1200 铁岭市,"
                   "1300 朝阳市,1400 葫芦岛市"),
    ("22", "吉林省", "0100 长春市,0200 吉林市,0300 四平市,0400 辽源市,0500 通化市,0600 白山市,"
                   "0700 松原市,0800 白城市"),
    ("23", "黑龙江省", "0100 哈尔滨市,0200 齐齐哈尔市,0300 鸡西市,0400 鹤岗市,0500 双鸭山市,"
                     "0600 大庆市,0700 伊春市,0800 佳木斯市,0900 七台河市,1000 牡丹江市,1100 黑河市,"
                     "1200 绥化市"),
    ("31", "上海市", "0101 黄浦区,0104 徐汇区,0105 长宁区,0106 静安区,0107 普陀区,0109 虹口区,"
                   "0110 杨浦区,0112 闵行区,0113 宝山区,0114 嘉定区,0115 浦东新区,0116 金山区,"
                   "0117 松江区,0118 青浦区,0120 奉贤区,0151 崇明区"),
    ("32", "江苏省", "0100 南京市,0200 无锡市,0300 徐州市,0400 常州市,0500 苏州市,0600 南通市,"
                   "0700 连云港市,0800 淮安市,0900 盐城市,1000 扬州市,1100 镇江市,1200 泰州市,"
                   "1300 宿迁市"),
    ("33", "浙江省", "0100 杭州市,0200 宁波市,0300 温州市,0400 嘉兴市,0500 湖州市,0600 绍兴市,"
                   "0700 金华市,0800 衢州市,0900 舟山市,1000 台州市,1100 丽水市"),
    ("34", "安徽省", "0100 合肥市,0200 芜湖市,0300 蚌埠市,0400 淮南市,0500 马鞍山市,0600 淮北市,"
                   "0700 铜陵市,0800 安庆市,1000 黄山市,1100 滁州市,1200 阜阳市,1300 宿州市,"
                   "1500 六安市,1600 亳州市,1700 池州市,1800 宣城市"),
    ("35", "福建省", "0100 福州市,0200 厦门市,0300 莆田市,0400 三明市,0500 泉州市,0600 漳州市,"
                   "0700 南平市,0800 龙岩市,0900 宁德市"),
    ("36", "江西省", "0100 南昌市,0200 景德镇市,0300 萍乡市,0400 九江市,0500 新余市,0600 鹰潭市,"
                   "0700 赣州市,0800 吉安市,0900 宜春市,1000 抚州市,1100 上饶市"),
    ("37", "山东省", "0100 济南市,0200 青岛市,0211 青岛市黄岛区(西海岸新区),0300 淄博市,0400 枣庄市,"
                   "0500 东营市,0600 烟台市,0700 潍坊市,0800 济宁市,0900 泰安市,1000 威海市,"
                   "1100 日照市,1300 临沂市,1400 德州市,1500 聊城市,1600 滨州市,1700 菏泽市"),
    ("41", "河南省", "0100 郑州市,0200 开封市,0300 洛阳市,0400 平顶山市,0500 安阳市,0600 鹤壁市,"
                   "0700 新乡市,0800 焦作市,0900 濮阳市,1000 许昌市,1100 漯河市,1200 三门峡市,"
                   "1300 南阳市,1400 商丘市,1500 信阳市,1600 周口市,1700 驻马店市"),
    ("42", "湖北省", "0100 武汉市,0200 黄石市,0300 十堰市,0500 宜昌市,0600 襄阳市,0700 鄂州市,"
                   "0800 荆门市,0900 孝感市,1000 荆州市,1100 黄冈市,1200 咸宁市,1300 随州市"),
    ("43", "湖南省", "0100 长沙市,0200 株洲市,0300 湘潭市,0400 衡阳市,0500 邵阳市,0600 岳阳市,"
                   "0700 常德市,0800 张家界市,0900 益阳市,1000 郴州市,1100 永州市,1200 怀化市,"
                   "1300 娄底市"),
    ("44", "广东省", "0100 广州市,0115 广州市南沙区,0200 韶关市,0300 深圳市,0305 深圳市南山区,"
                   "0400 珠海市,0500 汕头市,0600 佛山市,0700 江门市,0800 湛江市,0900 茂名市,"
                   "1200 肇庆市,1300 惠州市,1400 梅州市,1500 汕尾市,1600 河源市,1700 阳江市,"
                   "1800 清远市,1900 东莞市,2000 中山市,5100 潮州市,5200 揭阳市,5300 云浮市"),
    ("45", "广西壮族自治区", "0100 南宁市,0200 柳州市,0300 桂林市,0400 梧州市,0500 北海市,"
                          "0600 防城港市,0700 钦州市,0800 贵港市,0900 玉林市,1000 百色市,"
                          "1100 贺州市,1200 河池市,1300 来宾市,1400 崇左市"),
    ("46", "海南省", "0100 海口市,0200 三亚市,0300 三沙市,0400 儋州市"),
    ("50", "重庆市", "0101 万州区,0102 涪陵区,0103 渝中区,0104 大渡口区,0105 江北区,0106 沙坪坝区,"
                   "0107 九龙坡区,0108 南岸区,0109 北碚区,0112 渝北区,0113 巴南区"),
    ("51", "四川省", "0100 成都市,0113 成都市青白江区,0300 自贡市,0400 攀枝花市,0500 泸州市,"
                   "0600 德阳市,0700 绵阳市,0800 广元市,0900 遂宁市,1000 内江市,1100 乐山市,"
                   "1300 南充市,1400 眉山市,1500 宜宾市,1600 广安市,1700 达州市,1800 雅安市,"
                   "1900 巴中市,2000 资阳市"),
    ("52", "贵州省", "0100 贵阳市,0200 六盘水市,0300 遵义市,0400 安顺市,0500 毕节市,0600 铜仁市"),
    ("53", "云南省", "0100 昆明市,0300 曲靖市,0400 玉溪市,0500 保山市,0600 昭通市,0700 丽江市,"
                   "0800 普洱市,0900 临沧市"),
    ("61", "陕西省", "0100 西安市,0200 铜川市,0300 宝鸡市,0400 咸阳市,0500 渭南市,0600 延安市,"
                   "0700 汉中市,0800 榆林市,0900 安康市,1000 商洛市"),
    ("62", "甘肃省", "0100 兰州市,0200 嘉峪关市,0300 金昌市,0400 白银市,0500 天水市,0600 武威市,"
                   "0700 张掖市,0800 平凉市,0900 酒泉市,1000 庆阳市,1100 定西市,1200 陇南市"),
    ("65", "新疆维吾尔自治区", "0100 乌鲁木齐市,0200 克拉玛依市,0400 吐鲁番市,0500 哈密市"),
)

# What a 专窗 takes in and decides (the demo's 跨域通办专窗 list), what a booth takes in, what a
# 云指导 counter only guides.
STAFFED_ITEMS = {code: ["intake", "competent"] for code in (
    "GGCSWSXK", "FGSFZRBG", "CBWLSXK", "GTGSHSLDJ", "YXGSSLDJ", "SPJYXK", "YDJYBA", "YLBXZYJX", "GJJZYJX")}
STAFFED_ITEMS["MBXXZZHB"] = ["intake"]  # 民办学校: the education and market departments decide
BOOTH_ITEMS = {code: ["intake"] for code in ("GTGSHSLDJ", "YXGSSLDJ", "SPJYXK", "YDJYBA", "YLBXZYJX", "GJJZYJX")}
GUIDE_ITEMS = {code: ["guide"] for code in ("CBWLSXK", "GTGSHSLDJ", "YXGSSLDJ")}


# The demo's 文号 scheme (catalog/alliance.yaml): every unit numbers its notices with these words.
DOCUMENT_NUMBERS = {"format": "{abbr}{word}〔{year}〕{seq:05d}号", "words": {
    "receipt": "收", "acceptance": "受", "refusal": "不受", "supplement": "补", "extension": "延",
    "special_procedure": "特", "rejection": "不许", "approval": "准许", "service": "送", "certificate": "证"}}


def regions() -> list[tuple[str, str, str]]:
    """(code, full name, province code) of every region, in code order within each province."""
    out = []
    for prov, prov_name, cities in PROVINCES:
        for entry in cities.split(","):
            tail, name = entry.split(" ", 1)
            # A district of a city already named ("青岛市黄岛区") or of a municipality ("北京市东城区").
            out.append((prov + tail, prov_name + name, prov))
    return out


def _short(name: str) -> str:
    """The place as a 机关代字 uses it: 济南市 → 济南, 青岛市黄岛区(西海岸新区) → 黄岛."""
    place = name.split("(")[0]
    for suffix in ("市", "新区", "区"):
        if place.endswith(suffix) and len(place) > 2:
            place = place[: -len(suffix)]
            break
    return place.split("市")[-1][:4] or place[:4]


def _credit_code(region: str, n: int) -> str:
    """A well-formed 统一社会信用代码 for a 机关 (11) in the region; the organisation code from a hash."""
    digits = str(int(hashlib.sha256(f"{region}:{n}".encode()).hexdigest(), 16))[:6]
    return make_credit_code(f"11{region}MB{digits}")


def document() -> dict[str, Any]:
    """The directory document: regions, units, counters, clerks (plain data, YAML-ready)."""
    doc: dict[str, Any] = {"regions": [], "document_numbers": DOCUMENT_NUMBERS, "units": [], "counters": [],
                           "clerks": []}
    by_province: dict[str, list[str]] = {}
    for i, (code, name, prov) in enumerate(regions()):
        place = name.removeprefix(dict((p, n) for p, n, _ in PROVINCES)[prov])
        short = _short(place)
        doc["regions"].append({"code": code, "name": name})
        by_province.setdefault(prov, []).append(code)
        unit = f"u{code}-shenpi"
        doc["units"].append({"id": unit, "name": f"{place}行政审批服务局", "code": _credit_code(code, 1),
                             "region": code, "abbr": f"{short}审"})
        staffed = f"c{code}-kuayu"
        doc["counters"].append({"id": staffed, "name": f"{place}政务服务中心跨域通办专窗", "unit": unit,
                                "region": code, "kind": "staffed", "items": dict(STAFFED_ITEMS)})
        doc["clerks"].append({"name": f"{short}收件员", "counter": staffed, "roles": ["clerk"]})
        doc["clerks"].append({"name": f"{short}审批员", "counter": staffed,
                              "roles": ["clerk", "reviewer", "approver"]})
        if i % 2 == 0 or i % 3 == 0:
            center = f"u{code}-zhongxin"
            doc["units"].append({"id": center, "name": f"{place}政务服务中心", "code": _credit_code(code, 2),
                                 "region": code, "abbr": f"{short}政服"})
        if i % 2 == 0:
            booth = f"c{code}-zizhu"
            doc["counters"].append({"id": booth, "name": f"{place}政务服务中心自助终端", "unit": center,
                                    "region": code, "kind": "self_service", "supervised_by": staffed,
                                    "items": dict(BOOTH_ITEMS)})
            doc["clerks"].append({"name": f"{short}自助终端", "counter": booth, "roles": ["clerk"]})
        if i % 3 == 0:
            guide = f"c{code}-zhidao"
            doc["counters"].append({"id": guide, "name": f"{place}政务服务中心云指导窗口", "unit": center,
                                    "region": code, "kind": "guide_only", "items": dict(GUIDE_ITEMS)})
            doc["clerks"].append({"name": f"{short}指导员", "counter": guide, "roles": ["clerk"]})
    for prov, prov_name, _ in PROVINCES:
        doc["clerks"].append({"name": f"{prov_name}督查", "counter": None, "roles": ["supervisor"],
                              "regions": by_province[prov]})
    doc["clerks"].append({"name": "联盟目录管理员", "counter": None, "roles": ["directory_admin"]})
    return doc


def text() -> str:
    head = ("# 云牵手联盟目录 (模拟): 28 个省级行政区, 真实行政区划代码; bench/national_directory.py 生成, 勿手改\n")
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml's: 350 KB in a fraction of a second
    return head + yaml.dump(document(), Dumper=dumper, allow_unicode=True, sort_keys=False, width=120)


def write(path: Path) -> Path:
    path.write_text(text(), encoding="utf-8")
    return path


if __name__ == "__main__":
    sys.stdout.write(text())
