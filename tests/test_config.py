from __future__ import annotations

import re
from pathlib import Path

import pytest

from referral.config import SETTINGS, apply_defaults, config_key, markdown_table

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_table_lists_every_setting_and_nothing_else():
    text = README.read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `REFERRAL_([A-Z0-9_]+)` \|", text, re.MULTILINE))
    assert documented == set(SETTINGS)
    # the table is exactly what `python -m referral.config` prints
    assert markdown_table() in text


def test_every_setting_has_a_doc():
    assert all(setting.doc.strip() for setting in SETTINGS.values())


def test_defaults_are_copies_not_shared():
    first: dict = {}
    second: dict = {}
    apply_defaults(first)
    apply_defaults(second)
    first["REFERRAL_MODALITIES"].append(("x", "X"))
    assert ("x", "X") not in second["REFERRAL_MODALITIES"]


def test_config_key_refuses_unknown_name():
    assert config_key("URL_PREFIX") == "REFERRAL_URL_PREFIX"
    with pytest.raises(KeyError):
        config_key("NOPE")


def test_readme_lists_every_command():
    from referral.cli import referral_cli

    text = README.read_text(encoding="utf-8")
    missing = [name for name in referral_cli.commands if f"| `flask referral {name}" not in text]
    assert missing == []
