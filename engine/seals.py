"""Electronic seals (电子印章): units' signing keys, signing notices and certificates, verifying them.

Each member unit signs what it issues with its own key: a PAdES signature (pyHanko) over the
whole PDF, beside the seal image drawn on the page (``engine.seal_image``). A unit's key and
certificate are either made here (``tongban seals create``: ECDSA P-256, self-signed) or imported
from the unit's CA as PKCS#12 (``tongban seals import``).

Where the keys live: in the database, each private key sealed with AES-GCM under the
installation's seal key (``TONGBAN_SEAL_KEY``, else made once in ``data_dir/seal-key``). The
database is what every process of an installation shares — the server and each region's Prefect
worker on other machines all sign notices from it — so a key made at one counter signs at every
other without copying files around. The seal key is kept out of the database on purpose: a
leaked backup or replica alone cannot sign. A distributed installation gives every signing
machine the same ``TONGBAN_SEAL_KEY``; verifying needs no secret at all.

Verifying trusts exactly this installation's seal certificates (current and retired): a
signature counts only when pyHanko's validator finds it intact, cryptographically valid, made
by one of those certificates, and covering the whole file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID
from sqlmodel import Session

from core import clock
from core.install_secrets import install_key
from core.settings import get_settings
from engine import certificates, offload
from engine.errors import EngineError, InvalidInput, NotFound
from storage.flow_tables import Certificate
from storage.notice_tables import CaseDocument
from storage.seal_tables import UnitSeal
from storage.tables import Case, Unit

if TYPE_CHECKING:
    from engine.pades import SignatureFacts

NONCE_BYTES = 12
MAX_VERIFY_BYTES = 20 * 1024 * 1024  # the largest PDF taken for verification (upload or CLI)


class SealMissing(EngineError):
    """The unit has no current seal: nothing it issues can be signed."""

    status, type, title = 409, "/problems/seal-missing", "单位尚未配置电子印章"
    help = ("签发单位还没有电子印章 (密钥与证书), 它的文书和证照无法签章。请由管理员执行"
            " tongban seals create 单位 或 tongban seals import 单位 文件.p12 后重试。")


@dataclass(frozen=True)
class SealInfo:
    unit_id: str
    unit_name: str
    fingerprint: str
    subject: str
    source: str
    not_before: datetime
    not_after: datetime
    created_at: datetime
    current: bool


@dataclass(frozen=True)
class DocRecord:
    """What the platform recorded about the file (found by its SHA-256)."""

    kind: str
    number: str
    title: str
    holder: str
    issued_at: datetime
    status: str  # zh-CN: 有效 / 已撤销 / 已过期 …


@dataclass(frozen=True)
class VerifyReport:
    valid: bool  # every check passed
    intact: bool  # the signed bytes are unchanged
    signer: str  # the signing certificate's name
    unit_id: str  # the seal's unit ("" when the certificate is not one of this installation's)
    unit: str
    signed_at: datetime | None
    sha256: str
    record: DocRecord | None
    reason: str  # zh-CN: the verdict and, when invalid, the first reason why
    signatures: list[SignatureFacts] = field(default_factory=list)


# --- keys -------------------------------------------------------------------------------------

def _cipher() -> AESGCM:
    return AESGCM(install_key("seal-key", get_settings().seal_key))


def _bound(unit_id: str, fingerprint: str) -> bytes:
    """Associated data: a sealed key opens only as the key of the unit and certificate it was made for."""
    return json.dumps(["seal", unit_id, fingerprint]).encode()


def _seal_key(key_der: bytes, unit_id: str, fingerprint: str) -> bytes:
    nonce = os.urandom(NONCE_BYTES)
    return nonce + _cipher().encrypt(nonce, key_der, _bound(unit_id, fingerprint))


def _unseal_key(row: UnitSeal) -> bytes:
    raw = bytes(row.sealed_key)
    try:
        return _cipher().decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _bound(row.unit_id, row.fingerprint))
    except InvalidTag:
        raise SealMissing(f"单位 {row.unit_id} 的印章密钥无法解开: 本机的 TONGBAN_SEAL_KEY 与签发该印章的安装不同",
                          unit=row.unit_id) from None


def _unit(session: Session, unit_id: str) -> Unit:
    unit = session.get(Unit, unit_id)
    if unit is None:
        raise NotFound(f"成员单位 {unit_id} 不存在")
    return unit


def current(session: Session, unit_id: str) -> UnitSeal | None:
    return session.execute(sa.select(UnitSeal).where(UnitSeal.unit_id == unit_id, UnitSeal.retired_at.is_(None))
                           .order_by(UnitSeal.id.desc()).limit(1)).scalar_one_or_none()


def _info(row: UnitSeal) -> SealInfo:
    return SealInfo(unit_id=row.unit_id, unit_name=row.unit_name, fingerprint=row.fingerprint,
                    subject=row.subject, source=row.source, not_before=row.not_before,
                    not_after=row.not_after, created_at=row.created_at, current=row.retired_at is None)


def list_seals(session: Session) -> list[SealInfo]:
    rows = session.execute(sa.select(UnitSeal).order_by(UnitSeal.unit_id, UnitSeal.id)).scalars()
    return [_info(r) for r in rows]


def _store(session: Session, unit: Unit, cert: x509.Certificate, key_der: bytes, chain: list[x509.Certificate],
           source: str) -> SealInfo:
    der = cert.public_bytes(serialization.Encoding.DER)
    fingerprint = hashlib.sha256(der).hexdigest()
    if session.execute(sa.select(UnitSeal.id).where(UnitSeal.fingerprint == fingerprint)).first():
        raise InvalidInput("certificate", "该证书已导入过")
    at = clock.now()
    # The unit's row is locked first, so two seals made at once for one unit leave one current.
    session.execute(sa.select(Unit.id).where(Unit.id == unit.id).with_for_update())
    session.execute(sa.update(UnitSeal).where(UnitSeal.unit_id == unit.id, UnitSeal.retired_at.is_(None))
                    .values(retired_at=at))
    row = UnitSeal(unit_id=unit.id, unit_name=unit.name, fingerprint=fingerprint,
                   certificate_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
                   chain_pem="".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain),
                   sealed_key=_seal_key(key_der, unit.id, fingerprint), source=source,
                   subject=cert.subject.rfc4514_string()[:500],
                   not_before=cert.not_valid_before_utc, not_after=cert.not_valid_after_utc, created_at=at)
    session.add(row)
    session.flush()
    return _info(row)


def create(session: Session, unit_id: str) -> SealInfo:
    """A new key and self-signed certificate for the unit; its previous seal is retired (kept for verifying)."""
    unit = _unit(session, unit_id)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([
        x509.NameAttribute(NameOID.COUNTRY_NAME, "CN"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, unit.name),
        # The 统一社会信用代码 identifies the authority, as a national seal certificate would.
        x509.NameAttribute(NameOID.ORGANIZATION_IDENTIFIER, f"USCC{unit.code}"),
        x509.NameAttribute(NameOID.COMMON_NAME, unit.name),
    ])
    # Valid from a day before both the wall clock and the product's clock: tests run flows at
    # chosen instants, and a certificate not yet valid at signing would fail for no good reason.
    start = min(clock.now(), datetime.now(clock.now().tzinfo)) - timedelta(days=1)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(start)
            .not_valid_after(start + timedelta(days=365 * get_settings().seal_valid_years))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return _store(session, unit, cert, key_der, [], "created")


def ensure(session: Session, unit_id: str) -> SealInfo | None:
    """Create the unit's seal if it has none; None when it already had one."""
    return None if current(session, unit_id) is not None else create(session, unit_id)


