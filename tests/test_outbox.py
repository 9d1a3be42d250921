"""Outbox delivery against a real SMTP server and a real HTTP endpoint on 127.0.0.1."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import smtplib
import ssl
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme
from aiosmtpd.smtp import AuthResult, LoginPassword
from sqlalchemy import select
from sqlalchemy.orm import Session

from referral import outbox
from referral.mail import queue_email
from referral.models import OutboxMessage, utcnow
from tests.conftest import PG_URL, SMTPServer, _EphemeralController


@pytest.fixture
def app(make_app, smtp_server):
    return make_app(REFERRAL_MAIL_FROM="Clinic <clinic@example.com>", **smtp_server.config)


def queue(session, n: int = 1, **fields) -> list[OutboxMessage]:
    messages = [
        queue_email(
            session,
            to=f"person{i}@example.com",
            subject=f"Hello {i}",
            text=f"Plain text {i}\n",
            html=f"<p>HTML {i}</p>" if fields.get("html", True) else None,
        )
        for i in range(n)
    ]
    session.commit()
    return messages


def test_sends_plain_and_html_parts_to_the_recipient(app, session, smtp_server):
    [message] = queue(session)
    report = outbox.deliver_due(session, app.config)
    assert (report.sent, report.failed) == (1, 0)
    [mail] = smtp_server.received
    assert mail.rcpt_tos == ["person0@example.com"]
    assert mail.mail_from == "clinic@example.com"
    assert mail.message["From"] == "Clinic <clinic@example.com>"
    assert mail.message["Subject"] == "Hello 0"
    assert mail.message["X-Referral-Outbox-Id"] == str(message.id)
    assert mail.message.get_content_type() == "multipart/alternative"
    assert mail.text.strip() == "Plain text 0" and "<p>HTML 0</p>" in mail.html
    session.refresh(message)
    assert message.sent_at is not None and message.attempts == 1 and message.last_error is None


def test_text_only_message_is_not_multipart(app, session, smtp_server):
    queue(session, html=False)
    outbox.deliver_due(session, app.config)
    assert smtp_server.received[0].message.get_content_type() == "text/plain"


def test_failure_backs_off_exponentially_then_gives_up(make_app, session, closed_port):
    app = make_app(
        REFERRAL_SMTP_PORT=closed_port,
        REFERRAL_OUTBOX_MAX_ATTEMPTS=3,
        REFERRAL_OUTBOX_BACKOFF_SECONDS=10,
    )
    [message] = queue(session)
    start = utcnow()
    waits = []
    for attempt in (1, 2, 3):
        report = outbox.deliver_due(session, app.config, now=utcnow() + timedelta(days=attempt))
        assert report.failed == 1
        session.refresh(message)
        assert message.attempts == attempt and message.sent_at is None
        assert "ConnectionRefusedError" in message.last_error
        waits.append(message.next_attempt_at)
    # 10 s, then 20 s after the failure (the third is the last: given up)
    assert report.given_up == 1
    assert timedelta(seconds=9) < waits[0] - start < timedelta(seconds=15)
    assert timedelta(seconds=19) < waits[1] - start < timedelta(seconds=25)
    later = outbox.deliver_due(session, app.config, now=utcnow() + timedelta(days=30))
    assert (later.sent, later.failed) == (0, 0)
    session.refresh(message)
    assert message.attempts == 3


def test_not_due_yet_is_left_alone(app, session, smtp_server):
    [message] = queue(session)
    message.next_attempt_at = utcnow() + timedelta(minutes=10)
    session.commit()
    assert outbox.deliver_due(session, app.config).sent == 0
    assert outbox.deliver_due(session, app.config, now=utcnow() + timedelta(minutes=11)).sent == 1


def test_backoff_doubles_and_is_capped():
    config = {"REFERRAL_OUTBOX_BACKOFF_SECONDS": 60}
    assert [outbox.backoff(n, config).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert outbox.backoff(40, config) == outbox.MAX_BACKOFF


def test_a_refused_recipient_does_not_stop_the_others(app, session, smtp_server):
    smtp_server.refuse.add("gone@example.com")
    queue(session, 2)
    bad = queue_email(session, to="gone@example.com", subject="x", text="x")
    session.commit()
    queue(session, 1)
    report = outbox.deliver_due(session, app.config)
    assert (report.sent, report.failed) == (3, 1)
    session.refresh(bad)
    assert bad.sent_at is None and "No such user" in bad.last_error
    assert len(smtp_server.received) == 3


def test_concurrent_workers_send_each_message_once(app, smtp_server):
    engine = app.extensions["referral"].engine
    with Session(engine) as session:
        queue(session, 60)

    def worker(_: int) -> int:
        with Session(engine) as own:
            return outbox.deliver_due(own, app.config, limit=7).sent

    with ThreadPoolExecutor(max_workers=4) as pool:
        sent = sum(pool.map(worker, range(16)))
    ids = [m.message["X-Referral-Outbox-Id"] for m in smtp_server.received]
    assert sent == 60 and len(ids) == 60 and len(set(ids)) == 60
    with Session(engine) as session:
        rows = session.scalars(select(OutboxMessage)).all()
        assert all(m.sent_at and m.attempts == 1 for m in rows)


@pytest.mark.postgres
@pytest.mark.skipif(not PG_URL, reason="needs PostgreSQL (REFERRAL_TEST_DATABASE_URL)")
def test_postgres_claims_skip_rows_another_worker_holds(app, smtp_server):
    """Worker A holds its claim open; worker B skips those rows instead of waiting."""
    engine = app.extensions["referral"].engine
    with Session(engine) as session:
        queue(session, 4)
    now = utcnow()
    due = select(OutboxMessage.id).where(OutboxMessage.sent_at.is_(None)).order_by(OutboxMessage.id)
    with Session(engine) as a, Session(engine) as b:
        held = a.scalars(due.limit(2).with_for_update(skip_locked=True)).all()
        claimed_by_b = outbox.claim(b, app.config, limit=10, now=now)
        assert len(held) == 2 and claimed_by_b == sorted(set(range(1, 5)) - set(held))
        a.rollback()
    with Session(engine) as c:
        assert outbox.claim(c, app.config, limit=10, now=now) == sorted(held)


@pytest.fixture
def tls_context(tmp_path, monkeypatch) -> ssl.SSLContext:
    """A server certificate for 127.0.0.1 from a throwaway CA the client is told to trust."""
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))  # read by ssl.create_default_context()
    return context


def test_starttls(make_app, session, tls_context):
    handler = SMTPServer("127.0.0.1", 0)
    controller = _EphemeralController(
        handler.handler,
        hostname="127.0.0.1",
        port=0,
        tls_context=tls_context,
        require_starttls=True,
    )
    controller.start()
    try:
        plain = make_app(REFERRAL_SMTP_PORT=controller.port)
        [message] = queue(session)
        assert outbox.deliver_due(session, plain.config).failed == 1
        session.refresh(message)
        assert "STARTTLS" in message.last_error
        secure = make_app(REFERRAL_SMTP_PORT=controller.port, REFERRAL_SMTP_USE_TLS=True)
        report = outbox.deliver_due(session, secure.config, now=utcnow() + timedelta(hours=1))
        assert report.sent == 1
        [mail] = handler.received
        assert mail.tls and mail.rcpt_tos == ["person0@example.com"]
    finally:
        controller.stop()


def test_smtps(make_app, session, tls_context):
    handler = SMTPServer("127.0.0.1", 0)
    controller = _EphemeralController(
        handler.handler, hostname="127.0.0.1", port=0, ssl_context=tls_context
    )
    controller.start()
    try:
        app = make_app(REFERRAL_SMTP_PORT=controller.port, REFERRAL_SMTP_USE_SSL=True)
        queue(session)
        assert outbox.deliver_due(session, app.config).sent == 1
        assert handler.received[0].tls
        plain = make_app(REFERRAL_SMTP_PORT=controller.port, REFERRAL_SMTP_TIMEOUT=2)
        queue(session)
        assert outbox.deliver_due(session, plain.config).failed == 1
        assert len(handler.received) == 1
    finally:
        controller.stop()


def test_smtp_login(make_app, session):
    logins = []

    def authenticator(server, session_, envelope, mechanism, data):
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"clinic",
            b"s3cret",
        )
        logins.append((mechanism, ok))
        return AuthResult(success=ok)

    handler = SMTPServer("127.0.0.1", 0)
    controller = _EphemeralController(
        handler.handler,
        hostname="127.0.0.1",
        port=0,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    try:
        app = make_app(
            REFERRAL_SMTP_PORT=controller.port,
            REFERRAL_SMTP_USERNAME="clinic",
            REFERRAL_SMTP_PASSWORD="s3cret",
        )
        queue(session)
        assert outbox.deliver_due(session, app.config).sent == 1
        assert logins and all(ok for _, ok in logins)
        assert len(handler.received) == 1
        wrong = make_app(
            REFERRAL_SMTP_PORT=controller.port,
            REFERRAL_SMTP_USERNAME="clinic",
            REFERRAL_SMTP_PASSWORD="wrong",
            REFERRAL_SMTP_TIMEOUT=1,
        )
        queue(session)
        report = outbox.deliver_due(session, wrong.config)
        assert report.failed == 1 and (report.sent == 0)
        assert len(handler.received) == 1
    finally:
        controller.stop()


class _Hook:
    """A local HTTP endpoint recording webhook POSTs; answers with ``status``."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict, bytes]] = []
        self.status = 200
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                hook.requests.append((dict(self.headers), body))
                self.send_response(hook.status)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks/referral"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    endpoint = _Hook()
    yield endpoint
    endpoint.close()


