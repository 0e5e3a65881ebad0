"""`make lifecycle`: see `python -m scripts.lifecycle --help`."""

from backend.ops._cli import entry
from backend.ops.lifecycle import main as main

if __name__ == "__main__":
    entry(main)
