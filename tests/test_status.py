"""The patient's status page behind the signed link in their emails: plain words per
status, contact details and "Book a time" once accepted, alternatives when declined, and
nothing at all for a wrong, forged or old link."""

from __future__ import annotations

import re
import time

import pytest
from itsdangerous import TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from referral.db import get_session
from referral.models import OutboxMessage, ReferralRequest
from referral.referrals import CANCEL_SALT, ReferralData, create_referral, transition
from referral.status import RESEND_SALT, STATUS_SALT, status_token

PREFIX = "/find-a-therapist"
SECRET = "Sharp pain since lifting my grandson"


@pytest.fixture
def app(make_app, smtp_server):
    return make_app(**smtp_server.config)


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
        booking_url="https://cal.com/nina/30min",
    )


def make(app, practitioner, **fields) -> tuple[str, str]:
    """A referral from Pat, and its status page's path."""
    with app.test_request_context("/"):
        s = get_session()
        p = s.merge(practitioner)
        data = ReferralData(
            patient_name="Pat Patient",
            email="pat@example.com",
            postcode="2000",
            condition_id=p.conditions[0].id if p.conditions else None,
            message=SECRET,
            consent_version="v",
            **fields,
        )
        referral, _ = create_referral(s, p, data)
        return referral.id, f"{PREFIX}/referrals/status/{status_token(referral)}"


def move(app, referral_id: str, *steps: str, **kwargs) -> None:
    with app.test_request_context("/"):
        s = get_session()
        referral = s.get(ReferralRequest, referral_id)
        for step in steps:
            transition(s, referral, step, "practitioner:1", **kwargs)
        s.commit()


def test_the_acknowledgement_links_to_a_page_in_plain_words(app, client, session, nina):
    referral_id, _ = make(app, nina)
    ack = session.scalars(
        select(OutboxMessage).where(OutboxMessage.recipient == "pat@example.com")
    ).one()
    [path] = re.findall(r"http://localhost(/\S+/referrals/status/\S+)", ack.body_text)
    page = client.get(path)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "no-store" in page.headers["Cache-Control"]
    assert "Sent: Nina Near has not opened it yet." in html
    assert "Cancel this request" in html
    # nothing of their health; no contact details before an answer
    assert SECRET not in html and "Low back pain" not in html
    assert "Book a time" not in html and "(02) 9123 4567" not in html
    move(app, referral_id, "viewed")
    assert "Opened: Nina Near has read your request" in client.get(path).get_data(as_text=True)


def test_accepted_shows_contact_details_and_a_prefilled_booking_link(
    app, client, session, nina, smtp_server
):
    referral_id, path = make(app, nina)
    move(app, referral_id, "accepted")
    html = client.get(path).get_data(as_text=True)
    assert "Accepted: Nina Near will contact you" in html
    assert "(02) 9123 4567" in html and "nina@clinic.example" in html
    booking = "https://cal.com/nina/30min?name=Pat+Patient&amp;email=pat%40example.com"
    assert f'href="{booking}"' in html and "Book a time" in html
    [accepted] = smtp_server.to("pat@example.com")[1:]
    assert "Book a time online:" in accepted.text
    assert "https://cal.com/nina/30min?name=Pat+Patient&email=pat%40example.com" in accepted.text
    assert 'href="https://cal.com/nina/30min?name=Pat+Patient&amp;email=pat%40example.com"' in (
        accepted.html
    )


def test_declined_shows_why_in_general_and_alternatives_to_re_send_to(
    app, client, session, nina, add_practitioner
):
    add_practitioner("Alt Ada", (-33.88, 151.21), conditions=("low-back-pain",))
    add_practitioner("Neck Ned", (-33.875, 151.21), conditions=("neck-pain",))
    referral_id, path = make(app, nina)
    move(app, referral_id, "declined", reason="My private note", category="too_far")
    html = client.get(path).get_data(as_text=True)
    assert "Declined: Nina Near is not able to take your request." in html
    assert "You are outside the area they cover." in html and "My private note" not in html
    assert "Send my request to Alt Ada" in html and "Neck Ned" not in html
    [link] = re.findall(rf'href="({PREFIX}/referrals/resend/[^"]+)"', html)
    assert "Send your request to Alt Ada?" in client.get(link).get_data(as_text=True)


def test_wrong_forged_or_old_status_links_show_nothing(app, client, session, nina):
    referral_id, path = make(app, nina)
    token = path.rsplit("/", 1)[1]

    class SignedLongAgo(TimestampSigner):
        def get_timestamp(self) -> int:
            return int(time.time()) - 181 * 86400

    forged = URLSafeTimedSerializer("not-the-key", salt=STATUS_SALT).dumps(referral_id)
    cancel = URLSafeTimedSerializer(app.secret_key, salt=CANCEL_SALT).dumps(referral_id)
    resend = URLSafeTimedSerializer(app.secret_key, salt=RESEND_SALT).dumps(referral_id)
    unknown = URLSafeTimedSerializer(app.secret_key, salt=STATUS_SALT).dumps("no-such-id")
    old = URLSafeTimedSerializer(app.secret_key, salt=STATUS_SALT, signer=SignedLongAgo).dumps(
        referral_id
    )
    for bad, status in (
        (forged, 404),
        (cancel, 404),  # another link's token opens nothing here
        (resend, 404),
        (token[:-2] + "xx", 404),
        (referral_id, 404),
        (unknown, 404),
        (old, 410),
    ):
        page = client.get(f"{PREFIX}/referrals/status/{bad}")
        html = page.get_data(as_text=True)
        assert page.status_code == status, bad
        for private in ("Pat", "pat@example.com", "Nina Near", SECRET):
            assert private not in html
    # the resend page refuses a status token, and a status token for another referral
    # opens that referral only
    assert client.get(f"{PREFIX}/referrals/resend/{token}").status_code == 404
    _, other_path = make(app, nina)
    assert other_path != path and client.get(other_path).status_code == 200


def test_the_form_remembers_the_modality_searched_by(app, client, session, nina, add_practitioner):
    from urllib.parse import quote

    pia = add_practitioner(
        "Pia", (-33.87, 151.21), modalities=("physiotherapy", "remedial-massage")
    )
    for back, stored in (
        ("postcode=2000&modality=physiotherapy", "physiotherapy"),
        ("postcode=2000&modality=physiotherapy&modality=yoga", None),  # not one modality
        ("postcode=2000&modality=yoga", None),  # not one Pia practises
        ("postcode=2000", None),
    ):
        html = client.get(f"{PREFIX}/practitioners/{pia.id}").get_data(as_text=True)
        hidden = dict(
            re.findall(r'<input[^>]*name="(csrf_token|idempotency_key)"[^>]*value="([^"]*)"', html)
        )
        sent = client.post(
            f"{PREFIX}/practitioners/{pia.id}/referrals?back={quote(back)}",
            data={**hidden, "patient_name": "Pat", "email": "pat@example.com", "consent": "y"},
        )
        assert sent.status_code == 303
        session.expire_all()
        newest = session.scalars(
            select(ReferralRequest).order_by(ReferralRequest.created_at.desc())
        ).first()
        assert newest.searched_modality == stored, back
