"""The service's signer: the active key of the key ring, or a key in an HSM.

Loaded once at start-up. A development workspace (made by ``fmcard serve`` on first start,
with a generated passphrase file) is created when none exists and the environment is
development; production refuses to start with one (see ``core.config``).
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from cardissuer.core.config import Environment, Settings
from cardissuer.errors import WorkspaceError
from cardissuer.workspace import DEFAULT_ISSUER
from keys.jwk import PublicKey
from keys.keyring import KeyRing
from keys.signer import Signer
from keys.store import (
    PASSPHRASE_ENV,
    PASSPHRASE_FILE_ENV,
    Passphrase,
    write_file,
    write_private_file,
)
from keys.trust_list import sign_trust_list


@dataclass(frozen=True, slots=True)
class KeyMaterial:
    signer: Signer
    issuer_id: str
    anchor: PublicKey
    keyring: KeyRing
    passphrase: Passphrase


def load_key_material(settings: Settings) -> KeyMaterial:
    """Open the key ring (creating a development one if allowed) and the signer."""
    keys_dir = settings.workspace / "keys"
    passphrase = _passphrase(settings)
    if not (keys_dir / "keyring.json").exists():
        if settings.environment is not Environment.DEVELOPMENT:
            raise WorkspaceError(f"no key ring in {keys_dir}: run 'fmcard init' first")
        issuer = replace(DEFAULT_ISSUER, status_uri_prefix=settings.status_uri_prefix)
        KeyRing.create(
            keys_dir,
            issuer=issuer,
            passphrase=passphrase,
            at=datetime.now(UTC) - timedelta(minutes=5),
        )
    ring = KeyRing.load(keys_dir)
    now = datetime.now(UTC)
    signer: Signer
    if settings.hsm_module:
        from keys.hsm import HsmSigner  # type: ignore[import-not-found,unused-ignore]

        signer = HsmSigner.from_env()  # FMCARD_HSM_MODULE, _TOKEN, _KEY, _PIN(_FILE)
        if all(record.kid != signer.kid for record in ring.keys):
            raise WorkspaceError(
                f"the HSM key {signer.kid} is not in the key ring, so counters would not trust "
                "its cards: run 'fmcard keys add-hsm' and publish a trust list"
            )
    else:
        signer = ring.signer(now, passphrase)
    published = settings.workspace / "published" / "trust-list.jwt"
    if not published.exists() and settings.environment is Environment.DEVELOPMENT:
        trust_list = ring.trust_list(
            passphrase, at=now, validity=timedelta(days=settings.trust_list_validity_days)
        )
        write_file(published, sign_trust_list(trust_list, ring.anchor_signer(passphrase)).encode())
    return KeyMaterial(
        signer, ring.issuer.issuer_id, ring.anchor_public_key(passphrase), ring, passphrase
    )


def _passphrase(settings: Settings) -> Passphrase:
    if os.environ.get(PASSPHRASE_ENV) or os.environ.get(PASSPHRASE_FILE_ENV):
        passphrase = Passphrase.from_env()
        if settings.environment is not Environment.DEVELOPMENT:
            from cardissuer.demo import DEMO_PASSPHRASE  # the demo's whole machinery, lazily

            if passphrase.value == DEMO_PASSPHRASE.encode():
                raise WorkspaceError(
                    "the key passphrase is the published one of 'fmcard demo': production "
                    "needs keys protected by a real passphrase or an HSM"
                )
        return passphrase
    dev_file = settings.workspace / settings.dev_passphrase_file
    if settings.environment is Environment.DEVELOPMENT:
        if not dev_file.exists():
            write_private_file(dev_file, secrets.token_urlsafe(24).encode())
        return Passphrase.from_file(dev_file)
    return Passphrase.from_env()
