"""The audit log: moderation, report handling, imports and exports are recorded with who,
what, when and the changed fields, and the admin's page lists and filters them."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from referral import audit, moderation
from referral.importer import COLUMNS
from referral.models import AuditEvent, Practitioner
from tests.conftest import post_form, sign_in

P = "/find-a-therapist"


def _events(session, **where):
    session.expire_all()
    query = select(AuditEvent).order_by(AuditEvent.id)
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    return list(session.scalars(query))


@pytest.fixture
def pending(session, make_account, add_practitioner):
    user = make_account("pat@example.com", listing=False)
    return add_practitioner(
        "Pat Pending",
        (-33.87, 151.21),
        status="pending",
        user_id=user.id,
        accreditation_body="Massage & Myotherapy Australia",
        membership_number="M-777",
    )


def test_each_decision_is_recorded_with_who_and_the_changed_fields(app, session, pending):
    with app.test_request_context():
        moderation.approve(session, pending, "ada@example.com")
        moderation.suspend(session, pending, "ada@example.com", "Complaint under review.")
        moderation.approve(session, pending, "bob@example.com")
        moderation.reconfirm(session, pending, "bob@example.com")
    events = _events(session, object_type="listing", object_id=str(pending.id))
    assert [(e.action, e.actor) for e in events] == [
        ("approve", "ada@example.com"),
        ("suspend", "ada@example.com"),
        ("reinstate", "bob@example.com"),
        ("reconfirm", "bob@example.com"),
    ]
    approve, suspend, reinstate, reconfirm = (e.changes for e in events)
    assert approve["status"] == ["pending", "active"]
    assert approve["verified_by"] == [None, "ada@example.com"]
    assert suspend == {
        "status": ["active", "suspended"],
        "status_reason": [None, "Complaint under review."],
    }
    assert reinstate["status"] == ["suspended", "active"]
    assert reinstate["status_reason"] == ["Complaint under review.", None]
    assert set(reconfirm) == {"verified_at"}  # same admin: only the date moved


def test_a_refused_decision_records_nothing(app, session, pending):
    with app.test_request_context(), pytest.raises(Exception, match="cannot be suspended"):
        moderation.suspend(session, pending, "a@example.com", "why")
    session.rollback()
    assert _events(session) == []


def test_reject_through_the_admin_page_names_the_signed_in_admin(
    client, session, pending, make_account
):
    make_account("admin@example.com", admin=True, listing=False)
    sign_in(client, "admin@example.com")
    url = f"{P}/admin/listings/{pending.id}"
    response = post_form(client, f"{url}/reject", {"reason": "No such member."}, form_url=url)
    assert response.status_code == 302
    [event] = _events(session, action="reject")
    assert event.actor == "admin@example.com" and event.object_id == str(pending.id)
    assert event.changes["status_reason"] == [None, "No such member."]


def _csv(*rows: dict) -> bytes:
    lines = [",".join(COLUMNS)] + [",".join(row.get(c, "") for c in COLUMNS) for row in rows]
    return ("\n".join(lines) + "\n").encode()


def test_cli_import_and_export_are_recorded_as_cli(runner, session, tmp_path):
    path = tmp_path / "members.csv"
    row = {
        "external_id": "m-1",
        "name": "Ana Lima",
        "modalities": "remedial-massage",
        "suburb": "Sydney",
        "postcode": "2000",
        "country": "AU",
        "lat": "-33.8688",
        "lon": "151.2093",
    }
    result = runner.invoke(args=["referral", "import", str(path)])
    assert result.exit_code != 0  # no such file yet: nothing recorded
    path.write_bytes(_csv(row))
    result = runner.invoke(args=["referral", "import", str(path)])
    assert result.exit_code == 0, result.output
    out = tmp_path / "out.json"
    result = runner.invoke(args=["referral", "export", "--output", str(out)])
    assert result.exit_code == 0, result.output
    imported, exported = _events(session, object_type="directory")
    assert (imported.action, imported.actor) == ("import", "cli")
    assert imported.note == "members.csv: 1 created, 0 updated, 0 unchanged, 0 rejected"
    assert (exported.action, exported.actor) == ("export", "cli")
    assert exported.note == "hsds to out.json"


def test_filters_narrow_by_action_actor_object_and_dates(app, session):
    with app.app_context():
        for n in range(3):
            audit.record(session, "approve", "listing", n, actor="ada@example.com")
        audit.record(session, "suspend", "listing", 1, actor="bob@example.com")
        audit.record(session, "import", "directory", actor="cli")
    old = _events(session, action="import")[0]
    old.created_at = datetime(2026, 1, 15, 12, 0)
    session.commit()

    def ids(**kw):
        return [
            e.action + ":" + (e.object_id or "-")
            for e in audit.events(session, audit.Filters(**kw)).items
        ]

    assert ids(action="approve") == ["approve:2", "approve:1", "approve:0"]
    assert ids(actor="BOB") == ["suspend:1"]
    assert ids(object_type="listing", object_id="1") == ["suspend:1", "approve:1"]
    day = datetime(2026, 1, 15).date()
    assert ids(since=day, until=day) == ["import:-"]
    assert "import:-" not in ids(since=datetime(2026, 1, 16).date())
    page = audit.events(session, audit.Filters(), page=2, per_page=2)
    assert (page.total, page.pages, page.page, len(page.items)) == (5, 3, 2, 2)


def test_admin_page_lists_filters_and_pages(client, session, make_account, app):
    make_account("admin@example.com", admin=True, listing=False)
    with app.app_context():
        for n in range(60):
            audit.record(session, "approve", "listing", n, actor="ada@example.com")
        audit.record(
            session,
            "suspend",
            "listing",
            7,
            actor="bob@example.com",
            changes={"status": ["active", "suspended"]},
        )
    sign_in(client, "admin@example.com")
    html = client.get(f"{P}/admin/audit").get_data(as_text=True)
    assert "61 events" in html and "Page 1 of 2" in html and 'rel="next"' in html
    assert "status: active → suspended" in html
    second = client.get(f"{P}/admin/audit?page=2").get_data(as_text=True)
    assert 'rel="prev"' in second and "Page 2 of 2" in second
    only_bob = client.get(f"{P}/admin/audit?actor=bob").get_data(as_text=True)
    assert "1 event." in only_bob and "bob@example.com" in only_bob
    listing = client.get(f"{P}/admin/audit?object_type=listing&object_id=7").get_data(as_text=True)
    assert "2 events" in listing
    bad = client.get(f"{P}/admin/audit?since=yesterday")
    assert bad.status_code == 400 and "is not a date" in bad.get_data(as_text=True)
    nothing = client.get(f"{P}/admin/audit?action=merge").get_data(as_text=True)
    assert "matches these filters" in nothing


def test_audit_page_is_for_admins_only(client, session, make_account):
    make_account("prac@example.com")
    assert "/account/login" in client.get(f"{P}/admin/audit").location
    sign_in(client, "prac@example.com")
    assert client.get(f"{P}/admin/audit").status_code == 403


def test_a_referral_is_not_audited(client, session, add_practitioner):
    therapist = add_practitioner("Ana", (-33.87, 151.21), email="ana@example.com")
    url = f"{P}/practitioners/{therapist.id}"
    response = post_form(
        client,
        f"{url}/referrals",
        {
            "patient_name": "Pat Patient",
            "email": "pat@example.com",
            "message": "Sore back for weeks",
            "consent": "y",
        },
        form_url=url,
    )
    assert response.status_code in (303, 302)
    assert _events(session) == []
    assert session.get(Practitioner, therapist.id) is not None
