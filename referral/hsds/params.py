"""Reading an HSDS list request's query parameters into checked values.

Each bad value is an :class:`~referral.errors.InvalidInput` (a 400 in the API's error shape)
with a plain message. Parameters an endpoint does not take are ignored, as Open Referral's
document leaves them undefined. Ids in filters must be UUIDs; a UUID that is none of ours
matches nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from referral.errors import InvalidInput
from referral.hsds.queries import Criteria, Near
from referral.hsds.records import Catalogue, record_key
from referral.query import _flag, _integer, _number, _refuse_control_characters, parse_search
from referral.search import Filters

MAX_SEARCH_LENGTH = 200
MAX_WORDS = 10
#: the largest page number taken (a whole number of at most nine digits)
MAX_PAGE = 999_999_999
FORMATS = ("json", "ndjson")


@dataclass(frozen=True)
class ListRequest:
    page: int
    per_page: int
    ndjson: bool
    full: bool
    criteria: Criteria
    near: Near | None = None
    minimal: bool = False
    full_service: bool = False
    #: ``parent_id`` (taxonomy terms): a term's id
    parent_id: str | None = None


def parse_list(
    session: Session,
    args: Mapping[str, Any],
    config: Mapping[str, Any],
    catalogue: Catalogue,
    *,
    takes: frozenset[str] = frozenset(),
) -> ListRequest:
    """The paging, format and (among ``takes``) filters of a list request."""
    _refuse_control_characters(args)
    fmt = (args.get("format") or "json").strip().lower()
    if fmt not in FORMATS:
        raise InvalidInput("invalid_format", "format must be json or ndjson.")
    page = _integer(args, "page", 1, 1, MAX_PAGE)
    per_page = _integer(
        args, "per_page", int(config["REFERRAL_PER_PAGE"]), 1, int(config["REFERRAL_MAX_PER_PAGE"])
    )

    def given(name: str) -> str | None:
        return (args.get(name) or "").strip() or None if name in takes else None

    none = False
    term = taxonomy = organization = None
    if (raw := given("taxonomy_term_id")) is not None:
        term = catalogue.keys.get(_uuid(raw, "taxonomy_term_id", "/taxonomy_terms"))
        none |= term is None
    if (raw := given("taxonomy_id")) is not None:
        taxonomy = catalogue.kinds.get(_uuid(raw, "taxonomy_id", "/taxonomies"))
        none |= taxonomy is None
    if (raw := given("organization_id")) is not None:
        organization = record_key("organization", _uuid(raw, "organization_id", "/organizations"))
        none |= organization is None
    criteria = Criteria(
        words=search_words(given("search")),
        term=term,
        taxonomy=taxonomy,
        organization=organization,
        modified_after=parse_moment(given("modified_after")),
        none=none,
    )
    parent_id = given("parent_id")
    if parent_id is not None:
        parent_id = _uuid(parent_id, "parent_id", "/taxonomy_terms")
    flags = {
        name: name in takes and _flag(args, name)
        for name in ("full", "minimal", "full_service", "top_only")
    }
    return ListRequest(
        page=page,
        per_page=per_page,
        ndjson=fmt == "ndjson",
        full=flags["full"],
        minimal=flags["minimal"],
        full_service=flags["full_service"],
        criteria=criteria,
        parent_id=parent_id,
        near=parse_near(session, args, config, term) if "postcode" in takes else None,
    )


def _uuid(raw: str, name: str, where: str) -> str:
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise InvalidInput(
            f"invalid_{name}", f"{name} must be an id from {where} (a UUID)."
        ) from None


def search_words(raw: str | None) -> tuple[str, ...]:
    """``search`` as lower-case words, each of which must match."""
    if not raw:
        return ()
    if len(raw) > MAX_SEARCH_LENGTH:
        raise InvalidInput(
            "invalid_search", f"search must be at most {MAX_SEARCH_LENGTH} characters."
        )
    words = tuple(dict.fromkeys(raw.lower().split()))
    if len(words) > MAX_WORDS:
        raise InvalidInput("invalid_search", f"search may hold at most {MAX_WORDS} words.")
    return words


def parse_moment(raw: str | None) -> datetime | None:
    """``modified_after``: a date or an ISO 8601 date and time (with ``Z`` or an offset;
    without one it is UTC), as the naive UTC our timestamps are stored in."""
    if raw is None:
        return None
    try:
        moment = datetime.fromisoformat(raw) if len(raw) <= 40 else None
        if moment is not None and moment.tzinfo is not None:
            moment = moment.astimezone(UTC).replace(tzinfo=None)
    except (ValueError, OverflowError):
        moment = None
    if moment is None:
        raise InvalidInput(
            "invalid_modified_after",
            "modified_after must be a date, or a date and time, such as 2026-01-31 or"
            " 2026-01-31T09:00:00Z.",
        )
    return moment


def parse_near(
    session: Session,
    args: Mapping[str, Any],
    config: Mapping[str, Any],
    term: tuple[str, str] | None,
) -> Near | None:
    """``postcode`` (resolved as a search resolves it) and ``proximity`` in metres (default:
    the search's default radius). A modality or condition term is handed to the spatial
    index as its filter."""
    postcode = (args.get("postcode") or "").strip()
    max_m = float(config["REFERRAL_MAX_RADIUS_KM"]) * 1000
    proximity = _number(args, "proximity", 1, max_m)
    if not postcode:
        if proximity is not None:
            raise InvalidInput(
                "missing_postcode",
                "proximity needs a postcode: it is the distance in metres from the"
                " postcode's centre.",
            )
        return None
    try:
        point = parse_search(session, {"postcode": postcode}, config).point
    except InvalidInput as exc:
        if exc.status != 404:
            raise
        raise InvalidInput(exc.code, exc.message) from None  # a bad parameter here: 400
    filters = Filters()
    if term is not None:
        kind, slug = term
        filters = Filters(modalities=(slug,)) if kind == "modality" else Filters(condition=slug)
    limit = float(config["REFERRAL_SEARCH_TIMEOUT_MS"])
    return Near(
        lat=point.lat,
        lon=point.lon,
        radius_km=(proximity / 1000) if proximity else float(config["REFERRAL_DEFAULT_RADIUS_KM"]),
        cap=int(config["REFERRAL_MAX_TOTAL"]),
        time_limit_ms=limit or None,
        filters=filters,
    )
