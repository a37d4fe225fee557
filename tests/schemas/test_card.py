"""The card: wire claims round trip, and every validation rule refused with the claim named."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schemas import code as foreigner_code
from schemas import strictjson
from schemas.card import BirthDate, Card, Entitlement, StatusRef
from schemas.errors import InvalidClaimError, SchemaError
from tests.factories import NOW, make_card


def _digest(data: bytes) -> str:
    """Base64url of 16 bytes of SHA-256 without padding, the form of a disclosure digest."""
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()[:16]).rstrip(b"=").decode()


CODE = foreigner_code.generate()
DIGEST = _digest(b"a disclosure")
HOLDER_JWK = {
    "crv": "P-256",
    "kty": "EC",
    "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0",
}
WINDOW_FROM = datetime(2027, 1, 1, tzinfo=UTC)
WINDOW_UNTIL = datetime(2028, 1, 1, tzinfo=UTC)


def _base_card() -> Card:
    return make_card(code=CODE)


BASE_CLAIMS = _base_card().to_claims()
IAT: int = BASE_CLAIMS["iat"]
NBF: int = BASE_CLAIMS["nbf"]
EXP: int = BASE_CLAIMS["exp"]

_DELETE = object()


def _claims(**changes: Any) -> dict[str, Any]:
    """The base card's claims with ``changes``; a value of ``_DELETE`` removes the claim."""
    out = dict(BASE_CLAIMS)
    for name, value in changes.items():
        if value is _DELETE:
            del out[name]
        else:
            out[name] = value
    return out


def _full_card() -> Card:
    """A card with every optional field set."""
    return make_card(
        code=CODE,
        entitlements=(
            Entitlement("hc"),
            Entitlement("bk", WINDOW_FROM, WINDOW_UNTIL),
            Entitlement("ed", valid_from=WINDOW_FROM),
            Entitlement("tr", valid_until=WINDOW_UNTIL),
        ),
    )


def _phone_card(**changes: Any) -> Card:
    """A phone card (version 2) as signed: bound, nationality, birth date and entitlements
    only as digests."""
    fields: dict[str, Any] = {
        "code": CODE,
        "version": 2,
        "nationality": None,
        "birth_date": None,
        "entitlements": (),
        "holder_key": {"jwk": dict(HOLDER_JWK)},
        "disclosure_digests": (DIGEST, _digest(b"another")),
    }
    return make_card(**{**fields, **changes})


def _minimal_card() -> Card:
    """A card without any optional field."""
    return make_card(
        code=CODE, given_names="", native_name=None, chinese_name=None, entitlements=()
    )


# --- round trip -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "card",
    [
        pytest.param(_base_card(), id="factory"),
        pytest.param(_full_card(), id="every-optional-field"),
        pytest.param(_minimal_card(), id="no-optional-field"),
        pytest.param(_phone_card(), id="phone-card"),
    ],
)
def test_claims_round_trip(card: Card) -> None:
    claims = card.to_claims()
    again = Card.from_claims(claims)
    assert again == card
    assert again.holder_key == card.holder_key  # not part of ==, so compared on its own
    assert again.to_claims() == claims
    # Through the JSON that is actually signed, too.
    assert Card.from_claims(strictjson.loads(strictjson.dumps(claims))) == card


def test_claims_of_a_full_card() -> None:
    claims = _full_card().to_claims()
    assert list(claims)[:8] == ["v", "iss", "sub", "jti", "iat", "nbf", "exp", "fn"]
    assert claims["en"] == {
        "hc": [],
        "bk": [int(WINDOW_FROM.timestamp()), int(WINDOW_UNTIL.timestamp())],
        "ed": [int(WINDOW_FROM.timestamp()), None],
        "tr": [None, int(WINDOW_UNTIL.timestamp())],
    }
    assert claims["st"] == ["1", 7]
    assert claims["bd"] == 19850314
    assert claims["sub"] == CODE
    assert all(type(claims[name]) is int for name in ("v", "iat", "nbf", "exp", "bd"))


