"""What counters fetch, written as files for a static web server, object store or CDN.

``fmcard publish --to DIR`` writes the documents the service serves, at the same paths:
``bundle.json``, ``trust-list.jwt``, ``jwks.json`` and ``status/<id>``. Counters then sync
from any web server in front of DIR, and thousands of them cost the issuer nothing.

Counters make conditional requests (``If-None-Match`` with the ETag, ``If-Modified-Since``
with the Last-Modified they were given), and static servers derive both from the file's
modification time (and size). So a file is rewritten only when its bytes change, and a
rewritten file's modification time is later than the one it replaces, by a second if the
clock has not moved on (HTTP dates have whole seconds): a counter holding the older file
never gets "not modified" for the newer one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlmodel import Session

from cardissuer.services.publishing import Publisher
from keys.store import write_file


@dataclass(frozen=True, slots=True)
class Written:
    """What one publication did: the paths written (changed) and those left as they were."""

    changed: list[str]
    unchanged: list[str]


def publish_to(
    directory: Path,
    publisher: Publisher,
    session: Session,
    *,
    anchors: list[Any],
    jwks: dict[str, Any],
    at: datetime,
) -> Written:
    """Write every document counters fetch under ``directory``; only the changed ones."""
    documents = {
        "trust-list.jwt": publisher.trust_list().body,
        "jwks.json": publisher.jwks(jwks, at=at).body,
        "bundle.json": publisher.bundle(session, anchors=anchors, at=at).body,
    }
    for published, list_id in zip(
        publisher.status_lists(session, at=at), publisher.list_ids(session), strict=True
    ):
        documents[f"status/{list_id}"] = published.body
    changed, unchanged = [], []
    # The bundle last: a counter that sees the new bundle finds the lists it names.
    for name in sorted(documents, key=lambda name: name == "bundle.json"):
        if _write_if_changed(directory / name, documents[name], at=at):
            changed.append(name)
        else:
            unchanged.append(name)
    return Written(changed, unchanged)


def _write_if_changed(path: Path, body: bytes, *, at: datetime) -> bool:
    try:
        if path.read_bytes() == body:
            return False
        previous: float | None = path.stat().st_mtime
    except FileNotFoundError:
        previous = None
    write_file(path, body)
    stamp = at.timestamp()
    if previous is not None and int(stamp) <= int(previous):
        stamp = int(previous) + 1.0
    os.utime(path, (stamp, stamp))
    return True
