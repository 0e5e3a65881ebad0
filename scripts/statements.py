"""`make statements`: see `python -m scripts.statements --help`."""

from backend.ops._cli import entry
from backend.ops.statements import main as main

if __name__ == "__main__":
    entry(main)
