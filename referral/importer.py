"""Bringing a membership list in from CSV: ``flask referral import FILE.csv``.

Columns (exactly): ``external_id,name,modalities,street,suburb,postcode,state,country,lat,lon,
phone,email,website,funds``; list fields are separated by ``;`` and a fund may carry its
provider number as ``bupa:123456A``. Rows sharing an ``external_id`` are one practitioner
with several locations (that is how :mod:`referral.export` writes them). Each bad row is
reported with its line number (the header is line 1) and changes nothing; so do the other
rows of the same practitioner. Listings are matched by ``external_id``, so importing the
same file again changes nothing.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import current_app
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from referral.accounts import normalise_email
from referral.audit import current_actor
from referral.errors import InvalidInput
from referral.geo.postcodes import normalise_postcode
from referral.listings import by_slugs, check_name, check_phone, check_website, geocode
from referral.models import HealthFund, Location, Modality, Practitioner, PractitionerFund, utcnow
from referral.signals import directory_imported, listing_submitted

COLUMNS = (
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
#: listings made on the site have no external id; the export names them ``referral-<id>``
SITE_ID = re.compile(r"^referral-(\d+)$")
LOCATION_FIELDS = ("street", "suburb", "postcode", "state", "country")
#: about a centimetre: coordinates closer than this are the same place
COORD_TOLERANCE = 1e-7
_BAD_BYTES = re.compile("[\udc80-\udcff]")
#: what a spreadsheet runs as a formula: a cell starting with one of ``= + - @``, tab or CR,
#: here after any ``'`` already there, so an escaped cell is escaped once more
_FORMULA = re.compile(r"'*[=+\-@\t\r]")
#: a plain number (``-33.8688``, ``+61``, ``-1e5``): a spreadsheet shows it, it runs nothing
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")


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
    header = [h.strip() for h in header]
    if _BAD_BYTES.search(",".join(header)):
        report.errors.append(RowError(1, "the file is not UTF-8 text: save it as UTF-8 (CSV)"))
        return None
    missing = [c for c in COLUMNS if c not in header]
    extra = [c for c in header if c not in COLUMNS]
    if missing or extra or len(set(header)) != len(header):
        parts = []
        if missing:
            parts.append("missing columns: " + ", ".join(missing))
        if extra:
            parts.append("unexpected columns: " + ", ".join(extra[:5]))
        if not parts:
            parts.append("a column appears twice")
        report.errors.append(RowError(1, "; ".join(parts) + f" (expected {','.join(COLUMNS)})"))
        return None

    lookups = _Lookups(session)
    rows: list[_Row] = []
    failed: set[str] = set()
    last_line = reader.line_num
    while True:
        line = last_line + 1
        try:
            values = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            # the rest of the file cannot be trusted: import none of it
            report.errors.append(RowError(line, f"cannot be read as CSV ({exc})"))
            return None
        last_line = reader.line_num
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


class _Lookups:
    def __init__(self, session: Session) -> None:
        self.modalities = {m.slug: m for m in session.scalars(select(Modality))}
        self.funds = {f.slug: f for f in session.scalars(select(HealthFund))}


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.split(";") if part.strip()]


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


def _check(
    session: Session, record: dict[str, Any], config: Mapping[str, Any], lookups: _Lookups
) -> list[str]:
    """Every reason the row cannot be imported; fills ``_listing``/``_location`` when none."""
    problems: list[str] = []
    if _BAD_BYTES.search("".join(record.values())):
        return ["is not UTF-8 text: save the file as UTF-8 (CSV)"]
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
    modalities = list(dict.fromkeys(_split(record["modalities"])))
    if not modalities:
        problems.append("modalities is empty")
    for slug in modalities:
        if slug not in lookups.modalities:
            problems.append(f"unknown modality {slug!r}")
    funds: dict[str, str | None] = {}
    for item in _split(record["funds"]):
        slug, _, number = item.partition(":")
        slug, number = slug.strip(), number.strip()
        if slug not in lookups.funds:
            problems.append(f"unknown fund {slug!r}")
        elif len(number) > 40:
            problems.append(f"provider number for {slug} is longer than 40 characters")
        else:
            funds[slug] = number or None
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
    for column, limit in (("street", 200), ("suburb", 120), ("state", 60), ("postcode", 20)):
        if len(record[column]) > limit:
            problems.append(f"{column} is longer than {limit} characters")
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
    record["_listing"] = {
        "name": name,
        "modalities": tuple(sorted(modalities)),
        "funds": tuple(sorted(funds.items())),
        "phone": phone,
        "email": email,
        "website": website,
    }
    record["_location"] = {
        "street": record["street"] or None,
        "suburb": record["suburb"] or None,
        "postcode": postcode,
        "state": record["state"] or None,
        "country": country,
        "lat": lat,
        "lon": lon,
    }
    return []


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
    return all(getattr(location, f) == wanted[f] for f in LOCATION_FIELDS) and (
        abs(location.lat - wanted["lat"]) <= COORD_TOLERANCE
        and abs(location.lon - wanted["lon"]) <= COORD_TOLERANCE
    )


def _current(practitioner: Practitioner) -> dict[str, Any]:
    return {
        "name": practitioner.name,
        "modalities": tuple(sorted(m.slug for m in practitioner.modalities)),
        "funds": tuple(sorted((pf.fund.slug, pf.provider_number) for pf in practitioner.funds)),
        "phone": practitioner.phone,
        "email": practitioner.email,
        "website": practitioner.website,
    }


def _apply(
    session: Session, external_id: str, group: list[_Row], status: str
) -> tuple[str, Practitioner]:
    wanted = group[0].listing
    places = [row.location for row in group]
    practitioner = _find(session, external_id)
    if practitioner is not None:
        same = (
            _current(practitioner) == wanted
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
    practitioner.name = wanted["name"]
    practitioner.phone = wanted["phone"]
    practitioner.email = wanted["email"]
    practitioner.website = wanted["website"]
    practitioner.modalities = by_slugs(session, Modality, list(wanted["modalities"]), "modality")
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
    session.flush()
    return outcome, practitioner
