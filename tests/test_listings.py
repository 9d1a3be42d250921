from __future__ import annotations

import pytest
from sqlalchemy import select

from referral import listings
from referral.errors import InvalidInput
from referral.models import Location, Practitioner
from referral.signals import listing_submitted
from tests.conftest import post_form, sign_in

P = "/find-a-therapist"
PROFILE = {
    "name": "Ana Lima",
    "business_name": "Harbour Massage",
    "bio": "Remedial massage for desk workers.",
    "phone": "02 9123 4567",
    "website": "harbourmassage.example.com",
    "modalities": ["remedial-massage", "myotherapy"],
    "conditions": ["low-back-pain"],
    "funds": {"bupa": "123456A", "hcf": None},
    "accreditation_body": "Massage & Myotherapy Australia",
    "membership_number": "M12345",
    "languages": "English, Portuguese",
    "accepting_new_patients": True,
    "telehealth": False,
    "home_visits": True,
}
PLACE = {
    "street": "1 George St",
    "suburb": "Sydney",
    "state": "NSW",
    "postcode": "2000",
    "country": "AU",
    "home_visit_radius_km": 10.0,
    "opening_hours": {"mon": "9-17", "tue": "09:00-12:30, 13:30-17:00"},
}


@pytest.fixture
def mine(session, make_account):
    user = make_account("ana@example.com")
    return session.scalars(select(Practitioner).where(Practitioner.user_id == user.id)).one()


@pytest.fixture
def submitted():
    seen = []

    def record(sender, practitioner):
        seen.append(practitioner.id)

    listing_submitted.connect(record)
    yield seen
    listing_submitted.disconnect(record)


def test_update_profile_stores_every_field(session, mine, app):
    assert listings.update_profile(session, mine, PROFILE, "AU") is False
    session.expire_all()
    p = session.get(Practitioner, mine.id)
    assert p.name == "Ana Lima" and p.business_name == "Harbour Massage"
    assert p.website == "https://harbourmassage.example.com"
    assert [m.slug for m in p.modalities] == ["myotherapy", "remedial-massage"]
    assert [c.slug for c in p.conditions] == ["low-back-pain"]
    assert {pf.fund.slug: pf.provider_number for pf in p.funds} == {"bupa": "123456A", "hcf": None}
    assert p.languages == ["English", "Portuguese"]
    assert p.home_visits and p.accepting_new_patients and not p.telehealth
    assert p.status == "draft"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"name": " "}, "enter your name"),
        ({"name": "Ana https://evil.example/login"}, "without a web address"),
        ({"business_name": "Harbour www.evil.example"}, "without a web address"),
        ({"modalities": ["reiki"]}, "Unknown modality: reiki"),
        ({"website": "javascript:alert(1)"}, "website address"),
        ({"website": "http://[oops.example"}, "website address"),
        ({"website": "https://[::1"}, "website address"),
        ({"phone": "12"}, "phone number"),
        ({"funds": {"nope": None}}, "Unknown fund"),
        ({"languages": ",".join("x" * 50 for _ in range(2))}, "languages"),
    ],
)
def test_bad_profile_input_changes_nothing(session, mine, change, message):
    with pytest.raises(InvalidInput, match=message):
        listings.update_profile(session, mine, {**PROFILE, **change}, "AU")
    session.rollback()
    assert session.get(Practitioner, mine.id).business_name is None


@pytest.mark.parametrize(
    "name",
    [
        "Eve ... visit https://evil.example/login now",
        "hxxp://x HTTPS://EVIL.EXAMPLE",
        "Visit WWW.evil.example",
        "Eve, see evil.example/login",
        "Eve at evil.co.uk:8080/x",
        "<script>alert(1)</script>",
        "Eve > Bob",
        "Eve\nBcc: bob@example.com",
        "Eve\x00",
        "Eve\u2028Bob",
        "Eve \u202egnp.exe",
    ],
)
def test_check_name_refuses_web_addresses_markup_and_control_characters(name):
    with pytest.raises(InvalidInput) as caught:
        listings.check_name(name)
    assert caught.value.code == "invalid_name"
    assert caught.value.message == (
        "Please write just the name here, without a web address or the signs < and >."
    )


