"""Issuing-key rotation: which key verifies which card, when.

The table below is the rotation policy of ``docs/FORMAT.md`` section 9 as named cases: a key's
signing window (``valid_from`` .. ``valid_until``, with the verifier's 60 s leeway) bounds the
``iat`` of the cards it verifies; ``compromised`` refuses everything from ``compromised_since``
on, whatever ``iat`` the card claims. The second half drives :class:`keys.keyring.KeyRing`
through a rotation and checks that the trust lists it publishes say the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from keys.cards import encode_card
from keys.errors import SignedDocumentError
from keys.jwk import EDDSA, generate, kid_of
from keys.keyring import IssuerInfo, KeyRing
from keys.signer import KeySigner, Signer
from keys.status_list import read_status_list, sign_status_list
from keys.store import Passphrase
from keys.trust_list import KeyState, TrustedKey, TrustList, read_trust_list, sign_trust_list
from tests.factories import (
    ISSUER_ID,
    NOW,
    STATUS_PREFIX,
    STATUS_URI,
    Authority,
    Impostor,
    make_card,
)
from verifier.bundle import Bundle, build_bundle_document
from verifier.reason import Reason
from verifier.verifier import Verifier

DAY = timedelta(days=1)
SECOND = timedelta(seconds=1)
LEEWAY = timedelta(seconds=60)
SHARED_KID = "SHAREDxx"


@dataclass(frozen=True)
class Keys:
    """The issuer's keys in the table; ``status`` signs the status lists in every case."""

    authority: Authority
    old: KeySigner
    new: KeySigner
    eddsa: KeySigner
    twin_a: KeySigner
    twin_b: KeySigner
    stranger: KeySigner
    status: KeySigner


@pytest.fixture(scope="module")
def keys() -> Keys:
    def es256() -> KeySigner:
        return KeySigner(generate())

    authority = Authority()
    return Keys(
        authority=authority,
        old=authority.issuing,
        new=es256(),
        eddsa=KeySigner(generate(EDDSA)),
        twin_a=es256(),
        twin_b=es256(),
        stranger=es256(),
        status=es256(),
    )


def key(
    signer: KeySigner,
    state: KeyState,
    valid_from: timedelta,
    valid_until: timedelta | None = None,
    *,
    compromised_since: timedelta | None = None,
    kid: str = "",
) -> TrustedKey:
    """A trusted key whose times are offsets from NOW."""
    return TrustedKey(
        public_key=signer.public_key,
        state=state,
        valid_from=NOW + valid_from,
        valid_until=None if valid_until is None else NOW + valid_until,
        compromised_since=None if compromised_since is None else NOW + compromised_since,
        kid=kid,
    )


@dataclass(frozen=True)
class Rotation:
    """One row: the trust list's keys, who signs a card issued at ``issued``, checked at ``at``.

    ``via_bundle`` sends the trust list through signing and :class:`Bundle` loading (which
    refuses a kid that is not its key's thumbprint, so shared-kid rows build the bundle
    directly, as a verifier holding such a list would).
    """

    keys: Callable[[Keys], tuple[TrustedKey, ...]]
    signer: Callable[[Keys], Signer]
    issued: timedelta
    at: timedelta
    expected: Reason
    via_bundle: bool = True


# Windows used by several rows.
RETIRED_UNTIL = -10 * DAY  # the old key retired ten days ago; the new one took over then
SWITCH = DAY  # the old key hands over to the announced new key tomorrow


def retired_world(k: Keys) -> tuple[TrustedKey, ...]:
    return (
        key(k.old, KeyState.RETIRED, -365 * DAY, RETIRED_UNTIL),
        key(k.new, KeyState.ACTIVE, RETIRED_UNTIL),
    )


def announced_world(k: Keys) -> tuple[TrustedKey, ...]:
    return (
        key(k.old, KeyState.ACTIVE, -365 * DAY, SWITCH),
        key(k.new, KeyState.NEXT, SWITCH),
    )


def compromised_world(since: timedelta | None) -> Callable[[Keys], tuple[TrustedKey, ...]]:
    def keys(k: Keys) -> tuple[TrustedKey, ...]:
        return (
            key(k.old, KeyState.COMPROMISED, -365 * DAY, compromised_since=since),
            key(k.new, KeyState.ACTIVE, -DAY),
        )

    return keys


def twins_world(k: Keys) -> tuple[TrustedKey, ...]:
    return (
        key(k.twin_a, KeyState.ACTIVE, -365 * DAY, kid=SHARED_KID),
        key(k.twin_b, KeyState.ACTIVE, -365 * DAY, kid=SHARED_KID),
    )


