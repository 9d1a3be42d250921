"""The operator's referral funnel: counts per stage, the median wait for an answer, by
modality and region, and the admin page that draws it (counts only)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from referral import funnel
from referral.models import ReferralEvent, ReferralRequest, new_token, utcnow
from referral.referrals import ReferralData, create_referral, mark_milestones, transition

PREFIX = "/find-a-therapist"
HOUR = 3600.0


@pytest.fixture
def session(unbound_session):
    return unbound_session


@pytest.fixture
def now():
    return utcnow()


@pytest.fixture
def clinic(session, add_practitioner, now):
    """Nina (physio, NSW) and Otto (massage and myotherapy, VIC) with six referrals."""
    nina = add_practitioner("Nina Near", (-33.87, 151.21), modalities=("physiotherapy",))
    otto = add_practitioner(
        "Otto Other", (-37.81, 144.96), modalities=("remedial-massage", "myotherapy")
    )
    nina.locations[0].state, otto.locations[0].state = "NSW", "VIC"

    def referral(practitioner, days_ago, status, events=()):
        sent = now - timedelta(days=days_ago)
        row = ReferralRequest(
            id=new_token(),
            practitioner_id=practitioner.id,
            patient_name="Pat Secret",
            email="pat.secret@example.com",
            consent_version="2026-12",
            consent_at=sent,
            status=status,
            created_at=sent,
            updated_at=sent,
        )
        session.add(row)
        session.flush()
        session.add(
            ReferralEvent(referral_id=row.id, actor="patient", action="created", created_at=sent)
        )
        for action, hours in events:
            at = sent + timedelta(hours=hours)
            session.add(
                ReferralEvent(
                    referral_id=row.id,
                    actor=f"practitioner:{practitioner.id}",
                    action=action,
                    created_at=at,
                )
            )
            mark_milestones(row, action, at)  # as referrals.transition does

    referral(
        nina, 5, "completed", [("viewed", 1), ("accepted", 2), ("opened", 3), ("completed", 30)]
    )
    referral(nina, 10, "declined", [("viewed", 0.5), ("declined", 4)])
    referral(otto, 2, "sent")
    referral(otto, 20, "expired")
    # accepted straight from the email: it was read, though never "viewed"
    referral(otto, 60, "accepted", [("accepted", 10)])
    referral(otto, 120, "completed", [("accepted", 1), ("completed", 2)])  # too old for both
    session.commit()
    return {"nina": nina, "otto": otto}


def test_the_last_30_days(session, clinic, now):
    [row] = funnel.funnel(session, 30, now=now)
    assert (row.sent, row.viewed, row.accepted, row.completed, row.declined, row.expired) == (
        4,
        2,
        1,
        1,
        1,
        1,
    )
    assert row.median_response_s == pytest.approx(3 * HOUR, abs=1)  # of 2 h and 4 h


def test_the_last_90_days_takes_in_older_ones(session, clinic, now):
    report = funnel.report(session, 90, now=now)
    total = report.total
    assert (total.sent, total.viewed, total.accepted, total.completed) == (5, 3, 2, 1)
    assert total.median_response_s == pytest.approx(4 * HOUR, abs=1)  # of 2, 4 and 10 h


def test_by_modality_counts_each_of_a_practitioners_modalities(session, clinic, now):
    rows = {r.group: r for r in funnel.funnel(session, 30, "modality", now=now)}
    assert {g: r.sent for g, r in rows.items()} == {
        "Physiotherapy": 2,
        "Remedial massage": 2,
        "Myotherapy": 2,
    }
    assert rows["Remedial massage"].expired == 1
    assert rows["Remedial massage"].median_response_s is None  # nobody answered yet
    assert rows["Physiotherapy"].median_response_s == pytest.approx(3 * HOUR, abs=1)


def test_by_region_is_the_state_of_the_first_location(session, clinic, now):
    rows = funnel.funnel(session, 90, "region", now=now)
    assert [(r.group, r.sent, r.accepted) for r in rows] == [("VIC", 3, 1), ("NSW", 2, 1)]
    assert rows[0].median_response_s == pytest.approx(10 * HOUR, abs=1)


def test_a_practitioner_without_a_state_is_not_given(session, clinic, add_practitioner, now):
    pam = add_practitioner("Pam Plain", (-33.9, 151.2), modalities=())
    session.add(
        ReferralRequest(
            id=new_token(),
            practitioner_id=pam.id,
            patient_name="X",
            email="x@example.com",
            consent_version="2026-12",
            consent_at=now,
            status="sent",
            created_at=now - timedelta(hours=1),
        )
    )
    session.commit()
    regions = {r.group: r.sent for r in funnel.funnel(session, 30, "region", now=now)}
    modalities = {r.group: r.sent for r in funnel.funnel(session, 30, "modality", now=now)}
    assert regions["Not given"] == 1 and modalities["Not given"] == 1


def test_nothing_sent_is_an_empty_funnel(session, now):
    report = funnel.report(session, 30, now=now)
    assert report.total.sent == 0 and report.total.median_response_s is None
    assert report.by_modality == [] and report.by_region == []
    assert report.total.share("viewed") == 0.0


def test_transitions_stamp_the_milestones_the_funnel_reads(app, session, add_practitioner):
    nina = add_practitioner("Nina Near", (-33.87, 151.21))
    with app.test_request_context():
        referral, _ = create_referral(
            session,
            nina,
            ReferralData(patient_name="S", email="s@example.com", consent_version="x"),
        )
        transition(session, referral, "accepted", "practitioner:1")
        first = referral.accepted_at
        assert referral.viewed_at == first == referral.answered_at is not None
        transition(session, referral, "completed", "practitioner:1")
        assert referral.accepted_at == first  # the first time stays
    [row] = funnel.funnel(session, 30)
    assert (row.sent, row.viewed, row.accepted) == (1, 1, 1)


def test_unknown_grouping_is_an_error(session):
    with pytest.raises(ValueError):
        funnel.funnel(session, 30, "postcode")


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (None, "—"),
        (20, "1 min"),
        (45 * 60, "45 min"),
        (5.24 * HOUR, "5.2 h"),
        (74 * HOUR, "3.1 days"),
    ],
)
def test_waits_read_as_words(seconds, words):
    assert funnel.duration_words(seconds) == words


def test_admin_page_draws_the_chart_and_its_table(login_client, add_account, clinic):
    admin = login_client(add_account("ada@admin.example", admin=True))
    response = admin.get(f"{PREFIX}/admin/funnel")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    assert html.count('<svg class="referral-funnel-chart"') == 2  # 30 and 90 days
    assert 'role="img"' in html and '<title id="funnel-30-title">' in html
    assert "Sent: 4; Viewed: 2; Accepted: 1; Completed: 1; Declined: 1; Expired: 1." in html
    assert "<caption>By modality, last 30 days</caption>" in html
    assert "<caption>By region (state), last 90 days</caption>" in html
    assert '<th scope="row">VIC</th><td>3</td>' in html
    assert "3.0 h" in html and "4.0 h" in html
    for private in ("Pat Secret", "pat.secret@example.com"):
        assert private not in html
    assert f'href="{PREFIX}/admin/funnel" aria-current="page">Referral funnel</a>' in html


def test_practitioners_and_visitors_do_not_see_it(app, login_client, add_account, clinic):
    practitioner = login_client(add_account("nina@login.example"))
    assert practitioner.get(f"{PREFIX}/admin/funnel").status_code == 403
    anonymous = app.test_client().get(f"{PREFIX}/admin/funnel")
    assert anonymous.status_code == 302 and "/account/login" in anonymous.location
