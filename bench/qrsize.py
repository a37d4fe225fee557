"""Section 2: how big the QR code of a card is, and what the encoding choices buy.

QR versions come from ``segno.make_qr(text, error=..., boost_error=False)``: the smallest
version that holds the text at that error correction level. ``FM1:`` + Base45 is entirely in
the QR alphanumeric alphabet, so segno encodes it in alphanumeric mode (checked and printed).
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

import segno  # type: ignore[import-not-found,import-untyped,unused-ignore]  # not a dependency

from bench import portrait as portraits
from bench.report import Check, Section, Table
from bench.world import NOW, World, random_code
from keys.cards import encode_card
from schemas import qrtext, strictjson
from schemas.card import BirthDate, Card, Entitlement, StatusRef

TARGET_PLAIN = (12, "M")
"""A card without portrait must fit QR version 12 at error correction M."""
TARGET_PORTRAIT = (16, "L")
"""A card with portrait must fit QR version 16 at error correction L: the largest whose
modules on the card's printed back (0.61 mm) a camera still reads from a distance
(section 8)."""

SHC_PREFIX = "shc:/"

_make_qr: Callable[..., segno.QRCode] = segno.make_qr  # typed loosely: takes segment lists too


@dataclass(frozen=True, slots=True)
class QRFit:
    """The QR code one content needs at levels M and L."""

    chars: int
    mode: str
    version_m: int
    version_l: int

    def version(self, error: str) -> int:
        return self.version_m if error == "M" else self.version_l

    def to_json(self) -> dict[str, Any]:
        return {
            "chars": self.chars,
            "mode": self.mode,
            "version_M": self.version_m,
            "version_L": self.version_l,
        }


def fit(content: str | list[str]) -> QRFit:
    """QR versions for ``content``; a list is encoded as one segment per item."""
    codes = [_make_qr(content, error=error, boost_error=False) for error in ("M", "L")]
    modes = {code.mode for code in codes}
    mode = modes.pop() if len(modes) == 1 else "?"
    if mode is None:  # several segments: segno picked a mode for each
        mode = "+".join(str(segno.make_qr(item).mode) for item in content)
    chars = len(content) if isinstance(content, str) else sum(map(len, content))
    return QRFit(chars, mode, _version(codes[0]), _version(codes[1]))


@cache
def alphanumeric_capacity(version: int, error: str) -> int:
    """Characters of ``FM1:``-style text that QR ``version``-``error`` holds (binary search)."""
    low, high = 0, qrtext.MAX_QR_TEXT
    while low < high:
        middle = (low + high + 1) // 2
        try:
            segno.make_qr("A" * middle, error=error, version=version, boost_error=False)
        except segno.DataOverflowError:
            high = middle - 1
        else:
            low = middle
    return low


def sample_cards() -> dict[str, Card]:
    """The sample cards: one person, with more and more scripts, plus a large stress card."""
    code = random_code(random.Random(20261122))
    base = Card(
        issuer="CN-ZJ-YWPSB",
        code=code,
        serial="A7K3M9QX",
        issued_at=NOW - timedelta(days=1),
        valid_from=NOW - timedelta(days=1),
        expires_at=NOW + timedelta(days=3 * 365),
        family_name="AL-HASHIMI",
        given_names="MOHAMMED ABDULLAH",
        nationality="SAU",
        birth_date=BirthDate(1985, 3, 14),
        entitlements=(Entitlement("hc"), Entitlement("bk")),
        status=StatusRef("1", 7_384_211),
    )
    zh = base.replace(chinese_name="穆罕默德·哈希米")
    window_start = NOW + timedelta(days=30)
    stress = base.replace(
        family_name="GARCÍA-FERNÁNDEZ DE LA TORRE Y SANTOS-MORENO",
        given_names="MARÍA JOSÉ ALEJANDRA GUADALUPE",
        native_name="عبد الرحمن بن محمد بن عبد الله آل عبد العزيز الهاشمي",
        chinese_name="玛丽亚·何塞·亚历杭德拉·瓜达卢佩·加西亚-费尔南德斯",
        entitlements=tuple(
            Entitlement(service, window_start, window_start + timedelta(days=365))
            if service in ("ed", "ho", "bz")
            else Entitlement(service)
            for service in ("hc", "ed", "tr", "bk", "ho", "bz")
        ),
    )
    return {
        "(i) Latin name only": base,
        "(ii) + Chinese name": zh,
        "(iii) + Arabic native + Chinese": zh.replace(native_name="محمد عبدالله الهاشمي"),
        "(v) stress: long names, 6 services": stress,
    }


def compact_jws(qr: str) -> str:
    """The compact JWS that a card's QR text carries (what the verifier rebuilds)."""
    parts = qrtext.unpack(qr)
    return ".".join(_b64url(part) for part in (parts.header, parts.payload, parts.signature))


