"""Section 10: live presentations of phone cards (``docs/FORMAT.md`` section 11).

Two figures: the QR version of a live presentation (``FM2:``: the card, the disclosures of a
service profile and a 68-byte device proof), with and without the portrait, per profile,
next to the printed card; and what the device proof adds to a counter's verification.
The target: a live presentation with portrait fits QR version 22 at error correction L, as
a printed card with portrait does.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bench import live_browser, qrsize
from bench import portrait as portraits
from bench.report import Check, Section, Table
from bench.timing import Case, interleaved
from bench.world import NOW, SERVICE, Sample, World
from cardissuer.portrait import MAX_LIVE_TEXT, fit_portrait
from keys.cards import encode_card
from keys.jwk import generate, public_jwk
from keys.phone import (
    SERVICE_PROFILES,
    PhoneCard,
    largest_presentation,
    present,
    proof_verifies,
    sign_phone_card,
)
from keys.signer import KeySigner
from schemas import qrtext
from schemas.card import Card, Entitlement
from schemas.presentation import Proof
from verifier.reason import Level, Reason

PROFILES = {"transport (tr)": "tr", "hospital (hc)": "hc", "bank (bk, everything)": "bk"}
# A live presentation is shown on the phone's screen, never printed: its target is the largest
# code phones show and counters read from a screen (22 at L), not the printed back's limit
# (section 2, qrsize.TARGET_PORTRAIT), which holds for the printed card in the first row.
TARGET = (22, "L")


def run(
    world: World, portrait_samples: Sequence[Sample], *, repeats: int, min_time: float
) -> Section:
    section = Section("live", "10. Live presentations (phone cards)")
    device = KeySigner(generate())
    _sizes(section, world, device)
    _costs(section, world, device, portrait_samples, repeats=repeats, min_time=min_time)
    sample = portrait_samples[0]
    held = {e.service for e in sample.card.entitlements}
    everything = sample.card.entitlements + tuple(
        Entitlement(service) for service in PROFILES.values() if service not in held
    )
    live_browser.run(
        section,
        lambda jwk: sign_phone_card(
            sample.card.replace(entitlements=everything),
            world.signer,
            device_jwk=jwk,
            portrait=sample.portrait,
        ),
        world.verifier,
        services=tuple(PROFILES.values()),
        at=NOW,
    )
    return section


def _sizes(section: Section, world: World, device: KeySigner) -> None:
    photo = portraits.choose(portraits.SAMPLE_PHOTO.read_bytes())
    table = Table(
        "QR code of a live presentation per service profile (FM2: card + disclosures + "
        "68-byte proof) vs the printed card (FM1:)",
        ("sample", "shown as", "portrait B", "QR chars", "ver M", "ver L", "target", "verdict"),
    )
    data: list[dict[str, Any]] = []
    jwk = public_jwk(device.public_key)
    for name, card in qrsize.sample_cards().items():
        services = tuple(e.service for e in card.entitlements)
        card = card.replace(entitlements=card.entitlements + _missing(services))

        # As the issuer signs it: the portrait re-encoded (lower quality) only where the
        # largest presentation would not fit version 22 at L (cardissuer.portrait).
        def sign(data: bytes, card: Card = card) -> PhoneCard:
            return sign_phone_card(card, world.signer, device_jwk=jwk, portrait=data)

        _, phone = fit_portrait(
            photo.data,
            sign,
            chars=lambda phone: len(largest_presentation(phone)),
            limit=MAX_LIVE_TEXT,
        )
        phone_portrait = next(len(d.value) for d in phone.disclosures if d.name == "pt")
        stress = name.startswith("(v)")
        for with_portrait in (True, False):
            rows = [("printed", encode_card(card, world.signer, portrait=photo.data
                     if with_portrait else None))]  # fmt: skip
            for profile, service in PROFILES.items():
                labels = {d.label for d in phone.profile(service)}
                if not with_portrait:
                    labels.discard("pt")
                text = present(phone, device, service=service, at=NOW, disclose=labels)
                rows.append((f"live, {profile}", text))
            for shown, text in rows:
                qr_fit = qrsize.fit(text)
                measured = qr_fit.version(TARGET[1])
                passed = measured <= TARGET[0]
                verdict = ("PASS" if passed else "MISS") + (" (info)" if stress else "")
                table.add(
                    name,
                    shown,
                    (len(photo.data) if shown == "printed" else phone_portrait)
                    if with_portrait
                    else "-",
                    qr_fit.chars,
                    qr_fit.version_m,
                    qr_fit.version_l,
                    f"<= {TARGET[0]}-{TARGET[1]}",
                    verdict,
                )
                if with_portrait and shown.startswith("live") and not stress:
                    section.checks.append(
                        Check(
                            f"{name}, {shown}, portrait",
                            f"<= version {TARGET[0]}-{TARGET[1]}",
                            f"version {measured}-{TARGET[1]}",
                            passed,
                        )
                    )
                data.append(
                    {
                        "sample": name,
                        "shown_as": shown,
                        "portrait": with_portrait,
                        **qr_fit.to_json(),
                    }
                )
    section.tables.append(table)
    section.data["sizes"] = data
    section.notes.append(
        f"portrait: {photo.media_type} {len(photo.data)} B ({photo.source}); profiles: "
        + "; ".join(f"{s}: {', '.join(sorted(v))}" for s, v in SERVICE_PROFILES.items())
        + "; other services: everything"
    )


def _missing(services: tuple[str, ...]) -> tuple[Entitlement, ...]:
    """Give every sample a transport entitlement, so the bus profile has one to show."""
    return () if "tr" in services else (Entitlement("tr"),)


def _costs(
    section: Section,
    world: World,
    device: KeySigner,
    samples: Sequence[Sample],
    *,
    repeats: int,
    min_time: float,
) -> None:
    """Printed card vs live presentation through ``Verifier.verify``, and the proof alone,
    over the same distinct cards (with portrait), interleaved."""
    jwk = public_jwk(device.public_key)
    verifier = world.verifier
    printed = [sample.qr for sample in samples]
    phones = [
        sign_phone_card(s.card, world.signer, device_jwk=jwk, portrait=s.portrait) for s in samples
    ]
    live = [present(phone, device, service=SERVICE, at=NOW) for phone in phones]
    proofs = [_proof_case(phone, text) for phone, text in zip(phones, live, strict=True)]
    for text in live:
        result = verifier.verify(text, service=SERVICE, at=NOW)
        if result.reason is not Reason.VALID or result.level is not Level.LIVE:
            raise AssertionError(f"a live sample does not verify: {result.detail}")
    timings = interleaved(
        {
            "printed card (FM1:), verify": Case(
                lambda text: verifier.verify(text, service=SERVICE, at=NOW), printed
            ),
            "live presentation (FM2:), verify": Case(
                lambda text: verifier.verify(text, service=SERVICE, at=NOW), live
            ),
            "device proof alone (ES256 verify + digests)": Case(
                lambda case: proof_verifies(
                    jwk, case[0], card=case[1], disclosures=case[2], service=SERVICE
                ),
                proofs,
            ),
        },
        repeats=repeats,
        min_time=min_time,
    )
    table = Table(
        f"Verification cost over {len(samples)} distinct cards with portrait (best [median])",
        ("what", "us per card", "cards/s"),
    )
    for name, timing in timings.items():
        table.add(name, f"{timing.best_us:.0f} [{timing.median_us:.0f}]", f"{timing.rate:.0f}")
    section.tables.append(table)
    section.data["costs"] = {name: timing.to_json() for name, timing in timings.items()}
    extra = (
        timings["live presentation (FM2:), verify"].best_us
        - timings["printed card (FM1:), verify"].best_us
    )
    section.notes.append(f"a live presentation costs {extra:.0f} us more than a printed card")


def _proof_case(phone: PhoneCard, text: str) -> tuple[Proof, bytes, bytes]:
    parts = qrtext.unpack(text)
    return Proof.from_bytes(parts.attachments[1]), phone.digest, parts.attachments[0]
