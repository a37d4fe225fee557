"""Section 4: how many cards the issuer signs per second with ``keys.encode_card``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
from cryptography.hazmat.primitives.hashes import SHA256

from bench.report import Section, Table, ratio
from bench.timing import Case, interleaved
from bench.world import Sample, World
from keys.cards import encode_card
from keys.jws import sign_parts, signing_input
from schemas import base45, qrtext, strictjson
from schemas.compression import deflate


def run(
    world: World,
    samples: Sequence[Sample],
    portrait_samples: Sequence[Sample],
    *,
    repeats: int,
    min_time: float,
) -> Section:
    section = Section("signing", "4. Signing rate (ES256)")
    signer = world.signer
    private_key = world.issuing_key
    ecdsa = ECDSA(SHA256())
    inputs = [qrtext.unpack(sample.qr) for sample in samples]
    messages = [signing_input(parts.header, parts.payload) for parts in inputs]
    claims = [strictjson.dumps(sample.card.to_claims()) for sample in samples]
    containers = [_container(sample.qr) for sample in samples]
    portrait_inputs = [qrtext.unpack(sample.qr) for sample in portrait_samples]
    portrait_containers = [_container(sample.qr) for sample in portrait_samples]

    cases = {
        "raw": Case(lambda message: private_key.sign(message, ecdsa), messages),
        "encode_card": Case(lambda sample: encode_card(sample.card, signer), samples),
    }
    if portrait_samples:
        cases["encode_card_portrait"] = Case(
            lambda sample: encode_card(sample.card, signer, portrait=sample.portrait),
            portrait_samples,
        )
    # (label, case, the encode_card timing it is a part of)
    stage_plan: list[tuple[str, Case, str]] = [
        (
            "claims JSON (to_claims + dumps)",
            Case(lambda sample: strictjson.dumps(sample.card.to_claims()), samples),
            "encode_card",
        ),
        ("deflate (D1, level 9)", Case(deflate, claims), "encode_card"),
        (
            "header + signature (sign_parts)",
            Case(lambda parts: sign_parts(parts.payload, signer, zip="D1"), inputs),
            "encode_card",
        ),
        ("container + Base45 (qrtext.pack)", Case(qrtext.pack, inputs), "encode_card"),
        ("  of which base45.encode", Case(base45.encode, containers), "encode_card"),
    ]
    if portrait_samples:
        stage_plan += [
            (
                "qrtext.pack, cards with portrait",
                Case(qrtext.pack, portrait_inputs),
                "encode_card_portrait",
            ),
            (
                "  of which base45.encode",
                Case(base45.encode, portrait_containers),
                "encode_card_portrait",
            ),
        ]
    stage_cases = {f"stage {number}": case for number, (_, case, _) in enumerate(stage_plan)}
    measured = interleaved({**cases, **stage_cases}, repeats=repeats, min_time=min_time)
    timings = {name: measured[name] for name in cases}
    labels = {
        "raw": "raw ES256 sign (cryptography, DER)",
        "encode_card": "keys.encode_card",
        "encode_card_portrait": "keys.encode_card, with portrait",
    }
    table = Table(
        f"Cards signed per second (distinct cards, best of {repeats})",
        ("method", "cards", "us/card", "(median)", "cards/s", "vs raw"),
    )
    for key, timing in timings.items():
        table.add(
            labels[key],
            timing.items,
            f"{timing.best_us:.1f}",
            f"({timing.median_us:.1f})",
            f"{timing.rate:,.0f}",
            f"{ratio(timing.rate, timings['raw'].rate):.2f}",
        )
    section.tables.append(table)

    stage_table = Table(
        "Stages of encode_card, each alone (us per card, best; % of the encode_card row "
        "of the same cards)",
        ("stage", "us", "(median)", "% of encode"),
    )
    stages: dict[str, Any] = {}
    for number, (label, _, whole) in enumerate(stage_plan):
        timing = measured[f"stage {number}"]
        stage_table.add(
            label,
            f"{timing.best_us:.2f}",
            f"({timing.median_us:.2f})",
            f"{100 * timing.best / timings[whole].best:.1f}",
        )
        stages[f"{label.strip()} ({whole})"] = timing.to_json()
    section.tables.append(stage_table)
    section.data.update(
        {
            "cards": len(samples),
            "timings": {key: timing.to_json() for key, timing in timings.items()},
            "ratio_encode_to_raw": ratio(timings["encode_card"].rate, timings["raw"].rate),
            "stages": stages,
        }
    )
    return section


def _container(qr: str) -> bytes:
    """The binary container inside a card's QR text (what Base45 encodes)."""
    return base45.decode(qr[len(qrtext.PREFIX) :])
