"""``flask referral sweep``: reminders, expiry with alternatives and the one-step re-send,
driven with an explicit "now" (nothing sleeps), delivered to a real SMTP server."""

from __future__ import annotations

import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from referral import sweep
from referral.db import get_session
from referral.models import ReferralEvent, ReferralRequest
from referral.referrals import ReferralData, create_referral, transition
from tests.conftest import csrf_token

PREFIX = "/find-a-therapist"
SITE = "https://clinic.example"
SECRET = "Sharp pain since lifting my grandson"
T0 = datetime(2026, 12, 1, 1, 0)  # a Tuesday, noon in Sydney


@pytest.fixture
def app(make_app, smtp_server):
    return make_app(REFERRAL_PUBLIC_URL=SITE, **smtp_server.config)


@pytest.fixture
def session(unbound_session):
    return unbound_session


@pytest.fixture
def nina(add_practitioner):
    return add_practitioner(
        "Nina Near",
        (-33.87, 151.21),
        conditions=("low-back-pain",),
        email="nina@clinic.example",
        phone="+61291234567",
    )


@pytest.fixture
def others(add_practitioner):
    """Four who treat low back pain, at growing distances; two who must never be offered."""
    near = [
        add_practitioner(f"Alt {n}", (-33.87 - n * 0.01, 151.21), conditions=("low-back-pain",))
        for n in range(1, 5)
    ]
    add_practitioner(
        "Full Fay", (-33.871, 151.21), conditions=("low-back-pain",), accepting_new_patients=False
    )
    add_practitioner("Neck Ned", (-33.872, 151.21), conditions=("neck-pain",))
    return near


def send(app, practitioner, at: datetime, **fields) -> ReferralRequest:
    with app.app_context():
        session = get_session()
        data = ReferralData(
            patient_name="Pat Patient",
            email="pat@example.com",
            phone="+61412345678",
            postcode="2000",
            condition_id=practitioner.conditions[0].id if practitioner.conditions else None,
            message=SECRET,
            consent_version="2026-11",
            **fields,
        )
        referral, _ = create_referral(session, session.merge(practitioner), data, now=at)
        return referral.id


def run(app, at: datetime) -> sweep.SweepReport:
    with app.app_context():
        return sweep.sweep(get_session(), app.config, at)


def trail(session, referral_id) -> list[tuple[str, str]]:
    session.expire_all()
    return [
        (e.actor, e.action)
        for e in session.scalars(
            select(ReferralEvent)
            .where(ReferralEvent.referral_id == referral_id)
            .order_by(ReferralEvent.id)
        )
    ]


def test_an_unopened_referral_reminds_its_practitioner_once_without_health_details(
    app, session, nina, smtp_server
):
    referral_id = send(app, nina, T0)
    assert len(smtp_server.received) == 2  # the notice and the acknowledgement
    assert run(app, T0 + timedelta(hours=47)).reminded == 0
    report = run(app, T0 + timedelta(hours=49))
    assert (report.reminded, report.expired) == (1, 0)
    [reminder] = smtp_server.received[2:]
    assert reminder.rcpt_tos == ["nina@clinic.example"]
    assert "waiting for you" in reminder.message["Subject"]
    assert f"{SITE}{PREFIX}/inbox" in reminder.text
    for private in ("Pat", SECRET, "pat@example.com", "back pain", "0412"):
        assert private not in reminder.text and private not in (reminder.html or "")
    assert trail(session, referral_id) == [("patient", "created"), ("system", "reminded")]
    # twice, and again later: nothing more
    assert run(app, T0 + timedelta(hours=49)).reminded == 0
    assert run(app, T0 + timedelta(hours=90)).reminded == 0
    assert len(smtp_server.received) == 3
    assert session.get(ReferralRequest, referral_id).reminded_at == T0 + timedelta(hours=49)


def test_an_opened_referral_is_not_reminded(app, session, nina, smtp_server):
    referral_id = send(app, nina, T0)
    with app.app_context():
        s = get_session()
        transition(s, s.get(ReferralRequest, referral_id), "viewed", f"practitioner:{nina.id}")
        s.commit()
    assert run(app, T0 + timedelta(hours=60)).reminded == 0
    assert ("system", "reminded") not in trail(session, referral_id)


