"""The minimal example host in examples/: mounted and exercised like the demo."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from examples.minimal_host.app import create_app, metadata, opening_hours
from referral.models import Location, Modality, Practitioner


@pytest.fixture
def host(database_url: str) -> Iterator[Flask]:
    app = create_app(
        {"TESTING": True, "SECRET_KEY": "test", "MINIMAL_HOST_DATABASE_URL": database_url}
    )
    yield app
    engine = app.extensions["minimal_host.engine"]
    metadata.drop_all(engine)  # the host's table must not outlive the test on PostgreSQL
    engine.dispose()


def test_plugin_uses_the_engine_the_host_handed_in(host):
    assert host.extensions["referral"].engine is host.extensions["minimal_host.engine"]


def test_upgrade_command_works_on_the_host_and_keeps_host_tables(host):
    result = host.test_cli_runner().invoke(args=["referral", "upgrade"])
    assert result.exit_code == 0, result.output
    engine = host.extensions["minimal_host.engine"]
    with engine.begin() as conn:
        conn.execute(insert(opening_hours).values(day="Monday", hours="8am to 6pm"))
    html = host.test_client().get("/").get_data(as_text=True)
    assert "Monday: 8am to 6pm" in html
    assert 'href="/therapists/"' in html


def test_search_renders_inside_the_host_layout_under_its_prefix(host):
    engine = host.extensions["minimal_host.engine"]
    with Session(engine) as session:
        massage = session.scalars(select(Modality).where(Modality.slug == "remedial-massage")).one()
        session.add(
            Practitioner(
                name="Hana Host",
                status="active",
                modalities=[massage],
                locations=[Location(lat=-33.87, lon=151.21, country="AU", suburb="Sydney")],
            )
        )
        session.commit()
    client = host.test_client()
    response = client.get("/therapists/?postcode=2000")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert "Corner Street Physio" in html  # the host's layout
    assert "--referral-accent:#7a3e00" in html  # the host's theme from config
    link = re.search(
        r'href="(/therapists/practitioners/\d+\?back=postcode%3D2000)">Hana Host', html
    )
    assert link, html
    assert "Hana Host" in client.get(link.group(1)).get_data(as_text=True)
    assert client.get("/find-a-therapist/").status_code == 404  # the default prefix is not used

    embedded = client.get("/therapists/embed/?postcode=2000").get_data(as_text=True)
    assert "Corner Street Physio" not in embedded  # the bare iframe layout
    assert 'href="/therapists/embed/practitioners/' in embedded
