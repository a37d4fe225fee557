"""Counter policies: the shipped defaults, the issuer's signed policies, and local restrictions
that may only make a policy stricter (``docs/FORMAT.md`` section 10)."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from keys.cards import encode_card
from keys.jwk import generate
from keys.signer import KeySigner
from keys.status_list import sign_status_list
from keys.trust_list import KeyState
from tests.factories import ISSUER_ID, NOW, STATUS_URI, Authority, make_card
from verifier import cli
from verifier.bundle import Bundle
from verifier.errors import BundleError, VerifierError
from verifier.policy import (
    ALL_FIELDS,
    SHOWABLE_FIELDS,
    LocalPolicy,
    Policy,
    SignedPolicies,
    counter_policy,
    counter_types,
    default_policy,
    effective_policy,
    load_local_policies,
    read_signed_policies,
    sign_policies,
)
from verifier.reason import LANGUAGES, Reason
from verifier.verifier import Verifier

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)


def signed(
    authority: Authority,
    *policies: Policy,
    version: int = 1,
    signer: KeySigner | None = None,
    issuer_id: str = ISSUER_ID,
) -> str:
    return sign_policies(
        policies,
        issuer_id=issuer_id,
        version=version,
        issued_at=NOW - HOUR,
        signer=signer or authority.issuing,
    )


# --- what the package ships --------------------------------------------------------------


def test_every_counter_type_has_its_service_and_limits() -> None:
    types = counter_types()
    services = {name: t.service for name, t in types.items()}
    assert services == {
        "hospital": "hc",
        "school": "ed",
        "bank": "bk",
        "transport": "tr",
        "housing": "ho",
        "licensing": "bz",
    }
    assert counter_policy("bank").max_status_age == DAY
    assert counter_policy("hospital").max_status_age == 7 * DAY
    assert all(t.why and t.policy.show <= ALL_FIELDS for t in types.values())
    with pytest.raises(VerifierError, match="unknown counter type"):
        counter_policy("casino")


def test_the_bus_counter_sees_name_portrait_and_entitlement_only() -> None:
    assert counter_policy("transport").show == {"names", "portrait", "entitlement"}
    assert "nationality" not in counter_policy("school").show
    assert "birth_date" in counter_policy("hospital").show


def test_default_policy_is_the_counter_types_or_the_general_one() -> None:
    assert default_policy("bk") == counter_policy("bank")
    assert default_policy("zz9") == Policy("zz9")
    assert Policy("zz9").max_status_age == 7 * DAY
    assert Policy("zz9").show == ALL_FIELDS


# --- the JSON form -----------------------------------------------------------------------


def test_policy_json_round_trip_and_the_old_three_members() -> None:
    assert Policy("hc").to_json() == {
        "service": "hc",
        "max_status_age_seconds": 604800,
        "require_portrait": False,
    }
    narrow = Policy("tr", HOUR, True, frozenset({"entitlement", "names"}))
    assert narrow.to_json()["show"] == ["names", "entitlement"]
    assert Policy.from_json(narrow.to_json()) == narrow
    assert LocalPolicy.from_json({"service": "bk"}).to_json() == {"service": "bk"}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"service": "hc", "colour": "red"}, "only service"),
        ({"service": 7}, "service must be a string"),
        ({"service": "H C"}, "malformed"),
        ({"service": "hc", "max_status_age_seconds": True}, "integer"),
        ({"service": "hc", "max_status_age_seconds": 0}, "between"),
        ({"service": "hc", "max_status_age_seconds": 40 * 86400}, "between"),
        ({"service": "hc", "require_portrait": 1}, "true or false"),
        ({"service": "hc", "show": "names"}, "list of field names"),
        ({"service": "hc", "show": ["names", "passport"]}, "unknown field 'passport'"),
        ({"service": "hc", "show": ["portrait"]}, "must include 'names'"),
        ({"service": "hc", "show": ["names", "names"]}, "twice"),
        ([], "only service"),
    ],
)
def test_malformed_policies_are_refused(document: object, message: str) -> None:
    with pytest.raises(VerifierError, match=message):
        Policy.from_json(document)
    with pytest.raises(VerifierError, match=message):
        LocalPolicy.from_json(document)


def test_local_policy_file_holds_one_policy_or_a_list(tmp_path: Path) -> None:
    one = tmp_path / "one.json"
    one.write_text(json.dumps({"service": "bk", "require_portrait": True}))
    assert load_local_policies(one) == [LocalPolicy("bk", require_portrait=True)]
    many = tmp_path / "many.json"
    many.write_text(json.dumps([{"service": "bk"}, {"service": "hc", "show": ["names"]}]))
    assert [p.service for p in load_local_policies(many)] == ["bk", "hc"]
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(VerifierError, match="not JSON"):
        load_local_policies(tmp_path / "bad.json")
    with pytest.raises(VerifierError, match="cannot read"):
        load_local_policies(tmp_path / "missing.json")


# --- local restrictions: stricter only ---------------------------------------------------


def test_a_local_policy_tightens_every_member() -> None:
    bank = counter_policy("bank")
    shown = frozenset({"names", "portrait", "code"})
    live, ten = frozenset({"live"}), timedelta(seconds=10)
    local = LocalPolicy("bk", 6 * HOUR, True, shown, live, ten)
    tightened = local.apply(bank)
    assert tightened == Policy("bk", 6 * HOUR, True, shown, live, ten)
    assert local.loosenings(bank) == []


def test_a_local_policy_cannot_loosen_anything() -> None:
    strict = Policy(
        "bk",
        DAY,
        True,
        frozenset({"names", "portrait"}),
        frozenset({"live"}),
        timedelta(seconds=20),
    )
    loose = LocalPolicy(
        "bk", 30 * DAY, False, ALL_FIELDS, frozenset({"live", "printed"}), timedelta(seconds=300)
    )
    assert loose.apply(strict) == strict
    notes = loose.loosenings(strict)
    assert len(notes) == 5
    assert "2592000 is longer than the 86400 allowed" in notes[0]
    assert "portrait stays required" in notes[1]
    assert "code" in notes[2]
    assert "birth_date" in notes[2]
    assert "printed cards stay refused" in notes[3]
    assert "max_proof_age_seconds 300 is longer than the 20 allowed" in notes[4]


def test_a_local_policy_for_another_service_changes_nothing() -> None:
    assert LocalPolicy("ed", HOUR).apply(counter_policy("bank")) == counter_policy("bank")
    assert LocalPolicy("ed", 30 * DAY).loosenings(counter_policy("bank")) == []


def test_stricter_merges_two_policies_and_refuses_two_services() -> None:
    one = Policy("hc", 2 * DAY, False, frozenset({"names", "code", "portrait"}))
    two = Policy("hc", 5 * DAY, True, frozenset({"names", "portrait", "birth_date"}))
    assert one.stricter(two) == Policy("hc", 2 * DAY, True, frozenset({"names", "portrait"}))
    with pytest.raises(VerifierError, match="cannot merge"):
        one.stricter(Policy("bk"))


# --- the verifier applies them ------------------------------------------------------------


def test_the_bank_default_refuses_a_status_list_the_hospital_accepts(
    authority: Authority,
) -> None:
    bundle = authority.bundle(status_tokens=[authority.status_token(issued_at=NOW - 30 * HOUR)])
    qr = encode_card(make_card(), authority.issuing)
    verifier = Verifier(bundle)
    assert verifier.verify(qr, service="hc", at=NOW).reason is Reason.VALID
    bank = verifier.verify(qr, service="bk", at=NOW)
    assert bank.reason is Reason.STATUS_UNKNOWN
    assert "older than the policy allows" in bank.detail


def test_a_local_policy_makes_the_verifier_stricter_never_looser(authority: Authority) -> None:
    bundle = authority.bundle(status_tokens=[authority.status_token(issued_at=NOW - 30 * HOUR)])
    qr = encode_card(make_card(), authority.issuing)
    stricter = Verifier(bundle, policies=[LocalPolicy("hc", max_status_age=DAY)])
    assert stricter.verify(qr, service="hc", at=NOW).reason is Reason.STATUS_UNKNOWN
    looser = Verifier(bundle, policies=[LocalPolicy("bk", max_status_age=30 * DAY)])
    assert looser.policy("bk").max_status_age == DAY
    assert looser.verify(qr, service="bk", at=NOW).reason is Reason.STATUS_UNKNOWN
    portrait = Verifier(bundle, policies=[Policy("hc", 7 * DAY, True)])
    assert portrait.verify(qr, service="hc", at=NOW).reason is Reason.PORTRAIT_MISSING


def test_unsigned_bundle_policies_only_tighten(authority: Authority) -> None:
    bundle = authority.bundle(
        policies=[Policy("bk", 30 * DAY), Policy("hc", HOUR, show=frozenset({"names"}))]
    )
    assert bundle.policy("bk") == counter_policy("bank")
    assert bundle.policy("hc") == Policy("hc", HOUR, False, frozenset({"names"}))
    assert bundle.policy("ed") == counter_policy("school")
    assert bundle.policies.keys() == {"bk", "hc"}
    again = Bundle.from_json(bundle.to_json(), at=NOW)
    assert again.policies == bundle.policies
    assert bundle.to_json()["policies"][0]["max_status_age_seconds"] == 30 * 86400


# --- signed policies ----------------------------------------------------------------------


def test_signed_policies_replace_the_defaults(authority: Authority) -> None:
    hospital = Policy("hc", 10 * DAY, False, frozenset({"names", "portrait", "entitlement"}))
    bank = Policy("bk", 12 * HOUR, True)
    document = authority.bundle_document()
    document["signed_policies"] = [signed(authority, hospital, bank)]
    bundle = Bundle.from_json(document, at=NOW)
    assert bundle.policy("hc") == hospital  # the issuer may also allow more than the default
    assert bundle.policy("bk") == bank
    assert bundle.policy("tr") == counter_policy("transport")
    (held,) = bundle.signed_policies
    assert (held.issuer_id, held.version, held.kid) == (ISSUER_ID, 1, authority.issuing.kid)
    assert Bundle.from_json(bundle.to_json(), at=NOW).policies == bundle.policies
    qr = encode_card(make_card(), authority.issuing)
    assert Verifier(bundle).verify(qr, service="bk", at=NOW).reason is Reason.PORTRAIT_MISSING


def test_unsigned_policies_tighten_signed_ones_too(authority: Authority) -> None:
    document = authority.bundle_document(policies=[Policy("hc", 2 * DAY)])
    document["signed_policies"] = [signed(authority, Policy("hc", 10 * DAY))]
    assert Bundle.from_json(document, at=NOW).policy("hc").max_status_age == 2 * DAY


def policy_refusal(authority: Authority, token: str, **kwargs: object) -> str:
    document = authority.bundle_document(**kwargs)  # type: ignore[arg-type]
    document["signed_policies"] = [token]
    with pytest.raises(BundleError) as caught:
        Bundle.from_json(document, at=NOW)
    return str(caught.value)


def test_policies_signed_by_the_anchor_or_a_stranger_are_refused(authority: Authority) -> None:
    by_anchor = signed(authority, Policy("bk", 30 * DAY), signer=authority.anchor)
    assert "unknown key" in policy_refusal(authority, by_anchor)
    stranger = KeySigner(generate())
    assert "unknown key" in policy_refusal(authority, signed(authority, signer=stranger))


def test_policies_naming_another_issuer_are_refused(authority: Authority) -> None:
    token = signed(authority, Policy("bk", 30 * DAY), issuer_id="CN-SH-PSB")
    assert "not signed by a key of 'CN-SH-PSB'" in policy_refusal(authority, token)


def test_policies_signed_by_a_compromised_key_are_refused() -> None:
    world = Authority()
    stolen = world.issuing
    fresh = KeySigner(generate())
    keys = (
        world.trusted_key(stolen, state=KeyState.COMPROMISED, compromised_since=NOW - DAY),
        world.trusted_key(fresh),
    )
    trust_list = world.trust_list(keys)
    status = world.status_token(signer=fresh)
    token = signed(world, Policy("bk", 30 * DAY), signer=stolen)
    message = policy_refusal(world, token, trust_list=trust_list, status_tokens=[status])
    assert "unknown key" in message


def test_a_status_list_or_tampered_token_is_not_a_policy(authority: Authority) -> None:
    assert "typ" in policy_refusal(authority, authority.status_token())
    token = signed(authority, Policy("bk", HOUR))
    head, body, signature = token.split(".")
    forged = f"{head}.{body[:-4]}AAAA.{signature}"
    assert "bundle refused" in policy_refusal(authority, forged)
    document = authority.bundle_document()
    document["signed_policies"] = "not a list"
    with pytest.raises(BundleError, match="must be a list"):
        Bundle.from_json(document, at=NOW)


def test_signed_policy_claims_are_strict(authority: Authority) -> None:
    with pytest.raises(VerifierError, match="twice"):
        signed(authority, Policy("bk"), Policy("bk", HOUR))
    with pytest.raises(VerifierError, match="positive integer"):
        signed(authority, Policy("bk"), version=0)
    document = authority.bundle_document()
    document["signed_policies"] = [signed(authority, Policy("bk")), signed(authority)]
    with pytest.raises(BundleError, match="two policy tokens of one issuer"):
        Bundle.from_json(document, at=NOW)


def test_signed_policies_cannot_roll_back_or_disappear(authority: Authority) -> None:
    def document(*tokens: str) -> dict[str, object]:
        out = authority.bundle_document()
        out["signed_policies"] = list(tokens)
        return out

    v2 = signed(authority, Policy("bk", 12 * HOUR), version=2)
    held = Bundle.from_json(document(v2), at=NOW)
    v1 = signed(authority, Policy("bk", 30 * DAY), version=1)
    with pytest.raises(BundleError, match="rollback"):
        held.update(document(v1), at=NOW)
    other_v2 = signed(authority, Policy("bk", 20 * HOUR), version=2)
    with pytest.raises(BundleError, match="claim the held version 2"):
        held.update(document(other_v2), at=NOW)
    with pytest.raises(BundleError, match="drops the signed policies"):
        held.update(document(), at=NOW)
    assert held.update(document(v2), at=NOW).policy("bk").max_status_age == 12 * HOUR
    v3 = signed(authority, version=3)  # the issuer withdraws its policies
    assert held.update(document(v3), at=NOW).policy("bk") == counter_policy("bank")


def test_signed_policies_go_with_their_issuer_when_it_leaves_the_trust_list() -> None:
    """Held policies may not be dropped while their issuer is trusted; once the anchor removes
    the issuer, a bundle without them is the only one that can ever verify."""
    authority = Authority()
    held_document = authority.bundle_document()
    held_document["signed_policies"] = [signed(authority, Policy("bk", 12 * HOUR))]
    held = Bundle.from_json(held_document, at=NOW)
    stranger = replace(
        authority.trust_list().issuers[0],
        issuer_id="CN-SH-PSB",
        status_uri_prefix="https://other.example/status/",
        keys=(authority.trusted_key(KeySigner(generate())),),
    )
    without = authority.bundle_document(
        trust_list=authority.trust_list(version=2, issuers=(stranger,)), status_tokens=[]
    )
    updated = held.update(without, at=NOW)
    assert updated.signed_policies == ()
    assert updated.policy("bk") == counter_policy("bank")
    # Control: while the issuer stays in the trust list, dropping its policies is refused.
    with pytest.raises(BundleError, match="drops the signed policies"):
        held.update(authority.bundle_document(), at=NOW)


def test_the_strictest_issuer_policy_wins_when_two_issuers_sign_one() -> None:
    def issued(issuer: str, policy: Policy) -> SignedPolicies:
        return SignedPolicies(issuer, 1, NOW, (policy,), "kid00000", token="t")

    one = issued("CN-ZJ-YWPSB", Policy("hc", 10 * DAY))
    two = issued("CN-SH-PSB", Policy("hc", 3 * DAY, show=frozenset({"names", "code"})))
    assert effective_policy("hc", signed=[one, two]) == Policy(
        "hc", 3 * DAY, False, frozenset({"names", "code"})
    )
    assert effective_policy("bk", signed=[one, two]) == counter_policy("bank")


def test_read_signed_policies_reports_the_signer(authority: Authority) -> None:
    token = signed(authority, Policy("ed", 2 * DAY))
    result = read_signed_policies(token, authority.trust_list(), at=NOW)
    assert result.policies == (Policy("ed", 2 * DAY),)
    assert result.issued_at == (NOW - HOUR).replace(microsecond=0)
    with pytest.raises(VerifierError, match="must be a string"):
        read_signed_policies(7, authority.trust_list(), at=NOW)


# --- messages for the clerk and the holder ----------------------------------------------


@pytest.mark.parametrize("reason", list(Reason))
def test_every_reason_speaks_every_shipped_language(reason: Reason) -> None:
    messages = {language: reason.message(language) for language in LANGUAGES}
    assert len(set(messages.values())) == len(LANGUAGES), messages
    assert any("\u0400" <= c <= "\u04ff" for c in messages["ru"])
    assert any("\u0600" <= c <= "\u06ff" for c in messages["ar"])
    assert any("\u4e00" <= c <= "\u9fff" for c in messages["zh"])
    assert reason.message("zh-CN") == messages["zh"]
    assert reason.message("ar_SA") == messages["ar"]
    assert any("\uac00" <= c <= "\ud7a3" for c in messages["ko"])
    assert any("\u0900" <= c <= "\u097f" for c in messages["hi"])
    assert reason.message("xx") == messages["en"]


def test_result_json_carries_a_message_per_language(authority: Authority) -> None:
    result = Verifier(authority.bundle()).verify(
        encode_card(make_card(), authority.issuing), service="hc", at=NOW
    )
    assert set(result.to_json()["message"]) == set(LANGUAGES)


# --- the command line -----------------------------------------------------------------------


def test_cli_checks_with_a_counter_preset_and_a_local_policy(
    authority: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bundle = authority.bundle(status_tokens=[authority.status_token(issued_at=NOW - 30 * HOUR)])
    path = tmp_path / "bundle.json"
    bundle.save(path)
    qr = encode_card(make_card(), authority.issuing)
    at = ["--at", NOW.isoformat(), "--bundle", str(path)]
    assert cli.main([*at, "--counter", "hospital", qr]) == 0
    assert cli.main([*at, "--counter", "bank", qr, "--lang", "ru"]) == 1
    assert "Статус карты нельзя подтвердить" in capsys.readouterr().out
    local = tmp_path / "strict.json"
    local.write_text(json.dumps({"service": "hc", "require_portrait": True}))
    assert cli.main([*at, "--service", "hc", "--policy", str(local), qr, "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["reason"] == "PORTRAIT_MISSING"
    assert cli.main([*at, "--counter", "bank", "--service", "hc", qr]) == 2
    assert "checks 'bk', not --service 'hc'" in capsys.readouterr().err


def test_cli_policy_command_shows_the_effective_policy(
    authority: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["policy", "--list"]) == 0
    listing = capsys.readouterr().out
    assert "transport  tr" in listing
    assert "shows names, portrait, entitlement" in listing
    document = authority.bundle_document()
    document["signed_policies"] = [signed(authority, Policy("bk", 12 * HOUR))]
    path = tmp_path / "bundle.json"
    path.write_text(json.dumps(document))
    local = tmp_path / "local.json"
    local.write_text(json.dumps({"service": "bk", "max_status_age_seconds": 86400 * 3}))
    args = ["policy", "--bundle", str(path), "--counter", "bank", "--policy", str(local)]
    assert cli.main(args) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["max_status_age_seconds"] == 12 * 3600
    assert shown["source"].startswith("signed by the issuer")
    assert "kept 43200" in shown["ignored_loosenings"][0]
    data_dir = tmp_path / "empty-station"
    assert cli.main(["policy", "--data-dir", str(data_dir), "--counter", "transport"]) == 0
    assert json.loads(capsys.readouterr().out)["show"] == ["names", "portrait", "entitlement"]


def test_show_order_is_stable() -> None:
    assert next(iter(SHOWABLE_FIELDS)) == "names"
    assert replace(Policy("hc"), show=frozenset({"names"})).to_json()["show"] == ["names"]


def test_policy_ages_use_the_status_list_iat(authority: Authority) -> None:
    # A status list issued exactly at the bank's limit is still fresh; one second more is not.
    token = sign_status_list(
        authority.statuses,
        uri=STATUS_URI,
        signer=authority.issuing,
        issued_at=NOW - DAY,
        expires_at=NOW + DAY,
        ttl=60,
    )
    verifier = Verifier(authority.bundle(status_tokens=[token]))
    qr = encode_card(make_card(), authority.issuing)
    assert verifier.verify(qr, service="bk", at=NOW).reason is Reason.VALID
    later = NOW + timedelta(seconds=1)
    assert verifier.verify(qr, service="bk", at=later).reason is Reason.STATUS_UNKNOWN
    assert datetime.now(UTC) > NOW - 365 * DAY  # the fixed test clock is a real date
