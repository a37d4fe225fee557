"""Signed trust lists and status lists: forgeries, rollbacks and expiry are refused.

A counter trusts issuer keys only through the trust list (signed by a pinned anchor) and card
statuses only through status lists (signed by a non-compromised key of the issuer that owns the
list's URI). Every test here offers a document an attacker could put in a bundle and checks
that it is refused by the reader and by :meth:`Bundle.update`, and that the bundle held before
stays usable.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from keys.cards import encode_card
from keys.errors import RollbackError, SignedDocumentError, TrustListExpiredError
from keys.jwk import PublicKey, generate, public_jwk
from keys.jws import b64url, encode_jwt
from keys.signer import KeySigner, Signer
from keys.status_list import (
    STATUS_LIST_TYP,
    CardStatus,
    StatusList,
    read_status_list,
    sign_status_list,
)
from keys.trust_list import (
    TRUST_LIST_TYP,
    KeyState,
    TrustedIssuer,
    TrustList,
    read_trust_list,
    sign_trust_list,
)
from schemas import strictjson
from schemas.card import StatusRef
from tests.factories import (
    ISSUER_ID,
    NOW,
    STATUS_PREFIX,
    STATUS_URI,
    Authority,
    Impostor,
    make_card,
)
from verifier.bundle import Bundle, _read_status, build_bundle_document
from verifier.errors import BundleError
from verifier.reason import Reason
from verifier.verifier import Verifier

HOUR = timedelta(hours=1)
MOVED_PREFIX = "https://moved.example/status/"


def random_signer() -> KeySigner:
    return KeySigner(generate())


def compact(header: dict[str, Any], claims: dict[str, Any], signature: bytes) -> str:
    parts = (strictjson.dumps(header), strictjson.dumps(claims), signature)
    return b".".join(b64url(part) for part in parts).decode("ascii")


def signed_with_header(signer: KeySigner, header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A token whose header is exactly ``header``, correctly signed by ``signer``."""
    header_b64, payload_b64 = b64url(strictjson.dumps(header)), b64url(strictjson.dumps(claims))
    signature = signer.sign(header_b64 + b"." + payload_b64)
    return b".".join((header_b64, payload_b64, b64url(signature))).decode("ascii")


def hmac_with_public_key(signer: KeySigner, claims: dict[str, Any], typ: str) -> str:
    """pyjwt's old algorithm confusion: HS256 keyed with the PEM of the trusted public key."""
    secret = signer.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = {"alg": "HS256", "kid": signer.kid, "typ": typ}
    header_b64, payload_b64 = b64url(strictjson.dumps(header)), b64url(strictjson.dumps(claims))
    mac = hmac.new(secret, header_b64 + b"." + payload_b64, hashlib.sha256).digest()
    return b".".join((header_b64, payload_b64, b64url(mac))).decode("ascii")


def status_claims(authority: Authority, **changes: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": STATUS_URI,
        "iat": int((NOW - timedelta(hours=1)).timestamp()),
        "exp": int((NOW + timedelta(days=30)).timestamp()),
        "ttl": 3600,
        "status_list": {"bits": 2, "lst": authority.statuses.to_lst()},
    }
    claims.update(changes)
    return claims


def bundle_with(
    authority: Authority,
    *,
    trust_token: str | None = None,
    status_tokens: list[str] | None = None,
    anchors: list[PublicKey] | None = None,
) -> dict[str, Any]:
    return build_bundle_document(
        anchors=anchors or [authority.anchor.public_key],
        trust_list=trust_token or authority.trust_list_token(),
        status_lists=status_tokens if status_tokens is not None else [authority.status_token()],
    )


def verify(bundle: Bundle, qr_text: str, *, at: datetime = NOW) -> Reason:
    return Verifier(bundle).verify(qr_text, service="hc", at=at).reason


def status_token_by(authority: Authority, signer: Signer) -> str:
    return sign_status_list(
        authority.statuses,
        uri=STATUS_URI,
        signer=signer,
        issued_at=NOW - timedelta(hours=1),
        expires_at=NOW + timedelta(days=30),
        ttl=3600,
    )


# --- Forged trust lists ---------------------------------------------------------------------

TrustForgery = Callable[[Authority], str]


def _newer(authority: Authority) -> TrustList:
    return authority.trust_list(version=authority.version + 1)


