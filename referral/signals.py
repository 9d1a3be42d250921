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

#: Sent after every admin decision on a listing: ``approve``, ``reject``, ``suspend``,
#: ``reinstate`` (approving a suspended listing) and ``reconfirm`` (details confirmed again).
#: Arguments: ``practitioner``, ``action`` (str), ``actor`` (who: an email or ``cli``),
#: ``changes`` (``{field: [before, after]}`` for the fields the decision changed).
listing_moderated = _signals.signal("listing-moderated")

#: Sent after a CSV import committed.
#: Arguments: ``actor``, ``source`` (the file's name), ``summary`` (str, what it did),
#: ``counts`` (``{"created": n, "updated": n, ...}``).
directory_imported = _signals.signal("directory-imported")

#: Sent after the directory was exported by the CLI or by a signed-in account.
#: Arguments: ``actor``, ``format`` (``hsds``, ``csv``, ``fhir``), ``destination`` (str).
directory_exported = _signals.signal("directory-exported")

#: Sent when a visitor reports wrong details on a listing.
#: Arguments: ``report`` (:class:`referral.models.ProblemReport`).
problem_reported = _signals.signal("problem-reported")

#: Sent when an admin resolves or dismisses a problem report.
#: Arguments: ``report``, ``action`` (``resolve`` or ``dismiss``), ``actor``, ``changes``.
problem_handled = _signals.signal("problem-handled")
