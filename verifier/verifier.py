"""The offline verifier: QR text in, a :class:`VerificationResult` out, no network.

Checks, in order (``docs/SECURITY.md`` explains why this order):

1. size and QR container (TOO_LARGE, MALFORMED), header members (MALFORMED), algorithm
   allow-list (UNSUPPORTED_ALGORITHM), then ``zip`` and ``kid`` (MALFORMED);
2. trust list freshness (TRUST_LIST_EXPIRED);
3. key: every trusted key with the header's ``kid`` whose own algorithm is the header's
   (UNKNOWN_KEY), signature over the exact compact JWS with pyjwt (BAD_SIGNATURE), key not
   compromised at verification time (KEY_COMPROMISED);
4. payload: inflate with a cap, split claims and portrait, strict JSON, strict claims
   (MALFORMED); card issuer owns the key and the key's signing window covers the card's
   ``iat`` (UNKNOWN_KEY); no attachments on an ``FM1:`` card (MALFORMED); the disclosures
   of an ``FM2:`` phone card, each signed by a digest (DISCLOSURE_INVALID). The
   presentation level is decided here (live, copy, printed) and reported from now on;
5. dates (NOT_YET_VALID when ``valid_from`` or ``iat`` is later than the verification time
   plus the leeway: a key announced as ``next`` can sign a card dated at its future start,
   which must wait for that start whatever ``valid_from`` says; EXPIRED);
6. status from the bundle's signed list, fresh enough for the policy (STATUS_UNKNOWN,
   REVOKED, SUSPENDED, SUPERSEDED);
7. presentation: a phone card needs a fresh device proof by its ``cnf`` key (PROOF_MISSING,
   PROOF_INVALID, PROOF_STALE, PROOF_REPLAYED: level copy, never accepted); a printed card
   where the policy accepts only live (LIVE_REQUIRED);
8. the counter's service: entitlement present (disclosed) and in its window (NOT_ENTITLED),
   portrait if the policy requires one (PORTRAIT_MISSING).

Nothing before step 3 decompresses or parses the signed payload, so forged input costs a
Base45 decode and at most one signature check per matching key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from jwt.algorithms import Algorithm, ECAlgorithm, OKPAlgorithm

from keys.errors import StatusListError, UnsupportedKeyError
from keys.jwk import EDDSA, ES256, algorithm_of
from keys.jws import signing_input
from keys.phone import device_public_key
from keys.status_list import CardStatus
from keys.trust_list import TrustedIssuer, TrustedKey
from schemas import payload, strictjson
from schemas.card import PHONE_VERSION, Card
from schemas.compression import inflate
from schemas.errors import EncodingError, InvalidClaimError
from schemas.services import SERVICE_CODE_PATTERN
from verifier._presentation import (
    DEFAULT_PROOF_SKEW,
    MAX_PROOF_SKEW,
    ReplayMemory,
    judge_proof,
    open_presentation,
)
from verifier._qr import Rejection, ScannedCard, scan
from verifier.bundle import Bundle
from verifier.errors import VerifierError
from verifier.policy import LocalPolicy, Policy
from verifier.reason import Level, Reason
from verifier.result import CARD_AFTER_CLOCK, STATUS_AFTER_CLOCK, VerificationResult

DEFAULT_LEEWAY = timedelta(seconds=60)
MAX_LEEWAY = timedelta(minutes=10)
"""The largest leeway a verifier takes: also how far ahead of the counter's clock ``sync``
lets a bundle's documents be dated before it refuses them (``docs/COUNTER.md``)."""
DEFAULT_ALGORITHMS = frozenset({ES256, EDDSA})

_PYJWT_ALGORITHMS: dict[str, Algorithm] = {
    ES256: ECAlgorithm(ECAlgorithm.SHA256),
    EDDSA: OKPAlgorithm(),
}
_STATUS_REASONS: dict[int, Reason] = {
    CardStatus.REVOKED: Reason.REVOKED,
    CardStatus.SUSPENDED: Reason.SUSPENDED,
    CardStatus.SUPERSEDED: Reason.SUPERSEDED,
}


