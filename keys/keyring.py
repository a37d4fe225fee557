"""The issuer's key ring: a trust-anchor key and the issuing keys, with their life cycle.

On disk (one directory)::

    keyring.json            who the issuer is, and each key's kid, file and signing window
    anchor.pem              trust-anchor key (encrypted PKCS#8); signs trust lists only
    issuing-<kid>.pem       issuing keys (encrypted PKCS#8); sign cards and status lists

A key's state is derived from its window and the time asked about, so nobody has to remember
to flip it: ``next`` before ``valid_from``, ``active`` inside the window, ``retired`` after
``valid_until``, ``compromised`` once marked so. Rotation adds a key announced ``announce``
ahead of its use and closes the current key's window at the switch: sign with the newest,
accept all, like ``MultiFernet``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from keys.errors import KeyFileError, KeysError
from keys.jwk import (
    ES256,
    PublicKey,
    algorithm_of,
    generate,
    jwks,
    key_thumbprint,
    kid_of,
    public_jwk,
    public_key_from_jwk,
)
from keys.signer import KeySigner
from keys.store import Passphrase, load_private_key, save_private_key, write_file
from keys.trust_list import KeyState, TrustedIssuer, TrustedKey, TrustList

INDEX_FILE = "keyring.json"
ANCHOR_FILE = "anchor.pem"


@dataclass(frozen=True, slots=True)
class IssuerInfo:
    """Who the issuer is, as the trust list tells counters."""

    issuer_id: str
    name_en: str
    name_zh: str
    status_uri_prefix: str


@dataclass(frozen=True, slots=True)
class KeyRecord:
    """One issuing key as the key ring remembers it (no secret material)."""

    kid: str
    algorithm: str
    file: str
    valid_from: datetime
    valid_until: datetime | None = None
    compromised: bool = False
    compromised_since: datetime | None = None
    public_jwk: dict[str, str] | None = None
    """Set for a key held outside the ring (an HSM): its public half, for the trust list."""

    def state_at(self, at: datetime) -> KeyState:
        if self.compromised:
            return KeyState.COMPROMISED
        if at < self.valid_from:
            return KeyState.NEXT
        if self.valid_until is not None and at >= self.valid_until:
            return KeyState.RETIRED
        return KeyState.ACTIVE


class KeyRing:
    """Loads, rotates and publishes the keys in one directory."""

    def __init__(
        self,
        directory: Path,
        *,
        issuer: IssuerInfo,
        anchor_kid: str,
        keys: list[KeyRecord],
        trust_list_version: int,
    ) -> None:
        self.directory = directory
        self.issuer = issuer
        self.anchor_kid = anchor_kid
        self.keys = keys
        self.trust_list_version = trust_list_version

    @classmethod
    def create(
        cls,
        directory: Path,
        *,
        issuer: IssuerInfo,
        passphrase: Passphrase,
        at: datetime,
        algorithm: str = ES256,
    ) -> KeyRing:
        """Create a new key ring: a trust anchor and one issuing key, active from ``at``."""
        if (directory / INDEX_FILE).exists():
            raise KeyFileError(f"{directory} already holds a key ring; refusing to overwrite it")
        anchor = generate(algorithm)
        save_private_key(anchor, directory / ANCHOR_FILE, passphrase)
        ring = cls(
            directory, issuer=issuer, anchor_kid=kid_of(anchor), keys=[], trust_list_version=0
        )
        ring._add_key(algorithm, passphrase, valid_from=at)
        ring.save()
        return ring

    @classmethod
    def load(cls, directory: Path) -> KeyRing:
        """Read the key ring index (no private key is decrypted until a signer is asked for)."""
        try:
            index = json.loads((directory / INDEX_FILE).read_text(encoding="utf-8"))
            return cls(
                directory,
                issuer=IssuerInfo(**index["issuer"]),
                anchor_kid=index["anchor_kid"],
                keys=[_record_from_json(item) for item in index["keys"]],
                trust_list_version=index["trust_list_version"],
            )
        except FileNotFoundError:
            raise KeyFileError(f"no key ring in {directory} (run 'fmcard keys init')") from None
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise KeyFileError(f"{directory / INDEX_FILE} is damaged: {exc}") from None

    def save(self) -> None:
        index = {
            "issuer": {
                "issuer_id": self.issuer.issuer_id,
                "name_en": self.issuer.name_en,
                "name_zh": self.issuer.name_zh,
                "status_uri_prefix": self.issuer.status_uri_prefix,
            },
            "anchor_kid": self.anchor_kid,
            "trust_list_version": self.trust_list_version,
            "keys": [_record_to_json(record) for record in self.keys],
        }
        text = json.dumps(index, indent=2, ensure_ascii=False) + "\n"
        write_file(self.directory / INDEX_FILE, text.encode("utf-8"))

    def active_record(self, at: datetime) -> KeyRecord:
        """The key that signs at ``at``: the newest whose window is open and not compromised."""
        usable = [r for r in self.keys if r.state_at(at) is KeyState.ACTIVE]
        if not usable:
            raise KeysError("no issuing key is active now; rotate to create one")
        return max(usable, key=lambda record: record.valid_from)

    def signer(self, at: datetime, passphrase: Passphrase) -> KeySigner:
        """Decrypt and return the signer of the key active at ``at``."""
        record = self.active_record(at)
        if not record.file:
            raise KeysError(
                f"the active key {record.kid} is held in an HSM: configure FMCARD_HSM_MODULE, "
                "FMCARD_HSM_TOKEN, FMCARD_HSM_KEY and the PIN"
            )
        return KeySigner(load_private_key(self.directory / record.file, passphrase))

    def signer_for(self, kid: str, passphrase: Passphrase) -> KeySigner:
        record = self._record(kid)
        if not record.file:
            raise KeysError(f"key {kid} is held in an HSM; sign with the HSM signer")
        return KeySigner(load_private_key(self.directory / record.file, passphrase))

    def anchor_signer(self, passphrase: Passphrase) -> KeySigner:
        signer = KeySigner(load_private_key(self.directory / ANCHOR_FILE, passphrase))
        if signer.kid != self.anchor_kid:
            raise KeyFileError("anchor.pem does not hold the key ring's trust anchor")
        return signer

    def anchor_public_key(self, passphrase: Passphrase) -> PublicKey:
        return self.anchor_signer(passphrase).public_key

    def anchor_thumbprint(self, passphrase: Passphrase) -> str:
        """The anchor's full RFC 7638 thumbprint: what counters pin (``anchor_kid`` is only
        its first characters, too short to decide trust)."""
        return key_thumbprint(self.anchor_public_key(passphrase))

    def rotate(
        self, passphrase: Passphrase, *, at: datetime, announce: timedelta, algorithm: str = ES256
    ) -> KeyRecord:
        """Add a key that takes over ``announce`` after ``at``; retire the current one then.

        Publish a trust list right after rotating so counters learn the new key before its
        first card.
        """
        switch = at + announce
        current = self.active_record(at)
        self.keys = [
            replace(r, valid_until=switch) if r.kid == current.kid else r for r in self.keys
        ]
        record = self._add_key(algorithm, passphrase, valid_from=switch)
        self.save()
        return record

    def mark_compromised(self, kid: str, *, since: datetime | None) -> None:
        """Refuse everything ``kid`` signed, from ``since`` (verification time) or always."""
        record = self._record(kid)
        self.keys = [
            replace(r, compromised=True, compromised_since=since) if r is record else r
            for r in self.keys
        ]
        self.save()

    def trust_list(self, passphrase: Passphrase, *, at: datetime, validity: timedelta) -> TrustList:
        """Return the next trust list version (and remember that version was used)."""
        self.trust_list_version += 1
        self.save()
        issuer = TrustedIssuer(
            issuer_id=self.issuer.issuer_id,
            name_en=self.issuer.name_en,
            name_zh=self.issuer.name_zh,
            status_uri_prefix=self.issuer.status_uri_prefix,
            keys=tuple(self._trusted_key(record, passphrase, at) for record in self.keys),
        )
        return TrustList(
            version=self.trust_list_version,
            issued_at=at,
            expires_at=at + validity,
            issuers=(issuer,),
        )

    def public_keys(self, passphrase: Passphrase) -> list[tuple[PublicKey, str]]:
        return [(self.public_key_of(r, passphrase), r.kid) for r in self.keys]

    def public_key_of(self, record: KeyRecord, passphrase: Passphrase) -> PublicKey:
        """The public key of ``record``: from the HSM record's JWK, or from its key file."""
        if record.public_jwk is not None:
            return public_key_from_jwk(record.public_jwk)
        return self.signer_for(record.kid, passphrase).public_key

    def add_external(
        self, public_key: PublicKey, *, at: datetime, announce: timedelta
    ) -> KeyRecord:
        """Rotate to a key held outside the ring (an HSM): like :meth:`rotate`, but only the
        public key is recorded. Publish a trust list afterwards."""
        kid = kid_of(public_key)
        if any(r.kid == kid for r in self.keys):
            raise KeysError(f"key {kid} is already in the key ring")
        switch = at + announce
        current = self.active_record(at)
        self.keys = [
            replace(r, valid_until=switch) if r.kid == current.kid else r for r in self.keys
        ]
        record = KeyRecord(
            kid=kid,
            algorithm=algorithm_of(public_key),
            file="",
            valid_from=switch,
            public_jwk=public_jwk(public_key),
        )
        self.keys.append(record)
        self.save()
        return record

    def jwks(self, passphrase: Passphrase) -> dict[str, list[dict[str, str]]]:
        """The issuing keys as a JWK Set (compromised keys are left out)."""
        return jwks(
            [
                (k, kid)
                for k, kid in self.public_keys(passphrase)
                if not self._record(kid).compromised
            ]
        )

    def _trusted_key(self, record: KeyRecord, passphrase: Passphrase, at: datetime) -> TrustedKey:
        return TrustedKey(
            public_key=self.public_key_of(record, passphrase),
            state=record.state_at(at),
            valid_from=record.valid_from,
            valid_until=record.valid_until,
            compromised_since=record.compromised_since,
            kid=record.kid,
        )

    def _add_key(
        self, algorithm: str, passphrase: Passphrase, *, valid_from: datetime
    ) -> KeyRecord:
        key = generate(algorithm)
        kid = kid_of(key)
        file = f"issuing-{kid}.pem"
        save_private_key(key, self.directory / file, passphrase)
        record = KeyRecord(kid=kid, algorithm=algorithm, file=file, valid_from=valid_from)
        self.keys.append(record)
        return record

    def _record(self, kid: str) -> KeyRecord:
        for record in self.keys:
            if record.kid == kid:
                return record
        raise KeysError(f"no key with kid {kid!r} in the key ring")


def _record_to_json(record: KeyRecord) -> dict[str, Any]:
    return {
        "kid": record.kid,
        "algorithm": record.algorithm,
        "file": record.file,
        "valid_from": record.valid_from.isoformat(),
        "valid_until": record.valid_until.isoformat() if record.valid_until else None,
        "compromised": record.compromised,
        "compromised_since": (
            record.compromised_since.isoformat() if record.compromised_since else None
        ),
        "public_jwk": record.public_jwk,
    }


def _record_from_json(item: dict[str, Any]) -> KeyRecord:
    def when(value: str | None) -> datetime | None:
        return None if value is None else datetime.fromisoformat(value).astimezone(UTC)

    valid_from = when(item["valid_from"])
    if valid_from is None:
        raise ValueError("valid_from is missing")
    return KeyRecord(
        kid=item["kid"],
        algorithm=item["algorithm"],
        file=item["file"],
        valid_from=valid_from,
        valid_until=when(item["valid_until"]),
        compromised=bool(item["compromised"]),
        compromised_since=when(item["compromised_since"]),
        public_jwk=item.get("public_jwk"),
    )