def test_claims_of_a_phone_card_keep_personal_claims_out_of_the_clear() -> None:
    claims = _phone_card().to_claims()
    assert set(claims) == {
        "v", "iss", "sub", "jti", "iat", "nbf", "exp", "fn", "gn", "nn", "zh", "st", "cnf", "_sd"
    }  # fmt: skip
    assert claims["v"] == 2
    assert claims["cnf"] == {"jwk": HOLDER_JWK}
    assert claims["_sd"] == [DIGEST, _digest(b"another")]


@pytest.mark.parametrize(
    ("changes", "claim"),
    [
        pytest.param({"na": "NGA"}, "na", id="nationality-in-clear"),
        pytest.param({"bd": 19850314}, "bd", id="birth-date-in-clear"),
        pytest.param({"en": {}}, "en", id="entitlements-in-clear"),
        pytest.param({"_sd": _DELETE}, "_sd", id="no-digests"),
        pytest.param({"cnf": _DELETE}, "cnf", id="no-device-key"),
        pytest.param({"_sd": [DIGEST, DIGEST]}, "_sd", id="digest-twice"),
        pytest.param({"_sd": [_digest(bytes([i])) for i in range(21)]}, "_sd", id="21-digests"),
        pytest.param({"cnf": {"jwk": {**HOLDER_JWK, "alg": "ES256"}}}, "cnf", id="jwk-extra"),
        pytest.param({"cnf": {"jwk": {**HOLDER_JWK, "crv": "P-384"}}}, "cnf", id="jwk-curve"),
        pytest.param(
            {"cnf": {"jwk": {**HOLDER_JWK, "x": HOLDER_JWK["x"][:-1] + "V"}}},
            "cnf",
            id="jwk-x-not-canonical",
        ),
    ],
)
def test_phone_card_wire_rules(changes: dict[str, Any], claim: str) -> None:
    claims = _phone_card().to_claims()
    for name, value in changes.items():
        if value is _DELETE:
            del claims[name]
        else:
            claims[name] = value
    with pytest.raises(InvalidClaimError) as exc_info:
        Card.from_claims(claims)
    assert exc_info.value.claim == claim


@pytest.mark.parametrize("name", ["cnf", "_sd"])
def test_version_1_refuses_binding_claims(name: str) -> None:
    """A bound card must never read as a printed one: version 1 cannot carry cnf or _sd."""
    phone = _phone_card().to_claims()
    with pytest.raises(InvalidClaimError) as exc_info:
        Card.from_claims(_claims(**{name: phone[name]}))
    assert exc_info.value.claim == name


def test_claims_of_a_minimal_card_leave_out_optional_members() -> None:
    claims = _minimal_card().to_claims()
    assert set(claims) == {
        "v", "iss", "sub", "jti", "iat", "nbf", "exp", "fn", "na", "bd", "en", "st"
    }  # fmt: skip
    assert claims["en"] == {}
    card = Card.from_claims(claims)
    assert card.given_names == ""
    assert card.native_name is None
    assert card.chinese_name is None
    assert card.holder_key is None
    assert card.disclosure_digests == ()


def test_times_are_normalised_to_utc_whole_seconds() -> None:
    beijing = timezone(timedelta(hours=8))
    issued = datetime(2026, 11, 21, 17, 30, 0, 999_999, tzinfo=beijing)
    card = make_card(code=CODE, issued_at=issued, valid_from=issued)
    assert card.issued_at == datetime(2026, 11, 21, 9, 30, tzinfo=UTC)
    assert card.issued_at.tzinfo is UTC
    assert card.to_claims()["iat"] == int(card.issued_at.timestamp())


def test_code_is_normalised() -> None:
    card = make_card(code=foreigner_code.format_for_reading(CODE).lower())
    assert card.code == CODE


# --- refusals from the wire -----------------------------------------------------------------

_LATER = EXP + 86400
_TOO_LONG = "A" * 65

