"""Bringing a membership list in from CSV: ``flask referral import FILE.csv``.

The file carries a whole listing (the README has a table of the columns): the columns of
:data:`REQUIRED` must be there, the rest of :data:`COLUMNS` may be left out, and a listing
keeps what it has for a column the file does not carry; an empty cell clears the value (a
yes/no column goes back to its default). Headers are matched in any case, with spaces or
``_`` (``External ID`` is ``external_id``). List cells (modalities, conditions, funds,
languages) are separated by ``;`` or ``,``; a modality, condition or fund is its name or its
slug in any case (``Remedial massage``, ``remedial-massage``, ``HCF``), and a fund may carry
its provider number as ``Bupa:123456A``. Rows sharing an ``external_id`` are one practitioner
with several locations (that is how :mod:`referral.export` writes them) and must agree on
the listing's columns. UTF-8 with or without the byte-order mark Excel writes.

Each bad row is reported with its line number (the row a spreadsheet shows: the header
is line 1, and a cell holding line breaks does not add lines), the column and the value,
and changes nothing; so do the other rows of the same practitioner. Listings are matched
by ``external_id``, so importing the same file again changes nothing, and export -> import
gives back every listing as it was.

Cells a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``, ``@``, tab or
carriage return) are written by the export behind one ``'``, as OWASP advises against CSV
injection (:func:`escape_formula`); the import takes that ``'`` off again
(:func:`unescape_formula`), so export -> import gives back each value as it was typed.
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from referral import booking, capacity
from referral.accounts import normalise_email
from referral.audit import current_actor
from referral.errors import InvalidInput
from referral.geo.postcodes import normalise_postcode
from referral.listings import (
    DAY_NAMES,
    DAYS,
    by_slugs,
    check_name,
    check_phone,
    check_website,
    format_opening_hours,
    geocode,
    parse_opening_hours,
)
from referral.models import (
    Condition,
    HealthFund,
    Location,
    Modality,
    Practitioner,
    PractitionerFund,
    utcnow,
)
from referral.signals import directory_imported, listing_submitted

#: every column, in the order the export writes them
COLUMNS = (
    "external_id",
    "name",
    "business_name",
    "modalities",
    "conditions",
    "bio",
    "languages",
    "accreditation_body",
    "membership_number",
    "funds",
    "accepting_new_patients",
    "capacity",
    "waitlist_weeks",
    "weekly_referral_cap",
    "capacity_confirmed",
    "telehealth",
    "home_visits",
    "phone",
    "email",
    "website",
    "booking_url",
    "location_name",
    "street",
    "suburb",
    "postcode",
    "state",
    "country",
    "lat",
    "lon",
    "home_visit_radius_km",
    "opening_hours",
)
#: the columns every file has (the first version of the format); the others are optional
REQUIRED = (
    "external_id",
    "name",
    "modalities",
    "street",
    "suburb",
    "postcode",
    "state",
    "country",
    "lat",
    "lon",
    "phone",
    "email",
    "website",
    "funds",
)
#: columns of one location (the last of :data:`COLUMNS`, from ``location_name`` on); all the
#: others describe the listing, the same on each of its rows
LOCATION_COLUMNS = COLUMNS[COLUMNS.index("location_name") :]
#: listings made on the site have no external id; the export names them ``referral-<id>``
SITE_ID = re.compile(r"^referral-(\d+)$")
LOCATION_FIELDS = ("street", "suburb", "postcode", "state", "country")
#: about a centimetre: coordinates closer than this are the same place
COORD_TOLERANCE = 1e-7
#: what a yes/no cell may say (any case); an empty cell is the column's default
YES, NO = frozenset({"yes", "y", "true", "1"}), frozenset({"no", "n", "false", "0"})
#: a yes/no column's value when the cell is empty (the model's defaults)
FLAG_DEFAULTS = {"accepting_new_patients": True, "telehealth": False, "home_visits": False}
#: longest text each text column takes (the database's and the listing editor's limits)
TEXT_LIMITS = {
    "business_name": 200,
    "bio": 5000,
    "accreditation_body": 200,
    "membership_number": 80,
    "location_name": 200,
    "street": 200,
    "suburb": 120,
    "state": 60,
    "postcode": 20,
}
MAX_RADIUS_KM = 500.0
MAX_LANGUAGES = 15
_BAD_BYTES = re.compile("[\udc80-\udcff]")
#: what a spreadsheet runs as a formula: a cell starting with one of ``= + - @``, tab or CR,
#: here after any ``'`` already there, so an escaped cell is escaped once more
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
#: a plain number (``-33.8688``, ``+61``, ``-1e5``): a spreadsheet shows it, it runs nothing
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_LIST_SEPARATOR = re.compile(r"[;,]")
#: one day's hours in an ``opening_hours`` cell: ``Mon 09:00-17:00``, ``Mon-Fri: 9-17``
_HOURS_PART = re.compile(r"^([a-z]+)\.?(?:\s*[-\u2013]\s*([a-z]+)\.?)?\s*:?\s+(.+)$", re.I)
_DAY_WORDS = {
    **{day: day for day in DAYS},
    **{name.lower(): day for day, name in DAY_NAMES.items()},
    **{"tues": "tue", "thur": "thu", "thurs": "thu"},
}


@dataclass(frozen=True)
class RowError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> str:
        return (
            f"{self.created} created, {self.updated} updated, {self.unchanged} unchanged, "
            f"{len(self.errors)} rejected"
        )


@dataclass
class _Row:
    line: int
    external_id: str
    listing: dict[str, Any]
    location: dict[str, Any]


def escape_formula(cell: str) -> str:
    """The cell as the export writes it: behind a ``'`` when a spreadsheet would run it.

    Plain numbers are left alone (a negative latitude stays ``-33.8688``, so the file still
    reads as numbers): evaluated, they are only themselves. :func:`unescape_formula` undoes
    this exactly, for every string.
    """
    if _FORMULA.match(cell) and not _NUMBER.fullmatch(cell):
        return "'" + cell
    return cell


def unescape_formula(cell: str) -> str:
    """The cell as it was typed: one leading ``'`` taken off when what follows is something
    :func:`escape_formula` escapes; any other cell (``'hello``) is kept as it is."""
    if cell.startswith("'") and _FORMULA.match(cell, 1):
        return cell[1:]
    return cell


def site_id(practitioner: Practitioner) -> str:
    """The ``external_id`` an export writes for a listing."""
    return practitioner.external_id or f"referral-{practitioner.id}"


def hours_cell(hours: Mapping[str, list[list[str]]] | None) -> str:
    """Opening hours as an ``opening_hours`` cell, the form :func:`parse_hours_cell` reads:
    ``Mon-Fri 09:00-17:00; Sat 09:00-12:30, 13:30-16:00``, days in a row with the same hours
    written as a range (a day not named is closed)."""
    texts = format_opening_hours(hours)
    runs: list[list[str]] = []  # [first day, last day] of each run of equal hours
    for day in DAYS:
        if not texts[day]:
            continue
        if runs and texts[runs[-1][1]] == texts[day] and _next_day(runs[-1][1]) == day:
            runs[-1][1] = day
        else:
            runs.append([day, day])
    label = {day: DAY_NAMES[day][:3] for day in DAYS}
    return "; ".join(
        (label[a] if a == b else f"{label[a]}-{label[b]}") + f" {texts[a]}" for a, b in runs
    )


def _next_day(day: str) -> str | None:
    index = DAYS.index(day) + 1
    return DAYS[index] if index < len(DAYS) else None


def parse_hours_cell(text: str) -> dict[str, list[list[str]]] | None:
    """An ``opening_hours`` cell as stored hours (``None`` when empty), read by the listing
    editor's rules (:func:`referral.listings.parse_opening_hours`); a day may be a name or
    its first letters, or a range (``Mon-Fri 09:00-17:00``). ``ValueError`` says what is
    wrong, in words for the person who typed it."""
    texts: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(";"))):
        match = _HOURS_PART.match(part)
        first = _DAY_WORDS.get(match.group(1).lower()) if match else None
        last = _DAY_WORDS.get((match.group(2) or match.group(1)).lower()) if match else None
        if not match or first is None or last is None:
            raise ValueError(
                f"cannot read {part[:40]!r}: write a day and its hours, such as "
                "Mon 09:00-17:00; Tue 09:00-12:30, 13:30-17:00"
            )
        days = DAYS[DAYS.index(first) : DAYS.index(last) + 1]
        if not days:
            raise ValueError(f"{part[:40]!r}: the days run backwards (write Mon-Fri)")
        for day in days:
            if day in texts:
                raise ValueError(f"{DAY_NAMES[day]} appears twice")
            texts[day] = match.group(3)
    try:
        return parse_opening_hours(texts)
    except InvalidInput as exc:
        raise ValueError(exc.message) from None


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"


