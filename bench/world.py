"""The issuer world the benchmarks run in, and many distinct cards signed in it.

Built from the library's public API only, the same way ``tests/factories.py`` builds its test
world: a trust anchor and an ES256 issuing key, a signed trust list, one signed status list
(1 % of its entries revoked, none of them used by the cards below) and a verified
:class:`~verifier.bundle.Bundle` with a healthcare policy. Cards are made from a seeded
:class:`random.Random`, so every run signs the same claims (signatures differ: ECDSA is
randomised); every card has its own foreigner code, serial, status index, names, birth date
and entitlements.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec

from keys.cards import encode_card
from keys.signer import KeySigner
from keys.status_list import CardStatus, StatusList, sign_status_list
from keys.trust_list import KeyState, TrustedIssuer, TrustedKey, TrustList, sign_trust_list
from schemas import code as foreigner_code
from schemas.card import BirthDate, Card, Entitlement, StatusRef
from verifier.bundle import Bundle, build_bundle_document
from verifier.policy import Policy
from verifier.verifier import Verifier

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
"""The counter's clock for every verification."""

ISSUER_ID = "CN-ZJ-YWPSB"
STATUS_PREFIX = "https://fmcard.example/status/"
LIST_ID = "1"
STATUS_LIST_SIZE = 100_000
REVOKED_FRACTION = 0.01
SERVICE = "hc"

KINDS = ("latin", "zh", "ar+zh")
"""Card kinds by names: Latin only; plus a Chinese name; plus an Arabic native name too."""

FAMILY_NAMES = (
    "IVANOV",
    "PETROVA",
    "KUMAR",
    "SINGH",
    "OKAFOR",
    "NAZAROV",
    "DA SILVA",
    "MÜLLER",
    "GARCÍA LÓPEZ",
    "O'BRIEN",
    "NGUYEN",
    "KHAN",
    "SMIRNOV",
    "ABUBAKAR",
    "KOWALSKI",
    "DUBOIS",
)
GIVEN_NAMES = (
    "SERGEI",
    "ANNA",
    "RAVI",
    "CHIDI",
    "JOÃO",
    "MARIA JOSÉ",
    "AMIT",
    "TIMUR",
    "OLGA",
    "PIERRE",
    "FATIMA",
    "JAMES PATRICK",
    "AIGERIM",
    "EMEKA",
)
ARABIC_FAMILY_NAMES = ("AL-HASHIMI", "HASSAN", "IBRAHIM", "AL-SAYED", "MANSOUR", "HADDAD")
ARABIC_GIVEN_NAMES = ("MOHAMMED ABDULLAH", "AHMED", "FATIMA", "OMAR KHALED", "YOUSEF", "LAYLA")
ARABIC_NATIVE_NAMES = (
    "محمد عبدالله الهاشمي",
    "أحمد حسن",
    "فاطمة إبراهيم",
    "عمر خالد السيد",
    "يوسف منصور",
    "ليلى حداد",
    "عبد الرحمن علي",
)
CHINESE_NAMES = (
    "穆罕默德",
    "伊万诺夫",
    "库马尔",
    "阿卜杜拉·哈希米",
    "玛丽亚",
    "谢尔盖·彼得罗夫",
    "奥卡福",
    "法蒂玛",
    "艾哈迈德",
    "达席尔瓦",
    "纳扎罗夫",
    "阿依古丽",
)
LATIN_NATIONALITIES = ("RUS", "KAZ", "NGA", "BRA", "DEU", "FRA", "USA", "GBR", "UZB", "KEN", "IND")
ARABIC_NATIONALITIES = ("SAU", "EGY", "JOR", "ARE", "MAR", "DZA", "SYR", "YEM")
OTHER_SERVICES = ("ed", "tr", "bk", "ho", "bz")
SERIAL_ALPHABET = string.ascii_uppercase + string.digits


@dataclass(frozen=True, slots=True)
class Sample:
    """One signed card: its kind, its claims and its QR text (with the portrait, if any)."""

    kind: str
    card: Card
    qr: str
    portrait: bytes | None = None


@dataclass
class World:
    """An issuer, a verified bundle and a verifier for it."""

    issuing_key: ec.EllipticCurvePrivateKey
    signer: KeySigner
    anchor: KeySigner
    bundle: Bundle
    verifier: Verifier
    free_indexes: list[int]
    """Status indexes whose value is VALID, in a random order; cards take them from the end."""
    used_codes: set[str] = field(default_factory=set)
    used_serials: set[str] = field(default_factory=set)

    @property
    def issuer(self) -> TrustedIssuer:
        return self.bundle.trust_list.issuers[0]

    @property
    def trusted_key(self) -> TrustedKey:
        return self.issuer.keys[0]

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.issuing_key.public_key()

    @property
    def policy(self) -> Policy:
        return self.bundle.policies[SERVICE]