TRUST_FORGERIES = [
    pytest.param(
        lambda a: sign_trust_list(_newer(a), random_signer()),
        id="signed-by-random-key",
    ),
    pytest.param(
        lambda a: sign_trust_list(_newer(a), Impostor(random_signer(), a.anchor.kid)),
        id="random-key-claiming-anchor-kid",
    ),
    pytest.param(
        lambda a: sign_trust_list(_newer(a), a.issuing),
        id="signed-by-issuing-key",
    ),
    pytest.param(
        lambda a: compact(
            {"alg": "none", "kid": a.anchor.kid, "typ": TRUST_LIST_TYP},
            _newer(a).to_claims(),
            b"",
        ),
        id="alg-none-unsigned",
    ),
    pytest.param(
        lambda a: compact(
            {"alg": "none", "kid": a.anchor.kid, "typ": TRUST_LIST_TYP},
            _newer(a).to_claims(),
            b"\0" * 64,
        ),
        id="alg-none-with-signature-bytes",
    ),
    pytest.param(
        lambda a: hmac_with_public_key(a.anchor, _newer(a).to_claims(), TRUST_LIST_TYP),
        id="hs256-anchor-pem-as-secret",
    ),
    pytest.param(
        lambda a: encode_jwt(_newer(a).to_claims(), a.anchor, typ=STATUS_LIST_TYP),
        id="typ-statuslist",
    ),
    pytest.param(
        lambda a: encode_jwt(_newer(a).to_claims(), a.anchor, typ="JWT"),
        id="typ-jwt",
    ),
    pytest.param(
        lambda a: signed_with_header(
            a.anchor, {"alg": "ES256", "kid": a.anchor.kid}, _newer(a).to_claims()
        ),
        id="typ-missing",
    ),
    pytest.param(
        lambda a: signed_with_header(
            a.anchor,
            {"alg": "ES256", "kid": a.anchor.kid, "typ": TRUST_LIST_TYP, "jku": "https://x.test/"},
            _newer(a).to_claims(),
        ),
        id="jku-header",
    ),
    pytest.param(
        lambda a: embedded_jwk_trust_list(a),
        id="attacker-key-embedded-as-jwk",
    ),
    pytest.param(
        lambda a: sign_trust_list(_newer(a), a.anchor) + "x",
        id="signature-tampered",
    ),
    pytest.param(
        lambda a: sign_trust_list(_newer(a), a.anchor) + ".",
        id="four-parts",
    ),
    pytest.param(
        lambda a: swap_payload(sign_trust_list(_newer(a), a.anchor), a.trust_list(version=99)),
        id="payload-swapped-under-anchor-signature",
    ),
]


def embedded_jwk_trust_list(authority: Authority) -> str:
    attacker = random_signer()
    header = {
        "alg": "ES256",
        "kid": attacker.kid,
        "typ": TRUST_LIST_TYP,
        "jwk": public_jwk(attacker.public_key),
    }
    return signed_with_header(attacker, header, _newer(authority).to_claims())


def swap_payload(token: str, trust_list: TrustList) -> str:
    header, _, signature = token.split(".")
    payload = b64url(strictjson.dumps(trust_list.to_claims())).decode("ascii")
    return ".".join((header, payload, signature))


@pytest.mark.parametrize("forge", TRUST_FORGERIES)
def test_forged_trust_list_is_refused(fresh_authority: Authority, forge: TrustForgery) -> None:
    authority = fresh_authority
    held = authority.bundle()
    before = held.to_json()
    token = forge(authority)
    with pytest.raises(SignedDocumentError):
        read_trust_list(token, anchors=[authority.anchor.public_key], at=NOW)
    with pytest.raises(SignedDocumentError):
        read_trust_list(
            token, anchors=[authority.anchor.public_key], at=NOW, current=held.trust_list
        )
    with pytest.raises(BundleError):
        held.update(bundle_with(authority, trust_token=token), at=NOW)
    # The pinned anchors are the counter's: a bundle naming the attacker's anchor changes
    # nothing on update.
    with pytest.raises(BundleError):
        held.update(
            bundle_with(authority, trust_token=token, anchors=[random_signer().public_key]),
            at=NOW,
        )
    assert held.to_json() == before
    assert verify(held, encode_card(make_card(), authority.issuing)) is Reason.VALID


