"""The phone-card steps of the verifier (``docs/FORMAT.md`` section 11).

:func:`open_presentation` checks the disclosures against the card's signed digests (step
10, DISCLOSURE_INVALID); :func:`judge_proof` decides whether the presentation is live, and
if not, which refusal makes it a copy (step 13). Both run only on a card whose issuer
signature has checked out.
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from keys.phone import proof_verifies
from schemas.card import Card
from schemas.disclosure import Opened, open_disclosures, unpack_disclosures
from schemas.errors import EncodingError, InvalidClaimError
from schemas.presentation import Proof, card_digest
from verifier._qr import Rejection, ScannedCard
from verifier.reason import Reason

DEFAULT_PROOF_SKEW = timedelta(seconds=15)
MAX_PROOF_SKEW = timedelta(seconds=60)


class ReplayMemory:
    """What a counter remembers of the live presentations it accepted: ``(card digest,
    service, slot)`` until the proof's window has passed. Optional (``docs/FORMAT.md`` 11.4):
    it refuses the same proof shown twice to this counter (PROOF_REPLAYED); it cannot see
    another counter's scans. Safe to share between threads; holds no personal data."""

    def __init__(self) -> None:
        self._seen: dict[tuple[bytes, str, int], datetime] = {}
        self._lock = threading.Lock()

    def seen(self, key: tuple[bytes, str, int], *, until: datetime, at: datetime) -> bool:
        """Record ``key`` until ``until``; return whether it was already recorded (one step,
        so two concurrent scans of one proof cannot both pass)."""
        with self._lock:
            self._forget(at)
            if key in self._seen:
                return True
            self._seen[key] = until
            return False

    def contains(self, key: tuple[bytes, str, int], *, at: datetime) -> bool:
        """Whether ``key`` is recorded and its window has not passed at ``at``."""
        with self._lock:
            self._forget(at)
            return key in self._seen

    def _forget(self, at: datetime) -> None:
        for old in [k for k, end in self._seen.items() if end <= at]:
            del self._seen[old]

    def __len__(self) -> int:
        return len(self._seen)


def open_presentation(scanned: ScannedCard, card: Card) -> Opened:
    """Step 10 for ``FM2:``: the disclosures part, each digest signed, values valid."""
    try:
        return open_disclosures(card, unpack_disclosures(scanned.attachments[0]))
    except (EncodingError, InvalidClaimError) as exc:
        raise Rejection(Reason.DISCLOSURE_INVALID, f"disclosures: {exc}") from None


def judge_proof(
    scanned: ScannedCard,
    card: Card,
    *,
    service: str,
    max_age: timedelta,
    skew: timedelta,
    at: datetime,
) -> Rejection | tuple[tuple[bytes, str, int], datetime]:
    """Return, for a live presentation, what a replay memory keeps and until when; for a
    copy, the rejection that says why."""
    if len(scanned.attachments) < 2:
        return Rejection(Reason.PROOF_MISSING, "a phone card without a device proof")
    try:
        proof = Proof.from_bytes(scanned.attachments[1])
    except EncodingError as exc:
        return Rejection(Reason.PROOF_INVALID, str(exc))
    digest = card_digest(scanned.header_bytes, scanned.payload, scanned.signature)
    assert card.holder_key is not None  # noqa: S101 - a version-2 card always has one
    if not proof_verifies(
        card.holder_key["jwk"],
        proof,
        card=digest,
        disclosures=scanned.attachments[0],
        service=service,
    ):
        detail = "the device proof does not verify for this card, disclosures and service"
        return Rejection(Reason.PROOF_INVALID, detail)
    now = at.timestamp()
    seconds, limit = skew.total_seconds(), (max_age + skew).total_seconds()
    if not proof.starts - seconds <= now < proof.starts + limit:
        side = "future" if now < proof.starts else "past"
        detail = f"the device proof's time slot is outside the window ({side})"
        return Rejection(Reason.PROOF_STALE, detail)
    until = datetime.fromtimestamp(proof.starts + limit, at.tzinfo)
    return (digest, service, proof.slot), until
