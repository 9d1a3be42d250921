from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_ships_templates_static_files_and_migrations(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("referral-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for required in (
        "referral/__init__.py",
        "referral/py.typed",
        "referral/search/postgis.py",
        "referral/fhir/directory.py",
        "referral/templates/referral/base.html",
        "referral/templates/referral/search.html",
        "referral/templates/referral/_referral_form.html",
        "referral/templates/referral/email/acknowledgement.txt",
        "referral/templates/referral/email/layout.html",
        "referral/templates/referral/account/listing.html",
        "referral/templates/referral/email/verify.txt",
        "referral/static/referral/referral.css",
        "referral/static/referral/search.js",
        "referral/templates/referral/_locate.html",
        "referral/static/referral/embed.js",
        "referral/static/referral/embed-frame.js",
        "referral/static/referral/map.js",
        "referral/static/referral/vendor/leaflet/leaflet.js",
        "referral/static/referral/vendor/leaflet/leaflet.css",
        "referral/static/referral/vendor/leaflet/LICENSE",
        "referral/static/referral/vendor/leaflet/images/marker-icon.png",
        "referral/templates/referral/embed_base.html",
        "referral/migrations/env.py",
        "referral/migrations/script.py.mako",
        "referral/migrations/versions/0001_initial_schema.py",
    ):
        assert required in names, required
    assert not any(n.startswith("tests/") or n == "wsgi.py" for n in names)
