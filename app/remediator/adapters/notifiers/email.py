"""E-mail over SMTP: a plain-text part and, when rendered, an HTML alternative.

TLS modes: ``auto`` (STARTTLS when the server offers it; without it, mail goes in clear
only when there is no login: credentials are never sent in clear), ``starttls`` (required:
refuse to send, and above all to log in, without it), ``ssl`` (implicit TLS, port 465),
``none`` (never TLS; the one mode that logs in in clear). Login happens only when both
username and password are set.

SMTP 4xx replies and dropped connections are worth retrying; 5xx replies, failed logins
and refused recipients are not.
"""

from __future__ import annotations

import hashlib
import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Final, Literal

from remediator.adapters.notifiers.base import DeliveryReport, Message
from remediator.core.redact import redact
from remediator.errors import NotifyPermanent, NotifyRetryable

__all__ = ["EmailNotifier", "SmtpSettings", "TlsMode", "build_email"]

TlsMode = Literal["auto", "starttls", "ssl", "none"]
TLS_MODES: Final = ("auto", "starttls", "ssl", "none")
_SUBJECT_MAX: Final = 200


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send; ``password`` is never shown (repr hides it)."""

    host: str
    port: int
    sender: str
    recipients: tuple[str, ...]
    username: str | None = None
    password: str | None = None
    tls: TlsMode = "auto"
    timeout: float = 10.0
    ca_file: str | None = None

    def __repr__(self) -> str:
        return (f"SmtpSettings(host={self.host!r}, port={self.port}, sender={self.sender!r}, "
                f"recipients={self.recipients!r}, tls={self.tls!r}, login="
                f"{'yes' if self.username and self.password else 'no'})")


class EmailNotifier:
    """Sends each message as one e-mail to every recipient."""

    def __init__(self, name: str, settings: SmtpSettings) -> None:
        self.name = name
        self.settings = settings

    def send(self, message: Message) -> DeliveryReport:
        mail = build_email(message, self.settings.sender, self.settings.recipients)
        try:
            with self._connect() as smtp:
                self._secure_and_login(smtp)
                refused = smtp.send_message(mail)
        except smtplib.SMTPException as exc:
            raise _classify(self.name, exc) from None
        except (OSError, ssl.SSLError) as exc:  # refused, reset, timeout, TLS failure
            raise NotifyRetryable(f"{self.name}: cannot reach the SMTP server "
                                  f"({type(exc).__name__})") from None
        accepted = len(self.settings.recipients) - len(refused)
        return DeliveryReport(self.name, 250, f"accepted for {accepted} recipient(s)")

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        if s.tls == "ssl":
            return smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=self._context())
        return smtplib.SMTP(s.host, s.port, timeout=s.timeout)

    def _secure_and_login(self, smtp: smtplib.SMTP) -> None:
        s = self.settings
        smtp.ehlo()
        if s.tls in ("starttls", "auto") and smtp.has_extn("starttls"):
            smtp.starttls(context=self._context())
            smtp.ehlo()
        elif s.tls == "starttls":
            raise NotifyPermanent(f"{self.name}: tls is starttls but {s.host} does not offer "
                                  "STARTTLS")
        elif s.tls == "auto" and s.username and s.password:
            # auto means "encrypt when offered", never "send the password in clear".
            raise NotifyPermanent(
                f"{self.name}: {s.host} offers no STARTTLS; refusing to send SMTP credentials "
                "in clear (tls: auto); set tls: none explicitly to allow it, or tls: ssl for "
                "a server that speaks TLS from the start (port 465)")
        if s.username and s.password:
            smtp.login(s.username, s.password)

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file)


def build_email(message: Message, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The MIME message; resolve notices thread under their trigger (same dedup key)."""
    mail = EmailMessage()
    mail["Subject"] = _one_line(message.title)[:_SUBJECT_MAX]
    mail["From"] = sender
    mail["To"] = ", ".join(recipients)
    mail["Date"] = formatdate(localtime=False, usegmt=True)
    mail["Message-ID"] = make_msgid(domain="remediator")
    thread = _thread_id(message.dedup_key)
    if message.kind == "resolve":
        mail["In-Reply-To"] = thread
        mail["References"] = thread
    elif message.kind == "trigger":
        mail.replace_header("Message-ID", thread)
    mail["X-Remediator-Dedup-Key"] = _one_line(message.dedup_key)
    mail["X-Remediator-Severity"] = message.severity
    mail.set_content(_with_links(message))
    if message.html:
        mail.add_alternative(message.html, subtype="html")
    return mail


def _with_links(message: Message) -> str:
    links = "".join(f"\n{label}: {url}" for label, url in message.links.items())
    if not links or all(url in message.text for url in message.links.values()):
        return message.text
    return f"{message.text}\n{links}"


def _thread_id(dedup_key: str) -> str:
    return f"<{hashlib.sha256(dedup_key.encode()).hexdigest()[:32]}@remediator>"


def _one_line(text: str) -> str:
    # A newline in a header would let a label value inject headers.
    return " ".join(text.split())


def _classify(channel: str, exc: smtplib.SMTPException) -> NotifyRetryable | NotifyPermanent:
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return NotifyPermanent(f"{channel}: SMTP login refused ({exc.smtp_code})")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return NotifyPermanent(f"{channel}: SMTP server lacks a needed extension")
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        retry = bool(codes) and all(400 <= code < 500 for code in codes)
        kind = NotifyRetryable if retry else NotifyPermanent
        return kind(f"{channel}: all recipients refused ({', '.join(map(str, codes))})")
    if isinstance(exc, smtplib.SMTPResponseException):
        text = exc.smtp_error.decode("utf-8", "replace") if isinstance(
            exc.smtp_error, bytes) else str(exc.smtp_error)
        reason = redact(f"{channel}: SMTP {exc.smtp_code} {' '.join(text.split())}")[:300]
        return NotifyRetryable(reason) if 400 <= exc.smtp_code < 500 else NotifyPermanent(reason)
    return NotifyRetryable(f"{channel}: SMTP connection problem ({type(exc).__name__})")

