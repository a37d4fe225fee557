"""What one kind of counter requires of a card, and who may say so.

A :class:`Policy` names the entitlement a counter checks (a hospital checks ``hc``), how old
the status list may be before the answer becomes STATUS_UNKNOWN (a bank wants a day, a
hospital can live with a week), whether a portrait must be on the card, which of the
card's fields the counter's screen shows (a bus counter needs the name, the portrait and the
entitlement, not the birth date), whether a printed card is accepted or only a live phone
card (``accept``), and how old a phone's device proof may be (``max_proof_age``).

Where a counter's policy comes from, strongest first (``docs/FORMAT.md`` section 10):

1. **the issuer**: policies signed as an ``fmcard-policy+jwt`` by a key of an issuer in the
   trust list and delivered in the bundle (:class:`SignedPolicies`). They replace the
   defaults; when several issuers sign a policy for one service, the strictest of them
   applies;
2. **the package**: one policy per counter type, shipped as JSON under
   ``verifier/policies/`` (:func:`counter_types`, :func:`default_policy`);
3. **unsigned restrictions** (:class:`LocalPolicy`): the station's own ``--policy`` file and
   the bundle's unsigned ``policies`` section. Nothing vouches for them, so they can only make
   a policy **stricter** (shorter status age, portrait required, fewer fields shown); an
   attempt to loosen is ignored and reported by :meth:`LocalPolicy.loosenings`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from keys.errors import KeysError
from keys.jwk import key_thumbprint
from keys.jws import VerificationKey, decode_jwt, encode_jwt
from keys.signer import Signer
from keys.trust_list import TrustList
from schemas.services import SERVICE_CODE_PATTERN
from verifier import _json
from verifier.errors import VerifierError

DEFAULT_MAX_STATUS_AGE = timedelta(days=7)
MAX_POLICY_STATUS_AGE = timedelta(days=31)
"""No policy, signed or not, may accept a status list older than this."""
POLICY_TYP = "fmcard-policy+jwt"
MAX_LOCAL_POLICY_FILE = 64 * 1024

SHOWABLE_FIELDS = (
    "names",
    "portrait",
    "code",
    "nationality",
    "birth_date",
    "card_dates",
    "entitlement",
    "issuer",
)
"""Card fields a counter screen can show. ``names`` (Latin, native and Chinese) are always
shown: a verdict must say whose card it is."""
ALL_FIELDS = frozenset(SHOWABLE_FIELDS)
_POLICY_MEMBERS = frozenset(
    {"service", "max_status_age_seconds", "require_portrait", "show", "accept",
     "max_proof_age_seconds"}
)  # fmt: skip
LEVELS = ("live", "printed")
"""Presentation levels a policy can accept (``docs/FORMAT.md`` 11.5): ``live`` always;
``printed`` unless the service asks for the phone. ``copy`` is never accepted."""
ALL_LEVELS = frozenset(LEVELS)
DEFAULT_MAX_PROOF_AGE = timedelta(seconds=30)
MIN_PROOF_AGE = timedelta(seconds=10)
"""One time slot: a shorter window would refuse a proof made at the end of its slot."""
MAX_PROOF_AGE = timedelta(seconds=300)


@dataclass(frozen=True, slots=True)
class Policy:
    """Requirements of one counter type."""

    service: str
    max_status_age: timedelta = DEFAULT_MAX_STATUS_AGE
    require_portrait: bool = False
    show: frozenset[str] = ALL_FIELDS
    accept: frozenset[str] = ALL_LEVELS
    max_proof_age: timedelta = DEFAULT_MAX_PROOF_AGE

    def __post_init__(self) -> None:
        if not isinstance(self.service, str) or not SERVICE_CODE_PATTERN.fullmatch(self.service):
            raise VerifierError(f"service code {self.service!r} is malformed")
        if not timedelta(0) < self.max_status_age <= MAX_POLICY_STATUS_AGE:
            raise VerifierError(
                f"max_status_age must be positive and at most {MAX_POLICY_STATUS_AGE.days} days"
            )
        object.__setattr__(self, "show", _fields(self.show))
        object.__setattr__(self, "accept", _levels(self.accept))
        if not MIN_PROOF_AGE <= self.max_proof_age <= MAX_PROOF_AGE:
            raise VerifierError("max_proof_age must be between 10 and 300 seconds")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "service": self.service,
            "max_status_age_seconds": int(self.max_status_age.total_seconds()),
            "require_portrait": self.require_portrait,
        }
        if self.show != ALL_FIELDS:
            out["show"] = _ordered(self.show)
        if self.accept != ALL_LEVELS:
            out["accept"] = [level for level in LEVELS if level in self.accept]
        if self.max_proof_age != DEFAULT_MAX_PROOF_AGE:
            out["max_proof_age_seconds"] = int(self.max_proof_age.total_seconds())
        return out

    @classmethod
    def from_json(cls, value: Any) -> Policy:
        """Read a complete policy: members not given take the defaults above."""
        members = _policy_members(value)
        return cls(
            service=members["service"],
            max_status_age=members.get("max_status_age", DEFAULT_MAX_STATUS_AGE),
            require_portrait=members.get("require_portrait", False),
            show=members.get("show", ALL_FIELDS),
            accept=members.get("accept", ALL_LEVELS),
            max_proof_age=members.get("max_proof_age", DEFAULT_MAX_PROOF_AGE),
        )

    def stricter(self, other: Policy) -> Policy:
        """The policy that satisfies both ``self`` and ``other`` (same service)."""
        if other.service != self.service:
            raise VerifierError(f"cannot merge a {other.service!r} policy into {self.service!r}")
        return Policy(
            self.service,
            min(self.max_status_age, other.max_status_age),
            self.require_portrait or other.require_portrait,
            self.show & other.show,
            self.accept & other.accept,
            min(self.max_proof_age, other.max_proof_age),
        )


@dataclass(frozen=True, slots=True)
class LocalPolicy:
    """An unsigned restriction of one service's policy: members left out are no opinion."""

    service: str
    max_status_age: timedelta | None = None
    require_portrait: bool | None = None
    show: frozenset[str] | None = None
    accept: frozenset[str] | None = None
    max_proof_age: timedelta | None = None

    def __post_init__(self) -> None:
        # Validate through Policy, which holds the rules.
        Policy(
            self.service,
            self.max_status_age or DEFAULT_MAX_STATUS_AGE,
            bool(self.require_portrait),
            ALL_FIELDS if self.show is None else self.show,
            ALL_LEVELS if self.accept is None else self.accept,
            self.max_proof_age or DEFAULT_MAX_PROOF_AGE,
        )
        if self.show is not None:
            object.__setattr__(self, "show", _fields(self.show))
        if self.accept is not None:
            object.__setattr__(self, "accept", _levels(self.accept))

    @classmethod
    def from_json(cls, value: Any) -> LocalPolicy:
        members = _policy_members(value)
        return cls(
            service=members["service"],
            max_status_age=members.get("max_status_age"),
            require_portrait=members.get("require_portrait"),
            show=members.get("show"),
            accept=members.get("accept"),
            max_proof_age=members.get("max_proof_age"),
        )

    @classmethod
    def of(cls, policy: Policy | LocalPolicy) -> LocalPolicy:
        if isinstance(policy, LocalPolicy):
            return policy
        return cls(
            policy.service,
            policy.max_status_age,
            policy.require_portrait,
            policy.show,
            policy.accept,
            policy.max_proof_age,
        )

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"service": self.service}
        if self.max_status_age is not None:
            out["max_status_age_seconds"] = int(self.max_status_age.total_seconds())
        if self.require_portrait is not None:
            out["require_portrait"] = self.require_portrait
        if self.show is not None:
            out["show"] = _ordered(self.show)
        if self.accept is not None:
            out["accept"] = [level for level in LEVELS if level in self.accept]
        if self.max_proof_age is not None:
            out["max_proof_age_seconds"] = int(self.max_proof_age.total_seconds())
        return out

    def apply(self, policy: Policy) -> Policy:
        """``policy`` made stricter by this restriction, never looser."""
        if policy.service != self.service:
            return policy
        return Policy(
            policy.service,
            min(policy.max_status_age, self.max_status_age or policy.max_status_age),
            policy.require_portrait or bool(self.require_portrait),
            policy.show if self.show is None else policy.show & self.show,
            policy.accept if self.accept is None else policy.accept & self.accept,
            min(policy.max_proof_age, self.max_proof_age or policy.max_proof_age),
        )

    def loosenings(self, policy: Policy) -> list[str]:
        """What this restriction asks for that ``policy`` does not allow (and is ignored)."""
        if policy.service != self.service:
            return []
        notes = []
        if self.max_status_age is not None and self.max_status_age > policy.max_status_age:
            notes.append(
                f"{self.service}: max_status_age_seconds "
                f"{int(self.max_status_age.total_seconds())} is longer than the "
                f"{int(policy.max_status_age.total_seconds())} allowed; kept "
                f"{int(policy.max_status_age.total_seconds())}"
            )
        if self.require_portrait is False and policy.require_portrait:
            notes.append(f"{self.service}: the portrait stays required")
        if self.show is not None and self.show - policy.show:
            extra = ", ".join(_ordered(self.show - policy.show))
            notes.append(f"{self.service}: not shown, the policy does not allow it: {extra}")
        if self.accept is not None and self.accept - policy.accept:
            notes.append(f"{self.service}: printed cards stay refused, the policy wants live")
        if self.max_proof_age is not None and self.max_proof_age > policy.max_proof_age:
            notes.append(
                f"{self.service}: max_proof_age_seconds "
                f"{int(self.max_proof_age.total_seconds())} is longer than the "
                f"{int(policy.max_proof_age.total_seconds())} allowed; kept "
                f"{int(policy.max_proof_age.total_seconds())}"
            )
        return notes


