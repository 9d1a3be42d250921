"""Embedding pages: the admin's "Websites that embed the finder" (allow a clinic's website,
list, remove) and ``{prefix}/for-websites``, where a clinic picks options and copies its snippet.

The rules (what an address must look like, duplicates, how soon a change applies) are in
:mod:`referral.embed_origins`, the snippet and its options in :mod:`referral.embed`; this
module parses the forms and renders the pages. A host's own page can show the same snippet
builder: ``{% include "referral/_embed_builder.html" %}`` (it reads ``request.args``).
"""

from __future__ import annotations

from typing import Any

from flask import (
    Blueprint,
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import Length

from referral import embed, embed_origins
from referral.auth import admin_required
from referral.db import get_session, read_session
from referral.errors import InvalidInput
from referral.forms import ActionForm
from referral.models import Condition, Modality


class EmbedOriginForm(FlaskForm):
    origin = StringField(
        "Website address",
        description="The address of the clinic's website, for example https://clinic.example",
        render_kw={"autocomplete": "url", "inputmode": "url", "spellcheck": "false"},
    )
    note = StringField(
        "Whose website (optional)",
        [Length(max=200, message="Please keep the note under 200 characters.")],
        description="For example the clinic's name, so the list is easy to read later.",
    )


def register(bp: Blueprint) -> None:
    bp.add_url_rule("/for-websites", "for_websites", for_websites)
    bp.add_app_template_global(builder, "referral_embed_builder")
    bp.add_url_rule(
        "/admin/embeds", "admin_embeds", admin_required(embeds), methods=["GET", "POST"]
    )
    bp.add_url_rule(
        "/admin/embeds/<rowid:origin_id>/remove",
        "admin_embed_remove",
        admin_required(remove),
        methods=["POST"],
    )


def _page(form: EmbedOriginForm, status: int = 200) -> Any:
    return render_template(
        "referral/admin/embeds.html",
        form=form,
        post_form=ActionForm(),
        stored=embed_origins.stored(get_session()),
        configured=current_app.config["REFERRAL_EMBED_ORIGINS"],
        refresh=current_app.config["REFERRAL_EMBED_ORIGINS_REFRESH"],
    ), status


def embeds() -> Any:
    form = EmbedOriginForm()
    if not form.is_submitted():
        return _page(form)
    if not form.validate():
        if form.csrf_token.errors:
            form.origin.errors = ["The form expired; please add the website again."]
        return _page(form, 400)
    admin = getattr(current_user, "email", None) or str(current_user.get_id())
    try:
        row = embed_origins.add(
            get_session(), form.origin.data, added_by=admin, note=form.note.data or ""
        )
    except InvalidInput as exc:
        form.origin.errors = [exc.message]
        return _page(form, exc.status)
    flash(f"{row.origin} can now show the finder. Ask the clinic to reload its page.")
    return redirect(url_for("referral.admin_embeds"))


def remove(origin_id: int) -> Any:
    if not ActionForm().validate_on_submit():
        flash("The form expired; please try removing it again.", "error")
        return _page(EmbedOriginForm(formdata=None), 400)
    row = embed_origins.remove(get_session(), origin_id)
    if row is None:
        abort(404)
    flash(f"{row.origin} can no longer show the finder.")
    return redirect(url_for("referral.admin_embeds"))


def builder(**defaults: str) -> dict[str, Any]:
    """What ``referral/_embed_builder.html`` shows for the options in ``request.args`` (or
    ``defaults``, e.g. ``postcode="2000"``, before the form was first sent): the
    choices, the snippet, the script-free iframe, and whether a website asked about
    (``site=``) is allowed yet. Whether one origin is allowed is no secret: every ``/embed/``
    page names them all in its ``frame-ancestors``."""
    session = read_session()
    conditions = session.scalars(select(Condition).order_by(Condition.name)).all()
    modalities = session.scalars(select(Modality).order_by(Modality.name)).all()
    args = request.args if "options" in request.args else defaults
    options = embed.SnippetOptions.from_args(
        args, [c.slug for c in conditions], [m.slug for m in modalities]
    )
    site, site_error, site_allowed = (request.args.get("site") or "").strip(), None, None
    if site:
        try:
            origin = embed_origins.check_origin(
                site, allow_local_http=embed_origins.local_http_allowed()
            )
        except InvalidInput as exc:
            site_error = exc.message
        else:
            site, site_allowed = origin, origin in embed_origins.allowed()
    return {
        "options": options,
        "conditions": conditions,
        "modalities": modalities,
        "snippet": embed.snippet_for_site(**options.data(), title="Find a therapist near you"),
        "frame_url": options.frame_url(),
        "site": site,
        "site_error": site_error,
        "site_allowed": site_allowed,
    }


def for_websites() -> Any:
    """A clinic's page for showing the finder on its own website."""
    return render_template("referral/for_websites.html")
