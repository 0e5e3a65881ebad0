"""`make verify`: see `python -m scripts.verify --help`."""

from backend.ops._cli import entry
from backend.ops.verify import main as main

if __name__ == "__main__":
    entry(main)
