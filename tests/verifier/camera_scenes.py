"""Synthesised camera videos for the counter page: what a counter camera sees when a holder
shows a printed card (tilted) or the card's code on a phone (in a dark room, or against a
bright window), at 640x480 or 1280x720.

A video is a few frames of the empty scene, then the card, looping (Chromium's fake camera
plays a Y4M file in a loop). Every frame carries its number in the file as a row of black and
white blocks in its bottom-left corner, so that a script in the page can tell which file frame
each camera frame is: the first frame showing the card is then known exactly, and the
latency is measured from it, not from the frame the decoder happened to read.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from cardissuer.render.card import CardView, render_card
from cardissuer.render.qr import qr_image
from cardissuer.workspace import IssuedCard

MARKER_BITS = 8
MARKER_BLOCK = 12
MARKER_TOP_MARGIN = 4
"""The frame-number marker: MARKER_BITS blocks of MARKER_BLOCK px, most significant first,
MARKER_TOP_MARGIN px above the frame's bottom edge and from its left edge."""

KINDS = ("printed card tilted", "phone screen dark room", "phone screen bright window")
SIZES = ((640, 480), (1280, 720))


@dataclass(frozen=True)
class Video:
    """A written Y4M file: ``first_card`` is the number of the first frame showing the card."""

    frames: int
    first_card: int
    fps: int


def marker_script() -> str:
    """A script run in the page before its own: it reads the marker of every camera frame the
    video element presents and keeps ``{time, index}`` (the frame's capture time, as the page
    takes it) in ``window.__fmcardFrames``."""
    return f"""
    (() => {{
      const frames = window.__fmcardFrames = [];
      const canvas = document.createElement("canvas");
      function read(video, now, meta) {{
        const h = video.videoHeight;
        const bits = {MARKER_BITS}, block = {MARKER_BLOCK}, margin = {MARKER_TOP_MARGIN};
        canvas.width = bits * block; canvas.height = block;
        const context = canvas.getContext("2d", {{ willReadFrequently: true }});
        context.drawImage(video, margin, h - margin - block, bits * block, block,
                          0, 0, bits * block, block);
        const data = context.getImageData(0, 0, bits * block, block).data;
        let index = 0;
        for (let i = 0; i < bits; i++) {{
          const at = ((block >> 1) * bits * block + i * block + (block >> 1)) * 4;
          index = index * 2 + (data[at] < 128 ? 1 : 0);
        }}
        frames.push({{ time: meta.captureTime || meta.presentationTime || now, index,
                       count: meta.presentedFrames }});
        video.requestVideoFrameCallback((n, m) => read(video, n, m));
      }}
      document.addEventListener("DOMContentLoaded", () => {{
        const video = document.getElementById("video");
        video.requestVideoFrameCallback((n, m) => read(video, n, m));
      }});
    }})();
    """


def first_visible_time(
    frames: Sequence[dict[str, float]], decoded_time: float, video: Video
) -> float:
    """When the first frame showing the card was captured, in the cycle of the video whose
    frame the page decoded at ``decoded_time``.

    That is the earliest presented frame of the cycle showing the card, less the frame
    periods of any card frame never presented. A frame's metadata and the picture drawn from
    the video in the same callback can be one frame apart on a busy machine (the video moved
    on meanwhile), so the frame the page decoded may be marked as the last empty one: the
    card's first frame then came one period after it."""
    period = 1000 / video.fps
    at = next(i for i, frame in enumerate(frames) if frame["time"] == decoded_time)
    assert frames[at]["index"] >= video.first_card - 1, frames[at]
    if frames[at]["index"] < video.first_card:
        return frames[at]["time"] + (video.first_card - frames[at]["index"]) * period
    first = at
    while first > 0 and video.first_card <= frames[first - 1]["index"] <= frames[first]["index"]:
        first -= 1
    assert first > 0, "no empty frame before the card: the cycle's start was not seen"
    assert frames[first - 1]["index"] < video.first_card, frames[first - 1]
    missing = frames[first]["index"] - video.first_card
    return frames[first]["time"] - missing * period


