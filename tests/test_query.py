"""Reading search requests: the ``back`` value a listing carries to its search page."""

from __future__ import annotations

import pytest

from referral.query import BACK_MAX_LENGTH, search_back


def test_search_back_keeps_the_search_parameters_in_order():
    raw = "postcode=2000&modality=physiotherapy&modality=yoga&radius_km=10&page=2"
    assert search_back(raw) == raw
    assert search_back(b"lat=-33.87&lon=151.2") == "lat=-33.87&lon=151.2"
    assert search_back("postcode=Surry+Hills") == "postcode=Surry+Hills"


@pytest.mark.parametrize(
    ("raw", "kept"),
    [
        (None, ""),
        ("", ""),
        ("next=http://evil.example&postcode=2000", "postcode=2000"),  # only search params
        ("//evil.example", ""),
        ("http://evil.example/?postcode=2000", ""),  # a URL is not a query string
        ("postcode=20%0A00", ""),  # control characters
        ("postcode=" + "2" * 300, ""),  # absurdly long values
        ("postcode=2000&" + "x" * BACK_MAX_LENGTH, ""),  # too long as a whole
        ("modality=&postcode=2000", "postcode=2000"),  # empty values dropped
    ],
)
def test_search_back_drops_everything_else(raw, kept):
    assert search_back(raw) == kept