CLAIM_CASES = [
    pytest.param({"pp": "E12345678"}, "pp", id="unknown-claim"),
    pytest.param({"passport": "E12345678"}, "passport", id="unknown-claim-passport"),
    pytest.param({"sub": _DELETE}, "sub", id="missing-sub"),
    pytest.param({"exp": _DELETE}, "exp", id="missing-exp"),
    pytest.param({"st": _DELETE}, "st", id="missing-st"),
    pytest.param({"en": _DELETE}, "en", id="missing-en"),
    pytest.param({"v": 3}, "v", id="version-3"),
    pytest.param({"v": 2}, "cnf", id="version-2-needs-a-device-key"),
    pytest.param({"v": True}, "v", id="bool-version"),
    pytest.param({"iat": True}, "iat", id="bool-as-int-iat"),
    pytest.param({"nbf": False}, "nbf", id="bool-as-int-nbf"),
    pytest.param({"exp": str(EXP)}, "exp", id="string-exp"),
    pytest.param({"exp": float(EXP)}, "exp", id="float-exp"),
    pytest.param({"exp": None}, "exp", id="null-exp"),
    pytest.param({"iat": 946684799}, "iat", id="iat-before-2000"),
    pytest.param({"nbf": -1}, "nbf", id="negative-nbf"),
    pytest.param({"exp": 4102444800}, "exp", id="exp-at-2100"),
    pytest.param({"exp": 10**12}, "exp", id="exp-far-future"),
    pytest.param({"exp": NBF - 1}, "exp", id="exp-before-nbf"),
    pytest.param({"exp": NBF}, "exp", id="exp-equal-nbf"),
    pytest.param({"nbf": IAT - 86400, "exp": IAT}, "exp", id="exp-equal-iat"),
    pytest.param({"exp": NBF + 21 * 365 * 86400}, "exp", id="validity-over-20-years"),
    pytest.param({"na": "XYZ"}, "na", id="unknown-nationality"),
    pytest.param({"na": "sau"}, "na", id="lower-case-nationality"),
    pytest.param({"na": "SA"}, "na", id="alpha-2-nationality"),
    pytest.param({"na": 682}, "na", id="numeric-nationality"),
    pytest.param({"bd": 19850230}, "bd", id="birth-date-feb-30"),
    pytest.param({"bd": 19851301}, "bd", id="birth-month-13"),
    pytest.param({"bd": 19850014}, "bd", id="birth-day-without-month"),
    pytest.param({"bd": 18991231}, "bd", id="birth-year-1899"),
    pytest.param({"bd": 20261122}, "bd", id="birth-date-after-issue"),
    pytest.param({"bd": 20261200}, "bd", id="birth-month-after-issue"),
    pytest.param({"bd": "19850314"}, "bd", id="string-birth-date"),
    pytest.param({"bd": True}, "bd", id="bool-birth-date"),
    pytest.param({"fn": "AL\u202eHASHIMI"}, "fn", id="name-U+202E-right-to-left-override"),
    pytest.param({"gn": "MOHAMMED\u2066 ABDULLAH"}, "gn", id="name-U+2066-isolate"),
    pytest.param({"fn": "AL\u0000HASHIMI"}, "fn", id="name-U+0000"),
    pytest.param({"gn": "MOHAMMED\u00a0ABDULLAH"}, "gn", id="name-U+00A0-no-break-space"),
    pytest.param({"fn": "AL\u200bHASHIMI"}, "fn", id="name-U+200B-zero-width-space"),
    pytest.param({"fn": "AL\nHASHIMI"}, "fn", id="name-newline"),
    pytest.param({"nn": "محمد\u202eعبدالله"}, "nn", id="native-name-U+202E"),  # noqa: RUF001
    pytest.param({"zh": "穆罕\u0000默德"}, "zh", id="chinese-name-U+0000"),
    pytest.param({"zh": "穆罕\u3000默德"}, "zh", id="chinese-name-ideographic-space"),
    pytest.param({"gn": "MOHAMMED  ABDULLAH"}, "gn", id="name-double-space"),
    pytest.param({"fn": " AL-HASHIMI"}, "fn", id="name-leading-space"),
    pytest.param({"fn": "AL-HASHIMI "}, "fn", id="name-trailing-space"),
    pytest.param({"fn": _TOO_LONG}, "fn", id="name-too-long"),
    pytest.param({"nn": "م" * 65}, "nn", id="native-name-too-long"),
    pytest.param({"fn": ""}, "fn", id="empty-family-name"),
    pytest.param({"fn": 7}, "fn", id="non-string-family-name"),
    pytest.param({"fn": "ИВАНОВ"}, "fn", id="cyrillic-family-name"),
    pytest.param({"fn": "王"}, "fn", id="han-family-name"),
    pytest.param({"gn": "ΙΩΑΝΝΗΣ"}, "gn", id="greek-given-names"),
    pytest.param({"fn": "AL-HASHIMI2"}, "fn", id="digit-in-family-name"),
    pytest.param({"en": {"HC": []}}, "en", id="service-upper-case"),
    pytest.param({"en": {"h": []}}, "en", id="service-too-short"),
    pytest.param({"en": {"healthcare": []}}, "en", id="service-too-long"),
    pytest.param({"en": {"1hc": []}}, "en", id="service-starts-with-digit"),
    pytest.param({"en": {"h-c": []}}, "en", id="service-hyphen"),
    pytest.param({"en": [["hc", []]]}, "en", id="entitlements-not-an-object"),
    pytest.param({"en": {"hc": [NBF + 10, NBF]}}, "en.hc", id="window-end-before-start"),
    pytest.param({"en": {"hc": [NBF, NBF]}}, "en.hc", id="window-empty"),
    pytest.param({"en": {"hc": [None, None]}}, "en.hc", id="window-both-null"),
    pytest.param({"en": {"hc": [NBF]}}, "en.hc", id="window-one-bound"),
    pytest.param({"en": {"hc": {}}}, "en.hc", id="window-not-a-list"),
    pytest.param({"en": {"hc": [True, EXP]}}, "en.hc", id="window-bool-bound"),
    pytest.param({"en": {"hc": [NBF, "x"]}}, "en.hc", id="window-string-bound"),
    pytest.param({"en": {"hc": [NBF, 4102444800]}}, "en.hc", id="window-after-2100"),
    pytest.param({"en": {f"s{i:02d}": [] for i in range(17)}}, "en", id="too-many-entitlements"),
    pytest.param({"st": ["1", 2**31]}, "st", id="status-index-too-large"),
    pytest.param({"st": ["1", -1]}, "st", id="status-index-negative"),
    pytest.param({"st": ["1", True]}, "st", id="status-index-bool"),
    pytest.param({"st": ["1"]}, "st", id="status-without-index"),
    pytest.param({"st": {"1": 7}}, "st", id="status-not-a-list"),
    pytest.param({"st": ["a/b", 7]}, "st", id="status-list-id-malformed"),
    pytest.param({"ph": DIGEST}, "ph", id="portrait-digest-is-no-longer-a-claim"),
    pytest.param({"cnf": {"jwk": {**HOLDER_JWK, "d": "secret"}}}, "cnf", id="holder-key-d"),
    pytest.param({"cnf": {"jwk": HOLDER_JWK, "kid": "x"}}, "cnf", id="holder-key-extra"),
    pytest.param({"cnf": {"jwk": {"kty": 1}}}, "cnf", id="holder-key-non-string"),
    pytest.param({"cnf": "key"}, "cnf", id="holder-key-not-an-object"),
    pytest.param({"_sd": ["short"]}, "_sd", id="disclosure-digest-malformed"),
    pytest.param({"_sd": [DIGEST + "="]}, "_sd", id="disclosure-digest-padded"),
    pytest.param({"_sd": ["+" + DIGEST[1:]]}, "_sd", id="disclosure-digest-not-base64url"),
    pytest.param({"_sd": [12]}, "_sd", id="disclosure-digest-not-a-string"),
    pytest.param({"_sd": [DIGEST] * 17}, "_sd", id="too-many-disclosure-digests"),
    pytest.param({"_sd": "x"}, "_sd", id="disclosures-not-a-list"),
    pytest.param({"iss": "cn-zj-ywpsb"}, "iss", id="issuer-lower-case"),
    pytest.param({"sub": CODE[:-1]}, "sub", id="code-too-short"),
    pytest.param({"jti": "abc"}, "jti", id="serial-too-short"),
]


