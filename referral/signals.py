"""Signals a host can connect to (blinker). Each is sent after the commit, with the
app (``current_app._get_current_object()``) as sender."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Sent when a referral request has been stored.
#: Arguments: ``referral`` (:class:`referral.models.ReferralRequest`).
referral_created = _signals.signal("referral-created")

#: Sent when a referral's status changes.
#: Arguments: ``referral``, ``old_status`` (str), ``new_status`` (str), ``actor`` (str).
referral_status_changed = _signals.signal("referral-status-changed")

#: Sent when a practitioner submits a listing, or a change, for moderation.
#: Arguments: ``practitioner`` (:class:`referral.models.Practitioner`).
listing_submitted = _signals.signal("listing-submitted")

#: Sent when an admin approves a listing and it goes live.
#: Arguments: ``practitioner``, ``admin`` (the approving user's email).
listing_approved = _signals.signal("listing-approved")
