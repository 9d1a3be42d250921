"""Fixtures: ``app``, ``client``, ``runner``, ``session``, data builders, a real SMTP
server (``smtp_server``, aiosmtpd on 127.0.0.1) with ``closed_port`` for a server that is down,
``redis_limits``: the rate limits in the real Redis at ``REFERRAL_TEST_REDIS_URL``, and
``serve``: the demo app under gunicorn in processes of its own, on the test's database.

Requests never send mail: they commit it to the outbox. Test apps have the background
sender off, and reading what ``smtp_server`` received first runs one outbox pass for each
app the test made that sends to it, as the ``send-outbox`` worker would (the real
:func:`referral.outbox.deliver_due`).

The database is real: a SQLite file per test (copied from one migrated template), or
PostgreSQL + PostGIS when ``REFERRAL_TEST_DATABASE_URL`` is set (migrated once, tables
emptied between tests).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
import redis
from aiosmtpd.controller import Controller
from flask import Flask
from flask_login import FlaskLoginClient
from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session
from werkzeug.security import generate_password_hash

from referral import migrate, outbox
from referral.config import DEFAULT_CONDITIONS, DEFAULT_FUNDS, DEFAULT_MODALITIES
from referral.db import get_session, make_engine
from referral.geo import postcodes
from referral.models import Base, Condition, Location, Modality, Practitioner, User, utcnow
from wsgi import create_app

DATA = Path(__file__).parent / "data"
PG_URL = os.environ.get("REFERRAL_TEST_DATABASE_URL")
#: a Redis database the tests may write to (`make test` passes it; never flushed)
REDIS_URL = os.environ.get("REFERRAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
TAXONOMY = {
    "REFERRAL_MODALITIES": DEFAULT_MODALITIES,
    "REFERRAL_CONDITIONS": DEFAULT_CONDITIONS,
    "REFERRAL_FUNDS": DEFAULT_FUNDS,
}


def _seed(engine: Engine) -> None:
    with Session(engine) as session:
        migrate.sync_taxonomy(session, TAXONOMY)
        with (DATA / "geonames_sample.txt").open(encoding="utf-8") as stream:
            postcodes.load_centroids(session, postcodes.parse_geonames(stream), source="test")


@pytest.fixture(scope="session")
def _template_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, seeded database made once per run."""
    if PG_URL:
        engine = make_engine(PG_URL)
        with engine.begin() as conn:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(text(f'DROP TABLE IF EXISTS "{table.name}" CASCADE'))
            conn.execute(text(f"DROP TABLE IF EXISTS {migrate.VERSION_TABLE}"))
            for name in migrate.SPATIAL_TABLES:
                conn.execute(text(f"DROP TABLE IF EXISTS {name} CASCADE"))
        migrate.upgrade(engine)
        engine.dispose()
        yield PG_URL
    else:
        path = tmp_path_factory.mktemp("template") / "referral.sqlite"
        engine = make_engine(f"sqlite:///{path}")
        migrate.upgrade(engine)
        _seed(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        yield str(path)


@pytest.fixture
def database_url(_template_db: str, tmp_path: Path) -> str:
    """A fresh, migrated and seeded database for one test."""
    if PG_URL:
        engine = make_engine(PG_URL)
        names = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
        with engine.begin() as conn:
            conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        _seed(engine)
        engine.dispose()
        return PG_URL
    path = tmp_path / "referral.sqlite"
    shutil.copy(_template_db, path)
    return f"sqlite:///{path}"


@pytest.fixture(autouse=True)
def _no_demo_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Apps made in tests never read the worktree's own instance/demo.cfg (written by
    ``make demo``): each test gets an empty instance folder of its own."""
    import wsgi

    folder = tmp_path / "instance"
    folder.mkdir(exist_ok=True)
    monkeypatch.setattr(wsgi, "INSTANCE", folder)


@pytest.fixture
def test_apps() -> list[Flask]:
    """Every app ``make_app`` built in this test."""
    return []


@pytest.fixture
def make_app(
    database_url: str, tmp_path: Path, test_apps: list[Flask]
) -> Iterator[Callable[..., Flask]]:
    """Build the demo host app with extra config; engines are disposed afterwards."""
    apps = test_apps

    def factory(**config: Any) -> Flask:
        settings = {
            "TESTING": True,
            "SECRET_KEY": "test",
            "REFERRAL_DATABASE_URL": database_url,
            # no test reaches the internet: geocoder tests point it at a local server
            "REFERRAL_GEOCODER": None,
            # the smtp_server fixture runs the outbox when a test reads it (see above)
            "REFERRAL_BACKGROUND_SENDER": False,
            **config,
        }
        app = create_app(settings)
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.extensions["referral"].engine.dispose()


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()


@pytest.fixture
def client(app: Flask):
    return app.test_client()


@pytest.fixture
def runner(app: Flask):
    return app.test_cli_runner()


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """The plugin's own session inside an app context."""
    with app.app_context():
        yield app.extensions["referral"].ext.session