def test_unanswered_expires_and_the_patient_is_offered_the_three_nearest_accepting(
    app, session, nina, others, smtp_server
):
    referral_id = send(app, nina, T0)
    assert run(app, T0 + timedelta(days=4, hours=23)).expired == 0
    report = run(app, T0 + timedelta(days=5, minutes=1))
    assert report.expired == 1
    session.expire_all()
    referral = session.get(ReferralRequest, referral_id)
    assert referral.status == "expired"
    assert trail(session, referral_id) == [
        ("patient", "created"),
        ("system", "reminded"),  # the sweep at 4 days 23 hours
        ("system", "expired"),
        ("system", "alternatives_offered"),
    ]
    offered = session.scalars(
        select(ReferralEvent.detail).where(ReferralEvent.action == "alternatives_offered")
    ).one()
    assert offered == " ".join(f"practitioner:{p.id}" for p in others[:3])
    [notice] = smtp_server.to("pat@example.com")[1:]
    assert "Alt 1" in notice.text and "Alt 3" in notice.text and "Alt 4" not in notice.text
    assert "Full Fay" not in notice.text and "Neck Ned" not in notice.text
    assert SECRET not in notice.text and "back pain" not in notice.text.lower()
    links = re.findall(rf"{SITE}{PREFIX}/referrals/resend/\S+", notice.text)
    assert len(links) == 3
    assert all(f'href="{link}"' in notice.html for link in links)
    assert f"{SITE}{PREFIX}/referrals/status/" in notice.text
    # running it again sends nothing again; the reminder is never sent after expiry
    before = len(smtp_server.received)
    assert run(app, T0 + timedelta(days=6)).expired == 0
    assert run(app, T0 + timedelta(days=6)).reminded == 0
    assert len(smtp_server.received) == before


def test_the_search_modality_narrows_the_alternatives(
    app, session, nina, add_practitioner, smtp_server
):
    physio = add_practitioner(
        "Physio Pia",
        (-33.9, 151.21),
        modalities=("physiotherapy",),
        conditions=("low-back-pain",),
    )
    add_practitioner("Massage Max", (-33.88, 151.21), conditions=("low-back-pain",))
    both = session.merge(nina)
    both.modalities = [*both.modalities, *session.merge(physio).modalities]
    session.commit()
    send(app, nina, T0, searched_modality="physiotherapy")
    run(app, T0 + timedelta(days=6))
    [notice] = smtp_server.to("pat@example.com")[1:]
    assert "Physio Pia" in notice.text and "Massage Max" not in notice.text


def test_a_re_send_from_the_expiry_email_sends_the_same_request_once(
    app, client, session, nina, others, smtp_server
):
    referral_id = send(app, nina, T0)
    run(app, T0 + timedelta(days=6))
    [notice] = smtp_server.to("pat@example.com")[1:]
    link = re.findall(rf"{SITE}(\S+/referrals/resend/\S+)", notice.text)[0]
    page = client.get(link)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Send your request to Alt 1?" in html
    assert "no-store" in page.headers["Cache-Control"]
    token = csrf_token(client, link)
    first = client.post(link, data={"csrf_token": token})
    assert first.status_code == 303 and "/referrals/status/" in first.headers["Location"]
    again = client.post(link, data={"csrf_token": token})
    assert again.headers["Location"] == first.headers["Location"]
    session.expire_all()
    new = session.scalars(
        select(ReferralRequest).where(ReferralRequest.practitioner_id == others[0].id)
    ).one()
    old = session.get(ReferralRequest, referral_id)
    assert (new.patient_name, new.email, new.phone, new.postcode, new.message) == (
        old.patient_name,
        old.email,
        old.phone,
        old.postcode,
        old.message,
    )
    assert new.condition_id == old.condition_id and new.status == "sent"
    assert new.consent_at > old.consent_at
    assert session.scalar(select(func.count()).select_from(ReferralRequest)) == 2
    assert trail(session, referral_id)[-1] == ("patient", "resent")
    assert "Alt 1" in client.get(first.headers["Location"]).get_data(as_text=True)
    # the patient has the new request's acknowledgement: sent, expired, sent again
    subjects = [m.message["Subject"] for m in smtp_server.to("pat@example.com")]
    assert [x.split(" · ")[0] for x in subjects] == [
        "We have received your request",
        "No answer yet: other practitioners near you",
        "We have received your request",
    ]


