"""Reading search requests: filters, and the ``back`` value a listing carries to its search."""

from __future__ import annotations

import re

import pytest
from werkzeug.datastructures import MultiDict

from referral.errors import InvalidInput
from referral.query import (
    BACK_MAX_LENGTH,
    parse_filters,
    parse_places,
    parse_search,
    search_back,
)
from referral.search import Filters


def test_every_filter_is_read(session):
    args = MultiDict(
        [
            ("modality", "yoga"),
            ("modality", "osteopathy,yoga"),
            ("condition", "low-back-pain"),
            ("fund", "bupa"),
            ("accepting", "1"),
            ("home_visits", "yes"),
            ("language", " Greek "),
            ("telehealth", "on"),
        ]
    )
    assert parse_filters(session, args) == Filters(
        modalities=("yoga", "osteopathy"),
        condition="low-back-pain",
        fund="bupa",
        accepting=True,
        home_visits=True,
        language="el",  # the ISO 639 code of the name given
        telehealth=True,
    )


def test_no_filters_means_everyone(session):
    assert parse_filters(session, {}) == Filters()
    assert parse_filters(session, {"accepting": "0", "home_visits": "off"}) == Filters()


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            {"condition": "broken-heart"},
            "unknown_condition",
            "We don't list a condition called “broken-heart”: please choose one from the list.",
        ),
        ({"fund": "acme-health"}, "unknown_fund", "a health fund called “acme-health”"),
        ({"fund": "x' OR 1=1 --"}, "unknown_fund", "a health fund called “x' OR 1=1 --”"),
        ({"modality": "reiki"}, "unknown_modality", "a type of practitioner called “reiki”"),
        (
            {"accepting": "maybe"},
            "invalid_accepting",
            "Choose yes or no for “accepting new patients”.",
        ),
        ({"home_visits": "2"}, "invalid_home_visits", "yes or no for “visits me at home”"),
        ({"telehealth": "video"}, "invalid_telehealth", "yes or no for “telehealth”"),
        ({"language": "x" * 41}, "invalid_language", "too long"),
    ],
)
def test_bad_filters_are_refused_with_a_code_and_message(session, args, code, message):
    with pytest.raises(InvalidInput) as caught:
        parse_filters(session, args)
    assert caught.value.code == code
    assert message in caught.value.message
    assert 400 <= caught.value.status < 500


def test_a_very_long_unknown_slug_is_cut_in_the_message(session):
    with pytest.raises(InvalidInput) as caught:
        parse_filters(session, {"condition": "c" * 5000})
    assert len(caught.value.message) < 140 and "c" * 61 not in caught.value.message


def test_parse_search_carries_filters_and_paging(app, session):
    query = parse_search(
        session,
        {"lat": "-33.87", "lon": "151.21", "condition": "sciatica", "per_page": "100", "page": "3"},
        app.config,
    )
    assert query.filters == Filters(condition="sciatica")
    assert (query.page, query.per_page) == (3, 100)


@pytest.mark.parametrize("per_page", ["101", "100000", "0", "-1", "ten"])
def test_per_page_is_capped_at_the_configured_maximum(app, session, per_page):
    with pytest.raises(InvalidInput) as caught:
        parse_search(session, {"lat": "0", "lon": "0", "per_page": per_page}, app.config)
    assert caught.value.code == "invalid_per_page"
    assert caught.value.message == "Choose from 1 to 100 results per page."


#: bad input of every kind parse_search refuses: (args, code, status, the message)
BAD_SEARCHES = [
    ({"radius_km": "abc"}, "invalid_radius_km", "Choose a distance between 0.1 and 500 km."),
    ({"radius_km": "0"}, "invalid_radius_km", "Choose a distance between 0.1 and 500 km."),
    ({"radius_km": "inf"}, "invalid_radius_km", "Choose a distance between 0.1 and 500 km."),
    ({"page": "0"}, "invalid_page", "Choose a results page from 1 to 10,000."),
    ({"page": "²"}, "invalid_page", "Choose a results page from 1 to 10,000."),
    (
        {"lat": "91", "lon": "151"},
        "invalid_lat",
        "We could not read your location. Please try again, or type your postcode or suburb.",
    ),
    ({"lat": "-33.8", "postcode": ""}, "invalid_coordinates", "We could not read your location."),
    ({"country": "Australia"}, "invalid_country", "Choose a country by its two-letter code"),
    ({"postcode": "20\n00"}, "invalid_characters", "The postcode or suburb has a character"),
    ({"x_y": "\x00"}, "invalid_characters", "The search has a character we cannot read"),
    ({"postcode": ""}, "missing_location", "Enter a postcode or suburb, or share your location."),
]


@pytest.mark.parametrize(("args", "code", "message"), BAD_SEARCHES)
def test_bad_searches_are_refused_in_a_patients_words(app, session, args, code, message):
    with pytest.raises(InvalidInput) as caught:
        parse_search(session, {"postcode": "2000", **args}, app.config)
    assert caught.value.code == code
    assert message in caught.value.message
    assert 400 <= caught.value.status < 500
    # no parameter name, no programmer's notation
    assert not re.search(r"[a-z]_[a-z]|\blat\b|\blon\b|\bq\b", caught.value.message)


def test_search_back_keeps_the_search_parameters_in_order():
    raw = "postcode=2000&modality=physiotherapy&modality=yoga&radius_km=10&page=2"
    assert search_back(raw) == raw
    assert search_back(b"lat=-33.87&lon=151.2") == "lat=-33.87&lon=151.2"
    assert search_back("postcode=Surry+Hills") == "postcode=Surry+Hills"


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        (None, ""),
        ("", ""),
        ("next=http://evil.example&postcode=2000", "postcode=2000"),  # only search params
        ("//evil.example", ""),
        ("http://evil.example/?postcode=2000", ""),  # a URL is not a query string
        ("postcode=20%0A00", ""),  # control characters
        ("postcode=" + "2" * 300, ""),  # absurdly long values
        ("postcode=2000&" + "x" * BACK_MAX_LENGTH, ""),  # too long as a whole
        ("modality=&postcode=2000", "postcode=2000"),  # empty values dropped
    ],
)
def test_search_back_drops_everything_else(raw, kept):
    assert search_back(raw) == kept


@pytest.mark.parametrize(
    ("given", "code"),
    [("Greek", "el"), ("el", "el"), ("CANTONESE", "yue"), ("yue", "yue"), ("Chinese", "zh")],
)
def test_language_is_a_code_or_a_name(session, given, code):
    assert parse_filters(session, MultiDict([("language", given)])).language == code


@pytest.mark.parametrize("given", ["Notalanguage", "xx", "zzz"])
def test_unknown_language_is_refused_in_words(session, given):
    with pytest.raises(InvalidInput) as caught:
        parse_filters(session, MultiDict([("language", given)]))
    assert caught.value.code == "unknown_language" and caught.value.status == 400
    assert "language called" in caught.value.message


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        ({"q": ""}, "invalid_q", "Type the start of a suburb or postcode."),
        ({"q": "Syd", "limit": "0"}, "invalid_limit", "Ask for from 1 to"),
        ({"q": "Syd", "country": "1"}, "invalid_country", "two-letter code, such as AU"),
    ],
)
def test_bad_place_look_ups_are_refused_in_words(app, args, code, message):
    with pytest.raises(InvalidInput) as caught:
        parse_places(args, app.config)
    assert (caught.value.code, caught.value.status) == (code, 400)
    assert message in caught.value.message