def csv_record(practitioner: Practitioner, location: Location) -> dict[str, str]:
    """One location of a listing as a row of :data:`COLUMNS`, before formula escaping:
    what :func:`import_csv` reads back into the same listing."""
    p = practitioner
    return {
        "external_id": site_id(p),
        "name": p.name,
        "business_name": p.business_name or "",
        "modalities": ";".join(sorted(m.slug for m in p.modalities)),
        "conditions": ";".join(sorted(c.slug for c in p.conditions)),
        "bio": p.bio or "",
        "languages": "; ".join(p.languages or []),
        "accreditation_body": p.accreditation_body or "",
        "membership_number": p.membership_number or "",
        "funds": ";".join(
            f"{pf.fund.slug}:{pf.provider_number}" if pf.provider_number else pf.fund.slug
            for pf in sorted(p.funds, key=lambda pf: pf.fund.slug)
        ),
        "accepting_new_patients": _yes_no(p.accepting_new_patients),
        "capacity": p.capacity_status or "",
        "waitlist_weeks": "" if p.waitlist_weeks is None else str(p.waitlist_weeks),
        "weekly_referral_cap": (
            "" if p.weekly_referral_cap is None else str(p.weekly_referral_cap)
        ),
        "capacity_confirmed": (
            p.capacity_confirmed_at.isoformat() if p.capacity_confirmed_at else ""
        ),
        "telehealth": _yes_no(p.telehealth),
        "home_visits": _yes_no(p.home_visits),
        "phone": p.phone or "",
        "email": p.email or "",
        "website": p.website or "",
        "booking_url": p.booking_url or "",
        "location_name": location.name or "",
        "street": location.street or "",
        "suburb": location.suburb or "",
        "postcode": location.postcode or "",
        "state": location.state or "",
        "country": location.country,
        "lat": repr(location.lat),
        "lon": repr(location.lon),
        "home_visit_radius_km": (
            "" if location.home_visit_radius_km is None else repr(location.home_visit_radius_km)
        ),
        "opening_hours": hours_cell(location.opening_hours),
    }