@pytest.mark.parametrize(("changes", "claim"), CLAIM_CASES)
def test_from_claims_refuses_with_the_claim_named(changes: dict[str, Any], claim: str) -> None:
    claims = _claims(**changes)
    with pytest.raises(InvalidClaimError) as exc_info:
        Card.from_claims(claims)
    error = exc_info.value
    assert error.claim == claim
    assert str(error).startswith(f"{claim}: ")
    assert error.message
    assert isinstance(error, SchemaError)


def test_code_with_a_bad_check_character_is_refused_as_sub() -> None:
    alphabet = foreigner_code.ALPHABET
    wrong = alphabet[(alphabet.index(CODE[-1]) + 1) % len(alphabet)]
    with pytest.raises(InvalidClaimError, match="check character") as exc_info:
        Card.from_claims(_claims(sub=CODE[:-1] + wrong))
    assert exc_info.value.claim == "sub"


# --- refusals when building --------------------------------------------------------------------


def _duplicate_service() -> object:
    return make_card(entitlements=(Entitlement("hc"), Entitlement("hc")))


CONSTRUCTOR_CASES: list[Any] = [
    pytest.param(_duplicate_service, "en", id="duplicate-service"),
    pytest.param(lambda: make_card(issued_at=NOW.replace(tzinfo=None)), "iat", id="naive-datetime"),
    pytest.param(lambda: make_card(valid_from="2026-11-21"), "nbf", id="string-datetime"),
    pytest.param(lambda: make_card(expires_at=NOW - timedelta(days=2)), "exp", id="exp-before-nbf"),
    pytest.param(lambda: make_card(nationality="ZZZ"), "na", id="bad-nationality"),
    pytest.param(lambda: BirthDate(1985, 2, 30), "bd", id="feb-30"),
    pytest.param(lambda: BirthDate(1985, 0, 14), "bd", id="day-without-month"),
    pytest.param(
        lambda: make_card(birth_date=BirthDate(2026, 11, 22)), "bd", id="birth-after-issue"
    ),
    pytest.param(lambda: make_card(family_name="X\u2066Y"), "fn", id="name-U+2066"),
    pytest.param(lambda: make_card(native_name="a\u202eb"), "nn", id="native-U+202E"),
    pytest.param(lambda: Entitlement("HC"), "en", id="service-code-pattern"),
    pytest.param(
        lambda: Entitlement("hc", WINDOW_UNTIL, WINDOW_FROM), "en.hc", id="window-reversed"
    ),
    pytest.param(
        lambda: Entitlement("hc", WINDOW_FROM.replace(tzinfo=None)), "en.hc", id="window-naive"
    ),
    pytest.param(lambda: StatusRef("1", 2**31), "st", id="status-index-too-large"),
    pytest.param(lambda: StatusRef("", 0), "st", id="status-list-id-empty"),
    pytest.param(
        lambda: _phone_card(holder_key={"jwk": {**HOLDER_JWK, "d": "AAAA"}}),
        "cnf",
        id="holder-key-private-d",
    ),
    pytest.param(lambda: _phone_card(disclosure_digests=("x",)), "_sd", id="disclosure-digest"),
    pytest.param(lambda: make_card(disclosure_digests=(DIGEST,)), "_sd", id="v1-digests"),
    pytest.param(lambda: make_card(holder_key={"jwk": HOLDER_JWK}), "cnf", id="v1-bound"),
    pytest.param(lambda: _phone_card(holder_key=None), "cnf", id="v2-unbound"),
    pytest.param(lambda: make_card(nationality=None), "na", id="v1-no-nationality"),
    pytest.param(lambda: make_card(birth_date=None), "bd", id="v1-no-birth-date"),
    pytest.param(lambda: make_card(version=3), "v", id="version"),
]


