"""``fmcard-verify sync``: fetch, verify against the pin, refuse rollback, keep the last good.

The issuer's site is a local :mod:`http.server` on 127.0.0.1 that serves whatever bundle the
test puts up, with ETag and Last-Modified, and can answer slowly, wrongly or hugely.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import ipaddress
import json
import os
import signal
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keys.cards import encode_card
from keys.jwk import generate, key_thumbprint, kid_of, public_jwk
from keys.signer import KeySigner
from keys.trust_list import sign_trust_list
from tests.factories import NOW, Authority, make_card
from verifier import cli
from verifier.bundle import Bundle
from verifier.errors import BundleError, VerifierError
from verifier.policy import load_local_policies
from verifier.server import BundleHolder, Station, StationConfig
from verifier.sync import (
    ANCHORS_FILE,
    BUNDLE_FILE,
    DATA_DIR_ENV,
    STATE_FILE,
    StationData,
    SyncError,
    SyncState,
    data_age,
    default_data_dir,
    fetch,
    human_duration,
    report,
    sync,
)

HOUR = timedelta(hours=1)


def publish(
    authority: Authority,
    *,
    at: datetime = NOW,
    version: int = 1,
    status_age: timedelta = 3 * HOUR,
    trust_list_validity: timedelta = timedelta(days=30),
) -> dict[str, Any]:
    """The bundle the issuer publishes at ``at``."""
    trust_list = authority.trust_list(
        version=version, issued_at=at - HOUR, expires_at=at + trust_list_validity
    )
    return authority.bundle_document(
        trust_list=trust_list, status_tokens=[authority.status_token(issued_at=at - status_age)]
    )


@dataclass
class Site:
    """What the local issuer site answers."""

    body: bytes = b""
    modified: datetime = NOW
    delay: float = 0.0
    status: int = 200
    send_length: bool = True
    date: datetime | None = None
    """The issuer's clock, sent as the answers' ``Date`` header (none when ``None``: the
    tests' clock is not the real one)."""
    age: int | None = None
    """An ``Age`` header: a shared cache answering with a copy stored that many seconds."""
    content_type: str = "application/json"
    requests: list[dict[str, str]] = field(default_factory=list)

    @property
    def etag(self) -> str:
        return '"' + hashlib.sha256(self.body).hexdigest()[:16] + '"'

    def put(self, document: dict[str, Any], *, modified: datetime = NOW) -> None:
        self.body = json.dumps(document).encode()
        self.modified = modified


class SiteHandler(BaseHTTPRequestHandler):
    server: SiteServer

    def send_response(self, code: int, message: str | None = None) -> None:
        self.log_request(code)
        self.send_response_only(code, message)
        self.send_header("Server", self.version_string())
        if self.server.site.date is not None:
            self.send_header("Date", format_datetime(self.server.site.date, usegmt=True))
        if self.server.site.age is not None:
            self.send_header("Age", str(self.server.site.age))

    def do_GET(self) -> None:
        site = self.server.site
        site.requests.append(dict(self.headers.items()))
        if site.delay:
            time.sleep(site.delay)
        if site.status != 200:
            self.send_error(site.status)
            return
        if self.headers.get("If-None-Match") == site.etag:
            self.send_response(304)
            self.send_header("ETag", site.etag)
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", site.content_type)
        self.send_header("ETag", site.etag)
        self.send_header("Last-Modified", format_datetime(site.modified, usegmt=True))
        if site.send_length:
            self.send_header("Content-Length", str(len(site.body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(site.body)  # the client may stop reading (the size cap)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class SiteServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, site: Site) -> None:
        self.site = site
        super().__init__(("127.0.0.1", 0), SiteHandler)


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    served = Site()
    server = SiteServer(served)
    thread = threading.Thread(target=server.serve_forever, name="issuer-site", daemon=True)
    thread.start()
    try:
        yield served, f"http://127.0.0.1:{server.server_address[1]}/bundle.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture
def station(tmp_path: Path) -> StationData:
    return StationData(tmp_path / "station")


# --- fetching and installing ------------------------------------------------------------------


def test_first_sync_pins_the_anchor_then_syncs_conditionally(
    fresh_authority: Authority, site: tuple[Site, str], station: StationData
) -> None:
    served, url = site
    served.put(publish(fresh_authority))
    first = sync(station, url, at=NOW)
    assert first.ok
    assert first.installed
    assert first.first_install
    pin = json.loads((station.directory / ANCHORS_FILE).read_text())
    assert pin["kids"] == [fresh_authority.anchor.kid]
    assert station.load(at=NOW) is not None
    assert "If-None-Match" not in served.requests[0]

    again = sync(station, url, at=NOW + HOUR)
    assert again.ok
    assert again.not_modified
    assert not again.installed
    assert served.requests[1]["If-None-Match"] == served.etag
    assert "If-Modified-Since" in served.requests[1]
    state = station.state()
    assert state.last_success == NOW + HOUR
    assert state.installed_at == NOW

    fresh_authority.statuses[7] = 1  # the issuer revokes a card and republishes
    later = publish(fresh_authority, at=NOW + 2 * HOUR, version=2)
    served.put(later, modified=NOW + 2 * HOUR)
    newer = sync(station, url, at=NOW + 2 * HOUR)
    assert newer.ok
    assert newer.installed
    assert not newer.first_install
    held = station.load(at=NOW + 2 * HOUR)
    assert held is not None
    (token,) = held.status_lists.values()
    assert token.statuses[7] == 1


def test_a_rollback_is_refused_and_the_held_bundle_stays(
    fresh_authority: Authority, site: tuple[Site, str], station: StationData
) -> None:
    served, url = site
    old = publish(fresh_authority, version=1, status_age=5 * HOUR)
    served.put(publish(fresh_authority, version=2))
    assert sync(station, url, at=NOW).ok
    before = (station.directory / BUNDLE_FILE).read_bytes()
    served.put(old)
    refused = sync(station, url, at=NOW + HOUR)
    assert not refused.ok
    assert refused.error is not None
    assert "older than the held version" in refused.error
    assert (station.directory / BUNDLE_FILE).read_bytes() == before
    assert station.state().last_error == refused.error
    assert refused.bundle is not None
    assert refused.bundle.trust_list.version == 2


def test_a_status_list_rollback_is_refused(
    fresh_authority: Authority, site: tuple[Site, str], station: StationData
) -> None:
    served, url = site
    served.put(publish(fresh_authority, status_age=HOUR))
    assert sync(station, url, at=NOW).ok
    served.put(publish(fresh_authority, status_age=10 * HOUR))
    refused = sync(station, url, at=NOW + HOUR)
    assert refused.error is not None
    assert "rollback" in refused.error


def test_a_different_status_list_of_the_same_second_is_refused(
    fresh_authority: Authority, site: tuple[Site, str], station: StationData
) -> None:
    """The held list revokes card 7; a list signed in the same second without the revocation
    is refused and the station keeps the revocation."""
    served, url = site
    before_revocation = publish(fresh_authority, status_age=HOUR)
    fresh_authority.statuses[7] = 1
    served.put(publish(fresh_authority, status_age=HOUR))
    assert sync(station, url, at=NOW).ok
    before = (station.directory / BUNDLE_FILE).read_bytes()
    served.put(before_revocation)
    refused = sync(station, url, at=NOW + HOUR)
    assert refused.error is not None
    assert "claims the held issue time" in refused.error
    assert (station.directory / BUNDLE_FILE).read_bytes() == before
    held = station.load(at=NOW + HOUR)
    assert held is not None
    (token,) = held.status_lists.values()
    assert token.statuses[7] == 1


# --- the counter's clock against the issuer's ---------------------------------------------

MINUTE = timedelta(minutes=1)
BEHIND_5 = "this counter's clock is 5 min behind the issuer's: set the date and time"


def test_a_counter_clock_behind_the_issuer_is_recorded_and_said(
    fresh_authority: Authority, site: tuple[Site, str], tmp_path: Path
) -> None:
    """The issuer signs its status list at 09:29 and answers at 09:30 (its Date header); the
    counter's clock says 09:25. Every card would be STATUS_UNKNOWN there ("dated after this
    counter's time"): the bundle is installed (it is within the largest leeway) and the
    offset is recorded, shown by the report, and cleared once an answer finds it right."""
    served, url = site
    served.put(publish(fresh_authority, status_age=MINUTE))
    served.date = NOW
    station = StationData(tmp_path / "behind")
    behind = sync(station, url, at=NOW - 5 * MINUTE)
    assert behind.ok
    assert behind.installed
    assert behind.clock_warning == BEHIND_5
    state = json.loads((station.directory / STATE_FILE).read_text())
    assert 300 <= state["clock_offset_seconds"] <= 302
    assert state["clock_warning"] == BEHIND_5
    held = station.load(at=NOW - 5 * MINUTE)
    shown = report(held, station.state(), at=NOW - 5 * MINUTE, policy=None)
    assert f"clock:        {BEHIND_5}" in shown
    # The clock set right: the next answer (304, unchanged bundle) clears the warning.
    served.date = NOW + HOUR
    again = sync(station, url, at=NOW + HOUR)
    assert again.not_modified
    assert again.clock_warning is None
    assert station.state().clock_offset_seconds is None
    assert "clock:" not in report(held, station.state(), at=NOW + HOUR, policy=None)
    # A 304 says it too (here the counter's clock is an hour behind again).
    served.date = NOW + 2 * HOUR
    assert sync(station, url, at=NOW + HOUR).clock_warning == (
        "this counter's clock is 1 h behind the issuer's: set the date and time"
    )

    # Without a Date header (a USB stick, a server sending none) the signed dates tell: the
    # list signed at 09:29 shows the counter at least 4 minutes behind.
    usb = tmp_path / "usb"
    usb.mkdir()
    (usb / "bundle.json").write_bytes(served.body)
    from_file = sync(StationData(tmp_path / "usb-station"), str(usb), at=NOW - 5 * MINUTE)
    assert from_file.installed
    assert from_file.clock_warning == (
        "this counter's clock is 4 min behind the issuer's: set the date and time"
    )
    # Within the leeway, nothing is said.
    served.date = NOW
    close = sync(StationData(tmp_path / "close"), url, at=NOW - 50 * timedelta(seconds=1))
    assert close.installed
    assert close.clock_warning is None


def test_a_counter_clock_ahead_of_the_issuers_date_is_said(
    fresh_authority: Authority, site: tuple[Site, str], tmp_path: Path
) -> None:
    """Ahead, the data ages too fast (cards turn STATUS_UNKNOWN before their time); only the
    Date header can show it (a signed date shows when a document was made, not how late)."""
    served, url = site
    served.put(publish(fresh_authority))
    served.date = NOW
    ahead = sync(StationData(tmp_path / "ahead"), url, at=NOW + 10 * MINUTE)
    assert ahead.installed
    assert ahead.clock_warning == (
        "this counter's clock is 10 min ahead of the issuer's: set the date and time"
    )
    assert sync(StationData(tmp_path / "near"), url, at=NOW + 4 * MINUTE).clock_warning is None


def test_a_bundle_dated_beyond_the_largest_leeway_is_refused_and_never_held(
    fresh_authority: Authority, site: tuple[Site, str], station: StationData, tmp_path: Path
) -> None:
    """A list dated more than 10 minutes (the largest leeway) after the counter's clock can
    serve no verifier, and once held it would block every later list dated before it (the
    rollback rule) until its date: refused, in one line naming the clock, the held bundle
    untouched. Within that bound it is installed, with the warning."""
    served, url = site
    served.put(publish(fresh_authority, at=NOW - 2 * HOUR))
    assert sync(station, url, at=NOW - 2 * HOUR).ok
    before = (station.directory / BUNDLE_FILE).read_bytes()
    fresh_authority.statuses[7] = 1
    served.put(publish(fresh_authority, version=2, status_age=MINUTE))  # signed at 09:29
    served.date = NOW
    refused = sync(station, url, at=NOW - 12 * MINUTE)  # the counter says 09:18
    assert not refused.ok
    assert refused.error is not None
    assert refused.error.startswith("the bundle's status list ")
    assert "11 min after this counter's clock (2026-11-22 09:18:00 UTC)" in refused.error
    assert "set the counter's date and time; nothing was installed" in refused.error
    assert (station.directory / BUNDLE_FILE).read_bytes() == before
    state = station.state()
    assert state.last_error == refused.error
    assert state.clock_offset_seconds is not None
    assert 720 <= state.clock_offset_seconds <= 722
    assert refused.clock_warning == (
        "this counter's clock is 12 min behind the issuer's: set the date and time"
    )
    # 9 minutes after the counter's clock: installed, and said.
    within = sync(station, url, at=NOW - 10 * MINUTE)
    assert within.installed
    assert within.clock_warning is not None
    assert station.state().last_error is None
    # A first install is refused the same way: nothing is pinned.
    first = StationData(tmp_path / "first")
    refused_first = sync(first, url, at=NOW - 12 * MINUTE)
    assert refused_first.error is not None
    assert "after this counter's clock" in refused_first.error
    assert not (first.directory / ANCHORS_FILE).exists()
    assert not (first.directory / BUNDLE_FILE).exists()
    # Any signed document counts, the trust list too.
    # (trust list signed at 10:30, status list at 09:30)
    served.put(publish(fresh_authority, at=NOW + 2 * HOUR, version=3, status_age=2 * HOUR))
    future_trust_list = sync(station, url, at=NOW - 10 * MINUTE)
    assert future_trust_list.error is not None
    assert future_trust_list.error.startswith("the bundle's trust list is dated")


def test_a_document_dated_ahead_of_a_server_that_agrees_with_the_counter_blames_the_issuer(
    fresh_authority: Authority, site: tuple[Site, str], station: StationData
) -> None:
    """The server's Date agrees with this counter's clock, but a status list is signed 2 h
    ahead: the issuer's clock is wrong. The refusal said "set the counter's date and time"
    and the warning "2 h behind", and a clerk who obeyed put a right clock wrong."""
    served, url = site
    served.put(publish(fresh_authority, at=NOW - HOUR))
    assert sync(station, url, at=NOW - HOUR).ok
    served.put(publish(fresh_authority, version=2, status_age=-2 * HOUR))  # signed at 11:30
    served.date = NOW
    refused = sync(station, url, at=NOW)
    assert refused.error is not None
    assert "the server's clock agrees with this counter's" in refused.error
    assert "tell the issuer" in refused.error
    assert "set the counter's date and time" not in refused.error
    assert refused.clock_warning is None
    assert station.state().clock_offset_seconds is None
    # A shared cache's copy: the origin's Date of ten minutes ago, Age 600: no clock warning.
    served.put(publish(fresh_authority, version=3))
    served.date, served.age = NOW - 10 * MINUTE, 600
    cached = sync(station, url, at=NOW)
    assert cached.installed
    assert cached.clock_warning is None


def test_a_bundle_of_another_authority_is_refused_after_pinning(
    fresh_authority: Authority, site: tuple[Site, str], station: StationData
) -> None:
    served, url = site
    served.put(publish(fresh_authority))
    assert sync(station, url, at=NOW).ok
    served.put(publish(Authority()))
    refused = sync(station, url, at=NOW + HOUR)
    assert refused.error is not None
    assert "unknown key" in refused.error
    held = station.load(at=NOW)
    assert held is not None
    assert kid_of(held.anchors[0]) == fresh_authority.anchor.kid


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html>login page</html>", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"format": "something else"}', "not an fmcard bundle"),
        (b'{"format": "fmcard-bundle/1", "anchors": [], "trust_list": 7}', "must be a string"),
    ],
)
def test_garbage_is_refused_and_nothing_is_pinned(
    site: tuple[Site, str], station: StationData, body: bytes, message: str
) -> None:
    served, url = site
    served.body = body
    outcome = sync(station, url, at=NOW)
    assert outcome.error is not None
    assert message in outcome.error
    assert outcome.bundle is None
    assert not (station.directory / ANCHORS_FILE).exists()
    assert not (station.directory / BUNDLE_FILE).exists()


def test_the_anchor_thumbprint_is_checked_on_first_install(
    fresh_authority: Authority, site: tuple[Site, str], station: StationData
) -> None:
    served, url = site
    served.put(publish(fresh_authority))
    full = key_thumbprint(fresh_authority.anchor.public_key)
    other = key_thumbprint(generate())
    wrong = sync(station, url, at=NOW, anchor_thumbprint=other)
    assert wrong.error is not None
    assert f"not the expected {other!r}" in wrong.error
    assert station.pinned_anchors() is None
    # The 48-bit kid (or any prefix of the thumbprint) is not a pin: it can be ground.
    for short in (fresh_authority.anchor.kid, full[:42]):
        refused = sync(station, url, at=NOW, anchor_thumbprint=short)
        assert refused.error is not None
        assert "not a full RFC 7638 SHA-256 thumbprint" in refused.error
        assert station.pinned_anchors() is None
    right = sync(station, url, at=NOW, anchor_thumbprint=full)
    assert right.ok
    assert right.first_install
    pin = json.loads((station.directory / ANCHORS_FILE).read_text())
    assert pin["thumbprints"] == [full]


def _forged_beside_the_genuine_anchor(genuine: Authority) -> tuple[dict[str, Any], str]:
    """A bundle that lists the genuine anchor next to the forger's own, with a trust list
    the forger signed (naming the forger's issuing key), and a card the forger signed."""
    forger = Authority()
    document = forger.bundle_document()
    document["anchors"] = [
        public_jwk(forger.anchor.public_key),
        public_jwk(genuine.anchor.public_key),
    ]
    return document, encode_card(make_card(), forger.issuing)


def test_a_pinned_thumbprint_is_the_anchor_that_must_sign(
    fresh_authority: Authority,
    site: tuple[Site, str],
    station: StationData,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    served, url = site
    document, forged_card = _forged_beside_the_genuine_anchor(fresh_authority)
    genuine = key_thumbprint(fresh_authority.anchor.public_key)
    served.put(document)
    refused = sync(station, url, at=NOW, anchor_thumbprint=genuine)
    assert refused.error is not None
    assert station.pinned_anchors() is None
    with pytest.raises(BundleError):
        Bundle.from_json(document, at=NOW, anchor_thumbprint=genuine)
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(BundleError):
        BundleHolder.from_file(path, at=NOW, anchor_thumbprint=genuine)
    capsys.readouterr()
    status = cli.main(
        ["--bundle", str(path), "--anchor-thumbprint", genuine, "--at", NOW.isoformat(),
         forged_card]
    )  # fmt: skip
    assert status == 2
    assert "VALID" not in capsys.readouterr().out
    # The genuine bundle with the same pin installs and pins that anchor alone.
    served.put(publish(fresh_authority))
    right = sync(station, url, at=NOW, anchor_thumbprint=genuine)
    assert right.ok
    assert [key_thumbprint(k) for k in station.pinned_anchors() or ()] == [genuine]


def test_a_later_sync_with_another_thumbprint_is_refused(
    fresh_authority: Authority, site: tuple[Site, str], station: StationData
) -> None:
    served, url = site
    served.put(publish(fresh_authority))
    assert sync(station, url, at=NOW).ok
    other = key_thumbprint(generate())
    refused = sync(station, url, at=NOW, anchor_thumbprint=other)
    assert refused.error is not None
    assert "not the anchor this station holds" in refused.error
    genuine = key_thumbprint(fresh_authority.anchor.public_key)
    assert sync(station, url, at=NOW, anchor_thumbprint=genuine).ok


def test_an_expired_trust_list_is_not_pinned(
    fresh_authority: Authority, site: tuple[Site, str], station: StationData
) -> None:
    served, url = site
    served.put(publish(fresh_authority, at=NOW - timedelta(days=40)))
    outcome = sync(station, url, at=NOW)
    assert outcome.error is not None
    assert "expired" in outcome.error
    assert station.pinned_anchors() is None


def test_a_station_pinned_from_a_trusted_medium_refuses_other_anchors(
    fresh_authority: Authority, station: StationData, tmp_path: Path
) -> None:
    # The pin arrives first (a USB stick from the bureau), the bundle later over the network.
    bundle = Bundle.from_json(publish(fresh_authority), at=NOW)
    station._write_anchors(bundle.anchors)
    stranger = tmp_path / "stranger.json"
    stranger.write_text(json.dumps(publish(Authority())))
    refused = sync(station, str(stranger), at=NOW)
    assert refused.error is not None
    assert "unknown key" in refused.error
    good = tmp_path / "good.json"
    good.write_text(json.dumps(publish(fresh_authority)))
    outcome = sync(station, str(good), at=NOW)
    assert outcome.ok
    assert not outcome.first_install


def test_the_anchor_rotates_through_next_anchors(
    fresh_authority: Authority, station: StationData, tmp_path: Path
) -> None:
    new_anchor = KeySigner(generate())
    announcing = fresh_authority.trust_list(version=1, next_anchors=(new_anchor.public_key,))
    first = tmp_path / "v1.json"
    first.write_text(json.dumps(fresh_authority.bundle_document(trust_list=announcing)))
    assert sync(station, str(first), at=NOW).ok
    rotated = fresh_authority.bundle_document()
    rotated["trust_list"] = sign_trust_list(fresh_authority.trust_list(version=2), new_anchor)
    second = tmp_path / "v2.json"
    second.write_text(json.dumps(rotated))
    outcome = sync(station, str(second), at=NOW + HOUR)
    assert outcome.ok, outcome.error
    assert outcome.notes == (f"trust anchor rotated to {key_thumbprint(new_anchor.public_key)}",)
    assert json.loads((station.directory / ANCHORS_FILE).read_text())["kids"] == [new_anchor.kid]
    held = station.load(at=NOW + HOUR)
    assert held is not None
    assert held.trust_list.version == 2


def test_http_errors_timeouts_and_size_caps(
    fresh_authority: Authority, site: tuple[Site, str], station: StationData
) -> None:
    served, url = site
    served.put(publish(fresh_authority))
    assert "larger than 100 bytes" in str(sync(station, url, at=NOW, max_bytes=100).error)
    served.send_length = False  # no Content-Length: the cap is enforced while reading
    assert "larger than 100 bytes" in str(sync(station, url, at=NOW, max_bytes=100).error)
    served.status = 503
    assert "HTTP 503" in str(sync(station, url, at=NOW).error)
    served.status, served.delay = 200, 1.5
    started = time.monotonic()
    slow = sync(station, url, at=NOW, timeout=0.3)
    assert slow.error is not None
    assert "0.3 s" in slow.error
    assert time.monotonic() - started < 1.4
    assert station.pinned_anchors() is None
    closed = "http://127.0.0.1:9/bundle.json"  # discard port: nothing listens
    assert sync(station, closed, at=NOW, timeout=2).error is not None
    # a name that resolves nowhere (.invalid is reserved): one recorded line, in time
    started = time.monotonic()
    unknown = sync(station, "http://fmcard-bundle.invalid/bundle.json", at=NOW, timeout=2)
    assert time.monotonic() - started < 2 + MARGIN
    assert unknown.error is not None
    assert "\n" not in unknown.error
    assert station.state().last_error == unknown.error
    with pytest.raises(SyncError, match="only http"):
        fetch("ftp://example.invalid/bundle.json")


def test_a_file_or_a_usb_stick_is_a_source(
    fresh_authority: Authority, station: StationData, tmp_path: Path
) -> None:
    stick = tmp_path / "usb"
    stick.mkdir()
    empty = sync(station, str(stick), at=NOW)
    assert empty.error is not None
    assert "holds no bundle.json" in empty.error
    (stick / "fmcard-bundle.json").write_text(json.dumps(publish(fresh_authority)))
    assert sync(station, str(stick), at=NOW).installed
    big = tmp_path / "big.json"
    big.write_bytes(b" " * 2000)
    assert "larger than 1000 bytes" in str(sync(station, str(big), at=NOW, max_bytes=1000).error)
    assert "cannot read" in str(sync(station, str(tmp_path / "none.json"), at=NOW).error)


def test_a_damaged_held_bundle_stops_the_sync(
    fresh_authority: Authority, station: StationData, tmp_path: Path
) -> None:
    source = tmp_path / "bundle.json"
    source.write_text(json.dumps(publish(fresh_authority)))
    assert sync(station, str(source), at=NOW).ok
    (station.directory / BUNDLE_FILE).write_text("{damaged")
    with pytest.raises(BundleError, match="cannot read bundle"):
        sync(station, str(source), at=NOW)
    (station.directory / ANCHORS_FILE).write_text("[]")
    with pytest.raises(BundleError, match="pinned anchors"):
        station.pinned_anchors()


def test_data_age_and_report(fresh_authority: Authority) -> None:
    bundle = Bundle.from_json(publish(fresh_authority, status_age=20 * HOUR), at=NOW)
    bank = bundle.policy("bk")
    age = data_age(bundle, at=NOW, policy=bank)
    assert age.oldest_status_age == 20 * HOUR
    assert age.getting_old
    assert not age.too_old
    assert data_age(bundle, at=NOW + 5 * HOUR, policy=bank).too_old
    assert not data_age(bundle, at=NOW, policy=bundle.policy("hc")).getting_old
    text = report(bundle, SyncState(last_success=NOW - HOUR), at=NOW, policy=bank)
    assert "status lists: 1, 20 h old" in text
    assert "getting old, sync soon" in text
    assert "last sync:    1 h ago" in text
    assert human_duration(timedelta(days=3)) == "3 d"
    assert "no bundle yet" in report(None, SyncState(), at=NOW, policy=None)


def test_default_data_dir_follows_the_environment(tmp_path: Path) -> None:
    assert default_data_dir({"FMCARD_VERIFY_DATA_DIR": str(tmp_path)}) == tmp_path
    xdg = default_data_dir({"XDG_DATA_HOME": str(tmp_path)})
    assert xdg == tmp_path / "fmcard-verify"


# --- the command line, at the real time ------------------------------------------------------


def test_sync_command(
    fresh_authority: Authority,
    site: tuple[Site, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    now = datetime.now(UTC)
    served, url = site
    served.put(publish(fresh_authority, at=now))
    data = ["--data-dir", str(tmp_path / "station")]
    assert cli.main(["sync", *data]) == 2
    assert "no source" in capsys.readouterr().err
    assert cli.main(["sync", *data, "--from", url, "--counter", "bank"]) == 0
    out = capsys.readouterr().out
    assert f"pinned trust anchor {key_thumbprint(fresh_authority.anchor.public_key)}" in out
    assert "status lists: 1, 3 h old" in out
    assert "policy bk" in out
    assert cli.main(["sync", *data, "--quiet"]) == 0  # the same source as last time
    assert capsys.readouterr().out == ""
    assert cli.main(["sync", *data, "--json"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["not_modified"]
    assert outcome["anchors"] == [fresh_authority.anchor.kid]
    assert outcome["anchor_thumbprints"] == [key_thumbprint(fresh_authority.anchor.public_key)]
    served.put(publish(Authority(), at=now))
    assert cli.main(["sync", *data]) == 1
    assert "refused, the held bundle stays" in capsys.readouterr().err
    assert cli.main(["sync", *data, "--status", "--counter", "hospital"]) == 0
    status = capsys.readouterr().out
    assert "trust list:   version 1" in status
    assert "last error:" in status
    state = json.loads((tmp_path / "station" / STATE_FILE).read_text())
    assert state["source"] == url
    assert state["etag"]


def dash_anchor() -> KeySigner:
    """An anchor whose thumbprint (and so kid) starts with '-', as one in 64 does."""
    while True:
        signer = KeySigner(generate())
        if key_thumbprint(signer.public_key).startswith("-"):
            return signer


@pytest.mark.parametrize("joined", [True, False], ids=["option=value", "option value"])
def test_sync_pins_a_thumbprint_that_starts_with_a_dash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], joined: bool
) -> None:
    now = datetime.now(UTC)
    authority = Authority(anchor=dash_anchor())
    thumb = key_thumbprint(authority.anchor.public_key)
    source = tmp_path / "bundle.json"
    source.write_text(json.dumps(publish(authority, at=now)))
    data = ["--data-dir", str(tmp_path / "station"), "--from", str(source)]
    pin = [f"--anchor-thumbprint={thumb}"] if joined else ["--anchor-thumbprint", thumb]
    assert cli.main(["sync", *data, *pin]) == 0, capsys.readouterr().err
    assert f"pinned trust anchor {thumb}" in capsys.readouterr().out
    # Abbreviated as argparse allows, and on the check command too.
    token = encode_card(make_card(issued_at=now, valid_from=now), authority.issuing)
    bundle = ["--bundle", str(source), "--at", now.isoformat()]
    assert cli.main([*bundle, "--anchor-thumb", thumb, token]) == 0, capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["sync", "--from", "x", "--anchor-kid", "-sAL5Wlo"],
        ["sync", "--from", "x", "--anchor-kid=kPrK_qmx"],
        ["serve", "--bundle", "x", "--anchor-kid", "-sAL5Wlo"],
        ["--bundle", "x", "--anchor-kid", "-sAL5Wlo", "FM1:AAA"],
    ],
)
def test_anchor_kid_is_refused_with_one_line_pointing_at_the_thumbprint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert cli.main([*argv, "--data-dir", str(tmp_path)] if argv[0] != "--bundle" else argv) == 2
    err = capsys.readouterr().err
    assert "--anchor-thumbprint" in err
    assert "expected one argument" not in err
    assert err.count("\n") == 1
    assert not (tmp_path / ANCHORS_FILE).exists()


def test_a_short_or_wrong_thumbprint_is_refused_by_the_check_command(
    fresh_authority: Authority, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "bundle.json"
    source.write_text(json.dumps(publish(fresh_authority)))
    bundle = ["--bundle", str(source), "--at", NOW.isoformat()]
    token = encode_card(make_card(), fresh_authority.issuing)
    right = key_thumbprint(fresh_authority.anchor.public_key)
    assert cli.main([*bundle, "--anchor-thumbprint", right, token]) == 0
    for wrong in (fresh_authority.anchor.kid, key_thumbprint(generate())):
        assert cli.main([*bundle, "--anchor-thumbprint", wrong, token]) == 2
        assert "anchor" in capsys.readouterr().err


def test_a_running_station_picks_up_a_sync(
    fresh_authority: Authority, station: StationData, tmp_path: Path
) -> None:
    source = tmp_path / "bundle.json"
    source.write_text(json.dumps(publish(fresh_authority)))
    assert sync(station, str(source), at=NOW).ok
    holder = BundleHolder.from_data_dir(station, at=NOW)
    assert holder.current(NOW).trust_list.version == 1
    source.write_text(json.dumps(publish(fresh_authority, version=2)))
    time.sleep(0.01)  # a different modification time
    assert sync(station, str(source), at=NOW).ok
    assert holder.current(NOW).trust_list.version == 2
    assert holder.reload_error is None
    (station.directory / BUNDLE_FILE).write_text("{broken")
    assert holder.current(NOW).trust_list.version == 2
    error = getattr(holder, "reload_error")  # noqa: B009 - mypy narrowed it to None above
    assert isinstance(error, str)
    assert "held one stays" in error


# --- a hostile or broken site: the timeout bounds the whole transfer -----------------------------


class BadSite(socketserver.ThreadingTCPServer):
    """A raw TCP "issuer site" on 127.0.0.1 that answers in one of several broken ways."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.stop = threading.Event()
        super().__init__(("127.0.0.1", 0), BadSiteHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/bundle.json"


class BadSiteHandler(socketserver.BaseRequestHandler):
    server: BadSite
    HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"

    def handle(self) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            received += chunk
        with contextlib.suppress(OSError):
            getattr(self, "_" + self.server.mode.replace("-", "_"))()

    def _drip(self, data: bytes) -> None:
        """Four bytes a second, until the client gives up or the test ends."""
        for start in range(0, len(data), 4):
            self.request.sendall(data[start : start + 4])
            if self.server.stop.wait(1.0):
                return

    def _drip_body(self) -> None:
        self.request.sendall(self.HEAD + b"Content-Length: 4000\r\n\r\n")
        self._drip(b'{"a": "' + b"x" * 3990 + b'"}')

    def _drip_headers(self) -> None:
        self._drip(self.HEAD + b"X-Slow: " + b"y" * 4000 + b"\r\n\r\n{}")

    def _broken_chunked(self) -> None:
        self.request.sendall(
            self.HEAD + b'Transfer-Encoding: chunked\r\n\r\n10\r\n{"anchors": [1,\r\nzz\r\n'
        )

    def _close_early(self) -> None:
        self.request.sendall(self.HEAD + b'Content-Length: 5000\r\n\r\n{"anchors": [')

    def _garbage_status(self) -> None:
        self.request.sendall(b"\x16\x03\x01 not http at all\r\n\r\n")

    def _garbage_body(self) -> None:
        body = bytes(range(256)) * 4
        self.request.sendall(self.HEAD + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    def _hang_up(self) -> None:
        self.request.shutdown(socket.SHUT_RDWR)

    def _silent(self) -> None:
        """Accepts the connection, reads the request, never says a word."""
        self.server.stop.wait(30)

    def _redirect_loop(self) -> None:
        url = self.server.url
        self.request.sendall(
            f"HTTP/1.1 302 Found\r\nLocation: {url}\r\nContent-Length: 0\r\n\r\n".encode()
        )

    def _redirect_ftp(self) -> None:
        # urllib follows a redirect to ftp://, outside the deadline's sockets.
        self.request.sendall(
            b"HTTP/1.1 302 Found\r\nLocation: ftp://127.0.0.1:9/bundle.json\r\n"
            b"Content-Length: 0\r\n\r\n"
        )

    def _huge_length(self) -> None:
        self.request.sendall(self.HEAD + b"Content-Length: 99999999999999\r\n\r\n{")

    def _gzip_body(self) -> None:
        body = gzip.compress(b"[" + b"0," * 2_000_000 + b"0]")  # 4 MB of JSON in 4 KB
        head = self.HEAD + b"Content-Encoding: gzip\r\n"
        self.request.sendall(head + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)

    def _not_modified(self) -> None:
        # 304 to a request that asked no question (no ETag held for this source).
        self.request.sendall(b"HTTP/1.1 304 Not Modified\r\nContent-Length: 0\r\n\r\n")


@contextlib.contextmanager
def bad_site(mode: str) -> Iterator[BadSite]:
    server = BadSite(mode)
    thread = threading.Thread(target=server.serve_forever, name="bad-site", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stop.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_sync_command_says_a_wrong_clock_in_one_line(
    fresh_authority: Authority,
    site: tuple[Site, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The issuer's clock 4 minutes ahead of this PC's: installed (exit 0), one warning line
    on stderr even with --quiet, and in --status and --json. 20 minutes: refused (exit 1)."""
    now = datetime.now(UTC)
    served, url = site
    served.put(publish(fresh_authority, at=now + 4 * MINUTE, status_age=MINUTE / 2))
    served.date = now + 4 * MINUTE
    data = ["--data-dir", str(tmp_path / "station")]
    assert cli.main(["sync", *data, "--from", url, "--quiet"]) == 0
    said = capsys.readouterr()
    assert said.out == ""
    assert said.err == (
        "fmcard-verify sync: warning: this counter's clock is 4 min behind the issuer's: "
        "set the date and time\n"
    )
    assert cli.main(["sync", *data, "--status"]) == 0
    assert "clock:        this counter's clock is 4 min behind" in capsys.readouterr().out
    assert cli.main(["sync", *data, "--json"]) == 0
    outcome = json.loads(capsys.readouterr().out)
    assert outcome["clock_warning"].startswith("this counter's clock is 4 min behind")
    assert 235 <= outcome["state"]["clock_offset_seconds"] <= 241

    served.put(publish(fresh_authority, at=now + 20 * MINUTE, version=2, status_age=MINUTE))
    served.date = now + 20 * MINUTE
    assert cli.main(["sync", *data]) == 1
    err = capsys.readouterr().err
    assert "refused, the held bundle stays: the bundle's status list" in err
    assert "after this counter's clock" in err
    assert "warning: this counter's clock is 20 min behind the issuer's" in err


def run_sync(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "verifier.cli", "sync", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)


SYNC_TIMEOUT = 2.0
MARGIN = 4.0  # interpreter start and a shared CI machine


@pytest.mark.parametrize(
    ("mode", "expected"),
    [
        ("drip-body", f"no complete answer within {SYNC_TIMEOUT:g} s"),
        ("drip-headers", f"no complete answer within {SYNC_TIMEOUT:g} s"),
        ("broken-chunked", "closed before the whole bundle arrived"),
        ("close-early", "closed before the whole bundle arrived"),
        ("garbage-status", "not a valid HTTP answer"),
        ("garbage-body", "the bundle is not JSON"),
        ("hang-up", "not a valid HTTP answer"),
        ("silent", f"no complete answer within {SYNC_TIMEOUT:g} s"),
        ("redirect-loop", "redirects in a loop"),
        ("redirect-ftp", "redirected to a source that is not http:// or https://"),
        ("huge-length", "the bundle is larger than"),
        ("gzip-body", "compressed (Content-Encoding: gzip)"),
        ("not-modified", "answered 'not modified' to a request that asked for the bundle"),
    ],
)
def test_a_broken_site_fails_in_time_in_one_line_and_is_recorded(
    fresh_authority: Authority, tmp_path: Path, mode: str, expected: str
) -> None:
    now = datetime.now(UTC)
    source = tmp_path / "usb" / "bundle.json"
    source.parent.mkdir()
    source.write_text(json.dumps(publish(fresh_authority, at=now)))
    data = StationData(tmp_path / "station")
    directory = ["--data-dir", str(data.directory)]
    assert run_sync("--from", str(source), *directory).returncode == 0  # a held bundle
    with bad_site(mode) as site:
        started = time.monotonic()
        failed = run_sync("--from", site.url, "--timeout", f"{SYNC_TIMEOUT:g}", *directory)
        elapsed = time.monotonic() - started
    assert elapsed < SYNC_TIMEOUT + MARGIN, f"{mode}: the sync ran {elapsed:.1f} s"
    assert failed.returncode == 1, failed
    assert "Traceback" not in failed.stderr
    assert failed.stderr.count("\n") == 1, failed.stderr  # one line, and only one
    assert expected in failed.stderr
    assert "held bundle stays" in failed.stderr
    state = data.state()
    assert state.last_error is not None
    assert expected in state.last_error
    assert "\n" not in state.last_error
    assert state.source == str(source)  # a failed source does not replace the good one
    status = run_sync("--status", *directory)
    assert f"last error:   {state.last_error}" in status.stdout
    holder = BundleHolder.from_data_dir(data, at=now)
    shown = Station(holder, StationConfig("hc"), data=data).status_json()
    assert shown["last_sync_error"] == state.last_error
    with (data.directory / ".lock").open("a+b") as lock:  # released
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_dripping_sync_does_not_hold_the_next_one_back(
    fresh_authority: Authority, tmp_path: Path
) -> None:
    """A timer's sync stuck on a slow site made the next sync wait behind its lock."""
    source = tmp_path / "bundle.json"
    source.write_text(json.dumps(publish(fresh_authority, at=datetime.now(UTC))))
    directory = ["--data-dir", str(tmp_path / "station")]
    command = [sys.executable, "-m", "verifier.cli", "sync", *directory, "--timeout", "2"]
    with bad_site("drip-body") as site:
        started = time.monotonic()
        slow = subprocess.Popen(
            [*command, "--from", site.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            time.sleep(1.0)  # the first sync holds the lock now
            assert run_sync("--from", str(source), *directory).returncode == 0
            assert time.monotonic() - started < SYNC_TIMEOUT + 1.0 + MARGIN
            assert slow.wait(timeout=30) == 1
        finally:
            slow.kill()
            slow.communicate()


def _held_station(authority: Authority, tmp_path: Path) -> tuple[StationData, list[str], bytes]:
    """A station holding a bundle synced from a file: its data, its --data-dir arguments and
    its bundle file's bytes."""
    source = tmp_path / "usb" / "bundle.json"
    source.parent.mkdir()
    source.write_text(json.dumps(publish(authority, at=datetime.now(UTC))))
    data = StationData(tmp_path / "station")
    directory = ["--data-dir", str(data.directory)]
    assert run_sync("--from", str(source), *directory).returncode == 0
    return data, directory, data.bundle_path.read_bytes()


def test_ctrl_c_mid_transfer_is_one_line_and_leaves_the_held_bundle(
    fresh_authority: Authority, tmp_path: Path
) -> None:
    """Ctrl+C while the body drips in: exit 130 with one line (it was a KeyboardInterrupt
    traceback), the held bundle byte for byte, the interruption recorded, the lock free."""
    data, directory, held = _held_station(fresh_authority, tmp_path)
    command = [sys.executable, "-m", "verifier.cli", "sync", *directory, "--timeout", "20"]
    with bad_site("drip-body") as site:
        slow = subprocess.Popen(
            [*command, "--from", site.url], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        try:
            time.sleep(1.5)  # the headers are in, the body drips
            slow.send_signal(signal.SIGINT)
            _, stderr = slow.communicate(timeout=15)
        finally:
            slow.kill()
    assert slow.returncode == 130, stderr
    assert stderr == "fmcard-verify: interrupted\n"
    assert data.bundle_path.read_bytes() == held
    assert data.state().last_error == "interrupted; the held bundle stays"
    assert run_sync("--status", *directory).returncode == 0
    with (data.directory / ".lock").open("a+b") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_a_killed_sync_leaves_no_lock_and_a_stopped_one_holds_the_next_back_only_so_long(
    fresh_authority: Authority, tmp_path: Path
) -> None:
    """A sync killed mid-transfer leaves nothing to clean up; a sync that holds the lock and
    never finishes (stopped with Ctrl+Z, stuck on a disk) kept every later sync waiting for
    ever: now the next one waits at most its --timeout and says why, in one recorded line."""
    data, directory, held = _held_station(fresh_authority, tmp_path)
    command = [sys.executable, "-m", "verifier.cli", "sync", *directory, "--timeout", "20"]
    with bad_site("drip-body") as site:
        slow = subprocess.Popen([*command, "--from", site.url], stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        slow.kill()
        slow.wait(timeout=10)
    assert data.bundle_path.read_bytes() == held
    started = time.monotonic()
    assert run_sync(*directory, "--timeout", "5").returncode == 0
    assert time.monotonic() - started < MARGIN + 1
    holder = subprocess.Popen(  # holds the lock as a stopped sync does
        [sys.executable, "-c", "import fcntl, sys, time; f = open(sys.argv[1], 'a+b'); "
         "fcntl.flock(f, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)",
         str(data.directory / ".lock")],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "held\n"
        started = time.monotonic()
        waited = run_sync(*directory, "--timeout", f"{SYNC_TIMEOUT:g}")
        assert time.monotonic() - started < SYNC_TIMEOUT + MARGIN
    finally:
        holder.kill()
        holder.communicate(timeout=10)
    assert waited.returncode == 1, waited
    assert waited.stderr.count("\n") == 1, waited.stderr
    assert "another sync has held" in waited.stderr
    assert "another sync has held" in str(data.state().last_error)
    assert data.bundle_path.read_bytes() == held


def test_a_data_directory_that_cannot_be_written_is_one_recorded_line(
    fresh_authority: Authority, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """A full disk (every fsync fails) or a data directory that is not one: exit 1 and one
    line (both were an OSError traceback), the held bundle untouched."""
    source = tmp_path / "bundle.json"
    now = datetime.now(UTC)
    source.write_text(json.dumps(publish(fresh_authority, at=now)))
    station = tmp_path / "station"
    assert cli.main(["sync", "--data-dir", str(station), "--from", str(source)]) == 0
    held = (station / BUNDLE_FILE).read_bytes()
    newer = tmp_path / "newer.json"
    newer.write_text(json.dumps(publish(fresh_authority, at=now + timedelta(minutes=5))))
    capsys.readouterr()

    def full(_fd: int) -> None:
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as patched:
        patched.setattr(os, "fsync", full)
        status = cli.main(["sync", "--data-dir", str(station), "--from", str(newer)])
    err = capsys.readouterr().err
    assert status == 1, err
    assert err.count("\n") == 1, err
    assert "No space left on device" in err
    assert (station / BUNDLE_FILE).read_bytes() == held
    assert not [p for p in station.iterdir() if p.name.startswith(".bundle.json.")]
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    status = cli.main(["sync", "--data-dir", str(not_a_directory), "--from", str(source)])
    err = capsys.readouterr().err
    assert status == 1, err
    assert err.count("\n") == 1, err
    assert "cannot write the data directory" in err


def test_deeply_nested_json_is_refused_at_every_door(
    fresh_authority: Authority, station: StationData, tmp_path: Path
) -> None:
    """8,000 ``[`` made json.loads raise RecursionError, which every ``except ValueError``
    let through as a traceback."""
    deep = "[" * 8000 + "]" * 8000
    source = tmp_path / "deep.json"
    source.write_text(deep)
    outcome = sync(station, str(source), at=NOW)
    assert outcome.error is not None
    assert "nested too deeply" in outcome.error
    assert station.state().last_error == outcome.error
    with pytest.raises(BundleError, match="nested too deeply"):
        Bundle.load(source, at=NOW)
    with pytest.raises(VerifierError, match="nested too deeply"):
        load_local_policies(source)
    nested = tmp_path / "nested.json"
    nested.write_text('{"service": "hc", "x": ' + "[" * 100 + "]" * 100 + "}")
    with pytest.raises(VerifierError, match="deeper than 32"):
        load_local_policies(nested)
    # the station's own files
    good = tmp_path / "bundle.json"
    good.write_text(json.dumps(publish(fresh_authority)))
    assert sync(station, str(good), at=NOW).ok
    holder = BundleHolder.from_data_dir(station, at=NOW)
    (station.directory / BUNDLE_FILE).write_text(deep)
    assert holder.current(NOW).trust_list.version == 1
    assert "nested too deeply" in str(holder.reload_error)
    (station.directory / STATE_FILE).write_text(deep)
    assert station.state() == SyncState()
    (station.directory / ANCHORS_FILE).write_text(deep)
    with pytest.raises(BundleError, match="cannot be read"):
        station.pinned_anchors()


def self_signed(tmp_path: Path) -> ssl.SSLContext:
    """A TLS server context for 127.0.0.1 whose certificate no station trusts."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - HOUR)
        .not_valid_after(now + HOUR)
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context


def test_https_failures_are_one_line_and_bounded(station: StationData, tmp_path: Path) -> None:
    """The TLS connection is the deadline's too: a certificate the station does not trust is
    refused in one line, and a handshake that never completes is cut at the deadline."""
    context = self_signed(tmp_path)
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    stop = threading.Event()
    held: list[socket.socket] = []

    def serve(handshake: bool) -> None:
        connection, _ = listener.accept()
        held.append(connection)
        if handshake:
            with contextlib.suppress(OSError), context.wrap_socket(connection, server_side=True):
                stop.wait(10)
        else:
            stop.wait(10)  # accepts, then says nothing: the client hello goes unanswered

    try:
        for handshake, expected in [(True, "CERTIFICATE_VERIFY_FAILED"), (False, "within 1 s")]:
            thread = threading.Thread(target=serve, args=(handshake,), daemon=True)
            thread.start()
            started = time.monotonic()
            outcome = sync(station, f"https://127.0.0.1:{port}/bundle.json", at=NOW, timeout=1)
            assert time.monotonic() - started < 1 + MARGIN
            assert outcome.error is not None
            assert expected in outcome.error, outcome.error
            assert "\n" not in outcome.error
            assert station.state().last_error == outcome.error
    finally:
        stop.set()
        listener.close()
        for connection in held:
            connection.close()


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "1e9"])
def test_a_timeout_that_bounds_nothing_is_a_usage_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], value: str
) -> None:
    arguments = ["sync", "--data-dir", str(tmp_path), "--from", str(tmp_path / "bundle.json")]
    assert cli.main([*arguments, "--timeout", value]) == 2
    assert "--timeout must be more than 0" in capsys.readouterr().err
    assert not (tmp_path / STATE_FILE).exists()


# --- a newcomer's first steps: the check, a first sync that fails, the status -----------------


def _command_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a counter's shell: no bundle or data directory set, its own
    XDG_DATA_HOME (so the default data directory is inside ``tmp_path``)."""
    env = {k: v for k, v in os.environ.items() if k not in ("FMCARD_BUNDLE", DATA_DIR_ENV)}
    env["XDG_DATA_HOME"] = str(tmp_path / "xdg")
    env.update(extra)
    return env


def run_verify(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "verifier.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=60, check=False, env=env)


def test_a_check_uses_the_bundle_sync_keeps(fresh_authority: Authority, tmp_path: Path) -> None:
    """After ``sync``, a plain check said "no bundle: give --bundle FILE or set
    FMCARD_BUNDLE" although ``serve`` and ``policy`` use the synced bundle; with none synced
    it says where sync keeps it and how to get one."""
    now = datetime.now(UTC)
    source = tmp_path / "bundle.json"
    source.write_text(json.dumps(publish(fresh_authority, at=now)))
    token = encode_card(make_card(issued_at=now, valid_from=now), fresh_authority.issuing)
    check = ["--service", "hc", "--at", now.isoformat(), token]
    env = _command_env(tmp_path)
    default = tmp_path / "xdg" / "fmcard-verify"

    empty = run_verify(*check, env=env)
    assert empty.returncode == 2, empty
    assert empty.stderr.count("\n") == 1, empty.stderr
    assert str(default) in empty.stderr
    assert "fmcard-verify sync --from" in empty.stderr

    thumb = key_thumbprint(fresh_authority.anchor.public_key)
    synced = run_verify("sync", "--from", str(source), "--anchor-thumbprint", thumb, env=env)
    assert synced.returncode == 0, synced
    valid = run_verify(*check, env=env)
    assert valid.returncode == 0, valid
    assert valid.stdout.startswith("VALID")
    assert run_verify("--anchor-thumbprint", thumb, *check, env=env).returncode == 0
    other = key_thumbprint(generate())
    assert run_verify("--anchor-thumbprint", other, *check, env=env).returncode == 2

    # The same option and variable as serve: --data-dir, $FMCARD_VERIFY_DATA_DIR.
    moved = tmp_path / "elsewhere"
    default.rename(moved)
    assert run_verify(*check, env=env).returncode == 2
    assert run_verify("--data-dir", str(moved), *check, env=env).returncode == 0
    assert (
        run_verify(*check, env=_command_env(tmp_path, **{DATA_DIR_ENV: str(moved)})).returncode == 0
    )


def serve_console(site: tuple[Site, str]) -> str:
    """Make the site answer as the issuer's base URL does, the console's HTML page at every
    address; return that base URL."""
    served, url = site
    served.body = b"<!doctype html><title>fmcard</title><p>console</p>"
    served.content_type = "text/html; charset=utf-8"
    return url.removesuffix("bundle.json")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("case", ["html", "connection-refused", "kid-as-pin"])
def test_a_failed_first_sync_says_nothing_was_installed(
    fresh_authority: Authority, site: tuple[Site, str], tmp_path: Path, case: str
) -> None:
    """A first sync that failed said "refused, the held bundle stays" (nothing was held) and
    told to run the very command just run."""
    source = tmp_path / "bundle.json"
    source.write_text(json.dumps(publish(fresh_authority, at=datetime.now(UTC))))
    directory = ["--data-dir", str(tmp_path / "station")]
    url = serve_console(site)
    if case == "html":
        failed = run_sync("--from", url, *directory)
    elif case == "connection-refused":
        failed = run_sync("--from", f"http://127.0.0.1:{_closed_port()}/bundle.json", *directory)
    else:
        pin = ["--anchor-thumbprint", fresh_authority.anchor.kid]
        failed = run_sync("--from", str(source), *pin, *directory)
    assert failed.returncode == 1, failed
    assert failed.stderr.count("\n") == 1, failed.stderr
    assert "nothing was installed" in failed.stderr
    assert "held bundle stays" not in failed.stderr
    assert "run 'fmcard-verify sync" not in failed.stdout
    assert failed.stdout.startswith("no bundle yet")
    if case == "html":
        assert "Expecting value" not in failed.stderr
        assert "an HTML page (Content-Type: text/html)" in failed.stderr
        assert f"{url}bundle.json" in failed.stderr
    assert not (tmp_path / "station" / BUNDLE_FILE).exists()


def test_a_web_page_for_a_bundle_names_what_came_and_the_bundles_address(
    fresh_authority: Authority, site: tuple[Site, str], tmp_path: Path
) -> None:
    """``--from http://host:8000/`` (the issuer's base URL, its console) said only "the
    bundle is not JSON: Expecting value: line 1 column 1 (char 0)"; a held bundle stays."""
    data, directory, held = _held_station(fresh_authority, tmp_path)
    url = serve_console(site)
    failed = run_sync("--from", url + "console", *directory)
    assert failed.returncode == 1, failed
    assert "held bundle stays" in failed.stderr
    assert "an HTML page (Content-Type: text/html)" in failed.stderr
    assert f"e.g. {url}bundle.json" in failed.stderr
    assert data.bundle_path.read_bytes() == held


def test_sync_status_without_a_bundle_is_not_success(tmp_path: Path) -> None:
    """``sync --status`` exited 0 with no bundle, while COUNTER.md says 0 means "the station
    holds a good bundle": a monitoring check read a never-synced station as healthy."""
    directory = ["--data-dir", str(tmp_path / "station")]
    plain = run_sync("--status", *directory)
    assert plain.returncode == 1, plain
    assert plain.stdout.startswith("no bundle yet: run 'fmcard-verify sync --from")
    assert run_sync("--status", "--json", *directory).returncode == 1
    manual = (Path(__file__).resolve().parents[2] / "docs" / "COUNTER.md").read_text()
    assert "`sync --status`: 0 the station holds a bundle, 1 it holds none" in manual


def test_a_photo_without_a_qr_says_where_the_qr_is(
    fresh_authority: Authority, tmp_path: Path
) -> None:
    """The card's front (the face, no QR) said only "no QR code found in card.png"."""
    from PIL import Image

    source = tmp_path / "bundle.json"
    source.write_text(json.dumps(publish(fresh_authority)))
    front = tmp_path / "card.png"
    Image.new("RGB", (640, 400), "white").save(front)
    said = run_verify(
        "--bundle", str(source), "--at", NOW.isoformat(), "--image", str(front),
        env=_command_env(tmp_path),
    )  # fmt: skip
    assert said.returncode == 2, said
    assert said.stderr.count("\n") == 1, said.stderr
    assert f"no QR code found in {front}" in said.stderr
    assert "back" in said.stderr
    assert "holder's screen" in said.stderr
