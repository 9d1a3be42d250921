"""Referring a patient on, and the outcome that comes back to the referrer: end to end
with real CSRF, a real SMTP server, and the wrong people on every route."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import func, select

from referral import referon
from referral.errors import InvalidInput
from referral.models import OutboxMessage, ReferralEvent, ReferralRequest
from referral.referrals import ReferralData, create_referral
from tests.test_refer import PREFIX, SECRET_MESSAGE, form_for

NOTE = "Please see her for soft tissue work; she is doing her exercises"
OUTCOME_NOTE = "Pain down from 7 to 2 after four sessions"


@pytest.fixture
def app(make_app, smtp_server):
    return make_app(**smtp_server.config)


@pytest.fixture
def session(unbound_session):
    return unbound_session


@pytest.fixture
def people(add_practitioner, add_account):
    """Nina (physio) gets the patient's referral and refers on to Otto (massage); Ivan is
    another practitioner; Ada an admin."""
    users = {f"{k}_user": add_account(f"{k}@login.example") for k in ("nina", "otto", "ivan")}
    nina = add_practitioner(
        "Nina Near",
        (-33.87, 151.21),
        modalities=("physiotherapy",),
        conditions=("low-back-pain",),
        email="nina@clinic.example",
        user_id=users["nina_user"].id,
    )
    otto = add_practitioner(
        "Otto Other",
        (-33.88, 151.20),
        conditions=("low-back-pain",),
        email="otto@clinic.example",
        phone="+61 2 9999 0000",
        user_id=users["otto_user"].id,
    )
    ivan = add_practitioner(
        "Ivan Intruder",
        (-37.81, 144.96),
        email="ivan@clinic.example",
        user_id=users["ivan_user"].id,
    )
    admin = add_account("ada@admin.example", admin=True)
    return {"nina": nina, "otto": otto, "ivan": ivan, "admin": admin, **users}


@pytest.fixture
def first(client, session, people, smtp_server, login_client):
    """The patient's referral to Nina, opened by her, its emails delivered."""
    response = client.post(
        f"{PREFIX}/practitioners/{people['nina'].id}/referrals",
        data=form_for(client, people["nina"].id),
    )
    assert response.status_code == 303
    referral = session.scalars(select(ReferralRequest)).one()
    assert login_client(people["nina_user"]).get(f"{PREFIX}/inbox/{referral.id}").status_code
    smtp_server.received.clear()
    session.refresh(referral)
    assert referral.status == "viewed"
    return referral


def csrf(client, url: str) -> str:
    html = client.get(url).get_data(as_text=True)
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert match, url
    return match.group(1)


def actions(session, referral_id: str) -> list[tuple[str, str]]:
    session.expire_all()
    events = session.scalars(
        select(ReferralEvent)
        .where(ReferralEvent.referral_id == referral_id)
        .order_by(ReferralEvent.id)
    )
    return [(e.actor, e.action) for e in events]


def post_refer_on(client, referral_id: str, to_id: int, **data):
    url = f"{PREFIX}/inbox/{referral_id}/refer-on/{to_id}"
    return client.post(url, data={"csrf_token": csrf(client, url), **data})


def onward_of(session, first) -> ReferralRequest:
    session.expire_all()
    return session.scalars(
        select(ReferralRequest).where(ReferralRequest.referred_from_id == first.id)
    ).one()


def count(session, model) -> int:
    session.expire_all()
    return session.scalar(select(func.count()).select_from(model))


