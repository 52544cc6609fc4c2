"""Freeze a real PostgreSQL: SIGSTOP its postmaster and every backend, so connections stay open and nothing
answers (a hung server, unlike a stopped one, which closes its sockets)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # "pid (comm) state ppid …": comm may contain spaces and parentheses, so split after the last ')'.
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == pid:
            found.append(int(entry.name))
    return found


@contextmanager
def frozen(postmaster_pid: int) -> Iterator[list[int]]:
    """Every process of the cluster stopped for the block (the postmaster first: it forks no new backend
    meanwhile), all continued afterwards whatever happened."""
    stopped: list[int] = []
    try:
        os.kill(postmaster_pid, signal.SIGSTOP)
        stopped.append(postmaster_pid)
        for child in children_of(postmaster_pid):
            os.kill(child, signal.SIGSTOP)
            stopped.append(child)
        yield stopped
    finally:
        for pid in reversed(stopped):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
