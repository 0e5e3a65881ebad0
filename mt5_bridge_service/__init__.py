"""Fidus MT5 bridge: a small HTTP service beside the MT5 terminal(s) on the Windows VPS.

It reads accounts, open positions and deal history from the terminal for the backend's sync
jobs. It is deployed on its own and never imports the backend package.
"""

from mt5_bridge_service.app import create_app
from mt5_bridge_service.settings import DEV_API_KEY, BridgeSettings
from mt5_bridge_service.simulated import SimulatedTerminal
from mt5_bridge_service.terminal import MetaTrader5Terminal, Terminal

__all__ = [
    "DEV_API_KEY",
    "BridgeSettings",
    "MetaTrader5Terminal",
    "SimulatedTerminal",
    "Terminal",
    "create_app",
]