def card_back(card: IssuedCard) -> Image.Image:
    """The printed back of ``card`` (300 dpi), as the issuer's renderer draws it."""
    c = card.card
    view = CardView(
        latin_name=f"{c.family_name} {c.given_names}".strip(),
        native_name=c.native_name,
        chinese_name=c.chinese_name,
        nationality=c.nationality or "",
        birth_date=str(c.birth_date) if c.birth_date else "",
        foreigner_code=c.code,
        serial=c.serial,
        valid_from=c.valid_from.date().isoformat(),
        valid_until=c.expires_at.date().isoformat(),
        qr_text=card.qr_text,
        issuer_en="Foreign Merchant Card Office",
        issuer_zh="外商卡办公室",
        portrait=card.portrait,
    )
    return render_card(view, side="back", size="print")


def _perspective_coefficients(
    source: Sequence[tuple[float, float]], target: Sequence[tuple[float, float]]
) -> list[float]:
    """Coefficients for ``Image.transform(PERSPECTIVE)``: output point -> input point."""
    rows = []
    for (x, y), (u, v) in zip(target, source, strict=True):
        rows.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        rows.append([0, 0, 0, x, y, 1, -v * x, -v * y])
    solution = np.linalg.solve(np.array(rows, dtype=float), np.array(source, dtype=float).ravel())
    return [float(value) for value in solution]


def _place(
    scene: Image.Image,
    thing: Image.Image,
    height: float,
    tilt_degrees: float,
    turn_degrees: float,
) -> Image.Image:
    """``thing`` scaled to ``height`` of the scene's height, turned in the image plane by
    ``turn_degrees`` and tilted about its vertical axis by ``tilt_degrees`` (camera focal
    length: the frame's width), centred on the scene."""
    w, h = scene.size
    scale = height * h / thing.height
    half_w, half_h = thing.width * scale / 2, thing.height * scale / 2
    tilt, turn = math.radians(tilt_degrees), math.radians(turn_degrees)
    focal = float(w)

    def project(x: float, y: float) -> tuple[float, float]:
        depth = focal + x * math.sin(tilt)
        px, py = focal * x * math.cos(tilt) / depth, focal * y / depth
        rx = px * math.cos(turn) - py * math.sin(turn)
        ry = px * math.sin(turn) + py * math.cos(turn)
        return (w / 2 + rx, h / 2 + ry)

    corners = [(-half_w, -half_h), (half_w, -half_h), (half_w, half_h), (-half_w, half_h)]
    source = [(0.0, 0.0), (float(thing.width), 0.0), (float(thing.width), float(thing.height))]
    source.append((0.0, float(thing.height)))
    coefficients = _perspective_coefficients(source, [project(x, y) for x, y in corners])
    rgba = thing.convert("RGBA")
    warped = rgba.transform(
        (w, h), Image.Transform.PERSPECTIVE, coefficients, Image.Resampling.BICUBIC
    )
    out = scene.copy()
    out.paste(warped.convert("RGB"), (0, 0), warped.getchannel("A"))
    return out


def _phone(code: Image.Image, white: int, black: int) -> Image.Image:
    """A phone (9:19.5) showing the holder page: the QR 92 % of the screen's width, in a black
    body; the screen's white and black at the given levels (exposure and glare)."""
    screen_w = 1080
    screen_h = 2340
    body = Image.new("RGB", (screen_w + 80, screen_h + 160), (12, 12, 14))
    screen = Image.new("L", (screen_w, screen_h), 255)
    side = int(screen_w * 0.92)
    screen.paste(code.convert("L").resize((side, side), Image.Resampling.NEAREST),
                 ((screen_w - side) // 2, 620))  # fmt: skip
    levels = np.asarray(screen, dtype=np.float32) / 255 * (white - black) + black
    body.paste(Image.fromarray(levels.astype(np.uint8)).convert("RGB"), (40, 80))
    return body


def _noisy(image: Image.Image, sigma: float, seed: int) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float32)
    noise = np.random.default_rng(seed).normal(0, sigma, pixels.shape)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))