def test_genuine_newer_trust_list_is_accepted(fresh_authority: Authority) -> None:
    """The control for the forgeries: the same update, honestly signed, goes through."""
    authority = fresh_authority
    held = authority.bundle()
    token = sign_trust_list(_newer(authority), authority.anchor)
    assert read_trust_list(token, anchors=[authority.anchor.public_key], at=NOW).version == 2
    updated = held.update(bundle_with(authority, trust_token=token), at=NOW)
    assert updated.trust_list.version == 2


# --- Forged status lists --------------------------------------------------------------------

StatusForgery = Callable[[Authority], str]

STATUS_FORGERIES = [
    pytest.param(lambda a: a.status_token(signer=random_signer()), id="signed-by-random-key"),
    pytest.param(
        lambda a: status_token_by(a, Impostor(random_signer(), a.issuing.kid)),
        id="random-key-claiming-issuer-kid",
    ),
    pytest.param(lambda a: a.status_token(signer=a.anchor), id="signed-by-trust-anchor"),
    pytest.param(
        lambda a: compact(
            {"alg": "none", "kid": a.issuing.kid, "typ": STATUS_LIST_TYP}, status_claims(a), b""
        ),
        id="alg-none-unsigned",
    ),
    pytest.param(
        lambda a: hmac_with_public_key(a.issuing, status_claims(a), STATUS_LIST_TYP),
        id="hs256-issuer-pem-as-secret",
    ),
    pytest.param(
        lambda a: encode_jwt(status_claims(a), a.issuing, typ=TRUST_LIST_TYP),
        id="typ-trust-list",
    ),
    pytest.param(lambda a: encode_jwt(status_claims(a), a.issuing, typ="JWT"), id="typ-jwt"),
    pytest.param(
        lambda a: signed_with_header(
            a.issuing, {"alg": "ES256", "kid": a.issuing.kid}, status_claims(a)
        ),
        id="typ-missing",
    ),
    pytest.param(lambda a: a.trust_list_token(), id="trust-list-token-as-status-list"),
    pytest.param(
        lambda a: signed_with_header(
            a.issuing,
            {"alg": "ES256", "kid": a.issuing.kid, "typ": STATUS_LIST_TYP, "crit": ["exp"]},
            status_claims(a),
        ),
        id="crit-header",
    ),
]


@pytest.mark.parametrize("forge", STATUS_FORGERIES)
def test_forged_status_list_is_refused(fresh_authority: Authority, forge: StatusForgery) -> None:
    authority = fresh_authority
    token = forge(authority)
    issuer_keys = [key.verification_key for key in authority.trust_list().issuers[0].keys]
    with pytest.raises(SignedDocumentError):
        read_status_list(token, keys=issuer_keys)
    with pytest.raises(BundleError):
        Bundle.from_json(bundle_with(authority, status_tokens=[token]), at=NOW)
    held = authority.bundle()
    before = held.to_json()
    with pytest.raises(BundleError):
        held.update(bundle_with(authority, status_tokens=[token]), at=NOW)
    assert held.to_json() == before


@pytest.mark.parametrize(
    "changes",
    [
        pytest.param({"iat": 10**15}, id="iat-far-future"),
        pytest.param({"iat": 10**18}, id="iat-19-digits"),
        pytest.param({"exp": 10**15}, id="exp-far-future"),
        pytest.param({"exp": 10**18}, id="exp-19-digits"),
    ],
)
def test_status_list_with_impossible_times_is_refused_not_crashed(
    fresh_authority: Authority, changes: dict[str, int]
) -> None:
    """Times a datetime cannot hold are a malformed document, not an OverflowError."""
    authority = fresh_authority
    token = encode_jwt(status_claims(authority, **changes), authority.issuing, typ=STATUS_LIST_TYP)
    with pytest.raises(SignedDocumentError):
        read_status_list(token, keys=[authority.trusted_key().verification_key])
    with pytest.raises(BundleError):
        Bundle.from_json(bundle_with(authority, status_tokens=[token]), at=NOW)


# --- Compromised keys and other issuers' lists ----------------------------------------------


