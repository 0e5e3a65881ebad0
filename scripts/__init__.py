"""Command-line entry points: thin wrappers over `backend` (see the Makefile)."""