def retired_twin_world(k: Keys) -> tuple[TrustedKey, ...]:
    return (
        key(k.twin_a, KeyState.RETIRED, -365 * DAY, RETIRED_UNTIL, kid=SHARED_KID),
        key(k.twin_b, KeyState.ACTIVE, RETIRED_UNTIL, kid=SHARED_KID),
    )


def row(
    case_id: str,
    keys: Callable[[Keys], tuple[TrustedKey, ...]],
    signer: Callable[[Keys], Signer],
    issued: timedelta,
    at: timedelta,
    expected: Reason,
    *,
    via_bundle: bool = True,
) -> object:
    return pytest.param(Rotation(keys, signer, issued, at, expected, via_bundle), id=case_id)


ROTATIONS = [
    # Retired keys verify what they signed before valid_until, nothing after.
    row("retired-card-before-valid-until", retired_world, lambda k: k.old, -20 * DAY, 0 * DAY,
        Reason.VALID),
    row("retired-card-1s-before-valid-until", retired_world, lambda k: k.old,
        RETIRED_UNTIL - SECOND, 0 * DAY, Reason.VALID),
    row("retired-card-59s-after-valid-until-leeway", retired_world, lambda k: k.old,
        RETIRED_UNTIL + LEEWAY - SECOND, 0 * DAY, Reason.VALID),
    row("retired-card-60s-after-valid-until", retired_world, lambda k: k.old,
        RETIRED_UNTIL + LEEWAY, 0 * DAY, Reason.UNKNOWN_KEY),
    row("retired-card-after-valid-until", retired_world, lambda k: k.old, -5 * DAY, 0 * DAY,
        Reason.UNKNOWN_KEY),
    row("successor-card-after-switch", retired_world, lambda k: k.new, -5 * DAY, 0 * DAY,
        Reason.VALID),
    # An announced (next) key: accepted for cards issued from its valid_from, not before.
    row("next-card-after-valid-from", announced_world, lambda k: k.new, SWITCH + DAY,
        SWITCH + DAY, Reason.VALID),
    row("next-card-at-valid-from-minus-leeway", announced_world, lambda k: k.new,
        SWITCH - LEEWAY, SWITCH + DAY, Reason.VALID),
    row("next-card-61s-before-valid-from", announced_world, lambda k: k.new,
        SWITCH - LEEWAY - SECOND, SWITCH + DAY, Reason.UNKNOWN_KEY),
    row("next-card-before-valid-from", announced_world, lambda k: k.new, 0 * DAY, 0 * DAY,
        Reason.UNKNOWN_KEY),
    row("active-card-before-switch", announced_world, lambda k: k.old, 0 * DAY, SWITCH + DAY,
        Reason.VALID),
    row("active-card-after-its-valid-until", announced_world, lambda k: k.old, SWITCH + DAY,
        SWITCH + DAY, Reason.UNKNOWN_KEY),
    # A key the held trust list has never heard of.
    row("new-key-unknown-to-old-trust-list",
        lambda k: (key(k.old, KeyState.ACTIVE, -365 * DAY),), lambda k: k.new, 0 * DAY,
        0 * DAY, Reason.UNKNOWN_KEY),
    row("stranger-key", announced_world, lambda k: k.stranger, 0 * DAY, 0 * DAY,
        Reason.UNKNOWN_KEY),
    # Compromised: iat is not consulted, verification time is.
    row("compromised-backdated-iat", compromised_world(-DAY), lambda k: k.old, -300 * DAY,
        0 * DAY, Reason.KEY_COMPROMISED),
    row("compromised-card-issued-after-since", compromised_world(-2 * DAY), lambda k: k.old,
        -DAY, 0 * DAY, Reason.KEY_COMPROMISED),
    row("compromised-without-since", compromised_world(None), lambda k: k.old, -300 * DAY,
        0 * DAY, Reason.KEY_COMPROMISED),
    row("compromised-since-exactly-now", compromised_world(0 * DAY), lambda k: k.old,
        -300 * DAY, 0 * DAY, Reason.KEY_COMPROMISED),
    row("compromised-since-in-the-future", compromised_world(DAY), lambda k: k.old,
        -300 * DAY, 0 * DAY, Reason.VALID),
    row("compromised-since-1s-after-at", compromised_world(SECOND), lambda k: k.old,
        -300 * DAY, 0 * DAY, Reason.VALID),
    row("successor-of-compromised-key", compromised_world(-DAY), lambda k: k.new, 0 * DAY,
        0 * DAY, Reason.VALID),
    # Two keys sharing a kid: the verifier tries both.
    row("shared-kid-first-key-signs", twins_world,
        lambda k: Impostor(k.twin_a, SHARED_KID), -DAY, 0 * DAY, Reason.VALID,
        via_bundle=False),
    row("shared-kid-second-key-signs", twins_world,
        lambda k: Impostor(k.twin_b, SHARED_KID), -DAY, 0 * DAY, Reason.VALID,
        via_bundle=False),
    row("shared-kid-neither-key-signs", twins_world,
        lambda k: Impostor(k.stranger, SHARED_KID), -DAY, 0 * DAY, Reason.BAD_SIGNATURE,
        via_bundle=False),
    row("shared-kid-retired-twin-after-its-window", retired_twin_world,
        lambda k: Impostor(k.twin_a, SHARED_KID), -5 * DAY, 0 * DAY, Reason.UNKNOWN_KEY,
        via_bundle=False),
    row("shared-kid-retired-twin-inside-its-window", retired_twin_world,
        lambda k: Impostor(k.twin_a, SHARED_KID), -20 * DAY, 0 * DAY, Reason.VALID,
        via_bundle=False),
    # EdDSA issuing keys work end to end (through the signed trust list and the bundle).
    row("eddsa-active-key", lambda k: (key(k.eddsa, KeyState.ACTIVE, -365 * DAY),),
        lambda k: k.eddsa, -DAY, 0 * DAY, Reason.VALID),
    row("eddsa-next-to-es256", lambda k: (*announced_world(k), key(k.eddsa, KeyState.ACTIVE,
        -DAY)), lambda k: k.eddsa, 0 * DAY, 0 * DAY, Reason.VALID),
    row("eddsa-retired-after-window", lambda k: (key(k.eddsa, KeyState.RETIRED, -365 * DAY,
        RETIRED_UNTIL),), lambda k: k.eddsa, -DAY, 0 * DAY, Reason.UNKNOWN_KEY),
]  # fmt: skip


