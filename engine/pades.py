"""PAdES signing and validation with pyHanko, on bytes only (no database): what the worker runs.

These functions run in a worker process of ``engine.offload.COMPUTE``: parsing a PDF someone
uploaded and hashing it is CPU work on outside input, and pyHanko's validator runs its own
asyncio loop, which must not be the server's.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any, BinaryIO, TypedDict

from asn1crypto import keys as asn1_keys
from asn1crypto import pem
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError
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


def verify(stream: BinaryIO, anchors_pem: list[str]) -> list[SignatureFacts] | str:
    """Each signature's facts, or why the file could not be read as a PDF (zh-CN)."""
    roots = [c for text in anchors_pem for c in load_certs(text)]
    try:
        reader = PdfFileReader(stream, strict=False)
        embedded = reader.embedded_signatures
    except (PdfError, ValueError, KeyError, TypeError, IndexError) as exc:
        return f"文件不是可读的 PDF: {exc.__class__.__name__}"
    facts: list[SignatureFacts] = []
    for sig in embedded:
        facts.append(_check(sig, roots))
    return facts


def _check(sig: Any, roots: list[asn1_x509.Certificate]) -> SignatureFacts:
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
    return {**base, "intact": bool(status.intact), "valid": bool(status.valid), "trusted": bool(status.trusted),
            "whole_file": status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
            "signed_at": status.signer_reported_dt, "summary": status.summary()}


def _common_name(cert: asn1_x509.Certificate) -> str:
    native = cert.subject.native
    return str(native.get("common_name") or native.get("organization_name") or cert.subject.human_friendly)