def import_csv(
    session: Session,
    data: bytes,
    config: Mapping[str, Any],
    *,
    status: str = "active",
    source: str = "CSV",
) -> ImportReport:
    """Validate every row, then write the good practitioners in one transaction; the audit
    log records it (``source`` names the file there)."""
    report = ImportReport()
    read = _read(session, data, config, report)
    if read is None:
        return report
    rows, failed_ids = read
    groups: dict[str, list[_Row]] = {}
    for row in rows:
        groups.setdefault(row.external_id, []).append(row)
    submitted: list[Practitioner] = []
    try:
        for external_id, group in groups.items():
            if external_id in failed_ids or not _consistent(group, report):
                rejected = {e.line for e in report.errors}
                for row in group:
                    if row.line not in rejected:
                        report.errors.append(
                            RowError(
                                row.line,
                                f"not imported: another row for external_id {external_id} "
                                "was rejected",
                            )
                        )
                continue
            outcome, practitioner = _apply(session, external_id, group, status)
            setattr(report, outcome, getattr(report, outcome) + 1)
            if outcome == "created" and status == "pending":
                submitted.append(practitioner)
        session.commit()
    except Exception:
        session.rollback()
        raise
    report.errors.sort(key=lambda e: e.line)
    app = current_app._get_current_object()
    for practitioner in submitted:
        listing_submitted.send(app, practitioner=practitioner)
    counts = {"created": report.created, "updated": report.updated, "rejected": len(report.errors)}
    directory_imported.send(
        app, actor=current_actor()[0], source=source, summary=report.summary(), counts=counts
    )
    return report


def _header_name(text: str) -> str:
    """``External ID`` and ``external-id`` are ``external_id``."""
    return re.sub(r"[\s-]+", "_", text.strip().lower())


