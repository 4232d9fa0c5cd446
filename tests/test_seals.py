"""Electronic seals: units' keys, PAdES signatures checked by pyHanko's validator, one-byte tampering."""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from reportlab.lib.pagesizes import A4
from reportlab.pdfgen import canvas

from engine import directory, seals
from engine.errors import InvalidInput
from engine.fonts import cjk_font
from engine.seal_image import draw_seal, seal_png
from storage.db import session_scope
from storage.seal_tables import UnitSeal
from tests.conftest import ALLIANCE

UNIT = "qdxh-shenpi"
UNIT_NAME = "青岛西海岸新区行政审批服务局"


@pytest.fixture
def units(db: sa.Engine) -> sa.Engine:
    with session_scope(db) as s:
        directory.load_alliance(s, ALLIANCE)
    return db


def notice_pdf(text: str = "受理通知书") -> bytes:
    """A notice-like page with the seal image drawn on it, as the document renderer does."""
    path = Path(tempfile.mkdtemp()) / "n.pdf"
    c = canvas.Canvas(str(path), pagesize=A4, invariant=1)
    c.setFont(cjk_font(), 20)
    c.drawCentredString(A4[0] / 2, A4[1] - 100, text)
    draw_seal(c, A4[0] - 150, 200, 120, UNIT_NAME, "行政审批专用章")
    c.showPage()
    c.save()
    return path.read_bytes()


def signed(engine: sa.Engine, pdf: bytes | None = None, unit: str = UNIT) -> bytes:
    with session_scope(engine) as s:
        seals.ensure(s, unit)
    with session_scope(engine) as s:
        return seals.sign_pdf(s, unit, pdf or notice_pdf(), reason="受理通知书", location="青岛市黄岛区")


def test_a_signed_pdf_is_valid_and_names_its_unit(units: sa.Engine) -> None:
    data = signed(units)
    with session_scope(units) as s:
        report = seals.verify_pdf(data, s)
    assert report.valid and report.intact, report.reason
    assert report.unit_id == UNIT and report.unit == UNIT_NAME and report.signer == UNIT_NAME
    assert report.signed_at is not None and abs(report.signed_at - datetime.now(UTC)) < timedelta(minutes=5)
    assert report.sha256 == hashlib.sha256(data).hexdigest()
    (sig,) = report.signatures
    assert sig["trusted"] and sig["whole_file"] and sig["reason"] == "受理通知书" and sig["location"] == "青岛市黄岛区"
    assert sig["summary"].startswith("INTACT:TRUSTED")


def _flip(data: bytes, at: int, bit: int = 0x01) -> bytes:
    return data[:at] + bytes([data[at] ^ bit]) + data[at + 1:]


def test_one_changed_byte_fails_anywhere_in_the_file(units: sa.Engine) -> None:
    data = signed(units)
    start = data.index(b"/Contents <") + len(b"/Contents <")
    end = data.index(b">", start)
    padding = data.index(b"0000000000", start + 200)
    hex_letter = next(i for i in range(start, end) if data[i:i + 1] in b"ABCDEF")
    changes = {
        # Every 211th byte of the file, two kinds of change each (a full sweep ran clean by hand).
        **{f"byte {i} +1": data[:i] + bytes([(data[i] + 1) % 256]) + data[i + 1:] for i in range(0, len(data), 211)},
        **{f"byte {i} bit 5": _flip(data, i, 0x20) for i in range(13, len(data), 211)},
        # The signature value's unsigned parts: its zero padding, the hex digits' case, white space.
        "padding digit": data[:padding + 5] + b"1" + data[padding + 6:],
        "padding space": data[:padding + 5] + b" " + data[padding + 6:],
        "lower-case hex": data[:hex_letter] + data[hex_letter:hex_letter + 1].lower() + data[hex_letter + 1:],
    }
    with session_scope(units) as s:
        assert seals.verify_pdf(data, s).valid
        for what, changed in changes.items():
            assert changed != data and len(changed) == len(data)
            report = seals.verify_pdf(changed, s)
            assert not report.valid and report.reason, f"{what}: still verifies"


def test_a_revision_appended_after_signing_fails(units: sa.Engine) -> None:
    """The signature still verifies over its own bytes, but the file says more than was signed."""
    import io

    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    data = signed(units)
    w = IncrementalPdfFileWriter(io.BytesIO(data))
    info = w.trailer["/Info"].get_object() if "/Info" in w.trailer else generic.DictionaryObject()
    info[generic.NameObject("/Title")] = generic.TextStringObject("改过的标题")
    w.update_container(info) if "/Info" in w.trailer else None
    out = io.BytesIO()
    w.write(out)
    appended = out.getvalue()
    assert len(appended) > len(data) and appended.startswith(data)
    with session_scope(units) as s:
        report = seals.verify_pdf(appended, s)
    assert not report.valid and report.intact and report.reason == "签章之后文件又被追加了内容"


def test_an_unsigned_pdf_and_garbage_are_refused(units: sa.Engine) -> None:
    with session_scope(units) as s:
        unsigned = seals.verify_pdf(notice_pdf(), s)
        garbage = seals.verify_pdf(b"not a pdf at all", s)
    assert not unsigned.valid and unsigned.reason == "文件中没有电子签名"
    assert not garbage.valid and "PDF" in garbage.reason


def test_a_signature_by_a_foreign_key_is_not_trusted(units: sa.Engine, tmp_path: Path) -> None:
    """Another installation's seal for the same unit name: intact and valid, but not ours."""
    other = signed(units)
    with session_scope(units) as s:
        s.execute(sa.delete(UnitSeal))  # forget the seal: its certificate is no trust anchor any more
    with session_scope(units) as s:
        report = seals.verify_pdf(other, s)
    assert not report.valid and report.intact and "不属于本平台" in report.reason


