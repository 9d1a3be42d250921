"""The consent wordings a referral can have been sent under, by version.

A referral stores the version its patient agreed to (``consent_version``), so every
wording ever shipped stays here: an old referral is read with the words its patient saw.
Version ``2026-12`` added passing the details on to another practitioner, which referring
on (:mod:`referral.referon`) relies on.

A host that writes its own ``REFERRAL_CONSENT_TEXT`` gives it a version of its own
(``REFERRAL_CONSENT_VERSION``); that wording is taken to cover referring on too, so it
must say so.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: every wording the plugin has shipped; never change or remove one, add a version
TEXTS: dict[str, str] = {
    "2026-11": (
        "I agree that this practitioner may receive the details I give here, including "
        "about my health, and may contact me about this request."
    ),
    "2026-12": (
        "I agree that this practitioner may receive the details I give here, including "
        "about my health, may contact me about this request, and may pass them on to "
        "another practitioner if they refer me on."
    ),
}
CURRENT = "2026-12"
#: shipped versions whose wording lets the practitioner pass the details on
COVER_REFERRING_ON = frozenset({"2026-12"})


def text_for(version: str, config: Mapping[str, Any]) -> str | None:
    """The wording a referral's patient agreed to; ``None`` for a version nobody knows."""
    if version == config["REFERRAL_CONSENT_VERSION"]:
        return config["REFERRAL_CONSENT_TEXT"]
    return TEXTS.get(version)


def covers_referring_on(version: str, config: Mapping[str, Any]) -> bool:
    """Whether the patient already agreed that their details may be passed on; when not,
    the practitioner referring on confirms that the patient has agreed since."""
    if version in TEXTS:
        return version in COVER_REFERRING_ON
    return version == config["REFERRAL_CONSENT_VERSION"]
