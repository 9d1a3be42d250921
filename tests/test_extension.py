from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
from flask import Flask
from sqlalchemy import create_engine

from referral import Referral
from referral.config import SETTINGS
from tests.conftest import sign_in


def test_defaults_are_set_and_extension_registered(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path))
    app.testing = True  # no public URL or real key needed
    ext = Referral(app)
    assert app.extensions["referral"].ext is ext
    for name, setting in SETTINGS.items():
        if name != "DATABASE_URL":
            assert app.config[f"REFERRAL_{name}"] == setting.default
    assert app.config["REFERRAL_URL_PREFIX"] == "/find-a-therapist"
    # the default database is a SQLite file in the instance folder
    assert str(app.extensions["referral"].engine.url) == f"sqlite:///{tmp_path}/referral.sqlite"
    assert any(r.rule == "/find-a-therapist/" for r in app.url_map.iter_rules())


def test_second_init_app_is_refused(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path))
    app.testing = True  # no public URL or real key needed
    ext = Referral()
    ext.init_app(app)
    with pytest.raises(RuntimeError, match="already set up"):
        ext.init_app(app)
    with pytest.raises(RuntimeError):
        Referral(app)


def test_misspelt_key_is_an_error_naming_the_right_one(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path))
    app.testing = True  # no public URL or real key needed
    app.config["REFERRAL_URL_PREFX"] = "/x"
    with pytest.raises(ValueError, match=r"REFERRAL_URL_PREFX.*Did you mean REFERRAL_URL_PREFIX"):
        Referral(app)


def test_bad_distance_unit_is_refused(tmp_path):
    app = Flask(__name__, instance_path=str(tmp_path))
    app.testing = True  # no public URL or real key needed
    app.config["REFERRAL_DISTANCE_UNIT"] = "furlongs"
    with pytest.raises(ValueError, match="km"):
        Referral(app)


def test_one_extension_serves_two_apps_with_own_prefix_and_engine(tmp_path):
    ext = Referral()
    first = Flask("first", instance_path=str(tmp_path / "a"))
    second = Flask("second", instance_path=str(tmp_path / "b"))
    second.config["REFERRAL_URL_PREFIX"] = "/therapists"
    first.testing = second.testing = True
    ext.init_app(first)
    ext.init_app(second)
    with first.app_context():
        first_url = str(ext.engine.url)
    with second.app_context():
        second_url = str(ext.engine.url)
    assert first_url != second_url
    assert any(r.rule == "/therapists/" for r in second.url_map.iter_rules())


def test_host_engine_is_used(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path}/host.db")
    app = Flask(__name__, instance_path=str(tmp_path))
    app.testing = True  # no public URL or real key needed
    Referral(app, engine=engine)
    with app.app_context():
        assert app.extensions["referral"].ext.engine is engine
        assert app.extensions["referral"].ext.session.get_bind() is engine


def test_base_template_setting_wraps_pages_in_host_layout(client):
    page = client.get("/find-a-therapist/").get_data(as_text=True)
    assert "Harbour Back &amp; Body Clinic" in page  # the demo clinic's layout
    assert 'name="postcode"' in page


def test_host_template_at_same_path_overrides_plugin_page(make_app, tmp_path, add_practitioner):
    host_templates = tmp_path / "host_templates" / "referral"
    host_templates.mkdir(parents=True)
    (host_templates / "practitioner.html").write_text(
        "<p>Host page for {{ practitioner.name }}</p>", encoding="utf-8"
    )
    app = make_app()
    app.jinja_loader.searchpath.insert(0, str(tmp_path / "host_templates"))
    with app.app_context():
        practitioner = add_practitioner("Ada Park", (-33.87, 151.21))
    page = app.test_client().get(f"/find-a-therapist/practitioners/{practitioner.id}")
    assert page.get_data(as_text=True) == "<p>Host page for Ada Park</p>"


def test_plugin_limiter_checks_submissions_only(make_app, make_account):
    """Every Flask-Limiter on an app reads the host's ``RATELIMIT_DEFAULT``: the plugin's
    own limiter must not turn it into a limit on searches and pages (reads skip its check),
    while its limits on submissions still hold."""
    app = make_app(RATELIMIT_DEFAULT="1 per minute", REFERRAL_SIGNIN_RATE_LIMIT="1 per minute")
    client = app.test_client()
    with app.app_context():
        make_account("known@example.com")
    for _ in range(3):
        assert client.get("/find-a-therapist/api/v1/modalities").status_code == 200
        assert client.get("/find-a-therapist/").status_code == 200
    assert sign_in(client, "known@example.com", "wrong password!").status_code == 401
    assert sign_in(client, "known@example.com", "wrong password!").status_code == 429


WARNING = "REFERRAL_RATELIMIT_STORAGE_URL is memory:// but this server runs"


def test_gunicorn_with_two_workers_and_memory_limits_logs_a_warning(serve):
    server = serve(workers=2)
    assert f"{WARNING} 2 worker processes" in server.log
    assert "REFERRAL_RATELIMIT_STORAGE_URL=redis://" in server.log


@pytest.mark.parametrize(
    ("environ", "argv", "workers"),
    [
        ({"SERVER_SOFTWARE": "gunicorn/23.0.0"}, ["gunicorn", "-w", "4", "wsgi:app"], 4),
        ({"SERVER_SOFTWARE": "gunicorn/23.0.0"}, ["gunicorn", "--workers=3", "wsgi:app"], 3),
        (
            {"SERVER_SOFTWARE": "gunicorn/23.0.0", "GUNICORN_CMD_ARGS": "-w2 -b :80"},
            ["gunicorn", "wsgi:app"],
            2,
        ),
        ({"WEB_CONCURRENCY": "4"}, ["app"], 4),
        ({"SERVER_SOFTWARE": "gunicorn/23.0.0"}, ["gunicorn", "wsgi:app"], None),
        ({}, ["flask", "run", "-w", "4"], None),  # not gunicorn: its -w is not a worker count
    ],
)
def test_worker_processes_reads_what_the_server_says(monkeypatch, environ, argv, workers):
    from referral.extension import worker_processes

    for name in ("SERVER_SOFTWARE", "GUNICORN_CMD_ARGS", "WEB_CONCURRENCY"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.argv", argv)
    assert worker_processes() == workers


def test_the_warning_is_for_several_workers_counting_in_memory_only(monkeypatch, make_app, caplog):
    monkeypatch.setenv("WEB_CONCURRENCY", "4")
    with caplog.at_level("WARNING", logger="referral.extension"):
        make_app(REFERRAL_RATELIMIT_STORAGE_URL="redis://127.0.0.1:6379/15")
        assert caplog.records == []
        monkeypatch.setenv("WEB_CONCURRENCY", "1")
        make_app()
        assert caplog.records == []
        monkeypatch.setenv("WEB_CONCURRENCY", "4")
        make_app()
    [record] = caplog.records
    assert f"{WARNING} 4 worker processes" in record.getMessage()


def test_worker_processes_asks_uwsgi_inside_uwsgi(monkeypatch):
    """The ``uwsgi`` module exists only in uWSGI's workers; a stand-in plays it here."""
    from referral.extension import worker_processes

    monkeypatch.delenv("WEB_CONCURRENCY", raising=False)
    monkeypatch.setitem(sys.modules, "uwsgi", SimpleNamespace(numproc=3))
    assert worker_processes() == 3
