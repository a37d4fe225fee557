"""Section 8: does the card's QR decode as a camera sees it?

A counter reads the card from a phone photo or a webcam frame, not from the clean PNG. This
section takes each artefact a holder shows (the printed card's back at 300 dpi, the holder
page on a phone screen, the wallet pass's barcode), degrades it as a capture would, and
counts how many cards two independent decoders still read:

* **zxing-cpp** (the verifier's own ``[scan]`` decoder), and
* **zbar** (through pyzbar; Debian's ``libzbar0``), when installed.

Conditions, each applied to the artefact's image:

==============  ==========================================================================
``clean``       the image as rendered
``scale 40%``   resampled to 40 % (also 33 %, 25 %): a card filling less of the frame
``blur``        50 % and a Gaussian blur of 1 px (focus, motion)
``tilt 20/30``  50 % and a perspective tilt of 20 or 30 degrees about the vertical axis
``jpeg q40``    50 % and JPEG at quality 40 (a messaging app, a cheap webcam)
``light``       50 % and uneven light: a gradient from 35 % to 100 % and a glare spot
``combined``    40 %, blur 0.7 px, tilt 20 degrees, uneven light, JPEG q40
==============  ==========================================================================

A card counts as read only if the decoded text is exactly its QR text. The figures are a
rate per card type and artefact: without portrait; with the portrait ``make_portrait``
makes (what the console issuer stores); and the largest the issuer signs, the same cards
with the best portrait quality that keeps the QR within the workspace's budget (what
``fmcard issue --portrait`` does). Each table's title gives the QR versions and, for the
printed back, the module sizes.

The wallet barcode shows each card as its pass carries it: the compact form, the same card
signed without the portrait (``cardissuer.wallet.barcode``). Two more tables say why: what
else the pass could carry (smaller portraits; drawn in byte mode at M, as a generic encoder
may; at 600 and 480 px), and compact cards by version across barcode sizes.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
import segno
from PIL import Image, ImageDraw, ImageFilter, ImageOps

from bench.portrait import SAMPLE_PHOTO
from bench.qrsize import alphanumeric_capacity
from bench.render import _view
from bench.report import Check, Section, Table
from bench.world import Sample, World
from cardissuer.portrait import portrait_candidates
from cardissuer.render.card import CardView, back_module_mm, render_card
from cardissuer.render.qr import SMALL_CODE_VERSION, qr_image, qr_version
from cardissuer.workspace import MAX_PORTRAIT_QR_TEXT
from keys.cards import compact_form, encode_card

Decoder = Callable[[Image.Image], list[str]]


def _zxing() -> Decoder | None:
    try:
        import zxingcpp
    except ImportError:
        return None

    def decode(image: Image.Image) -> list[str]:
        return [result.text for result in zxingcpp.read_barcodes(image.convert("L"))]

    return decode


def _zbar() -> Decoder | None:
    try:
        from pyzbar import pyzbar
    except (ImportError, OSError):  # the package, or libzbar itself, is missing
        return None

    def decode(image: Image.Image) -> list[str]:
        found = pyzbar.decode(image.convert("L"), symbols=[pyzbar.ZBarSymbol.QRCODE])
        return [item.data.decode("utf-8", "replace") for item in found]

    return decode


def largest(world: World, samples: Sequence[Sample]) -> list[Sample]:
    """``samples`` re-signed as the workspace issues them from the sample photo: with the
    best portrait candidate whose card still fits ``MAX_PORTRAIT_QR_TEXT``."""
    candidates = [candidate.data for candidate in portrait_candidates(SAMPLE_PHOTO.read_bytes())]
    out = []
    for sample in samples:
        for data in candidates:
            qr = encode_card(sample.card, world.signer, portrait=data)
            if len(qr) <= MAX_PORTRAIT_QR_TEXT:
                out.append(Sample(sample.kind, sample.card, qr, data))
                break
    return out


PORTRAIT_SETTINGS: tuple[tuple[tuple[int, int], int], ...] = (
    ((96, 120), 20),
    ((96, 120), 10),
    ((80, 100), 15),
    ((72, 90), 20),
    ((64, 80), 26),
    ((64, 80), 20),
    ((64, 80), 15),
    ((56, 70), 20),
    ((48, 60), 26),
)
"""Portrait sizes and AVIF qualities the lever table compares (96x120 q20 was the default,
64x80 q20 is)."""
LEVER_CONDITIONS = ("scale 25%", "blur 1px @50%", "combined @40%")


def portrait_at(photo: bytes, size: tuple[int, int], quality: int) -> bytes:
    """``photo`` prepared as ``cardissuer.portrait`` does, at another size and quality."""
    with Image.open(io.BytesIO(photo)) as opened:
        grey = ImageOps.exif_transpose(opened).convert("L")
    fitted = ImageOps.fit(grey, size, Image.Resampling.LANCZOS, centering=(0.5, 0.4))
    clean = Image.frombytes("L", size, ImageOps.autocontrast(fitted, cutoff=1).tobytes())
    buffer = io.BytesIO()
    clean.save(buffer, "AVIF", quality=quality)
    return buffer.getvalue()


def portrait_levers(world: World, samples: Sequence[Sample], decoders: dict[str, Decoder]) -> Table:
    """Per portrait setting: bytes, QR versions, module size on the printed back and how
    many cards each decoder reads in the conditions that separate the settings."""
    photo = SAMPLE_PHOTO.read_bytes()
    table = Table(
        f"portrait setting against the printed back ({len(samples)} cards each, "
        "same claims): cards read",
        (
            "portrait",
            "bytes",
            "QR versions",
            "module mm",
            *(f"{c} / {n}" for c in LEVER_CONDITIONS for n in decoders),
        ),
    )
    for size, quality in PORTRAIT_SETTINGS:
        data = portrait_at(photo, size, quality)
        texts = [encode_card(sample.card, world.signer, portrait=data) for sample in samples]
        counts = {(c, n): 0 for c in LEVER_CONDITIONS for n in decoders}
        for sample, text in zip(samples, texts, strict=True):
            image = printed_back(Sample(sample.kind, sample.card, text, data))
            for condition in LEVER_CONDITIONS:
                degraded = CONDITIONS[condition](image)
                for name, decoder in decoders.items():
                    counts[(condition, name)] += text in decoder(degraded)
        versions = sorted({qr_version(text)[0] for text in texts})
        modules = sorted({round(back_module_mm(text), 2) for text in texts})
        table.add(
            f"{size[0]}x{size[1]} q{quality}",
            str(len(data)),
            "-".join(str(v) for v in (versions[0], versions[-1])),
            "-".join(f"{m:.2f}" for m in (modules[0], modules[-1])),
            *(f"{counts[key]}/{len(samples)}" for key in counts),
        )
    return table


SWEEP_VERSIONS = (10, 12, *range(13, 21))


def _scaled(factor: float) -> Callable[[Image.Image], Image.Image]:
    return lambda image: scale(image, factor)


SWEEP_SCALES = {f"scale {percent}%": _scaled(percent / 100) for percent in (22, 24, 26, 28)}
"""Scales next to 25 %, in the sweep only: whether a version read at 25 % is read because its
modules are large enough or because the 25 % grid happens to fall well on them."""
SWEEP_CONDITIONS = ("scale 33%", "scale 28%", "scale 26%", "scale 25%", "scale 24%",
                    "scale 22%", "blur 1px @50%", "combined @40%")  # fmt: skip
BASE45 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def version_sweep(sample: Sample, decoders: dict[str, Decoder], per_version: int) -> Table:
    """Random ``FM1:`` texts filling each QR version (at M up to 12, as the issuer builds
    them, else L), drawn on ``sample``'s card back as the issuer lays it out: how the module
    size alone decides what is read."""
    rng = random.Random(20261122)
    table = Table(
        f"QR version against the printed back ({per_version} random texts a version): cards read",
        (
            "version",
            "module mm",
            *(f"{c} / {n}" for c in SWEEP_CONDITIONS for n in decoders),
        ),
    )
    for version in SWEEP_VERSIONS:
        level = "M" if version <= SMALL_CODE_VERSION else "L"
        low = alphanumeric_capacity(version - 1, level) + 1
        high = alphanumeric_capacity(version, level)
        counts = {(c, n): 0 for c in SWEEP_CONDITIONS for n in decoders}
        text = ""
        for _ in range(per_version):
            length = rng.randint(low, high) - 4
            text = "FM1:" + "".join(rng.choice(BASE45) for _ in range(length))
            image = _on_table(replace(_view(sample), qr_text=text))
            for condition in SWEEP_CONDITIONS:
                degraded = {**CONDITIONS, **SWEEP_SCALES}[condition](image)
                for name, decoder in decoders.items():
                    counts[(condition, name)] += text in decoder(degraded)
        table.add(
            str(qr_version(text)[0]),
            f"{back_module_mm(text):.2f}",
            *(f"{counts[key]}/{per_version}" for key in counts),
        )
    return table


# --- artefacts: what the camera is pointed at ----------------------------------------------


def printed_back(sample: Sample) -> Image.Image:
    """The card's back as printed (300 dpi), on a table: a margin of grey around it."""
    return _on_table(_view(sample))


