"""PAdES signing and validation with pyHanko, on bytes only (no database): what the worker runs.

These functions run in a worker process of ``engine.offload.COMPUTE``: parsing a PDF someone
uploaded and hashing it is CPU work on outside input, and pyHanko's validator runs its own
asyncio loop, which must not be the server's.
"""

from __future__ import annotations

import binascii
import hashlib
from datetime import datetime
from typing import Any, BinaryIO, TypedDict

from asn1crypto import cms, pem
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.settings import KeyUsageConstraints
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

# A seal certificate from a unit's CA may mark either usage; one of them is enough.
KEY_USAGE = KeyUsageConstraints(key_usage={"digital_signature", "non_repudiation"}, match_all_key_usages=False)


class SignatureFacts(TypedDict):
    """One embedded signature as the validator saw it (plain values: it crosses a process boundary)."""

    field: str
    intact: bool  # the signed bytes hash to the signed digest
    valid: bool  # the signature over that digest checks out with the signer's key
    trusted: bool  # the signer's certificate leads to one of the trust anchors
    whole_file: bool  # nothing was appended after the signature
    fingerprint: str  # SHA-256 of the signing certificate (DER), hex
    signer: str  # the certificate subject's common name (or the whole subject)
    signed_at: datetime | None  # the signer's own claim (no timestamp authority)
    reason: str
    location: str
    summary: str
    error: str


def load_certs(text: str) -> list[asn1_x509.Certificate]:
    """Every certificate in a PEM text (none for empty text)."""
    data = text.encode()
    if not data.strip():
        return []
    return [asn1_x509.Certificate.load(der) for _, _, der in pem.unarmor(data, multiple=True)]


def fingerprint(cert: asn1_x509.Certificate) -> str:
    return hashlib.sha256(cert.dump()).hexdigest()


def sign(stream: BinaryIO, key_der: bytes, cert_pem: str, chain_pem: str, *, field: str, name: str,
         reason: str, location: str) -> bytes:
    """The PDF with one more signature (an incremental update), PAdES baseline B-B."""
    cert = load_certs(cert_pem)[0]
    signer = signers.SimpleSigner(signing_cert=cert, signing_key=asn1_keys.PrivateKeyInfo.load(key_der),
                                  cert_registry=SimpleCertificateStore.from_certs(load_certs(chain_pem)))
    meta = signers.PdfSignatureMetadata(field_name=field, name=name, reason=reason, location=location,
                                        subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256")
    writer = IncrementalPdfFileWriter(stream, strict=False)
    out = signers.PdfSigner(meta, signer).sign_pdf(writer)
    return out.getvalue()


def verify(stream: BinaryIO, anchors_pem: list[str], chains_pem: tuple[str, ...] = ()) -> list[SignatureFacts] | str:
    """Each signature's facts, or why the file could not be read as a PDF (zh-CN).

    ``anchors_pem`` are the seal certificates trusted; ``chains_pem`` the CA certificates stored
    beside them, which a signature may carry too."""
    roots = [c for text in anchors_pem for c in load_certs(text)]
    known = {fingerprint(c) for c in roots} | {fingerprint(c) for text in chains_pem for c in load_certs(text)}
    data = stream.read()
    stream.seek(0)
    try:
        reader = PdfFileReader(stream, strict=False)
        embedded = reader.embedded_signatures
    except Exception as exc:  # noqa: BLE001 — any parser failure on outside input is "not a readable PDF"
        return f"文件不是可读的 PDF: {exc.__class__.__name__}"
    return [_check(sig, roots, known, data) for sig in embedded]


def unsigned_changes(sig: Any, known: set[str], data: bytes) -> str:
    """Why the signature's unsigned parts differ from what signing writes ("" when they do not).

    The signature covers the file except its own /Contents; inside that, the signed attributes
    and the signature value are checked cryptographically, but the zero padding after the CMS
    object, the certificates it carries and the SignedData's own fields are not. Each of those is
    held to what ``sign`` writes, so that no byte of a signed file can change unnoticed."""
    raw = sig.pkcs7_content
    _, start, end, _ = (int(v) for v in sig.byte_range)
    # The hex string itself as signing writes it: upper case, no white space (both would read the same).
    if data[start:end] != b"<" + binascii.hexlify(raw).upper() + b">":
        return "签名值的书写被改动"
    info = cms.ContentInfo.load(raw)
    used = len(info.dump())
    if any(raw[used:]):
        return "签名数据之后的填充被改动"
    sd = info["content"]
    si = sd["signer_infos"][0]
    if len(sd["signer_infos"]) != 1 or sd["version"].native != "v1" or si["version"].native != "v1":
        return "签名数据的结构被改动"
    if [a.dump() for a in sd["digest_algorithms"]] != [si["digest_algorithm"].dump()]:
        return "签名数据的摘要算法列表被改动"
    if sd["encap_content_info"]["content_type"].native != "data" or sd["encap_content_info"]["content"].native:
        return "签名数据的封装内容被改动"
    if si["sid"].name != "issuer_and_serial_number" or si["sid"].chosen.dump() != _issuer_serial(sig.signer_cert):
        return "签名数据中的签名者标识被改动"
    if sd["crls"].native or si["unsigned_attrs"].native:
        return "签名数据中有签章时没有的未签名内容"
    signer = fingerprint(sig.signer_cert)  # whether it is one of ours is the trust check's answer
    for choice in sd["certificates"]:
        if choice.name != "certificate" or fingerprint(choice.chosen) not in known | {signer}:
            return "签名数据附带的证书被改动或不属于本平台"
    return ""


def _issuer_serial(cert: asn1_x509.Certificate) -> bytes:
    return cms.IssuerAndSerialNumber({"issuer": cert.issuer, "serial_number": cert.serial_number}).dump()


def _check(sig: Any, roots: list[asn1_x509.Certificate], known: set[str], data: bytes) -> SignatureFacts:
    obj = sig.sig_object
    base: SignatureFacts = {
        "field": str(sig.field_name or ""), "intact": False, "valid": False, "trusted": False,
        "whole_file": False, "fingerprint": "", "signer": "", "signed_at": None,
        "reason": str(obj.get("/Reason", "")), "location": str(obj.get("/Location", "")),
        "summary": "INVALID", "error": ""}
    try:
        cert = sig.signer_cert
        base["fingerprint"] = fingerprint(cert)
        base["signer"] = _common_name(cert)
    except Exception as exc:  # noqa: BLE001 — a mangled CMS blob: report it, never crash the report
        return {**base, "error": f"签名数据无法解析: {exc.__class__.__name__}"}
    # No fetching: trust is exactly this installation's seal certificates, and tests stay offline.
    context = ValidationContext(trust_roots=roots, allow_fetching=False, revocation_mode="soft-fail")
    try:
        status = validate_pdf_signature(sig, context, key_usage_settings=KEY_USAGE)
    except Exception as exc:  # noqa: BLE001 — pyHanko raises many kinds on tampered input
        return {**base, "error": f"签名校验失败: {exc.__class__.__name__}: {exc}"[:500]}
    try:
        changed = unsigned_changes(sig, known, data)
    except Exception as exc:  # noqa: BLE001
        changed = f"签名数据无法解析: {exc.__class__.__name__}"
    return {**base, "intact": bool(status.intact) and not changed, "valid": bool(status.valid),
            "trusted": bool(status.trusted), "error": changed,
            "whole_file": status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
            "signed_at": status.signer_reported_dt, "summary": status.summary()}


def _common_name(cert: asn1_x509.Certificate) -> str:
    native = cert.subject.native
    return str(native.get("common_name") or native.get("organization_name") or cert.subject.human_friendly)