@pytest.mark.parametrize(
    ("since", "refused"),
    [
        pytest.param(None, True, id="compromised-always"),
        pytest.param(NOW - timedelta(days=1), True, id="compromised-since-yesterday"),
        pytest.param(NOW, True, id="compromised-since-now"),
        pytest.param(NOW + timedelta(days=1), False, id="compromised-from-tomorrow"),
    ],
)
def test_status_list_signed_by_compromised_key(
    fresh_authority: Authority, since: datetime | None, refused: bool
) -> None:
    authority = fresh_authority
    spare = random_signer()
    trust_list = authority.trust_list(
        keys=(
            authority.trusted_key(state=KeyState.COMPROMISED, compromised_since=since),
            authority.trusted_key(spare),
        )
    )
    document = authority.bundle_document(
        trust_list=trust_list, status_tokens=[authority.status_token()]
    )
    if refused:
        with pytest.raises(BundleError, match="signed by an unknown key"):
            Bundle.from_json(document, at=NOW)
    else:
        bundle = Bundle.from_json(document, at=NOW)
        assert STATUS_URI in bundle.status_lists
    # The same list signed by the issuer's other key is fine either way.
    good = authority.bundle_document(
        trust_list=trust_list, status_tokens=[authority.status_token(signer=spare)]
    )
    assert STATUS_URI in Bundle.from_json(good, at=NOW).status_lists


OTHER_ID = "CN-SH-PSB"


def two_issuers(authority: Authority, other: KeySigner, other_prefix: str) -> TrustList:
    mine = authority.trust_list().issuers[0]
    theirs = TrustedIssuer(
        issuer_id=OTHER_ID,
        name_en="Shanghai Public Security Bureau",
        name_zh="上海市公安局",
        status_uri_prefix=other_prefix,
        keys=(authority.trusted_key(other),),
    )
    return authority.trust_list(issuers=(mine, theirs))


def test_status_list_for_another_issuers_uri_is_refused(fresh_authority: Authority) -> None:
    """Issuer B's key cannot publish (and so un-revoke) issuer A's status list."""
    authority = fresh_authority
    other = random_signer()
    trust_list = two_issuers(authority, other, "https://other.example/status/")
    forged = authority.status_token(signer=other, uri=STATUS_URI)
    document = authority.bundle_document(trust_list=trust_list, status_tokens=[forged])
    with pytest.raises(BundleError, match="not signed by the issuer that owns it"):
        Bundle.from_json(document, at=NOW)
    held = authority.bundle(trust_list=trust_list)
    with pytest.raises(BundleError):
        held.update(document, at=NOW)
    # Control: B's key may sign B's own list, and A's key A's list.
    own = authority.status_token(signer=other, uri="https://other.example/status/1")
    document = authority.bundle_document(
        trust_list=trust_list, status_tokens=[authority.status_token(), own]
    )
    assert len(Bundle.from_json(document, at=NOW).status_lists) == 2


def test_status_list_ownership_is_decided_by_thumbprint_not_by_kid(
    fresh_authority: Authority,
) -> None:
    """Issuer B grinds a key whose 48-bit kid equals A's issuing kid: the kid finds both keys,
    but only A's key (by full thumbprint) may sign A's lists."""
    authority = fresh_authority
    authority.statuses[9] = CardStatus.REVOKED
    other = random_signer()
    mine = authority.trust_list().issuers[0]
    theirs = TrustedIssuer(
        issuer_id=OTHER_ID,
        name_en="Shanghai Public Security Bureau",
        name_zh="上海市公安局",
        status_uri_prefix="https://other.example/status/",
        keys=(authority.trusted_key(other, kid=authority.issuing.kid),),
    )
    trust_list = authority.trust_list(issuers=(mine, theirs))
    colliding = Impostor(other, authority.issuing.kid)
    forged = sign_status_list(
        StatusList(4096, 2),
        uri=STATUS_URI,
        signer=colliding,
        issued_at=NOW - HOUR,
        expires_at=NOW + timedelta(days=30),
        ttl=3600,
    )
    with pytest.raises(BundleError, match="not signed by the issuer that owns it"):
        _read_status(forged, trust_list, NOW)
    # A verifier handed such a list (however it got it) does not use it either.
    status = read_status_list(forged, keys=[theirs.keys[0].verification_key])
    bundle = Bundle(
        anchors=(authority.anchor.public_key,),
        trust_list=trust_list,
        trust_list_token=sign_trust_list(trust_list, authority.anchor),
        status_lists={status.uri: status},
    )
    revoked = encode_card(make_card(status=StatusRef("1", 9)), authority.issuing)
    assert verify(bundle, revoked) is Reason.STATUS_UNKNOWN
    # Control: A's own list is used.
    genuine = _read_status(authority.status_token(), trust_list, NOW)
    assert verify(replace(bundle, status_lists={genuine.uri: genuine}), revoked) is Reason.REVOKED


