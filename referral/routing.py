"""The one URL converter for row ids: ``<rowid:practitioner_id>``.

Every route that takes a numeric id uses it, so an id no row can have (``/practitioners/
9223372036854775808``) does not match the route and answers 404, the same as an id that
is merely missing, instead of reaching the database and failing there (SQLite overflows
above 2**63 - 1; PostgreSQL's ``integer`` refuses anything above 2**31 - 1).

The bound is in the converter's pattern, not only in ``to_python``: Werkzeug gives up on
the whole URL when a converter rejects a matched value, but a pattern that does not match
lets it try the next rule, so under ``/api`` such an id still reaches the API's catch-all
and is answered in JSON.
"""

from __future__ import annotations

from flask import Flask
from werkzeug.routing import IntegerConverter

#: the largest id any table can hold: the id columns are ``Integer``, 32-bit on PostgreSQL
MAX_ID = 2**31 - 1


def digits_up_to(limit: int) -> str:
    """A regular expression matching exactly the decimal numbers ``1..limit`` (``limit`` at
    least 1), written without leading zeros or signs.

    A number shorter than ``limit`` matches when it does not start with 0; one as long
    matches when it equals ``limit`` or agrees with it up to a digit where it is smaller
    (any digits may follow that one).
    """
    text = str(limit)
    length = len(text)
    options = [rf"[1-9]\d{{0,{length - 2}}}"] if length > 1 else []
    for position, digit in enumerate(text):
        lowest = 1 if position == 0 else 0
        if int(digit) > lowest:
            rest = length - position - 1
            options.append(rf"{text[:position]}[{lowest}-{int(digit) - 1}]\d{{{rest}}}")
    options.append(text)
    return "(?:" + "|".join(options) + ")"


class IdConverter(IntegerConverter):
    """A number from 1 to :data:`MAX_ID`; anything else does not match the route."""

    name = "rowid"
    regex = digits_up_to(MAX_ID)


def install(app: Flask) -> None:
    """Add the converter to ``app.url_map`` (before any plugin route is added).

    A host's own converter of the same name is never replaced: that is an error at start-up.
    """
    current = app.url_map.converters.get(IdConverter.name)
    if current is not None and current is not IdConverter:
        raise RuntimeError(
            f"The app already has a URL converter named {IdConverter.name!r}; "
            "the referral plugin needs that name for its id routes."
        )
    app.url_map.converters[IdConverter.name] = IdConverter
