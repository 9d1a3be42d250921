from __future__ import annotations

import re
from html import unescape

import pytest

PREFIX = "/find-a-therapist"


@pytest.fixture
def listed(add_practitioner):
    return {
        "near": add_practitioner("Nina Near", (-33.8700, 151.2100), bio="Deep tissue work."),
        "mid": add_practitioner("Milo Mid", (-33.8150, 151.0010), modalities=("physiotherapy",)),
        "far": add_practitioner("Fay Far", (-37.8140, 144.9633)),
        "hidden": add_practitioner("Pat Pending", (-33.8690, 151.2090), status="pending"),
    }


def _names(html: str) -> list[str]:
    return re.findall(r'<h3 class="referral-card__name"><a [^>]*>([^<]+)</a>', html)


def test_search_form_without_query(client):
    response = client.get(f"{PREFIX}/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert 'name="postcode"' in html and 'name="modality"' in html and 'name="radius_km"' in html


def test_postcode_search_lists_nearest_first_with_km(client, listed):
    response = client.get(f"{PREFIX}/?postcode=2000")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert _names(html) == ["Nina Near", "Milo Mid"]
    assert re.search(r"<strong>0\.\d km</strong> away", html)
    assert "Pat Pending" not in html


def test_postcode_with_spaces_is_normalised(client, listed):
    assert _names(client.get(f"{PREFIX}/?postcode=%202000%20").get_data(as_text=True)) == [
        "Nina Near",
        "Milo Mid",
    ]


def test_suburb_name_works_like_a_postcode(client, listed):
    html = client.get(f"{PREFIX}/?postcode=Parramatta&radius_km=5").get_data(as_text=True)
    assert _names(html) == ["Milo Mid"]


def test_unknown_postcode_gets_404_with_message(client, listed):
    response = client.get(f"{PREFIX}/?postcode=9999")
    assert response.status_code == 404
    html = response.get_data(as_text=True)
    assert "could not find the postcode or suburb “9999”" in html
    assert _names(html) == []


@pytest.mark.parametrize("radius", ["abc", "-5", "100000", "nan", "inf"])
def test_bad_radius_gets_400_with_message(client, listed, radius):
    response = client.get(f"{PREFIX}/?postcode=2000&radius_km={radius}")
    assert response.status_code == 400
    assert "Choose a distance between 0.1 and 500 km." in response.get_data(as_text=True)


def test_unknown_modality_gets_400(client, listed):
    response = client.get(f"{PREFIX}/?postcode=2000&modality=reiki-crystals")
    assert response.status_code == 400
    assert "a type of practitioner called “reiki-crystals”" in response.get_data(as_text=True)


def test_oversized_postcode_gets_400(client):
    response = client.get(f"{PREFIX}/?postcode={'9' * 5000}")
    assert response.status_code == 400
    assert "too long" in response.get_data(as_text=True)


def test_modality_filter_on_page(client, listed):
    html = client.get(f"{PREFIX}/?postcode=2000&modality=physiotherapy").get_data(as_text=True)
    assert _names(html) == ["Milo Mid"]


def test_nothing_in_range_offers_the_nearest_beyond(client, listed):
    html = client.get(f"{PREFIX}/?postcode=4000&radius_km=10").get_data(as_text=True)
    assert "No practitioners within 10.0 km" in html
    assert {"Nina Near", "Milo Mid"} <= set(_names(html))


def test_distance_in_miles_when_configured(make_app, listed):
    app = make_app(REFERRAL_DISTANCE_UNIT="mi")
    html = app.test_client().get(f"{PREFIX}/?postcode=2000").get_data(as_text=True)
    assert re.search(r"<strong>\d+\.\d mi</strong>", html)


def test_practitioner_page(client, listed):
    response = client.get(f"{PREFIX}/practitioners/{listed['near'].id}")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Nina Near" in html and "Deep tissue work." in html and "Remedial massage" in html


def test_unlisted_practitioner_page_is_404(client, listed):
    assert client.get(f"{PREFIX}/practitioners/{listed['hidden'].id}").status_code == 404
    assert client.get(f"{PREFIX}/practitioners/999999").status_code == 404


def test_pages_are_mobile_ready(client):
    html = client.get(f"{PREFIX}/").get_data(as_text=True)
    assert 'name="viewport"' in html
    assert client.get(f"{PREFIX}/static/referral.css").status_code == 200


def test_practitioner_address_has_no_stray_comma(client, listed):
    html = client.get(f"{PREFIX}/practitioners/{listed['near'].id}").get_data(as_text=True)
    assert "<li>Nina Near suburb " in html and ", Nina Near suburb" not in html


@pytest.fixture
def varied(add_practitioner, session):
    from referral.models import HealthFund, PractitionerFund

    bupa = session.query(HealthFund).filter_by(slug="bupa").one()
    people = {
        "physio": add_practitioner(
            "Phil Physio",
            (-33.8700, 151.2100),
            modalities=("physiotherapy",),
            conditions=("low-back-pain",),
        ),
        "yoga": add_practitioner(
            "Yara Yoga",
            (-33.8800, 151.2100),
            modalities=("yoga",),
            conditions=("low-back-pain",),
            languages=["Greek"],
        ),
        "osteo": add_practitioner(
            "Oscar Osteo",
            (-33.8900, 151.2100),
            modalities=("osteopathy",),
            accepting_new_patients=False,
        ),
    }
    people["yoga"].funds = [PractitionerFund(fund=bupa)]
    session.commit()
    return people


def test_form_offers_every_filter(client):
    html = client.get(f"{PREFIX}/").get_data(as_text=True)
    for field in ("condition", "fund", "language", "accepting", "home_visits"):
        assert f'name="{field}"' in html
    assert 'value="low-back-pain"' in html and 'value="bupa"' in html
    assert html.count('type="checkbox" name="modality"') >= 5


def test_condition_search_shows_every_modality_that_treats_it(client, varied):
    html = client.get(f"{PREFIX}/?postcode=2000&condition=low-back-pain").get_data(as_text=True)
    assert _names(html) == ["Phil Physio", "Yara Yoga"]
    assert 'value="low-back-pain" selected' in html


def test_filters_combine_on_the_page(client, varied):
    url = f"{PREFIX}/?postcode=2000&fund=bupa&language=greek"
    assert _names(client.get(url).get_data(as_text=True)) == ["Yara Yoga"]
    html = client.get(f"{PREFIX}/?postcode=2000&accepting=1").get_data(as_text=True)
    assert _names(html) == ["Phil Physio", "Yara Yoga"]


def test_several_modalities_stay_ticked_and_in_the_pager(client, varied):
    url = f"{PREFIX}/?postcode=2000&modality=yoga&modality=osteopathy&per_page=1"
    html = client.get(url).get_data(as_text=True)
    assert _names(html) == ["Yara Yoga"]
    assert re.search(r'value="yoga"\s+checked', html)
    assert re.search(r'value="osteopathy"\s+checked', html)
    next_link = re.search(r'rel="next" href="([^"]+)"', html).group(1).replace("&amp;", "&")
    assert "modality=yoga" in next_link and "modality=osteopathy" in next_link
    assert _names(client.get(next_link).get_data(as_text=True)) == ["Oscar Osteo"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("condition=broken-heart", "We don't list a condition called “broken-heart”"),
        ("fund=acme", "We don't list a health fund called “acme”"),
        ("accepting=perhaps", "Choose yes or no for “accepting new patients”."),
    ],
)
def test_bad_filter_gets_400_with_message(client, varied, query, message):
    response = client.get(f"{PREFIX}/?postcode=2000&{query}")
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert message in unescape(html)
    assert _names(html) == []


