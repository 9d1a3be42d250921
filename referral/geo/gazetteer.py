"""The local gazetteer: what a typed postcode or place name means, decided offline.

Built in memory, once per process and country, from the rows of ``referral_postcode``
(one row per locality and postcode, as GeoNames ships them), and rebuilt when those rows
change. Resolution, autocomplete and "Did you mean ..." all read it, so SQLite and
PostgreSQL give the same answers and typing never waits for a remote service.

The rules a person would agree with (the README says them too):

* **PO boxes and large-volume receivers.** GeoNames does not mark them. A postcode is one
  (``kind == "pobox"``) when it lies in one of Australia Post's ranges for them (0200-0299,
  0900-0999, 1000-1999, 5800-5999, 6800-6999, 7800-7999, 8000-8999, 9000-9999), or a place
  name says so (PO, LPO, GPO, DC, MC, MSC, BC, Delivery/Mail/Business Centre). A name never
  resolves to such a point while a delivery area of that name exists.
* **One place, many postcodes.** Rows of one name and state within :data:`SAME_PLACE_KM`
  are one place ("Sydney" under 1001-1299, 2000 and 2001); its postcode is the delivery
  postcode with the better point and the most localities GeoNames places on their own
  point, then the lowest (2000 for Sydney, 7000 for Hobart, 2150 for Parramatta).
* **Most likely.** Among places of one name: the site's home region
  (``REFERRAL_HOME_REGION``) first, then delivery areas, then points GeoNames did not mark
  as estimated (accuracy 3 or better), then the larger place — first by how many postcodes
  are filed under it (a city has its PO boxes), then by how many delivery postcodes lie
  around it (3x3 cells of :data:`CELL_DEGREES`), stand-ins for population that the data
  itself carries — then the lower postcode. Autocomplete ranks by the same order, after
  delivery areas and names that start with what was typed.
* **A postcode's label** is its principal locality: the non-PO locality whose name the most
  postcodes of its state carry ("Sydney" for 2000), then the one the others' names contain
  ("Hobart" in "North Hobart"), then the one nearest its centre.
"""

from __future__ import annotations

import bisect
import difflib
import math
import re
import threading
import time
import unicodedata
import weakref
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from referral.models import Postcode

#: shapes of postcodes by country; a string of that shape missing from a loaded country's
#: list is "not found" at once (no remote call)
POSTCODE_SHAPES = {
    "AU": re.compile(r"\d{4}"),
    "NZ": re.compile(r"\d{4}"),
    "AT": re.compile(r"\d{4}"),
    "BE": re.compile(r"\d{4}"),
    "CH": re.compile(r"\d{4}"),
    "DK": re.compile(r"\d{4}"),
    "NO": re.compile(r"\d{4}"),
    "ZA": re.compile(r"\d{4}"),
    "DE": re.compile(r"\d{5}"),
    "FR": re.compile(r"\d{5}"),
    "ES": re.compile(r"\d{5}"),
    "IT": re.compile(r"\d{5}"),
    "US": re.compile(r"\d{5}(-\d{4})?"),
}
#: Australia Post's PO box and large-volume-receiver ranges (Australia Post, "Postcode
#: guide": the second digit pattern of each state's reserved blocks)
AU_POBOX_RANGES = (
    (200, 299),
    (900, 999),
    (1000, 1999),
    (5800, 5999),
    (6800, 6999),
    (7800, 7999),
    (8000, 8999),
    (9000, 9999),
)
POBOX_WORDS = re.compile(
    r"\b(po|lpo|gpo|dc|mc|msc|bc|delivery centre|mail centre|business centre|post office|"
    r"private boxes|po boxes)\b",
    re.IGNORECASE,
)
_SHOUTED = {"po", "lpo", "gpo", "dc", "mc", "msc", "bc"}
AU_STATES = {
    "nsw": "NSW",
    "new south wales": "NSW",
    "vic": "VIC",
    "victoria": "VIC",
    "qld": "QLD",
    "queensland": "QLD",
    "sa": "SA",
    "south australia": "SA",
    "wa": "WA",
    "western australia": "WA",
    "tas": "TAS",
    "tasmania": "TAS",
    "nt": "NT",
    "northern territory": "NT",
    "act": "ACT",
    "australian capital territory": "ACT",
}
#: words written two ways in place names; both spellings meet at the second
_WORD_FORMS = {"mt": "mount", "st": "saint", "pt": "point", "ft": "fort"}
#: names people use that are not one locality in GeoNames: where they mean
ALIASES = {
    ("AU", "gold coast"): ("surfers paradise", "QLD"),
    ("AU", "sunshine coast"): ("maroochydore", "QLD"),
    ("AU", "central coast"): ("gosford", "NSW"),
}
SAME_PLACE_KM = 5.0
CELL_DEGREES = 0.1
#: seconds between checks that the table has not changed under this process
RECHECK_SECONDS = 5.0


