"""`make migrate`: see `python -m scripts.migrate --help`."""

from backend.ops._cli import entry
from backend.ops.migrations import main as main

if __name__ == "__main__":
    entry(main)
