"""The verifier bundle: everything a counter needs to decide offline, in one file.

::

    {
      "format": "fmcard-bundle/1",
      "anchors": [<trust-anchor public JWK>, ...],
      "trust_list": "<fmcard-trust+jwt>",
      "status_lists": ["<statuslist+jwt>", ...],
      "signed_policies": ["<fmcard-policy+jwt>", ...],          (optional)
      "policies": [{"service": "bk", "require_portrait": true}, ...]
    }

A bundle is verified when it is loaded, never trusted as it is: the trust list must be signed
by a pinned anchor (the counter's own pin, or on first install the bundle's ``anchors``), and
each status list and policy token by a key of its issuer that the trust list does not mark
compromised. The unsigned ``policies`` can only make policies stricter
(:mod:`verifier.policy`).

:meth:`Bundle.update` takes a newer bundle and refuses one that goes back in time or rewrites
what is held under the same version:

* trust list: ``ver`` lower than the held one, or equal with different claims;
* status list (per URI): ``iat`` lower than the held one, or equal with different claims; a
  held list cannot be dropped while the new trust list still names an issuer owning its URI
  (else an older list could come back in a later bundle);
* signed policies (per issuer): ``ver`` lower, or equal with different claims; held policies
  cannot be dropped while the new trust list still names their issuer.

Identical documents are accepted as "no change". Keys are identified by their full RFC 7638
thumbprint wherever identity decides trust; a ``kid`` only finds candidate keys.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from keys.errors import KeysError
from keys.jwk import (
    THUMBPRINT_LENGTH,
    PublicKey,
    is_thumbprint,
    key_thumbprint,
    public_jwk,
    public_key_from_jwk,
)
from keys.status_list import StatusListToken, read_status_list
from keys.store import write_file
from keys.trust_list import TrustedIssuer, TrustList, verify_trust_list
from verifier import _json
from verifier.errors import BundleError, VerifierError
from verifier.policy import (
    LocalPolicy,
    Policy,
    SignedPolicies,
    effective_policy,
    read_signed_policies,
)

BUNDLE_FORMAT = "fmcard-bundle/1"
MAX_BUNDLE_SIZE = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Bundle:
    """A verified bundle: pinned anchors, trust list, status lists by URI, and policies.

    ``policies`` are the effective policies of the services the bundle names (signed or
    shipped, made stricter by the unsigned section); :meth:`policy` answers for any service.
    """

    anchors: tuple[PublicKey, ...]
    trust_list: TrustList
    trust_list_token: str
    status_lists: dict[str, StatusListToken] = field(default_factory=dict)
    status_list_tokens: tuple[str, ...] = ()
    policies: dict[str, Policy] = field(default_factory=dict)
    signed_policies: tuple[SignedPolicies, ...] = ()
    unsigned_policies: tuple[LocalPolicy, ...] = ()

    @classmethod
    def from_json(
        cls,
        document: Any,
        *,
        at: datetime,
        pinned_anchors: tuple[PublicKey, ...] | None = None,
        current: Bundle | None = None,
        anchor_thumbprint: str | None = None,
    ) -> Bundle:
        """Verify and load a bundle document.

        ``pinned_anchors`` are the anchors the counter already trusts; without them (first
        install from a trusted medium) the bundle's own ``anchors`` are pinned.
        ``anchor_thumbprint`` (the full RFC 7638 thumbprint the bureau handed out) narrows the
        anchors to the one with that thumbprint *before* the trust list is checked: the
        trust list must be signed by that anchor, and only it is pinned. (Checking afterwards
        that the thumbprint is among the bundle's anchors is not enough: a forged bundle can
        list the genuine anchor beside its own and sign with its own.)
        """
        if not isinstance(document, dict) or document.get("format") != BUNDLE_FORMAT:
            raise BundleError(f"not an fmcard bundle (format must be {BUNDLE_FORMAT!r})")
        try:
            own = tuple(public_key_from_jwk(jwk) for jwk in document.get("anchors", []))
            anchors = pinned_anchors if pinned_anchors is not None else own
            if anchor_thumbprint is not None:
                anchors = _anchors_with_thumbprint(anchors, anchor_thumbprint)
            token = document["trust_list"]
            if not isinstance(token, str):
                raise BundleError("bundle trust_list must be a string")
            trust_list, signer = verify_trust_list(
                token,
                anchors=anchors,
                at=at,
                current=current.trust_list if current else None,
                allow_expired=current is None,
            )
            if key_thumbprint(signer) not in {key_thumbprint(anchor) for anchor in anchors}:
                # Signed by an anchor the held list announced: the anchor has rotated, and
                # from now on only the new one is pinned.
                anchors = (signer,)
            tokens = tuple(_list(document, "status_lists"))
            status_lists: dict[str, StatusListToken] = {}
            for status in (_read_status(t, trust_list, at) for t in tokens):
                if status_lists.setdefault(status.uri, status) is not status:
                    raise BundleError(f"bundle has two status lists for {status.uri}")
            signed = tuple(
                read_signed_policies(t, trust_list, at=at)
                for t in _list(document, "signed_policies")
            )
            unsigned = tuple(LocalPolicy.from_json(p) for p in _list(document, "policies"))
        except KeysError as exc:
            raise BundleError(f"bundle refused: {exc}") from None
        except BundleError:
            raise
        except VerifierError as exc:
            raise BundleError(f"bundle refused: {exc}") from None
        except (KeyError, TypeError) as exc:
            raise BundleError(f"bundle is malformed: {exc}") from None
        issuers = [s.issuer_id for s in signed]
        if len(set(issuers)) != len(issuers):
            raise BundleError("bundle has two policy tokens of one issuer")
        if current is not None:
            _refuse_older_status(current, status_lists, trust_list)
            _refuse_older_policies(current, signed, trust_list)
        services = {p.service for s in signed for p in s.policies} | {p.service for p in unsigned}
        policies = {
            service: effective_policy(service, signed=signed, local=unsigned)
            for service in sorted(services)
        }
        return cls(anchors, trust_list, token, status_lists, tokens, policies, signed, unsigned)

    @classmethod
    def load(
        cls,
        path: Path,
        *,
        at: datetime,
        pinned_anchors: tuple[PublicKey, ...] | None = None,
        anchor_thumbprint: str | None = None,
    ) -> Bundle:
        """Read and verify the bundle file at ``path``."""
        try:
            # Read at most one byte past the cap rather than trusting the size the file
            # system reports: /dev/zero, a FIFO or a file still growing says 0 (or less than
            # it holds), and reading it whole kept the command running, its memory growing.
            with path.open("rb") as file:
                data = file.read(MAX_BUNDLE_SIZE + 1)
            if len(data) > MAX_BUNDLE_SIZE:
                raise BundleError(f"{path} is larger than {MAX_BUNDLE_SIZE} bytes")
            document = _json.loads(data.decode("utf-8"))
        except FileNotFoundError:
            raise BundleError(f"no bundle at {path}") from None
        except (OSError, ValueError) as exc:
            raise BundleError(f"cannot read bundle {path}: {exc}") from None
        return cls.from_json(
            document, at=at, pinned_anchors=pinned_anchors, anchor_thumbprint=anchor_thumbprint
        )

    def update(self, document: Any, *, at: datetime) -> Bundle:
        """Return the bundle that ``document`` makes, verified against this one's anchors.

        Refuses an expired trust list and anything that goes back in time or rewrites a held
        version (see the module docstring); this bundle stays as it is whatever happens.
        """
        return Bundle.from_json(document, at=at, pinned_anchors=self.anchors, current=self)

    def require_anchor(self, thumbprint: str | None) -> None:
        """Refuse this bundle unless its pinned anchors are exactly the one with the full
        RFC 7638 ``thumbprint`` (``None``: no pin given). A short kid is not accepted: 48 bits
        can be ground. Load with ``anchor_thumbprint`` so that the trust list is checked
        against that anchor alone; this only confirms the outcome."""
        if thumbprint is None:
            return
        _check_thumbprint(thumbprint)
        found = sorted(key_thumbprint(key) for key in self.anchors)
        if found != [thumbprint]:
            raise BundleError(
                f"the bundle's trust anchor {', '.join(found)} is not the expected {thumbprint!r}"
            )

    def policy(self, service: str) -> Policy:
        """The policy for ``service``: the bundle's effective one, or the shipped default."""
        found = self.policies.get(service)
        return found if found is not None else effective_policy(service)

    def to_json(self) -> dict[str, Any]:
        unsigned: list[Policy | LocalPolicy] = list(self.unsigned_policies)
        if not unsigned and not self.signed_policies:  # a bundle built by hand
            unsigned = list(self.policies.values())
        out: dict[str, Any] = {
            "format": BUNDLE_FORMAT,
            "anchors": [public_jwk(key) for key in self.anchors],
            "trust_list": self.trust_list_token,
            "status_lists": list(self.status_list_tokens),
            "policies": [policy.to_json() for policy in unsigned],
        }
        if self.signed_policies:
            out["signed_policies"] = [signed.token for signed in self.signed_policies]
        return out

    def save(self, path: Path) -> None:
        write_file(path, (json.dumps(self.to_json(), indent=1) + "\n").encode("utf-8"))