def _read(
    session: Session, data: bytes, config: Mapping[str, Any], report: ImportReport
) -> tuple[list[_Row], set[str]] | None:
    """The rows that passed their checks, and the external ids of practitioners with a
    rejected row; ``None`` when the file as a whole cannot be read."""
    text = data.decode("utf-8-sig", errors="surrogateescape")
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        report.errors.append(RowError(1, "the file is empty"))
        return None
    except csv.Error as exc:
        report.errors.append(RowError(1, f"not a CSV file ({exc})"))
        return None
    if _BAD_BYTES.search(",".join(header)):
        report.errors.append(RowError(1, "the file is not UTF-8 text: save it as UTF-8 (CSV)"))
        return None
    header = [_header_name(h) for h in header]
    missing = [c for c in REQUIRED if c not in header]
    extra = [c for c in header if c not in COLUMNS]
    if missing or extra or len(set(header)) != len(header):
        parts = []
        if missing:
            parts.append("missing columns: " + ", ".join(missing))
        if extra:
            parts.append("unexpected columns: " + ", ".join(extra[:5]))
        if not parts:
            parts.append("a column appears twice")
        report.errors.append(
            RowError(
                1,
                "; ".join(parts) + f" (every file has {','.join(REQUIRED)}; "
                "the README lists the optional columns)",
            )
        )
        return None

    lookups = _Lookups(session)
    rows: list[_Row] = []
    failed: set[str] = set()
    # rows are numbered as a spreadsheet shows them: a cell holding line breaks is one row
    line = 1
    while True:
        line += 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # the rest of the file cannot be trusted: import none of it
            report.errors.append(RowError(line, f"cannot be read as CSV ({exc})"))
            return None
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            report.errors.append(
                RowError(line, f"has {len(values)} fields, expected {len(header)}")
            )
            position = header.index("external_id")
            if position < len(values):
                failed.add(unescape_formula(values[position].strip()))
            continue
        record = {k: unescape_formula(v.strip()) for k, v in zip(header, values, strict=True)}
        problems = _check(session, record, config, lookups)
        if problems:
            report.errors.append(RowError(line, "; ".join(problems)))
            failed.add(record["external_id"])
            continue
        rows.append(_Row(line, record["external_id"], record["_listing"], record["_location"]))
    return rows, failed


def _key(text: str) -> str:
    """What a taxonomy name or slug is matched by: any case, spaces or hyphens alike."""
    return re.sub(r"[\s_-]+", "-", text.strip().casefold())


class _Taxonomy:
    """One taxonomy's slugs, found by slug or name in any case."""

    def __init__(self, rows: Iterable[Any], what: str) -> None:
        rows = list(rows)
        self.what = what
        self._slugs: dict[str, str] = {}
        for row in rows:
            self._slugs.setdefault(_key(row.slug), row.slug)
        for row in rows:
            self._slugs.setdefault(_key(row.name), row.slug)
        self.names = ", ".join(sorted((row.name for row in rows), key=str.casefold))

    def slug(self, text: str) -> str | None:
        return self._slugs.get(_key(text))

    def unknown(self, column: str, value: str) -> str:
        return (
            f"{column}: {value[:40]!r} is not a {self.what} this directory lists "
            f"(write one of: {self.names})"
        )


class _Lookups:
    def __init__(self, session: Session) -> None:
        self.modalities = _Taxonomy(session.scalars(select(Modality)), "modality")
        self.conditions = _Taxonomy(session.scalars(select(Condition)), "condition")
        self.funds = _Taxonomy(session.scalars(select(HealthFund)), "health fund")


def _split(text: str) -> list[str]:
    return [part.strip() for part in _LIST_SEPARATOR.split(text) if part.strip()]


def _coordinate(text: str, name: str, limit: float, problems: list[str]) -> float | None:
    try:
        value = float(text)
    except ValueError:
        problems.append(f"{name} {text[:30]!r} is not a number")
        return None
    if not math.isfinite(value) or not -limit <= value <= limit:
        problems.append(f"{name} {text[:30]} is out of range (-{limit:g} to {limit:g})")
        return None
    return value


def _slugs(taxonomy: _Taxonomy, column: str, text: str, problems: list[str]) -> tuple[str, ...]:
    slugs = []
    for item in _split(text):
        slug = taxonomy.slug(item)
        if slug is None:
            problems.append(taxonomy.unknown(column, item))
        elif slug not in slugs:
            slugs.append(slug)
    return tuple(sorted(slugs))