def build_world(rng: random.Random) -> World:
    """Keys, trust list, one status list with 1 % revoked, a verified bundle and a verifier."""
    issuing_key = ec.generate_private_key(ec.SECP256R1())
    signer = KeySigner(issuing_key)
    anchor = KeySigner(ec.generate_private_key(ec.SECP256R1()))
    issuer = TrustedIssuer(
        issuer_id=ISSUER_ID,
        name_en="Yiwu Public Security Bureau",
        name_zh="义乌市公安局",
        status_uri_prefix=STATUS_PREFIX,
        keys=(
            TrustedKey(signer.public_key, KeyState.ACTIVE, valid_from=NOW - timedelta(days=365)),
        ),
    )
    trust_list = TrustList(
        version=1,
        issued_at=NOW - timedelta(hours=1),
        expires_at=NOW + timedelta(days=30),
        issuers=(issuer,),
    )
    statuses = StatusList(STATUS_LIST_SIZE, 2)
    indexes = list(range(STATUS_LIST_SIZE))
    rng.shuffle(indexes)
    revoked = int(STATUS_LIST_SIZE * REVOKED_FRACTION)
    for index in indexes[:revoked]:
        statuses[index] = CardStatus.REVOKED
    status_issued = NOW - timedelta(hours=3)
    status_token = sign_status_list(
        statuses,
        uri=STATUS_PREFIX + LIST_ID,
        signer=signer,
        issued_at=status_issued,
        expires_at=status_issued + timedelta(days=30),
        ttl=3600,
    )
    document = build_bundle_document(
        anchors=[anchor.public_key],
        trust_list=sign_trust_list(trust_list, anchor),
        status_lists=[status_token],
        policies=[Policy(SERVICE)],
    )
    bundle = Bundle.from_json(document, at=NOW)
    return World(issuing_key, signer, anchor, bundle, Verifier(bundle), indexes[revoked:])


def random_code(rng: random.Random) -> str:
    """A valid foreigner code from ``rng`` (the library's generator uses :mod:`secrets`)."""
    body = "".join(rng.choice(foreigner_code.ALPHABET) for _ in range(9))
    return next(body + c for c in foreigner_code.ALPHABET if foreigner_code.is_valid(body + c))


def random_card(
    rng: random.Random, kind: str, status_index: int, *, code: str, serial: str
) -> Card:
    """A valid card of ``kind`` (see :data:`KINDS`) with random names, dates and services."""
    if kind not in KINDS:
        raise ValueError(f"unknown card kind {kind!r}")
    native_name: str | None = None
    chinese_name: str | None = None
    if kind == "ar+zh":
        family = rng.choice(ARABIC_FAMILY_NAMES)
        given = rng.choice(ARABIC_GIVEN_NAMES)
        nationality = rng.choice(ARABIC_NATIONALITIES)
        native_name = rng.choice(ARABIC_NATIVE_NAMES)
    else:
        family = rng.choice(FAMILY_NAMES)
        given = rng.choice(GIVEN_NAMES)
        nationality = rng.choice(LATIN_NATIONALITIES)
    if kind != "latin":
        chinese_name = rng.choice(CHINESE_NAMES)
    issued = NOW - timedelta(days=rng.randint(1, 300), seconds=rng.randint(0, 86_399))
    entitlements = [Entitlement(SERVICE)]
    for service in rng.sample(OTHER_SERVICES, rng.randint(0, 3)):
        if rng.random() < 0.2:
            start = issued + timedelta(days=rng.randint(0, 30))
            entitlements.append(Entitlement(service, start, start + timedelta(days=365)))
        else:
            entitlements.append(Entitlement(service))
    rng.shuffle(entitlements)
    birth = BirthDate(rng.randint(1950, 2004), rng.randint(1, 12), rng.randint(1, 28))
    if rng.random() < 0.05:
        birth = BirthDate(birth.year)  # passports with an unknown month and day exist
    return Card(
        issuer=ISSUER_ID,
        code=code,
        serial=serial,
        issued_at=issued,
        valid_from=issued,
        expires_at=issued + timedelta(days=365 * rng.randint(1, 5)),
        family_name=family,
        given_names=given,
        native_name=native_name,
        chinese_name=chinese_name,
        nationality=nationality,
        birth_date=birth,
        entitlements=tuple(entitlements),
        status=StatusRef(LIST_ID, status_index),
    )


def make_samples(
    world: World, rng: random.Random, count: int, *, portrait: bytes | None = None
) -> list[Sample]:
    """Sign ``count`` distinct cards, kinds in turn; each takes a status index of its own."""
    codes, serials = world.used_codes, world.used_serials
    samples: list[Sample] = []
    for number in range(count):
        code = random_code(rng)
        while code in codes:
            code = random_code(rng)
        serial = "".join(rng.choice(SERIAL_ALPHABET) for _ in range(8))
        while serial in serials:
            serial = "".join(rng.choice(SERIAL_ALPHABET) for _ in range(8))
        codes.add(code)
        serials.add(serial)
        kind = KINDS[number % len(KINDS)]
        card = random_card(rng, kind, world.free_indexes.pop(), code=code, serial=serial)
        qr = encode_card(card, world.signer, portrait=portrait)
        samples.append(Sample(kind, card, qr, portrait))
    return samples
