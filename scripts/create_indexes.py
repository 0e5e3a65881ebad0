"""`make indexes`: see `python -m scripts.create_indexes --help` (the same as `fidus indexes`)."""

from backend.cli.indexes import build_parser as build_parser
from backend.cli.indexes import main as main
from backend.cli.indexes import run as run
from backend.ops._cli import entry

if __name__ == "__main__":
    entry(main)
