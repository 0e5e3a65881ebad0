"""Settings: one object, read from the environment and `.env`, validated once.

Every setting is documented in `.env.example`. In production and staging (production's rules,
its own database) the service refuses to start when a required setting is missing, a secret is
a placeholder or too short, or the database URI names a remote host without TLS or turns off
certificate checks; the refusal lists every problem by setting name. Any environment refuses a
malformed value (an encryption key that is not a Fernet key, an unknown log level...), also by
setting name: `python -m backend` prints them on one line and exits 2.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import logging
import re
from datetime import time
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal, Self
from urllib.parse import parse_qs, urlsplit

from email_validator import EmailNotValidError, validate_email
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from backend.models._types import EMAIL_PATTERN

REPO_ROOT = Path(__file__).resolve().parents[1]

#: The documented development key shared by `make bridge` and `make sync`; refused in production.
DEV_BRIDGE_API_KEY = "fidus-dev-bridge-key-not-for-production"

_PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "placeholder", "example", "secret",
                        "not-for-production", "dev-only", "xxxx")
_MIN_SECRET_LENGTH = 32
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
#: Query options that turn off the checks TLS exists for; production refuses them.
_INSECURE_TLS_OPTIONS = ("tlsInsecure", "tlsAllowInvalidCertificates",
                         "tlsAllowInvalidHostnames")
_JWT_ALGORITHMS = ("HS256", "HS384", "HS512")


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    STAGING = "staging"
    PRODUCTION = "production"


class SettingsProblem(ValueError):
    """A setting the process cannot run with, found after the settings loaded (at connect)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env", env_file_encoding="utf-8", extra="ignore", hide_input_in_errors=True
    )

    fidus_env: Environment = Environment.DEVELOPMENT
    log_level: str = "INFO"
    log_json: bool | None = None

    # Database
    mongodb_uri: SecretStr | None = None
    mongodb_database: str | None = None
    mongodb_app_name: str = "fidus-backend"
    mongodb_min_pool_size: int = Field(default=10, ge=0)
    mongodb_max_pool_size: int = Field(default=50, ge=1)
    mongodb_connect_timeout_ms: int = Field(default=5000, ge=100)
    mongodb_server_selection_timeout_ms: int = Field(default=5000, ge=100)
    mongodb_socket_timeout_ms: int = Field(default=10000, ge=100)
    mongodb_connect_attempts: int = Field(default=3, ge=1, le=10)
    embedded_db_path: Path = REPO_ROOT / "var" / "fidus_development.sqlite3"
    #: How often the API process and the worker copy pending audit records into audit_log.
    audit_relay_interval_seconds: float = Field(default=5.0, gt=0, le=60)

    # Security
    jwt_secret: SecretStr | None = None
    jwt_algorithm: str = "HS256"
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=7, ge=1, le=90)
    field_encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    # Sign-in lockout: failures of one account from one source lock that pair; failures of one
    # account from all sources lock the account; failures from one source over all accounts
    # lock the source. Each lock lasts LOGIN_LOCKOUT_MINUTES and answers like a wrong password.
    login_max_failures: int = Field(default=5, ge=1, le=1000)
    login_account_max_failures: int = Field(default=20, ge=1, le=1000)
    login_source_max_failures: int = Field(default=30, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)
    login_ip_max_attempts_per_minute: int = Field(default=20, ge=1)
    # A session ends this long after sign-in however often it is refreshed.
    session_absolute_days: int = Field(default=30, ge=1, le=365)
    # Proxies whose X-Forwarded-For is believed (addresses or networks, comma-separated; "*"
    # for any). Empty: the header is ignored and the peer address is the client's.
    forwarded_allow_ips: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Google sign-in for admins
    google_client_id: str | None = None
    google_admin_emails: Annotated[list[str], NoDecode] = Field(default_factory=list)
    google_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"

    # First admin
    fidus_bootstrap_admin_email: str | None = None
    fidus_bootstrap_admin_password: SecretStr | None = None

    # Documents
    document_storage: str = "gridfs"
    document_max_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    # Largest request body other than an upload (JSON); uploads may be DOCUMENT_MAX_BYTES.
    request_max_bytes: int = Field(default=1024 * 1024, ge=1024)

    # MT5 bridge and sync
    mt5_bridge_url: str = "http://127.0.0.1:8100"
    mt5_bridge_api_key: SecretStr = SecretStr(DEV_BRIDGE_API_KEY)
    mt5_bridge_timeout_seconds: float = Field(default=10.0, gt=0)
    sync_interval_seconds: int = Field(default=300, ge=5)
    sync_concurrency: int = Field(default=10, ge=1, le=200)
    sync_stale_after_minutes: int = Field(default=30, ge=1)
    sync_lease_seconds: int = Field(default=120, ge=5)

    # Backups (backend/ops/backup.py, backup_schedule.py, restore_drill.py)
    backup_encryption_key: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    backup_directory: Path = REPO_ROOT / "var" / "backups"
    backup_schedule_enabled: bool = True
    backup_at_utc: time = time(2, 0)
    backup_interval_hours: int = Field(default=24, ge=1, le=24)
    backup_keep_daily: int = Field(default=30, ge=1)
    backup_keep_monthly: int = Field(default=12, ge=0)
    backup_retry_minutes: int = Field(default=30, ge=1)
    backup_lease_seconds: int = Field(default=600, ge=30)
    restore_drill_weekday: Weekday = "sunday"
    restore_drill_at_utc: time = time(3, 0)

    # Client statements
    fund_manager_name: str = Field(default="Fidus Capital", min_length=1, max_length=120)
    statements_dir: Path = Field(default=REPO_ROOT / "var" / "statements")

    @field_validator("field_encryption_keys", "google_admin_emails", "backup_encryption_key",
                     "forwarded_allow_ips", mode="before")
    @classmethod
    def _split_comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("backup_interval_hours")
    @classmethod
    def _interval_divides_a_day(cls, value: int) -> int:
        if 24 % value:
            raise ValueError("BACKUP_INTERVAL_HOURS must divide 24 (1, 2, 3, 4, 6, 8, 12 or 24)")
        return value

    @field_validator("backup_at_utc", "restore_drill_at_utc")
    @classmethod
    def _utc_time_of_day(cls, value: time) -> time:
        if value.tzinfo is not None and value.utcoffset():
            raise ValueError("give the time of day in UTC, without an offset")
        return value.replace(tzinfo=None, second=0, microsecond=0)

    @field_validator("backup_encryption_key")
    @classmethod
    def _backup_keys_are_aes_keys(cls, value: list[SecretStr]) -> list[SecretStr]:
        for index, key in enumerate(value):
            problem = backup_key_problem(key.get_secret_value())
            if problem:
                raise ValueError(f"BACKUP_ENCRYPTION_KEY[{index}] {problem}")
        return value
    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: object) -> object:
        return value.strip().upper() if isinstance(value, str) else value

    @property
    def database_name(self) -> str:
        return self.mongodb_database or f"fidus_{self.fidus_env.value}"

    @property
    def is_production(self) -> bool:
        """Production's rules: in production, and in staging, which rehearses it."""
        return self.fidus_env in (Environment.PRODUCTION, Environment.STAGING)

    @property
    def uses_embedded_database(self) -> bool:
        return self.mongodb_uri is None and not self.is_production

    @property
    def logs_as_json(self) -> bool:
        return self.is_production if self.log_json is None else self.log_json

    def value_problems(self) -> list[str]:
        """Values no environment can run with, by setting name."""
        problems: list[str] = []
        for index, key in enumerate(self.field_encryption_keys):
            if not _is_fernet_key(key.get_secret_value()):
                problems.append(
                    f"FIELD_ENCRYPTION_KEYS[{index}] is not a Fernet key (32 bytes in url-safe "
                    "base64; make one with cryptography's Fernet.generate_key())")
        email = self.fidus_bootstrap_admin_email
        if email is not None:
            try:
                # The rules an admin's e-mail meets when the account is created.
                validate_email(email, check_deliverability=False)
                if re.fullmatch(EMAIL_PATTERN, email) is None:
                    raise EmailNotValidError("it has characters the platform cannot store")
            except EmailNotValidError as error:
                problems.append(f"FIDUS_BOOTSTRAP_ADMIN_EMAIL is not a usable e-mail address "
                                f"({error})")
        password = self.fidus_bootstrap_admin_password
        if password is not None and not 8 <= len(password.get_secret_value()) <= 128:
            problems.append("FIDUS_BOOTSTRAP_ADMIN_PASSWORD must have 8 to 128 characters")
        if not isinstance(logging.getLevelNamesMapping().get(self.log_level), int):
            problems.append(f"LOG_LEVEL {self.log_level!r} is not a log level "
                            "(DEBUG, INFO, WARNING, ERROR)")
        for entry in self.forwarded_allow_ips:
            if entry != "*":
                try:
                    ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    problems.append(f"FORWARDED_ALLOW_IPS entry {entry!r} is not an address "
                                    "or network")
        if self.jwt_algorithm not in _JWT_ALGORITHMS:
            problems.append(f"JWT_ALGORITHM {self.jwt_algorithm!r} is not one of "
                            f"{', '.join(_JWT_ALGORITHMS)} (tokens are signed with JWT_SECRET)")
        return problems

    def production_problems(self) -> list[str]:
        """Every reason these settings are unfit for production, by setting name."""
        problems: list[str] = []
        if self.mongodb_uri is None:
            problems.append("MONGODB_URI is missing (production never uses the embedded database)")
        else:
            problems.extend(uri_tls_problems(self.mongodb_uri.get_secret_value(), production=True))
        problems.extend(_secret_problems("JWT_SECRET", self.jwt_secret))
        if not self.field_encryption_keys:
            problems.append("FIELD_ENCRYPTION_KEYS is missing")
        for index, key in enumerate(self.field_encryption_keys):
            problems.extend(_secret_problems(f"FIELD_ENCRYPTION_KEYS[{index}]", key))
        problems.extend(_secret_problems("MT5_BRIDGE_API_KEY", self.mt5_bridge_api_key))
        if not self.backup_encryption_key:
            problems.append("BACKUP_ENCRYPTION_KEY is missing (backups hold client data)")
        if self.fidus_bootstrap_admin_password is not None:
            problems.extend(
                _secret_problems(
                    "FIDUS_BOOTSTRAP_ADMIN_PASSWORD", self.fidus_bootstrap_admin_password, 12
                )
            )
        return problems

    @model_validator(mode="after")
    def _refuse_unusable(self) -> Self:
        problems = self.value_problems()
        if self.is_production:
            problems.extend(p for p in self.production_problems() if p not in problems)
        if problems:
            raise ValueError(f"refusing to start in {self.fidus_env.value}: "
                             + "; ".join(problems))
        return self