@pytest.fixture
def unbound_session(app: Flask) -> Iterator[Session]:
    """A session on the app's engine with no app context held open, so each test request
    gets its own app context and ``g`` (signed-in user, CSRF token), as in production.
    Override ``session`` with it in modules that sign in or use several clients."""
    with Session(app.extensions["referral"].engine, expire_on_commit=False) as session:
        yield session


@pytest.fixture
def add_practitioner(session: Session) -> Callable[..., Practitioner]:
    """Create a practitioner with one location per ``(lat, lon)`` and commit."""

    def build(
        name: str,
        *points: tuple[float, float],
        modalities: tuple[str, ...] = ("remedial-massage",),
        conditions: tuple[str, ...] = (),
        status: str = "active",
        **fields: Any,
    ) -> Practitioner:
        practitioner = Practitioner(
            name=name,
            status=status,
            modalities=list(session.scalars(select(Modality).where(Modality.slug.in_(modalities)))),
            conditions=list(
                session.scalars(select(Condition).where(Condition.slug.in_(conditions)))
            ),
            locations=[
                Location(lat=lat, lon=lon, country="AU", suburb=f"{name} suburb")
                for lat, lon in points
            ],
            **fields,
        )
        session.add(practitioner)
        session.commit()
        return practitioner

    return build


@dataclass
class ReceivedMail:
    """One message as the SMTP server got it: envelope and parsed content."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    #: whether it came over TLS (STARTTLS or SMTPS)
    tls: bool = False

    @property
    def text(self) -> str:
        return self.message.get_body(("plain",)).get_content()

    @property
    def html(self) -> str | None:
        part = self.message.get_body(("html",))
        return part.get_content() if part is not None else None


@dataclass
class SMTPServer:
    host: str
    port: int
    #: apps whose outbox a read of :attr:`received` delivers first
    apps: list[Flask] = field(default_factory=list)
    _received: list[ReceivedMail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: recipients answered with "550 no such user"
    refuse: set[str] = field(default_factory=set)

    @property
    def received(self) -> list[ReceivedMail]:
        """What arrived, after one outbox pass of every test app that mails this server."""
        self.run_outbox()
        return self._received

    @property
    def handler(self) -> _Handler:
        """What aiosmtpd calls (kept apart: aiosmtpd reads every attribute of its handler)."""
        return _Handler(self)

    def run_outbox(self) -> None:
        for app in self.apps:
            if app.config["REFERRAL_SMTP_PORT"] == self.port:
                with app.app_context():
                    outbox.deliver_due(get_session(), app.config)

    def to(self, address: str) -> list[ReceivedMail]:
        return [m for m in self.received if address in m.rcpt_tos]

    @property
    def config(self) -> dict[str, Any]:
        return {"REFERRAL_SMTP_HOST": self.host, "REFERRAL_SMTP_PORT": self.port}


@dataclass
class _Handler:
    server: SMTPServer

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.server.refuse:
            return "550 5.1.1 No such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        mail = ReceivedMail(
            envelope.mail_from,
            list(envelope.rcpt_tos),
            message_from_bytes(envelope.content, policy=policy.default),
            tls=server.transport.get_extra_info("ssl_object") is not None,
        )
        with self.server.lock:
            self.server._received.append(mail)
        return "250 Message accepted for delivery"


class _EphemeralController(Controller):
    """aiosmtpd's Controller on port 0: learn the port the OS gave before the self-check."""

    def _trigger_server(self) -> None:
        if self.port == 0:
            self.port = self.server.sockets[0].getsockname()[1]
        super()._trigger_server()


