"""Theme: the CSS custom properties a host may set from config, checked and rendered.

``REFERRAL_THEME = {"accent": "#6b2d5c", "radius": "4px"}`` becomes a small ``:root`` style
block after the plugin's stylesheet, which the Content-Security-Policy allows by its hash.
Values are validated against a strict pattern per kind, so config can never inject CSS; a
host's own stylesheet can override the same properties.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from markupsafe import Markup

log = logging.getLogger(__name__)

_HEX = r"#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})"
_LENGTH = r"(?:0|\d{1,3}(?:\.\d{1,3})?(?:px|rem|em|%))"
_FONT = r"[A-Za-z0-9 ,\"'_-]{1,200}"

#: property name (after ``--referral-``) -> (default, pattern the value must match)
#: the defaults are exactly the ``:root`` block of ``referral.css`` (a test checks)
PROPERTIES: dict[str, tuple[str, str]] = {
    "accent": ("#0b5c6b", _HEX),
    "accent-text": ("#ffffff", _HEX),
    "text": ("#1b1f23", _HEX),
    "muted": ("#4a5560", _HEX),
    "surface": ("#ffffff", _HEX),
    "page": ("#f5f7f8", _HEX),
    "border": ("#c9d1d9", _HEX),
    "error": ("#a4161a", _HEX),
    "error-surface": ("#fdecea", _HEX),
    "badge": ("#0f5132", _HEX),
    "badge-surface": ("#e3f1ec", _HEX),
    "focus": ("#1b1f23", _HEX),
    "radius": ("8px", _LENGTH),
    "font": ('system-ui, -apple-system, "Segoe UI", Roboto, sans-serif', _FONT),
}

#: (foreground, background) pairs people read; WCAG AA asks 4.5:1 for normal text
TEXT_PAIRS: list[tuple[str, str]] = [
    ("text", "surface"),
    ("text", "page"),
    ("muted", "surface"),
    ("muted", "page"),
    ("accent", "surface"),
    ("accent", "page"),
    ("accent-text", "accent"),
    ("error", "error-surface"),
    ("badge", "badge-surface"),
    ("focus", "surface"),
    ("focus", "page"),
]
AA_NORMAL_TEXT = 4.5


def validate(theme: Mapping[str, str] | None) -> dict[str, str]:
    """The theme with each key and value checked; raises ``ValueError`` naming the culprit."""
    checked: dict[str, str] = {}
    for key, value in (theme or {}).items():
        if key not in PROPERTIES:
            known = ", ".join(PROPERTIES)
            raise ValueError(f"REFERRAL_THEME: unknown property {key!r}; known: {known}.")
        pattern = PROPERTIES[key][1]
        if not isinstance(value, str) or not re.fullmatch(pattern, value.strip()):
            raise ValueError(f"REFERRAL_THEME[{key!r}]: {value!r} is not an allowed value.")
        checked[key] = value.strip()
    return checked


def resolved(theme: Mapping[str, str]) -> dict[str, str]:
    """Every property: the defaults with the host's values over them."""
    return {key: theme.get(key, default) for key, (default, _) in PROPERTIES.items()}


def relative_luminance(colour: str) -> float:
    """WCAG 2 relative luminance of a ``#rgb`` or ``#rrggbb`` colour."""
    hexa = colour.lstrip("#")
    if len(hexa) == 3:
        hexa = "".join(c * 2 for c in hexa)
    channels = [int(hexa[i : i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast_ratio(first: str, second: str) -> float:
    high, low = sorted((relative_luminance(first), relative_luminance(second)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def weak_pairs(theme: Mapping[str, str]) -> list[tuple[str, str, float]]:
    """Text pairs of the resolved theme under WCAG AA (4.5:1)."""
    colours = resolved(theme)
    weak = []
    for fg, bg in TEXT_PAIRS:
        ratio = contrast_ratio(colours[fg], colours[bg])
        if ratio < AA_NORMAL_TEXT:
            weak.append((fg, bg, round(ratio, 2)))
    return weak


def check(theme: Mapping[str, str] | None) -> dict[str, str]:
    """Validate at start-up and warn (not fail) about text a visitor may struggle to read."""
    checked = validate(theme)
    for fg, bg, ratio in weak_pairs(checked):
        log.warning(
            "REFERRAL_THEME: %s on %s has contrast %.2f:1, under WCAG AA 4.5:1.", fg, bg, ratio
        )
    return checked


def style_css(theme: Mapping[str, str]) -> str:
    """``:root{...}`` for the host's values, or ``""`` without any.

    The Content-Security-Policy allows this exact text by its hash (``referral.headers``),
    so :func:`style_block` must put it in the page unchanged.
    """
    if not theme:
        return ""
    body = ";".join(f"--referral-{key}:{value}" for key, value in theme.items())
    # values matched strict patterns in validate(): no '<', ';', '{' or '}' can get here
    return f":root{{{body}}}"


def style_block(theme: Mapping[str, str]) -> Markup:
    """``<style>:root{...}</style>`` for the host's values, or nothing without any."""
    css = style_css(theme)
    return Markup(f"<style>{css}</style>") if css else Markup("")
