"""Section 1: how many cards a counter verifies per second, against what the crypto allows.

The baseline is the raw ES256 verification of ``cryptography`` over the same signing inputs:
no verifier can beat it, so ``Verifier / raw`` says how much of the time goes to everything
else (Base45, container, header, inflate, strict JSON, claim validation, status, entitlement,
the result object). pyjwt and joserfc decode the same cards as compact JWS text, then inflate
and parse the JSON without any claim checks: what a "just use a JOSE library" verifier costs.

The stage breakdown calls the library's own functions (some of them private) one stage at a
time on distinct cards of one kind; nothing is patched.
"""

from __future__ import annotations

import base64
import json
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.hashes import SHA256
from joserfc import jws as joserfc_jws
from joserfc.jwk import ECKey
from joserfc.registry import HeaderParameter
from jwt.algorithms import ECAlgorithm

from bench.report import Check, Section, Table, ratio
from bench.timing import Case, interleaved
from bench.world import NOW, SERVICE, Sample, World
from keys.jws import signing_input
from schemas import base45, payload, qrtext, strictjson
from schemas.card import Card
from schemas.compression import DICTIONARY_1, inflate
from verifier._qr import _header, scan
from verifier.reason import Reason
from verifier.verifier import DEFAULT_ALGORITHMS, _Verified

RATIO_GOAL = 0.75
"""Verifier.verify must reach this fraction of the raw ES256 verification rate."""

STAGE_KIND = "ar+zh"
"""The card kind whose verification is broken down into stages."""


@dataclass(frozen=True, slots=True)
class Prepared:
    """One card, and what each verification stage takes as input."""

    sample: Sample
    parts: qrtext.QRParts
    message: bytes
    der_signature: bytes
    token: str
    inflated: bytes
    claims_json: bytes
    claims: dict[str, Any]
    card: Card


def prepare(sample: Sample) -> Prepared:
    parts = qrtext.unpack(sample.qr)
    half = len(parts.signature) // 2
    der = encode_dss_signature(
        int.from_bytes(parts.signature[:half], "big"), int.from_bytes(parts.signature[half:], "big")
    )
    token = ".".join(_b64url(part) for part in (parts.header, parts.payload, parts.signature))
    inflated = inflate(parts.payload, "D1")
    claims_json, _ = payload.split(inflated)
    claims = strictjson.loads(claims_json, max_depth=None)
    return Prepared(
        sample,
        parts,
        signing_input(parts.header, parts.payload),
        der,
        token,
        inflated,
        claims_json,
        claims,
        Card.from_claims(claims),
    )