@pytest.fixture
def smtp_server(test_apps: list[Flask]) -> Iterator[SMTPServer]:
    """A real SMTP server on 127.0.0.1 collecting what it receives."""
    server = SMTPServer("127.0.0.1", 0, apps=test_apps)
    controller = _EphemeralController(server.handler, hostname="127.0.0.1", port=0)
    controller.start()
    server.port = controller.port
    yield server
    controller.stop()


class BlackHole:
    """A server on 127.0.0.1 that accepts connections and never says a word."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        self._arrived = threading.Condition()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def connections(self) -> int:
        with self._arrived:
            return len(self._held)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:  # closed
                return
            with self._arrived:
                self._held.append(conn)
                self._arrived.notify_all()

    def wait_for_connections(self, n: int, timeout: float = 10.0) -> bool:
        with self._arrived:
            return self._arrived.wait_for(lambda: len(self._held) >= n, timeout)

    def close(self) -> None:
        self._listener.close()
        with self._arrived:
            for conn in self._held:
                conn.close()


@pytest.fixture
def black_hole() -> Iterator[BlackHole]:
    server = BlackHole()
    yield server
    server.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens: an SMTP server that is down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class RedisLimits:
    """The plugin's rate limits in a real Redis, under a key prefix of this test's own."""

    url: str
    prefix: str
    client: redis.Redis

    @property
    def config(self) -> dict[str, Any]:
        return {
            "REFERRAL_RATELIMIT_STORAGE_URL": self.url,
            "REFERRAL_RATELIMIT_KEY_PREFIX": self.prefix,
        }

    def stored_keys(self) -> list[str]:
        return sorted(k.decode() for k in self.client.scan_iter(f"*{self.prefix}*"))


@pytest.fixture
def redis_limits() -> Iterator[RedisLimits]:
    """Skips, saying why, when no Redis answers at ``REFERRAL_TEST_REDIS_URL``; removes only
    its own keys afterwards, so runs in parallel do not meet."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {REDIS_URL} (REFERRAL_TEST_REDIS_URL): {exc}")
    limits = RedisLimits(REDIS_URL, f"referral-test-{uuid.uuid4().hex}", client)
    yield limits
    for key in limits.stored_keys():
        client.delete(key)
    client.close()


@dataclass
class ServerProcess:
    """One server process the ``serve`` fixture started."""

    url: str
    process: subprocess.Popen
    log_path: Path

    @property
    def log(self) -> str:
        """What the server wrote to stderr so far (gunicorn's log and the app's warnings)."""
        return self.log_path.read_text(errors="replace")