def _funds(lookups: _Lookups, text: str, problems: list[str]) -> tuple[tuple[str, Any], ...]:
    funds: dict[str, str | None] = {}
    for item in _split(text):
        name, _, number = item.partition(":")
        slug, number = lookups.funds.slug(name), number.strip()
        if slug is None:
            problems.append(lookups.funds.unknown("funds", name.strip()))
        elif len(number) > 40:
            problems.append(
                f"funds: the provider number for {name.strip()} is longer than 40 characters"
            )
        else:
            funds[slug] = number or None
    return tuple(sorted(funds.items()))


def _flag(record: dict[str, str], column: str, problems: list[str]) -> bool:
    text = record[column].lower()
    if not text:
        return FLAG_DEFAULTS[column]
    if text in YES or text in NO:
        return text in YES
    problems.append(f"{column} {record[column][:20]!r} is not yes or no")
    return FLAG_DEFAULTS[column]


def _languages(text: str, problems: list[str]) -> tuple[str, ...]:
    languages = tuple(dict.fromkeys(_split(text)))
    if len(languages) > MAX_LANGUAGES:
        problems.append(f"languages: list at most {MAX_LANGUAGES} languages")
    for language in languages:
        if len(language) > 40:
            problems.append(f"languages: {language[:40]!r}... is longer than 40 characters")
    return languages


def _check(
    session: Session, record: dict[str, Any], config: Mapping[str, Any], lookups: _Lookups
) -> list[str]:
    """Every reason the row cannot be imported, each naming its column and value; fills
    ``_listing``/``_location`` (only the columns the file has) when there is none."""
    problems: list[str] = []
    if _BAD_BYTES.search("".join(record.values())):
        return ["is not UTF-8 text: save the file as UTF-8 (CSV)"]
    has = record.__contains__
    external_id = record["external_id"]
    if not external_id:
        problems.append("external_id is empty")
    elif len(external_id) > 120:
        problems.append("external_id is longer than 120 characters")
    elif SITE_ID.match(external_id) and _find(session, external_id) is None:
        problems.append(
            f"external_id {external_id} is reserved for listings made on this site, "
            "and there is no such listing"
        )
    name = record["name"]
    if not name:
        problems.append("name is empty")
    elif len(name) > 200:
        problems.append("name is longer than 200 characters")
    else:
        try:
            check_name(name)
        except InvalidInput:
            problems.append(f"name {name[:60]!r} holds a web address or markup, not only a name")
    for column, limit in TEXT_LIMITS.items():
        if has(column) and len(record[column]) > limit:
            problems.append(f"{column} is longer than {limit} characters")
    if has("business_name") and record["business_name"]:
        try:
            check_name(record["business_name"])
        except InvalidInput:
            problems.append(
                f"business_name {record['business_name'][:60]!r} holds a web address or "
                "markup, not only a name"
            )
    listing: dict[str, Any] = {"name": name}
    listing["modalities"] = _slugs(lookups.modalities, "modalities", record["modalities"], problems)
    if not _split(record["modalities"]):
        problems.append("modalities is empty")
    if has("conditions"):
        listing["conditions"] = _slugs(
            lookups.conditions, "conditions", record["conditions"], problems
        )
    listing["funds"] = _funds(lookups, record["funds"], problems)
    if has("languages"):
        listing["languages"] = _languages(record["languages"], problems)
    for column in FLAG_DEFAULTS:
        if has(column):
            listing[column] = _flag(record, column, problems)
    for column in ("business_name", "accreditation_body", "membership_number"):
        if has(column):
            listing[column] = record[column] or None
    if has("bio"):
        listing["bio"] = record["bio"]
    _capacity(record, listing, problems)

    country = (record["country"] or str(config["REFERRAL_DEFAULT_COUNTRY"])).upper()
    if len(country) != 2 or not country.isalpha():
        problems.append(f"country {record['country'][:20]!r} is not a two-letter code")
    email = record["email"] or None
    if email:
        try:
            email = normalise_email(email)
        except InvalidInput:
            problems.append(f"email {record['email'][:60]!r} is not a valid address")
    website = phone = None
    try:
        website = check_website(record["website"] or None)
    except InvalidInput:
        problems.append(f"website {record['website'][:60]!r} is not a web address")
    try:
        phone = check_phone(record["phone"] or None, country if len(country) == 2 else "AU")
    except (InvalidInput, TypeError):
        problems.append(f"phone {record['phone'][:40]!r} is not a phone number")
    listing.update(phone=phone, email=email, website=website)

    place: dict[str, Any] = {}
    if has("location_name"):
        place["name"] = record["location_name"] or None
    if has("home_visit_radius_km"):
        place["home_visit_radius_km"] = _radius(record["home_visit_radius_km"], problems)
    if has("opening_hours"):
        try:
            place["opening_hours"] = parse_hours_cell(record["opening_hours"])
        except ValueError as exc:
            problems.append(f"opening_hours: {exc}")
    lat = lon = None
    if record["lat"] or record["lon"]:
        if not (record["lat"] and record["lon"]):
            problems.append("give both lat and lon, or neither")
        else:
            lat = _coordinate(record["lat"], "lat", 90, problems)
            lon = _coordinate(record["lon"], "lon", 180, problems)
    elif not record["postcode"] and not record["suburb"]:
        problems.append("no lat/lon and no postcode or suburb to find them from")
    if problems:
        return problems
    postcode = normalise_postcode(record["postcode"]) if record["postcode"] else None
    if lat is None or lon is None:
        try:
            lat, lon = geocode(session, postcode, record["suburb"] or None, country, config)
        except InvalidInput as exc:
            return [exc.message]
    record["_listing"] = listing
    record["_location"] = {
        "street": record["street"] or None,
        "suburb": record["suburb"] or None,
        "postcode": postcode,
        "state": record["state"] or None,
        "country": country,
        "lat": lat,
        "lon": lon,
        **place,
    }
    return []