def name_key(text: str) -> str:
    """How names are compared: case, accents, punctuation and "St"/"Saint", "Mt"/"Mount"
    spellings do not matter. ``"St. Kilda"`` and ``"saint  kilda"`` give ``"saint kilda"``."""
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    text = text.replace("'", "").replace("\u2019", "").replace("&", " and ")
    words = re.sub(r"[^0-9a-z]+", " ", text).split()
    return " ".join(_WORD_FORMS.get(w, w) for w in words)


def display_name(place: str) -> str:
    """GeoNames writes "Bathurst Street Po"; a local writes "Bathurst Street PO"."""
    return " ".join(w.upper() if w.lower() in _SHOUTED else w for w in place.split())


def postcode_kind(country: str, postcode: str, place: str) -> str:
    """``"pobox"`` for a PO box or large-volume-receiver postcode, else ``"delivery"``."""
    if POBOX_WORDS.search(place):
        return "pobox"
    if country == "AU" and postcode.isdigit():
        number = int(postcode)
        if any(low <= number <= high for low, high in AU_POBOX_RANGES):
            return "pobox"
    return "delivery"


def has_letter_or_digit(text: str) -> bool:
    return any(ch.isalnum() for ch in text)


@dataclass(frozen=True)
class Place:
    """One locality at one postcode, as a person would write it."""

    name: str
    state: str
    postcode: str
    lat: float
    lon: float
    kind: str = "delivery"
    accuracy: int | None = None

    @property
    def label(self) -> str:
        return " ".join(part for part in (self.name, self.state, self.postcode) if part)


@dataclass(frozen=True)
class Resolution:
    place: Place
    #: other places the text could mean, most likely first
    alternatives: tuple[Place, ...]
    source: str  # "postcode" or "suburb"


@dataclass
class _Entry:
    """A place of one name: its chosen postcode (``place``) and its ranking facts."""

    key: str
    place: Place
    weight: int
    localities: int
    #: postcodes filed under this place (Sydney: 151, most of them PO boxes)
    postcodes: int = 1


@dataclass
class _Parsed:
    name: str
    state: str | None = None
    postcode: str | None = None


