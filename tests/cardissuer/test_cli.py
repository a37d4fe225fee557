"""The ``fmcard`` and ``fmcard-verify`` commands as a user runs them, end to end.

Issue -> QR PNG -> zxing-cpp reads the image -> fmcard-verify says VALID; then revoke,
publish and the same PNG says REVOKED. Bad input gets one line on stderr, never a traceback.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from cardissuer import cli as issuer_cli
from cardissuer.render.qr import qr_version
from keys.keyring import KeyRing
from keys.store import Passphrase
from verifier import cli as verifier_cli

PASSPHRASE = "correct horse battery staple"

REQUEST: dict[str, object] = {
    "family_name": "AL-HASHIMI",
    "given_names": "MOHAMMED",
    "native_name": "محمد الهاشمي",
    "chinese_name": "穆罕默德",
    "nationality": "SAU",
    "birth_date": "1985-03-14",
    "entitlements": ["hc", {"service": "ed", "from": "2026-01-01", "until": "2099-01-01"}],
}


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FMCARD_KEY_PASSPHRASE", PASSPHRASE)
    directory = tmp_path / "bureau"
    assert issuer_cli.main(["--dir", str(directory), "init"]) == 0
    return directory


def _issue(workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
           request: Mapping[str, object] = REQUEST, *extra: str) -> str:  # fmt: skip
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request), encoding="utf-8")
    capsys.readouterr()
    out = tmp_path / "cards"
    code = issuer_cli.main(["--dir", str(workspace), "issue", str(path), "--out", str(out), *extra])
    assert code == 0, capsys.readouterr().err
    return capsys.readouterr().out.strip()


def _serial(tmp_path: Path) -> str:
    (png,) = (tmp_path / "cards").glob("*.png")
    return png.stem


def test_issue_scan_verify_revoke(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qr_text = _issue(workspace, tmp_path, capsys)
    assert qr_text.startswith("FM1:")
    serial = _serial(tmp_path)
    assert issuer_cli.main(["--dir", str(workspace), "publish"]) == 0
    bundle = str(workspace / "published" / "bundle.json")
    image = str(tmp_path / "cards" / f"{serial}.png")
    capsys.readouterr()

    assert verifier_cli.main(["--bundle", bundle, "--service", "hc", "--image", image]) == 0
    out = capsys.readouterr().out
    assert out.startswith("VALID")
    assert "AL-HASHIMI, MOHAMMED / محمد الهاشمي / 穆罕默德" in out

    assert verifier_cli.main(["--bundle", bundle, "--service", "bk", qr_text, "--json"]) == 1
    result = json.loads(capsys.readouterr().out)
    assert result["reason"] == "NOT_ENTITLED"
    assert result["card"]["nationality"] == "SAU"

    assert issuer_cli.main(["--dir", str(workspace), "revoke", serial]) == 0
    assert issuer_cli.main(["--dir", str(workspace), "publish"]) == 0
    capsys.readouterr()
    assert verifier_cli.main(["--bundle", bundle, "--image", image, "--lang", "zh"]) == 1
    assert capsys.readouterr().out.startswith("NOT VALID (REVOKED): 卡片已被注销")


def test_suspend_and_reinstate(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qr_text = _issue(workspace, tmp_path, capsys)
    serial = _serial(tmp_path)
    bundle = str(workspace / "published" / "bundle.json")
    for command, reason in (("suspend", "SUSPENDED"), ("reinstate", "VALID")):
        assert issuer_cli.main(["--dir", str(workspace), command, serial]) == 0
        assert issuer_cli.main(["--dir", str(workspace), "publish"]) == 0
        capsys.readouterr()
        verifier_cli.main(["--bundle", bundle, "--json", qr_text])
        assert json.loads(capsys.readouterr().out)["reason"] == reason
    assert issuer_cli.main(["--dir", str(workspace), "reinstate", serial]) == 1
    assert "is not suspended" in capsys.readouterr().err


def test_a_photo_smaller_than_the_portrait_is_refused_in_one_line(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from PIL import Image

    photo = tmp_path / "tiny.png"
    Image.new("RGB", (1, 1)).save(photo)
    request = tmp_path / "request.json"
    request.write_text(json.dumps(REQUEST), encoding="utf-8")
    capsys.readouterr()
    code = issuer_cli.main(
        ["--dir", str(workspace), "issue", str(request), "--portrait", str(photo)]
    )
    error = capsys.readouterr().err
    assert code != 0
    assert "photo is 1x1 pixels; at least 96x120" in error
    assert "Traceback" not in error


def test_card_with_portrait_fits_version_16(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    photo = Path(issuer_cli.__file__).parent / "demo" / "sample-photo.jpg"
    qr_text = _issue(workspace, tmp_path, capsys, REQUEST, "--portrait", str(photo))
    assert len(qr_text) <= 854  # alphanumeric capacity of version 16 at level L
    assert qr_version(qr_text)[0] <= 16
    assert issuer_cli.main(["--dir", str(workspace), "publish"]) == 0
    capsys.readouterr()
    bundle = str(workspace / "published" / "bundle.json")
    image = str(tmp_path / "cards" / f"{_serial(tmp_path)}.png")
    assert verifier_cli.main(["--bundle", bundle, "--image", image, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["card"]["has_portrait"] is True


def test_key_rotation_from_the_command_line(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert issuer_cli.main(["--dir", str(workspace), "keys", "rotate"]) == 0
    assert issuer_cli.main(["--dir", str(workspace), "keys", "list"]) == 0
    listing = capsys.readouterr().out
    assert "active" in listing
    assert "next" in listing
    qr_text = _issue(workspace, tmp_path, capsys)  # still signed by the active key
    assert issuer_cli.main(["--dir", str(workspace), "publish"]) == 0
    capsys.readouterr()
    bundle = str(workspace / "published" / "bundle.json")
    assert verifier_cli.main(["--bundle", bundle, qr_text]) == 0


@pytest.mark.parametrize(
    ("request_document", "message"),
    [
        pytest.param({**REQUEST, "passport_number": "E1234567"}, "passport_number: unknown field",
                     id="passport-number-refused"),
        pytest.param({**REQUEST, "serial": "X"}, "serial: unknown field", id="mass-assignment"),
        pytest.param({**REQUEST, "nationality": "XYZ"}, "nationality: not an ISO",
                     id="bad-nationality"),
        pytest.param({**REQUEST, "birth_date": "1985-02-30"}, "no such calendar date",
                     id="impossible-birth-date"),
        pytest.param({**REQUEST, "family_name": "AL\u202eHASHIMI"}, "U+202E", id="bidi-name"),
        pytest.param({k: v for k, v in REQUEST.items() if k != "family_name"},
                     "family_name: required", id="missing-field"),
        pytest.param([1, 2], "must be a JSON object", id="not-an-object"),
        pytest.param({"family_name": 5, "serial": "X"},
                     "serial: unknown field; family_name: must be a string; nationality: required "
                     "field is missing; birth_date: required field is missing; entitlements: "
                     "required field is missing", id="every-problem"),
        pytest.param({**REQUEST, "birth_date": "1985-02-30", "entitlements": ["hc", 5]},
                     "birth_date: no such calendar date; entitlements: each is", id="two-problems"),
    ],
)  # fmt: skip
def test_bad_request_gets_one_clear_line(
    workspace: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    request_document: object,
    message: str,
) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(request_document), encoding="utf-8")
    capsys.readouterr()
    assert issuer_cli.main(["--dir", str(workspace), "issue", str(path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("fmcard: error: ")
    assert message in err
    assert "Traceback" not in err
    assert err.count("\n") == 1
    assert not list((workspace / "cards").glob("*.json"))  # nothing half-written


def test_errors_without_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.delenv("FMCARD_KEY_PASSPHRASE", raising=False)
    monkeypatch.delenv("FMCARD_KEY_PASSPHRASE_FILE", raising=False)
    assert issuer_cli.main(["--dir", str(tmp_path / "none"), "publish"]) == 1
    assert f"no workspace in {tmp_path / 'none'}: run 'fmcard" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert issuer_cli.main(["--dir", str(tmp_path / "empty"), "keys", "list"]) == 1
    err = capsys.readouterr().err
    assert f"no workspace in {tmp_path / 'empty'}" in err  # before asking for a passphrase
    assert "FMCARD_KEY_PASSPHRASE" not in err
    monkeypatch.setenv("FMCARD_KEY_PASSPHRASE", PASSPHRASE)
    assert issuer_cli.main(["--dir", str(tmp_path / "none"), "publish"]) == 1
    assert "no workspace in" in capsys.readouterr().err
    assert verifier_cli.main(["FM1:AAA"]) == 2
    assert "no bundle" in capsys.readouterr().err
    assert verifier_cli.main(["--bundle", str(tmp_path / "missing.json"), "FM1:AAA"]) == 2
    assert "no bundle at" in capsys.readouterr().err
    (tmp_path / "junk.json").write_text("{not json")
    assert verifier_cli.main(["--bundle", str(tmp_path / "junk.json"), "FM1:AAA"]) == 2
    assert "cannot read bundle" in capsys.readouterr().err


def test_wrong_passphrase_is_one_line(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FMCARD_KEY_PASSPHRASE", "not the right passphrase")
    capsys.readouterr()
    assert issuer_cli.main(["--dir", str(workspace), "publish"]) == 1
    err = capsys.readouterr().err
    assert "passphrase does not open" in err
    assert PASSPHRASE not in err


def test_verifier_pins_the_anchor(
    workspace: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    qr_text = _issue(workspace, tmp_path, capsys)
    assert issuer_cli.main(["--dir", str(workspace), "publish"]) == 0
    bundle = str(workspace / "published" / "bundle.json")
    kid = json.loads((workspace / "keys" / "keyring.json").read_text())["anchor_kid"]
    capsys.readouterr()
    assert issuer_cli.main(["--dir", str(workspace), "keys", "list"]) == 0
    listed = capsys.readouterr().out
    anchor = listed.split("thumbprint ", 1)[1].split()[0]
    assert len(anchor) == 43
    assert anchor.startswith(kid)
    assert verifier_cli.main(["--bundle", bundle, f"--anchor-thumbprint={anchor}", qr_text]) == 0
    other = "A" * 43
    assert verifier_cli.main(["--bundle", bundle, "--anchor-thumbprint", other, qr_text]) == 2
    assert "is not the expected" in capsys.readouterr().err
    # The short kid is no pin any more: one line saying what to give instead.
    assert verifier_cli.main(["--bundle", bundle, "--anchor-kid", kid, qr_text]) == 2
    assert "--anchor-thumbprint" in capsys.readouterr().err


def test_init_prints_the_full_anchor_thumbprint_for_counters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FMCARD_KEY_PASSPHRASE", PASSPHRASE)
    directory = tmp_path / "bureau"
    assert issuer_cli.main(["--dir", str(directory), "init"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if "trust anchor:" in x)
    thumbprint = line.split()[-1]
    ring = KeyRing.load(directory / "keys")
    assert thumbprint == ring.anchor_thumbprint(Passphrase.from_text(PASSPHRASE))
    assert len(thumbprint) == 43


def test_help_works_for_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (["--help"], ["issue", "--help"], ["keys", "rotate", "--help"]):
        with pytest.raises(SystemExit) as exit_info:
            issuer_cli.main(argv)
        assert exit_info.value.code == 0
    with pytest.raises(SystemExit) as exit_info:
        verifier_cli.main(["--help"])
    assert exit_info.value.code == 0
    assert "Exit status 0 valid" in capsys.readouterr().out


def test_demo_runs_and_every_verdict_is_as_expected(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert issuer_cli.main(["demo", "--out", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    for reason in ("VALID", "REVOKED", "EXPIRED", "NOT_ENTITLED"):
        assert f"-> {reason}" in out
    assert len(list((tmp_path / "demo" / "cards").glob("*.png"))) == 5
    # A second run replaces the earlier demo; another directory is never deleted.
    assert issuer_cli.main(["demo", "--out", str(tmp_path / "demo")]) == 0
    (tmp_path / "mine").mkdir()
    assert issuer_cli.main(["demo", "--out", str(tmp_path / "mine")]) == 1
    assert "not an earlier demo" in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_status_130(workspace: Path) -> None:
    """Ctrl+C at a command waiting for its input (a card request on standard input) was a
    KeyboardInterrupt traceback, whose frames can show the request's personal data."""
    waiting = subprocess.Popen(
        [sys.executable, "-m", "cardissuer.launcher", "--dir", str(workspace), "issue", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        time.sleep(3)  # started (the issuer's imports), and reading its input
        waiting.send_signal(signal.SIGINT)
        out, err = waiting.communicate(timeout=30)
    finally:
        waiting.kill()
    assert (waiting.returncode, out, err) == (130, "", "fmcard: interrupted\n")


def test_a_reader_that_goes_away_ends_the_command_quietly(workspace: Path) -> None:
    """``fmcard ... | head``: the reader leaves before the output is written; status 1 (the
    output was not all read) and nothing on standard error (it said "error: Broken pipe")."""
    command = [sys.executable, "-m", "cardissuer.launcher", "--dir", str(workspace), "trust-list"]
    running = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert running.stdout is not None
    running.stdout.close()  # the reader is gone before the command writes
    _, err = running.communicate(timeout=60)
    assert (running.returncode, err) == (1, "")


@pytest.mark.parametrize("command", ["revoke", "suspend", "reinstate"])
def test_a_status_change_on_the_service_workspace_says_where_its_cards_are(
    workspace: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    """The issuer service keeps its cards in its database, beside its workspace's keys; the
    offline commands cannot find them there and say where they are changed instead."""
    (workspace / "fmcard.db").write_bytes(b"")  # what 'fmcard serve' leaves in its workspace
    capsys.readouterr()
    assert issuer_cli.main(["--dir", str(workspace), command, "ABCDE12345"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "issuer service's workspace" in err
    assert "POST /api/cards/{serial}/revoke (with a reason)" in err
    assert "console" in err


def test_a_missing_card_of_an_offline_workspace_is_just_missing(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert issuer_cli.main(["--dir", str(workspace), "revoke", "ABCDE12345"]) == 1
    err = capsys.readouterr().err
    assert "no card with serial 'ABCDE12345' in this workspace\n" in err
    assert "console" not in err
