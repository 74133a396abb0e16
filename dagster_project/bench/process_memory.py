"""Peak resident memory of this process and its children (the dbt subprocess), sampled from /proc.

`resource.getrusage` reports the largest single process, not the sum of a tree that runs at
the same time, so a thread sums VmRSS over the tree every `interval` seconds.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

PROC = Path("/proc")


def _children(pid: int) -> list[int]:
    pids = []
    for task in (PROC / str(pid) / "task").glob("*/children"):
        try:
            pids += [int(child) for child in task.read_text().split()]
        except OSError:
            continue
    return pids


def _rss_bytes(pid: int) -> int:
    try:
        for line in (PROC / str(pid) / "status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss_bytes(root: int | None = None) -> int:
    """Summed RSS of `root` (default: this process) and all its descendants."""
    pending, total = [root or os.getpid()], 0
    while pending:
        pid = pending.pop()
        total += _rss_bytes(pid)
        pending += _children(pid)
    return total


class TreeMemorySampler:
    """Context manager collecting (epoch seconds, tree RSS bytes) samples in a background thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), tree_rss_bytes()))
            self._stop.wait(self.interval)

    def __enter__(self) -> TreeMemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak_mb(self, start: float = float("-inf"), end: float = float("inf")) -> float:
        """Largest sampled tree RSS in [start, end] (epoch seconds), in MiB."""
        inside = [rss for at, rss in self.samples if start <= at <= end]
        return max(inside, default=0) / 2**20