def test_webhook_is_signed_and_retried(make_app, smtp_server, session, hook):
    app = make_app(
        REFERRAL_WEBHOOK_URL=hook.url,
        REFERRAL_WEBHOOK_SECRET="hook-secret",
        REFERRAL_OUTBOX_BACKOFF_SECONDS=0,
        **smtp_server.config,
    )
    message = outbox.queue_webhook(
        session, app.config, "referral.created", {"referral_id": "abc", "status": "sent"}
    )
    session.commit()
    hook.status = 500
    assert outbox.deliver_due(session, app.config).failed == 1
    session.refresh(message)
    assert message.sent_at is None and "500" in message.last_error
    hook.status = 204
    assert outbox.deliver_due(session, app.config).sent == 1
    assert len(hook.requests) == 2
    headers, body = hook.requests[-1]
    assert json.loads(body) == {"event": "referral.created", "referral_id": "abc", "status": "sent"}
    expected = "sha256=" + hmac.new(b"hook-secret", body, hashlib.sha256).hexdigest()
    assert headers["X-Referral-Signature"] == expected
    assert headers["X-Referral-Event"] == "referral.created"
    assert headers["Content-Type"] == "application/json"
    assert smtp_server.received == []


def test_no_webhook_without_url(app, session):
    assert outbox.queue_webhook(session, app.config, "referral.created", {}) is None