def test_a_re_send_without_the_form_token_or_while_open_sends_nothing(
    app, client, session, nina, others, smtp_server
):
    referral_id = send(app, nina, T0)
    with app.app_context():
        from referral.status import resend_token

        s = get_session()
        token = resend_token(s.get(ReferralRequest, referral_id), others[0].id)
    link = f"{PREFIX}/referrals/resend/{token}"
    still_open = client.get(link)
    assert still_open.status_code == 409 and "still with Nina Near" in still_open.get_data(
        as_text=True
    )
    run(app, T0 + timedelta(days=6))
    assert client.post(link, data={}).status_code == 400
    forged = client.get(link[:-3] + "abc")
    assert forged.status_code == 404 and "Pat" not in forged.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(ReferralRequest)) == 1
    # offered, then closed to new patients before the patient chose: not sent
    closed = session.merge(others[0])
    closed.capacity_status, closed.accepting_new_patients = "closed", False
    session.commit()
    shut = client.get(link)
    assert shut.status_code == 409 and "stopped taking new patients" in shut.get_data(as_text=True)
    assert session.scalar(select(func.count()).select_from(ReferralRequest)) == 1


def test_sweep_command_takes_now_and_refuses_a_bad_one(app, nina, smtp_server):
    send(app, nina, T0)
    runner = app.test_cli_runner()
    result = runner.invoke(args=["referral", "sweep", "--now", "2026-12-03T13:00:00+11:00"])
    assert result.exit_code == 0, result.output
    assert "reminded 1, expired 0" in result.output
    result = runner.invoke(args=["referral", "sweep", "--now", "2026-12-03T13:00:00+11:00"])
    assert "reminded 0, expired 0" in result.output
    bad = runner.invoke(args=["referral", "sweep", "--now", "next tuesday"])
    assert bad.exit_code == 2 and "not an ISO 8601 time" in bad.output
    looped = runner.invoke(
        args=["referral", "sweep", "--loop", "--passes", "1", "--now", "2026-12-09T00:00:00"]
    )
    assert looped.exit_code == 0 and "expired 1" in looped.output


def test_sweeps_running_at_once_remind_and_expire_each_referral_once(
    app, session, nina, others, smtp_server
):
    reminded = [send(app, nina, T0 + timedelta(minutes=n)) for n in range(3)]
    expiring = [send(app, nina, T0 - timedelta(days=6, minutes=n)) for n in range(3)]
    maker = app.extensions["referral"].sessionmaker
    barrier = threading.Barrier(3)
    at = T0 + timedelta(hours=50)

    def one_sweep(_: int) -> sweep.SweepReport:
        with app.app_context(), maker() as own:
            barrier.wait()
            return sweep.sweep(own, app.config, at)

    with ThreadPoolExecutor(max_workers=3) as pool:
        reports = list(pool.map(one_sweep, range(3)))
    assert sum(r.reminded for r in reports) == 3
    assert sum(r.expired for r in reports) == 3
    for referral_id in reminded:
        assert trail(session, referral_id).count(("system", "reminded")) == 1
    for referral_id in expiring:
        assert trail(session, referral_id).count(("system", "expired")) == 1
    subjects = [m.message["Subject"].split(" · ")[0] for m in smtp_server.received]
    assert subjects.count("A referral request is waiting for you") == 3
    assert subjects.count("No answer yet: other practitioners near you") == 3


def test_the_referring_practitioner_hears_of_the_expiry_without_health_details(
    app, session, nina, add_practitioner, smtp_server
):
    pete = add_practitioner("Pete Physio", (-33.9, 151.2), email="pete@clinic.example")
    with app.app_context():
        s = get_session()
        data = ReferralData(
            patient_name="Pat Patient",
            email="pat@example.com",
            message=SECRET,
            consent_version="2026-11",
        )
        create_referral(s, s.merge(nina), data, referrer=s.merge(pete), now=T0)
    run(app, T0 + timedelta(days=6))
    [_sent, expired] = smtp_server.to("pete@clinic.example")
    assert "is now expired" in expired.message["Subject"]
    assert SECRET not in expired.text and "Pat" not in expired.text
