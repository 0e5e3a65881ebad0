"""API key and IP allowlist."""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from mt5_bridge_service import DEV_API_KEY, BridgeSettings
from mt5_bridge_service.app import key_matches
from mt5_bridge_service.simulated import SimulatedTerminal
from tests.bridge.conftest import LOGIN, OpenBridge

OLD_KEY = "old-key-0123456789abcdef0123456789abcdef"
NEW_KEY = "new-key-fedcba9876543210fedcba9876543210"


@pytest.mark.parametrize("path", ["/health", f"/accounts/{LOGIN}", f"/accounts/{LOGIN}/positions"])
async def test_missing_key_is_refused(
    open_bridge: OpenBridge, sim: SimulatedTerminal, path: str
) -> None:
    async with open_bridge(sim, api_key=None) as client:
        response = await client.get(path)

    assert response.status_code == 401
    assert response.json() == {
        "error": {"code": "UNAUTHORIZED", "message": "missing X-API-Key header", "details": None}
    }


async def test_wrong_key_is_refused_and_data_is_not_read(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim, api_key=DEV_API_KEY + "x") as client:
        response = await client.get(
            f"/accounts/{LOGIN}/deals", params={"from": "2025-01-01T00:00:00Z"}
        )

    assert response.status_code == 401
    assert response.json()["error"] == {
        "code": "UNAUTHORIZED",
        "message": "invalid API key",
        "details": None,
    }
    assert "balance" not in response.text


async def test_two_keys_are_accepted_during_rotation(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    settings = BridgeSettings(api_keys=f"{OLD_KEY}, {NEW_KEY}")
    statuses = {}
    for key in (OLD_KEY, NEW_KEY, DEV_API_KEY):
        async with open_bridge(sim, settings=settings, api_key=key) as client:
            statuses[key] = (await client.get(f"/accounts/{LOGIN}")).status_code

    assert statuses == {OLD_KEY: 200, NEW_KEY: 200, DEV_API_KEY: 401}


def test_key_matching_checks_every_accepted_key() -> None:
    keys = [SecretStr(OLD_KEY), SecretStr(NEW_KEY)]
    assert key_matches(NEW_KEY, keys)
    assert key_matches(OLD_KEY, keys)
    assert not key_matches(NEW_KEY[:-1], keys)
    assert not key_matches("", keys)


async def test_liveness_needs_no_key_but_says_nothing_else(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    async with open_bridge(sim, api_key=None) as client:
        response = await client.get("/health/live")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_allowlist_admits_listed_addresses_and_networks(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    settings = BridgeSettings(allowed_ips="203.0.113.7, 10.8.0.0/16")
    for address in ("203.0.113.7", "10.8.44.2"):
        async with open_bridge(sim, settings=settings, client_ip=address) as client:
            assert (await client.get(f"/accounts/{LOGIN}")).status_code == 200


@pytest.mark.parametrize("path", ["/health/live", "/health", f"/accounts/{LOGIN}", "/no-such"])
async def test_allowlist_refuses_other_addresses_everywhere(
    open_bridge: OpenBridge, sim: SimulatedTerminal, path: str
) -> None:
    settings = BridgeSettings(allowed_ips="203.0.113.7,10.8.0.0/16")
    async with open_bridge(sim, settings=settings, client_ip="198.51.100.9") as client:
        response = await client.get(path)

    assert response.status_code == 403
    assert response.json()["error"]["code"] == "IP_NOT_ALLOWED"


async def test_forwarded_address_counts_only_behind_a_trusted_proxy(
    open_bridge: OpenBridge, sim: SimulatedTerminal
) -> None:
    trusted = BridgeSettings(allowed_ips="203.0.113.7", trusted_proxies="127.0.0.1")
    untrusted = BridgeSettings(allowed_ips="203.0.113.7")
    forwarded = {"X-Forwarded-For": "198.51.100.1, 203.0.113.7"}
    spoofed = {"X-Forwarded-For": "203.0.113.7, 198.51.100.9"}

    async with open_bridge(sim, settings=trusted) as client:
        via_proxy = await client.get(f"/accounts/{LOGIN}", headers=forwarded)
        spoofed_via_proxy = await client.get(f"/accounts/{LOGIN}", headers=spoofed)
    async with open_bridge(sim, settings=untrusted, client_ip="198.51.100.9") as client:
        direct = await client.get(f"/accounts/{LOGIN}", headers=forwarded)

    assert via_proxy.status_code == 200
    assert spoofed_via_proxy.status_code == 403
    assert direct.status_code == 403
