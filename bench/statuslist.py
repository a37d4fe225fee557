"""Section 3: the size of a status list for 10 million cards with 1 % revoked.

Revoked indexes are drawn at random (seeded), as the issuer hands indexes out at random: the
worst case for DEFLATE, which finds no runs to exploit. The entropy bound is what any lossless
code needs on average for independent entries revoked with probability ``p``:
``n * H(p)`` bits with ``H(p) = -p log2 p - (1-p) log2 (1-p)``. Two-bit lists hold the same
information (only 0 and 1 occur), so their bound is the same.
"""

from __future__ import annotations

import bz2
import lzma
import math
import random
from datetime import timedelta
from functools import partial
from typing import Any

from bench.report import Check, Section, Table
from bench.timing import once, per_item
from bench.world import NOW, World
from keys.jws import VerificationKey, b64url
from keys.status_list import StatusList, read_status_list, sign_status_list

CARDS = 10_000_000
REVOKED_FRACTION = 0.01
TARGET_BYTES = 150_000
"""The compressed list (before base64url) must stay within 150 KB."""
LOOKUPS = 10_000


def entropy_bytes(cards: int, fraction: float) -> float:
    """``cards * H(fraction)`` bits, in bytes."""
    p = fraction
    bits_per_card = -p * math.log2(p) - (1 - p) * math.log2(1 - p)
    return cards * bits_per_card / 8


def list_bytes(cards: int, bits: int, revoked: list[int]) -> tuple[bytes, str]:
    """The raw status list (LSB first, value 1 at ``revoked``) and how it was built."""
    fast = _numpy_bytes(cards, bits, revoked)
    if fast is not None:
        return fast, "numpy"
    data = bytearray((cards * bits + 7) // 8)
    for index in revoked:
        position = index * bits
        data[position >> 3] |= 1 << (position & 7)
    return bytes(data), "pure python"


def _numpy_bytes(cards: int, bits: int, revoked: list[int]) -> bytes | None:
    try:
        import numpy as np
    except ImportError:
        return None
    positions = np.asarray(revoked, dtype=np.int64) * bits
    data = np.zeros((cards * bits + 7) // 8, dtype=np.uint8)
    # Distinct indexes never share a bit; np.bitwise_or.at also handles shared bytes.
    np.bitwise_or.at(data, positions >> 3, np.left_shift(1, positions & 7).astype(np.uint8))
    return data.tobytes()


def run(world: World, *, seed: int, repeats: int, reference_codecs: bool) -> Section:
    section = Section(
        "status_list", f"3. Status list size ({CARDS:,} cards, {REVOKED_FRACTION:.0%} revoked)"
    )
    rng = random.Random(seed)
    revoked = sorted(rng.sample(range(CARDS), int(CARDS * REVOKED_FRACTION)))
    bound = entropy_bytes(CARDS, REVOKED_FRACTION)
    probe = random.Random(seed + 1)
    lookups = [probe.randrange(CARDS) for _ in range(LOOKUPS - 100)] + revoked[:100]
    revoked_set = set(revoked)

    sizes = Table(
        f"StatusList.compressed() (zlib, the smaller of two strategies); entropy bound "
        f"{bound / 1000:.1f} KB; target {TARGET_BYTES / 1000:.0f} KB",
        ("bits", "raw KB", "zlib KB", "/ entropy", "lst chars", "compress s", "(median)"),
    )
    reading = Table(
        "Reading the list back",
        ("bits", "from_lst ms", "(median)", "lookup us", "read_status_list ms", "(median)"),
    )
    codecs = Table(
        "Other codecs on the same bytes (reference only: the IETF format mandates zlib)",
        ("bits", "bz2 -9 KB", "lzma -9e KB", "zlib KB"),
    )
    data: dict[str, Any] = {
        "cards": CARDS,
        "revoked": len(revoked),
        "entropy_bound_bytes": bound,
        "target_bytes": TARGET_BYTES,
        "lists": {},
    }
    verification_key = VerificationKey(world.signer.kid, world.signer.public_key)
    for bits in (1, 2):
        raw, method = list_bytes(CARDS, bits, revoked)
        data["built_with"] = method
        statuses = StatusList(CARDS, bits, data=raw)
        compress_time, compressed = once(statuses.compressed, repeats=repeats)
        lst = b64url(compressed).decode("ascii")  # what to_lst() returns, without compressing again
        from_lst, decoded = once(partial(StatusList.from_lst, lst, bits), repeats=repeats)
        if decoded.to_bytes() != raw or any(
            decoded[index] != (index in revoked_set) for index in lookups
        ):
            raise AssertionError(f"the {bits}-bit status list does not read back as written")
        lookup = per_item(decoded.__getitem__, lookups, repeats=repeats, min_time=0.02)
        token = sign_status_list(
            statuses,
            uri="https://fmcard.example/status/bench",
            signer=world.signer,
            issued_at=NOW - timedelta(hours=1),
            expires_at=NOW + timedelta(days=1),
            ttl=3600,
        )
        read, _ = once(partial(read_status_list, token, keys=[verification_key]), repeats=repeats)
        sizes.add(
            bits,
            f"{len(raw) / 1000:,.1f}",
            f"{len(compressed) / 1000:.1f}",
            f"{len(compressed) / bound:.2f}",
            len(lst),
            f"{compress_time.best:.2f}",
            f"({compress_time.median:.2f})",
        )
        reading.add(
            bits,
            f"{from_lst.best * 1e3:.1f}",
            f"({from_lst.median * 1e3:.1f})",
            f"{lookup.best_us:.3f}",
            f"{read.best * 1e3:.1f}",
            f"({read.median * 1e3:.1f})",
        )
        entry: dict[str, Any] = {
            "raw_bytes": len(raw),
            "compressed_bytes": len(compressed),
            "ratio_to_entropy": len(compressed) / bound,
            "lst_chars": len(lst),
            "token_chars": len(token),
            "compress": compress_time.to_json(),
            "from_lst": from_lst.to_json(),
            "lookup": lookup.to_json(),
            "read_status_list": read.to_json(),
        }
        if reference_codecs:
            bz2_size = len(bz2.compress(raw, 9))
            lzma_size = len(lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME))
            codecs.add(
                bits,
                f"{bz2_size / 1000:.1f}",
                f"{lzma_size / 1000:.1f}",
                f"{len(compressed) / 1000:.1f}",
            )
            entry["reference"] = {"bz2": bz2_size, "lzma": lzma_size}
        data["lists"][f"{bits}bit"] = entry
        section.checks.append(
            Check(
                f"{bits}-bit list, zlib size",
                f"<= {TARGET_BYTES / 1000:.0f} KB",
                f"{len(compressed) / 1000:.1f} KB ({len(compressed) / bound:.2f} x entropy)",
                len(compressed) <= TARGET_BYTES,
            )
        )
    section.tables += [sizes, reading]
    if reference_codecs:
        section.tables.append(codecs)
    section.data.update(data)
    section.notes.append(
        f"list bytes built with {data['built_with']}; from_lst = base64url decode + inflate; "
        "read_status_list = the whole signed token (signature, JSON, from_lst) as a bundle load"
    )
    return section
