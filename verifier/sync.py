"""Keeping a counter's bundle current: ``fmcard-verify sync``.

The station's data directory (``--data-dir``, ``$FMCARD_VERIFY_DATA_DIR``, else
``$XDG_DATA_HOME/fmcard-verify`` or ``~/.local/share/fmcard-verify``) holds::

    anchors.json    the pinned trust anchors (public JWKs): written on the first sync, changed
                    only when the anchor rotates through the held trust list's next_anchors
    bundle.json     the last good bundle, verified against the pin; replaced atomically
    sync.json       where it came from, its ETag and Last-Modified, when the last sync
                    attempt and the last success were, the last error, and how far this
                    counter's clock was off the issuer's at the last answer (when too far)

A sync fetches the bundle (HTTP(S) with a conditional GET, a timeout and a size cap; or a file
or a USB stick's directory), verifies it against the pinned anchors and refuses rollback
(:meth:`Bundle.update`). Whatever goes wrong, the held bundle stays as it was. Nothing about
scanned cards is ever written here.

Each answer is also a look at the issuer's clock: its HTTP ``Date`` and the newest ``iat`` of
the bundle's signed documents. A counter whose clock is behind answers STATUS_UNKNOWN for
every card right after a sync (the status list is dated after its time), and one far ahead
finds every list too old: the offset is recorded and shown, and a bundle dated more than
:data:`MAX_LEEWAY` after the counter's clock is refused rather than held, since once held it
would block every list dated before it (the rollback rule) until its date.
"""

from __future__ import annotations

import contextlib
import email.utils
import http.client
import json
import math
import os
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from keys.errors import KeysError
from keys.jwk import PublicKey, key_thumbprint, kid_of, public_jwk, public_key_from_jwk
from keys.store import write_file
from verifier import _json
from verifier.bundle import Bundle
from verifier.errors import BundleError, VerifierError
from verifier.i18n import pgettext
from verifier.policy import Policy
from verifier.station_text import STATION_TEXT
from verifier.verifier import DEFAULT_LEEWAY, MAX_LEEWAY

DATA_DIR_ENV = "FMCARD_VERIFY_DATA_DIR"
BUNDLE_FILE = "bundle.json"
ANCHORS_FILE = "anchors.json"
STATE_FILE = "sync.json"
USB_NAMES = ("bundle.json", "fmcard-bundle.json")
"""File names looked for when the source is a directory (a USB stick's mount point)."""
DEFAULT_TIMEOUT = 30.0
DEFAULT_MAX_BYTES = 32 * 1024 * 1024
USER_AGENT = "fmcard-verify-sync/1"
CLOCK_BEHIND_LIMIT = DEFAULT_LEEWAY
"""Behind the issuer by more than the verifier's leeway: fresh status lists are refused."""
CLOCK_AHEAD_LIMIT = timedelta(minutes=5)
"""Ahead of the issuer's ``Date`` by more than this: said, since the data ages too fast."""
_CHUNK = 64 * 1024


class SyncError(VerifierError):
    """The source could not be read, or what it gave is not a usable bundle."""


def default_data_dir(environ: dict[str, str] | None = None) -> Path:
    env = dict(os.environ) if environ is None else environ
    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV])
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fmcard-verify"


@dataclass
class SyncState:
    """What ``sync.json`` remembers between runs."""

    source: str | None = None
    etag: str | None = None
    last_modified: str | None = None
    last_attempt: datetime | None = None
    last_success: datetime | None = None
    installed_at: datetime | None = None
    last_error: str | None = None
    clock_offset_seconds: int | None = None
    """The issuer's clock minus this counter's at the last answer, when beyond the limits
    (positive: the counter is behind); ``None`` when it was within them."""

    @property
    def clock_warning(self) -> str | None:
        return clock_warning(self.clock_offset_seconds)

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "etag": self.etag,
            "last_modified": self.last_modified,
            "last_attempt": _iso(self.last_attempt),
            "last_success": _iso(self.last_success),
            "installed_at": _iso(self.installed_at),
            "last_error": self.last_error,
            "clock_offset_seconds": self.clock_offset_seconds,
            "clock_warning": self.clock_warning,
        }

    @classmethod
    def from_json(cls, value: Any) -> SyncState:
        if not isinstance(value, dict):
            return cls()

        def text(name: str) -> str | None:
            item = value.get(name)
            return item if isinstance(item, str) else None

        return cls(
            source=text("source"),
            etag=text("etag"),
            last_modified=text("last_modified"),
            last_attempt=_parse_iso(text("last_attempt")),
            last_success=_parse_iso(text("last_success")),
            installed_at=_parse_iso(text("installed_at")),
            last_error=text("last_error"),
            clock_offset_seconds=_integer(value.get("clock_offset_seconds")),
        )


