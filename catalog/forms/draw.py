"""Draws the demo catalog's blank forms (空白表格) and filled-in samples (填写示例) into
forms/<CODE>/: one A4 page each, the fields as the issuing authority's form lists them, the CJK
font embedded. Run again after changing a form: ``.venv/bin/python catalog/forms/draw.py``."""

from __future__ import annotations

import sys
from pathlib import Path

from reportlab.lib.colors import Color, black
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent.parent))

from engine.fonts import cjk_font  # noqa: E402

NOTE = "本表为通办演示目录所附表格, 式样以受理机关公布的最新版本为准。"
# file → (title, [(field, sample value)], sample file or None)
FORMS: dict[str, dict[str, tuple[str, list[tuple[str, str]], str | None]]] = {
    "GTGSHSLDJ": {"个体工商户登记申请书.pdf": ("个体工商户登记(备案)申请书", [
        ("个体工商户名称", "济南市历下区某某奶茶店"), ("经营者姓名", "张三"), ("身份证件号码", "370102199001011234"),
        ("组成形式", "个人经营"), ("经营场所", "山东省济南市历下区经十路 100 号"), ("经营范围", "饮品店; 食品销售"),
        ("资金数额 (万元)", "10"), ("联系电话", "13800138000")], None)},
    "SPJYXK": {"食品经营许可申请书.pdf": ("食品经营许可申请书", [
        ("经营者名称", "济南某某餐饮管理有限公司"), ("统一社会信用代码", "91370100MA3C4K2L43"),
        ("法定代表人 (负责人)", "李四"), ("经营场所", "山东省济南市历下区经十路 100 号"),
        ("主体业态", "餐饮服务经营者 · 小型餐馆"), ("经营项目", "热食类食品制售; 冷食类食品制售"),
        ("申请类型", "新办 / 延续 / 变更 (请勾选)"), ("联系电话", "13800138000")],
        "食品经营许可申请书填写示例.pdf")},
    "YDJYBA": {"跨省异地就医备案表.pdf": ("参保人员跨省异地就医备案表", [
        ("参保人姓名", "王五"), ("社会保障号码", "370102195501011234"), ("参保地", "山东省济南市"),
        ("备案类型", "异地长期居住 / 常驻异地工作 / 异地转诊 / 临时外出"), ("就医地", "上海市浦东新区"),
        ("备案开始日期", "2026 年 12 月 1 日"), ("联系电话", "13800138000"), ("承诺", "本人承诺所填信息真实")],
        "跨省异地就医备案表填写示例.pdf")},
    "YXGSSLDJ": {"公司登记申请书.pdf": ("公司登记(备案)申请书", [
        ("公司名称", "青岛某某科技有限公司"), ("住所", "山东省青岛市黄岛区长江中路 216 号"),
        ("法定代表人", "赵六"), ("注册资本 (万元)", "100"), ("公司类型", "有限责任公司"),
        ("经营范围", "技术服务、技术开发"), ("股东 (发起人)", "赵六 60%; 钱七 40%"), ("联系电话", "0532-86000000")],
        None),
        "有限责任公司章程示范文本.pdf": ("有限责任公司章程 (示范文本)", [
        ("第一章 总则", "公司名称、住所、经营范围"), ("第二章 注册资本", "股东的出资方式、出资额和出资时间"),
        ("第三章 股东会", "职权、议事方式和表决程序"), ("第四章 董事会或董事", "组成、职权、任期"),
        ("第五章 监事", "设置与职权"), ("第六章 法定代表人", "由董事长 (执行董事) 或经理担任"),
        ("第七章 附则", "股东签名、盖章, 年 月 日")], None)},
}


def draw(path: Path, title: str, fields: list[tuple[str, str]], filled: bool) -> None:
    font = cjk_font()
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setTitle(title + (" 填写示例" if filled else ""))
    width, height = A4
    c.setFont(font, 18)
    c.drawCentredString(width / 2, height - 30 * mm, title)
    c.setFont(font, 11)
    c.drawCentredString(width / 2, height - 38 * mm, "(填写示例)" if filled else "(空白表格)")
    top, row, left, mid, right = height - 50 * mm, 14 * mm, 20 * mm, 70 * mm, width - 20 * mm
    c.setLineWidth(0.6)
    for i, (label, value) in enumerate(fields):
        y = top - i * row
        c.rect(left, y - row, right - left, row)
        c.line(mid, y - row, mid, y)
        c.setFillColor(black)
        c.drawString(left + 3 * mm, y - row / 2 - 1.5 * mm, label)
        if filled:
            c.setFillColor(Color(0.1, 0.25, 0.7))
            c.drawString(mid + 3 * mm, y - row / 2 - 1.5 * mm, value)
    y = top - len(fields) * row - 16 * mm
    c.setFillColor(black)
    c.drawString(left, y, "申请人 (签字或盖章):" + ("  张三" if filled else ""))
    c.drawString(right - 60 * mm, y, "日期:     年    月    日")
    c.setFont(font, 9)
    c.drawString(left, 20 * mm, NOTE)
    if filled:
        c.saveState()
        c.setFillColor(Color(0.8, 0.1, 0.1, alpha=0.18))
        c.setFont(font, 80)
        c.translate(width / 2, height / 2)
        c.rotate(35)
        c.drawCentredString(0, 0, "填写示例")
        c.restoreState()
    c.showPage()
    c.save()


def main() -> None:
    for code, files in FORMS.items():
        folder = HERE / code
        folder.mkdir(exist_ok=True)
        for name, (title, fields, sample) in files.items():
            draw(folder / name, title, fields, filled=False)
            if sample:
                draw(folder / sample, title, fields, filled=True)


if __name__ == "__main__":
    main()