@dataclass(frozen=True, slots=True)
class CounterType:
    """A kind of counter and the policy the package ships for it."""

    name: str
    policy: Policy
    why: str

    @property
    def service(self) -> str:
        return self.policy.service


@cache
def counter_types() -> dict[str, CounterType]:
    """The counter types shipped with the package (``verifier/policies/*.json``)."""
    types: dict[str, CounterType] = {}
    folder = resources.files("verifier").joinpath("policies")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        document = json.loads(entry.read_text(encoding="utf-8"))
        name, why = document.pop("counter", None), document.pop("why", "")
        if name != entry.name.removesuffix(".json") or not isinstance(why, str):
            raise VerifierError(f"policy file {entry.name} must name its counter type")
        types[name] = CounterType(name, Policy.from_json(document), why)
    return types


def counter_policy(name: str) -> Policy:
    """The shipped policy of counter type ``name`` (``hospital``, ``bank``, ...)."""
    try:
        return counter_types()[name].policy
    except KeyError:
        known = ", ".join(sorted(counter_types()))
        raise VerifierError(f"unknown counter type {name!r}; known: {known}") from None


def default_policy(service: str) -> Policy:
    """The shipped policy for ``service``: its counter type's, else the general default."""
    for counter in counter_types().values():
        if counter.service == service:
            return counter.policy
    return Policy(service)


