"""Languages as ISO 639 codes: what a listing's language names mean, and what a search matches.

Practitioners write language names ("Greek", "Cantonese"); each is kept as its code in
``referral_practitioner_language`` (indexed by code), beside the names as written, which
the listing shows. A search's ``language`` is a code or a name; a macrolanguage matches
its members, so "Chinese" (``zh``) finds Mandarin (``cmn``) and Cantonese (``yue``)
speakers as well as those who wrote "Chinese". Names and matching come from ``langcodes``.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

import langcodes
from langcodes.data_dicts import MACROLANGUAGES


@cache
def code_for(text: str) -> str | None:
    """The ISO 639 code a language name or code means, or None when it names none."""
    text = text.strip()
    if not text or len(text) > 40:
        return None
    try:
        if len(text) <= 3 and text.isascii() and text.isalpha():
            language = langcodes.get(text.lower())
            if language.is_valid() and language.language_name() != "Unknown language":
                return language.language
        language = langcodes.find(text)
    except (LookupError, ValueError):
        return None
    return language.language if language.language else None


@cache
def matching_codes(code: str) -> tuple[str, ...]:
    """The codes a search for ``code`` matches: itself and, for a macrolanguage, its
    members (``zh``: ``cmn``, ``yue``, ...), sorted."""
    members = {member for member, macro in MACROLANGUAGES.items() if macro == code}
    return tuple(sorted({code} | members))


def codes_of(names: Iterable[str]) -> list[str]:
    """The distinct codes of a listing's language names; names that mean nothing are left
    out (the listing still shows them as written)."""
    codes = (code_for(str(name)) for name in names or ())
    return sorted({code for code in codes if code})


@cache
def display_name(code: str) -> str:
    """A code's English name ("yue" -> "Cantonese")."""
    return langcodes.get(code).display_name()
