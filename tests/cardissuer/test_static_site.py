"""``fmcard publish --to DIR`` (a static web server in front of the counters) and
``fmcard db rebuild-status``."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from cardissuer import cli
from cardissuer.models import CardRecord, CardState
from keys.jwk import key_thumbprint
from tests.cardissuer.test_api_helpers import Service, shared_service
from verifier import Reason
from verifier import cli as verify_cli


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """No access log on the test's output."""


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    with shared_service("sqlite", tmp_path / "issuer") as running:
        yield running


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A static web server (Python's) serving a directory on 127.0.0.1."""
    root = tmp_path / "site"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def publish(service: Service, root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run ``fmcard publish --to`` against the service's workspace and database."""
    settings = service.app.state.settings
    monkeypatch.setenv("FMCARD_DATABASE_URL", settings.database_url)
    assert cli.main(["--dir", str(settings.workspace), "publish", "--to", str(root)]) == 0


def test_counters_sync_from_a_static_copy_and_see_a_revocation(
    service: Service,
    site: tuple[Path, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    root, base = site
    _, card = service.with_card(("hc",))
    publish(service, root, monkeypatch)
    written = capsys.readouterr().out
    for name in ("bundle.json", "trust-list.jwt", "jwks.json", "status/1"):
        assert name in written
        assert (root / name).is_file()
    station = ["--data-dir", str(tmp_path / "station")]
    anchor = key_thumbprint(service.app.state.keys.anchor)
    sync = ["sync", *station, "--from", f"{base}/bundle.json", "--anchor-thumbprint", anchor]
    assert verify_cli.main(sync) == 0
    bundle = str(tmp_path / "station" / "bundle.json")
    assert verify_cli.main(["--bundle", bundle, "--service", "hc", card["qr_text"]]) == 0
    capsys.readouterr()

    # Nothing changed: nothing is rewritten, and the counter is told "not modified".
    before = {path: path.stat().st_mtime_ns for path in root.rglob("*") if path.is_file()}
    publish(service, root, monkeypatch)
    assert "wrote nothing" in capsys.readouterr().out
    assert before == {path: path.stat().st_mtime_ns for path in before}
    assert verify_cli.main(["sync", *station, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["not_modified"]

    revoked = service.client.post(
        f"/api/cards/{card['serial']}/revoke",
        headers=service.headers("supervisor"),
        json={"reason": "r"},
    )
    assert revoked.status_code == 200, revoked.text
    publish(service, root, monkeypatch)
    out = capsys.readouterr().out
    assert "status/1" in out
    assert "bundle.json" in out
    for name in ("bundle.json", "status/1"):  # later, whatever the clock: never "not modified"
        assert (root / name).stat().st_mtime_ns > before[root / name]
    assert verify_cli.main(["sync", *station, "--json"]) == 0
    assert not json.loads(capsys.readouterr().out)["not_modified"]
    assert verify_cli.main(["--bundle", bundle, "--service", "hc", card["qr_text"]]) == 1
    assert "revoked" in capsys.readouterr().out.lower()


def test_db_rebuild_status_repairs_a_write_past_the_journal(
    service: Service, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _, card = service.with_card(("hc",))
    with service.engine.begin() as connection:  # past the ORM: not journalled
        connection.execute(
            update(CardRecord)
            .where(col(CardRecord.serial) == card["serial"])
            .values(state=CardState.REVOKED)
        )
    settings = service.app.state.settings
    monkeypatch.setenv("FMCARD_DATABASE_URL", settings.database_url)
    argv = ["--dir", str(settings.workspace), "db", "rebuild-status"]
    assert cli.main(argv) == 0
    assert "repaired (they differed from the cards): 1" in capsys.readouterr().out
    assert service.reasons(card["qr_text"]) == [Reason.REVOKED]
    assert cli.main(argv) == 0
    assert capsys.readouterr().out == "every status list matched its cards\n"