def verifier_for(
    k: Keys, trusted: tuple[TrustedKey, ...], at: datetime, via_bundle: bool
) -> Verifier:
    status_key = TrustedKey(k.status.public_key, KeyState.ACTIVE, NOW - 365 * DAY)
    trust_list = k.authority.trust_list(keys=(*trusted, status_key))
    status_token = sign_status_list(
        k.authority.statuses,
        uri=STATUS_URI,
        signer=k.status,
        issued_at=at - timedelta(hours=1),
        expires_at=at + DAY,
        ttl=3600,
    )
    if via_bundle:
        document = build_bundle_document(
            anchors=[k.authority.anchor.public_key],
            trust_list=sign_trust_list(trust_list, k.authority.anchor),
            status_lists=[status_token],
        )
        return Verifier(Bundle.from_json(document, at=at))
    status = read_status_list(status_token, keys=[status_key.verification_key])
    bundle = Bundle(
        anchors=(k.authority.anchor.public_key,),
        trust_list=trust_list,
        trust_list_token=sign_trust_list(trust_list, k.authority.anchor),
        status_lists={status.uri: status},
    )
    return Verifier(bundle)


@pytest.mark.parametrize("rotation", ROTATIONS)
def test_key_rotation(keys: Keys, rotation: Rotation) -> None:
    at = NOW + rotation.at
    issued = NOW + rotation.issued
    verifier = verifier_for(keys, rotation.keys(keys), at, rotation.via_bundle)
    card = make_card(issued_at=issued, valid_from=issued, expires_at=issued + 365 * DAY)
    result = verifier.verify(encode_card(card, rotation.signer(keys)), service="hc", at=at)
    assert result.reason is rotation.expected, result.detail
    if result.reason is Reason.VALID:
        assert result.card == card


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        pytest.param(NOW, Reason.NOT_YET_VALID, id="now-before-the-key-starts"),
        pytest.param(NOW + SWITCH - LEEWAY - SECOND, Reason.NOT_YET_VALID, id="beyond-leeway"),
        pytest.param(NOW + SWITCH - LEEWAY, Reason.VALID, id="iat-within-the-leeway"),
        pytest.param(NOW + SWITCH, Reason.VALID, id="at-iat"),
        pytest.param(NOW + SWITCH + DAY, Reason.VALID, id="after-iat"),
    ],
)
def test_a_next_key_cannot_sign_a_card_valid_before_its_start(
    keys: Keys, at: datetime, expected: Reason
) -> None:
    """The announced key signs a card dated at its future start (``iat = valid_from`` of the
    key) with ``nbf`` now: the card waits for its ``iat`` like for its ``nbf``."""
    verifier = verifier_for(keys, announced_world(keys), at, via_bundle=True)
    card = make_card(issued_at=NOW + SWITCH, valid_from=NOW, expires_at=NOW + 365 * DAY)
    result = verifier.verify(encode_card(card, keys.new), service="hc", at=at)
    assert result.reason is expected, result.detail
    assert result.card == card  # checked after the signature: the verdict shows the card


