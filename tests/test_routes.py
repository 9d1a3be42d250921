"""Routing: every route that takes a numeric id answers 404, never 500, for an id no row
can have (SQLite overflows above 2**63, PostgreSQL's ``integer`` above 2**31 - 1)."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from werkzeug.routing import IntegerConverter

from referral import Referral
from referral.routing import MAX_ID, IdConverter, digits_up_to

P = "/find-a-therapist"
#: just past PostgreSQL's integer, just past SQLite's, and far beyond both
OUT_OF_RANGE = (MAX_ID + 1, 2**63, 10**30)
#: a rule's arguments: ``<converter(options):name>`` or ``<name>``
_ARGUMENT = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")
NUMERIC = {"int", IdConverter.name}


def _id_rules(app):
    """Every plugin rule with a numeric argument: (path template, method, endpoint)."""
    rules = []
    for rule in app.url_map.iter_rules():
        converters = {c for c, _ in _ARGUMENT.findall(rule.rule)}
        if rule.rule.startswith(P + "/") and converters & NUMERIC:
            method = "GET" if "GET" in rule.methods else "POST"
            rules.append((rule.rule, method, rule.endpoint))
    return rules


def _path(template: str, number: int) -> str:
    def fill(match: re.Match[str]) -> str:
        return "embed" if match.group(1) == "any" else str(number)

    return _ARGUMENT.sub(fill, template)


@pytest.mark.parametrize("limit", [1, 9, 10, 19, 20, 100, 2147, 30500])
def test_the_id_pattern_matches_exactly_one_to_the_limit(limit):
    pattern = re.compile(digits_up_to(limit))
    matched = [n for n in range(100_000) if pattern.fullmatch(str(n))]
    assert matched == list(range(1, limit + 1))
    assert not pattern.fullmatch("01") and not pattern.fullmatch("-1")


def test_every_id_route_uses_the_one_id_converter(app):
    rules = _id_rules(app)
    assert {endpoint for _, _, endpoint in rules} >= {
        "referral.practitioner",
        "referral.refer",
        "referral.location_edit",
        "referral.location_delete",
        "referral.admin_listing",
        "referral.admin_approve",
        "referral.api.practitioner",
    }
    used = {c for template, _, _ in rules for c, _ in _ARGUMENT.findall(template)} & NUMERIC
    assert used == {IdConverter.name}
    assert app.url_map.converters[IdConverter.name] is IdConverter


@pytest.mark.parametrize("number", OUT_OF_RANGE)
def test_an_id_beyond_any_row_is_404_on_every_route(app, make_account, login_client, number):
    # an admin with a listing of their own passes both the admin and the practitioner checks
    client = login_client(make_account("admin@example.com", admin=True))
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a failure is a 500 here, as in production
    answers = {}
    for template, method, endpoint in _id_rules(app):
        response = client.open(_path(template, number), method=method)
        answers[(endpoint, _path(template, number))] = response.status_code
    assert answers and set(answers.values()) == {404}, answers


def test_the_api_says_in_json_that_there_is_nothing_there(client):
    response = client.get(f"{P}/api/v1/practitioners/{2**63}")
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["code"] == "not_found" and "id" in error["message"]


def test_the_largest_id_still_reaches_the_view(client):
    # in range, it is the view that looks and finds nothing: the same 404 a missing row gets
    assert client.get(f"{P}/practitioners/{MAX_ID}").status_code == 404
    assert client.get(f"{P}/api/v1/practitioners/{MAX_ID}").get_json()["error"]["message"] == (
        "No active practitioner has that id."
    )


def test_a_host_converter_of_the_same_name_is_not_overwritten():
    class Theirs(IntegerConverter):
        pass

    host = Flask(__name__)
    host.config.update(TESTING=True, SECRET_KEY="test", REFERRAL_GEOCODER=None)
    host.url_map.converters[IdConverter.name] = Theirs
    with pytest.raises(RuntimeError, match=IdConverter.name):
        Referral(host)