def scene(kind: str, size: tuple[int, int], card: IssuedCard | None) -> Image.Image:
    """One camera frame of ``kind``: the empty scene for ``card=None``."""
    w, h = size
    if kind == "printed card tilted":
        # A counter lit from above: a grey-brown desk, the card tilted 25 degrees and turned 8.
        background = Image.new("RGB", size, (128, 124, 118))
        frame = background
        if card is not None:
            frame = _place(background, card_back(card), 0.62, 25, 8)
        return _noisy(frame.filter(ImageFilter.GaussianBlur(0.6)), 3, 1)
    if kind == "phone screen dark room":
        # Exposure set by the bright screen in a dark room: the screen's white saturates and
        # glows into the black modules.
        background = Image.new("RGB", size, (18, 18, 22))
        frame = background
        if card is not None:
            phone = _phone(qr_image(card.qr_text, module_pixels=1), 255, 45)
            frame = _place(background, phone, 0.95, 12, -5)
            glow = frame.filter(ImageFilter.GaussianBlur(2.0))
            frame = Image.blend(frame, glow, 0.35)
        return _noisy(frame, 7, 2)
    if kind == "phone screen bright window":
        # Behind the holder a window: exposure set by it, the screen comes out dim, and the
        # window reflects across the glass.
        background = Image.new("L", size, 0)
        ImageDraw.Draw(background).rectangle((0, 0, w, h), fill=235)
        ramp = np.linspace(215, 255, w, dtype=np.float32)[np.newaxis, :]
        sky = Image.fromarray(np.repeat(ramp, h, axis=0).astype(np.uint8)).convert("RGB")
        frame = sky
        if card is not None:
            phone = _phone(qr_image(card.qr_text, module_pixels=1), 165, 55)
            frame = _place(sky, phone, 0.95, -12, 4)
            reflection = Image.new("L", size, 0)
            ImageDraw.Draw(reflection).polygon(
                [(w * 0.3, 0), (w * 0.55, 0), (w * 0.45, h), (w * 0.2, h)], fill=40
            )
            glare = np.asarray(reflection.filter(ImageFilter.GaussianBlur(w / 30)), np.float32)
            lit = np.asarray(frame, dtype=np.float32) + glare[:, :, np.newaxis]
            frame = Image.fromarray(np.clip(lit, 0, 255).astype(np.uint8))
        return _noisy(frame, 4, 3)
    raise ValueError(kind)


def _planes(image: Image.Image) -> bytearray:
    luma, blue, red = image.convert("YCbCr").split()
    half = (image.width // 2, image.height // 2)
    box = Image.Resampling.BOX
    return bytearray(
        luma.tobytes() + blue.resize(half, box).tobytes() + red.resize(half, box).tobytes()
    )


def _mark(planes: bytearray, size: tuple[int, int], index: int) -> bytes:
    """``planes`` with ``index`` drawn into the luma plane's bottom-left corner."""
    w, h = size
    out = bytearray(planes)
    top = h - MARKER_TOP_MARGIN - MARKER_BLOCK
    for bit in range(MARKER_BITS):
        on = (index >> (MARKER_BITS - 1 - bit)) & 1
        value = 16 if on else 235
        left = MARKER_TOP_MARGIN + bit * MARKER_BLOCK
        for y in range(top, top + MARKER_BLOCK):
            start = y * w + left
            out[start : start + MARKER_BLOCK] = bytes([value]) * MARKER_BLOCK
    return bytes(out)


def write_video(
    path: object,
    kind: str,
    size: tuple[int, int],
    card: IssuedCard,
    *,
    fps: int = 30,
    empty_frames: int = 15,
    card_frames: int = 45,
) -> Video:
    """The Y4M video of ``kind`` at ``size``: ``empty_frames`` of the empty scene, then
    ``card_frames`` showing ``card``; each frame marked with its number."""
    assert empty_frames + card_frames < 1 << MARKER_BITS
    w, h = size
    empty = _planes(scene(kind, size, None))
    shown = _planes(scene(kind, size, card))
    with open(str(path), "wb") as video:
        video.write(f"YUV4MPEG2 W{w} H{h} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for index in range(empty_frames + card_frames):
            video.write(b"FRAME\n" + _mark(empty if index < empty_frames else shown, size, index))
    return Video(empty_frames + card_frames, empty_frames, fps)
