"""The bridge's errors. Each `BridgeError` carries the code and HTTP status it is answered with.

BridgeError
├── Unauthorized            401 UNAUTHORIZED
├── IpNotAllowed            403 IP_NOT_ALLOWED
├── AccountNotServed        404 ACCOUNT_NOT_SERVED
├── TerminalLoginMismatch   502 TERMINAL_LOGIN_MISMATCH
├── Mt5Error                502 MT5_ERROR
└── TerminalUnavailable     503 TERMINAL_UNAVAILABLE

ConfigurationError          refused settings; raised at start-up, never answered over HTTP
"""

from __future__ import annotations

from typing import Any, ClassVar


class ConfigurationError(Exception):
    """The bridge refuses to start with these settings; the message names the setting."""


class BridgeError(Exception):
    code: ClassVar[str] = "BRIDGE_ERROR"
    status_code: ClassVar[int] = 500

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class Unauthorized(BridgeError):
    code = "UNAUTHORIZED"
    status_code = 401


class IpNotAllowed(BridgeError):
    code = "IP_NOT_ALLOWED"
    status_code = 403


class AccountNotServed(BridgeError):
    code = "ACCOUNT_NOT_SERVED"
    status_code = 404


class TerminalLoginMismatch(BridgeError):
    code = "TERMINAL_LOGIN_MISMATCH"
    status_code = 502


class Mt5Error(BridgeError):
    code = "MT5_ERROR"
    status_code = 502


class TerminalUnavailable(BridgeError):
    code = "TERMINAL_UNAVAILABLE"
    status_code = 503
