"""The httpx client of the MT5 bridge service (`mt5_bridge_service/`, a separate deployable)."""

from backend.bridge.client import BridgeClient
from backend.bridge.errors import (
    BridgeBadResponse,
    BridgeError,
    BridgeRefused,
    BridgeUnreachable,
    TerminalCrossed,
)
from backend.bridge.models import BridgeAccount, BridgeDeal, BridgeHealth, BridgePositions

__all__ = [
    "BridgeAccount",
    "BridgeBadResponse",
    "BridgeClient",
    "BridgeDeal",
    "BridgeError",
    "BridgeHealth",
    "BridgePositions",
    "BridgeRefused",
    "BridgeUnreachable",
    "TerminalCrossed",
]
