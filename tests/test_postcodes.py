"""Loading postcode rows and looking places up in them (the small committed sample; the
shipped Australian gazetteer is pinned in ``test_gazetteer.py``)."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from referral.geo import LocationNotFound
from referral.geo.postcodes import (
    SHIPPED_SOURCE,
    load_centroids,
    lookup,
    normalise_postcode,
    offline_centroids,
    parse_geonames,
    suggest,
)
from referral.models import Postcode
from tests.conftest import DATA


def test_parse_geonames_reads_rows_and_skips_those_without_coordinates():
    with (DATA / "geonames_sample.txt").open(encoding="utf-8") as stream:
        rows = list(parse_geonames(stream))
    assert len(rows) == 10  # Kiwirrkurra has no coordinates
    assert rows[0].country == "AU"
    assert rows[0].postcode == "2000"
    assert rows[0].place == "Sydney"
    assert rows[0].state == "NSW"  # the admin1 code, as Australians write it
    assert rows[0].accuracy == 4
    assert rows[0].lat == pytest.approx(-33.8688)


def test_normalise_postcode():
    assert normalise_postcode(" 2000 ") == "2000"
    assert normalise_postcode(" sw1a   1aa") == "SW1A 1AA"


def test_lookup_postcode_is_labelled_with_its_principal_locality(session):
    point = lookup(session, " 2000 ", "au")
    assert point.lat == pytest.approx((-33.8688 + -33.8610) / 2)
    assert point.source == "postcode"
    assert point.label == "Sydney NSW 2000"


def test_lookup_suburb_name_case_insensitive(session):
    point = lookup(session, "surry  HILLS", "AU")
    assert (point.lat, point.lon) == pytest.approx((-33.8840, 151.2120))
    assert point.source == "suburb"
    assert point.label == "Surry Hills NSW 2010"


def test_lookup_unknown_postcode_says_so_and_never_goes_remote(session):
    with pytest.raises(LocationNotFound, match=r"could not find .*9999") as missing:
        lookup(session, "9999", "AU")
    assert missing.value.remote is False
    with pytest.raises(LocationNotFound, match="could not find"):
        lookup(session, "1010", "AU")  # a New Zealand postcode, not Australian
    with pytest.raises(LocationNotFound) as symbols:
        lookup(session, "';--", "AU")
    assert symbols.value.remote is False


def test_reload_replaces_a_country_and_keeps_others(session):
    text = "AU\t2000\tSydney\tNew South Wales\tNSW\t\t\t\t\t-33.9\t151.2\t4\n"
    count = load_centroids(session, parse_geonames(io.StringIO(text)), source="t", country="AU")
    assert count == 1
    assert session.scalar(select(func.count()).where(Postcode.country == "AU")) == 1
    assert session.scalar(select(func.count()).where(Postcode.country == "NZ")) == 1
    assert lookup(session, "2000", "AU").lat == pytest.approx(-33.9)  # the new rows answer


def test_cli_load_postcodes_from_geonames_file(runner, session):
    result = runner.invoke(
        args=["referral", "load-postcodes", "--country", "NZ", str(DATA / "geonames_sample.txt")]
    )
    assert result.exit_code == 0, result.output
    assert "Loaded 1 postcodes for NZ" in result.output
    row = session.scalars(select(Postcode).where(Postcode.country == "NZ")).one()
    assert row.place == "Auckland"
    assert row.source == "GeoNames geonames_sample.txt"


def test_cli_load_postcodes_with_no_rows_for_country_fails(runner):
    result = runner.invoke(
        args=["referral", "load-postcodes", "--country", "FR", str(DATA / "geonames_sample.txt")]
    )
    assert result.exit_code != 0
    assert "No postcodes found for FR" in result.output


def test_cli_load_postcodes_australia_loads_the_shipped_gazetteer(runner, session):
    result = runner.invoke(args=["referral", "load-postcodes", "--country", "AU"])
    assert result.exit_code == 0, result.output
    total = session.scalar(select(func.count()).where(Postcode.country == "AU"))
    assert total > 18000  # every locality, not one name per postcode
    sydney = session.scalars(
        select(Postcode).where(Postcode.country == "AU", Postcode.postcode == "2000")
    ).first()
    assert sydney.source == SHIPPED_SOURCE
    assert lookup(session, "Bondi", "AU").label == "Bondi NSW 2026"
    assert lookup(session, "3000", "AU").lat == pytest.approx(-37.81, abs=0.05)


def test_offline_centroids_cover_another_country():
    rows = list(offline_centroids("NZ"))
    assert len(rows) > 100
    assert all(r.country == "NZ" for r in rows)


def test_lookup_place_with_its_postcode_as_the_autocomplete_offers_it(session):
    point = lookup(session, "Barangaroo 2000", "AU")
    assert (point.lat, point.lon, point.source) == (-33.8610, 151.2016, "suburb")
    assert point.label == "Barangaroo NSW 2000"
    assert lookup(session, "surry hills, 2010", "AU").label == "Surry Hills NSW 2010"
    assert lookup(session, "Surry Hills NSW 2010", "AU").label == "Surry Hills NSW 2010"
    with pytest.raises(LocationNotFound) as contradiction:  # not in that postcode
        lookup(session, "Barangaroo 2010", "AU")
    assert contradiction.value.suggestions[0] == "Barangaroo NSW 2000"


def test_suggest_matches_the_start_of_any_word_or_a_postcode(session):
    assert [p.label for p in suggest(session, "NORTH s", "au")] == ["North Sydney NSW 2060"]
    assert [p.label for p in suggest(session, "hills", "au")] == ["Surry Hills NSW 2010"]
    two = suggest(session, "20", "AU", limit=2)
    assert [p.label for p in two] == ["Sydney NSW 2000", "Sydney NSW 2001"]
    assert suggest(session, "sydney", "AU")[0].label == "Sydney NSW 2000"  # before North Sydney
    assert suggest(session, "   ", "AU") == []
    assert suggest(session, "%", "AU") == [] and suggest(session, "_", "AU") == []  # literal
