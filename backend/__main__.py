"""`python -m backend`: serve the API (what `make run` calls).

The database is connected before the server starts listening, so an unreachable database ends
the process with one readable line and a non-zero exit instead of a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

import uvicorn
from pydantic import ValidationError

from backend.errors import DatabaseUnavailable
from backend.settings import SettingsProblem, describe_problems


async def _serve(host: str, port: int) -> int:
    from backend.api.app import create_app
    from backend.db.connection import ConnectionManager
    from backend.log import configure_logging
    from backend.settings import get_settings

    settings = get_settings()
    configure_logging(level=settings.log_level, json=settings.logs_as_json)
    manager = ConnectionManager.from_settings(settings)
    try:
        await manager.connect()
    except DatabaseUnavailable as error:
        print(f"fidus: cannot start: {error.message}", file=sys.stderr)
        return 1
    except SettingsProblem as problem:
        print(f"fidus: invalid settings: {problem}", file=sys.stderr)
        return 2
    app = create_app(settings, connection=manager, configure_logs=False)
    # The app reads X-Forwarded-For itself, and only from FORWARDED_ALLOW_IPS (empty: never).
    config = uvicorn.Config(app, host=host, port=port, log_config=None, lifespan="on",
                            proxy_headers=False)
    server = uvicorn.Server(config)
    await server.serve()
    return 0 if server.started else 1


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m backend", description="Serve the Fidus API.")
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    args = parser.parse_args()
    try:
        return asyncio.run(_serve(args.host, args.port))
    except ValidationError as error:
        print(f"fidus: invalid settings: {describe_problems(error)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