def test_refer_on_in_two_steps_links_both_and_tells_the_patient(
    login_client, session, people, first, smtp_server
):
    nina, otto = people["nina"], people["otto"]
    client = login_client(people["nina_user"])
    page = client.get(f"{PREFIX}/inbox/{first.id}").get_data(as_text=True)
    assert "Refer on to another practitioner" in page

    # step 1: the directory search, started from the patient's postcode and condition
    search = client.get(f"{PREFIX}/inbox/{first.id}/refer-on")
    assert search.status_code == 200
    html = search.get_data(as_text=True)
    assert 'value="2000"' in html and 'value="low-back-pain" selected' in html
    assert "Otto Other" in html and "Choose Otto Other" in html
    assert "Choose Nina Near" not in html  # never herself
    assert "Ivan Intruder" not in html  # too far, and no low back pain
    chosen = f"{PREFIX}/inbox/{first.id}/refer-on/{otto.id}"
    assert chosen in html

    # step 2: confirm, with a note
    confirm = client.get(chosen).get_data(as_text=True)
    assert "Step 2 of 2" in confirm and "Pat Patient" in confirm and SECRET_MESSAGE in confirm
    assert "patient_agreed" not in confirm  # their consent (2026-12) covers passing it on
    response = post_refer_on(client, first.id, otto.id, note=NOTE)
    assert response.status_code == 303
    assert response.location.endswith(f"/inbox/{first.id}")

    onward = onward_of(session, first)
    session.refresh(first)
    assert first.status == "referred_on" and first.outcome == "referred_on"
    assert [r.id for r in first.referred_to] == [onward.id]
    assert onward.referred_from_id == first.id
    assert (onward.practitioner_id, onward.referrer_id) == (otto.id, nina.id)
    assert (onward.patient_name, onward.email, onward.phone, onward.postcode) == (
        first.patient_name,
        first.email,
        first.phone,
        first.postcode,
    )
    assert onward.condition_id == first.condition_id and onward.message == SECRET_MESSAGE
    assert onward.referrer_note == NOTE and onward.status == "sent"
    assert (onward.consent_version, onward.consent_at) == (first.consent_version, first.consent_at)
    actor = f"practitioner:{nina.id}"
    assert actions(session, first.id)[-1] == (actor, "referred_on")
    assert actions(session, onward.id) == [(actor, "created")]

    # the patient is told who has their request now; Otto gets a notice, Nina a copy
    [to_patient] = smtp_server.to("pat@example.com")
    assert "Nina Near has referred you to Otto Other" in to_patient.text
    assert "9999 0000" in to_patient.text  # how to reach Otto
    assert "from Nina Near" in smtp_server.to("otto@clinic.example")[0].text
    assert smtp_server.to("nina@clinic.example")
    for mail in smtp_server.received:
        whole = mail.message.as_string()
        for secret in (SECRET_MESSAGE, NOTE, "Low back pain", "low-back-pain"):
            assert secret not in whole, (mail.rcpt_tos, secret)

    # both pages show the link, each to whoever may read the other referral
    page = client.get(f"{PREFIX}/inbox/{first.id}").get_data(as_text=True)
    assert "Referred on" in page and f"/inbox/{onward.id}" in page
    assert "Refer on to another practitioner" not in page  # it has ended
    otto_page = login_client(people["otto_user"]).get(f"{PREFIX}/inbox/{onward.id}")
    html = otto_page.get_data(as_text=True)
    assert "Referred by" in html and "Nina Near" in html and NOTE in html
    assert f"/inbox/{first.id}" not in html  # Otto may not read the first referral


def test_outcome_reaches_the_referrer_page_but_no_email(
    login_client, session, people, first, smtp_server
):
    nina_client = login_client(people["nina_user"])
    assert post_refer_on(nina_client, first.id, people["otto"].id).status_code == 303
    onward = onward_of(session, first)
    smtp_server.received.clear()

    otto = login_client(people["otto_user"])
    url = f"{PREFIX}/inbox/{onward.id}"
    token = csrf(otto, url)
    assert otto.post(f"{url}/accept", data={"csrf_token": token}).status_code == 302
    page = otto.get(url).get_data(as_text=True)
    assert "What came of it" in page and "Did not attend" in page
    assert "(Nina Near will see it)" in page
    response = otto.post(
        f"{url}/complete",
        data={"csrf_token": token, "outcome": "improved", "outcome_note": OUTCOME_NOTE},
    )
    assert response.status_code == 302
    session.refresh(onward)
    assert (onward.status, onward.outcome, onward.outcome_note) == (
        "completed",
        "improved",
        OUTCOME_NOTE,
    )
    assert actions(session, onward.id)[-1] == (f"practitioner:{people['otto'].id}", "completed")

    sent = nina_client.get(f"{PREFIX}/inbox/sent").get_data(as_text=True)
    row = re.search(rf'<tr data-referral="{onward.id}">.*?</tr>', sent, re.S).group(0)
    assert "Otto Other" in row and "Completed" in row and f"Improved: {OUTCOME_NOTE}" in row
    # Nina opens the referral she sent and reads the outcome there too
    detail = nina_client.get(url).get_data(as_text=True)
    assert OUTCOME_NOTE in detail and "Mark completed" not in detail
    subjects = [m.message["Subject"] for m in smtp_server.to("nina@clinic.example")]
    assert subjects[-1].startswith("Your referral is now completed")
    for mail in smtp_server.received:
        whole = mail.message.as_string()
        assert OUTCOME_NOTE not in whole and "Improved" not in whole and "improved" not in whole


