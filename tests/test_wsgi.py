from __future__ import annotations

from wsgi import create_app


def test_demo_reads_flask_prefixed_environment(monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path}/from-env.sqlite"
    monkeypatch.setenv("FLASK_REFERRAL_DATABASE_URL", url)
    monkeypatch.setenv("FLASK_REFERRAL_PER_PAGE", "7")
    app = create_app()
    assert str(app.extensions["referral"].engine.url) == url
    assert app.config["REFERRAL_PER_PAGE"] == 7
    app.extensions["referral"].engine.dispose()


def test_demo_home_links_to_the_finder(client):
    html = client.get("/").get_data(as_text=True)
    assert 'href="/find-a-therapist/"' in html
