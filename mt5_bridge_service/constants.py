"""Constants of the MetaTrader5 Python package, with the same names and values.

Only the families the bridge reads are mirrored: deal types and entries, deal reasons, position
types, account modes and the `last_error()` result codes. The values follow the MQL5 reference
(ENUM_DEAL_TYPE, ENUM_DEAL_ENTRY, ...) and the package's `RES_*` codes.
"""

from typing import Final

# ENUM_DEAL_TYPE
DEAL_TYPE_BUY: Final = 0
DEAL_TYPE_SELL: Final = 1
DEAL_TYPE_BALANCE: Final = 2
DEAL_TYPE_CREDIT: Final = 3
DEAL_TYPE_CHARGE: Final = 4
DEAL_TYPE_CORRECTION: Final = 5
DEAL_TYPE_BONUS: Final = 6
DEAL_TYPE_COMMISSION: Final = 7
DEAL_TYPE_COMMISSION_DAILY: Final = 8
DEAL_TYPE_COMMISSION_MONTHLY: Final = 9
DEAL_TYPE_COMMISSION_AGENT_DAILY: Final = 10
DEAL_TYPE_COMMISSION_AGENT_MONTHLY: Final = 11
DEAL_TYPE_INTEREST: Final = 12
DEAL_TYPE_BUY_CANCELED: Final = 13
DEAL_TYPE_SELL_CANCELED: Final = 14
DEAL_DIVIDEND: Final = 15
DEAL_DIVIDEND_FRANKED: Final = 16
DEAL_TAX: Final = 17

DEAL_TYPE_NAMES: Final[dict[int, str]] = {
    DEAL_TYPE_BUY: "BUY",
    DEAL_TYPE_SELL: "SELL",
    DEAL_TYPE_BALANCE: "BALANCE",
    DEAL_TYPE_CREDIT: "CREDIT",
    DEAL_TYPE_CHARGE: "CHARGE",
    DEAL_TYPE_CORRECTION: "CORRECTION",
    DEAL_TYPE_BONUS: "BONUS",
    DEAL_TYPE_COMMISSION: "COMMISSION",
    DEAL_TYPE_COMMISSION_DAILY: "COMMISSION_DAILY",
    DEAL_TYPE_COMMISSION_MONTHLY: "COMMISSION_MONTHLY",
    DEAL_TYPE_COMMISSION_AGENT_DAILY: "COMMISSION_AGENT_DAILY",
    DEAL_TYPE_COMMISSION_AGENT_MONTHLY: "COMMISSION_AGENT_MONTHLY",
    DEAL_TYPE_INTEREST: "INTEREST",
    DEAL_TYPE_BUY_CANCELED: "BUY_CANCELED",
    DEAL_TYPE_SELL_CANCELED: "SELL_CANCELED",
    DEAL_DIVIDEND: "DIVIDEND",
    DEAL_DIVIDEND_FRANKED: "DIVIDEND_FRANKED",
    DEAL_TAX: "TAX",
}

# ENUM_DEAL_ENTRY
DEAL_ENTRY_IN: Final = 0
DEAL_ENTRY_OUT: Final = 1
DEAL_ENTRY_INOUT: Final = 2
DEAL_ENTRY_OUT_BY: Final = 3

# ENUM_DEAL_REASON (the ones the simulator produces)
DEAL_REASON_CLIENT: Final = 0
DEAL_REASON_EXPERT: Final = 3

# ENUM_POSITION_TYPE
POSITION_TYPE_BUY: Final = 0
POSITION_TYPE_SELL: Final = 1

# ENUM_ACCOUNT_TRADE_MODE and ENUM_ACCOUNT_MARGIN_MODE
ACCOUNT_TRADE_MODE_DEMO: Final = 0
ACCOUNT_TRADE_MODE_CONTEST: Final = 1
ACCOUNT_TRADE_MODE_REAL: Final = 2
ACCOUNT_MARGIN_MODE_RETAIL_HEDGING: Final = 2