def _capacity(record: dict[str, str], listing: dict[str, Any], problems: list[str]) -> None:
    """The capacity columns into ``listing`` (checked as the listing editor checks them,
    :func:`referral.capacity.check_settings`). With ``capacity`` given, whether the listing
    accepts now follows from it (and its weekly cap), not from ``accepting_new_patients``."""
    has = record.__contains__
    if has("booking_url"):
        try:
            listing["booking_url"] = booking.check_booking_url(record["booking_url"] or None)
        except InvalidInput as exc:
            problems.append(f"booking_url {record['booking_url'][:60]!r}: {exc.message}")
    if has("capacity_confirmed"):
        text = record["capacity_confirmed"]
        try:
            listing["capacity_confirmed_at"] = datetime.fromisoformat(text) if text else None
        except ValueError:
            problems.append(f"capacity_confirmed {text[:30]!r} is not a date like 2026-11-30")
    if not has("capacity") or not record["capacity"]:
        return
    key = _key(record["capacity"])
    status = next(
        (slug for slug, label in capacity.STATUSES.items() if key in (_key(slug), _key(label))),
        None,
    )
    if status is None:
        problems.append(
            f"capacity {record['capacity'][:40]!r} is not one of: " + ", ".join(capacity.STATUSES)
        )
        return
    try:
        settings = capacity.check_settings(
            {
                "capacity_status": status,
                "waitlist_weeks": record.get("waitlist_weeks"),
                "weekly_referral_cap": record.get("weekly_referral_cap"),
            }
        )
    except InvalidInput as exc:
        problems.append(f"capacity: {exc.message}")
        return
    listing.pop("accepting_new_patients", None)
    listing.update(
        capacity_status=settings.status,
        waitlist_weeks=settings.waitlist_weeks,
        weekly_referral_cap=settings.weekly_referral_cap,
    )


def _radius(text: str, problems: list[str]) -> float | None:
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        problems.append(f"home_visit_radius_km {text[:20]!r} is not a number of kilometres")
        return None
    if not math.isfinite(value) or not 0 <= value <= MAX_RADIUS_KM:
        problems.append(
            f"home_visit_radius_km {text[:20]} is out of range (0 to {MAX_RADIUS_KM:g} km)"
        )
        return None
    return value