def shc_numeric(token: str) -> list[str]:
    """SMART Health Cards' numeric QR content: ``shc:/`` then two digits per JWS character."""
    return [SHC_PREFIX, "".join(f"{ord(char) - 45:02d}" for char in token)]


def run(world: World) -> Section:
    section = Section("qr_size", "2. QR size")
    photo = portraits.SAMPLE_PHOTO.read_bytes()
    chosen = _portraits(section, photo)
    cards = sample_cards()

    sizes = Table(
        "QR code per sample card (segno, boost_error=False; headroom = characters left in the "
        "target version)",
        (
            "sample",
            "portrait",
            "payload B",
            "QR chars",
            "mode",
            "ver M",
            "ver L",
            "target",
            "headroom",
            "verdict",
        ),
    )
    size_data: list[dict[str, Any]] = []
    for portrait in (None, chosen):
        for name, card in cards.items():
            qr = encode_card(card, world.signer, portrait=portrait.data if portrait else None)
            qr_fit = fit(qr)
            version, error = TARGET_PORTRAIT if portrait else TARGET_PLAIN
            measured = qr_fit.version(error)
            headroom = alphanumeric_capacity(version, error) - qr_fit.chars
            stress = name.startswith("(v)")
            label = name if portrait is None else f"{name} + portrait"
            verdict = ("PASS" if measured <= version else "MISS") + (" (info)" if stress else "")
            payload = len(qrtext.unpack(qr).payload)
            if qr_fit.mode != "alphanumeric":
                section.notes.append(
                    f"segno chose {qr_fit.mode} mode, not alphanumeric, for {label}"
                )
            sizes.add(
                name,
                f"{portrait.media_type[6:]} {len(portrait.data)} B" if portrait else "-",
                payload,
                qr_fit.chars,
                qr_fit.mode,
                qr_fit.version_m,
                qr_fit.version_l,
                f"<= {version}-{error}",
                headroom,
                verdict,
            )
            if not stress:
                section.checks.append(
                    Check(
                        label,
                        f"<= version {version}-{error}",
                        f"version {measured}-{error} ({qr_fit.mode})",
                        measured <= version,
                    )
                )
            size_data.append(
                {
                    "sample": label,
                    "portrait_bytes": len(portrait.data) if portrait else 0,
                    "payload_bytes": payload,
                    **qr_fit.to_json(),
                    "target": f"{version}-{error}",
                    "headroom_chars": headroom,
                    "passed": measured <= version,
                }
            )
    section.tables.append(sizes)
    section.data["cards"] = size_data
    section.data["capacity"] = {
        f"{v}-{e}": alphanumeric_capacity(v, e) for v, e in (TARGET_PLAIN, TARGET_PORTRAIT)
    }

    _encodings(section, world, cards)
    _compression(section, world, cards, chosen)
    section.notes.append(
        "alphanumeric capacity: "
        + ", ".join(f"{k} holds {v} chars" for k, v in section.data["capacity"].items())
    )
    return section


