"""How a notification leaves the building: a sender per channel, each one call per message.

``SmsGateway`` POSTs JSON to an HTTP SMS gateway (``sms_url``): ``{"id", "to", "text"}`` with the
message's key as ``Idempotency-Key`` and ``sms_token`` as bearer; a 2xx is sent (the gateway's
``id`` kept when it answers one), another 4xx (but 408 and 429) refuses the message for good,
anything else is worth another attempt. ``SmtpSender`` hands a mail to an SMTP server (plain,
STARTTLS or TLS, optionally signed in); its ``Message-ID`` is derived from the key, so a mail sent
again after a crash between sending and recording is recognisable as the same one. A 5xx reply
refuses it for good; a 4xx, a refused connection or a timeout is worth another attempt.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from typing import Protocol

import httpx

from core.settings import get_settings


@dataclass(frozen=True)
class Outgoing:
    channel: str  # sms | email
    address: str  # a phone number, or mail addresses separated by commas
    subject: str
    text: str
    key: str  # the notification's dedupe key: the receiver's means of spotting a resend


class SendError(Exception):
    """A failed attempt; ``permanent`` when trying again cannot help (refused address, bad request)."""

    def __init__(self, message: str, *, permanent: bool = False) -> None:
        super().__init__(message)
        self.permanent = permanent


class Sender(Protocol):
    channel: str

    def send(self, message: Outgoing) -> str:
        """Deliver one message; the provider's id of it. Raises SendError."""
        ...

    def close(self) -> None:
        """The round is over: let go of connections."""
        ...


def message_id(key: str) -> str:
    return f"<{hashlib.sha256(key.encode()).hexdigest()[:32]}@tongban.notify>"


class SmsGateway:
    channel = "sms"

    def __init__(self, url: str, token: str = "", signature: str = "", timeout: float = 10.0) -> None:
        self.url, self.token, self.signature, self.timeout = url, token, signature, timeout
        self._http: httpx.Client | None = None

    def _client(self) -> httpx.Client:
        """One connection pool per round of sending (a sender lives for one round)."""
        if self._http is None:
            self._http = httpx.Client(timeout=self.timeout, follow_redirects=False)
        return self._http

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    def send(self, message: Outgoing) -> str:
        headers = {"Idempotency-Key": message.key, "User-Agent": "tongban-notify/1"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        body = {"id": message.key, "to": message.address, "text": self.signature + message.text}
        try:
            r = self._client().post(self.url, json=body, headers=headers)
        except httpx.HTTPError as exc:  # refused, reset, timed out: the gateway may be back soon
            raise SendError(f"短信网关不可达: {type(exc).__name__}: {exc}"[:500]) from exc
        if 200 <= r.status_code < 300:
            try:
                answer = r.json()
            except ValueError:
                answer = None
            found = answer.get("id") if isinstance(answer, dict) else None
            return str(found)[:200] if found else message.key
        permanent = 400 <= r.status_code < 500 and r.status_code not in (408, 429)
        raise SendError(f"短信网关答复 HTTP {r.status_code}: {r.text[:200]}", permanent=permanent)


class SmtpSender:
    channel = "email"

    def __init__(self, host: str, port: int, security: str = "none", user: str = "", password: str = "",
                 sender: str = "tongban@localhost", timeout: float = 10.0) -> None:
        self.host, self.port, self.security = host, port, security
        self.user, self.password, self.sender, self.timeout = user, password, sender, timeout

    def close(self) -> None:
        pass  # a connection per message: nothing is kept between them

    def mail(self, message: Outgoing) -> EmailMessage:
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = ", ".join(a.strip() for a in message.address.split(",") if a.strip())
        mail["Subject"] = message.subject or "通办通知"
        mail["Date"] = formatdate(localtime=False)
        mail["Message-ID"] = message_id(message.key)
        mail["X-Tongban-Notification"] = message.key
        mail.set_content(message.text)
        return mail

    def send(self, message: Outgoing) -> str:
        mail = self.mail(message)
        try:
            if self.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout,
                                                      context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
            try:
                if self.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if self.user:
                    smtp.login(self.user, self.password)
                refused = smtp.send_message(mail)
            finally:
                try:
                    smtp.quit()  # the mail is taken once DATA was answered: a failing QUIT is no failure
                except (OSError, smtplib.SMTPException):
                    smtp.close()
        except smtplib.SMTPRecipientsRefused as exc:
            raise SendError(f"邮件服务器拒收全部收件人: {exc.recipients}"[:500], permanent=True) from exc
        except smtplib.SMTPResponseException as exc:
            raise SendError(f"邮件服务器答复 {exc.smtp_code}: {exc.smtp_error!r}"[:500],
                            permanent=500 <= exc.smtp_code < 600) from exc
        except (OSError, smtplib.SMTPException) as exc:  # refused, timed out, disconnected
            raise SendError(f"邮件服务器不可达: {type(exc).__name__}: {exc}"[:500]) from exc
        if refused:  # some recipients taken: the message went; the refused ones are noted
            return f"{mail['Message-ID']} (拒收: {', '.join(refused)})"[:200]
        return str(mail["Message-ID"])


def configured() -> dict[str, Sender]:
    """The senders the settings configure, by channel (none: nothing is delivered, all waits)."""
    s = get_settings()
    out: dict[str, Sender] = {}
    if s.sms_url:
        out["sms"] = SmsGateway(s.sms_url, s.sms_token.get_secret_value(), s.sms_signature, s.notify_timeout_seconds)
    if s.smtp_host:
        out["email"] = SmtpSender(s.smtp_host, s.smtp_port, s.smtp_security, s.smtp_user,
                                  s.smtp_password.get_secret_value(), s.smtp_from, s.notify_timeout_seconds)
    return out
