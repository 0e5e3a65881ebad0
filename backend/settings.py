"""Settings: one object, read from the environment and `.env`, validated once.

Every setting is documented in `.env.example`. In production the service refuses to start
when a required setting is missing, a secret is a placeholder or too short, or the database
URI names a remote host without TLS; the refusal lists every problem by setting name.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Self
from urllib.parse import parse_qs, urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]

#: The documented development key shared by `make bridge` and `make sync`; refused in production.
DEV_BRIDGE_API_KEY = "fidus-dev-bridge-key-not-for-production"

_PLACEHOLDER_MARKERS = ("changeme", "change-me", "change_me", "placeholder", "example", "secret",
                        "not-for-production", "dev-only", "xxxx")
_MIN_SECRET_LENGTH = 32
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}


class Environment(StrEnum):
    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


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

    # Security
    jwt_secret: SecretStr | None = None
    jwt_algorithm: str = "HS256"
    access_token_minutes: int = Field(default=15, ge=1, le=24 * 60)
    refresh_token_days: int = Field(default=7, ge=1, le=90)
    field_encryption_keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    login_max_failures: int = Field(default=5, ge=1)
    login_lockout_minutes: int = Field(default=15, ge=1)
    login_ip_max_attempts_per_minute: int = Field(default=20, ge=1)

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

    # MT5 bridge and sync
    mt5_bridge_url: str = "http://127.0.0.1:8100"
    mt5_bridge_api_key: SecretStr = SecretStr(DEV_BRIDGE_API_KEY)
    mt5_bridge_timeout_seconds: float = Field(default=10.0, gt=0)
    sync_interval_seconds: int = Field(default=300, ge=5)
    sync_concurrency: int = Field(default=10, ge=1, le=200)
    sync_stale_after_minutes: int = Field(default=30, ge=1)
    sync_lease_seconds: int = Field(default=120, ge=5)

    # Client statements
    fund_manager_name: str = Field(default="Fidus Capital", min_length=1, max_length=120)
    statements_dir: Path = Field(default=REPO_ROOT / "var" / "statements")

    @field_validator("field_encryption_keys", "google_admin_emails", mode="before")
    @classmethod
    def _split_comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @property
    def database_name(self) -> str:
        return self.mongodb_database or f"fidus_{self.fidus_env.value}"

    @property
    def is_production(self) -> bool:
        return self.fidus_env is Environment.PRODUCTION

    @property
    def uses_embedded_database(self) -> bool:
        return self.mongodb_uri is None and not self.is_production

    @property
    def logs_as_json(self) -> bool:
        return self.is_production if self.log_json is None else self.log_json

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
        if self.fidus_bootstrap_admin_password is not None:
            problems.extend(
                _secret_problems(
                    "FIDUS_BOOTSTRAP_ADMIN_PASSWORD", self.fidus_bootstrap_admin_password, 12
                )
            )
        return problems

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Self:
        if self.is_production:
            problems = self.production_problems()
            if problems:
                raise ValueError(
                    "refusing to start in production: " + "; ".join(problems)
                )
        return self


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


def uri_tls_problems(uri: str, *, production: bool) -> list[str]:
    """TLS is required for `mongodb+srv` and, in production, for any non-loopback host."""
    parts = urlsplit(uri)
    query = {k.lower(): v for k, v in parse_qs(parts.query).items()}
    tls_on = any(query.get(k, [""])[0].lower() == "true" for k in ("tls", "ssl"))
    tls_off = any(query.get(k, [""])[0].lower() == "false" for k in ("tls", "ssl"))
    hosts = [h.rsplit("@", 1)[-1] for h in parts.netloc.rsplit("@", 1)[-1].split(",")]
    names = {h.rsplit(":", 1)[0] if not h.startswith("[") else h.split("]")[0] + "]"
             for h in hosts}
    if parts.scheme == "mongodb+srv":
        return ["MONGODB_URI disables TLS for a mongodb+srv host"] if tls_off else []
    if production and not tls_on and not names <= _LOOPBACK_HOSTS:
        return ["MONGODB_URI names a non-loopback host without tls=true"]
    return []


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