def _portraits(section: Section, photo: bytes) -> portraits.Encoded:
    """Print the portrait candidates; return the one the QR sizes use."""
    table = Table(
        "Portraits from cardissuer/demo/sample-photo.jpg (grey, 96x120)",
        ("photo", "made by", "format", "bytes", "metadata in file"),
    )
    data: list[dict[str, Any]] = []
    tagged = portraits.tagged_photo(photo)
    photos = [("sample-photo.jpg", photo)]
    if tagged is not None:
        photos.append(("same + sRGB ICC + EXIF", tagged))
    for photo_name, source in photos:
        candidates = portraits.local_variants(source)
        library = portraits.library_portrait(source)
        if library is not None:
            candidates.append(library)
        for encoded in candidates:
            metadata = encoded.metadata
            table.add(
                photo_name,
                encoded.source,
                encoded.media_type,
                len(encoded.data),
                ", ".join(metadata) or "none",
            )
            data.append(
                {
                    "photo": photo_name,
                    "source": encoded.source,
                    "media_type": encoded.media_type,
                    "bytes": len(encoded.data),
                    "metadata": metadata,
                }
            )
            if metadata:
                section.notes.append(
                    f"{encoded.source} wrote {', '.join(metadata)} into the {encoded.media_type} "
                    f"portrait of '{photo_name}' ({len(encoded.data)} B): metadata is not stripped"
                )
    chosen = portraits.choose(photo)
    section.tables.append(table)
    section.notes.append(
        f"QR sizes use the {chosen.media_type} portrait made by {chosen.source} "
        f"({len(chosen.data)} B)"
        + ("" if chosen.source.startswith("cardissuer") else ": cardissuer.portrait not found")
    )
    section.data["portraits"] = data
    section.data["portrait_used"] = {
        "source": chosen.source,
        "media_type": chosen.media_type,
        "bytes": len(chosen.data),
    }
    return chosen


def _encodings(section: Section, world: World, cards: dict[str, Card]) -> None:
    table = Table(
        "Same JWS, three QR encodings (no portrait)",
        ("sample", "encoding", "chars", "mode", "ver M", "ver L"),
    )
    data: list[dict[str, Any]] = []
    for name, card in cards.items():
        qr = encode_card(card, world.signer)
        token = compact_jws(qr)
        for encoding, content in (
            ("FM1: + Base45 (ours)", qr),
            ("compact JWS text", token),
            ("shc:/ + numeric (SHC)", shc_numeric(token)),
        ):
            qr_fit = fit(content)
            table.add(name, encoding, qr_fit.chars, qr_fit.mode, qr_fit.version_m, qr_fit.version_l)
            data.append({"sample": name, "encoding": encoding, **qr_fit.to_json()})
    section.tables.append(table)
    section.data["encodings"] = data


def _compression(
    section: Section, world: World, cards: dict[str, Card], portrait: portraits.Encoded
) -> None:
    table = Table(
        "Payload compression: DEF (raw DEFLATE) vs D1 (raw DEFLATE + preset dictionary); "
        "input = claims JSON (+ LF + portrait)",
        ("sample", "input B", "DEF B", "D1 B", "D1 saves", "QR chars", "ver M", "ver L"),
    )
    data: list[dict[str, Any]] = []
    for image in (None, portrait.data):
        for card_name, card in cards.items():
            name = card_name if image is None else f"{card_name} + portrait"
            claims = len(strictjson.dumps(card.to_claims())) + (1 + len(image) if image else 0)
            fits: dict[str, QRFit] = {}
            payloads: dict[str, int] = {}
            for zip_name in ("DEF", "D1"):
                qr = encode_card(card, world.signer, portrait=image, zip_name=zip_name)
                payloads[zip_name] = len(qrtext.unpack(qr).payload)
                fits[zip_name] = fit(qr)
            _compression_row(table, data, name, claims, payloads, fits)
    section.tables.append(table)
    section.data["compression"] = data


def _compression_row(
    table: Table,
    data: list[dict[str, Any]],
    name: str,
    uncompressed: int,
    payloads: dict[str, int],
    fits: dict[str, QRFit],
) -> None:
    table.add(
        name,
        uncompressed,
        payloads["DEF"],
        payloads["D1"],
        payloads["DEF"] - payloads["D1"],
        f"{fits['DEF'].chars} -> {fits['D1'].chars}",
        f"{fits['DEF'].version_m} -> {fits['D1'].version_m}",
        f"{fits['DEF'].version_l} -> {fits['D1'].version_l}",
    )
    data.append(
        {
            "sample": name,
            "uncompressed_bytes": uncompressed,
            "payload_bytes": payloads,
            "qr": {zip_name: qr_fit.to_json() for zip_name, qr_fit in fits.items()},
        }
    )


def _version(code: segno.QRCode) -> int:
    version = code.version
    if not isinstance(version, int):
        raise TypeError(f"segno made a Micro QR code ({version}); expected a QR code")
    return version


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")