def _on_table(view: CardView) -> Image.Image:
    card = render_card(view, side="back", size="print")
    table = Image.new("RGB", (card.width + 240, card.height + 240), (128, 124, 118))
    table.paste(card, (120, 120))
    return table


def holder_screen(sample: Sample) -> Image.Image:
    """The holder page on a phone: the QR 330 CSS px wide at 3 device pixels a CSS px (a
    360-px phone), nearest-neighbour as the page's ``image-rendering: pixelated`` shows it,
    on a 1080 x 1920 white screen."""
    qr = qr_image(sample.qr, module_pixels=1).convert("L")
    side = 990
    scaled = qr.resize((side, side), Image.Resampling.NEAREST)
    screen = Image.new("RGB", (1080, 1920), (255, 255, 255))
    screen.paste(scaled, (45, 520))
    return screen


WALLET_SIDE = 600
"""The wallet barcode's side in device pixels: 200 pt at 3x on a 390-pt (1170-px) phone. Apple
Wallet and Google Wallet size the barcode themselves; 150-180 pt is what Wallet shows of a
generic pass's QR, so 600 px is generous (``wallet_levers`` also measures 480 px, 160 pt)."""


def wallet_screen(sample: Sample) -> Image.Image:
    """A wallet pass's barcode: about half the width of a 1170-px phone screen, on the
    pass's white barcode panel over a coloured pass. ``sample`` is the text the pass
    carries (:func:`wallet_form`)."""
    return _wallet_panel(qr_image(sample.qr, module_pixels=1).convert("L"), WALLET_SIDE)