@pytest.fixture
def serve(database_url: str, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Start ``gunicorn wsgi:app`` in a process of its own, as production does, on the
    test's database; ``config`` reaches the app as ``FLASK_*`` variables. The socket is
    bound here and handed over (``fd://``), so the port is known and never raced for.
    Every process started is stopped after the test."""
    started: list[ServerProcess] = []
    secret = f"test-secret-{uuid.uuid4().hex}"  # one key: a form from one process posts to another

    def start(*, workers: int = 1, **config: Any) -> ServerProcess:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        # production settings: not testing, so the start-up checks apply
        env = {
            **os.environ,
            "FLASK_SECRET_KEY": secret,
            "FLASK_REFERRAL_PUBLIC_URL": f"http://127.0.0.1:{port}",
            "FLASK_REFERRAL_DATABASE_URL": database_url,
            "FLASK_REFERRAL_GEOCODER": "null",
            "FLASK_REFERRAL_BACKGROUND_SENDER": "false",
        }
        env.pop("WEB_CONCURRENCY", None)
        env.update({f"FLASK_{key}": str(value) for key, value in config.items()})
        log_path = tmp_path / f"server-{port}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [
                    *(sys.executable, "-m", "gunicorn", "wsgi:app"),
                    *("--workers", str(workers), "--bind", f"fd://{listener.fileno()}"),
                ],
                cwd=Path(__file__).parent.parent,
                env=env,
                pass_fds=(listener.fileno(),),
                stdout=subprocess.DEVNULL,
                stderr=log,
            )
        listener.close()
        server = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
        started.append(server)
        _wait_until_serving(server, workers)
        return server

    yield start
    for server in started:
        server.process.terminate()
        try:
            server.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.process.kill()
            server.process.wait()


def _wait_until_serving(server: ServerProcess, workers: int) -> None:
    """Until a page answers and every worker has booted (each logs "Booting worker")."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"the server exited with {server.process.returncode}:\n{server.log}")
        try:
            with urllib.request.urlopen(f"{server.url}/find-a-therapist/", timeout=5):
                if server.log.count("Booting worker") >= workers:
                    return
        except OSError:
            pass
        time.sleep(0.1)
    pytest.fail(f"the server did not answer within 60 s:\n{server.log}")


# --- accounts: real forms with their CSRF tokens, real password hashes -----------------

LOGIN_URL = "/find-a-therapist/account/login"
PASSWORD = "a long enough secret"
_CSRF = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


def csrf_token(client, url: str) -> str:
    """The CSRF token of the form at ``url`` (the session cookie stays in ``client``)."""
    html = client.get(url).get_data(as_text=True)
    match = _CSRF.search(html)
    assert match, f"no CSRF token on {url}"
    return match.group(1)


def post_form(client, url: str, data: dict, *, form_url: str | None = None, **kwargs: Any):
    """Submit a form the way a browser does: fetch it, then post with its CSRF token."""
    token = csrf_token(client, form_url or url)
    return client.post(url, data={"csrf_token": token, **data}, **kwargs)


def sign_in(client, email: str, password: str = PASSWORD):
    return post_form(client, LOGIN_URL, {"email": email, "password": password})


@pytest.fixture
def make_account(session: Session) -> Callable[..., User]:
    """A verified built-in account, by default with a draft listing."""

    def build(
        email: str,
        *,
        password: str = PASSWORD,
        admin: bool = False,
        verified: bool = True,
        listing: bool = True,
        **fields: Any,
    ) -> User:
        user = User(
            email=email,
            password_hash=generate_password_hash(password),
            is_admin=admin,
            email_verified_at=utcnow() if verified else None,
        )
        session.add(user)
        session.flush()
        if listing:
            fields.setdefault("name", email.split("@")[0].title())
            fields.setdefault("status", "draft")
            session.add(Practitioner(user_id=user.id, email=email, **fields))
        session.commit()
        return user

    return build


@pytest.fixture
def login_client(app: Flask) -> Callable[[User | None], Any]:
    """A test client signed in as ``user`` through Flask-Login's own session path."""
    app.test_client_class = FlaskLoginClient

    def build(user: User | None) -> Any:
        return app.test_client(user=user) if user is not None else app.test_client()

    return build


@pytest.fixture
def add_account(make_account: Callable[..., User]) -> Callable[..., User]:
    """A built-in account without a listing; link one with ``practitioner.user_id``."""

    def build(email: str, *, admin: bool = False) -> User:
        return make_account(email, admin=admin, listing=False)

    return build