def import_p12(session: Session, unit_id: str, data: bytes, password: bytes | None) -> SealInfo:
    """Take a key and certificate issued by the unit's CA (PKCS#12); the previous seal is retired."""
    unit = _unit(session, unit_id)
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password)
    except (ValueError, TypeError):
        raise InvalidInput("file", "无法读取 PKCS#12 文件: 密码错误或文件损坏") from None
    if key is None or cert is None:
        raise InvalidInput("file", "PKCS#12 文件中缺少私钥或证书")
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey):
        raise InvalidInput("file", "不支持的密钥类型 (支持 RSA、ECDSA、Ed25519)")
    pub = serialization.PublicFormat.SubjectPublicKeyInfo
    if (key.public_key().public_bytes(serialization.Encoding.DER, pub)
            != cert.public_key().public_bytes(serialization.Encoding.DER, pub)):
        raise InvalidInput("file", "私钥与证书不匹配")
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
        if not (usage.digital_signature or usage.content_commitment):
            raise InvalidInput("file", "证书的密钥用途不含数字签名")
    except x509.ExtensionNotFound:
        pass  # no restriction declared: any use is allowed
    now = clock.now()
    if cert.not_valid_after_utc < now:
        raise InvalidInput("file", f"证书已于 {clock.local(cert.not_valid_after_utc):%Y-%m-%d} 过期")
    key_der = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return _store(session, unit, cert, key_der, list(extra or []), "imported")


# --- signing ----------------------------------------------------------------------------------

def sign_pdf(session: Session, unit_id: str, pdf: bytes, *, reason: str, location: str) -> bytes:
    """The PDF signed with the unit's current seal (PAdES B-B), in a worker process.

    Each signing gives different bytes (the ECDSA nonce, the signing time): sign once, store the
    signed bytes and their SHA-256, and serve those on every reprint.
    """
    row = current(session, unit_id)
    if row is None:
        raise SealMissing(f"单位 {unit_id} 尚未配置电子印章: 请运行 tongban seals create {unit_id}", unit=unit_id)
    key_der = _unseal_key(row)
    from engine import pades  # pyHanko is loaded by the worker that signs, not by every importer

    return offload.COMPUTE.run(pades.sign, key_der, row.certificate_pem, row.chain_pem,
                               field=f"Seal-{row.fingerprint[:12]}", name=row.unit_name, reason=reason,
                               location=location, data=io.BytesIO(pdf), timeout=get_settings().render_seconds)


