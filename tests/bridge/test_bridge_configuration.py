"""Settings, production refusals, terminal choice and the entry point."""

from __future__ import annotations

import ipaddress
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from mt5_bridge_service import DEV_API_KEY, BridgeSettings, create_app
from mt5_bridge_service.app import build_terminal
from mt5_bridge_service.errors import ConfigurationError
from mt5_bridge_service.simulated import SimulatedTerminal
from tests.bridge.conftest import LOGIN, OpenBridge

REPO = Path(__file__).resolve().parents[2]
STRONG_KEY = "k" * 40


def test_development_defaults_accept_the_documented_dev_key() -> None:
    settings = BridgeSettings()
    assert settings.env == "development"
    assert settings.terminal == "simulated"
    assert [k.get_secret_value() for k in settings.api_keys] == [DEV_API_KEY]
    assert DEV_API_KEY == "fidus-dev-bridge-key-not-for-production"
    assert (settings.host, settings.port) == ("127.0.0.1", 8100)
    assert settings.broker_utc_offset_hours == 2.0


def test_comma_separated_environment_values_are_parsed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BRIDGE_API_KEYS", "first-key, second-key,")
    monkeypatch.setenv("BRIDGE_ALLOWED_IPS", "203.0.113.7,10.8.0.0/16, 2001:db8::/32")
    monkeypatch.setenv(
        "BRIDGE_ACCOUNTS",
        '{"12345678": {"password": "pw", "server": "Broker-Live", '
        '"terminal_path": "C:\\\\MT5\\\\a\\\\terminal64.exe"}}',
    )
    monkeypatch.setenv("BRIDGE_SIM_LATENCY_MS", "20")

    settings = BridgeSettings()

    assert [k.get_secret_value() for k in settings.api_keys] == ["first-key", "second-key"]
    assert settings.allowed_ips == [
        ipaddress.ip_network("203.0.113.7/32"),
        ipaddress.ip_network("10.8.0.0/16"),
        ipaddress.ip_network("2001:db8::/32"),
    ]
    account = settings.accounts[LOGIN]
    assert account.password is not None and account.password.get_secret_value() == "pw"
    assert account.server == "Broker-Live"
    assert account.terminal_path == "C:\\MT5\\a\\terminal64.exe"
    assert "pw" not in repr(settings)
    assert settings.sim_latency_seconds == pytest.approx(0.02)


def test_invalid_allowlist_entry_is_refused() -> None:
    with pytest.raises(ValidationError, match="not an IP address"):
        BridgeSettings(allowed_ips="10.0.0.0/8,intranet")


def test_empty_key_list_is_refused() -> None:
    with pytest.raises(ValidationError, match="BRIDGE_API_KEYS is empty"):
        BridgeSettings(api_keys=" , ")


def test_production_refuses_the_simulated_terminal() -> None:
    with pytest.raises(ValidationError, match="BRIDGE_TERMINAL=simulated is refused"):
        BridgeSettings(env="production", terminal="simulated", api_keys=STRONG_KEY)


def test_production_refuses_the_development_key() -> None:
    with pytest.raises(ValidationError, match="BRIDGE_API_KEYS holds the development key"):
        BridgeSettings(env="production", terminal="metatrader5")
    with pytest.raises(ValidationError, match="BRIDGE_API_KEYS holds the development key"):
        BridgeSettings(
            env="production", terminal="metatrader5", api_keys=f"{STRONG_KEY},{DEV_API_KEY}"
        )


def test_production_refuses_short_and_empty_keys() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        BridgeSettings(env="production", terminal="metatrader5", api_keys="short")
    with pytest.raises(ValidationError, match="BRIDGE_API_KEYS is empty"):
        BridgeSettings(env="production", terminal="metatrader5", api_keys="")


def test_production_accepts_the_real_terminal_with_a_strong_key() -> None:
    settings = BridgeSettings(env="production", terminal="metatrader5", api_keys=STRONG_KEY)
    assert settings.terminal == "metatrader5"


def test_create_app_refuses_a_simulated_terminal_in_production() -> None:
    settings = BridgeSettings(env="production", terminal="metatrader5", api_keys=STRONG_KEY)
    with pytest.raises(ConfigurationError, match="simulated terminal is refused"):
        create_app(settings, SimulatedTerminal())


def test_the_real_terminal_needs_the_windows_package() -> None:
    if sys.platform == "win32":
        pytest.skip("the MetaTrader5 package may be installed on Windows")
    settings = BridgeSettings(terminal="metatrader5")
    with pytest.raises(ConfigurationError, match="BRIDGE_TERMINAL=simulated"):
        build_terminal(settings)


def test_settings_choose_a_simulator_with_their_seed_latency_and_offset() -> None:
    terminal = build_terminal(
        BridgeSettings(sim_seed=99, sim_latency_ms=20, broker_utc_offset_hours=3)
    )
    assert isinstance(terminal, SimulatedTerminal)
    assert terminal.seed == 99
    assert terminal.latency_seconds == pytest.approx(0.02)
    assert terminal.broker_offset_seconds == 3 * 3600


def test_broker_timezone_is_validated_and_kept_for_the_real_terminal() -> None:
    with pytest.raises(ValidationError, match="not a known IANA time zone"):
        BridgeSettings(terminal="metatrader5", broker_timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="simulated terminal runs at"):
        BridgeSettings(broker_timezone="Europe/Athens")
    assert BridgeSettings(terminal="metatrader5", broker_timezone="Europe/Athens").broker_timezone


async def test_the_terminal_choice_is_logged_at_start_up(
    open_bridge: OpenBridge, sim: SimulatedTerminal, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="mt5_bridge_service")
    async with open_bridge(sim) as client:
        assert (await client.get("/health/live")).status_code == 200

    starts = [r.getMessage() for r in caplog.records if "starting" in r.getMessage()]
    assert len(starts) == 1
    assert "terminal=simulated" in starts[0]
    assert "env=development" in starts[0]


def _run_bridge_module(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    clean.update(env)
    clean["PYTHONPATH"] = str(REPO)
    return subprocess.run(
        [sys.executable, "-m", "mt5_bridge_service"],
        cwd=REPO,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_entry_point_refuses_production_with_the_simulator_clearly() -> None:
    result = _run_bridge_module({"BRIDGE_ENV": "production", "BRIDGE_TERMINAL": "simulated"})
    assert result.returncode == 2
    assert "BRIDGE_TERMINAL=simulated is refused" in result.stderr
    assert "Traceback" not in result.stderr


def test_entry_point_refuses_the_dev_key_in_production_clearly() -> None:
    result = _run_bridge_module({"BRIDGE_ENV": "production", "BRIDGE_TERMINAL": "metatrader5"})
    assert result.returncode == 2
    assert "BRIDGE_API_KEYS holds the development key" in result.stderr


def test_bridge_never_imports_the_backend() -> None:
    code = (
        "import sys, mt5_bridge_service, mt5_bridge_service.__main__;"
        "mt5_bridge_service.create_app();"
        "print(sorted(m for m in sys.modules if m == 'backend' or m.startswith('backend.')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip() == "[]"
