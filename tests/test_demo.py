from __future__ import annotations

from collections import Counter

from sqlalchemy import func, select

from referral.demo import CITIES
from referral.geo.distance import great_circle_km
from referral.models import Postcode, Practitioner


def test_demo_seeds_a_realistic_directory_once(runner, session):
    result = runner.invoke(args=["referral", "demo"])
    assert result.exit_code == 0, result.output
    assert "Loaded" in result.output  # the sample postcodes lack most city centres
    practitioners = session.scalars(select(Practitioner)).all()
    assert len(practitioners) >= 300
    assert all(p.status == "active" for p in practitioners)
    modalities = Counter(m.slug for p in practitioners for m in p.modalities)
    for slug in ("remedial-massage", "myotherapy", "physiotherapy", "osteopathy", "yoga"):
        assert modalities[slug] >= 20, slug
    assert all(p.conditions for p in practitioners)
    assert any(p.funds for p in practitioners)

    centres = {
        city: session.scalars(select(Postcode).where(Postcode.postcode == code)).first()
        for city, code in CITIES.items()
    }
    near_city = Counter()
    for p in practitioners:
        loc = p.locations[0]
        for city, centre in centres.items():
            if centre and great_circle_km(centre.lat, centre.lon, loc.lat, loc.lon) < 35:
                near_city[city] += 1
    assert len([c for c, n in near_city.items() if n >= 20]) >= 5

    again = runner.invoke(args=["referral", "demo"])
    assert "0 practitioners added" in again.output
    assert session.scalar(select(func.count()).select_from(Practitioner)) == len(practitioners)