@dataclass
class Gazetteer:
    country: str
    entries: list[_Entry] = field(default_factory=list)
    by_name: dict[str, list[_Entry]] = field(default_factory=dict)
    postcodes: dict[str, Place] = field(default_factory=dict)
    words: list[tuple[str, int]] = field(default_factory=list)
    names_by_initial: dict[str, list[str]] = field(default_factory=dict)
    state_names: dict[str, str] = field(default_factory=dict)

    # -- building -------------------------------------------------------------------------
    @classmethod
    def build(cls, country: str, rows: Iterable[tuple]) -> Gazetteer:
        """``rows``: ``(postcode, place, state, lat, lon, accuracy)`` of one country."""
        g = cls(country=country.upper())
        places = []
        seen = set()
        for postcode, name, state, lat, lon, accuracy in rows:
            if (postcode, name) in seen:
                continue
            seen.add((postcode, name))
            kind = postcode_kind(g.country, postcode, name)
            places.append(
                Place(display_name(name), state or "", postcode, lat, lon, kind, accuracy)
            )
        by_postcode: dict[str, list[Place]] = defaultdict(list)
        for p in places:
            by_postcode[p.postcode].append(p)
        # density: delivery postcodes in the 3x3 cells around a point
        cells: Counter = Counter()
        for members in by_postcode.values():
            if all(m.kind == "pobox" for m in members):
                continue
            lat = sum(m.lat for m in members) / len(members)
            lon = sum(m.lon for m in members) / len(members)
            cells[_cell(lat, lon)] += 1

        def weight(lat: float, lon: float) -> int:
            cy, cx = _cell(lat, lon)
            return sum(cells[(cy + dy, cx + dx)] for dy in (-1, 0, 1) for dx in (-1, 0, 1))

        names_in_state: Counter = Counter((name_key(p.name), p.state) for p in places)
        g._build_postcodes(by_postcode, names_in_state)
        g._build_entries(places, by_postcode, weight)
        return g

    def _build_postcodes(self, by_postcode: dict[str, list[Place]], names_in_state: Counter):
        for code, members in by_postcode.items():
            named = [m for m in members if not POBOX_WORDS.search(m.name)] or members
            good = [m for m in named if (m.accuracy or 4) >= 3] or named
            lat = sum(m.lat for m in good) / len(good)
            lon = sum(m.lon for m in good) / len(good)
            keys = [" " + name_key(m.name) + " " for m in named]
            # "Hobart" is in "North Hobart" and "West Hobart"
            within = {m.name: sum(f" {name_key(m.name)} " in k for k in keys) for m in named}
            principal = min(
                named,
                key=lambda m: (
                    -names_in_state[(name_key(m.name), m.state)],
                    -within[m.name],
                    (m.lat - lat) ** 2 + (m.lon - lon) ** 2,
                    m.name,
                ),
            )
            kind = "pobox" if all(m.kind == "pobox" for m in members) else "delivery"
            self.postcodes[code] = Place(
                principal.name, principal.state, code, lat, lon, kind, principal.accuracy
            )

    def _build_entries(self, places: list[Place], by_postcode, weight) -> None:
        groups: dict[tuple[str, str], list[Place]] = defaultdict(list)
        for p in places:
            groups[(name_key(p.name), p.state)].append(p)
        for (key, _state), members in groups.items():
            clusters: list[list[Place]] = []
            for p in sorted(members, key=lambda m: m.postcode):
                for cluster in clusters:
                    if _km(cluster[0], p) <= SAME_PLACE_KM:
                        cluster.append(p)
                        break
                else:
                    clusters.append([p])

            def real(code: str) -> int:  # localities GeoNames places by their own point
                return sum((m.accuracy or 4) >= 4 for m in by_postcode[code])

            for cluster in clusters:
                best = min(
                    cluster,
                    key=lambda m: (
                        m.kind != "delivery",
                        (m.accuracy or 4) < 3,
                        -real(m.postcode),
                        m.postcode,
                    ),
                )
                entry = _Entry(
                    key,
                    best,
                    weight(best.lat, best.lon),
                    real(best.postcode),
                    len({m.postcode for m in cluster}),
                )
                self.entries.append(entry)
                self.by_name.setdefault(key, []).append(entry)
        # autocomplete: every word of every name, sorted, pointing at its entry
        self.entries.sort(key=_static_rank)
        for index, entry in enumerate(self.entries):
            for word in set(entry.key.split()):
                self.words.append((word, index))
        self.words.sort()
        initials: dict[str, set[str]] = defaultdict(set)
        for key in self.by_name:
            initials[key[:1]].add(key)
        self.names_by_initial = {k: sorted(v) for k, v in initials.items()}

    # -- reading --------------------------------------------------------------------------
    def postcode_shaped(self, text: str) -> bool:
        shape = POSTCODE_SHAPES.get(self.country)
        return bool(shape and shape.fullmatch(text.strip()))

    def resolve(self, text: str, home_region: str | None = None) -> Resolution | None:
        """The place ``text`` means, with the others it could mean; ``None`` if none."""
        raw = " ".join(text.split())
        if self.postcode_shaped(raw) and raw.upper() in self.postcodes:
            return Resolution(self.postcodes[raw.upper()], (), "postcode")
        for parsed in self._readings(raw):
            found = self._by_name(parsed, home_region)
            if found:
                return found
        # "Sydeny 2000": the postcode still says where, unless the name is a place elsewhere
        # ("Barangaroo 2010" contradicts itself: not found, and "Did you mean" offers it)
        for parsed in self._readings(raw):
            if parsed.name in self.by_name or _alias(self.country, parsed.name):
                return None
        for parsed in self._readings(raw):
            if parsed.postcode and parsed.postcode in self.postcodes:
                return Resolution(self.postcodes[parsed.postcode], (), "postcode")
        return None

    def _readings(self, raw: str) -> list[_Parsed]:
        """Ways to read "surry hills, nsw 2010": the name with a trailing postcode and
        state taken off, and the whole text as a name ("Mount Victoria" is not VIC)."""
        key = name_key(raw)
        words = key.split()
        postcode = None
        if words and self.postcode_shaped(words[-1]):
            postcode, words = words[-1], words[:-1]
        readings = []
        states = AU_STATES if self.country == "AU" else {}
        for size in (3, 2, 1):
            tail = " ".join(words[-size:])
            if len(words) > size and tail in states:
                readings.append(_Parsed(" ".join(words[:-size]), states[tail], postcode))
                break
        readings.append(_Parsed(" ".join(words), None, postcode))
        if postcode is not None:
            readings.append(_Parsed(key, None, None))
        return [r for r in readings if r.name]

    def _by_name(self, parsed: _Parsed, home_region: str | None) -> Resolution | None:
        name, state = parsed.name, parsed.state
        alias = ALIASES.get((self.country, name))
        candidates = list(self.by_name.get(name, ()))
        if not candidates and alias:
            name, state = alias[0], state or alias[1]
            candidates = list(self.by_name.get(name, ()))
        if state:
            candidates = [e for e in candidates if e.place.state == state]
        if parsed.postcode:
            exact = [e for e in candidates if e.place.postcode == parsed.postcode]
            if exact:
                return Resolution(exact[0].place, (), "suburb")
            # "Sydney 2001": a postcode of that place that is not the one it is filed under
            if parsed.postcode in self.postcodes:
                at = self.postcodes[parsed.postcode]
                near = [e for e in candidates if _km(e.place, at) <= 1.0]
                if near:
                    return Resolution(near[0].place, (), "suburb")
            return None
        if not candidates:
            return None
        if any(e.place.kind == "delivery" for e in candidates):
            candidates = [e for e in candidates if e.place.kind == "delivery"]
        home = (home_region or "").upper()
        candidates.sort(key=lambda e: (e.place.state != home if home else False, _static_rank(e)))
        first, *others = candidates
        return Resolution(first.place, tuple(e.place for e in others), "suburb")

    def complete(self, prefix: str, limit: int = 10) -> list[Place]:
        """Places whose name has a word starting with ``prefix`` (or whose postcode starts
        with it): delivery areas first, then names starting with it, then larger places."""
        raw = " ".join(prefix.split())
        if not raw:
            return []
        if raw.isdigit():
            codes = sorted(c for c in self.postcodes if c.startswith(raw))[: limit * 4]
            found = [self.postcodes[c] for c in codes]
            found.sort(key=lambda p: (p.kind != "delivery", p.postcode))
            return found[:limit]
        readings = self._readings(raw)
        if not readings:
            return []
        parsed = readings[0]
        key = parsed.name
        first = key.split()[0]
        lo = bisect.bisect_left(self.words, (first,))
        hi = bisect.bisect_left(self.words, (first + "\x7f",))
        # entries are stored most likely first (delivery areas first): walk them in that
        # order and stop once ``limit`` names starting with the text are found
        hits = sorted({index for _, index in self.words[lo:hi]})
        wanted = " " + key
        groups: tuple[list[Place], ...] = ([], [], [], [])
        for index in hits:
            e = self.entries[index]
            if parsed.state and e.place.state != parsed.state:
                continue
            if parsed.postcode and not e.place.postcode.startswith(parsed.postcode):
                continue
            if (" " + e.key).find(wanted) < 0:
                continue
            group = 2 * (e.place.kind != "delivery") + (not e.key.startswith(key))
            if len(groups[group]) < limit:
                groups[group].append(e.place)
            if len(groups[0]) >= limit:
                break
        return [p for g in groups for p in g][:limit]

    def did_you_mean(self, text: str, limit: int = 3) -> list[Place]:
        """Places with names close to ``text`` (edit distance), most likely first; for a
        postcode, the nearest existing postcodes."""
        raw = " ".join(text.split())
        if self.postcode_shaped(raw):
            if not raw.isdigit():
                return []
            codes = sorted(
                (c for c in self.postcodes if c.isdigit() and self.postcodes[c].kind == "delivery"),
                key=lambda c: (abs(int(c) - int(raw)), c),
            )
            return [self.postcodes[c] for c in codes[:limit]]
        readings = self._readings(raw)
        if not readings:
            return []
        key = readings[0].name[:60]
        pool = self.names_by_initial.get(key[:1], [])
        close = [key] if key in self.by_name else []
        close += difflib.get_close_matches(key, pool, n=limit, cutoff=0.75)
        close = list(dict.fromkeys(close))[:limit]
        out: list[Place] = []
        for name in close:
            entries = sorted(self.by_name[name], key=_static_rank)
            out.append(entries[0].place)
        return out