def run(
    world: World,
    samples: Sequence[Sample],
    portrait_samples: Sequence[Sample],
    *,
    repeats: int,
    min_time: float,
) -> Section:
    section = Section("verification", "1. Verification rate (ES256, distinct cards)")
    prepared = [prepare(sample) for sample in samples]
    verifier = world.verifier
    public_key = world.public_key
    _sanity_checks(world, prepared, portrait_samples)

    ecdsa = ECDSA(SHA256())
    zdict = DICTIONARY_1
    registry = joserfc_jws.JWSRegistry(
        header_registry={"zip": HeaderParameter("Compression", "str")}, algorithms=["ES256"]
    )
    jose_key = ECKey.import_key(public_key)

    def raw(item: Prepared) -> None:
        public_key.verify(item.der_signature, item.message, ecdsa)

    def fmcard(item: Prepared) -> object:
        return verifier.verify(item.sample.qr, service=SERVICE, at=NOW)

    def pyjwt(item: Prepared) -> object:
        signed = jwt.PyJWS().decode(item.token, public_key, algorithms=["ES256"])
        return json.loads(zlib.decompressobj(-15, zdict=zdict).decompress(signed))

    def joserfc(item: Prepared) -> object:
        signed = joserfc_jws.deserialize_compact(
            item.token, jose_key, algorithms=["ES256"], registry=registry
        )
        return json.loads(zlib.decompressobj(-15, zdict=zdict).decompress(signed.payload))

    def fmcard_sample(sample: Sample) -> object:
        return verifier.verify(sample.qr, service=SERVICE, at=NOW)

    cases = {
        "raw": Case(raw, prepared),
        "verifier": Case(fmcard, prepared),
        "pyjwt": Case(pyjwt, prepared),
        "joserfc": Case(joserfc, prepared),
    }
    if portrait_samples:
        cases["verifier_portrait"] = Case(fmcard_sample, portrait_samples)
    timings = interleaved(cases, repeats=repeats, min_time=min_time)
    labels = {
        "raw": "raw ES256 verify (cryptography, DER)",
        "verifier": "Verifier.verify (fmcard)",
        "pyjwt": "pyjwt PyJWS.decode + inflate + json",
        "joserfc": "joserfc deserialize_compact + inflate + json",
        "verifier_portrait": "Verifier.verify, cards with portrait",
    }
    rates = Table(
        f"Cards per second over {len(prepared)} distinct cards "
        f"(best of {repeats}; median in brackets)",
        ("method", "cards", "us/card", "(median)", "cards/s", "vs raw"),
    )
    for key, timing in timings.items():
        rates.add(
            labels[key],
            timing.items,
            f"{timing.best_us:.1f}",
            f"({timing.median_us:.1f})",
            f"{timing.rate:,.0f}",
            f"{ratio(timing.rate, timings['raw'].rate):.2f}",
        )
    section.tables.append(rates)

    ratios = {
        "verifier/raw": ratio(timings["verifier"].rate, timings["raw"].rate),
        "pyjwt/raw": ratio(timings["pyjwt"].rate, timings["raw"].rate),
        "joserfc/raw": ratio(timings["joserfc"].rate, timings["raw"].rate),
        "verifier/pyjwt": ratio(timings["verifier"].rate, timings["pyjwt"].rate),
        "verifier/joserfc": ratio(timings["verifier"].rate, timings["joserfc"].rate),
    }
    ratio_table = Table("Rate ratios (same run)", ("ratio", "value"))
    for name, value in ratios.items():
        ratio_table.add(name, f"{value:.3f}")
    section.tables.append(ratio_table)
    section.checks.append(
        Check(
            "Verifier.verify / raw ES256 rate",
            f">= {RATIO_GOAL:.2f}",
            f"{ratios['verifier/raw']:.3f}",
            ratios["verifier/raw"] >= RATIO_GOAL,
        )
    )

    stage_items = [item for item in prepared if item.sample.kind == STAGE_KIND]
    stage_tables, stage_data = _stages(world, stage_items, repeats=repeats, min_time=min_time)
    section.tables += stage_tables
    section.data.update(
        {
            "cards": len(prepared),
            "kinds": {
                kind: sum(p.sample.kind == kind for p in prepared) for kind in _kinds(prepared)
            },
            "timings": {key: timing.to_json() for key, timing in timings.items()},
            "ratios": ratios,
            "stages_kind": STAGE_KIND,
            "stages": stage_data,
        }
    )
    section.notes.append(
        "pyjwt and joserfc rows check the signature, inflate and parse JSON only: no container, "
        "no strict JSON, no claim validation, no status or entitlement"
    )
    section.notes.append(
        "joserfc needs a registry that declares the 'zip' header (its default refuses unknown "
        "JWS header members); pyjwt builds a PyJWS object per card as written in the brief"
    )
    return section


@dataclass(frozen=True, slots=True)
class Stage:
    """One step of ``Verifier.verify``, as the library's own function called alone."""

    name: str
    function: str
    alone: Case
    in_pipeline: bool = True
    """Whether the step is on the verify path (else a reference row, timed alone only)."""