@pytest.mark.parametrize(
    "name",
    [
        "Dr. J. O'Brien-Smith",
        "Zoë Ångström",
        "李小龍",
        "Massage @ Home",
        "St. Kilda Physio & Pilates Pty. Ltd.",
        "Body/Mind Studio",
        "Ana (she/her)",
    ],
)
def test_check_name_keeps_real_names_stripped(name):
    assert listings.check_name(f"  {name} ") == name


def test_editor_shows_a_refused_business_name_beside_its_field(client, session, mine):
    sign_in(client, "ana@example.com")
    data = {**_form(PROFILE), "business_name": "Harbour <a href=x>Massage</a>"}
    response = post_form(client, f"{P}/account/listing", data)
    html = response.get_data(as_text=True)
    assert response.status_code == 400 and "without a web address" in html
    session.expire_all()
    assert session.get(Practitioner, mine.id).business_name is None


def test_location_is_geocoded_from_postcode_with_opening_hours(session, mine):
    location = listings.save_location(
        session, mine, None, PLACE, {"REFERRAL_DEFAULT_COUNTRY": "AU"}
    )
    session.expire_all()
    stored = session.get(Location, location.id)
    assert stored.lat == pytest.approx(-33.8649, abs=1e-3)  # mean of the two 2000 centroids
    assert stored.opening_hours == {
        "mon": [["09:00", "17:00"]],
        "tue": [["09:00", "12:30"], ["13:30", "17:00"]],
    }
    assert stored.home_visit_radius_km == 10.0


def test_suburb_is_used_when_there_is_no_postcode(session, mine):
    place = {**PLACE, "postcode": "", "suburb": "Parramatta"}
    location = listings.save_location(
        session, mine, None, place, {"REFERRAL_DEFAULT_COUNTRY": "AU"}
    )
    assert (location.lat, location.lon) == (-33.8150, 151.0010)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"postcode": "9999", "suburb": "Atlantis"}, "could not find"),
        ({"postcode": "", "suburb": ""}, "postcode or suburb"),
        ({"opening_hours": {"wed": "17-9"}}, "Wednesday: write opening hours"),
        ({"opening_hours": {"fri": "lunchtime"}}, "Friday"),
        ({"country": "Australia"}, "two-letter"),
        ({"home_visit_radius_km": 900}, "between 0 and 500"),
    ],
)
def test_bad_location_changes_nothing(session, mine, change, message):
    with pytest.raises(InvalidInput, match=message):
        listings.save_location(
            session, mine, None, {**PLACE, **change}, {"REFERRAL_DEFAULT_COUNTRY": "AU"}
        )
    session.rollback()
    assert session.scalars(select(Location)).all() == []


def test_opening_hours_round_trip_through_the_form_text():
    hours = listings.parse_opening_hours({"mon": "9-17", "sat": "8:30-12"})
    assert listings.format_opening_hours(hours)["sat"] == "08:30-12:00"
    assert listings.parse_opening_hours({"mon": ""}) is None


def test_live_listing_goes_back_to_review_when_credentials_change(session, mine, submitted):
    listings.update_profile(session, mine, PROFILE, "AU")
    mine.status = "active"
    session.commit()
    listings.update_profile(session, mine, {**PROFILE, "bio": "New bio"}, "AU")
    assert mine.status == "active" and submitted == []
    assert listings.update_profile(session, mine, {**PROFILE, "membership_number": "X9"}, "AU")
    assert session.get(Practitioner, mine.id).status == "pending"
    assert submitted == [mine.id]


def test_live_listing_goes_back_to_review_when_locations_change(session, mine, submitted):
    config = {"REFERRAL_DEFAULT_COUNTRY": "AU"}
    location = listings.save_location(session, mine, None, PLACE, config)
    mine.status = "active"
    session.commit()
    listings.save_location(
        session, mine, location, {**PLACE, "opening_hours": {"sun": "10-14"}}, config
    )
    assert mine.status == "active"  # opening hours alone are not checked
    listings.save_location(session, mine, location, {**PLACE, "postcode": "2010"}, config)
    assert mine.status == "pending" and submitted == [mine.id]
    mine.status = "active"
    session.commit()
    assert listings.remove_location(session, mine, location) is True
    assert mine.status == "pending" and session.scalars(select(Location)).all() == []