def test_form_reflects_the_query_it_answered(client, varied):
    html = client.get(
        f"{PREFIX}/?postcode=2000&modality=yoga,osteopathy&accepting=0&home_visits=1"
    ).get_data(as_text=True)
    assert re.search(r'value="yoga"\s+checked', html)
    assert re.search(r'value="osteopathy"\s+checked', html)
    assert not re.search(r'name="accepting" value="1"\s+checked', html)
    assert re.search(r'name="home_visits" value="1"\s+checked', html)
    # folded, so the results come first, and counting what it holds
    assert '<details class="referral-filter-panel">' in html
    assert ">Filters (3)</summary>" in html


def test_listing_links_carry_the_search_back(client, listed):
    html = client.get(f"{PREFIX}/?postcode=2000&modality=remedial-massage&utm_source=x").get_data(
        as_text=True
    )
    near = listed["near"].id
    assert (
        f'href="{PREFIX}/practitioners/{near}?back=postcode%3D2000%26modality%3Dremedial-massage"'
        in html
    )
    page = client.get(
        f"{PREFIX}/practitioners/{near}?back=postcode%3D2000%26modality%3Dremedial-massage"
    ).get_data(as_text=True)
    back = f"{PREFIX}/?postcode=2000&amp;modality=remedial-massage"
    assert f'<a href="{back}">← Back to search</a>' in page
    # the referral form keeps it, so its error page and confirmation lead back there too
    back = "back=postcode%3D2000%26modality%3Dremedial-massage"
    action = f"{PREFIX}/practitioners/{near}/referrals?{back}"
    assert f'action="{action}"' in page


