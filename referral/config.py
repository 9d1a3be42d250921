"""Every ``REFERRAL_*`` setting, its default and what it means: the one place.

The README's configuration table is checked against :data:`SETTINGS` by a test, and
:func:`apply_defaults` refuses a ``REFERRAL_`` key that is not listed here, so a misspelt
key fails at start-up instead of being silently ignored.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from referral import consent

PREFIX = "REFERRAL_"


@dataclass(frozen=True)
class Setting:
    default: Any
    doc: str


DEFAULT_MODALITIES: list[tuple[str, str]] = [
    ("remedial-massage", "Remedial massage"),
    ("myotherapy", "Myotherapy"),
    ("physiotherapy", "Physiotherapy"),
    ("osteopathy", "Osteopathy"),
    ("chiropractic", "Chiropractic"),
    ("yoga", "Yoga"),
    ("pilates", "Clinical pilates"),
    ("exercise-physiology", "Exercise physiology"),
]

DEFAULT_CONDITIONS: list[tuple[str, str]] = [
    ("low-back-pain", "Low back pain"),
    ("sciatica", "Sciatica"),
    ("neck-pain", "Neck pain"),
    ("headache", "Tension headache"),
    ("shoulder-pain", "Shoulder pain"),
    ("sports-injury", "Sports injury"),
    ("pregnancy", "Pregnancy care"),
    ("arthritis", "Arthritis"),
    ("posture", "Posture"),
    ("stress", "Stress and tension"),
]

DEFAULT_FUNDS: list[tuple[str, str]] = [
    ("bupa", "Bupa"),
    ("medibank", "Medibank"),
    ("hcf", "HCF"),
    ("nib", "nib"),
    ("ahm", "ahm"),
    ("hbf", "HBF"),
    ("gmhba", "GMHBA"),
    ("teachers-health", "Teachers Health"),
]

SETTINGS: dict[str, Setting] = {
    "DATABASE_URL": Setting(
        None,
        "SQLAlchemy URL of the plugin's database. Default: a SQLite file "
        "`referral.sqlite` in the app's instance folder. PostgreSQL with PostGIS: "
        "`postgresql+psycopg://user@host/db`.",
    ),
    "ENGINE_OPTIONS": Setting({}, "Extra keyword arguments for `sqlalchemy.create_engine`."),
    "URL_PREFIX": Setting("/find-a-therapist", "Where the blueprint is mounted."),
    "PUBLIC_URL": Setting(
        None,
        "The site's public address (`https://clinic.example`, with a path if the host app "
        "is mounted under one): the only source of absolute URLs in emails, webhooks, the "
        "API's links, the OpenAPI `servers` entry and the embed snippet, never the request's "
        "`Host` header. Required outside debug and testing: the plugin refuses to start "
        "without it.",
    ),
    "BASE_TEMPLATE": Setting(
        "referral/base.html",
        "Template every plugin page extends; point it at the host's layout, which must "
        "have a `content` block.",
    ),
    "SITE_NAME": Setting("Find a therapist", "Name shown in page titles and emails."),
    "EMERGENCY_NOTICE": Setting(
        "In an emergency call 000. For health advice call healthdirect on 1800 022 222.",
        "Safety notice (plain text) on the search, listing and confirmation pages and in the "
        "acknowledgement email; write your country's numbers. Empty: not shown.",
    ),
    "DISTANCE_UNIT": Setting("km", "`km` or `mi`: how distances are shown to people."),
    "DEFAULT_COUNTRY": Setting("AU", "ISO country code assumed for a postcode without one."),
    "DEFAULT_RADIUS_KM": Setting(25.0, "Search radius when the visitor gives none."),
    "MAX_RADIUS_KM": Setting(500.0, "Largest radius a visitor may ask for."),
    "PER_PAGE": Setting(20, "Results per page by default."),
    "MAX_PER_PAGE": Setting(100, "Largest `per_page` a visitor may ask for."),
    "NEAREST_FALLBACK": Setting(
        5, "How many of the nearest practitioners beyond the radius to offer when none is in it."
    ),
    "MAX_TOTAL": Setting(
        500,
        "The search page and the API count matches exactly up to this many; beyond it they "
        'say `total` is this with `total_capped: true` ("500+ practitioners").',
    ),
    "SEARCH_TIMEOUT_MS": Setting(
        2000,
        "Time limit of one search in milliseconds (PostgreSQL `statement_timeout`, SQLite a "
        "progress handler); past it the visitor gets a 503 asking them to try again. "
        "`0`: no limit.",
    ),
    "MODALITIES": Setting(
        DEFAULT_MODALITIES,
        "Modality taxonomy as `(slug, name)` pairs; synced into the database by "
        "`flask referral upgrade`.",
    ),
    "CONDITIONS": Setting(DEFAULT_CONDITIONS, "Condition taxonomy as `(slug, name)` pairs."),
    "FUNDS": Setting(DEFAULT_FUNDS, "Health funds / insurers as `(slug, name)` pairs."),
    "GEOCODER": Setting(
        "nominatim",
        "Remote geocoder for places not in the postcode table: a geopy service name "
        "(`nominatim`, `photon`, ...), a dotted class path or a geopy class. `None` turns "
        "remote look-ups off (offline sites: postcodes and suburbs only).",
    ),
    "GEOCODER_USER_AGENT": Setting(
        "referral-therapist-directory/0.1 (set REFERRAL_GEOCODER_USER_AGENT)",
        "User agent sent to the geocoder; Nominatim's policy asks for one naming your site "
        "and a contact. Outside debug and testing the plugin refuses to start with this "
        "placeholder while `REFERRAL_GEOCODER` is on.",
    ),
    "GEOCODER_DOMAIN": Setting(
        None, "Geocoder host (and port), e.g. your own Nominatim; `None`: the provider's."
    ),
    "GEOCODER_SCHEME": Setting("https", "`https` or `http` for the geocoder."),
    "GEOCODER_TIMEOUT": Setting(
        3.0, "Seconds to wait for the geocoder before telling the person to try a postcode."
    ),
    "GEOCODER_MIN_DELAY": Setting(
        1.0,
        "Seconds between two geocoder requests from the whole site (rounded up to whole "
        "seconds; Nominatim allows 1 request/s), counted in `REFERRAL_RATELIMIT_STORAGE_URL`: "
        "with Redis it holds across every worker and machine. A request waits up to "
        "`REFERRAL_GEOCODER_TIMEOUT` for its turn, then the person is asked for a postcode. "
        "`0` turns the spacing off (your own geocoder).",
    ),
    "GEOCODER_CLIENT_RATE_LIMIT": Setting(
        "10 per minute",
        "Searches one client address may make that reach the remote geocoder (Flask-Limiter "
        "syntax; postcode and suburb searches never count). `None` turns it off.",
    ),
    "GEOCODER_OPTIONS": Setting(
        {}, "Extra keyword arguments for the geocoder class, e.g. `{'api_key': ...}`."
    ),
    "GEOCODE_CACHE_DAYS": Setting(90, "Days a place found by the geocoder stays cached."),
    "GEOCODE_NOT_FOUND_DAYS": Setting(
        1, "Days a place the geocoder did not find is remembered as not found."
    ),
    "GEOCODE_CACHE_MAX_ROWS": Setting(
        10000,
        "Most rows the geocode cache keeps; the oldest go first. `flask referral purge` also "
        "removes rows past their days.",
    ),
    "HOME_REGION": Setting(
        None,
        "The site's own state or region as the postcode data writes it (`NSW`, `VIC`, ...): "
        "a place name found in several (Newtown, Perth) means the one there first.",
    ),
    "AUTOCOMPLETE_LIMIT": Setting(10, "Most suggestions the place autocomplete returns."),
    "CORS_ORIGINS": Setting(
        [],
        "Origins allowed to call the JSON API from a browser, matched exactly "
        "(`https://clinic.example`); `*` allows any.",
    ),
    "PRACTITIONER_FOR_USER": Setting(
        None,
        "For hosts with their own accounts: a function `(user) -> Practitioner | None` "
        "naming the listing a signed-in host user manages. Default: the practitioner whose "
        "`user_id` is the user's `get_id()`.",
    ),
    "EMBED_ORIGINS": Setting(
        [],
        "Origins (`https://clinic.example`) whose pages may show the plugin in an iframe "
        "(`{prefix}/embed/`, `embed.js`); sent as CSP `frame-ancestors`. Empty: the plugin's "
        "own origin only. A list, or one string separated by spaces or commas.",
    ),
    "EMBED_ORIGINS_REFRESH": Setting(
        30,
        "Seconds each process keeps the websites an admin allowed to embed the finder "
        '(admin page "Websites that embed the finder") before reading them again: a change '
        "applies at once in the process that made it, elsewhere within this time. `0`: read "
        "them on every embed page.",
    ),
    "EMBED_FORM_MAX_AGE": Setting(
        3600,
        "Seconds a referral form shown in an embed iframe stays valid: there it is checked "
        "by a signed form token instead of the session cookie the browser withholds.",
    ),
    "THEME": Setting(
        {},
        "CSS custom properties set from config, e.g. `{'accent': '#6b2d5c', 'radius': '4px'}`; "
        "keys and patterns in `referral/theme.py` (colours as `#rrggbb`). Checked at start-up.",
    ),
    "MAP_TILE_URL": Setting(
        "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "Leaflet tile URL template of the results map (`{z}`, `{x}`, `{y}`; `{s}` allowed).",
    ),
    "MAP_ATTRIBUTION": Setting(
        '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> contributors',
        "Attribution (HTML) the map shows for its tiles; the tile provider's terms require it.",
    ),
    "TIMEZONE": Setting(
        "Australia/Sydney",
        "Time zone (an IANA name) every time is shown in, on pages and in emails; times are "
        "stored in UTC.",
    ),
    "PHONE_REGION": Setting(
        "AU", "Region (ISO code) for phone numbers written without a `+` country code."
    ),
    "MESSAGE_MAX_LENGTH": Setting(2000, "Most characters a referral message may have."),
    "CONSENT_VERSION": Setting(
        consent.CURRENT,
        "Version of the consent wording; stored with each referral. Change it whenever "
        "`REFERRAL_CONSENT_TEXT` changes (the plugin's own wordings, old ones included, are "
        "in `referral/consent.py`).",
    ),
    "CONSENT_TEXT": Setting(
        consent.TEXTS[consent.CURRENT],
        "Consent wording beside the referral form's consent checkbox. A wording of your own "
        "must cover passing the details on: practitioners refer patients on under it.",
    ),
    "CANCEL_LINK_MAX_AGE_DAYS": Setting(
        90, "How long the cancel link in a patient's acknowledgement email stays valid."
    ),
    "STATUS_LINK_MAX_AGE_DAYS": Setting(
        180,
        "How long the link to a request's status page (in the patient's emails) and the "
        "one-step re-send links offered there stay valid.",
    ),
    "REMIND_AFTER_HOURS": Setting(
        48,
        "Hours a referral may stay unopened before `flask referral sweep` reminds the "
        "practitioner (once, by email, without health details).",
    ),
    "EXPIRE_AFTER_DAYS": Setting(
        5,
        "Days a referral may stay unanswered before `flask referral sweep` expires it and "
        "offers the patient the three nearest practitioners accepting new patients.",
    ),
    "MAIL_FROM": Setting(
        None,
        "Sender of every email (`Name <addr>` allowed). Default: the site's name at "
        "`referrals@` the host of `REFERRAL_PUBLIC_URL` (`Find a therapist "
        "<referrals@clinic.example>`); use an address your mail relay may send from.",
    ),
    "SMTP_HOST": Setting("127.0.0.1", "SMTP server that delivers the outbox."),
    "SMTP_PORT": Setting(25, "SMTP port (587 with STARTTLS, 465 with SSL)."),
    "SMTP_USE_TLS": Setting(False, "Upgrade the SMTP connection with STARTTLS."),
    "SMTP_USE_SSL": Setting(False, "Connect with implicit TLS (SMTPS, usually port 465)."),
    "SMTP_USERNAME": Setting(None, "SMTP login name; no login when unset."),
    "SMTP_PASSWORD": Setting(None, "SMTP password."),
    "SMTP_TIMEOUT": Setting(
        5.0,
        "Seconds to wait for the SMTP server before the message waits for a retry (off the "
        "request: no page ever waits for mail).",
    ),
    "BACKGROUND_SENDER": Setting(
        True,
        "Deliver the outbox from a thread of each web process, woken when a request commits "
        "messages, for the demo and single-process hosts. Turn off when a "
        "`flask referral send-outbox --loop` worker does all sending (production).",
    ),
    "BACKGROUND_SENDER_INTERVAL": Setting(
        30.0, "Seconds between the background sender's passes when nothing wakes it."
    ),
    "OUTBOX_MAX_ATTEMPTS": Setting(
        8, "Attempts before an outbox message is given up (it stays, with its last error)."
    ),
    "OUTBOX_BACKOFF_SECONDS": Setting(
        60.0, "Wait before the first retry; doubled for each further attempt (at most a day)."
    ),
    "OUTBOX_BATCH_SIZE": Setting(100, "Messages one `send-outbox` pass claims at most."),
    "OUTBOX_RETENTION_DAYS": Setting(
        30,
        "Days a delivered or failed outbox message (its text holds reset and confirmation "
        "links) is kept; `flask referral purge` removes older ones.",
    ),
    "WEBHOOK_URL": Setting(
        None,
        "When set, referral events are POSTed here as JSON (ids and status only, no health "
        "details) through the outbox, with retries.",
    ),
    "WEBHOOK_SECRET": Setting(
        None,
        "Key for the webhook's `X-Referral-Signature: sha256=<HMAC-SHA256 of the body>` "
        "header; unsigned when unset.",
    ),
    "WEBHOOK_TIMEOUT": Setting(10.0, "Seconds to wait for the webhook endpoint."),
    "SECURE_COOKIES": Setting(
        True,
        "Mark the session and remember-me cookies `Secure` (sent over HTTPS only). The plugin "
        "also makes them `SameSite=Lax` and `HttpOnly` unless the host chose otherwise. Set "
        "`False` only for local development over plain HTTP.",
    ),
    "HSTS_SECONDS": Setting(
        365 * 24 * 3600,
        "`Strict-Transport-Security: max-age` the plugin's pages send when served over HTTPS "
        "(`request.is_secure`: behind a proxy, wrap the app in Werkzeug's `ProxyFix`). No "
        "`includeSubDomains`: that is the host's call. `0`: not sent.",
    ),
    "CSP_EXTRA": Setting(
        {},
        "Sources added to the plugin's Content-Security-Policy, as `{directive: sources}`, "
        "e.g. `{'font-src': 'https://fonts.gstatic.com'}` for what a host layout loads from "
        "elsewhere. A new `*-src` directive starts from `'self'`; `frame-ancestors` comes from "
        "`REFERRAL_EMBED_ORIGINS`.",
    ),
    "RATELIMIT_STORAGE_URL": Setting(
        "memory://",
        "Flask-Limiter storage for the sign-in, email, referral and recipient rate limits. "
        "`memory://` counts in each process; when several workers serve the site use Redis "
        "(`redis://host:6379/0`, `pip install 'referral[redis]'`): the plugin logs a warning "
        "at start-up when it sees several workers counting in memory.",
    ),
    "RATELIMIT_KEY_PREFIX": Setting(
        "referral",
        "Prefix of the plugin's keys in that storage; give each site its own when several "
        "share one Redis.",
    ),
    "SIGNIN_RATE_LIMIT": Setting(
        "5 per minute", "Sign-in attempts allowed per client address (Flask-Limiter syntax)."
    ),
    "EMAIL_RATE_LIMIT": Setting(
        "10 per hour",
        "Sign-ups and password-reset requests allowed per client address; each sends an email.",
    ),
    "RECIPIENT_DAILY_LIMIT": Setting(
        "5 per day",
        "Emails anyone can make the site send to an address they type (a patient's "
        "acknowledgement; account emails: confirm, reset, already registered) one address may "
        "receive (Flask-Limiter syntax), counted across workers in "
        "`REFERRAL_RATELIMIT_STORAGE_URL` under a keyed hash of the address. Past it the email is "
        "not queued; the visitor's answer is the same and a referral still reaches the "
        "practitioner. `None` turns it off.",
    ),
    "REFERRAL_RATE_LIMIT": Setting(
        "10 per hour",
        "Referral requests one client address may send (Flask-Limiter syntax); forms sent "
        "back for corrections do not count.",
    ),
    "REPORT_RATE_LIMIT": Setting(
        "5 per hour",
        '"Report wrong details" submissions one client address may send (Flask-Limiter '
        "syntax); forms sent back for corrections do not count.",
    ),
    "NOTIFY_ADMINS_AT_ONCE": Setting(
        False,
        "Email every admin as soon as a listing is submitted for checking or a visitor "
        "reports wrong details, besides the daily digest (`flask referral digest`).",
    ),
    "RECONFIRM_AFTER_DAYS": Setting(
        180,
        "Days after a listing's details were last confirmed (approval, an admin's or the "
        "practitioner's re-confirmation) before `flask referral digest` asks the practitioner "
        "to confirm them again by a one-click link; listings past it are shown as not "
        "recently confirmed. `None` turns the requests off.",
    ),
    "RECONFIRM_LINK_MAX_AGE": Setting(
        30 * 24 * 3600, "Seconds a re-confirmation link stays valid."
    ),
    "PASSWORD_MIN_LENGTH": Setting(10, "Shortest password accepted for an account."),
    "VERIFY_EMAIL_MAX_AGE": Setting(
        3 * 24 * 3600, "Seconds an email-confirmation link stays valid."
    ),
    "PASSWORD_RESET_MAX_AGE": Setting(3600, "Seconds a password-reset link stays valid."),
    "REMEMBER_DAYS": Setting(
        30,
        'Days "Keep me signed in" lasts (Flask-Login\'s `REMEMBER_COOKIE_DURATION`, unless '
        "the host set that). Signing out, a password change or reset ends it at once.",
    ),
}


def config_key(name: str) -> str:
    """The full config key for a setting name, refusing names that are not settings."""
    if name not in SETTINGS:
        raise KeyError(f"{PREFIX}{name} is not a referral setting")
    return PREFIX + name


def apply_defaults(config: dict[str, Any]) -> None:
    """Fill missing ``REFERRAL_*`` keys and reject unknown ones (a likely typo)."""
    known = {PREFIX + name for name in SETTINGS}
    for key in config:
        if key.startswith(PREFIX) and key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f" Did you mean {close[0]}?" if close else ""
            raise ValueError(f"Unknown setting {key}.{hint}")
    for name, setting in SETTINGS.items():
        default = setting.default
        if isinstance(default, dict | list):
            default = type(default)(default)
        config.setdefault(PREFIX + name, default)


def markdown_table() -> str:
    """The README's configuration table: ``python -m referral.config`` prints it."""
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for name, setting in SETTINGS.items():
        default = setting.default
        shown = (
            "built-in list (see `referral/config.py`)"
            if isinstance(default, list) and default
            else (f"`{default!r}`")
        )
        lines.append(f"| `{PREFIX}{name}` | {shown} | {setting.doc} |")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown_table())