def describe_problems(error: ValidationError) -> str:
    """Every problem of a settings `ValidationError` on one line, each led by its setting's
    environment name (`FIELD_ENCRYPTION_KEYS: ...`); never the offending value of a secret."""
    parts: list[str] = []
    for problem in error.errors(include_url=False, include_input=False):
        message = str(problem.get("msg", "")).removeprefix("Value error, ")
        loc = [str(part) for part in problem.get("loc", ()) if not isinstance(part, int)]
        parts.append(f"{loc[0].upper()}: {message}" if loc else message)
    return "; ".join(parts)


def _is_fernet_key(value: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(value.encode("ascii"))) == 32
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return False


def _secret_problems(name: str, value: SecretStr | None, min_length: int = _MIN_SECRET_LENGTH
                     ) -> list[str]:
    if value is None or not value.get_secret_value():
        return [f"{name} is missing"]
    raw = value.get_secret_value()
    lowered = raw.lower()
    if any(marker in lowered for marker in _PLACEHOLDER_MARKERS):
        return [f"{name} is a placeholder value"]
    if len(raw) < min_length:
        return [f"{name} is too short (at least {min_length} characters)"]
    return []


def backup_key_problem(text: str) -> str | None:
    """Why `text` is not a backup key (url-safe base64 of 32 random bytes), or None."""
    try:
        raw = base64.urlsafe_b64decode(text.strip().encode("ascii"))
    except (binascii.Error, ValueError, UnicodeEncodeError):
        return "is not url-safe base64 (generate one with Fernet.generate_key())"
    if len(raw) != 32:
        return f"decodes to {len(raw)} bytes, not 32 (generate one with Fernet.generate_key())"
    return None