def build_bundle_document(
    *,
    anchors: list[PublicKey],
    trust_list: str,
    status_lists: list[str],
    policies: list[Policy] | None = None,
    signed_policies: list[str] | None = None,
) -> dict[str, Any]:
    """Return a bundle document for the issuer to publish (it is verified when loaded).

    ``signed_policies`` are ``fmcard-policy+jwt`` tokens (:func:`verifier.policy.sign_policies`);
    ``policies`` travel unsigned and can therefore only make the counters' policies stricter.
    """
    document: dict[str, Any] = {
        "format": BUNDLE_FORMAT,
        "anchors": [public_jwk(key) for key in anchors],
        "trust_list": trust_list,
        "status_lists": status_lists,
        "policies": [policy.to_json() for policy in policies or []],
    }
    if signed_policies:
        document["signed_policies"] = list(signed_policies)
    return document


def _read_status(token: object, trust_list: TrustList, at: datetime) -> StatusListToken:
    """Verify a status list against the keys of the one issuer that owns its URI."""
    if not isinstance(token, str):
        raise BundleError("bundle status lists must be strings")
    keys = [
        key.verification_key
        for issuer in trust_list.issuers
        for key in issuer.keys
        if not key.is_compromised_at(at)
    ]
    status = read_status_list(token, keys=keys)
    owner = status_list_owner(trust_list, status.uri)
    if owner is None or not any(key.thumbprint == status.key_thumbprint for key in owner.keys):
        raise BundleError(f"status list {status.uri} is not signed by the issuer that owns it")
    return status


