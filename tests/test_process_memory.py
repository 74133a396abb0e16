"""The benchmark's memory sampler counts each address space of the process tree once."""

import os
import subprocess
import sys

import pytest

from dagster_project.bench.process_memory import _shares_address_space, tree_rss_bytes

HOLD_MB = 200


def test_a_child_with_its_own_memory_is_added_and_not_taken_for_a_shared_address_space():
    # A process shares its own address space: what a vfork child does with its parent's until it execs. Without
    # kcmp(2) (another architecture, a kernel or seccomp profile without it) the sampler counts such a child twice.
    if not _shares_address_space(os.getpid(), os.getpid()):
        pytest.skip("kcmp(2) is not available here: a vfork child would be counted as a second copy of its parent")
    alone = tree_rss_bytes()
    child = subprocess.Popen([sys.executable, "-c", f"import sys, time; block = bytearray({HOLD_MB} << 20); "
                              "block[::4096] = b'x' * len(block[::4096]); print(flush=True); time.sleep(30)"],
                             stdout=subprocess.PIPE)
    try:
        child.stdout.readline()  # the block is allocated and touched
        with_child = tree_rss_bytes()
        assert with_child - alone > 0.9 * (HOLD_MB << 20)
        assert not _shares_address_space(child.pid, os.getpid())
    finally:
        child.kill()
        child.wait()
    assert tree_rss_bytes() - alone < 0.5 * (HOLD_MB << 20)
