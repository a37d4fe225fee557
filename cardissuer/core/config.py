"""Service settings, from the environment (prefix ``FMCARD_``) or a ``.env`` file.

Reached through :func:`get_settings` (cached) so that tests can override it. In production
the service refuses to start with development keys or default secrets.
"""

from __future__ import annotations

import enum
from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEVELOPMENT_SESSION_SECRET = "development-session-secret-change-me-in-production"  # noqa: S105


class Environment(enum.StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class Settings(BaseSettings):
    """Everything the issuer service can be configured with."""

    model_config = SettingsConfigDict(env_prefix="FMCARD_", env_file=".env", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT
    database_url: str = Field(
        default="",
        description="SQLAlchemy URL: sqlite:///path or postgresql+psycopg://user@host/db "
        "(default: fmcard.db in the workspace)",
    )
    workspace: Path = Field(
        default=Path("fmcard-data"), description="directory of the key ring (keys/)"
    )
    session_secret: SecretStr = SecretStr(DEVELOPMENT_SESSION_SECRET)
    session_minutes: int = Field(default=30, ge=5, le=24 * 60)
    login_attempts_per_window: int = Field(default=5, ge=1)
    login_window_seconds: int = Field(default=300, ge=10)
    public_base_url: str = "https://fmcard.example"
    card_validity_days: int = Field(default=5 * 365, ge=1, le=20 * 365)
    status_list_size: int = Field(default=1 << 20, ge=1024)
    status_list_validity_hours: int = Field(default=48, ge=1)
    status_list_batch_seconds: int = Field(
        default=0,
        ge=0,
        le=300,
        description="sign a changed status list at most once in this many seconds (0: at the "
        "first request after each change); a revocation reaches counters up to this much later",
    )
    trust_list_validity_days: int = Field(default=30, ge=1)
    audit_checkpoint_every: int = Field(default=100, ge=1)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1024)
    max_photo_bytes: int = Field(default=1024 * 1024, ge=1024)
    service_catalogue: str = Field(
        default="hc,ed,tr,bk,ho,bz", description="comma-separated service codes that may be granted"
    )
    hsm_module: str | None = Field(
        default=None,
        description="PKCS#11 module: sign with the HSM key named by FMCARD_HSM_TOKEN and "
        "FMCARD_HSM_KEY, PIN from FMCARD_HSM_PIN_FILE or FMCARD_HSM_PIN",
    )
    workers: int = Field(default=1, ge=1, le=64)
    forwarded_allow_ips: str = Field(
        default="",
        description="comma-separated addresses (or *) of the reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed; empty: none, the client address "
        "is the connection's",
    )
    expire_cards_every_minutes: int = Field(
        default=60,
        ge=0,
        le=7 * 24 * 60,
        description="how often the service marks cards past their expiry as expired; 0: never "
        "(then run `fmcard db expire-cards` from a timer)",
    )
    dev_passphrase_file: str = "dev-passphrase.txt"  # noqa: S105 - a file name
    # --- wallet passes and the holder's page (cardissuer.wallet) ---------------------------
    # Without the certificate and key paths, development generates stand-ins in the workspace
    # (wallet-dev/); production refuses to make passes until they are configured.
    apple_pass_type_identifier: str = "pass.example.fmcard.development"  # noqa: S105 - an id
    apple_team_identifier: str = "DEVTEAM000"
    apple_signer_certificate: Path | None = Field(
        default=None, description="PEM certificate of the Pass Type ID (from Apple)"
    )
    apple_signer_key: Path | None = Field(default=None, description="PEM private key of it")
    apple_signer_key_password: SecretStr | None = None
    apple_wwdr_certificate: Path | None = Field(
        default=None, description="PEM of Apple's WWDR intermediate certificate"
    )
    apple_web_service_url: str | None = Field(
        default=None,
        description="https URL of the pass update web service (omitted from passes if unset)",
    )
    google_issuer_id: str = "3388000000000000000"
    google_class_suffix: str = "fmcard"
    google_service_account_file: Path | None = Field(
        default=None, description="service-account JSON with client_email and private_key"
    )
    google_origins: str = Field(
        default="", description="comma-separated origins allowed to show the save button"
    )
    holder_link_hours: int = Field(default=72, ge=1, le=30 * 24)
    # --- mail and the holder portal (cardissuer.mail, cardissuer.portal) --------------------
    mail_url: str = Field(
        default="",
        description="where mail goes: smtp://host:port, smtp+starttls://user@host:587, "
        "smtps://host:465 or file:///outbox-directory (empty: <workspace>/outbox in "
        "development; production refuses to send)",
    )
    mail_password: SecretStr | None = None
    mail_from: str = "fmcard@fmcard.example"
    portal_office: str = Field(
        default="",
        description="code of the office that reviews online applications (empty: the first office)",
    )
    one_time_code_minutes: int = Field(default=10, ge=1, le=60)
    one_time_codes_per_address_per_hour: int = Field(default=5, ge=1)
    one_time_codes_per_client_per_hour: int = Field(default=20, ge=1)
    portal_open_applications_per_address: int = Field(
        default=3,
        ge=1,
        description="open applications (submitted, under review, information needed) one "
        "address may have at once; never more than one open first-card application",
    )
    application_retention_days: int = Field(
        default=90,
        ge=1,
        description="days after which the personal data of a rejected, withdrawn or abandoned "
        "application is deleted",
    )
    reminder_days: str = Field(
        default="60,14", description="comma-separated days before expiry to remind the holder"
    )

    @field_validator("reminder_days")
    @classmethod
    def _reminder_days(cls, value: str) -> str:
        for day in value.split(","):
            if day.strip() and not (day.strip().isdigit() and 0 < int(day) <= 366):
                raise ValueError("FMCARD_REMINDER_DAYS must be days between 1 and 366, e.g. 60,14")
        return value

    @model_validator(mode="after")
    def _default_database(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.workspace / 'fmcard.db'}"
        return self

    @model_validator(mode="after")
    def _refuse_development_secrets_in_production(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            if self.session_secret.get_secret_value() == DEVELOPMENT_SESSION_SECRET:
                raise ValueError("FMCARD_SESSION_SECRET must be set in production")
            if len(self.session_secret.get_secret_value()) < 32:
                raise ValueError("FMCARD_SESSION_SECRET must have at least 32 characters")
            # The CLI's name too: renaming the setting must not hide an 'init --dev' workspace.
            for name in dict.fromkeys((self.dev_passphrase_file, "dev-passphrase.txt")):
                if (self.workspace / name).exists():
                    raise ValueError(
                        f"{self.workspace} holds development keys ({name}); "
                        "production needs keys protected by a real passphrase or an HSM"
                    )
        return self

    @property
    def reminder_offsets(self) -> tuple[int, ...]:
        """Days before expiry, largest first; a value that is not a positive number is refused
        when the service starts (see :func:`get_settings`)."""
        offsets = {int(day) for day in self.reminder_days.split(",") if day.strip()}
        return tuple(sorted(offsets, reverse=True))

    @property
    def services(self) -> tuple[str, ...]:
        return tuple(code.strip() for code in self.service_catalogue.split(",") if code.strip())

    @property
    def google_origin_list(self) -> list[str]:
        return [origin.strip() for origin in self.google_origins.split(",") if origin.strip()]

    @property
    def status_uri_prefix(self) -> str:
        return self.public_base_url.rstrip("/") + "/status/"


class _EnvironmentSetting(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FMCARD_", env_file=".env", extra="ignore")

    environment: Environment = Environment.DEVELOPMENT


def configured_environment() -> Environment:
    """The environment alone, as :class:`Settings` would read it, without checking the other
    settings: for commands that must refuse production whatever else is configured. A value
    that is not an environment counts as production (the cautious reading)."""
    try:
        return _EnvironmentSetting().environment
    except ValidationError:
        return Environment.PRODUCTION


@lru_cache
def get_settings() -> Settings:
    return Settings()
