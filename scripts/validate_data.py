"""`make validate-data`: see `python -m scripts.validate_data --help`."""

from backend.ops._cli import entry
from backend.ops.validate import main as main

if __name__ == "__main__":
    entry(main)