def load_local_policies(path: Path) -> list[LocalPolicy]:
    """Read a station's restrictions: one policy object or a list of them."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_LOCAL_POLICY_FILE + 1)
        if len(data) > MAX_LOCAL_POLICY_FILE:
            raise VerifierError(f"{path} is larger than {MAX_LOCAL_POLICY_FILE} bytes")
        document = _json.loads(data.decode("utf-8"))
    except OSError as exc:
        raise VerifierError(f"cannot read policy file {path}: {exc.strerror}") from None
    except ValueError as exc:
        raise VerifierError(f"policy file {path} is not JSON: {exc}") from None
    items = document if isinstance(document, list) else [document]
    return [LocalPolicy.from_json(item) for item in items]


# -- signed policies -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedPolicies:
    """An issuer's verified ``fmcard-policy+jwt``: its policies for the counters."""

    issuer_id: str
    version: int
    issued_at: datetime
    policies: tuple[Policy, ...]
    kid: str
    token: str = field(repr=False)

    def to_claims(self) -> dict[str, Any]:
        return _policy_claims(self.issuer_id, self.version, self.issued_at, self.policies)


def sign_policies(
    policies: Iterable[Policy],
    *,
    issuer_id: str,
    version: int,
    issued_at: datetime,
    signer: Signer,
) -> str:
    """Return the issuer's policies as an ``fmcard-policy+jwt`` signed by ``signer`` (a key
    of ``issuer_id`` in the trust list)."""
    claims = _policy_claims(issuer_id, version, issued_at, tuple(policies))
    _check_policy_claims(claims)
    return encode_jwt(claims, signer, typ=POLICY_TYP)


