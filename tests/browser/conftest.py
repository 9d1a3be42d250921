"""Browser fixtures: live servers, Debian's chromium through Playwright, axe and screenshots.

Every test here is marked ``browser`` (``make test`` runs them in the SQLite pass only). When
Playwright or chromium cannot run, the tests skip saying so; nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
AXE = ROOT / "tests" / "vendor" / "axe.min.js"
ARTIFACTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("REFERRAL_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    # a name that is not localhost, for the "not a secure context" test
    "--host-resolver-rules=MAP clinic.test 127.0.0.1",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}
LOCAL_HOSTS = {"127.0.0.1", "localhost"}


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("browser tests need Playwright: pip install 'referral[test]'")
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"browser tests need chromium at {CHROMIUM} (apt-get install chromium)")
    manager = sync_playwright().start()
    try:
        launched = manager.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Error as exc:
        manager.stop()
        pytest.skip(f"chromium at {CHROMIUM} could not start: {exc.message.splitlines()[0]}")
    yield launched
    launched.close()
    manager.stop()


def _only_this_machine(route: Any) -> None:
    """Tests never reach the network: anything not on 127.0.0.1 is refused."""
    if urlsplit(route.request.url).hostname in LOCAL_HOSTS:
        route.continue_()
    else:
        route.abort()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Any]]:
    contexts: list[Any] = []

    def open_page(**options: Any) -> Any:
        context = browser.new_context(viewport=DESKTOP, **options)
        context.route("**/*", _only_this_machine)
        context.set_default_timeout(10_000)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(new_page: Callable[..., Any]) -> Any:
    return new_page()


class LiveServer:
    """A WSGI app on 127.0.0.1 with an ephemeral port, served from a thread."""

    def __init__(self, wsgi_app: Any) -> None:
        self._server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        self.origin = f"http://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return self.origin + path

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)


@pytest.fixture
def serve() -> Iterator[Callable[[Any], LiveServer]]:
    servers: list[LiveServer] = []

    def start(wsgi_app: Any) -> LiveServer:
        server = LiveServer(wsgi_app)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def blank_tile() -> bytes:
    """A 256x256 light grey PNG: the map's tiles come from the live server, not the network."""
    raw = b"".join(b"\x00" + b"\xe8\xeb\xee" * 256 for _ in range(256))

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 256, 256, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


TILE = blank_tile()
TILE_CONFIG = {"REFERRAL_MAP_TILE_URL": "/test-tiles/{z}/{x}/{y}.png"}


@pytest.fixture
def demo_site(make_app: Callable[..., Any], serve: Callable[[Any], LiveServer]):
    """Start the demo clinic site (its own temp database) live; keyword args are config."""

    def start(**config: Any) -> LiveServer:
        app = make_app(**{**TILE_CONFIG, **config})
        app.add_url_rule(
            "/test-tiles/<int:z>/<int:x>/<int:y>.png",
            "test_tile",
            lambda z, x, y: (TILE, 200, {"Content-Type": "image/png"}),
        )
        return serve(app)

    return start


@pytest.fixture
def directory(add_practitioner: Callable[..., Any]) -> dict[str, Any]:
    """A small directory around Sydney (postcode 2000 is at -33.8675, 151.207)."""
    made = {
        "nina": add_practitioner(
            "Nina Near", (-33.8700, 151.2100), bio="Deep tissue and remedial massage."
        ),
        "pete": add_practitioner(
            "Pete Physio", (-33.8800, 151.2000), modalities=("physiotherapy",)
        ),
        "olga": add_practitioner("Olga Osteo", (-33.8900, 151.1900), modalities=("osteopathy",)),
        "yara": add_practitioner("Yara Yoga", (-33.8500, 151.2300), modalities=("yoga",)),
        "milo": add_practitioner(
            "Milo Mid", (-33.8150, 151.0010), modalities=("physiotherapy", "remedial-massage")
        ),
    }
    return made


def _axe(target: Any) -> list[dict[str, Any]]:
    if not target.evaluate("() => typeof window.axe !== 'undefined'"):
        # evaluated through the DevTools protocol, which the page's CSP does not govern; a
        # <script> tag (add_script_tag) would be refused like any other inline script
        target.evaluate(AXE.read_text(encoding="utf-8"))
    result = target.evaluate(
        """async () => {
            const r = await axe.run(document, {iframes: false, resultTypes: ['violations']});
            return r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                nodes: v.nodes.map(n => n.target.join(' ')).slice(0, 5)}));
        }"""
    )
    return result


def _let_embed_frame_fit(page: Any) -> None:
    """After a resize, wait (up to 2 s) for an embed frame to report its new height, so the
    screenshot shows the frame as a visitor sees it once it has settled."""
    page.wait_for_timeout(150)
    element = page.query_selector("iframe.referral-embed-frame")
    frame = element.content_frame() if element else None
    for _ in range(20):
        if frame is None:
            return
        content = frame.evaluate("() => Math.ceil(document.body.getBoundingClientRect().height)")
        if abs(element.bounding_box()["height"] - content) <= 2:
            return
        page.wait_for_timeout(100)


def _show_whole_page(page: Any) -> None:
    """A cross-site embed frame is painted by its own process, which a full-page screenshot
    does not wait for: grow the window to the whole page first and let the frame paint."""
    if page.query_selector("iframe.referral-embed-frame") is None:
        return
    width = page.viewport_size["width"]
    height = page.evaluate("() => document.documentElement.scrollHeight")
    page.set_viewport_size({"width": width, "height": min(height, 8000)})
    page.wait_for_timeout(300)


@pytest.fixture
def audit() -> Callable[..., list[dict[str, Any]]]:
    """Run axe-core on a page (or frame) and save phone and desktop screenshots.

    Artefacts: ``test-artifacts/screenshots/NAME-{phone,desktop}.png`` and every violation,
    whatever its impact, in ``test-artifacts/axe/NAME.json``.

    Fails on serious or critical violations; returns the lesser ones for a test to look at.
    """

    def check(page: Any, name: str, *, frame: Any = None) -> list[dict[str, Any]]:
        violations = _axe(frame or page)
        bad = [v for v in violations if v["impact"] in ("serious", "critical")]
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        report = ARTIFACTS.parent / "axe" / f"{name}.json"
        report.parent.mkdir(exist_ok=True)
        report.write_text(json.dumps(violations, indent=1), encoding="utf-8")
        size = page.viewport_size
        for label, viewport in (("phone", PHONE), ("desktop", DESKTOP)):
            page.set_viewport_size(viewport)
            _let_embed_frame_fit(page)
            _show_whole_page(page)
            page.screenshot(path=str(ARTIFACTS / f"{name}-{label}.png"), full_page=True)
        page.set_viewport_size(size)
        assert bad == [], f"axe found serious/critical problems on {name}: {bad}"
        return violations

    return check