class StationData:
    """The station's data directory: pinned anchors, last good bundle, sync state."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    @property
    def bundle_path(self) -> Path:
        return self.directory / BUNDLE_FILE

    def pinned_anchors(self) -> tuple[PublicKey, ...] | None:
        """The pinned anchors, or ``None`` before the first sync."""
        path = self.directory / ANCHORS_FILE
        try:
            document = _json.loads(path.read_text(encoding="utf-8"))
            return tuple(public_key_from_jwk(jwk) for jwk in document["anchors"])
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, KeysError) as exc:
            raise BundleError(f"the pinned anchors in {path} cannot be read: {exc}") from None

    def load(self, *, at: datetime) -> Bundle | None:
        """The held bundle, verified against the pin; ``None`` before the first sync."""
        anchors = self.pinned_anchors()
        if anchors is None:
            if self.bundle_path.exists():
                raise BundleError(f"{self.bundle_path} exists but no anchor is pinned")
            return None
        if not self.bundle_path.exists():
            return None
        return Bundle.load(self.bundle_path, at=at, pinned_anchors=anchors)

    def install(self, bundle: Bundle, previous: tuple[PublicKey, ...] | None) -> None:
        """Write ``bundle`` and its anchors, each file atomically. When the anchor rotates,
        the old and new anchors are pinned together until the new bundle is in place, so a
        crash between the two writes leaves a station that still loads its bundle."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        new = bundle.anchors
        if previous is None:
            self._write_anchors(new)
            bundle.save(self.bundle_path)
            return
        old = {key_thumbprint(key) for key in previous}
        rotating = old != {key_thumbprint(key) for key in new}
        if rotating:
            self._write_anchors(previous + tuple(k for k in new if key_thumbprint(k) not in old))
        bundle.save(self.bundle_path)
        if rotating:
            self._write_anchors(new)

    def state(self) -> SyncState:
        try:
            return SyncState.from_json(
                _json.loads((self.directory / STATE_FILE).read_text(encoding="utf-8"))
            )
        except (OSError, ValueError):
            return SyncState()

    def save_state(self, state: SyncState) -> None:
        text = json.dumps(state.to_json(), indent=1) + "\n"
        write_file(self.directory / STATE_FILE, text.encode("utf-8"))

    @contextmanager
    def locked(self, *, wait: float = DEFAULT_TIMEOUT) -> Iterator[None]:
        """One sync at a time (a timer and a clerk's manual sync may overlap), waiting at most
        ``wait`` seconds for the other: a sync stopped with Ctrl+Z or stuck on a hung disk
        kept every later one (a timer's each quarter hour) waiting for ever. A sync that was
        killed holds nothing: the kernel drops its lock with the process."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not a POSIX system: no lock
            yield
            return
        with open(self.directory / ".lock", "a+b") as lock:
            end = time.monotonic() + wait
            while True:
                try:
                    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= end:
                        raise SyncError(
                            f"another sync has held {self.directory} for more than {wait:g} s "
                            "(stopped or stuck?); nothing was changed"
                        ) from None
                    time.sleep(0.05)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def record_error(self, error: str, *, at: datetime) -> None:
        """Keep ``error`` as the last attempt's outcome, if the directory can be written."""
        with contextlib.suppress(OSError):
            state = self.state()
            state.last_attempt, state.last_error = at, error
            self.save_state(state)

    def _write_anchors(self, anchors: tuple[PublicKey, ...]) -> None:
        document = {
            "pinned": "fmcard trust anchors; replace only from a trusted medium",
            "anchors": [public_jwk(key) for key in anchors],
            "kids": [kid_of(key) for key in anchors],
            "thumbprints": [key_thumbprint(key) for key in anchors],
        }
        write_file(self.directory / ANCHORS_FILE, (json.dumps(document, indent=1) + "\n").encode())


