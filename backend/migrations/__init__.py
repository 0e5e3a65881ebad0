"""Versioned data migrations, applied in order by `make migrate` (see `backend.ops.migrations`).

One file per migration, `m<YYYYMMDDHHMMSS>_<name>.py`, with `async def up(db)` and
`async def down(db)`. A file never changes once applied anywhere: add a new one instead.

Both steps must be idempotent. A step is recorded only after it finishes, so a crash (or a run
that lost the migrations lock) between the step and its record leaves it done but unrecorded,
and the next run executes it again: filter every write on the state it changes from.
"""
