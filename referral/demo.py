"""A realistic demo directory: practitioners around Australian cities at real centroids."""

from __future__ import annotations

import random

from sqlalchemy import select
from sqlalchemy.orm import Session

from referral.geo.distance import great_circle_km
from referral.geo.gazetteer import postcode_kind
from referral.models import (
    Condition,
    HealthFund,
    Location,
    Modality,
    Postcode,
    Practitioner,
    PractitionerFund,
    utcnow,
)

#: city -> the postcode of its centre; practitioners spread over postcodes within SPREAD_KM
CITIES = {
    "Sydney": "2000",
    "Melbourne": "3000",
    "Brisbane": "4000",
    "Perth": "6000",
    "Adelaide": "5000",
    "Canberra": "2601",
    "Hobart": "7000",
    "Newcastle": "2300",
}
SPREAD_KM = 30.0

FIRST = """
Olivia Liam Charlotte Noah Amelia Jack Isla William Mia Oliver Ava Leo Grace Lucas Chloe Henry
Zoe Thomas Ruby James Sophie Ethan Ella Lachlan Matilda Kai Priya Arjun Mei Hiroshi Fatima Omar
Sofia Mateo Aroha Tane Linh Dimitri Elena
""".split()
LAST = """
Smith Jones Williams Brown Wilson Taylor Nguyen Johnson Martin White Anderson Walker Thompson
Harris Lee Ryan Robinson Kelly King Davis Wright Clarke Chen Patel Singh Papadopoulos Rossi
Kowalski Murphy O'Brien Walsh Tran Kaur Ali Haddad Costa
""".split()
LANGUAGES = ["English", "Mandarin", "Vietnamese", "Greek", "Italian", "Arabic", "Hindi", "Spanish"]
ACCREDITATION = {
    "remedial-massage": "Massage & Myotherapy Australia",
    "myotherapy": "Massage & Myotherapy Australia",
    "physiotherapy": "Australian Health Practitioner Regulation Agency",
    "osteopathy": "Australian Health Practitioner Regulation Agency",
    "chiropractic": "Australian Health Practitioner Regulation Agency",
    "yoga": "Yoga Australia",
    "pilates": "Australian Pilates Method Association",
    "exercise-physiology": "Exercise & Sports Science Australia",
}
#: the five the demo is about, most common first
DEMO_MODALITIES = ["remedial-massage", "physiotherapy", "myotherapy", "osteopathy", "yoga"]
PRACTICE_WORDS = ["Wellness", "Body", "Health", "Movement", "Spine", "Therapy", "Recovery"]


def seed_demo(session: Session, *, practitioners: int = 360, seed: int = 7) -> int:
    """Add ``practitioners`` demo listings (external ids ``demo-NNNN``); existing ones stay.

    Returns how many were added. Needs the Australian postcodes loaded.
    """
    rng = random.Random(seed)
    modalities = {m.slug: m for m in session.scalars(select(Modality))}
    conditions = list(session.scalars(select(Condition).order_by(Condition.slug)))
    funds = list(session.scalars(select(HealthFund).order_by(HealthFund.slug)))
    existing = set(
        session.scalars(
            select(Practitioner.external_id).where(Practitioner.external_id.like("demo-%"))
        )
    )
    pools = _postcode_pools(session)
    cities = list(pools)
    added = 0
    for n in range(practitioners):
        external_id = f"demo-{n:04d}"
        # draw every random value even for existing rows, so reruns stay deterministic
        city = cities[n % len(cities)]
        pc = rng.choice(pools[city])
        name = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        primary = DEMO_MODALITIES[rng.choices(range(5), weights=[5, 4, 2, 2, 2])[0]]
        extra = [s for s in rng.sample(DEMO_MODALITIES, 2) if s != primary][:1]
        chosen = [primary] + (extra if rng.random() < 0.3 else [])
        practitioner_conditions = rng.sample(conditions, rng.randint(2, 5))
        practitioner_funds = rng.sample(funds, rng.randint(0, 4))
        lat = pc.lat + rng.uniform(-0.01, 0.01)
        lon = pc.lon + rng.uniform(-0.01, 0.01)
        home = rng.random() < 0.25
        langs = ["English"] + ([rng.choice(LANGUAGES[1:])] if rng.random() < 0.3 else [])
        accepting = rng.random() < 0.8
        member = f"{rng.randint(10000, 99999)}"
        if external_id in existing:
            continue
        practitioner = Practitioner(
            external_id=external_id,
            name=name,
            business_name=f"{pc.place} {rng.choice(PRACTICE_WORDS)} Clinic",
            bio=f"{modalities[primary].name} in {pc.place}, helping people move without pain.",
            email=f"demo-{n:04d}@example.com",
            phone=f"+61 2 9{rng.randint(100, 999)} {rng.randint(1000, 9999)}",
            accreditation_body=ACCREDITATION[primary],
            membership_number=member,
            languages=langs,
            accepting_new_patients=accepting,
            # those not accepting show each capacity in turn (no extra draw: same directory)
            capacity_status="accepting"
            if accepting
            else ("waitlist", "existing_only", "closed")[n % 3],
            waitlist_weeks=None if accepting or n % 3 else 2 + n % 5,
            capacity_confirmed_at=utcnow(),
            home_visits=home,
            telehealth=primary in ("physiotherapy", "yoga") and rng.random() < 0.4,
            status="active",
            verified_by="demo seed",
            modalities=[modalities[s] for s in chosen],
            conditions=practitioner_conditions,
            funds=[
                PractitionerFund(fund=f, provider_number=f"{rng.randint(100000, 999999)}X")
                for f in practitioner_funds
            ],
            locations=[
                Location(
                    street=f"{rng.randint(1, 400)} {rng.choice(LAST)} Street",
                    suburb=pc.place,
                    state=pc.state,
                    postcode=pc.postcode,
                    country="AU",
                    lat=lat,
                    lon=lon,
                    home_visit_radius_km=10.0 if home else None,
                )
            ],
        )
        session.add(practitioner)
        added += 1
    session.commit()
    return added


def _postcode_pools(session: Session) -> dict[str, list[Postcode]]:
    pools: dict[str, list[Postcode]] = {}
    for city, code in CITIES.items():
        centre = session.scalars(
            select(Postcode).where(Postcode.country == "AU", Postcode.postcode == code)
        ).first()
        if centre is None:
            raise RuntimeError(f"Postcode {code} ({city}) is not loaded: run load-postcodes first.")
        near = session.scalars(
            select(Postcode)
            .where(
                Postcode.country == "AU",
                Postcode.lat.between(centre.lat - 0.3, centre.lat + 0.3),
                Postcode.lon.between(centre.lon - 0.35, centre.lon + 0.35),
            )
            .order_by(Postcode.postcode)
        ).all()
        # practices sit in suburbs people live in, not at a PO box or mail centre's point
        pools[city] = [
            p
            for p in near
            if great_circle_km(centre.lat, centre.lon, p.lat, p.lon) <= SPREAD_KM
            and postcode_kind(p.country, p.postcode, p.place) == "delivery"
        ] or [centre]
    return pools