@dataclass(frozen=True, slots=True)
class Fetched:
    """What a source gave: a body, or ``not_modified``."""

    body: bytes | None
    etag: str | None = None
    last_modified: str | None = None
    date: datetime | None = None
    """The answer's HTTP ``Date`` (the server's clock), when it sent a readable one."""
    content_type: str | None = None
    """The answer's ``Content-Type``, to say what came when it is not a bundle."""

    @property
    def not_modified(self) -> bool:
        return self.body is None


def fetch(
    source: str,
    *,
    etag: str | None = None,
    last_modified: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> Fetched:
    """Read the bundle at ``source``: an ``http(s)://`` URL (conditional GET when ``etag``
    or ``last_modified`` is given) or a file, or a directory holding ``bundle.json``."""
    if source.startswith(("http://", "https://")):
        return _fetch_url(source, etag, last_modified, timeout, max_bytes)
    if "://" in source:
        raise SyncError(f"source {source!r}: only http://, https:// or a path")
    return Fetched(_read_path(Path(source), max_bytes))


def _fetch_url(
    url: str, etag: str | None, last_modified: str | None, timeout: float, max_bytes: int
) -> Fetched:
    headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked
    deadline = _Deadline(timeout)
    opener = urllib.request.build_opener(
        _HTTPHandler(deadline), _HTTPSHandler(deadline), _RedirectHandler()
    )
    try:
        with deadline, opener.open(request, timeout=timeout) as response:
            encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
            if encoding != "identity":
                # Nothing was asked compressed, and nothing is decompressed: no bomb can go
                # off here, but "not JSON: can't decode byte 0x8b" sent people looking at
                # the bundle, not at the server.
                raise SyncError(
                    f"{url}: the server sent the bundle compressed (Content-Encoding: "
                    f"{encoding[:40]}), which was not asked for"
                )
            length = response.headers.get("Content-Length")
            if length is not None and length.isdigit() and int(length) > max_bytes:
                raise SyncError(f"{url}: the bundle is larger than {max_bytes} bytes")
            chunks: list[bytes] = []
            size = 0
            while chunk := response.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise SyncError(f"{url}: the bundle is larger than {max_bytes} bytes")
                chunks.append(chunk)
            deadline.check()  # a connection cut at the deadline looks like the end of the body
            if length is not None and length.isdigit() and size < int(length):
                # http.client's read(n) takes a short body for the end without a word.
                raise http.client.IncompleteRead(b"", int(length) - size)
            return Fetched(
                b"".join(chunks),
                response.headers.get("ETag"),
                response.headers.get("Last-Modified"),
                _server_time(response.headers),
                response.headers.get("Content-Type"),
            )
    except urllib.error.HTTPError as exc:
        exc.close()
        if exc.code == 304 and not deadline.expired:
            if not (etag or last_modified):
                # Counted as a success, it made a station whose source answers nothing
                # report a fresh sync.
                raise SyncError(
                    f"{url}: answered 'not modified' to a request that asked for the bundle"
                ) from None
            return Fetched(None, etag, last_modified, _server_time(exc.headers))
        raise _transfer_error(url, exc, deadline) from None
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise _transfer_error(url, exc, deadline) from None


def _transfer_error(url: str, exc: Exception, deadline: _Deadline) -> SyncError:
    """One line for what went wrong, the deadline first: once it has passed, whatever the
    cut connection raised is only a consequence."""
    if deadline.expired or isinstance(exc, TimeoutError):
        return SyncError(f"{url}: no complete answer within {deadline.seconds:g} s")
    if isinstance(exc, urllib.error.HTTPError):
        return SyncError(f"{url}: HTTP {exc.code} {exc.reason}")
    if isinstance(exc, urllib.error.URLError):
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return SyncError(f"{url}: no complete answer within {deadline.seconds:g} s")
        return SyncError(f"{url}: {reason}")
    if isinstance(exc, http.client.IncompleteRead):
        return SyncError(f"{url}: the connection closed before the whole bundle arrived")
    if isinstance(exc, http.client.HTTPException):
        return SyncError(f"{url}: not a valid HTTP answer ({type(exc).__name__})")
    return SyncError(f"{url}: {exc}")


class _Deadline:
    """One time limit for a whole download: name resolution, connecting, the TLS handshake,
    the headers and every byte of the body, across redirects.

    A socket timeout alone bounds each read, not their sum: a server dripping a few bytes a
    second never trips it. So a timer shuts every socket of the download down when the time
    is up, which wakes the blocked read, and connecting gets only the time left.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._end = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def __enter__(self) -> _Deadline:
        self._timer.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._timer.cancel()
        with self._lock:
            self._sockets.clear()

    def remaining(self) -> float:
        left = self._end - time.monotonic()
        if left <= 0 or self.expired:
            self.expired = True
            raise TimeoutError("deadline passed")
        return left

    def check(self) -> None:
        if self.expired:
            raise TimeoutError("deadline passed")

    def watch(self, sock: socket.socket) -> None:
        with self._lock:
            if self.expired:
                _shut(sock)
            else:
                self._sockets.append(sock)

    def resolve(self, host: str, port: int) -> list[Any]:
        """``getaddrinfo`` within the time left (the resolver has its own, longer, timeouts):
        a resolver still busy at the deadline is left to finish in its daemon thread."""
        found: list[Any] = []
        failed: list[OSError] = []

        def run() -> None:
            try:
                found.extend(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM))
            except OSError as exc:
                failed.append(exc)

        worker = threading.Thread(target=run, name="fmcard-sync-resolve", daemon=True)
        worker.start()
        worker.join(self.remaining())
        if worker.is_alive():
            self.expired = True
            raise TimeoutError("name resolution did not finish in time")
        if failed:
            raise failed[0]
        return found

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._sockets:
                _shut(sock)


def _shut(sock: socket.socket) -> None:
    # socket.socket.shutdown, not SSLSocket.shutdown: only wake the reader, leave TLS state.
    with contextlib.suppress(OSError):
        socket.socket.shutdown(sock, socket.SHUT_RDWR)


class _DeadlineConnection(http.client.HTTPConnection):
    """Connects within the time left and hands its sockets to the deadline."""

    def __init__(self, *args: Any, deadline: _Deadline, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._deadline = deadline
        self._create_connection = self._connect_by_deadline

    def _connect_by_deadline(
        self,
        address: tuple[str, int],
        timeout: float | None = None,
        source_address: tuple[str, int] | None = None,
    ) -> socket.socket:
        error: OSError = OSError(f"{address[0]}: no address")
        for family, kind, proto, _, target in self._deadline.resolve(*address):
            sock = socket.socket(family, kind, proto)
            self._deadline.watch(sock)
            try:
                sock.settimeout(min(self._deadline.remaining(), timeout or math.inf))
                if source_address:
                    sock.bind(source_address)
                sock.connect(target)
                return sock
            except OSError as exc:
                sock.close()
                error = exc
        raise error


class _DeadlineTLSConnection(_DeadlineConnection, http.client.HTTPSConnection):
    def connect(self) -> None:
        http.client.HTTPConnection.connect(self)
        # The handshake runs once the TLS socket is watched, so the deadline can cut it too.
        tls = self._context.wrap_socket(  # type: ignore[attr-defined]
            self.sock,
            server_hostname=self._tunnel_host or self.host,  # type: ignore[attr-defined]
            do_handshake_on_connect=False,
        )
        self.sock = tls
        self._deadline.watch(tls)
        tls.settimeout(self._deadline.remaining())
        tls.do_handshake()


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects to http:// and https:// only, whose connections the deadline holds
    (urllib's own would follow ``ftp://``, outside it), and says a loop in a few words."""

    inf_msg = "redirects in a loop (or more than 10 of them); the last said: "

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise urllib.error.URLError(
                f"redirected to a source that is not http:// or https:// ({scheme or '?'}:)"
            )
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class _HTTPHandler(urllib.request.HTTPHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        # (typeshed knows only the standard connection signature, not the extra keyword)
        return self.do_open(_DeadlineConnection, req, deadline=self._deadline)  # type: ignore[arg-type]


class _HTTPSHandler(urllib.request.HTTPSHandler):
    def __init__(self, deadline: _Deadline) -> None:
        super().__init__()
        self._deadline = deadline

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(_DeadlineTLSConnection, req, deadline=self._deadline)  # type: ignore[arg-type]


def _read_path(path: Path, max_bytes: int) -> bytes:
    if path.is_dir():
        found = next((path / name for name in USB_NAMES if (path / name).is_file()), None)
        if found is None:
            raise SyncError(f"{path} holds no {' or '.join(USB_NAMES)}")
        path = found
    try:
        with path.open("rb") as file:
            data = file.read(max_bytes + 1)
    except OSError as exc:
        raise SyncError(f"cannot read {path}: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise SyncError(f"{path} is larger than {max_bytes} bytes")
    return data


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """What one sync did; ``bundle`` is what the station holds afterwards."""

    bundle: Bundle | None
    installed: bool = False
    not_modified: bool = False
    first_install: bool = False
    error: str | None = None
    notes: tuple[str, ...] = field(default=())
    clock_warning: str | None = None
    """This counter's clock is off the issuer's (see :func:`clock_warning`)."""

    @property
    def ok(self) -> bool:
        return self.error is None


def sync(
    data: StationData,
    source: str,
    *,
    at: datetime,
    anchor_thumbprint: str | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> SyncOutcome:
    """Fetch, verify and install the bundle at ``source``; keep the held one on any error.

    Raises :class:`BundleError` only when the held bundle itself cannot be loaded (then
    nothing is changed and a person must look: see ``docs/COUNTER.md``).
    """
    try:
        with data.locked(wait=timeout):
            return _sync_locked(
                data,
                source,
                at=at,
                anchor_thumbprint=anchor_thumbprint,
                timeout=timeout,
                max_bytes=max_bytes,
            )
    except SyncError as exc:  # the lock was not had
        error = _one_line(str(exc))
    except OSError as exc:
        # A full disk, a read-only or foreign-owned data directory: one line, recorded where
        # that still works; what the station holds is unchanged (every write is atomic).
        error = _one_line(
            f"cannot write the data directory {data.directory}: "
            f"{exc.strerror or type(exc).__name__}" + (f" ({exc.filename})" if exc.filename else "")
        )
    except KeyboardInterrupt:
        held_one = data.bundle_path.exists()
        kept = "the held bundle stays" if held_one else "nothing was installed"
        data.record_error(f"interrupted; {kept}", at=at)
        raise
    data.record_error(error, at=at)
    held: Bundle | None = None
    with contextlib.suppress(OSError, VerifierError):
        held = data.load(at=at)
    return SyncOutcome(held, error=error)


def _sync_locked(
    data: StationData,
    source: str,
    *,
    at: datetime,
    anchor_thumbprint: str | None,
    timeout: float,
    max_bytes: int,
) -> SyncOutcome:
    pinned = data.pinned_anchors()
    held = data.load(at=at)
    state = data.state()
    state.last_attempt = at
    conditional = held is not None and state.source == source
    try:
        if pinned is not None:  # checked before anything is fetched, 304 or not
            _check_held_pin(pinned, anchor_thumbprint)
        started = time.monotonic()
        fetched = fetch(
            source,
            etag=state.etag if conditional else None,
            last_modified=state.last_modified if conditional else None,
            timeout=timeout,
            max_bytes=max_bytes,
        )
        # The counter's time when the answer came: ``at`` was taken before the download,
        # which may have taken most of the timeout.
        answered = at + timedelta(seconds=time.monotonic() - started)
        state.clock_offset_seconds = _clock_offset(fetched.date, answered, None, at)
        if fetched.not_modified:
            if held is None:  # pragma: no cover - conditional only with a held bundle
                raise SyncError("the source answered 'not modified' to a first sync")
            state.clock_offset_seconds = _clock_offset(fetched.date, answered, held, at)
            state.last_success, state.last_error = at, None
            data.save_state(state)
            return SyncOutcome(held, not_modified=True, clock_warning=state.clock_warning)
        new = _verify(
            fetched.body or b"",
            held,
            pinned,
            at=at,
            anchor_thumbprint=anchor_thumbprint,
            source=source,
            content_type=fetched.content_type,
        )
        state.clock_offset_seconds = _clock_offset(fetched.date, answered, new, at)
        _refuse_dated_ahead(new, at, fetched.date, answered)
    except VerifierError as exc:
        state.last_error = _one_line(str(exc))
        data.save_state(state)
        return SyncOutcome(held, error=state.last_error, clock_warning=state.clock_warning)
    data.install(new, pinned)
    state.source = source
    state.etag, state.last_modified = fetched.etag, fetched.last_modified
    state.last_success, state.installed_at, state.last_error = at, at, None
    data.save_state(state)
    notes: tuple[str, ...] = ()
    rotated = {key_thumbprint(k) for k in new.anchors}
    if pinned is not None and {key_thumbprint(k) for k in pinned} != rotated:
        notes = (f"trust anchor rotated to {', '.join(sorted(rotated))}",)
    return SyncOutcome(
        new,
        installed=True,
        first_install=pinned is None,
        notes=notes,
        clock_warning=state.clock_warning,
    )


# -- the counter's clock against the issuer's ---------------------------------------------


def newest_document(bundle: Bundle) -> tuple[str, datetime]:
    """The bundle's signed document with the latest ``iat``: what it is, and that time."""
    dated = [("trust list", bundle.trust_list.issued_at)]
    dated += [(f"status list {uri}", t.issued_at) for uri, t in bundle.status_lists.items()]
    dated += [(f"policies of {p.issuer_id}", p.issued_at) for p in bundle.signed_policies]
    return max(dated, key=lambda item: item[1])


def _clock_offset(
    date: datetime | None, answered: datetime, bundle: Bundle | None, at: datetime
) -> int | None:
    """How far the issuer's clock is ahead of this counter's (seconds; negative: behind),
    when that is beyond :data:`CLOCK_BEHIND_LIMIT` or :data:`CLOCK_AHEAD_LIMIT`, else
    ``None``.

    The witness is the answer's ``Date`` (the server's clock when it answered) when there is
    one: a document dated ahead of a server that agrees with this counter says the issuer's
    clock is wrong. Without it, the newest signed ``iat`` in the bundle, which the issuer's
    clock had passed when it signed: a document dated after ``at`` shows the counter behind
    by at least that much (a signed date cannot show a counter ahead)."""
    if date is not None:
        # The server's own clock: a document dated ahead of both clocks is the issuer's
        # clock's fault, not this counter's (:func:`_refuse_dated_ahead` says so).
        offset = date - answered
    elif bundle is not None and (newest := newest_document(bundle)[1]) > at:
        offset = newest - at
    else:
        return None
    if offset > CLOCK_BEHIND_LIMIT or offset < -CLOCK_AHEAD_LIMIT:
        return round(offset.total_seconds())
    return None


def clock_warning(offset_seconds: int | None) -> str | None:
    """The one line that says the counter's clock is off (``None`` when it is not)."""
    if offset_seconds is None:
        return None
    # To the nearest minute: the Date header is whole seconds, and the download took some.
    size = human_duration(timedelta(minutes=round(abs(offset_seconds) / 60)))
    side = "behind" if offset_seconds > 0 else "ahead of"
    return f"this counter's clock is {size} {side} the issuer's: set the date and time"


def _refuse_dated_ahead(
    bundle: Bundle, at: datetime, server: datetime | None, answered: datetime
) -> None:
    """Refuse a bundle with a document dated more than :data:`MAX_LEEWAY` after ``at``: no
    verifier leeway lets its lists serve, and once held, a status list dated in the future
    would block every later list dated before it (the rollback rule) until that date.

    Whose clock is wrong: when the server's ``Date`` agrees with this counter's clock, the
    issuer signed with a clock ahead (its staff must fix it; setting the counter's clock
    would make it wrong); otherwise the counter's is behind."""
    what, newest = newest_document(bundle)
    if newest > at + MAX_LEEWAY:
        dated = (
            f"the bundle's {what} is dated {newest:%Y-%m-%d %H:%M:%S} UTC, "
            f"{human_duration(newest - at)} after this counter's clock "
            f"({at.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC)"
        )
        if server is not None and abs(server - answered) <= CLOCK_AHEAD_LIMIT:
            raise SyncError(
                f"{dated}, and the server's clock agrees with this counter's: the issuer "
                "signed it with a clock ahead; nothing was installed (tell the issuer)"
            )
        raise SyncError(f"{dated}: set the counter's date and time; nothing was installed")


def _verify(
    body: bytes,
    held: Bundle | None,
    pinned: tuple[PublicKey, ...] | None,
    *,
    at: datetime,
    anchor_thumbprint: str | None,
    source: str = "",
    content_type: str | None = None,
) -> Bundle:
    """The bundle in ``body``: an update of the held one, or verified against the pin (a
    station pinned from a trusted medium before its first sync), or pinning its own anchors
    (first install, checked against the full ``anchor_thumbprint`` when given: a short kid
    could be ground to collide)."""
    try:
        document = _json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SyncError(_not_json(source, content_type, exc)) from None
    if held is not None:
        return held.update(document, at=at)
    bundle = Bundle.from_json(
        document, at=at, pinned_anchors=pinned, anchor_thumbprint=anchor_thumbprint
    )
    bundle.require_anchor(anchor_thumbprint)
    if bundle.trust_list.is_expired(at):
        raise SyncError("the bundle's trust list has expired; nothing was pinned")
    return bundle


def _not_json(source: str, content_type: str | None, exc: Exception) -> str:
    """Why an answer is no bundle, naming what came: the issuer's base URL answers its
    console's HTML page, and "not JSON: Expecting value: line 1 column 1" did not say that
    the address, not the bundle, was wrong."""
    media = (content_type or "").split(";")[0].strip().lower()
    if not source.startswith(("http://", "https://")) or not media or "json" in media:
        return f"the bundle is not JSON: {exc}"
    shown = {"text/html": "an HTML page", "application/xhtml+xml": "an HTML page"}.get(media)
    what = f"{shown} (Content-Type: {media[:60]})" if shown else f"Content-Type: {media[:60]}"
    path = urllib.parse.urlsplit(source).path
    if path.endswith("/bundle.json"):
        hint = "is that the issuer's bundle address?"
    else:
        suggested = urllib.parse.urljoin(source, "bundle.json")
        hint = f"the bundle's address ends in /bundle.json, e.g. {suggested}"
    return f"{source} answered {what}, not the bundle's JSON: {hint}"


def _check_held_pin(held: tuple[PublicKey, ...], anchor_thumbprint: str | None) -> None:
    """A pin given to a station that already holds one must be the one it holds: a
    mistyped thumbprint is not ignored, and after an anchor rotation the operator learns
    that the station moved on to the new anchor (drop the option, or give the new one)."""
    if anchor_thumbprint is None:
        return
    held_prints = sorted(key_thumbprint(key) for key in held)
    if anchor_thumbprint not in held_prints:
        raise SyncError(
            f"--anchor-thumbprint {anchor_thumbprint!r} is not the anchor this station holds "
            f"({', '.join(held_prints)}); nothing was changed"
        )


# -- how old is what the station holds ------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DataAge:
    """How fresh a bundle is at ``at``, for the sync report and the counter page."""

    trust_list_version: int
    trust_list_expires_in: timedelta
    status_lists: int
    oldest_status_age: timedelta | None
    newest_status_age: timedelta | None
    status_expires_in: timedelta | None
    max_status_age: timedelta | None = None

    @property
    def trust_list_expired(self) -> bool:
        return self.trust_list_expires_in <= timedelta(0)

    @property
    def too_old(self) -> bool:
        """Too old for the policy: cards get STATUS_UNKNOWN."""
        if self.oldest_status_age is None:
            return True
        if self.status_expires_in is not None and self.status_expires_in <= timedelta(0):
            return True
        return self.max_status_age is not None and self.oldest_status_age > self.max_status_age

    @property
    def getting_old(self) -> bool:
        """Three quarters of the policy's allowance used, or the trust list expires within
        three days: time to sync."""
        if self.trust_list_expires_in < timedelta(days=3):
            return True
        if self.max_status_age is None or self.oldest_status_age is None:
            return False
        return self.oldest_status_age > self.max_status_age * 3 / 4

    def to_json(self) -> dict[str, Any]:
        return {
            "trust_list_version": self.trust_list_version,
            "trust_list_expires_in_seconds": _seconds(self.trust_list_expires_in),
            "trust_list_expired": self.trust_list_expired,
            "status_lists": self.status_lists,
            "oldest_status_age_seconds": _seconds(self.oldest_status_age),
            "newest_status_age_seconds": _seconds(self.newest_status_age),
            "status_expires_in_seconds": _seconds(self.status_expires_in),
            "max_status_age_seconds": _seconds(self.max_status_age),
            "too_old": self.too_old,
            "getting_old": self.getting_old,
        }


def data_age(bundle: Bundle, *, at: datetime, policy: Policy | None = None) -> DataAge:
    issued = [token.issued_at for token in bundle.status_lists.values()]
    expiries = [t.expires_at for t in bundle.status_lists.values() if t.expires_at is not None]
    return DataAge(
        trust_list_version=bundle.trust_list.version,
        trust_list_expires_in=bundle.trust_list.expires_at - at,
        status_lists=len(issued),
        oldest_status_age=at - min(issued) if issued else None,
        newest_status_age=at - max(issued) if issued else None,
        status_expires_in=min(expiries) - at if expiries else None,
        max_status_age=policy.max_status_age if policy else None,
    )


def human_duration(delta: timedelta, language: str = "en") -> str:
    """``45 min``, ``3 h``, ``2 d``: how a clerk says an age, in ``language``.

    The one formatter of every age the counter shows: ``sync``, ``serve``, the check's
    verdict (which said "0 hours old" where sync said "1 min old") and, with the same units
    and catalog entries, the station page (``duration`` in ``station.js``)."""
    seconds = abs(int(delta.total_seconds()))
    if seconds < 3600:
        key, n = "unit_min", seconds // 60
    elif seconds < 72 * 3600:
        key, n = "unit_h", seconds // 3600
    else:
        key, n = "unit_d", seconds // 86400
    return pgettext(language, "station", STATION_TEXT[key]).format(n=n)


def report(
    bundle: Bundle | None,
    state: SyncState,
    *,
    at: datetime,
    policy: Policy | None,
    hint: bool = True,
) -> str:
    """A few lines on what the station holds and how old it is. ``hint``: with no bundle,
    say how to get one (not after a sync that just tried)."""
    if bundle is None:
        how = ": run 'fmcard-verify sync --from URL-or-FILE'" if hint else ""
        lines = [f"no bundle yet{how}"]
        if state.clock_warning:  # (a first bundle refused for the clock says why)
            lines.append(f"clock:        {state.clock_warning}")
        return "\n".join(lines)
    age = data_age(bundle, at=at, policy=policy)
    lines = []
    expires = human_duration(age.trust_list_expires_in)
    lines.append(
        f"trust list:   version {age.trust_list_version}, "
        + (f"EXPIRED {expires} ago" if age.trust_list_expired else f"expires in {expires}")
    )
    if age.oldest_status_age is None:
        lines.append("status lists: none (every card gets STATUS_UNKNOWN)")
    else:
        newest = human_duration(age.newest_status_age or timedelta(0))
        lines.append(
            f"status lists: {age.status_lists}, {human_duration(age.oldest_status_age)} old"
            + ("" if age.status_lists == 1 else f" (newest {newest})")
        )
    if policy is not None:
        limit = human_duration(policy.max_status_age)
        verdict = (
            "TOO OLD: cards get STATUS_UNKNOWN"
            if age.too_old
            else ("getting old, sync soon" if age.getting_old else "fresh enough")
        )
        lines.append(f"policy {policy.service}:    status age at most {limit}: {verdict}")
    if state.last_success is not None:
        lines.append(f"last sync:    {human_duration(at - state.last_success)} ago")
    if state.last_error:
        lines.append(f"last error:   {state.last_error}")
    if state.clock_warning:
        lines.append(f"clock:        {state.clock_warning}")
    return "\n".join(lines)


def _one_line(text: str) -> str:
    """An error as the one line that ``sync.json``, ``sync --status`` and the page show."""
    return " ".join(text.split())[:500] or "unknown error"


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _parse_iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _integer(value: Any) -> int | None:
    return value if type(value) is int else None


def _server_time(headers: Any) -> datetime | None:
    """The server's clock when it answered: the ``Date`` header, plus ``Age`` when a shared
    cache answered with a stored copy (its ``Date`` is the origin's, ``Age`` seconds ago)."""
    date = _http_date(headers.get("Date"))
    age = (headers.get("Age") or "").strip()
    if date is not None and age.isdigit() and len(age) <= 9:
        return date + timedelta(seconds=int(age))
    return date


def _http_date(value: str | None) -> datetime | None:
    """An HTTP ``Date`` header (RFC 9110 IMF-fixdate, or an obsolete form), or ``None``."""
    if not value:
        return None
    try:
        parsed = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _seconds(value: timedelta | None) -> int | None:
    return None if value is None else int(value.total_seconds())