def _consistent(group: list[_Row], report: ImportReport) -> bool:
    first = group[0]
    ok = True
    for row in group[1:]:
        differs = [k for k, v in row.listing.items() if first.listing[k] != v]
        if differs:
            report.errors.append(
                RowError(
                    row.line,
                    f"external_id {row.external_id}: {', '.join(differs)} "
                    f"{'differs' if len(differs) == 1 else 'differ'} from line "
                    f"{first.line} (rows of one practitioner must agree)",
                )
            )
            ok = False
    return ok


def _find(session: Session, external_id: str) -> Practitioner | None:
    options = [
        selectinload(Practitioner.locations),
        selectinload(Practitioner.modalities),
        selectinload(Practitioner.conditions),
        selectinload(Practitioner.funds),
    ]
    found = session.scalars(
        select(Practitioner).where(Practitioner.external_id == external_id).options(*options)
    ).first()
    match = SITE_ID.match(external_id)
    if found is None and match:
        candidate = session.get(Practitioner, int(match.group(1)), options=options)
        if candidate is not None and candidate.external_id is None:
            found = candidate
    return found


def _same_place(location: Location, wanted: dict[str, Any]) -> bool:
    exact = [key for key in wanted if key not in ("lat", "lon")]
    return all(getattr(location, key) == wanted[key] for key in exact) and (
        abs(location.lat - wanted["lat"]) <= COORD_TOLERANCE
        and abs(location.lon - wanted["lon"]) <= COORD_TOLERANCE
    )


def _current(practitioner: Practitioner, keys: Iterable[str]) -> dict[str, Any]:
    """The listing as :func:`_check` describes a row, for the columns in ``keys``."""
    p = practitioner
    derived = {
        "modalities": lambda: tuple(sorted(m.slug for m in p.modalities)),
        "conditions": lambda: tuple(sorted(c.slug for c in p.conditions)),
        "funds": lambda: tuple(sorted((pf.fund.slug, pf.provider_number) for pf in p.funds)),
        "languages": lambda: tuple(p.languages or ()),
        "bio": lambda: p.bio or "",
    }
    return {key: derived[key]() if key in derived else getattr(p, key) for key in keys}


def _apply(
    session: Session, external_id: str, group: list[_Row], status: str
) -> tuple[str, Practitioner]:
    wanted = group[0].listing
    places = [row.location for row in group]
    practitioner = _find(session, external_id)
    if practitioner is not None:
        same = (
            _current(practitioner, wanted) == wanted
            and len(practitioner.locations) == len(places)
            and all(
                _same_place(loc, p) for loc, p in zip(practitioner.locations, places, strict=True)
            )
        )
        if same:
            return "unchanged", practitioner
        outcome = "updated"
    else:
        practitioner = Practitioner(external_id=external_id, status=status, bio="")
        if status == "active":
            practitioner.verified_by = "csv import"
            practitioner.verified_at = utcnow()
        session.add(practitioner)
        outcome = "created"
    taxonomies = {"modalities": (Modality, "modality"), "conditions": (Condition, "condition")}
    for key, value in wanted.items():
        if key in taxonomies:
            model, what = taxonomies[key]
            setattr(practitioner, key, by_slugs(session, model, list(value), what))
        elif key == "languages":
            practitioner.languages = list(value)
        elif key != "funds":
            setattr(practitioner, key, value)
    existing = {pf.fund.slug: pf for pf in practitioner.funds}
    funds = []
    for slug, number in wanted["funds"]:
        pf = existing.get(slug) or PractitionerFund(
            fund=session.scalars(select(HealthFund).where(HealthFund.slug == slug)).one()
        )
        pf.provider_number = number
        funds.append(pf)
    practitioner.funds = funds
    locations = list(practitioner.locations)
    for index, place in enumerate(places):
        if index < len(locations):
            location = locations[index]
        else:
            location = Location()
            practitioner.locations.append(location)
        for key, value in place.items():
            setattr(location, key, value)
    for surplus in locations[len(places) :]:
        practitioner.locations.remove(surplus)
    if "capacity_status" in wanted:
        capacity.refresh(session, practitioner)
    elif (
        "accepting_new_patients" in wanted
        and practitioner.capacity_status is not None
        and wanted["accepting_new_patients"] != (practitioner.capacity_status == "accepting")
    ):
        # an older file, without capacity: its yes/no moves the status only where they differ
        practitioner.capacity_status = (
            "accepting" if wanted["accepting_new_patients"] else "existing_only"
        )
    session.flush()
    return outcome, practitioner
