"""`make sync` / `make worker`: see `python -m scripts.sync --help`."""

from backend.ops._cli import entry
from backend.sync.cli import main as main

if __name__ == "__main__":
    entry(main)
