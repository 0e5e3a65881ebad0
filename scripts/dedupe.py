"""`make dedupe`: see `python -m scripts.dedupe --help`."""

from backend.ops._cli import entry
from backend.ops.dedupe import main as main

if __name__ == "__main__":
    entry(main)
