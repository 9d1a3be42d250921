"""Times, phone numbers, statuses and trail entries as people read them."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from referral import wording
from referral.models import Practitioner, ReferralRequest

P = "/find-a-therapist"


@pytest.mark.parametrize(
    ("zone", "stored", "shown"),
    [
        # 18:57 UTC is 05:57 the next morning in Sydney in summer (AEDT, UTC+11)
        ("Australia/Sydney", datetime(2026, 12, 1, 18, 57), "2 Dec 2026, 5:57 am AEDT"),
        ("Australia/Sydney", datetime(2026, 6, 1, 2, 5), "1 Jun 2026, 12:05 pm AEST"),
        ("Australia/Perth", datetime(2026, 12, 1, 18, 57), "2 Dec 2026, 2:57 am AWST"),
        ("UTC", datetime(2026, 12, 1, 0, 30), "1 Dec 2026, 12:30 am UTC"),
    ],
)
def test_times_are_shown_in_the_sites_zone(make_app, zone, stored, shown):
    app = make_app(REFERRAL_TIMEZONE=zone)
    with app.app_context():
        assert wording.localtime(stored) == shown


def test_a_misspelt_time_zone_fails_at_start_up(make_app):
    with pytest.raises(ValueError, match="REFERRAL_TIMEZONE 'Sydney' is not a time zone"):
        make_app(REFERRAL_TIMEZONE="Sydney")


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        ("+61412345678", "0412 345 678"),
        ("+61291234567", "(02) 9123 4567"),
        ("+442079460000", "+44 20 7946 0000"),
        ("not a number", "not a number"),
        (None, ""),
    ],
)
def test_phone_numbers_are_written_as_people_there_write_them(app, stored, shown):
    with app.app_context():
        assert wording.phone(stored) == shown


def test_statuses_and_trail_entries_read_as_words():
    assert wording.status_words("sent") == "New"
    assert wording.status_words("viewed") == "Opened"
    names = {361: "Nina Near"}
    assert wording.actor_words("practitioner:361", names) == "Nina Near"
    assert wording.actor_words("practitioner:9", names) == "A practitioner"
    assert wording.actor_words("patient") == "The patient"
    assert wording.actor_words("admin:root@example.com") == "An admin"
    assert wording.trail_words("created") == "sent the request"


def test_the_referral_page_speaks_words_not_codes(login_client, unbound_session, make_account):
    session = unbound_session
    user = make_account("nina@example.com", status="active")
    nina = session.scalars(select(Practitioner).where(Practitioner.user_id == user.id)).one()
    session.add(
        ReferralRequest(
            practitioner_id=nina.id,
            patient_name="Pat",
            email="pat@example.com",
            phone="+61412345678",
            consent_version="1",
            consent_at=datetime(2026, 12, 1, 18, 57),
            created_at=datetime(2026, 12, 1, 18, 57),
        )
    )
    session.commit()
    referral = session.scalars(select(ReferralRequest)).one()
    page = login_client(user).get(f"{P}/inbox/{referral.id}").get_data(as_text=True)
    assert "2 Dec 2026, 5:57 am AEDT" in page and "UTC" not in page
    assert "0412 345 678" in page
    assert "Nina" in page and "opened it" in page  # her own opening, in the trail
    assert "practitioner:" not in page
    assert 'Status: <strong class="referral-status">Opened</strong>' in page
