"""The results map: its data on the page, its settings, and the pinned, vendored Leaflet."""

from __future__ import annotations

import html as html_lib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "/find-a-therapist"


@pytest.fixture
def listed(add_practitioner):
    return [
        add_practitioner("Nina Near", (-33.8700, 151.2100)),
        add_practitioner("Milo Mid", (-33.8150, 151.0010)),
    ]


def test_cards_carry_their_coordinates_for_the_map(client, listed):
    html = client.get(f"{PREFIX}/?postcode=2000").get_data(as_text=True)
    cards = re.findall(
        r'<li class="referral-card" data-id="\d+" data-lat="([-\d.]+)" data-lon="([-\d.]+)">\s*'
        r'<h3 class="referral-card__name"><a [^>]*>([^<]+)<',
        html,
    )
    assert [(float(lat), float(lon), name) for lat, lon, name in cards] == [
        (-33.87, 151.21, "Nina Near"),
        (-33.815, 151.001, "Milo Mid"),
    ]
    box = re.search(r'<div class="referral-map" id="referral-map"[^>]*hidden[^>]*>', html).group(0)
    assert 'data-tiles="https://tile.openstreetmap.org/{z}/{x}/{y}.png"' in box
    assert "OpenStreetMap</a> contributors" in html_lib.unescape(box)
    assert f'data-leaflet-js="{PREFIX}/static/vendor/leaflet/leaflet.js"' in box
    assert "map.js" in html


def test_the_map_is_told_how_to_fetch_every_result(client, listed):
    html = client.get(f"{PREFIX}/?postcode=2000&modality=remedial-massage&per_page=1&page=2")
    box = html_lib.unescape(
        re.search(r'<div class="referral-map"[^>]*>', html.get_data(as_text=True)).group(0)
    )
    # the same search on the API, every page of it: no page, page size or view of this one
    api = re.search(r'data-api="([^"]+)"', box).group(1)
    assert api == f"{PREFIX}/api/v1/practitioners?postcode=2000&modality=remedial-massage"
    assert 'data-total="2"' in box and 'data-per-page="100"' in box and 'data-most="500"' in box
    listing = re.search(r'data-listing="([^"]+)"', box).group(1)
    marker = re.search(r'data-marker="(\d+)"', box).group(1)
    assert listing.startswith(f"{PREFIX}/practitioners/{marker}?back=postcode%3D2000")
    body = client.get(api + "&per_page=100").get_json()
    assert [r["name"] for r in body["results"]] == ["Nina Near", "Milo Mid"]


def test_tile_url_and_attribution_come_from_config(make_app, listed):
    app = make_app(
        REFERRAL_MAP_TILE_URL="https://tiles.example/{z}/{x}/{y}.png",
        REFERRAL_MAP_ATTRIBUTION="© Example Maps",
    )
    html = app.test_client().get(f"{PREFIX}/?postcode=2000").get_data(as_text=True)
    assert 'data-tiles="https://tiles.example/{z}/{x}/{y}.png"' in html
    assert 'data-attribution="© Example Maps"' in html


def test_tile_url_without_placeholders_is_refused(make_app):
    with pytest.raises(ValueError, match=r"must contain \{z\}, \{x\} and \{y\}"):
        make_app(REFERRAL_MAP_TILE_URL="https://tiles.example/tile.png")


def test_no_map_without_results(client, listed):
    assert "referral-map" not in client.get(f"{PREFIX}/").get_data(as_text=True)
    assert "referral-map" not in client.get(f"{PREFIX}/?postcode=9999").get_data(as_text=True)


def test_vendored_leaflet_is_the_pinned_version_and_is_served(client):
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    version = lock["packages"]["node_modules/leaflet"]["version"]
    assert json.loads((ROOT / "package.json").read_text())["dependencies"]["leaflet"] == version
    vendored = ROOT / "referral" / "static" / "referral" / "vendor" / "leaflet"
    assert f"Leaflet {version}," in (vendored / "leaflet.js").read_text(encoding="utf-8")[:200]
    assert "BSD" in (vendored / "LICENSE").read_text(encoding="utf-8")
    for name in ("leaflet.js", "leaflet.css", "images/marker-icon.png", "images/layers.png"):
        assert client.get(f"{PREFIX}/static/vendor/leaflet/{name}").status_code == 200, name


def test_vendored_axe_is_the_pinned_version():
    lock = json.loads((ROOT / "package-lock.json").read_text(encoding="utf-8"))
    version = lock["packages"]["node_modules/axe-core"]["version"]
    assert (
        (ROOT / "tests" / "vendor" / "axe.min.js")
        .read_text()[:40]
        .startswith(f"/*! axe v{version}")
    )