def test_first_referrals_referrer_hears_referred_on_in_words(
    login_client, session, people, smtp_server
):
    """A chain: Ivan refers to Nina, Nina refers on to Otto; Ivan follows his own."""
    ivan = login_client(people["ivan_user"])
    nina_id = people["nina"].id
    ivan.post(f"{PREFIX}/practitioners/{nina_id}/referrals", data=form_for(ivan, nina_id))
    first = session.scalars(select(ReferralRequest)).one()
    nina = login_client(people["nina_user"])
    nina.get(f"{PREFIX}/inbox/{first.id}")
    smtp_server.received.clear()
    assert post_refer_on(nina, first.id, people["otto"].id).status_code == 303
    subjects = [m.message["Subject"] for m in smtp_server.to("ivan@clinic.example")]
    assert [s.split(" · ")[0] for s in subjects] == ["Your referral is now referred on"]
    sent = ivan.get(f"{PREFIX}/inbox/sent").get_data(as_text=True)
    assert "Referred on" in sent
    # Ivan reads his own referral, not the onward one (he is neither its sender nor recipient)
    onward = onward_of(session, first)
    assert ivan.get(f"{PREFIX}/inbox/{first.id}").status_code == 200
    assert ivan.get(f"{PREFIX}/inbox/{onward.id}").status_code == 404
    assert f"/inbox/{onward.id}" not in ivan.get(f"{PREFIX}/inbox/{first.id}").get_data(
        as_text=True
    )


