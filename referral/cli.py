"""``flask referral ...``: schema, postcodes, demo data, admins, import/export, outbox,
purge, index upkeep."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import click
from flask import current_app
from flask.cli import with_appcontext
from sqlalchemy import func, select

from referral import migrate, outbox, referrals, search
from referral.db import get_engine, get_session
from referral.errors import InvalidInput
from referral.geo import geocode, postcodes
from referral.models import Postcode
from referral.signals import directory_exported


@click.group("referral", help="Manage the referral plugin's database and data.")
def referral_cli() -> None:
    pass


@referral_cli.command("upgrade")
@click.option("--revision", default="head", show_default=True)
@with_appcontext
def upgrade_command(revision: str) -> None:
    """Bring the database to the current schema and sync the taxonomies from config."""
    migrate.upgrade(get_engine(), revision)
    migrate.sync_taxonomy(get_session(), current_app.config)
    click.echo(f"Database at {revision}: {get_engine().url.render_as_string()}")


@referral_cli.command("load-postcodes")
@click.option("--country", default=None, help="Two-letter code; default REFERRAL_DEFAULT_COUNTRY.")
@click.argument(
    "file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@with_appcontext
def load_postcodes_command(country: str | None, file: Path | None) -> None:
    """Load postcode centroids from a GeoNames FILE, or with none the gazetteer shipped for
    the country (Australia: GeoNames, CC BY 4.0), else countrystatecity-postal-codes."""
    country = (country or current_app.config["REFERRAL_DEFAULT_COUNTRY"]).upper()
    session = get_session()
    if file is not None:
        with file.open(encoding="utf-8") as stream:
            count = postcodes.load_centroids(
                session,
                postcodes.parse_geonames(stream),
                source=f"GeoNames {file.name}"[:60],
                country=country,
            )
    else:
        try:
            centroids, source = postcodes.default_centroids(country)
            count = postcodes.load_centroids(session, centroids, source=source, country=country)
        except RuntimeError as exc:
            raise click.ClickException(str(exc)) from None
    if count == 0:
        raise click.ClickException(f"No postcodes found for {country}.")
    click.echo(f"Loaded {count} postcodes for {country}.")


@referral_cli.command("optimize")
@with_appcontext
def optimize_command() -> None:
    """Lay the search index out for reading after a bulk import (see search.optimize)."""
    search.optimize(get_session())
    click.echo("Search index laid out and statistics refreshed.")


@referral_cli.command("demo")
@click.option("--practitioners", default=360, show_default=True)
@click.option("--seed", default=7, show_default=True)
@with_appcontext
def demo_command(practitioners: int, seed: int) -> None:
    """Seed a realistic demo directory around Australian cities (idempotent)."""
    from referral.demo import seed_demo

    session = get_session()
    shipped = session.scalar(
        select(func.count(Postcode.id)).where(
            Postcode.country == "AU", Postcode.source == postcodes.SHIPPED_SOURCE
        )
    )
    if not shipped:  # the whole gazetteer, so every suburb a visitor types is found offline
        count = postcodes.load_centroids(
            session, postcodes.shipped_centroids("AU"), source=postcodes.SHIPPED_SOURCE
        )
        click.echo(f"Loaded {count} Australian localities (GeoNames).")
    created = seed_demo(session, practitioners=practitioners, seed=seed)
    click.echo(f"Demo directory: {created} practitioners added.")


@referral_cli.command("send-outbox")
@click.option("--loop", is_flag=True, help="Keep running as a worker, every --interval seconds.")
@click.option("--interval", default=5.0, show_default=True, help="Seconds between passes.")
@click.option("--limit", type=int, default=None, help="Messages per pass (default from config).")
@click.option(
    "--now",
    "retry",
    is_flag=True,
    help="First make every waiting message due now (after an outage, like postqueue -f).",
)
@click.option("--passes", type=int, default=None, hidden=True)
@with_appcontext
def send_outbox_command(
    loop: bool, interval: float, limit: int | None, retry: bool, passes: int | None
) -> None:
    """Deliver due outbox messages (emails, webhooks) once, or keep doing it with --loop;
    say what is still waiting and when it is next tried."""
    session = get_session()
    config = current_app.config
    if retry:
        click.echo(f"{outbox.retry_now(session)} waiting messages are due now.")

    def deliver() -> outbox.DeliveryReport:
        return outbox.deliver_due(session, config, limit=limit)

    if not loop:
        report = deliver()
        click.echo(f"{report}; {outbox.waiting(session).describe()}.")
        return
    click.echo(f"Delivering the outbox every {interval:g}s; Ctrl+C stops.")
    try:
        outbox.run_worker(deliver, interval=interval, passes=passes, echo=click.echo)
    except KeyboardInterrupt:
        click.echo("Stopped.")


@referral_cli.command("sweep")
@click.option(
    "--now",
    "at",
    default=None,
    help="Run as if it were this time (ISO 8601; UTC unless it names an offset).",
)
@click.option("--loop", is_flag=True, help="Keep running, every --interval seconds.")
@click.option("--interval", default=300.0, show_default=True, help="Seconds between passes.")
@click.option("--passes", type=int, default=None, hidden=True)
@with_appcontext
def sweep_command(at: str | None, loop: bool, interval: float, passes: int | None) -> None:
    """Remind practitioners of unopened referrals, expire unanswered ones (offering the
    patient others) and bring weekly caps in step. Running it twice sends nothing twice."""
    from datetime import UTC, datetime

    from referral import sweep
    from referral.models import utcnow

    fixed = None
    if at is not None:
        try:
            fixed = datetime.fromisoformat(at)
        except ValueError:
            raise click.BadParameter(
                f"{at!r} is not an ISO 8601 time such as 2026-12-02T09:00:00+11:00.",
                param_hint="--now",
            ) from None
        if fixed.tzinfo is not None:
            fixed = fixed.astimezone(UTC).replace(tzinfo=None)
    session = get_session()
    config = current_app.config

    def run() -> sweep.SweepReport:
        return sweep.sweep(session, config, fixed or utcnow())

    if not loop:
        click.echo(f"{run()}.")
        return
    click.echo(f"Sweeping every {interval:g}s; Ctrl+C stops.")
    try:
        sweep.run_loop(run, interval=interval, passes=passes, echo=click.echo)
    except KeyboardInterrupt:
        click.echo("Stopped.")


@referral_cli.command("purge")
@click.option(
    "--older-than",
    "days",
    type=click.IntRange(min=1),
    required=True,
    help="Delete referrals not changed for this many days.",
)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@with_appcontext
def purge_command(days: int, yes: bool) -> None:
    """Delete old referrals with their events and messages (health data is kept no longer
    than needed), delivered or failed outbox messages older than
    REFERRAL_OUTBOX_RETENTION_DAYS (their text holds reset and confirmation links), and
    geocode cache rows past REFERRAL_GEOCODE_CACHE_DAYS / _NOT_FOUND_DAYS (typed places)."""
    retention = int(current_app.config["REFERRAL_OUTBOX_RETENTION_DAYS"])
    if not yes:
        click.confirm(
            f"Delete referrals not changed for {days} days, and sent or failed messages "
            f"older than {retention} days?",
            abort=True,
        )
    session = get_session()
    count = referrals.purge(session, timedelta(days=days))
    messages = outbox.purge(session, timedelta(days=retention))
    cached = geocode.purge_cache(session, current_app.config)
    click.echo(f"Purged {count} referrals older than {days} days.")
    click.echo(f"Removed {messages} sent or failed outbox messages older than {retention} days.")
    click.echo(f"Removed {cached} expired geocode cache entries.")


@referral_cli.command("create-admin")
@click.argument("email")
@click.option(
    "--password",
    prompt=True,
    hide_input=True,
    confirmation_prompt=True,
    help="Asked for when not given (never put it in shell history on a shared machine).",
)
@with_appcontext
def create_admin_command(email: str, password: str) -> None:
    """Create an admin account EMAIL (or make an existing account an admin)."""
    from referral.accounts import create_admin

    try:
        user = create_admin(
            get_session(), email, password, int(current_app.config["REFERRAL_PASSWORD_MIN_LENGTH"])
        )
    except InvalidInput as exc:
        raise click.ClickException(exc.message) from None
    click.echo(f"{user.email} is an admin.")


@referral_cli.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--pending", is_flag=True, help="Queue new listings for checking instead of live.")
@with_appcontext
def import_command(file: Path, pending: bool) -> None:
    """Import practitioners from a CSV FILE (see the README for its columns)."""
    from referral.importer import import_csv

    report = import_csv(
        get_session(),
        file.read_bytes(),
        current_app.config,
        status="pending" if pending else "active",
        source=file.name,
    )
    for error in report.errors:
        click.echo(f"{file.name}: {error}", err=True)
    click.echo(f"{file.name}: {report.summary()}.")
    if not report.ok:
        raise SystemExit(1)


@referral_cli.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["hsds", "csv", "fhir"]),
    default="hsds",
    show_default=True,
)
@click.option(
    "--output",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Write here instead of standard output.",
)
@click.option(
    "--base-url",
    help="The directory's public address, for each listing's link "
    "(default for fhir: from REFERRAL_PUBLIC_URL).",
)
@with_appcontext
def export_command(fmt: str, output: Path | None, base_url: str | None) -> None:
    """Export the active directory: Open Referral HSDS 3.0 JSON, CSV in the import format,
    or a FHIR R4 Bundle, each written as it is read, so memory stays flat."""
    from referral import export
    from referral.fhir import directory
    from referral.hsds import document
    from referral.urls import external_url

    if fmt == "fhir" and not base_url:
        if not current_app.config["REFERRAL_PUBLIC_URL"]:
            raise click.ClickException(
                "A FHIR export needs the directory's public address: set "
                "REFERRAL_PUBLIC_URL or give --base-url."
            )
        base_url = external_url("referral.index")
    session = get_session()
    stream = output.open("w", encoding="utf-8", newline="") if output else None

    def write(text: str) -> None:
        if stream is None:
            click.echo(text, nl=False)
        else:
            stream.write(text)

    try:
        if fmt == "hsds":
            for chunk in document.chunks(session, base_url=base_url):
                write(chunk)
        elif fmt == "csv":
            export.write_csv(session, _Writer(write))
        else:
            for chunk in directory.bundle_chunks(session, base_url):
                write(chunk)
    finally:
        if stream is not None:
            stream.close()
    if output is not None:
        click.echo(f"Wrote {output}.", err=True)
    directory_exported.send(
        current_app._get_current_object(),
        actor="cli",
        format=fmt,
        destination=output.name if output else "standard output",
    )


@referral_cli.command("digest")
@with_appcontext
def digest_command() -> None:
    """Email admins what waits (listings to check, problem reports), at most once a day,
    and ask practitioners whose details were confirmed REFERRAL_RECONFIRM_AFTER_DAYS ago to
    confirm them again (one request, one reminder): safe to run from cron as often as
    you like."""
    from referral.digest import send_digest
    from referral.reconfirm import send_requests

    sent = send_digest(get_session())
    click.echo(f"Digest queued for {sent} admins." if sent else "No digest needed today.")
    asked = send_requests(get_session())
    click.echo(f"Asked {asked} practitioners to confirm their details.")


class _Writer:
    """A text stream over a ``write`` function (what :mod:`csv` writes to)."""

    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
