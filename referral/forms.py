"""Flask-WTF forms (CSRF on). They check shape and length; the rules live in the modules
that apply them (``accounts``, ``listings``, ``moderation``), which raise
:class:`referral.errors.InvalidInput` with the message shown beside the field."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    EmailField,
    FloatField,
    PasswordField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    widgets,
)
from wtforms.validators import DataRequired, Email, EqualTo, Length, NumberRange, Optional

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
    name = StringField("Your name, as patients will see it", [DataRequired(), Length(max=200)])
    email = EmailField("Email", [DataRequired(), Email(), Length(max=254)])
    password = PasswordField("Password", [DataRequired(), Length(max=1024)])
    confirm = PasswordField(
        "Password again", [DataRequired(), EqualTo("password", "The passwords do not match.")]
    )


class SignInForm(FlaskForm):
    email = EmailField("Email", [DataRequired(), Length(max=254)])
    password = PasswordField("Password", [DataRequired(), Length(max=1024)])
    remember = BooleanField("Keep me signed in on this device")


class ForgotPasswordForm(FlaskForm):
    email = EmailField("Email", [DataRequired(), Length(max=254)])


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", [DataRequired(), Length(max=1024)])
    confirm = PasswordField(
        "New password again",
        [DataRequired(), EqualTo("password", "The passwords do not match.")],
    )


class PostForm(FlaskForm):
    """A button that changes something (sign out, submit, approve): CSRF only."""


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
    accepting_new_patients = BooleanField("Accepting new patients")
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
