"""The one table `make bench` prints: every benchmark module contributes rows."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Row:
    benchmark: str
    case: str
    measure: str
    value: str
    ratio: str = ""
    note: str = ""
