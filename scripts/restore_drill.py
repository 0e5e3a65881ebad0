"""`make restore-drill`: see `python -m scripts.restore_drill --help`."""

from backend.ops._cli import entry
from backend.ops.restore_drill import main

if __name__ == "__main__":
    entry(main)