def test_trust_list_round_trip_keeps_rotation_windows(keys: Keys) -> None:
    """What the rotation rows rely on: states and windows survive signing and reading."""
    compromised = key(keys.eddsa, KeyState.COMPROMISED, -365 * DAY, compromised_since=-DAY)
    trust_list = keys.authority.trust_list(keys=(*announced_world(keys), compromised))
    anchors = [keys.authority.anchor.public_key]
    token = sign_trust_list(trust_list, keys.authority.anchor)
    assert read_trust_list(token, anchors=anchors, at=NOW) == trust_list
    # A signed list cannot carry a kid that is not its key's thumbprint, so the shared-kid
    # rows above build their verifier from the TrustList object itself.
    shared = sign_trust_list(
        keys.authority.trust_list(keys=twins_world(keys)), keys.authority.anchor
    )
    with pytest.raises(SignedDocumentError, match="does not match its key"):
        read_trust_list(shared, anchors=anchors, at=NOW)


# --- The issuer's key ring ------------------------------------------------------------------

PASSPHRASE = "correct horse battery"
ANNOUNCE = timedelta(days=7)
INFO = IssuerInfo(
    issuer_id=ISSUER_ID,
    name_en="Yiwu Public Security Bureau",
    name_zh="义乌市公安局",
    status_uri_prefix=STATUS_PREFIX,
)


@dataclass
class Ring:
    ring: KeyRing
    passphrase: Passphrase
    old_kid: str
    new_kid: str

    @property
    def switch(self) -> datetime:
        return NOW + ANNOUNCE


@pytest.fixture
def rotated(tmp_path: Path) -> Ring:
    passphrase = Passphrase.from_text(PASSPHRASE)
    ring = KeyRing.create(tmp_path, issuer=INFO, passphrase=passphrase, at=NOW)
    old = ring.active_record(NOW)
    new = ring.rotate(passphrase, at=NOW, announce=ANNOUNCE)
    return Ring(ring, passphrase, old.kid, new.kid)


@pytest.mark.parametrize(
    ("offset", "old_state", "new_state"),
    [
        pytest.param(timedelta(0), KeyState.ACTIVE, KeyState.NEXT, id="at-rotation"),
        pytest.param(ANNOUNCE - SECOND, KeyState.ACTIVE, KeyState.NEXT, id="1s-before-switch"),
        pytest.param(ANNOUNCE, KeyState.RETIRED, KeyState.ACTIVE, id="at-switch"),
        pytest.param(ANNOUNCE + 30 * DAY, KeyState.RETIRED, KeyState.ACTIVE, id="month-later"),
    ],
)
def test_keyring_states_over_time(
    rotated: Ring, offset: timedelta, old_state: KeyState, new_state: KeyState
) -> None:
    at = NOW + offset
    ring = rotated.ring
    states = {record.kid: record.state_at(at) for record in ring.keys}
    assert states == {rotated.old_kid: old_state, rotated.new_kid: new_state}
    signing_kid = rotated.new_kid if new_state is KeyState.ACTIVE else rotated.old_kid
    assert ring.active_record(at).kid == signing_kid
    assert ring.signer(at, rotated.passphrase).kid == signing_kid
    trust_list = ring.trust_list(rotated.passphrase, at=at, validity=30 * DAY)
    published = {k.kid: k for k in trust_list.issuers[0].keys}
    assert {kid: k.state for kid, k in published.items()} == states
    assert published[rotated.old_kid].valid_until == rotated.switch
    assert published[rotated.new_kid].valid_from == rotated.switch
    assert published[rotated.new_kid].valid_until is None
    for trusted in published.values():
        assert kid_of(trusted.public_key) == trusted.kid


