"""Peak resident memory of this process and its children (the dbt subprocess), sampled from /proc.

`resource.getrusage` reports the largest single process, not the sum of a tree that runs at
the same time, so a thread sums VmRSS over the tree every `interval` seconds. A child that still
shares its parent's address space (`subprocess` starts programs with vfork: until the exec, the
child reports the parent's whole RSS) is counted once: one sample of a 1.9 GiB persona step read
2.8 GiB, most likely in such an instant (the step starts `lscpu`).
"""

from __future__ import annotations

import ctypes
import os
import platform
import threading
import time
from pathlib import Path

PROC = Path("/proc")
# kcmp(2) tells whether two processes share one address space (KCMP_VM); its number per architecture.
_KCMP_SYSCALL = {"x86_64": 312, "aarch64": 272}.get(platform.machine())
_KCMP_VM = 1
_LIBC = ctypes.CDLL(None)


def _children(pid: int) -> list[int]:
    pids = []
    try:
        tasks = list((PROC / str(pid) / "task").glob("*/children"))
    except OSError:  # the process ended between two reads
        return pids
    for task in tasks:
        try:
            pids += [int(child) for child in task.read_text().split()]
        except OSError:
            continue
    return pids


def _shares_address_space(pid: int, parent: int) -> bool:
    return _KCMP_SYSCALL is not None and _LIBC.syscall(_KCMP_SYSCALL, pid, parent, _KCMP_VM, 0, 0) == 0


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
    pending, total = [(root or os.getpid(), None)], 0
    while pending:
        pid, parent = pending.pop()
        if parent is None or not _shares_address_space(pid, parent):
            total += _rss_bytes(pid)
        pending += [(child, pid) for child in _children(pid)]
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