@pytest.mark.parametrize(
    "back", ["", "https://evil.example/", "%2F%2Fevil.example", "next%3Dhttps%3A%2F%2Fevil.example"]
)
def test_back_link_never_leaves_the_search_page(client, listed, back):
    page = client.get(f"{PREFIX}/practitioners/{listed['near'].id}?back={back}")
    assert page.status_code == 200
    assert f'<a href="{PREFIX}/">← Back to search</a>' in page.get_data(as_text=True)


def test_listing_with_its_one_off_form_is_never_cached(client, listed):
    response = client.get(f"{PREFIX}/practitioners/{listed['near'].id}")
    assert response.headers["Cache-Control"] == "private, no-store"
    embedded = client.get(f"{PREFIX}/embed/practitioners/{listed['near'].id}")
    assert embedded.headers["Cache-Control"] == "private, no-store"


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("postcode=2000&radius_km=abc", 400, "Choose a distance between 0.1 and 500 km."),
        ("postcode=2000&page=0", 400, "Choose a results page from 1 to 10,000."),
        ("postcode=2000&per_page=500", 400, "Choose from 1 to 100 results per page."),
        ("lat=-33.8", 400, "We could not read your location."),
        ("lat=200&lon=151", 400, "We could not read your location."),
        ("postcode=2000&country=AUS", 400, "Choose a country by its two-letter code"),
        ("postcode=2000&modality=reiki", 400, "a type of practitioner called “reiki”"),
        ("postcode=2000&condition=x", 400, "a condition called “x”"),
        ("postcode=2000&fund=x", 400, "a health fund called “x”"),
        ("postcode=2000&telehealth=maybe", 400, "Choose yes or no for “telehealth”."),
        ("postcode=2000&language=Notalanguage", 400, "a language called “Notalanguage”"),
        ("postcode=20%0100", 400, "The postcode or suburb has a character we cannot read"),
        ("postcode=0000", 404, "could not find the postcode or suburb"),
    ],
)
def test_every_kind_of_bad_search_is_answered_in_words(client, listed, query, status, message):
    page = client.get(f"{PREFIX}/?{query}")
    assert page.status_code == status
    assert message in unescape(page.get_data(as_text=True))
    api = client.get(f"{PREFIX}/api/v1/practitioners?{query}")
    assert api.status_code == status
    error = api.get_json()["error"]
    assert message in error["message"]  # the same sentence, with a code for programs
    assert re.fullmatch(r"[a-z_]+", error["code"])
    assert not re.search(r"[a-z]_[a-z]|\blat\b|\blon\b", error["message"])


@pytest.fixture
def patients_choice(add_practitioner, session):
    from sqlalchemy import select

    from referral.models import HealthFund, PractitionerFund

    bupa = session.scalar(select(HealthFund).where(HealthFund.slug == "bupa"))
    return {
        "rita": add_practitioner(
            "Rita Remedial",
            (-33.8700, 151.2100),
            conditions=("low-back-pain",),
            business_name="Harbour Hands",
            languages=["Greek", "English"],
            funds=[PractitionerFund(fund=bupa)],
            telehealth=True,
        ),
        "paul": add_practitioner(
            "Paul Physio",
            (-33.8800, 151.2000),
            modalities=("physiotherapy",),
            conditions=("low-back-pain",),
            accepting_new_patients=False,
        ),
        "olly": add_practitioner(
            "Olly Osteo",
            (-33.8900, 151.1900),
            modalities=("osteopathy",),
            conditions=("low-back-pain", "sciatica"),
            home_visits=True,
        ),
        "nell": add_practitioner("Nell Neck", (-33.8600, 151.2000), conditions=("neck-pain",)),
    }


