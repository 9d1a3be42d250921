from __future__ import annotations

import re
from pathlib import Path

import pytest

import wsgi
from wsgi import create_app, write_demo_settings

STRONG_KEY = "0123456789abcdef" * 4


def test_demo_reads_flask_prefixed_environment(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path}/from-env.sqlite"
    monkeypatch.setenv("FLASK_REFERRAL_DATABASE_URL", url)
    monkeypatch.setenv("FLASK_REFERRAL_PER_PAGE", "7")
    monkeypatch.setenv("FLASK_SECRET_KEY", STRONG_KEY)
    monkeypatch.setenv("FLASK_REFERRAL_PUBLIC_URL", "https://clinic.example/")
    monkeypatch.setenv("FLASK_REFERRAL_GEOCODER_USER_AGENT", "clinic.example (a@clinic.example)")
    app = create_app()
    assert str(app.extensions["referral"].engine.url) == url
    assert app.config["REFERRAL_PER_PAGE"] == 7
    assert app.config["REFERRAL_PUBLIC_URL"] == "https://clinic.example"
    assert app.config["REFERRAL_SECURE_COOKIES"] is True  # served over HTTPS
    app.extensions["referral"].engine.dispose()


def test_demo_home_links_to_the_finder(client):
    html = client.get("/").get_data(as_text=True)
    assert 'href="/find-a-therapist/"' in html


def test_no_secret_key_is_in_the_code():
    source = Path(wsgi.__file__).read_text(encoding="utf-8")
    assert not re.search(r"SECRET_KEY\s*=\s*['\"]", source)
    assert "demo-only-change-me" not in source


@pytest.mark.parametrize(
    ("key", "error"),
    [
        (None, "Set SECRET_KEY to a long random value"),
        ("demo-only-change-me", "must not be empty or a placeholder"),
        ("change-me", "must not be empty or a placeholder"),
        ("short but random", "SECRET_KEY is 16 bytes; use at least 32"),
    ],
)
def test_outside_debug_and_testing_a_weak_key_is_refused(tmp_path, key, error):
    config = {
        "REFERRAL_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite",
        "REFERRAL_PUBLIC_URL": "https://clinic.example",
        "SECRET_KEY": key,
    }
    with pytest.raises(RuntimeError, match=error):
        create_app(config)


def test_outside_debug_and_testing_a_public_url_is_required(tmp_path):
    config = {"REFERRAL_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite", "SECRET_KEY": STRONG_KEY}
    with pytest.raises(RuntimeError, match="Set REFERRAL_PUBLIC_URL"):
        create_app(config)


@pytest.mark.parametrize(
    "url", ["clinic.example", "ftp://clinic.example", "https://clinic.example/?x=1", "https://"]
)
def test_a_public_url_that_is_not_an_address_is_refused(tmp_path, url):
    config = {
        "TESTING": True,
        "REFERRAL_DATABASE_URL": f"sqlite:///{tmp_path}/x.sqlite",
        "REFERRAL_PUBLIC_URL": url,
    }
    with pytest.raises(ValueError, match="REFERRAL_PUBLIC_URL must be the site's public address"):
        create_app(config)


def test_demo_settings_make_a_random_key_once_and_keep_it(tmp_path):
    path = write_demo_settings("http://127.0.0.1:5000", tmp_path)
    first: dict = {}
    exec(path.read_text(), {}, first)
    assert (
        len(first["SECRET_KEY"]) == 64 and first["REFERRAL_PUBLIC_URL"] == "http://127.0.0.1:5000"
    )
    write_demo_settings("http://127.0.0.1:5001", tmp_path)
    second: dict = {}
    exec(path.read_text(), {}, second)
    assert second["SECRET_KEY"] == first["SECRET_KEY"]
    assert second["REFERRAL_PUBLIC_URL"] == "http://127.0.0.1:5001"
    assert path.stat().st_mode & 0o077 == 0  # only its owner may read it
    other = write_demo_settings("http://127.0.0.1:5000", tmp_path / "elsewhere")
    third: dict = {}
    exec(other.read_text(), {}, third)
    assert third["SECRET_KEY"] != first["SECRET_KEY"]


def test_the_demo_starts_from_its_settings_file_alone(monkeypatch, tmp_path):
    """What `make demo` and every later `flask --app wsgi ...` rely on: no environment."""
    monkeypatch.setattr(wsgi, "INSTANCE", tmp_path)
    for name in ("FLASK_SECRET_KEY", "FLASK_REFERRAL_PUBLIC_URL", "FLASK_TESTING", "FLASK_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FLASK_REFERRAL_DATABASE_URL", f"sqlite:///{tmp_path}/demo.sqlite")
    write_demo_settings("http://127.0.0.1:5077", tmp_path)
    app = create_app()
    assert not app.testing and not app.debug
    assert app.config["REFERRAL_PUBLIC_URL"] == "http://127.0.0.1:5077"
    assert len(app.config["SECRET_KEY"]) == 64
    assert app.config["REFERRAL_SECURE_COOKIES"] is False  # the demo is plain HTTP
    assert app.config["REFERRAL_GEOCODER"] is None  # the demo is offline
    app.extensions["referral"].engine.dispose()
