"""The business code of the data scripts in `scripts/`: migrations, validation and legacy fixes,
de-duplication, the integrity check, seed states, backup and restore.

Each module exposes plain async functions over an `AsyncDatabase` (what the tests call) and a
`main(argv)` command built with `backend.ops._cli` (what `scripts/*.py` call).
"""
