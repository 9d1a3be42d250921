"""The referral form and the small forms behind the inbox buttons (Flask-WTF, CSRF).

Field names are a public contract: a host site may post its own HTML form to the
referral URL with ``patient_name``, ``email``, ``phone``, ``postcode``, ``condition``,
``message``, ``consent``, ``csrf_token`` and, optionally, ``idempotency_key``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask import current_app
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    HiddenField,
    SelectChoice,
    SelectField,
    StringField,
    TelField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional, ValidationError

#: name of the honeypot field: hidden from people, filled in by form-spamming bots
HONEYPOT = "website"
REASON_MAX_LENGTH = 1000


class ReferralForm(FlaskForm):
    patient_name = StringField(
        "Your name",
        validators=[InputRequired("Please tell us your name."), Length(max=200)],
        render_kw={"autocomplete": "name"},
    )
    email = EmailField(
        "Email",
        validators=[InputRequired("Please give an email address."), Length(max=254)],
        render_kw={"autocomplete": "email"},
    )
    phone = TelField(
        "Phone (optional)",
        validators=[Optional(), Length(max=40)],
        render_kw={"autocomplete": "tel", "inputmode": "tel"},
    )
    postcode = StringField(
        "Your postcode (optional)",
        validators=[Optional(), Length(max=20)],
        render_kw={"autocomplete": "postal-code"},
    )
    # optional: a host form may leave it out
    condition = SelectField(
        "What would you like help with?", choices=[SelectChoice("", "Not sure")], default=""
    )
    message = TextAreaField("Anything the practitioner should know (optional)")
    consent = BooleanField(
        validators=[DataRequired("Please tick the box to agree, so we can send your request.")]
    )
    idempotency_key = HiddenField()
    website = StringField("Leave this empty", render_kw={"tabindex": "-1", "autocomplete": "off"})

    def __init__(
        self, *args: Any, conditions: Sequence[tuple[str, str]] = (), **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.condition.choices = [
            SelectChoice("", "Not sure"),
            *(SelectChoice(value, label) for value, label in conditions),
        ]
        if not self.idempotency_key.data:
            self.idempotency_key.data = uuid.uuid4().hex
        self.message_max_length = int(current_app.config["REFERRAL_MESSAGE_MAX_LENGTH"])
        self.message.render_kw = {"maxlength": self.message_max_length, "rows": 4}

    def is_bot(self) -> bool:
        return bool((self.website.data or "").strip())

    def validate_email(self, field: StringField) -> None:
        try:
            field.data = validate_email(field.data.strip(), check_deliverability=False).normalized
        except EmailNotValidError as exc:
            raise ValidationError(f"Please check the email address: {exc}") from None

    def validate_phone(self, field: StringField) -> None:
        region = current_app.config["REFERRAL_PHONE_REGION"]
        try:
            number = phonenumbers.parse(field.data, region)
        except phonenumbers.NumberParseException:
            number = None
        if number is None or not phonenumbers.is_valid_number(number):
            raise ValidationError(
                "Please check the phone number: it does not look like a valid number."
            )
        field.data = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)

    def validate_message(self, field: TextAreaField) -> None:
        field.data = (field.data or "").strip()
        if len(field.data) > self.message_max_length:
            raise ValidationError(
                f"Please keep the message to {self.message_max_length} characters "
                f"(it has {len(field.data)})."
            )

    def validate_idempotency_key(self, field: HiddenField) -> None:
        if field.data and len(field.data) > 80:
            raise ValidationError("The form key is too long; please reload the page.")

    def csrf_failed(self) -> bool:
        """True when the request failed the CSRF check (a 400, not a form error)."""
        csrf = getattr(self, "csrf_token", None)
        return bool(self.meta.csrf and csrf is not None and csrf.errors)


class ActionForm(FlaskForm):
    """Accept, complete and cancel buttons: only the CSRF token."""

    def csrf_failed(self) -> bool:
        csrf = getattr(self, "csrf_token", None)
        return bool(self.meta.csrf and csrf is not None and csrf.errors)


class DeclineForm(ActionForm):
    reason = TextAreaField(
        "Reason (the patient is not shown it)",
        validators=[
            InputRequired("Please give a reason for declining."),
            Length(max=REASON_MAX_LENGTH),
        ],
    )