@pytest.mark.parametrize(("build", "claim"), CONSTRUCTOR_CASES)
def test_constructor_refuses_with_the_claim_named(build: Callable[[], object], claim: str) -> None:
    with pytest.raises(InvalidClaimError) as exc_info:
        build()
    assert exc_info.value.claim == claim


def test_replace_validates_too() -> None:
    card = _base_card()
    with pytest.raises(InvalidClaimError) as exc_info:
        card.replace(family_name="A\u202eB")
    assert exc_info.value.claim == "fn"
    assert card.replace(serial="ZZZZ9999").serial == "ZZZZ9999"


# --- accepted edge cases -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wire", "shown"),
    [
        pytest.param(19850000, "1985-XX-XX", id="unknown-month-and-day"),
        pytest.param(19850300, "1985-03-XX", id="unknown-day"),
        pytest.param(19850314, "1985-03-14", id="full"),
        pytest.param(20000229, "2000-02-29", id="leap-day"),
        pytest.param(20260000, "2026-XX-XX", id="unknown-in-issue-year"),
    ],
)
def test_birth_date_with_unknown_parts_is_accepted(wire: int, shown: str) -> None:
    card = Card.from_claims(_claims(bd=wire))
    assert str(card.birth_date) == shown
    assert card.birth_date is not None
    assert card.birth_date.to_wire() == wire
    assert card.to_claims()["bd"] == wire