def status_list_owner(trust_list: TrustList, uri: str) -> TrustedIssuer | None:
    """The issuer whose status URI prefix is the longest prefix of ``uri``: a list under
    another issuer's nested prefix belongs to that issuer, not to the shorter prefix."""
    owners = [i for i in trust_list.issuers if uri.startswith(i.status_uri_prefix)]
    return max(owners, key=lambda issuer: len(issuer.status_uri_prefix), default=None)


def _list(document: dict[str, Any], name: str) -> list[Any]:
    value = document.get(name, [])
    if not isinstance(value, list):
        raise BundleError(f"bundle {name} must be a list")
    return value


def _refuse_older_policies(
    current: Bundle, new: tuple[SignedPolicies, ...], trust_list: TrustList
) -> None:
    """An issuer's policies only move forward, and once held they cannot be dropped while the
    trust list still names the issuer (an issuer withdraws its policies by signing an empty
    list); a different document under the held version is refused like an older one."""
    fresh = {signed.issuer_id: signed for signed in new}
    for held in current.signed_policies:
        candidate = fresh.get(held.issuer_id)
        if candidate is None:
            if trust_list.issuer(held.issuer_id) is None:
                continue  # the issuer is no longer trusted: its policies go with it
            raise BundleError(f"bundle drops the signed policies of {held.issuer_id}")
        if candidate.version < held.version:
            raise BundleError(
                f"policies of {held.issuer_id} version {candidate.version} are older than the "
                f"held version {held.version} (rollback)"
            )
        if candidate.version == held.version and candidate.to_claims() != held.to_claims():
            raise BundleError(
                f"different policies of {held.issuer_id} claim the held version {held.version}"
            )


def _refuse_older_status(
    current: Bundle, new: dict[str, StatusListToken], trust_list: TrustList
) -> None:
    """A status list only moves forward: ``iat`` is one-second precise, so a different list
    with the held ``iat`` is refused like an older one (else a list signed in the same second
    as a revocation could undo it). A held list cannot be dropped while its URI still has an
    owner, or an older list could come back in the bundle after."""
    for uri, held in current.status_lists.items():
        fresh = new.get(uri)
        if fresh is None:
            if status_list_owner(trust_list, uri) is None:
                continue  # no trusted issuer owns it any more
            raise BundleError(f"bundle drops the held status list {uri}")
        if fresh.issued_at < held.issued_at:
            raise BundleError(f"status list {uri} is older than the one held (rollback)")
        if fresh.issued_at == held.issued_at and not fresh.same_content(held):
            raise BundleError(
                f"a different status list {uri} claims the held issue time "
                f"{held.issued_at:%Y-%m-%d %H:%M:%S} UTC (rollback)"
            )


def _check_thumbprint(thumbprint: str) -> None:
    if not is_thumbprint(thumbprint):
        raise BundleError(
            f"the anchor thumbprint {thumbprint!r} is not a full RFC 7638 SHA-256 "
            f"thumbprint ({THUMBPRINT_LENGTH} base64url characters)"
        )


def _anchors_with_thumbprint(
    anchors: tuple[PublicKey, ...], thumbprint: str
) -> tuple[PublicKey, ...]:
    """The one anchor of ``anchors`` whose full thumbprint is ``thumbprint``, or refuse."""
    _check_thumbprint(thumbprint)
    chosen = tuple(key for key in anchors if key_thumbprint(key) == thumbprint)
    if not chosen:
        found = sorted(key_thumbprint(key) for key in anchors) or ["none"]
        raise BundleError(
            f"the bundle's trust anchor {', '.join(found)} is not the expected {thumbprint!r}"
        )
    return chosen[:1]
