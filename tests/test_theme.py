from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from referral import theme

CSS = Path(__file__).resolve().parent.parent / "referral" / "static" / "referral" / "referral.css"


def _css_defaults() -> dict[str, str]:
    root = re.search(r":root\s*\{(.*?)\}", CSS.read_text(encoding="utf-8"), re.S).group(1)
    return dict(re.findall(r"--referral-([a-z-]+):\s*([^;]+);", root))


def test_stylesheet_defaults_are_the_theme_defaults():
    assert _css_defaults() == {key: default for key, (default, _) in theme.PROPERTIES.items()}


def test_contrast_ratio_matches_wcag_reference_values():
    assert theme.contrast_ratio("#000000", "#ffffff") == pytest.approx(21.0)
    assert theme.contrast_ratio("#fff", "#fff") == pytest.approx(1.0)
    assert theme.contrast_ratio("#777777", "#ffffff") == pytest.approx(4.48, abs=0.01)


@pytest.mark.parametrize("pair", theme.TEXT_PAIRS, ids=lambda p: f"{p[0]}-on-{p[1]}")
def test_default_theme_meets_wcag_aa_for_text(pair):
    colours = _css_defaults()
    assert theme.contrast_ratio(colours[pair[0]], colours[pair[1]]) >= 4.5
    assert theme.weak_pairs({}) == []


@pytest.mark.parametrize(
    ("theme_config", "message"),
    [
        ({"acent": "#000000"}, "unknown property 'acent'"),
        ({"accent": "red;} body {display:none"}, "not an allowed value"),
        ({"accent": "#fff</style><script>alert(1)</script>"}, "not an allowed value"),
        ({"font": "x; background:url(//evil.example/t.png)"}, "not an allowed value"),
        ({"radius": "calc(1px + expression(alert(1)))"}, "not an allowed value"),
        ({"accent": 12}, "not an allowed value"),
    ],
)
def test_theme_config_cannot_inject_css(make_app, theme_config, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        make_app(REFERRAL_THEME=theme_config)


def test_configured_theme_is_rendered_on_every_page(make_app):
    app = make_app(REFERRAL_THEME={"accent": "#6B2D5C", "radius": "0", "font": "Georgia, serif"})
    client = app.test_client()
    for url in ("/find-a-therapist/", "/find-a-therapist/embed/"):
        html = client.get(url).get_data(as_text=True)
        assert (
            "<style>:root{--referral-accent:#6B2D5C;--referral-radius:0;"
            "--referral-font:Georgia, serif}</style>" in html
        )


def test_no_style_block_without_a_configured_theme(client):
    assert "<style>:root{" not in client.get("/find-a-therapist/").get_data(as_text=True)


def test_weak_contrast_is_logged_not_refused(make_app, caplog):
    with caplog.at_level(logging.WARNING, logger="referral.theme"):
        make_app(REFERRAL_THEME={"accent": "#9ad0dc"})
    assert "accent on surface has contrast" in caplog.text
    assert "under WCAG AA 4.5:1" in caplog.text