def test_send_outbox_command_once_and_as_a_worker(app, runner, session, smtp_server):
    queue(session, 2)
    result = runner.invoke(args=["referral", "send-outbox"])
    assert result.exit_code == 0 and "sent 2, failed 0" in result.output
    queue(session, 1)
    result = runner.invoke(
        args=["referral", "send-outbox", "--loop", "--interval", "0.01", "--passes", "3"]
    )
    assert result.exit_code == 0, result.output
    assert "Delivering the outbox every 0.01s" in result.output
    assert "sent 1, failed 0" in result.output
    assert len(smtp_server.received) == 3


def test_send_outbox_says_what_waits_and_when(make_app, runner, session, closed_port):
    down = make_app(REFERRAL_SMTP_PORT=closed_port)
    queue(session, 2)
    assert outbox.deliver_due(session, down.config).failed == 2
    # the server is back (the app fixture's), but both wait out their backoff
    result = runner.invoke(args=["referral", "send-outbox"])
    assert result.exit_code == 0, result.output
    assert "sent 0, failed 0, given up 0; 2 waiting, next try at 20" in result.output
    assert " UTC." in result.output


def test_send_outbox_now_retries_what_waits_out_its_backoff(
    make_app, session, closed_port, smtp_server
):
    down = make_app(REFERRAL_SMTP_PORT=closed_port)
    queue(session, 3)
    assert outbox.deliver_due(session, down.config).failed == 3
    back = make_app(**smtp_server.config)
    runner = back.test_cli_runner()
    assert "sent 0, failed 0" in runner.invoke(args=["referral", "send-outbox"]).output
    result = runner.invoke(args=["referral", "send-outbox", "--now"])
    assert result.exit_code == 0, result.output
    assert "3 waiting messages are due now." in result.output
    assert "sent 3, failed 0, given up 0; nothing waiting." in result.output
    assert len(smtp_server._received) == 3


def test_a_success_after_failures_retries_the_waiting_at_once(
    make_app, session, closed_port, smtp_server
):
    down = make_app(REFERRAL_SMTP_PORT=closed_port)
    queue(session, 4)
    assert outbox.deliver_due(session, down.config).failed == 4
    back = make_app(**smtp_server.config)
    queue_email(session, to="new@example.com", subject="New", text="after the outage")
    session.commit()
    report = outbox.deliver_due(session, back.config)
    assert (report.sent, report.failed) == (5, 0)
    assert outbox.waiting(session).count == 0


