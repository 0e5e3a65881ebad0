"""The database handle's type, named once so that layers above the repositories need not
import the driver to pass a handle along."""

from __future__ import annotations

from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

Database = AsyncDatabase[dict[str, Any]]
