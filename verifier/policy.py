"""What one kind of counter requires of a card.

A policy names the entitlement a counter checks (a hospital checks ``hc``), how old the
status list may be before the answer becomes STATUS_UNKNOWN (a bank wants a day, a hospital
can live with a week), and whether a portrait must be on the card.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from schemas.services import SERVICE_CODE_PATTERN
from verifier.errors import VerifierError

DEFAULT_MAX_STATUS_AGE = timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Policy:
    """Requirements of one counter type."""

    service: str
    max_status_age: timedelta = DEFAULT_MAX_STATUS_AGE
    require_portrait: bool = False

    def __post_init__(self) -> None:
        if not SERVICE_CODE_PATTERN.fullmatch(self.service):
            raise VerifierError(f"service code {self.service!r} is malformed")
        if self.max_status_age <= timedelta(0):
            raise VerifierError("max_status_age must be positive")

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "max_status_age_seconds": int(self.max_status_age.total_seconds()),
            "require_portrait": self.require_portrait,
        }

    @classmethod
    def from_json(cls, value: Any) -> Policy:
        if not isinstance(value, dict) or set(value) - {
            "service",
            "max_status_age_seconds",
            "require_portrait",
        }:
            raise VerifierError(
                "a policy must be {service, max_status_age_seconds, require_portrait}"
            )
        seconds = value.get("max_status_age_seconds", int(DEFAULT_MAX_STATUS_AGE.total_seconds()))
        if type(seconds) is not int or type(value.get("require_portrait", False)) is not bool:
            raise VerifierError("policy max_status_age_seconds must be an integer")
        if type(value.get("service")) is not str:
            raise VerifierError("policy service must be a string")
        return cls(
            service=value["service"],
            max_status_age=timedelta(seconds=seconds),
            require_portrait=value.get("require_portrait", False),
        )
