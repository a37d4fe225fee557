"""Phone cards and live presentations (docs/FORMAT.md section 11): one test per threat of
docs/SECURITY.md's phone-card table, and the levels a counter reports."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keys.cards import compact_form, encode_card
from keys.jwk import generate, public_jwk
from keys.phone import PhoneCard, present, sign_phone_card
from keys.signer import KeySigner
from schemas import base45, qrtext
from schemas.card import Entitlement, StatusRef
from schemas.compression import deflate, inflate
from schemas.disclosure import Disclosure, pack_disclosures, unpack_disclosures
from schemas.errors import EncodingError
from schemas.presentation import Proof, card_digest, proof_input, slot_of
from schemas.qrtext import write_part
from tests.factories import NOW, Authority, make_card
from tests.vectors.generate import _portrait
from verifier import Bundle, Level, LocalPolicy, Reason, ReplayMemory, Verifier
from verifier.cli import render
from verifier.errors import VerifierError
from verifier.policy import Policy
from verifier.server import BundleHolder, Station, StationConfig

SECOND = timedelta(seconds=1)
ENTITLEMENTS = (Entitlement("hc"), Entitlement("tr"), Entitlement("bk"))


@pytest.fixture(scope="module")
def device() -> KeySigner:
    return KeySigner(generate())


@pytest.fixture(scope="module")
def phone(authority: Authority, device: KeySigner) -> PhoneCard:
    return _phone(authority, device)


@pytest.fixture(scope="module")
def bundle(authority: Authority) -> Bundle:
    return authority.bundle()


def _phone(authority: Authority, device: KeySigner, **overrides: Any) -> PhoneCard:
    card = make_card(entitlements=ENTITLEMENTS, **overrides)
    return sign_phone_card(
        card, authority.issuing, device_jwk=public_jwk(device.public_key), portrait=_portrait()
    )


def _verify(bundle: Bundle, text: str, service: str, at: datetime = NOW, **options: Any) -> Any:
    return Verifier(bundle, **options).verify(text, service=service, at=at)


def _repack(text: str, *attachments: bytes, version: int = 2) -> str:
    parts = qrtext.unpack(text)
    return qrtext.pack(
        qrtext.QRParts(parts.header, parts.payload, parts.signature, attachments, version)
    )


def _with_disclosures(
    phone: PhoneCard, device: KeySigner, disclosures: list[Disclosure], service: str = "hc"
) -> str:
    """The device signs whatever disclosures it is given: only the card's digests stop a
    forged one."""
    part = pack_disclosures(disclosures)
    slot = slot_of(NOW)
    proof = Proof(slot, device.sign(proof_input(phone.digest, part, slot, service)))
    return qrtext.pack(
        qrtext.QRParts(phone.header, phone.payload, phone.signature, (part, proof.to_bytes()), 2)
    )


# --- the happy path and the levels ------------------------------------------------------


def test_live_presentation_is_valid_and_live(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    result = _verify(bundle, present(phone, device, service="hc", at=NOW), "hc")
    assert result.reason is Reason.VALID, result.detail
    assert result.level is Level.LIVE
    assert result.portrait == _portrait()
    assert result.card.nationality == "SAU"
    assert result.to_json()["level"] == "live"


def test_printed_card_is_valid_at_level_printed(authority: Authority, bundle: Bundle) -> None:
    result = _verify(bundle, encode_card(make_card(), authority.issuing), "hc")
    assert result.reason is Reason.VALID
    assert result.level is Level.PRINTED
    assert result.disclosed is None


def test_printed_card_where_the_policy_wants_live(authority: Authority, bundle: Bundle) -> None:
    live_only = LocalPolicy("hc", accept=frozenset({"live"}))
    text = encode_card(make_card(), authority.issuing)
    result = _verify(bundle, text, "hc", policies=[live_only])
    assert result.reason is Reason.LIVE_REQUIRED
    assert result.level is Level.PRINTED
    assert result.card is not None  # the clerk sees whose card was refused


def test_live_presentation_where_the_policy_wants_live(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    live_only = LocalPolicy("hc", accept=frozenset({"live"}))
    text = present(phone, device, service="hc", at=NOW)
    assert _verify(bundle, text, "hc", policies=[live_only]).reason is Reason.VALID


# --- threats ----------------------------------------------------------------------------


def test_screenshot_is_stale_after_the_window(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    screenshot = present(phone, device, service="hc", at=NOW)
    # Hospital window 30 s + skew 15 s from the slot's start (NOW starts a slot).
    assert _verify(bundle, screenshot, "hc", NOW + 44 * SECOND).reason is Reason.VALID
    result = _verify(bundle, screenshot, "hc", NOW + 45 * SECOND)
    assert result.reason is Reason.PROOF_STALE
    assert result.level is Level.COPY


def test_replay_inside_the_window_passes_without_memory(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    """Stated residual risk: without a replay memory a filmed QR passes inside its window."""
    text = present(phone, device, service="hc", at=NOW)
    verifier = Verifier(bundle)
    assert verifier.verify(text, service="hc", at=NOW).reason is Reason.VALID
    assert verifier.verify(text, service="hc", at=NOW + 20 * SECOND).reason is Reason.VALID


def test_replay_inside_the_window_is_refused_with_memory(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    memory = ReplayMemory()
    verifier = Verifier(bundle, replay_memory=memory)
    text = present(phone, device, service="hc", at=NOW)
    assert verifier.verify(text, service="hc", at=NOW).reason is Reason.VALID
    again = verifier.verify(text, service="hc", at=NOW + 5 * SECOND)
    assert again.reason is Reason.PROOF_REPLAYED
    assert again.level is Level.COPY
    # A new proof for the same slot (ECDSA is randomised) is the same presentation too.
    resigned = present(phone, device, service="hc", at=NOW)
    assert resigned != text
    assert verifier.verify(resigned, service="hc", at=NOW).reason is Reason.PROOF_REPLAYED
    # The next slot's QR is fine, and the memory forgets what has passed its window.
    later = NOW + 10 * SECOND
    assert (
        verifier.verify(present(phone, device, service="hc", at=later), service="hc", at=later)
    ).reason is Reason.VALID
    assert len(memory) == 2
    far = NOW + 10 * 60 * SECOND
    assert (
        verifier.verify(present(phone, device, service="hc", at=far), service="hc", at=far)
    ).reason is Reason.VALID
    assert len(memory) == 1


def test_replay_memory_ignores_refused_presentations(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    memory = ReplayMemory()
    verifier = Verifier(bundle, replay_memory=memory)
    stale = present(phone, device, service="hc", at=NOW - 60 * SECOND)
    assert verifier.verify(stale, service="hc", at=NOW).reason is Reason.PROOF_STALE
    assert len(memory) == 0


def test_replay_outside_the_window_is_stale(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    text = present(phone, device, service="tr", at=NOW)
    assert _verify(bundle, text, "tr", NOW + 74 * SECOND).reason is Reason.VALID  # bus: 60 s
    assert _verify(bundle, text, "tr", NOW + 75 * SECOND).reason is Reason.PROOF_STALE
    assert _verify(bundle, text, "tr", NOW + timedelta(days=1)).reason is Reason.PROOF_STALE


def test_proof_from_another_device(bundle: Bundle, phone: PhoneCard) -> None:
    friend = KeySigner(generate())
    result = _verify(bundle, present(phone, friend, service="hc", at=NOW), "hc")
    assert result.reason is Reason.PROOF_INVALID
    assert result.level is Level.COPY


def test_proof_for_another_card(
    authority: Authority, bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    """Both cards are bound to the same phone; the proof of one does not fit the other."""
    other = _phone(authority, device, serial="OTHER001", status=StatusRef("1", 8))
    proof = qrtext.unpack(present(other, device, service="hc", at=NOW, disclose=()))
    mine = present(phone, None, service="hc", at=NOW, disclose=())
    result = _verify(bundle, _repack(mine, b"", proof.attachments[1]), "hc")
    assert result.reason is Reason.PROOF_INVALID


def test_proof_for_another_service(bundle: Bundle, phone: PhoneCard, device: KeySigner) -> None:
    """A bus presentation relayed to a bank within its window."""
    bus = present(phone, device, service="tr", at=NOW, disclose=None)
    assert _verify(bundle, bus, "tr").reason is Reason.VALID
    assert _verify(bundle, bus, "bk").reason is Reason.PROOF_INVALID
    everything = present(phone, device, service="tr", at=NOW, disclose={"na", "bd", "pt",
                         "en.bk", "en.tr", "en.hc"})  # fmt: skip
    assert _verify(bundle, everything, "bk").reason is Reason.PROOF_INVALID


def test_phone_clock_set_back(bundle: Bundle, phone: PhoneCard, device: KeySigner) -> None:
    slow = present(phone, device, service="hc", at=NOW - 46 * SECOND)
    result = _verify(bundle, slow, "hc")
    assert result.reason is Reason.PROOF_STALE
    assert "past" in result.detail


def test_phone_clock_set_forward(bundle: Bundle, phone: PhoneCard, device: KeySigner) -> None:
    """Proofs made today for a later time are refused before their slot (beyond the skew
    allowance) and after their window: usable only in their own seconds."""
    ahead = present(phone, device, service="hc", at=NOW + 16 * SECOND)  # slot NOW+10
    assert _verify(bundle, ahead, "hc").reason is Reason.VALID  # within 15 s of skew
    tomorrow = present(phone, device, service="hc", at=NOW + timedelta(days=1))
    result = _verify(bundle, tomorrow, "hc")
    assert result.reason is Reason.PROOF_STALE
    assert "future" in result.detail
    assert _verify(bundle, tomorrow, "hc", NOW + timedelta(days=1)).reason is Reason.VALID


def test_phone_clock_skew_allowance_is_configurable(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    ahead = present(phone, device, service="hc", at=NOW + 10 * SECOND)
    assert _verify(bundle, ahead, "hc", proof_skew=timedelta(0)).reason is Reason.PROOF_STALE
    assert _verify(bundle, ahead, "hc").reason is Reason.VALID
    with pytest.raises(VerifierError):
        Verifier(bundle, proof_skew=timedelta(seconds=61))


def test_bound_card_without_proof(bundle: Bundle, phone: PhoneCard) -> None:
    result = _verify(bundle, present(phone, None, service="hc", at=NOW), "hc")
    assert result.reason is Reason.PROOF_MISSING
    assert result.level is Level.COPY


def test_bound_card_rewrapped_as_printed(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    text = present(phone, device, service="hc", at=NOW)
    for attachments in ((), (qrtext.unpack(text).attachments[0],)):
        result = _verify(bundle, _repack(text, *attachments, version=1), "hc")
        assert result.reason is Reason.MALFORMED
        assert result.card is None


def test_bound_card_is_unreadable_to_a_version_1_verifier(
    phone: PhoneCard, device: KeySigner
) -> None:
    """Version-1 readers accept only the FM1: prefix and v = 1 (FORMAT.md sections 1 and 5)."""
    text = present(phone, device, service="hc", at=NOW)
    assert text.startswith("FM2:")
    assert inflate(phone.payload, "D1").startswith(b'{"v":2,')


def test_printed_card_wrapped_as_phone_card(authority: Authority, bundle: Bundle) -> None:
    text = _repack(encode_card(make_card(), authority.issuing), b"")
    assert _verify(bundle, text, "hc").reason is Reason.MALFORMED


def test_disclosure_does_not_match_its_digest(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    for original in phone.disclosures:
        value = b'"CHN"' if original.name == "na" else original.value[:-1] + b"0"
        forged = Disclosure(original.salt, original.name, value)
        result = _verify(bundle, _with_disclosures(phone, device, [forged]), "hc")
        assert result.reason is Reason.DISCLOSURE_INVALID, original.label
        assert result.card is None


def test_disclosure_from_another_card(
    authority: Authority, bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    other = _phone(authority, device, serial="OTHER002", nationality="CHN")
    borrowed = [d for d in other.disclosures if d.name == "na"]
    result = _verify(bundle, _with_disclosures(phone, device, borrowed), "hc")
    assert result.reason is Reason.DISCLOSURE_INVALID


def test_disclosure_repeated_or_a_claim_twice(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    first = phone.disclosures[0]
    result = _verify(bundle, _with_disclosures(phone, device, [first, first]), "hc")
    assert result.reason is Reason.DISCLOSURE_INVALID


@pytest.mark.parametrize(
    "part",
    [
        pytest.param(b"\xff\xff", id="not-deflate"),
        pytest.param(deflate(b"\x00" * 9000), id="inflates-past-cap"),
        pytest.param(deflate(write_part(b"short")), id="disclosure-too-short"),
        pytest.param(deflate(write_part(b"s" * 16 + write_part(b"xx") + b"1")), id="bad-name"),
        pytest.param(deflate(write_part(b"s" * 16) + b"\x05"), id="truncated-part"),
        pytest.param(deflate(b"".join(write_part(b"s" * 20) for _ in range(21))), id="21-parts"),
    ],
)
def test_malformed_disclosures_part(
    bundle: Bundle, phone: PhoneCard, device: KeySigner, part: bytes
) -> None:
    slot = slot_of(NOW)
    proof = Proof(slot, device.sign(proof_input(phone.digest, part, slot, "hc")))
    text = _repack(present(phone, None, service="hc", at=NOW), part, proof.to_bytes())
    assert _verify(bundle, text, "hc").reason is Reason.DISCLOSURE_INVALID


def test_withheld_entitlement_is_not_entitled(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    result = _verify(bundle, present(phone, device, service="hc", at=NOW, disclose={"pt"}), "hc")
    assert result.reason is Reason.NOT_ENTITLED
    assert result.detail == "no entitlement disclosed"
    assert result.level is Level.LIVE


def test_withheld_portrait_where_the_policy_requires_one(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    text = present(phone, device, service="tr", at=NOW, disclose={"en.tr"})
    photo = LocalPolicy("tr", require_portrait=True)
    assert _verify(bundle, text, "tr").reason is Reason.VALID
    assert _verify(bundle, text, "tr", policies=[photo]).reason is Reason.PORTRAIT_MISSING


def test_bus_profile_discloses_only_what_a_bus_needs(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    result = _verify(bundle, present(phone, device, service="tr", at=NOW), "tr")
    assert result.reason is Reason.VALID
    assert result.disclosed == frozenset({"pt", "en.tr"})
    assert result.closed == len(phone.disclosures) - 2
    card = result.card
    assert card.nationality is None
    assert card.birth_date is None
    assert [e.service for e in card.entitlements] == ["tr"]
    shown = result.to_json()
    assert shown["card"]["nationality"] is None
    assert shown["card"]["birth_date"] is None
    assert shown["disclosed"] == ["en.tr", "pt"]
    # The QR itself carries nothing else: the closed values are not in the text at all.
    opened = qrtext.unpack(present(phone, device, service="tr", at=NOW))

    assert {d.label for d in unpack_disclosures(opened.attachments[0])} == {"pt", "en.tr"}


def test_bank_sees_everything(bundle: Bundle, phone: PhoneCard, device: KeySigner) -> None:
    result = _verify(bundle, present(phone, device, service="bk", at=NOW), "bk")
    assert result.reason is Reason.VALID
    assert result.closed == 0
    assert result.card.birth_date is not None


def test_revoked_phone_card_is_revoked_whatever_the_level(
    authority: Authority, device: KeySigner
) -> None:
    world = Authority(anchor=authority.anchor, issuing=authority.issuing)
    world.statuses[9] = 1
    phone = _phone(world, device, status=StatusRef("1", 9))
    result = _verify(world.bundle(), present(phone, None, service="hc", at=NOW), "hc")
    assert result.reason is Reason.REVOKED
    assert result.level is Level.COPY


def test_no_single_byte_change_of_a_live_presentation_is_valid(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    """Header, payload, signature, disclosures and proof: every byte counts."""
    text = present(phone, device, service="tr", at=NOW)
    container = base45.decode(text[4:])
    verifier = Verifier(bundle)
    for index in range(len(container)):
        changed = bytearray(container)
        changed[index] ^= 0x01
        result = verifier.verify("FM2:" + base45.encode(bytes(changed)), service="tr", at=NOW)
        assert result.reason is not Reason.VALID, index


def test_proof_covers_exact_bytes(phone: PhoneCard) -> None:
    """The proof input is fixed (FORMAT.md 11.4) so that the phone page can reproduce it."""
    data = proof_input(phone.digest, b"", 179349120, "tr")
    assert data.startswith(b"FM2-proof\x00")
    assert data[10:42] == card_digest(phone.header, phone.payload, phone.signature)
    assert data[74:78] == (179349120).to_bytes(4, "big")
    assert data.endswith(b"tr")
    assert len(data) == 10 + 32 + 32 + 4 + 2


# --- policies ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "member",
    [
        {"accept": ["printed"]},
        {"accept": ["live", "copy"]},
        {"accept": "live"},
        {"accept": ["live", "live"]},
        {"max_proof_age_seconds": 9},
        {"max_proof_age_seconds": 301},
        {"max_proof_age_seconds": True},
    ],
)
def test_policy_refuses_bad_presentation_members(member: dict[str, Any]) -> None:
    with pytest.raises(VerifierError):
        Policy.from_json({"service": "hc", **member})


def test_policy_presentation_members_round_trip() -> None:
    policy = Policy.from_json({"service": "bk", "accept": ["live"], "max_proof_age_seconds": 20})
    assert policy.accept == frozenset({"live"})
    assert policy.max_proof_age == timedelta(seconds=20)
    assert Policy.from_json(policy.to_json()) == policy
    assert "accept" not in Policy("hc").to_json()  # defaults stay off the wire


def test_shipped_windows_make_a_bank_stricter_than_a_bus(bundle: Bundle) -> None:
    verifier = Verifier(bundle)
    assert verifier.policy("bk").max_proof_age < verifier.policy("hc").max_proof_age
    assert verifier.policy("hc").max_proof_age < verifier.policy("tr").max_proof_age


def test_command_line_says_what_was_not_disclosed(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    result = _verify(bundle, present(phone, device, service="tr", at=NOW, disclose={"en.tr"}), "tr")
    text = render(result, "en")
    assert "  nationality: not disclosed\n" in text
    assert "  born: not disclosed\n" in text
    assert "  portrait: not disclosed\n" in text
    closed = len(phone.disclosures) - 1
    assert f"  shown as: live phone card; 1 disclosed, {closed} not disclosed" in text


def test_command_line_names_the_printed_level(authority: Authority, bundle: Bundle) -> None:
    printed = render(_verify(bundle, encode_card(make_card(), authority.issuing), "hc"), "en")
    assert "  shown as: printed" in printed


def test_command_line_sends_the_clerk_to_the_passport_for_a_card_without_photo(
    authority: Authority, bundle: Bundle
) -> None:
    """A wallet pass carries the card without its portrait (cardissuer.wallet.barcode): the
    line tells the clerk where the face to compare is."""
    text = encode_card(make_card(), authority.issuing, portrait=_portrait())
    with_photo = render(_verify(bundle, text, "hc"), "en")
    assert "  portrait: on the card\n" in with_photo
    without = render(_verify(bundle, compact_form(text, authority.issuing), "hc"), "en")
    assert without.startswith("VALID")
    assert "  portrait: none: compare the face with the passport\n" in without
    assert "护照" in render(_verify(bundle, compact_form(text, authority.issuing), "hc"), "zh")


def test_a_phone_card_too_large_to_present_is_not_signed(
    authority: Authority, device: KeySigner
) -> None:
    noise = b"\xff\xd8\xff" + random.Random(7).randbytes(2500)
    with pytest.raises(EncodingError, match="would not fit a QR code"):
        sign_phone_card(
            make_card(),
            authority.issuing,
            device_jwk=public_jwk(device.public_key),
            portrait=noise,
        )


def test_replay_memory_keeps_only_accepted_presentations(
    bundle: Bundle, phone: PhoneCard, device: KeySigner
) -> None:
    """A presentation refused for a later reason (no entitlement disclosed) is not recorded:
    shown again with the entitlement, in the same slot, it passes."""
    memory = ReplayMemory()
    verifier = Verifier(bundle, replay_memory=memory)
    withheld = present(phone, device, service="hc", at=NOW, disclose={"pt"})
    assert verifier.verify(withheld, service="hc", at=NOW).reason is Reason.NOT_ENTITLED
    assert len(memory) == 0
    full = present(phone, device, service="hc", at=NOW)
    assert verifier.verify(full, service="hc", at=NOW).reason is Reason.VALID
    assert verifier.verify(full, service="hc", at=NOW).reason is Reason.PROOF_REPLAYED


FUZZ = settings(max_examples=150, deadline=None)


@FUZZ
@given(part=st.binary(max_size=600), raw=st.booleans())
def test_any_disclosures_part_signed_by_the_device_never_passes_or_raises(
    authority: Authority, part: bytes, raw: bool
) -> None:
    """Whatever the phone (or a thief of its key) signs as disclosures, only the card's
    digests decide what is disclosed: arbitrary bytes are refused, never VALID."""
    device = KeySigner(DEVICE)
    phone = _fuzz_phone(authority)
    part = part if raw else deflate(part)
    slot = slot_of(NOW)
    proof = Proof(slot, device.sign(proof_input(phone.digest, part, slot, "hc")))
    text = _repack(present(phone, None, service="hc", at=NOW), part, proof.to_bytes())
    result = Verifier(_fuzz_bundle(authority)).verify(text, service="hc", at=NOW)
    assert result.reason is not Reason.VALID


@FUZZ
@given(proof=st.binary(max_size=80))
def test_any_proof_bytes_never_pass_or_raise(authority: Authority, proof: bytes) -> None:
    phone = _fuzz_phone(authority)
    text = present(phone, None, service="hc", at=NOW)
    parts = qrtext.unpack(text)
    result = Verifier(_fuzz_bundle(authority)).verify(
        _repack(text, parts.attachments[0], proof), service="hc", at=NOW
    )
    assert result.reason in {Reason.PROOF_INVALID, Reason.PROOF_STALE}
    assert result.level is Level.COPY


DEVICE = generate()
_phones: dict[int, PhoneCard] = {}
_bundles: dict[int, Bundle] = {}


def _fuzz_phone(authority: Authority) -> PhoneCard:
    """One phone card per test world (hypothesis runs the test many times)."""
    if id(authority) not in _phones:
        _phones[id(authority)] = _phone(authority, KeySigner(DEVICE))
    return _phones[id(authority)]


def _fuzz_bundle(authority: Authority) -> Bundle:
    if id(authority) not in _bundles:
        _bundles[id(authority)] = authority.bundle()
    return _bundles[id(authority)]


def test_the_station_refuses_a_live_code_shown_twice_even_across_reloads(
    authority: Authority, phone: PhoneCard, device: KeySigner, tmp_path: Path
) -> None:
    """COUNTER.md promises a replayed phone QR is a copy: the station keeps one replay memory
    for its life, not one per bundle (the verifier is rebuilt when the bundle reloads)."""
    path = tmp_path / "bundle.json"
    authority.bundle().save(path)
    holder = BundleHolder(path, Bundle.load(path, at=NOW))
    station = Station(holder, StationConfig("hc"), clock=lambda: NOW)
    shown = present(phone, device, service="hc", at=NOW)
    assert station.verify(shown)["reason"] == "VALID"
    holder.bundle = Bundle.load(path, at=NOW)  # a reload: a new bundle, a new verifier
    again = station.verify(shown)
    assert again["reason"] == "PROOF_REPLAYED"
