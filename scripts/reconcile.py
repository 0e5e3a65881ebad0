"""`make reconcile`: see `python -m scripts.reconcile --help`."""

from backend.ops._cli import entry
from backend.sync.reconcile_cli import main as main

if __name__ == "__main__":
    entry(main)