def read_signed_policies(token: Any, trust_list: TrustList, *, at: datetime) -> SignedPolicies:
    """Verify a policy token: signed by a key, not compromised at ``at``, of the issuer its
    ``iss`` names in ``trust_list``. Raises :class:`VerifierError`."""
    if not isinstance(token, str):
        raise VerifierError("signed policies must be a string (a compact JWS)")
    keys = [
        VerificationKey(key.kid, key.public_key)
        for issuer in trust_list.issuers
        for key in issuer.keys
        if not key.is_compromised_at(at)
    ]
    try:
        claims, signer = decode_jwt(token, typ=POLICY_TYP, keys=keys)
    except KeysError as exc:
        raise VerifierError(f"signed policies refused: {exc}") from None
    _check_policy_claims(claims)
    issuer = trust_list.issuer(claims["iss"])
    signed_by = key_thumbprint(signer.public_key)
    if issuer is None or not any(key.thumbprint == signed_by for key in issuer.keys):
        raise VerifierError(f"signed policies are not signed by a key of {claims['iss']!r}")
    policies = tuple(Policy.from_json(p) for p in claims["policies"])
    return SignedPolicies(
        issuer_id=claims["iss"],
        version=claims["ver"],
        issued_at=datetime.fromtimestamp(claims["iat"], UTC),
        policies=policies,
        kid=signer.kid,
        token=token,
    )


def effective_policy(
    service: str,
    *,
    signed: Iterable[SignedPolicies] = (),
    local: Iterable[LocalPolicy | Policy] = (),
) -> Policy:
    """The policy a counter of ``service`` applies: the issuers' (strictest of them) or the
    shipped default, then made stricter by every local restriction."""
    issued = [p for s in signed for p in s.policies if p.service == service]
    policy = issued[0] if issued else default_policy(service)
    for other in issued[1:]:
        policy = policy.stricter(other)
    for restriction in local:
        policy = LocalPolicy.of(restriction).apply(policy)
    return policy


# -- helpers -------------------------------------------------------------------------------