# --- verifying --------------------------------------------------------------------------------

def verify_pdf(data: bytes, session: Session) -> VerifyReport:
    """Check every signature of ``data`` against this installation's seals, and find its record."""
    digest = hashlib.sha256(data).hexdigest()
    record = find_record(session, digest)
    empty = {"signer": "", "unit_id": "", "unit": "", "signed_at": None, "sha256": digest, "record": record}
    if len(data) > MAX_VERIFY_BYTES:
        return VerifyReport(valid=False, intact=False, reason=f"文件超过 {MAX_VERIFY_BYTES // 1024 // 1024} MB",
                            **empty)
    rows = list(session.execute(sa.select(UnitSeal)).scalars())
    from engine import pades

    try:
        facts = offload.COMPUTE.run(pades.verify, [r.certificate_pem for r in rows],
                                    tuple(r.chain_pem for r in rows if r.chain_pem), data=io.BytesIO(data),
                                    timeout=get_settings().render_seconds)
    except offload.OffloadError as exc:
        return VerifyReport(valid=False, intact=False, reason=f"无法完成校验: {exc.reason}", **empty)
    if isinstance(facts, str):
        return VerifyReport(valid=False, intact=False, reason=facts, **empty)
    if not facts:
        return VerifyReport(valid=False, intact=False, reason="文件中没有电子签名", **empty)
    by_print = {r.fingerprint: r for r in rows}
    last = facts[-1]
    seal = by_print.get(last["fingerprint"])
    intact = all(f["intact"] for f in facts)
    problem = _problem(facts, by_print)
    return VerifyReport(valid=problem is None, intact=intact, signer=last["signer"],
                        unit_id=seal.unit_id if seal else "", unit=seal.unit_name if seal else "",
                        signed_at=last["signed_at"], sha256=digest, record=record,
                        reason=problem or "签名有效: 文件自签章后未被改动, 签章单位的证书属于本平台",
                        signatures=facts)


def _problem(facts: list[SignatureFacts], seals: dict[str, UnitSeal]) -> str | None:
    """The first reason a signature fails, in zh-CN (None: all pass)."""
    for f in facts:
        if f["error"]:
            return f["error"]
        if not f["intact"]:
            return "文件已被改动: 签名覆盖的内容与签章时不一致"
        if not f["valid"]:
            return "签名值无效: 不是由该证书的私钥签出的"
        if f["fingerprint"] not in seals:
            return f"签章证书 ({f['signer']}) 不属于本平台任何成员单位"
        if not f["trusted"]:
            return f"签章证书 ({f['signer']}) 不可信 (已过期或用途不符)"
    if not facts[-1]["whole_file"]:
        return "签章之后文件又被追加了内容"
    return None


def find_record(session: Session, sha256: str) -> DocRecord | None:
    """The issued certificate or notice with these exact bytes, if any."""
    cert = session.execute(sa.select(Certificate).where(Certificate.sha256 == sha256,
                                                        Certificate.state == certificates.ISSUED)
                           ).scalars().first()
    if cert is not None:
        ok, why = certificates.status(cert, clock.today())
        return DocRecord(kind="certificate", number=cert.number, title=cert.title, holder=cert.holder,
                         issued_at=cert.issued_at, status="有效" if ok else why)
    found = session.execute(sa.select(CaseDocument, Case.applicant).join(Case, Case.id == CaseDocument.case_id)
                            .where(CaseDocument.sha256 == sha256)).first()
    if found is None:
        return None
    doc, applicant = found
    return DocRecord(kind=doc.kind, number=doc.number, title=doc.title, holder=str(applicant.get("name", "")),
                     issued_at=doc.issued_at, status="已签发")


def report_rows(report: VerifyReport) -> list[tuple[str, str]]:
    """The report as (label, value) rows in zh-CN, for the command line and the verification page."""
    def at(value: datetime | None) -> str:
        return f"{clock.local(value):%Y-%m-%d %H:%M:%S}（{clock.zone_label()}）" if value else "—"

    rows = [("结论", ("有效: " if report.valid else "无效: ") + report.reason),
            ("文件完整", "是" if report.intact else "否"),
            ("签章单位", report.unit or "—"), ("签名证书", report.signer or "—"),
            ("签章时间", at(report.signed_at) + ("（签章方自报）" if report.signed_at else "")),
            ("文件指纹 (SHA-256)", report.sha256)]
    if report.record is None:
        rows.append(("平台记录", "本平台没有这份文件的签发记录"))
    else:
        r = report.record
        rows += [("平台记录", f"{r.title} {r.number}"), ("持证主体", r.holder or "—"),
                 ("签发时间", at(r.issued_at)), ("状态", r.status)]
    return rows