@settings(deadline=None, max_examples=200)
@given(
    day=st.dates(min_value=date(1900, 1, 1), max_value=date(2026, 11, 21)),
    unknown=st.sampled_from(["none", "day", "month-and-day"]),
)
def test_birth_date_wire_round_trip(day: date, unknown: str) -> None:
    month = 0 if unknown == "month-and-day" else day.month
    day_of_month = 0 if unknown != "none" else day.day
    birth = BirthDate(day.year, month, day_of_month)
    assert BirthDate.from_wire(birth.to_wire()) == birth
    assert len(str(birth)) == 10


@pytest.mark.parametrize(
    "native",
    [
        pytest.param("می\u200cخواهم", id="persian-ZWNJ-U+200C"),  # noqa: RUF001
        pytest.param("क्\u200dष", id="devanagari-ZWJ-U+200D"),
    ],
)
def test_native_name_with_zero_width_joiners_is_accepted(native: str) -> None:
    card = Card.from_claims(_claims(nn=native))
    assert card.native_name == native
    assert card.to_claims()["nn"] == native


@pytest.mark.parametrize(
    ("field", "claim", "decomposed", "composed"),
    [
        pytest.param("family_name", "fn", "MU\u0308LLER", "M\u00dcLLER", id="family"),
        pytest.param("given_names", "gn", "JOSE\u0301", "JOS\u00c9", id="given"),
        pytest.param("native_name", "nn", "Mu\u0308ller", "M\u00fcller", id="native"),
    ],
)
def test_names_are_nfc_normalised(field: str, claim: str, decomposed: str, composed: str) -> None:
    card = make_card(code=CODE, **{field: decomposed})
    assert getattr(card, field) == composed
    assert card.to_claims()[claim] == composed
    assert getattr(Card.from_claims(_claims(**{claim: composed})), field) == composed


@pytest.mark.parametrize(
    ("changes", "claim"),
    [
        pytest.param({"fn": "MU\u0308LLER"}, "fn", id="family-name-not-nfc"),
        pytest.param({"nn": "Mu\u0308ller"}, "nn", id="native-name-not-nfc"),
        pytest.param({"sub": foreigner_code.format_for_reading(CODE)}, "sub", id="code-spaced"),
        pytest.param({"sub": CODE.lower()}, "sub", id="code-lower-case"),
        pytest.param({"gn": ""}, "gn", id="empty-given-names"),
        pytest.param({"nn": ""}, "nn", id="empty-native-name"),
        pytest.param({"cnf": None}, "cnf", id="null-holder-key"),
    ],
)
def test_wire_claims_must_be_canonical(changes: dict[str, Any], claim: str) -> None:
    """The builder normalises; the wire must already be normal, so a counter shows exactly
    what was signed and two verifiers never read one payload as two different cards."""
    with pytest.raises(InvalidClaimError) as caught:
        Card.from_claims(_claims(**changes))
    assert caught.value.claim == claim


def test_validity_is_at_most_7320_days_to_the_second() -> None:
    longest = _claims(exp=NBF + 7320 * 86400)
    assert Card.from_claims(longest).to_claims()["exp"] == NBF + 7320 * 86400
    with pytest.raises(InvalidClaimError) as caught:
        Card.from_claims(_claims(exp=NBF + 7320 * 86400 + 1))
    assert caught.value.claim == "exp"


