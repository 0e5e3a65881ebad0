"""One repository per collection, on the generic base in `base.py`."""
