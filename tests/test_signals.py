"""Hosts hear about referrals through blinker signals, sent after the commit."""

from __future__ import annotations

import re

from sqlalchemy import select

from referral.models import ReferralRequest
from referral.signals import referral_created, referral_status_changed
from tests.test_refer import PREFIX, form_for


def test_created_and_status_changed_are_sent_after_commit(
    make_app, smtp_server, add_practitioner, unbound_session
):
    app = make_app(**smtp_server.config)
    nina = add_practitioner("Nina", (-33.8, 151.2), email="nina@example.com")
    heard = []

    def on_created(sender, referral):
        with app.extensions["referral"].sessionmaker() as other:  # committed: visible elsewhere
            heard.append(("created", sender, other.get(ReferralRequest, referral.id) is not None))

    def on_changed(sender, referral, old_status, new_status, actor):
        heard.append(("changed", sender, old_status, new_status, actor))

    client = app.test_client()
    with (
        referral_created.connected_to(on_created, app),
        referral_status_changed.connected_to(on_changed, app),
    ):
        client.post(
            f"{PREFIX}/practitioners/{nina.id}/referrals",
            follow_redirects=True,
            data=form_for(client, nina.id),
        )
        ack = smtp_server.to("pat@example.com")[0].text
        url = re.search(r"http://localhost(\S+/referrals/cancel/\S+)", ack).group(1)
        html = client.get(url).get_data(as_text=True)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)
        client.post(url, follow_redirects=True, data={"csrf_token": token})
    assert heard == [
        ("created", app, True),
        ("changed", app, "sent", "cancelled", "patient"),
    ]
    assert unbound_session.scalars(select(ReferralRequest)).one().status == "cancelled"