@pytest.mark.parametrize(
    "name", ["NÚÑEZ", "O'BRIEN", "ST. JOHN", "DE LA CRUZ-ŁUKASZ", "NGUYỄN", "A" * 64]
)
def test_latin_names_with_accents_and_punctuation_are_accepted(name: str) -> None:
    assert Card.from_claims(_claims(fn=name)).family_name == name


def test_time_boundaries() -> None:
    card = make_card(
        code=CODE,
        issued_at=datetime(2000, 1, 1, tzinfo=UTC),
        valid_from=datetime(2000, 1, 1, tzinfo=UTC),
        expires_at=datetime(2019, 12, 31, tzinfo=UTC),
        birth_date=BirthDate(1980),
    )
    assert Card.from_claims(card.to_claims()) == card
    assert card.to_claims()["iat"] == 946684800


def test_validity_of_twenty_years_is_accepted() -> None:
    card = make_card(code=CODE, expires_at=NOW - timedelta(days=1) + timedelta(days=20 * 365 + 5))
    assert Card.from_claims(card.to_claims()) == card


# --- entitlements --------------------------------------------------------------------------------


def test_entitlement_lookup() -> None:
    card = _full_card()
    assert card.entitlement("hc") == Entitlement("hc")
    assert card.entitlement("bk") == Entitlement("bk", WINDOW_FROM, WINDOW_UNTIL)
    assert card.entitlement("ho") is None
    assert card.entitlement("HC") is None
    assert _minimal_card().entitlement("hc") is None


def test_entitlement_without_window_covers_any_time() -> None:
    entitlement = Entitlement("hc")
    assert entitlement.covers(datetime(2000, 1, 1, tzinfo=UTC))
    assert entitlement.covers(datetime(2099, 12, 31, tzinfo=UTC))
    assert entitlement.to_wire() == []


def test_entitlement_window_is_half_open() -> None:
    entitlement = Entitlement("bk", WINDOW_FROM, WINDOW_UNTIL)
    second = timedelta(seconds=1)
    assert not entitlement.covers(WINDOW_FROM - second)
    assert entitlement.covers(WINDOW_FROM)
    assert entitlement.covers(WINDOW_FROM + (WINDOW_UNTIL - WINDOW_FROM) / 2)
    assert entitlement.covers(WINDOW_UNTIL - second)
    assert not entitlement.covers(WINDOW_UNTIL)
    assert not entitlement.covers(WINDOW_UNTIL + second)


def test_entitlement_with_one_bound() -> None:
    starts = Entitlement("ed", valid_from=WINDOW_FROM)
    assert not starts.covers(WINDOW_FROM - timedelta(seconds=1))
    assert starts.covers(WINDOW_FROM)
    assert starts.covers(datetime(2099, 1, 1, tzinfo=UTC))
    ends = Entitlement("tr", valid_until=WINDOW_UNTIL)
    assert ends.covers(datetime(2000, 1, 1, tzinfo=UTC))
    assert not ends.covers(WINDOW_UNTIL)


def test_entitlement_window_in_another_time_zone() -> None:
    beijing = timezone(timedelta(hours=8))
    entitlement = Entitlement("bk", datetime(2027, 1, 1, 8, tzinfo=beijing), WINDOW_UNTIL)
    assert entitlement.valid_from == WINDOW_FROM
    assert entitlement.covers(datetime(2027, 1, 1, 8, tzinfo=beijing))
    assert not entitlement.covers(datetime(2027, 1, 1, 7, 59, tzinfo=beijing))


# --- privacy -----------------------------------------------------------------------------------


def test_passport_number_is_not_a_field() -> None:
    card = _full_card()
    names = [f.name for f in dataclasses.fields(Card)]
    assert not [name for name in names if "passport" in name.lower()]
    assert not [name for name in dir(card) if "passport" in name.lower()]
    assert not [name for name in card.to_claims() if "passport" in name.lower()]
    with pytest.raises(TypeError):
        make_card(passport_number="E12345678")


def test_portrait_is_not_a_claim() -> None:
    # The portrait travels in the signed payload after the claims (schemas.payload).
    names = [f.name for f in dataclasses.fields(Card)]
    assert not [name for name in names if "portrait" in name]
    assert "ph" not in _full_card().to_claims()
    with pytest.raises(TypeError):
        make_card(portrait_digest=DIGEST)
