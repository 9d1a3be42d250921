"""The background sender: delivers the outbox from a thread of the web process.

For the demo and single-process hosts, so mail leaves without a separate worker; it is
on by default (``REFERRAL_BACKGROUND_SENDER``) and production turns it off in favour of
``flask referral send-outbox --loop``. A request never sends: it commits its messages
and :meth:`BackgroundSender.wake` tells the thread, which sends them a moment later, so a
slow or silent mail server holds up the thread, never a page. Several processes each
running one are safe: :func:`referral.outbox.claim` hands each message to one of them.
"""

from __future__ import annotations

import logging
import os
import threading

from flask import Flask

from referral import outbox
from referral.db import close_session, get_session

log = logging.getLogger(__name__)


class BackgroundSender:
    """One daemon thread per process (started on first use, again after a fork)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pid: int | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.app.config["REFERRAL_BACKGROUND_SENDER"])

    def wake(self) -> None:
        """Start the thread if this process has none, and have it make a pass now."""
        if not self.enabled:
            return
        self._ensure_started()
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to end after its current pass and wait up to ``timeout`` seconds."""
        thread, self._thread = self._thread, None
        if thread is None:
            return
        self._stopping.set()
        self._wake.set()
        thread.join(timeout)

    def _ensure_started(self) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
                return
            # a forked worker inherits the object but not the thread: start its own
            self._wake = threading.Event()
            self._stopping = threading.Event()
            self._pid = os.getpid()
            self._thread = threading.Thread(
                target=self._run, name="referral-outbox-sender", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        interval = float(self.app.config["REFERRAL_BACKGROUND_SENDER_INTERVAL"])
        wake, stopping = self._wake, self._stopping
        while not stopping.is_set():
            wake.wait(interval)
            wake.clear()
            if not stopping.is_set():
                self.deliver_once()

    def deliver_once(self) -> outbox.DeliveryReport | None:
        """One pass, in an app context of its own; a failure is logged and the thread goes on."""
        with self.app.app_context():
            try:
                report = outbox.deliver_due(get_session(), self.app.config)
            except Exception:  # e.g. the database restarting: the next pass tries again
                log.exception("background outbox pass failed")
                return None
            finally:
                close_session()
        if report.sent or report.failed:
            log.info("background outbox pass: %s", report)
        return report