def _stages(
    world: World, items: Sequence[Prepared], *, repeats: int, min_time: float
) -> tuple[list[Table], dict[str, Any]]:
    """Time each verification step alone, and the pipeline up to each step.

    Steps timed alone on warm inputs add up to less than ``verify()``: back to back, the
    Python code runs with caches just flushed by OpenSSL and with fresh objects (string
    hashes not yet cached), and ``verify()`` has its own glue. So the pipeline is also run up
    to each step in turn (the library's functions called in ``verify()``'s order); the increase
    from one prefix to the next is that step's cost in place, and the prefixes add up to the
    whole.
    """
    verifier = world.verifier
    public_key = world.public_key
    policy = world.policy
    issuer = world.issuer
    key = world.trusted_key
    leeway = verifier.leeway
    algorithms = verifier.algorithms
    ecdsa = ECDSA(SHA256())
    es256 = ECAlgorithm(ECAlgorithm.SHA256)
    prefix = len(qrtext.PREFIX)
    verified = [_Verified(item.card, issuer, key, None) for item in items]
    status_issued_at = world.bundle.status_lists[issuer.status_uri("1")].issued_at

    def key_checks(v: _Verified) -> bool:
        return (
            not v.key.is_compromised_at(NOW)
            and v.card.issuer == v.issuer.issuer_id
            and v.key.covers_issue_time(v.card.issued_at, leeway)
        )

    def decide(v: _Verified) -> bool:
        card = v.card
        if NOW + leeway < card.valid_from or NOW - leeway >= card.expires_at:
            raise AssertionError("bench card outside its validity")
        verifier._check_status(v, policy, NOW)
        entitlement = card.entitlement(SERVICE)
        return entitlement is not None and entitlement.covers(NOW)

    def result(v: _Verified) -> object:
        return verifier._result(
            Reason.VALID, "", NOW, SERVICE, v, status_issued_at=status_issued_at
        )

    def pipeline(qr: str, steps: int) -> object:
        """``verify()``'s steps in its order, stopping after ``steps`` of them."""
        parts = qrtext.unpack(qr)
        if steps == 1:
            return parts
        _, _, zip_name = _header(parts.header, algorithms)
        if steps == 2:
            return zip_name
        message = signing_input(parts.header, parts.payload)
        if steps == 3:
            return message
        if not es256.verify(message, public_key, parts.signature):
            raise AssertionError("bench card signature does not verify")
        if steps == 4:
            return None
        inflated = inflate(parts.payload, zip_name)
        if steps == 5:
            return inflated
        claims_json, portrait = payload.split(inflated)
        if steps == 6:
            return claims_json
        claims = strictjson.loads(claims_json, max_depth=None)
        if steps == 7:
            return claims
        card = Card.from_claims(claims)
        if steps == 8:
            return card
        v = _Verified(card, issuer, key, portrait)
        if not key_checks(v):
            raise AssertionError("bench card fails the key checks")
        if steps == 9:
            return v
        decide(v)
        if steps == 10:
            return v
        return result(v)

    def alone(fn: Callable[[Prepared], object]) -> Case:
        return Case(fn, items)

    def alone_verified(fn: Callable[[_Verified], object]) -> Case:
        return Case(fn, verified)

    stages = [
        Stage("base45 + container", "qrtext.unpack", alone(lambda i: qrtext.unpack(i.sample.qr))),
        Stage(
            "header (cached, as verify)",
            "verifier._qr._header",
            alone(lambda i: _header(i.parts.header, algorithms)),
        ),
        Stage(
            "signing input",
            "keys.jws.signing_input",
            alone(lambda i: signing_input(i.parts.header, i.parts.payload)),
        ),
        Stage(
            "signature (pyjwt)",
            "ECAlgorithm.verify",
            alone(lambda i: es256.verify(i.message, public_key, i.parts.signature)),
        ),
        Stage(
            "inflate (D1)", "compression.inflate", alone(lambda i: inflate(i.parts.payload, "D1"))
        ),
        Stage("split claims/portrait", "payload.split", alone(lambda i: payload.split(i.inflated))),
        Stage(
            "JSON (strict)",
            "strictjson.loads",
            alone(lambda i: strictjson.loads(i.claims_json, max_depth=None)),
        ),
        Stage("claim validation", "Card.from_claims", alone(lambda i: Card.from_claims(i.claims))),
        Stage("key state, issuer, key window", "TrustedKey checks", alone_verified(key_checks)),
        Stage(
            "dates, status, entitlement",
            "Verifier._check_status + covers",
            alone_verified(decide),
        ),
        Stage("result object", "Verifier._result", alone_verified(result)),
    ]
    references = [
        Stage(
            "  base45 decode only",
            "base45.decode",
            alone(lambda i: base45.decode(i.sample.qr[prefix:])),
            in_pipeline=False,
        ),
        Stage(
            "  header, uncached",
            "_header.__wrapped__",
            alone(lambda i: _header.__wrapped__(i.parts.header, DEFAULT_ALGORITHMS)),
            in_pipeline=False,
        ),
        Stage(
            "  scan (container + header)",
            "verifier._qr.scan",
            alone(lambda i: scan(i.sample.qr, allowed_algorithms=algorithms)),
            in_pipeline=False,
        ),
        Stage(
            "  raw ES256 (cryptography)",
            "EllipticCurvePublicKey.verify",
            alone(lambda i: public_key.verify(i.der_signature, i.message, ecdsa)),
            in_pipeline=False,
        ),
        Stage(
            "  plain json.loads",
            "json.loads",
            alone(lambda i: json.loads(i.claims_json)),
            in_pipeline=False,
        ),
    ]
    # Pipeline checkpoints: (steps run, what the increase over the previous checkpoint is).
    # Steps of a few microseconds are grouped: a difference of two timings is only as good
    # as their noise, about 1 % of a verify().
    checkpoints = [
        (2, "QR text -> parts (base45, container, header)"),
        (4, "signature (signing input, pyjwt ES256)"),
        (7, "inflate, split, strict JSON"),
        (8, "claim validation (Card.from_claims)"),
        (11, "key checks, dates, status, entitlement, result"),
    ]
    qrs = [item.sample.qr for item in items]
    cases: dict[str, Case] = {}
    for stage in [*stages, *references]:
        cases[f"alone:{stage.name}"] = stage.alone
    for steps, _ in checkpoints:
        cases[f"prefix:{steps}"] = Case(partial(_call_pipeline, pipeline, steps), qrs)
    cases["whole"] = Case(lambda qr: verifier.verify(qr, service=SERVICE, at=NOW), qrs)
    timings = interleaved(cases, repeats=repeats, min_time=min_time)
    whole = timings["whole"]
    total = whole.best

    alone_table = Table(
        f"Stages of one verification, each alone on warm inputs: {len(items)} distinct "
        f"'{STAGE_KIND}' cards, us per card",
        ("stage", "function", "us", "(median)", "% of verify"),
    )
    data: dict[str, Any] = {"alone": [], "in_place": []}
    sum_alone = 0.0
    for stage in [*stages, *references]:
        timing = timings[f"alone:{stage.name}"]
        if stage.in_pipeline:
            sum_alone += timing.best
        alone_table.add(
            stage.name,
            stage.function,
            f"{timing.best_us:.2f}",
            f"({timing.median_us:.2f})",
            f"{100 * timing.best / total:.1f}",
        )
        data["alone"].append(
            {
                "stage": stage.name.strip(),
                "function": stage.function,
                "on_verify_path": stage.in_pipeline,
                **timing.to_json(),
            }
        )
        if stage is stages[-1]:
            alone_table.add(
                "sum of the stages above",
                "",
                f"{sum_alone * 1e6:.2f}",
                "",
                f"{100 * sum_alone / total:.1f}",
            )
            alone_table.add(
                "Verifier.verify (measured)",
                "",
                f"{whole.best_us:.2f}",
                f"({whole.median_us:.2f})",
                "100.0",
            )
            alone_table.add("reference figures:", "", "", "", "")

    place_table = Table(
        "Where verify()'s time goes in place: the pipeline run up to each checkpoint, "
        "increase over the previous one, us per card",
        ("steps", "us", "% of verify", "alone", "in place / alone"),
    )
    previous = 0.0
    first = 0
    for steps, name in checkpoints:
        prefix_timing = timings[f"prefix:{steps}"]
        in_place = prefix_timing.best - previous
        previous = prefix_timing.best
        alone_sum = sum(timings[f"alone:{stage.name}"].best for stage in stages[first:steps])
        first = steps
        place_table.add(
            name,
            f"{in_place * 1e6:.1f}",
            f"{100 * in_place / total:.1f}",
            f"{alone_sum * 1e6:.1f}",
            f"{in_place / alone_sum:.2f}",
        )
        data["in_place"].append(
            {
                "steps": name,
                "in_place_s": in_place,
                "alone_s": alone_sum,
                "prefix": prefix_timing.to_json(),
            }
        )
    rest = total - previous
    place_table.add(
        "rest of verify() (argument checks, policy, trust list expiry, exceptions)",
        f"{rest * 1e6:.1f}",
        f"{100 * rest / total:.1f}",
        "",
        "",
    )
    place_table.add(
        "Verifier.verify",
        f"{total * 1e6:.1f}",
        "100.0",
        f"{sum_alone * 1e6:.1f}",
        f"{total / sum_alone:.2f}",
    )
    data["in_place"].append({"steps": "rest of verify()", "in_place_s": rest})
    data["verify"] = whole.to_json()
    data["sum_alone_s"] = sum_alone
    return [alone_table, place_table], data


