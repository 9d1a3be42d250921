"""The plugin's tables, all named ``referral_*`` so they sit beside a host's own.

Aligned with Open Referral HSDS (organization/service/location) and FHIR
(Practitioner, ServiceRequest) so the directory can be exported. Backend-specific
spatial indexes (SQLite R*Tree, PostGIS geography) live in the migrations, not here.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from flask_login import UserMixin
from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    event,
    inspect,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Listing states: only ``active`` listings are shown to the public.
LISTING_STATUSES = ("draft", "pending", "active", "suspended", "rejected")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_token() -> str:
    """An unguessable id for records whose id appears in links (referrals)."""
    return secrets.token_urlsafe(16)


def new_session_token() -> str:
    """A fresh value for :attr:`User.session_token`."""
    return secrets.token_urlsafe(24)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


practitioner_modality = Table(
    "referral_practitioner_modality",
    Base.metadata,
    Column(
        "practitioner_id",
        ForeignKey("referral_practitioner.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("modality_id", ForeignKey("referral_modality.id", ondelete="CASCADE"), primary_key=True),
)

practitioner_condition = Table(
    "referral_practitioner_condition",
    Base.metadata,
    Column(
        "practitioner_id",
        ForeignKey("referral_practitioner.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "condition_id", ForeignKey("referral_condition.id", ondelete="CASCADE"), primary_key=True
    ),
    # the search's filter-first plan starts from a rare condition's practitioners
    Index("ix_referral_practitioner_condition_condition", "condition_id", "practitioner_id"),
)


class Modality(Base):
    __tablename__ = "referral_modality"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))


class Condition(Base):
    __tablename__ = "referral_condition"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))


class HealthFund(Base):
    __tablename__ = "referral_health_fund"
    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(120))


class PractitionerFund(Base):
    """A fund a practitioner is registered with, and their provider number there."""

    __tablename__ = "referral_practitioner_fund"
    # the search's filter-first plan starts from a rare fund's practitioners
    __table_args__ = (Index("ix_referral_practitioner_fund_fund", "fund_id", "practitioner_id"),)
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("referral_practitioner.id", ondelete="CASCADE"), primary_key=True
    )
    fund_id: Mapped[int] = mapped_column(
        ForeignKey("referral_health_fund.id", ondelete="CASCADE"), primary_key=True
    )
    provider_number: Mapped[str | None] = mapped_column(String(40))
    fund: Mapped[HealthFund] = relationship(lazy="joined")


class User(UserMixin, Base):
    """A built-in account: a practitioner managing a listing, or an admin.

    Flask-Login keeps :meth:`get_id` in the session and the remember-me cookie: it is the
    id *and* :attr:`session_token` (Flask-Login's "alternative id"), so replacing the token
    (:func:`referral.accounts.end_sessions`) ends every session and remember cookie made
    before, on every device.
    """

    __tablename__ = "referral_user"
    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime)
    is_admin: Mapped[bool] = mapped_column(Boolean, default=False)
    session_token: Mapped[str] = mapped_column(String(64), default=new_session_token)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)

    def get_id(self) -> str:
        return f"{self.id}:{self.session_token}"


class PractitionerLanguage(Base):
    """A language a practitioner speaks, as its ISO 639 code (see :mod:`referral.languages`);
    kept from ``Practitioner.languages`` on every flush, indexed by code for the search."""

    __tablename__ = "referral_practitioner_language"
    __table_args__ = (Index("ix_referral_practitioner_language_code", "code", "practitioner_id"),)
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("referral_practitioner.id", ondelete="CASCADE"), primary_key=True
    )
    code: Mapped[str] = mapped_column(String(16), primary_key=True)


class Practitioner(Base):
    """A person offering care: HSDS organization+service, FHIR Practitioner."""

    __tablename__ = "referral_practitioner"
    id: Mapped[int] = mapped_column(primary_key=True)
    external_id: Mapped[str | None] = mapped_column(String(120), unique=True)
    user_id: Mapped[int | None] = mapped_column(
        ForeignKey("referral_user.id", ondelete="SET NULL"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    business_name: Mapped[str | None] = mapped_column(String(200))
    bio: Mapped[str] = mapped_column(Text, default="")
    email: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    website: Mapped[str | None] = mapped_column(String(500))
    accreditation_body: Mapped[str | None] = mapped_column(String(200))
    membership_number: Mapped[str | None] = mapped_column(String(80))
    languages: Mapped[list[str]] = mapped_column(JSON, default=list)
    #: the search's "accepting now": kept in step with the capacity below (and the weekly cap)
    #: by :mod:`referral.capacity`
    accepting_new_patients: Mapped[bool] = mapped_column(Boolean, default=True)
    #: what the listing says of new patients (``referral.capacity.STATUSES``), the usual wait
    #: of a waitlist, when the practitioner last confirmed it, and an optional weekly cap
    capacity_status: Mapped[str] = mapped_column(String(20), default="accepting")
    waitlist_weeks: Mapped[int | None] = mapped_column(Integer)
    capacity_confirmed_at: Mapped[datetime | None] = mapped_column(DateTime)
    weekly_referral_cap: Mapped[int | None] = mapped_column(Integer)
    #: an https booking page (Cliniko, Halaxy, Cal.com, ...) offered once a referral is accepted
    booking_url: Mapped[str | None] = mapped_column(String(500))
    telehealth: Mapped[bool] = mapped_column(Boolean, default=False)
    home_visits: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="draft", index=True)
    status_reason: Mapped[str | None] = mapped_column(Text)
    verified_by: Mapped[str | None] = mapped_column(String(254))
    verified_at: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)

    user: Mapped[User | None] = relationship()
    modalities: Mapped[list[Modality]] = relationship(
        secondary=practitioner_modality, order_by=Modality.name
    )
    conditions: Mapped[list[Condition]] = relationship(
        secondary=practitioner_condition, order_by=Condition.name
    )
    funds: Mapped[list[PractitionerFund]] = relationship(cascade="all, delete-orphan")
    language_codes: Mapped[list[PractitionerLanguage]] = relationship(
        cascade="all, delete-orphan", order_by=PractitionerLanguage.code
    )
    locations: Mapped[list[Location]] = relationship(
        back_populates="practitioner", cascade="all, delete-orphan", order_by="Location.id"
    )


class Location(Base):
    """Where a practitioner sees patients (HSDS location)."""

    __tablename__ = "referral_location"
    __table_args__ = (
        Index("ix_referral_location_lat_lon", "lat", "lon"),
        # the largest visit radius bounds every home-visit search (a look-up, not a scan)
        Index("ix_referral_location_visit_radius", "home_visit_radius_km"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("referral_practitioner.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str | None] = mapped_column(String(200))
    street: Mapped[str | None] = mapped_column(String(200))
    suburb: Mapped[str | None] = mapped_column(String(120))
    state: Mapped[str | None] = mapped_column(String(60))
    postcode: Mapped[str | None] = mapped_column(String(20))
    country: Mapped[str] = mapped_column(String(2), default="AU")
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    home_visit_radius_km: Mapped[float | None] = mapped_column(Float)
    opening_hours: Mapped[dict | None] = mapped_column(JSON)

    practitioner: Mapped[Practitioner] = relationship(back_populates="locations")


class Postcode(Base):
    """A postcode (or suburb) centroid, loaded from GeoNames text or an offline package."""

    __tablename__ = "referral_postcode"
    __table_args__ = (
        UniqueConstraint("country", "postcode", "place", name="uq_referral_postcode_key"),
        Index("ix_referral_postcode_place", "country", "place_key"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    country: Mapped[str] = mapped_column(String(2))
    postcode: Mapped[str] = mapped_column(String(20))
    place: Mapped[str] = mapped_column(String(180))
    #: lower-cased place name, for suburb look-up and autocomplete
    place_key: Mapped[str] = mapped_column(String(180))
    state: Mapped[str | None] = mapped_column(String(100))
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    #: GeoNames' accuracy code (1 estimated, 4 geonameid, 6 centroid); ``None`` unknown
    accuracy: Mapped[int | None] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(60))


class GeocodeCache(Base):
    """One answer from a remote geocoder, so each query is fetched once."""

    __tablename__ = "referral_geocode_cache"
    __table_args__ = (UniqueConstraint("country", "query", name="uq_referral_geocode_cache_key"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    query: Mapped[str] = mapped_column(String(300))
    country: Mapped[str] = mapped_column(String(2))
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    label: Mapped[str | None] = mapped_column(String(500))
    provider: Mapped[str] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class ReferralRequest(Base):
    """A request for care (FHIR ServiceRequest). Holds health information: private."""

    __tablename__ = "referral_request"
    id: Mapped[str] = mapped_column(String(32), primary_key=True, default=new_token)
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("referral_practitioner.id", ondelete="CASCADE"), index=True
    )
    referrer_id: Mapped[int | None] = mapped_column(
        ForeignKey("referral_practitioner.id", ondelete="SET NULL"), index=True
    )
    patient_name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    postcode: Mapped[str | None] = mapped_column(String(20))
    condition_id: Mapped[int | None] = mapped_column(
        ForeignKey("referral_condition.id", ondelete="SET NULL")
    )
    message: Mapped[str] = mapped_column(Text, default="")
    urgency: Mapped[str] = mapped_column(String(20), default="routine")
    consent_version: Mapped[str] = mapped_column(String(40))
    consent_at: Mapped[datetime] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(20), default="sent", index=True)
    decline_reason: Mapped[str | None] = mapped_column(Text)
    #: what the patient is told of a decline (``referrals.DECLINE_CATEGORIES``)
    decline_category: Mapped[str | None] = mapped_column(String(40))
    idempotency_key: Mapped[str | None] = mapped_column(String(80), unique=True)
    #: when the practitioner was reminded of it unopened (``referral.sweep``: once)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: the modality slug the patient searched by, if they did (alternatives match it)
    searched_modality: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)
    #: the referral this one was referred on from (:mod:`referral.referon`); that one's
    #: :attr:`referred_to` lists this one
    referred_from_id: Mapped[str | None] = mapped_column(
        ForeignKey("referral_request.id", ondelete="SET NULL"), index=True
    )
    #: the referring practitioner's note to the recipient, when referred on
    referrer_note: Mapped[str | None] = mapped_column(Text)
    #: what came of it, set on completing or referring on (``referon.OUTCOMES``); the
    #: referrer reads it on their sent referrals page, never in an email
    outcome: Mapped[str | None] = mapped_column(String(20))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    #: when the practitioner first opened or answered it, first accepted it, and first
    #: answered it (accept, decline, refer on): kept by ``referrals.transition`` so the
    #: operator's funnel (:mod:`referral.funnel`) reads one table, not the event trail
    viewed_at: Mapped[datetime | None] = mapped_column(DateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime)
    answered_at: Mapped[datetime | None] = mapped_column(DateTime)

    practitioner: Mapped[Practitioner] = relationship(foreign_keys=[practitioner_id])
    referrer: Mapped[Practitioner | None] = relationship(foreign_keys=[referrer_id])
    referred_from: Mapped[ReferralRequest | None] = relationship(
        remote_side=[id], back_populates="referred_to"
    )
    referred_to: Mapped[list[ReferralRequest]] = relationship(
        back_populates="referred_from", order_by="ReferralRequest.created_at"
    )
    condition: Mapped[Condition | None] = relationship()
    events: Mapped[list[ReferralEvent]] = relationship(
        cascade="all, delete-orphan", order_by="ReferralEvent.id"
    )


class ReferralEvent(Base):
    """The audit trail of a referral: who did what, when."""

    __tablename__ = "referral_event"
    id: Mapped[int] = mapped_column(primary_key=True)
    referral_id: Mapped[str] = mapped_column(
        ForeignKey("referral_request.id", ondelete="CASCADE"), index=True
    )
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class OutboxMessage(Base):
    """A message committed with the change that caused it, delivered after commit.

    Waiting: ``sent_at`` and ``failed_at`` unset. ``claimed_at`` is set while a worker
    holds it (``next_attempt_at`` is then the lease's end). ``failed_at`` marks a message
    no attempt will deliver: permanently refused, or out of attempts.
    """

    __tablename__ = "referral_outbox"
    __table_args__ = (Index("ix_referral_outbox_due", "sent_at", "next_attempt_at"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(20), default="email")
    referral_id: Mapped[str | None] = mapped_column(
        ForeignKey("referral_request.id", ondelete="CASCADE"), index=True
    )
    recipient: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str] = mapped_column(String(300), default="")
    body_text: Mapped[str] = mapped_column(Text, default="")
    body_html: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime)
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime)
    failed_at: Mapped[datetime | None] = mapped_column(DateTime)
    #: the email's ``Message-ID``, the same on every attempt, so a repeat is recognisable
    message_id: Mapped[str | None] = mapped_column(String(255))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class EmbedOrigin(Base):
    """A website an operator allowed to show the finder in a frame (admin page "Websites
    that embed the finder"); used with ``REFERRAL_EMBED_ORIGINS`` by :mod:`referral.embed_origins`.

    ``origin`` is normalised (``https://clinic.example``, lower case, no default port).
    """

    __tablename__ = "referral_embed_origin"
    id: Mapped[int] = mapped_column(primary_key=True)
    origin: Mapped[str] = mapped_column(String(300), unique=True)
    #: the operator's note of whose site this is, e.g. the clinic's name
    note: Mapped[str] = mapped_column(String(200), default="")
    added_by: Mapped[str] = mapped_column(String(254), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class AuditEvent(Base):
    """One thing an admin, an import or an export did (see :mod:`referral.audit`).

    ``changes`` maps each changed field to ``[before, after]``; it never holds health
    information or a patient's details: referrals appear here, if at all, by id.
    """

    __tablename__ = "referral_audit_event"
    __table_args__ = (Index("ix_referral_audit_event_object", "object_type", "object_id"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)
    #: who: an account's email, ``cli`` for a command, ``anonymous`` for a visitor
    actor: Mapped[str] = mapped_column(String(254), index=True)
    actor_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40), index=True)
    object_type: Mapped[str] = mapped_column(String(40))
    object_id: Mapped[str | None] = mapped_column(String(64))
    changes: Mapped[dict] = mapped_column(JSON, default=dict)
    note: Mapped[str | None] = mapped_column(Text)


#: what a visitor may say is wrong with a listing
REPORT_KINDS = ("address", "phone", "hours", "closed", "not_qualified", "other")
REPORT_STATUSES = ("open", "resolved", "dismissed")


class ProblemReport(Base):
    """A visitor's "these details are wrong" about a listing, waiting for an admin.

    The reporter's email is optional and shown only to admins (to ask them more)."""

    __tablename__ = "referral_problem_report"
    id: Mapped[int] = mapped_column(primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("referral_practitioner.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(20))
    note: Mapped[str] = mapped_column(Text, default="")
    reporter_email: Mapped[str | None] = mapped_column(String(254))
    status: Mapped[str] = mapped_column(String(20), default="open", index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    handled_at: Mapped[datetime | None] = mapped_column(DateTime)
    handled_by: Mapped[str | None] = mapped_column(String(254))

    practitioner: Mapped[Practitioner] = relationship()


@event.listens_for(Session, "before_flush")
def _keep_language_codes(session: Session, _context: Any, _instances: Any) -> None:
    """Keep ``Practitioner.language_codes`` in step with the names in ``languages`` on every
    ORM write; a bulk load that skips the ORM calls ``referral.search.refresh_after_bulk_load``."""
    from referral.languages import codes_of

    for obj in (*session.new, *session.dirty):
        if not isinstance(obj, Practitioner):
            continue
        if obj in session.new or inspect(obj).attrs.languages.history.has_changes():
            codes = codes_of(obj.languages or [])
            if [row.code for row in obj.language_codes] != codes:
                obj.language_codes = [PractitionerLanguage(code=code) for code in codes]