def test_status_list_under_a_nested_prefix_cannot_override_the_owner(
    fresh_authority: Authority,
) -> None:
    """Issuer A's prefix is a prefix of issuer B's: A's key still must not decide B's cards.

    B revoked a card; A's key signs an all-valid list at B's list URI. Whether the bundle
    refuses that list or the verifier ignores it, B's revoked card must never come back VALID.
    """
    authority = fresh_authority
    other = random_signer()
    nested = STATUS_PREFIX + "sh/"
    trust_list = two_issuers(authority, other, nested)
    revoked = StatusList(64, 2)
    revoked[5] = CardStatus.REVOKED
    issued, expires = NOW - timedelta(hours=2), NOW + timedelta(days=1)
    genuine = sign_status_list(
        revoked, uri=nested + "1", signer=other, issued_at=issued, expires_at=expires, ttl=60
    )
    card = encode_card(make_card(issuer=OTHER_ID, status=StatusRef("1", 5)), other)
    honest = authority.bundle(trust_list=trust_list, status_tokens=[genuine])
    assert verify(honest, card) is Reason.REVOKED
    forged = sign_status_list(
        StatusList(64, 2),
        uri=nested + "1",
        signer=authority.issuing,
        issued_at=issued,
        expires_at=expires,
        ttl=60,
    )
    try:
        bundle = authority.bundle(trust_list=trust_list, status_tokens=[forged])
    except BundleError:
        return
    assert verify(bundle, card) is not Reason.VALID


# --- Rollback and expiry --------------------------------------------------------------------


def test_trust_list_rollback_to_a_lower_version_is_refused(fresh_authority: Authority) -> None:
    authority = fresh_authority
    old_token = authority.trust_list_token()
    authority.version = 2
    held = authority.bundle()
    anchors = [authority.anchor.public_key]
    with pytest.raises(RollbackError, match="older than the held version"):
        read_trust_list(old_token, anchors=anchors, at=NOW, current=held.trust_list)
    with pytest.raises(BundleError, match="older"):
        held.update(bundle_with(authority, trust_token=old_token), at=NOW)


def test_trust_list_same_version_different_content_is_refused(fresh_authority: Authority) -> None:
    authority = fresh_authority
    held = authority.bundle()
    rogue = authority.trust_list(expires_at=NOW + timedelta(days=3650))
    token = sign_trust_list(rogue, authority.anchor)
    with pytest.raises(RollbackError, match="different trust list claims the held version"):
        read_trust_list(
            token, anchors=[authority.anchor.public_key], at=NOW, current=held.trust_list
        )
    with pytest.raises(BundleError):
        held.update(bundle_with(authority, trust_token=token), at=NOW)
    # Control: the very same document again is not a rollback.
    same = held.update(bundle_with(authority, trust_token=held.trust_list_token), at=NOW)
    assert same.trust_list == held.trust_list


def test_expired_trust_list_is_refused_on_update(fresh_authority: Authority) -> None:
    authority = fresh_authority
    held = authority.bundle()
    expired = authority.trust_list(
        version=2, issued_at=NOW - timedelta(days=40), expires_at=NOW - timedelta(seconds=1)
    )
    token = sign_trust_list(expired, authority.anchor)
    with pytest.raises(TrustListExpiredError):
        read_trust_list(token, anchors=[authority.anchor.public_key], at=NOW)
    with pytest.raises(BundleError, match="expired"):
        held.update(bundle_with(authority, trust_token=token), at=NOW)
    assert held.trust_list.version == 1
    assert verify(held, encode_card(make_card(), authority.issuing)) is Reason.VALID


