"""The bridge's settings, read once from `BRIDGE_*` environment variables.

Production (`BRIDGE_ENV=production`) refuses the simulated terminal, the documented development
key and an empty key list, so a misconfigured bridge fails at start-up rather than serving.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEV_API_KEY = "fidus-dev-bridge-key-not-for-production"
MIN_PRODUCTION_KEY_LENGTH = 32

IpNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AccountCredentials(BaseModel):
    """How to reach one MT5 login on the real terminal.

    `password` and `server` may be left out when the terminal already holds the account with a
    saved password. `terminal_path` picks the terminal installation (terminal64.exe) serving
    this login when several run on the VPS; default `BRIDGE_TERMINAL_PATH`.
    """

    password: SecretStr | None = None
    server: str | None = None
    terminal_path: str | None = None


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class BridgeSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BRIDGE_", extra="ignore", frozen=True)

    env: Literal["development", "test", "production"] = "development"
    terminal: Literal["simulated", "metatrader5"] = "simulated"

    # Comma-separated so two keys can be accepted at once while one is rotated out.
    api_keys: Annotated[list[SecretStr], NoDecode] = Field(
        default_factory=lambda: [SecretStr(DEV_API_KEY)]
    )
    allowed_ips: Annotated[list[IpNetwork], NoDecode] = Field(default_factory=list)
    trusted_proxies: Annotated[list[IpNetwork], NoDecode] = Field(default_factory=list)

    host: str = "127.0.0.1"
    port: int = Field(default=8100, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    sim_seed: int = 20_240_601
    sim_latency_ms: float = Field(default=0.0, ge=0)
    # JSON of login -> initial deposit for the simulator (the demo seed writes one).
    sim_deposits_file: Path | None = None

    broker_utc_offset_hours: float = Field(default=2.0, ge=-12, le=14)
    broker_timezone: str | None = None
    offset_probe_symbol: str = "EURUSD"

    accounts: dict[int, AccountCredentials] = Field(default_factory=dict)
    terminal_path: str | None = None
    mt5_timeout_ms: int = Field(default=60_000, ge=1000)

    @field_validator("api_keys", mode="before")
    @classmethod
    def _parse_keys(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("allowed_ips", "trusted_proxies", mode="before")
    @classmethod
    def _parse_networks(cls, value: Any) -> Any:
        parts = _split_csv(value)
        if not isinstance(parts, list):
            return parts
        networks = []
        for part in parts:
            if not isinstance(part, str):
                networks.append(part)
                continue
            try:
                networks.append(ipaddress.ip_network(part, strict=False))
            except ValueError as exc:
                raise ValueError(f"{part!r} is not an IP address or CIDR network") from exc
        return networks

    @field_validator("accounts", mode="before")
    @classmethod
    def _parse_accounts(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("broker_utc_offset_hours")
    @classmethod
    def _quarter_hours(cls, value: float) -> float:
        if (value * 4) != int(value * 4):
            raise ValueError("BRIDGE_BROKER_UTC_OFFSET_HOURS must be a multiple of 0.25 hours")
        return value

    @field_validator("broker_timezone")
    @classmethod
    def _known_zone(cls, value: str | None) -> str | None:
        if value:
            try:
                ZoneInfo(value)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(
                    f"BRIDGE_BROKER_TIMEZONE={value!r} is not a known IANA time zone"
                ) from exc
        return value or None

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> BridgeSettings:
        if not self.api_keys:
            raise ValueError("BRIDGE_API_KEYS is empty: set at least one accepted API key")
        if self.terminal == "simulated" and self.broker_timezone:
            raise ValueError(
                "BRIDGE_BROKER_TIMEZONE applies to the real terminal; the simulated terminal "
                "runs at BRIDGE_BROKER_UTC_OFFSET_HOURS"
            )
        if self.env != "production":
            return self
        if self.terminal == "simulated":
            raise ValueError(
                "BRIDGE_TERMINAL=simulated is refused when BRIDGE_ENV=production: the simulated "
                "terminal serves invented data; set BRIDGE_TERMINAL=metatrader5"
            )
        for key in self.api_keys:
            secret = key.get_secret_value()
            if secret == DEV_API_KEY:
                raise ValueError(
                    "BRIDGE_API_KEYS holds the development key, which is refused when "
                    "BRIDGE_ENV=production: set BRIDGE_API_KEYS to a random secret "
                    '(e.g. python -c "import secrets; print(secrets.token_urlsafe(32))")'
                )
            if len(secret) < MIN_PRODUCTION_KEY_LENGTH:
                raise ValueError(
                    f"BRIDGE_API_KEYS: every key must be at least {MIN_PRODUCTION_KEY_LENGTH} "
                    "characters when BRIDGE_ENV=production"
                )
        return self

    @property
    def sim_latency_seconds(self) -> float:
        return self.sim_latency_ms / 1000

    @property
    def restricts_logins(self) -> bool:
        """True when only the logins in BRIDGE_ACCOUNTS are served."""
        return self.terminal == "metatrader5" or bool(self.accounts)