def _wallet_panel(qr: Image.Image, side: int) -> Image.Image:
    scaled = qr.resize((side, side), Image.Resampling.NEAREST)
    screen = Image.new("RGB", (1170, 2532), (150, 22, 32))
    panel = Image.new("RGB", (side + 60, side + 60), (255, 255, 255))
    panel.paste(scaled, (30, 30))
    screen.paste(panel, ((1170 - side - 60) // 2, 1100))
    return screen


def wallet_form(world: World, sample: Sample) -> Sample:
    """``sample`` as its wallet pass's barcode carries it: the compact form, the same card
    signed without the portrait (``cardissuer.wallet.barcode``, here with the bench's key)."""
    return Sample(sample.kind, sample.card, compact_form(sample.qr, world.signer), None)


def byte_mode_image(text: str) -> Image.Image:
    """``text`` as a generic encoder draws it: byte mode, level M, quiet zone 4. The pass
    formats take a message and a character set (Apple: ``messageEncoding``; Google: an
    optional ``renderEncoding``), not a mode, level or module size, so the wallet app may
    draw our alphanumeric text in byte mode at its own level: a larger version."""
    code = segno.make_qr(text.encode("iso-8859-1"), error="M", boost_error=False, mode="byte")
    rows = [list(row) for row in code.matrix_iter(scale=1, border=4)]
    image = Image.new("L", (len(rows), len(rows)), 255)
    image.putdata([0 if dark else 255 for row in rows for dark in row])
    return image


WALLET_LEVER_CONDITIONS = ("scale 33%", "scale 25%", "combined @40%")
WALLET_PORTRAITS: tuple[tuple[tuple[int, int], int], ...] = (((48, 60), 26), ((48, 60), 15))
"""Smaller portraits for a wallet form (option b); below 64x80 the face is lost (above)."""


def wallet_levers(world: World, samples: Sequence[Sample], decoders: dict[str, Decoder]) -> Table:
    """What the wallet barcode could carry, drawn as we draw it (alphanumeric, L above
    version 12, else M) and as a generic encoder may (byte mode, M), at 600 px (200 pt) and
    480 px (160 pt): the portrait card as issued, smaller portraits, and the compact form."""
    photo = SAMPLE_PHOTO.read_bytes()
    options: dict[str, list[str]] = {"portrait as issued": [sample.qr for sample in samples]}
    for size, quality in WALLET_PORTRAITS:
        data = portrait_at(photo, size, quality)
        options[f"portrait {size[0]}x{size[1]} q{quality}"] = [
            encode_card(sample.card, world.signer, portrait=data) for sample in samples
        ]
    options["compact form (no portrait)"] = [wallet_form(world, s).qr for s in samples]
    drawings: dict[str, Callable[[str], tuple[Image.Image, int]]] = {
        "alphanumeric": lambda text: (
            qr_image(text, module_pixels=1).convert("L"),
            qr_version(text)[0],
        ),
        "byte M": lambda text: (byte_mode_image(text), _byte_version(text)),
    }
    table = Table(
        f"wallet barcode options ({len(samples)} portrait cards each, same claims): cards read",
        (
            "barcode carries",
            "drawn",
            "px",
            "QR versions",
            *(f"{c} / {n}" for c in WALLET_LEVER_CONDITIONS for n in decoders),
        ),
    )
    for option, texts in options.items():
        for drawn, draw in drawings.items():
            images = [draw(text) for text in texts]
            versions = sorted({version for _, version in images})
            for side in (WALLET_SIDE, 480):
                counts = {(c, n): 0 for c in WALLET_LEVER_CONDITIONS for n in decoders}
                for text, (qr, _) in zip(texts, images, strict=True):
                    screen = _wallet_panel(qr, side)
                    for condition in WALLET_LEVER_CONDITIONS:
                        degraded = CONDITIONS[condition](screen)
                        for name, decoder in decoders.items():
                            counts[(condition, name)] += text in decoder(degraded)
                table.add(
                    option,
                    drawn,
                    str(side),
                    "-".join(str(v) for v in (versions[0], versions[-1])),
                    *(f"{counts[key]}/{len(texts)}" for key in counts),
                )
    return table


WALLET_SWEEP_SIDES = (480, 540, 570, 600, 630)


def wallet_size_sweep(
    world: World, samples: Sequence[Sample], decoders: dict[str, Decoder], per_version: int
) -> Table:
    """Compact cards (``samples`` as their passes carry them) by QR version, at 25 % of the
    phone screen, for barcode sides around ``WALLET_SIDE``: where the wallet's barcode size
    puts a version at the decoders' limit (about 2 px a module), whatever the card."""
    by_version: dict[int, list[str]] = {}
    for sample in samples:
        text = wallet_form(world, sample).qr
        found = by_version.setdefault(qr_version(text)[0], [])
        if len(found) < per_version:
            found.append(text)
    versions = sorted(by_version)
    table = Table(
        f"compact cards by QR version in the wallet barcode at scale 25% (up to {per_version} "
        "a version): cards read",
        ("barcode px", *(f"v{v} / {n}" for v in versions for n in decoders)),
    )
    for side in WALLET_SWEEP_SIDES:
        cells = []
        for version in versions:
            texts = by_version[version]
            screens = [
                scale(_wallet_panel(qr_image(text, module_pixels=1).convert("L"), side), 0.25)
                for text in texts
            ]
            for decoder in decoders.values():
                read = sum(
                    text in decoder(screen) for text, screen in zip(texts, screens, strict=True)
                )
                cells.append(f"{read}/{len(texts)}")
        table.add(str(side), *cells)
    return table


def _byte_version(text: str) -> int:
    code = segno.make_qr(text.encode("iso-8859-1"), error="M", boost_error=False, mode="byte")
    return int(code.version)


ARTEFACTS: dict[str, Callable[[Sample], Image.Image]] = {
    "printed back 300 dpi": printed_back,
    "holder page screen": holder_screen,
    "wallet barcode": wallet_screen,
}


# --- conditions: what the camera does to it ------------------------------------------------


def scale(image: Image.Image, factor: float) -> Image.Image:
    size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
    return image.resize(size, Image.Resampling.BILINEAR)


def blur(image: Image.Image, radius: float) -> Image.Image:
    return image.filter(ImageFilter.GaussianBlur(radius))


def _perspective_coefficients(
    source: Sequence[tuple[float, float]], target: Sequence[tuple[float, float]]
) -> list[float]:
    """Coefficients for ``Image.transform(PERSPECTIVE)``: output point -> input point."""
    rows = []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    a = np.array(rows, dtype=float)
    b = np.array([c for point in source for c in point], dtype=float)
    return [float(value) for value in np.linalg.solve(a, b)]


def tilt(image: Image.Image, degrees: float) -> Image.Image:
    """Turn the image about its vertical axis by ``degrees``, seen by a camera whose focal
    length is the image width: the far edge shrinks and the whole is foreshortened."""
    w, h = image.size
    angle = math.radians(degrees)
    focal = float(w)

    def project(x: float, y: float) -> tuple[float, float]:
        cx, cy = x - w / 2, y - h / 2
        depth = focal + cx * math.sin(angle)
        return (w / 2 + focal * cx * math.cos(angle) / depth, h / 2 + focal * cy / depth)

    corners = [(0.0, 0.0), (float(w), 0.0), (float(w), float(h)), (0.0, float(h))]
    coefficients = _perspective_coefficients(corners, [project(x, y) for x, y in corners])
    return image.transform(
        (w, h),
        Image.Transform.PERSPECTIVE,
        coefficients,
        Image.Resampling.BILINEAR,
        fillcolor=(128, 124, 118),
    )


def jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.convert("RGB").save(buffer, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")


def uneven_light(image: Image.Image) -> Image.Image:
    """A shadow across the image (35 % to 100 % brightness) and a soft glare spot."""
    w, h = image.size
    pixels = np.asarray(image.convert("RGB"), dtype=np.float32)
    ramp = np.linspace(0.35, 1.0, w, dtype=np.float32)[np.newaxis, :, np.newaxis]
    glare = Image.new("L", (w, h), 0)
    ImageDraw.Draw(glare).ellipse((w * 0.55, h * 0.1, w * 0.85, h * 0.4), fill=110)
    spot = np.asarray(glare.filter(ImageFilter.GaussianBlur(w / 20)), dtype=np.float32)
    lit = pixels * ramp + spot[:, :, np.newaxis]
    return Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8))


def _at_half(work: Callable[[Image.Image], Image.Image]) -> Callable[[Image.Image], Image.Image]:
    return lambda image: work(scale(image, 0.5))


CONDITIONS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "clean": lambda image: image,
    "scale 40%": lambda image: scale(image, 0.40),
    "scale 33%": lambda image: scale(image, 1 / 3),
    "scale 25%": lambda image: scale(image, 0.25),
    "blur 1px @50%": _at_half(lambda image: blur(image, 1.0)),
    "tilt 20 @50%": _at_half(lambda image: tilt(image, 20)),
    "tilt 30 @50%": _at_half(lambda image: tilt(image, 30)),
    "jpeg q40 @50%": _at_half(lambda image: jpeg(image, 40)),
    "uneven light @50%": _at_half(uneven_light),
    "combined @40%": lambda image: jpeg(uneven_light(tilt(blur(scale(image, 0.40), 0.7), 20)), 40),
}