def test_expired_trust_list_at_first_install_answers_trust_list_expired(
    fresh_authority: Authority,
) -> None:
    authority = fresh_authority
    expires = NOW - timedelta(seconds=1)
    expired = authority.trust_list(issued_at=NOW - timedelta(days=40), expires_at=expires)
    bundle = Bundle.from_json(authority.bundle_document(trust_list=expired), at=NOW)
    qr_text = encode_card(make_card(), authority.issuing)
    result = Verifier(bundle).verify(qr_text, service="hc", at=NOW)
    assert result.reason is Reason.TRUST_LIST_EXPIRED
    assert result.card is None
    # Exactly at expiry it has expired; a second before, the same card is valid.
    assert verify(bundle, qr_text, at=expires) is Reason.TRUST_LIST_EXPIRED
    assert verify(bundle, qr_text, at=expires - timedelta(seconds=1)) is Reason.VALID


@pytest.mark.parametrize(
    ("age", "accepted"),
    [
        pytest.param(timedelta(hours=5), False, id="older"),
        pytest.param(timedelta(hours=3, seconds=1), False, id="one-second-older"),
        pytest.param(timedelta(hours=3), True, id="same"),
        pytest.param(timedelta(hours=1), True, id="newer"),
    ],
)
def test_status_list_older_than_the_held_one_is_refused(
    fresh_authority: Authority, age: timedelta, accepted: bool
) -> None:
    authority = fresh_authority
    held = authority.bundle(
        status_tokens=[authority.status_token(issued_at=NOW - timedelta(hours=3))]
    )
    authority.version = 2
    document = bundle_with(
        authority,
        trust_token=authority.trust_list_token(),
        status_tokens=[authority.status_token(issued_at=NOW - age)],
    )
    if accepted:
        assert held.update(document, at=NOW).status_lists[STATUS_URI].issued_at == NOW - age
    else:
        with pytest.raises(BundleError, match="rollback"):
            held.update(document, at=NOW)


def test_a_different_status_list_with_the_held_iat_is_refused(fresh_authority: Authority) -> None:
    """The issuer revoked card 9 and signed a list in the same second as one without the
    revocation: replaying that one must not make the revoked card valid again."""
    authority = fresh_authority
    issued = NOW - timedelta(hours=1)
    before_revocation = authority.status_token(issued_at=issued)
    authority.statuses[9] = CardStatus.REVOKED
    revoked_list = authority.status_token(issued_at=issued)
    held = authority.bundle(status_tokens=[revoked_list])
    revoked = encode_card(make_card(status=StatusRef("1", 9)), authority.issuing)
    assert verify(held, revoked) is Reason.REVOKED
    with pytest.raises(BundleError, match="claims the held issue time"):
        held.update(bundle_with(authority, status_tokens=[before_revocation]), at=NOW)
    assert verify(held, revoked) is Reason.REVOKED
    # Same iat, only exp or ttl changed: refused too (the claims are compared, not the bits).
    for other in (
        sign_status_list(
            authority.statuses,
            uri=STATUS_URI,
            signer=authority.issuing,
            issued_at=issued,
            expires_at=issued + timedelta(days=31),
            ttl=3600,
        ),
        sign_status_list(
            authority.statuses,
            uri=STATUS_URI,
            signer=authority.issuing,
            issued_at=issued,
            expires_at=issued + timedelta(days=30),
            ttl=60,
        ),
    ):
        with pytest.raises(BundleError, match="claims the held issue time"):
            held.update(bundle_with(authority, status_tokens=[other]), at=NOW)
    # Control: the same claims signed again (a new ES256 signature) are no change, and a
    # later list replaces the held one.
    again = authority.status_token(issued_at=issued)
    assert again != revoked_list
    same = held.update(bundle_with(authority, status_tokens=[again]), at=NOW)
    assert verify(same, revoked) is Reason.REVOKED
    later = authority.status_token(issued_at=issued + timedelta(seconds=1))
    newer = held.update(bundle_with(authority, status_tokens=[later]), at=NOW)
    assert newer.status_lists[STATUS_URI].issued_at == issued + timedelta(seconds=1)