def _title(html: str) -> str:
    return unescape(re.search(r"<title>([^<]*)</title>", html).group(1))


def test_condition_alone_finds_every_kind_of_practitioner_who_treats_it(client, patients_choice):
    html = client.get(f"{PREFIX}/?postcode=2000&condition=low-back-pain").get_data(as_text=True)
    assert _names(html) == ["Rita Remedial", "Paul Physio", "Olly Osteo"]
    assert _title(html).startswith("Low back pain near Sydney NSW 2000 · ")
    # the condition is the question beside the place, not a filter folded away
    main = html[html.index('class="referral-search__main"') : html.index("</select>")]
    assert "What's bothering you?" in main and 'value="low-back-pain" selected' in main


@pytest.mark.parametrize(
    ("query", "title"),
    [
        ("postcode=2000&modality=physiotherapy", "Physiotherapy near Sydney NSW 2000"),
        ("postcode=2150&condition=low-back-pain", "Low back pain near Parramatta NSW 2150"),
        (
            "postcode=2000&modality=osteopathy&modality=physiotherapy&condition=sciatica",
            "Osteopathy or physiotherapy for sciatica near Sydney NSW 2000",
        ),
        ("postcode=2000", "Practitioners near Sydney NSW 2000"),
    ],
)
def test_page_titles_name_the_search(client, patients_choice, query, title):
    assert _title(client.get(f"{PREFIX}/?{query}").get_data(as_text=True)).startswith(f"{title} · ")


def test_a_bad_search_is_titled_as_an_error(client, patients_choice):
    assert _title(client.get(f"{PREFIX}/?postcode=2000&radius_km=x").get_data(as_text=True)) == (
        "Error: " + _title(client.get(f"{PREFIX}/").get_data(as_text=True))
    )


def test_active_filters_are_chips_that_each_remove_themselves(client, patients_choice):
    url = (
        f"{PREFIX}/?postcode=2000&condition=low-back-pain&modality=physiotherapy,osteopathy"
        "&fund=bupa&language=el&accepting=1&radius_km=10&page=2&view=map"
    )
    html = client.get(url).get_data(as_text=True)
    chips = re.findall(
        r'<a class="referral-chip" href="([^"]+)"><span class="referral-sr-only">Remove filter: '
        r"</span>([^<]+)<",
        html,
    )
    labels = [label for _, label in chips]
    assert labels == [
        "Low back pain",
        "Within 10 km",
        "Physiotherapy",
        "Osteopathy",
        "Rebates from Bupa",
        "Speaks Greek",
        "Accepting new patients",
    ]
    assert ">Filters (6)</summary>" in html  # the condition is not folded away
    hrefs = {label: unescape(href) for href, label in chips}
    # each link is the same search without that one filter, on its first page, same view
    assert hrefs["Physiotherapy"] == (
        f"{PREFIX}/?postcode=2000&condition=low-back-pain&modality=osteopathy&fund=bupa"
        "&language=el&accepting=1&radius_km=10&view=map"
    )
    without_condition = client.get(hrefs["Low back pain"]).get_data(as_text=True)
    assert "Remove filter: </span>Low back pain" not in without_condition
    assert ">Filters (6)</summary>" in without_condition


def test_no_filters_no_chips(client, patients_choice):
    html = client.get(f"{PREFIX}/?postcode=2000").get_data(as_text=True)
    assert "referral-chip" not in html and ">Filters</summary>" in html


def test_cards_answer_the_patients_questions(client, patients_choice):
    html = client.get(f"{PREFIX}/?postcode=2000&condition=low-back-pain").get_data(as_text=True)
    cards = dict(zip(_names(html), html.split('<li class="referral-card"')[1:], strict=True))
    rita, paul, olly = cards["Rita Remedial"], cards["Paul Physio"], cards["Olly Osteo"]
    assert "Harbour Hands" in rita and "Rita Remedial suburb" in rita
    assert "Accepting new patients" in rita and "Telehealth (video) sessions" in rita
    assert "Rebates: Bupa" in rita and "Speaks Greek, English" in rita
    # not accepting: existing patients only (referral.capacity), never "accepting"
    assert "Existing patients only" in paul and "Accepting new patients" not in paul
    assert "Home visits" in olly and "Telehealth" not in olly


