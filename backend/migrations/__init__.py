"""Versioned data migrations, applied in order by `make migrate` (see `backend.ops.migrations`).

One file per migration, `m<YYYYMMDDHHMMSS>_<name>.py`, with `async def up(db)` and
`async def down(db)`. A file never changes once applied anywhere: add a new one instead.
"""
