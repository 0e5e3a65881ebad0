"""`make seed`: see `python -m scripts.seed --help`."""

from backend.ops._cli import entry
from backend.ops.seed import main as main

if __name__ == "__main__":
    entry(main)