def test_a_new_seal_retires_the_old_one_and_old_documents_still_verify(units: sa.Engine) -> None:
    old = signed(units)
    with session_scope(units) as s:
        seals.create(s, UNIT)
    with session_scope(units) as s:
        mine = [i for i in seals.list_seals(s) if i.unit_id == UNIT]
        assert [i.current for i in mine] == [False, True]
        new = seals.sign_pdf(s, UNIT, notice_pdf(), reason="r", location="l")
        assert seals.verify_pdf(old, s).valid and seals.verify_pdf(new, s).valid
        assert seals.verify_pdf(new, s).signatures[0]["fingerprint"] == mine[1].fingerprint


def test_a_unit_without_a_seal_cannot_sign(units: sa.Engine) -> None:
    with session_scope(units) as s, pytest.raises(seals.SealMissing, match="tongban seals create"):
        seals.sign_pdf(s, "jn-shenpi", notice_pdf(), reason="r", location="l")


def test_keys_are_sealed_in_the_database(units: sa.Engine) -> None:
    signed(units)
    with session_scope(units) as s:
        row = s.execute(sa.select(UnitSeal)).scalar_one()
        assert b"PRIVATE KEY" not in row.sealed_key and len(row.sealed_key) > 100
        assert "BEGIN CERTIFICATE" in row.certificate_pem and "USCC11370211MB1936126L" in row.subject


# --- PKCS#12 from a unit's CA ---------------------------------------------------------------------

def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"), x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca_p12(password: bytes, *, key_usage: bool = True, rsa_key: bool = False) -> tuple[bytes, x509.Certificate]:
    """A test CA (cryptography) issuing a seal certificate to the unit, packed as PKCS#12."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("测试电子认证服务机构 CA")
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=3650))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = rsa.generate_private_key(65537, 2048) if rsa_key else ec.generate_private_key(ec.SECP256R1())
    builder = (x509.CertificateBuilder().subject_name(_name(UNIT_NAME)).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=730)))
    builder = builder.add_extension(x509.KeyUsage(
        digital_signature=key_usage, content_commitment=key_usage, key_encipherment=not key_usage,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False), critical=True)
    leaf = builder.sign(ca_key, hashes.SHA256())
    p12 = pkcs12.serialize_key_and_certificates(b"seal", key, leaf, [ca],
                                                serialization.BestAvailableEncryption(password))
    return p12, leaf


@pytest.mark.parametrize("rsa_key", [False, True], ids=["ecdsa", "rsa"])
def test_a_pkcs12_from_the_units_ca_signs_and_verifies(units: sa.Engine, rsa_key: bool) -> None:
    p12, leaf = make_ca_p12(b"s3cret", rsa_key=rsa_key)
    with session_scope(units) as s:
        info = seals.import_p12(s, UNIT, p12, b"s3cret")
    assert info.source == "imported" and info.current
    assert info.fingerprint == hashlib.sha256(leaf.public_bytes(serialization.Encoding.DER)).hexdigest()
    with session_scope(units) as s:
        data = seals.sign_pdf(s, UNIT, notice_pdf(), reason="准予许可决定书", location="青岛")
        report = seals.verify_pdf(data, s)
        row = s.execute(sa.select(UnitSeal).where(UnitSeal.fingerprint == info.fingerprint)).scalar_one()
    assert report.valid, report.reason
    assert report.signatures[0]["fingerprint"] == info.fingerprint
    (ca,) = x509.load_pem_x509_certificates(row.chain_pem.encode())
    assert ca.subject.rfc4514_string() == "CN=测试电子认证服务机构 CA,C=CN"  # the CA's certificate kept beside the seal


def test_a_wrong_password_or_an_unfit_certificate_is_refused(units: sa.Engine) -> None:
    p12, _ = make_ca_p12(b"right")
    with session_scope(units) as s:
        with pytest.raises(InvalidInput, match="密码错误"):
            seals.import_p12(s, UNIT, p12, b"wrong")
        with pytest.raises(InvalidInput, match="密码错误"):
            seals.import_p12(s, UNIT, b"\x30\x03garbage", b"right")
        encipher_only, _ = make_ca_p12(b"pw", key_usage=False)
        with pytest.raises(InvalidInput, match="数字签名"):
            seals.import_p12(s, UNIT, encipher_only, b"pw")
    with session_scope(units) as s:
        assert s.execute(sa.select(sa.func.count()).select_from(UnitSeal)).scalar_one() == 0  # nothing written


# --- the seal image -------------------------------------------------------------------------------

def test_the_seal_image_is_red_and_round(tmp_path: Path) -> None:
    from PIL import Image

    png = tmp_path / "seal.png"
    png.write_bytes(seal_png(UNIT_NAME, "行政审批专用章"))
    img = Image.open(png).convert("RGB")
    w, h = img.size
    assert abs(w - h) <= 2
    raw = img.tobytes()
    red = sum(1 for i in range(0, len(raw), 3) if raw[i] > 180 and raw[i + 1] < 120 and raw[i + 2] < 120)
    assert red > w * h * 0.05  # ring, star, characters
    assert img.getpixel((w // 2, h // 2))[0] > 180 and img.getpixel((w // 2, h // 2))[1] < 120  # the star's centre
    assert img.getpixel((2, 2)) == (255, 255, 255)  # outside the ring


def test_the_seal_name_is_drawn_as_text(tmp_path: Path) -> None:
    from engine.seal_image import seal_pdf

    path = tmp_path / "seal.pdf"
    path.write_bytes(seal_pdf("济南市行政审批服务局", "行政审批专用章"))
    text = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True).stdout
    assert "行政审批专用章" in text
    assert all(ch in text for ch in "济南市行政审批服务局")
