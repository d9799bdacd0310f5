"""E-mail through a real SMTP server (aiosmtpd on 127.0.0.1): plain, login, STARTTLS."""

from __future__ import annotations

import email
import email.policy
import socket
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from remediator.adapters.notifiers import EmailNotifier, Message, SmtpSettings
from remediator.errors import NotifyPermanent, NotifyRetryable

PASSWORD = "s3cret-smtp-pass"

MESSAGE = Message(kind="trigger", team="ml-team-lead", level="notify",
                  title="ModelLoadFailure on app-prod: still failing after restore",
                  text="Model loading still fails after the file was restored.\n",
                  incident_id="inc-3", dedup_key="remediator/inc-3/ml-team-lead/notify",
                  severity="error", html="<p>still failing &amp; restored</p>",
                  links={"execution": "http://127.0.0.1:9096/executions/3"})


@dataclass
class Inbox:
    """aiosmtpd handler: keeps what it receives; answers ``reply`` to DATA."""

    reply: str = "250 OK"
    mails: list[EmailMessage] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.reply.startswith("250"):
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            self.mails.append(parsed)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return self.reply


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


LOGINS: list[bytes] = []  # every user name a test server was sent (cleared per test)


def check_password(server: Any, session: Any, envelope: Any, mechanism: str,
                   auth_data: Any) -> AuthResult:
    if isinstance(auth_data, LoginPassword):
        LOGINS.append(auth_data.login)
    ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"remediator" \
        and auth_data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd sends the 535


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, int]]:
    LOGINS.clear()
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port,
                            authenticator=check_password, auth_require_tls=False)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    return cert, key


def settings(port: int, **changes: Any) -> SmtpSettings:
    values: dict[str, Any] = {"host": "127.0.0.1", "port": port,
                              "sender": "remediator@example.com",
                              "recipients": ("ml-lead@example.com", "oncall@example.com"),
                              "tls": "auto", "timeout": 5.0}
    values.update(changes)
    return SmtpSettings(**values)


def test_mail_arrives_with_text_html_and_threading_headers(
    smtp_server: tuple[Inbox, int],
) -> None:
    inbox, port = smtp_server
    report = EmailNotifier("email", settings(port)).send(MESSAGE)
    assert report.detail == "accepted for 2 recipient(s)"
    [mail] = inbox.mails
    assert inbox.envelopes == [("remediator@example.com",
                                ["ml-lead@example.com", "oncall@example.com"])]
    assert mail["Subject"] == MESSAGE.title
    assert mail["X-Remediator-Dedup-Key"] == MESSAGE.dedup_key
    text = mail.get_body(("plain",))
    html = mail.get_body(("html",))
    assert text is not None and html is not None
    assert "still fails after the file was restored" in text.get_content()
    assert "http://127.0.0.1:9096/executions/3" in text.get_content()
    assert html.get_content().strip() == "<p>still failing &amp; restored</p>"


def test_resolve_mail_threads_under_the_trigger(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    notifier = EmailNotifier("email", settings(port))
    notifier.send(MESSAGE)
    notifier.send(Message(**{**MESSAGE.__dict__, "kind": "resolve", "title": "[RESOLVED] x"}))
    trigger, resolve = inbox.mails
    assert resolve["In-Reply-To"] == trigger["Message-ID"]


def test_login_in_clear_only_when_tls_none_says_so(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    EmailNotifier("email", settings(port, tls="none", username="remediator",
                                    password=PASSWORD)).send(MESSAGE)
    assert len(inbox.mails) == 1
    assert LOGINS == [b"remediator"]


def test_auto_never_sends_credentials_in_clear(smtp_server: tuple[Inbox, int]) -> None:
    # This server offers no STARTTLS (and would take AUTH in clear): auto must not log in.
    inbox, port = smtp_server
    notifier = EmailNotifier("email", settings(port, username="remediator", password=PASSWORD))
    with pytest.raises(NotifyPermanent) as caught:
        notifier.send(MESSAGE)
    assert str(caught.value) == (
        "email: 127.0.0.1 offers no STARTTLS; refusing to send SMTP credentials in clear "
        "(tls: auto); set tls: none explicitly to allow it, or tls: ssl for a server that "
        "speaks TLS from the start (port 465)")
    assert (LOGINS, inbox.mails) == ([], [])


def test_auto_without_credentials_may_send_in_clear(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    EmailNotifier("email", settings(port, tls="auto")).send(MESSAGE)
    assert len(inbox.mails) == 1


def test_wrong_password_is_permanent_and_not_echoed(smtp_server: tuple[Inbox, int]) -> None:
    _, port = smtp_server
    notifier = EmailNotifier("email", settings(port, tls="none", username="remediator",
                                               password="nope!"))
    with pytest.raises(NotifyPermanent, match="SMTP login refused") as caught:
        notifier.send(MESSAGE)
    assert "nope!" not in str(caught.value)
    assert "nope!" not in repr(notifier.settings)


def test_title_newlines_cannot_inject_headers(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    hostile = Message(**{**MESSAGE.__dict__, "title": "down\r\nBcc: attacker@example.com"})
    EmailNotifier("email", settings(port)).send(hostile)
    [mail] = inbox.mails
    assert mail["Bcc"] is None
    assert mail["Subject"] == "down Bcc: attacker@example.com"


def test_temporary_smtp_failure_is_retryable(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    inbox.reply = "451 4.3.0 try again later"
    with pytest.raises(NotifyRetryable, match="SMTP 451"):
        EmailNotifier("email", settings(port)).send(MESSAGE)


def test_permanent_smtp_failure_is_not_retried(smtp_server: tuple[Inbox, int]) -> None:
    inbox, port = smtp_server
    inbox.reply = "554 5.7.1 message rejected"
    with pytest.raises(NotifyPermanent, match="SMTP 554"):
        EmailNotifier("email", settings(port)).send(MESSAGE)


def test_server_down_is_retryable() -> None:
    with pytest.raises(NotifyRetryable, match="cannot reach the SMTP server"):
        EmailNotifier("email", settings(free_port())).send(MESSAGE)


def test_starttls_required_but_not_offered_is_permanent(
    smtp_server: tuple[Inbox, int],
) -> None:
    _, port = smtp_server
    notifier = EmailNotifier("email", settings(port, tls="starttls", username="remediator",
                                               password=PASSWORD))
    with pytest.raises(NotifyPermanent, match="does not offer STARTTLS"):
        notifier.send(MESSAGE)


@pytest.mark.parametrize("tls", ["starttls", "auto"])
def test_starttls_then_login(certificate: tuple[Path, Path], tls: str) -> None:
    cert, key = certificate
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert, key)
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=server_context,
                            require_starttls=True, authenticator=check_password)
    controller.start()
    try:
        EmailNotifier("email", settings(port, tls=tls, ca_file=str(cert),
                                        username="remediator", password=PASSWORD)).send(MESSAGE)
    finally:
        controller.stop()
    assert len(inbox.mails) == 1