ROUTES = [
    ("get", "/inbox/{id}"),
    ("get", "/inbox/{id}/export.json"),
    ("get", "/inbox/{id}/refer-on"),
    ("get", "/inbox/{id}/refer-on/{to}"),
    ("post", "/inbox/{id}/refer-on/{to}"),
    ("post", "/inbox/{id}/complete"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
def test_someone_else_gets_404_on_both_referrals(
    login_client, session, people, first, method, path
):
    nina = login_client(people["nina_user"])
    assert post_refer_on(nina, first.id, people["otto"].id).status_code == 303
    onward = onward_of(session, first)
    before = {r: actions(session, r) for r in (first.id, onward.id)}
    ivan = login_client(people["ivan_user"])
    token = csrf(ivan, f"{PREFIX}/practitioners/{people['nina'].id}")
    for referral_id in (first.id, onward.id):
        url = PREFIX + path.format(id=referral_id, to=people["ivan"].id)
        response = getattr(ivan, method)(
            url, data={"csrf_token": token, "outcome": "improved", "note": "x"}
        )
        assert response.status_code == 404, url
        assert "Pat Patient" not in response.get_data(as_text=True)
    assert {r: actions(session, r) for r in (first.id, onward.id)} == before
    assert count(session, ReferralRequest) == 2


def test_who_may_read_which(login_client, session, people, first):
    nina = login_client(people["nina_user"])
    assert post_refer_on(nina, first.id, people["otto"].id).status_code == 303
    onward = onward_of(session, first)
    otto, admin = login_client(people["otto_user"]), login_client(people["admin"])
    assert nina.get(f"{PREFIX}/inbox/{onward.id}").status_code == 200  # its referrer
    assert otto.get(f"{PREFIX}/inbox/{first.id}").status_code == 404  # not his
    for referral_id in (first.id, onward.id):
        assert admin.get(f"{PREFIX}/inbox/{referral_id}").status_code == 200
        assert admin.get(f"{PREFIX}/inbox/{referral_id}/export.json").status_code == 200
    # reading is not answering: the referrer and an admin may not refer on or complete
    for client, referral_id in ((nina, onward.id), (admin, onward.id)):
        assert client.get(f"{PREFIX}/inbox/{referral_id}/refer-on").status_code == 403
        token = csrf(client, f"{PREFIX}/practitioners/{people['otto'].id}")
        response = client.post(
            f"{PREFIX}/inbox/{referral_id}/refer-on/{people['ivan'].id}",
            data={"csrf_token": token},
        )
        assert response.status_code == 403
    assert count(session, ReferralRequest) == 2


def test_anonymous_is_sent_to_sign_in(app, first, people):
    client = app.test_client()
    for url in (
        f"{PREFIX}/inbox/{first.id}/refer-on",
        f"{PREFIX}/inbox/{first.id}/refer-on/{people['otto'].id}",
    ):
        response = client.get(url)
        assert response.status_code == 302 and "/account/login?next=" in response.location


def test_old_consent_needs_the_practitioners_confirmation(
    login_client, session, people, app, smtp_server
):
    """A referral sent under the 2026-11 wording, which did not cover passing details on."""
    with app.test_request_context():
        old, _ = create_referral(
            session,
            session.merge(people["nina"]),
            ReferralData(
                patient_name="Olive Older",
                email="olive@example.com",
                postcode="2000",
                consent_version="2026-11",
            ),
        )
    nina = login_client(people["nina_user"])
    page = nina.get(f"{PREFIX}/inbox/{old.id}").get_data(as_text=True)
    # the words Olive agreed to, not today's
    assert "and may contact me about this request.</q>" in page
    assert "pass them on" not in page
    url = f"{PREFIX}/inbox/{old.id}/refer-on/{people['otto'].id}"
    assert "The patient has agreed that I pass their details on" in nina.get(url).get_data(
        as_text=True
    )
    response = post_refer_on(nina, old.id, people["otto"].id)
    assert response.status_code == 400
    assert "Please confirm that the patient has agreed." in response.get_data(as_text=True)
    assert count(session, ReferralRequest) == 1
    session.refresh(old)
    assert old.status == "viewed"

    assert post_refer_on(nina, old.id, people["otto"].id, patient_agreed="y").status_code == 303
    onward = onward_of(session, old)
    assert onward.consent_version == "2026-12" and onward.consent_at > old.consent_at
    session.expire_all()
    created = session.scalars(
        select(ReferralEvent).where(ReferralEvent.referral_id == onward.id)
    ).one()
    assert "confirmed the patient's agreement" in created.detail


def test_bad_choices_get_clear_messages_and_change_nothing(
    login_client, session, people, first, add_practitioner
):
    nina = login_client(people["nina_user"])
    pending = add_practitioner("Pending Pam", (-33.87, 151.2), status="pending")
    cases = [
        (people["nina"].id, {}, 400, "You cannot refer a patient to yourself."),
        (pending.id, {}, 404, "That practitioner is not in the directory."),
        (999_999, {}, 404, "That practitioner is not in the directory."),
        (people["otto"].id, {"note": "x" * 1001}, 400, "Field cannot be longer than 1000"),
    ]
    for to_id, data, status, message in cases:
        url = f"{PREFIX}/inbox/{first.id}/refer-on/{to_id}"
        token = csrf(nina, f"{PREFIX}/inbox/{first.id}")
        response = nina.post(url, data={"csrf_token": token, **data})
        assert response.status_code == status, to_id
        assert message in response.get_data(as_text=True), to_id
    response = nina.post(f"{PREFIX}/inbox/{first.id}/refer-on/{people['otto'].id}")
    assert response.status_code == 400  # no CSRF token
    session.refresh(first)
    assert first.status == "viewed" and count(session, ReferralRequest) == 1
    assert count(session, OutboxMessage) == 2  # the original two: nothing queued since


def test_a_search_that_finds_no_place_says_so(login_client, people, first):
    nina = login_client(people["nina_user"])
    response = nina.get(f"{PREFIX}/inbox/{first.id}/refer-on?postcode=9999")
    assert response.status_code == 404
    assert 'role="alert"' in response.get_data(as_text=True)


def test_a_second_submit_is_409_and_refers_nobody_twice(login_client, session, people, first):
    nina = login_client(people["nina_user"])
    url = f"{PREFIX}/inbox/{first.id}/refer-on/{people['otto'].id}"
    token = csrf(nina, url)
    assert nina.post(url, data={"csrf_token": token}).status_code == 303
    again = nina.post(url, data={"csrf_token": token})
    assert again.status_code == 409
    assert "This referral is referred on: only one you have opened" in again.get_data(as_text=True)
    assert nina.get(f"{PREFIX}/inbox/{first.id}/refer-on").status_code == 409
    assert count(session, ReferralRequest) == 2


def test_only_read_open_referrals_can_be_referred_on(app, session, people):
    with app.test_request_context():
        nina, otto = session.merge(people["nina"]), session.merge(people["otto"])
        data = ReferralData(patient_name="Sam", email="sam@example.com", consent_version="2026-12")
        referral, _ = create_referral(session, nina, data)
        assert not referon.may_refer_on(referral, nina)  # not opened yet
        with pytest.raises(InvalidInput) as caught:
            referon.refer_on(session, referral, otto, config=app.config)
        assert caught.value.status == 409 and "it is sent" in caught.value.message
        referral.status = "declined"
        session.commit()
        with pytest.raises(InvalidInput):
            referon.refer_on(session, referral, otto, config=app.config)
        assert count(session, ReferralRequest) == 1


def test_complete_refuses_an_unknown_outcome(app, session, people):
    with app.test_request_context():
        nina = session.merge(people["nina"])
        data = ReferralData(patient_name="Sam", email="sam@example.com", consent_version="2026-12")
        referral, _ = create_referral(session, nina, data)
        referral.status = "accepted"
        session.commit()
        with pytest.raises(InvalidInput) as caught:
            referon.complete(session, referral, "practitioner:1", "cured")
        assert caught.value.code == "invalid_outcome"
        with pytest.raises(InvalidInput):
            referon.complete(session, referral, "practitioner:1", "improved", "x" * 1001)
        session.rollback()
        session.refresh(referral)
        assert referral.status == "accepted" and referral.outcome is None
        referon.complete(session, referral, "practitioner:1", "did_not_attend", "  ")
        session.refresh(referral)
        assert (referral.status, referral.outcome, referral.outcome_note) == (
            "completed",
            "did_not_attend",
            None,
        )
