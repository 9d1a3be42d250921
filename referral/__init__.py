"""A therapist directory and referral plugin for Flask sites.

Mount it with ``Referral(app)``; see the README for every ``REFERRAL_*`` setting.
"""

from __future__ import annotations

from referral.extension import Referral

__version__ = "0.1.0"

__all__ = ["Referral", "__version__"]
