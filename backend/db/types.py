"""The database handle's type, for modules that pass it on without speaking to the driver."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

Database = AsyncDatabase[dict[str, Any]]

__all__ = ["Database"]
