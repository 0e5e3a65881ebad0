"""What can go wrong talking to the MT5 bridge.

    UpstreamUnavailable (backend.errors, 502)
    └── BridgeError                 any failure of a bridge call
        ├── BridgeUnreachable       connect error or timeout, after the retries
        ├── BridgeRefused           the bridge answered with its error envelope (status, code)
        │   └── TerminalCrossed     502 TERMINAL_LOGIN_MISMATCH: the terminal answered for
        │                           another login; never retried
        └── BridgeBadResponse       the body is not what the bridge's API declares
"""

from __future__ import annotations

from typing import Any

from backend.errors import UpstreamUnavailable


class BridgeError(UpstreamUnavailable):
    code = "BRIDGE_ERROR"


class BridgeUnreachable(BridgeError):
    code = "BRIDGE_UNREACHABLE"


class BridgeRefused(BridgeError):
    code = "BRIDGE_REFUSED"

    def __init__(self, message: str, *, status_code: int, bridge_code: str,
                 details: Any = None) -> None:
        super().__init__(message, details={"status_code": status_code,
                                           "bridge_code": bridge_code, "bridge_details": details})
        self.status_code = status_code
        self.bridge_code = bridge_code


class TerminalCrossed(BridgeRefused):
    code = "TERMINAL_LOGIN_MISMATCH"


class BridgeBadResponse(BridgeError):
    code = "BRIDGE_BAD_RESPONSE"