@dataclass(frozen=True, slots=True)
class Rate:
    read: int
    total: int

    def __str__(self) -> str:
        return f"{self.read}/{self.total}"

    @property
    def ratio(self) -> float:
        return self.read / self.total if self.total else 0.0


def rates(
    samples: Sequence[Sample], artefact: Callable[[Sample], Image.Image], decoder: Decoder
) -> dict[str, Rate]:
    """How many of ``samples`` each condition leaves readable by ``decoder``."""
    counts = dict.fromkeys(CONDITIONS, 0)
    for sample in samples:
        image = artefact(sample)
        for name, condition in CONDITIONS.items():
            if sample.qr in decoder(condition(image)):
                counts[name] += 1
    return {name: Rate(count, len(samples)) for name, count in counts.items()}


def run(
    compact: Sequence[Sample],
    portrait: Sequence[Sample],
    *,
    per_type: int,
    world: World | None = None,
) -> Section:
    section = Section("capture", "8. Decoding the QR as a camera sees it")
    decoders = {name: make() for name, make in (("zxing-cpp", _zxing), ("zbar", _zbar))}
    for name, decoder in decoders.items():
        if decoder is None:
            section.notes.append(
                f"{name} not installed: its column is skipped "
                "(zxing-cpp: pip install 'fmcard[scan]'; zbar: apt install libzbar0 and "
                "pip install pyzbar)"
            )
    available = {name: decoder for name, decoder in decoders.items() if decoder is not None}
    types = {"no portrait": list(compact[:per_type]), "portrait": list(portrait[:per_type])}
    if world is not None:
        types["largest portrait"] = largest(world, portrait[:per_type])
    shown = dict.fromkeys(ARTEFACTS, types)
    if world is not None:  # a pass carries the compact form (cardissuer.wallet.barcode)
        shown["wallet barcode"] = {
            kind: [wallet_form(world, sample) for sample in items] for kind, items in types.items()
        }
    versions = {
        kind: sorted({qr_version(sample.qr)[0] for sample in items})
        for kind, items in types.items()
    }
    modules = {
        kind: sorted({round(back_module_mm(sample.qr), 2) for sample in items})
        for kind, items in types.items()
    }
    columns = tuple(f"{kind} / {name}" for kind in types for name in available)
    results: dict[str, dict[str, dict[str, dict[str, Rate]]]] = {}
    for artefact_name, artefact in ARTEFACTS.items():
        texts = shown[artefact_name]
        table = Table(
            f"{artefact_name}: cards read / cards shown "
            + "; ".join(
                f"{kind} QR versions "
                f"{sorted({qr_version(sample.qr)[0] for sample in texts[kind]})}"
                + (f", modules {modules[kind]} mm" if artefact is printed_back else "")
                for kind in types
            ),
            ("condition", *columns),
        )
        if texts is not types:
            table.title += " (as the pass carries them: the compact form, without portrait)"
        found = {
            kind: {name: rates(items, artefact, decoder) for name, decoder in available.items()}
            for kind, items in texts.items()
        }
        results[artefact_name] = found
        for condition in CONDITIONS:
            table.add(
                condition,
                *(str(found[kind][name][condition]) for kind in types for name in available),
            )
        section.tables.append(table)
        for name in available:
            compact_rates = found["no portrait"][name]
            for kind in types:
                if kind == "no portrait":
                    continue
                missing = [
                    condition
                    for condition in CONDITIONS
                    if compact_rates[condition].ratio == 1.0
                    and found[kind][name][condition].ratio < 1.0
                ]
                section.checks.append(
                    Check(
                        f"{artefact_name}, {name}: {kind} card read wherever the compact is",
                        "no condition missed",
                        "all" if not missing else "missed: " + ", ".join(missing),
                        not missing,
                    )
                )
    if world is not None:
        section.tables.append(portrait_levers(world, types["portrait"], available))
        section.tables.append(wallet_levers(world, types["portrait"], available))
        section.tables.append(
            wallet_size_sweep(world, [*compact, *portrait], available, max(3, per_type // 2 + 2))
        )
    section.tables.append(version_sweep(portrait[0], available, max(3, per_type)))
    section.data = {
        "per_type": per_type,
        "versions": versions,
        "printed_module_mm": modules,
        "rates": {
            artefact: {
                kind: {
                    name: {cond: [rate.read, rate.total] for cond, rate in by_condition.items()}
                    for name, by_condition in by_decoder.items()
                }
                for kind, by_decoder in by_kind.items()
            }
            for artefact, by_kind in results.items()
        },
    }
    return section
