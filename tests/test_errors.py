"""The error tree in `backend/errors.py`'s docstring names every domain error there is."""

from __future__ import annotations

import importlib
import pkgutil
import re

import backend
from backend import errors
from backend.errors import FidusError, InvalidData, PayloadTooLarge, Throttled, UnsupportedMediaType


def _every_subclass(root: type[FidusError]) -> set[type[FidusError]]:
    found: set[type[FidusError]] = set()
    todo = [root]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def test_the_docstring_tree_lists_every_domain_error_with_its_status() -> None:
    for module in pkgutil.walk_packages(backend.__path__, "backend."):
        importlib.import_module(module.name)
    assert errors.__doc__ is not None
    listed = dict(re.findall(r"[├└]── (\w+)\s+(\d{3})", errors.__doc__))
    subclasses = {cls.__name__: cls for cls in _every_subclass(FidusError)}
    assert sorted(listed) == sorted(subclasses)
    assert {name: int(status) for name, status in listed.items()} == {
        name: cls.http_status for name, cls in subclasses.items()}


def test_upload_limits_are_not_invalid_data() -> None:
    assert not issubclass(PayloadTooLarge, InvalidData)
    assert not issubclass(UnsupportedMediaType, InvalidData)


def test_a_throttle_always_says_when_to_retry() -> None:
    assert Throttled("slow down", retry_after_seconds=0).retry_after_seconds == 1
    assert Throttled("slow down", retry_after_seconds=42).retry_after_seconds == 42