def _fields(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise VerifierError("policy 'show' must be a list of field names")
    fields = frozenset(value)
    unknown = sorted(fields - ALL_FIELDS)
    if unknown:
        raise VerifierError(
            f"policy 'show' names an unknown field {unknown[0]!r}; "
            f"known: {', '.join(SHOWABLE_FIELDS)}"
        )
    if "names" not in fields:
        raise VerifierError("policy 'show' must include 'names': a verdict says whose card")
    return fields


def _levels(value: Iterable[str]) -> frozenset[str]:
    if isinstance(value, str):
        raise VerifierError("policy 'accept' must be a list of levels")
    levels = frozenset(value)
    if not levels <= ALL_LEVELS or "live" not in levels:
        raise VerifierError(
            "policy 'accept' is ['live'] or ['live', 'printed']: a live phone card is always "
            "accepted, a copy never"
        )
    return levels


def _distinct_names(value: Any, member: str, nouns: str, noun: str) -> list[str]:
    """A policy member that is a list of names (``show``, ``accept``): strings, none twice."""
    if not isinstance(value, list) or not all(type(name) is str for name in value):
        raise VerifierError(f"policy {member!r} must be a list of {nouns}")
    if len(set(value)) != len(value):
        raise VerifierError(f"policy {member!r} names a {noun} twice")
    return value


def _ordered(fields: frozenset[str]) -> list[str]:
    return [name for name in SHOWABLE_FIELDS if name in fields]


def _policy_members(value: Any) -> dict[str, Any]:
    """Check a policy object's members and types; return them in Python form."""
    if not isinstance(value, dict) or set(value) - _POLICY_MEMBERS:
        raise VerifierError(
            "a policy has only service, max_status_age_seconds, require_portrait, show, "
            "accept and max_proof_age_seconds"
        )
    if type(value.get("service")) is not str:
        raise VerifierError("policy service must be a string")
    members: dict[str, Any] = {"service": value["service"]}
    if "max_status_age_seconds" in value:
        seconds = value["max_status_age_seconds"]
        if type(seconds) is not int:
            raise VerifierError("policy max_status_age_seconds must be an integer")
        if not 0 < seconds <= MAX_POLICY_STATUS_AGE.total_seconds():
            raise VerifierError(
                f"policy max_status_age_seconds must be between 1 and "
                f"{int(MAX_POLICY_STATUS_AGE.total_seconds())}"
            )
        members["max_status_age"] = timedelta(seconds=seconds)
    if "require_portrait" in value:
        if type(value["require_portrait"]) is not bool:
            raise VerifierError("policy require_portrait must be true or false")
        members["require_portrait"] = value["require_portrait"]
    if "show" in value:
        members["show"] = _fields(_distinct_names(value["show"], "show", "field names", "field"))
    if "accept" in value:
        members["accept"] = _levels(_distinct_names(value["accept"], "accept", "levels", "level"))
    if "max_proof_age_seconds" in value:
        seconds = value["max_proof_age_seconds"]
        if (
            type(seconds) is not int
            or not MIN_PROOF_AGE.seconds <= seconds <= MAX_PROOF_AGE.seconds
        ):
            raise VerifierError("policy max_proof_age_seconds must be an integer from 10 to 300")
        members["max_proof_age"] = timedelta(seconds=seconds)
    return members


def _policy_claims(
    issuer_id: str, version: int, issued_at: datetime, policies: tuple[Policy, ...]
) -> dict[str, Any]:
    return {
        "iss": issuer_id,
        "ver": version,
        "iat": int(issued_at.timestamp()),
        "policies": [policy.to_json() for policy in policies],
    }


def _check_policy_claims(claims: dict[str, Any]) -> None:
    members = {"iss", "ver", "iat", "policies"}
    if set(claims) != members:
        raise VerifierError("signed policies must have exactly iss, ver, iat and policies")
    if type(claims["iss"]) is not str or not claims["iss"]:
        raise VerifierError("signed policies 'iss' must name an issuer")
    if type(claims["ver"]) is not int or claims["ver"] < 1:
        raise VerifierError("signed policies 'ver' must be a positive integer")
    if type(claims["iat"]) is not int or not 0 <= claims["iat"] < 2**33:
        raise VerifierError("signed policies 'iat' must be integer seconds since 1970")
    policies = claims["policies"]
    if not isinstance(policies, list) or len(policies) > 64:
        raise VerifierError("signed policies 'policies' must be a list of at most 64")
    services = [p.get("service") if isinstance(p, dict) else None for p in policies]
    if len(set(services)) != len(services):
        raise VerifierError("signed policies name a service twice")
    for policy in policies:
        Policy.from_json(policy)