# Result codes reported by last_error()
RES_S_OK: Final = 1
RES_E_FAIL: Final = -1
RES_E_INVALID_PARAMS: Final = -2
RES_E_NO_MEMORY: Final = -3
RES_E_NOT_FOUND: Final = -4
RES_E_INVALID_VERSION: Final = -5
RES_E_AUTH_FAILED: Final = -6
RES_E_UNSUPPORTED: Final = -7
RES_E_AUTO_TRADING_DISABLED: Final = -8
RES_E_INTERNAL_FAIL: Final = -10000
RES_E_INTERNAL_FAIL_SEND: Final = -10001
RES_E_INTERNAL_FAIL_RECEIVE: Final = -10002
RES_E_INTERNAL_FAIL_INIT: Final = -10003
RES_E_INTERNAL_FAIL_CONNECT: Final = -10004
RES_E_INTERNAL_FAIL_TIMEOUT: Final = -10005

RES_NAMES: Final[dict[int, str]] = {
    RES_S_OK: "RES_S_OK",
    RES_E_FAIL: "RES_E_FAIL",
    RES_E_INVALID_PARAMS: "RES_E_INVALID_PARAMS",
    RES_E_NO_MEMORY: "RES_E_NO_MEMORY",
    RES_E_NOT_FOUND: "RES_E_NOT_FOUND",
    RES_E_INVALID_VERSION: "RES_E_INVALID_VERSION",
    RES_E_AUTH_FAILED: "RES_E_AUTH_FAILED",
    RES_E_UNSUPPORTED: "RES_E_UNSUPPORTED",
    RES_E_AUTO_TRADING_DISABLED: "RES_E_AUTO_TRADING_DISABLED",
    RES_E_INTERNAL_FAIL: "RES_E_INTERNAL_FAIL",
    RES_E_INTERNAL_FAIL_SEND: "RES_E_INTERNAL_FAIL_SEND",
    RES_E_INTERNAL_FAIL_RECEIVE: "RES_E_INTERNAL_FAIL_RECEIVE",
    RES_E_INTERNAL_FAIL_INIT: "RES_E_INTERNAL_FAIL_INIT",
    RES_E_INTERNAL_FAIL_CONNECT: "RES_E_INTERNAL_FAIL_CONNECT",
    RES_E_INTERNAL_FAIL_TIMEOUT: "RES_E_INTERNAL_FAIL_TIMEOUT",
}

# What each code means for the person reading the bridge's error response.
RES_DESCRIPTIONS: Final[dict[int, str]] = {
    RES_E_FAIL: "the terminal reported a generic failure",
    RES_E_INVALID_PARAMS: "the terminal refused the call's arguments",
    RES_E_NO_MEMORY: "the terminal ran out of memory",
    RES_E_NOT_FOUND: "the terminal has no such data (history, symbol or account not found)",
    RES_E_INVALID_VERSION: "the terminal build is not supported by the MetaTrader5 package",
    RES_E_AUTH_FAILED: (
        "the trade server refused the login: check the password and server in BRIDGE_ACCOUNTS"
    ),
    RES_E_UNSUPPORTED: "the terminal does not support this call",
    RES_E_AUTO_TRADING_DISABLED: "algorithmic trading is disabled in the terminal",
    RES_E_INTERNAL_FAIL: "internal IPC failure talking to the terminal",
    RES_E_INTERNAL_FAIL_SEND: "could not send to the terminal (IPC send failed)",
    RES_E_INTERNAL_FAIL_RECEIVE: "could not read from the terminal (IPC receive failed)",
    RES_E_INTERNAL_FAIL_INIT: "the terminal did not accept the connection (IPC initialization)",
    RES_E_INTERNAL_FAIL_CONNECT: "no connection to the terminal (is it running?)",
    RES_E_INTERNAL_FAIL_TIMEOUT: "the terminal did not answer in time (IPC timeout)",
}

# Codes meaning the terminal itself is unreachable, rather than that one call failed.
TERMINAL_UNREACHABLE_CODES: Final[frozenset[int]] = frozenset(
    {
        RES_E_INTERNAL_FAIL,
        RES_E_INTERNAL_FAIL_SEND,
        RES_E_INTERNAL_FAIL_RECEIVE,
        RES_E_INTERNAL_FAIL_INIT,
        RES_E_INTERNAL_FAIL_CONNECT,
        RES_E_INTERNAL_FAIL_TIMEOUT,
    }
)