def test_a_held_status_list_cannot_be_dropped_and_rolled_back_later(
    fresh_authority: Authority,
) -> None:
    """Dropping the held list, then offering an older one, would undo a revocation."""
    authority = fresh_authority
    old = authority.status_token(issued_at=NOW - timedelta(hours=5))
    authority.statuses[9] = CardStatus.REVOKED
    held = authority.bundle(status_tokens=[authority.status_token(issued_at=NOW - HOUR)])
    with pytest.raises(BundleError, match="drops the held status list"):
        held.update(bundle_with(authority, status_tokens=[]), at=NOW)
    with pytest.raises(BundleError, match="rollback"):
        held.update(bundle_with(authority, status_tokens=[old]), at=NOW)
    # Control: when the trust list no longer gives the URI an owner, the list goes with it.
    moved = authority.trust_list(
        version=2,
        issuers=(replace(authority.trust_list().issuers[0], status_uri_prefix=MOVED_PREFIX),),
    )
    dropped = held.update(
        bundle_with(authority, trust_token=authority.trust_list_token(moved), status_tokens=[]),
        at=NOW,
    )
    assert dropped.status_lists == {}


def test_two_status_lists_for_one_uri_in_a_bundle_are_refused(fresh_authority: Authority) -> None:
    authority = fresh_authority
    old = authority.status_token(issued_at=NOW - timedelta(hours=5))
    new = authority.status_token(issued_at=NOW - HOUR)
    with pytest.raises(BundleError, match="two status lists for"):
        Bundle.from_json(bundle_with(authority, status_tokens=[new, old]), at=NOW)


def test_failed_updates_leave_the_held_bundle_usable(fresh_authority: Authority) -> None:
    authority = fresh_authority
    authority.statuses[9] = CardStatus.REVOKED
    held = authority.bundle()
    verifier = Verifier(held)
    valid = encode_card(make_card(), authority.issuing)
    revoked = encode_card(make_card(status=StatusRef("1", 9)), authority.issuing)
    before = json.dumps(held.to_json(), sort_keys=True)
    unrevoked = replace(authority, statuses=StatusList(4096, 2))
    attempts = [
        bundle_with(authority, trust_token=sign_trust_list(_newer(authority), random_signer())),
        bundle_with(authority, trust_token="not a token"),
        bundle_with(authority, status_tokens=[unrevoked.status_token(signer=random_signer())]),
        bundle_with(
            authority,
            status_tokens=[unrevoked.status_token(issued_at=NOW - timedelta(days=1))],
        ),
        {"format": "fmcard-bundle/1"},
        {"format": "something else"},
    ]
    for document in attempts:
        with pytest.raises(BundleError):
            held.update(document, at=NOW)
        assert json.dumps(held.to_json(), sort_keys=True) == before
        assert verifier.verify(valid, service="hc", at=NOW).reason is Reason.VALID
        assert verifier.verify(revoked, service="hc", at=NOW).reason is Reason.REVOKED
        assert Verifier(held).verify(revoked, service="hc", at=NOW).reason is Reason.REVOKED
    # And a good update still applies afterwards.
    updated = held.update(bundle_with(authority, trust_token=authority.trust_list_token()), at=NOW)
    assert verify(updated, valid) is Reason.VALID


# --- Anchor rotation ------------------------------------------------------------------------


def test_anchor_rotation_through_next_anchors(fresh_authority: Authority) -> None:
    authority = fresh_authority
    new_anchor = random_signer()
    held = authority.bundle(trust_list=authority.trust_list(next_anchors=(new_anchor.public_key,)))
    qr_text = encode_card(make_card(), authority.issuing)

    v2 = sign_trust_list(authority.trust_list(version=2), new_anchor)
    rotated = held.update(bundle_with(authority, trust_token=v2), at=NOW)
    assert rotated.trust_list.version == 2
    assert verify(rotated, qr_text) is Reason.VALID

    # Having signed version 2, the new anchor is the counter's anchor: it signs version 3
    # without having to announce itself again.
    v3 = sign_trust_list(authority.trust_list(version=3), new_anchor)
    assert held.update(bundle_with(authority, trust_token=v3), at=NOW).trust_list.version == 3
    assert rotated.update(bundle_with(authority, trust_token=v3), at=NOW).trust_list.version == 3