def _call_pipeline(pipeline: Callable[[str, int], object], steps: int, qr: str) -> object:
    return pipeline(qr, steps)


def _sanity_checks(
    world: World, prepared: Sequence[Prepared], portrait_samples: Sequence[Sample]
) -> None:
    """Every card must verify as VALID and decode to its claims, else the rates mean nothing."""
    for item in prepared:
        result = world.verifier.verify(item.sample.qr, service=SERVICE, at=NOW)
        if result.reason is not Reason.VALID:
            raise AssertionError(
                f"bench card {item.card.serial} is {result.reason}: {result.detail}"
            )
        if item.claims != item.sample.card.to_claims():
            raise AssertionError(f"bench card {item.card.serial} does not decode to its claims")
        signed = jwt.PyJWS().decode(item.token, world.public_key, algorithms=["ES256"])
        if signed != item.parts.payload:
            raise AssertionError("pyjwt decoded a different payload")
    for sample in portrait_samples:
        result = world.verifier.verify(sample.qr, service=SERVICE, at=NOW)
        if result.reason is not Reason.VALID or result.portrait != sample.portrait:
            raise AssertionError(f"bench portrait card is {result.reason}: {result.detail}")


def _kinds(prepared: Sequence[Prepared]) -> list[str]:
    return sorted({item.sample.kind for item in prepared})


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