def test_someone_elses_location_cannot_be_changed_by_function(session, mine, add_practitioner):
    other = add_practitioner("Olga Other", (-33.87, 151.21))
    with pytest.raises(InvalidInput):
        listings.save_location(
            session, mine, other.locations[0], PLACE, {"REFERRAL_DEFAULT_COUNTRY": "AU"}
        )
    with pytest.raises(InvalidInput):
        listings.remove_location(session, mine, other.locations[0])
    assert listings.own_location(session, mine, other.locations[0].id) is None


def _form(profile):
    data = {k: v for k, v in profile.items() if k not in ("funds",) and v not in (False, None)}
    data["accepting_new_patients"] = "y"
    data["home_visits"] = "y"
    data["fund-bupa"] = "1"
    data["provider-bupa"] = "123456A"
    return data


def test_editor_pages_save_profile_and_location(client, session, mine):
    sign_in(client, "ana@example.com")
    response = post_form(client, f"{P}/account/listing", _form(PROFILE))
    assert response.status_code == 302
    page = client.get(f"{P}/account/listing").get_data(as_text=True)
    assert "Saved." in page and "Harbour Massage" in page and 'value="123456A"' in page
    form = {k: v for k, v in PLACE.items() if k != "opening_hours"} | {"mon": "9-17"}
    response = post_form(client, f"{P}/account/listing/locations/new", form)
    assert response.status_code == 302
    location = session.scalars(select(Location)).one()
    edit = client.get(f"{P}/account/listing/locations/{location.id}").get_data(as_text=True)
    assert 'value="09:00-17:00"' in edit
    bad = post_form(
        client,
        f"{P}/account/listing/locations/{location.id}",
        {**form, "postcode": "9999", "suburb": ""},
    )
    assert bad.status_code == 400 and "could not find" in bad.get_data(as_text=True)
    bad = post_form(client, f"{P}/account/listing", {**_form(PROFILE), "website": "ftp://x"})
    assert bad.status_code == 400 and "website address" in bad.get_data(as_text=True)
    delete = post_form(
        client,
        f"{P}/account/listing/locations/{location.id}/delete",
        {},
        form_url=f"{P}/account/listing",
    )
    assert delete.status_code == 302
    assert session.scalars(select(Location)).all() == []


def test_editor_refuses_a_website_that_cannot_be_read_and_saves_nothing(client, session, mine):
    sign_in(client, "ana@example.com")
    response = post_form(
        client, f"{P}/account/listing", {**_form(PROFILE), "website": "http://[oops.example"}
    )
    page = response.get_data(as_text=True)
    assert response.status_code == 400
    assert "Enter a website address such as https://example.com." in page
    session.expire_all()
    listing = session.get(Practitioner, mine.id)
    assert (listing.website, listing.business_name) == (None, None)


def test_submit_says_what_is_missing_then_goes_pending(client, session, mine, submitted):
    sign_in(client, "ana@example.com")
    response = post_form(
        client,
        f"{P}/account/listing/submit",
        {},
        form_url=f"{P}/account/listing",
        follow_redirects=True,
    )
    assert "please add at least one location" in response.get_data(as_text=True)
    assert session.get(Practitioner, mine.id).status == "draft"
    listings.update_profile(session, mine, PROFILE, "AU")
    listings.save_location(session, mine, None, PLACE, {"REFERRAL_DEFAULT_COUNTRY": "AU"})
    response = post_form(
        client,
        f"{P}/account/listing/submit",
        {},
        form_url=f"{P}/account/listing",
        follow_redirects=True,
    )
    assert "waiting to be checked" in response.get_data(as_text=True)
    session.expire_all()
    assert session.get(Practitioner, mine.id).status == "pending"
    assert submitted == [mine.id]
    # not public until approved
    assert client.get(f"{P}/practitioners/{mine.id}").status_code == 404