@dataclass(frozen=True, slots=True)
class _Verified:
    """A card whose signature checked out, with what is known so far."""

    card: Card
    issuer: TrustedIssuer
    key: TrustedKey
    portrait: bytes | None
    disclosed: frozenset[str] | None = None
    closed: int = 0
    level: Level | None = None
    copy: Rejection | None = None
    """Why a phone card is a copy (step 7), decided early and raised in order."""
    replay: tuple[tuple[bytes, str, int], datetime] | None = None


class Verifier:
    """Verifies cards against one :class:`~verifier.bundle.Bundle`.

    ``algorithms`` is the allow-list (configuration, never taken from the token); ``leeway``
    absorbs clock skew between the issuer and the counter. ``policies`` are the counter's own
    restrictions: they make the bundle's (or the shipped) policy of a service stricter, never
    looser (:mod:`verifier.policy`). ``proof_skew`` is the clock-skew allowance for phone
    cards' device proofs (``docs/FORMAT.md`` 11.4); ``replay_memory``, when given, refuses a
    device proof this verifier already accepted (optional).
    """

    def __init__(
        self,
        bundle: Bundle,
        *,
        leeway: timedelta = DEFAULT_LEEWAY,
        algorithms: frozenset[str] = DEFAULT_ALGORITHMS,
        policies: Iterable[Policy | LocalPolicy] = (),
        proof_skew: timedelta = DEFAULT_PROOF_SKEW,
        replay_memory: ReplayMemory | None = None,
    ) -> None:
        if not bundle.trust_list.issuers or not any(i.keys for i in bundle.trust_list.issuers):
            raise VerifierError("the bundle's trust list names no issuer key")
        if not algorithms or not algorithms <= DEFAULT_ALGORITHMS:
            raise VerifierError(
                f"algorithms must be a non-empty subset of {sorted(DEFAULT_ALGORITHMS)}"
            )
        if not timedelta(0) <= leeway <= MAX_LEEWAY:
            raise VerifierError("leeway must be between 0 and 10 minutes")
        if not timedelta(0) <= proof_skew <= MAX_PROOF_SKEW:
            raise VerifierError("proof_skew must be between 0 and 60 seconds")
        self.proof_skew = proof_skew
        self.replay_memory = replay_memory
        self.bundle = bundle
        self.leeway = leeway
        self.algorithms = algorithms
        self._keys_by_kid: dict[tuple[str, str], list[tuple[TrustedIssuer, TrustedKey]]] = {}
        for issuer in bundle.trust_list.issuers:
            for key in issuer.keys:
                index = (key.kid, algorithm_of(key.public_key))
                self._keys_by_kid.setdefault(index, []).append((issuer, key))
        self.local_policies = tuple(LocalPolicy.of(policy) for policy in policies)
        self._policies: dict[str, Policy] = {}

    def policy(self, service: str) -> Policy:
        """The policy this verifier applies to ``service``."""
        policy = self._policies.get(service)
        if policy is None:
            policy = self.bundle.policy(service)
            for restriction in self.local_policies:
                policy = restriction.apply(policy)
            policy = self._policies.setdefault(service, policy)
        return policy

    def verify(self, qr_text: str, *, service: str, at: datetime) -> VerificationResult:
        """Verify ``qr_text`` for the counter's ``service`` at time ``at`` (timezone-aware)."""
        if at.tzinfo is None or at.utcoffset() is None:
            raise VerifierError("'at' must be a timezone-aware datetime")
        if not isinstance(service, str) or not SERVICE_CODE_PATTERN.fullmatch(service):
            raise VerifierError(f"service code {service!r} is malformed")
        if not isinstance(qr_text, str):
            raise VerifierError("qr_text must be a string")
        policy = self.policy(service)
        verified: _Verified | None = None
        try:
            scanned = scan(qr_text, allowed_algorithms=self.algorithms)
            if self.bundle.trust_list.is_expired(at):
                raise Rejection(Reason.TRUST_LIST_EXPIRED, "the trust list has expired")
            verified = self._verify_signed(scanned, at)
            verified = self._judge_presentation(scanned, verified, policy, at)
            return self._decide(verified, policy, at)
        except Rejection as rejection:
            return self._result(rejection.reason, rejection.detail, at, service, verified)

    def _verify_signed(self, scanned: ScannedCard, at: datetime) -> _Verified:
        candidates = self._keys_by_kid.get((scanned.kid, scanned.algorithm))
        if not candidates:
            raise Rejection(Reason.UNKNOWN_KEY, "no trusted key has this kid and algorithm")
        message = signing_input(scanned.header_bytes, scanned.payload)
        algorithm = _PYJWT_ALGORITHMS[scanned.algorithm]
        matched = next(
            (
                (issuer, key)
                for issuer, key in candidates
                if algorithm.verify(message, key.public_key, scanned.signature)
            ),
            None,
        )
        if matched is None:
            raise Rejection(Reason.BAD_SIGNATURE, "signature does not verify")
        issuer, key = matched
        if key.is_compromised_at(at):
            raise Rejection(Reason.KEY_COMPROMISED, f"key {key.kid} is marked compromised")
        try:
            claims_json, portrait = payload.split(inflate(scanned.payload, scanned.zip_name))
            card = Card.from_claims(strictjson.loads(claims_json, max_depth=None))
        except InvalidClaimError as exc:
            raise Rejection(Reason.MALFORMED, f"claim {exc}") from None
        except EncodingError as exc:
            raise Rejection(Reason.MALFORMED, str(exc)) from None
        self._check_version(scanned, card, portrait)
        if card.issuer != issuer.issuer_id:
            raise Rejection(Reason.UNKNOWN_KEY, "the key does not belong to the card's issuer")
        if not key.covers_issue_time(card.issued_at, self.leeway):
            raise Rejection(Reason.UNKNOWN_KEY, "the card's issue time is outside the key's window")
        if scanned.version == PHONE_VERSION:
            opened = open_presentation(scanned, card)
            return _Verified(
                opened.card, issuer, key, opened.portrait, opened.disclosed, opened.closed
            )
        if scanned.attachments:
            # Attachments carry a phone card's disclosures and proof; a printed card has none.
            raise Rejection(Reason.MALFORMED, "the QR has attachments the card does not sign")
        return _Verified(card, issuer, key, portrait, level=Level.PRINTED)

    @staticmethod
    def _check_version(scanned: ScannedCard, card: Card, portrait: bytes | None) -> None:
        """``FM1:`` carries a version-1 card, ``FM2:`` a version-2 phone card: a phone card
        re-wrapped as ``FM1:`` (its proof stripped) is refused like any malformed card."""
        if card.version != scanned.version:
            raise Rejection(Reason.MALFORMED, "the card's version is not its QR prefix's")
        if card.version == PHONE_VERSION:
            if portrait is not None:
                raise Rejection(Reason.MALFORMED, "a phone card's portrait is a disclosure")
            assert card.holder_key is not None  # noqa: S101 - Card requires it in version 2
            try:
                device_public_key(card.holder_key["jwk"])
            except UnsupportedKeyError as exc:
                raise Rejection(Reason.MALFORMED, f"claim cnf: {exc}") from None

    def _judge_presentation(
        self, scanned: ScannedCard, verified: _Verified, policy: Policy, at: datetime
    ) -> _Verified:
        """Decide the level of a phone card's presentation now (it is reported with every
        later verdict); the refusal of a copy waits for its place in the order."""
        if verified.level is Level.PRINTED:
            return verified
        outcome = judge_proof(
            scanned,
            verified.card,
            service=policy.service,
            max_age=policy.max_proof_age,
            skew=self.proof_skew,
            at=at,
        )
        if isinstance(outcome, Rejection):
            return dataclasses.replace(verified, level=Level.COPY, copy=outcome)
        return dataclasses.replace(verified, level=Level.LIVE, replay=outcome)

    def _check_presentation(self, verified: _Verified, policy: Policy, at: datetime) -> None:
        """Step 7: a copy is never accepted; a printed card only where the policy says."""
        if verified.copy is not None:
            raise verified.copy
        if verified.level is Level.PRINTED and "printed" not in policy.accept:
            raise Rejection(Reason.LIVE_REQUIRED, "the policy accepts only live phone cards")
        if verified.replay is not None and self.replay_memory is not None:
            key, _ = verified.replay
            if self.replay_memory.contains(key, at=at):
                raise Rejection(Reason.PROOF_REPLAYED, "this device proof was accepted before")

    def _decide(self, verified: _Verified, policy: Policy, at: datetime) -> VerificationResult:
        card = verified.card
        if at + self.leeway < card.issued_at:  # first: a card just issued starts then too
            raise Rejection(Reason.NOT_YET_VALID, CARD_AFTER_CLOCK)
        if at + self.leeway < card.valid_from:
            raise Rejection(Reason.NOT_YET_VALID, "valid_from is in the future")
        if at - self.leeway >= card.expires_at:
            raise Rejection(Reason.EXPIRED, "expires_at has passed")
        status_issued_at = self._check_status(verified, policy, at)
        try:
            self._check_presentation(verified, policy, at)
        except Rejection as rejection:
            if rejection.reason is Reason.PROOF_REPLAYED:
                verified = dataclasses.replace(verified, level=Level.COPY)
            return self._result(
                rejection.reason,
                rejection.detail,
                at,
                policy.service,
                verified,
                status_issued_at=status_issued_at,
            )
        entitlement = card.entitlement(policy.service)
        if entitlement is None or not entitlement.covers(at):
            detail = "no entitlement" if entitlement is None else "outside the entitlement window"
            if entitlement is None and verified.disclosed is not None:
                detail = "no entitlement disclosed"
            return self._result(
                Reason.NOT_ENTITLED,
                detail,
                at,
                policy.service,
                verified,
                status_issued_at=status_issued_at,
            )
        reason, detail = Reason.VALID, ""
        if policy.require_portrait and verified.portrait is None:
            reason = Reason.PORTRAIT_MISSING
        elif self._remembered(verified, at):
            # The same proof accepted by another scan since step 7 looked (concurrent scans).
            reason, detail = Reason.PROOF_REPLAYED, "this device proof was accepted before"
            verified = dataclasses.replace(verified, level=Level.COPY)
        return self._result(
            reason, detail, at, policy.service, verified, status_issued_at=status_issued_at
        )

    def _remembered(self, verified: _Verified, at: datetime) -> bool:
        """Record an accepted live presentation in the replay memory; return whether it was
        already there. Only accepted presentations are recorded, so a refused one (not
        entitled, no portrait) can be shown again once the clerk has fixed the reason."""
        if verified.replay is None or self.replay_memory is None:
            return False
        key, until = verified.replay
        return self.replay_memory.seen(key, until=until, at=at)

    def _check_status(self, verified: _Verified, policy: Policy, at: datetime) -> datetime:
        ref = verified.card.status
        uri = verified.issuer.status_uri(ref.list_id)
        token = self.bundle.status_lists.get(uri)
        if token is None:
            raise Rejection(Reason.STATUS_UNKNOWN, "no status list for this card in the bundle")
        if not any(key.thumbprint == token.key_thumbprint for key in verified.issuer.keys):
            raise Rejection(Reason.STATUS_UNKNOWN, "the status list is not signed by the issuer")
        if token.expires_at is not None and at >= token.expires_at:
            raise Rejection(Reason.STATUS_UNKNOWN, "the status list has expired")
        if token.issued_at > at + self.leeway:
            # Its age would be negative: a list dated ahead of the counter's clock (by more
            # than the leeway that absorbs clock skew) would count as fresh until its date
            # plus the policy's age, however old the revocation data really is.
            raise Rejection(Reason.STATUS_UNKNOWN, STATUS_AFTER_CLOCK)
        if at - token.issued_at > policy.max_status_age:
            raise Rejection(
                Reason.STATUS_UNKNOWN, "the status list is older than the policy allows"
            )
        try:
            value = token.statuses[ref.index]
        except StatusListError:
            raise Rejection(Reason.STATUS_UNKNOWN, "status index outside the list") from None
        if value != CardStatus.VALID:
            reason = _STATUS_REASONS.get(value, Reason.STATUS_UNKNOWN)
            raise Rejection(reason, f"status list value {value}")
        return token.issued_at

    @staticmethod
    def _result(
        reason: Reason,
        detail: str,
        at: datetime,
        service: str,
        verified: _Verified | None,
        *,
        status_issued_at: datetime | None = None,
    ) -> VerificationResult:
        card = verified.card if verified else None
        return VerificationResult(
            reason=reason,
            checked_at=at,
            service=service,
            detail=detail,
            card=card,
            portrait=verified.portrait if verified else None,
            issuer_id=verified.issuer.issuer_id if verified else None,
            kid=verified.key.kid if verified else None,
            entitlement=card.entitlement(service) if card else None,
            status_issued_at=status_issued_at,
            level=verified.level if verified else None,
            disclosed=verified.disclosed if verified else None,
            closed=verified.closed if verified else 0,
        )
