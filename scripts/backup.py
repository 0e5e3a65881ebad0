"""`make backup`: see `python -m scripts.backup --help`."""

from backend.ops._cli import entry
from backend.ops.backup import backup_main as main

if __name__ == "__main__":
    entry(main)
