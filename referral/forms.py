"""Flask-WTF forms (CSRF on): the referral form, the inbox buttons, and the account and
listing forms.

Forms check shape and length; the rules live in the modules that apply them
(``referrals``, ``accounts``, ``listings``, ``moderation``), which raise
:class:`referral.errors.InvalidInput` with the message shown beside the field.

The referral form's field names are a public contract: a host site may post its own HTML
form to the referral URL with ``patient_name``, ``email``, ``phone``, ``postcode``,
``condition``, ``message``, ``consent``, ``csrf_token`` and, optionally, ``idempotency_key``
(embed pages add ``form_token``, see :mod:`referral.embed`).
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
    FloatField,
    HiddenField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    SelectMultipleField,
    StringField,
    TelField,
    TextAreaField,
    widgets,
)
from wtforms.validators import (
    DataRequired,
    Email,
    EqualTo,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    ValidationError,
)

from referral.errors import InvalidInput
from referral.listings import check_name
from referral.referrals import DECLINE_CATEGORIES
from referral.wording import OUTCOME_WORDS

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

    def validate_patient_name(self, field: StringField) -> None:
        try:
            field.data = check_name(field.data)
        except InvalidInput as exc:
            raise ValidationError(exc.message) from None

    def validate_email(self, field: StringField) -> None:
        try:
            field.data = validate_email(field.data.strip(), check_deliverability=False).normalized
        except EmailNotValidError:
            raise ValidationError(
                "Enter your email address in the form name@example.com, so the "
                "practitioner can answer you."
            ) from None

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
    """A button that changes something (accept, cancel, sign out, approve): CSRF only."""

    def csrf_failed(self) -> bool:
        csrf = getattr(self, "csrf_token", None)
        return bool(self.meta.csrf and csrf is not None and csrf.errors)


class DeclineForm(ActionForm):
    category = RadioField(
        "What the patient is told",
        choices=[SelectChoice(key, text) for key, text in DECLINE_CATEGORIES.items()],
        default="other",
        validators=[Optional()],
    )
    reason = TextAreaField(
        "Reason (the patient is not shown it)",
        validators=[
            InputRequired("Please give a reason for declining."),
            Length(max=REASON_MAX_LENGTH),
        ],
    )


class OutcomeForm(ActionForm):
    """Completing a referral: what came of it, which the referring practitioner reads."""

    outcome = RadioField(
        "What came of it",
        choices=[SelectChoice(key, text) for key, text in OUTCOME_WORDS.items()],
        validators=[InputRequired("Please choose what came of the referral.")],
    )
    outcome_note = TextAreaField(
        "Note for the referring practitioner (optional)",
        validators=[Optional(), Length(max=REASON_MAX_LENGTH)],
    )


class ReferOnForm(ActionForm):
    """Referring a patient on: an optional note, and the patient's agreement when their
    consent did not cover it (the field is dropped when it did)."""

    note = TextAreaField(
        "Note for the practitioner (optional)",
        validators=[Optional(), Length(max=REASON_MAX_LENGTH)],
    )
    patient_agreed = BooleanField(
        "The patient has agreed that I pass their details on to this practitioner",
        validators=[DataRequired("Please confirm that the patient has agreed.")],
    )


DAYS = (
    ("mon", "Monday"),
    ("tue", "Tuesday"),
    ("wed", "Wednesday"),
    ("thu", "Thursday"),
    ("fri", "Friday"),
    ("sat", "Saturday"),
    ("sun", "Sunday"),
)


class SignUpForm(FlaskForm):
    # autocomplete hints let browsers and password managers fill and generate these fields
    name = StringField(
        "Your name, as patients will see it",
        [DataRequired(), Length(max=200)],
        render_kw={"autocomplete": "name"},
    )
    email = EmailField(
        "Email", [DataRequired(), Email(), Length(max=254)], render_kw={"autocomplete": "email"}
    )
    password = PasswordField(
        "Password", [DataRequired(), Length(max=1024)], render_kw={"autocomplete": "new-password"}
    )
    confirm = PasswordField(
        "Password again",
        [DataRequired(), EqualTo("password", "The passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )


class SignInForm(FlaskForm):
    email = EmailField(
        "Email", [DataRequired(), Length(max=254)], render_kw={"autocomplete": "username"}
    )
    password = PasswordField(
        "Password",
        [DataRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )
    remember = BooleanField("Keep me signed in on this device")


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", [DataRequired(), Length(max=254)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", [DataRequired(), Length(max=1024)])
    confirm = PasswordField(
        "New password again",
        [DataRequired(), EqualTo("password", "The passwords do not match.")],
    )


class ChangePasswordForm(FlaskForm):
    current = PasswordField(
        "Current password",
        [DataRequired(), Length(max=1024)],
        render_kw={"autocomplete": "current-password"},
    )
    password = PasswordField(
        "New password",
        [DataRequired(), Length(max=1024)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "New password again",
        [DataRequired(), EqualTo("password", "The passwords do not match.")],
        render_kw={"autocomplete": "new-password"},
    )


class MultiCheckboxField(SelectMultipleField):
    widget = widgets.ListWidget(prefix_label=False)
    option_widget = widgets.CheckboxInput()


class ListingForm(FlaskForm):
    name = StringField("Name", [DataRequired(), Length(max=200)])
    business_name = StringField("Practice name", [Optional(), Length(max=200)])
    bio = TextAreaField("About you", [Optional(), Length(max=5000)])
    phone = StringField("Phone", [Optional(), Length(max=40)])
    website = StringField("Website", [Optional(), Length(max=500)])
    modalities = MultiCheckboxField("What you practise", choices=[])
    conditions = MultiCheckboxField("Conditions you treat", choices=[])
    accreditation_body = StringField("Accreditation body", [Optional(), Length(max=200)])
    membership_number = StringField("Membership number", [Optional(), Length(max=80)])
    languages = StringField("Languages (separated by commas)", [Optional(), Length(max=400)])
    capacity_status = SelectField(
        "New patients",
        choices=[
            SelectChoice("accepting", "Accepting new patients"),
            SelectChoice("waitlist", "Waitlist: new patients wait a while"),
            SelectChoice("existing_only", "Existing patients only"),
            SelectChoice("closed", "Not taking new patients"),
        ],
        default="accepting",
    )
    waitlist_weeks = StringField(
        "Usual wait for a waitlist, in weeks",
        [Optional(), Length(max=4)],
        render_kw={"inputmode": "numeric"},
    )
    weekly_referral_cap = StringField(
        "Most new referrals you take a week (optional; when reached, your listing shows "
        "a waitlist until Monday)",
        [Optional(), Length(max=4)],
        render_kw={"inputmode": "numeric"},
    )
    booking_url = StringField(
        "Online booking page (https://, e.g. Cliniko, Halaxy or Cal.com)",
        [Optional(), Length(max=500)],
        render_kw={"inputmode": "url"},
    )
    telehealth = BooleanField("Telehealth sessions")
    home_visits = BooleanField("Home visits")


class LocationForm(FlaskForm):
    name = StringField("Name of the place (optional)", [Optional(), Length(max=200)])
    street = StringField("Street address", [Optional(), Length(max=200)])
    suburb = StringField("Suburb", [Optional(), Length(max=120)])
    state = StringField("State", [Optional(), Length(max=60)])
    postcode = StringField("Postcode", [Optional(), Length(max=20)])
    country = StringField("Country code", [DataRequired(), Length(min=2, max=2)])
    home_visit_radius_km = FloatField(
        "Home visits within (km)", [Optional(), NumberRange(min=0, max=500)]
    )
    mon = StringField("Monday", [Optional(), Length(max=60)])
    tue = StringField("Tuesday", [Optional(), Length(max=60)])
    wed = StringField("Wednesday", [Optional(), Length(max=60)])
    thu = StringField("Thursday", [Optional(), Length(max=60)])
    fri = StringField("Friday", [Optional(), Length(max=60)])
    sat = StringField("Saturday", [Optional(), Length(max=60)])
    sun = StringField("Sunday", [Optional(), Length(max=60)])


class ReasonForm(FlaskForm):
    reason = TextAreaField(
        "Reason (sent to the practitioner)",
        [DataRequired("Please give a reason."), Length(max=2000)],
    )


class ReportForm(FlaskForm):
    """ "Report wrong details" on a listing; :func:`referral.reports.file_report` checks it."""

    kind = RadioField(
        "What is wrong?",
        choices=[],
        validators=[InputRequired("Please choose what is wrong.")],
    )
    note = TextAreaField(
        "Tell us more (optional)",
        [Optional(), Length(max=1000, message="Please keep the note under 1000 characters.")],
    )
    email = EmailField(
        "Your email (optional, only if you are happy for us to ask you about it)",
        [Optional(), Length(max=254)],
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from referral.reports import KIND_WORDS

        super().__init__(*args, **kwargs)
        self.kind.choices = list(KIND_WORDS.items())

    def csrf_failed(self) -> bool:
        csrf = getattr(self, "csrf_token", None)
        return bool(self.meta.csrf and csrf is not None and csrf.errors)
