"""Expiry inside the service: cards past their expiry are marked expired on a timer.

A card carries its own expiry, so counters refuse it on time whatever the registry says; the
registry's state only has to follow (the console, the audit log and renewals read it). The
service does it itself every ``expire_cards_every_minutes`` (first shortly after start), in
transactions of at most :data:`PER_TRANSACTION` cards so that a backlog never holds the write
lock for long. Several instances may run it at once: the rows are locked and re-checked, so a
card is expired once. ``fmcard db expire-cards`` does the same by hand or from cron.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from sqlalchemy.engine import Engine

from cardissuer.core.db import optimize, session_scope
from cardissuer.services.cards import expire_cards

log = logging.getLogger("fmcard.expiry")

PER_TRANSACTION = 500
FIRST_RUN_AFTER_S = 5.0


def expire_all(engine: Engine, *, at: datetime | None = None) -> int:
    """Expire every card past its expiry, :data:`PER_TRANSACTION` at a time; return how many."""
    at = at or datetime.now(UTC)
    total = 0
    while True:  # until a round finds nothing left (a card changed meanwhile is not counted)
        with session_scope(engine) as session:
            count = expire_cards(session, at=at, limit=PER_TRANSACTION)
        if count == 0:
            return total
        total += count


class ExpiryTimer:
    """A daemon thread that runs :func:`expire_all` every ``every_s`` seconds until stopped."""

    def __init__(
        self,
        engine: Engine,
        *,
        every_s: float,
        first_after_s: float = FIRST_RUN_AFTER_S,
        name: str = "fmcard-expiry",
    ) -> None:
        if every_s <= 0:
            raise ValueError("every_s must be positive")
        self._engine = engine
        self._every_s = every_s
        self._first_after_s = first_after_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        wait = self._first_after_s
        while not self._stop.wait(wait):
            wait = self._every_s
            try:
                self.round()
            except Exception as exc:  # the next round tries again; say why without any data
                log.error("a %s round failed: %s", self._thread.name, type(exc).__name__)

    def round(self) -> None:
        """One round of the timer's work (a subclass does other work on the same clock)."""
        count = expire_all(self._engine)
        # Statistics that a day of registrations made stale are refreshed here too.
        optimize(self._engine)
        if count:
            log.info("marked %d card(s) expired", count)
