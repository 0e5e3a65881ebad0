"""`uvicorn backend.main:app`: the service entry point used by `make run`."""

from backend.api.app import create_app

app = create_app()