def uri_tls_problems(uri: str, *, production: bool) -> list[str]:
    """TLS is required for `mongodb+srv` and, in production, for any non-loopback host; in
    production no option may turn off the certificate or host-name check."""
    parts = urlsplit(uri)
    query = {k.lower(): v for k, v in parse_qs(parts.query).items()}
    tls_on = any(query.get(k, [""])[0].lower() == "true" for k in ("tls", "ssl"))
    tls_off = any(query.get(k, [""])[0].lower() == "false" for k in ("tls", "ssl"))
    hosts = [h.rsplit("@", 1)[-1] for h in parts.netloc.rsplit("@", 1)[-1].split(",")]
    names = {h.rsplit(":", 1)[0] if not h.startswith("[") else h.split("]")[0] + "]"
             for h in hosts}
    problems: list[str] = []
    if production:
        problems.extend(
            f"MONGODB_URI turns off certificate checks ({option}=true)"
            for option in _INSECURE_TLS_OPTIONS
            if any(value.lower() != "false" for value in query.get(option.lower(), [])))
    if parts.scheme == "mongodb+srv":
        if tls_off:
            problems.append("MONGODB_URI disables TLS for a mongodb+srv host")
    elif production and not tls_on and not names <= _LOOPBACK_HOSTS:
        problems.append("MONGODB_URI names a non-loopback host without tls=true")
    return problems


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
