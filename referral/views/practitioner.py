"""The signed-in practitioner's own listing: profile, locations, submission.

Every route resolves the listing from the signed-in user (:func:`practitioner_required`)
and a location only among that listing's own, so another practitioner's ids give 404.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from referral import listings, moderation
from referral.auth import practitioner_required
from referral.db import get_session
from referral.errors import InvalidInput
from referral.forms import ActionForm, ListingForm, LocationForm
from referral.models import Condition, HealthFund, Location, Modality, Practitioner

#: which form field shows a rule's message
FIELD_FOR_CODE = {
    "missing_name": "name",
    "invalid_name": "name",
    "invalid_business_name": "business_name",
    "invalid_website": "website",
    "invalid_phone": "phone",
    "invalid_languages": "languages",
    "invalid_country": "country",
    "missing_location": "postcode",
    "location_not_found": "postcode",
    "invalid_radius": "home_visit_radius_km",
    "invalid_capacity": "capacity_status",
    "missing_waitlist_weeks": "waitlist_weeks",
    "invalid_waitlist_weeks": "waitlist_weeks",
    "invalid_weekly_cap": "weekly_referral_cap",
    "invalid_booking_url": "booking_url",
}


def register(bp: Blueprint) -> None:
    bp.add_url_rule(
        "/account/listing", "listing", practitioner_required(listing), methods=["GET", "POST"]
    )
    bp.add_url_rule(
        "/account/listing/submit",
        "listing_submit",
        practitioner_required(submit),
        methods=["POST"],
    )
    bp.add_url_rule(
        "/account/listing/locations/new",
        "location_new",
        practitioner_required(location_form),
        methods=["GET", "POST"],
    )
    bp.add_url_rule(
        "/account/listing/locations/<rowid:location_id>",
        "location_edit",
        practitioner_required(location_form),
        methods=["GET", "POST"],
    )
    bp.add_url_rule(
        "/account/listing/locations/<rowid:location_id>/delete",
        "location_delete",
        practitioner_required(location_delete),
        methods=["POST"],
    )


def _show_error(form: Any, exc: InvalidInput) -> None:
    field = getattr(form, FIELD_FOR_CODE.get(exc.code, ""), None)
    if field is None:
        form.form_errors.append(exc.message)
    else:
        field.errors = [*field.errors, exc.message]


def listing(practitioner: Practitioner) -> Any:
    session = get_session()
    form = ListingForm(obj=practitioner)
    form.modalities.choices = [
        (m.slug, m.name) for m in session.scalars(select(Modality).order_by(Modality.name))
    ]
    form.conditions.choices = [
        (c.slug, c.name) for c in session.scalars(select(Condition).order_by(Condition.name))
    ]
    funds = list(session.scalars(select(HealthFund).order_by(HealthFund.name)))
    status = 200
    if request.method == "GET":
        form.modalities.data = [m.slug for m in practitioner.modalities]
        form.conditions.data = [c.slug for c in practitioner.conditions]
        form.languages.data = ", ".join(practitioner.languages or [])
        chosen = {pf.fund.slug: pf.provider_number or "" for pf in practitioner.funds}
    else:
        chosen = {
            f.slug: request.form.get(f"provider-{f.slug}", "").strip()
            for f in funds
            if request.form.get(f"fund-{f.slug}")
        }
        if form.validate_on_submit():
            data = {**form.data, "funds": chosen}
            try:
                review = listings.update_profile(
                    session, practitioner, data, current_app.config["REFERRAL_DEFAULT_COUNTRY"]
                )
            except InvalidInput as exc:
                session.rollback()
                _show_error(form, exc)
                status = 400
            else:
                flash(
                    "Saved. Your credentials changed, so your listing is hidden until we check it."
                    if review
                    else "Saved."
                )
                return redirect(url_for("referral.listing"))
        else:
            status = 400
    return render_template(
        "referral/account/listing.html",
        practitioner=practitioner,
        form=form,
        funds=funds,
        chosen=chosen,
        post_form=ActionForm(),
    ), status


def submit(practitioner: Practitioner) -> Any:
    form = ActionForm()
    if not form.validate_on_submit():
        abort(400)
    try:
        moderation.submit(get_session(), practitioner)
    except InvalidInput as exc:
        flash(exc.message, "error")
        return redirect(url_for("referral.listing"))
    flash("Thank you. Your listing is waiting to be checked; we will email you.")
    return redirect(url_for("referral.listing"))


def location_form(practitioner: Practitioner, location_id: int | None = None) -> Any:
    session = get_session()
    location: Location | None = None
    if location_id is not None:
        location = listings.own_location(session, practitioner, location_id)
        if location is None:
            abort(404)
    form = LocationForm(obj=location)
    if request.method == "GET":
        if location is None:
            form.country.data = current_app.config["REFERRAL_DEFAULT_COUNTRY"]
        else:
            for day, text in listings.format_opening_hours(location.opening_hours).items():
                getattr(form, day).data = text
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            data = {
                **form.data,
                "opening_hours": {day: form.data[day] for day in listings.DAYS},
            }
            try:
                listings.save_location(session, practitioner, location, data, current_app.config)
            except InvalidInput as exc:
                session.rollback()
                _show_error(form, exc)
                status = 400
            else:
                review = practitioner.status == "pending"
                flash(
                    "Location saved." + (" Your listing will be checked again." if review else "")
                )
                return redirect(url_for("referral.listing"))
        else:
            status = 400
    return render_template(
        "referral/account/location.html", form=form, location=location, days=listings.DAY_NAMES
    ), status


def location_delete(practitioner: Practitioner, location_id: int) -> Any:
    session = get_session()
    location = listings.own_location(session, practitioner, location_id)
    if location is None:
        abort(404)
    if not ActionForm().validate_on_submit():
        abort(400)
    listings.remove_location(session, practitioner, location)
    flash("Location removed.")
    return redirect(url_for("referral.listing"))
