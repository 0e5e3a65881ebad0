"""The embedded MongoDB server in a process of its own, serving until it is stopped or killed.

    python -m tests.faults.fault_server PORT URI_FILE [SQLITE_PATH]

PORT 0 takes a free port; the URI is written to URI_FILE once the server listens (written whole
or not at all, so a reader never sees half of it). With SQLITE_PATH the data is kept in that
file and survives a SIGKILL; without it, the server keeps it in memory and loses it. It also
stops when the test process that started it is gone, so an interrupted run leaves no server
behind.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

from backend.db.embedded import EmbeddedMongoServer


def main(argv: list[str]) -> int:
    parent = os.getppid()
    port, uri_file = int(argv[0]), Path(argv[1])
    path = Path(argv[2]) if len(argv) > 2 else None
    server = EmbeddedMongoServer(path=path, port=port)
    uri = server.start()
    partial = uri_file.with_name(uri_file.name + ".partial")
    partial.write_text(uri, encoding="utf-8")
    partial.replace(uri_file)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(0.2):
        if os.getppid() != parent:
            break
    server.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