def _alias(country: str, name: str) -> tuple[str, str] | None:
    return ALIASES.get((country, name))


def _static_rank(e: _Entry) -> tuple:
    return (
        e.place.kind != "delivery",
        (e.place.accuracy or 4) < 3,
        -e.postcodes,
        -e.weight,
        -e.localities,
        e.key,
        e.place.postcode,
    )


def _cell(lat: float, lon: float) -> tuple[int, int]:
    return (math.floor(lat / CELL_DEGREES), math.floor(lon / CELL_DEGREES))


def _km(a: Place, b: Place) -> float:
    """Equirectangular distance: exact enough for "the same place" at a few km."""
    x = math.radians(b.lon - a.lon) * math.cos(math.radians((a.lat + b.lat) / 2))
    y = math.radians(b.lat - a.lat)
    return 6371.0 * math.hypot(x, y)


# -- one gazetteer per engine and country, rebuilt when the table changes -----------------
_cache: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()
_generation = 0


def changed() -> None:
    """Tell this process that postcode rows changed (the loader calls it)."""
    global _generation
    _generation += 1


def for_country(session: Session, country: str) -> Gazetteer | None:
    """The gazetteer of ``country``, or ``None`` when no rows are loaded for it."""
    country = country.upper()
    engine = session.get_bind()
    with _lock:
        per_engine = _cache.setdefault(engine, {})
        held = per_engine.get(country)
    now = time.monotonic()
    if held is not None and held[1] == _generation and now - held[2] < RECHECK_SECONDS:
        return held[3]
    fingerprint = tuple(
        session.execute(
            select(func.count(Postcode.id), func.min(Postcode.id), func.max(Postcode.id)).where(
                Postcode.country == country
            )
        ).one()
    )
    if held is not None and held[0] == fingerprint:
        gazetteer = held[3]
    elif not fingerprint[0]:
        gazetteer = None
    else:
        rows = session.execute(
            select(
                Postcode.postcode,
                Postcode.place,
                Postcode.state,
                Postcode.lat,
                Postcode.lon,
                Postcode.accuracy,
            ).where(Postcode.country == country)
        ).all()
        gazetteer = Gazetteer.build(country, rows)
    with _lock:
        per_engine[country] = (fingerprint, _generation, now, gazetteer)
    return gazetteer