def test_anchor_rotation_refuses_keys_that_were_not_announced(fresh_authority: Authority) -> None:
    authority = fresh_authority
    new_anchor = random_signer()
    announcing = authority.bundle(
        trust_list=authority.trust_list(next_anchors=(new_anchor.public_key,))
    )
    silent = authority.bundle()
    v2 = authority.trust_list(version=2)
    by_random = bundle_with(authority, trust_token=sign_trust_list(v2, random_signer()))
    by_new = bundle_with(authority, trust_token=sign_trust_list(v2, new_anchor))
    with pytest.raises(BundleError):
        announcing.update(by_random, at=NOW)
    with pytest.raises(BundleError):
        silent.update(by_new, at=NOW)  # not announced by the held list
    with pytest.raises(BundleError):
        # A bundle cannot announce its own anchor: the counter's pins decide.
        silent.update(
            bundle_with(
                authority,
                trust_token=sign_trust_list(v2, new_anchor),
                anchors=[new_anchor.public_key],
            ),
            at=NOW,
        )
    assert announcing.update(by_new, at=NOW).trust_list.version == 2


def test_first_install_pins_the_bundle_anchor_and_later_the_pin_rules(
    fresh_authority: Authority,
) -> None:
    authority = fresh_authority
    attacker = Authority()
    held = authority.bundle()
    # The attacker's bundle is self-consistent (its own anchor signs its own trust list) ...
    assert Bundle.from_json(attacker.bundle_document(), at=NOW).trust_list.version == 1
    # ... but once a counter holds the real anchor, it is refused.
    attacker.version = 5
    with pytest.raises(BundleError):
        held.update(attacker.bundle_document(), at=NOW)
    with pytest.raises(BundleError):
        Bundle.from_json(
            attacker.bundle_document(), at=NOW, pinned_anchors=(authority.anchor.public_key,)
        )
    assert held.trust_list.issuers[0].issuer_id == ISSUER_ID


def _repeated(authority: Authority, what: str) -> dict[str, Any]:
    """The claims of a trust list that names one thing twice (``what``), as an anchor that
    made a mistake would sign them (the issuer's own signing refuses to)."""
    claims = authority.trust_list().to_claims()
    issuer = claims["issuers"][0]
    key = issuer["keys"][0]
    if what == "key-active-and-compromised":
        issuer["keys"] = [key, {**key, "state": "compromised"}]
    elif what == "key-under-two-issuers":
        claims["issuers"].append({**issuer, "id": OTHER_ID, "status_uri_prefix": MOVED_PREFIX})
    else:
        other_key = [authority.trusted_key(random_signer()).to_json()]
        if what == "issuer-id":
            moved = {**issuer, "status_uri_prefix": MOVED_PREFIX, "keys": other_key}
            claims["issuers"].append(moved)
        else:
            assert what == "status-uri-prefix"
            claims["issuers"].append({**issuer, "id": OTHER_ID, "keys": other_key})
    return claims


REPEATS = ["key-active-and-compromised", "key-under-two-issuers", "issuer-id", "status-uri-prefix"]


@pytest.mark.parametrize("what", REPEATS)
def test_trust_list_naming_a_key_issuer_or_prefix_twice_is_refused(
    fresh_authority: Authority, what: str
) -> None:
    """With one key listed twice (active beside compromised), the verdict depended on the
    order of the entries: the first verifying entry won, so a compromised key could pass as
    active (the card was VALID). Issuer ids and status URI prefixes are identities too."""
    authority = fresh_authority
    token = encode_jwt(_repeated(authority, what), authority.anchor, typ=TRUST_LIST_TYP)
    with pytest.raises(SignedDocumentError, match="twice"):
        read_trust_list(token, anchors=[authority.anchor.public_key], at=NOW)
    document = authority.bundle_document()
    document["trust_list"] = token
    with pytest.raises(BundleError, match="twice"):
        Bundle.from_json(document, at=NOW)
    held = authority.bundle()
    with pytest.raises(BundleError):
        held.update(document, at=NOW)
    # The issuer's own signing refuses to make such a list.
    with pytest.raises(SignedDocumentError, match="twice"):
        sign_trust_list(_unchecked(authority, what), authority.anchor)


def _unchecked(authority: Authority, what: str) -> TrustList:
    """The repeated list as a :class:`TrustList` object, built without reading it."""
    claims = _repeated(authority, what)
    issuers = tuple(TrustedIssuer.from_json(issuer) for issuer in claims["issuers"])
    return authority.trust_list(issuers=issuers)
