"""`make restore`: see `python -m scripts.restore --help`."""

from backend.ops._cli import entry
from backend.ops.backup import restore_main as main

if __name__ == "__main__":
    entry(main)