def test_keyring_rotation_windows_and_versions(rotated: Ring) -> None:
    ring = rotated.ring
    old, new = (
        next(r for r in ring.keys if r.kid == kid) for kid in (rotated.old_kid, rotated.new_kid)
    )
    assert (old.valid_from, old.valid_until) == (NOW, rotated.switch)
    assert (new.valid_from, new.valid_until) == (rotated.switch, None)
    versions = [
        ring.trust_list(rotated.passphrase, at=NOW + n * DAY, validity=30 * DAY).version
        for n in range(3)
    ]
    assert versions == sorted(set(versions))  # every published list has a new, higher version
    reloaded = KeyRing.load(ring.directory)
    assert reloaded.keys == ring.keys
    assert reloaded.trust_list_version == ring.trust_list_version


def publish(ring: Ring, at: datetime, *, status_at: datetime | None = None) -> Verifier:
    """What the issuer publishes at ``at`` (the status list at ``status_at``) and a counter
    loads."""
    anchor = ring.ring.anchor_signer(ring.passphrase)
    trust_list: TrustList = ring.ring.trust_list(ring.passphrase, at=at, validity=30 * DAY)
    status = sign_status_list(
        Authority().statuses,
        uri=STATUS_URI,
        signer=ring.ring.signer(status_at or at, ring.passphrase),
        issued_at=status_at or at,
        expires_at=(status_at or at) + 7 * DAY,
        ttl=3600,
    )
    document = build_bundle_document(
        anchors=[anchor.public_key],
        trust_list=sign_trust_list(trust_list, anchor),
        status_lists=[status],
    )
    return Verifier(Bundle.from_json(document, at=at))


def card_by(ring: Ring, kid: str, issued: datetime) -> str:
    card = make_card(issued_at=issued, valid_from=issued, expires_at=issued + 365 * DAY)
    return encode_card(card, ring.ring.signer_for(kid, ring.passphrase))


def test_keyring_rotation_end_to_end(rotated: Ring) -> None:
    """Counters that synced before the switch accept the new key's cards after it."""
    later = rotated.switch + 2 * DAY
    # Synced at rotation time, the trust list calls the new key "next"; status lists stay fresh.
    before = publish(rotated, NOW, status_at=later - DAY)
    after = publish(rotated, rotated.switch + DAY, status_at=later - DAY)
    new_card = card_by(rotated, rotated.new_kid, rotated.switch + DAY)
    old_card = card_by(rotated, rotated.old_kid, NOW + DAY)
    cases = [
        (before, new_card, Reason.VALID),
        (after, new_card, Reason.VALID),
        (before, old_card, Reason.VALID),
        (after, old_card, Reason.VALID),  # retired keys keep verifying what they signed
        (after, card_by(rotated, rotated.old_kid, rotated.switch + DAY), Reason.UNKNOWN_KEY),
        (before, card_by(rotated, rotated.new_kid, NOW + DAY), Reason.UNKNOWN_KEY),
    ]
    for verifier, qr_text, expected in cases:
        assert verifier.verify(qr_text, service="hc", at=later).reason is expected


def test_keyring_compromised_key(rotated: Ring) -> None:
    ring = rotated.ring
    since = rotated.switch + DAY
    ring.mark_compromised(rotated.old_kid, since=since)
    at = rotated.switch + 2 * DAY
    trust_list = ring.trust_list(rotated.passphrase, at=at, validity=30 * DAY)
    published = {k.kid: k for k in trust_list.issuers[0].keys}
    assert published[rotated.old_kid].state is KeyState.COMPROMISED
    assert published[rotated.old_kid].compromised_since == since
    assert published[rotated.new_kid].state is KeyState.ACTIVE
    assert {jwk["kid"] for jwk in ring.jwks(rotated.passphrase)["keys"]} == {rotated.new_kid}
    verifier = publish(rotated, at)
    backdated = card_by(rotated, rotated.old_kid, NOW)
    assert verifier.verify(backdated, service="hc", at=at).reason is Reason.KEY_COMPROMISED
    # Before compromised_since the key's cards pass (with status data of that time: a status
    # list dated after the verification time is no evidence for it, docs/FORMAT.md).
    earlier = publish(rotated, at, status_at=since - 2 * SECOND)
    assert earlier.verify(backdated, service="hc", at=since - SECOND).reason is Reason.VALID
    assert verifier.verify(backdated, service="hc", at=since - SECOND).reason is (
        Reason.STATUS_UNKNOWN
    )
    fresh = card_by(rotated, rotated.new_kid, at - DAY)
    assert verifier.verify(fresh, service="hc", at=at).reason is Reason.VALID
