"""`python -m mt5_bridge_service`: run the bridge with uvicorn on BRIDGE_HOST:BRIDGE_PORT."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from mt5_bridge_service.app import create_app
from mt5_bridge_service.errors import ConfigurationError
from mt5_bridge_service.settings import BridgeSettings


def main() -> int:
    try:
        settings = BridgeSettings()
    except ValidationError as exc:
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            print(
                f"mt5_bridge_service: invalid configuration ({where}): {error['msg']}",
                file=sys.stderr,
            )
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        app = create_app(settings)
    except ConfigurationError as exc:
        print(f"mt5_bridge_service: {exc}", file=sys.stderr)
        return 2
    # Forwarded headers are interpreted by the app itself (BRIDGE_TRUSTED_PROXIES), so uvicorn
    # must not rewrite the client address first.
    uvicorn.run(app, host=settings.host, port=settings.port, proxy_headers=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