def test_search_view_is_kept_in_the_url_and_the_pager(client, patients_choice):
    html = client.get(f"{PREFIX}/?postcode=2000&per_page=1&view=map").get_data(as_text=True)
    assert 'class="referral-results referral-results--map"' in html
    assert 'data-view="map"' in html
    next_link = unescape(re.search(r'rel="next" href="([^"]+)"', html).group(1))
    assert "view=map" in next_link
    # a made-up view is no view: the page picks its default
    assert 'data-view=""' in client.get(f"{PREFIX}/?postcode=2000&view=x").get_data(as_text=True)


def test_a_listing_not_taking_patients_says_what_happens_instead(client, patients_choice, session):
    paul = patients_choice["paul"]
    url = f"{PREFIX}/practitioners/{paul.id}?back=postcode%3D2000%26condition%3Dlow-back-pain"
    html = client.get(url).get_data(as_text=True)
    assert "Existing patients only" in html
    note = html[html.index('id="referral-capacity-note"') : html.index('id="refer"')]
    assert "is not taking new patients at the moment" in note
    assert "You can still send a request" not in note
    link = unescape(re.search(r'href="([^"]+)"', note).group(1))
    assert link == f"{PREFIX}/?postcode=2000&condition=low-back-pain&accepting=1"
    assert 'name="patient_name"' not in html  # no form: the note and the form agree
    # a waitlist still takes the request, and the note says so
    paul.capacity_status = "waitlist"
    session.commit()
    note = client.get(url).get_data(as_text=True)
    note = note[note.index('id="referral-capacity-note"') : note.index('id="refer"')]
    assert "has a waitlist for new patients" in note and "You can still send a request" in note
    rita = client.get(f"{PREFIX}/practitioners/{patients_choice['rita'].id}")
    assert "referral-capacity-note" not in rita.get_data(as_text=True)


def test_a_listing_without_a_search_offers_one_near_it(client, patients_choice, session):
    paul = patients_choice["paul"]
    paul.locations[0].postcode = "2010"
    session.commit()
    html = client.get(f"{PREFIX}/practitioners/{paul.id}").get_data(as_text=True)
    note = html[html.index('id="referral-capacity-note"') : html.index('id="refer"')]
    link = unescape(re.search(r'href="([^"]+)"', note).group(1))
    assert link == f"{PREFIX}/?postcode=2010&modality=physiotherapy&accepting=1"


def test_listing_shows_the_hours_entered_in_words(client, patients_choice, session):
    rita = patients_choice["rita"]
    rita.locations[0].opening_hours = {
        day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")
    } | {"sat": [["08:30", "12:00"], ["13:00", "15:30"]]}
    session.commit()
    html = client.get(f"{PREFIX}/practitioners/{rita.id}").get_data(as_text=True)
    hours = re.findall(r"<dt>([^<]+)</dt><dd>([^<]+)</dd>", html)
    assert hours == [
        ("Monday to Friday", "9 am to 5 pm"),
        ("Saturday", "8:30 am to noon, 1 pm to 3:30 pm"),
        ("Sunday", "Closed"),
    ]
    assert "Opening hours" in html


@pytest.mark.parametrize(
    ("hours", "lines"),
    [
        (None, []),
        ({}, []),
        (
            {"mon": [["00:00", "24:00"]], "tue": [["00:00", "24:00"]]},
            [("Monday and Tuesday", "midnight to midnight"), ("Wednesday to Sunday", "Closed")],
        ),
        (
            {"wed": [["12:15", "13:00"]]},
            [
                ("Monday and Tuesday", "Closed"),
                ("Wednesday", "12:15 pm to 1 pm"),
                ("Thursday to Sunday", "Closed"),
            ],
        ),
    ],
)
def test_opening_hours_read_aloud(app, hours, lines):
    from referral.views.public import opening_hours

    assert opening_hours(hours) == lines


def test_a_distance_that_is_not_a_number_makes_no_chip(client, patients_choice):
    response = client.get(f"{PREFIX}/?postcode=2000&radius_km=far")
    assert response.status_code == 400
    assert "Within far" not in response.get_data(as_text=True)