def test_a_permanent_refusal_fails_at_once_and_is_shown_to_admins(
    app, session, smtp_server, make_account, login_client, caplog
):
    smtp_server.refuse.add("gone@example.com")
    bad = queue_email(session, to="gone@example.com", subject="Hello", text="Hi\n")
    session.commit()
    report = outbox.deliver_due(session, app.config)
    assert (report.failed, report.given_up) == (1, 1)
    session.refresh(bad)
    assert bad.failed_at is not None and bad.attempts == 1
    assert bad.last_error == "recipient refused: 550 5.1.1 No such user here"
    later = outbox.deliver_due(session, app.config, now=utcnow() + timedelta(days=3))
    assert later.failed == 0 and outbox.waiting(session).count == 0
    # logs name the outbox id, not the address
    assert f"outbox message {bad.id} failed for good" in caplog.text
    assert "gone@example.com" not in caplog.text

    admin = make_account("root@example.com", admin=True, listing=False)
    page = login_client(admin).get("/find-a-therapist/admin/outbox")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert f"#{bad.id} email: Hello" in html and "550 5.1.1 No such user here" in html
    assert "nothing waiting" in html


def test_a_temporary_refusal_is_retried_and_no_address_is_kept():
    error = smtplib.SMTPRecipientsRefused({"person0@example.com": (450, b"mailbox busy")})
    assert not outbox.is_permanent(error)
    assert outbox.describe_error(error) == "recipient refused: 450 mailbox busy"
    assert outbox.describe_error(
        smtplib.SMTPDataError(550, b"<person0@example.com>: content refused")
    ) == ("SMTPDataError: 550 <[address]>: content refused")


def test_every_attempt_of_a_message_has_one_message_id(make_app, session, closed_port, smtp_server):
    [message] = queue(session)
    down = make_app(REFERRAL_SMTP_PORT=closed_port)
    outbox.deliver_due(session, down.config)
    session.refresh(message)
    first = message.message_id
    assert first and first.startswith("<") and "referral-outbox-" in first
    back = make_app(**smtp_server.config)
    outbox.retry_now(session)
    outbox.deliver_due(session, back.config)
    [mail] = smtp_server._received
    assert mail.message["Message-ID"].strip() == first


def test_purge_removes_old_sent_and_failed_messages(app, runner, session, smtp_server):
    sent, failed, fresh, waiting = queue(session, 4)
    now = utcnow()
    sent.sent_at = now - timedelta(days=31)
    failed.failed_at = now - timedelta(days=40)
    fresh.sent_at = now - timedelta(days=2)
    session.commit()
    result = runner.invoke(args=["referral", "purge", "--older-than", "365", "--yes"])
    assert result.exit_code == 0, result.output
    assert "Removed 2 sent or failed outbox messages older than 30 days." in result.output
    left = session.scalars(select(OutboxMessage.id).order_by(OutboxMessage.id)).all()
    assert left == [fresh.id, waiting.id]


def test_unreachable_server_is_tried_once_per_pass(make_app, session, closed_port):
    app = make_app(REFERRAL_SMTP_PORT=closed_port)
    queue(session, 3)
    report = outbox.deliver_due(session, app.config)
    assert report.failed == 3
    rows = session.scalars(select(OutboxMessage)).all()
    assert all(m.attempts == 1 and "ConnectionRefusedError" in m.last_error for m in rows)


def test_worker_survives_a_failing_pass():
    calls = []

    def deliver() -> outbox.DeliveryReport:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database restarting")
        return outbox.DeliveryReport(sent=2)

    said: list[str] = []
    assert outbox.run_worker(deliver, interval=0, passes=2, echo=said.append) == 2
    assert said == [
        "pass failed: RuntimeError: database restarting",
        "sent 2, failed 0, given up 0",
    ]


def test_the_background_sender_delivers_what_a_request_queued(
    make_app, session, add_practitioner, smtp_server
):
    app = make_app(REFERRAL_BACKGROUND_SENDER=True, **smtp_server.config)
    nina = add_practitioner("Nina", (-33.87, 151.21), email="nina@clinic.example")
    client = app.test_client()
    html = client.get(f"/find-a-therapist/practitioners/{nina.id}").get_data(as_text=True)
    fields = dict(re.findall(r'name="(csrf_token|idempotency_key)"[^>]*value="([^"]*)"', html))
    data = {**fields, "patient_name": "Pat Example", "email": "pat@example.com", "consent": "y"}
    assert (
        client.post(
            f"/find-a-therapist/practitioners/{nina.id}/referrals", follow_redirects=True, data=data
        ).status_code
        == 200
    )
    # nobody runs the outbox here: the sender thread the request woke delivers both
    deadline = time.monotonic() + 10
    while len(smtp_server._received) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sorted(r for m in smtp_server._received for r in m.rcpt_tos) == [
        "nina@clinic.example",
        "pat@example.com",
    ]
    app.extensions["referral"].sender.stop()


def test_the_background_sender_can_be_switched_off(make_app, session, smtp_server):
    app = make_app(REFERRAL_BACKGROUND_SENDER=False, **smtp_server.config)
    sender = app.extensions["referral"].sender
    sender.wake()
    assert sender._thread is None
